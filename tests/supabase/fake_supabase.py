"""A small stand-in for a Supabase project, for libbcd's tests (not part of the library).

It speaks the subset of the protocol in ../shared/docs/supabase-wire.md that libbcd uses,
on top of a real PostgreSQL (the schema of supabase/migrations/) and a folder of objects:

  PostgREST  /rest/v1/{table|view}   GET, HEAD, POST (insert, upsert), PATCH, DELETE;
             filters eq neq gt gte lt lte like ilike is in (and not.), select (columns,
             col::type), order, limit, offset; Prefer return=representation|minimal,
             count=exact, resolution=merge-duplicates|ignore-duplicates + on_conflict;
             Accept application/vnd.pgrst.object+json; Content-Range; error bodies
             {code, details, hint, message} with PostgREST's status mapping (23505 -> 409,
             PTxyz -> xyz, ...), PGRST205 for unknown tables.
             /rest/v1/rpc/{fn}    POST with named arguments (PGRST202 when they do not match).
  Storage    /storage/v1/object/{bucket}/{key}   POST (x-upsert), PUT, GET, HEAD, DELETE;
             /object/authenticated/..., /object/sign/{bucket}[/{key}] (one and batch),
             GET /object/sign/...?token=, /object/upload/sign/... (POST to sign, PUT to
             upload with the token); errors as HTTP 400 with the real status in
             {"statusCode": "404", ...}.
  Auth       /auth/v1/.well-known/jwks.json (whatever `jwks` holds).
  Users      the anon (publishable) key with `Authorization: Bearer <access token>`: an
             ES256 token signed by a key of `jwks` (or HS256 with `jwt_secret`, legacy
             projects), unexpired, role "authenticated", runs as role authenticated with
             its claims (row-level security applies); a bad token is 401 PGRST301. Storage
             serves such a caller reads (GET, HEAD, sign) of the objects it may select in
             storage.objects, which mirrors the bucket when that table exists; no writes.
  Gateway    `apikey` required (401 "No API key found in request" / "Invalid API key");
             a legacy JWT key must also come as `Authorization: Bearer` (else the call
             runs as anon, under row-level security); an sb_secret_ key may come alone or
             with an identical Authorization.

Each request runs in one transaction as role service_role or anon, with
request.jwt.claims set, as PostgREST does. Faults are injected by the test through
`add_fault()`; every request is recorded in `log`.
"""
import base64
import hashlib
import hmac
import json
import os
import re
import socket
import struct
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2
import psycopg2.errors
import psycopg2.pool

SIGNING_SECRET = os.urandom(32)
KEY_CHARS = re.compile(r"^[A-Za-z0-9_/!.*'() &$=@;:+,?-]+$")
IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")
CAST = re.compile(r"^[a-z_][a-z0-9_]*(\[\])?$")


class PgrstError(Exception):
    def __init__(self, status, code, message, details=None, hint=None):
        super().__init__(message)
        self.status, self.code, self.message, self.details, self.hint = status, code, message, details, hint


class StorageError(Exception):
    def __init__(self, status, code, error, message, http=400):
        super().__init__(message)
        self.status, self.code, self.error, self.message, self.http = status, code, error, message, http


def pg_status(code):
    """HTTP status of a SQLSTATE, as PostgREST maps it (wire doc 2.8)."""
    if code is None:
        return 500
    if code.startswith("PT") and code[2:].isdigit():
        return int(code[2:])
    if code in ("23505", "23503"):
        return 409
    if code in ("42P01", "42883"):
        return 404
    if code == "42501":
        return 403
    if code == "25006":
        return 405
    if code == "P0001":
        return 400
    if code.startswith("08") or code.startswith("53") and code != "53400":
        return 503
    if code[:2] in ("09", "25", "2D", "38", "39", "3B", "40", "54", "55", "57", "58", "F0", "HV", "P0", "XX") \
            or code == "53400":
        return 500
    return 400


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def sign_token(payload):
    body = b64u(json.dumps(payload, separators=(",", ":")).encode())
    mac = b64u(hmac.new(SIGNING_SECRET, body.encode(), hashlib.sha256).digest())
    return body + "." + mac


