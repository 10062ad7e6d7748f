/* Plain C interface of libbcd-torch.so, the loadable module over libtorch. Not installed.
 *
 * libbcd never links libtorch (a process merely linked to it pays 0.45 s and 160 MB at
 * start): lib/embed/torch.c opens the module with dlopen() the first time a TorchScript
 * model is asked for and looks up the functions below by name. Only torch_shim.cpp
 * includes libtorch; no C++ type or exception crosses this interface. Every function
 * returns a bcd_status value as int and, on failure, fills a bcd__torch_error.
 *
 * A change of this interface raises BCD__TORCH_SHIM_ABI: libbcd refuses a module whose
 * bcd__torch_abi() differs (a stale libbcd-torch.so left from another build).
 */
#ifndef BCD_TORCH_SHIM_H
#define BCD_TORCH_SHIM_H

#include <stddef.h>

#ifdef __cplusplus
#define BCD__TORCH_NOEXCEPT noexcept
extern "C" {
#else
#define BCD__TORCH_NOEXCEPT
#endif

#define BCD__TORCH_SHIM_ABI 2

/* File name of the module and the environment variable that overrides where it is. */
#define BCD__TORCH_MODULE_NAME "libbcd-torch.so"
#define BCD__TORCH_MODULE_ENV "BCD_TORCH_MODULE"
/* Read by the module: 1/on/true freezes and optimizes a model for inference at load
 * (the default: 1.9x faster forward on the 2-core machine, same result within 1e-6
 * relative), 0/off/false runs it as stored. */
#define BCD__TORCH_OPTIMIZE_ENV "BCD_TORCH_OPTIMIZE"

typedef struct bcd__torch bcd__torch;

struct bcd__torch_error {
    char code[64];     /* stable string code, e.g. "model_invalid" */
    char message[512]; /* human text */
};

struct bcd__torch_options {
    const char *device; /* "auto" (CUDA when available), "cpu", "cuda"; NULL: auto */
    unsigned threads;   /* intra-op threads; 0: the cores available to the process */
};

/* What a loaded model is and how it runs; filled by bcd__torch_load(). */
struct bcd__torch_info {
    size_t dim;             /* D of the [N, D] output */
    size_t map_c, map_h, map_w; /* the feature map [N, C, h, w] the model also answers;
                                   all 0 when it answers the embedding alone */
    char device[32];        /* "cpu", "cuda:0" */
    unsigned threads;       /* intra-op threads used */
    int optimized;          /* frozen and optimized for inference */
    char torch_version[32]; /* libtorch version the module was built with */
    double load_s;          /* seconds spent reading the file (torch::jit::load) */
    double optimize_s;      /* ... freezing and optimizing it */
    double probe_s;         /* ... on the probe input */
};

/* BCD__TORCH_SHIM_ABI of the module. */
int bcd__torch_abi(void) BCD__TORCH_NOEXCEPT;

/* Load a TorchScript file, put it in eval mode, optionally freeze and optimize it, and
 * check on a probe input [1,3,224,224] that it answers [1,D], or the tuple ([1,D],
 * [1,C,h,w]) of an embedding and the feature map of its last convolutional stage
 * (models/export_model.py).
 * out: caller frees with bcd__torch_free(); untouched on failure.
 * Returns BCD_OK, BCD_EFORMAT (not a TorchScript model, wrong output shape),
 * BCD_EUNSUPPORTED (cuda asked for but not available), BCD_EINVAL (bad option),
 * BCD_ENOMEM, BCD_ERROR. */
int bcd__torch_load(bcd__torch **out, struct bcd__torch_info *info, const char *path,
                    const struct bcd__torch_options *opts, struct bcd__torch_error *err) BCD__TORCH_NOEXCEPT;

/* Run n tensors (n * 3*224*224 floats, NCHW) through the model into out
 * (out_len >= n * dim floats) and, when maps is not NULL, their feature maps into maps
 * (maps_len >= n * map_c * map_h * map_w floats, NCHW; BCD_EINVAL for a model without
 * them). in, out and maps are the caller's; in is not modified.
 * Returns BCD_OK, BCD_EINVAL, BCD_ENOMEM, BCD_ERROR. */
int bcd__torch_forward(bcd__torch *m, float *out, size_t out_len, float *maps, size_t maps_len, const float *in,
                       size_t n, struct bcd__torch_error *err) BCD__TORCH_NOEXCEPT;

/* NULL: no-op. */
void bcd__torch_free(bcd__torch *m) BCD__TORCH_NOEXCEPT;

/* Function pointer types, for dlsym(). */
typedef int (*bcd__torch_abi_fn)(void);
typedef int (*bcd__torch_load_fn)(bcd__torch **, struct bcd__torch_info *, const char *,
                                  const struct bcd__torch_options *, struct bcd__torch_error *);
typedef int (*bcd__torch_forward_fn)(bcd__torch *, float *, size_t, float *, size_t, const float *, size_t,
                                     struct bcd__torch_error *);
typedef void (*bcd__torch_free_fn)(bcd__torch *);

#ifdef __cplusplus
}
#endif

#endif
