"""Change detection between two photos of one angle, and the quality gate (bcd/detect.h).

    import bcd
    with bcd.detect.compare("check2/left.jpg", "check1/left.jpg") as r:
        print(r.local_change, r.regions[:1], r.blurred, r.misaligned)
        r.write_heatmap("check2/left.jpg", "left-heatmap.png")

Images are what bcd.decode() returns (numpy uint8 (H, W, 3) arrays or bcd.Array), or a
path / encoded bytes, decoded first with the call's context. A DetectResult owns a
library result (freed with bcd_detect_result_free): close it, or use it as a context
manager; the garbage collector frees forgotten ones.
"""
import collections
import ctypes
import json
import threading
import weakref

from . import _lib
from ._array import _np, result, want_numpy
from ._context import closed_error, cstr, resolve
from .errors import ESTATE, StateError, make_error
from .image import _InImage, _is_source, _take_image, decode

# Flags of bcd_detect_result_flags().
BLURRED = 0x01
CLIPPED = 0x02
SUBJECT_TOO_SMALL = 0x04
MISALIGNED = 0x08
PREVIOUS_BLURRED = 0x10
PREVIOUS_CLIPPED = 0x20
PREVIOUS_SUBJECT_TOO_SMALL = 0x40

# Library defaults of the options (a zero field in DetectOptions means these).
DEFAULT_WORK_SIZE = 512
DEFAULT_GRID = 16
DEFAULT_HEATMAP_SIDE = 1024
DEFAULT_BLUR_THRESHOLD = 3.5
DEFAULT_CLIP_THRESHOLD = 0.15
DEFAULT_SUBJECT_THRESHOLD = 0.20
DEFAULT_MIN_ALIGNMENT_SCORE = 0.60
DEFAULT_MIN_OVERLAP = 0.50

#: Keys of bcd_detect_result_value() (enum bcd_detect_value), by the names DetectResult uses.
VALUES = {
    "local_change": 0,
    "blur_variance": 1,
    "clipped_fraction": 2,
    "subject_fraction": 3,
    "alignment_score": 4,
    "overlap": 5,
    "dx": 6,
    "dy": 7,
    "rotation": 8,
    "scale": 9,
    "previous_blur_variance": 10,
    "previous_clipped_fraction": 11,
    "previous_subject_fraction": 12,
    "change_evidence": 13,
    "noise_level": 14,
}

#: A changed region: a box in the current photo's pixels and its strength in [0, 1].
Region = collections.namedtuple("Region", "x y width height score")
#: The change map: cols x rows cells tiling the current frame; values has shape
#: (rows, cols), float32 in [0, 1], -1 where the previous photo covers under half the cell.
Cells = collections.namedtuple("Cells", "cols rows values")


class DetectOptions(_lib.DetectOptionsStruct):
    """Options of compare() and quality() (struct bcd_detect_options).

    DetectOptions(work_size=0, grid=0, heatmap_max_side=0, blur_threshold=0.0,
                  clip_threshold=0.0, subject_threshold=0.0, min_alignment_score=0.0,
                  min_overlap=0.0)

    Starts from bcd_detect_options_init(); a zero field means the library default (the
    DEFAULT_* constants of this module). Values out of range are refused by the call
    that uses them (InvalidArgumentError).
    """

    FIELDS = tuple(name for name, _ in _lib.DetectOptionsStruct._fields_ if name != "version")

    def __init__(self, **fields):
        super().__init__()
        lib = _lib.lib()
        st = lib.need("bcd_detect_options_init")(ctypes.byref(self), _lib.DETECT_OPTIONS_VERSION)
        if st != 0:
            raise make_error(lib, st, None)
        for k, v in fields.items():
            if k not in self.FIELDS:
                raise TypeError("DetectOptions has no field %r (fields: %s)" % (k, ", ".join(self.FIELDS)))
            setattr(self, k, v)

    def to_dict(self):
        return {k: getattr(self, k) for k in self.FIELDS}

    def __repr__(self):
        return "bcd.detect.DetectOptions(%s)" % ", ".join("%s=%r" % kv for kv in self.to_dict().items())


