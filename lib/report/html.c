/* The HTML report: one self-contained file. No script, no external resource of any kind
 * (a Content-Security-Policy in the page forbids them too): styles inline, photos as
 * data: URIs, charts as inline SVG. Every piece of text that comes from data is
 * escaped; numbers are printed in C notation whatever the locale. The page reads on a
 * phone (viewport, fluid grids) and prints (print styles, no breaks inside figures). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bcd/analysis.h"
#include "report.h"

#define P(s) bcd__buf_put(b, (s))
#define H(s) bcd__sb_html(b, (s))
#define N(fmt, v) bcd__sb_num(b, (fmt), (v))

/* Okabe–Ito colours, distinguishable with colour-blindness; one per angle. */
static const char *const angle_colour[BCD__REP_ANGLES] = {"#0072B2", "#E69F00", "#009E73",
                                                          "#CC79A7", "#D55E00", "#56B4E9"};

static const char css[] =
    ":root{--fg:#1d2330;--muted:#5b6475;--bg:#fff;--line:#d9dde5;--ok:#1a7f37;--mild:#9a6700;--sig:#c4311b}"
    "*{box-sizing:border-box}"
    "body{margin:0;font:16px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,\"Helvetica Neue\",Arial,sans-serif;"
    "color:var(--fg);background:var(--bg);-webkit-text-size-adjust:100%}"
    "main{max-width:1100px;margin:0 auto;padding:16px}"
    "h1{font-size:1.6rem;margin:.2em 0}"
    "h2{font-size:1.25rem;margin:1.6em 0 .5em;border-bottom:1px solid var(--line);padding-bottom:.2em}"
    "h3{font-size:1.05rem;margin:1em 0 .3em}"
    ".meta{color:var(--muted);margin:0}"
    "code{font-size:.85em;word-break:break-all}"
    ".cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:10px;margin-top:14px}"
    ".card{border:1px solid var(--line);border-radius:8px;padding:10px 12px}"
    ".card .k{display:block;color:var(--muted);font-size:.85rem}"
    ".card .v{display:block;font-size:1.5rem;font-weight:600;font-variant-numeric:tabular-nums}"
    ".badge{display:inline-block;border-radius:10px;padding:0 8px;font-size:.8rem;font-weight:600;color:#fff;"
    "white-space:nowrap;-webkit-print-color-adjust:exact;print-color-adjust:exact}"
    ".stable{background:var(--ok)}.mild_variation{background:var(--mild)}.significant_shift{background:var(--sig)}"
    ".none{background:#6b7383}"
    ".summary{font-size:1.05rem}"
    ".flag{color:var(--sig);font-weight:600}"
    ".table-wrap{overflow-x:auto}"
    "table{border-collapse:collapse;width:100%;font-size:.95rem}"
    "th,td{border-bottom:1px solid var(--line);padding:6px 8px;text-align:left;vertical-align:top}"
    "th{font-weight:600;color:var(--muted);font-size:.85rem}"
    "td.num{font-variant-numeric:tabular-nums;white-space:nowrap}"
    ".angle-grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(330px,1fr));gap:18px}"
    ".angle{border:1px solid var(--line);border-radius:8px;padding:10px}"
    ".angle h3{margin:0 0 .2em}"
    ".angle p{margin:0 0 .5em;color:var(--muted);font-size:.9rem}"
    ".pair{display:grid;grid-template-columns:repeat(3,1fr);gap:6px}"
    ".pair.two{grid-template-columns:repeat(2,1fr)}"
    ".lesions h4{margin:.7em 0 .3em;font-size:.95rem;color:var(--bad,#b3261e)}"
    ".lesion{margin:0 0 .5em}"
    ".lesion img{image-rendering:auto;border:2px solid var(--bad,#b3261e)}"
    "figure{margin:0}"
    "figcaption{font-size:.8rem;color:var(--muted)}"
    "img{width:100%;height:auto;display:block;border-radius:4px;background:#eef0f4}"
    ".ph{aspect-ratio:3/4;display:flex;align-items:center;justify-content:center;color:var(--muted);"
    "font-size:.8rem;background:#eef0f4;border-radius:4px;text-align:center;padding:4px}"
    ".chart{margin:0 0 1.2em}"
    "svg{width:100%;height:auto;display:block;font-family:inherit}"
    "footer{margin-top:2em;color:var(--muted);font-size:.85rem;border-top:1px solid var(--line);padding-top:.6em}"
    "@media (max-width:600px){body{font-size:15px}main{padding:10px}.angle-grid{grid-template-columns:1fr}"
    ".card .v{font-size:1.25rem}th,td{padding:5px 4px}}"
    "@media print{@page{margin:12mm}body{font-size:10.5pt}main{max-width:none;padding:0}"
    ".angle,.chart,tr,.card{break-inside:avoid}h2,h3{break-after:avoid}.table-wrap{overflow:visible}"
    ".angle-grid{grid-template-columns:repeat(2,1fr)}"
    "svg,img,.ph{-webkit-print-color-adjust:exact;print-color-adjust:exact}}";

