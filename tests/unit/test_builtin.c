/* Tests of the "builtin" embedder (lib/embed/builtin.c). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bcd/analysis.h"
#include "bcd/ctx.h"
#include "bcd/embed.h"
#include "bcd/image.h"

#define N BCD_INPUT_SIZE
#define CANVAS 240 /* scene larger than the crop so that shifted crops stay inside it */

/* ---- synthetic skin photos ------------------------------------------------------ */

static uint32_t lcg_next(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s;
}

/* uniform in [-1, 1) */
static double lcg_unit(uint32_t *s)
{
    return (double)(lcg_next(s) >> 8) / (double)(1u << 23) - 1.0;
}

struct scene {
    float rgb[3][CANVAS][CANVAS];
};

/* A skin-tone patch: smooth shading, blotches (value noise on a 16 px lattice), a few
 * small freckles, and per-pixel sensor noise drawn from noise_seed. With outline, the
 * left part is a dark blue-grey background behind a curved body outline. */
static void make_scene(struct scene *sc, uint32_t seed, uint32_t noise_seed, int outline)
{
    enum { CELL = 16, NODES = CANVAS / CELL + 2 };
    double lum[NODES][NODES], red[NODES][NODES];
    uint32_t s = seed;
    for (int i = 0; i < NODES; i++)
        for (int j = 0; j < NODES; j++) {
            lum[i][j] = lcg_unit(&s);
            red[i][j] = lcg_unit(&s);
        }
    double fx[6], fy[6];
    for (int f = 0; f < 6; f++) {
        fx[f] = 20 + 200 * (lcg_unit(&s) * 0.5 + 0.5);
        fy[f] = 20 + 200 * (lcg_unit(&s) * 0.5 + 0.5);
    }
    uint32_t ns = noise_seed;
    for (int y = 0; y < CANVAS; y++)
        for (int x = 0; x < CANVAS; x++) {
            double u = (double)x / CELL, v = (double)y / CELL;
            int i = (int)u, j = (int)v;
            double a = u - i, b = v - j;
            a = a * a * (3 - 2 * a);
            b = b * b * (3 - 2 * b);
            double bl = (1 - a) * (1 - b) * lum[j][i] + a * (1 - b) * lum[j][i + 1] + (1 - a) * b * lum[j + 1][i] +
                        a * b * lum[j + 1][i + 1];
            double br = (1 - a) * (1 - b) * red[j][i] + a * (1 - b) * red[j][i + 1] + (1 - a) * b * red[j + 1][i] +
                        a * b * red[j + 1][i + 1];
            double shade = 0.88 + 0.12 * x / CANVAS + 0.04 * sin(y * 0.03);
            double k = shade * (1.0 + 0.04 * bl);
            double freckle = 1.0;
            for (int f = 0; f < 6; f++) {
                double d2 = (x - fx[f]) * (x - fx[f]) + (y - fy[f]) * (y - fy[f]);
                freckle -= 0.12 * exp(-d2 / 4.0);
            }
            double r = 0.80 * k * freckle * (1.0 + 0.02 * br);
            double g = 0.60 * k * freckle * (1.0 - 0.01 * br);
            double bb = 0.50 * k * freckle;
            if (outline) {
                double edge = 55.0 + 12.0 * sin(y * 0.025) - x; /* > 0: background */
                double w = edge > 1.5 ? 1.0 : edge < -1.5 ? 0.0 : (edge + 1.5) / 3.0;
                r += w * (0.22 - r);
                g += w * (0.25 - g);
                bb += w * (0.30 - bb);
            }
            double noise = 0.025 * lcg_unit(&ns);
            sc->rgb[0][y][x] = (float)(r + noise);
            sc->rgb[1][y][x] = (float)(g + noise * 0.9 + 0.01 * lcg_unit(&ns));
            sc->rgb[2][y][x] = (float)(bb + noise * 0.8 + 0.01 * lcg_unit(&ns));
        }
}

