#!/usr/bin/python3
"""Parity of libbcd's preprocessing with the OpenCV/numpy reference pipeline.

Runs bcd_image_equalize, bcd_image_crop_resize and bcd_image_preprocess (through ctypes on
libbcd.so) and the reference steps (cv2.cvtColor RGB2YUV, cv2.equalizeHist on Y,
cv2.cvtColor YUV2RGB, float32, centre crop, cv2.resize INTER_AREA, np.rint/clip, /255,
ImageNet normalization) on the same pixels, and compares:
  equalized image and 224x224 image byte for byte, tensor within 1e-5.

usage: parity_preprocess.py --lib PATH/libbcd.so [--testdata DIR] [--quick]
"""
import argparse
import ctypes
import os
import sys
import time

import cv2
import numpy as np

SIZE = 224
TENSOR_LEN = 3 * SIZE * SIZE
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
BCD_EUNSUPPORTED = -10


class BcdImage(ctypes.Structure):
    _fields_ = [("width", ctypes.c_uint32), ("height", ctypes.c_uint32),
                ("channels", ctypes.c_uint32), ("data", ctypes.POINTER(ctypes.c_uint8))]


class Lib:
    def __init__(self, path):
        lib = ctypes.CDLL(path)
        P = ctypes.POINTER
        lib.bcd_image_equalize.argtypes = [P(P(BcdImage)), P(BcdImage)]
        lib.bcd_image_crop_resize.argtypes = [P(P(BcdImage)), P(BcdImage), ctypes.c_uint32]
        lib.bcd_image_to_tensor.argtypes = [P(ctypes.c_float), ctypes.c_size_t, P(BcdImage)]
        lib.bcd_image_preprocess.argtypes = [P(ctypes.c_float), ctypes.c_size_t, P(BcdImage)]
        lib.bcd_image_free.argtypes = [P(BcdImage)]
        lib.bcd_image_free.restype = None
        lib.bcd_image_decode_file.argtypes = [P(P(BcdImage)), ctypes.c_void_p, ctypes.c_char_p]
        lib.bcd_ctx_new.argtypes = [P(ctypes.c_void_p)]
        lib.bcd_ctx_free.argtypes = [ctypes.c_void_p]
        lib.bcd_ctx_free.restype = None
        for f in ("bcd_image_equalize", "bcd_image_crop_resize", "bcd_image_to_tensor",
                  "bcd_image_preprocess", "bcd_image_decode_file", "bcd_ctx_new"):
            getattr(lib, f).restype = ctypes.c_int
        self.lib = lib
        self.ctx = ctypes.c_void_p()
        if lib.bcd_ctx_new(ctypes.byref(self.ctx)) != 0:
            raise RuntimeError("bcd_ctx_new failed")

    @staticmethod
    def _wrap(arr):
        arr = np.ascontiguousarray(arr, dtype=np.uint8)
        img = BcdImage(arr.shape[1], arr.shape[0], 3,
                       arr.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8)))
        return img, arr  # keep arr alive with img

    def _take(self, p):
        img = p.contents
        a = np.ctypeslib.as_array(img.data, shape=(img.height, img.width, img.channels)).copy()
        self.lib.bcd_image_free(p)
        return a

    def equalize(self, arr):
        img, keep = self._wrap(arr)
        out = ctypes.POINTER(BcdImage)()
        st = self.lib.bcd_image_equalize(ctypes.byref(out), ctypes.byref(img))
        if st != 0:
            raise RuntimeError("bcd_image_equalize: %d" % st)
        return self._take(out)

    def crop_resize(self, arr, size=SIZE):
        img, keep = self._wrap(arr)
        out = ctypes.POINTER(BcdImage)()
        st = self.lib.bcd_image_crop_resize(ctypes.byref(out), ctypes.byref(img), size)
        if st != 0:
            raise RuntimeError("bcd_image_crop_resize: %d" % st)
        return self._take(out)

    def to_tensor(self, arr):
        img, keep = self._wrap(arr)
        t = np.empty(TENSOR_LEN, dtype=np.float32)
        st = self.lib.bcd_image_to_tensor(t.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
                                          TENSOR_LEN, ctypes.byref(img))
        if st != 0:
            raise RuntimeError("bcd_image_to_tensor: %d" % st)
        return t.reshape(3, SIZE, SIZE)

    def preprocess(self, arr):
        img, keep = self._wrap(arr)
        t = np.empty(TENSOR_LEN, dtype=np.float32)
        t0 = time.perf_counter()
        st = self.lib.bcd_image_preprocess(t.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
                                           TENSOR_LEN, ctypes.byref(img))
        dt = time.perf_counter() - t0
        if st != 0:
            raise RuntimeError("bcd_image_preprocess: %d" % st)
        return t.reshape(3, SIZE, SIZE), dt

    def decode_file(self, path):
        """RGB array, or None when the build's decoder is not available yet."""
        out = ctypes.POINTER(BcdImage)()
        st = self.lib.bcd_image_decode_file(ctypes.byref(out), self.ctx, path.encode())
        if st == BCD_EUNSUPPORTED:
            return None
        if st != 0:
            raise RuntimeError("bcd_image_decode_file(%s): %d" % (path, st))
        return self._take(out)


