"""bcd-cli image delete, session delete, user delete on the local store."""
import json
import os

from conftest import EXAMPLES

ANGLES3 = ["front", "left", "right"]


def ok(r):
    assert r.rc == 0, r.err
    return r.json()


def new_session(cli, user="alice", check="check1", analyze=True):
    sid = ok(cli("--json", "--user", user, "session", "create"))["session_id"]
    for a in ANGLES3:
        ok(cli("--json", "image", "add", sid, a, os.path.join(EXAMPLES, check, a + ".jpg"), "--user", user))
    ok(cli("--json", "session", "complete", sid, "--user", user))
    if analyze:
        ok(cli("--json", "analyze", sid, "--user", user))
    return sid


def blobs(tmp_path, sid):
    d = tmp_path / "data" / "blobs" / sid
    return sorted(os.listdir(d)) if d.is_dir() else []


def test_image_delete_then_add_replaces_a_photo(cli, tmp_path):
    sid = new_session(cli)
    r = ok(cli("--json", "image", "delete", sid, "left", "--order-index", "0", "--user", "alice"))
    assert r["angle_type"] == "left" and r["analysis_deleted"] is True
    assert cli("--json", "analysis", "get", sid, "--user", "alice").rc == 8
    assert cli("image", "delete", sid, "left", "--user", "alice").rc == 8
    assert cli("image", "delete", sid, "left", "--order-index", "x", "--user", "alice").rc == 2
    ok(cli("--json", "image", "add", sid, "left", os.path.join(EXAMPLES, "check2", "left.jpg"),
           "--order-index", "0", "--user", "alice"))
    ok(cli("--json", "analyze", sid, "--user", "alice"))
    # readable output by default
    r = cli("image", "delete", sid, "front", "--user", "alice")
    assert r.rc == 0 and r.out.strip()


def test_session_delete_keeps_other_checks_and_users(cli, tmp_path):
    first, second = new_session(cli), new_session(cli, check="check2")
    bobs = new_session(cli, user="bob")
    keep = {s: blobs(tmp_path, s) for s in (second, bobs)}
    assert cli("session", "delete", first, "--user", "bob").rc == 8
    r = ok(cli("--json", "session", "delete", first, "--user", "alice"))
    assert r["deleted"] is True and r["images_deleted"] == 3
    assert blobs(tmp_path, first) == []
    assert {s: blobs(tmp_path, s) for s in (second, bobs)} == keep
    ids = [s["session_id"] for s in ok(cli("--json", "session", "list", "--user", "alice"))["sessions"]]
    assert ids == [second]
    again = ok(cli("--json", "analyze", second, "--user", "alice"))
    assert again["data"]["baseline_sessions"] == 0  # the deleted check is no baseline


def test_user_delete_needs_yes_and_spares_others(cli, tmp_path):
    mine = [new_session(cli, analyze=False), new_session(cli, check="check2")]
    bobs = new_session(cli, user="bob", analyze=False)
    r = cli("user", "delete", "--user", "alice")
    assert r.rc == 2 and "--yes" in r.error()["message"]
    assert all(blobs(tmp_path, s) for s in mine)
    r = ok(cli("--json", "user", "delete", "--yes", "--user", "alice"))
    assert r["sessions_deleted"] == 2 and r["images_deleted"] == 6
    assert ok(cli("--json", "session", "list", "--user", "alice"))["sessions"] == []
    assert all(blobs(tmp_path, s) == [] for s in mine)
    assert len(ok(cli("--json", "session", "list", "--user", "bob"))["sessions"]) == 1
    assert blobs(tmp_path, bobs)
    for cmd in (["image", "delete"], ["session", "delete"], ["user", "delete"]):
        r = cli(*cmd, "--help")
        assert r.rc == 0 and "Usage" in r.out
    json.dumps(r.out)


def test_adding_to_an_analyzed_check_is_refused(cli, tmp_path):
    sid = new_session(cli)
    r = cli("image", "add", sid, "up", os.path.join(EXAMPLES, "check1", "up.jpg"), "--user", "alice")
    assert r.rc == 10
    e = r.error()
    assert e["code"] == "session_already_analyzed" and "image delete" in e["message"]
    r = cli("image", "register", sid, "up", sid + "/" + "0" * 64 + ".jpg", "--user", "alice")
    assert r.rc == 10 and r.error()["code"] == "session_already_analyzed"
    # the same photo again changes nothing and is fine
    ok(cli("--json", "image", "add", sid, "front", os.path.join(EXAMPLES, "check1", "front.jpg"), "--user", "alice"))
    # a completed check not yet analyzed still takes photos
    other = new_session(cli, check="check2", analyze=False)
    ok(cli("--json", "image", "add", other, "up", os.path.join(EXAMPLES, "check2", "up.jpg"), "--user", "alice"))
