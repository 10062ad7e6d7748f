/* libbcd-torch.so: the TorchScript embedder over libtorch, behind the plain C interface
 * of torch_shim.h. The only file of libbcd that includes libtorch.
 *
 * Every entry point is noexcept and catches everything: a C++ exception never reaches
 * the C side, which gets a bcd_status and a message instead. Memory crosses only as
 * buffers the caller owns.
 */
#include "torch_shim.h"

#include <sched.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <torch/cuda.h>
#include <torch/script.h>
#include <torch/version.h>

#include "bcd/common.h"

#define BCD_SHIM_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

constexpr int64_t kSide = 224;
constexpr int64_t kTensorLen = 3 * kSide * kSide;
/* Tensors per forward call: bounds the activation memory of large batches (a session
 * has six images, run in one call). */
constexpr size_t kMaxBatch = 8;

/* Append src to the NUL-terminated text in dst, on one line: each run of blanks and
 * newlines becomes one space, none at the start. Never allocates: it runs in the
 * exception handlers. */
void append_text(char *dst, size_t len, const char *src) noexcept
{
    if (!dst || len == 0 || !src)
        return;
    size_t o = strnlen(dst, len - 1);
    for (const char *p = src; *p && o + 1 < len; p++) {
        if (!std::isspace(static_cast<unsigned char>(*p)))
            dst[o++] = *p;
        else if (o > 0 && dst[o - 1] != ' ')
            dst[o++] = ' ';
    }
    dst[o] = '\0';
}

void trim_end(char *dst) noexcept
{
    size_t o = std::strlen(dst);
    while (o > 0 && dst[o - 1] == ' ')
        dst[--o] = '\0';
}

void copy_text(char *dst, size_t len, const char *src) noexcept
{
    if (!dst || len == 0)
        return;
    dst[0] = '\0';
    append_text(dst, len, src);
    trim_end(dst);
}

/* Record a failure; the message is the concatenation of the parts. Never allocates. */
int fail(bcd__torch_error *err, int status, const char *code, const char *msg, const char *more = nullptr) noexcept
{
    if (err) {
        copy_text(err->code, sizeof err->code, code);
        copy_text(err->message, sizeof err->message, "");
        append_text(err->message, sizeof err->message, msg);
        append_text(err->message, sizeof err->message, more);
        trim_end(err->message);
    }
    return status;
}

int fail(bcd__torch_error *err, int status, const char *code, const std::string &msg) noexcept
{
    return fail(err, status, code, msg.c_str());
}

/* The text of an exception without libtorch's C++ backtrace; points into the
 * exception. An error raised inside TorchScript code comes after a TorchScript
 * traceback: keep its last line, the one that says what went wrong ("RuntimeError: ..."). */
const char *why(const std::exception &e) noexcept
{
    auto *ce = dynamic_cast<const c10::Error *>(&e);
    const char *s = ce ? ce->what_without_backtrace() : e.what();
    if (!s || !std::strstr(s, "Traceback of TorchScript"))
        return s;
    const char *end = s + std::strlen(s);
    while (end > s && std::isspace(static_cast<unsigned char>(end[-1])))
        end--;
    const char *start = end;
    while (start > s && start[-1] != '\n')
        start--;
    return start; /* the trailing blanks are dropped when copied */
}

double seconds_since(std::chrono::steady_clock::time_point t0)
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

unsigned cores_available()
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0)
            return static_cast<unsigned>(n);
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? static_cast<unsigned>(n) : 1u;
}

/* BCD_TORCH_OPTIMIZE: -1 when invalid. Unset or empty: on. */
int optimize_setting()
{
    const char *v = std::getenv(BCD__TORCH_OPTIMIZE_ENV);
    if (!v || !*v)
        return 1;
    std::string s(v);
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    if (s == "1" || s == "on" || s == "true" || s == "yes")
        return 1;
    if (s == "0" || s == "off" || s == "false" || s == "no")
        return 0;
    return -1;
}

std::string shape_text(const at::Tensor &t)
{
    std::string s = "[";
    for (int64_t i = 0; i < t.dim(); i++)
        s += (i ? ", " : "") + std::to_string(t.size(i));
    return s + "]";
}

/* What a forward pass answers, as contiguous float32 tensors on the CPU: the embedding
 * [n, D] and, for a model that also answers it, the feature map [n, C, h, w] (else
 * undefined). */
struct outputs {
    at::Tensor emb, map;
};

/* Check one output tensor: floating, dims dimensions, batch n. */
bool check_output(const at::Tensor &t, int64_t dims, int64_t n, std::string &bad)
{
    if (t.dim() != dims || t.size(0) != n) {
        bad = "for input [" + std::to_string(n) + ", 3, 224, 224] the model answers " + shape_text(t) +
              (dims == 2 ? "; libbcd needs [N, D] (export the backbone without its classifier, see models/README.md)"
                         : " as its feature map; libbcd needs [N, C, h, w]");
        return false;
    }
    if (!at::isFloatingType(t.scalar_type())) {
        bad = std::string("the model answers ") + c10::toString(t.scalar_type()) + " values, not floating point";
        return false;
    }
    return true;
}

