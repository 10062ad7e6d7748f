/*
 * Writing an RGB image as an 8-bit PNG (libpng).
 *
 * Written as every file of the library is (bcd__file_open(), lib/core/file.c): under a
 * unique temporary name renamed over path only once complete, mode 0600, so a reader
 * never sees a half-written PNG and a failed write leaves an earlier file intact;
 * standard output, pipes and devices directly.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <png.h>

#include "image_internal.h"

struct png_writer {
    char msg[256];
};

static void on_write_error(png_structp png, png_const_charp msg)
{
    struct png_writer *wr = png_get_error_ptr(png);
    snprintf(wr->msg, sizeof wr->msg, "%s", msg);
    png_longjmp(png, 1);
}

/* libpng's default prints warnings to stderr; the library never does. */
static void on_write_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

/* Everything that may longjmp; false with wr->msg set. Only changes objects through
 * pointers, so nothing here is indeterminate after the jump. */
static bool write_png_rows(png_structp png, png_infop info, FILE *f, const bcd_image *img)
{
    if (setjmp(png_jmpbuf(png)))
        return false;
    png_init_io(png, f);
    /* libpng also applies its read-side default of 1,000,000 px per side when writing */
    png_set_user_limits(png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
    png_set_IHDR(png, info, img->width, img->height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    const size_t stride = (size_t)img->width * 3;
    for (uint32_t y = 0; y < img->height; y++)
        png_write_row(png, img->data + y * stride);
    png_write_end(png, info);
    return true;
}

bcd_status bcd_image_write_png(bcd_ctx *ctx, const bcd_image *img, const char *path)
{
    bcd__ctx_clear(ctx);
    if (!bcd__image_valid_rgb(img) || !path || !*path)
        return bcd__ctx_fail(ctx, BCD_EINVAL, "invalid_argument",
                             "bcd_image_write_png: an RGB image and a path are required");
    if (img->width > PNG_UINT_31_MAX || img->height > PNG_UINT_31_MAX)
        return bcd__ctx_fail(ctx, BCD_EINVAL, "invalid_argument", "image too large for PNG");

    struct bcd__file out;
    bcd_error none = { 0 }; /* ctx may be NULL: only the status is returned */
    bcd_error *err = ctx ? &ctx->err : &none;
    bcd_status st = bcd__file_open(&out, err, path);
    if (st != BCD_OK) {
        if (ctx)
            ctx->has_err = true;
        bcd__error_clear(&none);
        return st;
    }
    /* libpng writes through a stream of its own descriptor; fclose() flushes it, and its
     * failure (disk full) is a failed write too */
    int fd = dup(out.fd);
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!f) {
        st = bcd__ctx_fail(ctx, BCD_EIO, "file_write_failed", "cannot write %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        bcd__file_abort(&out);
        return st;
    }

    struct png_writer wr = { { 0 } };
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &wr, on_write_error, on_write_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        st = bcd__ctx_fail(ctx, BCD_ENOMEM, "out_of_memory", "cannot allocate the PNG encoder");
    } else if (!write_png_rows(png, info, f, img)) {
        /* libpng's own failures while writing are write errors ("Write Error") */
        st = bcd__ctx_fail(ctx, BCD_EIO, "file_write_failed", "cannot write %s: %s", path, wr.msg);
    }
    png_destroy_write_struct(&png, &info);

    if (fclose(f) != 0 && st == BCD_OK)
        st = bcd__ctx_fail(ctx, BCD_EIO, "file_write_failed", "cannot write %s: %s", path, strerror(errno));
    if (st != BCD_OK) {
        bcd__file_abort(&out);
        return st;
    }
    st = bcd__file_commit(&out, err);
    if (st != BCD_OK && ctx)
        ctx->has_err = true;
    bcd__error_clear(&none);
    return st;
}

bcd_status bcd_image_write_tensor(bcd_ctx *ctx, const float *t, size_t n, const char *path)
{
    bcd__ctx_clear(ctx);
    if (!t || !n || !path || !*path || n > SIZE_MAX / 4)
        return bcd__ctx_fail(ctx, BCD_EINVAL, "invalid_argument",
                             "bcd_image_write_tensor: a tensor and a path are required");
    unsigned char *b = malloc(n * 4);
    if (!b)
        return bcd__ctx_fail(ctx, BCD_ENOMEM, "out_of_memory", "cannot allocate %zu bytes", n * 4);
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &t[i], 4);
        b[4 * i] = (unsigned char)u;
        b[4 * i + 1] = (unsigned char)(u >> 8);
        b[4 * i + 2] = (unsigned char)(u >> 16);
        b[4 * i + 3] = (unsigned char)(u >> 24);
    }
    bcd_error none = { 0 };
    bcd_status st = bcd__file_write(ctx ? &ctx->err : &none, path, b, n * 4);
    if (st != BCD_OK && ctx)
        ctx->has_err = true;
    bcd__error_clear(&none);
    free(b);
    return st;
}
