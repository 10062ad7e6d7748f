/* Literal-only deflate in a zlib stream: see deflate.h. */
#include <string.h>

#include <zlib.h>

#include "core/core.h"
#include "deflate.h"

#define LIT_SYMS 257  /* the literal/length alphabet in use: bytes 0-255, end of block 256 */
#define END_BLOCK 256
#define LIT_LIMIT 15  /* RFC 1951 3.2.7: at most 15 bits for a literal/length or distance code */
#define CL_SYMS 19    /* the code-length alphabet: lengths 0-15, 16-18 repeat */
#define CL_LIMIT 7    /* and at most 7 bits for a code-length code (3-bit length fields) */
#define STORED_MAX 65535u
#define MAX_SYMS 286

/* The order in which a dynamic block's header sends the code-length code's lengths. */
static const uint8_t cl_order[CL_SYMS] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};
/* Extra bits after the code-length symbols 16 (repeat the previous length 3-6 times),
 * 17 (3-10 zeros) and 18 (11-138 zeros). */
static const uint8_t cl_extra[CL_SYMS] = {[16] = 2, [17] = 3, [18] = 7};

size_t bcd__deflate_bound(size_t n, size_t block)
{
    if (block == 0)
        return 0;
    /* every block costs at most what storing it would: per stored block of at most
     * 65535 bytes, 3 header bits, up to 7 bits of padding and LEN, NLEN (under 6 bytes);
     * then the zlib header and trailer, the last padding, and 8 bytes of room for the
     * whole 64-bit word the bit writer stores at a time */
    size_t blocks = n / STORED_MAX + n / block + 2;
    if (blocks > (SIZE_MAX - 16) / 6 || n > SIZE_MAX - 16 - 6 * blocks)
        return 0;
    return n + 6 * blocks + 16;
}

/* Bit writer: bits collect in a 64-bit word, least significant first as deflate packs
 * them, and are written a whole word at a time; afterwards at most 7 remain. */
static inline void store64le(unsigned char *p, uint64_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(p, &v, sizeof v);
#else
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
#endif
}

static inline void flush_bits(struct bcd__deflate *z)
{
    store64le(z->p, z->acc);
    z->p += z->nacc >> 3;
    z->acc >>= z->nacc & ~7u;
    z->nacc &= 7;
}

/* n <= 32 bits of v (nothing above them set) */
static void put_bits(struct bcd__deflate *z, uint32_t v, unsigned n)
{
    z->acc |= (uint64_t)v << z->nacc;
    z->nacc += n;
    if (z->nacc >= 32)
        flush_bits(z);
}

/* Pad with zero bits to a byte boundary and write everything out. */
static void align_bits(struct bcd__deflate *z)
{
    z->nacc = (z->nacc + 7) & ~7u;
    flush_bits(z);
}

void bcd__deflate_begin(struct bcd__deflate *z, unsigned char *out)
{
    /* CMF 0x78: deflate with a 32 KiB window (no match reaches back at all); FLG 0x01:
     * the fastest level, no dictionary, and 0x7801 is a multiple of 31 as FCHECK asks */
    out[0] = 0x78;
    out[1] = 0x01;
    z->p = out + 2;
    z->acc = 0;
    z->nacc = 0;
    z->adler = (uint32_t)adler32(0L, Z_NULL, 0);
}

unsigned char *bcd__deflate_end(struct bcd__deflate *z)
{
    align_bits(z);
    unsigned char *p = z->p;
    p[0] = (unsigned char)(z->adler >> 24);
    p[1] = (unsigned char)(z->adler >> 16);
    p[2] = (unsigned char)(z->adler >> 8);
    p[3] = (unsigned char)z->adler;
    z->p = p + 4;
    return z->p;
}

/* Huffman code lengths */

/* The used symbols (freq > 0) in increasing order of frequency, ties in symbol order (an
 * LSD radix sort, one pass per significant byte of the largest frequency); their count. */
static unsigned sort_used(const uint32_t *freq, unsigned n, uint16_t *sym)
{
    uint16_t tmp[MAX_SYMS], *src = sym, *dst = tmp;
    unsigned m = 0;
    uint32_t most = 0;
    for (unsigned s = 0; s < n; s++)
        if (freq[s]) {
            sym[m++] = (uint16_t)s;
            most = freq[s] > most ? freq[s] : most;
        }
    for (unsigned shift = 0; shift < 32 && (most >> shift); shift += 8) {
        unsigned at[256] = {0};
        for (unsigned i = 0; i < m; i++)
            at[(freq[src[i]] >> shift) & 255]++;
        for (unsigned d = 0, sum = 0; d < 256; d++) {
            unsigned c = at[d];
            at[d] = sum;
            sum += c;
        }
        for (unsigned i = 0; i < m; i++)
            dst[at[(freq[src[i]] >> shift) & 255]++] = src[i];
        uint16_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != sym)
        memcpy(sym, src, m * sizeof *sym);
    return m;
}

