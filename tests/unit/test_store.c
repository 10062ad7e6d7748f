/* Unit tests of lib/store: the local backend (SQLite + blob folder). */
#include <check.h>
#include <dirent.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "bcd.h"
#include "core/core.h"
#include "store/store.h"

static char tmpdir[64];
static char datadir[128];
static bcd_ctx *ctx;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/bcd-store-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    snprintf(datadir, sizeof datadir, "%s/a/b/data", tmpdir);
    ck_assert_int_eq(bcd_ctx_new(&ctx), BCD_OK);
    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_DATA_DIR", datadir), BCD_OK);
}

static void teardown(void)
{
    bcd_ctx_free(ctx);
    ctx = NULL;
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static bcd_store *open_store(int version)
{
    bcd_store *s = NULL;
    bcd_error err;
    memset(&err, 0, sizeof err);
    bcd_status st = bcd__store_local_open(&s, ctx, NULL, version, &err);
    ck_assert_msg(st == BCD_OK, "open: %s", err.message);
    bcd__error_clear(&err);
    return s;
}

/* Run one SQL statement on the database file directly; returns the first column of
 * the first row as an integer (or -1 if no row). */
static long long raw_sql(const char *sql)
{
    char path[256];
    snprintf(path, sizeof path, "%s/bcd.sqlite3", datadir);
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
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

static void image_in(struct bcd__image_row *r, const char *session, const char *angle, const char *path, int idx)
{
    memset(r, 0, sizeof *r);
    snprintf(r->session_id, sizeof r->session_id, "%s", session);
    snprintf(r->angle, sizeof r->angle, "%s", angle);
    snprintf(r->storage_path, sizeof r->storage_path, "%s", path);
    r->order_index = idx;
    r->size_bytes = -1;
}

/* An analysis with the first n angles, vectors filled from seed. */
static void make_analysis(struct bcd__analysis *a, const char *session, size_t n, float seed, const char *model)
{
    memset(a, 0, sizeof *a);
    snprintf(a->session_id, sizeof a->session_id, "%s", session);
    snprintf(a->model, sizeof a->model, "%s", model);
    a->dim = 4;
    a->overall_change_score = seed / 10.0;
    a->confidence = 0.5;
    a->summary = strdup("summary");
    a->details_json = strdup("{\"k\":1}");
    a->baseline_sessions = (int)seed;
    a->n_angles = n;
    for (size_t i = 0; i < n; i++) {
        snprintf(a->angles[i].angle, sizeof a->angles[i].angle, "%s", bcd__angles[i]);
        a->angles[i].change_score = seed + (double)i / 100.0;
        a->angles[i].summary = strdup(bcd__angles[i]);
        a->angles[i].image_count = 1;
        a->angles[i].quality = 0.75;
        a->angle_vec[i] = malloc(4 * sizeof(float));
        for (int k = 0; k < 4; k++)
            a->angle_vec[i][k] = seed + (float)i + 0.25f * (float)k + 1.0f / 3.0f;
    }
    a->session_vec = malloc(4 * sizeof(float));
    for (int k = 0; k < 4; k++)
        a->session_vec[k] = seed - (float)k * 0.1f + 1e-7f;
}

static void assert_same_analysis(const struct bcd__analysis *x, const struct bcd__analysis *y)
{
    ck_assert_str_eq(x->session_id, y->session_id);
    ck_assert_double_eq(x->overall_change_score, y->overall_change_score);
    ck_assert_str_eq(x->summary, y->summary);
    ck_assert_str_eq(x->model, y->model);
    ck_assert_uint_eq(x->n_angles, y->n_angles);
    for (size_t i = 0; i < x->n_angles; i++) {
        ck_assert_str_eq(x->angles[i].angle, y->angles[i].angle);
        ck_assert_double_eq(x->angles[i].change_score, y->angles[i].change_score);
        ck_assert_str_eq(x->angles[i].summary, y->angles[i].summary);
        ck_assert_ptr_nonnull(y->angle_vec[i]);
        ck_assert_int_eq(memcmp(x->angle_vec[i], y->angle_vec[i], x->dim * sizeof(float)), 0);
    }
    ck_assert_ptr_nonnull(y->session_vec);
    ck_assert_int_eq(memcmp(x->session_vec, y->session_vec, x->dim * sizeof(float)), 0);
}

START_TEST(test_store_local_open_creates_private_layout)
{
    bcd_store *s = open_store(0);
    struct stat st;
    ck_assert_int_eq(stat(datadir, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0700);
    char path[256];
    snprintf(path, sizeof path, "%s/a", tmpdir);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0700);
    snprintf(path, sizeof path, "%s/blobs", datadir);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0700);
    snprintf(path, sizeof path, "%s/bcd.sqlite3", datadir);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    ck_assert_str_eq(bcd__store_local_db_path(s), path);
    ck_assert_int_eq(raw_sql("PRAGMA user_version"), bcd__store_local_schema_version());
    bcd__store_close(s);
    /* WAL is persistent in the file */
    char *mode = NULL;
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *q;
    ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
    mode = strdup((const char *)sqlite3_column_text(q, 0));
    sqlite3_finalize(q);
    sqlite3_close(db);
    ck_assert_str_eq(mode, "wal");
    free(mode);
    bcd__store_close(NULL);
}
END_TEST

START_TEST(test_store_schema_migrates_on_reopen)
{
    ck_assert_int_ge(bcd__store_local_schema_version(), 2);
    bcd_store *s = open_store(1);
    struct bcd__session_row row;
    ck_assert_int_eq(bcd__store_session_create(s, "alice", &row), BCD_OK);
    struct bcd__image_row in, out;
    bool created;
    image_in(&in, row.id, "front", "/x/front.jpg", 0);
    ck_assert_int_eq(bcd__store_image_register(s, &in, &out, &created), BCD_OK);
    bcd__store_close(s);
    ck_assert_int_eq(raw_sql("PRAGMA user_version"), 1);
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM sqlite_master WHERE name = 'angle_embeddings'"), 0);

    s = open_store(0);
    ck_assert_int_eq(raw_sql("PRAGMA user_version"), bcd__store_local_schema_version());
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM sqlite_master WHERE name = 'angle_embeddings'"), 1);
    struct bcd__session_row again;
    ck_assert_int_eq(bcd__store_session_get(s, row.id, &again), BCD_OK);
    ck_assert_str_eq(again.user_id, "alice");
    ck_assert_int_eq(again.image_count, 1);
    /* the migrated store is fully usable */
    struct bcd__analysis a, b;
    bool ow;
    make_analysis(&a, row.id, 1, 1.0f, "m");
    ck_assert_int_eq(bcd__store_analysis_save(s, &a, &ow), BCD_OK);
    ck_assert_int_eq(bcd__store_analysis_get(s, row.id, &b), BCD_OK);
    assert_same_analysis(&a, &b);
    bcd__analysis_clear(&a);
    bcd__analysis_clear(&b);
    bcd__store_close(s);

    /* reopening a current store changes nothing */
    s = open_store(0);
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM sessions"), 1);
    bcd__store_close(s);
}
END_TEST

START_TEST(test_store_refuses_newer_schema_and_foreign_files)
{
    bcd_store *s = open_store(0);
    bcd__store_close(s);
    raw_sql("PRAGMA user_version = 99");
    bcd_error err;
    memset(&err, 0, sizeof err);
    s = NULL;
    ck_assert_int_eq(bcd__store_local_open(&s, ctx, NULL, 0, &err), BCD_EUNSUPPORTED);
    ck_assert_ptr_null(s);
    ck_assert_str_eq(err.code, "store_schema_too_new");
    ck_assert_int_eq(raw_sql("PRAGMA user_version"), 99); /* untouched */
    bcd__error_clear(&err);

    /* a file that is not a database */
    char other[256], path[300];
    snprintf(other, sizeof other, "%s/other", tmpdir);
    ck_assert_int_eq(mkdir(other, 0700), 0);
    snprintf(path, sizeof path, "%s/bcd.sqlite3", other);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < 200; i++)
        fputs("this is not an SQLite database at all. ", f);
    fclose(f);
    ck_assert_int_eq(chmod(path, 0600), 0);
    ck_assert_int_eq(bcd__store_local_open(&s, ctx, other, 0, &err), BCD_EFORMAT);
    ck_assert_str_eq(err.code, "store_corrupt");
    bcd__error_clear(&err);

    /* BCD_STORE=supabase needs its URL and key; opening contacts no server */
    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_STORE", "supabase"), BCD_OK);
    ck_assert_int_eq(bcd__store_open(&s, ctx, &err), BCD_EINVAL);
    ck_assert_str_eq(err.code, "supabase_not_configured");
    bcd__error_clear(&err);
    ck_assert_int_eq(bcd_ctx_set(ctx, "SUPABASE_URL", "http://127.0.0.1:9"), BCD_OK);
    ck_assert_int_eq(bcd_ctx_set(ctx, "SUPABASE_SERVICE_ROLE_KEY", "sb_secret_unit"), BCD_OK);
    ck_assert_int_eq(bcd__store_open(&s, ctx, &err), BCD_OK);
    ck_assert_str_eq(s->ops->name, "supabase");
    bcd__store_close(s);
    ck_assert_int_eq(bcd_ctx_set(ctx, "SUPABASE_URL", NULL), BCD_OK);
    ck_assert_int_eq(bcd_ctx_set(ctx, "SUPABASE_SERVICE_ROLE_KEY", NULL), BCD_OK);
}
END_TEST

