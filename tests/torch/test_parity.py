#!/usr/bin/env python3
"""Parity of libbcd's torch backend with PyTorch (issue 4's acceptance).

--part tensors   the same input tensors through libbcd (ctypes on libbcd.so) and through
                 PyTorch on the same TorchScript file: per image
                 max|libbcd - torch| <= 1e-5 * max|torch|; with the module's default
                 (frozen + optimized) and with BCD_TORCH_OPTIMIZE=0.
--part pipeline  image files through libbcd's decode -> preprocess -> embed and through
                 the seed's Python pipeline (seed_pipeline.py) + PyTorch: cosine distance
                 <= 1e-6 per image with the MobileNetV2 ImageNet model, and the
                 differences between images agree too (pairwise cosine distances, and the
                 difference vectors emb_i - emb_j). Random-weight ResNet50 maps every image
                 to nearly the same direction, so for it only the difference vectors say
                 something; they are reported and checked as well.

Exit status: 0 pass, 1 fail, 77 skipped (decoder/preprocessing not available yet).
"""
import argparse
import itertools
import os
import sys
import tempfile

import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bcd_ctypes  # noqa: E402
import seed_pipeline  # noqa: E402

REL_TOL = 1e-5    # max |diff| <= REL_TOL * max |ref|, same input tensors
COS_TOL = 1e-6    # cosine distance per image, whole pipeline
PAIR_TOL = 1e-5   # |pairwise cosine distance libbcd - reference|
DIFF_TOL = 1e-5   # cosine distance between difference vectors (libbcd vs reference)

# Distinct pictures (PngSuite's interlaced and background-colour variants decode to the
# same pixels as these, the exif-orientation set is one photo stored eight ways).
SHARED_IMAGES = [
    "jpeg/baseline-420-testorig.jpg", "jpeg/progressive-444-650x470.jpg",
    "jpeg/progressive-420-32x32.jpg", "jpeg/restart-markers-444-33x33.jpg",
    "jpeg/grayscale-32x32.jpg", "jpeg/arithmetic-420-testimgari.jpg",
    "jpeg/cmyk-adobe-32x32.jpg", "jpeg/cmyk-adobe-subsampled-256x256.jpg",
    "jpeg/mjpeg-422-no-huffman-tables.jpg", "jpeg/tiny-1x1.jpg",
    "exif-orientation/Landscape_5.jpg", "exif-orientation/Portrait_7.jpg",
    "pngsuite/basn0g08.png", "pngsuite/basi0g04.png", "pngsuite/basn2c08.png", "pngsuite/basn2c16.png",
    "pngsuite/basn3p08.png", "pngsuite/basn4a08.png", "pngsuite/basn6a08.png", "pngsuite/basn6a16.png",
    "pngsuite/tbbn0g04.png", "pngsuite/tp0n2c08.png", "pngsuite/tm3n3p02.png",
]


