/*
 * EXIF Orientation: find the tag in a TIFF-structured EXIF block and turn a decoded
 * image upright.
 *
 * Only IFD0 is read and only tag 0x0112; nothing else of EXIF matters here. The block
 * comes from untrusted files, so every offset is checked against the block length before
 * it is followed, and any malformation simply means "no orientation" (1): a broken EXIF
 * block is no reason to refuse an otherwise good picture (browsers and PIL behave alike).
 */
#include <stdbool.h>
#include <string.h>

#include "exif.h"

#define TIFF_MAGIC 42
#define TAG_ORIENTATION 0x0112
#define TYPE_SHORT 3
#define TYPE_LONG 4
#define IFD_ENTRY_SIZE 12

static uint32_t rd16(const uint8_t *p, bool le)
{
    return le ? (uint32_t)p[0] | (uint32_t)p[1] << 8 : (uint32_t)p[0] << 8 | (uint32_t)p[1];
}

static uint32_t rd32(const uint8_t *p, bool le)
{
    return le ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24
              : (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

int bcd__exif_orientation(const uint8_t *tiff, size_t len)
{
    if (!tiff || len < 8)
        return 1;
    bool le;
    if (tiff[0] == 'I' && tiff[1] == 'I')
        le = true;
    else if (tiff[0] == 'M' && tiff[1] == 'M')
        le = false;
    else
        return 1;
    if (rd16(tiff + 2, le) != TIFF_MAGIC)
        return 1;

    /* An IFD offset inside the 8-byte header, or one leaving no room for the entry count,
     * is malformed; len >= 8 keeps len - 2 from wrapping. */
    uint32_t ifd = rd32(tiff + 4, le);
    if (ifd < 8 || ifd > len - 2)
        return 1;
    uint32_t count = rd16(tiff + ifd, le);
    size_t pos = (size_t)ifd + 2;
    /* pos <= len holds throughout: it only advances past entries that fit. */
    for (uint32_t i = 0; i < count && len - pos >= IFD_ENTRY_SIZE; i++, pos += IFD_ENTRY_SIZE) {
        const uint8_t *e = tiff + pos;
        if (rd16(e, le) != TAG_ORIENTATION)
            continue;
        /* A single SHORT is what the standard prescribes; a LONG is accepted too since
         * the value still fits in the entry. Anything else is not an orientation. */
        uint32_t type = rd16(e + 2, le);
        uint32_t n = rd32(e + 4, le);
        uint32_t v = 0;
        if (n == 1 && type == TYPE_SHORT)
            v = rd16(e + 8, le);
        else if (n == 1 && type == TYPE_LONG)
            v = rd32(e + 8, le);
        return v >= 1 && v <= 8 ? (int)v : 1;
    }
    return 1;
}

int bcd__exif_orientation_app1(const uint8_t *data, size_t len)
{
    static const uint8_t exif_id[6] = { 'E', 'x', 'i', 'f', 0, 0 };
    if (!data || len < sizeof exif_id || memcmp(data, exif_id, sizeof exif_id) != 0)
        return 0;
    return bcd__exif_orientation(data + sizeof exif_id, len - sizeof exif_id);
}

bcd_status bcd__image_orient(bcd_image **img, int orientation)
{
    if (orientation < 2 || orientation > 8)
        return BCD_OK;
    const bcd_image *src = *img;
    const ptrdiff_t w = src->width, h = src->height, c = src->channels;
    const bool swap = orientation >= 5; /* the values that include a quarter turn */
    bcd_image *dst = bcd__image_new(swap ? src->height : src->width, swap ? src->width : src->height, src->channels);
    if (!dst)
        return BCD_ENOMEM;

    /* Every orientation is a walk over the source: output pixel (x, y) is source pixel
     * start + x * step_x + y * step_y (pixel indices, row-major source). One loop then
     * serves all seven cases. */
    ptrdiff_t start, step_x, step_y;
    switch (orientation) {
    case 2: /* mirror left-right */
        start = w - 1, step_x = -1, step_y = w;
        break;
    case 3: /* rotate 180 */
        start = w * h - 1, step_x = -1, step_y = -w;
        break;
    case 4: /* mirror top-bottom */
        start = (h - 1) * w, step_x = 1, step_y = -w;
        break;
    case 5: /* transpose: out(x, y) = src(y, x) */
        start = 0, step_x = w, step_y = 1;
        break;
    case 6: /* rotate 90 clockwise: out(x, y) = src(y, h-1-x) */
        start = (h - 1) * w, step_x = -w, step_y = 1;
        break;
    case 7: /* transverse: out(x, y) = src(w-1-y, h-1-x) */
        start = w * h - 1, step_x = -w, step_y = -1;
        break;
    default: /* 8, rotate 90 counter-clockwise: out(x, y) = src(w-1-y, x) */
        start = w - 1, step_x = w, step_y = -1;
        break;
    }

    const uint8_t *s = src->data;
    uint8_t *d = dst->data;
    for (uint32_t y = 0; y < dst->height; y++) {
        ptrdiff_t p = start + (ptrdiff_t)y * step_y;
        for (uint32_t x = 0; x < dst->width; x++, p += step_x, d += c)
            memcpy(d, s + p * c, (size_t)c);
    }
    bcd_image_free(*img);
    *img = dst;
    return BCD_OK;
}
