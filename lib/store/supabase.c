/* The `supabase` store: PostgREST (/rest/v1) for rows, Storage (/storage/v1) for image
 * blobs, over lib/net. The protocol is the one in docs/supabase-wire.md; the schema is
 * supabase/migrations/ (tables sessions, images, session_analysis, angle_analysis,
 * session_embeddings, angle_embeddings; views bcd_session_overview and
 * bcd_user_embeddings; functions bcd_save_analysis and bcd_get_analysis; the job queue
 * bcd_jobs with bcd_enqueue_job, bcd_claim_job, bcd_heartbeat_job, bcd_finish_job and
 * bcd_get_job).
 *
 * Atomicity and retries:
 *  - sessions and images get their ids here (UUID v4), so an insert whose response was
 *    lost can be sent again: a 409 (23505) then means "maybe done already" and the row is
 *    read back and compared with the id we made;
 *  - image registration follows the seed's rules by reading, then inserting; races are
 *    settled by the unique constraints (session_id, storage_path) and (session_id,
 *    image_type, order_index): on 409 the rules run again on what is stored now;
 *  - an analysis is saved by one call of bcd_save_analysis (one transaction) carrying a
 *    save id, so a retry of a save that did commit is recognised and answered with the
 *    first outcome; a failed save leaves the previous analysis as it was;
 *  - an analysis is read by one call of bcd_get_analysis (one snapshot).
 * Users are Supabase Auth users: user ids are lowercase UUIDs here.
 * The service-role key is sent as `apikey` (and as `Authorization: Bearer` when it is a
 * JWT, see wire doc 1.3), never in a URL, and is scrubbed from every error message.
 */
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "net/net.h"
#include "store.h"

#define SIGN_EXPIRES_S 3600
#define PAGE_ROWS 1000          /* hosted projects cap responses at 1000 rows */
#define EMBEDDING_PAGE_ROWS 200 /* ~25 KB per 2048-d embedding: keep pages a few MB */
#define REGISTER_TRIES 8        /* rounds of the registration rules under contention */
#define SMALL_RESPONSE ((size_t)1 << 20)

#define SESSION_COLS "id,user_id,status,created_at,updated_at,seq"
#define OVERVIEW_COLS SESSION_COLS ",image_count,analyzed"
#define IMAGE_COLS "id,session_id,image_type,order_index,storage_path,content_type,size_bytes,sha256,created_at"

enum api { API_REST, API_STORAGE };

struct sb {
    bcd__net *net;
    char *url;          /* project URL, no trailing slash */
    char *bucket;
    char *h_apikey;     /* "apikey: <key>" (secret) */
    char *h_auth;       /* "Authorization: Bearer <key>" for JWT keys, else NULL (secret) */
    bcd__supabase_transport_fn transport; /* test seam: answers instead of lib/net when set */
    void *transport_user;
};

static struct sb *S_of(bcd_store *s)
{
    return (struct sb *)s->impl;
}

static bcd_status oom(bcd_store *s)
{
    return bcd__fail(&s->err, BCD_ENOMEM, "out_of_memory", "out of memory");
}

/* ---- requests ----------------------------------------------------------------------- */

/* PostgREST: 5xx is transient except a statement timeout (57014), which would time out
 * again; 408 and 429 too. */
static enum bcd__net_verdict classify_rest(long status, const unsigned char *body, size_t len)
{
    (void)len;
    if (status == 500 && strstr((const char *)body, "\"57014\""))
        return BCD__NET_FINAL;
    return bcd__net_default_classify(status, body, len);
}

/* Storage answers most errors with HTTP 400 and the real status in the body: a locked
 * resource or a lock timeout ("423", "503") is transient. */
static enum bcd__net_verdict classify_storage(long status, const unsigned char *body, size_t len)
{
    if (status == 400) {
        const char *b = (const char *)body;
        if (strstr(b, "\"statusCode\":\"503\"") || strstr(b, "\"statusCode\":\"423\"") ||
            strstr(b, "\"statusCode\": \"503\"") || strstr(b, "\"statusCode\": \"423\""))
            return BCD__NET_TRANSIENT;
        return BCD__NET_FINAL;
    }
    return bcd__net_default_classify(status, body, len);
}

struct call {
    enum api api;
    enum bcd__net_method method;
    const char *url;
    const char *prefer;       /* Prefer header value or NULL */
    const char *accept;       /* NULL: application/json */
    const char *content_type; /* NULL: application/json when there is a body */
    const char *extra;        /* one more header line or NULL */
    const void *body;
    size_t len;
    bool idempotent;
    size_t max_response;
};

/* Whether the failure on err is one of transport (no whole answer arrived, after the
 * retries): a write may then have committed without our knowing. */
static bool lost_answer(const bcd_store *s, bcd_status st)
{
    return st == BCD_ENET &&
           (strcmp(s->err.code, "network_error") == 0 || strcmp(s->err.code, "network_timeout") == 0);
}

/* The headers of a call (lines and their storage). */
struct call_headers {
    char accept[96], prefer[160], ctype[160];
    const char *h[8];
};

/* The net request of a call; its headers live in hb. */
static struct bcd__net_request call_request(struct sb *S, const struct call *c, struct call_headers *hb)
{
    int k = 0;
    hb->h[k++] = S->h_apikey;
    if (S->h_auth)
        hb->h[k++] = S->h_auth;
    snprintf(hb->accept, sizeof hb->accept, "Accept: %s", c->accept ? c->accept : "application/json");
    hb->h[k++] = hb->accept;
    if (c->prefer) {
        snprintf(hb->prefer, sizeof hb->prefer, "Prefer: %s", c->prefer);
        hb->h[k++] = hb->prefer;
    }
    if (c->body || c->content_type) {
        snprintf(hb->ctype, sizeof hb->ctype, "Content-Type: %s",
                 c->content_type ? c->content_type : "application/json");
        hb->h[k++] = hb->ctype;
    }
    if (c->extra)
        hb->h[k++] = c->extra;
    hb->h[k] = NULL;
    return (struct bcd__net_request){
        .method = c->method,
        .url = c->url,
        .headers = hb->h,
        .body = c->body,
        .body_len = c->len,
        .idempotent = c->idempotent,
        .max_response = c->max_response,
        .classify = c->api == API_REST ? classify_rest : classify_storage,
    };
}

/* Send a call; BCD_OK when a response arrived (any status): rs filled. */
static bcd_status send_call(bcd_store *s, const struct call *c, struct bcd__net_response *rs)
{
    struct sb *S = S_of(s);
    struct call_headers hb;
    struct bcd__net_request rq = call_request(S, c, &hb);
    if (S->transport)
        return S->transport(S->transport_user, &rq, rs, &s->err);
    return bcd__net_request(S->net, &rq, rs, &s->err);
}

/* Send n requests at once (in parallel; one at a time through a test transport, which
 * stops at the first failure, the responses of the rest left empty). On failure *bad
 * is the index of the request at fault. */
static bcd_status send_requests(bcd_store *s, const struct bcd__net_request *rq, struct bcd__net_response *rs,
                                size_t n, size_t *bad)
{
    struct sb *S = S_of(s);
    *bad = 0;
    if (!S->transport)
        return n ? bcd__net_request_many(S->net, rq, rs, n, &s->err, bad) : BCD_OK;
    for (size_t i = 0; i < n; i++) {
        bcd_status st = S->transport(S->transport_user, &rq[i], &rs[i], &s->err);
        if (st != BCD_OK) {
            *bad = i;
            return st;
        }
    }
    return BCD_OK;
}

/* Error detail of a response: the service's code and message, and the effective
 * status (Storage puts it in the body). */
struct api_error {
    long status;
    char code[64];
    char message[256];
    char hint[160];
    char details[256];
};

static void copy_json_str(const cJSON *o, const char *k, char *buf, size_t cap)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    buf[0] = '\0';
    if (cJSON_IsString(v) && v->valuestring)
        snprintf(buf, cap, "%s", v->valuestring);
    else if (cJSON_IsNumber(v))
        snprintf(buf, cap, "%.0f", v->valuedouble);
}

static void parse_error(enum api api, const struct bcd__net_response *rs, struct api_error *e)
{
    memset(e, 0, sizeof *e);
    e->status = rs->status;
    cJSON *o = rs->body && rs->len ? cJSON_ParseWithLength((const char *)rs->body, rs->len) : NULL;
    if (cJSON_IsObject(o)) {
        copy_json_str(o, "code", e->code, sizeof e->code);
        copy_json_str(o, "message", e->message, sizeof e->message);
        copy_json_str(o, "hint", e->hint, sizeof e->hint);
        copy_json_str(o, "details", e->details, sizeof e->details);
        if (!e->message[0])
            copy_json_str(o, "msg", e->message, sizeof e->message);
        if (!e->message[0])
            copy_json_str(o, "error", e->message, sizeof e->message);
        if (api == API_STORAGE) {
            char sc[16];
            copy_json_str(o, "statusCode", sc, sizeof sc);
            if (sc[0] && rs->status == 400)
                e->status = strtol(sc, NULL, 10);
            if (!e->code[0])
                copy_json_str(o, "error", e->code, sizeof e->code);
        }
    }
    cJSON_Delete(o);
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
    return "?";
}

/* A server may repeat the key it was sent in an error body: whole, cut short by the field
 * sizes of struct api_error, or in part. Every run of REDACT_MIN or more characters that
 * also occurs in the key becomes "[redacted]", in place (the mark is shorter than the run);
 * bcd__net_scrub() only finds whole keys, so pieces would otherwise get through. */
#define REDACT_MIN 12
static void redact_key_runs(char *text, const char *key)
{
    size_t m = strlen(key), n = strlen(text), o = 0;
    if (m < REDACT_MIN)
        return;
    for (size_t i = 0; i < n;) {
        size_t best = 0;
        for (size_t j = 0; j + REDACT_MIN <= m; j++) {
            size_t len = 0;
            while (i + len < n && j + len < m && text[i + len] == key[j + len])
                len++;
            if (len > best)
                best = len;
        }
        if (best >= REDACT_MIN) {
            memcpy(text + o, "[redacted]", 10);
            o += 10;
            i += best;
        } else {
            text[o++] = text[i++];
        }
    }
    text[o] = '\0';
}

/* Record the failure a non-2xx response stands for. */
static bcd_status fail_response(bcd_store *s, const struct call *c, const struct bcd__net_response *rs,
                                const char *what)
{
    struct api_error e;
    parse_error(c->api, rs, &e);
    const char *key = S_of(s)->h_apikey + strlen("apikey: ");
    redact_key_runs(e.code, key);
    redact_key_runs(e.message, key);
    redact_key_runs(e.hint, key);
    redact_key_runs(e.details, key);
    bcd_status st;
    const char *code;
    const char *svc = c->api == API_REST ? "PostgREST" : "Storage";
    if (e.status == 401 || e.status == 403 || rs->status == 401 || rs->status == 403) {
        st = BCD_EAUTH;
        code = "supabase_unauthorized";
    } else if (e.status == 404 && (strcmp(e.code, "PGRST205") == 0 || strcmp(e.code, "42P01") == 0 ||
                                   strcmp(e.code, "PGRST202") == 0 || strcmp(e.code, "42883") == 0)) {
        st = BCD_EIO;
        code = "store_schema_missing";
    } else if (e.status == 404 && (strcmp(e.code, "NoSuchBucket") == 0 || strcmp(e.code, "Bucket not found") == 0)) {
        st = BCD_EIO;
        code = "bucket_missing";
    } else if (e.status == 404 && c->api == API_STORAGE &&
               (strcmp(e.code, "NoSuchKey") == 0 || strcmp(e.code, "not_found") == 0)) {
        st = BCD_ENOTFOUND;
        code = "image_file_missing";
    } else if (e.status == 409) {
        st = BCD_ECONFLICT;
        code = "constraint_violation";
    } else if (e.status == 413) {
        st = BCD_ELIMIT;
        code = "payload_too_large";
    } else if (e.status == 415) {
        st = BCD_EINVAL;
        code = "unsupported_content_type";
    } else if (e.status == 400 && (strcmp(e.code, "22P02") == 0 || strcmp(e.code, "23514") == 0 ||
                                   strcmp(e.code, "23502") == 0 || strcmp(e.code, "22001") == 0)) {
        st = BCD_EINVAL;
        code = "invalid_input";
    } else if (e.status == 429 || rs->status == 429) {
        st = BCD_ENET;
        code = "rate_limited";
    } else if (rs->status >= 500 || e.status >= 500) {
        st = BCD_ENET;
        code = "server_error";
    } else {
        st = BCD_ERROR;
        code = "supabase_request_rejected";
    }
    char where[128];
    const char *path = c->url + strlen(S_of(s)->url);
    snprintf(where, sizeof where, "%.*s", (int)strcspn(path, "?"), path);
    char said[sizeof e.code + sizeof e.message + 8] = "";
    if (e.code[0] && e.message[0])
        snprintf(said, sizeof said, " (%s: %s)", e.code, e.message);
    else if (e.code[0] || e.message[0])
        snprintf(said, sizeof said, " (%s)", e.code[0] ? e.code : e.message);
    if (strcmp(code, "store_schema_missing") == 0)
        bcd__fail(&s->err, st, code, "%s: the Supabase project lacks libbcd's schema%s; apply supabase/migrations",
                  what, said);
    else if (strcmp(code, "bucket_missing") == 0)
        bcd__fail(&s->err, st, code, "%s: the storage bucket %s does not exist%s", what, S_of(s)->bucket, said);
    else if (st == BCD_EAUTH)
        bcd__fail(&s->err, st, code, "%s: Supabase refused the request with HTTP %ld%s; check SUPABASE_SERVICE_ROLE_KEY",
                  what, rs->status, said);
    else
        bcd__fail(&s->err, st, code, "%s: %s %s %s answered HTTP %ld%s", what, svc, method_name(c->method), where,
                  rs->status, said);
    cJSON *d = cJSON_CreateObject();
    if (d) {
        cJSON_AddStringToObject(d, "service", c->api == API_REST ? "postgrest" : "storage");
        cJSON_AddNumberToObject(d, "http_status", (double)rs->status);
        if (e.status != rs->status)
            cJSON_AddNumberToObject(d, "status", (double)e.status);
        if (e.code[0])
            cJSON_AddStringToObject(d, "code", e.code);
        if (e.details[0])
            cJSON_AddStringToObject(d, "details", e.details);
        if (e.hint[0])
            cJSON_AddStringToObject(d, "hint", e.hint);
        char *txt = cJSON_PrintUnformatted(d);
        if (txt)
            bcd__error_set_details(&s->err, txt);
        free(txt);
        cJSON_Delete(d);
    }
    bcd__error_set_correlation_id(&s->err, rs->correlation_id);
    bcd__net_scrub(S_of(s)->net, &s->err);
    return st;
}

