"""libbcd for Python: longitudinal body-photo change detection, over ctypes.

    import bcd

    with bcd.open_store("/tmp/bcd-data", user="alice") as svc:
        sid = svc.create_session()["session_id"]
        for angle in bcd.ANGLES:
            svc.add_image(sid, angle, f"examples/data/check1/{angle}.jpg")
        svc.complete_session(sid)
        print(svc.analyze(sid)["data"]["scores"])

The shared library is found through bcd.load_library(path), the BCD_LIBRARY environment
variable, or the system loader; its major version must match this binding's.
Failures raise bcd.Error subclasses with .status, .code, .message, .details and
.correlation_id. Token verification: bcd.Verifier / bcd.verify_token. Change detection
between two photos: bcd.detect (compare, quality, combine). Asynchronous analysis, jobs,
the worker, history and reports: methods of bcd.Service.
"""
from ._lib import BINDING_VERSION_NUMBER, TENSOR_LEN, INPUT_SIZE, __version__, load_library
from ._array import Array, HAVE_NUMPY
from ._context import CONFIG_KEYS, Context, default_context
from .service import ANGLES, MIN_ANGLES, ProgressEvent, Service, health, open_store
from .image import TENSOR_SHAPE, crop_resize, decode, equalize, preprocess, strip_metadata, to_tensor, write_png
from .embed import Embedder
from .auth import Verifier, verify_token
from . import detect
from .detect import DetectOptions, DetectResult
from .analysis import TREND_MILD, TREND_SIGNIFICANT, cosine_distance, trend_label, vector_from_json, vector_mean
from .errors import (
    AuthError, ConflictError, DomainError, Error, FormatError, InputOutputError, InternalError,
    InvalidArgumentError, LibraryError, LimitError, NetworkError, NotFoundError, OutOfMemoryError,
    StateError, UnsupportedError, error_class,
)
from . import errors as status  # status.ENOTFOUND, ... (bcd_status values)


def library_version():
    """Version text of the loaded libbcd, e.g. "0.1.0" (loads the library)."""
    return load_library().version


def library_version_number():
    """bcd_version_number() of the loaded libbcd (major * 10000 + minor * 100 + patch)."""
    return load_library().version_number


def strerror(status_value):
    """Static text for a bcd_status value."""
    return load_library().bcd_strerror(int(status_value)).decode()


__all__ = [
    "__version__", "BINDING_VERSION_NUMBER", "load_library", "library_version", "library_version_number",
    "strerror", "Context", "default_context", "CONFIG_KEYS", "Service", "open_store", "health", "ANGLES", "MIN_ANGLES",
    "ProgressEvent", "detect", "DetectOptions", "DetectResult",
    "decode", "strip_metadata", "preprocess", "equalize", "crop_resize", "to_tensor", "write_png", "TENSOR_LEN",
    "TENSOR_SHAPE",
    "INPUT_SIZE", "Embedder", "cosine_distance", "vector_mean", "trend_label", "vector_from_json",
    "TREND_MILD", "TREND_SIGNIFICANT", "Verifier", "verify_token", "Array", "HAVE_NUMPY", "status", "error_class",
    "Error", "LibraryError", "InternalError", "InvalidArgumentError", "OutOfMemoryError", "InputOutputError",
    "FormatError", "LimitError", "NotFoundError", "ConflictError", "StateError", "UnsupportedError",
    "AuthError", "NetworkError", "DomainError",
]