struct photo {
    int ox, oy;            /* crop offset in the scene */
    double gain[3];        /* exposure x white balance */
    double spot_x, spot_y; /* in crop coordinates */
    double spot_area;      /* fraction of the 224x224 picture; 0: none */
    double spot_mul[3];    /* colour multiplier inside the spot */
};

static struct photo plain_photo(void)
{
    struct photo p = { 3, 3, { 1, 1, 1 }, 0, 0, 0, { 1, 1, 1 } };
    return p;
}

/* Crop, spot, gains, 8-bit quantization, ImageNet normalization. */
static void take_photo(float *tensor, const struct scene *sc, const struct photo *p)
{
    static const double mean[3] = { 0.485, 0.456, 0.406 }, stdv[3] = { 0.229, 0.224, 0.225 };
    double radius = sqrt(p->spot_area * N * N / M_PI);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < N; y++)
            for (int x = 0; x < N; x++) {
                double v = sc->rgb[c][y + p->oy][x + p->ox];
                if (p->spot_area > 0) {
                    double d = hypot(x - p->spot_x, y - p->spot_y);
                    double w = d <= radius - 1.5 ? 1.0 : d >= radius + 1.5 ? 0.0 : (radius + 1.5 - d) / 3.0;
                    v *= 1.0 + w * (p->spot_mul[c] - 1.0);
                }
                v *= p->gain[c];
                v = v < 0 ? 0 : v > 1 ? 1 : v;
                v = nearbyint(v * 255.0) / 255.0;
                tensor[(size_t)c * N * N + (size_t)y * N + x] = (float)((v - mean[c]) / stdv[c]);
            }
}

/* ---- helpers -------------------------------------------------------------------- */

static bcd_ctx *ctx;
static bcd_embedder *emb;

static void setup(void)
{
    ck_assert_int_eq(bcd_ctx_new(&ctx), BCD_OK);
    ck_assert_int_eq(bcd_embedder_open(&emb, ctx, "builtin"), BCD_OK);
}

static void teardown(void)
{
    bcd_embedder_free(emb);
    bcd_ctx_free(ctx);
    emb = NULL;
    ctx = NULL;
}

static float *embed_photo(const struct scene *sc, const struct photo *p)
{
    float *t = malloc(BCD_TENSOR_LEN * sizeof *t);
    float *v = malloc(bcd_embedder_dim(emb) * sizeof *v);
    ck_assert_ptr_nonnull(t);
    ck_assert_ptr_nonnull(v);
    take_photo(t, sc, p);
    ck_assert_int_eq(bcd_embedder_embed(emb, v, t, 1), BCD_OK);
    free(t);
    return v;
}

static double distance(const float *a, const float *b)
{
    double d = -1;
    size_t n = bcd_embedder_dim(emb);
    ck_assert_int_eq(bcd_vector_cosine_distance(&d, NULL, a, n, b, n), BCD_OK);
    return d;
}

/* ---- tests ---------------------------------------------------------------------- */

START_TEST(test_builtin_open_reports_dim_and_name)
{
    ck_assert_uint_eq(bcd_embedder_dim(emb), 516);
    ck_assert_str_eq(bcd_embedder_name(emb), "builtin-v1");
    ck_assert_ptr_null(bcd_ctx_last_error(ctx));
}
END_TEST

START_TEST(test_builtin_open_is_the_default_model)
{
    bcd_embedder *e = NULL;
    ck_assert_int_eq(bcd_embedder_open(&e, ctx, NULL), BCD_OK);
    ck_assert_str_eq(bcd_embedder_name(e), "builtin-v1");
    bcd_embedder_free(e);
}
END_TEST

START_TEST(test_builtin_open_rejects_unknown_model)
{
    bcd_embedder *e = NULL;
    ck_assert_int_eq(bcd_embedder_open(&e, ctx, "no-such-model-xyz.pt"), BCD_ENOTFOUND);
    ck_assert_ptr_null(e);
    const bcd_error *err = bcd_ctx_last_error(ctx);
    ck_assert_ptr_nonnull(err);
    ck_assert_int_eq(bcd_error_status(err), BCD_ENOTFOUND);
    ck_assert_str_eq(bcd_error_code(err), "model_not_found");
}
END_TEST

