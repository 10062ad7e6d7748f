#!/usr/bin/python3
"""Lesion-level change benchmark: a lesion comparison tool on synthetic follow-up pairs.

A benchmark program that prints numbers; it is not a test. It generates seeded pairs of
skin photos with tests/bench/skin_gen.py (a previous check and a follow-up of one body
part, with exact truth: every mole's position in both photos and the true changes), or
reads pairs already written (--data DIR), and runs the tool once per pair:

    TOOL [--mm-per-px X --previous-mm-per-px Y] PREV.jpg CUR.jpg

(the scale arguments only with --scale known). The tool prints one JSON object:
{"status": "compared"|"not_comparable", "reason", "mm_per_px", "lesions": [{"id",
"state": "matched"|"new"|"gone"|"not_visible", "center", "previous_center",
"diameter_px", "diameter_mm", "changed", "change"}], "changed_regions": [{"x", "y",
"width", "height", "score"}], "elapsed_ms"}; a non-zero exit status is an error.

Measured, per strength of the nuisances (--strength, 1.0 and 1.5 by default):
  * follow-ups: a follow-up is flagged when a lesion has changed=true or a changed region
    exists. Sensitivity over the pairs with a true change, false-alarm rate over the pairs
    without; the rate of "not_comparable" and of errors (errors are left out of the rates);
  * true changes: detected when a changed lesion's centre lies inside the truth box grown
    by max(10 px, 25 % of its larger side) on every side, or a changed region overlaps that
    grown box; localized when a changed lesion's centre is within max(6 px, its radius,
    half the truth box's smaller side) of the truth centre, or a changed region contains
    the truth centre. Sensitivity per size bin and per kind, and the localization rate;
  * false alarms: changed lesions and changed regions near no true change (by the same
    grown boxes), per follow-up: the mean count and the fraction with at least one;
  * matching: every truth mole (kind "mole"; freckles >= 1.5 mm on a separate line)
    visible in both photos with a diameter >= 1.5 mm. The reported lesion whose centre is
    nearest its current centre (within max(6 px, its diameter in px)) must be "matched"
    with a previous_center within max(6 px, its previous diameter in px) of the truth.
    Rate, moles not found at all, position error of the correctly matched (current and
    previous centres pooled) in px and mm (median, 95th percentile);
  * size: correctly matched moles > 3 mm with a diameter_mm: |diameter_mm - truth| / truth,
    median and the fraction within 10 % (meaningful with --scale known);
  * time: median and max of the tool's elapsed_ms (the subprocess's wall time if absent).

Usage:
  /usr/bin/python3 tests/bench/lesion_bench.py --tool build/tests/lesion_compare
      [--pairs 60] [--seed 1] [--strength 1.0 1.5] [--jobs 2] [--long-side 2000]
      [--keep DIR] [--data DIR] [--scale known|unknown] [--json-out FILE] [--timeout 300]
--keep DIR keeps the generated pairs (DIR/strength-S/pair-NNNN/) and reuses those already
there for the same seed, strength and long side; --data DIR runs on pairs found under DIR
(grouped by the strength recorded in their truth.json) and generates nothing.
"""
import argparse
import concurrent.futures as cf
import glob
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

BINS = ["<=2mm", "2-4mm", "4-8mm", ">8mm"]
KINDS = ["new_mole", "growth", "darkening", "second_colour", "asymmetric_growth", "new_papule"]


# ------------------------------------------------------------------ data

def pairs_in(root):
    return sorted(os.path.dirname(p) for p in glob.glob(os.path.join(root, "**", "truth.json"), recursive=True))


def prepare(args, strength, root):
    """Pair folders for one strength: reuse what --keep holds, generate the rest."""
    import skin_gen
    out = os.path.join(root, "strength-%g" % strength)
    want = list(range(args.pairs))
    missing = []
    for i in want:
        t = os.path.join(out, "pair-%04d" % i, "truth.json")
        try:
            tr = json.load(open(t))
            ok = (tr["seed"] == args.seed and abs(tr["strength"] - strength) < 1e-9
                  and tr.get("long_side") == args.long_side
                  and all(os.path.exists(os.path.join(out, "pair-%04d" % i, f)) for f in ("prev.jpg", "cur.jpg")))
        except (OSError, ValueError, KeyError):
            ok = False
        if not ok:
            missing.append(i)
    if missing:
        t0 = time.time()
        print("generating %d pairs (strength %g) in %s ..." % (len(missing), strength, out), flush=True)
        # contiguous runs, so that skin_gen.generate's indices stay the pair indices
        runs, start = [], None
        for a, b in zip(missing, missing[1:] + [None]):
            start = a if start is None else start
            if b != a + 1:
                runs.append((start, a - start + 1))
                start = None
        for first, n in runs:
            skin_gen.generate(out, n, args.seed, strength, args.long_side, first, args.jobs)
        print("  %.1f s" % (time.time() - t0), flush=True)
    return [os.path.join(out, "pair-%04d" % i) for i in want]


