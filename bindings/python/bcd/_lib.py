"""Finding, loading and describing libbcd.so for ctypes.

The shared library is loaded once per process, on first use or by an explicit
load_library() call. Every foreign function gets its argtypes and restype here; strings
that the caller must free come back as c_void_p (never c_char_p, which would copy the text
and lose the pointer) and are released with bcd_free().

ctypes.CDLL releases the GIL around every foreign call, so long operations (analyze,
embed, decode) let other Python threads run. Do not switch to PyDLL.
"""
import ctypes
import ctypes.util
import os
import threading

from .errors import EUNSUPPORTED, LibraryError, UnsupportedError

#: Version of this binding; it needs a libbcd of the same major version, at least this one.
__version__ = "0.1.0"
_VMAJOR, _VMINOR, _VPATCH = (int(p) for p in __version__.split("."))
#: major * 10000 + minor * 100 + patch, comparable with bcd_version_number().
BINDING_VERSION_NUMBER = _VMAJOR * 10000 + _VMINOR * 100 + _VPATCH

c_void_p = ctypes.c_void_p
c_char_p = ctypes.c_char_p
c_int = ctypes.c_int
c_uint = ctypes.c_uint
c_size_t = ctypes.c_size_t
c_double = ctypes.c_double
c_float_p = ctypes.POINTER(ctypes.c_float)
OUT_PTR = ctypes.POINTER(c_void_p)

TENSOR_LEN = 3 * 224 * 224
INPUT_SIZE = 224


class CImage(ctypes.Structure):
    """struct bcd_image of bcd/image.h."""
    _fields_ = [("width", ctypes.c_uint32), ("height", ctypes.c_uint32),
                ("channels", ctypes.c_uint32), ("data", ctypes.POINTER(ctypes.c_uint8))]


CImage_p = ctypes.POINTER(CImage)
LOG_FN = ctypes.CFUNCTYPE(None, c_void_p, c_int, c_char_p)

