#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "embed.h"

bcd_status bcd_embedder_open(bcd_embedder **out, bcd_ctx *ctx, const char *spec)
{
    if (!out || !ctx)
        return BCD_EINVAL;
    bcd__ctx_clear(ctx);
    if (!spec)
        spec = bcd__cfg(ctx, BCD__CFG_MODEL);
    if (!spec || !*spec)
        return bcd__ctx_fail(ctx, BCD_EINVAL, "invalid_model", "empty model specification");
    bcd_embedder *e = calloc(1, sizeof *e);
    if (!e)
        return bcd__ctx_fail(ctx, BCD_ENOMEM, NULL, NULL);
    e->ctx = ctx;
    bcd_status st;
    if (strcmp(spec, "builtin") == 0) {
        st = bcd__builtin_open(e, ctx);
    } else {
        struct stat sb;
        if (stat(spec, &sb) != 0)
            st = bcd__ctx_fail(ctx, BCD_ENOTFOUND, "model_not_found",
                               "model '%s' is neither \"builtin\" nor an existing TorchScript file", spec);
        else
            st = bcd__torch_open(e, ctx, spec);
    }
    if (st != BCD_OK) {
        free(e);
        return st;
    }
    *out = e;
    return BCD_OK;
}

void bcd_embedder_free(bcd_embedder *e)
{
    if (!e)
        return;
    if (e->ops && e->ops->free)
        e->ops->free(e->impl);
    free(e);
}

size_t bcd_embedder_dim(const bcd_embedder *e)
{
    return e ? e->dim : 0;
}

const char *bcd_embedder_name(const bcd_embedder *e)
{
    return e ? e->name : NULL;
}

int bcd_embedder_map_shape(const bcd_embedder *e, size_t *c, size_t *h, size_t *w)
{
    int has = e && e->map_c;
    if (c)
        *c = has ? e->map_c : 0;
    if (h)
        *h = has ? e->map_h : 0;
    if (w)
        *w = has ? e->map_w : 0;
    return has;
}

bcd_status bcd_embedder_embed_maps(bcd_embedder *e, float *out, float *maps, const float *tensors, size_t n)
{
    if (!e || !out || !tensors || n == 0)
        return e ? bcd__ctx_fail(e->ctx, BCD_EINVAL, "invalid_argument", "embed needs tensors and n > 0")
                 : BCD_EINVAL;
    bcd__ctx_clear(e->ctx);
    if (maps && !e->map_c)
        return bcd__ctx_fail(e->ctx, BCD_EUNSUPPORTED, "no_feature_map", "embedder %s computes no feature map",
                             e->name);
    return e->ops->embed(e->impl, e->ctx, out, maps, tensors, n);
}

bcd_status bcd_embedder_embed(bcd_embedder *e, float *out, const float *tensors, size_t n)
{
    return bcd_embedder_embed_maps(e, out, NULL, tensors, n);
}
