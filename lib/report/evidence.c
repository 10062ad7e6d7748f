/* Reading what an analysis stored beside its scores: confidence factors and, where the
 * detect layer stored them, change probability, changed flags, local change, changed
 * regions, quality flags and heatmap locations. Absent or malformed values stay absent:
 * the report never invents evidence. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

static double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) && isfinite(v->valuedouble) ? v->valuedouble : NAN;
}

/* 1/0 for a boolean, -1 otherwise */
static int flag(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) != 0 : -1;
}

static struct bcd__rep_angle *angle_of(struct bcd__rep_session *s, const char *name)
{
    for (size_t i = 0; name && i < s->n_angles; i++)
        if (strcmp(s->angles[i].angle, name) == 0)
            return &s->angles[i];
    return NULL;
}

static double coord(const cJSON *o, const char *k, int i)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, k), *v = cJSON_IsArray(a) ? cJSON_GetArrayItem(a, i) : NULL;
    return cJSON_IsNumber(v) && isfinite(v->valuedouble) ? v->valuedouble : NAN;
}

/* The changed lesions of a stored lesion list, strongest first (at most
 * BCD__REP_MAX_LESIONS). */
static void read_lesions(struct bcd__rep_angle *g, const cJSON *list, const cJSON *hom)
{
    g->n_lesions = 0;
    /* the registration (previous -> current), inverted: where a new lesion's place was */
    double H[9], Hi[9];
    bool inv = cJSON_GetArraySize(hom) == 9;
    for (int k = 0; inv && k < 9; k++) {
        const cJSON *v = cJSON_GetArrayItem(hom, k);
        inv = cJSON_IsNumber(v) && isfinite(v->valuedouble);
        H[k] = inv ? v->valuedouble : 0;
    }
    if (inv) {
        double det = H[0] * (H[4] * H[8] - H[5] * H[7]) - H[1] * (H[3] * H[8] - H[5] * H[6]) +
                     H[2] * (H[3] * H[7] - H[4] * H[6]);
        inv = fabs(det) > 1e-12;
        if (inv) {
            double c[9] = { H[4] * H[8] - H[5] * H[7], H[2] * H[7] - H[1] * H[8], H[1] * H[5] - H[2] * H[4],
                            H[5] * H[6] - H[3] * H[8], H[0] * H[8] - H[2] * H[6], H[2] * H[3] - H[0] * H[5],
                            H[3] * H[7] - H[4] * H[6], H[1] * H[6] - H[0] * H[7], H[0] * H[4] - H[1] * H[3] };
            for (int k = 0; k < 9; k++)
                Hi[k] = c[k] / det;
        }
    }
    const cJSON *l;
    cJSON_ArrayForEach(l, list)
    {
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(l, "state");
        if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(l, "changed")) || !cJSON_IsString(st))
            continue;
        struct bcd__rep_lesion e;
        memset(&e, 0, sizeof e);
        double id = num(l, "id");
        e.id = isfinite(id) && id >= 0 && id < 4e9 ? (unsigned)id : 0;
        snprintf(e.state, sizeof e.state, "%s", st->valuestring);
        e.x = coord(l, "center", 0);
        e.y = coord(l, "center", 1);
        e.px = coord(l, "previous_center", 0);
        e.py = coord(l, "previous_center", 1);
        e.d = num(l, "diameter_px");
        e.score = num(l, "score");
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(l, "change");
        e.diameter_change = num(c, "diameter_px");
        e.darkening = num(c, "darkening");
        e.delta_e = num(c, "delta_e");
        if (!isfinite(e.x) || !isfinite(e.y) || !isfinite(e.d))
            continue;
        if (!isfinite(e.px) && inv) {
            double w = Hi[6] * e.x + Hi[7] * e.y + Hi[8];
            if (fabs(w) > 1e-12) {
                e.px = (Hi[0] * e.x + Hi[1] * e.y + Hi[2]) / w;
                e.py = (Hi[3] * e.x + Hi[4] * e.y + Hi[5]) / w;
            }
        }
        /* insert by score */
        size_t k = g->n_lesions < BCD__REP_MAX_LESIONS ? g->n_lesions : BCD__REP_MAX_LESIONS - 1;
        if (g->n_lesions == BCD__REP_MAX_LESIONS && !(e.score > g->lesions[k].score))
            continue;
        while (k > 0 && e.score > g->lesions[k - 1].score) {
            g->lesions[k] = g->lesions[k - 1];
            k--;
        }
        g->lesions[k] = e;
        if (g->n_lesions < BCD__REP_MAX_LESIONS)
            g->n_lesions++;
    }
}