def _options(options):
    if options is None:
        return None
    if isinstance(options, dict):
        options = DetectOptions(**options)
    if not isinstance(options, DetectOptions):
        raise TypeError("options must be a bcd.detect.DetectOptions or a dict, not %s" % type(options).__name__)
    return ctypes.byref(options)


def _image(source, ctx):
    """_InImage for an array, or for a path / bytes decoded with ctx."""
    if _is_source(source):
        source = decode(source, ctx=ctx, as_numpy=_np is not None)
    return _InImage(source)


class DetectResult:
    """The outcome of compare() or quality() (bcd_detect_result). Read-only.

    Properties: flags and the booleans blurred, clipped, subject_too_small, misaligned,
    previous_blurred, previous_clipped, previous_subject_too_small; the values of
    VALUES (local_change, alignment_score, overlap, dx, dy, rotation, scale,
    noise_level, ...; NaN where not computed) also through value(key); regions, matrix,
    cells; to_json() / to_dict(); render_heatmap() / write_heatmap().

    A quality-only result (quality()) has no alignment: local_change is NaN, regions is
    [], matrix and cells are None. Using a closed result raises StateError.
    """

    def __init__(self, ptr, lib, ctx, compared):
        self._ptr = ptr
        self._lib = lib
        self._ctx = ctx
        self._lock = threading.Lock()
        self.compared = compared  #: True for compare(), False for quality()
        self._finalizer = weakref.finalize(self, lib.bcd_detect_result_free, ptr)

    # -- lifetime ---------------------------------------------------------------------
    @property
    def closed(self):
        return self._ptr is None

    def close(self):
        """Free the library result. Idempotent."""
        with self._lock:
            if self._ptr is not None:
                self._ptr = None
                self._finalizer()

    def __enter__(self):
        if self._ptr is None:
            raise closed_error("DetectResult")
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        if self.closed:
            return "<bcd.detect.DetectResult closed>"
        return "<bcd.detect.DetectResult %s local_change=%.3f flags=0x%02x>" % (
            "compare" if self.compared else "quality", self.local_change, self.flags)

    def _read(self, fn):
        """fn(ptr) under the lock, so that close() cannot free the result meanwhile."""
        with self._lock:
            if self._ptr is None:
                raise closed_error("DetectResult")
            return fn(self._ptr)

    # -- flags ------------------------------------------------------------------------
    @property
    def flags(self):
        """Bitwise OR of the flag constants (BLURRED, CLIPPED, ...)."""
        return self._read(self._lib.bcd_detect_result_flags)

    def _flag(bit):
        return property(lambda self: bool(self.flags & bit))

    blurred = _flag(BLURRED)
    clipped = _flag(CLIPPED)
    subject_too_small = _flag(SUBJECT_TOO_SMALL)
    misaligned = _flag(MISALIGNED)
    previous_blurred = _flag(PREVIOUS_BLURRED)
    previous_clipped = _flag(PREVIOUS_CLIPPED)
    previous_subject_too_small = _flag(PREVIOUS_SUBJECT_TOO_SMALL)
    del _flag

    # -- values -----------------------------------------------------------------------
    def value(self, key):
        """One numeric value: key is a name of VALUES ("local_change", "dx", ...) or the
        enum's integer; NaN when not computed (or an integer key this libbcd does not know)."""
        if isinstance(key, str):
            try:
                key = VALUES[key]
            except KeyError:
                raise KeyError("unknown detect value %r (known: %s)" % (key, ", ".join(VALUES))) from None
        elif not isinstance(key, int) or isinstance(key, bool):
            raise TypeError("key must be a value name or an int, not %s" % type(key).__name__)
        return self._read(lambda p: self._lib.bcd_detect_result_value(p, key))

    def values(self):
        """Every value of VALUES as a dict (NaN where not computed)."""
        return {name: self.value(name) for name in VALUES}

    def _value(name):
        return property(lambda self: self.value(name), doc="bcd_detect_result_value(%s)" % name)

    local_change = _value("local_change")
    blur_variance = _value("blur_variance")
    clipped_fraction = _value("clipped_fraction")
    subject_fraction = _value("subject_fraction")
    alignment_score = _value("alignment_score")
    overlap = _value("overlap")
    dx = _value("dx")
    dy = _value("dy")
    rotation = _value("rotation")
    scale = _value("scale")
    previous_blur_variance = _value("previous_blur_variance")
    previous_clipped_fraction = _value("previous_clipped_fraction")
    previous_subject_fraction = _value("previous_subject_fraction")
    change_evidence = _value("change_evidence")
    noise_level = _value("noise_level")
    del _value

    # -- regions, matrix, cells -------------------------------------------------------
    @property
    def regions(self):
        """The changed regions, strongest first: a list of Region(x, y, width, height, score)."""
        def read(p):
            n = ctypes.c_size_t()
            arr = self._lib.bcd_detect_result_regions(p, ctypes.byref(n))
            if not arr:
                return []
            return [Region(r.x, r.y, r.width, r.height, r.score) for r in (arr[i] for i in range(n.value))]
        return self._read(read)

    @property
    def matrix(self):
        """The alignment as 6 floats (m0..m5: x' = m0 x + m1 y + m2, y' = m3 x + m4 y + m5,
        previous-photo pixels to current-photo pixels), or None for a quality-only result."""
        def read(p):
            m = (ctypes.c_double * 6)()
            if self._lib.bcd_detect_result_matrix(p, m) != 0:
                return None
            return tuple(m)
        return self._read(read)

    def get_cells(self, *, as_numpy=None):
        """The change map as Cells(cols, rows, values), values of shape (rows, cols) float32
        (numpy array, or bcd.Array without numpy / with as_numpy=False); None for a
        quality-only or misaligned result."""
        want_numpy(as_numpy)

        def read(p):
            cols, rows = ctypes.c_uint32(), ctypes.c_uint32()
            ptr = self._lib.bcd_detect_result_cells(p, ctypes.byref(cols), ctypes.byref(rows))
            if not ptr:
                return None
            raw = ctypes.string_at(ptr, cols.value * rows.value * 4)
            return Cells(cols.value, rows.value, result(raw, (rows.value, cols.value), "float32", as_numpy))
        return self._read(read)

    @property
    def cells(self):
        """get_cells() with the default array type."""
        return self.get_cells()

    # -- documents --------------------------------------------------------------------
    def to_json(self):
        """The result as the library's JSON text (see bcd_detect_result_json)."""
        def read(p):
            out = ctypes.c_void_p()
            st = self._lib.bcd_detect_result_json(ctypes.byref(out), p)
            if st != 0:
                raise make_error(self._lib, st, None)
            return self._lib.take_string(out.value)
        return self._read(read)

    def to_dict(self):
        """to_json() parsed (NaN values are null there, None here)."""
        return json.loads(self.to_json())

    # -- heatmaps ---------------------------------------------------------------------
    def _context(self, ctx):
        """ctx, else the context of the call that made the result while it is open, else the
        default context (a result does not depend on any context)."""
        if ctx is None and self._ctx is not None and not self._ctx.closed:
            ctx = self._ctx
        return resolve(ctx)

    def render_heatmap(self, current, max_side=0, *, ctx=None, as_numpy=None):
        """The heatmap overlay on the current photo (the same photo given to compare(), as
        an image or a path / bytes), reduced so that its longer side is at most max_side
        (0: the options' heatmap_max_side). Returns an RGB image like bcd.decode().
        InvalidArgumentError for a quality-only result or a photo of another size."""
        want_numpy(as_numpy)
        ctx = self._context(ctx)
        img = _image(current, ctx)
        out = _lib.CImage_p()
        with ctx._lock:
            st = self._read(lambda p: self._lib.bcd_detect_render_heatmap(
                ctypes.byref(out), ctx._handle, p, img.ref, int(max_side)))
            if st != 0:
                raise make_error(self._lib, st, self._lib.bcd_ctx_last_error(ctx._handle))
        return _take_image(self._lib, out, as_numpy)

    def write_heatmap(self, current, path, *, ctx=None):
        """render_heatmap() with the options' heatmap_max_side, written as a PNG file."""
        ctx = self._context(ctx)
        img = _image(current, ctx)
        with ctx._lock:
            st = self._read(lambda p: self._lib.bcd_detect_write_heatmap(
                ctx._handle, p, img.ref, cstr(path, "path")))
            if st != 0:
                raise make_error(self._lib, st, self._lib.bcd_ctx_last_error(ctx._handle))


