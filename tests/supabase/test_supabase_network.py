"""Broken transport between libbcd and Supabase: answers cut short (Content-Length longer
than the body, a chunked stream cut, a reset mid-body), stalls (read timeout), a server
that never accepts (connect timeout), endless bodies (the response cap), uploads over the
request cap, rate limits and server errors on Storage. Reads, writes, uploads, downloads
and signed URLs are retried where that is safe; otherwise the error is clear, and after
each failure PostgreSQL and the bucket hold nothing partial."""
import os
import socket
import time
import urllib.request

import pytest
from conftest import ANGLES, EXAMPLES, SERVICE_KEY, analysis_blobs, make_cli, new_session, new_user, ok, without_lesions

OVERVIEW = r"^/rest/v1/bcd_session_overview$"
SESSIONS = r"^/rest/v1/sessions$"
IMAGES = r"^/rest/v1/images$"
SAVE = r"^/rest/v1/rpc/bcd_save_analysis$"
UPLOAD = r"^/storage/v1/object/bcd-images/"
DOWNLOAD = r"^/storage/v1/object/authenticated/"
SIGN_ONE = r"^/storage/v1/object/sign/bcd-images/"
SIGN_MANY = r"^/storage/v1/object/sign/bcd-images$"
SIGN_UPLOAD = r"^/storage/v1/object/upload/sign/bcd-images/"
BROKEN = ["truncate", "chunk_cut", "reset"]


def photo(angle, check="check1"):
    return os.path.join(EXAMPLES, check, angle + ".jpg")


def objects(project, sid):
    """Object keys of a session in the bucket (files on the test server's disk)."""
    d = os.path.join(project.storage, "bcd-images", sid)
    if not os.path.isdir(d):
        return []
    return sorted(f for f in os.listdir(d) if not f.endswith(".meta") and ".tmp-" not in f)


def named(project, sid):
    """Object keys of a session that its rows name: its photos, and the heatmaps and
    working copies its analysis details name."""
    keys = {r[0] for r in project.query("select storage_path from images where session_id = %s", (sid,))}
    keys |= analysis_blobs(project, sid)
    return sorted(k.split("/", 1)[1] for k in keys)


def state(project, sid):
    """Everything PostgreSQL and the bucket hold of a session."""
    return {
        "sessions": project.query("select status from sessions where id = %s", (sid,)),
        "images": project.query("select image_type, order_index, storage_path from images where session_id = %s "
                                "order by 1, 2", (sid,)),
        "analysis": project.query("select created_at, (select count(*) from angle_analysis a where a.session_id = "
                                  "s.session_id), (select count(*) from angle_embeddings e where e.session_id = "
                                  "s.session_id) from session_analysis s where s.session_id = %s", (sid,)),
        "objects": objects(project, sid),
    }


def sent_by_oversize(project):
    """Bytes the (first) endless answer wrote before the client hung up."""
    for _ in range(200):
        if project.server.sent:
            return project.server.sent[0]
        time.sleep(0.05)
    raise AssertionError("the endless answer never ended: the client did not hang up")


def one_attempt_each(reqs):
    """Every correlation id of reqs, with how many attempts carried it."""
    out = {}
    for r in reqs:
        out[r["correlation_id"]] = out.get(r["correlation_id"], 0) + 1
    return out


@pytest.mark.parametrize("mode", BROKEN)
def test_broken_answers_to_reads_are_retried(sb, project, mode):
    user = new_user()
    sid = ok(sb("--json", "--user", user, "session", "create"))["session_id"]
    project.server.clear()
    project.server.add_fault("GET", OVERVIEW, mode)
    info = ok(sb("--json", "--user", user, "session", "info", sid))
    assert info["session_id"] == sid
    tries = one_attempt_each(project.server.requests("GET", OVERVIEW))
    assert sorted(tries.values()) == [1] * (len(tries) - 1) + [2]  # the broken read went again, under its id


