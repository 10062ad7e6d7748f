/* Unit tests of lib/image/strip.c: metadata removal from JPEG and PNG without re-encoding,
 * and its use by bcd_image_add() (what is stored carries no metadata).
 *
 * The photos are built here: a real picture from the test data with planted metadata
 * around it (EXIF with GPS, serial numbers, maker notes, a thumbnail; XMP; IPTC; an ICC
 * profile; comments; text chunks; data after the end of the image). Every planted value
 * contains "PLANTED", so "no PLANTED left" is the check that nothing leaked. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bcd.h"
#include "image/exif.h"
#include "image/image_internal.h"
#include "store/store.h"

static const char *img_path(const char *rel)
{
    static char bufs[4][1024];
    static int next;
    char *b = bufs[next++ % 4];
    snprintf(b, sizeof bufs[0], "%s/images/%s", BCD_TESTDATA_DIR, rel);
    return b;
}

static bcd_ctx *new_ctx(void)
{
    bcd_ctx *ctx = NULL;
    ck_assert_int_eq(bcd_ctx_new(&ctx), BCD_OK);
    return ctx;
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static bool contains(const void *hay, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    const uint8_t *h = hay;
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(h + i, needle, k) == 0)
            return true;
    return false;
}

static bool same_pixels(const bcd_image *a, const bcd_image *b)
{
    return a->width == b->width && a->height == b->height && a->channels == b->channels &&
           memcmp(a->data, b->data, (size_t)a->width * a->height * a->channels) == 0;
}

/* Growable byte buffer for building files. */
struct bytes {
    uint8_t *p;
    size_t len, cap;
};

