/*
 * The preprocessing pipeline, bit for bit as the reference (Python, OpenCV 4.x) does it:
 *
 *   cv2.cvtColor(img, COLOR_RGB2YUV); cv2.equalizeHist(Y); cv2.cvtColor(COLOR_YUV2RGB)
 *   x = img.astype(float32)[centre square]; cv2.resize(x, (n, n), INTER_AREA)
 *   np.clip(np.rint(x), 0, 255).astype(uint8); /255; (x - mean) / std  (float32)
 *
 * OpenCV code paths replicated here (modules/imgproc/src/...):
 *
 * - color_yuv.simd.hpp, RGB2YCrCb_i<uchar> (isCrCb = false) and YCrCb2RGB_i<uchar>: 8-bit
 *   RGB<->YUV in 14-bit fixed point (yuv_shift), CV_DESCALE(x, 14) = (x + 2^13) >> 14 with
 *   an arithmetic (flooring) shift, then saturate_cast<uchar>. The SIMD variants give the
 *   same bytes as the scalar formulas; checked on all 2^24 inputs against cv2.
 * - histogram.cpp, cv::equalizeHist: 256-bin histogram of Y; i = first non-empty bin; if
 *   it holds every pixel the result is the constant i; else
 *   scale = 255.f / (total - hist[i]) in float and lut[j] = saturate_cast<uchar>(sum * scale)
 *   (cvRound: to nearest, ties to even), lut[i] = 0.
 * - resize.cpp, cv::resize / hal::resize with INTER_AREA on CV_32FC3, where
 *   inv_scale = (double)dsize / ssize and scale = 1. / inv_scale:
 *   * dsize == ssize: plain copy.
 *   * scale >= 1 and |scale - cvRound(scale)| < DBL_EPSILON: resizeAreaFast_<float, float>
 *     (no SIMD for 3 channels): per output pixel the float sum of the scale x scale block,
 *     times 1.f / area in float. The block sums are integers; while 255 * area < 2^24 every
 *     partial float sum is exact, so an integer sum gives the same float. Larger blocks
 *     follow OpenCV's summation order (CV_ENABLE_UNROLLED: groups of four, row-major).
 *   * scale >= 1 otherwise: resizeArea_<float, float> with computeResizeAreaTab (weights
 *     computed in double, stored as float): per source row buf[dx] += S[sx] * alpha in
 *     float, in table order; per output row sum = beta * buf, then sum += beta * buf.
 *   * scale < 1 (square smaller than the output): the INTER_AREA emulation in
 *     hal::resize: bilinear resizeGeneric_ (HResizeLinear / VResizeLinear on float) with
 *     area_mode coefficients: sx = cvFloor(dx * scale),
 *     fx = (float)((dx + 1) - (sx + 1) * inv_scale), fx = fx <= 0 ? 0 : fx - cvFloor(fx);
 *     horizontally the last column is taken with fx = 0 and a single tap past xmax;
 *     vertically the second row is clipped to the last one while fy is kept.
 *   OpenCV's float kernels use separate multiplies and adds (SSE2 baseline, no FMA), so
 *   this file must not be compiled with floating-point contraction (GCC's ISO C modes,
 *   which the build uses, keep it off; clang is told below).
 *
 * The resize reads uint8 directly (uint8 -> float is exact), one row of the centre square
 * at a time; bcd_image_preprocess equalizes only those rows after the histogram of the
 * whole image. No float or equalized copy of the image is made.
 *
 * On x86-64 CPUs with AVX2 (chosen at run time) the histogram of Y and the colour round
 * trip run eight pixels at a time: the same integer formulas, so the same bytes (the
 * unit tests compare both paths on every 24-bit colour).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "image_internal.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* ---- RGB <-> YUV, 8-bit fixed point (color_yuv.simd.hpp) ------------------------------ */

enum {
    YUV_SHIFT = 14,
    R2Y = 4899, /* 0.299 * 2^14 */
    G2Y = 9617, /* 0.587 * 2^14 */
    B2Y = 1868, /* 0.114 * 2^14 */
    B2UI = 8061,
    R2VI = 14369,
    U2BI = 33292,
    U2GI = -6472,
    V2GI = -9519,
    V2RI = 18678,
    /* 128 * 2^14 + 2^13: the chroma offset plus the rounding term of CV_DESCALE */
    UV_DELTA = (128 << YUV_SHIFT) + (1 << (YUV_SHIFT - 1)),
    /* added before >> so that the shift floors a non-negative value, as the arithmetic
     * shift of OpenCV floors a negative one; |x| < 2^23 for every YUV -> RGB term */
    FLOOR_BIAS = 512,
};

/* The coefficients sum to 2^14, so Y <= 255 without saturation. */
static inline size_t rgb_y(const uint8_t *p)
{
    return ((size_t)p[0] * R2Y + (size_t)p[1] * G2Y + (size_t)p[2] * B2Y +
            (1 << (YUV_SHIFT - 1))) >> YUV_SHIFT;
}

/* saturate_cast<uchar>(CV_DESCALE(x, 14)) for x already holding the rounding term */
static inline int chroma(int x)
{
    int v = x < 0 ? 0 : x >> YUV_SHIFT;
    return v > 255 ? 255 : v;
}

