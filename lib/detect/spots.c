/*
 * Spots (moles, freckles, papules) of one photo, found and measured at a resolution where
 * a 1.5 mm spot is several pixels across (BCD__SPOT_SIDE).
 *
 *  1. The photo is reduced by area averaging to the analysis size.
 *  2. Skin: 8 x 8 blocks whose mean colour is skin-like (the YCbCr box of quality.c) and
 *     not clipped; holes in the skin (a mole, a shadow) are filled, specks dropped. Blocks
 *     in deep shadow (a quarter of the skin's median level or less) or clipped in green
 *     (red clips first on fair skin, and hides no spot) are "dark":
 *     skin that cannot be judged.
 *  3. Darkness: melanin and blood both absorb green, light and shadow scale all channels
 *     alike, so a spot is where ln(G) is below the local skin level. The skin level is
 *     the 75th percentile of ln(G) in each block, with blocks darker than the median of
 *     their 5 x 5 neighbourhood raised to it (a mole of up to ~3 blocks does not pull the
 *     level down), smoothed over the skin only (a wall beside the body does not lift it)
 *     and interpolated back. con = level - ln(G), re-centred on the skin's median.
 *  4. Spots: from the darkest pixel down, a region is grown over the pixels darker than
 *     half its peak (at least t_grow) and kept when its peak is at least t_seed (both set
 *     from the skin's noise), it is compact (axes ratio, fill of its ellipse: thin hairs
 *     and the edge of a shadow band are long and thin), not too large, and surrounded by
 *     visible skin.
 *  5. Measures: centre, area, axes, longest diameter (Feret, 8 directions), peak and
 *     mean darkness, mean colour and the surrounding skin's in CIELAB, colour spread,
 *     border irregularity and asymmetry.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lesion_internal.h"

#define BLOCK 8
#define MIN_PIXELS 4           /* analysis pixels of the half-maximum region */
#define MIN_AXIS_RATIO 0.30    /* minor / major */
#define MIN_FILL 0.45          /* pixels / area of the ellipse of the same moments */
#define MAX_DIAMETER 0.10      /* of the analysis image's longer side */
#define MAX_CONTRAST 3.0       /* ln G below the skin: 20 times darker */
#define MIN_SHADOW 0.04        /* a deep shadow spans at least this (of the longer side) */
#define HAIR_TEXTURE 0.08f      /* spread of ln G over a block beyond which it is not skin */
#define HAIR_REF_G 110.0f       /* ... at this green level (0-255) and brighter; darker skin
                                   may spread more, in proportion to 1 / G, */
#define HAIR_MAX_RELAX 2.0f     /* up to twice as much */
#define DOT_SIGMA 3.0
#define MIN_RING_SKIN 0.6      /* fraction of the ring around a spot that is visible skin */

double bcd__srgb_to_linear(double v)
{
    v /= 255.0;
    if (v <= 0.04045)
        return v / 12.92;
    return pow((v + 0.055) / 1.055, 2.4);
}

static double lab_f(double t)
{
    const double d = 6.0 / 29.0;
    return t > d * d * d ? cbrt(t) : t / (3.0 * d * d) + 4.0 / 29.0;
}

void bcd__linear_to_lab(const double rgb[3], double lab[3])
{
    double X = 0.4124564 * rgb[0] + 0.3575761 * rgb[1] + 0.1804375 * rgb[2];
    double Y = 0.2126729 * rgb[0] + 0.7151522 * rgb[1] + 0.0721750 * rgb[2];
    double Z = 0.0193339 * rgb[0] + 0.1191920 * rgb[1] + 0.9503041 * rgb[2];
    double fx = lab_f(X / 0.95047), fy = lab_f(Y), fz = lab_f(Z / 1.08883);
    lab[0] = 116.0 * fy - 16.0;
    lab[1] = 500.0 * (fx - fy);
    lab[2] = 200.0 * (fy - fz);
}

