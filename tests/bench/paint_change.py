#!/usr/bin/python3
"""Paint a true change into a real skin photo, and record exactly what was painted.

For checking a change detector on real skin (texture, freckles, hair, clothing edges,
shadow bands) where no real change exists: pair an unchanged photo with a copy of its
partner into which a change was painted.

  new_mole  a new mole of --diameter-mm (3 mm by default): soft edge, irregular border,
            brown with a slight colour variation, blended multiplicatively into the skin in
            linear light (the texture and the lighting under it stay). It is placed at a
            seeded position inside the skin mask, more than 15 mm from every labelled mole,
            where the local brightness is near the skin's median and the brightness does
            not change fast (away from the edges of shadow bands), and where no dark spot
            lies already.
  growth    a labelled mole (--moles; seeded choice, or --uuid) grows by --grow-mm (1.5 mm)
            in diameter: its present extent is estimated from the image (the dark blob
            around the label, at 35 % of its darkness against the surrounding skin), and the
            mole, as a transmission map over the skin, is scaled about its centroid so that
            its equivalent diameter grows by that much: a rim of the mole's own colours and
            soft border appears around it, and the skin's texture under the rim stays.

The scale: the back photos span about 40 cm across their width, so --mm-per-px defaults
to 400 / width. The output is a JPEG of quality 95 of the same size; the record is
{"kind", "photo", "center": [x, y], "box": [x0, y0, x1, y1], "diameter_mm",
"diameter_px", "mm_per_px", "mole_uuid"} (+ for growth the estimated previous diameter),
in the photo's pixel coordinates (the centre of the top-left pixel is (0, 0)).

Usage:
  /usr/bin/python3 tests/bench/paint_change.py --photo back-13.jpg --mask back-13.mask.png
      --kind new_mole|growth --out OUT.jpg --record OUT.json [--seed 1] [--mm-per-px X]
      [--moles back-13.moles.json] [--uuid UUID] [--diameter-mm 3] [--grow-mm 1.5]
      [--crop CROP.png]
--crop writes a PNG with the painted area before and after (for looking at it).
"""
import argparse
import json
import math
import os
import sys

import cv2
import numpy as np

GAMMA = 2.2
OD_MOLE = np.array([0.80, 1.22, 1.55], np.float32)  # optical density per channel (R, G, B), brown


def to_lin(img_u8):
    return (img_u8.astype(np.float32) / 255.0) ** GAMMA


def to_srgb(lin):
    return np.clip(np.power(np.clip(lin, 0, 1), 1.0 / GAMMA) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def smoothstep(t):
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def luma(bgr):
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.float32)


def load_moles(path):
    if not path:
        return []
    with open(path) as f:
        return [m for m in json.load(f) if "x" in m and "y" in m]


# ------------------------------------------------------------------ new mole

