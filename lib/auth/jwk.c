/* Strict base64url, P-256 public keys, ES256 signature checks and the JWK Set. */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "auth_internal.h"

/* ---- base64url ---- */

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

bool bcd__b64url_decode(const char *src, size_t len, unsigned char **out, size_t *out_len, bool *oom)
{
    *oom = false;
    if (len % 4 == 1)
        return false;
    size_t n = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
    unsigned char *buf = malloc(n + 1);
    if (!buf) {
        *oom = true;
        return false;
    }
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value((unsigned char)src[i]);
        if (v < 0) {
            free(buf);
            return false;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* The bits left over must be zero: one encoding per byte string. */
    if (acc != 0) {
        free(buf);
        return false;
    }
    buf[o] = '\0';
    *out = buf;
    *out_len = o;
    return true;
}

char *bcd__b64url_encode(const unsigned char *src, size_t len)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *s = malloc(len / 3 * 4 + 4 + 1);
    if (!s)
        return NULL;
    size_t o = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)src[i] << 16 | (uint32_t)src[i + 1] << 8 | src[i + 2];
        s[o++] = alphabet[v >> 18];
        s[o++] = alphabet[(v >> 12) & 63];
        s[o++] = alphabet[(v >> 6) & 63];
        s[o++] = alphabet[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)src[i] << 16;
        s[o++] = alphabet[v >> 18];
        s[o++] = alphabet[(v >> 12) & 63];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)src[i] << 16 | (uint32_t)src[i + 1] << 8;
        s[o++] = alphabet[v >> 18];
        s[o++] = alphabet[(v >> 12) & 63];
        s[o++] = alphabet[(v >> 6) & 63];
    }
    s[o] = '\0';
    return s;
}

/* ---- P-256 ---- */

/* Field prime p and group order n of P-256 (SEC 2), big-endian. Equal-length big-endian
 * byte strings compare numerically with memcmp. */
static const unsigned char p256_p[32] = {
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
};
static const unsigned char p256_n[32] = {
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
};

static bool is_zero32(const unsigned char v[32])
{
    unsigned char acc = 0;
    for (int i = 0; i < 32; i++)
        acc |= v[i];
    return acc == 0;
}

bool bcd__p256_key_from_xy(EVP_PKEY **out, const unsigned char x[32], const unsigned char y[32])
{
    /* Coordinates are field elements: refuse x + p and the like before OpenSSL reduces them. */
    if (memcmp(x, p256_p, 32) >= 0 || memcmp(y, p256_p, 32) >= 0)
        return false;
    unsigned char point[65];
    point[0] = 0x04; /* uncompressed */
    memcpy(point + 1, x, 32);
    memcpy(point + 33, y, 32);
    char group[] = "prime256v1";
    OSSL_PARAM params[] = {
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point),
        OSSL_PARAM_END,
    };
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    bool ok = pc && EVP_PKEY_fromdata_init(pc) == 1 &&
              EVP_PKEY_fromdata(pc, &pkey, EVP_PKEY_PUBLIC_KEY, params) == 1;
    EVP_PKEY_CTX_free(pc);
    if (ok) {
        /* On the curve, not the point at infinity, coordinates in range. */
        EVP_PKEY_CTX *cc = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
        ok = cc && EVP_PKEY_public_check(cc) == 1;
        EVP_PKEY_CTX_free(cc);
    }
    ERR_clear_error();
    if (!ok) {
        EVP_PKEY_free(pkey);
        return false;
    }
    *out = pkey;
    return true;
}

enum bcd__sig_result bcd__es256_verify(EVP_PKEY *key, const unsigned char *msg, size_t msg_len,
                                       const unsigned char *sig, size_t sig_len)
{
    if (sig_len != BCD__AUTH_ES256_SIG_LEN)
        return BCD__SIG_BAD_LENGTH;
    const unsigned char *r = sig, *s = sig + 32;
    /* 0 < r, s < n. OpenSSL checks this too; doing it here keeps non-canonical values
     * (r + n fits in 32 bytes for small r) from ever reaching the arithmetic. */
    if (is_zero32(r) || is_zero32(s) || memcmp(r, p256_n, 32) >= 0 || memcmp(s, p256_n, 32) >= 0)
        return BCD__SIG_OUT_OF_RANGE;

    enum bcd__sig_result res = BCD__SIG_ERROR;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *br = BN_bin2bn(r, 32, NULL), *bs = BN_bin2bn(s, 32, NULL);
    unsigned char *der = NULL;
    EVP_MD_CTX *md = NULL;
    if (!es || !br || !bs)
        goto done;
    if (ECDSA_SIG_set0(es, br, bs) != 1)
        goto done;
    br = bs = NULL; /* owned by es now */
    int der_len = i2d_ECDSA_SIG(es, &der);
    if (der_len <= 0)
        goto done;
    md = EVP_MD_CTX_new();
    if (!md || EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) != 1)
        goto done;
    int rc = EVP_DigestVerify(md, der, (size_t)der_len, msg, msg_len);
    res = rc == 1 ? BCD__SIG_OK : BCD__SIG_MISMATCH;