static bool ok_status(long st)
{
    return st >= 200 && st < 300;
}

/* Send and require a 2xx answer. */
static bcd_status call2xx(bcd_store *s, const struct call *c, struct bcd__net_response *rs, const char *what)
{
    bcd_status st = send_call(s, c, rs);
    if (st != BCD_OK) {
        char prefix[160];
        snprintf(prefix, sizeof prefix, "%s: ", what);
        size_t p = strlen(prefix), m = strlen(s->err.message);
        if (p + m < sizeof s->err.message) {
            memmove(s->err.message + p, s->err.message, m + 1);
            memcpy(s->err.message, prefix, p);
        }
        return st;
    }
    if (!ok_status(rs->status)) {
        st = fail_response(s, c, rs, what);
        bcd__net_response_clear(rs);
    }
    return st;
}

static bcd_status bad_response(bcd_store *s, const struct bcd__net_response *rs, const char *what)
{
    bcd__fail(&s->err, BCD_ENET, "bad_response", "%s: Supabase sent a response libbcd cannot read", what);
    bcd__error_set_correlation_id(&s->err, rs->correlation_id);
    return BCD_ENET;
}

/* Parse a JSON body; NULL (and the error recorded) when it is not JSON of `type`
 * (cJSON_Array / cJSON_Object, 0: any). */
static cJSON *parse_body(bcd_store *s, const struct bcd__net_response *rs, int type, const char *what)
{
    cJSON *o = rs->body ? cJSON_ParseWithLength((const char *)rs->body, rs->len) : NULL;
    if (!o || (type && !(o->type & type))) {
        cJSON_Delete(o);
        bad_response(s, rs, what);
        return NULL;
    }
    return o;
}

/* ---- URLs --------------------------------------------------------------------------- */

static void rest_url(struct sb *S, struct bcd__buf *b, const char *rel)
{
    bcd__buf_put(b, S->url);
    bcd__buf_put(b, "/rest/v1/");
    bcd__buf_put(b, rel);
}

/* "&col=eq.<escaped value>" */
static void add_eq(struct bcd__buf *b, const char *col, const char *v)
{
    bcd__buf_printf(b, "&%s=eq.", col);
    bcd__net_buf_add_escaped(b, v, false);
}

/* {URL}/storage/v1/<op>/{bucket}/{key} */
static void storage_url(struct sb *S, struct bcd__buf *b, const char *op, const char *key)
{
    bcd__buf_put(b, S->url);
    bcd__buf_put(b, "/storage/v1/");
    bcd__buf_put(b, op);
    bcd__buf_put(b, "/");
    bcd__net_buf_add_escaped(b, S->bucket, false);
    if (key) {
        bcd__buf_put(b, "/");
        bcd__net_buf_add_escaped(b, key, true);
    }
}

/* ---- values ------------------------------------------------------------------------- */

static bool lower_uuid(const char *s)
{
    if (!bcd__uuid_valid(s))
        return false;
    for (const char *p = s; *p; p++)
        if (*p >= 'A' && *p <= 'F')
            return false;
    return true;
}

static bcd_status check_user(bcd_store *s, const char *user_id)
{
    if (!lower_uuid(user_id))
        return bcd__fail(&s->err, BCD_EINVAL, "invalid_user_id",
                         "the supabase store identifies users by their Supabase Auth id (a lowercase UUID), "
                         "not '%.64s'",
                         user_id ? user_id : "(null)");
    return BCD_OK;
}

/* Normalise a timestamp ("2025-03-01T10:00:00.1234+00:00", "...Z", "... 10:00:00+01")
 * to the store format "YYYY-MM-DDTHH:MM:SS.ffffffZ" (UTC). False if unparsable. */
static bool norm_ts(const char *in, char out[BCD__TS_LEN])
{
    int Y, M, D, h, m, sec, used = 0;
    out[0] = '\0';
    if (!in || sscanf(in, "%4d-%2d-%2d%*1[T ]%2d:%2d:%2d%n", &Y, &M, &D, &h, &m, &sec, &used) != 6 || !used)
        return false;
    const char *p = in + used;
    long usec = 0;
    if (*p == '.') {
        p++;
        int digits = 0;
        while (isdigit((unsigned char)*p)) {
            if (digits < 6) {
                usec = usec * 10 + (*p - '0');
                digits++;
            }
            p++;
        }
        while (digits++ < 6)
            usec *= 10;
    }
    long off = 0;
    if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1, oh = 0, om = 0;
        p++;
        if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1]))
            return false;
        oh = (p[0] - '0') * 10 + (p[1] - '0');
        p += 2;
        if (*p == ':')
            p++;
        if (isdigit((unsigned char)p[0]) && isdigit((unsigned char)p[1])) {
            om = (p[0] - '0') * 10 + (p[1] - '0');
            p += 2;
        }
        off = sign * (oh * 3600L + om * 60L);
    } else if (*p == 'Z' || *p == 'z') {
        p++;
    }
    if (*p)
        return false;
    struct tm tm = {0};
    tm.tm_year = Y - 1900;
    tm.tm_mon = M - 1;
    tm.tm_mday = D;
    tm.tm_hour = h;
    tm.tm_min = m;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    if (t == (time_t)-1 && !(Y == 1969 && M == 12 && D == 31))
        return false;
    t -= off;
    struct tm u;
    if (!gmtime_r(&t, &u))
        return false;
    size_t n = strftime(out, BCD__TS_LEN, "%Y-%m-%dT%H:%M:%S", &u);
    snprintf(out + n, BCD__TS_LEN - n, ".%06ldZ", usec);
    return true;
}

static void get_str(const cJSON *o, const char *k, char *buf, size_t cap)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    buf[0] = '\0';
    if (cJSON_IsString(v) && v->valuestring && strlen(v->valuestring) < cap)
        strcpy(buf, v->valuestring);
}

static void get_ts(const cJSON *o, const char *k, char buf[BCD__TS_LEN])
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsString(v) || !norm_ts(v->valuestring, buf))
        buf[0] = '\0';
}

/* Numbers: PostgREST sends NaN/Infinity as strings; int8 as numbers. */
static double get_num(const cJSON *o, const char *k, double dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (cJSON_IsNumber(v))
        return v->valuedouble;
    if (cJSON_IsString(v) && v->valuestring) {
        char *end;
        double d = strtod(v->valuestring, &end);
        if (end != v->valuestring && !*end)
            return d;
    }
    return dflt;
}

/* Integer columns. A value that is not a number within the range of the type reads as
 * dflt, as a missing one does: converting it would be undefined behaviour. */
static bool fits_i64(double d)
{
    return d >= -0x1p63 && d < 0x1p63; /* false for NaN */
}

static int64_t get_i64(const cJSON *o, const char *k, int64_t dflt)
{
    double d = get_num(o, k, NAN);
    return fits_i64(d) ? (int64_t)d : dflt;
}

static int get_int(const cJSON *o, const char *k, int dflt)
{
    int64_t v = get_i64(o, k, dflt);
    return v >= INT_MIN && v <= INT_MAX ? (int)v : dflt;
}

/* A dimension: 0 (any) unless a positive whole number. */
static size_t get_dim(const cJSON *o, const char *k)
{
    int64_t v = get_i64(o, k, 0);
    return v > 0 && (uint64_t)v <= SIZE_MAX ? (size_t)v : 0;
}

static char *get_dup(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) && v->valuestring ? bcd__strdup(v->valuestring) : NULL;
}

static void read_session(const cJSON *o, struct bcd__session_row *r)
{
    memset(r, 0, sizeof *r);
    get_str(o, "id", r->id, sizeof r->id);
    get_str(o, "user_id", r->user_id, sizeof r->user_id);
    get_str(o, "status", r->status, sizeof r->status);
    get_ts(o, "created_at", r->created_at);
    get_ts(o, "updated_at", r->updated_at);
    if (!r->updated_at[0])
        memcpy(r->updated_at, r->created_at, sizeof r->updated_at);
    r->seq = get_i64(o, "seq", 0);
    r->image_count = get_i64(o, "image_count", 0);
    r->analyzed = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "analyzed"));
}

static void read_image(const cJSON *o, struct bcd__image_row *r)
{
    memset(r, 0, sizeof *r);
    get_str(o, "id", r->id, sizeof r->id);
    get_str(o, "session_id", r->session_id, sizeof r->session_id);
    get_str(o, "image_type", r->angle, sizeof r->angle);
    r->order_index = get_int(o, "order_index", -1);
    get_str(o, "storage_path", r->storage_path, sizeof r->storage_path);
    get_str(o, "content_type", r->content_type, sizeof r->content_type);
    r->size_bytes = get_i64(o, "size_bytes", -1);
    get_str(o, "sha256", r->sha256, sizeof r->sha256);
    get_ts(o, "created_at", r->created_at);
}

/* An embedding as stored: a JSON array (float4[], jsonb), or a string holding JSON text
 * "[...]" (the seed's text column, pgvector) or an array literal "{...}". dim 0: any.
 * With a checksum, the vector must print back to the text it was made from. */
static bcd_status parse_embedding(const cJSON *v, size_t dim, const char *checksum, float **out, size_t *dim_out)
{
    char *text = NULL;
    if (cJSON_IsArray(v)) {
        text = cJSON_PrintUnformatted(v);
    } else if (cJSON_IsString(v) && v->valuestring) {
        const char *p = v->valuestring;
        while (isspace((unsigned char)*p))
            p++;
        text = bcd__strdup(p);
        if (text && text[0] == '{') {
            size_t n = strlen(text);
            while (n && isspace((unsigned char)text[n - 1]))
                n--;
            if (n < 2 || text[n - 1] != '}') {
                free(text);
                return BCD_EFORMAT;
            }
            text[0] = '[';
            text[n - 1] = ']';
            text[n] = '\0';
        }
    } else {
        return BCD_EFORMAT;
    }
    if (!text)
        return BCD_ENOMEM;
    bcd_status st = bcd__embedding_from_json(text, dim, out, dim_out);
    free(text);
    if (st != BCD_OK || !checksum || !*checksum)
        return st;
    size_t d = dim ? dim : *dim_out;
    char *canon = bcd__embedding_to_json(*out, d);
    char sum[65];
    bool good = canon && bcd__sha256_hex(canon, strlen(canon), sum) == BCD_OK && strcmp(sum, checksum) == 0;
    free(canon);
    if (!good) {
        free(*out);
        *out = NULL;
        return BCD_EFORMAT;
    }
    return BCD_OK;
}

/* ---- paging ------------------------------------------------------------------------- */

typedef bcd_status (*row_fn)(bcd_store *s, const cJSON *row, void *user);

/* Total of a Content-Range such as "0-999/5234"; -1 when unknown (a star after the slash). */
static long long range_total(const char *cr)
{
    const char *slash = strchr(cr, '/');
    if (!slash || !slash[1] || slash[1] == '*')
        return -1;
    char *end;
    long long t = strtoll(slash + 1, &end, 10);
    return *end || t < 0 ? -1 : t;
}

/* GET base (a /rest/v1 URL with its filters and order on a unique key) page by page,
 * handing every row to fn. The exact count tells when to stop: a project may cap pages
 * below `page` rows (db-max-rows), so a short page alone does not mean the end. */
static bcd_status get_rows(bcd_store *s, const char *base, size_t page, row_fn fn, void *user, const char *what)
{
    long long total = -1;
    for (size_t offset = 0;;) {
        struct bcd__buf u = {0};
        bcd__buf_printf(&u, "%s&limit=%zu&offset=%zu", base, page, offset);
        if (u.oom) {
            bcd__buf_free(&u);
            return oom(s);
        }
        struct call c = {.api = API_REST, .method = BCD__NET_GET, .url = u.p, .prefer = "count=exact",
                         .idempotent = true};
        struct bcd__net_response rs;
        bcd_status st = call2xx(s, &c, &rs, what);
        bcd__buf_free(&u);
        if (st != BCD_OK)
            return st;
        total = range_total(rs.content_range);
        cJSON *arr = parse_body(s, &rs, cJSON_Array, what);
        bcd__net_response_clear(&rs);
        if (!arr)
            return BCD_ENET;
        size_t n = 0;
        for (const cJSON *it = arr->child; it && st == BCD_OK; it = it->next, n++)
            st = fn(s, it, user);
        cJSON_Delete(arr);
        if (st != BCD_OK)
            return st;
        offset += n;
        if (n == 0 || (total >= 0 ? (long long)offset >= total : n < page))
            return BCD_OK;
    }
}

/* GET rel (a /rest/v1 path with its select) filtered on col = val: the rows, a JSON array
 * (*arr, the caller deletes it). */
