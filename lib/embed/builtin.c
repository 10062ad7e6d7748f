/*
 * The "builtin" embedder, model name "builtin-v2": a deterministic pure-C descriptor of
 * local colour, texture and above all spots, that needs no model file. Dimension: 516
 * floats (8 feature maps x 64 cells + 4 globals), unit L2 norm.
 *
 * It is made for one job: the cosine distance between the descriptors of two photos of
 * the same skin area should move when the skin changes locally (a new or enlarged dark
 * or red spot covering ~0.5-5 % of the picture, a local colour change) and stay small
 * under the nuisances of re-taking a photo (a shift of a few pixels, global exposure,
 * white balance, a new draw of sensor noise, JPEG). It is not a general image
 * embedding: two unrelated pictures can be close if neither has spots.
 *
 * Why v2. The preprocessing equalizes the luminance histogram: the narrow range of skin
 * tones is stretched into strong mottling, and a smooth dark background into bands.
 * builtin-v1 (logs with an offset of 1/64, one 20 px ring, image-wide residual scales)
 * hardly saw spots on such photos: the log amplified the dark background, so the scale
 * that sets the spot threshold was ~3x the contrast noise of the skin and real moles
 * (~2x that scale) never reached the threshold, while background bands did; its ring,
 * 40 px of the 224 input, reached across mottle patches, so dark patches passed for
 * spots and small spots were compared with unrelated skin; and the fine-contrast, edge,
 * shading and tint maps held ~85 % of the vector, so what the spot maps did change
 * moved the cosine little. v2 compresses dark values, looks for spots with three ring
 * sizes each against texture measured at its own scale, and gives the spot maps most
 * of the weight.
 *
 * From one preprocessed tensor (3x224x224 CHW, ImageNet-normalized):
 *
 *  1. Undo the normalization (x * std + mean), clamp to [0,1] and average 2x2 blocks
 *     into a 112x112 RGB image x_c. With q_c = max(90th percentile of x_c, 1/16):
 *     l_c = ln(x_c / q_c + 0.5). A per-channel gain (exposure, white balance) scales
 *     x_c and q_c alike and cancels exactly, up to clipping and 8-bit rounding; the
 *     +0.5 bounds the gain of the log on dark values (a slope of 2 at black, against
 *     64 with v1's offset), so a dark background and shadows carry little contrast.
 *  2. Opponent channels
 *       L = (l_r + l_g + l_b) / 3          log luminance
 *       A = (l_r - l_g) / sqrt 2           red-green
 *       B = (l_r + l_g - 2 l_b) / sqrt 6   yellow-blue
 *     with medians mL, mA, mB and robust scales sL = max(1.4826 MAD(L), 0.05) and
 *     sC = max(1.4826 (MAD(A) + MAD(B)) / 2, 0.02).
 *  3. Sr(X) denotes X blurred by three box filters of radius r per axis, borders
 *     replicated (close to a Gaussian of sigma 1.4, 2.4, 3.5, 4.5, 6.5, 10.5 px for
 *     r = 1, 2, 3, 4, 6, 10). Fine residual RF = L - S2(L), sF = max(1.4826 median|RF|,
 *     0.01). Gradient magnitude G of L (central differences), sG = max(median G, 0.01).
 *  4. Spots, at three scales (centre Sc, surround Ss, ring distance D, diagonal offset
 *     DD, texture radius h, scale floors for L and A):
 *       (S1, S1,  7,  5,  3, 0.02, 0.012)   spots up to a radius of ~5 px
 *       (S1, S2, 12,  8,  6, 0.03, 0.018)   ~9 px
 *       (S2, S4, 20, 14, 10, 0.04, 0.024)   ~14 px (twice that in the 224 input)
 *     For X = L and X = A: lo2(X) / hi2(X) is the second lowest / second highest of
 *     Ss(X) sampled at the 8 points (+-D, 0), (0, +-D), (+-DD, +-DD) around the pixel;
 *     a point outside the image counts as the lowest / highest sample, so a pixel with
 *     two or more of its points outside is never a spot. T(X) = max(1.4826
 *     median|X - Sh(X)|, floor) is the texture at the ring's scale. With
 *     ramp(z) = clamp((z - 2.5) / 1.5, 0, 1), the maximum over the three scales of
 *       dark   ramp((lo2(L) - Sc(L)) / T(L))
 *       light  ramp((Sc(L) - hi2(L)) / T(L))
 *       red    ramp((Sc(A) - hi2(A)) / T(A))
 *     A pixel below lo2 is darker than its surroundings on at least 7 sides: a spot,
 *     not the dark side of an edge or a line (several samples fall on the dark side
 *     there), and still a spot when one side meets something darker. The small ring
 *     compares a mole with the skin right around it rather than with mottle patches
 *     further away.
 *  5. Eight per-pixel feature maps:
 *       f0  clamp((L - mL) / sL, -4, 4)      shading / layout
 *       f1  clamp((A - mA) / sC, -4, 4)      red-green tint
 *       f2  clamp((B - mB) / sC, -4, 4)      yellow-blue tint
 *       f3  min((RF / sF)^2, 9)              fine local contrast energy
 *       f4  dark     f5  light     f6  red   spot memberships
 *       f7  min(G / sG, 6)                   edge energy
 *  6. Each map is pooled on an 8x8 grid of Gaussian-weighted cells (centres 14 px
 *     apart, sigma 8.4 px, cut at 3 sigma, weights renormalized at the borders), so a
 *     shift of a few pixels moves each cell's value a little instead of moving pixels
 *     across hard cell borders. f3 is pooled as sqrt(weighted mean), a local RMS.
 *  7. The vector, feature-major: element k * 64 + (cy * 8 + cx) holds feature k of the
 *     cell in row cy, column cx, times a group weight (f0-f2: 0.03, f3: 0.15,
 *     f4-f6: 10, f7: 0.15); then 4 global elements: a constant 2 (an anchor, so that
 *     images with little content do not turn noise into large angles, and no vector
 *     is ever zero) and 6 x the image-wide means of f4, f5, f6. Finally scaled to
 *     unit length.
 *
 * The spot memberships are zero on ordinary skin, on edges and on lines, saturate at
 * the centre of a spot whose contrast is 4x the texture at its scale, and weigh
 * heavily. Shading, tint, contrast and edges weigh little: through the equalization an
 * exposure or white balance change moves them differently on the background and on
 * the skin, and a scene with strong structure (body outline, background) must not
 * drown local changes.
 * Measured: on the bundled example (examples/data, check1 vs check2) the `left` angle,
 * where a mole grew and a spot of ~0.6 % appeared, is at 0.048 while the five
 * nuisance-only angles stay at 0.0002-0.0013 (builtin-v1: 0.0046 against up to
 * 0.0027). In tests/unit/test_builtin.c, on plain synthetic skin: a 2 % dark spot
 * moves the distance by ~0.5-0.6, a 0.5 % one by ~0.17-0.22, a 2 % red patch by
 * ~0.17-0.2, while exposure x1.2 with a white balance change, a 3-7 px shift or new
 * sensor noise stay below ~0.0006; on an equalized, mottled scene like the example, a
 * new 0.6 % spot and a grown mole give ~0.008 against nuisances below ~0.0006.
 * Limits: a spot is seen only where its contrast exceeds ~2.5x the texture at its
 * scale, so on a heavily mottled close-up a spot inside a dark blotch, or a mole that
 * grows inside one, can go unseen; smooth dark blobs of a background count as spots
 * (the same in both photos, but they add some jitter under shifts).
 * Embedding each tensor is independent of the others in the batch. Cost: about 2-3 ms
 * per tensor on one core; ~1 MB of scratch buffers live in the embedder.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bcd/image.h"
#include "embed.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF /* same bits whatever the compiler (GCC's ISO C modes keep it off) */
#endif

