/*
 * The local change map of an aligned, photometrically matched pair (working size).
 *
 * Per pixel, each photo gives a colour in log-opponent space (lightly blurred):
 *   L = ln(Y + 16)                 log luma, Y = 0.299 R + 0.587 G + 0.114 B
 *   A = ln(R + 48) - ln(G + 48)    red-green
 *   B = (ln(R + 48) + ln(G + 48)) / 2 - ln(B + 48)   yellow-blue
 * (the chroma offset is larger: in dark areas JPEG and noise move the ratios of small
 * values a lot)
 * and a local contrast T = local RMS of L minus its blur (texture). The difference is
 *   d(x) = min over the 3×3 neighbours u of |c(x) - p(x + u)|, and the same with the
 *          roles swapped; the larger of the two (a symmetric, misalignment-tolerant
 *          distance: an edge displaced by under a pixel finds its match),
 *   |c - p|^2 = dL^2 + WC^2 (dA^2 + dB^2), and D^2 = d^2 + WT^2 dT^2.
 * The noise level s is the median of D over the overlap; the evidence map is
 *   e(x) = max(0, D(x) - tau),  tau = max(K_NOISE s, MIN_TAU),
 * in log units above the noise floor. Connected areas of the smoothed evidence
 * become regions; a region's evidence is 1000 * sum(e) / (pixels of the frame): its
 * area in per mille of the frame times its mean excess contrast, so it is independent
 * of the working size. local_change is a logistic of the largest region evidence.
 */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "detect_internal.h"

#define OFFSET 16.0f   /* luma: ln(Y + OFFSET) */
#define C_OFFSET 48.0f /* chroma */
#define WC 2.0f        /* chroma weight: a red or brown shift is small in log units */
#define WT 1.0f        /* texture weight */
#define K_NOISE 3.0
#define MIN_TAU 0.05
#define MARGIN 3       /* pixels dropped along the overlap's border */
#define LABEL_SIGMA 2.0f
#define LABEL_THRESHOLD 0.01f
#define MIN_REGION_EVIDENCE 0.02
#define MAX_REGIONS 16
/* local_change = 1 / (1 + exp(-SLOPE (ln E - ln MID))). On the benchmark
 * (tests/bench/detect_bench.py, seed 2) nuisance-only pairs reach E ~0.03 (0.15 with
 * nuisances 1.5x stronger) and the faintest real changes E ~0.45: MID sits between,
 * where local_change is 0.5; it is ~0.01 at E = 0.08 and ~0.99 at E = 0.8. */
#define SCORE_MID 0.25
#define SCORE_SLOPE 4.0

double bcd__detect_score(double evidence)
{
    if (!(evidence > 0.0))
        return 0.0;
    return 1.0 / (1.0 + exp(-SCORE_SLOPE * (log(evidence) - log(SCORE_MID))));
}

void bcd__changemap_clear(bcd__changemap *cm)
{
    bcd__plane_free(cm->map);
    free(cm->regions);
    free(cm->cells);
    memset(cm, 0, sizeof *cm);
}

/* Erode a 0/1 mask by r pixels (square structuring element), separably. */
static bool erode(uint8_t *m, int w, int h, int r)
{
    uint8_t *t = malloc((size_t)w * h);
    if (!t)
        return false;
    for (int y = 0; y < h; y++) {
        const uint8_t *s = m + (size_t)y * w;
        uint8_t *d = t + (size_t)y * w;
        int run = 0; /* distance to the last 0 on the left, then right pass */
        for (int x = 0; x < w; x++) {
            run = s[x] ? run + 1 : 0;
            d[x] = (uint8_t)(run > r);
        }
        run = 0;
        for (int x = w - 1; x >= 0; x--) {
            run = s[x] ? run + 1 : 0;
            if (run <= r)
                d[x] = 0;
        }
    }
    for (int x = 0; x < w; x++) {
        int run = 0;
        for (int y = 0; y < h; y++) {
            run = t[(size_t)y * w + x] ? run + 1 : 0;
            m[(size_t)y * w + x] = (uint8_t)(run > r);
        }
        run = 0;
        for (int y = h - 1; y >= 0; y--) {
            run = t[(size_t)y * w + x] ? run + 1 : 0;
            if (run <= r)
                m[(size_t)y * w + x] = 0;
        }
    }
    free(t);
    return true;
}

