/*
 * The "builtin" embedder, model name "builtin-v1": a deterministic pure-C descriptor of
 * local colour and texture that needs no model file. Dimension: 516 floats, unit L2 norm.
 *
 * It is made for one job: the cosine distance between the descriptors of two photos of
 * the same skin area should move when the skin changes locally (a new or enlarged dark
 * or red spot covering ~0.5-5 % of the picture, a local colour change) and stay small
 * under the nuisances of re-taking a photo (a shift of a few pixels, global exposure,
 * white balance, a new draw of sensor noise). It is not a general image embedding:
 * two unrelated pictures can be close if neither has spots.
 *
 * From one preprocessed tensor (3x224x224 CHW, ImageNet-normalized):
 *
 *  1. Undo the normalization (x * std + mean), clamp to [0,1], average 2x2 blocks into
 *     a 112x112 RGB image, take logs: l_c = ln(c + 1/64).
 *  2. White balance and exposure are per-channel gains, i.e. offsets of l_c: subtract
 *     each channel's median over the image. Opponent channels:
 *       L = (r + g + b) / 3            log luminance
 *       A = (r - g) / sqrt 2           red-green
 *       B = (r + g - 2 b) / sqrt 6     yellow-blue
 *     with robust scales sL = max(1.4826 MAD(L), 0.05) and
 *     sC = max(1.4826 (MAD(A) + MAD(B)) / 2, 0.02).
 *  3. Scales of local variation: residuals of L, A, B from their blur by three box
 *     filters of radius 12 px (~ Gaussian sigma 12.5 px); sR = max(1.4826 median|RL|,
 *     0.015), sRC = max(1.4826 (median|RA| + median|RB|) / 2, 0.01).
 *     Fine residual RF = L - Ls with Ls = L blurred by boxes of radius 4 (sigma ~4.5),
 *     sF = max(1.4826 median|RF|, 0.01). Gradient magnitude G of L (central
 *     differences), sG = max(median G, 0.01).
 *  4. Surround: the smoothed channels Ls and As are sampled at 8 points 20 px away
 *     (N, S, E, W and diagonals at (+-14, +-14)); lo2(L) / hi2(L) is the second lowest /
 *     second highest of the 8 samples of Ls, hi2(A) the second highest of As. A pixel
 *     below lo2 is darker than its surroundings on at least 7 sides: a spot, not the
 *     dark side of an edge or a line (several samples fall on the dark side there),
 *     and still a spot when one side meets something darker.
 *  5. Eight per-pixel feature maps, with ramp(t) = clamp((t - 2.5) / 2.5, 0, 1):
 *       f0  clamp((L - median L) / sL, -4, 4)      shading / layout
 *       f1  clamp((A - median A) / sC, -4, 4)      red-green tint
 *       f2  clamp((B - median B) / sC, -4, 4)      yellow-blue tint
 *       f3  min((RF / sF)^2, 9)                   fine local contrast energy
 *       f4  ramp((lo2(L) - L) / sR)                dark-spot membership
 *       f5  ramp((L - hi2(L)) / sR)                light-spot membership
 *       f6  ramp((A - hi2(A)) / sRC)               red-spot membership
 *       f7  min(G / sG, 6)                        edge energy
 *  6. Each map is pooled on an 8x8 grid of Gaussian-weighted cells (centres 14 px
 *     apart, sigma 8.4 px, cut at 3 sigma, weights renormalized at the borders), so a
 *     shift of a few pixels moves each cell's value a little instead of moving pixels
 *     across hard cell borders. f3 is pooled as sqrt(weighted mean), a local RMS.
 *  7. The vector, feature-major: element k * 64 + (cy * 8 + cx) holds feature k of the
 *     cell in row cy, column cx, times a group weight (f0-f2: 0.25, f3: 0.7,
 *     f4-f6: 9, f7: 0.35); then 4 global elements: a constant 2 (an anchor, so that
 *     images with little content do not turn noise into large angles, and no vector
 *     is ever zero) and 6 x the image-wide means of f4, f5, f6. Finally scaled to
 *     unit length.
 *
 * The spot memberships are zero on ordinary skin, on edges and on lines, saturate
 * inside a spot whose contrast is a few times the local texture, and weigh heavily: a
 * spot changes several cells' worth of them (and the contrast of the same cells), which
 * is what moves the cosine distance. Layout and tint weigh little, so that a scene
 * with strong structure (body outline, background) does not drown local changes and
 * clipping under an exposure change moves little. Exposure and white balance cancel in
 * step 2 up to clipping and the 1/64 offset; shifts are absorbed by the soft cells.
 * Measured on synthetic skin (tests/unit/test_builtin.c): a 2 % dark spot moves the
 * distance by ~0.15-0.3, a 0.5 % one by ~0.02-0.06, while exposure x1.2 with a white
 * balance change, a 3 px shift or new sensor noise stay below ~0.0015.
 * Embedding each tensor is independent of the others in the batch. Cost: about 2-3 ms
 * per tensor on one core; ~0.7 MB of scratch buffers live in the embedder.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bcd/image.h"
#include "embed.h"

#define SIDE 112 /* working side: the 224 tensor averaged over 2x2 blocks */
#define NPIX (SIDE * SIDE)
#define GRID 8
#define NCELL (GRID * GRID)
#define NFEAT 8
#define NGLOBAL 4
#define BUILTIN_DIM (NFEAT * NCELL + NGLOBAL) /* 516 */