static void add(struct bytes *b, const void *src, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        ck_assert_ptr_nonnull(b->p);
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void add8(struct bytes *b, unsigned v)
{
    uint8_t c = (uint8_t)v;
    add(b, &c, 1);
}

static void add16(struct bytes *b, unsigned v)
{
    add8(b, v >> 8);
    add8(b, v);
}

static void add32(struct bytes *b, uint32_t v)
{
    add16(b, v >> 16);
    add16(b, v & 0xFFFF);
}

static void put32_at(struct bytes *b, size_t at, uint32_t v)
{
    b->p[at] = (uint8_t)(v >> 24);
    b->p[at + 1] = (uint8_t)(v >> 16);
    b->p[at + 2] = (uint8_t)(v >> 8);
    b->p[at + 3] = (uint8_t)v;
}

/* ---- a camera-like EXIF block ------------------------------------------------------- */

struct entry {
    uint16_t tag, type;
    uint32_t count;
    const void *data; /* count * size(type) bytes, big-endian already; NULL: value below */
    uint32_t value;   /* SHORT or LONG held in the entry (also pointers, patched later) */
};

static size_t type_size(uint16_t type)
{
    switch (type) {
    case 3:
        return 2;
    case 4:
        return 4;
    case 5:
        return 8;
    default:
        return 1; /* BYTE, ASCII, UNDEFINED */
    }
}

/* Write an IFD at the end of t (offsets relative to t's start, the TIFF header), its
 * out-of-line values right after it. Returns the IFD's offset; *value_at[i] the position of
 * entry i's value field (to patch pointers), *next_at that of the next-IFD offset. */
static size_t write_ifd(struct bytes *t, const struct entry *e, int n, size_t *value_at, size_t *next_at)
{
    size_t ifd = t->len;
    size_t data = ifd + 2 + 12 * (size_t)n + 4;
    add16(t, (unsigned)n);
    struct bytes extra = {0};
    for (int i = 0; i < n; i++) {
        size_t sz = type_size(e[i].type) * e[i].count;
        add16(t, e[i].tag);
        add16(t, e[i].type);
        add32(t, e[i].count);
        if (value_at)
            value_at[i] = t->len;
        if (!e[i].data) {
            if (e[i].type == 3) {
                add16(t, e[i].value);
                add16(t, 0);
            } else {
                add32(t, e[i].value);
            }
        } else if (sz <= 4) {
            uint8_t v[4] = {0};
            memcpy(v, e[i].data, sz);
            add(t, v, 4);
        } else {
            add32(t, (uint32_t)(data + extra.len));
            add(&extra, e[i].data, sz);
            if (extra.len & 1)
                add8(&extra, 0);
        }
    }
    *next_at = t->len;
    add32(t, 0);
    if (extra.len)
        add(t, extra.p, extra.len);
    free(extra.p);
    return ifd;
}

/* A TIFF block as a phone writes it: IFD0 (make, model, orientation, pointers), an EXIF
 * IFD (maker note, body and lens serial numbers, user comment), a GPS IFD and IFD1 with a
 * JPEG thumbnail. All planted values contain "PLANTED". */
static void camera_tiff(struct bytes *t, int orientation)
{
    static const char make[] = "PLANTED-MAKE-ACME";
    static const char model[] = "PLANTED-MODEL-X100";
    static const char maker_note[] = "PLANTED-MAKERNOTE-internal-temperature-and-owner";
    static const char serial[] = "PLANTED-SERIAL-8C1F22";
    static const char lens_serial[] = "PLANTED-LENSSERIAL-77";
    static const char comment[] = "ASCII\0\0\0PLANTED-USERCOMMENT";
    static const char gps_date[] = "PLANTED-GPS:2026:01:01";
    static const uint8_t lat[24] = {0, 0, 0, 48, 0, 0, 0, 1, 0, 0, 0, 51, 0, 0, 0, 1, 0, 0, 0x1d, 0x4c, 0, 0, 0, 100};
    static const char thumb[] = "\xFF\xD8\xFF\xFE\x00\x13PLANTED-THUMBNAIL\xFF\xD9";

    add(t, "MM\0\x2a\0\0\0\x08", 8);
    struct entry ifd0[] = {
        {0x010F, 2, sizeof make, make, 0},
        {0x0110, 2, sizeof model, model, 0},
        {0x0112, 3, 1, NULL, (uint32_t)orientation},
        {0x8769, 4, 1, NULL, 0}, /* EXIF IFD pointer */
        {0x8825, 4, 1, NULL, 0}, /* GPS IFD pointer */
    };
    size_t v0[5], next0, vx[4], nx, vg[2], ng, v1[2], n1;
    write_ifd(t, ifd0, 5, v0, &next0);
    struct entry exif[] = {
        {0x9286, 7, sizeof comment - 1, comment, 0},
        {0x927C, 7, sizeof maker_note - 1, maker_note, 0},
        {0xA431, 2, sizeof serial, serial, 0},
        {0xA435, 2, sizeof lens_serial, lens_serial, 0},
    };
    put32_at(t, v0[3], (uint32_t)write_ifd(t, exif, 4, vx, &nx));
    struct entry gps[] = {
        {0x0002, 5, 3, lat, 0},
        {0x001D, 2, sizeof gps_date, gps_date, 0},
    };
    put32_at(t, v0[4], (uint32_t)write_ifd(t, gps, 2, vg, &ng));
    struct entry ifd1[] = {
        {0x0201, 4, 1, NULL, 0}, /* JPEGInterchangeFormat */
        {0x0202, 4, 1, NULL, sizeof thumb - 1},
    };
    put32_at(t, next0, (uint32_t)write_ifd(t, ifd1, 2, v1, &n1));
    put32_at(t, v1[0], (uint32_t)t->len);
    add(t, thumb, sizeof thumb - 1);
}

#define JFIF_THUMB_LEN 9 /* 3x1 pixels, 3 bytes each */
#define JPEG_TRAILER "PLANTED-TRAILER-motion-photo-video"

static void jpeg_segment(struct bytes *b, unsigned marker, const void *payload, size_t n)
{
    add8(b, 0xFF);
    add8(b, marker);
    add16(b, (unsigned)(n + 2));
    add(b, payload, n);
}

/* A JPEG from the test data with planted metadata before its own segments (so the planted
 * EXIF block is the first one and decides the orientation) and after its end. */
static uint8_t *planted_jpeg(const char *rel, int orientation, size_t *len)
{
    size_t blen;
    uint8_t *base = slurp(img_path(rel), &blen);
    struct bytes b = {0};
    add(&b, "\xFF\xD8", 2);

    /* JFIF with a 3x1 RGB thumbnail carrying planted bytes */
    struct bytes jfif = {0};
    add(&jfif, "JFIF\0\x01\x02\x01\x00\x48\x00\x48\x03\x01", 14);
    add(&jfif, "PLANTED-T", JFIF_THUMB_LEN);
    jpeg_segment(&b, 0xE0, jfif.p, jfif.len);
    free(jfif.p);

    struct bytes app1 = {0};
    add(&app1, "Exif\0\0", 6);
    camera_tiff(&app1, orientation);
    jpeg_segment(&b, 0xE1, app1.p, app1.len);
    free(app1.p);

    static const char xmp[] = "http://ns.adobe.com/xap/1.0/\0<x:xmpmeta><dc:creator>PLANTED-XMP-CREATOR</dc:creator>"
                              "<exif:GPSLatitude>PLANTED-XMP-GPS</exif:GPSLatitude></x:xmpmeta>";
    jpeg_segment(&b, 0xE1, xmp, sizeof xmp - 1);
    static const char icc[] = "ICC_PROFILE\0\x01\x01PLANTED-ICC-DEVICE-MODEL";
    jpeg_segment(&b, 0xE2, icc, sizeof icc - 1);
    static const char mpf[] = "MPF\0PLANTED-MPF-PREVIEW";
    jpeg_segment(&b, 0xE2, mpf, sizeof mpf - 1);
    static const char iptc[] = "Photoshop 3.0\08BIM\x04\x04PLANTED-IPTC-BYLINE";
    jpeg_segment(&b, 0xED, iptc, sizeof iptc - 1);
    static const char maker[] = "PLANTED-APP11-VENDOR-DATA";
    jpeg_segment(&b, 0xEB, maker, sizeof maker - 1);
    static const char com[] = "PLANTED-COMMENT taken at 12 Example Street";
    jpeg_segment(&b, 0xFE, com, sizeof com - 1);

    add(&b, base + 2, blen - 2); /* the picture's own segments, scan and EOI */
    add(&b, JPEG_TRAILER, sizeof JPEG_TRAILER - 1);
    free(base);
    *len = b.len;
    return b.p;
}

/* ---- PNG ---------------------------------------------------------------------------- */

static uint32_t crc32_png(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    while (n--) {
        c ^= *p++;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return ~c;
}

static void png_chunk(struct bytes *b, const char type[4], const void *data, size_t n)
{
    add32(b, (uint32_t)n);
    size_t at = b->len;
    add(b, type, 4);
    add(b, data, n);
    add32(b, crc32_png(b->p + at, n + 4));
}

/* A PNG from the test data with planted chunks after IHDR and before IEND, an eXIf chunk
 * (camera-like, with the given orientation) and data after IEND. */
static uint8_t *planted_png(const char *rel, int orientation, size_t *len)
{
    size_t blen;
    uint8_t *base = slurp(img_path(rel), &blen);
    struct bytes b = {0};
    size_t ihdr_end = 8 + 12 + 13;
    add(&b, base, ihdr_end); /* signature, IHDR */

    static const char text[] = "Comment\0PLANTED-TEXT-COMMENT";
    png_chunk(&b, "tEXt", text, sizeof text - 1);
    static const char itxt[] = "XML:com.adobe.xmp\0\0\0\0\0<x:xmpmeta>PLANTED-XMP-CREATOR</x:xmpmeta>";
    png_chunk(&b, "iTXt", itxt, sizeof itxt - 1);
    static const uint8_t time[7] = {0x07, 0xEA, 1, 2, 3, 4, 5};
    png_chunk(&b, "tIME", time, sizeof time);
    static const char iccp[] = "PLANTED-ICC-NAME\0\0xx";
    png_chunk(&b, "iCCP", iccp, sizeof iccp - 1);
    static const char priv[] = "PLANTED-PRIVATE-CHUNK";
    png_chunk(&b, "prVt", priv, sizeof priv - 1);
    struct bytes tiff = {0};
    camera_tiff(&tiff, orientation);
    png_chunk(&b, "eXIf", tiff.p, tiff.len);
    free(tiff.p);

    /* the rest of the original up to IEND, then a planted chunk, IEND and a trailer */
    size_t iend = blen - 12;
    ck_assert_int_eq(memcmp(base + iend + 4, "IEND", 4), 0);
    add(&b, base + ihdr_end, iend - ihdr_end);
    static const char ztxt[] = "Author\0\0PLANTED-AUTHOR";
    png_chunk(&b, "zTXt", ztxt, sizeof ztxt - 1);
    add(&b, base + iend, 12);
    static const char trailer[] = "PLANTED-TRAILER";
    add(&b, trailer, sizeof trailer - 1);
    free(base);
    *len = b.len;
    return b.p;
}

/* ---- checks ------------------------------------------------------------------------- */

/* strip(data) decodes exactly as data does and holds no planted byte; returns it. */
static uint8_t *strip_checked(bcd_ctx *ctx, const uint8_t *data, size_t len, size_t *out_len)
{
    void *out = NULL;
    ck_assert_int_eq(bcd_image_strip_metadata(&out, out_len, ctx, data, len), BCD_OK);
    ck_assert_ptr_nonnull(out);
    ck_assert(!contains(out, *out_len, "PLANTED"));
    bcd_image *a = NULL, *b = NULL;
    ck_assert_int_eq(bcd_image_decode(&a, ctx, data, len), BCD_OK);
    ck_assert_int_eq(bcd_image_decode(&b, ctx, out, *out_len), BCD_OK);
    ck_assert(same_pixels(a, b));
    bcd_image_free(a);
    bcd_image_free(b);
    /* stripping again changes nothing */
    void *again = NULL;
    size_t again_len = 0;
    ck_assert_int_eq(bcd_image_strip_metadata(&again, &again_len, ctx, out, *out_len), BCD_OK);
    ck_assert_uint_eq(again_len, *out_len);
    ck_assert_int_eq(memcmp(again, out, again_len), 0);
    bcd_free(again);
    return out;
}

/* The orientation decode.c would read from a JPEG: the first EXIF APP1 before the scan.
 * *app_segments: APPn segments other than JFIF APP0s without a thumbnail (16 bytes). */
static int jpeg_orientation_of(const uint8_t *d, size_t len, int *app_segments)
{
    size_t p = 2;
    int orient = 1;
    bool seen = false;
    *app_segments = 0;
    while (p + 4 <= len && d[p] == 0xFF && d[p + 1] != 0xDA) {
        unsigned m = d[p + 1];
        size_t n = (size_t)d[p + 2] << 8 | d[p + 3];
        if (m >= 0xE0 && m <= 0xEF && !(m == 0xE0 && n == 16))
            ++*app_segments;
        if (m == 0xE1 && !seen) {
            int o = bcd__exif_orientation_app1(d + p + 4, n - 2);
            if (o) {
                orient = o;
                seen = true;
            }
        }
        p += 2 + n;
    }
    return orient;
}

START_TEST(test_strip_jpeg_removes_planted_metadata_keeps_pixels_and_orientation)
{
    bcd_ctx *ctx = new_ctx();
    for (int orient = 1; orient <= 8; orient++) {
        size_t len, slen;
        uint8_t *jpg = planted_jpeg("jpeg/baseline-420-testorig.jpg", orient, &len);
        ck_assert(contains(jpg, len, "PLANTED-GPS"));
        ck_assert(contains(jpg, len, "PLANTED-SERIAL"));
        uint8_t *s = strip_checked(ctx, jpg, len, &slen);
        ck_assert_uint_lt(slen, len);
        int apps;
        ck_assert_int_eq(jpeg_orientation_of(s, slen, &apps), orient);
        /* what is left: JFIF segments, the minimal EXIF one when not upright */
        ck_assert_int_eq(apps, orient == 1 ? 0 : 1);
        /* ends at EOI */
        ck_assert(s[slen - 2] == 0xFF && s[slen - 1] == 0xD9);
        bcd_image *img = NULL;
        ck_assert_int_eq(bcd_image_decode(&img, ctx, s, slen), BCD_OK);
        ck_assert_uint_eq(img->width, orient >= 5 ? 149 : 227);
        bcd_image_free(img);
        bcd_free(s);
        free(jpg);
    }
    bcd_ctx_free(ctx);
}
END_TEST

START_TEST(test_strip_jpeg_exif_thumbnail_and_gps_bytes_gone)
{
    /* not only the strings: the GPS latitude rationals and the thumbnail's JPEG markers */
    bcd_ctx *ctx = new_ctx();
    size_t len, slen;
    uint8_t *jpg = planted_jpeg("exif-orientation/Landscape_6.jpg", 6, &len);
    static const uint8_t lat[8] = {0, 0, 0, 48, 0, 0, 0, 1};
    uint8_t *s = strip_checked(ctx, jpg, len, &slen);
    bool found = false;
    for (size_t i = 0; i + 8 <= slen && !found; i++)
        found = memcmp(s + i, lat, 8) == 0;
    ck_assert(!found);
    /* one SOI and one EOI: the embedded thumbnail (a JPEG of its own) is gone */
    int soi = 0;
    for (size_t i = 0; i + 1 < slen; i++)
        soi += s[i] == 0xFF && s[i + 1] == 0xD8;
    ck_assert_int_eq(soi, 1);
    bcd_image *img = NULL;
    ck_assert_int_eq(bcd_image_decode(&img, ctx, s, slen), BCD_OK);
    ck_assert_uint_eq(img->width, 1800); /* Landscape_6 is stored 1200x1800, shown 1800x1200 */
    ck_assert_uint_eq(img->height, 1200);
    bcd_image_free(img);
    bcd_free(s);
    free(jpg);
    bcd_ctx_free(ctx);
}
END_TEST

START_TEST(test_strip_jpeg_keeps_adobe_transform_of_cmyk)
{
    bcd_ctx *ctx = new_ctx();
    const char *files[] = {"jpeg/cmyk-adobe-32x32.jpg", "jpeg/cmyk-adobe-subsampled-256x256.jpg"};
    for (size_t i = 0; i < 2; i++) {
        size_t len, slen;
        uint8_t *jpg = planted_jpeg(files[i], 3, &len);
        uint8_t *s = strip_checked(ctx, jpg, len, &slen);
        ck_assert(contains(s, slen, "Adobe"));
        bcd_free(s);
        free(jpg);
    }
    bcd_ctx_free(ctx);
}
END_TEST

START_TEST(test_strip_png_removes_planted_chunks_keeps_pixels_and_orientation)
{
    bcd_ctx *ctx = new_ctx();
    const char *files[] = {"pngsuite/basn2c08.png", "pngsuite/basn3p04.png", "pngsuite/tbrn2c08.png",
                           "pngsuite/basi0g16.png", "pngsuite/oi9n2c16.png", "pngsuite/ct1n0g04.png"};
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++)
        for (int orient = 1; orient <= 8; orient++) {
            size_t len, slen;
            uint8_t *png = planted_png(files[f], orient, &len);
            ck_assert(contains(png, len, "PLANTED-GPS"));
            uint8_t *s = strip_checked(ctx, png, len, &slen);
            bool has_exif = contains(s, slen, "eXIf");
            ck_assert_int_eq(has_exif, orient != 1);
            ck_assert(!contains(s, slen, "tEXt") && !contains(s, slen, "iTXt") && !contains(s, slen, "tIME"));
            ck_assert_int_eq(memcmp(s + slen - 8, "IEND", 4), 0);
            bcd_free(s);
            free(png);
        }
    bcd_ctx_free(ctx);
}
END_TEST

START_TEST(test_strip_png_exif_rules_follow_libpng)
{
    bcd_ctx *ctx = new_ctx();
    size_t blen;
    uint8_t *base = slurp(img_path("pngsuite/basn2c08.png"), &blen);
    const size_t ihdr_end = 8 + 12 + 13;
    struct bytes t6 = {0}, t3 = {0};
    camera_tiff(&t6, 6);
    camera_tiff(&t3, 3);

    /* two eXIf chunks: libpng keeps the first (the second is a "duplicate") */
    struct bytes b = {0};
    add(&b, base, ihdr_end);
    png_chunk(&b, "eXIf", t6.p, t6.len);
    png_chunk(&b, "eXIf", t3.p, t3.len);
    add(&b, base + ihdr_end, blen - ihdr_end);
    size_t slen;
    uint8_t *s = strip_checked(ctx, b.p, b.len, &slen);
    bcd_image *img = NULL;
    ck_assert_int_eq(bcd_image_decode(&img, ctx, s, slen), BCD_OK);
    bcd_free(s);

    /* a first eXIf with a bad CRC is skipped by libpng: the second one counts */
    b.len = 0;
    add(&b, base, ihdr_end);
    png_chunk(&b, "eXIf", t6.p, t6.len);
    b.p[b.len - 1] ^= 0x55;
    png_chunk(&b, "eXIf", t3.p, t3.len);
    add(&b, base + ihdr_end, blen - ihdr_end);
    s = strip_checked(ctx, b.p, b.len, &slen);
    bcd_free(s);

    /* eXIf after the image data is read too */
    b.len = 0;
    add(&b, base, blen - 12);
    png_chunk(&b, "eXIf", t6.p, t6.len);
    add(&b, base + blen - 12, 12);
    s = strip_checked(ctx, b.p, b.len, &slen);
    bcd_image *img2 = NULL;
    ck_assert_int_eq(bcd_image_decode(&img2, ctx, s, slen), BCD_OK);
    ck_assert(same_pixels(img, img2)); /* orientation 6 either way */
    bcd_image_free(img2);
    bcd_image_free(img);
    bcd_free(s);

    /* a byte-order mark libpng versions disagree about: refused, not guessed */
    b.len = 0;
    add(&b, base, ihdr_end);
    t6.p[1] = 'I'; /* "MI" */
    png_chunk(&b, "eXIf", t6.p, t6.len);
    add(&b, base + ihdr_end, blen - ihdr_end);
    void *out = NULL;
    size_t olen = 0;
    ck_assert_int_eq(bcd_image_strip_metadata(&out, &olen, ctx, b.p, b.len), BCD_EFORMAT);
    ck_assert_ptr_null(out);
    free(b.p);
    free(t6.p);
    free(t3.p);
    free(base);
    bcd_ctx_free(ctx);
}
END_TEST

/* Over the whole decoder test set: a file decodes iff its stripped copy does, to the same
 * pixels; files the decoder refuses are refused by the strip or still refused after it. */
static void check_corpus_file(bcd_ctx *ctx, const char *path)
{
    size_t len;
    uint8_t *d = slurp(path, &len);
    bcd_image *a = NULL, *b = NULL;
    bcd_status da = bcd_image_decode(&a, ctx, d, len);
    void *s = NULL;
    size_t slen = 0;
    bcd_status ss = bcd_image_strip_metadata(&s, &slen, ctx, d, len);
    if (da == BCD_OK) {
        ck_assert_msg(ss == BCD_OK, "%s decodes but cannot be stripped", path);
        ck_assert_msg(bcd_image_decode(&b, ctx, s, slen) == BCD_OK, "%s: stripped copy does not decode", path);
        ck_assert_msg(same_pixels(a, b), "%s: stripped copy decodes to other pixels", path);
        ck_assert_uint_le(slen, len + 4);
    } else if (ss == BCD_OK) {
        ck_assert_msg(bcd_image_decode(&b, ctx, s, slen) != BCD_OK, "%s: refused, but its stripped copy decodes",
                      path);
    }
    bcd_image_free(a);
    bcd_image_free(b);
    bcd_free(s);
    free(d);
}

START_TEST(test_strip_whole_test_set_decodes_identically)
{
    bcd_ctx *ctx = new_ctx();
    const char *dirs[] = {"jpeg", "pngsuite", "exif-orientation"};
    int files = 0;
    for (size_t i = 0; i < 3; i++) {
        char cmd[1200];
        snprintf(cmd, sizeof cmd, "ls '%s' 2>/dev/null", img_path(dirs[i]));
        FILE *p = popen(cmd, "r");
        ck_assert_ptr_nonnull(p);
        char name[512];
        while (fgets(name, sizeof name, p)) {
            name[strcspn(name, "\n")] = '\0';
            size_t n = strlen(name);
            if (n < 4 || (strcmp(name + n - 4, ".jpg") != 0 && strcmp(name + n - 4, ".png") != 0))
                continue;
            char rel[600];
            snprintf(rel, sizeof rel, "%s/%s", dirs[i], name);
            check_corpus_file(ctx, img_path(rel));
            files++;
        }
        pclose(p);
    }
    ck_assert_int_ge(files, 180); /* 20 JPEG + 176 PNG + 18 photos when the test data is whole */
    bcd_ctx_free(ctx);
}
END_TEST

START_TEST(test_strip_refuses_what_it_cannot_strip_safely)
{
    bcd_ctx *ctx = new_ctx();
    void *out = NULL;
    size_t olen = 0;
    ck_assert_int_eq(bcd_image_strip_metadata(&out, &olen, ctx, "GIF89a", 6), BCD_EFORMAT);
    ck_assert_str_eq(bcd_error_code(bcd_ctx_last_error(ctx)), "unknown_format");
    ck_assert_int_eq(bcd_image_strip_metadata(&out, &olen, ctx, NULL, 0), BCD_EFORMAT);
    ck_assert_int_eq(bcd_image_strip_metadata(NULL, &olen, ctx, "x", 1), BCD_EINVAL);
    ck_assert_int_eq(bcd_image_strip_metadata(&out, &olen, NULL, "x", 1), BCD_EINVAL);

    size_t len;
    uint8_t *jpg = planted_jpeg("jpeg/baseline-420-testorig.jpg", 6, &len);
    /* cut inside the planted segments, the tables, the scan: everywhere before EOI */
    const size_t eoi_end = len - (sizeof JPEG_TRAILER - 1);
    for (size_t cut = 3; cut < eoi_end; cut += eoi_end / 13) {
        ck_assert_int_eq(bcd_image_strip_metadata(&out, &olen, ctx, jpg, cut), BCD_EFORMAT);
        ck_assert_ptr_null(out);
    }
    /* stray bytes between two segments */
    size_t at = 2 + 4 + 14 + JFIF_THUMB_LEN; /* right after the JFIF segment */
    uint8_t *bad = malloc(len + 1);
    memcpy(bad, jpg, at);
    bad[at] = 0x42;
    memcpy(bad + at + 1, jpg + at, len - at);
    ck_assert_int_eq(bcd_image_strip_metadata(&out, &olen, ctx, bad, len + 1), BCD_EFORMAT);
    ck_assert_str_eq(bcd_error_code(bcd_ctx_last_error(ctx)), "corrupt_image");
    free(bad);
    free(jpg);

    /* PNG: a metadata chunk between two IDAT chunks */
    size_t blen;
    uint8_t *base = slurp(img_path("pngsuite/oi2n0g16.png"), &blen); /* IDAT in 2 chunks */
    size_t p = 8, idat2 = 0;
    int seen = 0;
    while (p + 12 <= blen) {
        uint32_t n = (uint32_t)base[p] << 24 | (uint32_t)base[p + 1] << 16 | (uint32_t)base[p + 2] << 8 | base[p + 3];
        if (memcmp(base + p + 4, "IDAT", 4) == 0 && ++seen == 2) {
            idat2 = p;
            break;
        }
        p += 12 + n;
    }
    ck_assert_uint_gt(idat2, 0);
    struct bytes b = {0};
    add(&b, base, idat2);
    png_chunk(&b, "tEXt", "k\0v", 3);
    add(&b, base + idat2, blen - idat2);
    ck_assert_int_eq(bcd_image_strip_metadata(&out, &olen, ctx, b.p, b.len), BCD_EFORMAT);
    /* ... but a kept chunk there is copied as it is, like everything else of this file */
    b.len = 0;
    add(&b, base, idat2);
    png_chunk(&b, "gAMA", "\0\0\xb1\x8f", 4);
    add(&b, base + idat2, blen - idat2);
    ck_assert_int_eq(bcd_image_strip_metadata(&out, &olen, ctx, b.p, b.len), BCD_OK);
    ck_assert_uint_eq(olen, b.len);
    ck_assert_int_eq(memcmp(out, b.p, b.len), 0); /* nothing to remove: the same bytes */
    bcd_free(out);
    free(b.p);
    free(base);
    bcd_ctx_free(ctx);
}
END_TEST

/* ---- bcd_image_add stores the stripped photo ---------------------------------------- */

static char *read_blob(const char *datadir, const char *key, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/blobs/%s", datadir, key);
    return (char *)slurp(path, len);
}

static const char *json_str(const char *json, const char *key, char *buf, size_t cap)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *p = strstr(json, pat);
    ck_assert_msg(p != NULL, "no %s in %s", key, json);
    p += strlen(pat);
    size_t n = strcspn(p, "\"");
    ck_assert_uint_lt(n, cap);
    memcpy(buf, p, n);
    buf[n] = '\0';
    return buf;
}

