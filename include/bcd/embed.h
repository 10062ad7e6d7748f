#ifndef BCD_EMBED_H
#define BCD_EMBED_H
/**
 * @file bcd/embed.h
 * Embedders turn preprocessed tensors (bcd_image_preprocess()) into vectors.
 *
 * Backends: "builtin", a deterministic pure-C descriptor of local colour and texture
 * that needs no model file (see lib/embed/builtin.c for what it computes), and a
 * TorchScript model file ("PATH.pt") run by libtorch when the library was built with it.
 *
 * Threads: an embedder borrows its ctx and records its errors there, so an embedder and
 * its ctx are used by one thread at a time, together; different embedders over different
 * contexts may embed in different threads at once. Embeddings written by the call belong
 * to the caller.
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
 * @param spec      "builtin", or a path to a TorchScript file; borrowed for the call.
 *                  NULL uses BCD_MODEL from ctx (default "builtin").
 * @return BCD_OK, BCD_ENOTFOUND ("model_not_found": neither "builtin" nor an existing
 *         file), BCD_EUNSUPPORTED (built without libtorch, or the module cannot be
 *         loaded), BCD_EFORMAT (not a usable model), BCD_EINVAL ("invalid_model": empty
 *         spec), BCD_ENOMEM. Detail on ctx.
 * Threads: one thread per ctx at a time.
 */
BCD_API bcd_status bcd_embedder_open(bcd_embedder **out, bcd_ctx *ctx, const char *spec);

/**
 * Free an embedder (and the model it loaded). Strings borrowed from it become invalid.
 * NULL: no-op.
 * Threads: not while another thread uses e.
 */
BCD_API void bcd_embedder_free(bcd_embedder *e);

/**
 * Number of floats in one embedding; fixed for the embedder's life. 0 for NULL.
 * Threads: any thread while e is alive (reads an immutable field).
 */
BCD_API size_t bcd_embedder_dim(const bcd_embedder *e);

/**
 * Model name recorded with stored embeddings, e.g. "builtin-v2". NULL for NULL.
 * @return borrowed, valid until bcd_embedder_free(e).
 * Threads: any thread while e is alive (reads an immutable field).
 */
BCD_API const char *bcd_embedder_name(const bcd_embedder *e);

/**
 * Embed a batch of n preprocessed tensors.
 * @param out      n * bcd_embedder_dim() floats owned by the caller, written by the
 *                 call (contents unspecified on failure).
 * @param tensors  n * BCD_TENSOR_LEN floats (CHW, normalized); borrowed for the call.
 * @return BCD_OK, BCD_EINVAL (NULL, n == 0), BCD_ENOMEM, BCD_ERROR (backend failure,
 *         e.g. a libtorch exception; its text is in the message). Detail on the
 *         embedder's ctx.
 * Threads: one thread per embedder (and its ctx) at a time.
 */
BCD_API bcd_status bcd_embedder_embed(bcd_embedder *e, float *out, const float *tensors, size_t n);

/**
 * Shape of the feature map the embedder computes on the way to each embedding: the
 * output of the model's last convolutional stage, C channels on an h x w grid of cells
 * over the 224 x 224 input (ResNet50: 2048 x 7 x 7, each cell 32 x 32 pixels of the
 * input). Models exported by models/export_model.py have one; the built-in descriptor
 * and a model exported without one have none.
 * @param[out] c, h, w  the shape, all 0 when there is none (each may be NULL).
 * @return 1 when the embedder has a feature map; 0 otherwise and for NULL.
 * Threads: any thread while e is alive (reads immutable fields).
 */
BCD_API int bcd_embedder_map_shape(const bcd_embedder *e, size_t *c, size_t *h, size_t *w);

/**
 * bcd_embedder_embed() that also writes the feature maps of the n tensors, in the same
 * forward pass (no extra model time).
 * @param maps  n * c * h * w floats owned by the caller (tensor after tensor, each
 *              channel after channel, each channel's cells row by row), written by the
 *              call; NULL: embeddings only.
 * @return as bcd_embedder_embed(); BCD_EUNSUPPORTED ("no_feature_map") when maps is
 *         not NULL and the embedder has none.
 * Threads: one thread per embedder (and its ctx) at a time.
 */
BCD_API bcd_status bcd_embedder_embed_maps(bcd_embedder *e, float *out, float *maps, const float *tensors,
                                           size_t n);

BCD_END_DECLS

#endif
