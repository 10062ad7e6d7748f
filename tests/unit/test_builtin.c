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
    ck_assert_str_eq(bcd_embedder_name(emb), "builtin-v2");
    ck_assert_ptr_null(bcd_ctx_last_error(ctx));
}
END_TEST

START_TEST(test_builtin_open_is_the_default_model)
{
    bcd_embedder *e = NULL;
    ck_assert_int_eq(bcd_embedder_open(&e, ctx, NULL), BCD_OK);
    ck_assert_str_eq(bcd_embedder_name(e), "builtin-v2");
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
 * of re-taking the photo (this scene is not equalized: its texture is faint). */
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
        double margin, floor; /* must exceed margin x the worst nuisance, and floor */
    } change[] = {
        { "dark spot 2%", { 3, 3, { 1, 1, 1 }, 140, 90, 0.02, { 0.55, 0.45, 0.42 } }, 100, 0.2 },
        { "dark spot 2%, other place", { 3, 3, { 1, 1, 1 }, 95, 160, 0.02, { 0.55, 0.45, 0.42 } }, 100, 0.2 },
        { "red patch 2%", { 3, 3, { 1, 1, 1 }, 100, 120, 0.02, { 1.0, 0.80, 0.84 } }, 50, 0.05 },
        { "dark spot 0.5%", { 3, 3, { 1, 1, 1 }, 120, 60, 0.005, { 0.55, 0.45, 0.42 } }, 50, 0.05 },
        { "dark spot 5%", { 3, 3, { 1, 1, 1 }, 110, 110, 0.05, { 0.55, 0.45, 0.42 } }, 100, 0.2 },
        { "red patch 5%", { 3, 3, { 1, 1, 1 }, 110, 110, 0.05, { 1.0, 0.80, 0.84 } }, 50, 0.05 },
        /* too large for the rings: only the lightly weighted tint and contrast maps see it */
        { "red patch 12%", { 3, 3, { 1, 1, 1 }, 110, 110, 0.12, { 1.0, 0.80, 0.84 } }, 4, 0.003 },
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
    ck_assert_msg(worst < 0.002, "%s: worst nuisance %.5f", what, worst);
    for (size_t i = 0; i < sizeof change / sizeof change[0]; i++) {
        float *v = embed_photo(&sc, &change[i].p);
        double d = distance(vb, v);
        fprintf(stderr, "builtin: %s: change   %-38s distance %.5f (%.1fx worst nuisance)\n", what,
                change[i].name, d, d / worst);
        ck_assert_msg(d > change[i].margin * worst && d > change[i].floor,
                      "%s: %s %.5f not > %g x worst nuisance %.5f and > %g", what, change[i].name, d,
                      change[i].margin, worst, change[i].floor);
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
    ck_assert_msg(grown > 4.0 * moved, "grown %.5f vs shifted %.5f", grown, moved);
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

/* ---- a realistic equalized scene ---------------------------------------------------
 * Modelled on the bundled example (examples/make_examples.py), at half its size: a
 * 300x400 photo of a skin-coloured ellipse with shading blotches and fine mottling on a
 * dark blue-grey background, with small moles, run through the real preprocessing
 * (histogram equalization of Y, centre crop, resize to 224). Equalization stretches the
 * narrow range of skin tones, so the skin comes out strongly mottled, and turns the
 * smooth background into bands: the texture that drowned the spots of builtin-v1. */

#define RW 300
#define RH 400
#define MAX_MOLES 10

struct lattice {
    int cell, nx, ny;
    float v[96 * 128];
};

struct real_scene {
    struct lattice low, fine, bg; /* blotches (40 px), mottling (4 px), background (50 px) */
    double cx, cy, ax, ay;        /* the body ellipse */
    int nmoles;
    double mole[MAX_MOLES][4]; /* x, y, radius, opacity */
};

static void lattice_init(struct lattice *l, int cell, uint32_t *s)
{
    l->cell = cell;
    l->nx = (RW + 16) / cell + 3;
    l->ny = (RH + 16) / cell + 3;
    ck_assert_int_le(l->nx * l->ny, (int)(sizeof l->v / sizeof l->v[0]));
    for (int i = 0; i < l->nx * l->ny; i++)
        l->v[i] = (float)lcg_unit(s);
}

/* Smooth value noise in [-1, 1) at scene point (x, y), x and y > -8. */
static double lattice_at(const struct lattice *l, double x, double y)
{
    double u = (x + 8) / l->cell, v = (y + 8) / l->cell;
    int i = (int)u, j = (int)v;
    double a = u - i, b = v - j;
    a = a * a * (3 - 2 * a);
    b = b * b * (3 - 2 * b);
    const float *r0 = l->v + j * l->nx, *r1 = r0 + l->nx;
    return (1 - a) * (1 - b) * r0[i] + a * (1 - b) * r0[i + 1] + (1 - a) * b * r1[i] + a * b * r1[i + 1];
}

static void make_real_scene(struct real_scene *sc, uint32_t seed)
{
    uint32_t s = seed;
    lattice_init(&sc->low, 40, &s);
    lattice_init(&sc->fine, 4, &s);
    lattice_init(&sc->bg, 50, &s);
    sc->cx = RW / 2.0 + 10 * lcg_unit(&s);
    sc->cy = RH / 2.0 + 8 * lcg_unit(&s);
    sc->ax = RW * 0.34;
    sc->ay = RH * 0.46;
    /* mole 0 is the one that grows; the new spot comes at (0.45 RW, 0.55 RH) */
    sc->nmoles = 7;
    sc->mole[0][0] = 0.64 * RW;
    sc->mole[0][1] = 0.42 * RH;
    sc->mole[0][2] = 3.5;
    sc->mole[0][3] = 0.55;
    for (int m = 1; m < sc->nmoles; m++) {
        double x, y;
        do { /* inside the body and the centre crop, away from the changes */
            x = RW * (0.5 + 0.3 * lcg_unit(&s));
            y = RH * (0.5 + 0.3 * lcg_unit(&s));
        } while (hypot((x - sc->cx) / sc->ax, (y - sc->cy) / sc->ay) > 0.85 || fabs(y - RH / 2.0) > 125 ||
                 hypot(x - 0.45 * RW, y - 0.55 * RH) < 30 || hypot(x - 0.64 * RW, y - 0.42 * RH) < 25);
        sc->mole[m][0] = x;
        sc->mole[m][1] = y;
        sc->mole[m][2] = 2.5 + 1.5 * (lcg_unit(&s) + 1);
        sc->mole[m][3] = 0.45 + 0.125 * (lcg_unit(&s) + 1);
    }
}

struct real_photo {
    double dx, dy;   /* the scene is seen shifted by (dx, dy) px */
    double gain[3];  /* exposure x white balance */
    uint32_t noise;  /* seed of the sensor noise */
    int grown;       /* mole 0 has grown to 3x its radius and darkened */
    double spot_r;   /* radius of a new dark spot at (0.45 RW, 0.55 RH); 0: none */
};

static struct real_photo real_plain(void)
{
    struct real_photo p = { 0, 0, { 1, 1, 1 }, 77, 0, 0 };
    return p;
}

/* Render the photo, preprocess it as the library does, embed it. */
static float *embed_real(const struct real_scene *sc, const struct real_photo *p)
{
    static const double tone[3] = { 190, 146, 119 }, back[3] = { 70, 80, 95 }, mole[3] = { 95, 60, 45 };
    bcd_image img = { RW, RH, 3, malloc((size_t)RW * RH * 3) };
    ck_assert_ptr_nonnull(img.data);
    double moles[MAX_MOLES + 1][4];
    int n = sc->nmoles;
    memcpy(moles, sc->mole, sizeof sc->mole);
    if (p->grown) {
        moles[0][2] *= 3.0;
        moles[0][3] = fmin(0.9, moles[0][3] + 0.25);
    }
    if (p->spot_r > 0) {
        moles[n][0] = 0.45 * RW;
        moles[n][1] = 0.55 * RH;
        moles[n][2] = p->spot_r;
        moles[n][3] = 0.85;
        n++;
    }
    uint32_t ns = p->noise;
    for (int y = 0; y < RH; y++)
        for (int x = 0; x < RW; x++) {
            double sx = x + p->dx, sy = y + p->dy;
            double e = hypot((sx - sc->cx) / sc->ax, (sy - sc->cy) / sc->ay);
            double w = (1.0 - e) * sc->ax / 2.0 + 0.5; /* ~2 px soft outline */
            w = w < 0 ? 0 : w > 1 ? 1 : w;
            double shade = 1.0 + 0.10 * lattice_at(&sc->low, sx, sy) + 0.035 * lattice_at(&sc->fine, sx, sy);
            double bgv = 12.0 * lattice_at(&sc->bg, sx, sy);
            double v[3];
            for (int c = 0; c < 3; c++)
                v[c] = w * (tone[c] * shade + 3.5 * lcg_unit(&ns)) + (1 - w) * (back[c] + bgv);
            for (int m = 0; m < n; m++) {
                double d = hypot(sx - moles[m][0], sy - moles[m][1]);
                double a = (moles[m][2] - d) / 0.75 + 0.5;
                if (a <= 0)
                    continue;
                a = (a > 1 ? 1 : a) * moles[m][3];
                for (int c = 0; c < 3; c++)
                    v[c] = v[c] * (1 - a) + mole[c] * a;
            }
            for (int c = 0; c < 3; c++) {
                double q = nearbyint(v[c] * p->gain[c]);
                img.data[((size_t)y * RW + x) * 3 + c] = (uint8_t)(q < 0 ? 0 : q > 255 ? 255 : q);
            }
        }
    float *t = malloc(BCD_TENSOR_LEN * sizeof *t);
    float *vec = malloc(bcd_embedder_dim(emb) * sizeof *vec);
    ck_assert_ptr_nonnull(t);
    ck_assert_ptr_nonnull(vec);
    ck_assert_int_eq(bcd_image_preprocess(t, BCD_TENSOR_LEN, &img), BCD_OK);
    ck_assert_int_eq(bcd_embedder_embed(emb, vec, t, 1), BCD_OK);
    free(img.data);
    free(t);
    return vec;
}

/* On the realistic scene, a new dark spot of ~0.5 % of the picture and a mole that has
 * grown move the distance far more than re-taking the photo does. */
START_TEST(test_builtin_spots_stand_out_on_an_equalized_mottled_scene)
{
    static struct real_scene sc;
    make_real_scene(&sc, 4242);
    struct real_photo base = real_plain();
    float *vb = embed_real(&sc, &base);

    struct {
        const char *name;
        struct real_photo p;
    } nuisance[] = {
        { "exposure x1.08, cooler white balance", { 0, 0, { 1.08 * 0.97, 1.08, 1.08 * 1.03 }, 77, 0, 0 } },
        { "exposure x0.92, warmer white balance", { 0, 0, { 0.92 * 1.03, 0.92, 0.92 * 0.97 }, 77, 0, 0 } },
        { "shift 3 px right", { 3, 0, { 1, 1, 1 }, 77, 0, 0 } },
        { "shift 2 px left, 3 px down", { -2, 3, { 1, 1, 1 }, 77, 0, 0 } },
        { "new sensor noise", { 0, 0, { 1, 1, 1 }, 78, 0, 0 } },
        { "all of exposure, shift, noise", { 2.5, -1.5, { 1.05 * 1.02, 1.05, 1.05 * 0.98 }, 79, 0, 0 } },
    };
    struct {
        const char *name;
        struct real_photo p;
        double margin, floor; /* must exceed margin x the worst nuisance and floor */
    } change[] = {
        { "new spot r 13 px (0.6%) and grown mole", { 1.5, 1, { 1.04, 1.0, 0.98 }, 80, 1, 13 }, 8, 0.005 },
        { "new spot r 13 px (0.6%)", { 1.5, 1, { 1.04, 1.0, 0.98 }, 80, 0, 13 }, 6, 0.004 },
        /* r 3.5 -> 10.5 px: a faint change on this texture, weaker than on the example */
        { "mole grown to 3x radius", { 1.5, 1, { 1.04, 1.0, 0.98 }, 80, 1, 0 }, 2, 0.001 },
    };
    double worst = 0;
    for (size_t i = 0; i < sizeof nuisance / sizeof nuisance[0]; i++) {
        float *v = embed_real(&sc, &nuisance[i].p);
        double d = distance(vb, v);
        fprintf(stderr, "builtin: equalized: nuisance %-38s distance %.5f\n", nuisance[i].name, d);
        if (d > worst)
            worst = d;
        free(v);
    }
    ck_assert_msg(worst < 0.0015, "worst nuisance %.5f", worst);
    for (size_t i = 0; i < sizeof change / sizeof change[0]; i++) {
        float *v = embed_real(&sc, &change[i].p);
        double d = distance(vb, v);
        fprintf(stderr, "builtin: equalized: change   %-38s distance %.5f (%.1fx worst nuisance)\n",
                change[i].name, d, d / worst);
        ck_assert_msg(d > change[i].margin * worst && d > change[i].floor,
                      "%s: %.5f not > %g x worst nuisance %.5f and > %g", change[i].name, d, change[i].margin,
                      worst, change[i].floor);
        free(v);
    }
    free(vb);
}
END_TEST

/* The bundled example (examples/data, made by examples/make_examples.py): between the
 * two checks only exposure, white balance, a shift of up to 6 px and JPEG change,
 * except at the `left` angle, where a mole grew and a new spot appeared. */
static float *embed_file(const char *path)
{
    bcd_image *img = NULL;
    if (bcd_image_decode_file(&img, ctx, path) != BCD_OK)
        return NULL;
    float *t = malloc(BCD_TENSOR_LEN * sizeof *t);
    float *v = malloc(bcd_embedder_dim(emb) * sizeof *v);
    ck_assert_ptr_nonnull(t);
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(bcd_image_preprocess(t, BCD_TENSOR_LEN, img), BCD_OK);
    ck_assert_int_eq(bcd_embedder_embed(emb, v, t, 1), BCD_OK);
    bcd_image_free(img);
    free(t);
    return v;
}

START_TEST(test_builtin_bundled_example_left_stands_out)
{
    static const char *const angles[] = { "front", "left", "right", "up", "down", "raised" };
    double d[6], worst = 0;
    for (int i = 0; i < 6; i++) {
        char p1[1024], p2[1024];
        snprintf(p1, sizeof p1, "%s/examples/data/check1/%s.jpg", BCD_SOURCE_DIR, angles[i]);
        snprintf(p2, sizeof p2, "%s/examples/data/check2/%s.jpg", BCD_SOURCE_DIR, angles[i]);
        float *a = embed_file(p1), *b = embed_file(p2);
        if (!a || !b) {
            fprintf(stderr, "builtin: example: %s missing, not checked\n", a ? p2 : p1);
            free(a);
            free(b);
            return;
        }
        d[i] = distance(a, b);
        fprintf(stderr, "builtin: example: %-6s distance %.5f\n", angles[i], d[i]);
        if (i != 1 && d[i] > worst)
            worst = d[i];
        free(a);
        free(b);
    }
    ck_assert_msg(d[1] > 5.0 * worst && d[1] > 0.02, "left %.5f vs other angles up to %.5f", d[1], worst);
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
    tcase_add_test(tc, test_builtin_spots_stand_out_on_an_equalized_mottled_scene);
    tcase_add_test(tc, test_builtin_bundled_example_left_stands_out);
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