START_TEST(test_store_refuses_unknown_schema_versions)
{
    static const char *const damage[] = {"PRAGMA user_version = -16777213", "PRAGMA user_version = -1",
                                         "PRAGMA user_version = 0"};
    for (size_t i = 0; i < sizeof damage / sizeof damage[0]; i++) {
        bcd_store *s = open_store(0);
        bcd__store_close(s);
        raw_sql(damage[i]);
        long long before = raw_sql("PRAGMA user_version");
        bcd_error err;
        memset(&err, 0, sizeof err);
        s = NULL;
        ck_assert_int_eq(bcd__store_local_open(&s, ctx, NULL, 0, &err), BCD_EFORMAT);
        ck_assert_ptr_null(s);
        ck_assert_str_eq(err.code, "store_corrupt");
        ck_assert_ptr_nonnull(strstr(err.message, "damaged"));
        ck_assert_int_eq(raw_sql("PRAGMA user_version"), before); /* untouched, nothing migrated */
        bcd__error_clear(&err);
        char restore[64];
        snprintf(restore, sizeof restore, "PRAGMA user_version = %d", bcd__store_local_schema_version());
        raw_sql(restore);
    }
}
END_TEST

START_TEST(test_store_session_list_orders_by_created_at_then_seq)
{
    bcd_store *s = open_store(0);
    char ids[40][BCD__ID_LEN];
    struct bcd__session_row row;
    for (int i = 0; i < 40; i++) {
        ck_assert_int_eq(bcd__store_session_create(s, i % 2 ? "bob" : "alice", &row), BCD_OK);
        ck_assert(bcd__uuid_valid(row.id));
        ck_assert_str_eq(row.status, "created");
        ck_assert_int_eq(strlen(row.created_at), 27); /* 2026-02-16T10:00:00.123456Z */
        ck_assert_int_eq(row.created_at[26], 'Z');
        ck_assert_int_eq(row.created_at[19], '.');
        memcpy(ids[i], row.id, BCD__ID_LEN);
    }
    struct bcd__session_row *list = NULL;
    size_t n = 0;
    ck_assert_int_eq(bcd__store_session_list(s, "alice", &list, &n), BCD_OK);
    ck_assert_uint_eq(n, 20);
    for (size_t i = 0; i < n; i++) {
        ck_assert_str_eq(list[i].id, ids[2 * i]);
        ck_assert_str_eq(list[i].user_id, "alice");
        if (i)
            ck_assert(strcmp(list[i - 1].created_at, list[i].created_at) <= 0 && list[i - 1].seq < list[i].seq);
    }
    free(list);

    /* sessions of the same microsecond keep their creation order */
    raw_sql("UPDATE sessions SET created_at = '2030-01-01T00:00:00.000000Z', "
            "updated_at = '2030-01-01T00:00:00.000000Z'");
    ck_assert_int_eq(bcd__store_session_list(s, "bob", &list, &n), BCD_OK);
    ck_assert_uint_eq(n, 20);
    for (size_t i = 0; i < n; i++)
        ck_assert_str_eq(list[i].id, ids[2 * i + 1]);
    free(list);

    /* a clock behind the newest session (here: sessions "from 2030") never puts a new
     * session before older ones */
    ck_assert_int_eq(bcd__store_session_create(s, "bob", &row), BCD_OK);
    ck_assert_str_eq(row.created_at, "2030-01-01T00:00:00.000000Z");
    ck_assert_int_eq(bcd__store_session_list(s, "bob", &list, &n), BCD_OK);
    ck_assert_uint_eq(n, 21);
    ck_assert_str_eq(list[20].id, row.id);
    free(list);

    ck_assert_int_eq(bcd__store_session_list(s, "nobody", &list, &n), BCD_OK);
    ck_assert_uint_eq(n, 0);
    free(list);

    ck_assert_int_eq(bcd__store_session_get(s, "00000000-0000-4000-8000-000000000000", &row), BCD_ENOTFOUND);
    ck_assert_str_eq(s->err.code, "session_not_found");
    /* status */
    ck_assert_int_eq(bcd__store_session_set_status(s, ids[0], "completed", &row), BCD_OK);
    ck_assert_str_eq(row.status, "completed");
    ck_assert(strcmp(row.updated_at, row.created_at) >= 0);
    ck_assert_int_eq(bcd__store_session_set_status(s, ids[0], "bogus", &row), BCD_ECONFLICT);
    ck_assert_int_eq(bcd__store_session_get(s, ids[0], &row), BCD_OK);
    ck_assert_str_eq(row.status, "completed");
    bcd__store_close(s);
}
END_TEST

