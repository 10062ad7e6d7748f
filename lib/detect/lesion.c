/* Public API of the lesions (bcd/lesion.h): states, ids, per-lesion change, JSON. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "image/image_internal.h"
#include "lesion_internal.h"

/* Measurement noise of a spot's edge, analysis pixels (one standard deviation). */
#define EDGE_SD 0.7
/* Relative noise of sizes between two photos of the same spot (blur, light, threshold). */
#define SIZE_REL_SD 0.07
/* Smallest changes that count, whatever their z-score. */
#define MIN_DIAM_GROWTH 0.15   /* of the previous diameter */
#define MIN_DIAM_GROWTH_AN 2.0 /* analysis pixels */
#define MIN_DIAM_GROWTH_MM 0.5
#define MIN_DARKENING 0.30     /* ln of the contrast ratio */
#define MIN_DELTA_E 7.0
#define MIN_PART_DE 5.0  /* a part of the lesion whose colour changed this much more (CIE76) */
#define Z_PART 5.0       /* ... and this far beyond the pair's spread of the same measure */
#define PART_SD_MIN 0.8
#define MAX_FOCUS_DK 0.3 /* the spots around it darkened within this of the pair's median */
#define PART_MED_DEFAULT 1.8 /* the measure's typical value and spread on unchanged lesions, */
#define PART_SD_DEFAULT 0.8  /* used when a pair has too few lesions of about the same size */
#define Z_CHANGED 3.0
/* Light: a lesion is judged only where the skin's brightness changed about as much as the
 * pair's median (not a shadow band in one photo only) and is not near clipping, where the
 * camera's tone curve squeezes contrasts. */
#define MAX_LIGHT_DIFF 0.25
#define MAX_EVEN_LIGHT_DIFF 1.0 /* where the light is even around the spot in both photos */
#define MAX_SIZE_LIGHT_DIFF 0.6 /* a change of size is judged up to this */
#define EVEN_LIGHT 0.25
/* Faint spots (freckles) change their measured size and contrast with every change of
 * blur and noise: a lesion is judged when it is at least this dark in one of the photos. */
#define MIN_JUDGED_CONTRAST 0.25
#define GROWN_MAX 25.0         /* a spot grown at most this much in area is the same one */
#define PAIR_MAX_AREA 40.0     /* a gone spot and a new one at its place: the same lesion */
#define FAR_PAIR 0.04          /* of the longer side: a misplaced mole's counterpart within this */
#define MIN_NEW_CONTRAST 0.3   /* a new lesion this dark at least (ln G), */
#define MIN_NEW_DELTA_E 10.0   /* or this far in colour from the skin around it (CIEDE2000) */
#define MIN_AGREEMENT 0.4      /* correlation of the skin around a new spot with the previous photo's */
#define MIN_SIZE_CONTRAST 0.4  /* a size change is judged on spots this dark in both photos */
#define SIZE_BAND 1.4          /* lesions "of about the same size" */
#define BLUR_SIGNATURE 0.25
#define MAX_SKIN_LEVEL 0.80
#define MAX_SKIN_RED 0.90 /* near clipping in red: the skin's colour, and so the lesion's
                           * against it, is not measured */
#define SKIN_EDGE_SHARE 0.30   /* of the skin around a spot not visible: at the skin's edge */

struct bcd_lesion_result {
    bcd_lesion_status status;
    char reason[160];
    double mm_per_px, prev_mm_per_px;
    bcd_lesion *l;
    size_t n;
    double H[9];
    double residual;
    double agreement;    /* the registration's share of the strongest spots matched */
    double chance;       /* ... and what chance matches */
    double light_median; /* the pair's median ln ratio of skin brightness */
    uint8_t *even;       /* per lesion: the light is even around it in both photos */
    uint8_t *why;        /* per lesion: why its change is not judged (enum why), 0 if it is */
    double *near_dk;     /* per lesion: the darkening of the matched spots around it (ln of
                            the ratio of contrasts, their median; NaN when too few): how
                            this part of the photo changed in focus */
    size_t spots, prev_spots, matched;
};

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static const char *const state_names[] = { "matched", "new", "gone", "not_visible" };

/* Why a matched lesion's change is measured but not judged. */
enum why { WHY_NONE, WHY_CLIPPED, WHY_EDGE, WHY_FAINT, WHY_LIGHT, WHY_UNVERIFIED, WHY_FAR, WHY_MERGED, WHY_SKIN_EDGE };
static const char *const why_names[] = { NULL,
                                         "near_clipping",
                                         "frame_edge",
                                         "too_faint",
                                         "light_differs",
                                         "registration_unverified",
                                         "far_from_mapping",
                                         "not_separated",
                                         "skin_edge" };

const char *bcd_lesion_state_name(bcd_lesion_state s)
{
    return (unsigned)s < 4 ? state_names[s] : "unknown";
}

static bcd_status check_opts(bcd_ctx *ctx, const bcd_lesion_options *o)
{
    if (o->version != BCD_LESION_OPTIONS_VERSION)
        return bcd__ctx_fail(ctx, BCD_EINVAL, "invalid_options", "unknown bcd_lesion_options version %u",
                             o->version);
    if ((o->analysis_side && (o->analysis_side < 512 || o->analysis_side > 8192)) ||
        !(o->mm_per_px >= 0.0 && isfinite(o->mm_per_px)) ||
        !(o->previous_mm_per_px >= 0.0 && isfinite(o->previous_mm_per_px)) || (o->nprevious && !o->previous) ||
        (!o->current_width != !o->current_height) || (!o->previous_width != !o->previous_height))
        return bcd__ctx_fail(ctx, BCD_EINVAL, "invalid_options", "bcd_lesion_options value out of range");
    return BCD_OK;
}

static bool photo_ok(const bcd_image *img)
{
    return img && img->data && img->width >= 32 && img->height >= 32 && img->channels == 3;
}

void bcd_lesion_result_free(bcd_lesion_result *r)
{
    if (!r)
        return;
    free(r->l);
    free(r->even);
    free(r->why);
    free(r->near_dk);
    free(r);
}

static bcd_lesion_result *result_new(size_t cap, const bcd_lesion_options *o)
{
    bcd_lesion_result *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->l = calloc(cap ? cap : 1, sizeof *r->l);
    r->even = calloc(cap ? cap : 1, 1);
    r->why = calloc(cap ? cap : 1, 1);
    r->near_dk = calloc(cap ? cap : 1, sizeof *r->near_dk);
    if (!r->l || !r->even || !r->why || !r->near_dk) {
        free(r->l);
        free(r->even);
        free(r->why);
        free(r->near_dk);
        free(r);
        return NULL;
    }
    r->mm_per_px = o->mm_per_px > 0 ? o->mm_per_px : NAN;
    r->prev_mm_per_px = o->previous_mm_per_px > 0 ? o->previous_mm_per_px : NAN;
    r->residual = NAN;
    r->agreement = NAN;
    r->chance = NAN;
    return r;
}

static void lesion_from_spot(bcd_lesion *l, const bcd__spot *s, double mm)
{
    l->diameter_px = s->diameter;
    l->diameter_mm = isfinite(mm) ? s->diameter * mm : NAN;
    l->area_px = s->area;
    memcpy(l->lab, s->lab, sizeof l->lab);
    l->spread = s->spread;
    l->irregularity = s->irregularity;
    l->asymmetry = s->asymmetry;
    l->contrast = s->contrast;
}

static void lesion_blank(bcd_lesion *l)
{
    memset(l, 0, sizeof *l);
    l->x = l->y = l->prev_x = l->prev_y = NAN;
    l->diameter_mm = NAN;
    l->score = NAN;
}

