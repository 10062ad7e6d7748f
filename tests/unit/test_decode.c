/* Unit tests of lib/image/decode.c and encode.c: JPEG and PNG decoding, limits, format
 * sniffing, failure behaviour, reduced-scale JPEG decoding, PNG writing. Test images: see
 * shared/testdata/README.md. */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>
#include <png.h>

#include "bcd.h"
#include "image/image_internal.h"

static char tmpdir[] = "/tmp/bcd-decode-XXXXXX";

/* A marker that must survive a failed call: *out stays untouched on failure. */
static bcd_image sentinel_img;
#define SENTINEL (&sentinel_img)

/* Path of a test image, relative to testdata/images; a small ring of buffers so that two
 * paths can be alive at once. */
static const char *img_path(const char *rel)
{
    static char bufs[4][1024];
    static int next;
    char *b = bufs[next++ % 4];
    snprintf(b, sizeof bufs[0], "%s/images/%s", BCD_TESTDATA_DIR, rel);
    return b;
}

static const char *tmp_path(const char *name)
{
    static char b[1024];
    snprintf(b, sizeof b, "%s/%s", tmpdir, name);
    return b;
}

static bcd_ctx *new_ctx(void)
{
    bcd_ctx *ctx = NULL;
    ck_assert_int_eq(bcd_ctx_new(&ctx), BCD_OK);
    return ctx;
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    ck_assert_int_ge(n, 0);
    rewind(f);
    unsigned char *buf = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void spill(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

/* Decode a test image that must decode, checking the size and the RGB layout. */
static bcd_image *decode_ok(bcd_ctx *ctx, const char *rel, uint32_t w, uint32_t h)
{
    bcd_image *img = NULL;
    bcd_status st = bcd_image_decode_file(&img, ctx, img_path(rel));
    ck_assert_msg(st == BCD_OK, "%s: %s (%s)", rel, bcd_strerror(st),
                  bcd_error_message(bcd_ctx_last_error(ctx)));
    ck_assert_ptr_null(bcd_ctx_last_error(ctx));
    ck_assert_ptr_nonnull(img);
    ck_assert_msg(img->width == w && img->height == h, "%s: got %ux%u, want %ux%u", rel, img->width,
                  img->height, w, h);
    ck_assert_uint_eq(img->channels, 3);
    return img;
}

/* Decode a test image that must be refused; returns the error code for further checks. */
static const char *decode_fails(bcd_ctx *ctx, const char *rel, bcd_status want)
{
    bcd_image *img = SENTINEL;
    bcd_status st = bcd_image_decode_file(&img, ctx, img_path(rel));
    ck_assert_msg(st == want, "%s: got %s, want %s (%s)", rel, bcd_status_name(st), bcd_status_name(want),
                  bcd_error_message(bcd_ctx_last_error(ctx)));
    ck_assert_ptr_eq(img, SENTINEL);
    const bcd_error *e = bcd_ctx_last_error(ctx);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(bcd_error_status(e), want);
    return bcd_error_code(e);
}

static const uint8_t *px(const bcd_image *img, uint32_t x, uint32_t y)
{
    return img->data + ((size_t)y * img->width + x) * 3;
}

static void assert_px_near(const bcd_image *img, uint32_t x, uint32_t y, int r, int g, int b, int tol)
{
    const uint8_t *p = px(img, x, y);
    ck_assert_msg(abs(p[0] - r) <= tol && abs(p[1] - g) <= tol && abs(p[2] - b) <= tol,
                  "pixel (%u,%u) = (%d,%d,%d), want (%d,%d,%d) +-%d", x, y, p[0], p[1], p[2], r, g, b, tol);
}

static bool same_pixels(const bcd_image *a, const bcd_image *b)
{
    return a->width == b->width && a->height == b->height && a->channels == b->channels &&
           memcmp(a->data, b->data, (size_t)a->width * a->height * a->channels) == 0;
}

/* FNV-1a over 16 bits of width and height, then the RGB bytes; the expected values below
 * were computed the same way in Python from PIL's Image.open(f).convert("RGB"). */
static uint64_t image_hash(const bcd_image *img)
{
    uint64_t x = 0xcbf29ce484222325ull;
    const uint8_t head[4] = { (uint8_t)img->width, (uint8_t)(img->width >> 8), (uint8_t)img->height,
                              (uint8_t)(img->height >> 8) };
    for (size_t i = 0; i < 4; i++)
        x = (x ^ head[i]) * 0x100000001b3ull;
    size_t n = (size_t)img->width * img->height * 3;
    for (size_t i = 0; i < n; i++)
        x = (x ^ img->data[i]) * 0x100000001b3ull;
    return x;
}

/* ---- PNG ------------------------------------------------------------------------- */

/* Every valid PngSuite image with its size and the hash of PIL's convert("RGB") output.
 * Exception: for 16-bit grey PIL opens mode "I" and convert() clamps to 255 (nearly
 * white); libbcd keeps the high byte, like every other 16-bit type, so for those files the
 * hash is of (value >> 8) expanded to RGB, also computed with PIL. */
static const struct {
    const char *name;
    uint32_t w, h;
    uint64_t hash;
} pngsuite[] = {
    { "PngSuite.png", 256, 256, 0xf8820b9da0bfea46ull }, /* PIL mode RGB */
    { "basi0g01.png", 32, 32, 0xedd10901f4de3c73ull }, /* PIL mode 1 */
    { "basi0g02.png", 32, 32, 0x87bdbb5f6f237cf5ull }, /* PIL mode L */
    { "basi0g04.png", 32, 32, 0x38dabc9df5639e75ull }, /* PIL mode L */
    { "basi0g08.png", 32, 32, 0x8f8f1fcc783dbe51ull }, /* PIL mode L */
    { "basi0g16.png", 32, 32, 0x232df52ff332d499ull }, /* 16-bit grey: high byte */
    { "basi2c08.png", 32, 32, 0x6bffea5c2cac60f5ull }, /* PIL mode RGB */
    { "basi2c16.png", 32, 32, 0x5cff1cbc7fc70e85ull }, /* PIL mode RGB */
    { "basi3p01.png", 32, 32, 0x121284d9781bfef5ull }, /* PIL mode P */
    { "basi3p02.png", 32, 32, 0x358378abf16295f5ull }, /* PIL mode P */
    { "basi3p04.png", 32, 32, 0x1c1428d4dff75555ull }, /* PIL mode P */
    { "basi3p08.png", 32, 32, 0xb3895e2199cb0155ull }, /* PIL mode P */
    { "basi4a08.png", 32, 32, 0xfdf653672cddc695ull }, /* PIL mode LA */
    { "basi4a16.png", 32, 32, 0x9f3a71bb19410d0dull }, /* PIL mode RGBA */
    { "basi6a08.png", 32, 32, 0x009a0bf9077a8675ull }, /* PIL mode RGBA */
    { "basi6a16.png", 32, 32, 0x7fd828ae10b37045ull }, /* PIL mode RGBA */
    { "basn0g01.png", 32, 32, 0xedd10901f4de3c73ull }, /* PIL mode 1 */
    { "basn0g02.png", 32, 32, 0x87bdbb5f6f237cf5ull }, /* PIL mode L */
    { "basn0g04.png", 32, 32, 0x38dabc9df5639e75ull }, /* PIL mode L */
    { "basn0g08.png", 32, 32, 0x8f8f1fcc783dbe51ull }, /* PIL mode L */
    { "basn0g16.png", 32, 32, 0x232df52ff332d499ull }, /* 16-bit grey: high byte */
    { "basn2c08.png", 32, 32, 0x6bffea5c2cac60f5ull }, /* PIL mode RGB */
    { "basn2c16.png", 32, 32, 0x5cff1cbc7fc70e85ull }, /* PIL mode RGB */
    { "basn3p01.png", 32, 32, 0x121284d9781bfef5ull }, /* PIL mode P */
    { "basn3p02.png", 32, 32, 0x358378abf16295f5ull }, /* PIL mode P */
    { "basn3p04.png", 32, 32, 0x1c1428d4dff75555ull }, /* PIL mode P */
    { "basn3p08.png", 32, 32, 0xb3895e2199cb0155ull }, /* PIL mode P */
    { "basn4a08.png", 32, 32, 0xfdf653672cddc695ull }, /* PIL mode LA */
    { "basn4a16.png", 32, 32, 0x9f3a71bb19410d0dull }, /* PIL mode RGBA */
    { "basn6a08.png", 32, 32, 0x009a0bf9077a8675ull }, /* PIL mode RGBA */
    { "basn6a16.png", 32, 32, 0x7fd828ae10b37045ull }, /* PIL mode RGBA */
    { "bgai4a08.png", 32, 32, 0xfdf653672cddc695ull }, /* PIL mode LA */
    { "bgai4a16.png", 32, 32, 0x9f3a71bb19410d0dull }, /* PIL mode RGBA */
    { "bgan6a08.png", 32, 32, 0x009a0bf9077a8675ull }, /* PIL mode RGBA */
    { "bgan6a16.png", 32, 32, 0x7fd828ae10b37045ull }, /* PIL mode RGBA */
    { "bgbn4a08.png", 32, 32, 0xfdf653672cddc695ull }, /* PIL mode LA */
    { "bggn4a16.png", 32, 32, 0x9f3a71bb19410d0dull }, /* PIL mode RGBA */
    { "bgwn6a08.png", 32, 32, 0x009a0bf9077a8675ull }, /* PIL mode RGBA */
    { "bgyn6a16.png", 32, 32, 0x7fd828ae10b37045ull }, /* PIL mode RGBA */
    { "ccwn2c08.png", 32, 32, 0x1058c690ed79c788ull }, /* PIL mode RGB */
    { "ccwn3p08.png", 32, 32, 0x3457e86dd662a150ull }, /* PIL mode P */
    { "cdfn2c08.png", 8, 32, 0x45040b6399b79e77ull }, /* PIL mode RGB */
    { "cdhn2c08.png", 32, 8, 0x672f7edfaf67a72dull }, /* PIL mode RGB */
    { "cdsn2c08.png", 8, 8, 0x658bf80d3ced2ee1ull }, /* PIL mode RGB */
    { "cdun2c08.png", 32, 32, 0x3d6da8fb5bfbfae1ull }, /* PIL mode RGB */
    { "ch1n3p04.png", 32, 32, 0x1c1428d4dff75555ull }, /* PIL mode P */
    { "ch2n3p08.png", 32, 32, 0xb3895e2199cb0155ull }, /* PIL mode P */
    { "cm0n0g04.png", 32, 32, 0xc5de283c34016fdaull }, /* PIL mode L */
    { "cm7n0g04.png", 32, 32, 0xc5de283c34016fdaull }, /* PIL mode L */
    { "cm9n0g04.png", 32, 32, 0xc5de283c34016fdaull }, /* PIL mode L */
    { "cs3n2c16.png", 32, 32, 0xa81434dfd78df7f5ull }, /* PIL mode RGB */
    { "cs3n3p08.png", 32, 32, 0x29e751d9f1af8e75ull }, /* PIL mode P */
    { "cs5n2c08.png", 32, 32, 0xe17e353d7cb4e375ull }, /* PIL mode RGB */
    { "cs5n3p08.png", 32, 32, 0xe17e353d7cb4e375ull }, /* PIL mode P */
    { "cs8n2c08.png", 32, 32, 0xa81434dfd78df7f5ull }, /* PIL mode RGB */
    { "cs8n3p08.png", 32, 32, 0xa81434dfd78df7f5ull }, /* PIL mode P */
    { "ct0n0g04.png", 32, 32, 0xc5de283c34016fdaull }, /* PIL mode L */
    { "ct1n0g04.png", 32, 32, 0xc5de283c34016fdaull }, /* PIL mode L */
    { "cten0g04.png", 32, 32, 0x847a3ca10f720c35ull }, /* PIL mode L */
    { "ctfn0g04.png", 32, 32, 0x8264e47af0af21f5ull }, /* PIL mode L */
    { "ctgn0g04.png", 32, 32, 0x8f92bfafac6d21f5ull }, /* PIL mode L */
    { "cthn0g04.png", 32, 32, 0xaaaf358b560e1ea5ull }, /* PIL mode L */
    { "ctjn0g04.png", 32, 32, 0x17c271cf4bb106e5ull }, /* PIL mode L */
    { "ctzn0g04.png", 32, 32, 0xc5de283c34016fdaull }, /* PIL mode L */
    { "exif2c08.png", 32, 32, 0x05fa44709c48e659ull }, /* PIL mode RGB */
    { "f00n0g08.png", 32, 32, 0xc9560d829e2d83a3ull }, /* PIL mode L */
    { "f00n2c08.png", 32, 32, 0x4c0c0985f9249660ull }, /* PIL mode RGB */
    { "f01n0g08.png", 32, 32, 0x594205dc65cd13f4ull }, /* PIL mode L */
    { "f01n2c08.png", 32, 32, 0xf45487ca631b441eull }, /* PIL mode RGB */
    { "f02n0g08.png", 32, 32, 0x3bfd596e6196167aull }, /* PIL mode L */
    { "f02n2c08.png", 32, 32, 0x7ebc7eb4a918b496ull }, /* PIL mode RGB */
    { "f03n0g08.png", 32, 32, 0xfae349291f072164ull }, /* PIL mode L */
    { "f03n2c08.png", 32, 32, 0x6b7116acc411426eull }, /* PIL mode RGB */
    { "f04n0g08.png", 32, 32, 0xab8df16cd407acf7ull }, /* PIL mode L */
    { "f04n2c08.png", 32, 32, 0x05101a86f661cbecull }, /* PIL mode RGB */
    { "f99n0g04.png", 32, 32, 0xb48adf2971795cc9ull }, /* PIL mode L */
    { "g03n0g16.png", 32, 32, 0x3df91c2cd67bf89full }, /* 16-bit grey: high byte */
    { "g03n2c08.png", 32, 32, 0x239bdd2e8b9b9718ull }, /* PIL mode RGB */
    { "g03n3p04.png", 32, 32, 0x08e2ba09958518d8ull }, /* PIL mode P */
    { "g04n0g16.png", 32, 32, 0xa2b08bc2cf60c4c4ull }, /* 16-bit grey: high byte */
    { "g04n2c08.png", 32, 32, 0xac3adb4f2f872874ull }, /* PIL mode RGB */
    { "g04n3p04.png", 32, 32, 0x530d0645b65ba8abull }, /* PIL mode P */
    { "g05n0g16.png", 32, 32, 0x3fd3b0aa893546e9ull }, /* 16-bit grey: high byte */
    { "g05n2c08.png", 32, 32, 0x25d93669a9de9b86ull }, /* PIL mode RGB */
    { "g05n3p04.png", 32, 32, 0x3abab21052ae22d6ull }, /* PIL mode P */
    { "g07n0g16.png", 32, 32, 0x584e31a9d509b61eull }, /* 16-bit grey: high byte */
    { "g07n2c08.png", 32, 32, 0x4c14750a311657e0ull }, /* PIL mode RGB */
    { "g07n3p04.png", 32, 32, 0x2b8d69b468592768ull }, /* PIL mode P */
    { "g10n0g16.png", 32, 32, 0x04eea2c76181984dull }, /* 16-bit grey: high byte */
    { "g10n2c08.png", 32, 32, 0x7a9cee232d1b1181ull }, /* PIL mode RGB */
    { "g10n3p04.png", 32, 32, 0x040ef51f75c596fcull }, /* PIL mode P */
    { "g25n0g16.png", 32, 32, 0x7f41629afaeda931ull }, /* 16-bit grey: high byte */
    { "g25n2c08.png", 32, 32, 0x790dffc18f8ab1fcull }, /* PIL mode RGB */
    { "g25n3p04.png", 32, 32, 0x184d03aeda4ad6f8ull }, /* PIL mode P */
    { "oi1n0g16.png", 32, 32, 0x232df52ff332d499ull }, /* 16-bit grey: high byte */
    { "oi1n2c16.png", 32, 32, 0x5cff1cbc7fc70e85ull }, /* PIL mode RGB */
    { "oi2n0g16.png", 32, 32, 0x232df52ff332d499ull }, /* 16-bit grey: high byte */
    { "oi2n2c16.png", 32, 32, 0x5cff1cbc7fc70e85ull }, /* PIL mode RGB */
    { "oi4n0g16.png", 32, 32, 0x232df52ff332d499ull }, /* 16-bit grey: high byte */
    { "oi4n2c16.png", 32, 32, 0x5cff1cbc7fc70e85ull }, /* PIL mode RGB */
    { "oi9n0g16.png", 32, 32, 0x232df52ff332d499ull }, /* 16-bit grey: high byte */
    { "oi9n2c16.png", 32, 32, 0x5cff1cbc7fc70e85ull }, /* PIL mode RGB */
    { "pp0n2c16.png", 32, 32, 0x5cff1cbc7fc70e85ull }, /* PIL mode RGB */
    { "pp0n6a08.png", 32, 32, 0x6bffea5c2cac60f5ull }, /* PIL mode RGBA */
    { "ps1n0g08.png", 32, 32, 0x8f8f1fcc783dbe51ull }, /* PIL mode L */
    { "ps1n2c16.png", 32, 32, 0x5cff1cbc7fc70e85ull }, /* PIL mode RGB */
    { "ps2n0g08.png", 32, 32, 0x8f8f1fcc783dbe51ull }, /* PIL mode L */
    { "ps2n2c16.png", 32, 32, 0x5cff1cbc7fc70e85ull }, /* PIL mode RGB */
    { "s01i3p01.png", 1, 1, 0xbee756b4e202b91eull }, /* PIL mode P */
    { "s01n3p01.png", 1, 1, 0xbee756b4e202b91eull }, /* PIL mode P */
    { "s02i3p01.png", 2, 2, 0xf84afbcb924f4685ull }, /* PIL mode P */
    { "s02n3p01.png", 2, 2, 0xf84afbcb924f4685ull }, /* PIL mode P */
    { "s03i3p01.png", 3, 3, 0xa3a9f3741cb49259ull }, /* PIL mode P */
    { "s03n3p01.png", 3, 3, 0xa3a9f3741cb49259ull }, /* PIL mode P */
    { "s04i3p01.png", 4, 4, 0xc822a6fb65b15485ull }, /* PIL mode P */
    { "s04n3p01.png", 4, 4, 0xc822a6fb65b15485ull }, /* PIL mode P */
    { "s05i3p02.png", 5, 5, 0x6bcc59f6f56a1535ull }, /* PIL mode P */
    { "s05n3p02.png", 5, 5, 0x6bcc59f6f56a1535ull }, /* PIL mode P */
    { "s06i3p02.png", 6, 6, 0xc89f867870088a39ull }, /* PIL mode P */
    { "s06n3p02.png", 6, 6, 0xc89f867870088a39ull }, /* PIL mode P */
    { "s07i3p02.png", 7, 7, 0x251f38d820b2daefull }, /* PIL mode P */
    { "s07n3p02.png", 7, 7, 0x251f38d820b2daefull }, /* PIL mode P */
    { "s08i3p02.png", 8, 8, 0x36147abb135a13c9ull }, /* PIL mode P */
    { "s08n3p02.png", 8, 8, 0x36147abb135a13c9ull }, /* PIL mode P */
    { "s09i3p02.png", 9, 9, 0x9f95adc77b392078ull }, /* PIL mode P */
    { "s09n3p02.png", 9, 9, 0x9f95adc77b392078ull }, /* PIL mode P */
    { "s32i3p04.png", 32, 32, 0x142943ac2df51623ull }, /* PIL mode P */
    { "s32n3p04.png", 32, 32, 0x142943ac2df51623ull }, /* PIL mode P */
    { "s33i3p04.png", 33, 33, 0x55c35c31e0187e26ull }, /* PIL mode P */
    { "s33n3p04.png", 33, 33, 0x55c35c31e0187e26ull }, /* PIL mode P */
    { "s34i3p04.png", 34, 34, 0xc972cd6dd080ee35ull }, /* PIL mode P */
    { "s34n3p04.png", 34, 34, 0xc972cd6dd080ee35ull }, /* PIL mode P */
    { "s35i3p04.png", 35, 35, 0x6c0f088c718b8d1dull }, /* PIL mode P */
    { "s35n3p04.png", 35, 35, 0x6c0f088c718b8d1dull }, /* PIL mode P */
    { "s36i3p04.png", 36, 36, 0x3aefb6322c759eb5ull }, /* PIL mode P */
    { "s36n3p04.png", 36, 36, 0x3aefb6322c759eb5ull }, /* PIL mode P */
    { "s37i3p04.png", 37, 37, 0x682518ce34fad66bull }, /* PIL mode P */
    { "s37n3p04.png", 37, 37, 0x682518ce34fad66bull }, /* PIL mode P */
    { "s38i3p04.png", 38, 38, 0x12ac47ed8111e2abull }, /* PIL mode P */
    { "s38n3p04.png", 38, 38, 0x12ac47ed8111e2abull }, /* PIL mode P */
    { "s39i3p04.png", 39, 39, 0x2afa187e2b1d59e8ull }, /* PIL mode P */
    { "s39n3p04.png", 39, 39, 0x2afa187e2b1d59e8ull }, /* PIL mode P */
    { "s40i3p04.png", 40, 40, 0xe6f36534907c7badull }, /* PIL mode P */
    { "s40n3p04.png", 40, 40, 0xe6f36534907c7badull }, /* PIL mode P */
    { "tbbn0g04.png", 32, 32, 0xc9c889d148f6eb92ull }, /* PIL mode L */
    { "tbbn2c16.png", 32, 32, 0x67d0e134ca7dc527ull }, /* PIL mode RGB */
    { "tbbn3p08.png", 32, 32, 0x09a9e81f855d5067ull }, /* PIL mode P */
    { "tbgn2c16.png", 32, 32, 0x67d0e134ca7dc527ull }, /* PIL mode RGB */
    { "tbgn3p08.png", 32, 32, 0x09a9e81f855d5067ull }, /* PIL mode P */
    { "tbrn2c08.png", 32, 32, 0x67d0e134ca7dc527ull }, /* PIL mode RGB */
    { "tbwn0g16.png", 32, 32, 0x6bb3122fe58e7f15ull }, /* 16-bit grey: high byte */
    { "tbwn3p08.png", 32, 32, 0x09a9e81f855d5067ull }, /* PIL mode P */
    { "tbyn3p08.png", 32, 32, 0x09a9e81f855d5067ull }, /* PIL mode P */
    { "tm3n3p02.png", 32, 32, 0x622f95890e730af5ull }, /* PIL mode P */
    { "tp0n0g08.png", 32, 32, 0x33d908df6084d30eull }, /* PIL mode L */
    { "tp0n2c08.png", 32, 32, 0x1670557325fffba7ull }, /* PIL mode RGB */
    { "tp0n3p08.png", 32, 32, 0xeeb7c9f31378e3e7ull }, /* PIL mode P */
    { "tp1n3p08.png", 32, 32, 0x09a9e81f855d5067ull }, /* PIL mode P */
    { "z00n2c08.png", 32, 32, 0x60e091892712445full }, /* PIL mode RGB */
    { "z03n2c08.png", 32, 32, 0x60e091892712445full }, /* PIL mode RGB */
    { "z06n2c08.png", 32, 32, 0x60e091892712445full }, /* PIL mode RGB */
    { "z09n2c08.png", 32, 32, 0x60e091892712445full }, /* PIL mode RGB */
};

START_TEST(test_image_decode_pngsuite_valid_images_match_pil)
{
    bcd_ctx *ctx = new_ctx();
    size_t n = sizeof pngsuite / sizeof pngsuite[0];
    ck_assert_uint_eq(n, 162);
    for (size_t i = 0; i < n; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "pngsuite/%s", pngsuite[i].name);
        bcd_image *img = decode_ok(ctx, rel, pngsuite[i].w, pngsuite[i].h);
        ck_assert_msg(image_hash(img) == pngsuite[i].hash, "%s: pixels differ from PIL", pngsuite[i].name);
        bcd_image_free(img);
    }
    bcd_ctx_free(ctx);
}
END_TEST

/* The table above covers the whole folder: every non-x PNG there is listed. */
START_TEST(test_image_decode_pngsuite_table_is_complete)
{
    DIR *d = opendir(img_path("pngsuite"));
    ck_assert_ptr_nonnull(d);
    size_t valid = 0, broken = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 4 || strcmp(e->d_name + len - 4, ".png") != 0)
            continue;
        if (e->d_name[0] == 'x') {
            broken++;
            continue;
        }
        bool listed = false;
        for (size_t i = 0; i < sizeof pngsuite / sizeof pngsuite[0] && !listed; i++)
            listed = strcmp(pngsuite[i].name, e->d_name) == 0;
        ck_assert_msg(listed, "%s is not in the table", e->d_name);
        valid++;
    }
    closedir(d);
    ck_assert_uint_eq(valid, 162);
    ck_assert_uint_eq(broken, 14);
}
END_TEST

