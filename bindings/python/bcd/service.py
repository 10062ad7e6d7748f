"""bcd.Service: the session operations of bcd/service.h, returning dicts."""
import ctypes
import json
import weakref

from ._context import Context, closed_error, cstr, default_context
from .errors import EINVAL, EUNSUPPORTED, InvalidArgumentError, UnsupportedError, make_error

#: The six angles, in canonical order.
ANGLES = ("front", "left", "right", "up", "down", "raised")
#: Minimum number of distinct angles to complete or analyze a session.
MIN_ANGLES = 3


class Service:
    """The operations users call, over the store chosen by the context (bcd_service).

    Service(ctx=None, *, user=None)

    - ctx: a bcd.Context; None makes one (reading the environment) that the service owns
      and closes with itself.
    - user: default user id for the operations; each operation also takes user=.

    Every operation returns the library's JSON result as a dict and raises a bcd.Error
    subclass on failure (NotFoundError for a session that is missing or another user's,
    InvalidArgumentError, ConflictError, StateError, FormatError, ...). A service is a
    context manager; close() frees it. Calls on one service are serialized with its context.
    """

    def __init__(self, ctx=None, *, user=None):
        self._owns_ctx = ctx is None
        self._ctx = ctx if ctx is not None else Context()
        self._lib = self._ctx._lib
        self.user = user
        ptr = ctypes.c_void_p()
        try:
            self._ctx._call(self._lib.bcd_service_open, ctypes.byref(ptr), self._ctx._handle)
        except BaseException:
            if self._owns_ctx:
                self._ctx.close()
            raise
        self._ptr = ptr.value
        self._finalizer = weakref.finalize(self, self._lib.bcd_service_free, self._ptr)
        self._ctx._adopt(self)

    @property
    def context(self):
        return self._ctx

    @property
    def closed(self):
        return self._ptr is None

    def close(self):
        """Close the store and free the service (and its context, if it owns it). Idempotent."""
        with self._ctx._lock:
            if self._ptr is not None:
                self._ptr = None
                self._finalizer()
        owned, self._owns_ctx = self._owns_ctx, False
        if owned:
            self._ctx.close()

    def __enter__(self):
        if self._ptr is None:
            raise closed_error("Service")
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "<bcd.Service %s>" % ("closed" if self.closed else "user=%r" % self.user)

    # -- plumbing ---------------------------------------------------------------------
    def _user(self, user):
        u = user if user is not None else self.user
        if u is None:
            raise InvalidArgumentError("a user id is required (user= or Service(user=...))", status=EINVAL,
                                       status_name="invalid_argument", code="invalid_user_id")
        return cstr(u, "user")

    def _op(self, fn, *args):
        """Call fn(&out, svc, *args); return the parsed JSON, freeing the string."""
        out = ctypes.c_void_p()
        with self._ctx._lock:
            if self._ptr is None:
                raise closed_error("Service")
            st = fn(ctypes.byref(out), self._ptr, *args)
            if st != 0:
                self._lib.bcd_free(out.value)  # untouched on failure; NULL is a no-op
                raise make_error(self._lib, st, self._lib.bcd_service_last_error(self._ptr))
        return json.loads(self._lib.take_string(out.value))

    # -- operations -------------------------------------------------------------------
    def create_session(self, *, user=None):
        """New session: {"session_id", "status": "created", "user_id", "created_at"}."""
        return self._op(self._lib.bcd_session_create, self._user(user))

    def add_image(self, session_id, angle, file, *, order_index=None, user=None):
        """Copy an image file into the store and register it (bcd_image_add).
        order_index None: the next index for the angle."""
        return self._op(self._lib.bcd_image_add, self._user(user), cstr(session_id, "session_id"),
                        cstr(angle, "angle"), cstr(file, "file"), -1 if order_index is None else int(order_index))

    def register_image(self, session_id, angle, path, *, order_index=None, user=None):
        """Register an image already in storage, with the seeds' rules (bcd_image_register):
        idempotent per (session, path); ConflictError for a taken slot or an order_index
        out of sequence."""
        return self._op(self._lib.bcd_image_register, self._user(user), cstr(session_id, "session_id"),
                        cstr(angle, "angle"), cstr(path, "path"), -1 if order_index is None else int(order_index))

    def complete_session(self, session_id, *, user=None):
        """Mark a session completed (needs at least 3 distinct angles: StateError otherwise)."""
        return self._op(self._lib.bcd_session_complete, self._user(user), cstr(session_id, "session_id"))

    def analyze(self, session_id, *, model=None, user=None):
        """Analyze a completed session and store the result (bcd_session_analyze).
        model: "builtin", a TorchScript file, or None for the context's BCD_MODEL."""
        return self._op(self._lib.bcd_session_analyze, self._user(user), cstr(session_id, "session_id"),
                        cstr(model, "model"))

    def compare(self, current_session_id, previous_session_id, *, user=None):
        """Compare two analyzed sessions (bcd_session_compare)."""
        return self._op(self._lib.bcd_session_compare, self._user(user),
                        cstr(current_session_id, "current_session_id"),
                        cstr(previous_session_id, "previous_session_id"))

    def session_info(self, session_id, *, user=None):
        """Where a session stands in the user's history (bcd_session_info)."""
        return self._op(self._lib.bcd_session_info, self._user(user), cstr(session_id, "session_id"))

    def get_analysis(self, session_id, *, user=None):
        """The stored analysis, without recomputing; NotFoundError ("analysis_not_found")
        if never analyzed."""
        return self._op(self._lib.bcd_analysis_get, self._user(user), cstr(session_id, "session_id"))

    def list_sessions(self, *, user=None):
        """The user's sessions, oldest first: {"user_id", "count", "sessions": [...]}."""
        return self._op(self._lib.bcd_session_list, self._user(user))

    def image_preview(self, session_id, angle, *, user=None):
        """Where to read the first image of an angle (bcd_image_preview)."""
        return self._op(self._lib.bcd_image_preview, self._user(user), cstr(session_id, "session_id"),
                        cstr(angle, "angle"))

    def session_thumbnails(self, session_id, *, user=None):
        """bcd_image_preview() for every angle in one call (bcd_session_thumbnails)."""
        return self._op(self._lib.bcd_session_thumbnails, self._user(user), cstr(session_id, "session_id"))


    def upload_url(self, session_id, angle, filename, *, user=None):
        """A signed URL to upload one photo straight to storage, then register_image() the
        returned "path" (bcd_image_upload_url). Only the supabase store has them; the local
        store and a libbcd without the function raise UnsupportedError."""
        fn = self._lib.bcd_image_upload_url
        if fn is None:
            raise UnsupportedError("this libbcd (%s) has no bcd_image_upload_url" % self._lib.version,
                                   status=EUNSUPPORTED, status_name="unsupported", code="not_in_library")
        return self._op(fn, self._user(user), cstr(session_id, "session_id"), cstr(angle, "angle"),
                        cstr(filename, "filename"))


