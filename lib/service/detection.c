/*
 * Change detection of a session against another one, angle by angle (lib/detect), for
 * analyze (against the previous session) and compare (against the one named).
 *
 * The first photo of each angle (lowest order_index) stands for the angle. Photos are
 * decoded and reduced to BCD__DET_SIDE once; the detector works on those, on several
 * threads (each with its own ctx), and its regions are mapped back to the coordinates
 * of the full-size current photo. A previous photo that cannot be read or decoded only
 * costs its angle the comparison (quality is still checked); running out of memory
 * fails the whole operation.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bcd/image.h"
#include "detect/detect_internal.h"
#include "detection.h"
#include "image/image_internal.h"
#include "report/report.h"

/* ------------------------------------------------------------------ parallel for */

struct pfor {
    pthread_mutex_t mu;
    size_t next, n;
    void (*fn)(void *, size_t);
    void *arg;
};

static void *pfor_worker(void *p)
{
    struct pfor *f = p;
    for (;;) {
        pthread_mutex_lock(&f->mu);
        size_t i = f->next < f->n ? f->next++ : f->n;
        pthread_mutex_unlock(&f->mu);
        if (i >= f->n)
            return NULL;
        f->fn(f->arg, i);
    }
}

void bcd__svc_parallel_for(size_t n, unsigned threads, void (*fn)(void *arg, size_t i), void *arg)
{
    if (threads > n)
        threads = (unsigned)n;
    if (threads <= 1) {
        for (size_t i = 0; i < n; i++)
            fn(arg, i);
        return;
    }
    struct pfor f = { .next = 0, .n = n, .fn = fn, .arg = arg };
    pthread_mutex_init(&f.mu, NULL);
    pthread_t tid[16];
    unsigned started = 0;
    if (threads > 16)
        threads = 16;
    /* the calling thread is one of the workers; a thread that cannot start is no error */
    for (unsigned t = 1; t < threads; t++)
        if (pthread_create(&tid[started], NULL, pfor_worker, &f) == 0)
            started++;
    pfor_worker(&f);
    for (unsigned t = 0; t < started; t++)
        pthread_join(tid[t], NULL);
    pthread_mutex_destroy(&f.mu);
}

unsigned bcd__svc_threads(const bcd_service *svc, unsigned max)
{
    unsigned long long want = bcd__cfg_ull(svc->ctx, BCD__CFG_THREADS, 0);
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned t = want ? (want < max ? (unsigned)want : max) : c > 0 ? (unsigned)c : 1u;
    return t < max ? t : max;
}

/* ------------------------------------------------------------------ loading photos */

static int first_of_angle(const struct bcd__image_row *imgs, size_t n, size_t idx[BCD__ANGLE_COUNT])
{
    int found = 0;
    for (int a = 0; a < BCD__ANGLE_COUNT; a++)
        idx[a] = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        int a = bcd__angle_index(imgs[i].angle);
        if (a < 0)
            continue;
        if (idx[a] == SIZE_MAX) {
            idx[a] = i;
            found++;
        } else if (imgs[i].order_index < imgs[idx[a]].order_index) {
            idx[a] = i;
        }
    }
    return found;
}

bcd_status bcd__det_reduce(struct bcd__det_photo *p, bcd_image **photo)
{
    bcd_image *img = *photo;
    p->width = img->width;
    p->height = img->height;
    if (img->width <= BCD__DET_SIDE && img->height <= BCD__DET_SIDE) {
        p->img = img; /* small enough as it is */
        *photo = NULL;
        return BCD_OK;
    }
    return bcd__rep_downscale(&p->img, img, BCD__DET_SIDE);
}

static void reduce_row(void *arg, const uint8_t *row, uint32_t y)
{
    bcd__rep_downscaler_row(arg, row, y);
}

bcd_status bcd__det_preprocess_reduce(float *tensor, size_t tensor_len, struct bcd__det_photo *p, bcd_image **photo)
{
    bcd_image *img = *photo;
    if (img->width <= BCD__DET_SIDE && img->height <= BCD__DET_SIDE) {
        bcd_status st = bcd_image_preprocess(tensor, tensor_len, img);
        if (st == BCD_OK)
            st = bcd__det_reduce(p, photo);
        return st;
    }
    struct bcd__rep_downscaler d;
    bcd_status st = bcd__rep_downscaler_init(&d, img->width, img->height, BCD__DET_SIDE);
    if (st != BCD_OK)
        return st;
    st = bcd__image_preprocess_rows(tensor, tensor_len, img, reduce_row, &d);
    if (st != BCD_OK) {
        bcd__rep_downscaler_clear(&d);
        return st;
    }
    if (!(p->img = bcd__rep_downscaler_finish(&d)))
        return BCD_ERROR; /* every row is handed over in order: not reached */
    p->width = img->width;
    p->height = img->height;
    return BCD_OK;
}

/* The blob named in a per_angle item's object `what` ({"key", "image_id", ...}) for
 * image_id: that object (its key in *key), or NULL when the item has none. */
static const cJSON *stored_blob(const cJSON *item, const char *what, const char *image_id, const char **key)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(item, what);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "image_id");
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(o, "key");
    if (!cJSON_IsString(id) || strcmp(id->valuestring, image_id) != 0 || !cJSON_IsString(k))
        return NULL;
    *key = k->valuestring;
    return o;
}

/* The working copy the stored details name for image_id: its blob key and the size of
 * its photo. */
static const char *stored_copy(const cJSON *per_angle, const char *image_id, uint32_t *w, uint32_t *h)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, per_angle)
    {
        const char *key = NULL;
        const cJSON *c = stored_blob(it, "working_copy", image_id, &key);
        const cJSON *jw = cJSON_GetObjectItemCaseSensitive(c, "width");
        const cJSON *jh = cJSON_GetObjectItemCaseSensitive(c, "height");
        if (!c || !cJSON_IsNumber(jw) || !cJSON_IsNumber(jh))
            continue;
        double dw = jw->valuedouble, dh = jh->valuedouble;
        if (!(dw >= 1 && dw <= BCD_DEFAULT_MAX_DIMENSION && dh >= 1 && dh <= BCD_DEFAULT_MAX_DIMENSION) ||
            dw != floor(dw) || dh != floor(dh))
            continue;
        *w = (uint32_t)dw;
        *h = (uint32_t)dh;
        return key;
    }
    return NULL;
}

/* What is read for one angle: its stored working copy (copy_w x copy_h photo), or the
 * photo. */
struct load_item {
    const char *path;
    bool copy;
    uint32_t copy_w, copy_h;
    const char *photo_path;
    unsigned char *data;
    size_t len;
    bcd_status st;
};

