/* Tests of the preprocessing pipeline (lib/image/preprocess.c). Parity with OpenCV on many
 * images is checked by tests/parity/parity_preprocess.py; these are values small enough
 * to follow by hand (or taken from cv2 where noted). */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bcd/image.h"
#include "image/image_internal.h"

/* An image over a caller buffer, as a caller of the library builds one. */
static bcd_image wrap(uint8_t *data, uint32_t w, uint32_t h)
{
    bcd_image img = { w, h, 3, data };
    return img;
}

/* Grey pixels (R = G = B): Y is the grey value and U = V = 128, so the colour round trip is
 * exact and equalization works on the grey values alone. */
static void fill_grey(uint8_t *rgb, const uint8_t *grey, size_t n)
{
    for (size_t i = 0; i < n; i++)
        rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = grey[i];
}

static uint8_t *pattern(uint32_t w, uint32_t h, unsigned seed)
{
    size_t n = (size_t)w * h * 3;
    uint8_t *p = malloc(n);
    ck_assert_ptr_nonnull(p);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)(x >> 7);
    }
    return p;
}

/* ---- bcd_image_equalize ------------------------------------------------------------- */

START_TEST(test_image_equalize_spreads_grey_levels_over_full_range)
{
    /* histogram 1,1,1,1 at 0,50,100,200: scale = 255 / (4 - 1) = 85, cdf 1,2,3 */
    const uint8_t grey[4] = { 0, 50, 100, 200 };
    uint8_t px[12];
    fill_grey(px, grey, 4);
    bcd_image in = wrap(px, 2, 2), *out = NULL;
    ck_assert_int_eq(bcd_image_equalize(&out, &in), BCD_OK);
    ck_assert_uint_eq(out->width, 2);
    ck_assert_uint_eq(out->height, 2);
    ck_assert_uint_eq(out->channels, 3);
    const uint8_t want[4] = { 0, 85, 170, 255 };
    for (int i = 0; i < 4; i++)
        for (int c = 0; c < 3; c++)
            ck_assert_uint_eq(out->data[3 * i + c], want[i]);
    bcd_image_free(out);
}
END_TEST

START_TEST(test_image_equalize_rounds_lut_ties_to_even)
{
    /* first bin 0 holds 1 of 11 pixels: scale = 255 / 10 = 25.5 (exact in float);
     * lut[1] = 3 * 25.5 = 76.5 -> 76 (cvRound: ties to even), lut[2] = 10 * 25.5 = 255 */
    const uint8_t grey[11] = { 0, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2 };
    uint8_t px[33];
    fill_grey(px, grey, 11);
    bcd_image in = wrap(px, 11, 1), *out = NULL;
    ck_assert_int_eq(bcd_image_equalize(&out, &in), BCD_OK);
    const uint8_t want[11] = { 0, 76, 76, 76, 255, 255, 255, 255, 255, 255, 255 };
    for (int i = 0; i < 11; i++)
        ck_assert_uint_eq(out->data[3 * i], want[i]);
    bcd_image_free(out);

    /* scale = 255 / 2 = 127.5; lut[20] = 127.5 -> 128, lut[30] = 255 */
    const uint8_t grey2[4] = { 10, 10, 20, 30 };
    fill_grey(px, grey2, 4);
    in = wrap(px, 4, 1);
    ck_assert_int_eq(bcd_image_equalize(&out, &in), BCD_OK);
    ck_assert_uint_eq(out->data[0], 0);
    ck_assert_uint_eq(out->data[3], 0);
    ck_assert_uint_eq(out->data[6], 128);
    ck_assert_uint_eq(out->data[9], 255);
    bcd_image_free(out);
}
END_TEST

