/* Tests of the torch backend (lib/embed/torch.c + libbcd-torch.so) through the public
 * API. The models are made by tests/torch/make_models.py and models/export_model.py
 * into BCD_TORCH_MODELS_DIR; meson sets BCD_TORCH_MODULE to the module it built. */
#include <check.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "bcd.h"

#ifndef BCD_TORCH_MODELS_DIR
#error "BCD_TORCH_MODELS_DIR must be defined"
#endif

static const char *model(const char *name)
{
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s", BCD_TORCH_MODELS_DIR, name);
    return path;
}

/* The last info message of the log: the backend says there how the model runs. */
static char last_info[1024];

static void keep_info(void *user, bcd_log_level level, const char *msg)
{
    (void)user;
    if (level == BCD_LOG_INFO)
        snprintf(last_info, sizeof last_info, "%s", msg);
}

static bcd_ctx *new_ctx(void)
{
    bcd_ctx *ctx = NULL;
    ck_assert_int_eq(bcd_ctx_new(&ctx), BCD_OK);
    bcd_ctx_set_logger(ctx, keep_info, NULL);
    last_info[0] = '\0';
    return ctx;
}

static void sha256_hex(const char *path, char hex[65])
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    ck_assert_int_eq(EVP_DigestInit_ex(md, EVP_sha256(), NULL), 1);
    unsigned char buf[65536], out[32];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        EVP_DigestUpdate(md, buf, n);
    unsigned int len = 0;
    EVP_DigestFinal_ex(md, out, &len);
    EVP_MD_CTX_free(md);
    fclose(f);
    for (unsigned i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", out[i]);
}

/* Tensors whose channel c holds values that make channel means easy to predict. */
static float *channel_tensors(size_t n)
{
    float *t = malloc(n * BCD_TENSOR_LEN * sizeof *t);
    ck_assert_ptr_nonnull(t);
    const size_t plane = BCD_INPUT_SIZE * BCD_INPUT_SIZE;
    for (size_t i = 0; i < n; i++)
        for (size_t c = 0; c < 3; c++)
            for (size_t p = 0; p < plane; p++)
                t[(i * 3 + c) * plane + p] = (float)(i + 1) * (float)(c + 1) * (p % 2 ? 1.5f : 0.5f);
    return t;
}

static void assert_fails(const char *file, bcd_status want, const char *code, const char *needle)
{
    bcd_ctx *ctx = new_ctx();
    bcd_embedder *e = (bcd_embedder *)0x1;
    ck_assert_int_eq(bcd_embedder_open(&e, ctx, file), want);
    ck_assert_ptr_eq(e, (bcd_embedder *)0x1); /* untouched */
    const bcd_error *err = bcd_ctx_last_error(ctx);
    ck_assert_ptr_nonnull(err);
    ck_assert_str_eq(bcd_error_code(err), code);
    if (!strstr(bcd_error_message(err), needle))
        ck_abort_msg("message \"%s\" lacks \"%s\"", bcd_error_message(err), needle);
    bcd_ctx_free(ctx);
}

START_TEST(test_torch_open_reports_dim_and_checksummed_name)
{
    bcd_ctx *ctx = new_ctx();
    bcd_embedder *e = NULL;
    ck_assert_int_eq(bcd_embedder_open(&e, ctx, model("tiny.pt")), BCD_OK);
    ck_assert_ptr_null(bcd_ctx_last_error(ctx));
    ck_assert_uint_eq(bcd_embedder_dim(e), 3);
    char hex[65], want[128];
    sha256_hex(model("tiny.pt"), hex);
    snprintf(want, sizeof want, "tiny.pt:3:sha256=%s", hex);
    ck_assert_str_eq(bcd_embedder_name(e), want);
    bcd_embedder_free(e);
    bcd_ctx_free(ctx);
}
END_TEST

START_TEST(test_torch_embed_computes_the_model)
{
    bcd_ctx *ctx = new_ctx();
    bcd_embedder *e = NULL;
    ck_assert_int_eq(bcd_embedder_open(&e, ctx, model("tiny.pt")), BCD_OK);
    const size_t n = 11; /* more than one internal chunk */
    float *t = channel_tensors(n);
    float out[11 * 3];
    ck_assert_int_eq(bcd_embedder_embed(e, out, t, n), BCD_OK);
    for (size_t i = 0; i < n; i++)
        for (size_t c = 0; c < 3; c++)
            ck_assert_float_eq_tol(out[i * 3 + c], (float)(i + 1) * (float)(c + 1), 1e-5f * (float)((i + 1) * (c + 1)));
    /* the input is the caller's and stays as it was */
    float *again = channel_tensors(n);
    ck_assert_int_eq(memcmp(t, again, n * BCD_TENSOR_LEN * sizeof *t), 0);
    free(again);
    free(t);
    bcd_embedder_free(e);
    bcd_ctx_free(ctx);
}
END_TEST

