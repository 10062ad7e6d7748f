/*
 * Decoding JPEG (libjpeg-turbo through the libjpeg API) and PNG (libpng) into 8-bit RGB.
 *
 * The policy, in one place:
 *
 * - The decoder is chosen from the magic bytes only (JPEG FF D8 FF, the 8-byte PNG
 *   signature), never from a file name.
 * - Size limits (BCD_MAX_DIMENSION per side, BCD_MAX_PIXELS in all, from ctx) are checked
 *   on the stored size read from the header, before the pixel buffer is allocated; both
 *   are unchanged by an EXIF quarter turn. Failure: BCD_ELIMIT "image_too_large".
 *   libjpeg's working memory (whole-image coefficient buffers of progressive files) is
 *   capped to what an image of the header's size needs, and libpng gets the dimension
 *   limit through png_set_user_limits(), as second lines of defence.
 * - JPEG: EVERY libjpeg warning is an error. libjpeg-turbo papers over damage with
 *   warnings: a truncated scan ("Premature end of JPEG file") is filled with grey, stray
 *   bytes ("Corrupt JPEG data: N extraneous bytes before marker 0xd9") are skipped, bad
 *   entropy data is resynchronised, and the call reports success. Any of these would hand
 *   back a picture that is not the one taken, so the message hook (emit_message with
 *   msg_level -1) ends decoding exactly as error_exit does. This deliberately rejects
 *   files that are whole except for a few stray bytes before EOI. One warning is let
 *   through: extraneous bytes before a restart marker (RST0-RST7). libjpeg only reaches
 *   the marker after decoding every MCU of the restart interval, and each interval is
 *   decoded independently, so the bytes are padding (as Motion-JPEG encoders write), not
 *   lost picture data; damage inside an interval shows up as a different warning
 *   ("premature end of data segment"), which stays an error.
 * - JPEG progressive files with more than MAX_JPEG_SCANS scans are refused (BCD_ELIMIT
 *   "too_many_scans"): each scan costs a pass over the whole image, so a small file with
 *   thousands of scans is a denial of service, not a photo.
 * - JPEG colour: grey, YCbCr and RGB are converted to RGB by libjpeg. CMYK and YCCK are
 *   read as CMYK and converted as PIL's convert("RGB") does, so results match the Python
 *   reference: like PIL, every 4-component JPEG is taken to store Adobe's inverted values
 *   (stored = 255 - ink), and R = K' - round(C * K' / 255) with C = 255 - stored cyan and
 *   K' = stored black; that is R ~= stored_c * stored_k / 255 (G, B likewise from magenta,
 *   yellow). No ICC colour management. 12-bit and other non-8-bit JPEGs:
 *   BCD_EFORMAT "unsupported_image".
 * - PNG: every valid colour type and depth. Palette and grey are expanded (1, 2, 4-bit grey
 *   scaled to 0..255), 16-bit samples keep their high byte (png_set_strip_16, as PIL does
 *   for 16-bit RGB/RGBA/LA; for 16-bit grey PIL clamps to 255 instead, a PIL quirk not
 *   copied), alpha and tRNS are dropped without blending, as PIL's
 *   convert("RGB") does; no gamma, background or sBIT processing. CRC errors in critical
 *   chunks are errors (libpng's default; ancillary chunks with a bad CRC are skipped), a
 *   chunk longer than the rest of the file is a truncation (png_chunks_fit). The
 *   file must be complete up to IEND: png_read_end() errors are errors too, in the same
 *   spirit as the JPEG rule.
 * - EXIF orientation (the first JPEG APP1 "Exif\0\0" segment, PNG eXIf before or after
 *   the image data) is applied; see exif.c.
 * - Reduced scale (bcd_image_decode_ext()): a JPEG is decoded with libjpeg's
 *   scale_num/scale_denom = 1/8, 1/4 or 1/2, the smallest whose output (libjpeg's own
 *   arithmetic, asked through jpeg_calc_output_dimensions()) meets every minimum of the
 *   options, else at full size. The minimums are in displayed orientation (EXIF quarter
 *   turns swap the width and height minimums). libjpeg-turbo also offers 3/8, 5/8, 6/8 and
 *   7/8, but its inverse DCT for those has no SIMD code: on 3024x4032 photos 7/8 is
 *   slower than full size, 6/8 and 5/8 save at most about a fifth of the time, and 3/8 is
 *   slower than 1/2, so they are not used; the power-of-two scales are also exactly those
 *   of PIL's draft mode.
 *   Chosen after the header and the EXIF segment are read, before jpeg_start_decompress();
 *   the limits are checked on the stored size before that, and libjpeg's memory cap stays
 *   that of the full size (progressive files keep full-size coefficient buffers whatever
 *   the scale). PNG ignores the options.
 * - On failure *out is untouched, no partial image escapes and nothing leaks: each decoder
 *   keeps everything it allocates in one job struct that the non-jumping caller cleans up.
 *   setjmp() lives in a helper that only changes that struct through a pointer, so no local
 *   of the function holding the jmp_buf is modified after setjmp() (C11 7.13.2.1p3).
 */