/* Run the module on input [n,3,224,224]; the output must be a floating [n, D] tensor,
 * or the tuple of one and a floating [n, C, h, w] map (models/export_model.py). With
 * want (from the probe), D and the map's shape must be the same as then. */
outputs run(torch::jit::Module &mod, const at::Tensor &input, const outputs *want, std::string &bad)
{
    torch::jit::IValue y = mod.forward({input});
    const int64_t n = input.size(0);
    outputs o;
    at::Tensor e, m;
    if (y.isTensor()) {
        e = y.toTensor();
    } else if (y.isTuple() && y.toTupleRef().elements().size() == 2 && y.toTupleRef().elements()[0].isTensor() &&
               y.toTupleRef().elements()[1].isTensor()) {
        e = y.toTupleRef().elements()[0].toTensor();
        m = y.toTupleRef().elements()[1].toTensor();
    } else {
        bad = "the model returns a " + y.tagKind() + ", not a tensor [N, D] or a tuple ([N, D], [N, C, h, w])";
        return o;
    }
    if (!check_output(e, 2, n, bad) || e.size(1) < 1 || (m.defined() && !check_output(m, 4, n, bad))) {
        if (bad.empty())
            bad = "the model answers an empty embedding " + shape_text(e);
        return o;
    }
    if (want && (e.size(1) != want->emb.size(1) || m.defined() != want->map.defined() ||
                 (m.defined() && m.sizes().slice(1) != want->map.sizes().slice(1)))) {
        bad = "the model answers " + shape_text(e) + (m.defined() ? " and " + shape_text(m) : std::string()) +
              " for a batch of " + std::to_string(n) + ", not the shapes it answered a single image";
        return o;
    }
    o.emb = e.to(at::kCPU, at::kFloat).contiguous();
    if (m.defined())
        o.map = m.to(at::kCPU, at::kFloat).contiguous();
    return o;
}

} // namespace

struct bcd__torch {
    torch::jit::Module module;
    c10::Device device{c10::kCPU};
    unsigned threads = 1;
    size_t dim = 0;
    outputs probe; /* what a zero image answered: the shapes every batch must have */
    size_t map_len = 0; /* floats of one image's feature map; 0: the model has none */
};

BCD_SHIM_EXPORT int bcd__torch_abi(void) noexcept
{
    return BCD__TORCH_SHIM_ABI;
}

BCD_SHIM_EXPORT int bcd__torch_load(bcd__torch **out, bcd__torch_info *info, const char *path,
                                    const bcd__torch_options *opts, bcd__torch_error *err) noexcept
{
    if (!out || !info || !path || !opts)
        return fail(err, BCD_EINVAL, "invalid_argument", "bcd__torch_load: NULL argument");
    try {
        const std::string dev = opts->device && *opts->device ? opts->device : "auto";
        const bool have_cuda = torch::cuda::is_available();
        c10::Device device(c10::kCPU);
        if (dev == "cuda") {
            if (!have_cuda)
                return fail(err, BCD_EUNSUPPORTED, "cuda_unavailable",
                            "BCD_DEVICE=cuda, but CUDA is not available (libtorch " TORCH_VERSION
                            " without CUDA support or no GPU); use auto or cpu");
            device = c10::Device(c10::kCUDA, 0);
        } else if (dev == "auto") {
            if (have_cuda)
                device = c10::Device(c10::kCUDA, 0);
        } else if (dev != "cpu") {
            return fail(err, BCD_EINVAL, "invalid_config", "BCD_DEVICE must be auto, cpu or cuda, not '" + dev + "'");
        }
        const int optimize = optimize_setting();
        if (optimize < 0)
            return fail(err, BCD_EINVAL, "invalid_config",
                        BCD__TORCH_OPTIMIZE_ENV " must be 1/on/true or 0/off/false, not '" +
                            std::string(std::getenv(BCD__TORCH_OPTIMIZE_ENV)) + "'");
        const unsigned threads = opts->threads ? opts->threads : cores_available();
        at::set_num_threads(static_cast<int>(threads));

        /* freed by unwinding on every failure */
        std::unique_ptr<bcd__torch> m(new bcd__torch());
        m->device = device;
        m->threads = threads;
        auto t0 = std::chrono::steady_clock::now();
        try {
            m->module = torch::jit::load(path, device);
        } catch (const c10::Error &e) {
            return fail(err, BCD_EFORMAT, "model_invalid",
                        std::string("'") + path + "' is not a TorchScript model libtorch " TORCH_VERSION
                        " can load: " + why(e));
        }
        m->module.eval();
        info->load_s = seconds_since(t0);
        t0 = std::chrono::steady_clock::now();
        bool optimized = false;
        if (optimize) {
            /* Freezing inlines the parameters as constants (folding batch norm into the
             * convolutions); optimize_for_inference then picks oneDNN kernels and
             * layouts. Each step makes new weights: letting go of the previous module
             * at once keeps at most two copies alive (peak RSS of ResNet50's open: 230
             * instead of 320 MB above libtorch). A module that cannot be frozen runs as
             * stored. */
            try {
                m->module = torch::jit::freeze(m->module);
                m->module = torch::jit::optimize_for_inference(m->module);
                optimized = true;
            } catch (const std::exception &) {
                m->module = torch::jit::load(path, device);
                m->module.eval();
            }
        }

        info->optimize_s = seconds_since(t0);
        t0 = std::chrono::steady_clock::now();

        /* The probe: a zero image must give [1, D] (and [1, C, h, w]). */
        std::string bad;
        outputs y;
        {
            c10::InferenceMode guard;
            at::Tensor probe = at::zeros({1, 3, kSide, kSide}, at::TensorOptions().dtype(at::kFloat).device(device));
            try {
                y = run(m->module, probe, nullptr, bad);
            } catch (const std::bad_alloc &) {
                throw;
            } catch (const std::exception &e) {
                return fail(err, BCD_EFORMAT, "model_probe_failed",
                            std::string("'") + path + "' is not an embedding model: it fails on an input [1, 3, "
                            "224, 224]: " + why(e));
            }
        }
        if (!y.emb.defined())
            return fail(err, BCD_EFORMAT, "model_output_shape",
                        std::string("'") + path + "' is not an embedding model: " + bad);
        m->dim = static_cast<size_t>(y.emb.size(1));
        m->probe = y;
        info->probe_s = seconds_since(t0);

        info->dim = m->dim;
        info->map_c = info->map_h = info->map_w = 0;
        if (y.map.defined()) {
            info->map_c = static_cast<size_t>(y.map.size(1));
            info->map_h = static_cast<size_t>(y.map.size(2));
            info->map_w = static_cast<size_t>(y.map.size(3));
            m->map_len = info->map_c * info->map_h * info->map_w;
        }
        copy_text(info->device, sizeof info->device, device.str().c_str());
        info->threads = threads;
        info->optimized = optimized;
        copy_text(info->torch_version, sizeof info->torch_version, TORCH_VERSION);
#ifdef __GLIBC__
        /* Hand the freed copies of the weights back to the system (glibc keeps the
         * heap otherwise): 25 MB less resident for ResNet50. */
        malloc_trim(0);
#endif
        *out = m.release();
        return BCD_OK;
    } catch (const std::bad_alloc &) {
        return fail(err, BCD_ENOMEM, "out_of_memory", "out of memory loading the model");
    } catch (const std::exception &e) {
        return fail(err, BCD_ERROR, "torch_error", "libtorch: ", why(e));
    } catch (...) {
        return fail(err, BCD_ERROR, "torch_error", "unknown C++ exception loading the model");
    }
}

