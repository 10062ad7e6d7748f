/* Tests of the lesions (lib/detect/spots.c, register.c, lesion.c; bcd/lesion.h): spots on
 * drawn scenes, hairs and shadow edges, registration under similarity, perspective and
 * smooth deformation, ids over three checks, every lesion state, colour maths. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bcd/lesion.h"
#include "detect/lesion_internal.h"

static bcd_ctx *ctx;

static void setup(void)
{
    ck_assert_int_eq(bcd_ctx_new(&ctx), BCD_OK);
}

static void teardown(void)
{
    bcd_ctx_free(ctx);
    ctx = NULL;
}

/* ---- drawn scenes ---------------------------------------------------------------- */

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s;
}

static double urand(uint32_t *s)
{
    return (lcg(s) >> 8) / 16777216.0;
}

/* A spot of the world: centre, diameter (pixels of the photo it is drawn in) and how much
 * light it keeps at its centre (per channel, multiplicative). */
struct dot {
    double x, y, d;
    double keep[3];
    /* a second colour over a disc of radius sub_r centred (sub_dx, sub_dy) from the
     * centre, keeping keep2 instead (sub_r 0: none) */
    double sub_r, sub_dx, sub_dy;
    double keep2[3];
};

/* The peak-to-peak amplitude of the pixel noise of scene() (0-255 units). */
static double g_noise = 6.0;

/* Skin of one colour with a gentle gradient and pixel noise, spots drawn with a soft edge
 * (a disc blurred over ~1.5 px), a light factor over the whole photo. */
static bcd_image *scene(int w, int h, const struct dot *dots, int n, double light, uint32_t seed)
{
    bcd_image *img = calloc(1, sizeof *img);
    ck_assert_ptr_nonnull(img);
    img->width = (uint32_t)w;
    img->height = (uint32_t)h;
    img->channels = 3;
    img->data = malloc((size_t)w * h * 3);
    ck_assert_ptr_nonnull(img->data);
    static const double skin[3] = { 205, 155, 125 };
    float *mul = malloc((size_t)w * h * 3 * sizeof *mul);
    ck_assert_ptr_nonnull(mul);
    for (size_t i = 0; i < (size_t)w * h * 3; i++)
        mul[i] = 1.0f;
    for (int k = 0; k < n; k++) {
        const struct dot *d = &dots[k];
        double r = d->d / 2;
        int x0 = (int)floor(d->x - r - 4), x1 = (int)ceil(d->x + r + 4);
        int y0 = (int)floor(d->y - r - 4), y1 = (int)ceil(d->y + r + 4);
        for (int y = y0 < 0 ? 0 : y0; y <= y1 && y < h; y++)
            for (int x = x0 < 0 ? 0 : x0; x <= x1 && x < w; x++) {
                double dist = hypot(x - d->x, y - d->y);
                double a = 1.0 / (1.0 + exp((dist - r) / 0.6)); /* soft edge */
                double b = d->sub_r > 0
                               ? 1.0 / (1.0 + exp((hypot(x - d->x - d->sub_dx, y - d->y - d->sub_dy) - d->sub_r) / 0.6))
                               : 0.0;
                for (int c = 0; c < 3; c++) {
                    double keep = b > 0 ? d->keep[c] + b * (d->keep2[c] - d->keep[c]) : d->keep[c];
                    mul[((size_t)y * w + x) * 3 + c] *= (float)(1.0 - a * (1.0 - keep));
                }
            }
    }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) {
                size_t i = ((size_t)y * w + x) * 3 + c;
                double v = skin[c] * light * (0.92 + 0.08 * x / w) * mul[i] + (urand(&seed) - 0.5) * g_noise;
                img->data[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : lround(v));
            }
    free(mul);
    return img;
}

/* n moles at random places (a margin from the edges), diameters in [dmin, dmax]. */
static void random_dots(struct dot *dots, int n, int w, int h, double dmin, double dmax, uint32_t seed)
{
    for (int k = 0; k < n; k++) {
        struct dot *d = &dots[k];
        memset(d, 0, sizeof *d);
        bool ok;
        do {
            d->x = 0.1 * w + 0.8 * w * urand(&seed);
            d->y = 0.1 * h + 0.8 * h * urand(&seed);
            ok = true;
            for (int j = 0; j < k; j++)
                if (hypot(dots[j].x - d->x, dots[j].y - d->y) < 4 * dmax)
                    ok = false;
        } while (!ok);
        d->d = dmin + (dmax - dmin) * urand(&seed);
        double dark = 0.35 + 0.3 * urand(&seed);
        d->keep[0] = dark + 0.1;
        d->keep[1] = dark;
        d->keep[2] = dark - 0.05;
    }
}

/* A place at least 70 px from every dot (and from each shifted by dx), inside the middle
 * of a w x h frame. */
static void free_place(const struct dot *dots, int n, int w, int h, double dx, double *x, double *y, uint32_t seed)
{
    for (;;) {
        *x = 0.2 * w + 0.6 * w * urand(&seed);
        *y = 0.2 * h + 0.6 * h * urand(&seed);
        bool ok = true;
        for (int k = 0; k < n && ok; k++)
            ok = hypot(dots[k].x - *x, dots[k].y - *y) > 70 && hypot(dots[k].x + dx - *x, dots[k].y - *y) > 70;
        if (ok)
            return;
    }
}

/* The dots seen through a mapping: centre mapped, diameter by the local scale. */
typedef void (*mapping)(double x, double y, double *u, double *v);

static void map_dots(struct dot *out, const struct dot *in, int n, mapping f)
{
    for (int k = 0; k < n; k++) {
        out[k] = in[k];
        f(in[k].x, in[k].y, &out[k].x, &out[k].y);
        double ax, ay, bx, by;
        f(in[k].x + 1, in[k].y, &ax, &ay);
        f(in[k].x, in[k].y, &bx, &by);
        out[k].d = in[k].d * hypot(ax - bx, ay - by);
    }
}

static void free_img(bcd_image *img)
{
    if (img) {
        free(img->data);
        free(img);
    }
}

/* The lesion of r whose previous (or current) centre is nearest (x, y), within tol; NULL
 * if none. */