# name: (restype, argtypes). A status-returning function has restype c_int.
_PROTOTYPES = {
    # common.h
    "bcd_strerror": (c_char_p, [c_int]),
    "bcd_status_name": (c_char_p, [c_int]),
    "bcd_free": (None, [c_void_p]),
    "bcd_version": (c_char_p, []),
    "bcd_version_number": (c_int, []),
    # ctx.h
    "bcd_ctx_new": (c_int, [OUT_PTR]),
    "bcd_ctx_free": (None, [c_void_p]),
    "bcd_ctx_load_env": (c_int, [c_void_p, c_char_p]),
    "bcd_ctx_set": (c_int, [c_void_p, c_char_p, c_char_p]),
    "bcd_ctx_get": (c_char_p, [c_void_p, c_char_p]),          # borrowed
    "bcd_ctx_config_json": (c_int, [OUT_PTR, c_void_p]),      # *out: bcd_free
    "bcd_ctx_set_logger": (None, [c_void_p, LOG_FN, c_void_p]),
    "bcd_ctx_last_error": (c_void_p, [c_void_p]),
    "bcd_error_status": (c_int, [c_void_p]),
    "bcd_error_code": (c_char_p, [c_void_p]),                 # borrowed
    "bcd_error_message": (c_char_p, [c_void_p]),
    "bcd_error_details_json": (c_char_p, [c_void_p]),
    "bcd_error_correlation_id": (c_char_p, [c_void_p]),
    "bcd_error_json": (c_int, [OUT_PTR, c_void_p]),           # *out: bcd_free
    # image.h
    "bcd_image_decode": (c_int, [ctypes.POINTER(CImage_p), c_void_p, c_void_p, c_size_t]),
    "bcd_image_decode_file": (c_int, [ctypes.POINTER(CImage_p), c_void_p, c_char_p]),
    "bcd_image_free": (None, [CImage_p]),
    "bcd_image_equalize": (c_int, [ctypes.POINTER(CImage_p), CImage_p]),
    "bcd_image_crop_resize": (c_int, [ctypes.POINTER(CImage_p), CImage_p, ctypes.c_uint32]),
    "bcd_image_to_tensor": (c_int, [c_void_p, c_size_t, CImage_p]),
    "bcd_image_preprocess": (c_int, [c_void_p, c_size_t, CImage_p]),
    "bcd_image_write_png": (c_int, [c_void_p, CImage_p, c_char_p]),
    # embed.h
    "bcd_embedder_open": (c_int, [OUT_PTR, c_void_p, c_char_p]),
    "bcd_embedder_free": (None, [c_void_p]),
    "bcd_embedder_dim": (c_size_t, [c_void_p]),
    "bcd_embedder_name": (c_char_p, [c_void_p]),
    "bcd_embedder_embed": (c_int, [c_void_p, c_void_p, c_void_p, c_size_t]),
    "bcd_embedder_map_shape": (c_int, [c_void_p, c_void_p, c_void_p, c_void_p]),
    "bcd_embedder_embed_maps": (c_int, [c_void_p, c_void_p, c_void_p, c_void_p, c_size_t]),
    # analysis.h
    "bcd_vector_cosine_distance": (c_int, [ctypes.POINTER(c_double), c_void_p, c_void_p, c_size_t,
                                           c_void_p, c_size_t]),
    "bcd_vector_mean": (c_int, [c_void_p, c_void_p, c_void_p, c_size_t, c_size_t]),
    "bcd_trend_label": (c_char_p, [c_double]),
    "bcd_vector_from_json": (c_int, [OUT_PTR, ctypes.POINTER(c_size_t), c_void_p, c_char_p]),
    # service.h (every *out: bcd_free)
    "bcd_service_open": (c_int, [OUT_PTR, c_void_p]),
    "bcd_service_free": (None, [c_void_p]),
    "bcd_service_last_error": (c_void_p, [c_void_p]),
    "bcd_session_create": (c_int, [OUT_PTR, c_void_p, c_char_p]),
    "bcd_session_complete": (c_int, [OUT_PTR, c_void_p, c_char_p, c_char_p]),
    "bcd_session_list": (c_int, [OUT_PTR, c_void_p, c_char_p]),
    "bcd_session_info": (c_int, [OUT_PTR, c_void_p, c_char_p, c_char_p]),
    "bcd_image_register": (c_int, [OUT_PTR, c_void_p, c_char_p, c_char_p, c_char_p, c_char_p, c_int]),
    "bcd_image_add": (c_int, [OUT_PTR, c_void_p, c_char_p, c_char_p, c_char_p, c_char_p, c_int]),
    "bcd_image_delete": (c_int, [OUT_PTR, c_void_p, c_char_p, c_char_p, c_char_p, c_int]),
    "bcd_session_delete": (c_int, [OUT_PTR, c_void_p, c_char_p, c_char_p]),
    "bcd_user_delete": (c_int, [OUT_PTR, c_void_p, c_char_p]),
    "bcd_session_analyze": (c_int, [OUT_PTR, c_void_p, c_char_p, c_char_p, c_char_p]),
    "bcd_analysis_get": (c_int, [OUT_PTR, c_void_p, c_char_p, c_char_p]),
    "bcd_lesions_get": (c_int, [OUT_PTR, c_void_p, c_char_p, c_char_p]),
    "bcd_session_compare": (c_int, [OUT_PTR, c_void_p, c_char_p, c_char_p, c_char_p]),
    "bcd_image_preview": (c_int, [OUT_PTR, c_void_p, c_char_p, c_char_p, c_char_p]),
    "bcd_session_thumbnails": (c_int, [OUT_PTR, c_void_p, c_char_p, c_char_p]),
}

