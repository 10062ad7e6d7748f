/* Reports and history (bcd/report.h): gather the user's analyzed sessions, their stored
 * analyses and, for the HTML report, the photos of the reported check and the previous
 * one from the store; lib/report formats. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bcd/analysis.h"
#include "bcd/detect.h"
#include "bcd/image.h"
#include "bcd/report.h"
#include "detection.h"
#include "report/report.h"
#include "service_internal.h"

#define THUMB_DEFAULT 320u
#define THUMB_MIN 64u
#define THUMB_MAX 1024u
#define JPEG_QUALITY 82
/* analyses read at once (a remote store reads them in parallel: one round trip per
 * batch instead of one per check; a batch of ResNet50 analyses is ~2 MB of JSON) */
#define READ_BATCH 8

/* Progress stages (bcd_service_set_progress()), documented in bcd/report.h. */
static const char STAGE_ANALYSES[] = "analyses";
static const char STAGE_PHOTOS[] = "photos";
static const char STAGE_WRITE[] = "write";

bcd_status bcd_report_options_init(bcd_report_options *opts, unsigned int version)
{
    if (!opts || version != BCD_REPORT_OPTIONS_VERSION)
        return BCD_EINVAL;
    const bcd_report_options init = BCD_REPORT_OPTIONS_INIT;
    *opts = init;
    return BCD_OK;
}

static bcd_status take_options(bcd_service *svc, const bcd_report_options *in, bcd_report_options *o)
{
    const bcd_report_options init = BCD_REPORT_OPTIONS_INIT;
    *o = init;
    if (!in)
        return BCD_OK;
    if (in->version != BCD_REPORT_OPTIONS_VERSION)
        return bcd__svc_fail(svc, BCD_EINVAL, "invalid_argument", "unknown bcd_report_options version %u",
                             in->version);
    if (in->flags & ~(BCD_REPORT_NO_PHOTOS | BCD_REPORT_NO_HEATMAPS))
        return bcd__svc_fail(svc, BCD_EINVAL, "invalid_argument", "unknown bcd_report_options flags 0x%x",
                             in->flags);
    if (in->thumbnail_size && (in->thumbnail_size < THUMB_MIN || in->thumbnail_size > THUMB_MAX))
        return bcd__svc_fail(svc, BCD_EINVAL, "invalid_argument", "thumbnail_size must be %u..%u px, not %u",
                             THUMB_MIN, THUMB_MAX, in->thumbnail_size);
    *o = *in;
    return BCD_OK;
}


static bcd_status oom(bcd_service *svc)
{
    return bcd__svc_fail(svc, BCD_ENOMEM, "out_of_memory", "out of memory");
}

/* The analyzed sessions of a user, oldest first. */
struct history {
    struct bcd__rep_session *s;
    size_t n;
};

static void history_free(struct history *h)
{
    for (size_t i = 0; i < h->n; i++)
        bcd__rep_session_clear(&h->s[i]);
    free(h->s);
    h->s = NULL;
    h->n = 0;
}

static bool same_model(const struct bcd__analysis *a, const struct bcd__analysis *b)
{
    return a->dim == b->dim && strcmp(a->model, b->model) == 0;
}

/* Cosine distance of two stored vectors of the same model; NaN when unavailable. */
static double vec_distance(const struct bcd__analysis *a, const float *av, const struct bcd__analysis *b,
                           const float *bv)
{
    double d;
    if (!av || !bv || !same_model(a, b) || bcd_vector_cosine_distance(&d, NULL, av, a->dim, bv, b->dim) != BCD_OK)
        return NAN;
    return d;
}