/* CV_DESCALE(x, 14) with a flooring shift, for |x| < FLOOR_BIAS * 2^14 */
static inline int descale(int x)
{
    return ((x + (1 << (YUV_SHIFT - 1)) + (FLOOR_BIAS << YUV_SHIFT)) >> YUV_SHIFT) - FLOOR_BIAS;
}

/* Tables for one equalization. Given Y, U depends only on B - Y and V only on R - Y, so
 * the chroma round trip becomes lookups indexed by those differences (+255); the output
 * adds an offset to the equalized Y and saturates through clip. Same integers as the
 * formulas, no branches. */
struct eq_tabs {
    uint8_t y_lut[256];  /* equalizeHist */
    int16_t r_off[511];  /* by R - Y: CV_DESCALE((V - 128) * V2RI) */
    int16_t b_off[511];  /* by B - Y: CV_DESCALE((U - 128) * U2BI) */
    int32_t g_u[511];    /* by B - Y: (U - 128) * U2GI */
    int32_t g_v[511];    /* by R - Y: (V - 128) * V2GI */
    uint8_t clip[1024];  /* saturate_cast<uchar>(i - 512) */
    int32_t y_lut32[256]; /* y_lut widened, for the vector path */
    bool simd;           /* run the vector path (equalize_run_avx2) */
};

static bool simd_available(void);

/* After t->y_lut is set. simd: use the vector path (available on this CPU). */
static void eq_tabs_init(struct eq_tabs *t, bool simd)
{
    t->simd = simd;
    for (int i = 0; i < 256; i++)
        t->y_lut32[i] = t->y_lut[i];
    for (int d = -255; d <= 255; d++) {
        int u = chroma(d * B2UI + UV_DELTA) - 128;
        int v = chroma(d * R2VI + UV_DELTA) - 128;
        t->b_off[d + 255] = (int16_t)descale(u * U2BI);
        t->g_u[d + 255] = u * U2GI;
        t->r_off[d + 255] = (int16_t)descale(v * V2RI);
        t->g_v[d + 255] = v * V2GI;
    }
    for (int i = 0; i < 1024; i++)
        t->clip[i] = (uint8_t)(i < 512 ? 0 : i > 767 ? 255 : i - 512);
}

/* Pixels of one run: RGB -> YUV, Y through the equalization LUT, YUV -> RGB. Indices are
 * pointer-sized so that no sign extension sits in the loop. */
static void equalize_run_scalar(uint8_t *restrict dst, const uint8_t *restrict src, size_t n,
                                const struct eq_tabs *t)
{
    const int16_t *r_off = t->r_off + 255, *b_off = t->b_off + 255;
    const int32_t *g_u = t->g_u + 255, *g_v = t->g_v + 255;
    const uint8_t *clip = t->clip + 512, *lut = t->y_lut;
    for (size_t i = 0; i < n; i++, src += 3, dst += 3) {
        ptrdiff_t y = (ptrdiff_t)rgb_y(src);
        ptrdiff_t dr = src[0] - y, db = src[2] - y, ye = lut[y];
        dst[0] = clip[ye + r_off[dr]];
        dst[1] = clip[ye + descale(g_u[db] + g_v[dr])];
        dst[2] = clip[ye + b_off[db]];
    }
}

/* Y of a run of pixels counted into four interleaved sub-histograms (consecutive
 * increments of one bin would stall on each other). */
static void y_hist_row_scalar(uint32_t sub[4][256], const uint8_t *p, size_t w)
{
    size_t x = 0;
    for (; x + 4 <= w; x += 4, p += 12) {
        sub[0][rgb_y(p)]++;
        sub[1][rgb_y(p + 3)]++;
        sub[2][rgb_y(p + 6)]++;
        sub[3][rgb_y(p + 9)]++;
    }
    for (; x < w; x++, p += 3)
        sub[0][rgb_y(p)]++;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_AVX2_PATH 1
#include <immintrin.h>

static bool simd_available(void)
{
    return __builtin_cpu_supports("avx2");
}

/* Eight pixels at src (reading 4 bytes past them) in 32-bit lanes: R and G as 16-bit
 * pairs (rg), B (b), and rgb_y() of each, Y = (R R2Y + G G2Y + B B2Y + 2^13) >> 14 by two
 * multiply-adds of 16-bit pairs. */
__attribute__((target("avx2"))) static inline __m256i y8_avx2(const uint8_t *src, __m256i *rg, __m256i *b)
{
    /* per 128-bit lane 4 pixels, 12 of the 16 loaded bytes */
    const __m256i sh_rg = _mm256_setr_epi8(0, -1, 1, -1, 3, -1, 4, -1, 6, -1, 7, -1, 9, -1, 10, -1,
                                           0, -1, 1, -1, 3, -1, 4, -1, 6, -1, 7, -1, 9, -1, 10, -1);
    const __m256i sh_b = _mm256_setr_epi8(2, -1, -1, -1, 5, -1, -1, -1, 8, -1, -1, -1, 11, -1, -1, -1,
                                          2, -1, -1, -1, 5, -1, -1, -1, 8, -1, -1, -1, 11, -1, -1, -1);
    const __m256i c_rg = _mm256_set1_epi32((G2Y << 16) | R2Y);
    const __m256i c_b1 = _mm256_set1_epi32(((1 << (YUV_SHIFT - 1)) << 16) | B2Y); /* B and 1 */
    __m256i px = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)src)),
                                         _mm_loadu_si128((const __m128i *)(src + 12)), 1);
    *rg = _mm256_shuffle_epi8(px, sh_rg);
    *b = _mm256_shuffle_epi8(px, sh_b);
    __m256i b1 = _mm256_or_si256(*b, _mm256_set1_epi32(1 << 16));
    return _mm256_srli_epi32(_mm256_add_epi32(_mm256_madd_epi16(*rg, c_rg), _mm256_madd_epi16(b1, c_b1)),
                             YUV_SHIFT);
}

