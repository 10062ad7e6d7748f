/* Internal store interface: sessions, images, analyses, embeddings and image blobs.
 * Not installed.
 *
 * A store is a handle over one backend (a struct of function pointers plus one file per
 * backend, as curl's lib/vtls/): `local` (SQLite file + blob folder, lib/store/local.c)
 * and `supabase` (PostgREST + Storage over HTTP, lib/store/supabase.c). The operations are row and
 * operation oriented, not SQL oriented, so that an HTTP backend can implement each one
 * with a few requests or one RPC. Every operation is atomic: it either happens completely
 * or leaves the store as it was.
 *
 * Errors: every operation clears store->err on entry and records the detail of a failure
 * there (bcd__fail); the caller copies it where it needs it (bcd__error_copy).
 * Threads: a store handle is used by one thread at a time. Several handles (in one or
 * several processes) may use the same local data directory at once.
 */
#ifndef BCD_STORE_INTERNAL_H
#define BCD_STORE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "core/core.h"

/* Angles a photo can be taken from, in their canonical order. */
#define BCD__ANGLE_COUNT 6
extern const char *const bcd__angles[BCD__ANGLE_COUNT];
/* Index of an angle name in bcd__angles, or -1. */
int bcd__angle_index(const char *angle);

#define BCD__ID_LEN 37        /* UUID text + NUL */
#define BCD__USER_MAX 128     /* longest user id (bytes) */
#define BCD__PATH_MAX 4096    /* longest storage path (bytes, NUL included) */
#define BCD__TS_LEN 32        /* "2026-02-16T10:00:00.123456Z" + NUL, with room */
#define BCD__MODEL_MAX 128    /* longest model name (bytes, NUL included) */

struct bcd__session_row {
    char id[BCD__ID_LEN];
    char user_id[BCD__USER_MAX + 1];
    char status[16];             /* "created" or "completed" */
    char created_at[BCD__TS_LEN];
    char updated_at[BCD__TS_LEN];
    int64_t seq;                 /* monotonic tie-breaker of created_at */
    int64_t image_count;         /* number of images registered */
    bool analyzed;               /* a session_analysis row exists */
};

struct bcd__image_row {
    char id[BCD__ID_LEN];
    char session_id[BCD__ID_LEN];
    char angle[16];              /* column image_type */
    int order_index;
    char storage_path[BCD__PATH_MAX];
    char content_type[64];       /* "" if unknown */
    int64_t size_bytes;          /* -1 if unknown */
    char sha256[65];             /* lowercase hex, "" if unknown */
    char created_at[BCD__TS_LEN];
};

/* One stored embedding: of a whole session (angle "") or of one angle of it. */
struct bcd__embedding {
    char session_id[BCD__ID_LEN];
    char angle[16];              /* "" for the session embedding */
    char model[BCD__MODEL_MAX];
    size_t dim;
    float *vec;                  /* dim floats; owned by whoever filled the struct */
};

/* Analysis result of one angle of a session. */
struct bcd__angle_analysis {
    char angle[16];
    double change_score;
    char *summary;               /* owned by whoever filled the struct */
    int image_count;             /* images of this angle that were analyzed */
    int baseline_sessions;       /* earlier sessions that had this angle (same model) */
    double sharpness;            /* 0..1, from the variance of the Laplacian */
    double blur_variance;        /* variance of the Laplacian of the 224×224 grey image */
    double clipped_fraction;     /* fraction of under- or over-exposed pixels */
    double quality;              /* 0..1, sharpness × exposure */
};

/* Everything one analysis of a session stores, saved and loaded as one unit:
 * session_analysis + angle_analysis rows + angle embeddings + session embedding. */
struct bcd__analysis {
    char session_id[BCD__ID_LEN];
    double overall_change_score;
    double confidence;
    char *summary;               /* owned */
    char model[BCD__MODEL_MAX];
    size_t dim;
    int baseline_sessions;       /* earlier sessions whose embedding formed the baseline */
    char *details_json;          /* owned, JSON object text or NULL (confidence factors...) */
    char created_at[BCD__TS_LEN];/* filled by the store on save */
    size_t n_angles;
    struct bcd__angle_analysis angles[BCD__ANGLE_COUNT];
    /* Embeddings: angle_vec[i] belongs to angles[i]; NULL when not stored. */
    float *angle_vec[BCD__ANGLE_COUNT];
    float *session_vec;          /* dim floats or NULL */
};

