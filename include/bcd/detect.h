#ifndef BCD_DETECT_H
#define BCD_DETECT_H
/**
 * @file bcd/detect.h
 * Change detection between two photos of the same body angle (the previous check and
 * the current one): alignment, photometric matching, a local change map with changed
 * regions, a heatmap overlay, and a quality gate for each photo.
 *
 * What bcd_detect_compare() does, in order. Both photos are first reduced (area
 * averaging) to the same working size, whose longer side is
 * bcd_detect_options.work_size (512 px by default, never enlarged); quality is measured
 * there, everything else at half that size (256 px), where the smallest change of
 * interest (0.5 % of the frame) is still ~17 px across and noise and JPEG artefacts
 * are averaged away.
 *
 *  1. Quality of both photos: blur (variance of the Laplacian of the grey image),
 *     exposure clipping (fraction of pixels with a channel >= 253, or all <= 2) and the
 *     fraction of the frame taken by the subject (skin-coloured pixels; see
 *     lib/detect/quality.c for the colour box).
 *  2. Alignment: a similarity transform (translation, rotation, scale) that maps the
 *     previous photo onto the current one. The identity, refined on the two coarsest
 *     levels, is kept when it already fits well (fit score >= 0.95 at ~64 px: photos
 *     of the same pose, the usual case); otherwise an exhaustive normalized
 *     cross-correlation search over translation (±25 % of the frame), rotation
 *     (±8°) and scale (±7 %) on a ~32 px image finds it. Either is then refined
 *     coarse-to-fine by Levenberg-Marquardt (Lucas-Kanade, Huber weights) with a
 *     global gain and offset, on pyramids of log luma plus the main chroma axis (so
 *     exposure, gamma and white balance do not bias it, and a silhouette that differs
 *     from the background only in colour still counts). Clipped pixels give censored
 *     residuals. Fit measures:
 *     the normalized cross-correlation of the overlap after warping, on band-passed
 *     images and leaving out the 10 % worst-matching pixels (so that a real change
 *     does not count as misfit; unrelated photos score ~0.1–0.3, aligned ones > 0.9),
 *     and the overlap fraction.
 *  3. Photometric matching of the warped previous photo to the current one on the
 *     overlap: per colour channel, log(current) ~ gain * log(previous) + offset plus a
 *     linear ramp across the frame, fitted by iteratively reweighted least squares
 *     (Tukey weights, so a changed area does not pull the fit). This absorbs
 *     exposure, gamma, white balance and a gentle lighting gradient. A channel does
 *     not count where it is clipped in either photo.
 *  4. Change map: per pixel, the colour difference (log luma and two log chroma axes)
 *     between the two photos, taken as the smallest over a 3×3 neighbourhood so that
 *     sub-pixel misalignment at edges does not count, plus the difference of local
 *     contrast (texture); only the part above a noise floor (3× the pair's median
 *     difference, at least 0.05 in log units) is kept. Connected areas of it become
 *     changed regions, scored by their "evidence" (area in per mille of the frame
 *     times the mean excess contrast); local_change is a logistic of the strongest
 *     region's evidence, 0.5 at evidence 0.25 (e.g. a spot of 0.25 % of the frame
 *     that is 10 % darker than the noise floor).
 *
 * Ownership: results are made by the library and freed with bcd_detect_result_free();
 * strings handed out are freed with bcd_free(); pointers returned by accessors are
 * borrowed from the result and valid until it is freed.
 * Threads: one thread per ctx at a time; a result never changes once made and may be
 * read from any thread. Nothing here writes to stdout or stderr.
 * @since 0.2
 */
#include "common.h"
#include "ctx.h"
#include "image.h"

BCD_BEGIN_DECLS

/** The outcome of one comparison (or of one photo's quality check). Opaque. */
typedef struct bcd_detect_result bcd_detect_result;

/** Default longer side of the working images, in pixels. */
#define BCD_DETECT_DEFAULT_WORK_SIZE 512u
/** Default number of change-map cells along the longer side of the frame. */
#define BCD_DETECT_DEFAULT_GRID 16u
/** Default longer side of heatmap overlays, in pixels. */
#define BCD_DETECT_DEFAULT_HEATMAP_SIDE 1024u
/**
 * Default blur threshold: a photo is "blurred" when the variance of the 3×3 Laplacian
 * of its grey image (0..255), reduced to the working size, is below this. Sharp
 * photos of skin measure ~5–1000 at 512 px (very smooth skin before a plain wall, as
 * in the bundled synthetic example, measures 5–9); a Gaussian blur of sigma 1.5 px at
 * that size (sigma ~12 px on a 3024×4032 photo) brings them under ~3. The measure
 * depends on the working size: set the threshold with the size.
 */
