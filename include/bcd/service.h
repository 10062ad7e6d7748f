#ifndef BCD_SERVICE_H
#define BCD_SERVICE_H
/**
 * @file bcd/service.h
 * The operations users call: sessions of six-angle photos, image registration, analysis,
 * comparison and the queries around them, over a store (BCD_STORE: "local", the
 * default, an SQLite database plus a blob folder under BCD_DATA_DIR; or "supabase", a
 * Supabase project's Postgres (PostgREST) and Storage, see supabase/README.md).
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
#include <signal.h> /* sig_atomic_t of bcd_worker_options */

#include "common.h"
#include "ctx.h"

BCD_BEGIN_DECLS

typedef struct bcd_service bcd_service;

/** The angles a photo is taken from, in canonical order. */
#define BCD_ANGLE_COUNT 6
/** Minimum number of distinct angles to complete or analyze a session. */
#define BCD_MIN_ANGLES 3
/** Most images one session may hold (ten per angle): an analysis keeps them all in memory.
 *  Registering or adding one more is BCD_ELIMIT "too_many_images". @since 0.2 */
#define BCD_MAX_SESSION_IMAGES 60

/**
 * Open the service over the store chosen by BCD_STORE of ctx: "local" (default) opens
 * or creates the database and blob folder under BCD_DATA_DIR (folders 0700, files 0600)
 * and migrates its schema; "supabase" uses SUPABASE_URL, SUPABASE_SERVICE_ROLE_KEY and
 * SUPABASE_STORAGE_BUCKET (BCD_EINVAL "supabase_not_configured" when URL or key are
 * missing) and contacts the project only when an operation needs it.
 *
 * The supabase store: user ids are Supabase Auth user ids (lowercase UUIDs, else
 * BCD_EINVAL "invalid_user_id"); image blobs live in the bucket (object keys like the
 * local store's); previews and thumbnails are signed URLs valid for 3600 s; failures to
 * reach the project are BCD_ENET ("network_error", "network_timeout", "server_error",
 * "rate_limited"), a refused key BCD_EAUTH ("supabase_unauthorized"), a project without
 * libbcd's schema BCD_EIO ("store_schema_missing"); these carry the X-Correlation-Id
 * that was sent (bcd_error_correlation_id()). Requests are retried (idempotent ones
 * only) on connection failures, 408, 429 and 5xx. The key never appears in messages.
 * @param[out] out  the new service; caller frees with bcd_service_free(). Untouched on failure.
 * @param ctx       configuration, logging; borrowed, must outlive the service. Receives the
 *                  error detail when opening fails.
 * @return BCD_OK, BCD_EINVAL, BCD_EIO (data directory or database unusable),
 *         BCD_EFORMAT (not a libbcd database, "store_corrupt"), BCD_EUNSUPPORTED
 *         (schema newer than this libbcd, "store_schema_too_new"), BCD_ENOMEM.
 *         Detail on ctx (there is no svc yet).
 * Threads: one thread per ctx at a time.
 */
BCD_API bcd_status bcd_service_open(bcd_service **out, bcd_ctx *ctx);

/**
 * Close the store and free the service (and the embedder it keeps); the ctx it borrows
 * is not freed. Errors borrowed from it become invalid. NULL: no-op.
 * Threads: not while another thread uses svc.
 */
BCD_API void bcd_service_free(bcd_service *svc);

/**
 * Error detail of the last failed operation on svc; NULL if it succeeded.
 * Borrowed, valid until the next operation on svc.
 * Threads: one thread per svc at a time (the thread that made the failing call).
 */
BCD_API const bcd_error *bcd_service_last_error(const bcd_service *svc);

/**
 * Create a session for user_id.
 * Result: {"session_id": uuid, "status": "created", "user_id", "created_at"}.
 * created_at is ISO 8601 UTC with microseconds; sessions of a user are ordered by it,
 * ties broken by creation order.
 * @return BCD_OK, BCD_EINVAL, BCD_EIO, BCD_ENOMEM.
 * Ownership: *out caller frees with bcd_free(), untouched on failure; string arguments
 * are borrowed for the call. Detail on svc. Threads: one thread per svc at a time.
 */
BCD_API bcd_status bcd_session_create(char **out, bcd_service *svc, const char *user_id);

/**
 * Mark a session completed (analysis requires it). Needs images of at least
 * BCD_MIN_ANGLES distinct angles (BCD_ESTATE "insufficient_angles", details list the
 * angles present). Completing a completed session is a no-op.
 * Result: {"session_id", "status": "completed", "angles": [...], "image_count",
 * "already_completed": bool}.
 * @return BCD_OK, BCD_EINVAL, BCD_ENOTFOUND, BCD_ESTATE, BCD_EIO.
 * Ownership: *out caller frees with bcd_free(), untouched on failure; string arguments
 * are borrowed for the call. Detail on svc. Threads: one thread per svc at a time.
 */
