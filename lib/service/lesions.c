/*
 * Lesions of a session's photos (bcd/lesion.h), per angle, against the previous check's
 * photo of the same angle, as analyze stores them; and bcd_lesions_get(), the lesion
 * table of a stored analysis.
 *
 * Ids are carried from check to check: the previous check's stored lesions (their ids and
 * centres in its photo) are handed to the comparison, which gives a matched lesion the id
 * of the previous one and new lesions ids past the largest known. Lesions the previous
 * check listed that are not seen again stay in the list as not_visible (or gone), so an
 * id is never reused.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "detect/lesion_internal.h"
#include "detection.h"

/* The first image (order_index 0, else the lowest) of each angle: indexes into rows. */
static void first_images(const struct bcd__image_row *rows, size_t n, int idx[BCD__ANGLE_COUNT])
{
    for (int a = 0; a < BCD__ANGLE_COUNT; a++)
        idx[a] = -1;
    for (size_t i = 0; i < n; i++) {
        int a = bcd__angle_index(rows[i].angle);
        if (a < 0)
            continue;
        if (idx[a] < 0 || rows[i].order_index < rows[idx[a]].order_index)
            idx[a] = (int)i;
    }
}

/* The previous check's lesions of one angle, from its stored details. */
struct refs {
    bcd_lesion_ref *r;
    size_t n;
    uint32_t next_id;
};

static bool read_refs(const cJSON *details, const char *angle, struct refs *out)
{
    memset(out, 0, sizeof *out);
    const cJSON *per = cJSON_GetObjectItemCaseSensitive(details, "per_angle"), *it;
    cJSON_ArrayForEach(it, per)
    {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(it, "angle_type");
        if (!cJSON_IsString(name) || strcmp(name->valuestring, angle) != 0)
            continue;
        const cJSON *les = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(it, "lesions"), "lesions");
        int n = cJSON_GetArraySize(les);
        if (n <= 0)
            return true;
        out->r = calloc((size_t)n, sizeof *out->r);
        if (!out->r)
            return false;
        const cJSON *l;
        cJSON_ArrayForEach(l, les)
        {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(l, "id");
            const cJSON *c = cJSON_GetObjectItemCaseSensitive(l, "center");
            if (!cJSON_IsNumber(id) || id->valuedouble < 1 || id->valuedouble > 4e9)
                continue;
            uint32_t v = (uint32_t)id->valuedouble;
            if (v >= out->next_id)
                out->next_id = v + 1;
            if (!cJSON_IsArray(c) || cJSON_GetArraySize(c) != 2)
                continue;
            const cJSON *x = cJSON_GetArrayItem(c, 0), *y = cJSON_GetArrayItem(c, 1);
            if (!cJSON_IsNumber(x) || !cJSON_IsNumber(y))
                continue;
            out->r[out->n++] = (bcd_lesion_ref){ v, x->valuedouble, y->valuedouble };
        }
        return true;
    }
    return true;
}

struct les_job {
    const bcd_ctx *proto;
    unsigned char *cur_data[BCD__ANGLE_COUNT], *prev_data[BCD__ANGLE_COUNT];
    size_t cur_len[BCD__ANGLE_COUNT], prev_len[BCD__ANGLE_COUNT];
    struct refs refs[BCD__ANGLE_COUNT];
    double mm_per_px;
    /* the whole-image alignment, previous -> current photo pixels, offered as a prior */
    double prior[BCD__ANGLE_COUNT][6];
    bool has_prior[BCD__ANGLE_COUNT];
    /* the photos' own sizes, when known: they are decoded at a reduced scale */
    uint32_t cw[BCD__ANGLE_COUNT], ch[BCD__ANGLE_COUNT], pw[BCD__ANGLE_COUNT], ph[BCD__ANGLE_COUNT];
    bcd_lesion_result *out[BCD__ANGLE_COUNT];
    bcd_status st[BCD__ANGLE_COUNT];
};