double bcd__delta_e2000(const double lab1[3], const double lab2[3])
{
    const double pi = 3.14159265358979323846;
    double L1 = lab1[0], a1 = lab1[1], b1 = lab1[2];
    double L2 = lab2[0], a2 = lab2[1], b2 = lab2[2];
    double C1 = hypot(a1, b1), C2 = hypot(a2, b2);
    double Cm = 0.5 * (C1 + C2);
    double Cm7 = pow(Cm, 7.0);
    double G = 0.5 * (1.0 - sqrt(Cm7 / (Cm7 + 6103515625.0))); /* 25^7 */
    double a1p = (1.0 + G) * a1, a2p = (1.0 + G) * a2;
    double C1p = hypot(a1p, b1), C2p = hypot(a2p, b2);
    double h1p = (a1p == 0.0 && b1 == 0.0) ? 0.0 : atan2(b1, a1p);
    double h2p = (a2p == 0.0 && b2 == 0.0) ? 0.0 : atan2(b2, a2p);
    if (h1p < 0.0)
        h1p += 2.0 * pi;
    if (h2p < 0.0)
        h2p += 2.0 * pi;
    double dLp = L2 - L1, dCp = C2p - C1p;
    double dhp = 0.0;
    if (C1p * C2p != 0.0) {
        dhp = h2p - h1p;
        if (dhp > pi)
            dhp -= 2.0 * pi;
        else if (dhp < -pi)
            dhp += 2.0 * pi;
    }
    double dHp = 2.0 * sqrt(C1p * C2p) * sin(dhp / 2.0);
    double Lpm = 0.5 * (L1 + L2), Cpm = 0.5 * (C1p + C2p);
    double hpm = h1p + h2p;
    if (C1p * C2p != 0.0) {
        if (fabs(h1p - h2p) <= pi)
            hpm = 0.5 * (h1p + h2p);
        else if (h1p + h2p < 2.0 * pi)
            hpm = 0.5 * (h1p + h2p + 2.0 * pi);
        else
            hpm = 0.5 * (h1p + h2p - 2.0 * pi);
    }
    double T = 1.0 - 0.17 * cos(hpm - pi / 6.0) + 0.24 * cos(2.0 * hpm) + 0.32 * cos(3.0 * hpm + pi / 30.0) -
               0.20 * cos(4.0 * hpm - 63.0 * pi / 180.0);
    double dtheta = (30.0 * pi / 180.0) * exp(-pow((hpm * 180.0 / pi - 275.0) / 25.0, 2.0));
    double Cpm7 = pow(Cpm, 7.0);
    double Rc = 2.0 * sqrt(Cpm7 / (Cpm7 + 6103515625.0));
    double Sl = 1.0 + 0.015 * (Lpm - 50.0) * (Lpm - 50.0) / sqrt(20.0 + (Lpm - 50.0) * (Lpm - 50.0));
    double Sc = 1.0 + 0.045 * Cpm, Sh = 1.0 + 0.015 * Cpm * T;
    double Rt = -sin(2.0 * dtheta) * Rc;
    double l = dLp / Sl, c = dCp / Sc, hh = dHp / Sh;
    return sqrt(l * l + c * c + hh * hh + Rt * c * hh);
}

static bool skin_colour(float r, float g, float b)
{
    float y = 0.299f * r + 0.587f * g + 0.114f * b;
    float cb = 128.0f - 0.168736f * r - 0.331264f * g + 0.5f * b;
    float cr = 128.0f + 0.5f * r - 0.418688f * g - 0.081312f * b;
    return y >= 25.0f && cb >= 70.0f && cb <= 135.0f && cr >= 130.0f && cr <= 185.0f;
}

/* Connected components (4-neighbour) of cells with v[i] == val on a cw x ch grid: ids in lab
 * (-1 for other cells); returns the count, sizes in *sizes (caller frees), -1 on OOM. */
