/* The `local` store: one SQLite database plus a blob folder under the data directory.
 *
 *   <data_dir>/bcd.sqlite3    sessions, images, analyses, embeddings (WAL mode)
 *   <data_dir>/blobs/<session_id>/<sha256>.<ext>    image files, content addressed
 *
 *   <data_dir>/blobs/.pending/<session_id>.<sha256>.<ext>.XXXXXX    blobs being added
 *
 * Atomicity: every operation that writes more than one row runs in one
 * `BEGIN IMMEDIATE ... COMMIT` transaction (WAL, synchronous=FULL), so a failure or a
 * crash at any point leaves the database as it was before the operation.
 *
 * Blobs and rows: a blob is written before the image row that names it, so a row never
 * names a missing or partial file. The bytes go to a pending file (blobs/.pending,
 * fsynced, its folder fsynced) that the writing handle holds an flock on; the pending
 * file is hard-linked to the final name (folder fsynced) and stays, locked, until the
 * row is committed (then it is removed) or the add is given up (then the blob is
 * removed unless a row or another live pending file needs it). A process that dies in
 * between leaves a pending file nobody holds: the next open of the store removes it,
 * and the blob it names if no row took it. So after a crash the store is, once opened,
 * exactly its state before or after the interrupted add: no orphan, no partial file.
 * Decisions to remove a final blob are taken under an flock on blobs/.pending, which
 * every new pending file is created under, so a concurrent add of the same bytes is
 * never undone.
 * Folders are created 0700 and the database file 0600 (the -wal/-shm files inherit its
 * mode): these are photos of people's bodies.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store.h"

#define DB_NAME "bcd.sqlite3"
#define BLOB_DIR "blobs"
#define PENDING_DIR ".pending"
#define BUSY_TIMEOUT_MS 10000

/* Schema history. Version N is reached by running migrations[0..N-1] in order, each in
 * the same transaction as the user_version update. Append only: never edit a step that
 * has shipped. The tables mirror the seeds' (sessions, images, session_analysis,
 * angle_analysis, session_embeddings; images.image_type is the angle) with a `seq`
 * tie-breaker for sessions created in the same microsecond. */
static const char *const migrations[] = {
    /* 1: sessions, images and the seed's analysis tables. */
    "CREATE TABLE sessions ("
    "  id TEXT PRIMARY KEY,"
    "  user_id TEXT NOT NULL CHECK (length(user_id) > 0),"
    "  status TEXT NOT NULL DEFAULT 'created' CHECK (status IN ('created', 'completed')),"
    "  created_at TEXT NOT NULL,"
    "  updated_at TEXT NOT NULL,"
    "  seq INTEGER NOT NULL UNIQUE"
    ");"
    "CREATE INDEX sessions_by_user ON sessions (user_id, created_at, seq);"
    "CREATE TABLE images ("
    "  id TEXT PRIMARY KEY,"
    "  session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,"
    "  image_type TEXT NOT NULL"
    "    CHECK (image_type IN ('front', 'left', 'right', 'up', 'down', 'raised')),"
    "  order_index INTEGER NOT NULL CHECK (order_index >= 0),"
    "  storage_path TEXT NOT NULL CHECK (length(storage_path) > 0),"
    "  content_type TEXT,"
    "  size_bytes INTEGER,"
    "  sha256 TEXT,"
    "  created_at TEXT NOT NULL,"
    "  UNIQUE (session_id, storage_path),"
    "  UNIQUE (session_id, image_type, order_index)"
    ");"
    "CREATE TABLE session_analysis ("
    "  session_id TEXT PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,"
    "  overall_change_score REAL NOT NULL,"
    "  confidence REAL NOT NULL,"
    "  summary TEXT NOT NULL,"
    "  model TEXT NOT NULL,"
    "  dim INTEGER NOT NULL,"
    "  baseline_sessions INTEGER NOT NULL DEFAULT 0,"
    "  details TEXT,"
    "  created_at TEXT NOT NULL"
    ");"
    "CREATE TABLE angle_analysis ("
    "  id INTEGER PRIMARY KEY,"
    "  session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,"
    "  angle_type TEXT NOT NULL"
    "    CHECK (angle_type IN ('front', 'left', 'right', 'up', 'down', 'raised')),"
    "  change_score REAL NOT NULL,"
    "  summary TEXT NOT NULL,"
    "  image_count INTEGER NOT NULL DEFAULT 1,"
    "  baseline_sessions INTEGER NOT NULL DEFAULT 0,"
    "  sharpness REAL,"
    "  blur_variance REAL,"
    "  clipped_fraction REAL,"
    "  quality REAL,"
    "  created_at TEXT NOT NULL,"
    "  UNIQUE (session_id, angle_type)"
    ");"
    "CREATE TABLE session_embeddings ("
    "  session_id TEXT PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,"
    "  model TEXT NOT NULL,"
    "  dim INTEGER NOT NULL CHECK (dim > 0),"
    "  checksum TEXT NOT NULL,"
    "  embedding TEXT NOT NULL,"
    "  created_at TEXT NOT NULL"
    ");",
    /* 2: per-angle embeddings (per-angle baselines and comparisons). */
    "CREATE TABLE angle_embeddings ("
    "  session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,"
    "  angle TEXT NOT NULL CHECK (angle IN ('front', 'left', 'right', 'up', 'down', 'raised')),"
    "  model TEXT NOT NULL,"
    "  dim INTEGER NOT NULL CHECK (dim > 0),"
    "  checksum TEXT NOT NULL,"
    "  embedding TEXT NOT NULL,"
    "  created_at TEXT NOT NULL,"
    "  PRIMARY KEY (session_id, angle)"
    ");"
    "CREATE INDEX images_by_session ON images (session_id, image_type, order_index);",
    /* 3: the analysis job queue (asynchronous analysis; see "job queue" below). Times that
     * are compared (lease end, earliest next run) are integer milliseconds since the epoch;
     * at most one queued or running job per session. */
    "CREATE TABLE jobs ("
    "  id TEXT PRIMARY KEY,"
    "  session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,"
    "  user_id TEXT NOT NULL CHECK (length(user_id) > 0),"
    "  model TEXT,"
    "  status TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'done', 'failed')),"
    "  attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),"
    "  max_attempts INTEGER NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),"
    "  worker_id TEXT,"
    "  lease_until_ms INTEGER,"
    "  run_after_ms INTEGER NOT NULL,"
    "  error_code TEXT,"
    "  error TEXT,"
    "  created_at TEXT NOT NULL,"
    "  updated_at TEXT NOT NULL,"
    "  started_at TEXT,"
    "  finished_at TEXT,"
    "  seq INTEGER NOT NULL UNIQUE,"
    "  CHECK (status <> 'running' OR (worker_id IS NOT NULL AND lease_until_ms IS NOT NULL))"
    ");"
    "CREATE UNIQUE INDEX jobs_one_active_per_session ON jobs (session_id) WHERE status IN ('queued', 'running');"
    "CREATE INDEX jobs_pending ON jobs (seq) WHERE status IN ('queued', 'running');"
    "CREATE INDEX jobs_by_session ON jobs (session_id, seq);",
};
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

/* Canonical angle order for ORDER BY. */
#define ANGLE_ORDER(col)                                                                                          \
    "CASE " col " WHEN 'front' THEN 0 WHEN 'left' THEN 1 WHEN 'right' THEN 2 WHEN 'up' THEN 3 "                   \
    "WHEN 'down' THEN 4 WHEN 'raised' THEN 5 ELSE 6 END"

/* A blob put by this handle whose image row is not committed yet. */
struct pending {
    char *key;       /* "<session_id>/<sha256>.<ext>" */
    char *path;      /* the pending file, absolute */
    int fd;          /* open, flock()ed while the add is under way */
};

struct local {
    sqlite3 *db;
    char *dir;       /* absolute data directory */
    char *db_path;
    char *blob_dir;
    char *pending_dir;
    struct pending *pend;
    size_t npend, cap_pend;
    int fail_after;  /* test fault injection: < 0 off */
    int fail_mode;
    bool read_only;  /* on read-only media: opened for reading only */
};

static struct local *L_of(bcd_store *s)
{
    return (struct local *)s->impl;
}

static void committed_key(bcd_store *s, const char *key);
static bool valid_key(const char *key);

/* ---- errors ---------------------------------------------------------------------- */

static bool errno_full(int e)
{
    return e == ENOSPC || e == EDQUOT;
}

static bool errno_readonly(int e)
{
    return e == EROFS || e == EACCES || e == EPERM;
}

/* Record a failed file operation: `doing` says what ("writing image file X"), e is errno.
 * Full disk and read-only file system get their own codes and say so in words. */
