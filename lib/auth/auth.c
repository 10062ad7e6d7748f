/* The access-token verifier: compact JWS parsing, ES256 against the key set, claims,
 * and the key-set cache. The token is never copied into errors or logs. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "auth_internal.h"
#include "net/net.h"

#define DEFAULT_LEEWAY_S 30
#define MAX_LEEWAY_S 300
#define DEFAULT_TTL_S 3600u
#define DEFAULT_INTERVAL_S 60u
#define DEFAULT_AUDIENCE "authenticated"
#define JWKS_PATH "/auth/v1/.well-known/jwks.json"
#define ISSUER_PATH "/auth/v1"
#define MAX_SUB_LEN 128

struct bcd_auth_verifier {
    bcd_ctx *ctx; /* borrowed */
    bcd_error err;
    bool has_err;

    char *jwks_url; /* NULL: no project URL */
    char *issuer;   /* NULL: iss not checked */
    char *audience;
    int leeway_s;
    unsigned ttl_s, interval_s, flags;
    bcd_auth_now_fn now;
    void *now_user;

    bcd__jwks *jwks;
    bool pinned;         /* set explicitly: never downloaded */
    int64_t fetched_at;  /* when jwks was downloaded */
    bool attempted;      /* a download was tried */
    int64_t last_attempt;

    bcd__auth_fetch_fn fetch; /* NULL until the net layer provides one */
    void *fetch_user;
    unsigned fetch_count;
};