@pytest.mark.parametrize("mode", BROKEN)
def test_broken_answers_to_writes_are_retried_without_doubling(sb, project, mode):
    """Each write commits, its answer breaks, the retry must find the first outcome."""
    user = new_user()
    project.server.add_fault("POST", SESSIONS, mode)
    sid = ok(sb("--json", "--user", user, "session", "create"))["session_id"]
    assert project.query("select count(*) from sessions where user_id = %s", (user,))[0][0] == 1
    project.server.add_fault("POST", UPLOAD, mode)
    project.server.add_fault("POST", IMAGES, mode)
    add = ok(sb("--json", "--user", user, "image", "add", sid, "front", photo("front")))
    assert add["created"] is True and add["order_index"] == 0
    for a in ANGLES[1:]:
        ok(sb("--json", "--user", user, "image", "add", sid, a, photo(a)))
    project.server.add_fault("PATCH", SESSIONS, mode)
    ok(sb("--json", "--user", user, "session", "complete", sid))
    project.server.add_fault("POST", SAVE, mode)
    d = ok(sb("--json", "--user", user, "analyze", sid))["data"]
    assert d["overwritten"] is False  # the retry recognised its own save
    st = state(project, sid)
    assert st["sessions"] == [("completed",)]
    assert [r[:2] for r in st["images"]] == [(a, 0) for a in sorted(ANGLES)]
    assert len(st["analysis"]) == 1 and st["analysis"][0][1:] == (6, 6)
    assert st["objects"] == named(project, sid) and len(st["objects"]) == 6 + 6  # photos, working copies
    for path in (SESSIONS, IMAGES, UPLOAD, SAVE):
        tries = one_attempt_each(project.server.requests("POST", path))
        assert sorted(tries.values())[-1] == 2, path  # the broken one was sent again, under its id


@pytest.mark.parametrize("mode", BROKEN)
def test_broken_downloads_and_signed_urls_are_retried(sb, project, mode):
    sb = without_lesions(sb)
    user = new_user()
    sid = new_session(sb, user)
    project.server.clear()
    project.server.add_fault("GET", DOWNLOAD, mode, count=2)
    ok(sb("--json", "--user", user, "analyze", sid))
    assert len(project.server.requests("GET", DOWNLOAD)) == 8
    project.server.add_fault("POST", SIGN_MANY, mode)
    t = ok(sb("--json", "--user", user, "session", "thumbnails", sid))
    assert t["count"] == 6 and not t.get("missing")
    assert len(project.server.requests("POST", SIGN_MANY)) == 2
    project.server.add_fault("POST", SIGN_ONE, mode)
    prev = ok(sb("--json", "--user", user, "image", "preview", sid, "front"))
    assert "token=" in prev["preview_url"]
    assert len(project.server.requests("POST", SIGN_ONE)) == 2
    project.server.add_fault("POST", SIGN_UPLOAD, mode)
    doc = ok(sb("--json", "--user", user, "image", "upload-url", sid, "front", "again.jpg"))
    assert doc["token"] in doc["uploadUrl"]
    assert len(project.server.requests("POST", SIGN_UPLOAD)) == 2
    # the signed URLs handed out work
    with urllib.request.urlopen(prev["preview_url"]) as r:
        assert r.read() == open(photo("front"), "rb").read()
    req = urllib.request.Request(doc["uploadUrl"], data=open(photo("front"), "rb").read(), method="PUT",
                                 headers=doc["headers"])
    with urllib.request.urlopen(req) as r:
        assert r.status == 200


def test_answers_that_keep_breaking_fail_clearly_and_store_nothing(sb, project):
    user = new_user()
    sid = new_session(sb, user, angles=ANGLES[:3], complete=False)
    before = state(project, sid)
    project.server.clear()
    # the upload lands every time, its answer never arrives whole: a network error, and the
    # object (referenced by no row) is removed again
    project.server.add_fault("POST", UPLOAD, "reset", count=10)
    r = sb("--user", user, "image", "add", sid, "raised", photo("raised"))
    assert r.rc == 13 and r.error()["code"] == "network_error", r.err
    assert r.error()["correlation_id"]
    assert len(project.server.requests("POST", UPLOAD)) == 3
    assert state(project, sid) == before
    # the row insert never arrives: a network error, no row, and the uploaded object is
    # removed again
    project.server.clear()
    project.server.add_fault("POST", IMAGES, "drop", count=10)
    r = sb("--user", user, "image", "add", sid, "raised", photo("raised"))
    assert r.rc == 13 and r.error()["code"] == "network_error", r.err
    assert state(project, sid) == before
    # the row insert commits, every answer to it is cut: read back once, found, one row
    project.server.clear()
    project.server.add_fault("POST", IMAGES, "truncate", count=10)
    add = ok(sb("--json", "--user", user, "image", "add", sid, "raised", photo("raised")))
    assert add["created"] is True and add["order_index"] == 0
    after = state(project, sid)
    assert len(after["images"]) == 4 and len(after["objects"]) == 4
    # the same for a session
    project.server.clear()
    project.server.add_fault("POST", SESSIONS, "chunk_cut", count=10)
    other = new_user()
    s2 = ok(sb("--json", "--user", other, "session", "create"))["session_id"]
    assert project.query("select user_id::text from sessions where id = %s", (s2,)) == [(other,)]
    project.server.clear()
    project.server.add_fault("POST", SESSIONS, "drop", count=10)
    r = sb("--user", other, "session", "create")
    assert r.rc == 13 and r.error()["code"] == "network_error"
    assert project.query("select count(*) from sessions where user_id = %s", (other,))[0][0] == 1
    # a save whose answers keep breaking: the previous analysis or the new one, whole
    ok(sb("--json", "--user", user, "session", "complete", sid))
    ok(sb("--json", "--user", user, "analyze", sid))
    before = state(project, sid)
    project.server.clear()
    project.server.add_fault("POST", SAVE, "chunk_cut", count=10)
    r = sb("--user", user, "analyze", sid)
    assert r.rc == 13 and r.error()["code"] == "network_error"
    after = state(project, sid)
    assert len(after["analysis"]) == 1 and after["analysis"][0][1:] == before["analysis"][0][1:]