static const char *label_text(const char *label)
{
    if (!label)
        return "no score yet";
    if (strcmp(label, "stable") == 0)
        return "stable";
    if (strcmp(label, "mild_variation") == 0)
        return "mild variation";
    if (strcmp(label, "significant_shift") == 0)
        return "significant shift";
    if (strcmp(label, "insufficient_data") == 0)
        return "not enough checks";
    return label;
}

static void badge(struct bcd__buf *b, const char *label)
{
    const char *cls = label && (strcmp(label, "stable") == 0 || strcmp(label, "mild_variation") == 0 ||
                                strcmp(label, "significant_shift") == 0)
                          ? label
                          : "none";
    P("<span class=\"badge ");
    P(cls);
    P("\">");
    H(label_text(label));
    P("</span>");
}

/* A number cell carrying the exact value for machines (data-value) and 3 decimals for
 * people; "–" when absent. */
static void num_cell(struct bcd__buf *b, const char *field, double v)
{
    P("<td class=\"num\" data-field=\"");
    P(field);
    P("\"");
    if (isfinite(v)) {
        P(" data-value=\"");
        N("%.6f", bcd__rep_round(v));
        P("\">");
        N("%.3f", v);
    } else {
        P(">&#8211;");
    }
    P("</td>");
}

static const struct bcd__rep_angle *find_angle(const struct bcd__rep_session *s, const char *name)
{
    for (size_t i = 0; s && i < s->n_angles; i++)
        if (strcmp(s->angles[i].angle, name) == 0)
            return &s->angles[i];
    return NULL;
}

static void date_of(char *buf, size_t cap, const char *ts, int style)
{
    bcd__rep_format_date(buf, cap, ts, style);
}

/* Date labels of the charts: with the time when two checks share a day. */
static int chart_date_style(const struct bcd__rep_html_input *in)
{
    for (size_t i = 1; i < in->n; i++)
        if (bcd__rep_same_day(in->s[i - 1].created_at, in->s[i].created_at))
            return BCD__REP_DATE_SHORT_TIME;
    return BCD__REP_DATE;
}

/* text-anchor of a label at x: kept inside the 720 units of the charts */
static const char *anchor(double x)
{
    return x > 680.0 ? "end" : x < 40.0 ? "start" : "middle";
}

static void head(struct bcd__buf *b, const struct bcd__rep_html_input *in)
{
    const struct bcd__rep_session *s = &in->s[in->cur];
    char date[64];
    date_of(date, sizeof date, s->created_at, BCD__REP_DATE);
    P("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      /* belt and braces: even a tampered file cannot fetch anything */
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
      "style-src 'unsafe-inline'\">\n"
      "<meta name=\"referrer\" content=\"no-referrer\">\n"
      "<meta name=\"robots\" content=\"noindex\">\n"
      "<meta name=\"generator\" content=\"libbcd ");
    H(in->version);
    P("\">\n<title>Body check report, ");
    H(date);
    P("</title>\n<style>");
    P(css);
    P("</style>\n</head>\n");
}

static void cards(struct bcd__buf *b, const struct bcd__rep_html_input *in)
{
    const struct bcd__rep_session *s = &in->s[in->cur];
    const struct bcd__rep_session *p = in->cur ? &in->s[in->cur - 1] : NULL;
    P("<section class=\"cards\" aria-label=\"Key numbers\">");

    P("<div class=\"card\"><span class=\"k\">Overall change vs baseline</span>");
    if (s->baseline_sessions > 0) {
        P("<span class=\"v\" data-field=\"overall_change_score\" data-value=\"");
        N("%.6f", bcd__rep_round(s->overall_change_score));
        P("\">");
        N("%.3f", s->overall_change_score);
        P("</span>");
        badge(b, bcd_trend_label(s->overall_change_score));
    } else {
        P("<span class=\"v\" data-field=\"overall_change_score\" data-value=\"");
        N("%.6f", bcd__rep_round(s->overall_change_score));
        P("\">baseline</span>");
        badge(b, NULL);
    }
    P("</div>");

    P("<div class=\"card\"><span class=\"k\">Since the previous check</span>");
    if (p && isfinite(s->delta_previous)) {
        P("<span class=\"v\" data-field=\"delta_from_previous\" data-value=\"");
        N("%.6f", bcd__rep_round(s->delta_previous));
        P("\">");
        N("%.3f", s->delta_previous);
        P("</span>");
        badge(b, bcd_trend_label(s->delta_previous));
    } else {
        P("<span class=\"v\">&#8211;</span>");
        badge(b, NULL);
    }
    P("</div>");

    P("<div class=\"card\"><span class=\"k\">Confidence</span><span class=\"v\" data-field=\"confidence\"");
    if (isfinite(s->confidence)) {
        P(" data-value=\"");
        N("%.6f", bcd__rep_round(s->confidence));
        P("\">");
        N("%.2f", s->confidence);
    } else {
        P(">&#8211;");
    }
    P("</span><span class=\"k\">");
    H(!isfinite(s->confidence) ? "" : s->confidence >= 0.75 ? "high" : s->confidence >= 0.5 ? "moderate" : "low");
    P("</span></div>");

    if (isfinite(s->change_probability) || s->changed >= 0) {
        P("<div class=\"card\"><span class=\"k\">Change detection</span>");
        if (isfinite(s->change_probability)) {
            P("<span class=\"v\" data-field=\"change_probability\" data-value=\"");
            N("%.6f", bcd__rep_round(s->change_probability));
            P("\">");
            N("%.0f", 100.0 * s->change_probability);
            P("%</span>");
        }
        if (s->changed >= 0)
            P(s->changed ? "<span class=\"flag\">changed</span>" : "<span class=\"k\">not flagged</span>");
        P("</div>");
    }

    const struct bcd__rep_series_trend *t = &in->trend->overall;
    P("<div class=\"card\"><span class=\"k\">History trend</span><span class=\"v\">");
    if (t->n_points >= 2) {
        N("%+.3f", t->slope);
        P("<small style=\"font-size:.6em;font-weight:400\"> / check</small>");
    } else {
        P("&#8211;");
    }
    P("</span>");
    badge(b, t->label);
    P("</div>");
    P("</section>\n");
}