/* A signed URL for uploading one object straight to storage (seed: /images/signed-url).
 * All strings malloc'd; free with bcd__upload_url_clear(). */
struct bcd__upload_url {
    char *upload_url;   /* absolute URL for an HTTP PUT of the bytes */
    char *token;        /* the token inside upload_url, NULL if the server gave none */
    char *public_url;   /* where the object is publicly readable, NULL for a private bucket */
    int expires_in;     /* seconds, -1 if decided by the server and unknown */
};
void bcd__upload_url_clear(struct bcd__upload_url *u);

/* Free what a struct bcd__analysis owns (not the struct itself); then zero it. */
void bcd__analysis_clear(struct bcd__analysis *a);
void bcd__embeddings_free(struct bcd__embedding *e, size_t n);

typedef struct bcd_store bcd_store;
struct bcd__job_row; /* analysis job queue: see the block at the end of this file */

struct bcd__store_ops {
    const char *name;
    void (*close)(bcd_store *s);

    /* Sessions. */
    /* Create a session of user_id with status "created"; created_at is the current
     * time (UTC, microseconds), never earlier than any session already stored, and seq
     * orders sessions created in the same microsecond. */
    bcd_status (*session_create)(bcd_store *s, const char *user_id, struct bcd__session_row *out);
    /* The session with this id (any user): BCD_ENOTFOUND if none. */
    bcd_status (*session_get)(bcd_store *s, const char *session_id, struct bcd__session_row *out);
    /* Set status and updated_at. BCD_ENOTFOUND if none. */
    bcd_status (*session_set_status)(bcd_store *s, const char *session_id, const char *status,
                                     struct bcd__session_row *out);
    /* All sessions of user_id ordered by (created_at, seq) ascending; *out malloc'd
     * (NULL when n is 0), caller frees with free(). */
    bcd_status (*session_list)(bcd_store *s, const char *user_id, struct bcd__session_row **out, size_t *n);

    /* Images. */
    /* Images of a session ordered by angle (bcd__angles order), then order_index; *out
     * malloc'd (caller frees). */
    bcd_status (*image_list)(bcd_store *s, const char *session_id, struct bcd__image_row **out, size_t *n);
    /* Register an image, atomically, with the seed's rules, checked in this order:
     *  1. a row with (session_id, storage_path) exists: *created = false, *out = that
     *     row, nothing written (idempotent);
     *  2. order_index < 0 means "next": the current count for (session, angle);
     *  3. the (session, angle, order_index) slot holds another path: BCD_ECONFLICT
     *     "slot_conflict";
     *  4. order_index != current count for (session, angle): BCD_ECONFLICT
     *     "order_index_out_of_sequence";
     *  5. insert: *created = true, *out = the new row (id and created_at filled).
     * The session must exist (BCD_ENOTFOUND). in->id and in->created_at are ignored. */
    bcd_status (*image_register)(bcd_store *s, const struct bcd__image_row *in, struct bcd__image_row *out,
                                 bool *created);

    /* Image blobs. */
    /* Store bytes under key "<session_id>/<sha256hex>.<ext>" (content addressed, so
     * putting the same bytes twice is a no-op: *created = false). Durable on return
     * (temp file, fsync, link or rename, directory fsync). key: at least BCD__PATH_MAX
     * bytes. Local: the blob stays guarded by a pending file of this handle until an
     * image_register of key succeeds, or blob_delete or close gives it up; a crash in
     * between leaves a pending file that the next open removes, with the blob unless
     * a row names it (see lib/store/local.c). */
    bcd_status (*blob_put)(bcd_store *s, const char *session_id, const char *sha256_hex, const char *ext,
                           const void *data, size_t len, char *key, bool *created);
    /* Remove a blob that no image row references (cleanup after a failed add); local:
     * nor an add of the same bytes under way in another handle or process. */
    bcd_status (*blob_delete)(bcd_store *s, const char *key);
    /* Read a blob, or the file a registered path names (backend specific: local reads
     * absolute paths and file:// URLs too). *out malloc'd (caller frees).
     * BCD_ENOTFOUND, BCD_EIO, BCD_ELIMIT (over max_len), BCD_EUNSUPPORTED (remote URL). */
    bcd_status (*blob_get)(bcd_store *s, const char *path, size_t max_len, unsigned char **out, size_t *len);
    /* Where a stored image can be read by the caller: *url (file:// or signed https URL)
     * and *local_path (absolute path, NULL if not a local file); both malloc'd.
     * *expires_in: seconds the URL stays valid, -1 for never. */
    bcd_status (*blob_locate)(bcd_store *s, const char *path, char **url, char **local_path, int *expires_in);

