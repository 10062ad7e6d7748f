/*
 * Removing metadata from an encoded JPEG or PNG without re-encoding it.
 *
 * A photo of someone's skin is sensitive enough; the bytes a camera or phone wraps around
 * it (GPS position, camera and lens serial numbers, owner name, maker notes, capture
 * time, editing software, embedded thumbnails and preview images, XMP and IPTC packets,
 * comments, trailing data such as motion-photo videos) say who, where and with what. None
 * of it is needed to analyze the picture, so it is not stored.
 *
 * The rule is an allow list of what the decoder (decode.c) reads; everything else goes.
 * Segments and chunks that stay are copied byte for byte; the entropy-coded data and the
 * compressed image data are never touched, so decoding the result gives exactly the
 * pixels that decoding the input gives.
 *
 * JPEG (segment surgery; markers as libjpeg reads them):
 *  - kept as they are: SOI, DQT, DHT, DAC, DRI, every SOFn, SOS with its entropy-coded
 *    data (restart markers and any bytes in it included), DNL, EXP, parameterless
 *    markers, EOI;
 *  - JFIF APP0 before the first scan (libjpeg takes the colour space of a 3-component
 *    file from it): kept with its first 14 bytes (version, density), the thumbnail cut
 *    off (thumbnail size set to 0x0), which libjpeg only traces;
 *  - Adobe APP14 before the first scan (libjpeg takes CMYK/YCCK and the colour transform
 *    from it): kept with its first 12 bytes, the length libjpeg reads;
 *  - the first EXIF APP1 before the first scan (the one decode.c takes the orientation
 *    from): replaced by a minimal EXIF block holding only the Orientation tag, or dropped
 *    when the orientation is 1 (none);
 *  - everything else goes: other APP1 (XMP, further EXIF), APP2 (ICC profiles are not
 *    used: decode.c does no colour management; MPF and FlashPix previews), APP3-APP13
 *    (IPTC, Photoshop resources, maker data), APP15, other APP0 (JFXX thumbnails, AVI1),
 *    non-Adobe APP14, COM, and whatever follows EOI.
 * PNG (chunks copied byte for byte, CRCs included):
 *  - kept: the critical chunks (IHDR, PLTE, IDAT, IEND and any other critical chunk, which
 *    libpng would refuse anyway), and the ancillary chunks that hold only numbers about
 *    how the stored samples are to be shown: tRNS, gAMA, cHRM, sRGB, sBIT;
 *  - the eXIf chunk libpng accepts (the first one of at least 2 bytes, with a correct CRC
 *    and byte-order mark) is replaced, where it was, by a minimal one holding only the
 *    Orientation tag (its CRC computed here), or dropped when the orientation is 1;
 *  - everything else goes: tEXt, zTXt, iTXt, tIME, iCCP, pHYs, bKGD, hIST, sPLT, oFFs,
 *    pCAL, sCAL, the APNG chunks, private chunks, and whatever follows IEND.
 *
 * Input that decode.c would refuse and that cannot be stripped without guessing
 * (truncated segments or chunks, bytes between JPEG segments, an eXIf chunk whose
 * byte-order mark libpng versions disagree about, a dropped chunk between two IDAT
 * chunks, which would join image data the decoder reads apart) is refused with
 * BCD_EFORMAT, so the result never decodes differently from the input.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "exif.h"
#include "image_internal.h"

static const uint8_t png_sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };

/* Output buffer with room fixed up front: the result is never longer than the input plus
 * the few bytes a minimal EXIF block can add (see strip_jpeg and strip_png). */
struct out {
    uint8_t *p;
    size_t len, cap;
    bool overflow; /* cannot happen (see cap); checked all the same */
};