bcd_status bcd_lesion_find(bcd_lesion_result **out, bcd_ctx *ctx, const bcd_image *photo,
                           const bcd_lesion_options *opts)
{
    bcd__ctx_clear(ctx);
    bcd_lesion_options d = BCD_LESION_OPTIONS_INIT;
    if (!opts)
        opts = &d;
    if (!out || !photo_ok(photo))
        return bcd__ctx_fail(ctx, BCD_EINVAL, "invalid_argument",
                             "bcd_lesion_find: an RGB image of at least 32 x 32 pixels is required");
    bcd_status st = check_opts(ctx, opts);
    if (st != BCD_OK)
        return st;
    bcd__spotmap m;
    st = bcd__spots_find(&m, photo, (int)opts->analysis_side, opts->current_width, opts->current_height);
    if (st != BCD_OK)
        return bcd__ctx_fail(ctx, st, "out_of_memory", "out of memory finding spots");
    bcd_lesion_result *r = result_new(m.n, opts);
    if (!r) {
        bcd__spotmap_clear(&m);
        return bcd__ctx_fail(ctx, BCD_ENOMEM, "out_of_memory", "out of memory");
    }
    r->status = BCD_LESION_FIRST;
    uint32_t id = opts->next_id ? opts->next_id : 1;
    for (size_t i = 0; i < m.n; i++) {
        bcd_lesion *l = &r->l[r->n++];
        lesion_blank(l);
        l->id = id++;
        l->state = BCD_LESION_NEW;
        l->x = m.spots[i].x;
        l->y = m.spots[i].y;
        lesion_from_spot(l, &m.spots[i], r->mm_per_px);
    }
    r->spots = m.n;
    bcd__spotmap_clear(&m);
    *out = r;
    return BCD_OK;
}

/* A spot too close to the frame's edge to see its surroundings (lens falloff, cut off). */
static bool near_border(const bcd__spotmap *m, const bcd__spot *s)
{
    double L = m->ow > m->oh ? m->ow : m->oh, g = 2.0 * s->diameter + 0.01 * L;
    return s->x < g || s->y < g || s->x > m->ow - 1.0 - g || s->y > m->oh - 1.0 - g;
}

/* Spot s lies at the edge of the skin (clothing, hair, the background, a deep shadow):
 * what lies beyond it casts shadows and changes the spot's surroundings between photos.
 * True when more than SKIN_EDGE_SHARE of a ring around it (a quarter of its diameter wide,
 * at least 4 analysis pixels) is not visible skin. */
static bool skin_edge(const bcd__spotmap *m, const bcd__spot *s)
{
    /* the skin mask is decided by blocks, and a block across a mole's edge is too varied to
     * pass as skin: the ring starts a block beyond the spot */
    double r0 = 0.5 * s->diameter * m->fx + 10.0, r = r0 + fmax(4.0, 0.25 * s->diameter * m->fx);
    int cx = (int)lround((s->x + 0.5) * m->fx - 0.5), cy = (int)lround((s->y + 0.5) * m->fy - 0.5), R = (int)ceil(r);
    int n = 0, off = 0;
    for (int y = cy - R; y <= cy + R; y++)
        for (int x = cx - R; x <= cx + R; x++) {
            double d2 = (double)(x - cx) * (x - cx) + (double)(y - cy) * (y - cy);
            if (d2 <= r0 * r0 || d2 > r * r)
                continue;
            n++;
            if (x < 0 || y < 0 || x >= m->w || y >= m->h) {
                off++;
                continue;
            }
            size_t i = (size_t)y * m->w + x;
            off += !m->skin[i] || m->dark[i];
        }
    return off > SKIN_EDGE_SHARE * n;
}

/* Spot s lies where the red channel clips on the skin around it (more than
 * SKIN_EDGE_SHARE of the same ring as skin_edge()'s): its colour, and the colour of any part
 * of it, are not measured against that skin. */
static bool red_clipped(const bcd__spotmap *m, const bcd__spot *s)
{
    double r0 = 0.5 * s->diameter * m->fx + 2.0, r = r0 + fmax(6.0, 0.5 * s->diameter * m->fx);
    int cx = (int)lround((s->x + 0.5) * m->fx - 0.5), cy = (int)lround((s->y + 0.5) * m->fy - 0.5), R = (int)ceil(r);
    int n = 0, hot = 0;
    for (int y = cy - R; y <= cy + R; y++)
        for (int x = cx - R; x <= cx + R; x++) {
            double d2 = (double)(x - cx) * (x - cx) + (double)(y - cy) * (y - cy);
            if (d2 <= r0 * r0 || d2 > r * r || x < 0 || y < 0 || x >= m->w || y >= m->h)
                continue;
            n++;
            hot += m->c[0]->px[(size_t)y * m->w + x] >= 248.0f;
        }
    return n > 0 && hot > SKIN_EDGE_SHARE * n;
}

/* The skin around spot s is evenly lit: its brightness in four discs around it (two
 * diameters away, each way) within EVEN_LIGHT (ln units) of each other. Under such light,
 * a change of light between the photos is one factor that the spot's contrast and colour,
 * taken against that skin, do not see; where a shadow's edge passes, they would. */
static bool even_light(const bcd__spotmap *m, const bcd__spot *s)
{
    double r = fmax(s->diameter, 3.0 / m->fx), lo = INFINITY, hi = 0;
    static const int ox[4] = { 1, -1, 0, 0 }, oy[4] = { 0, 0, 1, -1 };
    for (int k = 0; k < 4; k++) {
        double v = bcd__spots_skin_level(m, s->x + 2.0 * r * ox[k], s->y + 2.0 * r * oy[k], 0.7 * r);
        if (!isfinite(v) || v <= 1e-4)
            return false;
        lo = fmin(lo, v);
        hi = fmax(hi, v);
    }
    return log(hi / lo) <= EVEN_LIGHT;
}

/* The change of a matched pair: prev spot p, current spot c; J the local area scale of
 * the mapping previous -> current. Fills l->change, l->score and l->changed. */
