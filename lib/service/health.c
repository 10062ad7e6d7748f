/* Health check (the seeds' GET / and GET /health): version, store reachable with a
 * current schema (and writable, for the local store), model loadable, Supabase reachable
 * when configured. Each check runs on its own and reports its own status, so one failure
 * never hides another. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bcd/embed.h"
#include "net/net.h"
#include "service_internal.h"

/* A session id no store holds (UUID v4 shape, all zero): reading it exercises the
 * connection, the credentials and the sessions table without changing anything. */
#define PROBE_SESSION_ID "00000000-0000-4000-8000-000000000000"
/* Path of the public JWKS document under SUPABASE_URL (as lib/auth fetches it). */
#define JWKS_PATH "/auth/v1/.well-known/jwks.json"

/* {"status":"down","error":{"status","code","message"}} on check c. */
static void down(bool *ok, cJSON *c, const bcd_error *e, bcd_status fallback)
{
    bcd__j_str(ok, c, "status", "down");
    cJSON *err = bcd__j_obj(ok, c, "error");
    bcd_status st = e && e->status ? e->status : fallback;
    bcd__j_str(ok, err, "status", bcd_status_name(st));
    bcd__j_str(ok, err, "code", e && e->code[0] ? e->code : bcd_status_name(st));
    bcd__j_str(ok, err, "message", e && e->message[0] ? e->message : bcd_strerror(st));
}

/* Create, write and remove a file in dir: the blob folder takes new photos. */
static bcd_status probe_write(bcd_error *err, const char *dir)
{
    char path[4200];
    if ((size_t)snprintf(path, sizeof path, "%s/.health-XXXXXX", dir) >= sizeof path)
        return bcd__fail(err, BCD_EINVAL, "path_too_long", "data directory path is too long");
    int fd = mkstemp(path);
    if (fd < 0)
        return bcd__fail(err, BCD_EIO, "store_unwritable", "cannot create a file in %s: %s", dir, strerror(errno));
    bool ok = write(fd, "ok", 2) == 2;
    int e = errno;
    ok = close(fd) == 0 && ok;
    unlink(path);
    if (!ok)
        return bcd__fail(err, BCD_EIO, "store_unwritable", "cannot write a file in %s: %s", dir, strerror(e));
    return BCD_OK;
}

static void check_store(bool *ok, bool *healthy, cJSON *c, bcd_ctx *ctx)
{
    const char *kind = bcd__cfg(ctx, BCD__CFG_STORE);
    bcd__j_str(ok, c, "backend", kind && *kind ? kind : "local");
    bcd__j_bool(ok, c, "required", true);
    bcd_store *s = NULL;
    bcd_error err;
    memset(&err, 0, sizeof err);
    /* opening the local store creates it if needed and migrates its schema to the current
     * version, as every operation does; a newer or foreign schema fails here */
    bcd_status st = bcd__store_open(&s, ctx, &err);
    if (st != BCD_OK) {
        down(ok, c, &err, st);
        *healthy = false;
        bcd__error_clear(&err);
        return;
    }
    struct bcd__session_row row;
    st = bcd__store_session_get(s, PROBE_SESSION_ID, &row);
    if (st != BCD_OK && st != BCD_ENOTFOUND) {
        down(ok, c, &s->err, st);
        *healthy = false;
        bcd__store_close(s);
        return;
    }
    const char *db = bcd__store_local_db_path(s);
    if (db) {
        char dir[4096];
        const char *slash = strrchr(db, '/');
        size_t n = slash ? (size_t)(slash - db) : 0;
        snprintf(dir, sizeof dir, "%.*s/blobs", (int)(n < 4000 ? n : 4000), db);
        dir[strlen(dir) - strlen("/blobs")] = '\0';
        bcd__j_str(ok, c, "data_dir", dir);
        strcat(dir, "/blobs");
        bcd__j_int(ok, c, "schema_version", bcd__store_local_schema_version());
        st = probe_write(&err, dir);
        if (st != BCD_OK) {
            down(ok, c, &err, st);
            *healthy = false;
            bcd__error_clear(&err);
            bcd__store_close(s);
            return;
        }
    }
    bcd__j_str(ok, c, "status", "ok");
    bcd__store_close(s);
}

