/* The JSON (and header) answers of PostgREST and Storage as the supabase store reads
 * them: every store operation runs against a transport (bcd__store_supabase_set_transport)
 * that answers its requests with responses taken from the input.
 * Input: byte 0 picks the operation (table `ops`), then one record per request:
 *   "<status>[ <content-range>]\n<body>" ended by a NUL byte (or the end of the input);
 * when the records run out, the transport fails as a dead network would (BCD_ENET). */
#include <bcd.h>

#include "fuzz.h"
#include "net/net.h"
#include "store/store.h"

#define USER "0b7c6a9e-3c1d-4e2f-8a5b-6c7d8e9f0a1b"
#define SESSION "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f"
#define JOB "2d3e4f5a-6b7c-4d8e-9f0a-1b2c3d4e5f6a"
#define SHA "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define KEY SESSION "/" SHA ".jpg"

static bcd_ctx *ctx;
static bcd_store *store;
static const uint8_t *in;
static size_t in_left;
static unsigned calls;

static bcd_status transport(void *user, const struct bcd__net_request *rq, struct bcd__net_response *rs,
                            bcd_error *err)
{
    (void)user;
    memset(rs, 0, sizeof *rs);
    snprintf(rs->correlation_id, sizeof rs->correlation_id, "fuzz-%u", calls++);
    rs->attempts = 1;
    FUZZ_CHECK(rq->url && strncmp(rq->url, "http://fuzz.invalid/", 20) == 0);
    if (!in_left)
        return bcd__fail(err, BCD_ENET, "network_error", "no more answers");
    const uint8_t *end = memchr(in, 0, in_left);
    size_t rec = end ? (size_t)(end - in) : in_left;
    const uint8_t *nl = memchr(in, '\n', rec);
    size_t head = nl ? (size_t)(nl - in) : rec;
    char line[96];
    snprintf(line, sizeof line, "%.*s", (int)(head < sizeof line - 1 ? head : sizeof line - 1), (const char *)in);
    char *sp = strchr(line, ' ');
    if (sp) {
        *sp = '\0';
        snprintf(rs->content_range, sizeof rs->content_range, "%s", sp + 1);
    }
    rs->status = strtol(line, NULL, 10);
    const uint8_t *body = nl ? nl + 1 : in + rec;
    size_t blen = (size_t)(in + rec - body);
    in += rec + (end ? 1 : 0);
    in_left -= rec + (end ? 1 : 0);
    size_t cap = rq->max_response ? rq->max_response : BCD__NET_MAX_RESPONSE;
    if (blen > cap)
        return bcd__fail(err, BCD_ELIMIT, "response_too_large", "too large");
    if (!(rs->body = (unsigned char *)fuzz_strndup(body, blen)))
        return bcd__fail(err, BCD_ENOMEM, "out_of_memory", "out of memory");
    rs->len = blen;
    if (rq->classify)
        (void)rq->classify(rs->status, rs->body, rs->len);
    return BCD_OK;
}

static void op_session(int v)
{
    struct bcd__session_row r;
    if (v == 0)
        bcd__store_session_get(store, SESSION, &r);
    else if (v == 1)
        bcd__store_session_create(store, USER, &r);
    else
        bcd__store_session_set_status(store, SESSION, "completed", &r);
}

static void op_lists(int v)
{
    if (v == 0) {
        struct bcd__session_row *rows = NULL;
        size_t n = 0;
        if (bcd__store_session_list(store, USER, &rows, &n) == BCD_OK)
            FUZZ_CHECK(n == 0 || rows);
        free(rows);
    } else if (v == 1) {
        struct bcd__image_row *rows = NULL;
        size_t n = 0;
        if (bcd__store_image_list(store, SESSION, &rows, &n) == BCD_OK)
            FUZZ_CHECK(n == 0 || rows);
        free(rows);
    } else {
        struct bcd__embedding *e = NULL;
        size_t n = 0;
        if (bcd__store_embeddings_for_user(store, USER, v == 2 ? "builtin" : NULL, &e, &n) == BCD_OK) {
            for (size_t i = 0; i < n; i++)
                FUZZ_CHECK(e[i].dim > 0 && e[i].vec);
            bcd__embeddings_free(e, n);
        }
    }
}

static void op_image(int v)
{
    struct bcd__image_row in_row = {0}, out;
    snprintf(in_row.session_id, sizeof in_row.session_id, "%s", SESSION);
    snprintf(in_row.angle, sizeof in_row.angle, "front");
    in_row.order_index = v - 1;
    snprintf(in_row.storage_path, sizeof in_row.storage_path, "%s", KEY);
    snprintf(in_row.content_type, sizeof in_row.content_type, "image/jpeg");
    in_row.size_bytes = 3;
    snprintf(in_row.sha256, sizeof in_row.sha256, "%s", SHA);
    bool created = false;
    bcd__store_image_register(store, &in_row, &out, &created);
}

