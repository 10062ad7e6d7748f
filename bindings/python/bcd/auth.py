"""bcd.Verifier: verification of Supabase access tokens (bcd/auth.h)."""
import ctypes
import json
import os
import weakref

from . import _lib
from ._context import closed_error, cstr, resolve
from .errors import EUNSUPPORTED, UnsupportedError, make_error


class Verifier:
    """An access-token verifier (bcd_auth_verifier): ES256 JWTs against a JSON Web Key Set.

    Verifier(ctx=None, *, supabase_url=None, issuer=None, audience=None, leeway_s=None,
             jwks_ttl_s=0, refresh_interval_s=0, signature_only=False, now=None,
             jwks=None, jwks_file=None)

    - supabase_url: the project (None: SUPABASE_URL of the context); gives the JWKS
      address and the default issuer {supabase_url}/auth/v1.
    - issuer, audience (default "authenticated"), leeway_s (default 30, at most 300),
      jwks_ttl_s, refresh_interval_s (0: library defaults).
    - signature_only: check structure, algorithm, key and signature, not the claims.
    - now: a callable returning the current Unix time (tests); None: the system clock.
    - jwks: a key set to pin (a JSON text or a dict); jwks_file: the same from a file.
      Without one the key set is downloaded from the project on first use.

    verify(token) returns the caller as a dict ({"user_id", "role", "email", ...}) or
    raises AuthError with the library's code ("token_expired", "bad_signature",
    "unknown_kid", ...). The token never appears in messages. A context manager.
    """

    def __init__(self, ctx=None, *, supabase_url=None, issuer=None, audience=None, leeway_s=None,
                 jwks_ttl_s=0, refresh_interval_s=0, signature_only=False, now=None, jwks=None, jwks_file=None):
        self._ctx = resolve(ctx)
        self._lib = lib = self._ctx._lib
        if lib.bcd_auth_verifier_new is None:
            raise UnsupportedError("this libbcd (%s) has no token verification" % lib.version,
                                   status=EUNSUPPORTED, status_name="unsupported", code="not_in_library")
        opts = _lib.AuthOptions()
        self._ctx._call(lib.bcd_auth_options_init, ctypes.byref(opts), _lib.AUTH_OPTIONS_VERSION)
        keep = [cstr(supabase_url, "supabase_url"), cstr(issuer, "issuer"), cstr(audience, "audience")]
        opts.supabase_url, opts.issuer, opts.audience = keep
        if leeway_s is not None:
            opts.leeway_s = int(leeway_s)
        opts.jwks_ttl_s = int(jwks_ttl_s)
        opts.refresh_interval_s = int(refresh_interval_s)
        opts.flags = _lib.AUTH_SIGNATURE_ONLY if signature_only else 0
        self._now = None
        if now is not None:
            def clock(_user):
                try:
                    return int(now())
                except BaseException:  # noqa: B902 - never propagate into C
                    return 0
            self._now = _lib.AUTH_NOW_FN(clock)  # kept alive with the verifier
            opts.now = self._now
        ptr = ctypes.c_void_p()
        self._ctx._call(lib.bcd_auth_verifier_new, ctypes.byref(ptr), self._ctx._handle, ctypes.byref(opts))
        self._ptr = ptr.value
        self._finalizer = weakref.finalize(self, lib.bcd_auth_verifier_free, self._ptr)
        self._ctx._adopt(self)
        try:
            if jwks is not None:
                self.set_jwks(jwks)
            if jwks_file is not None:
                self.load_jwks_file(jwks_file)
        except BaseException:
            self.close()
            raise

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
            raise closed_error("Verifier")
        return self

    def __exit__(self, *exc):
        self.close()

    def _call(self, fn, *args):
        with self._ctx._lock:
            if self._ptr is None:
                raise closed_error("Verifier")
            st = fn(self._ptr, *args)
            if st != 0:
                raise make_error(self._lib, st, self._lib.bcd_auth_verifier_last_error(self._ptr))

    def set_jwks(self, jwks):
        """Pin a key set ({"keys": [...]}, JSON text or dict); it is never downloaded then."""
        text = jwks if isinstance(jwks, (str, bytes)) else json.dumps(jwks)
        self._call(self._lib.bcd_auth_verifier_set_jwks_json, cstr(text, "jwks"))

    def load_jwks_file(self, path):
        """Pin the key set of a file."""
        self._call(self._lib.bcd_auth_verifier_load_jwks_file, cstr(os.fspath(path), "path"))

    def verify(self, token):
        """Verify an access token (without "Bearer "); return its caller as a dict."""
        out = ctypes.c_void_p()
        with self._ctx._lock:
            if self._ptr is None:
                raise closed_error("Verifier")
            st = self._lib.bcd_auth_verify(ctypes.byref(out), self._ptr, cstr(token, "token"))
            if st != 0:
                self._lib.bcd_free(out.value)
                raise make_error(self._lib, st, self._lib.bcd_auth_verifier_last_error(self._ptr))
        return json.loads(self._lib.take_string(out.value))


def verify_token(token, *, ctx=None, **options):
    """One-shot verify: Verifier(ctx, **options).verify(token), closed afterwards."""
    with Verifier(ctx, **options) as v:
        return v.verify(token)
