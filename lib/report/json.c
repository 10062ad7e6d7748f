/* The history and report documents (JSON), in the field names of the seeds' responses. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bcd/analysis.h"
#include "report.h"

/* Adders that remember an allocation failure in *ok; a NaN number becomes null. */
static void j_num(bool *ok, cJSON *o, const char *k, double v)
{
    if (!(isfinite(v) ? cJSON_AddNumberToObject(o, k, bcd__rep_round(v)) : cJSON_AddNullToObject(o, k)))
        *ok = false;
}

static void j_int(bool *ok, cJSON *o, const char *k, double v)
{
    if (!cJSON_AddNumberToObject(o, k, v))
        *ok = false;
}

static void j_str(bool *ok, cJSON *o, const char *k, const char *v)
{
    if (!(v ? cJSON_AddStringToObject(o, k, v) : cJSON_AddNullToObject(o, k)))
        *ok = false;
}

static void j_bool(bool *ok, cJSON *o, const char *k, bool v)
{
    if (!cJSON_AddBoolToObject(o, k, v))
        *ok = false;
}

static cJSON *j_obj(bool *ok, cJSON *o, const char *k)
{
    cJSON *c = cJSON_AddObjectToObject(o, k);
    if (!c)
        *ok = false;
    return c;
}

static cJSON *j_arr(bool *ok, cJSON *o, const char *k)
{
    cJSON *c = cJSON_AddArrayToObject(o, k);
    if (!c)
        *ok = false;
    return c;
}

static cJSON *j_push_obj(bool *ok, cJSON *arr)
{
    cJSON *it = cJSON_CreateObject();
    if (!it || !arr || !cJSON_AddItemToArray(arr, it)) {
        cJSON_Delete(it);
        *ok = false;
        return NULL;
    }
    return it;
}

static void j_push_str(bool *ok, cJSON *arr, const char *v)
{
    cJSON *s = cJSON_CreateString(v);
    if (!s || !arr || !cJSON_AddItemToArray(arr, s)) {
        cJSON_Delete(s);
        *ok = false;
    }
}

/* Parsed JSON text under k (left out when text is NULL or not JSON). */
static void j_raw(bool *ok, cJSON *o, const char *k, const char *text)
{
    if (!text)
        return;
    cJSON *v = cJSON_Parse(text);
    if (!v)
        return;
    if (!cJSON_AddItemToObject(o, k, v)) {
        cJSON_Delete(v);
        *ok = false;
    }
}

static const char *score_label(double score, int baseline_sessions)
{
    return baseline_sessions > 0 ? bcd_trend_label(score) : NULL;
}

static void flag_reasons(bool *ok, cJSON *o, const struct bcd__rep_session *s, unsigned f)
{
    cJSON *r = j_arr(ok, o, "flag_reasons");
    if (f & BCD__REP_FLAG_CHANGED)
        j_push_str(ok, r, "change_detected");
    if (f & BCD__REP_FLAG_OVERALL)
        j_push_str(ok, r, "overall_significant_shift");
    if (f & BCD__REP_FLAG_ANGLE)
        j_push_str(ok, r, "angle_significant_shift");
    cJSON *a = j_arr(ok, o, "flagged_angles");
    for (size_t i = 0; i < s->n_angles; i++) {
        const struct bcd__rep_angle *g = &s->angles[i];
        if (g->changed == 1 || (g->baseline_sessions > 0 && g->change_score >= BCD_TREND_SIGNIFICANT))
            j_push_str(ok, a, g->angle);
    }
}

/* Evidence keys appear only where the analysis stored them. */
static void angle_evidence(bool *ok, cJSON *it, const struct bcd__rep_angle *g, bool regions)
{
    if (!isnan(g->local_change))
        j_num(ok, it, "local_change", g->local_change);
    if (g->changed >= 0)
        j_bool(ok, it, "changed", g->changed == 1);
    if (regions && g->regions_json)
        j_raw(ok, it, "changed_regions", g->regions_json);
    else if (g->regions_json)
        j_int(ok, it, "changed_regions_count", (double)g->n_regions);
}

static void session_evidence(bool *ok, cJSON *o, const struct bcd__rep_session *s)
{
    if (!isnan(s->change_probability))
        j_num(ok, o, "change_probability", s->change_probability);
    if (s->changed >= 0)
        j_bool(ok, o, "changed", s->changed == 1);
}

