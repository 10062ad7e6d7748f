/* Tests of the detection layer (lib/detect): alignment, change map, quality gate, API. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bcd/detect.h"
#include "bcd/image.h"
#include "detect/detect_internal.h"

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

/* ---- synthetic scenes ------------------------------------------------------------ */

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s;
}

static double urand(uint32_t *s)
{
    return (lcg(s) >> 8) / 16777216.0;
}

/* approximately standard normal: sum of 4 uniforms, rescaled */
static double nrand(uint32_t *s)
{
    return (urand(s) + urand(s) + urand(s) + urand(s) - 2.0) * 1.7320508;
}

/* A float RGB scene (0..255) */
typedef struct scene {
    int w, h;
    float *px;
} scene;

static void scene_free(scene *s)
{
    free(s->px);
    s->px = NULL;
}

/* value noise of one octave: random values on a grid of `cell` px, smoothly interpolated */
static void add_octave(float *acc, int w, int h, int cell, double amp, uint32_t *seed)
{
    int gw = w / cell + 2, gh = h / cell + 2;
    double *g = malloc(sizeof(double) * (size_t)gw * gh);
    ck_assert_ptr_nonnull(g);
    for (int i = 0; i < gw * gh; i++)
        g[i] = urand(seed) * 2.0 - 1.0;
    for (int y = 0; y < h; y++) {
        double fy = (double)y / cell;
        int iy = (int)fy;
        double ty = fy - iy;
        ty = ty * ty * (3 - 2 * ty);
        for (int x = 0; x < w; x++) {
            double fx = (double)x / cell;
            int ix = (int)fx;
            double tx = fx - ix;
            tx = tx * tx * (3 - 2 * tx);
            double a = g[iy * gw + ix], b = g[iy * gw + ix + 1], c = g[(iy + 1) * gw + ix], d = g[(iy + 1) * gw + ix + 1];
            acc[(size_t)y * w + x] += (float)(amp * ((a + (b - a) * tx) * (1 - ty) + (c + (d - c) * tx) * ty));
        }
    }
    free(g);
}

/* Skin-coloured textured scene with a few dark spots: multi-scale luminance and chroma
 * variation, fine grain. */
static scene make_scene(int w, int h, uint32_t seed)
{
    scene s = { w, h, calloc((size_t)w * h * 3, sizeof(float)) };
    float *lum = calloc((size_t)w * h, sizeof(float)), *chr = calloc((size_t)w * h, sizeof(float));
    ck_assert(s.px && lum && chr);
    add_octave(lum, w, h, 96, 0.25, &seed);
    add_octave(lum, w, h, 24, 0.12, &seed);
    add_octave(lum, w, h, 6, 0.06, &seed);
    add_octave(lum, w, h, 2, 0.04, &seed);
    add_octave(chr, w, h, 48, 0.08, &seed);
    for (size_t i = 0; i < (size_t)w * h; i++) {
        double l = 1.0 + lum[i];
        s.px[3 * i] = (float)(175.0 * l * (1.0 + chr[i]));
        s.px[3 * i + 1] = (float)(128.0 * l * (1.0 - 0.5 * chr[i]));
        s.px[3 * i + 2] = (float)(104.0 * l);
    }
    for (int k = 0; k < 12; k++) {
        double cx = urand(&seed) * w, cy = urand(&seed) * h, r = 2.0 + 5.0 * urand(&seed);
        for (int y = (int)(cy - r - 2); y <= (int)(cy + r + 2); y++)
            for (int x = (int)(cx - r - 2); x <= (int)(cx + r + 2); x++) {
                if (x < 0 || y < 0 || x >= w || y >= h)
                    continue;
                double d = sqrt((x - cx) * (x - cx) + (y - cy) * (y - cy));
                double m = d < r ? 1.0 : d < r + 1.5 ? (r + 1.5 - d) / 1.5 : 0.0;
                float *p = s.px + 3 * ((size_t)y * w + x);
                p[0] *= (float)(1.0 - 0.55 * m);
                p[1] *= (float)(1.0 - 0.6 * m);
                p[2] *= (float)(1.0 - 0.6 * m);
            }
    }
    free(lum);
    free(chr);
    return s;
}

/* Darken a disc of the scene (a new spot) */
static void scene_spot(scene *s, double cx, double cy, double r, double factor)
{
    for (int y = (int)(cy - r - 3); y <= (int)(cy + r + 3); y++)
        for (int x = (int)(cx - r - 3); x <= (int)(cx + r + 3); x++) {
            if (x < 0 || y < 0 || x >= s->w || y >= s->h)
                continue;
            double d = sqrt((x - cx) * (x - cx) + (y - cy) * (y - cy));
            double m = d < r ? 1.0 : d < r + 2.0 ? (r + 2.0 - d) / 2.0 : 0.0;
            float *p = s->px + 3 * ((size_t)y * s->w + x);
            for (int c = 0; c < 3; c++)
                p[c] *= (float)(1.0 - (1.0 - factor * (c == 0 ? 1.1 : 0.9)) * m);
        }
}

/* A camera on the scene: image pixel x maps to scene point zoom^-1 R(rot) (x - c) * k +
 * centre + (tx, ty), k = scene px per image px at zoom 1. */
typedef struct cam {
    int w, h;
    double rot_deg, zoom, tx, ty;
    double gain[3];
    double noise;
} cam;

static void cam_to_scene(const cam *c, const scene *s, int fov_h, double x, double y, double *X, double *Y)
{
    double k = (double)fov_h / c->h / c->zoom;
    double th = c->rot_deg * M_PI / 180.0;
    double dx = x - (c->w - 1) * 0.5, dy = y - (c->h - 1) * 0.5;
    *X = k * (cos(th) * dx - sin(th) * dy) + (s->w - 1) * 0.5 + c->tx;
    *Y = k * (sin(th) * dx + cos(th) * dy) + (s->h - 1) * 0.5 + c->ty;
}

