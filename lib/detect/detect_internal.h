/* Internal API of lib/detect, shared between its files and its unit tests. Not installed. */
#ifndef BCD_DETECT_INTERNAL_H
#define BCD_DETECT_INTERNAL_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "bcd/detect.h"
#include "core/core.h"

/* A single-channel float image, rows top to bottom, no padding. */
typedef struct bcd__plane {
    int w, h;
    float *px;
} bcd__plane;

bcd__plane *bcd__plane_new(int w, int h);
void bcd__plane_free(bcd__plane *p);

/* Where a bilinear sample of a w x h plane at (u, v) reads, and with what weights:
 * computed once, it samples every plane of that size at the same point. */
typedef struct bcd__bilinear {
    size_t at;     /* index of the top-left neighbour */
    size_t down;   /* offset to the row below (0 for a one-row plane) */
    int right;     /* offset to the right neighbour (0 for a one-column plane) */
    float fx, fy;
} bcd__bilinear;

/* The caller guarantees 0 <= u <= w-1 and 0 <= v <= h-1. */
static inline bcd__bilinear bcd__bilinear_at(int w, int h, float u, float v)
{
    int x = (int)u, y = (int)v;
    if (x > w - 2)
        x = w - 2;
    if (y > h - 2)
        y = h - 2;
    if (x < 0)
        x = 0;
    if (y < 0)
        y = 0;
    bcd__bilinear b = { (size_t)y * w + x, h > 1 ? (size_t)w : 0, w > 1 ? 1 : 0, u - (float)x, v - (float)y };
    return b;
}

static inline float bcd__bilinear_sample(const float *px, const bcd__bilinear *b)
{
    const float *r0 = px + b->at, *r1 = r0 + b->down;
    float top = r0[0] + b->fx * (r0[b->right] - r0[0]);
    float bot = r1[0] + b->fx * (r1[b->right] - r1[0]);
    return top + b->fy * (bot - top);
}

/* Bilinear sample; the caller guarantees 0 <= u <= w-1 and 0 <= v <= h-1. */
static inline float bcd__plane_at(const bcd__plane *p, float u, float v)
{
    bcd__bilinear b = bcd__bilinear_at(p->w, p->h, u, v);
    return bcd__bilinear_sample(p->px, &b);
}

/* The element of rank floor(q n) (q in [0,1]) of v, which holds no NaN; reorders v. 0 for
 * n == 0. */
float bcd__detect_quantile(float *v, size_t n, double q);
/* The element of rank n/2 (the upper median); reorders v. 0 for n == 0. */
float bcd__detect_median(float *v, size_t n);

/* 2x2 area reduction (floor of odd sizes); NULL on OOM or when a side would be 0. */
bcd__plane *bcd__plane_half(const bcd__plane *p);
/* Separable Gaussian blur (clamped borders) into a new plane; sigma <= 0 copies. */
bcd__plane *bcd__plane_blur(const bcd__plane *p, float sigma);

/* An RGB photo reduced to working size: three float planes (0..255). */
typedef struct bcd__work {
    int w, h;            /* working size */
    uint32_t ow, oh;     /* original size */
    double fx, fy;       /* working pixels per original pixel (w / ow, h / oh) */
    bcd__plane *c[3];    /* R, G, B */
} bcd__work;

/* Reduce img by area averaging so that its longer side is at most long_side (never
 * enlarged). */
bcd_status bcd__work_load(bcd__work *out, const bcd_image *img, int long_side);
void bcd__work_clear(bcd__work *wk);
/* 2x2 area reduction of a work image (sides >= 2 required); fx, fy stay exact. */
bcd_status bcd__work_half(bcd__work *out, const bcd__work *in);
/* Grey (luma, 0..255) plane of a work image. */
bcd__plane *bcd__work_grey(const bcd__work *wk);

/* Vectors of the GNU C extension, for loops written a vector at a time: each lane gets
 * the operations a scalar loop would give it, so the results are the same. */
typedef double bcd__v4d __attribute__((vector_size(32)));
typedef float bcd__v8f __attribute__((vector_size(32)));
typedef int32_t bcd__v8i __attribute__((vector_size(32)));

/* ln(v + offset) for the values 0..255 of a grid of steps per unit (a power of two) looked
 * up in a table of logf()'s own answers: the working planes of a photo at working size
 * hold integers, their 2x2 means quarters, the means of those sixteenths. Other values
 * (warped, corrected) go to logf(). */
#define BCD__LOGTAB_MAX_STEPS 16
typedef struct bcd__logtab {
    float offset, steps;
    int n;
    float t[255 * BCD__LOGTAB_MAX_STEPS + 1];
} bcd__logtab;

