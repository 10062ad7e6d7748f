/* Reading what an analysis stored beside its scores: confidence factors and, where the
 * detect layer stored them, change probability, changed flags, local change, changed
 * regions, quality flags and heatmap locations. Absent or malformed values stay absent:
 * the report never invents evidence. */
#include <math.h>
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