/* equalize_run_scalar() eight pixels at a time, the same integers: the formulas of
 * eq_tabs_init() in 32-bit lanes (an arithmetic shift floors as OpenCV's does, so no
 * bias is needed), Y through the LUT by a gather. Checked equal to the scalar path on
 * every 24-bit colour (tests/unit/test_preprocess.c). ~2x faster. */
__attribute__((target("avx2"))) static void equalize_run_avx2(uint8_t *restrict dst, const uint8_t *restrict src,
                                                               size_t n, const struct eq_tabs *t)
{
    const __m256i lo16 = _mm256_set1_epi32(0xffff);
    const __m256i uv_delta = _mm256_set1_epi32(UV_DELTA), half = _mm256_set1_epi32(1 << (YUV_SHIFT - 1));
    const __m256i zero = _mm256_setzero_si256(), c255 = _mm256_set1_epi32(255), c128 = _mm256_set1_epi32(128);
    const __m256i k_b2u = _mm256_set1_epi32(B2UI), k_r2v = _mm256_set1_epi32(R2VI);
    const __m256i k_u2b = _mm256_set1_epi32(U2BI), k_u2g = _mm256_set1_epi32(U2GI);
    const __m256i k_v2g = _mm256_set1_epi32(V2GI), k_v2r = _mm256_set1_epi32(V2RI);
    /* r0..r3 g0..g3 b0..b3 -> r0 g0 b0 r1 g1 b1 ... */
    const __m128i interleave = _mm_setr_epi8(0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11, -1, -1, -1, -1);
    size_t i = 0;
    /* a load reads 4 bytes past its 4 pixels: the last 2 pixels or more go the scalar way */
    for (; i + 10 <= n; i += 8, src += 24, dst += 24) {
        __m256i rg, b;
        __m256i y = y8_avx2(src, &rg, &b);
        __m256i dr = _mm256_sub_epi32(_mm256_and_si256(rg, lo16), y), db = _mm256_sub_epi32(b, y);
        /* chroma(): saturate_cast<uchar>(x >> 14), the rounding term inside UV_DELTA */
        __m256i u = _mm256_srai_epi32(_mm256_add_epi32(_mm256_mullo_epi32(db, k_b2u), uv_delta), YUV_SHIFT);
        __m256i v = _mm256_srai_epi32(_mm256_add_epi32(_mm256_mullo_epi32(dr, k_r2v), uv_delta), YUV_SHIFT);
        u = _mm256_sub_epi32(_mm256_min_epi32(_mm256_max_epi32(u, zero), c255), c128);
        v = _mm256_sub_epi32(_mm256_min_epi32(_mm256_max_epi32(v, zero), c255), c128);
        /* descale() */
        __m256i ro = _mm256_srai_epi32(_mm256_add_epi32(_mm256_mullo_epi32(v, k_v2r), half), YUV_SHIFT);
        __m256i go = _mm256_srai_epi32(
            _mm256_add_epi32(_mm256_add_epi32(_mm256_mullo_epi32(u, k_u2g), _mm256_mullo_epi32(v, k_v2g)), half),
            YUV_SHIFT);
        __m256i bo = _mm256_srai_epi32(_mm256_add_epi32(_mm256_mullo_epi32(u, k_u2b), half), YUV_SHIFT);
        __m256i ye = _mm256_i32gather_epi32(t->y_lut32, y, 4);
        /* ye + offset saturated to 0..255 by the packs (32 -> 16 signed, 16 -> 8 unsigned) */
        __m256i rg16 = _mm256_packs_epi32(_mm256_add_epi32(ye, ro), _mm256_add_epi32(ye, go));
        __m256i b16 = _mm256_packs_epi32(_mm256_add_epi32(ye, bo), zero);
        __m256i all8 = _mm256_packus_epi16(rg16, b16); /* per lane: r0..3 g0..3 b0..3, 0 */
        __m128i lo = _mm_shuffle_epi8(_mm256_castsi256_si128(all8), interleave);
        __m128i hi = _mm_shuffle_epi8(_mm256_extracti128_si256(all8, 1), interleave);
        uint32_t w;
        _mm_storel_epi64((__m128i *)dst, lo);
        w = (uint32_t)_mm_cvtsi128_si32(_mm_srli_si128(lo, 8));
        memcpy(dst + 8, &w, 4);
        _mm_storel_epi64((__m128i *)(dst + 12), hi);
        w = (uint32_t)_mm_cvtsi128_si32(_mm_srli_si128(hi, 8));
        memcpy(dst + 20, &w, 4);
    }
    equalize_run_scalar(dst, src, n - i, t);
}

