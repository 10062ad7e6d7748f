"""The local store under damage and hostile input: damaged headers, a reader beside a
writer that holds the lock, damaged blobs, FIFOs, squatted folders, UTF-8 in JSON."""
import json
import os
import sqlite3
import subprocess
import time

import pytest
from conftest import EXAMPLES

ANGLES = ["front", "left", "right", "up", "down", "raised"]


def ok(r):
    assert r.rc == 0, r.err
    return r.json()


def new_session(cli, user="alice", check="check1", angles=ANGLES, complete=True):
    sid = ok(cli("--json", "--user", user, "session", "create"))["session_id"]
    for a in angles:
        ok(cli("image", "add", sid, a, os.path.join(EXAMPLES, check, a + ".jpg"), "--user", user, "--json"))
    if complete:
        ok(cli("--json", "session", "complete", sid, "--user", user))
    return sid


def flip(path, offset, mask=0xFF):
    b = bytearray(path.read_bytes())
    b[offset] ^= mask
    path.write_bytes(bytes(b))


@pytest.mark.parametrize("damage", ["byte60", "byte47", "minus1", "zero_with_tables"])
def test_damaged_header_is_store_corrupt(cli, tmp_path, damage):
    ok(cli("--json", "--user", "alice", "session", "create"))
    db = tmp_path / "data" / "bcd.sqlite3"
    if damage == "byte60":
        flip(db, 60)  # the high byte of user_version: a negative schema version
    elif damage == "byte47":
        flip(db, 47)  # the schema format number: a format no SQLite writes
    else:
        c = sqlite3.connect(str(db))
        c.execute("PRAGMA user_version = %d" % (-1 if damage == "minus1" else 0))
        c.commit()
        c.close()
    for args in (["health"], ["session", "list", "--user", "alice"]):
        r = cli("--json", *args)
        assert r.rc == 6, (args, r.rc, r.err)
        env = r.error()
        assert "store_corrupt" in (env["code"], env.get("details", {}).get("store", {}).get("error", {}).get("code")) \
            or "store_corrupt" in r.out, r.err
    r = cli("--json", "session", "list", "--user", "alice")
    assert r.error()["code"] == "store_corrupt" and "damaged" in r.error()["message"]


