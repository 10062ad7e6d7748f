#ifndef BCD_LESION_H
#define BCD_LESION_H
/**
 * @file bcd/lesion.h
 * Lesions: the spots on the skin (moles, freckles, papules) of a photo, found at full
 * resolution, matched to the previous check's photo of the same angle, and what changed
 * on each of them.
 *
 * What bcd_lesion_compare() does, in order (lib/detect/spots.c, register.c, lesion.c):
 *  1. Spots in both photos, on a copy reduced to a longer side of 2400 px (a 1.5 mm spot
 *     is ~6 px across when the photo spans 60 cm): visible skin found by colour and
 *     smoothness in 8 px blocks (background, hair, clothing, clipped and deeply shadowed
 *     skin left out); a spot is a compact area darker in green than the local skin level
 *     (melanin and blood both absorb green; light and shadow scale every channel alike),
 *     kept when its contrast stands out of the skin's own texture; thin hairs and shadow
 *     edges are long and thin and are not spots, nor is a faint satellite beside a dark
 *     spot. Each is measured: centre, area, axes, longest diameter, mean colour and the
 *     surrounding skin's in CIELAB, colour spread, border irregularity, asymmetry.
 *  2. Registration: the strongest spots form triangles with their neighbours; triangles of
 *     the same shape in the two photos propose a similarity (scale 0.4-2.5, turned at
 *     most 45 degrees; opts->prior is one more proposal), scored by the spots it brings
 *     onto spots around the triangle; the best proposals of each area of the photo are
 *     checked by correlating the two photos' spot maps (and darkness maps) through them.
 *     Whole-photo proposals also come from votes: each pair of alike strong spots votes
 *     for the shift of every turn (up to 16 degrees) and scale (0.75-1.34) of a grid.
 *     The best-correlating proposal grows area by area: each neighbouring area's own
 *     similarity, predicted by the mapping so far, is adjusted for the best correlation,
 *     and an area that correlates adds the matches of its spots; a homography and a smooth
 *     field of the residuals (Gaussian kernel regression) are refitted as areas join. It
 *     and every whole-photo proposal also grow by closest spots alone (matches within a
 *     shrinking tolerance, the homography and the field refitted). The registration that
 *     matches the largest share of the strongest spots of both photos wins; under 30 %
 *     of them, or too few matches: "not_comparable", with the reason.
 *  3. States: a previous spot matched to a current one is `matched` (it keeps its id); a
 *     current spot with no match is looked for in the previous photo at the mapped place
 *     (a spot of about its size and darkness there is a match the detection missed) and
 *     is `new`; a previous spot with no match is `gone` when the current skin at its place
 *     is visible, `not_visible` when the place is outside the current photo, off the skin,
 *     clipped or in deep shadow.
 *  4. Change of a matched lesion: area (%), longest diameter (px, and mm when the scale
 *     is known), colour (CIEDE2000 after matching the surrounding skin's colour, so light
 *     and white balance cancel), darkening (ratio of contrasts), colour spread (a second
 *     colour), asymmetry and border, each with its uncertainty; the pair's median of each
 *     measure is its own offset and their spread a floor of its noise. A change is judged
 *     only where it can be: the registration verified there, the skin lit about as in the
 *     other photo (not a shadow band in one only) and not near clipping, the spot dark
 *     enough in one of the photos, not at the frame's edge; a growth that paled or a
 *     darkening that shrank is taken for blur. The change score is in [0,1]; `changed`
 *     when it is at least 0.5. A new lesion is changed when it is clearly a spot, larger
 *     than the smallest spots the previous photo resolves there, the previous skin at its
 *     place was clear and lit alike, in a verified area, and dark enough to be more than a
 *     freckle that the light shows in one photo only. A gone lesion is reported with its
 *     score (the same evidence) but never `changed`: a spot that vanishes is far more
 *     often hidden, blurred or misplaced by the registration than regressed.
 *
 * Ownership: results are freed with bcd_lesion_result_free(); borrowed pointers live as
 * long as the result. Threads: one thread per ctx at a time; a finished result may be
 * read from any thread. Nothing here writes to stdout or stderr.
 * @since 0.1
 */
#include "common.h"
#include "ctx.h"
#include "image.h"

BCD_BEGIN_DECLS

/** A lesion comparison (or the lesions of a first photo). Opaque. */
typedef struct bcd_lesion_result bcd_lesion_result;

