/* Store handle: backend choice, dispatch and helpers shared by backends. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "store.h"

const char *const bcd__angles[BCD__ANGLE_COUNT] = {"front", "left", "right", "up", "down", "raised"};

int bcd__angle_index(const char *angle)
{
    if (!angle)
        return -1;
    for (int i = 0; i < BCD__ANGLE_COUNT; i++)
        if (strcmp(bcd__angles[i], angle) == 0)
            return i;
    return -1;
}

void bcd__analysis_clear(struct bcd__analysis *a)
{
    if (!a)
        return;
    free(a->summary);
    free(a->details_json);
    free(a->session_vec);
    for (size_t i = 0; i < BCD__ANGLE_COUNT; i++) {
        free(a->angles[i].summary);
        free(a->angle_vec[i]);
    }
    memset(a, 0, sizeof *a);
}

void bcd__embeddings_free(struct bcd__embedding *e, size_t n)
{
    if (!e)
        return;
    for (size_t i = 0; i < n; i++)
        free(e[i].vec);
    free(e);
}

bcd_status bcd__store_open(bcd_store **out, bcd_ctx *ctx, bcd_error *err)
{
    const char *kind = bcd__cfg(ctx, BCD__CFG_STORE);
    if (!kind || strcmp(kind, "local") == 0)
        return bcd__store_local_open(out, ctx, NULL, 0, err);
    if (strcmp(kind, "supabase") == 0)
        return bcd__fail(err, BCD_EUNSUPPORTED, "store_unsupported",
                         "the supabase store is not available in this version of libbcd; "
                         "use BCD_STORE=local");
    return bcd__fail(err, BCD_EINVAL, "invalid_config_value", "BCD_STORE must be local or supabase, not '%s'",
                     kind);
}

void bcd__store_close(bcd_store *s)
{
    if (!s)
        return;
    if (s->ops && s->ops->close)
        s->ops->close(s);
    bcd__error_clear(&s->err);
    free(s);
}

#define DISPATCH(op, ...)                                                                                         \
    do {                                                                                                          \
        bcd__error_clear(&s->err);                                                                                \
        if (!s->ops->op)                                                                                          \
            return bcd__fail(&s->err, BCD_EUNSUPPORTED, "store_unsupported", "the %s store cannot " #op,         \
                             s->ops->name);                                                                       \
        return s->ops->op(s, __VA_ARGS__);                                                                        \
    } while (0)

bcd_status bcd__store_session_create(bcd_store *s, const char *user_id, struct bcd__session_row *out)
{
    DISPATCH(session_create, user_id, out);
}

bcd_status bcd__store_session_get(bcd_store *s, const char *session_id, struct bcd__session_row *out)
{
    DISPATCH(session_get, session_id, out);
}

bcd_status bcd__store_session_set_status(bcd_store *s, const char *session_id, const char *status,
                                         struct bcd__session_row *out)
{
    DISPATCH(session_set_status, session_id, status, out);
}

bcd_status bcd__store_session_list(bcd_store *s, const char *user_id, struct bcd__session_row **out, size_t *n)
{
    DISPATCH(session_list, user_id, out, n);
}

bcd_status bcd__store_image_list(bcd_store *s, const char *session_id, struct bcd__image_row **out, size_t *n)
{
    DISPATCH(image_list, session_id, out, n);
}

bcd_status bcd__store_image_register(bcd_store *s, const struct bcd__image_row *in, struct bcd__image_row *out,
                                     bool *created)
{
    DISPATCH(image_register, in, out, created);
}

bcd_status bcd__store_blob_put(bcd_store *s, const char *session_id, const char *sha256_hex, const char *ext,
                               const void *data, size_t len, char *key, bool *created)
{
    DISPATCH(blob_put, session_id, sha256_hex, ext, data, len, key, created);
}

bcd_status bcd__store_blob_delete(bcd_store *s, const char *key)
{
    DISPATCH(blob_delete, key);
}

bcd_status bcd__store_blob_get(bcd_store *s, const char *path, size_t max_len, unsigned char **out, size_t *len)
{
    DISPATCH(blob_get, path, max_len, out, len);
}

bcd_status bcd__store_blob_locate(bcd_store *s, const char *path, char **url, char **local_path, int *expires_in)
{
    DISPATCH(blob_locate, path, url, local_path, expires_in);
}

bcd_status bcd__store_analysis_save(bcd_store *s, struct bcd__analysis *a, bool *overwritten)
{
    DISPATCH(analysis_save, a, overwritten);
}

bcd_status bcd__store_analysis_get(bcd_store *s, const char *session_id, struct bcd__analysis *out)
{
    DISPATCH(analysis_get, session_id, out);
}

bcd_status bcd__store_embeddings_for_user(bcd_store *s, const char *user_id, const char *model,
                                          struct bcd__embedding **out, size_t *n)
{
    DISPATCH(embeddings_for_user, user_id, model, out, n);
}

void bcd__timestamp_now(char buf[BCD__TS_LEN])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, BCD__TS_LEN, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, BCD__TS_LEN - n, ".%06dZ", (int)(ts.tv_nsec / 1000) % 1000000);
}

bcd_status bcd__sha256_hex(const void *data, size_t len, char hex[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        return BCD_ERROR;
    static const char digits[] = "0123456789abcdef";
    for (unsigned int i = 0; i < 32; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[64] = '\0';
    return BCD_OK;
}

char *bcd__embedding_to_json(const float *v, size_t dim)
{
    /* "%.9g" round-trips every float; 16 bytes + separator per element is enough. */
    size_t cap = dim * 18 + 3;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    size_t n = 0;
    s[n++] = '[';
    for (size_t i = 0; i < dim; i++) {
        int w = snprintf(s + n, cap - n, "%s%.9g", i ? "," : "", (double)v[i]);
        if (w < 0 || (size_t)w >= cap - n) {
            free(s);
            return NULL;
        }
        n += (size_t)w;
    }
    s[n++] = ']';
    s[n] = '\0';
    return s;
}

bcd_status bcd__embedding_from_json(const char *text, size_t dim, float **out, size_t *dim_out)
{
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    if (!cJSON_IsArray(root)) {
        cJSON_Delete(root);
        return BCD_EFORMAT;
    }
    size_t n = (size_t)cJSON_GetArraySize(root);
    if (n == 0 || (dim && n != dim)) {
        cJSON_Delete(root);
        return BCD_EFORMAT;
    }
    float *v = malloc(n * sizeof *v);
    if (!v) {
        cJSON_Delete(root);
        return BCD_ENOMEM;
    }
    size_t i = 0;
    for (const cJSON *it = root->child; it; it = it->next, i++) {
        if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) || !isfinite((float)it->valuedouble)) {
            free(v);
            cJSON_Delete(root);
            return BCD_EFORMAT;
        }
        v[i] = (float)it->valuedouble;
    }
    cJSON_Delete(root);
    *out = v;
    if (dim_out)
        *dim_out = n;
    return BCD_OK;
}
