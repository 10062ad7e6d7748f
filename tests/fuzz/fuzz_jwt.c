/* bcd_auth_verify on JWTs: headers and claims as the fuzzer writes them, signed with the
 * harness key (so that claims checking is reached), or whole tokens as raw text.
 * Input: byte 0 picks the mode:
 *   0 mod 4: the rest is the token text itself;
 *   1, 2 mod 4: header JSON, a NUL byte, claims JSON; signed (2: signature corrupted);
 *   3 mod 4: as 1, with the verifier flag BCD_AUTH_SIGNATURE_ONLY. */
#include <bcd.h>
#include <cjson/cJSON.h>

#include "fuzz.h"
#include "fuzz_key.h"

static bcd_ctx *ctx;
static bcd_auth_verifier *verifier, *sig_only;
static EVP_PKEY *key;

static bcd_auth_verifier *make_verifier(unsigned flags)
{
    bcd_auth_options o;
    bcd_auth_verifier *v = NULL;
    if (bcd_auth_options_init(&o, BCD_AUTH_OPTIONS_VERSION) != BCD_OK)
        abort();
    o.supabase_url = FUZZ_URL;
    o.now = fuzz_now;
    o.flags = flags;
    if (bcd_auth_verifier_new(&v, ctx, &o) != BCD_OK || bcd_auth_verifier_set_jwks_json(v, fuzz_jwks_json) != BCD_OK)
        abort();
    return v;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (bcd_ctx_new(&ctx) != BCD_OK || !(key = fuzz_key()))
        abort();
    verifier = make_verifier(0);
    sig_only = make_verifier(BCD_AUTH_SIGNATURE_ONLY);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int mode = data[0] % 4;
    data++;
    size--;
    char *token;
    if (mode == 0) {
        token = fuzz_strndup(data, size);
    } else {
        const uint8_t *nul = memchr(data, 0, size);
        size_t hlen = nul ? (size_t)(nul - data) : size;
        const uint8_t *claims = nul ? nul + 1 : (const uint8_t *)"";
        size_t clen = nul ? size - hlen - 1 : 0;
        token = fuzz_token(key, data, hlen, claims, clen, mode == 2);
    }
    if (!token)
        return 0;
    bcd_auth_verifier *v = mode == 3 ? sig_only : verifier;
    char *out = NULL;
    bcd_status st = bcd_auth_verify(&out, v, token);
    const bcd_error *e = bcd_auth_verifier_last_error(v);
    if (st == BCD_OK) {
        FUZZ_CHECK(mode == 1 || mode == 3 || (mode == 0 && out));
        FUZZ_CHECK(out);
        cJSON *doc = cJSON_Parse(out);
        FUZZ_CHECK(cJSON_IsObject(doc));
        if (mode != 3) /* claims were checked: the subject is a non-empty string */
            FUZZ_CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(doc, "user_id")));
        cJSON_Delete(doc);
        bcd_free(out);
    } else {
        FUZZ_CHECK(mode != 2 || st == BCD_EAUTH); /* a corrupted signature never verifies */
        FUZZ_CHECK(out == NULL && e && e->code[0]);
        FUZZ_CHECK(st == BCD_EAUTH || st == BCD_ENOMEM);
    }
    free(token);
    return 0;
}
