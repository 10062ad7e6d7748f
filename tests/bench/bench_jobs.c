/* Benchmark driver of tests/bench/bench_jobs.py (a program that prints numbers, not a
 * test): the analysis job queue of the local store.
 *
 *   bench_jobs IMAGE_DIR [JOBS [OVERHEAD_JOBS]]
 *
 * IMAGE_DIR holds front.jpg ... raised.jpg (one check). JOBS sessions of six angles are
 * made once; then, for 1, 2 and 4 workers (bcd_worker_run(), concurrency N, drain), JOBS
 * jobs are queued and run: jobs per minute, wall clock from the first claim to the drained
 * queue. For reference, the same analyses run synchronously (bcd_session_analyze()).
 * Then the queue's own cost per job without any analysis (OVERHEAD_JOBS jobs on sessions
 * whose images are registered, never read): enqueue, claim, heartbeat, complete, each
 * one transaction of the store (SQLite, WAL, synchronous=FULL: one fsync per commit).
 * Prints one "key value" per line. Progress on stderr when it is a terminal.
 * Links libbcd's static archive for the store's internal job operations.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "bcd.h"
#include "service/service_internal.h"
#include "store/store.h"

static const char *const ANGLES[6] = {"front", "left", "right", "up", "down", "raised"};
static bool tty;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(bcd_service *svc, const char *what)
{
    const bcd_error *e = svc ? bcd_service_last_error(svc) : NULL;
    fprintf(stderr, "bench_jobs: %s: %s\n", what, e ? bcd_error_message(e) : "failed");
    exit(1);
}

static void progress(void *user, const bcd_progress_event *ev)
{
    const int *total = user;
    if (strcmp(ev->stage, "done") == 0 || strcmp(ev->stage, "idle") == 0)
        fprintf(stderr, "\r\033[K  %zu of %d jobs done, %.1f s", ev->jobs_done, *total, ev->elapsed_s);
}

static void note(const char *what, int i, int n)
{
    if (tty)
        fprintf(stderr, "\r\033[K%s %d of %d", what, i, n);
}

static void clear(void)
{
    if (tty)
        fputs("\r\033[K", stderr);
}

/* session id out of a result document */
static void session_id_of(char *json, char id[37])
{
    cJSON *j = cJSON_Parse(json);
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "session_id");
    snprintf(id, 37, "%s", cJSON_IsString(s) ? s->valuestring : "");
    cJSON_Delete(j);
    bcd_free(json);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_jobs IMAGE_DIR [JOBS [OVERHEAD_JOBS]]\n");
        return 2;
    }
    const char *imgdir = argv[1];
    const int njobs = argc > 2 ? atoi(argv[2]) : 24;
    const int nover = argc > 3 ? atoi(argv[3]) : 200;
    tty = isatty(STDERR_FILENO);
    char dir[] = "/tmp/bcd-bench-jobs-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char data[128];
    snprintf(data, sizeof data, "%s/data", dir);
    bcd_ctx *ctx = NULL;
    bcd_service *svc = NULL;
    if (bcd_ctx_new(&ctx) != BCD_OK || bcd_ctx_set(ctx, "BCD_DATA_DIR", data) != BCD_OK ||
        bcd_ctx_set(ctx, "BCD_MODEL", "builtin") != BCD_OK || bcd_service_open(&svc, ctx) != BCD_OK)
        die(NULL, "open");

    char (*sids)[37] = calloc((size_t)njobs, 37);
    char *out = NULL;
    for (int i = 0; i < njobs; i++) {
        note("making sessions:", i + 1, njobs);
        if (bcd_session_create(&out, svc, "bench") != BCD_OK)
            die(svc, "session create");
        session_id_of(out, sids[i]);
        for (int a = 0; a < 6; a++) {
            char path[600];
            snprintf(path, sizeof path, "%s/%s.jpg", imgdir, ANGLES[a]);
            if (bcd_image_add(&out, svc, "bench", sids[i], ANGLES[a], path, -1) != BCD_OK)
                die(svc, path);
            bcd_free(out);
        }
        if (bcd_session_complete(&out, svc, "bench", sids[i]) != BCD_OK)
            die(svc, "complete");
        bcd_free(out);
    }
    clear();
    printf("cores %ld\n", sysconf(_SC_NPROCESSORS_ONLN));
    printf("jobs %d\n", njobs);
    printf("images_per_job 6\n");

    /* reference: the same analyses, synchronously, one after the other */
    double t0 = now();
    for (int i = 0; i < njobs; i++) {
        note("synchronous analyses:", i + 1, njobs);
        if (bcd_session_analyze(&out, svc, "bench", sids[i], NULL) != BCD_OK)
            die(svc, "analyze");
        bcd_free(out);
    }
    clear();
    double sync_s = now() - t0;
    printf("sync_jobs_per_min %.1f\n", njobs / sync_s * 60.0);

    static const unsigned workers[] = {1, 2, 4};
    for (size_t w = 0; w < sizeof workers / sizeof workers[0]; w++) {
        for (int i = 0; i < njobs; i++)
            if (bcd_session_analyze_async(&out, svc, "bench", sids[i], NULL) != BCD_OK)
                die(svc, "analyze --async");
            else
                bcd_free(out);
        if (tty)
            fprintf(stderr, "%u worker%s:\n", workers[w], workers[w] == 1 ? "" : "s");
        bcd_worker_options o = BCD_WORKER_OPTIONS_INIT;
        o.concurrency = workers[w];
        o.drain = 1;
        o.poll_ms = 20;
        o.progress = tty ? progress : NULL;
        o.progress_user = (void *)&njobs;
        t0 = now();
        if (bcd_worker_run(&out, svc, &o) != BCD_OK)
            die(svc, "worker");
        double s = now() - t0;
        clear();
        cJSON *sum = cJSON_Parse(out);
        int done = cJSON_GetObjectItemCaseSensitive(sum, "jobs_done")->valueint;
        cJSON_Delete(sum);
        bcd_free(out);
        if (done != njobs)
            die(NULL, "not every job was done");
        printf("workers_%u_jobs_per_min %.1f\n", workers[w], njobs / s * 60.0);
        printf("workers_%u_seconds %.3f\n", workers[w], s);
    }

    /* the queue alone: sessions with registered (never read) images */
    char (*osids)[37] = calloc((size_t)nover, 37);
    for (int i = 0; i < nover; i++) {
        note("queue overhead sessions:", i + 1, nover);
        if (bcd_session_create(&out, svc, "bench") != BCD_OK)
            die(svc, "session create");
        session_id_of(out, osids[i]);
        for (int a = 0; a < 3; a++) {
            char path[128];
            snprintf(path, sizeof path, "/nonexistent/%d-%s.jpg", i, ANGLES[a]);
            if (bcd_image_register(&out, svc, "bench", osids[i], ANGLES[a], path, -1) != BCD_OK)
                die(svc, "register");
            bcd_free(out);
        }
        if (bcd_session_complete(&out, svc, "bench", osids[i]) != BCD_OK)
            die(svc, "complete");
        bcd_free(out);
    }
    clear();
    bcd_store *st = svc->store;
    struct bcd__job_row *row = malloc(sizeof *row);
    bool created = false, claimed = false;
    int64_t wait = 0;
    /* even sessions: the store's enqueue alone; odd ones: through the service, which
     * validates first (owner, completed, angles), as `analyze --async` does */
    double t_enq = 0, t_enq_svc = 0, t_claim = 0, t_hb = 0, t_done = 0;
    for (int i = 0; i < nover; i++) {
        note("queue overhead:", i + 1, nover);
        double a = now();
        if (i % 2 == 0) {
            if (bcd__store_job_enqueue(st, osids[i], "bench", NULL, 0, row, &created) != BCD_OK)
                die(NULL, st->err.message);
        } else {
            if (bcd_session_analyze_async(&out, svc, "bench", osids[i], NULL) != BCD_OK)
                die(svc, "async");
            bcd_free(out);
        }
        double c = now();
        if (bcd__store_job_claim(st, "bench-worker", 60000, row, &claimed, &wait) != BCD_OK || !claimed)
            die(NULL, "claim");
        double d = now();
        if (bcd__store_job_heartbeat(st, row->id, "bench-worker", 60000, row) != BCD_OK)
            die(NULL, "heartbeat");
        double e = now();
        if (bcd__store_job_complete(st, row->id, "bench-worker", row) != BCD_OK)
            die(NULL, "complete");
        double f = now();
        *(i % 2 == 0 ? &t_enq : &t_enq_svc) += c - a;
        t_claim += d - c;
        t_hb += e - d;
        t_done += f - e;
    }
    clear();
    const int half = nover / 2 > 0 ? nover / 2 : 1;
    printf("overhead_jobs %d\n", nover);
    printf("queue_enqueue_ms %.3f\n", t_enq / (nover - nover / 2) * 1e3);
    printf("queue_enqueue_via_service_ms %.3f\n", t_enq_svc / half * 1e3);
    printf("queue_claim_ms %.3f\n", t_claim / nover * 1e3);
    printf("queue_heartbeat_ms %.3f\n", t_hb / nover * 1e3);
    printf("queue_complete_ms %.3f\n", t_done / nover * 1e3);
    printf("queue_overhead_per_job_ms %.3f\n", (t_enq + t_enq_svc + t_claim + t_done) / nover * 1e3);
    printf("analysis_per_job_ms %.3f\n", sync_s / njobs * 1e3);

    free(row);
    free(osids);
    free(sids);
    bcd_service_free(svc);
    bcd_ctx_free(ctx);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}