    /* Analyses. */
    /* Replace the analysis of a->session_id in ONE atomic step: the old session_analysis,
     * angle_analysis, angle embeddings and session embedding are deleted and the new ones
     * inserted, or nothing changes. *overwritten: an analysis existed before.
     * a->created_at is set to the time of the save. */
    bcd_status (*analysis_save)(bcd_store *s, struct bcd__analysis *a, bool *overwritten);
    /* The stored analysis of a session, with its embeddings where stored (angle_vec[i] /
     * session_vec NULL when missing or of another model than the analysis).
     * BCD_ENOTFOUND if never analyzed. Free with bcd__analysis_clear(). */
    bcd_status (*analysis_get)(bcd_store *s, const char *session_id, struct bcd__analysis *out);
    /* Embeddings of model `model` (exact match; NULL: any) stored for the sessions of
     * user_id: session embeddings (angle "") and angle embeddings. *out malloc'd, free
     * with bcd__embeddings_free(). */
    bcd_status (*embeddings_for_user)(bcd_store *s, const char *user_id, const char *model,
                                      struct bcd__embedding **out, size_t *n);

    /* Optional operations: NULL when a backend lacks them; the bcd__store_* wrappers
     * then fall back to the operations above (or answer BCD_EUNSUPPORTED). */
    /* blob_get of n paths at once (remote stores: in parallel). On failure *failed is
     * the index of the path at fault and no buffer is handed out. outs[i] malloc'd. */
    bcd_status (*blob_get_many)(bcd_store *s, const char *const *paths, size_t n, size_t max_len,
                                unsigned char **outs, size_t *lens, size_t *failed);
    /* blob_locate of n paths at once (one batch request where the backend can). A
     * missing blob is not an error: its urls[i] and local_paths[i] stay NULL. */
    bcd_status (*blob_locate_many)(bcd_store *s, const char *const *paths, size_t n, char **urls,
                                   char **local_paths, int *expires_in);
    /* The details of a session's stored analysis alone (*details: its JSON text,
     * malloc'd; NULL when the analysis has none): analysis_get's details_json without
     * the rest, the embeddings above all. BCD_ENOTFOUND if never analyzed. */
    bcd_status (*analysis_details)(bcd_store *s, const char *session_id, char **details);
    /* analysis_get of n sessions at once (remote stores: in parallel). found[i]: whether
     * session ids[i] has an analysis (then in outs[i]; one never analyzed is not an
     * error). On failure *failed is the index of the session at fault and nothing is
     * handed out. */
    bcd_status (*analysis_get_many)(bcd_store *s, const char *const *ids, size_t n, struct bcd__analysis *outs,
                                    bool *found, size_t *failed);
    /* A signed URL for uploading `key` (a blob key the service chose) with content_type. */
    bcd_status (*blob_upload_url)(bcd_store *s, const char *key, const char *content_type,
                                  struct bcd__upload_url *out);

    /* Analysis job queue (optional block; NULL when the backend has no queue: the
     * bcd__store_job_* wrappers then answer BCD_EUNSUPPORTED). See the job section at
     * the end of this file for the semantics. Times: lease_ms and retry_ms in
     * milliseconds, measured on the store's clock (local: this machine; supabase: the
     * database server). */
    bcd_status (*job_enqueue)(bcd_store *s, const char *session_id, const char *user_id, const char *model,
                              int max_attempts, struct bcd__job_row *out, bool *created);
    bcd_status (*job_claim)(bcd_store *s, const char *worker_id, int64_t lease_ms, struct bcd__job_row *out,
                            bool *claimed, int64_t *wait_ms);
    bcd_status (*job_heartbeat)(bcd_store *s, const char *job_id, const char *worker_id, int64_t lease_ms,
                                struct bcd__job_row *out);
    bcd_status (*job_complete)(bcd_store *s, const char *job_id, const char *worker_id, struct bcd__job_row *out);
    bcd_status (*job_fail)(bcd_store *s, const char *job_id, const char *worker_id, const char *error_code,
                           const char *error, int64_t retry_ms, struct bcd__job_row *out);
    bcd_status (*job_get)(bcd_store *s, const char *job_id, struct bcd__job_row *out);
    bcd_status (*job_get_for_session)(bcd_store *s, const char *session_id, struct bcd__job_row *out);