static bcd_status file_fail(bcd_store *s, int e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bcd_status file_fail(bcd_store *s, int e, const char *fmt, ...)
{
    char doing[PATH_MAX + 128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(doing, sizeof doing, fmt, ap);
    va_end(ap);
    if (errno_full(e))
        return bcd__fail(&s->err, BCD_EIO, "store_full", "no space left on device while %s", doing);
    if (errno_readonly(e))
        return bcd__fail(&s->err, BCD_EIO, "store_unwritable", "the data directory is not writable (%s) while %s",
                         strerror(e), doing);
    return bcd__fail(&s->err, BCD_EIO, "store_io_error", "I/O error while %s: %s", doing, strerror(e));
}

/* Record a SQLite failure; rc is the (extended) result code. */
static bcd_status sqlfail(bcd_store *s, int rc, const char *what)
{
    struct local *L = L_of(s);
    const char *msg = L && L->db && sqlite3_errcode(L->db) == rc ? sqlite3_errmsg(L->db) : sqlite3_errstr(rc);
    const char *db = L && L->db_path ? L->db_path : "?";
    int e = L && L->db ? sqlite3_system_errno(L->db) : 0;
    const int cls = rc & 0xff;
    if (errno_full(e) && (cls == SQLITE_IOERR || cls == SQLITE_CANTOPEN || cls == SQLITE_FULL))
        return bcd__fail(&s->err, BCD_EIO, "store_full",
                         "no space left on device while writing the local database %s (%s)", db, what);
    switch (cls) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return bcd__fail(&s->err, BCD_EIO, "store_busy",
                         "%s: the local store is locked by another process (%s); try again", what, msg);
    case SQLITE_ERROR:
        /* a header whose schema format number no SQLite writes (a damaged byte 44..47) */
        if (strstr(msg, "unsupported file format"))
            return bcd__fail(&s->err, BCD_EFORMAT, "store_corrupt",
                             "%s: the local database %s is damaged (%s: its header names a file format no SQLite "
                             "writes); restore it from a backup, or move it away to start a new store",
                             what, db, msg);
        return bcd__fail(&s->err, BCD_EIO, "store_io_error", "%s: %s", what, msg);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return bcd__fail(&s->err, BCD_EFORMAT, "store_corrupt", "%s: the local database is damaged (%s)", what,
                         msg);
    case SQLITE_CONSTRAINT:
        return bcd__fail(&s->err, BCD_ECONFLICT, "constraint_violation", "%s: %s", what, msg);
    case SQLITE_NOMEM:
        return bcd__fail(&s->err, BCD_ENOMEM, "out_of_memory", "%s: out of memory", what);
    case SQLITE_FULL:
        return bcd__fail(&s->err, BCD_EIO, "store_full", "no space left on device while writing the local database %s (%s)",
                         db, what);
    case SQLITE_READONLY:
        return bcd__fail(&s->err, BCD_EIO, "store_unwritable",
                         "the local database %s cannot be written (%s: %s; read-only file system or no write "
                         "permission on the data directory)", db, what, msg);
    case SQLITE_PERM:
    case SQLITE_CANTOPEN:
        return bcd__fail(&s->err, BCD_EIO, "store_unwritable", "cannot open the local database %s (%s: %s%s%s)", db,
                         what, msg, e ? ": " : "", e ? strerror(e) : "");
    case SQLITE_IOERR:
        if (errno_readonly(e))
            return bcd__fail(&s->err, BCD_EIO, "store_unwritable",
                             "the local database %s cannot be written (%s: %s)", db, what, strerror(e));
        return bcd__fail(&s->err, BCD_EIO, "store_io_error", "I/O error on the local database %s (%s: %s%s%s)", db,
                         what, msg, e ? ": " : "", e ? strerror(e) : "");
    default:
        return bcd__fail(&s->err, BCD_EIO, "store_io_error", "%s: %s", what, msg);
    }
}

static bcd_status oom(bcd_store *s)
{
    return bcd__fail(&s->err, BCD_ENOMEM, "out_of_memory", "out of memory");
}

/* ---- statements ------------------------------------------------------------------ */

static bcd_status prep(bcd_store *s, sqlite3_stmt **st, const char *sql)
{
    int rc = sqlite3_prepare_v2(L_of(s)->db, sql, -1, st, NULL);
    if (rc != SQLITE_OK) {
        *st = NULL;
        return sqlfail(s, rc, "prepare");
    }
    return BCD_OK;
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

/* Simulated failure point (test fault injection). True: fail now. */
static bool fault(struct local *L)
{
    if (L->fail_after < 0)
        return false;
    if (L->fail_after > 0) {
        L->fail_after--;
        return false;
    }
    if (L->fail_mode == 1)
        _exit(86); /* crash: no rollback, no cleanup */
    L->fail_after = -1;
    return true;
}

/* Step a write statement of a transaction to completion. */
static bcd_status wstep(bcd_store *s, sqlite3_stmt *st, const char *what)
{
    if (fault(L_of(s)))
        return bcd__fail(&s->err, BCD_EIO, "store_io_error", "%s: simulated I/O failure (fault injection)", what);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return sqlfail(s, rc, what);
    return BCD_OK;
}

static bcd_status exec(bcd_store *s, const char *sql, const char *what)
{
    int rc = sqlite3_exec(L_of(s)->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? BCD_OK : sqlfail(s, rc, what);
}

static bcd_status begin(bcd_store *s)
{
    return exec(s, "BEGIN IMMEDIATE", "begin transaction");
}

static bcd_status commit(bcd_store *s)
{
    if (fault(L_of(s)))
        return bcd__fail(&s->err, BCD_EIO, "store_io_error", "commit: simulated I/O failure (fault injection)");
    return exec(s, "COMMIT", "commit");
}

/* Roll back whatever is open; keeps the error already recorded. */
static void rollback(bcd_store *s)
{
    if (!sqlite3_get_autocommit(L_of(s)->db))
        sqlite3_exec(L_of(s)->db, "ROLLBACK", NULL, NULL, NULL);
}

/* End a write transaction: commit on success, roll back otherwise. */
static bcd_status finish(bcd_store *s, bcd_status st)
{
    if (st == BCD_OK)
        st = commit(s);
    if (st != BCD_OK)
        rollback(s);
    return st;
}

/* Copy a text column into buf; false if NULL-free copy does not fit. */
static bool col_copy(sqlite3_stmt *st, int i, char *buf, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    size_t n = t ? (size_t)sqlite3_column_bytes(st, i) : 0;
    if (n >= cap) {
        buf[0] = '\0';
        return false;
    }
    if (n)
        memcpy(buf, t, n);
    buf[n] = '\0';
    return true;
}

static char *col_dup(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? bcd__strndup((const char *)t, (size_t)sqlite3_column_bytes(st, i)) : NULL;
}

/* ---- sessions --------------------------------------------------------------------- */

#define SESSION_COLS                                                                                              \
    "s.id, s.user_id, s.status, s.created_at, s.updated_at, s.seq, "                                             \
    "(SELECT count(*) FROM images i WHERE i.session_id = s.id), "                                                 \
    "EXISTS (SELECT 1 FROM session_analysis a WHERE a.session_id = s.id)"

static void read_session(sqlite3_stmt *st, struct bcd__session_row *r)
{
    memset(r, 0, sizeof *r);
    col_copy(st, 0, r->id, sizeof r->id);
    col_copy(st, 1, r->user_id, sizeof r->user_id);
    col_copy(st, 2, r->status, sizeof r->status);
    col_copy(st, 3, r->created_at, sizeof r->created_at);
    col_copy(st, 4, r->updated_at, sizeof r->updated_at);
    r->seq = sqlite3_column_int64(st, 5);
    r->image_count = sqlite3_column_int64(st, 6);
    r->analyzed = sqlite3_column_int(st, 7) != 0;
}

/* Read one session inside or outside a transaction. */
static bcd_status get_session(bcd_store *s, const char *id, struct bcd__session_row *out)
{
    sqlite3_stmt *st;
    bcd_status rc = prep(s, &st, "SELECT " SESSION_COLS " FROM sessions s WHERE s.id = ?1");
    if (rc != BCD_OK)
        return rc;
    bind_text(st, 1, id);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        if (out)
            read_session(st, out);
        rc = BCD_OK;
    } else if (r == SQLITE_DONE) {
        rc = bcd__fail(&s->err, BCD_ENOTFOUND, "session_not_found", "session %s not found", id);
    } else {
        rc = sqlfail(s, r, "read session");
    }
    sqlite3_finalize(st);
    return rc;
}

static bcd_status l_session_get(bcd_store *s, const char *id, struct bcd__session_row *out)
{
    return get_session(s, id, out);
}

static bcd_status l_session_create(bcd_store *s, const char *user_id, struct bcd__session_row *out)
{
    char id[BCD__ID_LEN], now[BCD__TS_LEN];
    if (bcd__uuid_v4(id) != BCD_OK)
        return bcd__fail(&s->err, BCD_ERROR, "random_failure", "cannot generate a session id");
    bcd_status rc = begin(s);
    if (rc != BCD_OK)
        return rc;
    sqlite3_stmt *st = NULL;
    bcd__timestamp_now(now);
    /* created_at never goes backwards (a clock stepped back must not reorder a user's
     * history), and seq breaks ties between sessions of the same microsecond. */
    rc = prep(s, &st,
              "INSERT INTO sessions (id, user_id, status, created_at, updated_at, seq) "
              "SELECT ?1, ?2, 'created', c, c, q FROM (SELECT max(?3, coalesce(max(created_at), '')) AS c, "
              "coalesce(max(seq), 0) + 1 AS q FROM sessions)");
    if (rc == BCD_OK) {
        bind_text(st, 1, id);
        bind_text(st, 2, user_id);
        bind_text(st, 3, now);
        rc = wstep(s, st, "create session");
    }
    sqlite3_finalize(st);
    if (rc == BCD_OK)
        rc = get_session(s, id, out);
    return finish(s, rc);
}

static bcd_status l_session_set_status(bcd_store *s, const char *id, const char *status,
                                       struct bcd__session_row *out)
{
    char now[BCD__TS_LEN];
    bcd__timestamp_now(now);
    bcd_status rc = begin(s);
    if (rc != BCD_OK)
        return rc;
    rc = get_session(s, id, NULL);
    sqlite3_stmt *st = NULL;
    if (rc == BCD_OK)
        rc = prep(s, &st, "UPDATE sessions SET status = ?2, updated_at = max(?3, updated_at) WHERE id = ?1");
    if (rc == BCD_OK) {
        bind_text(st, 1, id);
        bind_text(st, 2, status);
        bind_text(st, 3, now);
        rc = wstep(s, st, "update session");
    }
    sqlite3_finalize(st);
    if (rc == BCD_OK && out)
        rc = get_session(s, id, out);
    return finish(s, rc);
}

static bcd_status l_session_list(bcd_store *s, const char *user_id, struct bcd__session_row **out, size_t *n)
{
    sqlite3_stmt *st;
    bcd_status rc = prep(s, &st,
                         "SELECT " SESSION_COLS " FROM sessions s WHERE s.user_id = ?1 "
                         "ORDER BY s.created_at, s.seq");
    if (rc != BCD_OK)
        return rc;
    bind_text(st, 1, user_id);
    struct bcd__session_row *rows = NULL;
    size_t cnt = 0, cap = 0;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            struct bcd__session_row *nr = realloc(rows, ncap * sizeof *nr);
            if (!nr) {
                rc = oom(s);
                break;
            }
            rows = nr;
            cap = ncap;
        }
        read_session(st, &rows[cnt++]);
    }
    if (rc == BCD_OK && r != SQLITE_DONE)
        rc = sqlfail(s, r, "list sessions");
    sqlite3_finalize(st);
    if (rc != BCD_OK) {
        free(rows);
        return rc;
    }
    *out = rows;
    *n = cnt;
    return BCD_OK;
}

/* ---- images ----------------------------------------------------------------------- */

#define IMAGE_COLS                                                                                                \
    "id, session_id, image_type, order_index, storage_path, content_type, size_bytes, sha256, created_at"

static void read_image(sqlite3_stmt *st, struct bcd__image_row *r)
{
    memset(r, 0, sizeof *r);
    col_copy(st, 0, r->id, sizeof r->id);
    col_copy(st, 1, r->session_id, sizeof r->session_id);
    col_copy(st, 2, r->angle, sizeof r->angle);
    r->order_index = sqlite3_column_int(st, 3);
    col_copy(st, 4, r->storage_path, sizeof r->storage_path);
    col_copy(st, 5, r->content_type, sizeof r->content_type);
    r->size_bytes = sqlite3_column_type(st, 6) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 6);
    col_copy(st, 7, r->sha256, sizeof r->sha256);
    col_copy(st, 8, r->created_at, sizeof r->created_at);
}

static bcd_status l_image_list(bcd_store *s, const char *session_id, struct bcd__image_row **out, size_t *n)
{
    sqlite3_stmt *st;
    bcd_status rc = prep(s, &st,
                         "SELECT " IMAGE_COLS " FROM images WHERE session_id = ?1 "
                         "ORDER BY " ANGLE_ORDER("image_type") ", order_index");
    if (rc != BCD_OK)
        return rc;
    bind_text(st, 1, session_id);
    struct bcd__image_row *rows = NULL;
    size_t cnt = 0, cap = 0;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            struct bcd__image_row *nr = realloc(rows, ncap * sizeof *nr);
            if (!nr) {
                rc = oom(s);
                break;
            }
            rows = nr;
            cap = ncap;
        }
        read_image(st, &rows[cnt++]);
    }
    if (rc == BCD_OK && r != SQLITE_DONE)
        rc = sqlfail(s, r, "list images");
    sqlite3_finalize(st);
    if (rc != BCD_OK) {
        free(rows);
        return rc;
    }
    *out = rows;
    *n = cnt;
    return BCD_OK;
}

/* One image row by (session, path) or by (session, angle, slot); BCD_ENOTFOUND if none. */
static bcd_status find_image(bcd_store *s, const char *sql, const char *session_id, const char *a, int b,
                             struct bcd__image_row *out)
{
    sqlite3_stmt *st;
    bcd_status rc = prep(s, &st, sql);
    if (rc != BCD_OK)
        return rc;
    bind_text(st, 1, session_id);
    bind_text(st, 2, a);
    sqlite3_bind_int(st, 3, b);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        read_image(st, out);
    } else if (r == SQLITE_DONE) {
        rc = BCD_ENOTFOUND; /* not an error for the caller: no detail recorded */
    } else {
        rc = sqlfail(s, r, "read image");
    }
    sqlite3_finalize(st);
    return rc;
}

static bcd_status count_angle(bcd_store *s, const char *session_id, const char *angle, int *count)
{
    sqlite3_stmt *st;
    bcd_status rc = prep(s, &st, "SELECT count(*) FROM images WHERE session_id = ?1 AND image_type = ?2");
    if (rc != BCD_OK)
        return rc;
    bind_text(st, 1, session_id);
    bind_text(st, 2, angle);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW)
        *count = sqlite3_column_int(st, 0);
    else
        rc = sqlfail(s, r, "count images");
    sqlite3_finalize(st);
    return rc;
}