START_TEST(test_store_image_register_follows_seed_rules)
{
    bcd_store *s = open_store(0);
    struct bcd__session_row sess;
    ck_assert_int_eq(bcd__store_session_create(s, "alice", &sess), BCD_OK);
    struct bcd__image_row in, out;
    bool created = false;

    image_in(&in, sess.id, "front", "/p/front0.jpg", 0);
    ck_assert_int_eq(bcd__store_image_register(s, &in, &out, &created), BCD_OK);
    ck_assert(created);
    ck_assert(bcd__uuid_valid(out.id));
    ck_assert_int_eq(out.order_index, 0);
    char first_id[BCD__ID_LEN];
    memcpy(first_id, out.id, sizeof first_id);

    /* idempotent per (session, path), whatever angle and index are asked */
    image_in(&in, sess.id, "left", "/p/front0.jpg", 5);
    ck_assert_int_eq(bcd__store_image_register(s, &in, &out, &created), BCD_OK);
    ck_assert(!created);
    ck_assert_str_eq(out.id, first_id);
    ck_assert_str_eq(out.angle, "front");
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM images"), 1);

    /* out of sequence */
    image_in(&in, sess.id, "front", "/p/front2.jpg", 2);
    ck_assert_int_eq(bcd__store_image_register(s, &in, &out, &created), BCD_ECONFLICT);
    ck_assert_str_eq(s->err.code, "order_index_out_of_sequence");
    ck_assert_ptr_nonnull(strstr(s->err.details_json, "\"expected_order_index\":1"));
    /* slot taken by another path */
    image_in(&in, sess.id, "front", "/p/other.jpg", 0);
    ck_assert_int_eq(bcd__store_image_register(s, &in, &out, &created), BCD_ECONFLICT);
    ck_assert_str_eq(s->err.code, "slot_conflict");
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM images"), 1);

    /* contiguous indexes, and -1 = next */
    image_in(&in, sess.id, "front", "/p/front1.jpg", 1);
    ck_assert_int_eq(bcd__store_image_register(s, &in, &out, &created), BCD_OK);
    ck_assert(created);
    image_in(&in, sess.id, "front", "/p/front2.jpg", -1);
    ck_assert_int_eq(bcd__store_image_register(s, &in, &out, &created), BCD_OK);
    ck_assert_int_eq(out.order_index, 2);
    image_in(&in, sess.id, "left", "/p/left0.jpg", -1);
    ck_assert_int_eq(bcd__store_image_register(s, &in, &out, &created), BCD_OK);
    ck_assert_int_eq(out.order_index, 0);
    /* each angle counts on its own */
    image_in(&in, sess.id, "up", "/p/up1.jpg", 1);
    ck_assert_int_eq(bcd__store_image_register(s, &in, &out, &created), BCD_ECONFLICT);
    ck_assert_str_eq(s->err.code, "order_index_out_of_sequence");

    /* unknown session */
    image_in(&in, "00000000-0000-4000-8000-000000000000", "front", "/p/x.jpg", 0);
    ck_assert_int_eq(bcd__store_image_register(s, &in, &out, &created), BCD_ENOTFOUND);

    struct bcd__image_row *list = NULL;
    size_t n = 0;
    ck_assert_int_eq(bcd__store_image_list(s, sess.id, &list, &n), BCD_OK);
    ck_assert_uint_eq(n, 4);
    ck_assert_str_eq(list[0].angle, "front");
    ck_assert_int_eq(list[0].order_index, 0);
    ck_assert_int_eq(list[2].order_index, 2);
    ck_assert_str_eq(list[3].angle, "left");
    ck_assert_int_eq(list[3].size_bytes, -1);
    free(list);
    ck_assert_int_eq(bcd__store_session_get(s, sess.id, &sess), BCD_OK);
    ck_assert_int_eq(sess.image_count, 4);
    bcd__store_close(s);
}
END_TEST

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