def generate_images(outdir):
    """Varied synthetic photos: sizes, aspect ratios, JPEG (cv2, quality 90/75) and PNG."""
    import cv2
    rng = np.random.default_rng(20240)
    made = []

    def smooth(h, w, scale, channels=3):
        small = rng.uniform(0, 255, (max(2, h // scale), max(2, w // scale), channels)).astype(np.float32)
        big = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        return big.reshape(h, w, channels)

    def save(name, rgb, params=()):
        path = os.path.join(outdir, name)
        cv2.imwrite(path, cv2.cvtColor(np.clip(rgb, 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR), list(params))
        made.append(path)

    q90 = (cv2.IMWRITE_JPEG_QUALITY, 90)
    # skin-like: warm base colour, smooth variation, fine noise, a few dark spots
    h, w = 1600, 1200
    base = np.array([205, 150, 125], np.float32) + (smooth(h, w, 200) - 128) * 0.25
    base += rng.normal(0, 4, (h, w, 3))
    yy, xx = np.mgrid[0:h, 0:w]
    for cy, cx, r in [(400, 300, 25), (900, 700, 40), (1300, 500, 15)]:
        base -= 70 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))[..., None]
    save("gen-skin-1200x1600.jpg", base, q90)
    save("gen-landscape-1600x1200.jpg", smooth(1200, 1600, 50) + rng.normal(0, 8, (1200, 1600, 3)), q90)
    img = np.full((480, 640, 3), 30, np.float32)
    for _ in range(12):
        c = rng.uniform(0, 255, 3).tolist()
        cv2.circle(img, (int(rng.integers(0, 640)), int(rng.integers(0, 480))), int(rng.integers(10, 120)), c, -1)
    save("gen-shapes-640x480.png", img)
    save("gen-dark-300x301.jpg", smooth(301, 300, 20) * 0.15 + 10, (cv2.IMWRITE_JPEG_QUALITY, 75))
    save("gen-exact-224.png", smooth(224, 224, 8))
    save("gen-small-150x90.png", smooth(90, 150, 10))
    save("gen-portrait-900x1600.jpg", smooth(1600, 900, 120) * 0.8 + 30, (cv2.IMWRITE_JPEG_QUALITY, 95))
    save("gen-noise-512.png", rng.uniform(0, 255, (512, 512, 3)))
    save("gen-phone-3024x4032.jpg", smooth(4032, 3024, 300) * 0.6 + 60 + rng.normal(0, 3, (4032, 3024, 3)), q90)
    return made


def image_list(testdata, workdir):
    paths = [os.path.join(testdata, "images", p) for p in SHARED_IMAGES]
    paths = [p for p in paths if os.path.exists(p)]
    return paths + generate_images(workdir)


def torch_model(path, threads):
    import torch
    torch.set_num_threads(threads)
    return torch.jit.load(path).eval()


def torch_embed(model, tensors):
    """The embeddings [N, D] (a model exported with its feature map answers the tuple
    (embeddings, maps))."""
    import torch
    with torch.no_grad():
        y = model(torch.as_tensor(np.ascontiguousarray(tensors, np.float32)))
    return (y[0] if isinstance(y, tuple) else y).numpy()


def cosdist(a, b):
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    return 1.0 - float(a @ b) / (np.linalg.norm(a) * np.linalg.norm(b))


def open_embedder(lib, path, optimize):
    old = os.environ.get("BCD_TORCH_OPTIMIZE")
    os.environ["BCD_TORCH_OPTIMIZE"] = "1" if optimize else "0"
    try:
        return lib.open_embedder(path)
    finally:
        if old is None:
            del os.environ["BCD_TORCH_OPTIMIZE"]
        else:
            os.environ["BCD_TORCH_OPTIMIZE"] = old


def part_tensors(args, lib, images):
    rng = np.random.default_rng(7)
    tensors = [rng.standard_normal((3, 224, 224)).astype(np.float32) for _ in range(6)]
    tensors += [seed_pipeline.preprocess(p).numpy() for p in images[:10]]
    x = np.stack(tensors)
    ok = True
    for path in (args.resnet, args.mobilenet):
        ref = torch_embed(torch_model(path, args.threads), x)
        for optimize in (True, False):
            emb = open_embedder(lib, path, optimize)
            got = emb.embed(x)
            emb.close()
            ratios = np.abs(got - ref).max(axis=1) / np.abs(ref).max(axis=1)
            worst = float(ratios.max())
            status = "ok" if worst <= REL_TOL else "FAIL"
            ok &= worst <= REL_TOL
            print("%-26s optimize=%d  %d tensors, D=%d: max|diff|/max|ref| per image: worst %.2e, median %.2e "
                  "(limit %.0e) %s" % (os.path.basename(path), optimize, len(x), got.shape[1], worst,
                                       float(np.median(ratios)), REL_TOL, status))
    return ok


def part_pipeline(args, lib, images):
    names = [os.path.relpath(p, args.testdata) if p.startswith(args.testdata) else os.path.basename(p)
             for p in images]
    lib_t, ref_t = [], []
    for p in images:
        try:
            img = lib.decode_file(p)
        except bcd_ctypes.BcdError as e:
            if e.status == lib.EUNSUPPORTED:
                print("SKIP: libbcd cannot decode yet (%s)" % e)
                return None
            raise
        try:
            lib_t.append(lib.preprocess(img))
        except bcd_ctypes.BcdError as e:
            if e.status == lib.EUNSUPPORTED:
                print("SKIP: libbcd cannot preprocess yet (%s)" % e)
                return None
            raise
        finally:
            lib.free_image(img)
        ref_t.append(seed_pipeline.preprocess(p).numpy())
    lib_t, ref_t = np.stack(lib_t), np.stack(ref_t)

    # the preprocessed tensors, in uint8 steps of the 224x224 image
    std = np.array(seed_pipeline.STD, np.float32).reshape(1, 3, 1, 1)
    steps = np.abs(lib_t - ref_t) * std * 255.0
    differing = (steps > 0.5).reshape(len(images), -1).sum(axis=1)
    print("preprocessed tensors: %d images, max difference %.3g uint8 steps, %d images differ (%s)"
          % (len(images), float(steps.max()), int((differing > 0).sum()),
             ", ".join("%s: %d values" % (n, d) for n, d in zip(names, differing) if d) or "none"))

    ok = True
    for path, label in ((args.mobilenet, "MobileNetV2 ImageNet"), (args.resnet, "ResNet50 random")):
        emb = lib.open_embedder(path)
        got = emb.embed(lib_t)
        emb.close()
        ref = torch_embed(torch_model(path, args.threads), ref_t)
        per = np.array([cosdist(g, r) for g, r in zip(got, ref)])
        # pairs of images the model cannot tell apart have no difference to compare
        norms = np.linalg.norm(ref.astype(np.float64), axis=1)
        all_pairs = list(itertools.combinations(range(len(images)), 2))
        pairs = [(i, j) for i, j in all_pairs
                 if np.linalg.norm(ref[i].astype(np.float64) - ref[j]) > 1e-3 * max(norms[i], norms[j])]
        pair_d = np.array([abs(cosdist(got[i], got[j]) - cosdist(ref[i], ref[j])) for i, j in pairs])
        diff_d = np.array([cosdist(got[i] - got[j], ref[i] - ref[j]) for i, j in pairs])
        between = np.array([cosdist(ref[i], ref[j]) for i, j in pairs])
        print("%s (%s): %d images; cosine distance libbcd vs reference per image: max %.2e, median %.2e "
              "(limit %.0e)" % (label, os.path.basename(path), len(images), per.max(), np.median(per), COS_TOL))
        print("    between images (reference): cosine distance %.3g .. %.3g, median %.3g"
              % (between.min(), between.max(), np.median(between)))
        print("    %d pairs (%d of nearly identical embeddings left out): |pairwise cosine distance libbcd - reference| max %.2e; cosine distance of the "
              "difference vectors (emb_i - emb_j) max %.2e, median %.2e"
              % (len(pairs), len(all_pairs) - len(pairs), pair_d.max(), diff_d.max(), np.median(diff_d)))
        worst = int(per.argmax())
        if per.max() > COS_TOL:
            print("    worst image: %s (%.2e)" % (names[worst], per.max()))
        checks = [per.max() <= COS_TOL, diff_d.max() <= DIFF_TOL]
        if label.startswith("MobileNetV2"):
            checks.append(pair_d.max() <= PAIR_TOL)
        good = all(checks)
        print("    %s" % ("ok" if good else "FAIL"))
        ok &= good
    return ok


def main():
    # PIL's note on palette PNGs with tRNS (PngSuite tp0n2c08 ...): not ours to act on
    warnings.filterwarnings("ignore", message="Palette images with Transparency")
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", choices=["tensors", "pipeline"], required=True)
    ap.add_argument("--lib", required=True, help="libbcd.so")
    ap.add_argument("--resnet", required=True, help="ResNet50 TorchScript (random weights)")
    ap.add_argument("--mobilenet", required=True, help="MobileNetV2 TorchScript (ImageNet weights)")
    ap.add_argument("--testdata", required=True, help="shared test data folder")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    args = ap.parse_args()
    args.testdata = os.path.abspath(args.testdata)

    lib = bcd_ctypes.Lib(args.lib)
    with tempfile.TemporaryDirectory(prefix="bcd-parity-") as work:
        images = image_list(args.testdata, work)
        if args.part == "tensors":
            ok = part_tensors(args, lib, images)
        else:
            if len(images) < 20:
                print("FAIL: only %d images (need >= 20)" % len(images))
                return 1
            ok = part_pipeline(args, lib, images)
            if ok is None:
                return 77
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