/* y_hist_row_scalar() eight pixels at a time (Y as rgb_y() gives it). */
__attribute__((target("avx2"))) static void y_hist_row_avx2(uint32_t sub[4][256], const uint8_t *p, size_t w)
{
    size_t x = 0;
    uint32_t y[8];
    for (; x + 10 <= w; x += 8, p += 24) { /* the last 2 pixels or more go the scalar way */
        __m256i rg, b;
        _mm256_storeu_si256((__m256i *)y, y8_avx2(p, &rg, &b));
        sub[0][y[0]]++;
        sub[1][y[1]]++;
        sub[2][y[2]]++;
        sub[3][y[3]]++;
        sub[0][y[4]]++;
        sub[1][y[5]]++;
        sub[2][y[6]]++;
        sub[3][y[7]]++;
    }
    y_hist_row_scalar(sub, p, w - x);
}
#else
static bool simd_available(void)
{
    return false;
}
#endif

static void equalize_run(uint8_t *restrict dst, const uint8_t *restrict src, size_t n, const struct eq_tabs *t)
{
#ifdef HAVE_AVX2_PATH
    if (t->simd) {
        equalize_run_avx2(dst, src, n, t);
        return;
    }
#endif
    equalize_run_scalar(dst, src, n, t);
}

/* Histogram of Y over the whole image; the sub-histograms are flushed before a 32-bit
 * count could wrap. */
static void y_histogram(uint64_t hist[256], const bcd_image *in, bool simd, bcd__image_row_fn fn, void *arg)
{
    (void)simd; /* without a vector path */
    uint32_t sub[4][256];
    memset(sub, 0, sizeof sub);
    memset(hist, 0, 256 * sizeof hist[0]);
    size_t w = in->width, pending = 0;
    const uint8_t *row = in->data;
    for (uint32_t yy = 0; yy < in->height; yy++, row += w * 3) {
        if (pending + w > UINT32_MAX) {
            for (int j = 0; j < 256; j++) {
                hist[j] += (uint64_t)sub[0][j] + sub[1][j] + sub[2][j] + sub[3][j];
                sub[0][j] = sub[1][j] = sub[2][j] = sub[3][j] = 0;
            }
            pending = 0;
        }
#ifdef HAVE_AVX2_PATH
        if (simd)
            y_hist_row_avx2(sub, row, w);
        else
#endif
            y_hist_row_scalar(sub, row, w);
        if (fn)
            fn(arg, row, yy); /* while the row is in cache */
        pending += w;
    }
    for (int j = 0; j < 256; j++)
        hist[j] += (uint64_t)sub[0][j] + sub[1][j] + sub[2][j] + sub[3][j];
}