static const bcd_lesion *nearest(const bcd_lesion_result *r, double x, double y, double tol, bool previous)
{
    const bcd_lesion *best = NULL;
    for (size_t i = 0; i < bcd_lesion_result_count(r); i++) {
        const bcd_lesion *l = bcd_lesion_result_get(r, i);
        double d = previous ? hypot(l->prev_x - x, l->prev_y - y) : hypot(l->x - x, l->y - y);
        if (isfinite(d) && d <= tol) {
            best = l;
            tol = d;
        }
    }
    return best;
}

static const bcd_lesion *by_previous(const bcd_lesion_result *r, double x, double y, double tol)
{
    return nearest(r, x, y, tol, true);
}

static const bcd_lesion *by_current(const bcd_lesion_result *r, double x, double y, double tol)
{
    return nearest(r, x, y, tol, false);
}

/* ---- spots ----------------------------------------------------------------------- */

START_TEST(test_spots_found_with_their_size)
{
    struct dot dots[12];
    random_dots(dots, 12, 900, 700, 8, 30, 7);
    bcd_image *img = scene(900, 700, dots, 12, 1.0, 1);
    bcd__spotmap m;
    ck_assert_int_eq(bcd__spots_find(&m, img, 0, 0, 0), BCD_OK);
    ck_assert_uint_eq(m.n, 12);
    for (int k = 0; k < 12; k++) {
        const bcd__spot *best = NULL;
        for (size_t i = 0; i < m.n; i++)
            if (hypot(m.spots[i].x - dots[k].x, m.spots[i].y - dots[k].y) < 2.0)
                best = &m.spots[i];
        ck_assert_msg(best, "spot %d at (%.0f, %.0f) not found", k, dots[k].x, dots[k].y);
        /* the half-darkness outline of a soft disc is the disc: within a pixel and 12 % */
        ck_assert_msg(fabs(best->diameter - dots[k].d) <= 1.5 + 0.12 * dots[k].d, "diameter %.1f for %.1f",
                      best->diameter, dots[k].d);
        ck_assert(best->contrast > 0.3);
        ck_assert(best->lab[0] < best->skin_lab[0]);
        ck_assert(best->irregularity < 1.6);
        ck_assert(best->asymmetry < 0.25);
    }
    bcd__spotmap_clear(&m);
    free_img(img);
}
END_TEST

START_TEST(test_spots_reject_hairs_and_shadow_edges)
{
    int w = 800, h = 600;
    struct dot mole = { 600, 420, 20, { 0.45, 0.35, 0.3 } };
    bcd_image *img = scene(w, h, &mole, 1, 1.0, 2);
    /* a hair: a dark curved line two pixels wide; a shadow: the left third 45 % darker
     * behind a soft edge */
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double hx = 200 + 120 * sin(y / 150.0);
            double hair = fabs(x - hx) < 1.0 && y > 100 && y < 500 ? 0.35 : 1.0;
            double shade = 1.0 - 0.45 / (1.0 + exp((x - 420.0) / 6.0));
            for (int c = 0; c < 3; c++) {
                uint8_t *p = &img->data[((size_t)y * w + x) * 3 + c];
                *p = (uint8_t)lround(*p * hair * shade);
            }
        }
    bcd__spotmap m;
    ck_assert_int_eq(bcd__spots_find(&m, img, 0, 0, 0), BCD_OK);
    ck_assert_uint_ge(m.n, 1);
    for (size_t i = 0; i < m.n; i++)
        ck_assert_msg(hypot(m.spots[i].x - mole.x, m.spots[i].y - mole.y) < 3.0,
                      "a spot at (%.0f, %.0f) that is no mole", m.spots[i].x, m.spots[i].y);
    bcd__spotmap_clear(&m);
    free_img(img);
}
END_TEST

START_TEST(test_spots_on_dark_grainy_skin)
{
    /* dark skin (or skin in shade) with the grain of a phone's sensor: its ln G spreads more
     * than bright skin's, and it is still skin, its moles still found */
    struct dot dots[10];
    random_dots(dots, 10, 900, 700, 12, 24, 17);
    for (int k = 0; k < 10; k++)
        for (int c = 0; c < 3; c++)
            dots[k].keep[c] = 0.4;
    g_noise = 24.0;
    bcd_image *img = scene(900, 700, dots, 10, 0.35, 8);
    g_noise = 6.0;
    bcd__spotmap m;
    ck_assert_int_eq(bcd__spots_find(&m, img, 0, 0, 0), BCD_OK);
    ck_assert_msg(m.skin_fraction > 0.8, "skin fraction %.2f", m.skin_fraction);
    int found = 0;
    for (int k = 0; k < 10; k++)
        for (size_t i = 0; i < m.n; i++)
            if (hypot(m.spots[i].x - dots[k].x, m.spots[i].y - dots[k].y) < 3.0) {
                found++;
                break;
            }
    ck_assert_int_eq(found, 10);
    bcd__spotmap_clear(&m);
    free_img(img);
}
END_TEST

START_TEST(test_spots_too_dark_for_pigment_rejected)
{
    /* a mole keeps a fifth of the light at most; a gap or a fold's shadow that keeps 3 %
     * is no spot */
    struct dot dots[2] = { { 250, 300, 24, { 0.25, 0.2, 0.18 } }, { 600, 350, 24, { 0.03, 0.03, 0.03 } } };
    bcd_image *img = scene(900, 700, dots, 2, 1.0, 9);
    bcd__spotmap m;
    ck_assert_int_eq(bcd__spots_find(&m, img, 0, 0, 0), BCD_OK);
    ck_assert_uint_eq(m.n, 1);
    ck_assert(hypot(m.spots[0].x - 250, m.spots[0].y - 300) < 2.0);
    bcd__spotmap_clear(&m);
    free_img(img);
}
END_TEST

/* ---- registration ---------------------------------------------------------------- */

static double g_a, g_b, g_tx, g_ty, g_p, g_amp;

/* similarity about the origin, then a gentle perspective and a smooth bend */
static void warp(double x, double y, double *u, double *v)
{
    double X = g_a * x - g_b * y + g_tx, Y = g_b * x + g_a * y + g_ty;
    double wgt = 1.0 + g_p * x;
    X /= wgt;
    Y /= wgt;
    X += g_amp * sin(y / 230.0);
    Y += g_amp * cos(x / 270.0);
    *u = X;
    *v = Y;
}

/* n dots seen in a previous photo, then through warp(): how many are matched to
 * themselves, and the largest position error of those. */