START_TEST(test_store_blobs_are_content_addressed_and_durable)
{
    bcd_store *s = open_store(0);
    struct bcd__session_row sess;
    ck_assert_int_eq(bcd__store_session_create(s, "alice", &sess), BCD_OK);
    const char data[] = "\x89PNG pretend image bytes";
    char sha[65], key[BCD__PATH_MAX];
    bool created = false;
    ck_assert_int_eq(bcd__sha256_hex(data, sizeof data - 1, sha), BCD_OK);
    ck_assert_int_eq(bcd__store_blob_put(s, sess.id, sha, "png", data, sizeof data - 1, key, &created), BCD_OK);
    ck_assert(created);
    char want[200];
    snprintf(want, sizeof want, "%s/%s.png", sess.id, sha);
    ck_assert_str_eq(key, want);
    /* no temporary file left, file private */
    char dir[300], path[BCD__PATH_MAX + 300];
    snprintf(dir, sizeof dir, "%s/blobs/%s", datadir, sess.id);
    ck_assert_int_eq(count_entries(dir), 1);
    snprintf(path, sizeof path, "%s/blobs/%s", datadir, key);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);

    ck_assert_int_eq(bcd__store_blob_put(s, sess.id, sha, "png", data, sizeof data - 1, key, &created), BCD_OK);
    ck_assert(!created);
    unsigned char *got = NULL;
    size_t len = 0;
    ck_assert_int_eq(bcd__store_blob_get(s, key, 0, &got, &len), BCD_OK);
    ck_assert_uint_eq(len, sizeof data - 1);
    ck_assert_int_eq(memcmp(got, data, len), 0);
    free(got);
    ck_assert_int_eq(bcd__store_blob_get(s, key, 4, &got, &len), BCD_ELIMIT);

    /* a file altered on disk to another size is replaced by the next put of its bytes,
     * truncated or grown; no temporary file left */
    for (int grow = 0; grow < 2; grow++) {
        FILE *f = fopen(path, grow ? "ab" : "r+b");
        ck_assert_ptr_nonnull(f);
        if (grow)
            fputs("appended junk", f);
        else
            ck_assert_int_eq(ftruncate(fileno(f), 5), 0);
        fclose(f);
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_uint_ne((size_t)st.st_size, sizeof data - 1);
        ck_assert_int_eq(bcd__store_blob_put(s, sess.id, sha, "png", data, sizeof data - 1, key, &created), BCD_OK);
        ck_assert(!created);
        ck_assert_int_eq(bcd__store_blob_get(s, key, 0, &got, &len), BCD_OK);
        ck_assert_uint_eq(len, sizeof data - 1);
        ck_assert_int_eq(memcmp(got, data, len), 0);
        free(got);
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_int_eq(st.st_mode & 0777, 0600);
        ck_assert_int_eq(count_entries(dir), 1);
    }

    /* a byte flipped on disk (same size): the read says blob_corrupt, the next put of the
     * right bytes repairs it */
    FILE *f = fopen(path, "r+b");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fseek(f, 3, SEEK_SET), 0);
    fputc('X', f);
    fclose(f);
    ck_assert_int_eq(bcd__store_blob_get(s, key, 0, &got, &len), BCD_EFORMAT);
    ck_assert_str_eq(s->err.code, "blob_corrupt");
    ck_assert_ptr_nonnull(strstr(s->err.message, key));
    const char *const one[] = {key};
    size_t failed = 9;
    ck_assert_int_eq(bcd__store_blob_get_many(s, one, 1, 0, &got, &len, &failed), BCD_EFORMAT);
    ck_assert_uint_eq(failed, 0);
    ck_assert_int_eq(bcd__store_blob_put(s, sess.id, sha, "png", data, sizeof data - 1, key, &created), BCD_OK);
    ck_assert_int_eq(bcd__store_blob_get(s, key, 0, &got, &len), BCD_OK);
    ck_assert_int_eq(memcmp(got, data, len), 0);
    free(got);
    ck_assert_int_eq(count_entries(dir), 1);

    /* absolute paths and file:// URLs read local files, only in the folders listed in
     * BCD_IMAGE_DIRS and never in the data folder (a blob of another session) */
    char outside[300], fifo[300];
    snprintf(outside, sizeof outside, "%s/photos", tmpdir);
    ck_assert_int_eq(mkdir(outside, 0700), 0);
    snprintf(outside, sizeof outside, "%s/photos/front.png", tmpdir);
    f = fopen(outside, "wb");
    ck_assert_ptr_nonnull(f);
    fwrite(data, 1, sizeof data - 1, f);
    fclose(f);
    ck_assert_int_eq(bcd__store_blob_get(s, outside, 0, &got, &len), BCD_EINVAL);
    ck_assert_str_eq(s->err.code, "image_path_not_allowed");
    ck_assert_ptr_nonnull(strstr(s->err.message, "BCD_IMAGE_DIRS"));
    ck_assert_int_eq(bcd__store_blob_get(s, "/etc/passwd", 0, &got, &len), BCD_EINVAL);
    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_IMAGE_DIRS", tmpdir), BCD_OK); /* the data folder lies in it */
    ck_assert_int_eq(bcd__store_blob_get(s, outside, 0, &got, &len), BCD_OK);
    ck_assert_uint_eq(len, sizeof data - 1);
    free(got);
    ck_assert_int_eq(bcd__store_blob_get(s, path, 0, &got, &len), BCD_EINVAL);
    ck_assert_str_eq(s->err.code, "image_path_not_allowed");
    char *url = NULL, *local = NULL;
    int expires = 0;
    ck_assert_int_eq(bcd__store_blob_locate(s, key, &url, &local, &expires), BCD_OK);
    ck_assert_str_eq(local, path);
    ck_assert_int_eq(strncmp(url, "file:///", 8), 0);
    ck_assert_int_eq(expires, -1);
    ck_assert_int_eq(bcd__store_blob_get(s, url, 0, &got, &len), BCD_EINVAL);
    free(url);
    free(local);
    ck_assert_int_eq(bcd__store_blob_locate(s, outside, &url, &local, &expires), BCD_OK);
    ck_assert_int_eq(bcd__store_blob_get(s, url, 0, &got, &len), BCD_OK);
    ck_assert_uint_eq(len, sizeof data - 1);
    free(got);
    free(url);
    free(local);
    /* a FIFO is refused at once, never waited on */
    snprintf(fifo, sizeof fifo, "%s/photos/fifo.jpg", tmpdir);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    ck_assert_int_eq(bcd__store_blob_get(s, fifo, 0, &got, &len), BCD_EIO);
    ck_assert_str_eq(s->err.code, "image_file_unreadable");

    /* remote URLs, traversal and missing files */
    ck_assert_int_eq(bcd__store_blob_get(s, "https://example.org/a.jpg", 0, &got, &len), BCD_EUNSUPPORTED);
    ck_assert_str_eq(s->err.code, "remote_image_unsupported");
    ck_assert_int_eq(bcd__store_blob_get(s, "../bcd.sqlite3", 0, &got, &len), BCD_ENOTFOUND);
    snprintf(fifo, sizeof fifo, "%s/photos/nonexistent.jpg", tmpdir);
    ck_assert_int_eq(bcd__store_blob_get(s, fifo, 0, &got, &len), BCD_ENOTFOUND);
    ck_assert_str_eq(s->err.code, "image_file_missing");
    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_IMAGE_DIRS", NULL), BCD_OK);
    ck_assert_int_eq(bcd__store_blob_put(s, sess.id, "../../etc", "png", data, 3, key, &created), BCD_EINVAL);

    /* delete: only blobs no image references */
    struct bcd__image_row in, out;
    snprintf(want, sizeof want, "%s/%s.png", sess.id, sha);
    image_in(&in, sess.id, "front", want, 0);
    ck_assert_int_eq(bcd__store_image_register(s, &in, &out, &created), BCD_OK);
    ck_assert_int_eq(bcd__store_blob_delete(s, want), BCD_OK);
    ck_assert_int_eq(stat(path, &st), 0);
    const char other[] = "other bytes";
    ck_assert_int_eq(bcd__sha256_hex(other, sizeof other - 1, sha), BCD_OK);
    ck_assert_int_eq(bcd__store_blob_put(s, sess.id, sha, "jpg", other, sizeof other - 1, key, &created), BCD_OK);
    snprintf(path, sizeof path, "%s/blobs/%s", datadir, key);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(bcd__store_blob_delete(s, key), BCD_OK);
    ck_assert_int_ne(stat(path, &st), 0);
    bcd__store_close(s);
}
END_TEST