#define SIDE 112 /* working side: the 224 tensor averaged over 2x2 blocks */
#define NPIX (SIDE * SIDE)
#define GRID 8
#define NCELL (GRID * GRID)
#define NFEAT 8
#define NGLOBAL 4
#define BUILTIN_DIM (NFEAT * NCELL + NGLOBAL) /* 516 */

#define REF_FLOOR (1.0f / 16.0f)
#define MAD_K 1.4826f
#define SL_FLOOR 0.05f
#define SC_FLOOR 0.02f
#define SG_FLOOR 0.01f
#define SF_FLOOR 0.01f
#define CONTRAST_CLIP 9.0f
#define CELL_SIGMA (0.6 * SIDE / GRID)
#define NSCALE 3
#define PAD 20 /* the largest ring distance */
#define PADW (SIDE + 2 * PAD)
#define SENTINEL 1e30f /* a surround sample outside the image */

#define LOG_K 0.5f /* l = ln(x / q + LOG_K) */
#define RAMP_T0 2.5f /* spot ramp, in units of the texture scale */
#define RAMP_T1 4.0f
#define ANCHOR 2.0f
#define GLOBAL_WEIGHT 6.0f

static const float group_weight[NFEAT] = { 0.03f, 0.03f, 0.03f, 0.15f, 10.0f, 10.0f, 10.0f, 0.15f };

