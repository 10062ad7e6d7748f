"""Change detection through bcd-cli on the local store: analyze against the previous
session, what analysis get returns, compare (stored and computed), --heatmaps, the
heatmap blobs across re-analysis, and the reduced working copies an analysis keeps.

The bundled example: check2's left photo has a new dark spot centred at (270, 440), radius
26 px, on a 600x800 photo, and one mole grown threefold; the other five angles differ from
check1 only by small shifts and noise."""
import glob
import json
import os
import sqlite3

import pytest
from conftest import EXAMPLES, make_runner

from test_cli_sessions import ANGLES, new_session, ok

NEW_SPOT = (270 - 26, 440 - 26, 270 + 26, 440 + 26)  # x0, y0, x1, y1 in check2/left.jpg


def iou(box, region):
    ax0, ay0, ax1, ay1 = box
    bx0, by0 = region["x"], region["y"]
    bx1, by1 = bx0 + region["width"], by0 + region["height"]
    iw = max(0, min(ax1, bx1) - max(ax0, bx0))
    ih = max(0, min(ay1, by1) - max(ay0, by0))
    inter = iw * ih
    return inter / ((ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One store for the module: (runner, its root)."""
    root = tmp_path_factory.mktemp("detect")
    return make_runner(root), root


@pytest.fixture(scope="module")
def two_checks(store):
    cli = store[0]
    first = new_session(cli, check="check1")
    second = new_session(cli, check="check2")
    a1 = ok(cli("--json", "--user", "alice", "analyze", first))["data"]
    a2 = ok(cli("--json", "--user", "alice", "analyze", second))["data"]
    return first, second, a1, a2


def by_angle(items):
    return {it["angle_type"]: it for it in items}


def png_blobs(data_dir):
    return sorted(glob.glob(os.path.join(data_dir, "blobs", "*", "*.png")))


def details(data_dir, sid):
    con = sqlite3.connect(str(data_dir / "bcd.sqlite3"))
    try:
        row = con.execute("SELECT details FROM session_analysis WHERE session_id = ?", (sid,)).fetchone()
    finally:
        con.close()
    return json.loads(row[0])


def copies(data_dir, sid):
    """The working copies an analysis stored: {angle: blob key}."""
    return {it["angle_type"]: it["working_copy"]["key"] for it in details(data_dir, sid)["per_angle"]}


def test_first_session_has_quality_but_nothing_to_compare(two_checks):
    _, _, a1, _ = two_checks
    assert a1["previous_session_id"] is None
    assert a1["change_probability"] is None and a1["changed"] is None
    for it in a1["session_analysis"]["per_angle"]:
        assert it["local_change"] is None and it["changed"] is None
        assert it["changed_regions"] == [] and it["heatmap"] is None and it["alignment"] is None
        q = it["quality"]
        assert q["blurred"] is False and q["clipped"] is False and q["subject_too_small"] is False
        assert q["aligned"] is None


def test_the_changed_angle_is_found_and_located(two_checks):
    first, second, _, a2 = two_checks
    assert a2["previous_session_id"] == first
    assert a2["changed"] is True and a2["change_probability"] > 0.9
    per = by_angle(a2["session_analysis"]["per_angle"])
    left = per["left"]
    assert left["changed"] is True and left["local_change"] > 0.9
    assert left["quality"]["aligned"] is True
    # the new spot is one of the reported boxes (full-size pixel coordinates)
    assert max(iou(NEW_SPOT, r) for r in left["changed_regions"]) >= 0.5
    for r in left["changed_regions"]:
        assert 0 <= r["x"] and r["x"] + r["width"] <= 600 and 0 <= r["y"] and r["y"] + r["height"] <= 800
    for a in ANGLES:
        if a != "left":
            assert per[a]["changed"] is False and per[a]["local_change"] < 0.5, a
            assert per[a]["quality"]["aligned"] is True
    # the summary says it in words
    assert "change probability" in a2["session_analysis"]["overall_summary"]
    assert "changed: left" in a2["session_analysis"]["overall_summary"]
    assert a2["confidence_factors"]["detection_quality"] == 1


def test_analysis_get_returns_the_stored_detection(store, two_checks):
    cli = store[0]
    _, second, _, a2 = two_checks
    got = ok(cli("--json", "--user", "alice", "analysis", "get", second))["data"]["session_analysis"]
    for k in ("previous_session_id", "change_probability", "changed", "warnings"):
        assert got[k] == a2[k], k
    want = by_angle(a2["session_analysis"]["per_angle"])
    for a, it in by_angle(got["per_angle"]).items():
        for k in ("local_change", "changed", "changed_regions", "alignment", "heatmap", "warning", "quality"):
            assert it[k] == want[a][k], (a, k)


def test_heatmaps_are_stored_pngs_and_replaced_on_reanalysis(store, two_checks):
    cli, root = store
    _, second, _, a2 = two_checks
    data = root / "data"
    keys = {it["angle_type"]: it["heatmap"] for it in a2["session_analysis"]["per_angle"]}
    assert all(k and k.startswith(second + "/") and k.endswith(".png") for k in keys.values())
    for k in keys.values():
        with open(data / "blobs" / k, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    # six heatmaps, and six working copies of each analyzed session
    blobs = png_blobs(data)
    assert len(blobs) == 6 + 12
    assert set(copies(data, second).values()) | set(keys.values()) | set(copies(data, two_checks[0]).values()) == \
        {os.path.relpath(b, data / "blobs") for b in blobs}
    # re-analysis makes the same maps and copies: none orphaned
    again = ok(cli("--json", "--user", "alice", "analyze", second))["data"]
    assert again["overwritten"] is True
    assert {it["angle_type"]: it["heatmap"] for it in again["session_analysis"]["per_angle"]} == keys
    assert png_blobs(data) == blobs


def test_compare_reuses_the_stored_detection(store, two_checks):
    cli = store[0]
    first, second, _, a2 = two_checks
    c = ok(cli("--json", "--user", "alice", "compare", second, first))["data"]
    assert c["detection"] == "stored"
    assert c["change_probability"] == a2["change_probability"] and c["changed"] is True
    per = by_angle(c["per_angle"])
    assert per["left"]["changed"] is True and per["front"]["changed"] is False
    # the seed's fields are still there
    for k in ("overall_delta", "stability_index", "overall_trend", "comparison_method"):
        assert k in c


def test_compare_heatmaps_writes_one_png_per_angle(store, two_checks, tmp_path):
    cli, root = store
    first, second, _, a2 = two_checks
    out = tmp_path / "maps" / "nested"
    c = ok(cli("--json", "--user", "alice", "compare", second, first, "--heatmaps", out))["data"]
    # the analysis was made against first: its result and its stored overlays are used
    assert c["detection"] == "stored"
    assert c["change_probability"] == a2["change_probability"]
    stored = by_angle(a2["session_analysis"]["per_angle"])
    per = by_angle(c["per_angle"])
    for a in ANGLES:
        path = out / (a + ".png")
        assert per[a]["heatmap"] == str(path)
        with open(path, "rb") as f, open(root / "data" / "blobs" / stored[a]["heatmap"], "rb") as g:
            assert f.read() == g.read()
    assert sorted(os.listdir(out)) == sorted(a + ".png" for a in ANGLES)  # no temporary files left
    from PIL import Image
    with Image.open(out / "left.png") as im:
        assert max(im.size) == 512 and im.mode == "RGB"


def test_compare_heatmaps_of_a_pair_computed_now(store, two_checks, tmp_path):
    cli = store[0]
    first, second, _, a2 = two_checks
    out = tmp_path / "backwards"
    c = ok(cli("--json", "--user", "alice", "compare", first, second, "--heatmaps", out))["data"]
    assert c["detection"] == "computed"
    per = by_angle(c["per_angle"])
    for a in ANGLES:
        assert per[a]["heatmap"] == str(out / (a + ".png"))
        with open(out / (a + ".png"), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert per["left"]["changed"] is True


def test_compare_heatmaps_computed_again_when_an_overlay_is_gone(tmp_path):
    (tmp_path / "gone").mkdir()
    cli = make_runner(tmp_path / "gone")
    first = new_session(cli, check="check1")
    second = new_session(cli, check="check2")
    ok(cli("--json", "--user", "alice", "analyze", first))
    a2 = ok(cli("--json", "--user", "alice", "analyze", second))["data"]
    left = by_angle(a2["session_analysis"]["per_angle"])["left"]["heatmap"]
    os.remove(tmp_path / "gone" / "data" / "blobs" / left)
    out = tmp_path / "maps"
    c = ok(cli("--json", "--user", "alice", "compare", second, first, "--heatmaps", out))["data"]
    assert c["detection"] == "computed"
    # computed now (from the stored working copies), it is what the analysis stored
    assert c["change_probability"] == a2["change_probability"]
    assert sorted(os.listdir(out)) == sorted(a + ".png" for a in ANGLES)


def test_working_copies_spare_decoding_and_change_nothing(tmp_path):
    """Each analysis stores every angle's first photo reduced for detection; the next
    analysis and compare read those instead of decoding the photos. A copy that is gone
    or does not match its photo only costs the decoding: the results are the same."""
    from PIL import Image
    (tmp_path / "w").mkdir()
    run = make_runner(tmp_path / "w")

    def cli(*args):
        # the lesions read the full-size photos, never the working copies: left out here
        return run(*args, env_extra={"BCD_LESIONS": "off"})
    data = tmp_path / "w" / "data"
    first = new_session(cli, check="check1")
    second = new_session(cli, check="check2")
    ok(cli("--json", "--user", "alice", "analyze", first))
    a2 = ok(cli("--json", "--user", "alice", "analyze", second))["data"]
    con = sqlite3.connect(str(data / "bcd.sqlite3"))
    ids = dict(con.execute("SELECT image_type, id FROM images WHERE session_id = ?", (first,)).fetchall())
    photo = dict(con.execute("SELECT image_type, storage_path FROM images WHERE session_id = ?", (first,)).fetchall())
    con.close()
    for it in details(data, first)["per_angle"]:
        c = it["working_copy"]
        assert c["key"].startswith(first + "/") and c["key"].endswith(".png")
        assert c["image_id"] == ids[it["angle_type"]]
        assert (c["width"], c["height"]) == (600, 800)  # the photo's own size
        with Image.open(data / "blobs" / c["key"]) as im:
            assert im.size == (384, 512) and im.mode == "RGB"
    # internal: no response shows it
    got = cli("--json", "--user", "alice", "analysis", "get", second).out
    assert "working_copy" not in got and "working_copy" not in json.dumps(a2)

    def detection(d):
        per = by_angle(d["session_analysis"]["per_angle"] if "session_analysis" in d else d["per_angle"])
        return d["change_probability"], {a: (per[a]["local_change"], per[a]["changed_regions"], per[a]["alignment"])
                                         for a in ANGLES}

    # the copies are what is read: with a photo of the first check gone, its angle is
    # still compared
    os.rename(data / "blobs" / photo["right"], tmp_path / "right.jpg")
    assert detection(ok(cli("--json", "--user", "alice", "analyze", second))["data"]) == detection(a2)
    os.rename(tmp_path / "right.jpg", data / "blobs" / photo["right"])
    # one copy gone, one that is not the reduced photo (another size), one not a PNG
    keys = copies(data, first)
    os.remove(data / "blobs" / keys["left"])
    Image.new("RGB", (300, 400), (128, 128, 128)).save(data / "blobs" / keys["front"], "PNG")
    (data / "blobs" / keys["up"]).write_bytes(b"not a png")
    again = ok(cli("--json", "--user", "alice", "analyze", second))["data"]
    assert detection(again) == detection(a2)
    # compare of the pair the other way round is computed, from the copies
    c = ok(cli("--json", "--user", "alice", "compare", first, second))["data"]
    assert c["detection"] == "computed" and "working_copy" not in json.dumps(c)
    # re-analyzing the first session writes its missing copy again
    ok(cli("--json", "--user", "alice", "analyze", first))
    with Image.open(data / "blobs" / copies(data, first)["left"]) as im:
        assert im.size == (384, 512)


def test_compare_the_other_way_is_computed(store, two_checks):
    cli = store[0]
    first, second, _, _ = two_checks
    c = ok(cli("--json", "--user", "alice", "compare", first, second))["data"]
    assert c["detection"] == "computed"
    # the spot disappears when going backwards: still a change of the left angle
    assert by_angle(c["per_angle"])["left"]["changed"] is True


def test_heatmaps_into_a_file_is_a_clear_error(store, two_checks, tmp_path):
    cli = store[0]
    first, second, _, _ = two_checks
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    r = cli("--json", "--user", "alice", "compare", second, first, "--heatmaps", blocker / "maps")
    assert r.rc != 0
    err = r.error()
    assert err["code"] == "file_write_failed" and "not-a-dir" in err["message"]


def test_a_blurred_photo_is_flagged_with_a_warning(cli, tmp_path):
    cv2 = pytest.importorskip("cv2")
    first = new_session(cli, check="check1")
    ok(cli("--json", "--user", "alice", "analyze", first))
    blurred = tmp_path / "blurred"
    blurred.mkdir()
    for a in ANGLES:
        im = cv2.imread(os.path.join(EXAMPLES, "check1", a + ".jpg"))
        if a == "up":
            im = cv2.GaussianBlur(im, (0, 0), 6)
        cv2.imwrite(str(blurred / (a + ".jpg")), im, [cv2.IMWRITE_JPEG_QUALITY, 92])
    sid = ok(cli("--json", "--user", "alice", "session", "create"))["session_id"]
    for a in ANGLES:
        ok(cli("--json", "--user", "alice", "image", "add", sid, a, blurred / (a + ".jpg")))
    ok(cli("--json", "--user", "alice", "session", "complete", sid))
    d = ok(cli("--json", "--user", "alice", "analyze", sid))["data"]
    up = by_angle(d["session_analysis"]["per_angle"])["up"]
    assert up["quality"]["blurred"] is True
    assert "blurred" in up["warning"]
    assert any(w.startswith("up: ") for w in d["warnings"])
    # a flagged angle lowers the confidence
    assert d["confidence_factors"]["detection_quality"] < 1
    assert by_angle(d["session_analysis"]["per_angle"])["front"]["quality"]["blurred"] is False


def test_lesions_of_two_checks(store, two_checks):
    """bcd-cli lesions: every angle's lesions, ids carried from the first check, the
    example's grown mole and new spot on `left` changed and nothing else."""
    cli = store[0]
    first, second, a1, a2 = two_checks
    l1 = ok(cli("--json", "--user", "alice", "lesions", first))["data"]
    assert l1["session_id"] == first and l1["previous_session_id"] is None
    assert sorted(a["angle_type"] for a in l1["angles"]) == sorted(ANGLES)
    first_ids = {}
    for a in l1["angles"]:
        assert a["status"] == "first" and a["changed"] == 0
        assert a["lesions"], a["angle_type"]
        assert [les["id"] for les in a["lesions"]] == list(range(1, len(a["lesions"]) + 1))
        for les in a["lesions"]:
            assert les["state"] == "new" and les["previous_center"] is None and not les["changed"]
            assert les["diameter_px"] > 3 and les["diameter_mm"] is None
        first_ids[a["angle_type"]] = {les["id"]: les["center"] for les in a["lesions"]}

    l2 = ok(cli("--json", "--user", "alice", "lesions", second))["data"]
    assert l2["previous_session_id"] == first
    per = by_angle(l2["angles"])
    for name, a in per.items():
        assert a["status"] == "compared", (name, a["reason"])
        matched = [les for les in a["lesions"] if les["state"] == "matched"]
        assert len(matched) >= 4
        carried = 0
        for les in matched:
            assert set(les["change"]) >= {"area_pct", "diameter_px", "delta_e", "darkening", "second_colour"}
            if les["id"] not in first_ids[name]:
                # a spot too faint to be listed in the first check, found there now: a new id
                assert les["id"] > max(first_ids[name])
                continue
            # the same id as the lesion of the first check at the previous centre
            cx, cy = first_ids[name][les["id"]]
            px, py = les["previous_center"]
            assert abs(cx - px) < 3 and abs(cy - py) < 3
            carried += 1
        assert carried >= 4
        for les in a["lesions"]:
            if les["state"] == "new":
                assert les["id"] > max(first_ids[name])
        if name != "left":
            assert a["changed"] == 0, (name, [les for les in a["lesions"] if les["changed"]])
    left = [les for les in per["left"]["lesions"] if les["changed"]]
    assert sorted(les["state"] for les in left) == ["matched", "new"]
    grown = next(les for les in left if les["state"] == "matched")
    assert grown["change"]["diameter_px"] > 15 and grown["change"]["area_pct"] > 100
    # the changed lesions are changed regions of the analysis, with their ids
    regions = by_angle(a2["session_analysis"]["per_angle"])["left"]["changed_regions"]
    assert sorted(r["lesion_id"] for r in regions if "lesion_id" in r) == sorted(les["id"] for les in left)
    # the same lesions as the analysis stored them
    stored = by_angle(ok(cli("--json", "--user", "alice", "analysis", "get", second))["data"]
                      ["session_analysis"]["per_angle"])
    assert stored["left"]["lesions"]["lesions"] == per["left"]["lesions"]

    text = cli("--user", "alice", "lesions", second)
    assert text.rc == 0
    assert "left" in text.out and "2 changed" in text.out and "new" in text.out


def test_lesions_of_a_session_never_analyzed_or_off(store):
    cli = store[0]
    s = new_session(cli, check="check1")
    r = cli("--json", "--user", "alice", "lesions", s)
    assert r.rc != 0 and "analysis_not_found" in r.err
    ok(cli("--json", "--user", "alice", "analyze", s, env_extra={"BCD_LESIONS": "off"}))
    got = ok(cli("--json", "--user", "alice", "lesions", s))["data"]
    assert got["angles"] == []
    assert "no lesions were recorded" in cli("--user", "alice", "lesions", s).out
    bad = cli("--json", "--user", "alice", "analyze", s, env_extra={"BCD_MM_PER_PX": "-2"})
    assert bad.rc != 0


def test_exit_code_tells_a_change_from_none(tmp_path):
    """--exit-code: analyze and compare exit 20 when they found a change, 0 when none (the
    first check, the same photos again); errors keep their own statuses; other commands and
    analyze --async refuse it."""
    cli = make_runner(tmp_path)
    first = new_session(cli, check="check1")
    r = cli("--user", "alice", "analyze", first, "--exit-code")
    assert r.rc == 0, r.err  # the first check: nothing to compare
    same = new_session(cli, check="check1")
    r = cli("--json", "--user", "alice", "analyze", same, "--exit-code")
    assert r.rc == 0, r.err
    assert r.json()["data"]["changed"] is False
    changed = new_session(cli, check="check2")
    r = cli("--json", "--user", "alice", "analyze", changed, "--exit-code")
    assert r.rc == 20, r.err
    assert r.json()["data"]["changed"] is True
    # the readable form exits the same way
    assert cli("--user", "alice", "analyze", changed, "--exit-code").rc == 20
    # without the option a change is a success
    assert cli("--user", "alice", "analyze", changed).rc == 0
    assert cli("--user", "alice", "compare", changed, same, "--exit-code").rc == 20
    assert cli("--user", "alice", "compare", same, first, "--exit-code").rc == 0
    # an error is still an error
    r = cli("--user", "alice", "compare", changed, "00000000-0000-0000-0000-000000000000", "--exit-code")
    assert r.rc not in (0, 20)
    for args in (["session", "list"], ["analyze", first, "--async"]):
        r = cli("--user", "alice", *args, "--exit-code")
        assert r.rc == 2
        assert "--exit-code" in r.error()["message"]
