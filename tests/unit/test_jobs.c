/* Unit tests of the analysis job queue (lib/store/local.c "job queue") and of the
 * asynchronous analysis and workers (lib/service/jobs.c) over the local store. */
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <png.h>
#include <sqlite3.h>

#include "bcd.h"
#include "core/core.h"
#include "service/service_internal.h"
#include "store/store.h"

static char tmpdir[64];
static char datadir[128];
static bcd_ctx *ctx;
static bcd_service *svc;

static const char *const ANGLES[6] = {"front", "left", "right", "up", "down", "raised"};

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/bcd-jobs-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    snprintf(datadir, sizeof datadir, "%s/data", tmpdir);
    ck_assert_int_eq(bcd_ctx_new(&ctx), BCD_OK);
    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_DATA_DIR", datadir), BCD_OK);
    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_STORE", "local"), BCD_OK);
    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_MODEL", "builtin"), BCD_OK);
    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_IMAGE_DIRS", tmpdir), BCD_OK); /* files registered by path */
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

/* ---- helpers ---------------------------------------------------------------------- */

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

#define FAILS(expr, status, code)                                                                                 \
    do {                                                                                                          \
        bcd_status st_ = (expr);                                                                                  \
        ck_assert_msg(st_ == (status), "%s -> %d (%s), expected %d", #expr, st_, err_code(), (status));           \
        ck_assert_str_eq(err_code(), (code));                                                                     \
    } while (0)

/* Store-level call on the service's store: must succeed. */
#define SOK(expr)                                                                                                 \
    do {                                                                                                          \
        bcd_status st_ = (expr);                                                                                  \
        ck_assert_msg(st_ == BCD_OK, "%s -> %d %s: %s", #expr, st_, svc->store->err.code,                         \
                      svc->store->err.message);                                                                  \
    } while (0)

static cJSON *parse(char *json)
{
    ck_assert_ptr_nonnull(json);
    cJSON *j = cJSON_Parse(json);
    ck_assert_msg(j != NULL, "not JSON: %s", json);
    bcd_free(json);
    return j;
}

static const cJSON *at(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    ck_assert_msg(v != NULL, "no %s", key);
    return v;
}

static const char *str(const cJSON *o, const char *key)
{
    const cJSON *v = at(o, key);
    ck_assert_msg(cJSON_IsString(v), "%s is not a string", key);
    return v->valuestring;
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = at(o, key);
    ck_assert_msg(cJSON_IsNumber(v), "%s is not a number", key);
    return v->valuedouble;
}

static long long raw_sql(const char *sql)
{
    char path[256];
    snprintf(path, sizeof path, "%s/bcd.sqlite3", datadir);
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 10000);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    ck_assert_msg(rc == SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(db));
    long long v = -1;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    else
        ck_assert_msg(rc == SQLITE_DONE, "%s: %s", sql, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static unsigned lcg(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (*s >> 16) & 0x7fff;
}

/* A small synthetic skin photo (PNG, 96x72): per-angle shading and a mole, sensor noise
 * of draw `draw`. */
static void write_png(const char *path, int angle, unsigned draw)
{
    const int w = 96, h = 72;
    unsigned char *px = malloc((size_t)w * h * 3);
    ck_assert_ptr_nonnull(px);
    unsigned seed = draw * 7919u + 17u;
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            double shade = 18.0 * sin(x * 0.07 + angle) * cos(y * 0.05 - angle * 0.5);
            double noise = (double)(lcg(&seed) % 17) - 8.0;
            double r = 196 + shade + noise, g = 150 + shade * 0.8 + noise, b = 128 + shade * 0.7 + noise;
            int mx = 20 + (angle * 11) % 60, my = 15 + (angle * 7) % 40;
            if ((x - mx) * (x - mx) + (y - my) * (y - my) < 16) {
                r *= 0.55;
                g *= 0.5;
                b *= 0.5;
            }
            unsigned char *p = px + ((size_t)y * w + x) * 3;
            p[0] = (unsigned char)fmin(255, fmax(0, r));
            p[1] = (unsigned char)fmin(255, fmax(0, g));
            p[2] = (unsigned char)fmin(255, fmax(0, b));
        }
    }
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    ck_assert(png && info);
    if (setjmp(png_jmpbuf(png)))
        ck_abort_msg("libpng failed writing %s", path);
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < h; y++)
        png_write_row(png, px + (size_t)y * w * 3);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    fclose(f);
    free(px);
}

static const char *fixture(int angle, unsigned draw)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/img-%d-%u.png", tmpdir, angle, draw);
    if (access(path, F_OK) != 0)
        write_png(path, angle, draw);
    return path;
}

/* A session of user with the first n_angles angles, completed if asked. */
static void make_session(char id[37], const char *user, int n_angles, unsigned draw, bool complete)
{
    char *out = NULL;
    OK(bcd_session_create(&out, svc, user));
    cJSON *j = parse(out);
    snprintf(id, 37, "%s", str(j, "session_id"));
    cJSON_Delete(j);
    for (int a = 0; a < n_angles; a++) {
        OK(bcd_image_add(&out, svc, user, id, ANGLES[a], fixture(a, draw), -1));
        bcd_free(out);
    }
    if (complete) {
        OK(bcd_session_complete(&out, svc, user, id));
        bcd_free(out);
    }
}

/* Queue the analysis of a session; job id into job_id. Returns the "created" flag. */
static bool enqueue(char job_id[37], const char *user, const char *session)
{
    char *out = NULL;
    OK(bcd_session_analyze_async(&out, svc, user, session, NULL));
    cJSON *j = parse(out);
    ck_assert_str_eq(str(j, "status"), "processing");
    ck_assert_str_eq(str(j, "session_id"), session);
    snprintf(job_id, 37, "%s", str(j, "job_id"));
    bool created = cJSON_IsTrue(at(j, "created"));
    cJSON_Delete(j);
    return created;
}