struct load_job {
    struct load_item *items;
    const size_t *todo;
    struct bcd__det_photo *photos;
    const bcd_ctx *proto;
};

static void load_one(void *arg, size_t i)
{
    struct load_job *j = arg;
    size_t k = j->todo[i];
    struct load_item *it = &j->items[k];
    struct bcd__det_photo *p = &j->photos[k];
    bcd_ctx *ctx = NULL;
    bcd_image *img = NULL;
    if (!it->data) { /* not read */
        it->st = BCD_EIO;
        return;
    }
    bcd_status st = bcd__ctx_clone(&ctx, j->proto);
    if (st == BCD_OK)
        st = bcd_image_decode(&img, ctx, it->data, it->len);
    if (st == BCD_OK && it->copy) {
        /* the copy must be what reducing its photo gives */
        uint32_t nw, nh;
        bcd__rep_downscale_size(it->copy_w, it->copy_h, BCD__DET_SIDE, &nw, &nh);
        if (img->channels != 3 || img->width != nw || img->height != nh) {
            st = BCD_EFORMAT;
        } else {
            p->img = img;
            p->width = it->copy_w;
            p->height = it->copy_h;
            p->from_copy = true;
            img = NULL;
        }
    } else if (st == BCD_OK) {
        st = bcd__det_reduce(p, &img);
    }
    it->st = st;
    bcd_image_free(img);
    bcd_ctx_free(ctx);
    free(it->data);
    it->data = NULL;
}

/* Read the blobs paths[0..n) into data and lens (at once where the store can; one by one
 * when one of them fails, keeping what reads: a blob that cannot be read is NULL).
 * BCD_ENOMEM (nothing kept) or BCD_OK. */
static bcd_status read_blobs(bcd_service *svc, const char *const *paths, size_t n, unsigned char **data,
                             size_t *lens)
{
    size_t failed = 0;
    bcd_status st = bcd__store_blob_get_many(svc->store, paths, n, BCD__MAX_IMAGE_FILE, data, lens, &failed);
    if (st == BCD_OK)
        return st;
    bcd__error_clear(&svc->store->err);
    if (st == BCD_ENOMEM)
        return st;
    for (size_t i = 0; i < n; i++) {
        st = bcd__store_blob_get(svc->store, paths[i], BCD__MAX_IMAGE_FILE, &data[i], &lens[i]);
        bcd__error_clear(&svc->store->err);
        if (st == BCD_ENOMEM) {
            for (size_t k = 0; k < i; k++) {
                free(data[k]);
                data[k] = NULL;
            }
            return st;
        }
    }
    return BCD_OK;
}

/* Read the blobs of items[todo[0..n)] (read_blobs()). BCD_ENOMEM only. */
static bcd_status read_items(bcd_service *svc, struct load_item *items, const size_t *todo, size_t n)
{
    const char *paths[BCD__ANGLE_COUNT];
    unsigned char *data[BCD__ANGLE_COUNT] = { 0 };
    size_t lens[BCD__ANGLE_COUNT] = { 0 };
    for (size_t i = 0; i < n; i++)
        paths[i] = items[todo[i]].path;
    bcd_status st = read_blobs(svc, paths, n, data, lens);
    if (st != BCD_OK)
        return st;
    for (size_t i = 0; i < n; i++) {
        items[todo[i]].data = data[i];
        items[todo[i]].len = lens[i];
    }
    return BCD_OK;
}

/* Largest feature map read back: channels, and cells on a side. */
#define MAX_MAP_CHANNELS 65536u
#define MAX_MAP_SIDE 64u

/* The feature map the stored details name for image_id, and its shape and model. */
static const char *stored_map(const cJSON *per_angle, const char *image_id, size_t shape[3], const char **model)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, per_angle)
    {
        const char *key = NULL;
        const cJSON *f = stored_blob(it, "feature_map", image_id, &key);
        const cJSON *mo = cJSON_GetObjectItemCaseSensitive(f, "model");
        const char *names[3] = { "channels", "rows", "cols" };
        const double max[3] = { MAX_MAP_CHANNELS, MAX_MAP_SIDE, MAX_MAP_SIDE };
        if (!f || !cJSON_IsString(mo))
            continue;
        bool ok = true;
        for (int k = 0; k < 3 && ok; k++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(f, names[k]);
            ok = cJSON_IsNumber(v) && v->valuedouble >= 1 && v->valuedouble <= max[k] &&
                 v->valuedouble == floor(v->valuedouble);
            if (ok)
                shape[k] = (size_t)v->valuedouble;
        }
        if (!ok)
            continue;
        *model = mo->valuestring;
        return key;
    }
    return NULL;
}

/* One stored feature map decoded into its photo's map_buf (left out when it does not
 * match its shape); st: BCD_ENOMEM or BCD_OK. */
struct map_job {
    struct bcd__det_photo *photos;
    const size_t *which;
    size_t (*shape)[3];
    unsigned char **data;
    size_t *lens;
    bcd_status *st;
};

static void map_one(void *arg, size_t i)
{
    struct map_job *j = arg;
    struct bcd__det_photo *p = &j->photos[j->which[i]];
    size_t c = j->shape[i][0], h = j->shape[i][1], w = j->shape[i][2], len = c * h * w;
    j->st[i] = BCD_OK;
    if (!j->data[i])
        return;
    uint16_t *half = malloc(len * sizeof *half);
    float *f = half ? malloc(len * sizeof *f) : NULL;
    bcd_status dst = f ? bcd__rep_decode_png16(half, (uint32_t)(h * w), (uint32_t)c, j->data[i], j->lens[i])
                       : BCD_ENOMEM;
    if (dst == BCD_OK) {
        bcd__rep_floats(f, half, len);
        p->map = p->map_buf = f;
        p->map_c = c;
        p->map_h = h;
        p->map_w = w;
        f = NULL;
    }
    j->st[i] = dst == BCD_ENOMEM ? dst : BCD_OK;
    free(f);
    free(half);
}

/* The feature maps the stored details name for photos[0..m), read and decoded (in
 * parallel) into their map_buf. A map that cannot be read or does not match its shape
 * is left out. BCD_ENOMEM only. */
