/* Asynchronous analysis: queueing a job, its status, and the worker that runs jobs
 * (threads, leases with heartbeats, retries with backoff), plus progress reports.
 *
 * A worker thread owns a service (its own store connection and a copy of the ctx
 * configuration) and a heartbeat helper thread with yet another store connection that
 * renews the lease of the job the worker is running. Jobs run bcd_session_analyze(), so
 * an asynchronous analysis is the synchronous one, saved by the same atomic write. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "service_internal.h"

#define MAX_CONCURRENCY 64
#define DEFAULT_LEASE_S 60
#define DEFAULT_POLL_MS 1000
#define DEFAULT_RETRY_BASE_MS 5000
#define MAX_BACKOFF_MS 3600000LL
#define STOP_CHECK_MS 50
#define IDLE_REPORT_MS 1000
#define STORE_RETRIES 5 /* consecutive queue failures before a worker thread gives up */

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- progress ------------------------------------------------------------------------ */

bcd_status bcd_service_set_progress(bcd_service *svc, bcd_progress_fn fn, void *user)
{
    if (!svc)
        return BCD_EINVAL;
    svc->progress = fn;
    svc->progress_user = user;
    return BCD_OK;
}

void bcd__svc_progress_start(bcd_service *svc, const char *session_id)
{
    svc->progress_t0 = mono_s();
    snprintf(svc->progress_session, sizeof svc->progress_session, "%s", session_id ? session_id : "");
}

void bcd__svc_progress(bcd_service *svc, const char *stage, size_t done, size_t total)
{
    if (!svc->progress)
        return;
    bcd_progress_event ev;
    memset(&ev, 0, sizeof ev);
    ev.version = BCD_PROGRESS_EVENT_VERSION;
    ev.stage = stage;
    ev.done = done;
    ev.total = total;
    ev.elapsed_s = mono_s() - svc->progress_t0;
    ev.session_id = svc->progress_session[0] ? svc->progress_session : NULL;
    ev.worker = -1;
    svc->progress(svc->progress_user, &ev);
}

/* ---- queueing and status --------------------------------------------------------------- */

static bcd_status check_job_id(bcd_service *svc, const char *job_id, char id[BCD__ID_LEN])
{
    if (!bcd__uuid_valid(job_id))
        return bcd__svc_fail(svc, BCD_EINVAL, "invalid_job_id", "'%.64s' is not a job id (UUID expected)",
                             job_id ? job_id : "(null)");
    for (int i = 0; i < 36; i++)
        id[i] = (char)((job_id[i] >= 'A' && job_id[i] <= 'F') ? job_id[i] - 'A' + 'a' : job_id[i]);
    id[36] = '\0';
    return BCD_OK;
}

/* The status document of a job (bcd_job_status() in bcd/service.h). */
static bcd_status job_json(bcd_service *svc, const struct bcd__job_row *j, char **out)
{
    bool ok = true;
    const bool queued = strcmp(j->status, "queued") == 0, running = strcmp(j->status, "running") == 0;
    cJSON *root = cJSON_CreateObject();
    bcd__j_str(&ok, root, "job_id", j->id);
    bcd__j_str(&ok, root, "session_id", j->session_id);
    bcd__j_str(&ok, root, "status", j->status);
    bcd__j_int(&ok, root, "attempts", j->attempts);
    bcd__j_int(&ok, root, "max_attempts", j->max_attempts);
    bcd__j_str(&ok, root, "error", j->error[0] ? j->error : NULL);
    bcd__j_str(&ok, root, "error_code", j->error_code[0] ? j->error_code : NULL);
    bcd__j_str(&ok, root, "model", j->model[0] ? j->model : NULL);
    bcd__j_str(&ok, root, "created_at", j->created_at);
    bcd__j_str(&ok, root, "updated_at", j->updated_at);
    bcd__j_str(&ok, root, "started_at", j->started_at[0] ? j->started_at : NULL);
    bcd__j_str(&ok, root, "finished_at", j->finished_at[0] ? j->finished_at : NULL);
    bcd__j_str(&ok, root, "next_attempt_at", queued && j->run_after[0] ? j->run_after : NULL);
    bcd__j_str(&ok, root, "lease_expires_at", running && j->lease_expires_at[0] ? j->lease_expires_at : NULL);
    bcd__j_bool(&ok, root, "analysis_available", strcmp(j->status, "done") == 0);
    return bcd__svc_emit(svc, root, ok, out);
}

