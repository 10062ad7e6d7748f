#!/usr/bin/python3
"""Lesions on real photos: the labelled moles of ../shared/testdata/real-back, and changes
painted into them. A benchmark program that prints numbers; it is not a test.

For each pair of photos of one back taken minutes apart (10 and 11, 12 and 13; see the
folder's README: no real change between them):
  * matching, the protocol of the data set's own benchmark: a labelled mole of both photos
    is re-found when the lesion whose previous centre is nearest its label in the earlier
    photo (within 50 px) is "matched" with a centre within 50 px of its label in the later
    one;
  * false alarms: every lesion flagged changed (there is no change to find).
Then a change is painted into photo 13 by tests/bench/paint_change.py (a new 3 mm mole, and
a labelled mole grown by 1.5 mm; seeded, recorded) and 12 is compared with the painted
photo: found when a changed lesion lies in the painted box (grown by 20 px), and the
changed lesions elsewhere are counted.

Usage:
  /usr/bin/python3 tests/bench/real_back_bench.py --tool build/tests/lesion_compare
      [--data ../shared/testdata/real-back] [--seed 1] [--keep DIR]
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def compare(tool, prev, cur):
    p = subprocess.run([tool, prev, cur], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit("%s failed: %s" % (tool, p.stderr.strip()))
    return json.loads(p.stdout)


def matching(data, a, b, res):
    la = {m["uuid"]: m for m in json.load(open(os.path.join(data, "back-%s.moles.json" % a)))}
    lb = {m["uuid"]: m for m in json.load(open(os.path.join(data, "back-%s.moles.json" % b)))}
    both = [u for u in la if u in lb]
    ok = 0
    for u in both:
        best = None
        for les in res["lesions"]:
            pc = les["previous_center"]
            if pc is None:
                continue
            d = math.hypot(pc[0] - la[u]["x"], pc[1] - la[u]["y"])
            if d <= 50 and (best is None or d < best[0]):
                best = (d, les)
        if best and best[1]["state"] == "matched" and best[1]["center"]:
            c = best[1]["center"]
            ok += math.hypot(c[0] - lb[u]["x"], c[1] - lb[u]["y"]) <= 50
    return ok, len(both)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tool", required=True)
    ap.add_argument("--data", default=os.path.join(HERE, "..", "..", "..", "shared", "testdata", "real-back"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", help="folder for the painted photos and their records (default: a temporary one)")
    args = ap.parse_args()
    data = os.path.abspath(args.data)
    out = args.keep or tempfile.mkdtemp(prefix="real-back-")
    os.makedirs(out, exist_ok=True)
    total_ok = total = 0
    print("pair    status          matched labelled moles (<= 50 px)   lesions flagged changed   time")
    for a, b in (("10", "11"), ("12", "13")):
        res = compare(args.tool, os.path.join(data, "back-%s.jpg" % a), os.path.join(data, "back-%s.jpg" % b))
        ok, n = matching(data, a, b, res)
        total_ok += ok
        total += n
        flagged = sum(les["changed"] for les in res["lesions"])
        print("%s->%s  %-15s %2d of %2d                              %3d                 %.1f s"
              % (a, b, res["status"], ok, n, flagged, res["elapsed_ms"] / 1000))
    print("matched in all: %d of %d (%.0f %%)" % (total_ok, total, 100.0 * total_ok / max(total, 1)))
    print()
    print("painted into 13   found   changed elsewhere   the painted lesion")
    for kind in ("new_mole", "growth"):
        img = os.path.join(out, "back-13-%s.jpg" % kind)
        rec = os.path.join(out, "back-13-%s.json" % kind)
        subprocess.run([sys.executable, os.path.join(HERE, "paint_change.py"), "--photo",
                        os.path.join(data, "back-13.jpg"), "--mask", os.path.join(data, "back-13.mask.png"),
                        "--moles", os.path.join(data, "back-13.moles.json"), "--kind", kind, "--seed",
                        str(args.seed), "--out", img, "--record", rec], check=True, capture_output=True)
        r = json.load(open(rec))
        x0, y0, x1, y1 = r["box"]
        res = compare(args.tool, os.path.join(data, "back-12.jpg"), img)
        inside = lambda c: c and x0 - 20 <= c[0] <= x1 + 20 and y0 - 20 <= c[1] <= y1 + 20
        found = any(les["changed"] and inside(les["center"]) for les in res["lesions"])
        elsewhere = sum(les["changed"] and not inside(les["center"]) for les in res["lesions"])
        near = [les for les in res["lesions"] if inside(les["center"])]
        what = ""
        if near:
            les = max(near, key=lambda les: les["diameter_px"])
            ch = les["change"] or {}
            what = "%s, %.0f px%s%s" % (les["state"], les["diameter_px"],
                                         ", not judged (light differs: %.2f)" % ch["light"]
                                         if ch and not ch.get("judged") else "",
                                         ", score %.2f" % les["score"] if les["score"] is not None else "")
        print("%-17s %-7s %3d                 %s" % (kind, "yes" if found else "no", elsewhere, what))


if __name__ == "__main__":
    main()