static bcd_status get_array(bcd_store *s, const char *rel, const char *col, const char *val, size_t max_response,
                            const char *what, cJSON **arr)
{
    *arr = NULL;
    struct bcd__buf u = {0};
    rest_url(S_of(s), &u, rel);
    add_eq(&u, col, val);
    if (u.oom) {
        bcd__buf_free(&u);
        return oom(s);
    }
    struct call c = {.api = API_REST, .method = BCD__NET_GET, .url = u.p, .idempotent = true,
                     .max_response = max_response};
    struct bcd__net_response rs;
    bcd_status st = call2xx(s, &c, &rs, what);
    bcd__buf_free(&u);
    if (st != BCD_OK)
        return st;
    *arr = parse_body(s, &rs, cJSON_Array, what);
    bcd__net_response_clear(&rs);
    return *arr ? BCD_OK : BCD_ENET;
}

/* ---- sessions ----------------------------------------------------------------------- */

static bcd_status fetch_session(bcd_store *s, const char *id, struct bcd__session_row *out, bool *found)
{
    *found = false;
    if (!lower_uuid(id))
        return BCD_OK;
    cJSON *arr = NULL;
    bcd_status st =
        get_array(s, "bcd_session_overview?select=" OVERVIEW_COLS, "id", id, SMALL_RESPONSE, "read session", &arr);
    if (st == BCD_OK && arr->child) {
        if (out)
            read_session(arr->child, out);
        *found = true;
    }
    cJSON_Delete(arr);
    return st;
}

static bcd_status s_session_get(bcd_store *s, const char *id, struct bcd__session_row *out)
{
    bool found = false;
    bcd_status st = fetch_session(s, id, out, &found);
    if (st == BCD_OK && !found)
        st = bcd__fail(&s->err, BCD_ENOTFOUND, "session_not_found", "session %s not found", id);
    return st;
}

static bcd_status s_session_create(bcd_store *s, const char *user_id, struct bcd__session_row *out)
{
    struct sb *S = S_of(s);
    bcd_status st = check_user(s, user_id);
    if (st != BCD_OK)
        return st;
    char id[BCD__ID_LEN];
    if (bcd__uuid_v4(id) != BCD_OK)
        return bcd__fail(&s->err, BCD_ERROR, "random_failure", "cannot generate a session id");
    char body[160];
    snprintf(body, sizeof body, "{\"id\":\"%s\",\"user_id\":\"%s\",\"status\":\"created\"}", id, user_id);
    struct bcd__buf u = {0};
    rest_url(S, &u, "sessions?select=" SESSION_COLS);
    if (u.oom)
        return oom(s);
    /* idempotent: the id is ours, a replayed insert answers 409 and is read back */
    struct call c = {.api = API_REST, .method = BCD__NET_POST, .url = u.p, .prefer = "return=representation",
                     .body = body, .len = strlen(body), .idempotent = true, .max_response = SMALL_RESPONSE};
    struct bcd__net_response rs;
    st = send_call(s, &c, &rs);
    if (st != BCD_OK) {
        bcd__buf_free(&u);
        if (!lost_answer(s, st))
            return st;
        /* every answer was lost or broken: the insert may have committed; read it back
         * once, and report the transport failure if it is not there */
        bcd_error lost = {0};
        bcd__error_copy(&lost, &s->err);
        bcd__error_clear(&s->err);
        bool found = false;
        bcd_status st2 = fetch_session(s, id, out, &found);
        if (st2 == BCD_OK && found && strcmp(out->user_id, user_id) == 0) {
            bcd__error_clear(&lost);
            return BCD_OK;
        }
        bcd__error_clear(&s->err);
        bcd__error_copy(&s->err, &lost);
        bcd__error_clear(&lost);
        return st;
    }
    struct api_error e;
    parse_error(API_REST, &rs, &e);
    if (rs.status == 409 && strcmp(e.code, "23505") == 0) {
        bcd__net_response_clear(&rs);
        bcd__buf_free(&u);
        bool found = false;
        st = fetch_session(s, id, out, &found);
        if (st == BCD_OK && (!found || strcmp(out->user_id, user_id) != 0))
            st = bcd__fail(&s->err, BCD_ECONFLICT, "constraint_violation", "session id %s is taken", id);
        return st;
    }
    if (!ok_status(rs.status)) {
        st = fail_response(s, &c, &rs, "create session");
        bcd__net_response_clear(&rs);
        bcd__buf_free(&u);
        return st;
    }
    bcd__buf_free(&u);
    cJSON *arr = parse_body(s, &rs, cJSON_Array, "create session");
    if (arr && arr->child) {
        read_session(arr->child, out);
        out->image_count = 0;
        out->analyzed = false;
    } else if (arr) {
        st = bad_response(s, &rs, "create session");
    } else {
        st = BCD_ENET;
    }
    cJSON_Delete(arr);
    bcd__net_response_clear(&rs);
    return st;
}

static bcd_status s_session_set_status(bcd_store *s, const char *id, const char *status,
                                       struct bcd__session_row *out)
{
    struct sb *S = S_of(s);
    if (!lower_uuid(id))
        return bcd__fail(&s->err, BCD_ENOTFOUND, "session_not_found", "session %s not found", id);
    cJSON *b = cJSON_CreateObject();
    if (!b || !cJSON_AddStringToObject(b, "status", status)) {
        cJSON_Delete(b);
        return oom(s);
    }
    char *body = cJSON_PrintUnformatted(b);
    cJSON_Delete(b);
    struct bcd__buf u = {0};
    rest_url(S, &u, "sessions?select=id");
    add_eq(&u, "id", id);
    if (!body || u.oom) {
        free(body);
        bcd__buf_free(&u);
        return oom(s);
    }
    struct call c = {.api = API_REST, .method = BCD__NET_PATCH, .url = u.p, .prefer = "return=representation",
                     .body = body, .len = strlen(body), .idempotent = true, .max_response = SMALL_RESPONSE};
    struct bcd__net_response rs;
    bcd_status st = call2xx(s, &c, &rs, "update session");
    free(body);
    bcd__buf_free(&u);
    if (st != BCD_OK)
        return st;
    cJSON *arr = parse_body(s, &rs, cJSON_Array, "update session");
    bcd__net_response_clear(&rs);
    if (!arr)
        return BCD_ENET;
    bool found = arr->child != NULL;
    cJSON_Delete(arr);
    if (!found)
        return bcd__fail(&s->err, BCD_ENOTFOUND, "session_not_found", "session %s not found", id);
    if (!out)
        return BCD_OK;
    return s_session_get(s, id, out);
}

struct vec {
    void *p;
    size_t n, cap, size;
};

static void *vec_push(struct vec *v)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 8;
        void *p = realloc(v->p, cap * v->size);
        if (!p)
            return NULL;
        v->p = p;
        v->cap = cap;
    }
    return (char *)v->p + v->size * v->n++;
}

static bcd_status session_row_cb(bcd_store *s, const cJSON *row, void *user)
{
    struct bcd__session_row *r = vec_push(user);
    if (!r)
        return oom(s);
    read_session(row, r);
    return BCD_OK;
}

static bcd_status s_session_list(bcd_store *s, const char *user_id, struct bcd__session_row **out, size_t *n)
{
    bcd_status st = check_user(s, user_id);
    if (st != BCD_OK)
        return st;
    struct bcd__buf u = {0};
    rest_url(S_of(s), &u, "bcd_session_overview?select=" OVERVIEW_COLS);
    add_eq(&u, "user_id", user_id);
    bcd__buf_put(&u, "&order=created_at.asc,seq.asc");
    if (u.oom) {
        bcd__buf_free(&u);
        return oom(s);
    }
    struct vec v = {.size = sizeof(struct bcd__session_row)};
    st = get_rows(s, u.p, PAGE_ROWS, session_row_cb, &v, "list sessions");
    bcd__buf_free(&u);
    if (st != BCD_OK) {
        free(v.p);
        return st;
    }
    *out = v.p;
    *n = v.n;
    return BCD_OK;
}

/* ---- images ------------------------------------------------------------------------- */

static bcd_status image_row_cb(bcd_store *s, const cJSON *row, void *user)
{
    struct bcd__image_row *r = vec_push(user);
    if (!r)
        return oom(s);
    read_image(row, r);
    return BCD_OK;
}

static int by_angle_index(const void *pa, const void *pb)
{
    const struct bcd__image_row *a = pa, *b = pb;
    int x = bcd__angle_index(a->angle), y = bcd__angle_index(b->angle);
    if (x < 0)
        x = BCD__ANGLE_COUNT;
    if (y < 0)
        y = BCD__ANGLE_COUNT;
    if (x != y)
        return x < y ? -1 : 1;
    return (a->order_index > b->order_index) - (a->order_index < b->order_index);
}

/* Images of a session matching an optional extra filter ("&image_type=eq.front"). */
static bcd_status list_images(bcd_store *s, const char *session_id, const char *col, const char *val,
                              struct vec *v, const char *what)
{
    struct bcd__buf u = {0};
    rest_url(S_of(s), &u, "images?select=" IMAGE_COLS);
    add_eq(&u, "session_id", session_id);
    if (col)
        add_eq(&u, col, val);
    bcd__buf_put(&u, "&order=image_type.asc,order_index.asc");
    if (u.oom) {
        bcd__buf_free(&u);
        return oom(s);
    }
    bcd_status st = get_rows(s, u.p, PAGE_ROWS, image_row_cb, v, what);
    bcd__buf_free(&u);
    return st;
}

static bcd_status s_image_list(bcd_store *s, const char *session_id, struct bcd__image_row **out, size_t *n)
{
    struct vec v = {.size = sizeof(struct bcd__image_row)};
    bcd_status st = lower_uuid(session_id) ? list_images(s, session_id, NULL, NULL, &v, "list images") : BCD_OK;
    if (st != BCD_OK) {
        free(v.p);
        return st;
    }
    if (v.n)
        qsort(v.p, v.n, v.size, by_angle_index);
    *out = v.p;
    *n = v.n;
    return BCD_OK;
}

static char *image_body(const struct bcd__image_row *in, const char *id, int idx)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = o && cJSON_AddStringToObject(o, "id", id) && cJSON_AddStringToObject(o, "session_id", in->session_id) &&
              cJSON_AddStringToObject(o, "image_type", in->angle) && cJSON_AddNumberToObject(o, "order_index", idx) &&
              cJSON_AddStringToObject(o, "storage_path", in->storage_path);
    if (ok && in->content_type[0])
        ok = cJSON_AddStringToObject(o, "content_type", in->content_type) != NULL;
    if (ok && in->size_bytes >= 0)
        ok = cJSON_AddNumberToObject(o, "size_bytes", (double)in->size_bytes) != NULL;
    if (ok && in->sha256[0])
        ok = cJSON_AddStringToObject(o, "sha256", in->sha256) != NULL;
    char *txt = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return txt;
}

/* One round of the registration rules. *again: lost a race that "next index" may win
 * on the next round. */
static bcd_status register_round(bcd_store *s, const struct bcd__image_row *in, const char *id,
                                 struct bcd__image_row *out, bool *created, bool *again)
{
    *again = false;
    struct vec v = {.size = sizeof(struct bcd__image_row)};
    /* 1. idempotent per (session, path) */
    bcd_status st = list_images(s, in->session_id, "storage_path", in->storage_path, &v, "register image");
    if (st != BCD_OK)
        goto done;
    if (v.n) {
        *out = ((struct bcd__image_row *)v.p)[0];
        *created = strcmp(out->id, id) == 0; /* our own insert, whose answer was lost */
        goto done;
    }
    v.n = 0;
    st = list_images(s, in->session_id, "image_type", in->angle, &v, "register image");
    if (st != BCD_OK)
        goto done;
    int count = (int)v.n;
    int idx = in->order_index < 0 ? count : in->order_index;
    /* 3. the slot holds another path */
    for (size_t i = 0; i < v.n; i++) {
        const struct bcd__image_row *r = &((struct bcd__image_row *)v.p)[i];
        if (r->order_index != idx)
            continue;
        st = bcd__fail(&s->err, BCD_ECONFLICT, "slot_conflict",
                       "slot %s #%d of session %s already holds another image", in->angle, idx, in->session_id);
        /* the row's id is the server's text: only a UUID goes into the details (a
         * server's answer could quote anything, the service-role key included) */
        char details[256];
        if (lower_uuid(r->id))
            snprintf(details, sizeof details, "{\"angle\":\"%s\",\"order_index\":%d,\"existing_image_id\":\"%s\"}",
                     in->angle, idx, r->id);
        else
            snprintf(details, sizeof details, "{\"angle\":\"%s\",\"order_index\":%d,\"existing_image_id\":null}",
                     in->angle, idx);
        bcd__error_set_details(&s->err, details);
        goto done;
    }
    /* 4. contiguous order per (session, angle) */
    if (idx != count) {
        st = bcd__fail(&s->err, BCD_ECONFLICT, "order_index_out_of_sequence",
                       "order_index %d for %s is out of sequence: the next index is %d", idx, in->angle, count);
        char details[128];
        snprintf(details, sizeof details, "{\"angle\":\"%s\",\"order_index\":%d,\"expected_order_index\":%d}",
                 in->angle, idx, count);
        bcd__error_set_details(&s->err, details);
        goto done;
    }
    /* 5. insert; the unique constraints decide races */
    char *body = image_body(in, id, idx);
    struct bcd__buf u = {0};
    rest_url(S_of(s), &u, "images?select=" IMAGE_COLS);
    if (!body || u.oom) {
        free(body);
        bcd__buf_free(&u);
        st = oom(s);
        goto done;
    }
    struct call c = {.api = API_REST, .method = BCD__NET_POST, .url = u.p, .prefer = "return=representation",
                     .body = body, .len = strlen(body), .idempotent = true, .max_response = SMALL_RESPONSE};
    struct bcd__net_response rs;
    st = send_call(s, &c, &rs);
    free(body);
    if (st != BCD_OK) {
        bcd__buf_free(&u);
        goto done;
    }
    struct api_error e;
    parse_error(API_REST, &rs, &e);
    if (rs.status == 409 && strcmp(e.code, "23503") == 0) {
        st = bcd__fail(&s->err, BCD_ENOTFOUND, "session_not_found", "session %s not found", in->session_id);
    } else if (rs.status == 409 && strcmp(e.code, "23505") == 0) {
        *again = true; /* someone registered this path or took this slot meanwhile */
    } else if (!ok_status(rs.status)) {
        st = fail_response(s, &c, &rs, "register image");
    } else {
        cJSON *arr = parse_body(s, &rs, cJSON_Array, "register image");
        if (arr && arr->child) {
            read_image(arr->child, out);
            *created = true;
        } else {
            st = arr ? bad_response(s, &rs, "register image") : BCD_ENET;
        }
        cJSON_Delete(arr);
    }
    bcd__net_response_clear(&rs);
    bcd__buf_free(&u);
done:
    free(v.p);
    return st;
}