#define BCD_DETECT_DEFAULT_BLUR_THRESHOLD 3.5
/** Default clipping threshold: "clipped" when more than this fraction of pixels is clipped. */
#define BCD_DETECT_DEFAULT_CLIP_THRESHOLD 0.15
/** Default framing threshold: "subject_too_small" when the subject covers less than this fraction. */
#define BCD_DETECT_DEFAULT_SUBJECT_THRESHOLD 0.20
/** Default alignment threshold on the normalized cross-correlation of the overlap. */
#define BCD_DETECT_DEFAULT_MIN_ALIGNMENT_SCORE 0.60
/** Default alignment threshold on the fraction of the current frame the previous photo covers. */
#define BCD_DETECT_DEFAULT_MIN_OVERLAP 0.50

/**
 * Options of bcd_detect_compare() and bcd_detect_quality(). Zero fields mean "library
 * default" (the BCD_DETECT_DEFAULT_* values).
 */
typedef struct bcd_detect_options {
    unsigned int version;          /**< BCD_DETECT_OPTIONS_VERSION; always first */
    unsigned int work_size;        /**< longer side of the working images, 128..2048; 0: 512 */
    unsigned int grid;             /**< change-map cells along the longer side, 4..64; 0: 16 */
    unsigned int heatmap_max_side; /**< longer side of heatmap overlays, 64..8192; 0: 1024 */
    double blur_threshold;         /**< see BCD_DETECT_DEFAULT_BLUR_THRESHOLD; 0: default */
    double clip_threshold;         /**< fraction in (0,1]; 0: default */
    double subject_threshold;      /**< fraction in (0,1]; 0: default */
    double min_alignment_score;    /**< in (0,1]; 0: default */
    double min_overlap;            /**< in (0,1]; 0: default */
} bcd_detect_options;

#define BCD_DETECT_OPTIONS_VERSION 1
#define BCD_DETECT_OPTIONS_INIT { BCD_DETECT_OPTIONS_VERSION, 0, 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0 }

/**
 * Fill opts with the defaults of the given version (for callers that cannot use
 * BCD_DETECT_OPTIONS_INIT).
 * @return BCD_OK, BCD_EINVAL (NULL or unknown version).
 */
BCD_API bcd_status bcd_detect_options_init(bcd_detect_options *opts, unsigned int version);

/** Quality and alignment flags of a result (bcd_detect_result_flags()). */
#define BCD_DETECT_BLURRED 0x01u                /**< current photo blurred */
#define BCD_DETECT_CLIPPED 0x02u                /**< current photo over- or under-exposed */
#define BCD_DETECT_SUBJECT_TOO_SMALL 0x04u      /**< subject too small in the current frame */
#define BCD_DETECT_MISALIGNED 0x08u             /**< the two photos could not be aligned */
#define BCD_DETECT_PREVIOUS_BLURRED 0x10u       /**< previous photo blurred */
#define BCD_DETECT_PREVIOUS_CLIPPED 0x20u       /**< previous photo over- or under-exposed */
#define BCD_DETECT_PREVIOUS_SUBJECT_TOO_SMALL 0x40u /**< subject too small in the previous frame */

/** Numeric values of a result (bcd_detect_result_value()). Appended only. */
typedef enum bcd_detect_value {
    BCD_DETECT_LOCAL_CHANGE = 0,     /**< [0,1]; NaN when not compared or misaligned */
    BCD_DETECT_BLUR_VARIANCE = 1,    /**< current photo, variance of the Laplacian */
    BCD_DETECT_CLIPPED_FRACTION = 2, /**< current photo, [0,1] */
    BCD_DETECT_SUBJECT_FRACTION = 3, /**< current photo, [0,1] */
    BCD_DETECT_ALIGN_SCORE = 4,      /**< normalized cross-correlation of the overlap, [-1,1] */
    BCD_DETECT_ALIGN_OVERLAP = 5,    /**< fraction of the current frame covered, [0,1] */
    BCD_DETECT_ALIGN_DX = 6,         /**< where the previous photo's centre lands, relative to */
    BCD_DETECT_ALIGN_DY = 7,         /**<  the current photo's centre, in current pixels */
    BCD_DETECT_ALIGN_ROTATION = 8,   /**< rotation of the previous content in the current frame,
                                          degrees, counter-clockwise as seen on screen */
    BCD_DETECT_ALIGN_SCALE = 9,      /**< apparent size of the previous content in the current
                                          frame, both frames normalized by their longer side */
    BCD_DETECT_PREVIOUS_BLUR_VARIANCE = 10,
    BCD_DETECT_PREVIOUS_CLIPPED_FRACTION = 11,
    BCD_DETECT_PREVIOUS_SUBJECT_FRACTION = 12,
    BCD_DETECT_CHANGE_EVIDENCE = 13, /**< raw evidence behind local_change (>= 0; NaN as above) */
    BCD_DETECT_NOISE_LEVEL = 14      /**< the pair's median per-pixel difference after matching,
                                          log units (NaN as above); high means a poor match */
} bcd_detect_value;