# Functions of later minor versions: None on a library that lacks them (the binding then
# raises UnsupportedError when they are called).
class AuthOptions(ctypes.Structure):
    """struct bcd_auth_options of bcd/auth.h (BCD_AUTH_OPTIONS_VERSION 1)."""
    _fields_ = [("version", c_uint), ("supabase_url", c_char_p), ("issuer", c_char_p),
                ("audience", c_char_p), ("leeway_s", c_int), ("jwks_ttl_s", c_uint),
                ("refresh_interval_s", c_uint), ("flags", c_uint),
                ("now", ctypes.CFUNCTYPE(ctypes.c_int64, c_void_p)), ("now_user", c_void_p)]


AUTH_NOW_FN = AuthOptions._fields_[8][1]
AUTH_OPTIONS_VERSION = 1
AUTH_SIGNATURE_ONLY = 0x1

class DetectOptionsStruct(ctypes.Structure):
    """struct bcd_detect_options of bcd/detect.h (BCD_DETECT_OPTIONS_VERSION 1)."""
    _fields_ = [("version", c_uint), ("work_size", c_uint), ("grid", c_uint), ("heatmap_max_side", c_uint),
                ("blur_threshold", c_double), ("clip_threshold", c_double), ("subject_threshold", c_double),
                ("min_alignment_score", c_double), ("min_overlap", c_double)]


class DetectRegion(ctypes.Structure):
    """struct bcd_detect_region of bcd/detect.h."""
    _fields_ = [("x", ctypes.c_uint32), ("y", ctypes.c_uint32), ("width", ctypes.c_uint32),
                ("height", ctypes.c_uint32), ("score", c_double)]


DETECT_OPTIONS_VERSION = 1


class CompareOptions(ctypes.Structure):
    """struct bcd_compare_options of bcd/service.h (BCD_COMPARE_OPTIONS_VERSION 1)."""
    _fields_ = [("version", c_uint), ("heatmap_dir", c_char_p)]


COMPARE_OPTIONS_VERSION = 1


class ProgressEvent(ctypes.Structure):
    """struct bcd_progress_event of bcd/service.h (BCD_PROGRESS_EVENT_VERSION 1)."""
    _fields_ = [("version", c_uint), ("stage", c_char_p), ("done", c_size_t), ("total", c_size_t),
                ("elapsed_s", c_double), ("session_id", c_char_p), ("job_id", c_char_p), ("worker", c_int),
                ("jobs_done", c_size_t), ("jobs_failed", c_size_t), ("message", c_char_p)]


PROGRESS_FN = ctypes.CFUNCTYPE(None, c_void_p, ctypes.POINTER(ProgressEvent))


class WorkerOptions(ctypes.Structure):
    """struct bcd_worker_options of bcd/service.h (BCD_WORKER_OPTIONS_VERSION 1)."""
    _fields_ = [("version", c_uint), ("concurrency", c_uint), ("drain", c_int), ("lease_seconds", c_uint),
                ("heartbeat_seconds", c_uint), ("stop", ctypes.POINTER(c_int)), ("progress", PROGRESS_FN),
                ("progress_user", c_void_p), ("max_jobs", c_uint), ("poll_ms", c_uint),
                ("retry_base_ms", c_uint)]


WORKER_OPTIONS_VERSION = 1


class ReportOptions(ctypes.Structure):
    """struct bcd_report_options of bcd/report.h (BCD_REPORT_OPTIONS_VERSION 1)."""
    _fields_ = [("version", c_uint), ("flags", c_uint), ("thumbnail_size", c_uint)]


REPORT_OPTIONS_VERSION = 1
REPORT_NO_PHOTOS = 0x01
REPORT_NO_HEATMAPS = 0x02