static void scene_to_cam(const cam *c, const scene *s, int fov_h, double X, double Y, double *x, double *y)
{
    double k = (double)fov_h / c->h / c->zoom;
    double th = c->rot_deg * M_PI / 180.0;
    double dx = (X - (s->w - 1) * 0.5 - c->tx) / k, dy = (Y - (s->h - 1) * 0.5 - c->ty) / k;
    *x = cos(th) * dx + sin(th) * dy + (c->w - 1) * 0.5;
    *y = -sin(th) * dx + cos(th) * dy + (c->h - 1) * 0.5;
}

/* Render a photo: bilinear sampling of the scene (the field of view is fov_h scene
 * rows tall at zoom 1), per-channel gain, additive noise. */
static bcd_image render(const scene *s, const cam *c, int fov_h, uint32_t seed)
{
    bcd_image img = { (uint32_t)c->w, (uint32_t)c->h, 3, malloc((size_t)c->w * c->h * 3) };
    ck_assert_ptr_nonnull(img.data);
    for (int y = 0; y < c->h; y++)
        for (int x = 0; x < c->w; x++) {
            double X, Y;
            cam_to_scene(c, s, fov_h, x, y, &X, &Y);
            if (X < 0)
                X = 0;
            if (Y < 0)
                Y = 0;
            if (X > s->w - 1.001)
                X = s->w - 1.001;
            if (Y > s->h - 1.001)
                Y = s->h - 1.001;
            int ix = (int)X, iy = (int)Y;
            double fx = X - ix, fy = Y - iy;
            for (int ch = 0; ch < 3; ch++) {
                const float *p = s->px + 3 * ((size_t)iy * s->w + ix) + ch;
                double v = (p[0] * (1 - fx) + p[3] * fx) * (1 - fy) + (p[3 * s->w] * (1 - fx) + p[3 * s->w + 3] * fx) * fy;
                v = v * c->gain[ch] + c->noise * nrand(&seed);
                img.data[3 * ((size_t)y * c->w + x) + ch] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : lround(v));
            }
        }
    return img;
}

static const cam CAM0 = { 640, 480, 0.0, 1.0, 0.0, 0.0, { 1.0, 1.0, 1.0 }, 1.0 };
#define SCENE_W 900
#define SCENE_H 700
#define FOV 480

/* Check the reported matrix against the true previous -> current map at a grid of points. */
static void assert_matrix(const bcd_detect_result *r, const scene *s, const cam *prev, const cam *cur, double tol)
{
    double m[6];
    ck_assert_int_eq(bcd_detect_result_matrix(r, m), BCD_OK);
    for (int i = 1; i <= 3; i++)
        for (int j = 1; j <= 3; j++) {
            double x = prev->w * i / 4.0, y = prev->h * j / 4.0, X, Y, tx, ty;
            cam_to_scene(prev, s, FOV, x, y, &X, &Y);
            scene_to_cam(cur, s, FOV, X, Y, &tx, &ty);
            double gx = m[0] * x + m[1] * y + m[2], gy = m[3] * x + m[4] * y + m[5];
            if (fabs(gx - tx) > tol || fabs(gy - ty) > tol)
                ck_abort_msg("point (%g, %g): got (%.3f, %.3f), want (%.3f, %.3f)", x, y, gx, gy, tx, ty);
        }
}

/* ---- alignment ------------------------------------------------------------------- */

static void check_alignment(double rot, double zoom, double tx, double ty, int cw, int ch)
{
    scene s = make_scene(SCENE_W, SCENE_H, 7);
    cam pc = CAM0, cc = CAM0;
    cc.rot_deg = rot;
    cc.zoom = zoom;
    cc.tx = tx;
    cc.ty = ty;
    cc.w = cw;
    cc.h = ch;
    cc.gain[0] = 1.15;
    cc.gain[1] = 1.1;
    cc.gain[2] = 1.02;
    bcd_image prev = render(&s, &pc, FOV, 1), cur = render(&s, &cc, FOV, 2);
    bcd_detect_result *r = NULL;
    ck_assert_int_eq(bcd_detect_compare(&r, ctx, &cur, &prev, NULL), BCD_OK);
    ck_assert_uint_eq(bcd_detect_result_flags(r) & BCD_DETECT_MISALIGNED, 0);
    /* a camera turned clockwise by rot sees the content turned counter-clockwise by rot,
     * and zoom times larger */
    ck_assert_double_eq_tol(bcd_detect_result_value(r, BCD_DETECT_ALIGN_ROTATION), rot, 0.2);
    ck_assert_double_eq_tol(bcd_detect_result_value(r, BCD_DETECT_ALIGN_SCALE), zoom, 0.004);
    ck_assert(bcd_detect_result_value(r, BCD_DETECT_ALIGN_SCORE) > 0.9);
    /* tolerance in current pixels: 0.5 px of a 640 px frame, scaled to the current size */
    assert_matrix(r, &s, &pc, &cc, 0.5 * cw / 640.0);
    bcd_detect_result_free(r);
    free(prev.data);
    free(cur.data);
    scene_free(&s);
}

START_TEST(test_detect_compare_recovers_translation)
{
    check_alignment(0.0, 1.0, 17.3, -9.6, 640, 480);
}
END_TEST

START_TEST(test_detect_compare_recovers_rotation_and_scale)
{
    check_alignment(2.7, 1.035, -6.2, 4.1, 640, 480);
    check_alignment(-4.5, 0.95, 12.0, 8.0, 640, 480);
}
END_TEST

START_TEST(test_detect_compare_recovers_large_transform_by_search)
{
    /* too far from the identity for it to fit: the pose search finds it */
    check_alignment(7.0, 1.06, 95.0, -62.0, 640, 480);
    check_alignment(-6.0, 0.94, -110.0, 40.0, 640, 480);
}
END_TEST

START_TEST(test_detect_compare_recovers_transform_across_resolutions)
{
    /* the current photo has 1.5x the pixels of the previous one */
    check_alignment(-1.8, 1.02, 9.0, -14.0, 960, 720);
}
END_TEST

/* ---- change map ------------------------------------------------------------------ */

