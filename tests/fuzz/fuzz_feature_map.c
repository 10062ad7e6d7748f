/* The stored feature maps analyze reads back: a 16-bit greyscale PNG of half floats of an
 * expected size (lib/report/encode.c). The first two bytes choose the expected width and
 * height (1-64 each); the rest is the blob. A blob that decodes must encode back to one
 * that decodes to the same samples, and every sample must survive half -> float -> half. */
#include "report/report.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint32_t w = (uint32_t)(data[0] % 64) + 1, h = (uint32_t)(data[1] % 64) + 1;
    uint16_t *px = malloc((size_t)w * h * sizeof *px), *back = malloc((size_t)w * h * sizeof *back);
    if (!px || !back) {
        free(px);
        free(back);
        return 0;
    }
    bcd_status st = bcd__rep_decode_png16(px, w, h, data + 2, size - 2);
    FUZZ_CHECK(st == BCD_OK || st == BCD_EFORMAT || st == BCD_ENOMEM);
    if (st == BCD_OK) {
        struct bcd__rep_image png = { 0 };
        if (bcd__rep_encode_png16(&png, px, w, h) == BCD_OK) {
            FUZZ_CHECK(bcd__rep_decode_png16(back, w, h, png.data, png.len) == BCD_OK);
            FUZZ_CHECK(memcmp(px, back, (size_t)w * h * sizeof *px) == 0);
            bcd__rep_image_clear(&png);
        }
        for (size_t i = 0; i < (size_t)w * h; i++) {
            float f = bcd__rep_float(px[i]);
            uint16_t again = bcd__rep_half(f);
            /* NaN stays NaN; an infinity saturates to the largest half */
            if (f != f)
                FUZZ_CHECK((again & 0x7c00u) == 0x7c00u && (again & 0x3ffu));
            else if ((px[i] & 0x7fffu) == 0x7c00u)
                FUZZ_CHECK(again == (uint16_t)(px[i] - 1));
            else
                FUZZ_CHECK(again == px[i]);
        }
    }
    free(px);
    free(back);
    return 0;
}
