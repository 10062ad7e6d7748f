#include <stdlib.h>

#include "image_internal.h"

bcd_image *bcd__image_new(uint32_t w, uint32_t h, uint32_t c)
{
    if (w == 0 || h == 0 || c == 0)
        return NULL;
    size_t n = (size_t)w * h;
    if (n / w != h || n > SIZE_MAX / c)
        return NULL;
    bcd_image *img = malloc(sizeof *img);
    if (!img)
        return NULL;
    img->data = malloc(n * c);
    if (!img->data) {
        free(img);
        return NULL;
    }
    img->width = w;
    img->height = h;
    img->channels = c;
    return img;
}

bool bcd__image_valid_rgb(const bcd_image *img)
{
    return img && img->data && img->width > 0 && img->height > 0 && img->channels == 3;
}

void bcd_image_free(bcd_image *img)
{
    if (!img)
        return;
    free(img->data);
    free(img);
}