START_TEST(test_image_equalize_of_constant_image_is_the_colour_round_trip)
{
    /* equalizeHist leaves a constant Y as it is; what remains is RGB -> YUV -> RGB in
     * 8-bit fixed point. (200,120,30): Y 134, U 77, V 186, back to (200,120,30).
     * (255,0,0): Y 76, U 91, V 285 -> 255 (saturated), back to (221,17,1) (cv2 agrees). */
    static const uint8_t cases[][6] = {
        { 200, 120, 30, 200, 120, 30 },
        { 255, 0, 0, 221, 17, 1 },
        { 0, 0, 255, 0, 0, 255 },
        { 12, 240, 77, 12, 240, 78 },
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        uint8_t px[3 * 6];
        for (int i = 0; i < 6; i++)
            memcpy(px + 3 * i, cases[k], 3);
        bcd_image in = wrap(px, 3, 2), *out = NULL;
        ck_assert_int_eq(bcd_image_equalize(&out, &in), BCD_OK);
        for (int i = 0; i < 6; i++) {
            ck_assert_uint_eq(out->data[3 * i + 0], cases[k][3]);
            ck_assert_uint_eq(out->data[3 * i + 1], cases[k][4]);
            ck_assert_uint_eq(out->data[3 * i + 2], cases[k][5]);
        }
        bcd_image_free(out);
    }
}
END_TEST

START_TEST(test_image_equalize_handles_single_pixel)
{
    uint8_t px[3] = { 9, 99, 199 };
    bcd_image in = wrap(px, 1, 1), *out = NULL;
    ck_assert_int_eq(bcd_image_equalize(&out, &in), BCD_OK);
    ck_assert_uint_eq(out->width, 1);
    ck_assert_uint_eq(out->height, 1);
    bcd_image_free(out);
}
END_TEST

/* The vector paths of the histogram and the colour round trip (where the CPU has them)
 * give the scalar paths' bytes: every 24-bit colour in rows of 4096, and rows of every
 * width up to 17 and of 1021 (the vector loop leaves 2..9 pixels to the scalar code). */
START_TEST(test_image_equalize_vector_path_equals_scalar_on_every_colour)
{
    const size_t all = (size_t)1 << 24;
    uint8_t *rgb = malloc(all * 3);
    ck_assert_ptr_nonnull(rgb);
    for (size_t i = 0; i < all; i++) {
        rgb[3 * i] = (uint8_t)i;
        rgb[3 * i + 1] = (uint8_t)(i >> 8);
        rgb[3 * i + 2] = (uint8_t)(i >> 16);
    }
    static const uint32_t widths[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 1021, 4096 };
    for (size_t k = 0; k < sizeof widths / sizeof widths[0]; k++) {
        /* all colours at 4096, else the first 2^16 (every red and green, blue 0) */
        uint32_t w = widths[k], h = (uint32_t)((w == 4096 ? all : (size_t)1 << 16) / w);
        bcd_image in = wrap(rgb, w, h), *vec = NULL, *sca = NULL, *pub = NULL;
        ck_assert_int_eq(bcd__image_equalize_with(&vec, &in, true), BCD_OK);
        ck_assert_int_eq(bcd__image_equalize_with(&sca, &in, false), BCD_OK);
        ck_assert_int_eq(bcd_image_equalize(&pub, &in), BCD_OK);
        ck_assert_msg(memcmp(vec->data, sca->data, (size_t)w * h * 3) == 0, "width %u", w);
        ck_assert_msg(memcmp(pub->data, sca->data, (size_t)w * h * 3) == 0, "width %u", w);
        bcd_image_free(pub);
        bcd_image_free(vec);
        bcd_image_free(sca);
    }
    free(rgb);
}
END_TEST

START_TEST(test_image_equalize_rejects_invalid_input)
{
    static bcd_image sentinel;
    uint8_t px[12] = { 0 };
    bcd_image *out = &sentinel; /* must stay untouched */
    bcd_image in = wrap(px, 2, 2);
    ck_assert_int_eq(bcd_image_equalize(NULL, &in), BCD_EINVAL);
    ck_assert_int_eq(bcd_image_equalize(&out, NULL), BCD_EINVAL);
    bcd_image bad = in;
    bad.channels = 4;
    ck_assert_int_eq(bcd_image_equalize(&out, &bad), BCD_EINVAL);
    bad = in;
    bad.data = NULL;
    ck_assert_int_eq(bcd_image_equalize(&out, &bad), BCD_EINVAL);
    bad = in;
    bad.width = 0;
    ck_assert_int_eq(bcd_image_equalize(&out, &bad), BCD_EINVAL);
    bad = in;
    bad.height = 0;
    ck_assert_int_eq(bcd_image_equalize(&out, &bad), BCD_EINVAL);
    ck_assert_ptr_eq(out, &sentinel);
}
END_TEST

/* ---- bcd_image_crop_resize ---------------------------------------------------------- */

