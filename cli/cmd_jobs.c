/* bcd-cli commands of asynchronous analysis (job status, worker) and the progress line
 * that long commands show on a terminal. */
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

/* The caller: --user, else BCD_USER, else the login name (as cmd_session.c). */
static const char *caller(struct cli *c)
{
    if (c->user)
        return c->user;
    const char *u = getenv("BCD_USER");
    if (u && *u)
        return u;
    struct passwd *pw = getpwuid(getuid());
    return pw ? pw->pw_name : NULL;
}

/* ---- progress on stderr ------------------------------------------------------------------
 * Only on a terminal and never with --json: one line, rewritten in place ("\r", erase to
 * the end of the line), plus a line of its own for each job a worker finishes. Nothing
 * goes to stdout. The library serializes the calls, so no lock is needed here. */

static struct {
    bool on;
    bool line;          /* a progress line is on the screen */
    double last_draw;   /* monotonic seconds */
    char last_stage[16];
} prog;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *stage_words(const char *stage)
{
    static const struct {
        const char *stage, *words;
    } words[] = {
        {"read", "reading images"}, {"embed", "embedding"},    {"score", "scoring"}, {"detect", "detecting changes"},
        {"save", "saving"},         {"analyzed", "analyzed"},   {"claimed", "started"},
        {"done", "done"},           {"retry", "will retry"},    {"failed", "failed"},
        {"lease_lost", "lease lost"}, {"idle", "waiting for jobs"}, {"store_error", "queue unreachable"},
        {"stopping", "stopping"},
    };
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strcmp(words[i].stage, stage) == 0)
            return words[i].words;
    return stage;
}

static void clear_line(void)
{
    if (prog.line)
        fputs("\r\033[K", stderr);
    prog.line = false;
}

static void progress_cb(void *user, const bcd_progress_event *ev)
{
    (void)user;
    const bool job_end = ev->job_id && (strcmp(ev->stage, "done") == 0 || strcmp(ev->stage, "failed") == 0 ||
                                        strcmp(ev->stage, "retry") == 0 || strcmp(ev->stage, "lease_lost") == 0);
    double t = now_s();
    /* redraw at most 10 times a second, but always when the stage changes */
    if (!job_end && strcmp(prog.last_stage, ev->stage) == 0 && t - prog.last_draw < 0.1)
        return;
    prog.last_draw = t;
    snprintf(prog.last_stage, sizeof prog.last_stage, "%s", ev->stage);
    char step[48] = "";
    if (ev->total)
        snprintf(step, sizeof step, " %zu of %zu", ev->done, ev->total);
    clear_line();
    if (job_end) {
        /* a line of its own: the history of what the worker did */
        fprintf(stderr, "job %.8s (session %.8s): %s%s%s%s  [%.1f s]\n", ev->job_id,
                ev->session_id ? ev->session_id : "?", stage_words(ev->stage),
                strcmp(ev->stage, "done") ? step : "", ev->message ? ": " : "", ev->message ? ev->message : "",
                ev->elapsed_s);
        return;
    }
    if (ev->worker >= 0) {
        if (ev->job_id)
            fprintf(stderr, "worker #%d job %.8s: %s%s | %zu done, %zu failed | %.1f s", ev->worker, ev->job_id,
                    stage_words(ev->stage), step, ev->jobs_done, ev->jobs_failed, ev->elapsed_s);
        else
            fprintf(stderr, "worker: %s | %zu done, %zu failed | %.1f s", stage_words(ev->stage), ev->jobs_done,
                    ev->jobs_failed, ev->elapsed_s);
    } else {
        fprintf(stderr, "analyze: %s%s | %.1f s", stage_words(ev->stage), step, ev->elapsed_s);
    }
    prog.line = true;
    fflush(stderr);
}

static bool progress_wanted(const struct cli *c)
{
    return !c->json && isatty(STDERR_FILENO);
}

void cli_progress_attach(struct cli *c, bcd_service *svc)
{
    prog.on = progress_wanted(c);
    if (prog.on)
        bcd_service_set_progress(svc, progress_cb, NULL);
}

void cli_progress_done(struct cli *c, bcd_service *svc)
{
    (void)c;
    if (!prog.on)
        return;
    bcd_service_set_progress(svc, NULL, NULL);
    clear_line();
    fflush(stderr);
    prog.on = false;
}

/* ---- job status --------------------------------------------------------------------------- */

static int print_service_error(bcd_service *svc, bcd_status st)
{
    char *env = NULL;
    if (bcd_error_json(&env, bcd_service_last_error(svc)) == BCD_OK)
        fprintf(stderr, "%s\n", env);
    bcd_free(env);
    return cli_exit_code(st);
}

