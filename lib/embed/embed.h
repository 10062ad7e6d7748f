/* Internal embedder backend interface. Not installed. */
#ifndef BCD_EMBED_INTERNAL_H
#define BCD_EMBED_INTERNAL_H

#include "bcd/embed.h"
#include "core/core.h"

struct bcd__embed_ops {
    /* Embed n tensors (n * BCD_TENSOR_LEN floats) into out (n * dim floats).
     * On failure record the detail on ctx and return its status. */
    bcd_status (*embed)(void *impl, bcd_ctx *ctx, float *out, const float *tensors, size_t n);
    void (*free)(void *impl);
};

struct bcd_embedder {
    bcd_ctx *ctx;
    const struct bcd__embed_ops *ops;
    void *impl;
    size_t dim;
    char name[128];
};

/* Backends fill ops, impl, dim and name of a zeroed embedder. */
bcd_status bcd__builtin_open(bcd_embedder *e, bcd_ctx *ctx);
/* A TorchScript file run by the libbcd-torch module (torch.c); BCD_EUNSUPPORTED
 * "torch_unavailable" when the module cannot be found or opened. */
bcd_status bcd__torch_open(bcd_embedder *e, bcd_ctx *ctx, const char *path);

#endif