static bcd_status s_image_register(bcd_store *s, const struct bcd__image_row *in, struct bcd__image_row *out,
                                   bool *created)
{
    if (!lower_uuid(in->session_id))
        return bcd__fail(&s->err, BCD_ENOTFOUND, "session_not_found", "session %s not found", in->session_id);
    char id[BCD__ID_LEN];
    if (bcd__uuid_v4(id) != BCD_OK)
        return bcd__fail(&s->err, BCD_ERROR, "random_failure", "cannot generate an image id");
    struct bcd__image_row *row = malloc(sizeof *row);
    if (!row)
        return oom(s);
    bcd_status st = BCD_OK;
    bool again = true, read_back = false;
    bcd_error lost = {0};
    for (int round = 0; again && round < REGISTER_TRIES; round++) {
        *created = false;
        st = register_round(s, in, id, row, created, &again);
        if (st != BCD_OK && !read_back && lost_answer(s, st)) {
            /* every answer to the insert was lost or broken: it may have committed. One
             * more round reads by path first and finds our own row (same id) if so. */
            read_back = again = true;
            bcd__error_copy(&lost, &s->err);
            bcd__error_clear(&s->err);
            st = BCD_OK;
            continue;
        }
        if (st != BCD_OK)
            break;
    }
    if (read_back && st != BCD_OK && lost_answer(s, st)) {
        bcd__error_clear(&s->err); /* report the first transport failure */
        bcd__error_copy(&s->err, &lost);
    }
    bcd__error_clear(&lost);
    if (st == BCD_OK && again)
        st = bcd__fail(&s->err, BCD_ECONFLICT, "registration_contention",
                       "image registration in session %s kept colliding with concurrent registrations; try again",
                       in->session_id);
    if (st == BCD_OK)
        *out = *row;
    free(row);
    return st;
}

/* ---- blobs -------------------------------------------------------------------------- */

static const char *mime_of(const char *key)
{
    const char *dot = strrchr(key, '.');
    if (dot && (strcmp(dot, ".jpg") == 0 || strcmp(dot, ".jpeg") == 0))
        return "image/jpeg";
    if (dot && strcmp(dot, ".png") == 0)
        return "image/png";
    return "application/octet-stream";
}

/* A Storage key is relative, non-empty, without "//", "..", control characters or the
 * characters Storage refuses (wire doc 3.2). */
static bool valid_storage_key(const char *k)
{
    size_t n = k ? strlen(k) : 0;
    if (n == 0 || n >= BCD__PATH_MAX || k[0] == '/' || strstr(k, "//") || strstr(k, "../") ||
        strcmp(k, "..") == 0 || (n >= 3 && strcmp(k + n - 3, "/..") == 0))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)k[i];
        if (c < 0x20 || c >= 0x7f || strchr("%#~[]{}\"\\|^<>`", c))
            return false;
    }
    return true;
}

/* The object key a registered path names: a key of the bucket, or a URL of this
 * project's Storage for this bucket (public, authenticated or signed). */
static bcd_status resolve_key(bcd_store *s, const char *path, char *key, size_t cap)
{
    struct sb *S = S_of(s);
    const char *rel = path;
    if (strncmp(path, "http://", 7) == 0 || strncmp(path, "https://", 8) == 0) {
        static const char *const kinds[] = {"/storage/v1/object/public/", "/storage/v1/object/authenticated/",
                                            "/storage/v1/object/sign/", "/storage/v1/object/"};
        size_t ul = strlen(S->url), bl = strlen(S->bucket);
        rel = NULL;
        if (strncmp(path, S->url, ul) == 0) {
            for (size_t i = 0; i < sizeof kinds / sizeof kinds[0] && !rel; i++) {
                size_t kl = strlen(kinds[i]);
                const char *p = path + ul;
                if (strncmp(p, kinds[i], kl) == 0 && strncmp(p + kl, S->bucket, bl) == 0 && p[kl + bl] == '/')
                    rel = p + kl + bl + 1;
            }
        }
        if (!rel)
            return bcd__fail(&s->err, BCD_EUNSUPPORTED, "remote_image_unsupported",
                             "the supabase store reads images from its bucket %s only (%.200s)", S->bucket, path);
    }
    /* percent-decode (URLs), drop a query */
    size_t n = 0;
    for (const char *p = rel; *p && *p != '?' && *p != '#'; p++) {
        int c = (unsigned char)*p;
        if (c == '%' && isxdigit((unsigned char)p[1]) && isxdigit((unsigned char)p[2]) && rel != path) {
            char hx[3] = {p[1], p[2], 0};
            c = (int)strtol(hx, NULL, 16);
            p += 2;
        }
        if (n + 1 >= cap)
            return bcd__fail(&s->err, BCD_EINVAL, "path_too_long", "path too long");
        key[n++] = (char)c;
    }
    key[n] = '\0';
    if (!valid_storage_key(key))
        return bcd__fail(&s->err, BCD_ENOTFOUND, "image_file_missing",
                         "'%.200s' is not an object key of the bucket %s", path, S->bucket);
    return BCD_OK;
}

static bcd_status s_blob_put(bcd_store *s, const char *session_id, const char *sha, const char *ext,
                             const void *data, size_t len, char *key, bool *created)
{
    struct sb *S = S_of(s);
    if (!lower_uuid(session_id) || !bcd__blob_name_valid(sha, ext))
        return bcd__fail(&s->err, BCD_EINVAL, "invalid_argument", "invalid blob key parts");
    snprintf(key, BCD__PATH_MAX, "%s/%s.%s", session_id, sha, ext);
    /* checked before anything is sent: no object, no row */
    if (len > bcd__net_max_request(S->net))
        return bcd__fail(&s->err, BCD_ELIMIT, "image_file_too_large",
                         "the image is %zu bytes, over the upload limit of %zu bytes (BCD_HTTP_MAX_REQUEST_BYTES; "
                         "the bucket's own limit may be lower)", len, bcd__net_max_request(S->net));
    struct bcd__buf u = {0};
    storage_url(S, &u, "object", key);
    if (u.oom)
        return oom(s);
    /* content addressed: an object of that name holds these bytes already */
    struct call head = {.api = API_STORAGE, .method = BCD__NET_HEAD, .url = u.p, .accept = "*/*", .idempotent = true,
                        .max_response = SMALL_RESPONSE};
    struct bcd__net_response rs;
    bcd_status st = send_call(s, &head, &rs);
    if (st == BCD_OK && rs.status == 200) {
        bcd__net_response_clear(&rs);
        bcd__buf_free(&u);
        *created = false;
        return BCD_OK;
    }
    if (st == BCD_OK)
        bcd__net_response_clear(&rs);
    if (st != BCD_OK && st != BCD_ENET) {
        bcd__buf_free(&u);
        return st;
    }
    bcd__error_clear(&s->err);
    struct call c = {.api = API_STORAGE, .method = BCD__NET_POST, .url = u.p, .content_type = mime_of(key),
                     .extra = "x-upsert: true", .body = data, .len = len, .idempotent = true,
                     .max_response = SMALL_RESPONSE};
    st = call2xx(s, &c, &rs, "upload image");
    bcd__buf_free(&u);
    if (st != BCD_OK) {
        /* a lost or broken answer: the object may have landed; report it as ours so that
         * the caller's clean-up (blob_delete, which spares referenced objects) removes it */
        *created = st == BCD_ENET;
        return st;
    }
    bcd__net_response_clear(&rs);
    *created = true;
    return BCD_OK;
}

static bcd_status s_blob_delete(bcd_store *s, const char *key)
{
    struct sb *S = S_of(s);
    if (!valid_storage_key(key))
        return bcd__fail(&s->err, BCD_EINVAL, "invalid_argument", "not a blob key: %.200s", key);
    /* never remove a blob that an image row references */
    cJSON *arr = NULL;
    bcd_status st =
        get_array(s, "images?select=id&limit=1", "storage_path", key, SMALL_RESPONSE, "check blob references", &arr);
    if (st != BCD_OK)
        return st;
    bool referenced = arr->child != NULL;
    cJSON_Delete(arr);
    if (referenced)
        return BCD_OK;
    struct bcd__buf u = {0};
    struct bcd__net_response rs;
    storage_url(S, &u, "object", key);
    if (u.oom) {
        bcd__buf_free(&u);
        return oom(s);
    }
    struct call d = {.api = API_STORAGE, .method = BCD__NET_DELETE, .url = u.p, .idempotent = true,
                     .max_response = SMALL_RESPONSE};
    st = call2xx(s, &d, &rs, "delete blob");
    bcd__buf_free(&u);
    if (st == BCD_ENOTFOUND) {
        bcd__error_clear(&s->err);
        return BCD_OK;
    }
    if (st == BCD_OK)
        bcd__net_response_clear(&rs);
    return st;
}

static bcd_status s_blob_get_many(bcd_store *s, const char *const *paths, size_t n, size_t max_len,
                                  unsigned char **outs, size_t *lens, size_t *failed)
{
    struct sb *S = S_of(s);
    *failed = 0;
    if (n == 0)
        return BCD_OK;
    struct bcd__net_request *rq = calloc(n, sizeof *rq);
    struct bcd__net_response *rs = calloc(n, sizeof *rs);
    struct bcd__buf *urls = calloc(n, sizeof *urls);
    char *key = malloc(BCD__PATH_MAX);
    const char *h[4] = {S->h_apikey, S->h_auth ? S->h_auth : "Accept: */*", S->h_auth ? "Accept: */*" : NULL, NULL};
    bcd_status st = BCD_OK;
    if (!rq || !rs || !urls || !key) {
        st = oom(s);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if ((st = resolve_key(s, paths[i], key, BCD__PATH_MAX)) != BCD_OK) {
            *failed = i;
            goto done;
        }
        storage_url(S, &urls[i], "object/authenticated", key);
        if (urls[i].oom) {
            st = oom(s);
            goto done;
        }
        rq[i] = (struct bcd__net_request){.method = BCD__NET_GET, .url = urls[i].p, .headers = h, .idempotent = true,
                                          .max_response = max_len ? max_len : BCD__NET_MAX_RESPONSE,
                                          .classify = classify_storage};
    }
    size_t bad = 0;
    st = send_requests(s, rq, rs, n, &bad);
    if (st == BCD_ELIMIT)
        snprintf(s->err.code, sizeof s->err.code, "image_file_too_large");
    if (st != BCD_OK) {
        *failed = bad;
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (ok_status(rs[i].status))
            continue;
        struct call c = {.api = API_STORAGE, .method = BCD__NET_GET, .url = urls[i].p};
        st = fail_response(s, &c, &rs[i], "download image");
        if (st == BCD_ENOTFOUND)
            snprintf(s->err.message, sizeof s->err.message, "image %.200s is missing from the bucket %s", paths[i],
                     S->bucket);
        *failed = i;
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        outs[i] = rs[i].body;
        lens[i] = rs[i].len;
        rs[i].body = NULL;
    }
done:
    for (size_t i = 0; rs && urls && i < n; i++) {
        bcd__net_response_clear(&rs[i]);
        bcd__buf_free(&urls[i]);
    }
    free(rq);
    free(rs);
    free(urls);
    free(key);
    return st;
}

static bcd_status s_blob_get(bcd_store *s, const char *path, size_t max_len, unsigned char **out, size_t *len)
{
    size_t failed;
    return s_blob_get_many(s, &path, 1, max_len, out, len, &failed);
}

/* {URL}/storage/v1 + a server-relative signed URL (path decoded, query as is). */
static char *absolute_signed(struct sb *S, const char *rel)
{
    struct bcd__buf b = {0};
    bcd__buf_put(&b, S->url);
    bcd__buf_put(&b, "/storage/v1");
    size_t q = strcspn(rel, "?");
    char *path = bcd__strndup(rel, q);
    if (!path)
        return NULL;
    if (path[0] != '/')
        bcd__buf_put(&b, "/");
    bcd__net_buf_add_escaped(&b, path, true);
    free(path);
    bcd__buf_put(&b, rel + q);
    if (b.oom) {
        bcd__buf_free(&b);
        return NULL;
    }
    return b.p;
}

