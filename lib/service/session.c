/* Sessions and images: create, complete, list, info, register, add, preview, thumbnails. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bcd/image.h"
#include "service_internal.h"

static void session_json(bool *ok, cJSON *o, const struct bcd__session_row *r)
{
    bcd__j_str(ok, o, "session_id", r->id);
    bcd__j_str(ok, o, "status", r->status);
    bcd__j_str(ok, o, "created_at", r->created_at);
    bcd__j_str(ok, o, "updated_at", r->updated_at);
    bcd__j_int(ok, o, "image_count", (double)r->image_count);
    bcd__j_bool(ok, o, "analyzed", r->analyzed);
}

bcd_status bcd_session_create(char **out, bcd_service *svc, const char *user_id)
{
    BCD__SVC_ENTER(svc, out);
    bcd_status st = bcd__svc_check_user(svc, user_id);
    if (st != BCD_OK)
        return st;
    struct bcd__session_row row;
    st = bcd__store_session_create(svc->store, user_id, &row);
    if (st != BCD_OK)
        return bcd__svc_from_store(svc, st);
    bool ok = true;
    cJSON *o = cJSON_CreateObject();
    bcd__j_str(&ok, o, "session_id", row.id);
    bcd__j_str(&ok, o, "status", row.status);
    bcd__j_str(&ok, o, "user_id", row.user_id);
    bcd__j_str(&ok, o, "created_at", row.created_at);
    return bcd__svc_emit(svc, o, ok, out);
}

/* Distinct angles present in a list of images, as a bit set over bcd__angles. */
static unsigned angle_set(const struct bcd__image_row *imgs, size_t n)
{
    unsigned set = 0;
    for (size_t i = 0; i < n; i++) {
        int a = bcd__angle_index(imgs[i].angle);
        if (a >= 0)
            set |= 1u << a;
    }
    return set;
}

static int popcount6(unsigned set)
{
    int c = 0;
    for (int i = 0; i < BCD__ANGLE_COUNT; i++)
        c += (set >> i) & 1u;
    return c;
}

static cJSON *angles_array(unsigned set)
{
    cJSON *a = cJSON_CreateArray();
    bool ok = true;
    for (int i = 0; a && i < BCD__ANGLE_COUNT; i++)
        if (set & (1u << i))
            bcd__j_push_str(&ok, a, bcd__angles[i]);
    if (!ok) {
        cJSON_Delete(a);
        return NULL;
    }
    return a;
}

bcd_status bcd_session_complete(char **out, bcd_service *svc, const char *user_id, const char *session_id)
{
    BCD__SVC_ENTER(svc, out);
    struct bcd__session_row row;
    bcd_status st = bcd__svc_owned_session(svc, user_id, session_id, &row);
    if (st != BCD_OK)
        return st;
    struct bcd__image_row *imgs = NULL;
    size_t n = 0;
    st = bcd__store_image_list(svc->store, row.id, &imgs, &n);
    if (st != BCD_OK)
        return bcd__svc_from_store(svc, st);
    unsigned set = angle_set(imgs, n);
    free(imgs);
    bool already = strcmp(row.status, "completed") == 0;
    if (!already) {
        if (popcount6(set) < BCD_MIN_ANGLES) {
            bcd__svc_fail(svc, BCD_ESTATE, "insufficient_angles",
                          "session %s has images of %d distinct angle%s; at least %d are required", row.id,
                          popcount6(set), popcount6(set) == 1 ? "" : "s", BCD_MIN_ANGLES);
            cJSON *d = cJSON_CreateObject();
            if (d) {
                cJSON *arr = angles_array(set);
                if (arr)
                    cJSON_AddItemToObject(d, "angles_present", arr);
                cJSON_AddNumberToObject(d, "required", BCD_MIN_ANGLES);
            }
            bcd__svc_details(svc, d);
            return BCD_ESTATE;
        }
        st = bcd__store_session_set_status(svc->store, row.id, "completed", &row);
        if (st != BCD_OK)
            return bcd__svc_from_store(svc, st);
    }
    bool ok = true;
    cJSON *o = cJSON_CreateObject();
    bcd__j_str(&ok, o, "session_id", row.id);
    bcd__j_str(&ok, o, "status", row.status);
    cJSON *arr = angles_array(set);
    if (!arr || !o || !cJSON_AddItemToObject(o, "angles", arr)) {
        cJSON_Delete(arr);
        ok = false;
    }
    bcd__j_int(&ok, o, "image_count", (double)n);
    bcd__j_bool(&ok, o, "already_completed", already);
    bcd__j_str(&ok, o, "updated_at", row.updated_at);
    return bcd__svc_emit(svc, o, ok, out);
}

