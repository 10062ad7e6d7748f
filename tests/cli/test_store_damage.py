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