static void measure_change(bcd_lesion *l, uint8_t *even, uint8_t *why, const bcd__spot *p, const bcd__spot *c, double J, const bcd__spotmap *P,
                           const bcd__spotmap *C, const bcd__warp *bwd, double mm, double prev_mm)
{
    bcd_lesion_change *ch = &l->change;
    double s = sqrt(J);
    double fc = C->fx, fp = P->fx;
    /* area */
    double ap = p->area * J, ac = c->area;
    double rel_c = M_PI * c->diameter * (EDGE_SD / fc) / ac, rel_p = M_PI * p->diameter * (EDGE_SD / fp) / p->area;
    double rel = sqrt(rel_c * rel_c + rel_p * rel_p + 2 * (2 * SIZE_REL_SD) * (2 * SIZE_REL_SD));
    ch->area_pct = (ac / ap - 1.0) * 100.0;
    ch->area_pct_sd = rel * 100.0 * (ac / ap);
    /* longest diameter, current pixels */
    double dp = p->diameter * s;
    ch->diameter_px = c->diameter - dp;
    double e_c = EDGE_SD * 1.4 / fc, e_p = EDGE_SD * 1.4 / fp * s;
    ch->diameter_px_sd = sqrt(e_c * e_c + e_p * e_p + 2 * (SIZE_REL_SD * c->diameter) * (SIZE_REL_SD * c->diameter));
    if (isfinite(mm)) {
        double pm = isfinite(prev_mm) ? p->diameter * prev_mm : dp * mm;
        ch->diameter_mm = c->diameter * mm - pm;
        ch->diameter_mm_sd = ch->diameter_px_sd * mm;
    } else {
        ch->diameter_mm = ch->diameter_mm_sd = NAN;
    }
    /* colour with the surrounding skin matched: the previous spot seen under the current light */
    double rgb[3], lab[3];
    for (int k = 0; k < 3; k++)
        rgb[k] = p->rgb[k] * (p->skin_rgb[k] > 1e-6 ? c->skin_rgb[k] / p->skin_rgb[k] : 1.0);
    bcd__linear_to_lab(rgb, lab);
    ch->delta_e = bcd__delta_e2000(lab, c->lab);
    ch->delta_e_sd = 1.5 + 0.5 * (p->spread + c->spread) / sqrt(1.0 + c->area * fc * fc / 4.0);
    /* darkening: ratio of mean contrasts */
    double mp = p->mean_contrast > 0.01 ? p->mean_contrast : 0.01, mc = c->mean_contrast > 0.01 ? c->mean_contrast : 0.01;
    ch->darkening = log(mc / mp);
    ch->darkening_sd = 0.08 + 0.5 * (P->noise / mp + C->noise / mc);
    ch->spread = c->spread - p->spread;
    ch->spread_sd = 1.0 + 0.15 * (c->spread + p->spread);
    /* pixel by pixel only where a second colour can be judged (a spot that stands out) */
    if (c->contrast >= MIN_SIZE_CONTRAST)
        bcd__lesion_patch(P, C, p, c, bwd, &ch->pixel_delta_e, &ch->part_delta_e);
    else
        ch->pixel_delta_e = ch->part_delta_e = NAN;
    ch->light = log(fmax(c->skin_rgb[1], 1e-4) / fmax(p->skin_rgb[1], 1e-4));
    *why = c->skin_rgb[1] >= MAX_SKIN_LEVEL || p->skin_rgb[1] >= MAX_SKIN_LEVEL ||
                   c->skin_rgb[0] >= MAX_SKIN_RED || p->skin_rgb[0] >= MAX_SKIN_RED || red_clipped(C, c) ||
                   red_clipped(P, p)
               ? WHY_CLIPPED
           : near_border(C, c) || near_border(P, p)                          ? WHY_EDGE
           : skin_edge(C, c) || skin_edge(P, p)                              ? WHY_SKIN_EDGE
           : fmax(c->contrast, p->contrast) < MIN_JUDGED_CONTRAST            ? WHY_FAINT
                                                                             : WHY_NONE;
    ch->judged = *why == WHY_NONE;
    *even = even_light(C, c) && even_light(P, p);
    ch->asymmetry = c->asymmetry - p->asymmetry;
    ch->irregularity = c->irregularity - p->irregularity;
    l->has_change = 1;

    /* what score_changes() needs */
    l->score = NAN;
    l->changed = 0;
    ch->second_colour = 0;
    (void)dp;
}

/* The per-pair spread of a measure over the matched lesions: median and 1.4826 MAD; both
 * 0 when fewer than nmin. */
static void robust_stats(double *v, size_t n, size_t nmin, double *med, double *sd)
{
    if (n < nmin) {
        *med = 0;
        *sd = 0;
        return;
    }
    qsort(v, n, sizeof *v, cmp_dbl);
    double m = v[n / 2];
    for (size_t i = 0; i < n; i++)
        v[i] = fabs(v[i] - m);
    qsort(v, n, sizeof *v, cmp_dbl);
    *med = m;
    *sd = 1.4826 * v[n / 2];
}

/* The medians of darkening and of colour change (delta E) over the matched lesions
 * whose diameter is within a factor SIZE_BAND of d, and the median and spread of the
 * change of a part (part_delta_e); each left as it is when fewer than 8. */
static void size_med(const bcd_lesion_result *r, double d, double *dark, double *de, double *part, double *part_sd)
{
    double v[3][512];
    size_t np = 0;
    size_t m = 0;
    for (size_t i = 0; i < r->n && m < 512; i++) {
        const bcd_lesion *l = &r->l[i];
        if (!l->has_change || l->diameter_px < d / SIZE_BAND || l->diameter_px > d * SIZE_BAND)
            continue;
        v[0][m] = l->change.darkening;
        v[1][m] = l->change.delta_e;
        m++;
        if (isfinite(l->change.part_delta_e))
            v[2][np++] = l->change.part_delta_e;
    }
    if (np >= 8)
        robust_stats(v[2], np, 8, part, part_sd);
    if (m < 8)
        return;
    qsort(v[0], m, sizeof(double), cmp_dbl);
    qsort(v[1], m, sizeof(double), cmp_dbl);
    *dark = v[0][m / 2];
    *de = v[1][m / 2];
}

/* The change scores of the matched lesions. Two photos of the same skin differ in light,
 * blur and pose: the measures of every lesion move a little together. Their median over
 * the pair is taken as the pair's own offset and their spread (MAD) as a floor of each
 * measure's noise, so that only lesions that change against the others stand out; a
 * change counts when its z-score is high and it is also large enough to matter. */
static bcd_status score_changes(bcd_lesion_result *r, double fc, double mm)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++)
        n += r->l[i].has_change != 0;
    double *v = malloc((n + 1) * 4 * sizeof *v);
    if (!v)
        return BCD_ENOMEM;
    /* size (ln of the ratio of diameters), darkening, delta E, light */
    double med[4], sd[4];
    for (int k = 0; k < 4; k++) {
        size_t m = 0;
        for (size_t i = 0; i < r->n; i++) {
            const bcd_lesion *l = &r->l[i];
            /* a pair far from where the mapping puts it may be two spots: not in the pair's
             * statistics */
            if (!l->has_change || r->why[i] == WHY_FAR)
                continue;
            const bcd_lesion_change *c = &l->change;
            /* sizes are judged on the spots that stand out in both photos; a faint freckle's
             * outline moves with blur and texture, and would set the size's noise for all */
            if (k == 0 && fmin(l->contrast, l->contrast * exp(-c->darkening)) < MIN_SIZE_CONTRAST)
                continue;
            double dp = l->diameter_px - c->diameter_px;
            v[m++] = k == 0 ? log((l->diameter_px + 1.0) / (dp + 1.0))
                     : k == 1 ? c->darkening
                     : k == 2 ? c->delta_e
                              : c->light;
        }
        robust_stats(v, m, k == 0 ? 5 : 8, &med[k], &sd[k]);
    }
    free(v);
    r->light_median = med[3];
    for (size_t i = 0; i < r->n; i++) {
        bcd_lesion *l = &r->l[i];
        if (!l->has_change)
            continue;
        l->change.light -= med[3];
        /* the outline is taken against the skin right around the spot, so its size holds
         * under a larger change of light than its darkness and colour do */
        double lim = r->even[i] ? MAX_EVEN_LIGHT_DIFF : MAX_LIGHT_DIFF;
        bool size_only = fabs(l->change.light) > lim;
        if (l->change.judged && fabs(l->change.light) > fmax(lim, MAX_SIZE_LIGHT_DIFF)) {
            l->change.judged = 0;
            r->why[i] = WHY_LIGHT;
        }
        if (l->change.judged && !l->in_overlap) {
            l->change.judged = 0;
            r->why[i] = WHY_UNVERIFIED;
        }
        bcd_lesion_change *c = &l->change;
        double dc = l->diameter_px, dp = dc - c->diameter_px;
        if (!c->judged) {
            /* registration not verified here, or the light differs: measured, not judged */
            c->judged = 0;
            l->score = NAN;
            l->changed = 0;
            continue;
        }
        /* size: log ratio of diameters */
        double ld = log((dc + 1.0) / (dp + 1.0)) - med[0];
        double sdd = fmax(c->diameter_px_sd / fmax(dc, 1.0), sd[0]);
        double growth = dc - (dp + 1.0) * exp(med[0]) + 1.0;
        double dmin = fmax(MIN_DIAM_GROWTH * dp, MIN_DIAM_GROWTH_AN / fc);
        /* a faint spot's outline is at the mercy of the skin's texture: its size is judged
         * only when it stands out in both photos */
        double kmin = fmin(l->contrast, l->contrast * exp(-c->darkening));
        bool big_d = growth >= dmin && (!isfinite(mm) || growth * mm >= MIN_DIAM_GROWTH_MM) &&
                     kmin >= MIN_SIZE_CONTRAST;
        double zmax = 0;
        /* blur and sharpening change small spots' contrast and colour more than large
         * ones': darkening and colour are taken against the lesions of about this size */
        double mk = med[1], me = med[2], mpart = PART_MED_DEFAULT, sdpart = PART_SD_DEFAULT;
        size_med(r, dc, &mk, &me, &mpart, &sdpart);
        /* where the spots around it darkened more than the pair's (this part of one photo
         * in sharper focus), that is the camera too */
        double nd = r->near_dk[i];
        double dk = c->darkening - (isfinite(nd) ? fmax(mk, nd) : mk), sdk = fmax(c->darkening_sd, sd[1]);
        /* blur spreads a spot and pales it, sharpening does the reverse: a growth that
         * paled, or a darkening that shrank, is the camera, not the skin */
        if (big_d && dk > -BLUR_SIGNATURE)
            zmax = fmax(zmax, ld / sdd);
        /* a darkening or a new colour counts on a spot that stands out now (a faint
         * freckle's contrast and colour are at the mercy of blur and of the skin's texture) */
        bool stands = l->contrast >= MIN_SIZE_CONTRAST && !size_only;
        if (dk >= MIN_DARKENING && ld > -0.5 * BLUR_SIGNATURE && stands)
            zmax = fmax(zmax, dk / sdk);
        double de = c->delta_e - me, sde = fmax(c->delta_e_sd, sd[2]);
        if (de >= MIN_DELTA_E && dk >= 0.0 && stands)
            zmax = fmax(zmax, de / sde);
        /* a second colour: a part of the lesion changed colour much more than the rest, and
         * much more than the parts of the other lesions of about its size */
        double dpart = c->part_delta_e - mpart, zpart = dpart / fmax(sdpart, PART_SD_MIN);
        /* ... where both photos are about as sharp as elsewhere (blur mixes a lesion's
         * colours in one photo only) */
        bool focus = (!isfinite(nd) || fabs(nd - med[1]) <= MAX_FOCUS_DK) && !size_only;
        c->second_colour = isfinite(dpart) && dpart >= MIN_PART_DE && zpart >= Z_PART && focus;
        if (c->second_colour)
            zmax = fmax(zmax, Z_CHANGED + (zpart - Z_PART));
        l->score = 1.0 / (1.0 + exp(-1.5 * (zmax - Z_CHANGED)));
        l->changed = l->score >= 0.5;
    }
    return BCD_OK;
}