static cJSON *job_status(const char *user, const char *job_id)
{
    char *out = NULL;
    OK(bcd_job_status(&out, svc, user, job_id));
    return parse(out);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static long long count_where(const char *table, const char *col, const char *val)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE %s = '%s'", table, col, val);
    return raw_sql(sql);
}

/* ---- the queue in the store --------------------------------------------------------- */

START_TEST(test_store_job_enqueue_is_idempotent_while_queued_or_running)
{
    char sid[37];
    make_session(sid, "alice", 3, 1, true);
    struct bcd__job_row a, b;
    bool created = false;
    SOK(bcd__store_job_enqueue(svc->store, sid, "alice", NULL, 0, &a, &created));
    ck_assert(created);
    ck_assert_str_eq(a.status, "queued");
    ck_assert_int_eq(a.attempts, 0);
    ck_assert_int_eq(a.max_attempts, BCD_JOB_MAX_ATTEMPTS);
    ck_assert(bcd__uuid_valid(a.id));
    SOK(bcd__store_job_enqueue(svc->store, sid, "alice", "other-model", 5, &b, &created));
    ck_assert(!created);
    ck_assert_str_eq(b.id, a.id);
    ck_assert_str_eq(b.model, ""); /* the existing job, unchanged */

    /* still the same job while it runs */
    bool claimed = false;
    int64_t wait = 0;
    SOK(bcd__store_job_claim(svc->store, "w1", 60000, &b, &claimed, &wait));
    ck_assert(claimed);
    SOK(bcd__store_job_enqueue(svc->store, sid, "alice", NULL, 0, &b, &created));
    ck_assert(!created);
    ck_assert_str_eq(b.id, a.id);
    ck_assert_str_eq(b.status, "running");

    /* finished: a new job (a re-analysis) */
    SOK(bcd__store_job_complete(svc->store, a.id, "w1", &b));
    ck_assert_str_eq(b.status, "done");
    SOK(bcd__store_job_enqueue(svc->store, sid, "alice", NULL, 0, &b, &created));
    ck_assert(created);
    ck_assert_str_ne(b.id, a.id);
    ck_assert_int_eq(count_where("jobs", "session_id", sid), 2);
    SOK(bcd__store_job_get_for_session(svc->store, sid, &a));
    ck_assert_str_eq(a.id, b.id); /* the newest */

    /* unknown session and bad parameters change nothing */
    ck_assert_int_eq(bcd__store_job_enqueue(svc->store, "00000000-0000-4000-8000-000000000000", "alice", NULL, 0,
                                            &a, &created),
                     BCD_ENOTFOUND);
    ck_assert_int_eq(bcd__store_job_enqueue(svc->store, sid, "alice", NULL, 1000, &a, &created), BCD_EINVAL);
    ck_assert_int_eq(bcd__store_job_get(svc->store, "00000000-0000-4000-8000-000000000000", &a), BCD_ENOTFOUND);
    ck_assert_str_eq(svc->store->err.code, "job_not_found");
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM jobs"), 2);
}
END_TEST

/* long enough that a loaded machine does not lose a lease between the renewals (250 ms
 * apart) the test makes */
#define LEASE_MS 1500

START_TEST(test_store_job_claim_leases_and_takes_over_expired_leases)
{
    char sid[37];
    make_session(sid, "alice", 3, 1, true);
    struct bcd__job_row j, r;
    bool created = false, claimed = false;
    int64_t wait = 0;
    SOK(bcd__store_job_enqueue(svc->store, sid, "alice", NULL, 0, &j, &created));

    SOK(bcd__store_job_claim(svc->store, "w1", LEASE_MS, &r, &claimed, &wait));
    ck_assert(claimed);
    ck_assert_str_eq(r.id, j.id);
    ck_assert_str_eq(r.status, "running");
    ck_assert_str_eq(r.worker_id, "w1");
    ck_assert_int_eq(r.attempts, 1);
    ck_assert_int_eq(strlen(r.lease_expires_at), 27);
    ck_assert_int_eq(strlen(r.started_at), 27);

    /* held: nobody else gets it; the wait is the rest of the lease */
    SOK(bcd__store_job_claim(svc->store, "w2", LEASE_MS, &r, &claimed, &wait));
    ck_assert(!claimed);
    ck_assert_msg(wait > 0 && wait <= LEASE_MS, "wait %lld", (long long)wait);

    /* only the holder renews or finishes */
    ck_assert_int_eq(bcd__store_job_heartbeat(svc->store, j.id, "w2", LEASE_MS, &r), BCD_ESTATE);
    ck_assert_str_eq(svc->store->err.code, "job_lease_lost");
    ck_assert_int_eq(bcd__store_job_complete(svc->store, j.id, "w2", &r), BCD_ESTATE);
    ck_assert_int_eq(bcd__store_job_fail(svc->store, j.id, "w2", "x", "y", -1, &r), BCD_ESTATE);
    SOK(bcd__store_job_get(svc->store, j.id, &r));
    ck_assert_str_eq(r.status, "running");
    ck_assert_str_eq(r.worker_id, "w1");

    /* renewals keep it: 8 × 250 ms > the lease */
    for (int i = 0; i < 8; i++) {
        sleep_ms(250);
        SOK(bcd__store_job_heartbeat(svc->store, j.id, "w1", LEASE_MS, &r));
        SOK(bcd__store_job_claim(svc->store, "w2", LEASE_MS, &r, &claimed, &wait));
        ck_assert(!claimed);
    }

    /* w1 goes silent: after the lease, w2 takes the job over */
    sleep_ms(LEASE_MS + 100);
    SOK(bcd__store_job_claim(svc->store, "w2", 60000, &r, &claimed, &wait));
    ck_assert(claimed);
    ck_assert_str_eq(r.id, j.id);
    ck_assert_str_eq(r.worker_id, "w2");
    ck_assert_int_eq(r.attempts, 2);
    ck_assert_str_eq(r.error_code, "lease_expired");
    ck_assert_ptr_nonnull(strstr(r.error, "w1"));

    /* the late worker can record nothing; the holder completes once */
    ck_assert_int_eq(bcd__store_job_heartbeat(svc->store, j.id, "w1", LEASE_MS, &r), BCD_ESTATE);
    ck_assert_int_eq(bcd__store_job_complete(svc->store, j.id, "w1", &r), BCD_ESTATE);
    SOK(bcd__store_job_complete(svc->store, j.id, "w2", &r));
    ck_assert_str_eq(r.status, "done");
    ck_assert_str_eq(r.error, "");
    ck_assert_int_eq(strlen(r.finished_at), 27);
    ck_assert_int_eq(bcd__store_job_complete(svc->store, j.id, "w2", &r), BCD_ESTATE); /* exactly once */

    /* empty queue: wait -1 */
    SOK(bcd__store_job_claim(svc->store, "w3", 400, &r, &claimed, &wait));
    ck_assert(!claimed);
    ck_assert_int_eq(wait, -1);
    ck_assert_int_eq(bcd__store_job_claim(svc->store, "", 400, &r, &claimed, &wait), BCD_EINVAL);
    ck_assert_int_eq(bcd__store_job_claim(svc->store, "w3", 0, &r, &claimed, &wait), BCD_EINVAL);
}
END_TEST