static bcd_status s_blob_locate_many(bcd_store *s, const char *const *paths, size_t n, char **urls,
                                     char **local_paths, int *expires_in)
{
    struct sb *S = S_of(s);
    *expires_in = -1;
    for (size_t i = 0; i < n; i++)
        urls[i] = local_paths[i] = NULL;
    if (n == 0)
        return BCD_OK;
    char *key = malloc(BCD__PATH_MAX);
    size_t *slot = calloc(n, sizeof *slot);
    cJSON *body = cJSON_CreateObject(), *arr = NULL;
    bcd_status st = BCD_OK;
    size_t asked = 0;
    if (!key || !slot || !body || !cJSON_AddNumberToObject(body, "expiresIn", SIGN_EXPIRES_S) ||
        !(arr = cJSON_AddArrayToObject(body, "paths"))) {
        st = oom(s);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        st = resolve_key(s, paths[i], key, BCD__PATH_MAX);
        if (st == BCD_EUNSUPPORTED) {
            /* registered as a URL elsewhere: hand it back as it is */
            bcd__error_clear(&s->err);
            if (!(urls[i] = bcd__strdup(paths[i]))) {
                st = oom(s);
                goto done;
            }
            st = BCD_OK;
            continue;
        }
        if (st == BCD_ENOTFOUND) { /* not a key of the bucket: missing */
            bcd__error_clear(&s->err);
            st = BCD_OK;
            continue;
        }
        if (st != BCD_OK)
            goto done;
        cJSON *k = cJSON_CreateString(key);
        if (!k || !cJSON_AddItemToArray(arr, k)) {
            cJSON_Delete(k);
            st = oom(s);
            goto done;
        }
        slot[asked++] = i;
    }
    if (asked) {
        char *txt = cJSON_PrintUnformatted(body);
        struct bcd__buf u = {0};
        storage_url(S, &u, "object/sign", NULL);
        if (!txt || u.oom) {
            free(txt);
            bcd__buf_free(&u);
            st = oom(s);
            goto done;
        }
        struct call c = {.api = API_STORAGE, .method = BCD__NET_POST, .url = u.p, .body = txt, .len = strlen(txt),
                         .idempotent = true};
        struct bcd__net_response rs;
        st = call2xx(s, &c, &rs, "sign image URLs");
        free(txt);
        bcd__buf_free(&u);
        if (st != BCD_OK)
            goto done;
        cJSON *res = parse_body(s, &rs, cJSON_Array, "sign image URLs");
        if (!res || (size_t)cJSON_GetArraySize(res) != asked) {
            if (res)
                bad_response(s, &rs, "sign image URLs");
            cJSON_Delete(res);
            bcd__net_response_clear(&rs);
            st = BCD_ENET;
            goto done;
        }
        bcd__net_response_clear(&rs);
        size_t j = 0;
        for (const cJSON *it = res->child; it; it = it->next, j++) {
            const cJSON *su = cJSON_GetObjectItemCaseSensitive(it, "signedURL");
            if (!cJSON_IsString(su) || !su->valuestring)
                continue; /* {"error": "...", "signedURL": null}: missing */
            if (!(urls[slot[j]] = absolute_signed(S, su->valuestring))) {
                cJSON_Delete(res);
                st = oom(s);
                goto done;
            }
            *expires_in = SIGN_EXPIRES_S;
        }
        cJSON_Delete(res);
    }
done:
    if (st != BCD_OK)
        for (size_t i = 0; i < n; i++) {
            free(urls[i]);
            urls[i] = NULL;
        }
    cJSON_Delete(body);
    free(slot);
    free(key);
    return st;
}

static bcd_status s_blob_locate(bcd_store *s, const char *path, char **url, char **local_path, int *expires_in)
{
    struct sb *S = S_of(s);
    char *key = malloc(BCD__PATH_MAX);
    if (!key)
        return oom(s);
    bcd_status st = resolve_key(s, path, key, BCD__PATH_MAX);
    if (st == BCD_EUNSUPPORTED) {
        free(key);
        bcd__error_clear(&s->err);
        if (!(*url = bcd__strdup(path)))
            return oom(s);
        *local_path = NULL;
        *expires_in = -1;
        return BCD_OK;
    }
    if (st != BCD_OK) {
        free(key);
        return st;
    }
    struct bcd__buf u = {0};
    storage_url(S, &u, "object/sign", key);
    free(key);
    if (u.oom) {
        bcd__buf_free(&u);
        return oom(s);
    }
    char body[48];
    snprintf(body, sizeof body, "{\"expiresIn\":%d}", SIGN_EXPIRES_S);
    struct call c = {.api = API_STORAGE, .method = BCD__NET_POST, .url = u.p, .body = body, .len = strlen(body),
                     .idempotent = true, .max_response = SMALL_RESPONSE};
    struct bcd__net_response rs;
    st = call2xx(s, &c, &rs, "sign image URL");
    bcd__buf_free(&u);
    if (st != BCD_OK)
        return st;
    cJSON *o = parse_body(s, &rs, cJSON_Object, "sign image URL");
    const cJSON *su = o ? cJSON_GetObjectItemCaseSensitive(o, "signedURL") : NULL;
    if (o && (!cJSON_IsString(su) || !su->valuestring)) {
        st = bad_response(s, &rs, "sign image URL");
    } else if (o) {
        if (!(*url = absolute_signed(S, su->valuestring)))
            st = oom(s);
        *local_path = NULL;
        *expires_in = SIGN_EXPIRES_S;
    } else {
        st = BCD_ENET;
    }
    cJSON_Delete(o);
    bcd__net_response_clear(&rs);
    return st;
}

static bcd_status s_blob_upload_url(bcd_store *s, const char *key, const char *content_type,
                                    struct bcd__upload_url *out)
{
    struct sb *S = S_of(s);
    if (!valid_storage_key(key))
        return bcd__fail(&s->err, BCD_EINVAL, "invalid_argument", "not a valid object key: %.200s", key);
    (void)content_type; /* checked by the bucket when the bytes arrive */
    struct bcd__buf u = {0};
    storage_url(S, &u, "object/upload/sign", key);
    if (u.oom) {
        bcd__buf_free(&u);
        return oom(s);
    }
    /* no x-upsert: the token creates the object once and cannot replace it */
    struct call c = {.api = API_STORAGE, .method = BCD__NET_POST, .url = u.p, .body = "{}", .len = 2,
                     .idempotent = true, .max_response = SMALL_RESPONSE};
    struct bcd__net_response rs;
    bcd_status st = call2xx(s, &c, &rs, "sign upload URL");
    bcd__buf_free(&u);
    if (st != BCD_OK)
        return st;
    cJSON *o = parse_body(s, &rs, cJSON_Object, "sign upload URL");
    const cJSON *url = o ? cJSON_GetObjectItemCaseSensitive(o, "url") : NULL;
    struct bcd__upload_url r = {0};
    r.expires_in = -1;
    if (o && (!cJSON_IsString(url) || !url->valuestring)) {
        st = bad_response(s, &rs, "sign upload URL");
    } else if (o) {
        r.upload_url = absolute_signed(S, url->valuestring);
        r.token = get_dup(o, "token");
        if (!r.token) { /* take it from the URL */
            const char *t = strstr(url->valuestring, "token=");
            if (t)
                r.token = bcd__strndup(t + 6, strcspn(t + 6, "&"));
        }
        if (!r.upload_url)
            st = oom(s);
    } else {
        st = BCD_ENET;
    }
    cJSON_Delete(o);
    bcd__net_response_clear(&rs);
    if (st != BCD_OK) {
        bcd__upload_url_clear(&r);
        return st;
    }
    *out = r;
    return BCD_OK;
}

/* ---- analyses ----------------------------------------------------------------------- */

/* Embedding as a JSON number array (cJSON raw node) and its checksum. */
static bool add_embedding(cJSON *o, const float *v, size_t dim)
{
    char *txt = bcd__embedding_to_json(v, dim);
    char sum[65];
    if (!txt || bcd__sha256_hex(txt, strlen(txt), sum) != BCD_OK) {
        free(txt);
        return false;
    }
    cJSON *raw = cJSON_CreateRaw(txt);
    free(txt);
    if (!raw || !cJSON_AddItemToObject(o, "embedding", raw)) {
        cJSON_Delete(raw);
        return false;
    }
    return cJSON_AddStringToObject(o, "checksum", sum) != NULL;
}

static cJSON *analysis_payload(const struct bcd__analysis *a, const char *save_id)
{
    cJSON *p = cJSON_CreateObject();
    bool ok = p != NULL;
    ok = ok && cJSON_AddStringToObject(p, "save_id", save_id);
    ok = ok && cJSON_AddNumberToObject(p, "overall_change_score", a->overall_change_score);
    ok = ok && cJSON_AddNumberToObject(p, "confidence", a->confidence);
    ok = ok && cJSON_AddStringToObject(p, "summary", a->summary ? a->summary : "");
    ok = ok && cJSON_AddStringToObject(p, "model", a->model);
    ok = ok && cJSON_AddNumberToObject(p, "dim", (double)a->dim);
    ok = ok && cJSON_AddNumberToObject(p, "baseline_sessions", a->baseline_sessions);
    if (ok) {
        cJSON *d = a->details_json ? cJSON_Parse(a->details_json) : cJSON_CreateNull();
        ok = d && cJSON_AddItemToObject(p, "details", d);
        if (!ok)
            cJSON_Delete(d);
    }
    cJSON *angles = ok ? cJSON_AddArrayToObject(p, "angles") : NULL;
    ok = ok && angles;
    for (size_t i = 0; ok && i < a->n_angles; i++) {
        const struct bcd__angle_analysis *g = &a->angles[i];
        cJSON *o = cJSON_CreateObject();
        ok = o && cJSON_AddItemToArray(angles, o);
        if (!ok) {
            cJSON_Delete(o);
            break;
        }
        ok = cJSON_AddStringToObject(o, "angle_type", g->angle) &&
             cJSON_AddNumberToObject(o, "change_score", g->change_score) &&
             cJSON_AddStringToObject(o, "summary", g->summary ? g->summary : "") &&
             cJSON_AddNumberToObject(o, "image_count", g->image_count) &&
             cJSON_AddNumberToObject(o, "baseline_sessions", g->baseline_sessions) &&
             cJSON_AddNumberToObject(o, "sharpness", g->sharpness) &&
             cJSON_AddNumberToObject(o, "blur_variance", g->blur_variance) &&
             cJSON_AddNumberToObject(o, "clipped_fraction", g->clipped_fraction) &&
             cJSON_AddNumberToObject(o, "quality", g->quality);
        if (ok && a->angle_vec[i])
            ok = add_embedding(o, a->angle_vec[i], a->dim);
    }
    if (ok && a->session_vec) {
        cJSON *e = cJSON_AddObjectToObject(p, "session_embedding");
        ok = e && add_embedding(e, a->session_vec, a->dim);
    }
    if (!ok) {
        cJSON_Delete(p);
        return NULL;
    }
    return p;
}

static bool job_from_json(const cJSON *j, struct bcd__job_row *row);

/* What the answer rs to the RPC call c says: *result the parsed body (NULL when empty),
 * or the failure recorded (see rpc_call()). */
static bcd_status rpc_answer(bcd_store *s, const struct call *c, const struct bcd__net_response *rs,
                             const char *notfound, const char *what, cJSON **result, struct bcd__job_row *held,
                             bool *held_ok)
{
    struct sb *S = S_of(s);
    bcd_status st = BCD_OK;
    struct api_error e;
    parse_error(API_REST, rs, &e);
    if (rs->status == 404 && strcmp(e.code, "PT404") == 0) {
        st = bcd__fail(&s->err, BCD_ENOTFOUND, notfound, "%s: %s", what,
                       strcmp(notfound, "session_not_found") == 0 ? "session not found" : "job not found");
        bcd__error_set_correlation_id(&s->err, rs->correlation_id);
    } else if (rs->status == 409 && strcmp(e.code, "PT409") == 0) {
        if (held) {
            cJSON *o = cJSON_ParseWithLength((const char *)rs->body, rs->len);
            const cJSON *h = cJSON_GetObjectItemCaseSensitive(o, "hint");
            cJSON *j = cJSON_IsString(h) && h->valuestring ? cJSON_Parse(h->valuestring) : NULL;
            bool got = job_from_json(j, held);
            if (held_ok)
                *held_ok = got;
            cJSON_Delete(j);
            cJSON_Delete(o);
        }
        st = bcd__fail(&s->err, BCD_ESTATE, "job_lease_lost", "%s: this worker no longer holds the job%s%s%s", what,
                       e.details[0] ? " (" : "", e.details, e.details[0] ? ")" : "");
        bcd__error_set_correlation_id(&s->err, rs->correlation_id);
        bcd__net_scrub(S->net, &s->err); /* the server's text may quote the key */
    } else if (rs->status == 400 && strcmp(e.code, "PT400") == 0) {
        st = bcd__fail(&s->err, BCD_EINVAL, "invalid_argument", "%s: %s", what,
                       e.message[0] ? e.message : "invalid argument");
        bcd__error_set_correlation_id(&s->err, rs->correlation_id);
        bcd__net_scrub(S->net, &s->err);
    } else if (!ok_status(rs->status)) {
        st = fail_response(s, c, rs, what);
    } else if (rs->len > 0) {
        *result = parse_body(s, rs, 0, what);
        if (!*result)
            st = BCD_ENET;
    }
    return st;
}

/* POST /rest/v1/rpc/<fn> with args (consumed). *result: the parsed answer (JSON null
 * included; NULL for an empty one). max_response: 0 for the default limit. notfound: the
 * error code of PT404 (session_not_found or job_not_found). PT400 is an invalid
 * argument; on PT409 (a job's lease lost) the job in the error's hint is put in *held
 * (when given) and *held_ok says whether there was one. */
static bcd_status rpc_call(bcd_store *s, const char *fn, cJSON *args, bool idempotent, size_t max_response,
                           const char *notfound, const char *what, cJSON **result, struct bcd__job_row *held,
                           bool *held_ok)
{
    struct sb *S = S_of(s);
    *result = NULL;
    if (held_ok)
        *held_ok = false;
    char *body = args ? cJSON_PrintUnformatted(args) : NULL;
    cJSON_Delete(args);
    struct bcd__buf u = {0};
    rest_url(S, &u, "rpc/");
    bcd__buf_put(&u, fn);
    if (!body || u.oom) {
        free(body);
        bcd__buf_free(&u);
        return oom(s);
    }
    struct call c = {.api = API_REST, .method = BCD__NET_POST, .url = u.p, .body = body, .len = strlen(body),
                     .idempotent = idempotent, .max_response = max_response};
    struct bcd__net_response rs;
    bcd_status st = send_call(s, &c, &rs);
    free(body);
    if (st == BCD_OK) {
        st = rpc_answer(s, &c, &rs, notfound, what, result, held, held_ok);
        bcd__net_response_clear(&rs);
    }
    bcd__buf_free(&u);
    return st;
}

