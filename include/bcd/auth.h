#ifndef BCD_AUTH_H
#define BCD_AUTH_H
/**
 * @file bcd/auth.h
 * Verification of Supabase access tokens: ES256 JWTs (compact JWS) signed with a key of
 * the project's JSON Web Key Set, published at {SUPABASE_URL}/auth/v1/.well-known/jwks.json.
 *
 * What a token must satisfy, in the order checked (the first failure is reported, always
 * with status BCD_EAUTH and one of the string codes below):
 *  1. three base64url parts (strict: no padding, no other characters, at most 16 KiB);
 *     header and payload are UTF-8 JSON objects without duplicate members
 *     ("malformed_token"; a five-part JWE is never accepted);
 *  2. header alg is "ES256"; "none", HS*, RS*, PS*, ES384, ES512 and anything else are
 *     refused ("alg_not_allowed"); a header with crit, jwk, jku, x5u, x5c, enc or zip is
 *     refused ("unsupported_header"): keys come only from the configured key set;
 *  3. the header's kid names a key of the set ("unknown_kid"; the set is downloaded again
 *     once first, see below) that is usable for ES256 ("key_unusable": wrong kty, curve,
 *     alg, use or key_ops, point not on the curve, kid shared by several keys);
 *  4. the signature is 64 bytes R || S with 0 < r, s < n and verifies with SHA-256 over
 *     the ASCII bytes header.payload ("bad_signature");
 *  5. claims, unless BCD_AUTH_SIGNATURE_ONLY: exp present and now < exp + leeway
 *     ("token_expired"; a missing or non-numeric exp is "invalid_claims"); nbf and iat, if
 *     present, not after now + leeway ("token_not_yet_valid"); iss equal to the expected
 *     issuer when one is known ("bad_issuer"); aud equal to, or an array containing, the
 *     expected audience ("bad_audience"); sub a non-empty string of at most 128 bytes
 *     without control characters ("invalid_claims").
 *
 * Neither the token nor any part of it ever appears in an error message, details or log.
 *
 * Key set: either loaded explicitly (bcd_auth_verifier_set_jwks_json(),
 * bcd_auth_verifier_load_jwks_file(): pinned, never downloaded) or downloaded from the
 * project on first use, kept for jwks_ttl_s (1 hour), and downloaded again early when a
 * token names an unknown kid, at most once per refresh_interval_s (1 minute). A failed
 * download keeps the previous set. Downloading needs the network layer; a build without it
 * answers BCD_EUNSUPPORTED ("jwks_fetch_unsupported").
 *
 * Threads: a verifier is used by one thread at a time (verification updates its key-set
 * cache); different verifiers may be used at once. It uses its ctx during calls.
 * @since 0.1
 */
#include "common.h"
#include "ctx.h"

BCD_BEGIN_DECLS

typedef struct bcd_auth_verifier bcd_auth_verifier;

/** Clock for the verifier: current time in Unix seconds. */
typedef int64_t (*bcd_auth_now_fn)(void *user);

/**
 * Flag of bcd_auth_options.flags: check structure, algorithm, key and signature only;
 * skip every claim check (exp, nbf, iat, iss, aud, sub) and do not require the payload to
 * be JSON. For tests and diagnostics: a token accepted this way does not identify a caller.
 */
#define BCD_AUTH_SIGNATURE_ONLY 0x1u

/** Options of bcd_auth_verifier_new(); start from BCD_AUTH_OPTIONS_INIT. */
typedef struct bcd_auth_options {
    unsigned int version;           /**< BCD_AUTH_OPTIONS_VERSION */
    /** Project URL, e.g. https://xyz.supabase.co (a trailing slash is ignored); copied.
     *  NULL: SUPABASE_URL of the ctx, read once by bcd_auth_verifier_new(). Gives the JWKS
     *  address and the default issuer. */
    const char *supabase_url;
    /** Expected iss claim; copied. NULL: {supabase_url}/auth/v1, or no issuer check when
     *  no project URL is configured either. */
    const char *issuer;
    /** Expected aud claim; copied. NULL: "authenticated". */
    const char *audience;
    /** Clock skew allowed on exp, nbf and iat, seconds, 0 to 300. Negative: 30. */
    int leeway_s;
    /** Lifetime of a downloaded key set, seconds. 0: 3600. */
    unsigned int jwks_ttl_s;
    /** Least time between two downloads, seconds. 0: 60. */
    unsigned int refresh_interval_s;
    /** BCD_AUTH_* flags. */
    unsigned int flags;
    /** Clock override (tests); NULL: the system clock. Called with now_user. */
    bcd_auth_now_fn now;
    void *now_user;
} bcd_auth_options;