/* L, A, B planes (blurred) and T (texture) of one photo. */
static bool features(bcd__plane *out[4], bcd__plane *const rgb[3])
{
    int w = rgb[0]->w, h = rgb[0]->h;
    size_t n = (size_t)w * h;
    bcd__plane *raw[3] = { bcd__plane_new(w, h), bcd__plane_new(w, h), bcd__plane_new(w, h) };
    bool ok = raw[0] && raw[1] && raw[2];
    if (ok) {
        const float *r = rgb[0]->px, *g = rgb[1]->px, *b = rgb[2]->px;
        bcd__logtab own;
        const bcd__logtab *lt = bcd__logtab_shared(C_OFFSET, 4, &own);
        for (size_t i = 0; i < n; i++) {
            float lr = bcd__logtab_get(lt, r[i]), lg = bcd__logtab_get(lt, g[i]), lb = bcd__logtab_get(lt, b[i]);
            raw[0]->px[i] = logf(0.299f * r[i] + 0.587f * g[i] + 0.114f * b[i] + OFFSET);
            raw[1]->px[i] = lr - lg;
            raw[2]->px[i] = 0.5f * (lr + lg) - lb;
        }
        for (int c = 0; c < 3 && ok; c++)
            ok = (out[c] = bcd__plane_blur(raw[c], 1.0f)) != NULL;
    }
    if (ok) {
        /* texture: local RMS of L minus its blur at sigma 2 */
        bcd__plane *lb = bcd__plane_blur(raw[0], 2.0f);
        ok = lb != NULL;
        if (ok) {
            for (size_t i = 0; i < n; i++) {
                float d = out[0]->px[i] - lb->px[i];
                lb->px[i] = d * d;
            }
            out[3] = bcd__plane_blur(lb, 2.5f);
            ok = out[3] != NULL;
            if (ok)
                for (size_t i = 0; i < n; i++)
                    out[3]->px[i] = sqrtf(out[3]->px[i]);
        }
        bcd__plane_free(lb);
    }
    for (int c = 0; c < 3; c++)
        bcd__plane_free(raw[c]);
    return ok;
}

/* Directed distance: for each x, min over 3x3 u of the colour distance a(x) - b(x+u). */
static inline float colour_d2(float al, float aa, float ab, bcd__plane *const b[4], size_t j)
{
    float dl = al - b[0]->px[j], da = aa - b[1]->px[j], db = ab - b[2]->px[j];
    return dl * dl + WC * WC * (da * da + db * db);
}

/* One pixel's directed distance, borders clamped: the neighbours that exist, row by row. */
static float directed_at(bcd__plane *const a[4], bcd__plane *const b[4], int w, int h, int x, int y)
{
    size_t i = (size_t)y * w + x;
    float al = a[0]->px[i], aa = a[1]->px[i], ab = a[2]->px[i];
    float best = 1e30f;
    for (int oy = -1; oy <= 1; oy++) {
        int yy = y + oy;
        if (yy < 0 || yy >= h)
            continue;
        for (int ox = -1; ox <= 1; ox++) {
            int xx = x + ox;
            if (xx < 0 || xx >= w)
                continue;
            float d = colour_d2(al, aa, ab, b, (size_t)yy * w + xx);
            if (d < best)
                best = d;
        }
    }
    return best;
}