START_TEST(test_store_analysis_save_replaces_everything_at_once)
{
    bcd_store *s = open_store(0);
    struct bcd__session_row sess;
    ck_assert_int_eq(bcd__store_session_create(s, "alice", &sess), BCD_OK);
    struct bcd__analysis a, b, got;
    bool ow = true;
    ck_assert_int_eq(bcd__store_analysis_get(s, sess.id, &got), BCD_ENOTFOUND);
    ck_assert_str_eq(s->err.code, "analysis_not_found");

    make_analysis(&a, sess.id, 6, 1.0f, "model-a");
    ck_assert_int_eq(bcd__store_analysis_save(s, &a, &ow), BCD_OK);
    ck_assert(!ow);
    ck_assert_int_eq(bcd__store_analysis_get(s, sess.id, &got), BCD_OK);
    assert_same_analysis(&a, &got);
    ck_assert_str_eq(got.created_at, a.created_at);
    ck_assert_str_eq(got.details_json, "{\"k\":1}");
    ck_assert_int_eq(got.baseline_sessions, 1);
    ck_assert_double_eq(got.angles[0].quality, 0.75);
    bcd__analysis_clear(&got);

    make_analysis(&b, sess.id, 3, 2.0f, "model-a");
    ck_assert_int_eq(bcd__store_analysis_save(s, &b, &ow), BCD_OK);
    ck_assert(ow);
    ck_assert_int_eq(bcd__store_analysis_get(s, sess.id, &got), BCD_OK);
    assert_same_analysis(&b, &got);
    bcd__analysis_clear(&got);
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM session_analysis"), 1);
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM angle_analysis"), 3);
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM angle_embeddings"), 3);
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM session_embeddings"), 1);
    /* embeddings are JSON text, as the seed stores them, with the model and dim */
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM session_embeddings WHERE embedding LIKE '[%]' "
                             "AND model = 'model-a' AND dim = 4 AND length(checksum) = 64"),
                     1);

    /* a stored embedding that does not match its checksum is reported, not used */
    raw_sql("UPDATE session_embeddings SET embedding = '[1,2,3,4]'");
    ck_assert_int_eq(bcd__store_analysis_get(s, sess.id, &got), BCD_EFORMAT);
    ck_assert_str_eq(s->err.code, "embedding_corrupt");

    /* an analysis of an unknown session is refused */
    struct bcd__analysis c;
    make_analysis(&c, "00000000-0000-4000-8000-000000000000", 1, 1.0f, "m");
    ck_assert_int_eq(bcd__store_analysis_save(s, &c, &ow), BCD_ENOTFOUND);
    bcd__analysis_clear(&c);
    bcd__analysis_clear(&a);
    bcd__analysis_clear(&b);
    bcd__store_close(s);
}
END_TEST