START_TEST(test_detect_compare_finds_new_spot_in_its_cell)
{
    scene s = make_scene(SCENE_W, SCENE_H, 11), s2 = make_scene(SCENE_W, SCENE_H, 11);
    cam pc = CAM0, cc = CAM0;
    cc.rot_deg = 1.5;
    cc.zoom = 1.02;
    cc.tx = -8.0;
    cc.ty = 5.0;
    cc.gain[0] = 0.9;
    cc.gain[1] = 0.85;
    cc.gain[2] = 0.88;
    cc.noise = 2.0;
    /* a spot of ~1 % of the frame (radius 31 px in 640x480) */
    double sx, sy;
    cam_to_scene(&cc, &s2, FOV, 420.0, 170.0, &sx, &sy);
    scene_spot(&s2, sx, sy, 31.0, 0.55);
    bcd_image prev = render(&s, &pc, FOV, 3), cur = render(&s2, &cc, FOV, 4);
    bcd_detect_result *r = NULL;
    ck_assert_int_eq(bcd_detect_compare(&r, ctx, &cur, &prev, NULL), BCD_OK);
    ck_assert_uint_eq(bcd_detect_result_flags(r), 0);
    ck_assert(bcd_detect_result_value(r, BCD_DETECT_LOCAL_CHANGE) > 0.9);
    size_t n = 0;
    const bcd_detect_region *g = bcd_detect_result_regions(r, &n);
    ck_assert_uint_ge(n, 1);
    /* the strongest region is the spot: its box holds the spot, not much more */
    ck_assert(g[0].x <= 420 - 25 && g[0].x + g[0].width >= 420 + 25);
    ck_assert(g[0].y <= 170 - 25 && g[0].y + g[0].height >= 170 + 25);
    ck_assert_uint_le(g[0].width, 90);
    ck_assert_uint_le(g[0].height, 90);
    ck_assert(g[0].score > 0.9);
    /* the strongest cell is the one holding the spot's centre */
    uint32_t cols = 0, rows = 0;
    const float *cells = bcd_detect_result_cells(r, &cols, &rows);
    ck_assert_ptr_nonnull(cells);
    ck_assert_uint_eq(cols, 16);
    ck_assert_uint_eq(rows, 12);
    size_t best = 0;
    for (size_t i = 1; i < (size_t)cols * rows; i++)
        if (cells[i] > cells[best])
            best = i;
    ck_assert_uint_eq(best % cols, 420 * cols / 640);
    ck_assert_uint_eq(best / cols, 170 * rows / 480);
    bcd_detect_result_free(r);
    free(prev.data);
    free(cur.data);
    scene_free(&s);
    scene_free(&s2);
}
END_TEST

START_TEST(test_detect_compare_ignores_pure_nuisance)
{
    scene s = make_scene(SCENE_W, SCENE_H, 13);
    cam pc = CAM0, cc = CAM0;
    cc.rot_deg = -2.5;
    cc.zoom = 0.97;
    cc.tx = 11.0;
    cc.ty = -7.0;
    cc.gain[0] = 1.2;
    cc.gain[1] = 1.12;
    cc.gain[2] = 1.05;
    cc.noise = 3.0;
    cc.w = 800;
    cc.h = 600;
    bcd_image prev = render(&s, &pc, FOV, 5), cur = render(&s, &cc, FOV, 6);
    bcd_detect_result *r = NULL;
    ck_assert_int_eq(bcd_detect_compare(&r, ctx, &cur, &prev, NULL), BCD_OK);
    ck_assert_uint_eq(bcd_detect_result_flags(r), 0);
    ck_assert(bcd_detect_result_value(r, BCD_DETECT_LOCAL_CHANGE) < 0.1);
    size_t n = 0;
    const bcd_detect_region *g = bcd_detect_result_regions(r, &n);
    for (size_t i = 0; i < n; i++)
        ck_assert(g[i].score < 0.5);
    uint32_t cols, rows;
    const float *cells = bcd_detect_result_cells(r, &cols, &rows);
    for (size_t i = 0; i < (size_t)cols * rows; i++)
        ck_assert(cells[i] < 0.5f);
    bcd_detect_result_free(r);
    free(prev.data);
    free(cur.data);
    scene_free(&s);
}
END_TEST

/* ---- quality gate ---------------------------------------------------------------- */

static bcd_image good_photo(uint32_t seed)
{
    scene s = make_scene(SCENE_W, SCENE_H, seed);
    bcd_image img = render(&s, &CAM0, FOV, seed + 100);
    scene_free(&s);
    return img;
}

static unsigned int quality_flags(const bcd_image *img)
{
    bcd_detect_result *r = NULL;
    ck_assert_int_eq(bcd_detect_quality(&r, ctx, img, NULL), BCD_OK);
    unsigned int f = bcd_detect_result_flags(r);
    ck_assert(isnan(bcd_detect_result_value(r, BCD_DETECT_LOCAL_CHANGE)));
    double m[6];
    ck_assert_int_eq(bcd_detect_result_matrix(r, m), BCD_EINVAL);
    bcd_detect_result_free(r);
    return f;
}

START_TEST(test_detect_quality_passes_a_good_photo)
{
    bcd_image img = good_photo(21);
    ck_assert_uint_eq(quality_flags(&img), 0);
    free(img.data);
}
END_TEST

START_TEST(test_detect_quality_flags_blur)
{
    bcd_image img = good_photo(22);
    /* box blur of radius 6, three times (~ Gaussian sigma 6 px at 640 px) */
    size_t n = (size_t)img.width * img.height * 3;
    float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
    ck_assert(a && b);
    for (size_t i = 0; i < n; i++)
        a[i] = img.data[i];
    int W = (int)img.width, H = (int)img.height, R = 6;
    for (int pass = 0; pass < 3; pass++) {
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                for (int c = 0; c < 3; c++) {
                    double s = 0;
                    for (int k = -R; k <= R; k++) {
                        int xx = x + k < 0 ? 0 : x + k >= W ? W - 1 : x + k;
                        s += a[3 * ((size_t)y * W + xx) + c];
                    }
                    b[3 * ((size_t)y * W + x) + c] = (float)(s / (2 * R + 1));
                }
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                for (int c = 0; c < 3; c++) {
                    double s = 0;
                    for (int k = -R; k <= R; k++) {
                        int yy = y + k < 0 ? 0 : y + k >= H ? H - 1 : y + k;
                        s += b[3 * ((size_t)yy * W + x) + c];
                    }
                    a[3 * ((size_t)y * W + x) + c] = (float)(s / (2 * R + 1));
                }
    }
    for (size_t i = 0; i < n; i++)
        img.data[i] = (uint8_t)lroundf(a[i]);
    free(a);
    free(b);
    ck_assert_uint_eq(quality_flags(&img), BCD_DETECT_BLURRED);
    free(img.data);
}
END_TEST