START_TEST(test_builtin_embed_is_deterministic_unit_length_and_finite)
{
    static struct scene sc;
    make_scene(&sc, 7, 8, 0);
    struct photo p = plain_photo();
    float *a = embed_photo(&sc, &p);
    float *b = embed_photo(&sc, &p);
    size_t n = bcd_embedder_dim(emb);
    ck_assert_mem_eq(a, b, n * sizeof *a);
    double n2 = 0;
    for (size_t i = 0; i < n; i++) {
        ck_assert(isfinite(a[i]));
        n2 += (double)a[i] * a[i];
    }
    ck_assert_double_eq_tol(n2, 1.0, 1e-5);

    /* a second embedder gives the same bits */
    bcd_embedder *e2 = NULL;
    ck_assert_int_eq(bcd_embedder_open(&e2, ctx, "builtin"), BCD_OK);
    float *t = malloc(BCD_TENSOR_LEN * sizeof *t);
    ck_assert_ptr_nonnull(t);
    take_photo(t, &sc, &p);
    ck_assert_int_eq(bcd_embedder_embed(e2, b, t, 1), BCD_OK);
    ck_assert_mem_eq(a, b, n * sizeof *a);
    bcd_embedder_free(e2);
    free(t);
    free(a);
    free(b);
}
END_TEST

START_TEST(test_builtin_embed_batch_equals_singles)
{
    enum { BATCH = 3 };
    static struct scene sc;
    make_scene(&sc, 11, 12, 1);
    size_t dim = bcd_embedder_dim(emb);
    float *t = malloc(BATCH * BCD_TENSOR_LEN * sizeof *t);
    float *batch = malloc(BATCH * dim * sizeof *batch);
    float *single = malloc(dim * sizeof *single);
    ck_assert_ptr_nonnull(t);
    ck_assert_ptr_nonnull(batch);
    ck_assert_ptr_nonnull(single);
    for (int i = 0; i < BATCH; i++) {
        struct photo p = plain_photo();
        p.ox = i * 4;
        p.spot_area = i == 1 ? 0.02 : 0.0;
        p.spot_x = p.spot_y = 100;
        p.spot_mul[0] = p.spot_mul[1] = p.spot_mul[2] = 0.5;
        take_photo(t + (size_t)i * BCD_TENSOR_LEN, &sc, &p);
    }
    ck_assert_int_eq(bcd_embedder_embed(emb, batch, t, BATCH), BCD_OK);
    for (int i = 0; i < BATCH; i++) {
        ck_assert_int_eq(bcd_embedder_embed(emb, single, t + (size_t)i * BCD_TENSOR_LEN, 1), BCD_OK);
        ck_assert_mem_eq(single, batch + (size_t)i * dim, dim * sizeof *single);
    }
    free(t);
    free(batch);
    free(single);
}
END_TEST

START_TEST(test_builtin_embed_of_constant_image_is_defined)
{
    size_t dim = bcd_embedder_dim(emb);
    float *t = malloc(BCD_TENSOR_LEN * sizeof *t);
    float *v = malloc(dim * sizeof *v);
    float *w = malloc(dim * sizeof *w);
    ck_assert_ptr_nonnull(t);
    ck_assert_ptr_nonnull(v);
    ck_assert_ptr_nonnull(w);
    for (size_t i = 0; i < BCD_TENSOR_LEN; i++)
        t[i] = 0.3f;
    ck_assert_int_eq(bcd_embedder_embed(emb, v, t, 1), BCD_OK);
    for (size_t i = 0; i < BCD_TENSOR_LEN; i++)
        t[i] = -2.5f; /* below 0 after un-normalizing: clamped black */
    ck_assert_int_eq(bcd_embedder_embed(emb, w, t, 1), BCD_OK);
    /* no content: same descriptor whatever the colour, and never a zero vector */
    ck_assert_double_eq_tol(distance(v, w), 0.0, 1e-6);
    free(t);
    free(v);
    free(w);
}
END_TEST

