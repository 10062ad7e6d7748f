"""bcd-cli asynchronous analysis on the local store: analyze --async, job status, worker
(--drain, --concurrency, SIGTERM), and progress on stderr only on a terminal."""
import json
import os
import pty
import select
import signal
import subprocess
import time

from conftest import CLI, EXAMPLES

ANGLES = ["front", "left", "right", "up", "down", "raised"]


def ok(r):
    assert r.rc == 0, r.err
    return r.json()


def new_session(cli, user="alice", check="check1", angles=ANGLES):
    sid = ok(cli("--json", "--user", user, "session", "create"))["session_id"]
    for a in angles:
        ok(cli("image", "add", sid, a, os.path.join(EXAMPLES, check, a + ".jpg"), "--user", user, "--json"))
    ok(cli("--json", "session", "complete", sid, "--user", user))
    return sid


def env_of(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BCD_", "SUPABASE_"))}
    env["BCD_DATA_DIR"] = str(tmp_path / "data")
    env["HOME"] = str(tmp_path)
    env["BCD_USER"] = "alice"
    env.update(extra)
    return env


def test_async_analysis_then_worker_then_status(cli):
    sid = new_session(cli)
    q = ok(cli("--json", "--user", "alice", "analyze", sid, "--async"))
    assert q["status"] == "processing"
    assert q["session_id"] == sid and q["created"] is True
    job = q["job_id"]
    assert len(job) == 36

    st = ok(cli("--json", "--user", "alice", "job", "status", job))
    assert st["status"] == "queued" and st["attempts"] == 0 and st["error"] is None
    assert st["job_id"] == job and st["session_id"] == sid
    # the same job by session, and queueing again returns it
    assert ok(cli("--json", "--user", "alice", "job", "status", "--session", sid))["job_id"] == job
    again = ok(cli("--json", "--user", "alice", "analyze", sid, "--async"))
    assert again["job_id"] == job and again["created"] is False
    # nothing analyzed yet
    assert cli("--json", "--user", "alice", "analysis", "get", sid).rc == 8

    summary = ok(cli("--json", "worker", "--drain"))
    assert summary["jobs_done"] == 1 and summary["jobs_failed"] == 0

    st = ok(cli("--json", "--user", "alice", "job", "status", job))
    assert st["status"] == "done" and st["attempts"] == 1
    assert st["analysis_available"] is True and st["finished_at"]
    got = ok(cli("--json", "--user", "alice", "analysis", "get", sid))["data"]["session_analysis"]
    assert got["session_id"] == sid
    assert {p["angle_type"] for p in got["per_angle"]} == set(ANGLES)

    # finished: --async queues a new job (a re-analysis)
    q2 = ok(cli("--json", "--user", "alice", "analyze", sid, "--async"))
    assert q2["created"] is True and q2["job_id"] != job
    # readable text by default
    r = cli("--user", "alice", "job", "status", q2["job_id"])
    assert r.rc == 0 and "queued" in r.out and not r.out.lstrip().startswith("{")


def test_async_validates_like_analyze(cli):
    sid = ok(cli("--json", "--user", "alice", "session", "create"))["session_id"]
    r = cli("--json", "--user", "alice", "analyze", sid, "--async")
    assert r.rc == 10 and r.error()["code"] == "session_not_completed"
    done = new_session(cli, angles=ANGLES[:3])
    r = cli("--json", "--user", "bob", "analyze", done, "--async")
    assert r.rc == 8 and r.error()["code"] == "session_not_found"
    job = ok(cli("--json", "--user", "alice", "analyze", done, "--async"))["job_id"]
    # another user's job is not found, like a missing one
    r = cli("--json", "--user", "bob", "job", "status", job)
    assert r.rc == 8 and r.error()["code"] == "job_not_found"
    r = cli("--json", "--user", "alice", "job", "status", "not-a-uuid")
    assert r.rc == 3 and r.error()["code"] == "invalid_job_id"


def test_job_status_and_worker_usage_errors(cli):
    assert cli("job", "status").rc == 2
    assert cli("job", "status", "00000000-0000-4000-8000-000000000000", "--session",
               "00000000-0000-4000-8000-000000000000").rc == 2
    assert cli("worker", "--concurrency", "0").rc == 2
    assert cli("worker", "--concurrency", "x").rc == 2
    assert cli("worker", "extra").rc == 2
    h = cli("worker", "--help")
    assert h.rc == 0 and "--drain" in h.out and "--concurrency" in h.out
    assert "--async" in cli("analyze", "--help").out


def test_worker_with_concurrency_runs_every_job_once(cli):
    sids = [new_session(cli, check="check%d" % (1 + i % 2), angles=ANGLES[:3]) for i in range(6)]
    jobs = [ok(cli("--json", "--user", "alice", "analyze", s, "--async"))["job_id"] for s in sids]
    summary = ok(cli("--json", "worker", "--drain", "--concurrency", "3"))
    assert summary["jobs_done"] == 6 and summary["concurrency"] == 3
    for j in jobs:
        st = ok(cli("--json", "--user", "alice", "job", "status", j))
        assert st["status"] == "done" and st["attempts"] == 1


def test_corrupt_image_job_fails_with_a_clear_error(cli, tmp_path):
    sid = ok(cli("--json", "--user", "alice", "session", "create"))["session_id"]
    for a in ANGLES[:2]:
        ok(cli("image", "add", sid, a, os.path.join(EXAMPLES, "check1", a + ".jpg"), "--user", "alice", "--json"))
    bad = tmp_path / "up.jpg"
    bad.write_bytes(open(os.path.join(EXAMPLES, "check1", "up.jpg"), "rb").read())
    ok(cli("--json", "--user", "alice", "image", "register", sid, "up", str(bad)))
    ok(cli("--json", "--user", "alice", "session", "complete", sid))
    job = ok(cli("--json", "--user", "alice", "analyze", sid, "--async"))["job_id"]
    bad.write_bytes(bad.read_bytes()[:200])
    summary = ok(cli("--json", "worker", "--drain", env_extra={"BCD_IMAGE_DIRS": str(tmp_path)}))
    assert summary["jobs_failed"] == 1
    st = ok(cli("--json", "--user", "alice", "job", "status", job))
    assert st["status"] == "failed" and st["attempts"] == 1
    assert st["error_code"] == "image_corrupt" and "up" in st["error"]
    assert cli("--json", "--user", "alice", "analysis", "get", sid).error()["code"] == "analysis_not_found"


def test_worker_exits_cleanly_on_sigterm_after_the_current_job(cli, tmp_path):
    sids = [new_session(cli, angles=ANGLES[:3]) for _ in range(3)]
    jobs = [ok(cli("--json", "--user", "alice", "analyze", s, "--async"))["job_id"] for s in sids]
    p = subprocess.Popen([CLI, "--json", "worker"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=env_of(tmp_path), cwd=tmp_path, stdin=subprocess.DEVNULL)
    try:
        # no --drain: it only stops when told; wait until it has done some work
        deadline = time.time() + 120
        while time.time() < deadline:
            states = [ok(cli("--json", "--user", "alice", "job", "status", j))["status"] for j in jobs]
            if "done" in states:
                break
            time.sleep(0.05)
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err
    summary = json.loads(out)
    assert summary["stopped"] is True and summary["jobs_done"] >= 1
    states = [ok(cli("--json", "--user", "alice", "job", "status", j))["status"] for j in jobs]
    assert "running" not in states  # the job under way was finished, none left half-done
    assert states.count("done") == summary["jobs_done"]
    # the idle worker stops on SIGINT too
    p = subprocess.Popen([CLI, "--json", "worker"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=env_of(tmp_path), cwd=tmp_path, stdin=subprocess.DEVNULL)
    time.sleep(0.5)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert json.loads(out)["stopped"] is True


def run_with_tty_stderr(args, env, cwd):
    """Run bcd-cli with stderr on a pseudo-terminal; returns (rc, stdout, stderr text)."""
    master, slave = pty.openpty()
    p = subprocess.Popen([CLI, *args], stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL,
                         env=env, cwd=cwd)
    os.close(slave)
    chunks = []
    while True:
        r, _, _ = select.select([master], [], [], 120)
        if not r:
            break
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    out = p.stdout.read()
    p.wait(timeout=120)
    os.close(master)
    return p.returncode, out.decode(), b"".join(chunks).decode(errors="replace")


def test_progress_only_on_a_terminal_and_never_on_stdout(cli, tmp_path):
    sid = new_session(cli)
    env = env_of(tmp_path)
    rc, out, err = run_with_tty_stderr(["analyze", sid], env, tmp_path)
    assert rc == 0, err
    assert "analyze:" in err and "of 6" in err and " s" in err  # what, n of N, elapsed
    assert "\r" in err
    assert "analyze:" not in out and "\r" not in out
    # --json: no progress even on a terminal; stdout is the JSON document alone
    rc, out, err = run_with_tty_stderr(["--json", "analyze", sid], env, tmp_path)
    assert rc == 0 and "analyze:" not in err
    json.loads(out)
    # stderr not a terminal: no progress
    r = cli("--user", "alice", "analyze", sid)
    assert r.rc == 0 and "analyze:" not in r.err and "\r" not in r.err

    ok(cli("--json", "--user", "alice", "analyze", sid, "--async"))
    rc, out, err = run_with_tty_stderr(["worker", "--drain"], env, tmp_path)
    assert rc == 0, err
    assert "worker" in err and "done" in err
    assert "\r" not in out and "worker #" not in out
    ok(cli("--json", "--user", "alice", "analyze", sid, "--async"))
    rc, out, err = run_with_tty_stderr(["--json", "worker", "--drain"], env, tmp_path)
    assert rc == 0 and err.strip() == ""
    assert json.loads(out)["jobs_done"] == 1
