/* Public API of lib/detect: comparison, quality gate, result accessors and JSON. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "detect_internal.h"
#include "image/image_internal.h"

/* Plausible similarity: beyond these the "alignment" is a failure whatever its score. */
#define MAX_ABS_ROTATION_DEG 30.0
#define MIN_SCALE 0.67
#define MAX_SCALE 1.5

struct bcd_detect_result {
    bool compared;
    unsigned int flags;
    bcd__quality qc, qp;
    double local_change, evidence, noise;
    double score, overlap, dx, dy, rotation, scale;
    double m[6];
    bcd_detect_region *regions;
    size_t nregions;
    float *cells;
    uint32_t cols, rows;
    /* the change map at working size, for heatmaps */
    bcd__plane *map;
    uint8_t *mask;
    uint32_t ow, oh; /* current photo's size */
    unsigned int heatmap_max_side;
};

struct opts {
    int work_size, grid;
    unsigned int heatmap_max_side;
    double blur, clip, subject, min_score, min_overlap;
};

bcd_status bcd_detect_options_init(bcd_detect_options *opts, unsigned int version)
{
    if (!opts || version != BCD_DETECT_OPTIONS_VERSION)
        return BCD_EINVAL;
    bcd_detect_options d = BCD_DETECT_OPTIONS_INIT;
    *opts = d;
    return BCD_OK;
}

static bool frac_ok(double v)
{
    return v == 0.0 || (v > 0.0 && v <= 1.0);
}

static bcd_status resolve_opts(struct opts *o, bcd_ctx *ctx, const bcd_detect_options *in)
{
    bcd_detect_options d = BCD_DETECT_OPTIONS_INIT;
    if (!in)
        in = &d;
    if (in->version != BCD_DETECT_OPTIONS_VERSION)
        return bcd__ctx_fail(ctx, BCD_EINVAL, "invalid_options", "unknown bcd_detect_options version %u",
                             in->version);
    if ((in->work_size && (in->work_size < 128 || in->work_size > 2048)) ||
        (in->grid && (in->grid < 4 || in->grid > 64)) ||
        (in->heatmap_max_side && (in->heatmap_max_side < 64 || in->heatmap_max_side > 8192)) ||
        !(in->blur_threshold >= 0.0 && isfinite(in->blur_threshold)) || !frac_ok(in->clip_threshold) ||
        !frac_ok(in->subject_threshold) || !frac_ok(in->min_alignment_score) || !frac_ok(in->min_overlap))
        return bcd__ctx_fail(ctx, BCD_EINVAL, "invalid_options", "bcd_detect_options value out of range");
    o->work_size = in->work_size ? (int)in->work_size : (int)BCD_DETECT_DEFAULT_WORK_SIZE;
    o->grid = in->grid ? (int)in->grid : (int)BCD_DETECT_DEFAULT_GRID;
    o->heatmap_max_side = in->heatmap_max_side ? in->heatmap_max_side : BCD_DETECT_DEFAULT_HEATMAP_SIDE;
    o->blur = in->blur_threshold > 0.0 ? in->blur_threshold : BCD_DETECT_DEFAULT_BLUR_THRESHOLD;
    o->clip = in->clip_threshold > 0.0 ? in->clip_threshold : BCD_DETECT_DEFAULT_CLIP_THRESHOLD;
    o->subject = in->subject_threshold > 0.0 ? in->subject_threshold : BCD_DETECT_DEFAULT_SUBJECT_THRESHOLD;
    o->min_score = in->min_alignment_score > 0.0 ? in->min_alignment_score : BCD_DETECT_DEFAULT_MIN_ALIGNMENT_SCORE;
    o->min_overlap = in->min_overlap > 0.0 ? in->min_overlap : BCD_DETECT_DEFAULT_MIN_OVERLAP;
    return BCD_OK;
}

static bool image_ok(const bcd_image *img)
{
    return img && img->data && img->width > 0 && img->height > 0 && img->channels == 3;
}