static void history_session(bool *ok, cJSON *o, const struct bcd__rep_session *s, const struct bcd__rep_session *prev,
                            unsigned flags)
{
    j_str(ok, o, "session_id", s->session_id);
    j_str(ok, o, "created_at", s->created_at);
    j_num(ok, o, "days_since_first", s->days);
    j_num(ok, o, "overall_change_score", s->overall_change_score);
    j_str(ok, o, "overall_trend", score_label(s->overall_change_score, s->baseline_sessions));
    j_num(ok, o, "confidence", s->confidence);
    j_int(ok, o, "baseline_sessions", s->baseline_sessions);
    j_bool(ok, o, "is_baseline", s->baseline_sessions == 0);
    j_str(ok, o, "model", s->model);
    j_str(ok, o, "previous_session_id", prev ? prev->session_id : NULL);
    j_num(ok, o, "delta_from_previous", s->delta_previous);
    j_str(ok, o, "comparison_method", s->delta_method);
    session_evidence(ok, o, s);
    j_bool(ok, o, "flagged", flags != 0);
    flag_reasons(ok, o, s, flags);
    cJSON *per = j_arr(ok, o, "per_angle");
    for (size_t i = 0; *ok && i < s->n_angles; i++) {
        const struct bcd__rep_angle *g = &s->angles[i];
        cJSON *it = j_push_obj(ok, per);
        j_str(ok, it, "angle_type", g->angle);
        j_num(ok, it, "change_score", g->change_score);
        j_int(ok, it, "baseline_sessions", g->baseline_sessions);
        j_num(ok, it, "previous_score", g->previous_score);
        j_num(ok, it, "delta", isnan(g->previous_score) ? NAN : g->change_score - g->previous_score);
        j_num(ok, it, "embedding_distance", g->distance_previous);
        angle_evidence(ok, it, g, false);
    }
}

static void series_json(bool *ok, cJSON *o, const struct bcd__rep_series_trend *t)
{
    j_int(ok, o, "n_points", (double)t->n_points);
    j_num(ok, o, "slope", t->slope);
    j_num(ok, o, "intercept", t->intercept);
    j_num(ok, o, "level", t->level);
    j_num(ok, o, "latest", t->latest);
    j_str(ok, o, "label", t->label);
    j_str(ok, o, "direction", t->direction);
}

static void trend_json(bool *ok, cJSON *o, const struct bcd__rep_session *s, size_t n, const struct bcd__rep_trend *t)
{
    j_str(ok, o, "method", "theil_sen");
    j_str(ok, o, "x", "check_index");
    j_str(ok, o, "y", "overall_change_score");
    j_str(ok, o, "label_of", "level");
    j_num(ok, o, "slope", t->overall.slope);
    j_num(ok, o, "intercept", t->overall.intercept);
    j_num(ok, o, "level", t->overall.level);
    j_num(ok, o, "latest_overall_change_score", t->overall.latest);
    j_str(ok, o, "label", t->overall.label);
    j_str(ok, o, "overall_trend", t->overall.label);
    j_str(ok, o, "direction", t->overall.direction);
    j_int(ok, o, "n_sessions", (double)t->n_sessions);
    j_int(ok, o, "n_scored", (double)t->overall.n_points);
    cJSON *th = j_obj(ok, o, "thresholds");
    j_num(ok, th, "mild_variation", BCD_TREND_MILD);
    j_num(ok, th, "significant_shift", BCD_TREND_SIGNIFICANT);
    j_num(ok, th, "flat_slope", BCD__REP_FLAT_SLOPE);
    cJSON *fl = j_arr(ok, o, "flagged_sessions");
    for (size_t i = 0; *ok && i < n && t->flags; i++) {
        if (!t->flags[i])
            continue;
        cJSON *it = j_push_obj(ok, fl);
        j_str(ok, it, "session_id", s[i].session_id);
        j_str(ok, it, "created_at", s[i].created_at);
        j_int(ok, it, "index", (double)i);
        flag_reasons(ok, it, &s[i], t->flags[i]);
    }
    cJSON *pa = j_arr(ok, o, "per_angle");
    for (int a = 0; *ok && a < BCD__REP_ANGLES; a++) {
        if (t->angle[a].n_points == 0)
            continue;
        cJSON *it = j_push_obj(ok, pa);
        j_str(ok, it, "angle_type", bcd__rep_angles[a]);
        series_json(ok, it, &t->angle[a]);
    }
}

static cJSON *history_build(bool *ok, const char *user_id, const struct bcd__rep_session *s, size_t n,
                            const struct bcd__rep_trend *t)
{
    cJSON *root = cJSON_CreateObject();
    if (!root) {
        *ok = false;
        return NULL;
    }
    if (user_id)
        j_str(ok, root, "user_id", user_id);
    j_int(ok, root, "count", (double)n);
    cJSON *arr = j_arr(ok, root, "sessions");
    for (size_t i = 0; *ok && i < n; i++)
        history_session(ok, j_push_obj(ok, arr), &s[i], i ? &s[i - 1] : NULL, t->flags ? t->flags[i] : 0);
    trend_json(ok, j_obj(ok, root, "trend"), s, n, t);
    return root;
}