static void check_registration(double rot_deg, double scale, double persp, double amp, int n, double min_rate)
{
    int w = 1000, h = 800;
    double th = rot_deg * M_PI / 180.0;
    g_a = scale * cos(th);
    g_b = scale * sin(th);
    g_tx = 500 - (g_a * 500 - g_b * 400);
    g_ty = 400 - (g_b * 500 + g_a * 400);
    g_p = persp;
    g_amp = amp;
    struct dot *dots = malloc((size_t)n * sizeof *dots), *moved = malloc((size_t)n * sizeof *moved);
    ck_assert_ptr_nonnull(dots);
    ck_assert_ptr_nonnull(moved);
    random_dots(dots, n, w, h, 6, 16, 11);
    map_dots(moved, dots, n, warp);
    bcd_image *prev = scene(w, h, dots, n, 1.0, 3), *cur = scene(w, h, moved, n, 0.8, 4);
    bcd_lesion_result *r = NULL;
    ck_assert_int_eq(bcd_lesion_compare(&r, ctx, cur, prev, NULL), BCD_OK);
    ck_assert_int_eq(bcd_lesion_result_status(r), BCD_LESION_COMPARED);
    int inside = 0, ok = 0;
    for (int k = 0; k < n; k++) {
        if (moved[k].x < 40 || moved[k].y < 40 || moved[k].x > w - 40 || moved[k].y > h - 40)
            continue;
        inside++;
        const bcd_lesion *l = by_previous(r, dots[k].x, dots[k].y, 2.0);
        if (l && l->state == BCD_LESION_MATCHED && hypot(l->x - moved[k].x, l->y - moved[k].y) < 2.5)
            ok++;
    }
    ck_assert_msg(inside >= n / 2, "the test moved too many dots out of the frame");
    ck_assert_msg(ok >= min_rate * inside, "rot %.0f scale %.2f persp %g amp %.0f: %d of %d matched", rot_deg,
                  scale, persp, amp, ok, inside);
    /* unchanged skin: nothing flagged */
    ck_assert_uint_eq(bcd_lesion_result_changed(r), 0);
    bcd_lesion_result_free(r);
    free_img(prev);
    free_img(cur);
    free(dots);
    free(moved);
}

START_TEST(test_register_similarity)
{
    check_registration(12.0, 1.10, 0.0, 0.0, 40, 0.95);
    check_registration(-20.0, 0.88, 0.0, 0.0, 40, 0.95);
}
END_TEST

START_TEST(test_register_perspective_and_bend)
{
    /* a camera tilt (one side ~10 % larger) and a smooth bend of up to 12 px */
    check_registration(6.0, 1.0, 1e-4, 12.0, 45, 0.9);
}
END_TEST

START_TEST(test_register_few_moles_among_uneven_faint_spots)
{
    /* five moles far apart, and in each photo its own faint spots (found in one photo and
     * not the other, as under shadow bands or a change of blur): the strongest spots'
     * neighbourhoods differ between the photos, the moles still move together */
    int w = 1000, h = 800, nm = 5, nf = 90;
    struct dot m[5], mm[5], *a = calloc((size_t)(nm + nf), sizeof *a), *b = calloc((size_t)(nm + nf), sizeof *b);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    random_dots(m, nm, w, h, 14, 18, 61);
    double th = 5.0 * M_PI / 180.0;
    g_a = 1.04 * cos(th);
    g_b = 1.04 * sin(th);
    g_tx = 500 - (g_a * 500 - g_b * 400) + 25;
    g_ty = 400 - (g_b * 500 + g_a * 400) - 15;
    g_p = 0;
    g_amp = 4.0;
    map_dots(mm, m, nm, warp);
    memcpy(a, m, sizeof m);
    memcpy(b, mm, sizeof mm);
    uint32_t seed = 71;
    for (int k = 0; k < nf; k++) {
        struct dot *f[2] = { &a[nm + k], &b[nm + k] };
        for (int q = 0; q < 2; q++) {
            f[q]->x = 30 + (w - 60) * urand(&seed);
            f[q]->y = 30 + (h - 60) * urand(&seed);
            f[q]->d = 5 + 5 * urand(&seed);
            double keep = 0.72 + 0.1 * urand(&seed);
            for (int c = 0; c < 3; c++)
                f[q]->keep[c] = keep;
        }
    }
    bcd_image *prev = scene(w, h, a, nm + nf, 1.0, 5), *cur = scene(w, h, b, nm + nf, 0.85, 6);
    bcd_lesion_result *r = NULL;
    ck_assert_int_eq(bcd_lesion_compare(&r, ctx, cur, prev, NULL), BCD_OK);
    ck_assert_int_eq(bcd_lesion_result_status(r), BCD_LESION_COMPARED);
    int ok = 0;
    for (int k = 0; k < nm; k++) {
        const bcd_lesion *l = by_previous(r, m[k].x, m[k].y, 2.0);
        if (l && l->state == BCD_LESION_MATCHED && hypot(l->x - mm[k].x, l->y - mm[k].y) < 2.5)
            ok++;
    }
    ck_assert_msg(ok == nm, "%d of %d moles matched", ok, nm);
    bcd_lesion_result_free(r);
    free_img(prev);
    free_img(cur);
    free(a);
    free(b);
}
END_TEST

START_TEST(test_patch_agreement_tells_a_right_mapping_from_a_wrong_one)
{
    /* faint spots all over (a freckled skin), the current photo the previous one moved by
     * (40, -25): through that shift the skin around a place lies over the previous photo's;
     * through a shift 30 px off, it does not */
    int w = 900, h = 700, n = 160;
    struct dot *a = calloc((size_t)n, sizeof *a), *b = calloc((size_t)n, sizeof *b);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    uint32_t seed = 91;
    for (int k = 0; k < n; k++) {
        a[k].x = w * urand(&seed);
        a[k].y = h * urand(&seed);
        a[k].d = 5 + 6 * urand(&seed);
        double keep = 0.6 + 0.2 * urand(&seed);
        for (int c = 0; c < 3; c++)
            a[k].keep[c] = keep;
        b[k] = a[k];
        b[k].x += 40;
        b[k].y -= 25;
    }
    bcd_image *prev = scene(w, h, a, n, 1.0, 3), *cur = scene(w, h, b, n, 0.9, 4);
    bcd__spotmap P, C;
    ck_assert_int_eq(bcd__spots_find(&P, prev, 0, 0, 0), BCD_OK);
    ck_assert_int_eq(bcd__spots_find(&C, cur, 0, 0, 0), BCD_OK);
    bcd__warp right = { .H = { 1, 0, -40, 0, 1, 25, 0, 0, 1 } }, wrong = { .H = { 1, 0, -10, 0, 1, 25, 0, 0, 1 } };
    double good = bcd__patch_agreement(&P, &C, &right, 450, 330, 80, 10);
    double bad = bcd__patch_agreement(&P, &C, &wrong, 450, 330, 80, 10);
    ck_assert_msg(good > 0.6, "right mapping: %.3f", good);
    ck_assert_msg(bad < 0.3, "wrong mapping: %.3f", bad);
    /* a window that leaves the photo has no answer */
    ck_assert(isnan(bcd__patch_agreement(&P, &C, &right, 20, 20, 80, 10)));
    bcd__spotmap_clear(&P);
    bcd__spotmap_clear(&C);
    free_img(prev);
    free_img(cur);
    free(a);
    free(b);
}
END_TEST

