/* Internal image helpers shared by lib/image. Not installed. */
#ifndef BCD_IMAGE_INTERNAL_H
#define BCD_IMAGE_INTERNAL_H

#include "bcd/image.h"
#include "core/core.h"

/* Allocate an image with an uninitialised w*h*c pixel buffer; NULL on overflow or OOM. */
bcd_image *bcd__image_new(uint32_t w, uint32_t h, uint32_t c);
/* A caller-supplied image is valid: non-NULL data, w, h > 0, c == 3. */
bool bcd__image_valid_rgb(const bcd_image *img);
/* Whether every chunk of the PNG in memory, up to IEND, declares no more bytes than the
 * file has left (decode.c: read a PNG with libpng only if so). */
bool bcd__png_chunks_fit(const uint8_t *data, size_t len);
/* bcd_image_equalize(); simd false keeps to the scalar code even where the CPU has a
 * vector path (the two give the same bytes; the tests compare them). */
bcd_status bcd__image_equalize_with(bcd_image **out, const bcd_image *in, bool simd);

/* bcd_image_preprocess() that also hands every row of in (width * 3 bytes, index y) to
 * fn, once and in order, while it reads them for the histogram: for a caller that needs
 * another pass over the whole photo (it then costs no second read of it from memory).
 * fn NULL: bcd_image_preprocess(). */
typedef void (*bcd__image_row_fn)(void *arg, const uint8_t *row, uint32_t y);
bcd_status bcd__image_preprocess_rows(float *out, size_t out_len, const bcd_image *in, bcd__image_row_fn fn,
                                      void *arg);

#endif
