#ifndef BCD_SERVICE_H
#define BCD_SERVICE_H
/**
 * @file bcd/service.h
 * The operations users call: sessions of six-angle photos, image registration, analysis,
 * comparison and the queries around them, over a store (BCD_STORE: "local", the
 * default, an SQLite database plus a blob folder under BCD_DATA_DIR).
 *
 * Every operation takes the caller's user id. A session that belongs to another user is
 * reported exactly like a session that does not exist (BCD_ENOTFOUND,
 * "session_not_found"): no information leaks across users.
 *
 * Results are JSON documents (UTF-8 text) in the response shapes of the seeds, so that
 * the CLI and the bindings stay thin: `*out` receives a new string on success, which
 * the caller frees with bcd_free(); `*out` is untouched on failure.
 *
 * Errors: every operation clears the service's error detail on entry; on failure it
 * records a stable string code (e.g. "session_not_completed"), a message and, where
 * useful, details JSON there (bcd_service_last_error()). Bad input (unknown angle,
 * malformed UUID, corrupt image) is rejected before anything is written, and a failure
 * in the middle of an operation leaves stored data as it was before the operation.
 *
 * Validation common to all operations:
 *  - user_id: non-empty, at most 128 bytes, no control characters (BCD_EINVAL
 *    "invalid_user_id");
 *  - session ids: UUID text (BCD_EINVAL "invalid_session_id");
 *  - angles: "front", "left", "right", "up", "down", "raised" (BCD_EINVAL "invalid_angle").
 *
 * Threads: a service handle is used by one thread at a time; different handles (also
 * over the same data directory, also in different processes) may be used at once. The
 * service uses its ctx during calls, so that ctx must not be used by another thread
 * meanwhile.
 * @since 0.1
 */
#include "common.h"
#include "ctx.h"

BCD_BEGIN_DECLS

typedef struct bcd_service bcd_service;

/** The angles a photo is taken from, in canonical order. */
#define BCD_ANGLE_COUNT 6
/** Minimum number of distinct angles to complete or analyze a session. */
#define BCD_MIN_ANGLES 3

/**
 * Open the service over the store chosen by BCD_STORE of ctx: "local" (default) opens
 * or creates the database and blob folder under BCD_DATA_DIR (folders 0700, files 0600)
 * and migrates its schema; "supabase" is not available yet (BCD_EUNSUPPORTED,
 * "store_unsupported").
 * @param[out] out  the new service; caller frees with bcd_service_free(). Untouched on failure.
 * @param ctx       configuration, logging; borrowed, must outlive the service. Receives the
 *                  error detail when opening fails.
 * @return BCD_OK, BCD_EINVAL, BCD_EIO (data directory or database unusable),
 *         BCD_EFORMAT (not a libbcd database, "store_corrupt"), BCD_EUNSUPPORTED
 *         (supabase store; schema newer than this libbcd, "store_schema_too_new"), BCD_ENOMEM.
 */
BCD_API bcd_status bcd_service_open(bcd_service **out, bcd_ctx *ctx);

/** Close the store and free the service (and the embedder it keeps). NULL: no-op. */
BCD_API void bcd_service_free(bcd_service *svc);

/**
 * Error detail of the last failed operation on svc; NULL if it succeeded.
 * Borrowed, valid until the next operation on svc.
 */
BCD_API const bcd_error *bcd_service_last_error(const bcd_service *svc);

/**
 * Create a session for user_id.
 * Result: {"session_id": uuid, "status": "created", "user_id", "created_at"}.
 * created_at is ISO 8601 UTC with microseconds; sessions of a user are ordered by it,
 * ties broken by creation order.
 * @return BCD_OK, BCD_EINVAL, BCD_EIO, BCD_ENOMEM.
 */
BCD_API bcd_status bcd_session_create(char **out, bcd_service *svc, const char *user_id);

/**
 * Mark a session completed (analysis requires it). Needs images of at least
 * BCD_MIN_ANGLES distinct angles (BCD_ESTATE "insufficient_angles", details list the
 * angles present). Completing a completed session is a no-op.
 * Result: {"session_id", "status": "completed", "angles": [...], "image_count",
 * "already_completed": bool}.
 * @return BCD_OK, BCD_EINVAL, BCD_ENOTFOUND, BCD_ESTATE, BCD_EIO.
 */
BCD_API bcd_status bcd_session_complete(char **out, bcd_service *svc, const char *user_id,
                                        const char *session_id);

/**
 * The user's sessions, oldest first (created_at, then creation order).
 * Result: {"user_id", "count", "sessions": [{"session_id", "status", "created_at",
 * "updated_at", "image_count", "analyzed"}]}.
 * @return BCD_OK, BCD_EINVAL, BCD_EIO, BCD_ENOMEM.
 */