_OPTIONAL_PROTOTYPES = {
    "bcd_image_upload_url": (c_int, [OUT_PTR, c_void_p, c_char_p, c_char_p, c_char_p, c_char_p]),  # @since 0.2
    "bcd_health": (c_int, [OUT_PTR, c_void_p]),
    "bcd_image_strip_metadata": (c_int, [OUT_PTR, ctypes.POINTER(c_size_t), c_void_p, c_void_p, c_size_t]),                            # @since 0.2, *out: bcd_free
    # auth.h
    "bcd_auth_options_init": (c_int, [ctypes.POINTER(AuthOptions), c_uint]),
    "bcd_auth_verifier_new": (c_int, [OUT_PTR, c_void_p, ctypes.POINTER(AuthOptions)]),
    "bcd_auth_verifier_free": (None, [c_void_p]),
    "bcd_auth_verifier_set_jwks_json": (c_int, [c_void_p, c_char_p]),
    "bcd_auth_verifier_load_jwks_file": (c_int, [c_void_p, c_char_p]),
    "bcd_auth_verify": (c_int, [OUT_PTR, c_void_p, c_char_p]),             # *out: bcd_free
    "bcd_auth_verifier_last_error": (c_void_p, [c_void_p]),
    # detect.h (@since 0.2)
    "bcd_detect_options_init": (c_int, [ctypes.POINTER(DetectOptionsStruct), c_uint]),
    "bcd_detect_compare": (c_int, [OUT_PTR, c_void_p, CImage_p, CImage_p, ctypes.POINTER(DetectOptionsStruct)]),
    "bcd_detect_quality": (c_int, [OUT_PTR, c_void_p, CImage_p, ctypes.POINTER(DetectOptionsStruct)]),
    "bcd_detect_result_free": (None, [c_void_p]),
    "bcd_detect_result_flags": (c_uint, [c_void_p]),
    "bcd_detect_result_value": (c_double, [c_void_p, c_int]),
    "bcd_detect_result_regions": (ctypes.POINTER(DetectRegion), [c_void_p, ctypes.POINTER(c_size_t)]),  # borrowed
    "bcd_detect_result_matrix": (c_int, [c_void_p, ctypes.POINTER(c_double)]),
    "bcd_detect_result_cells": (c_float_p, [c_void_p, ctypes.POINTER(ctypes.c_uint32),
                                            ctypes.POINTER(ctypes.c_uint32)]),       # borrowed
    "bcd_detect_result_json": (c_int, [OUT_PTR, c_void_p]),                     # *out: bcd_free
    "bcd_detect_render_heatmap": (c_int, [ctypes.POINTER(CImage_p), c_void_p, c_void_p, CImage_p, c_uint]),
    "bcd_detect_write_heatmap": (c_int, [c_void_p, c_void_p, CImage_p, c_char_p]),
    "bcd_detect_combine": (c_int, [ctypes.POINTER(c_double), ctypes.POINTER(c_int), ctypes.POINTER(c_void_p),
                                   c_size_t]),
    # service.h (@since 0.2; every *out: bcd_free)
    "bcd_session_compare_ex": (c_int, [OUT_PTR, c_void_p, c_char_p, c_char_p, c_char_p,
                                       ctypes.POINTER(CompareOptions)]),
    "bcd_service_set_progress": (c_int, [c_void_p, PROGRESS_FN, c_void_p]),
    "bcd_session_analyze_async": (c_int, [OUT_PTR, c_void_p, c_char_p, c_char_p, c_char_p]),
    "bcd_job_status": (c_int, [OUT_PTR, c_void_p, c_char_p, c_char_p]),
    "bcd_job_status_for_session": (c_int, [OUT_PTR, c_void_p, c_char_p, c_char_p]),
    "bcd_worker_options_init": (c_int, [ctypes.POINTER(WorkerOptions), c_uint]),
    "bcd_worker_run": (c_int, [OUT_PTR, c_void_p, ctypes.POINTER(WorkerOptions)]),
    # report.h (@since 0.2)
    "bcd_report_options_init": (c_int, [ctypes.POINTER(ReportOptions), c_uint]),
    "bcd_history": (c_int, [OUT_PTR, c_void_p, c_char_p]),
    "bcd_report": (c_int, [OUT_PTR, c_void_p, c_char_p, c_char_p]),
    "bcd_report_html": (c_int, [c_void_p, c_char_p, c_char_p, c_char_p]),
    "bcd_report_html_ext": (c_int, [c_void_p, c_char_p, c_char_p, c_char_p, ctypes.POINTER(ReportOptions)]),
}


