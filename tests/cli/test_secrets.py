"""Secrets never appear in output: every command group of bcd-cli runs with a planted
service-role key and planted user tokens in the environment and in .env, and everything it
prints and every file it writes (store folder, database, HTML report, heatmaps) is searched for
them, as text and in base64.

Remote calls go to a stub server that is as unhelpful as a server can be: every answer is
an error whose body and headers repeat the credentials it received, so a message built from
a server's reply would carry the key if the library did not scrub it."""
import base64
import json
import os
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import EXAMPLES
from test_cli_auth import Signer, claims

ANGLES = ["front", "left", "right", "up", "down", "raised"]


def legacy_key(tag):
    """A service_role key shaped like Supabase's legacy JWT keys (random payload and signature)."""
    payload = base64.urlsafe_b64encode(json.dumps({"role": "service_role", "ref": tag + uuid.uuid4().hex}).encode())
    sig = base64.urlsafe_b64encode(os.urandom(32))
    return "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." + payload.decode().rstrip("=") + "." + sig.decode().rstrip("=")


def forms(secret):
    """The secret and the distinctive parts of its encodings: each JWT segment except the
    common header, and base64 / base64url of it at every alignment (the outer 4 characters,
    which depend on the neighbouring bytes, cut off)."""
    s = secret.encode()
    out = {s}
    parts = secret.split(".")
    if len(parts) == 3:
        out.update(p.encode() for p in parts[1:] if len(p) >= 16)
    for k in range(3):
        for enc in (base64.b64encode, base64.urlsafe_b64encode):
            e = enc(b"\0" * k + s + b"\0\0\0")
            mid = e[4 if k else 0:-8]
            out.add(mid.rstrip(b"="))
    return {f for f in out if len(f) >= 16}


