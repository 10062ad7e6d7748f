/* EXIF orientation: the TIFF reader (PNG eXIf payload) and the JPEG APP1 reader, then
 * turning a small image upright with the orientation found. */
#include "image/exif.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int o = bcd__exif_orientation(data, size);
    FUZZ_CHECK(o >= 1 && o <= 8);
    int a = bcd__exif_orientation_app1(data, size);
    FUZZ_CHECK(a >= 0 && a <= 8);
    if (size >= 6 && memcmp(data, "Exif\0\0", 6) == 0)
        FUZZ_CHECK(a == bcd__exif_orientation(data + 6, size - 6));
    else
        FUZZ_CHECK(a == 0);

    /* a 3x2 image with distinct pixels: orientations 5..8 swap the sides */
    bcd_image *img = bcd__image_new(3, 2, 3);
    if (!img)
        return 0;
    for (size_t i = 0; i < 18; i++)
        img->data[i] = (uint8_t)i;
    int use = a ? a : o;
    if (bcd__image_orient(&img, use) == BCD_OK) {
        bool swap = use >= 5 && use <= 8;
        FUZZ_CHECK(img->width == (swap ? 2u : 3u) && img->height == (swap ? 3u : 2u));
        /* the same pixels, moved: their sum is unchanged */
        unsigned sum = 0;
        for (size_t i = 0; i < 18; i++)
            sum += img->data[i];
        FUZZ_CHECK(sum == 153);
    }
    bcd_image_free(img);
    return 0;
}