    /* Deleting (optional block). Rows go in one atomic step; the blobs they named follow
     * (a crash in between leaves blobs no row names, never a row without its blob).
     * Delete the image of session_id at (angle, order_index; < 0: the last of the angle):
     * its row, the session's analysis (made from it; *analysis_deleted says whether
     * there was one) and, after the commit, the blobs of the session no row names any
     * more (the photo, unless another image has the same bytes; working copies,
     * heatmaps, feature maps); later images of the angle move up one place. *out: the
     * deleted row; *files: blobs removed. BCD_ENOTFOUND "image_not_found". */
    bcd_status (*image_delete)(bcd_store *s, const char *session_id, const char *angle, int order_index,
                               struct bcd__image_row *out, bool *analysis_deleted, int *files);
    /* Delete a session with its images, analysis, embeddings and jobs, then every blob
     * of it. *images: image rows deleted. BCD_ENOTFOUND if none. */
    bcd_status (*session_delete)(bcd_store *s, const char *session_id, int *images, bool *analysis_deleted,
                                 int *files);
};

struct bcd_store {
    const struct bcd__store_ops *ops;
    bcd_ctx *ctx;   /* borrowed: configuration and logging */
    bcd_error err;  /* detail of the last failed operation */
    void *impl;
};

/* Open the store chosen by BCD_STORE of ctx ("local", the default, or "supabase"). On
 * failure the detail is recorded on err. */
bcd_status bcd__store_open(bcd_store **out, bcd_ctx *ctx, bcd_error *err);
/* Close a store; NULL: no-op. */
void bcd__store_close(bcd_store *s);

/* Local backend. data_dir NULL: BCD_DATA_DIR of ctx. target_version 0: the latest
 * schema; a smaller value stops migrations there (tests of migration only). */
bcd_status bcd__store_local_open(bcd_store **out, bcd_ctx *ctx, const char *data_dir, int target_version,
                                 bcd_error *err);
/* Schema version this build writes (PRAGMA user_version). */
int bcd__store_local_schema_version(void);
/* Test-only fault injection on one local store handle: after `n` more successful write
 * statements inside a transaction, the next one fails (mode 0: BCD_EIO, the transaction
 * is rolled back) or the process exits at once without rollback (mode 1: _exit(86),
 * simulating a crash). n < 0 disables. */
void bcd__store_local_fail_after(bcd_store *s, int n, int mode);
/* Absolute path of the SQLite file of a local store (borrowed), NULL for other backends. */
const char *bcd__store_local_db_path(const bcd_store *s);

/* Supabase backend (PostgREST + Storage): SUPABASE_URL, SUPABASE_SERVICE_ROLE_KEY and
 * SUPABASE_STORAGE_BUCKET of ctx. Opening checks the configuration only; the server is
 * first contacted by an operation. BCD_EINVAL "supabase_not_configured". */
bcd_status bcd__store_supabase_open(bcd_store **out, bcd_ctx *ctx, bcd_error *err);
/* Test seam (the fuzzing harness of tests/fuzz): fn answers every request of a supabase
 * store in place of lib/net, under the contract of bcd__net_request() (rs filled, body
 * malloc'd and NUL-terminated, when it returns BCD_OK). NULL: lib/net again. No-op on
 * other backends. */
struct bcd__net_request;
struct bcd__net_response;
typedef bcd_status (*bcd__supabase_transport_fn)(void *user, const struct bcd__net_request *rq,
                                                 struct bcd__net_response *rs, bcd_error *err);
void bcd__store_supabase_set_transport(bcd_store *s, bcd__supabase_transport_fn fn, void *user);

/* Wrappers: clear s->err, dispatch. */
bcd_status bcd__store_session_create(bcd_store *s, const char *user_id, struct bcd__session_row *out);
bcd_status bcd__store_session_get(bcd_store *s, const char *session_id, struct bcd__session_row *out);
bcd_status bcd__store_session_set_status(bcd_store *s, const char *session_id, const char *status,
                                         struct bcd__session_row *out);
