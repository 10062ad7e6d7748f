/* Unit tests of lib/report (trend, summary text, JSON documents, HTML page, encoders) and
 * of the report operations of lib/service (bcd_history, bcd_report, bcd_report_html) on
 * the local store. */
#include <check.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <zlib.h>

#include "bcd.h"
#include "core/core.h"
#include "report/deflate.h"
#include "report/report.h"
#include "service/detection.h"
#include "service/service_internal.h"

/* ---- helpers ------------------------------------------------------------------------ */

static void set_angle(struct bcd__rep_session *s, const char *angle, double score, int baseline, double sharpness,
                      double clipped)
{
    struct bcd__rep_angle *g = &s->angles[s->n_angles++];
    snprintf(g->angle, sizeof g->angle, "%s", angle);
    g->change_score = score;
    g->baseline_sessions = baseline;
    g->image_count = 1;
    g->sharpness = sharpness;
    g->clipped_fraction = clipped;
    g->quality = sharpness * fmax(0.0, 1.0 - 2.0 * clipped);
    g->blur_variance = 20.0 * sharpness / (1.0 - sharpness);
}

/* A session scored against `baseline` earlier sessions, with all six angles at `score`. */
static void make_session(struct bcd__rep_session *s, int idx, double overall, int baseline)
{
    bcd__rep_session_init(s);
    snprintf(s->session_id, sizeof s->session_id, "00000000-0000-4000-8000-%012d", idx);
    snprintf(s->created_at, sizeof s->created_at, "2026-0%d-1%dT10:00:00.000000Z", 1 + idx % 9, idx % 10);
    snprintf(s->model, sizeof s->model, "builtin-v1");
    s->overall_change_score = overall;
    s->baseline_sessions = baseline;
    s->confidence = 0.8;
    for (int a = 0; a < 6; a++)
        set_angle(s, bcd__rep_angles[a], overall, baseline, 0.9, 0.0);
}

static void free_sessions(struct bcd__rep_session *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        bcd__rep_session_clear(&s[i]);
}

static bool contains(const char *hay, const char *needle)
{
    return hay && strstr(hay, needle) != NULL;
}

#define HAS(hay, needle) ck_assert_msg(contains((hay), (needle)), "'%s' not in: %.400s", (needle), (hay))
#define LACKS(hay, needle) ck_assert_msg(!contains((hay), (needle)), "'%s' unexpectedly in: %.400s", (needle), strstr((hay), (needle)))

/* ---- Theil–Sen and trend ------------------------------------------------------------- */

START_TEST(test_report_theil_sen_recovers_a_line_despite_an_outlier)
{
    double x[10], y[10], slope, icpt;
    for (int i = 0; i < 10; i++) {
        x[i] = i;
        y[i] = 0.5 + 0.02 * i;
    }
    y[5] = 3.0; /* one wild check */
    ck_assert_int_eq(bcd__rep_theil_sen(&slope, &icpt, x, y, 10), BCD_OK);
    ck_assert_double_eq_tol(slope, 0.02, 1e-12);
    ck_assert_double_eq_tol(icpt, 0.5, 1e-12);

    /* by hand: pairwise slopes 1 (x6), 24.75, 32.67, 48.5, 96 -> median 1;
     * residuals 0, 0, 0, 0, 95 -> intercept 0 */
    const double x2[5] = {1, 2, 3, 4, 5}, y2[5] = {1, 2, 3, 4, 100};
    ck_assert_int_eq(bcd__rep_theil_sen(&slope, &icpt, x2, y2, 5), BCD_OK);
    ck_assert_double_eq_tol(slope, 1.0, 1e-12);
    ck_assert_double_eq_tol(icpt, 0.0, 1e-12);

    /* even number of slopes: the mean of the middle two. Points (0,0) (1,1) (2,4):
     * slopes 1, 2, 3 -> 2; residuals 0, -1, 0 -> 0 */
    const double x3[3] = {0, 1, 2}, y3[3] = {0, 1, 4};
    ck_assert_int_eq(bcd__rep_theil_sen(&slope, &icpt, x3, y3, 3), BCD_OK);
    ck_assert_double_eq_tol(slope, 2.0, 1e-12);
    ck_assert_double_eq_tol(icpt, 0.0, 1e-12);
    const double x4[4] = {0, 1, 2, 3}, y4[4] = {0, 1, 4, 9};
    /* slopes 1, 2, 3, 3, 4, 5 -> (3 + 3) / 2 = 3; residuals 0, -2, -2, 0 -> -1 */
    ck_assert_int_eq(bcd__rep_theil_sen(&slope, &icpt, x4, y4, 4), BCD_OK);
    ck_assert_double_eq_tol(slope, 3.0, 1e-12);
    ck_assert_double_eq_tol(icpt, -1.0, 1e-12);
}
END_TEST

START_TEST(test_report_theil_sen_degenerate_inputs)
{
    double slope = 9, icpt = 9;
    const double x[3] = {2, 2, 2}, y[3] = {0.1, 0.3, 0.2};
    ck_assert_int_eq(bcd__rep_theil_sen(&slope, &icpt, x, y, 3), BCD_EDOMAIN);
    ck_assert_double_eq(slope, 0.0);
    ck_assert_double_eq_tol(icpt, 0.2, 1e-12);
    ck_assert_int_eq(bcd__rep_theil_sen(&slope, &icpt, x, y, 1), BCD_EDOMAIN);
    ck_assert_int_eq(bcd__rep_theil_sen(&slope, &icpt, x, y, 0), BCD_EDOMAIN);
    double v[4] = {4, 1, 3, 2};
    ck_assert_double_eq_tol(bcd__rep_median(v, 4), 2.5, 1e-12);
    ck_assert(isnan(bcd__rep_median(v, 0)));
}
END_TEST

/* A history whose scored sessions all have score c: slope 0, level c. */
static const char *label_of_constant(double c)
{
    struct bcd__rep_session s[4];
    make_session(&s[0], 0, 0.0, 0);
    for (int i = 1; i < 4; i++)
        make_session(&s[i], i, c, i);
    struct bcd__rep_trend t;
    ck_assert_int_eq(bcd__rep_trend(&t, s, 4), BCD_OK);
    ck_assert_uint_eq(t.overall.n_points, 3);
    ck_assert_double_eq_tol(t.overall.slope, 0.0, 1e-12);
    ck_assert_double_eq_tol(t.overall.level, c, 1e-12);
    ck_assert_str_eq(t.overall.direction, "flat");
    const char *label = t.overall.label;
    bcd__rep_trend_clear(&t);
    free_sessions(s, 4);
    return label;
}

START_TEST(test_report_trend_labels_at_the_seed_thresholds)
{
    ck_assert_str_eq(label_of_constant(0.0), "stable");
    ck_assert_str_eq(label_of_constant(0.0999), "stable");
    ck_assert_str_eq(label_of_constant(0.1), "mild_variation");
    ck_assert_str_eq(label_of_constant(0.2499), "mild_variation");
    ck_assert_str_eq(label_of_constant(0.25), "significant_shift");
    ck_assert_str_eq(label_of_constant(0.9), "significant_shift");
}
END_TEST

START_TEST(test_report_trend_slope_level_direction_and_baseline_excluded)
{
    /* baseline session (score 0 by construction) then 0.00, 0.05, 0.10, 0.15 */
    struct bcd__rep_session s[5];
    make_session(&s[0], 0, 0.0, 0);
    for (int i = 1; i < 5; i++)
        make_session(&s[i], i, 0.05 * (i - 1), i);
    struct bcd__rep_trend t;
    ck_assert_int_eq(bcd__rep_trend(&t, s, 5), BCD_OK);
    ck_assert_uint_eq(t.n_sessions, 5);
    ck_assert_uint_eq(t.overall.n_points, 4);
    ck_assert_double_eq_tol(t.overall.slope, 0.05, 1e-12);
    ck_assert_double_eq_tol(t.overall.level, 0.15, 1e-12);
    ck_assert_str_eq(t.overall.label, "mild_variation");
    ck_assert_str_eq(t.overall.direction, "increasing");
    ck_assert_double_eq_tol(t.angle[0].slope, 0.05, 1e-12);
    ck_assert_uint_eq(t.n_flagged, 0);
    bcd__rep_trend_clear(&t);

    /* falling: level clamps at 0 */
    for (int i = 1; i < 5; i++)
        s[i].overall_change_score = 0.3 - 0.1 * (i - 1);
    ck_assert_int_eq(bcd__rep_trend(&t, s, 5), BCD_OK);
    ck_assert_double_eq_tol(t.overall.slope, -0.1, 1e-12);
    ck_assert_double_eq_tol(t.overall.level, 0.0, 1e-12);
    ck_assert_str_eq(t.overall.direction, "decreasing");
    ck_assert_str_eq(t.overall.label, "stable");
    ck_assert_uint_eq(t.n_flagged, 1); /* the first scored one: 0.3 overall */
    ck_assert_uint_eq(t.flags[1], BCD__REP_FLAG_OVERALL);
    bcd__rep_trend_clear(&t);

    /* only the baseline: nothing to fit */
    ck_assert_int_eq(bcd__rep_trend(&t, s, 1), BCD_OK);
    ck_assert_str_eq(t.overall.label, "insufficient_data");
    ck_assert_str_eq(t.overall.direction, "undetermined");
    ck_assert(isnan(t.overall.slope));
    bcd__rep_trend_clear(&t);
    /* empty history */
    ck_assert_int_eq(bcd__rep_trend(&t, s, 0), BCD_OK);
    ck_assert_uint_eq(t.n_sessions, 0);
    bcd__rep_trend_clear(&t);
    free_sessions(s, 5);
}
END_TEST

