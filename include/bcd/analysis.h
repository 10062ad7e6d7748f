#ifndef BCD_ANALYSIS_H
#define BCD_ANALYSIS_H
/**
 * @file bcd/analysis.h
 * Vector comparison primitives and trend labels.
 *
 * Threads: these functions keep no state. With ctx NULL they may run in any thread;
 * with a ctx, one thread per ctx at a time (the error detail is written there).
 */
#include "common.h"
#include "ctx.h"

BCD_BEGIN_DECLS

/** Trend thresholds of the seeds: stable < 0.1 <= mild_variation < 0.25 <= significant_shift. */
#define BCD_TREND_MILD 0.1
#define BCD_TREND_SIGNIFICANT 0.25

/**
 * Cosine distance 1 − a·b / (|a||b|), computed in double, in [0, 2].
 * @param[out] out  the distance; untouched on failure.
 * @param ctx       receives the error detail; may be NULL (status only).
 * @param a, b      na and nb floats; borrowed for the call.
 * @return BCD_OK, BCD_EINVAL (na != nb, NULL, length 0; code "dimension_mismatch"),
 *         BCD_EDOMAIN (a zero vector: "zero_vector"; NaN or infinity: "not_finite").
 * Threads: any thread with ctx NULL; else one thread per ctx at a time.
 */
BCD_API bcd_status bcd_vector_cosine_distance(double *out, bcd_ctx *ctx, const float *a, size_t na,
                                              const float *b, size_t nb);

/**
 * Element-wise mean of n vectors of dim floats stored one after another.
 * @param out      dim floats owned by the caller, written by the call.
 * @param ctx      receives the error detail; may be NULL (status only).
 * @param vectors  n * dim floats; borrowed for the call.
 * @return BCD_OK, BCD_EINVAL (n or dim 0, NULL), BCD_EDOMAIN (NaN or infinity in input).
 * Threads: any thread with ctx NULL; else one thread per ctx at a time.
 */
BCD_API bcd_status bcd_vector_mean(float *out, bcd_ctx *ctx, const float *vectors, size_t n, size_t dim);

/**
 * Trend label of a distance: "stable" (< BCD_TREND_MILD), "mild_variation" (<
 * BCD_TREND_SIGNIFICANT) or "significant_shift".
 * @return static, never freed; NULL for NaN or a negative distance.
 * Threads: any thread.
 */
BCD_API const char *bcd_trend_label(double distance);

/**
 * Parse a vector from JSON: a plain array of numbers, an object with "vector" or
 * "embedding", or the output of `bcd-cli embed` (its first embedding).
 * @param[out] out  dim floats; caller frees with bcd_free(). Untouched on failure.
 * @param[out] dim  number of floats; untouched on failure.
 * @param ctx       receives the error detail; may be NULL (status only).
 * @param json      NUL-terminated text; borrowed for the call.
 * @return BCD_OK, BCD_EFORMAT ("invalid_json", "invalid_vector", "empty_vector", ...),
 *         BCD_EINVAL (NULL argument), BCD_ENOMEM.
 * Threads: any thread with ctx NULL; else one thread per ctx at a time.
 */
BCD_API bcd_status bcd_vector_from_json(float **out, size_t *dim, bcd_ctx *ctx, const char *json);

BCD_END_DECLS

#endif
