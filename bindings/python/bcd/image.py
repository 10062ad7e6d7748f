"""Decoding and preprocessing (bcd/image.h), returning numpy arrays when numpy is there."""
import ctypes
import os

from . import _lib
from ._array import Array, _np, result, want_numpy
from ._context import cstr, resolve
from .errors import make_error

INPUT_SIZE = _lib.INPUT_SIZE
TENSOR_LEN = _lib.TENSOR_LEN
TENSOR_SHAPE = (3, INPUT_SIZE, INPUT_SIZE)


def _check(lib, st, ctx=None):
    if st != 0:
        raise make_error(lib, st, lib.bcd_ctx_last_error(ctx._handle) if ctx is not None else None)


def _take_image(lib, ptr, as_numpy):
    """Copy a library-made bcd_image out and free it with bcd_image_free()."""
    try:
        im = ptr.contents
        shape = (im.height, im.width, im.channels)
        raw = ctypes.string_at(im.data, im.height * im.width * im.channels)
    finally:
        lib.bcd_image_free(ptr)
    return result(raw, shape, "uint8", as_numpy)


class _InImage:
    """A bcd_image over the caller's pixels (H x W x C uint8), for const bcd_image * args."""

    def __init__(self, image):
        if _np is not None and isinstance(image, _np.ndarray):
            if image.dtype != _np.uint8 or image.ndim not in (2, 3):
                raise TypeError("image must be a uint8 array of shape (height, width, 3)")
            arr = _np.ascontiguousarray(image)
            h, w = arr.shape[:2]
            c = arr.shape[2] if arr.ndim == 3 else 1
            self._keep = arr
            data = ctypes.cast(arr.ctypes.data, ctypes.POINTER(ctypes.c_uint8))
        elif isinstance(image, Array):
            if image.dtype != "uint8" or len(image.shape) != 3:
                raise TypeError("image must be a uint8 Array of shape (height, width, 3)")
            h, w, c = image.shape
            buf = ctypes.create_string_buffer(image.data, len(image.data) or 1)
            self._keep = buf
            data = ctypes.cast(buf, ctypes.POINTER(ctypes.c_uint8))
        else:
            raise TypeError("expected an image (numpy uint8 array or bcd.Array), not %s" % type(image).__name__)
        self.c = _lib.CImage(width=w, height=h, channels=c, data=data)

    @property
    def ref(self):
        return ctypes.byref(self.c)


def _is_source(obj):
    return isinstance(obj, (str, bytes, bytearray, memoryview, os.PathLike))


def decode(source, *, ctx=None, as_numpy=None):
    """Decode a JPEG or PNG: source is a path (str or os.PathLike) or the encoded bytes.

    Applies the EXIF orientation; checks the context's size limits before allocating.
    Returns the RGB pixels, shape (height, width, 3), dtype uint8: a numpy array when numpy
    is importable (as_numpy=None) or as_numpy=True, else a bcd.Array.
    Raises FormatError (not JPEG/PNG, corrupt, truncated), LimitError (too large),
    NotFoundError (no such file), InputOutputError.
    """
    want_numpy(as_numpy)  # fail before decoding when numpy was asked for and is missing
    ctx = resolve(ctx)
    lib = ctx._lib
    out = _lib.CImage_p()
    with ctx._lock:
        if isinstance(source, (str, os.PathLike)):
            st = lib.bcd_image_decode_file(ctypes.byref(out), ctx._handle, cstr(source, "path"))
        elif isinstance(source, (bytes, bytearray, memoryview)):
            data = bytes(source)
            st = lib.bcd_image_decode(ctypes.byref(out), ctx._handle, data, len(data))
        else:
            raise TypeError("decode() takes a path or bytes, not %s" % type(source).__name__)
        _check(lib, st, ctx)
    return _take_image(lib, out, as_numpy)


def strip_metadata(data, *, ctx=None):
    """The encoded JPEG or PNG `data` (bytes) without its metadata (bcd_image_strip_metadata):
    EXIF with GPS, serial numbers and thumbnails, XMP, IPTC, ICC profiles, comments and
    trailing data go; tables, image data and the orientation stay, so it decodes to exactly
    the same pixels. Use it before uploading through a signed URL (Service.upload_url()),
    which stores the bytes as sent. Raises FormatError, UnsupportedError on a libbcd
    without the function."""
    ctx = resolve(ctx)
    lib = ctx._lib
    fn = lib.bcd_image_strip_metadata
    if fn is None:
        from .errors import EUNSUPPORTED, UnsupportedError
        raise UnsupportedError("this libbcd (%s) has no bcd_image_strip_metadata" % lib.version,
                               status=EUNSUPPORTED, status_name="unsupported", code="not_in_library")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError("strip_metadata() takes bytes, not %s" % type(data).__name__)
    data = bytes(data)
    out, n = ctypes.c_void_p(), ctypes.c_size_t()
    with ctx._lock:
        _check(lib, fn(ctypes.byref(out), ctypes.byref(n), ctx._handle, data, len(data)), ctx)
    try:
        return ctypes.string_at(out.value, n.value)
    finally:
        lib.bcd_free(out.value)


def equalize(image, *, as_numpy=None):
    """RGB->YUV, equalize Y, YUV->RGB, as OpenCV does (bcd_image_equalize)."""
    lib = _lib.lib()
    src = _InImage(image)
    out = _lib.CImage_p()
    _check(lib, lib.bcd_image_equalize(ctypes.byref(out), src.ref))
    return _take_image(lib, out, as_numpy)


def crop_resize(image, size=INPUT_SIZE, *, as_numpy=None):
    """Centre square crop and INTER_AREA resize to size x size (bcd_image_crop_resize)."""
    lib = _lib.lib()
    src = _InImage(image)
    out = _lib.CImage_p()
    _check(lib, lib.bcd_image_crop_resize(ctypes.byref(out), src.ref, int(size)))
    return _take_image(lib, out, as_numpy)


def _tensor(fn_name, image, as_numpy):
    lib = _lib.lib()
    src = _InImage(image)
    buf = (ctypes.c_float * TENSOR_LEN)()
    _check(lib, getattr(lib, fn_name)(buf, TENSOR_LEN, src.ref))
    return result(bytes(buf), TENSOR_SHAPE, "float32", as_numpy)


def to_tensor(image, *, as_numpy=None):
    """A 224x224 RGB image scaled to [0,1] and ImageNet-normalized, CHW float32."""
    return _tensor("bcd_image_to_tensor", image, as_numpy)


def preprocess(source, *, ctx=None, as_numpy=None):
    """The whole preprocessing pipeline (equalize, crop and resize, normalize).

    source: a decoded image (numpy uint8 (H, W, 3) or bcd.Array), or a path / encoded
    bytes, which are decoded first with ctx. Returns the (3, 224, 224) float32 tensor.
    """
    want_numpy(as_numpy)
    if _is_source(source):
        source = decode(source, ctx=ctx, as_numpy=_np is not None)
    return _tensor("bcd_image_preprocess", source, as_numpy)


def write_png(image, path, *, ctx=None):
    """Encode an RGB image as a PNG file (bcd_image_write_png)."""
    ctx = resolve(ctx)
    lib = ctx._lib
    src = _InImage(image)
    with ctx._lock:
        _check(lib, lib.bcd_image_write_png(ctx._handle, src.ref, cstr(path, "path")), ctx)