static bcd_status load_maps(bcd_service *svc, const cJSON *per, struct bcd__det_photo *photos, size_t m)
{
    const char *paths[BCD__ANGLE_COUNT];
    size_t which[BCD__ANGLE_COUNT], shape[BCD__ANGLE_COUNT][3], n = 0;
    for (size_t k = 0; k < m; k++) {
        const char *model = NULL;
        if (!(paths[n] = stored_map(per, photos[k].image_id, shape[n], &model)))
            continue;
        snprintf(photos[k].map_model, sizeof photos[k].map_model, "%s", model);
        which[n++] = k;
    }
    if (!n)
        return BCD_OK;
    unsigned char *data[BCD__ANGLE_COUNT] = { 0 };
    size_t lens[BCD__ANGLE_COUNT] = { 0 };
    bcd_status sts[BCD__ANGLE_COUNT], st = read_blobs(svc, paths, n, data, lens);
    if (st == BCD_OK) {
        struct map_job job = { photos, which, shape, data, lens, sts };
        bcd__svc_parallel_for(n, bcd__svc_threads(svc, BCD__ANGLE_COUNT), map_one, &job);
        for (size_t i = 0; i < n; i++)
            if (sts[i] == BCD_ENOMEM)
                st = BCD_ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        free(data[i]);
    return st == BCD_ENOMEM ? st : BCD_OK;
}

static bcd_status load_session(bcd_service *svc, const char *session_id, const char *details,
                               struct bcd__det_photo *photos, size_t *n_out, struct bcd__image_row **rows,
                               size_t *nrows)
{
    struct bcd__image_row *imgs = NULL;
    size_t n = 0, idx[BCD__ANGLE_COUNT];
    *n_out = 0;
    if (rows) {
        *rows = NULL;
        *nrows = 0;
    }
    bcd_status st = bcd__store_image_list(svc->store, session_id, &imgs, &n);
    if (st != BCD_OK)
        return bcd__svc_from_store(svc, st);
    cJSON *stored = details ? cJSON_Parse(details) : NULL;
    const cJSON *per = cJSON_GetObjectItemCaseSensitive(stored, "per_angle");
    struct load_item items[BCD__ANGLE_COUNT];
    size_t m = 0;
    first_of_angle(imgs, n, idx);
    for (int a = 0; a < BCD__ANGLE_COUNT; a++) {
        if (idx[a] == SIZE_MAX)
            continue;
        const struct bcd__image_row *r = &imgs[idx[a]];
        memset(&photos[m], 0, sizeof photos[m]);
        memset(&items[m], 0, sizeof items[m]);
        snprintf(photos[m].angle, sizeof photos[m].angle, "%s", r->angle);
        snprintf(photos[m].image_id, sizeof photos[m].image_id, "%s", r->id);
        items[m].photo_path = r->storage_path;
        items[m].path = stored_copy(per, r->id, &items[m].copy_w, &items[m].copy_h);
        items[m].copy = items[m].path != NULL;
        if (!items[m].copy)
            items[m].path = r->storage_path;
        m++;
    }
    /* the copies (or photos), then the photos of copies that could not be used */
    size_t todo[BCD__ANGLE_COUNT], nt = m;
    for (size_t k = 0; k < m; k++)
        todo[k] = k;
    for (int round = 0; round < 2 && nt && st == BCD_OK; round++) {
        if ((st = read_items(svc, items, todo, nt)) != BCD_OK)
            break;
        struct load_job job = { items, todo, photos, svc->ctx };
        bcd__svc_parallel_for(nt, bcd__svc_threads(svc, BCD__ANGLE_COUNT), load_one, &job);
        size_t again = 0;
        for (size_t i = 0; i < nt; i++) {
            struct load_item *it = &items[todo[i]];
            if (it->st == BCD_ENOMEM)
                st = BCD_ENOMEM;
            else if (it->st != BCD_OK && it->copy) {
                it->copy = false;
                it->path = it->photo_path;
                todo[again++] = todo[i];
            }
        }
        nt = again;
    }
    if (st == BCD_OK)
        st = load_maps(svc, per, photos, m);
    cJSON_Delete(stored);
    size_t kept = 0;
    for (size_t k = 0; k < m; k++) {
        if (st == BCD_OK && items[k].st == BCD_OK && photos[k].img) {
            if (kept != k)
                photos[kept] = photos[k];
            kept++;
        } else {
            bcd_image_free(photos[k].img);
            free(photos[k].map_buf);
        }
    }
    *n_out = kept;
    if (st != BCD_OK) {
        free(imgs);
        bcd__det_photos_free(photos, kept);
        *n_out = 0;
        return bcd__svc_fail(svc, BCD_ENOMEM, "out_of_memory", "out of memory while reading photos");
    }
    if (rows) {
        *rows = imgs;
        *nrows = n;
    } else {
        free(imgs);
    }
    return BCD_OK;
}

bcd_status bcd__det_load_session(bcd_service *svc, const char *session_id, const char *details,
                                 struct bcd__det_photo *photos, size_t *n_out)
{
    return load_session(svc, session_id, details, photos, n_out, NULL, NULL);
}

bcd_status bcd__det_load_stored(bcd_service *svc, const char *session_id, struct bcd__det_photo *photos,
                                size_t *n_out, struct bcd__image_row **rows, size_t *nrows)
{
    /* the details of its stored analysis name the working copies of its photos */
    char *details = NULL;
    bcd_status got = bcd__store_analysis_details(svc->store, session_id, &details), st;
    if (got == BCD_ENOMEM) {
        *n_out = 0;
        if (rows) {
            *rows = NULL;
            *nrows = 0;
        }
        st = bcd__svc_from_store(svc, got);
    } else {
        if (got != BCD_OK) /* none, or unreadable: the photos are decoded */
            bcd__error_clear(&svc->store->err);
        st = load_session(svc, session_id, got == BCD_OK ? details : NULL, photos, n_out, rows, nrows);
    }
    free(details);
    return st;
}

void bcd__det_photos_free(struct bcd__det_photo *photos, size_t n)
{
    for (size_t i = 0; photos && i < n; i++) {
        bcd_image_free(photos[i].img);
        photos[i].img = NULL;
        free(photos[i].map_buf);
        photos[i].map_buf = NULL;
        photos[i].map = NULL;
    }
}

/* ------------------------------------------------------------------ detection */

struct det_job {
    const struct bcd__det_photo *cur;
    const struct bcd__det_photo *const *prev; /* per current angle, NULL if none */
    struct bcd__det_angle *a;
    struct bcd__rep_image *png;               /* heatmaps encoded, per angle */
    struct bcd__rep_image *copy;              /* working copies encoded, per angle */
    struct bcd__rep_image *fmap;              /* feature maps encoded, per angle */
    char (*sha)[3][65];                       /* their SHA-256 (hex) when stored: heatmap, copy, map */
    bool want_heatmap, want_copy;
    bcd_status *st;
    const bcd_ctx *proto;
};

/* Affine maps (x' = a[0] x + a[1] y + a[2], y' = a[3] x + a[4] y + a[5]): f after g, and
 * the inverse (false when singular). */
static void affine_then(double out[6], const double f[6], const double g[6])
{
    double r[6] = { f[0] * g[0] + f[1] * g[3], f[0] * g[1] + f[1] * g[4], f[0] * g[2] + f[1] * g[5] + f[2],
                    f[3] * g[0] + f[4] * g[3], f[3] * g[1] + f[4] * g[4], f[3] * g[2] + f[4] * g[5] + f[5] };
    memcpy(out, r, sizeof r);
}

static bool affine_invert(double out[6], const double a[6])
{
    double det = a[0] * a[4] - a[1] * a[3];
    if (!(fabs(det) > 1e-12))
        return false;
    double r[6] = { a[4] / det, -a[1] / det, 0, -a[3] / det, a[0] / det, 0 };
    r[2] = -(r[0] * a[2] + r[1] * a[5]);
    r[5] = -(r[3] * a[2] + r[4] * a[5]);
    memcpy(out, r, sizeof r);
    return true;
}

/* The cells of a photo's feature map (centres at integers) -> pixels of its reduced image
 * (centres at integers). The tensor is the photo's centre square (offsets rounded down)
 * resized to the network input, which the map's cells tile. */
static void cells_to_reduced(double a[6], const struct bcd__det_photo *p)
{
    uint32_t side = p->width < p->height ? p->width : p->height;
    double kx = (double)p->img->width / p->width, ky = (double)p->img->height / p->height;
    double cw = (double)side / (double)p->map_w, ch = (double)side / (double)p->map_h;
    a[0] = cw * kx;
    a[1] = 0;
    a[2] = ((p->width - side) / 2 + 0.5 * cw) * kx - 0.5;
    a[3] = 0;
    a[4] = ch * ky;
    a[5] = ((p->height - side) / 2 + 0.5 * ch) * ky - 0.5;
}

/* The feature maps of an aligned pair compared cell by cell into g (nothing when they
 * are not of one model and shape). false: out of memory. */
static bool compare_maps(struct bcd__det_angle *g, const struct bcd__det_photo *c, const struct bcd__det_photo *p)
{
    double m[6], ac[6], ap[6], inv[6];
    if (!c->map || !p->map || strcmp(c->map_model, p->map_model) != 0 || c->map_c != p->map_c ||
        c->map_h != p->map_h || c->map_w != p->map_w || bcd_detect_result_matrix(g->r, m) != BCD_OK ||
        !affine_invert(inv, m))
        return true;
    /* current cells -> current reduced -> previous reduced (the alignment maps previous
     * to current) -> previous cells */
    cells_to_reduced(ac, c);
    cells_to_reduced(ap, p);
    if (!affine_invert(ap, ap))
        return true;
    affine_then(m, inv, ac);
    affine_then(m, ap, m);
    if (!(g->feature = malloc(c->map_h * c->map_w * sizeof *g->feature)))
        return false;
    g->fh = c->map_h;
    g->fw = c->map_w;
    bcd_detect_compare_maps(g->feature, c->map, p->map, c->map_c, c->map_h, c->map_w, m);
    return true;
}

/* A feature map as a 16-bit grey PNG of halves: one row per channel, one column per cell. */
static bcd_status encode_map(struct bcd__rep_image *out, const struct bcd__det_photo *c)
{
    size_t cells = c->map_h * c->map_w, len = c->map_c * cells;
    uint16_t *h = malloc(len * sizeof *h);
    if (!h)
        return BCD_ENOMEM;
    bcd__rep_halves(h, c->map, len);
    bcd_status st = bcd__rep_encode_png16(out, h, (uint32_t)cells, (uint32_t)c->map_c);
    free(h);
    return st;
}

static void detect_one(void *arg, size_t i)
{
    struct det_job *j = arg;
    bcd_ctx *ctx = NULL;
    bcd_status st = bcd__ctx_clone(&ctx, j->proto);
    const struct bcd__det_photo *c = &j->cur[i], *p = j->prev[i];
    if (st == BCD_OK) {
        if (p) {
            st = bcd_detect_compare(&j->a[i].r, ctx, c->img, p->img, NULL);
            j->a[i].compared = st == BCD_OK;
            if (st == BCD_OK && !(bcd_detect_result_flags(j->a[i].r) & BCD_DETECT_MISALIGNED) &&
                !compare_maps(&j->a[i], c, p))
                st = BCD_ENOMEM;
        }
        /* a pair the detector refuses (e.g. too small) still gets its quality checked */
        if (!j->a[i].r && st != BCD_ENOMEM)
            st = bcd_detect_quality(&j->a[i].r, ctx, c->img, NULL);
    }
    if (st == BCD_OK && j->want_heatmap && j->a[i].compared &&
        !(bcd_detect_result_flags(j->a[i].r) & BCD_DETECT_MISALIGNED)) {
        bcd_image *hm = NULL;
        st = bcd_detect_render_heatmap(&hm, ctx, j->a[i].r, c->img, BCD__DET_HEATMAP_SIDE);
        if (st == BCD_OK)
            st = bcd__rep_encode_png(&j->png[i], hm, BCD__REP_PNG_SMALL);
        bcd_image_free(hm);
    }
    if (st == BCD_OK && j->want_copy && !c->from_copy)
        st = bcd__rep_encode_png(&j->copy[i], c->img, BCD__REP_PNG_FAST);
    /* a map read back from the store (map_buf) is stored already */
    if (st == BCD_OK && j->want_copy && c->map && !c->map_buf && c->map_h * c->map_w <= MAX_MAP_SIDE * MAX_MAP_SIDE &&
        c->map_c <= MAX_MAP_CHANNELS)
        st = encode_map(&j->fmap[i], c);
    /* the blobs' names, hashed here on every thread rather than one by one when stored
     * (where a hash that failed here is tried again) */
    const struct bcd__rep_image *blobs[3] = { &j->png[i], &j->copy[i], &j->fmap[i] };
    for (int k = 0; k < 3 && st == BCD_OK && j->want_copy; k++)
        if (blobs[k]->data && bcd__sha256_hex(blobs[k]->data, blobs[k]->len, j->sha[i][k]) != BCD_OK)
            j->sha[i][k][0] = '\0';
    j->st[i] = st;
    bcd_ctx_free(ctx);
}

static bcd_status mkdir_p(bcd_service *svc, const char *dir)
{
    bcd_status st = bcd__mkdirs(&svc->err, dir, NULL); /* 0700: heatmaps are photos of a person */
    if (st != BCD_OK)
        svc->has_err = true;
    return st;
}

/* One overlay written as dir/<angle>.png through a temporary file renamed into place
 * (mode 0600: a photo of a person); *path_out: the path (caller frees). */
static bcd_status write_heatmap(bcd_service *svc, const char *dir, const char *angle, const void *data,
                                size_t len, char **path_out)
{
    size_t n = strlen(dir) + strlen(angle) + 6;
    char *path = malloc(n);
    if (!path)
        return bcd__svc_fail(svc, BCD_ENOMEM, "out_of_memory", "out of memory");
    snprintf(path, n, "%s/%s.png", dir, angle);
    bcd_status st = bcd__file_write(&svc->err, path, data, len);
    if (st != BCD_OK) {
        svc->has_err = true;
        free(path);
        return st;
    }
    *path_out = path;
    return BCD_OK;
}

/* Store an encoded image as a blob of session; *key_out: its key (caller frees). sha: its
 * SHA-256 in hex, or "" (hashed here). */
static bcd_status put_blob(bcd_service *svc, const char *session, const struct bcd__rep_image *im, char sha[65],
                           char **key_out, bool *created, const char *what)
{
    char *key = malloc(BCD__PATH_MAX);
    if (!key)
        return bcd__svc_fail(svc, BCD_ENOMEM, "out_of_memory", "out of memory");
    bcd_status st = sha[0] ? BCD_OK : bcd__sha256_hex(im->data, im->len, sha);
    if (st == BCD_OK)
        st = bcd__store_blob_put(svc->store, session, sha, "png", im->data, im->len, key, created);
    if (st != BCD_OK) {
        free(key);
        bcd__svc_from_store(svc, st);
        char prefix[64];
        snprintf(prefix, sizeof prefix, "cannot store %s: ", what);
        bcd__svc_prefix(svc, prefix);
        return st;
    }
    *key_out = key;
    return BCD_OK;
}

bcd_status bcd__det_run(bcd_service *svc, struct bcd__detection *d, const struct bcd__det_photo *cur, size_t n,
                        const struct bcd__det_photo *prev, size_t nprev, const char *previous_session_id,
                        const char *heatmap_session, const char *heatmap_dir)
{
    memset(d, 0, sizeof *d);
    d->probability = NAN;
    d->changed = -1;
    if (n > BCD__ANGLE_COUNT)
        n = BCD__ANGLE_COUNT;
    snprintf(d->previous_session_id, sizeof d->previous_session_id, "%s",
             previous_session_id ? previous_session_id : "");
    const struct bcd__det_photo *pair[BCD__ANGLE_COUNT];
    struct bcd__rep_image png[BCD__ANGLE_COUNT], copy[BCD__ANGLE_COUNT], fmap[BCD__ANGLE_COUNT];
    bcd_status sts[BCD__ANGLE_COUNT];
    memset(png, 0, sizeof png);
    memset(copy, 0, sizeof copy);
    memset(fmap, 0, sizeof fmap);
    char sha[BCD__ANGLE_COUNT][3][65];
    memset(sha, 0, sizeof sha);
    for (size_t i = 0; i < n; i++) {
        pair[i] = NULL;
        for (size_t k = 0; prev && k < nprev; k++)
            if (strcmp(prev[k].angle, cur[i].angle) == 0)
                pair[i] = &prev[k];
        struct bcd__det_angle *g = &d->a[i];
        snprintf(g->angle, sizeof g->angle, "%s", cur[i].angle);
        g->width = cur[i].width;
        g->height = cur[i].height;
        g->sx = (double)cur[i].width / cur[i].img->width;
        g->sy = (double)cur[i].height / cur[i].img->height;
        if (pair[i]) {
            g->psx = (double)pair[i]->width / pair[i]->img->width;
            g->psy = (double)pair[i]->height / pair[i]->img->height;
            g->pwidth = pair[i]->width;
            g->pheight = pair[i]->height;
        }
    }
    d->n = n;
    if (heatmap_dir) {
        bcd_status st = mkdir_p(svc, heatmap_dir);
        if (st != BCD_OK)
            return st;
    }
    struct det_job job = { cur, pair, d->a, png, copy, fmap, sha, heatmap_session || heatmap_dir,
                           heatmap_session != NULL, sts, svc->ctx };
    bcd__svc_parallel_for(n, bcd__svc_threads(svc, BCD__ANGLE_COUNT), detect_one, &job);

    bcd_status st = BCD_OK;
    for (size_t i = 0; i < n && st == BCD_OK; i++)
        if (sts[i] == BCD_ENOMEM)
            st = bcd__svc_fail(svc, BCD_ENOMEM, "out_of_memory", "out of memory in change detection");
    /* heatmaps and working copies: stored (blobs of the session), or the heatmaps
     * written to the directory */
    for (size_t i = 0; i < n && st == BCD_OK; i++) {
        struct bcd__det_angle *g = &d->a[i];
        snprintf(g->image_id, sizeof g->image_id, "%s", cur[i].image_id);
        if (png[i].data && heatmap_session)
            st = put_blob(svc, heatmap_session, &png[i], sha[i][0], &g->heatmap, &g->heatmap_created, "a heatmap");
        else if (png[i].data)
            st = write_heatmap(svc, heatmap_dir, g->angle, png[i].data, png[i].len, &g->heatmap);
        if (st == BCD_OK && copy[i].data)
            st = put_blob(svc, heatmap_session, &copy[i], sha[i][1], &g->copy, &g->copy_created, "a working copy");
        if (st == BCD_OK && fmap[i].data)
            st = put_blob(svc, heatmap_session, &fmap[i], sha[i][2], &g->fmap, &g->fmap_created, "a feature map");
        if (g->fmap) {
            g->fmap_c = cur[i].map_c;
            g->fmap_h = cur[i].map_h;
            g->fmap_w = cur[i].map_w;
            snprintf(g->fmap_model, sizeof g->fmap_model, "%s", cur[i].map_model);
        }
    }
    for (size_t i = 0; i < n; i++) {
        bcd__rep_image_clear(&png[i]);
        bcd__rep_image_clear(&copy[i]);
        bcd__rep_image_clear(&fmap[i]);
    }
    if (st != BCD_OK) {
        if (heatmap_session)
            bcd__det_discard_blobs(svc, d);
        return st;
    }

    bcd__det_combine(d);
    return BCD_OK;
}

double bcd__det_local_change(const struct bcd__det_angle *g)
{
    double lc = NAN;
    if (g->compared && g->r && !(bcd_detect_result_flags(g->r) & BCD_DETECT_MISALIGNED))
        lc = bcd_detect_result_value(g->r, BCD_DETECT_LOCAL_CHANGE);
    double ls = bcd_lesion_result_score(g->lesions);
    if (isfinite(ls) && !(lc >= ls))
        lc = ls;
    return lc;
}

void bcd__det_combine(struct bcd__detection *d)
{
    double lc[BCD__ANGLE_COUNT];
    unsigned int fl[BCD__ANGLE_COUNT];
    for (size_t i = 0; i < d->n; i++) {
        const struct bcd__det_angle *g = &d->a[i];
        lc[i] = bcd__det_local_change(g);
        fl[i] = g->r ? bcd_detect_result_flags(g->r) : 0;
        /* the lesions registered the pair where the whole-image alignment could not */
        if (bcd_lesion_result_status(g->lesions) == BCD_LESION_COMPARED)
            fl[i] &= ~BCD_DETECT_MISALIGNED;
        if (!g->compared && bcd_lesion_result_status(g->lesions) != BCD_LESION_COMPARED)
            lc[i] = NAN;
    }
    double p;
    int changed;
    d->probability = NAN;
    d->changed = -1;
    if (d->n && bcd__detect_combine_values(&p, &changed, lc, fl, d->n) == BCD_OK) {
        d->probability = p;
        d->changed = changed;
    }
}

bcd_status bcd__det_export_heatmaps(bcd_service *svc, cJSON *det, const char *dir)
{
    cJSON *per = cJSON_GetObjectItemCaseSensitive(det, "per_angle");
    cJSON *items[BCD__ANGLE_COUNT];
    unsigned char *data[BCD__ANGLE_COUNT] = { 0 };
    size_t lens[BCD__ANGLE_COUNT] = { 0 }, n = 0;
    bcd_status st = BCD_OK;
    cJSON *it;
    /* read every overlay first: a missing one means computing them all again */
    cJSON_ArrayForEach(it, per)
    {
        const cJSON *angle = cJSON_GetObjectItemCaseSensitive(it, "angle_type");
        const cJSON *key = cJSON_GetObjectItemCaseSensitive(it, "heatmap");
        if (!cJSON_IsString(key))
            continue; /* no overlay for this angle (misaligned, not compared) */
        if (n == BCD__ANGLE_COUNT || !cJSON_IsString(angle) || bcd__angle_index(angle->valuestring) < 0) {
            st = BCD_ENOTFOUND;
            break;
        }
        items[n] = it;
        st = bcd__store_blob_get(svc->store, key->valuestring, BCD__MAX_IMAGE_FILE, &data[n], &lens[n]);
        if (st != BCD_OK)
            break;
        n++;
    }
    if (st == BCD_ENOTFOUND) {
        bcd__error_clear(&svc->store->err);
    } else if (st != BCD_OK) {
        bcd__svc_from_store(svc, st);
        bcd__svc_prefix(svc, "cannot read a heatmap: ");
    }
    if (st == BCD_OK)
        st = mkdir_p(svc, dir);
    for (size_t i = 0; i < n && st == BCD_OK; i++) {
        const char *angle = cJSON_GetObjectItemCaseSensitive(items[i], "angle_type")->valuestring;
        char *path = NULL;
        if ((st = write_heatmap(svc, dir, angle, data[i], lens[i], &path)) == BCD_OK) {
            cJSON *s = cJSON_CreateString(path);
            if (!s || !cJSON_ReplaceItemInObjectCaseSensitive(items[i], "heatmap", s)) {
                cJSON_Delete(s);
                st = bcd__svc_fail(svc, BCD_ENOMEM, "out_of_memory", "out of memory");
            }
        }
        free(path);
    }
    for (size_t i = 0; i < BCD__ANGLE_COUNT; i++)
        free(data[i]);
    return st;
}

static void drop_blob(bcd_service *svc, const char *key)
{
    if (bcd__store_blob_delete(svc->store, key) != BCD_OK)
        bcd__error_clear(&svc->store->err); /* garbage at worst */
}

void bcd__det_discard_blobs(bcd_service *svc, struct bcd__detection *d)
{
    for (size_t i = 0; i < d->n; i++) {
        struct bcd__det_angle *g = &d->a[i];
        if (g->heatmap && g->heatmap_created)
            drop_blob(svc, g->heatmap);
        if (g->copy && g->copy_created)
            drop_blob(svc, g->copy);
        if (g->fmap && g->fmap_created)
            drop_blob(svc, g->fmap);
        g->heatmap_created = g->copy_created = g->fmap_created = false;
    }
}

static bool uses_blob(const struct bcd__detection *d, const char *key)
{
    for (size_t i = 0; i < d->n; i++)
        if ((d->a[i].heatmap && strcmp(d->a[i].heatmap, key) == 0) ||
            (d->a[i].copy && strcmp(d->a[i].copy, key) == 0) || (d->a[i].fmap && strcmp(d->a[i].fmap, key) == 0))
            return true;
    return false;
}

void bcd__det_drop_old_blobs(bcd_service *svc, const char *old_details, const struct bcd__detection *d)
{
    cJSON *o = old_details ? cJSON_Parse(old_details) : NULL;
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(o, "per_angle"))
    {
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(it, "heatmap");
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(it, "working_copy"), "key");
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(it, "feature_map"), "key");
        if (cJSON_IsString(h) && !uses_blob(d, h->valuestring))
            drop_blob(svc, h->valuestring);
        if (cJSON_IsString(c) && !uses_blob(d, c->valuestring))
            drop_blob(svc, c->valuestring);
        if (cJSON_IsString(f) && !uses_blob(d, f->valuestring))
            drop_blob(svc, f->valuestring);
    }
    cJSON_Delete(o);
}

