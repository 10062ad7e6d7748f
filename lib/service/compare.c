/* Comparison of two analyzed sessions of a user (the seed's compare-sessions). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bcd/analysis.h"
#include "detection.h"
#include "service_internal.h"

/* Load a session's analysis; "never analyzed" is a precondition failure here. */
static bcd_status load(bcd_service *svc, const struct bcd__session_row *row, struct bcd__analysis *a)
{
    if (strcmp(row->status, "completed") != 0) {
        bcd__svc_fail(svc, BCD_ESTATE, "session_not_completed", "session %s is not completed", row->id);
        goto blame;
    }
    bcd_status st = bcd__store_analysis_get(svc->store, row->id, a);
    if (st == BCD_ENOTFOUND) {
        bcd__svc_fail(svc, BCD_ESTATE, "session_not_analyzed", "session %s has not been analyzed yet", row->id);
        goto blame;
    }
    return st == BCD_OK ? BCD_OK : bcd__svc_from_store(svc, st);
blame:;
    cJSON *d = cJSON_CreateObject();
    if (d)
        cJSON_AddStringToObject(d, "session_id", row->id);
    bcd__svc_details(svc, d);
    return BCD_ESTATE;
}

/* Cosine distance of two stored embeddings if both exist and come from the same model;
 * false otherwise (missing, other model, degenerate). */
static bool embedding_distance(const struct bcd__analysis *c, const float *cv, const struct bcd__analysis *p,
                               const float *pv, double *out)
{
    if (!cv || !pv || c->dim != p->dim || strcmp(c->model, p->model) != 0)
        return false;
    return bcd_vector_cosine_distance(out, NULL, cv, c->dim, pv, p->dim) == BCD_OK;
}

/* The change detection of the pair as a JSON object (see bcd__det_json()): the one the
 * current session's analysis stored when it was made against prev, else computed now
 * from the photos. *source: "stored" or "computed". */
static bcd_status detection(bcd_service *svc, const struct bcd__analysis *c, const char *cur_id,
                            const struct bcd__analysis *p, const char *prev_id, const char *heatmap_dir,
                            cJSON **out, const char **source)
{
    *out = NULL;
    if (c->details_json) {
        cJSON *stored = cJSON_Parse(c->details_json);
        const cJSON *pid = cJSON_GetObjectItemCaseSensitive(stored, "previous_session_id");
        if (cJSON_IsString(pid) && strcmp(pid->valuestring, prev_id) == 0 &&
            cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(stored, "per_angle"))) {
            /* its overlays, as stored, into the directory */
            bcd_status st = heatmap_dir ? bcd__det_export_heatmaps(svc, stored, heatmap_dir) : BCD_OK;
            if (st == BCD_OK) {
                *out = stored;
                *source = "stored";
                return BCD_OK;
            }
            if (st != BCD_ENOTFOUND) {
                cJSON_Delete(stored);
                return st;
            }
        }
        cJSON_Delete(stored);
    }
    struct bcd__det_photo cur[BCD__ANGLE_COUNT], prev[BCD__ANGLE_COUNT];
    size_t nc = 0, np = 0;
    struct bcd__detection *det = calloc(1, sizeof *det);
    if (!det)
        return bcd__svc_fail(svc, BCD_ENOMEM, "out_of_memory", "out of memory");
    bcd_status st = bcd__det_load_session(svc, cur_id, c->details_json, cur, &nc);
    if (st == BCD_OK)
        st = bcd__det_load_session(svc, prev_id, p->details_json, prev, &np);
    if (st == BCD_OK)
        st = bcd__det_run(svc, det, cur, nc, prev, np, prev_id, NULL, heatmap_dir);
    /* the lesions of the pair, ids carried from the previous session's analysis */
    const char *les = bcd_ctx_get(svc->ctx, "BCD_LESIONS");
    if (st == BCD_OK && !(les && strcmp(les, "off") == 0))
        st = bcd__det_lesions(svc, det, cur_id, prev_id, p->details_json);
    if (st == BCD_OK) {
        bool ok = true;
        cJSON *o = cJSON_CreateObject();
        bcd__det_json(&ok, o, det);
        if (!ok || !o) {
            cJSON_Delete(o);
            st = bcd__svc_fail(svc, BCD_ENOMEM, "out_of_memory", "out of memory");
        } else {
            *out = o;
            *source = "computed";
        }
    }
    bcd__det_clear(det);
    free(det);
    bcd__det_photos_free(cur, nc);
    bcd__det_photos_free(prev, np);
    return st;
}

bcd_status bcd_session_compare(char **out, bcd_service *svc, const char *user_id, const char *current_session_id,
                               const char *previous_session_id)
{
    return bcd_session_compare_ex(out, svc, user_id, current_session_id, previous_session_id, NULL);
}

