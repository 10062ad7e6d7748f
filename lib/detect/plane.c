/* Float planes: allocation, area reduction, Gaussian blur, loading photos at working size. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "detect_internal.h"

/* A table costs up to 4081 logf() calls; a comparison uses five. */
#define LOGTAB_SLOTS 4
static bcd__logtab logtabs[LOGTAB_SLOTS];
static int logtabs_used;
static pthread_mutex_t logtabs_mu = PTHREAD_MUTEX_INITIALIZER;

const bcd__logtab *bcd__logtab_shared(float offset, int steps, bcd__logtab *own)
{
    const bcd__logtab *t = NULL;
    pthread_mutex_lock(&logtabs_mu);
    for (int i = 0; i < logtabs_used && !t; i++)
        if (logtabs[i].offset == offset && logtabs[i].steps == (float)steps)
            t = &logtabs[i];
    if (!t && logtabs_used < LOGTAB_SLOTS) {
        bcd__logtab_init(&logtabs[logtabs_used], offset, steps);
        t = &logtabs[logtabs_used++];
    }
    pthread_mutex_unlock(&logtabs_mu);
    if (t)
        return t;
    bcd__logtab_init(own, offset, steps);
    return own;
}

bcd__plane *bcd__plane_new(int w, int h)
{
    if (w <= 0 || h <= 0 || (size_t)w > SIZE_MAX / sizeof(float) / (size_t)h)
        return NULL;
    bcd__plane *p = malloc(sizeof *p);
    if (!p)
        return NULL;
    p->px = malloc((size_t)w * (size_t)h * sizeof(float));
    if (!p->px) {
        free(p);
        return NULL;
    }
    p->w = w;
    p->h = h;
    return p;
}

void bcd__plane_free(bcd__plane *p)
{
    if (!p)
        return;
    free(p->px);
    free(p);
}

BCD__WIDE_KERNEL bcd__plane *bcd__plane_half(const bcd__plane *p)
{
    int w = p->w / 2, h = p->h / 2;
    bcd__plane *o = bcd__plane_new(w, h);
    if (!o)
        return NULL;
    for (int y = 0; y < h; y++) {
        const float *r0 = p->px + (size_t)(2 * y) * p->w, *r1 = r0 + p->w;
        float *d = o->px + (size_t)y * w;
        for (int x = 0; x < w; x++)
            d[x] = 0.25f * (r0[2 * x] + r0[2 * x + 1] + r1[2 * x] + r1[2 * x + 1]);
    }
    return o;
}

