#ifndef BCD_IMAGE_H
#define BCD_IMAGE_H
/**
 * @file bcd/image.h
 * Decoding (JPEG, PNG) and the preprocessing pipeline, each step a pure function.
 *
 * The pipeline, bit for bit as OpenCV does it on uint8/float32 data:
 *   decode → RGB→YUV, equalize Y, YUV→RGB (bcd_image_equalize)
 *          → float32, centre square crop, area resize to 224×224, round to uint8
 *            (bcd_image_crop_resize)
 *          → scale to [0,1], ImageNet mean/std, CHW float32 (bcd_image_to_tensor).
 * bcd_image_preprocess() runs all three.
 *
 * Threads: the steps (equalize, crop_resize, to_tensor, preprocess) take no ctx and touch
 * no shared state: any thread, and one input image may be read by several threads at
 * once. Decoding and writing use a ctx: one thread per ctx at a time. Their failures are
 * reported by status only (there is no handle to hold detail).
 */
#include "common.h"
#include "ctx.h"

BCD_BEGIN_DECLS

/** Side of the square network input. */
#define BCD_INPUT_SIZE 224
/** Number of floats in one preprocessed tensor (3 × 224 × 224). */
#define BCD_TENSOR_LEN (3 * BCD_INPUT_SIZE * BCD_INPUT_SIZE)
/** Default limit on decoded pixels (width × height). */
#define BCD_DEFAULT_MAX_PIXELS 100000000u
/** Default limit on either side in pixels. */
#define BCD_DEFAULT_MAX_DIMENSION 65500u

/**
 * An 8-bit image in memory, rows top to bottom, no padding between rows.
 * Images made by the library are freed with bcd_image_free(); the struct may also be
 * filled by the caller over its own buffer to pass pixels in (the library never frees
 * or keeps such a buffer).
 */
typedef struct bcd_image {
    uint32_t width;
    uint32_t height;
    uint32_t channels; /**< 3 (RGB, interleaved) for every image the library returns */
    uint8_t *data;     /**< width * height * channels bytes */
} bcd_image;

/**
 * Decode a JPEG or PNG held in memory; the format is chosen from the magic bytes.
 * The EXIF orientation (JPEG APP1, PNG eXIf) is applied, alpha is dropped (as PIL's
 * convert("RGB") does: the colour values are kept, not blended), grey is expanded,
 * 16-bit samples are reduced to 8 bits, CMYK/YCCK JPEGs are converted to RGB.
 * The size limits of ctx (BCD_MAX_PIXELS, BCD_MAX_DIMENSION) are checked from the
 * header, before the pixel buffer is allocated. Any libjpeg warning (truncated data,
 * extraneous bytes) is treated as an error: a half-decoded image is never returned.
 * @param[out] out  the new RGB image; caller frees with bcd_image_free(). Untouched on failure.
 * @param ctx       receives the error detail on failure; configuration source.
 * @param data      encoded bytes; borrowed for the call only.
 * @return BCD_OK, BCD_EFORMAT (not JPEG/PNG, corrupt, truncated, unsupported),
 *         BCD_ELIMIT (too large), BCD_EINVAL, BCD_ENOMEM.
 * Threads: one thread per ctx at a time.
 */
BCD_API bcd_status bcd_image_decode(bcd_image **out, bcd_ctx *ctx, const void *data, size_t len);

/**
 * As bcd_image_decode(), reading the file at path.
 * @param[out] out  the new RGB image; caller frees with bcd_image_free(). Untouched on failure.
 * @param path      borrowed for the call.
 * @return as bcd_image_decode(), plus BCD_ENOTFOUND ("file_not_found") and BCD_EIO
 *         ("file_unreadable"). Detail on ctx.
 * Threads: one thread per ctx at a time.
 */
BCD_API bcd_status bcd_image_decode_file(bcd_image **out, bcd_ctx *ctx, const char *path);

