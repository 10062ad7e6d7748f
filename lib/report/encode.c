/* Thumbnails for the HTML report: area downscaling, JPEG and PNG encoding into memory,
 * and the atomic write of the finished file. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>
#include <png.h>
#include <zlib.h>

#include "deflate.h"
#include "image/image_internal.h"
#include "report.h"

void bcd__rep_image_clear(struct bcd__rep_image *im)
{
    if (!im)
        return;
    free(im->data);
    memset(im, 0, sizeof *im);
}

void bcd__rep_photos_clear(struct bcd__rep_photos *p)
{
    if (!p)
        return;
    for (int i = 0; i < BCD__REP_ANGLES; i++) {
        bcd__rep_image_clear(&p->current[i]);
        bcd__rep_image_clear(&p->previous[i]);
        bcd__rep_image_clear(&p->heatmap[i]);
        p->heatmap_stored[i] = false;
        for (int k = 0; k < BCD__REP_MAX_LESIONS; k++) {
            bcd__rep_image_clear(&p->lesion_before[i][k]);
            bcd__rep_image_clear(&p->lesion_now[i][k]);
        }
    }
}

static bool valid_rgb(const bcd_image *img)
{
    return img && img->data && img->width > 0 && img->height > 0 && img->channels == 3;
}

static bcd_image *new_image(uint32_t w, uint32_t h)
{
    bcd_image *im = calloc(1, sizeof *im);
    if (!im)
        return NULL;
    im->data = malloc((size_t)w * h * 3);
    if (!im->data) {
        free(im);
        return NULL;
    }
    im->width = w;
    im->height = h;
    im->channels = 3;
    return im;
}

void bcd__rep_downscale_size(uint32_t w, uint32_t h, uint32_t max_side, uint32_t *nw, uint32_t *nh)
{
    *nw = w;
    *nh = h;
    if (w > max_side || h > max_side) {
        if (w >= h) {
            *nw = max_side;
            *nh = (uint32_t)(((uint64_t)h * max_side + w / 2) / w);
        } else {
            *nh = max_side;
            *nw = (uint32_t)(((uint64_t)w * max_side + h / 2) / h);
        }
        *nw = *nw ? *nw : 1;
        *nh = *nh ? *nh : 1;
    }
}

/* The reduction row by row: output row y averages input rows [y * h / nh, (y + 1) * h / nh)
 * (never empty: the size is never enlarged), so rows can be fed as they come. The rows of
 * a box are summed column by column (one pass over contiguous bytes, which vectorizes;
 * in 16 bits up to the box's last row where that fits), then each box's columns. Boxes
 * are wmin or wmin + 1 columns wide. */
bcd_status bcd__rep_downscaler_init(struct bcd__rep_downscaler *d, uint32_t w, uint32_t h, uint32_t max_side)
{
    memset(d, 0, sizeof *d);
    if (w == 0 || h == 0 || max_side == 0)
        return BCD_EINVAL;
    d->w = w;
    d->h = h;
    bcd__rep_downscale_size(w, h, max_side, &d->nw, &d->nh);
    d->out = new_image(d->nw, d->nh);
    /* one column more, zero: emit() may read one past the last box */
    d->col = calloc(((size_t)w + 1) * 3, sizeof *d->col);
    d->x0s = malloc(((size_t)d->nw + 1) * sizeof *d->x0s);
    /* boxes of at most 258 rows: all but the last row fit 16-bit sums (257 * 255) */
    uint32_t max_rows = (uint32_t)(((uint64_t)h + d->nh - 1) / d->nh);
    if (max_rows <= 258)
        d->col16 = malloc((size_t)w * 3 * sizeof *d->col16);
    if (!d->out || !d->col || !d->x0s || (max_rows <= 258 && !d->col16)) {
        bcd__rep_downscaler_clear(d);
        return BCD_ENOMEM;
    }
    for (uint32_t x = 0; x <= d->nw; x++)
        d->x0s[x] = (uint32_t)((uint64_t)x * w / d->nw);
    d->wmin = w / d->nw;
    d->y1 = (uint32_t)((uint64_t)h / d->nh);
    return BCD_OK;
}

/* floor(n / d) = (n * mul) >> shift for every n < 2^29 and 1 <= d < 2^20: mul =
 * ceil(2^(29 + l) / d) with l = ceil(log2 d) (the round-up reciprocal: its error times n
 * stays below 2^shift / d); the product stays below 2^59. */