bcd_status bcd_session_list(char **out, bcd_service *svc, const char *user_id)
{
    BCD__SVC_ENTER(svc, out);
    bcd_status st = bcd__svc_check_user(svc, user_id);
    if (st != BCD_OK)
        return st;
    struct bcd__session_row *rows = NULL;
    size_t n = 0;
    st = bcd__store_session_list(svc->store, user_id, &rows, &n);
    if (st != BCD_OK)
        return bcd__svc_from_store(svc, st);
    bool ok = true;
    cJSON *o = cJSON_CreateObject();
    bcd__j_str(&ok, o, "user_id", user_id);
    bcd__j_int(&ok, o, "count", (double)n);
    cJSON *arr = bcd__j_arr(&ok, o, "sessions");
    for (size_t i = 0; ok && i < n; i++) {
        cJSON *it = cJSON_CreateObject();
        if (!it || !cJSON_AddItemToArray(arr, it)) {
            cJSON_Delete(it);
            ok = false;
            break;
        }
        session_json(&ok, it, &rows[i]);
    }
    free(rows);
    return bcd__svc_emit(svc, o, ok, out);
}

bcd_status bcd_session_info(char **out, bcd_service *svc, const char *user_id, const char *session_id)
{
    BCD__SVC_ENTER(svc, out);
    struct bcd__session_row row;
    bcd_status st = bcd__svc_owned_session(svc, user_id, session_id, &row);
    if (st != BCD_OK)
        return st;
    struct bcd__session_row *rows = NULL;
    size_t n = 0;
    st = bcd__store_session_list(svc->store, user_id, &rows, &n);
    if (st != BCD_OK)
        return bcd__svc_from_store(svc, st);
    size_t idx = n;
    for (size_t i = 0; i < n; i++)
        if (strcmp(rows[i].id, row.id) == 0)
            idx = i;
    if (idx == n) { /* deleted in between */
        free(rows);
        return bcd__svc_fail(svc, BCD_ENOTFOUND, "session_not_found", "session %s not found", row.id);
    }
    bool ok = true;
    cJSON *o = cJSON_CreateObject();
    bcd__j_str(&ok, o, "session_id", row.id);
    bcd__j_bool(&ok, o, "is_first_session", idx == 0);
    bcd__j_bool(&ok, o, "is_current", idx == n - 1);
    bcd__j_int(&ok, o, "total_sessions", (double)n);
    bcd__j_int(&ok, o, "position", (double)(idx + 1));
    bcd__j_str(&ok, o, "created_at", row.created_at);
    bcd__j_str(&ok, o, "status", row.status);
    bcd__j_bool(&ok, o, "analyzed", row.analyzed);
    bcd__j_str(&ok, o, "previous_session_id", idx > 0 ? rows[idx - 1].id : NULL);
    bcd__j_str(&ok, o, "next_session_id", idx + 1 < n ? rows[idx + 1].id : NULL);
    free(rows);
    return bcd__svc_emit(svc, o, ok, out);
}

