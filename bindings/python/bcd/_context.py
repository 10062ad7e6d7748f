"""bcd.Context: configuration, limits, logging and error detail (bcd/ctx.h)."""
import ctypes
import json
import os
import threading
import weakref

from . import _lib
from .errors import StateError, ESTATE, InvalidArgumentError, EINVAL, make_error

#: Keyword names accepted by Context(**config) and Context.set(), and the library keys.
CONFIG_KEYS = {
    "store": "BCD_STORE",
    "data_dir": "BCD_DATA_DIR",
    "model": "BCD_MODEL",
    "device": "BCD_DEVICE",
    "threads": "BCD_THREADS",
    "max_pixels": "BCD_MAX_PIXELS",
    "max_dimension": "BCD_MAX_DIMENSION",
    "supabase_url": "SUPABASE_URL",
    "supabase_service_role_key": "SUPABASE_SERVICE_ROLE_KEY",
    "supabase_storage_bucket": "SUPABASE_STORAGE_BUCKET",
    "http_timeout_ms": "BCD_HTTP_TIMEOUT_MS",
    "http_connect_timeout_ms": "BCD_HTTP_CONNECT_TIMEOUT_MS",
    "http_max_response_bytes": "BCD_HTTP_MAX_RESPONSE_BYTES",
    "http_max_request_bytes": "BCD_HTTP_MAX_REQUEST_BYTES",
    "detect": "BCD_DETECT",
    "lesions": "BCD_LESIONS",
    "mm_per_px": "BCD_MM_PER_PX",
    "image_dirs": "BCD_IMAGE_DIRS",
    "job_timeout": "BCD_JOB_TIMEOUT",
}

LOG_LEVELS = ("debug", "info", "warn", "error")


def config_key(name):
    """Library key for a keyword: "data_dir" -> "BCD_DATA_DIR", "supabase_url" ->
    "SUPABASE_URL"; library names ("BCD_DATA_DIR") pass through. Other names become
    BCD_<NAME>, so keys added to the library later work without a new binding; the
    library rejects unknown ones (InvalidArgumentError "unknown_config_key")."""
    if not isinstance(name, str):
        raise TypeError("configuration keys are str, not %s" % type(name).__name__)
    if name in CONFIG_KEYS:
        return CONFIG_KEYS[name]
    upper = name.upper()
    return upper if upper.startswith(("BCD_", "SUPABASE_")) else "BCD_" + upper


def cstr(value, what="argument"):
    """bytes for a const char * argument: str (UTF-8), os.PathLike (file system encoding),
    uuid.UUID and int (their text), or None (NULL). Refuses embedded NUL bytes, which C
    would silently cut the string at."""
    if value is None:
        return None
    if isinstance(value, bytes):
        b = value
    elif isinstance(value, str):
        b = value.encode("utf-8", "surrogateescape")
    elif isinstance(value, os.PathLike):
        b = os.fsencode(value)
    elif isinstance(value, (int,)) and not isinstance(value, bool):
        b = str(value).encode()
    elif type(value).__name__ == "UUID":
        b = str(value).encode()
    else:
        raise TypeError("%s must be str, bytes or os.PathLike, not %s" % (what, type(value).__name__))
    if b"\0" in b:
        raise InvalidArgumentError("%s contains a NUL byte" % what, status=EINVAL,
                                   status_name="invalid_argument", code="embedded_nul")
    return b


def closed_error(what):
    return StateError("operation on a closed %s" % what, status=ESTATE, status_name="precondition_failed",
                      code="handle_closed")