static void recip_of(uint64_t d, uint64_t *mul, int *shift)
{
    int l = 0;
    while (((uint64_t)1 << l) < d)
        l++;
    *shift = 29 + l;
    *mul = (((uint64_t)1 << *shift) + d - 1) / d;
}

/* Output row d->y from the column sums of its box [y0, y1). */
BCD__SCALAR_LOOPS static void downscaler_emit(struct bcd__rep_downscaler *d, uint32_t y0, uint32_t y1)
{
    const uint32_t *col = d->col, *x0s = d->x0s;
    uint8_t *px = d->out->data + (size_t)d->y * d->nw * 3;
    const uint32_t wmin = d->wmin;
    const uint64_t rows = y1 - y0, cnt_max = rows * (wmin + 1);
    if (cnt_max < (1u << 20)) {
        /* a box sums to less than 2^28: 32-bit sums. The rounded mean floor((n + cnt / 2)
         * / cnt) by a multiplication and a shift (exact for every n < 2^29, see
         * recip_of()). A box is its first wmin columns, plus one more (added under a
         * mask: no branch) when it is wmin + 1 wide. */
        uint64_t mul[2];
        int sh[2];
        recip_of(rows * wmin, &mul[0], &sh[0]);
        recip_of(cnt_max, &mul[1], &sh[1]);
        const uint32_t half[2] = { (uint32_t)(rows * wmin / 2), (uint32_t)(cnt_max / 2) };
        const uint32_t *c = col;
        for (uint32_t x = 0; x < d->nw; x++, px += 3) {
            uint32_t s0 = 0, s1 = 0, s2 = 0;
            for (uint32_t j = 0; j < wmin; j++, c += 3) {
                s0 += c[0];
                s1 += c[1];
                s2 += c[2];
            }
            uint32_t wide = x0s[x + 1] - x0s[x] - wmin, m = 0u - wide;
            s0 += c[0] & m;
            s1 += c[1] & m;
            s2 += c[2] & m;
            c += 3 * wide;
            const uint64_t mw = mul[wide];
            const int k = sh[wide];
            px[0] = (uint8_t)(((s0 + half[wide]) * mw) >> k);
            px[1] = (uint8_t)(((s1 + half[wide]) * mw) >> k);
            px[2] = (uint8_t)(((s2 + half[wide]) * mw) >> k);
        }
        return;
    }
    for (uint32_t x = 0; x < d->nw; x++, px += 3) {
        uint32_t x0 = x0s[x], x1 = x0s[x + 1];
        uint64_t acc[3] = { 0, 0, 0 };
        for (const uint32_t *c = col + (size_t)x0 * 3, *e = col + (size_t)x1 * 3; c < e; c += 3) {
            acc[0] += c[0];
            acc[1] += c[1];
            acc[2] += c[2];
        }
        uint64_t cnt = rows * (x1 - x0);
        for (int c = 0; c < 3; c++)
            px[c] = (uint8_t)((acc[c] + cnt / 2) / cnt);
    }
}

BCD__WIDE_KERNEL void bcd__rep_downscaler_row(struct bcd__rep_downscaler *d, const uint8_t *row, uint32_t yy)
{
    if (!d->out || yy != d->next || d->y >= d->nh)
        return; /* out of order: finish() then fails */
    d->next++;
    size_t rowlen = (size_t)d->w * 3;
    uint32_t y0 = (uint32_t)((uint64_t)d->y * d->h / d->nh);
    uint32_t *col = d->col;
    uint16_t *c16 = d->col16;
    bool first = yy == y0, last = yy + 1 == d->y1;
    if (c16 && !last) { /* the rows before a box's last in 16 bits (at most 257 of them) */
        if (first) {
            for (size_t i = 0; i < rowlen; i++)
                c16[i] = row[i];
        } else {
            for (size_t i = 0; i < rowlen; i++)
                c16[i] += row[i];
        }
    } else if (first) {
        for (size_t i = 0; i < rowlen; i++)
            col[i] = row[i];
    } else if (c16) {
        for (size_t i = 0; i < rowlen; i++)
            col[i] = (uint32_t)c16[i] + row[i];
    } else {
        for (size_t i = 0; i < rowlen; i++)
            col[i] += row[i];
    }
    if (last) {
        downscaler_emit(d, y0, d->y1);
        d->y++;
        d->y1 = (uint32_t)((uint64_t)(d->y + 1) * d->h / d->nh);
    }
}