static void summary_section(struct bcd__buf *b, const struct bcd__rep_html_input *in)
{
    const struct bcd__rep_text *x = in->text;
    P("<section id=\"summary\"><h2>Summary</h2><p class=\"summary\">");
    H(x->findings);
    P("</p><p>");
    H(x->confidence_note);
    P("</p>");
    if (x->n_warnings) {
        P("<h3>Photo quality</h3><ul>");
        for (size_t i = 0; i < x->n_warnings; i++) {
            P("<li>");
            H(x->warnings[i]);
            P("</li>");
        }
        P("</ul>");
    }
    if (x->n_next) {
        P("<h3>What you might do next</h3><ul>");
        for (size_t i = 0; i < x->n_next; i++) {
            P("<li>");
            H(x->next_steps[i]);
            P("</li>");
        }
        P("</ul>");
    }
    P("</section>\n");
}

static void quality_text(struct bcd__buf *b, const struct bcd__rep_angle *g)
{
    bool any = false;
#define ISSUE(cond, text)                                                                                         \
    do {                                                                                                          \
        if (cond) {                                                                                               \
            P(any ? ", " : "<span class=\"flag\">");                                                              \
            P(text);                                                                                              \
            any = true;                                                                                           \
        }                                                                                                         \
    } while (0)
    ISSUE((g->has_qflags && (g->qflags & BCD__REP_Q_BLURRED)) || (isfinite(g->sharpness) && g->sharpness < BCD__REP_BLURRED),
          "blurred");
    ISSUE((g->has_qflags && (g->qflags & BCD__REP_Q_CLIPPED)) ||
              (isfinite(g->clipped_fraction) && g->clipped_fraction > BCD__REP_CLIPPED),
          "poorly exposed");
    ISSUE(g->has_qflags && (g->qflags & BCD__REP_Q_SMALL), "subject too small");
    ISSUE(g->has_qflags && (g->qflags & BCD__REP_Q_MISALIGNED), "not aligned");
#undef ISSUE
    if (any)
        P("</span>");
    else if (isfinite(g->quality))
        P(g->quality >= 0.7 ? "good" : "fair");
    else
        P("&#8211;");
    if (isfinite(g->quality)) {
        P(" (");
        N("%.2f", g->quality);
        P(")");
    }
}

