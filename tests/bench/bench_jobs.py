#!/usr/bin/env python3
"""Benchmark: the analysis job queue (a program that prints numbers, not a test).

Builds tests/bench/bench_jobs.c against a build folder's static libbcd (it calls the
store's internal job operations) and runs it on one check of examples/data:

  - jobs/minute for 1, 2 and 4 workers (bcd_worker_run(), threads, drain), a job being
    the analysis of one six-angle session with the builtin model, and for reference the
    same analyses run synchronously one after the other;
  - the queue's overhead per job without any analysis: enqueue (alone, and through the
    service with its validation), claim, heartbeat and complete, each one transaction of
    the local store (SQLite WAL, synchronous=FULL).

  /usr/bin/python3 tests/bench/bench_jobs.py --build build-jobs [--jobs 24] [--overhead-jobs 200]
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
LIBS = ["libcjson", "libcrypto", "libjpeg", "libpng", "sqlite3", "libcurl"]


def build(build_dir, out):
    static = os.path.join(build_dir, "lib", "libbcd.a")
    if not os.path.isfile(static):
        sys.exit("no %s: build first (ninja -C %s)" % (static, build_dir))
    libs = subprocess.run(["pkg-config", "--libs", *LIBS], capture_output=True, text=True, check=True).stdout.split()
    cmd = ["cc", "-O2", "-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra",
           "-I", os.path.join(SRC, "include"), "-I", os.path.join(SRC, "lib"),
           "-I", os.path.join(build_dir, "include"),
           os.path.join(HERE, "bench_jobs.c"), "-o", out, static, *libs, "-lm", "-ldl", "-pthread"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        sys.exit("building bench_jobs failed:\n" + " ".join(cmd) + "\n" + r.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build", help="meson build folder (default: build)")
    ap.add_argument("--jobs", type=int, default=24, help="jobs per worker count (default 24)")
    ap.add_argument("--overhead-jobs", type=int, default=200, help="jobs of the queue-only run (default 200)")
    ap.add_argument("--images", default=os.path.join(SRC, "examples", "data", "check1"),
                    help="folder with front.jpg ... raised.jpg")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="bcd-bench-jobs-")
    try:
        exe = os.path.join(tmp, "bench_jobs")
        build(os.path.abspath(args.build), exe)
        # stderr stays the terminal's: the driver shows its progress there
        r = subprocess.run([exe, args.images, str(args.jobs), str(args.overhead_jobs)], stdout=subprocess.PIPE,
                           text=True)
        if r.returncode:
            sys.exit("bench_jobs failed")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    v = dict(line.split(None, 1) for line in r.stdout.splitlines() if line.strip())
    print("analysis job queue, local store, builtin model, %s cores, %s jobs of %s images"
          % (v["cores"], v["jobs"], v["images_per_job"]))
    print("  synchronous (reference)   %8.1f jobs/min" % float(v["sync_jobs_per_min"]))
    for w in (1, 2, 4):
        print("  %d worker%s                 %8.1f jobs/min  (%.2f s)"
              % (w, " " if w == 1 else "s", float(v["workers_%d_jobs_per_min" % w]), float(v["workers_%d_seconds" % w])))
    print("queue overhead per job (%s jobs, no analysis):" % v["overhead_jobs"])
    for k, label in (("queue_enqueue_ms", "enqueue (store)"), ("queue_enqueue_via_service_ms",
                                                               "enqueue (service, validated)"),
                     ("queue_claim_ms", "claim"), ("queue_heartbeat_ms", "heartbeat"),
                     ("queue_complete_ms", "complete"), ("queue_overhead_per_job_ms", "enqueue+claim+complete")):
        print("  %-30s %8.3f ms" % (label, float(v[k])))
    print("  (analysis alone: %.1f ms per job)" % float(v["analysis_per_job_ms"]))


if __name__ == "__main__":
    main()