/* Huffman's construction with two queues over the m >= 2 weights w[0, m) sorted
 * increasingly: the leaves in order, and the merged nodes, which come out in increasing
 * order too; each step merges the two lightest heads. Counts the leaves at each depth
 * into count[0, m). */
static void huffman_depths(uint32_t *w, unsigned m, unsigned *count)
{
    uint16_t parent[2 * MAX_SYMS];
    uint16_t depth[2 * MAX_SYMS];
    unsigned leaf = 0, node = m;
    for (unsigned k = m; k < 2 * m - 1; k++) {
        unsigned pick[2];
        for (int j = 0; j < 2; j++)
            pick[j] = leaf < m && (node == k || w[leaf] <= w[node]) ? leaf++ : node++;
        w[k] = w[pick[0]] + w[pick[1]];
        parent[pick[0]] = parent[pick[1]] = (uint16_t)k;
    }
    /* a node's parent comes after it: depths from the root down */
    depth[2 * m - 2] = 0;
    for (unsigned k = 2 * m - 2; k-- > 0;)
        depth[k] = (uint16_t)(depth[parent[k]] + 1);
    memset(count, 0, m * sizeof *count);
    for (unsigned i = 0; i < m; i++)
        count[depth[i]]++;
}

/* Cap the lengths at limit (count[1, limit]) keeping the code complete: the codes
 * deeper than the limit move up to it, which overfills the Kraft sum; each step then
 * takes one code of the limit's length away and splits the deepest shorter code into two
 * one bit longer, lowering the sum by exactly 2^-limit, until it is 1 again. */
static void limit_lengths(unsigned *count, unsigned m, unsigned limit)
{
    for (unsigned l = limit + 1; l < m; l++) {
        count[limit] += count[l];
        count[l] = 0;
    }
    uint32_t kraft = 0; /* in units of 2^-limit */
    for (unsigned l = 1; l <= limit; l++)
        kraft += (uint32_t)count[l] << (limit - l);
    while (kraft > (1u << limit)) {
        count[limit]--;
        for (unsigned l = limit - 1; l > 0; l--)
            if (count[l]) {
                count[l]--;
                count[l + 1] += 2;
                break;
            }
        kraft--;
    }
}

void bcd__huff_lengths(const uint32_t *freq, unsigned n, unsigned limit, uint8_t *len)
{
    uint16_t sym[MAX_SYMS];
    uint32_t w[2 * MAX_SYMS];
    unsigned count[MAX_SYMS];
    memset(len, 0, n);
    unsigned m = sort_used(freq, n, sym);
    if (m == 0)
        return;
    if (m == 1) {
        len[sym[0]] = 1;
        len[sym[0] == 0 ? 1 : 0] = 1;
        return;
    }
    for (unsigned i = 0; i < m; i++)
        w[i] = freq[sym[i]];
    huffman_depths(w, m, count);
    if (m > limit + 1)
        limit_lengths(count, m, limit);
    /* the commonest symbols get the shortest codes */
    for (unsigned l = 1, i = m; l < m && l <= limit; l++)
        for (unsigned c = count[l]; c > 0; c--)
            len[sym[--i]] = (uint8_t)l;
}

/* Canonical codes for the lengths len[0, n) (RFC 1951 3.2.2), bit-reversed: deflate
 * sends a Huffman code from its most significant bit while the stream fills each byte
 * from its least significant, so a code is written reversed in one go. */
static void canonical_codes(const uint8_t *len, unsigned n, uint16_t *code)
{
    unsigned count[LIT_LIMIT + 1] = {0}, next[LIT_LIMIT + 1];
    for (unsigned s = 0; s < n; s++)
        count[len[s]]++;
    count[0] = 0;
    for (unsigned l = 1, c = 0; l <= LIT_LIMIT; l++) {
        c = (c + count[l - 1]) << 1;
        next[l] = c;
    }
    for (unsigned s = 0; s < n; s++) {
        unsigned l = len[s];
        if (l == 0) {
            code[s] = 0;
            continue;
        }
        unsigned c = next[l]++; /* reversed as 16 bits (swap halves, bytes, ...), then shifted */
        c = ((c & 0x5555u) << 1) | ((c >> 1) & 0x5555u);
        c = ((c & 0x3333u) << 2) | ((c >> 2) & 0x3333u);
        c = ((c & 0x0f0fu) << 4) | ((c >> 4) & 0x0f0fu);
        c = ((c & 0x00ffu) << 8) | ((c >> 8) & 0x00ffu);
        code[s] = (uint16_t)(c >> (16 - l));
    }
}

