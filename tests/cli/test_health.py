"""bcd-cli health: every check with its status, and a non-zero exit when a required one is down."""
import http.server
import json
import os
import shutil
import socket
import sqlite3
import threading

import pytest


def free_port():
    """A loopback port with no listener (bound, then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class _Jwks(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.paths.append(self.path)
        self.server.headers_seen.append(dict(self.headers))
        body = b'{"keys":[]}' if self.path == "/auth/v1/.well-known/jwks.json" else b"{}"
        self.send_response(200 if body != b"{}" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def jwks_server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Jwks)
    srv.paths, srv.headers_seen = [], []
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def health(cli, *args, env_extra=None):
    r = cli("--json", "health", *args, env_extra=env_extra)
    return r, json.loads(r.out)


def test_health_of_a_local_store(cli, tmp_path):
    r, doc = health(cli)
    assert r.rc == 0, r.err
    assert doc["status"] == "ok" and doc["ok"] is True
    assert doc["version"] in cli("--version").out
    store, model, sb = doc["checks"]["store"], doc["checks"]["model"], doc["checks"]["supabase"]
    assert store["status"] == "ok" and store["required"] is True and store["backend"] == "local"
    assert store["data_dir"] == str(tmp_path / "data") and store["schema_version"] >= 1
    assert model["status"] == "ok" and model["name"].startswith("builtin") and model["dim"] > 0
    assert sb == {"status": "not_configured", "required": False}
    # the write probe leaves nothing behind (.pending is the store's own folder of blobs
    # being added: empty)
    blobs = tmp_path / "data" / "blobs"
    assert [f for f in os.listdir(blobs) if f != ".pending"] == []
    assert os.listdir(blobs / ".pending") == []
    # readable text without --json
    t = cli("health")
    assert t.rc == 0 and "status: ok" in t.out


def test_health_store_unreachable(cli, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    r, doc = health(cli, "--data-dir", tmp_path / "file" / "data")
    assert r.rc == 5
    store = doc["checks"]["store"]
    assert doc["ok"] is False and doc["status"] == "down"
    assert store["status"] == "down" and store["error"]["status"] == "io_error"
    assert doc["checks"]["model"]["status"] == "ok"  # one failure hides no other check
    env = r.error()
    assert env["code"] == "io_error" and "store check down" in env["message"]


def test_health_damaged_database(cli, tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "bcd.sqlite3").write_bytes(b"this is not an SQLite database, just text " * 20)
    os.chmod(d / "bcd.sqlite3", 0o600)
    r, doc = health(cli, "--data-dir", d)
    assert r.rc == 6
    assert doc["checks"]["store"]["error"]["code"] == "store_corrupt"


def test_health_schema_newer_or_broken(cli, tmp_path):
    assert cli("health", "--data-dir", tmp_path / "a").rc == 0
    db = sqlite3.connect(str(tmp_path / "a" / "bcd.sqlite3"))
    db.execute("PRAGMA user_version = 999")
    db.commit()
    db.close()
    r, doc = health(cli, "--data-dir", tmp_path / "a")
    assert r.rc == 11
    assert doc["checks"]["store"]["error"]["code"] == "store_schema_too_new"

    assert cli("health", "--data-dir", tmp_path / "b").rc == 0
    db = sqlite3.connect(str(tmp_path / "b" / "bcd.sqlite3"))
    db.execute("PRAGMA foreign_keys = OFF")
    db.execute("DROP TABLE sessions")
    db.commit()
    db.close()
    r, doc = health(cli, "--data-dir", tmp_path / "b")
    assert r.rc == 5
    assert doc["checks"]["store"]["status"] == "down"
    assert "sessions" in doc["checks"]["store"]["error"]["message"]


def test_health_blob_folder_unwritable(cli, tmp_path):
    assert cli("health").rc == 0
    blobs = tmp_path / "data" / "blobs"
    if os.geteuid() != 0:
        os.chmod(blobs, 0o500)
    else:  # root writes into read-only folders, but nobody creates files in /proc
        shutil.rmtree(blobs)
        os.symlink("/proc/self", blobs)
    try:
        r, doc = health(cli)
    finally:
        if os.geteuid() != 0:
            os.chmod(blobs, 0o700)
    assert r.rc == 5
    # found by the health probe, or already by the store's open (its folder of pending blobs)
    err = doc["checks"]["store"]["error"]
    assert err["code"] in ("store_unwritable", "data_dir_unavailable")
    assert "blobs" in err["message"]


def test_health_model_missing(cli, tmp_path):
    r, doc = health(cli, "--model", tmp_path / "missing.pt")
    assert r.rc == 8
    assert doc["checks"]["model"]["status"] == "down"
    assert doc["checks"]["model"]["error"]["code"] == "model_not_found"
    assert doc["checks"]["store"]["status"] == "ok"


def test_health_supabase_configured_but_unreachable(cli):
    url = "http://127.0.0.1:%d" % free_port()
    r, doc = health(cli, env_extra={"SUPABASE_URL": url})
    assert r.rc == 13
    sb = doc["checks"]["supabase"]
    assert sb["status"] == "down" and sb["required"] is True
    assert sb["error"]["status"] == "network_error"
    assert doc["checks"]["store"]["status"] == "ok"  # the local store is fine
    assert "supabase check down" in r.error()["message"]


def test_health_supabase_store_unreachable(cli):
    url = "http://127.0.0.1:%d" % free_port()
    key = "sb_secret_health_probe_key_0123456789"
    r, doc = health(cli, "--store", "supabase",
                    env_extra={"SUPABASE_URL": url, "SUPABASE_SERVICE_ROLE_KEY": key,
                               "BCD_HTTP_CONNECT_TIMEOUT_MS": "2000"})
    assert r.rc == 13
    assert doc["checks"]["store"]["backend"] == "supabase"
    assert doc["checks"]["store"]["status"] == "down"
    assert doc["checks"]["supabase"]["status"] == "down"
    assert key not in r.out and key not in r.err


def test_health_supabase_reachable(cli, jwks_server):
    url = "http://127.0.0.1:%d/" % jwks_server.server_address[1]
    key = "sb_secret_never_sent_to_the_jwks_endpoint"
    r, doc = health(cli, env_extra={"SUPABASE_URL": url, "SUPABASE_SERVICE_ROLE_KEY": key})
    assert r.rc == 0, r.err
    assert doc["checks"]["supabase"] == {"required": True, "http_status": 200, "status": "ok"}
    assert jwks_server.paths == ["/auth/v1/.well-known/jwks.json"]
    # the service-role key is not sent to a public endpoint
    assert all(key not in json.dumps(h) for h in jwks_server.headers_seen)


def test_health_supabase_http_error(cli, jwks_server):
    url = "http://127.0.0.1:%d/elsewhere" % jwks_server.server_address[1]
    r, doc = health(cli, env_extra={"SUPABASE_URL": url})
    assert r.rc == 13
    sb = doc["checks"]["supabase"]
    assert sb["http_status"] == 404 and sb["error"]["code"] == "supabase_http_status"
