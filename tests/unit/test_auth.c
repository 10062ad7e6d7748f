/* Access-token verification: the Wycheproof ECDSA P-256 (P1363), JWS, JWE/JWS and JWK
 * vectors, plus tokens minted here with a fresh P-256 key (claims, key rotation, cache,
 * algorithm confusion, malformed input, error messages free of the token). */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/auth_internal.h"
#include "bcd.h"

#define WYCHEPROOF BCD_TESTDATA_DIR "/wycheproof/"
#define T0 1750000000 /* the fake clock's start */

/* ---- helpers ---- */

static cJSON *read_json(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(fread(buf, 1, (size_t)n, f), n);
    buf[n] = '\0';
    fclose(f);
    cJSON *doc = cJSON_Parse(buf);
    free(buf);
    ck_assert_msg(doc != NULL, "%s is not JSON", path);
    return doc;
}

static unsigned char *hex_decode(const char *hex, size_t *len)
{
    size_t n = strlen(hex) / 2;
    unsigned char *out = malloc(n + 1);
    ck_assert_ptr_nonnull(out);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        ck_assert_int_eq(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (unsigned char)v;
    }
    *len = n;
    return out;
}

static const char *str(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* printf into a new string */
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
static char *fmt(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int n = vsnprintf(NULL, 0, f, ap);
    va_end(ap);
    char *s = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(s);
    va_start(ap, f);
    vsnprintf(s, (size_t)n + 1, f, ap);
    va_end(ap);
    return s;
}

static char *b64(const void *data, size_t len)
{
    char *s = bcd__b64url_encode(data, len);
    ck_assert_ptr_nonnull(s);
    return s;
}

static char *b64s(const char *text)
{
    return b64(text, strlen(text));
}

/* ---- a P-256 key made at test time ---- */

struct key {
    EVP_PKEY *pkey;
    unsigned char x[32], y[32];
};

static void key_new(struct key *k)
{
    k->pkey = EVP_EC_gen("P-256");
    ck_assert_ptr_nonnull(k->pkey);
    BIGNUM *x = NULL, *y = NULL;
    ck_assert(EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_EC_PUB_X, &x) == 1);
    ck_assert(EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &y) == 1);
    ck_assert(BN_bn2binpad(x, k->x, 32) == 32);
    ck_assert(BN_bn2binpad(y, k->y, 32) == 32);
    BN_free(x);
    BN_free(y);
}

static void key_free(struct key *k)
{
    EVP_PKEY_free(k->pkey);
}

/* The public JWK of k; extra: more members, e.g. ",\"use\":\"sig\"". */
static char *jwk(const struct key *k, const char *kid, const char *extra)
{
    char *x = b64(k->x, 32), *y = b64(k->y, 32);
    char *s = fmt("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"%s%s%s%s}", x, y,
                  kid ? ",\"kid\":\"" : "", kid ? kid : "", kid ? "\"" : "", extra ? extra : "");
    free(x);
    free(y);
    return s;
}

/* {"keys":[jwk(k1,kid1), jwk(k2,kid2)]}; k2 may be NULL. */
static char *jwks2(const struct key *k1, const char *kid1, const struct key *k2, const char *kid2)
{
    char *a = jwk(k1, kid1, ",\"alg\":\"ES256\",\"use\":\"sig\",\"key_ops\":[\"verify\"]");
    char *b = k2 ? jwk(k2, kid2, ",\"alg\":\"ES256\",\"use\":\"sig\"") : NULL;
    char *s = fmt("{\"keys\":[%s%s%s]}", a, b ? "," : "", b ? b : "");
    free(a);
    free(b);
    return s;
}

/* ES256 over data: raw R || S. */
static void es256_sign(const struct key *k, const char *data, unsigned char sig[64])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    ck_assert(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k->pkey) == 1);
    size_t der_len = 0;
    ck_assert(EVP_DigestSign(md, NULL, &der_len, (const unsigned char *)data, strlen(data)) == 1);
    unsigned char *der = malloc(der_len);
    ck_assert(EVP_DigestSign(md, der, &der_len, (const unsigned char *)data, strlen(data)) == 1);
    const unsigned char *p = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    ck_assert_ptr_nonnull(es);
    ck_assert(BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32) == 32);
    ck_assert(BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32) == 32);
    ECDSA_SIG_free(es);
    free(der);
    EVP_MD_CTX_free(md);
}

/* header.payload.signature from JSON texts, signed with k (raw sig_len bytes of the
 * signature taken from a 64-byte one padded with zeros). */
static char *mint_raw(const struct key *k, const char *header, const char *claims, size_t sig_len)
{
    char *h = b64s(header), *p = b64s(claims);
    char *signing = fmt("%s.%s", h, p);
    unsigned char sig[80] = {0};
    es256_sign(k, signing, sig);
    char *s = b64(sig, sig_len);
    char *tok = fmt("%s.%s", signing, s);
    free(h);
    free(p);
    free(signing);
    free(s);
    return tok;
}

static char *mint(const struct key *k, const char *kid, const char *claims)
{
    char *header = fmt("{\"alg\":\"ES256\",\"kid\":\"%s\",\"typ\":\"JWT\"}", kid);
    char *tok = mint_raw(k, header, claims, 64);
    free(header);
    return tok;
}

#define ISS "https://abcdefghijklmnopqrst.supabase.co/auth/v1"
#define SUB "5f0c8d2e-6b1a-4e4b-9d3c-2a7e1f9b8c01"

/* Supabase-shaped claims, expiring at exp. */
static char *claims(long long exp, const char *more)
{
    return fmt("{\"iss\":\"" ISS "\",\"sub\":\"" SUB "\",\"aud\":\"authenticated\",\"exp\":%lld,\"iat\":%lld,"
               "\"email\":\"alice@example.com\",\"phone\":\"\",\"role\":\"authenticated\",\"aal\":\"aal1\","
               "\"session_id\":\"0b9d9a57-2d7b-4c6c-8f3e-9a1b2c3d4e5f\",\"is_anonymous\":false%s}",
               exp, (long long)T0 - 60, more ? more : "");
}

/* ---- fake clock and fetcher ---- */

static int64_t clock_now = T0;
static int64_t fake_now(void *user)
{
    (void)user;
    return clock_now;
}

static char *served; /* the JWKS the fake server answers with; NULL: connection refused */
static unsigned fetches;
static char fetched_url[256];

static bcd_status fake_fetch(void *user, bcd_ctx *ctx, const char *url, size_t max_len, char **out, size_t *len,
                             bcd_error *err)
{
    (void)user;
    (void)ctx;
    (void)max_len;
    fetches++;
    snprintf(fetched_url, sizeof fetched_url, "%s", url);
    if (!served)
        return bcd__fail(err, BCD_ENET, "connection_failed", "connection refused");
    *out = bcd__strdup(served);
    *len = strlen(served);
    return BCD_OK;
}

static void serve(char *jwks)
{
    free(served);
    served = jwks;
}

static bcd_ctx *ctx;

static void setup(void)
{
    ck_assert_int_eq(bcd_ctx_new(&ctx), BCD_OK);
    clock_now = T0;
    fetches = 0;
    served = NULL;
}

static void teardown(void)
{
    bcd_ctx_free(ctx);
    free(served);
    served = NULL;
}

/* A verifier on the fake clock: flags, optional pinned JWKS, optional project URL. */
static bcd_auth_verifier *verifier(unsigned flags, const char *jwks, const char *url)
{
    bcd_auth_options o = BCD_AUTH_OPTIONS_INIT;
    o.flags = flags;
    o.now = fake_now;
    o.supabase_url = url;
    bcd_auth_verifier *v = NULL;
    ck_assert_int_eq(bcd_auth_verifier_new(&v, ctx, &o), BCD_OK);
    if (jwks)
        ck_assert_int_eq(bcd_auth_verifier_set_jwks_json(v, jwks), BCD_OK);
    return v;
}

/* The error code of the last call on v ("ok" if it succeeded). */
static const char *code(const bcd_auth_verifier *v)
{
    return bcd_error_code(bcd_auth_verifier_last_error(v));
}

/* The failure detail must not carry the token or any part of it. */
static void assert_no_token_in_error(const bcd_auth_verifier *v, const char *token)
{
    const bcd_error *e = bcd_auth_verifier_last_error(v);
    ck_assert_ptr_nonnull(e);
    const char *texts[2] = {bcd_error_message(e), bcd_error_details_json(e)};
    char *env = NULL;
    ck_assert_int_eq(bcd_error_json(&env, e), BCD_OK);
    for (int i = 0; i < 3; i++) {
        const char *t = i < 2 ? texts[i] : env;
        if (!t)
            continue;
        if (*token)
            ck_assert_msg(strstr(t, token) == NULL, "token in error text: %s", t);
        /* each dot-separated part of 8 characters or more */
        const char *p = token;
        while (*p) {
            size_t n = strcspn(p, ".");
            if (n >= 8) {
                char *part = bcd__strndup(p, n);
                ck_assert_msg(strstr(t, part) == NULL, "token part in error text: %s", t);
                free(part);
            }
            p += n + (p[n] == '.');
        }
    }
    bcd_free(env);
}