static bcd_status read_angle(struct bcd__rep_angle *g, const cJSON *o)
{
    if (!cJSON_IsObject(o))
        return BCD_OK;
    double lc = num(o, "local_change");
    if (!isnan(lc))
        g->local_change = fmin(1.0, fmax(0.0, lc));
    int ch = flag(o, "changed");
    if (ch >= 0)
        g->changed = ch;
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(o, "quality");
    if (cJSON_IsObject(q)) {
        int b = flag(q, "blurred"), c = flag(q, "clipped"), sm = flag(q, "subject_too_small"),
            al = flag(q, "aligned");
        if (b >= 0 || c >= 0 || sm >= 0 || al >= 0) {
            g->has_qflags = true;
            g->qflags = (b == 1 ? BCD__REP_Q_BLURRED : 0u) | (c == 1 ? BCD__REP_Q_CLIPPED : 0u) |
                        (sm == 1 ? BCD__REP_Q_SMALL : 0u) | (al == 0 ? BCD__REP_Q_MISALIGNED : 0u);
        }
    }
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(o, "changed_regions");
    if (cJSON_IsArray(r)) {
        char *txt = cJSON_PrintUnformatted(r);
        if (!txt)
            return BCD_ENOMEM;
        free(g->regions_json);
        g->regions_json = txt;
        g->n_regions = (size_t)cJSON_GetArraySize(r);
    }
    const cJSON *les = cJSON_GetObjectItemCaseSensitive(o, "lesions");
    read_lesions(g, cJSON_GetObjectItemCaseSensitive(les, "lesions"),
                 cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(les, "registration"), "homography"));
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(o, "heatmap");
    if (!cJSON_IsString(h))
        h = cJSON_GetObjectItemCaseSensitive(o, "heatmap_path");
    if (cJSON_IsString(h) && h->valuestring[0]) {
        char *p = bcd__strdup(h->valuestring);
        if (!p)
            return BCD_ENOMEM;
        free(g->heatmap_path);
        g->heatmap_path = p;
    }
    return BCD_OK;
}

static bcd_status read_level(struct bcd__rep_session *s, const cJSON *o)
{
    if (!cJSON_IsObject(o))
        return BCD_OK;
    double v;
    if (!isnan(v = num(o, "change_probability")))
        s->change_probability = fmin(1.0, fmax(0.0, v));
    int ch = flag(o, "changed");
    if (ch >= 0)
        s->changed = ch;
    if (!isnan(v = num(o, "angle_coverage")))
        s->f_coverage = v;
    if (!isnan(v = num(o, "image_quality")))
        s->f_quality = v;
    if (!isnan(v = num(o, "baseline")))
        s->f_baseline = v;
    bcd_status st = BCD_OK;
    const cJSON *per = cJSON_GetObjectItemCaseSensitive(o, "per_angle");
    const cJSON *it;
    if (cJSON_IsArray(per)) {
        cJSON_ArrayForEach(it, per)
        {
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(it, "angle_type");
            if (!cJSON_IsString(name))
                name = cJSON_GetObjectItemCaseSensitive(it, "angle");
            struct bcd__rep_angle *g = cJSON_IsString(name) ? angle_of(s, name->valuestring) : NULL;
            if (g && (st = read_angle(g, it)) != BCD_OK)
                return st;
        }
    }
    const cJSON *angles = cJSON_GetObjectItemCaseSensitive(o, "angles");
    if (cJSON_IsObject(angles)) {
        cJSON_ArrayForEach(it, angles)
        {
            struct bcd__rep_angle *g = angle_of(s, it->string);
            if (g && (st = read_angle(g, it)) != BCD_OK)
                return st;
        }
    }
    return BCD_OK;
}

bcd_status bcd__rep_read_details(struct bcd__rep_session *s, const char *details_json)
{
    if (!details_json)
        return BCD_OK;
    cJSON *root = cJSON_Parse(details_json);
    if (!root)
        return BCD_OK; /* not JSON: nothing to read (an out-of-memory parse reads as absent too) */
    bcd_status st = read_level(s, root);
    if (st == BCD_OK)
        st = read_level(s, cJSON_GetObjectItemCaseSensitive(root, "detect"));
    if (st == BCD_OK)
        st = read_level(s, cJSON_GetObjectItemCaseSensitive(root, "change_detection"));
    cJSON_Delete(root);
    return st;
}