START_TEST(test_image_decode_rejects_broken_pngsuite_images)
{
    static const char *const broken[] = {
        "xs1n0g01.png", "xs2n0g01.png", "xs4n0g01.png", "xs7n0g01.png", /* signature */
        "xcrn0g04.png", "xlfn0g04.png",                                 /* CR/LF damage */
        "xhdn0g08.png", "xcsn0g01.png",                                 /* CRC: IHDR, IDAT */
        "xc1n0g08.png", "xc9n2c08.png",                                 /* colour type */
        "xd0n2c08.png", "xd3n2c08.png", "xd9n2c08.png",                 /* bit depth */
        "xdtn0g01.png",                                                 /* no IDAT */
    };
    bcd_ctx *ctx = new_ctx();
    for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "pngsuite/%s", broken[i]);
        const char *code = decode_fails(ctx, rel, BCD_EFORMAT);
        /* the damaged signatures are not recognised as PNG at all */
        if (broken[i][1] == 's' || strcmp(broken[i], "xcrn0g04.png") == 0 || strcmp(broken[i], "xlfn0g04.png") == 0)
            ck_assert_str_eq(code, "unknown_format");
        else
            ck_assert_str_eq(code, "corrupt_image");
    }
    bcd_ctx_free(ctx);
}
END_TEST

