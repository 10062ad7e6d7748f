#ifndef BCD_CTX_H
#define BCD_CTX_H
/**
 * @file bcd/ctx.h
 * The library context: configuration, limits, logging and the error detail of
 * free-standing operations.
 */
#include "common.h"

BCD_BEGIN_DECLS

typedef struct bcd_ctx bcd_ctx;
typedef struct bcd_error bcd_error;

/**
 * Create a context holding built-in defaults only; it does not read the environment
 * (see bcd_ctx_load_env()).
 * @param[out] out  the new context; caller frees with bcd_ctx_free(). Untouched on failure.
 * @return BCD_OK, BCD_EINVAL (out is NULL), BCD_ENOMEM.
 */
BCD_API bcd_status bcd_ctx_new(bcd_ctx **out);

/** Free a context and wipe the secrets it holds. NULL: no-op. */
BCD_API void bcd_ctx_free(bcd_ctx *ctx);

/**
 * Read configuration from a `.env` file, then from the process environment.
 * Precedence, highest first: explicit bcd_ctx_set(), environment variables, the
 * `.env` file, built-in defaults. Lines of the file are `KEY=VALUE` (optionally
 * `export KEY=VALUE`, values optionally in single or double quotes, `#` comments).
 * Unknown keys in the file are ignored.
 * @param dotenv_path  path of the file; NULL reads `.env` in the current directory if
 *                     it exists. A path given explicitly must exist (BCD_ENOTFOUND).
 * @return BCD_OK, BCD_ENOTFOUND, BCD_EFORMAT (malformed line), BCD_ENOMEM.
 */
BCD_API bcd_status bcd_ctx_load_env(bcd_ctx *ctx, const char *dotenv_path);

/**
 * Set one configuration value explicitly; it wins over environment and `.env`.
 * Keys: SUPABASE_URL, SUPABASE_SERVICE_ROLE_KEY (secret), SUPABASE_STORAGE_BUCKET,
 * BCD_STORE (local|supabase), BCD_DATA_DIR, BCD_MODEL (builtin|PATH.pt),
 * BCD_DEVICE (auto|cpu|cuda), BCD_THREADS (0 = all cores), BCD_MAX_PIXELS,
 * BCD_MAX_DIMENSION. Values are validated and copied.
 * @param value  NULL removes the explicit setting.
 * @return BCD_OK, BCD_EINVAL (unknown key or invalid value), BCD_ENOMEM.
 */
BCD_API bcd_status bcd_ctx_set(bcd_ctx *ctx, const char *key, const char *value);

/**
 * Effective value of a configuration key (after precedence and defaults).
 * Secret keys are never returned: for SUPABASE_SERVICE_ROLE_KEY the result is
 * "<set>" or NULL.
 * @return borrowed, valid until the next bcd_ctx_set()/bcd_ctx_load_env() on ctx;
 *         NULL if the key is unknown or has no value.
 */
BCD_API const char *bcd_ctx_get(const bcd_ctx *ctx, const char *key);

/**
 * The effective configuration as a JSON object, secrets redacted ("<set>").
 * @param[out] out  caller frees with bcd_free().
 */
BCD_API bcd_status bcd_ctx_config_json(char **out, const bcd_ctx *ctx);

/** Log levels of the optional logging callback. */
typedef enum bcd_log_level { BCD_LOG_DEBUG = 0, BCD_LOG_INFO, BCD_LOG_WARN, BCD_LOG_ERROR } bcd_log_level;
typedef void (*bcd_log_fn)(void *user, bcd_log_level level, const char *message);
/** Install a logging callback (NULL removes it). Messages never contain secrets. */
BCD_API void bcd_ctx_set_logger(bcd_ctx *ctx, bcd_log_fn fn, void *user);

/** Error detail of the last failed call that took this ctx; NULL if it succeeded. */
BCD_API const bcd_error *bcd_ctx_last_error(const bcd_ctx *ctx);

/** Status of an error (BCD_OK for NULL). */
BCD_API bcd_status bcd_error_status(const bcd_error *e);
/** Stable string code, e.g. "image_too_large"; "ok" for NULL. */
BCD_API const char *bcd_error_code(const bcd_error *e);
/** Human-readable message, never NULL, never contains a secret. */
BCD_API const char *bcd_error_message(const bcd_error *e);
/** Details as a JSON object text, or NULL. */
BCD_API const char *bcd_error_details_json(const bcd_error *e);
/** Correlation id sent to the server with the failing request, or NULL. */
BCD_API const char *bcd_error_correlation_id(const bcd_error *e);
/**
 * The error in the seeds' envelope:
 * {"error":{"code":...,"message":...,"details":...,"correlation_id":...}}.
 * @param[out] out  caller frees with bcd_free().
 */
BCD_API bcd_status bcd_error_json(char **out, const bcd_error *e);

BCD_END_DECLS

#endif