done:
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    BN_free(br);
    BN_free(bs);
    ECDSA_SIG_free(es);
    ERR_clear_error();
    return res;
}

/* ---- JWK Set ---- */

struct jwk {
    char *kid;       /* NULL: none */
    EVP_PKEY *key;   /* NULL: unusable */
    const char *why; /* static text when unusable */
};

struct bcd__jwks {
    struct jwk *keys;
    size_t n;
    size_t usable;
};

void bcd__jwks_free(bcd__jwks *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->n; i++) {
        free(set->keys[i].kid);
        EVP_PKEY_free(set->keys[i].key);
    }
    free(set->keys);
    free(set);
}

static bool str_is(const cJSON *item, const char *value)
{
    return cJSON_IsString(item) && item->valuestring && strcmp(item->valuestring, value) == 0;
}

/* Decode a base64url coordinate that must be exactly 32 bytes (RFC 7518 6.2.1.2). */
static bool coordinate(const cJSON *item, unsigned char dst[32], bool *oom)
{
    *oom = false;
    if (!cJSON_IsString(item) || !item->valuestring)
        return false;
    unsigned char *raw = NULL;
    size_t n = 0;
    if (!bcd__b64url_decode(item->valuestring, strlen(item->valuestring), &raw, &n, oom))
        return false;
    bool ok = n == 32;
    if (ok)
        memcpy(dst, raw, 32);
    free(raw);
    return ok;
}

/* Fill k from one member of "keys"; returns false only when out of memory. */
static bool load_key(struct jwk *k, const cJSON *j)
{
    if (!cJSON_IsObject(j)) {
        k->why = "the key is not a JSON object";
        return true;
    }
    const cJSON *kid = cJSON_GetObjectItemCaseSensitive(j, "kid");
    if (kid && !cJSON_IsString(kid)) {
        k->why = "kid is not a string";
        return true;
    }
    if (kid) {
        k->kid = bcd__strdup(kid->valuestring);
        if (!k->kid)
            return false;
    }
    const cJSON *kty = cJSON_GetObjectItemCaseSensitive(j, "kty");
    const cJSON *crv = cJSON_GetObjectItemCaseSensitive(j, "crv");
    const cJSON *alg = cJSON_GetObjectItemCaseSensitive(j, "alg");
    const cJSON *use = cJSON_GetObjectItemCaseSensitive(j, "use");
    const cJSON *ops = cJSON_GetObjectItemCaseSensitive(j, "key_ops");
    if (!str_is(kty, "EC")) {
        k->why = "kty is not EC (only EC P-256 keys verify ES256)";
        return true;
    }
    if (!str_is(crv, "P-256")) {
        k->why = "crv is not P-256";
        return true;
    }
    if (alg && !str_is(alg, "ES256")) {
        k->why = "the key's alg is not ES256";
        return true;
    }
    if (use && !str_is(use, "sig")) {
        k->why = "the key's use is not sig";
        return true;
    }
    if (ops) {
        bool verify = false, bad = !cJSON_IsArray(ops);
        const cJSON *op;
        cJSON_ArrayForEach(op, ops)
        {
            if (!cJSON_IsString(op))
                bad = true;
            else if (strcmp(op->valuestring, "verify") == 0)
                verify = true;
        }
        if (bad || !verify) {
            k->why = "the key's key_ops do not include verify";
            return true;
        }
    }
    if (cJSON_GetObjectItemCaseSensitive(j, "d")) {
        k->why = "the key set holds a private key";
        return true;
    }
    unsigned char x[32], y[32];
    bool oom = false;
    if (!coordinate(cJSON_GetObjectItemCaseSensitive(j, "x"), x, &oom) ||
        !coordinate(cJSON_GetObjectItemCaseSensitive(j, "y"), y, &oom)) {
        k->why = "x or y is not 32 bytes of base64url";
        return !oom;
    }
    if (!bcd__p256_key_from_xy(&k->key, x, y))
        k->why = "the point is not on the P-256 curve";
    return true;
}