BCD_API bcd_status bcd_session_complete(char **out, bcd_service *svc, const char *user_id,
                                        const char *session_id);

/**
 * The user's sessions, oldest first (created_at, then creation order).
 * Result: {"user_id", "count", "sessions": [{"session_id", "status", "created_at",
 * "updated_at", "image_count", "analyzed"}]}.
 * @return BCD_OK, BCD_EINVAL, BCD_EIO, BCD_ENOMEM.
 * Ownership: *out caller frees with bcd_free(), untouched on failure; string arguments
 * are borrowed for the call. Detail on svc. Threads: one thread per svc at a time.
 */
BCD_API bcd_status bcd_session_list(char **out, bcd_service *svc, const char *user_id);

/**
 * Where a session stands in the user's history.
 * Result: {"session_id", "is_first_session", "is_current" (the newest session),
 * "total_sessions", "created_at", "status", "previous_session_id" (the session just
 * before this one in created_at order, null for the first), "next_session_id"}.
 * @return BCD_OK, BCD_EINVAL, BCD_ENOTFOUND, BCD_EIO.
 * Ownership: *out caller frees with bcd_free(), untouched on failure; string arguments
 * are borrowed for the call. Detail on svc. Threads: one thread per svc at a time.
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
 *     "order_index_out_of_sequence" (details: expected_order_index);
 *  5. a new image in a check that is completed and analyzed: BCD_ESTATE
 *     "session_already_analyzed" (its analysis would no longer describe it; delete the
 *     wrong photo first with bcd_image_delete(), which drops the analysis).
 * The file is not read. On the local store, what is read later (analysis, previews): a blob
 * key of this session (another session's key is BCD_EINVAL "invalid_path" here); an
 * absolute path or file:// URL only of a regular file in a folder listed in BCD_IMAGE_DIRS
 * and outside the data folder (else BCD_EINVAL "image_path_not_allowed" when read); never a
 * FIFO, device or folder; http(s) URLs are recorded but cannot be read by the local store.
 * Result: {"ok": true, "created": bool, "image_id", "session_id",
 * "angle", "image_type", "order_index", "storage_path"}.
 * @param path  at most 4095 bytes.
 * @return BCD_OK, BCD_EINVAL, BCD_ENOTFOUND (session), BCD_ECONFLICT, BCD_ESTATE, BCD_EIO.
 * Ownership: *out caller frees with bcd_free(), untouched on failure; string arguments
 * are borrowed for the call. Detail on svc. Threads: one thread per svc at a time.
 */
BCD_API bcd_status bcd_image_register(char **out, bcd_service *svc, const char *user_id, const char *session_id,
                                      const char *angle, const char *path, int order_index);

