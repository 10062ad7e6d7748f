/* Benchmark driver for tests/bench/bench_decode.py: full-size against reduced-scale JPEG
 * decoding (bcd_image_decode_file_ext()), then preprocessing and embedding.
 *
 *   bench_decode MODEL RUNS MINS IMAGE...
 *
 * MINS is a comma-separated list of min_short_side values (0: full size). For each value
 * and each image, RUNS times: decode, then preprocess; then the embeddings of the last
 * run's tensors (one batch). Prints one "key value" line per number: per setting k
 * (in the order of MINS), "k_size WxH" of the first image, "k_decode_s" and
 * "k_preprocess_s" (medians over the runs of the time for all images, "_min" the fastest
 * run), "k_cpu_s" the same for the CPU time of decode + preprocess, and "k_cos_I" the
 * cosine similarity of image I's embedding with setting 0's.
 * With BENCH_DUMP_DIR set, the first image of each setting is written there as k.png.
 * Uses the public API only, like any program linked to libbcd.
 */
#include <dlfcn.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bcd.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU time of this thread: less disturbed than wall time when the machine is shared. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void print_stat(int k, const char *key, double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    double m = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    printf("%d_%s %.6f\n%d_%s_min %.6f\n", k, key, m, k, key, v[0]);
}

static int fail(bcd_ctx *ctx, const char *what)
{
    const bcd_error *e = bcd_ctx_last_error(ctx);
    fprintf(stderr, "bench_decode: %s: %s (%s)\n", what, bcd_error_message(e), bcd_error_code(e));
    return 1;
}

static double cosine(const float *a, const float *b, size_t n)
{
    double ab = 0, aa = 0, bb = 0;
    for (size_t i = 0; i < n; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    return ab / sqrt(aa * bb);
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: bench_decode MODEL RUNS MINS IMAGE...\n");
        return 2;
    }
    const char *model = argv[1];
    int runs = atoi(argv[2]);
    if (runs < 1)
        runs = 1;
    unsigned int mins[16];
    int nmins = 0;
    for (char *p = argv[3]; *p && nmins < 16;) {
        mins[nmins++] = (unsigned int)strtoul(p, &p, 10);
        if (*p == ',')
            p++;
    }
    int n = argc - 4;
    char **images = argv + 4;
    const char *dump = getenv("BENCH_DUMP_DIR");
    const bool progress = isatty(STDERR_FILENO); /* shown on a terminal only */

    const char *module = getenv("BCD_TORCH_MODULE");
    if (module && *module && !dlopen(module, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE)) {
        fprintf(stderr, "bench_decode: %s\n", dlerror());
        return 1;
    }
    bcd_ctx *ctx = NULL;
    if (bcd_ctx_new(&ctx) != BCD_OK || bcd_ctx_load_env(ctx, NULL) != BCD_OK)
        return 1;
    bcd_embedder *e = NULL;
    if (bcd_embedder_open(&e, ctx, model) != BCD_OK)
        return fail(ctx, "open model");
    printf("model_name %s\n", bcd_embedder_name(e));
    const size_t dim = bcd_embedder_dim(e);

    float *tensors = malloc((size_t)n * BCD_TENSOR_LEN * sizeof *tensors);
    float *ref = malloc((size_t)n * dim * sizeof *ref);
    float *emb = malloc((size_t)n * dim * sizeof *emb);
    double *dec = calloc((size_t)runs, sizeof *dec), *pre = calloc((size_t)runs, sizeof *pre);
    double *cpu = calloc((size_t)runs, sizeof *cpu);
    if (!tensors || !ref || !emb || !dec || !pre || !cpu)
        return 1;

    printf("images %d\nruns %d\nsettings %d\n", n, runs, nmins);
    for (int k = 0; k < nmins; k++) {
        bcd_image_decode_options opts = BCD_IMAGE_DECODE_OPTIONS_INIT;
        opts.min_short_side = mins[k];
        printf("%d_min_short_side %u\n", k, mins[k]);
        memset(dec, 0, (size_t)runs * sizeof *dec);
        memset(pre, 0, (size_t)runs * sizeof *pre);
        memset(cpu, 0, (size_t)runs * sizeof *cpu);
        for (int r = 0; r < runs; r++) {
            for (int i = 0; i < n; i++) {
                bcd_image *img = NULL;
                double ca = cpu_now(), a = now();
                if (bcd_image_decode_file_ext(&img, ctx, images[i], &opts) != BCD_OK)
                    return fail(ctx, images[i]);
                double b = now();
                if (bcd_image_preprocess(tensors + (size_t)i * BCD_TENSOR_LEN, BCD_TENSOR_LEN, img) != BCD_OK) {
                    fprintf(stderr, "bench_decode: preprocess %s failed\n", images[i]);
                    return 1;
                }
                double c = now(), cc = cpu_now();
                if (r == 0 && i == 0) {
                    printf("%d_size %ux%u\n", k, img->width, img->height);
                    if (dump) {
                        char path[4096];
                        snprintf(path, sizeof path, "%s/%d.png", dump, k);
                        if (bcd_image_write_png(ctx, img, path) != BCD_OK)
                            return fail(ctx, path);
                    }
                }
                bcd_image_free(img);
                dec[r] += b - a;
                pre[r] += c - b;
                cpu[r] += cc - ca;
            }
            if (progress)
                fprintf(stderr, "\rsetting %d/%d run %d/%d ", k + 1, nmins, r + 1, runs);
        }
        print_stat(k, "decode_s", dec, runs);
        print_stat(k, "preprocess_s", pre, runs);
        print_stat(k, "cpu_s", cpu, runs);
        float *o = k == 0 ? ref : emb;
        if (bcd_embedder_embed(e, o, tensors, (size_t)n) != BCD_OK)
            return fail(ctx, "embed");
        for (int i = 0; i < n; i++)
            printf("%d_cos_%d %.7f\n", k, i, cosine(o + (size_t)i * dim, ref + (size_t)i * dim, dim));
    }
    if (progress)
        fprintf(stderr, "\r%*s\r", 30, "");
    free(cpu);
    free(pre);
    free(dec);
    free(emb);
    free(ref);
    free(tensors);
    bcd_embedder_free(e);
    bcd_ctx_free(ctx);
    return 0;
}
