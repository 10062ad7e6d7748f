/*
 * Alignment of the previous photo onto the current one: a similarity transform, the
 * identity when it fits well after refinement on the two coarsest levels, else found by
 * an exhaustive normalized cross-correlation search on ~32 px images; refined
 * coarse-to-fine by Levenberg-Marquardt (forward-additive Lucas-Kanade, Huber weights)
 * with a global gain and offset, on pyramids of an "alignment plane" (log luma plus the
 * main chroma axis, see bcd__detect_align_planes()).
 *
 * Why no FFT: phase correlation would find the translation in O(n log n), but the
 * search runs on images of ~32×24 pixels where a direct search over ±25 % shifts,
 * five rotations and three scales costs ~3 M multiply-adds (a few ms), and unlike
 * phase correlation it scores rotation and scale hypotheses and the overlap directly.
 * The search runs on images clamped to their 5-95 % quantiles (so a large new spot
 * does not lead it) and keeps six local maxima (the three best, and three that differ
 * from those in shift or scale); each is refined on the two coarsest levels, the one
 * with the best fit score (band-passed, trimmed correlation) goes on to the finest.
 * Trying the identity first spares the search and the six refinements (a quarter of a
 * comparison's work) for photos of the same pose: on the synthetic benchmark (240 pairs
 * at nuisances x1 and x1.5) every result stayed as the search gives it (local_change
 * within 2e-7 and 3e-5, the same regions and flags, alignment within 0.006 % of the
 * frame).
 * Log values turn exposure into an offset and gamma into a gain, which the photometric
 * terms of the fit absorb. Clipped pixels give censored residuals (a clipped value is
 * a bound, not a measurement), so a blown-out background still outlines the body.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "detect_internal.h"

#define MAX_LEVELS 12
#define COARSE_SIDE 40   /* the search runs on the first level whose longer side is <= this */
#define SCORE_SIDE 160   /* the fit is scored on the first level whose longer side is <= this */
#define NCAND 6          /* hypotheses from the search refined to the next level */
#define NCAND_TOP 3      /* of which the best, the others distinct */
#define SEARCH_FRAC 0.25 /* translation search range, fraction of each side */
#define MIN_SEARCH_OVERLAP 0.5
#define FAST_ACCEPT 0.95 /* fit score of the refined identity that spares the search */
#define MAX_STEP 2.0  /* px per Levenberg-Marquardt step */
#define MAX_DRIFT 4.0 /* px per level in all */
#define TRIM_KEEP 0.9 /* share of pixels the fit score keeps */
#define DOG_SIGMA 2.0f /* px, band-pass of the fit score */
#define SEARCH_CLAMP 0.05 /* quantiles the search clamps each image to */
#define OUTSIDE 1e30f /* search canvas outside the previous photo */
#define MAX_LK_SIDE 1024 /* columns whose coordinates lk_pass() tabulates (the largest level: 2048 / 2) */

static const double search_scales[] = { 0.93, 1.0, 1.075 };
static const double search_rot_deg[] = { -8.0, -4.0, 0.0, 4.0, 8.0 };

struct pyr {
    int n;
    bcd__plane *img[MAX_LEVELS]; /* blurred alignment plane */
    bcd__plane *cz[MAX_LEVELS];  /* share of clipped-high pixels, same blur */
    bcd__plane *gx[MAX_LEVELS], *gy[MAX_LEVELS];
    double cx[MAX_LEVELS], cy[MAX_LEVELS];
};

static void pyr_free(struct pyr *p)
{
    for (int i = 0; i < p->n; i++) {
        bcd__plane_free(p->img[i]);
        bcd__plane_free(p->cz[i]);
        bcd__plane_free(p->gx[i]);
        bcd__plane_free(p->gy[i]);
    }
    p->n = 0;
}

static bcd__plane *gradient(const bcd__plane *p, bool along_x)
{
    bcd__plane *g = bcd__plane_new(p->w, p->h);
    if (!g)
        return NULL;
    int w = p->w, h = p->h;
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            float d;
            if (along_x) {
                int x0 = x > 0 ? x - 1 : x, x1 = x < w - 1 ? x + 1 : x;
                d = x1 > x0 ? (p->px[(size_t)y * w + x1] - p->px[(size_t)y * w + x0]) / (float)(x1 - x0) : 0.0f;
            } else {
                int y0 = y > 0 ? y - 1 : y, y1 = y < h - 1 ? y + 1 : y;
                d = y1 > y0 ? (p->px[(size_t)y1 * w + x] - p->px[(size_t)y0 * w + x]) / (float)(y1 - y0) : 0.0f;
            }
            g->px[(size_t)y * w + x] = d;
        }
    }
    return g;
}

/*
 * Build levels 0..nlev-1 (each a 2x area reduction, blurred by sigma ~1 for the fit).
 * NaN in base marks unusable pixels (black); reductions and blurs are normalized
 * convolutions (sum of value x weight over sum of weight), so the unusable area does
 * not grow with the blur, and a pixel stays NaN only where less than 30 % of its
 * neighbourhood was usable.
 */