/* cv::equalizeHist's lookup table. */
static void equalize_lut(uint8_t lut[256], const uint64_t hist[256], uint64_t total)
{
    int i = 0;
    while (hist[i] == 0)
        i++;
    if (hist[i] == total) {
        /* dst.setTo(i): every pixel has Y == i already */
        for (int j = 0; j < 256; j++)
            lut[j] = (uint8_t)j;
        return;
    }
    float scale = 255.f / (float)(total - hist[i]);
    uint64_t sum = 0;
    memset(lut, 0, 256);
    for (lut[i++] = 0; i < 256; i++) {
        sum += hist[i];
        long v = lrintf((float)sum * scale);
        lut[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
}

/* The image is a valid RGB image whose byte count fits in size_t. */
static bool rgb_ok(const bcd_image *img)
{
    if (!bcd__image_valid_rgb(img))
        return false;
    size_t n = (size_t)img->width * img->height;
    return n / img->width == img->height && n <= SIZE_MAX / 3;
}

bcd_status bcd_image_equalize(bcd_image **out, const bcd_image *in)
{
    return bcd__image_equalize_with(out, in, true);
}

bcd_status bcd__image_equalize_with(bcd_image **out, const bcd_image *in, bool simd)
{
    if (!out || !rgb_ok(in))
        return BCD_EINVAL;
    bcd_image *img = bcd__image_new(in->width, in->height, 3);
    if (!img)
        return BCD_ENOMEM;
    uint64_t hist[256];
    struct eq_tabs t;
    simd = simd && simd_available();
    y_histogram(hist, in, simd, NULL, NULL);
    equalize_lut(t.y_lut, hist, (uint64_t)in->width * in->height);
    eq_tabs_init(&t, simd);
    size_t row = (size_t)in->width * 3;
    for (uint32_t y = 0; y < in->height; y++)
        equalize_run(img->data + y * row, in->data + y * row, in->width, &t);
    *out = img;
    return BCD_OK;
}

/* ---- INTER_AREA resize of a uint8 square to float (resize.cpp) ------------------------ */

/* The centre square, read one row at a time: straight from the image, or equalized into
 * a row buffer on demand (bcd_image_preprocess), so that no copy of the square is made.
 * A returned row stays valid until the next call. */
struct rows {
    const uint8_t *data;       /* top-left pixel of the square */
    size_t stride;             /* bytes between rows of the image */
    size_t side;
    const struct eq_tabs *eq;  /* NULL: rows as they are */
    uint8_t *buf;              /* side * 3 bytes, used with eq */
};

static const uint8_t *get_row(const struct rows *s, size_t y)
{
    const uint8_t *p = s->data + y * s->stride;
    if (!s->eq)
        return p;
    equalize_run(s->buf, p, s->side, s->eq);
    return s->buf;
}

/* resizeAreaFast_<float, float>, block sums small enough to be exact in float. */
static bcd_status area_fast_exact(float *dst, const struct rows *s, size_t n, size_t k)
{
    size_t side = s->side, w = side * 3;
    uint32_t *col = malloc(w * sizeof *col);
    if (!col)
        return BCD_ENOMEM;
    const float scale = 1.f / (float)(k * k);
    for (size_t dy = 0; dy < n; dy++) {
        const uint8_t *r = get_row(s, dy * k);
        for (size_t x = 0; x < w; x++)
            col[x] = r[x];
        for (size_t j = 1; j < k; j++) {
            r = get_row(s, dy * k + j);
            for (size_t x = 0; x < w; x++)
                col[x] += r[x];
        }
        float *d = dst + dy * n * 3;
        for (size_t dx = 0; dx < n; dx++) {
            const uint32_t *c = col + dx * k * 3;
            uint32_t s0 = 0, s1 = 0, s2 = 0;
            for (size_t j = 0; j < k; j++, c += 3) {
                s0 += c[0];
                s1 += c[1];
                s2 += c[2];
            }
            d[dx * 3 + 0] = (float)s0 * scale;
            d[dx * 3 + 1] = (float)s1 * scale;
            d[dx * 3 + 2] = (float)s2 * scale;
        }
    }
    free(col);
    return BCD_OK;
}

/* resizeAreaFast_<float, float> for blocks whose float sum rounds, in OpenCV's order: with
 * the block flattened row-major to i = 0 .. k*k-1, sum += ((S[i] + S[i+1]) + S[i+2]) + S[i+3]
 * for i = 0, 4, ... while i + 4 <= k*k, then sum += S[i] for the rest. Four bytes add up
 * exactly in int, as they do in float. Rows are read once each, in order; each output
 * value keeps its running sum and its partial group of four. */
static bcd_status area_fast_float(float *dst, const struct rows *s, size_t n, size_t k)
{
    const size_t area = k * k, grouped = area & ~(size_t)3, w = n * 3;
    const float scale = 1.f / (float)area;
    float *sum = malloc(w * sizeof *sum);
    int *grp = malloc(w * sizeof *grp);
    if (!sum || !grp) {
        free(sum);
        free(grp);
        return BCD_ENOMEM;
    }
    for (size_t dy = 0; dy < n; dy++) {
        for (size_t x = 0; x < w; x++) {
            sum[x] = 0.f;
            grp[x] = 0;
        }
        for (size_t by = 0; by < k; by++) {
            const uint8_t *r = get_row(s, dy * k + by);
            for (size_t x = 0; x < w; x++) {
                const uint8_t *p = r + (x / 3) * k * 3 + x % 3;
                float t = sum[x];
                int g = grp[x];
                for (size_t bx = 0, i = by * k; bx < k; bx++, i++, p += 3) {
                    if (i < grouped) {
                        g += *p;
                        if ((i & 3) == 3) {
                            t += (float)g;
                            g = 0;
                        }
                    } else {
                        t += (float)*p;
                    }
                }
                sum[x] = t;
                grp[x] = g;
            }
        }
        for (size_t x = 0; x < w; x++)
            dst[dy * w + x] = sum[x] * scale;
    }
    free(sum);
    free(grp);
    return BCD_OK;
}

struct area_tab {
    size_t si;   /* source index (pixel) */
    size_t di;   /* destination index (pixel) */
    float alpha; /* weight */
};

/* computeResizeAreaTab, in pixels rather than channel offsets. */
static size_t area_tab(struct area_tab *tab, size_t ssize, size_t dsize, double scale)
{
    size_t k = 0;
    for (size_t dx = 0; dx < dsize; dx++) {
        double fsx1 = (double)dx * scale;
        double fsx2 = fsx1 + scale;
        double cell = fmin(scale, (double)ssize - fsx1);
        long long sx1 = (long long)ceil(fsx1), sx2 = (long long)floor(fsx2);
        if (sx2 > (long long)ssize - 1)
            sx2 = (long long)ssize - 1;
        if (sx1 > sx2)
            sx1 = sx2;
        if ((double)sx1 - fsx1 > 1e-3) {
            tab[k].di = dx;
            tab[k].si = (size_t)(sx1 - 1);
            tab[k++].alpha = (float)(((double)sx1 - fsx1) / cell);
        }
        for (long long sx = sx1; sx < sx2; sx++) {
            tab[k].di = dx;
            tab[k].si = (size_t)sx;
            tab[k++].alpha = (float)(1.0 / cell);
        }
        if (fsx2 - (double)sx2 > 1e-3) {
            tab[k].di = dx;
            tab[k].si = (size_t)sx2;
            tab[k++].alpha = (float)(fmin(fmin(fsx2 - (double)sx2, 1.), cell) / cell);
        }
    }
    return k;
}

#if defined(__GNUC__) || defined(__clang__)
/* The three channels of a pixel in one vector: lane-wise float operations round exactly
 * as the scalar ones, so this is the same arithmetic in a third of the instructions. */
#define HAVE_PIXEL_VECTOR 1
typedef float pixf __attribute__((vector_size(16)));
#endif
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* Horizontal pass of resizeArea_ for one source row: buf[dx] = sum of S[sx] * alpha in
 * table order, starting from 0 (OpenCV's buf[dxn] = buf[dxn] + S[sxn] * alpha).
 * frow holds side * 3 + 1 floats. */
static void hline_area(float *buf, const uint8_t *S, size_t side, size_t n,
                       const struct area_tab *xtab, const size_t *xstart, float *frow)
{
#ifdef HAVE_PIXEL_VECTOR
    size_t w = side * 3, i = 0;
#ifdef __SSE2__
    const __m128i zero = _mm_setzero_si128();
    for (; i + 16 <= w; i += 16) {
        __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(S + i));
        __m128i lo = _mm_unpacklo_epi8(b, zero), hi = _mm_unpackhi_epi8(b, zero);
        _mm_storeu_ps(frow + i, _mm_cvtepi32_ps(_mm_unpacklo_epi16(lo, zero)));
        _mm_storeu_ps(frow + i + 4, _mm_cvtepi32_ps(_mm_unpackhi_epi16(lo, zero)));
        _mm_storeu_ps(frow + i + 8, _mm_cvtepi32_ps(_mm_unpacklo_epi16(hi, zero)));
        _mm_storeu_ps(frow + i + 12, _mm_cvtepi32_ps(_mm_unpackhi_epi16(hi, zero)));
    }
#endif
    for (; i < w; i++)
        frow[i] = (float)S[i];
    frow[w] = 0.f; /* the unused fourth lane of the last pixel */
    /* Each output pixel's sum is a chain of dependent adds; four pixels are summed side by
     * side so that their chains overlap (each pixel still adds its taps in table order). */
    size_t dx = 0;
    for (; dx + 4 <= n; dx += 4) {
        const struct area_tab *e0 = xtab + xstart[dx], *e1 = xtab + xstart[dx + 1];
        const struct area_tab *e2 = xtab + xstart[dx + 2], *e3 = xtab + xstart[dx + 3];
        const struct area_tab *end[4] = { e1, e2, e3, xtab + xstart[dx + 4] };
        size_t common = (size_t)(e1 - e0);
        for (int q = 1; q < 4; q++) {
            size_t c = (size_t)(end[q] - end[q - 1]);
            common = c < common ? c : common;
        }
        pixf t0 = { 0.f, 0.f, 0.f, 0.f }, t1 = t0, t2 = t0, t3 = t0, v0, v1, v2, v3;
        for (size_t j = 0; j < common; j++) {
            memcpy(&v0, frow + e0[j].si * 3, sizeof v0);
            memcpy(&v1, frow + e1[j].si * 3, sizeof v1);
            memcpy(&v2, frow + e2[j].si * 3, sizeof v2);
            memcpy(&v3, frow + e3[j].si * 3, sizeof v3);
            t0 = t0 + v0 * e0[j].alpha;
            t1 = t1 + v1 * e1[j].alpha;
            t2 = t2 + v2 * e2[j].alpha;
            t3 = t3 + v3 * e3[j].alpha;
        }
        pixf *t[4] = { &t0, &t1, &t2, &t3 };
        const struct area_tab *e[4] = { e0, e1, e2, e3 };
        for (int q = 0; q < 4; q++) {
            for (const struct area_tab *k = e[q] + common; k < end[q]; k++) {
                pixf v;
                memcpy(&v, frow + k->si * 3, sizeof v);
                *t[q] = *t[q] + v * k->alpha;
            }
            memcpy(buf + (dx + (size_t)q) * 3, t[q], 3 * sizeof(float));
        }
    }
    for (; dx < n; dx++) {
        pixf t = { 0.f, 0.f, 0.f, 0.f };
        for (size_t k = xstart[dx]; k < xstart[dx + 1]; k++) {
            pixf v;
            memcpy(&v, frow + xtab[k].si * 3, sizeof v);
            t = t + v * xtab[k].alpha;
        }
        buf[dx * 3 + 0] = t[0];
        buf[dx * 3 + 1] = t[1];
        buf[dx * 3 + 2] = t[2];
    }
#else
    (void)side;
    (void)frow;
    for (size_t dx = 0; dx < n; dx++) {
        float t0 = 0.f, t1 = 0.f, t2 = 0.f;
        for (size_t k = xstart[dx]; k < xstart[dx + 1]; k++) {
            const uint8_t *p = S + xtab[k].si * 3;
            float a = xtab[k].alpha;
            t0 = t0 + (float)p[0] * a;
            t1 = t1 + (float)p[1] * a;
            t2 = t2 + (float)p[2] * a;
        }
        buf[dx * 3 + 0] = t0;
        buf[dx * 3 + 1] = t1;
        buf[dx * 3 + 2] = t2;
    }
#endif
}

/* ResizeArea_Invoker<float, float>. The horizontal pass of a row is computed once even when
 * two output rows share it (OpenCV recomputes the same values). */
static bcd_status area_general(float *dst, const struct rows *s, size_t n, double scale)
{
    /* each source pixel is inside one cell, or on the border of two; each cell adds at
     * most two partial pixels. OpenCV asserts fewer than 2 * side entries. */
    size_t side = s->side, cap = side + 2 * n + 2;
    struct area_tab *xtab = malloc(cap * sizeof *xtab);
    struct area_tab *ytab = malloc(cap * sizeof *ytab);
    size_t *xstart = malloc((n + 1) * sizeof *xstart);
    float *buf = malloc(n * 3 * sizeof *buf);
    float *sum = malloc(n * 3 * sizeof *sum);
    float *frow = malloc((side * 3 + 1) * sizeof *frow);
    bcd_status st = BCD_ENOMEM;
    if (!xtab || !ytab || !xstart || !buf || !sum || !frow)
        goto done;
    size_t xn = area_tab(xtab, side, n, scale);
    size_t yn = area_tab(ytab, side, n, scale);
    /* entries of one output column are consecutive */
    for (size_t dx = 0, k = 0; dx <= n; dx++) {
        xstart[dx] = k;
        while (k < xn && xtab[k].di == dx)
            k++;
    }
    memset(dst, 0, n * n * 3 * sizeof *dst);
    for (size_t x = 0; x < n * 3; x++)
        sum[x] = 0.f;
    size_t prev_dy = yn ? ytab[0].di : 0, prev_sy = SIZE_MAX;
    for (size_t j = 0; j < yn; j++) {
        float beta = ytab[j].alpha;
        size_t dy = ytab[j].di, sy = ytab[j].si;
        if (sy != prev_sy) {
            hline_area(buf, get_row(s, sy), side, n, xtab, xstart, frow);
            prev_sy = sy;
        }
        if (dy != prev_dy) {
            float *D = dst + prev_dy * n * 3;
            for (size_t x = 0; x < n * 3; x++) {
                D[x] = sum[x];
                sum[x] = beta * buf[x];
            }
            prev_dy = dy;
        } else {
            for (size_t x = 0; x < n * 3; x++)
                sum[x] += beta * buf[x];
        }
    }
    if (yn)
        memcpy(dst + prev_dy * n * 3, sum, n * 3 * sizeof *sum);
    st = BCD_OK;
done:
    free(xtab);
    free(ytab);
    free(xstart);
    free(buf);
    free(sum);
    free(frow);
    return st;
}

/* INTER_AREA on a smaller source: hal::resize's bilinear emulation (area_mode). */
static bcd_status area_upscale(float *dst, const struct rows *s, size_t n, double scale,
                               double inv_scale)
{
    size_t side = s->side, xmax = n;
    size_t *xofs = malloc(n * sizeof *xofs);
    size_t *yofs = malloc(n * sizeof *yofs);
    float *alpha = malloc(n * 2 * sizeof *alpha);
    float *beta = malloc(n * 2 * sizeof *beta);
    float *rows = malloc(n * 3 * 2 * sizeof *rows);
    bcd_status st = BCD_ENOMEM;
    if (!xofs || !yofs || !alpha || !beta || !rows)
        goto done;
    for (size_t dx = 0; dx < n; dx++) {
        long long sx = (long long)floor((double)dx * scale);
        float fx = (float)((double)(dx + 1) - (double)(sx + 1) * inv_scale);
        fx = fx <= 0 ? 0.f : fx - floorf(fx);
        if (sx < 0) {
            fx = 0.f;
            sx = 0;
        }
        if (sx + 1 >= (long long)side) {
            if (dx < xmax)
                xmax = dx;
            if (sx >= (long long)side - 1) {
                fx = 0.f;
                sx = (long long)side - 1;
            }
        }
        xofs[dx] = (size_t)sx;
        alpha[dx * 2] = 1.f - fx;
        alpha[dx * 2 + 1] = fx;
    }
    for (size_t dy = 0; dy < n; dy++) {
        long long sy = (long long)floor((double)dy * scale);
        float fy = (float)((double)(dy + 1) - (double)(sy + 1) * inv_scale);
        fy = fy <= 0 ? 0.f : fy - floorf(fy);
        yofs[dy] = (size_t)sy;
        beta[dy * 2] = 1.f - fy;
        beta[dy * 2 + 1] = fy;
    }
    size_t w = n * 3;
    float *r0 = rows, *r1 = rows + w;
    size_t have0 = SIZE_MAX, have1 = SIZE_MAX; /* source rows held by r0, r1 */
    for (size_t dy = 0; dy < n; dy++) {
        size_t sy[2] = { yofs[dy], yofs[dy] + 1 < side ? yofs[dy] + 1 : side - 1 };
        float *row[2] = { r0, r1 };
        size_t *have[2] = { &have0, &have1 };
        if (have0 != sy[0] && have1 == sy[0]) {
            /* moving down one row: the second row becomes the first */
            float *tmp = r0;
            r0 = r1;
            r1 = tmp;
            have0 = have1;
            have1 = SIZE_MAX;
            row[0] = r0;
            row[1] = r1;
        }
        for (int k = 0; k < 2; k++) {
            if (*have[k] == sy[k])
                continue;
            const uint8_t *S = get_row(s, sy[k]);
            float *D = row[k];
            size_t dx = 0;
            for (; dx < xmax; dx++) {
                const uint8_t *p = S + xofs[dx] * 3;
                float a0 = alpha[dx * 2], a1 = alpha[dx * 2 + 1];
                for (size_t c = 0; c < 3; c++)
                    D[dx * 3 + c] = (float)p[c] * a0 + (float)p[c + 3] * a1;
            }
            for (; dx < n; dx++) {
                const uint8_t *p = S + xofs[dx] * 3;
                for (size_t c = 0; c < 3; c++)
                    D[dx * 3 + c] = (float)p[c];
            }
            *have[k] = sy[k];
        }
        float b0 = beta[dy * 2], b1 = beta[dy * 2 + 1];
        float *D = dst + dy * w;
        for (size_t x = 0; x < w; x++)
            D[x] = r0[x] * b0 + r1[x] * b1;
    }
    st = BCD_OK;
done:
    free(xofs);
    free(yofs);
    free(alpha);
    free(beta);
    free(rows);
    return st;
}

/* cv::resize(square, (n, n), interpolation=INTER_AREA) into n*n*3 floats. */
static bcd_status resize_area(float *dst, const struct rows *s, size_t n)
{
    size_t side = s->side;
    if (side == n) {
        for (size_t y = 0; y < n; y++) {
            const uint8_t *S = get_row(s, y);
            for (size_t x = 0; x < n * 3; x++)
                dst[y * n * 3 + x] = (float)S[x];
        }
        return BCD_OK;
    }
    double inv_scale = (double)n / (double)side;
    double scale = 1. / inv_scale;
    if (scale < 1.)
        return area_upscale(dst, s, n, scale, inv_scale);
    double iscale = nearbyint(scale);
    if (fabs(scale - iscale) < 2.220446049250313e-16 /* DBL_EPSILON */) {
        size_t k = (size_t)iscale;
        if (k <= 256) /* 255 * k * k < 2^24 */
            return area_fast_exact(dst, s, n, k);
        return area_fast_float(dst, s, n, k);
    }
    return area_general(dst, s, n, scale);
}

/* np.clip(np.rint(v), 0, 255).astype(uint8): ties to even. Clamping first is the same
 * since both bounds are integers; on [0, 255] adding 2^23 rounds to an integer. */
static void round_u8(uint8_t *out, const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float x = v[i];
        x = x < 0.f ? 0.f : x > 255.f ? 255.f : x;
        x = (x + 0x1p23f) - 0x1p23f;
        out[i] = (uint8_t)x;
    }
}

/* Centre square of side min(w, h), offsets rounded down. */
static struct rows centre_square(const bcd_image *in, const struct eq_tabs *eq, uint8_t *buf)
{
    struct rows s;
    uint32_t w = in->width, h = in->height;
    s.side = w < h ? w : h;
    s.stride = (size_t)w * 3;
    s.data = in->data + (h - s.side) / 2 * s.stride + (w - s.side) / 2 * 3;
    s.eq = eq;
    s.buf = buf;
    return s;
}

static bcd_status crop_resize_rows(bcd_image **out, const struct rows *s, uint32_t size)
{
    bcd_image *img = bcd__image_new(size, size, 3);
    if (!img)
        return BCD_ENOMEM;
    size_t n = (size_t)size * size * 3;
    float *f = malloc(n * sizeof *f);
    if (!f) {
        bcd_image_free(img);
        return BCD_ENOMEM;
    }
    bcd_status st = resize_area(f, s, size);
    if (st == BCD_OK) {
        round_u8(img->data, f, n);
        *out = img;
    } else {
        bcd_image_free(img);
    }
    free(f);
    return st;
}

bcd_status bcd_image_crop_resize(bcd_image **out, const bcd_image *in, uint32_t size)
{
    if (!out || !rgb_ok(in) || size == 0 || size > BCD_DEFAULT_MAX_DIMENSION)
        return BCD_EINVAL;
    struct rows s = centre_square(in, NULL, NULL);
    return crop_resize_rows(out, &s, size);
}

/* ---- tensor ------------------------------------------------------------------------- */

bcd_status bcd_image_to_tensor(float *out, size_t out_len, const bcd_image *in)
{
    static const float mean[3] = { 0.485f, 0.456f, 0.406f };
    static const float stdv[3] = { 0.229f, 0.224f, 0.225f };
    if (!out || out_len < BCD_TENSOR_LEN || !bcd__image_valid_rgb(in) ||
        in->width != BCD_INPUT_SIZE || in->height != BCD_INPUT_SIZE)
        return BCD_EINVAL;
    const size_t plane = (size_t)BCD_INPUT_SIZE * BCD_INPUT_SIZE;
    /* ToTensor divides by 255, Normalize subtracts and divides, each rounded to float */
    for (size_t c = 0; c < 3; c++) {
        float *o = out + c * plane;
        const uint8_t *p = in->data + c;
        for (size_t i = 0; i < plane; i++, p += 3)
            o[i] = ((float)*p / 255.f - mean[c]) / stdv[c];
    }
    return BCD_OK;
}

bcd_status bcd_image_preprocess(float *out, size_t out_len, const bcd_image *in)
{
    return bcd__image_preprocess_rows(out, out_len, in, NULL, NULL);
}

bcd_status bcd__image_preprocess_rows(float *out, size_t out_len, const bcd_image *in, bcd__image_row_fn fn,
                                      void *arg)
{
    if (!out || out_len < BCD_TENSOR_LEN || !rgb_ok(in))
        return BCD_EINVAL;
    /* The histogram needs every pixel; the colour conversion only the rows of the centre
     * square that the resize reads, one at a time. */
    uint64_t hist[256];
    struct eq_tabs t;
    bool simd = simd_available();
    y_histogram(hist, in, simd, fn, arg);
    equalize_lut(t.y_lut, hist, (uint64_t)in->width * in->height);
    eq_tabs_init(&t, simd);
    uint8_t *row = malloc((size_t)(in->width < in->height ? in->width : in->height) * 3);
    if (!row)
        return BCD_ENOMEM;
    struct rows s = centre_square(in, &t, row);
    bcd_image *small = NULL;
    bcd_status st = crop_resize_rows(&small, &s, BCD_INPUT_SIZE);
    free(row);
    if (st != BCD_OK)
        return st;
    st = bcd_image_to_tensor(out, out_len, small);
    bcd_image_free(small);
    return st;
}