/**
 * Options of bcd_image_decode_ext() and bcd_image_decode_file_ext(): reduced-scale JPEG
 * decoding. Every field other than version is a minimum the decoded image must keep,
 * measured after the EXIF orientation is applied; 0 sets no minimum. With every minimum 0
 * (BCD_IMAGE_DECODE_OPTIONS_INIT) the result is exactly that of bcd_image_decode().
 *
 * A JPEG is then decoded at the smallest of the scales 1/8, 1/4 and 1/2 (libjpeg-turbo's
 * DCT-domain scaling: the inverse DCT of each 8x8 block yields 1x1, 2x2 or 4x4 pixels)
 * whose result still meets every minimum, else at full size; the size is libjpeg's,
 * ceil(side / 8), ceil(side / 4), ceil(side / 2), so 3024x4032 gives 378x504, 756x1008 or
 * 1512x2016. The other scales libjpeg-turbo offers (3/8, 5/8, 6/8, 7/8) are not used:
 * their inverse DCT has no SIMD code, so on 12 MP photos 7/8 is slower than full size,
 * 6/8 and 5/8 save at most about a fifth, and 3/8 is slower than 1/2
 * (tests/bench/bench_decode.py --libjpeg-scales); and 1/8, 1/4, 1/2 are the scales of
 * PIL's draft mode, so a Python reference can reproduce a reduced decode exactly (see
 * below). An image that is already smaller than asked is decoded at full size; no image
 * is ever enlarged. PNG is always decoded at full size. The size limits (BCD_MAX_PIXELS,
 * BCD_MAX_DIMENSION) apply to the full stored size, as for bcd_image_decode(), whatever
 * the scale.
 *
 * What scaling does to results: the reduced image is a good downscale (each 8x8 block is
 * reduced from its frequency coefficients; it differs from a full decode followed by an
 * INTER_AREA resize to the same size by well under one level on average) but not the
 * same bytes. At 1/2, 1/4 and 1/8 it is byte for byte what PIL's Image.draft("RGB", size)
 * gives with the same libjpeg-turbo. Entropy decoding still reads the whole file; the
 * inverse DCT, upsampling and colour conversion run on the smaller image, and whatever
 * follows (preprocessing) handles fewer pixels: for a 3024x4032 photo, decode +
 * preprocess takes about 3-5 times less time at 1/4 (tests/bench/bench_decode.py).
 *
 * Parity: the OpenCV-parity guarantee of the preprocessing (top of this file) is about
 * the pipeline from the full-size decode. Preprocessing a reduced image is exact for
 * that image, but its tensor differs slightly from the full-size photo's, because
 * equalization and the area resize then see fewer, already averaged pixels (a full
 * decode resized to the same size differs as much). Measured on 3024x4032 JPEGs with
 * min_short_side chosen for each scale, MobileNetV2 embedding cosine to the full-size
 * path: 0.9996-0.99993 at 1/2, 0.998-0.9998 at 1/4, 0.989-0.9986 at 1/8; the builtin
 * embedder changes less (above 0.9998 at 1/8). So min_short_side = BCD_INPUT_SIZE
 * (1/8 for a 12 MP photo) is the fastest choice and 2 * BCD_INPUT_SIZE (1/4) a closer
 * one. Callers that store embeddings should use one setting for all photos they compare.
 */
typedef struct bcd_image_decode_options {
    unsigned int version;        /**< BCD_IMAGE_DECODE_OPTIONS_VERSION; always first */
    unsigned int min_short_side; /**< shorter side at least this (e.g. BCD_INPUT_SIZE); 0: any */
    unsigned int min_long_side;  /**< longer side at least this; 0: any */
    unsigned int min_width;      /**< width (as displayed, after EXIF orientation); 0: any */
    unsigned int min_height;     /**< height (as displayed, after EXIF orientation); 0: any */
} bcd_image_decode_options;

#define BCD_IMAGE_DECODE_OPTIONS_VERSION 1
#define BCD_IMAGE_DECODE_OPTIONS_INIT { BCD_IMAGE_DECODE_OPTIONS_VERSION, 0, 0, 0, 0 }

/**
 * Fill opts with the defaults of the given version (every minimum 0: full-size decoding),
 * for callers that cannot use BCD_IMAGE_DECODE_OPTIONS_INIT.
 * @return BCD_OK, BCD_EINVAL (NULL or unknown version).
 * Threads: any thread.
 */
BCD_API bcd_status bcd_image_decode_options_init(bcd_image_decode_options *opts, unsigned int version);

/**
 * bcd_image_decode() with options: a JPEG may be decoded at a reduced scale, see
 * bcd_image_decode_options. Everything else (formats, orientation, colour, limits, errors)
 * is as bcd_image_decode().
 * @param opts  NULL for defaults (full size); borrowed for the call.
 * @return as bcd_image_decode(); BCD_EINVAL "invalid_options" for an unknown options
 *         version. Detail on ctx.
 * Threads: one thread per ctx at a time.
 */
BCD_API bcd_status bcd_image_decode_ext(bcd_image **out, bcd_ctx *ctx, const void *data, size_t len,
                                        const bcd_image_decode_options *opts);

/**
 * bcd_image_decode_file() with options (see bcd_image_decode_ext()).
 * @return as bcd_image_decode_file(); BCD_EINVAL "invalid_options" for an unknown
 *         options version. Detail on ctx.
 * Threads: one thread per ctx at a time.
 */
BCD_API bcd_status bcd_image_decode_file_ext(bcd_image **out, bcd_ctx *ctx, const char *path,
                                             const bcd_image_decode_options *opts);

