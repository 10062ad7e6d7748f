"""bcd.health(): the library's health document (bcd_health)."""
import socket

import bcd


def test_health_ok_for_a_local_store(tmp_path):
    with bcd.Context(load_env=False, data_dir=tmp_path / "data") as ctx:
        doc = bcd.health(ctx)
    assert doc["ok"] is True and doc["status"] == "ok"
    assert doc["version"] == bcd.library_version()
    assert doc["checks"]["store"]["status"] == "ok"
    assert doc["checks"]["store"]["data_dir"] == str(tmp_path / "data")
    assert doc["checks"]["model"]["status"] == "ok"
    assert doc["checks"]["supabase"]["status"] == "not_configured"


def test_health_reports_what_is_down_without_raising(tmp_path):
    (tmp_path / "file").write_text("x")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with bcd.Context(load_env=False, data_dir=tmp_path / "file" / "data",
                     supabase_url="http://127.0.0.1:%d" % port) as ctx:
        doc = bcd.health(ctx)
    assert doc["ok"] is False and doc["status"] == "down"
    assert doc["checks"]["store"]["status"] == "down"
    assert doc["checks"]["store"]["error"]["status"] == "io_error"
    assert doc["checks"]["supabase"]["status"] == "down"
    assert doc["checks"]["supabase"]["error"]["status"] == "network_error"
    assert doc["checks"]["model"]["status"] == "ok"