void bcd__det_clear(struct bcd__detection *d)
{
    for (size_t i = 0; i < d->n && i < BCD__ANGLE_COUNT; i++) {
        bcd_lesion_result_free(d->a[i].lesions);
        d->a[i].lesions = NULL;
    }
    for (size_t i = 0; i < d->n; i++) {
        bcd_detect_result_free(d->a[i].r);
        free(d->a[i].heatmap);
        free(d->a[i].copy);
        free(d->a[i].fmap);
        free(d->a[i].feature);
    }
    memset(d, 0, sizeof *d);
}

/* ------------------------------------------------------------------ JSON */

#define QUALITY_FLAGS                                                                                             \
    (BCD_DETECT_BLURRED | BCD_DETECT_CLIPPED | BCD_DETECT_SUBJECT_TOO_SMALL | BCD_DETECT_PREVIOUS_BLURRED |        \
     BCD_DETECT_PREVIOUS_CLIPPED | BCD_DETECT_PREVIOUS_SUBJECT_TOO_SMALL)

static void num_or_null(bool *ok, cJSON *o, const char *k, double v)
{
    if (isfinite(v))
        bcd__j_num(ok, o, k, v);
    else
        bcd__j_null(ok, o, k);
}

/* The warning of one angle, or "" when its photos are fine. */
static void warning_text(char *buf, size_t cap, const struct bcd__det_angle *g)
{
    unsigned f = g->r ? bcd_detect_result_flags(g->r) : 0;
    const char *what[6];
    int k = 0;
    buf[0] = '\0';
    if (!g->r) {
        snprintf(buf, cap, "the photo could not be checked");
        return;
    }
    if (f & (BCD_DETECT_BLURRED | BCD_DETECT_PREVIOUS_BLURRED))
        what[k++] = f & BCD_DETECT_BLURRED ? "the photo is blurred" : "the previous photo is blurred";
    if (f & (BCD_DETECT_CLIPPED | BCD_DETECT_PREVIOUS_CLIPPED))
        what[k++] = f & BCD_DETECT_CLIPPED ? "the photo is over- or under-exposed"
                                           : "the previous photo is over- or under-exposed";
    if (f & (BCD_DETECT_SUBJECT_TOO_SMALL | BCD_DETECT_PREVIOUS_SUBJECT_TOO_SMALL))
        what[k++] = "too little skin is in the frame";
    if (g->compared && (f & BCD_DETECT_MISALIGNED))
        what[k++] = "the photo could not be aligned with the previous one";
    if (!k)
        return;
    size_t used = 0;
    for (int i = 0; i < k && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%s", i ? "; " : "", what[i]);
    if (used < cap)
        snprintf(buf + used, cap - used, "%s",
                 g->compared && (f & BCD_DETECT_MISALIGNED) ? ": no local change score"
                                                           : ": the change score is less certain");
}

/* The changed lesions as changed regions: a box around each (its longest diameter and a
 * margin), with its score and id. */
static void lesion_regions(bool *ok, cJSON *regs, const struct bcd__det_angle *g)
{
    for (size_t k = 0; k < bcd_lesion_result_count(g->lesions) && *ok; k++) {
        const bcd_lesion *l = bcd_lesion_result_get(g->lesions, k);
        if (!l->changed || !isfinite(l->x) || !isfinite(l->y))
            continue;
        double h = 0.5 * l->diameter_px + 0.01 * fmax(g->width, g->height);
        double x0 = fmax(0, floor(l->x - h)), y0 = fmax(0, floor(l->y - h));
        double x1 = fmin(g->width, ceil(l->x + h)), y1 = fmin(g->height, ceil(l->y + h));
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(regs, o)) {
            cJSON_Delete(o);
            *ok = false;
            break;
        }
        bcd__j_int(ok, o, "x", x0);
        bcd__j_int(ok, o, "y", y0);
        bcd__j_int(ok, o, "width", x1 - x0);
        bcd__j_int(ok, o, "height", y1 - y0);
        bcd__j_num(ok, o, "score", l->score);
        bcd__j_int(ok, o, "lesion_id", l->id);
    }
}

