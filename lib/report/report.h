/* Internal report layer: history trend, report summary text, report and history JSON
 * documents, the self-contained HTML report (inline SVG charts, embedded thumbnails) and
 * the small encoders it needs. Not installed.
 *
 * The layer formats; it does not fetch. lib/service (report_ops.c) reads sessions,
 * analyses and photos from the store, fills the structs below and calls these
 * functions. Nothing here touches the store, the network, stdout or stderr.
 */
#ifndef BCD_REPORT_INTERNAL_H
#define BCD_REPORT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "bcd/image.h"
#include "core/core.h"

#define BCD__REP_ANGLES 6
/* Canonical angle order (the same as lib/store's bcd__angles). */
extern const char *const bcd__rep_angles[BCD__REP_ANGLES];
int bcd__rep_angle_index(const char *angle);

/* Photo quality thresholds of the report; the same as lib/service/analyze.c uses for
 * its per-angle warnings: sharpness below 0.35 is "blurred", more than 10 % of the
 * pixels under- or over-exposed is "poorly exposed". */
#define BCD__REP_BLURRED 0.35
#define BCD__REP_CLIPPED 0.10

/* Detect quality flags as stored in an analysis' details (bcd/detect.h names). */
#define BCD__REP_Q_BLURRED 0x01u
#define BCD__REP_Q_CLIPPED 0x02u
#define BCD__REP_Q_SMALL 0x04u
#define BCD__REP_Q_MISALIGNED 0x08u

/* A changed lesion of an angle, as the analysis stored it (photo pixels). */
#define BCD__REP_MAX_LESIONS 4
struct bcd__rep_lesion {
    unsigned id;
    char state[16];           /* "matched" or "new" (or "gone") */
    double x, y;              /* centre in the current photo */
    double px, py;            /* in the previous photo; NaN for a new lesion */
    double d;                 /* longest diameter, px */
    double score;
    double diameter_change;   /* px; NaN when not measured */
    double darkening;         /* ln ratio of contrasts; NaN when not measured */
    double delta_e;           /* NaN when not measured */
};

/* One angle of one analyzed session. Doubles are NaN where a value is absent. */
struct bcd__rep_angle {
    char angle[16];
    double change_score;      /* against the baseline (mean of earlier sessions) */
    int baseline_sessions;    /* 0: first photo of this angle, score not meaningful */
    int image_count;
    double quality, sharpness, blur_variance, clipped_fraction;
    char *summary;            /* the stored per-angle summary (owned), may be NULL */
    /* against the previous analyzed session (filled by the caller) */
    double previous_score;    /* that session's score of this angle; NaN: angle absent there */
    double distance_previous; /* cosine distance of the two angle embeddings; NaN: unavailable */
    /* change evidence of the detect layer, where the analysis stored it */
    double local_change;      /* [0,1] or NaN */
    int changed;              /* -1 absent, 0 or 1 */
    bool has_qflags;
    unsigned qflags;          /* BCD__REP_Q_* */
    char *regions_json;       /* owned JSON array text of changed regions, or NULL */
    size_t n_regions;
    char *heatmap_path;       /* owned: a stored heatmap (blob key), or NULL */
    /* the changed lesions (strongest first) */
    struct bcd__rep_lesion lesions[BCD__REP_MAX_LESIONS];
    size_t n_lesions;
};

/* One analyzed session. */
struct bcd__rep_session {
    char session_id[37];
    char created_at[32];
    double days;              /* days since the first analyzed session (from created_at) */
    double overall_change_score;
    double confidence;
    int baseline_sessions;    /* 0: first session, scores are 0 by construction */
    char model[128];
    char *summary;            /* stored overall summary (owned), may be NULL */
    /* confidence factors of the stored details, NaN where absent */
    double f_coverage, f_quality, f_baseline;
    /* against the previous analyzed session */
    double delta_previous;    /* NaN for the first analyzed session */
    const char *delta_method; /* "embedding" or "score" (static), NULL when no previous */
    /* detect evidence, where stored */
    double change_probability;
    int changed;              /* -1 absent */
    size_t n_angles;
    struct bcd__rep_angle angles[BCD__REP_ANGLES];
};

