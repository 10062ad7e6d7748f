#ifndef BCD_EMBED_H
#define BCD_EMBED_H
/**
 * @file bcd/embed.h
 * Embedders turn preprocessed tensors (bcd_image_preprocess()) into vectors.
 *
 * Backends: "builtin", a deterministic pure-C descriptor of local colour and texture
 * that needs no model file (see lib/embed/builtin.c for what it computes), and a
 * TorchScript model file ("PATH.pt") run by libtorch when the library was built with it.
 */
#include "common.h"
#include "ctx.h"

BCD_BEGIN_DECLS

typedef struct bcd_embedder bcd_embedder;

/**
 * Open an embedder.
 * @param[out] out  caller frees with bcd_embedder_free(); untouched on failure.
 * @param ctx       configuration (device, threads) and error detail; borrowed, must
 *                  outlive the embedder.
 * @param spec      "builtin", or a path to a TorchScript file; NULL uses BCD_MODEL
 *                  from ctx (default "builtin").
 * @return BCD_OK, BCD_ENOTFOUND (no such file), BCD_EUNSUPPORTED (built without
 *         libtorch), BCD_EFORMAT (not a usable model), BCD_EINVAL, BCD_ENOMEM.
 */
BCD_API bcd_status bcd_embedder_open(bcd_embedder **out, bcd_ctx *ctx, const char *spec);

/** Free an embedder. NULL: no-op. */
BCD_API void bcd_embedder_free(bcd_embedder *e);

/** Number of floats in one embedding. */
BCD_API size_t bcd_embedder_dim(const bcd_embedder *e);

/** Model name recorded with stored embeddings, e.g. "builtin-v1"; borrowed. */
BCD_API const char *bcd_embedder_name(const bcd_embedder *e);

/**
 * Embed a batch of n preprocessed tensors.
 * @param out      n * bcd_embedder_dim() floats, written by the call.
 * @param tensors  n * BCD_TENSOR_LEN floats (CHW, normalized); borrowed.
 * @return BCD_OK, BCD_EINVAL, BCD_ENOMEM, BCD_ERROR (backend failure).
 * Threads: one thread per embedder at a time. Errors are recorded on the ctx.
 */
BCD_API bcd_status bcd_embedder_embed(bcd_embedder *e, float *out, const float *tensors, size_t n);

BCD_END_DECLS

#endif
