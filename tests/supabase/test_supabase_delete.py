"""Deleting on the supabase store: a photo (with the check's analysis and the objects made
from it), a check, everything of a user; other users' data and other checks untouched."""
import os

from conftest import EXAMPLES, analysis_blobs, new_session, new_user, ok

ANGLES3 = ["front", "left", "right"]


def objects(project, sid):
    d = os.path.join(project.storage, "bcd-images", sid)
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def rows(project, table, sid):
    col = "id" if table == "sessions" else "session_id"
    return project.query("select count(*) from %s where %s = %%s" % (table, col), (sid,))[0][0]


def test_delete_image_then_add_replaces_a_photo(sb, project):
    user = new_user()
    sid = new_session(sb, user, angles=ANGLES3)
    ok(sb("--json", "--user", user, "analyze", sid))
    derived = analysis_blobs(project, sid)
    assert derived
    front = project.query("select storage_path from images where session_id = %s and image_type = 'front'",
                          (sid,))[0][0]
    # adding to the analyzed check is refused
    r = sb("--user", user, "image", "add", sid, "up", os.path.join(EXAMPLES, "check1", "up.jpg"))
    assert r.rc == 10 and r.error()["code"] == "session_already_analyzed"
    r = ok(sb("--json", "--user", user, "image", "delete", sid, "front", "--order-index", "0"))
    assert r["analysis_deleted"] is True and r["angle_type"] == "front"
    assert r["files_deleted"] >= 1 + len([k for k in derived if k.startswith(sid + "/")]) - 1
    assert rows(project, "images", sid) == 2 and rows(project, "session_analysis", sid) == 0
    assert rows(project, "angle_embeddings", sid) == 0
    left = set(objects(project, sid))
    assert front.split("/")[1] not in left
    assert not any(k.split("/")[1] in left for k in derived)
    assert sb("--user", user, "image", "delete", sid, "front").rc == 8
    ok(sb("--json", "--user", user, "image", "add", sid, "front", os.path.join(EXAMPLES, "check2", "front.jpg"),
          "--order-index", "0"))
    ok(sb("--json", "--user", user, "analyze", sid))


def test_delete_session_and_user_leave_other_users_alone(sb, project):
    alice, bob = new_user(), new_user()
    first = new_session(sb, alice, angles=ANGLES3)
    second = new_session(sb, alice, check="check2", angles=ANGLES3)
    bobs = new_session(sb, bob, angles=ANGLES3)
    for sid, user in ((first, alice), (second, alice), (bobs, bob)):
        ok(sb("--json", "--user", user, "analyze", sid))
    bob_objects = objects(project, bobs)
    second_objects = objects(project, second)
    assert sb("--user", bob, "session", "delete", first).rc == 8
    r = ok(sb("--json", "--user", alice, "session", "delete", first))
    assert r["deleted"] is True and r["images_deleted"] == 3 and r["analysis_deleted"] is True
    assert objects(project, first) == []
    for t in ("sessions", "images", "session_analysis", "angle_analysis", "session_embeddings"):
        assert rows(project, t, first) == 0, t
    assert objects(project, second) == second_objects
    again = ok(sb("--json", "--user", alice, "analyze", second))
    assert again["data"]["baseline_sessions"] == 0  # the deleted check is no baseline
    r = ok(sb("--json", "--user", alice, "user", "delete", "--yes"))
    assert r["sessions_deleted"] == 1
    assert objects(project, second) == [] and rows(project, "sessions", second) == 0
    assert objects(project, bobs) == bob_objects
    assert rows(project, "session_analysis", bobs) == 1
    assert len(ok(sb("--json", "--user", bob, "session", "list"))["sessions"]) == 1