static void check_model(bool *ok, bool *healthy, cJSON *c, bcd_ctx *ctx)
{
    const char *spec = bcd__cfg(ctx, BCD__CFG_MODEL);
    bcd__j_str(ok, c, "model", spec && *spec ? spec : "builtin");
    bcd__j_bool(ok, c, "required", true);
    bcd_embedder *e = NULL;
    bcd_status st = bcd_embedder_open(&e, ctx, NULL);
    if (st != BCD_OK) {
        down(ok, c, bcd_ctx_last_error(ctx), st);
        *healthy = false;
        return;
    }
    bcd__j_str(ok, c, "name", bcd_embedder_name(e));
    bcd__j_int(ok, c, "dim", (double)bcd_embedder_dim(e));
    bcd__j_str(ok, c, "status", "ok");
    bcd_embedder_free(e);
}

/* The project's public key set: what token verification needs, and no key is sent. */
static void check_supabase(bool *ok, bool *healthy, cJSON *c, bcd_ctx *ctx)
{
    const char *url = bcd__cfg(ctx, BCD__CFG_SUPABASE_URL);
    if (!url || !*url) {
        bcd__j_str(ok, c, "status", "not_configured");
        bcd__j_bool(ok, c, "required", false);
        return;
    }
    bcd__j_bool(ok, c, "required", true);
    struct bcd__buf u = {0};
    size_t n = strlen(url);
    while (n && url[n - 1] == '/')
        n--;
    bcd__buf_putn(&u, url, n);
    bcd__buf_put(&u, JWKS_PATH);
    bcd_error err;
    memset(&err, 0, sizeof err);
    bcd__net *net = NULL;
    /* one attempt: a health check answers now, it does not wait out an outage */
    const struct bcd__net_options opts = {.max_attempts = 1};
    bcd_status st = u.oom ? BCD_ENOMEM : bcd__net_new(&net, ctx, &opts, &err);
    struct bcd__net_response rs;
    memset(&rs, 0, sizeof rs);
    if (st == BCD_OK) {
        const char *const headers[] = {"Accept: application/json", NULL};
        const struct bcd__net_request rq = {.method = BCD__NET_GET, .url = u.p, .headers = headers,
                                            .idempotent = true, .max_response = 1u << 20};
        st = bcd__net_request(net, &rq, &rs, &err);
    }
    if (st == BCD_OK) {
        bcd__j_int(ok, c, "http_status", (double)rs.status);
        if (rs.status != 200) {
            bcd__fail(&err, BCD_ENET, "supabase_http_status", "GET %s answered HTTP %ld", JWKS_PATH, rs.status);
            if (rs.correlation_id[0])
                bcd__error_set_correlation_id(&err, rs.correlation_id);
            st = BCD_ENET;
        }
    }
    if (st != BCD_OK) {
        down(ok, c, &err, st);
        *healthy = false;
    } else {
        bcd__j_str(ok, c, "status", "ok");
    }
    bcd__net_response_clear(&rs);
    bcd__net_free(net);
    bcd__error_clear(&err);
    bcd__buf_free(&u);
}

bcd_status bcd_health(char **out, bcd_ctx *ctx)
{
    if (!ctx)
        return BCD_EINVAL;
    bcd__ctx_clear(ctx);
    if (!out)
        return bcd__ctx_fail(ctx, BCD_EINVAL, "invalid_argument", "out is NULL");
    bool ok = true, healthy = true;
    cJSON *o = cJSON_CreateObject();
    bcd__j_str(&ok, o, "status", "ok"); /* replaced below when a check is down */
    bcd__j_bool(&ok, o, "ok", true);
    bcd__j_str(&ok, o, "version", bcd_version());
    bcd__j_int(&ok, o, "version_number", bcd_version_number());
    cJSON *checks = bcd__j_obj(&ok, o, "checks");
    check_store(&ok, &healthy, bcd__j_obj(&ok, checks, "store"), ctx);
    check_model(&ok, &healthy, bcd__j_obj(&ok, checks, "model"), ctx);
    check_supabase(&ok, &healthy, bcd__j_obj(&ok, checks, "supabase"), ctx);
    bcd__ctx_clear(ctx); /* the checks' failures are in the document, not failures of the call */
    if (!healthy && o) {
        cJSON_ReplaceItemInObject(o, "status", cJSON_CreateString("down"));
        cJSON_ReplaceItemInObject(o, "ok", cJSON_CreateBool(false));
    }
    char *s = ok && o ? bcd__utf8_repair(cJSON_PrintUnformatted(o)) : NULL;
    cJSON_Delete(o);
    if (!s)
        return bcd__ctx_fail(ctx, BCD_ENOMEM, "out_of_memory", "out of memory");
    *out = s;
    return BCD_OK;
}