static void lesion_one(void *arg, size_t i)
{
    struct les_job *j = arg;
    bcd_ctx *ctx = NULL;
    bcd_image *cur = NULL, *prev = NULL;
    j->st[i] = BCD_OK;
    if (!j->cur_data[i])
        return;
    bcd_status st = bcd__ctx_clone(&ctx, j->proto);
    /* decoded at the smallest JPEG scale that keeps the analysis size (a quarter of the
     * work for a 12 MP photo); positions are given back in the photo's own pixels */
    bcd_image_decode_options dopt = BCD_IMAGE_DECODE_OPTIONS_INIT;
    dopt.min_long_side = BCD__SPOT_SIDE;
    if (st == BCD_OK)
        st = bcd_image_decode_ext(&cur, ctx, j->cur_data[i], j->cur_len[i], j->cw[i] ? &dopt : NULL);
    /* a previous photo that cannot be read leaves the angle as a first check */
    if (st == BCD_OK && j->prev_data[i] &&
        bcd_image_decode_ext(&prev, ctx, j->prev_data[i], j->prev_len[i], j->pw[i] ? &dopt : NULL) != BCD_OK)
        prev = NULL;
    /* sizes that do not fit the decoded images (another photo in the slot): full size */
    if (cur && j->cw[i] && (cur->width > j->cw[i] || cur->height > j->ch[i] ||
                            fabs((double)cur->width / cur->height - (double)j->cw[i] / j->ch[i]) > 0.02)) {
        bcd_image_free(cur);
        cur = NULL;
        j->cw[i] = j->ch[i] = 0;
        st = bcd_image_decode(&cur, ctx, j->cur_data[i], j->cur_len[i]);
    }
    if (prev && j->pw[i] && (prev->width > j->pw[i] || prev->height > j->ph[i] ||
                             fabs((double)prev->width / prev->height - (double)j->pw[i] / j->ph[i]) > 0.02)) {
        bcd_image_free(prev);
        prev = NULL;
        j->pw[i] = j->ph[i] = 0;
        if (bcd_image_decode(&prev, ctx, j->prev_data[i], j->prev_len[i]) != BCD_OK)
            prev = NULL;
    }
    if (st == BCD_OK) {
        bcd_lesion_options o = BCD_LESION_OPTIONS_INIT;
        o.mm_per_px = j->mm_per_px;
        o.previous_mm_per_px = j->mm_per_px;
        o.previous = j->refs[i].r;
        o.nprevious = j->refs[i].n;
        o.next_id = j->refs[i].next_id;
        if (j->has_prior[i])
            o.prior = j->prior[i];
        o.current_width = j->cw[i];
        o.current_height = j->ch[i];
        if (prev) {
            o.previous_width = j->pw[i];
            o.previous_height = j->ph[i];
        }
        st = prev ? bcd_lesion_compare(&j->out[i], ctx, cur, prev, &o) : bcd_lesion_find(&j->out[i], ctx, cur, &o);
    }
    j->st[i] = st;
    bcd_image_free(cur);
    bcd_image_free(prev);
    bcd_ctx_free(ctx);
}

bcd_status bcd__det_lesions(bcd_service *svc, struct bcd__detection *d, const char *session_id,
                            const char *previous_session_id, const char *previous_details)
{
    struct bcd__image_row *cr = NULL, *pr = NULL;
    size_t ncr = 0, npr = 0;
    bcd_status st = bcd__store_image_list(svc->store, session_id, &cr, &ncr);
    if (st != BCD_OK)
        return bcd__svc_from_store(svc, st);
    if (previous_session_id && previous_session_id[0]) {
        st = bcd__store_image_list(svc->store, previous_session_id, &pr, &npr);
        if (st != BCD_OK) {
            free(cr);
            return bcd__svc_from_store(svc, st);
        }
    }
    int ci[BCD__ANGLE_COUNT], pi[BCD__ANGLE_COUNT];
    first_images(cr, ncr, ci);
    first_images(pr, npr, pi);
    cJSON *details = previous_details ? cJSON_Parse(previous_details) : NULL;
    struct les_job *j = calloc(1, sizeof *j);
    if (!j) {
        st = bcd__svc_fail(svc, BCD_ENOMEM, "out_of_memory", "out of memory");
        goto done;
    }
    j->proto = svc->ctx;
    const char *mm = bcd_ctx_get(svc->ctx, "BCD_MM_PER_PX");
    j->mm_per_px = mm ? atof(mm) : 0.0;
    if (!(j->mm_per_px > 0.0 && j->mm_per_px < 100.0))
        j->mm_per_px = 0.0;
    for (size_t i = 0; i < d->n; i++) {
        int a = bcd__angle_index(d->a[i].angle);
        if (a < 0 || ci[a] < 0)
            continue;
        /* a photo that cannot be read has no lesions; the analysis goes on */
        if (bcd__store_blob_get(svc->store, cr[ci[a]].storage_path, BCD__MAX_IMAGE_FILE, &j->cur_data[i],
                                &j->cur_len[i]) != BCD_OK) {
            bcd__error_clear(&svc->store->err);
            j->cur_data[i] = NULL;
            continue;
        }
        if (pi[a] >= 0 && bcd__store_blob_get(svc->store, pr[pi[a]].storage_path, BCD__MAX_IMAGE_FILE,
                                              &j->prev_data[i], &j->prev_len[i]) != BCD_OK) {
            bcd__error_clear(&svc->store->err);
            j->prev_data[i] = NULL;
        }
        /* the alignment of the working copies, in full-size pixels: x_full = s x_reduced
         * on both sides (pixel centres at integers, up to a fraction of a pixel) */
        const struct bcd__det_angle *g = &d->a[i];
        j->cw[i] = g->width;
        j->ch[i] = g->height;
        j->pw[i] = g->pwidth;
        j->ph[i] = g->pheight;
        double m[6];
        if (g->compared && g->r && g->psx > 0 && !(bcd_detect_result_flags(g->r) & BCD_DETECT_MISALIGNED) &&
            bcd_detect_result_matrix(g->r, m) == BCD_OK) {
            double *q = j->prior[i];
            q[0] = m[0] * g->sx / g->psx;
            q[1] = m[1] * g->sx / g->psy;
            q[2] = m[2] * g->sx;
            q[3] = m[3] * g->sy / g->psx;
            q[4] = m[4] * g->sy / g->psy;
            q[5] = m[5] * g->sy;
            j->has_prior[i] = true;
        }
        if (details && !read_refs(details, d->a[i].angle, &j->refs[i])) {
            st = bcd__svc_fail(svc, BCD_ENOMEM, "out_of_memory", "out of memory");
            goto done;
        }
    }
    bcd__svc_parallel_for(d->n, bcd__svc_threads(svc, BCD__ANGLE_COUNT), lesion_one, j);
    for (size_t i = 0; i < d->n; i++) {
        if (j->st[i] == BCD_ENOMEM && st == BCD_OK)
            st = bcd__svc_fail(svc, BCD_ENOMEM, "out_of_memory", "out of memory finding lesions");
        bcd_lesion_result_free(d->a[i].lesions);
        d->a[i].lesions = j->out[i];
        j->out[i] = NULL;
    }
    if (st == BCD_OK)
        bcd__det_combine(d);
done:
    if (j) {
        for (size_t i = 0; i < BCD__ANGLE_COUNT; i++) {
            free(j->cur_data[i]);
            free(j->prev_data[i]);
            free(j->refs[i].r);
            bcd_lesion_result_free(j->out[i]);
        }
        free(j);
    }
    cJSON_Delete(details);
    free(cr);
    free(pr);
    return st;
}