/* Verify, expecting failure with status st and code c; returns nothing. */
static void expect_fail(bcd_auth_verifier *v, const char *token, bcd_status st, const char *c)
{
    char *out = (char *)"untouched";
    bcd_status got = bcd_auth_verify(&out, v, token);
    ck_assert_msg(got == st, "status %d (%s: %s), expected %d", got, code(v),
                  bcd_error_message(bcd_auth_verifier_last_error(v)), st);
    ck_assert_str_eq(out, "untouched");
    if (c)
        ck_assert_str_eq(code(v), c);
    assert_no_token_in_error(v, token);
}

static cJSON *expect_ok(bcd_auth_verifier *v, const char *token)
{
    char *out = NULL;
    bcd_status st = bcd_auth_verify(&out, v, token);
    ck_assert_msg(st == BCD_OK, "rejected: %s: %s", code(v), bcd_error_message(bcd_auth_verifier_last_error(v)));
    ck_assert_ptr_null(bcd_auth_verifier_last_error(v));
    cJSON *doc = cJSON_Parse(out);
    ck_assert_ptr_nonnull(doc);
    bcd_free(out);
    return doc;
}

/* ---- base64url ---- */

START_TEST(test_b64url_decode_is_strict)
{
    struct {
        const char *in;
        const char *out; /* NULL: rejected */
    } cases[] = {
        {"", ""},       {"Zm9v", "foo"}, {"Zm8", "fo"},  {"Zg", "f"},     {"Zm9vYg", "foob"},
        {"Zm9", NULL},  /* unused bits set */
        {"Zh", NULL},   {"Z", NULL},     {"Zm9v=", NULL}, {"Zg==", NULL}, {"Zm+v", NULL},
        {"Zm/v", NULL}, {"Zm 9v", NULL}, {"Zm9v\n", NULL}, {"Zm.v", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned char *out = NULL;
        size_t len = 0;
        bool oom = false;
        bool ok = bcd__b64url_decode(cases[i].in, strlen(cases[i].in), &out, &len, &oom);
        ck_assert_msg(ok == (cases[i].out != NULL), "case '%s'", cases[i].in);
        ck_assert(!oom);
        if (ok) {
            ck_assert_uint_eq(len, strlen(cases[i].out));
            ck_assert_mem_eq(out, cases[i].out, len);
            char *back = b64(out, len);
            ck_assert_str_eq(back, cases[i].in);
            free(back);
            free(out);
        }
    }
}
END_TEST

/* ---- Wycheproof ---- */

START_TEST(test_wycheproof_ecdsa_p256_sha256_p1363)
{
    cJSON *doc = read_json(WYCHEPROOF "ecdsa_secp256r1_sha256_p1363_test.json");
    int valid_ok = 0, invalid_rejected = 0, wrong_size = 0, total = 0, groups = 0, with_jwk = 0;
    const cJSON *g;
    cJSON_ArrayForEach(g, cJSON_GetObjectItemCaseSensitive(doc, "testGroups"))
    {
        /* The key two ways: uncompressed point, and JWK through a key set. */
        groups++;
        size_t plen;
        unsigned char *point = hex_decode(str(cJSON_GetObjectItemCaseSensitive(g, "publicKey"), "uncompressed"), &plen);
        ck_assert_uint_eq(plen, 65);
        EVP_PKEY *key = NULL;
        ck_assert(bcd__p256_key_from_xy(&key, point + 1, point + 33));
        free(point);
        /* most groups also give the key as a JWK: it must load to the same key */
        EVP_PKEY *jkey = key;
        bcd__jwks *set = NULL;
        const cJSON *jwk_item = cJSON_GetObjectItemCaseSensitive(g, "publicKeyJwk");
        if (jwk_item) {
            char *jwk_text = cJSON_PrintUnformatted(jwk_item);
            char *set_text = fmt("{\"keys\":[%s]}", jwk_text);
            bcd_error err = {0};
            ck_assert_msg(bcd__jwks_parse(&set, set_text, strlen(set_text), &err) == BCD_OK, "%s: %s", set_text,
                          err.message);
            const char *why = NULL;
            ck_assert_int_eq(bcd__jwks_find(set, NULL, &jkey, &why), BCD__KEY_FOUND);
            ck_assert_int_eq(EVP_PKEY_eq(key, jkey), 1);
            free(jwk_text);
            free(set_text);
            with_jwk++;
        }

        const cJSON *t;
        cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(g, "tests"))
        {
            size_t mlen, slen;
            unsigned char *msg = hex_decode(str(t, "msg"), &mlen);
            unsigned char *sig = hex_decode(str(t, "sig"), &slen);
            bool valid = strcmp(str(t, "result"), "valid") == 0;
            enum bcd__sig_result r = bcd__es256_verify(key, msg, mlen, sig, slen);
            enum bcd__sig_result r2 = bcd__es256_verify(jkey, msg, mlen, sig, slen);
            ck_assert_int_eq(r, r2);
            int id = cJSON_GetObjectItemCaseSensitive(t, "tcId")->valueint;
            if (valid) {
                ck_assert_msg(r == BCD__SIG_OK, "tcId %d (%s) valid but rejected (%d)", id, str(t, "comment"), r);
                valid_ok++;
            } else {
                ck_assert_msg(r != BCD__SIG_OK, "tcId %d (%s) invalid but accepted", id, str(t, "comment"));
                ck_assert(r != BCD__SIG_ERROR);
                if (slen != 64) {
                    ck_assert_int_eq(r, BCD__SIG_BAD_LENGTH); /* before any arithmetic */
                    wrong_size++;
                }
                invalid_rejected++;
            }
            total++;
            free(msg);
            free(sig);
        }
        EVP_PKEY_free(key);
        bcd__jwks_free(set);
    }
    ck_assert_int_eq(total, cJSON_GetObjectItemCaseSensitive(doc, "numberOfTests")->valueint);
    printf("wycheproof ecdsa_secp256r1_sha256_p1363: %d tests in %d groups (%d keys also loaded from their JWK): "
           "%d valid accepted, %d invalid rejected (%d of them for their size, before any arithmetic)\n",
           total, groups, with_jwk, valid_ok, invalid_rejected, wrong_size);
    fflush(stdout);
    ck_assert_int_eq(valid_ok, 173);
    ck_assert_int_eq(invalid_rejected, 89);
    cJSON_Delete(doc);
}
END_TEST

/* The key set of a Wycheproof JWS/JWK group: "public" if present, else "private"; a single
 * JWK is wrapped in a set. */
static char *group_jwks(const cJSON *g)
{
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(g, "public");
    if (!k)
        k = cJSON_GetObjectItemCaseSensitive(g, "private");
    ck_assert_ptr_nonnull(k);
    char *text = cJSON_PrintUnformatted(k);
    if (cJSON_GetObjectItemCaseSensitive(k, "keys"))
        return text;
    char *set = fmt("{\"keys\":[%s]}", text);
    free(text);
    return set;
}

/* A group whose key is an EC P-256 signing key, i.e. one ES256 applies to. */
static bool es256_group(const cJSON *g)
{
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(g, "public");
    if (!k || cJSON_GetObjectItemCaseSensitive(k, "keys"))
        return false;
    const char *kty = str(k, "kty"), *crv = str(k, "crv");
    return kty && crv && strcmp(kty, "EC") == 0 && strcmp(crv, "P-256") == 0;
}

/* The token of a test: a string, or (JSON serialization, missing) its JSON text / "". */
static char *test_token(const cJSON *t, const char *member)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(t, member);
    if (cJSON_IsString(j))
        return bcd__strdup(j->valuestring);
    if (!j || cJSON_IsNull(j))
        return bcd__strdup("");
    return cJSON_PrintUnformatted(j);
}

struct jws_counts {
    int es_valid, es_valid_ok, es_invalid, es_invalid_rejected;
    int other, other_rejected, jwe, jwe_rejected;
};