BCD__WIDE_KERNEL bcd__plane *bcd__plane_blur(const bcd__plane *p, float sigma)
{
    bcd__plane *o = bcd__plane_new(p->w, p->h);
    if (!o)
        return NULL;
    if (sigma <= 0.0f) {
        memcpy(o->px, p->px, (size_t)p->w * p->h * sizeof(float));
        return o;
    }
    int r = (int)ceilf(3.0f * sigma);
    int w = p->w, h = p->h;
    int n = w > h ? w : h;
    float *k = malloc((size_t)(2 * r + 1) * sizeof(float));
    float *line = malloc((size_t)(n + 2 * r) * sizeof(float));
    float *tmp = malloc((size_t)w * h * sizeof(float));
    const float **src = malloc((size_t)(2 * r + 1) * sizeof *src); /* the rows of a column pass's taps */
    if (!k || !line || !tmp || !src) {
        free(k);
        free(line);
        free(tmp);
        free(src);
        bcd__plane_free(o);
        return NULL;
    }
    double sum = 0.0;
    for (int i = -r; i <= r; i++) {
        k[i + r] = (float)exp(-0.5 * (double)i * i / ((double)sigma * sigma));
        sum += k[i + r];
    }
    for (int i = 0; i <= 2 * r; i++)
        k[i] = (float)(k[i] / sum);

    /* rows: line holds the row padded by r clamped samples each side. Each output is
     * k[0] x[0] + k[1] x[1] + ... summed in that order, eight outputs at a time in one
     * vector that stays in a register over the taps (the same sums as tap by tap over
     * the whole row, without a store per tap). */
    for (int y = 0; y < h; y++) {
        const float *s = p->px + (size_t)y * w;
        for (int i = 0; i < r; i++) {
            line[i] = s[0];
            line[r + w + i] = s[w - 1];
        }
        memcpy(line + r, s, (size_t)w * sizeof *line);
        float *d = tmp + (size_t)y * w;
        int x = 0;
        for (; x + 8 <= w; x += 8) {
            bcd__v8f a, l;
            memcpy(&l, line + x, sizeof l);
            a = k[0] * l;
            for (int j = 1; j <= 2 * r; j++) {
                memcpy(&l, line + x + j, sizeof l);
                a += k[j] * l;
            }
            memcpy(d + x, &a, sizeof a);
        }
        for (; x < w; x++) {
            float a = k[0] * line[x];
            for (int j = 1; j <= 2 * r; j++)
                a += k[j] * line[x + j];
            d[x] = a;
        }
    }
    /* columns: each output is 0 + k[0] x[-r] + ... + k[2r] x[r], in that order, eight at
     * a time */
    for (int y = 0; y < h; y++) {
        float *d = o->px + (size_t)y * w;
        for (int j = -r; j <= r; j++) {
            int yy = y + j;
            src[j + r] = tmp + (size_t)(yy < 0 ? 0 : yy >= h ? h - 1 : yy) * w;
        }
        int x = 0;
        for (; x + 8 <= w; x += 8) {
            bcd__v8f a = { 0, 0, 0, 0, 0, 0, 0, 0 }, l;
            for (int j = 0; j <= 2 * r; j++) {
                memcpy(&l, src[j] + x, sizeof l);
                a += k[j] * l;
            }
            memcpy(d + x, &a, sizeof a);
        }
        for (; x < w; x++) {
            float a = 0.0f;
            for (int j = 0; j <= 2 * r; j++)
                a += k[j] * src[j][x];
            d[x] = a;
        }
    }
    free(k);
    free(line);
    free(tmp);
    free(src);
    return o;
}

/*
 * Area weights of a reduction from n input samples to m output samples (m <= n).
 * Output o covers input [o*n/m, (o+1)*n/m): whole samples first+1 .. last-1 with weight
 * 1, and the partly covered samples first and last with weights wf and wl (the
 * covered fraction). Every weight is finally scaled by m/n so that an output's
 * weights sum to 1.
 */
struct span {
    int first, last; /* inclusive */
    float wf, wl;
};

static struct span *spans_new(uint32_t n, int m)
{
    struct span *sp = malloc((size_t)m * sizeof *sp);
    if (!sp)
        return NULL;
    double step = (double)n / m;
    for (int o = 0; o < m; o++) {
        double a = o * step, b = (o + 1) * step;
        if (b > n)
            b = n;
        int f = (int)floor(a), l = (int)ceil(b) - 1;
        if (l < f)
            l = f;
        if (l >= (int)n)
            l = (int)n - 1;
        sp[o].first = f;
        sp[o].last = l;
        if (f == l) {
            sp[o].wf = (float)(b - a);
            sp[o].wl = 0.0f;
        } else {
            sp[o].wf = (float)(f + 1 - a);
            sp[o].wl = (float)(b - l);
        }
    }
    return sp;
}

void bcd__work_clear(bcd__work *wk)
{
    for (int c = 0; c < 3; c++) {
        bcd__plane_free(wk->c[c]);
        wk->c[c] = NULL;
    }
}