static bcd_status register_locked(bcd_store *s, const struct bcd__image_row *in, struct bcd__image_row *out,
                                  bool *created)
{
    struct bcd__image_row *row = malloc(sizeof *row);
    if (!row)
        return oom(s);
    bcd_status rc = get_session(s, in->session_id, NULL);
    if (rc != BCD_OK)
        goto done;

    /* 1. idempotent per (session, path) */
    rc = find_image(s, "SELECT " IMAGE_COLS " FROM images WHERE session_id = ?1 AND storage_path = ?2",
                    in->session_id, in->storage_path, 0, row);
    if (rc == BCD_OK) {
        *out = *row;
        *created = false;
        goto done;
    }
    if (rc != BCD_ENOTFOUND)
        goto done;

    int count = 0;
    rc = count_angle(s, in->session_id, in->angle, &count);
    if (rc != BCD_OK)
        goto done;
    int idx = in->order_index < 0 ? count : in->order_index;

    /* 3. the slot holds another path */
    rc = find_image(s,
                    "SELECT " IMAGE_COLS " FROM images WHERE session_id = ?1 AND image_type = ?2 "
                    "AND order_index = ?3",
                    in->session_id, in->angle, idx, row);
    if (rc == BCD_OK) {
        rc = bcd__fail(&s->err, BCD_ECONFLICT, "slot_conflict",
                       "slot %s #%d of session %s already holds another image", in->angle, idx, in->session_id);
        char details[256];
        snprintf(details, sizeof details, "{\"angle\":\"%s\",\"order_index\":%d,\"existing_image_id\":\"%s\"}",
                 in->angle, idx, row->id);
        bcd__error_set_details(&s->err, details);
        goto done;
    }
    if (rc != BCD_ENOTFOUND)
        goto done;

    /* 4. contiguous order per (session, angle) */
    if (idx != count) {
        rc = bcd__fail(&s->err, BCD_ECONFLICT, "order_index_out_of_sequence",
                       "order_index %d for %s is out of sequence: the next index is %d", idx, in->angle, count);
        char details[128];
        snprintf(details, sizeof details, "{\"angle\":\"%s\",\"order_index\":%d,\"expected_order_index\":%d}",
                 in->angle, idx, count);
        bcd__error_set_details(&s->err, details);
        goto done;
    }

    /* 5. insert */
    char id[BCD__ID_LEN], now[BCD__TS_LEN];
    if (bcd__uuid_v4(id) != BCD_OK) {
        rc = bcd__fail(&s->err, BCD_ERROR, "random_failure", "cannot generate an image id");
        goto done;
    }
    bcd__timestamp_now(now);
    sqlite3_stmt *st;
    rc = prep(s, &st,
              "INSERT INTO images (id, session_id, image_type, order_index, storage_path, content_type, "
              "size_bytes, sha256, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
    if (rc != BCD_OK)
        goto done;
    bind_text(st, 1, id);
    bind_text(st, 2, in->session_id);
    bind_text(st, 3, in->angle);
    sqlite3_bind_int(st, 4, idx);
    bind_text(st, 5, in->storage_path);
    bind_text(st, 6, in->content_type[0] ? in->content_type : NULL);
    if (in->size_bytes >= 0)
        sqlite3_bind_int64(st, 7, in->size_bytes);
    else
        sqlite3_bind_null(st, 7);
    bind_text(st, 8, in->sha256[0] ? in->sha256 : NULL);
    bind_text(st, 9, now);
    rc = wstep(s, st, "register image");
    sqlite3_finalize(st);
    if (rc != BCD_OK)
        goto done;
    rc = prep(s, &st, "UPDATE sessions SET updated_at = max(?2, updated_at) WHERE id = ?1");
    if (rc != BCD_OK)
        goto done;
    bind_text(st, 1, in->session_id);
    bind_text(st, 2, now);
    rc = wstep(s, st, "update session");
    sqlite3_finalize(st);
    if (rc != BCD_OK)
        goto done;
    /* ?3 is not in this query: binding it is a harmless SQLITE_RANGE */
    rc = find_image(s, "SELECT " IMAGE_COLS " FROM images WHERE session_id = ?1 AND id = ?2", in->session_id, id,
                    0, row);
    if (rc == BCD_ENOTFOUND)
        rc = bcd__fail(&s->err, BCD_ERROR, "internal_error", "registered image vanished");
    if (rc == BCD_OK) {
        *out = *row;
        *created = true;
    }
done:
    free(row);
    return rc;
}

static bcd_status l_image_register(bcd_store *s, const struct bcd__image_row *in, struct bcd__image_row *out,
                                   bool *created)
{
    /* a blob of this store is registered only in the session it was added to: another
     * session's key would hand its photo to this session's owner */
    if (valid_key(in->storage_path) && strncmp(in->storage_path, in->session_id, 36) != 0)
        return bcd__fail(&s->err, BCD_EINVAL, "invalid_path",
                         "'%.200s' is an image file of another session; add the photo to this one instead",
                         in->storage_path);
    bcd_status rc = begin(s);
    if (rc != BCD_OK)
        return rc;
    rc = finish(s, register_locked(s, in, out, created));
    if (rc == BCD_OK)
        committed_key(s, out->storage_path); /* the row is in: the blob needs no guard now */
    return rc;
}

/* ---- blobs ------------------------------------------------------------------------ */

static bcd_status fsync_dir(bcd_store *s, const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return file_fail(s, errno, "opening the folder %s", dir);
    int r = fsync(fd);
    int e = errno;
    close(fd);
    if (r != 0 && e != EINVAL) /* some file systems cannot fsync directories */
        return file_fail(s, e, "syncing the folder %s", dir);
    return BCD_OK;
}

/* mkdir that accepts an existing directory; *made tells whether it was created. */
static int mkdir_one(const char *path, bool *made)
{
    if (mkdir(path, 0700) == 0) {
        if (made)
            *made = true;
        return 0;
    }
    struct stat st;
    if (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    return -1;
}

static bcd_status write_all(bcd_store *s, int fd, const void *data, size_t len, const char *path)
{
    const unsigned char *p = data;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return file_fail(s, w < 0 ? errno : ENOSPC, "writing the image file %s", path);
        p += w;
        len -= (size_t)w;
    }
    return BCD_OK;
}

/* A blob key is "<uuid>/<64 hex>.<ext>": never absolute, never "..". */
static bool valid_key(const char *key)
{
    if (!key || strlen(key) < 38 || key[36] != '/')
        return false;
    char id[BCD__ID_LEN], hex[65];
    memcpy(id, key, 36);
    id[36] = '\0';
    const char *name = key + 37;
    const char *dot = strchr(name, '.');
    if (!bcd__uuid_valid(id) || !dot || dot - name != 64)
        return false;
    memcpy(hex, name, 64);
    hex[64] = '\0';
    return bcd__blob_name_valid(hex, dot + 1);
}

/* ---- pending blobs (see the top of this file) -------------------------------------- */

/* Exclusive flock on blobs/.pending for the decisions that create pending files or
 * remove final blobs. Returns the descriptor to pass to unlock_pending() (NO_LOCK where
 * the file system has no such locks), or -1 with the failure recorded. */
#define NO_LOCK (-2)
static int lock_pending(bcd_store *s)
{
    struct local *L = L_of(s);
    int fd = open(L->pending_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        file_fail(s, errno, "opening the folder %s", L->pending_dir);
        return -1;
    }
    while (flock(fd, LOCK_EX) != 0) {
        if (errno == EBADF || errno == ENOLCK || errno == EOPNOTSUPP) {
            /* no flock on directories here (some network file systems): go on
             * unlocked; only adds of the same bytes at the same instant could race */
            close(fd);
            return NO_LOCK;
        }
        if (errno != EINTR) {
            file_fail(s, errno, "locking the folder %s", L->pending_dir);
            close(fd);
            return -1;
        }
    }
    return fd;
}

static void unlock_pending(int fd)
{
    if (fd >= 0)
        close(fd); /* drops the flock */
}

/* The key a pending file name stands for: "<uuid>.<64 hex>.<ext>.XXXXXX" ->
 * "<uuid>/<64 hex>.<ext>". False if the name is not one. */
static bool pending_key(const char *name, char *key, size_t cap)
{
    size_t n = strlen(name);
    if (n < 38 + 7 || n >= cap || name[36] != '.')
        return false;
    const char *suffix = strrchr(name, '.');
    if (!suffix || strlen(suffix) != 7 || suffix - name <= 37)
        return false;
    memcpy(key, name, (size_t)(suffix - name));
    key[suffix - name] = '\0';
    key[36] = '/';
    return valid_key(key);
}

/* Whether a process other than this handle holds a pending file of key (skip: the
 * pending file of this handle to leave out, or NULL). Caller holds lock_pending(). */
static bool pending_live(struct local *L, const char *key, const char *skip)
{
    DIR *d = opendir(L->pending_dir);
    if (!d)
        return false;
    bool live = false;
    struct dirent *de;
    char k[BCD__PATH_MAX], path[PATH_MAX];
    while (!live && (de = readdir(d))) {
        if (!pending_key(de->d_name, k, sizeof k) || strcmp(k, key) != 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", L->pending_dir, de->d_name);
        if (skip && strcmp(path, skip) == 0)
            continue;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) /* held, or cannot tell: keep the blob */
            live = true;
        close(fd);
    }
    closedir(d);
    return live;
}

/* Whether a row names key: an image row, or the details of an analysis (its heatmap
 * blobs). BCD_OK with *ref set, or a recorded failure. */
static bcd_status blob_referenced(bcd_store *s, const char *key, bool *ref)
{
    sqlite3_stmt *st;
    bcd_status rc = prep(s, &st,
                         "SELECT 1 FROM images WHERE storage_path = ?1 UNION ALL "
                         "SELECT 1 FROM session_analysis WHERE instr(details, ?1) > 0 LIMIT 1");
    if (rc != BCD_OK)
        return rc;
    bind_text(st, 1, key);
    int r = sqlite3_step(st);
    sqlite3_finalize(st);
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        return sqlfail(s, r, "check blob references");
    *ref = r == SQLITE_ROW;
    return BCD_OK;
}

/* Remove the final blob of key unless a row names it or another live pending file
 * needs it. Caller holds lock_pending(). */
static bcd_status drop_unneeded(bcd_store *s, const char *key, const char *skip)
{
    struct local *L = L_of(s);
    bool ref = false;
    bcd_status rc = blob_referenced(s, key, &ref);
    if (rc != BCD_OK || ref || pending_live(L, key, skip))
        return rc;
    char path[PATH_MAX], dir[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", L->blob_dir, key);
    if (unlink(path) != 0) {
        if (errno == ENOENT)
            return BCD_OK;
        return file_fail(s, errno, "removing %s", path);
    }
    snprintf(dir, sizeof dir, "%s/%.36s", L->blob_dir, key);
    return fsync_dir(s, dir);
}

/* Forget pending entry i of this handle. committed: its row is in; else the blob goes
 * too unless something else needs it. */
static bcd_status release_pending(bcd_store *s, size_t i, bool committed)
{
    struct local *L = L_of(s);
    struct pending p = L->pend[i];
    L->pend[i] = L->pend[--L->npend];
    bcd_status rc = BCD_OK;
    if (committed) {
        unlink(p.path);
    } else {
        int lk = lock_pending(s);
        if (lk == -1) {
            rc = BCD_EIO; /* the pending file stays: the next open cleans up */
        } else {
            rc = drop_unneeded(s, p.key, p.path);
            if (rc == BCD_OK)
                unlink(p.path);
            unlock_pending(lk);
        }
    }
    close(p.fd);
    free(p.key);
    free(p.path);
    return rc;
}

/* After a successful register (or any read that proved the row is in): release the
 * pending entries of key. */
static void committed_key(bcd_store *s, const char *key)
{
    struct local *L = L_of(s);
    for (size_t i = L->npend; i-- > 0;)
        if (strcmp(L->pend[i].key, key) == 0)
            release_pending(s, i, true);
}

/* On open: pending files whose process is gone (no flock on them) are what a crash
 * left. Remove each, and the final blob it names unless a row or a live add needs it.
 * Anything else in the folder that nobody holds is debris of a crash too. */
static bcd_status recover_pending(bcd_store *s)
{
    struct local *L = L_of(s);
    DIR *d = opendir(L->pending_dir);
    if (!d)
        return file_fail(s, errno, "opening the folder %s", L->pending_dir);
    /* cheap check first: usually the folder is empty */
    struct dirent *de;
    bool any = false;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            any = true;
    if (!any) {
        closedir(d);
        return BCD_OK;
    }
    int lk = lock_pending(s);
    if (lk == -1) {
        closedir(d);
        return BCD_EIO;
    }
    rewinddir(d);
    bcd_status rc = BCD_OK;
    bool removed = false;
    char key[BCD__PATH_MAX], path[PATH_MAX];
    while (rc == BCD_OK && (de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", L->pending_dir, de->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
            continue;
        bool dead = flock(fd, LOCK_EX | LOCK_NB) == 0;
        if (dead) {
            if (pending_key(de->d_name, key, sizeof key))
                rc = drop_unneeded(s, key, path);
            if (rc == BCD_OK && unlink(path) != 0 && errno != ENOENT)
                rc = file_fail(s, errno, "removing %s", path);
            removed = true;
            bcd__log(s->ctx, BCD_LOG_INFO, "local store: removed %s left by an interrupted image add", path);
        }
        close(fd);
    }
    closedir(d);
    if (rc == BCD_OK && removed)
        rc = fsync_dir(s, L->pending_dir);
    unlock_pending(lk);
    return rc;
}

/* Whether the file at path holds exactly data (len bytes); false also when it cannot be
 * read (then it is replaced, which is safe: the replacement holds the right bytes). */
static bool same_bytes(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return false;
    struct stat st;
    bool same = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size == len;
    const unsigned char *p = data;
    unsigned char buf[65536];
    size_t off = 0;
    while (same && off < len) {
        size_t want = len - off < sizeof buf ? len - off : sizeof buf;
        ssize_t r = read(fd, buf, want);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || memcmp(buf, p + off, (size_t)r) != 0)
            same = false;
        else
            off += (size_t)r;
    }
    close(fd);
    return same;
}

/* The final file of a blob is there but does not hold its bytes (its size or content
 * differs from what its content name promises: truncated, altered or replaced on disk): put the pending file's
 * inode, which holds the right bytes, in its place, and name the pending file again
 * (same inode, still locked by this handle). Under the folder lock, so that no other
 * handle's clean-up sees the blob without its pending file in between. */
static bcd_status replace_damaged(bcd_store *s, const char *tmp, const char *path)
{
    int lk = lock_pending(s);
    if (lk == -1)
        return BCD_EIO;
    bcd_status rc = BCD_OK;
    if (rename(tmp, path) != 0)
        rc = file_fail(s, errno, "replacing the damaged file %s", path);
    else if (link(path, tmp) != 0)
        rc = file_fail(s, errno, "naming the pending file %s", tmp);
    unlock_pending(lk);
    if (rc == BCD_OK)
        bcd__log(s->ctx, BCD_LOG_WARN, "local store: %s did not match its name; stored again", path);
    return rc;
}

static bcd_status l_blob_put(bcd_store *s, const char *session_id, const char *sha, const char *ext,
                             const void *data, size_t len, char *key, bool *created)
{
    struct local *L = L_of(s);
    if (!bcd__uuid_valid(session_id) || !bcd__blob_name_valid(sha, ext))
        return bcd__fail(&s->err, BCD_EINVAL, "invalid_argument", "invalid blob key parts");
    char dir[PATH_MAX], path[PATH_MAX], tmp[PATH_MAX];
    snprintf(key, BCD__PATH_MAX, "%s/%s.%s", session_id, sha, ext);
    if ((size_t)snprintf(dir, sizeof dir, "%s/%s", L->blob_dir, session_id) >= sizeof dir ||
        (size_t)snprintf(path, sizeof path, "%s/%s", L->blob_dir, key) >= sizeof path ||
        (size_t)snprintf(tmp, sizeof tmp, "%s/%s.%s.%s.XXXXXX", L->pending_dir, session_id, sha, ext) >= sizeof tmp)
        return bcd__fail(&s->err, BCD_EINVAL, "path_too_long", "data directory path is too long");
    if (L->npend == L->cap_pend) {
        size_t ncap = L->cap_pend ? L->cap_pend * 2 : 4;
        struct pending *np = realloc(L->pend, ncap * sizeof *np);
        if (!np)
            return oom(s);
        L->pend = np;
        L->cap_pend = ncap;
    }

    bool made = false;
    if (mkdir_one(dir, &made) != 0)
        return file_fail(s, errno, "creating the folder %s", dir);
    if (made) {
        bcd_status rc = fsync_dir(s, L->blob_dir);
        if (rc != BCD_OK)
            return rc;
    }
    /* the pending file, created and locked under the folder lock: a cleaner that sees
     * it unlocked knows its process is gone */
    int lk = lock_pending(s);
    if (lk == -1)
        return BCD_EIO;
    int fd = mkstemp(tmp);
    int e = errno;
    if (fd >= 0 && flock(fd, LOCK_EX) != 0) {
        e = errno;
        close(fd);
        unlink(tmp);
        fd = -1;
    }
    unlock_pending(lk);
    if (fd < 0)
        return file_fail(s, e, "creating a file in %s", L->pending_dir);

    bcd_status rc = BCD_OK;
    bool made_blob = false;
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size == len && same_bytes(path, data, len)) {
        /* content addressed and compared: the file holds these bytes; the pending file
         * (empty) keeps it from being removed until the row is in */
    } else {
        rc = write_all(s, fd, data, len, tmp);
        if (rc == BCD_OK && fsync(fd) != 0)
            rc = file_fail(s, errno, "syncing the image file %s", tmp);
        if (rc == BCD_OK)
            rc = fsync_dir(s, L->pending_dir);
        if (rc == BCD_OK) {
            if (link(tmp, path) == 0) {
                made_blob = true;
            } else if (errno == EEXIST) {
                /* another add of the same bytes was first, or the file there is damaged
                 * (other bytes than its name promises): then it is replaced */
                if (stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
                    ((size_t)st.st_size != len || !same_bytes(path, data, len)))
                    rc = replace_damaged(s, tmp, path);
            } else {
                rc = file_fail(s, errno, "storing the image file %s", path);
            }
        }
        if (rc == BCD_OK)
            rc = fsync_dir(s, dir);
    }
    char *k = rc == BCD_OK ? bcd__strdup(key) : NULL, *p = rc == BCD_OK ? bcd__strdup(tmp) : NULL;
    if (rc == BCD_OK && (!k || !p))
        rc = oom(s);
    if (rc != BCD_OK) {
        free(k);
        free(p);
        if (made_blob) {
            /* undo the final file unless another add or a row needs it */
            bcd_error saved = s->err;
            lk = lock_pending(s);
            if (lk != -1)
                drop_unneeded(s, key, tmp);
            unlock_pending(lk);
            s->err = saved;
            if (lk == -1) {
                close(fd); /* the pending file stays: the next open removes both */
                return rc;
            }
        }
        unlink(tmp);
        close(fd);
        return rc;
    }
    L->pend[L->npend++] = (struct pending){.key = k, .path = p, .fd = fd};
    *created = made_blob;
    return BCD_OK;
}

/* Give up an add: the blob goes unless a row or another add in progress needs it. */
static bcd_status l_blob_delete(bcd_store *s, const char *key)
{
    struct local *L = L_of(s);
    if (!valid_key(key))
        return bcd__fail(&s->err, BCD_EINVAL, "invalid_argument", "not a blob key: %s", key);
    bool mine = false;
    bcd_status rc = BCD_OK;
    for (size_t i = L->npend; i-- > 0;)
        if (strcmp(L->pend[i].key, key) == 0) {
            bcd_status r = release_pending(s, i, false);
            if (rc == BCD_OK)
                rc = r;
            mine = true;
        }
    if (mine)
        return rc;
    int lk = lock_pending(s);
    if (lk == -1)
        return BCD_EIO;
    rc = drop_unneeded(s, key, NULL);
    unlock_pending(lk);
    return rc;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Whether path (absolute, canonical or not) lies in folder dir (canonical). */
static bool path_under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    if (n == 1 && dir[0] == '/')
        return path[0] == '/';
    return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

/* What a registered absolute path may name on the local store: a file in one of the
 * folders listed in BCD_IMAGE_DIRS (colon separated), never one in the data folder (a
 * blob of another session, the database): `image register` records any path, as the
 * seeds do, but analysis and previews read only these. file: the decoded path; real:
 * where it leads (symbolic links resolved) or NULL if it does not exist. */
static bool path_allowed(bcd_store *s, const char *file, const char *real)
{
    struct local *L = L_of(s);
    const char *target = real ? real : file;
    if (path_under(target, L->dir) || path_under(file, L->dir))
        return false;
    const char *list = bcd__cfg(s->ctx, BCD__CFG_IMAGE_DIRS);
    if (!list)
        return false;
    char dir[PATH_MAX], canon[PATH_MAX];
    for (const char *p = list; *p;) {
        const char *colon = strchr(p, ':');
        size_t n = colon ? (size_t)(colon - p) : strlen(p);
        if (n > 0 && n < sizeof dir && p[0] == '/') {
            memcpy(dir, p, n);
            dir[n] = '\0';
            while (n > 1 && dir[n - 1] == '/')
                dir[--n] = '\0';
            if (realpath(dir, canon) && path_under(target, canon))
                return true;
            if (!real && path_under(file, dir))
                return true;
        }
        p += n + (colon ? 1 : 0);
    }
    return false;
}

/* Local file a stored path names, into buf: blob key, absolute path or file:// URL.
 * BCD_EUNSUPPORTED for remote URLs, BCD_EINVAL for anything else; an absolute path
 * outside the folders path_allowed() accepts is BCD_EINVAL "image_path_not_allowed". */
static bcd_status resolve(bcd_store *s, const char *path, char *buf, size_t cap)
{
    struct local *L = L_of(s);
    if (strncmp(path, "http://", 7) == 0 || strncmp(path, "https://", 8) == 0)
        return bcd__fail(&s->err, BCD_EUNSUPPORTED, "remote_image_unsupported",
                         "the local store cannot fetch remote images (%.200s)", path);
    bool absolute = false;
    if (strncmp(path, "file://", 7) == 0) {
        const char *p = path + 7;
        if (strncmp(p, "localhost/", 10) == 0)
            p += 9;
        if (*p != '/')
            return bcd__fail(&s->err, BCD_EINVAL, "invalid_path", "unsupported file URL: %.200s", path);
        size_t n = 0;
        for (; *p; p++) {
            int c = (unsigned char)*p;
            if (c == '%') {
                int hi = hexval(p[1]), lo = hi >= 0 ? hexval(p[2]) : -1;
                if (lo < 0 || (hi == 0 && lo == 0))
                    return bcd__fail(&s->err, BCD_EINVAL, "invalid_path", "bad escape in file URL: %.200s", path);
                c = hi * 16 + lo;
                p += 2;
            }
            if (n + 1 >= cap)
                return bcd__fail(&s->err, BCD_EINVAL, "path_too_long", "path too long");
            buf[n++] = (char)c;
        }
        buf[n] = '\0';
        absolute = true;
    } else if (path[0] == '/') {
        if (strlen(path) >= cap)
            return bcd__fail(&s->err, BCD_EINVAL, "path_too_long", "path too long");
        strcpy(buf, path);
        absolute = true;
    }
    if (absolute) {
        char real[PATH_MAX];
        bool exists = realpath(buf, real) != NULL;
        if (!path_allowed(s, buf, exists ? real : NULL))
            return bcd__fail(&s->err, BCD_EINVAL, "image_path_not_allowed",
                             "the local store reads registered files only in the folders listed in BCD_IMAGE_DIRS, "
                             "never in its data folder; %.200s is not in one (list its folder in BCD_IMAGE_DIRS, "
                             "or add the photo with `bcd-cli image add`)",
                             buf);
        return BCD_OK;
    }
    if (!valid_key(path))
        return bcd__fail(&s->err, BCD_ENOTFOUND, "image_file_missing",
                         "'%.200s' is neither a blob of this store nor an absolute path", path);
    if ((size_t)snprintf(buf, cap, "%s/%s", L->blob_dir, path) >= cap)
        return bcd__fail(&s->err, BCD_EINVAL, "path_too_long", "path too long");
    return BCD_OK;
}

static bcd_status l_blob_get(bcd_store *s, const char *path, size_t max_len, unsigned char **out, size_t *len)
{
    char file[PATH_MAX];
    bcd_status rc = resolve(s, path, file, sizeof file);
    if (rc != BCD_OK)
        return rc;
    int e = 0;
    size_t size = 0;
    switch (bcd__read_regular(file, max_len, out, len, &e, &size)) {
    case BCD__READ_OK:
        return BCD_OK;
    case BCD__READ_MISSING:
        return bcd__fail(&s->err, BCD_ENOTFOUND, "image_file_missing", "image file %s does not exist", file);
    case BCD__READ_OPEN:
        return bcd__fail(&s->err, BCD_EIO, "image_file_unreadable", "cannot open %s: %s", file, strerror(e));
    case BCD__READ_NOT_FILE:
        return bcd__fail(&s->err, BCD_EIO, "image_file_unreadable",
                         "%s is not a regular file (a FIFO, device or folder is never read)", file);
    case BCD__READ_TOO_LARGE:
        return bcd__fail(&s->err, BCD_ELIMIT, "image_file_too_large", "%s is %zu bytes, limit %zu", file, size,
                         max_len);
    case BCD__READ_NOMEM:
        return oom(s);
    case BCD__READ_IO:
        return bcd__fail(&s->err, BCD_EIO, "image_file_unreadable", "short read on %s%s%s", file, e ? ": " : "",
                         e ? strerror(e) : "");
    case BCD__READ_SLOW:
        return bcd__fail(&s->err, BCD_EIO, "image_file_unreadable", "reading %s took longer than %d s; given up",
                         file, BCD__READ_TIMEOUT_MS / 1000);
    }
    return bcd__fail(&s->err, BCD_ERROR, "internal_error", "cannot read %s", file);
}

/* "file://" + percent-encoded absolute path (RFC 8089). */
static char *file_url(const char *path)
{
    size_t n = strlen(path);
    char *u = malloc(7 + 3 * n + 1);
    if (!u)
        return NULL;
    static const char hex[] = "0123456789ABCDEF";
    char *p = u;
    memcpy(p, "file://", 7);
    p += 7;
    for (const unsigned char *c = (const unsigned char *)path; *c; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
            strchr("/-._~", *c)) {
            *p++ = (char)*c;
        } else {
            *p++ = '%';
            *p++ = hex[*c >> 4];
            *p++ = hex[*c & 15];
        }
    }
    *p = '\0';
    return u;
}

static bcd_status l_blob_locate(bcd_store *s, const char *path, char **url, char **local_path, int *expires_in)
{
    if (strncmp(path, "http://", 7) == 0 || strncmp(path, "https://", 8) == 0) {
        /* registered as a URL: hand it back as it is */
        char *u = bcd__strdup(path);
        if (!u)
            return oom(s);
        *url = u;
        *local_path = NULL;
        *expires_in = -1;
        return BCD_OK;
    }
    char file[PATH_MAX];
    bcd_status rc = resolve(s, path, file, sizeof file);
    if (rc != BCD_OK)
        return rc;
    struct stat st;
    if (stat(file, &st) != 0 || !S_ISREG(st.st_mode))
        return bcd__fail(&s->err, BCD_ENOTFOUND, "image_file_missing", "image file %s does not exist", file);
    char *u = file_url(file), *lp = bcd__strdup(file);
    if (!u || !lp) {
        free(u);
        free(lp);
        return oom(s);
    }
    *url = u;
    *local_path = lp;
    *expires_in = -1;
    return BCD_OK;
}

/* ---- analyses --------------------------------------------------------------------- */

static bcd_status insert_embedding(bcd_store *s, const char *sql, const char *session_id, const char *angle,
                                   const char *model, const float *v, size_t dim, const char *now)
{
    char *json = bcd__embedding_to_json(v, dim);
    char sum[65];
    if (!json)
        return oom(s);
    if (bcd__sha256_hex(json, strlen(json), sum) != BCD_OK) {
        free(json);
        return bcd__fail(&s->err, BCD_ERROR, "digest_failure", "cannot compute a checksum");
    }
    sqlite3_stmt *st;
    bcd_status rc = prep(s, &st, sql);
    if (rc == BCD_OK) {
        bind_text(st, 1, session_id);
        bind_text(st, 2, model);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)dim);
        bind_text(st, 4, sum);
        sqlite3_bind_text(st, 5, json, -1, SQLITE_STATIC);
        bind_text(st, 6, now);
        if (angle)
            bind_text(st, 7, angle);
        rc = wstep(s, st, "save embedding");
    }
    sqlite3_finalize(st);
    free(json);
    return rc;
}