#include <inttypes.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h> /* before jpeglib.h, which uses FILE */
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h> /* message codes, to tell truncated from corrupt from unsupported */
#include <png.h>

#include "exif.h"
#include "image_internal.h"

/* Far more scans than encoders write (libjpeg's default progressive script has 10). */
#define MAX_JPEG_SCANS 500
/* Fixed overhead allowed to libjpeg on top of its whole-image buffers: Huffman and
 * quantisation tables, row buffers, saved markers beyond the input size. */
#define JPEG_MEM_SLACK (64ull << 20)

static const uint8_t png_signature[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };

struct limits {
    unsigned long long max_pixels;
    unsigned long long max_dim;
};

/* Minimums of a reduced-scale decode, displayed orientation; all 0: full size. */
struct min_size {
    unsigned int short_side, long_side, width, height;
};

/* The failure a decoder records before unwinding; reported by the caller on ctx. */
struct failure {
    bcd_status status;
    const char *code;
    char msg[JMSG_LENGTH_MAX + 64];
};

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static void set_failure(struct failure *f, bcd_status status, const char *code, const char *fmt, ...)
{
    va_list ap;
    f->status = status;
    f->code = code;
    va_start(ap, fmt);
    vsnprintf(f->msg, sizeof f->msg, fmt, ap);
    va_end(ap);
}

static bool within_limits(struct failure *f, const struct limits *lim, uint32_t w, uint32_t h)
{
    if (w > lim->max_dim || h > lim->max_dim || (unsigned long long)w * h > lim->max_pixels) {
        set_failure(f, BCD_ELIMIT, "image_too_large",
                    "image is %" PRIu32 "x%" PRIu32 " px; limits are %llu px per side, %llu px in all", w, h,
                    lim->max_dim, lim->max_pixels);
        return false;
    }
    return true;
}

/* ---- JPEG ------------------------------------------------------------------------- */

struct jpeg_job {
    struct jpeg_decompress_struct cinfo; /* zeroed first, so destroying it is always safe */
    struct jpeg_error_mgr jerr;
    struct jpeg_progress_mgr progress;
    jmp_buf jmp;
    const uint8_t *data;
    size_t len;
    const struct limits *lim;
    const struct min_size *min;
    bcd_image *img;
    int orientation;
    struct failure fail;
};

/* Turn libjpeg's current message into a failure; the message code tells the kind. */
static void jpeg_record(struct jpeg_job *job, j_common_ptr cinfo)
{
    char text[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, text);
    bcd_status status = BCD_EFORMAT;
    const char *code = "corrupt_image";
    switch (cinfo->err->msg_code) {
    case JWRN_JPEG_EOF:
    case JERR_INPUT_EOF:
    case JERR_INPUT_EMPTY:
        code = "truncated_image";
        break;
    case JERR_IMAGE_TOO_BIG:     /* above libjpeg's 65500 px per side */
    case JERR_NO_BACKING_STORE:  /* over max_memory_to_use */
        status = BCD_ELIMIT;
        code = "image_too_large";
        break;
    case JERR_OUT_OF_MEMORY:
        status = BCD_ENOMEM;
        code = "out_of_memory";
        break;
    case JERR_BAD_PRECISION:     /* 12-bit and 16-bit (lossless) samples */
    case JERR_NOT_COMPILED:      /* e.g. arithmetic coding left out of the build */
    case JERR_NOTIMPL:
    case JERR_CONVERSION_NOTIMPL:
        code = "unsupported_image";
        break;
    default:
        break;
    }
    if (cinfo->err->msg_code == JERR_NO_BACKING_STORE) /* libjpeg's text says nothing useful */
        set_failure(&job->fail, status, code, "JPEG: decoding needs more memory than allowed for its size");
    else
        set_failure(&job->fail, status, code, "JPEG: %s", text);
}