static bool pyr_build(struct pyr *p, const bcd__plane *base, const bcd__plane *clip, int nlev, bool grads)
{
    memset(p, 0, sizeof *p);
    size_t n0 = (size_t)base->w * base->h;
    bool any_nan = false, any_clip = false;
    for (size_t i = 0; i < n0; i++) {
        any_nan |= base->px[i] != base->px[i];
        any_clip |= clip->px[i] != 0.0f;
    }
    /* the weight and clip planes are only carried when there is something to carry */
    bcd__plane *vw = bcd__plane_blur(base, 0.0f), *wt = NULL, *cl = NULL;
    if (!vw || (any_nan && !(wt = bcd__plane_new(base->w, base->h))) ||
        (any_clip && !(cl = bcd__plane_blur(clip, 0.0f))))
        goto fail;
    if (any_nan)
        for (size_t i = 0; i < n0; i++) {
            bool ok = vw->px[i] == vw->px[i];
            wt->px[i] = ok ? 1.0f : 0.0f;
            if (!ok)
                vw->px[i] = 0.0f;
        }
    for (int k = 0; k < nlev; k++) {
        if (k > 0) {
            bcd__plane *h1 = bcd__plane_half(vw), *h2 = wt ? bcd__plane_half(wt) : NULL,
                       *h3 = cl ? bcd__plane_half(cl) : NULL;
            bool ok = h1 && (!wt || h2) && (!cl || h3);
            bcd__plane_free(vw);
            bcd__plane_free(wt);
            bcd__plane_free(cl);
            vw = h1;
            wt = h2;
            cl = h3;
            if (!ok)
                goto fail;
        }
        float sigma = k == 0 ? 0.8f : 1.0f;
        bcd__plane *bv = bcd__plane_blur(vw, sigma), *bw = wt ? bcd__plane_blur(wt, sigma) : NULL;
        p->img[k] = bv;
        p->n = k + 1;
        if (!bv || (wt && !bw)) {
            bcd__plane_free(bw);
            goto fail;
        }
        if (bw)
            for (size_t i = 0; i < (size_t)bv->w * bv->h; i++)
                bv->px[i] = bw->px[i] >= 0.3f ? bv->px[i] / bw->px[i] : NAN;
        bcd__plane_free(bw);
        if (cl && !(p->cz[k] = bcd__plane_blur(cl, sigma)))
            goto fail;
        if (grads) {
            p->gx[k] = gradient(p->img[k], true);
            p->gy[k] = gradient(p->img[k], false);
            if (!p->gx[k] || !p->gy[k])
                goto fail;
        }
        double sc = ldexp(1.0, -k);
        p->cx[k] = ((base->w - 1) * 0.5 + 0.5) * sc - 0.5;
        p->cy[k] = ((base->h - 1) * 0.5 + 0.5) * sc - 0.5;
    }
    bcd__plane_free(vw);
    bcd__plane_free(wt);
    bcd__plane_free(cl);
    return true;
fail:
    bcd__plane_free(vw);
    bcd__plane_free(wt);
    bcd__plane_free(cl);
    return false;
}

/* Whether pixel (x, y) of level k of the current pyramid, or point (u, v) of the
 * previous one, is clipped. */
static inline bool clipped_c(const struct pyr *C, int k, int x, int y)
{
    return C->cz[k] && C->cz[k]->px[(size_t)y * C->cz[k]->w + x] >= 0.5f;
}

static inline bool clipped_p(const struct pyr *P, int k, float u, float v)
{
    return P->cz[k] && bcd__plane_at(P->cz[k], u, v) >= 0.5f;
}

/* Band-pass for the fit score: the plane minus its blur at DOG_SIGMA px. */
static bcd__plane *dog(const bcd__plane *p)
{
    bcd__plane *b = bcd__plane_blur(p, DOG_SIGMA);
    if (!b)
        return NULL;
    for (size_t i = 0; i < (size_t)p->w * p->h; i++)
        b->px[i] = p->px[i] - b->px[i];
    return b;
}

struct params {
    double a, b, tx, ty; /* tx, ty in pixels of the level they were last used at */
    double g, h;
};

/*
 * Fit score: normalized cross-correlation of current and warped previous over the
 * overlap, on band-passed planes c and p of level k (see dog()): the large shading
 * that two unrelated pictures may share does not count, edges and spots do. The 10 %
 * of pixels with the largest residual g p - c are left out, so that a changed area
 * (which the alignment rightly ignores) does not count as a poor fit. Black or clipped
 * pixels do not count. buf holds 3 * (pixels of level k) floats. Also the overlap
 * fraction.
 */
static double score_at(const struct pyr *C, const struct pyr *P, int k, const bcd__plane *c, const bcd__plane *p,
                       const struct params *pr, double *overlap, float *buf)
{
    size_t npx = (size_t)c->w * c->h, n = 0, inside = 0;
    float *cv = buf, *pv = buf + npx, *ae = buf + 2 * npx;
    for (int y = 0; y < c->h; y++) {
        double yy = y - C->cy[k];
        for (int x = 0; x < c->w; x++) {
            double xx = x - C->cx[k];
            double u = pr->a * xx - pr->b * yy + pr->tx + P->cx[k];
            double v = pr->b * xx + pr->a * yy + pr->ty + P->cy[k];
            if (u < 0 || v < 0 || u > p->w - 1 || v > p->h - 1)
                continue;
            inside++;
            float a = bcd__plane_at(p, (float)u, (float)v), b = c->px[(size_t)y * c->w + x];
            if (a != a || b != b || clipped_c(C, k, x, y) || clipped_p(P, k, (float)u, (float)v))
                continue; /* black or clipped in either photo */
            pv[n] = a;
            cv[n] = b;
            ae[n] = fabsf((float)(pr->g * a) - b);
            n++;
        }
    }
    *overlap = (double)inside / (double)npx;
    if (n < 16 || n * 10 < inside)
        return 0.0;
    /* ae is reordered by the selection; the residuals are recomputed below */
    double cut = bcd__detect_quantile(ae, n, TRIM_KEEP);
    double sw = 0, sc = 0, scc = 0, sp = 0, spp = 0, scp = 0;
    for (size_t i = 0; i < n; i++) {
        if (fabs(pr->g * pv[i] - cv[i]) > cut)
            continue;
        sw += 1.0;
        sc += cv[i];
        scc += (double)cv[i] * cv[i];
        sp += pv[i];
        spp += (double)pv[i] * pv[i];
        scp += (double)cv[i] * pv[i];
    }
    if (sw < 16.0)
        return 0.0;
    double vc = scc - sc * sc / sw, vp = spp - sp * sp / sw;
    if (vc <= 1e-12 || vp <= 1e-12)
        return 0.0;
    return (scp - sc * sp / sw) / sqrt(vc * vp);
}

