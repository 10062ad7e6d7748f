/* Service handle: opening the store, error detail, validation, JSON helpers. */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "service_internal.h"

bcd_status bcd_service_open(bcd_service **out, bcd_ctx *ctx)
{
    if (!out || !ctx)
        return BCD_EINVAL;
    bcd__ctx_clear(ctx);
    bcd_service *svc = calloc(1, sizeof *svc);
    if (!svc)
        return bcd__ctx_fail(ctx, BCD_ENOMEM, "out_of_memory", "out of memory");
    svc->ctx = ctx;
    bcd_error err;
    memset(&err, 0, sizeof err);
    bcd_status st = bcd__store_open(&svc->store, ctx, &err);
    if (st != BCD_OK) {
        bcd__error_copy(&ctx->err, &err);
        ctx->has_err = true;
        bcd__error_clear(&err);
        free(svc);
        return st;
    }
    *out = svc;
    return BCD_OK;
}

void bcd_service_free(bcd_service *svc)
{
    if (!svc)
        return;
    bcd__store_close(svc->store);
    bcd_embedder_free(svc->emb);
    free(svc->emb_spec);
    bcd__error_clear(&svc->err);
    free(svc);
}

const bcd_error *bcd_service_last_error(const bcd_service *svc)
{
    return svc && svc->has_err ? &svc->err : NULL;
}

void bcd__svc_clear(bcd_service *svc)
{
    bcd__ctx_clear(svc->ctx); /* so that a failure below is never confused with an old one */
    if (svc->has_err) {
        bcd__error_clear(&svc->err);
        svc->has_err = false;
    }
}

bcd_status bcd__svc_fail(bcd_service *svc, bcd_status st, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bcd__vfail(&svc->err, st, code, fmt, ap);
    va_end(ap);
    svc->has_err = true;
    return st;
}

void bcd__svc_details(bcd_service *svc, cJSON *details)
{
    if (!details)
        return;
    char *s = cJSON_PrintUnformatted(details);
    cJSON_Delete(details);
    if (s)
        bcd__error_set_details(&svc->err, s);
    free(s);
}

void bcd__svc_prefix(bcd_service *svc, const char *prefix)
{
    char msg[sizeof svc->err.message];
    size_t cap = sizeof msg - 1, p = strlen(prefix), m = strlen(svc->err.message);
    if (p > cap)
        p = cap;
    if (m > cap - p)
        m = cap - p;
    memcpy(msg, prefix, p);
    memcpy(msg + p, svc->err.message, m);
    msg[p + m] = '\0';
    memcpy(svc->err.message, msg, p + m + 1);
}

bcd_status bcd__svc_from_store(bcd_service *svc, bcd_status st)
{
    if (svc->store->err.status == st) {
        bcd__error_copy(&svc->err, &svc->store->err);
        svc->has_err = true;
        return st;
    }
    return bcd__svc_fail(svc, st, NULL, "store operation failed: %s", bcd_strerror(st));
}

bcd_status bcd__svc_from_ctx(bcd_service *svc, bcd_status st)
{
    const bcd_error *e = bcd_ctx_last_error(svc->ctx);
    if (e && e->status == st) {
        bcd__error_copy(&svc->err, e);
        svc->has_err = true;
        return st;
    }
    return bcd__svc_fail(svc, st, NULL, "%s", bcd_strerror(st));
}

bcd_status bcd__svc_check_user(bcd_service *svc, const char *user_id)
{
    if (!user_id || !*user_id)
        return bcd__svc_fail(svc, BCD_EINVAL, "invalid_user_id", "a user id is required");
    size_t n = strlen(user_id);
    if (n > BCD__USER_MAX)
        return bcd__svc_fail(svc, BCD_EINVAL, "invalid_user_id", "the user id is %zu bytes long, limit %d", n,
                             BCD__USER_MAX);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)user_id[i] < 0x20 || user_id[i] == 0x7f)
            return bcd__svc_fail(svc, BCD_EINVAL, "invalid_user_id", "the user id contains a control character");
    return BCD_OK;
}

bcd_status bcd__svc_check_session_id(bcd_service *svc, const char *session_id)
{
    if (!bcd__uuid_valid(session_id)) {
        bcd__svc_fail(svc, BCD_EINVAL, "invalid_session_id", "'%.64s' is not a session id (UUID expected)",
                      session_id ? session_id : "(null)");
        return BCD_EINVAL;
    }
    return BCD_OK;
}