# ---- reference ------------------------------------------------------------------------

def ref_equalize(rgb):
    yuv = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV)
    yuv[:, :, 0] = cv2.equalizeHist(np.ascontiguousarray(yuv[:, :, 0]))
    return cv2.cvtColor(yuv, cv2.COLOR_YUV2RGB)


def ref_crop_resize(rgb, size=SIZE):
    x = rgb.astype(np.float32)
    h, w = x.shape[:2]
    side = min(w, h)
    top, left = (h - side) // 2, (w - side) // 2
    x = x[top:top + side, left:left + side]
    x = cv2.resize(x, (size, size), interpolation=cv2.INTER_AREA)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def ref_tensor(small):
    x = small.astype(np.float32) / np.float32(255)
    x = (x - MEAN) / STD
    return np.ascontiguousarray(x.transpose(2, 0, 1))


# ---- inputs -----------------------------------------------------------------------------

def synthetic(rng, h, w, kind):
    if kind == "random":
        return rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    if kind == "smooth":
        r = 127.5 + 127.5 * np.sin(xx / max(w, 1) * 5.0 + 0.3)
        g = 127.5 + 127.5 * np.cos(yy / max(h, 1) * 3.0)
        b = 255.0 * (xx + yy) / max(w + h - 2, 1)
        img = np.stack([r, g, b], -1) + rng.normal(0, 4, size=(h, w, 3))
        return np.clip(np.rint(img), 0, 255).astype(np.uint8)
    if kind == "dark":  # narrow histogram, as an underexposed photo
        return rng.integers(10, 40, size=(h, w, 3), dtype=np.uint8)
    if kind == "allrgb":  # every 24-bit colour once (4096 x 4096)
        v = np.arange(h * w, dtype=np.uint32)
        img = np.stack([(v >> 16) & 255, (v >> 8) & 255, v & 255], -1).astype(np.uint8)
        return img.reshape(h, w, 3)
    if kind == "flat":
        img = np.empty((h, w, 3), dtype=np.uint8)
        img[:] = (200, 120, 30)
        return img
    raise ValueError(kind)


SYNTHETIC = [
    # (height, width, kind)
    (224, 224, "random"), (448, 448, "smooth"), (672, 896, "random"), (448, 2240, "smooth"),
    (333, 501, "random"), (501, 333, "smooth"), (480, 640, "smooth"), (640, 480, "random"),
    (1000, 750, "smooth"), (225, 300, "random"), (447, 447, "random"), (600, 601, "dark"),
    (50, 37, "random"), (37, 50, "smooth"), (223, 223, "random"), (2, 2, "random"),
    (3, 5, "smooth"), (112, 150, "smooth"), (160, 161, "random"), (17, 9, "flat"),
    (299, 299, "flat"), (3024, 4032, "smooth"), (4032, 3024, "random"),
    (4096, 4096, "allrgb"),
]