/* Spot scales (step 4): radius of the centre and surround blurs (1, 2 or 4: the
 * smoothed images kept in struct builtin), ring distance on the axes and on the
 * diagonals (at most PAD), radius of the blur whose residual sets the texture scale,
 * floors of the L and A texture scales. */
static const struct spot_scale {
    int rc, rs, d, dd, rh;
    float floor_l, floor_a;
} scales[NSCALE] = {
    { 1, 1, 7, 5, 3, 0.02f, 0.012f },
    { 1, 2, 12, 8, 6, 0.03f, 0.018f },
    { 2, 4, 20, 14, 10, 0.04f, 0.024f },
};

struct builtin {
    float cw[SIDE][GRID];            /* 1-D cell weights; each column sums to 1 */
    float L[NPIX], A[NPIX], B[NPIX]; /* log channels, then opponent channels */
    float G[NPIX];                   /* gradient magnitude of L */
    float RF[NPIX];                  /* fine residual */
    float dark[NPIX], light[NPIX], red[NPIX];
    float s1[NPIX], s2[NPIX], s4[NPIX]; /* S1, S2, S4 of L, then of A */
    float res[NPIX];                    /* residual for a texture scale */
    float lo[NPIX], hi[NPIX];           /* lo2, hi2 */
    float map[NPIX];
    float tmp[NPIX], tr[NPIX]; /* blur scratch */
    uint32_t keys[NPIX];
    float rowp[SIDE * GRID];
    float pad[PADW * PADW]; /* surround input inside a border of SENTINEL */
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

/* Exact k-th smallest of the n keys by radix selection on their bits: counting passes
 * over 11, 11 and 10 bits, keeping only the keys in the chosen bin after each pass.
 * count holds the histogram of the top 11 bits (keys >> 21) on entry; keys and count
 * are scratch. Linear time, no data-dependent worst case. */
static float select_key(uint32_t *keys, unsigned count[2048], int n, int k)
{
    static const int shift[3] = { 21, 10, 0 };
    static const uint32_t width[3] = { 0x7ffu, 0x7ffu, 0x3ffu };
    uint32_t prefix = 0;
    for (int pass = 0; pass < 3; pass++) {
        const int sh = shift[pass];
        const uint32_t wm = width[pass];
        if (pass > 0) {
            memset(count, 0, (wm + 1) * sizeof count[0]);
            for (int i = 0; i < n; i++)
                count[(keys[i] >> sh) & wm]++;
        }
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

/* k-th smallest of v[0..NPIX) */
static float kth_of(struct builtin *b, const float *v, int k)
{
    unsigned count[2048] = { 0 };
    for (int i = 0; i < NPIX; i++) {
        uint32_t u = float_key(v[i]);
        b->keys[i] = u;
        count[u >> 21]++;
    }
    return select_key(b->keys, count, NPIX, k);
}

static float median_of(struct builtin *b, const float *v)
{
    return kth_of(b, v, NPIX / 2);
}

/* median |v - c| */
static float mad_of(struct builtin *b, const float *v, float c)
{
    unsigned count[2048] = { 0 };
    for (int i = 0; i < NPIX; i++) {
        uint32_t u = float_key(fabsf(v[i] - c));
        b->keys[i] = u;
        count[u >> 21]++;
    }
    return select_key(b->keys, count, NPIX, NPIX / 2);
}

/* dst = src filtered down every column with a box of radius r, borders replicated. */
static void box_columns(float *restrict dst, const float *restrict src, int r)
{
    const float inv = 1.0f / (float)(2 * r + 1);
    float acc[SIDE] = { 0 };
    for (int i = -r; i <= r; i++) {
        const float *restrict row = src + (i < 0 ? 0 : i > SIDE - 1 ? SIDE - 1 : i) * SIDE;
        for (int x = 0; x < SIDE; x++)
            acc[x] += row[x];
    }
    for (int y = 0; y < SIDE; y++) {
        float *restrict out = dst + y * SIDE;
        for (int x = 0; x < SIDE; x++)
            out[x] = acc[x] * inv;
        int add = y + 1 + r, sub = y - r;
        const float *restrict ra = src + (add > SIDE - 1 ? SIDE - 1 : add) * SIDE;
        const float *restrict rs = src + (sub < 0 ? 0 : sub) * SIDE;
        for (int x = 0; x < SIDE; x++)
            acc[x] += ra[x] - rs[x];
    }
}

/* dst = transpose of src (SIDE x SIDE) */
static void transpose(float *restrict dst, const float *restrict src)
{
    for (int y = 0; y < SIDE; y += 16)
        for (int x = 0; x < SIDE; x += 16)
            for (int yy = y; yy < y + 16; yy++)
                for (int xx = x; xx < x + 16; xx++)
                    dst[xx * SIDE + yy] = src[yy * SIDE + xx];
}

/* dst = src blurred by three box passes of radius r per axis: close to a Gaussian of
 * sigma sqrt(((2r + 1)^2 - 1) / 4), i.e. 1.4, 2.4, 3.5, 4.5, 6.5, 10.5 px for
 * r = 1, 2, 3, 4, 6, 10. The rows are filtered as the columns of the transpose. */
static void blurred(struct builtin *b, float *restrict dst, const float *restrict src, int r)
{
    box_columns(b->tmp, src, r);
    box_columns(b->tr, b->tmp, r);
    box_columns(b->tmp, b->tr, r);
    transpose(b->tr, b->tmp);
    box_columns(b->tmp, b->tr, r);
    box_columns(b->tr, b->tmp, r);
    box_columns(b->tmp, b->tr, r);
    transpose(dst, b->tmp);
}

/* out = the second lowest (sign > 0) or second highest (sign < 0) of the 8 samples of
 * the smoothed image s at distance D (axes) or (DD, DD) (diagonals) from each pixel.
 * Samples outside the image count as the lowest (highest) of all: a pixel with two or
 * more of its samples outside gets -SENTINEL (+SENTINEL): never a spot. s is first
 * copied into the middle of pad, whose border holds that sentinel, so that the loops
 * need no clamping; the order statistics are branch-free. */
static void surround2(struct builtin *b, const float *restrict s, float *restrict out, int D, int DD, int sign)
{
    float *restrict pad = b->pad;
    const float outside = sign > 0 ? -SENTINEL : SENTINEL;
    for (int i = 0; i < PADW * PAD; i++) {
        pad[i] = outside;
        pad[PADW * (PAD + SIDE) + i] = outside;
    }
    for (int y = 0; y < SIDE; y++) {
        float *row = pad + (y + PAD) * PADW;
        for (int x = 0; x < PAD; x++) {
            row[x] = outside;
            row[PAD + SIDE + x] = outside;
        }
        memcpy(row + PAD, s + y * SIDE, SIDE * sizeof *s);
    }
    for (int y = 0; y < SIDE; y++) {
        const float *c = pad + (y + PAD) * PADW + PAD;
        const float *restrict p0 = c + D, *restrict p1 = c - D;
        const float *restrict p2 = c + D * PADW, *restrict p3 = c - D * PADW;
        const float *restrict p4 = c + DD * PADW + DD, *restrict p5 = c - DD * PADW + DD;
        const float *restrict p6 = c + DD * PADW - DD, *restrict p7 = c - DD * PADW - DD;
        float *restrict o = out + y * SIDE;
        if (sign > 0) {
            for (int x = 0; x < SIDE; x++) {
                float v0 = p0[x], v1 = p1[x], t;
                float m1 = v0 < v1 ? v0 : v1, m2 = v0 < v1 ? v1 : v0;
#define LOW2_STEP(v)                                                                                                   \
    t = (v) > m1 ? (v) : m1;                                                                                           \
    m2 = t < m2 ? t : m2;                                                                                              \
    m1 = (v) < m1 ? (v) : m1;
                LOW2_STEP(p2[x])
                LOW2_STEP(p3[x])
                LOW2_STEP(p4[x])
                LOW2_STEP(p5[x])
                LOW2_STEP(p6[x])
                LOW2_STEP(p7[x])
#undef LOW2_STEP
                o[x] = m2;
            }
        } else {
            for (int x = 0; x < SIDE; x++) {
                float v0 = p0[x], v1 = p1[x], t;
                float m1 = v0 > v1 ? v0 : v1, m2 = v0 > v1 ? v1 : v0;
#define HIGH2_STEP(v)                                                                                                  \
    t = (v) < m1 ? (v) : m1;                                                                                           \
    m2 = t > m2 ? t : m2;                                                                                              \
    m1 = (v) > m1 ? (v) : m1;
                HIGH2_STEP(p2[x])
                HIGH2_STEP(p3[x])
                HIGH2_STEP(p4[x])
                HIGH2_STEP(p5[x])
                HIGH2_STEP(p6[x])
                HIGH2_STEP(p7[x])
#undef HIGH2_STEP
                o[x] = m2;
            }
        }
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

/* max(1.4826 median |v - Sr(v)|, floor): the scale of texture at radius r. */
static float texture_scale(struct builtin *b, const float *v, int r, float floor)
{
    blurred(b, b->res, v, r);
    for (int i = 0; i < NPIX; i++)
        b->res[i] = v[i] - b->res[i];
    return fmaxf(MAD_K * mad_of(b, b->res, 0.0f), floor);
}

static const float *smoothed(const struct builtin *b, int r)
{
    return r == 1 ? b->s1 : r == 2 ? b->s2 : b->s4;
}

static void embed_one(struct builtin *b, float *out, const float *t)
{
    static const float mean[3] = { 0.485f, 0.456f, 0.406f };
    static const float stdv[3] = { 0.229f, 0.224f, 0.225f };
    float *chan[3] = { b->L, b->A, b->B };
    const int in = BCD_INPUT_SIZE;

    /* 1. RGB in [0,1], 2x2 means; logs relative to each channel's 90th percentile. */
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
                dst[y * SIDE + x] = 0.25f * s;
            }
        float ref = fmaxf(kth_of(b, dst, (NPIX * 9) / 10), REF_FLOOR);
        const float inv = 1.0f / ref;
        for (int i = 0; i < NPIX; i++)
            dst[i] = logf(dst[i] * inv + LOG_K);
    }

    /* 2. Opponent channels, robust scales. */
    const float r2 = 1.0f / sqrtf(2.0f), r6 = 1.0f / sqrtf(6.0f);
    for (int i = 0; i < NPIX; i++) {
        float r = b->L[i], g = b->A[i], bl = b->B[i];
        b->L[i] = (r + g + bl) / 3.0f;
        b->A[i] = (r - g) * r2;
        b->B[i] = (r + g - 2.0f * bl) * r6;
    }
    float mL = median_of(b, b->L);
    float mA = median_of(b, b->A);
    float mB = median_of(b, b->B);
    float sL = fmaxf(MAD_K * mad_of(b, b->L, mL), SL_FLOOR);
    float sC = fmaxf(MAD_K * 0.5f * (mad_of(b, b->A, mA) + mad_of(b, b->B, mB)), SC_FLOOR);

    /* 3. Fine residual (S2(L) stays in s2 for step 4), gradient magnitude. */
    blurred(b, b->s2, b->L, 2);
    for (int i = 0; i < NPIX; i++)
        b->RF[i] = b->L[i] - b->s2[i];
    float sF = fmaxf(MAD_K * mad_of(b, b->RF, 0.0f), SF_FLOOR);
    for (int y = 0; y < SIDE; y++)
        for (int x = 0; x < SIDE; x++) {
            int xm = x > 0 ? x - 1 : x, xp = x < SIDE - 1 ? x + 1 : x;
            int ym = y > 0 ? y - 1 : y, yp = y < SIDE - 1 ? y + 1 : y;
            float gx = (b->L[y * SIDE + xp] - b->L[y * SIDE + xm]) / (float)(xp - xm);
            float gy = (b->L[yp * SIDE + x] - b->L[ym * SIDE + x]) / (float)(yp - ym);
            b->G[y * SIDE + x] = sqrtf(gx * gx + gy * gy);
        }
    float sG = fmaxf(median_of(b, b->G), SG_FLOOR);

    /* 4. Spots at three scales. */
    memset(b->dark, 0, sizeof b->dark);
    memset(b->light, 0, sizeof b->light);
    memset(b->red, 0, sizeof b->red);
    for (int ch = 0; ch < 2; ch++) {
        const float *v = ch == 0 ? b->L : b->A;
        blurred(b, b->s1, v, 1);
        if (ch == 1)
            blurred(b, b->s2, v, 2);
        blurred(b, b->s4, v, 4);
        for (int k = 0; k < NSCALE; k++) {
            const struct spot_scale *sc = &scales[k];
            const float *C = smoothed(b, sc->rc), *S = smoothed(b, sc->rs);
            const float iT = 1.0f / texture_scale(b, v, sc->rh, ch == 0 ? sc->floor_l : sc->floor_a);
            if (ch == 0)
                surround2(b, S, b->lo, sc->d, sc->dd, 1);
            surround2(b, S, b->hi, sc->d, sc->dd, -1);
            if (ch == 0) {
                for (int i = 0; i < NPIX; i++) {
                    float dk = ramp((b->lo[i] - C[i]) * iT), lt = ramp((C[i] - b->hi[i]) * iT);
                    b->dark[i] = dk > b->dark[i] ? dk : b->dark[i];
                    b->light[i] = lt > b->light[i] ? lt : b->light[i];
                }
            } else {
                for (int i = 0; i < NPIX; i++) {
                    float rd = ramp((C[i] - b->hi[i]) * iT);
                    b->red[i] = rd > b->red[i] ? rd : b->red[i];
                }
            }
        }
    }

    /* 5-7. Feature maps, pooled into cells. */
    float *m = b->map;
    double global[3] = { 0.0, 0.0, 0.0 };
    const float iF = 1.0f / sF, iG = 1.0f / sG, iL = 1.0f / sL, iC = 1.0f / sC;
    for (int k = 0; k < NFEAT; k++) {
        const float *src = m;
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
                z *= z;
                m[i] = z < CONTRAST_CLIP ? z : CONTRAST_CLIP;
            }
            break;
        case 4:
            src = b->dark;
            break;
        case 5:
            src = b->light;
            break;
        case 6:
            src = b->red;
            break;
        default:
            for (int i = 0; i < NPIX; i++) {
                float e = b->G[i] * iG;
                m[i] = e < 6.0f ? e : 6.0f;
            }
            break;
        }
        if (k >= 4 && k <= 6) {
            double s = 0.0;
            for (int i = 0; i < NPIX; i++)
                s += src[i];
            global[k - 4] = s;
        }
        float *cells = out + k * NCELL;
        pool(b, src, cells);
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

static bcd_status builtin_embed(void *impl, bcd_ctx *ctx, float *out, float *maps, const float *tensors, size_t n)
{
    struct builtin *b = impl;
    (void)maps; /* map_c is 0: never asked for */
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
    strcpy(e->name, "builtin-v2");
    return BCD_OK;
}