/* size == side: the centre square itself, offsets (w - side) / 2 and (h - side) / 2
 * rounded down. */
static void check_crop(uint32_t w, uint32_t h, uint32_t ox, uint32_t oy)
{
    uint8_t *px = pattern(w, h, w * 31 + h);
    uint32_t side = w < h ? w : h;
    bcd_image in = wrap(px, w, h), *out = NULL;
    ck_assert_int_eq(bcd_image_crop_resize(&out, &in, side), BCD_OK);
    ck_assert_uint_eq(out->width, side);
    ck_assert_uint_eq(out->height, side);
    for (uint32_t y = 0; y < side; y++)
        ck_assert_mem_eq(out->data + (size_t)y * side * 3,
                         px + ((size_t)(y + oy) * w + ox) * 3, (size_t)side * 3);
    bcd_image_free(out);
    free(px);
}

START_TEST(test_image_crop_resize_crops_centre_rounding_offset_down)
{
    check_crop(5, 3, 1, 0);  /* (5 - 3) / 2 */
    check_crop(6, 3, 1, 0);  /* (6 - 3) / 2 = 1.5 -> 1 */
    check_crop(4, 7, 0, 1);  /* (7 - 4) / 2 = 1.5 -> 1 */
    check_crop(2, 9, 0, 3);  /* (9 - 2) / 2 = 3.5 -> 3 */
    check_crop(7, 7, 0, 0);
    check_crop(1, 2, 0, 0);  /* (2 - 1) / 2 = 0.5 -> 0 */
}
END_TEST

START_TEST(test_image_crop_resize_averages_blocks_and_rounds_ties_to_even)
{
    /* 4x4 -> 2x2 (integer ratio): the mean of each 2x2 block; px[i] = i.
     * top-left red: (0 + 3 + 12 + 15) / 4 = 7.5 -> 8, green 8.5 -> 8, blue 9.5 -> 10 */
    uint8_t px[48];
    for (int i = 0; i < 48; i++)
        px[i] = (uint8_t)i;
    bcd_image in = wrap(px, 4, 4), *out = NULL;
    ck_assert_int_eq(bcd_image_crop_resize(&out, &in, 2), BCD_OK);
    const uint8_t want[12] = { 8, 8, 10, 14, 14, 16, 32, 32, 34, 38, 38, 40 };
    ck_assert_mem_eq(out->data, want, sizeof want);
    bcd_image_free(out);

    /* 4x4 -> 3x3 (general area weights), values from cv2.resize INTER_AREA */
    ck_assert_int_eq(bcd_image_crop_resize(&out, &in, 3), BCD_OK);
    const uint8_t want3[27] = { 4,  5,  6,  8,  8,  10, 11, 12, 13, 19, 20, 21, 22, 24,
                                24, 26, 27, 28, 34, 35, 36, 38, 38, 40, 41, 42, 43 };
    ck_assert_mem_eq(out->data, want3, sizeof want3);
    bcd_image_free(out);
}
END_TEST

START_TEST(test_image_crop_resize_upscales_small_images)
{
    /* 2x2 -> 4x4: INTER_AREA upscaling by an integer factor repeats pixels */
    const uint8_t px[12] = { 0, 50, 100, 200, 10, 20, 30, 40, 250, 255, 255, 255 };
    uint8_t copy[12];
    memcpy(copy, px, sizeof copy);
    bcd_image in = wrap(copy, 2, 2), *out = NULL;
    ck_assert_int_eq(bcd_image_crop_resize(&out, &in, 4), BCD_OK);
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++)
            ck_assert_mem_eq(out->data + (y * 4 + x) * 3, px + ((y / 2) * 2 + x / 2) * 3, 3);
    bcd_image_free(out);

    /* 2x2 -> 3x3, values from cv2.resize INTER_AREA */
    ck_assert_int_eq(bcd_image_crop_resize(&out, &in, 3), BCD_OK);
    const uint8_t want3[27] = { 0,   50,  100, 100, 30,  60,  200, 10,  20,
                                15,  45,  175, 121, 89,  156, 228, 132, 138,
                                30,  40,  250, 142, 148, 252, 255, 255, 255 };
    ck_assert_mem_eq(out->data, want3, sizeof want3);
    bcd_image_free(out);

    /* one pixel to the network size: every output pixel is that pixel */
    uint8_t one[3] = { 7, 128, 254 };
    in = wrap(one, 1, 1);
    ck_assert_int_eq(bcd_image_crop_resize(&out, &in, BCD_INPUT_SIZE), BCD_OK);
    for (size_t i = 0; i < (size_t)BCD_INPUT_SIZE * BCD_INPUT_SIZE; i++)
        ck_assert_mem_eq(out->data + 3 * i, one, 3);
    bcd_image_free(out);
}
END_TEST

