#ifndef BCD_REPORT_H
#define BCD_REPORT_H
/**
 * @file bcd/report.h
 * Reports and history: what a user's analyzed checks say, as JSON documents and as one
 * self-contained HTML file. Everything is read from stored analyses; nothing is
 * recomputed except the thumbnails (and, where the analysis stored none, the change
 * maps) of the HTML report.
 *
 * Terms used below:
 *  - analyzed session: a session with a stored analysis (bcd_session_analyze()); the
 *    history holds every analyzed session of the user, oldest first (created_at order);
 *  - previous check: the analyzed session just before a session in that order;
 *  - scored session: an analyzed session that had a baseline (baseline_sessions > 0); the
 *    first analyzed session of a user (and the first one after a change of model) only
 *    establishes the baseline, its scores are 0 by construction and take no part in the
 *    trend.
 *
 * Change evidence (change_probability, changed, local_change, changed regions, quality
 * flags, heatmaps) comes from the detect layer through the stored analysis; it appears
 * in the documents only where the analysis stored it, under the same names.
 *
 * Results are JSON documents (UTF-8); `*out` receives a new string on success, which the
 * caller frees with bcd_free(); `*out` is untouched on failure. Errors are recorded on
 * the service (bcd_service_last_error()), with the same validation and "not found"
 * rules as the operations of bcd/service.h.
 *
 * Progress: the callback of bcd_service_set_progress() receives these stages
 * (bcd_progress_event, worker -1): "analyses" (stored analyses read, done of total
 * analyzed sessions; all three operations), "photos" (angles whose thumbnails and change
 * map are ready, done of total; HTML only), "write" (0 then 1 of 1; HTML only).
 * Threads: as the service handle (one thread at a time).
 * @since 0.2
 */
#include "common.h"
#include "service.h"

BCD_BEGIN_DECLS

/** Leave the photos out of the HTML report (a report to share without pictures). */
#define BCD_REPORT_NO_PHOTOS 0x01u
/** Do not compute change maps where the analysis stored none. */
#define BCD_REPORT_NO_HEATMAPS 0x02u

/** Options of bcd_report_html_ext(). Zero fields mean "library default". */
typedef struct bcd_report_options {
    unsigned int version;          /**< BCD_REPORT_OPTIONS_VERSION; always first */
    unsigned int flags;            /**< BCD_REPORT_* */
    unsigned int thumbnail_size;   /**< longer side of thumbnails, 64..1024 px; 0: 320 */
} bcd_report_options;

#define BCD_REPORT_OPTIONS_VERSION 1
#define BCD_REPORT_OPTIONS_INIT { BCD_REPORT_OPTIONS_VERSION, 0, 0 }

/**
 * Fill opts with the defaults of the given version (for callers that cannot use the macro).
 * @return BCD_OK, BCD_EINVAL (NULL or unknown version).
 */
BCD_API bcd_status bcd_report_options_init(bcd_report_options *opts, unsigned int version);

/**
 * The user's history: every analyzed session, oldest first, and the trend over all of them.
 *
 * Result: {"user_id", "count", "sessions": [{"session_id", "created_at", "days_since_first"
 * (days from the first analyzed session, from created_at), "overall_change_score",
 * "overall_trend" (label of the score, null for a baseline session), "confidence",
 * "baseline_sessions", "is_baseline", "model", "previous_session_id",
 * "delta_from_previous" (as bcd_session_compare()'s overall_delta against the previous
 * check: cosine distance of the session embeddings, or the change of the mean score when
 * embeddings are missing or of different models; null for the first), "comparison_method",
 * "flagged", "flag_reasons", "flagged_angles", ["change_probability", "changed" where
 * stored], "per_angle": [{"angle_type", "change_score", "baseline_sessions",
 * "previous_score", "delta", "embedding_distance", ["local_change", "changed",
 * "changed_regions_count" where stored]}]}],
 * "trend": {"method": "theil_sen", "x": "check_index", "y": "overall_change_score",
 * "slope", "intercept", "level", "latest_overall_change_score", "label",
 * "overall_trend" (= label), "label_of": "level", "direction", "n_sessions", "n_scored",
 * "thresholds", "flagged_sessions": [{"session_id", "created_at", "index",
 * "flag_reasons", "flagged_angles"}], "per_angle": [{"angle_type", "n_points", "slope",
 * "intercept", "level", "latest", "label", "direction"}]}}.
 *
 * The trend: a Theil–Sen fit (median of pairwise slopes; robust to a single outlying
 * check) of the overall_change_score of the scored sessions against their index among
 * them (0, 1, 2, ...), so "slope" is the change of the score per check (the spacing in
 * time is not used: checks taken the same day still count). Series longer than 2048
 * checks are thinned evenly to 2048 points. "level" is the fitted value at the latest
 * scored check (at least 0; for a single scored check, its score), and "label" applies
 * the seed's thresholds to it: "stable" < 0.1 <= "mild_variation" < 0.25 <=
 * "significant_shift"; "insufficient_data" without any scored session. "direction":
 * "increasing" / "decreasing" when |slope| >= 0.01 per check, else "flat";
 * "undetermined" with fewer than two scored sessions. The same per angle, over the
 * sessions where the angle was scored.
 *
 * A session is flagged ("flag_reasons") when the stored evidence says it changed
 * ("change_detected": changed true for the session or an angle), its overall score is
 * 0.25 or more ("overall_significant_shift") or an angle's score is 0.25 or more
 * ("angle_significant_shift"); baseline sessions are never flagged by score.
 *
 * The stored analyses are read eight at a time; on Supabase the eight requests run in
 * parallel (one round trip for them), so a long history costs a round trip per eight
 * checks rather than one per check.
 * @return BCD_OK, BCD_EINVAL, BCD_EIO, BCD_ENOMEM. A user without analyzed sessions gets
 *         an empty history, not an error.
 */
