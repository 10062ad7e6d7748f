/* The compressed PNGs the library writes itself (overlays and thumbnails,
 * lib/report/encode.c and its literal-only deflate.c): any RGB image must come back
 * through the library's decoder (libpng + zlib) pixel for pixel. The first two bytes
 * choose the width and height (1-256 each); the pixels are the rest of the input repeated
 * (an input of 2 bytes: black), so short inputs give long runs and long ones noise. */
#include "bcd/ctx.h"
#include "bcd/image.h"
#include "report/report.h"
#include "fuzz.h"

static bcd_ctx *ctx;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (bcd_ctx_new(&ctx) != BCD_OK)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint32_t w = (uint32_t)data[0] + 1, h = (uint32_t)data[1] + 1;
    size_t len = (size_t)w * h * 3;
    uint8_t *px = malloc(len);
    if (!px)
        return 0;
    for (size_t i = 0; i < len; i++)
        px[i] = size > 2 ? data[2 + i % (size - 2)] : 0;
    bcd_image img = { w, h, 3, px };
    struct bcd__rep_image png = { 0 };
    bcd_status st = bcd__rep_encode_png(&png, &img, BCD__REP_PNG_SMALL);
    FUZZ_CHECK(st == BCD_OK || st == BCD_ENOMEM);
    if (st == BCD_OK) {
        FUZZ_CHECK(png.width == w && png.height == h && strcmp(png.mime, "image/png") == 0);
        bcd_image *back = NULL;
        FUZZ_CHECK(bcd_image_decode(&back, ctx, png.data, png.len) == BCD_OK);
        FUZZ_CHECK(back->width == w && back->height == h && back->channels == 3);
        FUZZ_CHECK(memcmp(back->data, px, len) == 0);
        bcd_image_free(back);
        bcd__rep_image_clear(&png);
    }
    free(px);
    return 0;
}