START_TEST(test_image_crop_resize_of_constant_image_is_constant)
{
    /* exercises each resize path: integer ratio, general area, upscaling */
    const uint32_t sides[][2] = { { 448, 448 }, { 501, 333 }, { 300, 230 }, { 50, 37 } };
    for (size_t k = 0; k < sizeof sides / sizeof sides[0]; k++) {
        uint32_t w = sides[k][0], h = sides[k][1];
        uint8_t *px = malloc((size_t)w * h * 3);
        ck_assert_ptr_nonnull(px);
        for (size_t i = 0; i < (size_t)w * h; i++) {
            px[3 * i] = 17;
            px[3 * i + 1] = 254;
            px[3 * i + 2] = 255;
        }
        bcd_image in = wrap(px, w, h), *out = NULL;
        ck_assert_int_eq(bcd_image_crop_resize(&out, &in, BCD_INPUT_SIZE), BCD_OK);
        for (size_t i = 0; i < (size_t)BCD_INPUT_SIZE * BCD_INPUT_SIZE; i++) {
            ck_assert_uint_eq(out->data[3 * i], 17);
            ck_assert_uint_eq(out->data[3 * i + 1], 254);
            ck_assert_uint_eq(out->data[3 * i + 2], 255);
        }
        bcd_image_free(out);
        free(px);
    }
}
END_TEST

START_TEST(test_image_crop_resize_rejects_invalid_input)
{
    uint8_t px[12] = { 0 };
    bcd_image in = wrap(px, 2, 2), *out = NULL;
    ck_assert_int_eq(bcd_image_crop_resize(NULL, &in, 2), BCD_EINVAL);
    ck_assert_int_eq(bcd_image_crop_resize(&out, NULL, 2), BCD_EINVAL);
    ck_assert_int_eq(bcd_image_crop_resize(&out, &in, 0), BCD_EINVAL);
    ck_assert_int_eq(bcd_image_crop_resize(&out, &in, BCD_DEFAULT_MAX_DIMENSION + 1), BCD_EINVAL);
    bcd_image bad = in;
    bad.channels = 1;
    ck_assert_int_eq(bcd_image_crop_resize(&out, &bad, 2), BCD_EINVAL);
    bad = in;
    bad.data = NULL;
    ck_assert_int_eq(bcd_image_crop_resize(&out, &bad, 2), BCD_EINVAL);
    ck_assert_ptr_null(out);
}
END_TEST

/* ---- bcd_image_to_tensor ------------------------------------------------------------ */

START_TEST(test_image_to_tensor_normalizes_into_chw)
{
    const size_t plane = (size_t)BCD_INPUT_SIZE * BCD_INPUT_SIZE;
    uint8_t *px = calloc(plane, 3);
    float *t = malloc(BCD_TENSOR_LEN * sizeof *t);
    ck_assert_ptr_nonnull(px);
    ck_assert_ptr_nonnull(t);
    px[0] = 255; /* pixel (0,0) */
    px[1] = 0;
    px[2] = 128;
    size_t at = (size_t)5 * BCD_INPUT_SIZE + 7; /* pixel (x 7, y 5) */
    px[3 * at + 1] = 51;
    bcd_image in = wrap(px, BCD_INPUT_SIZE, BCD_INPUT_SIZE);
    ck_assert_int_eq(bcd_image_to_tensor(t, BCD_TENSOR_LEN, &in), BCD_OK);
    ck_assert_float_eq_tol(t[0], (1.0f - 0.485f) / 0.229f, 1e-6f);
    ck_assert_float_eq_tol(t[0], 2.2489083f, 1e-6f);
    ck_assert_float_eq_tol(t[plane], -0.456f / 0.224f, 1e-6f);
    ck_assert_float_eq_tol(t[plane], -2.0357143f, 1e-6f);
    ck_assert_float_eq_tol(t[2 * plane], (128.0f / 255.0f - 0.406f) / 0.225f, 1e-6f);
    ck_assert_float_eq_tol(t[2 * plane], 0.4264924f, 1e-6f);
    /* green 51 = 0.2 at (7, 5), in the second plane, row-major */
    ck_assert_float_eq_tol(t[plane + at], (0.2f - 0.456f) / 0.224f, 1e-6f);
    /* a black pixel elsewhere: -mean / std in each plane */
    ck_assert_float_eq_tol(t[1], -0.485f / 0.229f, 1e-6f);
    ck_assert_float_eq_tol(t[2 * plane + 1], -0.406f / 0.225f, 1e-6f);
    free(t);
    free(px);
}
END_TEST