static int components(const uint8_t *v, uint8_t val, int cw, int ch, int *lab, int **sizes, bool **touches)
{
    size_t n = (size_t)cw * ch;
    int *stack = malloc(n * sizeof *stack);
    int cap = 64, count = 0;
    int *sz = malloc((size_t)cap * sizeof *sz);
    bool *tb = malloc((size_t)cap * sizeof *tb);
    if (!stack || !sz || !tb) {
        free(stack);
        free(sz);
        free(tb);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        lab[i] = -1;
    for (size_t s = 0; s < n; s++) {
        if (v[s] != val || lab[s] >= 0)
            continue;
        if (count == cap) {
            cap *= 2;
            int *nsz = realloc(sz, (size_t)cap * sizeof *sz);
            bool *ntb = realloc(tb, (size_t)cap * sizeof *tb);
            if (!nsz || !ntb) {
                free(nsz ? nsz : sz);
                free(ntb ? ntb : tb);
                free(stack);
                return -1;
            }
            sz = nsz;
            tb = ntb;
        }
        int top = 0, size = 0;
        bool touch = false;
        stack[top++] = (int)s;
        lab[s] = count;
        while (top > 0) {
            int i = stack[--top];
            size++;
            int x = i % cw, y = i / cw;
            if (x == 0 || y == 0 || x == cw - 1 || y == ch - 1)
                touch = true;
            int nb[4] = { x > 0 ? i - 1 : -1, x < cw - 1 ? i + 1 : -1, y > 0 ? i - cw : -1, y < ch - 1 ? i + cw : -1 };
            for (int k = 0; k < 4; k++) {
                int j = nb[k];
                if (j >= 0 && v[j] == val && lab[j] < 0) {
                    lab[j] = count;
                    stack[top++] = j;
                }
            }
        }
        sz[count] = size;
        tb[count] = touch;
        count++;
    }
    free(stack);
    *sizes = sz;
    *touches = tb;
    return count;
}

/* Skin and dark masks on the block grid, and the skin level (75th percentile of ln G). */
static bcd_status block_stats(const bcd__spotmap *m, const bcd__plane *lg, int cw, int ch, uint8_t *skin,
                              uint8_t *dark, float *level)
{
    size_t nb0 = (size_t)cw * ch;
    float *tex = malloc(nb0 * sizeof *tex), *tex5 = malloc(nb0 * sizeof *tex5), *gmean = malloc(nb0 * sizeof *gmean);
    if (!tex || !tex5 || !gmean) {
        free(tex);
        free(tex5);
        free(gmean);
        return BCD_ENOMEM;
    }
    int w = m->w, h = m->h;
    float vals[BLOCK * BLOCK];
    for (int by = 0; by < ch; by++) {
        for (int bx = 0; bx < cw; bx++) {
            double s[3] = { 0, 0, 0 };
            int n = 0, clipped = 0;
            for (int y = by * BLOCK; y < (by + 1) * BLOCK && y < h; y++) {
                for (int x = bx * BLOCK + (y & 1); x < (bx + 1) * BLOCK && x < w; x += 2) {
                    size_t i = (size_t)y * w + x;
                    float r = m->c[0]->px[i], g = m->c[1]->px[i], b = m->c[2]->px[i];
                    s[0] += r;
                    s[1] += g;
                    s[2] += b;
                    /* spots are found in green: a red channel clipped on fair skin in
                     * bright light hides no spot (its colour is judged apart, on the skin
                     * around each lesion) */
                    if (g >= 250.0f)
                        clipped++;
                    vals[n++] = lg->px[i];
                }
            }
            size_t bi = (size_t)by * cw + bx;
            double mu = 0, var = 0;
            for (int k = 0; k < n; k++)
                mu += vals[k];
            mu /= n;
            for (int k = 0; k < n; k++)
                var += (vals[k] - mu) * (vals[k] - mu);
            tex[bi] = (float)sqrt(var / n);
            gmean[bi] = (float)(s[1] / n);
            level[bi] = bcd__detect_quantile(vals, (size_t)n, 0.75);
            skin[bi] = skin_colour((float)(s[0] / n), (float)(s[1] / n), (float)(s[2] / n)) ? 1 : 0;
            dark[bi] = clipped * 3 > n ? 1 : 0;
        }
    }
    /* texture: the median over 5 x 5 blocks of each block's spread of ln G. Skin is smooth
     * between its spots (a few blocks with a spot do not move the median); hair, fabric
     * and foliage are textured everywhere */
    for (int by = 0; by < ch; by++)
        for (int bx = 0; bx < cw; bx++) {
            float win[25];
            int n = 0;
            for (int dy = -2; dy <= 2; dy++)
                for (int dx = -2; dx <= 2; dx++) {
                    int xx = bx + dx, yy = by + dy;
                    if (xx >= 0 && yy >= 0 && xx < cw && yy < ch)
                        win[n++] = tex[(size_t)yy * cw + xx];
                }
            tex5[(size_t)by * cw + bx] = bcd__detect_median(win, (size_t)n);
        }
    /* the skin's own grain (pores, sensor noise) spreads ln G more where the skin is darker:
     * dark skin, or skin in shade, is not hair for it */
    for (size_t i = 0; i < nb0; i++)
        if (tex5[i] > HAIR_TEXTURE * fminf(HAIR_MAX_RELAX, fmaxf(1.0f, HAIR_REF_G / fmaxf(gmean[i], 1.0f))))
            skin[i] = 0;
    free(tex);
    free(tex5);
    free(gmean);
    /* fill holes (non-skin areas enclosed by skin, up to 2 % of the frame) and drop specks */
    size_t nb = (size_t)cw * ch;
    int *lab = malloc(nb * sizeof *lab);
    if (!lab)
        return BCD_ENOMEM;
    for (int pass = 0; pass < 2; pass++) {
        uint8_t val = pass == 0 ? 0 : 1;
        int *sizes = NULL;
        bool *touch = NULL;
        int nc = components(skin, val, cw, ch, lab, &sizes, &touch);
        if (nc < 0) {
            free(lab);
            return BCD_ENOMEM;
        }
        for (size_t i = 0; i < nb; i++) {
            int c = lab[i];
            if (c < 0)
                continue;
            if (pass == 0 && !touch[c] && sizes[c] <= (int)(nb / 50))
                skin[i] = 1; /* a hole */
            if (pass == 1 && sizes[c] < (int)(nb / 200) + 1)
                skin[i] = 0; /* a speck */
        }
        free(sizes);
        free(touch);
    }
    free(lab);
    /* deep shadow: a skin level a quarter of the skin's median or less */
    float *tmp = malloc(nb * sizeof *tmp);
    if (!tmp)
        return BCD_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < nb; i++)
        if (skin[i])
            tmp[k++] = level[i];
    float med = k ? bcd__detect_median(tmp, k) : 0.0f;
    free(tmp);
    /* ... over an area larger than a mole: a dark patch of a few blocks inside the skin is
     * a large spot, which must be found and compared, not left out as a shadow */
    uint8_t *shadow = calloc(nb, 1);
    int *lab2 = malloc(nb * sizeof *lab2);
    if (!shadow || !lab2) {
        free(shadow);
        free(lab2);
        return BCD_ENOMEM;
    }
    for (size_t i = 0; i < nb; i++)
        shadow[i] = skin[i] && level[i] < med - 1.386f;
    int *sizes = NULL;
    bool *touch = NULL;
    int nc = components(shadow, 1, cw, ch, lab2, &sizes, &touch);
    if (nc < 0) {
        free(shadow);
        free(lab2);
        return BCD_ENOMEM;
    }
    double side = MIN_SHADOW * (cw > ch ? cw : ch);
    int min_blocks = (int)(side * side) + 1;
    for (size_t i = 0; i < nb; i++)
        if (shadow[i] && sizes[lab2[i]] >= min_blocks)
            dark[i] = 1;
    free(sizes);
    free(touch);
    free(shadow);
    free(lab2);
    return BCD_OK;
}