START_TEST(test_detect_quality_flags_clipping)
{
    bcd_image img = good_photo(23);
    for (size_t i = 0; i < (size_t)img.width * img.height * 3; i++) {
        int v = img.data[i] * 3;
        img.data[i] = (uint8_t)(v > 255 ? 255 : v);
    }
    ck_assert_uint_ne(quality_flags(&img) & BCD_DETECT_CLIPPED, 0);
    free(img.data);
}
END_TEST

START_TEST(test_detect_quality_flags_small_subject)
{
    /* a grey-blue room with a small skin-coloured patch (6 % of the frame) */
    bcd_image img = good_photo(24);
    uint32_t seed = 5;
    for (uint32_t y = 0; y < img.height; y++)
        for (uint32_t x = 0; x < img.width; x++) {
            double dx = (x - 320.0) / 70.0, dy = (y - 240.0) / 60.0;
            if (dx * dx + dy * dy <= 1.0)
                continue;
            uint8_t *p = img.data + 3 * ((size_t)y * img.width + x);
            double n = 6.0 * nrand(&seed);
            p[0] = (uint8_t)lround(110 + n);
            p[1] = (uint8_t)lround(125 + n);
            p[2] = (uint8_t)lround(150 + n);
        }
    bcd_detect_result *r = NULL;
    ck_assert_int_eq(bcd_detect_quality(&r, ctx, &img, NULL), BCD_OK);
    ck_assert_uint_ne(bcd_detect_result_flags(r) & BCD_DETECT_SUBJECT_TOO_SMALL, 0);
    ck_assert(bcd_detect_result_value(r, BCD_DETECT_SUBJECT_FRACTION) < 0.1);
    bcd_detect_result_free(r);
    free(img.data);
}
END_TEST

START_TEST(test_detect_compare_flags_misaligned_pair)
{
    /* two unrelated scenes */
    bcd_image a = good_photo(31), b = good_photo(32);
    bcd_detect_result *r = NULL;
    ck_assert_int_eq(bcd_detect_compare(&r, ctx, &a, &b, NULL), BCD_OK);
    ck_assert_uint_ne(bcd_detect_result_flags(r) & BCD_DETECT_MISALIGNED, 0);
    ck_assert(isnan(bcd_detect_result_value(r, BCD_DETECT_LOCAL_CHANGE)));
    size_t n = 7;
    ck_assert_ptr_null(bcd_detect_result_regions(r, &n));
    ck_assert_uint_eq(n, 0);
    char *js = NULL;
    ck_assert_int_eq(bcd_detect_result_json(&js, r), BCD_OK);
    ck_assert_ptr_nonnull(strstr(js, "\"local_change\":null"));
    ck_assert_ptr_nonnull(strstr(js, "\"aligned\":false"));
    bcd_free(js);
    /* a quarter turn is out of the search range */
    bcd_image rot = { a.height, a.width, 3, malloc((size_t)a.width * a.height * 3) };
    ck_assert_ptr_nonnull(rot.data);
    for (uint32_t y = 0; y < a.height; y++)
        for (uint32_t x = 0; x < a.width; x++)
            memcpy(rot.data + 3 * ((size_t)x * rot.width + (a.height - 1 - y)), a.data + 3 * ((size_t)y * a.width + x), 3);
    bcd_detect_result_free(r);
    ck_assert_int_eq(bcd_detect_compare(&r, ctx, &rot, &a, NULL), BCD_OK);
    ck_assert_uint_ne(bcd_detect_result_flags(r) & BCD_DETECT_MISALIGNED, 0);
    bcd_detect_result_free(r);
    free(rot.data);
    free(a.data);
    free(b.data);
}
END_TEST

START_TEST(test_detect_compare_survives_degenerate_photos)
{
    /* flat, black, white, tiny, elongated: a result or EINVAL, never a crash or NaN JSON */
    static const struct { uint32_t w, h; int value; bcd_status want; } cases[] = {
        { 64, 48, 0, BCD_OK },     { 64, 48, 255, BCD_OK },   { 64, 48, 128, BCD_OK }, { 32, 32, -1, BCD_OK },
        { 33, 2000, -1, BCD_EINVAL }, { 2000, 33, -1, BCD_EINVAL }, { 31, 400, -1, BCD_EINVAL },
        { 200, 700, -1, BCD_OK },  { 3000, 40, -1, BCD_EINVAL },
    };
    uint32_t seed = 99;
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        bcd_image img = { cases[k].w, cases[k].h, 3, malloc((size_t)cases[k].w * cases[k].h * 3) };
        ck_assert_ptr_nonnull(img.data);
        for (size_t i = 0; i < (size_t)img.width * img.height * 3; i++)
            img.data[i] = (uint8_t)(cases[k].value >= 0 ? cases[k].value : (int)(urand(&seed) * 256.0));
        bcd_detect_result *r = NULL;
        bcd_status st = bcd_detect_compare(&r, ctx, &img, &img, NULL);
        ck_assert_int_eq(st, cases[k].want);
        if (st == BCD_OK) {
            char *js = NULL;
            ck_assert_int_eq(bcd_detect_result_json(&js, r), BCD_OK);
            ck_assert_ptr_null(strstr(js, "nan"));
            ck_assert_ptr_null(strstr(js, "inf"));
            bcd_free(js);
            double lc = bcd_detect_result_value(r, BCD_DETECT_LOCAL_CHANGE);
            ck_assert(isnan(lc) || lc < 0.05);
            bcd_detect_result_free(r);
        }
        bcd_detect_result *q = NULL;
        ck_assert_int_eq(bcd_detect_quality(&q, ctx, &img, NULL), BCD_OK);
        bcd_detect_result_free(q);
        free(img.data);
    }
}
END_TEST

/* ---- API ------------------------------------------------------------------------- */