static bcd_status save_locked(bcd_store *s, struct bcd__analysis *a, bool *overwritten)
{
    bcd_status rc = get_session(s, a->session_id, NULL);
    if (rc != BCD_OK)
        return rc;
    sqlite3_stmt *st;
    rc = prep(s, &st, "SELECT 1 FROM session_analysis WHERE session_id = ?1");
    if (rc != BCD_OK)
        return rc;
    bind_text(st, 1, a->session_id);
    int r = sqlite3_step(st);
    sqlite3_finalize(st);
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        return sqlfail(s, r, "read analysis");
    *overwritten = r == SQLITE_ROW;

    static const char *const wipe[] = {
        "DELETE FROM angle_embeddings WHERE session_id = ?1",
        "DELETE FROM session_embeddings WHERE session_id = ?1",
        "DELETE FROM angle_analysis WHERE session_id = ?1",
        "DELETE FROM session_analysis WHERE session_id = ?1",
    };
    for (size_t i = 0; i < sizeof wipe / sizeof wipe[0]; i++) {
        if ((rc = prep(s, &st, wipe[i])) != BCD_OK)
            return rc;
        bind_text(st, 1, a->session_id);
        rc = wstep(s, st, "replace analysis");
        sqlite3_finalize(st);
        if (rc != BCD_OK)
            return rc;
    }

    bcd__timestamp_now(a->created_at);
    rc = prep(s, &st,
              "INSERT INTO session_analysis (session_id, overall_change_score, confidence, summary, model, dim, "
              "baseline_sessions, details, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
    if (rc != BCD_OK)
        return rc;
    bind_text(st, 1, a->session_id);
    sqlite3_bind_double(st, 2, a->overall_change_score);
    sqlite3_bind_double(st, 3, a->confidence);
    bind_text(st, 4, a->summary ? a->summary : "");
    bind_text(st, 5, a->model);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)a->dim);
    sqlite3_bind_int(st, 7, a->baseline_sessions);
    bind_text(st, 8, a->details_json);
    bind_text(st, 9, a->created_at);
    rc = wstep(s, st, "save analysis");
    sqlite3_finalize(st);
    if (rc != BCD_OK)
        return rc;

    for (size_t i = 0; i < a->n_angles; i++) {
        const struct bcd__angle_analysis *g = &a->angles[i];
        rc = prep(s, &st,
                  "INSERT INTO angle_analysis (session_id, angle_type, change_score, summary, image_count, "
                  "baseline_sessions, sharpness, blur_variance, clipped_fraction, quality, created_at) "
                  "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");
        if (rc != BCD_OK)
            return rc;
        bind_text(st, 1, a->session_id);
        bind_text(st, 2, g->angle);
        sqlite3_bind_double(st, 3, g->change_score);
        bind_text(st, 4, g->summary ? g->summary : "");
        sqlite3_bind_int(st, 5, g->image_count);
        sqlite3_bind_int(st, 6, g->baseline_sessions);
        sqlite3_bind_double(st, 7, g->sharpness);
        sqlite3_bind_double(st, 8, g->blur_variance);
        sqlite3_bind_double(st, 9, g->clipped_fraction);
        sqlite3_bind_double(st, 10, g->quality);
        bind_text(st, 11, a->created_at);
        rc = wstep(s, st, "save angle analysis");
        sqlite3_finalize(st);
        if (rc != BCD_OK)
            return rc;
    }
    for (size_t i = 0; i < a->n_angles; i++) {
        if (!a->angle_vec[i])
            continue;
        rc = insert_embedding(s,
                              "INSERT INTO angle_embeddings (session_id, model, dim, checksum, embedding, "
                              "created_at, angle) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                              a->session_id, a->angles[i].angle, a->model, a->angle_vec[i], a->dim, a->created_at);
        if (rc != BCD_OK)
            return rc;
    }
    if (a->session_vec)
        rc = insert_embedding(s,
                              "INSERT INTO session_embeddings (session_id, model, dim, checksum, embedding, "
                              "created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                              a->session_id, NULL, a->model, a->session_vec, a->dim, a->created_at);
    return rc;
}

static bcd_status l_analysis_save(bcd_store *s, struct bcd__analysis *a, bool *overwritten)
{
    if (a->n_angles > BCD__ANGLE_COUNT || ((a->session_vec || a->n_angles) && a->dim == 0))
        return bcd__fail(&s->err, BCD_EINVAL, "invalid_argument", "malformed analysis");
    bool ow = false;
    bcd_status rc = begin(s);
    if (rc != BCD_OK)
        return rc;
    rc = finish(s, save_locked(s, a, &ow));
    if (rc == BCD_OK) {
        *overwritten = ow;
        /* the blobs the analysis names (its heatmaps) are now referenced by a row */
        for (size_t i = L_of(s)->npend; i-- > 0;)
            if (a->details_json && strstr(a->details_json, L_of(s)->pend[i].key))
                release_pending(s, i, true);
    }
    return rc;
}

/* Parse a stored embedding row (model, dim, checksum, embedding at columns c..c+3).
 * Returns BCD_OK with *vec NULL if the row is of another model or dimension. */
static bcd_status read_embedding(bcd_store *s, sqlite3_stmt *st, int c, const char *want_model, size_t want_dim,
                                 const char *session_id, float **vec, size_t *dim, char *model, size_t model_cap)
{
    *vec = NULL;
    char m[BCD__MODEL_MAX];
    col_copy(st, c, m, sizeof m);
    sqlite3_int64 d = sqlite3_column_int64(st, c + 1);
    if ((want_model && strcmp(m, want_model) != 0) || d <= 0 || (want_dim && (size_t)d != want_dim))
        return BCD_OK;
    const char *text = (const char *)sqlite3_column_text(st, c + 3);
    const char *sum = (const char *)sqlite3_column_text(st, c + 2);
    char check[65];
    if (!text || !sum || bcd__sha256_hex(text, strlen(text), check) != BCD_OK || strcmp(check, sum) != 0)
        return bcd__fail(&s->err, BCD_EFORMAT, "embedding_corrupt",
                         "a stored embedding of session %s fails its checksum", session_id);
    bcd_status rc = bcd__embedding_from_json(text, (size_t)d, vec, NULL);
    if (rc == BCD_ENOMEM)
        return oom(s);
    if (rc != BCD_OK)
        return bcd__fail(&s->err, BCD_EFORMAT, "embedding_corrupt", "a stored embedding of session %s is malformed",
                         session_id);
    if (dim)
        *dim = (size_t)d;
    if (model)
        snprintf(model, model_cap, "%s", m);
    return BCD_OK;
}

static bcd_status get_locked(bcd_store *s, const char *session_id, struct bcd__analysis *a)
{
    sqlite3_stmt *st;
    bcd_status rc = prep(s, &st,
                         "SELECT overall_change_score, confidence, summary, model, dim, baseline_sessions, details, "
                         "created_at FROM session_analysis WHERE session_id = ?1");
    if (rc != BCD_OK)
        return rc;
    bind_text(st, 1, session_id);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        snprintf(a->session_id, sizeof a->session_id, "%s", session_id);
        a->overall_change_score = sqlite3_column_double(st, 0);
        a->confidence = sqlite3_column_double(st, 1);
        a->summary = col_dup(st, 2);
        col_copy(st, 3, a->model, sizeof a->model);
        a->dim = (size_t)sqlite3_column_int64(st, 4);
        a->baseline_sessions = sqlite3_column_int(st, 5);
        a->details_json = col_dup(st, 6);
        col_copy(st, 7, a->created_at, sizeof a->created_at);
        if (!a->summary)
            rc = oom(s);
    } else if (r == SQLITE_DONE) {
        rc = bcd__fail(&s->err, BCD_ENOTFOUND, "analysis_not_found", "session %s has not been analyzed",
                       session_id);
    } else {
        rc = sqlfail(s, r, "read analysis");
    }
    sqlite3_finalize(st);
    if (rc != BCD_OK)
        return rc;

    rc = prep(s, &st,
              "SELECT angle_type, change_score, summary, image_count, baseline_sessions, sharpness, blur_variance, "
              "clipped_fraction, quality FROM angle_analysis WHERE session_id = ?1 "
              "ORDER BY " ANGLE_ORDER("angle_type"));
    if (rc != BCD_OK)
        return rc;
    bind_text(st, 1, session_id);
    while ((r = sqlite3_step(st)) == SQLITE_ROW && a->n_angles < BCD__ANGLE_COUNT) {
        struct bcd__angle_analysis *g = &a->angles[a->n_angles++];
        col_copy(st, 0, g->angle, sizeof g->angle);
        g->change_score = sqlite3_column_double(st, 1);
        g->summary = col_dup(st, 2);
        g->image_count = sqlite3_column_int(st, 3);
        g->baseline_sessions = sqlite3_column_int(st, 4);
        g->sharpness = sqlite3_column_double(st, 5);
        g->blur_variance = sqlite3_column_double(st, 6);
        g->clipped_fraction = sqlite3_column_double(st, 7);
        g->quality = sqlite3_column_double(st, 8);
        if (!g->summary) {
            rc = oom(s);
            break;
        }
    }
    if (rc == BCD_OK && r != SQLITE_DONE && r != SQLITE_ROW)
        rc = sqlfail(s, r, "read angle analysis");
    sqlite3_finalize(st);
    if (rc != BCD_OK)
        return rc;

    rc = prep(s, &st, "SELECT angle, model, dim, checksum, embedding FROM angle_embeddings WHERE session_id = ?1");
    if (rc != BCD_OK)
        return rc;
    bind_text(st, 1, session_id);
    while (rc == BCD_OK && (r = sqlite3_step(st)) == SQLITE_ROW) {
        char angle[16];
        col_copy(st, 0, angle, sizeof angle);
        for (size_t i = 0; i < a->n_angles; i++) {
            if (strcmp(a->angles[i].angle, angle) != 0 || a->angle_vec[i])
                continue;
            rc = read_embedding(s, st, 1, a->model, a->dim, session_id, &a->angle_vec[i], NULL, NULL, 0);
            break;
        }
    }
    if (rc == BCD_OK && r != SQLITE_DONE)
        rc = sqlfail(s, r, "read embeddings");
    sqlite3_finalize(st);
    if (rc != BCD_OK)
        return rc;

    rc = prep(s, &st, "SELECT model, dim, checksum, embedding FROM session_embeddings WHERE session_id = ?1");
    if (rc != BCD_OK)
        return rc;
    bind_text(st, 1, session_id);
    r = sqlite3_step(st);
    if (r == SQLITE_ROW)
        rc = read_embedding(s, st, 0, a->model, a->dim, session_id, &a->session_vec, NULL, NULL, 0);
    else if (r != SQLITE_DONE)
        rc = sqlfail(s, r, "read embeddings");
    sqlite3_finalize(st);
    return rc;
}