static bcd_status fill_session(struct bcd__rep_session *rs, const struct bcd__analysis *a, const char *created_at)
{
    bcd__rep_session_init(rs);
    snprintf(rs->session_id, sizeof rs->session_id, "%s", a->session_id);
    /* the session's time orders the history (the analysis time is when it was analyzed) */
    snprintf(rs->created_at, sizeof rs->created_at, "%s", created_at);
    snprintf(rs->model, sizeof rs->model, "%s", a->model);
    rs->overall_change_score = a->overall_change_score;
    rs->confidence = a->confidence;
    rs->baseline_sessions = a->baseline_sessions;
    if (a->summary && !(rs->summary = bcd__strdup(a->summary)))
        return BCD_ENOMEM;
    for (size_t i = 0; i < a->n_angles && rs->n_angles < BCD__REP_ANGLES; i++) {
        const struct bcd__angle_analysis *g = &a->angles[i];
        struct bcd__rep_angle *r = &rs->angles[rs->n_angles++];
        snprintf(r->angle, sizeof r->angle, "%s", g->angle);
        r->change_score = g->change_score;
        r->baseline_sessions = g->baseline_sessions;
        r->image_count = g->image_count;
        r->quality = g->quality;
        r->sharpness = g->sharpness;
        r->blur_variance = g->blur_variance;
        r->clipped_fraction = g->clipped_fraction;
        if (g->summary && !(r->summary = bcd__strdup(g->summary)))
            return BCD_ENOMEM;
    }
    return bcd__rep_read_details(rs, a->details_json);
}

/* The numbers of bcd_session_compare() against the previous analyzed session. */
static void against_previous(struct bcd__rep_session *rs, const struct bcd__analysis *c, const struct bcd__analysis *p)
{
    double sum_c = 0.0, sum_p = 0.0;
    size_t common = 0;
    for (size_t i = 0; i < rs->n_angles; i++) {
        struct bcd__rep_angle *g = &rs->angles[i];
        for (size_t j = 0; j < p->n_angles; j++) {
            if (strcmp(p->angles[j].angle, g->angle) != 0)
                continue;
            g->previous_score = p->angles[j].change_score;
            g->distance_previous = vec_distance(c, c->angle_vec[i], p, p->angle_vec[j]);
            sum_c += g->change_score;
            sum_p += p->angles[j].change_score;
            common++;
        }
    }
    rs->delta_previous = vec_distance(c, c->session_vec, p, p->session_vec);
    rs->delta_method = "embedding";
    if (isnan(rs->delta_previous)) {
        /* the seed's fallback, as bcd_session_compare() */
        rs->delta_method = "score";
        if (common) {
            rs->delta_previous = fabs(sum_c / (double)common - sum_p / (double)common);
        } else {
            double mc = 0.0, mp = 0.0;
            for (size_t i = 0; i < c->n_angles; i++)
                mc += c->angles[i].change_score / (double)c->n_angles;
            for (size_t j = 0; j < p->n_angles; j++)
                mp += p->angles[j].change_score / (double)p->n_angles;
            rs->delta_previous = fabs(mc - mp);
        }
    }
}

static bcd_status load_history(bcd_service *svc, const char *user_id, struct history *h)
{
    struct bcd__session_row *rows = NULL;
    size_t nrows = 0;
    bcd_status st = bcd__store_session_list(svc->store, user_id, &rows, &nrows);
    if (st != BCD_OK)
        return bcd__svc_from_store(svc, st);
    size_t total = 0;
    for (size_t i = 0; i < nrows; i++)
        total += rows[i].analyzed;
    h->s = calloc(total ? total : 1, sizeof *h->s);
    struct bcd__analysis *a = calloc(2, sizeof *a); /* the current and the previous analysis */
    if (!h->s || !a) {
        free(rows);
        free(a);
        return oom(svc);
    }
    struct bcd__analysis *cur = &a[0], *prev = &a[1];
    bool have_prev = false;
    double t0 = NAN;
    size_t done = 0;
    /* the analyses are read READ_BATCH at a time (a remote store reads a batch in
     * parallel) and used in order, the previous one kept for the comparison */
    struct bcd__analysis batch[READ_BATCH];
    bool found[READ_BATCH] = {false};
    size_t at[READ_BATCH]; /* the row of each */
    size_t nb = 0, bi = 0, next = 0;
    bcd__svc_progress(svc, STAGE_ANALYSES, 0, total);
    for (;;) {
        if (bi == nb) { /* the next batch of analyzed sessions */
            const char *ids[READ_BATCH];
            size_t failed = 0;
            nb = bi = 0;
            for (; next < nrows && nb < READ_BATCH; next++)
                if (rows[next].analyzed) {
                    at[nb] = next;
                    ids[nb++] = rows[next].id;
                }
            if (nb == 0)
                break;
            st = bcd__store_analysis_get_many(svc->store, ids, nb, batch, found, &failed);
            if (st != BCD_OK) {
                bcd__svc_from_store(svc, st);
                break;
            }
        }
        size_t i = bi++;
        if (!found[i]) /* removed meanwhile */
            continue;
        *cur = batch[i];
        found[i] = false;
        struct bcd__rep_session *rs = &h->s[h->n];
        st = fill_session(rs, cur, rows[at[i]].created_at);
        h->n++;
        if (st != BCD_OK) {
            oom(svc);
            bcd__analysis_clear(cur);
            break;
        }
        double t;
        if (bcd__rep_parse_time(rs->created_at, &t)) {
            if (isnan(t0))
                t0 = t;
            rs->days = (t - t0) / 86400.0;
        }
        if (have_prev)
            against_previous(rs, cur, prev);
        bcd__analysis_clear(prev);
        struct bcd__analysis *tmp = prev;
        prev = cur;
        cur = tmp;
        have_prev = true;
        bcd__svc_progress(svc, STAGE_ANALYSES, ++done, total);
    }
    for (size_t k = 0; k < READ_BATCH; k++) /* what a failure left unused */
        if (found[k])
            bcd__analysis_clear(&batch[k]);
    bcd__analysis_clear(&a[0]);
    bcd__analysis_clear(&a[1]);
    free(a);
    free(rows);
    if (st != BCD_OK)
        history_free(h);
    return st;
}