/* Run every test of a JWS-style file; returns counts. */
static struct jws_counts run_jws_file(const char *path)
{
    struct jws_counts c = {0};
    cJSON *doc = read_json(path);
    const cJSON *g;
    cJSON_ArrayForEach(g, cJSON_GetObjectItemCaseSensitive(doc, "testGroups"))
    {
        bool es = es256_group(g);
        char *set = group_jwks(g);
        bcd_auth_verifier *v = verifier(BCD_AUTH_SIGNATURE_ONLY, NULL, NULL);
        bcd_status st = bcd_auth_verifier_set_jwks_json(v, set);
        ck_assert_msg(st == BCD_OK, "group %s: key set refused: %s", str(g, "comment"), code(v));
        const cJSON *t;
        cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(g, "tests"))
        {
            bool is_jwe = cJSON_GetObjectItemCaseSensitive(t, "jwe") != NULL;
            char *token = test_token(t, is_jwe ? "jwe" : "jws");
            bool valid = strcmp(str(t, "result"), "valid") == 0;
            int id = cJSON_GetObjectItemCaseSensitive(t, "tcId")->valueint;
            char *out = NULL;
            st = bcd_auth_verify(&out, v, token);
            if (is_jwe) {
                c.jwe++;
                ck_assert_msg(st == BCD_EAUTH, "tcId %d: JWE accepted", id);
                size_t dots = 0;
                for (const char *q = token; *q; q++)
                    dots += *q == '.';
                if (dots == 4)
                    ck_assert_str_eq(code(v), "malformed_token");
                c.jwe_rejected++;
            } else if (es) {
                if (valid) {
                    c.es_valid++;
                    ck_assert_msg(st == BCD_OK, "tcId %d (%s) valid but rejected: %s", id, str(t, "comment"), code(v));
                    c.es_valid_ok++;
                } else {
                    c.es_invalid++;
                    ck_assert_msg(st == BCD_EAUTH, "tcId %d (%s) invalid but %d", id, str(t, "comment"), st);
                    c.es_invalid_rejected++;
                }
            } else {
                /* RS*, PS*, HS*, ES512 and the like: nothing verifies, valid or not. */
                c.other++;
                ck_assert_msg(st == BCD_EAUTH, "tcId %d (%s, group %s) not ES256 but %d", id, str(t, "comment"),
                              str(g, "comment"), st);
                c.other_rejected++;
            }
            if (st != BCD_OK)
                assert_no_token_in_error(v, token);
            bcd_free(out);
            free(token);
        }
        bcd_auth_verifier_free(v);
        free(set);
    }
    cJSON_Delete(doc);
    return c;
}

START_TEST(test_wycheproof_json_web_signature)
{
    struct jws_counts c = run_jws_file(WYCHEPROOF "json_web_signature_test.json");
    printf("wycheproof json_web_signature: ES256/P-256 groups: %d/%d valid accepted, %d/%d invalid rejected; "
           "other algorithms: %d/%d rejected\n",
           c.es_valid_ok, c.es_valid, c.es_invalid_rejected, c.es_invalid, c.other_rejected, c.other);
    fflush(stdout);
    ck_assert_int_eq(c.es_valid + c.es_invalid, 41);
    ck_assert_int_eq(c.es_valid_ok, 2);
    ck_assert_int_eq(c.es_invalid_rejected, 39);
    ck_assert_int_eq(c.other_rejected, 401 - 41);
}
END_TEST

START_TEST(test_wycheproof_json_web_crypto)
{
    struct jws_counts c = run_jws_file(WYCHEPROOF "json_web_crypto_test.json");
    printf("wycheproof json_web_crypto: jws_ec: %d/%d valid accepted, %d/%d invalid rejected; "
           "other JWS: %d/%d rejected; JWE: %d/%d rejected\n",
           c.es_valid_ok, c.es_valid, c.es_invalid_rejected, c.es_invalid, c.other_rejected, c.other, c.jwe_rejected,
           c.jwe);
    fflush(stdout);
    ck_assert_int_eq(c.es_valid_ok, 1);
    ck_assert_int_eq(c.es_invalid_rejected, 14);
    ck_assert_int_eq(c.jwe, 34);
    ck_assert_int_eq(c.es_valid + c.es_invalid + c.other + c.jwe, 83);
}
END_TEST

START_TEST(test_wycheproof_json_web_key)
{
    cJSON *doc = read_json(WYCHEPROOF "json_web_key_test.json");
    int total = 0, rejected = 0, unusable = 0, valid_other = 0;
    const cJSON *g;
    cJSON_ArrayForEach(g, cJSON_GetObjectItemCaseSensitive(doc, "testGroups"))
    {
        char *set = group_jwks(g);
        bcd_auth_verifier *v = verifier(BCD_AUTH_SIGNATURE_ONLY, set, NULL);
        const cJSON *t;
        cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(g, "tests"))
        {
            char *token = test_token(t, "jws");
            int id = cJSON_GetObjectItemCaseSensitive(t, "tcId")->valueint;
            bool es = strncmp(token, "eyJhbGciOiJFUzI1NiIs", 20) == 0; /* {"alg":"ES256", */
            char *out = NULL;
            bcd_status st = bcd_auth_verify(&out, v, token);
            /* Every ES256 case here has a bad key (alg/curve/kty/use/point): none may verify;
             * the valid ones are HS* and RS* tokens this ES256-only verifier never accepts. */
            ck_assert_msg(st == BCD_EAUTH, "tcId %d (%s): %d", id, str(t, "comment"), st);
            if (es) {
                ck_assert_msg(strcmp(code(v), "key_unusable") == 0, "tcId %d: %s", id, code(v));
                unusable++;
            } else {
                ck_assert_str_eq(code(v), "alg_not_allowed");
            }
            if (strcmp(str(t, "result"), "valid") == 0)
                valid_other++;
            assert_no_token_in_error(v, token);
            rejected++;
            total++;
            free(token);
        }
        bcd_auth_verifier_free(v);
        free(set);
    }
    printf("wycheproof json_web_key: %d tests: %d rejected (%d ES256 cases with a bad key rejected as "
           "key_unusable; %d valid HS*/RS* cases rejected as not ES256)\n",
           total, rejected, unusable, valid_other);
    fflush(stdout);
    ck_assert_int_eq(total, 26);
    ck_assert_int_eq(unusable, 6);
    cJSON_Delete(doc);

    /* The key-set rules those vectors are about, on the sets themselves. */
    bcd__jwks *set = NULL;
    bcd_error err = {0};
    EVP_PKEY *key;
    const char *why;
    const char *mixed = "{\"keys\":[{\"alg\":\"HS256\",\"use\":\"sig\",\"k\":\"-ebuDNsVZ2iJtoZ-akfXTSCt4UO2cruLCsbWlBinggE\","
                        "\"kid\":\"kid-aes-sign\",\"kty\":\"oct\"},{\"alg\":\"ES256\",\"use\":\"sig\",\"x\":"
                        "\"04N0xi21hshyvBp7I167sbE_bXqyqkAPfefdklMO7wY\",\"y\":\"UI8exy-C06a7DUnjIdENkxeFtHM4-l_41LqEw9nVgmw\","
                        "\"crv\":\"P-256\",\"kid\":\"kid-ec-sign\",\"kty\":\"EC\"}]}";
    ck_assert_int_eq(bcd__jwks_parse(&set, mixed, strlen(mixed), &err), BCD_OK);
    ck_assert_uint_eq(bcd__jwks_count(set), 2);
    ck_assert_uint_eq(bcd__jwks_usable(set), 1);
    ck_assert_int_eq(bcd__jwks_find(set, "kid-aes-sign", &key, &why), BCD__KEY_UNUSABLE);
    ck_assert_int_eq(bcd__jwks_find(set, "kid-ec-sign", &key, &why), BCD__KEY_FOUND);
    bcd__jwks_free(set);
}
END_TEST

/* ---- tokens minted here ---- */

START_TEST(test_auth_verify_accepts_supabase_token_and_returns_caller)
{
    struct key k;
    key_new(&k);
    char *set = jwks2(&k, "k1", NULL, NULL);
    bcd_auth_verifier *v = verifier(0, set, "https://abcdefghijklmnopqrst.supabase.co/");
    char *c = claims(T0 + 3600, NULL);
    char *tok = mint(&k, "k1", c);
    cJSON *doc = expect_ok(v, tok);
    ck_assert_str_eq(str(doc, "user_id"), SUB);
    ck_assert_str_eq(str(doc, "role"), "authenticated");
    ck_assert_str_eq(str(doc, "email"), "alice@example.com");
    ck_assert_str_eq(str(doc, "aud"), "authenticated");
    ck_assert_str_eq(str(doc, "iss"), ISS);
    ck_assert_str_eq(str(doc, "kid"), "k1");
    ck_assert_str_eq(str(doc, "aal"), "aal1");
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(doc, "is_anonymous")));
    ck_assert_double_eq(cJSON_GetObjectItemCaseSensitive(doc, "exp")->valuedouble, T0 + 3600);
    cJSON_Delete(doc);
    ck_assert_uint_eq(bcd__auth_verifier_fetch_count(v), 0); /* pinned set: no download */
    free(tok);
    free(c);

    /* aud as an array holding "authenticated" */
    c = fmt("{\"iss\":\"" ISS "\",\"sub\":\"" SUB "\",\"aud\":[\"other\",\"authenticated\"],\"exp\":%d}", T0 + 60);
    tok = mint(&k, "k1", c);
    doc = expect_ok(v, tok);
    ck_assert(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(doc, "aud")));
    ck_assert(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(doc, "email")));
    cJSON_Delete(doc);
    free(tok);
    free(c);

    bcd_auth_verifier_free(v);
    free(set);
    key_free(&k);
}
END_TEST