static bcd_status l_analysis_get(bcd_store *s, const char *session_id, struct bcd__analysis *out)
{
    struct bcd__analysis a;
    memset(&a, 0, sizeof a);
    /* one read transaction: a concurrent re-analysis is seen entirely or not at all */
    bcd_status rc = exec(s, "BEGIN", "begin transaction");
    if (rc != BCD_OK)
        return rc;
    rc = get_locked(s, session_id, &a);
    sqlite3_exec(L_of(s)->db, "COMMIT", NULL, NULL, NULL);
    if (rc != BCD_OK) {
        bcd__analysis_clear(&a);
        return rc;
    }
    *out = a;
    return BCD_OK;
}

static bcd_status l_embeddings_for_user(bcd_store *s, const char *user_id, const char *model,
                                        struct bcd__embedding **out, size_t *n)
{
    sqlite3_stmt *st;
    bcd_status rc = prep(s, &st,
                         "SELECT e.session_id, '', e.model, e.dim, e.checksum, e.embedding "
                         "FROM session_embeddings e JOIN sessions s ON s.id = e.session_id "
                         "WHERE s.user_id = ?1 AND (?2 IS NULL OR e.model = ?2) "
                         "UNION ALL "
                         "SELECT e.session_id, e.angle, e.model, e.dim, e.checksum, e.embedding "
                         "FROM angle_embeddings e JOIN sessions s ON s.id = e.session_id "
                         "WHERE s.user_id = ?1 AND (?2 IS NULL OR e.model = ?2)");
    if (rc != BCD_OK)
        return rc;
    bind_text(st, 1, user_id);
    bind_text(st, 2, model);
    struct bcd__embedding *rows = NULL;
    size_t cnt = 0, cap = 0;
    int r = SQLITE_DONE;
    while (rc == BCD_OK && (r = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct bcd__embedding *nr = realloc(rows, ncap * sizeof *nr);
            if (!nr) {
                rc = oom(s);
                break;
            }
            rows = nr;
            cap = ncap;
        }
        struct bcd__embedding *e = &rows[cnt];
        memset(e, 0, sizeof *e);
        col_copy(st, 0, e->session_id, sizeof e->session_id);
        col_copy(st, 1, e->angle, sizeof e->angle);
        rc = read_embedding(s, st, 2, NULL, 0, e->session_id, &e->vec, &e->dim, e->model, sizeof e->model);
        if (rc == BCD_OK && e->vec)
            cnt++;
    }
    if (rc == BCD_OK && r != SQLITE_DONE)
        rc = sqlfail(s, r, "read embeddings");
    sqlite3_finalize(st);
    if (rc != BCD_OK) {
        bcd__embeddings_free(rows, cnt);
        return rc;
    }
    *out = rows;
    *n = cnt;
    return BCD_OK;
}

/* ==== job queue ======================================================================
 * The analysis job queue of store.h ("Analysis job queue"). Every operation is one
 * `BEGIN IMMEDIATE` transaction: a claim reads the candidates and takes one while
 * holding the database's write lock, so two workers (threads or processes) never take
 * the same job, and a crash in the middle leaves the queue as it was.
 * ==================================================================================== */

#define JOB_COLS                                                                                                  \
    "id, session_id, user_id, model, status, attempts, max_attempts, worker_id, lease_until_ms, run_after_ms, "  \
    "error_code, error, created_at, updated_at, started_at, finished_at"

static void read_job(sqlite3_stmt *st, struct bcd__job_row *r)
{
    memset(r, 0, sizeof *r);
    col_copy(st, 0, r->id, sizeof r->id);
    col_copy(st, 1, r->session_id, sizeof r->session_id);
    col_copy(st, 2, r->user_id, sizeof r->user_id);
    col_copy(st, 3, r->model, sizeof r->model);
    col_copy(st, 4, r->status, sizeof r->status);
    r->attempts = sqlite3_column_int(st, 5);
    r->max_attempts = sqlite3_column_int(st, 6);
    col_copy(st, 7, r->worker_id, sizeof r->worker_id);
    if (sqlite3_column_type(st, 8) != SQLITE_NULL && strcmp(r->status, "running") == 0)
        bcd__timestamp_of_ms(sqlite3_column_int64(st, 8), r->lease_expires_at);
    bcd__timestamp_of_ms(sqlite3_column_int64(st, 9), r->run_after);
    col_copy(st, 10, r->error_code, sizeof r->error_code);
    col_copy(st, 11, r->error, sizeof r->error);
    col_copy(st, 12, r->created_at, sizeof r->created_at);
    col_copy(st, 13, r->updated_at, sizeof r->updated_at);
    col_copy(st, 14, r->started_at, sizeof r->started_at);
    col_copy(st, 15, r->finished_at, sizeof r->finished_at);
}