START_TEST(test_store_job_retries_are_bounded_with_backoff_and_keep_the_error)
{
    char sid[37], sid2[37];
    make_session(sid, "alice", 3, 1, true);
    make_session(sid2, "alice", 3, 2, true);
    struct bcd__job_row j, r;
    bool created = false, claimed = false;
    int64_t wait = 0;
    SOK(bcd__store_job_enqueue(svc->store, sid, "alice", NULL, 3, &j, &created));
    for (int attempt = 1; attempt <= 3; attempt++) {
        SOK(bcd__store_job_claim(svc->store, "w1", 60000, &r, &claimed, &wait));
        ck_assert(claimed);
        ck_assert_int_eq(r.attempts, attempt);
        char msg[64];
        snprintf(msg, sizeof msg, "disk hiccup %d", attempt);
        SOK(bcd__store_job_fail(svc->store, j.id, "w1", "store_io_error", msg, 300, &r));
        ck_assert_str_eq(r.error_code, "store_io_error");
        ck_assert_str_eq(r.error, msg);
        if (attempt < 3) {
            ck_assert_str_eq(r.status, "queued");
            ck_assert_str_eq(r.finished_at, "");
            /* backoff: not claimable before run_after */
            SOK(bcd__store_job_claim(svc->store, "w1", 60000, &r, &claimed, &wait));
            ck_assert(!claimed);
            /* the rest of the backoff (how much is left depends on how busy the machine is) */
            ck_assert_msg(wait > 0 && wait <= 300, "wait %lld", (long long)wait);
            sleep_ms((int)wait + 20);
        } else {
            /* the last attempt: failed for good, error kept */
            ck_assert_str_eq(r.status, "failed");
            ck_assert_int_eq(strlen(r.finished_at), 27);
        }
    }
    SOK(bcd__store_job_get(svc->store, j.id, &r));
    ck_assert_str_eq(r.status, "failed");
    ck_assert_int_eq(r.attempts, 3);
    ck_assert_str_eq(r.error, "disk hiccup 3");
    SOK(bcd__store_job_claim(svc->store, "w1", 60000, &r, &claimed, &wait));
    ck_assert(!claimed);
    ck_assert_int_eq(wait, -1);

    /* a permanent failure (retry < 0) fails at once */
    SOK(bcd__store_job_enqueue(svc->store, sid2, "alice", NULL, 3, &j, &created));
    SOK(bcd__store_job_claim(svc->store, "w1", 60000, &r, &claimed, &wait));
    SOK(bcd__store_job_fail(svc->store, j.id, "w1", "image_corrupt", "cannot be decoded", -1, &r));
    ck_assert_str_eq(r.status, "failed");
    ck_assert_int_eq(r.attempts, 1);

    /* a worker that dies on the last attempt: failed as lease_expired, not run again */
    SOK(bcd__store_job_enqueue(svc->store, sid2, "alice", NULL, 1, &j, &created));
    ck_assert(created);
    SOK(bcd__store_job_claim(svc->store, "w1", 100, &r, &claimed, &wait));
    ck_assert(claimed);
    sleep_ms(150);
    SOK(bcd__store_job_claim(svc->store, "w2", 100, &r, &claimed, &wait));
    ck_assert(!claimed);
    ck_assert_int_eq(wait, -1);
    SOK(bcd__store_job_get(svc->store, j.id, &r));
    ck_assert_str_eq(r.status, "failed");
    ck_assert_str_eq(r.error_code, "lease_expired");
    ck_assert_ptr_nonnull(strstr(r.error, "w1"));
}
END_TEST

START_TEST(test_store_job_claim_is_atomic_under_injected_failures)
{
    char sid[37];
    make_session(sid, "alice", 3, 1, true);
    struct bcd__job_row j, r;
    bool created = false, claimed = false;
    int64_t wait = 0;
    SOK(bcd__store_job_enqueue(svc->store, sid, "alice", NULL, 0, &j, &created));
    /* every write of the claim is a failure point; each failure leaves the job queued */
    int failures = 0;
    for (int n = 0; n < 10; n++) {
        bcd__store_local_fail_after(svc->store, n, 0);
        bcd_status st = bcd__store_job_claim(svc->store, "w1", 60000, &r, &claimed, &wait);
        bcd__store_local_fail_after(svc->store, -1, 0);
        if (st == BCD_OK) {
            ck_assert(claimed);
            break;
        }
        failures++;
        ck_assert_int_eq(st, BCD_EIO);
        SOK(bcd__store_job_get(svc->store, j.id, &r));
        ck_assert_str_eq(r.status, "queued");
        ck_assert_int_eq(r.attempts, 0);
    }
    ck_assert_int_ge(failures, 2);
    SOK(bcd__store_job_get(svc->store, j.id, &r));
    ck_assert_str_eq(r.status, "running");
    ck_assert_int_eq(r.attempts, 1);
}
END_TEST