bcd_image *bcd__rep_downscaler_finish(struct bcd__rep_downscaler *d)
{
    bcd_image *o = d->next == d->h && d->y == d->nh ? d->out : NULL;
    if (o)
        d->out = NULL;
    bcd__rep_downscaler_clear(d);
    return o;
}

void bcd__rep_downscaler_clear(struct bcd__rep_downscaler *d)
{
    bcd_image_free(d->out);
    free(d->col);
    free(d->col16);
    free(d->x0s);
    memset(d, 0, sizeof *d);
}

bcd_status bcd__rep_downscale(bcd_image **out, const bcd_image *img, uint32_t max_side)
{
    if (!out || !valid_rgb(img) || max_side == 0)
        return BCD_EINVAL;
    struct bcd__rep_downscaler d;
    bcd_status st = bcd__rep_downscaler_init(&d, img->width, img->height, max_side);
    if (st != BCD_OK)
        return st;
    size_t rowlen = (size_t)img->width * 3;
    for (uint32_t y = 0; y < img->height; y++)
        bcd__rep_downscaler_row(&d, img->data + (size_t)y * rowlen, y);
    *out = bcd__rep_downscaler_finish(&d);
    return *out ? BCD_OK : BCD_ERROR;
}

/* JPEG */

struct jpeg_job {
    struct jpeg_error_mgr mgr;
    jmp_buf jmp;
};

static void on_jpeg_error(j_common_ptr cinfo)
{
    struct jpeg_job *job = (struct jpeg_job *)cinfo->err;
    longjmp(job->jmp, 1);
}

/* libjpeg's default prints warnings to stderr; the library never does. */
static void on_jpeg_message(j_common_ptr cinfo, int level)
{
    (void)cinfo;
    (void)level;
}

/* Everything that may longjmp; only changes objects through pointers. */
static bool jpeg_rows(struct jpeg_compress_struct *ci, struct jpeg_job *job, const bcd_image *img, int quality,
                      unsigned char **buf, unsigned long *len)
{
    if (setjmp(job->jmp))
        return false;
    jpeg_create_compress(ci);
    jpeg_mem_dest(ci, buf, len);
    ci->image_width = img->width;
    ci->image_height = img->height;
    ci->input_components = 3;
    ci->in_color_space = JCS_RGB;
    jpeg_set_defaults(ci);
    jpeg_set_quality(ci, quality, TRUE);
    ci->optimize_coding = TRUE;
    jpeg_start_compress(ci, TRUE);
    while (ci->next_scanline < ci->image_height) {
        JSAMPROW row = (JSAMPROW)(img->data + (size_t)ci->next_scanline * img->width * 3);
        jpeg_write_scanlines(ci, &row, 1);
    }
    jpeg_finish_compress(ci);
    return true;
}

bcd_status bcd__rep_encode_jpeg(struct bcd__rep_image *out, const bcd_image *img, int quality)
{
    if (!out || !valid_rgb(img) || quality < 1 || quality > 100 || img->width > 65500 || img->height > 65500)
        return BCD_EINVAL;
    struct jpeg_compress_struct ci;
    struct jpeg_job job;
    memset(&ci, 0, sizeof ci);
    memset(&job, 0, sizeof job);
    ci.err = jpeg_std_error(&job.mgr);
    job.mgr.error_exit = on_jpeg_error;
    job.mgr.emit_message = on_jpeg_message;
    /* Our own buffer, larger than any JPEG of the image can be, so that jpeg_mem_dest never
     * reallocates it (after a reallocation libjpeg frees the first buffer itself and an
     * error would leave us a dangling pointer). */
    size_t cap = (size_t)img->width * img->height * 3 + 65536;
    if (cap > ULONG_MAX)
        return BCD_EINVAL;
    unsigned char *own = malloc(cap);
    if (!own)
        return BCD_ENOMEM;
    unsigned char *buf = own;
    unsigned long len = (unsigned long)cap;
    bool ok = jpeg_rows(&ci, &job, img, quality, &buf, &len);
    jpeg_destroy_compress(&ci);
    if (!ok || !buf || len == 0) {
        free(own);
        return BCD_ERROR;
    }
    if (buf != own) {
        free(own);
    } else {
        unsigned char *shrunk = realloc(buf, len);
        if (shrunk)
            buf = shrunk;
    }
    out->data = buf;
    out->len = (size_t)len;
    out->mime = "image/jpeg";
    out->width = img->width;
    out->height = img->height;
    return BCD_OK;
}