/** State of a lesion in this check. */
typedef enum bcd_lesion_state {
    BCD_LESION_MATCHED = 0,     /**< seen in both photos */
    BCD_LESION_NEW = 1,         /**< in this photo only (or the first check) */
    BCD_LESION_GONE = 2,        /**< previous lesion not found where the skin is visible */
    BCD_LESION_NOT_VISIBLE = 3  /**< previous lesion outside the overlap, in shadow or clipped */
} bcd_lesion_state;

/** Status of a result. */
typedef enum bcd_lesion_status {
    BCD_LESION_FIRST = 0,          /**< one photo: lesions found, nothing compared */
    BCD_LESION_COMPARED = 1,       /**< registered and compared */
    BCD_LESION_NOT_COMPARABLE = 2  /**< the two photos could not be registered (reason) */
} bcd_lesion_status;

/** The change of a matched lesion. NaN where not measured. SDs are one standard deviation. */
typedef struct bcd_lesion_change {
    double area_pct, area_pct_sd;         /**< area, % of the previous (after the local scale) */
    double diameter_px, diameter_px_sd;   /**< longest diameter, current pixels */
    double diameter_mm, diameter_mm_sd;   /**< the same in mm; NaN when no scale */
    double delta_e, delta_e_sd;           /**< CIEDE2000 of the mean colour, skin matched */
    double darkening, darkening_sd;       /**< ln of the ratio of contrasts (> 0: darker) */
    double spread, spread_sd;             /**< colour spread, CIE76 units (> 0: more colours) */
    double pixel_delta_e;                 /**< median colour change pixel by pixel inside the
                                               lesion (CIE76, light matched); NaN when the two
                                               could not be laid over each other */
    double part_delta_e;                  /**< how much more the most changed fifth of the
                                               lesion changed than its median (CIE76): a
                                               colour that appeared in part of it; NaN as above */
    double asymmetry, irregularity;       /**< change of each */
    double light;                         /**< ln ratio of the surrounding skin's brightness,
                                               current over previous, less the pair's median */
    int judged;                           /**< 0 when the light differs too much here (a
                                               shadow band, a highlight) to judge a change */
    int second_colour;                    /**< 1 when a second colour appeared: part_delta_e
                                               far above that of the pair's other lesions
                                               of about this size */
} bcd_lesion_change;

/** One lesion. Coordinates in the photos as displayed (after EXIF orientation). */
typedef struct bcd_lesion {
    uint32_t id;                /**< stable across checks */
    bcd_lesion_state state;
    double x, y;                /**< centre in the current photo (gone / not visible: where the
                                     previous one maps to; NaN when outside the mapping) */
    double prev_x, prev_y;      /**< centre in the previous photo; NaN for new lesions */
    double diameter_px;         /**< longest diameter in the photo it is measured in */
    double diameter_mm;         /**< NaN when the scale is unknown */
    double area_px;
    double lab[3];              /**< mean colour, CIELAB */
    double spread;              /**< colour spread, CIE76 */
    double irregularity;        /**< perimeter^2 / (4 pi area): 1 for a disc */
    double asymmetry;           /**< [0,1] */
    double contrast;            /**< peak darkness against the skin, ln units */
    int in_overlap;             /**< the place is seen in both photos */
    int changed;                /**< 1: a change worth a look */
    double score;               /**< change score [0,1]; NaN when not compared */
    int has_change;             /**< change below is set (matched lesions) */
    bcd_lesion_change change;
} bcd_lesion;

/** A lesion of the previous check, to carry its id: its centre in the previous photo. */
typedef struct bcd_lesion_ref {
    uint32_t id;
    double x, y;
} bcd_lesion_ref;

/** Options. Zero fields mean "default". */
typedef struct bcd_lesion_options {
    unsigned int version;          /**< BCD_LESION_OPTIONS_VERSION; always first */
    unsigned int analysis_side;    /**< longer side analysed, 512..8192; 0: 2400 */
    double mm_per_px;              /**< scale of the current photo; 0: unknown */
    double previous_mm_per_px;     /**< scale of the previous photo; 0: unknown */
    const bcd_lesion_ref *previous;/**< ids of the previous check's lesions (NULL: 1, 2, ...) */
    size_t nprevious;
    uint32_t next_id;              /**< first id for new lesions; 0: one past the largest known */
    const double *prior;           /**< optional affine map previous -> current photo pixels
                                        (bcd_detect_result_matrix()), tried first */
    /** The size of the photo each image was decoded from at a reduced scale
     *  (bcd_image_decode_ext() with min_long_side 2400 is enough for the analysis and much
     *  faster): positions and sizes are then given in the photo's pixels. 0: the image's own. */
    uint32_t current_width, current_height;
    uint32_t previous_width, previous_height;
} bcd_lesion_options;

