/* EXIF orientation: reading the tag and applying it. Internal to lib/image, not installed. */
#ifndef BCD_IMAGE_EXIF_H
#define BCD_IMAGE_EXIF_H

#include <stddef.h>
#include <stdint.h>

#include "image_internal.h"

/*
 * The Orientation tag (0x0112) of IFD0 in a TIFF-structured EXIF block ("II*\0" or
 * "MM\0*" header), as found in a PNG eXIf chunk. Every offset is checked against len, so
 * the block may come from an untrusted file. Returns 1..8; 1 when the block is malformed,
 * has no orientation, or holds a value outside 1..8 (0 is common in the wild).
 */
int bcd__exif_orientation(const uint8_t *tiff, size_t len);

/*
 * As bcd__exif_orientation() for the payload of a JPEG APP1 segment (after the length
 * field), which must start with "Exif\0\0". Returns 0 when the segment is not EXIF (XMP
 * also lives in APP1), so the caller can go on to the next one.
 */
int bcd__exif_orientation_app1(const uint8_t *data, size_t len);

/*
 * Turn the decoded (stored) image upright for EXIF orientation 1..8 (see
 * bcd__exif_orientation()). On success *img may be replaced by a new image (the old one is
 * freed); on failure (BCD_ENOMEM) *img is left as it was. Values outside 2..8 do nothing.
 */
bcd_status bcd__image_orient(bcd_image **img, int orientation);

#endif