bcd_status bcd__svc_check_angle(bcd_service *svc, const char *angle)
{
    if (bcd__angle_index(angle) < 0)
        return bcd__svc_fail(svc, BCD_EINVAL, "invalid_angle",
                             "unknown angle '%.32s': expected front, left, right, up, down or raised",
                             angle ? angle : "(null)");
    return BCD_OK;
}

bcd_status bcd__svc_owned_session(bcd_service *svc, const char *user_id, const char *session_id,
                                  struct bcd__session_row *row)
{
    bcd_status st = bcd__svc_check_user(svc, user_id);
    if (st == BCD_OK)
        st = bcd__svc_check_session_id(svc, session_id);
    if (st != BCD_OK)
        return st;
    /* UUIDs are compared in lower case: the store holds what bcd__uuid_v4 made */
    char id[BCD__ID_LEN];
    for (int i = 0; i < 36; i++)
        id[i] = (char)((session_id[i] >= 'A' && session_id[i] <= 'F') ? session_id[i] - 'A' + 'a' : session_id[i]);
    id[36] = '\0';
    st = bcd__store_session_get(svc->store, id, row);
    if (st == BCD_OK && strcmp(row->user_id, user_id) != 0)
        return bcd__svc_fail(svc, BCD_ENOTFOUND, "session_not_found", "session %s not found", id);
    if (st != BCD_OK)
        return bcd__svc_from_store(svc, st);
    return BCD_OK;
}

bcd_status bcd__svc_emit(bcd_service *svc, cJSON *root, bool ok, char **out)
{
    /* valid UTF-8 whatever a stored text or a file name held (see bcd__utf8_repair()) */
    char *s = ok && root ? bcd__utf8_repair(cJSON_PrintUnformatted(root)) : NULL;
    cJSON_Delete(root);
    if (!s)
        return bcd__svc_fail(svc, BCD_ENOMEM, "out_of_memory", "out of memory");
    *out = s;
    return BCD_OK;
}

double bcd__svc_round(double x)
{
    if (!isfinite(x))
        return x;
    double r = round(x * 1e6) / 1e6;
    return r == 0.0 ? 0.0 : r; /* no "-0" */
}

void bcd__j_str(bool *ok, cJSON *o, const char *k, const char *v)
{
    if (!(v ? cJSON_AddStringToObject(o, k, v) : cJSON_AddNullToObject(o, k)))
        *ok = false;
}

void bcd__j_num(bool *ok, cJSON *o, const char *k, double v)
{
    if (!cJSON_AddNumberToObject(o, k, bcd__svc_round(v)))
        *ok = false;
}

void bcd__j_int(bool *ok, cJSON *o, const char *k, double v)
{
    if (!cJSON_AddNumberToObject(o, k, v))
        *ok = false;
}

void bcd__j_bool(bool *ok, cJSON *o, const char *k, bool v)
{
    if (!cJSON_AddBoolToObject(o, k, v))
        *ok = false;
}

void bcd__j_null(bool *ok, cJSON *o, const char *k)
{
    if (!cJSON_AddNullToObject(o, k))
        *ok = false;
}

cJSON *bcd__j_obj(bool *ok, cJSON *o, const char *k)
{
    cJSON *c = cJSON_AddObjectToObject(o, k);
    if (!c)
        *ok = false;
    return c;
}

cJSON *bcd__j_arr(bool *ok, cJSON *o, const char *k)
{
    cJSON *c = cJSON_AddArrayToObject(o, k);
    if (!c)
        *ok = false;
    return c;
}

void bcd__j_push_str(bool *ok, cJSON *arr, const char *v)
{
    cJSON *s = cJSON_CreateString(v);
    if (!s || !arr || !cJSON_AddItemToArray(arr, s)) {
        cJSON_Delete(s);
        *ok = false;
    }
}

void bcd__j_raw(bool *ok, cJSON *o, const char *k, const char *json_text)
{
    cJSON *v = json_text ? cJSON_Parse(json_text) : NULL;
    if (!v)
        v = cJSON_CreateNull();
    if (!v || !o || !cJSON_AddItemToObject(o, k, v)) {
        cJSON_Delete(v);
        *ok = false;
    }
}