/* Initialise a session: every optional value absent (NaN / -1 / NULL). */
void bcd__rep_session_init(struct bcd__rep_session *s);
/* Free what a session owns; the struct itself is not freed. */
void bcd__rep_session_clear(struct bcd__rep_session *s);

/* Read the change evidence and confidence factors of an analysis' details JSON into s
 * (where present; anything malformed is ignored). Accepted shapes, at the top level of
 * the object or inside a "detect" or "change_detection" object:
 *   "change_probability": number, "changed": bool,
 *   "angle_coverage" / "image_quality" / "baseline": numbers (confidence factors),
 *   "per_angle": [{"angle_type" | "angle": name, ...}] or "angles": {name: {...}}
 * with per-angle "local_change" (number|null), "changed" (bool), "changed_regions"
 * (array), "quality" ({"blurred","clipped","subject_too_small","aligned"} booleans) and
 * "heatmap" or "heatmap_path" (a stored blob key).
 * BCD_ENOMEM only. */
bcd_status bcd__rep_read_details(struct bcd__rep_session *s, const char *details_json);

/* Theil–Sen estimator: slope = median of the pairwise slopes (y_j − y_i)/(x_j − x_i)
 * over pairs with x_i != x_j; intercept = median of y_i − slope·x_i.
 * BCD_EDOMAIN when n < 2 or all x are equal (then *slope = 0 and *intercept = median
 * of y, or 0 for n = 0); BCD_ENOMEM. */
bcd_status bcd__rep_theil_sen(double *slope, double *intercept, const double *x, const double *y, size_t n);
/* Median of n values (sorts v in place); NaN for n = 0. */
double bcd__rep_median(double *v, size_t n);

/* Trend of one series. */
struct bcd__rep_series_trend {
    size_t n_points;   /* points in the fit */
    double slope;      /* per check; NaN when fewer than 2 points */
    double intercept;
    double level;      /* fitted value at the latest point, clamped to >= 0; the only
                          value for one point; NaN for none */
    double latest;     /* the latest value; NaN for none */
    const char *label; /* bcd_trend_label(level), "insufficient_data" for no point */
    const char *direction; /* "increasing" | "decreasing" | "flat" | "undetermined" */
};

/* A session is flagged for one or more of these reasons. */
#define BCD__REP_FLAG_CHANGED 0x01u       /* detect evidence: changed */
#define BCD__REP_FLAG_OVERALL 0x02u       /* overall score >= 0.25 (significant_shift) */
#define BCD__REP_FLAG_ANGLE 0x04u         /* an angle's score >= 0.25 */

/* The trend over a whole history. */
struct bcd__rep_trend {
    size_t n_sessions;           /* analyzed sessions */
    struct bcd__rep_series_trend overall;
    struct bcd__rep_series_trend angle[BCD__REP_ANGLES];
    size_t n_flagged;
    unsigned *flags;             /* n_sessions entries (owned): BCD__REP_FLAG_* */
};

/* Slope threshold of "flat": |slope| below 0.01 per check (ten checks to cross a band). */
#define BCD__REP_FLAT_SLOPE 0.01
/* Most points a Theil–Sen fit uses; longer series are thinned evenly to this many. */
#define BCD__REP_MAX_FIT 2048

/* Fit the trend. The points are the sessions scored against a baseline
 * (baseline_sessions > 0), x = their index among those points (0, 1, 2, ...: the slope is
 * per check), y = overall_change_score (per angle: that angle's change_score).
 * BCD_ENOMEM only. Free with bcd__rep_trend_clear(). */
bcd_status bcd__rep_trend(struct bcd__rep_trend *t, const struct bcd__rep_session *s, size_t n);
void bcd__rep_trend_clear(struct bcd__rep_trend *t);
/* Reasons (BCD__REP_FLAG_*) a session is flagged. */
unsigned bcd__rep_flags(const struct bcd__rep_session *s);