class Echo(BaseHTTPRequestHandler):
    """Answers every request with an error that quotes the request's credentials."""

    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        creds = {k: self.headers.get(k, "") for k in ("apikey", "Authorization")}
        self.server.seen.append(creds)
        body = json.dumps({"code": "PGRST301", "message": "Invalid API key: " + creds["apikey"],
                           "details": "Authorization was " + creds["Authorization"],
                           "hint": creds["apikey"], "statusCode": "401", "error": creds["Authorization"]}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("WWW-Authenticate", "Bearer " + creds["apikey"])
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = handle_any

    def log_message(self, *args):
        pass


@pytest.fixture
def echo():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    srv.seen = []
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def files_under(root, skip):
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            if p not in skip and os.path.isfile(p):
                yield p


@pytest.mark.parametrize("where", ["environment", "dotenv"])
def test_no_secret_in_any_output(cli, tmp_path, echo, where):
    signer = Signer(tmp_path)
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(signer.jwks("key-1")))
    stub = "http://127.0.0.1:%d" % echo.server_address[1]
    user_token = signer.token(claims(iss=stub + "/auth/v1"))               # valid, verified with jwks
    stale_token = signer.token(claims(iss=stub + "/auth/v1", exp_in=-3600))  # expired
    key_env, key_file = legacy_key("env"), legacy_key("file")
    other_env, other_file = "sk-or-v1-" + uuid.uuid4().hex, "sk-or-v1-" + uuid.uuid4().hex

    dotenv = {"SUPABASE_URL": stub, "SUPABASE_SERVICE_ROLE_KEY": key_file, "SUPABASE_STORAGE_BUCKET": "bcd-images",
              "OPENROUTER_API_KEY": other_file, "BCD_TOKEN": user_token, "SUPABASE_ACCESS_TOKEN": stale_token}
    (tmp_path / ".env").write_text("".join("%s=%s\n" % kv for kv in dotenv.items()))
    env = {"BCD_HTTP_CONNECT_TIMEOUT_MS": "2000", "BCD_HTTP_TIMEOUT_MS": "5000",
           "BCD_ENV_FILE": str(tmp_path / ".env")}
    secrets = [key_file, other_file, user_token, stale_token]
    if where == "environment":
        env.update({"SUPABASE_URL": stub, "SUPABASE_SERVICE_ROLE_KEY": key_env, "OPENROUTER_API_KEY": other_env,
                    "BCD_TOKEN": user_token, "SUPABASE_ACCESS_TOKEN": stale_token})
        secrets += [key_env, other_env]
    inputs = {str(tmp_path / ".env"), str(jwks)}

    runs = []

    def run(*args, store="local", expect=None):
        r = cli(*map(str, args), "--store", store, env_extra=env)
        runs.append((args, r))
        if expect is not None:
            assert r.rc == expect, (args, r.rc, r.err)
        return r

    def out(*args, **kw):
        return json.loads(run("--json", *args, expect=0, **kw).out)

    # configuration and health (Supabase configured: its check meets the stub)
    assert "<set>" in run("config", expect=0).out
    run("health", expect=13)
    # sessions, images, analysis, comparison, jobs, reports: the local store
    sids = []
    for check in ("check1", "check2"):
        sid = out("session", "create", "--user", "alice")["session_id"]
        for a in ANGLES:
            out("image", "add", sid, a, os.path.join(EXAMPLES, check, a + ".jpg"), "--user", "alice")
        out("session", "complete", sid, "--user", "alice")
        sids.append(sid)
    third = out("session", "create", "--user", "alice")["session_id"]
    out("image", "register", third, "front", "/photos/front.jpg", "--user", "alice")
    out("session", "list", "--user", "alice")
    out("session", "info", sids[1], "--user", "alice")
    out("session", "thumbnails", sids[1], "--user", "alice")
    out("image", "preview", sids[1], "left", "--user", "alice")
    out("analyze", sids[0], "--user", "alice")
    job = out("analyze", sids[1], "--async", "--user", "alice")["job_id"]
    out("worker", "--drain")
    out("job", "status", job, "--user", "alice")
    out("analysis", "get", sids[1], "--user", "alice")
    out("compare", sids[1], sids[0], "--user", "alice", "--heatmaps", tmp_path / "heatmaps")
    out("report", sids[1], "--user", "alice", "--html", tmp_path / "report.html")
    run("report", sids[1], "--user", "alice", expect=0)
    out("history", "--user", "alice")
    # tokens: verified caller, a rejected one, and the same through --token
    who = out("auth", "verify", user_token, "--jwks", jwks)
    assert who["user_id"] == claims()["sub"]
    run("auth", "verify", stale_token, "--jwks", jwks, expect=12)
    run("auth", "verify", user_token, expect=13)  # no --jwks: the key set is fetched from the stub
    run("session", "list", "--token", user_token, "--jwks", jwks, expect=0)
    run("session", "list", "--token", stale_token, "--jwks", jwks, expect=12)
    # errors
    run("session", "info", "not-a-uuid", "--user", "alice", expect=3)
    run("session", "info", str(uuid.uuid4()), "--user", "alice", expect=8)
    run("image", "add", sids[0], "sideways", jwks, "--user", "alice", expect=3)
    run("image", "add", sids[0], "front", jwks, "--user", "alice", expect=6)
    run("image", "upload-url", sids[0], "front", "a.jpg", "--user", "alice", expect=11)
    run("frobnicate", expect=2)
    # the supabase store against the stub: every call fails with the key quoted back
    user = str(uuid.uuid4())
    for args in (("session", "create"), ("session", "list"), ("session", "info", sids[0]),
                 ("image", "preview", sids[0], "front"), ("image", "upload-url", sids[0], "front", "a.jpg"),
                 ("analyze", sids[0]), ("history",), ("job", "status", str(uuid.uuid4()))):
        r = run(*args, "--user", user, store="supabase")
        assert r.rc in (12, 13), (args, r.rc, r.err)
    run("health", store="supabase", expect=12)
    run("config", store="supabase", expect=0)

    # the stub did receive the key: what it sent back was worth scrubbing
    used_key = key_env if where == "environment" else key_file
    assert any(used_key in c["apikey"] for c in echo.seen)
    assert any("[redacted]" in r.err for _, r in runs)

    needles = {f: s for s in secrets for f in forms(s)}
    for args, r in runs:
        for stream in (r.out, r.err):
            for f, s in needles.items():
                assert f.decode() not in stream, "%s printed by %s" % (s[:12], args)
    written = list(files_under(str(tmp_path), inputs))
    assert any(p.endswith("bcd.sqlite3") for p in written) and str(tmp_path / "report.html") in written
    assert any(p.startswith(str(tmp_path / "heatmaps") + os.sep) for p in written)
    for p in written:
        data = open(p, "rb").read()
        for f, s in needles.items():
            assert f not in data, "%s written to %s" % (s[:12], p)
