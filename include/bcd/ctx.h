#ifndef BCD_CTX_H
#define BCD_CTX_H
/**
 * @file bcd/ctx.h
 * The library context: configuration, limits, logging and the error detail of
 * free-standing operations.
 *
 * Threads: a ctx is used by one thread at a time, together with every handle that
 * borrows it (services, embedders); different contexts may be used in different threads
 * at once. Error objects (bcd_error) belong to their handle: read them from the thread
 * that made the failing call, before the next call on that handle.
 */
#include "common.h"

BCD_BEGIN_DECLS

typedef struct bcd_ctx bcd_ctx;
typedef struct bcd_error bcd_error;

/**
 * Create a context holding built-in defaults only; it does not read the environment
 * (see bcd_ctx_load_env()).
 * @param[out] out  the new context; caller frees with bcd_ctx_free(). Untouched on failure.
 * @return BCD_OK, BCD_EINVAL (out is NULL), BCD_ENOMEM. No detail is recorded (there
 *         is no ctx yet).
 * Threads: any thread.
 */
BCD_API bcd_status bcd_ctx_new(bcd_ctx **out);

/**
 * Free a context and wipe the secrets it holds. Free the services and embedders that
 * borrow it first. Pointers borrowed from it (bcd_ctx_get(), bcd_ctx_last_error())
 * become invalid. NULL: no-op.
 * Threads: not while another thread uses ctx.
 */
BCD_API void bcd_ctx_free(bcd_ctx *ctx);

/**
 * Read configuration from a `.env` file, then from the process environment.
 * Precedence, highest first: explicit bcd_ctx_set(), environment variables, the
 * `.env` file, built-in defaults. Lines of the file are `KEY=VALUE` (optionally
 * `export KEY=VALUE`, values optionally in single or double quotes, `#` comments).
 * Unknown keys in the file are ignored.
 * @param dotenv_path  path of the file, borrowed for the call; NULL reads `.env` in the
 *                     current directory if it exists (as a server started in its folder
 *                     expects); "" reads no file, the environment only. A path given
 *                     explicitly must exist (BCD_ENOTFOUND).
 * Values read are validated and copied. A failure in the file applies nothing; a
 * failure in the environment applies nothing from the environment (the file's values,
 * already read, stay).
 * @return BCD_OK, BCD_ENOTFOUND ("file_not_found"), BCD_EIO ("file_unreadable"),
 *         BCD_ELIMIT (file over 1 MiB), BCD_EFORMAT (malformed line), BCD_EINVAL
 *         ("invalid_config_value": a variable or line with an invalid value), BCD_ENOMEM.
 *         Detail on ctx.
 * Threads: one thread per ctx at a time; reads the process environment (getenv), so not
 * while another thread changes it (setenv).
 */
BCD_API bcd_status bcd_ctx_load_env(bcd_ctx *ctx, const char *dotenv_path);

/**
 * Set one configuration value explicitly; it wins over environment and `.env`.
 * Keys: SUPABASE_URL, SUPABASE_SERVICE_ROLE_KEY (secret), SUPABASE_STORAGE_BUCKET,
 * BCD_STORE (local|supabase), BCD_DATA_DIR, BCD_MODEL (builtin|PATH.pt),
 * BCD_DEVICE (auto|cpu|cuda), BCD_THREADS (0 = all cores), BCD_MAX_PIXELS,
 * BCD_MAX_DIMENSION, BCD_HTTP_TIMEOUT_MS (total time of one request to Supabase,
 * default 60000), BCD_HTTP_CONNECT_TIMEOUT_MS (default 10000),
 * BCD_HTTP_MAX_RESPONSE_BYTES (cap on one response body, default 67108864),
 * BCD_HTTP_MAX_REQUEST_BYTES (cap on one request body such as a photo upload, default
 * 52428800), BCD_DETECT (on|off: change detection in bcd_session_analyze(), default
 * on), BCD_IMAGE_DIRS (absolute folders separated by ':' whose files registered by path
 * the local store reads; default none), BCD_JOB_TIMEOUT (seconds a worker's job may run
 * before it fails as "job_timeout", default 1800). Values are validated and copied.
 * @param key    borrowed for the call.
 * @param value  copied (secrets are wiped when replaced or freed); NULL removes the
 *               explicit setting.
 * @return BCD_OK, BCD_EINVAL ("unknown_config_key", "invalid_config_value"; the setting
 *         is unchanged), BCD_ENOMEM. Detail on ctx.
 * Threads: one thread per ctx at a time.
 */
