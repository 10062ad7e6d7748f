/* Internal embedder backend interface. Not installed. */
#ifndef BCD_EMBED_INTERNAL_H
#define BCD_EMBED_INTERNAL_H

#include "bcd/embed.h"
#include "core/core.h"

struct bcd__embed_ops {
    /* Embed n tensors (n * BCD_TENSOR_LEN floats) into out (n * dim floats) and, when
     * maps is not NULL (only asked of a backend with map_c > 0), their feature maps into
     * maps (n * map_c * map_h * map_w floats). On failure record the detail on ctx and
     * return its status. */
    bcd_status (*embed)(void *impl, bcd_ctx *ctx, float *out, float *maps, const float *tensors, size_t n);
    void (*free)(void *impl);
};

struct bcd_embedder {
    bcd_ctx *ctx;
    const struct bcd__embed_ops *ops;
    void *impl;
    size_t dim;
    /* The feature map of the last convolutional stage the model computes on the way to
     * the embedding (C x h x w, row-major per channel); all 0 when it has none (the
     * built-in descriptor, a model exported without one). */
    size_t map_c, map_h, map_w;
    char name[128];
};


/* Backends fill ops, impl, dim, the map's shape and name of a zeroed embedder. */
bcd_status bcd__builtin_open(bcd_embedder *e, bcd_ctx *ctx);
/* A TorchScript file run by the libbcd-torch module (torch.c); BCD_EUNSUPPORTED
 * "torch_unavailable" when the module cannot be found or opened. */
bcd_status bcd__torch_open(bcd_embedder *e, bcd_ctx *ctx, const char *path);

#endif
