/* Trend over a user's history: a Theil–Sen fit of the change scores against the check
 * index, its label by the seed thresholds, and which checks are flagged. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bcd/analysis.h"
#include "report.h"

void bcd__rep_session_init(struct bcd__rep_session *s)
{
    memset(s, 0, sizeof *s);
    s->f_coverage = s->f_quality = s->f_baseline = NAN;
    s->delta_previous = NAN;
    s->change_probability = NAN;
    s->changed = -1;
    s->confidence = NAN;
    for (size_t i = 0; i < BCD__REP_ANGLES; i++) {
        struct bcd__rep_angle *g = &s->angles[i];
        g->previous_score = g->distance_previous = g->local_change = NAN;
        g->changed = -1;
    }
}

void bcd__rep_session_clear(struct bcd__rep_session *s)
{
    if (!s)
        return;
    free(s->summary);
    for (size_t i = 0; i < BCD__REP_ANGLES; i++) {
        free(s->angles[i].summary);
        free(s->angles[i].regions_json);
        free(s->angles[i].heatmap_path);
    }
    bcd__rep_session_init(s);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bcd__rep_median(double *v, size_t n)
{
    if (n == 0)
        return NAN;
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

bcd_status bcd__rep_theil_sen(double *slope, double *intercept, const double *x, const double *y, size_t n)
{
    *slope = 0.0;
    *intercept = 0.0;
    if (n == 0)
        return BCD_EDOMAIN;
    if (n > 65536) /* 2^31 pairs: far beyond any history (callers thin to BCD__REP_MAX_FIT) */
        return BCD_ENOMEM;
    size_t pairs = n * (n - 1) / 2;
    double *buf = malloc((pairs > n ? pairs : n) * sizeof *buf);
    if (!buf)
        return BCD_ENOMEM;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (x[j] != x[i])
                buf[m++] = (y[j] - y[i]) / (x[j] - x[i]);
    bcd_status st = BCD_OK;
    if (m == 0) {
        st = BCD_EDOMAIN;
    } else {
        *slope = bcd__rep_median(buf, m);
    }
    for (size_t i = 0; i < n; i++)
        buf[i] = y[i] - *slope * x[i];
    *intercept = bcd__rep_median(buf, n);
    free(buf);
    return st;
}

/* Fit one series of m points (y in order, x = 0..m-1), thinned to BCD__REP_MAX_FIT. */
static bcd_status fit(struct bcd__rep_series_trend *t, const double *y, size_t m)
{
    t->n_points = m;
    t->slope = t->intercept = t->level = t->latest = NAN;
    t->label = "insufficient_data";
    t->direction = "undetermined";
    if (m == 0)
        return BCD_OK;
    t->latest = y[m - 1];
    if (m == 1) {
        t->level = fmax(0.0, y[0]);
        t->label = bcd_trend_label(t->level);
        return BCD_OK;
    }
    size_t k = m > BCD__REP_MAX_FIT ? BCD__REP_MAX_FIT : m;
    double *xs = malloc(2 * k * sizeof *xs);
    if (!xs)
        return BCD_ENOMEM;
    double *ys = xs + k;
    for (size_t i = 0; i < k; i++) {
        /* evenly spaced, first and last always included */
        size_t src = k == m ? i : (size_t)llround((double)i * (double)(m - 1) / (double)(k - 1));
        xs[i] = (double)src;
        ys[i] = y[src];
    }
    bcd_status st = bcd__rep_theil_sen(&t->slope, &t->intercept, xs, ys, k);
    free(xs);
    if (st == BCD_ENOMEM)
        return st;
    t->level = fmax(0.0, t->intercept + t->slope * (double)(m - 1));
    t->label = bcd_trend_label(t->level);
    if (!t->label)
        t->label = "insufficient_data";
    t->direction = t->slope > BCD__REP_FLAT_SLOPE ? "increasing"
                   : t->slope < -BCD__REP_FLAT_SLOPE ? "decreasing"
                                                     : "flat";
    return BCD_OK;
}

unsigned bcd__rep_flags(const struct bcd__rep_session *s)
{
    unsigned f = 0;
    if (s->changed == 1)
        f |= BCD__REP_FLAG_CHANGED;
    for (size_t i = 0; i < s->n_angles; i++)
        if (s->angles[i].changed == 1)
            f |= BCD__REP_FLAG_CHANGED;
    if (s->baseline_sessions > 0 && s->overall_change_score >= BCD_TREND_SIGNIFICANT)
        f |= BCD__REP_FLAG_OVERALL;
    for (size_t i = 0; i < s->n_angles; i++)
        if (s->angles[i].baseline_sessions > 0 && s->angles[i].change_score >= BCD_TREND_SIGNIFICANT)
            f |= BCD__REP_FLAG_ANGLE;
    return f;
}

bcd_status bcd__rep_trend(struct bcd__rep_trend *t, const struct bcd__rep_session *s, size_t n)
{
    memset(t, 0, sizeof *t);
    t->n_sessions = n;
    double *y = malloc((n ? n : 1) * sizeof *y);
    t->flags = calloc(n ? n : 1, sizeof *t->flags);
    if (!y || !t->flags) {
        free(y);
        free(t->flags);
        t->flags = NULL;
        return BCD_ENOMEM;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i].baseline_sessions > 0)
            y[m++] = s[i].overall_change_score;
        t->flags[i] = bcd__rep_flags(&s[i]);
        t->n_flagged += t->flags[i] != 0;
    }
    bcd_status st = fit(&t->overall, y, m);
    for (int a = 0; st == BCD_OK && a < BCD__REP_ANGLES; a++) {
        m = 0;
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < s[i].n_angles; j++)
                if (strcmp(s[i].angles[j].angle, bcd__rep_angles[a]) == 0 && s[i].angles[j].baseline_sessions > 0)
                    y[m++] = s[i].angles[j].change_score;
        st = fit(&t->angle[a], y, m);
    }
    free(y);
    if (st != BCD_OK)
        bcd__rep_trend_clear(t);
    return st;
}

void bcd__rep_trend_clear(struct bcd__rep_trend *t)
{
    if (!t)
        return;
    free(t->flags);
    memset(t, 0, sizeof *t);
}