# crop_resize alone at other output sizes, covering every resize path: copy, integer-ratio
# blocks (exact integer sums, and float sums in OpenCV's order for blocks of more than
# 256x256 px, where bright pixels make the order matter), general area, bilinear emulation.
# ((height, width), size, lowest pixel value)
EXTRA_SIZES = [((300, 400), 1, 0), ((300, 400), 7, 0), ((333, 501), 100, 0),
               ((224, 224), 300, 0), ((50, 37), 500, 0), ((1000, 1000), 250, 0),
               ((514, 600), 2, 0), ((1500, 1500), 5, 200), ((4000, 4000), 1, 250)]


def real_images(testdata):
    out = []
    for sub in ("exif-orientation", "jpeg"):
        d = os.path.join(testdata, "images", sub)
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            if name.lower().endswith(".jpg") and not name.startswith(("bad-", "unsupported-")):
                out.append(os.path.join(d, name))
    return out


def decode(lib, path):
    arr = None
    try:
        arr = lib.decode_file(path)
        how = "libbcd"
    except RuntimeError:
        arr = None
    if arr is None:
        bgr = cv2.imread(path, cv2.IMREAD_COLOR)
        if bgr is None:
            return None, "none"
        arr = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        how = "cv2"
    return arr, how


# ---- comparison -------------------------------------------------------------------------

def check(lib, name, rgb, src):
    eq = lib.equalize(rgb)
    eq_ref = ref_equalize(rgb)
    eq_diff = int(np.count_nonzero(eq != eq_ref))
    small = lib.crop_resize(eq)
    small_ref = ref_crop_resize(eq_ref)
    sm_diff = int(np.count_nonzero(small != small_ref))
    tensor, dt = lib.preprocess(rgb)
    t_ref = ref_tensor(small_ref)
    t_err = float(np.max(np.abs(tensor - t_ref)))
    t2 = lib.to_tensor(small_ref)
    t2_err = float(np.max(np.abs(t2 - t_ref)))
    ok = eq_diff == 0 and sm_diff == 0 and t_err <= 1e-5 and t2_err <= 1e-5
    h, w = rgb.shape[:2]
    print("%-34s %-6s %5dx%-5d %9d %9d %10.2e %10.2e %8.1f  %s" % (
        name[:34], src, w, h, eq_diff, sm_diff, t_err, t2_err, dt * 1e3, "ok" if ok else "FAIL"))
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True)
    ap.add_argument("--testdata", default=os.environ.get("BCD_TESTDATA_DIR", ""))
    ap.add_argument("--quick", action="store_true", help="skip the 3024x4032 images")
    a = ap.parse_args()
    lib = Lib(a.lib)
    rng = np.random.default_rng(20240601)

    print("%-34s %-6s %11s %9s %9s %10s %10s %8s" % (
        "image", "src", "w x h", "eq_diff", "224_diff", "tensor_err", "to_t_err", "pre_ms"))
    results = []
    for h, w, kind in SYNTHETIC:
        if a.quick and h * w > 4_000_000:
            continue
        rgb = synthetic(rng, h, w, kind)
        results.append(check(lib, "synthetic-%s-%dx%d" % (kind, w, h), rgb, "synth"))
    paths = real_images(a.testdata) if a.testdata else []
    if not paths:
        print("warning: no real images under %r" % a.testdata)
    for p in paths:
        rgb, how = decode(lib, p)
        if rgb is None:
            print("%-34s undecodable, skipped" % os.path.basename(p))
            continue
        results.append(check(lib, os.path.basename(p), rgb, how))

    extra_ok = n_extra = 0
    for (h, w), size, lo in EXTRA_SIZES:
        if a.quick and h * w > 4_000_000:
            continue
        rgb = rng.integers(lo, 256, size=(h, w, 3), dtype=np.uint8)
        d = int(np.count_nonzero(lib.crop_resize(rgb, size) != ref_crop_resize(rgb, size)))
        print("crop_resize %5dx%-5d -> %-4d diff %d  %s" % (w, h, size, d, "ok" if d == 0 else "FAIL"))
        extra_ok += d == 0
        n_extra += 1

    n, passed = len(results), sum(results)
    print("parity: %d/%d images passed" % (passed, n))
    print("crop_resize sizes: %d/%d passed" % (extra_ok, n_extra))
    return 0 if passed == n and n >= 24 and extra_ok == n_extra else 1


if __name__ == "__main__":
    sys.exit(main())