START_TEST(test_fit_homography_recovers_a_known_one)
{
    const double H[9] = { 1.05, 0.1, 12, -0.08, 0.97, -7, 2e-5, -1e-5, 1 };
    double sx[20], sy[20], dx[20], dy[20], G[9];
    uint32_t seed = 5;
    for (int i = 0; i < 20; i++) {
        sx[i] = 1000 * urand(&seed);
        sy[i] = 800 * urand(&seed);
        double w = H[6] * sx[i] + H[7] * sy[i] + H[8];
        dx[i] = (H[0] * sx[i] + H[1] * sy[i] + H[2]) / w;
        dy[i] = (H[3] * sx[i] + H[4] * sy[i] + H[5]) / w;
    }
    ck_assert(bcd__fit_homography(G, sx, sy, dx, dy, 20));
    for (int k = 0; k < 9; k++)
        ck_assert_double_eq_tol(G[k], H[k], 1e-6 + 1e-6 * fabs(H[k]));
    double s[4];
    ck_assert(bcd__fit_similarity(s, sx, sy, sx, sy, 20));
    ck_assert_double_eq_tol(s[0], 1.0, 1e-12);
    ck_assert_double_eq_tol(s[1], 0.0, 1e-12);
}
END_TEST

/* ---- states, ids, changes -------------------------------------------------------- */

START_TEST(test_states_new_gone_not_visible_matched)
{
    int w = 1000, h = 800, n = 40;
    struct dot dots[42];
    random_dots(dots, n, w, h, 8, 16, 21);
    /* previous: the n dots, and one more (index n) that will be gone; places clear of
     * the others in both photos */
    double gx, gy, nx, ny;
    free_place(dots, n, w, h, -120, &gx, &gy, 71);
    gx += 120; /* in the previous photo; it would be at gx - 120 now */
    dots[n] = (struct dot){ gx, gy, 18, { 0.3, 0.2, 0.18 } };
    free_place(dots, n + 1, w, h, -120, &nx, &ny, 72);
    bcd_image *prev = scene(w, h, dots, n + 1, 1.0, 5);
    /* current: the same skin shifted 120 px left (dots near the left edge leave the
     * frame), the gone one left out, a new one added */
    struct dot cur_dots[42];
    int m = 0;
    for (int k = 0; k < n; k++) {
        cur_dots[m] = dots[k];
        cur_dots[m].x -= 120;
        m++;
    }
    cur_dots[m++] = (struct dot){ nx, ny, 20, { 0.3, 0.2, 0.18 } };
    bcd_image *cur = scene(w, h, cur_dots, m, 1.0, 6);
    bcd_lesion_result *r = NULL;
    ck_assert_int_eq(bcd_lesion_compare(&r, ctx, cur, prev, NULL), BCD_OK);
    ck_assert_int_eq(bcd_lesion_result_status(r), BCD_LESION_COMPARED);
    const bcd_lesion *nw = by_current(r, nx, ny, 3);
    ck_assert_ptr_nonnull(nw);
    ck_assert_int_eq(nw->state, BCD_LESION_NEW);
    ck_assert(nw->changed);
    const bcd_lesion *gone = by_previous(r, gx, gy, 3);
    ck_assert_ptr_nonnull(gone);
    ck_assert_int_eq(gone->state, BCD_LESION_GONE);
    ck_assert_double_eq_tol(gone->x, gx - 120, 4);
    /* reported with its evidence, not flagged (see bcd/lesion.h) */
    ck_assert(!gone->changed);
    ck_assert_double_ge(gone->score, 0.5);
    int not_visible = 0, matched = 0;
    for (int k = 0; k < n; k++) {
        const bcd_lesion *l = by_previous(r, dots[k].x, dots[k].y, 2);
        ck_assert_msg(l != NULL, "dot %d at (%.1f, %.1f) d %.1f: no lesion", k, dots[k].x, dots[k].y, dots[k].d);
        if (dots[k].x - 120 < -dots[k].d) {
            ck_assert_int_eq(l->state, BCD_LESION_NOT_VISIBLE);
            not_visible++;
        } else if (dots[k].x - 120 > 40) {
            ck_assert_int_eq(l->state, BCD_LESION_MATCHED);
            ck_assert(!l->changed);
            matched++;
        }
    }
    ck_assert_int_gt(not_visible, 0);
    ck_assert_int_gt(matched, 20);
    ck_assert_uint_eq(bcd_lesion_result_changed(r), 1); /* the new one */
    bcd_lesion_result_free(r);
    free_img(prev);
    free_img(cur);
}
END_TEST