START_TEST(test_torch_batch_equals_one_at_a_time)
{
    bcd_ctx *ctx = new_ctx();
    bcd_embedder *e = NULL;
    ck_assert_int_eq(bcd_embedder_open(&e, ctx, model("mobilenet_v2-imagenet.pt")), BCD_OK);
    ck_assert_uint_eq(bcd_embedder_dim(e), 1280);
    const size_t n = 10, d = 1280;
    float *t = malloc(n * BCD_TENSOR_LEN * sizeof *t);
    ck_assert_ptr_nonnull(t);
    unsigned s = 12345;
    for (size_t i = 0; i < n * BCD_TENSOR_LEN; i++) {
        s = s * 1103515245u + 12345u;
        t[i] = (float)((s >> 8) & 0xffff) / 65535.0f * 4.0f - 2.0f;
    }
    float *batch = malloc(n * d * sizeof *batch), *one = malloc(d * sizeof *one);
    ck_assert_int_eq(bcd_embedder_embed(e, batch, t, n), BCD_OK);
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(bcd_embedder_embed(e, one, t + i * BCD_TENSOR_LEN, 1), BCD_OK);
        float maxref = 0, maxdiff = 0;
        for (size_t k = 0; k < d; k++) {
            maxref = fmaxf(maxref, fabsf(one[k]));
            maxdiff = fmaxf(maxdiff, fabsf(one[k] - batch[i * d + k]));
        }
        ck_assert_float_gt(maxref, 0);
        ck_assert_float_le(maxdiff, 1e-5f * maxref);
    }
    free(one);
    free(batch);
    free(t);
    bcd_embedder_free(e);
    bcd_ctx_free(ctx);
}
END_TEST

START_TEST(test_torch_garbage_file_is_eformat)
{
    assert_fails(model("garbage.pt"), BCD_EFORMAT, "model_invalid", "is not a TorchScript model");
}
END_TEST

START_TEST(test_torch_directory_is_eformat)
{
    assert_fails(BCD_TORCH_MODELS_DIR, BCD_EFORMAT, "model_invalid", "is not a TorchScript model");
}
END_TEST

START_TEST(test_torch_wrong_output_shape_is_eformat)
{
    assert_fails(model("wrong-shape.pt"), BCD_EFORMAT, "model_output_shape",
                 "for input [1, 3, 224, 224] the model answers [1, 3, 224]; libbcd needs [N, D]");
}
END_TEST

START_TEST(test_torch_model_failing_on_the_probe_is_eformat)
{
    assert_fails(model("fails-probe.pt"), BCD_EFORMAT, "model_probe_failed",
                 "it fails on an input [1, 3, 224, 224]: ");
}
END_TEST

START_TEST(test_torch_tuple_output_is_eformat)
{
    /* a second output that is not [N, C, h, w] is no feature map */
    assert_fails(model("tuple.pt"), BCD_EFORMAT, "model_output_shape",
                 "the model answers [1, 3] as its feature map; libbcd needs [N, C, h, w]");
}
END_TEST

