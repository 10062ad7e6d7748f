/* A zlib stream (RFC 1950) of literal-only deflate blocks (RFC 1951): each block codes its
 * bytes with a Huffman code built from their own histogram (BTYPE 10, no string matches),
 * or stores them when that is smaller. What the compressed PNGs need: after the "up" filter
 * a photograph has few repeated strings worth searching for, and the entropy coding alone,
 * done here, is several times faster than zlib's deflate with Z_HUFFMAN_ONLY. Not installed. */
#ifndef BCD_REPORT_DEFLATE_H
#define BCD_REPORT_DEFLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bcd__deflate {
    unsigned char *p; /* the next byte to write */
    uint64_t acc;     /* bits not yet written, the first in the lowest bit */
    unsigned nacc;    /* how many */
    uint32_t adler;   /* of the bytes coded so far */
};

/* The most bytes bcd__deflate_begin() .. bcd__deflate_end() write for n bytes handed
 * over in blocks of at most block bytes (0 when that does not fit a size_t). */
size_t bcd__deflate_bound(size_t n, size_t block);
/* Start a stream at out (the zlib header), which must have room for the bound. */
void bcd__deflate_begin(struct bcd__deflate *z, unsigned char *out);
/* Code data[0, n) (0 < n < 2^31) as one more block (several stored blocks when stored is smaller
 * and n > 65535); last marks the final block of the stream. */
void bcd__deflate_block(struct bcd__deflate *z, const unsigned char *data, size_t n, bool last);
/* Finish the stream (padding to a byte, the Adler-32 of the data); returns its end. */
unsigned char *bcd__deflate_end(struct bcd__deflate *z);

/* Prefix code lengths for the frequencies freq[0, n) (n <= 286, their sum below 2^32),
 * none longer than limit bits (2^limit >= the number of used symbols): Huffman's where
 * they fit the limit; 0 for an unused symbol, and a complete code (Kraft sum exactly 1)
 * whenever a symbol is used: a lone used symbol gets a partner of length 1, since zlib's
 * inflate rejects an incomplete code-length code. */
void bcd__huff_lengths(const uint32_t *freq, unsigned n, unsigned limit, uint8_t *len);

#endif