/* Id of the previous check's lesion at (x, y) in the previous photo, 0 if none. */
static uint32_t ref_id(const bcd_lesion_options *o, double x, double y, double tol, bool *used)
{
    size_t best = o->nprevious;
    double bd = tol;
    for (size_t k = 0; k < o->nprevious; k++) {
        if (used[k])
            continue;
        double d = hypot(o->previous[k].x - x, o->previous[k].y - y);
        if (d <= bd) {
            bd = d;
            best = k;
        }
    }
    if (best == o->nprevious)
        return 0;
    used[best] = true;
    return o->previous[best].id;
}

/* How the contrast of spots carries over from the current photo to the previous one, near
 * a place: the median ratio previous / current of matched spots around it. */
struct transfer {
    size_t n;
    double *x, *y, *ratio;
    double global;
};

static int cmp_dbl(const void *a, const void *b);

static void transfer_free(struct transfer *t)
{
    free(t->x);
    t->x = NULL;
}

static bool transfer_make(struct transfer *t, const bcd__spotmap *P, const bcd__spotmap *C, const int *match)
{
    memset(t, 0, sizeof *t);
    t->x = malloc(3 * (P->n + 1) * sizeof(double));
    if (!t->x)
        return false;
    t->y = t->x + P->n + 1;
    t->ratio = t->y + P->n + 1;
    for (size_t i = 0; i < P->n; i++) {
        if (match[i] < 0)
            continue;
        const bcd__spot *c = &C->spots[match[i]];
        t->x[t->n] = c->x;
        t->y[t->n] = c->y;
        t->ratio[t->n] = P->spots[i].contrast / fmax(c->contrast, 1e-3);
        t->n++;
    }
    double *v = malloc((t->n + 1) * sizeof *v);
    if (!v) {
        transfer_free(t);
        return false;
    }
    memcpy(v, t->ratio, t->n * sizeof *v);
    qsort(v, t->n, sizeof *v, cmp_dbl);
    t->global = t->n ? v[t->n / 2] : 1.0;
    free(v);
    return true;
}

/* The median ratio of the matched spots within R of (x, y) (the spot at (x, y) itself left
 * out); NaN when fewer than three. */
static double transfer_near(const struct transfer *t, double x, double y, double R)
{
    double v[64];
    size_t k = 0;
    for (size_t i = 0; i < t->n && k < 64; i++)
        if (fabs(t->x[i] - x) <= R && fabs(t->y[i] - y) <= R && (t->x[i] != x || t->y[i] != y))
            v[k++] = t->ratio[i];
    if (k < 3)
        return NAN;
    qsort(v, k, sizeof *v, cmp_dbl);
    return v[k / 2];
}

static double transfer_at(const struct transfer *t, double x, double y, double R)
{
    double v = transfer_near(t, x, y, R);
    return isfinite(v) ? v : t->global;
}

/* The diameter of the smallest fifth of the spots within R of (x, y) (photo pixels): the
 * smallest spot the photo resolves there. 0 when fewer than five. */
static double small_spots(const bcd__spotmap *m, double x, double y, double R)
{
    double v[256];
    size_t k = 0;
    for (size_t i = 0; i < m->n && k < 256; i++)
        if (fabs(m->spots[i].x - x) <= R && fabs(m->spots[i].y - y) <= R)
            v[k++] = m->spots[i].diameter;
    if (k < 5)
        return 0;
    qsort(v, k, sizeof *v, cmp_dbl);
    return v[k / 5];
}

/* A spot found by a probe is the same spot only if it is about as large and as dark
 * (within a factor 2.5 of area and of mean darkness, the darkness as the neighbours' carries
 * over: tr, previous / current); a peak of a neighbouring freckle or of the skin's texture
 * is not. s: previous -> current length scale. Returns 1 when alike, 2 when the current
 * one is the previous one grown (larger by 2.5 to GROWN_MAX times in area, as dark within
 * the same factor, and the previous one clearly a spot), 0 otherwise. */
static int alike(const bcd__spot *p, const bcd__spot *c, double s, double tr)
{
    double ra = c->area / fmax(p->area * s * s, 1e-9), rk = c->mean_contrast * tr / fmax(p->mean_contrast, 1e-6);
    if (rk <= 0.4 || rk >= 2.5)
        return 0;
    if (ra > 0.4 && ra < 2.5)
        return 1;
    /* grown: only a spot that stood out already (a faint freckle next to a new mole, or
     * one that a shadow hid, is not a mole that grew) */
    return ra >= 2.5 && ra <= GROWN_MAX && p->contrast >= MIN_SIZE_CONTRAST ? 2 : 0;
}

/* The skin around (cx, cy) in the current photo and around (px, py) in the previous one is
 * lit alike (up to the pair's median change) and not near clipping. */
static bool same_light(const bcd__spotmap *C, double cx, double cy, const bcd__spotmap *P, double px, double py,
                       double radius, double median)
{
    double lc = bcd__spots_skin_level(C, cx, cy, radius), lp = bcd__spots_skin_level(P, px, py, radius);
    if (!isfinite(lc) || !isfinite(lp) || lc >= MAX_SKIN_LEVEL || lp >= MAX_SKIN_LEVEL)
        return false;
    return fabs(log(fmax(lc, 1e-4) / fmax(lp, 1e-4)) - median) <= MAX_LIGHT_DIFF;
}