bcd_status bcd_session_analyze_async(char **out, bcd_service *svc, const char *user_id, const char *session_id,
                                     const char *model_spec)
{
    BCD__SVC_ENTER(svc, out);
    struct bcd__session_row srow;
    bcd_status st = bcd__svc_owned_session(svc, user_id, session_id, &srow);
    if (st != BCD_OK)
        return st;
    if (strcmp(srow.status, "completed") != 0)
        return bcd__svc_fail(svc, BCD_ESTATE, "session_not_completed",
                             "session %s is not completed (status \"%s\"): complete it before analysis", srow.id,
                             srow.status);
    if (model_spec && strlen(model_spec) >= BCD__PATH_MAX)
        return bcd__svc_fail(svc, BCD_EINVAL, "invalid_model", "the model spec is too long");

    /* the same angle rule as the analysis, so that a job that cannot run is not queued */
    struct bcd__image_row *imgs = NULL;
    size_t n = 0;
    st = bcd__store_image_list(svc->store, srow.id, &imgs, &n);
    if (st != BCD_OK)
        return bcd__svc_from_store(svc, st);
    unsigned set = 0;
    for (size_t i = 0; i < n; i++) {
        int a = bcd__angle_index(imgs[i].angle);
        if (a >= 0)
            set |= 1u << a;
    }
    free(imgs);
    int distinct = 0;
    for (int i = 0; i < BCD__ANGLE_COUNT; i++)
        distinct += (set >> i) & 1u;
    if (distinct < BCD_MIN_ANGLES)
        return bcd__svc_fail(svc, BCD_ESTATE, "insufficient_angles",
                             "session %s has images of %d distinct angle%s; at least %d are required", srow.id,
                             distinct, distinct == 1 ? "" : "s", BCD_MIN_ANGLES);

    struct bcd__job_row *job = malloc(sizeof *job);
    if (!job)
        return bcd__svc_fail(svc, BCD_ENOMEM, "out_of_memory", "out of memory");
    bool created = false;
    st = bcd__store_job_enqueue(svc->store, srow.id, srow.user_id, model_spec && *model_spec ? model_spec : NULL,
                                BCD_JOB_MAX_ATTEMPTS, job, &created);
    if (st != BCD_OK) {
        free(job);
        return bcd__svc_from_store(svc, st);
    }
    bool ok = true;
    cJSON *root = cJSON_CreateObject();
    bcd__j_str(&ok, root, "status", "processing");
    bcd__j_str(&ok, root, "job_id", job->id);
    bcd__j_str(&ok, root, "session_id", job->session_id);
    bcd__j_str(&ok, root, "job_status", job->status);
    bcd__j_bool(&ok, root, "created", created);
    bcd__j_str(&ok, root, "created_at", job->created_at);
    free(job);
    return bcd__svc_emit(svc, root, ok, out);
}

bcd_status bcd_job_status(char **out, bcd_service *svc, const char *user_id, const char *job_id)
{
    BCD__SVC_ENTER(svc, out);
    char id[BCD__ID_LEN];
    bcd_status st = bcd__svc_check_user(svc, user_id);
    if (st == BCD_OK)
        st = check_job_id(svc, job_id, id);
    if (st != BCD_OK)
        return st;
    struct bcd__job_row *job = malloc(sizeof *job);
    if (!job)
        return bcd__svc_fail(svc, BCD_ENOMEM, "out_of_memory", "out of memory");
    st = bcd__store_job_get(svc->store, id, job);
    if (st == BCD_OK && strcmp(job->user_id, user_id) != 0)
        st = bcd__svc_fail(svc, BCD_ENOTFOUND, "job_not_found", "job %s not found", id);
    else if (st != BCD_OK)
        bcd__svc_from_store(svc, st);
    if (st == BCD_OK)
        st = job_json(svc, job, out);
    free(job);
    return st;
}