/** A changed region: a box in the current photo's pixels and its strength in [0,1]. */
typedef struct bcd_detect_region {
    uint32_t x;      /**< left column */
    uint32_t y;      /**< top row */
    uint32_t width;
    uint32_t height;
    double score;    /**< same scale as local_change */
} bcd_detect_region;

/**
 * Compare two photos of the same angle: align previous onto current, match exposure
 * and white balance, and map where the skin changed (see the file comment).
 * A pair that cannot be aligned is not an error: the result has BCD_DETECT_MISALIGNED
 * set, local_change NaN (JSON null) and no regions.
 * @param[out] out   the result; caller frees with bcd_detect_result_free(). Untouched
 *                   on failure.
 * @param ctx        receives the error detail on failure.
 * @param current    the newer photo (RGB, channels == 3); borrowed for the call only.
 * @param previous   the older photo of the same angle (any resolution); borrowed.
 * @param opts       NULL for defaults; borrowed.
 * @return BCD_OK, BCD_EINVAL (NULL, not RGB, under 32 px on a side or so elongated that
 *         the working image is, unknown options version or values out of range),
 *         BCD_ENOMEM.
 * Threads: one thread per ctx at a time. Cost (one core): ~40–60 ms for a pair of
 * 1–3 MP photos, ~80 ms for a 12 MP pair, of which ~35 ms reduce the photos to the
 * working size (decoding at a reduced scale saves most of that).
 */
BCD_API bcd_status bcd_detect_compare(bcd_detect_result **out, bcd_ctx *ctx, const bcd_image *current,
                                      const bcd_image *previous, const bcd_detect_options *opts);

/**
 * Quality gate of one photo: blur, clipping and framing (the current-photo fields of
 * a result; nothing else is set: local_change is NaN, no alignment, no regions).
 * Any size is accepted: a photo too small to judge (under 32 px on a side, where
 * bcd_detect_compare() refuses) measures no detail and comes out flagged.
 * @param[out] out  caller frees with bcd_detect_result_free(); untouched on failure.
 * @return BCD_OK, BCD_EINVAL, BCD_ENOMEM.
 */
BCD_API bcd_status bcd_detect_quality(bcd_detect_result **out, bcd_ctx *ctx, const bcd_image *img,
                                      const bcd_detect_options *opts);

/** Free a result. NULL: no-op. */
BCD_API void bcd_detect_result_free(bcd_detect_result *r);

/** Bitwise OR of the BCD_DETECT_* flags; 0 for NULL. */
BCD_API unsigned int bcd_detect_result_flags(const bcd_detect_result *r);

/** One numeric value of a result; NaN for NULL, an unknown key or a value not computed. */
BCD_API double bcd_detect_result_value(const bcd_detect_result *r, bcd_detect_value key);

/**
 * The changed regions, strongest first.
 * @param[out] count  number of regions (0 for NULL or none).
 * @return borrowed array of count regions, valid until the result is freed; NULL if none.
 */
BCD_API const bcd_detect_region *bcd_detect_result_regions(const bcd_detect_result *r, size_t *count);

/**
 * The alignment as an affine matrix m mapping previous-photo pixel coordinates (x, y)
 * to current-photo pixel coordinates: x' = m[0] x + m[1] y + m[2], y' = m[3] x + m[4] y + m[5]
 * (pixel centres at integer coordinates).
 * @return BCD_OK, BCD_EINVAL (NULL, or a quality-only result without alignment).
 */
BCD_API bcd_status bcd_detect_result_matrix(const bcd_detect_result *r, double m[6]);

/**
 * The change map on a grid of cells tiling the current frame: cols cells across,
 * rows down (cols = grid when the frame is landscape, else rows = grid). Cell (c, r)
 * covers columns [c*W/cols, (c+1)*W/cols) and rows [r*H/rows, (r+1)*H/rows) of the
 * current photo. Values in [0,1] (0: nothing beyond noise); -1 where less than half
 * the cell is covered by the previous photo.
 * @return borrowed array of cols*rows floats, row-major, valid until the result is
 *         freed; NULL (and 0, 0) for a quality-only or misaligned result.
 */
BCD_API const float *bcd_detect_result_cells(const bcd_detect_result *r, uint32_t *cols, uint32_t *rows);

