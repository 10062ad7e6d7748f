/* The ES256 key the auth harnesses sign their tokens with. A test key made for these
 * harnesses only: it is public, and nothing trusts it. */
#ifndef BCD_FUZZ_KEY_H
#define BCD_FUZZ_KEY_H

#include <stdbool.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "auth/auth_internal.h"

static const char fuzz_key_pem[] = "-----BEGIN EC PRIVATE KEY-----\n"
                                   "MHcCAQEEIBxsN1E/MXX+xMKxm+gAJiB8ygR9f0CsM7zNWyoo/TENoAoGCCqGSM49\n"
                                   "AwEHoUQDQgAE+bOUlWMhJyLuduk78CDsxbP3iyvMHXd3wHD1ftRBr6remUlVZmoC\n"
                                   "RAyUMysiPp6edKJujgw8NiiDlbTovcaQNA==\n"
                                   "-----END EC PRIVATE KEY-----\n";

/* Its public half as a key set; kid "fuzz". */
static const char fuzz_jwks_json[] =
    "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"alg\":\"ES256\",\"use\":\"sig\",\"kid\":\"fuzz\","
    "\"x\":\"-bOUlWMhJyLuduk78CDsxbP3iyvMHXd3wHD1ftRBr6o\",\"y\":\"3plJVWZqAkQMlDMrIj6ennSibo4MPDYog5W06L3GkDQ\"}]}";

/* Issuer and clock of the harness verifiers. */
#define FUZZ_URL "https://fuzz.invalid"
#define FUZZ_NOW 1750000000

static int64_t fuzz_now(void *user)
{
    (void)user;
    return FUZZ_NOW;
}

static EVP_PKEY *fuzz_key(void)
{
    BIO *b = BIO_new_mem_buf(fuzz_key_pem, -1);
    EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    return k;
}

/* "b64(header).b64(payload).b64(sig)" signed with key (ES256, R || S); corrupt flips a
 * bit of the signature. NULL when out of memory. Caller frees. */
static char *fuzz_token(EVP_PKEY *key, const unsigned char *hdr, size_t hlen, const unsigned char *pl,
                        size_t plen, bool corrupt)
{
    char *h = bcd__b64url_encode(hdr, hlen), *p = bcd__b64url_encode(pl, plen), *s = NULL, *tok = NULL;
    unsigned char der[80], rs[64];
    size_t dlen = sizeof der;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    ECDSA_SIG *sig = NULL;
    if (!h || !p || !md)
        goto done;
    size_t n = strlen(h) + strlen(p) + 1;
    tok = malloc(n + 1 + 90);
    if (!tok)
        goto done;
    snprintf(tok, n + 1, "%s.%s", h, p);
    const unsigned char *dp = der;
    if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestSign(md, der, &dlen, (const unsigned char *)tok, n) != 1 ||
        !(sig = d2i_ECDSA_SIG(NULL, &dp, (long)dlen)) ||
        BN_bn2binpad(ECDSA_SIG_get0_r(sig), rs, 32) != 32 || BN_bn2binpad(ECDSA_SIG_get0_s(sig), rs + 32, 32) != 32) {
        free(tok);
        tok = NULL;
        goto done;
    }
    if (corrupt)
        rs[hlen % 64] ^= 0x01;
    s = bcd__b64url_encode(rs, 64);
    if (!s) {
        free(tok);
        tok = NULL;
        goto done;
    }
    snprintf(tok + n, 90, ".%s", s);
done:
    ECDSA_SIG_free(sig);
    EVP_MD_CTX_free(md);
    free(h);
    free(p);
    free(s);
    return tok;
}

#endif