def choose_place(rng, img, mask, moles, mmpp, diam_mm):
    """A skin position away from labelled moles, of median brightness, off shadow edges."""
    H, W = mask.shape
    f = 8  # work on a reduced image
    small = cv2.resize(luma(img), (W // f, H // f), interpolation=cv2.INTER_AREA)
    msk = cv2.resize(mask, (W // f, H // f), interpolation=cv2.INTER_NEAREST) > 127
    px = lambda mm: mm / (mmpp * f)
    # keep a margin of skin all around the new mole
    inner = cv2.erode(msk.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (int(2 * px(8)) | 1,) * 2)) > 0
    local = cv2.GaussianBlur(small, (0, 0), px(3.0))
    med = float(np.median(small[msk]))
    gy, gx = np.gradient(cv2.GaussianBlur(small, (0, 0), px(2.0)))
    grad = np.hypot(gx, gy) / max(med, 1.0) * px(1.0)  # relative change per mm
    # dark spots (unlabelled moles, freckles): the fine image well below its surroundings
    fine = cv2.GaussianBlur(small, (0, 0), max(0.6, px(0.3)))
    spots = (local - fine) / max(med, 1.0) > 0.06
    spots = cv2.dilate(spots.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (int(2 * px(diam_mm)) | 1,) * 2)) > 0
    ok = inner & ~spots
    yy, xx = np.mgrid[0:H // f, 0:W // f]
    for m in moles:
        ok &= np.hypot(xx - m["x"] / f, yy - m["y"] / f) > px(15.0 + diam_mm / 2)
    b = int(math.ceil(px(10.0)))  # away from the photo's borders
    ok[:b], ok[-b:], ok[:, :b], ok[:, -b:] = False, False, False, False
    if not ok.any():
        ok = inner.copy()
    score = np.abs(local - med) / med + 2.0 * grad
    cand = np.flatnonzero(ok)
    best = cand[np.argsort(score.ravel()[cand])[:max(20, cand.size // 50)]]  # the best 2 %
    pick = int(best[int(rng.integers(best.size))])
    cy, cx = divmod(pick, W // f)
    return (cx + 0.5) * f - 0.5 + rng.uniform(-f / 2, f / 2), (cy + 0.5) * f - 0.5 + rng.uniform(-f / 2, f / 2)


def paint_new_mole(rng, img, mask, moles, mmpp, diam_mm):
    cx, cy = choose_place(rng, img, mask, moles, mmpp, diam_mm)
    od, mole_edge = mole_colour(img, moles, mmpp)  # colour and softness of this photo's moles
    r = 0.5 * diam_mm / mmpp
    aspect = rng.uniform(1.0, 1.25)
    a, b = r * math.sqrt(aspect), r / math.sqrt(aspect)
    phi = rng.uniform(0, math.pi)
    harm = [(k, rng.uniform(0, 0.07) / k ** 0.4, rng.uniform(0, 2 * math.pi)) for k in range(2, 7)]
    # normalise the equivalent diameter of the irregular shape to diam_mm
    th = np.linspace(0, 2 * math.pi, 360, endpoint=False)
    rr = 1 + sum(amp * np.cos(k * th + ph) for k, amp, ph in harm)
    s = 1.0 / math.sqrt(np.mean(rr * rr))
    a, b = a * s, b * s
    edge = max(2.0, 0.35 / mmpp)  # soft border, px: like the labelled moles' where known
    if mole_edge:
        edge = float(np.clip(1.25 * mole_edge, 2.0, 0.8 * r))
    R = int(max(a, b) * 1.4 + 3 * edge + 4)
    x0, y0 = int(round(cx)) - R, int(round(cy)) - R
    yy, xx = np.mgrid[y0:y0 + 2 * R + 1, x0:x0 + 2 * R + 1].astype(np.float32)
    dx, dy = xx - cx, yy - cy
    u = dx * math.cos(phi) + dy * math.sin(phi)
    v = -dx * math.sin(phi) + dy * math.cos(phi)
    t = np.arctan2(v / b, u / a)
    rad = 1 + sum(amp * np.cos(k * t + ph) for k, amp, ph in harm)
    rho = np.sqrt((u / a) ** 2 + (v / b) ** 2) / rad
    dist = (1.0 - rho) * rad * np.sqrt((a * np.cos(t)) ** 2 + (b * np.sin(t)) ** 2)
    alpha = smoothstep(0.5 + dist / edge)
    dens = rng.uniform(0.85, 1.25) * (1.0 + rng.uniform(0.0, 0.4) * np.clip(1 - rho * rho, 0, 1))
    nz = cv2.resize(rng.standard_normal((2 * R // 4 + 3, 2 * R // 4 + 3)).astype(np.float32), (2 * R + 1, 2 * R + 1),
                    interpolation=cv2.INTER_CUBIC)
    dens = dens * (1.0 + 0.18 * nz) * alpha
    if od is None:
        od = OD_MOLE[::-1].copy()  # BGR
    od = od * rng.uniform(0.94, 1.06, 3).astype(np.float32)
    trans = np.exp(-dens[..., None] * od[None, None, :])
    apply_transmission(img, x0, y0, trans)
    ys, xs = np.nonzero(alpha > 0.05)
    box = [float(xs.min() + x0), float(ys.min() + y0), float(xs.max() + x0), float(ys.max() + y0)]
    return {"center": [round(cx, 2), round(cy, 2)], "box": [round(v, 1) for v in box],
            "diameter_mm": round(diam_mm, 3), "diameter_px": round(diam_mm / mmpp, 2), "mole_uuid": None}


def mole_colour(img, moles, mmpp, n=8):
    """Median optical density (BGR) and border width (px) of up to n labelled moles, or (None, None)."""
    ods, edges = [], []
    for m in moles[:n]:
        try:
            blob, x0, y0, skin, mole, skinY, peak, Y, edge = mole_extent(img, m["x"], m["y"], mmpp)
        except (SystemExit, ValueError):
            continue
        ods.append(np.log(np.maximum(skin, 1e-4) / np.maximum(mole, 1e-4)))
        edges.append(edge)
    if not ods:
        return None, None
    return np.maximum(np.median(np.array(ods), axis=0), 0.05).astype(np.float32), float(np.median(edges))


def apply_transmission(img, x0, y0, trans):
    """img[y0:, x0:] *= trans in linear light (clipped to the image)."""
    H, W = img.shape[:2]
    h, w = trans.shape[:2]
    cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(W, x0 + w), min(H, y0 + h)
    t = trans[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
    region = img[cy0:cy1, cx0:cx1]
    img[cy0:cy1, cx0:cx1] = to_srgb(to_lin(region) * t)


# ------------------------------------------------------------------ growth

def mole_extent(img, x, y, mmpp):
    """The dark blob around a labelled mole: (mask patch, x0, y0, skin colour, mole colour), linear RGB."""
    R = int(6.0 / mmpp)
    H, W = img.shape[:2]
    x, y = int(round(x)), int(round(y))
    x0, y0 = max(0, x - R), max(0, y - R)
    x1, y1 = min(W, int(x) + R + 1), min(H, int(y) + R + 1)
    patch = img[y0:y1, x0:x1]
    lin = to_lin(patch)
    Y = lin @ np.array([0.114, 0.587, 0.299], np.float32)  # BGR weights
    Y = cv2.GaussianBlur(Y, (0, 0), max(0.8, 0.08 / mmpp))
    # local skin level: a wide blur of the patch with dark pixels left out (median filter-like)
    ring = np.hypot(*np.mgrid[y0 - y:y1 - y, x0 - x:x1 - x]) > 3.5 / mmpp
    skinY = float(np.median(Y[ring])) if ring.any() else float(np.median(Y))
    dark = np.log(np.maximum(skinY, 1e-4) / np.maximum(Y, 1e-4))
    ly, lx = int(y) - y0, int(x) - x0
    # the darkest point near the label, and the blob at half of its darkness
    near = np.hypot(*np.mgrid[-ly:Y.shape[0] - ly, -lx:Y.shape[1] - lx]) < max(4.0, 1.0 / mmpp)
    peak = float(dark[near].max())
    thr = 0.35 * peak
    n, lab = cv2.connectedComponents((dark > thr).astype(np.uint8))
    cand = lab[near & (dark > thr)]
    if peak <= 0.03 or cand.size == 0:
        raise SystemExit("paint_change: no dark blob found around the mole at (%d, %d)" % (x, y))
    keep = np.bincount(cand).argmax()
    m = lab == keep
    core = cv2.erode(m.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    core = core if core.sum() >= 4 else m
    skin = np.median(lin[ring], axis=0) if ring.any() else np.median(lin.reshape(-1, 3), axis=0)
    mole = np.median(lin[core], axis=0)  # the mole's typical colour
    # width of the soft border: equivalent radii at 20 % and 70 % of the typical darkness
    typ = float(np.median(dark[core]))
    near_m = cv2.dilate(m.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    r_lo = math.sqrt(float((near_m & (dark > 0.2 * typ)).sum()) / math.pi)
    r_hi = math.sqrt(float((m & (dark > 0.7 * typ)).sum()) / math.pi)
    return m, x0, y0, skin, mole, skinY, peak, Y, max(0.0, r_lo - r_hi)


def paint_growth(rng, img, mask, moles, mmpp, grow_mm, uuid=None):
    H, W = mask.shape
    if uuid:
        cands = [m for m in moles if m["uuid"] == uuid]
        if not cands:
            raise SystemExit("paint_change: no mole %s in --moles" % uuid)
    else:
        marg = int(6.0 / mmpp)
        cands = [m for m in moles if marg <= m["x"] < W - marg and marg <= m["y"] < H - marg
                 and mask[int(m["y"]), int(m["x"])] > 127]
        if not cands:
            raise SystemExit("paint_change: no labelled mole inside the mask (--moles)")
    lab = cands[int(rng.integers(len(cands)))]
    blob, x0, y0, skin, mole, skinY, peak, Y, _ = mole_extent(img, lab["x"], lab["y"], mmpp)
    area0 = float(blob.sum())
    d0_px = 2.0 * math.sqrt(area0 / math.pi)
    s = (d0_px + grow_mm / mmpp) / d0_px
    # The mole as a transmission map over the skin (1 outside it, soft at its edge),
    # scaled about its centroid by s: the grown mole keeps its own colours, mottling and
    # soft border, and the skin's texture under the new rim stays (multiplicative).
    h, w = blob.shape
    patch = img[y0:y0 + h, x0:x0 + w]
    lin = to_lin(patch)
    t_now = np.minimum(lin / np.maximum(skin, 1e-4)[None, None, :], 1.0)
    edge = max(1.5, 0.3 / mmpp)
    region = cv2.dilate(blob.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (int(3 * edge) | 1,) * 2))
    wsoft = cv2.GaussianBlur(region.astype(np.float32), (0, 0), 0.8 * edge)[..., None]
    t_orig = 1.0 - (1.0 - t_now) * wsoft
    ys, xs = np.nonzero(blob)
    cx, cy = float(xs.mean()), float(ys.mean())
    M = np.array([[1.0 / s, 0.0, cx - cx / s], [0.0, 1.0 / s, cy - cy / s]])
    t_s = cv2.warpAffine(t_orig.astype(np.float32), M, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=(1.0, 1.0, 1.0))
    ratio = np.clip(t_s / np.maximum(t_orig, 1e-3), 0.05, 20.0)
    patch[:] = to_srgb(lin * ratio)
    grown = cv2.warpAffine(blob.astype(np.float32), M, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP) > 0.5
    gy, gx = np.nonzero(grown)
    d1_px = 2.0 * math.sqrt(grown.sum() / math.pi)
    box = [float(gx.min() + x0), float(gy.min() + y0), float(gx.max() + x0), float(gy.max() + y0)]
    return {"center": [round(cx + x0, 2), round(cy + y0, 2)], "box": [round(v, 1) for v in box],
            "diameter_mm": round(d1_px * mmpp, 3), "diameter_px": round(d1_px, 2),
            "previous_diameter_mm": round(d0_px * mmpp, 3), "mole_uuid": lab["uuid"],
            "label": [lab["x"], lab["y"]]}


def write_crop(path, before, after, rec, mmpp):
    x0, y0, x1, y1 = rec["box"]
    cx, cy = 0.5 * (x0 + x1), 0.5 * (y0 + y1)
    R = int(max(x1 - x0, y1 - y0, 6.0 / mmpp))
    H, W = before.shape[:2]
    a0, b0, a1, b1 = max(0, int(cx) - R), max(0, int(cy) - R), min(W, int(cx) + R), min(H, int(cy) + R)
    tiles = []
    for im in (before, after):
        c = cv2.resize(im[b0:b1, a0:a1], (400, int(400 * (b1 - b0) / max(1, a1 - a0))), interpolation=cv2.INTER_CUBIC)
        tiles.append(c)
    s = 400.0 / max(1, a1 - a0)
    box = tiles[1].copy()
    cv2.rectangle(box, (int((x0 - a0) * s), int((y0 - b0) * s)), (int((x1 - a0) * s), int((y1 - b0) * s)), (0, 255, 0), 1)
    cv2.imwrite(path, np.hstack([tiles[0], tiles[1], box]))


def main(argv=None):
    ap = argparse.ArgumentParser(description="paint a new mole or a mole's growth into a real photo")
    ap.add_argument("--photo", required=True)
    ap.add_argument("--mask", required=True, help="8-bit skin mask of the same size (255 = skin)")
    ap.add_argument("--kind", required=True, choices=["new_mole", "growth"])
    ap.add_argument("--out", required=True, help="output JPEG (quality 95)")
    ap.add_argument("--record", required=True, help="output JSON: what was painted where")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--mm-per-px", type=float, help="default: 400 mm across the photo's width")
    ap.add_argument("--moles", help="labelled moles, a list of {uuid, x, y}")
    ap.add_argument("--uuid", help="growth: this mole instead of a seeded choice")
    ap.add_argument("--diameter-mm", type=float, default=3.0, help="new_mole: its diameter")
    ap.add_argument("--grow-mm", type=float, default=1.5, help="growth: diameter increase")
    ap.add_argument("--crop", help="write a PNG crop: before, after, after with the box")
    a = ap.parse_args(argv)
    img = cv2.imread(a.photo, cv2.IMREAD_COLOR)
    if img is None:
        ap.error("cannot read %s" % a.photo)
    mask = cv2.imread(a.mask, cv2.IMREAD_GRAYSCALE)
    if mask is None or mask.shape != img.shape[:2]:
        ap.error("mask missing or not the photo's size: %s" % a.mask)
    mmpp = a.mm_per_px or 400.0 / img.shape[1]
    rng = np.random.default_rng(a.seed)
    moles = load_moles(a.moles)
    before = img.copy() if a.crop else None
    if a.kind == "new_mole":
        rec = paint_new_mole(rng, img, mask, moles, mmpp, a.diameter_mm)
    else:
        if not moles:
            ap.error("growth needs --moles")
        rec = paint_growth(rng, img, mask, moles, mmpp, a.grow_mm, a.uuid)
    rec = dict({"kind": a.kind, "photo": os.path.basename(a.photo)}, **rec)
    rec["mm_per_px"] = round(mmpp, 6)
    rec["seed"] = a.seed
    if not cv2.imwrite(a.out, img, [cv2.IMWRITE_JPEG_QUALITY, 95]):
        ap.error("cannot write %s" % a.out)
    with open(a.record, "w") as f:
        json.dump(rec, f, indent=1)
    if a.crop:
        write_crop(a.crop, before, img, rec, mmpp)
    print(json.dumps(rec))
    return 0


if __name__ == "__main__":
    sys.exit(main())
