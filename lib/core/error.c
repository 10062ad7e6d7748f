#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core.h"

static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= cap)
        n = cap - 1;
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

void bcd__error_clear(bcd_error *err)
{
    if (!err)
        return;
    free(err->details_json);
    memset(err, 0, sizeof *err);
}

bcd_status bcd__vfail(bcd_error *err, bcd_status status, const char *code, const char *fmt, va_list ap)
{
    if (!err)
        return status;
    bcd__error_clear(err);
    err->status = status;
    copy_str(err->code, sizeof err->code, code ? code : bcd_status_name(status));
    if (fmt)
        vsnprintf(err->message, sizeof err->message, fmt, ap);
    else
        copy_str(err->message, sizeof err->message, bcd_strerror(status));
    return status;
}

bcd_status bcd__fail(bcd_error *err, bcd_status status, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bcd__vfail(err, status, code, fmt, ap);
    va_end(ap);
    return status;
}

bcd_status bcd__ctx_fail(bcd_ctx *ctx, bcd_status status, const char *code, const char *fmt, ...)
{
    if (!ctx)
        return status;
    va_list ap;
    va_start(ap, fmt);
    bcd__vfail(&ctx->err, status, code, fmt, ap);
    va_end(ap);
    ctx->has_err = true;
    return status;
}

void bcd__error_set_details(bcd_error *err, const char *details_json)
{
    if (!err)
        return;
    free(err->details_json);
    err->details_json = details_json ? bcd__strdup(details_json) : NULL;
}

void bcd__error_set_correlation_id(bcd_error *err, const char *id)
{
    if (err)
        copy_str(err->correlation_id, sizeof err->correlation_id, id);
}

void bcd__error_copy(bcd_error *dst, const bcd_error *src)
{
    if (!dst || dst == src)
        return;
    bcd__error_clear(dst);
    if (!src)
        return;
    *dst = *src;
    dst->details_json = src->details_json ? bcd__strdup(src->details_json) : NULL;
}

void bcd__ctx_clear(bcd_ctx *ctx)
{
    if (ctx && ctx->has_err) {
        bcd__error_clear(&ctx->err);
        ctx->has_err = false;
    }
}

const bcd_error *bcd_ctx_last_error(const bcd_ctx *ctx)
{
    return ctx && ctx->has_err ? &ctx->err : NULL;
}

bcd_status bcd_error_status(const bcd_error *e)
{
    return e ? e->status : BCD_OK;
}

const char *bcd_error_code(const bcd_error *e)
{
    return e ? e->code : "ok";
}

const char *bcd_error_message(const bcd_error *e)
{
    return e ? e->message : "success";
}

const char *bcd_error_details_json(const bcd_error *e)
{
    return e ? e->details_json : NULL;
}

const char *bcd_error_correlation_id(const bcd_error *e)
{
    return e && e->correlation_id[0] ? e->correlation_id : NULL;
}

bcd_status bcd_error_json(char **out, const bcd_error *e)
{
    if (!out)
        return BCD_EINVAL;
    cJSON *root = cJSON_CreateObject();
    cJSON *inner = cJSON_AddObjectToObject(root, "error");
    if (!inner)
        goto nomem;
    cJSON_AddStringToObject(inner, "code", bcd_error_code(e));
    cJSON_AddStringToObject(inner, "message", bcd_error_message(e));
    cJSON *details = NULL;
    if (e && e->details_json)
        details = cJSON_Parse(e->details_json);
    if (!details)
        details = cJSON_CreateObject();
    cJSON_AddItemToObject(inner, "details", details);
    if (bcd_error_correlation_id(e))
        cJSON_AddStringToObject(inner, "correlation_id", e->correlation_id);
    else
        cJSON_AddNullToObject(inner, "correlation_id");
    char *s = bcd__utf8_repair(cJSON_PrintUnformatted(root)); /* a file name may be any bytes */
    cJSON_Delete(root);
    if (!s)
        return BCD_ENOMEM;
    *out = s;
    return BCD_OK;
nomem:
    cJSON_Delete(root);
    return BCD_ENOMEM;
}