/* PNG */

struct png_mem {
    unsigned char *p;
    size_t len, cap;
    bool oom;
};

static void png_mem_write(png_structp png, png_bytep data, png_size_t n)
{
    struct png_mem *m = png_get_io_ptr(png);
    if (m->oom)
        return;
    if (m->len + n > m->cap) {
        size_t cap = m->cap ? m->cap : 65536;
        while (cap < m->len + n)
            cap *= 2;
        unsigned char *p = realloc(m->p, cap);
        if (!p) {
            m->oom = true;
            png_error(png, "out of memory");
        }
        m->p = p;
        m->cap = cap;
    }
    memcpy(m->p + m->len, data, n);
    m->len += n;
}

static void png_mem_flush(png_structp png)
{
    (void)png;
}

static void on_png_error(png_structp png, png_const_charp msg)
{
    (void)msg;
    png_longjmp(png, 1);
}

static void on_png_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

/* Hand the encoded PNG in m over to out (or free it when encoding failed). */
static bcd_status png_done(struct bcd__rep_image *out, struct png_mem *m, bool ok, uint32_t w, uint32_t h)
{
    if (!ok || m->oom) {
        free(m->p);
        return m->oom ? BCD_ENOMEM : BCD_ERROR;
    }
    out->data = m->p;
    out->len = m->len;
    out->mime = "image/png";
    out->width = w;
    out->height = h;
    return BCD_OK;
}

/* BCD__REP_PNG_FAST: no filter, deflate level 0 (stored). It stays with libpng: the
 * writer below with stored blocks took 0.38 ms instead of 0.49 ms for a 512 px copy. */