START_TEST(test_store_delete_failure_at_any_step_changes_nothing)
{
    bcd_store *s = open_store(0);
    struct bcd__session_row sess, other;
    ck_assert_int_eq(bcd__store_session_create(s, "alice", &sess), BCD_OK);
    ck_assert_int_eq(bcd__store_session_create(s, "bob", &other), BCD_OK);
    struct bcd__image_row in, out, del;
    bool created, analysis;
    int files, images;
    for (int i = 0; i < 3; i++) {
        char path[32];
        snprintf(path, sizeof path, "/p/f%d.jpg", i);
        image_in(&in, sess.id, "front", path, i);
        ck_assert_int_eq(bcd__store_image_register(s, &in, &out, &created), BCD_OK);
    }
    image_in(&in, other.id, "front", "/p/b.jpg", 0);
    ck_assert_int_eq(bcd__store_image_register(s, &in, &out, &created), BCD_OK);
    struct bcd__analysis a;
    bool ow;
    make_analysis(&a, sess.id, 2, 1.0f, "m");
    ck_assert_int_eq(bcd__store_analysis_save(s, &a, &ow), BCD_OK);
    /* a failure at any write of an image delete: every row as it was */
    int failures = 0;
    for (int n = 0; n < 50; n++) {
        bcd__store_local_fail_after(s, n, 0);
        bcd_status st = bcd__store_image_delete(s, sess.id, "front", 1, &del, &analysis, &files);
        bcd__store_local_fail_after(s, -1, 0);
        if (st == BCD_OK)
            break;
        failures++;
        ck_assert_int_eq(st, BCD_EIO);
        ck_assert_int_eq(raw_sql("SELECT count(*) FROM images"), 4);
        ck_assert_int_eq(raw_sql("SELECT count(*) FROM session_analysis"), 1);
        ck_assert_int_eq(raw_sql("SELECT count(*) FROM angle_embeddings"), 2);
    }
    ck_assert_int_gt(failures, 3);
    ck_assert(analysis);
    ck_assert_str_eq(del.storage_path, "/p/f1.jpg");
    /* the later photo moved up one place; the analysis went; bob's image stayed */
    ck_assert_int_eq(raw_sql("SELECT order_index FROM images WHERE storage_path = '/p/f2.jpg'"), 1);
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM images"), 3);
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM session_analysis"), 0);
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM angle_embeddings"), 0);
    /* the same for a session */
    for (int n = 0; n < 2; n++) {
        bcd__store_local_fail_after(s, n, 0);
        ck_assert_int_eq(bcd__store_session_delete(s, sess.id, &images, &analysis, &files), BCD_EIO);
        bcd__store_local_fail_after(s, -1, 0);
        ck_assert_int_eq(raw_sql("SELECT count(*) FROM sessions"), 2);
        ck_assert_int_eq(raw_sql("SELECT count(*) FROM images"), 3);
    }
    ck_assert_int_eq(bcd__store_session_delete(s, sess.id, &images, &analysis, &files), BCD_OK);
    ck_assert_int_eq(images, 2);
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM sessions"), 1);
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM images"), 1);
    ck_assert_int_eq(bcd__store_session_delete(s, sess.id, &images, &analysis, &files), BCD_ENOTFOUND);
    ck_assert_int_eq(bcd__store_image_delete(s, other.id, "left", -1, &del, &analysis, &files), BCD_ENOTFOUND);
    ck_assert_str_eq(s->err.code, "image_not_found");
    bcd__analysis_clear(&a);
    bcd__store_close(s);
}
END_TEST