/* Dynamic blocks */

/* The code lengths a dynamic header sends, in code-length symbols: a length, or a run
 * (16: the previous length again, 17 and 18: zeros) with its count in extra bits. */
struct cl_item {
    uint8_t sym, extra;
};

/* Run-length code the lengths len[0, n); returns the number of items. */
static unsigned run_lengths(const uint8_t *len, unsigned n, struct cl_item *item)
{
    unsigned k = 0;
    for (unsigned i = 0; i < n;) {
        unsigned v = len[i], r = 1;
        while (i + r < n && len[i + r] == v)
            r++;
        i += r;
        if (v == 0) {
            for (; r >= 11; r -= r < 138 ? r : 138)
                item[k++] = (struct cl_item){18, (uint8_t)((r < 138 ? r : 138) - 11)};
            if (r >= 3) {
                item[k++] = (struct cl_item){17, (uint8_t)(r - 3)};
                r = 0;
            }
        } else {
            item[k++] = (struct cl_item){(uint8_t)v, 0};
            for (r--; r >= 3; r -= r < 6 ? r : 6)
                item[k++] = (struct cl_item){16, (uint8_t)((r < 6 ? r : 6) - 3)};
        }
        for (; r > 0; r--)
            item[k++] = (struct cl_item){(uint8_t)v, 0};
    }
    return k;
}

/* Everything a dynamic block needs besides its data. */
struct dyn_code {
    uint8_t len[LIT_SYMS];
    uint16_t code[LIT_SYMS];
    uint8_t cl_len[CL_SYMS];
    uint16_t cl_code[CL_SYMS];
    struct cl_item item[LIT_SYMS + 2];
    unsigned items, hclen;
};

/* Build the block's codes from the histogram freq (the end of block included) and
 * return its exact size in bits. */
static uint64_t dyn_build(struct dyn_code *d, const uint32_t *freq)
{
    bcd__huff_lengths(freq, LIT_SYMS, LIT_LIMIT, d->len);
    canonical_codes(d->len, LIT_SYMS, d->code);
    /* the literal lengths, then a distance code that is never used but complete (two
     * codes of 1 bit), as zlib sends it: some decoders reject an empty one. No run
     * crosses from the one to the other: RFC 1951 allows it, but zlib's deflate never
     * does it, so a decoder may never have met it. */
    d->items = run_lengths(d->len, LIT_SYMS, d->item);
    d->item[d->items++] = (struct cl_item){1, 0};
    d->item[d->items++] = (struct cl_item){1, 0};
    uint32_t cl_freq[CL_SYMS] = {0};
    for (unsigned i = 0; i < d->items; i++)
        cl_freq[d->item[i].sym]++;
    bcd__huff_lengths(cl_freq, CL_SYMS, CL_LIMIT, d->cl_len);
    canonical_codes(d->cl_len, CL_SYMS, d->cl_code);
    d->hclen = CL_SYMS;
    while (d->hclen > 4 && d->cl_len[cl_order[d->hclen - 1]] == 0)
        d->hclen--;
    uint64_t bits = 3 + 5 + 5 + 4 + 3 * d->hclen;
    for (unsigned i = 0; i < d->items; i++)
        bits += d->cl_len[d->item[i].sym] + cl_extra[d->item[i].sym];
    for (unsigned s = 0; s < LIT_SYMS; s++)
        bits += (uint64_t)freq[s] * d->len[s];
    return bits;
}

static void dyn_header(struct bcd__deflate *z, const struct dyn_code *d, bool last)
{
    put_bits(z, (last ? 1u : 0u) | 2u << 1, 3); /* BFINAL, BTYPE 10 */
    put_bits(z, LIT_SYMS - 257, 5);             /* HLIT */
    put_bits(z, 2 - 1, 5);                      /* HDIST: two distance codes */
    put_bits(z, d->hclen - 4, 4);               /* HCLEN */
    for (unsigned i = 0; i < d->hclen; i++)
        put_bits(z, d->cl_len[cl_order[i]], 3);
    for (unsigned i = 0; i < d->items; i++) {
        unsigned s = d->item[i].sym;
        put_bits(z, d->cl_code[s], d->cl_len[s]);
        if (cl_extra[s])
            put_bits(z, d->item[i].extra, cl_extra[s]);
    }
}