#define LOG_EPS (1.0f / 64.0f)
#define MAD_K 1.4826f
#define SL_FLOOR 0.05f
#define SC_FLOOR 0.02f
#define SR_FLOOR 0.015f
#define SRC_FLOOR 0.01f
#define SG_FLOOR 0.01f
#define SF_FLOOR 0.01f
#define CONTRAST_CLIP 9.0f
#define BOX_R 12
#define SURROUND_R 4
#define SURROUND_D 20
#define SURROUND_DD 14
#define CELL_SIGMA (0.6 * SIDE / GRID)
#define RAMP_T0 2.5f
#define RAMP_T1 5.0f
#define ANCHOR 2.0f

static const float group_weight[NFEAT] = { 0.25f, 0.25f, 0.25f, 0.7f, 9.0f, 9.0f, 9.0f, 0.35f };
#define GLOBAL_WEIGHT 6.0f

struct builtin {
    float cw[SIDE][GRID]; /* 1-D cell weights; each column sums to 1 */
    float L[NPIX], A[NPIX], B[NPIX];    /* log channels, then opponent channels */
    float RL[NPIX], RA[NPIX], RB[NPIX]; /* blurred channels, then residuals */
    float G[NPIX];
    float map[NPIX];
    float tmp[NPIX];
    uint32_t keys[NPIX];
    float rowp[SIDE * GRID];
    float acc[SIDE];
    float SL[NPIX], SA[NPIX]; /* smoothed L and A, then lo2(L) and hi2(A) */
    float SLhi[NPIX];         /* hi2(L) */
    float RF[NPIX];           /* fine residual L - smoothed L */
    float line[SIDE + 2 * BOX_R + 1];
};

/* Order-preserving map of a float onto an unsigned key. */
static uint32_t float_key(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return (u & 0x80000000u) ? ~u : u | 0x80000000u;
}