/* Raw 8-bit RGBA rows as stored in the file, read with libpng and no transformation. */
static uint8_t *read_raw_rgba8(const char *path, uint32_t *w, uint32_t *h)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    ck_assert_ptr_nonnull(info);
    png_init_io(png, f);
    png_read_png(png, info, PNG_TRANSFORM_IDENTITY, NULL);
    ck_assert_int_eq(png_get_color_type(png, info), PNG_COLOR_TYPE_RGB_ALPHA);
    ck_assert_int_eq(png_get_bit_depth(png, info), 8);
    *w = png_get_image_width(png, info);
    *h = png_get_image_height(png, info);
    uint8_t *rgba = malloc((size_t)*w * *h * 4);
    ck_assert_ptr_nonnull(rgba);
    png_bytepp rows = png_get_rows(png, info);
    for (uint32_t y = 0; y < *h; y++)
        memcpy(rgba + (size_t)y * *w * 4, rows[y], (size_t)*w * 4);
    png_destroy_read_struct(&png, &info, NULL);
    fclose(f);
    return rgba;
}

/* Alpha is dropped, not blended: RGB equals the first three channels of the stored RGBA
 * (checked against PIL's convert("RGB") while writing; the hash table covers it too). */
START_TEST(test_image_decode_png_drops_alpha_without_blending)
{
    static const char *const files[] = { "pngsuite/basn6a08.png", "pngsuite/basi6a08.png", "pngsuite/bgwn6a08.png" };
    bcd_ctx *ctx = new_ctx();
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        uint32_t w, h;
        uint8_t *rgba = read_raw_rgba8(img_path(files[f]), &w, &h);
        bcd_image *img = decode_ok(ctx, files[f], w, h);
        size_t transparent = 0;
        for (size_t i = 0; i < (size_t)w * h; i++) {
            ck_assert_msg(memcmp(img->data + i * 3, rgba + i * 4, 3) == 0, "%s: pixel %zu", files[f], i);
            transparent += rgba[i * 4 + 3] < 255;
        }
        ck_assert_uint_gt(transparent, 0); /* the test means something */
        bcd_image_free(img);
        free(rgba);
    }
    /* spot values from PIL: basn6a08 (0,0) and (5,7); (0,0) is fully transparent */
    bcd_image *img = decode_ok(ctx, "pngsuite/basn6a08.png", 32, 32);
    assert_px_near(img, 0, 0, 255, 0, 8, 0);
    assert_px_near(img, 5, 7, 255, 223, 7, 0);
    bcd_image_free(img);
    bcd_ctx_free(ctx);
}
END_TEST

START_TEST(test_image_decode_png_16bit_keeps_high_byte)
{
    bcd_ctx *ctx = new_ctx();
    /* basn2c16: values from PIL's convert("RGB") */
    bcd_image *img = decode_ok(ctx, "pngsuite/basn2c16.png", 32, 32);
    assert_px_near(img, 0, 0, 255, 255, 0, 0);
    assert_px_near(img, 5, 7, 214, 198, 0, 0);
    assert_px_near(img, 31, 31, 0, 0, 255, 0);
    assert_px_near(img, 16, 3, 123, 231, 0, 0);
    bcd_image_free(img);
    /* basn6a16 (RGBA 16): PIL (16,3) = (122,255,0) */
    img = decode_ok(ctx, "pngsuite/basn6a16.png", 32, 32);
    assert_px_near(img, 16, 3, 122, 255, 0, 0);
    bcd_image_free(img);
    /* basn0g16: stored values 15104 and 38400 at (5,7) and (16,3) -> high bytes 59, 150
     * (PIL would give 255: it clamps 16-bit grey instead of scaling it) */
    img = decode_ok(ctx, "pngsuite/basn0g16.png", 32, 32);
    assert_px_near(img, 0, 0, 0, 0, 0, 0);
    assert_px_near(img, 5, 7, 59, 59, 59, 0);
    assert_px_near(img, 16, 3, 150, 150, 150, 0);
    bcd_image_free(img);
    bcd_ctx_free(ctx);
}
END_TEST

