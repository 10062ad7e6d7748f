/* Internal API of the auth layer: strict base64url, the P-256 / ES256 primitives, the
 * JWK Set and the hook through which the JWKS document is fetched. Not installed. */
#ifndef BCD_AUTH_INTERNAL_H
#define BCD_AUTH_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "bcd/auth.h"
#include "core/core.h"

/* Limits on what the layer accepts before it looks inside. */
#define BCD__AUTH_MAX_TOKEN (16u * 1024u)   /* compact JWS, bytes */
#define BCD__AUTH_MAX_JWKS (256u * 1024u)   /* JWK Set document, bytes */
#define BCD__AUTH_MAX_KEYS 100              /* keys in one set */
#define BCD__AUTH_ES256_SIG_LEN 64          /* raw R || S */

/*
 * Fetch the body of an HTTP(S) GET of url (the JWKS document).
 * The auth layer does not depend on libcurl: the net layer provides the fetcher and the
 * verifier holds it (bcd__auth_verifier_set_fetcher()).
 * @param user      the pointer given with the fetcher.
 * @param ctx       the verifier's ctx (configuration, logging); borrowed.
 * @param url       e.g. https://xyz.supabase.co/auth/v1/.well-known/jwks.json
 * @param max_len   larger bodies must fail with BCD_ELIMIT.
 * @param[out] out_body  NUL-terminated body (the NUL not counted in *out_len), allocated with
 *                  malloc(); the auth layer frees it with free(). Untouched on failure.
 * @param err       receives the detail (code, message, correlation id) on failure.
 * @return BCD_OK (HTTP 200 only), BCD_ENET (connection, timeout, non-200), BCD_ELIMIT, BCD_ENOMEM.
 */
typedef bcd_status (*bcd__auth_fetch_fn)(void *user, bcd_ctx *ctx, const char *url, size_t max_len,
                                         char **out_body, size_t *out_len, bcd_error *err);

/* Install the fetcher used when the verifier has to download its key set (NULL removes
 * it: downloads then fail with BCD_EUNSUPPORTED, "jwks_fetch_unsupported"). */
void bcd__auth_verifier_set_fetcher(bcd_auth_verifier *v, bcd__auth_fetch_fn fn, void *user);

/* Number of key-set downloads the verifier has attempted (tests). */
unsigned bcd__auth_verifier_fetch_count(const bcd_auth_verifier *v);

/* ---- strict base64url (RFC 7515 section 2: no padding, no other characters) ---- */

/* Decode src[0..len) into a new buffer (NUL appended, not counted). Rejects '=', any
 * character outside [A-Za-z0-9_-], a length of 1 mod 4 and non-zero unused bits (so every
 * byte string has exactly one accepted encoding). Returns false on malformed input or
 * out of memory (*oom set). */
bool bcd__b64url_decode(const char *src, size_t len, unsigned char **out, size_t *out_len, bool *oom);

/* Encode into a new NUL-terminated string (malloc); NULL when out of memory. */
char *bcd__b64url_encode(const unsigned char *src, size_t len);

/* ---- P-256 keys and ES256 signatures ---- */

/* Build a P-256 public key from its affine coordinates (32-byte big-endian each).
 * Fails (false) unless 0 <= x, y < p and (x, y) lies on the curve. *out: caller frees
 * with EVP_PKEY_free(). */
bool bcd__p256_key_from_xy(EVP_PKEY **out, const unsigned char x[32], const unsigned char y[32]);

/* Outcome of a signature check. */
enum bcd__sig_result {
    BCD__SIG_OK = 0,
    BCD__SIG_BAD_LENGTH, /* not exactly 64 bytes: rejected before any arithmetic */
    BCD__SIG_OUT_OF_RANGE, /* r or s is 0 or >= n */
    BCD__SIG_MISMATCH,   /* well-formed but does not verify */
    BCD__SIG_ERROR       /* OpenSSL failure (out of memory) */
};

/* Verify an ES256 signature in JWS form (raw R || S, 32 + 32 bytes big-endian) over msg
 * with SHA-256. The raw signature is converted to a DER ECDSA-Sig-Value for OpenSSL. */
enum bcd__sig_result bcd__es256_verify(EVP_PKEY *key, const unsigned char *msg, size_t msg_len,
                                       const unsigned char *sig, size_t sig_len);

/* ---- JWK Set ---- */

typedef struct bcd__jwks bcd__jwks;

/* Parse a JWK Set ({"keys":[...]}). Every member key is kept, but only EC P-256 keys fit
 * for ES256 verification are usable: kty "EC", crv "P-256", alg absent or "ES256", use
 * absent or "sig", key_ops absent or containing "verify", no private part, x and y
 * 32 bytes each forming a point on the curve. A kid shared by two or more keys makes
 * all of them unusable (ambiguity is refused, the rest of the set stays usable).
 * @return BCD_OK, BCD_EFORMAT ("jwks_invalid": not JSON, no "keys" array),
 *         BCD_ELIMIT ("jwks_too_large"), BCD_ENOMEM. Detail on err. */
bcd_status bcd__jwks_parse(bcd__jwks **out, const char *json, size_t len, bcd_error *err);
void bcd__jwks_free(bcd__jwks *set);

/* Outcome of a key lookup. */
enum bcd__jwks_lookup {
    BCD__KEY_FOUND = 0,
    BCD__KEY_UNKNOWN,  /* no key with this kid (kid NULL: not exactly one usable key) */
    BCD__KEY_UNUSABLE  /* a key with this kid exists but cannot verify ES256; *why says why */
};

/* Look up the key for kid (NULL: the token names no kid, then the set's only usable
 * key, if it has exactly one). *key is borrowed from the set. */
enum bcd__jwks_lookup bcd__jwks_find(const bcd__jwks *set, const char *kid, EVP_PKEY **key, const char **why);

/* Number of keys in the set and of those that are usable. */
size_t bcd__jwks_count(const bcd__jwks *set);
size_t bcd__jwks_usable(const bcd__jwks *set);

#endif
