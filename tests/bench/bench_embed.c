/* Benchmark driver for tests/bench/bench_embed.py: libbcd end to end on one session.
 *
 *   bench_embed MODEL RUNS IMAGE...
 *
 * Times, in this order: loading the libbcd-torch module (libtorch's start-up cost, when
 * BCD_TORCH_MODULE names it), opening the embedder on MODEL (model load, freeze and
 * optimize, probe), then RUNS times: decode + preprocess every image, embed them in one
 * batch, and embed them one at a time; then decode + preprocess the session again on one
 * thread per core (images shared out as bcd_session_analyze() does), at full size and with
 * reduced-scale decoding at 1/2 and 1/4 (bcd_image_decode_file_ext(), min_short_side of
 * 1512 and 756 px: the scales of a 3024x4032 photo). Prints one "key value" per line (seconds, KiB);
 * per-run values are medians over the runs ("*_min": the fastest run), "first_*" are the
 * first run's.
 * Uses the public API only, like any program linked to libbcd.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#endif
#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bcd.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* "key median" and "key_min min" (min: robust to other processes on the machine) */
static void print_stat(const char *key, double *v, int n)
{
    double m = median(v, n);
    printf("%s %.6f\n%s_min %.6f\n", key, m, key, v[0]);
}

/* VmHWM, the peak resident set of this process image. Not getrusage()'s ru_maxrss:
 * Linux carries that over from the parent's memory across fork + exec. */
static long peak_rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

static long current_rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * 4;
}

static int fail(bcd_ctx *ctx, const char *what)
{
    const bcd_error *e = bcd_ctx_last_error(ctx);
    fprintf(stderr, "bench_embed: %s: %s (%s)\n", what, bcd_error_message(e), bcd_error_code(e));
    return 1;
}

/* Decode + preprocess of a session on several threads, each with its own ctx. */
struct par_job {
    char **images;
    int n;
    float *tensors;
    unsigned int min_short_side;
    pthread_mutex_t mu;
    int next;
    int failed;
};

static void *par_worker(void *arg)
{
    struct par_job *job = arg;
    bcd_ctx *ctx = NULL;
    if (bcd_ctx_new(&ctx) != BCD_OK) {
        pthread_mutex_lock(&job->mu);
        job->failed = 1;
        pthread_mutex_unlock(&job->mu);
        return NULL;
    }
    bcd_image_decode_options opts = BCD_IMAGE_DECODE_OPTIONS_INIT;
    opts.min_short_side = job->min_short_side;
    for (;;) {
        pthread_mutex_lock(&job->mu);
        int i = job->next < job->n && !job->failed ? job->next++ : -1;
        pthread_mutex_unlock(&job->mu);
        if (i < 0)
            break;
        bcd_image *img = NULL;
        bool ok = bcd_image_decode_file_ext(&img, ctx, job->images[i], &opts) == BCD_OK &&
                  bcd_image_preprocess(job->tensors + (size_t)i * BCD_TENSOR_LEN, BCD_TENSOR_LEN, img) == BCD_OK;
        bcd_image_free(img);
        if (!ok) {
            pthread_mutex_lock(&job->mu);
            job->failed = 1;
            pthread_mutex_unlock(&job->mu);
        }
    }
    bcd_ctx_free(ctx);
    return NULL;
}