START_TEST(test_store_analysis_save_failure_at_any_step_keeps_previous)
{
    bcd_store *s = open_store(0);
    struct bcd__session_row sess;
    ck_assert_int_eq(bcd__store_session_create(s, "alice", &sess), BCD_OK);
    struct bcd__analysis a, b, got;
    bool ow;
    make_analysis(&a, sess.id, 6, 1.0f, "model-a");
    ck_assert_int_eq(bcd__store_analysis_save(s, &a, &ow), BCD_OK);
    make_analysis(&b, sess.id, 4, 3.0f, "model-b");
    int failures = 0;
    for (int n = 0; n < 100; n++) {
        bcd__store_local_fail_after(s, n, 0);
        bcd_status st = bcd__store_analysis_save(s, &b, &ow);
        bcd__store_local_fail_after(s, -1, 0);
        if (st == BCD_OK)
            break;
        failures++;
        ck_assert_int_eq(st, BCD_EIO);
        ck_assert_ptr_nonnull(strstr(s->err.message, "simulated"));
        /* nothing of b, all of a */
        ck_assert_int_eq(bcd__store_analysis_get(s, sess.id, &got), BCD_OK);
        assert_same_analysis(&a, &got);
        bcd__analysis_clear(&got);
        ck_assert_int_eq(raw_sql("SELECT count(*) FROM angle_analysis"), 6);
        ck_assert_int_eq(raw_sql("SELECT count(*) FROM angle_embeddings WHERE model = 'model-a'"), 6);
        ck_assert_int_eq(raw_sql("SELECT count(*) FROM angle_embeddings WHERE model = 'model-b'"), 0);
    }
    /* 4 deletes + 1 + 4 angle rows + 4 angle embeddings + 1 session embedding + commit */
    ck_assert_int_eq(failures, 15);
    ck_assert_int_eq(bcd__store_analysis_get(s, sess.id, &got), BCD_OK);
    assert_same_analysis(&b, &got);
    bcd__analysis_clear(&got);

    /* the same for registration and session creation */
    struct bcd__image_row in, out;
    bool created;
    image_in(&in, sess.id, "front", "/p/f.jpg", 0);
    bcd__store_local_fail_after(s, 1, 0);
    ck_assert_int_eq(bcd__store_image_register(s, &in, &out, &created), BCD_EIO);
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM images"), 0);
    bcd__store_local_fail_after(s, 0, 0);
    ck_assert_int_eq(bcd__store_session_create(s, "alice", &sess), BCD_EIO);
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM sessions"), 1);
    bcd__analysis_clear(&a);
    bcd__analysis_clear(&b);
    bcd__store_close(s);
}
END_TEST

START_TEST(test_store_crash_during_save_keeps_previous)
{
    bcd_store *s = open_store(0);
    struct bcd__session_row sess;
    ck_assert_int_eq(bcd__store_session_create(s, "alice", &sess), BCD_OK);
    struct bcd__analysis a, b, got;
    bool ow;
    make_analysis(&a, sess.id, 6, 1.0f, "model-a");
    ck_assert_int_eq(bcd__store_analysis_save(s, &a, &ow), BCD_OK);
    bcd__store_close(s);

    const int points[] = {0, 3, 7, 14};
    for (size_t k = 0; k < sizeof points / sizeof points[0]; k++) {
        fflush(NULL);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            /* child: save b and "crash" in the middle, without rollback or close */
            bcd_store *c = NULL;
            bcd_error err;
            memset(&err, 0, sizeof err);
            if (bcd__store_local_open(&c, ctx, NULL, 0, &err) != BCD_OK)
                _exit(1);
            make_analysis(&b, sess.id, 4, 3.0f, "model-b");
            bcd__store_local_fail_after(c, points[k], 1);
            bcd__store_analysis_save(c, &b, &ow);
            _exit(2); /* not reached when the fault fires */
        }
        int status = 0;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status));
        ck_assert_int_eq(WEXITSTATUS(status), 86);
        s = open_store(0);
        ck_assert_int_eq(bcd__store_analysis_get(s, sess.id, &got), BCD_OK);
        assert_same_analysis(&a, &got);
        bcd__analysis_clear(&got);
        bcd__store_close(s);
        ck_assert_int_eq(raw_sql("SELECT count(*) FROM angle_analysis"), 6);
        ck_assert_int_eq(raw_sql("SELECT count(*) FROM pragma_integrity_check WHERE integrity_check != 'ok'"), 0);
    }
    bcd__analysis_clear(&a);
}
END_TEST