bcd_status bcd_job_status_for_session(char **out, bcd_service *svc, const char *user_id, const char *session_id)
{
    BCD__SVC_ENTER(svc, out);
    struct bcd__session_row srow;
    bcd_status st = bcd__svc_owned_session(svc, user_id, session_id, &srow);
    if (st != BCD_OK)
        return st;
    struct bcd__job_row *job = malloc(sizeof *job);
    if (!job)
        return bcd__svc_fail(svc, BCD_ENOMEM, "out_of_memory", "out of memory");
    st = bcd__store_job_get_for_session(svc->store, srow.id, job);
    if (st != BCD_OK)
        bcd__svc_from_store(svc, st);
    else
        st = job_json(svc, job, out);
    free(job);
    return st;
}

/* ---- worker ------------------------------------------------------------------------------ */

bcd_status bcd_worker_options_init(bcd_worker_options *opts, unsigned int version)
{
    if (!opts || version != BCD_WORKER_OPTIONS_VERSION)
        return BCD_EINVAL;
    const bcd_worker_options d = BCD_WORKER_OPTIONS_INIT;
    *opts = d;
    return BCD_OK;
}

/* One bcd_worker_run(). */
struct run {
    unsigned concurrency;
    bool drain;
    int64_t lease_ms, heartbeat_ms, poll_ms, retry_base_ms;
    int64_t job_timeout_ms; /* BCD_JOB_TIMEOUT: a job still running then is failed */
    unsigned max_jobs;
    volatile sig_atomic_t *stop_flag; /* the caller's; read by the supervising thread only */
    atomic_bool stop;                 /* what the worker threads look at */
    atomic_uint reserved;             /* claims under way or made, for max_jobs */
    atomic_uint running;              /* worker threads that have not returned */
    bcd_progress_fn fn;
    void *user;
    double t0;
    pthread_mutex_t mu; /* below, and serializes progress calls */
    size_t done, failed, retried, lost;
    bcd_error err; /* first failure that stopped a worker thread */
    bool has_err;
};

/* One worker thread (or the calling thread when concurrency is 1). */
struct worker {
    struct run *r;
    int index;
    bcd_ctx *ctx;     /* owned copy, or the caller's (index 0 of concurrency 1) */
    bcd_service *svc; /* owned, or the caller's */
    bool owned;
    char id[BCD__JOB_WORKER_MAX];
    /* the job being run, for progress reports */
    const char *job_id;
    const char *session_id;
    /* saved progress callback of a borrowed svc */
    bcd_progress_fn saved_fn;
    void *saved_user;
    /* heartbeat helper: renews the lease of hb_job while it is set */
    pthread_t hb_thread;
    bool hb_started;
    pthread_mutex_t hb_mu;
    pthread_cond_t hb_cv;
    bcd_ctx *hb_ctx;
    bcd_store *hb_store;
    char hb_job[BCD__ID_LEN]; /* "" none */
    bool hb_quit;
    bool hb_lost; /* the lease of hb_job was lost (another worker took the job over) */
    double hb_since; /* when hb_job was set (mono_s) */
    bool hb_timed_out; /* hb_job ran past its deadline and was failed as job_timeout */
};

static void emit(struct worker *w, const char *stage, size_t done, size_t total, const char *message)
{
    struct run *r = w->r;
    pthread_mutex_lock(&r->mu);
    if (r->fn) {
        bcd_progress_event ev;
        memset(&ev, 0, sizeof ev);
        ev.version = BCD_PROGRESS_EVENT_VERSION;
        ev.stage = stage;
        ev.done = done;
        ev.total = total;
        ev.elapsed_s = mono_s() - r->t0;
        ev.session_id = w->session_id;
        ev.job_id = w->job_id;
        ev.worker = w->index;
        ev.jobs_done = r->done;
        ev.jobs_failed = r->failed;
        ev.message = message;
        r->fn(r->user, &ev);
    }
    pthread_mutex_unlock(&r->mu);
}

/* Progress of the analysis a worker runs: forwarded with the job and the worker. */
static void forward(void *user, const bcd_progress_event *ev)
{
    struct worker *w = user;
    emit(w, ev->stage, ev->done, ev->total, ev->message);
}

static bool stopping(struct run *r)
{
    return atomic_load(&r->stop);
}