START_TEST(test_builtin_embed_rejects_bad_arguments)
{
    size_t dim = bcd_embedder_dim(emb);
    float *t = calloc(BCD_TENSOR_LEN, sizeof *t);
    float *v = malloc(dim * sizeof *v);
    ck_assert_ptr_nonnull(t);
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(bcd_embedder_embed(emb, v, t, 0), BCD_EINVAL);
    ck_assert_int_eq(bcd_embedder_embed(emb, NULL, t, 1), BCD_EINVAL);
    ck_assert_int_eq(bcd_embedder_embed(emb, v, NULL, 1), BCD_EINVAL);
    t[1234] = NAN;
    ck_assert_int_eq(bcd_embedder_embed(emb, v, t, 1), BCD_EINVAL);
    ck_assert_str_eq(bcd_error_code(bcd_ctx_last_error(ctx)), "not_finite");
    t[1234] = INFINITY;
    ck_assert_int_eq(bcd_embedder_embed(emb, v, t, 1), BCD_EINVAL);
    t[1234] = 0.0f;
    ck_assert_int_eq(bcd_embedder_embed(emb, v, t, 1), BCD_OK);
    ck_assert_ptr_null(bcd_ctx_last_error(ctx));
    free(t);
    free(v);
}
END_TEST

/* Measured behaviour: local skin changes move the distance far more than the nuisances
 * of re-taking the photo. */
static void check_change_outweighs_nuisances(int outline)
{
    static struct scene sc, sc_noise;
    make_scene(&sc, 2024, 99, outline);
    make_scene(&sc_noise, 2024, 12345, outline); /* same skin, new sensor noise */
    const char *what = outline ? "skin + outline" : "skin";
    struct photo base = plain_photo();
    float *vb = embed_photo(&sc, &base);

    struct {
        const char *name;
        const struct scene *sc;
        struct photo p;
    } nuisance[] = {
        { "exposure x1.2, cooler white balance", &sc, { 3, 3, { 1.2 * 0.95, 1.2, 1.2 * 1.08 }, 0, 0, 0, { 1, 1, 1 } } },
        { "exposure x0.8, warmer white balance", &sc, { 3, 3, { 0.8 * 1.08, 0.8, 0.8 * 0.9 }, 0, 0, 0, { 1, 1, 1 } } },
        { "shift 3 px right", &sc, { 6, 3, { 1, 1, 1 }, 0, 0, 0, { 1, 1, 1 } } },
        { "shift 3 px left, 2 px down", &sc, { 0, 5, { 1, 1, 1 }, 0, 0, 0, { 1, 1, 1 } } },
        { "shift 7 px (3%) down", &sc, { 3, 10, { 1, 1, 1 }, 0, 0, 0, { 1, 1, 1 } } },
        { "new sensor noise", &sc_noise, { 3, 3, { 1, 1, 1 }, 0, 0, 0, { 1, 1, 1 } } },
        { "all of exposure, shift, noise", &sc_noise, { 6, 1, { 1.15 * 0.96, 1.15, 1.15 * 1.05 }, 0, 0, 0, { 1, 1, 1 } } },
    };
    struct {
        const char *name;
        struct photo p;
        double margin; /* must exceed the worst nuisance this many times */
    } change[] = {
        { "dark spot 2%", { 3, 3, { 1, 1, 1 }, 140, 90, 0.02, { 0.55, 0.45, 0.42 } }, 10 },
        { "dark spot 2%, other place", { 3, 3, { 1, 1, 1 }, 95, 160, 0.02, { 0.55, 0.45, 0.42 } }, 10 },
        { "red patch 2%", { 3, 3, { 1, 1, 1 }, 100, 120, 0.02, { 1.0, 0.80, 0.84 } }, 10 },
        { "dark spot 0.5%", { 3, 3, { 1, 1, 1 }, 120, 60, 0.005, { 0.55, 0.45, 0.42 } }, 3 },
        { "dark spot 5%", { 3, 3, { 1, 1, 1 }, 110, 110, 0.05, { 0.55, 0.45, 0.42 } }, 10 },
    };
    double worst = 0;
    for (size_t i = 0; i < sizeof nuisance / sizeof nuisance[0]; i++) {
        float *v = embed_photo(nuisance[i].sc, &nuisance[i].p);
        double d = distance(vb, v);
        fprintf(stderr, "builtin: %s: nuisance %-38s distance %.5f\n", what, nuisance[i].name, d);
        if (d > worst)
            worst = d;
        free(v);
    }
    for (size_t i = 0; i < sizeof change / sizeof change[0]; i++) {
        float *v = embed_photo(&sc, &change[i].p);
        double d = distance(vb, v);
        fprintf(stderr, "builtin: %s: change   %-38s distance %.5f (%.1fx worst nuisance)\n", what,
                change[i].name, d, d / worst);
        ck_assert_msg(d > change[i].margin * worst, "%s: %s %.5f not > %g x worst nuisance %.5f", what,
                      change[i].name, d, change[i].margin, worst);
        free(v);
    }

    /* an enlarged spot: a 1% mole grown to 2% */
    struct photo before = change[0].p, after = change[0].p;
    before.spot_area = 0.01;
    float *v1 = embed_photo(&sc, &before);
    float *v2 = embed_photo(&sc, &after);
    before.ox = 6; /* the same mole photographed 3 px apart */
    before.spot_x -= 3;
    float *v3 = embed_photo(&sc, &before);
    double grown = distance(v1, v2), moved = distance(v1, v3);
    fprintf(stderr, "builtin: %s: mole 1%% -> 2%% distance %.5f; same mole shifted 3 px %.5f\n", what, grown,
            moved);
    ck_assert_msg(grown > 3.0 * moved, "grown %.5f vs shifted %.5f", grown, moved);
    free(v1);
    free(v2);
    free(v3);
    free(vb);
}