/* The skin level: blocks raised to their 5 x 5 median, smoothed over the skin. */
static bcd_status skin_level(float *level, const uint8_t *skin, int cw, int ch)
{
    size_t nb = (size_t)cw * ch;
    float *raised = malloc(nb * sizeof *raised);
    float *num = malloc(nb * sizeof *num), *den = malloc(nb * sizeof *den);
    if (!raised || !num || !den) {
        free(raised);
        free(num);
        free(den);
        return BCD_ENOMEM;
    }
    float win[25];
    for (int y = 0; y < ch; y++) {
        for (int x = 0; x < cw; x++) {
            int n = 0;
            for (int dy = -2; dy <= 2; dy++)
                for (int dx = -2; dx <= 2; dx++) {
                    int xx = x + dx, yy = y + dy;
                    if (xx >= 0 && yy >= 0 && xx < cw && yy < ch && skin[(size_t)yy * cw + xx])
                        win[n++] = level[(size_t)yy * cw + xx];
                }
            size_t i = (size_t)y * cw + x;
            float v = level[i];
            if (n >= 5) {
                float md = bcd__detect_median(win, (size_t)n);
                if (v < md)
                    v = md;
            }
            raised[i] = v;
        }
    }
    /* normalized convolution with a 5-tap binomial kernel, twice (sigma ~1.4 blocks) */
    static const float k5[5] = { 1, 4, 6, 4, 1 };
    for (size_t i = 0; i < nb; i++) {
        float wgt = skin[i] ? 1.0f : 0.02f;
        num[i] = raised[i] * wgt;
        den[i] = wgt;
    }
    float *t1 = raised; /* reused as scratch */
    for (int it = 0; it < 2; it++) {
        float *planes[2] = { num, den };
        for (int p = 0; p < 2; p++) {
            float *a = planes[p];
            for (int y = 0; y < ch; y++)
                for (int x = 0; x < cw; x++) {
                    float s = 0;
                    for (int d = -2; d <= 2; d++) {
                        int xx = x + d < 0 ? 0 : (x + d >= cw ? cw - 1 : x + d);
                        s += k5[d + 2] * a[(size_t)y * cw + xx];
                    }
                    t1[(size_t)y * cw + x] = s / 16.0f;
                }
            for (int y = 0; y < ch; y++)
                for (int x = 0; x < cw; x++) {
                    float s = 0;
                    for (int d = -2; d <= 2; d++) {
                        int yy = y + d < 0 ? 0 : (y + d >= ch ? ch - 1 : y + d);
                        s += k5[d + 2] * t1[(size_t)yy * cw + x];
                    }
                    a[(size_t)y * cw + x] = s / 16.0f;
                }
        }
    }
    for (size_t i = 0; i < nb; i++)
        level[i] = den[i] > 0.0f ? num[i] / den[i] : level[i];
    free(raised);
    free(num);
    free(den);
    return BCD_OK;
}

static double to_photo_x(const bcd__spotmap *m, double x)
{
    return (x + 0.5) / m->fx - 0.5;
}

static double to_photo_y(const bcd__spotmap *m, double y)
{
    return (y + 0.5) / m->fy - 0.5;
}

/* Scratch of region growing. */
struct grow {
    int *stack;  /* pixel indices of the region */
    uint32_t *stamp;
    uint32_t tick;
    uint8_t *claimed; /* may be NULL (probe) */
};

/* Grow the region of pixels >= thr connected (8) to seed, not claimed, on skin, at most
 * max_px pixels. Returns its size (max_px + 1 when it ran over). Members get stamp tick. */
static int grow_region(const bcd__spotmap *m, struct grow *g, int seed, float thr, int max_px)
{
    int w = m->w, h = m->h;
    const float *con = m->con->px;
    int n = 0, head = 0;
    g->stack[n++] = seed;
    g->stamp[seed] = g->tick;
    while (head < n) {
        int i = g->stack[head++];
        int x = i % w, y = i / w;
        for (int dy = -1; dy <= 1; dy++) {
            int yy = y + dy;
            if (yy < 0 || yy >= h)
                continue;
            for (int dx = -1; dx <= 1; dx++) {
                int xx = x + dx;
                if (xx < 0 || xx >= w || (dx == 0 && dy == 0))
                    continue;
                int j = yy * w + xx;
                if (g->stamp[j] == g->tick || con[j] < thr || !m->skin[j] || (g->claimed && g->claimed[j]))
                    continue;
                if (n >= max_px)
                    return max_px + 1;
                g->stamp[j] = g->tick;
                g->stack[n++] = j;
            }
        }
    }
    return n;
}

static bool in_region(const bcd__spotmap *m, const struct grow *g, int x, int y)
{
    return x >= 0 && y >= 0 && x < m->w && y < m->h && g->stamp[(size_t)y * m->w + x] == g->tick;
}