BCD_API bcd_status bcd_session_list(char **out, bcd_service *svc, const char *user_id);

/**
 * Where a session stands in the user's history.
 * Result: {"session_id", "is_first_session", "is_current" (the newest session),
 * "total_sessions", "created_at", "status", "previous_session_id" (the session just
 * before this one in created_at order, null for the first), "next_session_id"}.
 * @return BCD_OK, BCD_EINVAL, BCD_ENOTFOUND, BCD_EIO.
 */
BCD_API bcd_status bcd_session_info(char **out, bcd_service *svc, const char *user_id, const char *session_id);

/**
 * Register an image that is already in storage (a blob key of the store, an absolute
 * path or a file:// URL for the local store), with the seeds' rules, atomically:
 *  1. the same (session, path) registered before: ok, nothing is created
 *     (result "created": false, with the existing row's angle and order_index);
 *  2. order_index < 0 means "the next index" for (session, angle);
 *  3. the (angle, order_index) slot holds another path: BCD_ECONFLICT "slot_conflict";
 *  4. order_index must equal the number of images already registered for
 *     (session, angle) (0-based, contiguous): else BCD_ECONFLICT
 *     "order_index_out_of_sequence" (details: expected_order_index).
 * The file is not read. Result: {"ok": true, "created": bool, "image_id", "session_id",
 * "angle", "image_type", "order_index", "storage_path"}.
 * @param path  at most 4095 bytes.
 * @return BCD_OK, BCD_EINVAL, BCD_ENOTFOUND (session), BCD_ECONFLICT, BCD_EIO.
 */
BCD_API bcd_status bcd_image_register(char **out, bcd_service *svc, const char *user_id, const char *session_id,
                                      const char *angle, const char *path, int order_index);

/**
 * Copy an image file into the store and register it. The file is decoded once to
 * validate it (JPEG or PNG within the size limits of ctx); its bytes are stored
 * unchanged, content addressed ("<session_id>/<sha256>.<ext>"), written durably
 * before the registration. Registration follows bcd_image_register(); adding the same
 * bytes again to the same angle is idempotent ("created": false), adding them to
 * another angle of the same session is BCD_ECONFLICT "duplicate_image".
 * Result: as bcd_image_register() plus "content_type", "size_bytes", "sha256",
 * "width", "height".
 * @param order_index  < 0: the next index for the angle.
 * @return BCD_OK, BCD_EINVAL, BCD_ENOTFOUND (session or file), BCD_EFORMAT (not an
 *         image, corrupt), BCD_ELIMIT (too large), BCD_ECONFLICT, BCD_EIO.
 */
BCD_API bcd_status bcd_image_add(char **out, bcd_service *svc, const char *user_id, const char *session_id,
                                 const char *angle, const char *file_path, int order_index);

/**
 * Analyze a completed session and store the result, replacing an earlier analysis of
 * it in one atomic step.
 *
 * Preconditions: the session is the caller's (BCD_ENOTFOUND), completed (BCD_ESTATE
 * "session_not_completed") and has images of at least BCD_MIN_ANGLES distinct angles
 * (BCD_ESTATE "insufficient_angles").
 *
 * Pipeline: every image is read from the store, decoded, preprocessed
 * (bcd_image_preprocess()) and all of them are embedded in one batch. An angle's
 * embedding is the mean of its images' embeddings; the session embedding is the mean
 * of the angle embeddings.
 *
 * Scores (cosine distances, 0 = same direction): an angle's change_score is the
 * distance between its embedding and the mean of the same angle's embeddings in the
 * user's EARLIER sessions (created_at order) analyzed with the same model; the overall
 * change score is the distance between the session embedding and the mean of the
 * earlier session embeddings. Embeddings of other models are ignored. Without an
 * earlier embedding (first session) a score is 0 and the summary says that the baseline
 * is being established.
 *
 * Confidence, in [0, 1], is the product of three factors:
 *  - angle coverage: distinct angles present / 6;
 *  - image quality: mean over the angles of sharpness × exposure, where sharpness =
 *    v / (v + 20), v the variance of the (4-neighbour) Laplacian of the 224×224 grey
 *    image before equalization (sharp photos measure several hundred: ~0.95 and up),
 *    and exposure = max(0, 1 − 2 × fraction of pixels at or below 5 or at or above 250);
 *  - baseline: 0.5 + 0.5 × min(earlier sessions in the baseline, 3) / 3 (0.5 for the
 *    first session, 1 from three earlier sessions on).
 *
 * Result (the seed's analyze response, with additions):
 * {"success": true, "data": {"session_id", "overwritten": bool, "model", "dim",
 *  "created_at", "baseline_sessions",
 *  "session_analysis": {"per_angle": [{"angle_type", "change_score", "summary",
 *     "image_count", "baseline_sessions", "quality": {"score", "sharpness",
 *     "blur_variance", "clipped_fraction"}}], "overall_summary"},
 *  "scores": {"change_score", "confidence"},
 *  "confidence_factors": {"angle_coverage", "image_quality", "baseline"}}}.
 *
 * A corrupt or missing image fails the call (BCD_EFORMAT "image_corrupt" /
 * BCD_ENOTFOUND "image_file_missing", details name the image and angle) and nothing
 * is stored; the previous analysis, if any, stays as it was.
 * @param model_spec  "builtin", a TorchScript file, or NULL for BCD_MODEL of ctx. The
 *                    embedder is kept by the service and reused while the spec is the same.
 * @return BCD_OK, BCD_EINVAL, BCD_ENOTFOUND, BCD_ESTATE, BCD_EFORMAT, BCD_ELIMIT,
 *         BCD_EUNSUPPORTED (model needs libtorch), BCD_EDOMAIN (degenerate embedding),
 *         BCD_EIO, BCD_ENOMEM, BCD_ERROR (embedder failure).
 */