static inline void bcd__logtab_init(bcd__logtab *l, float offset, int steps)
{
    l->offset = offset;
    l->steps = (float)steps;
    l->n = 255 * steps + 1;
    for (int i = 0; i < l->n; i++)
        l->t[i] = logf((float)i / l->steps + offset); /* i / steps: exact */
}

/* The table of (offset, steps), made once per process and shared by all threads; own
 * (filled) when the few tables kept are taken by other pairs. */
const bcd__logtab *bcd__logtab_shared(float offset, int steps, bcd__logtab *own);

static inline float bcd__logtab_get(const bcd__logtab *l, float v)
{
    float s = v * l->steps; /* exact */
    if (s >= 0.0f && s <= (float)(l->n - 1)) {
        int i = (int)s;
        if ((float)i == s)
            return l->t[i];
    }
    return logf(v + l->offset);
}

/* Photo quality measures (see detect.h for the definitions). */
typedef struct bcd__quality {
    double blur_variance;
    double clipped_fraction;
    double subject_fraction;
} bcd__quality;
void bcd__detect_quality(bcd__quality *q, const bcd__work *wk, const bcd__plane *grey);

/*
 * Similarity between working grids: a current working pixel x maps to the previous
 * working pixel u = A (x - cc) + cp + t, A = [[a, -b], [b, a]], cc and cp the frame
 * centres ((w-1)/2, (h-1)/2) of each working image.
 */
typedef struct bcd__align {
    double a, b, tx, ty;
    double gain, bias; /* log-grey photometric fit: gain * prev + bias ~ cur */
    double score;      /* normalized cross-correlation of the overlap */
    double overlap;    /* fraction of the current frame covered by the previous one */
} bcd__align;

/* The planes the alignment runs on (log luma plus the current photo's main chroma axis):
 * out[0] current, out[1] previous, out[2] and out[3] 1 where a pixel of each is clipped
 * high, else 0. Caller frees all four. */
bcd_status bcd__detect_align_planes(bcd__plane *out[4], const bcd__work *wc, const bcd__work *wp);

/* Align two planes from bcd__detect_align_planes(). Returns BCD_OK or BCD_ENOMEM; a
 * poor fit is reported through score and overlap, never as a failure. */
bcd_status bcd__detect_align(bcd__align *out, const bcd__plane *cur, const bcd__plane *prev, const bcd__plane *cur_clip,
                             const bcd__plane *prev_clip);

/* Solve the symmetric positive definite system A x = b (n <= 6) by Cholesky;
 * false if it is singular. Only the lower triangle of A is read. */
bool bcd__detect_solve(double A[6][6], const double *b, double *x, int n);

/* Warp nplanes planes of prev (same size, at least 2x2) into the grid of dst
 * (bilinear); mask[i] (may be NULL) = 1 where covered, else 0 (and the pixel 0). */
void bcd__detect_warp(bcd__plane *const *dst, uint8_t *mask, bcd__plane *const *prev, int nplanes,
                      const bcd__align *al);

/* Photometric matching: rewrite the warped previous channels P[3] so that they match
 * the current ones C[3] on the masked overlap. */
bcd_status bcd__detect_photometric(bcd__plane *P[3], bcd__plane *const C[3], const uint8_t *mask);

/* The change map of an aligned, matched pair. */
typedef struct bcd__region {
    int x0, y0, x1, y1; /* inclusive working-pixel box */
    double evidence;
    double score;       /* logistic of evidence, [0,1] */
} bcd__region;

typedef struct bcd__changemap {
    bcd__plane *map;     /* per working pixel evidence (>= 0), in noise units above the floor */
    double noise;        /* robust noise level of the pair */
    double evidence;     /* strongest region's evidence */
    int nregions;
    bcd__region *regions;
    int cols, rows;
    float *cells;        /* cols*rows, [0,1] or -1 */
} bcd__changemap;

bcd_status bcd__detect_changemap(bcd__changemap *out, bcd__plane *const C[3], bcd__plane *const P[3],
                                 const uint8_t *mask, int grid);
void bcd__changemap_clear(bcd__changemap *cm);
/* bcd_detect_combine() on values: lc[i] local_change (NaN: not usable) and flags[i] of
 * each angle. */
bcd_status bcd__detect_combine_values(double *probability, int *changed, const double *lc, const unsigned int *flags,
                                      size_t n);
/* local_change from evidence: a calibrated logistic. */
double bcd__detect_score(double evidence);

#endif
