"""Store faults of the local store: a full disk, a read-only data directory and failing
writes or syncs of SQLite's write-ahead log, made with the faultfs shim (LD_PRELOAD),
which works for root too (chmod does not stop root). Each command must either succeed
and store its result, or fail with a clear error (exit code 5, BCD_EIO, a code and a
message naming the problem) and lose nothing: once the store is opened again without
the fault it is whole, in its state before the command (or after it, when the failure
came after the commit), and the same command then succeeds.

Under ASan the sanitizer runtime is preloaded ahead of the shim (it must come first);
the shim then sits behind the sanitizer's interceptors, which call it for the real
functions. BCD_CRASH_SEED replays the random disk-full points.
"""
import os
import random
import shutil

import pytest

from conftest import (base_env, build_templates, copy_store, ok, run, snapshot, trace_bytes, with_faultfs, without,
                      SANITIZED)

SEED = int(os.environ.get("BCD_CRASH_SEED") or random.SystemRandom().randrange(1 << 31))
SCALE = float(os.environ.get("BCD_CRASH_RUNS", "1"))
FULL_OPS = "write,open,mkdir,link"  # what a full disk refuses (existing files open fine)


@pytest.fixture(scope="module")
def templates(tmp_path_factory):
    return build_templates(tmp_path_factory.mktemp("templates"))


@pytest.fixture(scope="module")
def references(templates, tmp_path_factory):
    """Per command: (state before, state after, bytes it writes under the data dir)."""
    root = tmp_path_factory.mktemp("refs")
    refs = {}
    for name, (template, args, sid) in templates.items():
        d = root / name
        copy_store(template, d / "data")
        env = with_faultfs(base_env(d / "data", home=d), d / "data", trace=d / "trace")
        r = run(env, *args)
        assert r.rc == 0, "the shim does not load or the command fails: %s" % r.err
        refs[name] = (snapshot(str(template)), snapshot(str(d / "data")), trace_bytes(str(d / "trace")))
        assert refs[name][2] > 0
    return refs


def same_state(name, snap, want):
    if name == "worker":  # the queue moves on its own (attempts); the data must match
        return without(snap, "jobs") == without(want, "jobs")
    return snap == want


def check_outcome(name, r, old, new, data, env, codes, words):
    """After a command under a fault: success with the new state, or a clear error and a
    whole store (old state, or new when the failure came after the commit)."""
    if r.rc != 0:
        assert r.rc == 5, "exit %d (want 5, BCD_EIO): %s" % (r.rc, r.err)
        e = r.error()
        assert e["code"] in codes, e
        assert any(w in e["message"] for w in words), "message does not name the problem: %s" % e["message"]
    ok(run(env, "--json", "session", "list"))
    snap = snapshot(str(data))
    if r.rc == 0:
        assert same_state(name, snap, new), "success reported but the new state is not stored"
        return "ok"
    assert same_state(name, snap, old) or same_state(name, snap, new), "a partial state after the failure"
    return "failed-old" if same_state(name, snap, old) else "failed-new"


@pytest.mark.parametrize("name", ["image_add", "analyze", "reanalyze"])
def test_disk_full_at_random_points(name, templates, references, tmp_path):
    template, args, sid = templates[name]
    old, new, total = references[name]
    rng = random.Random("%d-full-%s" % (SEED, name))
    # under ASan an analysis takes seconds: fewer points there
    runs = max(1, int((4 if SANITIZED and name != "image_add" else 15) * SCALE))
    outcomes = {}
    for i in range(runs):
        after = 0 if i == 0 else rng.randint(0, total)
        label = "seed=%d %s run=%d: disk full after %d of %d bytes" % (SEED, name, i, after, total)
        d = tmp_path / str(i)
        copy_store(template, d / "data")
        env = base_env(d / "data", home=d)
        fenv = with_faultfs(env, d / "data", errno="ENOSPC", ops=FULL_OPS, after=after)
        try:
            r = run(fenv, *args)
            out = check_outcome(name, r, old, new, d / "data", env, {"store_full"}, ["no space left on device"])
            outcomes[out] = outcomes.get(out, 0) + 1
            ok(run(env, *args))
            assert same_state(name, snapshot(str(d / "data")), new)
        except AssertionError as e:
            raise AssertionError("%s: %s" % (label, e)) from None
        shutil.rmtree(d)
    print("\n[disk full %s] seed=%d %s" % (name, SEED, outcomes))
    assert outcomes.get("failed-old", 0) >= 1  # at 0 bytes it must fail and keep the old state