BCD_API bcd_status bcd_history(char **out, bcd_service *svc, const char *user_id);

/**
 * The report of one analyzed session (the seed's generate-report, made real).
 *
 * Result: {"success": true, "data": {"session_id", "overall_change_score", "created_at",
 * "per_angle": [{"angle_type", "change_score", "summary" (stored), "trend",
 * "baseline_sessions", "image_count", "previous_score", "delta", "embedding_distance"
 * (against the previous check's photo of the angle), "trend_since_previous",
 * "quality": {"score", "sharpness", "blur_variance", "clipped_fraction", "blurred",
 * "poorly_exposed", ["subject_too_small", "misaligned" where stored]},
 * ["local_change", "changed", "changed_regions" where stored]}],
 * "summary", "confidence", "confidence_note", "confidence_factors", "overall_trend",
 * "baseline_sessions", "model", "is_first_session", "check_number",
 * "previous_session_id", "previous_created_at", "comparison" ({"previous_session_id",
 * "overall_delta", "comparison_method", "stability_index", "overall_trend"}, null for the
 * first analyzed session), ["change_probability", "changed" where stored], "flagged",
 * "flag_reasons", "flagged_angles", "quality_warnings": [text], "next_steps": [text],
 * "history": the bcd_history() document}}.
 *
 * "summary" is written from these numbers: which angles changed and how much against
 * the baseline and against the previous check, the detect evidence where stored, photo
 * quality warnings (sharpness below 0.35: blurred; more than 10 % of the pixels
 * clipped: poorly exposed; the detect flags where stored), the confidence and what
 * limits it, the history trend, and what the person might do next. It is not a
 * diagnosis and says so where a change is flagged.
 * @return BCD_OK, BCD_EINVAL, BCD_ENOTFOUND ("session_not_found"; "analysis_not_found"
 *         when the session was never analyzed), BCD_EIO, BCD_ENOMEM.
 */
BCD_API bcd_status bcd_report(char **out_json, bcd_service *svc, const char *user_id, const char *session_id);

/**
 * Write the report of one analyzed session as ONE self-contained HTML file: the summary,
 * a table of the angles, per-angle thumbnails of the previous check and this check side
 * by side (with a change map: the one the analysis stored, else computed now with
 * bcd_detect_compare() on the two photos reduced as analyze compares them), charts as
 * inline SVG (each angle's change score over all checks; the overall score with its
 * Theil–Sen trend line) and a table of all analyzed checks.
 *
 * The file makes no network request and names no outside resource: no script at all,
 * styles inline, photos as data: URIs (JPEG thumbnails, longer side thumbnail_size),
 * and a Content-Security-Policy that forbids loading anything. It holds no secret, no
 * signed URL and no storage path. Text from stored data is HTML-escaped. It prints
 * (print styles) and reads on a phone (viewport, fluid layout). Numbers carry their exact
 * value in data-value attributes.
 *
 * Written atomically: a temporary file in the same folder, renamed over path when
 * complete; the file is created with mode 0600 (it contains photos of a person). A
 * failure leaves an earlier file at path as it was.
 * Thumbnails up to BCD_DETECT_DEFAULT_WORK_SIZE px are made from the reduced copies of
 * the photos that bcd_session_analyze() stores (a few milliseconds each instead of
 * decoding a phone photo again); larger ones, and photos without a stored copy, from the
 * photo itself. A photo that cannot be read or decoded (and has no stored copy) is shown
 * as a placeholder, not an error.
 * @param path  the file to write; its folder must exist.
 * @return BCD_OK, BCD_EINVAL, BCD_ENOTFOUND (as bcd_report()), BCD_EIO
 *         ("file_write_failed"), BCD_ENOMEM.
 */
BCD_API bcd_status bcd_report_html(bcd_service *svc, const char *user_id, const char *session_id,
                                   const char *path);
/** bcd_report_html() with options (thumbnail size, no photos, no computed change maps).
 *  opts NULL: defaults. BCD_EINVAL for an unknown version or flag, or thumbnail_size out
 *  of range. */
BCD_API bcd_status bcd_report_html_ext(bcd_service *svc, const char *user_id, const char *session_id,
                                       const char *path, const bcd_report_options *opts);

BCD_END_DECLS

#endif
