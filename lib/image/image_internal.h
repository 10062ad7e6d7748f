/* Internal image helpers shared by lib/image. Not installed. */
#ifndef BCD_IMAGE_INTERNAL_H
#define BCD_IMAGE_INTERNAL_H

#include "bcd/image.h"
#include "core/core.h"

/* Allocate an image with an uninitialised w*h*c pixel buffer; NULL on overflow or OOM. */
bcd_image *bcd__image_new(uint32_t w, uint32_t h, uint32_t c);
/* A caller-supplied image is valid: non-NULL data, w, h > 0, c == 3. */
bool bcd__image_valid_rgb(const bcd_image *img);

#endif