/* Photos */

/* The first image (lowest order_index) of each angle; paths[a] NULL when none. */
static void first_images(const struct bcd__image_row *imgs, size_t n, const char *paths[BCD__REP_ANGLES])
{
    int best[BCD__REP_ANGLES];
    for (int a = 0; a < BCD__REP_ANGLES; a++) {
        paths[a] = NULL;
        best[a] = 0;
    }
    for (size_t i = 0; i < n; i++) {
        int a = bcd__rep_angle_index(imgs[i].angle);
        if (a < 0 || (paths[a] && imgs[i].order_index >= best[a]))
            continue;
        paths[a] = imgs[i].storage_path;
        best[a] = imgs[i].order_index;
    }
}

/* Read and decode a stored photo; NULL when it cannot be had (missing, corrupt, too
 * large): the report shows a placeholder instead. *nomem on allocation failure. */
static bcd_image *load_photo(bcd_service *svc, const char *path, bool *nomem)
{
    unsigned char *data = NULL;
    size_t len = 0;
    bcd_status st = bcd__store_blob_get(svc->store, path, BCD__MAX_IMAGE_FILE, &data, &len);
    if (st != BCD_OK) {
        *nomem |= st == BCD_ENOMEM;
        bcd__error_clear(&svc->store->err);
        return NULL;
    }
    bcd_image *img = NULL;
    st = bcd_image_decode(&img, svc->ctx, data, len);
    free(data);
    if (st != BCD_OK) {
        *nomem |= st == BCD_ENOMEM;
        bcd__ctx_clear(svc->ctx);
        return NULL;
    }
    return img;
}

static bcd_status thumbnail(struct bcd__rep_image *out, const bcd_image *img, uint32_t side)
{
    bcd_image *small = NULL;
    bcd_status st = bcd__rep_downscale(&small, img, side);
    if (st == BCD_OK)
        st = bcd__rep_encode_jpeg(out, small, JPEG_QUALITY);
    bcd_image_free(small);
    return st;
}

/* The reduced photo of angle a (bcd__rep_angles order), NULL if none. */
static const bcd_image *of_angle(const struct bcd__det_photo *photos, size_t n, int a)
{
    for (size_t i = 0; i < n; i++)
        if (bcd__rep_angle_index(photos[i].angle) == a)
            return photos[i].img;
    return NULL;
}

/* The square of the photo around (x, y), side px (clamped to the photo), reduced to at
 * most CROP_SIDE px on a side and encoded. */
#define CROP_SIDE 192u
static bcd_status crop(struct bcd__rep_image *out, const bcd_image *img, double x, double y, double side)
{
    if (!img || !isfinite(x) || !isfinite(y))
        return BCD_OK;
    uint32_t n = (uint32_t)fmin(fmax(side, 16.0), (double)(img->width < img->height ? img->width : img->height));
    double x0 = fmin(fmax(x - n / 2.0, 0.0), (double)(img->width - n));
    double y0 = fmin(fmax(y - n / 2.0, 0.0), (double)(img->height - n));
    bcd_image c = { n, n, 3, malloc((size_t)n * n * 3) };
    if (!c.data)
        return BCD_ENOMEM;
    for (uint32_t r = 0; r < n; r++)
        memcpy(c.data + (size_t)r * n * 3, img->data + (((size_t)(y0 + r)) * img->width + (size_t)x0) * 3,
               (size_t)n * 3);
    bcd_image *small = NULL;
    bcd_status st = bcd__rep_downscale(&small, &c, CROP_SIDE);
    if (st == BCD_OK)
        st = bcd__rep_encode_png(out, small, BCD__REP_PNG_SMALL);
    bcd_image_free(small);
    free(c.data);
    return st;
}