/* One input row reduced horizontally into out (w RGB triples, unnormalized). */
static void reduce_row(float *out, const uint8_t *s, const struct span *sx, int w)
{
    for (int o = 0; o < w; o++) {
        const struct span *sp = &sx[o];
        const uint8_t *p = s + 3 * (size_t)sp->first;
        float r = sp->wf * p[0], g = sp->wf * p[1], b = sp->wf * p[2];
        if (sp->last > sp->first) {
            uint32_t ir = 0, ig = 0, ib = 0;
            const uint8_t *q = p + 3, *end = s + 3 * (size_t)sp->last;
            for (; q < end; q += 3) {
                ir += q[0];
                ig += q[1];
                ib += q[2];
            }
            r += (float)ir + sp->wl * end[0];
            g += (float)ig + sp->wl * end[1];
            b += (float)ib + sp->wl * end[2];
        }
        out[3 * o] = r;
        out[3 * o + 1] = g;
        out[3 * o + 2] = b;
    }
}

BCD__WIDE_KERNEL bcd_status bcd__work_load(bcd__work *out, const bcd_image *img, int long_side)
{
    uint32_t W = img->width, H = img->height;
    uint32_t L = W > H ? W : H;
    int w, h;
    if (L <= (uint32_t)long_side) {
        w = (int)W;
        h = (int)H;
    } else {
        double f = (double)long_side / L;
        w = (int)lround(W * f);
        h = (int)lround(H * f);
        if (w < 1)
            w = 1;
        if (h < 1)
            h = 1;
    }
    memset(out, 0, sizeof *out);
    out->w = w;
    out->h = h;
    out->ow = W;
    out->oh = H;
    out->fx = (double)w / W;
    out->fy = (double)h / H;
    for (int c = 0; c < 3; c++) {
        out->c[c] = bcd__plane_new(w, h);
        if (!out->c[c]) {
            bcd__work_clear(out);
            return BCD_ENOMEM;
        }
    }
    const uint8_t *src = img->data;
    float *R = out->c[0]->px, *G = out->c[1]->px, *B = out->c[2]->px;
    if ((uint32_t)w == W && (uint32_t)h == H) {
        size_t n = (size_t)W * H;
        for (size_t i = 0; i < n; i++) {
            R[i] = src[3 * i];
            G[i] = src[3 * i + 1];
            B[i] = src[3 * i + 2];
        }
        return BCD_OK;
    }

    struct span *sx = spans_new(W, w), *sy = spans_new(H, h);
    float *row = malloc((size_t)w * 3 * sizeof(float));
    float *acc = malloc((size_t)w * 3 * sizeof(float));
    bcd_status st = BCD_OK;
    if (!sx || !sy || !row || !acc) {
        st = BCD_ENOMEM;
        goto done;
    }
    float norm = (float)(((double)w / W) * ((double)h / H));
    for (int o = 0; o < h; o++) {
        const struct span *sp = &sy[o];
        memset(acc, 0, (size_t)w * 3 * sizeof(float));
        for (int y = sp->first; y <= sp->last; y++) {
            float wy = y == sp->first ? sp->wf : y == sp->last ? sp->wl : 1.0f;
            if (wy == 0.0f)
                continue;
            reduce_row(row, src + (size_t)y * W * 3, sx, w);
            for (int i = 0; i < 3 * w; i++)
                acc[i] += wy * row[i];
        }
        float *r = R + (size_t)o * w, *g = G + (size_t)o * w, *b = B + (size_t)o * w;
        for (int x = 0; x < w; x++) {
            r[x] = acc[3 * x] * norm;
            g[x] = acc[3 * x + 1] * norm;
            b[x] = acc[3 * x + 2] * norm;
        }
    }
done:
    free(sx);
    free(sy);
    free(row);
    free(acc);
    if (st != BCD_OK)
        bcd__work_clear(out);
    return st;
}

BCD__WIDE_KERNEL bcd__plane *bcd__work_grey(const bcd__work *wk)
{
    bcd__plane *g = bcd__plane_new(wk->w, wk->h);
    if (!g)
        return NULL;
    size_t n = (size_t)wk->w * wk->h;
    const float *r = wk->c[0]->px, *gg = wk->c[1]->px, *b = wk->c[2]->px;
    for (size_t i = 0; i < n; i++)
        g->px[i] = 0.299f * r[i] + 0.587f * gg[i] + 0.114f * b[i];
    return g;
}