# ------------------------------------------------------------------ running the tool

def run_tool(args, pair):
    tr = json.load(open(os.path.join(pair, "truth.json")))
    cmd = [args.tool]
    if args.scale == "known":
        cmd += ["--mm-per-px", repr(tr["cur"]["mm_per_px"]), "--previous-mm-per-px", repr(tr["prev"]["mm_per_px"])]
    cmd += [os.path.join(pair, tr["prev"]["file"]), os.path.join(pair, tr["cur"]["file"])]
    t0 = time.time()
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return tr, None, "timeout after %d s" % args.timeout, (time.time() - t0) * 1000
    wall = (time.time() - t0) * 1000
    if p.returncode != 0:
        err = p.stderr.decode(errors="replace").strip().splitlines()
        return tr, None, "exit %d: %s" % (p.returncode, err[-1] if err else ""), wall
    try:
        res = json.loads(p.stdout.decode())
        if not isinstance(res, dict) or "status" not in res:
            raise ValueError("no status")
    except ValueError as e:
        return tr, None, "bad JSON (%s): %r" % (e, p.stdout[:120]), wall
    return tr, res, None, wall


# ------------------------------------------------------------------ scoring

def grown_box(ch):
    x0, y0, x1, y1 = ch["cur_box"]
    g = max(10.0, 0.25 * max(x1 - x0, y1 - y0))
    return x0 - g, y0 - g, x1 + g, y1 + g


def inside(pt, box):
    return pt is not None and box[0] <= pt[0] <= box[2] and box[1] <= pt[1] <= box[3]


def overlaps(r, box):
    return r["x"] <= box[2] and r["x"] + r["width"] >= box[0] and r["y"] <= box[3] and r["y"] + r["height"] >= box[1]


def dist(a, b):
    return math.hypot(a[0] - b[0], a[1] - b[1])


def changed_lesions(res):
    return [l for l in res.get("lesions") or [] if l.get("changed") and l.get("center") is not None]


def score_pair(tr, res):
    """Per-pair facts, summed later."""
    out = {"changed_truth": bool(tr["changes"]), "changes": [], "moles": [], "freckles": [], "fa": 0}
    compared = res.get("status") == "compared"
    out["not_comparable"] = not compared
    cl = changed_lesions(res) if compared else []
    regions = (res.get("changed_regions") or []) if compared else []
    out["flagged"] = bool(cl or regions)
    boxes = [grown_box(c) for c in tr["changes"]]
    for c, box in zip(tr["changes"], boxes):
        x0, y0, x1, y1 = c["cur_box"]
        tol = max(6.0, 0.5 * min(x1 - x0, y1 - y0))
        det = any(inside(l["center"], box) for l in cl) or any(overlaps(r, box) for r in regions)
        loc = (any(dist(l["center"], c["cur_center"]) <= max(tol, 0.5 * float(l.get("diameter_px") or 0)) for l in cl)
               or any(inside(c["cur_center"], (r["x"], r["y"], r["x"] + r["width"], r["y"] + r["height"])) for r in regions))
        out["changes"].append({"kind": c["kind"], "bin": c["size_bin"], "detected": det, "localized": loc})
    out["fa"] = (sum(1 for l in cl if not any(inside(l["center"], b) for b in boxes))
                 + sum(1 for r in regions if not any(overlaps(r, b) for b in boxes)))
    lesions = [l for l in (res.get("lesions") or []) if l.get("center") is not None] if compared else []
    mm_c, mm_p = tr["cur"]["mm_per_px"], tr["prev"]["mm_per_px"]
    for m in tr["moles"]:
        if not m["visible_in_both"] or m["diameter_mm"] < 1.5 or m["kind"] not in ("mole", "freckle"):
            continue
        dc = m.get("cur_diameter_px", 0.0)
        dp = m.get("prev_diameter_px", 0.0)
        best, bd = None, max(6.0, dc)
        for l in lesions:
            d = dist(l["center"], m["cur_center"])
            if d <= bd:
                best, bd = l, d
        e = {"found": best is not None, "ok": False}
        if best is not None and best.get("state") == "matched" and best.get("previous_center") is not None:
            dprev = dist(best["previous_center"], m["prev_center"])
            if dprev <= max(6.0, dp):
                e["ok"] = True
                e["err_px"] = [bd, dprev]
                e["err_mm"] = [bd * mm_c, dprev * mm_p]
                truth_d = m.get("cur_diameter_mm", m["diameter_mm"])
                if truth_d > 3.0 and best.get("diameter_mm") is not None:
                    e["size_err"] = abs(float(best["diameter_mm"]) - truth_d) / truth_d
        out["moles" if m["kind"] == "mole" else "freckles"].append(e)
    return out


