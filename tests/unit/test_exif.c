/* Unit tests of lib/image/exif.c: the Orientation tag parser, the eight orientations, and
 * orientation applied by the decoders (JPEG APP1, PNG eXIf). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <png.h>

#include "bcd.h"
#include "image/exif.h"
#include "image/image_internal.h"

static const char *img_path(const char *rel)
{
    static char bufs[4][1024];
    static int next;
    char *b = bufs[next++ % 4];
    snprintf(b, sizeof bufs[0], "%s/images/%s", BCD_TESTDATA_DIR, rel);
    return b;
}

static bcd_ctx *new_ctx(void)
{
    bcd_ctx *ctx = NULL;
    ck_assert_int_eq(bcd_ctx_new(&ctx), BCD_OK);
    return ctx;
}

static bool same_pixels(const bcd_image *a, const bcd_image *b)
{
    return a->width == b->width && a->height == b->height && a->channels == b->channels &&
           memcmp(a->data, b->data, (size_t)a->width * a->height * a->channels) == 0;
}

/* ---- the parser -------------------------------------------------------------------- */

/* A minimal TIFF block: header, IFD0 at 8 with one entry (tag, type, count, value). */
static size_t make_tiff(uint8_t *b, bool le, uint16_t tag, uint16_t type, uint32_t count, uint32_t value)
{
    size_t n = 0;
#define PUT16(v) (le ? (b[n] = (uint8_t)(v), b[n + 1] = (uint8_t)((v) >> 8)) \
                     : (b[n] = (uint8_t)((v) >> 8), b[n + 1] = (uint8_t)(v)), n += 2)
#define PUT32(v) (le ? (PUT16((v) & 0xFFFF), PUT16((v) >> 16)) : (PUT16((v) >> 16), PUT16((v) & 0xFFFF)))
    b[n++] = le ? 'I' : 'M';
    b[n++] = le ? 'I' : 'M';
    PUT16(42);
    PUT32(8u);
    PUT16(1);
    PUT16(tag);
    PUT16(type);
    PUT32(count);
    if (type == 3) { /* a SHORT sits in the first two bytes of the value field */
        PUT16(value);
        PUT16(0);
    } else {
        PUT32(value);
    }
    PUT32(0u); /* no next IFD */
#undef PUT16
#undef PUT32
    return n;
}