/* ------------------------------------------------------------------ the lesion table */

static void angle_table(bool *ok, cJSON *arr, const cJSON *it)
{
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(it, "angle_type");
    const cJSON *les = cJSON_GetObjectItemCaseSensitive(it, "lesions");
    if (!cJSON_IsString(name) || !cJSON_IsObject(les))
        return;
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddItemToArray(arr, o)) {
        cJSON_Delete(o);
        *ok = false;
        return;
    }
    bcd__j_str(ok, o, "angle_type", name->valuestring);
    static const char *const keys[] = { "status", "reason", "mm_per_px", "matched", "registration", "lesions" };
    for (size_t k = 0; k < sizeof keys / sizeof *keys && *ok; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(les, keys[k]);
        cJSON *c = v ? cJSON_Duplicate(v, 1) : cJSON_CreateNull();
        if (!c || !cJSON_AddItemToObject(o, keys[k], c)) {
            cJSON_Delete(c);
            *ok = false;
        }
    }
    size_t changed = 0;
    const cJSON *l, *list = cJSON_GetObjectItemCaseSensitive(les, "lesions");
    cJSON_ArrayForEach(l, list)
    {
        changed += cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(l, "changed"));
    }
    bcd__j_int(ok, o, "changed", (double)changed);
}

bcd_status bcd_lesions_get(char **out, bcd_service *svc, const char *user_id, const char *session_id)
{
    if (!svc)
        return BCD_EINVAL;
    bcd__svc_clear(svc);
    if (!out)
        return bcd__svc_fail(svc, BCD_EINVAL, "invalid_argument", "out is NULL");
    struct bcd__session_row srow;
    bcd_status st = bcd__svc_owned_session(svc, user_id, session_id, &srow);
    if (st != BCD_OK)
        return st;
    char *dj = NULL;
    st = bcd__store_analysis_details(svc->store, srow.id, &dj);
    if (st != BCD_OK)
        return bcd__svc_from_store(svc, st);
    cJSON *details = dj ? cJSON_Parse(dj) : NULL;
    free(dj);
    const cJSON *per = cJSON_GetObjectItemCaseSensitive(details, "per_angle");
    bool ok = true;
    cJSON *root = cJSON_CreateObject();
    bcd__j_bool(&ok, root, "success", true);
    cJSON *d = bcd__j_obj(&ok, root, "data");
    bcd__j_str(&ok, d, "session_id", srow.id);
    const cJSON *prev = cJSON_GetObjectItemCaseSensitive(details, "previous_session_id");
    bcd__j_str(&ok, d, "previous_session_id", cJSON_IsString(prev) ? prev->valuestring : NULL);
    cJSON *arr = bcd__j_arr(&ok, d, "angles");
    const cJSON *it;
    cJSON_ArrayForEach(it, per)
    {
        angle_table(&ok, arr, it);
    }
    cJSON_Delete(details);
    return bcd__svc_emit(svc, root, ok, out);
}