static void angle_table(struct bcd__buf *b, const struct bcd__rep_html_input *in)
{
    const struct bcd__rep_session *s = &in->s[in->cur];
    bool evidence = false;
    for (size_t i = 0; i < s->n_angles; i++)
        evidence |= isfinite(s->angles[i].local_change) || s->angles[i].changed >= 0 || s->angles[i].regions_json;
    P("<section id=\"angles\"><h2>Angles</h2><div class=\"table-wrap\"><table>"
      "<thead><tr><th>Angle</th><th>Against baseline</th><th>Label</th><th>Since previous check</th>"
      "<th>Score change</th><th>Photo quality</th>");
    if (evidence)
        P("<th>Change detection</th>");
    P("</tr></thead><tbody>");
    for (size_t i = 0; i < s->n_angles; i++) {
        const struct bcd__rep_angle *g = &s->angles[i];
        P("<tr data-angle=\"");
        H(g->angle);
        P("\"><th scope=\"row\">");
        H(g->angle);
        P("</th>");
        num_cell(b, "change_score", g->change_score);
        P("<td>");
        badge(b, g->baseline_sessions > 0 ? bcd_trend_label(g->change_score) : NULL);
        P("</td>");
        num_cell(b, "embedding_distance", g->distance_previous);
        num_cell(b, "delta", isfinite(g->previous_score) ? g->change_score - g->previous_score : NAN);
        P("<td>");
        quality_text(b, g);
        P("</td>");
        if (evidence) {
            P("<td>");
            if (g->changed == 1)
                P("<span class=\"flag\">changed</span> ");
            else if (g->changed == 0)
                P("not flagged ");
            if (isfinite(g->local_change)) {
                P("local change <span data-field=\"local_change\" data-value=\"");
                N("%.6f", bcd__rep_round(g->local_change));
                P("\">");
                N("%.2f", g->local_change);
                P("</span>");
            }
            if (g->regions_json) {
                bcd__buf_printf(b, ", %zu region%s", g->n_regions, g->n_regions == 1 ? "" : "s");
            }
            P("</td>");
        }
        P("</tr>");
    }
    for (int a = 0; a < BCD__REP_ANGLES; a++)
        if (!find_angle(s, bcd__rep_angles[a])) {
            P("<tr data-angle=\"");
            P(bcd__rep_angles[a]);
            P("\" data-missing=\"true\"><th scope=\"row\">");
            P(bcd__rep_angles[a]);
            P("</th><td colspan=\"");
            P(evidence ? "6" : "5");
            P("\">no photo in this check</td></tr>");
        }
    P("</tbody></table></div>"
      "<p class=\"meta\">Scores are cosine distances between photo embeddings: 0 means no difference; "
      "below 0.10 is stable, 0.10 to 0.25 mild variation, 0.25 or more a significant shift. "
      "&#8220;Against baseline&#8221; compares with the mean of your earlier checks, &#8220;since previous "
      "check&#8221; with the check just before this one.</p></section>\n");
}

static void img_or_placeholder(struct bcd__buf *b, const struct bcd__rep_image *im, const char *alt,
                               const char *caption, const char *missing)
{
    P("<figure>");
    if (im && im->data && im->len) {
        P("<img src=\"data:");
        P(im->mime);
        P(";base64,");
        bcd__sb_base64(b, im->data, im->len);
        bcd__buf_printf(b, "\" width=\"%u\" height=\"%u\" alt=\"", (unsigned)im->width, (unsigned)im->height);
        H(alt);
        P("\">");
    } else {
        P("<div class=\"ph\">");
        H(missing);
        P("</div>");
    }
    P("<figcaption>");
    H(caption);
    P("</figcaption></figure>");
}

/* Each changed lesion of an angle, before and now, enlarged. */
static void lesion_figures(struct bcd__buf *b, const struct bcd__rep_angle *g, const struct bcd__rep_photos *ph, int a,
                           bool has_prev)
{
    if (!g || !g->n_lesions)
        return;
    P("<div class=\"lesions\"><h4>Changed lesions</h4>");
    for (size_t k = 0; k < g->n_lesions; k++) {
        const struct bcd__rep_lesion *l = &g->lesions[k];
        char what[160], alt[200], cap[200];
        if (strcmp(l->state, "new") == 0)
            snprintf(what, sizeof what, "new, %.0f px across", l->d);
        else if (isfinite(l->diameter_change) && l->diameter_change > 0.0)
            snprintf(what, sizeof what, "%.0f px across, %+.0f px since the previous check", l->d,
                     l->diameter_change);
        else if (isfinite(l->darkening) && l->darkening > 0.0)
            snprintf(what, sizeof what, "%.0f px across, darker since the previous check", l->d);
        else
            snprintf(what, sizeof what, "%s, %.0f px across", l->state, l->d);
        P("<div class=\"lesion\"><div class=\"pair two\">");
        snprintf(alt, sizeof alt, "%s, lesion %u, previous check", bcd__rep_angles[a], l->id);
        img_or_placeholder(b, ph->lesion_before[a][k].data ? &ph->lesion_before[a][k] : NULL, alt, "Before",
                           has_prev ? "not in the previous photo" : "no previous check");
        snprintf(alt, sizeof alt, "%s, lesion %u, this check", bcd__rep_angles[a], l->id);
        snprintf(cap, sizeof cap, "Now: lesion %u, %s", l->id, what);
        img_or_placeholder(b, ph->lesion_now[a][k].data ? &ph->lesion_now[a][k] : NULL, alt, cap,
                           "the photo could not be read");
        P("</div></div>");
    }
    P("</div>");
}