START_TEST(test_detect_options_init_and_validation)
{
    bcd_detect_options o;
    ck_assert_int_eq(bcd_detect_options_init(&o, BCD_DETECT_OPTIONS_VERSION), BCD_OK);
    ck_assert_uint_eq(o.version, BCD_DETECT_OPTIONS_VERSION);
    ck_assert_uint_eq(o.work_size, 0);
    ck_assert_int_eq(bcd_detect_options_init(&o, 99), BCD_EINVAL);
    ck_assert_int_eq(bcd_detect_options_init(NULL, BCD_DETECT_OPTIONS_VERSION), BCD_EINVAL);

    bcd_image img = good_photo(41);
    bcd_detect_result *r = (bcd_detect_result *)&o; /* must stay untouched */
    bcd_detect_options bad = BCD_DETECT_OPTIONS_INIT;
    bad.version = 7;
    ck_assert_int_eq(bcd_detect_compare(&r, ctx, &img, &img, &bad), BCD_EINVAL);
    ck_assert_str_eq(bcd_error_code(bcd_ctx_last_error(ctx)), "invalid_options");
    bad.version = BCD_DETECT_OPTIONS_VERSION;
    bad.work_size = 50;
    ck_assert_int_eq(bcd_detect_compare(&r, ctx, &img, &img, &bad), BCD_EINVAL);
    bad.work_size = 0;
    bad.clip_threshold = 1.5;
    ck_assert_int_eq(bcd_detect_quality(&r, ctx, &img, &bad), BCD_EINVAL);
    ck_assert_ptr_eq(r, (bcd_detect_result *)&o);
    ck_assert_int_eq(bcd_detect_compare(&r, ctx, NULL, &img, NULL), BCD_EINVAL);
    ck_assert_str_eq(bcd_error_code(bcd_ctx_last_error(ctx)), "invalid_argument");
    bcd_image grey = img;
    grey.channels = 1;
    ck_assert_int_eq(bcd_detect_compare(&r, ctx, &img, &grey, NULL), BCD_EINVAL);
    bcd_image tiny = { 20, 20, 3, img.data };
    ck_assert_int_eq(bcd_detect_compare(&r, ctx, &img, &tiny, NULL), BCD_EINVAL);
    ck_assert_ptr_eq(r, (bcd_detect_result *)&o);

    /* a custom grid and working size are honoured */
    bcd_detect_options opt = BCD_DETECT_OPTIONS_INIT;
    opt.grid = 8;
    opt.work_size = 256;
    r = NULL;
    ck_assert_int_eq(bcd_detect_compare(&r, ctx, &img, &img, &opt), BCD_OK);
    ck_assert_ptr_null(bcd_ctx_last_error(ctx));
    uint32_t cols, rows;
    ck_assert_ptr_nonnull(bcd_detect_result_cells(r, &cols, &rows));
    ck_assert_uint_eq(cols, 8);
    ck_assert_uint_eq(rows, 6);
    ck_assert(bcd_detect_result_value(r, BCD_DETECT_LOCAL_CHANGE) < 0.01);
    ck_assert_double_eq_tol(bcd_detect_result_value(r, BCD_DETECT_ALIGN_DX), 0.0, 0.05);
    ck_assert_double_eq_tol(bcd_detect_result_value(r, BCD_DETECT_ALIGN_SCALE), 1.0, 1e-4);
    ck_assert(isnan(bcd_detect_result_value(r, (bcd_detect_value)999)));
    bcd_detect_result_free(r);
    free(img.data);
}
END_TEST

START_TEST(test_detect_result_accessors_accept_null)
{
    bcd_detect_result_free(NULL);
    ck_assert_uint_eq(bcd_detect_result_flags(NULL), 0);
    ck_assert(isnan(bcd_detect_result_value(NULL, BCD_DETECT_LOCAL_CHANGE)));
    size_t n = 5;
    ck_assert_ptr_null(bcd_detect_result_regions(NULL, &n));
    ck_assert_uint_eq(n, 0);
    uint32_t c = 1, r = 1;
    ck_assert_ptr_null(bcd_detect_result_cells(NULL, &c, &r));
    ck_assert_uint_eq(c + r, 0);
    double m[6];
    ck_assert_int_eq(bcd_detect_result_matrix(NULL, m), BCD_EINVAL);
    char *js = NULL;
    ck_assert_int_eq(bcd_detect_result_json(&js, NULL), BCD_EINVAL);
    ck_assert_ptr_null(js);
}
END_TEST

START_TEST(test_detect_result_json_has_every_field)
{
    scene s = make_scene(SCENE_W, SCENE_H, 51);
    cam cc = CAM0;
    cc.tx = 6.0;
    bcd_image prev = render(&s, &CAM0, FOV, 1), cur;
    scene_spot(&s, 500.0, 300.0, 35.0, 0.5);
    cur = render(&s, &cc, FOV, 2);
    bcd_detect_result *r = NULL;
    ck_assert_int_eq(bcd_detect_compare(&r, ctx, &cur, &prev, NULL), BCD_OK);
    char *js = NULL;
    ck_assert_int_eq(bcd_detect_result_json(&js, r), BCD_OK);
    const char *keys[] = { "\"local_change\":", "\"changed_regions\":[{\"x\":", "\"width\":", "\"height\":",
                           "\"score\":", "\"quality\":{\"blur_variance\":", "\"blurred\":false",
                           "\"clipped_fraction\":", "\"clipped\":false", "\"subject_fraction\":",
                           "\"subject_too_small\":false", "\"aligned\":true", "\"alignment_score\":",
                           "\"previous_quality\":", "\"alignment\":{\"dx\":", "\"dy\":", "\"rotation_deg\":",
                           "\"scale\":", "\"overlap\":", "\"matrix\":[", "\"grid\":{\"cols\":16,\"rows\":12" };
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (!strstr(js, keys[i]))
            ck_abort_msg("%s missing from %s", keys[i], js);
    bcd_free(js);

    /* quality-only results have only "quality" */
    bcd_detect_result *q = NULL;
    ck_assert_int_eq(bcd_detect_quality(&q, ctx, &cur, NULL), BCD_OK);
    ck_assert_int_eq(bcd_detect_result_json(&js, q), BCD_OK);
    ck_assert_ptr_nonnull(strstr(js, "{\"quality\":{\"blur_variance\":"));
    ck_assert_ptr_null(strstr(js, "alignment"));
    bcd_free(js);
    bcd_detect_result_free(q);
    bcd_detect_result_free(r);
    free(prev.data);
    free(cur.data);
    scene_free(&s);
}
END_TEST

