"""Faults between libbcd and Supabase: server errors, dropped connections, lost responses,
rate limits, timeouts, refused keys, registration races, failures inside the save."""
import os
import subprocess
import time

import pytest
from conftest import ANGLES, CLI, EXAMPLES, SERVICE_KEY, make_cli, new_session, new_user, ok, without_lesions

SAVE = r"^/rest/v1/rpc/bcd_save_analysis$"
OBJECT_GET = r"^/storage/v1/object/authenticated/"


def analysis_rows(project, sid):
    return project.query("select overall_change_score, confidence, created_at, model, "
                         "(select count(*) from angle_analysis a where a.session_id = s.session_id), "
                         "(select count(*) from angle_embeddings e where e.session_id = s.session_id), "
                         "(select count(*) from session_embeddings e where e.session_id = s.session_id) "
                         "from session_analysis s where s.session_id = %s", (sid,))


def test_a_500_on_the_save_is_retried(sb, project):
    user = new_user()
    sid = new_session(sb, user)
    project.server.add_fault("POST", SAVE, "status", status=500)
    d = ok(sb("--json", "--user", user, "analyze", sid))["data"]
    assert d["overwritten"] is False
    saves = project.server.requests("POST", SAVE)
    assert len(saves) == 2
    assert saves[0]["correlation_id"] == saves[1]["correlation_id"]  # one request, two attempts
    assert analysis_rows(project, sid)[0][4:] == (6, 6, 1)


def test_a_dropped_connection_mid_download_is_retried(sb, project):
    sb = without_lesions(sb)
    user = new_user()
    sid = new_session(sb, user)
    project.server.add_fault("GET", OBJECT_GET, "drop", count=2)
    ok(sb("--json", "--user", user, "analyze", sid))
    assert len(project.server.requests("GET", OBJECT_GET)) == 8


def test_a_lost_save_response_is_retried_without_saving_twice(sb, project):
    user = new_user()
    sid = new_session(sb, user)
    first = ok(sb("--json", "--user", user, "analyze", sid))["data"]
    # the save commits, the answer is lost: the retry (same save id) must report the first outcome
    project.server.add_fault("POST", SAVE, "drop_after")
    again = ok(sb("--json", "--user", user, "analyze", sid))["data"]
    assert again["overwritten"] is True
    assert len(project.server.requests("POST", SAVE)) == 3
    rows = analysis_rows(project, sid)
    assert len(rows) == 1 and rows[0][4:] == (6, 6, 1)
    assert again["created_at"] != first["created_at"]
    stored = ok(sb("--json", "--user", user, "analysis", "get", sid))["data"]["session_analysis"]
    assert stored["created_at"] == again["created_at"]


def test_lost_insert_responses_are_read_back(sb, project):
    user = new_user()
    project.server.add_fault("POST", r"^/rest/v1/sessions$", "drop_after")
    sid = ok(sb("--json", "--user", user, "session", "create"))["session_id"]
    assert project.query("select count(*) from sessions where user_id = %s", (user,))[0][0] == 1
    project.server.add_fault("POST", r"^/rest/v1/images$", "drop_after")
    add = ok(sb("--json", "--user", user, "image", "add", sid, "front", os.path.join(EXAMPLES, "check1", "front.jpg")))
    assert add["created"] is True and add["order_index"] == 0
    assert project.query("select count(*) from images where session_id = %s", (sid,))[0][0] == 1


def test_persistent_server_errors_fail_clearly_and_keep_the_previous_analysis(sb, project):
    user = new_user()
    sid = new_session(sb, user)
    ok(sb("--json", "--user", user, "analyze", sid))
    before = analysis_rows(project, sid)
    project.server.clear()
    project.server.add_fault("POST", SAVE, "status", count=10, status=503,
                             body={"code": "PGRST001", "message": "Database client error", "details": None,
                                   "hint": None})
    r = sb("--user", user, "analyze", sid)
    assert r.rc == 13
    e = r.error()
    assert e["code"] == "server_error" and "503" in e["message"]
    assert e["details"]["http_status"] == 503 and e["details"]["code"] == "PGRST001"
    saves = project.server.requests("POST", SAVE)
    assert len(saves) == 3  # three attempts, then a clear error
    assert e["correlation_id"] == saves[-1]["correlation_id"]
    assert analysis_rows(project, sid) == before


