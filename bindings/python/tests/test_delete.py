"""Deleting photos, checks and users (bcd_image_delete, bcd_session_delete, bcd_user_delete)
on the local store: rows and files go, other checks and other users' data stay."""
import os

import pytest

import bcd
from conftest import image_path

ANGLES3 = ["front", "left", "right"]


def files_of(data_dir, sid):
    d = os.path.join(str(data_dir), "blobs", sid)
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def test_delete_session_removes_everything_of_it_and_nothing_else(svc, data_dir, new_session):
    first = new_session("check1", angles=ANGLES3)
    second = new_session("check2", angles=ANGLES3)
    bobs = new_session("check1", angles=ANGLES3, user="bob")
    for sid, user in ((first, None), (second, None), (bobs, "bob")):
        svc.analyze(sid, user=user)
    assert svc.analyze(second)["data"]["baseline_sessions"] == 1
    bob_files = files_of(data_dir, bobs)
    second_files = files_of(data_dir, second)
    assert files_of(data_dir, first)

    with pytest.raises(bcd.NotFoundError):
        svc.delete_session(first, user="bob")  # another user's check: not found, untouched
    assert files_of(data_dir, first)

    r = svc.delete_session(first)
    assert r["deleted"] is True and r["images_deleted"] == 3 and r["analysis_deleted"] is True
    assert r["files_deleted"] >= 3
    assert files_of(data_dir, first) == []
    with pytest.raises(bcd.NotFoundError):
        svc.get_analysis(first)
    with pytest.raises(bcd.NotFoundError):
        svc.delete_session(first)
    assert [s["session_id"] for s in svc.list_sessions()["sessions"]] == [second]
    # the other check and the other user keep everything
    assert files_of(data_dir, second) == second_files
    assert files_of(data_dir, bobs) == bob_files
    assert svc.get_analysis(bobs, user="bob")["data"]
    # the deleted check is no baseline any more
    assert svc.analyze(second)["data"]["baseline_sessions"] == 0


def test_delete_image_drops_the_analysis_and_a_photo_can_be_replaced(svc, data_dir, new_session):
    sid = new_session("check1", angles=ANGLES3)
    svc.analyze(sid)
    before = files_of(data_dir, sid)
    r = svc.delete_image(sid, "front", order_index=0)
    assert r["angle_type"] == "front" and r["order_index"] == 0 and r["analysis_deleted"] is True
    assert r["files_deleted"] >= 1
    after = files_of(data_dir, sid)
    assert len(after) < len(before)
    with pytest.raises(bcd.NotFoundError):
        svc.get_analysis(sid)
    with pytest.raises(bcd.NotFoundError) as e:
        svc.delete_image(sid, "front")
    assert e.value.code == "image_not_found"
    # the right photo in the same slot, then the check analyzes again
    added = svc.add_image(sid, "front", image_path("check1", "front"), order_index=0)
    assert added["order_index"] == 0
    assert svc.analyze(sid)["data"]["session_id"] == sid


def test_delete_image_moves_later_photos_up(svc, new_session):
    sid = new_session("check1", angles=ANGLES3, complete=False)
    svc.add_image(sid, "front", image_path("check2", "front"))
    svc.add_image(sid, "front", image_path("check2", "left"))
    r = svc.delete_image(sid, "front", order_index=1)
    assert r["order_index"] == 1
    # the third photo is now the second: adding the next one goes to index 2
    nxt = svc.add_image(sid, "front", image_path("check2", "right"))
    assert nxt["order_index"] == 2


def test_delete_user_removes_only_that_user(svc, data_dir, new_session):
    mine = [new_session("check1", angles=ANGLES3), new_session("check2", angles=ANGLES3)]
    bobs = new_session("check1", angles=ANGLES3, user="bob")
    svc.analyze(mine[0])
    r = svc.delete_user()
    assert r["sessions_deleted"] == 2 and r["images_deleted"] == 6 and r["analyses_deleted"] == 1
    assert svc.list_sessions()["sessions"] == []
    assert all(files_of(data_dir, s) == [] for s in mine)
    assert len(svc.list_sessions(user="bob")["sessions"]) == 1
    assert files_of(data_dir, bobs)
    assert svc.delete_user()["sessions_deleted"] == 0


def test_adding_to_an_analyzed_check_is_refused(svc, new_session):
    sid = new_session("check1", angles=ANGLES3)
    svc.analyze(sid)
    with pytest.raises(bcd.StateError) as e:
        svc.add_image(sid, "up", image_path("check1", "up"))
    assert e.value.code == "session_already_analyzed"
    svc.delete_image(sid, "front")
    assert svc.add_image(sid, "front", image_path("check1", "front"))["order_index"] == 0