def test_a_stalled_answer_times_out_and_is_retried(sb, project):
    user = new_user()
    sid = new_session(sb, user, angles=ANGLES[:3])
    fast = {"BCD_HTTP_TIMEOUT_MS": "2000"}
    project.server.clear()
    project.server.add_fault("GET", OVERVIEW, "stall", seconds=2.5)
    ok(sb("--json", "--user", user, "session", "info", sid, env_extra=fast))
    assert max(one_attempt_each(project.server.requests("GET", OVERVIEW)).values()) >= 2
    project.server.add_fault("GET", DOWNLOAD, "stall", seconds=2.5)
    ok(sb("--json", "--user", user, "analyze", sid, env_extra=fast))
    before = state(project, sid)
    project.server.clear()
    project.server.add_fault("POST", SAVE, "stall", count=10, seconds=2.5)
    t = time.monotonic()
    r = sb("--user", user, "analyze", sid, env_extra=fast)
    assert r.rc == 13 and r.error()["code"] == "network_timeout", r.err
    assert time.monotonic() - t < 60
    assert len(project.server.requests("POST", SAVE)) == 3
    assert state(project, sid)["analysis"][0][1:] == before["analysis"][0][1:]


def test_a_server_that_never_accepts_is_a_connect_timeout(tmp_path):
    # a listening socket whose accept queue is full: SYNs are dropped, connect() hangs
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)
    port = srv.getsockname()[1]
    fill = []
    for _ in range(3):
        c = socket.socket()
        c.setblocking(False)
        try:
            c.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fill.append(c)
    time.sleep(0.2)
    try:
        cli = make_cli(tmp_path, "http://127.0.0.1:%d" % port, SERVICE_KEY)
        t = time.monotonic()
        r = cli("--user", new_user(), "session", "list", env_extra={"BCD_HTTP_CONNECT_TIMEOUT_MS": "300"})
        took = time.monotonic() - t
        assert r.rc == 13 and r.error()["code"] == "network_timeout", r.err
        assert "after 3 attempts" in r.error()["message"]
        assert took < 15
        r = cli("--user", new_user(), "session", "create", env_extra={"BCD_HTTP_CONNECT_TIMEOUT_MS": "300"})
        assert r.rc == 13 and r.error()["code"] == "network_timeout"
    finally:
        for c in fill:
            c.close()
        srv.close()


def test_endless_bodies_are_cut_off_at_the_cap(sb, project):
    user = new_user()
    sid = new_session(sb, user, angles=ANGLES[:3])
    project.server.clear()
    # a JSON read (1 MiB cap of its own): cut off early, not retried, nothing buffered whole
    project.server.add_fault("GET", OVERVIEW, "oversize", limit=1 << 30)
    r = sb("--user", user, "session", "info", sid)
    assert r.rc != 0 and r.error()["code"] == "response_too_large", r.err
    assert "1048576 bytes" in r.error()["message"]
    assert len(project.server.requests("GET", OVERVIEW)) == 1
    assert sent_by_oversize(project) < 64 << 20
    # a download: the default BCD_HTTP_MAX_RESPONSE_BYTES (64 MiB)
    project.server.clear()
    project.server.add_fault("GET", DOWNLOAD, "oversize", limit=1 << 30, chunk=1 << 20, ctype="image/jpeg")
    r = sb("--user", user, "analyze", sid)
    assert r.rc != 0 and r.error()["code"] == "image_file_too_large", r.err
    assert "BCD_HTTP_MAX_RESPONSE_BYTES" in r.error()["message"]
    assert (64 << 20) <= sent_by_oversize(project) < (256 << 20)
    assert state(project, sid)["analysis"] == []
    # a lower configured cap applies to every response
    project.server.clear()
    r = sb("--user", user, "analyze", sid, env_extra={"BCD_HTTP_MAX_RESPONSE_BYTES": "20000"})
    assert r.rc != 0 and r.error()["code"] in ("image_file_too_large", "response_too_large"), r.err
    assert state(project, sid)["analysis"] == []
    r = sb("--user", user, "session", "info", sid, env_extra={"BCD_HTTP_MAX_RESPONSE_BYTES": "100"})
    assert r.rc == 3 and r.error()["code"] == "invalid_config_value"