bcd_status bcd_session_compare_ex(char **out, bcd_service *svc, const char *user_id,
                                  const char *current_session_id, const char *previous_session_id,
                                  const bcd_compare_options *opts)
{
    if (!svc)
        return BCD_EINVAL;
    bcd__svc_clear(svc);
    if (!out)
        return bcd__svc_fail(svc, BCD_EINVAL, "invalid_argument", "out is NULL");
    if (opts && opts->version != BCD_COMPARE_OPTIONS_VERSION)
        return bcd__svc_fail(svc, BCD_EINVAL, "invalid_argument", "unknown bcd_compare_options version %u",
                             opts->version);
    const char *heatmap_dir = opts && opts->heatmap_dir && opts->heatmap_dir[0] ? opts->heatmap_dir : NULL;
    struct bcd__session_row cur, prev;
    bcd_status st = bcd__svc_check_user(svc, user_id);
    if (st == BCD_OK)
        st = bcd__svc_check_session_id(svc, current_session_id);
    if (st == BCD_OK)
        st = bcd__svc_check_session_id(svc, previous_session_id);
    if (st == BCD_OK)
        st = bcd__svc_owned_session(svc, user_id, current_session_id, &cur);
    if (st == BCD_OK)
        st = bcd__svc_owned_session(svc, user_id, previous_session_id, &prev);
    if (st != BCD_OK)
        return st;
    if (strcmp(cur.id, prev.id) == 0)
        return bcd__svc_fail(svc, BCD_EINVAL, "same_session", "cannot compare session %s with itself", cur.id);

    struct bcd__analysis *a = calloc(2, sizeof *a);
    if (!a)
        return bcd__svc_fail(svc, BCD_ENOMEM, "out_of_memory", "out of memory");
    struct bcd__analysis *c = &a[0], *p = &a[1];
    cJSON *det = NULL;
    const char *source = NULL;
    if ((st = load(svc, &cur, c)) != BCD_OK || (st = load(svc, &prev, p)) != BCD_OK)
        goto done;
    if ((st = detection(svc, c, cur.id, p, prev.id, heatmap_dir, &det, &source)) != BCD_OK)
        goto done;

    bool ok = true;
    cJSON *root = cJSON_CreateObject();
    bcd__j_bool(&ok, root, "success", true);
    cJSON *d = bcd__j_obj(&ok, root, "data");
    bcd__j_str(&ok, d, "current_session_id", cur.id);
    bcd__j_str(&ok, d, "previous_session_id", prev.id);
    cJSON *per = bcd__j_arr(&ok, d, "per_angle");
    cJSON *only_cur = cJSON_CreateArray(), *only_prev = cJSON_CreateArray();
    double sum_c = 0.0, sum_p = 0.0;
    size_t common = 0;
    for (size_t i = 0; i < c->n_angles; i++) {
        size_t j = 0;
        while (j < p->n_angles && strcmp(p->angles[j].angle, c->angles[i].angle) != 0)
            j++;
        if (j == p->n_angles) {
            bcd__j_push_str(&ok, only_cur, c->angles[i].angle);
            continue;
        }
        double cs = c->angles[i].change_score, ps = p->angles[j].change_score, dist;
        cJSON *it = cJSON_CreateObject();
        if (!it || !cJSON_AddItemToArray(per, it)) {
            cJSON_Delete(it);
            ok = false;
            break;
        }
        bcd__j_str(&ok, it, "angle_type", c->angles[i].angle);
        bcd__j_num(&ok, it, "current_score", cs);
        bcd__j_num(&ok, it, "previous_score", ps);
        bcd__j_num(&ok, it, "delta", cs - ps);
        bcd__j_num(&ok, it, "delta_magnitude", fabs(cs - ps));
        if (embedding_distance(c, c->angle_vec[i], p, p->angle_vec[j], &dist))
            bcd__j_num(&ok, it, "embedding_distance", dist);
        else
            bcd__j_null(&ok, it, "embedding_distance");
        sum_c += cs;
        sum_p += ps;
        common++;
    }
    for (size_t j = 0; j < p->n_angles; j++) {
        size_t i = 0;
        while (i < c->n_angles && strcmp(c->angles[i].angle, p->angles[j].angle) != 0)
            i++;
        if (i == c->n_angles)
            bcd__j_push_str(&ok, only_prev, p->angles[j].angle);
    }

    double overall;
    const char *method = "embedding";
    if (!embedding_distance(c, c->session_vec, p, p->session_vec, &overall)) {
        /* seed fallback: the change of the mean per-angle score */
        method = "score";
        if (common) {
            overall = fabs(sum_c / (double)common - sum_p / (double)common);
        } else {
            double mc = 0.0, mp = 0.0;
            for (size_t i = 0; i < c->n_angles; i++)
                mc += c->angles[i].change_score / (double)c->n_angles;
            for (size_t j = 0; j < p->n_angles; j++)
                mp += p->angles[j].change_score / (double)p->n_angles;
            overall = fabs(mc - mp);
        }
    }
    bcd__j_num(&ok, d, "overall_delta", overall);
    bcd__j_num(&ok, d, "stability_index", fmax(0.0, 1.0 - overall));
    bcd__j_str(&ok, d, "overall_trend", bcd_trend_label(overall));
    bcd__j_str(&ok, d, "comparison_method", method);
    bcd__j_num(&ok, d, "current_change_score", c->overall_change_score);
    bcd__j_num(&ok, d, "previous_change_score", p->overall_change_score);
    bcd__j_str(&ok, d, "current_model", c->model);
    bcd__j_str(&ok, d, "previous_model", p->model);
    if (!d || !only_cur || !cJSON_AddItemToObject(d, "angles_only_in_current", only_cur)) {
        cJSON_Delete(only_cur);
        ok = false;
    }
    if (!d || !only_prev || !cJSON_AddItemToObject(d, "angles_only_in_previous", only_prev)) {
        cJSON_Delete(only_prev);
        ok = false;
    }
    bcd__det_merge(&ok, d, per, det);
    bcd__j_str(&ok, d, "detection", source);
    st = bcd__svc_emit(svc, root, ok, out);
done:
    cJSON_Delete(det);
    bcd__analysis_clear(c);
    bcd__analysis_clear(p);
    free(a);
    return st;
}