/* One job by a query whose ?1 is `key`; BCD_ENOTFOUND "job_not_found" if none. */
static bcd_status find_job(bcd_store *s, const char *sql, const char *key, struct bcd__job_row *out)
{
    sqlite3_stmt *st;
    bcd_status rc = prep(s, &st, sql);
    if (rc != BCD_OK)
        return rc;
    bind_text(st, 1, key);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW)
        read_job(st, out);
    else if (r == SQLITE_DONE)
        rc = bcd__fail(&s->err, BCD_ENOTFOUND, "job_not_found", "job %s not found", key);
    else
        rc = sqlfail(s, r, "read job");
    sqlite3_finalize(st);
    return rc;
}

#define JOB_BY_ID "SELECT " JOB_COLS " FROM jobs WHERE id = ?1"

static bcd_status l_job_get(bcd_store *s, const char *job_id, struct bcd__job_row *out)
{
    return find_job(s, JOB_BY_ID, job_id, out);
}

static bcd_status l_job_get_for_session(bcd_store *s, const char *session_id, struct bcd__job_row *out)
{
    bcd_status rc = find_job(s, "SELECT " JOB_COLS " FROM jobs WHERE session_id = ?1 ORDER BY seq DESC LIMIT 1",
                             session_id, out);
    if (rc == BCD_ENOTFOUND)
        rc = bcd__fail(&s->err, BCD_ENOTFOUND, "job_not_found", "session %s has no analysis job", session_id);
    return rc;
}

static bcd_status enqueue_locked(bcd_store *s, const char *session_id, const char *user_id, const char *model,
                                 int max_attempts, struct bcd__job_row *out, bool *created)
{
    bcd_status rc = get_session(s, session_id, NULL);
    if (rc != BCD_OK)
        return rc;
    rc = find_job(s,
                  "SELECT " JOB_COLS " FROM jobs WHERE session_id = ?1 AND status IN ('queued', 'running') "
                  "ORDER BY seq DESC LIMIT 1",
                  session_id, out);
    if (rc == BCD_OK) {
        *created = false;
        return BCD_OK;
    }
    if (rc != BCD_ENOTFOUND)
        return rc;
    bcd__error_clear(&s->err);

    char id[BCD__ID_LEN], now[BCD__TS_LEN];
    if (bcd__uuid_v4(id) != BCD_OK)
        return bcd__fail(&s->err, BCD_ERROR, "random_failure", "cannot generate a job id");
    bcd__timestamp_now(now);
    sqlite3_stmt *st;
    rc = prep(s, &st,
              "INSERT INTO jobs (id, session_id, user_id, model, status, attempts, max_attempts, run_after_ms, "
              "created_at, updated_at, seq) SELECT ?1, ?2, ?3, ?4, 'queued', 0, ?5, ?6, ?7, ?7, "
              "coalesce(max(seq), 0) + 1 FROM jobs");
    if (rc != BCD_OK)
        return rc;
    bind_text(st, 1, id);
    bind_text(st, 2, session_id);
    bind_text(st, 3, user_id);
    bind_text(st, 4, model && *model ? model : NULL);
    sqlite3_bind_int(st, 5, max_attempts);
    sqlite3_bind_int64(st, 6, bcd__time_ms());
    bind_text(st, 7, now);
    rc = wstep(s, st, "enqueue job");
    sqlite3_finalize(st);
    if (rc == BCD_OK)
        rc = find_job(s, JOB_BY_ID, id, out);
    if (rc == BCD_OK)
        *created = true;
    return rc;
}

static bcd_status l_job_enqueue(bcd_store *s, const char *session_id, const char *user_id, const char *model,
                                int max_attempts, struct bcd__job_row *out, bool *created)
{
    if (max_attempts <= 0)
        max_attempts = BCD__JOB_DEFAULT_ATTEMPTS;
    if (max_attempts > BCD__JOB_MAX_ATTEMPTS || !user_id || !*user_id ||
        (model && strlen(model) >= sizeof out->model))
        return bcd__fail(&s->err, BCD_EINVAL, "invalid_argument", "invalid job parameters");
    bcd_status rc = begin(s);
    if (rc != BCD_OK)
        return rc;
    bool made = false;
    rc = finish(s, enqueue_locked(s, session_id, user_id, model, max_attempts, out, &made));
    if (rc == BCD_OK)
        *created = made;
    return rc;
}

/* Run one write statement with up to four bound values: ?1 text, ?2 int64, ?3 text,
 * ?4 text. *changes receives the number of rows it changed. */
static bcd_status job_write(bcd_store *s, const char *sql, const char *a, int64_t b, const char *c, const char *d,
                            int *changes, const char *what)
{
    sqlite3_stmt *st;
    bcd_status rc = prep(s, &st, sql);
    if (rc != BCD_OK)
        return rc;
    int n = sqlite3_bind_parameter_count(st);
    if (n >= 1)
        bind_text(st, 1, a);
    if (n >= 2)
        sqlite3_bind_int64(st, 2, b);
    if (n >= 3)
        bind_text(st, 3, c);
    if (n >= 4)
        bind_text(st, 4, d);
    rc = wstep(s, st, what);
    sqlite3_finalize(st);
    if (rc == BCD_OK && changes)
        *changes = sqlite3_changes(L_of(s)->db);
    return rc;
}

static bcd_status claim_locked(bcd_store *s, const char *worker_id, int64_t lease_ms, struct bcd__job_row *out,
                               bool *claimed, int64_t *wait_ms)
{
    char now[BCD__TS_LEN];
    bcd__timestamp_now(now);
    const int64_t t = bcd__time_ms();

    /* a worker that died (or hung) on the last allowed attempt: the job has failed */
    bcd_status rc = job_write(s,
                              "UPDATE jobs SET status = 'failed', error_code = 'lease_expired', "
                              "error = 'the worker ' || coalesce(worker_id, '?') || ' stopped renewing its lease "
                              "on attempt ' || attempts || ' of ' || max_attempts || ' (crashed or hung)', "
                              "lease_until_ms = NULL, finished_at = ?3, updated_at = ?3 "
                              "WHERE status = 'running' AND lease_until_ms <= ?2 AND attempts >= max_attempts",

                              worker_id, t, now, NULL, NULL, "expire job leases");
    if (rc != BCD_OK)
        return rc;

    sqlite3_stmt *st;
    rc = prep(s, &st,
              "SELECT id, status, worker_id FROM jobs WHERE status IN ('queued', 'running') AND "
              "((status = 'queued' AND run_after_ms <= ?1) OR (status = 'running' AND lease_until_ms <= ?1)) "
              "ORDER BY seq LIMIT 1");
    if (rc != BCD_OK)
        return rc;
    sqlite3_bind_int64(st, 1, t);
    char id[BCD__ID_LEN] = "", old_status[16] = "", old_worker[BCD__JOB_WORKER_MAX] = "";
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        col_copy(st, 0, id, sizeof id);
        col_copy(st, 1, old_status, sizeof old_status);
        col_copy(st, 2, old_worker, sizeof old_worker);
    } else if (r != SQLITE_DONE) {
        rc = sqlfail(s, r, "find a job");
    }
    sqlite3_finalize(st);
    if (rc != BCD_OK)
        return rc;

    if (!id[0]) {
        /* nothing to do now: when will there be? */
        rc = prep(s, &st,
                  "SELECT min(CASE status WHEN 'queued' THEN run_after_ms ELSE lease_until_ms END) FROM jobs "
                  "WHERE status IN ('queued', 'running')");
        if (rc != BCD_OK)
            return rc;
        r = sqlite3_step(st);
        if (r == SQLITE_ROW) {
            if (sqlite3_column_type(st, 0) == SQLITE_NULL) {
                *wait_ms = -1;
            } else {
                int64_t next = sqlite3_column_int64(st, 0) - t;
                *wait_ms = next > 0 ? next : 0;
            }
        } else {
            rc = sqlfail(s, r, "find a job");
        }
        sqlite3_finalize(st);
        *claimed = false;
        return rc;
    }

    /* an expired lease taken over: the job's error says so until it finishes */
    const bool takeover = strcmp(old_status, "running") == 0;
    char note[BCD__JOB_ERROR_MAX];
    snprintf(note, sizeof note, "the lease of worker %s expired (crashed or hung); taken over by %s", old_worker,
             worker_id);
    rc = prep(s, &st,
              "UPDATE jobs SET status = 'running', worker_id = ?3, attempts = attempts + 1, lease_until_ms = ?2, "
              "started_at = ?4, updated_at = ?4, error_code = coalesce(?5, error_code), "
              "error = coalesce(?6, error) WHERE id = ?1");
    if (rc != BCD_OK)
        return rc;
    bind_text(st, 1, id);
    sqlite3_bind_int64(st, 2, t + lease_ms);
    bind_text(st, 3, worker_id);
    bind_text(st, 4, now);
    bind_text(st, 5, takeover ? "lease_expired" : NULL);
    bind_text(st, 6, takeover ? note : NULL);
    rc = wstep(s, st, "claim job");
    sqlite3_finalize(st);
    if (rc == BCD_OK && sqlite3_changes(L_of(s)->db) != 1)
        rc = bcd__fail(&s->err, BCD_ERROR, "internal_error", "claimed job %s vanished", id);
    if (rc == BCD_OK)
        rc = find_job(s, JOB_BY_ID, id, out);
    if (rc == BCD_OK) {
        *claimed = true;
        *wait_ms = 0;
    }
    return rc;
}

static bcd_status check_worker(bcd_store *s, const char *worker_id)
{
    if (!worker_id || !*worker_id || strlen(worker_id) >= BCD__JOB_WORKER_MAX)
        return bcd__fail(&s->err, BCD_EINVAL, "invalid_argument", "invalid worker id");
    return BCD_OK;
}

static bcd_status l_job_claim(bcd_store *s, const char *worker_id, int64_t lease_ms, struct bcd__job_row *out,
                              bool *claimed, int64_t *wait_ms)
{
    bcd_status rc = check_worker(s, worker_id);
    if (rc != BCD_OK)
        return rc;
    if (lease_ms <= 0)
        return bcd__fail(&s->err, BCD_EINVAL, "invalid_argument", "the lease must be positive");
    bool got = false;
    int64_t wait = -1;
    if ((rc = begin(s)) != BCD_OK)
        return rc;
    rc = finish(s, claim_locked(s, worker_id, lease_ms, out, &got, &wait));
    if (rc == BCD_OK) {
        *claimed = got;
        *wait_ms = wait;
    }
    return rc;
}

/* The job, checked to be running under worker_id (inside the transaction). */
static bcd_status held_locked(bcd_store *s, const char *job_id, const char *worker_id, struct bcd__job_row *row)
{
    bcd_status rc = find_job(s, JOB_BY_ID, job_id, row);
    if (rc != BCD_OK)
        return rc;
    if (strcmp(row->status, "running") != 0 || strcmp(row->worker_id, worker_id) != 0) {
        rc = bcd__fail(&s->err, BCD_ESTATE, "job_lease_lost",
                       "worker %s no longer holds job %s (it is %s%s%s)", worker_id, job_id, row->status,
                       strcmp(row->status, "running") == 0 ? " under worker " : "",
                       strcmp(row->status, "running") == 0 ? row->worker_id : "");
        char details[256];
        snprintf(details, sizeof details, "{\"job_id\":\"%s\",\"status\":\"%s\",\"attempts\":%d}", row->id,
                 row->status, row->attempts);
        bcd__error_set_details(&s->err, details);
    }
    return rc;
}

/* The three holder-only operations share one shape: check the holder, write, read back. */
enum job_end { JOB_HEARTBEAT, JOB_COMPLETE, JOB_FAIL };

static bcd_status end_locked(bcd_store *s, enum job_end what, const char *job_id, const char *worker_id,
                             int64_t ms, const char *error_code, const char *error, struct bcd__job_row *out)
{
    struct bcd__job_row *row = malloc(sizeof *row);
    if (!row)
        return oom(s);
    bcd_status rc = held_locked(s, job_id, worker_id, row);
    char now[BCD__TS_LEN];
    bcd__timestamp_now(now);
    const int64_t t = bcd__time_ms();
    sqlite3_stmt *st = NULL;
    if (rc == BCD_OK && what == JOB_HEARTBEAT)
        rc = job_write(s, "UPDATE jobs SET lease_until_ms = ?2, updated_at = ?3 WHERE id = ?1", job_id, t + ms, now,
                       NULL, NULL, "renew job lease");
    else if (rc == BCD_OK && what == JOB_COMPLETE)
        rc = job_write(s,
                       "UPDATE jobs SET status = 'done', lease_until_ms = NULL, error_code = NULL, error = NULL, "
                       "finished_at = ?3, updated_at = ?3 WHERE id = ?1",
                       job_id, t, now, NULL, NULL, "complete job");
    else if (rc == BCD_OK) {
        const bool retry = ms >= 0 && row->attempts < row->max_attempts;
        rc = prep(s, &st,
                  retry ? "UPDATE jobs SET status = 'queued', lease_until_ms = NULL, run_after_ms = ?2, "
                          "error_code = ?3, error = ?4, updated_at = ?5 WHERE id = ?1"
                        : "UPDATE jobs SET status = 'failed', lease_until_ms = NULL, error_code = ?3, error = ?4, "
                          "finished_at = ?5, updated_at = ?5 WHERE id = ?1");
        if (rc == BCD_OK) {
            char msg[BCD__JOB_ERROR_MAX];
            snprintf(msg, sizeof msg, "%s", error && *error ? error : "unknown error");
            bind_text(st, 1, job_id);
            sqlite3_bind_int64(st, 2, t + (ms > 0 ? ms : 0));
            bind_text(st, 3, error_code && *error_code ? error_code : "error");
            bind_text(st, 4, msg);
            bind_text(st, 5, now);
            rc = wstep(s, st, "fail job");
        }
        sqlite3_finalize(st);
    }
    if (rc == BCD_OK)
        rc = find_job(s, JOB_BY_ID, job_id, row);
    if (rc == BCD_OK)
        *out = *row;
    free(row);
    return rc;
}