static bcd_status fail(bcd_auth_verifier *v, bcd_status st, const char *code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static bcd_status fail(bcd_auth_verifier *v, bcd_status st, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bcd__vfail(&v->err, st, code, fmt, ap);
    va_end(ap);
    v->has_err = true;
    return st;
}

static void clear(bcd_auth_verifier *v)
{
    if (v->has_err) {
        bcd__error_clear(&v->err);
        v->has_err = false;
    }
}

/* Attach {"name": value} as details; value is escaped by cJSON, cut to 128 bytes. */
static void detail(bcd_auth_verifier *v, const char *name, const char *value)
{
    char cut[129];
    int n = snprintf(cut, sizeof cut, "%s", value ? value : "");
    if (n >= (int)sizeof cut) {
        /* do not leave half a UTF-8 sequence at the cut */
        size_t end = sizeof cut - 1;
        while (end > 0 && ((unsigned char)cut[end - 1] & 0xc0) == 0x80)
            end--;
        if (end > 0 && (unsigned char)cut[end - 1] >= 0xc0)
            end--;
        cut[end] = '\0';
    }
    cJSON *d = cJSON_CreateObject();
    if (d && cJSON_AddStringToObject(d, name, cut)) {
        char *s = cJSON_PrintUnformatted(d);
        bcd__error_set_details(&v->err, s);
        free(s);
    }
    cJSON_Delete(d);
}

/* A header value for a message: printable ASCII only, at most 32 characters. */
static const char *printable(char dst[40], const char *src)
{
    size_t o = 0;
    for (; src && *src && o < 32; src++)
        dst[o++] = (*src >= 0x20 && *src < 0x7f && *src != '"' && *src != '\\') ? *src : '?';
    if (src && *src)
        dst[o++] = '.', dst[o++] = '.', dst[o++] = '.';
    dst[o] = '\0';
    return dst;
}

static int64_t now_s(const bcd_auth_verifier *v)
{
    return v->now ? v->now(v->now_user) : (int64_t)time(NULL);
}

bcd_status bcd_auth_options_init(bcd_auth_options *opts, unsigned int version)
{
    if (!opts || version != BCD_AUTH_OPTIONS_VERSION)
        return BCD_EINVAL;
    const bcd_auth_options init = BCD_AUTH_OPTIONS_INIT;
    *opts = init;
    return BCD_OK;
}

/* "https://x.supabase.co/" + suffix, trailing slashes of url dropped. */
static char *url_join(const char *url, const char *suffix)
{
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/')
        n--;
    size_t m = strlen(suffix);
    char *s = malloc(n + m + 1);
    if (s) {
        memcpy(s, url, n);
        memcpy(s + n, suffix, m + 1);
    }
    return s;
}

bcd_status bcd_auth_verifier_new(bcd_auth_verifier **out, bcd_ctx *ctx, const bcd_auth_options *opts)
{
    if (!out || !ctx)
        return BCD_EINVAL;
    bcd__ctx_clear(ctx);
    const bcd_auth_options dflt = BCD_AUTH_OPTIONS_INIT;
    if (!opts)
        opts = &dflt;
    if (opts->version != BCD_AUTH_OPTIONS_VERSION)
        return bcd__ctx_fail(ctx, BCD_EINVAL, "invalid_options", "unknown bcd_auth_options version %u",
                             opts->version);
    if (opts->leeway_s > MAX_LEEWAY_S)
        return bcd__ctx_fail(ctx, BCD_EINVAL, "invalid_options", "leeway %d s is over the limit of %d s",
                             opts->leeway_s, MAX_LEEWAY_S);
    const char *url = opts->supabase_url ? opts->supabase_url : bcd__cfg(ctx, BCD__CFG_SUPABASE_URL);
    if (url && strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0)
        return bcd__ctx_fail(ctx, BCD_EINVAL, "invalid_options", "the project URL must start with http:// or https://");

    bcd_auth_verifier *v = calloc(1, sizeof *v);
    if (!v)
        return bcd__ctx_fail(ctx, BCD_ENOMEM, "out_of_memory", "out of memory");
    v->ctx = ctx;
    v->leeway_s = opts->leeway_s < 0 ? DEFAULT_LEEWAY_S : opts->leeway_s;
    v->ttl_s = opts->jwks_ttl_s ? opts->jwks_ttl_s : DEFAULT_TTL_S;
    v->interval_s = opts->refresh_interval_s ? opts->refresh_interval_s : DEFAULT_INTERVAL_S;
    v->flags = opts->flags;
    v->now = opts->now;
    v->now_user = opts->now_user;
    v->audience = bcd__strdup(opts->audience ? opts->audience : DEFAULT_AUDIENCE);
    bool ok = v->audience != NULL;
    if (ok && url) {
        v->jwks_url = url_join(url, JWKS_PATH);
        ok = v->jwks_url != NULL;
    }
    if (ok && (opts->issuer || url)) {
        v->issuer = opts->issuer ? bcd__strdup(opts->issuer) : url_join(url, ISSUER_PATH);
        ok = v->issuer != NULL;
    }
    /* Key sets are downloaded with the net layer's libcurl client (tests replace it). */
    v->fetch = bcd__net_fetch;
    v->fetch_user = NULL;
    if (!ok) {
        bcd_auth_verifier_free(v);
        return bcd__ctx_fail(ctx, BCD_ENOMEM, "out_of_memory", "out of memory");
    }
    *out = v;
    return BCD_OK;
}

void bcd_auth_verifier_free(bcd_auth_verifier *v)
{
    if (!v)
        return;
    bcd__error_clear(&v->err);
    bcd__jwks_free(v->jwks);
    free(v->jwks_url);
    free(v->issuer);
    free(v->audience);
    free(v);
}

const bcd_error *bcd_auth_verifier_last_error(const bcd_auth_verifier *v)
{
    return v && v->has_err ? &v->err : NULL;
}

void bcd__auth_verifier_set_fetcher(bcd_auth_verifier *v, bcd__auth_fetch_fn fn, void *user)
{
    v->fetch = fn;
    v->fetch_user = user;
}

unsigned bcd__auth_verifier_fetch_count(const bcd_auth_verifier *v)
{
    return v->fetch_count;
}

static bcd_status set_jwks(bcd_auth_verifier *v, const char *json, size_t len)
{
    bcd__jwks *set = NULL;
    bcd_status st = bcd__jwks_parse(&set, json, len, &v->err);
    if (st != BCD_OK) {
        v->has_err = true;
        return st;
    }
    bcd__jwks_free(v->jwks);
    v->jwks = set;
    v->pinned = true;
    return BCD_OK;
}

bcd_status bcd_auth_verifier_set_jwks_json(bcd_auth_verifier *v, const char *json)
{
    if (!v)
        return BCD_EINVAL;
    clear(v);
    if (!json)
        return fail(v, BCD_EINVAL, "invalid_argument", "no key set given");
    return set_jwks(v, json, strlen(json));
}

bcd_status bcd_auth_verifier_load_jwks_file(bcd_auth_verifier *v, const char *path)
{
    if (!v)
        return BCD_EINVAL;
    clear(v);
    if (!path)
        return fail(v, BCD_EINVAL, "invalid_argument", "no key set file given");
    unsigned char *buf = NULL;
    size_t len = 0;
    bcd_status st = bcd__read_file(v->ctx, path, BCD__AUTH_MAX_JWKS, &buf, &len);
    if (st != BCD_OK) {
        bcd__error_copy(&v->err, bcd_ctx_last_error(v->ctx));
        if (v->err.status == BCD_ELIMIT)
            snprintf(v->err.code, sizeof v->err.code, "jwks_too_large");
        v->has_err = true;
        bcd__ctx_clear(v->ctx);
        return st;
    }
    st = set_jwks(v, (const char *)buf, len);
    free(buf);
    return st;
}

/* Download the key set now. On failure the previous set (if any) stays and the detail
 * is on v->err. */
static bcd_status download(bcd_auth_verifier *v, int64_t now)
{
    if (!v->jwks_url)
        return fail(v, BCD_ESTATE, "jwks_not_configured",
                    "no key set: set SUPABASE_URL (or the project URL option) or load a JWKS file");
    if (!v->fetch)
        return fail(v, BCD_EUNSUPPORTED, "jwks_fetch_unsupported",
                    "this build cannot download the key set (no network layer yet); load a JWKS file instead");
    v->attempted = true;
    v->last_attempt = now;
    v->fetch_count++;
    char *body = NULL;
    size_t len = 0;
    bcd__error_clear(&v->err);
    bcd_status st = v->fetch(v->fetch_user, v->ctx, v->jwks_url, BCD__AUTH_MAX_JWKS, &body, &len, &v->err);
    if (st != BCD_OK) {
        free(body);
        if (v->err.status == BCD_OK)
            bcd__fail(&v->err, st, "jwks_unavailable", "downloading the key set failed: %s", bcd_strerror(st));
        v->has_err = true;
        return st;
    }
    if (!body)
        return fail(v, BCD_ENET, "jwks_unavailable", "the key set download returned no body");
    bcd__jwks *set = NULL;
    st = bcd__jwks_parse(&set, body, len, &v->err);
    free(body);
    if (st != BCD_OK) {
        v->has_err = true;
        return st;
    }
    bcd__jwks_free(v->jwks);
    v->jwks = set;
    v->fetched_at = now;
    bcd__log(v->ctx, BCD_LOG_INFO, "auth: key set downloaded, %zu keys (%zu usable)", bcd__jwks_count(set),
             bcd__jwks_usable(set));
    return BCD_OK;
}

static bool may_download(const bcd_auth_verifier *v, int64_t now)
{
    return !v->attempted || now - v->last_attempt >= (int64_t)v->interval_s || now < v->last_attempt;
}

/* Make sure a key set is at hand: download one if there is none or it is too old. */
static bcd_status ensure_jwks(bcd_auth_verifier *v, int64_t now)
{
    if (v->pinned)
        return BCD_OK;
    if (!v->jwks) {
        if (v->jwks_url && v->fetch && !may_download(v, now))
            return fail(v, BCD_ENET, "jwks_unavailable",
                        "the key set could not be downloaded; next try in at most %u s", v->interval_s);
        return download(v, now);
    }
    if (now - v->fetched_at >= (int64_t)v->ttl_s && may_download(v, now)) {
        if (download(v, now) != BCD_OK) {
            /* Keep verifying with the set we have; the next try waits for the interval. */
            bcd__log(v->ctx, BCD_LOG_WARN, "auth: key set refresh failed (%s), keeping the previous set",
                     v->err.code);
            clear(v);
        }
    }
    return BCD_OK;
}

/* ---- token structure ---- */

/* Well-formed UTF-8 (no overlongs, surrogates or values over U+10FFFF). */
static bool utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t k;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            k = 1, cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            k = 2, cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 3, cp = c & 0x07;
        } else {
            return false;
        }
        if (i + k >= n)
            return false;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        if ((k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += k + 1;
    }
    return true;
}