START_TEST(test_torch_feature_maps_come_with_the_embeddings)
{
    bcd_ctx *ctx = new_ctx();
    bcd_embedder *e = NULL;
    size_t c = 9, h = 9, w = 9;
    /* with-map.pt: channel means and their 32 x 32 block means */
    ck_assert_int_eq(bcd_embedder_open(&e, ctx, model("with-map.pt")), BCD_OK);
    ck_assert_int_eq(bcd_embedder_map_shape(e, &c, &h, &w), 1);
    ck_assert_uint_eq(c, 3);
    ck_assert_uint_eq(h, 7);
    ck_assert_uint_eq(w, 7);
    const size_t n = 10, cells = 3 * 7 * 7, side = BCD_INPUT_SIZE;
    float *t = malloc(n * BCD_TENSOR_LEN * sizeof *t);
    ck_assert_ptr_nonnull(t);
    for (size_t i = 0; i < n * BCD_TENSOR_LEN; i++) /* each value says its tensor, channel and cell */
        t[i] = (float)(i / BCD_TENSOR_LEN) + 10.0f * (float)(i / (side * side) % 3) +
               0.01f * (float)((i % (side * side)) / side / 32 * 7 + i % side / 32);
    float emb[10 * 3], *maps = malloc(n * cells * sizeof *maps), again[10 * 3];
    ck_assert_int_eq(bcd_embedder_embed_maps(e, emb, maps, t, n), BCD_OK);
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < 3; k++) {
            ck_assert_float_eq_tol(emb[i * 3 + k], (float)i + 10.0f * (float)k + 0.01f * 24.0f, 1e-3f);
            for (size_t y = 0; y < 7; y++)
                for (size_t x = 0; x < 7; x++)
                    ck_assert_float_eq_tol(maps[i * cells + (k * 7 + y) * 7 + x],
                                           (float)i + 10.0f * (float)k + 0.01f * (float)(y * 7 + x), 1e-3f);
        }
    /* the embeddings are those of bcd_embedder_embed() */
    ck_assert_int_eq(bcd_embedder_embed(e, again, t, n), BCD_OK);
    ck_assert_int_eq(memcmp(again, emb, sizeof emb), 0);
    bcd_embedder_free(e);

    /* an exported network: the map is its last stage, the embedding its spatial mean */
    ck_assert_int_eq(bcd_embedder_open(&e, ctx, model("mobilenet_v2-imagenet.pt")), BCD_OK);
    ck_assert_int_eq(bcd_embedder_map_shape(e, &c, &h, &w), 1);
    ck_assert_uint_eq(c, 1280);
    ck_assert_uint_eq(h, 7);
    ck_assert_uint_eq(w, 7);
    float *emb2 = malloc(2 * 1280 * sizeof *emb2), *maps2 = malloc(2 * 1280 * 49 * sizeof *maps2);
    ck_assert_int_eq(bcd_embedder_embed_maps(e, emb2, maps2, t, 2), BCD_OK);
    float maxref = 0, maxdiff = 0;
    for (size_t i = 0; i < 2 * 1280; i++) {
        double sum = 0;
        for (size_t j = 0; j < 49; j++)
            sum += maps2[i * 49 + j];
        maxref = fmaxf(maxref, fabsf(emb2[i]));
        maxdiff = fmaxf(maxdiff, fabsf((float)(sum / 49) - emb2[i]));
    }
    ck_assert_float_gt(maxref, 0);
    ck_assert_float_le(maxdiff, 1e-4f * maxref);
    free(emb2);
    free(maps2);
    bcd_embedder_free(e);

    /* a model without one */
    ck_assert_int_eq(bcd_embedder_open(&e, ctx, model("tiny.pt")), BCD_OK);
    ck_assert_int_eq(bcd_embedder_map_shape(e, &c, &h, &w), 0);
    ck_assert_uint_eq(c + h + w, 0);
    ck_assert_int_eq(bcd_embedder_embed_maps(e, emb, maps, t, 1), BCD_EUNSUPPORTED);
    ck_assert_str_eq(bcd_error_code(bcd_ctx_last_error(ctx)), "no_feature_map");
    ck_assert_int_eq(bcd_embedder_embed_maps(e, emb, NULL, t, 1), BCD_OK);
    bcd_embedder_free(e);
    ck_assert_int_eq(bcd_embedder_map_shape(NULL, &c, NULL, NULL), 0);
    free(maps);
    free(t);
    bcd_ctx_free(ctx);
}
END_TEST

START_TEST(test_torch_integer_output_is_eformat)
{
    assert_fails(model("int-output.pt"), BCD_EFORMAT, "model_output_shape", "not floating point");
}
END_TEST

START_TEST(test_torch_missing_file_is_enotfound)
{
    assert_fails(model("no-such-model.pt"), BCD_ENOTFOUND, "model_not_found", "no-such-model.pt");
}
END_TEST

/* Tests that change the environment put it back (they also run without fork). */
static char *saved_env;

static void set_env(const char *key, const char *value)
{
    const char *old = getenv(key);
    free(saved_env);
    saved_env = old ? strdup(old) : NULL;
    if (value)
        setenv(key, value, 1);
    else
        unsetenv(key);
}

static void restore_env(const char *key)
{
    if (saved_env)
        setenv(key, saved_env, 1);
    else
        unsetenv(key);
    free(saved_env);
    saved_env = NULL;
}