/* The written part of a report. */
struct bcd__rep_text {
    char *summary;       /* the whole summary, sentences written from the numbers */
    char *findings;      /* the summary without the warnings, confidence and next steps */
    size_t n_warnings;
    char **warnings;     /* quality warnings, one per line */
    size_t n_next;
    char **next_steps;   /* what the person might do next */
    char *confidence_note; /* what limits the confidence */
};
/* Write the summary of session s (prev: the previous analyzed session or NULL; t: the
 * trend of the whole history, may be NULL). BCD_ENOMEM only. */
bcd_status bcd__rep_text(struct bcd__rep_text *out, const struct bcd__rep_session *s,
                         const struct bcd__rep_session *prev, const struct bcd__rep_trend *t);
void bcd__rep_text_clear(struct bcd__rep_text *x);

/* JSON documents (cJSON trees the caller owns; NULL on allocation failure). */
/* {"user_id" (left out when NULL),"count","sessions":[...],"trend":{...}} */
cJSON *bcd__rep_history_json(const char *user_id, const struct bcd__rep_session *s, size_t n,
                             const struct bcd__rep_trend *t);
/* The report's "data" object for session index cur of the history. */
cJSON *bcd__rep_report_json(const struct bcd__rep_session *s, size_t n, size_t cur, const struct bcd__rep_trend *t,
                            const struct bcd__rep_text *text);
/* Round for output: 6 decimals (as the service's analysis documents). */
double bcd__rep_round(double x);

/* An encoded image for the HTML report. */
struct bcd__rep_image {
    unsigned char *data; /* owned */
    size_t len;
    const char *mime;    /* static: "image/jpeg" or "image/png" */
    uint32_t width, height;
};
void bcd__rep_image_clear(struct bcd__rep_image *im);

/* Photos of the report, by canonical angle index. */
struct bcd__rep_photos {
    struct bcd__rep_image current[BCD__REP_ANGLES];
    struct bcd__rep_image previous[BCD__REP_ANGLES];
    struct bcd__rep_image heatmap[BCD__REP_ANGLES];
    bool heatmap_stored[BCD__REP_ANGLES]; /* from the analysis (else computed for the report) */
    /* each changed lesion's neighbourhood, before and now (the angle's lesions order) */
    struct bcd__rep_image lesion_before[BCD__REP_ANGLES][BCD__REP_MAX_LESIONS];
    struct bcd__rep_image lesion_now[BCD__REP_ANGLES][BCD__REP_MAX_LESIONS];
};
void bcd__rep_photos_clear(struct bcd__rep_photos *p);

/* Reduce img so that its longer side is at most max_side (area average; never enlarges).
 * BCD_EINVAL, BCD_ENOMEM. */
bcd_status bcd__rep_downscale(bcd_image **out, const bcd_image *img, uint32_t max_side);
/* The size bcd__rep_downscale() gives a w x h image. */
void bcd__rep_downscale_size(uint32_t w, uint32_t h, uint32_t max_side, uint32_t *nw, uint32_t *nh);
/* bcd__rep_downscale() fed one row at a time, for a caller that reads the rows anyway
 * (the same bytes as bcd__rep_downscale() of the whole image): init, then every row of
 * the w x h image in order (row: w * 3 bytes, yy: its index), then finish, which hands
 * over the reduced image (NULL if a row was missing or out of order) and frees the rest;
 * clear frees everything without finishing. init: BCD_EINVAL, BCD_ENOMEM. */
struct bcd__rep_downscaler {
    uint32_t w, h, nw, nh;
    uint32_t *col;    /* column sums of the box being read */
    uint16_t *col16;  /* the same before its last row, when boxes are short enough */
    uint32_t *x0s;    /* first input column of each output column, and w */
    uint32_t next;    /* the row expected next */
    uint32_t y, y1;   /* the output row being summed, and the end of its box */
    uint32_t wmin;    /* the narrowest box's columns (the widest: one more) */
    bcd_image *out;
};
bcd_status bcd__rep_downscaler_init(struct bcd__rep_downscaler *d, uint32_t w, uint32_t h, uint32_t max_side);
void bcd__rep_downscaler_row(struct bcd__rep_downscaler *d, const uint8_t *row, uint32_t yy);
bcd_image *bcd__rep_downscaler_finish(struct bcd__rep_downscaler *d);
void bcd__rep_downscaler_clear(struct bcd__rep_downscaler *d);
/* Encode an RGB image into memory. quality 1..100. BCD_EINVAL, BCD_ENOMEM, BCD_ERROR. */
bcd_status bcd__rep_encode_jpeg(struct bcd__rep_image *out, const bcd_image *img, int quality);
/* PNG: BCD__REP_PNG_SMALL for overlays and thumbnails (compressed: the "up" filter and
 * Huffman coding alone, deflate.c), BCD__REP_PNG_FAST for copies that are written and
 * read back at once (stored without compression, by libpng). */
