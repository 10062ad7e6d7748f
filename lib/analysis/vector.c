/* Vector comparison primitives, trend labels and vector parsing. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "bcd/analysis.h"
#include "core/core.h"

bcd_status bcd_vector_cosine_distance(double *out, bcd_ctx *ctx, const float *a, size_t na, const float *b,
                                      size_t nb)
{
    bcd__ctx_clear(ctx);
    if (!out || !a || !b)
        return bcd__ctx_fail(ctx, BCD_EINVAL, "invalid_argument", "cosine distance needs two vectors and out");
    if (na != nb)
        return bcd__ctx_fail(ctx, BCD_EINVAL, "dimension_mismatch", "vectors have %zu and %zu dimensions", na,
                             nb);
    if (na == 0)
        return bcd__ctx_fail(ctx, BCD_EINVAL, "dimension_mismatch", "vectors have no dimensions");

    /* Products of floats are exact enough in double and cannot overflow (|x| < 2^128). */
    double dot = 0.0, aa = 0.0, bb = 0.0;
    for (size_t i = 0; i < na; i++) {
        double x = a[i], y = b[i];
        if (!isfinite(x) || !isfinite(y))
            return bcd__ctx_fail(ctx, BCD_EDOMAIN, "not_finite",
                                 "vector %c holds a NaN or an infinity at index %zu", isfinite(x) ? 'b' : 'a', i);
        dot += x * y;
        aa += x * x;
        bb += y * y;
    }
    if (aa == 0.0 || bb == 0.0)
        return bcd__ctx_fail(ctx, BCD_EDOMAIN, "zero_vector", "cosine distance to a zero vector is undefined");

    double d = 1.0 - dot / (sqrt(aa) * sqrt(bb));
    if (!(d >= 0.0)) /* rounding below 0; NaN cannot happen with finite sums but map it too */
        d = 0.0;
    else if (d > 2.0)
        d = 2.0;
    *out = d;
    return BCD_OK;
}

bcd_status bcd_vector_mean(float *out, bcd_ctx *ctx, const float *vectors, size_t n, size_t dim)
{
    bcd__ctx_clear(ctx);
    if (!out || !vectors || n == 0 || dim == 0)
        return bcd__ctx_fail(ctx, BCD_EINVAL, "invalid_argument", "mean needs n > 0 vectors of dim > 0 floats");
    if (n > SIZE_MAX / dim)
        return bcd__ctx_fail(ctx, BCD_EINVAL, "invalid_argument", "%zu vectors of %zu floats overflow", n, dim);
    for (size_t i = 0; i < n * dim; i++)
        if (!isfinite(vectors[i]))
            return bcd__ctx_fail(ctx, BCD_EDOMAIN, "not_finite", "vector %zu holds a NaN or an infinity at index %zu",
                                 i / dim, i % dim);
    /* Column-wise so out is written only once the input is known to be valid, and
     * without a temporary buffer (no allocation that could fail). */
    for (size_t j = 0; j < dim; j++) {
        double s = 0.0;
        for (size_t i = 0; i < n; i++)
            s += vectors[i * dim + j];
        out[j] = (float)(s / (double)n);
    }
    return BCD_OK;
}

const char *bcd_trend_label(double distance)
{
    if (isnan(distance) || distance < 0.0)
        return NULL;
    if (distance < BCD_TREND_MILD)
        return "stable";
    if (distance < BCD_TREND_SIGNIFICANT)
        return "mild_variation";
    return "significant_shift";
}

/* The array holding the vector inside a parsed document, or NULL. An "embedding"
 * stored as JSON text (as the seeds wrote it) is parsed once more into *owned. */
static const cJSON *find_array(const cJSON *root, cJSON **owned, int depth)
{
    if (cJSON_IsArray(root))
        return root;
    if (cJSON_IsString(root) && depth > 0 && !*owned) {
        *owned = cJSON_ParseWithOpts(root->valuestring, NULL, 1);
        return *owned && cJSON_IsArray(*owned) ? *owned : NULL;
    }
    if (!cJSON_IsObject(root) || depth > 2)
        return NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "vector");
    if (!v)
        v = cJSON_GetObjectItemCaseSensitive(root, "embedding");
    if (v)
        return find_array(v, owned, depth + 1);
    /* `bcd-cli embed`: {"model":..,"dim":N,"embeddings":[{"file":..,"vector":[..]}, ..]} */
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "embeddings");
    if (cJSON_IsArray(list)) {
        const cJSON *first = cJSON_GetArrayItem(list, 0);
        return first && cJSON_IsObject(first) ? find_array(first, owned, depth + 1) : NULL;
    }
    return NULL;
}

bcd_status bcd_vector_from_json(float **out, size_t *dim, bcd_ctx *ctx, const char *json)
{
    bcd__ctx_clear(ctx);
    if (!out || !dim || !json)
        return bcd__ctx_fail(ctx, BCD_EINVAL, "invalid_argument", "vector_from_json needs out, dim and json");
    cJSON *root = cJSON_ParseWithOpts(json, NULL, 1); /* nothing but whitespace may follow */
    if (!root)
        return bcd__ctx_fail(ctx, BCD_EFORMAT, "invalid_json", "not valid JSON");

    cJSON *owned = NULL;
    bcd_status st = BCD_OK;
    float *v = NULL;
    const cJSON *arr = find_array(root, &owned, 0);
    int n = arr ? cJSON_GetArraySize(arr) : 0;
    if (!arr) {
        st = bcd__ctx_fail(ctx, BCD_EFORMAT, "invalid_vector",
                           "expected an array of numbers, an object with \"vector\" or \"embedding\", "
                           "or the output of bcd-cli embed");
        goto done;
    }
    if (n <= 0) {
        st = bcd__ctx_fail(ctx, BCD_EFORMAT, "empty_vector", "the vector has no elements");
        goto done;
    }
    const cJSON *declared = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "dim") : NULL;
    if (cJSON_IsNumber(declared) && declared->valuedouble != (double)n) {
        st = bcd__ctx_fail(ctx, BCD_EFORMAT, "dimension_mismatch", "\"dim\" is %g but the vector has %d elements",
                           declared->valuedouble, n);
        goto done;
    }
    v = malloc((size_t)n * sizeof *v);
    if (!v) {
        st = bcd__ctx_fail(ctx, BCD_ENOMEM, NULL, NULL);
        goto done;
    }
    size_t i = 0;
    for (const cJSON *it = arr->child; it; it = it->next, i++) {
        if (!cJSON_IsNumber(it)) {
            st = bcd__ctx_fail(ctx, BCD_EFORMAT, "invalid_vector", "element %zu is not a number", i);
            goto done;
        }
        float f = (float)it->valuedouble;
        if (!isfinite(it->valuedouble) || !isfinite(f)) {
            st = bcd__ctx_fail(ctx, BCD_EFORMAT, "not_finite", "element %zu is not a finite float", i);
            goto done;
        }
        v[i] = f;
    }
    *out = v;
    *dim = (size_t)n;
    v = NULL;
done:
    free(v);
    cJSON_Delete(owned);
    cJSON_Delete(root);
    return st;
}