/* The analysis functions: safe to call again (a save carries its save id). */
static bcd_status rpc(bcd_store *s, const char *fn, cJSON *args /* consumed */, cJSON **result, const char *what)
{
    return rpc_call(s, fn, args, true, 0, "session_not_found", what, result, NULL, NULL);
}

static bcd_status s_analysis_save(bcd_store *s, struct bcd__analysis *a, bool *overwritten)
{
    if (a->n_angles > BCD__ANGLE_COUNT || ((a->session_vec || a->n_angles) && a->dim == 0))
        return bcd__fail(&s->err, BCD_EINVAL, "invalid_argument", "malformed analysis");
    if (!lower_uuid(a->session_id))
        return bcd__fail(&s->err, BCD_ENOTFOUND, "session_not_found", "session %s not found", a->session_id);
    char save_id[BCD__ID_LEN];
    if (bcd__uuid_v4(save_id) != BCD_OK)
        return bcd__fail(&s->err, BCD_ERROR, "random_failure", "cannot generate a save id");
    cJSON *payload = analysis_payload(a, save_id);
    if (!payload)
        return oom(s);
    cJSON *args = cJSON_CreateObject();
    if (!args || !cJSON_AddItemToObject(args, "p_analysis", payload)) {
        cJSON_Delete(payload);
        cJSON_Delete(args);
        return oom(s);
    }
    if (!cJSON_AddStringToObject(args, "p_session_id", a->session_id)) {
        cJSON_Delete(args);
        return oom(s);
    }
    cJSON *res = NULL;
    bcd_status st = rpc(s, "bcd_save_analysis", args, &res, "save analysis");
    if (st != BCD_OK)
        return st;
    const cJSON *ca = cJSON_GetObjectItemCaseSensitive(res, "created_at");
    const cJSON *ow = cJSON_GetObjectItemCaseSensitive(res, "overwritten");
    if (!cJSON_IsObject(res) || !cJSON_IsString(ca) || !norm_ts(ca->valuestring, a->created_at) || !cJSON_IsBool(ow)) {
        cJSON_Delete(res);
        return bcd__fail(&s->err, BCD_ENET, "bad_response", "save analysis: unexpected answer of bcd_save_analysis");
    }
    *overwritten = cJSON_IsTrue(ow);
    cJSON_Delete(res);
    return BCD_OK;
}

static bcd_status embedding_error(bcd_store *s, bcd_status st, const char *session_id)
{
    if (st == BCD_ENOMEM)
        return oom(s);
    bcd__fail(&s->err, BCD_EFORMAT, "embedding_corrupt",
              "a stored embedding of session %s is malformed or fails its checksum", session_id);
    bcd__net_scrub(S_of(s)->net, &s->err); /* session_id may be the server's text */
    return BCD_EFORMAT;
}

static bcd_status not_analyzed(bcd_store *s, const char *session_id)
{
    return bcd__fail(&s->err, BCD_ENOTFOUND, "analysis_not_found", "session %s has not been analyzed", session_id);
}

/* The analysis of session_id from bcd_get_analysis's answer res (consumed). */
static bcd_status analysis_from(bcd_store *s, const char *session_id, cJSON *res, struct bcd__analysis *out)
{
    bcd_status st = BCD_OK;
    const cJSON *sa = cJSON_GetObjectItemCaseSensitive(res, "analysis");
    if (!cJSON_IsObject(sa)) {
        cJSON_Delete(res);
        return not_analyzed(s, session_id);
    }
    struct bcd__analysis a;
    memset(&a, 0, sizeof a);
    snprintf(a.session_id, sizeof a.session_id, "%s", session_id);
    a.overall_change_score = get_num(sa, "overall_change_score", 0);
    a.confidence = get_num(sa, "confidence", 0);
    a.summary = get_dup(sa, "summary");
    if (!a.summary)
        a.summary = bcd__strdup("");
    get_str(sa, "model", a.model, sizeof a.model);
    a.dim = get_dim(sa, "dim");
    a.baseline_sessions = get_int(sa, "baseline_sessions", 0);
    const cJSON *det = cJSON_GetObjectItemCaseSensitive(sa, "details");
    if (cJSON_IsObject(det))
        a.details_json = cJSON_PrintUnformatted(det);
    else if (cJSON_IsString(det)) /* a text column holding JSON */
        a.details_json = bcd__strdup(det->valuestring);
    get_ts(sa, "created_at", a.created_at);
    if (!a.summary)
        st = oom(s);

    const cJSON *angles = cJSON_GetObjectItemCaseSensitive(res, "angles");
    const cJSON *it;
    cJSON_ArrayForEach(it, angles)
    {
        if (st != BCD_OK || a.n_angles >= BCD__ANGLE_COUNT)
            break;
        struct bcd__angle_analysis *g = &a.angles[a.n_angles];
        get_str(it, "angle_type", g->angle, sizeof g->angle);
        if (bcd__angle_index(g->angle) < 0)
            continue;
        a.n_angles++;
        g->change_score = get_num(it, "change_score", 0);
        g->summary = get_dup(it, "summary");
        if (!g->summary)
            g->summary = bcd__strdup("");
        g->image_count = get_int(it, "image_count", 1);
        g->baseline_sessions = get_int(it, "baseline_sessions", 0);
        g->sharpness = get_num(it, "sharpness", 0);
        g->blur_variance = get_num(it, "blur_variance", 0);
        g->clipped_fraction = get_num(it, "clipped_fraction", 0);
        g->quality = get_num(it, "quality", 0);
        if (!g->summary)
            st = oom(s);
    }
    /* canonical angle order */
    for (size_t i = 1; st == BCD_OK && i < a.n_angles; i++)
        for (size_t j = i; j > 0 && bcd__angle_index(a.angles[j].angle) < bcd__angle_index(a.angles[j - 1].angle);
             j--) {
            struct bcd__angle_analysis t = a.angles[j];
            a.angles[j] = a.angles[j - 1];
            a.angles[j - 1] = t;
        }

    const cJSON *aembs = cJSON_GetObjectItemCaseSensitive(res, "angle_embeddings");
    cJSON_ArrayForEach(it, aembs)
    {
        if (st != BCD_OK)
            break;
        char angle[16], model[BCD__MODEL_MAX], sum[65];
        get_str(it, "angle", angle, sizeof angle);
        get_str(it, "model", model, sizeof model);
        get_str(it, "checksum", sum, sizeof sum);
        size_t d = get_dim(it, "dim");
        if (strcmp(model, a.model) != 0 || (d && d != a.dim))
            continue; /* of another model: not this analysis's */
        for (size_t i = 0; i < a.n_angles; i++) {
            if (strcmp(a.angles[i].angle, angle) != 0 || a.angle_vec[i])
                continue;
            size_t got = 0;
            bcd_status r = parse_embedding(cJSON_GetObjectItemCaseSensitive(it, "embedding"), a.dim, sum,
                                           &a.angle_vec[i], &got);
            if (r != BCD_OK)
                st = embedding_error(s, r, session_id);
            break;
        }
    }
    const cJSON *se = cJSON_GetObjectItemCaseSensitive(res, "session_embedding");
    if (st == BCD_OK && cJSON_IsObject(se)) {
        char model[BCD__MODEL_MAX], sum[65];
        get_str(se, "model", model, sizeof model);
        get_str(se, "checksum", sum, sizeof sum);
        size_t d = get_dim(se, "dim");
        if (strcmp(model, a.model) == 0 && (!d || d == a.dim)) {
            size_t got = 0;
            bcd_status r =
                parse_embedding(cJSON_GetObjectItemCaseSensitive(se, "embedding"), a.dim, sum, &a.session_vec, &got);
            if (r != BCD_OK)
                st = embedding_error(s, r, session_id);
        }
    }
    cJSON_Delete(res);
    if (st != BCD_OK) {
        bcd__analysis_clear(&a);
        return st;
    }
    *out = a;
    return BCD_OK;
}

static bcd_status s_analysis_get(bcd_store *s, const char *session_id, struct bcd__analysis *out)
{
    if (!lower_uuid(session_id))
        return not_analyzed(s, session_id);
    cJSON *args = cJSON_CreateObject();
    if (!args || !cJSON_AddStringToObject(args, "p_session_id", session_id)) {
        cJSON_Delete(args);
        return oom(s);
    }
    cJSON *res = NULL;
    bcd_status st = rpc(s, "bcd_get_analysis", args, &res, "read analysis");
    if (st != BCD_OK)
        return st;
    return analysis_from(s, session_id, res, out);
}

/* bcd_get_analysis of n sessions at once: the calls run in parallel (one at a time
 * through a test transport, which stops at the first failure). */
static bcd_status s_analysis_get_many(bcd_store *s, const char *const *ids, size_t n, struct bcd__analysis *outs,
                                      bool *found, size_t *failed)
{
    struct sb *S = S_of(s);
    *failed = 0;
    for (size_t i = 0; i < n; i++)
        found[i] = false;
    struct call *c = calloc(n ? n : 1, sizeof *c);
    struct call_headers *hb = calloc(n ? n : 1, sizeof *hb);
    struct bcd__net_request *rq = calloc(n ? n : 1, sizeof *rq);
    struct bcd__net_response *rs = calloc(n ? n : 1, sizeof *rs);
    char **body = calloc(n ? n : 1, sizeof *body);
    size_t *idx = calloc(n ? n : 1, sizeof *idx); /* request k reads ids[idx[k]] */
    struct bcd__buf u = {0};
    size_t m = 0, done = 0;
    bcd_status st = BCD_OK;
    rest_url(S, &u, "rpc/bcd_get_analysis");
    if (!c || !hb || !rq || !rs || !body || !idx || u.oom) {
        st = oom(s);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (!lower_uuid(ids[i]))
            continue; /* not an id the service has: never analyzed */
        cJSON *args = cJSON_CreateObject();
        if (!args || !cJSON_AddStringToObject(args, "p_session_id", ids[i]) ||
            !(body[m] = cJSON_PrintUnformatted(args))) {
            cJSON_Delete(args);
            st = oom(s);
            goto out;
        }
        cJSON_Delete(args);
        c[m] = (struct call){.api = API_REST, .method = BCD__NET_POST, .url = u.p, .body = body[m],
                             .len = strlen(body[m]), .idempotent = true};
        rq[m] = call_request(S, &c[m], &hb[m]);
        idx[m++] = i;
    }
    size_t bad = 0;
    st = send_requests(s, rq, rs, m, &bad);
    if (st != BCD_OK) {
        *failed = idx[bad];
        goto out;
    }
    for (; done < m; done++) {
        size_t i = idx[done];
        cJSON *res = NULL;
        st = rpc_answer(s, &c[done], &rs[done], "session_not_found", "read analysis", &res, NULL, NULL);
        if (st == BCD_OK)
            st = analysis_from(s, ids[i], res, &outs[i]);
        else
            cJSON_Delete(res);
        if (st == BCD_ENOTFOUND) { /* never analyzed, or removed meanwhile */
            bcd__error_clear(&s->err);
            st = BCD_OK;
            continue;
        }
        if (st != BCD_OK) {
            *failed = i;
            break;
        }
        found[i] = true;
    }
    if (st != BCD_OK)
        for (size_t i = 0; i < n; i++)
            if (found[i]) {
                bcd__analysis_clear(&outs[i]);
                found[i] = false;
            }
out:
    for (size_t k = 0; rs && k < m; k++)
        bcd__net_response_clear(&rs[k]);
    for (size_t k = 0; body && k < n; k++)
        free(body[k]);
    free(c);
    free(hb);
    free(rq);
    free(rs);
    free(body);
    free(idx);
    bcd__buf_free(&u);
    return st;
}

/* The details column alone: a row of a few kB instead of the analysis with its
 * embeddings (tens to hundreds of kB through bcd_get_analysis). Row security lets a user
 * read the analyses of their own sessions only. */
static bcd_status s_analysis_details(bcd_store *s, const char *session_id, char **details)
{
    if (!lower_uuid(session_id))
        return bcd__fail(&s->err, BCD_ENOTFOUND, "analysis_not_found", "session %s has not been analyzed",
                         session_id);
    cJSON *arr = NULL;
    bcd_status st = get_array(s, "session_analysis?select=details", "session_id", session_id, 0, "read analysis", &arr);
    if (st != BCD_OK)
        return st;
    if (!cJSON_IsObject(arr->child)) {
        cJSON_Delete(arr);
        return bcd__fail(&s->err, BCD_ENOTFOUND, "analysis_not_found", "session %s has not been analyzed",
                         session_id);
    }
    const cJSON *det = cJSON_GetObjectItemCaseSensitive(arr->child, "details");
    if (cJSON_IsObject(det) && !(*details = cJSON_PrintUnformatted(det)))
        st = oom(s);
    else if (cJSON_IsString(det) && !(*details = bcd__strdup(det->valuestring))) /* a text column holding JSON */
        st = oom(s);
    cJSON_Delete(arr);
    return st;
}