def test_a_failure_inside_the_save_transaction_leaves_nothing_partial(sb, fresh_project, tmp_path):
    p = fresh_project
    cli = make_cli(tmp_path, p.server.url, SERVICE_KEY)
    user = new_user()
    sid = new_session(cli, user)
    ok(cli("--json", "--user", user, "analyze", sid))
    before = analysis_rows(p, sid)
    # the fifth angle embedding of the save fails inside the transaction
    p.query("create function fail_raised() returns trigger language plpgsql as $$ begin "
            "raise exception 'disk on fire' using errcode = 'XX001'; end $$;"
            "create trigger fail_raised before insert on angle_embeddings for each row "
            "when (new.angle = 'raised') execute function fail_raised()")
    r = cli("--user", user, "analyze", sid)
    assert r.rc == 13 and r.error()["code"] == "server_error"
    assert "disk on fire" in r.error()["message"]
    assert analysis_rows(p, sid) == before
    p.query("drop trigger fail_raised on angle_embeddings")
    ok(cli("--json", "--user", user, "analyze", sid))
    assert analysis_rows(p, sid)[0][2] > before[0][2]


def test_a_statement_timeout_is_not_retried(sb, project):
    user = new_user()
    sid = new_session(sb, user)
    project.server.add_fault("POST", SAVE, "status", count=5, status=500,
                             body={"code": "57014", "message": "canceling statement due to statement timeout",
                                   "details": None, "hint": None})
    r = sb("--user", user, "analyze", sid)
    assert r.rc == 13 and r.error()["details"]["code"] == "57014"
    assert len(project.server.requests("POST", SAVE)) == 1


def test_429_waits_for_retry_after(sb, project):
    user = new_user()
    sid = ok(sb("--json", "--user", user, "session", "create"))["session_id"]
    project.server.add_fault("GET", r"^/rest/v1/bcd_session_overview$", "status", status=429,
                             headers={"Retry-After": "1"}, body={"message": "slow down"})
    t = time.monotonic()
    info = ok(sb("--json", "--user", user, "session", "info", sid))
    assert time.monotonic() - t >= 1.0
    assert info["session_id"] == sid
    gets = project.server.requests("GET", r"^/rest/v1/bcd_session_overview$")
    assert gets[1]["time"] - gets[0]["time"] >= 1.0


def test_a_complete_that_keeps_failing_changes_nothing(sb, project):
    user = new_user()
    sid = new_session(sb, user, complete=False)
    project.server.add_fault("PATCH", r"^/rest/v1/sessions$", "status", count=10, status=502,
                             body={"message": "bad gateway"})
    r = sb("--user", user, "session", "complete", sid)
    assert r.rc == 13
    assert project.query("select status from sessions where id = %s", (sid,))[0][0] == "created"


def test_timeouts_and_unreachable_servers_are_network_errors(sb, project, tmp_path):
    user = new_user()
    project.server.add_fault("GET", r"^/rest/v1/bcd_session_overview$", "delay", count=3, seconds=2.5)
    t = time.monotonic()
    r = sb("--user", user, "session", "list", env_extra={"BCD_HTTP_TIMEOUT_MS": "500"})
    assert r.rc == 13 and r.error()["code"] == "network_timeout"
    assert r.error()["correlation_id"]
    assert time.monotonic() - t < 15
    # a write whose every attempt times out: the insert may commit after all (the server
    # is only slow), and the one read-back may come before or after that; either way the
    # outcome is one session at most, and a failure is a timeout
    project.server.add_fault("POST", r"^/rest/v1/sessions$", "delay", count=3, seconds=2.5)
    r = sb("--json", "--user", user, "session", "create", env_extra={"BCD_HTTP_TIMEOUT_MS": "500"})
    assert r.rc == 0 or (r.rc == 13 and r.error()["code"] == "network_timeout"), r.err
    for _ in range(100):  # the slow requests finish on the server side
        rows = project.query("select id::text from sessions where user_id = %s", (user,))
        if rows:
            break
        time.sleep(0.1)
    time.sleep(2.6)  # and the later attempts of it too
    rows = project.query("select id::text from sessions where user_id = %s", (user,))
    assert len(rows) == 1  # three attempts, one id, one row
    if r.rc == 0:
        assert r.json()["session_id"] == rows[0][0]
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    cli = make_cli(tmp_path, "http://127.0.0.1:%d" % port, SERVICE_KEY)
    r = cli("--user", user, "session", "list")
    assert r.rc == 13 and r.error()["code"] == "network_error"