bcd_status bcd__store_session_list(bcd_store *s, const char *user_id, struct bcd__session_row **out, size_t *n);
bcd_status bcd__store_image_list(bcd_store *s, const char *session_id, struct bcd__image_row **out, size_t *n);
bcd_status bcd__store_image_register(bcd_store *s, const struct bcd__image_row *in, struct bcd__image_row *out,
                                     bool *created);
bcd_status bcd__store_blob_put(bcd_store *s, const char *session_id, const char *sha256_hex, const char *ext,
                               const void *data, size_t len, char *key, bool *created);
bcd_status bcd__store_blob_delete(bcd_store *s, const char *key);
bcd_status bcd__store_blob_get(bcd_store *s, const char *path, size_t max_len, unsigned char **out, size_t *len);
bcd_status bcd__store_blob_locate(bcd_store *s, const char *path, char **url, char **local_path, int *expires_in);
bcd_status bcd__store_analysis_save(bcd_store *s, struct bcd__analysis *a, bool *overwritten);
bcd_status bcd__store_analysis_get(bcd_store *s, const char *session_id, struct bcd__analysis *out);
bcd_status bcd__store_embeddings_for_user(bcd_store *s, const char *user_id, const char *model,
                                          struct bcd__embedding **out, size_t *n);
/* Optional operations, with fallbacks: blob_get / blob_locate / analysis_get one by one;
 * analysis_get for the details. */
bcd_status bcd__store_analysis_details(bcd_store *s, const char *session_id, char **details);
bcd_status bcd__store_analysis_get_many(bcd_store *s, const char *const *ids, size_t n, struct bcd__analysis *outs,
                                        bool *found, size_t *failed);
bcd_status bcd__store_blob_get_many(bcd_store *s, const char *const *paths, size_t n, size_t max_len,
                                    unsigned char **outs, size_t *lens, size_t *failed);
bcd_status bcd__store_blob_locate_many(bcd_store *s, const char *const *paths, size_t n, char **urls,
                                       char **local_paths, int *expires_in);
bcd_status bcd__store_image_delete(bcd_store *s, const char *session_id, const char *angle, int order_index,
                                   struct bcd__image_row *out, bool *analysis_deleted, int *files);
bcd_status bcd__store_session_delete(bcd_store *s, const char *session_id, int *images, bool *analysis_deleted,
                                     int *files);
/* BCD_EUNSUPPORTED "store_unsupported" when the backend has no upload URLs (local). */
bcd_status bcd__store_blob_upload_url(bcd_store *s, const char *key, const char *content_type,
                                      struct bcd__upload_url *out);

/* Helpers shared by backends. */
/* Current UTC time as "YYYY-MM-DDTHH:MM:SS.ffffffZ" into buf[BCD__TS_LEN]. */
void bcd__timestamp_now(char buf[BCD__TS_LEN]);
/* SHA-256 of data as lowercase hex into hex[65] (OpenSSL EVP). */
bcd_status bcd__sha256_hex(const void *data, size_t len, char hex[65]);
/* The parts of a blob's name "<sha256_hex>.<ext>": 64 lowercase hex digits, and 1-8
 * lowercase letters or digits. */
bool bcd__blob_name_valid(const char *sha256_hex, const char *ext);
/* Embedding <-> JSON text "[0.1,-2.5e-05,...]" (as the seed stores it); floats are
 * printed so that they read back bit for bit. Caller frees the text with free(). */
char *bcd__embedding_to_json(const float *v, size_t dim);
/* Parse; *out malloc'd. BCD_EFORMAT if not an array of dim finite numbers
 * (dim 0: any length, returned in *dim_out). */
bcd_status bcd__embedding_from_json(const char *text, size_t dim, float **out, size_t *dim_out);