START_TEST(test_exif_orientation_both_byte_orders)
{
    uint8_t b[64];
    for (int le = 0; le <= 1; le++) {
        for (uint32_t v = 1; v <= 8; v++) {
            size_t n = make_tiff(b, le, 0x0112, 3, 1, v);
            ck_assert_int_eq(bcd__exif_orientation(b, n), (int)v);
        }
        /* a LONG holding the value is accepted as well */
        size_t n = make_tiff(b, le, 0x0112, 4, 1, 6);
        ck_assert_int_eq(bcd__exif_orientation(b, n), 6);
    }
    /* the big-endian form byte for byte */
    static const uint8_t mm[] = { 'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 8, 0, 0, 0, 0, 0, 0 };
    ck_assert_int_eq(bcd__exif_orientation(mm, sizeof mm), 8);
    static const uint8_t ii[] = { 'I', 'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0 };
    ck_assert_int_eq(bcd__exif_orientation(ii, sizeof ii), 5);
}
END_TEST

START_TEST(test_exif_orientation_invalid_values_mean_upright)
{
    uint8_t b[64];
    ck_assert_int_eq(bcd__exif_orientation(b, make_tiff(b, false, 0x0112, 3, 1, 0)), 1);
    ck_assert_int_eq(bcd__exif_orientation(b, make_tiff(b, false, 0x0112, 3, 1, 9)), 1);
    ck_assert_int_eq(bcd__exif_orientation(b, make_tiff(b, true, 0x0112, 3, 1, 0xFFFF)), 1);
    ck_assert_int_eq(bcd__exif_orientation(b, make_tiff(b, true, 0x0112, 3, 2, 6)), 1);  /* count 2 */
    ck_assert_int_eq(bcd__exif_orientation(b, make_tiff(b, true, 0x0112, 2, 1, 6)), 1);  /* ASCII */
    ck_assert_int_eq(bcd__exif_orientation(b, make_tiff(b, true, 0x0110, 3, 1, 6)), 1);  /* other tag */
    ck_assert_int_eq(bcd__exif_orientation(NULL, 0), 1);
}
END_TEST

/* Malicious offsets and counts: never read outside the block (ASan checks this), and the
 * answer is "upright". Each case is copied to a buffer of exactly its length. */
START_TEST(test_exif_orientation_bounds_checked)
{
    uint8_t good[64];
    size_t n = make_tiff(good, false, 0x0112, 3, 1, 6);
    ck_assert_int_eq(bcd__exif_orientation(good, n), 6);
    /* every truncation of a good block */
    for (size_t cut = 0; cut < n; cut++) {
        uint8_t *b = malloc(cut ? cut : 1);
        memcpy(b, good, cut);
        int o = bcd__exif_orientation(b, cut);
        /* the entry's value ends at byte 22; anything shorter cannot hold it */
        ck_assert_int_eq(o, cut >= 22 ? 6 : 1);
        free(b);
    }
    struct {
        size_t at;
        uint8_t bytes[4];
        size_t len;
    } patches[] = {
        { 4, { 0xFF, 0xFF, 0xFF, 0xFF }, 4 }, /* IFD offset far outside */
        { 4, { 0xFF, 0xFF, 0xFF, 0xF8 }, 4 }, /* ... and one that wraps when 8 is added */
        { 4, { 0, 0, 0, 25 }, 4 },             /* IFD at the last byte */
        { 4, { 0, 0, 0, 0 }, 4 },              /* IFD inside the header */
        { 4, { 0, 0, 0, 4 }, 4 },
        { 8, { 0xFF, 0xFF }, 2 },              /* 65535 entries, one present */
        { 2, { 0, 43 }, 2 },                   /* not TIFF */
        { 0, { 'M', 'I' }, 2 },                /* unknown byte order */
    };
    for (size_t i = 0; i < sizeof patches / sizeof patches[0]; i++) {
        uint8_t *b = malloc(n);
        memcpy(b, good, n);
        memcpy(b + patches[i].at, patches[i].bytes, patches[i].len);
        int o = bcd__exif_orientation(b, n);
        if (patches[i].at == 8) /* the one real entry is still found first */
            ck_assert_int_eq(o, 6);
        else
            ck_assert_msg(o == 1, "patch %zu gave %d", i, o);
        free(b);
    }
    /* many entries claimed, none present: the loop stops at the end of the block */
    uint8_t *b = malloc(10);
    memcpy(b, "MM\0*\0\0\0\x08\xff\xff", 10);
    ck_assert_int_eq(bcd__exif_orientation(b, 10), 1);
    free(b);
}
END_TEST

START_TEST(test_exif_orientation_app1)
{
    uint8_t b[80];
    memcpy(b, "Exif\0\0", 6);
    size_t n = 6 + make_tiff(b + 6, true, 0x0112, 3, 1, 3);
    ck_assert_int_eq(bcd__exif_orientation_app1(b, n), 3);
    /* not EXIF (XMP lives in APP1 too): 0, so the caller looks further */
    ck_assert_int_eq(bcd__exif_orientation_app1((const uint8_t *)"http://ns.adobe.com/xap/1.0/", 28), 0);
    ck_assert_int_eq(bcd__exif_orientation_app1(b, 5), 0);
    ck_assert_int_eq(bcd__exif_orientation_app1(NULL, 0), 0);
    /* EXIF but broken: 1 */
    ck_assert_int_eq(bcd__exif_orientation_app1(b, 10), 1);
}
END_TEST

/* ---- the transforms ----------------------------------------------------------------- */

/* A w x h test image whose pixel (x, y) holds (x, y, 7). */
static bcd_image *coord_image(uint32_t w, uint32_t h)
{
    bcd_image *img = bcd__image_new(w, h, 3);
    ck_assert_ptr_nonnull(img);
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++) {
            uint8_t *p = img->data + ((size_t)y * w + x) * 3;
            p[0] = (uint8_t)x, p[1] = (uint8_t)y, p[2] = 7;
        }
    return img;
}

/* The 3x2 picture
 *     a b c
 *     d e f
 * after each orientation, written out by hand from the EXIF definitions
 * (as letters: a = (0,0), b = (1,0), ..., f = (2,1)). */
START_TEST(test_exif_orient_all_eight)
{
    static const struct {
        int o;
        uint32_t w, h;
        const char *rows;
    } want[] = {
        { 1, 3, 2, "abcdef" }, { 2, 3, 2, "cbafed" }, { 3, 3, 2, "fedcba" }, { 4, 3, 2, "defabc" },
        { 5, 2, 3, "adbecf" }, { 6, 2, 3, "daebfc" }, { 7, 2, 3, "fcebda" }, { 8, 2, 3, "cfbead" },
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        bcd_image *img = coord_image(3, 2);
        ck_assert_int_eq(bcd__image_orient(&img, want[i].o), BCD_OK);
        ck_assert_uint_eq(img->width, want[i].w);
        ck_assert_uint_eq(img->height, want[i].h);
        for (size_t k = 0; k < 6; k++) {
            int letter = want[i].rows[k] - 'a';
            const uint8_t *p = img->data + k * 3;
            ck_assert_msg(p[0] == letter % 3 && p[1] == letter / 3 && p[2] == 7,
                          "orientation %d, pixel %zu is (%d,%d), want %c", want[i].o, k, p[0], p[1],
                          want[i].rows[k]);
        }
        bcd_image_free(img);
    }
    /* out-of-range values leave the image alone (the caller already mapped them to 1) */
    bcd_image *img = coord_image(3, 2), *ref = coord_image(3, 2);
    ck_assert_int_eq(bcd__image_orient(&img, 0), BCD_OK);
    ck_assert_int_eq(bcd__image_orient(&img, 9), BCD_OK);
    ck_assert(same_pixels(img, ref));
    bcd_image_free(img);
    bcd_image_free(ref);
}
END_TEST

/* Group laws on odd sizes, 1-pixel strips included: the mirrors, 180 and the two
 * diagonals undo themselves, 6 and 8 undo each other, four quarter turns are nothing. */
START_TEST(test_exif_orient_inverses_on_odd_sizes)
{
    static const int pairs[][2] = { { 2, 2 }, { 3, 3 }, { 4, 4 }, { 5, 5 }, { 7, 7 }, { 6, 8 }, { 8, 6 } };
    for (uint32_t w = 1; w <= 5; w++)
        for (uint32_t h = 1; h <= 4; h++) {
            bcd_image *ref = coord_image(w, h);
            for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
                bcd_image *img = coord_image(w, h);
                ck_assert_int_eq(bcd__image_orient(&img, pairs[i][0]), BCD_OK);
                ck_assert_int_eq(bcd__image_orient(&img, pairs[i][1]), BCD_OK);
                ck_assert_msg(same_pixels(img, ref), "%ux%u: %d then %d", w, h, pairs[i][0], pairs[i][1]);
                bcd_image_free(img);
            }
            bcd_image *img = coord_image(w, h);
            for (int k = 0; k < 4; k++)
                ck_assert_int_eq(bcd__image_orient(&img, 6), BCD_OK);
            ck_assert(same_pixels(img, ref));
            bcd_image_free(img);
            bcd_image_free(ref);
        }
}
END_TEST