def check_token(token):
    try:
        body, mac = token.split(".")
        want = b64u(hmac.new(SIGNING_SECRET, body.encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(mac, want):
            return None
        payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        if payload.get("exp", 0) < time.time():
            return None
        return payload
    except Exception:
        return None


def split_list(s):
    """Items of a PostgREST list "a,b,\"c,d\"" (quotes protect , . : ( ))."""
    items, cur, q, i = [], "", False, 0
    while i < len(s):
        c = s[i]
        if q and c == "\\" and i + 1 < len(s):
            cur += s[i + 1]
            i += 2
            continue
        if c == '"':
            q = not q
        elif c == "," and not q:
            items.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    items.append(cur)
    return items


class FakeSupabase:
    def __init__(self, dsn, storage_dir, service_key, bucket="bcd-images", anon_key=None):
        self.dsn = dsn
        self.storage_dir = storage_dir
        self.service_key = service_key
        self.anon_key = anon_key
        self.buckets = {bucket: {"public": False, "allowed": ["image/jpeg", "image/png"],
                                 "limit": 50 * 1024 * 1024}}
        os.makedirs(os.path.join(storage_dir, bucket), exist_ok=True)
        self.jwks = {"keys": []}
        self.jwt_secret = None  # HS256 secret of a legacy project
        self.faults = []
        self.log = []
        self.sent = []  # bytes written by each "oversize" fault
        self.bugs = []
        self.max_rows = None  # a project's db-max-rows: GET pages never hold more rows
        self.job_lease_ms = None  # replaces p_lease_ms of job claims and heartbeats (short leases)
        self.lock = threading.Lock()
        self.pool = psycopg2.pool.ThreadedConnectionPool(1, 32, dsn)
        self.httpd = None
        self.port = None
        self.thread = None

    # ---- control (used by the tests) ------------------------------------------------
    def start(self):
        handler = type("Handler", (Handler,), {"fake": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
        self.pool.closeall()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def add_fault(self, method, path_re, action, count=1, **kw):
        """Next `count` requests whose "METHOD path" matches: action "status" (answer
        kw status/body/headers without touching anything), "drop" (close the connection
        before doing anything), "drop_after" (do the work, then close without an answer:
        a lost response), "delay" (sleep kw seconds, then serve).
        Broken answers (the work is done first, so a write has committed):
        "truncate" (the full Content-Length, half the body, then close), "chunk_cut"
        (a chunked body cut off before its last chunk), "reset" (half the body, then a TCP
        reset), "stall" (headers and half the body, then silence for kw seconds: a read
        timeout). "oversize" answers 200 with an endless chunked body (kw chunk bytes,
        kw limit bytes at most) without doing the work, and records in `sent` how much
        went out before the client hung up."""
        with self.lock:
            self.faults.append(dict(method=method, path=re.compile(path_re), action=action, count=count, **kw))

    def clear(self):
        self.max_rows = None
        self.job_lease_ms = None
        with self.lock:
            self.faults.clear()
            self.log.clear()
            self.sent.clear()

    def requests(self, method=None, path_re=None):
        with self.lock:
            out = list(self.log)
        return [r for r in out if (method is None or r["method"] == method)
                and (path_re is None or re.search(path_re, r["path"]))]

    def take_fault(self, method, path):
        with self.lock:
            for f in self.faults:
                if f["count"] > 0 and (f["method"] in (None, method)) and f["path"].search(path):
                    f["count"] -= 1
                    return f
        return None

    # ---- database ---------------------------------------------------------------------
    def run(self, role, fn, claims=None):
        conn = self.pool.getconn()
        try:
            conn.autocommit = False
            with conn.cursor() as cur:
                cur.execute("set local role %s" % role)
                if claims is None:
                    claims = {"role": role} if role != "service_role" else {"role": "service_role", "iss": "supabase"}
                cur.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))
                cur.execute("set local timezone = 'UTC'")
                out = fn(cur)
            conn.commit()
            return out
        except psycopg2.Error as e:
            conn.rollback()
            diag = e.diag
            raise PgrstError(pg_status(e.pgcode), e.pgcode or "XX000", diag.message_primary or str(e),
                             diag.message_detail, diag.message_hint)
        except Exception:
            conn.rollback()
            raise
        finally:
            self.pool.putconn(conn)

    def admin(self, sql, args=None):
        """Run sql as the connection's superuser (Storage's own bookkeeping)."""
        conn = self.pool.getconn()
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(sql, args)
                return cur.fetchall() if cur.description else None
        finally:
            self.pool.putconn(conn)

    def has_objects_table(self):
        if not hasattr(self, "_objects"):
            self._objects = self.admin("select to_regclass('storage.objects') is not null")[0][0]
        return self._objects

    def user_claims(self, token):
        """Claims of a valid user access token, or None."""
        try:
            h, p, sig = token.split(".")
            header = json.loads(base64.urlsafe_b64decode(h + "=" * (-len(h) % 4)))
            claims = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
            raw = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
            signing = (h + "." + p).encode()
            if header.get("alg") == "HS256" and self.jwt_secret:
                if not hmac.compare_digest(raw, hmac.new(self.jwt_secret, signing, hashlib.sha256).digest()):
                    return None
            elif header.get("alg") == "ES256":
                from cryptography.exceptions import InvalidSignature
                from cryptography.hazmat.primitives import hashes
                from cryptography.hazmat.primitives.asymmetric import ec
                from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
                jwk = [k for k in self.jwks.get("keys", []) if k.get("kid") == header.get("kid")]
                if len(jwk) != 1 or len(raw) != 64:
                    return None
                x = int.from_bytes(base64.urlsafe_b64decode(jwk[0]["x"] + "=="), "big")
                y = int.from_bytes(base64.urlsafe_b64decode(jwk[0]["y"] + "=="), "big")
                key = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
                der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
                try:
                    key.verify(der, signing, ec.ECDSA(hashes.SHA256()))
                except InvalidSignature:
                    return None
            else:
                return None
            if not isinstance(claims.get("exp"), (int, float)) or claims["exp"] < time.time():
                return None
            if claims.get("role") != "authenticated" or not isinstance(claims.get("sub"), str):
                return None
            return claims
        except Exception:
            return None

    def relation_columns(self, cur, name):
        cur.execute("select a.attname from pg_attribute a join pg_class c on c.oid = a.attrelid "
                    "join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public' and c.relname = %s "
                    "and a.attnum > 0 and not a.attisdropped order by a.attnum", (name,))
        cols = [r[0] for r in cur.fetchall()]
        if not cols:
            raise PgrstError(404, "PGRST205", "Could not find the table 'public.%s' in the schema cache" % name,
                             hint=None)
        return cols


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake = None  # set by FakeSupabase.start

    def log_message(self, fmt, *args):  # quiet
        pass

    # ---- plumbing -------------------------------------------------------------------
    def setup(self):
        super().setup()
        # headers and body leave in separate writes: without this, Nagle + delayed ACK
        # add 40 ms to every response
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def drop(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def handle_any(self):
        fake = self.fake
        self.captured = None
        n = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(n) if n else b""
        parsed = urllib.parse.urlsplit(self.path)
        self.route = parsed.path
        self.query = parsed.query
        rec = {
            "method": self.command, "path": self.route, "query": self.query,
            "correlation_id": self.headers.get("X-Correlation-Id"),
            "user_agent": self.headers.get("User-Agent"),
            "apikey": self.headers.get("apikey"), "authorization": self.headers.get("Authorization"),
            "prefer": self.headers.get("Prefer"), "time": time.time(),
            "body": self.body.decode("utf-8", "replace"),
        }
        with fake.lock:
            fake.log.append(rec)
        fault = fake.take_fault(self.command, self.route)
        self.suppress = bool(fault and fault["action"] == "drop_after")
        if fault:
            act = fault["action"]
            if act == "drop":
                return self.drop()
            if act == "status":
                return self.send(fault.get("status", 500), fault.get("body", {"code": "XX000",
                                 "message": "injected failure", "details": None, "hint": None}),
                                 headers=fault.get("headers"))
            if act == "delay":
                time.sleep(fault.get("seconds", 1))
            if act == "oversize":
                return self.send_endless(fault)
        if fault and fault["action"] in ("truncate", "chunk_cut", "reset", "stall"):
            self.captured = []  # send() keeps the answer; it leaves broken below
        try:
            self.dispatch()
        except PgrstError as e:
            self.send(e.status, {"code": e.code, "details": e.details, "hint": e.hint, "message": e.message})
        except StorageError as e:
            self.send(e.http, {"statusCode": str(e.status), "code": e.code, "error": e.error, "message": e.message})
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as e:  # a bug of this fixture: answer 500 and remember it
            import traceback
            with fake.lock:
                fake.bugs.append(traceback.format_exc())
            self.send(500, {"code": "XX000", "message": "fake server bug: %r" % e, "details": None, "hint": None})
        if fault and fault["action"] == "drop_after":
            # the work is done (committed); the answer never arrives
            self.drop()
        if self.captured:
            self.send_broken(fault, *self.captured[0])

    def send_broken(self, fault, status, body, ctype, headers):
        act = fault["action"]
        half = body[:len(body) // 2]
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        try:
            if act == "chunk_cut":
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                if half:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(half), half))
            else:
                # never an empty body: the cut must fall inside it
                self.send_header("Content-Length", str(max(len(body), 2)))
                self.end_headers()
                self.wfile.write(half or b"{")
            self.wfile.flush()
            if act == "stall":
                time.sleep(fault.get("seconds", 5))
            elif act == "reset":
                # close at once with SO_LINGER 0: an RST, not a FIN (shutdown() would send one)
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.rfile.close()
                self.wfile.close()
                self.connection.close()
                self.close_connection = True
                return
        except OSError:
            pass
        self.close_connection = True
        self.drop()

    def send_endless(self, fault):
        chunk = b"x" * fault.get("chunk", 65536)
        limit = fault.get("limit", 1 << 30)
        sent = 0
        self.send_response(200)
        self.send_header("Content-Type", fault.get("ctype", "application/json"))
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            while sent < limit:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        except OSError:
            pass
        with self.fake.lock:
            self.fake.sent.append(sent)
        self.close_connection = True
        self.drop()

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

    def send(self, status, body=b"", ctype="application/json; charset=utf-8", headers=None):
        if getattr(self, "suppress", False):  # drop_after: the answer is lost
            return
        if isinstance(body, (dict, list)) or (body is None and ctype.startswith("application/json")):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        if getattr(self, "captured", None) is not None:  # a broken answer leaves later
            self.captured.append((status, body if self.command != "HEAD" else b"", ctype, headers))
            return
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def dispatch(self):
        r = self.route
        if r == "/auth/v1/.well-known/jwks.json" and self.command == "GET":
            return self.send(200, self.fake.jwks, headers={"Cache-Control": "public, max-age=600"})
        if r.startswith("/storage/v1/object/sign/") and self.command == "GET":
            return self.storage_signed_get(r[len("/storage/v1/object/sign/"):])
        if r.startswith("/storage/v1/object/upload/sign/") and self.command == "PUT":
            return self.storage_signed_put(r[len("/storage/v1/object/upload/sign/"):])
        role = self.gateway()
        if role is None:
            return
        if r.startswith("/rest/v1/rpc/"):
            return self.rpc(role, r[len("/rest/v1/rpc/"):])
        if r.startswith("/rest/v1/"):
            return self.table(role, r[len("/rest/v1/"):])
        if r.startswith("/storage/v1/"):
            if role == "authenticated":
                return self.storage_as_user(r[len("/storage/v1/"):])
            if role != "service_role":
                raise StorageError(403, "AccessDenied", "Unauthorized", "new row violates row-level security policy")
            return self.storage(r[len("/storage/v1/"):])
        self.send(404, {"message": "no Route matched with those values"})

    def gateway(self):
        """The Postgres role of the call, or None after answering 401."""
        fake = self.fake
        self.claims = None
        key = self.headers.get("apikey")
        auth = self.headers.get("Authorization")
        if not key:
            self.send(401, {"message": "No API key found in request",
                            "hint": "No `apikey` request header or url param was found."})
            return None
        if key not in (fake.service_key, fake.anon_key):
            self.send(401, {"message": "Invalid API key",
                            "hint": "Double check your Supabase `anon` or `service_role` API key."})
            return None
        if key.startswith("sb_secret_"):
            if auth is not None and auth != "Bearer " + key and auth != key:
                self.send(401, {"message": "Invalid API key", "hint": "Authorization does not match apikey"})
                return None
            return "service_role"
        if key == fake.service_key and auth == "Bearer " + key:
            return "service_role"
        if auth is not None and auth.startswith("Bearer ") and auth != "Bearer " + key:
            self.claims = fake.user_claims(auth[len("Bearer "):])
            if self.claims is not None:
                return "authenticated"
        if auth is not None and auth != "Bearer " + key:
            self.send(401, {"code": "PGRST301", "message": "JWSError JWSInvalidSignature", "details": None,
                            "hint": None})
            return None
        return "anon"

    # ---- PostgREST --------------------------------------------------------------------
    def prefer(self):
        out = {}
        for h in self.headers.get_all("Prefer") or []:
            for part in h.split(","):
                if "=" in part:
                    k, v = part.strip().split("=", 1)
                    out[k] = v
        return out

    def params(self):
        return urllib.parse.parse_qsl(self.query, keep_blank_values=True)

    def select_list(self, cols, sel):
        if not sel or sel == "*":
            return "*"
        out = []
        for item in sel.split(","):
            alias = None
            if ":" in item and "::" not in item.split(":", 1)[0] + ":" and not item.startswith(":"):
                a, rest = item.split(":", 1)
                if not rest.startswith(":"):
                    alias, item = a, rest
            cast = None
            if "::" in item:
                item, cast = item.split("::", 1)
            if item not in cols:
                raise PgrstError(400, "42703", "column %s does not exist" % item)
            expr = '"%s"' % item
            if cast:
                if not CAST.match(cast):
                    raise PgrstError(400, "PGRST100", "bad cast")
                expr += "::" + cast
            out.append('%s as "%s"' % (expr, alias or item))
        return ", ".join(out)

    def where(self, cols):
        conds, args = [], []
        for k, v in self.params():
            if k in ("select", "order", "limit", "offset", "on_conflict", "columns"):
                continue
            if k not in cols:
                raise PgrstError(400, "42703", "column %s does not exist" % k)
            if "." not in v:
                raise PgrstError(400, "PGRST100", '"failed to parse filter (%s)"' % v)
            op, val = v.split(".", 1)
            neg = False
            if op == "not":
                neg = True
                op, val = val.split(".", 1)
            col = '"%s"' % k
            sqlop = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "like": "like",
                     "ilike": "ilike"}.get(op)
            if sqlop:
                if op in ("like", "ilike"):
                    val = val.replace("*", "%")
                cond, a = "%s %s %%s" % (col, sqlop), [val]
            elif op == "is":
                m = {"null": "is null", "not_null": "is not null", "true": "is true", "false": "is false"}
                if val not in m:
                    raise PgrstError(400, "PGRST100", "bad is value")
                cond, a = "%s %s" % (col, m[val]), []
            elif op == "in":
                if not (val.startswith("(") and val.endswith(")")):
                    raise PgrstError(400, "PGRST100", "bad in list")
                items = split_list(val[1:-1])
                cond, a = "%s in (%s)" % (col, ", ".join(["%s"] * len(items))), items
            else:
                raise PgrstError(400, "PGRST100", "unknown operator %s" % op)
            conds.append(("not (%s)" % cond) if neg else cond)
            args += a
        return (" where " + " and ".join(conds)) if conds else "", args

    def order_limit(self, cols):
        sql = ""
        p = dict(self.params())
        if "order" in p:
            parts = []
            for item in p["order"].split(","):
                bits = item.split(".")
                if bits[0] not in cols:
                    raise PgrstError(400, "42703", "column %s does not exist" % bits[0])
                s = '"%s"' % bits[0]
                for b in bits[1:]:
                    s += {"asc": " asc", "desc": " desc", "nullsfirst": " nulls first",
                          "nullslast": " nulls last"}[b]
                parts.append(s)
            sql += " order by " + ", ".join(parts)
        limit = int(p["limit"]) if "limit" in p else None
        if self.fake.max_rows and self.command in ("GET", "HEAD"):  # db-max-rows
            limit = min(limit, self.fake.max_rows) if limit is not None else self.fake.max_rows
        if limit is not None:
            sql += " limit %d" % limit
        if "offset" in p:
            sql += " offset %d" % int(p["offset"])
        return sql

    def table(self, role, name):
        if not IDENT.match(name):
            raise PgrstError(404, "PGRST205", "Could not find the table 'public.%s' in the schema cache" % name)
        fake = self.fake
        prefer = self.prefer()
        singular = "application/vnd.pgrst.object+json" in (self.headers.get("Accept") or "")
        sel = dict(self.params()).get("select")
        method = self.command

        def work(cur):
            cols = fake.relation_columns(cur, name)
            where, args = self.where(cols)
            if method in ("GET", "HEAD"):
                sql = "select %s from public.\"%s\"%s%s" % (self.select_list(cols, sel), name, where,
                                                           self.order_limit(cols))
                cur.execute("select coalesce(json_agg(t), '[]'::json)::text from (%s) t" % sql, args)
                rows = cur.fetchone()[0]
                total = None
                if prefer.get("count") == "exact":
                    cur.execute("select count(*) from public.\"%s\"%s" % (name, where), args)
                    total = cur.fetchone()[0]
                return rows, total
            if method == "POST":
                try:
                    doc = json.loads(self.body or b"null")
                except ValueError:
                    raise PgrstError(400, "PGRST102", "Empty or invalid json")
                docs = doc if isinstance(doc, list) else [doc]
                if not docs or not all(isinstance(d, dict) for d in docs):
                    raise PgrstError(400, "PGRST102", "Empty or invalid json")
                keys = list(docs[0].keys())
                if any(set(d.keys()) != set(keys) for d in docs):
                    raise PgrstError(400, "PGRST102", "All object keys must match")
                for k in keys:
                    if k not in cols:
                        raise PgrstError(400, "PGRST204", "Could not find the '%s' column of '%s' in the schema "
                                         "cache" % (k, name))
                collist = ", ".join('"%s"' % k for k in keys)
                conflict = ""
                res = prefer.get("resolution")
                if res:
                    oc = dict(self.params()).get("on_conflict")
                    target = oc.split(",") if oc else None
                    if target is None:
                        cur.execute("select a.attname from pg_index i join pg_attribute a on a.attrelid = i.indrelid "
                                    "and a.attnum = any(i.indkey) where i.indrelid = %s::regclass and i.indisprimary",
                                    ("public." + name,))
                        target = [r[0] for r in cur.fetchall()]
                    tl = ", ".join('"%s"' % t for t in target)
                    if res == "merge-duplicates":
                        sets = ", ".join('"%s" = excluded."%s"' % (k, k) for k in keys) or '"%s" = excluded."%s"' % (
                            target[0], target[0])
                        conflict = " on conflict (%s) do update set %s" % (tl, sets)
                    else:
                        conflict = " on conflict (%s) do nothing" % tl
                sql = ("with ins as (insert into public.\"%s\" (%s) select %s from json_populate_recordset(null::"
                       "public.\"%s\", %%s::json)%s returning *) select coalesce(json_agg(t), '[]'::json)::text from "
                       "(select %s from ins) t") % (name, collist, collist, name, conflict,
                                                    self.select_list(cols, sel))
                cur.execute(sql, (json.dumps(docs),))
                return cur.fetchone()[0], None
            if method in ("PATCH", "DELETE"):
                if not where:
                    raise PgrstError(400, "21000", "%s requires a WHERE clause" %
                                     ("UPDATE" if method == "PATCH" else "DELETE"))
                if method == "PATCH":
                    try:
                        doc = json.loads(self.body or b"null")
                    except ValueError:
                        raise PgrstError(400, "PGRST102", "Empty or invalid json")
                    if not isinstance(doc, dict) or not doc:
                        raise PgrstError(400, "PGRST102", "Empty or invalid json")
                    for k in doc:
                        if k not in cols:
                            raise PgrstError(400, "PGRST204", "Could not find the '%s' column" % k)
                    sets = ", ".join('"%s" = r."%s"' % (k, k) for k in doc)
                    # filters name the table's columns, not those of the record r
                    w, a2 = self.where(cols)
                    w = re.sub(r'"([a-z_0-9]+)"', lambda m: 'public."%s"."%s"' % (name, m.group(1)), w)
                    stmt = ("update public.\"%s\" set %s from json_populate_record(null::public.\"%s\", %%s::json) r"
                            "%s returning public.\"%s\".*") % (name, sets, name, w, name)
                    allargs = [json.dumps(doc)] + a2
                else:
                    stmt = "delete from public.\"%s\"%s returning *" % (name, where)
                    allargs = args
                sql = ("with chg as (%s) select coalesce(json_agg(t), '[]'::json)::text from (select %s from chg) t"
                       % (stmt, self.select_list(cols, sel)))
                cur.execute(sql, allargs)
                return cur.fetchone()[0], None
            raise PgrstError(405, "PGRST117", "Unsupported HTTP method")

        rows_text, total = fake.run(role, work, getattr(self, "claims", None))
        rows = json.loads(rows_text)
        n = len(rows)
        if singular:
            if n != 1:
                # on writes PostgREST rolls back; libbcd never writes with the singular Accept
                raise PgrstError(406, "PGRST116", "Cannot coerce the result to a single JSON object",
                                 "The result contains %d rows" % n)
            out = json.dumps(rows[0])
            ctype = "application/vnd.pgrst.object+json; charset=utf-8"
        else:
            out = rows_text
            ctype = "application/json; charset=utf-8"
        if method in ("GET", "HEAD"):
            offset = int(dict(self.params()).get("offset", 0))
            rng = ("%d-%d" % (offset, offset + n - 1)) if n else "*"
            status = 200
            if total is not None and n and offset + n < total:
                status = 206
            return self.send(status, out, ctype, {"Content-Range": "%s/%s" % (rng, "*" if total is None else total)})
        ret = prefer.get("return", "minimal")
        if method == "POST":
            if ret == "representation":
                return self.send(201, out, ctype)
            return self.send(201, b"", ctype)
        if ret == "representation":
            return self.send(200, out, ctype)
        return self.send(204, b"", ctype)

    def rpc(self, role, fn):
        fake = self.fake
        if self.command not in ("POST", "GET"):
            raise PgrstError(405, "PGRST117", "Unsupported HTTP method")
        try:
            args = json.loads(self.body or b"{}") if self.command == "POST" else dict(self.params())
        except ValueError:
            raise PgrstError(400, "PGRST102", "Empty or invalid json")
        if not isinstance(args, dict) or not IDENT.match(fn):
            raise PgrstError(400, "PGRST102", "Empty or invalid json")
        if fake.job_lease_ms and fn in ("bcd_claim_job", "bcd_heartbeat_job") and "p_lease_ms" in args:
            args["p_lease_ms"] = fake.job_lease_ms

        def work(cur):
            cur.execute("select p.proargnames, array(select format_type(t, null) from unnest(p.proargtypes) t), "
                        "format_type(p.prorettype, null), p.provolatile from pg_proc p join pg_namespace n on "
                        "n.oid = p.pronamespace where n.nspname = 'public' and p.proname = %s", (fn,))
            cands = cur.fetchall()
            for names, types, rettype, volatile in cands:
                names = names or []
                if sorted(names) != sorted(args.keys()):
                    continue
                if self.command == "GET" and volatile == "v":
                    raise PgrstError(405, "25006", "cannot execute in a read-only transaction")
                parts, vals = [], []
                for nm, ty in zip(names, types):
                    v = args[nm]
                    if ty in ("json", "jsonb"):
                        v = json.dumps(v)
                    elif isinstance(v, (dict, list)):
                        v = json.dumps(v)
                    parts.append('"%s" => %%s::%s' % (nm, ty))
                    vals.append(v)
                cur.execute("select to_json(public.\"%s\"(%s))::text, %s = 'void'" % (fn, ", ".join(parts), "%s"),
                            vals + [rettype])
                res, void = cur.fetchone()
                return res, void
            raise PgrstError(404, "PGRST202", "Could not find the function public.%s(%s) in the schema cache"
                             % (fn, ", ".join(sorted(args))))

        res, void = fake.run(role, work, getattr(self, "claims", None))
        if void:
            return self.send(204, b"")
        return self.send(200, res if res is not None else "null")

    # ---- Storage ---------------------------------------------------------------------
    def bucket_key(self, rest):
        parts = rest.split("/", 1)
        bucket = urllib.parse.unquote(parts[0])
        if bucket not in self.fake.buckets:
            raise StorageError(404, "NoSuchBucket", "Bucket not found", "Bucket not found")
        key = urllib.parse.unquote(parts[1]) if len(parts) > 1 else None
        if key is not None and (not key or not KEY_CHARS.match(key) or key.startswith("/") or "//" in key
                                or ".." in key.split("/")):
            raise StorageError(400, "InvalidKey", "InvalidKey", "Invalid key: %s" % key)
        return bucket, key

    def obj_path(self, bucket, key):
        return os.path.join(self.fake.storage_dir, bucket, key)

    def write_object(self, bucket, key, upsert):
        info = self.fake.buckets[bucket]
        ctype = (self.headers.get("Content-Type") or "application/octet-stream").split(";")[0].strip()
        if info["allowed"] and ctype not in info["allowed"]:
            raise StorageError(415, "InvalidMimeType", "invalid_mime_type", "mime type %s is not supported" % ctype)
        if len(self.body) > info["limit"]:
            raise StorageError(413, "EntityTooLarge", "Payload too large",
                               "The object exceeded the maximum allowed size")
        p = self.obj_path(bucket, key)
        with self.fake.lock:
            if os.path.exists(p) and not upsert:
                raise StorageError(409, "KeyAlreadyExists", "Duplicate", "The resource already exists")
            os.makedirs(os.path.dirname(p), exist_ok=True)
            tmp = p + ".tmp-%s" % uuid.uuid4().hex
            with open(tmp, "wb") as f:
                f.write(self.body)
            with open(tmp + ".meta", "w") as f:
                json.dump({"content_type": ctype}, f)
            os.replace(tmp + ".meta", p + ".meta")
            os.replace(tmp, p)
        if self.fake.has_objects_table():
            self.fake.admin("insert into storage.objects (bucket_id, name, metadata) values (%s, %s, %s) "
                            "on conflict (bucket_id, name) do update set metadata = excluded.metadata",
                            (bucket, key, json.dumps({"mimetype": ctype, "size": len(self.body)})))
        return {"Id": str(uuid.uuid4()), "Key": "%s/%s" % (bucket, key)}

    def read_object(self, bucket, key):
        p = self.obj_path(bucket, key)
        if not os.path.isfile(p):
            raise StorageError(404, "NoSuchKey", "not_found", "Object not found")
        with open(p, "rb") as f:
            data = f.read()
        ctype = "application/octet-stream"
        try:
            with open(p + ".meta") as f:
                ctype = json.load(f)["content_type"]
        except OSError:
            pass
        return data, ctype

    def expires_in(self):
        try:
            doc = json.loads(self.body or b"{}")
        except ValueError:
            raise StorageError(400, "InvalidRequest", "Invalid Input", "body is not JSON")
        e = doc.get("expiresIn")
        if not isinstance(e, int) or e < 1:
            raise StorageError(400, "InvalidParameter", "Invalid Input", "expiresIn must be >= 1")
        return doc, e

    def storage(self, rest):
        m = self.command
        if rest.startswith("object/sign/") and m == "POST":
            bucket, key = self.bucket_key(rest[len("object/sign/"):])
            doc, exp = self.expires_in()
            if key is None:
                paths = doc.get("paths")
                if not isinstance(paths, list) or not 1 <= len(paths) <= 1000:
                    raise StorageError(400, "InvalidParameter", "Invalid Input", "paths must hold 1 to 1000 keys")
                out = []
                for k in paths:
                    if os.path.isfile(self.obj_path(bucket, k)):
                        tok = sign_token({"url": "%s/%s" % (bucket, k), "exp": int(time.time()) + exp})
                        out.append({"error": None, "path": k,
                                    "signedURL": "/object/sign/%s/%s?token=%s" % (bucket, k, tok)})
                    else:
                        out.append({"error": "Either the object does not exist or you do not have access to it",
                                    "path": k, "signedURL": None})
                return self.send(200, out)
            self.read_object(bucket, key)
            tok = sign_token({"url": "%s/%s" % (bucket, key), "exp": int(time.time()) + exp})
            return self.send(200, {"signedURL": "/object/sign/%s/%s?token=%s" % (bucket, key, tok)})
        if rest.startswith("object/upload/sign/") and m == "POST":
            bucket, key = self.bucket_key(rest[len("object/upload/sign/"):])
            upsert = (self.headers.get("x-upsert") or "").lower() == "true"
            tok = sign_token({"url": "%s/%s" % (bucket, key), "upsert": upsert, "exp": int(time.time()) + 7200})
            return self.send(200, {"url": "/object/upload/sign/%s/%s?token=%s" % (bucket, key, tok), "token": tok})
        if rest.startswith("object/authenticated/"):
            rest = "object/" + rest[len("object/authenticated/"):]
            if m not in ("GET", "HEAD"):
                raise StorageError(404, "NotFound", "not_found", "Route %s:/%s not found" % (m, rest), http=404)
        if rest.startswith("object/"):
            bucket, key = self.bucket_key(rest[len("object/"):])
            if key is None:
                raise StorageError(404, "NotFound", "not_found", "Route %s:/%s not found" % (m, rest), http=404)
            if m in ("POST", "PUT"):
                upsert = m == "PUT" or (self.headers.get("x-upsert") or "").lower() == "true"
                return self.send(200, self.write_object(bucket, key, upsert))
            if m in ("GET", "HEAD"):
                try:
                    data, ctype = self.read_object(bucket, key)
                except StorageError:
                    if m == "HEAD":
                        return self.send(400, b"")
                    raise
                return self.send(200, data, ctype)
            if m == "DELETE":
                p = self.obj_path(bucket, key)
                if not os.path.isfile(p):
                    raise StorageError(404, "NoSuchKey", "not_found", "Object not found")
                os.remove(p)
                if os.path.exists(p + ".meta"):
                    os.remove(p + ".meta")
                if self.fake.has_objects_table():
                    self.fake.admin("delete from storage.objects where bucket_id = %s and name = %s", (bucket, key))
                return self.send(200, {"message": "Successfully deleted"})
        raise StorageError(404, "NotFound", "not_found", "Route %s:/%s not found" % (m, rest), http=404)

    def user_may_read(self, bucket, key):
        """Whether the signed-in caller may select the object (storage.objects under RLS)."""
        if not self.fake.has_objects_table():
            return False

        def work(cur):
            cur.execute("select 1 from storage.objects where bucket_id = %s and name = %s", (bucket, key))
            return cur.fetchone() is not None
        return self.fake.run("authenticated", work, self.claims)

    def storage_as_user(self, rest):
        """Storage for a signed-in user: reads of what storage.objects' policies show it;
        anything else is refused as Storage refuses it (a row-level security violation)."""
        m = self.command
        missing = StorageError(404, "NoSuchKey", "not_found", "Object not found")
        if rest.startswith("object/sign/") and m == "POST":
            bucket, key = self.bucket_key(rest[len("object/sign/"):])
            doc, exp = self.expires_in()
            if key is None:
                paths = doc.get("paths")
                if not isinstance(paths, list) or not 1 <= len(paths) <= 1000:
                    raise StorageError(400, "InvalidParameter", "Invalid Input", "paths must hold 1 to 1000 keys")
                out = []
                for k in paths:
                    if self.user_may_read(bucket, k) and os.path.isfile(self.obj_path(bucket, k)):
                        tok = sign_token({"url": "%s/%s" % (bucket, k), "exp": int(time.time()) + exp})
                        out.append({"error": None, "path": k,
                                    "signedURL": "/object/sign/%s/%s?token=%s" % (bucket, k, tok)})
                    else:
                        out.append({"error": "Either the object does not exist or you do not have access to it",
                                    "path": k, "signedURL": None})
                return self.send(200, out)
            if not self.user_may_read(bucket, key):
                raise missing
            self.read_object(bucket, key)
            tok = sign_token({"url": "%s/%s" % (bucket, key), "exp": int(time.time()) + exp})
            return self.send(200, {"signedURL": "/object/sign/%s/%s?token=%s" % (bucket, key, tok)})
        for prefix in ("object/authenticated/", "object/"):
            if rest.startswith(prefix) and m in ("GET", "HEAD") and not rest.startswith("object/sign/"):
                bucket, key = self.bucket_key(rest[len(prefix):])
                if key is None or not self.user_may_read(bucket, key):
                    if m == "HEAD":
                        return self.send(400, b"")
                    raise missing
                data, ctype = self.read_object(bucket, key)
                return self.send(200, data, ctype)
        raise StorageError(403, "AccessDenied", "Unauthorized", "new row violates row-level security policy")

    def token_for(self, rest):
        tok = dict(urllib.parse.parse_qsl(self.query)).get("token")
        payload = check_token(tok or "")
        bucket, key = self.bucket_key(rest)
        if not payload or payload.get("url") != "%s/%s" % (bucket, key):
            raise StorageError(400, "InvalidSignature", "InvalidSignature", "Invalid signature")
        return payload, bucket, key

    def storage_signed_get(self, rest):
        try:
            _, bucket, key = self.token_for(rest)
            data, ctype = self.read_object(bucket, key)
            return self.send(200, data, ctype)
        except StorageError as e:
            return self.send(e.http, {"statusCode": str(e.status), "code": e.code, "error": e.error,
                                      "message": e.message})

    def storage_signed_put(self, rest):
        try:
            payload, bucket, key = self.token_for(rest)
            out = self.write_object(bucket, key, payload.get("upsert", False))
            return self.send(200, {"Key": out["Key"]})
        except StorageError as e:
            return self.send(e.http, {"statusCode": str(e.status), "code": e.code, "error": e.error,
                                      "message": e.message})