BCD_API bcd_status bcd_ctx_set(bcd_ctx *ctx, const char *key, const char *value);

/**
 * Effective value of a configuration key (after precedence and defaults).
 * Secret keys are never returned: for SUPABASE_SERVICE_ROLE_KEY the result is
 * "<set>" or NULL.
 * @return borrowed, valid until the next bcd_ctx_set()/bcd_ctx_load_env() on ctx;
 *         NULL if the key is unknown or has no value. Never fails otherwise; records
 *         nothing.
 * Threads: one thread per ctx at a time.
 */
BCD_API const char *bcd_ctx_get(const bcd_ctx *ctx, const char *key);

/**
 * The effective configuration as a JSON object, secrets redacted ("<set>"), unset keys
 * null.
 * @param[out] out  caller frees with bcd_free(); untouched on failure.
 * @return BCD_OK, BCD_EINVAL (NULL argument), BCD_ENOMEM. Records nothing.
 * Threads: one thread per ctx at a time.
 */
BCD_API bcd_status bcd_ctx_config_json(char **out, const bcd_ctx *ctx);

/** Log levels of the optional logging callback. */
typedef enum bcd_log_level { BCD_LOG_DEBUG = 0, BCD_LOG_INFO, BCD_LOG_WARN, BCD_LOG_ERROR } bcd_log_level;
typedef void (*bcd_log_fn)(void *user, bcd_log_level level, const char *message);
/**
 * Install a logging callback (NULL removes it). The library calls fn synchronously, in
 * the thread making a call on ctx or on a handle that borrows it, with user as given;
 * message is borrowed for the duration of the callback. fn must not call back into the
 * library with the same ctx. Messages never contain secrets.
 * Threads: one thread per ctx at a time.
 */
BCD_API void bcd_ctx_set_logger(bcd_ctx *ctx, bcd_log_fn fn, void *user);

/**
 * Error detail of the last failed call that took this ctx; NULL if it succeeded.
 * @return borrowed, valid until the next fallible call on ctx (or on a handle that
 *         records on it) or bcd_ctx_free().
 * Threads: one thread per ctx at a time.
 */
BCD_API const bcd_error *bcd_ctx_last_error(const bcd_ctx *ctx);

/*
 * Accessors of a bcd_error. The error belongs to the handle it came from: strings returned
 * are borrowed, valid as long as the error is (until the next fallible call on that
 * handle). e may be NULL. They never fail and record nothing. Threads: those of the
 * owning handle.
 */

/** Status of an error (BCD_OK for NULL). */
BCD_API bcd_status bcd_error_status(const bcd_error *e);
/** Stable string code, e.g. "image_too_large"; "ok" for NULL. Borrowed, never NULL. */
BCD_API const char *bcd_error_code(const bcd_error *e);
/** Human-readable message; "success" for NULL. Borrowed, never NULL, never contains a secret. */
BCD_API const char *bcd_error_message(const bcd_error *e);
/** Details as a JSON object text, or NULL. Borrowed. */
BCD_API const char *bcd_error_details_json(const bcd_error *e);
/** Correlation id sent to the server with the failing request, or NULL. Borrowed. */
BCD_API const char *bcd_error_correlation_id(const bcd_error *e);
/**
 * The error in the seeds' envelope:
 * {"error":{"code":...,"message":...,"details":...,"correlation_id":...}}
 * (details {} and correlation_id null when absent; e NULL gives code "ok").
 * @param[out] out  caller frees with bcd_free(); untouched on failure.
 * @return BCD_OK, BCD_EINVAL (out is NULL), BCD_ENOMEM. Records nothing.
 * Threads: those of the handle that owns e.
 */
BCD_API bcd_status bcd_error_json(char **out, const bcd_error *e);

BCD_END_DECLS

#endif