/* ---- through the decoders ----------------------------------------------------------- */

/* Mean absolute difference after averaging 8x8 blocks: the _N files were encoded one by
 * one, so they only match approximately. Correct orientations give under 1.2 (PIL agrees),
 * wrong ones 39 or more. */
static double reduced_difference(const bcd_image *a, const bcd_image *b)
{
    ck_assert_uint_eq(a->width, b->width);
    ck_assert_uint_eq(a->height, b->height);
    const uint32_t bw = a->width / 8, bh = a->height / 8;
    double total = 0;
    for (uint32_t by = 0; by < bh; by++)
        for (uint32_t bx = 0; bx < bw; bx++)
            for (int c = 0; c < 3; c++) {
                long sa = 0, sb = 0;
                for (uint32_t y = by * 8; y < by * 8 + 8; y++)
                    for (uint32_t x = bx * 8; x < bx * 8 + 8; x++) {
                        size_t i = ((size_t)y * a->width + x) * 3 + (size_t)c;
                        sa += a->data[i];
                        sb += b->data[i];
                    }
                total += labs(sa - sb) / 64.0;
            }
    return total / ((double)bw * bh * 3);
}

START_TEST(test_exif_orientation_sample_photos)
{
    static const struct {
        const char *kind;
        uint32_t w, h;
    } kinds[] = { { "Landscape", 1800, 1200 }, { "Portrait", 1200, 1800 } };
    bcd_ctx *ctx = new_ctx();
    for (size_t k = 0; k < 2; k++) {
        char rel[128];
        snprintf(rel, sizeof rel, "exif-orientation/%s_1.jpg", kinds[k].kind);
        bcd_image *ref = NULL;
        ck_assert_int_eq(bcd_image_decode_file(&ref, ctx, img_path(rel)), BCD_OK);
        /* 0 is not a legal value: decoded as stored, no error */
        for (int n = 0; n <= 8; n++) {
            snprintf(rel, sizeof rel, "exif-orientation/%s_%d.jpg", kinds[k].kind, n);
            bcd_image *img = NULL;
            bcd_status st = bcd_image_decode_file(&img, ctx, img_path(rel));
            ck_assert_msg(st == BCD_OK, "%s: %s", rel, bcd_error_message(bcd_ctx_last_error(ctx)));
            ck_assert_msg(img->width == kinds[k].w && img->height == kinds[k].h, "%s: %ux%u", rel, img->width,
                          img->height);
            double d = reduced_difference(img, ref);
            ck_assert_msg(d < 3.0, "%s differs from _1 by %.2f", rel, d);
            bcd_image_free(img);
        }
        bcd_image_free(ref);
    }
    bcd_ctx_free(ctx);
}
END_TEST

