"""Crash consistency of the local store: bcd-cli is killed with SIGKILL at random points of
`image add`, `analyze`, a worker's analysis (`analyze --async` + `worker --drain`) and a
re-analysis after a change. After every kill the store must hold the state from before
the command or the state after it, whole (checked table by table against a reference
run, and blob by blob against the rows), with no orphan or temporary file once the store
has been opened again; and running the same command again must end in the new state.

Kill points: one run in ten is killed at once; about a third of the runs are killed by
the faultfs shim itself just before the n-th write of the command (n uniform over the
writes a reference run makes; half of them with that write torn, half done); the others
after a delay measured at run time (so the ASan build, slower, is covered as well),
uniform over the stretch where the command writes to the store or over its whole run. The seed is
printed and BCD_CRASH_SEED=<seed> replays a run; every failure names the seed, the run
and the delay. BCD_CRASH_RUNS scales the number of runs (default 1: 215 runs; under ASan,
where an analysis takes seconds, the analysis commands get fewer runs, at least 8 each).

The kills run under the faultfs shim in trace mode (no fault), so the test can tell
which kills landed in the middle of the command's writes: after its first write to the
store (blob file or database log) and before its last one (the log checkpointed and
removed on close).
"""
import os
import random
import shutil
import statistics

import pytest

from conftest import (ANGLES, EXAMPLES, base_env, build_templates, connect, copy_store, debris, kill_run, new_session, ok, run,
                      snapshot, timed_run, trace_ops, with_faultfs, without, SANITIZED)

SEED = int(os.environ.get("BCD_CRASH_SEED") or random.SystemRandom().randrange(1 << 31))
SCALE = float(os.environ.get("BCD_CRASH_RUNS", "1"))
RUNS = {"image_add": 65, "analyze": 50, "worker": 50, "reanalyze": 50}
SUMMARY = {}
ASAN_BUDGET_S = 40  # seconds of kill runs per command under ASan


@pytest.fixture(scope="module")
def templates(tmp_path_factory):
    return build_templates(tmp_path_factory.mktemp("templates"))


def data_writes(trace):
    """The writes of a traced run that change stored data: writes, syncs, renames, links,
    removals (creating the database's log file on open does not count)."""
    return [op for op in trace_ops(trace) if not op[0].startswith("open")]


def job_state(snap):
    return [(j[1], j[2]) for j in snap["jobs"]]


def expire_leases(data_dir):
    """What the passing of a dead worker's lease (60 s) does, without waiting for it."""
    con = connect(data_dir)
    with con:
        con.execute("UPDATE jobs SET lease_until_ms = 0 WHERE status = 'running'")
    con.close()


def check_after_kill(name, old, new, snap):
    """The state after a kill: the old one or the new one, whole."""
    if name != "worker":
        assert snap in (old, new), "neither the state before nor the state after the command"
        return "old" if snap == old else "new"
    # a worker also moves its job: queued -> running (claimed) -> done
    body, old_body, new_body = (without(s, "jobs") for s in (snap, old, new))
    assert body in (old_body, new_body), "analysis neither absent nor the new one, whole"
    jobs = job_state(snap)
    assert jobs in ([("queued", 0)], [("running", 1)], [("done", 1)]), "job in state %s" % jobs
    if jobs == [("done", 1)]:
        assert body == new_body, "job done without its analysis"
    return "old" if body == old_body else "new"