static bcd_status check_path(bcd_service *svc, const char *path)
{
    if (!path || !*path)
        return bcd__svc_fail(svc, BCD_EINVAL, "invalid_path", "an image path is required");
    size_t n = strlen(path);
    if (n >= BCD__PATH_MAX)
        return bcd__svc_fail(svc, BCD_EINVAL, "invalid_path", "the image path is %zu bytes long, limit %d", n,
                             BCD__PATH_MAX - 1);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)path[i] < 0x20)
            return bcd__svc_fail(svc, BCD_EINVAL, "invalid_path", "the image path contains a control character");
    return BCD_OK;
}

static void image_json(bool *ok, cJSON *o, const struct bcd__image_row *r, bool created)
{
    bcd__j_bool(ok, o, "ok", true);
    bcd__j_bool(ok, o, "created", created);
    bcd__j_str(ok, o, "image_id", r->id);
    bcd__j_str(ok, o, "session_id", r->session_id);
    bcd__j_str(ok, o, "angle", r->angle);
    bcd__j_str(ok, o, "image_type", r->angle);
    bcd__j_int(ok, o, "order_index", r->order_index);
    bcd__j_str(ok, o, "storage_path", r->storage_path);
}

/* Room for one more image in a session (BCD_MAX_SESSION_IMAGES). One already registered
 * (same path, or for add the same content) is not a new one and always passes, so
 * repeating a registration stays idempotent at the limit. */
static bcd_status check_room(bcd_service *svc, const struct bcd__session_row *srow, const char *path,
                             const char *sha)
{
    const char *session_id = srow->id;
    struct bcd__image_row *imgs = NULL;
    size_t n = 0;
    bcd_status st = bcd__store_image_list(svc->store, session_id, &imgs, &n);
    if (st != BCD_OK)
        return bcd__svc_from_store(svc, st);
    bool known = false;
    for (size_t i = 0; i < n && !known; i++)
        known = (path && strcmp(imgs[i].storage_path, path) == 0) || (sha && strcmp(imgs[i].sha256, sha) == 0);
    free(imgs);
    /* a new photo in a check already analyzed would leave an analysis that no longer
     * describes it (the same photo again changes nothing) */
    if (!known && srow->analyzed && strcmp(srow->status, "completed") == 0) {
        bcd__svc_fail(svc, BCD_ESTATE, "session_already_analyzed",
                      "check %s is completed and analyzed: a photo cannot be added to it; to replace a wrong "
                      "photo, delete it first (bcd_image_delete, 'bcd-cli image delete'), which drops the "
                      "analysis, or start a new check",
                      session_id);
        return BCD_ESTATE;
    }
    if (n >= BCD_MAX_SESSION_IMAGES && !known)
        return bcd__svc_fail(svc, BCD_ELIMIT, "too_many_images", "session %s already has %zu images, limit %d",
                             session_id, n, BCD_MAX_SESSION_IMAGES);
    return BCD_OK;
}

/* Register through the store; the store's detail becomes the service's. */
static bcd_status do_register(bcd_service *svc, const struct bcd__image_row *in, struct bcd__image_row *row,
                              bool *created)
{
    bcd_status st = bcd__store_image_register(svc->store, in, row, created);
    return st == BCD_OK ? BCD_OK : bcd__svc_from_store(svc, st);
}

