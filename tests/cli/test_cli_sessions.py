"""bcd-cli session commands on the local store: the main job end to end, and its errors."""
import json
import os

import pytest
from conftest import EXAMPLES, TESTDATA

ANGLES = ["front", "left", "right", "up", "down", "raised"]


def ok(r):
    assert r.rc == 0, r.err
    return r.json()


def new_session(cli, user="alice", check="check1", angles=ANGLES, complete=True):
    sid = ok(cli("--json", "--user", user, "session", "create"))["session_id"]
    for a in angles:
        ok(cli("image", "add", sid, a, os.path.join(EXAMPLES, check, a + ".jpg"), "--user", user, "--json"))
    if complete:
        ok(cli("--json", "session", "complete", sid, "--user", user))
    return sid


def test_create_prints_id_and_status(cli):
    doc = ok(cli("--json", "--user", "alice", "session", "create"))
    assert doc["status"] == "created"
    assert len(doc["session_id"]) == 36


def test_main_job_end_to_end(cli):
    first = new_session(cli, check="check1")
    second = new_session(cli, check="check2")
    a1 = ok(cli("--json", "--user", "alice", "analyze", first))
    assert a1["success"] is True
    d1 = a1["data"]
    assert d1["session_id"] == first and d1["overwritten"] is False
    assert d1["scores"]["change_score"] == 0
    assert "baseline" in d1["session_analysis"]["overall_summary"].lower()
    assert {p["angle_type"] for p in d1["session_analysis"]["per_angle"]} == set(ANGLES)
    assert 0 < d1["scores"]["confidence"] <= 1

    d2 = ok(cli("--json", "--user", "alice", "analyze", second))["data"]
    scores = {p["angle_type"]: p["change_score"] for p in d2["session_analysis"]["per_angle"]}
    assert all(s >= 0 for s in scores.values())
    assert d2["scores"]["change_score"] > 0

    cmp = ok(cli("--json", "--user", "alice", "compare", second, first))["data"]
    assert cmp["comparison_method"] == "embedding"
    assert cmp["overall_trend"] in ("stable", "mild_variation", "significant_shift")
    assert abs(cmp["stability_index"] - (1 - cmp["overall_delta"])) < 1e-9
    for p in cmp["per_angle"]:
        assert abs(p["delta"] - (p["current_score"] - p["previous_score"])) < 1e-9
        assert abs(p["delta_magnitude"] - abs(p["delta"])) < 1e-9

    info = ok(cli("--json", "--user", "alice", "session", "info", second))
    assert info["previous_session_id"] == first
    assert info["is_current"] is True and info["is_first_session"] is False
    assert info["total_sessions"] == 2
    info1 = ok(cli("--json", "--user", "alice", "session", "info", first))
    assert info1["is_first_session"] is True and info1["previous_session_id"] is None

    stored = ok(cli("--json", "--user", "alice", "analysis", "get", second))["data"]["session_analysis"]
    assert stored["overall_change_score"] == pytest.approx(d2["scores"]["change_score"])

    thumbs = ok(cli("--json", "--user", "alice", "session", "thumbnails", first))
    assert thumbs["count"] == 6
    for a in ANGLES:
        assert thumbs["thumbnails"][a].startswith("file://")
        assert os.path.isfile(thumbs["paths"][a])
    prev = ok(cli("--json", "--user", "alice", "image", "preview", first, "left"))
    assert os.path.isfile(prev["path"])

    lst = ok(cli("--json", "--user", "alice", "session", "list"))
    assert [s["session_id"] for s in lst["sessions"]] == [first, second]

    # re-analysis replaces the stored result
    again = ok(cli("--json", "--user", "alice", "analyze", second))["data"]
    assert again["overwritten"] is True


def test_readable_text_by_default(cli):
    sid = new_session(cli)
    r = cli("--user", "alice", "analyze", sid)
    assert r.rc == 0
    assert "overall summary" in r.out
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.out)


def test_other_users_session_is_not_found(cli):
    sid = new_session(cli, user="alice")
    r = cli("--user", "mallory", "session", "info", sid)
    assert r.rc == 8
    assert r.error()["code"] == "session_not_found"
    r = cli("--user", "mallory", "analyze", sid)
    assert r.rc == 8


def test_analyze_requires_completed_session(cli):
    sid = new_session(cli, complete=False)
    r = cli("--user", "alice", "analyze", sid)
    assert r.rc == 10
    assert r.error()["code"] == "session_not_completed"


def test_complete_requires_three_angles(cli):
    sid = new_session(cli, angles=["front", "left"], complete=False)
    r = cli("--user", "alice", "session", "complete", sid)
    assert r.rc == 10
    assert r.error()["code"] == "insufficient_angles"


def test_bad_input_errors(cli):
    sid = new_session(cli, angles=[], complete=False)
    front = os.path.join(EXAMPLES, "check1", "front.jpg")
    r = cli("--user", "alice", "image", "add", sid, "sideways", front)
    assert r.rc == 3 and r.error()["code"] == "invalid_angle"
    r = cli("--user", "alice", "session", "info", "not-a-uuid")
    assert r.rc == 3 and r.error()["code"] == "invalid_session_id"
    r = cli("--user", "alice", "image", "add", sid, "front", os.path.join(TESTDATA, "images", "jpeg", "bad-truncated-in-scan.jpg"))
    assert r.rc == 6
    r = cli("--user", "alice", "image", "add", sid, "front", front, "--order-index", "x")
    assert r.rc == 2


def test_register_rules(cli):
    sid = new_session(cli, angles=[], complete=False)
    reg = lambda path, idx: cli("--json", "--user", "alice", "image", "register", sid, "front", path, "--order-index", idx)
    first = ok(reg("u/s/front-0.jpg", 0))
    assert first["ok"] is True and first["created"] is True
    again = ok(reg("u/s/front-0.jpg", 0))
    assert again["created"] is False
    r = reg("u/s/front-2.jpg", 2)
    assert r.rc == 9 and r.error()["code"] == "order_index_out_of_sequence"
    r = reg("u/s/other.jpg", 0)
    assert r.rc == 9 and r.error()["code"] == "slot_conflict"
    ok(reg("u/s/front-1.jpg", 1))


def test_analysis_get_before_analysis(cli):
    sid = new_session(cli)
    r = cli("--user", "alice", "analysis", "get", sid)
    assert r.rc == 8


def test_data_dir_option_and_env(cli, tmp_path):
    d = tmp_path / "elsewhere"
    sid = ok(cli("--json", "--user", "bob", "--data-dir", d, "session", "create"))["session_id"]
    assert ok(cli("--json", "--user", "bob", "session", "list", env_extra={"BCD_DATA_DIR": str(d)}))["count"] == 1
    assert ok(cli("--json", "--user", "bob", "session", "list"))["count"] == 0
    r = cli("--user", "bob", "session", "info", sid, "--store", "supabase")
    assert r.rc != 0
