"""analyze and compare with a model that has a feature map (suite 'torch'): the maps of
the last convolutional stage are compared cell by cell through the alignment, reported
per angle as feature_change, and stored so that the next analysis and compare read them.

Run by meson with BCD_CLI, BCD_TORCH_MODULE and BCD_TEST_MODEL (MobileNetV2, 1280 x 7 x 7)."""
import json
import os
import shutil
import sqlite3
import subprocess
import struct
import zlib

import cv2
import numpy as np
import pytest

CLI = os.environ.get("BCD_CLI", "bcd-cli")
MODEL = os.environ.get("BCD_TEST_MODEL", "")
SOURCE = os.environ.get("BCD_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))
EXAMPLES = os.path.join(SOURCE, "examples", "data", "check1")
ANGLES = ["front", "left", "right", "up", "down", "raised"]
SHIFT = 12              # the second check's front photo, moved right by this many pixels
SPOT = (200, 500, 38)   # a dark spot in it: centre x, y and radius in its pixels

pytestmark = pytest.mark.skipif(not os.path.isfile(MODEL), reason="no BCD_TEST_MODEL")


def expected_cell(w, h, x, y, cells=7):
    """(row, col) of the feature-map cell over photo pixel (x, y): the tensor is the
    centre square of the photo."""
    side = min(w, h)
    return int((y - (h - side) // 2) * cells / side), int((x - (w - side) // 2) * cells / side)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("fc")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BCD_", "SUPABASE_"))}
    env.update({"BCD_DATA_DIR": str(root / "data"), "HOME": str(root), "BCD_USER": "fc", "BCD_MODEL": MODEL,
                "BCD_TORCH_MODULE": os.environ.get("BCD_TORCH_MODULE", "")})

    def run(*args, model=None):
        e = dict(env, BCD_MODEL=model or MODEL)
        p = subprocess.run([CLI, "--json", *map(str, args)], capture_output=True, text=True, env=e,
                           timeout=300, stdin=subprocess.DEVNULL)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout) if p.stdout.strip() else None

    run.root = root
    return run


def add_check(run, folder):
    sid = run("session", "create")["session_id"]
    for a in ANGLES:
        run("image", "add", sid, a, os.path.join(folder, a + ".jpg"))
    run("session", "complete", sid)
    return sid


@pytest.fixture(scope="module")
def checks(run):
    """Two checks: the example photos, then the same files except the front photo, moved
    SHIFT px to the right with a dark spot painted on."""
    second = run.root / "second"
    shutil.copytree(EXAMPLES, second)
    im = cv2.imread(os.path.join(EXAMPLES, "front.jpg"))
    im = cv2.warpAffine(im, np.float32([[1, 0, SHIFT], [0, 1, 0]]), (im.shape[1], im.shape[0]),
                        borderMode=cv2.BORDER_REPLICATE)
    x, y, r = SPOT
    cv2.circle(im, (x, y), r, (40, 45, 70), -1, lineType=cv2.LINE_AA)
    cv2.imwrite(str(second / "front.jpg"), im, [cv2.IMWRITE_JPEG_QUALITY, 95])
    s1 = add_check(run, EXAMPLES)
    s2 = add_check(run, str(second))
    a1 = run("analyze", s1)["data"]
    a2 = run("analyze", s2)["data"]
    return s1, s2, a1, a2, im.shape[1], im.shape[0]


def per_angle(data):
    return {p["angle_type"]: p for p in data["session_analysis"]["per_angle"]}


def grid(fc):
    assert fc["rows"] == 7 and fc["cols"] == 7 and len(fc["distance"]) == 49
    return np.array([np.nan if v is None else v for v in fc["distance"]]).reshape(7, 7)


def details(run, sid):
    db = str(run.root / "data" / "bcd.sqlite3")
    with sqlite3.connect(db) as c:
        row = c.execute("select details from session_analysis where session_id = ?", (sid,)).fetchone()
    return {p["angle_type"]: p for p in json.loads(row[0])["per_angle"]}


def png16_shape(path):
    """(width, height) of a 16-bit greyscale PNG, or None."""
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return None
    w, h, depth, colour = struct.unpack(">IIBB", data[16:26])
    assert zlib.crc32(data[12:29]) == struct.unpack(">I", data[29:33])[0]
    return (w, h) if depth == 16 and colour == 0 else None


def test_the_changed_cell_stands_out_and_unchanged_angles_do_not(checks):
    s1, s2, a1, a2, w, h = checks
    first = per_angle(a1)
    assert all(p["feature_change"] is None for p in first.values())  # nothing to compare with
    got = per_angle(a2)
    for a in ANGLES:
        g = grid(got[a]["feature_change"])
        assert np.isfinite(g).all() or a == "front"
        if a != "front":  # the same photo: nothing changed (half precision aside)
            assert np.nanmax(g) < 0.02, (a, np.nanmax(g))
            assert got[a]["feature_change"]["max"] == pytest.approx(np.nanmax(g), abs=1e-6)
    g = grid(got["front"]["feature_change"])
    row, col = np.unravel_index(np.nanargmax(g), g.shape)
    want = expected_cell(w, h, SPOT[0], SPOT[1])
    assert max(abs(row - want[0]), abs(col - want[1])) <= 1, (row, col, want, np.round(g, 3))
    assert np.nanmax(g) > 0.1 and np.nanmax(g) > 4 * np.nanmedian(g), np.round(g, 3)
    # far from the spot (the top two rows) the cells differ much less
    assert np.nanmax(g[:2]) < 0.5 * np.nanmax(g), np.round(g, 3)
    # the pixel detector found the spot as well
    assert got["front"]["local_change"] > 0.5


def test_stored_maps_and_results(run, checks):
    s1, s2, a1, a2, w, h = checks
    got = run("analysis", "get", s2)["data"]
    assert [p["feature_change"] for p in got["session_analysis"]["per_angle"]] == \
        [p["feature_change"] for p in a2["session_analysis"]["per_angle"]]
    assert "feature_map" not in json.dumps(got) and "feature_map" not in json.dumps(a2)
    for sid in (s1, s2):
        for a, p in details(run, sid).items():
            fm = p["feature_map"]
            assert (fm["channels"], fm["rows"], fm["cols"]) == (1280, 7, 7)
            assert fm["model"].startswith(os.path.basename(MODEL) + ":1280:sha256=")
            assert fm["key"].startswith(sid + "/") and fm["image_id"]
            assert png16_shape(str(run.root / "data" / "blobs" / fm["key"])) == (49, 1280)


def test_compare_reads_both_stored_maps(run, checks):
    s1, s2, a1, a2, w, h = checks
    c = run("compare", s1, s2)["data"]  # the reverse pair: computed now, from what is stored
    got = {p["angle_type"]: p for p in c["per_angle"]}
    for a in ANGLES:
        g = grid(got[a]["feature_change"])
        if a != "front":
            assert np.nanmax(g) < 0.02
    g = grid(got["front"]["feature_change"])
    row, col = np.unravel_index(np.nanargmax(g), g.shape)
    want = expected_cell(w, h, SPOT[0] - SHIFT, SPOT[1])
    assert max(abs(row - want[0]), abs(col - want[1])) <= 1, (row, col, want)


def test_bindings_hand_out_the_maps():
    import sys
    sys.path.insert(0, os.path.join(SOURCE, "bindings", "python"))
    import bcd
    with bcd.Context(load_env=False, threads=2) as ctx, bcd.Embedder(MODEL, ctx=ctx) as e:
        assert e.map_shape == (1280, 7, 7)
        t = np.stack([bcd.preprocess(os.path.join(EXAMPLES, a + ".jpg")) for a in ("front", "left")])
        emb, maps = e.embed(t, maps=True)
        assert emb.shape == (2, 1280) and maps.shape == (2, 1280, 7, 7)
        assert np.array_equal(emb, e.embed(t))
        # MobileNetV2's embedding is the spatial mean of its last stage
        assert np.abs(maps.mean(axis=(2, 3)) - emb).max() <= 1e-4 * np.abs(emb).max()


def test_a_model_without_maps_compares_none_and_drops_the_stored_ones(run, checks):
    s1, s2, a1, a2, w, h = checks
    old = [p["feature_map"]["key"] for p in details(run, s2).values()]
    got = run("analyze", s2, model="builtin")["data"]
    assert all(p["feature_change"] is None for p in got["session_analysis"]["per_angle"])
    assert all("feature_map" not in p for p in details(run, s2).values())
    for k in old:
        assert not os.path.exists(run.root / "data" / "blobs" / k)
    # analyzed with the model again: maps compared and stored again
    again = per_angle(run("analyze", s2)["data"])
    assert grid(again["front"]["feature_change"]).shape == (7, 7)
    assert all("feature_map" in p for p in details(run, s2).values())