void bcd_detect_result_free(bcd_detect_result *r)
{
    if (!r)
        return;
    free(r->regions);
    free(r->cells);
    bcd__plane_free(r->map);
    free(r->mask);
    free(r);
}

static bcd_detect_result *result_new(void)
{
    bcd_detect_result *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->local_change = r->evidence = r->noise = NAN;
    r->score = r->overlap = r->dx = r->dy = r->rotation = r->scale = NAN;
    return r;
}

static unsigned int quality_flags(const bcd__quality *q, const struct opts *o, bool previous)
{
    unsigned int f = 0;
    if (q->blur_variance < o->blur)
        f |= previous ? BCD_DETECT_PREVIOUS_BLURRED : BCD_DETECT_BLURRED;
    if (q->clipped_fraction > o->clip)
        f |= previous ? BCD_DETECT_PREVIOUS_CLIPPED : BCD_DETECT_CLIPPED;
    if (q->subject_fraction < o->subject)
        f |= previous ? BCD_DETECT_PREVIOUS_SUBJECT_TOO_SMALL : BCD_DETECT_SUBJECT_TOO_SMALL;
    return f;
}

/* Quality of one loaded work image. */
static bcd_status measure(bcd__quality *q, const bcd__work *wk)
{
    bcd__plane *g = bcd__work_grey(wk);
    if (!g)
        return BCD_ENOMEM;
    bcd__detect_quality(q, wk, g);
    bcd__plane_free(g);
    return BCD_OK;
}

bcd_status bcd_detect_quality(bcd_detect_result **out, bcd_ctx *ctx, const bcd_image *img,
                              const bcd_detect_options *opts)
{
    bcd__ctx_clear(ctx);
    if (!out || !image_ok(img))
        return bcd__ctx_fail(ctx, BCD_EINVAL, "invalid_argument", "bcd_detect_quality: an RGB image is required");
    struct opts o;
    bcd_status st = resolve_opts(&o, ctx, opts);
    if (st != BCD_OK)
        return st;
    bcd_detect_result *r = result_new();
    bcd__work wk = { 0 };
    if (!r || bcd__work_load(&wk, img, o.work_size) != BCD_OK || measure(&r->qc, &wk) != BCD_OK) {
        bcd__work_clear(&wk);
        bcd_detect_result_free(r);
        return bcd__ctx_fail(ctx, BCD_ENOMEM, "out_of_memory", "cannot allocate the quality buffers");
    }
    bcd__work_clear(&wk);
    r->flags = quality_flags(&r->qc, &o, false);
    r->ow = img->width;
    r->oh = img->height;
    r->heatmap_max_side = o.heatmap_max_side;
    *out = r;
    return BCD_OK;
}

/*
 * Affine map from previous-photo pixels to current-photo pixels, from the working-grid
 * similarity (u - cp = A (x - cc) + t) and each photo's reduction (x_w = f x_o + (f - 1)/2).
 */
static void compose_matrix(double m[6], const bcd__align *al, const bcd__work *wc, const bcd__work *wp)
{
    double s2 = al->a * al->a + al->b * al->b;
    double ia = al->a / s2, ib = al->b / s2; /* A^-1 = [[ia, ib], [-ib, ia]] */
    double ccx = (wc->w - 1) * 0.5, ccy = (wc->h - 1) * 0.5;
    double cpx = (wp->w - 1) * 0.5, cpy = (wp->h - 1) * 0.5;
    double ocx = (wc->fx - 1) * 0.5, ocy = (wc->fy - 1) * 0.5;
    double opx = (wp->fx - 1) * 0.5, opy = (wp->fy - 1) * 0.5;
    /* linear part: Sc^-1 A^-1 Sp */
    m[0] = ia * wp->fx / wc->fx;
    m[1] = ib * wp->fy / wc->fx;
    m[3] = -ib * wp->fx / wc->fy;
    m[4] = ia * wp->fy / wc->fy;
    double qx = opx - cpx - al->tx, qy = opy - cpy - al->ty;
    m[2] = (ia * qx + ib * qy + ccx - ocx) / wc->fx;
    m[5] = (-ib * qx + ia * qy + ccy - ocy) / wc->fy;
}