bool bcd__detect_solve(double A[6][6], const double *b, double *x, int n)
{
    double L[6][6] = { { 0 } };
    for (int i = 0; i < n; i++) {
        for (int j = 0; j <= i; j++) {
            double s = A[i][j];
            for (int k = 0; k < j; k++)
                s -= L[i][k] * L[j][k];
            if (i == j) {
                if (s <= 1e-15)
                    return false;
                L[i][i] = sqrt(s);
            } else {
                L[i][j] = s / L[j][j];
            }
        }
    }
    double y[6];
    for (int i = 0; i < n; i++) {
        double s = b[i];
        for (int k = 0; k < i; k++)
            s -= L[i][k] * y[k];
        y[i] = s / L[i][i];
    }
    for (int i = n - 1; i >= 0; i--) {
        double s = y[i];
        for (int k = i + 1; k < n; k++)
            s -= L[k][i] * x[k];
        x[i] = s / L[i][i];
    }
    return true;
}

struct lk_sys {
    double H[6][6], b[6];
    double cost; /* mean Huber loss */
    size_t n;
};

/* What a pixel brings to the normal equations: its residual, the gradient terms, the
 * previous value and its normalized coordinates. */
struct lk_pix {
    double e, Gu, Gv, pv, xs, ys;
};

/*
 * The sums of the normal equations in vectors of four: column j of H (rows 0-3 and 4-5)
 * in hc[j], b in hb. Each sum adds the same product (w J_i) J_j or (w J_i) e in the same
 * order as one scalar sum per entry would, so the result is the same bit for bit, with a
 * dozen vector additions per pixel instead of 27 loads and stores. Entries above the
 * diagonal and the two spare lanes are summed and not used.
 */
struct lk_acc {
    bcd__v4d hc[6][2], hb[2];
    double cost;
};

static inline void lk_add(struct lk_acc *a, const struct lk_pix *q, double kh)
{
    double e = q->e, Gu = q->Gu, Gv = q->Gv, xs = q->xs, ys = q->ys;
    double ae = fabs(e);
    double wgt = 1.0;
    if (ae > kh) {
        wgt = kh / ae;
        a->cost += kh * (ae - 0.5 * kh);
    } else {
        a->cost += 0.5 * e * e;
    }
    double J[6] = { Gu * xs + Gv * ys, -Gu * ys + Gv * xs, Gu, Gv, q->pv, 1.0 };
    bcd__v4d wa = { wgt * J[0], wgt * J[1], wgt * J[2], wgt * J[3] };
    bcd__v4d wb = { wgt * J[4], wgt * J[5], 0.0, 0.0 };
    for (int j = 0; j < 4; j++) {
        a->hc[j][0] += wa * J[j];
        a->hc[j][1] += wb * J[j];
    }
    a->hc[4][1] += wb * J[4];
    a->hc[5][1] += wb * J[5];
    a->hb[0] += wa * e;
    a->hb[1] += wb * e;
}

static void lk_done(struct lk_sys *sy, const struct lk_acc *a, size_t n)
{
    for (int i = 0; i < 6; i++) {
        for (int j = 0; j <= i; j++)
            sy->H[i][j] = a->hc[j][i / 4][i % 4];
        sy->b[i] = a->hb[i / 4][i % 4];
    }
    sy->n = n;
    sy->cost = n ? a->cost / (double)n : INFINITY;
}

/* The normal equations at scale sigma of the pixels kept by a pass at sigma 0: the same
 * sums, in the same order, as a second pass at the same params would give. */
BCD__WIDE_KERNEL static void lk_replay(struct lk_sys *sy, const struct lk_pix *keep, size_t n, double sigma)
{
    struct lk_acc a;
    memset(&a, 0, sizeof a);
    memset(sy, 0, sizeof *sy);
    const double kh = 1.345 * sigma;
    for (size_t i = 0; i < n; i++)
        lk_add(&a, &keep[i], kh);
    lk_done(sy, &a, n);
}

/* Normal equations and robust cost of the fit at params pr (one pass over level k).
 * At sigma <= 0 only the absolute residuals (ebuf) and their count, and where keep is
 * given each pixel's terms for lk_replay(). */