static void angle_json(bool *ok, cJSON *it, const struct bcd__det_angle *g)
{
    const bcd_detect_result *r = g->r;
    unsigned f = r ? bcd_detect_result_flags(r) : 0;
    double lc = bcd__det_local_change(g);
    bcd__j_str(ok, it, "angle_type", g->angle);
    num_or_null(ok, it, "local_change", lc);
    if (isfinite(lc))
        bcd__j_bool(ok, it, "changed", lc >= 0.5);
    else
        bcd__j_null(ok, it, "changed");
    cJSON *regs = bcd__j_arr(ok, it, "changed_regions");
    size_t nr = 0;
    const bcd_detect_region *rg = g->compared ? bcd_detect_result_regions(r, &nr) : NULL;
    for (size_t k = 0; rg && k < nr && *ok; k++) {
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(regs, o)) {
            cJSON_Delete(o);
            *ok = false;
            break;
        }
        /* reduced -> full-size coordinates, kept inside the photo */
        double x0 = floor(rg[k].x * g->sx), y0 = floor(rg[k].y * g->sy);
        double x1 = ceil((rg[k].x + rg[k].width) * g->sx), y1 = ceil((rg[k].y + rg[k].height) * g->sy);
        x1 = fmin(x1, g->width);
        y1 = fmin(y1, g->height);
        bcd__j_int(ok, o, "x", x0);
        bcd__j_int(ok, o, "y", y0);
        bcd__j_int(ok, o, "width", x1 - x0);
        bcd__j_int(ok, o, "height", y1 - y0);
        bcd__j_num(ok, o, "score", rg[k].score);
    }
    lesion_regions(ok, regs, g);
    cJSON *q = bcd__j_obj(ok, it, "quality");
    if (r) {
        bcd__j_bool(ok, q, "blurred", f & BCD_DETECT_BLURRED);
        bcd__j_bool(ok, q, "clipped", f & BCD_DETECT_CLIPPED);
        bcd__j_bool(ok, q, "subject_too_small", f & BCD_DETECT_SUBJECT_TOO_SMALL);
        if (g->compared) {
            bcd__j_bool(ok, q, "aligned", !(f & BCD_DETECT_MISALIGNED));
            bcd__j_bool(ok, q, "previous_blurred", f & BCD_DETECT_PREVIOUS_BLURRED);
            bcd__j_bool(ok, q, "previous_clipped", f & BCD_DETECT_PREVIOUS_CLIPPED);
            bcd__j_bool(ok, q, "previous_subject_too_small", f & BCD_DETECT_PREVIOUS_SUBJECT_TOO_SMALL);
        } else {
            bcd__j_null(ok, q, "aligned");
        }
        num_or_null(ok, q, "subject_fraction", bcd_detect_result_value(r, BCD_DETECT_SUBJECT_FRACTION));
    }
    if (g->compared) {
        cJSON *al = bcd__j_obj(ok, it, "alignment");
        num_or_null(ok, al, "score", bcd_detect_result_value(r, BCD_DETECT_ALIGN_SCORE));
        num_or_null(ok, al, "overlap", bcd_detect_result_value(r, BCD_DETECT_ALIGN_OVERLAP));
        num_or_null(ok, al, "dx", bcd_detect_result_value(r, BCD_DETECT_ALIGN_DX) * g->sx);
        num_or_null(ok, al, "dy", bcd_detect_result_value(r, BCD_DETECT_ALIGN_DY) * g->sy);
        num_or_null(ok, al, "rotation_deg", bcd_detect_result_value(r, BCD_DETECT_ALIGN_ROTATION));
        num_or_null(ok, al, "scale", bcd_detect_result_value(r, BCD_DETECT_ALIGN_SCALE));
    } else {
        bcd__j_null(ok, it, "alignment");
    }
    bcd__j_str(ok, it, "heatmap", g->heatmap);
    char w[256];
    warning_text(w, sizeof w, g);
    bcd__j_str(ok, it, "warning", w[0] ? w : NULL);
    if (g->feature) {
        cJSON *fc = bcd__j_obj(ok, it, "feature_change");
        cJSON *cells = bcd__j_arr(ok, fc, "distance");
        double max = NAN;
        for (size_t k = 0; k < g->fh * g->fw && *ok; k++) {
            cJSON *v = isfinite(g->feature[k]) ? cJSON_CreateNumber(g->feature[k]) : cJSON_CreateNull();
            if (!v || !cJSON_AddItemToArray(cells, v)) {
                cJSON_Delete(v);
                *ok = false;
            }
            if (isfinite(g->feature[k]) && !(g->feature[k] <= max))
                max = g->feature[k];
        }
        bcd__j_int(ok, fc, "cols", (double)g->fw);
        bcd__j_int(ok, fc, "rows", (double)g->fh);
        num_or_null(ok, fc, "max", max);
    } else {
        bcd__j_null(ok, it, "feature_change");
    }
    if (g->fmap) {
        cJSON *fm = bcd__j_obj(ok, it, "feature_map");
        bcd__j_str(ok, fm, "key", g->fmap);
        bcd__j_str(ok, fm, "image_id", g->image_id);
        bcd__j_str(ok, fm, "model", g->fmap_model);
        bcd__j_int(ok, fm, "channels", (double)g->fmap_c);
        bcd__j_int(ok, fm, "rows", (double)g->fmap_h);
        bcd__j_int(ok, fm, "cols", (double)g->fmap_w);
    }
    if (g->lesions) {
        char *js = NULL;
        cJSON *lj = NULL;
        if (bcd_lesion_result_json(&js, g->lesions) != BCD_OK || !(lj = cJSON_Parse(js)) ||
            !cJSON_AddItemToObject(it, "lesions", lj)) {
            cJSON_Delete(lj);
            *ok = false;
        }
        bcd_free(js);
    } else {
        bcd__j_null(ok, it, "lesions");
    }
    if (g->copy) {
        cJSON *c = bcd__j_obj(ok, it, "working_copy");
        bcd__j_str(ok, c, "key", g->copy);
        bcd__j_str(ok, c, "image_id", g->image_id);
        bcd__j_int(ok, c, "width", g->width);
        bcd__j_int(ok, c, "height", g->height);
    }
}