/*
 * The comparison proper. Quality is measured on the working-size images; alignment,
 * photometric matching and the change map run at half that size (256 px by default),
 * where the smallest change of interest (0.5 % of the frame) is still ~17 px across,
 * noise and JPEG artefacts are averaged away, and every step costs a quarter.
 */
static bcd_status compare_work(bcd_detect_result *r, const bcd__work *wc0, const bcd__work *wp0, const struct opts *o)
{
    bcd_status st = BCD_ENOMEM;
    bcd__work hc = { 0 }, hp = { 0 };
    const bcd__work *wc = &hc, *wp = &hp;
    bcd__plane *gc = bcd__work_grey(wc0), *gp = bcd__work_grey(wp0);
    bcd__plane *ap[4] = { 0 };
    bcd__plane *P[3] = { 0 };
    uint8_t *mask = NULL;
    bcd__changemap cm = { 0 };
    if (!gc || !gp)
        goto done;
    bcd__detect_quality(&r->qc, wc0, gc);
    bcd__detect_quality(&r->qp, wp0, gp);
    r->flags = quality_flags(&r->qc, o, false) | quality_flags(&r->qp, o, true);
    if (bcd__work_half(&hc, wc0) != BCD_OK || bcd__work_half(&hp, wp0) != BCD_OK)
        goto done;
    if (bcd__detect_align_planes(ap, wc, wp) != BCD_OK)
        goto done;

    bcd__align al;
    if ((st = bcd__detect_align(&al, ap[0], ap[1], ap[2], ap[3])) != BCD_OK)
        goto done;
    st = BCD_ENOMEM;
    compose_matrix(r->m, &al, wc, wp);
    double s = sqrt(al.a * al.a + al.b * al.b);
    r->scale = 1.0 / s;
    r->rotation = atan2(al.b, al.a) * 180.0 / M_PI;
    double pcx = (wp->ow - 1) * 0.5, pcy = (wp->oh - 1) * 0.5;
    r->dx = r->m[0] * pcx + r->m[1] * pcy + r->m[2] - (wc->ow - 1) * 0.5;
    r->dy = r->m[3] * pcx + r->m[4] * pcy + r->m[5] - (wc->oh - 1) * 0.5;
    r->score = al.score;
    r->overlap = al.overlap;
    bool aligned = al.score >= o->min_score && al.overlap >= o->min_overlap && r->scale >= MIN_SCALE &&
                   r->scale <= MAX_SCALE && fabs(r->rotation) <= MAX_ABS_ROTATION_DEG;
    if (!aligned) {
        r->flags |= BCD_DETECT_MISALIGNED;
        st = BCD_OK;
        goto done;
    }

    size_t n = (size_t)wc->w * wc->h;
    mask = malloc(n);
    for (int c = 0; c < 3; c++)
        if (!(P[c] = bcd__plane_new(wc->w, wc->h)))
            goto done;
    if (!mask)
        goto done;
    bcd__detect_warp(P, mask, wp->c, 3, &al);
    /* outside the overlap the "previous" photo is the current one: no difference, and
     * filters that reach over the border see no edge */
    for (int c = 0; c < 3; c++)
        for (size_t i = 0; i < n; i++)
            if (!mask[i])
                P[c]->px[i] = wc->c[c]->px[i];
    if (bcd__detect_photometric(P, wc->c, mask) != BCD_OK)
        goto done;
    if (bcd__detect_changemap(&cm, wc->c, P, mask, o->grid) != BCD_OK)
        goto done;

    r->evidence = cm.evidence;
    r->local_change = bcd__detect_score(cm.evidence);
    r->noise = cm.noise;
    if (cm.nregions > 0) {
        r->regions = malloc((size_t)cm.nregions * sizeof *r->regions);
        if (!r->regions)
            goto done;
        for (int i = 0; i < cm.nregions; i++) {
            const bcd__region *g = &cm.regions[i];
            double x0 = floor(g->x0 / wc->fx), y0 = floor(g->y0 / wc->fy);
            double x1 = ceil((g->x1 + 1) / wc->fx), y1 = ceil((g->y1 + 1) / wc->fy);
            if (x1 > wc->ow)
                x1 = wc->ow;
            if (y1 > wc->oh)
                y1 = wc->oh;
            bcd_detect_region *d = &r->regions[i];
            d->x = (uint32_t)x0;
            d->y = (uint32_t)y0;
            d->width = (uint32_t)(x1 - x0);
            d->height = (uint32_t)(y1 - y0);
            d->score = g->score;
        }
        r->nregions = (size_t)cm.nregions;
    }
    r->cells = cm.cells;
    cm.cells = NULL;
    r->cols = (uint32_t)cm.cols;
    r->rows = (uint32_t)cm.rows;
    r->map = cm.map;
    cm.map = NULL;
    r->mask = mask;
    mask = NULL;
    st = BCD_OK;
done:
    bcd__changemap_clear(&cm);
    for (int c = 0; c < 3; c++)
        bcd__plane_free(P[c]);
    free(mask);
    bcd__plane_free(gc);
    bcd__plane_free(gp);
    for (int k = 0; k < 4; k++)
        bcd__plane_free(ap[k]);
    bcd__work_clear(&hc);
    bcd__work_clear(&hp);
    return st;
}