START_TEST(test_auth_verify_checks_exp_nbf_iat_with_leeway)
{
    struct key k;
    key_new(&k);
    char *set = jwks2(&k, "k1", NULL, NULL);
    bcd_auth_verifier *v = verifier(0, set, NULL);
    char *c = claims(T0, NULL);
    char *tok = mint(&k, "k1", c);

    clock_now = T0 - 1;
    cJSON_Delete(expect_ok(v, tok));
    clock_now = T0 + 29; /* within the default 30 s leeway */
    cJSON_Delete(expect_ok(v, tok));
    clock_now = T0 + 30;
    expect_fail(v, tok, BCD_EAUTH, "token_expired");
    clock_now = T0 + 100000;
    expect_fail(v, tok, BCD_EAUTH, "token_expired");
    bcd_auth_verifier_free(v);

    /* leeway 0 */
    bcd_auth_options o = BCD_AUTH_OPTIONS_INIT;
    o.now = fake_now;
    o.leeway_s = 0;
    ck_assert_int_eq(bcd_auth_verifier_new(&v, ctx, &o), BCD_OK);
    ck_assert_int_eq(bcd_auth_verifier_set_jwks_json(v, set), BCD_OK);
    clock_now = T0;
    expect_fail(v, tok, BCD_EAUTH, "token_expired");
    clock_now = T0 - 1;
    cJSON_Delete(expect_ok(v, tok));
    bcd_auth_verifier_free(v);
    free(tok);
    free(c);

    v = verifier(0, set, NULL);
    clock_now = T0;
    /* nbf */
    c = claims(T0 + 3600, ",\"nbf\":1750000031");
    tok = mint(&k, "k1", c);
    expect_fail(v, tok, BCD_EAUTH, "token_not_yet_valid");
    clock_now = T0 + 1;
    cJSON_Delete(expect_ok(v, tok));
    free(tok);
    free(c);
    /* iat in the future */
    clock_now = T0;
    c = fmt("{\"sub\":\"" SUB "\",\"aud\":\"authenticated\",\"exp\":%d,\"iat\":%d}", T0 + 3600, T0 + 31);
    tok = mint(&k, "k1", c);
    expect_fail(v, tok, BCD_EAUTH, "token_not_yet_valid");
    free(tok);
    free(c);
    /* exp missing, or not a number */
    const char *bad[] = {
        "{\"sub\":\"" SUB "\",\"aud\":\"authenticated\"}",
        "{\"sub\":\"" SUB "\",\"aud\":\"authenticated\",\"exp\":\"1750003600\"}",
        "{\"sub\":\"" SUB "\",\"aud\":\"authenticated\",\"exp\":1750003600,\"nbf\":null}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tok = mint(&k, "k1", bad[i]);
        expect_fail(v, tok, BCD_EAUTH, "invalid_claims");
        free(tok);
    }
    bcd_auth_verifier_free(v);

    /* with BCD_AUTH_SIGNATURE_ONLY none of this is looked at */
    v = verifier(BCD_AUTH_SIGNATURE_ONLY, set, NULL);
    tok = mint(&k, "k1", bad[0]);
    cJSON *doc = expect_ok(v, tok);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(doc, "exp")));
    cJSON_Delete(doc);
    free(tok);
    bcd_auth_verifier_free(v);
    free(set);
    key_free(&k);
}
END_TEST

START_TEST(test_auth_verify_checks_issuer_audience_subject)
{
    struct key k;
    key_new(&k);
    char *set = jwks2(&k, "k1", NULL, NULL);
    char *good = claims(T0 + 600, NULL);
    char *tok = mint(&k, "k1", good);

    /* issuer from the option URL, from the ctx, or explicit */
    bcd_auth_verifier *v = verifier(0, set, "https://other.supabase.co");
    expect_fail(v, tok, BCD_EAUTH, "bad_issuer");
    ck_assert_ptr_nonnull(strstr(bcd_error_details_json(bcd_auth_verifier_last_error(v)), "https://other.supabase.co/auth/v1"));
    bcd_auth_verifier_free(v);
    ck_assert_int_eq(bcd_ctx_set(ctx, "SUPABASE_URL", "https://abcdefghijklmnopqrst.supabase.co"), BCD_OK);
    v = verifier(0, set, NULL);
    cJSON_Delete(expect_ok(v, tok));
    bcd_auth_verifier_free(v);
    ck_assert_int_eq(bcd_ctx_set(ctx, "SUPABASE_URL", "https://zzz.supabase.co"), BCD_OK);
    v = verifier(0, set, NULL);
    expect_fail(v, tok, BCD_EAUTH, "bad_issuer");
    bcd_auth_verifier_free(v);
    bcd_auth_options o = BCD_AUTH_OPTIONS_INIT;
    o.now = fake_now;
    o.issuer = ISS;
    ck_assert_int_eq(bcd_auth_verifier_new(&v, ctx, &o), BCD_OK);
    ck_assert_int_eq(bcd_auth_verifier_set_jwks_json(v, set), BCD_OK);
    cJSON_Delete(expect_ok(v, tok));
    char *noiss = fmt("{\"sub\":\"" SUB "\",\"aud\":\"authenticated\",\"exp\":%d}", T0 + 600);
    char *tok2 = mint(&k, "k1", noiss);
    expect_fail(v, tok2, BCD_EAUTH, "bad_issuer");
    free(tok2);
    free(noiss);
    bcd_auth_verifier_free(v);
    ck_assert_int_eq(bcd_ctx_set(ctx, "SUPABASE_URL", NULL), BCD_OK);

    /* audience */
    v = verifier(0, set, NULL);
    const char *bad_aud[] = {
        "{\"sub\":\"" SUB "\",\"aud\":\"anon\",\"exp\":1750000600}",
        "{\"sub\":\"" SUB "\",\"exp\":1750000600}",
        "{\"sub\":\"" SUB "\",\"aud\":[\"anon\",\"Authenticated\"],\"exp\":1750000600}",
        "{\"sub\":\"" SUB "\",\"aud\":[],\"exp\":1750000600}",
        "{\"sub\":\"" SUB "\",\"aud\":{\"authenticated\":true},\"exp\":1750000600}",
    };
    for (size_t i = 0; i < sizeof bad_aud / sizeof bad_aud[0]; i++) {
        tok2 = mint(&k, "k1", bad_aud[i]);
        expect_fail(v, tok2, BCD_EAUTH, "bad_audience");
        free(tok2);
    }
    /* subject */
    const char *bad_sub[] = {
        "{\"aud\":\"authenticated\",\"exp\":1750000600}",
        "{\"sub\":\"\",\"aud\":\"authenticated\",\"exp\":1750000600}",
        "{\"sub\":42,\"aud\":\"authenticated\",\"exp\":1750000600}",
        "{\"sub\":\"a\\nb\",\"aud\":\"authenticated\",\"exp\":1750000600}",
    };
    for (size_t i = 0; i < sizeof bad_sub / sizeof bad_sub[0]; i++) {
        tok2 = mint(&k, "k1", bad_sub[i]);
        expect_fail(v, tok2, BCD_EAUTH, "invalid_claims");
        free(tok2);
    }
    /* the legacy service_role API key shape: no sub, no aud */
    tok2 = mint(&k, "k1", "{\"iss\":\"supabase\",\"ref\":\"abcdefghijklmnopqrst\",\"role\":\"service_role\",\"iat\":1,\"exp\":1999999999}");
    expect_fail(v, tok2, BCD_EAUTH, "bad_audience");
    free(tok2);
    bcd_auth_verifier_free(v);

    /* a configured audience */
    o = (bcd_auth_options)BCD_AUTH_OPTIONS_INIT;
    o.now = fake_now;
    o.audience = "anon";
    ck_assert_int_eq(bcd_auth_verifier_new(&v, ctx, &o), BCD_OK);
    ck_assert_int_eq(bcd_auth_verifier_set_jwks_json(v, set), BCD_OK);
    expect_fail(v, tok, BCD_EAUTH, "bad_audience");
    tok2 = mint(&k, "k1", bad_aud[0]);
    cJSON_Delete(expect_ok(v, tok2));
    free(tok2);
    bcd_auth_verifier_free(v);

    free(tok);
    free(good);
    free(set);
    key_free(&k);
}
END_TEST