BCD__WIDE_KERNEL static void lk_pass(struct lk_sys *sy, const struct pyr *C, const struct pyr *P, int k,
                                      const struct params *pr, int step, double sigma, float *ebuf,
                                      struct lk_pix *keep)
{
    const bcd__plane *c = C->img[k], *p = P->img[k], *gx = P->gx[k], *gy = P->gy[k], *zpl = P->cz[k];
    double S = 0.5 * (c->w > c->h ? c->w : c->h);
    double kh = 1.345 * sigma;
    memset(sy, 0, sizeof *sy);
    struct lk_acc a;
    memset(&a, 0, sizeof a);
    size_t n = 0;
    /* the normalized coordinates of the columns, divided once per pass instead of at
     * each pixel */
    double xs_of[MAX_LK_SIDE];
    for (int x = 0; x < c->w && x < MAX_LK_SIDE; x++)
        xs_of[x] = (x - C->cx[k]) / S;
    for (int y = 0; y < c->h; y += step) {
        double yy = y - C->cy[k];
        const double ys = yy / S;
        for (int x = 0; x < c->w; x += step) {
            double xx = x - C->cx[k];
            double u = pr->a * xx - pr->b * yy + pr->tx + P->cx[k];
            double v = pr->b * xx + pr->a * yy + pr->ty + P->cy[k];
            if (u < 0 || v < 0 || u > p->w - 1 || v > p->h - 1)
                continue;
            /* the previous level's planes are all p's size: one set of weights */
            bcd__bilinear at = bcd__bilinear_at(p->w, p->h, (float)u, (float)v);
            double pv = bcd__bilinear_sample(p->px, &at);
            double e = pr->g * pv + pr->h - c->px[(size_t)y * c->w + x];
            double Gu = bcd__bilinear_sample(gx->px, &at) * pr->g, Gv = bcd__bilinear_sample(gy->px, &at) * pr->g;
            if (e != e || Gu != Gu || Gv != Gv)
                continue; /* black */
            /* censored residuals: a clipped value is a lower bound, so a prediction
             * above a clipped current pixel, or a clipped previous pixel predicted
             * below the current one, fits */
            bool zc = clipped_c(C, k, x, y), zp = zpl && bcd__bilinear_sample(zpl->px, &at) >= 0.5f;
            if ((zc && zp) || (zc && e > 0.0) || (zp && e < 0.0))
                e = 0.0;
            const struct lk_pix q = { e, Gu, Gv, pv, x < MAX_LK_SIDE ? xs_of[x] : xx / S, ys };
            if (ebuf)
                ebuf[n] = (float)fabs(e);
            if (sigma > 0.0)
                lk_add(&a, &q, kh);
            else if (keep)
                keep[n] = q;
            n++;
        }
    }
    lk_done(sy, &a, n);
}

/*
 * Levenberg-Marquardt iterations at level k on the residual e = g P(W(x)) + h - C(x)
 * with Huber weights, the scale fixed per level at 1.4826 * median |e| of the start. A
 * step is kept only if it lowers the mean loss (else the damping grows); no step moves
 * a pixel by more than MAX_STEP px, and the level as a whole by more than MAX_DRIFT px
 * nor a or b by more than max_ab: a level refines what the coarser one found, and an
 * iteration that wanders off has left the basin it started in. Coordinates are divided by the level's half-size so
 * the normal equations stay well conditioned.
 */
static void refine_level(const struct pyr *C, const struct pyr *P, int k, struct params *pr, int maxit, int step,
                         double max_ab, float *ebuf, struct lk_pix *keep)
{
    const bcd__plane *c = C->img[k];
    double S = 0.5 * (c->w > c->h ? c->w : c->h);
    const struct params start = *pr;
    struct lk_sys cur, trial;
    lk_pass(&cur, C, P, k, pr, step, 0.0, ebuf, keep);
    if (cur.n < 32)
        return;
    double sigma = 1.4826 * bcd__detect_median(ebuf, cur.n);
    if (sigma < 1e-4)
        sigma = 1e-4;
    if (keep)
        lk_replay(&cur, keep, cur.n, sigma);
    else
        lk_pass(&cur, C, P, k, pr, step, sigma, NULL, NULL);
    double lambda = 1e-3;
    for (int it = 0; it < maxit; it++) {
        double A[6][6], d[6], rhs[6];
        for (int i = 0; i < 6; i++) {
            for (int j = 0; j <= i; j++)
                A[i][j] = A[j][i] = cur.H[i][j];
            A[i][i] = cur.H[i][i] * (1.0 + lambda) + 1e-9;
            rhs[i] = -cur.b[i];
        }
        if (!bcd__detect_solve(A, rhs, d, 6))
            return;
        double len = fabs(d[0]) + fabs(d[1]) + fabs(d[2]) + fabs(d[3]);
        if (len > MAX_STEP)
            for (int i = 0; i < 6; i++)
                d[i] *= MAX_STEP / len;
        struct params t = *pr;
        t.a += d[0] / S;
        t.b += d[1] / S;
        t.tx += d[2];
        t.ty += d[3];
        t.g += d[4];
        t.h += d[5];
        double drift = (fabs(t.a - start.a) + fabs(t.b - start.b)) * S + fabs(t.tx - start.tx) + fabs(t.ty - start.ty);
        bool ok = drift <= MAX_DRIFT && fabs(t.a - start.a) <= max_ab && fabs(t.b - start.b) <= max_ab && t.g > 0.2 &&
                  t.g < 5.0;
        if (ok) {
            lk_pass(&trial, C, P, k, &t, step, sigma, NULL, NULL);
            ok = trial.n >= 32 && trial.cost < cur.cost;
        }
        if (!ok) {
            lambda *= 8.0;
            if (lambda > 1e4)
                return;
            continue;
        }
        *pr = t;
        cur = trial;
        lambda = lambda > 1e-6 ? lambda / 4.0 : lambda;
        if (len < 0.01)
            return;
    }
}

struct cand {
    double ncc;
    struct params p;
};

static int cmp_cand(const void *a, const void *b)
{
    double x = ((const struct cand *)a)->ncc, y = ((const struct cand *)b)->ncc;
    return (x < y) - (x > y);
}

/* Exhaustive search at the coarsest level. Fills up to NCAND distinct candidates. */
/*
 * A copy of p with its values clamped to its [SEARCH_CLAMP, 1 - SEARCH_CLAMP] quantiles
 * (NaN kept): at ~32 px a large new dark spot is the strongest feature of a close-up and
 * would pull the search to an old spot; clamped, the broad layout decides.
 */