/* PngSuite's eXIf sample carries orientation 1: decoded unchanged. */
START_TEST(test_exif_png_suite_sample)
{
    bcd_ctx *ctx = new_ctx();
    bcd_image *img = NULL;
    ck_assert_int_eq(bcd_image_decode_file(&img, ctx, img_path("pngsuite/exif2c08.png")), BCD_OK);
    ck_assert_uint_eq(img->width, 32);
    ck_assert_uint_eq(img->height, 32);
    bcd_image_free(img);
    bcd_ctx_free(ctx);
}
END_TEST

/* A JPEG with an APP1 "Exif" segment put right after SOI. */
static uint8_t *jpeg_with_app1(const uint8_t *jpg, size_t len, const uint8_t *payload, size_t plen, size_t *out_len)
{
    uint8_t *b = malloc(len + 4 + plen);
    ck_assert_ptr_nonnull(b);
    memcpy(b, jpg, 2); /* SOI */
    b[2] = 0xFF, b[3] = 0xE1;
    b[4] = (uint8_t)((plen + 2) >> 8), b[5] = (uint8_t)(plen + 2);
    memcpy(b + 6, payload, plen);
    memcpy(b + 6 + plen, jpg + 2, len - 2);
    *out_len = len + 4 + plen;
    return b;
}