START_TEST(test_auth_verify_rejects_other_algorithms_and_confusion)
{
    struct key k;
    key_new(&k);
    char *set = jwks2(&k, "k1", NULL, NULL);
    bcd_auth_verifier *v = verifier(0, set, NULL);
    char *c = claims(T0 + 600, NULL);
    char *p = b64s(c);

    /* alg none, with and without a signature */
    char *h = b64s("{\"alg\":\"none\",\"kid\":\"k1\"}");
    char *tok = fmt("%s.%s.", h, p);
    expect_fail(v, tok, BCD_EAUTH, "alg_not_allowed");
    free(tok);
    free(h);

    /* HS256 with the public key's bytes as the HMAC secret (uncompressed point, then the
     * JWK text): the classic confusion; never accepted */
    unsigned char point[65];
    point[0] = 4;
    memcpy(point + 1, k.x, 32);
    memcpy(point + 33, k.y, 32);
    char *jwk_text = jwk(&k, "k1", NULL);
    const struct {
        const void *key;
        size_t len;
    } secrets[] = {{point, sizeof point}, {jwk_text, strlen(jwk_text)}, {set, strlen(set)}};
    h = b64s("{\"alg\":\"HS256\",\"kid\":\"k1\",\"typ\":\"JWT\"}");
    char *signing = fmt("%s.%s", h, p);
    for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++) {
        unsigned char mac[32];
        unsigned int mac_len = 0;
        ck_assert_ptr_nonnull(HMAC(EVP_sha256(), secrets[i].key, (int)secrets[i].len, (const unsigned char *)signing,
                                   strlen(signing), mac, &mac_len));
        char *m = b64(mac, mac_len);
        tok = fmt("%s.%s", signing, m);
        expect_fail(v, tok, BCD_EAUTH, "alg_not_allowed");
        free(m);
        free(tok);
    }
    free(signing);
    free(h);
    free(jwk_text);

    /* every other alg, even with a real ES256 signature under it */
    const char *algs[] = {"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384",
                          "PS512", "ES384", "ES512", "ES256K", "EdDSA", "es256", "ES256 ", "", "None"};
    for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++) {
        char *hdr = fmt("{\"alg\":\"%s\",\"kid\":\"k1\"}", algs[i]);
        tok = mint_raw(&k, hdr, c, 64);
        expect_fail(v, tok, BCD_EAUTH, "alg_not_allowed");
        free(tok);
        free(hdr);
    }
    /* alg missing or not a string */
    const char *hdrs[] = {"{\"kid\":\"k1\"}", "{\"alg\":null,\"kid\":\"k1\"}", "{\"alg\":[\"ES256\"],\"kid\":\"k1\"}"};
    for (size_t i = 0; i < sizeof hdrs / sizeof hdrs[0]; i++) {
        tok = mint_raw(&k, hdrs[i], c, 64);
        expect_fail(v, tok, BCD_EAUTH, "malformed_token");
        free(tok);
    }

    /* header members that would bring keys or extensions */
    struct key attacker;
    key_new(&attacker);
    char *ajwk = jwk(&attacker, "k1", NULL);
    char *hjwk = fmt("{\"alg\":\"ES256\",\"kid\":\"k1\",\"jwk\":%s}", ajwk);
    tok = mint_raw(&attacker, hjwk, c, 64);
    expect_fail(v, tok, BCD_EAUTH, "unsupported_header");
    free(tok);
    tok = mint_raw(&k, hjwk, c, 64); /* even signed by the right key */
    expect_fail(v, tok, BCD_EAUTH, "unsupported_header");
    free(tok);
    const char *ext[] = {
        "{\"alg\":\"ES256\",\"kid\":\"k1\",\"crit\":[\"exp\"],\"exp\":1}",
        "{\"alg\":\"ES256\",\"kid\":\"k1\",\"b64\":false,\"crit\":[\"b64\"]}",
        "{\"alg\":\"ES256\",\"kid\":\"k1\",\"jku\":\"https://evil.example/jwks.json\"}",
        "{\"alg\":\"ES256\",\"kid\":\"k1\",\"x5u\":\"https://evil.example/cert.pem\"}",
        "{\"alg\":\"ES256\",\"kid\":\"k1\",\"x5c\":[\"MIIB\"]}",
        "{\"alg\":\"ES256\",\"kid\":\"k1\",\"enc\":\"A128GCM\"}",
    };
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        tok = mint_raw(&k, ext[i], c, 64);
        expect_fail(v, tok, BCD_EAUTH, "unsupported_header");
        free(tok);
    }
    /* a token signed by another key under the right kid */
    tok = mint(&attacker, "k1", c);
    expect_fail(v, tok, BCD_EAUTH, "bad_signature");
    free(tok);

    free(hjwk);
    free(ajwk);
    key_free(&attacker);
    bcd_auth_verifier_free(v);
    free(p);
    free(c);
    free(set);
    key_free(&k);
}
END_TEST