static bool inside(const bcd__spotmap *m, double x, double y)
{
    return x >= 0 && y >= 0 && x <= m->ow - 1.0 && y <= m->oh - 1.0;
}

/* Lesion g (a gone previous spot p) becomes the match of current spot c: the previous id
 * kept, the rest measured again with J, the mapping's local area scale at p. */
static void rematch(bcd_lesion_result *r, size_t g, const bcd__spot *p, const bcd__spot *c, double J,
                    const bcd__spotmap *P, const bcd__spotmap *C, const bcd__spot_match *sm, double mm, double pmm)
{
    bcd_lesion *lg = &r->l[g];
    uint32_t id = lg->id;
    lesion_blank(lg);
    lg->id = id;
    lg->state = BCD_LESION_MATCHED;
    lg->x = c->x;
    lg->y = c->y;
    lg->prev_x = p->x;
    lg->prev_y = p->y;
    lesion_from_spot(lg, c, mm);
    measure_change(lg, &r->even[g], &r->why[g], p, c, J, P, C, &sm->bwd, mm, pmm);
    r->matched++;
}

/* Lesion k kept at place out (out <= k) of r's list and of src. */
static void keep_at(bcd_lesion_result *r, int *src, size_t out, size_t k)
{
    r->l[out] = r->l[k];
    r->even[out] = r->even[k];
    r->near_dk[out] = r->near_dk[k];
    r->why[out] = r->why[k];
    src[out] = src[k];
}

/* A previous spot not found again (gone) where a new one now lies is that lesion,
 * changed past what a probe accepts as the same spot (grown many times, much darker, or
 * grown to one side): the two become one matched lesion, with the previous id, and its
 * change is judged like any other. src: the spot of each lesion; lesions [0, nprev) were
 * made from previous spots, the others from current ones. */
static void pair_gone_new(bcd_lesion_result *r, int *src, size_t nprev, const bcd__spotmap *P,
                          const bcd__spotmap *C, const bcd__spot_match *sm, double mm, double pmm)
{
    size_t out = nprev;
    for (size_t k = nprev; k < r->n; k++) {
        bcd_lesion *ln = &r->l[k];
        bool merged = false;
        /* a new spot that is a change by itself stays one, unless a gone spot that stood
         * out lies right under it (below) */
        if (ln->state == BCD_LESION_NEW) {
            const bcd__spot *c = &C->spots[src[k]];
            size_t best = nprev;
            double bd = INFINITY;
            for (size_t g = 0; g < nprev; g++) {
                const bcd_lesion *lg = &r->l[g];
                if (lg->state != BCD_LESION_GONE)
                    continue;
                double dist = hypot(lg->x - c->x, lg->y - c->y);
                /* inside the new spot, or the new spot's centre inside where the old one is */
                if (dist > 0.5 * fmax(c->diameter, lg->diameter_px) + 2.0 * sm->residual || dist >= bd)
                    continue;
                /* a flagged new spot: only onto a gone one that stood out, under its middle */
                if (ln->changed && (P->spots[src[g]].contrast < MIN_SIZE_CONTRAST ||
                                    dist > 0.5 * fmin(c->diameter, lg->diameter_px) + sm->residual))
                    continue;
                /* an area many times the largest growth of a mole is another thing (the
                 * mapping's local scale only for the few near enough) */
                double ra = c->area / fmax(P->spots[src[g]].area * bcd__warp_area_scale(&sm->fwd, lg->prev_x, lg->prev_y), 1e-9);
                if (ra <= PAIR_MAX_AREA && ra >= 1.0 / PAIR_MAX_AREA) {
                    bd = dist;
                    best = g;
                }
            }
            if (best < nprev) {
                bcd_lesion *lg = &r->l[best];
                const bcd__spot *p = &P->spots[src[best]];
                rematch(r, best, p, c, bcd__warp_area_scale(&sm->fwd, p->x, p->y), P, C, sm, mm, pmm);
                lg->in_overlap = bcd__spot_match_verified(sm, p->x, p->y, false);
                /* judged only when it stands out now and stood out then (a faint spot in a
                 * blurred photo is measured smaller than it is) */
                if (lg->change.judged && (c->contrast < MIN_SIZE_CONTRAST || p->contrast < MIN_JUDGED_CONTRAST)) {
                    lg->change.judged = 0;
                    r->why[best] = WHY_FAINT;
                }
                merged = true;
            }
        }
        if (!merged)
            keep_at(r, src, out++, k);
    }
    r->n = out;
}

/* Where the mapping is locally off (a bend it did not follow, a part of the photo with few
 * matches), a mole that stood out in both photos is left "gone" at the mapped place and
 * "new" a little way off. A gone spot that stood out and a new spot (not flagged: where the
 * mapping holds, a new spot is a change and stays one) that are each other's only alike
 * standing-out counterpart within FAR_PAIR of the mapped place are the same lesion: matched,
 * with the previous id, its change measured but not judged (far_from_mapping). */
static void pair_far(bcd_lesion_result *r, int *src, size_t nprev, const bcd__spotmap *P,
                     const bcd__spotmap *C, const bcd__spot_match *sm, const struct transfer *tf, double mm,
                     double pmm)
{
    double L = C->ow > C->oh ? C->ow : C->oh, R = FAR_PAIR * L;
    size_t out = nprev;
    for (size_t k = nprev; k < r->n; k++) {
        bcd_lesion *ln = &r->l[k];
        const bcd__spot *c = &C->spots[src[k]];
        size_t best = nprev, count = 0;
        if (ln->state == BCD_LESION_NEW && !ln->changed && c->contrast >= MIN_SIZE_CONTRAST) {
            double tr = transfer_at(tf, c->x, c->y, 0.06 * L);
            for (size_t g = 0; g < nprev; g++) {
                const bcd_lesion *lg = &r->l[g];
                const bcd__spot *p = &P->spots[src[g]];
                if (lg->state != BCD_LESION_GONE || p->contrast < MIN_SIZE_CONTRAST ||
                    hypot(lg->x - c->x, lg->y - c->y) > R)
                    continue;
                if (alike(p, c, sqrt(bcd__warp_area_scale(&sm->fwd, p->x, p->y)), tr) != 1)
                    continue;
                count++;
                best = g;
            }
        }
        /* ... and the gone spot has no other such new spot near it */
        for (size_t k2 = nprev; count == 1 && k2 < r->n; k2++) {
            const bcd_lesion *lo = &r->l[k2];
            const bcd__spot *o = &C->spots[src[k2]];
            if (k2 == k || lo->state != BCD_LESION_NEW || lo->changed || o->contrast < MIN_SIZE_CONTRAST ||
                hypot(r->l[best].x - o->x, r->l[best].y - o->y) > R)
                continue;
            if (alike(&P->spots[src[best]], o, 1.0, transfer_at(tf, o->x, o->y, 0.06 * L)) == 1)
                count++;
        }
        if (count == 1) {
            const bcd__spot *p = &P->spots[src[best]];
            rematch(r, best, p, c, bcd__warp_area_scale(&sm->fwd, p->x, p->y), P, C, sm, mm, pmm);
            r->l[best].in_overlap = 0;
            r->l[best].change.judged = 0;
            r->why[best] = WHY_FAR;
            continue;
        }
        keep_at(r, src, out++, k);
    }
    r->n = out;
}