START_TEST(test_report_flags_changed_checks)
{
    struct bcd__rep_session s;
    make_session(&s, 1, 0.05, 2);
    ck_assert_uint_eq(bcd__rep_flags(&s), 0);
    s.angles[2].change_score = 0.26;
    ck_assert_uint_eq(bcd__rep_flags(&s), BCD__REP_FLAG_ANGLE);
    s.overall_change_score = 0.25;
    ck_assert_uint_eq(bcd__rep_flags(&s), BCD__REP_FLAG_ANGLE | BCD__REP_FLAG_OVERALL);
    s.changed = 1;
    ck_assert_uint_eq(bcd__rep_flags(&s), BCD__REP_FLAG_ANGLE | BCD__REP_FLAG_OVERALL | BCD__REP_FLAG_CHANGED);
    /* a baseline session is never flagged by score */
    struct bcd__rep_session b;
    make_session(&b, 0, 0.9, 0);
    ck_assert_uint_eq(bcd__rep_flags(&b), 0);
    b.angles[0].changed = 1;
    ck_assert_uint_eq(bcd__rep_flags(&b), BCD__REP_FLAG_CHANGED);
    bcd__rep_session_clear(&s);
    bcd__rep_session_clear(&b);
}
END_TEST

/* ---- evidence ------------------------------------------------------------------------ */

START_TEST(test_report_reads_detect_evidence_where_present)
{
    struct bcd__rep_session s;
    make_session(&s, 1, 0.05, 1);
    ck_assert_int_eq(bcd__rep_read_details(&s, "{\"angle_coverage\":1,\"image_quality\":0.5,\"baseline\":0.75}"),
                     BCD_OK);
    ck_assert_double_eq_tol(s.f_quality, 0.5, 1e-12);
    ck_assert(isnan(s.change_probability));
    ck_assert_int_eq(s.changed, -1);
    ck_assert(isnan(s.angles[0].local_change));

    ck_assert_int_eq(
        bcd__rep_read_details(&s, "{\"detect\":{\"change_probability\":0.87,\"changed\":true,\"per_angle\":["
                                  "{\"angle_type\":\"left\",\"local_change\":0.93,\"changed\":true,"
                                  "\"changed_regions\":[{\"x\":1,\"y\":2,\"width\":3,\"height\":4,\"score\":0.9}],"
                                  "\"quality\":{\"blurred\":true,\"clipped\":false,\"aligned\":false},"
                                  "\"heatmap\":\"s/left-heat.png\"},"
                                  "{\"angle_type\":\"nosuch\",\"local_change\":0.5}]}}"),
        BCD_OK);
    ck_assert_double_eq_tol(s.change_probability, 0.87, 1e-12);
    ck_assert_int_eq(s.changed, 1);
    const struct bcd__rep_angle *g = &s.angles[1];
    ck_assert_str_eq(g->angle, "left");
    ck_assert_double_eq_tol(g->local_change, 0.93, 1e-12);
    ck_assert_int_eq(g->changed, 1);
    ck_assert_uint_eq(g->n_regions, 1);
    ck_assert(g->has_qflags);
    ck_assert_uint_eq(g->qflags, BCD__REP_Q_BLURRED | BCD__REP_Q_MISALIGNED);
    ck_assert_str_eq(g->heatmap_path, "s/left-heat.png");
    /* the other shape: angles keyed by name */
    ck_assert_int_eq(bcd__rep_read_details(&s, "{\"angles\":{\"up\":{\"local_change\":null,\"changed\":false}}}"),
                     BCD_OK);
    ck_assert_int_eq(s.angles[3].changed, 0);
    ck_assert(isnan(s.angles[3].local_change));
    /* malformed: ignored */
    ck_assert_int_eq(bcd__rep_read_details(&s, "{not json"), BCD_OK);
    ck_assert_int_eq(bcd__rep_read_details(&s, NULL), BCD_OK);
    bcd__rep_session_clear(&s);
}
END_TEST

/* ---- summary text --------------------------------------------------------------------- */

START_TEST(test_report_summary_names_the_changed_angles_with_their_numbers)
{
    struct bcd__rep_session prev, cur;
    make_session(&prev, 3, 0.02, 2);
    bcd__rep_session_init(&cur);
    snprintf(cur.session_id, sizeof cur.session_id, "00000000-0000-4000-8000-000000000004");
    snprintf(cur.created_at, sizeof cur.created_at, "2026-05-20T09:30:00.000000Z");
    cur.overall_change_score = 0.18;
    cur.baseline_sessions = 3;
    cur.confidence = 0.41;
    cur.f_coverage = 0.5;
    cur.f_quality = 0.9;
    cur.f_baseline = 1.0;
    set_angle(&cur, "front", 0.31, 3, 0.9, 0.0);
    set_angle(&cur, "left", 0.12, 3, 0.2, 0.0);  /* blurred */
    set_angle(&cur, "right", 0.02, 3, 0.9, 0.2); /* clipped */
    cur.angles[0].distance_previous = 0.27;
    cur.angles[1].distance_previous = 0.04;
    cur.angles[2].distance_previous = 0.01;
    cur.delta_previous = 0.13;
    cur.delta_method = "embedding";

    struct bcd__rep_text x;
    ck_assert_int_eq(bcd__rep_text(&x, &cur, &prev, NULL), BCD_OK);
    const char *s = x.summary;
    HAS(s, "0.180, mild variation");
    HAS(s, "front 0.310 (significant shift), left 0.120 (mild variation)");
    LACKS(s, "right 0.020");
    HAS(s, "mean of 3 earlier checks");
    HAS(s, "overall distance between the two checks is 0.130 (mild variation)");
    HAS(s, "front 0.270 (significant shift)"); /* since the previous check */
    HAS(s, "The left photo looks blurred (sharpness 0.20)");
    HAS(s, "20% of the right photo is under- or over-exposed");
    HAS(s, "no photo of up, down and raised");
    HAS(s, "Confidence 0.41 (low), limited mostly by angle coverage (0.50)");
    HAS(s, "Look at the front photo");
    HAS(s, "not a diagnosis");
    HAS(s, "doctor");
    HAS(s, "Retake the left photo");
    HAS(s, "Retake the right photo");
    HAS(s, "Next time, also photograph up, down and raised");
    ck_assert_uint_eq(x.n_warnings, 3);
    ck_assert_uint_ge(x.n_next, 4);
    LACKS(x.findings, "Retake");
    HAS(x.findings, "front 0.310");
    bcd__rep_text_clear(&x);

    /* detect evidence where present */
    cur.change_probability = 0.87;
    cur.changed = 1;
    cur.angles[0].changed = 1;
    cur.angles[0].local_change = 0.91;
    cur.angles[0].n_regions = 2;
    cur.angles[0].regions_json = bcd__strdup("[{},{}]");
    ck_assert_int_eq(bcd__rep_text(&x, &cur, &prev, NULL), BCD_OK);
    HAS(x.summary, "probability of a real change at 87% (flagged as changed)");
    HAS(x.summary, "Changed areas were found in front (2 regions, local change 0.91)");
    bcd__rep_text_clear(&x);
    bcd__rep_session_clear(&cur);
    bcd__rep_session_clear(&prev);
}
END_TEST

START_TEST(test_report_summary_of_a_stable_check_and_of_a_first_check_differ)
{
    struct bcd__rep_session s[3];
    make_session(&s[0], 0, 0.0, 0);
    make_session(&s[1], 1, 0.031, 1);
    make_session(&s[2], 2, 0.012, 2);
    s[2].angles[4].change_score = 0.047;
    for (int a = 0; a < 6; a++)
        s[2].angles[a].distance_previous = 0.01 * (a + 1);
    s[2].delta_previous = 0.02;
    s[2].delta_method = "embedding";
    struct bcd__rep_trend t;
    ck_assert_int_eq(bcd__rep_trend(&t, s, 3), BCD_OK);

    struct bcd__rep_text a, b;
    ck_assert_int_eq(bcd__rep_text(&a, &s[2], &s[1], &t), BCD_OK);
    HAS(a.summary, "0.012, stable (below 0.10)");
    HAS(a.summary, "No angle is outside the stable range; the largest score is down at 0.047");
    HAS(a.summary, "no angle moved beyond the stable range (largest: raised, 0.060)");
    HAS(a.summary, "Over your 2 scored checks");
    HAS(a.summary, "Nothing in these numbers calls for action");
    LACKS(a.summary, "diagnosis");
    ck_assert_uint_eq(a.n_warnings, 0);

    ck_assert_int_eq(bcd__rep_text(&b, &s[0], NULL, &t), BCD_OK);
    HAS(b.summary, "first analyzed check");
    HAS(b.summary, "6 of 6 angles");
    HAS(b.summary, "it will be compared with this one");
    ck_assert_str_ne(a.summary, b.summary);
    bcd__rep_text_clear(&a);
    bcd__rep_text_clear(&b);
    bcd__rep_trend_clear(&t);
    free_sessions(s, 3);
}
END_TEST

/* ---- JSON documents ------------------------------------------------------------------- */