bcd_status bcd_image_register(char **out, bcd_service *svc, const char *user_id, const char *session_id,
                              const char *angle, const char *path, int order_index)
{
    BCD__SVC_ENTER(svc, out);
    struct bcd__session_row srow;
    bcd_status st = bcd__svc_check_user(svc, user_id);
    if (st == BCD_OK)
        st = bcd__svc_check_session_id(svc, session_id);
    if (st == BCD_OK)
        st = bcd__svc_check_angle(svc, angle);
    if (st == BCD_OK)
        st = check_path(svc, path);
    if (st == BCD_OK)
        st = bcd__svc_owned_session(svc, user_id, session_id, &srow);
    if (st == BCD_OK)
        st = check_room(svc, &srow, path, NULL);
    if (st != BCD_OK)
        return st;
    struct bcd__image_row *in = calloc(2, sizeof *in);
    if (!in)
        return bcd__svc_fail(svc, BCD_ENOMEM, "out_of_memory", "out of memory");
    struct bcd__image_row *row = in + 1;
    snprintf(in->session_id, sizeof in->session_id, "%s", srow.id);
    snprintf(in->angle, sizeof in->angle, "%s", angle);
    snprintf(in->storage_path, sizeof in->storage_path, "%s", path);
    in->order_index = order_index < 0 ? -1 : order_index;
    in->size_bytes = -1;
    bool created = false;
    st = do_register(svc, in, row, &created);
    if (st == BCD_OK) {
        bool ok = true;
        cJSON *o = cJSON_CreateObject();
        image_json(&ok, o, row, created);
        st = bcd__svc_emit(svc, o, ok, out);
    }
    free(in);
    return st;
}

bcd_status bcd_image_add(char **out, bcd_service *svc, const char *user_id, const char *session_id,
                         const char *angle, const char *file_path, int order_index)
{
    BCD__SVC_ENTER(svc, out);
    struct bcd__session_row srow;
    bcd_status st = bcd__svc_check_user(svc, user_id);
    if (st == BCD_OK)
        st = bcd__svc_check_session_id(svc, session_id);
    if (st == BCD_OK)
        st = bcd__svc_check_angle(svc, angle);
    if (st == BCD_OK && (!file_path || !*file_path))
        st = bcd__svc_fail(svc, BCD_EINVAL, "invalid_path", "an image file is required");
    if (st == BCD_OK)
        st = bcd__svc_owned_session(svc, user_id, session_id, &srow);
    if (st != BCD_OK)
        return st;

    unsigned char *data = NULL;
    size_t len = 0;
    bcd_image *img = NULL;
    struct bcd__image_row *in = NULL;
    bool blob_created = false, registered = false;
    char key[BCD__PATH_MAX] = "";

    st = bcd__read_file(svc->ctx, file_path, BCD__MAX_IMAGE_FILE, &data, &len);
    if (st != BCD_OK) {
        bcd__svc_from_ctx(svc, st);
        goto done;
    }
    /* validate: decode once (format, corruption, size limits) */
    bcd__ctx_clear(svc->ctx);
    st = bcd_image_decode(&img, svc->ctx, data, len);
    if (st != BCD_OK) {
        bcd__svc_from_ctx(svc, st);
        if (st == BCD_EFORMAT) {
            char prefix[320];
            snprintf(prefix, sizeof prefix, "%.256s is not a usable JPEG or PNG image: ", file_path);
            bcd__svc_prefix(svc, prefix);
        }
        goto done;
    }
    /* what is stored carries no metadata (GPS, serial numbers, thumbnails...); same pixels */
    void *clean = NULL;
    size_t clean_len = 0;
    st = bcd_image_strip_metadata(&clean, &clean_len, svc->ctx, data, len);
    if (st != BCD_OK) {
        bcd__svc_from_ctx(svc, st);
        goto done;
    }
    free(data);
    data = clean;
    len = clean_len;
    const char *ctype, *ext;
    if (len >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff) {
        ctype = "image/jpeg";
        ext = "jpg";
    } else {
        ctype = "image/png";
        ext = "png";
    }
    char sha[65];
    if (bcd__sha256_hex(data, len, sha) != BCD_OK) {
        st = bcd__svc_fail(svc, BCD_ERROR, "digest_failure", "cannot compute SHA-256");
        goto done;
    }
    if ((st = check_room(svc, &srow, NULL, sha)) != BCD_OK)
        goto done;
    st = bcd__store_blob_put(svc->store, srow.id, sha, ext, data, len, key, &blob_created);
    if (st != BCD_OK) {
        bcd__svc_from_store(svc, st);
        goto done;
    }
    in = calloc(2, sizeof *in);
    if (!in) {
        st = bcd__svc_fail(svc, BCD_ENOMEM, "out_of_memory", "out of memory");
        goto done;
    }
    struct bcd__image_row *row = in + 1;
    snprintf(in->session_id, sizeof in->session_id, "%s", srow.id);
    snprintf(in->angle, sizeof in->angle, "%s", angle);
    snprintf(in->storage_path, sizeof in->storage_path, "%s", key);
    snprintf(in->content_type, sizeof in->content_type, "%s", ctype);
    snprintf(in->sha256, sizeof in->sha256, "%s", sha);
    in->size_bytes = (int64_t)len;
    in->order_index = order_index < 0 ? -1 : order_index;
    bool created = false;
    st = do_register(svc, in, row, &created);
    if (st != BCD_OK)
        goto done;
    registered = true;
    if (!created && strcmp(row->angle, angle) != 0) {
        st = bcd__svc_fail(svc, BCD_ECONFLICT, "duplicate_image",
                           "this file is already registered in session %s as angle %s #%d", srow.id, row->angle,
                           row->order_index);
        cJSON *d = cJSON_CreateObject();
        if (d) {
            cJSON_AddStringToObject(d, "image_id", row->id);
            cJSON_AddStringToObject(d, "angle", row->angle);
            cJSON_AddNumberToObject(d, "order_index", row->order_index);
        }
        bcd__svc_details(svc, d);
        goto done;
    }
    bool ok = true;
    cJSON *o = cJSON_CreateObject();
    image_json(&ok, o, row, created);
    bcd__j_str(&ok, o, "content_type", row->content_type[0] ? row->content_type : ctype);
    bcd__j_int(&ok, o, "size_bytes", (double)len);
    bcd__j_str(&ok, o, "sha256", sha);
    bcd__j_int(&ok, o, "width", img->width);
    bcd__j_int(&ok, o, "height", img->height);
    st = bcd__svc_emit(svc, o, ok, out);
done:
    if (st != BCD_OK && blob_created && !registered) {
        /* leave no orphan behind (the store keeps a blob that a row references);
         * the error already recorded on svc stays */
        bcd__store_blob_delete(svc->store, key);
    }
    free(in);
    bcd_image_free(img);
    free(data);
    return st;
}