def open_store(data_dir=None, *, user=None, env_file=None, load_env=True, library=None, **config):
    """Open a Service over its own Context: open_store("/path/to/data", user="alice").

    data_dir and **config are set explicitly on the new context (see bcd.Context); the
    context is closed with the service. Use as a context manager.
    """
    ctx = Context(env_file, load_env=load_env, library=library, data_dir=data_dir, **config)
    try:
        svc = Service(ctx, user=user)
    except BaseException:
        ctx.close()
        raise
    svc._owns_ctx = True
    return svc


def health(ctx=None):
    """The health document of bcd_health() for the configuration of ctx (None: the default
    context): {"status": "ok" or "down", "ok", "version", "checks": {"store", "model",
    "supabase"}}, each check with its "status" and, when down, its "error". A check that is
    down is reported in the document, not raised; read "ok". UnsupportedError on a libbcd
    without the function."""
    ctx = ctx if ctx is not None else default_context()
    fn = ctx._lib.bcd_health
    if fn is None:
        raise UnsupportedError("this libbcd (%s) has no bcd_health" % ctx._lib.version,
                               status=EUNSUPPORTED, status_name="unsupported", code="not_in_library")
    out = ctypes.c_void_p()
    ctx._call(fn, ctypes.byref(out), ctx._handle)
    return json.loads(ctx._lib.take_string(out.value))