#define BCD_AUTH_OPTIONS_VERSION 1
#define BCD_AUTH_OPTIONS_INIT { BCD_AUTH_OPTIONS_VERSION, NULL, NULL, NULL, -1, 0, 0, 0, NULL, NULL }

/**
 * Fill opts with the defaults of BCD_AUTH_OPTIONS_INIT (for callers that cannot use macros).
 * @return BCD_OK, BCD_EINVAL (opts NULL or version unknown).
 */
BCD_API bcd_status bcd_auth_options_init(bcd_auth_options *opts, unsigned int version);

/**
 * Create a verifier. It holds no keys yet and reaches no server.
 * @param[out] out  the new verifier; caller frees with bcd_auth_verifier_free(). Untouched
 *                  on failure.
 * @param ctx       configuration (SUPABASE_URL) and logging; borrowed, must outlive the
 *                  verifier. Receives the error detail when creation fails.
 * @param opts      copied; NULL: defaults.
 * @return BCD_OK, BCD_EINVAL (NULL out or ctx, unknown options version, leeway over 300,
 *         project URL not http(s)), BCD_ENOMEM.
 */
BCD_API bcd_status bcd_auth_verifier_new(bcd_auth_verifier **out, bcd_ctx *ctx, const bcd_auth_options *opts);

/** Free a verifier and its keys. NULL: no-op. */
BCD_API void bcd_auth_verifier_free(bcd_auth_verifier *v);

/**
 * Use the key set in json ({"keys":[...]}, at most 256 KiB) and never download one.
 * Keys unfit for ES256 stay in the set, marked unusable (see the file comment).
 * @param json  copied (parsed); the caller keeps it.
 * @return BCD_OK, BCD_EINVAL, BCD_EFORMAT ("jwks_invalid"), BCD_ELIMIT ("jwks_too_large"),
 *         BCD_ENOMEM. On failure the previous key set stays.
 */
BCD_API bcd_status bcd_auth_verifier_set_jwks_json(bcd_auth_verifier *v, const char *json);

/**
 * As bcd_auth_verifier_set_jwks_json() with the contents of a file.
 * @return as above, plus BCD_ENOTFOUND and BCD_EIO for the file.
 */
BCD_API bcd_status bcd_auth_verifier_load_jwks_file(bcd_auth_verifier *v, const char *path);

/**
 * Verify an access token and return its caller.
 * Result (JSON object): {"user_id": sub, "role", "email", "session_id", "is_anonymous",
 * "aal", "exp", "iat", "aud", "iss", "kid"}; members absent from the token are null
 * (with BCD_AUTH_SIGNATURE_ONLY, all claims may be null).
 * @param[out] out  caller frees with bcd_free(); untouched on failure.
 * @param token     the compact JWS, without "Bearer "; borrowed, never copied into errors.
 * @return BCD_OK; BCD_EAUTH with the codes listed in the file comment; BCD_EINVAL (NULL
 *         argument); BCD_ESTATE ("jwks_not_configured": no key set and no project URL);
 *         BCD_EUNSUPPORTED ("jwks_fetch_unsupported"), BCD_ENET, BCD_EFORMAT, BCD_ELIMIT
 *         ("jwks_unavailable" and the fetcher's codes) when the key set cannot be
 *         downloaded; BCD_ENOMEM.
 */
BCD_API bcd_status bcd_auth_verify(char **out, bcd_auth_verifier *v, const char *token);

/**
 * Error detail of the last failed call on v; NULL if it succeeded.
 * Borrowed, valid until the next call on v.
 */
BCD_API const bcd_error *bcd_auth_verifier_last_error(const bcd_auth_verifier *v);

BCD_END_DECLS

#endif