START_TEST(test_torch_missing_module_is_eunsupported)
{
    set_env("BCD_TORCH_MODULE", "/nonexistent/libbcd-torch.so");
    assert_fails(model("tiny.pt"), BCD_EUNSUPPORTED, "torch_unavailable", "/nonexistent/libbcd-torch.so");
    restore_env("BCD_TORCH_MODULE");
}
END_TEST

START_TEST(test_torch_foreign_library_as_module_is_eunsupported)
{
    set_env("BCD_TORCH_MODULE", "libm.so.6");
    assert_fails(model("tiny.pt"), BCD_EUNSUPPORTED, "torch_unavailable", "not one");
    restore_env("BCD_TORCH_MODULE");
}
END_TEST

START_TEST(test_torch_forward_failure_is_reported_on_ctx)
{
    bcd_ctx *ctx = new_ctx();
    bcd_embedder *e = NULL;
    ck_assert_int_eq(bcd_embedder_open(&e, ctx, model("fails-batch.pt")), BCD_OK);
    float *t = channel_tensors(2), out[6];
    ck_assert_int_eq(bcd_embedder_embed(e, out, t, 1), BCD_OK);
    ck_assert_int_eq(bcd_embedder_embed(e, out, t, 2), BCD_ERROR);
    const bcd_error *err = bcd_ctx_last_error(ctx);
    ck_assert_str_eq(bcd_error_code(err), "model_failed");
    ck_assert_ptr_nonnull(strstr(bcd_error_message(err), "this test model refuses batches"));
    /* the next good call clears the error */
    ck_assert_int_eq(bcd_embedder_embed(e, out, t, 1), BCD_OK);
    ck_assert_ptr_null(bcd_ctx_last_error(ctx));
    free(t);
    bcd_embedder_free(e);
    bcd_ctx_free(ctx);
}
END_TEST

START_TEST(test_torch_embed_rejects_empty_batch)
{
    bcd_ctx *ctx = new_ctx();
    bcd_embedder *e = NULL;
    ck_assert_int_eq(bcd_embedder_open(&e, ctx, model("tiny.pt")), BCD_OK);
    float t[1] = {0}, out[3];
    ck_assert_int_eq(bcd_embedder_embed(e, out, t, 0), BCD_EINVAL);
    ck_assert_int_eq(bcd_embedder_embed(e, NULL, t, 1), BCD_EINVAL);
    bcd_embedder_free(e);
    bcd_ctx_free(ctx);
}
END_TEST

START_TEST(test_torch_device_cuda_without_cuda_is_eunsupported)
{
    bcd_ctx *ctx = new_ctx();
    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_DEVICE", "cuda"), BCD_OK);
    bcd_embedder *e = NULL;
    bcd_status st = bcd_embedder_open(&e, ctx, model("tiny.pt"));
    if (st == BCD_OK) { /* a machine with CUDA */
        ck_assert_ptr_nonnull(strstr(last_info, "device cuda"));
        bcd_embedder_free(e);
    } else {
        ck_assert_int_eq(st, BCD_EUNSUPPORTED);
        ck_assert_str_eq(bcd_error_code(bcd_ctx_last_error(ctx)), "cuda_unavailable");
    }
    bcd_ctx_free(ctx);
}
END_TEST

START_TEST(test_torch_device_auto_and_cpu_load)
{
    const char *devs[] = {"auto", "cpu"};
    for (int i = 0; i < 2; i++) {
        bcd_ctx *ctx = new_ctx();
        ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_DEVICE", devs[i]), BCD_OK);
        bcd_embedder *e = NULL;
        ck_assert_int_eq(bcd_embedder_open(&e, ctx, model("tiny.pt")), BCD_OK);
        ck_assert_ptr_nonnull(strstr(last_info, "device c")); /* cpu, or cuda:0 for auto on a GPU */
        if (i == 1)
            ck_assert_ptr_nonnull(strstr(last_info, "device cpu"));
        bcd_embedder_free(e);
        bcd_ctx_free(ctx);
    }
}
END_TEST

START_TEST(test_torch_threads_default_to_available_cores)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    ck_assert_int_eq(sched_getaffinity(0, sizeof set, &set), 0);
    char want[64];
    snprintf(want, sizeof want, ", %d threads,", CPU_COUNT(&set));
    bcd_ctx *ctx = new_ctx();
    bcd_embedder *e = NULL;
    ck_assert_int_eq(bcd_embedder_open(&e, ctx, model("tiny.pt")), BCD_OK);
    ck_assert_msg(strstr(last_info, want), "log \"%s\" lacks \"%s\"", last_info, want);
    bcd_embedder_free(e);

    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_THREADS", "1"), BCD_OK);
    ck_assert_int_eq(bcd_embedder_open(&e, ctx, model("tiny.pt")), BCD_OK);
    ck_assert_ptr_nonnull(strstr(last_info, ", 1 threads,"));
    bcd_embedder_free(e);
    bcd_ctx_free(ctx);
}
END_TEST

