/* Analysis of a session: decode → preprocess → embed (one batch) → baseline scores →
 * confidence → summaries → one atomic save. And reading a stored analysis back. */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bcd/analysis.h"
#include "bcd/image.h"
#include "detection.h"
#include "report/report.h"
#include "service_internal.h"

/* Quality measures (see bcd_session_analyze() in bcd/service.h). Sharpness saturates:
 * v / (v + SHARP_HALF), where v is the variance of the Laplacian of the 224×224 grey
 * image. Photos of people downsampled to 224 px measure several hundred (0.95 and up);
 * smooth synthetic skin ~20 (~0.5); a featureless or badly blurred picture under ~10,
 * where the summary warns (BLURRED). Pixels at or below 5 or at or above 250 carry no
 * skin detail (clipped). */
#define SHARP_HALF 20.0
#define BLURRED 0.35
#define CLIP_LOW 5.0
#define CLIP_HIGH 250.0
#define BASELINE_FULL 3

struct quality {
    double blur_variance;
    double clipped_fraction;
    double sharpness;
    double quality;
};

/* Sharpness and exposure of the 224×224 (not equalized) image. */
static void measure_quality(const bcd_image *im, struct quality *q)
{
    const uint32_t w = im->width, h = im->height;
    size_t clipped = 0;
    double sum = 0.0, sum2 = 0.0;
    size_t cnt = 0;
    /* grey of a pixel (BT.601 luma, as OpenCV's RGB2GRAY) */
#define GREY(x, y)                                                                                                \
    (0.299 * im->data[((size_t)(y) * w + (x)) * 3] + 0.587 * im->data[((size_t)(y) * w + (x)) * 3 + 1] +            \
     0.114 * im->data[((size_t)(y) * w + (x)) * 3 + 2])
    for (uint32_t y = 0; y < h; y++) {
        for (uint32_t x = 0; x < w; x++) {
            double g = GREY(x, y);
            if (g <= CLIP_LOW || g >= CLIP_HIGH)
                clipped++;
            if (x == 0 || y == 0 || x + 1 == w || y + 1 == h)
                continue;
            double lap = GREY(x - 1, y) + GREY(x + 1, y) + GREY(x, y - 1) + GREY(x, y + 1) - 4.0 * g;
            sum += lap;
            sum2 += lap * lap;
            cnt++;
        }
    }
#undef GREY
    double mean = cnt ? sum / (double)cnt : 0.0;
    q->blur_variance = cnt ? fmax(0.0, sum2 / (double)cnt - mean * mean) : 0.0;
    q->clipped_fraction = (double)clipped / ((double)w * h);
    q->sharpness = q->blur_variance / (q->blur_variance + SHARP_HALF);
    double exposure = fmax(0.0, 1.0 - 2.0 * q->clipped_fraction);
    q->quality = q->sharpness * exposure;
}

static bcd_status get_embedder(bcd_service *svc, const char *spec, bcd_embedder **out)
{
    const char *want = spec && *spec ? spec : bcd__cfg(svc->ctx, BCD__CFG_MODEL);
    if (!want || !*want)
        want = "builtin";
    if (svc->emb && strcmp(svc->emb_spec, want) == 0) {
        *out = svc->emb;
        return BCD_OK;
    }
    char *copy = bcd__strdup(want);
    if (!copy)
        return bcd__svc_fail(svc, BCD_ENOMEM, "out_of_memory", "out of memory");
    bcd_embedder *e = NULL;
    bcd_status st = bcd_embedder_open(&e, svc->ctx, want);
    if (st != BCD_OK) {
        free(copy);
        return bcd__svc_from_ctx(svc, st);
    }
    if (bcd_embedder_dim(e) == 0 || strlen(bcd_embedder_name(e)) >= BCD__MODEL_MAX) {
        bcd_embedder_free(e);
        free(copy);
        return bcd__svc_fail(svc, BCD_ERROR, "invalid_model", "the embedder reports no dimension or a bad name");
    }
    bcd_embedder_free(svc->emb);
    free(svc->emb_spec);
    svc->emb = e;
    svc->emb_spec = copy;
    *out = e;
    return BCD_OK;
}

/* Attach {image_id, angle, order_index, storage_path} to the recorded error and prefix
 * its message with the image. */
static void blame_image(bcd_service *svc, const struct bcd__image_row *r)
{
    char prefix[160];
    snprintf(prefix, sizeof prefix, "image %s #%d of session %s: ", r->angle, r->order_index, r->session_id);
    bcd__svc_prefix(svc, prefix);
    cJSON *d = cJSON_CreateObject();
    if (d) {
        cJSON_AddStringToObject(d, "image_id", r->id);
        cJSON_AddStringToObject(d, "angle", r->angle);
        cJSON_AddNumberToObject(d, "order_index", r->order_index);
        cJSON_AddStringToObject(d, "storage_path", r->storage_path);
    }
    bcd__svc_details(svc, d);
}