static void put(struct out *o, const void *src, size_t n)
{
    if (o->overflow || n > o->cap - o->len) {
        o->overflow = true;
        return;
    }
    memcpy(o->p + o->len, src, n);
    o->len += n;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The 26-byte big-endian TIFF block of IFD0 with one entry: Orientation = o (a SHORT). */
static void minimal_tiff(uint8_t t[26], int o)
{
    static const uint8_t tmpl[26] = {
        'M', 'M', 0, 42, 0, 0, 0, 8, /* header, IFD0 at offset 8 */
        0, 1,                        /* one entry */
        0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 0, 0, 0, /* tag 0x0112, SHORT, count 1, value */
        0, 0, 0, 0,                  /* no next IFD (no IFD1: no thumbnail) */
    };
    memcpy(t, tmpl, sizeof tmpl);
    t[19] = (uint8_t)o;
}

/* ---- JPEG --------------------------------------------------------------------------- */

#define M_SOS 0xDA
#define M_EOI 0xD9
#define M_SOI 0xD8
#define M_APP0 0xE0
#define M_APP1 0xE1
#define M_APP14 0xEE
#define M_APP15 0xEF
#define M_COM 0xFE

static bcd_status jpeg_corrupt(bcd_ctx *ctx, const char *what)
{
    return bcd__ctx_fail(ctx, BCD_EFORMAT, "corrupt_image", "JPEG: %s; metadata cannot be removed safely", what);
}

static bcd_status jpeg_truncated(bcd_ctx *ctx)
{
    return bcd__ctx_fail(ctx, BCD_EFORMAT, "truncated_image", "JPEG: the data ends before the end-of-image marker");
}

/* Copy an entropy-coded segment starting at p: up to the next marker that is not a
 * stuffed zero (FF 00) or a restart marker (FF D0-D7). Returns the position of that
 * marker's first FF, or 0 if the data ends first. */
static size_t scan_end(const uint8_t *d, size_t len, size_t p)
{
    while (p < len) {
        if (d[p] != 0xFF) {
            p++;
            continue;
        }
        if (p + 1 >= len)
            return 0;
        uint8_t c = d[p + 1];
        if (c == 0x00 || (c >= 0xD0 && c <= 0xD7))
            p += 2;
        else if (c == 0xFF)
            p++; /* fill byte before a marker */
        else
            return p;
    }
    return 0;
}

static bcd_status strip_jpeg(struct out *o, bcd_ctx *ctx, const uint8_t *d, size_t len)
{
    static const uint8_t exif_id[6] = { 'E', 'x', 'i', 'f', 0, 0 };
    put(o, d, 2); /* SOI */
    size_t p = 2;
    bool in_header = true; /* before the first SOS: where decode.c and libjpeg look */
    bool exif_seen = false;
    for (;;) {
        if (p >= len)
            return jpeg_truncated(ctx);
        if (d[p] != 0xFF)
            return jpeg_corrupt(ctx, "stray bytes between segments");
        while (p < len && d[p] == 0xFF)
            p++;
        if (p >= len)
            return jpeg_truncated(ctx);
        const uint8_t m = d[p++];
        if (m == M_EOI) {
            const uint8_t eoi[2] = { 0xFF, M_EOI };
            put(o, eoi, 2);
            return BCD_OK; /* anything after EOI (previews, videos) is dropped */
        }
        if (m == 0x00 || m == M_SOI)
            return jpeg_corrupt(ctx, m ? "a second start-of-image marker" : "stray bytes between segments");
        if (m == 0x01 || (m >= 0xD0 && m <= 0xD7)) { /* TEM, RSTn: no length */
            const uint8_t mk[2] = { 0xFF, m };
            put(o, mk, 2);
            continue;
        }
        if (len - p < 2)
            return jpeg_truncated(ctx);
        const size_t seglen = (size_t)d[p] << 8 | d[p + 1];
        if (seglen < 2)
            return jpeg_corrupt(ctx, "a segment length below 2");
        if (len - p < seglen)
            return jpeg_truncated(ctx);
        const uint8_t *pl = d + p + 2; /* payload */
        const size_t plen = seglen - 2;
        const size_t next = p + seglen;

        if (m == M_APP0) {
            if (in_header && plen >= 14 && memcmp(pl, "JFIF", 5) == 0) {
                uint8_t seg[4 + 14] = { 0xFF, M_APP0, 0, 16 };
                memcpy(seg + 4, pl, 14);
                seg[4 + 12] = seg[4 + 13] = 0; /* no thumbnail */
                put(o, seg, sizeof seg);
            }
        } else if (m == M_APP14) {
            if (in_header && plen >= 12 && memcmp(pl, "Adobe", 5) == 0) {
                uint8_t seg[4 + 12] = { 0xFF, M_APP14, 0, 14 };
                memcpy(seg + 4, pl, 12);
                put(o, seg, sizeof seg);
            }
        } else if (m == M_APP1) {
            /* decode.c: the orientation of the first APP1 that starts "Exif\0\0" */
            int orient = in_header && !exif_seen ? bcd__exif_orientation_app1(pl, plen) : 0;
            if (orient) {
                exif_seen = true;
                if (orient != 1) {
                    uint8_t seg[4 + 6 + 26] = { 0xFF, M_APP1, 0, 2 + 6 + 26 };
                    memcpy(seg + 4, exif_id, 6);
                    minimal_tiff(seg + 10, orient);
                    put(o, seg, sizeof seg);
                }
            }
        } else if ((m >= M_APP0 && m <= M_APP15) || m == M_COM) {
            /* dropped */
        } else if (m == M_SOS) {
            const size_t end = scan_end(d, len, next);
            if (!end)
                return jpeg_truncated(ctx);
            put(o, d + p - 2, end - (p - 2)); /* marker, header, entropy-coded data */
            in_header = false;
            p = end;
            continue;
        } else {
            put(o, d + p - 2, seglen + 2); /* tables, frame header, DRI, ... as they are */
        }
        p = next;
    }
}

/* ---- PNG ---------------------------------------------------------------------------- */

/* CRC-32 of PNG (ISO 3309, polynomial 0xEDB88320), bit by bit: it runs over a few
 * eXIf chunks per image, never over image data. */
static uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t n)
{
    crc = ~crc;
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static bool chunk_type_valid(const uint8_t t[4])
{
    for (int i = 0; i < 4; i++)
        if (!((t[i] >= 'A' && t[i] <= 'Z') || (t[i] >= 'a' && t[i] <= 'z')))
            return false;
    return true;
}

static bool png_kept_ancillary(const uint8_t t[4])
{
    static const char *const keep[] = { "tRNS", "gAMA", "cHRM", "sRGB", "sBIT" };
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
        if (memcmp(t, keep[i], 4) == 0)
            return true;
    return false;
}

static bcd_status png_corrupt(bcd_ctx *ctx, const char *what)
{
    return bcd__ctx_fail(ctx, BCD_EFORMAT, "corrupt_image", "PNG: %s; metadata cannot be removed safely", what);
}

static bcd_status strip_png(struct out *o, bcd_ctx *ctx, const uint8_t *d, size_t len)
{
    put(o, png_sig, sizeof png_sig);
    size_t p = sizeof png_sig;
    bool exif_taken = false;
    /* IDAT chunks must stay as the decoder sees them: a chunk dropped between two of them
     * would join image data that libpng reads as separate. */
    bool after_idat = false, dropped_after_idat = false;
    for (;;) {
        if (len - p < 12)
            return bcd__ctx_fail(ctx, BCD_EFORMAT, "truncated_image", "PNG: the data ends before the IEND chunk");
        const uint32_t clen = be32(d + p);
        const uint8_t *type = d + p + 4;
        if (clen > 0x7FFFFFFFu)
            return png_corrupt(ctx, "a chunk length above 2^31-1");
        if (!chunk_type_valid(type))
            return png_corrupt(ctx, "an invalid chunk type");
        if (len - p - 12 < clen)
            return bcd__ctx_fail(ctx, BCD_EFORMAT, "truncated_image", "PNG: the data ends inside a chunk");
        const uint8_t *data = d + p + 8;
        const size_t whole = (size_t)clen + 12;
        const bool critical = (type[0] & 0x20) == 0;
        const bool is_idat = memcmp(type, "IDAT", 4) == 0;

        if (is_idat && dropped_after_idat)
            return png_corrupt(ctx, "metadata between image data chunks");
        bool keep = critical || png_kept_ancillary(type);
        if (memcmp(type, "eXIf", 4) == 0 && !exif_taken) {
            /* the chunk libpng 1.6 keeps: at least 2 bytes, a correct CRC, a byte-order
             * mark it accepts (later ones are "duplicate"). Versions differ on marks other
             * than II and MM; those are refused rather than guessed at. */
            const bool crc_ok = crc32_update(0, type, 4 + (size_t)clen) == be32(data + clen);
            if (clen >= 2 && crc_ok) {
                const bool strict = (data[0] == 'I' || data[0] == 'M') && data[1] == data[0];
                const bool lenient = data[1] == 'I' || data[1] == 'M' || data[1] == data[0];
                if (!strict && lenient)
                    return png_corrupt(ctx, "an eXIf chunk with an unusual byte-order mark");
                if (strict) {
                    exif_taken = true;
                    int orient = bcd__exif_orientation(data, clen);
                    if (orient != 1) {
                        uint8_t ch[12 + 26] = { 0, 0, 0, 26, 'e', 'X', 'I', 'f' };
                        minimal_tiff(ch + 8, orient);
                        uint32_t crc = crc32_update(0, ch + 4, 4 + 26);
                        const uint8_t c[4] = { (uint8_t)(crc >> 24), (uint8_t)(crc >> 16), (uint8_t)(crc >> 8),
                                               (uint8_t)crc };
                        memcpy(ch + 8 + 26, c, 4);
                        put(o, ch, sizeof ch);
                    }
                }
            }
            keep = false; /* written above, or not at all */
        }
        if (keep)
            put(o, d + p, whole);
        else if (after_idat)
            dropped_after_idat = true;
        if (is_idat)
            after_idat = true;
        else if (keep)
            after_idat = false, dropped_after_idat = false;
        p += whole;
        if (memcmp(type, "IEND", 4) == 0)
            return BCD_OK; /* anything after IEND is dropped */
    }
}

/* ---- entry point -------------------------------------------------------------------- */

bcd_status bcd_image_strip_metadata(void **out, size_t *out_len, bcd_ctx *ctx, const void *data, size_t len)
{
    if (!ctx)
        return BCD_EINVAL;
    bcd__ctx_clear(ctx);
    if (!out || !out_len || (!data && len))
        return bcd__ctx_fail(ctx, BCD_EINVAL, "invalid_argument",
                             "bcd_image_strip_metadata: out, out_len and data are required");
    const uint8_t *d = data;
    const bool jpeg = len >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF;
    const bool png = len >= sizeof png_sig && memcmp(d, png_sig, sizeof png_sig) == 0;
    if (!jpeg && !png)
        return bcd__ctx_fail(ctx, BCD_EFORMAT, "unknown_format",
                             len ? "not a JPEG or PNG image (unrecognised signature)" : "empty input");
    /* A minimal EXIF block replaces one at least as long as its single entry, so the
     * result grows by a few bytes at most; 64 covers it. */
    struct out o = { .cap = len > SIZE_MAX - 64 ? 0 : len + 64 };
    o.p = o.cap ? malloc(o.cap) : NULL;
    if (!o.p)
        return bcd__ctx_fail(ctx, BCD_ENOMEM, "out_of_memory", "cannot allocate %zu bytes", len);
    bcd_status st = jpeg ? strip_jpeg(&o, ctx, d, len) : strip_png(&o, ctx, d, len);
    if (st == BCD_OK && o.overflow)
        st = bcd__ctx_fail(ctx, BCD_ERROR, "internal_error", "metadata removal outgrew its buffer");
    if (st != BCD_OK) {
        free(o.p);
        return st;
    }
    *out = o.p;
    *out_len = o.len;
    return BCD_OK;
}