START_TEST(test_report_history_json_has_the_seed_fields_and_evidence_only_where_present)
{
    struct bcd__rep_session s[3];
    make_session(&s[0], 0, 0.0, 0);
    make_session(&s[1], 1, 0.3, 1);
    make_session(&s[2], 2, 0.05, 2);
    s[2].change_probability = 0.2;
    s[2].changed = 0;
    struct bcd__rep_trend t;
    ck_assert_int_eq(bcd__rep_trend(&t, s, 3), BCD_OK);
    cJSON *doc = bcd__rep_history_json("alice", s, 3, &t);
    ck_assert_ptr_nonnull(doc);
    char *txt = cJSON_PrintUnformatted(doc);
    ck_assert_str_eq(cJSON_GetObjectItem(doc, "user_id")->valuestring, "alice");
    const cJSON *ss = cJSON_GetObjectItem(doc, "sessions");
    ck_assert_int_eq(cJSON_GetArraySize(ss), 3);
    const cJSON *s1 = cJSON_GetArrayItem(ss, 1), *s2 = cJSON_GetArrayItem(ss, 2);
    ck_assert_str_eq(cJSON_GetObjectItem(s1, "session_id")->valuestring, s[1].session_id);
    ck_assert_double_eq_tol(cJSON_GetObjectItem(s1, "overall_change_score")->valuedouble, 0.3, 1e-9);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(s1, "flagged")));
    ck_assert_ptr_null(cJSON_GetObjectItem(s1, "change_probability"));
    ck_assert_double_eq_tol(cJSON_GetObjectItem(s2, "change_probability")->valuedouble, 0.2, 1e-9);
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(s2, "changed")));
    const cJSON *pa = cJSON_GetArrayItem(cJSON_GetObjectItem(s2, "per_angle"), 0);
    ck_assert_str_eq(cJSON_GetObjectItem(pa, "angle_type")->valuestring, "front");
    ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(pa, "change_score")));
    ck_assert_ptr_null(cJSON_GetObjectItem(pa, "local_change"));
    const cJSON *tr = cJSON_GetObjectItem(doc, "trend");
    ck_assert_str_eq(cJSON_GetObjectItem(tr, "method")->valuestring, "theil_sen");
    ck_assert_double_eq_tol(cJSON_GetObjectItem(tr, "slope")->valuedouble, -0.25, 1e-9);
    ck_assert_int_eq(cJSON_GetObjectItem(tr, "n_sessions")->valueint, 3);
    const cJSON *fl = cJSON_GetObjectItem(tr, "flagged_sessions");
    ck_assert_int_eq(cJSON_GetArraySize(fl), 1);
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(fl, 0), "session_id")->valuestring, s[1].session_id);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetArrayItem(ss, 0), "overall_trend")));
    LACKS(txt, "nan");
    free(txt);
    cJSON_Delete(doc);
    bcd__rep_trend_clear(&t);
    free_sessions(s, 3);
}
END_TEST

/* ---- encoders and text helpers -------------------------------------------------------- */

/* An RGB image of w x h whose bytes the caller fills (free_pattern() frees it). */
static bcd_image *blank(uint32_t w, uint32_t h)
{
    bcd_image *im = calloc(1, sizeof *im);
    im->width = w;
    im->height = h;
    im->channels = 3;
    im->data = malloc((size_t)w * h * 3);
    return im;
}

static bcd_image *pattern(uint32_t w, uint32_t h)
{
    bcd_image *im = blank(w, h);
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++) {
            uint8_t *p = im->data + ((size_t)y * w + x) * 3;
            p[0] = (uint8_t)(x * 7);
            p[1] = (uint8_t)(y * 11);
            p[2] = (uint8_t)((x + y) * 3);
        }
    return im;
}

static void free_pattern(bcd_image *im)
{
    free(im->data);
    free(im);
}

START_TEST(test_report_png_and_jpeg_encode_into_memory)
{
    bcd_ctx *ctx = NULL;
    ck_assert_int_eq(bcd_ctx_new(&ctx), BCD_OK);
    bcd_image *im = pattern(37, 23);
    struct bcd__rep_image png = {0}, jpg = {0};
    ck_assert_int_eq(bcd__rep_encode_png(&png, im, BCD__REP_PNG_SMALL), BCD_OK);
    ck_assert_str_eq(png.mime, "image/png");
    bcd_image *back = NULL;
    ck_assert_int_eq(bcd_image_decode(&back, ctx, png.data, png.len), BCD_OK);
    ck_assert_uint_eq(back->width, 37);
    ck_assert_uint_eq(back->height, 23);
    ck_assert_int_eq(memcmp(back->data, im->data, 37 * 23 * 3), 0); /* lossless */
    bcd_image_free(back);
    /* the fast kind: lossless too, stored uncompressed (larger than the pixels) */
    struct bcd__rep_image raw = {0};
    ck_assert_int_eq(bcd__rep_encode_png(&raw, im, BCD__REP_PNG_FAST), BCD_OK);
    ck_assert(raw.len > 37 * 23 * 3);
    ck_assert_int_eq(bcd_image_decode(&back, ctx, raw.data, raw.len), BCD_OK);
    ck_assert_uint_eq(back->width, 37);
    ck_assert_int_eq(memcmp(back->data, im->data, 37 * 23 * 3), 0);
    bcd_image_free(back);
    bcd__rep_image_clear(&raw);

    ck_assert_int_eq(bcd__rep_encode_jpeg(&jpg, im, 85), BCD_OK);
    ck_assert_str_eq(jpg.mime, "image/jpeg");
    ck_assert(jpg.len > 100 && jpg.data[0] == 0xff && jpg.data[1] == 0xd8);
    ck_assert_int_eq(bcd_image_decode(&back, ctx, jpg.data, jpg.len), BCD_OK);
    ck_assert_uint_eq(back->width, 37);
    ck_assert_uint_eq(back->height, 23);
    bcd_image_free(back);
    bcd__rep_image_clear(&png);
    bcd__rep_image_clear(&jpg);
    ck_assert_int_eq(bcd__rep_encode_jpeg(&jpg, im, 0), BCD_EINVAL);
    ck_assert_int_eq(bcd__rep_encode_png(&png, NULL, BCD__REP_PNG_SMALL), BCD_EINVAL);
    free_pattern(im);
    bcd_ctx_free(ctx);
}
END_TEST

