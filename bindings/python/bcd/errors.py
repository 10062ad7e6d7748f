"""Exceptions raised by the binding.

Every failed libbcd call raises an Error subclass chosen by its status (the value callers
branch on in C); the attributes carry the detail the library recorded on the handle that
failed.
"""
import json

# bcd_status values of bcd/common.h (appended only, never renumbered).
OK = 0
ERROR = -1
EINVAL = -2
ENOMEM = -3
EIO = -4
EFORMAT = -5
ELIMIT = -6
ENOTFOUND = -7
ECONFLICT = -8
ESTATE = -9
EUNSUPPORTED = -10
EAUTH = -11
ENET = -12
EDOMAIN = -13


class LibraryError(ImportError):
    """libbcd.so could not be found or loaded, or its version does not match the binding."""


class Error(Exception):
    """A libbcd call failed.

    Attributes:
        status          the bcd_status value (negative int), e.g. -7
        status_name     its stable name, e.g. "not_found"
        code            the finer stable string code, e.g. "session_not_found"
        message         human-readable text (never contains a secret)
        details         dict with structured detail ({} when there is none)
        correlation_id  id sent to the server with the failing request, or None
    """

    def __init__(self, message, *, status=ERROR, status_name="internal_error", code="internal_error",
                 details=None, correlation_id=None):
        super().__init__(message)
        self.status = status
        self.status_name = status_name
        self.code = code
        self.message = message
        self.details = details if details is not None else {}
        self.correlation_id = correlation_id

    def __str__(self):
        return "%s: %s" % (self.code, self.message)

    def __repr__(self):
        return "%s(code=%r, message=%r, status=%d)" % (type(self).__name__, self.code, self.message, self.status)

    def to_dict(self):
        """The seeds' error envelope: {"error": {code, message, details, correlation_id}}."""
        return {"error": {"code": self.code, "message": self.message,
                          "details": self.details or None, "correlation_id": self.correlation_id}}


class InternalError(Error):
    """BCD_ERROR: internal or unexpected failure (also embedder backend failures)."""


class InvalidArgumentError(Error, ValueError):
    """BCD_EINVAL: invalid argument or input (bad angle, malformed id, bad config value)."""


class OutOfMemoryError(Error, MemoryError):
    """BCD_ENOMEM."""


class InputOutputError(Error):
    """BCD_EIO: file system or database I/O failure."""


class FormatError(Error):
    """BCD_EFORMAT: corrupt, truncated or unsupported data (not a JPEG/PNG, bad .env line)."""


class LimitError(Error):
    """BCD_ELIMIT: input exceeds a configured limit (image size)."""


class NotFoundError(Error, LookupError):
    """BCD_ENOTFOUND: no such session, image, analysis or file (or not the caller's)."""


class ConflictError(Error):
    """BCD_ECONFLICT: conflicts with stored state (slot taken, order out of sequence)."""


class StateError(Error):
    """BCD_ESTATE: a precondition does not hold (session not completed, too few angles)."""


class UnsupportedError(Error):
    """BCD_EUNSUPPORTED: not available in this build (libtorch model, supabase store)."""


class AuthError(Error):
    """BCD_EAUTH: token or key rejected."""


class NetworkError(Error):
    """BCD_ENET: network failure or server error."""


class DomainError(Error, ArithmeticError):
    """BCD_EDOMAIN: mathematically undefined (zero vector, NaN or infinity)."""


_BY_STATUS = {
    ERROR: InternalError, EINVAL: InvalidArgumentError, ENOMEM: OutOfMemoryError,
    EIO: InputOutputError, EFORMAT: FormatError, ELIMIT: LimitError, ENOTFOUND: NotFoundError,
    ECONFLICT: ConflictError, ESTATE: StateError, EUNSUPPORTED: UnsupportedError,
    EAUTH: AuthError, ENET: NetworkError, EDOMAIN: DomainError,
}


def error_class(status):
    """The Error subclass raised for a bcd_status value (Error for unknown values)."""
    return _BY_STATUS.get(status, Error)


def make_error(lib, status, err_ptr):
    """Build the exception for status from a borrowed bcd_error pointer (may be NULL).

    Must be called before the handle that owns err_ptr is used again.
    """
    name = lib.bcd_status_name(status).decode()
    if err_ptr and lib.bcd_error_status(err_ptr) == status:
        code = lib.bcd_error_code(err_ptr).decode("utf-8", "replace")
        message = lib.bcd_error_message(err_ptr).decode("utf-8", "replace")
        raw = lib.bcd_error_details_json(err_ptr)
        corr = lib.bcd_error_correlation_id(err_ptr)
        details = {}
        if raw:
            try:
                parsed = json.loads(raw.decode("utf-8", "replace"))
                details = parsed if isinstance(parsed, dict) else {"value": parsed}
            except ValueError:
                details = {"raw": raw.decode("utf-8", "replace")}
        corr = corr.decode() if corr else None
    else:
        code, message, details, corr = name, lib.bcd_strerror(status).decode(), {}, None
    return error_class(status)(message, status=status, status_name=name, code=code,
                               details=details, correlation_id=corr)
