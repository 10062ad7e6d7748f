/*
 * Photometric matching of the warped previous photo to the current one.
 *
 * Per channel, on log values l = ln(v + 1):  l_cur ~ alpha l_prev + beta + gx X + gy Y,
 * X and Y the pixel position scaled to [-1, 1]. In log space an exposure or white
 * balance gain is an offset and a gamma is a slope, so the model is exact for the
 * usual re-exposure nuisances (up to clipping and the +1), and the ramp absorbs a
 * gentle lighting gradient across the frame. The fit is iteratively reweighted least
 * squares with Tukey's biweight (scale from the median absolute residual), on 2x2
 * averages, over pixels that are not clipped in either photo: a changed area of a few
 * percent of the frame gets weight ~0 and does not pull the fit.
 * Clipping: where a channel is clipped in either photo, the matched previous value of
 * that channel is set to the current one, so the channel shows no difference there. A
 * dark spot appearing on overexposed skin still darkens the channels that are not
 * clipped.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "detect_internal.h"

#define NPAR 4
#define IRLS_ITERS 6
/* values at or beyond these are (partly) clipped: at the reduced size a pixel that
 * averages clipped and unclipped ones sits a little under 255, and JPEG rounds
 * highlights */
#define CLIP_HI 240.0f
#define CLIP_LO 4.0f

/*
 * The weighted normal equations of the fit (Tukey's biweight at 4.685 scale; all weights 1
 * before the first scale is known): b and A's lower triangle for J = (xs, 1, xx, yy).
 * The weights of a block of pixels are computed first, without branches (a loop that
 * vectorizes: the same operations on each pixel, so the same values); a pixel outside
 * the biweight's support gets weight 0 and adds exact zeros to the finite sums, as if
 * it were skipped. The sums are kept in four vectors of four (b; A's first column; its
 * second; a22, a32, a33), each entry adding the same products in the same order as one
 * scalar sum per entry would.
 */
#define NE_BLOCK 256
BCD__WIDE_KERNEL static void normal_equations(double A[6][6], double b[NPAR], const double par[NPAR], double scale,
                                              const float *xs, const float *ys, const float *xx, const float *yy,
                                              size_t n)
{
    bcd__v4d vb = { 0, 0, 0, 0 }, c0 = vb, c1 = vb, c2 = vb;
    double wbuf[NE_BLOCK];
    const double p0 = par[0], p1 = par[1], p2 = par[2], p3 = par[3], k = 4.685 * scale;
    for (size_t base = 0; base < n; base += NE_BLOCK) {
        size_t m = n - base < NE_BLOCK ? n - base : NE_BLOCK;
        const float *X = xs + base, *Y = ys + base, *U = xx + base, *V = yy + base;
        if (scale > 0) {
            for (size_t i = 0; i < m; i++) {
                double r = (Y[i] - (p0 * X[i] + p1 + p2 * U[i] + p3 * V[i])) / k;
                double t = 1.0 - r * r;
                wbuf[i] = fabs(r) < 1.0 ? t * t : 0.0;
            }
        } else {
            for (size_t i = 0; i < m; i++)
                wbuf[i] = 1.0;
        }
        for (size_t i = 0; i < m; i++) {
            const double wgt = wbuf[i], x = X[i], y = Y[i], u = U[i], v = V[i];
            const double wu = wgt * u, wv = wgt * v;
            const bcd__v4d w = { wgt * x, wgt, wu, wv }; /* wgt * J; wgt * 1 is wgt */
            vb += w * y; /* b0..b3 */
            c0 += w * x; /* a00, a10, a20, a30 */
            c1 += w; /* (unused), a11, a21, a31 */
            c2 += (bcd__v4d){ wu, wv, wv, 0.0 } * (bcd__v4d){ u, u, v, 0.0 }; /* a22, a32, a33 */
        }
    }
    for (int i = 0; i < NPAR; i++) {
        b[i] = vb[i];
        A[i][0] = c0[i];
    }
    A[1][1] = c1[1];
    A[2][1] = c1[2];
    A[3][1] = c1[3];
    A[2][2] = c2[0];
    A[3][2] = c2[1];
    A[3][3] = c2[2];
}