/* Measure the region in g->stack[0..n) into s; false when it is not a spot. */
static bool measure(const bcd__spotmap *m, const struct grow *g, int n, bcd__spot *s, bool strict)
{
    int w = m->w;
    const float *con = m->con->px;
    double sw = 0, sx = 0, sy = 0, mx = 0, my = 0, peak = 0, csum = 0;
    int x0 = w, y0 = m->h, x1 = -1, y1 = -1;
    for (int k = 0; k < n; k++) {
        int i = g->stack[k], x = i % w, y = i / w;
        double c = con[i];
        if (c > peak)
            peak = c;
        csum += c;
        double wt = c > 0 ? c : 0;
        sw += wt;
        sx += wt * x;
        sy += wt * y;
        mx += x;
        my += y;
        x0 = x < x0 ? x : x0;
        x1 = x > x1 ? x : x1;
        y0 = y < y0 ? y : y0;
        y1 = y > y1 ? y : y1;
    }
    mx /= n;
    my /= n;
    double cx = sw > 0 ? sx / sw : mx, cy = sw > 0 ? sy / sw : my;
    double cxx = 0, cyy = 0, cxy = 0;
    for (int k = 0; k < n; k++) {
        int i = g->stack[k];
        double dx = i % w - mx, dy = i / w - my;
        cxx += dx * dx;
        cyy += dy * dy;
        cxy += dx * dy;
    }
    /* a pixel is a unit square: add its own second moment (1/12) */
    cxx = cxx / n + 1.0 / 12.0;
    cyy = cyy / n + 1.0 / 12.0;
    cxy /= n;
    double tr = cxx + cyy, det = cxx * cyy - cxy * cxy;
    double disc = sqrt(fmax(tr * tr / 4.0 - det, 0.0));
    double l1 = tr / 2.0 + disc, l2 = fmax(tr / 2.0 - disc, 1e-6);
    double major = 4.0 * sqrt(l1), minor = 4.0 * sqrt(l2);
    double fill = n / (M_PI / 4.0 * major * minor);
    double maxd = MAX_DIAMETER * (m->w > m->h ? m->w : m->h);
    if (strict && (n < MIN_PIXELS || minor / major < MIN_AXIS_RATIO || fill < MIN_FILL))
        return false;
    if (n < 2 || major > maxd * 1.3)
        return false;
    /* longest diameter: extent along 8 directions */
    double feret = 0;
    for (int d = 0; d < 8; d++) {
        double a = d * M_PI / 8.0, ca = cos(a), sa = sin(a);
        double lo = 1e30, hi = -1e30;
        for (int k = 0; k < n; k++) {
            int i = g->stack[k];
            double p = (i % w) * ca + (i / w) * sa;
            lo = p < lo ? p : lo;
            hi = p > hi ? p : hi;
        }
        /* a pixel's own extent along the direction */
        double ext = hi - lo + fabs(ca) + fabs(sa);
        if (ext > feret)
            feret = ext;
    }
    if (feret > maxd)
        return false;
    /* perimeter, asymmetry, colour */
    int perim = 0, unmatched = 0;
    double lin[3] = { 0, 0, 0 };
    for (int k = 0; k < n; k++) {
        int i = g->stack[k], x = i % w, y = i / w;
        if (!in_region(m, g, x - 1, y) || !in_region(m, g, x + 1, y) || !in_region(m, g, x, y - 1) ||
            !in_region(m, g, x, y + 1))
            perim++;
        int rx = (int)lround(2.0 * mx - x), ry = (int)lround(2.0 * my - y);
        if (!in_region(m, g, rx, ry))
            unmatched++;
        for (int c = 0; c < 3; c++)
            lin[c] += bcd__srgb_to_linear(m->c[c]->px[i]);
    }
    for (int c = 0; c < 3; c++)
        lin[c] /= n;
    /* the ring around the spot: visible skin, not another spot */
    double req = sqrt(n / M_PI);
    double rin = 1.5 * req + 1.5, rout = 2.5 * req + 3.0;
    int r0 = (int)ceil(rout);
    int ring = 0, ring_skin = 0;
    double skin_lin[3] = { 0, 0, 0 };
    int nskin = 0;
    for (int dy = -r0; dy <= r0; dy++) {
        int y = (int)lround(cy) + dy;
        for (int dx = -r0; dx <= r0; dx++) {
            int x = (int)lround(cx) + dx;
            double d2 = (x - cx) * (x - cx) + (y - cy) * (y - cy);
            if (d2 < rin * rin || d2 > rout * rout)
                continue;
            ring++;
            if (x < 0 || y < 0 || x >= m->w || y >= m->h)
                continue;
            size_t i = (size_t)y * w + x;
            if (!m->skin[i] || m->dark[i])
                continue;
            ring_skin++;
            if (con[i] < m->t_grow) {
                for (int c = 0; c < 3; c++)
                    skin_lin[c] += bcd__srgb_to_linear(m->c[c]->px[i]);
                nskin++;
            }
        }
    }
    if (strict && (ring == 0 || ring_skin < MIN_RING_SKIN * ring || nskin < 4))
        return false;
    /* no pigment darkens skin this much: a gap, a fold's shadow, dark fabric */
    if (strict && peak > MAX_CONTRAST)
        return false;
    if (nskin == 0)
        return false;
    for (int c = 0; c < 3; c++)
        skin_lin[c] /= nskin;
    memset(s, 0, sizeof *s);
    double f = 1.0 / m->fx;
    s->x = to_photo_x(m, cx);
    s->y = to_photo_y(m, cy);
    s->area = n / (m->fx * m->fy);
    s->diameter = feret * f;
    s->major = major * f;
    s->minor = minor * f;
    s->contrast = peak;
    s->mean_contrast = csum / n;
    for (int c = 0; c < 3; c++) {
        s->rgb[c] = lin[c];
        s->skin_rgb[c] = skin_lin[c];
    }
    bcd__linear_to_lab(lin, s->lab);
    bcd__linear_to_lab(skin_lin, s->skin_lab);
    double se = 0;
    for (int k = 0; k < n; k++) {
        int i = g->stack[k];
        double p[3], lab[3];
        for (int c = 0; c < 3; c++)
            p[c] = bcd__srgb_to_linear(m->c[c]->px[i]);
        bcd__linear_to_lab(p, lab);
        se += (lab[0] - s->lab[0]) * (lab[0] - s->lab[0]) + (lab[1] - s->lab[1]) * (lab[1] - s->lab[1]) +
              (lab[2] - s->lab[2]) * (lab[2] - s->lab[2]);
    }
    s->spread = sqrt(se / n);
    s->irregularity = (double)perim * perim / (4.0 * M_PI * n);
    s->asymmetry = (double)unmatched / n;
    s->strength = peak * sqrt((double)n);
    s->ax0 = x0;
    s->ay0 = y0;
    s->ax1 = x1;
    s->ay1 = y1;
    return true;
}