/* ---- the compressed PNG (report/deflate.c) ------------------------------------------- */

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Huffman's code for freq[0, n): its cost (the sum of the merged weights) and depth, by
 * repeatedly merging the two lightest (quadratic, independent of deflate.c's queues).
 * Nodes 0 .. m-1 are the used symbols, the merged ones follow. */
static uint64_t reference_huffman(const uint32_t *freq, unsigned n, unsigned *depth)
{
    uint64_t w[600];
    int parent[600];
    bool alive[600];
    unsigned m = 0;
    for (unsigned s = 0; s < n; s++)
        if (freq[s]) {
            w[m] = freq[s];
            alive[m] = true;
            parent[m] = -1;
            m++;
        }
    *depth = m;
    if (m < 2)
        return 0;
    uint64_t cost = 0;
    for (unsigned k = m; k < 2 * m - 1; k++) {
        int a = -1, b = -1;
        for (unsigned i = 0; i < k; i++) {
            if (!alive[i])
                continue;
            if (a < 0 || w[i] < w[a]) {
                b = a;
                a = (int)i;
            } else if (b < 0 || w[i] < w[b]) {
                b = (int)i;
            }
        }
        w[k] = w[a] + w[b];
        cost += w[k];
        alive[a] = alive[b] = false;
        alive[k] = true;
        parent[k] = -1;
        parent[a] = parent[b] = (int)k;
    }
    *depth = 0;
    for (unsigned i = 0; i < m; i++) {
        unsigned d = 0;
        for (int j = (int)i; parent[j] >= 0; j = parent[j])
            d++;
        *depth = d > *depth ? d : *depth;
    }
    return cost;
}

/* The lengths len[0, n) of freq are a complete prefix code within limit bits, the used
 * symbols exactly coded, commoner symbols never longer; returns its cost. */
static uint64_t check_lengths(const uint32_t *freq, const uint8_t *len, unsigned n, unsigned limit)
{
    uint64_t kraft = 0, cost = 0;
    unsigned used = 0;
    for (unsigned s = 0; s < n; s++) {
        ck_assert_uint_le(len[s], limit);
        if (freq[s]) {
            ck_assert_uint_gt(len[s], 0);
            used++;
        }
        if (len[s])
            kraft += (uint64_t)1 << (limit - len[s]);
        cost += (uint64_t)freq[s] * len[s];
        for (unsigned t = 0; t < s; t++)
            if (freq[s] && freq[t])
                ck_assert(freq[s] > freq[t] ? len[s] <= len[t] : freq[s] < freq[t] ? len[s] >= len[t] : 1);
    }
    if (used)
        ck_assert_uint_eq(kraft, (uint64_t)1 << limit);
    return cost;
}

START_TEST(test_report_huffman_lengths_are_optimal_within_the_limit_and_complete)
{
    uint32_t freq[286];
    uint8_t len[286];
    /* Fibonacci: a chain 29 deep without the limit */
    uint32_t a = 1, b = 1;
    for (int s = 0; s < 30; s++) {
        freq[s] = a;
        uint32_t c = a + b;
        a = b;
        b = c;
    }
    bcd__huff_lengths(freq, 30, 15, len);
    check_lengths(freq, len, 30, 15);
    ck_assert_uint_eq(len[0], 15);
    ck_assert_uint_eq(len[29], 1);
    /* the code-length alphabet's 7 bits */
    bcd__huff_lengths(freq, 19, 7, len);
    check_lengths(freq, len, 19, 7);
    ck_assert_uint_eq(len[0], 7);
    /* flat bytes and a rare end of block: 8 bits, and two codes of 9 */
    for (int s = 0; s < 256; s++)
        freq[s] = 1000 + (uint32_t)s % 3;
    freq[256] = 1;
    bcd__huff_lengths(freq, 257, 15, len);
    check_lengths(freq, len, 257, 15);
    unsigned eights = 0;
    for (int s = 0; s < 256; s++)
        eights += len[s] == 8;
    ck_assert_uint_eq(eights, 255);
    ck_assert_uint_eq(len[256], 9);
    /* one used symbol: a partner makes the code complete */
    memset(freq, 0, sizeof freq);
    freq[0] = 42;
    bcd__huff_lengths(freq, 19, 7, len);
    ck_assert(len[0] == 1 && len[1] == 1);
    freq[0] = 0;
    freq[18] = 3;
    bcd__huff_lengths(freq, 19, 7, len);
    ck_assert(len[18] == 1 && len[0] == 1);
    /* random histograms: Huffman's cost where its depth fits, a complete code at the
     * limit where it does not */
    uint64_t seed = 99;
    int limited = 0;
    for (int t = 0; t < 400; t++) {
        unsigned n = 2 + (unsigned)(xorshift(&seed) % 285), limit = t % 2 ? 15 : 7;
        if (limit == 7 && n > 19)
            n = 19;
        int shape = t % 4;
        for (unsigned s = 0; s < n; s++) {
            uint64_t r = xorshift(&seed);
            freq[s] = shape == 0   ? (uint32_t)(r % 1000)
                      : shape == 1 ? (uint32_t)(r % 4 ? 0 : 1 + r % 50)
                      : shape == 2 ? (uint32_t)(1u << (r % 20)) + (uint32_t)(r >> 40) % 7
                                   : (uint32_t)(r % 3 ? 1 : 100000);
        }
        freq[xorshift(&seed) % n] |= 1; /* at least one used */
        bcd__huff_lengths(freq, n, limit, len);
        uint64_t cost = check_lengths(freq, len, n, limit);
        unsigned depth;
        uint64_t best = reference_huffman(freq, n, &depth);
        if (depth <= limit && depth > 1) {
            ck_assert_uint_eq(cost, best);
        } else if (depth > limit) {
            ck_assert_uint_ge(cost, best);
            limited++;
        }
    }
    ck_assert_int_gt(limited, 20);
}
END_TEST

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Uniform noise over 0 .. range-1. */
static bcd_image *noise(uint32_t w, uint32_t h, unsigned range, uint64_t seed)
{
    bcd_image *im = blank(w, h);
    for (size_t i = 0; i < (size_t)w * h * 3; i++)
        im->data[i] = (uint8_t)(xorshift(&seed) % range);
    return im;
}

/* The PNG holds im: signature; chunks with their CRCs, IHDR of an 8-bit RGB image first,
 * IDATs, IEND last; zlib's uncompress() of the IDATs gives im's rows with the "up" filter;
 * the library's decoder (libpng) gives im's pixels. Returns the number of IDATs. */
static int check_small_png(bcd_ctx *ctx, const struct bcd__rep_image *png, const bcd_image *im)
{
    static const unsigned char sig[8] = {137, 'P', 'N', 'G', '\r', '\n', 26, '\n'};
    ck_assert_str_eq(png->mime, "image/png");
    ck_assert_uint_eq(png->width, im->width);
    ck_assert_uint_eq(png->height, im->height);
    ck_assert_uint_ge(png->len, 8 + 25 + 12 + 12);
    ck_assert_int_eq(memcmp(png->data, sig, 8), 0);
    size_t rowlen = (size_t)im->width * 3, total = (rowlen + 1) * im->height;
    unsigned char *z = malloc(png->len), *rows = malloc(total + 1);
    size_t zlen = 0;
    int idats = 0;
    bool iend = false;
    for (size_t at = 8; at < png->len;) {
        ck_assert(!iend);
        ck_assert_uint_ge(png->len - at, 12);
        uint32_t n = be32(png->data + at);
        ck_assert_uint_le(n, png->len - at - 12);
        const unsigned char *type = png->data + at + 4, *data = type + 4;
        ck_assert_uint_eq(crc32(0L, type, 4 + n), be32(data + n));
        if (at == 8) {
            ck_assert(memcmp(type, "IHDR", 4) == 0 && n == 13);
            ck_assert_uint_eq(be32(data), im->width);
            ck_assert_uint_eq(be32(data + 4), im->height);
            ck_assert_int_eq(memcmp(data + 8, "\x08\x02\x00\x00\x00", 5), 0);
        } else if (memcmp(type, "IDAT", 4) == 0) {
            ck_assert(n > 0);
            memcpy(z + zlen, data, n);
            zlen += n;
            idats++;
        } else {
            ck_assert(memcmp(type, "IEND", 4) == 0 && n == 0);
            iend = true;
        }
        at += 12 + n;
    }
    ck_assert(iend && idats > 0);
    uLongf got = (uLongf)total + 1;
    ck_assert_int_eq(uncompress(rows, &got, z, (uLong)zlen), Z_OK);
    ck_assert_uint_eq(got, total);
    size_t bad = 0;
    for (size_t y = 0; y < im->height; y++) {
        const unsigned char *r = rows + y * (rowlen + 1), *px = im->data + y * rowlen;
        bad += r[0] != 2;
        for (size_t i = 0; i < rowlen; i++)
            bad += r[1 + i] != (unsigned char)(px[i] - (y ? px[i - rowlen] : 0));
    }
    ck_assert_uint_eq(bad, 0);
    bcd_image *back = NULL;
    ck_assert_int_eq(bcd_image_decode(&back, ctx, png->data, png->len), BCD_OK);
    ck_assert_uint_eq(back->width, im->width);
    ck_assert_uint_eq(back->height, im->height);
    ck_assert_uint_eq(back->channels, 3);
    ck_assert_int_eq(memcmp(back->data, im->data, rowlen * im->height), 0);
    bcd_image_free(back);
    free(z);
    free(rows);
    return idats;
}

/* Encode im compressed, check it as above; the encoded size in *len. */
static int small_png_round_trip(bcd_ctx *ctx, const bcd_image *im, size_t *len)
{
    struct bcd__rep_image png = {0};
    ck_assert_int_eq(bcd__rep_encode_png(&png, im, BCD__REP_PNG_SMALL), BCD_OK);
    int idats = check_small_png(ctx, &png, im);
    *len = png.len;
    bcd__rep_image_clear(&png);
    return idats;
}

START_TEST(test_report_small_png_round_trips_any_image)
{
    bcd_ctx *ctx = NULL;
    ck_assert_int_eq(bcd_ctx_new(&ctx), BCD_OK);
    size_t len;
    /* tiny and odd sizes */
    static const uint32_t sizes[][2] = {{1, 1}, {3, 1}, {1, 7}, {1000, 3}, {37, 23}, {2, 2}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        bcd_image *im = noise(sizes[i][0], sizes[i][1], 256, 7 + i);
        small_png_round_trip(ctx, im, &len);
        free_pattern(im);
        im = pattern(sizes[i][0], sizes[i][1]);
        small_png_round_trip(ctx, im, &len);
        free_pattern(im);
    }

    /* a constant image: after the first row one symbol (0) fills every block; besides it
     * the first block has the constant, and each the filter type and the end of block
     * (codes of 1 and 2 bits: degenerate trees) */
    bcd_image *im = blank(300, 200);
    memset(im->data, 0x5a, 300 * 200 * 3);
    size_t total = (300 * 3 + 1) * 200;
    small_png_round_trip(ctx, im, &len);
    ck_assert_uint_lt(len, total / 7);
    free_pattern(im);

    /* a smooth gradient over many blocks (590 kB of rows, an overlay's size) */
    im = blank(384, 512);
    for (uint32_t y = 0; y < 512; y++)
        for (uint32_t x = 0; x < 384; x++) {
            uint8_t *p = im->data + ((size_t)y * 384 + x) * 3;
            p[0] = (uint8_t)(x * 255 / 383);
            p[1] = (uint8_t)(y * 255 / 511);
            p[2] = (uint8_t)((x + y) / 4);
        }
    total = (384 * 3 + 1) * 512;
    ck_assert_int_eq(small_png_round_trip(ctx, im, &len), 1);
    ck_assert_uint_lt(len, total / 4);
    free_pattern(im);

    /* incompressible noise: stored rather than coded, so no larger than the rows, 5 bytes
     * per stored block of 16 KiB and the PNG chunks */
    im = noise(700, 600, 256, 11);
    total = (700 * 3 + 1) * 600;
    /* over 1 MiB of zlib stream: several IDAT chunks */
    ck_assert_int_ge(small_png_round_trip(ctx, im, &len), 2);
    ck_assert_uint_le(len, total + total / 16384 * 8 + 200);
    ck_assert_uint_ge(len, total);
    free_pattern(im);

    /* noise that every byte value fills, the even ones three times as often as the odd
     * (entropy 7.81 bits): coded with codes of about 8 bits, a little smaller than
     * stored; one row, so that the "up" filter passes the bytes as they are */
    im = blank(30000, 1);
    uint64_t seed = 5;
    for (size_t i = 0; i < 30000 * 3; i++) {
        uint64_t r = xorshift(&seed);
        im->data[i] = (uint8_t)((r & 0xfe) | ((r >> 8) % 4 == 0));
    }
    small_png_round_trip(ctx, im, &len);
    ck_assert_uint_lt(len, 30000 * 3 * 0.99);
    ck_assert_uint_gt(len, 30000 * 3 * 0.97);
    free_pattern(im);
    bcd_ctx_free(ctx);
}
END_TEST

/* Fibonacci frequencies (1, 1, 2, 3, 5, ...) make Huffman's tree a chain, as deep as
 * there are symbols less one: a single block of such bytes needs the 15-bit limit. */
START_TEST(test_report_small_png_round_trips_a_histogram_over_the_length_limit)
{
    bcd_ctx *ctx = NULL;
    ck_assert_int_eq(bcd_ctx_new(&ctx), BCD_OK);
    /* one row (the filter passes the bytes as they are): the filter type once and the end
     * of block once are the two 1s; then 2, 3, 5, ... 4181 bytes of 17 other values (the
     * last once more, to fill whole pixels): 19 symbols, 10944 bytes, one block */
    bcd_image *im = blank(3648, 1);
    uint32_t fib[20] = {1, 1};
    for (int k = 2; k < 20; k++)
        fib[k] = fib[k - 1] + fib[k - 2];
    size_t at = 0;
    for (int k = 2; k < 19; k++)
        for (uint32_t c = 0; c < fib[k] + (k == 18); c++)
            im->data[at++] = (uint8_t)(100 + k);
    ck_assert_uint_eq(at, 3648 * 3);
    uint32_t freq[257] = {0};
    freq[2] = 1;   /* the filter type */
    freq[256] = 1; /* the end of block */
    for (size_t i = 0; i < at; i++)
        freq[im->data[i]]++;
    uint8_t len[257];
    bcd__huff_lengths(freq, 257, 15, len);
    unsigned longest = 0;
    for (int s = 0; s < 257; s++)
        longest = len[s] > longest ? len[s] : longest;
    ck_assert_uint_eq(longest, 15); /* 18 without the limit */
    size_t size;
    small_png_round_trip(ctx, im, &size);
    ck_assert_uint_lt(size, at * 3 / 8); /* coded: ~2.6 bits a byte (entropy 2.5) */
    free_pattern(im);
    bcd_ctx_free(ctx);
}
END_TEST

/* Each pixel of small is the rounded mean of the box of big it covers. */
static void check_box_means(const bcd_image *small, const bcd_image *big)
{
    uint32_t W = big->width, H = big->height, nw = small->width, nh = small->height;
    for (uint32_t y = 0; y < nh; y++)
        for (uint32_t x = 0; x < nw; x++) {
            uint32_t y0 = y * H / nh, y1 = (y + 1) * H / nh, x0 = x * W / nw, x1 = (x + 1) * W / nw;
            for (int c = 0; c < 3; c++) {
                uint32_t acc = 0, cnt = (y1 - y0) * (x1 - x0);
                for (uint32_t yy = y0; yy < y1; yy++)
                    for (uint32_t xx = x0; xx < x1; xx++)
                        acc += big->data[((size_t)yy * W + xx) * 3 + c];
                ck_assert_uint_eq(small->data[((size_t)y * nw + x) * 3 + c], (acc + cnt / 2) / cnt);
            }
        }
}

/* The copy analyze reduces in preprocessing's pass is bcd__det_reduce()'s, and the tensor
 * bcd_image_preprocess()'s: for a photo larger than the detection size and a smaller one. */
START_TEST(test_report_preprocess_and_reduce_in_one_pass_equals_the_two)
{
    static const uint32_t sizes[][2] = { { 1031, 1377 }, { 700, 333 }, { 300, 200 } };
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        bcd_image *im = pattern(sizes[k][0], sizes[k][1]);
        bcd_image *a_img = pattern(sizes[k][0], sizes[k][1]), *b_img = pattern(sizes[k][0], sizes[k][1]);
        float *ta = malloc(BCD_TENSOR_LEN * sizeof *ta), *tb = malloc(BCD_TENSOR_LEN * sizeof *tb);
        struct bcd__det_photo pa, pb;
        memset(&pa, 0, sizeof pa);
        memset(&pb, 0, sizeof pb);
        ck_assert_int_eq(bcd_image_preprocess(ta, BCD_TENSOR_LEN, im), BCD_OK);
        ck_assert_int_eq(bcd__det_reduce(&pa, &a_img), BCD_OK);
        ck_assert_int_eq(bcd__det_preprocess_reduce(tb, BCD_TENSOR_LEN, &pb, &b_img), BCD_OK);
        ck_assert_mem_eq(ta, tb, BCD_TENSOR_LEN * sizeof *ta);
        ck_assert_uint_eq(pa.width, pb.width);
        ck_assert_uint_eq(pa.height, pb.height);
        ck_assert_uint_eq(pa.img->width, pb.img->width);
        ck_assert_uint_eq(pa.img->height, pb.img->height);
        ck_assert(pb.img->width <= BCD__DET_SIDE && pb.img->height <= BCD__DET_SIDE);
        ck_assert_mem_eq(pa.img->data, pb.img->data, (size_t)pa.img->width * pa.img->height * 3);
        /* a small photo is taken over as it is, by both */
        ck_assert((a_img == NULL) == (b_img == NULL));
        bcd__det_photos_free(&pa, 1);
        bcd__det_photos_free(&pb, 1);
        if (a_img)
            free_pattern(a_img);
        if (b_img)
            free_pattern(b_img);
        free_pattern(im);
        free(ta);
        free(tb);
    }
}
END_TEST