START_TEST(test_image_decode_png_interlaced_equals_plain)
{
    static const char *const pairs[][2] = {
        { "pngsuite/basn0g01.png", "pngsuite/basi0g01.png" }, { "pngsuite/basn0g04.png", "pngsuite/basi0g04.png" },
        { "pngsuite/basn2c16.png", "pngsuite/basi2c16.png" }, { "pngsuite/basn3p08.png", "pngsuite/basi3p08.png" },
        { "pngsuite/basn6a16.png", "pngsuite/basi6a16.png" }, { "pngsuite/s39n3p04.png", "pngsuite/s39i3p04.png" },
    };
    bcd_ctx *ctx = new_ctx();
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        bcd_image *a = NULL, *b = NULL;
        ck_assert_int_eq(bcd_image_decode_file(&a, ctx, img_path(pairs[i][0])), BCD_OK);
        ck_assert_int_eq(bcd_image_decode_file(&b, ctx, img_path(pairs[i][1])), BCD_OK);
        ck_assert_msg(same_pixels(a, b), "%s differs from %s", pairs[i][1], pairs[i][0]);
        bcd_image_free(a);
        bcd_image_free(b);
    }
    bcd_ctx_free(ctx);
}
END_TEST

/* ---- JPEG ------------------------------------------------------------------------ */

START_TEST(test_image_decode_jpeg_valid_files)
{
    static const struct {
        const char *name;
        uint32_t w, h;
    } good[] = {
        { "baseline-420-testorig.jpg", 227, 149 },     { "progressive-420-32x32.jpg", 32, 32 },
        { "progressive-444-650x470.jpg", 650, 470 },   { "restart-markers-444-33x33.jpg", 33, 33 },
        { "grayscale-32x32.jpg", 32, 32 },
        { "cmyk-adobe-32x32.jpg", 32, 32 },            { "cmyk-adobe-subsampled-256x256.jpg", 256, 256 },
        { "tiny-1x1.jpg", 1, 1 },
    };
    bcd_ctx *ctx = new_ctx();
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "jpeg/%s", good[i].name);
        bcd_image_free(decode_ok(ctx, rel, good[i].w, good[i].h));
    }
    /* sample pixels from PIL (same libjpeg-turbo, ISLOW IDCT, fancy upsampling); a small
     * tolerance leaves room for another libjpeg-turbo build */
    bcd_image *img = decode_ok(ctx, "jpeg/baseline-420-testorig.jpg", 227, 149);
    assert_px_near(img, 0, 0, 48, 47, 45, 2);
    assert_px_near(img, 100, 75, 223, 70, 72, 2);
    assert_px_near(img, 226, 148, 39, 46, 38, 2);
    bcd_image_free(img);
    img = decode_ok(ctx, "jpeg/grayscale-32x32.jpg", 32, 32);
    assert_px_near(img, 0, 0, 255, 255, 255, 2);
    assert_px_near(img, 16, 16, 123, 123, 123, 2);
    for (size_t i = 0; i < 32 * 32; i++) /* grey expanded: R = G = B */
        ck_assert(img->data[i * 3] == img->data[i * 3 + 1] && img->data[i * 3] == img->data[i * 3 + 2]);
    bcd_image_free(img);
    img = decode_ok(ctx, "jpeg/progressive-444-650x470.jpg", 650, 470);
    assert_px_near(img, 325, 235, 32, 42, 41, 2);
    bcd_image_free(img);
    bcd_ctx_free(ctx);
}
END_TEST

/* libjpeg-turbo's default build decodes arithmetic coding; a build without it must give a
 * clean "unsupported" error. */
START_TEST(test_image_decode_jpeg_arithmetic)
{
    bcd_ctx *ctx = new_ctx();
    bcd_image *img = NULL;
    bcd_status st = bcd_image_decode_file(&img, ctx, img_path("jpeg/arithmetic-420-testimgari.jpg"));
    if (st == BCD_OK) {
        ck_assert_uint_eq(img->width, 227);
        ck_assert_uint_eq(img->height, 149);
        assert_px_near(img, 100, 75, 223, 70, 72, 2);
        bcd_image_free(img);
    } else {
        ck_assert_int_eq(st, BCD_EFORMAT);
        ck_assert_str_eq(bcd_error_code(bcd_ctx_last_error(ctx)), "unsupported_image");
    }
    bcd_ctx_free(ctx);
}
END_TEST

/* CMYK is converted as PIL's convert("RGB") (inverted Adobe values, multiplicative
 * formula); expected values from PIL. */
START_TEST(test_image_decode_jpeg_cmyk_to_rgb_like_pil)
{
    bcd_ctx *ctx = new_ctx();
    bcd_image *img = decode_ok(ctx, "jpeg/cmyk-adobe-32x32.jpg", 32, 32);
    assert_px_near(img, 0, 0, 255, 255, 0, 2);
    assert_px_near(img, 16, 16, 123, 123, 8, 2);
    assert_px_near(img, 31, 31, 0, 0, 255, 2);
    assert_px_near(img, 5, 20, 214, 91, 0, 2);
    bcd_image_free(img);
    img = decode_ok(ctx, "jpeg/cmyk-adobe-subsampled-256x256.jpg", 256, 256);
    assert_px_near(img, 0, 0, 255, 255, 255, 2);
    assert_px_near(img, 128, 128, 170, 89, 180, 2);
    assert_px_near(img, 200, 50, 255, 255, 255, 2);
    bcd_image_free(img);
    bcd_ctx_free(ctx);
}
END_TEST

START_TEST(test_image_decode_jpeg_rejects_broken_files)
{
    static const struct {
        const char *name;
        bcd_status status;
        const char *code;
    } bad[] = {
        { "bad-empty.jpg", BCD_EFORMAT, "unknown_format" },
        { "bad-missing-sof.jpg", BCD_EFORMAT, "truncated_image" },
        { "bad-missing-sos.jpg", BCD_EFORMAT, NULL },
        { "bad-zero-dimension.jpg", BCD_EFORMAT, "corrupt_image" },
        { "bad-huge-dimensions-65535x65535.jpg", BCD_ELIMIT, "image_too_large" },
        { "bad-huffman-table.jpg", BCD_EFORMAT, "corrupt_image" },
        { "bad-truncated-in-header.jpg", BCD_EFORMAT, "truncated_image" },
        /* libjpeg-turbo only warns here and would return a half-grey image */
        { "bad-truncated-in-scan.jpg", BCD_EFORMAT, "truncated_image" },
        { "unsupported-12bit-monkey12.jpg", BCD_EFORMAT, "unsupported_image" },
    };
    bcd_ctx *ctx = new_ctx();
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "jpeg/%s", bad[i].name);
        const char *code = decode_fails(ctx, rel, bad[i].status);
        if (bad[i].code)
            ck_assert_msg(strcmp(code, bad[i].code) == 0, "%s: code %s, want %s", bad[i].name, code, bad[i].code);
    }
    bcd_ctx_free(ctx);
}
END_TEST

/* Documented policy: every libjpeg warning is an error, this one included. */
START_TEST(test_image_decode_jpeg_rejects_extraneous_bytes_warning)
{
    bcd_ctx *ctx = new_ctx();
    ck_assert_str_eq(decode_fails(ctx, "jpeg/warn-extraneous-bytes-16x16.jpg", BCD_EFORMAT), "corrupt_image");
    const char *msg = bcd_error_message(bcd_ctx_last_error(ctx));
    ck_assert_msg(strstr(msg, "extraneous bytes") != NULL, "message: %s", msg);
    ck_assert_msg(strstr(msg, "warn-extraneous-bytes-16x16.jpg") != NULL, "message names the file: %s", msg);
    bcd_ctx_free(ctx);
}
END_TEST

#define MJPEG_PX0 251, 251, 251
#define MJPEG_PX1 173, 74, 32
#define MJPEG_PX2 108, 84, 58

/* The Motion-JPEG frame has no DHT (the standard tables are used) and padding bytes
 * before eight of its restart markers ("6 extraneous bytes before marker 0xd1"): that
 * warning is tolerated before RST markers only, and the picture matches PIL's. */
START_TEST(test_image_decode_jpeg_mjpeg_decodes)
{
    bcd_ctx *ctx = new_ctx();
    bcd_image *img = decode_ok(ctx, "jpeg/mjpeg-422-no-huffman-tables.jpg", 960, 720);
    /* sample pixels from PIL 9.4 Image.open(...).convert("RGB") */
    assert_px_near(img, 0, 0, MJPEG_PX0, 2);
    assert_px_near(img, 480, 360, MJPEG_PX1, 2);
    assert_px_near(img, 959, 719, MJPEG_PX2, 2);
    bcd_image_free(img);
    bcd_ctx_free(ctx);
}
END_TEST

/* A 16x16 grey progressive JPEG with one DC scan and, for each of the 63 AC coefficients,
 * a first scan at successive-approximation bit al_first followed by one refinement scan per
 * remaining bit: 1 + 63 * (al_first + 1) scans, a legal progression throughout. */