struct seed {
    float v;
    int i;
};

static int cmp_seed_desc(const void *a, const void *b)
{
    float x = ((const struct seed *)a)->v, y = ((const struct seed *)b)->v;
    return (x < y) - (x > y);
}

static int cmp_spot_strength(const void *a, const void *b)
{
    double x = ((const bcd__spot *)a)->strength, y = ((const bcd__spot *)b)->strength;
    return (x < y) - (x > y);
}

/* A spot whose centre lies inside a larger spot is part of it (a mole's darker core, a
 * second peak of one mole): only the larger is kept. So is a faint one just beside a
 * much darker one. */
static void drop_nested(bcd__spotmap *m)
{
    size_t k = 0;
    for (size_t i = 0; i < m->n; i++) {
        const bcd__spot *a = &m->spots[i];
        bool inner = false;
        for (size_t j = 0; j < m->n && !inner; j++) {
            const bcd__spot *b = &m->spots[j];
            if (j == i || b->area < a->area || (b->area == a->area && j > i))
                continue;
            inner = hypot(a->x - b->x, a->y - b->y) < 0.5 * b->diameter;
        }
        /* a faint satellite on the skirt of a much darker spot (its soft edge and the
         * noise on it) */
        for (size_t j = 0; j < m->n && !inner; j++) {
            const bcd__spot *b = &m->spots[j];
            if (j != i && b->contrast >= 3.0 * a->contrast &&
                hypot(a->x - b->x, a->y - b->y) < 0.5 * b->diameter + a->diameter + 2.0 / m->fx)
                inner = true;
        }
        if (!inner)
            m->spots[k++] = *a;
    }
    m->n = k;
}

/* The dots plane: each spot a Gaussian of its own size (at least DOT_SIGMA analysis
 * pixels, so that a sparse sampling still sees it), as dark as its contrast (capped). */
static bcd_status draw_dots(bcd__spotmap *m)
{
    m->dots = bcd__plane_new(m->w, m->h);
    if (!m->dots)
        return BCD_ENOMEM;
    memset(m->dots->px, 0, (size_t)m->w * m->h * sizeof(float));
    for (size_t k = 0; k < m->n; k++) {
        const bcd__spot *s = &m->spots[k];
        double cx = (s->x + 0.5) * m->fx - 0.5, cy = (s->y + 0.5) * m->fy - 0.5;
        double sg = fmax(0.25 * s->diameter * m->fx, DOT_SIGMA), amp = fmin(s->contrast, 0.6);
        int r = (int)ceil(3 * sg);
        for (int y = (int)cy - r; y <= (int)cy + r; y++) {
            if (y < 0 || y >= m->h)
                continue;
            for (int x = (int)cx - r; x <= (int)cx + r; x++) {
                if (x < 0 || x >= m->w)
                    continue;
                double d2 = (x - cx) * (x - cx) + (y - cy) * (y - cy);
                float v = (float)(amp * exp(-d2 / (2 * sg * sg)));
                float *px = &m->dots->px[(size_t)y * m->w + x];
                if (v > *px)
                    *px = v;
            }
        }
    }
    return BCD_OK;
}

void bcd__spotmap_clear(bcd__spotmap *m)
{
    if (!m)
        return;
    for (int c = 0; c < 3; c++)
        bcd__plane_free(m->c[c]);
    bcd__plane_free(m->con);
    bcd__plane_free(m->dots);
    free(m->skin);
    free(m->dark);
    free(m->spots);
    free(m->stamp);
    memset(m, 0, sizeof *m);
}

