"""bcd-cli --store supabase against PostgreSQL + the test server: the main job end to end,
with the same JSON as the local store; signed URLs; direct uploads; what goes on the wire."""
import json
import os
import re
import urllib.request

import pytest
from conftest import ANGLES, EXAMPLES, LEGACY_KEY, SERVICE_KEY, FakeSupabase, make_cli, new_session, new_user, ok, without_lesions

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def shape(v):
    """The structure of a JSON document: keys, types, list lengths."""
    if isinstance(v, dict):
        return {k: shape(x) for k, x in v.items()}
    if isinstance(v, list):
        return [shape(x) for x in v]
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "num"
    if v is None:
        return "null"
    return "str"


def close(a, b, path=""):
    """Same document up to ids, times, URLs and float noise."""
    assert type(a) is type(b) or {type(a), type(b)} <= {int, float}, path
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            close(a[k], b[k], path + "." + k)
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            close(x, y, "%s[%d]" % (path, i))
    elif isinstance(a, float) or isinstance(b, float):
        assert a == pytest.approx(b, abs=1e-6), path


def scenario(cli, user):
    """The local store's main job (tests/cli/test_cli_sessions.py) step by step."""
    out = {}
    out["create"] = ok(cli("--json", "--user", user, "session", "create"))
    first = out["create"]["session_id"]
    out["add"] = ok(cli("--json", "--user", user, "image", "add", first, "front",
                        os.path.join(EXAMPLES, "check1", "front.jpg")))
    for a in ANGLES[1:]:
        ok(cli("--json", "--user", user, "image", "add", first, a, os.path.join(EXAMPLES, "check1", a + ".jpg")))
    out["complete"] = ok(cli("--json", "--user", user, "session", "complete", first))
    second = new_session(cli, user, check="check2")
    out["analyze1"] = ok(cli("--json", "--user", user, "analyze", first))
    out["analyze2"] = ok(cli("--json", "--user", user, "analyze", second))
    out["compare"] = ok(cli("--json", "--user", user, "compare", second, first))
    out["info2"] = ok(cli("--json", "--user", user, "session", "info", second))
    out["info1"] = ok(cli("--json", "--user", user, "session", "info", first))
    out["get"] = ok(cli("--json", "--user", user, "analysis", "get", second))
    out["thumbs"] = ok(cli("--json", "--user", user, "session", "thumbnails", first))
    out["preview"] = ok(cli("--json", "--user", user, "image", "preview", first, "left"))
    out["list"] = ok(cli("--json", "--user", user, "session", "list"))
    out["again"] = ok(cli("--json", "--user", user, "analyze", second))
    out["ids"] = (first, second)
    return out