/* Look at the caller's stop flag (supervising thread only). */
static void poll_stop(struct run *r)
{
    if (r->stop_flag && *r->stop_flag)
        atomic_store(&r->stop, true);
}

static void record_error(struct run *r, const bcd_error *e)
{
    pthread_mutex_lock(&r->mu);
    if (!r->has_err) {
        bcd__error_copy(&r->err, e);
        r->has_err = true;
    }
    pthread_mutex_unlock(&r->mu);
}

/* Sleep up to ms, waking early when stopped; with concurrency 1 the caller's stop flag is
 * polled here too. */
static void idle_wait(struct worker *w, int64_t ms)
{
    const double end = mono_s() + (double)ms / 1000.0;
    for (;;) {
        if (w->r->concurrency == 1)
            poll_stop(w->r);
        if (stopping(w->r))
            return;
        double left = end - mono_s();
        if (left <= 0)
            return;
        sleep_ms(left * 1000 < STOP_CHECK_MS ? (int64_t)(left * 1000) + 1 : STOP_CHECK_MS);
    }
}

/* ---- heartbeat helper ---- */

static void abs_deadline(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void *heartbeat_main(void *arg)
{
    struct worker *w = arg;
    struct bcd__job_row *row = malloc(sizeof *row);
    pthread_mutex_lock(&w->hb_mu);
    while (!w->hb_quit) {
        if (!w->hb_job[0]) {
            pthread_cond_wait(&w->hb_cv, &w->hb_mu);
            continue;
        }
        char job[BCD__ID_LEN];
        memcpy(job, w->hb_job, sizeof job);
        int64_t left = w->r->job_timeout_ms - (int64_t)((mono_s() - w->hb_since) * 1000.0);
        struct timespec dl;
        abs_deadline(&dl, left < w->r->heartbeat_ms ? (left > 0 ? left : 0) : w->r->heartbeat_ms);
        int rc = 0;
        while (!w->hb_quit && strcmp(w->hb_job, job) == 0 && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&w->hb_cv, &w->hb_mu, &dl);
        if (w->hb_quit || strcmp(w->hb_job, job) != 0)
            continue;
        bool overdue = (mono_s() - w->hb_since) * 1000.0 >= (double)w->r->job_timeout_ms;
        pthread_mutex_unlock(&w->hb_mu);
        bcd_status st;
        if (overdue) {
            /* past its deadline (a file that never ends, a stuck device): the job fails
             * here, from the helper's own connection, since the worker thread may never
             * come back; whatever it finishes later is dropped */
            char msg[160];
            snprintf(msg, sizeof msg, "the analysis ran longer than the job deadline (BCD_JOB_TIMEOUT, %lld s)",
                     (long long)(w->r->job_timeout_ms / 1000));
            st = row ? bcd__store_job_fail(w->hb_store, job, w->id, "job_timeout", msg, -1, row) : BCD_ENOMEM;
            pthread_mutex_lock(&w->hb_mu);
            if (st == BCD_OK && strcmp(w->hb_job, job) == 0) {
                w->hb_timed_out = true;
                w->hb_job[0] = '\0';
                continue;
            }
        } else {
            st = row ? bcd__store_job_heartbeat(w->hb_store, job, w->id, w->r->lease_ms, row) : BCD_ENOMEM;
            pthread_mutex_lock(&w->hb_mu);
        }
        if (st == BCD_ESTATE && strcmp(w->hb_job, job) == 0) {
            /* taken over (or finished) meanwhile: stop renewing; the worker drops its outcome */
            w->hb_lost = true;
            w->hb_job[0] = '\0';
        } else if (st != BCD_OK) {
            /* the next renewal may get through before the lease ends */
            bcd__log(w->hb_ctx, BCD_LOG_WARN, "worker %s: cannot renew the lease of job %s: %s", w->id, job,
                     row ? w->hb_store->err.message : "out of memory");
        }
    }
    pthread_mutex_unlock(&w->hb_mu);
    free(row);
    return NULL;
}

static bcd_status heartbeat_start(struct worker *w)
{
    bcd_status st = bcd__ctx_clone(&w->hb_ctx, w->ctx);
    if (st != BCD_OK)
        return bcd__svc_fail(w->svc, st, "out_of_memory", "out of memory");
    bcd_error err;
    memset(&err, 0, sizeof err);
    st = bcd__store_open(&w->hb_store, w->hb_ctx, &err);
    if (st != BCD_OK) {
        bcd__error_copy(&w->svc->err, &err);
        w->svc->has_err = true;
        bcd__error_clear(&err);
        return st;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&w->hb_mu, NULL);
    pthread_cond_init(&w->hb_cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&w->hb_thread, NULL, heartbeat_main, w) != 0) {
        pthread_cond_destroy(&w->hb_cv);
        pthread_mutex_destroy(&w->hb_mu);
        return bcd__svc_fail(w->svc, BCD_ERROR, "thread_failure", "cannot start a heartbeat thread");
    }
    w->hb_started = true;
    return BCD_OK;
}