/**
 * Copy an image file into the store and register it. The file is decoded once to
 * validate it (JPEG or PNG within the size limits of ctx); what is stored is the file
 * without its metadata (bcd_image_strip_metadata(): same pixels, EXIF orientation kept),
 * content addressed ("<session_id>/<sha256 of the stored bytes>.<ext>"), written durably
 * before the registration. Registration follows bcd_image_register(); adding the same
 * bytes again to the same angle is idempotent ("created": false), adding them to
 * another angle of the same session is BCD_ECONFLICT "duplicate_image".
 * Result: as bcd_image_register() plus "content_type", "size_bytes", "sha256",
 * "width", "height".
 * @param order_index  < 0: the next index for the angle.
 * @return BCD_OK, BCD_EINVAL, BCD_ENOTFOUND (session or file), BCD_EFORMAT (not an
 *         image, corrupt), BCD_ELIMIT (too large), BCD_ECONFLICT, BCD_ESTATE (a new photo
 *         in a completed, analyzed check: "session_already_analyzed"), BCD_EIO.
 * Ownership: *out caller frees with bcd_free(), untouched on failure; string arguments
 * are borrowed for the call. Detail on svc. Threads: one thread per svc at a time.
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
 * Change detection (bcd/detect.h): the first photo of each angle (lowest order_index)
 * is compared with the same angle of the user's nearest EARLIER completed session:
 * alignment, photometric matching, a local change map, a quality gate; the angles are
 * combined with bcd_detect_combine() into change_probability and changed. Without an
 * earlier session only the quality gate runs (local_change and change_probability are
 * null). A heatmap overlay (PNG, longer side 512 px) of every aligned angle is stored
 * as a blob of the session; its key is the angle's "heatmap". Regions are boxes in the
 * pixel coordinates of the current photo (after EXIF orientation). An earlier photo
 * that cannot be read only leaves its angle uncompared. The photos reduced for
 * detection (PNG, longer side 512 px, no metadata) are stored as blobs of the session
 * too, named in the stored analysis: the next analysis and bcd_session_compare() read
 * them instead of decoding the full-size photos again (a missing or damaged one costs
 * only that decoding; the results are the same either way).
 *
 * With a model that has a feature map (bcd_embedder_map_shape(): the TorchScript
 * models export_model.py writes), the map of each angle's first photo, made in the
 * embedding's forward pass, is compared cell by cell with the earlier session's map of
 * the same angle and model, through the alignment (bcd_detect_compare_maps()):
 * "feature_change" is {"rows", "cols", "distance": [rows × cols cosine distances, row by
 * row over the centre square of the photo the model sees; null for a cell outside the
 * earlier photo], "max"}, null when there is nothing to compare (the built-in embedder,
 * another model, no earlier map, not aligned). It is reported beside local_change, not
 * part of it or of change_probability. The maps are stored as blobs of the session
 * (16-bit greyscale PNG of half floats, one row per channel; ~0.1-0.2 MB per angle).
 *
 * Lesions (bcd/lesion.h): the first photo of each angle is also searched for spots at
 * full resolution and compared with the earlier session's photo of the angle
 * (bcd_lesion_compare(); the first session: bcd_lesion_find()), the earlier session's
 * lesion ids carried over. The angle's "lesions" is the bcd_lesion_result_json() object;
 * each changed lesion is also a changed region (with its "lesion_id"), and the angle's
 * local_change is the higher of the change map's and its strongest lesion's score (so
 * change_probability counts changed lesions too; an angle the whole-image alignment
 * could not align but the lesions registered counts). BCD_MM_PER_PX of ctx, when set,
 * gives lesion sizes in mm (both checks taken at that scale); BCD_LESIONS=off leaves the
 * lesions out.
 *
 * Confidence, in [0, 1], is the product of four factors:
 *  - angle coverage: distinct angles present / 6;
 *  - image quality: mean over the angles of sharpness × exposure, where sharpness =
 *    v / (v + 20), v the variance of the (4-neighbour) Laplacian of the 224×224 grey
 *    image before equalization (sharp photos measure several hundred: ~0.95 and up),
 *    and exposure = max(0, 1 − 2 × fraction of pixels at or below 5 or at or above 250);
 *  - baseline: 0.5 + 0.5 × min(earlier sessions in the baseline, 3) / 3 (0.5 for the
 *    first session, 1 from three earlier sessions on);
 *  - detection quality: 1 − 0.5 × the fraction of angles the quality gate flags
 *    (blurred, clipped, subject too small in either photo, or not aligned).
 *
 * Result (the seed's analyze response, with additions):
 * {"success": true, "data": {"session_id", "overwritten": bool, "model", "dim",
 *  "created_at", "baseline_sessions",
 *  "session_analysis": {"per_angle": [{"angle_type", "change_score", "summary",
 *     "image_count", "baseline_sessions", "quality": {"score", "sharpness",
 *     "blur_variance", "clipped_fraction", "blurred", "clipped", "subject_too_small",
 *     "aligned", "previous_blurred", "previous_clipped", "previous_subject_too_small",
 *     "subject_fraction"}, "local_change": number|null, "changed": bool|null,
 *     "changed_regions": [{"x", "y", "width", "height", "score"}],
 *     "alignment": {"score", "overlap", "dx", "dy", "rotation_deg", "scale"}|null,
 *     "heatmap": blob key|null, "warning": text|null, "feature_change": {...}|null}],
 *     "overall_summary"},
 *  "scores": {"change_score", "confidence"},
 *  "confidence_factors": {"angle_coverage", "image_quality", "baseline",
 *     "detection_quality"},
 *  "previous_session_id": id|null, "change_probability": number|null,
 *  "changed": bool|null, "warnings": ["<angle>: <warning>", ...]}}.
 * The detection is stored with the analysis: bcd_analysis_get() returns it as is.
 *
 * A corrupt or missing image fails the call (BCD_EFORMAT "image_corrupt" /
 * BCD_ENOTFOUND "image_file_missing", details name the image and angle) and nothing
 * is stored; the previous analysis, if any, stays as it was.
 * @param model_spec  "builtin", a TorchScript file, or NULL for BCD_MODEL of ctx. The
 *                    embedder is kept by the service and reused while the spec is the same.
 * @return BCD_OK, BCD_EINVAL, BCD_ENOTFOUND, BCD_ESTATE, BCD_EFORMAT, BCD_ELIMIT,
 *         BCD_EUNSUPPORTED (model needs libtorch), BCD_EDOMAIN (degenerate embedding),
 *         BCD_EIO, BCD_ENOMEM, BCD_ERROR (embedder failure).
 * Ownership: *out caller frees with bcd_free(), untouched on failure; string arguments
 * are borrowed for the call. Detail on svc. Threads: one thread per svc at a time.
 */