/* Before and now of each changed lesion of an angle, from the full-size photos: a square
 * of five diameters (at least 3 % of the photo's longer side) around it. */
static bcd_status lesion_crops(bcd_service *svc, const struct bcd__rep_angle *g, const char *cpath, const char *ppath,
                               struct bcd__rep_photos *ph, int a)
{
    bool nomem = false;
    bcd_image *cur = cpath ? load_photo(svc, cpath, &nomem) : NULL;
    bcd_image *prev = ppath && !nomem ? load_photo(svc, ppath, &nomem) : NULL;
    bcd_status st = nomem ? BCD_ENOMEM : BCD_OK;
    for (size_t k = 0; k < g->n_lesions && st == BCD_OK; k++) {
        const struct bcd__rep_lesion *l = &g->lesions[k];
        double side = cur ? fmax(5.0 * l->d, 0.03 * fmax(cur->width, cur->height)) : 0;
        if (cur)
            st = crop(&ph->lesion_now[a][k], cur, l->x, l->y, side);
        /* the same place before: where the lesion was, or where a new one is now */
        double pside = cur && prev ? side * (double)prev->width / cur->width
                       : prev      ? fmax(5.0 * l->d, 0.03 * fmax(prev->width, prev->height))
                                   : 0;
        if (st == BCD_OK && prev)
            st = crop(&ph->lesion_before[a][k], prev, l->px, l->py, pside);
    }
    bcd_image_free(cur);
    bcd_image_free(prev);
    return st;
}

/* Thumbnails up to the detection size are made from the reduced photos (reading a
 * stored working copy costs a few milliseconds, decoding a 12 MP JPEG ~50); larger ones
 * from the photo itself. A missing change map is computed on the reduced photos, the
 * images analyze compares. */
