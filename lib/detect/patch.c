/* The colour change inside one lesion, pixel by pixel: the previous photo resampled onto
 * the current one around the lesion, aligned on its darkness pattern, its light matched on
 * the surrounding skin. A second colour that appears in part of a lesion of the same size
 * leaves its mean colour and its size nearly as they were; it shows here as a part of the
 * lesion whose colour changed much more than the rest. */
#include <math.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "lesion_internal.h"

/* Alignment search: +-SEARCH previous analysis pixels, in whole then half steps. */
#define SEARCH 2
#define MAX_RADIUS 48 /* analysis pixels; larger lesions are sampled at that radius */
#define MIN_PIXELS 12

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* The affine map from current analysis pixels around (cx, cy) to previous analysis pixels:
 * u = m[0] + m[1] i + m[2] j, v = m[3] + m[4] i + m[5] j for the offset (i, j). */
static void local_map(double m[6], const bcd__spotmap *P, const bcd__spotmap *C, const bcd__warp *bwd, double cx,
                      double cy, double h)
{
    /* photo pixels of the current photo */
    double X = (cx + 0.5) / C->fx - 0.5, Y = (cy + 0.5) / C->fy - 0.5;
    double x0, y0, xa, ya, xb, yb;
    bcd__warp_apply(bwd, X, Y, &x0, &y0);
    bcd__warp_apply(bwd, X + h, Y, &xa, &ya);
    bcd__warp_apply(bwd, X, Y + h, &xb, &yb);
    /* one current analysis pixel = 1 / C->fx photo pixels; previous photo -> analysis: P->fx */
    double sx = P->fx / (C->fx * h), sy = P->fy / (C->fy * h);
    m[0] = (x0 + 0.5) * P->fx - 0.5;
    m[3] = (y0 + 0.5) * P->fy - 0.5;
    m[1] = (xa - x0) * sx;
    m[2] = (xb - x0) * sx * (C->fx / C->fy);
    m[4] = (ya - y0) * sy * (C->fy / C->fx);
    m[5] = (yb - y0) * sy;
}

/* Normalized cross-correlation of the current window's darkness with the previous photo's
 * through map m shifted by (du, dv), over the window's pixels where use is set (NULL: all);
 * -2 when any sample falls outside. */
static double ncc(const bcd__spotmap *P, const float *cw, const uint8_t *use, int R, int step, const double m[6],
                  double du, double dv)
{
    double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
    int n = 0;
    for (int j = -R; j <= R; j += step)
        for (int i = -R; i <= R; i += step) {
            size_t at = (size_t)(j + R) * (2 * R + 1) + (i + R);
            if (use && !use[at])
                continue;
            double u = m[0] + m[1] * i + m[2] * j + du, v = m[3] + m[4] * i + m[5] * j + dv;
            if (u < 0 || v < 0 || u > P->w - 1 || v > P->h - 1)
                return -2;
            double a = cw[at], b = bcd__plane_at(P->con, (float)u, (float)v);
            sa += a;
            sb += b;
            saa += a * a;
            sbb += b * b;
            sab += a * b;
            n++;
        }
    if (n < 16)
        return -2;
    double va = saa - sa * sa / n, vb = sbb - sb * sb / n;
    if (va <= 1e-12 || vb <= 1e-12)
        return -2;
    return (sab - sa * sb / n) / sqrt(va * vb);
}

/* The best correlation over shifts of +-SEARCH whole pixels, then half pixels around the
 * best; the shift in *bu, *bv. */
static double best_shift(const bcd__spotmap *P, const float *cw, const uint8_t *use, int R, int step,
                         const double m[6], double *bu, double *bv)
{
    double best = -2;
    *bu = *bv = 0;
    for (int dv = -SEARCH; dv <= SEARCH; dv++)
        for (int du = -SEARCH; du <= SEARCH; du++) {
            double q = ncc(P, cw, use, R, step, m, du, dv);
            if (q > best) {
                best = q;
                *bu = du;
                *bv = dv;
            }
        }
    double u0 = *bu, v0 = *bv;
    for (int dv = -1; dv <= 1; dv++)
        for (int du = -1; du <= 1; du++) {
            if (!du && !dv)
                continue;
            double q = ncc(P, cw, use, R, step, m, u0 + 0.5 * du, v0 + 0.5 * dv);
            if (q > best) {
                best = q;
                *bu = u0 + 0.5 * du;
                *bv = v0 + 0.5 * dv;
            }
        }
    return best;
}