class Context:
    """A libbcd context (bcd_ctx): configuration and the error detail of free-standing calls.

    Context(env_file=None, *, load_env=True, library=None, **config)

    - load_env: read configuration from `env_file` (a .env file; None reads ./.env when it
      exists) and then from the process environment, as bcd-cli does. False: built-in
      defaults only.
    - config: explicit settings, which win over the environment: data_dir, store, model,
      device, threads, max_pixels, max_dimension, supabase_url, supabase_service_role_key,
      supabase_storage_bucket (or the library's names, BCD_DATA_DIR, ...). None is ignored.
    - library: path of libbcd.so to load (see bcd.load_library()).

    A context is a context manager; close() (or leaving the with block) frees it, and first
    closes the services and embedders opened over it. Calls on one context, and on the
    services and embedders made from it, are serialized by a lock (the library wants one
    thread per handle at a time); different contexts work in parallel, with the GIL
    released during the foreign calls.
    """

    def __init__(self, env_file=None, *, load_env=True, library=None, **config):
        self._lib = _lib.load_library(library) if library is not None else _lib.lib()
        self._lock = threading.RLock()
        self._children = weakref.WeakSet()
        self._logger = None
        ptr = ctypes.c_void_p()
        st = self._lib.bcd_ctx_new(ctypes.byref(ptr))
        if st != 0:
            raise make_error(self._lib, st, None)
        self._ptr = ptr.value
        self._finalizer = weakref.finalize(self, self._lib.bcd_ctx_free, self._ptr)
        try:
            if load_env:
                self._call(self._lib.bcd_ctx_load_env, self._ptr,
                           cstr(os.fspath(env_file), "env_file") if env_file is not None else None)
            for k, v in config.items():
                if v is not None:
                    self.set(k, v)
        except BaseException:
            self.close()
            raise

    # -- plumbing ---------------------------------------------------------------------
    @property
    def _handle(self):
        if self._ptr is None:
            raise closed_error("Context")
        return self._ptr

    def _call(self, fn, *args):
        """Run a status-returning function; raise from this context's error detail."""
        with self._lock:
            st = fn(*args)
            if st != 0:
                raise make_error(self._lib, st, self._lib.bcd_ctx_last_error(self._handle))

    def _adopt(self, child):
        self._children.add(child)

    # -- lifetime ---------------------------------------------------------------------
    @property
    def closed(self):
        return self._ptr is None

    def close(self):
        """Close the services and embedders made from this context, then free it. Idempotent."""
        with self._lock:
            for child in list(self._children):
                child.close()
            if self._ptr is not None:
                self._ptr = None
                self._finalizer()  # bcd_ctx_free, wipes secrets

    def __enter__(self):
        self._handle
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "<bcd.Context %s>" % ("closed" if self.closed else "data_dir=%r" % self.get("data_dir"))

    # -- configuration ----------------------------------------------------------------
    def set(self, key, value):
        """Set one value explicitly (wins over environment and .env); None removes it.
        Raises InvalidArgumentError for an unknown key or an invalid value."""
        self._call(self._lib.bcd_ctx_set, self._handle, cstr(config_key(key), "key"),
                   cstr(value if not isinstance(value, os.PathLike) else os.fspath(value), key))

    def get(self, key):
        """Effective value of a key (None if unset); secrets read as "<set>"."""
        with self._lock:
            v = self._lib.bcd_ctx_get(self._handle, cstr(config_key(key), "key"))
            return v.decode("utf-8", "surrogateescape") if v is not None else None

    def config(self):
        """The effective configuration as a dict keyed by library names, secrets redacted."""
        out = ctypes.c_void_p()
        self._call(self._lib.bcd_ctx_config_json, ctypes.byref(out), self._handle)
        return json.loads(self._lib.take_string(out.value))

    def load_env(self, env_file=None):
        """Read a .env file (None: ./.env if it exists) and the environment again."""
        self._call(self._lib.bcd_ctx_load_env, self._handle,
                   cstr(os.fspath(env_file), "env_file") if env_file is not None else None)

    def set_logger(self, fn):
        """Install fn(level, message) as the library's logging callback; None removes it.

        level is "debug", "info", "warn" or "error". fn runs in the thread that made the
        call into the library, with the GIL held; exceptions it raises are ignored.
        """
        with self._lock:
            if fn is None:
                self._lib.bcd_ctx_set_logger(self._handle, _lib.LOG_FN(), None)
                self._logger = None
                return

            def trampoline(_user, level, message):
                try:
                    name = LOG_LEVELS[level] if 0 <= level < len(LOG_LEVELS) else str(level)
                    fn(name, message.decode("utf-8", "replace") if message else "")
                except BaseException:  # noqa: B902 - never propagate into C
                    pass

            cb = _lib.LOG_FN(trampoline)
            self._lib.bcd_ctx_set_logger(self._handle, cb, None)
            self._logger = cb  # kept alive as long as the library may call it


_default = None
_default_lock = threading.Lock()


def default_context():
    """The context used by free functions called without ctx= (created on first use,
    reading the environment)."""
    global _default
    with _default_lock:
        if _default is None or _default.closed:
            _default = Context()
        return _default


def resolve(ctx):
    return ctx if ctx is not None else default_context()
