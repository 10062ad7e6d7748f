/* The written summary of a report: every sentence is chosen and filled from the numbers
 * (scores against the baseline and the previous check, detect evidence where stored,
 * photo quality, confidence, the history trend). No fixed text stands in for a result.
 *
 * Wording: the scores compare photos; they are not a diagnosis. Advice stays within what
 * the numbers support: retake a poor photo, keep checking, and, when a change is
 * flagged, look at it and show a doctor if the person sees it too. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bcd/analysis.h"
#include "report.h"

/* Confidence bands of the wording. */
#define CONF_HIGH 0.75
#define CONF_LOW 0.5

struct lines {
    char **v;
    size_t n;
    bool oom;
};

static void add_line(struct lines *l, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void add_line(struct lines *l, const char *fmt, ...)
{
    if (l->oom)
        return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    for (char *p = buf; *p; p++) /* numbers in C notation whatever LC_NUMERIC says */
        if (*p == ',' && p > buf && p[-1] >= '0' && p[-1] <= '9' && p[1] >= '0' && p[1] <= '9')
            *p = '.';
    char **nv = realloc(l->v, (l->n + 1) * sizeof *nv);
    char *s = bcd__strdup(buf);
    if (!nv || !s) {
        if (nv)
            l->v = nv;
        free(s);
        l->oom = true;
        return;
    }
    l->v = nv;
    l->v[l->n++] = s;
}

static void lines_free(struct lines *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static const char *label_words(double d)
{
    const char *l = bcd_trend_label(d);
    if (!l)
        return "undetermined";
    if (strcmp(l, "stable") == 0)
        return "stable";
    if (strcmp(l, "mild_variation") == 0)
        return "mild variation";
    return "significant shift";
}

static const char *band_words(double d)
{
    const char *l = bcd_trend_label(d);
    if (!l)
        return "";
    if (strcmp(l, "stable") == 0)
        return "below 0.10";
    if (strcmp(l, "mild_variation") == 0)
        return "between 0.10 and 0.25";
    return "0.25 or more";
}

/* "a", "a and b", "a, b and c" of the names in idx[0..n). */
static void join_names(char *buf, size_t cap, const char *const *names, size_t n)
{
    buf[0] = '\0';
    size_t used = 0;
    for (size_t i = 0; i < n && used < cap; i++) {
        const char *sep = i == 0 ? "" : i + 1 == n ? " and " : ", ";
        int w = snprintf(buf + used, cap - used, "%s%s", sep, names[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

struct ranked {
    const struct bcd__rep_angle *g;
    double v;
};

static int by_value_desc(const void *a, const void *b)
{
    double x = ((const struct ranked *)a)->v, y = ((const struct ranked *)b)->v;
    return (x < y) - (x > y);
}

static bool blurred(const struct bcd__rep_angle *g)
{
    return (g->has_qflags && (g->qflags & BCD__REP_Q_BLURRED)) || (!isnan(g->sharpness) && g->sharpness < BCD__REP_BLURRED);
}

static bool clipped(const struct bcd__rep_angle *g)
{
    return (g->has_qflags && (g->qflags & BCD__REP_Q_CLIPPED)) ||
           (!isnan(g->clipped_fraction) && g->clipped_fraction > BCD__REP_CLIPPED);
}

static const struct bcd__rep_angle *find_angle(const struct bcd__rep_session *s, const char *name)
{
    for (size_t i = 0; s && i < s->n_angles; i++)
        if (strcmp(s->angles[i].angle, name) == 0)
            return &s->angles[i];
    return NULL;
}

/* Against the baseline. */
static void baseline_part(struct lines *sum, const struct bcd__rep_session *s, bool first_in_history)
{
    char date[48];
    bcd__rep_format_date(date, sizeof date, s->created_at, BCD__REP_DATE);
    if (s->baseline_sessions == 0) {
        if (first_in_history)
            add_line(sum,
                     "This is your first analyzed check (%s, %zu of 6 angles): it sets the baseline that later "
                     "checks are compared with, so it has no change scores yet.",
                     date, s->n_angles);
        else
            add_line(sum,
                     "No earlier check was analyzed with the same model (%s), so this check (%s) starts a new "
                     "baseline and has no change scores yet.",
                     s->model, date);
        return;
    }
    add_line(sum, "Overall change against your baseline (the mean of %d earlier check%s): %.3f, %s (%s).",
             s->baseline_sessions, s->baseline_sessions == 1 ? "" : "s", s->overall_change_score,
             label_words(s->overall_change_score), band_words(s->overall_change_score));

    struct ranked r[BCD__REP_ANGLES];
    size_t nr = 0;
    const char *unscored[BCD__REP_ANGLES];
    size_t nun = 0;
    const struct bcd__rep_angle *top = NULL;
    for (size_t i = 0; i < s->n_angles; i++) {
        const struct bcd__rep_angle *g = &s->angles[i];
        if (g->baseline_sessions == 0) {
            unscored[nun++] = g->angle;
            continue;
        }
        if (!top || g->change_score > top->change_score)
            top = g;
        if (g->change_score >= BCD_TREND_MILD)
            r[nr++] = (struct ranked){g, g->change_score};
    }
    qsort(r, nr, sizeof r[0], by_value_desc);
    if (nr) {
        char buf[512] = "";
        size_t used = 0;
        for (size_t i = 0; i < nr && used < sizeof buf; i++) {
            int w = snprintf(buf + used, sizeof buf - used, "%s%s %.3f (%s)", i ? ", " : "", r[i].g->angle,
                             r[i].v, label_words(r[i].v));
            if (w > 0)
                used += (size_t)w;
        }
        add_line(sum, "Angle%s outside the stable range: %s.", nr == 1 ? "" : "s", buf);
    } else if (top) {
        add_line(sum, "No angle is outside the stable range; the largest score is %s at %.3f.", top->angle,
                 top->change_score);
    }
    if (nun) {
        char names[128];
        join_names(names, sizeof names, unscored, nun);
        add_line(sum, "%s %s no earlier photo to compare with yet.", names, nun == 1 ? "has" : "have");
    }
}

/* Against the previous analyzed check. */
static void previous_part(struct lines *sum, const struct bcd__rep_session *s, const struct bcd__rep_session *prev)
{
    if (!prev)
        return;
    char date[48];
    bcd__rep_format_date(date, sizeof date, prev->created_at,
                         bcd__rep_same_day(prev->created_at, s->created_at) ? BCD__REP_DATE_TIME : BCD__REP_DATE);
    char overall[160];
    if (!isnan(s->delta_previous) && s->delta_method && strcmp(s->delta_method, "embedding") == 0)
        snprintf(overall, sizeof overall, "the overall distance between the two checks is %.3f (%s)",
                 s->delta_previous, label_words(s->delta_previous));
    else if (!isnan(s->delta_previous))
        snprintf(overall, sizeof overall, "the mean change score moved by %.3f (%s)", s->delta_previous,
                 label_words(s->delta_previous));
    else
        snprintf(overall, sizeof overall, "the two checks could not be compared as a whole");

    struct ranked r[BCD__REP_ANGLES];
    size_t nr = 0;
    const struct bcd__rep_angle *top = NULL;
    for (size_t i = 0; i < s->n_angles; i++) {
        const struct bcd__rep_angle *g = &s->angles[i];
        if (isnan(g->distance_previous))
            continue;
        if (!top || g->distance_previous > top->distance_previous)
            top = g;
        if (g->distance_previous >= BCD_TREND_MILD)
            r[nr++] = (struct ranked){g, g->distance_previous};
    }
    qsort(r, nr, sizeof r[0], by_value_desc);
    char angles[512] = "";
    if (nr) {
        size_t used = 0;
        for (size_t i = 0; i < nr && used < sizeof angles; i++) {
            int w = snprintf(angles + used, sizeof angles - used, "%s%s %.3f (%s)", i ? ", " : "", r[i].g->angle,
                             r[i].v, label_words(r[i].v));
            if (w > 0)
                used += (size_t)w;
        }
        add_line(sum, "Since the previous check (%s) %s; angle%s that moved beyond the stable range: %s.", date,
                 overall, nr == 1 ? "" : "s", angles);
    } else if (top) {
        add_line(sum, "Since the previous check (%s) %s; no angle moved beyond the stable range (largest: %s, %.3f).",
                 date, overall, top->angle, top->distance_previous);
    } else {
        add_line(sum, "Since the previous check (%s) %s.", date, overall);
    }
    const char *newer[BCD__REP_ANGLES], *gone[BCD__REP_ANGLES];
    size_t nn = 0, ng = 0;
    for (size_t i = 0; i < s->n_angles; i++)
        if (!find_angle(prev, s->angles[i].angle))
            newer[nn++] = s->angles[i].angle;
    for (size_t i = 0; i < prev->n_angles; i++)
        if (!find_angle(s, prev->angles[i].angle))
            gone[ng++] = prev->angles[i].angle;
    char names[128];
    if (nn) {
        join_names(names, sizeof names, newer, nn);
        add_line(sum, "%s %s not photographed in the previous check.", names, nn == 1 ? "was" : "were");
    }
    if (ng) {
        join_names(names, sizeof names, gone, ng);
        add_line(sum, "%s %s photographed last time but not in this check.", names, ng == 1 ? "was" : "were");
    }
}

/* Detect evidence, where the analysis stored it. */
static void evidence_part(struct lines *sum, const struct bcd__rep_session *s)
{
    if (!isnan(s->change_probability))
        add_line(sum, "Change detection puts the probability of a real change at %.0f%%%s.",
                 100.0 * s->change_probability,
                 s->changed == 1 ? " (flagged as changed)" : s->changed == 0 ? " (not flagged)" : "");
    else if (s->changed >= 0)
        add_line(sum, "Change detection %s this check as changed.", s->changed ? "flagged" : "did not flag");
    char buf[512] = "";
    size_t used = 0, k = 0;
    for (size_t i = 0; i < s->n_angles; i++) {
        const struct bcd__rep_angle *g = &s->angles[i];
        if (!(g->changed == 1 || g->n_regions > 0) || used >= sizeof buf)
            continue;
        int w;
        if (!isnan(g->local_change))
            w = snprintf(buf + used, sizeof buf - used, "%s%s (%zu region%s, local change %.2f)", k ? ", " : "",
                         g->angle, g->n_regions, g->n_regions == 1 ? "" : "s", g->local_change);
        else
            w = snprintf(buf + used, sizeof buf - used, "%s%s (%zu region%s)", k ? ", " : "", g->angle,
                         g->n_regions, g->n_regions == 1 ? "" : "s");
        if (w > 0)
            used += (size_t)w;
        k++;
    }
    if (k)
        add_line(sum, "Changed areas were found in %s.", buf);
}

static void quality_part(struct lines *warn, struct lines *next, const struct bcd__rep_session *s)
{
    const char *retake_blur[BCD__REP_ANGLES], *retake_light[BCD__REP_ANGLES], *retake_small[BCD__REP_ANGLES],
        *retake_align[BCD__REP_ANGLES];
    size_t nb = 0, nl = 0, ns = 0, na = 0;
    for (size_t i = 0; i < s->n_angles; i++) {
        const struct bcd__rep_angle *g = &s->angles[i];
        if (blurred(g)) {
            if (!isnan(g->sharpness))
                add_line(warn, "The %s photo looks blurred (sharpness %.2f), so its score is less reliable.", g->angle,
                         g->sharpness);
            else
                add_line(warn, "The %s photo looks blurred, so its score is less reliable.", g->angle);
            retake_blur[nb++] = g->angle;
        }
        if (clipped(g)) {
            if (!isnan(g->clipped_fraction) && g->clipped_fraction > 0)
                add_line(warn, "%.0f%% of the %s photo is under- or over-exposed.", 100.0 * g->clipped_fraction,
                         g->angle);
            else
                add_line(warn, "The %s photo is under- or over-exposed.", g->angle);
            retake_light[nl++] = g->angle;
        }
        if (g->has_qflags && (g->qflags & BCD__REP_Q_SMALL)) {
            add_line(warn, "In the %s photo the body takes up too little of the frame.", g->angle);
            retake_small[ns++] = g->angle;
        }
        if (g->has_qflags && (g->qflags & BCD__REP_Q_MISALIGNED)) {
            add_line(warn, "The %s photo could not be aligned with the previous one, so it was not compared in detail.",
                     g->angle);
            retake_align[na++] = g->angle;
        }
    }
    const char *missing[BCD__REP_ANGLES];
    size_t nm = 0;
    for (int a = 0; a < BCD__REP_ANGLES; a++)
        if (!find_angle(s, bcd__rep_angles[a]))
            missing[nm++] = bcd__rep_angles[a];
    char names[128];
    if (nm) {
        join_names(names, sizeof names, missing, nm);
        add_line(warn, "This check has no photo of %s.", names);
    }
    if (nb) {
        join_names(names, sizeof names, retake_blur, nb);
        add_line(next, "Retake the %s photo%s holding the phone steady (or on a stand) in good light.", names,
                 nb == 1 ? "" : "s");
    }
    if (nl) {
        join_names(names, sizeof names, retake_light, nl);
        add_line(next, "Retake the %s photo%s in even light, without direct sun, flash glare or deep shadow.", names,
                 nl == 1 ? "" : "s");
    }
    if (ns) {
        join_names(names, sizeof names, retake_small, ns);
        add_line(next, "Retake the %s photo%s closer, so that the body fills most of the frame.", names,
                 ns == 1 ? "" : "s");
    }
    if (na) {
        join_names(names, sizeof names, retake_align, na);
        add_line(next, "Retake the %s photo%s from the same position and distance as last time.", names,
                 na == 1 ? "" : "s");
    }
    if (nm) {
        join_names(names, sizeof names, missing, nm);
        add_line(next, "Next time, also photograph %s, so that every angle can be compared.", names);
    }
}

static char *confidence_note(const struct bcd__rep_session *s)
{
    char buf[256];
    if (isnan(s->confidence))
        return bcd__strdup("Confidence is not known for this check.");
    const char *band = s->confidence >= CONF_HIGH ? "high" : s->confidence >= CONF_LOW ? "moderate" : "low";
    /* the weakest factor, where the analysis stored them */
    const char *what = NULL;
    double v = INFINITY;
    if (!isnan(s->f_coverage) && s->f_coverage < v) {
        v = s->f_coverage;
        what = "angle coverage";
    }
    if (!isnan(s->f_quality) && s->f_quality < v) {
        v = s->f_quality;
        what = "image quality";
    }
    if (!isnan(s->f_baseline) && s->f_baseline < v) {
        v = s->f_baseline;
        what = "the size of the baseline";
    }
    if (what && s->confidence < CONF_HIGH)
        snprintf(buf, sizeof buf, "Confidence %.2f (%s), limited mostly by %s (%.2f).", s->confidence, band, what, v);
    else
        snprintf(buf, sizeof buf, "Confidence %.2f (%s).", s->confidence, band);
    for (char *p = buf; *p; p++)
        if (*p == ',' && p > buf && p[-1] >= '0' && p[-1] <= '9' && p[1] >= '0' && p[1] <= '9')
            *p = '.';
    return bcd__strdup(buf);
}

static void trend_part(struct lines *sum, const struct bcd__rep_trend *t, size_t cur_flags)
{
    if (!t)
        return;
    const struct bcd__rep_series_trend *o = &t->overall;
    if (o->n_points >= 2) {
        const char *how = strcmp(o->direction, "increasing") == 0   ? "rising"
                          : strcmp(o->direction, "decreasing") == 0 ? "falling"
                                                                    : "flat";
        add_line(sum,
                 "Over your %zu scored checks the overall change is %s (Theil-Sen slope %+.3f per check); its "
                 "fitted level at the latest check is %.3f, %s.",
                 o->n_points, how, o->slope, o->level, label_words(o->level));
    }
    if (t->n_flagged)
        add_line(sum, "%zu of your %zu analyzed checks %s flagged%s.", t->n_flagged, t->n_sessions,
                 t->n_flagged == 1 ? "was" : "were", cur_flags ? ", including this one" : "");
}

static void next_part(struct lines *next, const struct bcd__rep_session *s, bool first_in_history,
                      size_t nquality_steps)
{
    unsigned f = bcd__rep_flags(s);
    /* angles that call for a look: flagged by detect, a significant score, or a significant
     * move since the previous check */
    const char *look[BCD__REP_ANGLES], *watch[BCD__REP_ANGLES];
    size_t nl = 0, nw = 0;
    for (size_t i = 0; i < s->n_angles; i++) {
        const struct bcd__rep_angle *g = &s->angles[i];
        double sc = g->baseline_sessions > 0 ? g->change_score : 0.0;
        double dp = isnan(g->distance_previous) ? 0.0 : g->distance_previous;
        double m = fmax(sc, dp);
        if (g->changed == 1 || m >= BCD_TREND_SIGNIFICANT)
            look[nl++] = g->angle;
        else if (m >= BCD_TREND_MILD)
            watch[nw++] = g->angle;
    }
    char names[128];
    if (f || nl) {
        if (nl) {
            join_names(names, sizeof names, look, nl);
            add_line(next, "Look at the %s photo%s next to the earlier ones below.", names, nl == 1 ? "" : "s");
        }
        add_line(next,
                 "These numbers compare photos and are not a diagnosis. If you also see a spot that is new, "
                 "growing, or changing in colour, shape or border, or one that itches or bleeds, show it to a "
                 "doctor or dermatologist.");
    } else if (nw) {
        join_names(names, sizeof names, watch, nw);
        add_line(next,
                 "Keep an eye on %s: take your next check in the same place, light and distance so that the "
                 "comparison stays fair, and ask a doctor if you notice a change yourself.",
                 names);
    } else if (s->baseline_sessions == 0) {
        add_line(next, "Take your next check in the same place and light; it will be compared with %s.",
                 first_in_history ? "this one" : "this new baseline");
    } else if (!nquality_steps) {
        add_line(next, "Nothing in these numbers calls for action; keep your regular checks.");
    }
}

/* Said last: how far the baseline is from full weight in the confidence. */
static void baseline_note(struct lines *next, const struct bcd__rep_session *s)
{
    if (s->baseline_sessions > 0 && s->baseline_sessions < 3 && !bcd__rep_flags(s))
        add_line(next, "Scores become steadier as your baseline grows (%d of 3 earlier checks so far).",
                 s->baseline_sessions);
}

bcd_status bcd__rep_text(struct bcd__rep_text *out, const struct bcd__rep_session *s,
                         const struct bcd__rep_session *prev, const struct bcd__rep_trend *t)
{
    memset(out, 0, sizeof *out);
    struct lines sum = {0}, warn = {0}, next = {0};
    bool first_in_history = prev == NULL;
    unsigned cur_flags = bcd__rep_flags(s);

    baseline_part(&sum, s, first_in_history);
    previous_part(&sum, s, prev);
    evidence_part(&sum, s);
    quality_part(&warn, &next, s);
    size_t nquality_steps = next.n;
    /* the flagged advice goes first: it matters most */
    struct lines lead = {0};
    next_part(&lead, s, first_in_history, nquality_steps);
    for (size_t i = 0; i < next.n; i++)
        add_line(&lead, "%s", next.v[i]);
    baseline_note(&lead, s);
    lines_free(&next);
    next = lead;
    char *conf = confidence_note(s);
    trend_part(&sum, t, cur_flags);

    struct bcd__buf b = {0}, f = {0};
    for (size_t i = 0; i < sum.n; i++) {
        bcd__buf_put(&f, i ? " " : "");
        bcd__buf_put(&f, sum.v[i]);
    }
    if (f.p)
        bcd__buf_put(&b, f.p);
    for (size_t i = 0; i < warn.n; i++) {
        bcd__buf_put(&b, b.len ? " " : "");
        bcd__buf_put(&b, warn.v[i]);
    }
    if (conf) {
        bcd__buf_put(&b, b.len ? " " : "");
        bcd__buf_put(&b, conf);
    }
    if (next.n) {
        bcd__buf_put(&b, b.len ? " Next: " : "Next: ");
        for (size_t i = 0; i < next.n; i++) {
            bcd__buf_put(&b, i ? " " : "");
            bcd__buf_put(&b, next.v[i]);
        }
    }
    bool oom = sum.oom || warn.oom || next.oom || !conf || b.oom || !b.p || f.oom || !f.p;
    lines_free(&sum);
    if (oom) {
        lines_free(&warn);
        lines_free(&next);
        free(conf);
        bcd__buf_free(&b);
        bcd__buf_free(&f);
        return BCD_ENOMEM;
    }
    out->summary = b.p;
    out->findings = f.p;
    out->warnings = warn.v;
    out->n_warnings = warn.n;
    out->next_steps = next.v;
    out->n_next = next.n;
    out->confidence_note = conf;
    return BCD_OK;
}

void bcd__rep_text_clear(struct bcd__rep_text *x)
{
    if (!x)
        return;
    free(x->summary);
    free(x->findings);
    for (size_t i = 0; i < x->n_warnings; i++)
        free(x->warnings[i]);
    free(x->warnings);
    for (size_t i = 0; i < x->n_next; i++)
        free(x->next_steps[i]);
    free(x->next_steps);
    free(x->confidence_note);
    memset(x, 0, sizeof *x);
}
