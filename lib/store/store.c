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
        return bcd__store_supabase_open(out, ctx, err);
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

bcd_status bcd__store_image_delete(bcd_store *s, const char *session_id, const char *angle, int order_index,
                                   struct bcd__image_row *out, bool *analysis_deleted, int *files)
{
    *analysis_deleted = false;
    *files = 0;
    DISPATCH(image_delete, session_id, angle, order_index, out, analysis_deleted, files);
}

bcd_status bcd__store_session_delete(bcd_store *s, const char *session_id, int *images, bool *analysis_deleted,
                                     int *files)
{
    *images = 0;
    *analysis_deleted = false;
    *files = 0;
    DISPATCH(session_delete, session_id, images, analysis_deleted, files);
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

/* The SHA-256 a blob key names ("<session uuid>/<64 hex>.<ext>", as blob_put makes them
 * on every backend) into hex[65]; false for a path that is not such a key (a registered
 * absolute path, URL or seed storage path: nothing to check it against). */
static bool key_digest(const char *path, char hex[65])
{
    if (!path || strlen(path) < 37 + 66 || path[36] != '/')
        return false;
    char id[37], ext[16];
    memcpy(id, path, 36);
    id[36] = '\0';
    const char *name = path + 37;
    if (!bcd__uuid_valid(id) || name[64] != '.' || strlen(name + 65) >= sizeof ext)
        return false;
    memcpy(hex, name, 64);
    hex[64] = '\0';
    snprintf(ext, sizeof ext, "%s", name + 65);
    return bcd__blob_name_valid(hex, ext);
}

/* A content-addressed blob read back must hash to its name: a damaged or replaced file
 * is never analyzed as if it were the photo that was added. Adding the original photo
 * again repairs it (blob_put replaces a file whose bytes differ). */
static bcd_status verify_blob(bcd_store *s, const char *path, const unsigned char *data, size_t len)
{
    char want[65], got[65];
    if (!key_digest(path, want))
        return BCD_OK;
    if (bcd__sha256_hex(data, len, got) != BCD_OK)
        return bcd__fail(&s->err, BCD_ERROR, "digest_failure", "cannot compute a checksum");
    if (strcmp(want, got) == 0)
        return BCD_OK;
    bcd__fail(&s->err, BCD_EFORMAT, "blob_corrupt",
              "the stored image file %.200s does not hold the bytes it was added with (damaged or replaced on "
              "disk: its SHA-256 is %.12s..., its name says %.12s...); add the original photo again to repair it",
              path, got, want);
    bcd__error_set_details(&s->err, "{\"reason\":\"checksum_mismatch\"}");
    return BCD_EFORMAT;
}

bcd_status bcd__store_blob_get(bcd_store *s, const char *path, size_t max_len, unsigned char **out, size_t *len)
{
    bcd__error_clear(&s->err);
    if (!s->ops->blob_get)
        return bcd__fail(&s->err, BCD_EUNSUPPORTED, "store_unsupported", "the %s store cannot blob_get",
                         s->ops->name);
    unsigned char *data = NULL;
    size_t n = 0;
    bcd_status st = s->ops->blob_get(s, path, max_len, &data, &n);
    if (st == BCD_OK && (st = verify_blob(s, path, data, n)) != BCD_OK) {
        free(data);
        return st;
    }
    if (st == BCD_OK) {
        *out = data;
        *len = n;
    }
    return st;
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

bcd_status bcd__store_analysis_details(bcd_store *s, const char *session_id, char **details)
{
    bcd__error_clear(&s->err);
    *details = NULL;
    if (s->ops->analysis_details)
        return s->ops->analysis_details(s, session_id, details);
    struct bcd__analysis a = {0};
    bcd_status st = bcd__store_analysis_get(s, session_id, &a);
    if (st == BCD_OK) {
        *details = a.details_json;
        a.details_json = NULL;
    }
    bcd__analysis_clear(&a);
    return st;
}

bcd_status bcd__store_analysis_get_many(bcd_store *s, const char *const *ids, size_t n, struct bcd__analysis *outs,
                                        bool *found, size_t *failed)
{
    bcd__error_clear(&s->err);
    *failed = 0;
    if (s->ops->analysis_get_many)
        return s->ops->analysis_get_many(s, ids, n, outs, found, failed);
    for (size_t i = 0; i < n; i++)
        found[i] = false;
    for (size_t i = 0; i < n; i++) {
        bcd_status st = bcd__store_analysis_get(s, ids[i], &outs[i]);
        if (st == BCD_ENOTFOUND) {
            bcd__error_clear(&s->err);
            continue;
        }
        if (st != BCD_OK) {
            for (size_t j = 0; j < i; j++)
                if (found[j]) {
                    bcd__analysis_clear(&outs[j]);
                    found[j] = false;
                }
            *failed = i;
            return st;
        }
        found[i] = true;
    }
    return BCD_OK;
}

bcd_status bcd__store_blob_get_many(bcd_store *s, const char *const *paths, size_t n, size_t max_len,
                                    unsigned char **outs, size_t *lens, size_t *failed)
{
    bcd__error_clear(&s->err);
    *failed = 0;
    if (s->ops->blob_get_many) {
        bcd_status st = s->ops->blob_get_many(s, paths, n, max_len, outs, lens, failed);
        for (size_t i = 0; st == BCD_OK && i < n; i++) {
            if ((st = verify_blob(s, paths[i], outs[i], lens[i])) == BCD_OK)
                continue;
            for (size_t j = 0; j < n; j++) {
                free(outs[j]);
                outs[j] = NULL;
            }
            *failed = i;
        }
        return st;
    }
    for (size_t i = 0; i < n; i++) {
        bcd_status st = bcd__store_blob_get(s, paths[i], max_len, &outs[i], &lens[i]);
        if (st != BCD_OK) {
            for (size_t j = 0; j < i; j++) {
                free(outs[j]);
                outs[j] = NULL;
            }
            *failed = i;
            return st;
        }
    }
    return BCD_OK;
}

bcd_status bcd__store_blob_locate_many(bcd_store *s, const char *const *paths, size_t n, char **urls,
                                       char **local_paths, int *expires_in)
{
    bcd__error_clear(&s->err);
    *expires_in = -1;
    if (s->ops->blob_locate_many)
        return s->ops->blob_locate_many(s, paths, n, urls, local_paths, expires_in);
    for (size_t i = 0; i < n; i++) {
        urls[i] = local_paths[i] = NULL;
        int exp = -1;
        bcd_status st = bcd__store_blob_locate(s, paths[i], &urls[i], &local_paths[i], &exp);
        if (st == BCD_ENOTFOUND) {
            bcd__error_clear(&s->err);
            continue;
        }
        if (st != BCD_OK) {
            for (size_t j = 0; j < i; j++) {
                free(urls[j]);
                free(local_paths[j]);
                urls[j] = local_paths[j] = NULL;
            }
            return st;
        }
        *expires_in = exp;
    }
    return BCD_OK;
}

bcd_status bcd__store_blob_upload_url(bcd_store *s, const char *key, const char *content_type,
                                      struct bcd__upload_url *out)
{
    bcd__error_clear(&s->err);
    if (!s->ops->blob_upload_url)
        return bcd__fail(&s->err, BCD_EUNSUPPORTED, "store_unsupported",
                         "the %s store has no upload URLs: add the file with `image add` instead", s->ops->name);
    return s->ops->blob_upload_url(s, key, content_type, out);
}

void bcd__upload_url_clear(struct bcd__upload_url *u)
{
    if (!u)
        return;
    free(u->upload_url);
    free(u->token);
    free(u->public_url);
    memset(u, 0, sizeof *u);
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

bool bcd__blob_name_valid(const char *sha256_hex, const char *ext)
{
    if (!sha256_hex || strlen(sha256_hex) != 64)
        return false;
    for (size_t i = 0; i < 64; i++) {
        char c = sha256_hex[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    size_t n = ext ? strlen(ext) : 0;
    if (n == 0 || n > 8)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((ext[i] >= 'a' && ext[i] <= 'z') || (ext[i] >= '0' && ext[i] <= '9')))
            return false;
    return true;
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

/* ---- Analysis job queue: dispatch (see the job section of store.h) ---------------- */

bcd_status bcd__store_job_enqueue(bcd_store *s, const char *session_id, const char *user_id, const char *model,
                                  int max_attempts, struct bcd__job_row *out, bool *created)
{
    DISPATCH(job_enqueue, session_id, user_id, model, max_attempts, out, created);
}

bcd_status bcd__store_job_claim(bcd_store *s, const char *worker_id, int64_t lease_ms, struct bcd__job_row *out,
                                bool *claimed, int64_t *wait_ms)
{
    DISPATCH(job_claim, worker_id, lease_ms, out, claimed, wait_ms);
}

bcd_status bcd__store_job_heartbeat(bcd_store *s, const char *job_id, const char *worker_id, int64_t lease_ms,
                                    struct bcd__job_row *out)
{
    DISPATCH(job_heartbeat, job_id, worker_id, lease_ms, out);
}

bcd_status bcd__store_job_complete(bcd_store *s, const char *job_id, const char *worker_id,
                                   struct bcd__job_row *out)
{
    DISPATCH(job_complete, job_id, worker_id, out);
}

bcd_status bcd__store_job_fail(bcd_store *s, const char *job_id, const char *worker_id, const char *error_code,
                               const char *error, int64_t retry_ms, struct bcd__job_row *out)
{
    DISPATCH(job_fail, job_id, worker_id, error_code, error, retry_ms, out);
}

bcd_status bcd__store_job_get(bcd_store *s, const char *job_id, struct bcd__job_row *out)
{
    DISPATCH(job_get, job_id, out);
}

bcd_status bcd__store_job_get_for_session(bcd_store *s, const char *session_id, struct bcd__job_row *out)
{
    DISPATCH(job_get_for_session, session_id, out);
}

int64_t bcd__time_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void bcd__timestamp_of_ms(int64_t ms, char buf[BCD__TS_LEN])
{
    time_t sec = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    int frac = (int)(ms - (int64_t)sec * 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    size_t n = strftime(buf, BCD__TS_LEN, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, BCD__TS_LEN - n, ".%03d000Z", frac);
}