double bcd__patch_agreement(const bcd__spotmap *P, const bcd__spotmap *C, const bcd__warp *bwd, double x, double y,
                            double radius, double hole)
{
    double cx = (x + 0.5) * C->fx - 0.5, cy = (y + 0.5) * C->fy - 0.5;
    int R = (int)ceil(radius * C->fx), step = R > 40 ? (R + 39) / 40 : 1;
    int ix = (int)lround(cx), iy = (int)lround(cy);
    if (R < 4 || ix - R < 0 || iy - R < 0 || ix + R > C->w - 1 || iy + R > C->h - 1)
        return NAN;
    int side = 2 * R + 1;
    size_t area = (size_t)side * side;
    float *cw = malloc(area * sizeof *cw);
    uint8_t *use = malloc(area);
    if (!cw || !use) {
        free(cw);
        free(use);
        return NAN;
    }
    double h2 = hole * C->fx * hole * C->fx;
    size_t n = 0;
    for (int j = -R; j <= R; j++)
        for (int i = -R; i <= R; i++) {
            size_t ci = (size_t)(iy + j) * C->w + (ix + i), at = (size_t)(j + R) * side + (i + R);
            cw[at] = C->con->px[ci];
            use[at] = C->skin[ci] && !C->dark[ci] && (double)i * i + (double)j * j > h2;
            n += use[at];
        }
    double m[6], bu, bv, q = NAN;
    if (n >= area / 3) {
        local_map(m, P, C, bwd, ix, iy, fmax(4.0, 0.5 * radius));
        q = best_shift(P, cw, use, R, step, m, &bu, &bv);
        if (q < -1)
            q = NAN;
    }
    free(cw);
    free(use);
    return q;
}

