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

bcd_status bcd_embedder_embed(bcd_embedder *e, float *out, const float *tensors, size_t n)
{
    if (!e || !out || !tensors || n == 0)
        return e ? bcd__ctx_fail(e->ctx, BCD_EINVAL, "invalid_argument", "embed needs tensors and n > 0")
                 : BCD_EINVAL;
    bcd__ctx_clear(e->ctx);
    return e->ops->embed(e->impl, e->ctx, out, tensors, n);
}