static bcd_status compare_maps(bcd_lesion_result *r, const bcd__spotmap *P, const bcd__spotmap *C,
                               const bcd_lesion_options *o)
{
    bcd__spot_match sm;
    bcd_status st = bcd__spots_register(&sm, P, C, o->prior);
    if (st != BCD_OK)
        return st;
    bool *used_ref = calloc(o->nprevious + 1, 1);
    uint32_t *pid = calloc(P->n + 1, sizeof *pid);
    bool *cur_taken = calloc(C->n + 1, 1);
    /* per lesion of r: the spot it was made from (previous or current photo) */
    int *src = malloc((P->n + C->n + 1) * sizeof *src);
    if (!used_ref || !pid || !cur_taken || !src) {
        free(used_ref);
        free(pid);
        free(cur_taken);
        free(src);
        bcd__spot_match_clear(&sm);
        return BCD_ENOMEM;
    }
    uint32_t next = o->next_id;
    if (!next) {
        for (size_t k = 0; k < o->nprevious; k++)
            if (o->previous[k].id >= next)
                next = o->previous[k].id + 1;
        if (!next)
            next = 1;
    }
    /* ids of the previous spots: the previous check's where given, else new ones */
    for (size_t i = 0; i < P->n; i++) {
        double tol = fmax(3.0, 0.5 * P->spots[i].diameter);
        pid[i] = o->nprevious ? ref_id(o, P->spots[i].x, P->spots[i].y, tol, used_ref) : 0;
    }
    for (size_t i = 0; i < P->n; i++)
        if (!pid[i])
            pid[i] = next++;
    r->spots = C->n;
    r->prev_spots = P->n;
    double mm = r->mm_per_px, pmm = r->prev_mm_per_px;
    if (!sm.ok) {
        r->status = BCD_LESION_NOT_COMPARABLE;
        snprintf(r->reason, sizeof r->reason, "%s", sm.why ? sm.why : "the photos could not be registered");
        for (size_t j = 0; j < C->n; j++) {
            bcd_lesion *l = &r->l[r->n++];
            lesion_blank(l);
            l->id = next++;
            l->state = BCD_LESION_NEW;
            l->x = C->spots[j].x;
            l->y = C->spots[j].y;
            lesion_from_spot(l, &C->spots[j], mm);
        }
        goto done;
    }
    r->status = BCD_LESION_COMPARED;
    memcpy(r->H, sm.fwd.H, sizeof r->H);
    /* the pair's typical change of light on the skin, from the matched spots */
    double light_med = 0;
    {
        double *lv = malloc((P->n + 1) * sizeof *lv);
        size_t nl = 0;
        if (!lv) {
            st = BCD_ENOMEM;
            goto done;
        }
        for (size_t i = 0; i < P->n; i++)
            if (sm.match[i] >= 0)
                lv[nl++] = log(fmax(C->spots[sm.match[i]].skin_rgb[1], 1e-4) / fmax(P->spots[i].skin_rgb[1], 1e-4));
        if (nl) {
            qsort(lv, nl, sizeof *lv, cmp_dbl);
            light_med = lv[nl / 2];
        }
        free(lv);
    }
    struct transfer tf;
    if (!transfer_make(&tf, P, C, sm.match)) {
        st = BCD_ENOMEM;
        goto done;
    }
    r->residual = sm.residual;
    r->agreement = sm.agree;
    r->chance = sm.chance;
    double L = C->ow > C->oh ? C->ow : C->oh;
    double tol = 0.006 * L;
    /* previous spots: matched, or looked for at their place in the current photo */
    for (size_t i = 0; i < P->n; i++) {
        const bcd__spot *p = &P->spots[i];
        bcd_lesion *l = &r->l[r->n++];
        lesion_blank(l);
        src[r->n - 1] = (int)i;
        l->id = pid[i];
        l->prev_x = p->x;
        l->prev_y = p->y;
        double u, v;
        bcd__warp_apply(&sm.fwd, p->x, p->y, &u, &v);
        double J = bcd__warp_area_scale(&sm.fwd, p->x, p->y);
        int j = sm.match[i];
        if (j >= 0) {
            const bcd__spot *c = &C->spots[j];
            cur_taken[j] = true;
            l->state = BCD_LESION_MATCHED;
            l->in_overlap = 1;
            l->x = c->x;
            l->y = c->y;
            lesion_from_spot(l, c, mm);
            measure_change(l, &r->even[r->n - 1], &r->why[r->n - 1], p, c, J, P, C, &sm.bwd, mm, pmm);
            l->in_overlap = bcd__spot_match_verified(&sm, p->x, p->y, false);
            /* a pair much further apart than the registration's own residual may be two
             * neighbouring spots: kept as a match, not judged */
            if (l->change.judged && hypot(c->x - u, c->y - v) > 3.0 * sm.residual + 0.25 * c->diameter +
                                            0.5 * fabs(c->diameter - p->diameter * sqrt(J))) {
                l->change.judged = 0;
                r->why[r->n - 1] = WHY_FAR;
            }
            r->matched++;
            continue;
        }
        l->x = u;
        l->y = v;
        lesion_from_spot(l, p, pmm);
        l->diameter_px = p->diameter * sqrt(J); /* as it would look in the current photo */
        if (!inside(C, u, v)) {
            l->state = BCD_LESION_NOT_VISIBLE;
            continue;
        }
        bcd__spot c;
        bool found = false;
        /* where it should be: within the registration's own error of the mapped place */
        double rad = fmin(tol, 2.5 * sm.residual + 2.0 / C->fx) + 0.5 * p->diameter * sqrt(J);
        /* the photos may differ in blur and light: contrasts compared as the neighbours'
         * carry over */
        double tr = transfer_at(&tf, u, v, 0.06 * L);
        double pk = bcd__spots_probe(C, u, v, rad, 0.5 * p->contrast / tr, &c, &found);
        if (found && !alike(p, &c, sqrt(J), tr)) {
            found = false;
            pk = c.mean_contrast;
        }
        if (isnan(pk)) {
            l->state = BCD_LESION_NOT_VISIBLE;
            continue;
        }
        l->in_overlap = 1;
        /* the spot found there may be a detected one the assignment left alone (a size
         * change beyond its bounds): then a match like any other; one already matched to
         * another previous spot: two previous spots seen as one now (merged, or not
         * separated), not judged */
        int det = -1;
        for (size_t j2 = 0; found && j2 < C->n && det < 0; j2++)
            if (hypot(C->spots[j2].x - c.x, C->spots[j2].y - c.y) < 0.5 * C->spots[j2].diameter)
                det = (int)j2;
        if (found) {
            bool fresh = det >= 0 && !cur_taken[det];
            const bcd__spot *cs = fresh ? &C->spots[det] : &c;
            if (det >= 0)
                cur_taken[det] = true;
            l->state = BCD_LESION_MATCHED;
            l->x = cs->x;
            l->y = cs->y;
            lesion_from_spot(l, cs, mm);
            measure_change(l, &r->even[r->n - 1], &r->why[r->n - 1], p, cs, J, P, C, &sm.bwd, mm, pmm);
            l->in_overlap = bcd__spot_match_verified(&sm, p->x, p->y, false);
            /* re-found only with a relaxed threshold, or merged: not reliable enough to
             * judge a change */
            if (!fresh && l->change.judged) {
                l->change.judged = 0;
                r->why[r->n - 1] = WHY_MERGED;
            }
            r->matched++;
            continue;
        }
        l->state = BCD_LESION_GONE;
        l->in_overlap = bcd__spot_match_verified(&sm, p->x, p->y, true);
        bool lit = same_light(C, u, v, P, p->x, p->y, 3.0 * p->diameter, light_med);
        /* what it would look like in the current photo, as its neighbours do */
        double expect = p->contrast / transfer_at(&tf, u, v, 0.06 * L);
        l->score = l->in_overlap && lit && expect >= 2.5 * C->t_seed && pk < 0.2 * expect ? 0.6 : 0.2;
        l->changed = 0; /* see bcd/lesion.h: reported, not flagged */
    }
    size_t nprev_l = r->n; /* lesions [0, nprev_l) come from previous spots */
    /* current spots with no previous one */
    for (size_t j = 0; j < C->n; j++) {
        if (cur_taken[j])
            continue;
        const bcd__spot *c = &C->spots[j];
        bcd_lesion *l = &r->l[r->n++];
        lesion_blank(l);
        src[r->n - 1] = (int)j;
        l->x = c->x;
        l->y = c->y;
        lesion_from_spot(l, c, mm);
        double u, v;
        bcd__warp_apply(&sm.bwd, c->x, c->y, &u, &v);
        l->state = BCD_LESION_NEW;
        l->id = next++;
        if (!inside(P, u, v))
            continue;
        double Lp = P->ow > P->oh ? P->ow : P->oh;
        bcd__spot p;
        bool found = false;
        double J = bcd__warp_area_scale(&sm.bwd, c->x, c->y);
        double rad = fmin(0.006 * Lp, (2.5 * sm.residual + 2.0 / C->fx) * sqrt(J)) + 0.5 * c->diameter * sqrt(J);
        double tr = transfer_at(&tf, c->x, c->y, 0.06 * L);
        double pk = bcd__spots_probe(P, u, v, rad, 0.5 * c->contrast * tr, &p, &found);
        int ak = found ? alike(&p, c, 1.0 / sqrt(fmax(J, 1e-6)), tr) : 0;
        if (found && !ak) {
            found = false;
            pk = p.mean_contrast;
        }
        if (isnan(pk))
            continue; /* the previous photo did not show this skin */
        l->in_overlap = 1;
        l->prev_x = u;
        l->prev_y = v;
        if (found) {
            /* it was there, fainter or not separated */
            l->state = BCD_LESION_MATCHED;
            l->prev_x = p.x;
            l->prev_y = p.y;
            double Jf = bcd__warp_area_scale(&sm.fwd, p.x, p.y);
            measure_change(l, &r->even[r->n - 1], &r->why[r->n - 1], &p, c, Jf, P, C, &sm.bwd, mm, pmm);
            l->in_overlap = bcd__spot_match_verified(&sm, p.x, p.y, false);
            if (ak != 2 && l->change.judged) {
                l->change.judged = 0; /* fainter or not separated there: not judged; grown: judged */
                r->why[r->n - 1] = WHY_MERGED;
            }
            r->matched++;
            continue;
        }
        l->prev_x = l->prev_y = NAN;
        l->in_overlap = bcd__spot_match_verified(&sm, u, v, true);
        /* a new spot: a change when it is clearly a spot, in an area the registration
         * verified, and the skin was clear there */
        /* what it would have looked like in the previous photo, as its neighbours do there
         * (a blurrier or flatter previous photo shows every spot fainter) */
        double expect = c->contrast * transfer_at(&tf, c->x, c->y, 0.06 * L);
        bool clear = pk < 0.3 * expect;
        /* and larger than the smallest spots the previous photo shows around there (where it
         * is blurred, small spots vanish from it) */
        double small = small_spots(P, u, v, 0.06 * Lp) * sqrt(1.0 / fmax(J, 1e-6));
        /* distinct: dark (a mole), or of a colour clearly not the skin's (a red papule, only
         * a little darker in green) */
        bool distinct = c->contrast >= MIN_NEW_CONTRAST ||
                        (bcd__delta_e2000(c->lab, c->skin_lab) >= MIN_NEW_DELTA_E && !red_clipped(C, c));
        bool strong = distinct && c->contrast >= 1.6 * C->t_seed && expect >= 1.6 * P->t_seed &&
                      c->diameter >= 1.3 * small &&
                      c->diameter * C->fx >= 3.0 && same_light(C, c->x, c->y, P, u, v, 3.0 * c->diameter, light_med) &&
                      !skin_edge(C, c); /* a shadow's corner against the skin's outline */
        /* where the registration was not verified by its own areas, the skin around the
         * spot (the spot left out) must lie over the previous photo's */
        if (clear && strong && !l->in_overlap)
            l->in_overlap = bcd__patch_agreement(P, C, &sm.bwd, c->x, c->y, fmax(0.03 * L, 6.0 * c->diameter),
                                                 c->diameter) >= MIN_AGREEMENT;
        strong = strong && l->in_overlap;
        l->score = clear && strong ? fmin(1.0, 0.5 + 0.5 * (c->contrast / (3.0 * C->t_seed))) : 0.3;
        l->changed = l->score >= 0.5;
    }
    pair_gone_new(r, src, nprev_l, P, C, &sm, mm, pmm);
    pair_far(r, src, nprev_l, P, C, &sm, &tf, mm, pmm);
    for (size_t i = 0; i < r->n; i++) {
        double t = r->l[i].has_change ? transfer_near(&tf, r->l[i].x, r->l[i].y, 0.06 * L) : NAN;
        r->near_dk[i] = isfinite(t) && t > 0 ? -log(t) : NAN;
    }
    transfer_free(&tf);
    st = score_changes(r, C->fx, mm);
    if (st != BCD_OK)
        goto done;
    /* lesions of the previous check not found again */
    for (size_t k = 0; k < o->nprevious; k++) {
        if (used_ref[k])
            continue;
        bcd_lesion *l = &r->l[r->n++];
        lesion_blank(l);
        l->id = o->previous[k].id;
        l->state = BCD_LESION_NOT_VISIBLE;
        l->prev_x = o->previous[k].x;
        l->prev_y = o->previous[k].y;
        bcd__warp_apply(&sm.fwd, l->prev_x, l->prev_y, &l->x, &l->y);
    }
done:
    free(used_ref);
    free(pid);
    free(cur_taken);
    free(src);
    bcd__spot_match_clear(&sm);
    return st;
}

