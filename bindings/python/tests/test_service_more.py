"""bcd.Service beyond the basic operations: compare with heatmaps, progress reports,
asynchronous analysis with jobs and the worker, history and reports (bcd/service.h,
bcd/report.h), on the local store with the bundled example checks."""
import os
import stat
import threading

import pytest

import bcd
from conftest import ANGLES, MISSING, image_path


def make_session(svc, check, complete=True, user=None):
    sid = svc.create_session(user=user)["session_id"]
    for a in ANGLES:
        svc.add_image(sid, a, image_path(check, a), user=user)
    if complete:
        svc.complete_session(sid, user=user)
    return sid


@pytest.fixture(scope="module")
def analyzed(tmp_path_factory):
    """One store with check1 then check2 analyzed: (svc, first, second)."""
    root = tmp_path_factory.mktemp("more")
    with bcd.open_store(root / "data", user="alice", load_env=False) as svc:
        first = make_session(svc, "check1")
        second = make_session(svc, "check2")
        svc.analyze(first)
        svc.analyze(second)
        yield svc, first, second


def by_angle(items):
    return {it["angle_type"]: it for it in items}


def test_compare_writes_six_heatmaps(analyzed, tmp_path):
    svc, first, second = analyzed
    stored = svc.compare(second, first)["data"]
    assert stored["detection"] == "stored"
    out = tmp_path / "heatmaps"  # created by the library
    data = svc.compare(second, first, heatmap_dir=out)["data"]
    assert data["detection"] == "stored"  # with the overlays stored with the analysis
    assert sorted(os.listdir(out)) == sorted(a + ".png" for a in ANGLES)
    per = by_angle(data["per_angle"])
    for a in ANGLES:
        assert per[a]["heatmap"] == str(out / (a + ".png"))
        img = bcd.decode(per[a]["heatmap"])
        assert max(img.shape[:2]) == 512 and img.shape[2] == 3
    assert per["left"]["changed"] is True and per["left"]["local_change"] > 0.9
    assert all(per[a]["local_change"] < 0.5 for a in ANGLES if a != "left")
    assert data["changed"] is True and data["change_probability"] > 0.5
    # the same numbers as the stored comparison
    assert data["change_probability"] == pytest.approx(stored["change_probability"], abs=1e-6)
    assert by_angle(stored["per_angle"])["left"]["local_change"] == pytest.approx(per["left"]["local_change"],
                                                                                  abs=1e-6)


def test_compare_heatmap_errors(analyzed, tmp_path):
    svc, first, second = analyzed
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(bcd.InputOutputError):
        svc.compare(second, first, heatmap_dir=blocker / "sub")
    with pytest.raises(bcd.NotFoundError) as ei:
        svc.compare(second, MISSING, heatmap_dir=tmp_path / "h")
    assert ei.value.code == "session_not_found"
    with pytest.raises(bcd.InvalidArgumentError):
        svc.compare(second, second, heatmap_dir=tmp_path / "h")


def test_history_and_report(analyzed, tmp_path):
    svc, first, second = analyzed
    h = svc.history()
    assert h["user_id"] == "alice" and h["count"] == 2
    assert [s["session_id"] for s in h["sessions"]] == [first, second]
    assert h["sessions"][0]["is_baseline"] is True and h["sessions"][1]["previous_session_id"] == first
    assert h["trend"]["method"] == "theil_sen"
    assert svc.history(user="nobody")["count"] == 0

    r = svc.report(second)
    assert r["success"] is True
    d = r["data"]
    assert d["session_id"] == second and d["previous_session_id"] == first
    assert d["changed"] is True and d["flagged"] is True and "change_detected" in d["flag_reasons"]
    assert by_angle(d["per_angle"])["left"]["changed"] is True
    assert d["history"]["count"] == 2 and d["summary"]

    path = tmp_path / "report.html"
    assert svc.report_html(second, path) == path
    html = path.read_text()
    assert html.lstrip().lower().startswith("<!doctype html") and "data:image/jpeg" in html
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    bare = tmp_path / "bare.html"
    svc.report_html(second, str(bare), photos=False, thumbnail_size=128)
    bare_html = bare.read_text()
    assert "<html" in bare_html.lower() and "data:image/jpeg" not in bare_html
    assert len(bare_html) < len(html)
    small = tmp_path / "small.html"
    svc.report_html(second, small, thumbnail_size=64, heatmaps=False)
    assert "data:image/jpeg" in small.read_text()


def test_report_errors(analyzed, tmp_path):
    svc, first, second = analyzed
    unanalyzed = make_session(svc, "check1", complete=False)
    with pytest.raises(bcd.NotFoundError) as ei:
        svc.report(unanalyzed)
    assert ei.value.code == "analysis_not_found"
    with pytest.raises(bcd.NotFoundError):
        svc.report(second, user="mallory")
    with pytest.raises(bcd.InvalidArgumentError):
        svc.report_html(second, tmp_path / "x.html", thumbnail_size=5000)
    with pytest.raises(bcd.InputOutputError):
        svc.report_html(second, tmp_path / "no-such-dir" / "x.html")
    assert not (tmp_path / "x.html").exists()