START_TEST(test_growth_and_darkening_are_changes)
{
    int w = 1000, h = 800, n = 40;
    struct dot dots[40], later[40];
    random_dots(dots, n, w, h, 10, 16, 31);
    memcpy(later, dots, sizeof dots);
    later[3].d = dots[3].d + 12;     /* grows */
    for (int c = 0; c < 3; c++)      /* darkens, same size */
        later[7].keep[c] = dots[7].keep[c] * 0.35;
    bcd_image *prev = scene(w, h, dots, n, 1.0, 8), *cur = scene(w, h, later, n, 1.15, 9);
    bcd_lesion_options o = BCD_LESION_OPTIONS_INIT;
    o.mm_per_px = 0.1;
    o.previous_mm_per_px = 0.1;
    bcd_lesion_result *r = NULL;
    ck_assert_int_eq(bcd_lesion_compare(&r, ctx, cur, prev, &o), BCD_OK);
    const bcd_lesion *g = by_previous(r, dots[3].x, dots[3].y, 2);
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(g->state, BCD_LESION_MATCHED);
    ck_assert(g->changed);
    ck_assert(g->has_change);
    ck_assert_double_eq_tol(g->change.diameter_mm, 1.2, 0.4);
    ck_assert(g->change.area_pct > 50);
    const bcd_lesion *k = by_previous(r, dots[7].x, dots[7].y, 2);
    ck_assert_ptr_nonnull(k);
    ck_assert(k->changed);
    ck_assert(k->change.darkening > 0.3);
    ck_assert(fabs(k->change.diameter_px) < 3);
    ck_assert_uint_eq(bcd_lesion_result_changed(r), 2);
    /* sizes in mm where the scale is known */
    ck_assert_double_eq_tol(g->diameter_mm, later[3].d * 0.1, 0.3);
    bcd_lesion_result_free(r);
    free_img(prev);
    free_img(cur);
}
END_TEST

START_TEST(test_second_colour_is_a_change)
{
    /* one mole gains a blue-grey part over a third of it, at the same size and about the
     * same mean darkness; the light changes between the photos */
    int w = 1000, h = 800, n = 40;
    struct dot dots[40], later[40];
    random_dots(dots, n, w, h, 18, 26, 41);
    memcpy(later, dots, sizeof dots);
    struct dot *m = &later[5];
    m->sub_r = 0.3 * m->d;
    m->sub_dx = 0.15 * m->d;
    m->sub_dy = -0.1 * m->d;
    m->keep2[0] = m->keep[0] * 0.45;
    m->keep2[1] = m->keep[1] * 0.75;
    m->keep2[2] = fmin(1.0, m->keep[2] * 1.5);
    bcd_image *prev = scene(w, h, dots, n, 1.0, 12), *cur = scene(w, h, later, n, 0.9, 13);
    bcd_lesion_result *r = NULL;
    ck_assert_int_eq(bcd_lesion_compare(&r, ctx, cur, prev, NULL), BCD_OK);
    ck_assert_int_eq(bcd_lesion_result_status(r), BCD_LESION_COMPARED);
    const bcd_lesion *l = by_previous(r, dots[5].x, dots[5].y, 2);
    ck_assert_ptr_nonnull(l);
    ck_assert_int_eq(l->state, BCD_LESION_MATCHED);
    ck_assert(l->change.judged);
    ck_assert(fabs(l->change.diameter_px) < 3);
    ck_assert(l->change.part_delta_e > 8);
    ck_assert(l->change.second_colour);
    ck_assert(l->changed);
    /* the others: laid over each other, their parts unchanged */
    int compared = 0;
    for (int k = 0; k < n; k++) {
        if (k == 5)
            continue;
        const bcd_lesion *o = by_previous(r, dots[k].x, dots[k].y, 2);
        ck_assert_ptr_nonnull(o);
        if (isfinite(o->change.part_delta_e)) {
            compared++;
            ck_assert_msg(o->change.part_delta_e < 4, "mole %d: part %.2f", k, o->change.part_delta_e);
        }
        ck_assert(!o->change.second_colour);
    }
    ck_assert_int_ge(compared, 30);
    ck_assert_uint_eq(bcd_lesion_result_changed(r), 1);
    bcd_lesion_result_free(r);
    free_img(prev);
    free_img(cur);
}
END_TEST

START_TEST(test_changed_past_recognition_keeps_its_id)
{
    /* a small mole grows to five times its width (28 times its area): too unlike to be
     * re-found as the same spot, it is still the lesion at that place (its id, matched,
     * changed), not a gone one and a new one */
    int w = 1000, h = 800, n = 40;
    struct dot dots[40], later[40];
    random_dots(dots, n, w, h, 12, 18, 53);
    dots[9].d = 6.5;
    for (int c = 0; c < 3; c++)
        dots[9].keep[c] = 0.3;
    memcpy(later, dots, sizeof dots);
    later[9].d = 34;
    bcd_image *prev = scene(w, h, dots, n, 1.0, 14), *cur = scene(w, h, later, n, 1.0, 15);
    bcd_lesion_result *r = NULL;
    ck_assert_int_eq(bcd_lesion_compare(&r, ctx, cur, prev, NULL), BCD_OK);
    const bcd_lesion *l = by_previous(r, dots[9].x, dots[9].y, 3);
    ck_assert_ptr_nonnull(l);
    ck_assert_int_eq(l->state, BCD_LESION_MATCHED);
    ck_assert(l->changed);
    ck_assert(l->change.area_pct > 300);
    /* no other lesion at that place */
    for (size_t i = 0; i < bcd_lesion_result_count(r); i++) {
        const bcd_lesion *o = bcd_lesion_result_get(r, i);
        if (o != l)
            ck_assert(!(hypot(o->x - later[9].x, o->y - later[9].y) < 20 && o->state == BCD_LESION_NEW));
    }
    ck_assert_uint_eq(bcd_lesion_result_changed(r), 1);
    bcd_lesion_result_free(r);
    free_img(prev);
    free_img(cur);
}
END_TEST