/* Per-image work of a batch, run on several threads: decode, measure, preprocess and,
 * for the first photo of each angle, the copy reduced for change detection. Each
 * image has its own ctx (a ctx serves one thread at a time). */
struct prep {
    const struct bcd__image_row *r;
    unsigned char **data;
    size_t *lens;
    float *tensors;
    struct quality *q;
    struct bcd__det_photo *det; /* det[k].angle[0] set: make the reduced copy */
    bcd_ctx **ctx;
    bcd_status *st;
    const bcd_ctx *proto;
};

static void prep_one(void *arg, size_t k)
{
    struct prep *p = arg;
    bcd_image *img = NULL, *small = NULL;
    bcd_status st = bcd__ctx_clone(&p->ctx[k], p->proto);
    if (st == BCD_OK)
        st = bcd_image_decode(&img, p->ctx[k], p->data[k], p->lens[k]);
    free(p->data[k]);
    p->data[k] = NULL;
    if (st == BCD_OK)
        st = bcd_image_crop_resize(&small, img, BCD_INPUT_SIZE);
    if (st == BCD_OK) {
        measure_quality(small, &p->q[k]);
        float *tensor = p->tensors + k * BCD_TENSOR_LEN;
        if (p->det[k].angle[0]) /* the reduced copy made in preprocessing's pass */
            st = bcd__det_preprocess_reduce(tensor, BCD_TENSOR_LEN, &p->det[k], &img);
        else
            st = bcd_image_preprocess(tensor, BCD_TENSOR_LEN, img);
        if (st == BCD_ENOMEM)
            bcd__ctx_fail(p->ctx[k], st, "out_of_memory", "out of memory");
    }
    p->st[k] = st;
    bcd_image_free(small);
    bcd_image_free(img);
}

/* Read m (<= BCD__ANGLE_COUNT) images from the store at once (in parallel where the
 * store can: a session's six angles are fetched together), then prepare them in
 * parallel. det: m entries, filled where det[k].angle is set. */
static bcd_status load_batch(bcd_service *svc, const struct bcd__image_row *r, size_t m, float *tensors,
                             struct quality *q, struct bcd__det_photo *det)
{
    const char *paths[BCD__ANGLE_COUNT];
    unsigned char *data[BCD__ANGLE_COUNT] = {0};
    size_t lens[BCD__ANGLE_COUNT] = {0}, failed = 0;
    for (size_t k = 0; k < m; k++)
        paths[k] = r[k].storage_path;
    bcd_status st = bcd__store_blob_get_many(svc->store, paths, m, BCD__MAX_IMAGE_FILE, data, lens, &failed);
    if (st != BCD_OK) {
        bcd__svc_from_store(svc, st);
        blame_image(svc, &r[failed < m ? failed : 0]);
        return st;
    }
    bcd_ctx *ctx[BCD__ANGLE_COUNT] = {0};
    bcd_status sts[BCD__ANGLE_COUNT];
    struct prep p = { r, data, lens, tensors, q, det, ctx, sts, svc->ctx };
    bcd__svc_parallel_for(m, bcd__svc_threads(svc, BCD__ANGLE_COUNT), prep_one, &p);
    /* the first failure in image order is the one reported */
    for (size_t k = 0; k < m && st == BCD_OK; k++) {
        if (sts[k] == BCD_OK)
            continue;
        st = sts[k];
        bcd_ctx *own = svc->ctx;
        svc->ctx = ctx[k] ? ctx[k] : own; /* the error detail is on the image's ctx */
        bcd__svc_from_ctx(svc, st);
        svc->ctx = own;
        if (st == BCD_EFORMAT) {
            snprintf(svc->err.code, sizeof svc->err.code, "image_corrupt");
            bcd__svc_prefix(svc, "cannot be decoded: ");
        }
        blame_image(svc, &r[k]);
    }
    for (size_t k = 0; k < m; k++)
        bcd_ctx_free(ctx[k]);
    return st;
}

static const char *trend_words(double d)
{
    const char *label = bcd_trend_label(d);
    if (!label)
        return "undetermined";
    if (strcmp(label, "stable") == 0)
        return "stable (below 0.10)";
    if (strcmp(label, "mild_variation") == 0)
        return "mild variation (0.10 to 0.25)";
    return "significant shift (0.25 or more)";
}