/* Wall seconds of decode + preprocess of all images on `threads` threads; < 0 on failure. */
static double par_prep(char **images, int n, float *tensors, unsigned int min_short_side, int threads)
{
    struct par_job job = { images, n, tensors, min_short_side, PTHREAD_MUTEX_INITIALIZER, 0, 0 };
    pthread_t tid[64];
    int started = 0;
    double t0 = now();
    for (int t = 0; t < threads && t < 64; t++)
        if (pthread_create(&tid[t], NULL, par_worker, &job) == 0)
            started++;
    for (int t = 0; t < started; t++)
        pthread_join(tid[t], NULL);
    double wall = now() - t0;
    return started == 0 || job.failed ? -1.0 : wall;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: bench_embed MODEL RUNS IMAGE...\n");
        return 2;
    }
    const char *model = argv[1];
    int runs = atoi(argv[2]);
    int n = argc - 3;
    char **images = argv + 3;
    if (runs < 1)
        runs = 1;

    printf("rss_start_kib %ld\n", current_rss_kib());
    const char *module = getenv("BCD_TORCH_MODULE");
    if (module && *module) {
        double t0 = now();
        void *dl = dlopen(module, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
        if (!dl) {
            fprintf(stderr, "bench_embed: %s\n", dlerror());
            return 1;
        }
        printf("module_load_s %.6f\n", now() - t0);
        printf("rss_after_module_kib %ld\n", current_rss_kib());
    }

    bcd_ctx *ctx = NULL;
    if (bcd_ctx_new(&ctx) != BCD_OK || bcd_ctx_load_env(ctx, NULL) != BCD_OK)
        return 1;
    bcd_embedder *e = NULL;
    double t0 = now();
    if (bcd_embedder_open(&e, ctx, model) != BCD_OK)
        return fail(ctx, "open model");
    printf("model_open_s %.6f\n", now() - t0);
    printf("rss_after_open_kib %ld\n", current_rss_kib());
    printf("peak_rss_after_open_kib %ld\n", peak_rss_kib());
    printf("model_name %s\n", bcd_embedder_name(e));
    const size_t dim = bcd_embedder_dim(e);

    float *tensors = malloc((size_t)n * BCD_TENSOR_LEN * sizeof *tensors);
    float *out = malloc((size_t)n * dim * sizeof *out);
    double *dec = calloc((size_t)runs, sizeof *dec), *pre = calloc((size_t)runs, sizeof *pre);
    double *batch = calloc((size_t)runs, sizeof *batch), *single = calloc((size_t)runs, sizeof *single);
    /* parallel decode + preprocess: full size, 1/2, 1/4 */
    static const unsigned int par_min_short[3] = { 0, 1512, 756 };
    static const char *const par_key[3] = { "par_prep_full_s", "par_prep_half_s", "par_prep_quarter_s" };
    double *par[3];
    for (int k = 0; k < 3; k++)
        par[k] = calloc((size_t)runs, sizeof(double));
    if (!tensors || !out || !dec || !pre || !batch || !single || !par[0] || !par[1] || !par[2])
        return 1;
    cpu_set_t cpus;
    int threads = sched_getaffinity(0, sizeof cpus, &cpus) == 0 ? CPU_COUNT(&cpus) : 1;
    if (threads > n)
        threads = n;
    if (threads < 1)
        threads = 1;

    for (int r = 0; r < runs; r++) {
        for (int i = 0; i < n; i++) {
            bcd_image *img = NULL;
            double a = now();
            if (bcd_image_decode_file(&img, ctx, images[i]) != BCD_OK)
                return fail(ctx, images[i]);
            double b = now();
            if (bcd_image_preprocess(tensors + (size_t)i * BCD_TENSOR_LEN, BCD_TENSOR_LEN, img) != BCD_OK) {
                fprintf(stderr, "bench_embed: preprocess %s failed\n", images[i]);
                return 1;
            }
            double c = now();
            if (r == 0 && i == 0)
                printf("image_size %ux%u\n", img->width, img->height);
            bcd_image_free(img);
            dec[r] += b - a;
            pre[r] += c - b;
        }
        if (r == 0)
            printf("peak_rss_after_first_preprocess_kib %ld\n", peak_rss_kib());
        double a = now();
        if (bcd_embedder_embed(e, out, tensors, (size_t)n) != BCD_OK)
            return fail(ctx, "embed batch");
        batch[r] = now() - a;
        a = now();
        for (int i = 0; i < n; i++)
            if (bcd_embedder_embed(e, out + (size_t)i * dim, tensors + (size_t)i * BCD_TENSOR_LEN, 1) != BCD_OK)
                return fail(ctx, "embed one");
        single[r] = now() - a;
        if (r == 0) {
            printf("first_decode_s %.6f\nfirst_preprocess_s %.6f\nfirst_embed_batch_s %.6f\n", dec[0], pre[0],
                   batch[0]);
            printf("rss_after_first_kib %ld\n", current_rss_kib());
            printf("peak_rss_after_first_kib %ld\n", peak_rss_kib());
        }
    }
    /* after the one-thread runs, so that peak_rss_serial_kib is theirs alone */
    printf("peak_rss_serial_kib %ld\n", peak_rss_kib());
    for (int r = 0; r < runs; r++)
        for (int k = 0; k < 3; k++)
            if ((par[k][r] = par_prep(images, n, tensors, par_min_short[k], threads)) < 0) {
                fprintf(stderr, "bench_embed: parallel decode + preprocess failed\n");
                return 1;
            }
    printf("images %d\nruns %d\ndim %zu\nprep_threads %d\n", n, runs, dim, threads);
    for (int k = 0; k < 3; k++)
        print_stat(par_key[k], par[k], runs);
    print_stat("decode_s", dec, runs);
    print_stat("preprocess_s", pre, runs);
    print_stat("embed_batch_s", batch, runs);
    print_stat("embed_single_s", single, runs);
    printf("embedding0_head %.6f %.6f %.6f\n", out[0], out[1], out[2]);
    printf("peak_rss_kib %ld\n", peak_rss_kib());
    for (int k = 0; k < 3; k++)
        free(par[k]);
    free(single);
    free(batch);
    free(pre);
    free(dec);
    free(out);
    free(tensors);
    bcd_embedder_free(e);
    bcd_ctx_free(ctx);
    return 0;
}
