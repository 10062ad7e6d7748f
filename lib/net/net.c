/* HTTP client over libcurl: connection reuse, timeouts, retries with backoff and
 * jitter, correlation ids, response caps, secret scrubbing. See net.h. */
#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "bcd/version.h"
#include "net.h"

#define USER_AGENT "libbcd/" BCD_VERSION_STRING
#define DEFAULT_ATTEMPTS 3
#define DEFAULT_BACKOFF_MS 200L
#define DEFAULT_MAX_WAIT_MS 20000L
#define LOW_SPEED_TIME_S 30L
#define MAX_SECRETS 4
#define REDACTED "[redacted]"

struct bcd__net {
    bcd_ctx *ctx;
    CURLM *multi;   /* owns the connection cache */
    CURLSH *share;  /* DNS cache and TLS sessions */
    long timeout_ms, connect_timeout_ms, backoff_ms, max_wait_ms;
    size_t max_response, max_request; /* BCD_HTTP_MAX_RESPONSE_BYTES, BCD_HTTP_MAX_REQUEST_BYTES */
    int max_attempts;
    char *secrets[MAX_SECRETS];
};

/* ---- process-wide set-up ------------------------------------------------------------ */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- string builder ----------------------------------------------------------------- */

void bcd__net_buf_add_escaped(struct bcd__buf *b, const char *s, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (isalnum(*c) || *c == '-' || *c == '.' || *c == '_' || *c == '~' || (keep_slash && *c == '/')) {
            char ch = (char)*c;
            bcd__buf_putn(b, &ch, 1);
        } else {
            char esc[3] = {'%', hex[*c >> 4], hex[*c & 15]};
            bcd__buf_putn(b, esc, 3);
        }
    }
}


/* ---- handle ------------------------------------------------------------------------- */