def test_reader_is_not_blocked_by_a_writer_holding_the_lock(cli, tmp_path):
    sid = ok(cli("--json", "--user", "alice", "session", "create"))["session_id"]
    db = sqlite3.connect(str(tmp_path / "data" / "bcd.sqlite3"), isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    db.execute("UPDATE sessions SET updated_at = updated_at")
    try:
        t = time.monotonic()
        r = cli("--json", "--user", "alice", "session", "list")
        took = time.monotonic() - t
        assert r.rc == 0, r.err
        assert [s["session_id"] if "session_id" in s else s["id"] for s in r.json()["sessions"]] == [sid]
        assert took < 5, took  # the busy timeout is 10 s: it never waited on the lock
        r = cli("--json", "--user", "alice", "session", "info", sid)
        assert r.rc == 0, r.err
    finally:
        db.execute("ROLLBACK")
        db.close()




@pytest.mark.parametrize("damage", ["flipped_byte", "other_photo"])
def test_damaged_blob_is_blob_corrupt_and_a_re_add_repairs_it(cli, tmp_path, damage):
    sid = new_session(cli, angles=ANGLES[:3])
    front = os.path.join(EXAMPLES, "check1", "front.jpg")
    data = open(front, "rb").read()
    import hashlib
    blob = tmp_path / "data" / "blobs" / sid / (hashlib.sha256(data).hexdigest() + ".jpg")
    assert blob.read_bytes() == data
    if damage == "flipped_byte":
        flip(blob, len(data) // 2, 0x01)
    else:
        other = open(os.path.join(EXAMPLES, "check2", "front.jpg"), "rb").read()
        blob.write_bytes(other)
    r = cli("--json", "--user", "alice", "analyze", sid)
    assert r.rc != 0
    env = r.error()
    assert env["code"] == "blob_corrupt", env
    assert "front" in env["message"] and "add the original photo again" in env["message"]
    assert env["details"]["angle"] == "front" and env["details"]["image_id"]
    # the same bytes added again repair the file
    ok(cli("image", "add", sid, "front", front, "--user", "alice", "--json"))
    assert blob.read_bytes() == data
    assert ok(cli("--json", "--user", "alice", "analyze", sid))["success"] is True


def test_fifo_is_refused_at_once_by_add_analyze_and_worker(cli, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    fifo = photos / "front.jpg"
    os.mkfifo(fifo)
    sid = new_session(cli, angles=ANGLES[1:3], complete=False)
    t = time.monotonic()
    r = cli("--json", "--user", "alice", "image", "add", sid, "front", fifo)
    assert r.rc == 5 and r.error()["code"] == "file_unreadable" and "not a regular file" in r.error()["message"]
    # registered and read by analyze (its folder allowed) and by a worker: refused, not waited on
    allowed = {"BCD_IMAGE_DIRS": str(photos)}
    ok(cli("--json", "--user", "alice", "image", "register", sid, "front", fifo))
    ok(cli("--json", "--user", "alice", "session", "complete", sid))
    r = cli("--json", "--user", "alice", "analyze", sid, env_extra=allowed)
    assert r.rc == 5 and r.error()["code"] == "image_file_unreadable", r.err
    assert r.error()["details"]["angle"] == "front"
    job = ok(cli("--json", "--user", "alice", "analyze", sid, "--async"))["job_id"]
    summary = ok(cli("--json", "worker", "--drain", env_extra=allowed))
    assert summary["jobs_done"] == 0
    st = ok(cli("--json", "--user", "alice", "job", "status", job))
    assert st["status"] in ("failed", "queued") and st["error_code"] == "image_file_unreadable"
    assert time.monotonic() - t < 60


def test_registered_paths_are_read_only_in_the_image_dirs(cli, tmp_path):
    sid = new_session(cli, angles=ANGLES[1:3], complete=False)
    photos = tmp_path / "photos"
    photos.mkdir()
    front = photos / "front.jpg"
    front.write_bytes(open(os.path.join(EXAMPLES, "check1", "front.jpg"), "rb").read())
    ok(cli("--json", "--user", "alice", "image", "register", sid, "front", front))
    ok(cli("--json", "--user", "alice", "session", "complete", sid))
    r = cli("--json", "--user", "alice", "analyze", sid)
    assert r.rc == 3 and r.error()["code"] == "image_path_not_allowed", r.err
    assert "BCD_IMAGE_DIRS" in r.error()["message"]
    assert ok(cli("--json", "--user", "alice", "analyze", sid, env_extra={"BCD_IMAGE_DIRS": str(photos)}))["success"]
    # a system file or a file of the data folder (another session's photo) is never read
    other = new_session(cli, user="bob", angles=ANGLES[:1], complete=False)
    bob_blob = next((tmp_path / "data" / "blobs" / other).iterdir())
    for path, dirs in (("/etc/shadow", str(photos)), (str(bob_blob), str(tmp_path))):
        sid2 = new_session(cli, angles=ANGLES[1:3], complete=False)
        ok(cli("--json", "--user", "alice", "image", "register", sid2, "front", path))
        ok(cli("--json", "--user", "alice", "session", "complete", sid2))
        r = cli("--json", "--user", "alice", "analyze", sid2, env_extra={"BCD_IMAGE_DIRS": dirs})
        assert r.rc == 3 and r.error()["code"] == "image_path_not_allowed", r.err
    # another session's blob key cannot be registered at all (in a check not analyzed yet:
    # an analyzed one takes no new photo anyway)
    key = "%s/%s" % (other, bob_blob.name)
    r = cli("--json", "--user", "alice", "image", "register", sid2, "up", key)
    assert r.rc == 3 and r.error()["code"] == "invalid_path"


def test_squatted_data_folder_or_database_is_refused(cli, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    os.chmod(data, 0o777)  # made first by someone else, writable by all
    r = cli("--json", "--user", "alice", "session", "list")
    assert r.rc == 5 and r.error()["code"] == "data_dir_insecure", r.err
    assert "chmod 700" in r.error()["message"]
    assert not (data / "bcd.sqlite3").exists()
    os.chmod(data, 0o700)
    (data / "bcd.sqlite3").write_bytes(b"")
    os.chmod(data / "bcd.sqlite3", 0o666)  # an empty database readable by all
    r = cli("--json", "--user", "alice", "session", "list")
    assert r.rc == 5 and r.error()["code"] == "data_dir_insecure" and "chmod 600" in r.error()["message"]
    os.chmod(data / "bcd.sqlite3", 0o600)
    ok(cli("--json", "--user", "alice", "session", "list"))
    if os.geteuid() == 0:
        # another user's folder and files (a second user, or files left by a run as root
        # in a user's store): refused, with the chown that gives them back
        os.chown(data, 65534, 65534)
        r = cli("--json", "--user", "alice", "session", "list")
        assert r.rc == 5 and r.error()["code"] == "data_dir_insecure" and "chown" in r.error()["message"], r.err
        os.chown(data, 0, 0)
        os.chown(data / "bcd.sqlite3", 65534, 65534)
        r = cli("--json", "--user", "alice", "session", "list")
        assert r.rc == 5 and r.error()["code"] == "data_dir_insecure", r.err
        os.chown(data / "bcd.sqlite3", 0, 0)
        ok(cli("--json", "--user", "alice", "session", "list"))


def test_preprocess_output_is_private_and_follows_a_link_to_its_target(cli, tmp_path):
    front = os.path.join(EXAMPLES, "check1", "front.jpg")
    old = os.umask(0)
    try:
        for name in ("x.png", "x.f32"):
            ok(cli("--json", "preprocess", front, "--out", tmp_path / name))
            assert os.stat(tmp_path / name).st_mode & 0o777 == 0o600
    finally:
        os.umask(old)
    # a link at the old fixed temporary name is not written through (temporary names are unique)
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep")
    os.symlink(victim, tmp_path / "y.png.tmp")
    ok(cli("--json", "preprocess", front, "--out", tmp_path / "y.png"))
    assert victim.read_bytes() == b"keep"
    # a link at the output name is followed: its target is replaced (mode 0600), the link stays
    os.symlink(victim, tmp_path / "z.f32")
    ok(cli("--json", "preprocess", front, "--out", tmp_path / "z.f32"))
    assert os.path.islink(tmp_path / "z.f32")
    assert victim.stat().st_size == 3 * 224 * 224 * 4 and victim.stat().st_mode & 0o777 == 0o600


def test_heatmap_folder_is_private(cli, tmp_path):
    a = new_session(cli, angles=ANGLES[:3])
    b = new_session(cli, check="check2", angles=ANGLES[:3])
    for s in (a, b):
        ok(cli("--json", "--user", "alice", "analyze", s))
    old = os.umask(0)
    try:
        r = cli("--json", "--user", "alice", "compare", b, a, "--heatmaps", tmp_path / "maps" / "deep")
    finally:
        os.umask(old)
    assert r.rc == 0, r.err
    for d in (tmp_path / "maps", tmp_path / "maps" / "deep"):
        assert os.stat(d).st_mode & 0o777 == 0o700
    for f in (tmp_path / "maps" / "deep").iterdir():
        assert os.stat(f).st_mode & 0o777 == 0o600


def run_bytes(root, *args):
    """bcd-cli with arguments as bytes (any file name), its output as bytes."""
    from conftest import CLI
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BCD_", "SUPABASE_"))}
    env.update({"BCD_DATA_DIR": str(root / "data"), "HOME": str(root), "BCD_USER": "alice"})
    p = subprocess.run([os.fsencode(CLI), *[a if isinstance(a, bytes) else str(a).encode() for a in args]],
                       capture_output=True, env=env, cwd=root, timeout=300, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


def test_json_is_utf8_whatever_names_and_stored_texts_hold(cli, tmp_path):
    """A file name that is not UTF-8 (legal on Linux) and a damaged byte in a stored summary:
    every JSON printed is valid UTF-8, the bad bytes replaced by U+FFFD."""
    sid = ok(cli("--json", "--user", "alice", "session", "create"))["session_id"]
    bad = os.fsencode(str(tmp_path)) + b"/photo-\xff\xfe.jpg"
    # the error envelope names the file
    rc, out, err = run_bytes(tmp_path, "--json", "image", "add", sid, "front", bad)
    assert rc != 0
    env = json.loads(err.splitlines()[0].decode("utf-8"))  # strict: fails on a raw byte
    assert "\ufffd" in json.dumps(env, ensure_ascii=False)
    # a registered photo's path is echoed
    with open(os.path.join(EXAMPLES, "check1", "front.jpg"), "rb") as f:
        data = f.read()
    with open(bad, "wb") as f:
        f.write(data)
    rc, out, err = run_bytes(tmp_path, "--json", "image", "register", sid, "front", bad)
    assert rc == 0, err
    doc = json.loads(out.decode("utf-8"))
    assert "\ufffd" in json.dumps(doc, ensure_ascii=False)
    # a stored analysis with a damaged byte in its summary
    sid = new_session(cli)
    ok(cli("--json", "--user", "alice", "analyze", sid))
    con = sqlite3.connect(str(tmp_path / "data" / "bcd.sqlite3"))
    with con:
        row = con.execute("SELECT CAST(summary AS BLOB) FROM session_analysis WHERE session_id = ?", (sid,)).fetchone()
        damaged = bytes(row[0][:5]) + b"\xc3" + bytes(row[0][6:])
        con.execute("UPDATE session_analysis SET summary = CAST(? AS TEXT) WHERE session_id = ?", (damaged, sid))
    con.close()
    rc, out, err = run_bytes(tmp_path, "--json", "analysis", "get", sid)
    assert rc == 0, err
    doc = json.loads(out.decode("utf-8"))
    assert "\ufffd" in json.dumps(doc, ensure_ascii=False)