bcd_status bcd_lesion_compare(bcd_lesion_result **out, bcd_ctx *ctx, const bcd_image *current,
                              const bcd_image *previous, const bcd_lesion_options *opts)
{
    bcd__ctx_clear(ctx);
    bcd_lesion_options d = BCD_LESION_OPTIONS_INIT;
    if (!opts)
        opts = &d;
    if (!out || !photo_ok(current) || !photo_ok(previous))
        return bcd__ctx_fail(ctx, BCD_EINVAL, "invalid_argument",
                             "bcd_lesion_compare: two RGB images of at least 32 x 32 pixels are required");
    bcd_status st = check_opts(ctx, opts);
    if (st != BCD_OK)
        return st;
    bcd__spotmap C, P;
    st = bcd__spots_find(&C, current, (int)opts->analysis_side, opts->current_width, opts->current_height);
    if (st == BCD_OK) {
        st = bcd__spots_find(&P, previous, (int)opts->analysis_side, opts->previous_width, opts->previous_height);
        if (st != BCD_OK)
            bcd__spotmap_clear(&C);
    }
    if (st != BCD_OK)
        return bcd__ctx_fail(ctx, st, "out_of_memory", "out of memory finding spots");
    bcd_lesion_result *r = result_new(C.n + P.n + opts->nprevious, opts);
    if (!r)
        st = BCD_ENOMEM;
    else
        st = compare_maps(r, &P, &C, opts);
    bcd__spotmap_clear(&C);
    bcd__spotmap_clear(&P);
    if (st != BCD_OK) {
        bcd_lesion_result_free(r);
        return bcd__ctx_fail(ctx, st, "out_of_memory", "out of memory comparing lesions");
    }
    *out = r;
    return BCD_OK;
}

bcd_lesion_status bcd_lesion_result_status(const bcd_lesion_result *r)
{
    return r ? r->status : BCD_LESION_NOT_COMPARABLE;
}

const char *bcd_lesion_result_reason(const bcd_lesion_result *r)
{
    return r ? r->reason : "";
}

size_t bcd_lesion_result_count(const bcd_lesion_result *r)
{
    return r ? r->n : 0;
}

const bcd_lesion *bcd_lesion_result_get(const bcd_lesion_result *r, size_t i)
{
    return r && i < r->n ? &r->l[i] : NULL;
}