def test_main_job_gives_the_local_store_json(sb, local, project):
    user = new_user()
    s = scenario(sb, user)
    loc = scenario(local, user)
    first, second = s["ids"]

    d1, d2 = s["analyze1"]["data"], s["analyze2"]["data"]
    assert d1["overwritten"] is False and d1["scores"]["change_score"] == 0
    assert d2["scores"]["change_score"] > 0
    assert s["again"]["data"]["overwritten"] is True
    assert s["compare"]["data"]["comparison_method"] == "embedding"
    assert s["info2"]["previous_session_id"] == first and s["info2"]["is_current"] is True
    assert s["info1"]["is_first_session"] is True and s["info1"]["previous_session_id"] is None
    assert [x["session_id"] for x in s["list"]["sessions"]] == [first, second]
    assert s["thumbs"]["count"] == 6 and s["thumbs"]["expires_in"] == 3600
    assert s["preview"]["expires_in"] == 3600 and s["preview"]["path"] is None
    for name in ("create", "list"):
        for t in (s[name].get("created_at"),):
            assert t is None or TS.match(t), t
    assert all(TS.match(x["created_at"]) and TS.match(x["updated_at"]) for x in s["list"]["sessions"])

    # the same documents as the local store: keys, types, lengths; scores to 1e-6
    for name in ("create", "add", "complete", "analyze1", "analyze2", "compare", "info1", "info2", "get", "list",
                 "again"):
        assert shape(s[name]) == shape(loc[name]), name
        a, b = dict(s[name]), dict(loc[name])
        close(a, b, name)
    for name in ("analyze1", "analyze2", "again"):
        for k in ("scores", "confidence_factors"):
            close(s[name]["data"][k], loc[name]["data"][k], name)
        pa = s[name]["data"]["session_analysis"]["per_angle"]
        pb = loc[name]["data"]["session_analysis"]["per_angle"]
        assert [x["change_score"] for x in pa] == pytest.approx([x["change_score"] for x in pb], abs=1e-6)
        assert [x["summary"] for x in pa] == [x["summary"] for x in pb]
    close(s["compare"]["data"], loc["compare"]["data"], "compare")
    assert s["compare"]["data"]["overall_delta"] == pytest.approx(loc["compare"]["data"]["overall_delta"], abs=1e-6)
    # storage keys are the local store's: <session>/<sha256>.jpg
    assert s["add"]["storage_path"].split("/")[1] == loc["add"]["storage_path"].split("/")[1]
    # thumbnails and preview: the same keys; URLs are signed and expire
    assert s["thumbs"].keys() == loc["thumbs"].keys()
    assert s["thumbs"]["thumbnails"].keys() == loc["thumbs"]["thumbnails"].keys()
    assert s["preview"].keys() == loc["preview"].keys()

    rows = project.query("select count(*) from images i join sessions s on s.id = i.session_id "
                         "where s.user_id = %s", (user,))
    assert rows[0][0] == 12
    rows = project.query("select count(*) from angle_analysis a join sessions s on s.id = a.session_id "
                         "where s.user_id = %s", (user,))
    assert rows[0][0] == 12
    rows = project.query("select count(*), min(array_length(embedding, 1)) from angle_embeddings a "
                         "join sessions s on s.id = a.session_id where s.user_id = %s", (user,))
    assert rows[0][0] == 12 and rows[0][1] == d1["dim"]


def test_signed_urls_serve_the_photos_without_a_key(sb, project):
    user = new_user()
    sid = new_session(sb, user, complete=False)
    project.server.clear()
    thumbs = ok(sb("--json", "--user", user, "session", "thumbnails", sid))
    signs = project.server.requests("POST", r"^/storage/v1/object/sign/")
    assert len(signs) == 1 and signs[0]["path"] == "/storage/v1/object/sign/bcd-images"  # one batch call
    for a in ANGLES:
        url = thumbs["thumbnails"][a]
        assert url.startswith(project.server.url + "/storage/v1/object/sign/bcd-images/" + sid + "/")
        assert "token=" in url
        with urllib.request.urlopen(url) as r:  # no apikey, no Authorization
            assert r.read() == open(os.path.join(EXAMPLES, "check1", a + ".jpg"), "rb").read()
    prev = ok(sb("--json", "--user", user, "image", "preview", sid, "raised"))
    assert prev["expires_in"] == 3600 and prev["image_type"] == "raised"
    with urllib.request.urlopen(prev["preview_url"]) as r:
        assert r.read() == open(os.path.join(EXAMPLES, "check1", "raised.jpg"), "rb").read()
    # a tampered token is refused
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(prev["preview_url"][:-3] + "AAA")
    assert e.value.code == 400
    # an angle without a photo
    sid2 = new_session(sb, user, angles=["front"], complete=False)
    r = sb("--user", user, "image", "preview", sid2, "left")
    assert r.rc == 8 and r.error()["code"] == "image_not_found"
    t = ok(sb("--json", "--user", user, "session", "thumbnails", sid2))
    assert t["count"] == 1 and list(t["thumbnails"]) == ["front"]


def test_thumbnails_report_objects_missing_from_the_bucket(sb, project):
    user = new_user()
    sid = new_session(sb, user, complete=False)
    key = project.query("select storage_path from images where session_id = %s and image_type = 'up'", (sid,))[0][0]
    os.remove(os.path.join(project.storage, "bcd-images", key))
    t = ok(sb("--json", "--user", user, "session", "thumbnails", sid))
    assert t["count"] == 5 and t["missing"] == ["up"]
    r = sb("--user", user, "image", "preview", sid, "up")
    assert r.rc == 8 and r.error()["code"] == "image_file_missing"


