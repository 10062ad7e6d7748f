/* bcd_image_decode: JPEG and PNG from untrusted bytes, EXIF orientation included.
 * The ctx limits decoded images to 4 megapixels (BCD_MAX_PIXELS): the limit check itself
 * is part of what is fuzzed, and bigger images only slow the run down. */
#include <bcd.h>

#include "fuzz.h"

static bcd_ctx *ctx;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (bcd_ctx_new(&ctx) != BCD_OK || bcd_ctx_set(ctx, "BCD_MAX_PIXELS", "4000000") != BCD_OK)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bcd_image *img = NULL;
    bcd_status st = bcd_image_decode(&img, ctx, data, size);
    if (st == BCD_OK) {
        FUZZ_CHECK(img && img->channels == 3 && img->width > 0 && img->height > 0);
        FUZZ_CHECK((uint64_t)img->width * img->height <= 4000000u);
        /* every byte of the pixel buffer is there and initialized (MSan/ASan) */
        size_t n = (size_t)img->width * img->height * 3;
        unsigned sum = 0;
        for (size_t i = 0; i < n; i += 997)
            sum += img->data[i];
        sum += img->data[n - 1];
        (void)sum;
        bcd_image_free(img);
    } else {
        FUZZ_CHECK(img == NULL);
        FUZZ_CHECK(st == BCD_EFORMAT || st == BCD_ELIMIT || st == BCD_ENOMEM || st == BCD_EINVAL);
    }
    return 0;
}