bcd_status bcd_detect_compare(bcd_detect_result **out, bcd_ctx *ctx, const bcd_image *current,
                              const bcd_image *previous, const bcd_detect_options *opts)
{
    bcd__ctx_clear(ctx);
    if (!out || !image_ok(current) || !image_ok(previous))
        return bcd__ctx_fail(ctx, BCD_EINVAL, "invalid_argument",
                             "bcd_detect_compare: two RGB images are required");
    struct opts o;
    bcd_status st = resolve_opts(&o, ctx, opts);
    if (st != BCD_OK)
        return st;
    /* both photos at the same working size (never enlarged): the smaller of the
     * option and either photo's longer side */
    uint32_t lc = current->width > current->height ? current->width : current->height;
    uint32_t lp = previous->width > previous->height ? previous->width : previous->height;
    int side = o.work_size;
    if ((uint32_t)side > lc)
        side = (int)lc;
    if ((uint32_t)side > lp)
        side = (int)lp;
    uint32_t sc = current->width < current->height ? current->width : current->height;
    uint32_t sp = previous->width < previous->height ? previous->width : previous->height;
    if (sc < 32 || sp < 32)
        return bcd__ctx_fail(ctx, BCD_EINVAL, "image_too_small", "photos must be at least 32 px on each side");

    bcd_detect_result *r = result_new();
    bcd__work wc = { 0 }, wp = { 0 };
    st = BCD_ENOMEM;
    if (r && bcd__work_load(&wc, current, side) == BCD_OK && bcd__work_load(&wp, previous, side) == BCD_OK) {
        /* a very elongated photo leaves too few working pixels across */
        if (wc.w < 32 || wc.h < 32 || wp.w < 32 || wp.h < 32)
            st = BCD_EINVAL;
        else
            st = compare_work(r, &wc, &wp, &o);
    }
    bcd__work_clear(&wc);
    bcd__work_clear(&wp);
    if (st != BCD_OK) {
        bcd_detect_result_free(r);
        if (st == BCD_EINVAL)
            return bcd__ctx_fail(ctx, st, "image_too_small",
                                 "a photo is too elongated: under 32 px across at the working size");
        return bcd__ctx_fail(ctx, st, "out_of_memory", "cannot allocate the detection buffers");
    }
    r->compared = true;
    r->ow = current->width;
    r->oh = current->height;
    r->heatmap_max_side = o.heatmap_max_side;
    *out = r;
    return BCD_OK;
}

unsigned int bcd_detect_result_flags(const bcd_detect_result *r)
{
    return r ? r->flags : 0u;
}

