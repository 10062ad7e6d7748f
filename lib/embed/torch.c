/* The torch backend: a TorchScript model file run by libtorch inside libbcd-torch.so.
 *
 * libbcd does not link libtorch (see DESIGN.md: a process linked to it pays 0.45 s and
 * 160 MB at start). The module is opened with dlopen() when an embedder is opened on a
 * model file; the dynamic loader keeps one copy however many embedders use it, and
 * RTLD_NODELETE keeps libtorch mapped after the last one is freed (unloading libtorch
 * and its OpenMP threads is not safe), so libbcd holds no global state for it.
 *
 * Where the module is looked for, first found wins:
 *   1. $BCD_TORCH_MODULE, the module's full path (then nothing else is tried);
 *   2. the directory it was installed to (BCD_TORCH_MODULE_DIR, set by meson);
 *   3. next to the loaded libbcd: DIR/libbcd/libbcd-torch.so, DIR/libbcd-torch.so.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "bcd/image.h"
#include "embed.h"
#include "torch_shim.h"

struct torch_impl {
    void *dl;
    bcd__torch *model;
    bcd__torch_forward_fn forward;
    bcd__torch_free_fn release;
    size_t dim, map_len;
    char sha256[65];
};

/* ---- sha256 of the model file, computed while libtorch loads it ---- */

struct hash_job {
    const char *path;
    int err; /* errno of the failure, 0 on success */
    char hex[65];
};

static void *hash_file(void *arg)
{
    struct hash_job *job = arg;
    unsigned char buf[1 << 16];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    job->err = EIO;
    int fd = open(job->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        job->err = errno;
        return NULL;
    }
    EVP_MD_CTX *md_ctx = EVP_MD_CTX_new();
    if (md_ctx && EVP_DigestInit_ex(md_ctx, EVP_sha256(), NULL) == 1) {
        for (;;) {
            ssize_t r = read(fd, buf, sizeof buf);
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0) {
                job->err = errno;
                break;
            }
            if (r == 0) {
                if (EVP_DigestFinal_ex(md_ctx, md, &mdlen) == 1 && mdlen == 32) {
                    for (unsigned i = 0; i < mdlen; i++)
                        snprintf(job->hex + 2 * i, 3, "%02x", md[i]);
                    job->err = 0;
                }
                break;
            }
            if (EVP_DigestUpdate(md_ctx, buf, (size_t)r) != 1)
                break;
        }
    } else {
        job->err = ENOMEM;
    }
    EVP_MD_CTX_free(md_ctx);
    close(fd);
    return NULL;
}

/* ---- finding and opening the module ---- */

static void *try_open(const char *path, char *tried, size_t tried_len)
{
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!dl) {
        const char *why = dlerror();
        size_t used = strlen(tried);
        snprintf(tried + used, tried_len - used, "%s%s", used ? "; " : "", why ? why : path);
    }
    return dl;
}

#ifdef BCD_HAVE_TORCH
/* The directory of the loaded libbcd (or of the program it is linked into). */
static const char anchor = 0;

static bool self_dir(char *dir, size_t len)
{
    Dl_info info;
    if (!dladdr(&anchor, &info) || !info.dli_fname || !strchr(info.dli_fname, '/'))
        return false;
    char *real = realpath(info.dli_fname, NULL);
    if (!real)
        return false;
    char *slash = strrchr(real, '/');
    *slash = '\0';
    int n = snprintf(dir, len, "%s", real[0] ? real : "/");
    free(real);
    return n > 0 && (size_t)n < len;
}
#endif

static bcd_status open_module(void **out, bcd_ctx *ctx, const char *model)
{
    char tried[1536] = "";
    const char *env = secure_getenv(BCD__TORCH_MODULE_ENV); /* not in set-user-ID programs */
    void *dl = NULL;
    if (env && *env) {
        dl = try_open(env, tried, sizeof tried);
        if (!dl)
            return bcd__ctx_fail(ctx, BCD_EUNSUPPORTED, "torch_unavailable",
                                 "cannot load '%s': the libbcd-torch module given by " BCD__TORCH_MODULE_ENV
                                 " cannot be opened: %s",
                                 model, tried);
        *out = dl;
        return BCD_OK;
    }
#ifndef BCD_HAVE_TORCH
    return bcd__ctx_fail(ctx, BCD_EUNSUPPORTED, "torch_unavailable",
                         "cannot load '%s': libbcd was built without libtorch (set " BCD__TORCH_MODULE_ENV
                         " to a libbcd-torch.so built elsewhere, or rebuild with -Dtorch=enabled)",
                         model);
#else
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", BCD_TORCH_MODULE_DIR, BCD__TORCH_MODULE_NAME);
    if (access(path, F_OK) == 0)
        dl = try_open(path, tried, sizeof tried);
    char dir[3072];
    if (!dl && self_dir(dir, sizeof dir)) {
        static const char *const sub[] = {"/libbcd/", "/"};
        for (size_t i = 0; !dl && i < sizeof sub / sizeof sub[0]; i++) {
            snprintf(path, sizeof path, "%s%s%s", dir, sub[i], BCD__TORCH_MODULE_NAME);
            if (access(path, F_OK) == 0)
                dl = try_open(path, tried, sizeof tried);
        }
    }
    if (!dl)
        return bcd__ctx_fail(ctx, BCD_EUNSUPPORTED, "torch_unavailable",
                             "cannot load '%s': libbcd-torch module not found: %s (looked in %s and next to "
                             "libbcd; set " BCD__TORCH_MODULE_ENV " to its path)",
                             model, tried[0] ? tried : "no such file", BCD_TORCH_MODULE_DIR);
    *out = dl;
    return BCD_OK;
#endif
}