static void heartbeat_stop(struct worker *w)
{
    if (w->hb_started) {
        pthread_mutex_lock(&w->hb_mu);
        w->hb_quit = true;
        pthread_cond_signal(&w->hb_cv);
        pthread_mutex_unlock(&w->hb_mu);
        pthread_join(w->hb_thread, NULL);
        pthread_cond_destroy(&w->hb_cv);
        pthread_mutex_destroy(&w->hb_mu);
        w->hb_started = false;
    }
    bcd__store_close(w->hb_store);
    w->hb_store = NULL;
    bcd_ctx_free(w->hb_ctx);
    w->hb_ctx = NULL;
}

/* Renew the lease of job from now on (NULL: stop). Returns whether the lease of the
 * previous job was lost meanwhile. */
static bool heartbeat_set(struct worker *w, const char *job, bool *timed_out)
{
    pthread_mutex_lock(&w->hb_mu);
    bool lost = w->hb_lost;
    w->hb_lost = false;
    if (timed_out)
        *timed_out = w->hb_timed_out;
    w->hb_timed_out = false;
    w->hb_since = mono_s();
    snprintf(w->hb_job, sizeof w->hb_job, "%s", job ? job : "");
    pthread_cond_signal(&w->hb_cv);
    pthread_mutex_unlock(&w->hb_mu);
    return lost;
}

/* ---- running jobs ---- */

/* Failures that another attempt cannot cure fail the job at once. */
static bool permanent(bcd_status st)
{
    return st == BCD_EINVAL || st == BCD_ENOTFOUND || st == BCD_ESTATE || st == BCD_EFORMAT || st == BCD_ELIMIT ||
           st == BCD_EUNSUPPORTED || st == BCD_EDOMAIN;
}

static int64_t backoff_ms(const struct run *r, int attempts)
{
    int64_t d = r->retry_base_ms;
    for (int i = 1; i < attempts && d < MAX_BACKOFF_MS; i++)
        d *= 2;
    return d < MAX_BACKOFF_MS ? d : MAX_BACKOFF_MS;
}

/* Record the outcome of a job on the store, retrying transient queue failures a few
 * times (the outcome must not be lost to a busy database). */
static bcd_status record(struct worker *w, const struct bcd__job_row *job, bool success, const char *code,
                         const char *msg, int64_t retry_ms, struct bcd__job_row *row)
{
    bcd_status st = BCD_OK;
    for (int k = 0; k < STORE_RETRIES; k++) {
        st = success ? bcd__store_job_complete(w->svc->store, job->id, w->id, row)
                     : bcd__store_job_fail(w->svc->store, job->id, w->id, code, msg, retry_ms, row);
        if (st == BCD_OK || st == BCD_ESTATE || st == BCD_ENOTFOUND || st == BCD_EINVAL)
            return st;
        sleep_ms(100LL << k);
    }
    return st;
}

