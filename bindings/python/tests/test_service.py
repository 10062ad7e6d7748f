"""Every session operation through bcd.Service, and its errors with their codes."""
import os
import uuid

import pytest

import bcd
from conftest import ANGLES, MISSING, image_path


def test_create_session(svc):
    doc = svc.create_session()
    assert doc["status"] == "created" and doc["user_id"] == "alice"
    assert uuid.UUID(doc["session_id"])


def test_main_job_end_to_end(svc, new_session):
    first = new_session("check1")
    second = new_session("check2")
    a1 = svc.analyze(first)
    assert a1["success"] is True
    d1 = a1["data"]
    assert d1["session_id"] == first and d1["overwritten"] is False
    assert d1["scores"]["change_score"] == 0
    assert {p["angle_type"] for p in d1["session_analysis"]["per_angle"]} == set(ANGLES)

    d2 = svc.analyze(second, model="builtin")["data"]
    assert d2["scores"]["change_score"] > 0
    assert 0 < d2["scores"]["confidence"] <= 1

    cmp = svc.compare(second, first)["data"]
    assert cmp["current_session_id"] == second and cmp["previous_session_id"] == first
    assert cmp["comparison_method"] == "embedding"
    assert cmp["overall_trend"] == bcd.trend_label(cmp["overall_delta"])
    assert cmp["stability_index"] == pytest.approx(max(0.0, 1 - cmp["overall_delta"]))
    for p in cmp["per_angle"]:
        assert p["delta"] == pytest.approx(p["current_score"] - p["previous_score"])

    stored = svc.get_analysis(second)["data"]["session_analysis"]
    assert stored["overall_change_score"] == pytest.approx(d2["scores"]["change_score"])

    lesions = svc.get_lesions(second)["data"]
    assert lesions["previous_session_id"] == first
    left = next(a for a in lesions["angles"] if a["angle_type"] == "left")
    assert left["status"] == "compared" and left["changed"] == 2
    assert {les["state"] for les in left["lesions"] if les["changed"]} == {"matched", "new"}
    assert all(a["changed"] == 0 for a in lesions["angles"] if a["angle_type"] != "left")

    info = svc.session_info(second)
    assert info["previous_session_id"] == first and info["is_current"] is True
    assert info["is_first_session"] is False and info["total_sessions"] == 2
    assert svc.session_info(first)["is_first_session"] is True

    lst = svc.list_sessions()
    assert lst["count"] == 2 and [s["session_id"] for s in lst["sessions"]] == [first, second]
    assert all(s["analyzed"] for s in lst["sessions"])

    prev = svc.image_preview(first, "left")
    assert prev["image_type"] == "left" and os.path.isfile(prev["path"])
    assert prev["preview_url"].startswith("file://")

    th = svc.session_thumbnails(first)
    assert th["count"] == 6 and set(th["thumbnails"]) == set(ANGLES)
    assert all(os.path.isfile(p) for p in th["paths"].values())

    assert svc.analyze(second)["data"]["overwritten"] is True


def test_session_ids_may_be_uuid_objects(svc):
    sid = uuid.UUID(svc.create_session()["session_id"])
    assert svc.session_info(sid)["session_id"] == str(sid)


def test_add_image_result_and_idempotence(svc):
    sid = svc.create_session()["session_id"]
    doc = svc.add_image(sid, "front", image_path("check1", "front"))
    assert doc["created"] is True and doc["order_index"] == 0
    assert doc["width"] == 600 and doc["height"] == 800 and len(doc["sha256"]) == 64
    again = svc.add_image(sid, "front", image_path("check1", "front"))
    assert again["created"] is False


def test_add_same_bytes_to_another_angle_is_a_conflict(svc):
    sid = svc.create_session()["session_id"]
    svc.add_image(sid, "front", image_path("check1", "front"))
    with pytest.raises(bcd.ConflictError) as ei:
        svc.add_image(sid, "left", image_path("check1", "front"))
    assert ei.value.code == "duplicate_image" and ei.value.status == bcd.status.ECONFLICT


