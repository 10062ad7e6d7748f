#!/usr/bin/env python3
"""Benchmark: embedding one six-angle session of 3024x4032 JPEGs (a program that prints
numbers, not a test).

  (a) the seed's Python pipeline as it runs it: PIL + OpenCV preprocessing, torchvision
      ResNet50 without its classifier, one image at a time, torch's default threads;
  (b) the fastest PyTorch configuration found on this machine for the model alone
      (threads = cores, inference mode; eager, channels-last eager, TorchScript frozen and
      optimized for inference; batch 6 and batch 1);
  (c) libbcd end to end through tests/bench/bench_embed.c (decode + preprocess + embed),
      loading libtorch and the model shown separately; with the module's default
      (frozen + optimized) and with BCD_TORCH_OPTIMIZE=0. Decode + preprocess is timed on
      one thread, and again on one thread per core as bcd_session_analyze() runs it, at
      full size and with reduced-scale decoding at 1/2 and 1/4 (whose embeddings (d)
      compares with the exact path's).
  (d) what reduced-scale JPEG decoding (libjpeg-turbo DCT scaling, here through PIL's
      draft mode, the same libjpeg-turbo) would bring: decode + preprocess time and the
      embedding's cosine similarity to the exact path (MobileNetV2 ImageNet weights when
      ../shared/models has them).
  (e) the model time of libbcd against PyTorch's frozen and optimized TorchScript in ONE
      process (the same libtorch): the two called alternately on the same tensors, so
      that this machine's drifting speed hits both alike (separate processes minutes
      apart differ by up to +-40 % here); the goal's ratio. Also their largest difference.

Every measurement runs in its own process (peak RSS = getrusage ru_maxrss of that
process); per-session numbers are medians over --runs sessions.

  /usr/bin/python3 tests/bench/bench_embed.py --build build-torch [--runs 5]

ResNet50 gets seeded random weights (no ImageNet download here): the speed is the same.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SRC, "tests", "torch"))

ANGLES = ["front", "left", "right", "up", "down", "raised"]
PY = "/usr/bin/python3"


def peak_rss_mib():
    """VmHWM of this process (not ru_maxrss: Linux carries the parent's over fork + exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def make_session(outdir, width=3024, height=4032):
    """Six phone-sized JPEGs (quality 90, cv2) of smooth, skin-coloured synthetic texture."""
    import cv2
    import numpy as np
    paths = []
    for k, angle in enumerate(ANGLES):
        path = os.path.join(outdir, angle + ".jpg")
        paths.append(path)
        if os.path.exists(path):
            continue
        rng = np.random.default_rng(100 + k)
        small = rng.uniform(0, 255, (height // 96, width // 96, 3)).astype(np.float32)
        img = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC) * 0.5
        img += np.array([200, 150, 120], np.float32) * 0.5
        img += rng.normal(0, 3, img.shape).astype(np.float32)
        bgr = cv2.cvtColor(np.clip(img, 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR)
        cv2.imwrite(path, bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return paths


# ---------------------------------------------------------------- workers (subprocesses)

def worker_seed(args):
    """(a): as the seed's backend: resnet50 with the final layer removed, loaded once;
    per image: preprocess (PIL + cv2), ToTensor + Normalize, unsqueeze, forward."""
    t0 = time.perf_counter()
    import torch
    import torchvision
    import seed_pipeline
    t_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    model = torchvision.models.resnet50()
    model.load_state_dict(torch.load(args.state_dict))  # as weights=DEFAULT reads its checkpoint
    encoder = torch.nn.Sequential(*list(model.children())[:-1]).eval()
    t_load = time.perf_counter() - t0
    sessions, pre_t = [], []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        pre = 0.0
        for p in args.images:
            a = time.perf_counter()
            x = seed_pipeline.preprocess(p)
            pre += time.perf_counter() - a
            with torch.no_grad():
                encoder(x.unsqueeze(0)).squeeze().numpy()
        sessions.append(time.perf_counter() - t0)
        pre_t.append(pre)
    print(json.dumps({"import_s": t_import, "model_load_s": t_load, "threads": torch.get_num_threads(),
                      "session_s": sessions, "preprocess_s": pre_t, "peak_rss_mib": peak_rss_mib()}))


def worker_torch(args):
    """(b): the model alone, fastest configuration; tensors made up front."""
    import torch
    import torchvision
    threads = len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    x6 = torch.randn(6, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    x1 = x6[:1].contiguous()

    def timed(fn, x, runs):
        fn(x)
        fn(x)  # warm-up: JIT profiling runs, oneDNN primitive creation
        ts = []
        for _ in range(runs):
            t = time.perf_counter()
            fn(x)
            ts.append(time.perf_counter() - t)
        return ts

    results = {}
    with torch.inference_mode():
        torch.manual_seed(0)
        eager = torchvision.models.resnet50()
        eager.fc = torch.nn.Identity()
        eager.eval()
        results["eager"] = (timed(eager, x6, args.runs), timed(eager, x1, args.runs))
        cl = eager.to(memory_format=torch.channels_last)
        f = lambda x: cl(x.contiguous(memory_format=torch.channels_last))  # noqa: E731
        results["eager channels_last"] = (timed(f, x6, args.runs), timed(f, x1, args.runs))
    ts = torch.jit.load(args.model).eval()
    t0 = time.perf_counter()
    opt = torch.jit.optimize_for_inference(torch.jit.freeze(ts))
    t_opt = time.perf_counter() - t0
    with torch.inference_mode():
        results["torchscript frozen+optimized"] = (timed(opt, x6, args.runs), timed(opt, x1, args.runs))
        results["torchscript as stored"] = (timed(ts, x6, args.runs), timed(ts, x1, args.runs))
    print(json.dumps({"threads": threads, "optimize_s": t_opt,
                      "configs": {k: {"batch6_s": v[0], "batch1_s": v[1]} for k, v in results.items()},
                      "peak_rss_mib": peak_rss_mib()}))


def embedding(y):
    """[N, D] of what a model answers (models/export_model.py's include the feature map:
    the tuple (embeddings, maps))."""
    return y[0] if isinstance(y, tuple) else y


def worker_h2h(args):
    """(e): one process, the same libtorch: libbcd's embedder (through the bindings) and
    PyTorch's frozen and optimized TorchScript module, called alternately on the same
    tensors; also the largest difference of their embeddings."""
    import torch
    sys.path.insert(0, os.path.join(SRC, "bindings", "python"))
    import bcd
    threads = len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    x6 = torch.randn(6, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    x1 = x6[:1].contiguous()
    n6, n1 = x6.numpy(), x1.numpy()
    ctx = bcd.Context(load_env=False, threads=threads)
    emb = bcd.Embedder(args.model, ctx=ctx)
    opt = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.load(args.model).eval()))
    calls = {"bcd6": lambda: emb.embed(n6, as_numpy=True), "pt6": lambda: opt(x6),
             "bcd1": lambda: emb.embed(n1, as_numpy=True), "pt1": lambda: opt(x1)}
    times = {k: [] for k in calls}
    with torch.inference_mode():
        for f in calls.values():  # warm-up
            f()
            f()
        ref = embedding(opt(x6)).numpy()
        diff = float(abs(emb.embed(n6, as_numpy=True) - ref).max() / abs(ref).max())
        for r in range(args.runs):
            # ABBA order, so that neither side always runs first
            for k in (("bcd6", "pt6", "bcd1", "pt1") if r % 2 == 0 else ("pt6", "bcd6", "pt1", "bcd1")):
                t = time.perf_counter()
                calls[k]()
                times[k].append(time.perf_counter() - t)
    print(json.dumps({"threads": threads, "times": times, "max_rel_diff": diff}))


def worker_dct(args):
    """(d): decode at 1/1, 1/2, 1/4, 1/8 (PIL draft = libjpeg-turbo DCT scaling), then the
    seed's preprocessing; cosine of the embeddings against the exact path."""
    import numpy as np
    import torch
    from PIL import Image
    import seed_pipeline as sp
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    model = torch.jit.load(args.model).eval()
    out = {}
    ref = None
    for scale in (1, 2, 4, 8):
        dec, pre, tensors = [], [], []
        for r in range(args.runs):
            d = p = 0.0
            tensors = []
            for path in args.images:
                a = time.perf_counter()
                img = Image.open(path)
                if scale > 1:
                    img.draft("RGB", (img.width // scale, img.height // scale))
                rgb = np.array(img.convert("RGB"))
                b = time.perf_counter()
                u8 = sp.to_uint8(sp.resize_image(sp.align_image(sp.normalize_image(rgb))))
                tensors.append(sp.to_tensor(u8))
                c = time.perf_counter()
                d += b - a
                p += c - b
            dec.append(d)
            pre.append(p)
        with torch.inference_mode():
            emb = embedding(model(torch.stack(tensors))).numpy().astype(np.float64)
        if ref is None:
            ref = emb
        cos = [float(e @ f / (np.linalg.norm(e) * np.linalg.norm(f))) for e, f in zip(emb, ref)]
        out[str(scale)] = {"decode_s": statistics.median(dec), "preprocess_s": statistics.median(pre),
                           "decoded": "%dx%d" % rgb.shape[1::-1], "min_cosine": min(cos)}
    print(json.dumps({"scales": out}))


# ---------------------------------------------------------------- driver

def run_worker(name, extra, env=None):
    cmd = [PY, os.path.abspath(__file__), "--worker", name] + extra
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        sys.exit("worker %s failed:\n%s" % (name, res.stderr))
    doc = json.loads(res.stdout.strip().splitlines()[-1])
    doc["process_wall_s"] = wall
    return doc


def run_libbcd(driver, model, images, runs, env):
    t0 = time.perf_counter()
    res = subprocess.run([driver, model, str(runs)] + images,
                         capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        sys.exit("bench_embed failed:\n%s%s" % (res.stdout, res.stderr))
    doc = {}
    for line in res.stdout.splitlines():
        k, _, v = line.partition(" ")
        try:
            doc[k] = float(v)
        except ValueError:
            doc[k] = v
    doc["process_wall_s"] = wall
    return doc


def med(v):
    return statistics.median(v)



_T0 = time.time()


def progress(what, n=None, total=None):
    """Progress on stderr, only on a terminal; stdout keeps the numbers only."""
    if not sys.stderr.isatty():
        return
    if not what:  # done: erase the line
        sys.stderr.write("\r\033[K")
        sys.stderr.flush()
        return
    count = " %d of %d" % (n, total) if total else ""
    sys.stderr.write("\r\033[K%s%s | %.0f s" % (what, count, time.time() - _T0))
    sys.stderr.flush()

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--images", nargs="*", help=argparse.SUPPRESS)
    ap.add_argument("--state-dict", help=argparse.SUPPRESS)
    ap.add_argument("--build", default=os.path.join(SRC, "build-torch"), help="meson build folder with -Dtorch=enabled")
    ap.add_argument("--model", help="ResNet50 TorchScript file (default: export one with random weights)")
    ap.add_argument("--runs", type=int, default=5, help="sessions per measurement (median)")
    ap.add_argument("--cold", type=int, default=3, help="cold one-shot processes for libbcd (median)")
    ap.add_argument("--workdir", help="keep images and models here (default: a temporary folder)")
    ap.add_argument("--skip-seed", action="store_true", help="leave out (a), the slowest part")
    ap.add_argument("--h2h-runs", type=int, default=20,
                    help="alternating calls of each side in (e), libbcd and PyTorch in one process")
    args = ap.parse_args()

    if args.worker:
        {"seed": worker_seed, "torch": worker_torch, "dct": worker_dct, "h2h": worker_h2h}[args.worker](args)
        return 0

    tmp = None
    work = args.workdir
    if not work:
        tmp = tempfile.TemporaryDirectory(prefix="bcd-bench-")
        work = tmp.name
    os.makedirs(work, exist_ok=True)
    images = make_session(work)
    model = args.model
    if not model:
        model = os.path.join(work, "resnet50-random.pt")
        if not os.path.exists(model):
            subprocess.run([PY, os.path.join(SRC, "models", "export_model.py"), "--weights", "random",
                            "-o", model], check=True, stdout=subprocess.DEVNULL)
    state_dict = os.path.join(work, "resnet50-random-state.pth")
    if not os.path.exists(state_dict):
        subprocess.run([PY, "-c", "import torch, torchvision; torch.manual_seed(0); "
                        "torch.save(torchvision.models.resnet50().state_dict(), %r)" % state_dict], check=True)
    mnv2 = os.path.join(work, "mobilenet_v2.pt")
    weights = os.path.join(SRC, "..", "shared", "models", "mobilenet_v2_imagenet_dequantized.pth")
    if not os.path.exists(mnv2):
        wargs = ["--weights-file", weights] if os.path.exists(weights) else ["--weights", "random"]
        subprocess.run([PY, os.path.join(SRC, "models", "export_model.py"), "--arch", "mobilenet_v2"] + wargs +
                       ["-o", mnv2], check=True, stdout=subprocess.DEVNULL)

    driver = os.path.join(args.build, "tests", "torch", "bench_embed")
    module = os.path.join(args.build, "lib", "libbcd-torch.so")
    for f in (driver, module):
        if not os.path.exists(f):
            sys.exit("%s missing: build with meson setup %s -Dtorch=enabled && ninja -C %s" % (f, args.build, args.build))
    env = dict(os.environ, BCD_TORCH_MODULE=module)
    env.pop("BCD_TORCH_OPTIMIZE", None)
    env.pop("BCD_THREADS", None)
    cores = len(os.sched_getaffinity(0))
    model_mib = os.path.getsize(model) / 2 ** 20
    common = ["--runs", str(args.runs), "--images"] + images

    print("machine: %d cores (%s), libtorch from Debian; %d images %s, %.1f MB of JPEG; model %s (%.0f MiB)"
          % (cores, cpu_name(), len(images), "3024x4032", sum(os.path.getsize(p) for p in images) / 1e6,
             os.path.basename(model), model_mib))
    print("medians of %d sessions per measurement; each configuration in its own process; load average "
          "before: %.2f" % (args.runs, os.getloadavg()[0]))
    print("(other processes on the machine disturb these numbers: run it on a quiet machine)\n")

    # (c) libbcd, warm numbers from --runs sessions, cold from one-session processes
    progress("libbcd end to end")
    c = run_libbcd(driver, model, images, args.runs, env)
    c_plain = run_libbcd(driver, model, images, args.runs, dict(env, BCD_TORCH_OPTIMIZE="0"))
    cold = [run_libbcd(driver, model, images, 1, env)["process_wall_s"] for _ in range(args.cold)]
    cold_plain = [run_libbcd(driver, model, images, 1, dict(env, BCD_TORCH_OPTIMIZE="0"))["process_wall_s"]
                  for _ in range(args.cold)]
    # (b) PyTorch, model alone
    progress("PyTorch, model alone")
    b = run_worker("torch", ["--model", model, "--runs", str(args.runs)])
    # (e) model time head to head, in one process
    progress("model time head to head")
    e = run_worker("h2h", ["--model", model, "--runs", str(args.h2h_runs)],
                   env=dict(env, BCD_LIBRARY=os.path.join(args.build, "lib", "libbcd.so")))
    # (a) the seed's pipeline
    progress("seed pipeline (Python)")
    a = None if args.skip_seed else run_worker("seed", common + ["--state-dict", state_dict])
    # (d) DCT scaling
    progress("DCT-scaled decoding")
    d = run_worker("dct", ["--model", mnv2, "--runs", str(max(1, args.runs // 2)), "--images"] + images)
    progress("")

    n = len(images)

    def c_session(doc, suffix=""):
        pre = doc["decode_s" + suffix] + doc["preprocess_s" + suffix]
        return pre, pre + doc["embed_batch_s" + suffix], pre + doc["embed_single_s" + suffix]

    c_pre, c_sess, c_sess1 = c_session(c)
    c_pre_m, c_sess_m, c_sess1_m = c_session(c, "_min")
    print("(c) libbcd end to end (frozen + optimized, %d threads); per session: median (fastest)" % cores)
    print("    load libtorch (dlopen of the module)     %7.3f s" % c.get("module_load_s", float("nan")))
    print("    open model (read, optimize, probe)       %7.3f s" % c["model_open_s"])
    print("    decode %.3f (%.3f) + preprocess %.3f (%.3f) + embed batch 6 %.3f (%.3f) = %.3f (%.3f) s"
          % (c["decode_s"], c["decode_s_min"], c["preprocess_s"], c["preprocess_s_min"], c["embed_batch_s"],
             c["embed_batch_s_min"], c_sess, c_sess_m))
    print("        -> %.1f (%.1f) images/s end to end at batch 6; model alone %.1f (%.1f) images/s"
          % (n / c_sess, n / c_sess_m, n / c["embed_batch_s"], n / c["embed_batch_s_min"]))
    print("    batch 1: embed 6 x 1 %.3f (%.3f) s -> %.1f (%.1f) images/s end to end, model alone %.1f (%.1f)"
          % (c["embed_single_s"], c["embed_single_s_min"], n / c_sess1, n / c_sess1_m, n / c["embed_single_s"],
             n / c["embed_single_s_min"]))
    par = [(k, c["par_prep_%s_s" % k], c["par_prep_%s_s_min" % k]) for k in ("full", "half", "quarter")]
    print("    decode + preprocess on %d threads, as bcd_session_analyze() does: full size %.3f (%.3f) s, "
          "decoded at 1/2 %.3f (%.3f) s, at 1/4 %.3f (%.3f) s"
          % (c["prep_threads"], par[0][1], par[0][2], par[1][1], par[1][2], par[2][1], par[2][2]))
    print("    first session after open: decode %.3f + preprocess %.3f + embed %.3f s"
          % (c["first_decode_s"], c["first_preprocess_s"], c["first_embed_batch_s"]))
    print("    one-shot process (start, libtorch, model, one session): %.2f s (median of %d, fastest %.2f)"
          % (med(cold), len(cold), min(cold)))
    print("    peak RSS %.0f MiB decoding on one thread (after libtorch %.0f, peak while opening the model %.0f, "
          "after first session %.0f); %.0f MiB once %d threads decode at once"
          % (c["peak_rss_serial_kib"] / 1024, c["rss_after_module_kib"] / 1024, c["peak_rss_after_open_kib"] / 1024,
             c["rss_after_first_kib"] / 1024, c["peak_rss_kib"] / 1024, c["prep_threads"]))
    print("    as stored (BCD_TORCH_OPTIMIZE=0): open %.3f s, embed batch 6 %.3f (%.3f) s, batch 1 %.3f (%.3f) "
          "s/image, one-shot %.2f s, peak RSS %.0f MiB"
          % (c_plain["model_open_s"], c_plain["embed_batch_s"], c_plain["embed_batch_s_min"],
             c_plain["embed_single_s"] / n, c_plain["embed_single_s_min"] / n, med(cold_plain),
             c_plain["peak_rss_kib"] / 1024))

    print("\n(b) PyTorch, model alone, %d threads, inference mode (frozen+optimized costs %.3f s once); "
          "median (fastest)" % (b["threads"], b["optimize_s"]))
    best6 = best1 = None
    for name, r in b["configs"].items():
        t6, t1 = med(r["batch6_s"]), med(r["batch1_s"])
        m6, m1 = min(r["batch6_s"]), min(r["batch1_s"])
        print("    %-30s batch 6 %.3f (%.3f) s = %.1f images/s   batch 1 %.3f (%.3f) s = %.1f images/s"
              % (name, t6, m6, 6 / t6, t1, m1, 1 / t1))
        if best6 is None or t6 < best6[1]:
            best6 = (name, t6, m6)
        if best1 is None or t1 < best1[1]:
            best1 = (name, t1, m1)
    print("    fastest: batch 6 %s, batch 1 %s; peak RSS %.0f MiB" % (best6[0], best1[0], b["peak_rss_mib"]))

    if a:
        a_session, a_min = med(a["session_s"]), min(a["session_s"])
        print("\n(a) seed pipeline (PIL + OpenCV + torchvision ResNet50, one image at a time, %d thread%s)"
              % (a["threads"], "" if a["threads"] == 1 else "s"))
        print("    import torch/torchvision %.2f s, build + load model %.2f s" % (a["import_s"], a["model_load_s"]))
        print("    per session %.3f (%.3f) s, of which preprocessing %.3f s -> %.2f images/s; whole process %.1f s; "
              "peak RSS %.0f MiB" % (a_session, a_min, med(a["preprocess_s"]), n / a_session, a["process_wall_s"],
                                     a["peak_rss_mib"]))

    print("\n(d) reduced-scale JPEG decoding (libjpeg-turbo DCT scaling via PIL draft), Python preprocessing,"
          " MobileNetV2 cosine to the exact path")
    for scale, r in d["scales"].items():
        print("    1/%-2s decoded %-10s decode %.3f s + preprocess %.3f s per session; min cosine %.6f"
              % (scale, r["decoded"], r["decode_s"], r["preprocess_s"], r["min_cosine"]))

    et = e["times"]
    e6 = med(et["bcd6"]) / med(et["pt6"])
    e1 = med(et["bcd1"]) / med(et["pt1"])
    print("\n(e) model time in one process (the same libtorch), libbcd's embedder and PyTorch's frozen+optimized"
          " TorchScript called alternately, %d calls each; median (fastest)" % len(et["bcd6"]))
    print("    batch 6: libbcd %.3f (%.3f) s, PyTorch %.3f (%.3f) s; batch 1: libbcd %.3f (%.3f) s, PyTorch %.3f "
          "(%.3f) s" % (med(et["bcd6"]), min(et["bcd6"]), med(et["pt6"]), min(et["pt6"]), med(et["bcd1"]),
                        min(et["bcd1"]), med(et["pt1"]), min(et["pt1"])))
    print("    embeddings: max |libbcd - PyTorch| / max |PyTorch| = %.2e" % e["max_rel_diff"])

    print("\nload average after: %.2f" % os.getloadavg()[0])
    print("\nratios and goals: median (fastest)")
    if a:
        print("    (a) / (c) per session, end to end: %.1fx (%.1fx)  (goal >= 5x)"
              % (a_session / c_sess, a_min / c_sess_m))
        print("    (a) / (c) whole processes (seed: import, load, %d sessions; libbcd one-shot, 1 session): "
              "%.1f s vs %.2f s" % (args.runs, a["process_wall_s"], med(cold)))
    print("    (c) model time / (b) fastest, batch 6: %.3f (%.3f)  (goal <= 1.10)"
          % (c["embed_batch_s"] / best6[1], c["embed_batch_s_min"] / best6[2]))
    print("    (c) model time / (b) fastest, batch 1: %.3f (%.3f)"
          % (c["embed_single_s"] / n / best1[1], c["embed_single_s_min"] / n / best1[2]))
    print("    (e) model time / PyTorch fastest, same process, alternating: batch 6 %.3f, batch 1 %.3f  (goal <= 1.10)"
          % (e6, e1))
    print("    (c) decode + preprocess share of the session: %.0f%% (%.0f%%)  (goal < 15%%)"
          % (100 * c_pre / c_sess, 100 * c_pre_m / c_sess_m))
    for (k, t, tm), label in zip(par, ("full size", "decoded at 1/2", "decoded at 1/4")):
        print("        on %d threads, %-15s %.0f%% (%.0f%%)"
              % (c["prep_threads"], label + ":", 100 * t / (t + c["embed_batch_s"]),
                 100 * tm / (tm + c["embed_batch_s_min"])))
    print("    (c) peak RSS %.0f MiB decoding on one thread, %.0f MiB on %d, vs model %.0f MiB + 300 = %.0f MiB"
          % (c["peak_rss_serial_kib"] / 1024, c["peak_rss_kib"] / 1024, c["prep_threads"], model_mib,
             model_mib + 300))
    if tmp:
        tmp.cleanup()
    return 0


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    sys.exit(main())