def compare(current, previous, *, options=None, ctx=None):
    """Compare two photos of the same angle (bcd_detect_compare): align previous onto
    current, match exposure and colour, map the local change.

    current, previous: images (numpy / bcd.Array, RGB) or paths / encoded bytes.
    options: a DetectOptions (or a dict of its fields), None for the defaults.
    Returns a DetectResult (close it, or use `with`). A pair that cannot be aligned is not
    an error: the result is misaligned, local_change NaN. InvalidArgumentError for images
    that are not RGB, under 32 px on a side, or options out of range.
    """
    ctx = resolve(ctx)
    lib = ctx._lib
    fn = lib.need("bcd_detect_compare")
    cur, prev = _image(current, ctx), _image(previous, ctx)
    opts = _options(options)
    out = ctypes.c_void_p()
    ctx._call(fn, ctypes.byref(out), ctx._handle, cur.ref, prev.ref, opts)
    return DetectResult(out.value, lib, ctx, True)


def quality(image, *, options=None, ctx=None):
    """The quality gate of one photo (bcd_detect_quality): blur, clipping, framing.
    Returns a quality-only DetectResult (blurred, clipped, subject_too_small,
    blur_variance, clipped_fraction, subject_fraction)."""
    ctx = resolve(ctx)
    lib = ctx._lib
    fn = lib.need("bcd_detect_quality")
    img = _image(image, ctx)
    opts = _options(options)
    out = ctypes.c_void_p()
    ctx._call(fn, ctypes.byref(out), ctx._handle, img.ref, opts)
    return DetectResult(out.value, lib, ctx, False)