def test_register_image_rules(svc):
    sid = svc.create_session()["session_id"]
    r = svc.register_image(sid, "front", "/photos/a.jpg")
    assert r["created"] is True and r["order_index"] == 0 and r["ok"] is True
    assert svc.register_image(sid, "front", "/photos/a.jpg")["created"] is False
    with pytest.raises(bcd.ConflictError) as ei:
        svc.register_image(sid, "front", "/photos/b.jpg", order_index=0)
    assert ei.value.code == "slot_conflict"
    with pytest.raises(bcd.ConflictError) as ei:
        svc.register_image(sid, "front", "/photos/c.jpg", order_index=5)
    assert ei.value.code == "order_index_out_of_sequence"
    assert ei.value.details.get("expected_order_index") == 1
    assert svc.register_image(sid, "front", "/photos/c.jpg", order_index=1)["order_index"] == 1


def test_invalid_arguments_have_codes(svc):
    sid = svc.create_session()["session_id"]
    cases = [
        (lambda: svc.add_image(sid, "sideways", image_path("check1", "front")), "invalid_angle"),
        (lambda: svc.session_info("not-a-uuid"), "invalid_session_id"),
        (lambda: svc.create_session(user=""), "invalid_user_id"),
        (lambda: svc.create_session(user="a\x01b"), "invalid_user_id"),
        (lambda: svc.compare(sid, sid), "same_session"),
    ]
    for call, code in cases:
        with pytest.raises(bcd.InvalidArgumentError) as ei:
            call()
        assert ei.value.code == code, code
        assert ei.value.status == bcd.status.EINVAL


def test_user_is_required(data_dir):
    with bcd.open_store(data_dir, load_env=False) as s:
        with pytest.raises(bcd.InvalidArgumentError) as ei:
            s.create_session()
        assert ei.value.code == "invalid_user_id"
        assert s.create_session(user="bob")["user_id"] == "bob"


def test_another_users_session_is_not_found(svc, new_session):
    sid = new_session("check1")
    for call in (lambda: svc.session_info(sid, user="mallory"),
                 lambda: svc.analyze(sid, user="mallory"),
                 lambda: svc.session_thumbnails(sid, user="mallory"),
                 lambda: svc.image_preview(sid, "front", user="mallory"),
                 lambda: svc.add_image(sid, "front", image_path("check2", "front"), user="mallory")):
        with pytest.raises(bcd.NotFoundError) as ei:
            call()
        assert ei.value.code == "session_not_found"
        assert isinstance(ei.value, LookupError)


def test_missing_session_and_analysis(svc):
    with pytest.raises(bcd.NotFoundError) as ei:
        svc.get_analysis(MISSING)
    assert ei.value.code == "session_not_found"
    sid = svc.create_session()["session_id"]
    with pytest.raises(bcd.NotFoundError) as ei:
        svc.get_analysis(sid)
    assert ei.value.code == "analysis_not_found"
    with pytest.raises(bcd.NotFoundError) as ei:
        svc.image_preview(sid, "front")
    assert ei.value.code == "image_not_found"


def test_complete_needs_three_angles(svc, new_session):
    sid = new_session(angles=["front", "left"], complete=False)
    with pytest.raises(bcd.StateError) as ei:
        svc.complete_session(sid)
    e = ei.value
    assert e.code == "insufficient_angles" and e.status == bcd.status.ESTATE
    assert isinstance(e.details, dict) and e.details


def test_analyze_needs_a_completed_session(svc, new_session):
    sid = new_session(complete=False)
    with pytest.raises(bcd.StateError) as ei:
        svc.analyze(sid)
    assert ei.value.code == "session_not_completed"
    done = svc.complete_session(sid)
    assert done["status"] == "completed" and done["already_completed"] is False
    assert svc.complete_session(sid)["already_completed"] is True


def test_compare_needs_analyzed_sessions(svc, new_session):
    a, b = new_session("check1"), new_session("check2")
    svc.analyze(a)
    with pytest.raises(bcd.StateError) as ei:
        svc.compare(b, a)
    assert ei.value.code == "session_not_analyzed"