bool bcd__lesion_patch(const bcd__spotmap *P, const bcd__spotmap *C, const bcd__spot *p, const bcd__spot *c,
                       const bcd__warp *bwd, double *med, double *patchy)
{
    *med = *patchy = NAN;
    double cx = (c->x + 0.5) * C->fx - 0.5, cy = (c->y + 0.5) * C->fy - 0.5;
    double s = sqrt(fmax(bcd__warp_area_scale(bwd, c->x, c->y), 1e-6)); /* current -> previous */
    double rad = 0.8 * fmax(c->diameter, p->diameter / s) * C->fx + 4.0;
    int step = rad > MAX_RADIUS ? (int)ceil(rad / MAX_RADIUS) : 1;
    int R = (int)ceil(rad);
    int ix = (int)lround(cx), iy = (int)lround(cy);
    if (ix - R < 0 || iy - R < 0 || ix + R > C->w - 1 || iy + R > C->h - 1)
        return false;
    int side = 2 * R + 1;
    size_t area = (size_t)side * side;
    /* the current window's darkness, both windows in CIELAB (3 planes each), a mask and
     * scratch: 9 floats per window pixel */
    float *buf = malloc(area * 9 * sizeof *buf);
    if (!buf)
        return false;
    float *cw = buf, *de = buf + 8 * area;
    for (int j = -R; j <= R; j++)
        for (int i = -R; i <= R; i++)
            cw[(j + R) * side + (i + R)] = C->con->px[(size_t)(iy + j) * C->w + (ix + i)];
    double m[6];
    local_map(m, P, C, bwd, ix, iy, fmax(2.0, 0.5 * c->diameter));
    /* align: whole pixels, then half pixels around the best */
    double bu, bv, best = best_shift(P, cw, NULL, R, step, m, &bu, &bv);
    if (best < 0.3) {
        free(buf);
        return false;
    }
    double tc = fmax(C->t_grow, 0.35 * c->contrast), tp = fmax(P->t_grow, 0.35 * p->contrast);
    /* both photos on the window's grid, linear RGB first; in: 1 where both show the
     * lesion, 2 where both show plain skin */
    int G = 2 * R / step + 1;
    size_t g2 = (size_t)G * G;
    float *lc = buf + area, *lp = lc + 3 * g2; /* 3 planes each, within buf's 8 * area */
    uint8_t *in = (uint8_t *)(lp + 3 * g2);
    size_t n = 0;
    for (int gj = 0; gj < G; gj++)
        for (int gi = 0; gi < G; gi++) {
            int i = -R + gi * step, j = -R + gj * step;
            size_t ci = (size_t)(iy + j) * C->w + (ix + i), g = (size_t)gj * G + gi;
            float u = (float)(m[0] + m[1] * i + m[2] * j + bu), v = (float)(m[3] + m[4] * i + m[5] * j + bv);
            in[g] = 0;
            if (u < 0 || v < 0 || u > P->w - 1 || v > P->h - 1) {
                for (int k = 0; k < 3; k++)
                    lc[k * g2 + g] = lp[k * g2 + g] = NAN;
                continue;
            }
            bcd__bilinear b = bcd__bilinear_at(P->w, P->h, u, v);
            for (int k = 0; k < 3; k++) {
                lc[k * g2 + g] = (float)bcd__srgb_to_linear(C->c[k]->px[ci]);
                lp[k * g2 + g] = (float)bcd__srgb_to_linear(bcd__bilinear_sample(P->c[k]->px, &b));
            }
            if (!C->skin[ci] || C->dark[ci])
                continue;
            float kc = C->con->px[ci], kp = bcd__bilinear_sample(P->con->px, &b);
            if (kc >= tc && kp >= tp) {
                in[g] = 1;
                n++;
            } else if (kc < C->t_grow && kp < P->t_grow) {
                in[g] = 2;
            }
        }
    /* the previous photo's light brought to the current one's, channel by channel: a plane
     * fitted to the log ratio over the plain skin of the window follows a shadow's edge or
     * the shading across the lesion; the ratio of the skin around the spots where the
     * window has too little skin */
    for (int k = 0; k < 3; k++) {
        double A[3][3] = { { 0 } }, y[3] = { 0 };
        size_t ns = 0;
        for (int gj = 0; gj < G; gj++)
            for (int gi = 0; gi < G; gi++) {
                size_t g = (size_t)gj * G + gi;
                if (in[g] != 2 || lc[k * g2 + g] <= 1e-4f || lp[k * g2 + g] <= 1e-4f)
                    continue;
                double r = log(lc[k * g2 + g] / lp[k * g2 + g]), x[3] = { 1.0, (double)gi / G - 0.5, (double)gj / G - 0.5 };
                for (int e = 0; e < 3; e++) {
                    y[e] += x[e] * r;
                    for (int f = 0; f < 3; f++)
                        A[e][f] += x[e] * x[f];
                }
                ns++;
            }
        double co[3] = { log(p->skin_rgb[k] > 1e-6 && c->skin_rgb[k] > 1e-6 ? c->skin_rgb[k] / p->skin_rgb[k] : 1.0), 0, 0 };
        if (ns >= 24) {
            /* solve A co = y (Cramer's rule; a well spread ring is never singular) */
            double det = A[0][0] * (A[1][1] * A[2][2] - A[1][2] * A[2][1]) - A[0][1] * (A[1][0] * A[2][2] - A[1][2] * A[2][0]) +
                         A[0][2] * (A[1][0] * A[2][1] - A[1][1] * A[2][0]);
            if (fabs(det) > 1e-9 * (A[0][0] * A[1][1] * A[2][2] + 1e-30)) {
                for (int e = 0; e < 3; e++) {
                    double M[3][3];
                    memcpy(M, A, sizeof M);
                    for (int f = 0; f < 3; f++)
                        M[f][e] = y[f];
                    co[e] = (M[0][0] * (M[1][1] * M[2][2] - M[1][2] * M[2][1]) - M[0][1] * (M[1][0] * M[2][2] - M[1][2] * M[2][0]) +
                             M[0][2] * (M[1][0] * M[2][1] - M[1][1] * M[2][0])) / det;
                }
            }
        }
        for (int gj = 0; gj < G; gj++)
            for (int gi = 0; gi < G; gi++) {
                size_t g = (size_t)gj * G + gi;
                lp[k * g2 + g] *= (float)exp(co[0] + co[1] * ((double)gi / G - 0.5) + co[2] * ((double)gj / G - 0.5));
            }
    }
    /* to CIELAB */
    for (size_t g = 0; g < g2; g++) {
        if (isnan(lc[g]))
            continue;
        double a[3] = { lc[g], lc[g2 + g], lc[2 * g2 + g] }, q[3] = { lp[g], lp[g2 + g], lp[2 * g2 + g] }, la[3], lq[3];
        bcd__linear_to_lab(a, la);
        bcd__linear_to_lab(q, lq);
        for (int k = 0; k < 3; k++) {
            lc[k * g2 + g] = (float)la[k];
            lp[k * g2 + g] = (float)lq[k];
        }
    }
    /* camera noise and the finest texture, which blur takes from one photo and not the
     * other, are not colours: both smoothed over a box of about a twelfth of the lesion
     * (at least 3 x 3), which keeps a colour over a fifth of it */
    int rs = (int)fmax(1.0, lround(0.08 * c->diameter * C->fx / step));
    for (int pl = 0; pl < 6; pl++) {
        float *a = (pl < 3 ? lc : lp) + (size_t)(pl % 3) * g2;
        for (int gj = 0; gj < G; gj++)
            for (int gi = 0; gi < G; gi++) {
                double sum = 0;
                int cnt = 0;
                for (int dj = -rs; dj <= rs; dj++)
                    for (int di = -rs; di <= rs; di++) {
                        int qi = gi + di, qj = gj + dj;
                        if (qi < 0 || qj < 0 || qi >= G || qj >= G || isnan(a[(size_t)qj * G + qi]))
                            continue;
                        sum += a[(size_t)qj * G + qi];
                        cnt++;
                    }
                de[(size_t)gj * G + gi] = cnt ? (float)(sum / cnt) : NAN;
            }
        memcpy(a, de, g2 * sizeof *a);
    }
    if (n >= MIN_PIXELS) {
        /* the change common to the whole lesion (its median, channel by channel) */
        float mdn[3];
        for (int k = 0; k < 3; k++) {
            size_t t = 0;
            for (size_t g = 0; g < g2; g++)
                if (in[g] == 1)
                    de[t++] = lc[k * g2 + g] - lp[k * g2 + g];
            qsort(de, t, sizeof *de, cmp_float);
            mdn[k] = de[t / 2];
        }
        *med = sqrt((double)mdn[0] * mdn[0] + (double)mdn[1] * mdn[1] + (double)mdn[2] * mdn[2]);
        /* what is left of each pixel's change once that is taken away, against the closest
         * previous pixel within one step (a half-pixel misalignment or a sharper photo
         * moves texture and edges, not colours) */
        size_t t = 0;
        for (int gj = 0; gj < G; gj++)
            for (int gi = 0; gi < G; gi++) {
                size_t g = (size_t)gj * G + gi;
                if (in[g] != 1)
                    continue;
                double bestd = INFINITY;
                for (int dj = -1; dj <= 1; dj++)
                    for (int di = -1; di <= 1; di++) {
                        int qi = gi + di, qj = gj + dj;
                        if (qi < 0 || qj < 0 || qi >= G || qj >= G)
                            continue;
                        size_t h = (size_t)qj * G + qi;
                        double e = 0;
                        for (int k = 0; k < 3; k++) {
                            double x = lc[k * g2 + g] - lp[k * g2 + h] - mdn[k];
                            e += x * x;
                        }
                        if (e < bestd)
                            bestd = e;
                    }
                de[t++] = (float)sqrt(bestd);
            }
        qsort(de, t, sizeof *de, cmp_float);
        *patchy = de[(size_t)(0.8 * (t - 1))];
    }
    free(buf);
    return n >= MIN_PIXELS;
}
