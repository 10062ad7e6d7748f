/*
 * Cell-by-cell comparison of two feature maps of the same model (the output of its last
 * convolutional stage, bcd_embedder_embed_maps()): for each cell of the current map,
 * the cosine distance of its C-vector to the previous map's vector at the same place of
 * the body, sampled bilinearly between the previous map's cells through the alignment.
 */
#include <math.h>

#include "bcd/detect.h"

size_t bcd_detect_compare_maps(float *dist, const float *cur, const float *prev, size_t c, size_t h, size_t w,
                               const double m[6])
{
    static const double id[6] = { 1, 0, 0, 0, 1, 0 };
    if (!dist || h == 0 || w == 0)
        return 0;
    if (!m)
        m = id;
    const size_t plane = h * w;
    size_t compared = 0;
    for (size_t y = 0; y < h; y++)
        for (size_t x = 0; x < w; x++) {
            float *out = &dist[y * w + x];
            *out = NAN;
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
            double w00 = (1 - fx) * (1 - fy), w01 = fx * (1 - fy), w10 = (1 - fx) * fy, w11 = fx * fy;
            const size_t a = y0 * w + x0, b = y0 * w + x1, d = y1 * w + x0, e = y1 * w + x1, self = y * w + x;
            double dot = 0, nc = 0, np = 0;
            for (size_t k = 0; k < c; k++) {
                const float *cp = cur + k * plane, *pp = prev + k * plane;
                double v = cp[self];
                double p = w00 * pp[a] + w01 * pp[b] + w10 * pp[d] + w11 * pp[e];
                dot += v * p;
                nc += v * v;
                np += p * p;
            }
            if (!(nc > 0 && np > 0) || !isfinite(dot)) {
                /* both silent: nothing changed; one silent: as different as can be */
                if (nc == 0 && np == 0)
                    *out = 0.0f;
                else if (isfinite(nc) && isfinite(np))
                    *out = 1.0f;
                else
                    continue;
            } else {
                double cs = dot / sqrt(nc * np);
                *out = (float)(1.0 - fmin(1.0, fmax(-1.0, cs)));
            }
            compared++;
        }
    return compared;
}
