"""bcd.Embedder: preprocessed tensors to embedding vectors (bcd/embed.h)."""
import ctypes
import weakref

from ._array import Array, FloatBuffer, _np, result
from ._context import closed_error, cstr, resolve
from .errors import EINVAL, InvalidArgumentError, make_error
from .image import TENSOR_LEN, preprocess


class Embedder:
    """An embedder (bcd_embedder): Embedder(spec=None, *, ctx=None).

    spec: "builtin" (pure C, no model file), a TorchScript file (needs the libtorch module:
    UnsupportedError otherwise), or None for the context's BCD_MODEL (default "builtin").
    The embedder borrows its context (the default context when ctx is None) and is closed
    with it. A context manager; close() frees it.
    """

    def __init__(self, spec=None, *, ctx=None):
        self._ctx = resolve(ctx)
        self._lib = self._ctx._lib
        ptr = ctypes.c_void_p()
        self._ctx._call(self._lib.bcd_embedder_open, ctypes.byref(ptr), self._ctx._handle, cstr(spec, "spec"))
        self._ptr = ptr.value
        self._finalizer = weakref.finalize(self, self._lib.bcd_embedder_free, self._ptr)
        self._ctx._adopt(self)
        self.dim = self._lib.bcd_embedder_dim(self._ptr)
        self.name = self._lib.bcd_embedder_name(self._ptr).decode()
        c, h, w = ctypes.c_size_t(), ctypes.c_size_t(), ctypes.c_size_t()
        has = self._lib.bcd_embedder_map_shape(self._ptr, ctypes.byref(c), ctypes.byref(h), ctypes.byref(w))
        #: (C, h, w) of the feature map of the model's last convolutional stage, or None
        #: (the built-in embedder, a model exported without one)
        self.map_shape = (c.value, h.value, w.value) if has else None

    @property
    def closed(self):
        return self._ptr is None

    def close(self):
        with self._ctx._lock:
            if self._ptr is not None:
                self._ptr = None
                self._finalizer()

    def __enter__(self):
        if self._ptr is None:
            raise closed_error("Embedder")
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "<bcd.Embedder %s dim=%d%s>" % (self.name, self.dim, " closed" if self.closed else "")

    def embed(self, tensors, *, as_numpy=None, maps=False):
        """Embed a batch of preprocessed tensors (bcd.preprocess()).

        tensors: float32 data of n x 3 x 224 x 224 values: an array of shape (n, 3, 224, 224)
        or (3, 224, 224), a list of tensors, a bcd.Array or raw bytes.
        Returns shape (n, dim) float32 (numpy array or bcd.Array); with maps=True the pair
        (embeddings, feature maps of shape (n, C, h, w)) from the same forward pass
        (UnsupportedError when map_shape is None).
        """
        if isinstance(tensors, (list, tuple)) and tensors and all(isinstance(t, (Array, bytes)) for t in tensors):
            tensors = b"".join(t.data if isinstance(t, Array) else t for t in tensors)
        elif isinstance(tensors, (list, tuple)) and tensors and _np is not None:
            tensors = _np.stack([_np.asarray(t, dtype=_np.float32) for t in tensors])
        buf = FloatBuffer(tensors, "tensors")
        if buf.count == 0 or buf.count % TENSOR_LEN:
            raise InvalidArgumentError("tensors hold %d floats, not a positive multiple of %d (3 x 224 x 224)"
                                       % (buf.count, TENSOR_LEN), status=EINVAL,
                                       status_name="invalid_argument", code="invalid_tensor_shape")
        n = buf.count // TENSOR_LEN
        out = (ctypes.c_float * (n * self.dim))()
        shape = self.map_shape if maps else None
        # without a map the library refuses (UnsupportedError "no_feature_map") before writing
        fmaps = (ctypes.c_float * (n * shape[0] * shape[1] * shape[2] if shape else 1))()
        with self._ctx._lock:
            if self._ptr is None:
                raise closed_error("Embedder")
            if maps:
                st = self._lib.bcd_embedder_embed_maps(self._ptr, out, fmaps, buf.ptr, n)
            else:
                st = self._lib.bcd_embedder_embed(self._ptr, out, buf.ptr, n)
            if st != 0:
                raise make_error(self._lib, st, self._lib.bcd_ctx_last_error(self._ctx._handle))
        emb = result(bytes(out), (n, self.dim), "float32", as_numpy)
        return (emb, result(bytes(fmaps), (n,) + shape, "float32", as_numpy)) if maps else emb

    def embed_images(self, sources, *, as_numpy=None):
        """Decode (paths or bytes) and preprocess each source, then embed them in one batch."""
        ts = [preprocess(s, ctx=self._ctx, as_numpy=_np is not None) for s in sources]
        if _np is not None:
            batch = _np.stack(ts) if ts else _np.zeros((0,) + (3, 224, 224), _np.float32)
        else:
            batch = b"".join(t.data for t in ts)
        return self.embed(batch, as_numpy=as_numpy)