bcd_status bcd__spots_find(bcd__spotmap *out, const bcd_image *img, int long_side, uint32_t photo_w, uint32_t photo_h)
{
    memset(out, 0, sizeof *out);
    if (long_side <= 0)
        long_side = BCD__SPOT_SIDE;
    bcd__work wk;
    bcd_status st = bcd__work_load(&wk, img, long_side);
    if (st != BCD_OK)
        return st;
    bcd__spotmap *m = out;
    m->w = wk.w;
    m->h = wk.h;
    m->fx = wk.fx;
    m->fy = wk.fy;
    m->ow = wk.ow;
    m->oh = wk.oh;
    if (photo_w && photo_h) {
        /* img is the photo decoded at a reduced scale: positions in the photo's own pixels */
        m->ow = photo_w;
        m->oh = photo_h;
        m->fx = (double)wk.w / photo_w;
        m->fy = (double)wk.h / photo_h;
    }
    for (int c = 0; c < 3; c++) {
        m->c[c] = wk.c[c];
        wk.c[c] = NULL;
    }
    int w = m->w, h = m->h;
    size_t np = (size_t)w * h;
    int cw = (w + BLOCK - 1) / BLOCK, ch = (h + BLOCK - 1) / BLOCK;
    size_t nb = (size_t)cw * ch;
    bcd__plane *lg = bcd__plane_new(w, h);
    uint8_t *bskin = malloc(nb), *bdark = malloc(nb);
    float *level = malloc(nb * sizeof *level);
    m->skin = malloc(np);
    m->dark = malloc(np);
    m->con = bcd__plane_new(w, h);
    if (!lg || !bskin || !bdark || !level || !m->skin || !m->dark || !m->con) {
        st = BCD_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < np; i++)
        lg->px[i] = logf(m->c[1]->px[i] + 1.0f);
    st = block_stats(m, lg, cw, ch, bskin, bdark, level);
    if (st != BCD_OK)
        goto done;
    st = skin_level(level, bskin, cw, ch);
    if (st != BCD_OK)
        goto done;
    /* ln G lightly smoothed (pixel noise, JPEG blocks), against the interpolated level */
    {
        bcd__plane *sm = bcd__plane_blur(lg, 0.7f);
        if (!sm) {
            st = BCD_ENOMEM;
            goto done;
        }
        size_t nskin = 0;
        for (int y = 0; y < h; y++) {
            float v = (y + 0.5f) / BLOCK - 0.5f;
            v = v < 0 ? 0 : (v > ch - 1 ? (float)(ch - 1) : v);
            for (int x = 0; x < w; x++) {
                float u = (x + 0.5f) / BLOCK - 0.5f;
                u = u < 0 ? 0 : (u > cw - 1 ? (float)(cw - 1) : u);
                size_t i = (size_t)y * w + x, bi = (size_t)(y / BLOCK) * cw + x / BLOCK;
                bcd__bilinear b = bcd__bilinear_at(cw, ch, u, v);
                float lv = (cw >= 2 && ch >= 2) ? bcd__bilinear_sample(level, &b) : level[bi];
                m->con->px[i] = lv - sm->px[i];
                m->skin[i] = bskin[bi];
                m->dark[i] = bdark[bi];
                nskin += bskin[bi] && !bdark[bi];
            }
        }
        bcd__plane_free(sm);
        m->skin_fraction = (double)nskin / (double)np;
        /* re-centre on the skin's median, noise from its spread (every 3rd pixel) */
        float *v = malloc((np / 3 + 1) * sizeof *v);
        if (!v) {
            st = BCD_ENOMEM;
            goto done;
        }
        size_t k = 0;
        for (size_t i = 0; i < np; i += 3)
            if (m->skin[i] && !m->dark[i])
                v[k++] = m->con->px[i];
        float med = k ? bcd__detect_median(v, k) : 0.0f;
        for (size_t i = 0; i < k; i++)
            v[i] = fabsf(v[i] - med);
        float mad = k ? bcd__detect_median(v, k) : 0.0f;
        free(v);
        for (size_t i = 0; i < np; i++)
            m->con->px[i] -= med;
        m->noise = 1.4826 * mad;
    }
    m->t_seed = fmax(0.08, 4.5 * m->noise);
    m->t_grow = fmax(0.04, 2.2 * m->noise);
    /* seeds, darkest first */
    {
        size_t ns = 0;
        for (size_t i = 0; i < np; i++)
            if (m->con->px[i] >= m->t_seed && m->skin[i] && !m->dark[i])
                ns++;
        struct seed *seeds = malloc((ns + 1) * sizeof *seeds);
        m->stamp = calloc(np, sizeof(uint32_t));
        struct grow g = { malloc(np * sizeof(int)), m->stamp, 0, calloc(np, 1) };
        size_t cap = 256;
        m->spots = malloc(cap * sizeof *m->spots);
        if (!seeds || !g.stack || !g.stamp || !g.claimed || !m->spots) {
            free(seeds);
            free(g.stack);
            free(g.claimed);
            st = BCD_ENOMEM;
            goto done;
        }
        ns = 0;
        for (size_t i = 0; i < np; i++)
            if (m->con->px[i] >= m->t_seed && m->skin[i] && !m->dark[i])
                seeds[ns++] = (struct seed){ m->con->px[i], (int)i };
        qsort(seeds, ns, sizeof *seeds, cmp_seed_desc);
        double maxd = MAX_DIAMETER * (w > h ? w : h);
        int max_px = (int)(maxd * maxd);
        for (size_t s = 0; s < ns; s++) {
            int i = seeds[s].i;
            if (g.claimed[i])
                continue;
            float thr = 0.5f * seeds[s].v;
            if (thr < m->t_grow)
                thr = (float)m->t_grow;
            g.tick++;
            int n = grow_region(m, &g, i, thr, max_px);
            int keep = n > max_px ? max_px : n;
            for (int k = 0; k < keep; k++)
                g.claimed[g.stack[k]] = 1;
            g.claimed[i] = 1;
            if (n > max_px)
                continue;
            bcd__spot sp;
            if (!measure(m, &g, n, &sp, true))
                continue;
            /* the claimed area stretches to the growing threshold so that the skirt of a
             * spot does not seed another */
            if (m->n == cap) {
                cap *= 2;
                bcd__spot *ns2 = realloc(m->spots, cap * sizeof *ns2);
                if (!ns2) {
                    st = BCD_ENOMEM;
                    break;
                }
                m->spots = ns2;
            }
            m->spots[m->n++] = sp;
            g.tick++;
            int n2 = grow_region(m, &g, i, (float)m->t_grow, max_px);
            for (int k = 0; k < (n2 > max_px ? max_px : n2); k++)
                g.claimed[g.stack[k]] = 1;
        }
        free(seeds);
        free(g.stack);
        free(g.claimed);
        m->tick = g.tick;
        if (st == BCD_OK)
            drop_nested(m);
        if (st == BCD_OK && m->n > 1)
            qsort(m->spots, m->n, sizeof *m->spots, cmp_spot_strength);
    }
    if (st == BCD_OK)
        st = draw_dots(m);
done:
    bcd__plane_free(lg);
    free(bskin);
    free(bdark);
    free(level);
    if (st != BCD_OK)
        bcd__spotmap_clear(m);
    return st;
}