double bcd_detect_result_value(const bcd_detect_result *r, bcd_detect_value key)
{
    if (!r)
        return NAN;
    switch (key) {
    case BCD_DETECT_LOCAL_CHANGE: return r->local_change;
    case BCD_DETECT_BLUR_VARIANCE: return r->qc.blur_variance;
    case BCD_DETECT_CLIPPED_FRACTION: return r->qc.clipped_fraction;
    case BCD_DETECT_SUBJECT_FRACTION: return r->qc.subject_fraction;
    case BCD_DETECT_ALIGN_SCORE: return r->score;
    case BCD_DETECT_ALIGN_OVERLAP: return r->overlap;
    case BCD_DETECT_ALIGN_DX: return r->dx;
    case BCD_DETECT_ALIGN_DY: return r->dy;
    case BCD_DETECT_ALIGN_ROTATION: return r->rotation;
    case BCD_DETECT_ALIGN_SCALE: return r->scale;
    case BCD_DETECT_PREVIOUS_BLUR_VARIANCE: return r->compared ? r->qp.blur_variance : NAN;
    case BCD_DETECT_PREVIOUS_CLIPPED_FRACTION: return r->compared ? r->qp.clipped_fraction : NAN;
    case BCD_DETECT_PREVIOUS_SUBJECT_FRACTION: return r->compared ? r->qp.subject_fraction : NAN;
    case BCD_DETECT_CHANGE_EVIDENCE: return r->evidence;
    case BCD_DETECT_NOISE_LEVEL: return r->noise;
    }
    return NAN;
}

const bcd_detect_region *bcd_detect_result_regions(const bcd_detect_result *r, size_t *count)
{
    if (count)
        *count = r ? r->nregions : 0;
    return r && r->nregions ? r->regions : NULL;
}

bcd_status bcd_detect_result_matrix(const bcd_detect_result *r, double m[6])
{
    if (!r || !m || !r->compared)
        return BCD_EINVAL;
    memcpy(m, r->m, sizeof r->m);
    return BCD_OK;
}

const float *bcd_detect_result_cells(const bcd_detect_result *r, uint32_t *cols, uint32_t *rows)
{
    bool have = r && r->cells;
    if (cols)
        *cols = have ? r->cols : 0;
    if (rows)
        *rows = have ? r->rows : 0;
    return have ? r->cells : NULL;
}

/* Numbers rounded for JSON (6 significant digits is plenty for every field). */
static cJSON *num(double v)
{
    if (!isfinite(v))
        return cJSON_CreateNull();
    char buf[32];
    snprintf(buf, sizeof buf, "%.6g", v);
    return cJSON_CreateNumber(strtod(buf, NULL));
}

static bool add_num(cJSON *o, const char *k, double v)
{
    cJSON *n = num(v);
    return n && cJSON_AddItemToObject(o, k, n);
}

static bool add_quality(cJSON *o, const bcd__quality *q, unsigned int flags, bool previous)
{
    return add_num(o, "blur_variance", q->blur_variance) &&
           cJSON_AddBoolToObject(o, "blurred", (flags & (previous ? BCD_DETECT_PREVIOUS_BLURRED : BCD_DETECT_BLURRED)) != 0) &&
           add_num(o, "clipped_fraction", q->clipped_fraction) &&
           cJSON_AddBoolToObject(o, "clipped", (flags & (previous ? BCD_DETECT_PREVIOUS_CLIPPED : BCD_DETECT_CLIPPED)) != 0) &&
           add_num(o, "subject_fraction", q->subject_fraction) &&
           cJSON_AddBoolToObject(o, "subject_too_small",
                                 (flags & (previous ? BCD_DETECT_PREVIOUS_SUBJECT_TOO_SMALL
                                                    : BCD_DETECT_SUBJECT_TOO_SMALL)) != 0);
}

