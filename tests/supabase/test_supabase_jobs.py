"""Asynchronous analysis through libbcd's supabase store (lib/store/supabase.c, job
operations) against PostgreSQL + the test server: bcd-cli analyze --async, bcd-cli worker
--drain, bcd-cli job status. Several workers on one queue do every job once; a worker
killed with SIGKILL loses nothing (its lease runs out, another worker takes the job); a
corrupt image fails its job for good with a clear error and no analysis.

Sessions beyond the first are cloned in SQL (rows + stored objects) from one made through
bcd-cli, with 3 angles each, to keep the suite fast."""
import json
import os
import shutil
import signal
import subprocess
import time
import uuid

from conftest import ANGLES, CLI, SERVICE_KEY, make_cli, new_session, new_user, ok


def cli_for(p, tmp_path):
    return make_cli(tmp_path, p.server.url, SERVICE_KEY)


def clone_session(p, template, user=None):
    """A completed copy of session `template` (its images and their stored objects) for a
    new user; returns (session id, user)."""
    user = user or new_user()
    sid = str(uuid.uuid4())
    p.query("insert into public.sessions (id, user_id, status) values (%s, %s, 'completed')", (sid, user))
    rows = p.query("select image_type, order_index, storage_path, content_type, size_bytes, sha256 "
                   "from public.images where session_id = %s", (template,))
    bucket = os.path.join(p.storage, "bcd-images")
    for angle, idx, path, ctype, size, sha in rows:
        assert path.startswith(template + "/"), path
        key = sid + path[len(template):]
        os.makedirs(os.path.join(bucket, sid), exist_ok=True)
        shutil.copyfile(os.path.join(bucket, path), os.path.join(bucket, key))
        if os.path.exists(os.path.join(bucket, path + ".meta")):
            shutil.copyfile(os.path.join(bucket, path + ".meta"), os.path.join(bucket, key + ".meta"))
        p.query("insert into public.images (session_id, image_type, order_index, storage_path, content_type, "
                "size_bytes, sha256) values (%s, %s, %s, %s, %s, %s, %s)", (sid, angle, idx, key, ctype, size, sha))
    return sid, user


def enqueue(cli, sid, user):
    q = ok(cli("--json", "--user", user, "analyze", sid, "--async"))
    assert q["created"] is True and q["status"] == "processing"
    return q["job_id"]


def worker(tmp_path, p, name):
    """A `bcd-cli worker --drain` process of its own (own HOME and data folder)."""
    home = tmp_path / name
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BCD_", "SUPABASE_"))}
    env.update(HOME=str(home), BCD_DATA_DIR=str(home / "data"), BCD_HTTP_TIMEOUT_MS="20000",
               SUPABASE_URL=p.server.url, SUPABASE_SERVICE_ROLE_KEY=SERVICE_KEY)
    return subprocess.Popen([CLI, "--json", "worker", "--drain", "--store", "supabase"], env=env, cwd=str(home),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc, timeout=120):
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return json.loads(out)


def jobs_of(p):
    return p.query("select id::text, session_id::text, status, attempts, worker_id, error_code, error "
                   "from public.bcd_jobs order by seq")


def test_async_analyze_then_worker_then_status(fresh_project, tmp_path):
    p = fresh_project
    cli = cli_for(p, tmp_path)
    user = new_user()
    sid = new_session(cli, user, angles=ANGLES[:3])
    job = enqueue(cli, sid, user)
    st = ok(cli("--json", "--user", user, "job", "status", job))
    assert st["status"] == "queued" and st["attempts"] == 0 and st["job_id"] == job and st["session_id"] == sid
    assert st["error"] is None
    assert ok(cli("--json", "--user", user, "job", "status", "--session", sid))["job_id"] == job
    again = ok(cli("--json", "--user", user, "analyze", sid, "--async"))
    assert again["job_id"] == job and again["created"] is False
    assert cli("--json", "--user", user, "analysis", "get", sid).rc == 8
    # another user's job is not theirs; an unknown job is not found
    assert cli("--json", "--user", new_user(), "job", "status", job).error()["code"] == "job_not_found"
    assert cli("--json", "--user", user, "job", "status", str(uuid.uuid4())).error()["code"] == "job_not_found"

    summary = ok(cli("--json", "worker", "--drain"))
    assert summary["jobs_done"] == 1 and summary["jobs_failed"] == 0
    st = ok(cli("--json", "--user", user, "job", "status", job))
    assert st["status"] == "done" and st["attempts"] == 1 and st["analysis_available"] is True
    assert st["finished_at"] and st["error"] is None
    got = ok(cli("--json", "--user", user, "analysis", "get", sid))["data"]["session_analysis"]
    assert got["session_id"] == sid
    assert {a["angle_type"] for a in got["per_angle"]} == set(ANGLES[:3])
    # finished: a new --async is a re-analysis
    q2 = ok(cli("--json", "--user", user, "analyze", sid, "--async"))
    assert q2["created"] is True and q2["job_id"] != job
    # nothing went through a claim twice
    assert len(p.server.requests("POST", r"/rpc/bcd_claim_job$")) >= 1


