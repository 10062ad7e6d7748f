/* Tests of the vector primitives (lib/analysis/vector.c). */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bcd/analysis.h"
#include "bcd/ctx.h"

static bcd_ctx *ctx;

static void setup(void)
{
    ck_assert_int_eq(bcd_ctx_new(&ctx), BCD_OK);
}

static void teardown(void)
{
    bcd_ctx_free(ctx);
    ctx = NULL;
}

static void assert_error(bcd_status st, bcd_status want, const char *code)
{
    ck_assert_int_eq(st, want);
    const bcd_error *e = bcd_ctx_last_error(ctx);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(bcd_error_status(e), want);
    ck_assert_str_eq(bcd_error_code(e), code);
    ck_assert_ptr_nonnull(bcd_error_message(e));
}

/* ---- cosine distance ------------------------------------------------------------ */

START_TEST(test_vector_cosine_distance_of_identical_vectors_is_zero)
{
    const float v[3] = { 0.5f, 1.0f, 2.0f };
    double d = -1;
    ck_assert_int_eq(bcd_vector_cosine_distance(&d, ctx, v, 3, v, 3), BCD_OK);
    ck_assert_double_eq_tol(d, 0.0, 1e-12);
    ck_assert(d >= 0.0);
    ck_assert_ptr_null(bcd_ctx_last_error(ctx));
}
END_TEST

START_TEST(test_vector_cosine_distance_known_values)
{
    const float x[2] = { 1.0f, 0.0f }, y[2] = { 0.0f, 3.0f }, nx[2] = { -2.0f, 0.0f };
    const float diag[2] = { 1.0f, 1.0f };
    double d = -1;
    ck_assert_int_eq(bcd_vector_cosine_distance(&d, ctx, x, 2, y, 2), BCD_OK);
    ck_assert_double_eq_tol(d, 1.0, 1e-12);
    ck_assert_int_eq(bcd_vector_cosine_distance(&d, ctx, x, 2, nx, 2), BCD_OK);
    ck_assert_double_eq_tol(d, 2.0, 1e-12);
    ck_assert(d <= 2.0);
    ck_assert_int_eq(bcd_vector_cosine_distance(&d, ctx, x, 2, diag, 2), BCD_OK);
    ck_assert_double_eq_tol(d, 1.0 - sqrt(0.5), 1e-7);
    /* scale invariance */
    const float big[2] = { 3e30f, 3e30f }, tiny[2] = { 1e-30f, 0.0f };
    ck_assert_int_eq(bcd_vector_cosine_distance(&d, ctx, tiny, 2, big, 2), BCD_OK);
    ck_assert_double_eq_tol(d, 1.0 - sqrt(0.5), 1e-7);
}
END_TEST

START_TEST(test_vector_cosine_distance_accepts_null_ctx)
{
    const float a[3] = { 1, 2, 3 }, b[3] = { 3, 2, 1 }, z[3] = { 0, 0, 0 };
    double d = -1;
    ck_assert_int_eq(bcd_vector_cosine_distance(&d, NULL, a, 3, b, 3), BCD_OK);
    ck_assert_double_eq_tol(d, 1.0 - 10.0 / 14.0, 1e-7);
    ck_assert_int_eq(bcd_vector_cosine_distance(&d, NULL, a, 3, z, 3), BCD_EDOMAIN);
    ck_assert_int_eq(bcd_vector_cosine_distance(&d, NULL, a, 3, b, 2), BCD_EINVAL);
}
END_TEST

START_TEST(test_vector_cosine_distance_rejects_bad_arguments)
{
    const float a[3] = { 1, 2, 3 }, b[3] = { 3, 2, 1 };
    double d = 42.0;
    assert_error(bcd_vector_cosine_distance(&d, ctx, a, 3, b, 2), BCD_EINVAL, "dimension_mismatch");
    assert_error(bcd_vector_cosine_distance(&d, ctx, a, 0, b, 0), BCD_EINVAL, "dimension_mismatch");
    assert_error(bcd_vector_cosine_distance(&d, ctx, NULL, 3, b, 3), BCD_EINVAL, "invalid_argument");
    assert_error(bcd_vector_cosine_distance(&d, ctx, a, 3, NULL, 3), BCD_EINVAL, "invalid_argument");
    assert_error(bcd_vector_cosine_distance(NULL, ctx, a, 3, b, 3), BCD_EINVAL, "invalid_argument");
    ck_assert_double_eq(d, 42.0); /* untouched on failure */
}
END_TEST