def test_html_report_lists_each_check_once_and_downloads_no_photo(sb, project, tmp_path):
    """The report's thumbnails come from the reduced copies analyze stored: one listing of
    each check's images, the copies and change maps downloaded, no photo but those of the
    angle with changed lesions (their crops, before and now, are cut from the photos)."""
    user = new_user()
    first = new_session(sb, user)
    second = new_session(sb, user, check="check2")
    ok(sb("--json", "--user", user, "analyze", first))
    ok(sb("--json", "--user", user, "analyze", second))
    photos = {k for (k,) in project.query("select storage_path from images where session_id in (%s, %s)",
                                           (first, second))}
    assert len(photos) == 12
    before = len(project.server.requests())
    html = str(tmp_path / "report.html")
    ok(sb("--json", "--user", user, "report", second, "--html", html))
    reqs = project.server.requests()[before:]
    lists = [r for r in reqs if r["method"] == "GET" and r["path"] == "/rest/v1/images"]
    listed = sorted(q for r in lists for q in re.findall(r"session_id=eq\.([0-9a-f-]{36})", r["query"]))
    assert listed == sorted([first, second]), lists
    gets = [r["path"] for r in reqs if r["method"] == "GET" and r["path"].startswith("/storage/v1/object/")]
    left = {k for (k,) in project.query("select storage_path from images where session_id in (%s, %s) "
                                        "and image_type = 'left'", (first, second))}
    got = {g.split("/bcd-images/", 1)[-1] for g in gets} & photos
    assert gets and got == left, gets
    with open(html) as f:
        assert f.read().count("data:image/") == 18 + 4  # and the two changed lesions of left


def test_analyze_reads_only_the_details_of_the_earlier_analysis(sb, project):
    """To find the working copies of the earlier check, and what the analysis it replaces
    named, analyze reads the details column of those analyses (a few kB), not whole
    analyses with their embeddings; it downloads none of the earlier check's photos."""
    sb = without_lesions(sb)
    user = new_user()
    first = new_session(sb, user)
    second = new_session(sb, user, check="check2")
    ok(sb("--json", "--user", user, "analyze", first))
    before = len(project.server.requests())
    res = ok(sb("--json", "--user", user, "analyze", second))
    reqs = project.server.requests()[before:]
    assert not [r for r in reqs if r["path"] == "/rest/v1/rpc/bcd_get_analysis"]
    reads = [r for r in reqs if r["method"] == "GET" and r["path"] == "/rest/v1/session_analysis"]
    assert all(r["query"].startswith("select=details&") for r in reads), reads
    read_ids = sorted(q for r in reads for q in re.findall(r"session_id=eq\.([0-9a-f-]{36})", r["query"]))
    assert read_ids == sorted([first, second]), reads
    photos1 = {k for (k,) in project.query("select storage_path from images where session_id = %s", (first,))}
    gets = [r["path"] for r in reqs if r["method"] == "GET" and r["path"].startswith("/storage/v1/object/")]
    assert len(photos1) == 6 and not [g for g in gets if g.split("/bcd-images/", 1)[-1] in photos1], gets
    per = res["data"]["session_analysis"]["per_angle"]
    assert len(per) == 6 and all(a["alignment"] is not None for a in per), per