static bool png_rows(png_structp png, png_infop info, struct png_mem *m, const bcd_image *img)
{
    if (setjmp(png_jmpbuf(png)))
        return false;
    png_set_write_fn(png, m, png_mem_write, png_mem_flush);
    png_set_user_limits(png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
    png_set_filter(png, PNG_FILTER_TYPE_BASE, PNG_FILTER_NONE);
    png_set_compression_level(png, 0);
    png_set_IHDR(png, info, img->width, img->height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (uint32_t y = 0; y < img->height; y++)
        png_write_row(png, img->data + (size_t)y * img->width * 3);
    png_write_end(png, info);
    return true;
}

/* BCD__REP_PNG_SMALL, written here rather than by libpng. Overlays and thumbnails are
 * photographs: after the "up" filter they have few repeated strings worth searching for,
 * and Huffman coding alone does as well as zlib's levels (512 px heatmap overlay, libpng:
 * Huffman only 180 kB, zlib's run-length strategy 180 kB, level 3 with libpng's adaptive
 * filter choice 191 kB). zlib's Z_HUFFMAN_ONLY deflate still took 5.2 ms for one; the
 * literal-only deflate of deflate.c takes 0.94 ms for the same stream size (the file is
 * 0.14 % smaller: one IDAT chunk instead of libpng's 8 KiB ones). A new Huffman code
 * every PNG_BLOCK bytes of filtered rows follows the image's changes (as zlib's 16K
 * symbol blocks at these settings did): blocks of 64 KiB made the overlays 0.3 % larger,
 * of 128 KiB 0.7 %, for at most 7 % less time. */
#define PNG_BLOCK (16u * 1024u)
/* IDAT chunks hold at most this much of the zlib stream (any size up to 2^31 - 1 is
 * valid; one chunk for an overlay, a few for a large image). */
#define IDAT_MAX ((size_t)1 << 20)

static void put32be(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* Complete the chunk at c whose length and type are written and whose len bytes of
 * data follow them: its CRC (of type and data). Returns the chunk's end. */
static unsigned char *png_chunk_crc(unsigned char *c, size_t len)
{
    uLong crc = crc32(crc32(0L, Z_NULL, 0), c + 4, (uInt)(4 + len));
    put32be(c + 8 + len, (uint32_t)crc);
    return c + 12 + len;
}

static unsigned char *png_chunk_head(unsigned char *c, uint32_t len, const char *type)
{
    put32be(c, len);
    memcpy(c + 4, type, 4);
    return c + 8;
}

/* The zlib stream of len bytes at first + 8 as IDAT chunks of at most IDAT_MAX bytes
 * starting at first: each piece after the first moves up by 12 bytes per chunk before
 * it to make room for the chunk lengths, types and CRCs; the last moves first, so that
 * nothing is overwritten before it has moved. Returns the end of the last chunk. */
static unsigned char *png_idat_chunks(unsigned char *first, size_t len)
{
    size_t k = len / IDAT_MAX + (len % IDAT_MAX != 0);
    unsigned char *end = NULL;
    for (size_t i = k; i-- > 0;) {
        size_t n = i + 1 < k ? IDAT_MAX : len - i * IDAT_MAX;
        unsigned char *c = first + i * (IDAT_MAX + 12);
        memmove(c + 8, first + 8 + i * IDAT_MAX, n);
        png_chunk_head(c, (uint32_t)n, "IDAT");
        unsigned char *e = png_chunk_crc(c, n);
        end = end ? end : e;
    }
    return end;
}

/* The scanlines with the "up" filter, handed out in pieces of any size: each is its
 * filter type (2) and then each byte less the one above it (the first row's as they
 * are: above it count zeros). */
struct up_rows {
    const unsigned char *px;
    size_t rowlen; /* bytes of pixels in a row */
    size_t y, x;   /* the next byte: row y, x bytes into its scanline (0: the filter type) */
};

static void up_rows_take(struct up_rows *u, unsigned char *dst, size_t n)
{
    while (n > 0) {
        if (u->x == 0) {
            *dst++ = 2;
            n--;
            u->x = 1;
            continue;
        }
        size_t k = u->rowlen + 1 - u->x;
        k = k < n ? k : n;
        const unsigned char *cur = u->px + u->y * u->rowlen + (u->x - 1);
        if (u->y == 0) {
            memcpy(dst, cur, k);
        } else {
            const unsigned char *up = cur - u->rowlen;
            for (size_t i = 0; i < k; i++)
                dst[i] = (unsigned char)(cur[i] - up[i]);
        }
        dst += k;
        n -= k;
        u->x += k;
        if (u->x > u->rowlen) {
            u->x = 0;
            u->y++;
        }
    }
}

static bcd_status png_small(struct bcd__rep_image *out, const bcd_image *img)
{
    size_t rowlen = (size_t)img->width * 3;
    if (rowlen / 3 != img->width || rowlen + 1 > SIZE_MAX / img->height)
        return BCD_EINVAL;
    size_t total = (rowlen + 1) * img->height;
    size_t zmax = bcd__deflate_bound(total, PNG_BLOCK);
    size_t idats = zmax / IDAT_MAX + 1;
    /* signature, IHDR, the stream in its IDAT chunks, IEND */
    if (zmax == 0 || zmax > SIZE_MAX - 8 - 25 - 12 - 12 * idats)
        return BCD_EINVAL;
    size_t cap = 8 + 25 + zmax + 12 * idats + 12;
    size_t piece = total < PNG_BLOCK ? total : PNG_BLOCK;
    unsigned char *buf = malloc(cap), *filtered = malloc(piece);
    if (!buf || !filtered) {
        free(buf);
        free(filtered);
        return BCD_ENOMEM;
    }
    static const unsigned char sig[8] = {137, 'P', 'N', 'G', '\r', '\n', 26, '\n'};
    memcpy(buf, sig, sizeof sig);
    unsigned char *p = png_chunk_head(buf + 8, 13, "IHDR");
    put32be(p, img->width);
    put32be(p + 4, img->height);
    p[8] = 8;   /* bits per sample */
    p[9] = 2;   /* colour type: RGB */
    p[10] = 0;  /* deflate */
    p[11] = 0;  /* adaptive filtering (each row names its filter) */
    p[12] = 0;  /* no interlace */
    unsigned char *idat = png_chunk_crc(buf + 8, 13);

    struct bcd__deflate z;
    bcd__deflate_begin(&z, idat + 8);
    struct up_rows u = {img->data, rowlen, 0, 0};
    for (size_t done = 0; done < total;) {
        size_t n = total - done < piece ? total - done : piece;
        up_rows_take(&u, filtered, n);
        done += n;
        bcd__deflate_block(&z, filtered, n, done == total);
    }
    unsigned char *zend = bcd__deflate_end(&z);
    free(filtered);
    p = png_idat_chunks(idat, (size_t)(zend - (idat + 8)));
    png_chunk_head(p, 0, "IEND");
    p = png_chunk_crc(p, 0);
    size_t len = (size_t)(p - buf);
    unsigned char *shrunk = realloc(buf, len); /* the bound is ~3x an overlay's size */
    struct png_mem m = {shrunk ? shrunk : buf, len, len, false};
    return png_done(out, &m, true, img->width, img->height);
}

bcd_status bcd__rep_encode_png(struct bcd__rep_image *out, const bcd_image *img, enum bcd__rep_png how)
{
    if (!out || !valid_rgb(img) || img->width > PNG_UINT_31_MAX || img->height > PNG_UINT_31_MAX)
        return BCD_EINVAL;
    if (how != BCD__REP_PNG_FAST)
        return png_small(out, img);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, on_png_error, on_png_warning);
    if (!png)
        return BCD_ENOMEM;
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return BCD_ENOMEM;
    }
    struct png_mem m = {0};
    bool ok = png_rows(png, info, &m, img);
    png_destroy_write_struct(&png, &info);
    return png_done(out, &m, ok, img->width, img->height);
}

/* 16-bit grey PNG: the container of the feature maps analyze stores. */

static bool png16_rows(png_structp png, png_infop info, struct png_mem *m, const uint16_t *px, uint32_t w,
                       uint32_t h, uint16_t *row)
{
    if (setjmp(png_jmpbuf(png)))
        return false;
    png_set_write_fn(png, m, png_mem_write, png_mem_flush);
    png_set_user_limits(png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
    /* stored without compression, like the working copies: written at each analysis
     * and read at the next, and deflating half floats buys little (ResNet50's 2048 x 49
     * halves: 203 kB in 0.3 ms; zlib's run-length strategy 129 kB in 3.3 ms, level 1
     * 135 kB in 7.3 ms) */
    png_set_filter(png, PNG_FILTER_TYPE_BASE, PNG_FILTER_NONE);
    png_set_compression_level(png, 0);
    png_set_IHDR(png, info, w, h, 16, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (uint32_t y = 0; y < h; y++) {
        unsigned char *b = (unsigned char *)row; /* PNG samples are big-endian */
        for (uint32_t x = 0; x < w; x++) {
            uint16_t v = px[(size_t)y * w + x];
            b[2 * x] = (unsigned char)(v >> 8);
            b[2 * x + 1] = (unsigned char)(v & 0xff);
        }
        png_write_row(png, (png_bytep)row);
    }
    png_write_end(png, info);
    return true;
}

bcd_status bcd__rep_encode_png16(struct bcd__rep_image *out, const uint16_t *px, uint32_t w, uint32_t h)
{
    if (!out || !px || w == 0 || h == 0 || w > PNG_UINT_31_MAX / 2 || h > PNG_UINT_31_MAX)
        return BCD_EINVAL;
    uint16_t *row = malloc((size_t)w * sizeof *row);
    png_structp png = row ? png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, on_png_error, on_png_warning)
                          : NULL;
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        free(row);
        return BCD_ENOMEM;
    }
    struct png_mem m = {0};
    bool ok = png16_rows(png, info, &m, px, w, h, row);
    png_destroy_write_struct(&png, &info);
    free(row);
    return png_done(out, &m, ok, w, h);
}

struct png_src {
    const unsigned char *p;
    size_t len, off;
};

static void png_mem_read(png_structp png, png_bytep data, png_size_t n)
{
    struct png_src *s = png_get_io_ptr(png);
    if (n > s->len - s->off)
        png_error(png, "truncated");
    memcpy(data, s->p + s->off, n);
    s->off += n;
}

/* 0: read; 1: not a w x h 16-bit grey PNG; -1: out of memory (checked by the caller) */
static int png16_read(png_structp png, png_infop info, struct png_src *src, uint16_t *px, uint32_t w, uint32_t h,
                      unsigned char *row)
{
    if (setjmp(png_jmpbuf(png)))
        return 1;
    png_set_read_fn(png, src, png_mem_read);
    png_read_info(png, info);
    if (png_get_image_width(png, info) != w || png_get_image_height(png, info) != h ||
        png_get_bit_depth(png, info) != 16 || png_get_color_type(png, info) != PNG_COLOR_TYPE_GRAY ||
        png_get_interlace_type(png, info) != PNG_INTERLACE_NONE)
        return 1;
    for (uint32_t y = 0; y < h; y++) {
        png_read_row(png, row, NULL);
        for (uint32_t x = 0; x < w; x++)
            px[(size_t)y * w + x] = (uint16_t)(row[2 * x] << 8 | row[2 * x + 1]);
    }
    png_read_end(png, NULL);
    return 0;
}

bcd_status bcd__rep_decode_png16(uint16_t *px, uint32_t w, uint32_t h, const unsigned char *data, size_t len)
{
    if (!px || !data || w == 0 || h == 0 || w > PNG_UINT_31_MAX / 2)
        return BCD_EINVAL;
    if (!bcd__png_chunks_fit(data, len))
        return BCD_EFORMAT;
    unsigned char *row = malloc((size_t)w * 2);
    png_structp png = row ? png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, on_png_error, on_png_warning)
                          : NULL;
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        free(row);
        return BCD_ENOMEM;
    }
    struct png_src src = { data, len, 0 };
    int r = png16_read(png, info, &src, px, w, h, row);
    png_destroy_read_struct(&png, &info, NULL);
    free(row);
    return r == 0 ? BCD_OK : BCD_EFORMAT;
}