bcd_status bcd__net_new(bcd__net **out, bcd_ctx *ctx, const struct bcd__net_options *opts, bcd_error *err)
{
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK)
        return bcd__fail(err, BCD_ERROR, "http_unavailable", "libcurl could not be initialised: %s",
                         curl_easy_strerror(global_rc));
    bcd__net *n = calloc(1, sizeof *n);
    if (!n)
        return bcd__fail(err, BCD_ENOMEM, "out_of_memory", "out of memory");
    n->ctx = ctx;
    n->timeout_ms = opts && opts->timeout_ms > 0 ? opts->timeout_ms
                                                 : (long)bcd__cfg_ull(ctx, BCD__CFG_HTTP_TIMEOUT_MS, 60000);
    n->connect_timeout_ms = opts && opts->connect_timeout_ms > 0
                                ? opts->connect_timeout_ms
                                : (long)bcd__cfg_ull(ctx, BCD__CFG_HTTP_CONNECT_TIMEOUT_MS, 10000);
    n->max_response = (size_t)bcd__cfg_ull(ctx, BCD__CFG_HTTP_MAX_RESPONSE_BYTES, BCD__NET_MAX_RESPONSE);
    n->max_request = (size_t)bcd__cfg_ull(ctx, BCD__CFG_HTTP_MAX_REQUEST_BYTES, BCD__NET_MAX_REQUEST);
    n->max_attempts = opts && opts->max_attempts > 0 ? opts->max_attempts : DEFAULT_ATTEMPTS;
    n->backoff_ms = opts && opts->backoff_ms > 0 ? opts->backoff_ms : DEFAULT_BACKOFF_MS;
    n->max_wait_ms = opts && opts->max_wait_ms > 0 ? opts->max_wait_ms : DEFAULT_MAX_WAIT_MS;
    n->multi = curl_multi_init();
    n->share = curl_share_init();
    if (!n->multi || !n->share) {
        bcd__net_free(n);
        return bcd__fail(err, BCD_ENOMEM, "out_of_memory", "cannot create HTTP handles");
    }
    /* one thread per handle: the share needs no lock callbacks */
    curl_share_setopt(n->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(n->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_multi_setopt(n->multi, CURLMOPT_MAXCONNECTS, 8L);
    curl_multi_setopt(n->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 6L);
    *out = n;
    return BCD_OK;
}

void bcd__net_free(bcd__net *n)
{
    if (!n)
        return;
    if (n->multi)
        curl_multi_cleanup(n->multi);
    if (n->share)
        curl_share_cleanup(n->share);
    for (int i = 0; i < MAX_SECRETS; i++)
        bcd__free_secret(n->secrets[i]);
    free(n);
}

size_t bcd__net_max_request(const bcd__net *n)
{
    return n->max_request;
}

bcd_status bcd__net_add_secret(bcd__net *n, const char *secret)
{
    if (!secret || !*secret)
        return BCD_OK;
    for (int i = 0; i < MAX_SECRETS; i++) {
        if (n->secrets[i])
            continue;
        if (!(n->secrets[i] = bcd__strdup(secret)))
            return BCD_ENOMEM;
        return BCD_OK;
    }
    return BCD_ELIMIT;
}

/* Copy src into a new string with every secret replaced; NULL on allocation failure. */
static char *scrub_text(const bcd__net *n, const char *src)
{
    struct bcd__buf b = {0};
    const char *p = src;
    while (*p) {
        size_t best = 0;
        for (int i = 0; i < MAX_SECRETS; i++) {
            size_t k = n->secrets[i] ? strlen(n->secrets[i]) : 0;
            if (k && strncmp(p, n->secrets[i], k) == 0 && k > best)
                best = k;
        }
        if (best) {
            bcd__buf_put(&b, REDACTED);
            p += best;
        } else {
            bcd__buf_putn(&b, p, 1);
            p++;
        }
    }
    if (b.oom) {
        bcd__buf_free(&b);
        return NULL;
    }
    if (!b.p)
        return bcd__strdup("");
    return b.p;
}

void bcd__net_scrub(const bcd__net *n, bcd_error *e)
{
    if (!n || !e)
        return;
    char *m = scrub_text(n, e->message);
    if (m) {
        snprintf(e->message, sizeof e->message, "%s", m);
        OPENSSL_cleanse(m, strlen(m));
        free(m);
    } else {
        snprintf(e->message, sizeof e->message, "%s", "error detail withheld (out of memory)");
    }
    if (e->details_json) {
        char *d = scrub_text(n, e->details_json);
        OPENSSL_cleanse(e->details_json, strlen(e->details_json));
        free(e->details_json);
        e->details_json = d; /* NULL on allocation failure: no details rather than leaked ones */
    }
}

/* ---- classification ----------------------------------------------------------------- */

enum bcd__net_verdict bcd__net_default_classify(long status, const unsigned char *body, size_t len)
{
    (void)body;
    (void)len;
    switch (status) {
    case 408:
    case 429:
    case 500:
    case 502:
    case 503:
    case 504:
    case 520:
    case 521:
    case 522:
    case 523:
    case 524:
    case 544:
        return BCD__NET_TRANSIENT;
    default:
        return BCD__NET_FINAL;
    }
}

/* Transport failures after which the request certainly did not reach the server. */
static bool never_sent(CURLcode cc)
{
    return cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST || cc == CURLE_COULDNT_RESOLVE_PROXY;
}

/* Transport failures worth another attempt of an idempotent request. */
static bool transient_transport(CURLcode cc)
{
    /* an if-chain, not a switch: CURLcode grows with every libcurl release */
    return cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST || cc == CURLE_COULDNT_RESOLVE_PROXY ||
           cc == CURLE_OPERATION_TIMEDOUT || cc == CURLE_GOT_NOTHING || cc == CURLE_SEND_ERROR ||
           cc == CURLE_RECV_ERROR || cc == CURLE_PARTIAL_FILE || cc == CURLE_HTTP2 || cc == CURLE_HTTP2_STREAM ||
           cc == CURLE_SSL_CONNECT_ERROR;
}

/* ---- transfers ---------------------------------------------------------------------- */

enum xstate { X_PENDING, X_RUNNING, X_DONE };

struct xfer {
    bcd__net *net;
    const struct bcd__net_request *rq;
    struct bcd__net_response *rs;
    CURL *easy;
    struct curl_slist *hdrs;
    enum xstate state;
    int64_t start_at;     /* monotonic ms: when the next attempt may start */
    long waited_ms;       /* total wait between attempts so far */
    size_t cap;
    bool cap_is_config;   /* cap is BCD_HTTP_MAX_RESPONSE_BYTES, not the request's own */
    bool too_large;
    long retry_after_ms;  /* from the last response, -1 if none */
    struct bcd__buf body;
    bcd_status st;
    bcd_error err;
    char errbuf[CURL_ERROR_SIZE];
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *method_name(enum bcd__net_method m)
{
    switch (m) {
    case BCD__NET_GET: return "GET";
    case BCD__NET_HEAD: return "HEAD";
    case BCD__NET_POST: return "POST";
    case BCD__NET_PUT: return "PUT";
    case BCD__NET_PATCH: return "PATCH";
    case BCD__NET_DELETE: return "DELETE";
    }
    return "GET";
}

/* scheme://host/path of a URL, without the query, for logs and messages. */
static void url_for_log(const char *url, char *buf, size_t cap)
{
    size_t n = strcspn(url, "?#");
    if (n >= cap)
        n = cap - 1;
    memcpy(buf, url, n);
    buf[n] = '\0';
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *user)
{
    struct xfer *x = user;
    size_t n = size * nmemb;
    if (x->body.len + n > x->cap) {
        x->too_large = true;
        return 0; /* CURLE_WRITE_ERROR */
    }
    bcd__buf_putn(&x->body, data, n);
    return x->body.oom ? 0 : n;
}

/* Copy a header value (trimmed) into buf. */
static void header_value(const char *v, size_t n, char *buf, size_t cap)
{
    while (n && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    if (n >= cap)
        n = cap - 1;
    memcpy(buf, v, n);
    buf[n] = '\0';
}

/* Retry-After: delay-seconds or an HTTP date. -1 if unparsable. */
static long parse_retry_after(const char *v)
{
    if (!*v)
        return -1;
    bool digits = true;
    for (const char *p = v; *p; p++)
        digits = digits && isdigit((unsigned char)*p);
    if (digits) {
        unsigned long s = strtoul(v, NULL, 10);
        return s > 86400 ? 86400L * 1000 : (long)s * 1000;
    }
    time_t t = curl_getdate(v, NULL);
    if (t < 0)
        return -1;
    time_t now = time(NULL);
    return t <= now ? 0 : (t - now > 86400 ? 86400L * 1000 : (long)(t - now) * 1000);
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *user)
{
    struct xfer *x = user;
    size_t n = size * nmemb;
    if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        /* a new response (after 100 Continue, or a new attempt): forget the last one */
        x->rs->content_type[0] = '\0';
        x->rs->content_range[0] = '\0';
        x->retry_after_ms = -1;
        return n;
    }
    const char *colon = memchr(data, ':', n);
    if (!colon)
        return n;
    size_t k = (size_t)(colon - data);
    const char *v = colon + 1;
    size_t vn = n - k - 1;
    if (k == 12 && strncasecmp(data, "Content-Type", 12) == 0) {
        header_value(v, vn, x->rs->content_type, sizeof x->rs->content_type);
    } else if (k == 13 && strncasecmp(data, "Content-Range", 13) == 0) {
        header_value(v, vn, x->rs->content_range, sizeof x->rs->content_range);
    } else if (k == 11 && strncasecmp(data, "Retry-After", 11) == 0) {
        char buf[64];
        header_value(v, vn, buf, sizeof buf);
        x->retry_after_ms = parse_retry_after(buf);
    }
    return n;
}

/* Make the easy handle of the next attempt. */
static bcd_status setup_attempt(struct xfer *x)
{
    bcd__net *n = x->net;
    const struct bcd__net_request *rq = x->rq;
    CURL *e = curl_easy_init();
    if (!e)
        return bcd__fail(&x->err, BCD_ENOMEM, "out_of_memory", "cannot create an HTTP request");
    x->easy = e;
    bcd__buf_free(&x->body);
    x->too_large = false;
    x->retry_after_ms = -1;
    x->errbuf[0] = '\0';
    if (!x->hdrs) {
        struct curl_slist *h = NULL, *t;
        char line[80];
        snprintf(line, sizeof line, "X-Correlation-Id: %s", x->rs->correlation_id);
        if (!(t = curl_slist_append(h, line)))
            goto oom;
        h = t;
        /* no "Expect: 100-continue" round trip on uploads */
        if (!(t = curl_slist_append(h, "Expect:")))
            goto oom;
        h = t;
        for (const char *const *p = rq->headers; p && *p; p++) {
            if (!(t = curl_slist_append(h, *p)))
                goto oom;
            h = t;
        }
        x->hdrs = h;
        goto ok;
    oom:
        curl_slist_free_all(h);
        return bcd__fail(&x->err, BCD_ENOMEM, "out_of_memory", "out of memory");
    }
ok:
    curl_easy_setopt(e, CURLOPT_URL, rq->url);
    curl_easy_setopt(e, CURLOPT_SHARE, n->share);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
    curl_easy_setopt(e, CURLOPT_USERAGENT, USER_AGENT);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, n->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, n->timeout_ms);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, LOW_SPEED_TIME_S);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)x->cap);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    /* libcurl silently sends a request again when a reused keep-alive connection turns
     * out dead; a request that must not run twice gets a connection of its own */
    if (!rq->idempotent)
        curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
    switch (rq->method) {
    case BCD__NET_GET:
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
        break;
    case BCD__NET_HEAD:
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
        break;
    case BCD__NET_POST:
    case BCD__NET_PUT:
    case BCD__NET_PATCH:
    case BCD__NET_DELETE:
        if (rq->method != BCD__NET_DELETE || rq->body_len) {
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, rq->body_len ? (const char *)rq->body : "");
        }
        if (rq->method != BCD__NET_POST)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method_name(rq->method));
        break;
    }
    return BCD_OK;
}

