"""Minimal ctypes access to the public libbcd API for the torch tests and the benchmark."""
import ctypes

import numpy as np

TENSOR_LEN = 3 * 224 * 224


class Image(ctypes.Structure):
    _fields_ = [("width", ctypes.c_uint32), ("height", ctypes.c_uint32),
                ("channels", ctypes.c_uint32), ("data", ctypes.POINTER(ctypes.c_uint8))]


class BcdError(Exception):
    def __init__(self, status, code, message):
        super().__init__("%s (%d): %s" % (code, status, message))
        self.status, self.code, self.message = status, code, message


class Lib:
    EUNSUPPORTED = -10

    def __init__(self, path):
        lib = self.lib = ctypes.CDLL(path)
        vp = ctypes.c_void_p
        lib.bcd_ctx_new.argtypes = [ctypes.POINTER(vp)]
        lib.bcd_ctx_free.argtypes = [vp]
        lib.bcd_ctx_set.argtypes = [vp, ctypes.c_char_p, ctypes.c_char_p]
        lib.bcd_ctx_last_error.argtypes = [vp]
        lib.bcd_ctx_last_error.restype = vp
        for f in ("bcd_error_code", "bcd_error_message"):
            getattr(lib, f).argtypes = [vp]
            getattr(lib, f).restype = ctypes.c_char_p
        lib.bcd_embedder_open.argtypes = [ctypes.POINTER(vp), vp, ctypes.c_char_p]
        lib.bcd_embedder_free.argtypes = [vp]
        lib.bcd_embedder_dim.argtypes = [vp]
        lib.bcd_embedder_dim.restype = ctypes.c_size_t
        lib.bcd_embedder_name.argtypes = [vp]
        lib.bcd_embedder_name.restype = ctypes.c_char_p
        lib.bcd_embedder_embed.argtypes = [vp, vp, vp, ctypes.c_size_t]
        lib.bcd_image_decode_file.argtypes = [ctypes.POINTER(ctypes.POINTER(Image)), vp, ctypes.c_char_p]
        lib.bcd_image_free.argtypes = [ctypes.POINTER(Image)]
        lib.bcd_image_preprocess.argtypes = [vp, ctypes.c_size_t, ctypes.POINTER(Image)]
        self.ctx = vp()
        if lib.bcd_ctx_new(ctypes.byref(self.ctx)) != 0:
            raise MemoryError("bcd_ctx_new")

    def check(self, st):
        if st != 0:
            e = self.lib.bcd_ctx_last_error(self.ctx)
            code = self.lib.bcd_error_code(e).decode() if e else "?"
            msg = self.lib.bcd_error_message(e).decode() if e else "(no detail)"
            raise BcdError(st, code, msg)

    def set(self, key, value):
        self.check(self.lib.bcd_ctx_set(self.ctx, key.encode(), value.encode()))

    def open_embedder(self, spec):
        e = ctypes.c_void_p()
        self.check(self.lib.bcd_embedder_open(ctypes.byref(e), self.ctx, spec.encode()))
        return Embedder(self, e)

    def decode_file(self, path):
        """(H, W, 3) uint8 array and the bcd_image pointer (free with free_image)."""
        img = ctypes.POINTER(Image)()
        self.check(self.lib.bcd_image_decode_file(ctypes.byref(img), self.ctx, str(path).encode()))
        return img

    def free_image(self, img):
        self.lib.bcd_image_free(img)

    def image_array(self, img):
        im = img.contents
        n = im.width * im.height * im.channels
        return np.ctypeslib.as_array(im.data, shape=(n,)).reshape(im.height, im.width, im.channels).copy()

    def preprocess(self, img):
        # bcd_image_preprocess records no error on a ctx: its status is all there is
        out = np.empty(TENSOR_LEN, np.float32)
        st = self.lib.bcd_image_preprocess(out.ctypes.data, out.size, img)
        if st != 0:
            raise BcdError(st, "preprocess", "bcd_image_preprocess failed")
        return out.reshape(3, 224, 224)


class Embedder:
    def __init__(self, lib, handle):
        self.l, self.h = lib, handle
        self.dim = lib.lib.bcd_embedder_dim(handle)
        self.name = lib.lib.bcd_embedder_name(handle).decode()

    def embed(self, tensors):
        t = np.ascontiguousarray(tensors, dtype=np.float32).reshape(-1, TENSOR_LEN)
        out = np.empty((t.shape[0], self.dim), np.float32)
        self.l.check(self.l.lib.bcd_embedder_embed(self.h, out.ctypes.data, t.ctypes.data, t.shape[0]))
        return out

    def close(self):
        if self.h:
            self.l.lib.bcd_embedder_free(self.h)
            self.h = None
