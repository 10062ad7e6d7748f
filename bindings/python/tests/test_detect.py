"""bcd.detect: change detection between two photos (bcd/detect.h) on the bundled example.

check2's left photo (600x800) has a new dark spot centred at (270, 440), radius 26 px;
the other angles differ from check1 only by small shifts and noise."""
import gc
import math
import os

import pytest

import bcd
from bcd import detect
from conftest import image_path

np = pytest.importorskip("numpy")

SPOT = (270, 440, 26)  # centre x, y and radius in check2/left.jpg
SPOT_BOX = (270 - 26, 440 - 26, 270 + 26, 440 + 26)


def iou(box, region):
    ax0, ay0, ax1, ay1 = box
    bx0, by0, bx1, by1 = region.x, region.y, region.x + region.width, region.y + region.height
    iw = max(0, min(ax1, bx1) - max(ax0, bx0))
    ih = max(0, min(ay1, by1) - max(ay0, by0))
    inter = iw * ih
    return inter / ((ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter)


@pytest.fixture(scope="module")
def photos():
    """Decoded photos: {("check1", "left"): array, ...}."""
    return {(c, a): bcd.decode(image_path(c, a)) for c in ("check1", "check2") for a in ("left", "front")}


@pytest.fixture(scope="module")
def left(photos):
    with detect.compare(photos["check2", "left"], photos["check1", "left"]) as r:
        yield r


@pytest.fixture(scope="module")
def front(photos):
    with detect.compare(photos["check2", "front"], photos["check1", "front"]) as r:
        yield r


def blurred_copy(img):
    from PIL import Image, ImageFilter
    return np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(6)))


def test_the_new_spot_is_found_and_located(left, photos):
    assert not left.closed and left.compared
    assert left.local_change > 0.9
    assert left.flags == 0 and not left.misaligned and not left.blurred
    regions = left.regions
    assert regions and all(isinstance(r, detect.Region) for r in regions)
    assert max(iou(SPOT_BOX, r) for r in regions) >= 0.5
    h, w = photos["check2", "left"].shape[:2]
    for r in regions:
        assert 0 <= r.x and r.x + r.width <= w and 0 <= r.y and r.y + r.height <= h
        assert 0 <= r.score <= 1
    assert [r.score for r in regions] == sorted((r.score for r in regions), reverse=True)
    assert regions[0].score == pytest.approx(left.local_change)


def test_alignment_of_a_well_framed_pair(left):
    assert left.alignment_score > 0.9 and left.overlap > 0.9
    assert abs(left.rotation) < 2 and left.scale == pytest.approx(1, abs=0.05)
    assert abs(left.dx) < 50 and abs(left.dy) < 50
    m = left.matrix
    assert len(m) == 6 and all(isinstance(v, float) for v in m)
    # the matrix and the reported shift agree: the previous centre lands at centre + (dx, dy)
    cx, cy = (600 - 1) / 2, (800 - 1) / 2
    assert m[0] * cx + m[1] * cy + m[2] - cx == pytest.approx(left.dx, abs=0.5)
    assert m[3] * cx + m[4] * cy + m[5] - cy == pytest.approx(left.dy, abs=0.5)
    assert left.noise_level >= 0 and left.change_evidence > 0


def test_an_unchanged_angle_stays_low(front):
    assert front.local_change < 0.5
    assert not front.misaligned and front.alignment_score > 0.9
    assert all(r.score < 0.5 for r in front.regions)


def test_values_by_name_and_by_key(left):
    vals = left.values()
    assert set(vals) == set(detect.VALUES)
    for name, key in detect.VALUES.items():
        a, b = left.value(name), left.value(key)
        assert (math.isnan(a) and math.isnan(b)) or a == b, name
        assert (math.isnan(a) and math.isnan(getattr(left, name))) or getattr(left, name) == a, name
    assert math.isnan(left.value(999))
    with pytest.raises(KeyError):
        left.value("no_such_value")
    with pytest.raises(TypeError):
        left.value(1.5)


def test_cells_locate_the_spot(left):
    c = left.cells
    assert isinstance(c, detect.Cells)
    assert (c.cols, c.rows) == (12, 16)  # portrait 600x800: rows = grid (16)
    assert c.values.shape == (16, 12) and c.values.dtype == np.float32
    assert c.values.min() >= -1 and c.values.max() <= 1
    col, row = SPOT[0] * c.cols // 600, SPOT[1] * c.rows // 800
    assert c.values[row, col] > 0.5
    a = left.get_cells(as_numpy=False)
    assert isinstance(a.values, bcd.Array) and a.values.shape == (16, 12)
    assert a.values.to_numpy().tolist() == c.values.tolist()


def test_json_matches_the_accessors(left):
    d = left.to_dict()
    assert d["local_change"] == pytest.approx(left.local_change, rel=1e-5)
    assert len(d["changed_regions"]) == len(left.regions)
    for j, r in zip(d["changed_regions"], left.regions):
        assert (j["x"], j["y"], j["width"], j["height"]) == (r.x, r.y, r.width, r.height)
    assert d["alignment"]["matrix"] == pytest.approx(list(left.matrix), rel=1e-4, abs=1e-4)
    assert d["grid"]["cols"] == 12 and len(d["grid"]["cells"]) == 12 * 16
    assert d["quality"]["blurred"] is False and d["previous_quality"]["blurred"] is False
    assert isinstance(left.to_json(), str)