/**
 * The result as a JSON object:
 * {"local_change": number|null, "change_evidence": number|null, "noise_level": number|null,
 *  "changed_regions": [{"x","y","width","height","score"}],
 *  "quality": {"blur_variance","blurred","clipped_fraction","clipped","subject_fraction",
 *              "subject_too_small","aligned","alignment_score"},
 *  "previous_quality": {"blur_variance","blurred","clipped_fraction","clipped",
 *                       "subject_fraction","subject_too_small"},
 *  "alignment": {"dx","dy","rotation_deg","scale","score","overlap","matrix":[6]},
 *  "grid": {"cols","rows","cells":[...]}}
 * A quality-only result has only "quality" (without the alignment fields).
 * @param[out] out  caller frees with bcd_free(); untouched on failure.
 * @return BCD_OK, BCD_EINVAL, BCD_ENOMEM.
 */
BCD_API bcd_status bcd_detect_result_json(char **out, const bcd_detect_result *r);

/**
 * Compare the feature maps of two photos of the same angle cell by cell: the output of
 * a model's last convolutional stage (bcd_embedder_embed_maps(); c channels on an h x w
 * grid of cells), made by the same model. For each cell of the current map: the cosine
 * distance (1 - cos, in [0, 2]; post-ReLU features give [0, 1]) of its c-vector to the
 * previous map's at the same place of the body, the previous map sampled bilinearly
 * between its cells where the alignment m puts the cell.
 * @param[out] dist  h * w floats, row-major; NaN where the cell falls outside the
 *                   previous map (more than half a cell beyond its outer cells).
 * @param cur, prev  c * h * w floats each, channel after channel, each row-major.
 * @param m          affine map of current cell coordinates (x across, y down, cell
 *                   centres at integers) to previous ones: px = m[0] x + m[1] y + m[2],
 *                   py = m[3] x + m[4] y + m[5]; NULL: the same cells.
 * @return the number of cells compared (not NaN); 0 for NULL dist or an empty map.
 * Threads: any thread (pure function).
 */
BCD_API size_t bcd_detect_compare_maps(float *dist, const float *cur, const float *prev, size_t c, size_t h,
                                       size_t w, const double m[6]);

/**
 * Render the heatmap overlay: the current photo reduced so that its longer side is
 * at most max_side, blended with a colour map of the change map (blue: noise level,
 * through green and yellow to red: strong change), changed regions outlined in white
 * and the area the previous photo does not cover dimmed.
 * @param[out] out  new RGB image; caller frees with bcd_image_free(). Untouched on failure.
 * @param r         a comparison result (not quality-only); borrowed.
 * @param current   the same current photo that was passed to bcd_detect_compare().
 * @param max_side  0: the result's heatmap_max_side option.
 * @return BCD_OK, BCD_EINVAL (size differs from the compared photo, quality-only
 *         result), BCD_ENOMEM.
 */
BCD_API bcd_status bcd_detect_render_heatmap(bcd_image **out, bcd_ctx *ctx, const bcd_detect_result *r,
                                             const bcd_image *current, unsigned int max_side);

/**
 * bcd_detect_render_heatmap() with the result's heatmap_max_side, written as PNG to path
 * (through a temporary file renamed into place).
 * @return BCD_OK, BCD_EINVAL, BCD_EIO, BCD_ENOMEM.
 */
BCD_API bcd_status bcd_detect_write_heatmap(bcd_ctx *ctx, const bcd_detect_result *r, const bcd_image *current,
                                            const char *path);

/**
 * Combine the per-angle results of one session (current check against the previous
 * one) into a change probability:
 *
 *   e_i = w_i * logit(local_change_i), w_i = 1 for a good pair, 0.5 when any quality
 *         flag is set on either photo; misaligned or missing angles are skipped;
 *   m1 >= m2 the two largest e_i (m2 = m1 when only one angle is usable);
 *   change_probability = 1 / (1 + exp(-(B0 + B1 * m1 + B2 * m2)))
 *
 * with B0 = -0.33, B1 = 1.145, B2 = 0, fitted by logistic regression on the synthetic
 * benchmark (tests/bench/detect_bench.py --calibrate; see lib/detect/combine.c).
 * changed is change_probability >= 0.5: the strongest good angle has local_change
 * >= 0.57; 0 % false positives and 100 % sensitivity on the benchmark's sessions.
 * @param[out] probability  in [0,1]; untouched on failure.
 * @param[out] changed      1 or 0; may be NULL.
 * @param results           n results, NULL entries allowed (missing angles); borrowed.
 * @return BCD_OK, BCD_EINVAL (NULL arrays), BCD_ENOMEM (over 16 results), BCD_ESTATE (no usable angle: all missing,
 *         misaligned or quality-only).
 */
BCD_API bcd_status bcd_detect_combine(double *probability, int *changed, const bcd_detect_result *const *results,
                                      size_t n);

BCD_END_DECLS

#endif