static void run_job(struct worker *w, const struct bcd__job_row *job)
{
    struct run *r = w->r;
    w->job_id = job->id;
    w->session_id = job->session_id;
    emit(w, "claimed", (size_t)job->attempts, (size_t)job->max_attempts, NULL);
    heartbeat_set(w, job->id, NULL);

    char *out = NULL;
    bcd_status st = bcd_session_analyze(&out, w->svc, job->user_id, job->session_id,
                                        job->model[0] ? job->model : NULL);
    bcd_free(out);
    char code[64] = "", msg[BCD__JOB_ERROR_MAX] = "";
    if (st != BCD_OK) {
        const bcd_error *e = bcd_service_last_error(w->svc);
        snprintf(code, sizeof code, "%s", e && e->code[0] ? e->code : bcd_status_name(st));
        snprintf(msg, sizeof msg, "%s", e && e->message[0] ? e->message : bcd_strerror(st));
    }
    bool timed_out = false;
    bool lost = heartbeat_set(w, NULL, &timed_out);
    if (timed_out) {
        /* already failed as job_timeout by the heartbeat helper */
        pthread_mutex_lock(&r->mu);
        r->failed++;
        pthread_mutex_unlock(&r->mu);
        emit(w, "failed", (size_t)job->attempts, (size_t)job->max_attempts, "job_timeout");
        w->job_id = NULL;
        w->session_id = NULL;
        return;
    }

    struct bcd__job_row *row = malloc(sizeof *row);
    bcd_status rs = BCD_ENOMEM;
    int64_t retry = st == BCD_OK || permanent(st) ? -1 : backoff_ms(r, job->attempts);
    if (row && !lost)
        rs = record(w, job, st == BCD_OK, code, msg, retry, row);
    else if (lost)
        rs = BCD_ESTATE;

    if (rs == BCD_ESTATE) {
        pthread_mutex_lock(&r->mu);
        r->lost++;
        pthread_mutex_unlock(&r->mu);
        emit(w, "lease_lost", 0, 0, "the lease expired and another worker took the job over; outcome dropped");
    } else if (rs != BCD_OK) {
        /* the job stays running under this worker until its lease expires; then it is
         * claimed again (and, if it was the last attempt, failed as lease_expired) */
        char m[700];
        snprintf(m, sizeof m, "cannot record the outcome of the job: %s",
                 row ? w->svc->store->err.message : "out of memory");
        emit(w, "store_error", 0, 0, m);
    } else if (st == BCD_OK) {
        pthread_mutex_lock(&r->mu);
        r->done++;
        pthread_mutex_unlock(&r->mu);
        emit(w, "done", 1, 1, NULL);
    } else if (strcmp(row->status, "queued") == 0) {
        pthread_mutex_lock(&r->mu);
        r->retried++;
        pthread_mutex_unlock(&r->mu);
        emit(w, "retry", (size_t)row->attempts, (size_t)row->max_attempts, msg);
    } else {
        pthread_mutex_lock(&r->mu);
        r->failed++;
        pthread_mutex_unlock(&r->mu);
        emit(w, "failed", (size_t)row->attempts, (size_t)row->max_attempts, msg);
    }
    free(row);
    w->job_id = NULL;
    w->session_id = NULL;
}

/* The job loop of one worker. */
static void worker_loop(struct worker *w)
{
    struct run *r = w->r;
    struct bcd__job_row *job = malloc(sizeof *job);
    if (!job) {
        bcd__svc_fail(w->svc, BCD_ENOMEM, "out_of_memory", "out of memory");
        record_error(r, &w->svc->err);
        return;
    }
    int failures = 0;
    bool idle = false;
    double last_idle_report = 0;
    for (;;) {
        if (r->concurrency == 1)
            poll_stop(r);
        if (stopping(r))
            break;
        if (r->max_jobs && atomic_fetch_add(&r->reserved, 1) >= r->max_jobs) {
            atomic_store(&r->stop, true);
            break;
        }
        bool claimed = false;
        int64_t wait = -1;
        bcd_status st = bcd__store_job_claim(w->svc->store, w->id, r->lease_ms, job, &claimed, &wait);
        if (r->max_jobs && (st != BCD_OK || !claimed))
            atomic_fetch_sub(&r->reserved, 1);
        if (st != BCD_OK) {
            if (st == BCD_EUNSUPPORTED || st == BCD_EINVAL || ++failures >= STORE_RETRIES) {
                /* the queue is out of reach: the whole worker stops and says why */
                bcd__svc_from_store(w->svc, st);
                record_error(r, &w->svc->err);
                atomic_store(&r->stop, true);
                break;
            }
            emit(w, "store_error", (size_t)failures, STORE_RETRIES, w->svc->store->err.message);
            idle_wait(w, 250LL << failures);
            continue;
        }
        failures = 0;
        if (claimed) {
            idle = false;
            run_job(w, job);
            continue;
        }
        if (wait < 0 && r->drain)
            break;
        double now = mono_s();
        if (!idle || now - last_idle_report >= IDLE_REPORT_MS / 1000.0) {
            emit(w, "idle", 0, 0, NULL);
            last_idle_report = now;
            idle = true;
        }
        int64_t nap = wait < 0 || wait > r->poll_ms ? r->poll_ms : wait;
        idle_wait(w, nap > 10 ? nap : 10);
    }
    free(job);
}