static void on_jpeg_error(j_common_ptr cinfo)
{
    struct jpeg_job *job = cinfo->client_data;
    jpeg_record(job, cinfo);
    longjmp(job->jmp, 1);
}

/* msg_level -1 is a warning: treated as an error (see the top of this file). Levels 0 and
 * up are trace messages, ignored. */
static void on_jpeg_message(j_common_ptr cinfo, int msg_level)
{
    if (msg_level >= 0)
        return;
    if (cinfo->err->msg_code == JWRN_EXTRANEOUS_DATA && cinfo->err->msg_parm.i[1] >= 0xD0 &&
        cinfo->err->msg_parm.i[1] <= 0xD7)
        return; /* padding before a restart marker, see the top of this file */
    on_jpeg_error(cinfo);
}

/* libjpeg's default prints to stderr; the library never does. */
static void on_jpeg_output(j_common_ptr cinfo)
{
    (void)cinfo;
}

/* Called between chunks of input while a progressive file is absorbed. */
static void on_jpeg_progress(j_common_ptr cinfo)
{
    if (!cinfo->is_decompressor)
        return;
    j_decompress_ptr d = (j_decompress_ptr)cinfo;
    if (d->input_scan_number > MAX_JPEG_SCANS) {
        struct jpeg_job *job = cinfo->client_data;
        set_failure(&job->fail, BCD_ELIMIT, "too_many_scans", "JPEG: more than %d scans", MAX_JPEG_SCANS);
        longjmp(job->jmp, 1);
    }
}

/* PIL's MULDIV255: a * b / 255 rounded to nearest, exact for 0..255 operands. */
static inline unsigned muldiv255(unsigned a, unsigned b)
{
    unsigned t = a * b + 128;
    return ((t >> 8) + t) >> 8;
}

/* Inverted (Adobe) CMYK to RGB exactly as PIL: cmyk2rgb on the "CMYK;I" raw mode. */
static void cmyk_row_to_rgb(uint8_t *rgb, const uint8_t *cmyk, uint32_t w)
{
    for (uint32_t x = 0; x < w; x++, rgb += 3, cmyk += 4) {
        unsigned nk = cmyk[3]; /* stored black = 255 - K */
        for (int i = 0; i < 3; i++)
            rgb[i] = (uint8_t)(nk - muldiv255(255u - cmyk[i], nk));
    }
}

/* The orientation from the first EXIF APP1 segment; 1 if there is none. */
static int jpeg_orientation(j_decompress_ptr cinfo)
{
    for (jpeg_saved_marker_ptr m = cinfo->marker_list; m; m = m->next) {
        if (m->marker != JPEG_APP0 + 1)
            continue;
        int o = bcd__exif_orientation_app1(m->data, m->data_length);
        if (o)
            return o;
    }
    return 1;
}

static bool meets(const struct min_size *m, uint32_t w, uint32_t h)
{
    uint32_t s = w < h ? w : h, l = w < h ? h : w;
    return w >= m->width && h >= m->height && s >= m->short_side && l >= m->long_side;
}

/* Set cinfo's scale to the smallest of 1/8, 1/4, 1/2 whose output meets the minimums
 * (full size when none is asked for or no reduction meets them). The minimums are in
 * displayed orientation; orientations 5..8 include a quarter turn, so the stored width
 * becomes the displayed height. May longjmp (jpeg_calc_output_dimensions). */
static void jpeg_choose_scale(j_decompress_ptr cinfo, const struct min_size *min, int orientation)
{
    cinfo->scale_num = 1;
    cinfo->scale_denom = 1;
    if (!min || (!min->short_side && !min->long_side && !min->width && !min->height))
        return;
    struct min_size stored = *min;
    if (orientation >= 5) {
        stored.width = min->height;
        stored.height = min->width;
    }
    for (unsigned int denom = 8; denom >= 2; denom /= 2) {
        cinfo->scale_num = 1;
        cinfo->scale_denom = denom;
        jpeg_calc_output_dimensions(cinfo);
        if (meets(&stored, cinfo->output_width, cinfo->output_height))
            return;
    }
    cinfo->scale_num = 1;
    cinfo->scale_denom = 1;
}

