"""The HTML report end to end: bcd-cli builds a history of three checks (the two example
checks and a third with a new dark spot on the front photo and a blurred up photo), writes
the report, and headless Chromium renders it. The report's numbers are checked against the
stored analyses (`bcd-cli analysis get --json`)."""
import html.parser
import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

CLI = os.environ.get("BCD_CLI", "bcd-cli")
SOURCE = os.environ.get("BCD_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))
CHROMIUM = os.environ.get("BCD_CHROMIUM", "/usr/bin/chromium")
EXAMPLES = os.path.join(SOURCE, "examples", "data")
ANGLES = ["front", "left", "right", "up", "down", "raised"]


class Store:
    """bcd-cli over one private data directory."""

    def __init__(self, root):
        self.root = root
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("BCD_", "SUPABASE_"))}
        self.env.update({"BCD_DATA_DIR": str(root / "data"), "BCD_USER": "reporter", "HOME": str(root)})

    def run(self, *args, check=True):
        p = subprocess.run([CLI, *map(str, args)], capture_output=True, text=True, env=self.env, cwd=self.root,
                           timeout=300, stdin=subprocess.DEVNULL)
        if check:
            assert p.returncode == 0, (args, p.stderr)
        return p

    def json(self, *args):
        return json.loads(self.run("--json", *args).stdout)