START_TEST(test_store_schema_migrates_to_the_job_queue)
{
    char dir[200];
    snprintf(dir, sizeof dir, "%s/old", tmpdir);
    bcd_store *s = NULL;
    bcd_error err;
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(bcd__store_local_open(&s, ctx, dir, 2, &err), BCD_OK);
    struct bcd__job_row r;
    bool created = false;
    ck_assert_int_ne(bcd__store_job_get(s, "00000000-0000-4000-8000-000000000000", &r), BCD_OK);
    bcd__store_close(s);
    s = NULL;
    ck_assert_int_eq(bcd__store_local_open(&s, ctx, dir, 0, &err), BCD_OK);
    ck_assert_int_ge(bcd__store_local_schema_version(), 3);
    struct bcd__session_row srow;
    ck_assert_int_eq(bcd__store_session_create(s, "alice", &srow), BCD_OK);
    ck_assert_int_eq(bcd__store_job_enqueue(s, srow.id, "alice", NULL, 0, &r, &created), BCD_OK);
    ck_assert(created);
    bcd__store_close(s);
}
END_TEST

/* Helper mode of this program (main): print the number of sessions in the database at
 * argv[2] read through a connection of a fresh process, which then closes it as its last
 * one (and so checkpoints and removes the WAL if it thinks nobody else uses it). */
static int count_sessions_main(const char *db_path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    long long n = -1;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "SELECT count(*) FROM sessions", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    printf("%lld\n", n);
    return n >= 0 ? 0 : 1;
}

/* Count the sessions from another process (exec'd: SQLite state must not cross fork). */
static long long sessions_seen_by_another_process(void)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "/proc/%ld/exe --count-sessions %s/bcd.sqlite3", (long)getpid(), datadir);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    long long n = -2;
    ck_assert_int_eq(fscanf(p, "%lld", &n), 1);
    ck_assert_int_eq(pclose(p), 0);
    return n;
}

START_TEST(test_store_handles_in_one_process_keep_each_others_locks)
{
    /* A worker holds several handles on one database (its service, the heartbeat
     * helper). Opening one must not drop the SQLite locks of the others: else another
     * process closing its connection deletes the WAL under them and their writes vanish. */
    char *out = NULL;
    OK(bcd_session_create(&out, svc, "alice"));
    bcd_free(out);
    bcd_service *second = NULL;
    ck_assert_int_eq(bcd_service_open(&second, ctx), BCD_OK);
    ck_assert_int_eq(sessions_seen_by_another_process(), 1);
    OK(bcd_session_create(&out, svc, "alice"));
    bcd_free(out);
    ck_assert_int_eq(bcd_session_create(&out, second, "bob"), BCD_OK);
    bcd_free(out);
    ck_assert_int_eq(sessions_seen_by_another_process(), 3);
    char wal[256];
    snprintf(wal, sizeof wal, "%s/bcd.sqlite3-wal", datadir);
    ck_assert_int_eq(access(wal, F_OK), 0);
    bcd_service_free(second);
}
END_TEST

/* ---- service: queueing and status ------------------------------------------------------ */

START_TEST(test_analyze_async_validates_like_analyze_and_is_idempotent)
{
    char done[37], open_[37], two[37], job[37], job2[37], *out = NULL;
    make_session(done, "alice", 3, 1, true);
    make_session(open_, "alice", 3, 2, false);
    make_session(two, "alice", 2, 3, false);
    FAILS(bcd_session_analyze_async(&out, svc, "alice", open_, NULL), BCD_ESTATE, "session_not_completed");
    FAILS(bcd_session_analyze_async(&out, svc, "bob", done, NULL), BCD_ENOTFOUND, "session_not_found");
    FAILS(bcd_session_analyze_async(&out, svc, "alice", "nope", NULL), BCD_EINVAL, "invalid_session_id");
    FAILS(bcd_session_analyze_async(&out, svc, "", done, NULL), BCD_EINVAL, "invalid_user_id");
    FAILS(bcd_session_analyze_async(NULL, svc, "alice", done, NULL), BCD_EINVAL, "invalid_argument");
    ck_assert_int_eq(bcd_session_analyze_async(&out, NULL, "alice", done, NULL), BCD_EINVAL);
    /* the angle rule: a session completed with 3 angles that lost one cannot happen
     * through the API, so check it on the raw rows */
    raw_sql("UPDATE sessions SET status = 'completed'");
    FAILS(bcd_session_analyze_async(&out, svc, "alice", two, NULL), BCD_ESTATE, "insufficient_angles");
    ck_assert_ptr_null(out);
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM jobs"), 0);

    ck_assert(enqueue(job, "alice", done));
    ck_assert(!enqueue(job2, "alice", done));
    ck_assert_str_eq(job, job2);
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM jobs"), 1);
    OK(bcd_session_analyze_async(&out, svc, "alice", done, NULL));
    cJSON *j = parse(out);
    ck_assert_str_eq(str(j, "job_status"), "queued");
    ck_assert_int_eq(strlen(str(j, "created_at")), 27);
    cJSON_Delete(j);
    /* queuing analyzes nothing */
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM session_analysis"), 0);
}
END_TEST