bcd_status bcd__jwks_parse(bcd__jwks **out, const char *json, size_t len, bcd_error *err)
{
    if (len > BCD__AUTH_MAX_JWKS)
        return bcd__fail(err, BCD_ELIMIT, "jwks_too_large", "key set is %zu bytes, limit %u", len,
                         BCD__AUTH_MAX_JWKS);
    if (memchr(json, '\0', len))
        return bcd__fail(err, BCD_EFORMAT, "jwks_invalid", "key set is not JSON text");
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (doc && end)
        while (end < json + len && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
            end++;
    if (!doc || end != json + len) {
        cJSON_Delete(doc);
        return bcd__fail(err, BCD_EFORMAT, "jwks_invalid", "key set is not valid JSON");
    }
    const cJSON *keys = cJSON_GetObjectItemCaseSensitive(doc, "keys");
    if (!cJSON_IsObject(doc) || !cJSON_IsArray(keys)) {
        cJSON_Delete(doc);
        return bcd__fail(err, BCD_EFORMAT, "jwks_invalid", "key set is not an object with a \"keys\" array");
    }
    int n = cJSON_GetArraySize(keys);
    if (n > BCD__AUTH_MAX_KEYS) {
        cJSON_Delete(doc);
        return bcd__fail(err, BCD_ELIMIT, "jwks_too_large", "key set has %d keys, limit %d", n,
                         BCD__AUTH_MAX_KEYS);
    }
    bcd__jwks *set = calloc(1, sizeof *set);
    if (set && n > 0)
        set->keys = calloc((size_t)n, sizeof *set->keys);
    if (!set || (n > 0 && !set->keys))
        goto oom;
    const cJSON *j;
    cJSON_ArrayForEach(j, keys)
    {
        struct jwk *k = &set->keys[set->n++];
        if (!load_key(k, j))
            goto oom;
    }
    cJSON_Delete(doc);
    doc = NULL;
    /* Two keys under one kid: which one the issuer meant is unknowable; use neither. */
    for (size_t a = 0; a < set->n; a++)
        for (size_t b = a + 1; b < set->n; b++) {
            struct jwk *ka = &set->keys[a], *kb = &set->keys[b];
            if (ka->kid && kb->kid && strcmp(ka->kid, kb->kid) == 0) {
                EVP_PKEY_free(ka->key);
                EVP_PKEY_free(kb->key);
                ka->key = kb->key = NULL;
                ka->why = kb->why = "several keys in the set share this kid";
            }
        }
    for (size_t i = 0; i < set->n; i++)
        set->usable += set->keys[i].key != NULL;
    *out = set;
    return BCD_OK;
oom:
    cJSON_Delete(doc);
    bcd__jwks_free(set);
    return bcd__fail(err, BCD_ENOMEM, "out_of_memory", "out of memory reading the key set");
}

enum bcd__jwks_lookup bcd__jwks_find(const bcd__jwks *set, const char *kid, EVP_PKEY **key, const char **why)
{
    *key = NULL;
    *why = NULL;
    if (!kid) {
        if (set->usable != 1)
            return BCD__KEY_UNKNOWN;
        for (size_t i = 0; i < set->n; i++)
            if (set->keys[i].key) {
                *key = set->keys[i].key;
                return BCD__KEY_FOUND;
            }
        return BCD__KEY_UNKNOWN;
    }
    for (size_t i = 0; i < set->n; i++) {
        const struct jwk *k = &set->keys[i];
        if (!k->kid || strcmp(k->kid, kid) != 0)
            continue;
        if (k->key) {
            *key = k->key;
            return BCD__KEY_FOUND;
        }
        *why = k->why;
        return BCD__KEY_UNUSABLE;
    }
    return BCD__KEY_UNKNOWN;
}

size_t bcd__jwks_count(const bcd__jwks *set)
{
    return set ? set->n : 0;
}

size_t bcd__jwks_usable(const bcd__jwks *set)
{
    return set ? set->usable : 0;
}
