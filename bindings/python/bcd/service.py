"""bcd.Service: the session operations of bcd/service.h, returning dicts."""
import collections
import ctypes
import json
import os
import threading
import weakref

from . import _lib
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
        self._progress = None
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

    def _status(self, fn, *args):
        """Call fn(svc, *args) for a status only."""
        with self._ctx._lock:
            if self._ptr is None:
                raise closed_error("Service")
            st = fn(self._ptr, *args)
            if st != 0:
                raise make_error(self._lib, st, self._lib.bcd_service_last_error(self._ptr))

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

    def delete_image(self, session_id, angle, *, order_index=None, user=None):
        """Delete one photo of a check with the check's analysis and the stored files made
        from it (bcd_image_delete). order_index None: the last photo of the angle; later
        photos of the angle move up one place. NotFoundError if there is none."""
        return self._op(self._lib.bcd_image_delete, self._user(user), cstr(session_id, "session_id"),
                        cstr(angle, "angle"), -1 if order_index is None else int(order_index))

    def delete_session(self, session_id, *, user=None):
        """Delete a check with its photos, analysis, embeddings, jobs and every stored file
        (bcd_session_delete)."""
        return self._op(self._lib.bcd_session_delete, self._user(user), cstr(session_id, "session_id"))

    def delete_user(self, *, user=None):
        """Delete every check and photo of the user (bcd_user_delete); other users' data is
        untouched."""
        return self._op(self._lib.bcd_user_delete, self._user(user))

    def complete_session(self, session_id, *, user=None):
        """Mark a session completed (needs at least 3 distinct angles: StateError otherwise)."""
        return self._op(self._lib.bcd_session_complete, self._user(user), cstr(session_id, "session_id"))

    def analyze(self, session_id, *, model=None, user=None):
        """Analyze a completed session and store the result (bcd_session_analyze).
        model: "builtin", a TorchScript file, or None for the context's BCD_MODEL."""
        return self._op(self._lib.bcd_session_analyze, self._user(user), cstr(session_id, "session_id"),
                        cstr(model, "model"))

    def compare(self, current_session_id, previous_session_id, *, heatmap_dir=None, user=None):
        """Compare two analyzed sessions (bcd_session_compare).

        heatmap_dir: also write each aligned angle's heatmap overlay as
        <heatmap_dir>/<angle>.png (the folder is created; bcd_session_compare_ex): the
        overlays stored with the analysis when its detection is reused ("detection":
        "stored"), else those of the comparison made now ("computed"); each per_angle
        item's "heatmap" is then the path written."""
        cur, prev = cstr(current_session_id, "current_session_id"), cstr(previous_session_id, "previous_session_id")
        if heatmap_dir is None:
            return self._op(self._lib.bcd_session_compare, self._user(user), cur, prev)
        fn = self._lib.need("bcd_session_compare_ex")
        opts = _lib.CompareOptions(version=_lib.COMPARE_OPTIONS_VERSION,
                                   heatmap_dir=cstr(os.fspath(heatmap_dir), "heatmap_dir"))
        return self._op(fn, self._user(user), cur, prev, ctypes.byref(opts))

    def session_info(self, session_id, *, user=None):
        """Where a session stands in the user's history (bcd_session_info)."""
        return self._op(self._lib.bcd_session_info, self._user(user), cstr(session_id, "session_id"))

    def get_analysis(self, session_id, *, user=None):
        """The stored analysis, without recomputing; NotFoundError ("analysis_not_found")
        if never analyzed."""
        return self._op(self._lib.bcd_analysis_get, self._user(user), cstr(session_id, "session_id"))

    def get_lesions(self, session_id, *, user=None):
        """The lesions of an analyzed check against the previous one (bcd_lesions_get):
        {"session_id", "previous_session_id", "angles": [{"angle_type", "status",
        "reason", "changed", "lesions": [{"id", "state", "center", "previous_center",
        "diameter_px", "diameter_mm", "changed", "score", "change", ...}]}]}.
        NotFoundError ("analysis_not_found") if never analyzed."""
        return self._op(self._lib.bcd_lesions_get, self._user(user), cstr(session_id, "session_id"))

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

    # -- progress, asynchronous analysis, jobs, the worker (bcd/service.h, @since 0.2) ----
    def set_progress(self, fn):
        """Report the progress of long operations on this service (analyze, history,
        report, report_html) to fn(event), an event a ProgressEvent named tuple; None
        removes it (bcd_service_set_progress). fn runs in the thread of the operation, with
        the GIL held; it must not call into this service; exceptions it raises are ignored."""
        set_fn = self._lib.need("bcd_service_set_progress")
        cb = _progress_callback(fn) if fn is not None else None
        with self._ctx._lock:
            if self._ptr is None:
                raise closed_error("Service")
            st = set_fn(self._ptr, cb if cb is not None else _lib.PROGRESS_FN(), None)
            if st != 0:
                raise make_error(self._lib, st, None)
            self._progress = cb  # kept alive while the library may call it

    def analyze_async(self, session_id, *, model=None, user=None):
        """Queue the analysis of a completed session and return at once
        (bcd_session_analyze_async): {"status": "processing", "job_id", "session_id",
        "job_status": "queued" | "running", "created", "created_at"}. Idempotent while a
        job of the session is queued or running. A worker (run_worker(), `bcd-cli worker`)
        runs it."""
        return self._op(self._lib.need("bcd_session_analyze_async"), self._user(user),
                        cstr(session_id, "session_id"), cstr(model, "model"))

    def job_status(self, job_id, *, user=None):
        """Status of one of the user's analysis jobs (bcd_job_status): {"job_id", "session_id",
        "status": "queued" | "running" | "done" | "failed", "attempts", "error", ...}.
        NotFoundError ("job_not_found") for a missing job or another user's."""
        return self._op(self._lib.need("bcd_job_status"), self._user(user), cstr(job_id, "job_id"))

    def job_status_for_session(self, session_id, *, user=None):
        """job_status() of the newest job of a session (bcd_job_status_for_session)."""
        return self._op(self._lib.need("bcd_job_status_for_session"), self._user(user),
                        cstr(session_id, "session_id"))

    def run_worker(self, *, concurrency=1, drain=False, lease_seconds=0, heartbeat_seconds=0, stop=None,
                   progress=None, max_jobs=0, poll_ms=0, retry_base_ms=0):
        """Run queued analysis jobs from this service's store (bcd_worker_run); returns the
        summary {"jobs_done", "jobs_failed", "jobs_retried", "leases_lost", "elapsed_s",
        "stopped", "concurrency"}.

        - concurrency: jobs run at once (threads with their own handles; 1: in this thread)
        - drain: return once no job is queued or running; else wait for jobs until stopped
        - lease_seconds, heartbeat_seconds, poll_ms, retry_base_ms: 0 for the defaults
          (60 s, a third of the lease, 1000 ms, 5000 ms)
        - max_jobs: return after this many jobs were claimed (0: no limit)
        - stop: an object with is_set() (a threading.Event): once set, the worker finishes
          the jobs it runs, claims no more and returns (seen within ~50 ms)
        - progress: fn(event) with a ProgressEvent; calls are serialized but may come from
          any worker thread; exceptions it raises are ignored

        Runs with the GIL released; holds this service (and its context) for the whole run.
        """
        run = self._lib.need("bcd_worker_run")
        opts = _lib.WorkerOptions()
        st = self._lib.need("bcd_worker_options_init")(ctypes.byref(opts), _lib.WORKER_OPTIONS_VERSION)
        if st != 0:
            raise make_error(self._lib, st, None)
        for name, value in (("concurrency", concurrency), ("lease_seconds", lease_seconds),
                            ("heartbeat_seconds", heartbeat_seconds), ("max_jobs", max_jobs),
                            ("poll_ms", poll_ms), ("retry_base_ms", retry_base_ms)):
            value = int(value)
            if value < 0:
                raise InvalidArgumentError("%s must not be negative" % name, status=EINVAL,
                                           status_name="invalid_argument", code="invalid_worker_options")
            setattr(opts, name, value)
        opts.drain = 1 if drain else 0
        cb = _progress_callback(progress) if progress is not None else None
        if cb is not None:
            opts.progress = cb
        flag = ctypes.c_int(0)
        opts.stop = ctypes.pointer(flag)
        finished = threading.Event()
        watcher = None
        if stop is not None:
            if not callable(getattr(stop, "is_set", None)):
                raise TypeError("stop must have an is_set() method (threading.Event), not %s" % type(stop).__name__)

            def watch():
                while not finished.is_set():
                    if stop.is_set():
                        flag.value = 1
                        return
                    finished.wait(0.02)
            watcher = threading.Thread(target=watch, name="bcd-worker-stop", daemon=True)
            watcher.start()
        try:
            out = ctypes.c_void_p()
            with self._ctx._lock:
                if self._ptr is None:
                    raise closed_error("Service")
                st = run(ctypes.byref(out), self._ptr, ctypes.byref(opts))
                if st != 0:
                    self._lib.bcd_free(out.value)
                    raise make_error(self._lib, st, self._lib.bcd_service_last_error(self._ptr))
            return json.loads(self._lib.take_string(out.value)) if out.value else {}
        finally:
            finished.set()
            if watcher is not None:
                watcher.join()
            cb = None  # the callback (also referenced by opts) lived until the run returned

    # -- history and reports (bcd/report.h, @since 0.2) ---------------------------------
    def history(self, *, user=None):
        """Every analyzed session of the user, oldest first, and the trend (bcd_history):
        {"user_id", "count", "sessions": [...], "trend": {...}}."""
        return self._op(self._lib.need("bcd_history"), self._user(user))

    def report(self, session_id, *, user=None):
        """The report of one analyzed session (bcd_report): {"success": true, "data":
        {"summary", "per_angle", "confidence", "flagged", "next_steps", "history", ...}}.
        NotFoundError ("analysis_not_found") if the session was never analyzed."""
        return self._op(self._lib.need("bcd_report"), self._user(user), cstr(session_id, "session_id"))

    def report_html(self, session_id, path, *, photos=True, heatmaps=True, thumbnail_size=0, user=None):
        """Write the report of one analyzed session as one self-contained HTML file (mode
        0600, written atomically; its folder must exist) and return path.

        photos=False leaves the photos out; heatmaps=False computes no change maps where
        the analysis stored none; thumbnail_size: longer side of the thumbnails, 64..1024
        (0: 320). Defaults: bcd_report_html, else bcd_report_html_ext."""
        u, sid, p = self._user(user), cstr(session_id, "session_id"), cstr(os.fspath(path), "path")
        if photos and heatmaps and not thumbnail_size:
            self._status(self._lib.need("bcd_report_html"), u, sid, p)
            return path
        opts = _lib.ReportOptions()
        st = self._lib.need("bcd_report_options_init")(ctypes.byref(opts), _lib.REPORT_OPTIONS_VERSION)
        if st != 0:
            raise make_error(self._lib, st, None)
        opts.flags = (0 if photos else _lib.REPORT_NO_PHOTOS) | (0 if heatmaps else _lib.REPORT_NO_HEATMAPS)
        if int(thumbnail_size) < 0:
            raise InvalidArgumentError("thumbnail_size must not be negative", status=EINVAL,
                                       status_name="invalid_argument", code="invalid_report_options")
        opts.thumbnail_size = int(thumbnail_size)
        self._status(self._lib.need("bcd_report_html_ext"), u, sid, p, ctypes.byref(opts))
        return path


#: One progress report (bcd_progress_event), strings decoded (None where NULL).
ProgressEvent = collections.namedtuple(
    "ProgressEvent", "stage done total elapsed_s session_id job_id worker jobs_done jobs_failed message")


def _text(b):
    return b.decode("utf-8", "replace") if b is not None else None


def _progress_callback(fn):
    """A PROGRESS_FN calling fn(ProgressEvent); exceptions never propagate into C."""
    if not callable(fn):
        raise TypeError("progress must be callable, not %s" % type(fn).__name__)

    def trampoline(_user, ev_ptr):
        try:
            ev = ev_ptr.contents
            fn(ProgressEvent(_text(ev.stage), ev.done, ev.total, ev.elapsed_s, _text(ev.session_id),
                             _text(ev.job_id), ev.worker, ev.jobs_done, ev.jobs_failed, _text(ev.message)))
        except BaseException:  # noqa: B902 - never propagate into C
            pass
    return _lib.PROGRESS_FN(trampoline)


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
