/* Change detection of a session's photos against another session's (lib/detect, per
 * angle), as analyze and compare use it; and a small parallel-for for per-image work.
 * Internal to lib/service. */
#ifndef BCD_SERVICE_DETECTION_H
#define BCD_SERVICE_DETECTION_H

#include "bcd/detect.h"
#include "bcd/lesion.h"
#include "service_internal.h"

/* Longer side the photos are reduced to for detection: the detector's working size
 * (BCD_DETECT_DEFAULT_WORK_SIZE), so that it does not reduce them again; the heatmaps
 * are drawn on this image. Regions are mapped back to the full-size photo. */
#define BCD__DET_SIDE BCD_DETECT_DEFAULT_WORK_SIZE
/* Longer side of the heatmap overlays analyze stores. */
#define BCD__DET_HEATMAP_SIDE 512u

/* Run fn(arg, i) for i in [0, n) on up to `threads` threads (the calling one included);
 * threads <= 1 or n <= 1 runs them in order on the calling thread. fn must not touch
 * shared state without its own locking. */
void bcd__svc_parallel_for(size_t n, unsigned threads, void (*fn)(void *arg, size_t i), void *arg);
/* Threads for per-image work: BCD_THREADS of the service's ctx, 0 meaning the online
 * CPUs; at most max. */
unsigned bcd__svc_threads(const bcd_service *svc, unsigned max);

/* One angle of a session, reduced for detection. */
struct bcd__det_photo {
    char angle[16];
    char image_id[BCD__ID_LEN]; /* the image row of the photo */
    bcd_image *img;        /* owned: the photo reduced to BCD__DET_SIDE */
    uint32_t width, height; /* the photo's own size (region coordinates are in it) */
    bool from_copy;        /* img is the working copy an analysis stored */
    /* The feature map of the photo's tensor (bcd_embedder_embed_maps(): map_c x map_h x
     * map_w floats) and the name of the model that made it; NULL when there is none.
     * analyze lends the current photos' maps; a map read back from a stored analysis is
     * owned (map_buf, then equal to map). */
    const float *map;
    float *map_buf;
    size_t map_c, map_h, map_w;
    char map_model[128];
};

struct bcd__det_angle {
    char angle[16];
    bcd_detect_result *r;  /* owned; NULL when the angle could not be checked at all */
    bool compared;         /* r is a comparison (else quality only) */
    double sx, sy;         /* reduced -> original coordinates of the current photo */
    double psx, psy;       /* and of the previous photo compared (0 when none) */
    uint32_t pwidth, pheight; /* the previous photo's own size (0 when none) */
    uint32_t width, height;
    char *heatmap;         /* owned: stored blob key or written file, NULL if none */
    bool heatmap_created;  /* the blob was new (delete it if the analysis is not saved) */
    /* the reduced current photo, stored with the analysis so that the next analysis
     * (and compare) need not decode the photo again: blob key, NULL if none */
    char *copy;
    bool copy_created;
    char image_id[BCD__ID_LEN];
    /* the feature maps compared cell by cell (bcd_detect_compare_maps()): fh x fw cosine
     * distances, owned; NULL when the two photos have no maps of the same model */
    float *feature;
    size_t fh, fw;
    /* the current photo's feature map stored as a blob (16-bit PNG of halves, one row per
     * channel): key, NULL if none */
    char *fmap;
    bool fmap_created;
    size_t fmap_c, fmap_h, fmap_w;
    char fmap_model[128];
    /* the lesions of the current photo against the previous check's photo of the angle
     * (bcd__det_lesions()); owned, NULL when not found */
    bcd_lesion_result *lesions;
};

struct bcd__detection {
    char previous_session_id[BCD__ID_LEN]; /* "" when compared with nothing */
    size_t n;
    struct bcd__det_angle a[BCD__ANGLE_COUNT];
    double probability; /* NaN when no angle could be compared */
    int changed;        /* 1, 0, or -1 with probability NaN */
};

/* Read the first image of every angle of session_id (order_index order) reduced for
 * detection; photos[] gets one entry per angle found (n_out). details: the session's
 * stored analysis details (NULL if none): the working copies they name are read instead
 * of decoding the photos; a copy that is missing, or does not match its photo, costs
 * only the decoding. The feature maps they name are read too (a missing or damaged one
 * only costs its angle the feature comparison). Either way the reduced image is the same: the photo decoded in
 * full and reduced with bcd__rep_downscale(). A photo that cannot be read or decoded
 * is left out (its angle then has no comparison) unless out of memory. */
bcd_status bcd__det_load_session(bcd_service *svc, const char *session_id, const char *details,
                                 struct bcd__det_photo *photos, size_t *n_out);