def test_direct_upload_through_a_signed_upload_url(sb, local, project):
    user = new_user()
    sid = ok(sb("--json", "--user", user, "session", "create"))["session_id"]
    doc = ok(sb("--json", "--user", user, "image", "upload-url", sid, "front", "front-1.JPG"))
    assert set(doc) >= {"uploadUrl", "token", "path", "headers", "publicUrl"}
    assert doc["headers"] == {"Content-Type": "image/jpeg"} and doc["publicUrl"] is None
    assert doc["path"].startswith(sid + "/front/") and doc["path"].endswith("-front-1.JPG")
    assert doc["token"] and doc["token"] in doc["uploadUrl"]
    data = open(os.path.join(EXAMPLES, "check1", "front.jpg"), "rb").read()
    req = urllib.request.Request(doc["uploadUrl"], data=data, method="PUT", headers=doc["headers"])
    with urllib.request.urlopen(req) as r:  # no key needed
        assert r.status == 200
    # the URL creates the object once
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(urllib.request.Request(doc["uploadUrl"], data=b"x", method="PUT",
                                                      headers=doc["headers"]))
    reg = ok(sb("--json", "--user", user, "image", "register", sid, "front", doc["path"]))
    assert reg["created"] is True and reg["order_index"] == 0
    prev = ok(sb("--json", "--user", user, "image", "preview", sid, "front"))
    with urllib.request.urlopen(prev["preview_url"]) as r:
        assert r.read() == data
    # two requests for the same name get different objects
    doc2 = ok(sb("--json", "--user", user, "image", "upload-url", sid, "front", "front-1.JPG"))
    assert doc2["path"] != doc["path"]
    for bad, code in (("x.gif", "unsupported_content_type"), ("../a.jpg", "invalid_filename"),
                      (".hidden.jpg", "invalid_filename"), ("a b.jpg", "invalid_filename")):
        r = sb("--user", user, "image", "upload-url", sid, "front", bad)
        assert r.rc == 3 and r.error()["code"] == code, bad
    r = sb("--user", new_user(), "image", "upload-url", sid, "front", "a.jpg")
    assert r.rc == 8
    # the local store has no upload URLs
    lsid = ok(local("--json", "--user", user, "session", "create"))["session_id"]
    r = local("--user", user, "image", "upload-url", lsid, "front", "a.jpg")
    assert r.rc == 11 and r.error()["code"] == "store_unsupported"


def test_analysis_downloads_the_six_angles_in_parallel(sb, project):
    sb = without_lesions(sb)
    user = new_user()
    sid = new_session(sb, user)
    project.server.add_fault("GET", r"^/storage/v1/object/authenticated/", "delay", count=6, seconds=2.0)
    ok(sb("--json", "--user", user, "analyze", sid))
    gets = project.server.requests("GET", r"^/storage/v1/object/authenticated/")
    assert len(gets) == 6
    # all six were asked for before the first answer (held back 2 s) came: in parallel,
    # whatever the time the analysis itself takes
    spread = max(g["time"] for g in gets) - min(g["time"] for g in gets)
    assert spread < 2.0, "the six downloads started over %.1f s: not in parallel" % spread


def test_history_reads_the_analyses_in_parallel(sb, project):
    """history (and the report, which reads it) asks for the analyses of up to eight
    checks at once: one round trip for them instead of one per check."""
    user = new_user()
    sids = [new_session(sb, user, check=c, angles=ANGLES[:3]) for c in ("check1", "check2", "check1")]
    for sid in sids:
        ok(sb("--json", "--user", user, "analyze", sid))
    alone = ok(sb("--json", "--user", user, "history"))
    project.server.clear()
    project.server.add_fault("POST", r"^/rest/v1/rpc/bcd_get_analysis$", "delay", count=3, seconds=2.0)
    res = ok(sb("--json", "--user", user, "history"))
    reads = project.server.requests("POST", r"^/rest/v1/rpc/bcd_get_analysis$")
    assert sorted(json.loads(r["body"])["p_session_id"] for r in reads) == sorted(sids), reads
    # all three were asked for before the first answer (held back 2 s) came
    spread = max(r["time"] for r in reads) - min(r["time"] for r in reads)
    assert spread < 2.0, "the three reads started over %.1f s: one after another" % spread
    assert [x["session_id"] for x in res["sessions"]] == sids
    assert res == alone  # the same history as read without the delays


def test_history_fails_whole_when_one_parallel_read_fails(sb, project):
    user = new_user()
    sids = [new_session(sb, user, check=c, angles=ANGLES[:3]) for c in ("check1", "check2")]
    for sid in sids:
        ok(sb("--json", "--user", user, "analyze", sid))
    project.server.add_fault("POST", r"^/rest/v1/rpc/bcd_get_analysis$", "status", count=1, status=403,
                             body={"code": "42501", "message": "permission denied", "details": None, "hint": None})
    r = sb("--json", "--user", user, "history")
    assert r.rc != 0 and r.error()["code"] == "supabase_unauthorized", r
    # and the next one, unhindered, reads them all
    assert len(ok(sb("--json", "--user", user, "history"))["sessions"]) == 2


