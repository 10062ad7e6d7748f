/* Unit tests of lib/service/health.c: bcd_health() reports each check with its status and
 * never fails the call because a check is down. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "bcd.h"

static char tmpdir[] = "/tmp/bcd-health-XXXXXX";

static void setup(void)
{
    strcpy(tmpdir, "/tmp/bcd-health-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

static cJSON *health_of(bcd_ctx *ctx)
{
    char *out = NULL;
    ck_assert_int_eq(bcd_health(&out, ctx), BCD_OK);
    ck_assert_ptr_null(bcd_ctx_last_error(ctx)); /* checks that are down are not failures of the call */
    cJSON *doc = cJSON_Parse(out);
    ck_assert_ptr_nonnull(doc);
    bcd_free(out);
    return doc;
}

static const char *check_status(const cJSON *doc, const char *name)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "checks"), name);
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(c, "status");
    ck_assert(cJSON_IsString(s));
    return s->valuestring;
}

static const char *check_error_code(const cJSON *doc, const char *name)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "checks"), name);
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(c, "error"), "code");
    ck_assert(cJSON_IsString(s));
    return s->valuestring;
}

START_TEST(test_health_all_ok_on_a_fresh_local_store)
{
    bcd_ctx *ctx = NULL;
    ck_assert_int_eq(bcd_ctx_new(&ctx), BCD_OK);
    char dir[256];
    snprintf(dir, sizeof dir, "%s/data", tmpdir);
    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_DATA_DIR", dir), BCD_OK);
    cJSON *doc = health_of(ctx);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc, "ok")));
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(doc, "status")->valuestring, "ok");
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(doc, "version")->valuestring, bcd_version());
    ck_assert_str_eq(check_status(doc, "store"), "ok");
    ck_assert_str_eq(check_status(doc, "model"), "ok");
    ck_assert_str_eq(check_status(doc, "supabase"), "not_configured");
    cJSON_Delete(doc);
    /* the store is usable afterwards, the write probe left nothing */
    char blobs[300];
    snprintf(blobs, sizeof blobs, "%s/blobs", dir);
    struct stat st;
    ck_assert_int_eq(stat(blobs, &st), 0);
    char pending[320];
    snprintf(pending, sizeof pending, "%s/.pending", blobs);
    ck_assert_int_eq(rmdir(pending), 0); /* the store's folder of blobs being added: empty */
    ck_assert_int_eq(rmdir(blobs), 0);   /* nothing else */
    bcd_ctx_free(ctx);
}
END_TEST

START_TEST(test_health_reports_each_failure_on_its_own)
{
    bcd_ctx *ctx = NULL;
    ck_assert_int_eq(bcd_ctx_new(&ctx), BCD_OK);
    char file[256], dir[300];
    snprintf(file, sizeof file, "%s/plain-file", tmpdir);
    FILE *f = fopen(file, "w");
    fputs("x", f);
    fclose(f);
    snprintf(dir, sizeof dir, "%s/data", file);
    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_DATA_DIR", dir), BCD_OK);
    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_MODEL", "/nonexistent/model.pt"), BCD_OK);
    ck_assert_int_eq(bcd_ctx_set(ctx, "SUPABASE_URL", "http://127.0.0.1:1"), BCD_OK);
    cJSON *doc = health_of(ctx);
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(doc, "ok")));
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(doc, "status")->valuestring, "down");
    ck_assert_str_eq(check_status(doc, "store"), "down");
    ck_assert_str_eq(check_error_code(doc, "store"), "data_dir_unavailable");
    ck_assert_str_eq(check_status(doc, "model"), "down");
    ck_assert_str_eq(check_error_code(doc, "model"), "model_not_found");
    ck_assert_str_eq(check_status(doc, "supabase"), "down");
    ck_assert_str_eq(check_error_code(doc, "supabase"), "network_error");
    cJSON_Delete(doc);
    bcd_ctx_free(ctx);
}
END_TEST

START_TEST(test_health_rejects_null_arguments)
{
    char *out = NULL;
    ck_assert_int_eq(bcd_health(&out, NULL), BCD_EINVAL);
    bcd_ctx *ctx = NULL;
    ck_assert_int_eq(bcd_ctx_new(&ctx), BCD_OK);
    ck_assert_int_eq(bcd_health(NULL, ctx), BCD_EINVAL);
    ck_assert_str_eq(bcd_error_code(bcd_ctx_last_error(ctx)), "invalid_argument");
    ck_assert_ptr_null(out);
    bcd_ctx_free(ctx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("health");
    TCase *tc = tcase_create("health");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_health_all_ok_on_a_fresh_local_store);
    tcase_add_test(tc, test_health_reports_each_failure_on_its_own);
    tcase_add_test(tc, test_health_rejects_null_arguments);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