START_TEST(test_vector_cosine_distance_rejects_zero_vector)
{
    const float a[3] = { 1, 2, 3 }, z[3] = { 0, 0, -0.0f };
    double d = 42.0;
    assert_error(bcd_vector_cosine_distance(&d, ctx, a, 3, z, 3), BCD_EDOMAIN, "zero_vector");
    assert_error(bcd_vector_cosine_distance(&d, ctx, z, 3, a, 3), BCD_EDOMAIN, "zero_vector");
    ck_assert_double_eq(d, 42.0);
}
END_TEST

START_TEST(test_vector_cosine_distance_rejects_non_finite)
{
    float a[3] = { 1, 2, 3 }, b[3] = { 3, 2, 1 };
    double d = 42.0;
    b[1] = NAN;
    assert_error(bcd_vector_cosine_distance(&d, ctx, a, 3, b, 3), BCD_EDOMAIN, "not_finite");
    b[1] = INFINITY;
    assert_error(bcd_vector_cosine_distance(&d, ctx, a, 3, b, 3), BCD_EDOMAIN, "not_finite");
    a[0] = -INFINITY;
    b[1] = 2;
    assert_error(bcd_vector_cosine_distance(&d, ctx, a, 3, b, 3), BCD_EDOMAIN, "not_finite");
    ck_assert_double_eq(d, 42.0);
    /* the error is cleared by the next successful call */
    a[0] = 1;
    ck_assert_int_eq(bcd_vector_cosine_distance(&d, ctx, a, 3, b, 3), BCD_OK);
    ck_assert_ptr_null(bcd_ctx_last_error(ctx));
}
END_TEST

START_TEST(test_vector_cosine_distance_accumulates_in_double)
{
    /* |b|^2 = 1 + 1e-8 rounds to 1 in float, which would give a distance of 0 */
    const float a[2] = { 1.0f, 0.0f }, b[2] = { 1.0f, 1e-4f };
    double bb = 1.0 + (double)b[1] * b[1];
    double want = 1.0 - 1.0 / sqrt(bb);
    double d = -1;
    ck_assert_int_eq(bcd_vector_cosine_distance(&d, ctx, a, 2, b, 2), BCD_OK);
    ck_assert(d > 0.0);
    ck_assert_double_eq_tol(d, want, 1e-12);
    ck_assert_double_eq_tol(d, 5e-9, 1e-10);
}
END_TEST

/* ---- mean ----------------------------------------------------------------------- */

START_TEST(test_vector_mean_of_vectors)
{
    const float v[3][4] = { { 1, 2, 3, 4 }, { 3, 2, 1, 0 }, { 2, 2, 2, -1 } };
    float out[4] = { 0 };
    ck_assert_int_eq(bcd_vector_mean(out, ctx, &v[0][0], 3, 4), BCD_OK);
    ck_assert_float_eq_tol(out[0], 2.0f, 1e-6f);
    ck_assert_float_eq_tol(out[1], 2.0f, 1e-6f);
    ck_assert_float_eq_tol(out[2], 2.0f, 1e-6f);
    ck_assert_float_eq_tol(out[3], 1.0f, 1e-6f);
    ck_assert_int_eq(bcd_vector_mean(out, NULL, &v[1][0], 1, 4), BCD_OK);
    ck_assert(memcmp(out, v[1], sizeof out) == 0);
    /* large values do not overflow */
    const float big[2] = { FLT_MAX, FLT_MAX };
    ck_assert_int_eq(bcd_vector_mean(out, ctx, big, 2, 1), BCD_OK);
    ck_assert_float_eq(out[0], FLT_MAX);
}
END_TEST