/* Everything that may longjmp. Returns false with job->fail set. */
static bool jpeg_run(struct jpeg_job *job)
{
    j_decompress_ptr cinfo = &job->cinfo;
    if (setjmp(job->jmp))
        return false;

    jpeg_create_decompress(cinfo);
    cinfo->client_data = job;
    cinfo->progress = &job->progress;
    /* jpeg_mem_src takes an unsigned long; only a concern where that is narrower than size_t */
    if (job->len > ULONG_MAX) {
        set_failure(&job->fail, BCD_ELIMIT, "image_too_large", "JPEG: %zu bytes is too much input", job->len);
        return false;
    }
    jpeg_mem_src(cinfo, job->data, (unsigned long)job->len);
    /* 0xFFFF covers the largest possible segment, so EXIF is never cut short. */
    jpeg_save_markers(cinfo, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(cinfo, TRUE);

    if (!within_limits(&job->fail, job->lim, cinfo->image_width, cinfo->image_height))
        return false;

    bool cmyk;
    if (cinfo->jpeg_color_space == JCS_GRAYSCALE || cinfo->jpeg_color_space == JCS_YCbCr ||
        cinfo->jpeg_color_space == JCS_RGB) {
        cinfo->out_color_space = JCS_RGB;
        cmyk = false;
    } else if (cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK) {
        cinfo->out_color_space = JCS_CMYK; /* libjpeg turns YCCK into CMYK */
        cmyk = true;
    } else {
        set_failure(&job->fail, BCD_EFORMAT, "unsupported_image",
                    "JPEG: unsupported colour space with %d components", cinfo->num_components);
        return false;
    }

    /* Whole-image coefficient buffers: 2 bytes per sample, at most 4 components, sides
     * padded to whole MCUs (up to 32 px); realize_virt_arrays() in jpeg_start_decompress()
     * fails with JERR_NO_BACKING_STORE beyond this. Bounded by the limits checked above. */
    unsigned long long mem = 8ull * (cinfo->image_width + 32ull) * (cinfo->image_height + 32ull);
    mem += JPEG_MEM_SLACK + job->len;
    cinfo->mem->max_memory_to_use = mem > (unsigned long long)LONG_MAX ? LONG_MAX : (long)mem;

    job->orientation = jpeg_orientation(cinfo);
    jpeg_choose_scale(cinfo, job->min, job->orientation);
    jpeg_calc_output_dimensions(cinfo);
    const uint32_t want_w = cinfo->output_width, want_h = cinfo->output_height;
    jpeg_start_decompress(cinfo);

    const uint32_t w = cinfo->output_width, h = cinfo->output_height;
    if (w != want_w || h != want_h || w == 0 || h == 0 || w > cinfo->image_width || h > cinfo->image_height ||
        cinfo->output_components != (cmyk ? 4 : 3)) {
        set_failure(&job->fail, BCD_ERROR, "internal_error", "JPEG: unexpected output format from libjpeg");
        return false;
    }
    job->img = bcd__image_new(w, h, 3);
    if (!job->img) {
        set_failure(&job->fail, BCD_ENOMEM, "out_of_memory", "cannot allocate a %" PRIu32 "x%" PRIu32 " image",
                    w, h);
        return false;
    }
    /* CMYK rows go through a scratch row in libjpeg's pool, freed by jpeg_destroy. */
    JSAMPARRAY scratch = NULL;
    if (cmyk)
        scratch = (*cinfo->mem->alloc_sarray)((j_common_ptr)cinfo, JPOOL_IMAGE, w * 4, 1);
    const size_t stride = (size_t)w * 3;
    while (cinfo->output_scanline < h) {
        uint8_t *dst = job->img->data + (size_t)cinfo->output_scanline * stride;
        JSAMPROW row = cmyk ? scratch[0] : dst;
        /* A memory source never suspends, so 0 rows means something is wrong. */
        if (jpeg_read_scanlines(cinfo, &row, 1) != 1) {
            set_failure(&job->fail, BCD_EFORMAT, "corrupt_image", "JPEG: decoder returned no data");
            return false;
        }
        if (cmyk)
            cmyk_row_to_rgb(dst, scratch[0], w);
    }
    /* Reads up to EOI, so damage after the last row (stray bytes) is reported too. */
    jpeg_finish_decompress(cinfo);
    return true;
}

static bcd_status decode_jpeg(bcd_image **out, bcd_ctx *ctx, const struct limits *lim,
                              const struct min_size *min, const uint8_t *data, size_t len)
{
    struct jpeg_job job;
    memset(&job, 0, sizeof job);
    job.data = data;
    job.len = len;
    job.lim = lim;
    job.min = min;
    job.orientation = 1;
    job.cinfo.err = jpeg_std_error(&job.jerr);
    job.jerr.error_exit = on_jpeg_error;
    job.jerr.emit_message = on_jpeg_message;
    job.jerr.output_message = on_jpeg_output;
    job.progress.progress_monitor = on_jpeg_progress;
    /* client_data must reach the error hooks even if jpeg_create_decompress() fails */
    job.cinfo.client_data = &job;

    bool ok = jpeg_run(&job);
    jpeg_destroy_decompress(&job.cinfo);
    if (ok && bcd__image_orient(&job.img, job.orientation) != BCD_OK) {
        set_failure(&job.fail, BCD_ENOMEM, "out_of_memory", "cannot allocate the rotated image");
        ok = false;
    }
    if (!ok) {
        bcd_image_free(job.img);
        return bcd__ctx_fail(ctx, job.fail.status, job.fail.code, "%s", job.fail.msg);
    }
    *out = job.img;
    return BCD_OK;
}

/* ---- PNG -------------------------------------------------------------------------- */

struct png_job {
    const uint8_t *data;
    size_t len;
    size_t pos;
    bool truncated; /* the read callback ran out of data */
    bcd_ctx *ctx;   /* for logging warnings */
    const struct limits *lim;
    bcd_image *img;
    int orientation;
    struct failure fail;
};

static void on_png_error(png_structp png, png_const_charp msg)
{
    struct png_job *job = png_get_error_ptr(png);
    if (strcmp(msg, "Out of memory") == 0) /* png_malloc()'s text */
        set_failure(&job->fail, BCD_ENOMEM, "out_of_memory", "PNG: %s", msg);
    else
        set_failure(&job->fail, BCD_EFORMAT, job->truncated ? "truncated_image" : "corrupt_image", "PNG: %s", msg);
    png_longjmp(png, 1);
}

/* Warnings (benign errors included) never stop decoding; they go to the ctx logger only,
 * since libpng's default would print them to stderr. */
static void on_png_warning(png_structp png, png_const_charp msg)
{
    struct png_job *job = png_get_error_ptr(png);
    bcd__log(job->ctx, BCD_LOG_DEBUG, "PNG warning: %s", msg);
}

static void read_png_mem(png_structp png, png_bytep buf, size_t n)
{
    struct png_job *job = png_get_io_ptr(png);
    if (job->len - job->pos < n) {
        job->truncated = true;
        png_error(png, "unexpected end of data");
    }
    memcpy(buf, job->data + job->pos, n);
    job->pos += n;
}

/* The orientation of an eXIf chunk read so far; 0 if none has been seen. */
static int png_orientation(png_structp png, png_infop info)
{
    png_uint_32 n = 0;
    png_bytep exif = NULL;
    if (!png_get_eXIf_1(png, info, &n, &exif) || !exif)
        return 0;
    return bcd__exif_orientation(exif, n);
}

/* Everything that may longjmp. Returns false with job->fail set. */
static bool png_run(struct png_job *job, png_structp png, png_infop info)
{
    if (setjmp(png_jmpbuf(png)))
        return false;

    png_set_read_fn(png, job, read_png_mem);
    png_uint_32 side = job->lim->max_dim > PNG_UINT_31_MAX ? PNG_UINT_31_MAX : (png_uint_32)job->lim->max_dim;
    png_set_user_limits(png, side, side);
    png_read_info(png, info);

    png_uint_32 w, h;
    int depth, color, interlace;
    png_get_IHDR(png, info, &w, &h, &depth, &color, &interlace, NULL, NULL);
    if (!within_limits(&job->fail, job->lim, w, h))
        return false;

    /* To 8-bit RGB, keeping colour values and dropping alpha as PIL's convert("RGB").
     * palette_to_rgb also expands tRNS into alpha, which strip_alpha then removes. */
    if (color == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16)
        png_set_strip_16(png);
    png_set_strip_alpha(png);
    if ((color & PNG_COLOR_MASK_COLOR) == 0)
        png_set_gray_to_rgb(png);
    int passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_channels(png, info) != 3 || png_get_bit_depth(png, info) != 8 ||
        png_get_rowbytes(png, info) != (size_t)w * 3) {
        set_failure(&job->fail, BCD_ERROR, "internal_error", "PNG: unexpected output format from libpng");
        return false;
    }

    job->img = bcd__image_new(w, h, 3);
    if (!job->img) {
        set_failure(&job->fail, BCD_ENOMEM, "out_of_memory", "cannot allocate a %" PRIu32 "x%" PRIu32 " image",
                    (uint32_t)w, (uint32_t)h);
        return false;
    }
    /* Each Adam7 pass fills in the rows left by the previous ones, in place. */
    const size_t stride = (size_t)w * 3;
    for (int p = 0; p < passes; p++)
        for (png_uint_32 y = 0; y < h; y++)
            png_read_row(png, job->img->data + y * stride, NULL);

    int o = png_orientation(png, info);
    png_read_end(png, info);
    /* eXIf may also follow the image data (as PIL, read it there too) */
    if (!o)
        o = png_orientation(png, info);
    job->orientation = o ? o : 1;
    return true;
}