START_TEST(test_report_downscale_keeps_aspect_and_averages)
{
    bcd_image *im = pattern(600, 800), *small = NULL;
    ck_assert_int_eq(bcd__rep_downscale(&small, im, 320), BCD_OK);
    ck_assert_uint_eq(small->width, 240);
    ck_assert_uint_eq(small->height, 320);
    bcd_image_free(small);
    /* never enlarges */
    ck_assert_int_eq(bcd__rep_downscale(&small, im, 4000), BCD_OK);
    ck_assert_uint_eq(small->width, 600);
    ck_assert_int_eq(memcmp(small->data, im->data, 600 * 800 * 3), 0);
    bcd_image_free(small);
    free_pattern(im);
    /* a 2x2 box average */
    bcd_image *sq = pattern(2, 2);
    ck_assert_int_eq(bcd__rep_downscale(&small, sq, 1), BCD_OK);
    ck_assert_uint_eq(small->data[0], (0 + 7 + 0 + 7 + 2) / 4);
    bcd_image_free(small);
    free_pattern(sq);
    /* uneven boxes: every output pixel is the rounded mean of the box it covers */
    bcd_image *odd = pattern(457, 301);
    ck_assert_int_eq(bcd__rep_downscale(&small, odd, 100), BCD_OK);
    ck_assert_uint_eq(small->width, 100);
    ck_assert_uint_eq(small->height, 66);
    check_box_means(small, odd);
    bcd_image_free(small);
    free_pattern(odd);
    /* boxes of one width (400 / 100), and boxes of over 2^20 pixels (summed in 64 bits) */
    const uint32_t sizes[2][3] = { { 400, 300, 100 }, { 1100, 1000, 1 } };
    for (int k = 0; k < 2; k++) {
        bcd_image *b = pattern(sizes[k][0], sizes[k][1]);
        ck_assert_int_eq(bcd__rep_downscale(&small, b, sizes[k][2]), BCD_OK);
        check_box_means(small, b);
        bcd_image_free(small);
        free_pattern(b);
    }
    /* fed row by row: rows out of order or missing give no image (and leak nothing) */
    struct bcd__rep_downscaler d;
    bcd_image *rows = pattern(50, 40);
    ck_assert_int_eq(bcd__rep_downscaler_init(&d, 50, 40, 10), BCD_OK);
    bcd__rep_downscaler_row(&d, rows->data, 0);
    bcd__rep_downscaler_row(&d, rows->data + 2 * 150, 2);
    ck_assert_ptr_null(bcd__rep_downscaler_finish(&d));
    ck_assert_int_eq(bcd__rep_downscaler_init(&d, 50, 40, 10), BCD_OK);
    for (uint32_t y = 0; y + 1 < 40; y++)
        bcd__rep_downscaler_row(&d, rows->data + (size_t)y * 150, y);
    ck_assert_ptr_null(bcd__rep_downscaler_finish(&d));
    ck_assert_int_eq(bcd__rep_downscaler_init(&d, 50, 40, 10), BCD_OK);
    bcd__rep_downscaler_clear(&d);
    ck_assert_int_eq(bcd__rep_downscaler_init(&d, 0, 40, 10), BCD_EINVAL);
    free_pattern(rows);
    /* boxes taller than the 257 rows summed in 16 bits at a time */
    bcd_image *tall = pattern(31, 2100);
    ck_assert_int_eq(bcd__rep_downscale(&small, tall, 3), BCD_OK);
    ck_assert_uint_eq(small->height, 3);
    check_box_means(small, tall);
    bcd_image_free(small);
    free_pattern(tall);
}
END_TEST

START_TEST(test_report_html_escape_and_base64)
{
    struct bcd__buf b = {0};
    bcd__sb_html(&b, "a<b>&\"'\x01\tz\xff\xc3\xa9 x:y http://h/");
    ck_assert_str_eq(b.p, "a&lt;b&gt;&amp;&quot;&#39;\tz\xef\xbf\xbd\xc3\xa9 x:y http:&#47;&#47;h/");
    bcd__buf_free(&b);
    static const struct {
        const char *in, *out;
    } v[] = {{"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foob", "Zm9vYg=="}, {"foobar", "Zm9vYmFy"}};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        bcd__buf_put(&b, "");
        bcd__sb_base64(&b, (const unsigned char *)v[i].in, strlen(v[i].in));
        ck_assert_str_eq(b.p ? b.p : "", v[i].out);
        bcd__buf_free(&b);
    }
    bcd__sb_num(&b, "%.3f", -0.0001);
    ck_assert_str_eq(b.p, "0.000");
    bcd__buf_free(&b);
    char d[64];
    bcd__rep_format_date(d, sizeof d, "2024-02-29T23:59:30.5Z", BCD__REP_DATE_TIME);
    ck_assert_str_eq(d, "29 Feb 2024 23:59 UTC");
    bcd__rep_format_date(d, sizeof d, "2026-11-25T01:00:00+02:00", BCD__REP_DATE);
    ck_assert_str_eq(d, "24 Nov 2026");
    bcd__rep_format_date(d, sizeof d, "garbage", BCD__REP_DATE);
    ck_assert_str_eq(d, "garbage");
    ck_assert(bcd__rep_same_day("2026-01-01T00:00:00Z", "2026-01-01T23:59:59Z"));
    ck_assert(!bcd__rep_same_day("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"));
}
END_TEST

/* ---- HTML page ------------------------------------------------------------------------ */