START_TEST(test_store_embeddings_for_user_match_model)
{
    bcd_store *s = open_store(0);
    struct bcd__session_row s1, s2, s3;
    ck_assert_int_eq(bcd__store_session_create(s, "alice", &s1), BCD_OK);
    ck_assert_int_eq(bcd__store_session_create(s, "alice", &s2), BCD_OK);
    ck_assert_int_eq(bcd__store_session_create(s, "bob", &s3), BCD_OK);
    struct bcd__analysis a;
    bool ow;
    make_analysis(&a, s1.id, 3, 1.0f, "m1");
    ck_assert_int_eq(bcd__store_analysis_save(s, &a, &ow), BCD_OK);
    bcd__analysis_clear(&a);
    make_analysis(&a, s2.id, 2, 2.0f, "m2");
    ck_assert_int_eq(bcd__store_analysis_save(s, &a, &ow), BCD_OK);
    bcd__analysis_clear(&a);
    make_analysis(&a, s3.id, 6, 3.0f, "m1");
    ck_assert_int_eq(bcd__store_analysis_save(s, &a, &ow), BCD_OK);

    struct bcd__embedding *e = NULL;
    size_t n = 0;
    ck_assert_int_eq(bcd__store_embeddings_for_user(s, "alice", "m1", &e, &n), BCD_OK);
    ck_assert_uint_eq(n, 4); /* 1 session + 3 angles */
    int sessions = 0;
    for (size_t i = 0; i < n; i++) {
        ck_assert_str_eq(e[i].session_id, s1.id);
        ck_assert_str_eq(e[i].model, "m1");
        ck_assert_uint_eq(e[i].dim, 4);
        sessions += e[i].angle[0] == '\0';
    }
    ck_assert_int_eq(sessions, 1);
    bcd__embeddings_free(e, n);
    ck_assert_int_eq(bcd__store_embeddings_for_user(s, "alice", NULL, &e, &n), BCD_OK);
    ck_assert_uint_eq(n, 7);
    bcd__embeddings_free(e, n);
    ck_assert_int_eq(bcd__store_embeddings_for_user(s, "carol", "m1", &e, &n), BCD_OK);
    ck_assert_uint_eq(n, 0);
    bcd__embeddings_free(e, n);

    /* analysis_get drops embeddings of another model than the analysis */
    raw_sql("UPDATE angle_embeddings SET model = 'other' WHERE angle = 'front'");
    struct bcd__analysis got;
    ck_assert_int_eq(bcd__store_analysis_get(s, s3.id, &got), BCD_OK);
    ck_assert_ptr_null(got.angle_vec[0]);
    ck_assert_ptr_nonnull(got.angle_vec[1]);
    ck_assert_ptr_nonnull(got.session_vec);
    bcd__analysis_clear(&got);
    bcd__analysis_clear(&a);
    bcd__store_close(s);
}
END_TEST

struct worker {
    int ok;
    int made;
    char why[600];
};

static void *create_many(void *arg)
{
    struct worker *w = arg;
    bcd_store *s = NULL;
    bcd_error err;
    memset(&err, 0, sizeof err);
    /* no ctx: one ctx must not be shared by threads */
    if (bcd__store_local_open(&s, NULL, datadir, 0, &err) != BCD_OK) {
        snprintf(w->why, sizeof w->why, "%s: %s", err.code, err.message);
        bcd__error_clear(&err);
        return NULL;
    }
    struct bcd__session_row row;
    for (int i = 0; i < 25; i++)
        if (bcd__store_session_create(s, "shared", &row) == BCD_OK)
            w->made++;
    w->ok = 1;
    bcd__store_close(s);
    return NULL;
}

START_TEST(test_store_handles_in_parallel_threads)
{
    /* the threads also race to create and migrate the database */
    pthread_t t[4];
    struct worker w[4];
    memset(w, 0, sizeof w);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, create_many, &w[i]), 0);
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        ck_assert_msg(w[i].ok == 1, "open failed: %s", w[i].why);
        ck_assert_int_eq(w[i].made, 25);
    }
    ck_assert_int_eq(raw_sql("SELECT count(DISTINCT seq) FROM sessions"), 100);
}
END_TEST

START_TEST(test_store_embedding_json_round_trips)
{
    float v[5] = {0.1f, -2.5e-5f, 1e30f, -0.0f, 3.14159274f};
    char *json = bcd__embedding_to_json(v, 5);
    ck_assert_ptr_nonnull(json);
    ck_assert_int_eq(json[0], '[');
    float *back = NULL;
    size_t dim = 0;
    ck_assert_int_eq(bcd__embedding_from_json(json, 0, &back, &dim), BCD_OK);
    ck_assert_uint_eq(dim, 5);
    ck_assert_int_eq(memcmp(v, back, sizeof v), 0);
    free(back);
    ck_assert_int_eq(bcd__embedding_from_json(json, 4, &back, &dim), BCD_EFORMAT);
    ck_assert_int_eq(bcd__embedding_from_json("[1,\"x\"]", 0, &back, &dim), BCD_EFORMAT);
    ck_assert_int_eq(bcd__embedding_from_json("{}", 0, &back, &dim), BCD_EFORMAT);
    free(json);
    ck_assert_int_eq(bcd__angle_index("raised"), 5);
    ck_assert_int_eq(bcd__angle_index("back"), -1);
    ck_assert_int_eq(bcd__angle_index(NULL), -1);
}
END_TEST

static Suite *store_suite(void)
{
    Suite *s = suite_create("store");
    TCase *tc = tcase_create("local");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_store_local_open_creates_private_layout);
    tcase_add_test(tc, test_store_schema_migrates_on_reopen);
    tcase_add_test(tc, test_store_refuses_newer_schema_and_foreign_files);
    tcase_add_test(tc, test_store_refuses_unknown_schema_versions);
    tcase_add_test(tc, test_store_session_list_orders_by_created_at_then_seq);
    tcase_add_test(tc, test_store_image_register_follows_seed_rules);
    tcase_add_test(tc, test_store_blobs_are_content_addressed_and_durable);
    tcase_add_test(tc, test_store_analysis_save_replaces_everything_at_once);
    tcase_add_test(tc, test_store_analysis_save_failure_at_any_step_keeps_previous);
    tcase_add_test(tc, test_store_delete_failure_at_any_step_changes_nothing);
    tcase_add_test(tc, test_store_crash_during_save_keeps_previous);
    tcase_add_test(tc, test_store_embeddings_for_user_match_model);
    tcase_add_test(tc, test_store_handles_in_parallel_threads);
    tcase_add_test(tc, test_store_embedding_json_round_trips);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(store_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