void bcd__det_json(bool *ok, cJSON *o, const struct bcd__detection *d)
{
    bcd__j_str(ok, o, "previous_session_id", d->previous_session_id[0] ? d->previous_session_id : NULL);
    num_or_null(ok, o, "change_probability", d->probability);
    if (d->changed >= 0)
        bcd__j_bool(ok, o, "changed", d->changed == 1);
    else
        bcd__j_null(ok, o, "changed");
    cJSON *warn = bcd__j_arr(ok, o, "warnings");
    cJSON *per = bcd__j_arr(ok, o, "per_angle");
    for (size_t i = 0; i < d->n && *ok; i++) {
        cJSON *it = cJSON_CreateObject();
        if (!it || !cJSON_AddItemToArray(per, it)) {
            cJSON_Delete(it);
            *ok = false;
            break;
        }
        angle_json(ok, it, &d->a[i]);
        char w[256], line[300];
        warning_text(w, sizeof w, &d->a[i]);
        if (w[0]) {
            snprintf(line, sizeof line, "%s: %s", d->a[i].angle, w);
            bcd__j_push_str(ok, warn, line);
        }
    }
}

bool bcd__det_angle_flagged(const struct bcd__det_angle *g)
{
    unsigned f = g->r ? bcd_detect_result_flags(g->r) : 0;
    return !g->r || (f & QUALITY_FLAGS) || (g->compared && (f & BCD_DETECT_MISALIGNED));
}