size_t bcd_lesion_result_changed(const bcd_lesion_result *r)
{
    size_t c = 0;
    for (size_t i = 0; r && i < r->n; i++)
        c += r->l[i].changed != 0;
    return c;
}

const char *bcd_lesion_result_not_judged(const bcd_lesion_result *r, size_t i)
{
    if (!r || i >= r->n || !r->l[i].has_change || r->l[i].change.judged || r->why[i] >= sizeof why_names / sizeof *why_names)
        return NULL;
    return why_names[r->why[i]];
}

double bcd_lesion_result_score(const bcd_lesion_result *r)
{
    if (!r || r->status != BCD_LESION_COMPARED)
        return NAN;
    double s = 0;
    for (size_t i = 0; i < r->n; i++)
        if (isfinite(r->l[i].score) && r->l[i].score > s)
            s = r->l[i].score;
    return s;
}

bcd_status bcd_lesion_result_homography(const bcd_lesion_result *r, double h[9])
{
    if (!r || !h || r->status != BCD_LESION_COMPARED)
        return BCD_EINVAL;
    memcpy(h, r->H, sizeof r->H);
    return BCD_OK;
}

uint32_t bcd_lesion_result_max_id(const bcd_lesion_result *r)
{
    uint32_t m = 0;
    for (size_t i = 0; r && i < r->n; i++)
        if (r->l[i].id > m)
            m = r->l[i].id;
    return m;
}

/* ---- JSON ---------------------------------------------------------------------------- */

static cJSON *num(double v, double q)
{
    if (!isfinite(v))
        return cJSON_CreateNull();
    return cJSON_CreateNumber(round(v / q) * q);
}

static bool add(cJSON *o, const char *k, cJSON *v)
{
    return v && cJSON_AddItemToObject(o, k, v);
}

static cJSON *point(double x, double y)
{
    if (!isfinite(x) || !isfinite(y))
        return cJSON_CreateNull();
    cJSON *a = cJSON_CreateArray();
    if (a && (!cJSON_AddItemToArray(a, num(x, 0.1)) || !cJSON_AddItemToArray(a, num(y, 0.1)))) {
        cJSON_Delete(a);
        return NULL;
    }
    return a;
}

static cJSON *change_json(const bcd_lesion *l, const char *why)
{
    if (!l->has_change)
        return cJSON_CreateNull();
    const bcd_lesion_change *c = &l->change;
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    bool ok = add(o, "area_pct", num(c->area_pct, 0.1)) && add(o, "area_pct_sd", num(c->area_pct_sd, 0.1)) &&
              add(o, "diameter_px", num(c->diameter_px, 0.1)) &&
              add(o, "diameter_px_sd", num(c->diameter_px_sd, 0.1)) &&
              add(o, "diameter_mm", num(c->diameter_mm, 0.01)) &&
              add(o, "diameter_mm_sd", num(c->diameter_mm_sd, 0.01)) &&
              add(o, "delta_e", num(c->delta_e, 0.01)) && add(o, "delta_e_sd", num(c->delta_e_sd, 0.01)) &&
              add(o, "darkening", num(c->darkening, 0.001)) &&
              add(o, "darkening_sd", num(c->darkening_sd, 0.001)) && add(o, "spread", num(c->spread, 0.01)) &&
              add(o, "spread_sd", num(c->spread_sd, 0.01)) &&
              add(o, "pixel_delta_e", num(c->pixel_delta_e, 0.01)) &&
              add(o, "part_delta_e", num(c->part_delta_e, 0.01)) && add(o, "asymmetry", num(c->asymmetry, 0.001)) &&
              add(o, "irregularity", num(c->irregularity, 0.001)) && add(o, "light", num(c->light, 0.001)) &&
              add(o, "judged", cJSON_CreateBool(c->judged)) &&
              add(o, "not_judged", why ? cJSON_CreateString(why) : cJSON_CreateNull()) &&
              add(o, "second_colour", cJSON_CreateBool(c->second_colour));
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static cJSON *lesion_json(const bcd_lesion *l, const char *why)
{
    cJSON *o = cJSON_CreateObject(), *lab = cJSON_CreateArray();
    if (!o || !lab) {
        cJSON_Delete(o);
        cJSON_Delete(lab);
        return NULL;
    }
    for (int k = 0; k < 3; k++)
        cJSON_AddItemToArray(lab, num(l->lab[k], 0.01));
    bool ok = add(o, "id", cJSON_CreateNumber(l->id)) &&
              add(o, "state", cJSON_CreateString(bcd_lesion_state_name(l->state))) &&
              add(o, "center", point(l->x, l->y)) && add(o, "previous_center", point(l->prev_x, l->prev_y)) &&
              add(o, "diameter_px", num(l->diameter_px, 0.1)) && add(o, "diameter_mm", num(l->diameter_mm, 0.01)) &&
              add(o, "area_px", num(l->area_px, 0.1)) && add(o, "lab", lab) &&
              add(o, "spread", num(l->spread, 0.01)) && add(o, "irregularity", num(l->irregularity, 0.001)) &&
              add(o, "asymmetry", num(l->asymmetry, 0.001)) && add(o, "contrast", num(l->contrast, 0.001)) &&
              add(o, "in_overlap", cJSON_CreateBool(l->in_overlap)) &&
              add(o, "changed", cJSON_CreateBool(l->changed)) && add(o, "score", num(l->score, 0.001)) &&
              add(o, "change", change_json(l, why));
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static const char *status_name(bcd_lesion_status s)
{
    return s == BCD_LESION_FIRST ? "first" : s == BCD_LESION_COMPARED ? "compared" : "not_comparable";
}

bcd_status bcd_lesion_result_json(char **out, const bcd_lesion_result *r)
{
    if (!out || !r)
        return BCD_EINVAL;
    cJSON *root = cJSON_CreateObject(), *arr = cJSON_CreateArray();
    bool ok = root && arr;
    ok = ok && add(root, "status", cJSON_CreateString(status_name(r->status))) &&
         add(root, "reason", r->reason[0] ? cJSON_CreateString(r->reason) : cJSON_CreateNull()) &&
         add(root, "mm_per_px", num(r->mm_per_px, 1e-5)) &&
         add(root, "previous_mm_per_px", num(r->prev_mm_per_px, 1e-5)) &&
         add(root, "matched", cJSON_CreateNumber((double)r->matched));
    if (ok && r->status == BCD_LESION_COMPARED) {
        cJSON *reg = cJSON_AddObjectToObject(root, "registration");
        cJSON *h = reg ? cJSON_AddArrayToObject(reg, "homography") : NULL;
        ok = h != NULL;
        for (int k = 0; ok && k < 9; k++)
            ok = cJSON_AddItemToArray(h, cJSON_CreateNumber(r->H[k]));
        ok = ok && add(reg, "residual_px", num(r->residual, 0.1)) && add(reg, "agreement", num(r->agreement, 0.001)) &&
             add(reg, "chance_agreement", num(r->chance, 0.001)) &&
             add(reg, "spots", cJSON_CreateNumber((double)r->spots)) &&
             add(reg, "previous_spots", cJSON_CreateNumber((double)r->prev_spots));
    } else if (ok) {
        ok = add(root, "registration", cJSON_CreateNull());
    }
    ok = ok && add(root, "lesions", arr);
    for (size_t i = 0; ok && i < r->n; i++)
        ok = cJSON_AddItemToArray(arr, lesion_json(&r->l[i], bcd_lesion_result_not_judged(r, i)));
    char *s = ok ? cJSON_PrintUnformatted(root) : NULL;
    if (arr && !cJSON_GetObjectItem(root, "lesions"))
        cJSON_Delete(arr);
    cJSON_Delete(root);
    if (!s)
        return BCD_ENOMEM;
    *out = s;
    return BCD_OK;
}
