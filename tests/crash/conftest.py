"""Helpers of the crash tests: run bcd-cli on a data directory (optionally under the
faultfs shim), and read a local store back to check its invariants.

A store is consistent when:
  - PRAGMA integrity_check is ok and no foreign key is dangling;
  - every image row that names a blob has its file, of the row's size and SHA-256;
  - every file under blobs/ is such a blob (no orphan, no temporary file) once the store
    has been opened again after a crash (the store cleans up on open).
"""
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import time

CLI = os.environ.get("BCD_CLI", "bcd-cli")
FAULTFS = os.environ.get("BCD_FAULTFS", "")
SOURCE = os.environ.get("BCD_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))
EXAMPLES = os.path.join(SOURCE, "examples", "data")
ANGLES = ["front", "left", "right", "up", "down", "raised"]
USER = "crash-user"
BLOB_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/[0-9a-f]{64}\.[a-z0-9]{1,8}$")


def _sanitizer_runtime():
    """The ASan runtime bcd-cli is linked with, or None (plain build)."""
    try:
        out = subprocess.run(["ldd", CLI], capture_output=True, text=True, timeout=30).stdout
    except OSError:
        return None
    for line in out.splitlines():
        if "libasan" in line and "=>" in line:
            path = line.split("=>")[1].split("(")[0].strip()
            if os.path.exists(path):
                return path
    return None


ASAN_RUNTIME = _sanitizer_runtime()
SANITIZED = ASAN_RUNTIME is not None


def base_env(data_dir, home=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BCD_", "SUPABASE_", "FAULTFS_"))}
    env.pop("LD_PRELOAD", None)
    env["BCD_DATA_DIR"] = str(data_dir)
    env["HOME"] = str(home or os.path.dirname(str(data_dir)))
    os.makedirs(env["HOME"], exist_ok=True)
    env["BCD_USER"] = USER
    env["BCD_MODEL"] = "builtin"
    # the lesions read the photos again at full size and store nothing of their own (they
    # are saved with the analysis): they would only slow the hundreds of runs down
    env["BCD_LESIONS"] = "off"
    return env


def with_faultfs(env, data_dir, **opts):
    """env plus the shim: FAULTFS_DIR = data_dir and FAULTFS_<KEY> = value for opts.
    Under ASan the sanitizer runtime must come first in the preload list: it is put
    there, and the shim then sits behind the sanitizer's own interceptors."""
    e = dict(env)
    e["LD_PRELOAD"] = ":".join(([ASAN_RUNTIME] if ASAN_RUNTIME else []) + [FAULTFS])
    e["FAULTFS_DIR"] = os.path.realpath(str(data_dir))
    for k, v in opts.items():
        e["FAULTFS_" + k.upper()] = str(v)
    return e


class Result:
    def __init__(self, rc, out, err):
        self.rc, self.out, self.err = rc, out, err

    def json(self):
        return json.loads(self.out)

    def error(self):
        """The error envelope printed on stderr (its first JSON line)."""
        for line in self.err.splitlines():
            if line.startswith("{"):
                return json.loads(line)["error"]
        raise AssertionError("no error envelope on stderr: %r" % self.err)


def run(env, *args, timeout=300):
    p = subprocess.run([CLI, *map(str, args)], capture_output=True, text=True, env=env, timeout=timeout,
                       stdin=subprocess.DEVNULL, cwd=env["HOME"])
    return Result(p.returncode, p.stdout, p.stderr)


def ok(r):
    assert r.rc == 0, r.err
    return r.json() if r.out.strip().startswith("{") else r.out


def timed_run(env, args):
    """Run to completion; (seconds from spawn to exit, Result, CLOCK_MONOTONIC ns at spawn)."""
    t0 = time.monotonic_ns()
    p = subprocess.Popen([CLI, *map(str, args)], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, cwd=env["HOME"])
    out, err = p.communicate(timeout=300)
    return (time.monotonic_ns() - t0) / 1e9, Result(p.returncode, out, err), t0


def kill_run(env, args, delay):
    """Start bcd-cli and SIGKILL it `delay` seconds later (0: at once; None: no kill from
    here, the faultfs shim kills it at a write). Returns True when it died of SIGKILL
    (the process had not exited yet)."""
    with tempfile.TemporaryFile() as errf:
        p = subprocess.Popen([CLI, *map(str, args)], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=errf, cwd=env["HOME"])
        if delay is not None:
            if delay > 0:
                time.sleep(delay)
            p.kill()
        rc = p.wait(timeout=300)
        if rc not in (0, -9):
            errf.seek(0)
            raise AssertionError("bcd-cli %s exited %d before the kill: %s" % (args, rc, errf.read().decode()))
        return rc == -9


def new_session(env, check="check1", angles=ANGLES, complete=True):
    sid = ok(run(env, "--json", "session", "create"))["session_id"]
    for a in angles:
        ok(run(env, "--json", "image", "add", sid, a, os.path.join(EXAMPLES, check, a + ".jpg")))
    if complete:
        ok(run(env, "--json", "session", "complete", sid))
    return sid


def copy_store(src, dst):
    shutil.copytree(src, dst, symlinks=True)


def debris(data_dir):
    """Files under blobs/ that are not final blob names (temporary or pending files)."""
    blobs = os.path.join(data_dir, "blobs")
    out = []
    for root, dirs, files in os.walk(blobs):
        for f in files:
            rel = os.path.relpath(os.path.join(root, f), blobs)
            if not BLOB_RE.match(rel):
                out.append(rel)
    return sorted(out)


def blob_files(data_dir):
    blobs = os.path.join(data_dir, "blobs")
    out = []
    for root, dirs, files in os.walk(blobs):
        for f in files:
            out.append(os.path.relpath(os.path.join(root, f), blobs))
    return sorted(out)


def connect(data_dir):
    db = os.path.join(data_dir, "bcd.sqlite3")
    assert os.path.exists(db), "no database in %s" % data_dir
    con = sqlite3.connect("file:%s?mode=rw" % db, uri=True, timeout=30)
    con.execute("PRAGMA busy_timeout = 30000")
    return con


def working_copy_size(path):
    """(width, height) of a PNG file, None if it is none."""
    with open(path, "rb") as f:
        head = f.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def snapshot(data_dir, strict=True, unnamed_copies=False):
    """Check the invariants of the store in data_dir and return its content in a form
    that compares equal across runs (no ids of new rows, no timestamps).
    strict: no file under blobs/ may be anything but a referenced blob.
    unnamed_copies: except working copies (PNG, longer side 512) that no analysis names:
    two analyses of one session at once each read the analysis they replace before
    saving, so the copy of an angle that only the first-saved one saw can stay behind."""
    con = connect(data_dir)
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
        q = lambda sql: sorted(con.execute(sql).fetchall(), key=repr)
        sessions = q("SELECT id, user_id, status FROM sessions")
        images = q("SELECT session_id, image_type, order_index, storage_path, content_type, size_bytes, sha256 "
                   "FROM images")
        analyses = q("SELECT session_id, overall_change_score, confidence, summary, model, dim, baseline_sessions, "
                     "details FROM session_analysis")
        angles = q("SELECT session_id, angle_type, change_score, summary, image_count, baseline_sessions, sharpness, "
                   "blur_variance, clipped_fraction, quality FROM angle_analysis")
        sess_emb = q("SELECT session_id, model, dim, checksum, embedding FROM session_embeddings")
        angle_emb = q("SELECT session_id, angle, model, dim, checksum, embedding FROM angle_embeddings")
        jobs = q("SELECT session_id, status, attempts, max_attempts FROM jobs")
        # created_at of every part of one analysis is the same instant (one save)
        for sid, in con.execute("SELECT session_id FROM session_analysis").fetchall():
            stamps = set()
            for t in ("session_analysis", "angle_analysis", "session_embeddings", "angle_embeddings"):
                stamps |= {r[0] for r in con.execute("SELECT created_at FROM %s WHERE session_id = ?" % t, (sid,))}
            assert len(stamps) == 1, "analysis of %s mixes saves: %s" % (sid, stamps)
    finally:
        con.close()
    # every analysis is whole: one angle row and one embedding per angle, one session embedding
    for a in analyses:
        sid = a[0]
        n_angles = sum(1 for g in angles if g[0] == sid)
        assert n_angles > 0
        assert sum(1 for e in angle_emb if e[0] == sid) == n_angles
        assert sum(1 for e in sess_emb if e[0] == sid) == 1
    assert {g[0] for g in angles} <= {a[0] for a in analyses}
    # rows <-> blobs
    referenced = set()
    for (sid, angle, idx, path, ctype, size, sha) in images:
        if not BLOB_RE.match(path):
            continue
        referenced.add(path)
        f = os.path.join(data_dir, "blobs", path)
        assert os.path.isfile(f), "image %s %s #%d: blob %s missing" % (sid, angle, idx, path)
        data = open(f, "rb").read()
        assert len(data) == size, "blob %s: %d bytes, row says %d" % (path, len(data), size)
        assert hashlib.sha256(data).hexdigest() == sha == path.split("/")[1].split(".")[0], \
            "blob %s does not hold the bytes its row names" % path
        # the heatmaps, working copies and feature maps an analysis names are whole PNG blobs
        # of its session
        for a in analyses:
            details = json.loads(a[7]) if a[7] else {}
            for it in details.get("per_angle", []):
                copy = it.get("working_copy") or {}
                fmap = it.get("feature_map") or {}
                for what, key in (("heatmap", it.get("heatmap")), ("working copy", copy.get("key")),
                                  ("feature map", fmap.get("key"))):
                    if not key:
                        continue
                    assert BLOB_RE.match(key) and key.startswith(a[0] + "/"), "%s key %r" % (what, key)
                    referenced.add(key)
                    f = os.path.join(data_dir, "blobs", key)
                    assert os.path.isfile(f), "analysis of %s: %s %s missing" % (a[0], what, key)
                    data = open(f, "rb").read()
                    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[-8:-4] == b"IEND", \
                        "%s %s is not a whole PNG" % (what, key)
                    assert hashlib.sha256(data).hexdigest() == key.split("/")[1].split(".")[0], \
                        "%s %s does not hold the bytes its name says" % (what, key)
    if strict:
        files = blob_files(data_dir)
        assert debris(data_dir) == [], "temporary files left: %s" % debris(data_dir)
        orphans = [f for f in files if f not in referenced and not (
            unnamed_copies and max(working_copy_size(os.path.join(data_dir, "blobs", f)) or (0,)) == 512)]
        assert orphans == [], "orphan blobs (no image row or analysis names them): %s" % orphans
    return {
        "sessions": sessions, "images": images, "analyses": analyses, "angles": angles,
        "session_embeddings": sess_emb, "angle_embeddings": angle_emb, "jobs": jobs,
    }


def without(snap, *keys):
    return {k: v for k, v in snap.items() if k not in keys}


def trace_ops(path):
    """Mutating operations recorded by faultfs in a trace file, as [op, bytes,
    CLOCK_MONOTONIC ns, path], the shared-memory index (-shm, which every open touches)
    left out."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [l.split(" ", 3) for l in f.read().splitlines() if l and not l.endswith("-shm")]


def trace_bytes(path):
    """Bytes written under the folder, as recorded by faultfs in a trace file."""
    return sum(int(op[1]) for op in trace_ops(path) if op[0] == "write")


def build_templates(root):
    """Stores in the state before each command, built once with the real CLI:
    {name: (data dir, command arguments, session id)}."""
    t = {}

    # image add: a session with three angles; the command adds a fourth
    d = root / "add" / "data"
    env = base_env(d)
    sid = new_session(env, "check1", ANGLES[:3], complete=False)
    t["image_add"] = (d, ["--json", "image", "add", sid, "up", os.path.join(EXAMPLES, "check1", "up.jpg")], sid)

    # analyze: an analyzed earlier check (the baseline) and a completed new one
    d = root / "analyze" / "data"
    env = base_env(d)
    s1 = new_session(env, "check1")
    ok(run(env, "--json", "analyze", s1))
    s2 = new_session(env, "check2")
    t["analyze"] = (d, ["--json", "analyze", s2], s2)

    # worker: the same, with the analysis of the new check queued
    d = root / "worker" / "data"
    copy_store(t["analyze"][0], d)
    env = base_env(d)
    q = ok(run(env, "--json", "analyze", s2, "--async"))
    assert q["created"] is True
    t["worker"] = (d, ["--json", "worker", "--drain"], s2)

    # re-analysis: the new check analyzed without change detection, analyzed again with it
    # (an analyzed check takes no new photo: the stored result changes by the options)
    d = root / "reanalyze" / "data"
    copy_store(t["analyze"][0], d)
    env = base_env(d)
    ok(run(dict(env, BCD_DETECT="off"), "--json", "analyze", s2))
    t["reanalyze"] = (d, ["--json", "analyze", s2], s2)
    return t