START_TEST(test_detect_write_heatmap_writes_png)
{
    scene s = make_scene(SCENE_W, SCENE_H, 61);
    bcd_image prev = render(&s, &CAM0, FOV, 1);
    scene_spot(&s, 400.0, 330.0, 30.0, 0.5);
    bcd_image cur = render(&s, &CAM0, FOV, 2);
    bcd_detect_result *r = NULL;
    ck_assert_int_eq(bcd_detect_compare(&r, ctx, &cur, &prev, NULL), BCD_OK);

    bcd_image *heat = NULL;
    ck_assert_int_eq(bcd_detect_render_heatmap(&heat, ctx, r, &cur, 320), BCD_OK);
    ck_assert_uint_eq(heat->width, 320);
    ck_assert_uint_eq(heat->height, 240);
    /* the spot (scene (400, 330) = photo (270, 220)) is tinted red, a quiet corner is not */
    const uint8_t *sp = heat->data + 3 * ((size_t)110 * 320 + 135), *qp = heat->data + 3 * ((size_t)20 * 320 + 20);
    ck_assert_int_gt((int)sp[0] - (int)sp[2], 100);
    ck_assert_int_lt((int)qp[0] - (int)qp[2], 100);
    bcd_image_free(heat);

    char path[] = "/tmp/bcd_detect_heatXXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_int_eq(bcd_detect_write_heatmap(ctx, r, &cur, path), BCD_OK);
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    unsigned char sig[8];
    ck_assert_uint_eq(fread(sig, 1, 8, f), 8);
    fclose(f);
    ck_assert_int_eq(memcmp(sig, "\x89PNG\r\n\x1a\n", 8), 0);
    bcd_image *back = NULL;
    ck_assert_int_eq(bcd_image_decode_file(&back, ctx, path), BCD_OK);
    ck_assert_uint_eq(back->width, 640); /* under the default 1024 px: full size */
    bcd_image_free(back);
    remove(path);

    /* the wrong image, a quality-only result */
    bcd_image small = { 320, 240, 3, cur.data };
    ck_assert_int_eq(bcd_detect_write_heatmap(ctx, r, &small, path), BCD_EINVAL);
    ck_assert_str_eq(bcd_error_code(bcd_ctx_last_error(ctx)), "image_mismatch");
    bcd_detect_result *q = NULL;
    ck_assert_int_eq(bcd_detect_quality(&q, ctx, &cur, NULL), BCD_OK);
    ck_assert_int_eq(bcd_detect_write_heatmap(ctx, q, &cur, path), BCD_EINVAL);
    ck_assert_int_eq(bcd_detect_write_heatmap(ctx, r, &cur, NULL), BCD_EINVAL);
    ck_assert_int_eq(access(path, F_OK), -1);
    bcd_detect_result_free(q);
    bcd_detect_result_free(r);
    free(prev.data);
    free(cur.data);
    scene_free(&s);
}
END_TEST

START_TEST(test_detect_combine_session_evidence)
{
    scene s = make_scene(SCENE_W, SCENE_H, 71);
    bcd_image prev = render(&s, &CAM0, FOV, 1), same = render(&s, &CAM0, FOV, 2);
    scene_spot(&s, 450.0, 350.0, 40.0, 0.5);
    bcd_image changed = render(&s, &CAM0, FOV, 3);
    bcd_image other = good_photo(72);
    bcd_detect_result *quiet = NULL, *spot = NULL, *bad = NULL;
    ck_assert_int_eq(bcd_detect_compare(&quiet, ctx, &same, &prev, NULL), BCD_OK);
    ck_assert_int_eq(bcd_detect_compare(&spot, ctx, &changed, &prev, NULL), BCD_OK);
    ck_assert_int_eq(bcd_detect_compare(&bad, ctx, &other, &prev, NULL), BCD_OK);
    ck_assert_uint_ne(bcd_detect_result_flags(bad) & BCD_DETECT_MISALIGNED, 0);

    double p = -1;
    int ch = -1;
    const bcd_detect_result *none[6] = { quiet, quiet, NULL, quiet, bad, quiet };
    ck_assert_int_eq(bcd_detect_combine(&p, &ch, none, 6), BCD_OK);
    ck_assert(p >= 0.0 && p < 0.1);
    ck_assert_int_eq(ch, 0);
    const bcd_detect_result *one[6] = { quiet, quiet, spot, quiet, bad, NULL };
    ck_assert_int_eq(bcd_detect_combine(&p, &ch, one, 6), BCD_OK);
    ck_assert(p > 0.9 && p <= 1.0);
    ck_assert_int_eq(ch, 1);
    ck_assert_int_eq(bcd_detect_combine(&p, NULL, one, 3), BCD_OK);

    const bcd_detect_result *unusable[3] = { NULL, bad, NULL };
    p = -1;
    ck_assert_int_eq(bcd_detect_combine(&p, &ch, unusable, 3), BCD_ESTATE);
    ck_assert_double_eq(p, -1);
    ck_assert_int_eq(bcd_detect_combine(&p, &ch, NULL, 3), BCD_EINVAL);
    ck_assert_int_eq(bcd_detect_combine(NULL, &ch, one, 6), BCD_EINVAL);
    bcd_detect_result_free(quiet);
    bcd_detect_result_free(spot);
    bcd_detect_result_free(bad);
    free(prev.data);
    free(same.data);
    free(changed.data);
    free(other.data);
    scene_free(&s);
}
END_TEST

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* The selection gives the k-th smallest element: pixel values with many ties (whole
 * numbers 0..255, which are counted, and the same with one half at the end, which are
 * not), small magnitudes, zeros, negatives, -0 beside +0, small and large arrays. */