def test_disk_full_message_names_what_was_written(templates, tmp_path):
    template, args, sid = templates["image_add"]
    copy_store(template, tmp_path / "data")
    env = base_env(tmp_path / "data", home=tmp_path)
    old = snapshot(str(tmp_path / "data"))
    # the photo's file fills the disk
    r = run(with_faultfs(env, tmp_path / "data", errno="ENOSPC", ops=FULL_OPS, match="/blobs/", after=1000), *args)
    assert r.rc == 5
    e = r.error()
    assert e["code"] == "store_full"
    assert e["message"].startswith("no space left on device while writing the image file ")
    assert str(tmp_path) in e["message"]
    # the database's log fills the disk
    r = run(with_faultfs(env, tmp_path / "data", errno="ENOSPC", ops="write", match="-wal", after=100), *args)
    assert r.rc == 5
    e = r.error()
    assert e["code"] == "store_full"
    assert e["message"].startswith("no space left on device while writing the local database ")
    assert "bcd.sqlite3" in e["message"]
    ok(run(env, "--json", "session", "list"))
    assert snapshot(str(tmp_path / "data")) == old


@pytest.mark.parametrize("name", ["image_add", "analyze", "worker", "reanalyze"])
def test_read_only_data_dir(name, templates, references, tmp_path):
    template, args, sid = templates[name]
    old = references[name][0]
    copy_store(template, tmp_path / "data")
    env = base_env(tmp_path / "data", home=tmp_path)
    renv = with_faultfs(env, tmp_path / "data", errno="EROFS", ops="all")
    for a in (args, ["--json", "session", "create"]):
        r = run(renv, *a)
        assert r.rc == 5, r.err
        e = r.error()
        assert e["code"] == "store_unwritable", e
        assert "not writable (Read-only file system)" in e["message"], e["message"]
        assert str(tmp_path / "data") in e["message"]
    ok(run(env, "--json", "session", "list"))
    assert snapshot(str(tmp_path / "data")) == old
    # writable again: the command works
    ok(run(env, *args))


# SQLite's own log (WAL) failing: a write or a sync refused, at the first try or later.
JOURNAL_FAULTS = [
    ("ENOSPC", "write", "-wal", 0),
    ("EIO", "write", "-wal", 0),
    ("EIO", "write", "-wal", 20000),
    ("EIO", "fsync", "-wal", 0),
    ("EIO", "truncate", "-wal", 0),
    ("EIO", "fsync", "bcd.sqlite3$", 0),
    ("EIO", "write", "bcd.sqlite3$", 0),
]


@pytest.mark.parametrize("fault", JOURNAL_FAULTS, ids=lambda f: "%s-%s-%s-%d" % f)
@pytest.mark.parametrize("name", ["image_add", "reanalyze"])
def test_journal_failure(name, fault, templates, references, tmp_path):
    err, ops, match, after = fault
    if SANITIZED and name != "image_add" and fault not in JOURNAL_FAULTS[:2]:
        pytest.skip("under ASan an analysis takes seconds: the analysis gets the first two faults only "
                    "(the plain build runs them all)")
    template, args, sid = templates[name]
    old, new, total = references[name]
    copy_store(template, tmp_path / "data")
    env = base_env(tmp_path / "data", home=tmp_path)
    fenv = with_faultfs(env, tmp_path / "data", errno=err, ops=ops, match=match, after=after)
    r = run(fenv, *args)
    codes = {"store_full"} if err == "ENOSPC" else {"store_io_error"}
    words = ["no space left on device"] if err == "ENOSPC" else ["I/O error"]
    out = check_outcome(name, r, old, new, tmp_path / "data", env, codes, words)
    if r.rc != 0:
        assert "bcd.sqlite3" in r.error()["message"]
    print("\n[%s %s] %s" % (name, fault, out))
    ok(run(env, *args))
    assert snapshot(str(tmp_path / "data")) == new
