/* Internal API of the lesion part of lib/detect (spots.c, register.c, lesion.c), shared
 * with its unit tests. Not installed. */
#ifndef BCD_LESION_INTERNAL_H
#define BCD_LESION_INTERNAL_H

#include "bcd/lesion.h"
#include "detect_internal.h"

/* Longer side of the spot-analysis image: at 2400 px a photo that spans 60 cm of body
 * has 0.25 mm per pixel, so a 1.5 mm spot is 6 px across. */
#define BCD__SPOT_SIDE 2400

/* One spot found in a photo. Positions and sizes in the photo's own pixels (as passed,
 * after EXIF orientation) unless said otherwise. */
typedef struct bcd__spot {
    double x, y;          /* centre (contrast-weighted) */
    double area;          /* pixels of the photo */
    double diameter;      /* longest diameter */
    double major, minor;  /* axes of the ellipse of the same second moments (full lengths) */
    double contrast;      /* peak darkness against the surrounding skin, log units (green) */
    double mean_contrast; /* mean over the spot */
    double lab[3];        /* mean colour, CIELAB (D65) */
    double skin_lab[3];   /* the surrounding skin's colour, CIELAB */
    double rgb[3];        /* mean linear RGB (0..1) of the spot */
    double skin_rgb[3];   /* and of the surrounding skin */
    double spread;        /* colour spread: RMS CIE76 distance of its pixels from the mean */
    double irregularity;  /* border: perimeter^2 / (4 pi area), 1 for a disc, larger when ragged */
    double asymmetry;     /* fraction of the spot not covered by its own point reflection */
    double strength;      /* ranking for matching: contrast * sqrt(area in analysis pixels) */
    int ax0, ay0, ax1, ay1; /* box in analysis pixels (inclusive) */
} bcd__spot;

/* A photo analysed for spots. */
typedef struct bcd__spotmap {
    int w, h;           /* analysis size */
    double fx, fy;      /* analysis pixels per photo pixel */
    uint32_t ow, oh;    /* the photo's size */
    bcd__plane *c[3];   /* R, G, B at analysis size, 0..255 */
    bcd__plane *con;    /* darkness against the local skin level: bg - ln(G) */
    bcd__plane *dots;   /* the spots alone, each drawn as a soft dot: what registration
                           correlates (shadow edges, hair and skin texture are not in it) */
    uint8_t *skin;      /* 1 where skin (analysis size) */
    uint8_t *dark;      /* 1 where the skin is in deep shadow or clipped (not judged) */
    double noise;       /* robust spread of con on the skin */
    double skin_fraction;
    double t_seed, t_grow; /* the thresholds used */
    bcd__spot *spots;   /* strongest first */
    size_t n;
    /* scratch of bcd__spots_probe(): a map is probed by one thread at a time */
    uint32_t *stamp;
    uint32_t tick;
} bcd__spotmap;

/* Analyse img (RGB) for spots at a longer side of at most long_side (0: BCD__SPOT_SIDE).
 * photo_w x photo_h: the size of the photo img was decoded from at a reduced scale
 * (positions and sizes are given in its pixels); 0, 0: img's own. */
bcd_status bcd__spots_find(bcd__spotmap *out, const bcd_image *img, int long_side, uint32_t photo_w,
                           uint32_t photo_h);
void bcd__spotmap_clear(bcd__spotmap *m);

/* Look for a spot near (x, y) (photo pixels) within radius (photo pixels) whose peak
 * contrast is at least min_contrast, with a relaxed threshold; measure it into out.
 * Returns the peak contrast found in the window (0 when none, NaN when the place is
 * outside the photo or not on visible skin); out is set only when the return value
 * >= min_contrast and a spot could be measured (then *found = true). */
double bcd__spots_probe(const bcd__spotmap *m, double x, double y, double radius, double min_contrast,
                        bcd__spot *out, bool *found);

/* Mean linear green (0..1) of the visible skin within radius of (x, y) (photo pixels),
 * spots left out; NaN when there is none. */
double bcd__spots_skin_level(const bcd__spotmap *m, double x, double y, double radius);

/* sRGB (0..255, gamma-encoded) -> linear 0..1, and linear RGB -> CIELAB (D65). */
double bcd__srgb_to_linear(double v);
void bcd__linear_to_lab(const double rgb[3], double lab[3]);
/* CIEDE2000 colour difference. */
double bcd__delta_e2000(const double lab1[3], const double lab2[3]);