static unsigned char *many_scan_jpeg(int al_first, unsigned long *len)
{
    static jpeg_scan_info scans[1 + 63 * 11];
    int n = 0;
    scans[n++] = (jpeg_scan_info){ 1, { 0 }, 0, 0, 0, 0 };
    for (int k = 1; k <= 63; k++) {
        scans[n++] = (jpeg_scan_info){ 1, { 0 }, k, k, 0, al_first };
        for (int a = al_first; a > 0; a--)
            scans[n++] = (jpeg_scan_info){ 1, { 0 }, k, k, a, a - 1 };
    }
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    unsigned char *out = NULL;
    *len = 0;
    jpeg_mem_dest(&c, &out, len);
    c.image_width = 16;
    c.image_height = 16;
    c.input_components = 1;
    c.in_color_space = JCS_GRAYSCALE;
    jpeg_set_defaults(&c);
    c.scan_info = scans;
    c.num_scans = n;
    jpeg_start_compress(&c, TRUE);
    uint8_t row[16];
    while (c.next_scanline < 16) {
        for (int x = 0; x < 16; x++)
            row[x] = (uint8_t)(x * 16 + c.next_scanline * 3);
        JSAMPROW r = row;
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    return out;
}

/* Progressive files pay a pass over the image per scan: more than 500 scans is refused. */
START_TEST(test_image_decode_jpeg_refuses_too_many_scans)
{
    bcd_ctx *ctx = new_ctx();
    unsigned long len;
    unsigned char *ok = many_scan_jpeg(3, &len); /* 253 scans */
    bcd_image *img = NULL;
    ck_assert_int_eq(bcd_image_decode(&img, ctx, ok, len), BCD_OK);
    ck_assert_uint_eq(img->width, 16);
    bcd_image_free(img);
    free(ok);
    unsigned char *bad = many_scan_jpeg(9, &len); /* 631 scans */
    img = SENTINEL;
    ck_assert_int_eq(bcd_image_decode(&img, ctx, bad, len), BCD_ELIMIT);
    ck_assert_str_eq(bcd_error_code(bcd_ctx_last_error(ctx)), "too_many_scans");
    ck_assert_ptr_eq(img, SENTINEL);
    free(bad);
    bcd_ctx_free(ctx);
}
END_TEST

/* Every prefix of a valid file is refused (a JPEG without EOI, a PNG without IEND), and
 * nothing crashes or leaks on the way out. */
START_TEST(test_image_decode_rejects_every_truncation)
{
    static const char *const files[] = { "jpeg/progressive-420-32x32.jpg", "jpeg/restart-markers-444-33x33.jpg",
                                         "jpeg/cmyk-adobe-32x32.jpg", "pngsuite/basi0g08.png",
                                         "pngsuite/basn3p04.png", "pngsuite/exif2c08.png" };
    bcd_ctx *ctx = new_ctx();
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        size_t len;
        unsigned char *buf = slurp(img_path(files[f]), &len);
        for (size_t cut = 0; cut < len; cut++) {
            bcd_image *img = SENTINEL;
            bcd_status st = bcd_image_decode(&img, ctx, buf, cut);
            ck_assert_msg(st == BCD_EFORMAT, "%s cut at %zu: %s", files[f], cut, bcd_status_name(st));
            ck_assert_ptr_eq(img, SENTINEL);
        }
        free(buf);
    }
    /* the code says what happened */
    size_t len;
    unsigned char *buf = slurp(img_path("pngsuite/basn2c08.png"), &len);
    bcd_image *img = SENTINEL;
    ck_assert_int_eq(bcd_image_decode(&img, ctx, buf, len / 2), BCD_EFORMAT);
    ck_assert_str_eq(bcd_error_code(bcd_ctx_last_error(ctx)), "truncated_image");
    free(buf);
    buf = slurp(img_path("jpeg/baseline-420-testorig.jpg"), &len);
    ck_assert_int_eq(bcd_image_decode(&img, ctx, buf, len - 1), BCD_EFORMAT);
    ck_assert_str_eq(bcd_error_code(bcd_ctx_last_error(ctx)), "truncated_image");
    ck_assert_ptr_eq(img, SENTINEL);
    free(buf);
    bcd_ctx_free(ctx);
}
END_TEST

/* Random byte damage: any result is fine but a crash, a leak or a bad image struct
 * (run under ASan/UBSan to mean anything). */
START_TEST(test_image_decode_survives_random_damage)
{
    static const char *const files[] = { "jpeg/progressive-420-32x32.jpg", "jpeg/baseline-420-testorig.jpg",
                                         "jpeg/cmyk-adobe-32x32.jpg",      "jpeg/grayscale-32x32.jpg",
                                         "pngsuite/basi3p04.png",          "pngsuite/basn6a16.png" };
    bcd_ctx *ctx = new_ctx();
    /* damage may inflate the claimed size; keep allocations small */
    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_MAX_PIXELS", "1000000"), BCD_OK);
    uint32_t seed = 12345;
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        size_t len;
        unsigned char *orig = slurp(img_path(files[f]), &len);
        unsigned char *buf = malloc(len);
        ck_assert_ptr_nonnull(buf);
        for (int round = 0; round < 300; round++) {
            memcpy(buf, orig, len);
            int flips = 1 + round % 4;
            for (int k = 0; k < flips; k++) {
                seed ^= seed << 13, seed ^= seed >> 17, seed ^= seed << 5; /* xorshift32 */
                size_t at = 3 + seed % (len - 3);                         /* keep the signature */
                buf[at] = (uint8_t)(seed >> 24);
            }
            bcd_image *img = NULL;
            bcd_status st = bcd_image_decode(&img, ctx, buf, len);
            if (st == BCD_OK) {
                ck_assert(img && img->width > 0 && img->height > 0 && img->channels == 3);
                ck_assert_uint_le((uint64_t)img->width * img->height, 1000000);
                bcd_image_free(img);
            } else {
                ck_assert_ptr_null(img);
                ck_assert(st == BCD_EFORMAT || st == BCD_ELIMIT);
            }
        }
        free(buf);
        free(orig);
    }
    bcd_ctx_free(ctx);
}
END_TEST

/* ---- common behaviour -------------------------------------------------------------- */

START_TEST(test_image_decode_memory_equals_file)
{
    static const char *const files[] = { "jpeg/baseline-420-testorig.jpg", "jpeg/cmyk-adobe-32x32.jpg",
                                         "pngsuite/basi6a16.png", "exif-orientation/Portrait_6.jpg" };
    bcd_ctx *ctx = new_ctx();
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        size_t len;
        unsigned char *buf = slurp(img_path(files[f]), &len);
        bcd_image *a = NULL, *b = NULL;
        ck_assert_int_eq(bcd_image_decode(&a, ctx, buf, len), BCD_OK);
        ck_assert_int_eq(bcd_image_decode_file(&b, ctx, img_path(files[f])), BCD_OK);
        ck_assert_msg(same_pixels(a, b), "%s", files[f]);
        bcd_image_free(a);
        bcd_image_free(b);
        free(buf);
    }
    bcd_ctx_free(ctx);
}
END_TEST

/* The decoder follows the magic bytes, not the file name. */
START_TEST(test_image_decode_sniffs_magic_bytes)
{
    bcd_ctx *ctx = new_ctx();
    size_t len;
    unsigned char *buf = slurp(img_path("pngsuite/basn2c08.png"), &len);
    spill(tmp_path("really-a-png.jpg"), buf, len);
    free(buf);
    bcd_image *a = NULL, *b = NULL;
    ck_assert_int_eq(bcd_image_decode_file(&a, ctx, tmp_path("really-a-png.jpg")), BCD_OK);
    ck_assert_int_eq(bcd_image_decode_file(&b, ctx, img_path("pngsuite/basn2c08.png")), BCD_OK);
    ck_assert(same_pixels(a, b));
    bcd_image_free(a);
    bcd_image_free(b);

    buf = slurp(img_path("jpeg/tiny-1x1.jpg"), &len);
    spill(tmp_path("really-a-jpeg.png"), buf, len);
    free(buf);
    ck_assert_int_eq(bcd_image_decode_file(&a, ctx, tmp_path("really-a-jpeg.png")), BCD_OK);
    ck_assert_uint_eq(a->width, 1);
    bcd_image_free(a);

    /* random bytes, text, a lone JPEG SOI, a PNG signature alone */
    uint8_t noise[4096];
    uint32_t seed = 99;
    for (size_t i = 0; i < sizeof noise; i++) {
        seed = seed * 1664525u + 1013904223u;
        noise[i] = (uint8_t)(seed >> 24);
    }
    noise[0] = 0x42; /* not 0xFF or 0x89 whatever the generator says */
    static const uint8_t soi[] = { 0xFF, 0xD8 };
    static const uint8_t sig[] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
    const struct {
        const void *data;
        size_t len;
        const char *code;
    } junk[] = {
        { noise, sizeof noise, "unknown_format" },
        { "GIF89a....", 10, "unknown_format" },
        { soi, sizeof soi, "unknown_format" },
        { sig, sizeof sig, "truncated_image" },
        { "", 0, "unknown_format" },
    };
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        bcd_image *img = SENTINEL;
        ck_assert_int_eq(bcd_image_decode(&img, ctx, junk[i].data, junk[i].len), BCD_EFORMAT);
        ck_assert_ptr_eq(img, SENTINEL);
        ck_assert_str_eq(bcd_error_code(bcd_ctx_last_error(ctx)), junk[i].code);
    }
    bcd_ctx_free(ctx);
}
END_TEST

START_TEST(test_image_decode_enforces_size_limits)
{
    bcd_ctx *ctx = new_ctx();
    /* exactly at the limits: accepted (227x149 = 33823 px) */
    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_MAX_PIXELS", "33823"), BCD_OK);
    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_MAX_DIMENSION", "227"), BCD_OK);
    bcd_image_free(decode_ok(ctx, "jpeg/baseline-420-testorig.jpg", 227, 149));
    /* one pixel fewer allowed: refused, JPEG and PNG alike */
    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_MAX_PIXELS", "33822"), BCD_OK);
    ck_assert_str_eq(decode_fails(ctx, "jpeg/baseline-420-testorig.jpg", BCD_ELIMIT), "image_too_large");
    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_MAX_PIXELS", "1000"), BCD_OK);
    ck_assert_str_eq(decode_fails(ctx, "pngsuite/basn2c08.png", BCD_ELIMIT), "image_too_large"); /* 1024 px */
    ck_assert_str_eq(decode_fails(ctx, "pngsuite/basi0g08.png", BCD_ELIMIT), "image_too_large");
    /* one side too long */
    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_MAX_PIXELS", NULL), BCD_OK);
    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_MAX_DIMENSION", "226"), BCD_OK);
    ck_assert_str_eq(decode_fails(ctx, "jpeg/baseline-420-testorig.jpg", BCD_ELIMIT), "image_too_large");
    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_MAX_DIMENSION", "31"), BCD_OK);
    ck_assert_str_eq(decode_fails(ctx, "pngsuite/basn2c08.png", BCD_ELIMIT), "image_too_large");
    /* the limit is on the stored size: a 1200x1800 file turned to 1800x1200 by EXIF
     * counts 1800 per side either way */
    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_MAX_DIMENSION", "1799"), BCD_OK);
    decode_fails(ctx, "exif-orientation/Landscape_6.jpg", BCD_ELIMIT);
    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_MAX_DIMENSION", "1800"), BCD_OK);
    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_MAX_PIXELS", "2160000"), BCD_OK);
    bcd_image_free(decode_ok(ctx, "exif-orientation/Landscape_6.jpg", 1800, 1200));
    /* 65535x65535 is refused before any allocation, under the default limits and even
     * with ours raised (libjpeg-turbo stops at 65500) */
    bcd_ctx_free(ctx);
    ctx = new_ctx();
    ck_assert_str_eq(decode_fails(ctx, "jpeg/bad-huge-dimensions-65535x65535.jpg", BCD_ELIMIT), "image_too_large");
    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_MAX_DIMENSION", "100000"), BCD_OK);
    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_MAX_PIXELS", "10000000000"), BCD_OK);
    ck_assert_str_eq(decode_fails(ctx, "jpeg/bad-huge-dimensions-65535x65535.jpg", BCD_ELIMIT), "image_too_large");
    bcd_ctx_free(ctx);
}
END_TEST