BCD_SHIM_EXPORT int bcd__torch_forward(bcd__torch *m, float *out, size_t out_len, float *maps, size_t maps_len,
                                       const float *in, size_t n, bcd__torch_error *err) noexcept
{
    if (!m || !out || !in || n == 0)
        return fail(err, BCD_EINVAL, "invalid_argument", "forward needs a model, tensors and n > 0");
    if (out_len / m->dim < n)
        return fail(err, BCD_EINVAL, "invalid_argument", "output buffer too small");
    if (maps && !m->map_len)
        return fail(err, BCD_EINVAL, "invalid_argument", "the model answers no feature map");
    if (maps && maps_len / m->map_len < n)
        return fail(err, BCD_EINVAL, "invalid_argument", "feature map buffer too small");
    try {
        c10::InferenceMode guard;
        /* The thread count is process-wide in libtorch: another embedder may have
         * changed it since this one was loaded. */
        if (at::get_num_threads() != static_cast<int>(m->threads))
            at::set_num_threads(static_cast<int>(m->threads));
        for (size_t done = 0; done < n;) {
            const size_t k = std::min(kMaxBatch, n - done);
            /* A copy (or the transfer to the GPU): the caller's buffer stays untouched
             * even by a model with in-place operations on its input. */
            at::Tensor x = at::from_blob(const_cast<float *>(in + done * kTensorLen),
                                         {static_cast<int64_t>(k), 3, kSide, kSide}, at::kFloat)
                               .to(m->device, /*non_blocking=*/false, /*copy=*/true);
            std::string bad;
            outputs y = run(m->module, x, &m->probe, bad);
            if (!y.emb.defined())
                return fail(err, BCD_ERROR, "model_output_shape", bad);
            std::memcpy(out + done * m->dim, y.emb.data_ptr<float>(), k * m->dim * sizeof(float));
            if (maps)
                std::memcpy(maps + done * m->map_len, y.map.data_ptr<float>(), k * m->map_len * sizeof(float));
            done += k;
        }
        return BCD_OK;
    } catch (const std::bad_alloc &) {
        return fail(err, BCD_ENOMEM, "out_of_memory", "out of memory running the model");
    } catch (const std::exception &e) {
        return fail(err, BCD_ERROR, "model_failed", "model forward failed: ", why(e));
    } catch (...) {
        return fail(err, BCD_ERROR, "model_failed", "unknown C++ exception in the model forward");
    }
}

BCD_SHIM_EXPORT void bcd__torch_free(bcd__torch *m) noexcept
{
    try {
        delete m;
    } catch (...) {
        /* a destructor that throws: nothing sensible left to do */
    }
}