enum bcd__rep_png { BCD__REP_PNG_SMALL, BCD__REP_PNG_FAST };
bcd_status bcd__rep_encode_png(struct bcd__rep_image *out, const bcd_image *img, enum bcd__rep_png how);
/* A w x h 16-bit greyscale PNG of the samples px (row-major), and back: decode fills
 * px (w * h) from data, BCD_EFORMAT unless it is exactly such a PNG. BCD_EINVAL,
 * BCD_ENOMEM, BCD_ERROR. */
bcd_status bcd__rep_encode_png16(struct bcd__rep_image *out, const uint16_t *px, uint32_t w, uint32_t h);
bcd_status bcd__rep_decode_png16(uint16_t *px, uint32_t w, uint32_t h, const unsigned char *data, size_t len);
/* IEEE 754 half precision of f (round to nearest even, saturating at +-65504), and the
 * float of a half. */
uint16_t bcd__rep_half(float f);
float bcd__rep_float(uint16_t h);
/* dst[i] = bcd__rep_half(src[i]), and bcd__rep_float(), for i < n. */
void bcd__rep_halves(uint16_t *dst, const float *src, size_t n);
void bcd__rep_floats(float *dst, const uint16_t *src, size_t n);

/* Everything the HTML page shows. */
struct bcd__rep_html_input {
    const struct bcd__rep_session *s; /* the history, oldest first */
    size_t n;
    size_t cur;                       /* the reported session */
    const struct bcd__rep_trend *trend;
    const struct bcd__rep_text *text;
    const struct bcd__rep_photos *photos; /* NULL: no photo section */
    const char *generated_at;         /* ISO 8601 */
    const char *version;              /* libbcd version */
};
/* Render the page. *out malloc'd NUL-terminated text (caller frees with free()),
 * *len its length. BCD_ENOMEM only. */
bcd_status bcd__rep_html(char **out, size_t *len, const struct bcd__rep_html_input *in);

/* Growable text buffer; an allocation failure sticks (oom) and later appends are no-ops. */
/* A number in C notation whatever the locale ('.' decimal point), printf format fmt
 * (one double conversion, e.g. "%.4f"). */
void bcd__sb_num(struct bcd__buf *b, const char *fmt, double v);
/* Text escaped for HTML content and attribute values (& < > " '); control
 * characters other than tab and newline dropped, invalid UTF-8 replaced by U+FFFD, and
 * the slashes of "://" written as character references, so that no URL appears in the
 * file even as text. */
void bcd__sb_html(struct bcd__buf *b, const char *s);
/* Standard base64 (RFC 4648 §4, with padding) of data. */
void bcd__sb_base64(struct bcd__buf *b, const unsigned char *data, size_t len);

/* "2026-02-16T10:00:00.123456Z" -> seconds since the epoch (UTC); false if malformed. */
bool bcd__rep_parse_time(const char *ts, double *out);
/* A timestamp for people, into buf; the raw text if malformed. Styles: */
#define BCD__REP_DATE 0            /* "16 Feb 2026" */
#define BCD__REP_DATE_TIME 1       /* "16 Feb 2026 10:00 UTC" */
#define BCD__REP_DATE_SHORT_TIME 2 /* "16 Feb 10:00" */
void bcd__rep_format_date(char *buf, size_t cap, const char *ts, int style);
/* Both timestamps fall on the same UTC day. */
bool bcd__rep_same_day(const char *a, const char *b);

#endif