START_TEST(test_strip_image_add_stores_no_metadata)
{
    char datadir[] = "/tmp/bcd-strip-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(datadir));
    bcd_ctx *ctx = new_ctx();
    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_DATA_DIR", datadir), BCD_OK);
    bcd_service *svc = NULL;
    ck_assert_int_eq(bcd_service_open(&svc, ctx), BCD_OK);
    char *out = NULL, sid[64], key[512];
    ck_assert_int_eq(bcd_session_create(&out, svc, "alice"), BCD_OK);
    json_str(out, "session_id", sid, sizeof sid);
    bcd_free(out);

    const struct {
        const char *angle;
        bool png;
    } cases[] = {{"front", false}, {"left", true}};
    for (size_t i = 0; i < 2; i++) {
        size_t len;
        uint8_t *photo = cases[i].png ? planted_png("pngsuite/basn2c08.png", 8, &len)
                                      : planted_jpeg("exif-orientation/Portrait_8.jpg", 8, &len);
        char file[600];
        snprintf(file, sizeof file, "%s/photo-%zu.%s", datadir, i, cases[i].png ? "png" : "jpg");
        FILE *f = fopen(file, "wb");
        ck_assert_uint_eq(fwrite(photo, 1, len, f), len);
        fclose(f);

        ck_assert_int_eq(bcd_image_add(&out, svc, "alice", sid, cases[i].angle, file, -1), BCD_OK);
        json_str(out, "storage_path", key, sizeof key);
        size_t blen;
        char *blob = read_blob(datadir, key, &blen);
        ck_assert(!contains(blob, blen, "PLANTED"));
        /* size and digest describe what is stored */
        char sha[65], want[80];
        ck_assert_int_eq(bcd__sha256_hex(blob, blen, sha), BCD_OK);
        snprintf(want, sizeof want, "\"sha256\":\"%s\"", sha);
        ck_assert_ptr_nonnull(strstr(out, want));
        snprintf(want, sizeof want, "\"size_bytes\":%zu", blen);
        ck_assert_ptr_nonnull(strstr(out, want));
        /* same pixels, orientation included */
        bcd_image *a = NULL, *b = NULL;
        ck_assert_int_eq(bcd_image_decode(&a, ctx, photo, len), BCD_OK);
        ck_assert_int_eq(bcd_image_decode(&b, ctx, blob, blen), BCD_OK);
        ck_assert(same_pixels(a, b));
        if (!cases[i].png) /* Portrait_8 is stored 1800x1200, shown 1200x1800 */
            ck_assert_uint_eq(b->height, 1800);
        bcd_image_free(a);
        bcd_image_free(b);
        free(blob);
        bcd_free(out);
        free(photo);
        remove(file);
    }
    bcd_service_free(svc);
    bcd_ctx_free(ctx);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", datadir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("strip");
    TCase *tc = tcase_create("strip");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_strip_jpeg_removes_planted_metadata_keeps_pixels_and_orientation);
    tcase_add_test(tc, test_strip_jpeg_exif_thumbnail_and_gps_bytes_gone);
    tcase_add_test(tc, test_strip_jpeg_keeps_adobe_transform_of_cmyk);
    tcase_add_test(tc, test_strip_png_removes_planted_chunks_keeps_pixels_and_orientation);
    tcase_add_test(tc, test_strip_png_exif_rules_follow_libpng);
    tcase_add_test(tc, test_strip_whole_test_set_decodes_identically);
    tcase_add_test(tc, test_strip_refuses_what_it_cannot_strip_safely);
    tcase_add_test(tc, test_strip_image_add_stores_no_metadata);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