/* First image (lowest order_index) of each angle; idx[a] = index into imgs or -1. */
static void first_per_angle(const struct bcd__image_row *imgs, size_t n, long idx[BCD__ANGLE_COUNT])
{
    for (int a = 0; a < BCD__ANGLE_COUNT; a++)
        idx[a] = -1;
    for (size_t i = 0; i < n; i++) {
        int a = bcd__angle_index(imgs[i].angle);
        if (a >= 0 && (idx[a] < 0 || imgs[i].order_index < imgs[idx[a]].order_index))
            idx[a] = (long)i;
    }
}

bcd_status bcd_image_preview(char **out, bcd_service *svc, const char *user_id, const char *session_id,
                             const char *angle)
{
    BCD__SVC_ENTER(svc, out);
    struct bcd__session_row srow;
    bcd_status st = bcd__svc_check_user(svc, user_id);
    if (st == BCD_OK)
        st = bcd__svc_check_session_id(svc, session_id);
    if (st == BCD_OK)
        st = bcd__svc_check_angle(svc, angle);
    if (st == BCD_OK)
        st = bcd__svc_owned_session(svc, user_id, session_id, &srow);
    if (st != BCD_OK)
        return st;
    struct bcd__image_row *imgs = NULL;
    size_t n = 0;
    st = bcd__store_image_list(svc->store, srow.id, &imgs, &n);
    if (st != BCD_OK)
        return bcd__svc_from_store(svc, st);
    long idx[BCD__ANGLE_COUNT];
    first_per_angle(imgs, n, idx);
    long i = idx[bcd__angle_index(angle)];
    if (i < 0) {
        free(imgs);
        return bcd__svc_fail(svc, BCD_ENOTFOUND, "image_not_found", "session %s has no %s image", srow.id, angle);
    }
    char *url = NULL, *path = NULL;
    int expires = -1;
    st = bcd__store_blob_locate(svc->store, imgs[i].storage_path, &url, &path, &expires);
    if (st != BCD_OK) {
        free(imgs);
        return bcd__svc_from_store(svc, st);
    }
    bool ok = true;
    cJSON *o = cJSON_CreateObject();
    bcd__j_str(&ok, o, "session_id", srow.id);
    bcd__j_str(&ok, o, "image_type", angle);
    bcd__j_str(&ok, o, "preview_url", url);
    bcd__j_str(&ok, o, "path", path);
    if (expires >= 0)
        bcd__j_int(&ok, o, "expires_in", expires);
    else
        bcd__j_null(&ok, o, "expires_in");
    bcd__j_str(&ok, o, "content_type", imgs[i].content_type[0] ? imgs[i].content_type : NULL);
    bcd__j_str(&ok, o, "image_id", imgs[i].id);
    free(url);
    free(path);
    free(imgs);
    return bcd__svc_emit(svc, o, ok, out);
}