/* Width and height from the IHDR chunk, which the PNG specification puts right after the
 * signature; false if it is not there (libpng will then report the damage). */
static bool png_header_size(const uint8_t *data, size_t len, uint32_t *w, uint32_t *h)
{
    if (len < 24 || memcmp(data + 12, "IHDR", 4) != 0)
        return false;
    *w = (uint32_t)data[16] << 24 | (uint32_t)data[17] << 16 | (uint32_t)data[18] << 8 | data[19];
    *h = (uint32_t)data[20] << 24 | (uint32_t)data[21] << 16 | (uint32_t)data[22] << 8 | data[23];
    return true;
}

/* libpng allocates the buffer of an ancillary chunk (tEXt, zTXt, iTXt, eXIf, sPLT,
 * pCAL...) from its declared length, up to 2^31 - 1, before reading it: a 100-byte file
 * could make it allocate 2 GB only to fail on the read. The file is all in memory, so such
 * a chunk can only mean truncation, refused here as libpng would refuse it after the
 * allocation. Lengths over 2^31 - 1 are left to libpng, which refuses them first. */
bool bcd__png_chunks_fit(const uint8_t *data, size_t len)
{
    if (len < sizeof png_signature)
        return true; /* not a PNG: libpng says so */
    size_t pos = sizeof png_signature;
    while (len - pos >= 8) {
        const uint8_t *c = data + pos;
        uint32_t n = (uint32_t)c[0] << 24 | (uint32_t)c[1] << 16 | (uint32_t)c[2] << 8 | c[3];
        if (n > PNG_UINT_31_MAX)
            return true;
        if ((size_t)n + 4 > len - pos - 8)
            return false;
        if (memcmp(c + 4, "IEND", 4) == 0)
            return true;
        pos += (size_t)n + 12;
    }
    return true;
}

