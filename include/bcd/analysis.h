#ifndef BCD_ANALYSIS_H
#define BCD_ANALYSIS_H
/**
 * @file bcd/analysis.h
 * Vector comparison primitives and trend labels.
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
 * @param ctx       receives the error detail; may be NULL.
 * @return BCD_OK, BCD_EINVAL (na != nb, NULL, length 0; code "dimension_mismatch"),
 *         BCD_EDOMAIN (a zero vector: "zero_vector"; NaN or infinity: "not_finite").
 */
BCD_API bcd_status bcd_vector_cosine_distance(double *out, bcd_ctx *ctx, const float *a, size_t na,
                                              const float *b, size_t nb);

/**
 * Element-wise mean of n vectors of dim floats stored one after another.
 * @param out  dim floats, written by the call.
 * @return BCD_OK, BCD_EINVAL (n or dim 0, NULL), BCD_EDOMAIN (NaN or infinity in input).
 */
BCD_API bcd_status bcd_vector_mean(float *out, bcd_ctx *ctx, const float *vectors, size_t n, size_t dim);

/**
 * Trend label of a distance: "stable", "mild_variation" or "significant_shift";
 * static. NULL for NaN or a negative distance.
 */
BCD_API const char *bcd_trend_label(double distance);

/**
 * Parse a vector from JSON: a plain array of numbers, an object with "vector" or
 * "embedding", or the output of `bcd-cli embed` (its first embedding).
 * @param[out] out  dim floats; caller frees with bcd_free().
 * @return BCD_OK, BCD_EFORMAT, BCD_EINVAL, BCD_ENOMEM.
 */
BCD_API bcd_status bcd_vector_from_json(float **out, size_t *dim, bcd_ctx *ctx, const char *json);

BCD_END_DECLS

#endif
