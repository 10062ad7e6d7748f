#!/usr/bin/env python3
"""Benchmark: the CPU time of one bcd_detect_compare() on the working copies analyze hands
the detector (photos reduced to 512 px on the longer side), for one or more builds of the
library side by side (a program that prints numbers, not a test).

The pairs are the detect benchmark's (tests/bench/detect_bench.py, its seeded generator:
--users users, six angles each, phone resolutions, nuisances x1), reduced by area to 512 px
and decoded once; then --rounds rounds, each timing every library in turn on all pairs
(one thread, CPU time of this process), so that the machine's drift hits every build alike.
Printed per library: the median and the fastest round's milliseconds per comparison, and a
checksum of the results (local_change, evidence, flags and the alignment matrix of every
pair, rounded to nothing: builds that compute the same give the same checksum).

  /usr/bin/python3 tests/bench/bench_compare.py --lib build/lib/libbcd.so [--lib OTHER.so ...]
      [--users 3] [--seed 5] [--rounds 5]

Each --lib is loaded as its own copy (copy a build's libbcd.so.0.1.0 to its own folder
first when comparing two builds of one tree).
"""
import argparse
import glob
import hashlib
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time

import cv2

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import detect_bench  # noqa: E402  (the generator's ctypes bindings)

SIDE = 512


def make_pairs(lib, users, seed, folder):
    """Render the detect benchmark's pairs into folder; return [(cur PNG bytes, prev PNG bytes)]."""
    subprocess.run([sys.executable, os.path.join(HERE, "detect_bench.py"), "--lib", lib, "--users", str(users),
                    "--seed", str(seed), "--strength", "1.0", "--jobs", "2", "--full-fraction", "0",
                    "--images", folder], check=True, stdout=subprocess.DEVNULL)
    pairs = []
    for cur in sorted(glob.glob(os.path.join(folder, "*_cur.jpg"))):
        two = []
        for path in (cur, cur[:-len("_cur.jpg")] + "_prev.jpg"):
            im = cv2.imread(path)
            h, w = im.shape[:2]
            f = SIDE / max(h, w)
            if f < 1:
                im = cv2.resize(im, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)
            ok, png = cv2.imencode(".png", im)
            assert ok
            two.append(png.tobytes())
        pairs.append(tuple(two))
    return pairs


def checksum(lib, r):
    i = lib.info(r)
    h = hashlib.sha256()
    h.update(struct.pack("<ddI", i["local_change"], i["evidence"], i["flags"]))
    h.update(struct.pack("<6d", *(i["matrix"] or [0.0] * 6)))
    return h.digest()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lib", action="append", required=True, help="a libbcd.so (repeat to compare builds)")
    ap.add_argument("--users", type=int, default=3)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pairs = make_pairs(a.lib[0], a.users, a.seed, tmp)
    libs = [detect_bench.Lib(os.path.abspath(p)) for p in a.lib]
    photos = [[(lib.decode(c), lib.decode(p)) for c, p in pairs] for lib in libs]
    times = [[] for _ in libs]
    sums = [None for _ in libs]
    for _ in range(a.rounds):
        for k, lib in enumerate(libs):
            h = hashlib.sha256()
            t0 = time.process_time()
            for cur, prev in photos[k]:
                r = lib.compare(cur, prev)
                h.update(checksum(lib, r))
                lib.L.bcd_detect_result_free(r)
            times[k].append((time.process_time() - t0) / len(pairs) * 1e3)
            sums[k] = h.hexdigest()[:16]
    print("bcd_detect_compare on %d pairs of %d px working copies (%d users, seed %d), %d rounds"
          % (len(pairs), SIDE, a.users, a.seed, a.rounds))
    for k, path in enumerate(a.lib):
        print("  %-40s median %6.2f ms  fastest %6.2f ms  results %s"
              % (path, statistics.median(times[k]), min(times[k]), sums[k]))
    for k, lib in enumerate(libs):
        for cur, prev in photos[k]:
            lib.L.bcd_image_free(cur)
            lib.L.bcd_image_free(prev)


if __name__ == "__main__":
    main()