/* Fit one channel; par = {alpha, beta, gx, gy}. */
static void fit_channel(double par[NPAR], const bcd__plane *c, const bcd__plane *p, const uint8_t *mask,
                        float *xs, float *ys, float *xx, float *yy, float *res)
{
    int w = c->w, h = c->h;
    size_t n = 0;
    bcd__logtab own; /* the 2x2 means of the current photo's quarters */
    const bcd__logtab *lt = bcd__logtab_shared(1.0f, 16, &own);
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * w + x;
            if (!mask[i])
                continue;
            float cv = c->px[i], pv = p->px[i];
            if (cv <= CLIP_LO + 2.0f || cv >= CLIP_HI - 2.0f || pv <= CLIP_LO + 2.0f || pv >= CLIP_HI - 2.0f)
                continue;
            xs[n] = bcd__logtab_get(lt, pv);
            ys[n] = bcd__logtab_get(lt, cv);
            xx[n] = (float)(2.0 * x / (w > 1 ? w - 1 : 1) - 1.0);
            yy[n] = (float)(2.0 * y / (h > 1 ? h - 1 : 1) - 1.0);
            n++;
        }
    }
    par[0] = 1.0;
    par[1] = par[2] = par[3] = 0.0;
    if (n < 64) {
        /* too little overlap for a model: match the means only */
        double sc = 0.0, sp = 0.0;
        size_t m = 0;
        for (size_t i = 0; i < (size_t)w * h; i++)
            if (mask[i]) {
                sc += logf(c->px[i] + 1.0f);
                sp += logf(p->px[i] + 1.0f);
                m++;
            }
        if (m > 0)
            par[1] = (sc - sp) / m;
        return;
    }
    double scale = -1.0;
    for (int it = 0; it < IRLS_ITERS; it++) {
        double A[6][6] = { { 0 } }, b[NPAR] = { 0 };
        normal_equations(A, b, par, scale, xs, ys, xx, yy, n);
        for (int a = 0; a < NPAR; a++)
            A[a][a] += 1e-9 + (a >= 2 ? 1e-6 * A[1][1] : 0.0);
        double sol[NPAR];
        if (!bcd__detect_solve(A, b, sol, NPAR))
            break;
        if (!(sol[0] > 0.3 && sol[0] < 3.0))
            break; /* implausible tone curve: keep the previous estimate */
        memcpy(par, sol, sizeof sol);
        for (size_t i = 0; i < n; i++)
            res[i] = fabsf(ys[i] - (float)(par[0] * xs[i] + par[1] + par[2] * xx[i] + par[3] * yy[i]));
        scale = 1.4826 * bcd__detect_median(res, n);
        if (scale < 0.004)
            scale = 0.004;
    }
}

bcd_status bcd__detect_photometric(bcd__plane *P[3], bcd__plane *const C[3], const uint8_t *mask)
{
    int w = C[0]->w, h = C[0]->h;
    /* the fit runs on 2x2 means (noise halved) where all four pixels are covered */
    int w2 = w / 2, h2 = h / 2;
    size_t cap = (size_t)w2 * h2;
    float *buf = malloc(5 * cap * sizeof(float));
    uint8_t *mask2 = malloc(cap);
    if (!buf || !mask2 || cap == 0) {
        free(buf);
        free(mask2);
        return cap == 0 ? BCD_OK : BCD_ENOMEM;
    }
    for (int y = 0; y < h2; y++)
        for (int x = 0; x < w2; x++) {
            const uint8_t *m = mask + (size_t)(2 * y) * w + 2 * x;
            mask2[(size_t)y * w2 + x] = m[0] && m[1] && m[w] && m[w + 1];
        }
    bcd_status st = BCD_OK;
    for (int ch = 0; ch < 3; ch++) {
        bcd__plane *cb = bcd__plane_half(C[ch]);
        bcd__plane *pb = cb ? bcd__plane_half(P[ch]) : NULL;
        if (!pb) {
            bcd__plane_free(cb);
            st = BCD_ENOMEM;
            break;
        }
        double par[NPAR];
        fit_channel(par, cb, pb, mask2, buf, buf + cap, buf + 2 * cap, buf + 3 * cap, buf + 4 * cap);
        bcd__plane_free(cb);
        bcd__plane_free(pb);
        float *px = P[ch]->px;
        for (int y = 0; y < h; y++) {
            double yn = 2.0 * y / (h > 1 ? h - 1 : 1) - 1.0;
            for (int x = 0; x < w; x++) {
                size_t i = (size_t)y * w + x;
                if (!mask[i])
                    continue;
                double xn = 2.0 * x / (w > 1 ? w - 1 : 1) - 1.0;
                float raw = px[i], cv = C[ch]->px[i];
                float l = (float)(par[0] * logf(raw + 1.0f) + par[1] + par[2] * xn + par[3] * yn);
                float v = expf(l) - 1.0f;
                v = v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v;
                /* a clipped value says little (and a channel clipped over most of the
                 * frame leaves its fit poorly constrained): the channel does not count
                 * where either photo is clipped */
                if (raw >= CLIP_HI || cv >= CLIP_HI || raw <= CLIP_LO || cv <= CLIP_LO)
                    v = cv;
                px[i] = v;
            }
        }
    }
    free(buf);
    free(mask2);
    return st;
}
