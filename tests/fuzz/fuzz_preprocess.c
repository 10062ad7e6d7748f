/* The preprocessing steps on decoded images of any (small) size: bcd_image_equalize,
 * bcd_image_crop_resize to a fuzzer-chosen side, bcd_image_preprocess (the whole
 * pipeline to the 3x224x224 tensor).
 * Input: byte 0 and 1: width and height - 1 (1..256), byte 2: output side of
 * crop_resize - 1 (1..256), byte 3: channel count (3 unless bit 7 is set, then 0..4)
 * and whether to run the whole pipeline too (bit 6; the 224x224 resize of every input
 * would slow the run down tenfold), the rest: pixels, repeated to fill the image (zeros when there are none). */
#include <math.h>

#include <bcd.h>

#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

static float *tensor;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    uint32_t w = (uint32_t)data[0] + 1, h = (uint32_t)data[1] + 1, side = (uint32_t)data[2] + 1;
    uint32_t ch = data[3] & 0x80 ? data[3] % 5 : 3;
    const uint8_t *px = data + 4;
    size_t npx = size - 4;
    size_t n = (size_t)w * h * (ch ? ch : 1);
    uint8_t *buf = malloc(n);
    if (!buf)
        return 0;
    for (size_t i = 0; i < n; i++)
        buf[i] = npx ? px[i % npx] : 0;
    bcd_image in = {.width = w, .height = h, .channels = ch, .data = buf};

    bcd_image *eq = NULL;
    bcd_status st = bcd_image_equalize(&eq, &in);
    FUZZ_CHECK(ch == 3 ? st == BCD_OK : st == BCD_EINVAL);
    if (st == BCD_OK) {
        FUZZ_CHECK(eq->width == w && eq->height == h && eq->channels == 3);
        bcd_image_free(eq);
    }

    bcd_image *small = NULL;
    st = bcd_image_crop_resize(&small, &in, side);
    FUZZ_CHECK(ch == 3 ? st == BCD_OK : st == BCD_EINVAL);
    if (st == BCD_OK) {
        FUZZ_CHECK(small->width == side && small->height == side && small->channels == 3);
        /* a constant image stays constant */
        bool constant = true;
        for (size_t i = 3; i < n && constant; i++)
            constant = buf[i] == buf[i % 3];
        if (constant)
            for (size_t i = 0; i < (size_t)side * side * 3; i++)
                FUZZ_CHECK(small->data[i] == buf[i % 3]);
        bcd_image_free(small);
    }

    if (!(data[3] & 0x40)) {
        free(buf);
        return 0;
    }
    if (!tensor && !(tensor = malloc(BCD_TENSOR_LEN * sizeof *tensor)))
        abort();
    st = bcd_image_preprocess(tensor, BCD_TENSOR_LEN, &in);
    FUZZ_CHECK(ch == 3 ? st == BCD_OK : st == BCD_EINVAL);
    if (st == BCD_OK) {
        /* (x / 255 - mean) / std for x in 0..255: within [-2.2, 2.7] */
        for (size_t i = 0; i < BCD_TENSOR_LEN; i++)
            FUZZ_CHECK(isfinite(tensor[i]) && tensor[i] > -2.2f && tensor[i] < 2.7f);
    }
    free(buf);
    return 0;
}