/* dlsym() answers void *; POSIX guarantees it converts to a function pointer. */
static void lookup(void *dl, const char *name, void *fn_ptr, size_t size)
{
    void *sym = dlsym(dl, name);
    memcpy(fn_ptr, &sym, size);
}

/* ---- the backend ---- */

static bcd_status torch_embed(void *impl, bcd_ctx *ctx, float *out, float *maps, const float *tensors, size_t n)
{
    struct torch_impl *t = impl;
    struct bcd__torch_error err = {{0}, {0}};
    if (n > SIZE_MAX / BCD_TENSOR_LEN / t->dim || (maps && n > SIZE_MAX / sizeof(float) / t->map_len))
        return bcd__ctx_fail(ctx, BCD_EINVAL, "invalid_argument", "batch of %zu tensors is too large", n);
    int st = t->forward(t->model, out, n * t->dim, maps, maps ? n * t->map_len : 0, tensors, n, &err);
    if (st != BCD_OK)
        return bcd__ctx_fail(ctx, (bcd_status)st, err.code[0] ? err.code : NULL, "%s", err.message);
    return BCD_OK;
}

static void torch_free(void *impl)
{
    struct torch_impl *t = impl;
    if (!t)
        return;
    if (t->model && t->release)
        t->release(t->model);
    if (t->dl)
        dlclose(t->dl);
    free(t);
}

static const struct bcd__embed_ops torch_ops = {torch_embed, torch_free};

bcd_status bcd__torch_open(bcd_embedder *e, bcd_ctx *ctx, const char *path)
{
    struct torch_impl *t = calloc(1, sizeof *t);
    if (!t)
        return bcd__ctx_fail(ctx, BCD_ENOMEM, NULL, NULL);
    bcd_status st = open_module(&t->dl, ctx, path);
    if (st != BCD_OK) {
        free(t);
        return st;
    }
    bcd__torch_abi_fn abi = NULL;
    bcd__torch_load_fn load = NULL;
    lookup(t->dl, "bcd__torch_abi", &abi, sizeof abi);
    lookup(t->dl, "bcd__torch_load", &load, sizeof load);
    lookup(t->dl, "bcd__torch_forward", &t->forward, sizeof t->forward);
    lookup(t->dl, "bcd__torch_free", &t->release, sizeof t->release);
    if (!abi || !load || !t->forward || !t->release) {
        st = bcd__ctx_fail(ctx, BCD_EUNSUPPORTED, "torch_unavailable",
                           "cannot load '%s': the library found for the libbcd-torch module is not one "
                           "(no bcd__torch_* entry points)", path);
        torch_free(t);
        return st;
    }
    if (abi() != BCD__TORCH_SHIM_ABI) {
        st = bcd__ctx_fail(ctx, BCD_EUNSUPPORTED, "torch_unavailable",
                           "cannot load '%s': the libbcd-torch module found does not match this libbcd "
                           "(interface %d, expected %d); install both from the same build",
                           path, abi(), BCD__TORCH_SHIM_ABI);
        torch_free(t);
        return st;
    }

    struct bcd__torch_options opts;
    opts.device = bcd__cfg(ctx, BCD__CFG_DEVICE);
    opts.threads = (unsigned)bcd__cfg_ull(ctx, BCD__CFG_THREADS, 0);

    /* Hash the file on a second thread while libtorch parses it. */
    struct hash_job job = {path, 0, {0}};
    pthread_t tid;
    bool threaded = pthread_create(&tid, NULL, hash_file, &job) == 0;

    struct bcd__torch_info info;
    struct bcd__torch_error err = {{0}, {0}};
    memset(&info, 0, sizeof info);
    int lst = load(&t->model, &info, path, &opts, &err);

    if (threaded)
        pthread_join(tid, NULL);
    else
        hash_file(&job);

    if (lst != BCD_OK) {
        st = bcd__ctx_fail(ctx, (bcd_status)lst, err.code[0] ? err.code : NULL, "%s", err.message);
        torch_free(t);
        return st;
    }
    if (job.err) {
        st = bcd__ctx_fail(ctx, BCD_EIO, "model_unreadable", "cannot read '%s': %s", path, strerror(job.err));
        torch_free(t);
        return st;
    }
    memcpy(t->sha256, job.hex, sizeof t->sha256);
    t->dim = info.dim;
    t->map_len = info.map_c * info.map_h * info.map_w;

    /* name = basename:D:sha256=HEX, the basename shortened if need be: the checksum
     * is what tells models apart. */
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    char tail[96];
    int tl = snprintf(tail, sizeof tail, ":%zu:sha256=%s", info.dim, t->sha256);
    int room = (int)sizeof e->name - 1 - tl;
    snprintf(e->name, sizeof e->name, "%.*s%s", room > 0 ? room : 0, base, tail);

    e->ops = &torch_ops;
    e->impl = t;
    e->dim = info.dim;
    e->map_c = info.map_c;
    e->map_h = info.map_h;
    e->map_w = info.map_w;
    char map[64] = "no feature map";
    if (info.map_c)
        snprintf(map, sizeof map, "feature map %zux%zux%zu", info.map_c, info.map_h, info.map_w);
    bcd__log(ctx, BCD_LOG_INFO,
             "torch model %s: D=%zu, %s, device %s, %u threads, %s (libtorch %s); read %.3f s, optimize %.3f s, "
             "probe %.3f s",
             e->name, info.dim, map, info.device, info.threads, info.optimized ? "frozen and optimized" : "as stored",
             info.torch_version, info.load_s, info.optimize_s, info.probe_s);
    return BCD_OK;
}