/**
 * Remove metadata from an encoded JPEG or PNG without re-encoding it: the result decodes
 * (bcd_image_decode()) to exactly the same pixels as the input, EXIF orientation included.
 * What stays is what decoding needs: for JPEG the tables, frame and scan data as they are,
 * the JFIF APP0 segment without its thumbnail, the Adobe APP14 segment (CMYK/YCCK colour
 * transform) and, when the picture is not upright, a minimal EXIF APP1 segment holding only
 * the Orientation tag; for PNG the critical chunks, tRNS, gAMA, cHRM, sRGB and sBIT as they
 * are and, when needed, a minimal eXIf chunk holding only the Orientation tag. Everything
 * else is removed: EXIF (GPS position, camera and lens serial numbers, maker notes, dates,
 * thumbnails), XMP, IPTC and Photoshop resources, ICC profiles, comments, text chunks,
 * previews and any data after the end of the image. bcd_image_add() stores photos through it.
 * @param[out] out      the new encoded image; caller frees with bcd_free(). Untouched on
 *                      failure.
 * @param[out] out_len  its length in bytes. Untouched on failure.
 * @param ctx           receives the error detail on failure.
 * @param data          encoded bytes; borrowed for the call only.
 * @return BCD_OK, BCD_EFORMAT (not JPEG/PNG; truncated; damaged in a way that makes the
 *         result uncertain, e.g. bytes between JPEG segments), BCD_EINVAL, BCD_ENOMEM.
 *         Detail on ctx.
 * Threads: one thread per ctx at a time.
 * @since 0.2
 */
BCD_API bcd_status bcd_image_strip_metadata(void **out, size_t *out_len, bcd_ctx *ctx, const void *data,
                                            size_t len);

/**
 * Free an image made by the library (never one the caller filled over its own buffer).
 * NULL: no-op.
 * Threads: any thread, once no other thread reads img.
 */
BCD_API void bcd_image_free(bcd_image *img);

/**
 * RGB→YUV, histogram equalization of Y, YUV→RGB, all on uint8, exactly as OpenCV's
 * cvtColor(COLOR_RGB2YUV), equalizeHist, cvtColor(COLOR_YUV2RGB).
 * @param[out] out  new image of the same size; caller frees with bcd_image_free().
 *                  Untouched on failure.
 * @param in        RGB image (channels == 3); borrowed for the call.
 * @return BCD_OK, BCD_EINVAL (NULL, not 3 channels, empty), BCD_ENOMEM. Status only.
 * Threads: any thread.
 */
BCD_API bcd_status bcd_image_equalize(bcd_image **out, const bcd_image *in);

/**
 * Convert to float32, crop the centred square of side min(w,h) (offset rounded down),
 * resize it to size×size as OpenCV's resize(INTER_AREA) on float32, and round to
 * uint8 (to nearest, ties to even, clamped to 0..255).
 * @param[out] out  new size×size RGB image; caller frees with bcd_image_free().
 *                  Untouched on failure.
 * @param in        RGB image; borrowed for the call.
 * @return BCD_OK, BCD_EINVAL (NULL, not 3 channels, empty, size 0), BCD_ENOMEM.
 *         Status only.
 * Threads: any thread.
 */
BCD_API bcd_status bcd_image_crop_resize(bcd_image **out, const bcd_image *in, uint32_t size);

/**
 * Scale a 224×224 RGB image to [0,1] and normalize with the ImageNet mean
 * (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225) into CHW float32.
 * @param out      BCD_TENSOR_LEN floats owned by the caller, written by the call.
 * @param in       224×224 RGB image; borrowed for the call.
 * @return BCD_OK, BCD_EINVAL (wrong size or out_len). Status only.
 * Threads: any thread.
 */
BCD_API bcd_status bcd_image_to_tensor(float *out, size_t out_len, const bcd_image *in);

/**
 * The whole preprocessing pipeline (equalize, crop and resize, tensor) on a decoded
 * RGB image.
 * @param out      BCD_TENSOR_LEN floats owned by the caller, written by the call.
 * @param in       RGB image of any size; borrowed for the call.
 * @return BCD_OK, BCD_EINVAL (NULL, not 3 channels, empty, out_len too small),
 *         BCD_ENOMEM. Status only.
 * Threads: any thread.
 */
BCD_API bcd_status bcd_image_preprocess(float *out, size_t out_len, const bcd_image *in);

/**
 * Encode an RGB image as PNG into a file (used to write preprocessed images). The PNG is
 * written to a temporary file next to path (mode 0600), synced and renamed over it, so a
 * failure leaves an existing file as it was; a symbolic link is followed to its target
 * (the link stays); "-", /dev/stdout, pipes and devices are written directly; a folder or
 * another special file is refused.
 * @param ctx   receives the error detail on failure.
 * @param img   borrowed for the call.
 * @param path  borrowed for the call.
 * @return BCD_OK, BCD_EIO (cannot create or write the file), BCD_EINVAL, BCD_ENOMEM.
 *         Detail on ctx.
 * Threads: one thread per ctx at a time.
 */
BCD_API bcd_status bcd_image_write_png(bcd_ctx *ctx, const bcd_image *img, const char *path);

/**
 * Write a tensor (as made by bcd_image_preprocess()) into a file as raw float32,
 * little-endian, in the same way as bcd_image_write_png() writes its file.
 * @param ctx   receives the error detail on failure.
 * @param t     n floats, borrowed for the call.
 * @param path  borrowed for the call.
 * @return BCD_OK, BCD_EIO (cannot create or write the file), BCD_EINVAL, BCD_ENOMEM.
 *         Detail on ctx.
 * Threads: one thread per ctx at a time.
 * @since 0.1.1
 */
BCD_API bcd_status bcd_image_write_tensor(bcd_ctx *ctx, const float *t, size_t n, const char *path);

BCD_END_DECLS

#endif