bcd_status bcd_session_thumbnails(char **out, bcd_service *svc, const char *user_id, const char *session_id)
{
    BCD__SVC_ENTER(svc, out);
    struct bcd__session_row srow;
    bcd_status st = bcd__svc_owned_session(svc, user_id, session_id, &srow);
    if (st != BCD_OK)
        return st;
    struct bcd__image_row *imgs = NULL;
    size_t n = 0;
    st = bcd__store_image_list(svc->store, srow.id, &imgs, &n);
    if (st != BCD_OK)
        return bcd__svc_from_store(svc, st);
    long idx[BCD__ANGLE_COUNT];
    first_per_angle(imgs, n, idx);
    bool ok = true;
    cJSON *o = cJSON_CreateObject();
    bcd__j_str(&ok, o, "session_id", srow.id);
    cJSON *thumbs = bcd__j_obj(&ok, o, "thumbnails");
    cJSON *paths = bcd__j_obj(&ok, o, "paths");
    cJSON *missing = cJSON_CreateArray();
    int count = 0, expires_all = -1;
    /* every angle in one call (one batch request for remote stores) */
    const char *want[BCD__ANGLE_COUNT];
    char *urls[BCD__ANGLE_COUNT], *lpaths[BCD__ANGLE_COUNT];
    int which[BCD__ANGLE_COUNT];
    size_t nwant = 0;
    for (int a = 0; a < BCD__ANGLE_COUNT; a++)
        if (idx[a] >= 0) {
            which[nwant] = a;
            want[nwant++] = imgs[idx[a]].storage_path;
        }
    st = bcd__store_blob_locate_many(svc->store, want, nwant, urls, lpaths, &expires_all);
    if (st != BCD_OK)
        bcd__svc_from_store(svc, st);
    for (size_t k = 0; st == BCD_OK && k < nwant; k++) {
        const char *angle = bcd__angles[which[k]];
        if (!urls[k]) {
            bcd__j_push_str(&ok, missing, angle);
            continue;
        }
        bcd__j_str(&ok, thumbs, angle, urls[k]);
        bcd__j_str(&ok, paths, angle, lpaths[k]);
        count++;
    }
    for (size_t k = 0; st == BCD_OK && k < nwant; k++) {
        free(urls[k]);
        free(lpaths[k]);
    }
    free(imgs);
    if (st != BCD_OK) {
        cJSON_Delete(missing);
        cJSON_Delete(o);
        return st;
    }
    bcd__j_int(&ok, o, "count", count);
    if (expires_all >= 0)
        bcd__j_int(&ok, o, "expires_in", expires_all);
    else
        bcd__j_null(&ok, o, "expires_in");
    if (!missing || !o || !cJSON_AddItemToObject(o, "missing", missing)) {
        cJSON_Delete(missing);
        ok = false;
    }
    return bcd__svc_emit(svc, o, ok, out);
}