START_TEST(test_auth_verify_rejects_malformed_tokens_and_bad_signatures)
{
    struct key k;
    key_new(&k);
    char *set = jwks2(&k, "k1", NULL, NULL);
    bcd_auth_verifier *v = verifier(0, set, NULL);
    char *c = claims(T0 + 600, NULL);
    const char *hdr = "{\"alg\":\"ES256\",\"kid\":\"k1\"}";
    char *good = mint_raw(&k, hdr, c, 64);
    cJSON_Delete(expect_ok(v, good));

    /* signature lengths other than 64, and DER instead of R || S */
    size_t lens[] = {0, 1, 32, 63, 65, 66, 72};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        char *tok = mint_raw(&k, hdr, c, lens[i]);
        expect_fail(v, tok, BCD_EAUTH, "bad_signature");
        ck_assert_ptr_nonnull(strstr(bcd_error_message(bcd_auth_verifier_last_error(v)), "takes 64"));
        free(tok);
    }
    {
        char *h = b64s(hdr), *p = b64s(c);
        char *signing = fmt("%s.%s", h, p);
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        unsigned char der[80];
        size_t der_len = sizeof der;
        ck_assert(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k.pkey) == 1);
        ck_assert(EVP_DigestSign(md, der, &der_len, (const unsigned char *)signing, strlen(signing)) == 1);
        EVP_MD_CTX_free(md);
        char *s = b64(der, der_len);
        char *tok = fmt("%s.%s", signing, s);
        expect_fail(v, tok, BCD_EAUTH, "bad_signature");
        free(tok);
        free(s);

        /* r or s out of range: 0, n, and n + r for a real r (when it fits in 32 bytes) */
        unsigned char sig[64];
        es256_sign(&k, signing, sig);
        static const unsigned char n[32] = {0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
                                            0xff, 0xff, 0xff, 0xff, 0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17,
                                            0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51};
        unsigned char bad[4][64];
        memcpy(bad[0], sig, 64), memset(bad[0], 0, 32);       /* r = 0 */
        memcpy(bad[1], sig, 64), memset(bad[1] + 32, 0, 32);  /* s = 0 */
        memcpy(bad[2], sig, 64), memcpy(bad[2], n, 32);       /* r = n */
        memcpy(bad[3], sig, 64), memcpy(bad[3] + 32, n, 32);  /* s = n */
        for (int i = 0; i < 4; i++) {
            ck_assert_int_eq(bcd__es256_verify(k.pkey, (const unsigned char *)signing, strlen(signing), bad[i], 64),
                             BCD__SIG_OUT_OF_RANGE);
            s = b64(bad[i], 64);
            tok = fmt("%s.%s", signing, s);
            expect_fail(v, tok, BCD_EAUTH, "bad_signature");
            free(tok);
            free(s);
        }
        /* s' = n - s is the other valid signature (ECDSA is malleable that way); s + n is
         * the same value written non-canonically and must not verify */
        BIGNUM *bn = BN_bin2bn(n, 32, NULL), *bs = BN_bin2bn(sig + 32, 32, NULL), *sum = BN_new();
        ck_assert(BN_add(sum, bs, bn) == 1);
        if (BN_num_bytes(sum) <= 32) {
            unsigned char nc[64];
            memcpy(nc, sig, 32);
            BN_bn2binpad(sum, nc + 32, 32);
            ck_assert_int_eq(bcd__es256_verify(k.pkey, (const unsigned char *)signing, strlen(signing), nc, 64),
                             BCD__SIG_OUT_OF_RANGE);
        }
        BN_free(bn);
        BN_free(bs);
        BN_free(sum);
        /* flipped bits */
        sig[10] ^= 1;
        ck_assert_int_eq(bcd__es256_verify(k.pkey, (const unsigned char *)signing, strlen(signing), sig, 64),
                         BCD__SIG_MISMATCH);
        free(signing);
        free(h);
        free(p);
    }

    /* trailing garbage, whitespace, padding, extra parts, JWE shape */
    const char *suffixes[] = {".", "..", ".x", " ", "\n", "=", "==", "A", "AA", "AAAA", "\t", "%00"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        char *tok = fmt("%s%s", good, suffixes[i]);
        char *out = NULL;
        ck_assert_int_eq(bcd_auth_verify(&out, v, tok), BCD_EAUTH);
        ck_assert_msg(strcmp(code(v), "malformed_token") == 0 || strcmp(code(v), "bad_signature") == 0, "%s: %s",
                      suffixes[i], code(v));
        assert_no_token_in_error(v, tok);
        free(tok);
    }
    const char *prefixes[] = {" ", "Bearer ", ".", "\n"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        char *tok = fmt("%s%s", prefixes[i], good);
        expect_fail(v, tok, BCD_EAUTH, "malformed_token");
        free(tok);
    }
    char *jwe = fmt("%s.%s", good, "AAAA.BBBB");
    expect_fail(v, jwe, BCD_EAUTH, "malformed_token");
    ck_assert_ptr_nonnull(strstr(bcd_error_message(bcd_auth_verifier_last_error(v)), "JWE"));
    free(jwe);
    const char *junk[] = {"", ".", "..", "...", "a.b", "a.b.c", "e30.e30.", "e30.e30", "eyJhbGciOiJFUzI1NiJ9..",
                          "\xc3\xa9.e30.AA"};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        char *out = NULL;
        ck_assert_int_eq(bcd_auth_verify(&out, v, junk[i]), BCD_EAUTH);
    }

    /* a modified payload, or header, keeps the signature from verifying */
    {
        char *c2 = claims(T0 + 6000, NULL);
        char *p2 = b64s(c2);
        const char *d1 = strchr(good, '.'), *d2 = strchr(d1 + 1, '.');
        char *tok = fmt("%.*s.%s%s", (int)(d1 - good), good, p2, d2);
        expect_fail(v, tok, BCD_EAUTH, "bad_signature");
        free(tok);
        free(p2);
        free(c2);
        char *h2 = b64s("{\"kid\":\"k1\",\"alg\":\"ES256\"}");
        tok = fmt("%s%s", h2, d1);
        expect_fail(v, tok, BCD_EAUTH, "bad_signature");
        free(tok);
        free(h2);
    }

    /* header and payload must be JSON objects, UTF-8, without duplicate members */
    const char *bad_headers[] = {"{\"alg\":\"ES256\",\"kid\":\"k1\",\"alg\":\"ES256\"}", "[\"ES256\"]", "\"ES256\"",
                                 "{\"alg\":\"ES256\",\"kid\":\"k1\"} x", "{\"alg\":\"ES256\",\"kid\":\"k1\"",
                                 "{\"alg\":\"ES256\",\"kid\":\"k1\xff\"}", "{\"alg\":\"ES256\",\"kid\":5}"};
    for (size_t i = 0; i < sizeof bad_headers / sizeof bad_headers[0]; i++) {
        char *tok = mint_raw(&k, bad_headers[i], c, 64);
        expect_fail(v, tok, BCD_EAUTH, "malformed_token");
        free(tok);
    }
    const char *bad_payloads[] = {"foo", "[]", "{\"sub\":\"a\",\"sub\":\"b\",\"aud\":\"authenticated\",\"exp\":1750000600}",
                                  "{\"exp\":1750000600,\"sub\":\"\xc0\xaf\"}"};
    for (size_t i = 0; i < sizeof bad_payloads / sizeof bad_payloads[0]; i++) {
        char *tok = mint_raw(&k, hdr, bad_payloads[i], 64);
        expect_fail(v, tok, BCD_EAUTH, "malformed_token");
        free(tok);
    }
    /* too long */
    {
        size_t n = BCD__AUTH_MAX_TOKEN + 10;
        char *big = malloc(n + 1);
        memset(big, 'A', n);
        big[n] = '\0';
        big[100] = '.';
        big[200] = '.';
        expect_fail(v, big, BCD_EAUTH, "malformed_token");
        free(big);
    }
    /* NULL arguments */
    char *out = NULL;
    ck_assert_int_eq(bcd_auth_verify(&out, v, NULL), BCD_EINVAL);
    ck_assert_int_eq(bcd_auth_verify(NULL, v, good), BCD_EINVAL);
    ck_assert_int_eq(bcd_auth_verify(&out, NULL, good), BCD_EINVAL);

    bcd_auth_verifier_free(v);
    free(good);
    free(c);
    free(set);
    key_free(&k);
}
END_TEST

START_TEST(test_auth_verify_refreshes_jwks_once_for_unknown_kid)
{
    struct key k1, k2, k3;
    key_new(&k1);
    key_new(&k2);
    key_new(&k3);
    bcd_auth_verifier *v = verifier(0, NULL, "https://abcdefghijklmnopqrst.supabase.co/");
    bcd__auth_verifier_set_fetcher(v, fake_fetch, NULL);
    char *c = claims(T0 + 7200 * 2, NULL);
    char *t1 = mint(&k1, "kid-1", c), *t2 = mint(&k2, "kid-2", c), *t3 = mint(&k3, "kid-3", c);

    serve(jwks2(&k1, "kid-1", NULL, NULL));
    cJSON_Delete(expect_ok(v, t1)); /* first use downloads */
    ck_assert_uint_eq(fetches, 1);
    ck_assert_str_eq(fetched_url, "https://abcdefghijklmnopqrst.supabase.co/auth/v1/.well-known/jwks.json");
    cJSON_Delete(expect_ok(v, t1));
    ck_assert_uint_eq(fetches, 1);

    /* rotation: the project publishes kid-2; a token naming it triggers one download */
    clock_now += 120;
    serve(jwks2(&k1, "kid-1", &k2, "kid-2"));
    cJSON_Delete(expect_ok(v, t2));
    ck_assert_uint_eq(fetches, 2);
    cJSON_Delete(expect_ok(v, t2));
    ck_assert_uint_eq(fetches, 2);

    /* another unknown kid within the minute: no download */
    clock_now += 30;
    expect_fail(v, t3, BCD_EAUTH, "unknown_kid");
    ck_assert_uint_eq(fetches, 2);
    expect_fail(v, t3, BCD_EAUTH, "unknown_kid");
    ck_assert_uint_eq(fetches, 2);
    ck_assert_ptr_nonnull(strstr(bcd_error_details_json(bcd_auth_verifier_last_error(v)), "kid-3"));
    /* after the minute: one more download, still unknown */
    clock_now += 31;
    expect_fail(v, t3, BCD_EAUTH, "unknown_kid");
    ck_assert_uint_eq(fetches, 3);
    expect_fail(v, t3, BCD_EAUTH, "unknown_kid");
    ck_assert_uint_eq(fetches, 3);
    cJSON_Delete(expect_ok(v, t1));
    ck_assert_uint_eq(bcd__auth_verifier_fetch_count(v), 3);

    /* a refresh that fails keeps the set */
    clock_now += 61;
    serve(NULL);
    expect_fail(v, t3, BCD_EAUTH, "unknown_kid");
    ck_assert_uint_eq(fetches, 4);
    cJSON_Delete(expect_ok(v, t2));

    /* a signature of the wrong size is refused before the kid could cause a download */
    clock_now += 61;
    serve(jwks2(&k1, "kid-1", NULL, NULL));
    char *short_sig = mint_raw(&k3, "{\"alg\":\"ES256\",\"kid\":\"kid-9\"}", c, 63);
    expect_fail(v, short_sig, BCD_EAUTH, "bad_signature");
    ck_assert_uint_eq(fetches, 4);
    free(short_sig);

    bcd_auth_verifier_free(v);
    free(t1);
    free(t2);
    free(t3);
    free(c);
    key_free(&k1);
    key_free(&k2);
    key_free(&k3);
}
END_TEST