/* Append to buf[cap] at *used; once full, further text is dropped. */
static void append(char *buf, size_t cap, size_t *used, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
static void append(char *buf, size_t cap, size_t *used, const char *fmt, ...)
{
    if (*used >= cap - 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(buf + *used, cap - *used, fmt, ap);
    va_end(ap);
    if (w > 0)
        *used = *used + (size_t)w < cap - 1 ? *used + (size_t)w : cap - 1;
}

static char *angle_summary(const struct bcd__angle_analysis *g)
{
    char buf[768] = "";
    size_t used = 0;
    if (g->baseline_sessions == 0)
        append(buf, sizeof buf, &used,
               "%s: first analyzed photo of this angle; its baseline is being established (change score 0).",
               g->angle);
    else
        append(buf, sizeof buf, &used, "%s: change score %.4f against the mean of %d earlier session%s: %s.",
               g->angle, g->change_score, g->baseline_sessions, g->baseline_sessions == 1 ? "" : "s",
               trend_words(g->change_score));
    if (g->image_count > 1)
        append(buf, sizeof buf, &used, " Mean of %d photos.", g->image_count);
    bool blurred = g->sharpness < BLURRED, clipped = g->clipped_fraction > 0.1;
    if (blurred)
        append(buf, sizeof buf, &used, " The photo looks blurred (sharpness %.2f): the score is less reliable.",
               g->sharpness);
    if (clipped)
        append(buf, sizeof buf, &used, " %.0f%% of the pixels are under- or over-exposed.",
               100.0 * g->clipped_fraction);
    if (!blurred && !clipped)
        append(buf, sizeof buf, &used, " Image quality is %s (%.2f).", g->quality >= 0.7 ? "good" : "fair",
               g->quality);
    return bcd__strdup(buf);
}

/* One sentence on the change detection against the previous session. */
static void detection_summary(char *buf, size_t cap, size_t *used, const struct bcd__detection *d)
{
    if (!d->previous_session_id[0])
        return;
    if (d->changed < 0) {
        append(buf, cap, used, " Local change detection: no angle could be compared with the previous session.");
        return;
    }
    append(buf, cap, used, " Local change detection against the previous session: change probability %.2f",
           d->probability);
    int k = 0;
    for (size_t i = 0; i < d->n; i++) {
        double lc = d->a[i].compared ? bcd_detect_result_value(d->a[i].r, BCD_DETECT_LOCAL_CHANGE) : NAN;
        if (isfinite(lc) && lc >= 0.5)
            append(buf, cap, used, "%s%s (%.2f)", k++ ? ", " : "; changed: ", d->a[i].angle, lc);
    }
    append(buf, cap, used, "%s", k ? "." : "; no angle changed.");
    size_t flagged = 0;
    for (size_t i = 0; i < d->n; i++)
        flagged += bcd__det_angle_flagged(&d->a[i]);
    if (flagged)
        append(buf, cap, used, " %zu angle%s flagged by the quality gate (see warnings).", flagged,
               flagged == 1 ? " is" : "s are");
}

static char *overall_summary(const struct bcd__analysis *a, bool first_session, double coverage,
                             const struct bcd__detection *det)
{
    char buf[1536] = "";
    size_t used = 0;
    if (a->baseline_sessions == 0) {
        append(buf, sizeof buf, &used,
               "%s: the baseline is being established from %zu of 6 angles (change scores are 0 until a later "
               "session is compared with it). Confidence %.2f.",
               first_session ? "First session" : "No earlier session has an analysis made with this model",
               a->n_angles, a->confidence);
        detection_summary(buf, sizeof buf, &used, det);
        return bcd__strdup(buf);
    }
    append(buf, sizeof buf, &used, "Overall change score %.4f against the baseline of %d earlier session%s: %s.",
           a->overall_change_score, a->baseline_sessions, a->baseline_sessions == 1 ? "" : "s",
           trend_words(a->overall_change_score));
    size_t top = 0;
    for (size_t i = 1; i < a->n_angles; i++)
        if (a->angles[i].change_score > a->angles[top].change_score)
            top = i;
    if (a->n_angles && a->angles[top].baseline_sessions > 0) {
        const char *label = bcd_trend_label(a->angles[top].change_score);
        append(buf, sizeof buf, &used, " Largest change: %s (%.4f, %s).", a->angles[top].angle,
               a->angles[top].change_score, label ? label : "undetermined");
    }
    append(buf, sizeof buf, &used, " %zu of 6 angles analyzed (coverage %.2f); confidence %.2f.", a->n_angles,
           coverage, a->confidence);
    detection_summary(buf, sizeof buf, &used, det);
    return bcd__strdup(buf);
}

/* Mean of the vectors of `rows` that match (angle, dim) and belong to an earlier
 * session; *count = how many. out: dim floats (unchanged when *count is 0). */
static bcd_status baseline_mean(bcd_service *svc, const struct bcd__embedding *rows, size_t nrows,
                                const struct bcd__session_row *earlier, size_t nearlier, const char *angle,
                                size_t dim, float *out, int *count)
{
    *count = 0;
    float *buf = NULL;
    size_t k = 0;
    for (size_t i = 0; i < nrows; i++) {
        if (rows[i].dim != dim || strcmp(rows[i].angle, angle) != 0)
            continue;
        bool is_earlier = false;
        for (size_t j = 0; j < nearlier && !is_earlier; j++)
            is_earlier = strcmp(earlier[j].id, rows[i].session_id) == 0;
        if (!is_earlier)
            continue;
        float *nb = realloc(buf, (k + 1) * dim * sizeof *nb);
        if (!nb) {
            free(buf);
            return bcd__svc_fail(svc, BCD_ENOMEM, "out_of_memory", "out of memory");
        }
        buf = nb;
        memcpy(buf + k * dim, rows[i].vec, dim * sizeof *buf);
        k++;
    }
    bcd_status st = BCD_OK;
    if (k) {
        st = bcd_vector_mean(out, svc->ctx, buf, k, dim);
        if (st != BCD_OK)
            bcd__svc_from_ctx(svc, st);
        else
            *count = (int)k;
    }
    free(buf);
    return st;
}

static bcd_status distance(bcd_service *svc, const float *a, const float *b, size_t dim, const char *what,
                           double *out)
{
    bcd_status st = bcd_vector_cosine_distance(out, svc->ctx, a, dim, b, dim);
    if (st != BCD_OK) {
        bcd__svc_from_ctx(svc, st);
        char prefix[96];
        snprintf(prefix, sizeof prefix, "cannot score %s: ", what);
        bcd__svc_prefix(svc, prefix);
    }
    return st;
}

/* per_angle array of the seed's responses. */
static void per_angle_json(bool *ok, cJSON *arr, const struct bcd__analysis *a)
{
    for (size_t i = 0; *ok && i < a->n_angles; i++) {
        const struct bcd__angle_analysis *g = &a->angles[i];
        cJSON *it = cJSON_CreateObject();
        if (!it || !cJSON_AddItemToArray(arr, it)) {
            cJSON_Delete(it);
            *ok = false;
            break;
        }
        bcd__j_str(ok, it, "angle_type", g->angle);
        bcd__j_num(ok, it, "change_score", g->change_score);
        bcd__j_str(ok, it, "summary", g->summary);
        bcd__j_int(ok, it, "image_count", g->image_count);
        bcd__j_int(ok, it, "baseline_sessions", g->baseline_sessions);
        cJSON *q = bcd__j_obj(ok, it, "quality");
        bcd__j_num(ok, q, "score", g->quality);
        bcd__j_num(ok, q, "sharpness", g->sharpness);
        bcd__j_num(ok, q, "blur_variance", g->blur_variance);
        bcd__j_num(ok, q, "clipped_fraction", g->clipped_fraction);
    }
}

/* Canonical angle order, then order_index: each angle's images become adjacent. */
static int by_angle_then_index(const void *pa, const void *pb)
{
    const struct bcd__image_row *a = pa, *b = pb;
    int x = bcd__angle_index(a->angle), y = bcd__angle_index(b->angle);
    if (x != y)
        return x < y ? -1 : 1;
    return (a->order_index > b->order_index) - (a->order_index < b->order_index);
}

/* Change detection of the analyzed session against the nearest earlier completed
 * session of the user (quality only when there is none); heatmaps stored as blobs. */
static bcd_status detect_changes(bcd_service *svc, const struct bcd__session_row *srow,
                                 const struct bcd__session_row *sessions, size_t pos,
                                 const struct bcd__det_photo *cur, size_t ncur, struct bcd__detection *det)
{
    const struct bcd__session_row *prev = NULL;
    for (size_t k = pos; k-- > 0;)
        if (strcmp(sessions[k].status, "completed") == 0) {
            prev = &sessions[k];
            break;
        }
    struct bcd__det_photo photos[BCD__ANGLE_COUNT];
    size_t np = 0;
    bcd_status st = BCD_OK;
    if (prev)
        st = bcd__det_load_stored(svc, prev->id, photos, &np, NULL, NULL);
    if (st == BCD_OK)
        st = bcd__det_run(svc, det, cur, ncur, prev ? photos : NULL, np, prev ? prev->id : NULL, srow->id, NULL);
    bcd__det_photos_free(photos, np);
    const char *les = bcd_ctx_get(svc->ctx, "BCD_LESIONS");
    if (st == BCD_OK && !(les && strcmp(les, "off") == 0)) {
        /* the ids of the previous check's lesions are in its stored details */
        char *pdetails = NULL;
        if (prev && bcd__store_analysis_details(svc->store, prev->id, &pdetails) != BCD_OK) {
            bcd__error_clear(&svc->store->err);
            pdetails = NULL;
        }
        st = bcd__det_lesions(svc, det, srow->id, prev ? prev->id : NULL, pdetails);
        free(pdetails);
        if (st != BCD_OK)
            bcd__det_discard_blobs(svc, det);
    }
    return st;
}

static bcd_status analyze(bcd_service *svc, const struct bcd__session_row *srow, const char *model_spec,
                          struct bcd__analysis *a, bool *first_session, double factors[4],
                          struct bcd__detection *det)
{
    struct bcd__det_photo *dphotos = NULL;
    size_t ndet = 0;
    struct bcd__image_row *imgs = NULL;
    struct bcd__session_row *sessions = NULL;
    struct bcd__embedding *rows = NULL;
    struct quality *q = NULL;
    float *tensors = NULL, *embs = NULL, *tmp = NULL, *maps = NULL;
    size_t n = 0, nsessions = 0, nrows = 0;
    bcd_embedder *emb = NULL;

    bcd_status st = bcd__store_image_list(svc->store, srow->id, &imgs, &n);
    if (st != BCD_OK)
        return bcd__svc_from_store(svc, st);
    /* rows of unknown angles (only another backend could hold them) take no part */
    size_t kept = 0;
    unsigned set = 0;
    for (size_t i = 0; i < n; i++) {
        int ai = bcd__angle_index(imgs[i].angle);
        if (ai < 0)
            continue;
        set |= 1u << ai;
        if (kept != i)
            imgs[kept] = imgs[i];
        kept++;
    }
    n = kept;
    qsort(imgs, n, sizeof *imgs, by_angle_then_index);
    int distinct = 0;
    for (int i = 0; i < BCD__ANGLE_COUNT; i++)
        distinct += (set >> i) & 1u;
    if (distinct < BCD_MIN_ANGLES) {
        st = bcd__svc_fail(svc, BCD_ESTATE, "insufficient_angles",
                           "session %s has images of %d distinct angle%s; at least %d are required", srow->id,
                           distinct, distinct == 1 ? "" : "s", BCD_MIN_ANGLES);
        goto done;
    }
    if ((st = get_embedder(svc, model_spec, &emb)) != BCD_OK)
        goto done;
    const size_t dim = bcd_embedder_dim(emb);

    /* decode and preprocess everything first: a bad image fails before any work is kept */
    if (n > BCD_MAX_SESSION_IMAGES || n > SIZE_MAX / sizeof(float) / BCD_TENSOR_LEN ||
        n > SIZE_MAX / sizeof(float) / dim) {
        st = bcd__svc_fail(svc, BCD_ELIMIT, "too_many_images", "session %s has %zu images, limit %d", srow->id, n,
                           BCD_MAX_SESSION_IMAGES);
        goto done;
    }
    tensors = malloc(n * BCD_TENSOR_LEN * sizeof *tensors);
    q = calloc(n, sizeof *q);
    embs = malloc(n * dim * sizeof *embs);
    dphotos = calloc(n, sizeof *dphotos);
    if (!tensors || !q || !embs || !dphotos) {
        st = bcd__svc_fail(svc, BCD_ENOMEM, "out_of_memory", "out of memory for %zu images", n);
        goto done;
    }
    /* the first photo of each angle also goes to change detection (unless BCD_DETECT=off) */
    const char *dv = bcd_ctx_get(svc->ctx, "BCD_DETECT");
    bool detect_on = !dv || strcmp(dv, "off") != 0;
    /* with a model that has a feature map, detection also compares the maps (made in the
     * embedding's forward pass) */
    size_t mc = 0, mh = 0, mw = 0, map_len = 0;
    if (detect_on && bcd_embedder_map_shape(emb, &mc, &mh, &mw)) {
        map_len = mc * mh * mw;
        if (map_len > SIZE_MAX / sizeof(float) / n || !(maps = malloc(n * map_len * sizeof *maps))) {
            st = bcd__svc_fail(svc, BCD_ENOMEM, "out_of_memory", "out of memory for %zu feature maps", n);
            goto done;
        }
    }
    for (size_t i = 0; detect_on && i < n; i++)
        if (i == 0 || strcmp(imgs[i].angle, imgs[i - 1].angle) != 0) {
            snprintf(dphotos[i].angle, sizeof dphotos[i].angle, "%s", imgs[i].angle);
            snprintf(dphotos[i].image_id, sizeof dphotos[i].image_id, "%s", imgs[i].id);
            if (maps) { /* filled by the embedding below */
                dphotos[i].map = maps + i * map_len;
                dphotos[i].map_c = mc;
                dphotos[i].map_h = mh;
                dphotos[i].map_w = mw;
                snprintf(dphotos[i].map_model, sizeof dphotos[i].map_model, "%s", bcd_embedder_name(emb));
            }
        }
    for (size_t i = 0; i < n; i += BCD__ANGLE_COUNT) {
        size_t m = n - i < BCD__ANGLE_COUNT ? n - i : BCD__ANGLE_COUNT;
        if ((st = load_batch(svc, imgs + i, m, tensors + i * BCD_TENSOR_LEN, q + i, dphotos + i)) != BCD_OK)
            goto done;
        bcd__svc_progress(svc, "read", i + m, n); /* progress (jobs.c) */
    }
    for (size_t i = 0; i < n; i++)
        if (dphotos[i].img)
            dphotos[ndet++] = dphotos[i];
    for (size_t i = ndet; i < n; i++)
        dphotos[i].img = NULL; /* moved down (or none) */

    /* all angles in one batch */
    bcd__svc_progress(svc, "embed", 0, n); /* progress (jobs.c) */
    bcd__ctx_clear(svc->ctx);
    st = bcd_embedder_embed_maps(emb, embs, maps, tensors, n);
    if (st != BCD_OK) {
        bcd__svc_from_ctx(svc, st);
        goto done;
    }
    free(tensors);
    tensors = NULL;

    snprintf(a->session_id, sizeof a->session_id, "%s", srow->id);
    snprintf(a->model, sizeof a->model, "%s", bcd_embedder_name(emb));
    a->dim = dim;

    /* angle embeddings: each angle's images are adjacent (sorted above) */
    for (size_t i = 0; i < n && a->n_angles < BCD__ANGLE_COUNT;) {
        size_t j = i;
        while (j < n && strcmp(imgs[j].angle, imgs[i].angle) == 0)
            j++;
        struct bcd__angle_analysis *g = &a->angles[a->n_angles];
        float *v = malloc(dim * sizeof *v);
        if (!v) {
            st = bcd__svc_fail(svc, BCD_ENOMEM, "out_of_memory", "out of memory");
            goto done;
        }
        a->angle_vec[a->n_angles++] = v;
        snprintf(g->angle, sizeof g->angle, "%s", imgs[i].angle);
        g->image_count = (int)(j - i);
        st = bcd_vector_mean(v, svc->ctx, embs + i * dim, j - i, dim);
        if (st != BCD_OK) {
            bcd__svc_from_ctx(svc, st);
            goto done;
        }
        for (size_t k = i; k < j; k++) {
            g->blur_variance += q[k].blur_variance / (double)(j - i);
            g->clipped_fraction += q[k].clipped_fraction / (double)(j - i);
            g->sharpness += q[k].sharpness / (double)(j - i);
            g->quality += q[k].quality / (double)(j - i);
        }
        i = j;
    }
    /* session embedding: mean of the angle embeddings (each angle weighs the same) */
    tmp = malloc(a->n_angles * dim * sizeof *tmp);
    a->session_vec = malloc(dim * sizeof *a->session_vec);
    if (!tmp || !a->session_vec) {
        st = bcd__svc_fail(svc, BCD_ENOMEM, "out_of_memory", "out of memory");
        goto done;
    }
    for (size_t i = 0; i < a->n_angles; i++)
        memcpy(tmp + i * dim, a->angle_vec[i], dim * sizeof *tmp);
    st = bcd_vector_mean(a->session_vec, svc->ctx, tmp, a->n_angles, dim);
    if (st != BCD_OK) {
        bcd__svc_from_ctx(svc, st);
        goto done;
    }

    /* baseline: the user's sessions before this one (created_at order), same model */
    bcd__svc_progress(svc, "score", 0, 0); /* progress (jobs.c) */
    st = bcd__store_session_list(svc->store, srow->user_id, &sessions, &nsessions);
    if (st != BCD_OK) {
        bcd__svc_from_store(svc, st);
        goto done;
    }
    size_t pos = 0;
    while (pos < nsessions && strcmp(sessions[pos].id, srow->id) != 0)
        pos++;
    *first_session = pos == 0;
    st = bcd__store_embeddings_for_user(svc->store, srow->user_id, a->model, &rows, &nrows);
    if (st != BCD_OK) {
        bcd__svc_from_store(svc, st);
        goto done;
    }
    for (size_t i = 0; i < a->n_angles; i++) {
        struct bcd__angle_analysis *g = &a->angles[i];
        st = baseline_mean(svc, rows, nrows, sessions, pos, g->angle, dim, tmp, &g->baseline_sessions);
        if (st != BCD_OK)
            goto done;
        g->change_score = 0.0;
        if (g->baseline_sessions > 0) {
            char what[64];
            snprintf(what, sizeof what, "angle %s", g->angle);
            if ((st = distance(svc, a->angle_vec[i], tmp, dim, what, &g->change_score)) != BCD_OK)
                goto done;
        }
    }
    st = baseline_mean(svc, rows, nrows, sessions, pos, "", dim, tmp, &a->baseline_sessions);
    if (st != BCD_OK)
        goto done;
    a->overall_change_score = 0.0;
    if (a->baseline_sessions > 0 &&
        (st = distance(svc, a->session_vec, tmp, dim, "the session", &a->overall_change_score)) != BCD_OK)
        goto done;

    bcd__svc_progress(svc, "detect", 0, ndet); /* progress (jobs.c) */
    if (detect_on && (st = detect_changes(svc, srow, sessions, pos, dphotos, ndet, det)) != BCD_OK)
        goto done;

    /* confidence = angle coverage × image quality × baseline size × detection quality
     * (each angle whose photos the quality gate flags halves its share) */
    double quality = 0.0;
    for (size_t i = 0; i < a->n_angles; i++)
        quality += a->angles[i].quality / (double)a->n_angles;
    int b = a->baseline_sessions < BASELINE_FULL ? a->baseline_sessions : BASELINE_FULL;
    factors[0] = (double)a->n_angles / BCD__ANGLE_COUNT;
    factors[1] = quality;
    factors[2] = 0.5 + 0.5 * b / BASELINE_FULL;
    factors[3] = 1.0 - 0.5 * bcd__det_flagged_fraction(det);
    a->confidence = fmin(1.0, fmax(0.0, factors[0] * factors[1] * factors[2] * factors[3]));

    for (size_t i = 0; i < a->n_angles; i++)
        if (!(a->angles[i].summary = angle_summary(&a->angles[i]))) {
            st = bcd__svc_fail(svc, BCD_ENOMEM, "out_of_memory", "out of memory");
            goto done;
        }
    if (!(a->summary = overall_summary(a, *first_session, factors[0], det))) {
        st = bcd__svc_fail(svc, BCD_ENOMEM, "out_of_memory", "out of memory");
        goto done;
    }
    /* stored beside the scores: confidence factors and the change detection */
    bool ok = true;
    cJSON *details = cJSON_CreateObject();
    bcd__j_num(&ok, details, "angle_coverage", factors[0]);
    bcd__j_num(&ok, details, "image_quality", factors[1]);
    bcd__j_num(&ok, details, "baseline", factors[2]);
    bcd__j_num(&ok, details, "detection_quality", factors[3]);
    bcd__j_int(&ok, details, "images", (double)n);
    bcd__det_json(&ok, details, det);
    a->details_json = ok && details ? cJSON_PrintUnformatted(details) : NULL;
    cJSON_Delete(details);
    if (!a->details_json)
        st = bcd__svc_fail(svc, BCD_ENOMEM, "out_of_memory", "out of memory");
done:
    bcd__det_photos_free(dphotos, n);
    free(dphotos);
    bcd__embeddings_free(rows, nrows);
    free(sessions);
    free(tmp);
    free(embs);
    free(maps);
    free(tensors);
    free(q);
    free(imgs);
    return st;
}

bcd_status bcd_session_analyze(char **out, bcd_service *svc, const char *user_id, const char *session_id,
                               const char *model_spec)
{
    BCD__SVC_ENTER(svc, out);
    struct bcd__session_row srow;
    bcd_status st = bcd__svc_owned_session(svc, user_id, session_id, &srow);
    if (st != BCD_OK)
        return st;
    bcd__svc_progress_start(svc, srow.id); /* progress (jobs.c) */
    if (strcmp(srow.status, "completed") != 0)
        return bcd__svc_fail(svc, BCD_ESTATE, "session_not_completed",
                             "session %s is not completed (status \"%s\"): complete it before analysis", srow.id,
                             srow.status);
    struct bcd__analysis *a = calloc(1, sizeof *a);
    struct bcd__detection *det = calloc(1, sizeof *det);
    if (!a || !det) {
        free(a);
        free(det);
        return bcd__svc_fail(svc, BCD_ENOMEM, "out_of_memory", "out of memory");
    }
    det->probability = NAN; /* until detection runs (BCD_DETECT=off: never) */
    det->changed = -1;
    char *old_details = NULL;
    bool first = false, overwritten = false, had_old = false;
    double factors[4] = {0, 0, 0, 1};
    st = analyze(svc, &srow, model_spec, a, &first, factors, det);
    if (st == BCD_OK) {
        /* the analysis this one replaces: its heatmaps and working copies (named in its
         * details) go once the new one is saved */
        bcd_status os = bcd__store_analysis_details(svc->store, srow.id, &old_details);
        had_old = os == BCD_OK;
        if (!had_old)
            bcd__error_clear(&svc->store->err);
        bcd__svc_progress(svc, "save", 0, 1); /* progress (jobs.c) */
        st = bcd__store_analysis_save(svc->store, a, &overwritten);
        if (st != BCD_OK) {
            bcd__svc_from_store(svc, st);
        } else {
            if (had_old)
                bcd__det_drop_old_blobs(svc, old_details, det);
            bcd__svc_progress(svc, "analyzed", 1, 1); /* progress (jobs.c) */
        }
    }
    if (st != BCD_OK)
        bcd__det_discard_blobs(svc, det); /* nothing of a failed analysis stays */
    if (st == BCD_OK) {
        bool ok = true;
        cJSON *root = cJSON_CreateObject();
        bcd__j_bool(&ok, root, "success", true);
        cJSON *d = bcd__j_obj(&ok, root, "data");
        bcd__j_str(&ok, d, "session_id", a->session_id);
        bcd__j_bool(&ok, d, "overwritten", overwritten);
        bcd__j_str(&ok, d, "model", a->model);
        bcd__j_int(&ok, d, "dim", (double)a->dim);
        bcd__j_str(&ok, d, "created_at", a->created_at);
        bcd__j_bool(&ok, d, "is_first_session", first);
        bcd__j_int(&ok, d, "baseline_sessions", a->baseline_sessions);
        cJSON *sa = bcd__j_obj(&ok, d, "session_analysis");
        cJSON *per = bcd__j_arr(&ok, sa, "per_angle");
        per_angle_json(&ok, per, a);
        bcd__j_str(&ok, sa, "overall_summary", a->summary);
        cJSON *sc = bcd__j_obj(&ok, d, "scores");
        bcd__j_num(&ok, sc, "change_score", a->overall_change_score);
        bcd__j_num(&ok, sc, "confidence", a->confidence);
        cJSON *cf = bcd__j_obj(&ok, d, "confidence_factors");
        bcd__j_num(&ok, cf, "angle_coverage", factors[0]);
        bcd__j_num(&ok, cf, "image_quality", factors[1]);
        bcd__j_num(&ok, cf, "baseline", factors[2]);
        bcd__j_num(&ok, cf, "detection_quality", factors[3]);
        /* change detection: the same JSON that was stored */
        cJSON *stored = cJSON_Parse(a->details_json);
        if (!stored)
            ok = false;
        bcd__det_merge(&ok, d, per, stored);
        cJSON_Delete(stored);
        st = bcd__svc_emit(svc, root, ok, out);
    }
    bcd__det_clear(det);
    free(det);
    bcd__analysis_clear(a);
    free(old_details);
    free(a);
    return st;
}

bcd_status bcd_analysis_get(char **out, bcd_service *svc, const char *user_id, const char *session_id)
{
    BCD__SVC_ENTER(svc, out);
    struct bcd__session_row srow;
    bcd_status st = bcd__svc_owned_session(svc, user_id, session_id, &srow);
    if (st != BCD_OK)
        return st;
    struct bcd__analysis *a = calloc(1, sizeof *a);
    if (!a)
        return bcd__svc_fail(svc, BCD_ENOMEM, "out_of_memory", "out of memory");
    st = bcd__store_analysis_get(svc->store, srow.id, a);
    if (st != BCD_OK) {
        bcd__svc_from_store(svc, st);
        free(a);
        return st;
    }
    bool ok = true;
    cJSON *root = cJSON_CreateObject();
    bcd__j_bool(&ok, root, "success", true);
    cJSON *d = bcd__j_obj(&ok, root, "data");
    cJSON *sa = bcd__j_obj(&ok, d, "session_analysis");
    bcd__j_str(&ok, sa, "session_id", a->session_id);
    bcd__j_num(&ok, sa, "overall_change_score", a->overall_change_score);
    bcd__j_num(&ok, sa, "confidence", a->confidence);
    bcd__j_str(&ok, sa, "summary", a->summary);
    bcd__j_str(&ok, sa, "model", a->model);
    bcd__j_int(&ok, sa, "dim", (double)a->dim);
    bcd__j_int(&ok, sa, "baseline_sessions", a->baseline_sessions);
    bcd__j_str(&ok, sa, "created_at", a->created_at);
    /* details: the confidence factors, and the change detection where the analysis
     * made one (older analyses have only the factors) */
    cJSON *details = a->details_json ? cJSON_Parse(a->details_json) : NULL;
    cJSON *cf = bcd__j_obj(&ok, sa, "confidence_factors");
    static const char *const factor_keys[] = { "angle_coverage", "image_quality", "baseline", "detection_quality",
                                               "images" };
    for (size_t k = 0; k < sizeof factor_keys / sizeof *factor_keys; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(details, factor_keys[k]);
        if (cJSON_IsNumber(v))
            bcd__j_num(&ok, cf, factor_keys[k], v->valuedouble);
    }
    bcd__j_bool(&ok, sa, "has_embeddings", a->session_vec != NULL);
    cJSON *per = bcd__j_arr(&ok, sa, "per_angle");
    per_angle_json(&ok, per, a);
    bcd__det_merge(&ok, sa, per, details);
    cJSON_Delete(details);
    bcd__analysis_clear(a);
    free(a);
    return bcd__svc_emit(svc, root, ok, out);
}