def pct(vals, q):
    if not vals:
        return float("nan")
    v = sorted(vals)
    k = (len(v) - 1) * q / 100.0
    f = int(math.floor(k))
    c = min(f + 1, len(v) - 1)
    return v[f] + (v[c] - v[f]) * (k - f)


def rate(num, den):
    return num / den if den else float("nan")


def summarize(scored, times, errors, n_pairs):
    ok = [s for s in scored if s is not None]
    pos = [s for s in ok if s["changed_truth"]]
    neg = [s for s in ok if not s["changed_truth"]]
    ch = [c for s in ok for c in s["changes"]]
    m = {"pairs": n_pairs, "errors": errors,
         "not_comparable": rate(sum(s["not_comparable"] for s in ok), len(ok)),
         "followup_sensitivity": rate(sum(s["flagged"] for s in pos), len(pos)), "followups_changed": len(pos),
         "followup_false_alarm_rate": rate(sum(s["flagged"] for s in neg), len(neg)), "followups_unchanged": len(neg),
         "changes": len(ch), "change_sensitivity": rate(sum(c["detected"] for c in ch), len(ch)),
         "localization": rate(sum(c["localized"] for c in ch), len(ch)),
         "localization_of_detected": rate(sum(c["localized"] for c in ch if c["detected"]), sum(c["detected"] for c in ch)),
         "by_bin": {b: [sum(c["detected"] for c in ch if c["bin"] == b), sum(1 for c in ch if c["bin"] == b)] for b in BINS},
         "by_kind": {k: [sum(c["detected"] for c in ch if c["kind"] == k), sum(1 for c in ch if c["kind"] == k)] for k in KINDS},
         "false_alarms_mean": rate(sum(s["fa"] for s in ok), len(ok)),
         "false_alarm_followups": rate(sum(1 for s in ok if s["fa"] > 0), len(ok))}
    for key in ("moles", "freckles"):
        es = [e for s in ok for e in s[key]]
        errs_px = [x for e in es if e["ok"] for x in e["err_px"]]
        errs_mm = [x for e in es if e["ok"] for x in e["err_mm"]]
        m[key] = {"n": len(es), "matched_rate": rate(sum(e["ok"] for e in es), len(es)),
                  "not_found": sum(1 for e in es if not e["found"]),
                  "err_px_median": pct(errs_px, 50), "err_px_p95": pct(errs_px, 95),
                  "err_mm_median": pct(errs_mm, 50), "err_mm_p95": pct(errs_mm, 95)}
    se = [e["size_err"] for s in ok for e in s["moles"] if "size_err" in e]
    m["size"] = {"n": len(se), "median_rel_err": pct(se, 50), "within_10pct": rate(sum(1 for x in se if x <= 0.10), len(se))}
    m["time_ms"] = {"median": pct(times, 50), "max": max(times) if times else float("nan")}
    return m


def no_nan(x):
    """NaN (a rate over nothing) -> null, so that the line is strict JSON."""
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: no_nan(v) for k, v in x.items()}
    if isinstance(x, list):
        return [no_nan(v) for v in x]
    return x


def f3(x):
    return "  n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else "%5.3f" % x