/* bcd__det_load_session() with the details of the session's stored analysis, read from
 * the store (none, or unreadable: the photos are decoded). rows, if not NULL, gets the
 * session's image rows it listed (*nrows of them; the caller frees *rows; NULL on
 * failure), for a caller that needs them too. */
bcd_status bcd__det_load_stored(bcd_service *svc, const char *session_id, struct bcd__det_photo *photos,
                                size_t *n_out, struct bcd__image_row **rows, size_t *nrows);
/* A decoded photo reduced for detection into p (its width, height and img set); *photo
 * is taken over (set to NULL) when it is small enough to be used as it is. BCD_ENOMEM. */
bcd_status bcd__det_reduce(struct bcd__det_photo *p, bcd_image **photo);
/* bcd_image_preprocess() of *photo into tensor and bcd__det_reduce() of it into p, with
 * the reduction done in preprocessing's pass over the photo (the same bytes as
 * bcd__det_reduce()). Status of bcd_image_preprocess(), or BCD_ENOMEM. */
bcd_status bcd__det_preprocess_reduce(float *tensor, size_t tensor_len, struct bcd__det_photo *p, bcd_image **photo);
void bcd__det_photos_free(struct bcd__det_photo *photos, size_t n);

/* Compare cur[0..n) with the photos of the same angles of previous (NULL: quality only)
 * and combine them; where both photos of an angle have feature maps of the same model
 * and shape, also those, cell by cell through the alignment. Heatmaps: heatmap_session
 * set: stored as PNG blobs of that session, with the working copies and feature maps of
 * cur that are not stored already; heatmap_dir set: written as <dir>/<angle>.png; both
 * NULL: none. Fills d (clear it
 * with bcd__det_clear()). Errors are recorded on svc. */
bcd_status bcd__det_run(bcd_service *svc, struct bcd__detection *d, const struct bcd__det_photo *cur, size_t n,
                        const struct bcd__det_photo *prev, size_t nprev, const char *previous_session_id,
                        const char *heatmap_session, const char *heatmap_dir);
/* Lesions (bcd/lesion.h) of every angle of d: the first photo of each angle of session_id
 * at full resolution against the previous session's (none: the lesions of a first
 * check), ids carried from previous_details (the previous session's stored analysis
 * details, may be NULL); then the session's change probability again with the lesions'
 * scores (bcd__det_combine()). A photo that cannot be read leaves its angle without
 * lesions. Errors are recorded on svc (BCD_ENOMEM, store errors listing the images). */
bcd_status bcd__det_lesions(bcd_service *svc, struct bcd__detection *d, const char *session_id,
                            const char *previous_session_id, const char *previous_details);
/* The change probability of d from every angle's local change and lesion score. */
void bcd__det_combine(struct bcd__detection *d);
/* An angle's local change: the change map's and its strongest lesion's, whichever is
 * higher; NaN when neither could be compared. */
double bcd__det_local_change(const struct bcd__det_angle *g);

/* Delete the blobs (heatmaps, working copies) this detection created (its analysis was
 * not saved). */
void bcd__det_discard_blobs(bcd_service *svc, struct bcd__detection *d);
/* Delete the blobs an earlier analysis' details name that d does not use. */
void bcd__det_drop_old_blobs(bcd_service *svc, const char *old_details, const struct bcd__detection *d);
/* The overlays a stored detection (bcd__det_json()) names, written as dir/<angle>.png
 * (dir created, files replaced atomically); each per_angle item's "heatmap" becomes the
 * path of its file. BCD_ENOTFOUND, with nothing recorded on svc, when an overlay is not
 * in the store: compute the detection again instead. Other errors are recorded on svc. */
bcd_status bcd__det_export_heatmaps(bcd_service *svc, cJSON *det, const char *dir);
void bcd__det_clear(struct bcd__detection *d);

/* Add the detection to a JSON object: "previous_session_id", "change_probability",
 * "changed", "warnings" and "per_angle" [{"angle_type", "local_change", "changed",
 * "changed_regions", "quality", "alignment", "heatmap", "warning", "feature_change"}],
 * and where stored, "working_copy": {"key", "image_id", "width", "height"} and
 * "feature_map": {"key", "image_id", "model", "channels", "rows", "cols"} (internal: no
 * response shows them, see bcd__det_merge()). */
void bcd__det_json(bool *ok, cJSON *o, const struct bcd__detection *d);
/* The quality gate flagged the angle (either photo, or no alignment). */
bool bcd__det_angle_flagged(const struct bcd__det_angle *g);
/* Fraction of the detection's angles with a quality flag (0 when none checked). */
double bcd__det_flagged_fraction(const struct bcd__detection *d);

/* Merge the detection items of details (a parsed analysis details object, may be
 * NULL) into a response: per-angle fields into the per_angle item of the same
 * angle_type, the top-level fields into top. */
void bcd__det_merge(bool *ok, cJSON *top, cJSON *per_angle, const cJSON *details);

#endif