static bcd__plane *clamped(const bcd__plane *p)
{
    size_t n = (size_t)p->w * p->h, m = 0;
    bcd__plane *o = bcd__plane_blur(p, 0.0f);
    float *v = malloc(n * sizeof(float));
    if (!o || !v) {
        bcd__plane_free(o);
        free(v);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        if (p->px[i] == p->px[i])
            v[m++] = p->px[i];
    if (m > 0) {
        float lo = bcd__detect_quantile(v, m, SEARCH_CLAMP), hi = bcd__detect_quantile(v, m, 1.0 - SEARCH_CLAMP);
        for (size_t i = 0; i < n; i++) {
            float x = o->px[i];
            if (x == x)
                o->px[i] = x < lo ? lo : x > hi ? hi : x;
        }
    }
    free(v);
    return o;
}

static int coarse_search(const struct pyr *C, const struct pyr *P, int k, struct cand *out)
{
    bcd__plane *c = clamped(C->img[k]), *p = clamped(P->img[k]);
    if (!c || !p) {
        bcd__plane_free(c);
        bcd__plane_free(p);
        return 0;
    }
    int Rx = (int)ceil(SEARCH_FRAC * c->w), Ry = (int)ceil(SEARCH_FRAC * c->h);
    int ew = c->w + 2 * Rx, eh = c->h + 2 * Ry;
    int nsx = 2 * Rx + 1, nsy = 2 * Ry + 1;
    int ncomb = (int)(sizeof search_scales / sizeof *search_scales * (sizeof search_rot_deg / sizeof *search_rot_deg));
    float *canvas = malloc((size_t)ew * eh * sizeof(float));
    float *grid = malloc((size_t)nsx * nsy * sizeof(float));
    struct cand *all = malloc((size_t)ncomb * nsx * nsy * sizeof *all);
    /* per canvas row: the columns inside P (lo..hi, an interval: the row crosses the
     * parallelogram P maps to once) and whether any of them is NaN; per row of c:
     * whether it has a NaN */
    int *lo = malloc((size_t)eh * 2 * sizeof *lo), *hi = lo ? lo + eh : NULL;
    bool *enan = malloc((size_t)eh + (size_t)c->h), *cnan = enan ? enan + eh : NULL;
    int nall = 0, nout = 0;
    if (!canvas || !grid || !all || !lo || !enan)
        goto done;
    size_t N = (size_t)c->w * c->h;
    for (int y = 0; y < c->h; y++) {
        cnan[y] = false;
        for (int x = 0; x < c->w; x++)
            cnan[y] |= c->px[(size_t)y * c->w + x] != c->px[(size_t)y * c->w + x];
    }
    for (size_t si = 0; si < sizeof search_scales / sizeof *search_scales; si++) {
        for (size_t ri = 0; ri < sizeof search_rot_deg / sizeof *search_rot_deg; ri++) {
            double th = search_rot_deg[ri] * M_PI / 180.0;
            double a = search_scales[si] * cos(th), b = search_scales[si] * sin(th);
            /* canvas(i, j) = P(A ((i - Rx, j - Ry) - cc) + cp), NaN outside P */
            for (int j = 0; j < eh; j++) {
                double yy = j - Ry - C->cy[k];
                lo[j] = ew;
                hi[j] = -1;
                enan[j] = false;
                for (int i = 0; i < ew; i++) {
                    double xx = i - Rx - C->cx[k];
                    double u = a * xx - b * yy + P->cx[k], v = b * xx + a * yy + P->cy[k];
                    float e = OUTSIDE;
                    if (!(u < 0 || v < 0 || u > p->w - 1 || v > p->h - 1)) {
                        e = bcd__plane_at(p, (float)u, (float)v);
                        lo[j] = i < lo[j] ? i : lo[j];
                        hi[j] = i;
                        enan[j] |= e != e;
                    }
                    canvas[(size_t)j * ew + i] = e;
                }
            }
            for (int dy = -Ry; dy <= Ry; dy++) {
                for (int dx = -Rx; dx <= Rx; dx++) {
                    double sc = 0, scc = 0, sp = 0, spp = 0, scp = 0;
                    size_t n = 0, inside = 0;
                    for (int y = 0; y < c->h; y++) {
                        int j = y + dy + Ry;
                        /* the columns of c whose canvas pixel is inside P */
                        int x0 = lo[j] - dx - Rx, x1 = hi[j] - dx - Rx;
                        x0 = x0 < 0 ? 0 : x0;
                        x1 = x1 > c->w - 1 ? c->w - 1 : x1;
                        if (x1 < x0)
                            continue;
                        inside += (size_t)(x1 - x0 + 1);
                        const float *cr = c->px + (size_t)y * c->w;
                        const float *er = canvas + (size_t)j * ew + dx + Rx;
                        if (!enan[j] && !cnan[y]) {
                            n += (size_t)(x1 - x0 + 1);
                            for (int x = x0; x <= x1; x++) {
                                double cv = cr[x], e = er[x];
                                sc += cv;
                                scc += cv * cv;
                                sp += e;
                                spp += e * e;
                                scp += cv * e;
                            }
                            continue;
                        }
                        for (int x = x0; x <= x1; x++) {
                            float e = er[x];
                            double cv = cr[x];
                            if (e != e || cv != cv)
                                continue;
                            sc += cv;
                            scc += cv * cv;
                            sp += e;
                            spp += (double)e * e;
                            scp += cv * e;
                            n++;
                        }
                    }
                    float ncc = -2.0f;
                    if (inside >= MIN_SEARCH_OVERLAP * N && n * 4 >= inside) {
                        double vc = scc - sc * sc / n, vp = spp - sp * sp / n;
                        if (vc > 1e-12 && vp > 1e-12)
                            ncc = (float)((scp - sc * sp / n) / sqrt(vc * vp));
                    }
                    grid[(size_t)(dy + Ry) * nsx + dx + Rx] = ncc;
                }
            }
            /* local maxima of the shift grid become candidates; shift d in current
             * pixels means t = A d */
            for (int gy = 0; gy < nsy; gy++) {
                for (int gxi = 0; gxi < nsx; gxi++) {
                    float v = grid[(size_t)gy * nsx + gxi];
                    if (v <= -1.5f)
                        continue;
                    bool peak = true;
                    for (int oy = -1; oy <= 1 && peak; oy++)
                        for (int ox = -1; ox <= 1; ox++) {
                            int yy = gy + oy, xx = gxi + ox;
                            if ((ox || oy) && yy >= 0 && xx >= 0 && yy < nsy && xx < nsx &&
                                grid[(size_t)yy * nsx + xx] > v) {
                                peak = false;
                                break;
                            }
                        }
                    if (!peak)
                        continue;
                    double dx = gxi - Rx, dy = gy - Ry;
                    struct cand *cd = &all[nall++];
                    cd->ncc = v;
                    cd->p.a = a;
                    cd->p.b = b;
                    cd->p.tx = a * dx - b * dy;
                    cd->p.ty = b * dx + a * dy;
                    cd->p.g = 1.0;
                    cd->p.h = 0.0;
                }
            }
        }
    }
    /* The NCAND_TOP best local maxima, whatever their rotation and scale (at this size
     * the right scale can score a little below a wrong one at the same shift), then the
     * best that differ from all taken in shift or scale: a body that runs off the top
     * and bottom of the frame says little about vertical shifts at 32 px, and the
     * finer levels, which see the spots, decide between them. */
    qsort(all, (size_t)nall, sizeof *all, cmp_cand);
    for (int i = 0; i < nall && nout < NCAND_TOP; i++)
        out[nout++] = all[i];
    for (int i = NCAND_TOP; i < nall && nout < NCAND; i++) {
        bool distinct = true;
        for (int j = 0; j < nout && distinct; j++) {
            double dtx = all[i].p.tx - out[j].p.tx, dty = all[i].p.ty - out[j].p.ty;
            double ds = fabs(hypot(all[i].p.a, all[i].p.b) - hypot(out[j].p.a, out[j].p.b));
            if (dtx * dtx + dty * dty <= 2.0 * 2.0 && ds < 0.01)
                distinct = false;
        }
        if (distinct)
            out[nout++] = all[i];
    }
done:
    free(canvas);
    free(grid);
    free(all);
    free(lo);
    free(enan);
    bcd__plane_free(c);
    bcd__plane_free(p);
    return nout;
}

static void to_level(struct params *p, int from, int to)
{
    double f = ldexp(1.0, from - to);
    p->tx *= f;
    p->ty *= f;
}

/* A starting pose (the identity or a candidate of the search) refined on the coarsest
 * level and the next (mid), and its fit score there (*ov: the overlap). */
static double refine_start(const struct pyr *C, const struct pyr *P, int coarse, int mid, const bcd__plane *dc,
                           const bcd__plane *dp, struct params *p, double *ov, float *ebuf, struct lk_pix *keep)
{
    /* the search grid is 4 deg and 7 % apart: a level moves a and b by less */
    refine_level(C, P, coarse, p, 15, 1, 0.06, ebuf, keep);
    if (mid != coarse) {
        to_level(p, coarse, mid);
        refine_level(C, P, mid, p, 15, 1, 0.03, ebuf, keep);
    }
    return score_at(C, P, mid, dc, dp, p, ov, ebuf);
}

bcd_status bcd__detect_align(bcd__align *out, const bcd__plane *cur, const bcd__plane *prev, const bcd__plane *cur_clip,
                             const bcd__plane *prev_clip)
{
    int longer = cur->w > cur->h ? cur->w : cur->h;
    int nlev = 1, coarse = 0, scorelev = 0;
    /* levels down to the first whose longer side is <= COARSE_SIDE; both frames must
     * keep at least 8 px on each side */
    while (nlev < MAX_LEVELS && (longer >> (nlev - 1)) > COARSE_SIDE) {
        int nw = cur->w >> nlev, nh = cur->h >> nlev, pw = prev->w >> nlev, ph = prev->h >> nlev;
        if (nw < 8 || nh < 8 || pw < 8 || ph < 8)
            break;
        nlev++;
    }
    coarse = nlev - 1;
    while (scorelev < coarse && (longer >> scorelev) > SCORE_SIDE)
        scorelev++;

    struct pyr C, P;
    bcd__plane *dc[2] = { 0 }, *dp[2] = { 0 };
    memset(&C, 0, sizeof C);
    memset(&P, 0, sizeof P);
    bcd_status st = BCD_ENOMEM;
    size_t nmax = (size_t)cur->w * cur->h;
    float *ebuf = malloc(3 * nmax * sizeof(float));
    /* the terms of a level's pixels, kept from the pass that sets the scale for the
     * next at the same params (without it, that pass runs twice) */
    struct lk_pix *keep = malloc(nmax * sizeof *keep);
    bool okc = pyr_build(&C, cur, cur_clip, nlev, false);
    bool okp = okc && pyr_build(&P, prev, prev_clip, nlev, true);
    if (!ebuf || !okc || !okp)
        goto done;
    /* band-passed planes for the fit score: [0] candidates' level, [1] final score level */
    int mid = coarse > 0 ? coarse - 1 : 0;
    if (!(dc[0] = dog(C.img[mid])) || !(dp[0] = dog(P.img[mid])) || !(dc[1] = dog(C.img[scorelev])) ||
        !(dp[1] = dog(P.img[scorelev])))
        goto done;

    /* Photos of the same pose start aligned, or nearly: the identity, refined at the
     * coarsest two levels as a candidate of the search would be, is kept when it fits
     * well (most pairs), and the search runs only when it does not. */
    struct params best = { 1.0, 0.0, 0.0, 0.0, 1.0, 0.0 };
    int bestlev = coarse;
    double fast_ov;
    bool fast = refine_start(&C, &P, coarse, mid, dc[0], dp[0], &best, &fast_ov, ebuf, keep) >= FAST_ACCEPT &&
                fast_ov >= MIN_SEARCH_OVERLAP;
    if (fast) {
        bestlev = mid;
    } else {
        best = (struct params){ 1.0, 0.0, 0.0, 0.0, 1.0, 0.0 };
        bestlev = coarse;
    }
    struct cand cands[NCAND];
    int nc = fast ? 0 : coarse_search(&C, &P, coarse, cands);
    if (nc > 0) {
        /* refine each hypothesis at the coarsest two levels, keep the best fit */
        double bestncc = -2.0;
        for (int i = 0; i < nc; i++) {
            struct params p = cands[i].p;
            double ov;
            double ncc = refine_start(&C, &P, coarse, mid, dc[0], dp[0], &p, &ov, ebuf, keep);
            if (ov < MIN_SEARCH_OVERLAP)
                ncc -= 1.0;
            if (ncc > bestncc) {
                bestncc = ncc;
                best = p;
                bestlev = mid;
            }
        }
    }
    for (int k = bestlev - 1; k >= 0; k--) {
        to_level(&best, k + 1, k);
        /* on the finest level every other pixel in each direction is plenty */
        int side = (cur->w >> k) > (cur->h >> k) ? (cur->w >> k) : (cur->h >> k);
        int step = side >= 200 ? 2 : 1;
        refine_level(&C, &P, k, &best, k == 0 ? 8 : 12, step, 0.02, ebuf, keep);
    }
    double ov = 0.0;
    struct params ps = best;
    to_level(&ps, 0, scorelev);
    out->score = score_at(&C, &P, scorelev, dc[1], dp[1], &ps, &ov, ebuf);
    out->overlap = ov;
    out->a = best.a;
    out->b = best.b;
    out->tx = best.tx;
    out->ty = best.ty;
    out->gain = best.g;
    out->bias = best.h;
    if (!isfinite(out->a) || !isfinite(out->b) || !isfinite(out->tx) || !isfinite(out->ty)) {
        out->a = 1.0;
        out->b = out->tx = out->ty = 0.0;
        out->score = 0.0;
        out->overlap = 0.0;
    }
    st = BCD_OK;
done:
    for (int i = 0; i < 2; i++) {
        bcd__plane_free(dc[i]);
        bcd__plane_free(dp[i]);
    }
    free(ebuf);
    free(keep);
    pyr_free(&C);
    pyr_free(&P);
    return st;
}

BCD__WIDE_KERNEL void bcd__detect_warp(bcd__plane *const *dst, uint8_t *mask, bcd__plane *const *prev, int nplanes,
                      const bcd__align *al)
{
    int w = dst[0]->w, h = dst[0]->h, pw = prev[0]->w, ph = prev[0]->h;
    double ccx = (w - 1) * 0.5, ccy = (h - 1) * 0.5;
    double cpx = (pw - 1) * 0.5, cpy = (ph - 1) * 0.5;
    for (int y = 0; y < h; y++) {
        double yy = y - ccy;
        /* u, v are affine in x: start of the row and step */
        double u = al->a * -ccx - al->b * yy + al->tx + cpx;
        double v = al->b * -ccx + al->a * yy + al->ty + cpy;
        for (int x = 0; x < w; x++, u += al->a, v += al->b) {
            size_t i = (size_t)y * w + x;
            if (u < 0 || v < 0 || u > pw - 1 || v > ph - 1) {
                for (int c = 0; c < nplanes; c++)
                    dst[c]->px[i] = 0.0f;
                if (mask)
                    mask[i] = 0;
                continue;
            }
            int x0 = (int)u, y0 = (int)v;
            if (x0 > pw - 2)
                x0 = pw - 2;
            if (y0 > ph - 2)
                y0 = ph - 2;
            float fx = (float)(u - x0), fy = (float)(v - y0);
            float w00 = (1 - fx) * (1 - fy), w01 = fx * (1 - fy), w10 = (1 - fx) * fy, w11 = fx * fy;
            size_t j = (size_t)y0 * pw + x0;
            for (int c = 0; c < nplanes; c++) {
                const float *s = prev[c]->px + j;
                dst[c]->px[i] = w00 * s[0] + w01 * s[1] + w10 * s[pw] + w11 * s[pw + 1];
            }
            if (mask)
                mask[i] = 1;
        }
    }
}

/*
 * The planes the alignment runs on: "log luma" (the luma-weighted mean of the log
 * channels, so that a white balance change is an exact offset, not a pattern that
 * follows the colours) plus the chroma direction along which the
 * current photo varies most, scaled to the luma's spread. Luma alone can be nearly
 * flat when skin and background have the same brightness (light skin before a light
 * wall); the chroma term then carries the silhouette while luma keeps the spots and
 * the texture. The direction and scale come from the current photo and are applied to
 * both, so exposure, gamma and white balance stay a gain and an offset.
 * Channels clipped over much of either photo are left out; where a used channel is
 * clipped the pixel is marked (out[2], out[3]) and its residual censored: see lk_pass().
 */
bcd_status bcd__detect_align_planes(bcd__plane *out[4], const bcd__work *wc, const bcd__work *wp)
{
    const bcd__work *ws[2] = { wc, wp };
    bcd__plane *L[2] = { 0 }, *Ca[2] = { 0 }, *Cb[2] = { 0 }, *Z[2] = { 0 };
    bcd_status st = BCD_ENOMEM;

    /* Channels clipped on more than 2 % of either photo are left out altogether (a
     * bright exposure clips the red channel of light skin first); if every channel is,
     * the least clipped one is used. A pixel where a used channel is clipped is NaN. */
    double clipfrac[3] = { 0 };
    for (int k = 0; k < 2; k++) {
        size_t np = (size_t)ws[k]->w * ws[k]->h;
        for (int c = 0; c < 3; c++) {
            size_t cnt = 0;
            const float *v = ws[k]->c[c]->px;
            for (size_t i = 0; i < np; i++)
                cnt += v[i] >= 250.0f;
            double f = (double)cnt / (double)np;
            if (f > clipfrac[c])
                clipfrac[c] = f;
        }
    }
    bool use[3];
    int nuse = 0, least = 0;
    for (int c = 0; c < 3; c++) {
        use[c] = clipfrac[c] <= 0.02;
        nuse += use[c];
        if (clipfrac[c] < clipfrac[least])
            least = c;
    }
    if (nuse == 0) {
        use[least] = true;
        nuse = 1;
    }
    static const float luma[3] = { 0.299f, 0.587f, 0.114f };
    float wl[3] = { 0 }, wsum = 0.0f;
    for (int c = 0; c < 3; c++)
        if (use[c])
            wsum += luma[c];
    for (int c = 0; c < 3; c++)
        wl[c] = use[c] ? luma[c] / wsum : 0.0f;
    int ci = -1, cj = -1; /* the pair of channels of the chroma axis when two are used */
    for (int c = 0; c < 3; c++)
        if (use[c]) {
            if (ci < 0)
                ci = c;
            else if (cj < 0)
                cj = c;
        }

    for (int k = 0; k < 2; k++) {
        int w = ws[k]->w, h = ws[k]->h;
        if (!(L[k] = bcd__plane_new(w, h)) || !(Ca[k] = bcd__plane_new(w, h)) || !(Cb[k] = bcd__plane_new(w, h)) ||
            !(Z[k] = bcd__plane_new(w, h)))
            goto done;
        const float *ch[3] = { ws[k]->c[0]->px, ws[k]->c[1]->px, ws[k]->c[2]->px };
        bcd__logtab own;
        const bcd__logtab *lt = bcd__logtab_shared(4.0f, 4, &own);
        for (size_t i = 0; i < (size_t)w * h; i++) {
            float mx = 0.0f, l[3] = { 0 };
            bool clipped = false;
            for (int c = 0; c < 3; c++) {
                if (!use[c])
                    continue;
                float v = ch[c][i];
                clipped |= v >= 250.0f;
                mx = v > mx ? v : mx;
                l[c] = bcd__logtab_get(lt, v);
            }
            Z[k]->px[i] = clipped ? 1.0f : 0.0f;
            if (mx <= 3.0f) {
                /* black: nothing to align on */
                L[k]->px[i] = Ca[k]->px[i] = Cb[k]->px[i] = NAN;
                continue;
            }
            L[k]->px[i] = wl[0] * l[0] + wl[1] * l[1] + wl[2] * l[2];
            if (nuse == 3) {
                Ca[k]->px[i] = l[0] - l[1];
                Cb[k]->px[i] = 0.5f * (l[0] + l[1]) - l[2];
            } else {
                Ca[k]->px[i] = nuse == 2 ? l[ci] - l[cj] : 0.0f;
                Cb[k]->px[i] = 0.0f;
            }
        }
    }
    /* moments of the current photo */
    double m[3] = { 0 }, cov[3][3] = { { 0 } };
    size_t n = 0;
    for (size_t i = 0; i < (size_t)wc->w * wc->h; i++) {
        double v[3] = { L[0]->px[i], Ca[0]->px[i], Cb[0]->px[i] };
        if (v[0] != v[0] || Z[0]->px[i] != 0.0f)
            continue;
        n++;
        for (int a = 0; a < 3; a++) {
            m[a] += v[a];
            for (int b = 0; b <= a; b++)
                cov[a][b] += v[a] * v[b];
        }
    }
    if (n == 0)
        n = 1;
    for (int a = 0; a < 3; a++)
        m[a] /= (double)n;
    for (int a = 0; a < 3; a++)
        for (int b = 0; b <= a; b++)
            cov[a][b] = cov[b][a] = cov[a][b] / (double)n - m[a] * m[b];
    /* principal direction of the 2-D chroma covariance */
    double saa = cov[1][1], sbb = cov[2][2], sab = cov[1][2];
    double th = 0.5 * atan2(2.0 * sab, saa - sbb);
    double da = cos(th), db = sin(th);
    double vq = da * da * saa + 2.0 * da * db * sab + db * db * sbb;
    double vl = cov[0][0];
    double beta = vq > 1e-12 ? sqrt(vl / vq) : 0.0;
    if (beta > 2.0)
        beta = 2.0;
    for (int k = 0; k < 2; k++) {
        size_t np = (size_t)ws[k]->w * ws[k]->h;
        for (size_t i = 0; i < np; i++)
            L[k]->px[i] += (float)(beta * (da * Ca[k]->px[i] + db * Cb[k]->px[i]));
    }
    out[0] = L[0];
    out[1] = L[1];
    out[2] = Z[0];
    out[3] = Z[1];
    L[0] = L[1] = Z[0] = Z[1] = NULL;
    st = BCD_OK;
done:
    for (int k = 0; k < 2; k++) {
        bcd__plane_free(L[k]);
        bcd__plane_free(Ca[k]);
        bcd__plane_free(Cb[k]);
        bcd__plane_free(Z[k]);
    }
    return st;
}