def test_uploads_over_the_request_cap_are_refused_before_sending(sb, project):
    user = new_user()
    sid = ok(sb("--json", "--user", user, "session", "create"))["session_id"]
    project.server.clear()
    r = sb("--user", user, "image", "add", sid, "front", photo("front"),
           env_extra={"BCD_HTTP_MAX_REQUEST_BYTES": "30000"})
    assert r.rc != 0 and r.error()["code"] == "image_file_too_large", r.err
    assert "BCD_HTTP_MAX_REQUEST_BYTES" in r.error()["message"]
    assert not project.server.requests("POST", UPLOAD) and not project.server.requests("POST", IMAGES)
    assert state(project, sid)["images"] == [] and objects(project, sid) == []
    # under the cap: stored
    ok(sb("--json", "--user", user, "image", "add", sid, "front", photo("front"),
          env_extra={"BCD_HTTP_MAX_REQUEST_BYTES": "100000"}))
    assert len(state(project, sid)["images"]) == 1


def test_storage_rate_limits_and_server_errors(sb, project):
    sb = without_lesions(sb)
    user = new_user()
    sid = ok(sb("--json", "--user", user, "session", "create"))["session_id"]
    # one 429 with Retry-After on an upload: waited for, then stored
    project.server.add_fault("POST", UPLOAD, "status", status=429, headers={"Retry-After": "1"},
                             body={"statusCode": "429", "error": "too_many_requests", "message": "slow down"})
    ok(sb("--json", "--user", user, "image", "add", sid, "front", photo("front")))
    ups = project.server.requests("POST", UPLOAD)
    assert len(ups) == 2 and ups[1]["time"] - ups[0]["time"] >= 1.0
    # a Retry-After beyond the retry budget: no hour-long wait, a clear rate limit error
    project.server.clear()
    project.server.add_fault("POST", UPLOAD, "status", count=10, status=429, headers={"Retry-After": "3600"},
                             body={"statusCode": "429", "error": "too_many_requests", "message": "slow down"})
    t = time.monotonic()
    r = sb("--user", user, "image", "add", sid, "left", photo("left"))
    assert time.monotonic() - t < 10
    assert r.rc == 13 and r.error()["code"] == "rate_limited", r.err
    assert len(project.server.requests("POST", UPLOAD)) == 1
    assert [x[0] for x in state(project, sid)["images"]] == ["front"] and len(objects(project, sid)) == 1
    # 500s on an upload, a download and a signing call: retried
    project.server.clear()
    for method, path in (("POST", UPLOAD), ("GET", DOWNLOAD), ("POST", SIGN_ONE)):
        project.server.add_fault(method, path, "status", status=500,
                                 body={"statusCode": "500", "error": "internal", "message": "boom"})
    for a in ANGLES[1:3]:
        ok(sb("--json", "--user", user, "image", "add", sid, a, photo(a)))
    ok(sb("--json", "--user", user, "session", "complete", sid))
    ok(sb("--json", "--user", user, "analyze", sid))
    ok(sb("--json", "--user", user, "image", "preview", sid, "front"))
    assert len(project.server.requests("GET", DOWNLOAD)) == 4
    assert len(project.server.requests("POST", SIGN_ONE)) == 2
    # Storage down for good: a clear server error, nothing registered (in a check not yet
    # analyzed: an analyzed one takes no new photo)
    sid2 = ok(sb("--json", "--user", user, "session", "create"))["session_id"]
    project.server.clear()
    project.server.add_fault("POST", UPLOAD, "status", count=10, status=503,
                             body={"statusCode": "503", "error": "unavailable", "message": "maintenance"})
    r = sb("--user", user, "image", "add", sid2, "raised", photo("raised"))
    assert r.rc == 13 and r.error()["code"] == "server_error" and "503" in r.error()["message"], r.err
    assert len(state(project, sid2)["images"]) == 0 and len(objects(project, sid2)) == 0
    assert len(state(project, sid)["images"]) == 3 and len(objects(project, sid)) == 3 + 3  # + working copies
    assert objects(project, sid) == named(project, sid)