static bool build_json(cJSON *root, const bcd_detect_result *r)
{
    cJSON *q;
    if (!r->compared) {
        q = cJSON_AddObjectToObject(root, "quality");
        return q && add_quality(q, &r->qc, r->flags, false);
    }
    if (!add_num(root, "local_change", r->local_change) || !add_num(root, "change_evidence", r->evidence) ||
        !add_num(root, "noise_level", r->noise))
        return false;
    cJSON *regs = cJSON_AddArrayToObject(root, "changed_regions");
    if (!regs)
        return false;
    for (size_t i = 0; i < r->nregions; i++) {
        cJSON *g = cJSON_CreateObject();
        if (!g || !cJSON_AddItemToArray(regs, g))
            return cJSON_Delete(g), false;
        const bcd_detect_region *d = &r->regions[i];
        if (!cJSON_AddNumberToObject(g, "x", d->x) || !cJSON_AddNumberToObject(g, "y", d->y) ||
            !cJSON_AddNumberToObject(g, "width", d->width) || !cJSON_AddNumberToObject(g, "height", d->height) ||
            !add_num(g, "score", d->score))
            return false;
    }
    q = cJSON_AddObjectToObject(root, "quality");
    if (!q || !add_quality(q, &r->qc, r->flags, false) ||
        !cJSON_AddBoolToObject(q, "aligned", !(r->flags & BCD_DETECT_MISALIGNED)) ||
        !add_num(q, "alignment_score", r->score))
        return false;
    q = cJSON_AddObjectToObject(root, "previous_quality");
    if (!q || !add_quality(q, &r->qp, r->flags, true))
        return false;
    cJSON *a = cJSON_AddObjectToObject(root, "alignment");
    if (!a || !add_num(a, "dx", r->dx) || !add_num(a, "dy", r->dy) || !add_num(a, "rotation_deg", r->rotation) ||
        !add_num(a, "scale", r->scale) || !add_num(a, "score", r->score) || !add_num(a, "overlap", r->overlap))
        return false;
    cJSON *m = cJSON_AddArrayToObject(a, "matrix");
    if (!m)
        return false;
    for (int i = 0; i < 6; i++) {
        cJSON *n = num(r->m[i]);
        if (!n || !cJSON_AddItemToArray(m, n))
            return cJSON_Delete(n), false;
    }
    if (r->cells) {
        cJSON *g = cJSON_AddObjectToObject(root, "grid");
        if (!g || !cJSON_AddNumberToObject(g, "cols", r->cols) || !cJSON_AddNumberToObject(g, "rows", r->rows))
            return false;
        cJSON *cells = cJSON_AddArrayToObject(g, "cells");
        if (!cells)
            return false;
        for (size_t i = 0; i < (size_t)r->cols * r->rows; i++) {
            double v = r->cells[i];
            cJSON *n = cJSON_CreateNumber(v < 0 ? -1.0 : floor(v * 1000.0 + 0.5) / 1000.0);
            if (!n || !cJSON_AddItemToArray(cells, n))
                return cJSON_Delete(n), false;
        }
    }
    return true;
}

bcd_status bcd_detect_result_json(char **out, const bcd_detect_result *r)
{
    if (!out || !r)
        return BCD_EINVAL;
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return BCD_ENOMEM;
    char *s = build_json(root, r) ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!s)
        return BCD_ENOMEM;
    *out = s;
    return BCD_OK;
}

/* ---- heatmap ------------------------------------------------------------------ */

/* Evidence (log units above the noise floor) shown at full colour. */
#define HEAT_SATURATION 0.35f

static void colormap(float v, float rgb[3])
{
    /* blue -> cyan -> green -> yellow -> red */
    static const float stops[5][3] = {
        { 40, 60, 255 }, { 0, 210, 255 }, { 40, 230, 40 }, { 255, 230, 0 }, { 255, 30, 0 },
    };
    float t = v * 4.0f;
    int i = (int)t;
    if (i >= 4) {
        i = 3;
        t = 4.0f;
    }
    float f = t - (float)i;
    for (int c = 0; c < 3; c++)
        rgb[c] = stops[i][c] + f * (stops[i + 1][c] - stops[i][c]);
}

/* rounded half away from zero, as lroundf() (exact in double), and clamped */
static inline uint8_t to_byte(float o)
{
    return (uint8_t)(o < 0 ? 0 : o > 255 ? 255 : (int)((double)o + 0.5));
}