/* Hoare's selection of the element of rank k of v[0..n) (reordered). */
static float hoare_select(float *v, size_t n, size_t k)
{
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        float pivot = v[lo + (hi - lo) / 2];
        size_t i = lo, j = hi;
        for (;;) {
            while (v[i] < pivot)
                i++;
            while (v[j] > pivot)
                j--;
            if (i >= j)
                break;
            float t = v[i];
            v[i] = v[j];
            v[j] = t;
            i++;
            j--;
        }
        if (k <= j)
            hi = j;
        else
            lo = j + 1;
    }
    return v[k];
}

/* The bits of a float as an unsigned key of the same order (for values that are not NaN;
 * -0 sorts just below +0). */
static inline uint32_t order_key(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u ^ ((uint32_t)((int32_t)u >> 31) | 0x80000000u);
}

float bcd__detect_quantile(float *v, size_t n, double q)
{
    if (n == 0)
        return 0.0f;
    size_t k = (size_t)(q * (double)n);
    if (k >= n)
        k = n - 1;
    /* Values that are all whole numbers 0..255 (the channels of a photo at working size):
     * the k-th of their histogram, in one pass that stops at the first other value. */
    if (n > 256) {
        size_t hist[256] = { 0 }, i = 0;
        for (; i < n; i++) {
            float x = v[i];
            if (!(x >= 0.0f && x <= 255.0f) || x != (float)(int)x || (x == 0.0f && signbit(x)))
                break;
            hist[(int)x]++;
        }
        if (i == n) {
            int b = 0;
            for (size_t below = 0; below + hist[b] <= k; b++)
                below += hist[b];
            return (float)b;
        }
    }
    /* Radix selection on the order keys, 12 + 12 + 8 bits: count the elements per digit,
     * keep (moved to the front) those whose digit holds rank k, go on with the next digit.
     * Two passes over the data where Hoare's partitioning mispredicts a branch per element
     * on noisy values; the value found is the same. Short remainders go to Hoare. */
    static const int shift[3] = { 20, 8, 0 };
    static const uint32_t digits[3] = { 4096, 4096, 256 };
    uint32_t count[4096];
    for (int level = 0; level < 3; level++) {
        if (n <= 64)
            return hoare_select(v, n, k);
        const int s = shift[level];
        const uint32_t mask = digits[level] - 1;
        memset(count, 0, digits[level] * sizeof *count);
        for (size_t i = 0; i < n; i++)
            count[(order_key(v[i]) >> s) & mask]++;
        uint32_t d = 0;
        size_t before = 0;
        while (before + count[d] <= k)
            before += count[d++];
        size_t m = 0; /* written always, kept when it matches: no branch to mispredict */
        for (size_t i = 0; i < n; i++) {
            float x = v[i];
            v[m] = x;
            m += ((order_key(x) >> s) & mask) == d;
        }
        n = m;
        k -= before;
    }
    return v[k]; /* all that is left has one key: one value */
}

float bcd__detect_median(float *v, size_t n)
{
    return bcd__detect_quantile(v, n, 0.5);
}

bcd_status bcd__work_half(bcd__work *out, const bcd__work *in)
{
    memset(out, 0, sizeof *out);
    for (int c = 0; c < 3; c++) {
        out->c[c] = bcd__plane_half(in->c[c]);
        if (!out->c[c]) {
            bcd__work_clear(out);
            return BCD_ENOMEM;
        }
    }
    out->w = out->c[0]->w;
    out->h = out->c[0]->h;
    out->ow = in->ow;
    out->oh = in->oh;
    /* pixel i covers input pixels [2i, 2i + 2): the same area mapping at half the scale */
    out->fx = in->fx * 0.5;
    out->fy = in->fy * 0.5;
    return BCD_OK;
}