static void op_blob(int v)
{
    static const char *const paths[] = {KEY, "http://fuzz.invalid/storage/v1/object/public/bcd-images/" KEY,
                                        "https://elsewhere.invalid/a.jpg", SESSION "/x.png"};
    char key[BCD__PATH_MAX];
    bool created = false;
    switch (v) {
    case 0:
        bcd__store_blob_put(store, SESSION, SHA, "jpg", "abc", 3, key, &created);
        break;
    case 1:
        bcd__store_blob_delete(store, KEY);
        break;
    case 2: {
        unsigned char *out = NULL;
        size_t len = 0;
        if (bcd__store_blob_get(store, paths[1], 1 << 16, &out, &len) == BCD_OK)
            FUZZ_CHECK(out && len <= 1 << 16);
        free(out);
        break;
    }
    case 3: {
        unsigned char *outs[2] = {0};
        size_t lens[2] = {0}, failed = 0;
        if (bcd__store_blob_get_many(store, paths, 2, 1 << 16, outs, lens, &failed) == BCD_OK)
            FUZZ_CHECK(outs[0] && outs[1]);
        free(outs[0]);
        free(outs[1]);
        break;
    }
    case 4: {
        char *url = NULL, *local = NULL;
        int exp = 0;
        if (bcd__store_blob_locate(store, paths[0], &url, &local, &exp) == BCD_OK)
            FUZZ_CHECK(url != NULL);
        free(url);
        free(local);
        break;
    }
    case 5: {
        char *urls[4] = {0}, *locals[4] = {0};
        int exp = 0;
        bcd__store_blob_locate_many(store, paths, 4, urls, locals, &exp);
        for (int i = 0; i < 4; i++) {
            free(urls[i]);
            free(locals[i]);
        }
        break;
    }
    default: {
        struct bcd__upload_url u = {0};
        if (bcd__store_blob_upload_url(store, KEY, "image/jpeg", &u) == BCD_OK)
            FUZZ_CHECK(u.upload_url != NULL);
        bcd__upload_url_clear(&u);
        break;
    }
    }
}

static void op_analysis(int v)
{
    struct bcd__analysis a;
    memset(&a, 0, sizeof a);
    if (v == 0) {
        if (bcd__store_analysis_get(store, SESSION, &a) == BCD_OK) {
            FUZZ_CHECK(a.n_angles <= BCD__ANGLE_COUNT && a.summary);
            bcd__analysis_clear(&a);
        }
        return;
    }
    if (v == 3) {
        /* read in parallel (one at a time through the transport): what is found is whole */
        static const char *const ids[] = {SESSION, "not-a-session", SESSION};
        struct bcd__analysis outs[3];
        bool found[3] = {false};
        size_t failed = 0;
        memset(outs, 0, sizeof outs);
        bcd_status st = bcd__store_analysis_get_many(store, ids, 3, outs, found, &failed);
        FUZZ_CHECK(!found[1]);
        for (int i = 0; i < 3; i++) {
            FUZZ_CHECK(st == BCD_OK || !found[i]);
            if (found[i]) {
                FUZZ_CHECK(outs[i].n_angles <= BCD__ANGLE_COUNT && outs[i].summary);
                bcd__analysis_clear(&outs[i]);
            }
        }
        FUZZ_CHECK(st == BCD_OK || failed < 3);
        return;
    }
    if (v == 2) {
        /* any answer: a status, and a string or NULL, never a crash or a leak */
        char *details = NULL;
        bcd_status st = bcd__store_analysis_details(store, SESSION, &details);
        FUZZ_CHECK(st == BCD_OK || !details);
        free(details);
        return;
    }
    static float vec[4] = {0.25f, -1.5f, 3.0f, 0.0f};
    snprintf(a.session_id, sizeof a.session_id, "%s", SESSION);
    snprintf(a.model, sizeof a.model, "builtin");
    a.summary = "fuzz";
    a.dim = 4;
    a.n_angles = 1;
    snprintf(a.angles[0].angle, sizeof a.angles[0].angle, "front");
    a.angles[0].summary = "front";
    a.angle_vec[0] = vec;
    a.session_vec = vec;
    bool overwritten = false;
    bcd__store_analysis_save(store, &a, &overwritten);
}

static void op_job(int v)
{
    struct bcd__job_row j;
    bool flag = false;
    int64_t wait = 0;
    switch (v) {
    case 0:
        bcd__store_job_enqueue(store, SESSION, USER, "builtin", 3, &j, &flag);
        break;
    case 1:
        bcd__store_job_claim(store, "worker-1", 60000, &j, &flag, &wait);
        break;
    case 2:
        bcd__store_job_heartbeat(store, JOB, "worker-1", 60000, &j);
        break;
    case 3:
        bcd__store_job_complete(store, JOB, "worker-1", &j);
        break;
    case 4:
        bcd__store_job_fail(store, JOB, "worker-1", "analysis_failed", "fuzz", v == 4 ? 1000 : -1, &j);
        break;
    case 5:
        bcd__store_job_get(store, JOB, &j);
        break;
    default:
        bcd__store_job_get_for_session(store, SESSION, &j);
        break;
    }
}

static const struct {
    void (*fn)(int v);
    int variants;
} ops[] = {{op_session, 3}, {op_lists, 4}, {op_image, 3}, {op_blob, 7}, {op_analysis, 4}, {op_job, 7}};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    bcd_error err = {0};
    if (bcd_ctx_new(&ctx) != BCD_OK || bcd_ctx_set(ctx, "SUPABASE_URL", "http://fuzz.invalid") != BCD_OK ||
        bcd_ctx_set(ctx, "SUPABASE_SERVICE_ROLE_KEY", "sb_secret_fuzz") != BCD_OK ||
        bcd__store_supabase_open(&store, ctx, &err) != BCD_OK)
        abort();
    bcd__store_supabase_set_transport(store, transport, NULL);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned pick = data[0], total = 0;
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        total += (unsigned)ops[i].variants;
    pick %= total;
    in = data + 1;
    in_left = size - 1;
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        if (pick < (unsigned)ops[i].variants) {
            ops[i].fn((int)pick);
            break;
        }
        pick -= (unsigned)ops[i].variants;
    }
    FUZZ_CHECK(store->err.status == BCD_OK || store->err.code[0]);
    /* the service-role key never appears in error text */
    FUZZ_CHECK(!strstr(store->err.message, "sb_secret_fuzz"));
    FUZZ_CHECK(!store->err.details_json || !strstr(store->err.details_json, "sb_secret_fuzz"));
    return 0;
}