def test_every_request_carries_key_correlation_id_and_user_agent(sb, project):
    user = new_user()
    new_session(sb, user, angles=ANGLES[:3])
    reqs = project.server.requests()
    assert reqs
    ids = set()
    for r in reqs:
        assert r["apikey"] == SERVICE_KEY
        assert r["authorization"] is None  # sb_secret_ keys travel as apikey only (wire doc 1.3)
        assert UUID.match(r["correlation_id"] or ""), r
        assert r["user_agent"].startswith("libbcd/")
        assert SERVICE_KEY not in r["path"] + r["query"]
        ids.add(r["correlation_id"])
    assert len(ids) == len(reqs)  # one id per request


def test_legacy_jwt_key_goes_in_apikey_and_authorization(project, tmp_path):
    srv = FakeSupabase(project.dsn, project.storage, LEGACY_KEY).start()
    try:
        cli = make_cli(tmp_path, srv.url, LEGACY_KEY)
        user = new_user()
        sid = ok(cli("--json", "--user", user, "session", "create"))["session_id"]
        ok(cli("--json", "--user", user, "session", "info", sid))
        for r in srv.requests():
            assert r["apikey"] == LEGACY_KEY and r["authorization"] == "Bearer " + LEGACY_KEY
        assert not srv.bugs
    finally:
        srv.stop()


def test_users_are_auth_uuids_and_sessions_stay_private(sb):
    r = sb("--user", "alice", "session", "create")
    assert r.rc == 3 and r.error()["code"] == "invalid_user_id"
    r = sb("--user", new_user().upper(), "session", "list")
    assert r.rc == 3
    owner, other = new_user(), new_user()
    sid = new_session(sb, owner, angles=ANGLES[:3])
    for args in (("session", "info", sid), ("analyze", sid), ("session", "thumbnails", sid),
                 ("image", "preview", sid, "front")):
        r = sb("--user", other, *args)
        assert r.rc == 8 and r.error()["code"] == "session_not_found", args
    assert ok(sb("--json", "--user", other, "session", "list"))["count"] == 0


def test_register_rules_match_the_local_store(sb):
    user = new_user()
    sid = ok(sb("--json", "--user", user, "session", "create"))["session_id"]

    def reg(path, idx):
        return sb("--json", "--user", user, "image", "register", sid, "front", path, "--order-index", idx)
    first = ok(reg("u/s/front-0.jpg", 0))
    assert first["ok"] is True and first["created"] is True
    assert ok(reg("u/s/front-0.jpg", 0))["created"] is False
    r = reg("u/s/front-2.jpg", 2)
    assert r.rc == 9 and r.error()["code"] == "order_index_out_of_sequence"
    assert r.error()["details"]["expected_order_index"] == 1
    r = reg("u/s/other.jpg", 0)
    assert r.rc == 9 and r.error()["code"] == "slot_conflict"
    assert ok(reg("u/s/front-1.jpg", 1))["order_index"] == 1
    r = sb("--user", user, "analyze", sid)
    assert r.rc == 10 and r.error()["code"] == "session_not_completed"
    r = sb("--user", user, "session", "complete", sid)
    assert r.rc == 10 and r.error()["code"] == "insufficient_angles"
    r = sb("--user", user, "analysis", "get", sid)
    assert r.rc == 8 and r.error()["code"] == "analysis_not_found"


def test_missing_configuration_is_reported(tmp_path):
    cli = make_cli(tmp_path, "", "")
    r = cli("--user", new_user(), "session", "list", env_extra={"SUPABASE_URL": "", "SUPABASE_SERVICE_ROLE_KEY": ""})
    assert r.rc == 3 and r.error()["code"] == "supabase_not_configured"


def test_paging_goes_past_a_row_cap(sb, project):
    user = new_user()
    ids = [ok(sb("--json", "--user", user, "session", "create"))["session_id"] for _ in range(5)]
    project.server.max_rows = 2  # the project answers at most 2 rows per request
    lst = ok(sb("--json", "--user", user, "session", "list"))
    assert [x["session_id"] for x in lst["sessions"]] == ids
    info = ok(sb("--json", "--user", user, "session", "info", ids[-1]))
    assert info["total_sessions"] == 5 and info["previous_session_id"] == ids[-2]
    pages = project.server.requests("GET", r"^/rest/v1/bcd_session_overview$")
    assert any("offset=4" in r["query"] for r in pages)