def combine(results):
    """Combine the per-angle results of one session into (change_probability, changed)
    (bcd_detect_combine). results: DetectResult or None (a missing angle) entries.
    StateError ("no_usable_angle") when no entry is a usable comparison (all missing,
    misaligned or quality-only)."""
    lib = _lib.lib()
    fn = lib.need("bcd_detect_combine")
    results = list(results)
    for r in results:
        if r is not None and not isinstance(r, DetectResult):
            raise TypeError("combine() takes DetectResult or None entries, not %s" % type(r).__name__)
    # Hold every result's lock for the call, so that none is freed meanwhile (acquired in
    # one order: by id, each once).
    distinct = sorted({id(r): r for r in results if r is not None}.values(), key=id)
    for r in distinct:
        r._lock.acquire()
    try:
        for r in distinct:
            if r._ptr is None:
                raise closed_error("DetectResult")
        arr = (ctypes.c_void_p * max(1, len(results)))(*[r._ptr if r is not None else None for r in results])
        prob, changed = ctypes.c_double(), ctypes.c_int()
        st = fn(ctypes.byref(prob), ctypes.byref(changed), arr, len(results))
    finally:
        for r in distinct:
            r._lock.release()
    if st == ESTATE:
        raise StateError("no usable angle: every result is missing, misaligned or quality-only", status=st,
                         status_name=lib.bcd_status_name(st).decode(), code="no_usable_angle")
    if st != 0:
        raise make_error(lib, st, None)
    return prob.value, bool(changed.value)


__all__ = ["compare", "quality", "combine", "DetectOptions", "DetectResult", "Region", "Cells", "VALUES",
           "BLURRED", "CLIPPED", "SUBJECT_TOO_SMALL", "MISALIGNED", "PREVIOUS_BLURRED", "PREVIOUS_CLIPPED",
           "PREVIOUS_SUBJECT_TOO_SMALL"]