BCD_API bcd_status bcd_session_analyze(char **out, bcd_service *svc, const char *user_id, const char *session_id,
                                       const char *model_spec);

/**
 * The stored analysis of a session, without recomputing.
 * Result: {"success": true, "data": {"session_analysis": {"session_id",
 * "overall_change_score", "confidence", "summary", "model", "baseline_sessions",
 * "created_at", "per_angle": [{"angle_type", "change_score", "summary", ...}]}}}.
 * @return BCD_OK, BCD_EINVAL, BCD_ENOTFOUND ("session_not_found", or
 *         "analysis_not_found" if never analyzed), BCD_EIO.
 */
BCD_API bcd_status bcd_analysis_get(char **out, bcd_service *svc, const char *user_id, const char *session_id);

/**
 * Compare two analyzed sessions of the caller.
 * per_angle holds the angles analyzed in both: current_score, previous_score,
 * delta = current − previous, delta_magnitude = |delta|, and embedding_distance (cosine
 * distance between the two sessions' embeddings of that angle, null when missing or of
 * different models). overall_delta is the cosine distance between the two session
 * embeddings (comparison_method "embedding"); when either is missing or the models
 * differ, it falls back to |mean current score − mean previous score| over the common
 * angles (comparison_method "score"). stability_index = max(0, 1 − overall_delta);
 * overall_trend = bcd_trend_label(overall_delta): "stable" < 0.1 ≤ "mild_variation" <
 * 0.25 ≤ "significant_shift".
 * Result: {"success": true, "data": {"current_session_id", "previous_session_id",
 * "per_angle": [...], "overall_delta", "stability_index", "overall_trend",
 * "comparison_method", "angles_only_in_current": [...], "angles_only_in_previous": [...]}}.
 * @return BCD_OK, BCD_EINVAL (also "same_session"), BCD_ENOTFOUND, BCD_ESTATE
 *         ("session_not_completed", "session_not_analyzed"), BCD_EIO.
 */
BCD_API bcd_status bcd_session_compare(char **out, bcd_service *svc, const char *user_id,
                                       const char *current_session_id, const char *previous_session_id);

/**
 * Where the caller can read one image of a session: the first image (order_index 0)
 * of the angle. Local store: an absolute path and a file:// URL that do not expire.
 * Result: {"session_id", "image_type", "preview_url", "path" (null if not a local
 * file), "expires_in" (seconds, null: never), "content_type"}.
 * @return BCD_OK, BCD_EINVAL, BCD_ENOTFOUND (session, or "image_not_found" for the
 *         angle, or "image_file_missing"), BCD_EIO.
 */
BCD_API bcd_status bcd_image_preview(char **out, bcd_service *svc, const char *user_id, const char *session_id,
                                     const char *angle);

/**
 * bcd_image_preview() for every angle of a session in one call.
 * Result: {"session_id", "thumbnails": {"front": url, ...}, "paths": {"front": path, ...},
 * "count", "expires_in"}. Angles without images are left out; an image whose file is
 * missing is left out too and listed in "missing": [...].
 * @return BCD_OK, BCD_EINVAL, BCD_ENOTFOUND, BCD_EIO.
 */
BCD_API bcd_status bcd_session_thumbnails(char **out, bcd_service *svc, const char *user_id,
                                          const char *session_id);

BCD_END_DECLS

#endif