START_TEST(test_builtin_local_change_outweighs_nuisances)
{
    check_change_outweighs_nuisances(0);
}
END_TEST

START_TEST(test_builtin_local_change_outweighs_nuisances_near_an_outline)
{
    check_change_outweighs_nuisances(1);
}
END_TEST

START_TEST(test_builtin_embed_is_fast)
{
    enum { REPS = 20 };
    size_t dim = bcd_embedder_dim(emb);
    static struct scene sc;
    make_scene(&sc, 5, 6, 1);
    struct photo p = plain_photo();
    float *t = malloc(BCD_TENSOR_LEN * sizeof *t);
    float *v = malloc(dim * sizeof *v);
    ck_assert_ptr_nonnull(t);
    ck_assert_ptr_nonnull(v);
    take_photo(t, &sc, &p);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < REPS; i++)
        ck_assert_int_eq(bcd_embedder_embed(emb, v, t, 1), BCD_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = ((t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6) / REPS;
    /* informative only: sanitizer and debug builds are much slower */
    fprintf(stderr, "builtin: %.3f ms per tensor\n", ms);
    free(t);
    free(v);
}
END_TEST

static Suite *builtin_suite(void)
{
    Suite *s = suite_create("builtin");
    TCase *tc = tcase_create("builtin");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_builtin_open_reports_dim_and_name);
    tcase_add_test(tc, test_builtin_open_is_the_default_model);
    tcase_add_test(tc, test_builtin_open_rejects_unknown_model);
    tcase_add_test(tc, test_builtin_embed_is_deterministic_unit_length_and_finite);
    tcase_add_test(tc, test_builtin_embed_batch_equals_singles);
    tcase_add_test(tc, test_builtin_embed_of_constant_image_is_defined);
    tcase_add_test(tc, test_builtin_embed_rejects_bad_arguments);
    tcase_add_test(tc, test_builtin_local_change_outweighs_nuisances);
    tcase_add_test(tc, test_builtin_local_change_outweighs_nuisances_near_an_outline);
    tcase_add_test(tc, test_builtin_embed_is_fast);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(builtin_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