START_TEST(test_detect_quantile_is_the_kth_smallest)
{
    static const size_t sizes[] = { 1, 2, 7, 1023, 1024, 5000, 49152 };
    static const double qs[] = { 0.0, 0.1, 0.5, 0.75, 0.999, 1.0 };
    unsigned seed = 12345;
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
        size_t n = sizes[si];
        float *v = malloc(n * sizeof *v), *w = malloc(n * sizeof *w), *sorted = malloc(n * sizeof *sorted);
        for (int kind = 0; kind < 6; kind++) {
            for (size_t i = 0; i < n; i++) {
                seed = seed * 1103515245u + 12345u;
                unsigned r = seed >> 8;
                switch (kind) {
                case 0: v[i] = (float)(r % 256); break;                      /* pixels: many ties */
                case 1: v[i] = (float)r / 65536.0f * 1e-3f; break;           /* small magnitudes */
                case 2: v[i] = r % 7 == 0 ? 0.0f : (float)r * 1e-5f; break;  /* zeros */
                case 3: v[i] = ((float)(r % 2001) - 1000.0f) / 7.0f; break;  /* negatives */
                case 4: v[i] = r % 5 == 0 ? -0.0f : (float)(r % 3); break;   /* -0 beside +0 */
                default: v[i] = i + 1 == n ? 127.5f : (float)(r % 256); break; /* one half */
                }
            }
            memcpy(sorted, v, n * sizeof *v);
            qsort(sorted, n, sizeof *sorted, cmp_float);
            for (size_t qi = 0; qi < sizeof qs / sizeof *qs; qi++) {
                size_t k = (size_t)(qs[qi] * (double)n);
                if (k >= n)
                    k = n - 1;
                memcpy(w, v, n * sizeof *v);
                float got = bcd__detect_quantile(w, n, qs[qi]);
                ck_assert_msg(got == sorted[k], "n=%zu kind=%d q=%g: %g, want %g", n, kind, qs[qi], got, sorted[k]);
            }
            memcpy(w, v, n * sizeof *v);
            ck_assert(bcd__detect_median(w, n) == sorted[n / 2]);
        }
        free(v);
        free(w);
        free(sorted);
    }
    float none = 1.0f;
    ck_assert(bcd__detect_quantile(&none, 0, 0.5) == 0.0f);
}
END_TEST

/* The Gaussian blur gives, bit for bit, the separable sums in tap order (rows, then
 * columns from zero) with clamped borders: widths with and without a remainder of eight,
 * a plane narrower than the kernel, sigmas of one to three taps. */
START_TEST(test_detect_blur_is_the_separable_sum_in_tap_order)
{
    static const int sizes[][2] = { { 37, 23 }, { 64, 9 }, { 5, 40 }, { 1, 1 } };
    static const float sigmas[] = { 0.3f, 1.0f, 2.5f };
    unsigned seed = 7;
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
        int w = sizes[si][0], h = sizes[si][1];
        bcd__plane *p = bcd__plane_new(w, h);
        ck_assert_ptr_nonnull(p);
        for (int i = 0; i < w * h; i++) {
            seed = seed * 1103515245u + 12345u;
            p->px[i] = (float)(seed >> 8) / 65536.0f - 100.0f;
        }
        for (size_t gi = 0; gi < sizeof sigmas / sizeof *sigmas; gi++) {
            float sg = sigmas[gi];
            int r = (int)ceilf(3.0f * sg);
            float k[32];
            double sum = 0.0;
            for (int i = -r; i <= r; i++) {
                k[i + r] = (float)exp(-0.5 * (double)i * i / ((double)sg * sg));
                sum += k[i + r];
            }
            for (int i = 0; i <= 2 * r; i++)
                k[i] = (float)(k[i] / sum);
            float *t = malloc((size_t)w * h * sizeof *t), *want = malloc((size_t)w * h * sizeof *want);
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) {
                    float a = 0.0f;
                    for (int j = -r; j <= r; j++) {
                        int xx = x + j < 0 ? 0 : x + j >= w ? w - 1 : x + j;
                        float term = k[j + r] * p->px[y * w + xx];
                        a = j == -r ? term : a + term;
                    }
                    t[y * w + x] = a;
                }
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) {
                    float a = 0.0f;
                    for (int j = -r; j <= r; j++) {
                        int yy = y + j < 0 ? 0 : y + j >= h ? h - 1 : y + j;
                        a += k[j + r] * t[yy * w + x];
                    }
                    want[y * w + x] = a;
                }
            bcd__plane *got = bcd__plane_blur(p, sg);
            ck_assert_ptr_nonnull(got);
            ck_assert_msg(memcmp(got->px, want, (size_t)w * h * sizeof *want) == 0, "%dx%d sigma %g", w, h,
                          (double)sg);
            bcd__plane_free(got);
            free(t);
            free(want);
        }
        bcd__plane_free(p);
    }
}
END_TEST

/* The log table answers exactly what logf() does, on its grid and off it. */
START_TEST(test_detect_logtab_equals_logf)
{
    static const int steps[] = { 1, 4, 16 };
    static const float offsets[] = { 1.0f, 4.0f, 48.0f };
    for (size_t k = 0; k < 3; k++) {
        bcd__logtab lt;
        bcd__logtab_init(&lt, offsets[k], steps[k]);
        for (int i = 0; i <= 255 * steps[k]; i++) {
            float v = (float)i / (float)steps[k];
            float want = logf(v + offsets[k]), got = bcd__logtab_get(&lt, v);
            ck_assert_msg(memcmp(&got, &want, sizeof got) == 0, "steps %d: %.9g -> %.9g, want %.9g", steps[k],
                          (double)v, (double)got, (double)want);
        }
        /* off the grid, outside 0..255, not a number: logf() itself */
        const float other[] = { 0.1f, 0.3f, 127.37f, 254.99f, 255.25f, 300.0f, -0.5f, 1e-30f, 1e30f };
        for (size_t j = 0; j < sizeof other / sizeof *other; j++) {
            float want = logf(other[j] + offsets[k]), got = bcd__logtab_get(&lt, other[j]);
            ck_assert(memcmp(&got, &want, sizeof got) == 0 || (got != got && want != want));
        }
        ck_assert(isnan(bcd__logtab_get(&lt, NAN)));
    }
    /* the shared tables: the same values as one's own, for more pairs than are kept
     * (the rest filled into own) */
    for (int k = 0; k < 8; k++) {
        float offset = (float)(k + 1) * 0.5f;
        int st = k % 2 ? 16 : 4;
        bcd__logtab want, own;
        bcd__logtab_init(&want, offset, st);
        const bcd__logtab *got = bcd__logtab_shared(offset, st, &own);
        ck_assert(got == bcd__logtab_shared(offset, st, &own) || got == &own);
        ck_assert(got->offset == offset && got->steps == (float)st && got->n == want.n);
        ck_assert_int_eq(memcmp(got->t, want.t, (size_t)want.n * sizeof *want.t), 0);
    }
}
END_TEST