def test_inputs_as_paths_bytes_and_arrays_agree(left, photos):
    with open(image_path("check1", "left"), "rb") as f:
        previous_bytes = f.read()
    with detect.compare(image_path("check2", "left"), previous_bytes) as r:
        assert r.local_change == left.local_change and r.regions == left.regions
    arr = bcd.decode(image_path("check2", "left"), as_numpy=False)
    with detect.compare(arr, photos["check1", "left"]) as r:
        assert r.local_change == left.local_change


def test_heatmap_rendering(left, photos, tmp_path):
    cur = photos["check2", "left"]
    img = left.render_heatmap(cur, 200)
    assert img.shape == (200, 150, 3) and img.dtype == np.uint8
    arr = left.render_heatmap(cur, 200, as_numpy=False)
    assert isinstance(arr, bcd.Array) and arr.shape == (200, 150, 3)
    # red where the spot is: the heatmap colours strong change red
    y, x = SPOT[1] * 200 // 800, SPOT[0] * 150 // 600
    r, g, b = (int(v) for v in img[y, x])
    assert r > b
    with detect.compare(cur, photos["check1", "left"], options=detect.DetectOptions(heatmap_max_side=256)) as r2:
        default = r2.render_heatmap(cur)
        assert default.shape == (256, 192, 3)
        path = tmp_path / "left.png"
        r2.write_heatmap(cur, path)
        assert bcd.decode(path).tolist() == default.tolist()
        small = np.ascontiguousarray(cur[:400, :300])
        with pytest.raises(bcd.InvalidArgumentError):
            r2.render_heatmap(small)
        with pytest.raises(bcd.InputOutputError):
            r2.write_heatmap(cur, tmp_path / "no-such-dir" / "x.png")


def test_quality_flags(photos):
    sharp = photos["check2", "front"]
    with detect.quality(sharp) as q:
        assert not q.compared and q.flags == 0
        assert q.blur_variance > detect.DEFAULT_BLUR_THRESHOLD
        assert 0 <= q.clipped_fraction < 0.15 and q.subject_fraction > 0.2
        # a quality-only result has no alignment and no change map
        assert math.isnan(q.local_change) and math.isnan(q.alignment_score)
        assert q.matrix is None and q.cells is None and q.regions == []
        assert set(q.to_dict()) == {"quality"}
        with pytest.raises(bcd.InvalidArgumentError):
            q.render_heatmap(sharp)
    blurry = blurred_copy(sharp)
    with detect.quality(blurry) as q:
        assert q.blurred and q.flags & detect.BLURRED
        assert q.blur_variance < detect.DEFAULT_BLUR_THRESHOLD
        assert not q.clipped and not q.subject_too_small
    white = np.full((400, 300, 3), 255, np.uint8)
    with detect.quality(white) as q:
        assert q.clipped and q.clipped_fraction > 0.9
        assert q.subject_too_small and q.subject_fraction < 0.2
    # a threshold set through the options changes the verdict
    with detect.quality(blurry, options=detect.DetectOptions(blur_threshold=0.01)) as q:
        assert not q.blurred


def test_quality_flags_of_a_pair(photos):
    prev, cur = photos["check1", "front"], photos["check2", "front"]
    with detect.compare(blurred_copy(cur), prev) as r:
        assert r.blurred and not r.previous_blurred
    with detect.compare(cur, blurred_copy(prev)) as r:
        assert r.previous_blurred and not r.blurred
        assert r.flags & detect.PREVIOUS_BLURRED


def test_combine(left, front, photos):
    p, changed = detect.combine([left, front])
    assert changed is True and 0.5 < p <= 1
    p2, changed2 = detect.combine([front, None, None])
    assert changed2 is False and 0 <= p2 < 0.5
    # missing angles count for nothing
    assert detect.combine([None, left, None, front]) == (p, changed)
    with detect.quality(photos["check2", "front"]) as q:
        with pytest.raises(bcd.StateError) as ei:
            detect.combine([q, None])
        assert ei.value.code == "no_usable_angle"
    with pytest.raises(bcd.StateError):
        detect.combine([None, None])
    with pytest.raises(TypeError):
        detect.combine([left, "left"])


def test_unaligned_photos_are_misaligned_not_an_error(photos):
    rng = np.random.default_rng(7)
    noise = rng.integers(0, 256, size=(800, 600, 3), dtype=np.uint8)
    with detect.compare(photos["check2", "left"], noise) as r:
        assert r.misaligned
        assert math.isnan(r.local_change) and r.regions == [] and r.cells is None
        assert r.to_dict()["local_change"] is None
        with pytest.raises(bcd.StateError):
            detect.combine([r])


