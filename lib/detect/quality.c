/*
 * Photo quality measures on the working-size image (see detect.h for thresholds).
 *
 *  blur_variance     variance of the 3×3 Laplacian (4-neighbour) of the grey image
 *                    (0..255) over the interior pixels. Depends on the working size:
 *                    the thresholds assume the default 512 px.
 *  clipped_fraction  fraction of pixels with a channel >= 253 or all channels <= 2 (on
 *                    the reduced image, where a clipped area of the photo stays
 *                    clipped).
 *  subject_fraction  fraction of skin-coloured pixels: luma >= 25 and, in YCbCr,
 *                    70 <= Cb <= 135 and 130 <= Cr <= 180 (a widened Chai-Ngan box that
 *                    holds light to dark skin under moderate white balance errors).
 *                    When the frame's border (outer 4 % on each side) is not
 *                    skin-coloured, skin-coloured pixels that are within 20 levels of
 *                    the border's median colour do not count: a beige wall is not
 *                    the subject.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "detect_internal.h"

static bool skin_like(float r, float g, float b)
{
    float y = 0.299f * r + 0.587f * g + 0.114f * b;
    float cb = 128.0f - 0.168736f * r - 0.331264f * g + 0.5f * b;
    float cr = 128.0f + 0.5f * r - 0.418688f * g - 0.081312f * b;
    return y >= 25.0f && cb >= 70.0f && cb <= 135.0f && cr >= 130.0f && cr <= 180.0f;
}

BCD__WIDE_KERNEL void bcd__detect_quality(bcd__quality *q, const bcd__work *wk, const bcd__plane *grey)
{
    int w = grey->w, h = grey->h;
    const float *g = grey->px;

    double s = 0.0, ss = 0.0;
    size_t n = 0;
    for (int y = 1; y < h - 1; y++) {
        for (int x = 1; x < w - 1; x++) {
            size_t i = (size_t)y * w + x;
            double l = (double)g[i - 1] + g[i + 1] + g[i - w] + g[i + w] - 4.0 * g[i];
            s += l;
            ss += l * l;
            n++;
        }
    }
    q->blur_variance = n > 0 ? ss / n - (s / n) * (s / n) : 0.0;
    if (q->blur_variance < 0.0)
        q->blur_variance = 0.0;

    /* clipped: any channel at the top (a bright exposure clips the red of light skin
     * first, and its colour is lost) or every channel at the bottom */
    const float *r = wk->c[0]->px, *gg = wk->c[1]->px, *b = wk->c[2]->px;
    size_t clipped = 0, total = (size_t)w * h;
    for (size_t i = 0; i < total; i++) {
        float mx = r[i] > gg[i] ? r[i] : gg[i];
        mx = b[i] > mx ? b[i] : mx;
        if (mx >= 252.5f || mx <= 2.5f)
            clipped++;
    }
    q->clipped_fraction = (double)clipped / (double)total;

    /* border colour: per-channel median of the outer band */
    int bx = w / 25 > 1 ? w / 25 : 1, by = h / 25 > 1 ? h / 25 : 1;
    size_t nb = 0;
    float *band = malloc(total * sizeof(float));
    float med[3] = { -1000.0f, -1000.0f, -1000.0f };
    bool border_skin = true;
    if (band) {
        for (int c = 0; c < 3; c++) {
            const float *src = wk->c[c]->px;
            nb = 0;
            for (int y = 0; y < h; y++) {
                const float *row = src + (size_t)y * w;
                if (y < by || y >= h - by || 2 * bx >= w) {
                    memcpy(band + nb, row, (size_t)w * sizeof *band);
                    nb += (size_t)w;
                    continue;
                }
                /* the left and right ends of a middle row (they do not meet) */
                memcpy(band + nb, row, (size_t)bx * sizeof *band);
                memcpy(band + nb + bx, row + (w - bx), (size_t)bx * sizeof *band);
                nb += 2 * (size_t)bx;
            }
            med[c] = bcd__detect_median(band, nb);
        }
        free(band);
        border_skin = skin_like(med[0], med[1], med[2]);
    }
    /* every other pixel in each direction: a fraction needs no more */
    size_t subj = 0, seen = 0;
    for (int y = 0; y < h; y += 2) {
        for (int x = 0; x < w; x += 2) {
            size_t i = (size_t)y * w + x;
            seen++;
            if (!skin_like(r[i], gg[i], b[i]))
                continue;
            if (!border_skin) {
                float dr = r[i] - med[0], dg = gg[i] - med[1], db = b[i] - med[2];
                if (dr * dr + dg * dg + db * db < 20.0f * 20.0f)
                    continue;
            }
            subj++;
        }
    }
    q->subject_fraction = (double)subj / (double)seen;
}