def test_a_wrong_key_is_401_and_no_key_is_ever_printed(project, tmp_path):
    wrong = "sb_secret_" + "w" * 32
    cli = make_cli(tmp_path, project.server.url, wrong)
    user = new_user()
    for args in (("session", "create"), ("session", "list"), ("image", "preview", new_user(), "front")):
        r = cli("--user", user, *args)
        assert r.rc == 12, r.err
        e = r.error()
        assert e["code"] == "supabase_unauthorized"
        assert "Invalid API key" in e["message"]
        assert e["correlation_id"]
        assert wrong not in r.err and wrong not in r.out
        assert SERVICE_KEY not in r.err
    # a server that echoes the key back in its error text: scrubbed
    project.server.add_fault("GET", r"^/rest/v1/bcd_session_overview$", "status", status=400,
                             body={"code": "22023", "message": "bad request from " + SERVICE_KEY, "details":
                                   "apikey=" + SERVICE_KEY, "hint": None})
    ok_cli = make_cli(tmp_path, project.server.url, SERVICE_KEY)
    r = ok_cli("--user", user, "session", "list")
    assert r.rc != 0
    assert SERVICE_KEY not in r.err and "[redacted]" in r.err
    project.server.clear()


def test_a_project_without_the_schema_says_so(sb, project):
    project.server.add_fault("POST", r"^/rest/v1/sessions$", "status", status=404,
                             body={"code": "PGRST205", "message": "Could not find the table 'public.sessions' in the "
                                   "schema cache", "details": None, "hint": None})
    r = sb("--user", new_user(), "session", "create")
    assert r.rc == 5 and r.error()["code"] == "store_schema_missing"
    assert "supabase/migrations" in r.error()["message"]


def spawn(cli_env, *args):
    return subprocess.Popen([CLI, "--store", "supabase", "--json", *args], env=cli_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.fixture
def cli_env(project, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BCD_", "SUPABASE_"))}
    env.update(HOME=str(tmp_path), SUPABASE_URL=project.server.url, SUPABASE_SERVICE_ROLE_KEY=SERVICE_KEY)
    return env


def test_registration_races_are_settled_by_the_constraints(sb, project, cli_env):
    import json
    user = new_user()
    sid = ok(sb("--json", "--user", user, "session", "create"))["session_id"]
    # eight "next index" registrations of different paths at once: 0..7, no gap, no duplicate
    procs = [spawn(cli_env, "--user", user, "image", "register", sid, "front", "race/p%d.jpg" % i) for i in range(8)]
    outs = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in procs]
    assert all(rc == 0 for rc, _, _ in outs), [e for _, _, e in outs]
    idx = sorted(json.loads(o)["order_index"] for _, o, _ in outs)
    assert idx == list(range(8))
    # the same path four times at once: one row, one "created"
    procs = [spawn(cli_env, "--user", user, "image", "register", sid, "left", "race/same.jpg") for _ in range(4)]
    outs = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in procs]
    assert all(rc == 0 for rc, _, _ in outs), [e for _, _, e in outs]
    assert sum(json.loads(o)["created"] for _, o, _ in outs) == 1
    # one slot, different paths: one wins, the others conflict
    procs = [spawn(cli_env, "--user", user, "image", "register", sid, "up", "race/up%d.jpg" % i, "--order-index", "0")
             for i in range(4)]
    outs = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in procs]
    assert sorted(rc for rc, _, _ in outs) == [0, 9, 9, 9]
    for rc, _, err in outs:
        if rc == 9:
            assert json.loads(err.splitlines()[0])["error"]["code"] == "slot_conflict"
    rows = project.query("select image_type, count(*) from images where session_id = %s group by 1 order by 1",
                         (sid,))
    assert rows == [("front", 8), ("left", 1), ("up", 1)]
    assert any(r["path"] == "/rest/v1/images" and r["method"] == "POST" for r in project.server.requests())