BCD__WIDE_KERNEL static void directed(float *dst, bcd__plane *const a[4], bcd__plane *const b[4], const uint8_t *valid)
{
    int w = a[0]->w, h = a[0]->h;
    const float *al = a[0]->px, *aa = a[1]->px, *ab = a[2]->px;
    const float *bl = b[0]->px, *ba = b[1]->px, *bb = b[2]->px;
    for (int y = 0; y < h; y++) {
        size_t row = (size_t)y * w;
        if (y == 0 || y == h - 1 || w < 3) {
            for (int x = 0; x < w; x++)
                dst[row + x] = valid[row + x] ? directed_at(a, b, w, h, x, y) : 0.0f;
            continue;
        }
        dst[row] = valid[row] ? directed_at(a, b, w, h, 0, y) : 0.0f;
        dst[row + w - 1] = valid[row + w - 1] ? directed_at(a, b, w, h, w - 1, y) : 0.0f;
        /* inside: all nine neighbours in the order the border case visits them, the
         * minimum kept as "d < best ? d : best", eight pixels at a time (the same
         * operations on each: the same values) */
        int x = 1;
        for (; x + 8 <= w - 1; x += 8) {
            size_t i = row + x;
            bcd__v8f l0, a0, b0, best = { 1e30f, 1e30f, 1e30f, 1e30f, 1e30f, 1e30f, 1e30f, 1e30f };
            memcpy(&l0, al + i, sizeof l0);
            memcpy(&a0, aa + i, sizeof a0);
            memcpy(&b0, ab + i, sizeof b0);
            for (int oy = -1; oy <= 1; oy++) {
                for (int ox = -1; ox <= 1; ox++) {
                    size_t j = (size_t)((ptrdiff_t)i + (ptrdiff_t)oy * w + ox);
                    bcd__v8f vl, va, vb;
                    memcpy(&vl, bl + j, sizeof vl);
                    memcpy(&va, ba + j, sizeof va);
                    memcpy(&vb, bb + j, sizeof vb);
                    bcd__v8f dl = l0 - vl, da = a0 - va, db = b0 - vb;
                    bcd__v8f d = dl * dl + WC * WC * (da * da + db * db);
                    bcd__v8i lt = d < best;
                    best = (bcd__v8f)(((bcd__v8i)d & lt) | ((bcd__v8i)best & ~lt));
                }
            }
            const uint8_t *vm = valid + i;
            bcd__v8i keep = { vm[0], vm[1], vm[2], vm[3], vm[4], vm[5], vm[6], vm[7] };
            keep = keep != 0;
            best = (bcd__v8f)((bcd__v8i)best & keep);
            memcpy(dst + i, &best, sizeof best);
        }
        for (; x < w - 1; x++) {
            size_t i = row + x;
            float l0 = al[i], a0 = aa[i], b0 = ab[i], best = 1e30f;
            for (int oy = -1; oy <= 1; oy++) {
                for (int ox = -1; ox <= 1; ox++) {
                    size_t j = (size_t)((ptrdiff_t)i + (ptrdiff_t)oy * w + ox);
                    float dl = l0 - bl[j], da = a0 - ba[j], db = b0 - bb[j];
                    float d = dl * dl + WC * WC * (da * da + db * db);
                    best = d < best ? d : best;
                }
            }
            dst[i] = valid[i] ? best : 0.0f;
        }
    }
}

struct comp {
    int x0, y0, x1, y1;
    double sum;
};