/* Parse decoded JSON text that must be one object with unique member names. */
static cJSON *parse_object(const unsigned char *text, size_t len)
{
    if (memchr(text, '\0', len) || !utf8_valid(text, len))
        return NULL;
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts((const char *)text, len, &end, 0);
    if (!doc)
        return NULL;
    while (end && end < (const char *)text + len && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
        end++;
    if (!cJSON_IsObject(doc) || end != (const char *)text + len) {
        cJSON_Delete(doc);
        return NULL;
    }
    /* Duplicate names would let two parsers read two different tokens. */
    for (const cJSON *a = doc->child; a; a = a->next)
        for (const cJSON *b = a->next; b; b = b->next)
            if (strcmp(a->string, b->string) == 0) {
                cJSON_Delete(doc);
                return NULL;
            }
    return doc;
}

struct token {
    const char *text;       /* borrowed */
    size_t signed_len;      /* length of "header.payload" */
    unsigned char *header;  /* decoded */
    size_t header_len;
    unsigned char *payload; /* decoded */
    size_t payload_len;
    unsigned char *sig;     /* decoded */
    size_t sig_len;
    cJSON *hdr;             /* parsed header */
    cJSON *claims;          /* parsed payload, after the signature checked out */
};

static void token_free(struct token *t)
{
    free(t->header);
    free(t->payload);
    free(t->sig);
    cJSON_Delete(t->hdr);
    cJSON_Delete(t->claims);
}

static bcd_status split_token(bcd_auth_verifier *v, struct token *t, const char *token)
{
    size_t len = strnlen(token, BCD__AUTH_MAX_TOKEN + 1);
    if (len > BCD__AUTH_MAX_TOKEN)
        return fail(v, BCD_EAUTH, "malformed_token", "token is longer than %u bytes", BCD__AUTH_MAX_TOKEN);
    if (len == 0)
        return fail(v, BCD_EAUTH, "malformed_token", "token is empty");
    size_t dots[4], ndots = 0;
    for (size_t i = 0; i < len; i++) {
        char c = token[i];
        if (c == '.') {
            if (ndots < 4)
                dots[ndots] = i;
            ndots++;
        } else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                     c == '_')) {
            return fail(v, BCD_EAUTH, "malformed_token",
                        "token holds a character outside base64url and '.' (at offset %zu)", i);
        }
    }
    if (ndots == 4)
        return fail(v, BCD_EAUTH, "malformed_token", "encrypted tokens (JWE, five parts) are not accepted");
    if (ndots != 2)
        return fail(v, BCD_EAUTH, "malformed_token", "token has %zu parts, a signed JWT has 3", ndots + 1);
    t->text = token;
    t->signed_len = dots[1];
    bool oom = false;
    if (!bcd__b64url_decode(token, dots[0], &t->header, &t->header_len, &oom) ||
        !bcd__b64url_decode(token + dots[0] + 1, dots[1] - dots[0] - 1, &t->payload, &t->payload_len, &oom) ||
        !bcd__b64url_decode(token + dots[1] + 1, len - dots[1] - 1, &t->sig, &t->sig_len, &oom)) {
        if (oom)
            return fail(v, BCD_ENOMEM, "out_of_memory", "out of memory");
        return fail(v, BCD_EAUTH, "malformed_token", "a token part is not canonical unpadded base64url");
    }
    t->hdr = parse_object(t->header, t->header_len);
    if (!t->hdr)
        return fail(v, BCD_EAUTH, "malformed_token", "token header is not a JSON object");
    return BCD_OK;
}