START_TEST(test_vector_mean_rejects_bad_input)
{
    float v[2][2] = { { 1, 2 }, { 3, 4 } };
    float out[2] = { 7, 7 };
    assert_error(bcd_vector_mean(out, ctx, &v[0][0], 0, 2), BCD_EINVAL, "invalid_argument");
    assert_error(bcd_vector_mean(out, ctx, &v[0][0], 2, 0), BCD_EINVAL, "invalid_argument");
    assert_error(bcd_vector_mean(NULL, ctx, &v[0][0], 2, 2), BCD_EINVAL, "invalid_argument");
    assert_error(bcd_vector_mean(out, ctx, NULL, 2, 2), BCD_EINVAL, "invalid_argument");
    v[1][1] = NAN;
    assert_error(bcd_vector_mean(out, ctx, &v[0][0], 2, 2), BCD_EDOMAIN, "not_finite");
    v[1][1] = -INFINITY;
    assert_error(bcd_vector_mean(out, ctx, &v[0][0], 2, 2), BCD_EDOMAIN, "not_finite");
    ck_assert_float_eq(out[0], 7);
    ck_assert_float_eq(out[1], 7);
}
END_TEST

/* ---- trend labels --------------------------------------------------------------- */

START_TEST(test_trend_label_thresholds)
{
    ck_assert_str_eq(bcd_trend_label(0.0), "stable");
    ck_assert_str_eq(bcd_trend_label(nextafter(0.1, 0.0)), "stable");
    ck_assert_str_eq(bcd_trend_label(0.1), "mild_variation");
    ck_assert_str_eq(bcd_trend_label(BCD_TREND_MILD), "mild_variation");
    ck_assert_str_eq(bcd_trend_label(nextafter(0.25, 0.0)), "mild_variation");
    ck_assert_str_eq(bcd_trend_label(0.25), "significant_shift");
    ck_assert_str_eq(bcd_trend_label(BCD_TREND_SIGNIFICANT), "significant_shift");
    ck_assert_str_eq(bcd_trend_label(2.0), "significant_shift");
    ck_assert_str_eq(bcd_trend_label(INFINITY), "significant_shift");
    ck_assert_str_eq(bcd_trend_label(-0.0), "stable");
    ck_assert_ptr_null(bcd_trend_label(NAN));
    ck_assert_ptr_null(bcd_trend_label(-1e-12));
    ck_assert_ptr_null(bcd_trend_label(-INFINITY));
}
END_TEST

/* ---- JSON ----------------------------------------------------------------------- */

static void assert_json_vector(const char *json, size_t want_dim, const float *want)
{
    float *v = NULL;
    size_t dim = 0;
    ck_assert_int_eq(bcd_vector_from_json(&v, &dim, ctx, json), BCD_OK);
    ck_assert_ptr_nonnull(v);
    ck_assert_uint_eq(dim, want_dim);
    for (size_t i = 0; i < dim; i++)
        ck_assert_float_eq_tol(v[i], want[i], 1e-6f);
    bcd_free(v);
}

START_TEST(test_vector_from_json_accepted_forms)
{
    const float want[3] = { 0.5f, -1.0f, 2.5e-3f };
    assert_json_vector("[0.5, -1, 2.5e-3]", 3, want);
    assert_json_vector("\n[0.5, -1, 2.5e-3]\n\t ", 3, want);
    assert_json_vector(" {\"vector\": [0.5, -1, 0.0025]} ", 3, want);
    assert_json_vector("{\"id\": 7, \"embedding\": [0.5, -1, 0.0025]}", 3, want);
    /* the seeds stored embeddings as JSON text */
    assert_json_vector("{\"embedding\": \"[0.5, -1, 0.0025]\"}", 3, want);
    assert_json_vector("{\"model\":\"builtin-v1\",\"dim\":3,\"embeddings\":["
                       "{\"file\":\"a.jpg\",\"vector\":[0.5,-1,0.0025]},"
                       "{\"file\":\"b.jpg\",\"vector\":[9,9,9]}]}",
                       3, want);
    const float one[1] = { 42.0f };
    assert_json_vector("[42]", 1, one);
}
END_TEST