static bcd_status load_photos(bcd_service *svc, const struct history *h, size_t cur, const bcd_report_options *o,
                              struct bcd__rep_photos *ph)
{
    const struct bcd__rep_session *s = &h->s[cur];
    const struct bcd__rep_session *p = cur ? &h->s[cur - 1] : NULL;
    uint32_t side = o->thumbnail_size ? o->thumbnail_size : THUMB_DEFAULT;
    bool from_reduced = side <= BCD__DET_SIDE;
    struct bcd__det_photo cr[BCD__ANGLE_COUNT], pr[BCD__ANGLE_COUNT];
    size_t ncr = 0, npr = 0;
    struct bcd__image_row *ci = NULL, *pi = NULL;
    size_t cn = 0, pn = 0;
    const char *cpath[BCD__REP_ANGLES], *ppath[BCD__REP_ANGLES];
    /* the loader lists the image rows of each check: which angles have a photo, and
     * the photo of each for thumbnails larger than the reduced photos */
    bcd_status st = bcd__det_load_stored(svc, s->session_id, cr, &ncr, &ci, &cn);
    if (st == BCD_OK && p)
        st = bcd__det_load_stored(svc, p->session_id, pr, &npr, &pi, &pn);
    if (st != BCD_OK)
        goto done;
    first_images(ci, cn, cpath);
    first_images(pi, pn, ppath);
    size_t total = 0, done = 0;
    for (int a = 0; a < BCD__REP_ANGLES; a++)
        total += cpath[a] != NULL;
    bcd__svc_progress(svc, STAGE_PHOTOS, 0, total);
    bool nomem = false;
    for (int a = 0; a < BCD__REP_ANGLES && !nomem; a++) {
        /* a photo that cannot be read has no reduced image: a placeholder */
        const bcd_image *cimg = of_angle(cr, ncr, a), *pimg = of_angle(pr, npr, a);
        if (!cpath[a])
            continue;
        if (from_reduced) {
            if (cimg)
                nomem |= thumbnail(&ph->current[a], cimg, side) == BCD_ENOMEM;
            if (pimg)
                nomem |= thumbnail(&ph->previous[a], pimg, side) == BCD_ENOMEM;
        } else {
            bcd_image *full = cimg ? load_photo(svc, cpath[a], &nomem) : NULL;
            if (full)
                nomem |= thumbnail(&ph->current[a], full, side) == BCD_ENOMEM;
            bcd_image_free(full);
            full = pimg && ppath[a] ? load_photo(svc, ppath[a], &nomem) : NULL;
            if (full)
                nomem |= thumbnail(&ph->previous[a], full, side) == BCD_ENOMEM;
            bcd_image_free(full);
        }
        /* the change map: the one the analysis stored, else made now from the two photos */
        const struct bcd__rep_angle *g = NULL;
        for (size_t i = 0; i < s->n_angles; i++)
            if (strcmp(s->angles[i].angle, bcd__rep_angles[a]) == 0)
                g = &s->angles[i];
        if (g && g->heatmap_path) {
            bcd_image *hm = load_photo(svc, g->heatmap_path, &nomem);
            if (hm) {
                nomem |= thumbnail(&ph->heatmap[a], hm, side) == BCD_ENOMEM;
                ph->heatmap_stored[a] = ph->heatmap[a].data != NULL;
            }
            bcd_image_free(hm);
        }
        if (!ph->heatmap[a].data && cimg && pimg && !(o->flags & BCD_REPORT_NO_HEATMAPS) && !nomem) {
            bcd_detect_result *r = NULL;
            bcd_image *hm = NULL;
            bcd_status ds = bcd_detect_compare(&r, svc->ctx, cimg, pimg, NULL);
            if (ds == BCD_OK && !(bcd_detect_result_flags(r) & BCD_DETECT_MISALIGNED))
                ds = bcd_detect_render_heatmap(&hm, svc->ctx, r, cimg, side);
            if (ds == BCD_OK && hm)
                nomem |= thumbnail(&ph->heatmap[a], hm, side) == BCD_ENOMEM;
            nomem |= ds == BCD_ENOMEM;
            bcd__ctx_clear(svc->ctx); /* a pair that cannot be compared just has no map */
            bcd_image_free(hm);
            bcd_detect_result_free(r);
        }
        if (g && g->n_lesions && !nomem)
            nomem |= lesion_crops(svc, g, cpath[a], p ? ppath[a] : NULL, ph, a) == BCD_ENOMEM;
        bcd__svc_progress(svc, STAGE_PHOTOS, ++done, total);
    }
    if (nomem)
        st = oom(svc);
done:
    bcd__det_photos_free(cr, ncr);
    bcd__det_photos_free(pr, npr);
    free(ci);
    free(pi);
    return st;
}

/* Operations */

#define ENTER(svc)                                                                                                \
    do {                                                                                                          \
        if (!(svc))                                                                                               \
            return BCD_EINVAL;                                                                                    \
        bcd__svc_clear(svc);                                                                                      \
        bcd__svc_progress_start(svc, NULL);                                                                       \
    } while (0)

bcd_status bcd_history(char **out, bcd_service *svc, const char *user_id)
{
    ENTER(svc);
    if (!out)
        return bcd__svc_fail(svc, BCD_EINVAL, "invalid_argument", "out is NULL");
    bcd_status st = bcd__svc_check_user(svc, user_id);
    if (st != BCD_OK)
        return st;
    struct history h = {0};
    if ((st = load_history(svc, user_id, &h)) != BCD_OK)
        return st;
    struct bcd__rep_trend t;
    if (bcd__rep_trend(&t, h.s, h.n) != BCD_OK) {
        history_free(&h);
        return oom(svc);
    }
    cJSON *doc = bcd__rep_history_json(user_id, h.s, h.n, &t);
    bool ok = doc != NULL;
    bcd__rep_trend_clear(&t);
    history_free(&h);
    return bcd__svc_emit(svc, doc, ok, out);
}

/* Common part of the reports: the history, the index of the session in it, the trend
 * and the text. */
struct report_ctx {
    struct history h;
    size_t cur;
    struct bcd__rep_trend t;
    struct bcd__rep_text text;
};

