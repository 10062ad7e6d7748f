"""Array results without numpy, and conversions of array-like inputs to C buffers."""
import array
import ctypes

try:  # numpy is optional
    import numpy as _np
except ImportError:  # pragma: no cover - depends on the machine
    _np = None

HAVE_NUMPY = _np is not None


class Array:
    """A result array when numpy is not used: raw bytes in C order plus shape and dtype.

    dtype is "uint8" (images) or "float32" (tensors, embeddings), native byte order.
    numpy users get numpy.ndarray instead (or call .to_numpy()).
    """
    __slots__ = ("data", "shape", "dtype")

    def __init__(self, data, shape, dtype):
        self.data = bytes(data)
        self.shape = tuple(shape)
        self.dtype = dtype

    @property
    def typecode(self):
        return "B" if self.dtype == "uint8" else "f"

    def flat(self):
        """The values as a flat array.array."""
        a = array.array(self.typecode)
        a.frombytes(self.data)
        return a

    def tolist(self):
        """Nested lists, as numpy's tolist()."""
        flat = self.flat().tolist()

        def nest(off, dims):
            if len(dims) == 1:
                return flat[off:off + dims[0]]
            step = 1
            for d in dims[1:]:
                step *= d
            return [nest(off + i * step, dims[1:]) for i in range(dims[0])]
        return nest(0, self.shape) if self.shape else flat

    def to_numpy(self):
        if _np is None:
            raise ImportError("numpy is not installed")
        return _np.frombuffer(self.data, dtype=self.dtype).reshape(self.shape).copy()

    def __len__(self):
        return self.shape[0] if self.shape else 0

    def __eq__(self, other):
        return isinstance(other, Array) and (self.data, self.shape, self.dtype) == (other.data, other.shape,
                                                                                    other.dtype)

    def __repr__(self):
        return "bcd.Array(shape=%r, dtype=%r)" % (self.shape, self.dtype)


def want_numpy(as_numpy):
    if as_numpy is None:
        return _np is not None
    if as_numpy and _np is None:
        raise ImportError("as_numpy=True but numpy is not installed")
    return bool(as_numpy)


def result(raw, shape, dtype, as_numpy):
    """Wrap bytes from the library as an ndarray (own copy) or an Array."""
    if want_numpy(as_numpy):
        return _np.frombuffer(bytearray(raw), dtype=dtype).reshape(shape)
    return Array(raw, shape, dtype)


class FloatBuffer:
    """float32 values in C order for a const float * argument; keeps its memory alive."""

    def __init__(self, values, what="vector"):
        self._keep = None
        if _np is not None and isinstance(values, _np.ndarray):
            arr = _np.ascontiguousarray(values, dtype=_np.float32)
            self._keep, self.ptr, self.count, self.shape = arr, arr.ctypes.data, arr.size, arr.shape
            return
        if isinstance(values, Array):
            if values.dtype != "float32":
                raise TypeError("%s must hold float32 values, not %s" % (what, values.dtype))
            buf = values.data
            self.shape = values.shape
        elif isinstance(values, (bytes, bytearray, memoryview)):
            buf = bytes(values)
            if len(buf) % 4:
                raise ValueError("%s: %d bytes is not a whole number of float32 values" % (what, len(buf)))
            self.shape = (len(buf) // 4,)
        else:
            if _np is not None:
                arr = _np.ascontiguousarray(_np.asarray(values, dtype=_np.float32))
                self._keep, self.ptr, self.count, self.shape = arr, arr.ctypes.data, arr.size, arr.shape
                return
            values = list(values)
            a = array.array("f", _flatten(values))
            buf = a.tobytes()
            if values and isinstance(values[0], (list, tuple, Array)):
                self.shape = (len(values), len(a) // len(values))
            else:
                self.shape = (len(a),)
        cbuf = ctypes.create_string_buffer(buf, len(buf)) if buf else ctypes.create_string_buffer(1)
        self._keep, self.ptr, self.count = cbuf, ctypes.addressof(cbuf), len(buf) // 4


def _flatten(values):
    for v in values:
        if isinstance(v, (list, tuple)):
            yield from _flatten(v)
        elif isinstance(v, Array):
            yield from v.flat()
        else:
            yield float(v)