/* Open what a worker needs. For a borrowed service only the heartbeat helper is opened. */
static bcd_status worker_open(struct worker *w, bcd_service *caller)
{
    if (!w->owned) {
        w->svc = caller;
        w->ctx = caller->ctx;
    } else {
        bcd_status st = bcd__ctx_clone(&w->ctx, caller->ctx);
        if (st != BCD_OK)
            return bcd__svc_fail(caller, st, "out_of_memory", "out of memory");
        st = bcd_service_open(&w->svc, w->ctx);
        if (st != BCD_OK) {
            const bcd_error *e = bcd_ctx_last_error(w->ctx);
            if (e)
                bcd__error_copy(&caller->err, e);
            else
                bcd__svc_fail(caller, st, NULL, "cannot open the store: %s", bcd_strerror(st));
            caller->has_err = true;
            return st;
        }
    }
    w->saved_fn = w->svc->progress;
    w->saved_user = w->svc->progress_user;
    w->svc->progress = w->r->fn ? forward : NULL;
    w->svc->progress_user = w;
    char host[40] = "";
    if (gethostname(host, sizeof host - 1) != 0 || !host[0])
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    char rnd[BCD__ID_LEN];
    if (bcd__uuid_v4(rnd) != BCD_OK)
        return bcd__svc_fail(w->svc, BCD_ERROR, "random_failure", "cannot generate a worker id");
    /* host, process and thread, plus randomness: a restarted process that got the same pid
     * (containers) is never taken for the old one */
    snprintf(w->id, sizeof w->id, "%s:%ld:%d:%.8s", host, (long)getpid(), w->index, rnd);
    return heartbeat_start(w);
}

static void worker_close(struct worker *w)
{
    heartbeat_stop(w);
    if (w->svc) {
        w->svc->progress = w->saved_fn;
        w->svc->progress_user = w->saved_user;
    }
    if (w->owned) {
        bcd_service_free(w->svc);
        bcd_ctx_free(w->ctx);
    }
    w->svc = NULL;
    w->ctx = NULL;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    worker_loop(w);
    atomic_fetch_sub(&w->r->running, 1u);
    return NULL;
}