def test_errors_map_to_exceptions(photos):
    cur = photos["check2", "left"]
    tiny = np.zeros((10, 10, 3), np.uint8)
    with pytest.raises(bcd.InvalidArgumentError):
        detect.compare(tiny, cur)
    with pytest.raises(bcd.InvalidArgumentError):
        detect.compare(cur, tiny)
    grey = np.zeros((100, 100), np.uint8)
    with pytest.raises(bcd.InvalidArgumentError):
        detect.quality(grey)
    with pytest.raises(bcd.InvalidArgumentError):
        detect.compare(cur, cur, options=detect.DetectOptions(work_size=10))
    with pytest.raises(bcd.InvalidArgumentError):
        detect.quality(cur, options={"clip_threshold": 1.5})
    with pytest.raises(bcd.NotFoundError):
        detect.quality(os.path.join(os.path.dirname(image_path("check1", "left")), "missing.jpg"))
    with pytest.raises(bcd.FormatError):
        detect.quality(b"not an image")
    with pytest.raises(TypeError):
        detect.DetectOptions(no_such_field=1)
    with pytest.raises(TypeError):
        detect.compare(cur, cur, options=42)


def test_options():
    o = detect.DetectOptions()
    assert o.version == 1 and all(v == 0 for v in o.to_dict().values())
    o = detect.DetectOptions(grid=8, min_overlap=0.4)
    assert o.grid == 8 and o.min_overlap == pytest.approx(0.4)
    assert "grid=8" in repr(o)


def test_grid_option_sets_the_cells(photos):
    with detect.compare(photos["check2", "left"], photos["check1", "left"], options={"grid": 8}) as r:
        c = r.cells
        assert (c.cols, c.rows) == (6, 8) and c.values.shape == (8, 6)


def test_use_after_close_raises(photos):
    r = detect.compare(photos["check2", "front"], photos["check1", "front"])
    fin = r._finalizer
    with r:
        assert fin.alive
    assert r.closed and not fin.alive
    r.close()  # idempotent
    for get in (lambda: r.flags, lambda: r.local_change, lambda: r.regions, lambda: r.matrix,
                lambda: r.cells, r.to_json, lambda: r.render_heatmap(photos["check2", "front"]),
                lambda: detect.combine([r])):
        with pytest.raises(bcd.StateError) as ei:
            get()
        assert ei.value.code == "handle_closed"
    with pytest.raises(bcd.StateError):
        with r:
            pass
    assert "closed" in repr(r)


def test_forgotten_results_are_freed_by_the_collector(photos):
    r = detect.quality(photos["check2", "front"])
    fin = r._finalizer
    del r
    gc.collect()
    assert not fin.alive


def test_detect_with_an_explicit_context(photos):
    with bcd.Context(load_env=False) as ctx:
        with detect.compare(photos["check2", "left"], photos["check1", "left"], ctx=ctx) as r:
            assert r.local_change > 0.9
            assert r.render_heatmap(photos["check2", "left"], 100, ctx=ctx).shape == (100, 75, 3)
        with pytest.raises(bcd.InvalidArgumentError) as ei:
            detect.compare(np.zeros((10, 10, 3), np.uint8), photos["check1", "left"], ctx=ctx)
        assert ei.value.message  # the detail comes from the context


def test_no_leak_over_100_rounds(photos):
    """Results, strings, images and errors of the detect calls are freed: malloc'd bytes
    before and after 100 rounds. One leaked result is ~40 KB, one JSON string ~2 KB, one
    heatmap ~12 KB: any of them per round would exceed the bound many times over."""
    from test_leak import heap_in_use, sanitizer_loaded
    if sanitizer_loaded() or heap_in_use() is None:
        pytest.skip("needs glibc's mallinfo2 and no AddressSanitizer (quarantine)")
    cur = np.ascontiguousarray(photos["check2", "left"][::4, ::4])
    prev = np.ascontiguousarray(photos["check1", "left"][::4, ::4])
    tiny = np.zeros((10, 10, 3), np.uint8)
    with bcd.Context(load_env=False) as ctx:
        def round_():
            with detect.compare(cur, prev, ctx=ctx) as r:
                assert r.regions and r.matrix and r.cells and r.to_json()
                assert r.render_heatmap(cur, 64, ctx=ctx).shape == (64, 48, 3)
                with detect.quality(cur, ctx=ctx) as q:
                    with pytest.raises(bcd.StateError):
                        detect.combine([q])
                detect.combine([r, None])
            with pytest.raises(bcd.InvalidArgumentError):
                detect.compare(tiny, cur, ctx=ctx)
        for _ in range(10):
            round_()
        gc.collect()
        before = heap_in_use()
        for _ in range(100):
            round_()
        gc.collect()
        grown = heap_in_use() - before
    assert grown < 64 * 1024, "heap grew by %d bytes over 100 rounds" % grown


def test_a_result_outlives_its_context(photos, tmp_path):
    cur = photos["check2", "left"]
    ctx = bcd.Context(load_env=False)
    r = detect.compare(cur, photos["check1", "left"], ctx=ctx)
    ctx.close()
    with r:
        assert r.local_change > 0.9
        assert r.render_heatmap(cur, 80).shape == (80, 60, 3)  # on the default context