def print_table(name, m):
    print("\n== %s: %d pairs, %d errors, not_comparable %s" % (name, m["pairs"], m["errors"], f3(m["not_comparable"])))
    print("follow-ups   sensitivity %s (%d changed)   false-alarm rate %s (%d unchanged)" % (
        f3(m["followup_sensitivity"]), m["followups_changed"], f3(m["followup_false_alarm_rate"]), m["followups_unchanged"]))
    print("changes      sensitivity %s (%d)   localized %s (of detected %s)" % (
        f3(m["change_sensitivity"]), m["changes"], f3(m["localization"]), f3(m["localization_of_detected"])))
    print("  by size    " + "   ".join("%s %s (%d)" % (b, f3(rate(*m["by_bin"][b])), m["by_bin"][b][1]) for b in BINS))
    print("  by kind    " + "   ".join("%s %s (%d)" % (k, f3(rate(*m["by_kind"][k])), m["by_kind"][k][1]) for k in KINDS[:3]))
    print("             " + "   ".join("%s %s (%d)" % (k, f3(rate(*m["by_kind"][k])), m["by_kind"][k][1]) for k in KINDS[3:]))
    print("false alarms mean per follow-up %s   follow-ups with >= 1: %s" % (f3(m["false_alarms_mean"]), f3(m["false_alarm_followups"])))
    for key, label in (("moles", "moles"), ("freckles", "freckles>=1.5")):
        x = m[key]
        print("matching     %-13s matched %s of %d, not found %d; position error px median %s p95 %s, mm median %s p95 %s" % (
            label, f3(x["matched_rate"]), x["n"], x["not_found"], f3(x["err_px_median"]), f3(x["err_px_p95"]),
            f3(x["err_mm_median"]), f3(x["err_mm_p95"])))
    s = m["size"]
    print("size (>3mm)  median relative error %s   within 10 %%: %s (%d)" % (f3(s["median_rel_err"]), f3(s["within_10pct"]), s["n"]))
    print("time         median %.0f ms   max %.0f ms" % (m["time_ms"]["median"], m["time_ms"]["max"]))


def main(argv=None):
    ap = argparse.ArgumentParser(description="lesion-level change benchmark on synthetic follow-up pairs")
    ap.add_argument("--tool", required=True, help="the comparison program (PREV.jpg CUR.jpg -> JSON)")
    ap.add_argument("--pairs", type=int, default=60)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--strength", type=float, nargs="+", default=[1.0, 1.5])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--long-side", type=int, default=2000)
    ap.add_argument("--keep", help="keep (and reuse) the generated pairs in this folder")
    ap.add_argument("--data", help="run on the pairs under this folder; generate nothing")
    ap.add_argument("--scale", choices=["known", "unknown"], default="unknown")
    ap.add_argument("--json-out", help="write the metrics as one JSON line to this file")
    ap.add_argument("--timeout", type=int, default=300, help="seconds per tool run")
    ap.add_argument("--show-errors", type=int, default=5, help="print this many error messages")
    args = ap.parse_args(argv)
    if not (os.path.isfile(args.tool) and os.access(args.tool, os.X_OK)) and not shutil.which(args.tool):
        ap.error("tool not found or not executable: %s" % args.tool)

    groups = []
    tmp = None
    if args.data:
        by = {}
        for p in pairs_in(args.data):
            by.setdefault(float(json.load(open(os.path.join(p, "truth.json")))["strength"]), []).append(p)
        groups = sorted(by.items())
        if not groups:
            ap.error("no pairs (truth.json) under %s" % args.data)
    else:
        root = args.keep or tempfile.mkdtemp(prefix="lesion_bench.")
        tmp = None if args.keep else root
        groups = [(s, prepare(args, s, root)) for s in args.strength]

    all_metrics = {"seed": None if args.data else args.seed, "data": args.data, "long_side": None if args.data else args.long_side,
                   "scale": args.scale, "tool": args.tool, "by_strength": {}}
    try:
        for strength, pairs in groups:
            scored, times, errors, shown = [], [], 0, 0
            t0 = time.time()
            with cf.ThreadPoolExecutor(max(1, args.jobs)) as ex:
                for tr, res, err, wall in ex.map(lambda p: run_tool(args, p), pairs):
                    if err is not None:
                        errors += 1
                        if shown < args.show_errors:
                            print("error: pair %d (strength %g): %s" % (tr["index"], strength, err), file=sys.stderr, flush=True)
                            shown += 1
                        scored.append(None)
                        continue
                    el = res.get("elapsed_ms")
                    times.append(float(el) if isinstance(el, (int, float)) else wall)
                    scored.append(score_pair(tr, res))
            m = summarize(scored, times, errors, len(pairs))
            m["wall_s"] = round(time.time() - t0, 1)
            print_table("strength %g" % strength, m)
            all_metrics["by_strength"]["%g" % strength] = m
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    line = json.dumps(no_nan(all_metrics), sort_keys=True)
    print("\n" + line)
    if args.json_out:
        with open(args.json_out, "w") as f:
            f.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