START_TEST(test_torch_optimize_setting)
{
    bcd_ctx *ctx = new_ctx();
    bcd_embedder *e = NULL;
    set_env("BCD_TORCH_OPTIMIZE", NULL);
    ck_assert_int_eq(bcd_embedder_open(&e, ctx, model("tiny.pt")), BCD_OK);
    ck_assert_ptr_nonnull(strstr(last_info, "frozen and optimized"));
    bcd_embedder_free(e);
    setenv("BCD_TORCH_OPTIMIZE", "0", 1);
    ck_assert_int_eq(bcd_embedder_open(&e, ctx, model("tiny.pt")), BCD_OK);
    ck_assert_ptr_nonnull(strstr(last_info, "as stored"));
    bcd_embedder_free(e);
    setenv("BCD_TORCH_OPTIMIZE", "sometimes", 1);
    ck_assert_int_eq(bcd_embedder_open(&e, ctx, model("tiny.pt")), BCD_EINVAL);
    ck_assert_str_eq(bcd_error_code(bcd_ctx_last_error(ctx)), "invalid_config");
    restore_env("BCD_TORCH_OPTIMIZE");
    bcd_ctx_free(ctx);
}
END_TEST

START_TEST(test_torch_many_embedders_share_the_module)
{
    bcd_ctx *ctx = new_ctx();
    bcd_embedder *a = NULL, *b = NULL;
    ck_assert_int_eq(bcd_embedder_open(&a, ctx, model("tiny.pt")), BCD_OK);
    ck_assert_int_eq(bcd_embedder_open(&b, ctx, model("fails-batch.pt")), BCD_OK);
    bcd_embedder_free(a);
    float *t = channel_tensors(1), out[3];
    ck_assert_int_eq(bcd_embedder_embed(b, out, t, 1), BCD_OK);
    bcd_embedder_free(b);
    /* after the last one is gone, libtorch stays loaded and a new one works */
    ck_assert_int_eq(bcd_embedder_open(&a, ctx, model("tiny.pt")), BCD_OK);
    ck_assert_int_eq(bcd_embedder_embed(a, out, t, 1), BCD_OK);
    ck_assert_float_eq_tol(out[0], 1.0f, 1e-6f);
    bcd_embedder_free(a);
    free(t);
    bcd_ctx_free(ctx);
}
END_TEST

static Suite *torch_suite(void)
{
    Suite *s = suite_create("torch");
    TCase *tc = tcase_create("torch");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_torch_open_reports_dim_and_checksummed_name);
    tcase_add_test(tc, test_torch_embed_computes_the_model);
    tcase_add_test(tc, test_torch_batch_equals_one_at_a_time);
    tcase_add_test(tc, test_torch_garbage_file_is_eformat);
    tcase_add_test(tc, test_torch_directory_is_eformat);
    tcase_add_test(tc, test_torch_wrong_output_shape_is_eformat);
    tcase_add_test(tc, test_torch_model_failing_on_the_probe_is_eformat);
    tcase_add_test(tc, test_torch_tuple_output_is_eformat);
    tcase_add_test(tc, test_torch_feature_maps_come_with_the_embeddings);
    tcase_add_test(tc, test_torch_integer_output_is_eformat);
    tcase_add_test(tc, test_torch_missing_file_is_enotfound);
    tcase_add_test(tc, test_torch_missing_module_is_eunsupported);
    tcase_add_test(tc, test_torch_foreign_library_as_module_is_eunsupported);
    tcase_add_test(tc, test_torch_forward_failure_is_reported_on_ctx);
    tcase_add_test(tc, test_torch_embed_rejects_empty_batch);
    tcase_add_test(tc, test_torch_device_cuda_without_cuda_is_eunsupported);
    tcase_add_test(tc, test_torch_device_auto_and_cpu_load);
    tcase_add_test(tc, test_torch_threads_default_to_available_cores);
    tcase_add_test(tc, test_torch_optimize_setting);
    tcase_add_test(tc, test_torch_many_embedders_share_the_module);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(torch_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