/* A plane-to-plane mapping: a homography followed by a smooth displacement field
 * (Gaussian kernel regression of the residuals of matched points). Maps the previous
 * photo's pixel coordinates to the current photo's. */
typedef struct bcd__warp {
    double H[9];         /* homography, row-major */
    size_t n;            /* control points of the smooth field */
    double *px, *py;     /* their positions after H (current pixels) */
    double *dx, *dy;     /* their residual displacement */
    double sigma;        /* kernel width, current pixels */
} bcd__warp;

void bcd__warp_apply(const bcd__warp *w, double x, double y, double *ox, double *oy);
void bcd__warp_clear(bcd__warp *w);
/* Local area scale of the mapping at (x, y): determinant of its Jacobian. */
double bcd__warp_area_scale(const bcd__warp *w, double x, double y);

/* Fit a homography to n >= 4 point pairs (least squares, normalized DLT); false when
 * degenerate. */
bool bcd__fit_homography(double H[9], const double *sx, const double *sy, const double *dx, const double *dy,
                         size_t n);
/* The similarity (a, b, tx, ty: x' = a x - b y + tx, y' = b x + a y + ty) fitted to n >= 2
 * pairs by least squares; false when degenerate. */
bool bcd__fit_similarity(double s[4], const double *sx, const double *sy, const double *dx, const double *dy,
                         size_t n);

/* Registration of two spot sets: which previous spot is which current one, and the
 * mapping. match[i] = index in cur of previous spot i, or -1. */
typedef struct bcd__spot_match {
    bool ok;          /* registered */
    const char *why;  /* when not: a short reason */
    bcd__warp fwd;    /* previous -> current */
    bcd__warp bwd;    /* current -> previous */
    int *match;       /* nprev entries */
    size_t matched;
    double residual;  /* median distance of matched pairs after the mapping, current pixels */
    int areas;        /* areas of the previous photo whose correlation verified the mapping */
    double agree;     /* strength-weighted share of the strongest spots of both photos, on the
                         skin both show, that the mapping matched (0..1) */
    double chance;    /* the same share for the mapping moved by a tenth of the photo: what
                         chance matches (see register.c) */
    /* the areas of the previous photo (cells of `cell` previous pixels, gw x gh) whose
     * darkness pattern correlated with the current photo's through the mapping */
    uint8_t *verified;
    int gw, gh;
    double cell;
    /* matched spots the mapping brings within its own error: previous-photo positions */
    double *sup_x, *sup_y;
    size_t nsup;
    double sup_r;
} bcd__spot_match;

/* The previous-photo point (x, y) lies in a verified area, or (strict false) among at
 * least five matched spots (within 6 % of the longer side) that the mapping brings
 * together within its own error: the registration holds there. */
bool bcd__spot_match_verified(const bcd__spot_match *m, double x, double y, bool strict);

/* prior: an optional similarity (previous -> current photo pixels, a b tx ty as above)
 * tried first (NULL: none). */
bcd_status bcd__spots_register(bcd__spot_match *out, const bcd__spotmap *prev, const bcd__spotmap *cur,
                               const double *prior);
void bcd__spot_match_clear(bcd__spot_match *m);

/* The colour change inside a matched lesion, pixel by pixel (patch.c): the previous photo
 * laid over the current one around spot c through bwd (current -> previous), aligned on the
 * darkness pattern, its light matched on the skin around the spots. med: median CIE76
 * difference over the pixels that both photos show as the lesion; part: the 80th
 * percentile less the median. false (both NaN) when they cannot be laid over each other. */
/* How well the skin around (x, y) (current photo pixels) lies over the previous photo
 * through bwd (patch.c): the best normalized correlation of the darkness pattern of the
 * visible skin within radius (current photo pixels), the disc of radius hole around (x, y)
 * left out, over small shifts. NaN when the window leaves either photo or shows too little
 * skin. */
double bcd__patch_agreement(const bcd__spotmap *P, const bcd__spotmap *C, const bcd__warp *bwd, double x, double y,
                            double radius, double hole);
bool bcd__lesion_patch(const bcd__spotmap *P, const bcd__spotmap *C, const bcd__spot *p, const bcd__spot *c,
                       const bcd__warp *bwd, double *med, double *part);

#endif