START_TEST(test_not_judged_says_why)
{
    /* the same skin, the right half of the current photo under a shadow that keeps 30 % of
     * the light with a sharp edge: its lesions are matched, measured, and not judged
     * because the light differs; the left half's are judged */
    int w = 1000, h = 800, n = 40;
    struct dot dots[40];
    random_dots(dots, n, w, h, 10, 16, 31);
    bcd_image *prev = scene(w, h, dots, n, 1.0, 11), *cur = scene(w, h, dots, n, 1.0, 12);
    for (int y = 0; y < h; y++)
        for (int x = w / 2; x < w; x++)
            for (int c = 0; c < 3; c++) {
                uint8_t *p = &cur->data[((size_t)y * w + x) * 3 + c];
                *p = (uint8_t)lround(*p * 0.3);
            }
    bcd_lesion_result *r = NULL;
    ck_assert_int_eq(bcd_lesion_compare(&r, ctx, cur, prev, NULL), BCD_OK);
    ck_assert_int_eq(bcd_lesion_result_status(r), BCD_LESION_COMPARED);
    int lit = 0, shaded = 0;
    for (size_t i = 0; i < bcd_lesion_result_count(r); i++) {
        const bcd_lesion *l = bcd_lesion_result_get(r, i);
        if (l->state != BCD_LESION_MATCHED || !l->has_change || fabs(l->x - w / 2) < 60 || l->x < 60 ||
            l->x > w - 60 || l->y < 60 || l->y > h - 60)
            continue;
        const char *why = bcd_lesion_result_not_judged(r, i);
        if (l->x > w / 2) {
            ck_assert_msg(why && strcmp(why, "light_differs") == 0, "lesion at (%.0f, %.0f): %s", l->x, l->y,
                          why ? why : "judged");
            ck_assert(!l->change.judged);
            shaded++;
        } else {
            ck_assert_msg(!why, "lesion at (%.0f, %.0f) not judged: %s", l->x, l->y, why);
            lit++;
        }
    }
    ck_assert_int_gt(lit, 5);
    ck_assert_int_gt(shaded, 5);
    ck_assert_uint_eq(bcd_lesion_result_changed(r), 0);
    ck_assert_ptr_null(bcd_lesion_result_not_judged(r, bcd_lesion_result_count(r)));
    ck_assert_ptr_null(bcd_lesion_result_not_judged(NULL, 0));
    char *js = NULL;
    ck_assert_int_eq(bcd_lesion_result_json(&js, r), BCD_OK);
    ck_assert_ptr_nonnull(strstr(js, "\"not_judged\":\"light_differs\""));
    bcd_free(js);
    bcd_lesion_result_free(r);
    free_img(prev);
    free_img(cur);
}
END_TEST

START_TEST(test_ids_carried_over_three_checks)
{
    int w = 900, h = 700, n = 35;
    struct dot a[36], b[36], c[36];
    random_dots(a, n, w, h, 8, 16, 41);
    /* check 2: shifted and rotated a little; check 3: shifted back, one new spot */
    g_a = cos(0.05);
    g_b = sin(0.05);
    g_tx = 20;
    g_ty = -15;
    g_p = 0;
    g_amp = 0;
    map_dots(b, a, n, warp);
    memcpy(c, a, sizeof a);
    c[n] = (struct dot){ 450, 350, 18, { 0.3, 0.2, 0.2 } };
    bcd_image *i1 = scene(w, h, a, n, 1.0, 10), *i2 = scene(w, h, b, n, 0.9, 11), *i3 = scene(w, h, c, n + 1, 1.1, 12);
    bcd_lesion_result *r1 = NULL, *r2 = NULL, *r3 = NULL;
    ck_assert_int_eq(bcd_lesion_find(&r1, ctx, i1, NULL), BCD_OK);
    ck_assert_int_eq(bcd_lesion_result_status(r1), BCD_LESION_FIRST);
    ck_assert_uint_eq(bcd_lesion_result_count(r1), (size_t)n);
    /* the next check gets the ids and centres of this one */
    bcd_lesion_ref refs[64];
    size_t nr = 0;
    for (size_t i = 0; i < bcd_lesion_result_count(r1); i++) {
        const bcd_lesion *l = bcd_lesion_result_get(r1, i);
        refs[nr++] = (bcd_lesion_ref){ l->id, l->x, l->y };
    }
    bcd_lesion_options o = BCD_LESION_OPTIONS_INIT;
    o.previous = refs;
    o.nprevious = nr;
    ck_assert_int_eq(bcd_lesion_compare(&r2, ctx, i2, i1, &o), BCD_OK);
    bcd_lesion_ref refs2[64];
    size_t nr2 = 0;
    for (size_t i = 0; i < bcd_lesion_result_count(r2); i++) {
        const bcd_lesion *l = bcd_lesion_result_get(r2, i);
        if (isfinite(l->x))
            refs2[nr2++] = (bcd_lesion_ref){ l->id, l->x, l->y };
    }
    o.previous = refs2;
    o.nprevious = nr2;
    ck_assert_int_eq(bcd_lesion_compare(&r3, ctx, i3, i2, &o), BCD_OK);
    int same = 0;
    for (int k = 0; k < n; k++) {
        const bcd_lesion *l1 = by_current(r1, a[k].x, a[k].y, 2), *l2 = by_current(r2, b[k].x, b[k].y, 2),
                         *l3 = by_current(r3, c[k].x, c[k].y, 2);
        ck_assert_ptr_nonnull(l1);
        ck_assert_ptr_nonnull(l2);
        ck_assert_ptr_nonnull(l3);
        same += l1->id == l2->id && l2->id == l3->id;
    }
    ck_assert_int_ge(same, n - 1);
    const bcd_lesion *nw = by_current(r3, 450, 350, 3);
    ck_assert_ptr_nonnull(nw);
    ck_assert_int_eq(nw->state, BCD_LESION_NEW);
    ck_assert_uint_gt(nw->id, bcd_lesion_result_max_id(r1)); /* never an id used before */
    bcd_lesion_result_free(r1);
    bcd_lesion_result_free(r2);
    bcd_lesion_result_free(r3);
    free_img(i1);
    free_img(i2);
    free_img(i3);
}
END_TEST

START_TEST(test_unrelated_photos_are_not_comparable)
{
    struct dot a[30], b[30];
    random_dots(a, 30, 900, 700, 8, 16, 51);
    random_dots(b, 30, 900, 700, 8, 16, 52);
    bcd_image *i1 = scene(900, 700, a, 30, 1.0, 13), *i2 = scene(900, 700, b, 30, 1.0, 14);
    bcd_lesion_result *r = NULL;
    ck_assert_int_eq(bcd_lesion_compare(&r, ctx, i2, i1, NULL), BCD_OK);
    ck_assert_int_eq(bcd_lesion_result_status(r), BCD_LESION_NOT_COMPARABLE);
    ck_assert(strlen(bcd_lesion_result_reason(r)) > 10);
    ck_assert_uint_eq(bcd_lesion_result_changed(r), 0);
    ck_assert(isnan(bcd_lesion_result_score(r)));
    bcd_lesion_result_free(r);
    free_img(i1);
    free_img(i2);
}
END_TEST

/* Skin crowded with faint spots (grain, pores, the mottling of dark skin) and a few moles:
 * n faint dots of 4-7 px after the moles. */