static void photos_section(struct bcd__buf *b, const struct bcd__rep_html_input *in)
{
    const struct bcd__rep_photos *ph = in->photos;
    if (!ph)
        return;
    const struct bcd__rep_session *s = &in->s[in->cur];
    const struct bcd__rep_session *p = in->cur ? &in->s[in->cur - 1] : NULL;
    char cdate[64], pdate[64], text[256];
    int style = p && bcd__rep_same_day(p->created_at, s->created_at) ? BCD__REP_DATE_TIME : BCD__REP_DATE;
    date_of(cdate, sizeof cdate, s->created_at, style);
    if (p)
        date_of(pdate, sizeof pdate, p->created_at, style);
    P("<section id=\"photos\"><h2>Photos: previous check and this check</h2><div class=\"angle-grid\">");
    for (int a = 0; a < BCD__REP_ANGLES; a++) {
        const struct bcd__rep_angle *g = find_angle(s, bcd__rep_angles[a]);
        bool has_prev = ph->previous[a].data != NULL, has_heat = ph->heatmap[a].data != NULL;
        if (!g && !ph->current[a].data)
            continue;
        P("<div class=\"angle\" id=\"photo-");
        P(bcd__rep_angles[a]);
        P("\"><h3>");
        P(bcd__rep_angles[a]);
        P("</h3><p>");
        if (g && g->baseline_sessions > 0) {
            N("%.3f", g->change_score);
            P(" against the baseline");
        } else {
            P("no baseline score yet");
        }
        if (g && isfinite(g->distance_previous)) {
            P(", ");
            N("%.3f", g->distance_previous);
            P(" since the previous check");
        }
        P("</p><div class=\"pair");
        P(has_heat ? "" : " two");
        P("\">");
        snprintf(text, sizeof text, "%s, previous check (%s)", bcd__rep_angles[a], p ? pdate : "none");
        if (p) {
            char cap[96];
            snprintf(cap, sizeof cap, "Previous: %s", pdate);
            img_or_placeholder(b, has_prev ? &ph->previous[a] : NULL, text, cap,
                               "no photo of this angle in the previous check");
        } else {
            img_or_placeholder(b, NULL, text, "Previous", "this is the first analyzed check");
        }
        snprintf(text, sizeof text, "%s, this check (%s)", bcd__rep_angles[a], cdate);
        char cap[96];
        snprintf(cap, sizeof cap, "This check: %s", cdate);
        img_or_placeholder(b, ph->current[a].data ? &ph->current[a] : NULL, text, cap, "photo not available");
        if (has_heat) {
            snprintf(text, sizeof text, "%s, change map of this check against the previous one", bcd__rep_angles[a]);
            img_or_placeholder(b, &ph->heatmap[a], text,
                               ph->heatmap_stored[a] ? "Change map (from the analysis)"
                                                     : "Change map (red: strongest difference)",
                               "");
        }
        P("</div>");
        lesion_figures(b, g, ph, a, p != NULL);
        P("</div>");
    }
    bool any_heat = false;
    for (int a = 0; a < BCD__REP_ANGLES; a++)
        any_heat |= ph->heatmap[a].data != NULL;
    P("</div>");
    if (!any_heat) {
        P("</section>\n");
        return;
    }
    P("<p class=\"meta\">Change maps show where this photo differs from the previous one after the two "
      "are aligned and matched in exposure: blue is within the usual noise, yellow to red a growing "
      "difference, outlined boxes the changed areas.</p></section>\n");
}

/* Charts */

struct plot {
    double x0, x1, y0, y1; /* plot area in SVG units */
    double ymax;
    size_t n;
};

static double px(const struct plot *pl, size_t i)
{
    if (pl->n <= 1)
        return 0.5 * (pl->x0 + pl->x1);
    return pl->x0 + (pl->x1 - pl->x0) * (double)i / (double)(pl->n - 1);
}

static double py(const struct plot *pl, double v)
{
    if (!isfinite(v))
        v = 0.0;
    v = fmin(fmax(v, 0.0), pl->ymax);
    return pl->y1 - (pl->y1 - pl->y0) * v / pl->ymax;
}

