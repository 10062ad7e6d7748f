/* JWK Sets (the JWKS document of the project's auth server): bcd__jwks_parse and key
 * lookup, then the same document as a verifier downloads it (through the fetcher seam),
 * used to verify a token signed by the harness key with kid "fuzz". */
#include <bcd.h>

#include "fuzz.h"
#include "fuzz_key.h"

static bcd_ctx *ctx;
static char *token;
static const uint8_t *doc;
static size_t doc_len;

static bcd_status fetch(void *user, bcd_ctx *c, const char *url, size_t max_len, char **out_body,
                        size_t *out_len, bcd_error *err)
{
    (void)user;
    (void)c;
    (void)url;
    if (doc_len > max_len)
        return bcd__fail(err, BCD_ELIMIT, "response_too_large", "too large");
    if (!(*out_body = fuzz_strndup(doc, doc_len)))
        return bcd__fail(err, BCD_ENOMEM, "out_of_memory", "out of memory");
    *out_len = doc_len;
    return BCD_OK;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    static const char hdr[] = "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"fuzz\"}";
    static const char claims[] = "{\"sub\":\"u1\",\"aud\":\"authenticated\",\"iss\":\"" FUZZ_URL "/auth/v1\","
                                 "\"exp\":1750003600,\"iat\":1749999000}";
    EVP_PKEY *key = fuzz_key();
    if (bcd_ctx_new(&ctx) != BCD_OK || !key)
        abort();
    token = fuzz_token(key, (const unsigned char *)hdr, strlen(hdr), (const unsigned char *)claims, strlen(claims),
                       false);
    EVP_PKEY_free(key);
    if (!token)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bcd_error err = {0};
    bcd__jwks *set = NULL;
    bcd_status st = bcd__jwks_parse(&set, (const char *)data, size, &err);
    if (st == BCD_OK) {
        size_t count = bcd__jwks_count(set), usable = bcd__jwks_usable(set);
        FUZZ_CHECK(usable <= count);
        EVP_PKEY *k = NULL;
        const char *why = NULL;
        enum bcd__jwks_lookup r = bcd__jwks_find(set, NULL, &k, &why);
        FUZZ_CHECK(r == BCD__KEY_FOUND ? k != NULL && usable == 1 : usable != 1);
        r = bcd__jwks_find(set, "fuzz", &k, &why);
        FUZZ_CHECK(r != BCD__KEY_FOUND || (k && usable >= 1));
        FUZZ_CHECK(r != BCD__KEY_UNUSABLE || why);
        bcd__jwks_free(set);
    } else {
        FUZZ_CHECK(!set && err.code[0]);
        FUZZ_CHECK(st == BCD_EFORMAT || st == BCD_ELIMIT || st == BCD_ENOMEM);
    }
    bcd__error_clear(&err);

    /* the document as downloaded by a verifier */
    bcd_auth_options o;
    bcd_auth_verifier *v = NULL;
    bcd_auth_options_init(&o, BCD_AUTH_OPTIONS_VERSION);
    o.supabase_url = FUZZ_URL;
    o.now = fuzz_now;
    if (bcd_auth_verifier_new(&v, ctx, &o) != BCD_OK)
        return 0;
    bcd__auth_verifier_set_fetcher(v, fetch, NULL);
    doc = data;
    doc_len = size;
    char *out = NULL;
    bcd_status vs = bcd_auth_verify(&out, v, token);
    if (vs == BCD_OK) {
        FUZZ_CHECK(st == BCD_OK && out);
        bcd_free(out);
    } else {
        FUZZ_CHECK(!out);
    }
    bcd_auth_verifier_free(v);
    return 0;
}