BCD_API bcd_status bcd_session_analyze(char **out, bcd_service *svc, const char *user_id, const char *session_id,
                                       const char *model_spec);

/**
 * The stored analysis of a session, without recomputing.
 * Result: {"success": true, "data": {"session_analysis": {"session_id",
 * "overall_change_score", "confidence", "summary", "model", "baseline_sessions",
 * "created_at", "confidence_factors", "has_embeddings", "per_angle": [{"angle_type",
 * "change_score", "summary", ...}], and the stored change detection as in
 * bcd_session_analyze(): "previous_session_id", "change_probability", "changed",
 * "warnings" and the per-angle fields}}} (analyses made before change detection
 * existed have none of these).
 * @return BCD_OK, BCD_EINVAL, BCD_ENOTFOUND ("session_not_found", or
 *         "analysis_not_found" if never analyzed), BCD_EIO.
 * Ownership: *out caller frees with bcd_free(), untouched on failure; string arguments
 * are borrowed for the call. Detail on svc. Threads: one thread per svc at a time.
 */
BCD_API bcd_status bcd_analysis_get(char **out, bcd_service *svc, const char *user_id, const char *session_id);

/**
 * The lesion table of a session's stored analysis: every lesion of every angle against
 * the previous check, as analyze found them.
 * Result: {"success": true, "data": {"session_id", "previous_session_id": id|null,
 *  "angles": [{"angle_type", "status": "first"|"compared"|"not_comparable", "reason",
 *  "mm_per_px", "matched", "changed": count, "registration",
 *  "lesions": [{"id", "state", "center", "previous_center", "diameter_px",
 *  "diameter_mm", "changed", "score", "change", ...}]}]}} (the lesion fields of
 *  bcd_lesion_result_json()). Angles analyzed without lesions (BCD_LESIONS=off, or an
 *  analysis made before lesions existed) are not listed.
 * @return BCD_OK, BCD_EINVAL, BCD_ENOTFOUND ("session_not_found", "analysis_not_found"),
 *         BCD_EIO.
 * Ownership: *out caller frees with bcd_free(). Threads: one thread per svc at a time.
 */