START_TEST(test_job_status_reports_the_callers_jobs_only)
{
    char sid[37], job[37], *out = NULL;
    make_session(sid, "alice", 3, 1, true);
    FAILS(bcd_job_status_for_session(&out, svc, "alice", sid), BCD_ENOTFOUND, "job_not_found");
    enqueue(job, "alice", sid);
    cJSON *j = job_status("alice", job);
    ck_assert_str_eq(str(j, "job_id"), job);
    ck_assert_str_eq(str(j, "session_id"), sid);
    ck_assert_str_eq(str(j, "status"), "queued");
    ck_assert_int_eq((int)num(j, "attempts"), 0);
    ck_assert_int_eq((int)num(j, "max_attempts"), BCD_JOB_MAX_ATTEMPTS);
    ck_assert(cJSON_IsNull(at(j, "error")));
    ck_assert(cJSON_IsNull(at(j, "started_at")));
    ck_assert(cJSON_IsNull(at(j, "finished_at")));
    ck_assert(cJSON_IsString(at(j, "next_attempt_at")));
    ck_assert(cJSON_IsNull(at(j, "lease_expires_at")));
    ck_assert(cJSON_IsFalse(at(j, "analysis_available")));
    at(j, "created_at");
    at(j, "updated_at");
    cJSON_Delete(j);

    /* upper-case id: the same job; another user: not found, like a missing job */
    char upper[37];
    for (int i = 0; i < 37; i++)
        upper[i] = (char)(job[i] >= 'a' && job[i] <= 'f' ? job[i] - 'a' + 'A' : job[i]);
    cJSON_Delete(job_status("alice", upper));
    FAILS(bcd_job_status(&out, svc, "bob", job), BCD_ENOTFOUND, "job_not_found");
    FAILS(bcd_job_status(&out, svc, "alice", "00000000-0000-4000-8000-000000000000"), BCD_ENOTFOUND,
          "job_not_found");
    FAILS(bcd_job_status(&out, svc, "alice", "123"), BCD_EINVAL, "invalid_job_id");
    FAILS(bcd_job_status_for_session(&out, svc, "bob", sid), BCD_ENOTFOUND, "session_not_found");
    OK(bcd_job_status_for_session(&out, svc, "alice", sid));
    j = parse(out);
    ck_assert_str_eq(str(j, "job_id"), job);
    cJSON_Delete(j);
}
END_TEST

/* ---- worker ----------------------------------------------------------------------------- */

/* Progress recorder: counts events per stage and per job (serialized by the worker). */
#define MAX_SEEN 64
struct seen {
    int done, failed, retry, lost, analyzed, claimed, idle, stopping, store_error;
    char jobs[MAX_SEEN][37];
    int job_done[MAX_SEEN];
    int workers_seen; /* bit mask of worker indexes that ran a job */
    volatile sig_atomic_t *stop_after_claim;
    char last_message[600];
    int in_callback; /* serialization check */
    bool overlapped;
};

static void record_progress(void *user, const bcd_progress_event *ev)
{
    struct seen *s = user;
    if (s->in_callback++)
        s->overlapped = true;
    ck_assert_int_eq(ev->version, BCD_PROGRESS_EVENT_VERSION);
    if (strcmp(ev->stage, "done") == 0) {
        s->done++;
        int k = 0;
        while (k < MAX_SEEN && s->jobs[k][0] && strcmp(s->jobs[k], ev->job_id) != 0)
            k++;
        ck_assert_int_lt(k, MAX_SEEN);
        snprintf(s->jobs[k], 37, "%s", ev->job_id);
        s->job_done[k]++;
    } else if (strcmp(ev->stage, "failed") == 0) {
        s->failed++;
    } else if (strcmp(ev->stage, "retry") == 0) {
        s->retry++;
    } else if (strcmp(ev->stage, "lease_lost") == 0) {
        s->lost++;
    } else if (strcmp(ev->stage, "analyzed") == 0) {
        s->analyzed++;
        ck_assert_ptr_nonnull(ev->job_id);
    } else if (strcmp(ev->stage, "claimed") == 0) {
        s->claimed++;
        ck_assert_int_ge(ev->worker, 0);
        s->workers_seen |= 1 << ev->worker;
        if (s->stop_after_claim)
            *s->stop_after_claim = 1;
    } else if (strcmp(ev->stage, "idle") == 0) {
        s->idle++;
    } else if (strcmp(ev->stage, "stopping") == 0) {
        s->stopping++;
    } else if (strcmp(ev->stage, "store_error") == 0) {
        s->store_error++;
    }
    if (ev->message)
        snprintf(s->last_message, sizeof s->last_message, "%s", ev->message);
    ck_assert(ev->elapsed_s >= 0);
    s->in_callback--;
}

START_TEST(test_worker_runs_a_job_through_the_synchronous_analysis)
{
    char sid[37], job[37], *out = NULL;
    make_session(sid, "alice", 6, 1, true);
    enqueue(job, "alice", sid);
    struct seen seen;
    memset(&seen, 0, sizeof seen);
    bcd_worker_options o = BCD_WORKER_OPTIONS_INIT;
    o.drain = 1;
    o.progress = record_progress;
    o.progress_user = &seen;
    OK(bcd_worker_run(&out, svc, &o));
    cJSON *sum = parse(out);
    ck_assert_int_eq((int)num(sum, "jobs_done"), 1);
    ck_assert_int_eq((int)num(sum, "jobs_failed"), 0);
    cJSON_Delete(sum);
    ck_assert_ptr_null(bcd_service_last_error(svc));
    ck_assert_int_eq(seen.done, 1);
    ck_assert_int_eq(seen.analyzed, 1);
    ck_assert_int_eq(seen.stopping, 1);

    cJSON *j = job_status("alice", job);
    ck_assert_str_eq(str(j, "status"), "done");
    ck_assert_int_eq((int)num(j, "attempts"), 1);
    ck_assert(cJSON_IsTrue(at(j, "analysis_available")));
    ck_assert(cJSON_IsString(at(j, "finished_at")));
    cJSON_Delete(j);

    /* the stored result is exactly what a synchronous analysis stores */
    OK(bcd_analysis_get(&out, svc, "alice", sid));
    cJSON *async_doc = parse(out);
    char *sync_out = NULL;
    OK(bcd_session_analyze(&sync_out, svc, "alice", sid, NULL));
    bcd_free(sync_out);
    OK(bcd_analysis_get(&out, svc, "alice", sid));
    cJSON *sync_doc = parse(out);
    const cJSON *a = at(at(async_doc, "data"), "session_analysis");
    const cJSON *b = at(at(sync_doc, "data"), "session_analysis");
    ck_assert_double_eq(num(a, "confidence"), num(b, "confidence"));
    ck_assert_double_eq(num(a, "overall_change_score"), num(b, "overall_change_score"));
    ck_assert_str_eq(str(a, "model"), str(b, "model"));
    ck_assert_int_eq(cJSON_GetArraySize(at(a, "per_angle")), 6);
    cJSON_Delete(async_doc);
    cJSON_Delete(sync_doc);
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM session_analysis"), 1);
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM angle_embeddings"), 6);

    /* the progress callback of svc was restored */
    ck_assert_ptr_null(svc->progress);
}
END_TEST