double bcd__det_flagged_fraction(const struct bcd__detection *d)
{
    size_t flagged = 0;
    for (size_t i = 0; i < d->n; i++)
        flagged += bcd__det_angle_flagged(&d->a[i]);
    return d->n ? (double)flagged / (double)d->n : 0.0;
}

/* ------------------------------------------------------------------ merging stored results */

static void copy_item(bool *ok, cJSON *to, const cJSON *from, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(from, k);
    if (!v || !*ok)
        return;
    cJSON *c = cJSON_Duplicate(v, 1);
    if (!c) {
        *ok = false;
        return;
    }
    if (cJSON_GetObjectItemCaseSensitive(to, k))
        cJSON_ReplaceItemInObjectCaseSensitive(to, k, c);
    else if (!cJSON_AddItemToObject(to, k, c)) {
        cJSON_Delete(c);
        *ok = false;
    }
}

static const char *const angle_keys[] = { "local_change", "changed", "changed_regions", "alignment", "heatmap",
                                          "warning", "feature_change", "lesions" };
static const char *const top_keys[] = { "previous_session_id", "change_probability", "changed", "warnings" };

void bcd__det_merge(bool *ok, cJSON *top, cJSON *per_angle, const cJSON *details)
{
    if (!cJSON_IsObject(details) || !*ok)
        return;
    const cJSON *dper = cJSON_GetObjectItemCaseSensitive(details, "per_angle");
    if (!cJSON_IsArray(dper))
        return; /* an analysis made before detection existed */
    for (size_t k = 0; k < sizeof top_keys / sizeof *top_keys; k++)
        copy_item(ok, top, details, top_keys[k]);
    const cJSON *src;
    cJSON_ArrayForEach(src, dper)
    {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(src, "angle_type");
        if (!cJSON_IsString(name))
            continue;
        cJSON *dst;
        cJSON_ArrayForEach(dst, per_angle)
        {
            const cJSON *dn = cJSON_GetObjectItemCaseSensitive(dst, "angle_type");
            if (!cJSON_IsString(dn) || strcmp(dn->valuestring, name->valuestring) != 0)
                continue;
            for (size_t k = 0; k < sizeof angle_keys / sizeof *angle_keys; k++)
                copy_item(ok, dst, src, angle_keys[k]);
            /* quality flags join the seed's quality object */
            const cJSON *q = cJSON_GetObjectItemCaseSensitive(src, "quality");
            cJSON *dq = cJSON_GetObjectItemCaseSensitive(dst, "quality");
            if (cJSON_IsObject(q) && cJSON_IsObject(dq)) {
                const cJSON *f;
                cJSON_ArrayForEach(f, q)
                {
                    copy_item(ok, dq, q, f->string);
                }
            } else if (cJSON_IsObject(q)) {
                copy_item(ok, dst, src, "quality");
            }
        }
    }
}