static void crowded(struct dot *dots, int nmoles, int nfaint, int w, int h, uint32_t seed)
{
    random_dots(dots, nmoles, w, h, 10, 18, seed);
    for (int k = nmoles; k < nmoles + nfaint; k++) {
        struct dot *d = &dots[k];
        memset(d, 0, sizeof *d);
        d->x = 4 + (w - 8) * urand(&seed);
        d->y = 4 + (h - 8) * urand(&seed);
        d->d = 4 + 3 * urand(&seed);
        for (int c = 0; c < 3; c++)
            d->keep[c] = 0.72 + 0.08 * urand(&seed);
    }
}

START_TEST(test_crowded_unrelated_photos_are_not_comparable)
{
    /* where a wrong mapping meets a faint spot near every place it sends one, matching
     * many spots is not enough: the registration must match clearly more than chance */
    enum { NM = 8, NF = 900 };
    static struct dot a[NM + NF], b[NM + NF], c[NM + NF];
    crowded(a, NM, NF, 900, 700, 61);
    crowded(b, NM, NF, 900, 700, 62);
    bcd_image *i1 = scene(900, 700, a, NM + NF, 1.0, 15), *i2 = scene(900, 700, b, NM + NF, 1.0, 16);
    bcd_lesion_result *r = NULL;
    ck_assert_int_eq(bcd_lesion_compare(&r, ctx, i2, i1, NULL), BCD_OK);
    ck_assert_msg(bcd_lesion_result_status(r) == BCD_LESION_NOT_COMPARABLE, "compared, %zu changed",
                  bcd_lesion_result_changed(r));
    ck_assert_uint_eq(bcd_lesion_result_changed(r), 0);
    bcd_lesion_result_free(r);
    /* the same crowded skin seen again, turned and moved: registered, its moles matched */
    g_a = 0.98 * cos(0.05);
    g_b = 0.98 * sin(0.05);
    g_tx = 20;
    g_ty = -12;
    g_p = g_amp = 0;
    map_dots(c, a, NM + NF, warp);
    bcd_image *i3 = scene(900, 700, c, NM + NF, 1.0, 17);
    ck_assert_int_eq(bcd_lesion_compare(&r, ctx, i3, i1, NULL), BCD_OK);
    ck_assert_int_eq(bcd_lesion_result_status(r), BCD_LESION_COMPARED);
    int matched = 0;
    for (int k = 0; k < NM; k++) {
        const bcd_lesion *l = by_current(r, c[k].x, c[k].y, 3.0);
        matched += l && l->state == BCD_LESION_MATCHED && hypot(l->prev_x - a[k].x, l->prev_y - a[k].y) < 3.0;
    }
    ck_assert_int_ge(matched, NM - 1);
    bcd_lesion_result_free(r);
    free_img(i1);
    free_img(i2);
    free_img(i3);
}
END_TEST

START_TEST(test_spots_found_where_red_is_clipped)
{
    /* fair skin in bright light: the red channel clips over the whole skin, green does not;
     * the moles (found in green) are found, compared, and their colour not judged */
    struct dot dots[10], moved[10];
    random_dots(dots, 10, 900, 700, 12, 24, 23);
    bcd_image *img = scene(900, 700, dots, 10, 1.35, 9);
    size_t clipped = 0;
    for (size_t i = 0; i < (size_t)900 * 700; i++)
        clipped += img->data[3 * i] == 255 && img->data[3 * i + 1] < 250;
    ck_assert_uint_gt(clipped, 900u * 700u / 2);
    bcd__spotmap m;
    ck_assert_int_eq(bcd__spots_find(&m, img, 0, 0, 0), BCD_OK);
    int found = 0;
    for (int k = 0; k < 10; k++)
        for (size_t i = 0; i < m.n; i++)
            if (hypot(m.spots[i].x - dots[k].x, m.spots[i].y - dots[k].y) < 3.0) {
                found++;
                break;
            }
    ck_assert_int_eq(found, 10);
    bcd__spotmap_clear(&m);
    g_a = 1.0;
    g_b = 0;
    g_tx = 15;
    g_ty = 10;
    g_p = g_amp = 0;
    map_dots(moved, dots, 10, warp);
    bcd_image *img2 = scene(900, 700, moved, 10, 1.35, 10);
    bcd_lesion_result *r = NULL;
    ck_assert_int_eq(bcd_lesion_compare(&r, ctx, img2, img, NULL), BCD_OK);
    ck_assert_int_eq(bcd_lesion_result_status(r), BCD_LESION_COMPARED);
    int matched = 0;
    for (size_t i = 0; i < bcd_lesion_result_count(r); i++) {
        const bcd_lesion *l = bcd_lesion_result_get(r, i);
        if (l->state != BCD_LESION_MATCHED)
            continue;
        matched++;
        ck_assert(!l->changed);
        const char *why = bcd_lesion_result_not_judged(r, i);
        ck_assert_msg(why && !strcmp(why, "near_clipping"), "judged or %s", why ? why : "(null)");
    }
    ck_assert_int_eq(matched, 10);
    bcd_lesion_result_free(r);
    free_img(img);
    free_img(img2);
}
END_TEST