/* ---- Analysis job queue (asynchronous analysis, workers) ------------------------------
 *
 * A job asks for the analysis of one session. Life cycle:
 *
 *   queued --claim--> running --complete--> done
 *     ^                  |  \--fail(final, or attempts used up)--> failed
 *     |                  |
 *     +--fail(retry_ms)--+   (back to queued, claimable again from run_after on)
 *     +--lease expired, claimed by another worker (attempts + 1)
 *
 * - enqueue is idempotent per session while a job of it is queued or running: that job
 *   is returned (*created = false). A done or failed job does not count: enqueueing
 *   again creates a new job (a re-analysis). At most one queued-or-running job per
 *   session (the backends enforce it with a unique index).
 * - claim takes, in ONE transaction, the oldest job that is queued with run_after in the
 *   past, or running with an expired lease (its worker died or hung), sets it running
 *   under worker_id with a lease until now + lease_ms and counts the attempt. A running
 *   job whose lease expired on its last allowed attempt is first set failed
 *   ("lease_expired") instead of being claimed again. Nothing claimable: *claimed =
 *   false and *wait_ms = the time until the next queued job becomes claimable or the
 *   next lease expires (0 if already), or -1 when no job is queued or running at all.
 * - heartbeat, complete and fail act only for the lease holder: the job must be running
 *   under worker_id, else BCD_ESTATE "job_lease_lost" (another worker took it over, or
 *   it was finished) and nothing changes; an unknown job is BCD_ENOTFOUND
 *   "job_not_found". heartbeat sets the lease to now + lease_ms (also after it expired,
 *   as long as nobody claimed the job meanwhile).
 * - fail records (error_code, error) on the job. retry_ms >= 0 and attempts <
 *   max_attempts: the job goes back to queued, claimable from now + retry_ms (the caller
 *   computes the backoff); otherwise (retry_ms < 0: a permanent error, or the last
 *   attempt) it is failed for good and keeps the error.
 * - complete sets done and clears the error.
 * Every job operation is atomic; *out receives the job as it is after the operation.
 */
#define BCD__JOB_WORKER_MAX 96      /* longest worker id (bytes, NUL included) */
#define BCD__JOB_ERROR_MAX 1024     /* longest stored error message (bytes, NUL included) */
#define BCD__JOB_DEFAULT_ATTEMPTS 3 /* attempts of a job unless the caller says otherwise */
#define BCD__JOB_MAX_ATTEMPTS 100

struct bcd__job_row {
    char id[BCD__ID_LEN];
    char session_id[BCD__ID_LEN];
    char user_id[BCD__USER_MAX + 1];
    char model[BCD__PATH_MAX];          /* model spec to analyze with; "" = the worker's BCD_MODEL */
    char status[16];                    /* "queued", "running", "done", "failed" */
    int attempts;                       /* claims so far */
    int max_attempts;
    char worker_id[BCD__JOB_WORKER_MAX];/* lease holder while running, else the last one ("" never claimed) */
    char lease_expires_at[BCD__TS_LEN]; /* running: end of the lease; "" otherwise */
    char run_after[BCD__TS_LEN];        /* queued: claimable from then on */
    char error_code[64];                /* last failure; "" none */
    char error[BCD__JOB_ERROR_MAX];     /* its message; "" none */
    char created_at[BCD__TS_LEN];
    char updated_at[BCD__TS_LEN];
    char started_at[BCD__TS_LEN];       /* last claim; "" never claimed */
    char finished_at[BCD__TS_LEN];      /* done or failed; "" otherwise */
};

/* Wrappers: clear s->err, dispatch (BCD_EUNSUPPORTED "store_unsupported" without a queue). */
bcd_status bcd__store_job_enqueue(bcd_store *s, const char *session_id, const char *user_id, const char *model,
                                  int max_attempts, struct bcd__job_row *out, bool *created);
bcd_status bcd__store_job_claim(bcd_store *s, const char *worker_id, int64_t lease_ms, struct bcd__job_row *out,
                                bool *claimed, int64_t *wait_ms);
bcd_status bcd__store_job_heartbeat(bcd_store *s, const char *job_id, const char *worker_id, int64_t lease_ms,
                                    struct bcd__job_row *out);
bcd_status bcd__store_job_complete(bcd_store *s, const char *job_id, const char *worker_id,
                                   struct bcd__job_row *out);
bcd_status bcd__store_job_fail(bcd_store *s, const char *job_id, const char *worker_id, const char *error_code,
                               const char *error, int64_t retry_ms, struct bcd__job_row *out);
bcd_status bcd__store_job_get(bcd_store *s, const char *job_id, struct bcd__job_row *out);
/* The newest job of a session (any status); BCD_ENOTFOUND "job_not_found" if none. */
bcd_status bcd__store_job_get_for_session(bcd_store *s, const char *session_id, struct bcd__job_row *out);
/* Current UTC time in milliseconds since the epoch, and the text form of such a time
 * ("YYYY-MM-DDTHH:MM:SS.ffffffZ", as bcd__timestamp_now()). */
int64_t bcd__time_ms(void);
void bcd__timestamp_of_ms(int64_t ms, char buf[BCD__TS_LEN]);

#endif