class Library:
    """A loaded libbcd with typed foreign functions as attributes (lib.bcd_ctx_new, ...)."""

    def __init__(self, path):
        try:
            self.cdll = ctypes.CDLL(path)
        except OSError as e:
            raise LibraryError("cannot load libbcd from %r: %s" % (path, e)) from None
        self.path = path
        try:
            number = self.cdll.bcd_version_number
        except AttributeError:
            raise LibraryError("%r is not libbcd (no bcd_version_number)" % path) from None
        number.restype, number.argtypes = c_int, []
        self.version_number = number()
        if self.version_number // 10000 != _VMAJOR or self.version_number < BINDING_VERSION_NUMBER:
            raise LibraryError(
                "libbcd %s at %r does not match the Python binding %s: the library must have "
                "major version %d and be at least %s"
                % (_version_text(self.version_number), path, __version__, _VMAJOR, __version__))
        missing = []
        for name, (restype, argtypes) in _PROTOTYPES.items():
            try:
                fn = getattr(self.cdll, name)
            except AttributeError:
                missing.append(name)
                continue
            fn.restype, fn.argtypes = restype, argtypes
            setattr(self, name, fn)
        if missing:
            raise LibraryError("libbcd at %r lacks %s" % (path, ", ".join(missing)))
        for name, (restype, argtypes) in _OPTIONAL_PROTOTYPES.items():
            fn = getattr(self.cdll, name, None)
            if fn is not None:
                fn.restype, fn.argtypes = restype, argtypes
            setattr(self, name, fn)
        self.version = self.bcd_version().decode()

    def need(self, name):
        """The foreign function `name`, or UnsupportedError when this libbcd lacks it."""
        fn = getattr(self, name, None)
        if fn is None:
            raise UnsupportedError("this libbcd (%s) has no %s" % (self.version, name), status=EUNSUPPORTED,
                                   status_name="unsupported", code="not_in_library")
        return fn

    def take_string(self, ptr):
        """Text of a library-allocated string, which is then freed with bcd_free()."""
        if not ptr:
            return None
        try:
            return ctypes.string_at(ptr).decode("utf-8")
        finally:
            self.bcd_free(ptr)


def _version_text(n):
    return "%d.%d.%d" % (n // 10000, n // 100 % 100, n % 100)


_lock = threading.Lock()
_loaded = None


def _candidates():
    env = os.environ.get("BCD_LIBRARY")
    if env:
        return [env]
    names = []
    found = ctypes.util.find_library("bcd")
    if found:
        names.append(found)
    names.append("libbcd.so.%d" % _VMAJOR)
    return names


def load_library(path=None):
    """Load libbcd and return it; later calls return the same library.

    Where from, first match wins: `path`; the environment variable BCD_LIBRARY; the
    system loader (ctypes.util.find_library("bcd"), then "libbcd.so.0" through the
    dynamic linker's search path, LD_LIBRARY_PATH included).
    Raises bcd.LibraryError (an ImportError) when no usable library is found or its
    version does not match this binding.
    """
    global _loaded
    with _lock:
        if _loaded is not None:
            if path is not None and os.path.realpath(path) != os.path.realpath(_loaded.path):
                raise LibraryError("libbcd is already loaded from %r" % _loaded.path)
            return _loaded
        tried = [os.fspath(path)] if path is not None else _candidates()
        errors = []
        for cand in tried:
            try:
                _loaded = Library(cand)
                return _loaded
            except LibraryError as e:
                errors.append(str(e))
                if path is not None or os.environ.get("BCD_LIBRARY"):
                    break
        raise LibraryError("libbcd not found or unusable (set BCD_LIBRARY to the path of "
                           "libbcd.so, or install libbcd): " + "; ".join(errors))


def lib():
    """The loaded library (loading it on first use)."""
    return _loaded if _loaded is not None else load_library()