/* A file name for a direct upload: 1-128 bytes of [A-Za-z0-9._-], not starting with a dot,
 * ending in .jpg, .jpeg or .png (any case). *ctype: its MIME type. */
static bcd_status check_filename(bcd_service *svc, const char *name, const char **ctype)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 128 || name[0] == '.')
        return bcd__svc_fail(svc, BCD_EINVAL, "invalid_filename",
                             "a file name of 1 to 128 characters not starting with a dot is required");
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-'))
            return bcd__svc_fail(svc, BCD_EINVAL, "invalid_filename",
                                 "the file name may hold letters, digits, '.', '_' and '-' only");
    }
    const char *dot = strrchr(name, '.');
    char ext[8] = "";
    for (size_t i = 0; dot && dot[i + 1] && i + 1 < sizeof ext; i++)
        ext[i] = (char)(dot[i + 1] >= 'A' && dot[i + 1] <= 'Z' ? dot[i + 1] - 'A' + 'a' : dot[i + 1]);
    if (dot && (strcmp(ext, "jpg") == 0 || strcmp(ext, "jpeg") == 0))
        *ctype = "image/jpeg";
    else if (dot && strcmp(ext, "png") == 0)
        *ctype = "image/png";
    else
        return bcd__svc_fail(svc, BCD_EINVAL, "unsupported_content_type",
                             "only .jpg, .jpeg and .png files can be uploaded, not '%.128s'", name);
    return BCD_OK;
}

bcd_status bcd_image_upload_url(char **out, bcd_service *svc, const char *user_id, const char *session_id,
                                const char *angle, const char *filename)
{
    BCD__SVC_ENTER(svc, out);
    struct bcd__session_row srow;
    const char *ctype = NULL;
    bcd_status st = bcd__svc_check_user(svc, user_id);
    if (st == BCD_OK)
        st = bcd__svc_check_session_id(svc, session_id);
    if (st == BCD_OK)
        st = bcd__svc_check_angle(svc, angle);
    if (st == BCD_OK)
        st = check_filename(svc, filename, &ctype);
    if (st == BCD_OK)
        st = bcd__svc_owned_session(svc, user_id, session_id, &srow);
    if (st != BCD_OK)
        return st;
    /* a fresh key per request: two uploads of the same name never collide */
    char nonce[BCD__ID_LEN], key[BCD__ID_LEN + 16 + BCD__ID_LEN + 130];
    if (bcd__uuid_v4(nonce) != BCD_OK)
        return bcd__svc_fail(svc, BCD_ERROR, "random_failure", "cannot generate an object name");
    snprintf(key, sizeof key, "%s/%s/%s-%s", srow.id, angle, nonce, filename);
    struct bcd__upload_url u;
    st = bcd__store_blob_upload_url(svc->store, key, ctype, &u);
    if (st != BCD_OK)
        return bcd__svc_from_store(svc, st);
    bool ok = true;
    cJSON *o = cJSON_CreateObject();
    bcd__j_str(&ok, o, "uploadUrl", u.upload_url);
    bcd__j_str(&ok, o, "token", u.token);
    bcd__j_str(&ok, o, "path", key);
    cJSON *h = bcd__j_obj(&ok, o, "headers");
    bcd__j_str(&ok, h, "Content-Type", ctype);
    bcd__j_str(&ok, o, "publicUrl", u.public_url);
    bcd__j_str(&ok, o, "method", "PUT");
    bcd__j_str(&ok, o, "session_id", srow.id);
    bcd__j_str(&ok, o, "image_type", angle);
    if (u.expires_in >= 0)
        bcd__j_int(&ok, o, "expires_in", u.expires_in);
    else
        bcd__j_null(&ok, o, "expires_in");
    bcd__upload_url_clear(&u);
    return bcd__svc_emit(svc, o, ok, out);
}