START_TEST(test_report_html_is_self_contained_and_escapes_text)
{
    struct bcd__rep_session s[3];
    make_session(&s[0], 0, 0.0, 0);
    make_session(&s[1], 1, 0.08, 1);
    make_session(&s[2], 2, 0.27, 2);
    /* text that comes from storage must never become markup */
    snprintf(s[2].model, sizeof s[2].model, "<script>alert(1)</script>");
    s[2].angles[0].summary = bcd__strdup("<img src=x onerror=alert(2)>");
    s[2].angles[1].distance_previous = 0.3;
    s[2].delta_previous = 0.2;
    s[2].delta_method = "embedding";
    struct bcd__rep_trend t;
    struct bcd__rep_text x;
    ck_assert_int_eq(bcd__rep_trend(&t, s, 3), BCD_OK);
    ck_assert_int_eq(bcd__rep_text(&x, &s[2], &s[1], &t), BCD_OK);
    /* an injected warning line, as if a stored text had reached the summary */
    free(x.findings);
    x.findings = bcd__strdup("findings <b onclick=\"steal()\">&</b> https://evil.example/x");

    struct bcd__rep_photos ph;
    memset(&ph, 0, sizeof ph);
    bcd_image *im = pattern(60, 80);
    ck_assert_int_eq(bcd__rep_encode_jpeg(&ph.current[0], im, 80), BCD_OK);
    ck_assert_int_eq(bcd__rep_encode_jpeg(&ph.previous[0], im, 80), BCD_OK);
    ck_assert_int_eq(bcd__rep_encode_png(&ph.heatmap[0], im, BCD__REP_PNG_SMALL), BCD_OK);
    free_pattern(im);

    struct bcd__rep_html_input in = {.s = s, .n = 3, .cur = 2, .trend = &t, .text = &x, .photos = &ph,
                                     .generated_at = "2026-06-01T12:00:00.000000Z", .version = "0.1.0"};
    char *html = NULL;
    size_t len = 0;
    ck_assert_int_eq(bcd__rep_html(&html, &len, &in), BCD_OK);
    ck_assert_uint_eq(len, strlen(html));
    HAS(html, "<!DOCTYPE html>");
    HAS(html, "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    HAS(html, "default-src 'none'");
    HAS(html, "@media print");
    HAS(html, "@media (max-width:600px)");
    HAS(html, "data:image/jpeg;base64,/9j/");
    HAS(html, "data:image/png;base64,iVBORw0KGgo");
    HAS(html, "<svg");
    HAS(html, "<polyline");
    /* nothing external, no script */
    LACKS(html, "<script");
    LACKS(html, "http://");
    LACKS(html, "https://");
    LACKS(html, "src=\"http");
    LACKS(html, "url(");
    LACKS(html, "@import");
    LACKS(html, "<link");
    /* escaped, not interpreted */
    HAS(html, "&lt;script&gt;alert(1)&lt;/script&gt;");
    HAS(html, "findings &lt;b onclick=&quot;steal()&quot;&gt;&amp;&lt;/b&gt; https:&#47;&#47;evil.example/x");
    LACKS(html, "<img src=x");
    /* the numbers carry their exact values */
    HAS(html, "data-field=\"overall_change_score\" data-value=\"0.270000\"");
    HAS(html, "data-session=\"00000000-0000-4000-8000-000000000002\"");
    free(html);

    /* without photos: no photo section, still charts */
    in.photos = NULL;
    ck_assert_int_eq(bcd__rep_html(&html, &len, &in), BCD_OK);
    LACKS(html, "data:image/");
    HAS(html, "<svg");
    free(html);
    bcd__rep_photos_clear(&ph);
    bcd__rep_text_clear(&x);
    bcd__rep_trend_clear(&t);
    free_sessions(s, 3);
}
END_TEST

/* ---- the operations over the local store ---------------------------------------------- */

static char tmpdir[64];
static bcd_ctx *ctx;
static bcd_service *svc;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/bcd-report-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    char data[128];
    snprintf(data, sizeof data, "%s/data", tmpdir);
    ck_assert_int_eq(bcd_ctx_new(&ctx), BCD_OK);
    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_DATA_DIR", data), BCD_OK);
    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_STORE", "local"), BCD_OK);
    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_MODEL", "builtin"), BCD_OK);
    ck_assert_int_eq(bcd_service_open(&svc, ctx), BCD_OK);
}

static void teardown(void)
{
    bcd_service_free(svc);
    svc = NULL;
    bcd_ctx_free(ctx);
    ctx = NULL;
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *err_code(void)
{
    return bcd_error_code(bcd_service_last_error(svc));
}

#define OK(expr)                                                                                                  \
    do {                                                                                                          \
        bcd_status st_ = (expr);                                                                                  \
        ck_assert_msg(st_ == BCD_OK, "%s -> %d %s: %s", #expr, st_, err_code(),                                    \
                      bcd_error_message(bcd_service_last_error(svc)));                                            \
    } while (0)

static cJSON *parse(char *json)
{
    ck_assert_ptr_nonnull(json);
    cJSON *j = cJSON_Parse(json);
    ck_assert_msg(j != NULL, "not JSON: %s", json);
    bcd_free(json);
    return j;
}

static void session_id_of(char *json, char id[37])
{
    cJSON *j = parse(json);
    snprintf(id, 37, "%s", cJSON_GetObjectItem(j, "session_id")->valuestring);
    cJSON_Delete(j);
}

/* A completed, analyzed session of user with the six photos of examples/data/<check>. */
static void analyzed_session(const char *user, const char *check, char id[37])
{
    static const char *const angles[6] = {"front", "left", "right", "up", "down", "raised"};
    char *out = NULL;
    OK(bcd_session_create(&out, svc, user));
    session_id_of(out, id);
    for (int a = 0; a < 6; a++) {
        char path[512];
        snprintf(path, sizeof path, "%s/examples/data/%s/%s.jpg", BCD_SOURCE_DIR, check, angles[a]);
        OK(bcd_image_add(&out, svc, user, id, angles[a], path, -1));
        bcd_free(out);
    }
    OK(bcd_session_complete(&out, svc, user, id));
    bcd_free(out);
    OK(bcd_session_analyze(&out, svc, user, id, NULL));
    bcd_free(out);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    ck_assert_int_eq((long)fread(buf, 1, (size_t)n, f), n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

struct seen {
    int analyses, photos, write;
    size_t last_total;
};

static void on_progress(void *user, const bcd_progress_event *ev)
{
    struct seen *s = user;
    if (strcmp(ev->stage, "analyses") == 0)
        s->analyses++;
    else if (strcmp(ev->stage, "photos") == 0)
        s->photos++;
    else if (strcmp(ev->stage, "write") == 0)
        s->write++;
    ck_assert_uint_le(ev->done, ev->total);
    s->last_total = ev->total;
}

START_TEST(test_report_operations_over_the_local_store)
{
    char s1[37], s2[37], s3[37], other[37], lone[37];
    analyzed_session("alice", "check1", s1);
    analyzed_session("alice", "check2", s2);
    analyzed_session("alice", "check1", s3);
    analyzed_session("bob", "check2", other);
    char *out = NULL;
    OK(bcd_session_create(&out, svc, "alice")); /* not analyzed: left out of the history */
    session_id_of(out, lone);

    OK(bcd_history(&out, svc, "alice"));
    cJSON *h = parse(out);
    ck_assert_int_eq(cJSON_GetObjectItem(h, "count")->valueint, 3);
    const cJSON *ss = cJSON_GetObjectItem(h, "sessions");
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(ss, 0), "session_id")->valuestring, s1);
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(ss, 2), "session_id")->valuestring, s3);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetArrayItem(ss, 0), "is_baseline")));
    ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(h, "trend"), "n_scored")->valueint, 2);

    /* the numbers are the stored ones */
    OK(bcd_analysis_get(&out, svc, "alice", s3));
    cJSON *a = parse(out);
    const cJSON *sa = cJSON_GetObjectItem(cJSON_GetObjectItem(a, "data"), "session_analysis");
    const cJSON *h3 = cJSON_GetArrayItem(ss, 2);
    ck_assert_double_eq(cJSON_GetObjectItem(h3, "overall_change_score")->valuedouble,
                        cJSON_GetObjectItem(sa, "overall_change_score")->valuedouble);
    for (int i = 0; i < 6; i++)
        ck_assert_double_eq(
            cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(h3, "per_angle"), i), "change_score")->valuedouble,
            cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(sa, "per_angle"), i), "change_score")
                ->valuedouble);

    /* against the previous check, as bcd_session_compare() */
    OK(bcd_session_compare(&out, svc, "alice", s3, s2));
    cJSON *cmp = parse(out);
    ck_assert_double_eq(cJSON_GetObjectItem(h3, "delta_from_previous")->valuedouble,
                        cJSON_GetObjectItem(cJSON_GetObjectItem(cmp, "data"), "overall_delta")->valuedouble);
    ck_assert_double_eq(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(h3, "per_angle"), 1), "embedding_distance")
            ->valuedouble,
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(cmp, "data"), "per_angle"), 1),
                            "embedding_distance")
            ->valuedouble);
    cJSON_Delete(cmp);

    OK(bcd_report(&out, svc, "alice", s3));
    cJSON *r = parse(out);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(r, "success")));
    const cJSON *d = cJSON_GetObjectItem(r, "data");
    ck_assert_str_eq(cJSON_GetObjectItem(d, "session_id")->valuestring, s3);
    ck_assert_double_eq(cJSON_GetObjectItem(d, "overall_change_score")->valuedouble,
                        cJSON_GetObjectItem(sa, "overall_change_score")->valuedouble);
    ck_assert_str_eq(cJSON_GetObjectItem(d, "created_at")->valuestring,
                     cJSON_GetObjectItem(cJSON_GetArrayItem(ss, 2), "created_at")->valuestring);
    ck_assert_str_eq(cJSON_GetObjectItem(d, "previous_session_id")->valuestring, s2);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(d, "per_angle")), 6);
    const char *summary = cJSON_GetObjectItem(d, "summary")->valuestring;
    HAS(summary, "against your baseline (the mean of 2 earlier checks)");
    LACKS(summary, "Placeholder");
    ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(d, "history"), "count")->valueint, 3);
    cJSON_Delete(r);
    cJSON_Delete(a);
    cJSON_Delete(h);

    /* HTML, with progress */
    struct seen seen = {0};
    ck_assert_int_eq(bcd_service_set_progress(svc, on_progress, &seen), BCD_OK);
    char path[128];
    snprintf(path, sizeof path, "%s/report.html", tmpdir);
    OK(bcd_report_html(svc, "alice", s3, path));
    ck_assert_int_eq(bcd_service_set_progress(svc, NULL, NULL), BCD_OK);
    ck_assert_int_gt(seen.analyses, 0);
    ck_assert_int_eq(seen.photos, 7); /* 0 of 6 .. 6 of 6 */
    ck_assert_int_eq(seen.write, 2);
    char *html = read_text(path);
    ck_assert_int_eq((int)(strstr(html, "data:image/jpeg") != NULL), 1);
    size_t imgs = 0;
    for (const char *p = html; (p = strstr(p, "<img ")); p++)
        imgs++;
    /* previous, current and change map of six angles, and before and now of the changed
     * lesion of `left`: this check is the example's first one again, after its second, so
     * the example's grown mole is smaller again (changed) and its new spot is gone (listed
     * with its evidence, never flagged: see bcd/lesion.h) */
    ck_assert_uint_eq(imgs, 18 + 2);
    HAS(html, "Changed lesions");
    LACKS(html, "http://");
    LACKS(html, "https://");
    LACKS(html, "<script");
    LACKS(html, tmpdir); /* no storage path */
    HAS(html, s3);
    free(html);

    /* without photos, smaller thumbnails rejected out of range */
    bcd_report_options o = BCD_REPORT_OPTIONS_INIT;
    o.flags = BCD_REPORT_NO_PHOTOS;
    OK(bcd_report_html_ext(svc, "alice", s3, path, &o));
    html = read_text(path);
    LACKS(html, "data:image/");
    free(html);
    o.thumbnail_size = 10;
    ck_assert_int_eq(bcd_report_html_ext(svc, "alice", s3, path, &o), BCD_EINVAL);
    ck_assert_int_eq(bcd_report_options_init(&o, 99), BCD_EINVAL);
    ck_assert_int_eq(bcd_report_options_init(&o, BCD_REPORT_OPTIONS_VERSION), BCD_OK);

    /* the first check: no previous */
    OK(bcd_report(&out, svc, "alice", s1));
    r = parse(out);
    d = cJSON_GetObjectItem(r, "data");
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(d, "is_first_session")));
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(d, "comparison")));
    HAS(cJSON_GetObjectItem(d, "summary")->valuestring, "first analyzed check");
    cJSON_Delete(r);

    /* errors: not analyzed, another user's, malformed, no path */
    ck_assert_int_eq(bcd_report(&out, svc, "alice", lone), BCD_ENOTFOUND);
    ck_assert_str_eq(err_code(), "analysis_not_found");
    ck_assert_int_eq(bcd_report(&out, svc, "alice", other), BCD_ENOTFOUND);
    ck_assert_str_eq(err_code(), "session_not_found");
    ck_assert_int_eq(bcd_report_html(svc, "alice", other, path), BCD_ENOTFOUND);
    ck_assert_str_eq(err_code(), "session_not_found");
    ck_assert_int_eq(bcd_report(&out, svc, "alice", "nope"), BCD_EINVAL);
    ck_assert_str_eq(err_code(), "invalid_session_id");
    ck_assert_int_eq(bcd_report_html(svc, "alice", s3, NULL), BCD_EINVAL);
    ck_assert_int_eq(bcd_history(&out, svc, ""), BCD_EINVAL);
    ck_assert_int_eq(bcd_history(NULL, svc, "alice"), BCD_EINVAL);
    ck_assert_int_eq(bcd_history(&out, NULL, "alice"), BCD_EINVAL);

    /* a user without analyses has an empty history */
    OK(bcd_history(&out, svc, "carol"));
    h = parse(out);
    ck_assert_int_eq(cJSON_GetObjectItem(h, "count")->valueint, 0);
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(h, "trend"), "label")->valuestring, "insufficient_data");
    cJSON_Delete(h);
}
END_TEST