BCD_API bcd_status bcd_lesions_get(char **out, bcd_service *svc, const char *user_id, const char *session_id);

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
 * "comparison_method", "angles_only_in_current": [...], "angles_only_in_previous": [...],
 * "change_probability", "changed", "warnings", "detection": "stored"|"computed"}}, and in
 * each per_angle item the change detection of the pair ("local_change", "changed",
 * "changed_regions", "quality", "alignment", "heatmap", "warning", "feature_change"; see
 * bcd_session_analyze(): feature maps stored with both sessions' analyses are compared).
 * When the current session's stored analysis was made against previous_session_id it is
 * reused ("stored"); otherwise the photos are compared now.
 * @return BCD_OK, BCD_EINVAL (also "same_session"), BCD_ENOTFOUND, BCD_ESTATE
 *         ("session_not_completed", "session_not_analyzed"), BCD_EIO, BCD_ENOMEM.
 * Ownership: *out caller frees with bcd_free(), untouched on failure; string arguments
 * are borrowed for the call. Detail on svc. Threads: one thread per svc at a time.
 */
BCD_API bcd_status bcd_session_compare(char **out, bcd_service *svc, const char *user_id,
                                       const char *current_session_id, const char *previous_session_id);

/** Options of bcd_session_compare_ex(); start from BCD_COMPARE_OPTIONS_INIT. @since 0.2 */
typedef struct bcd_compare_options {
    unsigned int version;    /**< BCD_COMPARE_OPTIONS_VERSION */
    const char *heatmap_dir; /**< write the overlays as <dir>/<angle>.png (the directory is
                                  created; files replaced atomically); NULL: none */
} bcd_compare_options;
#define BCD_COMPARE_OPTIONS_VERSION 1
#define BCD_COMPARE_OPTIONS_INIT { BCD_COMPARE_OPTIONS_VERSION, NULL }

/**
 * bcd_session_compare() with options. With heatmap_dir each aligned angle's overlay is
 * written there and its "heatmap" is the path of that PNG (longer side 512 px): the
 * overlays stored with the analysis when the detection is reused ("stored"; computed
 * again if one is missing from the store), else those of the comparison made now.
 * @param opts  NULL: BCD_COMPARE_OPTIONS_INIT.
 * @return as bcd_session_compare(); BCD_EINVAL also for an unknown options version;
 *         BCD_EIO when the directory or a file cannot be written (files written before
 *         stay).
 * @since 0.2
 */
BCD_API bcd_status bcd_session_compare_ex(char **out, bcd_service *svc, const char *user_id,
                                          const char *current_session_id, const char *previous_session_id,
                                          const bcd_compare_options *opts);

/**
 * Where the caller can read one image of a session: the first image (order_index 0)
 * of the angle. Local store: an absolute path and a file:// URL that do not expire.
 * Supabase store: a signed URL of the object valid for 3600 s, "path" null.
 * Result: {"session_id", "image_type", "preview_url", "path" (null if not a local
 * file), "expires_in" (seconds, null: never), "content_type"}.
 * @return BCD_OK, BCD_EINVAL, BCD_ENOTFOUND (session, or "image_not_found" for the
 *         angle, or "image_file_missing"), BCD_EIO.
 * Ownership: *out caller frees with bcd_free(), untouched on failure; string arguments
 * are borrowed for the call. Detail on svc. Threads: one thread per svc at a time.
 */
BCD_API bcd_status bcd_image_preview(char **out, bcd_service *svc, const char *user_id, const char *session_id,
                                     const char *angle);

/**
 * bcd_image_preview() for every angle of a session in one call (one batch signing
 * request on the supabase store, where "paths" holds nulls).
 * Result: {"session_id", "thumbnails": {"front": url, ...}, "paths": {"front": path, ...},
 * "count", "expires_in"}. Angles without images are left out; an image whose file is
 * missing is left out too and listed in "missing": [...].
 * @return BCD_OK, BCD_EINVAL, BCD_ENOTFOUND, BCD_EIO.
 * Ownership: *out caller frees with bcd_free(), untouched on failure; string arguments
 * are borrowed for the call. Detail on svc. Threads: one thread per svc at a time.
 */
BCD_API bcd_status bcd_session_thumbnails(char **out, bcd_service *svc, const char *user_id,
                                          const char *session_id);

/**
 * A signed URL for uploading one photo straight to storage (the seed's
 * POST /images/signed-url), for a browser or another client that holds the bytes; then
 * register the returned path with bcd_image_register(). Only the supabase store has
 * them (local: BCD_EUNSUPPORTED "store_unsupported"). The object key is
 * "<session_id>/<angle>/<random uuid>-<filename>".
 * Result: {"uploadUrl" (absolute; HTTP PUT of the raw bytes), "token", "path" (the key
 * to register), "headers": {"Content-Type"}, "publicUrl" (null: the bucket is private),
 * "method": "PUT", "session_id", "image_type", "expires_in" (null: set by the server,
 * 2 h on hosted Supabase)}. The URL creates the object once; it cannot replace it.
 * @param filename  1-128 bytes of letters, digits, '.', '_', '-', ending in .jpg, .jpeg
 *                  or .png (BCD_EINVAL "invalid_filename", "unsupported_content_type").
 * @return BCD_OK, BCD_EINVAL, BCD_ENOTFOUND, BCD_EUNSUPPORTED, BCD_ENET, BCD_EAUTH.
 * @since 0.2
 */
BCD_API bcd_status bcd_image_upload_url(char **out, bcd_service *svc, const char *user_id, const char *session_id,
                                        const char *angle, const char *filename);

/* ---- Deleting (the right to erasure) ---------------------------------------------------- */

/**
 * Delete one photo of a check: its image row, the check's analysis (made from the photo;
 * the check can be analyzed again) and the stored files no row names any more (the
 * photo, unless another image of the check has the same bytes; its working copies,
 * heatmaps and feature maps). The rows go in one atomic step, the files after them. Later
 * photos of the same angle move up one place, so a wrong photo is replaced by deleting it
 * and adding the right one at the same order_index. Other checks and other users' data
 * are untouched.
 * Result: {"session_id","image_id","angle_type","order_index","analysis_deleted",
 * "files_deleted"}.
 * @param order_index  position within the angle; < 0: the last photo of the angle.
 * @return BCD_OK, BCD_EINVAL, BCD_ENOTFOUND (session of another user, or no photo there:
 *         "image_not_found"), BCD_EIO, BCD_ENET, BCD_EAUTH.
 * Ownership: *out caller frees with bcd_free(), untouched on failure; string arguments
 * are borrowed for the call. Detail on svc. Threads: one thread per svc at a time.
 * @since 0.1.1
 */
BCD_API bcd_status bcd_image_delete(char **out, bcd_service *svc, const char *user_id, const char *session_id,
                                    const char *angle, int order_index);

/**
 * Delete a check with everything of it: photos, analysis, embeddings, jobs, and every
 * stored file (photos, working copies, heatmaps, feature maps). The rows go in one atomic
 * step, the files after them; the check no longer counts in anyone's baseline or history.
 * Result: {"session_id","deleted":true,"images_deleted","analysis_deleted","files_deleted"}.
 * @return BCD_OK, BCD_EINVAL, BCD_ENOTFOUND (also a session of another user), BCD_EIO,
 *         BCD_ENET, BCD_EAUTH.
 * Ownership, threads: as bcd_image_delete().
 * @since 0.1.1
 */
BCD_API bcd_status bcd_session_delete(char **out, bcd_service *svc, const char *user_id, const char *session_id);

/**
 * Delete every check of user_id, as bcd_session_delete() does, newest first; other users'
 * data is untouched. Each check goes atomically; after a failure part way (the message
 * says how many went) the older checks are whole and calling again deletes them.
 * Result: {"user_id","sessions_deleted","images_deleted","analyses_deleted","files_deleted"}.
 * @return BCD_OK, BCD_EINVAL, BCD_EIO, BCD_ENET, BCD_EAUTH.
 * Ownership, threads: as bcd_image_delete().
 * @since 0.1.1
 */
BCD_API bcd_status bcd_user_delete(char **out, bcd_service *svc, const char *user_id);

/* ---- Asynchronous analysis, jobs and workers (@since 0.2) ------------------------------ */

/**
 * One progress report of a long operation: bcd_session_analyze() (through
 * bcd_service_set_progress()) and bcd_worker_run(). Borrowed by the callback for the
 * duration of the call; copy what you keep.
 *
 * Stages of an analysis: "read" (images read and decoded, done of total), "embed"
 * (total images in one batch), "score", "detect" (change detection, total angles; not
 * with BCD_DETECT=off), "save", "analyzed".
 * Stages of a worker, besides those of the analyses it runs: "claimed" (a job started:
 * done = attempt, total = allowed attempts), "done" (the job completed), "retry" (it
 * failed and will be tried again after a backoff; message: the error), "failed" (it
 * failed for good; message: the error), "lease_lost" (another worker took the job over
 * after this one's lease expired; nothing was recorded for it), "idle" (no job to run
 * now: sent when the worker becomes idle and about once a second while it is),
 * "store_error" (the queue could not be reached; retried with backoff; message),
 * "stopping" (the stop flag was seen or the queue is drained).
 * @since 0.2
 */
typedef struct bcd_progress_event {
    unsigned int version;   /**< BCD_PROGRESS_EVENT_VERSION */
    const char *stage;      /**< what is being done (see above) */
    size_t done;            /**< steps of the stage done ... */
    size_t total;           /**< ... of total (0: not counted) */
    double elapsed_s;       /**< seconds since the analysis (or the worker run) started */
    const char *session_id; /**< the session concerned, or NULL */
    const char *job_id;     /**< the job concerned (worker), or NULL */
    int worker;             /**< worker thread (0 .. concurrency-1), -1 outside a worker */
    size_t jobs_done;       /**< worker: jobs completed by this bcd_worker_run() so far */
    size_t jobs_failed;     /**< worker: jobs failed for good so far */
    const char *message;    /**< human text (an error for "retry", "failed", "store_error"), or NULL */
} bcd_progress_event;
#define BCD_PROGRESS_EVENT_VERSION 1

/** Receives progress reports; user is the pointer given with the callback. */
typedef void (*bcd_progress_fn)(void *user, const bcd_progress_event *ev);

/**
 * Report the progress of long operations on svc (bcd_session_analyze()) to fn, called
 * synchronously in the thread of the operation. fn must be quick and must not call
 * into svc. fn NULL: no reports (the default).
 * @return BCD_OK, BCD_EINVAL (svc NULL).
 * @since 0.2
 */
BCD_API bcd_status bcd_service_set_progress(bcd_service *svc, bcd_progress_fn fn, void *user);

/** Attempts of an analysis job before it is failed for good. */
#define BCD_JOB_MAX_ATTEMPTS 3

/**
 * Queue the analysis of a session and return at once. A worker (bcd_worker_run(),
 * `bcd-cli worker`), in this process or another one on any machine sharing the store,
 * runs it later: exactly bcd_session_analyze() for the same user, session and model,
 * whose result is saved by the same atomic write.
 *
 * Checked now, as bcd_session_analyze() does: the session is the caller's
 * (BCD_ENOTFOUND), completed (BCD_ESTATE "session_not_completed") and has images of
 * at least BCD_MIN_ANGLES distinct angles (BCD_ESTATE "insufficient_angles").
 * Idempotent: while a job of the session is queued or running, that job is returned
 * ("created": false); once it finished (done or failed) a new job is queued.
 *
 * A job is tried up to BCD_JOB_MAX_ATTEMPTS times: a failure that may pass (I/O,
 * network, a worker that died: its lease expires) is retried with exponential backoff;
 * one that cannot (corrupt or missing image, session no longer completed) fails the job
 * at once. A failed job keeps its error (bcd_job_status()).
 *
 * Result: {"status": "processing", "job_id", "session_id", "job_status": "queued" |
 * "running", "created": bool, "created_at"}.
 * @param model_spec  as bcd_session_analyze(), kept with the job (a file path must exist
 *                    where the workers run); NULL: the worker's BCD_MODEL.
 * @return BCD_OK, BCD_EINVAL, BCD_ENOTFOUND, BCD_ESTATE, BCD_EUNSUPPORTED (the store
 *         has no job queue), BCD_EIO, BCD_ENET, BCD_ENOMEM.
 * @since 0.2
 */
BCD_API bcd_status bcd_session_analyze_async(char **out, bcd_service *svc, const char *user_id,
                                             const char *session_id, const char *model_spec);

/**
 * Status of one of the caller's analysis jobs. A job of another user is reported like a
 * missing one (BCD_ENOTFOUND "job_not_found").
 * Result: {"job_id", "session_id", "status": "queued" | "running" | "done" | "failed",
 * "attempts" (runs started so far), "max_attempts", "error" (message of the last
 * failure, null if none; a done job has none), "error_code", "model" (null: the
 * worker's default), "created_at", "updated_at", "started_at" (last start, null before
 * the first), "finished_at" (null until done or failed), "next_attempt_at" (queued: when
 * it may start, else null), "lease_expires_at" (running, else null),
 * "analysis_available" (done: bcd_analysis_get() has the result)}.
 * @param job_id  UUID text (BCD_EINVAL "invalid_job_id").
 * @return BCD_OK, BCD_EINVAL, BCD_ENOTFOUND, BCD_EUNSUPPORTED, BCD_EIO, BCD_ENET.
 * @since 0.2
 */
BCD_API bcd_status bcd_job_status(char **out, bcd_service *svc, const char *user_id, const char *job_id);

/**
 * bcd_job_status() of the newest job of one of the caller's sessions (BCD_ENOTFOUND
 * "job_not_found" if the session never had one, "session_not_found" as usual).
 * @since 0.2
 */
BCD_API bcd_status bcd_job_status_for_session(char **out, bcd_service *svc, const char *user_id,
                                              const char *session_id);

/** Options of bcd_worker_run(); start from BCD_WORKER_OPTIONS_INIT. @since 0.2 */
typedef struct bcd_worker_options {
    unsigned int version;           /**< BCD_WORKER_OPTIONS_VERSION */
    /** Jobs run at once, each in its own thread with its own service, store connection
     *  and copy of the ctx configuration (so errors never cross threads). 0 or 1: one,
     *  in the calling thread, on svc itself. At most 64. */
    unsigned int concurrency;
    /** Nonzero: return once no job is queued or running (jobs waiting for a retry and jobs
     *  of other workers count: their lease may still expire). 0: wait for jobs until stopped. */
    int drain;
    /** Lease of a claimed job; 0: 60. A worker that stops renewing it (crashed, hung,
     *  disconnected) loses the job to another worker this long after its last renewal. */
    unsigned int lease_seconds;
    /** Renewal interval of the lease while a job runs (in a helper thread per worker, on
     *  its own store connection); 0: a third of the lease. Must be below the lease. */
    unsigned int heartbeat_seconds;
    /** Borrowed; nonzero asks the worker to stop: it finishes the jobs it is running
     *  (their heartbeats go on), claims no more and returns BCD_OK. Checked between jobs
     *  and at least every 50 ms while idle; safe to set from a signal handler. NULL: none. */
    volatile sig_atomic_t *stop;
    /** Progress reports (stages in bcd_progress_event); calls are serialized (never two
     *  at once) but may come from any of the worker threads. NULL: none. */
    bcd_progress_fn progress;
    void *progress_user;
    /** Return after this many jobs were claimed (all threads together); 0: no limit. */
    unsigned int max_jobs;
    /** Longest sleep while no job is claimable; 0: 1000 ms. */
    unsigned int poll_ms;
    /** Backoff of a failed attempt k (1-based): retry_base_ms × 2^(k-1), at most one
     *  hour; 0: 5000 ms. */
    unsigned int retry_base_ms;
} bcd_worker_options;
#define BCD_WORKER_OPTIONS_VERSION 1
#define BCD_WORKER_OPTIONS_INIT { BCD_WORKER_OPTIONS_VERSION, 1, 0, 60, 0, NULL, NULL, NULL, 0, 0, 0 }

/**
 * Fill opts with the defaults of BCD_WORKER_OPTIONS_INIT (for callers that cannot use macros).
 * @return BCD_OK, BCD_EINVAL (opts NULL or unknown version).
 * @since 0.2
 */
BCD_API bcd_status bcd_worker_options_init(bcd_worker_options *opts, unsigned int version);

/**
 * Run analysis jobs from svc's store until stopped (opts->stop), drained (opts->drain)
 * or opts->max_jobs were taken. Any number of workers, in any number of processes and
 * machines sharing the store, share one queue: a claim takes a job under a lease in one
 * transaction, so no two workers run a job at once while its lease lasts.
 *
 * A job runs bcd_session_analyze() for its user, session and model. Only the lease
 * holder records the outcome: done, a retry with backoff, or failed with the error.
 * If a worker's lease expired and another worker took the job over, the late worker's
 * outcome is dropped ("lease_lost"); its analysis may have been saved (the save
 * replaces the stored analysis of the session atomically, so the session still has one
 * analysis) and the job is completed once, by the new holder.
 *
 * Threads: the worker threads use their own handles; svc and its ctx are used by the
 * calling thread only (with concurrency > 1 that thread supervises). A logger set on the
 * ctx is copied to the worker threads and must then be thread-safe.
 * @param[out] out  NULL, or a summary: {"jobs_done", "jobs_failed", "jobs_retried",
 *                  "leases_lost", "elapsed_s", "stopped": bool, "concurrency"}; caller
 *                  frees with bcd_free().
 * @param opts      NULL: BCD_WORKER_OPTIONS_INIT.
 * @return BCD_OK (stopped, drained or max_jobs reached; failed jobs are not failures of
 *         the worker), BCD_EINVAL (options), BCD_EUNSUPPORTED (the store has no job queue),
 *         or the store's failure when the queue stays unreachable (BCD_EIO, BCD_ENET,
 *         BCD_EAUTH) after retries; details in bcd_service_last_error().
 * @since 0.2
 */
BCD_API bcd_status bcd_worker_run(char **out, bcd_service *svc, const bcd_worker_options *opts);

/* ---- Health (@since 0.2) ---------------------------------------------------------------- */

/**
 * Check what the operations depend on, for the configuration of ctx (the seeds' GET /
 * and GET /health). Needs no service handle: a store that cannot be opened is a result,
 * not a failure of the call. Each check runs on its own:
 *  - "store" (required): the store of BCD_STORE opens (the local store is created or its
 *    schema migrated to the current version as by bcd_service_open(); a damaged, foreign
 *    or newer database fails), answers a read of its sessions table (a Supabase project
 *    with its schema, the key accepted) and, for the local store, its blob folder takes a
 *    new file (created and removed again). Extra fields: "backend", and for the local
 *    store "data_dir" and "schema_version".
 *  - "model" (required): the embedder of BCD_MODEL opens (a TorchScript file loads); extra
 *    fields "model", "name", "dim".
 *  - "supabase" (required when SUPABASE_URL is set, else "not_configured"): the project's
 *    public key set (GET SUPABASE_URL/auth/v1/.well-known/jwks.json, one attempt, no key
 *    sent) answers HTTP 200; extra field "http_status".
 * Result: {"status": "ok" or "down", "ok": bool (every required check is ok), "version",
 * "version_number", "checks": {"store", "model", "supabase"}}, each check {"status":
 * "ok", "down" or "not_configured", "required": bool, ..., "error": {"status" (as
 * bcd_status_name()), "code", "message"} when down}. Messages never contain secrets.
 * @param[out] out  caller frees with bcd_free(); untouched on failure.
 * @param ctx       configuration; borrowed for the call.
 * @return BCD_OK (whatever the checks found: read "ok"), BCD_EINVAL, BCD_ENOMEM. Detail on ctx.
 * Threads: one thread per ctx at a time.
 * @since 0.2
 */
BCD_API bcd_status bcd_health(char **out, bcd_ctx *ctx);

BCD_END_DECLS

#endif