bcd_status bcd_worker_run(char **out, bcd_service *svc, const bcd_worker_options *opts)
{
    if (!svc)
        return BCD_EINVAL;
    bcd__svc_clear(svc);
    const bcd_worker_options dflt = BCD_WORKER_OPTIONS_INIT;
    if (!opts)
        opts = &dflt;
    if (opts->version != BCD_WORKER_OPTIONS_VERSION)
        return bcd__svc_fail(svc, BCD_EINVAL, "invalid_options", "unknown bcd_worker_options version %u",
                             opts->version);
    unsigned conc = opts->concurrency ? opts->concurrency : 1;
    unsigned lease_s = opts->lease_seconds ? opts->lease_seconds : DEFAULT_LEASE_S;
    if (conc > MAX_CONCURRENCY)
        return bcd__svc_fail(svc, BCD_EINVAL, "invalid_options", "concurrency %u is above the limit of %d", conc,
                             MAX_CONCURRENCY);
    if (lease_s > 86400 || (opts->heartbeat_seconds && opts->heartbeat_seconds >= lease_s))
        return bcd__svc_fail(svc, BCD_EINVAL, "invalid_options",
                             "the heartbeat interval (%u s) must be below the lease (%u s, at most a day)",
                             opts->heartbeat_seconds, lease_s);

    struct run *r = calloc(1, sizeof *r);
    struct worker *ws = calloc(conc, sizeof *ws);
    pthread_t *threads = calloc(conc, sizeof *threads);
    if (!r || !ws || !threads) {
        free(r);
        free(ws);
        free(threads);
        return bcd__svc_fail(svc, BCD_ENOMEM, "out_of_memory", "out of memory");
    }
    r->concurrency = conc;
    r->drain = opts->drain != 0;
    r->lease_ms = (int64_t)lease_s * 1000;
    r->heartbeat_ms = opts->heartbeat_seconds ? (int64_t)opts->heartbeat_seconds * 1000 : r->lease_ms / 3;
    r->poll_ms = opts->poll_ms ? opts->poll_ms : DEFAULT_POLL_MS;
    r->retry_base_ms = opts->retry_base_ms ? opts->retry_base_ms : DEFAULT_RETRY_BASE_MS;
    const char *jt = bcd_ctx_get(svc->ctx, "BCD_JOB_TIMEOUT");
    r->job_timeout_ms = (jt ? strtoll(jt, NULL, 10) : 1800) * 1000;
    r->max_jobs = opts->max_jobs;
    r->stop_flag = opts->stop;
    atomic_init(&r->stop, false);
    atomic_init(&r->reserved, 0u);
    atomic_init(&r->running, 0u);
    r->fn = opts->progress;
    r->user = opts->progress_user;
    r->t0 = mono_s();
    pthread_mutex_init(&r->mu, NULL);

    bcd_status st = BCD_OK;
    for (unsigned i = 0; i < conc && st == BCD_OK; i++) {
        ws[i].r = r;
        ws[i].index = (int)i;
        ws[i].owned = conc > 1;
        st = worker_open(&ws[i], svc);
        if (st != BCD_OK && ws[i].owned && ws[i].svc) {
            /* the failure is on the worker's own service: report it on the caller's */
            bcd__error_copy(&svc->err, &ws[i].svc->err);
            svc->has_err = true;
        }
    }
    if (st == BCD_OK && conc == 1) {
        worker_loop(&ws[0]);
    } else if (st == BCD_OK) {
        unsigned started = 0;
        for (; started < conc; started++) {
            atomic_fetch_add(&r->running, 1u);
            if (pthread_create(&threads[started], NULL, worker_main, &ws[started]) != 0) {
                atomic_fetch_sub(&r->running, 1u);
                st = bcd__svc_fail(svc, BCD_ERROR, "thread_failure", "cannot start worker thread %u", started);
                atomic_store(&r->stop, true);
                break;
            }
        }
        /* supervise: pass the caller's stop flag on until every thread has returned */
        while (atomic_load(&r->running) > 0) {
            poll_stop(r);
            sleep_ms(STOP_CHECK_MS);
        }
        for (unsigned i = 0; i < started; i++)
            pthread_join(threads[i], NULL);
    }
    if (r->fn) {
        struct worker last = {.r = r, .index = -1};
        emit(&last, "stopping", r->done + r->failed, 0, NULL);
    }
    for (unsigned i = 0; i < conc; i++)
        worker_close(&ws[i]);

    if (st == BCD_OK && r->has_err) {
        bcd__error_copy(&svc->err, &r->err);
        svc->has_err = true;
        st = r->err.status;
    } else if (st == BCD_OK && svc->has_err) {
        /* failures of the jobs run on svc are the jobs', not the worker's */
        bcd__error_clear(&svc->err);
        svc->has_err = false;
    }
    if (st == BCD_OK && out) {
        bool ok = true;
        cJSON *root = cJSON_CreateObject();
        bcd__j_int(&ok, root, "jobs_done", (double)r->done);
        bcd__j_int(&ok, root, "jobs_failed", (double)r->failed);
        bcd__j_int(&ok, root, "jobs_retried", (double)r->retried);
        bcd__j_int(&ok, root, "leases_lost", (double)r->lost);
        bcd__j_num(&ok, root, "elapsed_s", mono_s() - r->t0);
        bcd__j_bool(&ok, root, "stopped", r->stop_flag && *r->stop_flag);
        bcd__j_int(&ok, root, "concurrency", conc);
        st = bcd__svc_emit(svc, root, ok, out);
    }
    pthread_mutex_destroy(&r->mu);
    bcd__error_clear(&r->err);
    free(threads);
    free(ws);
    free(r);
    return st;
}
