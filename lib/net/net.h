/* Internal HTTP client over libcurl, for the supabase store and token verification.
 * Not installed.
 *
 * One bcd__net handle holds one curl multi handle (its connection cache: keep-alive
 * connections are reused from request to request) and one share handle (DNS cache, TLS
 * sessions), so a store handle talks to its server over a few long-lived connections.
 *
 * Every request:
 *  - carries `X-Correlation-Id: <uuid v4>` (the same id on every attempt of it); the id
 *    is copied into the response and into the error detail of a failure;
 *  - has a connect timeout and a total timeout (BCD_HTTP_CONNECT_TIMEOUT_MS,
 *    BCD_HTTP_TIMEOUT_MS of the ctx) and aborts below 1 byte/s for 30 s;
 *  - verifies TLS peers and host names (never disabled), speaks http:// and https://
 *    only and never follows redirects (a key must not travel to another host);
 *  - caps the response body at the request's max_response and at BCD_HTTP_MAX_RESPONSE_BYTES
 *    of the ctx (default 64 MiB), whichever is lower: a longer body is cut off as it
 *    arrives, never buffered whole (BCD_ELIMIT "response_too_large", not retried);
 *  - refuses a request body over BCD_HTTP_MAX_REQUEST_BYTES of the ctx (default 50 MiB,
 *    the bucket's file size limit in supabase/migrations) before sending anything
 *    (BCD_ELIMIT "request_too_large");
 *  - is retried with exponential backoff and full jitter, at most `max_attempts` times
 *    and `max_wait_ms` of waiting in all, when it is idempotent and failed on the way
 *    (connection refused or reset, timeout, nothing received) or its response is
 *    transient (the request's classifier says so; by default 408, 429, 5xx except
 *    501 and 505); `Retry-After` (seconds or an HTTP date) is honoured, and a wait
 *    longer than the budget left ends the retries with that response. A request that
 *    is not idempotent is sent again only when it never left (no connection).
 * Secrets (the service-role key) registered with bcd__net_add_secret() are scrubbed
 * from error text with bcd__net_scrub(); this layer never puts header values in
 * messages or logs. Logs (the ctx callback) name method, host and path, never the
 * query string or headers.
 *
 * libcurl's process-wide set-up (curl_global_init) runs once, under pthread_once, the
 * first time a handle is made; it is never undone (curl_global_cleanup at exit is
 * optional and unsafe while other threads may use libcurl). libcurl >= 7.84 makes
 * curl_global_init itself thread-safe; pthread_once covers older versions.
 *
 * Threads: a handle is used by one thread at a time.
 */
#ifndef BCD_NET_INTERNAL_H
#define BCD_NET_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "core/core.h"

typedef struct bcd__net bcd__net;

/* Defaults of BCD_HTTP_MAX_RESPONSE_BYTES and BCD_HTTP_MAX_REQUEST_BYTES. */
#define BCD__NET_MAX_RESPONSE ((size_t)64 << 20)
#define BCD__NET_MAX_REQUEST ((size_t)50 << 20)

enum bcd__net_method { BCD__NET_GET, BCD__NET_HEAD, BCD__NET_POST, BCD__NET_PUT, BCD__NET_PATCH, BCD__NET_DELETE };

/* What a complete response means for a retry. */
enum bcd__net_verdict { BCD__NET_FINAL, BCD__NET_TRANSIENT };
/* Classify a response (status, body); body is NUL-terminated. */
typedef enum bcd__net_verdict (*bcd__net_classify_fn)(long status, const unsigned char *body, size_t len);

struct bcd__net_request {
    enum bcd__net_method method;
    const char *url;                /* http:// or https://; never holds a secret */
    const char *const *headers;     /* "Name: value" lines, NULL-terminated; may be NULL */
    const void *body;               /* may be NULL when body_len is 0 */
    size_t body_len;
    bool idempotent;                /* may be sent again after a failure */
    size_t max_response;            /* body cap in bytes (lowered to the ctx's cap); 0: the ctx's cap */
    bcd__net_classify_fn classify;  /* NULL: bcd__net_default_classify */
};