/* The data loop shifts by a variable count for every byte: BMI2's shlx and shrx do it in
 * one instruction that leaves the flags alone (-7 % per overlay); built for BMI2 and the
 * baseline (BCD__CLONES, core.h). */
/* The data: three codes of at most 15 bits onto the at most 7 bits left make 52 bits,
 * which the 64-bit word holds, so it is written once every three bytes (four when no
 * code is longer than 14 bits). */
BCD__CLONES("bmi2") static void dyn_data(struct bcd__deflate *z, const struct dyn_code *d, const unsigned char *data,
                                size_t n)
{
    uint64_t code[256];
    unsigned longest = 0;
    for (unsigned s = 0; s < 256; s++) {
        code[s] = d->code[s];
        longest = d->len[s] > longest ? d->len[s] : longest;
    }
    const uint8_t *len = d->len;
    flush_bits(z); /* the loops count on at most 7 bits left over */
    uint64_t acc = z->acc;
    unsigned nacc = z->nacc;
    unsigned char *p = z->p;
    const unsigned char *e = data + n;
#define PUT_SYM(b)                                                                                                     \
    do {                                                                                                               \
        acc |= code[b] << nacc;                                                                                        \
        nacc += len[b];                                                                                                \
    } while (0)
#define FLUSH()                                                                                                        \
    do {                                                                                                               \
        store64le(p, acc);                                                                                             \
        p += nacc >> 3;                                                                                                \
        acc >>= nacc & ~7u;                                                                                            \
        nacc &= 7;                                                                                                     \
    } while (0)
    if (longest <= 14) {
        for (; e - data >= 4; data += 4) {
            PUT_SYM(data[0]);
            PUT_SYM(data[1]);
            PUT_SYM(data[2]);
            PUT_SYM(data[3]);
            FLUSH();
        }
    } else {
        for (; e - data >= 3; data += 3) {
            PUT_SYM(data[0]);
            PUT_SYM(data[1]);
            PUT_SYM(data[2]);
            FLUSH();
        }
    }
    for (; data < e; data++) {
        PUT_SYM(data[0]);
        FLUSH();
    }
#undef PUT_SYM
#undef FLUSH
    z->acc = acc;
    z->nacc = nacc;
    z->p = p;
    put_bits(z, d->code[END_BLOCK], d->len[END_BLOCK]);
}

/* Stored blocks, at most 65535 bytes each. */
static void stored(struct bcd__deflate *z, const unsigned char *data, size_t n, bool last)
{
    while (n > 0) {
        unsigned k = n < STORED_MAX ? (unsigned)n : STORED_MAX;
        put_bits(z, last && k == n ? 1u : 0u, 3); /* BFINAL, BTYPE 00 */
        align_bits(z);
        unsigned char *p = z->p;
        p[0] = (unsigned char)k;
        p[1] = (unsigned char)(k >> 8);
        p[2] = (unsigned char)~k;
        p[3] = (unsigned char)(~k >> 8);
        memcpy(p + 4, data, k);
        z->p = p + 4 + k;
        data += k;
        n -= k;
    }
}

/* Four partial histograms, so that runs of one byte value (long in a flat image) do not
 * wait on their own increments. */
static void histogram(const unsigned char *data, size_t n, uint32_t *freq)
{
    uint32_t h[4][256];
    memset(h, 0, sizeof h);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        h[0][data[i]]++;
        h[1][data[i + 1]]++;
        h[2][data[i + 2]]++;
        h[3][data[i + 3]]++;
    }
    for (; i < n; i++)
        h[0][data[i]]++;
    for (unsigned s = 0; s < 256; s++)
        freq[s] = h[0][s] + h[1][s] + h[2][s] + h[3][s];
}

void bcd__deflate_block(struct bcd__deflate *z, const unsigned char *data, size_t n, bool last)
{
    z->adler = (uint32_t)adler32(z->adler, data, (uInt)n);
    uint32_t freq[LIT_SYMS];
    histogram(data, n, freq);
    freq[END_BLOCK] = 1;
    struct dyn_code d;
    uint64_t bits = dyn_build(&d, freq);
    /* storing costs per block of 65535 bytes its 3 header bits, up to 7 of padding and
     * LEN, NLEN; the coded block is kept only when it is no larger than that bound (which
     * bcd__deflate_bound() counts on): noise is stored, as zlib would store it */
    uint64_t stored_bits = 8 * (uint64_t)n + (3 + 7 + 32) * ((uint64_t)n / STORED_MAX + 1);
    if (bits > stored_bits) {
        stored(z, data, n, last);
        return;
    }
    dyn_header(z, &d, last);
    dyn_data(z, &d, data, n);
}