/* Threshold bands, axes and date labels shared by the charts. */
static void chart_frame(struct bcd__buf *b, const struct plot *pl, const struct bcd__rep_html_input *in)
{
    double yb[4] = {0.0, BCD_TREND_MILD, BCD_TREND_SIGNIFICANT, pl->ymax};
    static const char *const fill[3] = {"#e8f5ec", "#fff5d9", "#fde9e5"};
    for (int i = 0; i < 3; i++) {
        P("<rect x=\"");
        N("%.1f", pl->x0);
        P("\" y=\"");
        N("%.1f", py(pl, yb[i + 1]));
        P("\" width=\"");
        N("%.1f", pl->x1 - pl->x0);
        P("\" height=\"");
        N("%.1f", py(pl, yb[i]) - py(pl, yb[i + 1]));
        P("\" fill=\"");
        P(fill[i]);
        P("\"/>");
    }
    double ticks[4] = {0.0, BCD_TREND_MILD, BCD_TREND_SIGNIFICANT, pl->ymax};
    for (int i = 0; i < 4; i++) {
        if (i == 3 && pl->ymax - BCD_TREND_SIGNIFICANT < 0.04)
            continue;
        P("<line x1=\"");
        N("%.1f", pl->x0);
        P("\" x2=\"");
        N("%.1f", pl->x1);
        P("\" y1=\"");
        N("%.1f", py(pl, ticks[i]));
        P("\" y2=\"");
        N("%.1f", py(pl, ticks[i]));
        P(i == 1 || i == 2 ? "\" stroke=\"#9aa3b2\" stroke-dasharray=\"4 3\"/>" : "\" stroke=\"#c9ced8\"/>");
        P("<text x=\"");
        N("%.1f", pl->x0 - 6);
        P("\" y=\"");
        N("%.1f", py(pl, ticks[i]) + 4);
        P("\" text-anchor=\"end\" font-size=\"11\" fill=\"#5b6475\">");
        N("%.2f", ticks[i]);
        P("</text>");
    }
    /* date labels: the reported check first, then the first and last, then evenly spaced
     * ones, each kept only if it does not crowd one already placed */
    const int style = chart_date_style(in);
    double placed[12];
    size_t np = 0;
    size_t want[12], nw = 0;
    want[nw++] = in->cur;
    want[nw++] = 0;
    if (pl->n > 1)
        want[nw++] = pl->n - 1;
    for (size_t k = 1; k < 6 && pl->n > 2; k++)
        want[nw++] = (size_t)llround((double)k * (double)(pl->n - 1) / 6.0);
    for (size_t w = 0; w < nw; w++) {
        size_t i = want[w];
        double x = px(pl, i);
        bool crowded = false;
        for (size_t q = 0; q < np && !crowded; q++)
            crowded = fabs(placed[q] - x) < 80.0;
        if (crowded)
            continue;
        placed[np++] = x;
        char d[48];
        date_of(d, sizeof d, in->s[i].created_at, style);
        P("<text x=\"");
        N("%.1f", x);
        P("\" y=\"");
        N("%.1f", pl->y1 + 16);
        P("\" text-anchor=\"");
        P(anchor(x));
        P("\" font-size=\"11\" fill=\"#5b6475\"");
        if (i == in->cur)
            P(" font-weight=\"700\"");
        P(">");
        H(d);
        P("</text>");
    }
    /* the reported check */
    P("<line x1=\"");
    N("%.1f", px(pl, in->cur));
    P("\" x2=\"");
    N("%.1f", px(pl, in->cur));
    P("\" y1=\"");
    N("%.1f", pl->y0);
    P("\" y2=\"");
    N("%.1f", pl->y1);
    P("\" stroke=\"#1d2330\" stroke-width=\"1\" stroke-dasharray=\"2 3\"/>");
    P("<text x=\"");
    N("%.1f", px(pl, in->cur));
    P("\" y=\"");
    N("%.1f", pl->y0 - 4);
    P("\" text-anchor=\"");
    P(anchor(px(pl, in->cur)));
    P("\" font-size=\"11\" fill=\"#1d2330\">this check</text>");
}

static double chart_ymax(const struct bcd__rep_html_input *in)
{
    double m = 0.3;
    for (size_t i = 0; i < in->n; i++) {
        m = fmax(m, isfinite(in->s[i].overall_change_score) ? in->s[i].overall_change_score * 1.1 : 0.0);
        for (size_t j = 0; j < in->s[i].n_angles; j++)
            if (isfinite(in->s[i].angles[j].change_score))
                m = fmax(m, in->s[i].angles[j].change_score * 1.1);
    }
    return ceil(fmin(m, 2.0) * 20.0) / 20.0;
}

static void point(struct bcd__buf *b, double x, double y, double r, const char *fill, const char *stroke,
                  const char *title)
{
    P("<circle cx=\"");
    N("%.1f", x);
    P("\" cy=\"");
    N("%.1f", y);
    P("\" r=\"");
    N("%.1f", r);
    P("\" fill=\"");
    P(fill);
    P("\" stroke=\"");
    P(stroke);
    P("\" stroke-width=\"1.5\"><title>");
    H(title);
    P("</title></circle>");
}

/* Said inside an empty chart. */
static void no_scores(struct bcd__buf *b, const struct plot *pl, const struct bcd__rep_html_input *in)
{
    for (size_t i = 0; i < in->n; i++)
        if (in->s[i].baseline_sessions > 0)
            return;
    P("<text x=\"");
    N("%.1f", 0.5 * (pl->x0 + pl->x1));
    P("\" y=\"");
    N("%.1f", 0.5 * (pl->y0 + pl->y1));
    P("\" text-anchor=\"middle\" font-size=\"14\" fill=\"#5b6475\">No scores yet: the charts fill in from "
      "the second analyzed check</text>");
}