/* Feature maps c x 4 x 5 whose cell (x, y) holds a one-hot vector at channel y * 5 + x. */
static void one_hot_map(float *m, size_t c)
{
    memset(m, 0, c * 20 * sizeof *m);
    for (size_t cell = 0; cell < 20; cell++)
        m[(cell % c) * 20 + cell] = 2.0f;
}

START_TEST(test_detect_compare_maps_cell_by_cell_through_the_alignment)
{
    enum { C = 24, H = 4, W = 5 };
    float cur[C * H * W], prev[C * H * W], d[H * W];
    one_hot_map(cur, C);
    one_hot_map(prev, C);
    /* the same maps: nothing changed anywhere */
    ck_assert_uint_eq(bcd_detect_compare_maps(d, cur, prev, C, H, W, NULL), H * W);
    for (int i = 0; i < H * W; i++)
        ck_assert_float_eq_tol(d[i], 0.0f, 1e-6f);
    /* one cell's features replaced: distance 1 there (orthogonal), 0 elsewhere */
    cur[(size_t)(7 % C) * H * W + 7] = 0.0f;
    cur[(size_t)23 * H * W + 7] = 5.0f;
    bcd_detect_compare_maps(d, cur, prev, C, H, W, NULL);
    for (int i = 0; i < H * W; i++)
        ck_assert_float_eq_tol(d[i], i == 7 ? 1.0f : 0.0f, 1e-6f);
    /* the body moved one cell left: current cell x is previous cell x + 1 */
    one_hot_map(cur, C);
    memset(prev, 0, sizeof prev);
    for (size_t k = 0; k < C; k++)
        for (size_t y = 0; y < H; y++)
            for (size_t x = 1; x < W; x++)
                prev[(k * H + y) * W + x] = cur[(k * H + y) * W + x - 1];
    const double shift[6] = { 1, 0, 1, 0, 1, 0 };
    ck_assert_uint_eq(bcd_detect_compare_maps(d, cur, prev, C, H, W, shift), H * (W - 1));
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            if (x == W - 1)
                ck_assert(isnan(d[y * W + x])); /* beyond the previous map */
            else
                ck_assert_float_eq_tol(d[y * W + x], 0.0f, 1e-6f);
        }
    /* without the alignment every cell differs */
    bcd_detect_compare_maps(d, cur, prev, C, H, W, NULL);
    ck_assert_float_eq_tol(d[6], 1.0f, 1e-6f);
    /* half a cell: the previous vector is the mean of two orthogonal ones, cos 45 deg */
    one_hot_map(prev, C);
    const double half[6] = { 1, 0, 0.5, 0, 1, 0 };
    bcd_detect_compare_maps(d, prev, prev, C, H, W, half);
    ck_assert_float_eq_tol(d[0], (float)(1.0 - sqrt(0.5)), 1e-6f);
    ck_assert(!isnan(d[W - 1])); /* half a cell beyond the edge still counts (clamped) */
    ck_assert_float_eq_tol(d[W - 1], 0.0f, 1e-6f);
    /* silent cells: both silent is no change, one silent is all change */
    memset(cur, 0, sizeof cur);
    memset(prev, 0, sizeof prev);
    prev[3] = 1.0f;
    bcd_detect_compare_maps(d, cur, prev, C, H, W, NULL);
    ck_assert(d[0] == 0.0f);
    ck_assert(d[3] == 1.0f);
    ck_assert_uint_eq(bcd_detect_compare_maps(NULL, cur, prev, C, H, W, NULL), 0);
    ck_assert_uint_eq(bcd_detect_compare_maps(d, NULL, prev, C, H, W, NULL), 0);
    ck_assert(isnan(d[0]));
}
END_TEST

static Suite *detect_suite(void)
{
    Suite *s = suite_create("detect");
    TCase *tc = tcase_create("alignment");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_detect_compare_recovers_translation);
    tcase_add_test(tc, test_detect_compare_recovers_rotation_and_scale);
    tcase_add_test(tc, test_detect_compare_recovers_large_transform_by_search);
    tcase_add_test(tc, test_detect_compare_recovers_transform_across_resolutions);
    tcase_add_test(tc, test_detect_quantile_is_the_kth_smallest);
    tcase_add_test(tc, test_detect_logtab_equals_logf);
    tcase_add_test(tc, test_detect_blur_is_the_separable_sum_in_tap_order);
    suite_add_tcase(s, tc);

    tc = tcase_create("change_map");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_detect_compare_finds_new_spot_in_its_cell);
    tcase_add_test(tc, test_detect_compare_ignores_pure_nuisance);
    tcase_add_test(tc, test_detect_compare_maps_cell_by_cell_through_the_alignment);
    suite_add_tcase(s, tc);

    tc = tcase_create("quality");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_detect_quality_passes_a_good_photo);
    tcase_add_test(tc, test_detect_quality_flags_blur);
    tcase_add_test(tc, test_detect_quality_flags_clipping);
    tcase_add_test(tc, test_detect_quality_flags_small_subject);
    tcase_add_test(tc, test_detect_compare_flags_misaligned_pair);
    tcase_add_test(tc, test_detect_compare_survives_degenerate_photos);
    suite_add_tcase(s, tc);

    tc = tcase_create("api");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_detect_options_init_and_validation);
    tcase_add_test(tc, test_detect_result_accessors_accept_null);
    tcase_add_test(tc, test_detect_result_json_has_every_field);
    tcase_add_test(tc, test_detect_write_heatmap_writes_png);
    tcase_add_test(tc, test_detect_combine_session_evidence);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(detect_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