static bcd_status check_header(bcd_auth_verifier *v, const struct token *t, const char **kid)
{
    const cJSON *alg = cJSON_GetObjectItemCaseSensitive(t->hdr, "alg");
    if (!cJSON_IsString(alg))
        return fail(v, BCD_EAUTH, "malformed_token", "token header has no alg");
    if (strcmp(alg->valuestring, "ES256") != 0) {
        char buf[40];
        return fail(v, BCD_EAUTH, "alg_not_allowed", "alg \"%s\" is not allowed, only ES256",
                    printable(buf, alg->valuestring));
    }
    /* Keys come from the configured set only, and no extension is understood. */
    static const char *const refused[] = {"crit", "jwk", "jku", "x5u", "x5c", "enc", "zip"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if (cJSON_GetObjectItemCaseSensitive(t->hdr, refused[i]))
            return fail(v, BCD_EAUTH, "unsupported_header", "token header member \"%s\" is not accepted",
                        refused[i]);
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(t->hdr, "kid");
    if (k && !cJSON_IsString(k))
        return fail(v, BCD_EAUTH, "malformed_token", "token header kid is not a string");
    *kid = k ? k->valuestring : NULL;
    return BCD_OK;
}

/* The key for kid, downloading the set again once if the kid is unknown. */
static bcd_status find_key(bcd_auth_verifier *v, const char *kid, int64_t now, EVP_PKEY **key)
{
    const char *why = NULL;
    enum bcd__jwks_lookup r = bcd__jwks_find(v->jwks, kid, key, &why);
    bool refreshed = false;
    if (r == BCD__KEY_UNKNOWN && kid && !v->pinned && may_download(v, now)) {
        if (download(v, now) == BCD_OK) {
            refreshed = true;
            r = bcd__jwks_find(v->jwks, kid, key, &why);
        } else {
            bcd__log(v->ctx, BCD_LOG_WARN, "auth: key set refresh for an unknown kid failed (%s)", v->err.code);
            clear(v);
        }
    }
    if (r == BCD__KEY_FOUND)
        return BCD_OK;
    if (r == BCD__KEY_UNUSABLE) {
        fail(v, BCD_EAUTH, "key_unusable", "the key named by the token cannot verify ES256: %s", why);
    } else if (!kid) {
        fail(v, BCD_EAUTH, "unknown_kid", "token names no kid and the key set does not have exactly one usable key");
    } else {
        fail(v, BCD_EAUTH, "unknown_kid", "no key in the key set has the token's kid%s",
             refreshed ? " (key set downloaded again)" : "");
    }
    if (kid)
        detail(v, "kid", kid);
    return BCD_EAUTH;
}

static bcd_status check_signature(bcd_auth_verifier *v, const struct token *t, EVP_PKEY *key)
{
    switch (bcd__es256_verify(key, (const unsigned char *)t->text, t->signed_len, t->sig, t->sig_len)) {
    case BCD__SIG_OK:
        return BCD_OK;
    case BCD__SIG_BAD_LENGTH:
        return fail(v, BCD_EAUTH, "bad_signature", "signature is %zu bytes, ES256 takes 64 (R || S)", t->sig_len);
    case BCD__SIG_OUT_OF_RANGE:
        return fail(v, BCD_EAUTH, "bad_signature", "signature r or s is out of range");
    case BCD__SIG_MISMATCH:
        return fail(v, BCD_EAUTH, "bad_signature", "signature does not verify");
    case BCD__SIG_ERROR:
        break;
    }
    return fail(v, BCD_ENOMEM, "out_of_memory", "signature check failed inside OpenSSL");
}

/* ---- claims ---- */

static bool numeric(const cJSON *c)
{
    return cJSON_IsNumber(c) && isfinite(c->valuedouble);
}

static bool aud_matches(const cJSON *aud, const char *want)
{
    if (cJSON_IsString(aud))
        return strcmp(aud->valuestring, want) == 0;
    if (!cJSON_IsArray(aud))
        return false;
    const cJSON *a;
    cJSON_ArrayForEach(a, aud) if (cJSON_IsString(a) && strcmp(a->valuestring, want) == 0) return true;
    return false;
}

static bool sub_valid(const cJSON *sub)
{
    if (!cJSON_IsString(sub))
        return false;
    size_t n = strlen(sub->valuestring);
    if (n == 0 || n > MAX_SUB_LEN)
        return false;
    for (const unsigned char *p = (const unsigned char *)sub->valuestring; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

static bcd_status check_claims(bcd_auth_verifier *v, const cJSON *c, int64_t now)
{
    const double t = (double)now, leeway = v->leeway_s;
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(c, "exp");
    const cJSON *nbf = cJSON_GetObjectItemCaseSensitive(c, "nbf");
    const cJSON *iat = cJSON_GetObjectItemCaseSensitive(c, "iat");
    if (!numeric(exp))
        return fail(v, BCD_EAUTH, "invalid_claims", "token has no numeric exp claim");
    if ((nbf && !numeric(nbf)) || (iat && !numeric(iat)))
        return fail(v, BCD_EAUTH, "invalid_claims", "token nbf or iat claim is not a number");
    if (t >= exp->valuedouble + leeway)
        return fail(v, BCD_EAUTH, "token_expired", "token expired %.0f s ago (leeway %d s)", t - exp->valuedouble,
                    v->leeway_s);
    if (nbf && nbf->valuedouble > t + leeway)
        return fail(v, BCD_EAUTH, "token_not_yet_valid", "token is not valid for another %.0f s (nbf, leeway %d s)",
                    nbf->valuedouble - t, v->leeway_s);
    if (iat && iat->valuedouble > t + leeway)
        return fail(v, BCD_EAUTH, "token_not_yet_valid", "token was issued %.0f s in the future (iat, leeway %d s)",
                    iat->valuedouble - t, v->leeway_s);
    if (v->issuer) {
        const cJSON *iss = cJSON_GetObjectItemCaseSensitive(c, "iss");
        if (!cJSON_IsString(iss) || strcmp(iss->valuestring, v->issuer) != 0) {
            fail(v, BCD_EAUTH, "bad_issuer", "token issuer is not the configured one");
            detail(v, "expected", v->issuer);
            return BCD_EAUTH;
        }
    }
    if (!aud_matches(cJSON_GetObjectItemCaseSensitive(c, "aud"), v->audience)) {
        fail(v, BCD_EAUTH, "bad_audience", "token audience does not include the expected one");
        detail(v, "expected", v->audience);
        return BCD_EAUTH;
    }
    if (!sub_valid(cJSON_GetObjectItemCaseSensitive(c, "sub")))
        return fail(v, BCD_EAUTH, "invalid_claims",
                    "token sub claim is missing, empty, over %d bytes or holds control characters", MAX_SUB_LEN);
    return BCD_OK;
}

/* Copy claim name of c into out under key, as null when absent or of another type. */
static bool put(cJSON *out, const char *key, const cJSON *c, const char *name, int type)
{
    const cJSON *item = c ? cJSON_GetObjectItemCaseSensitive(c, name) : NULL;
    bool fits = item && ((type == cJSON_String && cJSON_IsString(item)) ||
                         (type == cJSON_Number && numeric(item)) || (type == cJSON_True && cJSON_IsBool(item)) ||
                         (type == cJSON_Array && (cJSON_IsString(item) || cJSON_IsArray(item))));
    cJSON *copy = fits ? cJSON_Duplicate(item, 1) : cJSON_CreateNull();
    if (!copy)
        return false;
    cJSON_AddItemToObject(out, key, copy);
    return true;
}

static char *caller_json(const cJSON *claims, const char *kid)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = o && put(o, "user_id", claims, "sub", cJSON_String) && put(o, "role", claims, "role", cJSON_String) &&
              put(o, "email", claims, "email", cJSON_String) &&
              put(o, "session_id", claims, "session_id", cJSON_String) &&
              put(o, "is_anonymous", claims, "is_anonymous", cJSON_True) &&
              put(o, "aal", claims, "aal", cJSON_String) && put(o, "exp", claims, "exp", cJSON_Number) &&
              put(o, "iat", claims, "iat", cJSON_Number) && put(o, "aud", claims, "aud", cJSON_Array) &&
              put(o, "iss", claims, "iss", cJSON_String) &&
              (kid ? cJSON_AddStringToObject(o, "kid", kid) : cJSON_AddNullToObject(o, "kid")) != NULL;
    char *s = ok ? bcd__utf8_repair(cJSON_PrintUnformatted(o)) : NULL; /* claims are the token's bytes */
    cJSON_Delete(o);
    return s;
}

bcd_status bcd_auth_verify(char **out, bcd_auth_verifier *v, const char *token)
{
    if (!v)
        return BCD_EINVAL;
    clear(v);
    if (!out || !token)
        return fail(v, BCD_EINVAL, "invalid_argument", "no token given");
    struct token t = {0};
    const int64_t now = now_s(v);
    const char *kid = NULL;
    EVP_PKEY *key = NULL;
    bcd_status st = split_token(v, &t, token);
    if (st == BCD_OK)
        st = check_header(v, &t, &kid);
    /* A signature of the wrong size is refused before any key lookup or download. */
    if (st == BCD_OK && t.sig_len != BCD__AUTH_ES256_SIG_LEN)
        st = fail(v, BCD_EAUTH, "bad_signature", "signature is %zu bytes, ES256 takes 64 (R || S)", t.sig_len);
    if (st == BCD_OK)
        st = ensure_jwks(v, now);
    if (st == BCD_OK)
        st = find_key(v, kid, now, &key);
    if (st == BCD_OK)
        st = check_signature(v, &t, key);
    if (st == BCD_OK) {
        /* Only signed content is interpreted from here on. */
        t.claims = parse_object(t.payload, t.payload_len);
        if (!(v->flags & BCD_AUTH_SIGNATURE_ONLY)) {
            if (!t.claims)
                st = fail(v, BCD_EAUTH, "malformed_token", "token payload is not a JSON object");
            else
                st = check_claims(v, t.claims, now);
        }
    }
    if (st == BCD_OK) {
        char *json = caller_json(t.claims, kid);
        if (json)
            *out = json;
        else
            st = fail(v, BCD_ENOMEM, "out_of_memory", "out of memory");
    }
    token_free(&t);
    return st;
}