START_TEST(test_four_workers_run_forty_jobs_exactly_once)
{
    enum { N = 40 };
    char sids[N][37], jobs[N][37];
    for (int i = 0; i < N; i++) {
        char user[16];
        snprintf(user, sizeof user, "user%d", i % 4);
        make_session(sids[i], user, 3, (unsigned)(i % 5) + 1, true);
        enqueue(jobs[i], user, sids[i]);
    }
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM jobs WHERE status = 'queued'"), N);
    struct seen seen;
    memset(&seen, 0, sizeof seen);
    bcd_worker_options o = BCD_WORKER_OPTIONS_INIT;
    o.concurrency = 4;
    o.drain = 1;
    o.poll_ms = 50;
    o.progress = record_progress;
    o.progress_user = &seen;
    char *out = NULL;
    OK(bcd_worker_run(&out, svc, &o));
    cJSON *sum = parse(out);
    ck_assert_int_eq((int)num(sum, "jobs_done"), N);
    ck_assert_int_eq((int)num(sum, "concurrency"), 4);
    cJSON_Delete(sum);

    ck_assert(!seen.overlapped);
    ck_assert_int_eq(seen.claimed, N);
    ck_assert_int_eq(seen.done, N);
    ck_assert_int_eq(seen.analyzed, N); /* analyses saved */
    ck_assert_int_eq(seen.failed + seen.retry + seen.lost, 0);
    for (int i = 0; i < N; i++) {
        int k = 0;
        while (k < MAX_SEEN && strcmp(seen.jobs[k], jobs[i]) != 0)
            k++;
        ck_assert_msg(k < MAX_SEEN, "job %d never completed", i);
        ck_assert_int_eq(seen.job_done[k], 1);
    }
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM jobs WHERE status = 'done' AND attempts = 1"), N);
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM session_analysis"), N);
    long long workers = raw_sql("SELECT count(DISTINCT worker_id) FROM jobs");
    ck_assert_msg(workers >= 2 && workers <= 4, "%lld workers ran jobs", workers);
    ck_assert_int_eq(seen.workers_seen & ~0xf, 0);
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM angle_analysis"), 3 * N);
}
END_TEST

START_TEST(test_corrupt_image_job_fails_at_once_without_partial_analysis)
{
    char sid[37], job[37], path[300], *out = NULL;
    make_session(sid, "alice", 2, 1, false);
    snprintf(path, sizeof path, "%s/broken-up.png", tmpdir);
    write_png(path, 3, 1);
    OK(bcd_image_register(&out, svc, "alice", sid, "up", path, -1));
    bcd_free(out);
    OK(bcd_session_complete(&out, svc, "alice", sid));
    bcd_free(out);
    enqueue(job, "alice", sid);
    /* corrupt after queueing: the worker finds out */
    FILE *f = fopen(path, "r+b");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(ftruncate(fileno(f), 120), 0);
    fclose(f);

    struct seen seen;
    memset(&seen, 0, sizeof seen);
    bcd_worker_options o = BCD_WORKER_OPTIONS_INIT;
    o.drain = 1;
    o.progress = record_progress;
    o.progress_user = &seen;
    OK(bcd_worker_run(NULL, svc, &o));
    ck_assert_ptr_null(bcd_service_last_error(svc)); /* a failed job is not a failed worker */
    ck_assert_int_eq(seen.failed, 1);
    ck_assert_int_eq(seen.retry, 0);
    cJSON *j = job_status("alice", job);
    ck_assert_str_eq(str(j, "status"), "failed");
    ck_assert_int_eq((int)num(j, "attempts"), 1); /* not retried: it cannot get better */
    ck_assert_str_eq(str(j, "error_code"), "image_corrupt");
    ck_assert_ptr_nonnull(strstr(str(j, "error"), "image up #0"));
    ck_assert_ptr_nonnull(strstr(str(j, "error"), "cannot be decoded"));
    ck_assert(cJSON_IsFalse(at(j, "analysis_available")));
    cJSON_Delete(j);
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM session_analysis"), 0);
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM angle_analysis"), 0);
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM angle_embeddings"), 0);
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM session_embeddings"), 0);
    FAILS(bcd_analysis_get(&out, svc, "alice", sid), BCD_ENOTFOUND, "analysis_not_found");
}
END_TEST

START_TEST(test_worker_retries_transient_failures_then_fails_with_the_error)
{
    char sid[37], job[37], dir[300], *out = NULL;
    make_session(sid, "alice", 2, 1, false);
    /* a registered "image" that cannot be read (a folder): an I/O failure, retried */
    snprintf(dir, sizeof dir, "%s/not-a-file.png", tmpdir);
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    OK(bcd_image_register(&out, svc, "alice", sid, "up", dir, -1));
    bcd_free(out);
    OK(bcd_session_complete(&out, svc, "alice", sid));
    bcd_free(out);
    enqueue(job, "alice", sid);

    struct seen seen;
    memset(&seen, 0, sizeof seen);
    bcd_worker_options o = BCD_WORKER_OPTIONS_INIT;
    o.drain = 1;
    o.retry_base_ms = 100; /* backoff 100 ms, then 200 ms */
    o.poll_ms = 20;
    o.progress = record_progress;
    o.progress_user = &seen;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    OK(bcd_worker_run(&out, svc, &o));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    cJSON *sum = parse(out);
    ck_assert_int_eq((int)num(sum, "jobs_retried"), 2);
    ck_assert_int_eq((int)num(sum, "jobs_failed"), 1);
    cJSON_Delete(sum);
    ck_assert_int_eq(seen.claimed, 3);
    ck_assert_int_eq(seen.retry, 2);
    ck_assert_int_eq(seen.failed, 1);
    ck_assert_msg(took >= 0.3, "backoff not respected: %.3f s", took);

    cJSON *j = job_status("alice", job);
    ck_assert_str_eq(str(j, "status"), "failed");
    ck_assert_int_eq((int)num(j, "attempts"), 3);
    ck_assert_str_eq(str(j, "error_code"), "image_file_unreadable");
    ck_assert_ptr_nonnull(strstr(str(j, "error"), "not a regular file"));
    cJSON_Delete(j);
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM session_analysis"), 0);
}
END_TEST