/* Milliseconds to wait before attempt number `attempt` (2, 3, ...): full jitter over
 * an exponentially growing window, at least the server's Retry-After. */
static long backoff(const bcd__net *n, int attempt, long retry_after_ms)
{
    long window = n->backoff_ms;
    for (int i = 2; i < attempt && window < 8000; i++)
        window *= 2;
    uint32_t r = 0;
    if (RAND_bytes((unsigned char *)&r, sizeof r) != 1)
        r = (uint32_t)now_ms();
    long wait = window / 2 + (long)(r % (uint32_t)(window / 2 + 1));
    return retry_after_ms > wait ? retry_after_ms : wait;
}

static void finish_ok(struct xfer *x)
{
    struct bcd__net_response *rs = x->rs;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &rs->status);
    if (!x->body.p && !x->body.oom)
        bcd__buf_putn(&x->body, "", 0);
    if (x->body.oom) {
        x->st = bcd__fail(&x->err, BCD_ENOMEM, "out_of_memory", "out of memory for an HTTP response");
        bcd__buf_free(&x->body);
        return;
    }
    rs->body = (unsigned char *)x->body.p;
    rs->len = x->body.len;
    memset(&x->body, 0, sizeof x->body);
    x->st = BCD_OK;
}

/* An attempt ended with curl result cc: finish the transfer or schedule the next attempt. */
static void attempt_done(struct xfer *x, CURLcode cc)
{
    bcd__net *n = x->net;
    const struct bcd__net_request *rq = x->rq;
    struct bcd__net_response *rs = x->rs;
    char where[256];
    url_for_log(rq->url, where, sizeof where);
    long status = 0;
    if (cc == CURLE_OK)
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);

    bool transient;
    if (cc == CURLE_OK) {
        bcd__net_classify_fn cls = rq->classify ? rq->classify : bcd__net_default_classify;
        const unsigned char *b = x->body.p ? (const unsigned char *)x->body.p : (const unsigned char *)"";
        transient = rq->idempotent && cls(status, b, x->body.len) == BCD__NET_TRANSIENT;
    } else {
        transient = (rq->idempotent && transient_transport(cc)) || never_sent(cc);
    }

    if (transient && rs->attempts < n->max_attempts) {
        long wait = backoff(n, rs->attempts + 1, cc == CURLE_OK ? x->retry_after_ms : -1);
        if (x->waited_ms + wait <= n->max_wait_ms) {
            if (cc == CURLE_OK)
                bcd__log(n->ctx, BCD_LOG_WARN, "HTTP %s %s: status %ld, attempt %d of %d, retrying in %ld ms "
                         "(correlation id %s)", method_name(rq->method), where, status, rs->attempts,
                         n->max_attempts, wait, rs->correlation_id);
            else
                bcd__log(n->ctx, BCD_LOG_WARN, "HTTP %s %s: %s, attempt %d of %d, retrying in %ld ms "
                         "(correlation id %s)", method_name(rq->method), where, curl_easy_strerror(cc),
                         rs->attempts, n->max_attempts, wait, rs->correlation_id);
            x->waited_ms += wait;
            x->start_at = now_ms() + wait;
            x->state = X_PENDING;
            curl_easy_cleanup(x->easy);
            x->easy = NULL;
            return;
        }
    }

    x->state = X_DONE;
    if (cc == CURLE_OK) {
        finish_ok(x);
        bcd__log(n->ctx, BCD_LOG_DEBUG, "HTTP %s %s: %ld (%zu bytes, attempt %d, correlation id %s)",
                 method_name(rq->method), where, rs->status, rs->len, rs->attempts, rs->correlation_id);
    } else if (x->too_large || cc == CURLE_FILESIZE_EXCEEDED) {
        x->st = bcd__fail(&x->err, BCD_ELIMIT, "response_too_large", "the response of %s %s exceeds %zu bytes%s; "
                          "nothing of it was used", method_name(rq->method), where, x->cap,
                          x->cap_is_config ? " (BCD_HTTP_MAX_RESPONSE_BYTES)" : "");
        bcd__log(n->ctx, BCD_LOG_WARN, "HTTP %s %s: response over %zu bytes, cut off (correlation id %s)",
                 method_name(rq->method), where, x->cap, rs->correlation_id);
    } else if (x->body.oom) {
        x->st = bcd__fail(&x->err, BCD_ENOMEM, "out_of_memory", "out of memory for an HTTP response");
    } else {
        const char *why = x->errbuf[0] ? x->errbuf : curl_easy_strerror(cc);
        bool timeout = cc == CURLE_OPERATION_TIMEDOUT;
        x->st = bcd__fail(&x->err, cc == CURLE_URL_MALFORMAT || cc == CURLE_UNSUPPORTED_PROTOCOL ? BCD_EINVAL : BCD_ENET,
                          timeout ? "network_timeout" : "network_error", "%s %s failed after %d attempt%s: %s",
                          method_name(rq->method), where, rs->attempts, rs->attempts == 1 ? "" : "s", why);
        bcd__log(n->ctx, BCD_LOG_WARN, "HTTP %s %s: %s (correlation id %s)", method_name(rq->method), where, why,
                 rs->correlation_id);
    }
    bcd__buf_free(&x->body);
    curl_easy_cleanup(x->easy);
    x->easy = NULL;
}