/* IEEE 754 binary16 <-> binary32 (round to nearest, ties to even; beyond the largest
 * half, the largest half; NaN stays NaN). */
static inline uint16_t half_of(float f)
{
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    uint32_t sign = (b >> 16) & 0x8000u, a = b & 0x7fffffffu;
    /* a normal half: drop 13 mantissa bits, rounding to nearest even (adding 0xfff and
     * the lowest kept bit carries exactly when the dropped part is over half, or half
     * with the kept part odd), the exponent rebased from 127 to 15 */
    uint32_t normal = (a - (112u << 23) + 0xfffu + ((a >> 13) & 1u)) >> 13;
    /* a subnormal half (or 0): the float's own addition to 0.5, whose unit in the last
     * place is the half's smallest subnormal 2^-24, rounds to nearest even */
    float fa, t;
    memcpy(&fa, &a, sizeof fa);
    t = fa + 0.5f;
    uint32_t tb;
    memcpy(&tb, &t, sizeof tb);
    uint32_t sub = tb - 0x3f000000u;
    /* selected by masks, not branches: a feature map mixes zeros and positive values
     * unpredictably, and the loop of bcd__rep_halves() vectorizes */
    uint32_t is_sub = 0u - (uint32_t)(a < 0x38800000u);
    uint32_t o = (sub & is_sub) | (normal & ~is_sub);
    uint32_t big = 0u - (uint32_t)(a >= 0x477fefffu); /* rounds to 65520 or more */
    o = (0x7bffu & big) | (o & ~big);                  /* the largest finite half */
    uint32_t nan = 0u - (uint32_t)(a > 0x7f800000u);
    o = (0x7e00u & nan) | (o & ~nan);
    return (uint16_t)(sign | o);
}

