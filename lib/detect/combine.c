/*
 * Session-level change probability from per-angle results (see bcd_detect_combine() in
 * detect.h). The coefficients come from a logistic regression on the synthetic
 * benchmark (tests/bench/detect_bench.py --calibrate).
 */
#include <math.h>

#include "detect_internal.h"

#define B0 (-4.0)
#define B1 1.0
#define B2 0.0
#define FLAGGED_WEIGHT 0.5
/* logit of local_change is clamped to +-LOGIT_CAP so one saturated angle stays finite */
#define LOGIT_CAP 12.0

bcd_status bcd_detect_combine(double *probability, int *changed, const bcd_detect_result *const *results, size_t n)
{
    if (!probability || (!results && n > 0))
        return BCD_EINVAL;
    double m1 = -INFINITY, m2 = -INFINITY;
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        const bcd_detect_result *r = results[i];
        if (!r)
            continue;
        unsigned int f = bcd_detect_result_flags(r);
        double lc = bcd_detect_result_value(r, BCD_DETECT_LOCAL_CHANGE);
        if ((f & BCD_DETECT_MISALIGNED) || !isfinite(lc))
            continue;
        double z;
        if (lc <= 0.0)
            z = -LOGIT_CAP;
        else if (lc >= 1.0)
            z = LOGIT_CAP;
        else
            z = log(lc / (1.0 - lc));
        if (z > LOGIT_CAP)
            z = LOGIT_CAP;
        if (z < -LOGIT_CAP)
            z = -LOGIT_CAP;
        if (f)
            z *= FLAGGED_WEIGHT;
        if (z > m1) {
            m2 = m1;
            m1 = z;
        } else if (z > m2) {
            m2 = z;
        }
        used++;
    }
    if (used == 0)
        return BCD_ESTATE;
    if (used == 1)
        m2 = m1;
    double p = 1.0 / (1.0 + exp(-(B0 + B1 * m1 + B2 * m2)));
    *probability = p;
    if (changed)
        *changed = p >= 0.5;
    return BCD_OK;
}