bcd_status bcd__net_request_many(bcd__net *n, const struct bcd__net_request *rq, struct bcd__net_response *rs,
                                 size_t count, bcd_error *err, size_t *failed)
{
    if (failed)
        *failed = 0;
    if (count == 0)
        return BCD_OK;
    struct xfer *xs = calloc(count, sizeof *xs);
    if (!xs)
        return bcd__fail(err, BCD_ENOMEM, "out_of_memory", "out of memory");
    for (size_t i = 0; i < count; i++) {
        struct xfer *x = &xs[i];
        memset(&rs[i], 0, sizeof rs[i]);
        x->net = n;
        x->rq = &rq[i];
        x->rs = &rs[i];
        x->cap = rq[i].max_response && rq[i].max_response < n->max_response ? rq[i].max_response : n->max_response;
        x->cap_is_config = x->cap == n->max_response && rq[i].max_response != n->max_response;
        x->state = X_PENDING;
        if (bcd__uuid_v4(rs[i].correlation_id) != BCD_OK) {
            x->state = X_DONE;
            x->st = bcd__fail(&x->err, BCD_ERROR, "random_failure", "cannot make a correlation id");
        } else if (!rq[i].url || (strncmp(rq[i].url, "http://", 7) != 0 && strncmp(rq[i].url, "https://", 8) != 0)) {
            x->state = X_DONE;
            x->st = bcd__fail(&x->err, BCD_EINVAL, "invalid_url", "only http:// and https:// URLs are supported");
        } else if (rq[i].body_len > n->max_request) {
            /* refused before anything is sent: nothing reaches the server */
            char where[256];
            url_for_log(rq[i].url, where, sizeof where);
            x->state = X_DONE;
            x->st = bcd__fail(&x->err, BCD_ELIMIT, "request_too_large",
                              "the request body of %s %s is %zu bytes, over the limit of %zu bytes "
                              "(BCD_HTTP_MAX_REQUEST_BYTES); nothing was sent",
                              method_name(rq[i].method), where, rq[i].body_len, n->max_request);
        }
    }

    size_t left = count;
    for (size_t i = 0; i < count; i++)
        if (xs[i].state == X_DONE)
            left--;
    while (left) {
        int64_t now = now_ms();
        long sleep_ms = 1000;
        for (size_t i = 0; i < count; i++) {
            struct xfer *x = &xs[i];
            if (x->state != X_PENDING)
                continue;
            if (x->start_at > now) {
                if (x->start_at - now < sleep_ms)
                    sleep_ms = (long)(x->start_at - now);
                continue;
            }
            x->rs->attempts++;
            if (setup_attempt(x) != BCD_OK || curl_multi_add_handle(n->multi, x->easy) != CURLM_OK) {
                if (x->st == BCD_OK && x->err.status == BCD_OK)
                    bcd__fail(&x->err, BCD_ERROR, "http_failure", "cannot start an HTTP request");
                x->st = x->err.status;
                if (x->easy)
                    curl_easy_cleanup(x->easy);
                x->easy = NULL;
                x->state = X_DONE;
                left--;
                continue;
            }
            x->state = X_RUNNING;
            sleep_ms = 0;
        }
        int running = 0;
        CURLMcode mc = curl_multi_perform(n->multi, &running);
        if (mc != CURLM_OK) {
            /* the multi handle is broken: fail whatever is left */
            for (size_t i = 0; i < count; i++) {
                struct xfer *x = &xs[i];
                if (x->state == X_DONE)
                    continue;
                if (x->easy) {
                    curl_multi_remove_handle(n->multi, x->easy);
                    curl_easy_cleanup(x->easy);
                    x->easy = NULL;
                }
                x->st = bcd__fail(&x->err, BCD_ENET, "network_error", "HTTP engine failure: %s",
                                  curl_multi_strerror(mc));
                x->state = X_DONE;
            }
            break;
        }
        CURLMsg *msg;
        int queued;
        while ((msg = curl_multi_info_read(n->multi, &queued))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            char *priv = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
            struct xfer *x = (struct xfer *)(void *)priv;
            CURLcode cc = msg->data.result;
            curl_multi_remove_handle(n->multi, msg->easy_handle);
            if (!x)
                continue;
            attempt_done(x, cc);
            if (x->state == X_DONE)
                left--;
        }
        if (!left)
            break;
        bool any_running = false;
        for (size_t i = 0; i < count; i++)
            any_running = any_running || xs[i].state == X_RUNNING;
        if (any_running) {
            long mt = -1;
            curl_multi_timeout(n->multi, &mt);
            if (mt >= 0 && mt < sleep_ms)
                sleep_ms = mt;
            if (sleep_ms > 0)
                curl_multi_poll(n->multi, NULL, 0, (int)sleep_ms, NULL);
        } else if (sleep_ms > 0) {
            struct timespec ts = {sleep_ms / 1000, (sleep_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
    }

    bcd_status st = BCD_OK;
    for (size_t i = 0; i < count; i++) {
        struct xfer *x = &xs[i];
        if (x->st != BCD_OK && st == BCD_OK) {
            st = x->st;
            bcd__error_copy(err, &x->err);
            bcd__error_set_correlation_id(err, x->rs->correlation_id);
            bcd__net_scrub(n, err);
            if (failed)
                *failed = i;
        }
        if (x->st != BCD_OK)
            bcd__net_response_clear(x->rs);
        curl_slist_free_all(x->hdrs);
        bcd__buf_free(&x->body);
        bcd__error_clear(&x->err);
    }
    free(xs);
    return st;
}

bcd_status bcd__net_request(bcd__net *n, const struct bcd__net_request *rq, struct bcd__net_response *rs,
                            bcd_error *err)
{
    return bcd__net_request_many(n, rq, rs, 1, err, NULL);
}

void bcd__net_response_clear(struct bcd__net_response *rs)
{
    if (!rs)
        return;
    free(rs->body);
    rs->body = NULL;
    rs->len = 0;
}

bcd_status bcd__net_fetch(void *user, bcd_ctx *ctx, const char *url, size_t max_len, char **out_body,
                          size_t *out_len, bcd_error *err)
{
    (void)user;
    bcd__net *n = NULL;
    bcd_status st = bcd__net_new(&n, ctx, NULL, err);
    if (st != BCD_OK)
        return st;
    static const char *const headers[] = {"Accept: application/json", NULL};
    struct bcd__net_request rq = {
        .method = BCD__NET_GET, .url = url, .headers = headers, .idempotent = true,
        .max_response = max_len ? max_len : BCD__NET_MAX_RESPONSE,
    };
    struct bcd__net_response rs;
    st = bcd__net_request(n, &rq, &rs, err);
    if (st == BCD_OK && rs.status != 200) {
        char where[256];
        url_for_log(url, where, sizeof where);
        st = bcd__fail(err, BCD_ENET, "http_status", "GET %s answered HTTP %ld", where, rs.status);
        bcd__error_set_correlation_id(err, rs.correlation_id);
    }
    if (st == BCD_OK) {
        *out_body = (char *)rs.body;
        *out_len = rs.len;
        rs.body = NULL;
    }
    bcd__net_response_clear(&rs);
    bcd__net_free(n);
    return st;
}