def scenario(name, templates, work, trace_ok):
    template, args, sid = templates[name]
    rng = random.Random("%d-%s" % (SEED, name))
    runs = max(1, int(RUNS[name] * SCALE))
    old = snapshot(str(template))

    # calibration: reference runs to completion, timed (under the shim as the kills are);
    # the longest one sets the span, so that the last writes are within reach
    durations, windows, new, ref_ops = [], [], None, None
    for k in range(5):
        d = work / ("%s-ref%d" % (name, k))
        copy_store(template, d / "data")
        env = base_env(d / "data", home=d)
        if trace_ok:
            env = with_faultfs(env, d / "data", trace=d / "trace")
        secs, r, t0 = timed_run(env, args)
        assert r.rc == 0, r.err
        durations.append(secs)
        writes = data_writes(str(d / "trace"))
        if writes:  # when the command writes, in seconds from its start
            windows.append(((int(writes[0][2]) - t0) / 1e9, (int(writes[-1][2]) - t0) / 1e9))
        snap = snapshot(str(d / "data"))
        assert new is None or snap == new, "two reference runs of %s differ: the comparison would be meaningless" % name
        new = snap
        ops = len(data_writes(str(d / "trace")))
        ref_ops = ops if ref_ops is None else min(ref_ops, ops)
        shutil.rmtree(d)
    assert new != old, "the command changed nothing"
    span = max(durations)
    # half of the kills aim at the stretch where the command writes (median over the
    # calibration runs), the others at any point of its run
    lo, hi = (statistics.median(w[0] for w in windows), statistics.median(w[1] for w in windows)) \
        if windows else (0.0, span)
    if SANITIZED:
        # an analysis takes seconds under ASan: fewer runs there, same kill points per run
        runs = min(runs, max(8, int(ASAN_BUDGET_S / (2 * span))))
    print("\n[%s] seed=%d runs=%d calibrated duration %.1f ms, %s store writes from %.1f to %.1f ms" %
          (name, SEED, runs, span * 1000, ref_ops if trace_ok else "untraced", lo * 1000, hi * 1000))

    stats = {"runs": runs, "killed": 0, "timed_mid_write": 0, "write_point": 0, "debris": 0, "old": 0, "new": 0}
    for i in range(runs):
        point = trace_ok and i % 10 != 0 and i % 3 == 1 and ref_ops >= 2
        if point:
            # a crash at an exact write: the shim kills the process just before its
            # n-th write (torn: with half of that write done)
            n, torn = rng.randint(2, ref_ops), rng.random() < 0.5
            delay = None
            label = "seed=%d scenario=%s run=%d kill at write %d of %d%s" % (SEED, name, i, n, ref_ops,
                                                                              " (torn)" if torn else "")
        else:
            delay = 0.0 if i % 10 == 0 else rng.uniform(lo, hi) if i % 2 else rng.uniform(0, span)
            label = "seed=%d scenario=%s run=%d delay=%.3f ms" % (SEED, name, i, delay * 1000)
        d = work / ("%s-%d" % (name, i))
        data = d / "data"
        copy_store(template, data)
        env = base_env(data, home=d)
        kenv = env
        if point:
            kenv = with_faultfs(env, data, trace=d / "trace", kill_at=n, torn=int(torn))
        elif trace_ok:
            kenv = with_faultfs(env, data, trace=d / "trace")
        try:
            killed = kill_run(kenv, args, delay)
            ops = len(data_writes(str(d / "trace")))
            stats["killed"] += killed
            if point:
                assert killed, "the command ended before its write %d" % n
                stats["write_point"] += 1
            elif killed and trace_ok and 0 < ops < ref_ops:
                stats["timed_mid_write"] += 1
            if debris(str(data)):
                stats["debris"] += 1
            # the next open of the store cleans up after the crash
            ok(run(env, "--json", "session", "list"))
            snap = snapshot(str(data))
            stats[check_after_kill(name, old, new, snap)] += 1
            # the same command again ends in the new state
            if name == "worker":
                expire_leases(str(data))
            r = run(env, *args)
            assert r.rc == 0, "the command failed after the crash: %s" % r.err
            again = snapshot(str(data))
            if name == "worker":
                assert job_state(again) in ([("done", 1)], [("done", 2)])
                assert without(again, "jobs") == without(new, "jobs")
            else:
                assert again == new
        except AssertionError as e:
            raise AssertionError("%s (replay: BCD_CRASH_SEED=%d): %s" % (label, SEED, e)) from None
        shutil.rmtree(d)
    SUMMARY[name] = stats
    print("[%s] %s" % (name, stats))
    # the kills at delay 0 always land; the others may come after the end on a slow run
    assert stats["killed"] >= runs // 10
    return stats


def tracing_works(tmp_path):
    """The shim in trace mode loads and records (under ASan it must follow the runtime)."""
    d = tmp_path / "probe"
    env = with_faultfs(base_env(d / "data", home=tmp_path), d / "data", trace=tmp_path / "probe.trace")
    r = run(env, "--json", "session", "create")
    return r.rc == 0 and os.path.exists(tmp_path / "probe.trace")


@pytest.mark.parametrize("name", ["image_add", "analyze", "worker", "reanalyze"])
def test_kill_at_random_points(name, templates, tmp_path):
    trace_ok = tracing_works(tmp_path)
    if not SANITIZED:
        assert trace_ok, "the faultfs shim does not load"
    scenario(name, templates, tmp_path, trace_ok)


def test_open_cleans_up_after_an_interrupted_add(templates, tmp_path):
    """What a crashed `image add` can leave, made by hand: the next open of the store
    removes a pending file nobody holds, with the blob it names unless a row took it;
    a pending file that a live process holds (an add under way) is left alone."""
    import fcntl
    import hashlib
    template, args, sid = templates["image_add"]
    data = tmp_path / "data"
    copy_store(template, data)
    env = base_env(data, home=tmp_path)
    before = snapshot(str(data))
    pending = data / "blobs" / ".pending"
    assert pending.is_dir()
    img = open(os.path.join(EXAMPLES, "check1", "up.jpg"), "rb").read()
    sha = hashlib.sha256(img).hexdigest()
    final = data / "blobs" / sid / (sha + ".jpg")
    taken = before["images"][0][3]  # a blob a row names

    # 1. half-written pending file, no final blob
    (pending / ("%s.%s.jpg.aaaaaa" % (sid, sha))).write_bytes(img[:1000])
    ok(run(env, "--json", "session", "list"))
    assert list(pending.iterdir()) == [] and snapshot(str(data)) == before

    # 2. complete pending file linked to its final name, row never committed
    (pending / ("%s.%s.jpg.bbbbbb" % (sid, sha))).write_bytes(img)
    os.link(pending / ("%s.%s.jpg.bbbbbb" % (sid, sha)), final)
    ok(run(env, "--json", "session", "list"))
    assert list(pending.iterdir()) == [] and not final.exists() and snapshot(str(data)) == before

    # 3. pending file of a blob whose row did commit: only the pending file goes
    t_sha = taken.split("/")[1].split(".")[0]
    (pending / ("%s.%s.jpg.cccccc" % (sid, t_sha))).write_bytes(b"")
    ok(run(env, "--json", "session", "list"))
    assert list(pending.iterdir()) == [] and snapshot(str(data)) == before

    # 4. an add under way in another process (it holds its pending file): untouched
    live = pending / ("%s.%s.jpg.dddddd" % (sid, sha))
    live.write_bytes(img)
    os.link(live, final)
    with open(live, "rb") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        ok(run(env, "--json", "session", "list"))
        assert live.exists() and final.exists()
        # and an add of the same bytes meanwhile takes the blob as it is
        r = ok(run(env, *args))
        assert r["created"] is True and r["sha256"] == sha
    # once that process is gone, the next open removes its pending file, not the blob
    ok(run(env, "--json", "session", "list"))
    assert list(pending.iterdir()) == []
    after = snapshot(str(data))
    assert len(after["images"]) == len(before["images"]) + 1