/* A PNG header claiming a huge size is refused from the header alone. */
START_TEST(test_image_decode_png_huge_header_refused)
{
    bcd_ctx *ctx = new_ctx();
    size_t len;
    unsigned char *buf = slurp(img_path("pngsuite/basn2c08.png"), &len);
    /* IHDR width/height at bytes 16..23, CRC at 29..32 left wrong: the limit comes first */
    memcpy(buf + 16, "\x00\x01\x00\x00\x00\x01\x00\x00", 8); /* 65536 x 65536 */
    bcd_image *img = SENTINEL;
    ck_assert_int_eq(bcd_image_decode(&img, ctx, buf, len), BCD_ELIMIT);
    ck_assert_ptr_eq(img, SENTINEL);
    ck_assert_str_eq(bcd_error_code(bcd_ctx_last_error(ctx)), "image_too_large");
    free(buf);
    bcd_ctx_free(ctx);
}
END_TEST

START_TEST(test_image_decode_arguments_and_missing_file)
{
    bcd_ctx *ctx = new_ctx();
    bcd_image *img = SENTINEL;
    ck_assert_int_eq(bcd_image_decode(NULL, ctx, "x", 1), BCD_EINVAL);
    ck_assert_int_eq(bcd_image_decode(&img, NULL, "x", 1), BCD_EINVAL);
    ck_assert_int_eq(bcd_image_decode(&img, ctx, NULL, 10), BCD_EINVAL);
    ck_assert_int_eq(bcd_image_decode_file(&img, ctx, NULL), BCD_EINVAL);
    ck_assert_int_eq(bcd_image_decode_file(NULL, ctx, img_path("jpeg/tiny-1x1.jpg")), BCD_EINVAL);
    ck_assert_int_eq(bcd_image_decode_file(&img, ctx, tmp_path("no-such-file.jpg")), BCD_ENOTFOUND);
    ck_assert_str_eq(bcd_error_code(bcd_ctx_last_error(ctx)), "file_not_found");
    ck_assert_ptr_eq(img, SENTINEL);
    /* a success clears the previous error */
    bcd_image_free(decode_ok(ctx, "jpeg/tiny-1x1.jpg", 1, 1));
    bcd_ctx_free(ctx);
}
END_TEST

/* ---- reduced-scale JPEG decoding (bcd_image_decode_ext) ----------------------------- */

/* Decode with the given minimums (displayed orientation); must succeed with size w x h. */
static bcd_image *decode_min(bcd_ctx *ctx, const char *rel, unsigned s, unsigned l, unsigned mw, unsigned mh,
                             uint32_t w, uint32_t h)
{
    bcd_image_decode_options o = BCD_IMAGE_DECODE_OPTIONS_INIT;
    o.min_short_side = s;
    o.min_long_side = l;
    o.min_width = mw;
    o.min_height = mh;
    bcd_image *img = NULL;
    bcd_status st = bcd_image_decode_file_ext(&img, ctx, img_path(rel), &o);
    ck_assert_msg(st == BCD_OK, "%s: %s (%s)", rel, bcd_strerror(st), bcd_error_message(bcd_ctx_last_error(ctx)));
    ck_assert_ptr_nonnull(img);
    ck_assert_msg(img->width == w && img->height == h, "%s (short %u long %u w %u h %u): got %ux%u, want %ux%u",
                  rel, s, l, mw, mh, img->width, img->height, w, h);
    ck_assert_uint_eq(img->channels, 3);
    return img;
}

/* The smallest of 1/8, 1/4, 1/2 that keeps every minimum, else full size; sizes rounded
 * up as libjpeg does. */
START_TEST(test_image_decode_scaled_picks_factor)
{
    static const struct {
        const char *name;
        unsigned s, l, mw, mh; /* minimums */
        uint32_t w, h;         /* expected size */
    } cases[] = {
        /* 1800x1200 */
        { "exif-orientation/Landscape_1.jpg", 150, 0, 0, 0, 225, 150 },    /* 1/8 exactly */
        { "exif-orientation/Landscape_1.jpg", 151, 0, 0, 0, 450, 300 },    /* one more: 1/4 */
        { "exif-orientation/Landscape_1.jpg", BCD_INPUT_SIZE, 0, 0, 0, 450, 300 },
        { "exif-orientation/Landscape_1.jpg", 300, 0, 0, 0, 450, 300 },
        { "exif-orientation/Landscape_1.jpg", 301, 0, 0, 0, 900, 600 },    /* 1/2, not 3/8 */
        { "exif-orientation/Landscape_1.jpg", 600, 0, 0, 0, 900, 600 },
        { "exif-orientation/Landscape_1.jpg", 601, 0, 0, 0, 1800, 1200 },  /* full, not 5/8 */
        { "exif-orientation/Landscape_1.jpg", 1200, 0, 0, 0, 1800, 1200 },
        { "exif-orientation/Landscape_1.jpg", 5000, 0, 0, 0, 1800, 1200 }, /* never enlarged */
        { "exif-orientation/Landscape_1.jpg", 0, 226, 0, 0, 450, 300 },    /* 1/8 is 225 long */
        { "exif-orientation/Landscape_1.jpg", 0, 512, 0, 0, 900, 600 },
        { "exif-orientation/Landscape_1.jpg", 0, 0, 451, 0, 900, 600 },
        { "exif-orientation/Landscape_1.jpg", 0, 0, 0, 151, 450, 300 },
        { "exif-orientation/Landscape_1.jpg", 151, 800, 0, 100, 900, 600 }, /* the strictest wins */
        { "exif-orientation/Landscape_1.jpg", 100, 0, 0, 1000, 1800, 1200 },
        { "exif-orientation/Landscape_1.jpg", 1, 1, 1, 1, 225, 150 },
        /* 227x149, 4:2:0: ceil(227 / d) x ceil(149 / d) */
        { "jpeg/baseline-420-testorig.jpg", 19, 0, 0, 0, 29, 19 },    /* 18.625 rounds up */
        { "jpeg/baseline-420-testorig.jpg", 20, 0, 0, 0, 57, 38 },
        { "jpeg/baseline-420-testorig.jpg", 38, 0, 0, 0, 57, 38 },
        { "jpeg/baseline-420-testorig.jpg", 39, 0, 0, 0, 114, 75 },
        { "jpeg/baseline-420-testorig.jpg", 75, 0, 0, 0, 114, 75 },
        { "jpeg/baseline-420-testorig.jpg", 76, 0, 0, 0, 227, 149 },
        { "jpeg/baseline-420-testorig.jpg", 0, 115, 0, 0, 227, 149 },
        /* progressive, grey, CMYK, arithmetic coding, restart markers, 4:2:2, one pixel */
        { "jpeg/progressive-444-650x470.jpg", 100, 0, 0, 0, 163, 118 },
        { "jpeg/progressive-420-32x32.jpg", 16, 0, 0, 0, 16, 16 },
        { "jpeg/grayscale-32x32.jpg", 8, 0, 0, 0, 8, 8 },
        { "jpeg/cmyk-adobe-32x32.jpg", 4, 0, 0, 0, 4, 4 },
        { "jpeg/cmyk-adobe-subsampled-256x256.jpg", 64, 0, 0, 0, 64, 64 },
        { "jpeg/arithmetic-420-testimgari.jpg", 30, 0, 0, 0, 57, 38 },
        { "jpeg/restart-markers-444-33x33.jpg", 5, 0, 0, 0, 5, 5 },
        { "jpeg/mjpeg-422-no-huffman-tables.jpg", 180, 0, 0, 0, 240, 180 },
        { "jpeg/tiny-1x1.jpg", 1, 0, 0, 0, 1, 1 },
    };
    bcd_ctx *ctx = new_ctx();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        bcd_image_free(decode_min(ctx, cases[i].name, cases[i].s, cases[i].l, cases[i].mw, cases[i].mh, cases[i].w,
                                  cases[i].h));
    bcd_ctx_free(ctx);
}
END_TEST

/* Width and height minimums are in displayed orientation: files stored turned by a
 * quarter (EXIF 5..8) must keep the other stored side. Every Landscape_N shows 1800x1200
 * (stored 1200x1800 for N >= 5), every Portrait_N 1200x1800; each minimum below picks a
 * different scale when applied to the stored sides instead. */
START_TEST(test_image_decode_scaled_follows_exif_orientation)
{
    bcd_ctx *ctx = new_ctx();
    for (int n = 0; n <= 8; n++) {
        char rel[64];
        snprintf(rel, sizeof rel, "exif-orientation/Landscape_%d.jpg", n);
        bcd_image_free(decode_min(ctx, rel, 0, 0, 0, 301, 900, 600));
        bcd_image_free(decode_min(ctx, rel, 0, 0, 301, 0, 450, 300));
        bcd_image_free(decode_min(ctx, rel, 301, 0, 0, 0, 900, 600)); /* sides: either way */
        bcd_image_free(decode_min(ctx, rel, 0, 451, 0, 0, 900, 600));
        snprintf(rel, sizeof rel, "exif-orientation/Portrait_%d.jpg", n);
        bcd_image_free(decode_min(ctx, rel, 0, 0, 301, 0, 600, 900));
        bcd_image_free(decode_min(ctx, rel, 0, 0, 0, 301, 300, 450));
        bcd_image_free(decode_min(ctx, rel, 0, 0, 601, 0, 1200, 1800));
        bcd_image_free(decode_min(ctx, rel, 0, 450, 0, 0, 300, 450));
    }
    /* the picture is turned as well, not only the size: the scaled decodes of the upright
     * file and of one stored turned (re-encoded, so not byte-identical) are close */
    bcd_image *a = decode_min(ctx, "exif-orientation/Landscape_1.jpg", 300, 0, 0, 0, 450, 300);
    bcd_image *b = decode_min(ctx, "exif-orientation/Landscape_6.jpg", 300, 0, 0, 0, 450, 300);
    double diff = 0;
    for (size_t i = 0; i < (size_t)450 * 300 * 3; i++)
        diff += abs(a->data[i] - b->data[i]);
    diff /= 450.0 * 300 * 3;
    ck_assert_msg(diff < 4.0, "mean difference %.2f", diff);
    bcd_image_free(a);
    bcd_image_free(b);
    bcd_ctx_free(ctx);
}
END_TEST