double bcd__spots_probe(const bcd__spotmap *m, double x, double y, double radius, double min_contrast,
                        bcd__spot *out, bool *found)
{
    *found = false;
    double ax = (x + 0.5) * m->fx - 0.5, ay = (y + 0.5) * m->fy - 0.5, r = radius * m->fx;
    if (r < 1.5)
        r = 1.5;
    int cx = (int)lround(ax), cy = (int)lround(ay);
    if (cx < 0 || cy < 0 || cx >= m->w || cy >= m->h)
        return NAN;
    size_t ci = (size_t)cy * m->w + cx;
    if (!m->skin[ci] || m->dark[ci])
        return NAN;
    int ri = (int)ceil(r);
    float best = -1e30f;
    int bi = -1;
    for (int dy = -ri; dy <= ri; dy++) {
        int yy = cy + dy;
        if (yy < 0 || yy >= m->h)
            continue;
        for (int dx = -ri; dx <= ri; dx++) {
            int xx = cx + dx;
            if (xx < 0 || xx >= m->w || dx * dx + dy * dy > r * r)
                continue;
            size_t i = (size_t)yy * m->w + xx;
            if (!m->skin[i] || m->dark[i])
                continue;
            if (m->con->px[i] > best) {
                best = m->con->px[i];
                bi = (int)i;
            }
        }
    }
    if (bi < 0)
        return NAN;
    if (best < min_contrast || best <= 0.0f)
        return best > 0.0f ? best : 0.0;
    double maxd = MAX_DIAMETER * (m->w > m->h ? m->w : m->h);
    int max_px = (int)(maxd * maxd);
    int sz = (int)(4 * r + 8);
    int cap = sz * sz < max_px ? sz * sz : max_px;
    bcd__spotmap *mm = (bcd__spotmap *)m; /* scratch only: see lesion_internal.h */
    if (!mm->stamp) {
        mm->stamp = calloc((size_t)m->w * m->h, sizeof(uint32_t));
        if (!mm->stamp)
            return best;
    }
    struct grow g = { malloc((size_t)cap * sizeof(int)), mm->stamp, ++mm->tick, NULL };
    if (!g.stack)
        return best;
    float thr = 0.5f * best;
    if (thr < 0.6f * m->t_grow)
        thr = 0.6f * (float)m->t_grow;
    int n = grow_region(m, &g, bi, thr, cap);
    if (n <= cap && measure(m, &g, n, out, false))
        *found = true;
    free(g.stack);
    return best;
}

double bcd__spots_skin_level(const bcd__spotmap *m, double x, double y, double radius)
{
    double ax = (x + 0.5) * m->fx - 0.5, ay = (y + 0.5) * m->fy - 0.5, r = radius * m->fx;
    if (r < 3)
        r = 3;
    int ri = (int)ceil(r), cx = (int)lround(ax), cy = (int)lround(ay);
    double s = 0;
    int n = 0;
    for (int dy = -ri; dy <= ri; dy += 2) {
        int yy = cy + dy;
        if (yy < 0 || yy >= m->h)
            continue;
        for (int dx = -ri; dx <= ri; dx += 2) {
            int xx = cx + dx;
            if (xx < 0 || xx >= m->w || dx * dx + dy * dy > r * r)
                continue;
            size_t i = (size_t)yy * m->w + xx;
            if (!m->skin[i] || m->con->px[i] >= m->t_grow)
                continue;
            s += bcd__srgb_to_linear(m->c[1]->px[i]);
            n++;
        }
    }
    return n ? s / n : NAN;
}