static float key_float(uint32_t u)
{
    u = (u & 0x80000000u) ? u & 0x7fffffffu : ~u;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Exact k-th smallest of v[0..n) by radix selection on the float bits: counting passes
 * over 11, 11 and 10 bits, keeping only the keys in the chosen bin after each pass.
 * Linear time, no data-dependent worst case; keys is scratch for n values. */
static float kth_smallest(uint32_t *keys, const float *v, int n, int k)
{
    static const int shift[3] = { 21, 10, 0 };
    static const uint32_t width[3] = { 0x7ffu, 0x7ffu, 0x3ffu };
    unsigned count[2048];
    uint32_t prefix = 0;
    for (int i = 0; i < n; i++)
        keys[i] = float_key(v[i]);
    for (int pass = 0; pass < 3; pass++) {
        const int sh = shift[pass];
        const uint32_t wm = width[pass];
        memset(count, 0, (wm + 1) * sizeof count[0]);
        for (int i = 0; i < n; i++)
            count[(keys[i] >> sh) & wm]++;
        uint32_t bin = 0;
        while ((int)count[bin] <= k)
            k -= (int)count[bin++];
        prefix |= bin << sh;
        if (pass < 2) {
            int m = 0;
            for (int i = 0; i < n; i++)
                if (((keys[i] >> sh) & wm) == bin)
                    keys[m++] = keys[i];
            n = m;
        }
    }
    return key_float(prefix);
}

static float median_of(struct builtin *b, const float *v)
{
    return kth_smallest(b->keys, v, NPIX, NPIX / 2);
}

/* median |v - c| */
static float mad_of(struct builtin *b, const float *v, float c)
{
    for (int i = 0; i < NPIX; i++)
        b->tmp[i] = fabsf(v[i] - c);
    return median_of(b, b->tmp);
}

/* One box filter of radius r along a line of n samples (stride apart), borders
 * replicated; in place. */
static void box_line(float *data, int n, int stride, int r, float *buf)
{
    const int w = 2 * r + 1;
    for (int i = -r; i < n + r; i++) {
        int k = i < 0 ? 0 : i >= n ? n - 1 : i;
        buf[i + r] = data[k * stride];
    }
    double s = 0.0;
    for (int i = 0; i < w; i++)
        s += buf[i];
    data[0] = (float)(s / w);
    for (int x = 1; x < n; x++) {
        s += (double)buf[x + 2 * r] - (double)buf[x - 1];
        data[x * stride] = (float)(s / w);
    }
}

/* One box filter of radius r down every column at once, borders replicated; in
 * place (src is scratch). */
static void box_columns(float *img, int r, float *src, float *acc)
{
    const float inv = 1.0f / (2 * r + 1);
    memcpy(src, img, NPIX * sizeof *img);
    for (int x = 0; x < SIDE; x++)
        acc[x] = 0.0f;
    for (int i = -r; i <= r; i++) {
        const float *row = src + (i < 0 ? 0 : i > SIDE - 1 ? SIDE - 1 : i) * SIDE;
        for (int x = 0; x < SIDE; x++)
            acc[x] += row[x];
    }
    for (int y = 0; y < SIDE; y++) {
        for (int x = 0; x < SIDE; x++)
            img[y * SIDE + x] = acc[x] * inv;
        int add = y + 1 + r, sub = y - r;
        const float *ra = src + (add > SIDE - 1 ? SIDE - 1 : add) * SIDE;
        const float *rs = src + (sub < 0 ? 0 : sub) * SIDE;
        for (int x = 0; x < SIDE; x++)
            acc[x] += ra[x] - rs[x];
    }
}

/* Three box passes of radius r per axis: close to a Gaussian of sigma ~ r + 0.5. */
static void blur(struct builtin *b, float *img, int r)
{
    for (int pass = 0; pass < 3; pass++) {
        for (int y = 0; y < SIDE; y++)
            box_line(img + y * SIDE, SIDE, 1, r, b->line);
        box_columns(img, r, b->tmp, b->acc);
    }
}

/* Second lowest and second highest of the 8 samples of the smoothed image s at
 * SURROUND_D pixels from each pixel (borders replicated): what surrounds the pixel on
 * (nearly) every side. A pixel darker than its second-lowest surround is darker than
 * its surroundings in at least 7 directions: a spot, not the dark side of an edge or a
 * line (where several samples fall on the dark side), and still a spot when one
 * direction meets something darker. */
static void surround(const float *s, float *lo, float *hi)
{
    static const int dx[8] = { SURROUND_D, -SURROUND_D, 0, 0, SURROUND_DD, SURROUND_DD, -SURROUND_DD, -SURROUND_DD };
    static const int dy[8] = { 0, 0, SURROUND_D, -SURROUND_D, SURROUND_DD, -SURROUND_DD, SURROUND_DD, -SURROUND_DD };
    for (int y = 0; y < SIDE; y++)
        for (int x = 0; x < SIDE; x++) {
            float mn1 = INFINITY, mn2 = INFINITY, mx1 = -INFINITY, mx2 = -INFINITY;
            for (int d = 0; d < 8; d++) {
                int xx = x + dx[d], yy = y + dy[d];
                xx = xx < 0 ? 0 : xx > SIDE - 1 ? SIDE - 1 : xx;
                yy = yy < 0 ? 0 : yy > SIDE - 1 ? SIDE - 1 : yy;
                float v = s[yy * SIDE + xx];
                if (v < mn1) {
                    mn2 = mn1;
                    mn1 = v;
                } else if (v < mn2) {
                    mn2 = v;
                }
                if (v > mx1) {
                    mx2 = mx1;
                    mx1 = v;
                } else if (v > mx2) {
                    mx2 = v;
                }
            }
            if (lo)
                lo[y * SIDE + x] = mn2;
            hi[y * SIDE + x] = mx2;
        }
}

/* Gaussian-weighted cell means of map into cells[NCELL] (separable; the weights are
 * zero outside each cell's support, so the loops need no bounds and vectorize). */
static void pool(struct builtin *b, const float *map, float *cells)
{
    for (int y = 0; y < SIDE; y++) {
        const float *row = map + y * SIDE;
        float acc[GRID] = { 0 };
        for (int x = 0; x < SIDE; x++) {
            const float v = row[x], *w = b->cw[x];
            for (int c = 0; c < GRID; c++)
                acc[c] += v * w[c];
        }
        memcpy(b->rowp + y * GRID, acc, sizeof acc);
    }
    float acc[NCELL] = { 0 };
    for (int y = 0; y < SIDE; y++) {
        const float *rp = b->rowp + y * GRID, *w = b->cw[y];
        for (int cy = 0; cy < GRID; cy++)
            for (int cx = 0; cx < GRID; cx++)
                acc[cy * GRID + cx] += w[cy] * rp[cx];
    }
    memcpy(cells, acc, sizeof acc);
}

static float clampf(float v, float lo, float hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

static float ramp(float t)
{
    return clampf((t - RAMP_T0) / (RAMP_T1 - RAMP_T0), 0.0f, 1.0f);
}

static void embed_one(struct builtin *b, float *out, const float *t)
{
    static const float mean[3] = { 0.485f, 0.456f, 0.406f };
    static const float stdv[3] = { 0.229f, 0.224f, 0.225f };
    float *chan[3] = { b->L, b->A, b->B };
    const int in = BCD_INPUT_SIZE;

    /* 1. RGB in [0,1], 2x2 means, logs. */
    for (int c = 0; c < 3; c++) {
        const float *p = t + (size_t)c * in * in;
        float *dst = chan[c];
        for (int y = 0; y < SIDE; y++)
            for (int x = 0; x < SIDE; x++) {
                const float *q = p + (2 * y) * in + 2 * x;
                float s = clampf(q[0] * stdv[c] + mean[c], 0.0f, 1.0f) +
                          clampf(q[1] * stdv[c] + mean[c], 0.0f, 1.0f) +
                          clampf(q[in] * stdv[c] + mean[c], 0.0f, 1.0f) +
                          clampf(q[in + 1] * stdv[c] + mean[c], 0.0f, 1.0f);
                dst[y * SIDE + x] = logf(0.25f * s + LOG_EPS);
            }
    }

    /* 2. Cancel per-channel gains, opponent channels, robust scales. */
    float med[3];
    for (int c = 0; c < 3; c++)
        med[c] = median_of(b, chan[c]);
    const float r2 = 1.0f / sqrtf(2.0f), r6 = 1.0f / sqrtf(6.0f);
    for (int i = 0; i < NPIX; i++) {
        float r = b->L[i] - med[0], g = b->A[i] - med[1], bl = b->B[i] - med[2];
        b->L[i] = (r + g + bl) / 3.0f;
        b->A[i] = (r - g) * r2;
        b->B[i] = (r + g - 2.0f * bl) * r6;
    }
    float mL = median_of(b, b->L);
    float mA = median_of(b, b->A);
    float mB = median_of(b, b->B);
    float sL = fmaxf(MAD_K * mad_of(b, b->L, mL), SL_FLOOR);
    float sC = fmaxf(MAD_K * 0.5f * (mad_of(b, b->A, mA) + mad_of(b, b->B, mB)), SC_FLOOR);

    /* 3. Residuals and their scales, gradient magnitude. */
    memcpy(b->RL, b->L, sizeof b->RL);
    memcpy(b->RA, b->A, sizeof b->RA);
    memcpy(b->RB, b->B, sizeof b->RB);
    blur(b, b->RL, BOX_R);
    blur(b, b->RA, BOX_R);
    blur(b, b->RB, BOX_R);
    for (int i = 0; i < NPIX; i++) {
        b->RL[i] = b->L[i] - b->RL[i];
        b->RA[i] = b->A[i] - b->RA[i];
        b->RB[i] = b->B[i] - b->RB[i];
    }
    float sR = fmaxf(MAD_K * mad_of(b, b->RL, 0.0f), SR_FLOOR);
    float sRC = fmaxf(MAD_K * 0.5f * (mad_of(b, b->RA, 0.0f) + mad_of(b, b->RB, 0.0f)),
                      SRC_FLOOR);
    for (int y = 0; y < SIDE; y++)
        for (int x = 0; x < SIDE; x++) {
            int xm = x > 0 ? x - 1 : x, xp = x < SIDE - 1 ? x + 1 : x;
            int ym = y > 0 ? y - 1 : y, yp = y < SIDE - 1 ? y + 1 : y;
            float gx = (b->L[y * SIDE + xp] - b->L[y * SIDE + xm]) / (float)(xp - xm);
            float gy = (b->L[yp * SIDE + x] - b->L[ym * SIDE + x]) / (float)(yp - ym);
            b->G[y * SIDE + x] = sqrtf(gx * gx + gy * gy);
        }
    /* 4. Surround. */
    memcpy(b->SL, b->L, sizeof b->SL);
    memcpy(b->SA, b->A, sizeof b->SA);
    blur(b, b->SL, SURROUND_R);
    blur(b, b->SA, SURROUND_R);
    for (int i = 0; i < NPIX; i++)
        b->RF[i] = b->L[i] - b->SL[i];
    float sF = fmaxf(MAD_K * mad_of(b, b->RF, 0.0f), SF_FLOOR);
    surround(b->SL, b->tmp, b->SLhi);
    memcpy(b->SL, b->tmp, sizeof b->SL);
    surround(b->SA, NULL, b->tmp);
    memcpy(b->SA, b->tmp, sizeof b->SA);
    float sG = fmaxf(median_of(b, b->G), SG_FLOOR);

    /* 5-7. Feature maps, pooled into cells. */
    float *m = b->map;
    double global[3] = { 0.0, 0.0, 0.0 };
    const float iR = 1.0f / sR, iF = 1.0f / sF, iRC = 1.0f / sRC, iG = 1.0f / sG, iL = 1.0f / sL, iC = 1.0f / sC;
    for (int k = 0; k < NFEAT; k++) {
        switch (k) {
        case 0:
            for (int i = 0; i < NPIX; i++)
                m[i] = clampf((b->L[i] - mL) * iL, -4.0f, 4.0f);
            break;
        case 1:
            for (int i = 0; i < NPIX; i++)
                m[i] = clampf((b->A[i] - mA) * iC, -4.0f, 4.0f);
            break;
        case 2:
            for (int i = 0; i < NPIX; i++)
                m[i] = clampf((b->B[i] - mB) * iC, -4.0f, 4.0f);
            break;
        case 3:
            for (int i = 0; i < NPIX; i++) {
                float z = b->RF[i] * iF;
                m[i] = fminf(z * z, CONTRAST_CLIP);
            }
            break;
        case 4:
            for (int i = 0; i < NPIX; i++)
                m[i] = ramp((b->SL[i] - b->L[i]) * iR);
            break;
        case 5:
            for (int i = 0; i < NPIX; i++)
                m[i] = ramp((b->L[i] - b->SLhi[i]) * iR);
            break;
        case 6:
            for (int i = 0; i < NPIX; i++)
                m[i] = ramp((b->A[i] - b->SA[i]) * iRC);
            break;
        default:
            for (int i = 0; i < NPIX; i++)
                m[i] = fminf(b->G[i] * iG, 6.0f);
            break;
        }
        if (k >= 4 && k <= 6) {
            double s = 0.0;
            for (int i = 0; i < NPIX; i++)
                s += m[i];
            global[k - 4] = s;
        }
        float *cells = out + k * NCELL;
        pool(b, m, cells);
        for (int c = 0; c < NCELL; c++) {
            float v = k == 3 ? sqrtf(fmaxf(cells[c], 0.0f)) : cells[c];
            cells[c] = v * group_weight[k];
        }
    }
    float *g = out + NFEAT * NCELL;
    g[0] = ANCHOR;
    for (int k = 0; k < 3; k++)
        g[1 + k] = (float)(GLOBAL_WEIGHT * global[k] / NPIX);

    double n2 = 0.0;
    for (int i = 0; i < BUILTIN_DIM; i++)
        n2 += (double)out[i] * out[i];
    float inv = (float)(1.0 / sqrt(n2)); /* n2 >= ANCHOR^2 */
    for (int i = 0; i < BUILTIN_DIM; i++)
        out[i] *= inv;
}

static bcd_status builtin_embed(void *impl, bcd_ctx *ctx, float *out, const float *tensors, size_t n)
{
    struct builtin *b = impl;
    for (size_t i = 0; i < n * BCD_TENSOR_LEN; i++)
        if (!isfinite(tensors[i]))
            return bcd__ctx_fail(ctx, BCD_EINVAL, "not_finite", "tensor %zu holds a NaN or an infinity",
                                 i / BCD_TENSOR_LEN);
    for (size_t i = 0; i < n; i++)
        embed_one(b, out + i * BUILTIN_DIM, tensors + i * BCD_TENSOR_LEN);
    return BCD_OK;
}

static void builtin_free(void *impl)
{
    free(impl);
}

static const struct bcd__embed_ops builtin_ops = { builtin_embed, builtin_free };

bcd_status bcd__builtin_open(bcd_embedder *e, bcd_ctx *ctx)
{
    struct builtin *b = calloc(1, sizeof *b);
    if (!b)
        return bcd__ctx_fail(ctx, BCD_ENOMEM, NULL, NULL);
    const double spacing = (double)SIDE / GRID;
    for (int c = 0; c < GRID; c++) {
        double centre = (c + 0.5) * spacing - 0.5, sum = 0.0;
        for (int x = 0; x < SIDE; x++) {
            double d = (x - centre) / CELL_SIGMA;
            sum += fabs(d) <= 3.0 ? exp(-0.5 * d * d) : 0.0;
        }
        for (int x = 0; x < SIDE; x++) {
            double d = (x - centre) / CELL_SIGMA;
            b->cw[x][c] = fabs(d) <= 3.0 ? (float)(exp(-0.5 * d * d) / sum) : 0.0f;
        }
    }
    e->ops = &builtin_ops;
    e->impl = b;
    e->dim = BUILTIN_DIM;
    strcpy(e->name, "builtin-v1");
    return BCD_OK;
}