/* No minimum (NULL, INIT, options_init) is the plain full-size decode, byte for byte; PNG
 * ignores the options. */
START_TEST(test_image_decode_scaled_defaults_and_png)
{
    static const char *const files[] = { "jpeg/baseline-420-testorig.jpg", "jpeg/cmyk-adobe-32x32.jpg",
                                         "jpeg/progressive-444-650x470.jpg", "exif-orientation/Portrait_6.jpg",
                                         "pngsuite/basn2c08.png", "pngsuite/basi6a16.png" };
    bcd_ctx *ctx = new_ctx();
    bcd_image_decode_options init;
    memset(&init, 0xAB, sizeof init);
    ck_assert_int_eq(bcd_image_decode_options_init(&init, BCD_IMAGE_DECODE_OPTIONS_VERSION), BCD_OK);
    ck_assert_uint_eq(init.version, BCD_IMAGE_DECODE_OPTIONS_VERSION);
    ck_assert(init.min_short_side == 0 && init.min_long_side == 0 && init.min_width == 0 && init.min_height == 0);
    ck_assert_int_eq(bcd_image_decode_options_init(&init, 0), BCD_EINVAL);
    ck_assert_int_eq(bcd_image_decode_options_init(&init, BCD_IMAGE_DECODE_OPTIONS_VERSION + 1), BCD_EINVAL);
    ck_assert_int_eq(bcd_image_decode_options_init(NULL, BCD_IMAGE_DECODE_OPTIONS_VERSION), BCD_EINVAL);
    bcd_image_decode_options_init(&init, BCD_IMAGE_DECODE_OPTIONS_VERSION);
    bcd_image_decode_options tiny = BCD_IMAGE_DECODE_OPTIONS_INIT;
    tiny.min_short_side = 1;
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        size_t len;
        unsigned char *buf = slurp(img_path(files[f]), &len);
        bcd_image *ref = NULL, *a = NULL, *b = NULL, *c = NULL;
        ck_assert_int_eq(bcd_image_decode(&ref, ctx, buf, len), BCD_OK);
        ck_assert_int_eq(bcd_image_decode_ext(&a, ctx, buf, len, NULL), BCD_OK);
        ck_assert_int_eq(bcd_image_decode_ext(&b, ctx, buf, len, &init), BCD_OK);
        ck_assert_int_eq(bcd_image_decode_file_ext(&c, ctx, img_path(files[f]), &init), BCD_OK);
        ck_assert_msg(same_pixels(ref, a) && same_pixels(ref, b) && same_pixels(ref, c), "%s", files[f]);
        bcd_image_free(a);
        ck_assert_int_eq(bcd_image_decode_ext(&a, ctx, buf, len, &tiny), BCD_OK);
        bool png = strstr(files[f], ".png") != NULL;
        ck_assert_msg(png == same_pixels(ref, a), "%s: scaled %ux%u", files[f], a->width, a->height);
        ck_assert_msg(png || (a->width < ref->width && a->height < ref->height), "%s", files[f]);
        bcd_image_free(ref);
        bcd_image_free(a);
        bcd_image_free(b);
        bcd_image_free(c);
        free(buf);
    }
    bcd_ctx_free(ctx);
}
END_TEST

/* Limits stay on the stored size, checked before any pixel buffer; damage and bad options
 * fail as without scaling, and *out stays untouched. */
START_TEST(test_image_decode_scaled_limits_and_failures)
{
    bcd_ctx *ctx = new_ctx();
    bcd_image_decode_options o = BCD_IMAGE_DECODE_OPTIONS_INIT;
    o.min_short_side = 1;
    bcd_image *img = SENTINEL;
    /* 1800x1200 = 2160000 px, 1/8 would be 225x150: refused all the same */
    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_MAX_PIXELS", "2159999"), BCD_OK);
    ck_assert_int_eq(bcd_image_decode_file_ext(&img, ctx, img_path("exif-orientation/Landscape_1.jpg"), &o),
                     BCD_ELIMIT);
    ck_assert_str_eq(bcd_error_code(bcd_ctx_last_error(ctx)), "image_too_large");
    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_MAX_PIXELS", NULL), BCD_OK);
    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_MAX_DIMENSION", "1799"), BCD_OK);
    ck_assert_int_eq(bcd_image_decode_file_ext(&img, ctx, img_path("exif-orientation/Landscape_6.jpg"), &o),
                     BCD_ELIMIT);
    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_MAX_DIMENSION", "1800"), BCD_OK);
    bcd_image *ok = NULL;
    ck_assert_int_eq(bcd_image_decode_file_ext(&ok, ctx, img_path("exif-orientation/Landscape_6.jpg"), &o), BCD_OK);
    ck_assert(ok->width == 225 && ok->height == 150);
    bcd_image_free(ok);
    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_MAX_DIMENSION", NULL), BCD_OK);
    ck_assert_int_eq(bcd_image_decode_file_ext(&img, ctx, img_path("jpeg/bad-huge-dimensions-65535x65535.jpg"), &o),
                     BCD_ELIMIT);
    ck_assert_str_eq(bcd_error_code(bcd_ctx_last_error(ctx)), "image_too_large");
    /* a truncated scan is still an error at 1/8 (the whole file is still read) */
    ck_assert_int_eq(bcd_image_decode_file_ext(&img, ctx, img_path("jpeg/bad-truncated-in-scan.jpg"), &o),
                     BCD_EFORMAT);
    ck_assert_str_eq(bcd_error_code(bcd_ctx_last_error(ctx)), "truncated_image");
    ck_assert_int_eq(bcd_image_decode_file_ext(&img, ctx, img_path("jpeg/warn-extraneous-bytes-16x16.jpg"), &o),
                     BCD_EFORMAT);
    ck_assert_int_eq(bcd_image_decode_file_ext(&img, ctx, img_path("jpeg/unsupported-12bit-monkey12.jpg"), &o),
                     BCD_EFORMAT);
    unsigned long len;
    unsigned char *many = many_scan_jpeg(9, &len);
    ck_assert_int_eq(bcd_image_decode_ext(&img, ctx, many, len, &o), BCD_ELIMIT);
    ck_assert_str_eq(bcd_error_code(bcd_ctx_last_error(ctx)), "too_many_scans");
    free(many);
    /* options: unknown version; NULL arguments as bcd_image_decode */
    bcd_image_decode_options bad = BCD_IMAGE_DECODE_OPTIONS_INIT;
    bad.version = BCD_IMAGE_DECODE_OPTIONS_VERSION + 1;
    ck_assert_int_eq(bcd_image_decode_file_ext(&img, ctx, img_path("jpeg/tiny-1x1.jpg"), &bad), BCD_EINVAL);
    ck_assert_str_eq(bcd_error_code(bcd_ctx_last_error(ctx)), "invalid_options");
    ck_assert_int_eq(bcd_image_decode_ext(&img, ctx, "\xff\xd8\xff", 3, &bad), BCD_EINVAL);
    ck_assert_int_eq(bcd_image_decode_ext(NULL, ctx, "x", 1, &o), BCD_EINVAL);
    ck_assert_int_eq(bcd_image_decode_ext(&img, NULL, "x", 1, &o), BCD_EINVAL);
    ck_assert_int_eq(bcd_image_decode_file_ext(&img, ctx, NULL, &o), BCD_EINVAL);
    ck_assert_int_eq(bcd_image_decode_file_ext(&img, ctx, tmp_path("no-such-file.jpg"), &o), BCD_ENOTFOUND);
    ck_assert_ptr_eq(img, SENTINEL);
    bcd_ctx_free(ctx);
}
END_TEST

/* A w x h colour JPEG (quality 90, 4:2:0) of smooth gradients, ripples and hard edges. */
static unsigned char *pattern_jpeg(uint32_t w, uint32_t h, unsigned long *len)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    unsigned char *out = NULL;
    *len = 0;
    jpeg_mem_dest(&c, &out, len);
    c.image_width = w;
    c.image_height = h;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 90, TRUE);
    jpeg_start_compress(&c, TRUE);
    uint8_t *row = malloc((size_t)w * 3);
    ck_assert_ptr_nonnull(row);
    while (c.next_scanline < h) {
        uint32_t y = c.next_scanline;
        for (uint32_t x = 0; x < w; x++) {
            double u = (double)x / w, v = (double)y / h;
            bool box = x > w / 3 && x < w / 2 && y > h / 4 && y < h / 2;
            row[x * 3] = (uint8_t)(box ? 40 : 120 + 100 * u + 30 * sin(x * 0.05));
            row[x * 3 + 1] = (uint8_t)(box ? 200 : 60 + 120 * v + 30 * cos((x + y) * 0.03));
            row[x * 3 + 2] = (uint8_t)(((x / 37 + y / 23) % 2) ? 180 : 90);
        }
        JSAMPROW r = row;
        jpeg_write_scanlines(&c, &r, 1);
    }
    free(row);
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    return out;
}

static double mean_abs_diff(const bcd_image *a, const bcd_image *b)
{
    ck_assert(a->width == b->width && a->height == b->height);
    size_t n = (size_t)a->width * a->height * 3;
    double d = 0;
    for (size_t i = 0; i < n; i++)
        d += abs(a->data[i] - b->data[i]);
    return d / (double)n;
}

