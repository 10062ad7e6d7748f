/*
 * Writing an RGB image as an 8-bit PNG (libpng).
 *
 * The file is written to "<path>.tmp" and renamed over path only once complete, so a
 * reader never sees a half-written PNG and a failed write leaves an earlier file intact.
 * The temporary file is removed on any failure.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdbool.h>
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

    size_t n = strlen(path);
    char *tmp = malloc(n + sizeof ".XXXXXX");
    if (!tmp)
        return bcd__ctx_fail(ctx, BCD_ENOMEM, "out_of_memory", "cannot allocate a path");
    memcpy(tmp, path, n);
    memcpy(tmp + n, ".XXXXXX", sizeof ".XXXXXX");

    /* a new file of a unique name, mode 0600 whatever the umask (a photo of a person),
     * never a link someone put at a fixed name */
    bcd_status st = BCD_OK;
    int fd = mkstemp(tmp);
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!f) {
        st = bcd__ctx_fail(ctx, BCD_EIO, "file_write_failed", "cannot create a file next to %s: %s", path,
                           strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(tmp);
        }
        free(tmp);
        return st;
    }

    struct png_writer wr = { { 0 } };
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &wr, on_write_error, on_write_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        st = bcd__ctx_fail(ctx, BCD_ENOMEM, "out_of_memory", "cannot allocate the PNG encoder");
    } else if (!write_png_rows(png, info, f, img)) {
        /* libpng's own failures while writing are write errors ("Write Error") */
        st = bcd__ctx_fail(ctx, BCD_EIO, "file_write_failed", "cannot write %s: %s", tmp, wr.msg);
    }
    png_destroy_write_struct(&png, &info);

    /* fclose() flushes: its failure (disk full) is a failed write too */
    if (fclose(f) != 0 && st == BCD_OK)
        st = bcd__ctx_fail(ctx, BCD_EIO, "file_write_failed", "cannot write %s: %s", tmp, strerror(errno));
    if (st == BCD_OK && rename(tmp, path) != 0)
        st = bcd__ctx_fail(ctx, BCD_EIO, "file_write_failed", "cannot rename %s to %s: %s", tmp, path,
                           strerror(errno));
    if (st != BCD_OK)
        remove(tmp);
    free(tmp);
    return st;
}