/* An overlay pixel outside the mask: the photo darkened. */
static inline void dim_pixel(const float src[3], uint8_t out[3])
{
    for (int c = 0; c < 3; c++)
        out[c] = to_byte(0.45f * src[c]);
}

/* An overlay pixel inside the mask: the colour of evidence e (0..1 of saturation) over the
 * photo, more opaque the stronger it is. */
static inline void heat_pixel(float e, const float src[3], uint8_t out[3])
{
    if (e > 1.0f)
        e = 1.0f;
    float col[3];
    colormap(e, col);
    float alpha = e > 0.0f ? 0.25f + 0.45f * e : 0.12f;
    for (int c = 0; c < 3; c++)
        out[c] = to_byte((1.0f - alpha) * src[c] + alpha * col[c]);
}

/* The change map's coordinate (pixel centres, clamped to its n pixels) of overlay
 * pixel i at map pixels per overlay pixel s. */
static double map_coord(int i, double s, int n)
{
    double u = (i + 0.5) * s - 0.5;
    if (u < 0)
        u = 0;
    if (u > n - 1)
        u = n - 1;
    return u;
}

bcd_status bcd_detect_render_heatmap(bcd_image **out, bcd_ctx *ctx, const bcd_detect_result *r,
                                     const bcd_image *current, unsigned int max_side)
{
    bcd__ctx_clear(ctx);
    if (!out || !r || !image_ok(current))
        return bcd__ctx_fail(ctx, BCD_EINVAL, "invalid_argument", "bcd_detect_render_heatmap: a result and an RGB image are required");
    if (!r->compared || !r->map)
        return bcd__ctx_fail(ctx, BCD_EINVAL, "no_change_map",
                             "the result has no change map (quality-only or misaligned pair)");
    if (current->width != r->ow || current->height != r->oh)
        return bcd__ctx_fail(ctx, BCD_EINVAL, "image_mismatch",
                             "the image is %ux%u, the compared photo was %ux%u", current->width,
                             current->height, r->ow, r->oh);
    if (max_side == 0)
        max_side = r->heatmap_max_side;
    if (max_side < 16 || max_side > 65535)
        return bcd__ctx_fail(ctx, BCD_EINVAL, "invalid_argument", "max_side out of range");

    /* the photo's own pixels where it is no larger than the overlay (the usual case: the
     * photo reduced for detection), else reduced to it */
    uint32_t longer = current->width > current->height ? current->width : current->height;
    bool direct = longer <= max_side;
    bcd__work wk = { 0 };
    if (direct) {
        wk.w = (int)current->width;
        wk.h = (int)current->height;
    } else if (bcd__work_load(&wk, current, (int)max_side) != BCD_OK) {
        return bcd__ctx_fail(ctx, BCD_ENOMEM, "out_of_memory", "cannot allocate the heatmap");
    }
    bcd_image *img = bcd__image_new((uint32_t)wk.w, (uint32_t)wk.h, 3);
    /* per column: the map's x coordinate (float, and rounded for the mask) */
    float *fu = malloc((size_t)wk.w * sizeof *fu);
    long *iu = malloc((size_t)wk.w * sizeof *iu);
    uint8_t *quiet = malloc((size_t)r->map->h);
    if (!img || !fu || !iu || !quiet) {
        bcd_image_free(img);
        free(fu);
        free(iu);
        free(quiet);
        bcd__work_clear(&wk);
        return bcd__ctx_fail(ctx, BCD_ENOMEM, "out_of_memory", "cannot allocate the heatmap");
    }
    uint8_t *px = img->data;
    const bcd__plane *E = r->map;
    double sx = (double)E->w / wk.w, sy = (double)E->h / wk.h;
    for (int x = 0; x < wk.w; x++) {
        double u = map_coord(x, sx, E->w);
        fu[x] = (float)u;
        iu[x] = lround(u);
    }
    /* a photo of bytes: the two commonest outputs (outside the mask, and no evidence)
     * looked up per byte value, computed as below */
    uint8_t dim_lut[256], calm_lut[3][256];
    if (direct)
        for (int s = 0; s < 256; s++) {
            float src[3] = { (float)s, (float)s, (float)s };
            uint8_t o[3];
            dim_pixel(src, o);
            dim_lut[s] = o[0];
            heat_pixel(0.0f, src, o);
            for (int c = 0; c < 3; c++)
                calm_lut[c][s] = o[c];
        }
    /* the map's rows without evidence (most: it is zero below the noise floor); an
     * overlay row between two of them has none either, as interpolation would find */
    for (int y = 0; y < E->h; y++) {
        const float *row = E->px + (size_t)y * E->w;
        int x = 0;
        while (x < E->w && row[x] == 0.0f)
            x++;
        quiet[y] = x == E->w;
    }
    for (int y = 0; y < wk.h; y++) {
        double v = map_coord(y, sy, E->h);
        const float fv = (float)v;
        const uint8_t *mrow = r->mask + (size_t)lround(v) * E->w;
        bcd__bilinear rows = bcd__bilinear_at(1, E->h, 0.0f, fv);
        bool calm = quiet[rows.at] && quiet[rows.at + rows.down];
        for (int x = 0; x < wk.w; x++) {
            size_t i = (size_t)y * wk.w + x;
            uint8_t *o = px + 3 * i;
            float e = mrow[iu[x]] && !calm ? bcd__plane_at(E, fu[x], fv) / HEAT_SATURATION : 0.0f;
            if (direct) {
                const uint8_t *in = current->data + 3 * i;
                if (!mrow[iu[x]]) {
                    o[0] = dim_lut[in[0]];
                    o[1] = dim_lut[in[1]];
                    o[2] = dim_lut[in[2]];
                    continue;
                }
                if (e == 0.0f) {
                    o[0] = calm_lut[0][in[0]];
                    o[1] = calm_lut[1][in[1]];
                    o[2] = calm_lut[2][in[2]];
                    continue;
                }
            }
            float src[3];
            for (int c = 0; c < 3; c++)
                src[c] = direct ? current->data[3 * i + c] : wk.c[c]->px[i];
            if (!mrow[iu[x]])
                dim_pixel(src, o);
            else
                heat_pixel(e, src, o);
        }
    }
    free(fu);
    free(iu);
    free(quiet);
    /* outline the regions (2 px, white) */
    double fx = (double)wk.w / r->ow, fy = (double)wk.h / r->oh;
    for (size_t k = 0; k < r->nregions; k++) {
        const bcd_detect_region *g = &r->regions[k];
        int x0 = (int)floor(g->x * fx), y0 = (int)floor(g->y * fy);
        int x1 = (int)ceil((g->x + g->width) * fx) - 1, y1 = (int)ceil((g->y + g->height) * fy) - 1;
        if (x1 >= wk.w)
            x1 = wk.w - 1;
        if (y1 >= wk.h)
            y1 = wk.h - 1;
        for (int y = y0; y <= y1; y++)
            for (int x = x0; x <= x1; x++) {
                if (x - x0 >= 2 && x1 - x >= 2 && y - y0 >= 2 && y1 - y >= 2)
                    continue;
                uint8_t *p = px + 3 * ((size_t)y * wk.w + x);
                p[0] = p[1] = p[2] = 255;
            }
    }
    bcd__work_clear(&wk);
    *out = img;
    return BCD_OK;
}

bcd_status bcd_detect_write_heatmap(bcd_ctx *ctx, const bcd_detect_result *r, const bcd_image *current,
                                    const char *path)
{
    bcd__ctx_clear(ctx);
    if (!path || !*path)
        return bcd__ctx_fail(ctx, BCD_EINVAL, "invalid_argument", "bcd_detect_write_heatmap: a path is required");
    bcd_image *img = NULL;
    bcd_status st = bcd_detect_render_heatmap(&img, ctx, r, current, 0);
    if (st != BCD_OK)
        return st;
    st = bcd_image_write_png(ctx, img, path);
    bcd_image_free(img);
    return st;
}