START_TEST(test_worker_stops_after_the_current_job_when_asked)
{
    char sids[3][37], jobs[3][37];
    for (int i = 0; i < 3; i++) {
        make_session(sids[i], "alice", 3, (unsigned)i + 1, true);
        enqueue(jobs[i], "alice", sids[i]);
    }
    volatile sig_atomic_t stop = 0;
    struct seen seen;
    memset(&seen, 0, sizeof seen);
    seen.stop_after_claim = &stop; /* "SIGTERM" arrives while the first job runs */
    bcd_worker_options o = BCD_WORKER_OPTIONS_INIT;
    o.stop = &stop;
    o.progress = record_progress;
    o.progress_user = &seen;
    char *out = NULL;
    OK(bcd_worker_run(&out, svc, &o)); /* no drain: only the flag ends it */
    cJSON *sum = parse(out);
    ck_assert(cJSON_IsTrue(at(sum, "stopped")));
    ck_assert_int_eq((int)num(sum, "jobs_done"), 1);
    cJSON_Delete(sum);
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM jobs WHERE status = 'done'"), 1);
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM jobs WHERE status = 'queued'"), 2);
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM jobs WHERE status = 'running'"), 0);

    /* an idle worker stops too (within the poll); and with max_jobs it returns by itself */
    stop = 0;
    seen.stop_after_claim = NULL;
    o.max_jobs = 2;
    o.concurrency = 2;
    OK(bcd_worker_run(NULL, svc, &o));
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM jobs WHERE status = 'done'"), 3);
}
END_TEST

START_TEST(test_worker_rides_out_a_queue_failure)
{
    char sid[37], job[37];
    make_session(sid, "alice", 3, 1, true);
    enqueue(job, "alice", sid);
    struct seen seen;
    memset(&seen, 0, sizeof seen);
    bcd_worker_options o = BCD_WORKER_OPTIONS_INIT;
    o.drain = 1;
    o.progress = record_progress;
    o.progress_user = &seen;
    /* the first claim's first write fails (I/O error, rolled back): retried after a pause */
    bcd__store_local_fail_after(svc->store, 0, 0);
    OK(bcd_worker_run(NULL, svc, &o));
    ck_assert_int_eq(seen.store_error, 1);
    ck_assert_ptr_nonnull(strstr(seen.last_message, "simulated I/O failure"));
    ck_assert_int_eq(seen.done, 1);
    cJSON *j = job_status("alice", job);
    ck_assert_str_eq(str(j, "status"), "done");
    ck_assert_int_eq((int)num(j, "attempts"), 1);
    cJSON_Delete(j);
}
END_TEST

START_TEST(test_worker_options_are_validated)
{
    bcd_worker_options o;
    ck_assert_int_eq(bcd_worker_options_init(&o, 99), BCD_EINVAL);
    ck_assert_int_eq(bcd_worker_options_init(NULL, BCD_WORKER_OPTIONS_VERSION), BCD_EINVAL);
    ck_assert_int_eq(bcd_worker_options_init(&o, BCD_WORKER_OPTIONS_VERSION), BCD_OK);
    ck_assert_int_eq(o.concurrency, 1);
    ck_assert_int_eq(o.lease_seconds, 60);
    o.version = 7;
    FAILS(bcd_worker_run(NULL, svc, &o), BCD_EINVAL, "invalid_options");
    bcd_worker_options_init(&o, BCD_WORKER_OPTIONS_VERSION);
    o.heartbeat_seconds = 60;
    FAILS(bcd_worker_run(NULL, svc, &o), BCD_EINVAL, "invalid_options");
    o.heartbeat_seconds = 0;
    o.concurrency = 1000;
    FAILS(bcd_worker_run(NULL, svc, &o), BCD_EINVAL, "invalid_options");
    ck_assert_int_eq(bcd_worker_run(NULL, NULL, &o), BCD_EINVAL);
    /* an empty queue with drain returns at once */
    o.concurrency = 3;
    o.drain = 1;
    OK(bcd_worker_run(NULL, svc, &o));
}
END_TEST

/* The child of the SIGKILL test: a worker of its own that reports through the pipe when it
 * is in the middle of its job (embedding), then hangs there, lease held, until killed. */
static int kill_pipe = -1;

static void hang_mid_job(void *user, const bcd_progress_event *ev)
{
    (void)user;
    if (strcmp(ev->stage, "embed") == 0) {
        char c = 'x';
        if (write(kill_pipe, &c, 1) != 1)
            _exit(3);
        for (;;)
            pause();
    }
}

static void child_worker(void)
{
    bcd_ctx *c = NULL;
    bcd_service *s = NULL;
    if (bcd_ctx_new(&c) != BCD_OK || bcd_ctx_set(c, "BCD_DATA_DIR", datadir) != BCD_OK ||
        bcd_service_open(&s, c) != BCD_OK)
        _exit(2);
    bcd_worker_options o = BCD_WORKER_OPTIONS_INIT;
    o.lease_seconds = 1;
    o.drain = 1;
    o.progress = hang_mid_job;
    bcd_worker_run(NULL, s, &o);
    _exit(4); /* never reached: the job hangs */
}