/* Evidence the detect layer stores with an analysis reaches the documents. */
START_TEST(test_report_operations_show_stored_change_evidence)
{
    char s1[37], s2[37];
    analyzed_session("dora", "check1", s1);
    analyzed_session("dora", "check2", s2);
    struct bcd__analysis a;
    memset(&a, 0, sizeof a);
    ck_assert_int_eq(bcd__store_analysis_get(svc->store, s2, &a), BCD_OK);
    free(a.details_json);
    a.details_json = bcd__strdup("{\"angle_coverage\":1,\"image_quality\":0.9,\"baseline\":0.67,"
                                 "\"change_probability\":0.93,\"changed\":true,\"per_angle\":[{\"angle_type\":"
                                 "\"left\",\"local_change\":0.88,\"changed\":true,\"changed_regions\":[{\"x\":10,"
                                 "\"y\":20,\"width\":30,\"height\":40,\"score\":0.88}],\"quality\":{\"blurred\":"
                                 "false,\"clipped\":false,\"subject_too_small\":false,\"aligned\":true}}]}");
    bool overwritten = false;
    ck_assert_int_eq(bcd__store_analysis_save(svc->store, &a, &overwritten), BCD_OK);
    ck_assert(overwritten);
    bcd__analysis_clear(&a);

    char *out = NULL;
    OK(bcd_report(&out, svc, "dora", s2));
    cJSON *r = parse(out);
    const cJSON *d = cJSON_GetObjectItem(r, "data");
    ck_assert_double_eq_tol(cJSON_GetObjectItem(d, "change_probability")->valuedouble, 0.93, 1e-9);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(d, "changed")));
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(d, "flagged")));
    const cJSON *left = cJSON_GetArrayItem(cJSON_GetObjectItem(d, "per_angle"), 1);
    ck_assert_str_eq(cJSON_GetObjectItem(left, "angle_type")->valuestring, "left");
    ck_assert_double_eq_tol(cJSON_GetObjectItem(left, "local_change")->valuedouble, 0.88, 1e-9);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(left, "changed_regions")), 1);
    const cJSON *front = cJSON_GetArrayItem(cJSON_GetObjectItem(d, "per_angle"), 0);
    ck_assert_ptr_null(cJSON_GetObjectItem(front, "local_change"));
    const char *summary = cJSON_GetObjectItem(d, "summary")->valuestring;
    HAS(summary, "probability of a real change at 93% (flagged as changed)");
    HAS(summary, "left (1 region, local change 0.88)");
    HAS(summary, "not a diagnosis");
    const cJSON *fl =
        cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(d, "history"), "trend"), "flagged_sessions");
    ck_assert_int_eq(cJSON_GetArraySize(fl), 1);
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(fl, 0), "session_id")->valuestring, s2);
    cJSON_Delete(r);
}
END_TEST

static size_t count_imgs(const char *html)
{
    size_t n = 0;
    for (const char *p = html; (p = strstr(p, "<img ")); p++)
        n++;
    return n;
}

/* Thumbnails up to the detection size come from the reduced photos analyze stored (no
 * photo is decoded again); larger ones from the photos. Change maps that were not stored
 * are computed from the photos reduced now. */
START_TEST(test_report_thumbnails_come_from_the_stored_working_copies)
{
    char s1[37], s2[37], s3[37];
    analyzed_session("erin", "check1", s1);
    analyzed_session("erin", "check2", s2);
    char path[128], *html;
    snprintf(path, sizeof path, "%s/report.html", tmpdir);

    /* every photo of s2 damaged in the store after its analysis */
    struct bcd__image_row *imgs = NULL;
    size_t n = 0;
    ck_assert_int_eq(bcd__store_image_list(svc->store, s2, &imgs, &n), BCD_OK);
    ck_assert_uint_eq(n, 6);
    for (size_t i = 0; i < n; i++) {
        char file[sizeof tmpdir + sizeof imgs[i].storage_path + 16];
        snprintf(file, sizeof file, "%s/data/blobs/%s", tmpdir, imgs[i].storage_path);
        FILE *f = fopen(file, "wb");
        ck_assert_msg(f != NULL, "%s", file);
        fputs("not a photo any more", f);
        fclose(f);
    }
    free(imgs);
    OK(bcd_report_html(svc, "erin", s2, path));
    html = read_text(path);
    /* previous, current, change map: none decoded; the changed lesions' crops need the
     * photos themselves: only the previous check's are there */
    ck_assert_uint_eq(count_imgs(html), 18 + 2);
    LACKS(html, "photo not available");
    HAS(html, "the photo could not be read");
    free(html);
    /* thumbnails larger than the working copies need the photos themselves */
    bcd_report_options o = BCD_REPORT_OPTIONS_INIT;
    o.thumbnail_size = 640;
    OK(bcd_report_html_ext(svc, "erin", s2, path, &o));
    html = read_text(path);
    ck_assert_uint_eq(count_imgs(html), 12 + 2); /* the current photos are placeholders (lesion crops too) */
    HAS(html, "photo not available");
    free(html);

    /* analyzed without detection: no change maps, no working copies stored; the maps
     * are made now from the photos, decoded and reduced as analyze would */
    char *out = NULL;
    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_DETECT", "off"), BCD_OK);
    analyzed_session("erin", "check1", s3);
    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_DETECT", "on"), BCD_OK);
    OK(bcd_analysis_get(&out, svc, "erin", s3));
    ck_assert_ptr_null(strstr(out, "heatmap"));
    bcd_free(out);
    OK(bcd_report_html(svc, "erin", s3, path));
    html = read_text(path);
    ck_assert_uint_eq(count_imgs(html), 18);
    free(html);
    o.flags = BCD_REPORT_NO_HEATMAPS;
    o.thumbnail_size = 0;
    OK(bcd_report_html_ext(svc, "erin", s3, path, &o));
    html = read_text(path);
    ck_assert_uint_eq(count_imgs(html), 12);
    free(html);
}
END_TEST

/* Feature maps through the service's detection: compared cell by cell, stored as
 * 16-bit PNG blobs named in the details, read back from them (the path a model with a
 * map takes; built-in sessions with maps attached here). */