def third_check(root):
    """check2 with a new dark spot on the front photo and a blurred up photo."""
    out = root / "check3"
    out.mkdir()
    try:
        import cv2
    except ImportError:  # still a third check, just without the changes
        for a in ANGLES:
            shutil.copy(os.path.join(EXAMPLES, "check2", a + ".jpg"), out / (a + ".jpg"))
        return out, False
    for a in ANGLES:
        im = cv2.imread(os.path.join(EXAMPLES, "check2", a + ".jpg"))
        h, w = im.shape[:2]
        if a == "front":
            cv2.circle(im, (w // 2 + 40, h // 2 - 60), 40, (30, 25, 60), -1)
        if a == "up":
            im = cv2.GaussianBlur(im, (0, 0), 4)
        cv2.imwrite(str(out / (a + ".jpg")), im, [cv2.IMWRITE_JPEG_QUALITY, 92])
    return out, True


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    st = Store(root)
    check3, changed = third_check(root)
    sids = []
    for folder in (os.path.join(EXAMPLES, "check1"), os.path.join(EXAMPLES, "check2"), str(check3)):
        sid = st.json("session", "create")["session_id"]
        for a in ANGLES:
            st.run("image", "add", sid, a, os.path.join(folder, a + ".jpg"))
        st.run("session", "complete", sid)
        st.run("analyze", sid)
        sids.append(sid)
    page = root / "report.html"
    p = st.run("--json", "report", sids[2], "--html", page)
    report = json.loads(p.stdout)
    stored = {sid: st.json("analysis", "get", sid)["data"]["session_analysis"] for sid in sids}
    return {"store": st, "sids": sids, "page": page, "html": page.read_text(encoding="utf-8"),
            "report": report["data"], "stored": stored, "changed": changed, "root": root}


class Values(html.parser.HTMLParser):
    """data-value of every element with data-field, keyed by the enclosing row."""

    def __init__(self):
        super().__init__()
        self.row = None
        self.values = {}   # (row key, field) -> (value, shown text)
        self.current = None
        self.tags = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "tr":
            self.row = a.get("data-angle") or a.get("data-session")
        if "data-field" in a and "data-value" in a:
            self.current = [(self.row, a["data-field"]), float(a["data-value"]), ""]

    def handle_data(self, data):
        if self.current is not None:
            self.current[2] += data

    def handle_endtag(self, tag):
        if self.current is not None and tag in ("td", "span"):
            key, value, text = self.current
            self.values.setdefault(key, (value, text.strip()))
            self.current = None


def test_page_is_self_contained(history):
    page = history["html"]
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"https?://", page), "a URL in the page"
    assert "<script" not in page.lower()
    assert not re.search(r"<link\b", page, re.I)
    assert "url(" not in page and "@import" not in page
    parser = Values()
    parser.feed(page)
    srcs = [a.get("src", "") for t, a in parser.tags if t == "img"]
    assert len(srcs) == 18  # previous, this check and change map of six angles
    assert all(s.startswith("data:image/") for s in srcs)
    assert "<svg" in page and page.count("<polyline") >= 2
    assert 'name="viewport"' in page and "@media print" in page
    assert history["root"].as_posix() not in page  # no storage path
    assert os.stat(history["page"]).st_mode & 0o777 == 0o600


def test_numbers_match_the_stored_analyses(history):
    sids, stored, rep = history["sids"], history["stored"], history["report"]
    cur = stored[sids[2]]
    assert rep["session_id"] == sids[2]
    assert rep["overall_change_score"] == cur["overall_change_score"]
    assert rep["confidence"] == cur["confidence"]
    assert {p["angle_type"]: p["change_score"] for p in rep["per_angle"]} == \
        {p["angle_type"]: p["change_score"] for p in cur["per_angle"]}
    assert rep["previous_session_id"] == sids[1]
    # against the previous check: the numbers of `compare`
    cmp = history["store"].json("compare", sids[2], sids[1])["data"]
    assert rep["comparison"]["overall_delta"] == cmp["overall_delta"]
    for p in rep["per_angle"]:
        c = next(x for x in cmp["per_angle"] if x["angle_type"] == p["angle_type"])
        assert p["embedding_distance"] == c["embedding_distance"]
    # history: every check with its stored overall score
    hist = rep["history"]
    assert [s["session_id"] for s in hist["sessions"]] == sids
    for s in hist["sessions"]:
        assert s["overall_change_score"] == stored[s["session_id"]]["overall_change_score"]
    # the page: exact values in data-value, three decimals shown
    parser = Values()
    parser.feed(history["html"])
    for p in cur["per_angle"]:
        value, text = parser.values[(p["angle_type"], "change_score")]
        assert value == pytest.approx(p["change_score"], abs=1e-6)
        assert text == "%.3f" % p["change_score"]
    for sid in sids:
        value, text = parser.values[(sid, "overall_change_score")]
        assert value == pytest.approx(stored[sid]["overall_change_score"], abs=1e-6)
        assert text == "%.3f" % stored[sid]["overall_change_score"]
    value, _ = parser.values[(None, "confidence")]
    assert value == pytest.approx(cur["confidence"], abs=1e-6)


def test_summary_is_written_from_the_numbers(history):
    rep, stored = history["report"], history["stored"]
    summary = rep["summary"]
    assert "%.3f" % rep["overall_change_score"] in summary
    top = max(rep["per_angle"], key=lambda p: p["change_score"])
    assert top["angle_type"] in summary and "%.3f" % top["change_score"] in summary
    if history["changed"]:
        assert top["angle_type"] == "front"
        assert "The up photo looks blurred" in summary
        assert any("Retake the up photo" in s for s in rep["next_steps"])
        assert rep["per_angle"][3]["quality"]["blurred"] is True
    assert "Confidence %.2f" % rep["confidence"] in summary
    # another check, another text
    first = history["store"].json("report", history["sids"][0])["data"]
    assert first["summary"] != summary
    assert "first analyzed check" in first["summary"]
    assert first["comparison"] is None
    # the text shown on the page is the same summary
    assert rep["history"]["trend"]["label"] in ("stable", "mild_variation", "significant_shift")


def test_history_command(history):
    st = history["store"]
    doc = st.json("history")
    assert doc["count"] == 3
    assert [s["session_id"] for s in doc["sessions"]] == history["sids"]
    t = doc["trend"]
    assert t["method"] == "theil_sen" and t["n_sessions"] == 3 and t["n_scored"] == 2
    scored = [s["overall_change_score"] for s in doc["sessions"][1:]]
    assert t["slope"] == pytest.approx(scored[1] - scored[0], abs=2e-6)  # two points: their slope
    p = st.run("history")
    assert p.stderr == ""  # no progress when stderr is not a terminal
    assert "3 analyzed checks" in p.stdout and "Trend:" in p.stdout


def chromium(args, tmp_path):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip("%s not found: install Debian's chromium to render the report in a browser" % CHROMIUM)
    profile = tmp_path / ("profile-%d" % len(list(tmp_path.iterdir())))
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--hide-scrollbars", "--force-device-scale-factor=1", "--user-data-dir=%s" % profile, *args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env={**os.environ, "HOME": str(tmp_path)})
    assert p.returncode == 0, p.stderr[-2000:]
    return p


def screenshot(history, tmp_path, width, height):
    import cv2
    shot = tmp_path / ("shot-%dx%d.png" % (width, height))
    chromium(["--screenshot=%s" % shot, "--window-size=%d,%d" % (width, height), history["page"].as_uri()], tmp_path)
    img = cv2.imread(str(shot))
    assert img is not None, "no screenshot"
    return img


def assert_not_blank(img):
    grey = img.mean(axis=2)
    assert grey.std() > 20, "the page looks blank (no contrast)"
    colours = np.unique((img // 32).reshape(-1, 3), axis=0)
    assert len(colours) >= 20, "too few colours: %d" % len(colours)
    # text and photos somewhere in every third of the page
    for part in np.array_split(grey, 3, axis=0):
        assert part.std() > 10


def test_renders_in_chromium(history, tmp_path):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip("%s not found: install Debian's chromium to render the report in a browser" % CHROMIUM)
    img = screenshot(history, tmp_path, 1200, 2000)
    assert img.shape == (2000, 1200, 3)
    assert_not_blank(img)
    # skin tones of the embedded photos are on the page (the data: images were decoded)
    b, g, r = (img[..., i].astype(int) for i in range(3))
    skin = (r > 150) & (r > g + 20) & (g > b) & (b > 60)
    assert skin.sum() > 5000, "no photo rendered"


def test_renders_on_a_phone(history, tmp_path):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip("%s not found: install Debian's chromium to render the report in a browser" % CHROMIUM)
    img = screenshot(history, tmp_path, 412, 2400)
    assert img.shape == (2400, 412, 3)
    assert_not_blank(img)


def test_prints_to_pdf(history, tmp_path):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip("%s not found: install Debian's chromium to render the report in a browser" % CHROMIUM)
    pdf = tmp_path / "report.pdf"
    chromium(["--print-to-pdf=%s" % pdf, "--no-pdf-header-footer", history["page"].as_uri()], tmp_path)
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    pages = len(re.findall(rb"/Type\s*/Page[^s]", data))
    assert 2 <= pages <= 12, pages