static bcd_status embedding_row_cb(bcd_store *s, const cJSON *row, void *user)
{
    struct vec *v = user;
    struct bcd__embedding e;
    memset(&e, 0, sizeof e);
    get_str(row, "session_id", e.session_id, sizeof e.session_id);
    get_str(row, "angle", e.angle, sizeof e.angle);
    get_str(row, "model", e.model, sizeof e.model);
    char sum[65];
    get_str(row, "checksum", sum, sizeof sum);
    size_t d = get_dim(row, "dim");
    bcd_status st = parse_embedding(cJSON_GetObjectItemCaseSensitive(row, "embedding"), d, sum, &e.vec, &e.dim);
    if (st != BCD_OK)
        return embedding_error(s, st, e.session_id);
    if (d)
        e.dim = d;
    struct bcd__embedding *slot = vec_push(v);
    if (!slot) {
        free(e.vec);
        return oom(s);
    }
    *slot = e;
    return BCD_OK;
}

static bcd_status s_embeddings_for_user(bcd_store *s, const char *user_id, const char *model,
                                        struct bcd__embedding **out, size_t *n)
{
    bcd_status st = check_user(s, user_id);
    if (st != BCD_OK)
        return st;
    struct bcd__buf u = {0};
    rest_url(S_of(s), &u, "bcd_user_embeddings?select=session_id,angle,model,dim,checksum,embedding");
    add_eq(&u, "user_id", user_id);
    if (model)
        add_eq(&u, "model", model);
    bcd__buf_put(&u, "&order=session_id.asc,angle.asc");
    if (u.oom) {
        bcd__buf_free(&u);
        return oom(s);
    }
    struct vec v = {.size = sizeof(struct bcd__embedding)};
    st = get_rows(s, u.p, EMBEDDING_PAGE_ROWS, embedding_row_cb, &v, "read embeddings");
    bcd__buf_free(&u);
    if (st != BCD_OK) {
        bcd__embeddings_free(v.p, v.n);
        return st;
    }
    *out = v.p;
    *n = v.n;
    return BCD_OK;
}

/* ---- analysis job queue ------------------------------------------------------------- */
/* The functions of supabase/migrations/20261125010000_bcd_jobs.sql (one transaction
 * each). PT400/PT404/PT409 arrive as HTTP 400/404/409. A claim is never sent again
 * (a lost answer would leave a job running under this worker until its lease ends); the
 * other calls may be: a repeated finish whose first call did commit answers 409 with
 * the job in the hint, which is recognised as our own outcome. */

static void job_str(const cJSON *o, const char *k, char *buf, size_t cap)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    buf[0] = '\0';
    if (cJSON_IsString(v) && v->valuestring)
        snprintf(buf, cap, "%s", v->valuestring);
}

/* A job JSON object into *j; false if it is not one. */
static bool job_from_json(const cJSON *o, struct bcd__job_row *j)
{
    memset(j, 0, sizeof *j);
    if (!cJSON_IsObject(o))
        return false;
    job_str(o, "id", j->id, sizeof j->id);
    job_str(o, "session_id", j->session_id, sizeof j->session_id);
    job_str(o, "user_id", j->user_id, sizeof j->user_id);
    job_str(o, "model", j->model, sizeof j->model);
    job_str(o, "status", j->status, sizeof j->status);
    j->attempts = get_int(o, "attempts", 0);
    j->max_attempts = get_int(o, "max_attempts", 0);
    job_str(o, "worker_id", j->worker_id, sizeof j->worker_id);
    get_ts(o, "lease_expires_at", j->lease_expires_at);
    get_ts(o, "run_after", j->run_after);
    job_str(o, "error_code", j->error_code, sizeof j->error_code);
    job_str(o, "error", j->error, sizeof j->error);
    get_ts(o, "created_at", j->created_at);
    get_ts(o, "updated_at", j->updated_at);
    get_ts(o, "started_at", j->started_at);
    get_ts(o, "finished_at", j->finished_at);
    return j->id[0] && j->status[0];
}

static bcd_status job_bad_answer(bcd_store *s, const char *what, const char *fn)
{
    return bcd__fail(&s->err, BCD_ENET, "bad_response", "%s: unexpected answer of %s", what, fn);
}

/* Argument helpers: false on out of memory. */
static bool arg_str(cJSON *a, const char *k, const char *v)
{
    return v ? cJSON_AddStringToObject(a, k, v) != NULL : cJSON_AddNullToObject(a, k) != NULL;
}

static bool arg_num(cJSON *a, const char *k, double v)
{
    return cJSON_AddNumberToObject(a, k, v) != NULL;
}

static bcd_status job_id_check(bcd_store *s, const char *job_id)
{
    if (!lower_uuid(job_id))
        return bcd__fail(&s->err, BCD_ENOTFOUND, "job_not_found", "job %.64s not found", job_id ? job_id : "(null)");
    return BCD_OK;
}

static bcd_status worker_check(bcd_store *s, const char *worker_id)
{
    if (!worker_id || !*worker_id || strlen(worker_id) >= BCD__JOB_WORKER_MAX)
        return bcd__fail(&s->err, BCD_EINVAL, "invalid_argument", "invalid worker id");
    return BCD_OK;
}

static bcd_status lease_check(bcd_store *s, int64_t lease_ms)
{
    if (lease_ms <= 0 || lease_ms > 86400000)
        return bcd__fail(&s->err, BCD_EINVAL, "invalid_argument", "the lease must be from 1 ms to one day");
    return BCD_OK;
}

/* The single job an answer is (or the "job" member of it): into *out. */
static bcd_status job_answer(bcd_store *s, const cJSON *j, struct bcd__job_row *out, const char *what,
                             const char *fn)
{
    struct bcd__job_row row;
    if (!job_from_json(j, &row))
        return job_bad_answer(s, what, fn);
    if (out)
        *out = row;
    return BCD_OK;
}

static bcd_status s_job_enqueue(bcd_store *s, const char *session_id, const char *user_id, const char *model,
                                int max_attempts, struct bcd__job_row *out, bool *created)
{
    bcd_status st = check_user(s, user_id);
    if (st != BCD_OK)
        return st;
    if (!lower_uuid(session_id))
        return bcd__fail(&s->err, BCD_ENOTFOUND, "session_not_found", "session %.64s not found",
                         session_id ? session_id : "(null)");
    if (max_attempts <= 0)
        max_attempts = BCD__JOB_DEFAULT_ATTEMPTS;
    if (max_attempts > BCD__JOB_MAX_ATTEMPTS)
        return bcd__fail(&s->err, BCD_EINVAL, "invalid_argument", "max_attempts must be from 1 to %d",
                         BCD__JOB_MAX_ATTEMPTS);
    cJSON *a = cJSON_CreateObject();
    if (!a || !arg_str(a, "p_session_id", session_id) || !arg_str(a, "p_user_id", user_id) ||
        !arg_str(a, "p_model", model && *model ? model : NULL) || !arg_num(a, "p_max_attempts", max_attempts)) {
        cJSON_Delete(a);
        return oom(s);
    }
    /* safe to send again: while the job is queued or running, enqueue answers it */
    cJSON *res = NULL;
    st = rpc_call(s, "bcd_enqueue_job", a, true, SMALL_RESPONSE, "session_not_found", "enqueue job", &res, NULL, NULL);
    if (st != BCD_OK)
        return st;
    const cJSON *cr = cJSON_GetObjectItemCaseSensitive(res, "created");
    if (!cJSON_IsBool(cr))
        st = job_bad_answer(s, "enqueue job", "bcd_enqueue_job");
    else
        st = job_answer(s, cJSON_GetObjectItemCaseSensitive(res, "job"), out, "enqueue job", "bcd_enqueue_job");
    if (st == BCD_OK && created)
        *created = cJSON_IsTrue(cr);
    cJSON_Delete(res);
    return st;
}

static bcd_status s_job_claim(bcd_store *s, const char *worker_id, int64_t lease_ms, struct bcd__job_row *out,
                              bool *claimed, int64_t *wait_ms)
{
    bcd_status st = worker_check(s, worker_id);
    if (st == BCD_OK)
        st = lease_check(s, lease_ms);
    if (st != BCD_OK)
        return st;
    cJSON *a = cJSON_CreateObject();
    if (!a || !arg_str(a, "p_worker_id", worker_id) || !arg_num(a, "p_lease_ms", (double)lease_ms)) {
        cJSON_Delete(a);
        return oom(s);
    }
    cJSON *res = NULL;
    /* not idempotent: a second claim would take a second job */
    st = rpc_call(s, "bcd_claim_job", a, false, SMALL_RESPONSE, "job_not_found", "claim job", &res, NULL, NULL);
    if (st != BCD_OK)
        return st;
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(res, "job");
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(res, "wait_ms");
    if (!cJSON_IsObject(res) || !cJSON_IsNumber(w) || !fits_i64(w->valuedouble) ||
        !(cJSON_IsNull(j) || cJSON_IsObject(j))) {
        cJSON_Delete(res);
        return job_bad_answer(s, "claim job", "bcd_claim_job");
    }
    bool got = cJSON_IsObject(j);
    if (got)
        st = job_answer(s, j, out, "claim job", "bcd_claim_job");
    if (st == BCD_OK) {
        if (claimed)
            *claimed = got;
        if (wait_ms)
            *wait_ms = got ? 0 : (int64_t)w->valuedouble;
    }
    cJSON_Delete(res);
    return st;
}

static bcd_status s_job_heartbeat(bcd_store *s, const char *job_id, const char *worker_id, int64_t lease_ms,
                                  struct bcd__job_row *out)
{
    bcd_status st = job_id_check(s, job_id);
    if (st == BCD_OK)
        st = worker_check(s, worker_id);
    if (st == BCD_OK)
        st = lease_check(s, lease_ms);
    if (st != BCD_OK)
        return st;
    cJSON *a = cJSON_CreateObject();
    if (!a || !arg_str(a, "p_job_id", job_id) || !arg_str(a, "p_worker_id", worker_id) ||
        !arg_num(a, "p_lease_ms", (double)lease_ms)) {
        cJSON_Delete(a);
        return oom(s);
    }
    cJSON *res = NULL;
    /* renewing twice is harmless */
    st = rpc_call(s, "bcd_heartbeat_job", a, true, SMALL_RESPONSE, "job_not_found", "renew job lease", &res, NULL,
                  NULL);
    if (st != BCD_OK)
        return st;
    st = job_answer(s, res, out, "renew job lease", "bcd_heartbeat_job");
    cJSON_Delete(res);
    return st;
}

/* complete (error_code NULL) or fail a job the caller holds. */
static bcd_status job_finish(bcd_store *s, const char *job_id, const char *worker_id, const char *error_code,
                             const char *error, int64_t retry_ms, struct bcd__job_row *out)
{
    bool done = error_code == NULL;
    const char *what = done ? "complete job" : "fail job";
    bcd_status st = job_id_check(s, job_id);
    if (st == BCD_OK)
        st = worker_check(s, worker_id);
    if (st != BCD_OK)
        return st;
    /* what the server stores (see bcd_finish_job), to recognise our own outcome */
    char code[64], msg[BCD__JOB_ERROR_MAX];
    snprintf(code, sizeof code, "%s", !done && *error_code ? error_code : "error");
    snprintf(msg, sizeof msg, "%s", !done && error && *error ? error : "unknown error");
    cJSON *a = cJSON_CreateObject();
    bool ok = a && arg_str(a, "p_job_id", job_id) && arg_str(a, "p_worker_id", worker_id) &&
              arg_str(a, "p_outcome", done ? "done" : "failed");
    if (ok && done)
        ok = arg_str(a, "p_error_code", NULL) && arg_str(a, "p_error", NULL) && cJSON_AddNullToObject(a, "p_retry_ms");
    else if (ok)
        ok = arg_str(a, "p_error_code", code) && arg_str(a, "p_error", msg) &&
             (retry_ms >= 0 ? arg_num(a, "p_retry_ms", (double)retry_ms)
                            : cJSON_AddNullToObject(a, "p_retry_ms") != NULL);
    if (!ok) {
        cJSON_Delete(a);
        return oom(s);
    }
    cJSON *res = NULL;
    struct bcd__job_row held;
    bool held_ok = false;
    st = rpc_call(s, "bcd_finish_job", a, true, SMALL_RESPONSE, "job_not_found", what, &res, &held, &held_ok);
    if (st == BCD_ESTATE && held_ok && strcmp(held.worker_id, worker_id) == 0) {
        /* a repeated call whose first one committed: the job shows our outcome */
        bool ours = done ? strcmp(held.status, "done") == 0
                         : (strcmp(held.status, "failed") == 0 || strcmp(held.status, "queued") == 0) &&
                               strcmp(held.error_code, code) == 0 && strncmp(held.error, msg, 1023) == 0;
        if (ours) {
            bcd__error_clear(&s->err);
            if (out)
                *out = held;
            return BCD_OK;
        }
    }
    if (st != BCD_OK)
        return st;
    st = job_answer(s, res, out, what, "bcd_finish_job");
    cJSON_Delete(res);
    return st;
}

static bcd_status s_job_complete(bcd_store *s, const char *job_id, const char *worker_id, struct bcd__job_row *out)
{
    return job_finish(s, job_id, worker_id, NULL, NULL, -1, out);
}

static bcd_status s_job_fail(bcd_store *s, const char *job_id, const char *worker_id, const char *error_code,
                             const char *error, int64_t retry_ms, struct bcd__job_row *out)
{
    return job_finish(s, job_id, worker_id, error_code ? error_code : "", error, retry_ms, out);
}

/* bcd_get_job by job id or by session id (the newest job of it). */
static bcd_status job_read(bcd_store *s, const char *job_id, const char *session_id, struct bcd__job_row *out)
{
    const char *id = job_id ? job_id : session_id;
    if (!lower_uuid(id))
        return bcd__fail(&s->err, BCD_ENOTFOUND, "job_not_found", "%s %.64s has no job", job_id ? "job" : "session",
                         id ? id : "(null)");
    cJSON *a = cJSON_CreateObject();
    if (!a || !arg_str(a, "p_job_id", job_id) || !arg_str(a, "p_session_id", job_id ? NULL : session_id)) {
        cJSON_Delete(a);
        return oom(s);
    }
    cJSON *res = NULL;
    bcd_status st = rpc_call(s, "bcd_get_job", a, true, SMALL_RESPONSE, "job_not_found", "read job", &res, NULL, NULL);
    if (st != BCD_OK)
        return st;
    if (!res || cJSON_IsNull(res))
        st = job_id ? bcd__fail(&s->err, BCD_ENOTFOUND, "job_not_found", "job %s not found", job_id)
                    : bcd__fail(&s->err, BCD_ENOTFOUND, "job_not_found", "session %s has no job", session_id);
    else
        st = job_answer(s, res, out, "read job", "bcd_get_job");
    cJSON_Delete(res);
    return st;
}