uint16_t bcd__rep_half(float f)
{
    return half_of(f);
}

BCD__WIDE_KERNEL void bcd__rep_halves(uint16_t *dst, const float *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = half_of(src[i]);
}

static inline float float_of(uint16_t h)
{
    /* the half's exponent and mantissa moved into place and the exponent rebased from 15
     * to 127; then by masks, not branches: infinities and NaN (exponent 31) rebased once
     * more to 255, subnormals and zeros (exponent 0) made normal by one more exponent step
     * and less the smallest normal half 2^-14 (exact) */
    uint32_t o = (uint32_t)(h & 0x7fffu) << 13, e = o & 0x0f800000u;
    o += (127u - 15u) << 23;
    uint32_t special = 0u - (uint32_t)(e == 0x0f800000u), tiny = 0u - (uint32_t)(e == 0);
    o += ((128u - 16u) << 23) & special;
    o += (1u << 23) & tiny;
    float f, t;
    memcpy(&f, &o, sizeof f);
    t = f - 0x1p-14f;
    uint32_t tb, r;
    memcpy(&tb, &t, sizeof tb);
    r = (tb & tiny) | (o & ~tiny);
    r |= (uint32_t)(h & 0x8000u) << 16;
    memcpy(&f, &r, sizeof f);
    return f;
}

float bcd__rep_float(uint16_t h)
{
    return float_of(h);
}

BCD__WIDE_KERNEL void bcd__rep_floats(float *dst, const uint16_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = float_of(src[i]);
}