def test_progress_reports(analyzed, tmp_path):
    svc, first, second = analyzed
    events = []
    svc.set_progress(events.append)
    try:
        svc.analyze(first)
        stages = [e.stage for e in events]
        assert stages[0] == "read" and stages[-1] == "analyzed" and "embed" in stages
        assert all(isinstance(e, bcd.ProgressEvent) and e.worker == -1 for e in events)
        reads = [e for e in events if e.stage == "read"]
        assert reads[-1].done == reads[-1].total == len(ANGLES)
        del events[:]
        svc.report_html(second, tmp_path / "r.html", photos=False)
        assert {"analyses", "write"} <= {e.stage for e in events}

        # a callback that raises does not break the operation
        def boom(ev):
            raise RuntimeError("ignored")
        svc.set_progress(boom)
        assert svc.history()["count"] == 2
    finally:
        svc.set_progress(None)
    del events[:]
    svc.history()
    assert events == []
    with pytest.raises(TypeError):
        svc.set_progress(42)


def test_async_analysis_and_worker(svc):
    first = make_session(svc, "check1")
    second = make_session(svc, "check2")
    incomplete = make_session(svc, "check1", complete=False)
    with pytest.raises(bcd.StateError) as ei:
        svc.analyze_async(incomplete)
    assert ei.value.code == "session_not_completed"

    j1 = svc.analyze_async(first)
    assert j1["status"] == "processing" and j1["job_status"] == "queued" and j1["created"] is True
    again = svc.analyze_async(first)
    assert again["created"] is False and again["job_id"] == j1["job_id"]
    j2 = svc.analyze_async(second, model="builtin")
    st = svc.job_status(j1["job_id"])
    assert st["status"] == "queued" and st["session_id"] == first and st["attempts"] == 0
    assert st["analysis_available"] is False
    assert svc.job_status_for_session(second)["job_id"] == j2["job_id"]
    with pytest.raises(bcd.NotFoundError) as ei:
        svc.job_status(j1["job_id"], user="mallory")
    assert ei.value.code == "job_not_found"
    with pytest.raises(bcd.NotFoundError):
        svc.job_status_for_session(incomplete)
    with pytest.raises(bcd.InvalidArgumentError):
        svc.job_status("not-a-uuid")

    events = []
    summary = svc.run_worker(drain=True, concurrency=2, poll_ms=50, progress=events.append)
    assert summary["jobs_done"] == 2 and summary["jobs_failed"] == 0 and summary["concurrency"] == 2
    assert summary["stopped"] is False
    for job, sid in ((j1, first), (j2, second)):
        st = svc.job_status(job["job_id"])
        assert st["status"] == "done" and st["attempts"] == 1 and st["error"] is None
        assert st["analysis_available"] is True and st["finished_at"]
        assert svc.get_analysis(sid)["data"]["session_analysis"]["session_id"] == sid
    done = [e for e in events if e.stage == "done"]
    assert sorted(e.job_id for e in done) == sorted([j1["job_id"], j2["job_id"]])
    assert {e.stage for e in events} >= {"claimed", "read", "analyzed", "done", "stopping"}
    assert {e.worker for e in events if e.stage == "claimed"} <= {0, 1}
    assert {e.session_id for e in done} == {first, second}
    # the worker's analysis of the second check compared it with the first
    a2 = svc.get_analysis(second)["data"]["session_analysis"]
    assert a2["previous_session_id"] == first and a2["changed"] is True

    # a finished job makes room for a new one; a worker on one thread runs it
    j3 = svc.analyze_async(first)
    assert j3["created"] is True and j3["job_id"] != j1["job_id"]
    assert svc.run_worker(drain=True, max_jobs=1, poll_ms=50)["jobs_done"] == 1
    assert svc.job_status_for_session(first)["status"] == "done"


def test_worker_stop_and_options(svc):
    stop = threading.Event()
    stop.set()
    summary = svc.run_worker(stop=stop, poll_ms=50)
    assert summary["stopped"] is True and summary["jobs_done"] == 0
    # a stop set later, while the worker waits for jobs
    stop = threading.Event()
    timer = threading.Timer(0.2, stop.set)
    timer.start()
    try:
        assert svc.run_worker(stop=stop, poll_ms=20)["stopped"] is True
    finally:
        timer.cancel()
    with pytest.raises(bcd.InvalidArgumentError):
        svc.run_worker(drain=True, concurrency=65)
    with pytest.raises(bcd.InvalidArgumentError):
        svc.run_worker(drain=True, lease_seconds=10, heartbeat_seconds=20)
    with pytest.raises(bcd.InvalidArgumentError):
        svc.run_worker(drain=True, max_jobs=-1)
    with pytest.raises(TypeError):
        svc.run_worker(drain=True, stop=True)
    assert svc.run_worker(drain=True)["jobs_done"] == 0


def test_closed_service_refuses_the_new_operations(data_dir, tmp_path):
    svc = bcd.open_store(data_dir, user="alice", load_env=False)
    svc.close()
    for call in (lambda: svc.history(), lambda: svc.report(MISSING), lambda: svc.job_status(MISSING),
                 lambda: svc.run_worker(drain=True), lambda: svc.set_progress(None),
                 lambda: svc.report_html(MISSING, tmp_path / "x.html"),
                 lambda: svc.compare(MISSING, MISSING, heatmap_dir=tmp_path)):
        with pytest.raises(bcd.StateError):
            call()
