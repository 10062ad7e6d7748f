/*
 * Cell-by-cell comparison of two feature maps of the same model (the output of its last
 * convolutional stage, bcd_embedder_embed_maps()): for each cell of the current map,
 * the cosine distance of its C-vector to the previous map's vector at the same place of
 * the body, sampled bilinearly between the previous map's cells through the alignment.
 */
#include <math.h>

#include "bcd/detect.h"

/* Where a cell of the current map falls in the previous one: its four neighbours there
 * and their bilinear weights. */
struct cell {
    size_t self, a, b, d, e;
    double w00, w01, w10, w11;
};

/* The cosine distance from the sums (NaN: not compared). */
static float distance(double dot, double nc, double np)
{
    if (!(nc > 0 && np > 0) || !isfinite(dot)) {
        /* both silent: nothing changed; one silent: as different as can be */
        if (nc == 0 && np == 0)
            return 0.0f;
        if (isfinite(nc) && isfinite(np))
            return 1.0f;
        return NAN;
    }
    double cs = dot / sqrt(nc * np);
    return (float)(1.0 - fmin(1.0, fmax(-1.0, cs)));
}

/* Cells are summed GROUP at a time, channel by channel: one pass over the maps' planes
 * per group instead of per cell; each cell has its own sums over the channels in
 * channel order (the same as one cell at a time). */
#define GROUP 64

/* The distances of cells g[0..n) into dist; how many were compared. */
static size_t group_distances(float *dist, const struct cell *g, size_t n, const float *cur, const float *prev,
                              size_t c, size_t plane)
{
    double dot[GROUP] = { 0 }, nc[GROUP] = { 0 }, np[GROUP] = { 0 };
    for (size_t k = 0; k < c; k++) {
        const float *cp = cur + k * plane, *pp = prev + k * plane;
        for (size_t j = 0; j < n; j++) {
            const struct cell *r = &g[j];
            double v = cp[r->self];
            double p = r->w00 * pp[r->a] + r->w01 * pp[r->b] + r->w10 * pp[r->d] + r->w11 * pp[r->e];
            dot[j] += v * p;
            nc[j] += v * v;
            np[j] += p * p;
        }
    }
    size_t compared = 0;
    for (size_t j = 0; j < n; j++) {
        float dv = distance(dot[j], nc[j], np[j]);
        dist[g[j].self] = dv;
        compared += dv == dv;
    }
    return compared;
}

size_t bcd_detect_compare_maps(float *dist, const float *cur, const float *prev, size_t c, size_t h, size_t w,
                               const double m[6])
{
    static const double id[6] = { 1, 0, 0, 0, 1, 0 };
    if (!dist || h == 0 || w == 0)
        return 0;
    if (!m)
        m = id;
    const size_t plane = h * w;
    size_t compared = 0, ng = 0;
    struct cell g[GROUP];
    for (size_t y = 0; y < h; y++)
        for (size_t x = 0; x < w; x++) {
            dist[y * w + x] = NAN;
            if (!cur || !prev || c == 0)
                continue;
            double px = m[0] * (double)x + m[1] * (double)y + m[2];
            double py = m[3] * (double)x + m[4] * (double)y + m[5];
            /* within half a cell of the previous map's outer cells (clamped there) */
            if (!(px >= -0.5 && px <= (double)w - 0.5 && py >= -0.5 && py <= (double)h - 0.5))
                continue;
            px = fmin(fmax(px, 0.0), (double)(w - 1));
            py = fmin(fmax(py, 0.0), (double)(h - 1));
            size_t x0 = (size_t)px, y0 = (size_t)py;
            size_t x1 = x0 + 1 < w ? x0 + 1 : x0, y1 = y0 + 1 < h ? y0 + 1 : y0;
            double fx = px - (double)x0, fy = py - (double)y0;
            g[ng++] = (struct cell){ y * w + x, y0 * w + x0, y0 * w + x1, y1 * w + x0, y1 * w + x1,
                                     (1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy };
            if (ng == GROUP) {
                compared += group_distances(dist, g, ng, cur, prev, c, plane);
                ng = 0;
            }
        }
    if (ng)
        compared += group_distances(dist, g, ng, cur, prev, c, plane);
    return compared;
}