static bcd_status job_end(bcd_store *s, enum job_end what, const char *job_id, const char *worker_id, int64_t ms,
                          const char *error_code, const char *error, struct bcd__job_row *out)
{
    bcd_status rc = check_worker(s, worker_id);
    if (rc != BCD_OK)
        return rc;
    if (what == JOB_HEARTBEAT && ms <= 0)
        return bcd__fail(&s->err, BCD_EINVAL, "invalid_argument", "the lease must be positive");
    if ((rc = begin(s)) != BCD_OK)
        return rc;
    return finish(s, end_locked(s, what, job_id, worker_id, ms, error_code, error, out));
}

static bcd_status l_job_heartbeat(bcd_store *s, const char *job_id, const char *worker_id, int64_t lease_ms,
                                  struct bcd__job_row *out)
{
    return job_end(s, JOB_HEARTBEAT, job_id, worker_id, lease_ms, NULL, NULL, out);
}

static bcd_status l_job_complete(bcd_store *s, const char *job_id, const char *worker_id, struct bcd__job_row *out)
{
    return job_end(s, JOB_COMPLETE, job_id, worker_id, 0, NULL, NULL, out);
}

static bcd_status l_job_fail(bcd_store *s, const char *job_id, const char *worker_id, const char *error_code,
                             const char *error, int64_t retry_ms, struct bcd__job_row *out)
{
    return job_end(s, JOB_FAIL, job_id, worker_id, retry_ms, error_code, error, out);
}

/* ==== end of job queue =============================================================== */

/* ---- open / close ----------------------------------------------------------------- */

static void l_close(bcd_store *s)
{
    struct local *L = L_of(s);
    if (!L)
        return;
    /* adds never registered: their blobs go unless something else needs them */
    while (L->npend)
        release_pending(s, L->npend - 1, false);
    free(L->pend);
    if (L->db)
        sqlite3_close_v2(L->db);
    free(L->dir);
    free(L->pending_dir);
    free(L->db_path);
    free(L->blob_dir);
    free(L);
    s->impl = NULL;
}

/* ---- deleting ---------------------------------------------------------------------- */

/* Run each statement of sql with ?1 = session_id (and ?2, ?3 where given). */
static bcd_status run_all(bcd_store *s, const char *const *sql, size_t n, const char *session_id, const char *a2,
                          int a3, const char *what)
{
    for (size_t i = 0; i < n; i++) {
        sqlite3_stmt *st;
        bcd_status rc = prep(s, &st, sql[i]);
        if (rc != BCD_OK)
            return rc;
        bind_text(st, 1, session_id);
        if (sqlite3_bind_parameter_count(st) >= 2)
            bind_text(st, 2, a2);
        if (sqlite3_bind_parameter_count(st) >= 3)
            sqlite3_bind_int(st, 3, a3);
        rc = wstep(s, st, what);
        sqlite3_finalize(st);
        if (rc != BCD_OK)
            return rc;
    }
    return BCD_OK;
}

static const char *const wipe_analysis[] = {
    "DELETE FROM angle_embeddings WHERE session_id = ?1",
    "DELETE FROM session_embeddings WHERE session_id = ?1",
    "DELETE FROM angle_analysis WHERE session_id = ?1",
    "DELETE FROM session_analysis WHERE session_id = ?1",
};

/* The files of a session's blob folder after its rows changed: every one (the session is
 * gone), or those no row names any more (no image row, no analysis's details). Under the
 * folder lock, so that an add of the same bytes under way keeps its file. *removed: the
 * number of files removed. */
static bcd_status purge_blobs(bcd_store *s, const char *session_id, bool all, int *removed)
{
    struct local *L = L_of(s);
    char dir[PATH_MAX];
    if ((size_t)snprintf(dir, sizeof dir, "%s/%s", L->blob_dir, session_id) >= sizeof dir)
        return bcd__fail(&s->err, BCD_EINVAL, "path_too_long", "data directory path is too long");
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? BCD_OK : file_fail(s, errno, "opening the folder %s", dir);
    int lk = lock_pending(s);
    if (lk == -1) {
        closedir(d);
        return BCD_EIO;
    }
    bcd_status rc = BCD_OK;
    struct dirent *e;
    while (rc == BCD_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char key[BCD__PATH_MAX], path[PATH_MAX];
        if ((size_t)snprintf(key, sizeof key, "%s/%s", session_id, e->d_name) >= sizeof key ||
            (size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= sizeof path)
            continue;
        struct stat sb;
        if (!all) {
            if (!valid_key(key))
                continue; /* not a blob of the store's naming: left alone */
            bool existed = lstat(path, &sb) == 0;
            rc = drop_unneeded(s, key, NULL);
            if (rc == BCD_OK && existed && lstat(path, &sb) != 0 && removed)
                (*removed)++;
        } else if (unlink(path) == 0) {
            if (removed)
                (*removed)++;
        } else if (errno != ENOENT) {
            rc = file_fail(s, errno, "removing %s", path);
        }
    }
    closedir(d);
    if (rc == BCD_OK && all && rmdir(dir) != 0 && errno != ENOENT && errno != ENOTEMPTY)
        rc = file_fail(s, errno, "removing the folder %s", dir);
    if (rc == BCD_OK)
        rc = fsync_dir(s, all ? L->blob_dir : dir);
    unlock_pending(lk);
    return rc;
}

static bcd_status l_image_delete(bcd_store *s, const char *session_id, const char *angle, int order_index,
                                 struct bcd__image_row *out, bool *analysis_deleted, int *files)
{
    bcd_status rc = begin(s);
    if (rc != BCD_OK)
        return rc;
    sqlite3_stmt *st = NULL;
    rc = prep(s, &st,
              "SELECT " IMAGE_COLS " FROM images WHERE session_id = ?1 AND image_type = ?2 AND order_index = "
              "CASE WHEN ?3 >= 0 THEN ?3 ELSE (SELECT max(order_index) FROM images WHERE session_id = ?1 AND "
              "image_type = ?2) END");
    if (rc == BCD_OK) {
        bind_text(st, 1, session_id);
        bind_text(st, 2, angle);
        sqlite3_bind_int(st, 3, order_index);
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW)
            read_image(st, out);
        else if (r == SQLITE_DONE)
            rc = bcd__fail(&s->err, BCD_ENOTFOUND, "image_not_found", "no %s image at that position in session %s",
                           angle, session_id);
        else
            rc = sqlfail(s, r, "find image");
    }
    sqlite3_finalize(st);
    bool analyzed = false;
    if (rc == BCD_OK && (rc = prep(s, &st, "SELECT 1 FROM session_analysis WHERE session_id = ?1")) == BCD_OK) {
        bind_text(st, 1, session_id);
        analyzed = sqlite3_step(st) == SQLITE_ROW;
        sqlite3_finalize(st);
    }
    /* the images after it move up one place (order_index stays 0, 1, 2, ... per angle,
     * as registering requires), through values out of the way: the slots are unique and
     * SQLite checks that row by row */
    static const char *const del[] = {
        "DELETE FROM images WHERE session_id = ?1 AND image_type = ?2 AND order_index = ?3",
        "UPDATE images SET order_index = order_index + 1000000000 WHERE session_id = ?1 AND image_type = ?2 "
        "AND order_index > ?3",
        "UPDATE images SET order_index = order_index - 1000000001 WHERE session_id = ?1 AND image_type = ?2 "
        "AND order_index >= 1000000000 AND ?3 >= 0",
    };
    if (rc == BCD_OK)
        rc = run_all(s, del, sizeof del / sizeof del[0], session_id, angle, out->order_index, "delete image");
    /* its analysis was made from the photo: it goes too */
    if (rc == BCD_OK && analyzed)
        rc = run_all(s, wipe_analysis, sizeof wipe_analysis / sizeof wipe_analysis[0], session_id, NULL, 0,
                     "delete analysis");
    rc = finish(s, rc);
    if (rc != BCD_OK)
        return rc;
    *analysis_deleted = analyzed;
    /* the rows are gone: what they named follows (a crash here leaves files no row
     * names, never a row without its file) */
    return purge_blobs(s, session_id, false, files);
}

static bcd_status l_session_delete(bcd_store *s, const char *session_id, int *images, bool *analysis_deleted,
                                   int *files)
{
    bcd_status rc = begin(s);
    if (rc != BCD_OK)
        return rc;
    rc = get_session(s, session_id, NULL);
    sqlite3_stmt *st = NULL;
    if (rc == BCD_OK && (rc = prep(s, &st,
                                   "SELECT (SELECT count(*) FROM images WHERE session_id = ?1), "
                                   "(SELECT count(*) FROM session_analysis WHERE session_id = ?1)")) == BCD_OK) {
        bind_text(st, 1, session_id);
        if (sqlite3_step(st) == SQLITE_ROW) {
            *images = sqlite3_column_int(st, 0);
            *analysis_deleted = sqlite3_column_int(st, 1) > 0;
        }
        sqlite3_finalize(st);
    }
    /* images, analyses, embeddings and jobs go with it (ON DELETE CASCADE) */
    static const char *const del[] = {"DELETE FROM sessions WHERE id = ?1"};
    if (rc == BCD_OK)
        rc = run_all(s, del, 1, session_id, NULL, 0, "delete session");
    rc = finish(s, rc);
    if (rc != BCD_OK)
        return rc;
    return purge_blobs(s, session_id, true, files);
}

static const struct bcd__store_ops local_ops = {
    .name = "local",
    .close = l_close,
    .session_create = l_session_create,
    .session_get = l_session_get,
    .session_set_status = l_session_set_status,
    .session_list = l_session_list,
    .image_list = l_image_list,
    .image_register = l_image_register,
    .blob_put = l_blob_put,
    .blob_delete = l_blob_delete,
    .blob_get = l_blob_get,
    .blob_locate = l_blob_locate,
    .analysis_save = l_analysis_save,
    .analysis_get = l_analysis_get,
    .embeddings_for_user = l_embeddings_for_user,
    /* job queue */
    .job_enqueue = l_job_enqueue,
    .job_claim = l_job_claim,
    .job_heartbeat = l_job_heartbeat,
    .job_complete = l_job_complete,
    .job_fail = l_job_fail,
    .job_get = l_job_get,
    .job_get_for_session = l_job_get_for_session,
    /* deleting */
    .image_delete = l_image_delete,
    .session_delete = l_session_delete,
};

/* mkdir -p with mode 0700 for the folders it creates (the library's one policy). */
static bcd_status make_dirs(bcd_error *err, const char *path, bool *created)
{
    bcd_status rc = bcd__mkdirs(err, path, created);
    if (rc == BCD_EIO)
        snprintf(err->code, sizeof err->code, "data_dir_unavailable");
    return rc;
}

static bcd_status user_version(bcd_store *s, int *v)
{
    sqlite3_stmt *st;
    bcd_status rc = prep(s, &st, "PRAGMA user_version");
    if (rc != BCD_OK)
        return rc;
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW)
        *v = sqlite3_column_int(st, 0);
    else
        rc = sqlfail(s, r, "read schema version");
    sqlite3_finalize(st);
    return rc;
}

/* A schema version this libbcd can work with: 0 (a new, empty file) up to SCHEMA_VERSION.
 * A negative one, or 0 with tables already there, is damage (a flipped header byte) or a
 * database of another program: never run migrations on it. */
static bcd_status check_version(bcd_store *s, int v)
{
    struct local *L = L_of(s);
    if (v > SCHEMA_VERSION)
        return bcd__fail(&s->err, BCD_EUNSUPPORTED, "store_schema_too_new",
                         "the local store %s has schema version %d; this libbcd understands up to %d (upgrade libbcd)",
                         L->db_path, v, SCHEMA_VERSION);
    if (v < 0)
        return bcd__fail(&s->err, BCD_EFORMAT, "store_corrupt",
                         "the local database %s is damaged: its schema version %d is not one libbcd ever wrote "
                         "(restore it from a backup, or move it away to start a new store)",
                         L->db_path, v);
    if (v == 0) {
        sqlite3_stmt *st;
        bcd_status rc = prep(s, &st, "SELECT count(*) FROM sqlite_master");
        if (rc != BCD_OK)
            return rc;
        int r = sqlite3_step(st);
        int n = r == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
        sqlite3_finalize(st);
        if (r != SQLITE_ROW)
            return sqlfail(s, r, "read schema");
        if (n > 0)
            return bcd__fail(&s->err, BCD_EFORMAT, "store_corrupt",
                             "the local database %s holds tables but no schema version: it is damaged or belongs "
                             "to another program (restore it from a backup, or move it away to start a new store)",
                             L->db_path);
    }
    return BCD_OK;
}

/* Bring the schema to target. The version is read without any write lock (WAL: a reader
 * never waits for a writer), so an up-to-date store opens while another process holds
 * the write lock; BEGIN IMMEDIATE is taken only when there is something to migrate, and
 * the version is read again under it (another process may have migrated meanwhile). */
static bcd_status migrate(bcd_store *s, int target)
{
    int v = 0;
    bcd_status rc = user_version(s, &v);
    if (rc == BCD_OK)
        rc = check_version(s, v);
    if (rc != BCD_OK || v >= target)
        return rc;
    if ((rc = begin(s)) != BCD_OK)
        return rc;
    rc = user_version(s, &v);
    if (rc == BCD_OK)
        rc = check_version(s, v);
    for (int i = v; rc == BCD_OK && i < target; i++) {
        char what[64];
        snprintf(what, sizeof what, "migrate schema to version %d", i + 1);
        rc = exec(s, migrations[i], what);
    }
    if (rc == BCD_OK && v < target) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", target);
        rc = exec(s, sql, "set schema version");
    }
    if (rc == BCD_OK)
        rc = exec(s, "COMMIT", "commit migration");
    if (rc != BCD_OK)
        rollback(s);
    return rc;
}

