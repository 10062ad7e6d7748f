/* Deleting: one image, one check, or everything of a user (the right to erasure). The
 * store removes rows atomically and then the blobs they named; see store.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service_internal.h"

bcd_status bcd_image_delete(char **out, bcd_service *svc, const char *user_id, const char *session_id,
                            const char *angle, int order_index)
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
    struct bcd__image_row *row = calloc(1, sizeof *row);
    if (!row)
        return bcd__svc_fail(svc, BCD_ENOMEM, "out_of_memory", "out of memory");
    bool analysis = false;
    int files = 0;
    st = bcd__store_image_delete(svc->store, srow.id, angle, order_index < 0 ? -1 : order_index, row, &analysis,
                                 &files);
    if (st != BCD_OK) {
        free(row);
        return bcd__svc_from_store(svc, st);
    }
    bool ok = true;
    cJSON *o = cJSON_CreateObject();
    bcd__j_str(&ok, o, "session_id", srow.id);
    bcd__j_str(&ok, o, "image_id", row->id);
    bcd__j_str(&ok, o, "angle_type", row->angle);
    bcd__j_int(&ok, o, "order_index", row->order_index);
    bcd__j_bool(&ok, o, "analysis_deleted", analysis);
    bcd__j_int(&ok, o, "files_deleted", files);
    free(row);
    return bcd__svc_emit(svc, o, ok, out);
}

/* Delete one owned session; adds its counts to the totals. */
static bcd_status delete_one(bcd_service *svc, const char *session_id, int *images, int *analyses, int *files)
{
    int n = 0, f = 0;
    bool analysis = false;
    bcd_status st = bcd__store_session_delete(svc->store, session_id, &n, &analysis, &f);
    if (st != BCD_OK)
        return bcd__svc_from_store(svc, st);
    *images += n;
    *analyses += analysis;
    *files += f;
    return BCD_OK;
}

bcd_status bcd_session_delete(char **out, bcd_service *svc, const char *user_id, const char *session_id)
{
    BCD__SVC_ENTER(svc, out);
    struct bcd__session_row srow;
    bcd_status st = bcd__svc_check_user(svc, user_id);
    if (st == BCD_OK)
        st = bcd__svc_check_session_id(svc, session_id);
    if (st == BCD_OK)
        st = bcd__svc_owned_session(svc, user_id, session_id, &srow);
    int images = 0, analyses = 0, files = 0;
    if (st == BCD_OK)
        st = delete_one(svc, srow.id, &images, &analyses, &files);
    if (st != BCD_OK)
        return st;
    bool ok = true;
    cJSON *o = cJSON_CreateObject();
    bcd__j_str(&ok, o, "session_id", srow.id);
    bcd__j_bool(&ok, o, "deleted", true);
    bcd__j_int(&ok, o, "images_deleted", images);
    bcd__j_bool(&ok, o, "analysis_deleted", analyses > 0);
    bcd__j_int(&ok, o, "files_deleted", files);
    return bcd__svc_emit(svc, o, ok, out);
}

bcd_status bcd_user_delete(char **out, bcd_service *svc, const char *user_id)
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
    /* newest first: a failure part way leaves the older checks, each whole, and a run
     * again deletes the rest */
    int images = 0, analyses = 0, files = 0;
    size_t done = 0;
    for (size_t i = n; i-- > 0 && st == BCD_OK;) {
        st = delete_one(svc, rows[i].id, &images, &analyses, &files);
        if (st == BCD_ENOTFOUND) /* deleted meanwhile by another process */
            st = BCD_OK;
        else if (st == BCD_OK)
            done++;
    }
    free(rows);
    if (st != BCD_OK) {
        char prefix[96];
        snprintf(prefix, sizeof prefix, "%zu of %zu checks deleted, then: ", done, n);
        bcd__svc_prefix(svc, prefix);
        return st;
    }
    bool ok = true;
    cJSON *o = cJSON_CreateObject();
    bcd__j_str(&ok, o, "user_id", user_id);
    bcd__j_int(&ok, o, "sessions_deleted", (double)done);
    bcd__j_int(&ok, o, "images_deleted", images);
    bcd__j_int(&ok, o, "analyses_deleted", analyses);
    bcd__j_int(&ok, o, "files_deleted", files);
    return bcd__svc_emit(svc, o, ok, out);
}