START_TEST(test_report_feature_maps_are_compared_stored_and_read_back)
{
    enum { C = 8, H = 3, W = 4 };
    char s1[37], s2[37];
    analyzed_session("finn", "check1", s1);
    analyzed_session("finn", "check1", s2); /* the same photos */
    struct bcd__det_photo cur[6], prev[6], back[6];
    size_t nc = 0, np = 0, nb = 0;
    memset(cur, 0, sizeof cur);
    memset(prev, 0, sizeof prev);
    memset(back, 0, sizeof back);
    OK(bcd__det_load_stored(svc, s2, cur, &nc, NULL, NULL));
    OK(bcd__det_load_stored(svc, s1, prev, &np, NULL, NULL));
    ck_assert_uint_eq(nc, 6);
    ck_assert_uint_eq(np, 6);
    static float maps[6][C * H * W], other[C * H * W];
    for (int a = 0; a < 6; a++) {
        for (int k = 0; k < C * H * W; k++)
            maps[a][k] = (float)((k * 7 + a * 3) % 11) * 0.37f;
        cur[a].map = prev[a].map = maps[a];
        cur[a].map_c = prev[a].map_c = C;
        cur[a].map_h = prev[a].map_h = H;
        cur[a].map_w = prev[a].map_w = W;
        snprintf(cur[a].map_model, sizeof cur[a].map_model, "m:%d", C);
        snprintf(prev[a].map_model, sizeof prev[a].map_model, "m:%d", C);
    }
    /* angle 1: another model, nothing compared; angle 2: one cell of the current map changed */
    snprintf(prev[1].map_model, sizeof prev[1].map_model, "other:%d", C);
    memcpy(other, maps[2], sizeof other);
    for (int k = 0; k < C; k++)
        other[k * H * W + 5] = (float)(k % 2);
    cur[2].map = other;

    struct bcd__detection d;
    OK(bcd__det_run(svc, &d, cur, nc, prev, np, s1, s2, NULL));
    ck_assert_uint_eq(d.n, 6);
    for (int a = 0; a < 6; a++) {
        const struct bcd__det_angle *g = &d.a[a];
        ck_assert_msg(g->compared, "angle %d", a);
        ck_assert_ptr_nonnull(g->fmap); /* the current map is stored in every case */
        ck_assert_uint_eq(g->fmap_c * 100 + g->fmap_h * 10 + g->fmap_w, C * 100 + H * 10 + W);
        if (a == 1) {
            ck_assert_ptr_null(g->feature);
            continue;
        }
        ck_assert_ptr_nonnull(g->feature);
        ck_assert_uint_eq(g->fh * 10 + g->fw, H * 10 + W);
        /* the same photos align to (almost) the identity: the same cells meet */
        for (int k = 0; k < H * W; k++)
            if (a == 2 && k == 5)
                ck_assert_float_gt(g->feature[k], 0.2f);
            else
                ck_assert_msg(g->feature[k] < 0.05f, "angle %d cell %d: %g", a, k, g->feature[k]);
    }
    /* the details name the maps; read back, they are the halves of what was stored */
    bool ok = true;
    cJSON *det = cJSON_CreateObject();
    bcd__det_json(&ok, det, &d);
    ck_assert(ok);
    const cJSON *it = cJSON_GetArrayItem(cJSON_GetObjectItem(det, "per_angle"), 2);
    const cJSON *fc = cJSON_GetObjectItem(it, "feature_change");
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(fc, "distance")), H * W);
    ck_assert_double_eq_tol(cJSON_GetObjectItem(fc, "max")->valuedouble, d.a[2].feature[5], 1e-6);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(det, "per_angle"), 1),
                                               "feature_change")));
    char *text = cJSON_PrintUnformatted(det);
    OK(bcd__det_load_session(svc, s2, text, back, &nb));
    ck_assert_uint_eq(nb, 6);
    for (int a = 0; a < 6; a++) {
        ck_assert(back[a].map_buf && back[a].map == back[a].map_buf);
        ck_assert_str_eq(back[a].map_model, cur[a].map_model);
        for (int k = 0; k < C * H * W; k++)
            ck_assert(back[a].map[k] == bcd__rep_float(bcd__rep_half(cur[a].map[k])));
    }
    bcd__det_photos_free(back, nb);
    /* a damaged map blob costs only its angle's map */
    char file[256];
    snprintf(file, sizeof file, "%s/data/blobs/%s", tmpdir, d.a[3].fmap);
    FILE *f = fopen(file, "wb");
    ck_assert_ptr_nonnull(f);
    fputs("not a map", f);
    fclose(f);
    OK(bcd__det_load_session(svc, s2, text, back, &nb));
    ck_assert_uint_eq(nb, 6);
    for (int a = 0; a < 6; a++)
        ck_assert(a == 3 ? back[a].map == NULL : back[a].map != NULL);
    bcd__det_photos_free(back, nb);
    free(text);
    cJSON_Delete(det);

    /* a detection that is not saved leaves no map behind */
    bcd__det_discard_blobs(svc, &d);
    for (int a = 0; a < 6; a++) {
        snprintf(file, sizeof file, "%s/data/blobs/%s", tmpdir, d.a[a].fmap);
        ck_assert_msg(access(file, F_OK) != 0, "%s left behind", file);
    }
    bcd__det_clear(&d);
    bcd__det_photos_free(cur, nc);
    bcd__det_photos_free(prev, np);
}
END_TEST

START_TEST(test_report_half_floats_and_16_bit_png_round_trip)
{
    /* every half but NaN and the infinities (which saturate) reads back to itself */
    for (uint32_t h = 0; h < 65536; h++) {
        float f = bcd__rep_float((uint16_t)h);
        if (isinf(f))
            ck_assert_uint_eq(bcd__rep_half(f), h - 1);
        else if (isnan(f))
            ck_assert(isnan(bcd__rep_float(bcd__rep_half(f))));
        else
            ck_assert_uint_eq(bcd__rep_half(f), h);
    }
    ck_assert_uint_eq(bcd__rep_half(1.0f), 0x3c00);
    ck_assert_uint_eq(bcd__rep_half(-2.5f), 0xc100);
    ck_assert_uint_eq(bcd__rep_half(1.0f + 0x1p-11f), 0x3c00);  /* a tie: to even */
    ck_assert_uint_eq(bcd__rep_half(1.0f + 0x1p-10f + 0x1p-11f), 0x3c02);
    ck_assert_uint_eq(bcd__rep_half(1.0f + 0x1.8p-11f), 0x3c01); /* above the tie */
    ck_assert_uint_eq(bcd__rep_half(0x1p-24f), 0x0001);         /* smallest subnormal */
    ck_assert_uint_eq(bcd__rep_half(0x1p-25f), 0x0000);         /* its half: a tie, to even */
    ck_assert_uint_eq(bcd__rep_half(0x1.8p-24f), 0x0002);
    ck_assert_uint_eq(bcd__rep_half(65519.0f), 0x7bff);
    ck_assert_uint_eq(bcd__rep_half(1e9f), 0x7bff);              /* saturates */
    ck_assert_uint_eq(bcd__rep_half(-INFINITY), 0xfbff);
    ck_assert_float_eq(bcd__rep_float(0x7bff), 65504.0f);
    /* relative error of a rounded normal value: at most 2^-11 */
    for (float f = 1e-4f; f < 6e4f; f *= 1.0137f)
        ck_assert_float_le(fabsf(bcd__rep_float(bcd__rep_half(f)) - f), f * 0x1p-11f);

    uint16_t px[3 * 5], back[3 * 5];
    for (int i = 0; i < 15; i++)
        px[i] = (uint16_t)(i * 4099 + 7);
    struct bcd__rep_image png = { 0 };
    ck_assert_int_eq(bcd__rep_encode_png16(&png, px, 5, 3), BCD_OK);
    ck_assert_int_eq(memcmp(png.data, "\x89PNG\r\n\x1a\n", 8), 0);
    ck_assert_int_eq(bcd__rep_decode_png16(back, 5, 3, png.data, png.len), BCD_OK);
    ck_assert_int_eq(memcmp(px, back, sizeof px), 0);
    /* another size, a cut file, an RGB PNG: refused */
    ck_assert_int_eq(bcd__rep_decode_png16(back, 3, 5, png.data, png.len), BCD_EFORMAT);
    ck_assert_int_eq(bcd__rep_decode_png16(back, 5, 3, png.data, png.len - 20), BCD_EFORMAT);
    bcd__rep_image_clear(&png);
    uint8_t rgb[5 * 3 * 3] = { 0 };
    bcd_image im = { 5, 3, 3, rgb };
    ck_assert_int_eq(bcd__rep_encode_png(&png, &im, BCD__REP_PNG_FAST), BCD_OK);
    ck_assert_int_eq(bcd__rep_decode_png16(back, 5, 3, png.data, png.len), BCD_EFORMAT);
    bcd__rep_image_clear(&png);
}
END_TEST

static Suite *report_suite(void)
{
    Suite *s = suite_create("report");
    TCase *tc = tcase_create("format");
    tcase_add_test(tc, test_report_theil_sen_recovers_a_line_despite_an_outlier);
    tcase_add_test(tc, test_report_theil_sen_degenerate_inputs);
    tcase_add_test(tc, test_report_trend_labels_at_the_seed_thresholds);
    tcase_add_test(tc, test_report_trend_slope_level_direction_and_baseline_excluded);
    tcase_add_test(tc, test_report_flags_changed_checks);
    tcase_add_test(tc, test_report_reads_detect_evidence_where_present);
    tcase_add_test(tc, test_report_summary_names_the_changed_angles_with_their_numbers);
    tcase_add_test(tc, test_report_summary_of_a_stable_check_and_of_a_first_check_differ);
    tcase_add_test(tc, test_report_history_json_has_the_seed_fields_and_evidence_only_where_present);
    tcase_add_test(tc, test_report_png_and_jpeg_encode_into_memory);
    tcase_add_test(tc, test_report_huffman_lengths_are_optimal_within_the_limit_and_complete);
    tcase_add_test(tc, test_report_small_png_round_trips_any_image);
    tcase_add_test(tc, test_report_small_png_round_trips_a_histogram_over_the_length_limit);
    tcase_add_test(tc, test_report_downscale_keeps_aspect_and_averages);
    tcase_add_test(tc, test_report_preprocess_and_reduce_in_one_pass_equals_the_two);
    tcase_add_test(tc, test_report_html_escape_and_base64);
    tcase_add_test(tc, test_report_html_is_self_contained_and_escapes_text);
    suite_add_tcase(s, tc);
    TCase *ops = tcase_create("operations");
    tcase_add_checked_fixture(ops, setup, teardown);
    tcase_add_test(ops, test_report_operations_over_the_local_store);
    tcase_add_test(ops, test_report_operations_show_stored_change_evidence);
    tcase_add_test(ops, test_report_thumbnails_come_from_the_stored_working_copies);
    tcase_add_test(ops, test_report_half_floats_and_16_bit_png_round_trip);
    tcase_add_test(ops, test_report_feature_maps_are_compared_stored_and_read_back);
    suite_add_tcase(s, ops);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(report_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