static void report_ctx_free(struct report_ctx *r)
{
    bcd__rep_text_clear(&r->text);
    bcd__rep_trend_clear(&r->t);
    history_free(&r->h);
}

static bcd_status prepare(bcd_service *svc, const char *user_id, const char *session_id, struct report_ctx *r)
{
    memset(r, 0, sizeof *r);
    struct bcd__session_row row;
    bcd_status st = bcd__svc_owned_session(svc, user_id, session_id, &row);
    if (st != BCD_OK)
        return st;
    if (!row.analyzed)
        return bcd__svc_fail(svc, BCD_ENOTFOUND, "analysis_not_found", "session %s has not been analyzed", row.id);
    if ((st = load_history(svc, user_id, &r->h)) != BCD_OK)
        return st;
    for (r->cur = 0; r->cur < r->h.n && strcmp(r->h.s[r->cur].session_id, row.id) != 0; r->cur++)
        ;
    if (r->cur == r->h.n) {
        history_free(&r->h);
        return bcd__svc_fail(svc, BCD_ENOTFOUND, "analysis_not_found", "session %s has not been analyzed", row.id);
    }
    if (bcd__rep_trend(&r->t, r->h.s, r->h.n) != BCD_OK ||
        bcd__rep_text(&r->text, &r->h.s[r->cur], r->cur ? &r->h.s[r->cur - 1] : NULL, &r->t) != BCD_OK) {
        report_ctx_free(r);
        return oom(svc);
    }
    return BCD_OK;
}

bcd_status bcd_report(char **out_json, bcd_service *svc, const char *user_id, const char *session_id)
{
    ENTER(svc);
    if (!out_json)
        return bcd__svc_fail(svc, BCD_EINVAL, "invalid_argument", "out_json is NULL");
    struct report_ctx r;
    bcd_status st = prepare(svc, user_id, session_id, &r);
    if (st != BCD_OK)
        return st;
    bool ok = true;
    cJSON *root = cJSON_CreateObject();
    bcd__j_bool(&ok, root, "success", true);
    cJSON *d = bcd__rep_report_json(r.h.s, r.h.n, r.cur, &r.t, &r.text);
    if (!d || !root || !cJSON_AddItemToObject(root, "data", d)) {
        cJSON_Delete(d);
        ok = false;
    }
    report_ctx_free(&r);
    return bcd__svc_emit(svc, root, ok, out_json);
}

bcd_status bcd_report_html_ext(bcd_service *svc, const char *user_id, const char *session_id, const char *path,
                               const bcd_report_options *opts)
{
    ENTER(svc);
    if (!path || !*path)
        return bcd__svc_fail(svc, BCD_EINVAL, "invalid_argument", "a file path for the report is required");
    bcd_report_options o;
    struct report_ctx r;
    bcd_status st = take_options(svc, opts, &o);
    if (st == BCD_OK)
        st = prepare(svc, user_id, session_id, &r);
    if (st != BCD_OK)
        return st;
    struct bcd__rep_photos *ph = NULL;
    if (!(o.flags & BCD_REPORT_NO_PHOTOS)) {
        if (!(ph = calloc(1, sizeof *ph)))
            st = oom(svc);
        else
            st = load_photos(svc, &r.h, r.cur, &o, ph);
    }
    char *html = NULL;
    size_t len = 0;
    if (st == BCD_OK) {
        char now[BCD__TS_LEN];
        bcd__timestamp_now(now);
        struct bcd__rep_html_input in = {
            .s = r.h.s, .n = r.h.n, .cur = r.cur, .trend = &r.t, .text = &r.text,
            .photos = ph, .generated_at = now, .version = bcd_version(),
        };
        if (bcd__rep_html(&html, &len, &in) != BCD_OK)
            st = oom(svc);
    }
    bcd__rep_photos_clear(ph);
    free(ph);
    report_ctx_free(&r);
    if (st == BCD_OK) {
        bcd__svc_progress(svc, STAGE_WRITE, 0, 1);
        st = bcd__file_write(&svc->err, path, html, len);
        if (st != BCD_OK)
            svc->has_err = true;
        else
            bcd__svc_progress(svc, STAGE_WRITE, 1, 1);
    }
    free(html);
    return st;
}

bcd_status bcd_report_html(bcd_service *svc, const char *user_id, const char *session_id, const char *path)
{
    return bcd_report_html_ext(svc, user_id, session_id, path, NULL);
}