struct bcd__net_response {
    long status;                    /* HTTP status of the last attempt */
    unsigned char *body;            /* malloc'd, NUL-terminated (not counted in len) */
    size_t len;
    char content_type[128];
    char content_range[64];
    char correlation_id[40];
    int attempts;
};

struct bcd__net_options {
    long timeout_ms;                /* 0: BCD_HTTP_TIMEOUT_MS of ctx */
    long connect_timeout_ms;        /* 0: BCD_HTTP_CONNECT_TIMEOUT_MS of ctx */
    int max_attempts;               /* 0: 3 */
    long backoff_ms;                /* first backoff step; 0: 200 ms */
    long max_wait_ms;               /* total wait between attempts; 0: 20 s */
};

/* Make a handle. ctx (borrowed) gives timeouts and receives log lines. opts may be
 * NULL. BCD_ENOMEM, BCD_ERROR (libcurl could not be set up) on err. */
bcd_status bcd__net_new(bcd__net **out, bcd_ctx *ctx, const struct bcd__net_options *opts, bcd_error *err);
/* NULL: no-op. Wipes the registered secrets. */
void bcd__net_free(bcd__net *n);
/* The request body cap (BCD_HTTP_MAX_REQUEST_BYTES) of the handle. */
size_t bcd__net_max_request(const bcd__net *n);
/* Register a secret (copied) that must never appear in error text. */
bcd_status bcd__net_add_secret(bcd__net *n, const char *secret);
/* Replace every registered secret in e's message and details by "[redacted]". */
void bcd__net_scrub(const bcd__net *n, bcd_error *e);

/* Run one request, retrying as described above. BCD_OK when a response arrived,
 * whatever its HTTP status (the caller interprets it; rs filled, free with
 * bcd__net_response_clear). Otherwise BCD_ENET ("network_error", "network_timeout"),
 * BCD_ELIMIT ("response_too_large", "request_too_large"), BCD_EINVAL (bad URL), BCD_ENOMEM, recorded on err
 * with the correlation id; rs->correlation_id is set either way. */
bcd_status bcd__net_request(bcd__net *n, const struct bcd__net_request *rq, struct bcd__net_response *rs,
                            bcd_error *err);
/* Run n requests at once (curl multi, over the same connection cache), each with its
 * own retries. All run to their end; the result is that of the first failed one (its
 * index in *failed), or BCD_OK. rs[i] is filled for every request. */
bcd_status bcd__net_request_many(bcd__net *n, const struct bcd__net_request *rq, struct bcd__net_response *rs,
                                 size_t count, bcd_error *err, size_t *failed);
void bcd__net_response_clear(struct bcd__net_response *rs);

/* One-shot GET of url for lib/auth (the JWKS document); the signature of
 * bcd__auth_fetch_fn (lib/auth/auth_internal.h), so that the verifier can hold it.
 * Makes a handle on ctx for the call. HTTP 200 only: *out_body (malloc'd,
 * NUL-terminated, the NUL not counted in *out_len). BCD_ENET (connection, timeout,
 * non-200 "http_status"), BCD_ELIMIT (over max_len), BCD_ENOMEM, on err with the
 * correlation id. user is unused. */
bcd_status bcd__net_fetch(void *user, bcd_ctx *ctx, const char *url, size_t max_len, char **out_body,
                          size_t *out_len, bcd_error *err);

/* 408, 429, 500, 502-504, 520-524, 544: transient; everything else final. */
enum bcd__net_verdict bcd__net_default_classify(long status, const unsigned char *body, size_t len);

/* Growable string for URLs and bodies; on allocation failure `oom` is set and further
 * appends are ignored. */
/* Append s percent-encoded: everything but A-Z a-z 0-9 - . _ ~ (and '/' if keep_slash). */
void bcd__net_buf_add_escaped(struct bcd__buf *b, const char *s, bool keep_slash);

#endif