static void angle_chart(struct bcd__buf *b, const struct bcd__rep_html_input *in)
{
    struct plot pl = {56, 600, 24, 270, chart_ymax(in), in->n};
    P("<figure class=\"chart\"><h3>Change per angle</h3><svg viewBox=\"0 0 720 300\" role=\"img\" aria-labelledby=\"c1t\">"
      "<title id=\"c1t\">Change score of each angle against its baseline, over all checks</title>");
    chart_frame(b, &pl, in);
    no_scores(b, &pl, in);
    for (int a = 0; a < BCD__REP_ANGLES; a++) {
        /* the line joins the checks in which the angle was scored */
        struct bcd__buf line = {0};
        size_t pts = 0;
        for (size_t i = 0; i < in->n; i++) {
            const struct bcd__rep_angle *g = find_angle(&in->s[i], bcd__rep_angles[a]);
            if (!g || g->baseline_sessions == 0)
                continue;
            bcd__buf_put(&line, pts ? " " : "");
            bcd__sb_num(&line, "%.1f", px(&pl, i));
            bcd__buf_put(&line, ",");
            bcd__sb_num(&line, "%.1f", py(&pl, g->change_score));
            pts++;
        }
        if (line.oom)
            b->oom = true;
        if (pts >= 2) {
            P("<polyline fill=\"none\" stroke-width=\"2\" stroke=\"");
            P(angle_colour[a]);
            P("\" points=\"");
            P(line.p);
            P("\"/>");
        }
        bcd__buf_free(&line);
        for (size_t i = 0; i < in->n; i++) {
            const struct bcd__rep_angle *g = find_angle(&in->s[i], bcd__rep_angles[a]);
            if (!g || g->baseline_sessions == 0)
                continue;
            char d[48], t[128];
            date_of(d, sizeof d, in->s[i].created_at, BCD__REP_DATE_TIME);
            snprintf(t, sizeof t, "%s, %s: %.3f", bcd__rep_angles[a], d, g->change_score);
            for (char *c = t; *c; c++)
                if (*c == ',' && c[1] != ' ')
                    *c = '.';
            point(b, px(&pl, i), py(&pl, g->change_score), i == in->cur ? 4.5 : 3.2, angle_colour[a],
                  g->changed == 1 ? "#c4311b" : "#ffffff", t);
        }
        /* legend */
        double ly = 40 + 22.0 * a;
        P("<rect x=\"620\" y=\"");
        N("%.1f", ly - 9);
        P("\" width=\"14\" height=\"10\" rx=\"2\" fill=\"");
        P(angle_colour[a]);
        P("\"/><text x=\"640\" y=\"");
        N("%.1f", ly);
        P("\" font-size=\"12\" fill=\"#1d2330\">");
        P(bcd__rep_angles[a]);
        P("</text>");
    }
    P("</svg><figcaption>Each angle&#8217;s change score against its own baseline (the mean of the earlier "
      "checks), one point per check. Checks without an earlier photo of an angle have no point. Shaded "
      "bands: stable (green), mild variation (yellow), significant shift (red).</figcaption></figure>");
}

static void overall_chart(struct bcd__buf *b, const struct bcd__rep_html_input *in)
{
    const struct bcd__rep_trend *t = in->trend;
    struct plot pl = {56, 660, 24, 270, chart_ymax(in), in->n};
    P("<figure class=\"chart\"><h3>Overall change and trend</h3><svg viewBox=\"0 0 720 300\" role=\"img\" "
      "aria-labelledby=\"c2t\">"
      "<title id=\"c2t\">Overall change score of every check and its Theil-Sen trend</title>");
    chart_frame(b, &pl, in);
    no_scores(b, &pl, in);
    /* the fitted line through the scored checks: x of the fit is the index among them */
    if (t->overall.n_points >= 2 && isfinite(t->overall.slope)) {
        P("<polyline fill=\"none\" stroke=\"#1d2330\" stroke-width=\"2\" stroke-dasharray=\"7 4\" points=\"");
        size_t k = 0;
        for (size_t i = 0; i < in->n; i++) {
            if (in->s[i].baseline_sessions == 0)
                continue;
            if (k)
                P(" ");
            N("%.1f", px(&pl, i));
            P(",");
            N("%.1f", py(&pl, t->overall.intercept + t->overall.slope * (double)k));
            k++;
        }
        P("\"><title>Theil-Sen trend</title></polyline>");
    }
    for (size_t i = 0; i < in->n; i++) {
        const struct bcd__rep_session *s = &in->s[i];
        char d[48], tt[160];
        date_of(d, sizeof d, s->created_at, BCD__REP_DATE_TIME);
        bool flagged = t->flags && t->flags[i];
        if (s->baseline_sessions == 0) {
            snprintf(tt, sizeof tt, "%s: baseline check (no score)", d);
            point(b, px(&pl, i), py(&pl, 0.0), 4, "#ffffff", "#6b7383", tt);
            continue;
        }
        snprintf(tt, sizeof tt, "%s: %.3f%s", d, s->overall_change_score, flagged ? " (flagged)" : "");
        for (char *c = tt; *c; c++)
            if (*c == ',' && c[1] != ' ')
                *c = '.';
        point(b, px(&pl, i), py(&pl, s->overall_change_score), i == in->cur ? 5.5 : 4,
              flagged ? "#c4311b" : "#0b5cad", i == in->cur ? "#1d2330" : "#ffffff", tt);
    }
    P("</svg><figcaption>Overall change score of each check against its baseline (filled points; red: "
      "flagged), baseline checks as hollow points, and the robust Theil-Sen trend line (dashed)");
    if (t->overall.n_points >= 2) {
        P(": slope ");
        N("%+.3f", t->overall.slope);
        P(" per check, level ");
        N("%.3f", t->overall.level);
        P(" (");
        H(label_text(t->overall.label));
        P(")");
    }
    P(".</figcaption></figure>");
}