def test_adding_a_non_image_is_a_format_error_and_stores_nothing(svc, tmp_path):
    sid = svc.create_session()["session_id"]
    bad = tmp_path / "notes.jpg"
    bad.write_bytes(b"this is not a JPEG at all" * 10)
    with pytest.raises(bcd.FormatError) as ei:
        svc.add_image(sid, "front", bad)
    assert ei.value.status == bcd.status.EFORMAT
    assert svc.list_sessions()["sessions"][0]["image_count"] == 0


def test_adding_a_missing_file_is_not_found(svc, tmp_path):
    sid = svc.create_session()["session_id"]
    with pytest.raises(bcd.NotFoundError):
        svc.add_image(sid, "front", tmp_path / "nope.jpg")


def test_analyze_with_a_missing_registered_file_fails_cleanly(data_dir, tmp_path):
    with bcd.open_store(data_dir, user="alice", load_env=False, image_dirs=str(tmp_path)) as svc:
        _analyze_with_a_missing_registered_file(svc, tmp_path)


def test_registered_files_are_read_only_in_image_dirs(svc):
    sid = svc.create_session()["session_id"]
    for a in ("front", "left"):
        svc.add_image(sid, a, image_path("check1", a))
    svc.register_image(sid, "right", "/nonexistent/right.jpg")
    svc.complete_session(sid)
    with pytest.raises(bcd.InvalidArgumentError) as ei:
        svc.analyze(sid)
    assert ei.value.code == "image_path_not_allowed"


def _analyze_with_a_missing_registered_file(svc, tmp_path):
    sid = svc.create_session()["session_id"]
    for a in ("front", "left"):
        svc.add_image(sid, a, image_path("check1", a))
    svc.register_image(sid, "right", str(tmp_path / "nonexistent" / "right.jpg"))
    svc.complete_session(sid)
    with pytest.raises(bcd.NotFoundError) as ei:
        svc.analyze(sid)
    assert ei.value.code == "image_file_missing"
    with pytest.raises(bcd.NotFoundError):
        svc.get_analysis(sid)


def test_unsupported_model(svc, new_session, tmp_path):
    sid = new_session()
    with pytest.raises((bcd.UnsupportedError, bcd.NotFoundError, bcd.FormatError)):
        svc.analyze(sid, model=str(tmp_path / "missing.pt"))


def test_supabase_store_without_configuration_fails_clearly(tmp_path):
    with pytest.raises((bcd.UnsupportedError, bcd.InvalidArgumentError)) as ei:
        bcd.open_store(tmp_path, load_env=False, store="supabase")
    assert ei.value.code in ("store_unsupported", "supabase_not_configured")


def test_service_over_a_shared_context_and_closing(data_dir):
    with bcd.Context(load_env=False, data_dir=data_dir) as ctx:
        with bcd.Service(ctx, user="alice") as a, bcd.Service(ctx, user="bob") as b:
            sa = a.create_session()["session_id"]
            b.create_session()
            with pytest.raises(bcd.NotFoundError):
                b.session_info(sa)
        assert a.closed and not ctx.closed
        with pytest.raises(bcd.StateError):
            a.list_sessions()
    assert ctx.closed


def test_open_store_closes_its_own_context(data_dir):
    s = bcd.open_store(data_dir, user="alice", load_env=False)
    ctx = s.context
    s.close()
    assert ctx.closed and s.closed
    s.close()


def test_service_without_ctx_reads_the_environment(monkeypatch, data_dir):
    monkeypatch.setenv("BCD_DATA_DIR", str(data_dir))
    with bcd.Service(user="alice") as s:
        s.create_session()
        assert s.context.get("data_dir") == str(data_dir)
    assert s.context.closed
    assert (data_dir).is_dir()


def test_upload_url_is_unsupported_on_the_local_store(svc):
    sid = svc.create_session()["session_id"]
    with pytest.raises(bcd.UnsupportedError) as ei:
        svc.upload_url(sid, "front", "front.jpg")
    assert ei.value.code in ("store_unsupported", "not_in_library")