static int cmd_job_status(struct cli *c)
{
    const char *user = caller(c);
    if (!user)
        return cli_usage_error("no user: pass --user ID or set BCD_USER");
    if ((c->npos == 1) == (c->session != NULL))
        return cli_usage_error("'job status' expects a JOB id or --session SESSION (one of them)");
    bcd_service *svc = NULL;
    bcd_status st = bcd_service_open(&svc, c->ctx);
    if (st != BCD_OK)
        return cli_fail_ctx(c, st);
    char *out = NULL;
    st = c->session ? bcd_job_status_for_session(&out, svc, user, c->session)
                    : bcd_job_status(&out, svc, user, c->pos[0]);
    int rc = st == BCD_OK ? cli_print_result(c, out) : print_service_error(svc, st);
    bcd_free(out);
    bcd_service_free(svc);
    return rc;
}

/* ---- worker ------------------------------------------------------------------------------- */

static volatile sig_atomic_t stop_requested;

/* How long a stopping worker waits for the jobs under way before it exits without them
 * (their leases then run out and another worker runs them again). */
#define STOP_GRACE_S 15

static void stop_now(int sig)
{
    static const char msg[] =
        "{\"error\":{\"code\":\"worker_stopped\",\"message\":\"the jobs under way did not finish after the stop "
        "signal; exiting without them (their leases run out and another worker runs them again)\",\"details\":{},"
        "\"correlation_id\":null}}\n";
    (void)sig;
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
    _exit(128 + SIGTERM); /* as if ended by the signal */
}

/* First SIGTERM/SIGINT: finish the jobs under way, for at most STOP_GRACE_S; a second
 * one, or the end of the grace period, exits at once. */
static void on_stop_signal(int sig)
{
    if (stop_requested)
        stop_now(sig);
    stop_requested = 1;
    alarm(STOP_GRACE_S);
}

static int cmd_worker(struct cli *c)
{
    bcd_worker_options o = BCD_WORKER_OPTIONS_INIT;
    if (c->concurrency) {
        char *end;
        long n = strtol(c->concurrency, &end, 10);
        if (!*c->concurrency || *end || n < 1 || n > 64)
            return cli_usage_error("--concurrency must be an integer from 1 to 64, got '%s'", c->concurrency);
        o.concurrency = (unsigned)n;
    }
    o.drain = c->drain;
    o.stop = &stop_requested;
    if (progress_wanted(c)) {
        o.progress = progress_cb;
        prog.on = true;
    }
    /* SIGTERM / SIGINT: finish the jobs under way, then exit cleanly */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = stop_now;
    sigaction(SIGALRM, &sa, NULL);

    bcd_service *svc = NULL;
    bcd_status st = bcd_service_open(&svc, c->ctx);
    if (st != BCD_OK)
        return cli_fail_ctx(c, st);
    char *out = NULL;
    st = bcd_worker_run(&out, svc, &o);
    if (prog.on) {
        clear_line();
        fflush(stderr);
    }
    int rc = st == BCD_OK ? cli_print_result(c, out) : print_service_error(svc, st);
    bcd_free(out);
    bcd_service_free(svc);
    return rc;
}

#define USER_HELP "  --user ID   the caller (default: BCD_USER, then the login name)\n  --json      print JSON"

const struct cli_command cli_jobs_commands[] = {
    {"job status", "JOB | --session SESSION", "Status of an analysis job: queued, running, done or failed",
     "Prints {\"job_id\",\"session_id\",\"status\",\"attempts\",\"max_attempts\",\"error\",...}.\n"
     "With --session, the newest job of that session. 'analyze SESSION --async' queues a job;\n"
     "'worker' runs them.\n"
     "  --session SESSION  the newest job of this session instead of a job id\n" USER_HELP,
     0, 1, cmd_job_status},
    {"worker", "[--concurrency N] [--drain]", "Run queued analysis jobs (until stopped or drained)",
     "Claims jobs from the store's queue under a lease (60 s, renewed while a job runs) and runs\n"
     "the same analysis as 'analyze'. Any number of workers, on any machines sharing the store,\n"
     "share the queue. A failed attempt is retried with backoff (3 attempts); a job whose\n"
     "images are corrupt fails at once; a job still running after BCD_JOB_TIMEOUT seconds\n"
     "(default 1800) fails as job_timeout. SIGTERM or SIGINT: finish the current jobs, then exit\n"
     "0; a job not finished 15 s after the signal, or a second signal, ends the worker at once\n"
     "(exit 143; the job's lease runs out and another worker runs it again).\n"
     "On a terminal, progress is shown on stderr (not with --json). Prints a summary at the end.\n"
     "  --concurrency N  jobs at once, each in its own thread (default 1, at most 64)\n"
     "  --drain          exit once no job is queued or running\n"
     "  --json           print the summary as JSON",
     0, 0, cmd_worker},
};
const int cli_jobs_ncommands = sizeof cli_jobs_commands / sizeof cli_jobs_commands[0];