START_TEST(test_image_to_tensor_rejects_wrong_size_or_length)
{
    const size_t plane = (size_t)BCD_INPUT_SIZE * BCD_INPUT_SIZE;
    uint8_t *px = calloc(plane, 3);
    float *t = malloc(BCD_TENSOR_LEN * sizeof *t);
    ck_assert_ptr_nonnull(px);
    ck_assert_ptr_nonnull(t);
    bcd_image in = wrap(px, BCD_INPUT_SIZE, BCD_INPUT_SIZE);
    ck_assert_int_eq(bcd_image_to_tensor(t, BCD_TENSOR_LEN - 1, &in), BCD_EINVAL);
    ck_assert_int_eq(bcd_image_to_tensor(NULL, BCD_TENSOR_LEN, &in), BCD_EINVAL);
    ck_assert_int_eq(bcd_image_to_tensor(t, BCD_TENSOR_LEN, NULL), BCD_EINVAL);
    bcd_image bad = wrap(px, BCD_INPUT_SIZE - 1, BCD_INPUT_SIZE);
    ck_assert_int_eq(bcd_image_to_tensor(t, BCD_TENSOR_LEN, &bad), BCD_EINVAL);
    bad = wrap(px, BCD_INPUT_SIZE, BCD_INPUT_SIZE + 1);
    ck_assert_int_eq(bcd_image_to_tensor(t, BCD_TENSOR_LEN, &bad), BCD_EINVAL);
    bad = in;
    bad.channels = 4;
    ck_assert_int_eq(bcd_image_to_tensor(t, BCD_TENSOR_LEN, &bad), BCD_EINVAL);
    free(t);
    free(px);
}
END_TEST

/* ---- bcd_image_preprocess ----------------------------------------------------------- */

static void check_pipeline(uint32_t w, uint32_t h)
{
    uint8_t *px = pattern(w, h, w + 7 * h);
    bcd_image in = wrap(px, w, h), *eq = NULL, *small = NULL;
    float *a = malloc(BCD_TENSOR_LEN * sizeof *a), *b = malloc(BCD_TENSOR_LEN * sizeof *b);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(bcd_image_equalize(&eq, &in), BCD_OK);
    ck_assert_int_eq(bcd_image_crop_resize(&small, eq, BCD_INPUT_SIZE), BCD_OK);
    ck_assert_int_eq(bcd_image_to_tensor(a, BCD_TENSOR_LEN, small), BCD_OK);
    ck_assert_int_eq(bcd_image_preprocess(b, BCD_TENSOR_LEN, &in), BCD_OK);
    ck_assert_mem_eq(a, b, BCD_TENSOR_LEN * sizeof *a);
    bcd_image_free(eq);
    bcd_image_free(small);
    free(a);
    free(b);
    free(px);
}

START_TEST(test_image_preprocess_equals_the_three_steps)
{
    check_pipeline(300, 257);  /* general area */
    check_pipeline(448, 672);  /* integer ratio */
    check_pipeline(224, 224);  /* copy */
    check_pipeline(61, 90);    /* upscaling */
    check_pipeline(2, 2);
}
END_TEST

/* The row hook of the histogram pass sees every row once, in order, with its bytes. */
struct row_log {
    const bcd_image *img;
    uint32_t next;
    bool in_order;
};

static void log_row(void *arg, const uint8_t *row, uint32_t y)
{
    struct row_log *l = arg;
    size_t len = (size_t)l->img->width * 3;
    if (y != l->next || memcmp(row, l->img->data + (size_t)y * len, len) != 0)
        l->in_order = false;
    l->next = y + 1;
}