START_TEST(test_vector_from_json_rejects_bad_documents)
{
    static const struct {
        const char *json;
        const char *code;
    } bad[] = {
        { "", "invalid_json" },
        { "[1, 2", "invalid_json" },
        { "not json", "invalid_json" },
        { "[1, 2] [3]", "invalid_json" },
        { "{\"embedding\": \"[1, 2] x\"}", "invalid_vector" },
        { "[]", "empty_vector" },
        { "{\"vector\": []}", "empty_vector" },
        { "[1, \"2\", 3]", "invalid_vector" },
        { "[1, null]", "invalid_vector" },
        { "[1, [2]]", "invalid_vector" },
        { "[true]", "invalid_vector" },
        { "[1e39]", "not_finite" },
        { "[1e999]", "not_finite" },
        { "{\"vectors\": [1, 2]}", "invalid_vector" },
        { "{\"vector\": 3}", "invalid_vector" },
        { "{\"vector\": \"abc\"}", "invalid_vector" },
        { "42", "invalid_vector" },
        { "\"[1,2]\"", "invalid_vector" },
        { "{\"model\":\"m\",\"dim\":2,\"embeddings\":[]}", "invalid_vector" },
        { "{\"model\":\"m\",\"dim\":2,\"embeddings\":[{\"file\":\"a\",\"vector\":[1,2,3]}]}",
          "dimension_mismatch" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        static float sentinel[1];
        float *v = sentinel; /* must stay untouched */
        size_t dim = 99;
        bcd_status st = bcd_vector_from_json(&v, &dim, ctx, bad[i].json);
        ck_assert_msg(st == BCD_EFORMAT, "'%s' gave %d", bad[i].json, st);
        ck_assert_str_eq(bcd_error_code(bcd_ctx_last_error(ctx)), bad[i].code);
        ck_assert_ptr_eq(v, sentinel);
        ck_assert_uint_eq(dim, 99);
    }
    float *v = NULL;
    size_t dim = 0;
    assert_error(bcd_vector_from_json(&v, &dim, ctx, NULL), BCD_EINVAL, "invalid_argument");
    assert_error(bcd_vector_from_json(NULL, &dim, ctx, "[1]"), BCD_EINVAL, "invalid_argument");
    assert_error(bcd_vector_from_json(&v, NULL, ctx, "[1]"), BCD_EINVAL, "invalid_argument");
    ck_assert_int_eq(bcd_vector_from_json(&v, &dim, NULL, "[1]"), BCD_OK);
    bcd_free(v);
}
END_TEST

static Suite *vector_suite(void)
{
    Suite *s = suite_create("vector");
    TCase *tc = tcase_create("cosine_distance");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_vector_cosine_distance_of_identical_vectors_is_zero);
    tcase_add_test(tc, test_vector_cosine_distance_known_values);
    tcase_add_test(tc, test_vector_cosine_distance_accepts_null_ctx);
    tcase_add_test(tc, test_vector_cosine_distance_rejects_bad_arguments);
    tcase_add_test(tc, test_vector_cosine_distance_rejects_zero_vector);
    tcase_add_test(tc, test_vector_cosine_distance_rejects_non_finite);
    tcase_add_test(tc, test_vector_cosine_distance_accumulates_in_double);
    suite_add_tcase(s, tc);

    tc = tcase_create("mean");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_vector_mean_of_vectors);
    tcase_add_test(tc, test_vector_mean_rejects_bad_input);
    suite_add_tcase(s, tc);

    tc = tcase_create("trend_label");
    tcase_add_test(tc, test_trend_label_thresholds);
    suite_add_tcase(s, tc);

    tc = tcase_create("from_json");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_vector_from_json_accepted_forms);
    tcase_add_test(tc, test_vector_from_json_rejects_bad_documents);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(vector_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