static bcd_status decode_png(bcd_image **out, bcd_ctx *ctx, const struct limits *lim, const uint8_t *data,
                             size_t len)
{
    struct png_job job = { .data = data, .len = len, .ctx = ctx, .lim = lim, .orientation = 1 };

    /* libpng refuses a side above png_set_user_limits() with a generic "Invalid IHDR data";
     * looking first keeps that case a clear BCD_ELIMIT. */
    uint32_t w, h;
    if (png_header_size(data, len, &w, &h) && !within_limits(&job.fail, lim, w, h))
        return bcd__ctx_fail(ctx, job.fail.status, job.fail.code, "%s", job.fail.msg);

    if (!bcd__png_chunks_fit(data, len))
        return bcd__ctx_fail(ctx, BCD_EFORMAT, "truncated_image", "PNG: unexpected end of data");

    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &job, on_png_error, on_png_warning);
    if (!png)
        return bcd__ctx_fail(ctx, BCD_ENOMEM, "out_of_memory", "cannot allocate the PNG decoder");
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return bcd__ctx_fail(ctx, BCD_ENOMEM, "out_of_memory", "cannot allocate the PNG decoder");
    }

    bool ok = png_run(&job, png, info);
    png_destroy_read_struct(&png, &info, NULL);
    if (ok && bcd__image_orient(&job.img, job.orientation) != BCD_OK) {
        set_failure(&job.fail, BCD_ENOMEM, "out_of_memory", "cannot allocate the rotated image");
        ok = false;
    }
    if (!ok) {
        bcd_image_free(job.img);
        return bcd__ctx_fail(ctx, job.fail.status, job.fail.code, "%s", job.fail.msg);
    }
    *out = job.img;
    return BCD_OK;
}