/* A reduced decode is close to a full decode followed by INTER_AREA to the same size, and
 * the preprocessed tensor from it close to the one from the full image; the preprocessing
 * takes any size, down to the 1x1 of a 1/8 decode of a 1x1 file. */
START_TEST(test_image_decode_scaled_close_to_full_resize)
{
    bcd_ctx *ctx = new_ctx();
    unsigned long len;
    unsigned char *jpg = pattern_jpeg(768, 768, &len);
    bcd_image *full = NULL;
    ck_assert_int_eq(bcd_image_decode(&full, ctx, jpg, len), BCD_OK);
    float *t_full = malloc(BCD_TENSOR_LEN * sizeof(float)), *t = malloc(BCD_TENSOR_LEN * sizeof(float));
    ck_assert(t_full && t);
    ck_assert_int_eq(bcd_image_preprocess(t_full, BCD_TENSOR_LEN, full), BCD_OK);
    for (unsigned m = 1; m <= 4; m *= 2) {
        bcd_image_decode_options o = BCD_IMAGE_DECODE_OPTIONS_INIT;
        o.min_short_side = 96 * m - 10;
        bcd_image *small = NULL, *area = NULL;
        ck_assert_int_eq(bcd_image_decode_ext(&small, ctx, jpg, len, &o), BCD_OK);
        ck_assert_uint_eq(small->width, 96 * m);
        ck_assert_uint_eq(small->height, 96 * m);
        ck_assert_int_eq(bcd_image_crop_resize(&area, full, 96 * m), BCD_OK);
        double d = mean_abs_diff(small, area);
        ck_assert_msg(d < 2.5, "%u/8: mean |scaled - full+area| = %.3f", m, d);
        /* the reduced decode is not a copy of the resize either (the test would be void) */
        ck_assert_msg(d > 0.0, "%u/8", m);
        ck_assert_int_eq(bcd_image_preprocess(t, BCD_TENSOR_LEN, small), BCD_OK);
        double td = 0;
        for (size_t i = 0; i < BCD_TENSOR_LEN; i++)
            td += fabs(t[i] - t_full[i]);
        td /= BCD_TENSOR_LEN;
        /* at 1/2 (384 px) the network input is a reduction, as from the full image;
         * 0.04 is about 2.3/255 over the ImageNet std */
        ck_assert_msg(m < 4 || td < 0.04, "%u/8: mean tensor difference %.4f", m, td);
        bcd_image_free(small);
        bcd_image_free(area);
    }
    bcd_image_free(full);
    free(jpg);
    /* a real photo: preprocess from 1/4 (450x300, the smallest that keeps the network's
     * 224) against from full size */
    bcd_image *photo = decode_ok(ctx, "exif-orientation/Landscape_1.jpg", 1800, 1200);
    bcd_image *small = decode_min(ctx, "exif-orientation/Landscape_1.jpg", BCD_INPUT_SIZE, 0, 0, 0, 450, 300);
    ck_assert_int_eq(bcd_image_preprocess(t_full, BCD_TENSOR_LEN, photo), BCD_OK);
    ck_assert_int_eq(bcd_image_preprocess(t, BCD_TENSOR_LEN, small), BCD_OK);
    double td = 0;
    for (size_t i = 0; i < BCD_TENSOR_LEN; i++)
        td += fabs(t[i] - t_full[i]);
    td /= BCD_TENSOR_LEN;
    ck_assert_msg(td < 0.08, "photo at 1/4: mean tensor difference %.4f", td);
    bcd_image_free(photo);
    bcd_image_free(small);
    /* 1x1 */
    small = decode_min(ctx, "jpeg/tiny-1x1.jpg", 1, 0, 0, 0, 1, 1);
    ck_assert_int_eq(bcd_image_preprocess(t, BCD_TENSOR_LEN, small), BCD_OK);
    bcd_image_free(small);
    free(t);
    free(t_full);
    bcd_ctx_free(ctx);
}
END_TEST

/* ---- PNG writing ------------------------------------------------------------------- */

START_TEST(test_image_write_png_round_trip)
{
    bcd_ctx *ctx = new_ctx();
    static const char *const files[] = { "jpeg/baseline-420-testorig.jpg", "pngsuite/basn6a16.png",
                                         "jpeg/tiny-1x1.jpg" };
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        bcd_image *a = NULL, *b = NULL;
        ck_assert_int_eq(bcd_image_decode_file(&a, ctx, img_path(files[f])), BCD_OK);
        ck_assert_int_eq(bcd_image_write_png(ctx, a, tmp_path("out.png")), BCD_OK);
        ck_assert_int_ne(access(tmp_path("out.png.tmp"), F_OK), 0); /* renamed away */
        ck_assert_int_eq(bcd_image_decode_file(&b, ctx, tmp_path("out.png")), BCD_OK);
        ck_assert_msg(same_pixels(a, b), "%s", files[f]);
        bcd_image_free(a);
        bcd_image_free(b);
    }
    /* a caller-owned buffer works too, and overwriting replaces the file */
    uint8_t pixels[2 * 3 * 3];
    for (size_t i = 0; i < sizeof pixels; i++)
        pixels[i] = (uint8_t)(i * 13);
    bcd_image mine = { 3, 2, 3, pixels };
    ck_assert_int_eq(bcd_image_write_png(ctx, &mine, tmp_path("out.png")), BCD_OK);
    bcd_image *back = NULL;
    ck_assert_int_eq(bcd_image_decode_file(&back, ctx, tmp_path("out.png")), BCD_OK);
    ck_assert(same_pixels(&mine, back));
    bcd_image_free(back);
    bcd_ctx_free(ctx);
}
END_TEST

START_TEST(test_image_write_png_failures)
{
    bcd_ctx *ctx = new_ctx();
    uint8_t pixels[3] = { 1, 2, 3 };
    bcd_image one = { 1, 1, 3, pixels };
    bcd_image grey = { 1, 1, 1, pixels };
    bcd_image empty = { 0, 1, 3, pixels };
    ck_assert_int_eq(bcd_image_write_png(ctx, NULL, tmp_path("x.png")), BCD_EINVAL);
    ck_assert_int_eq(bcd_image_write_png(ctx, &grey, tmp_path("x.png")), BCD_EINVAL);
    ck_assert_int_eq(bcd_image_write_png(ctx, &empty, tmp_path("x.png")), BCD_EINVAL);
    ck_assert_int_eq(bcd_image_write_png(ctx, &one, NULL), BCD_EINVAL);
    /* a folder that does not exist: EIO, detail on ctx, nothing left behind */
    ck_assert_int_eq(bcd_image_write_png(ctx, &one, tmp_path("missing/x.png")), BCD_EIO);
    ck_assert_str_eq(bcd_error_code(bcd_ctx_last_error(ctx)), "file_write_failed");
    /* the target is a directory: refused, never renamed over, nothing left behind */
    ck_assert_int_eq(mkdir(tmp_path("adir"), 0700), 0);
    ck_assert_int_eq(bcd_image_write_png(ctx, &one, tmp_path("adir")), BCD_EINVAL);
    ck_assert_str_eq(bcd_error_code(bcd_ctx_last_error(ctx)), "file_write_failed");
    ck_assert_int_ne(access(tmp_path("adir.tmp"), F_OK), 0);
    ck_assert_int_eq(rmdir(tmp_path("adir")), 0);
    bcd_ctx_free(ctx);
}
END_TEST

int main(void)
{
    if (!mkdtemp(tmpdir))
        return EXIT_FAILURE;
    Suite *s = suite_create("decode");
    TCase *png = tcase_create("png");
    tcase_set_timeout(png, 300);
    tcase_add_test(png, test_image_decode_pngsuite_valid_images_match_pil);
    tcase_add_test(png, test_image_decode_pngsuite_table_is_complete);
    tcase_add_test(png, test_image_decode_rejects_broken_pngsuite_images);
    tcase_add_test(png, test_image_decode_png_drops_alpha_without_blending);
    tcase_add_test(png, test_image_decode_png_16bit_keeps_high_byte);
    tcase_add_test(png, test_image_decode_png_interlaced_equals_plain);
    tcase_add_test(png, test_image_decode_png_huge_header_refused);
    suite_add_tcase(s, png);
    TCase *jpeg = tcase_create("jpeg");
    tcase_set_timeout(jpeg, 300);
    tcase_add_test(jpeg, test_image_decode_jpeg_valid_files);
    tcase_add_test(jpeg, test_image_decode_jpeg_arithmetic);
    tcase_add_test(jpeg, test_image_decode_jpeg_cmyk_to_rgb_like_pil);
    tcase_add_test(jpeg, test_image_decode_jpeg_rejects_broken_files);
    tcase_add_test(jpeg, test_image_decode_jpeg_rejects_extraneous_bytes_warning);
    tcase_add_test(jpeg, test_image_decode_jpeg_mjpeg_decodes);
    tcase_add_test(jpeg, test_image_decode_jpeg_refuses_too_many_scans);
    suite_add_tcase(s, jpeg);
    TCase *scaled = tcase_create("scaled");
    tcase_set_timeout(scaled, 300);
    tcase_add_test(scaled, test_image_decode_scaled_picks_factor);
    tcase_add_test(scaled, test_image_decode_scaled_follows_exif_orientation);
    tcase_add_test(scaled, test_image_decode_scaled_defaults_and_png);
    tcase_add_test(scaled, test_image_decode_scaled_limits_and_failures);
    tcase_add_test(scaled, test_image_decode_scaled_close_to_full_resize);
    suite_add_tcase(s, scaled);
    TCase *common = tcase_create("common");
    tcase_set_timeout(common, 300);
    tcase_add_test(common, test_image_decode_rejects_every_truncation);
    tcase_add_test(common, test_image_decode_survives_random_damage);
    tcase_add_test(common, test_image_decode_memory_equals_file);
    tcase_add_test(common, test_image_decode_sniffs_magic_bytes);
    tcase_add_test(common, test_image_decode_enforces_size_limits);
    tcase_add_test(common, test_image_decode_arguments_and_missing_file);
    tcase_add_test(common, test_image_write_png_round_trip);
    tcase_add_test(common, test_image_write_png_failures);
    suite_add_tcase(s, common);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