START_TEST(test_exif_jpeg_app1_applied)
{
    bcd_ctx *ctx = new_ctx();
    FILE *f = fopen(img_path("jpeg/baseline-420-testorig.jpg"), "rb");
    ck_assert_ptr_nonnull(f);
    uint8_t jpg[8192];
    size_t len = fread(jpg, 1, sizeof jpg, f);
    fclose(f);
    ck_assert_uint_gt(len, 1000);
    bcd_image *plain = NULL;
    ck_assert_int_eq(bcd_image_decode(&plain, ctx, jpg, len), BCD_OK);

    for (int le = 0; le <= 1; le++)
        for (int o = 0; o <= 9; o++) {
            uint8_t payload[64];
            memcpy(payload, "Exif\0\0", 6);
            size_t plen = 6 + make_tiff(payload + 6, le, 0x0112, 3, 1, (uint32_t)o);
            size_t n;
            uint8_t *b = jpeg_with_app1(jpg, len, payload, plen, &n);
            bcd_image *img = NULL;
            ck_assert_int_eq(bcd_image_decode(&img, ctx, b, n), BCD_OK);
            /* same compressed data, so the pixels match the plain decode turned exactly */
            bcd_image *want = bcd__image_new(plain->width, plain->height, 3);
            ck_assert_ptr_nonnull(want);
            memcpy(want->data, plain->data, (size_t)plain->width * plain->height * 3);
            ck_assert_int_eq(bcd__image_orient(&want, o), BCD_OK);
            ck_assert_msg(same_pixels(img, want), "byte order %s, orientation %d", le ? "II" : "MM", o);
            bcd_image_free(want);
            bcd_image_free(img);
            free(b);
        }

    /* a hostile EXIF block (IFD offset far away) is ignored, not fatal */
    uint8_t payload[64];
    memcpy(payload, "Exif\0\0", 6);
    size_t plen = 6 + make_tiff(payload + 6, false, 0x0112, 3, 1, 6);
    memcpy(payload + 6 + 4, "\x7f\xff\xff\xff", 4);
    size_t n;
    uint8_t *b = jpeg_with_app1(jpg, len, payload, plen, &n);
    bcd_image *img = NULL;
    ck_assert_int_eq(bcd_image_decode(&img, ctx, b, n), BCD_OK);
    ck_assert(same_pixels(img, plain));
    bcd_image_free(img);
    free(b);

    /* an XMP APP1 first, then the EXIF one: the EXIF one counts */
    static const char xmp[] = "http://ns.adobe.com/xap/1.0/\0<x:xmpmeta/>";
    plen = 6 + make_tiff(payload + 6, true, 0x0112, 3, 1, 8);
    uint8_t *inner = jpeg_with_app1(jpg, len, payload, plen, &n);
    size_t n2;
    b = jpeg_with_app1(inner, n, (const uint8_t *)xmp, sizeof xmp, &n2);
    ck_assert_int_eq(bcd_image_decode(&img, ctx, b, n2), BCD_OK);
    ck_assert_uint_eq(img->width, plain->height);
    ck_assert_uint_eq(img->height, plain->width);
    bcd_image_free(img);
    free(b);
    free(inner);
    bcd_image_free(plain);
    bcd_ctx_free(ctx);
}
END_TEST

/* Write a PNG of img carrying an eXIf chunk with orientation o, before the image data or
 * after it. */
static void write_png_with_exif(const char *path, const bcd_image *img, int o, bool after_idat)
{
    uint8_t tiff[32];
    size_t n = make_tiff(tiff, false, 0x0112, 3, 1, (uint32_t)o);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    ck_assert_ptr_nonnull(info);
    png_init_io(png, f);
    png_set_IHDR(png, info, img->width, img->height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (!after_idat)
        png_set_eXIf_1(png, info, (png_uint_32)n, tiff);
    png_write_info(png, info);
    for (uint32_t y = 0; y < img->height; y++)
        png_write_row(png, img->data + (size_t)y * img->width * 3);
    if (after_idat)
        png_set_eXIf_1(png, info, (png_uint_32)n, tiff);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    ck_assert_int_eq(fclose(f), 0);
}

START_TEST(test_exif_png_exif_chunk_applied)
{
    char path[] = "/tmp/bcd-exif-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    bcd_ctx *ctx = new_ctx();
    for (int after = 0; after <= 1; after++)
        for (int o = 1; o <= 8; o++) {
            bcd_image *src = coord_image(5, 3);
            write_png_with_exif(path, src, o, after);
            bcd_image *img = NULL;
            ck_assert_int_eq(bcd_image_decode_file(&img, ctx, path), BCD_OK);
            ck_assert_int_eq(bcd__image_orient(&src, o), BCD_OK);
            ck_assert_msg(same_pixels(img, src), "orientation %d %s IDAT", o, after ? "after" : "before");
            bcd_image_free(img);
            bcd_image_free(src);
        }
    bcd_ctx_free(ctx);
    remove(path);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("exif");
    TCase *tc = tcase_create("exif");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_exif_orientation_both_byte_orders);
    tcase_add_test(tc, test_exif_orientation_invalid_values_mean_upright);
    tcase_add_test(tc, test_exif_orientation_bounds_checked);
    tcase_add_test(tc, test_exif_orientation_app1);
    tcase_add_test(tc, test_exif_orient_all_eight);
    tcase_add_test(tc, test_exif_orient_inverses_on_odd_sizes);
    tcase_add_test(tc, test_exif_orientation_sample_photos);
    tcase_add_test(tc, test_exif_png_suite_sample);
    tcase_add_test(tc, test_exif_jpeg_app1_applied);
    tcase_add_test(tc, test_exif_png_exif_chunk_applied);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