START_TEST(test_worker_killed_mid_job_loses_nothing)
{
    char sid[37], job[37], *out = NULL;
    make_session(sid, "alice", 6, 1, true);
    enqueue(job, "alice", sid);
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        kill_pipe = fds[1];
        child_worker();
    }
    close(fds[1]);
    struct pollfd pfd = {fds[0], POLLIN, 0};
    ck_assert_msg(poll(&pfd, 1, 60000) == 1, "the child worker never reached the middle of the job");
    char c = 0;
    ck_assert_int_eq(read(fds[0], &c, 1), 1);
    close(fds[0]);

    /* the child holds the lease now (and renews it): kill it without warning */
    cJSON *j = job_status("alice", job);
    ck_assert_str_eq(str(j, "status"), "running");
    ck_assert_int_eq((int)num(j, "attempts"), 1);
    cJSON_Delete(j);
    sleep_ms(1200); /* longer than the lease: the heartbeats keep it */
    j = job_status("alice", job);
    ck_assert_str_eq(str(j, "status"), "running");
    cJSON_Delete(j);
    bool claimed = true;
    int64_t wait = 0;
    struct bcd__job_row r;
    SOK(bcd__store_job_claim(svc->store, "thief", 1000, &r, &claimed, &wait));
    ck_assert(!claimed);
    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM session_analysis"), 0);

    /* another worker takes the job over once the lease ran out and completes it */
    struct seen seen;
    memset(&seen, 0, sizeof seen);
    bcd_worker_options o = BCD_WORKER_OPTIONS_INIT;
    o.lease_seconds = 2;
    o.drain = 1; /* waits for the dead worker's lease: the job is still "running" */
    o.poll_ms = 50;
    o.progress = record_progress;
    o.progress_user = &seen;
    OK(bcd_worker_run(NULL, svc, &o));
    ck_assert_int_eq(seen.done, 1);
    j = job_status("alice", job);
    ck_assert_str_eq(str(j, "status"), "done");
    ck_assert_int_eq((int)num(j, "attempts"), 2);
    ck_assert(cJSON_IsNull(at(j, "error")));
    cJSON_Delete(j);
    OK(bcd_analysis_get(&out, svc, "alice", sid));
    bcd_free(out);
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM session_analysis"), 1);
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM angle_analysis"), 6);
}
END_TEST

/* ---- progress of a synchronous analysis --------------------------------------------------- */

struct stages {
    char names[32][16];
    size_t done[32], total[32];
    int n;
    const char *session_id; /* every event names this session */
};

static void record_stage(void *user, const bcd_progress_event *ev)
{
    struct stages *s = user;
    ck_assert_int_eq(ev->worker, -1);
    ck_assert_ptr_null(ev->job_id);
    ck_assert_ptr_nonnull(ev->session_id);
    ck_assert_str_eq(ev->session_id, s->session_id);
    if (s->n < 32) {
        snprintf(s->names[s->n], 16, "%s", ev->stage);
        s->done[s->n] = ev->done;
        s->total[s->n] = ev->total;
        s->n++;
    }
}

START_TEST(test_analyze_reports_progress_when_asked)
{
    char sid[37], *out = NULL;
    make_session(sid, "alice", 6, 1, true);
    struct stages s;
    memset(&s, 0, sizeof s);
    s.session_id = sid;
    ck_assert_int_eq(bcd_service_set_progress(NULL, record_stage, &s), BCD_EINVAL);
    OK(bcd_service_set_progress(svc, record_stage, &s));
    OK(bcd_session_analyze(&out, svc, "alice", sid, NULL));
    bcd_free(out);
    ck_assert_int_ge(s.n, 5);
    ck_assert_str_eq(s.names[0], "read");
    ck_assert_int_eq(s.done[0], 6);
    ck_assert_int_eq(s.total[0], 6);
    ck_assert_str_eq(s.names[1], "embed");
    ck_assert_str_eq(s.names[s.n - 2], "save");
    ck_assert_str_eq(s.names[s.n - 1], "analyzed");
    ck_assert_int_eq(s.done[s.n - 1], 1);
    /* off again */
    OK(bcd_service_set_progress(svc, NULL, NULL));
    s.n = 0;
    OK(bcd_session_analyze(&out, svc, "alice", sid, NULL));
    bcd_free(out);
    ck_assert_int_eq(s.n, 0);
}
END_TEST

static Suite *jobs_suite(void)
{
    Suite *s = suite_create("jobs");
    TCase *tc = tcase_create("local");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_store_job_enqueue_is_idempotent_while_queued_or_running);
    tcase_add_test(tc, test_store_job_claim_leases_and_takes_over_expired_leases);
    tcase_add_test(tc, test_store_job_retries_are_bounded_with_backoff_and_keep_the_error);
    tcase_add_test(tc, test_store_job_claim_is_atomic_under_injected_failures);
    tcase_add_test(tc, test_store_schema_migrates_to_the_job_queue);
    tcase_add_test(tc, test_store_handles_in_one_process_keep_each_others_locks);
    tcase_add_test(tc, test_analyze_async_validates_like_analyze_and_is_idempotent);
    tcase_add_test(tc, test_job_status_reports_the_callers_jobs_only);
    tcase_add_test(tc, test_worker_runs_a_job_through_the_synchronous_analysis);
    tcase_add_test(tc, test_four_workers_run_forty_jobs_exactly_once);
    tcase_add_test(tc, test_corrupt_image_job_fails_at_once_without_partial_analysis);
    tcase_add_test(tc, test_worker_retries_transient_failures_then_fails_with_the_error);
    tcase_add_test(tc, test_worker_stops_after_the_current_job_when_asked);
    tcase_add_test(tc, test_worker_rides_out_a_queue_failure);
    tcase_add_test(tc, test_worker_options_are_validated);
    tcase_add_test(tc, test_worker_killed_mid_job_loses_nothing);
    tcase_add_test(tc, test_analyze_reports_progress_when_asked);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--count-sessions") == 0)
        return count_sessions_main(argv[2]);
    SRunner *sr = srunner_create(jobs_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