/* ---- entry points ----------------------------------------------------------------- */

bcd_status bcd_image_decode_options_init(bcd_image_decode_options *opts, unsigned int version)
{
    if (!opts || version != BCD_IMAGE_DECODE_OPTIONS_VERSION)
        return BCD_EINVAL;
    bcd_image_decode_options d = BCD_IMAGE_DECODE_OPTIONS_INIT;
    *opts = d;
    return BCD_OK;
}

/* The options as minimums (NULL: none); false, detail on ctx, for an unknown version. */
static bool resolve_options(struct min_size *min, bcd_ctx *ctx, const bcd_image_decode_options *opts)
{
    memset(min, 0, sizeof *min);
    if (!opts)
        return true;
    if (opts->version != BCD_IMAGE_DECODE_OPTIONS_VERSION) {
        bcd__ctx_fail(ctx, BCD_EINVAL, "invalid_options", "unknown bcd_image_decode_options version %u",
                      opts->version);
        return false;
    }
    min->short_side = opts->min_short_side;
    min->long_side = opts->min_long_side;
    min->width = opts->min_width;
    min->height = opts->min_height;
    return true;
}

static bcd_status decode_mem(bcd_image **out, bcd_ctx *ctx, const void *data, size_t len,
                             const struct min_size *min)
{
    const struct limits lim = {
        .max_pixels = bcd__cfg_ull(ctx, BCD__CFG_MAX_PIXELS, BCD_DEFAULT_MAX_PIXELS),
        .max_dim = bcd__cfg_ull(ctx, BCD__CFG_MAX_DIMENSION, BCD_DEFAULT_MAX_DIMENSION),
    };
    const uint8_t *p = data;
    if (len >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF)
        return decode_jpeg(out, ctx, &lim, min, p, len);
    if (len >= sizeof png_signature && memcmp(p, png_signature, sizeof png_signature) == 0)
        return decode_png(out, ctx, &lim, p, len);
    return bcd__ctx_fail(ctx, BCD_EFORMAT, "unknown_format",
                         len ? "not a JPEG or PNG image (unrecognised signature)" : "empty input");
}

bcd_status bcd_image_decode_ext(bcd_image **out, bcd_ctx *ctx, const void *data, size_t len,
                                const bcd_image_decode_options *opts)
{
    if (!ctx)
        return BCD_EINVAL;
    bcd__ctx_clear(ctx);
    if (!out || (!data && len))
        return bcd__ctx_fail(ctx, BCD_EINVAL, "invalid_argument", "bcd_image_decode: out and data are required");
    struct min_size min;
    if (!resolve_options(&min, ctx, opts))
        return BCD_EINVAL;
    return decode_mem(out, ctx, data, len, &min);
}

bcd_status bcd_image_decode(bcd_image **out, bcd_ctx *ctx, const void *data, size_t len)
{
    return bcd_image_decode_ext(out, ctx, data, len, NULL);
}

bcd_status bcd_image_decode_file_ext(bcd_image **out, bcd_ctx *ctx, const char *path,
                                     const bcd_image_decode_options *opts)
{
    if (!ctx)
        return BCD_EINVAL;
    bcd__ctx_clear(ctx);
    if (!out || !path)
        return bcd__ctx_fail(ctx, BCD_EINVAL, "invalid_argument", "bcd_image_decode_file: out and path are required");
    struct min_size min;
    if (!resolve_options(&min, ctx, opts))
        return BCD_EINVAL;

    unsigned char *buf;
    size_t len;
    bcd_status st = bcd__read_file(ctx, path, 0, &buf, &len);
    if (st != BCD_OK)
        return st;
    st = decode_mem(out, ctx, buf, len, &min);
    free(buf);
    if (st != BCD_OK && ctx->has_err) {
        /* Name the file: in a batch the bare reason does not say which one failed. */
        char code[sizeof ctx->err.code], msg[sizeof ctx->err.message];
        memcpy(code, ctx->err.code, sizeof code);
        memcpy(msg, ctx->err.message, sizeof msg);
        bcd__ctx_fail(ctx, st, code, "%s: %s", path, msg);
    }
    return st;
}

bcd_status bcd_image_decode_file(bcd_image **out, bcd_ctx *ctx, const char *path)
{
    return bcd_image_decode_file_ext(out, ctx, path, NULL);
}