START_TEST(test_misplaced_mole_keeps_its_id)
{
    /* the skin under one mole moved 30 px against all the others (a bend the mapping does
     * not follow): where the mapping cannot be checked around it, the mole that stood out in
     * both photos, alike in size and darkness, is the same lesion; matched, not judged */
    struct dot a[12], b[12];
    random_dots(a, 12, 900, 700, 12, 20, 71);
    /* mole 0 alone in a corner, nothing around it to check the mapping by */
    a[0].x = 70;
    a[0].y = 75;
    for (int k = 1; k < 12; k++)
        if (hypot(a[k].x - 70, a[k].y - 75) < 260) {
            a[k].x = 450 + 30 * k;
            a[k].y = 600 - 20 * k;
        }
    memcpy(b, a, sizeof a);
    b[0].x += 30;
    b[0].y -= 8;
    bcd_image *i1 = scene(900, 700, a, 12, 1.0, 21), *i2 = scene(900, 700, b, 12, 1.0, 22);
    bcd_lesion_result *r = NULL;
    ck_assert_int_eq(bcd_lesion_compare(&r, ctx, i2, i1, NULL), BCD_OK);
    ck_assert_int_eq(bcd_lesion_result_status(r), BCD_LESION_COMPARED);
    size_t at = bcd_lesion_result_count(r);
    for (size_t i = 0; i < bcd_lesion_result_count(r); i++) {
        const bcd_lesion *l = bcd_lesion_result_get(r, i);
        if (isfinite(l->x) && hypot(l->x - b[0].x, l->y - b[0].y) < 3.0)
            at = i;
    }
    ck_assert_uint_lt(at, bcd_lesion_result_count(r));
    const bcd_lesion *l = bcd_lesion_result_get(r, at);
    ck_assert_str_eq(bcd_lesion_state_name(l->state), "matched");
    ck_assert(hypot(l->prev_x - a[0].x, l->prev_y - a[0].y) < 3.0);
    ck_assert(!l->changed);
    ck_assert_str_eq(bcd_lesion_result_not_judged(r, at), "far_from_mapping");
    /* one lesion for it: no "gone" left at its previous place */
    for (size_t i = 0; i < bcd_lesion_result_count(r); i++) {
        const bcd_lesion *o = bcd_lesion_result_get(r, i);
        ck_assert(i == at || !(isfinite(o->prev_x) && hypot(o->prev_x - a[0].x, o->prev_y - a[0].y) < 3.0));
    }
    bcd_lesion_result_free(r);
    free_img(i1);
    free_img(i2);
}
END_TEST

START_TEST(test_api_arguments_and_json)
{
    struct dot a[5];
    random_dots(a, 5, 400, 300, 8, 12, 61);
    bcd_image *img = scene(400, 300, a, 5, 1.0, 15);
    bcd_lesion_result *r = NULL;
    bcd_lesion_options bad = BCD_LESION_OPTIONS_INIT;
    bad.version = 99;
    ck_assert_int_eq(bcd_lesion_find(&r, ctx, img, &bad), BCD_EINVAL);
    bad.version = BCD_LESION_OPTIONS_VERSION;
    bad.mm_per_px = -1;
    ck_assert_int_eq(bcd_lesion_find(&r, ctx, img, &bad), BCD_EINVAL);
    ck_assert_int_eq(bcd_lesion_find(NULL, ctx, img, NULL), BCD_EINVAL);
    ck_assert_int_eq(bcd_lesion_compare(&r, ctx, img, NULL, NULL), BCD_EINVAL);
    ck_assert_ptr_null(r);
    ck_assert_int_eq(bcd_lesion_find(&r, ctx, img, NULL), BCD_OK);
    char *js = NULL;
    ck_assert_int_eq(bcd_lesion_result_json(&js, r), BCD_OK);
    ck_assert_ptr_nonnull(strstr(js, "\"status\":\"first\""));
    ck_assert_ptr_nonnull(strstr(js, "\"lesions\":[{\"id\":1,\"state\":\"new\""));
    bcd_free(js);
    ck_assert_ptr_null(bcd_lesion_result_get(r, 1000));
    ck_assert_str_eq(bcd_lesion_state_name(BCD_LESION_NOT_VISIBLE), "not_visible");
    double h[9];
    ck_assert_int_eq(bcd_lesion_result_homography(r, h), BCD_EINVAL);
    ck_assert_uint_eq(bcd_lesion_result_count(NULL), 0);
    bcd_lesion_result_free(r);
    bcd_lesion_result_free(NULL);
    free_img(img);
}
END_TEST

START_TEST(test_delta_e2000_reference_pairs)
{
    /* pairs and values from the CIEDE2000 paper's test data */
    static const double pairs[][7] = {
        { 50.0, 2.6772, -79.7751, 50.0, 0.0, -82.7485, 2.0425 },
        { 50.0, -1.3802, -84.2814, 50.0, 0.0, -82.7485, 1.0000 },
        { 50.0, 2.5, 0.0, 50.0, 0.0, -2.5, 4.3065 },
        { 60.2574, -34.0099, 36.2677, 60.4626, -34.1751, 39.4387, 1.2644 },
        { 22.7233, 20.0904, -46.6940, 23.0331, 14.9730, -42.5619, 2.0373 },
    };
    for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++)
        ck_assert_double_eq_tol(bcd__delta_e2000(pairs[i], pairs[i] + 3), pairs[i][6], 1e-4);
    double white[3] = { 1, 1, 1 }, lab[3];
    bcd__linear_to_lab(white, lab);
    ck_assert_double_eq_tol(lab[0], 100.0, 1e-3);
    ck_assert_double_eq_tol(lab[1], 0.0, 1e-2);
    ck_assert_double_eq_tol(lab[2], 0.0, 1e-2);
}
END_TEST

static Suite *lesion_suite(void)
{
    Suite *s = suite_create("lesion");
    TCase *tc = tcase_create("spots");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_spots_found_with_their_size);
    tcase_add_test(tc, test_spots_reject_hairs_and_shadow_edges);
    tcase_add_test(tc, test_spots_on_dark_grainy_skin);
    tcase_add_test(tc, test_spots_found_where_red_is_clipped);
    tcase_add_test(tc, test_spots_too_dark_for_pigment_rejected);
    tcase_add_test(tc, test_delta_e2000_reference_pairs);
    suite_add_tcase(s, tc);

    tc = tcase_create("register");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_register_similarity);
    tcase_add_test(tc, test_register_perspective_and_bend);
    tcase_add_test(tc, test_register_few_moles_among_uneven_faint_spots);
    tcase_add_test(tc, test_fit_homography_recovers_a_known_one);
    tcase_add_test(tc, test_patch_agreement_tells_a_right_mapping_from_a_wrong_one);
    tcase_add_test(tc, test_unrelated_photos_are_not_comparable);
    tcase_add_test(tc, test_crowded_unrelated_photos_are_not_comparable);
    suite_add_tcase(s, tc);

    tc = tcase_create("lesions");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_states_new_gone_not_visible_matched);
    tcase_add_test(tc, test_growth_and_darkening_are_changes);
    tcase_add_test(tc, test_second_colour_is_a_change);
    tcase_add_test(tc, test_changed_past_recognition_keeps_its_id);
    tcase_add_test(tc, test_misplaced_mole_keeps_its_id);
    tcase_add_test(tc, test_not_judged_says_why);
    tcase_add_test(tc, test_ids_carried_over_three_checks);
    tcase_add_test(tc, test_api_arguments_and_json);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(lesion_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