static void charts_section(struct bcd__buf *b, const struct bcd__rep_html_input *in)
{
    P("<section id=\"charts\"><h2>Your checks over time</h2>");
    angle_chart(b, in);
    overall_chart(b, in);
    P("</section>\n");
}

static void history_section(struct bcd__buf *b, const struct bcd__rep_html_input *in)
{
    P("<section id=\"history\"><h2>All analyzed checks</h2><div class=\"table-wrap\"><table><thead><tr>"
      "<th>#</th><th>Date</th><th>Overall vs baseline</th><th>Label</th><th>Since previous</th>"
      "<th>Confidence</th><th>Flag</th></tr></thead><tbody>");
    for (size_t i = 0; i < in->n; i++) {
        const struct bcd__rep_session *s = &in->s[i];
        char d[64];
        date_of(d, sizeof d, s->created_at, BCD__REP_DATE_TIME);
        P("<tr data-session=\"");
        H(s->session_id);
        P("\"");
        if (i == in->cur)
            P(" style=\"font-weight:600\"");
        bcd__buf_printf(b, "><td>%zu</td><td>", i + 1);
        H(d);
        P("</td>");
        num_cell(b, "overall_change_score", s->overall_change_score);
        P("<td>");
        badge(b, s->baseline_sessions > 0 ? bcd_trend_label(s->overall_change_score) : NULL);
        P("</td>");
        num_cell(b, "delta_from_previous", s->delta_previous);
        num_cell(b, "confidence", s->confidence);
        P("<td>");
        unsigned f = in->trend->flags ? in->trend->flags[i] : 0;
        if (f) {
            P("<span class=\"flag\">");
            const char *sep = "";
            if (f & BCD__REP_FLAG_CHANGED) {
                P("change detected");
                sep = ", ";
            }
            if (f & BCD__REP_FLAG_OVERALL) {
                P(sep);
                P("overall shift");
                sep = ", ";
            }
            if (f & BCD__REP_FLAG_ANGLE) {
                P(sep);
                P("angle shift");
            }
            P("</span>");
        }
        P("</td></tr>");
    }
    P("</tbody></table></div></section>\n");
}

bcd_status bcd__rep_html(char **out, size_t *len, const struct bcd__rep_html_input *in)
{
    struct bcd__buf buf = {0}, *b = &buf;
    const struct bcd__rep_session *s = &in->s[in->cur];
    head(b, in);
    char date[64], gen[64];
    date_of(date, sizeof date, s->created_at, BCD__REP_DATE_TIME);
    P("<body>\n<main data-session=\"");
    H(s->session_id);
    P("\">\n<header><h1>Body check report</h1><p class=\"meta\">Check of ");
    H(date);
    bcd__buf_printf(b, " &#183; check %zu of %zu analyzed &#183; session <code>", in->cur + 1, in->n);
    H(s->session_id);
    P("</code></p></header>\n");
    cards(b, in);
    summary_section(b, in);
    angle_table(b, in);
    photos_section(b, in);
    charts_section(b, in);
    history_section(b, in);
    date_of(gen, sizeof gen, in->generated_at, BCD__REP_DATE_TIME);
    P("<footer><p>These numbers compare your photos with your own earlier photos. They are not a medical "
      "diagnosis and cannot rule anything out: if a spot on your skin is new, growing or changing, or "
      "worries you, show it to a doctor.</p><p>This file contains photos of you: keep it private. Made by "
      "libbcd ");
    H(in->version);
    P(" on ");
    H(gen);
    P(" with the model ");
    H(s->model);
    P(".</p></footer>\n</main>\n</body>\n</html>\n");
    if (b->oom || !b->p) {
        bcd__buf_free(b);
        return BCD_ENOMEM;
    }
    *out = b->p;
    *len = b->len;
    return BCD_OK;
}