START_TEST(test_auth_verify_downloads_jwks_again_after_an_hour)
{
    struct key k1, k2;
    key_new(&k1);
    key_new(&k2);
    bcd_auth_verifier *v = verifier(0, NULL, "https://abcdefghijklmnopqrst.supabase.co");
    bcd__auth_verifier_set_fetcher(v, fake_fetch, NULL);
    char *c = claims(T0 + 3 * 3600, NULL);
    char *t1 = mint(&k1, "kid-1", c), *t2 = mint(&k2, "kid-2", c);

    serve(jwks2(&k1, "kid-1", NULL, NULL));
    cJSON_Delete(expect_ok(v, t1));
    ck_assert_uint_eq(fetches, 1);
    clock_now = T0 + 3599;
    cJSON_Delete(expect_ok(v, t1));
    ck_assert_uint_eq(fetches, 1);
    /* an hour later the set is downloaded again: kid-1 was retired meanwhile */
    serve(jwks2(&k2, "kid-2", NULL, NULL));
    clock_now = T0 + 3600;
    expect_fail(v, t1, BCD_EAUTH, "unknown_kid");
    ck_assert_uint_eq(fetches, 2); /* the hourly download; no second one within the minute */
    cJSON_Delete(expect_ok(v, t2));
    ck_assert_uint_eq(fetches, 2);

    /* the next hourly download fails: the set in hand stays in use */
    serve(NULL);
    clock_now = T0 + 7200;
    cJSON_Delete(expect_ok(v, t2));
    ck_assert_uint_eq(fetches, 3);
    clock_now += 10;
    cJSON_Delete(expect_ok(v, t2));
    ck_assert_uint_eq(fetches, 3); /* not before the interval */
    clock_now += 60;
    cJSON_Delete(expect_ok(v, t2));
    ck_assert_uint_eq(fetches, 4);
    bcd_auth_verifier_free(v);

    /* a custom lifetime */
    bcd_auth_options o = BCD_AUTH_OPTIONS_INIT;
    o.now = fake_now;
    o.supabase_url = "http://127.0.0.1:54321";
    o.jwks_ttl_s = 600;
    ck_assert_int_eq(bcd_auth_verifier_new(&v, ctx, &o), BCD_OK);
    bcd__auth_verifier_set_fetcher(v, fake_fetch, NULL);
    serve(jwks2(&k2, "kid-2", NULL, NULL));
    fetches = 0;
    clock_now = T0;
    char *c2 = fmt("{\"iss\":\"http://127.0.0.1:54321/auth/v1\",\"sub\":\"" SUB "\",\"aud\":\"authenticated\",\"exp\":%d}",
                   T0 + 7200);
    char *t = mint(&k2, "kid-2", c2);
    cJSON_Delete(expect_ok(v, t));
    clock_now = T0 + 600;
    cJSON_Delete(expect_ok(v, t));
    ck_assert_uint_eq(fetches, 2);
    ck_assert_str_eq(fetched_url, "http://127.0.0.1:54321/auth/v1/.well-known/jwks.json");
    free(t);
    free(c2);
    bcd_auth_verifier_free(v);

    free(t1);
    free(t2);
    free(c);
    key_free(&k1);
    key_free(&k2);
}
END_TEST

START_TEST(test_auth_verify_reports_missing_key_source)
{
    struct key k;
    key_new(&k);
    char *c = claims(T0 + 600, NULL);
    char *t = mint(&k, "k1", c);

    /* neither a key set nor a project URL */
    bcd_auth_verifier *v = verifier(0, NULL, NULL);
    expect_fail(v, t, BCD_ESTATE, "jwks_not_configured");
    bcd_auth_verifier_free(v);
    /* a URL but no network layer (a build whose verifier has no fetcher) */
    v = verifier(0, NULL, "https://abcdefghijklmnopqrst.supabase.co");
    bcd__auth_verifier_set_fetcher(v, NULL, NULL);
    expect_fail(v, t, BCD_EUNSUPPORTED, "jwks_fetch_unsupported");
    expect_fail(v, t, BCD_EUNSUPPORTED, "jwks_fetch_unsupported");
    /* the server is down: the fetcher's error, then no retry within the minute */
    bcd__auth_verifier_set_fetcher(v, fake_fetch, NULL);
    expect_fail(v, t, BCD_ENET, "connection_failed");
    ck_assert_uint_eq(fetches, 1);
    expect_fail(v, t, BCD_ENET, "jwks_unavailable");
    ck_assert_uint_eq(fetches, 1);
    /* it answers garbage */
    clock_now += 60;
    serve(bcd__strdup("<html>502</html>"));
    expect_fail(v, t, BCD_EFORMAT, "jwks_invalid");
    ck_assert_uint_eq(fetches, 2);
    /* it recovers */
    clock_now += 60;
    serve(jwks2(&k, "k1", NULL, NULL));
    cJSON_Delete(expect_ok(v, t));
    ck_assert_uint_eq(fetches, 3);
    bcd_auth_verifier_free(v);

    free(t);
    free(c);
    key_free(&k);
}
END_TEST