START_TEST(test_image_preprocess_rows_hands_over_every_row_and_the_same_tensor)
{
    static const uint32_t sizes[][2] = { { 300, 257 }, { 61, 90 }, { 2, 2 } };
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        uint32_t w = sizes[k][0], h = sizes[k][1];
        uint8_t *px = pattern(w, h, w + 3 * h);
        bcd_image in = wrap(px, w, h);
        float *a = malloc(BCD_TENSOR_LEN * sizeof *a), *b = malloc(BCD_TENSOR_LEN * sizeof *b);
        ck_assert_ptr_nonnull(a);
        ck_assert_ptr_nonnull(b);
        struct row_log l = { &in, 0, true };
        ck_assert_int_eq(bcd_image_preprocess(a, BCD_TENSOR_LEN, &in), BCD_OK);
        ck_assert_int_eq(bcd__image_preprocess_rows(b, BCD_TENSOR_LEN, &in, log_row, &l), BCD_OK);
        ck_assert_mem_eq(a, b, BCD_TENSOR_LEN * sizeof *a);
        ck_assert(l.in_order);
        ck_assert_uint_eq(l.next, h);
        ck_assert_int_eq(bcd__image_preprocess_rows(b, BCD_TENSOR_LEN, &in, NULL, NULL), BCD_OK);
        ck_assert_mem_eq(a, b, BCD_TENSOR_LEN * sizeof *a);
        free(a);
        free(b);
        free(px);
    }
}
END_TEST

START_TEST(test_image_preprocess_rejects_invalid_input)
{
    uint8_t px[12] = { 0 };
    float t[4];
    bcd_image in = wrap(px, 2, 2);
    ck_assert_int_eq(bcd_image_preprocess(NULL, BCD_TENSOR_LEN, &in), BCD_EINVAL);
    ck_assert_int_eq(bcd_image_preprocess(t, 4, &in), BCD_EINVAL);
    float *big = malloc(BCD_TENSOR_LEN * sizeof *big);
    ck_assert_ptr_nonnull(big);
    ck_assert_int_eq(bcd_image_preprocess(big, BCD_TENSOR_LEN, NULL), BCD_EINVAL);
    bcd_image bad = in;
    bad.channels = 2;
    ck_assert_int_eq(bcd_image_preprocess(big, BCD_TENSOR_LEN, &bad), BCD_EINVAL);
    bad = in;
    bad.width = 0;
    ck_assert_int_eq(bcd_image_preprocess(big, BCD_TENSOR_LEN, &bad), BCD_EINVAL);
    free(big);
}
END_TEST

static Suite *preprocess_suite(void)
{
    Suite *s = suite_create("preprocess");
    TCase *tc = tcase_create("equalize");
    tcase_add_test(tc, test_image_equalize_spreads_grey_levels_over_full_range);
    tcase_add_test(tc, test_image_equalize_rounds_lut_ties_to_even);
    tcase_add_test(tc, test_image_equalize_of_constant_image_is_the_colour_round_trip);
    tcase_add_test(tc, test_image_equalize_handles_single_pixel);
    tcase_add_test(tc, test_image_equalize_rejects_invalid_input);
    tcase_add_test(tc, test_image_equalize_vector_path_equals_scalar_on_every_colour);
    suite_add_tcase(s, tc);

    tc = tcase_create("crop_resize");
    tcase_add_test(tc, test_image_crop_resize_crops_centre_rounding_offset_down);
    tcase_add_test(tc, test_image_crop_resize_averages_blocks_and_rounds_ties_to_even);
    tcase_add_test(tc, test_image_crop_resize_upscales_small_images);
    tcase_add_test(tc, test_image_crop_resize_of_constant_image_is_constant);
    tcase_add_test(tc, test_image_crop_resize_rejects_invalid_input);
    suite_add_tcase(s, tc);

    tc = tcase_create("to_tensor");
    tcase_add_test(tc, test_image_to_tensor_normalizes_into_chw);
    tcase_add_test(tc, test_image_to_tensor_rejects_wrong_size_or_length);
    suite_add_tcase(s, tc);

    tc = tcase_create("preprocess");
    tcase_add_test(tc, test_image_preprocess_equals_the_three_steps);
    tcase_add_test(tc, test_image_preprocess_rows_hands_over_every_row_and_the_same_tensor);
    tcase_add_test(tc, test_image_preprocess_rejects_invalid_input);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(preprocess_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