def test_four_workers_do_forty_jobs_once_each(fresh_project, tmp_path):
    p = fresh_project
    cli = cli_for(p, tmp_path)
    user = new_user()
    template = new_session(cli, user, angles=ANGLES[:3])
    sessions = [(template, user)] + [clone_session(p, template) for _ in range(39)]
    # queue through the store (the first few) and straight through the RPC (the rest)
    for sid, u in sessions[:4]:
        enqueue(cli, sid, u)
    for sid, u in sessions[4:]:
        p.query("select public.bcd_enqueue_job(%s, %s, null, 3)", (sid, u))
    assert len(jobs_of(p)) == 40

    procs = [worker(tmp_path, p, "w%d" % i) for i in range(4)]
    summaries = [finish(pr, timeout=240) for pr in procs]
    assert sum(s["jobs_done"] for s in summaries) == 40
    assert sum(s["jobs_failed"] for s in summaries) == 0
    rows = jobs_of(p)
    assert len(rows) == 40
    assert all(r[2] == "done" and r[3] == 1 for r in rows), [r for r in rows if r[2] != "done" or r[3] != 1]
    assert len({r[4] for r in rows}) >= 2  # the work was shared
    analyzed = p.query("select session_id::text, count(*) from public.session_analysis group by session_id")
    assert sorted(analyzed) == sorted((sid, 1) for sid, _ in sessions)


def test_worker_killed_mid_job_loses_nothing(fresh_project, tmp_path):
    p = fresh_project
    cli = cli_for(p, tmp_path)
    user = new_user()
    template = new_session(cli, user, angles=ANGLES[:3])
    sid, u = clone_session(p, template)
    job = enqueue(cli, sid, u)
    # short leases; the first worker hangs reading the session's images
    p.server.job_lease_ms = 1500
    p.server.add_fault("GET", "/" + sid + "/", "delay", count=3, seconds=20)
    a = worker(tmp_path, p, "a")
    deadline = time.time() + 60
    while time.time() < deadline:
        row = jobs_of(p)[0]
        if row[2] == "running" and p.server.requests("GET", "/" + sid + "/"):
            break
        time.sleep(0.05)
    else:
        a.kill()
        raise AssertionError("the first worker never started the job")
    first = row[4]
    a.send_signal(signal.SIGKILL)
    a.wait(timeout=30)
    p.server.clear()
    p.server.job_lease_ms = 1500
    assert jobs_of(p)[0][2] == "running"  # held by a dead worker until its lease ends

    b = worker(tmp_path, p, "b")
    summary = finish(b)
    assert summary["jobs_done"] == 1 and summary["jobs_failed"] == 0
    st = ok(cli("--json", "--user", u, "job", "status", job))
    assert st["status"] == "done" and st["attempts"] == 2 and st["error"] is None
    row = jobs_of(p)[0]
    assert row[4] != first
    assert ok(cli("--json", "--user", u, "analysis", "get", sid))["data"]["session_analysis"]["session_id"] == sid
    assert p.query("select count(*) from public.session_analysis where session_id = %s", (sid,))[0][0] == 1


def test_corrupt_image_job_fails_with_a_clear_error(fresh_project, tmp_path):
    p = fresh_project
    cli = cli_for(p, tmp_path)
    user = new_user()
    template = new_session(cli, user, angles=ANGLES[:3])
    sid, u = clone_session(p, template)
    path = p.query("select storage_path from public.images where session_id = %s and image_type = 'left'",
                   (sid,))[0][0]
    obj = os.path.join(p.storage, "bcd-images", path)
    data = open(obj, "rb").read()
    job = enqueue(cli, sid, u)
    with open(obj, "wb") as f:
        f.write(data[:200])
    summary = ok(cli("--json", "worker", "--drain"))
    assert summary["jobs_failed"] == 1 and summary["jobs_done"] == 0
    st = ok(cli("--json", "--user", u, "job", "status", job))
    assert st["status"] == "failed" and st["attempts"] == 1, st
    assert st["error_code"] in ("image_corrupt", "blob_corrupt"), st  # a truncated blob fails its SHA-256 name
    assert "left" in st["error"] or path in st["error"], st
    assert cli("--json", "--user", u, "analysis", "get", sid).error()["code"] == "analysis_not_found"
    assert p.query("select count(*) from public.session_analysis where session_id = %s", (sid,))[0][0] == 0
    assert p.query("select count(*) from public.angle_analysis where session_id = %s", (sid,))[0][0] == 0


def test_finish_whose_answer_was_lost_is_recognised_on_retry(fresh_project, tmp_path):
    p = fresh_project
    cli = cli_for(p, tmp_path)
    user = new_user()
    sid = new_session(cli, user, angles=ANGLES[:3])
    job = enqueue(cli, sid, user)
    # the finish commits but its answer never arrives: the retry meets 409 (the job is no
    # longer running) and recognises its own outcome in the job the error carries
    p.server.add_fault("POST", r"/rpc/bcd_finish_job$", "drop_after")
    summary = ok(cli("--json", "worker", "--drain"))
    assert summary["jobs_done"] == 1 and summary["jobs_failed"] == 0, summary
    assert len(p.server.requests("POST", r"/rpc/bcd_finish_job$")) == 2
    st = ok(cli("--json", "--user", user, "job", "status", job))
    assert st["status"] == "done" and st["attempts"] == 1
    # a claim whose answer is lost: the job it took stays running until its (short) lease
    # ends, then the worker takes it over; nothing is lost
    p.server.clear()
    job2 = ok(cli("--json", "--user", user, "analyze", sid, "--async"))["job_id"]
    p.server.job_lease_ms = 1000
    p.server.add_fault("POST", r"/rpc/bcd_claim_job$", "drop_after")
    r = cli("--json", "worker", "--drain")
    assert r.rc == 0, r.err
    row = [x for x in jobs_of(p) if x[0] == job2][0]
    assert row[2] == "done" and row[3] == 2, row