START_TEST(test_auth_jwks_rules)
{
    struct key k1, k2;
    key_new(&k1);
    key_new(&k2);
    char *c = claims(T0 + 600, NULL);
    char *t1 = mint(&k1, "same", c), *t2 = mint(&k2, "other", c);

    /* duplicate kid: ambiguous, neither key is used; the rest of the set still works */
    char *a = jwk(&k1, "same", NULL), *b = jwk(&k2, "same", NULL), *d = jwk(&k2, "other", NULL);
    char *set = fmt("{\"keys\":[%s,%s,%s]}", a, b, d);
    bcd_auth_verifier *v = verifier(0, set, NULL);
    expect_fail(v, t1, BCD_EAUTH, "key_unusable");
    ck_assert_ptr_nonnull(strstr(bcd_error_message(bcd_auth_verifier_last_error(v)), "share this kid"));
    cJSON_Delete(expect_ok(v, t2));
    bcd_auth_verifier_free(v);
    free(set);

    /* mixed symmetric and asymmetric keys: only the EC key is usable */
    set = fmt("{\"keys\":[{\"kty\":\"oct\",\"kid\":\"same\",\"k\":\"c2VjcmV0\",\"alg\":\"HS256\"},%s,"
              "{\"kty\":\"RSA\",\"kid\":\"rsa\",\"n\":\"AQAB\",\"e\":\"AQAB\"},{\"kid\":\"junk\"},7]}",
              d);
    v = verifier(0, set, NULL);
    expect_fail(v, t1, BCD_EAUTH, "key_unusable");
    cJSON_Delete(expect_ok(v, t2));
    bcd_auth_verifier_free(v);
    free(set);

    /* key attributes */
    const char *extras[] = {",\"alg\":\"ES384\"", ",\"alg\":\"HS256\"", ",\"use\":\"enc\"",
                            ",\"key_ops\":[\"sign\"]", ",\"key_ops\":\"verify\"", ",\"key_ops\":[]",
                            ",\"d\":\"yy49oPcINGK2ps0LmtxpB6UTEOiITghHBif6wDqmJ3c\""};
    for (size_t i = 0; i < sizeof extras / sizeof extras[0]; i++) {
        char *j = jwk(&k1, "same", extras[i]);
        set = fmt("{\"keys\":[%s]}", j);
        v = verifier(0, set, NULL);
        expect_fail(v, t1, BCD_EAUTH, "key_unusable");
        bcd_auth_verifier_free(v);
        free(set);
        free(j);
    }
    const char *fine[] = {",\"alg\":\"ES256\"", ",\"use\":\"sig\"", ",\"key_ops\":[\"sign\",\"verify\"]",
                          ",\"x5t\":\"ignored\",\"ext\":true"};
    for (size_t i = 0; i < sizeof fine / sizeof fine[0]; i++) {
        char *j = jwk(&k1, "same", fine[i]);
        set = fmt("{\"keys\":[%s]}", j);
        v = verifier(0, set, NULL);
        cJSON_Delete(expect_ok(v, t1));
        bcd_auth_verifier_free(v);
        free(set);
        free(j);
    }
    /* coordinates: wrong length, padding, off the curve, x + p */
    {
        char *x = b64(k1.x, 32), *y = b64(k1.y, 32), *y31 = b64(k1.y + 1, 31);
        unsigned char yy[32];
        memcpy(yy, k1.y, 32);
        yy[31] ^= 1;
        char *yoff = b64(yy, 32);
        const char *bad[][2] = {{x, y31}, {x, yoff}, {x, "AAAA"}};
        for (size_t i = 0; i < 3; i++) {
            set = fmt("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"same\",\"x\":\"%s\",\"y\":\"%s\"}]}",
                      bad[i][0], bad[i][1]);
            v = verifier(0, set, NULL);
            expect_fail(v, t1, BCD_EAUTH, "key_unusable");
            bcd_auth_verifier_free(v);
            free(set);
        }
        set = fmt("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"same\",\"x\":\"%s=\",\"y\":\"%s\"}]}", x, y);
        v = verifier(0, set, NULL);
        expect_fail(v, t1, BCD_EAUTH, "key_unusable");
        bcd_auth_verifier_free(v);
        free(set);
        free(x);
        free(y);
        free(y31);
        free(yoff);

        /* x, y >= p are refused even where OpenSSL would reduce them */
        static const unsigned char p[32] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0,
                                            0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                            0xff, 0xff, 0xff};
        EVP_PKEY *pk = NULL;
        ck_assert(!bcd__p256_key_from_xy(&pk, p, k1.y));
        ck_assert(!bcd__p256_key_from_xy(&pk, k1.x, p));
        BIGNUM *bp = BN_bin2bn(p, 32, NULL), *bx = BN_bin2bn(k1.x, 32, NULL);
        ck_assert(BN_add(bx, bx, bp) == 1);
        if (BN_num_bytes(bx) <= 32) {
            unsigned char xp[32];
            BN_bn2binpad(bx, xp, 32);
            ck_assert(!bcd__p256_key_from_xy(&pk, xp, k1.y));
        }
        BN_free(bp);
        BN_free(bx);
        unsigned char zero[32] = {0};
        ck_assert(!bcd__p256_key_from_xy(&pk, zero, zero));
        ck_assert(bcd__p256_key_from_xy(&pk, k1.x, k1.y));
        EVP_PKEY_free(pk);
    }

    /* a token without kid: only with exactly one usable key */
    char *nokid = mint_raw(&k1, "{\"alg\":\"ES256\"}", c, 64);
    set = jwks2(&k1, "a", NULL, NULL);
    v = verifier(0, set, NULL);
    cJSON_Delete(expect_ok(v, nokid));
    bcd_auth_verifier_free(v);
    free(set);
    set = jwks2(&k1, "a", &k2, "b");
    v = verifier(0, set, NULL);
    expect_fail(v, nokid, BCD_EAUTH, "unknown_kid");
    /* a kid the pinned set lacks: no download */
    expect_fail(v, t2, BCD_EAUTH, "unknown_kid");
    ck_assert_uint_eq(bcd__auth_verifier_fetch_count(v), 0);

    /* malformed sets are refused and the previous set stays */
    const char *bad_sets[] = {"", "[]", "{}", "{\"keys\":{}}", "{\"keys\":[]} x", "not json", "{\"keys\":[]"};
    for (size_t i = 0; i < sizeof bad_sets / sizeof bad_sets[0]; i++) {
        ck_assert_int_eq(bcd_auth_verifier_set_jwks_json(v, bad_sets[i]), BCD_EFORMAT);
        ck_assert_str_eq(code(v), "jwks_invalid");
    }
    char *many = bcd__strdup("{\"keys\":[");
    for (int i = 0; i < 101; i++) {
        char *next = fmt("%s%s{}", many, i ? "," : "");
        free(many);
        many = next;
    }
    char *next = fmt("%s]}", many);
    free(many);
    ck_assert_int_eq(bcd_auth_verifier_set_jwks_json(v, next), BCD_ELIMIT);
    free(next);
    char *huge = malloc(BCD__AUTH_MAX_JWKS + 2);
    memset(huge, ' ', BCD__AUTH_MAX_JWKS + 1);
    huge[BCD__AUTH_MAX_JWKS + 1] = '\0';
    ck_assert_int_eq(bcd_auth_verifier_set_jwks_json(v, huge), BCD_ELIMIT);
    ck_assert_str_eq(code(v), "jwks_too_large");
    free(huge);
    char *ta = mint_raw(&k1, "{\"alg\":\"ES256\",\"kid\":\"a\"}", c, 64);
    cJSON_Delete(expect_ok(v, ta));
    free(ta);
    ck_assert_int_eq(bcd_auth_verifier_set_jwks_json(v, "{\"keys\":[]}"), BCD_OK);
    expect_fail(v, t1, BCD_EAUTH, "unknown_kid");
    bcd_auth_verifier_free(v);
    free(set);

    /* from a file */
    char path[] = "/tmp/bcd-jwks-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    set = jwks2(&k2, "other", NULL, NULL);
    FILE *f = fdopen(fd, "w");
    fputs(set, f);
    fclose(f);
    v = verifier(0, NULL, NULL);
    ck_assert_int_eq(bcd_auth_verifier_load_jwks_file(v, path), BCD_OK);
    cJSON_Delete(expect_ok(v, t2));
    ck_assert_int_eq(bcd_auth_verifier_load_jwks_file(v, "/nonexistent/jwks.json"), BCD_ENOTFOUND);
    ck_assert_ptr_nonnull(bcd_auth_verifier_last_error(v));
    ck_assert_ptr_null(bcd_ctx_last_error(ctx));
    cJSON_Delete(expect_ok(v, t2)); /* the loaded set stayed */
    bcd_auth_verifier_free(v);
    unlink(path);
    free(set);

    free(nokid);
    free(a);
    free(b);
    free(d);
    free(t1);
    free(t2);
    free(c);
    key_free(&k1);
    key_free(&k2);
}
END_TEST

START_TEST(test_auth_options)
{
    bcd_auth_options o;
    ck_assert_int_eq(bcd_auth_options_init(&o, BCD_AUTH_OPTIONS_VERSION), BCD_OK);
    ck_assert_int_eq(o.leeway_s, -1);
    ck_assert_ptr_null(o.issuer);
    ck_assert_int_eq(bcd_auth_options_init(&o, 99), BCD_EINVAL);
    ck_assert_int_eq(bcd_auth_options_init(NULL, BCD_AUTH_OPTIONS_VERSION), BCD_EINVAL);

    bcd_auth_verifier *v = (bcd_auth_verifier *)0x1;
    o.version = 2;
    ck_assert_int_eq(bcd_auth_verifier_new(&v, ctx, &o), BCD_EINVAL);
    ck_assert_str_eq(bcd_error_code(bcd_ctx_last_error(ctx)), "invalid_options");
    ck_assert_ptr_eq(v, (bcd_auth_verifier *)0x1);
    bcd_auth_options_init(&o, BCD_AUTH_OPTIONS_VERSION);
    o.leeway_s = 301;
    ck_assert_int_eq(bcd_auth_verifier_new(&v, ctx, &o), BCD_EINVAL);
    o.leeway_s = 300;
    o.supabase_url = "ftp://x";
    ck_assert_int_eq(bcd_auth_verifier_new(&v, ctx, &o), BCD_EINVAL);
    ck_assert_int_eq(bcd_auth_verifier_new(NULL, ctx, NULL), BCD_EINVAL);
    ck_assert_int_eq(bcd_auth_verifier_new(&v, NULL, NULL), BCD_EINVAL);
    ck_assert_int_eq(bcd_auth_verifier_new(&v, ctx, NULL), BCD_OK);
    ck_assert_ptr_null(bcd_ctx_last_error(ctx));
    ck_assert_ptr_null(bcd_auth_verifier_last_error(v));
    ck_assert_int_eq(bcd_auth_verifier_set_jwks_json(v, NULL), BCD_EINVAL);
    ck_assert_int_eq(bcd_auth_verifier_set_jwks_json(NULL, "{}"), BCD_EINVAL);
    ck_assert_int_eq(bcd_auth_verifier_load_jwks_file(v, NULL), BCD_EINVAL);
    ck_assert_ptr_null(bcd_auth_verifier_last_error(NULL));
    bcd_auth_verifier_free(v);
    bcd_auth_verifier_free(NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("auth");
    TCase *tc = tcase_create("auth");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_b64url_decode_is_strict);
    tcase_add_test(tc, test_wycheproof_ecdsa_p256_sha256_p1363);
    tcase_add_test(tc, test_wycheproof_json_web_signature);
    tcase_add_test(tc, test_wycheproof_json_web_crypto);
    tcase_add_test(tc, test_wycheproof_json_web_key);
    tcase_add_test(tc, test_auth_verify_accepts_supabase_token_and_returns_caller);
    tcase_add_test(tc, test_auth_verify_checks_exp_nbf_iat_with_leeway);
    tcase_add_test(tc, test_auth_verify_checks_issuer_audience_subject);
    tcase_add_test(tc, test_auth_verify_rejects_other_algorithms_and_confusion);
    tcase_add_test(tc, test_auth_verify_rejects_malformed_tokens_and_bad_signatures);
    tcase_add_test(tc, test_auth_verify_refreshes_jwks_once_for_unknown_kid);
    tcase_add_test(tc, test_auth_verify_downloads_jwks_again_after_an_hour);
    tcase_add_test(tc, test_auth_verify_reports_missing_key_source);
    tcase_add_test(tc, test_auth_jwks_rules);
    tcase_add_test(tc, test_auth_options);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
