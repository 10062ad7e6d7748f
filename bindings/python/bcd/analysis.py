"""Vector math and trend labels (bcd/analysis.h)."""
import ctypes

from . import _lib
from ._array import FloatBuffer, result
from ._context import cstr, resolve
from .errors import EINVAL, InvalidArgumentError, make_error

#: Trend thresholds of the seeds: stable < 0.1 <= mild_variation < 0.25 <= significant_shift.
TREND_MILD = 0.1
TREND_SIGNIFICANT = 0.25


def _call(ctx, fn, *args):
    with ctx._lock:
        st = fn(*args)
        if st != 0:
            raise make_error(ctx._lib, st, ctx._lib.bcd_ctx_last_error(ctx._handle))


def cosine_distance(a, b, *, ctx=None):
    """1 - a.b / (|a||b|), computed in double, in [0, 2].

    a, b: sequences of numbers, numpy arrays, bcd.Array or float32 bytes.
    Raises InvalidArgumentError ("dimension_mismatch") and DomainError ("zero_vector",
    "not_finite").
    """
    ctx = resolve(ctx)
    va, vb = FloatBuffer(a, "a"), FloatBuffer(b, "b")
    out = ctypes.c_double()
    _call(ctx, ctx._lib.bcd_vector_cosine_distance, ctypes.byref(out), ctx._handle,
          va.ptr, va.count, vb.ptr, vb.count)
    return out.value


def vector_mean(vectors, *, ctx=None, as_numpy=None):
    """Element-wise mean of n vectors of equal length: shape (n, dim) -> (dim,)."""
    ctx = resolve(ctx)
    buf = FloatBuffer(vectors, "vectors")
    if len(buf.shape) != 2:
        raise InvalidArgumentError("vectors must have shape (n, dim), not %r" % (buf.shape,), status=EINVAL,
                                   status_name="invalid_argument", code="invalid_shape")
    n, dim = buf.shape
    out = (ctypes.c_float * max(dim, 1))()
    _call(ctx, ctx._lib.bcd_vector_mean, out, ctx._handle, buf.ptr, n, dim)
    return result(bytes(out)[:dim * 4], (dim,), "float32", as_numpy)


def trend_label(distance):
    """"stable", "mild_variation" or "significant_shift"; None for NaN or a negative distance."""
    v = _lib.lib().bcd_trend_label(float(distance))
    return v.decode() if v is not None else None


def vector_from_json(text, *, ctx=None, as_numpy=None):
    """Parse a vector: a JSON array, an object with "vector"/"embedding", or `bcd-cli embed`
    output (its first embedding). Raises FormatError."""
    ctx = resolve(ctx)
    lib = ctx._lib
    out = ctypes.c_void_p()
    dim = ctypes.c_size_t()
    with ctx._lock:
        st = lib.bcd_vector_from_json(ctypes.byref(out), ctypes.byref(dim), ctx._handle, cstr(text, "json"))
        if st != 0:
            raise make_error(lib, st, lib.bcd_ctx_last_error(ctx._handle))
    try:
        raw = ctypes.string_at(out.value, dim.value * 4) if dim.value else b""
    finally:
        lib.bcd_free(out.value)
    return result(raw, (dim.value,), "float32", as_numpy)