cJSON *bcd__rep_history_json(const char *user_id, const struct bcd__rep_session *s, size_t n,
                             const struct bcd__rep_trend *t)
{
    bool ok = true;
    cJSON *root = history_build(&ok, user_id, s, n, t);
    if (!ok) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

cJSON *bcd__rep_report_json(const struct bcd__rep_session *s, size_t n, size_t cur, const struct bcd__rep_trend *t,
                            const struct bcd__rep_text *text)
{
    bool ok = true;
    const struct bcd__rep_session *c = &s[cur], *p = cur ? &s[cur - 1] : NULL;
    unsigned flags = bcd__rep_flags(c);
    cJSON *d = cJSON_CreateObject();
    if (!d)
        return NULL;
    j_str(&ok, d, "session_id", c->session_id);
    j_num(&ok, d, "overall_change_score", c->overall_change_score);
    j_str(&ok, d, "created_at", c->created_at);
    cJSON *per = j_arr(&ok, d, "per_angle");
    for (size_t i = 0; ok && i < c->n_angles; i++) {
        const struct bcd__rep_angle *g = &c->angles[i];
        cJSON *it = j_push_obj(&ok, per);
        j_str(&ok, it, "angle_type", g->angle);
        j_num(&ok, it, "change_score", g->change_score);
        j_str(&ok, it, "summary", g->summary);
        j_str(&ok, it, "trend", score_label(g->change_score, g->baseline_sessions));
        j_int(&ok, it, "baseline_sessions", g->baseline_sessions);
        j_int(&ok, it, "image_count", g->image_count);
        j_num(&ok, it, "previous_score", g->previous_score);
        j_num(&ok, it, "delta", isnan(g->previous_score) ? NAN : g->change_score - g->previous_score);
        j_num(&ok, it, "embedding_distance", g->distance_previous);
        j_str(&ok, it, "trend_since_previous", isnan(g->distance_previous) ? NULL : bcd_trend_label(g->distance_previous));
        cJSON *q = j_obj(&ok, it, "quality");
        j_num(&ok, q, "score", g->quality);
        j_num(&ok, q, "sharpness", g->sharpness);
        j_num(&ok, q, "blur_variance", g->blur_variance);
        j_num(&ok, q, "clipped_fraction", g->clipped_fraction);
        j_bool(&ok, q, "blurred",
               (g->has_qflags && (g->qflags & BCD__REP_Q_BLURRED)) ||
                   (!isnan(g->sharpness) && g->sharpness < BCD__REP_BLURRED));
        j_bool(&ok, q, "poorly_exposed",
               (g->has_qflags && (g->qflags & BCD__REP_Q_CLIPPED)) ||
                   (!isnan(g->clipped_fraction) && g->clipped_fraction > BCD__REP_CLIPPED));
        if (g->has_qflags) {
            j_bool(&ok, q, "subject_too_small", (g->qflags & BCD__REP_Q_SMALL) != 0);
            j_bool(&ok, q, "misaligned", (g->qflags & BCD__REP_Q_MISALIGNED) != 0);
        }
        angle_evidence(&ok, it, g, true);
    }
    j_str(&ok, d, "summary", text->summary);
    j_num(&ok, d, "confidence", c->confidence);
    j_str(&ok, d, "confidence_note", text->confidence_note);
    cJSON *cf = j_obj(&ok, d, "confidence_factors");
    j_num(&ok, cf, "angle_coverage", c->f_coverage);
    j_num(&ok, cf, "image_quality", c->f_quality);
    j_num(&ok, cf, "baseline", c->f_baseline);
    j_str(&ok, d, "overall_trend", score_label(c->overall_change_score, c->baseline_sessions));
    j_int(&ok, d, "baseline_sessions", c->baseline_sessions);
    j_str(&ok, d, "model", c->model);
    j_bool(&ok, d, "is_first_session", cur == 0);
    j_int(&ok, d, "check_number", (double)(cur + 1));
    j_str(&ok, d, "previous_session_id", p ? p->session_id : NULL);
    j_str(&ok, d, "previous_created_at", p ? p->created_at : NULL);
    if (p) {
        cJSON *cmp = j_obj(&ok, d, "comparison");
        j_str(&ok, cmp, "previous_session_id", p->session_id);
        j_num(&ok, cmp, "overall_delta", c->delta_previous);
        j_str(&ok, cmp, "comparison_method", c->delta_method);
        j_num(&ok, cmp, "stability_index", isnan(c->delta_previous) ? NAN : fmax(0.0, 1.0 - c->delta_previous));
        j_str(&ok, cmp, "overall_trend", isnan(c->delta_previous) ? NULL : bcd_trend_label(c->delta_previous));
    } else if (!cJSON_AddNullToObject(d, "comparison")) {
        ok = false;
    }
    session_evidence(&ok, d, c);
    j_bool(&ok, d, "flagged", flags != 0);
    flag_reasons(&ok, d, c, flags);
    cJSON *w = j_arr(&ok, d, "quality_warnings");
    for (size_t i = 0; i < text->n_warnings; i++)
        j_push_str(&ok, w, text->warnings[i]);
    cJSON *nx = j_arr(&ok, d, "next_steps");
    for (size_t i = 0; i < text->n_next; i++)
        j_push_str(&ok, nx, text->next_steps[i]);
    if (ok) {
        cJSON *h = history_build(&ok, NULL, s, n, t);
        if (!h || !cJSON_AddItemToObject(d, "history", h)) {
            cJSON_Delete(h);
            ok = false;
        }
    }
    if (!ok) {
        cJSON_Delete(d);
        return NULL;
    }
    return d;
}