static bcd_status s_job_get(bcd_store *s, const char *job_id, struct bcd__job_row *out)
{
    return job_read(s, job_id ? job_id : "", NULL, out);
}

static bcd_status s_job_get_for_session(bcd_store *s, const char *session_id, struct bcd__job_row *out)
{
    return job_read(s, NULL, session_id ? session_id : "", out);
}

/* ---- open / close ------------------------------------------------------------------- */

static void s_close(bcd_store *s)
{
    struct sb *S = S_of(s);
    if (!S)
        return;
    bcd__net_free(S->net);
    free(S->url);
    free(S->bucket);
    bcd__free_secret(S->h_apikey);
    bcd__free_secret(S->h_auth);
    free(S);
    s->impl = NULL;
}

/* ---- deleting -------------------------------------------------------------------------- */

/* Keys of this session's objects named in an analysis's details (working copies, feature
 * maps, heatmaps): every string value of the form "<session_id>/<name>". */
static void details_keys(const cJSON *node, const char *session_id, char ***keys, size_t *n, bool *oom_flag)
{
    for (const cJSON *c = node; c; c = c->next) {
        if (cJSON_IsString(c) && c->valuestring && strncmp(c->valuestring, session_id, 36) == 0 &&
            c->valuestring[36] == '/' && valid_storage_key(c->valuestring)) {
            bool seen = false;
            for (size_t i = 0; i < *n && !seen; i++)
                seen = strcmp((*keys)[i], c->valuestring) == 0;
            if (!seen) {
                char **nk = realloc(*keys, (*n + 1) * sizeof *nk);
                char *k = nk ? bcd__strdup(c->valuestring) : NULL;
                if (nk)
                    *keys = nk;
                if (!k) {
                    *oom_flag = true;
                    return;
                }
                (*keys)[(*n)++] = k;
            }
        }
        if (c->child)
            details_keys(c->child, session_id, keys, n, oom_flag);
    }
}

static void keys_free(char **keys, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(keys[i]);
    free(keys);
}

/* The keys of the session's objects its analysis names; none when never analyzed. */
static bcd_status analysis_keys(bcd_store *s, const char *session_id, char ***keys, size_t *n)
{
    char *details = NULL;
    bcd_status st = s_analysis_details(s, session_id, &details);
    if (st == BCD_ENOTFOUND) {
        bcd__error_clear(&s->err);
        return BCD_OK;
    }
    if (st != BCD_OK || !details)
        return st;
    cJSON *d = cJSON_Parse(details);
    free(details);
    bool no_mem = false;
    if (d)
        details_keys(d, session_id, keys, n, &no_mem);
    cJSON_Delete(d);
    return no_mem ? oom(s) : BCD_OK;
}

/* Remove one stored object; one already gone is fine. */
static bcd_status delete_object(bcd_store *s, const char *key)
{
    struct sb *S = S_of(s);
    struct bcd__buf u = {0};
    struct bcd__net_response rs;
    storage_url(S, &u, "object", key);
    if (u.oom) {
        bcd__buf_free(&u);
        return oom(s);
    }
    struct call d = {.api = API_STORAGE, .method = BCD__NET_DELETE, .url = u.p, .idempotent = true,
                     .max_response = SMALL_RESPONSE};
    bcd_status st = call2xx(s, &d, &rs, "delete a stored image");
    bcd__buf_free(&u);
    if (st == BCD_ENOTFOUND) {
        bcd__error_clear(&s->err);
        return BCD_OK;
    }
    if (st == BCD_OK)
        bcd__net_response_clear(&rs);
    return st;
}

/* After the rows went: remove the objects in keys that no image row names any more. */
static bcd_status delete_unnamed(bcd_store *s, char **keys, size_t n, int *files)
{
    bcd_status st = BCD_OK;
    for (size_t i = 0; i < n && st == BCD_OK; i++) {
        cJSON *arr = NULL;
        st = get_array(s, "images?select=id&limit=1", "storage_path", keys[i], SMALL_RESPONSE, "check blob references",
                       &arr);
        if (st != BCD_OK)
            break;
        bool named = arr->child != NULL;
        cJSON_Delete(arr);
        if (!named && (st = delete_object(s, keys[i])) == BCD_OK)
            (*files)++;
    }
    return st;
}

/* Add the session's own objects among its images' paths to keys. */
static bcd_status image_keys(bcd_store *s, const char *session_id, char ***keys, size_t *n)
{
    struct bcd__image_row *imgs = NULL;
    size_t ni = 0;
    bcd_status st = s_image_list(s, session_id, &imgs, &ni);
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; st == BCD_OK && arr && i < ni; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateString(imgs[i].storage_path));
    bool no_mem = !arr;
    if (st == BCD_OK && arr)
        details_keys(arr->child, session_id, keys, n, &no_mem);
    cJSON_Delete(arr);
    free(imgs);
    return st == BCD_OK && no_mem ? oom(s) : st;
}

static bcd_status s_image_delete(bcd_store *s, const char *session_id, const char *angle, int order_index,
                                 struct bcd__image_row *out, bool *analysis_deleted, int *files)
{
    if (!lower_uuid(session_id))
        return bcd__fail(&s->err, BCD_ENOTFOUND, "image_not_found", "no %s image at that position in session %s",
                         angle, session_id);
    char **keys = NULL;
    size_t nk = 0;
    bcd_status st = analysis_keys(s, session_id, &keys, &nk);
    cJSON *args = st == BCD_OK ? cJSON_CreateObject() : NULL;
    if (st == BCD_OK && (!args || !cJSON_AddStringToObject(args, "p_session_id", session_id) ||
                         !cJSON_AddStringToObject(args, "p_image_type", angle) ||
                         !cJSON_AddNumberToObject(args, "p_order_index", order_index))) {
        cJSON_Delete(args);
        args = NULL;
        st = oom(s);
    }
    cJSON *res = NULL;
    /* not idempotent: a retry after a lost answer would delete the next photo */
    if (st == BCD_OK)
        st = rpc_call(s, "bcd_delete_image", args, false, 0, "session_not_found", "delete image", &res, NULL, NULL);
    if (st == BCD_OK && (!cJSON_IsObject(res) || !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(res, "image"))))
        st = bcd__fail(&s->err, BCD_ENOTFOUND, "image_not_found", "no %s image at that position in session %s",
                       angle, session_id);
    if (st == BCD_OK) {
        read_image(cJSON_GetObjectItemCaseSensitive(res, "image"), out);
        *analysis_deleted = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(res, "analysis_deleted"));
        char **nk2 = realloc(keys, (nk + 1) * sizeof *nk2);
        if (nk2) {
            keys = nk2;
            if (strncmp(out->storage_path, session_id, 36) == 0 && valid_storage_key(out->storage_path) &&
                (keys[nk] = bcd__strdup(out->storage_path)) != NULL)
                nk++;
        }
        st = delete_unnamed(s, keys, nk, files);
    }
    cJSON_Delete(res);
    keys_free(keys, nk);
    return st;
}

static bcd_status s_session_delete(bcd_store *s, const char *session_id, int *images, bool *analysis_deleted,
                                   int *files)
{
    struct bcd__session_row row;
    bcd_status st = s_session_get(s, session_id, &row);
    if (st != BCD_OK)
        return st;
    *images = (int)row.image_count;
    *analysis_deleted = row.analyzed;
    char **keys = NULL;
    size_t nk = 0;
    st = analysis_keys(s, row.id, &keys, &nk);
    if (st == BCD_OK)
        st = image_keys(s, row.id, &keys, &nk);
    /* one statement: images, analyses, embeddings and jobs go with it (on delete cascade) */
    struct bcd__buf u = {0};
    rest_url(S_of(s), &u, "sessions?select=id");
    add_eq(&u, "id", row.id);
    if (st == BCD_OK && u.oom)
        st = oom(s);
    if (st == BCD_OK) {
        struct call d = {.api = API_REST, .method = BCD__NET_DELETE, .url = u.p, .idempotent = true,
                         .max_response = SMALL_RESPONSE};
        struct bcd__net_response rs;
        st = call2xx(s, &d, &rs, "delete session");
        if (st == BCD_OK)
            bcd__net_response_clear(&rs);
    }
    bcd__buf_free(&u);
    for (size_t i = 0; st == BCD_OK && i < nk; i++)
        if ((st = delete_object(s, keys[i])) == BCD_OK)
            (*files)++;
    keys_free(keys, nk);
    return st;
}

static const struct bcd__store_ops supabase_ops = {
    .name = "supabase",
    .close = s_close,
    .session_create = s_session_create,
    .session_get = s_session_get,
    .session_set_status = s_session_set_status,
    .session_list = s_session_list,
    .image_list = s_image_list,
    .image_register = s_image_register,
    .blob_put = s_blob_put,
    .blob_delete = s_blob_delete,
    .blob_get = s_blob_get,
    .blob_locate = s_blob_locate,
    .analysis_save = s_analysis_save,
    .analysis_get = s_analysis_get,
    .analysis_get_many = s_analysis_get_many,
    .analysis_details = s_analysis_details,
    .embeddings_for_user = s_embeddings_for_user,
    .blob_get_many = s_blob_get_many,
    .blob_locate_many = s_blob_locate_many,
    .blob_upload_url = s_blob_upload_url,
    .job_enqueue = s_job_enqueue,
    .job_claim = s_job_claim,
    .job_heartbeat = s_job_heartbeat,
    .job_complete = s_job_complete,
    .job_fail = s_job_fail,
    .job_get = s_job_get,
    .job_get_for_session = s_job_get_for_session,
    .image_delete = s_image_delete,
    .session_delete = s_session_delete,
};

void bcd__store_supabase_set_transport(bcd_store *s, bcd__supabase_transport_fn fn, void *user)
{
    if (!s || s->ops != &supabase_ops)
        return;
    S_of(s)->transport = fn;
    S_of(s)->transport_user = user;
}

/* A legacy API key is a JWT (three base64url parts); new secret keys are not. */
static bool is_jwt(const char *k)
{
    int dots = 0;
    for (const char *p = k; *p; p++) {
        if (*p == '.')
            dots++;
        else if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
            return false;
    }
    return dots == 2 && strncmp(k, "eyJ", 3) == 0;
}

static char *header_line(const char *name, const char *prefix, const char *value)
{
    size_t n = strlen(name) + strlen(prefix) + strlen(value) + 3;
    char *h = malloc(n);
    if (h)
        snprintf(h, n, "%s: %s%s", name, prefix, value);
    return h;
}

bcd_status bcd__store_supabase_open(bcd_store **out, bcd_ctx *ctx, bcd_error *err)
{
    const char *url = bcd__cfg(ctx, BCD__CFG_SUPABASE_URL);
    const char *key = bcd__cfg(ctx, BCD__CFG_SUPABASE_SERVICE_ROLE_KEY);
    const char *bucket = bcd__cfg(ctx, BCD__CFG_SUPABASE_STORAGE_BUCKET);
    if (!url || !*url || !key || !*key)
        return bcd__fail(err, BCD_EINVAL, "supabase_not_configured",
                         "the supabase store needs SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY (%s is not set)",
                         !url || !*url ? "SUPABASE_URL" : "SUPABASE_SERVICE_ROLE_KEY");
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
        return bcd__fail(err, BCD_EINVAL, "invalid_config_value", "SUPABASE_URL must start with http:// or https://");
    for (const char *p = key; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return bcd__fail(err, BCD_EINVAL, "invalid_config_value",
                             "SUPABASE_SERVICE_ROLE_KEY contains a space or a control character");
    if (!bucket || !*bucket || strlen(bucket) > 100 || strchr(bucket, '/'))
        return bcd__fail(err, BCD_EINVAL, "invalid_config_value", "SUPABASE_STORAGE_BUCKET is not a bucket name");

    bcd_store *s = calloc(1, sizeof *s);
    struct sb *S = calloc(1, sizeof *S);
    if (!s || !S) {
        free(s);
        free(S);
        return bcd__fail(err, BCD_ENOMEM, "out_of_memory", "out of memory");
    }
    s->ops = &supabase_ops;
    s->ctx = ctx;
    s->impl = S;
    size_t ul = strlen(url);
    while (ul > 8 && url[ul - 1] == '/')
        ul--;
    S->url = bcd__strndup(url, ul);
    S->bucket = bcd__strdup(bucket);
    S->h_apikey = header_line("apikey", "", key);
    /* wire doc 1.3: a JWT key goes in both headers; a secret key only as apikey */
    if (is_jwt(key))
        S->h_auth = header_line("Authorization", "Bearer ", key);
    bcd_status st = BCD_OK;
    if (!S->url || !S->bucket || !S->h_apikey || (is_jwt(key) && !S->h_auth))
        st = bcd__fail(err, BCD_ENOMEM, "out_of_memory", "out of memory");
    if (st == BCD_OK)
        st = bcd__net_new(&S->net, ctx, NULL, err);
    if (st == BCD_OK && bcd__net_add_secret(S->net, key) != BCD_OK)
        st = bcd__fail(err, BCD_ENOMEM, "out_of_memory", "out of memory");
    if (st != BCD_OK) {
        bcd__store_close(s);
        return st;
    }
    *out = s;
    return BCD_OK;
}
