#!/usr/bin/env python3
"""Benchmark: full-size against reduced-scale JPEG decoding (a program that prints
numbers, not a test).

Builds tests/bench/bench_decode.c against a build folder's libbcd.so and runs it on one
six-angle session of 3024x4032 JPEGs (made with cv2 as in bench_embed.py, made from real
photos with --session photo, or given with --images): for the full-size decode and for
min_short_side values that select the scales 1/2, 1/4 and 1/8
(bcd_image_decode_file_ext()), the time to decode the session, to preprocess it
(bcd_image_preprocess, 224x224 tensors), and the cosine similarity of each image's
embedding with its full-size embedding: the builtin embedder, and with --torch-model
(plus --torch-module, the libbcd-torch.so of a -Dtorch=enabled build) a TorchScript
model, e.g. the MobileNetV2 that tests/torch builds.

It also checks that the reduced decodes are byte for byte PIL's Image.draft() on the
same file (same libjpeg-turbo), prints the mean absolute difference (0..255) between a
reduced decode and a full decode + cv2 INTER_AREA resize to the same size, and, with
--torch-model, where the embedding change comes from: the same cosine for a full decode
resized with INTER_AREA to the reduced size (no DCT scaling at all) and then preprocessed
(the Python reference pipeline, tests/torch/seed_pipeline.py, with torch).

  /usr/bin/python3 tests/bench/bench_decode.py --build build [--runs 5]
  /usr/bin/python3 tests/bench/bench_decode.py --build build-torch --torch-model \
      build-torch/tests/torch/mobilenet_v2-imagenet.pt \
      --torch-module build-torch/lib/libbcd-torch.so

Times (builtin run only) are per image: medians over --runs runs of the whole session
(the fastest run in brackets), one thread; the CPU time of decode + preprocess (least of
the runs) is shown too, as it is less disturbed on a shared machine.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)


def make_photo_session(outdir, width=3024, height=4032):
    """Six 3024x4032 JPEGs (quality 92, cv2) from the real photos of shared/testdata
    (exif-orientation/Portrait_1.jpg and Landscape_1.jpg, 1200x1800), enlarged with
    INTER_CUBIC, shifted and mirrored per angle, with sensor-like noise: photo content with
    about the entropy of a phone photo."""
    import cv2
    import numpy as np
    base = os.path.join(SRC, "..", "shared", "testdata", "images", "exif-orientation")
    srcs = [cv2.imread(os.path.join(base, n)) for n in ("Portrait_1.jpg", "Landscape_1.jpg")]
    if any(s is None for s in srcs):
        sys.exit("no photos in " + base)
    paths = []
    for k in range(6):
        path = os.path.join(outdir, "photo%d.jpg" % k)
        paths.append(path)
        src = srcs[k % 2]
        if src.shape[1] > src.shape[0]:
            src = cv2.rotate(src, cv2.ROTATE_90_CLOCKWISE)
        if k >= 2:
            src = cv2.flip(src, k % 2)
        img = cv2.resize(src, (width + 32 * k, height + 32 * k), interpolation=cv2.INTER_CUBIC)
        img = img[16 * k:16 * k + height, 16 * k:16 * k + width].astype(np.float32)
        img += np.random.default_rng(k).normal(0, 2.5, img.shape).astype(np.float32)
        cv2.imwrite(path, np.clip(img, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 92])
    return paths


def build(build_dir, out):
    lib = os.path.join(build_dir, "lib")
    if not os.path.isfile(os.path.join(lib, "libbcd.so")):
        sys.exit("no %s/libbcd.so: build first (ninja -C %s)" % (lib, build_dir))
    cmd = ["cc", "-O2", "-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra",
           "-I", os.path.join(SRC, "include"), "-I", os.path.join(build_dir, "include"),
           os.path.join(HERE, "bench_decode.c"), "-o", out, "-L", lib, "-Wl,-rpath," + lib, "-lbcd",
           "-lm", "-ldl"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        sys.exit("building bench_decode failed:\n" + " ".join(cmd) + "\n" + r.stderr)


def run(exe, model, runs, mins, images, env_extra=None, dump=None):
    env = dict(os.environ)
    env.update(env_extra or {})
    if dump:
        env["BENCH_DUMP_DIR"] = dump
    r = subprocess.run([exe, model, str(runs), ",".join(str(m) for m in mins), *images],
                       stdout=subprocess.PIPE, text=True, env=env)
    if r.returncode:
        sys.exit("bench_decode failed")
    return dict(line.split(None, 1) for line in r.stdout.splitlines() if line.strip())


def report_cosines(title, v, labels, n):
    """Cosines only: with libtorch loaded its idle threads spin between calls, so the times
    of that run say little."""
    print(title + " (%s, %s images)" % (v["model_name"], n))
    for k, label in enumerate(labels):
        cos = [float(v["%d_cos_%d" % (k, i)]) for i in range(n)]
        print("  %-6s %-10s cosine to full: mean %.6f (min %.6f)" % (label, v["%d_size" % k], sum(cos) / n, min(cos)))


def report(title, v, labels, n):
    print(title + " (%s, %s images, %s runs)" % (v["model_name"], n, v["runs"]))
    print("  %-6s %-10s %12s %12s %14s %6s %8s %6s   %s" % ("scale", "size", "decode ms", "prepr. ms",
                                                             "dec+prep ms", "gain", "CPU ms", "gain",
                                                             "cosine to full: mean (min)"))
    cpu0 = float(v["0_cpu_s_min"])
    total0 = float(v["0_decode_s"]) + float(v["0_preprocess_s"])
    for k, label in enumerate(labels):
        d = float(v["%d_decode_s" % k]) * 1e3 / n
        p = float(v["%d_preprocess_s" % k]) * 1e3 / n
        dmin = float(v["%d_decode_s_min" % k]) * 1e3 / n
        pmin = float(v["%d_preprocess_s_min" % k]) * 1e3 / n
        cos = [float(v["%d_cos_%d" % (k, i)]) for i in range(n)]
        gain = total0 / (float(v["%d_decode_s" % k]) + float(v["%d_preprocess_s" % k]))
        cpu = float(v["%d_cpu_s_min" % k])
        print("  %-6s %-10s %6.1f [%4.1f] %6.1f [%4.1f] %7.1f [%5.1f] %5.1fx %8.1f %5.1fx   %.6f (%.6f)"
              % (label, v["%d_size" % k], d, dmin, p, pmin, d + p, dmin + pmin, gain, cpu * 1e3 / n, cpu0 / cpu,
                 sum(cos) / n, min(cos)))
    print("  (per image; gain: full-size decode+preprocess time over this one's; CPU ms: CPU time of\n"
          "   decode+preprocess, least of the runs)")


def check_pil(dump, first_image, labels):
    """The reduced decodes against PIL's draft mode (1/2, 1/4, 1/8 only) and a full decode
    + cv2 INTER_AREA."""
    import cv2
    import numpy as np
    from PIL import Image
    full = np.asarray(Image.open(os.path.join(dump, "0.png")).convert("RGB"))
    for k, label in enumerate(labels[1:], start=1):
        ours = np.asarray(Image.open(os.path.join(dump, "%d.png" % k)).convert("RGB"))
        same = "-"
        if label in ("1/2", "1/4", "1/8"):
            im = Image.open(first_image)
            im.draft("RGB", (ours.shape[1], ours.shape[0]))
            pil = np.asarray(im.convert("RGB"))
            same = "yes" if pil.shape == ours.shape and np.array_equal(pil, ours) else "NO"
        area = cv2.resize(full, (ours.shape[1], ours.shape[0]), interpolation=cv2.INTER_AREA)
        mad = np.abs(area.astype(np.int16) - ours.astype(np.int16)).mean()
        print("  %-4s %-10s PIL draft identical: %-3s  mean |full+INTER_AREA - reduced| = %.3f"
              % (label, "%dx%d" % (ours.shape[1], ours.shape[0]), same, mad))


def attribution(model_path, images, labels):
    """MobileNetV2 (or any TorchScript model) cosine to the full-size path, in Python:
    DCT-scaled decode (PIL draft) against full decode + INTER_AREA to the same size."""
    import cv2
    import numpy as np
    import torch
    from PIL import Image
    sys.path.insert(0, os.path.join(SRC, "tests", "torch"))
    import seed_pipeline as sp
    model = torch.jit.load(model_path).eval()

    def embed(rgb):
        u8 = sp.to_uint8(sp.resize_image(sp.align_image(sp.normalize_image(rgb))))
        with torch.inference_mode():
            y = model(sp.to_tensor(u8).unsqueeze(0))
            y = y[0] if isinstance(y, tuple) else y  # (embedding, feature map)
            return y[0].double().numpy()

    def cos(a, b):
        return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))

    ds = [d for d in (2, 4, 8) if "1/%d" % d in labels]
    res = {}
    for p in images:
        full = np.asarray(Image.open(p).convert("RGB"))
        ref = embed(full)
        for d in ds:
            im = Image.open(p)
            im.draft("RGB", (im.size[0] // d, im.size[1] // d))
            small = np.asarray(im.convert("RGB"))
            area = cv2.resize(full, (small.shape[1], small.shape[0]), interpolation=cv2.INTER_AREA)
            res.setdefault(d, []).append((cos(ref, embed(small)), cos(ref, embed(area))))
    print("where the change comes from (Python reference pipeline, mean cosine to full):")
    for d in ds:
        label = "1/%d" % d
        dct = sum(r[0] for r in res[d]) / len(res[d])
        area = sum(r[1] for r in res[d]) / len(res[d])
        print("  %-4s DCT-scaled decode %.6f   full decode + INTER_AREA to the same size %.6f" % (label, dct, area))


def libjpeg_scales(tmp, images, runs):
    """libjpeg-turbo alone at every M/8: why libbcd uses only 1/8, 1/4 and 1/2."""
    exe = os.path.join(tmp, "jpeg_scales")
    libs = subprocess.run(["pkg-config", "--libs", "libjpeg"], capture_output=True, text=True,
                          check=True).stdout.split()
    cmd = ["cc", "-O2", "-std=c11", "-D_GNU_SOURCE", os.path.join(HERE, "jpeg_scales.c"), "-o", exe, *libs]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        sys.exit("building jpeg_scales failed:\n" + " ".join(cmd) + "\n" + r.stderr)
    out = subprocess.run([exe, str(runs), *images], stdout=subprocess.PIPE, text=True, check=True).stdout
    rows = [line.split() for line in out.splitlines()]
    full = float(rows[0][2])
    print("libjpeg-turbo alone, decode to RGB at M/8 (per image, CPU time, least of %d runs):" % runs)
    for m, size, sec in rows:
        print("  %s/8  %-10s %7.1f ms  %4.2fx the full-size time" % (m, size, float(sec) * 1e3 / len(images),
                                                                   float(sec) / full))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build", help="meson build folder (default: build)")
    ap.add_argument("--runs", type=int, default=5, help="runs per setting (default 5)")
    ap.add_argument("--images", nargs="*", help="JPEGs (default: a made-up 3024x4032 session)")
    ap.add_argument("--session", choices=("synthetic", "photo"), default="synthetic",
                    help="made-up session: bench_embed.py's smooth skin-coloured texture "
                         "(default) or enlarged real photos with noise")
    ap.add_argument("--torch-model", help="TorchScript model to compare embeddings with as well")
    ap.add_argument("--torch-module", help="libbcd-torch.so (default: $BCD_TORCH_MODULE)")
    ap.add_argument("--scales", type=lambda t: [int(x) for x in t.split(",")], default=[4, 2, 1],
                    help="reduced scales M/8 to compare with full size, as M (default 4,2,1)")
    ap.add_argument("--libjpeg-scales", action="store_true",
                    help="also time libjpeg-turbo alone at every scale M/8 (M = 1..8)")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="bcd-bench-decode-")
    try:
        exe = os.path.join(tmp, "bench_decode")
        build(os.path.abspath(args.build), exe)
        images = args.images
        if not images and args.session == "photo":
            images = make_photo_session(tmp)
        elif not images:
            from bench_embed import make_session
            images = make_session(tmp)
        print("session: %s, %.2f MB per image on average"
              % (args.images and "given" or args.session, sum(os.path.getsize(p) for p in images) / len(images) / 1e6))
        from PIL import Image
        w, h = Image.open(images[0]).size
        short = min(w, h)
        # min_short_side = the short side at M/8 selects M/8 (libjpeg rounds sizes up)
        scales = [m for m in args.scales if m < 8]
        labels = ["full"] + [{4: "1/2", 2: "1/4", 1: "1/8"}.get(m, "%d/8" % m) for m in scales]
        mins = [0] + [-(-short * m // 8) for m in scales]
        n = len(images)
        dump = os.path.join(tmp, "dump")
        os.mkdir(dump)
        print("decode options: min_short_side %s for %s" % (mins, labels))
        v = run(exe, "builtin", args.runs, mins, images, dump=dump)
        report("builtin embedder", v, labels, n)
        print("reduced decodes of %s:" % os.path.basename(images[0]))
        check_pil(dump, images[0], labels)
        if args.libjpeg_scales:
            libjpeg_scales(tmp, images, args.runs)
        if args.torch_model:
            env = {}
            if args.torch_module:
                env["BCD_TORCH_MODULE"] = os.path.abspath(args.torch_module)
            v = run(exe, os.path.abspath(args.torch_model), 1, mins, images, env_extra=env)
            report_cosines("torch model %s" % os.path.basename(args.torch_model), v, labels, n)
            attribution(os.path.abspath(args.torch_model), images, labels)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