#define BCD_LESION_OPTIONS_VERSION 1
#define BCD_LESION_OPTIONS_INIT { BCD_LESION_OPTIONS_VERSION, 0, 0.0, 0.0, NULL, 0, 0, NULL, 0, 0, 0, 0 }

/**
 * The lesions of one photo (the first check of an angle): every spot, ids from
 * opts->next_id (or 1). Status BCD_LESION_FIRST.
 * @return BCD_OK, BCD_EINVAL (NULL, not RGB, under 32 px, bad options), BCD_ENOMEM.
 */
BCD_API bcd_status bcd_lesion_find(bcd_lesion_result **out, bcd_ctx *ctx, const bcd_image *photo,
                                   const bcd_lesion_options *opts);

/**
 * Find, match and compare the lesions of two photos of the same angle (see the file
 * comment). Photos that cannot be registered are not an error: the status is
 * BCD_LESION_NOT_COMPARABLE with a reason, and the current photo's lesions are listed
 * (previous ids carried where opts->previous is given and nothing else can be said).
 * @return BCD_OK, BCD_EINVAL, BCD_ENOMEM.
 */
BCD_API bcd_status bcd_lesion_compare(bcd_lesion_result **out, bcd_ctx *ctx, const bcd_image *current,
                                      const bcd_image *previous, const bcd_lesion_options *opts);

BCD_API void bcd_lesion_result_free(bcd_lesion_result *r);
BCD_API bcd_lesion_status bcd_lesion_result_status(const bcd_lesion_result *r);
/** Why the photos are not comparable ("" otherwise); borrowed. */
BCD_API const char *bcd_lesion_result_reason(const bcd_lesion_result *r);
BCD_API size_t bcd_lesion_result_count(const bcd_lesion_result *r);
/** Lesion i (0 <= i < count), borrowed; NULL out of range. */
BCD_API const bcd_lesion *bcd_lesion_result_get(const bcd_lesion_result *r, size_t i);
/** Number of lesions with changed set. */
BCD_API size_t bcd_lesion_result_changed(const bcd_lesion_result *r);
/**
 * Why the change of lesion i is measured but not judged, NULL when it is judged or has no
 * change: "near_clipping" (the skin around is near white), "frame_edge", "too_faint" (not
 * dark enough in either photo to measure), "light_differs" (a shadow or a highlight on it
 * in one photo only), "registration_unverified" (the photos' alignment is not confirmed
 * there), "far_from_mapping" (further from where the registration puts it than its error:
 * maybe a neighbouring spot), "not_separated" (found again only merged with a neighbour or
 * with a relaxed threshold), "skin_edge" (at the edge of the visible skin: clothing, hair, the
 * background or a deep shadow next to it). Static string.
 */
BCD_API const char *bcd_lesion_result_not_judged(const bcd_lesion_result *r, size_t i);
/** The strongest change score of the result (0 when none; NaN when not compared). */
BCD_API double bcd_lesion_result_score(const bcd_lesion_result *r);
/** The homography previous -> current photo pixels (row-major 3x3); BCD_EINVAL when not compared. */
BCD_API bcd_status bcd_lesion_result_homography(const bcd_lesion_result *r, double h[9]);
/** Largest id in the result (for the next check's next_id). */
BCD_API uint32_t bcd_lesion_result_max_id(const bcd_lesion_result *r);

/** Name of a state: "matched", "new", "gone", "not_visible". */
BCD_API const char *bcd_lesion_state_name(bcd_lesion_state s);

/**
 * The result as JSON: {"status": "first"|"compared"|"not_comparable", "reason": string|null,
 * "mm_per_px": number|null, "previous_mm_per_px", "matched", "registration": {"homography",
 * "residual_px", "agreement" (strength-weighted share of the strongest spots of both photos
 * that the mapping matched, 0-1), "chance_agreement" (the same share for the mapping moved
 * by a tenth of the photo: what chance matches; a registration must match well beyond it),
 * "spots", "previous_spots"} | null, "lesions": [{"id", "state", "center",
 * "previous_center", "diameter_px", "diameter_mm", "area_px", "lab", "spread",
 * "irregularity", "asymmetry", "contrast", "in_overlap", "changed", "score",
 * "change": {..., "judged", "not_judged": string|null (see
 * bcd_lesion_result_not_judged()), "second_colour", "pixel_delta_e", "part_delta_e"} |
 * null}]}.
 * @param[out] out  caller frees with bcd_free().
 */
BCD_API bcd_status bcd_lesion_result_json(char **out, const bcd_lesion_result *r);

BCD_END_DECLS

#endif