/* Switch to WAL (persistent in the file). Changing the journal mode does not wait on
 * the busy handler when another connection holds a lock (several processes opening a
 * new store at once), so retry here for up to the busy timeout. */
static bcd_status enable_wal(bcd_store *s)
{
    struct local *L = L_of(s);
    for (int waited = 0;; waited += 5) {
        sqlite3_stmt *st;
        bcd_status rc = prep(s, &st, "PRAGMA journal_mode = WAL");
        if (rc != BCD_OK)
            return rc;
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW) {
            const char *mode = (const char *)sqlite3_column_text(st, 0);
            if (!mode || sqlite3_stricmp(mode, "wal") != 0)
                bcd__log(s->ctx, BCD_LOG_WARN, "local store %s: WAL unavailable, journal mode %s", L->db_path,
                         mode ? mode : "?");
            sqlite3_finalize(st);
            return BCD_OK;
        }
        sqlite3_finalize(st);
        if (((r & 0xff) != SQLITE_BUSY && (r & 0xff) != SQLITE_LOCKED) || waited >= BUSY_TIMEOUT_MS)
            return sqlfail(s, r, "enable WAL");
        sqlite3_sleep(5);
    }
}

/* Create the database file, private (0600), if it does not exist. The final path is
 * never opened here: closing any descriptor of a file drops every POSIX lock the
 * process holds on it, those of SQLite connections of other handles in this process
 * included (a worker's heartbeat handle, another thread's store), and a connection of
 * another process could then take them for the last one and delete the WAL under
 * them. So the file is made under a temporary name, closed, and linked into place
 * (EEXIST: another handle created it first). */
static bcd_status create_private(bcd_error *err, const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0)
        return BCD_OK;
    char tmp[PATH_MAX];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.new-XXXXXX", path) >= sizeof tmp)
        return bcd__fail(err, BCD_EINVAL, "path_too_long", "data directory path is too long");
    int fd = mkstemp(tmp);
    if (fd < 0)
        return bcd__fail(err, BCD_EIO, "store_unwritable", "cannot create %s: %s", path, strerror(errno));
    close(fd);
    int r = link(tmp, path), e = errno;
    unlink(tmp);
    if (r != 0 && e != EEXIST && e != EMLINK) {
        /* no hard links here (some FUSE and FAT file systems): create it exclusively;
         * only a handle opened in the same instant could lose its locks */
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        e = errno;
        if (fd >= 0)
            close(fd);
        r = fd >= 0 ? 0 : -1;
    }
    if (r != 0 && e != EEXIST)
        return bcd__fail(err, BCD_EIO, "store_unwritable", "cannot create %s: %s", path, strerror(e));
    return BCD_OK;
}

/* Whether a file can be created in dir: 0, or the errno that stops it. */
static int probe_writable(const char *dir)
{
    char tmp[PATH_MAX];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s/.probe-XXXXXX", dir) >= sizeof tmp)
        return 0;
    int fd = mkstemp(tmp);
    if (fd < 0)
        return errno;
    int e = 0;
    if (write(fd, "x", 1) != 1)
        e = errno ? errno : ENOSPC;
    close(fd);
    unlink(tmp);
    return e;
}

/* A store that cannot be opened for an I/O reason: SQLite's own words ("unable to open
 * database file") rarely say why. When the data directory is read-only or full, say so. */
static void explain_open_failure(bcd_error *err, const char *data_dir)
{
    static const char *const io_codes[] = {"store_unwritable", "store_io_error", "store_unavailable",
                                           "data_dir_unavailable", "store_full"};
    bool io = false;
    for (size_t i = 0; i < sizeof io_codes / sizeof io_codes[0]; i++)
        io |= strcmp(err->code, io_codes[i]) == 0;
    if (!io)
        return;
    struct stat st;
    if (stat(data_dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return;
    int e = probe_writable(data_dir);
    char was[sizeof err->message];
    snprintf(was, sizeof was, "%s", err->message);
    if (errno_full(e))
        bcd__fail(err, BCD_EIO, "store_full", "no space left on device in the data directory %s (%.300s)", data_dir,
                  was);
    else if (errno_readonly(e))
        bcd__fail(err, BCD_EIO, "store_unwritable",
                  "the data directory %s is not writable (%s); the local store needs to write there, also to "
                  "read (%.300s)",
                  data_dir, strerror(e), was);
}

/* The data folder, its blob folders and the database hold photos of people's bodies:
 * like ssh with ~/.ssh, refuse them when they belong to another user (a folder made
 * first by someone else, or files left by a run as root) or when others may write them
 * (folders) or read them (the database). Compared with the effective user id, so that a
 * store of root's, as in containers, is fine for root. */
static bcd_status check_private(bcd_error *err, const char *path, bool dir)
{
    struct stat st;
    if ((dir ? stat(path, &st) : lstat(path, &st)) != 0) /* a folder may be a link (to another disk) */
        return errno == ENOENT ? BCD_OK
                               : bcd__fail(err, BCD_EIO, "data_dir_unavailable", "cannot inspect %s: %s", path,
                                           strerror(errno));
    const char *what = dir ? "folder" : "file";
    if (dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))
        return bcd__fail(err, BCD_EIO, "data_dir_insecure",
                         "the local store's %s %s is not a %s (a link or something else); move it away", what,
                         path, dir ? "folder" : "plain file");
    if (st.st_uid != geteuid())
        return bcd__fail(err, BCD_EIO, "data_dir_insecure",
                         "the local store's %s %s belongs to user id %u, not to the user running this (%u); it is "
                         "not used: if it is yours, give it back with 'chown -R %u %s' (as its owner or root), "
                         "otherwise move it away or choose another BCD_DATA_DIR",
                         what, path, (unsigned)st.st_uid, (unsigned)geteuid(), (unsigned)geteuid(), path);
    mode_t bad = dir ? (S_IWGRP | S_IWOTH) : (S_IRWXG | S_IRWXO);
    if (st.st_mode & bad)
        return bcd__fail(err, BCD_EIO, "data_dir_insecure",
                         "the local store's %s %s has mode %04o: others may %s it; it is not used until you run "
                         "'chmod %s %s' (and check that nobody else put anything there)",
                         what, path, (unsigned)(st.st_mode & 07777), dir ? "write into" : "read or write",
                         dir ? "700" : "600", path);
    return BCD_OK;
}

int bcd__store_local_schema_version(void)
{
    return SCHEMA_VERSION;
}

bcd_status bcd__store_local_open(bcd_store **out, bcd_ctx *ctx, const char *data_dir, int target_version,
                                 bcd_error *err)
{
    if (!data_dir)
        data_dir = bcd__cfg(ctx, BCD__CFG_DATA_DIR);
    if (!data_dir || !*data_dir)
        return bcd__fail(err, BCD_EINVAL, "invalid_data_dir", "no data directory configured (BCD_DATA_DIR)");
    if (target_version <= 0 || target_version > SCHEMA_VERSION)
        target_version = SCHEMA_VERSION;
    /* a store on read-only media (a mounted backup, a write-protected card) is opened for
     * reading: its database must be there already, and nothing is written */
    bool read_only = false, created = false;
    {
        struct stat sb;
        char db[PATH_MAX];
        if (stat(data_dir, &sb) == 0 && S_ISDIR(sb.st_mode) &&
            (size_t)snprintf(db, sizeof db, "%s/" DB_NAME, data_dir) < sizeof db && stat(db, &sb) == 0 &&
            S_ISREG(sb.st_mode))
            read_only = access(data_dir, W_OK) != 0 && errno_readonly(errno);
    }
    bcd_status rc = read_only ? BCD_OK : make_dirs(err, data_dir, NULL);
    if (rc != BCD_OK)
        return rc;

    bcd_store *s = calloc(1, sizeof *s);
    struct local *L = calloc(1, sizeof *L);
    char abs[PATH_MAX];
    if (!s || !L) {
        free(s);
        free(L);
        return bcd__fail(err, BCD_ENOMEM, "out_of_memory", "out of memory");
    }
    s->ops = &local_ops;
    s->ctx = ctx;
    s->impl = L;
    L->fail_after = -1;
    if (!realpath(data_dir, abs)) {
        rc = bcd__fail(err, BCD_EIO, "data_dir_unavailable", "cannot resolve %s: %s", data_dir, strerror(errno));
        goto fail;
    }
    size_t n = strlen(abs);
    L->dir = bcd__strdup(abs);
    L->db_path = malloc(n + sizeof "/" DB_NAME);
    L->blob_dir = malloc(n + sizeof "/" BLOB_DIR);
    L->pending_dir = malloc(n + sizeof "/" BLOB_DIR "/" PENDING_DIR);
    if (!L->dir || !L->db_path || !L->blob_dir || !L->pending_dir) {
        rc = bcd__fail(err, BCD_ENOMEM, "out_of_memory", "out of memory");
        goto fail;
    }
    snprintf(L->db_path, n + sizeof "/" DB_NAME, "%s/" DB_NAME, abs);
    snprintf(L->blob_dir, n + sizeof "/" BLOB_DIR, "%s/" BLOB_DIR, abs);
    snprintf(L->pending_dir, n + sizeof "/" BLOB_DIR "/" PENDING_DIR, "%s/" BLOB_DIR "/" PENDING_DIR, abs);
    if ((rc = check_private(err, L->dir, true)) != BCD_OK || (rc = check_private(err, L->blob_dir, true)) != BCD_OK ||
        (rc = check_private(err, L->db_path, false)) != BCD_OK)
        goto fail;
    L->read_only = read_only;
    if (!read_only) {
        struct stat sb;
        created = stat(L->db_path, &sb) != 0 && errno == ENOENT;
        if ((rc = make_dirs(err, L->pending_dir, NULL)) != BCD_OK)
            goto fail;
        /* create the file ourselves so that it is private (sqlite would use 0644) */
        if ((rc = create_private(err, L->db_path)) != BCD_OK ||
            (rc = check_private(err, L->db_path, false)) != BCD_OK)
            goto fail;
    }

    int r;
    if (read_only) {
        /* no -wal file: nothing to replay, and immutable lets SQLite read without the
         * -shm file it cannot create here */
        char uri[PATH_MAX * 3 + 64], wal[PATH_MAX + 8];
        struct stat sb;
        snprintf(wal, sizeof wal, "%s-wal", L->db_path);
        bool immutable = stat(wal, &sb) != 0 || sb.st_size == 0;
        size_t o = (size_t)snprintf(uri, sizeof uri, "file:");
        for (const unsigned char *p = (const unsigned char *)L->db_path; *p; p++)
            o += (size_t)(*p == '%' || *p == '?' || *p == '#' || *p < 0x20
                              ? snprintf(uri + o, sizeof uri - o, "%%%02X", *p)
                              : snprintf(uri + o, sizeof uri - o, "%c", *p));
        snprintf(uri + o, sizeof uri - o, "?mode=ro%s", immutable ? "&immutable=1" : "");
        r = sqlite3_open_v2(uri, &L->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, NULL);
    } else {
        r = sqlite3_open_v2(L->db_path, &L->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    }
    if (r != SQLITE_OK) {
        rc = bcd__fail(err, BCD_EIO, "store_unavailable", "cannot open %s: %s", L->db_path, sqlite3_errstr(r));
        goto fail;
    }
    sqlite3_extended_result_codes(L->db, 1);
    sqlite3_busy_timeout(L->db, BUSY_TIMEOUT_MS);
    /* WAL: readers never block the writer; synchronous=FULL: a committed analysis
     * survives a power cut; secure_delete: replaced rows are overwritten on disk. */
    rc = exec(s, "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; PRAGMA secure_delete = ON;",
              "configure database");
    if (rc == BCD_OK && !read_only)
        rc = enable_wal(s);
    if (rc == BCD_OK && read_only) {
        int v = 0;
        rc = user_version(s, &v);
        if (rc == BCD_OK)
            rc = check_version(s, v);
        if (rc == BCD_OK && v < target_version)
            rc = bcd__fail(&s->err, BCD_EIO, "store_unwritable",
                           "the local store %s is on read-only media and has schema version %d; this libbcd "
                           "needs %d, which it cannot write there (open it once where it can be written)",
                           L->dir, v, target_version);
    } else if (rc == BCD_OK) {
        rc = migrate(s, target_version);
    }
    if (rc == BCD_OK && read_only)
        bcd__log(ctx, BCD_LOG_INFO, "local store %s: on read-only media, opened for reading", L->dir);
    if (rc == BCD_OK && created)
        bcd__log(ctx, BCD_LOG_WARN,
                 "created a new, empty local store in %s (if you meant an existing one, check the data "
                 "directory: BCD_DATA_DIR)",
                 L->dir);
    /* what a crash of an earlier process left half done; a failure here loses nothing
     * (no row names those files) and the next open tries again */
    if (rc == BCD_OK && !read_only && recover_pending(s) != BCD_OK) {
        bcd__log(ctx, BCD_LOG_WARN, "local store %s: cannot remove what an interrupted add left: %s", L->dir,
                 s->err.message);
        bcd__error_clear(&s->err);
    }
    if (rc != BCD_OK) {
        bcd__error_copy(err, &s->err);
        goto fail;
    }
    *out = s;
    return BCD_OK;
fail:
    explain_open_failure(err, data_dir);
    bcd__store_close(s);
    return rc;
}

void bcd__store_local_fail_after(bcd_store *s, int n, int mode)
{
    if (!s || s->ops != &local_ops)
        return;
    L_of(s)->fail_after = n < 0 ? -1 : n;
    L_of(s)->fail_mode = mode;
}

const char *bcd__store_local_db_path(const bcd_store *s)
{
    return s && s->ops == &local_ops ? ((const struct local *)s->impl)->db_path : NULL;
}
