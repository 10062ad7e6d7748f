#!/usr/bin/env python3
"""Benchmark: what change detection adds to `bcd-cli analyze` (a program that prints
numbers, not a test).

Two checks of six full-size phone photos (3024x4032 JPEG, quality 90: the bundled
example's check1 and check2 enlarged, with sensor-like noise) are added to a fresh local
store; the second check is analyzed --runs times with BCD_DETECT=off (embeddings and
scores only) and --runs times with BCD_DETECT=on (also alignment, change maps, quality
gate, heatmaps against the first check), alternating so that machine load hits both
alike. Printed: median wall time and CPU time (user + system of the process) of each,
and the extra time of detection as a share of the analysis without it. Then the same in
one long-running process through the Python bindings (the model loaded once; detection
switched off and on between analyses, alternating), and, from the progress events of
the analyses with detection, where the time of one goes: reading + decoding +
preprocessing the photos, embedding, scoring, change detection, saving.

  /usr/bin/python3 tests/bench/bench_analyze.py [--cli build/cli/bcd-cli] [--model builtin|FILE.pt]
      [--runs 7] [--threads 0] [--size 3024x4032] [--lesions on|off]

--model FILE.pt needs a bcd-cli built with libtorch (meson -Dtorch=enabled);
models/README.md shows how to export MobileNetV2 (or ResNet50) to TorchScript.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
ANGLES = ["front", "left", "right", "up", "down", "raised"]


def make_photos(out, check, w, h, seed):
    rng = np.random.default_rng(seed)
    os.makedirs(out, exist_ok=True)
    for a in ANGLES:
        im = cv2.imread(os.path.join(SRC, "examples", "data", check, a + ".jpg"))
        im = cv2.resize(im, (w, h), interpolation=cv2.INTER_CUBIC).astype(np.float32)
        im += rng.normal(0, 3.0, im.shape).astype(np.float32)
        cv2.imwrite(os.path.join(out, a + ".jpg"), np.clip(im, 0, 255).astype(np.uint8),
                    [cv2.IMWRITE_JPEG_QUALITY, 90])


def run(cli, env, *args):
    p = subprocess.run([cli, "--json", *args], capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    if p.returncode != 0:
        sys.exit("bcd-cli %s failed: %s" % (" ".join(args), p.stderr.strip()))
    return json.loads(p.stdout)


def timed(cli, env, *args):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = run(cli, env, *args)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, out


STAGES = ["read", "embed", "score", "detect", "save", "analyzed"]


def stage_worker(lib, data_dir, sid, model, threads, runs):
    """In a child process: analyze sid through the bindings (the first call loads the
    model), then runs times with detection off and on, alternating. Prints JSON: the
    median wall and CPU time (all threads of this process) of an analysis in each mode,
    and the median duration of each stage of the analyses with detection."""
    sys.path.insert(0, os.path.join(SRC, "bindings", "python"))
    os.environ["BCD_LIBRARY"] = lib
    import bcd
    svc = bcd.open_store(data_dir, user="bench", model=model, threads=threads)
    per = {k: [] for k in STAGES[:-1]}
    times = {"off": [], "on": []}
    svc.analyze(sid)
    for r in range(runs):
        for mode in ("off", "on"):
            svc._ctx.set("detect", mode)
            first = {}
            svc.set_progress(lambda ev: first.setdefault(ev.stage, ev.elapsed_s))
            c0 = resource.getrusage(resource.RUSAGE_SELF)
            t0 = time.perf_counter()
            svc.analyze(sid)
            total = time.perf_counter() - t0
            c1 = resource.getrusage(resource.RUSAGE_SELF)
            times[mode].append((total, (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)))
            if mode == "off":
                continue
            marks = [(0.0, "read")] + sorted((v, k) for k, v in first.items() if k != "read")
            marks.append((total, "end"))
            for (t, k), (t2, _) in zip(marks, marks[1:]):
                if k in per:
                    per[k].append(t2 - t)
    svc.close()
    out = {k: statistics.median(v) if v else 0.0 for k, v in per.items()}
    for mode, v in times.items():
        out["wall_" + mode] = statistics.median(x[0] for x in v)
        out["cpu_" + mode] = statistics.median(x[1] for x in v)
    print(json.dumps(out))


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--stage-worker":
        lib, data_dir, sid, model, threads, runs = sys.argv[2:8]
        stage_worker(lib, data_dir, sid, model, int(threads), int(runs))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cli", default=os.path.join(SRC, "build", "cli", "bcd-cli"))
    ap.add_argument("--model", default="builtin")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--threads", default="0", help="BCD_THREADS (0: all cores)")
    ap.add_argument("--size", default="3024x4032")
    ap.add_argument("--lib", help="libbcd.so for the stage breakdown (default: next to --cli)")
    ap.add_argument("--lesions", choices=["on", "off"], default="on",
                    help="BCD_LESIONS: the lesion stage of detection (on by default)")
    a = ap.parse_args()
    w, h = map(int, a.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BCD_", "SUPABASE_"))}
        env.update({"BCD_DATA_DIR": os.path.join(tmp, "data"), "BCD_USER": "bench", "HOME": tmp,
                    "BCD_MODEL": a.model, "BCD_THREADS": a.threads, "BCD_LESIONS": a.lesions})
        sids = []
        for i, check in enumerate(["check1", "check2"]):
            d = os.path.join(tmp, check)
            make_photos(d, check, w, h, seed=i)
            sid = run(a.cli, env, "session", "create")["session_id"]
            for ang in ANGLES:
                run(a.cli, env, "image", "add", sid, ang, os.path.join(d, ang + ".jpg"))
            run(a.cli, env, "session", "complete", sid)
            sids.append(sid)
        run(a.cli, env, "analyze", sids[0])
        run(a.cli, env, "analyze", sids[1])  # warm the page cache
        res = {"off": [], "on": []}
        last = None
        for _ in range(a.runs):
            for mode in ("off", "on"):
                e = dict(env, BCD_DETECT=mode)
                wall, cpu, out = timed(a.cli, e, "analyze", sids[1])
                res[mode].append((wall, cpu))
                if mode == "on":
                    last = out["data"]
        med = {m: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v)) for m, v in res.items()}
        print("analyze of one six-angle session, %dx%d JPEG, model %s, BCD_THREADS=%s, %d runs (median)"
              % (w, h, a.model, a.threads, a.runs))
        print("  %-28s wall %7.3f s   cpu %7.3f s" % ("without detection", *med["off"]))
        print("  %-28s wall %7.3f s   cpu %7.3f s" % ("with detection", *med["on"]))
        print("  extra time of detection:     wall %+6.1f %%   cpu %+6.1f %%"
              % (100 * (med["on"][0] / med["off"][0] - 1), 100 * (med["on"][1] / med["off"][1] - 1)))
        print("  change_probability %.4f, changed %s, changed angles: %s" % (
            last["change_probability"], last["changed"],
            ", ".join(p["angle_type"] for p in last["session_analysis"]["per_angle"] if p["changed"]) or "none"))
        lib = a.lib or os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(a.cli))), "lib", "libbcd.so")
        p = subprocess.run([sys.executable, os.path.abspath(__file__), "--stage-worker", lib, env["BCD_DATA_DIR"],
                            sids[1], a.model, a.threads, str(a.runs)], capture_output=True, text=True,
                           env=dict(env, BCD_DETECT="on"))
        if p.returncode != 0:
            print("  (stage breakdown failed: %s)" % p.stderr.strip().splitlines()[-1:])
            return
        st = json.loads(p.stdout)
        print("in one process, the model loaded (bindings; %d runs, median):" % a.runs)
        print("  %-28s wall %7.3f s   cpu %7.3f s" % ("without detection", st["wall_off"], st["cpu_off"]))
        print("  %-28s wall %7.3f s   cpu %7.3f s" % ("with detection", st["wall_on"], st["cpu_on"]))
        print("  extra time of detection:     wall %+6.1f %%   cpu %+6.1f %%"
              % (100 * (st["wall_on"] / st["wall_off"] - 1), 100 * (st["cpu_on"] / st["cpu_off"] - 1)))
        total = sum(st[k] for k in STAGES[:-1])
        print("  stages of an analysis with detection (progress events):")
        names = {"read": "read + decode + preprocess", "embed": "embed (one batch)", "score": "scores",
                 "detect": "change detection", "save": "save"}
        for k in STAGES[:-1]:
            print("    %-26s %7.3f s  %5.1f %%" % (names[k], st[k], 100 * st[k] / total if total else 0))

if __name__ == "__main__":
    main()