bcd_status bcd__detect_changemap(bcd__changemap *out, bcd__plane *const C[3], bcd__plane *const P[3],
                                 const uint8_t *mask, int grid)
{
    int w = C[0]->w, h = C[0]->h;
    size_t n = (size_t)w * h;
    bcd__plane *fc[4] = { 0 }, *fp[4] = { 0 };
    uint8_t *valid = malloc(n);
    float *d1 = malloc(n * sizeof(float)), *d2 = malloc(n * sizeof(float));
    int *label = NULL, *stack = NULL;
    bcd__plane *E = bcd__plane_new(w, h), *Es = NULL;
    struct comp *comps = NULL;
    bcd_status st = BCD_ENOMEM;
    memset(out, 0, sizeof *out);
    if (!valid || !d1 || !d2 || !E || !features(fc, C) || !features(fp, P))
        goto done;
    memcpy(valid, mask, n);
    if (!erode(valid, w, h, MARGIN))
        goto done;

    directed(d1, fc, fp, valid);
    directed(d2, fp, fc, valid);
    size_t nv = 0;
    for (size_t i = 0; i < n; i++) {
        if (!valid[i])
            continue;
        float dt = fc[3]->px[i] - fp[3]->px[i];
        float d = (d1[i] > d2[i] ? d1[i] : d2[i]) + WT * WT * dt * dt;
        d1[i] = sqrtf(d);
        d2[nv++] = d1[i];
    }
    double noise = 0.0;
    if (nv > 0)
        noise = bcd__detect_median(d2, nv);
    double tau = K_NOISE * noise > MIN_TAU ? K_NOISE * noise : MIN_TAU;
    for (size_t i = 0; i < n; i++) {
        float e = valid[i] ? d1[i] - (float)tau : 0.0f;
        E->px[i] = e > 0.0f ? e : 0.0f;
    }
    out->noise = noise;

    /* regions: connected components of the smoothed evidence */
    Es = bcd__plane_blur(E, LABEL_SIGMA);
    label = malloc(n * sizeof(int));
    stack = malloc(n * sizeof(int));
    if (!Es || !label || !stack)
        goto done;
    for (size_t i = 0; i < n; i++)
        label[i] = (valid[i] && Es->px[i] > LABEL_THRESHOLD) ? 0 : -1;
    int ncomp = 0, capc = 0;
    double norm = 1000.0 / (double)n;
    for (size_t s = 0; s < n; s++) {
        if (label[s] != 0)
            continue;
        if (ncomp == capc) {
            int nc = capc ? 2 * capc : 64;
            struct comp *t = realloc(comps, (size_t)nc * sizeof *t);
            if (!t)
                goto done;
            comps = t;
            capc = nc;
        }
        struct comp *cp = &comps[ncomp++];
        int id = ncomp;
        cp->x0 = w;
        cp->y0 = h;
        cp->x1 = cp->y1 = -1;
        cp->sum = 0.0;
        size_t sp = 0;
        stack[sp++] = (int)s;
        label[s] = id;
        while (sp > 0) {
            int i = stack[--sp];
            int x = i % w, y = i / w;
            double e = E->px[i];
            cp->sum += e;
            if (e > 0.0) {
                if (x < cp->x0)
                    cp->x0 = x;
                if (x > cp->x1)
                    cp->x1 = x;
                if (y < cp->y0)
                    cp->y0 = y;
                if (y > cp->y1)
                    cp->y1 = y;
            }
            for (int oy = -1; oy <= 1; oy++) {
                int yy = y + oy;
                if (yy < 0 || yy >= h)
                    continue;
                for (int ox = -1; ox <= 1; ox++) {
                    int xx = x + ox;
                    if (xx < 0 || xx >= w)
                        continue;
                    int j = yy * w + xx;
                    if (label[j] == 0) {
                        label[j] = id;
                        stack[sp++] = j;
                    }
                }
            }
        }
        cp->sum *= norm;
    }
    /* strongest regions first */
    int nreg = 0;
    out->regions = malloc(MAX_REGIONS * sizeof *out->regions);
    if (!out->regions)
        goto done;
    double best = 0.0;
    for (int r = 0; r < MAX_REGIONS; r++) {
        int bi = -1;
        for (int i = 0; i < ncomp; i++)
            if (comps[i].x1 >= 0 && comps[i].sum >= MIN_REGION_EVIDENCE && (bi < 0 || comps[i].sum > comps[bi].sum))
                bi = i;
        if (bi < 0)
            break;
        bcd__region *rg = &out->regions[nreg++];
        rg->x0 = comps[bi].x0;
        rg->y0 = comps[bi].y0;
        rg->x1 = comps[bi].x1;
        rg->y1 = comps[bi].y1;
        rg->evidence = comps[bi].sum;
        rg->score = bcd__detect_score(rg->evidence);
        if (rg->evidence > best)
            best = rg->evidence;
        comps[bi].x1 = -1;
    }
    out->nregions = nreg;
    out->evidence = best;

    /* cells over the frame */
    if (grid < 1)
        grid = 1;
    int cols, rows;
    if (w >= h) {
        cols = grid;
        rows = (int)lround((double)grid * h / w);
    } else {
        rows = grid;
        cols = (int)lround((double)grid * w / h);
    }
    if (cols < 1)
        cols = 1;
    if (rows < 1)
        rows = 1;
    out->cells = malloc((size_t)cols * rows * sizeof(float));
    if (!out->cells)
        goto done;
    out->cols = cols;
    out->rows = rows;
    for (int r = 0; r < rows; r++) {
        int y0 = (int)((long long)r * h / rows), y1 = (int)((long long)(r + 1) * h / rows);
        for (int c = 0; c < cols; c++) {
            int x0 = (int)((long long)c * w / cols), x1 = (int)((long long)(c + 1) * w / cols);
            double sum = 0.0;
            size_t cnt = 0, tot = 0;
            for (int y = y0; y < y1; y++)
                for (int x = x0; x < x1; x++) {
                    size_t i = (size_t)y * w + x;
                    tot++;
                    if (mask[i]) {
                        cnt++;
                        sum += E->px[i];
                    }
                }
            out->cells[(size_t)r * cols + c] =
                (tot == 0 || cnt * 2 < tot) ? -1.0f : (float)bcd__detect_score(sum * norm);
        }
    }
    out->map = E;
    E = NULL;
    st = BCD_OK;
done:
    for (int c = 0; c < 4; c++) {
        bcd__plane_free(fc[c]);
        bcd__plane_free(fp[c]);
    }
    free(valid);
    free(d1);
    free(d2);
    free(label);
    free(stack);
    free(comps);
    bcd__plane_free(E);
    bcd__plane_free(Es);
    if (st != BCD_OK)
        bcd__changemap_clear(out);
    return st;
}
