#!/usr/bin/env python3
"""Seeded synthetic change-detection benchmark for lib/detect (bcd_detect_*).

A benchmark program that prints numbers; it is not a test. It needs numpy and cv2
(OpenCV is used only here, to render and JPEG-encode the synthetic photos; the library
never uses it) and drives the built shared library through ctypes exactly as a user
would: bcd_image_decode() on the JPEG bytes, bcd_detect_compare() per angle,
bcd_detect_combine() per session.

The generator (no real people, only procedural textures):
  * users with six angles (front, left, right, up, down, raised); each angle is a
    "world" image: a background (wall colour, gradient, a frame edge, soft texture) and
    a body region of a random skin tone with shading, multi-scale skin texture,
    freckles, moles, faint red patches, hair and veins;
  * two checks per user (previous, current). Every photo is a rendering of the world
    through a camera: a similarity pose, a phone resolution (1080x1440 up to the full
    3024x4032), exposure, gamma and white balance, sensor noise (white and chroma
    blotches) and JPEG. The previous photo is taken near the nominal pose and exposure;
    the current one adds the nuisances: exposure and gamma +-20 %, white balance
    +-8 %, translation +-3 % of the frame, rotation +-3 deg, scale +-4 %, noise, JPEG
    quality 70-95, an independent resolution;
  * half of the users have a true local change in 1 or 2 angles of the current check:
    a new dark spot, an enlarged spot, a new red spot, a local colour change (darker
    and browner, or paler) or a local texture change (a rough patch), on the skin,
    whose changed area is 0.5-5 % of the frame. The truth box is the bounding box of
    the changed pixels in the current photo.
--strength 1.5 multiplies every nuisance range by 1.5 (the generalization run); by
default both 1.0 and 1.5 run.

Printed: ROC AUC of change_probability (sessions) and the sensitivity at 5 % false
positives; the sensitivity and false positive rate of `changed` (p >= 0.5); per-angle
ROC AUC of local_change (all angles and per angle name), and detections per change
kind; localization (the fraction of detected changed angles, local_change >= 0.5,
whose strongest region has IoU >= 0.5 with the truth box; also for the best region);
alignment error against the known camera poses; quality flags; CPU time per pair
(decode and detection separately, full-size 3024x4032 pairs separately).

With --model FILE.pt (a libbcd built with libtorch, a model with a feature map, see
models/README.md), each photo is also preprocessed and embedded with its feature map
(bcd_embedder_embed_maps()), the two maps are compared cell by cell through the
alignment (bcd_detect_compare_maps(), as analyze does) and the ROC AUC of the largest
cell distance is printed beside local_change's, alone and per angle.

Usage:
  /usr/bin/python3 tests/bench/detect_bench.py --lib BUILD/lib/libbcd.so [--users 200]
      [--seed 1] [--strength 1.0 1.5] [--jobs 2] [--full-fraction 0.15] [--dump FILE]
      [--images DIR] [--only USER...] [--model FILE.pt]
  /usr/bin/python3 tests/bench/detect_bench.py --calibrate DUMP...
      fits the coefficients of bcd_detect_combine() (lib/detect/combine.c) on dumps
      (run it on a seed other than the one you report).
"""
import argparse
import ctypes as C
import json
import math
import multiprocessing as mp
import os
import sys
import time

import cv2
import numpy as np

ANGLES = ["front", "left", "right", "up", "down", "raised"]
NOMINAL_W, NOMINAL_H = 900, 1200          # world pixels seen by the nominal frame
WORLD_W, WORLD_H = 1100, 1467             # world with a margin for the camera pose
RESOLUTIONS = [(1080, 1440), (1200, 1600), (1512, 2016), (1536, 2048), (2268, 3024)]
FULL = (3024, 4032)
CHANGE_KINDS = ["new_dark", "enlarged", "new_red", "colour", "texture"]


# ---------------------------------------------------------------- world generation

def smooth_noise(rng, h, w, sigma):
    """Unit-variance Gaussian-filtered white noise, computed at reduced size for speed."""
    f = max(1.0, sigma / 3.0)
    sh, sw = max(4, int(h / f)), max(4, int(w / f))
    n = rng.standard_normal((sh, sw)).astype(np.float32)
    s = sigma / f
    n = cv2.GaussianBlur(n, (0, 0), s) if s > 0.3 else n
    n = cv2.resize(n, (w, h), interpolation=cv2.INTER_CUBIC) if (sh, sw) != (h, w) else n
    sd = float(n.std()) or 1.0
    return (n - n.mean()) / sd


def fractal(rng, h, w, sigmas, weights):
    out = np.zeros((h, w), np.float32)
    for s, wt in zip(sigmas, weights):
        out += wt * smooth_noise(rng, h, w, s)
    return out


def blob_patch(rng, cx, cy, area, irregular=0.15, soft=1.5, elong=None, shape=None):
    """Soft irregular blob of about `area` pixels centred at (cx, cy).

    Returns (x0, y0, patch) with patch in [0,1]; shape reuses (elong, rot, harmonics)."""
    if shape is None:
        e = elong if elong is not None else rng.uniform(1.0, 1.5)
        shape = (e, rng.uniform(0, math.pi),
                 [(k, rng.uniform(0, irregular) / k ** 0.5, rng.uniform(0, 2 * math.pi)) for k in range(2, 6)])
    e, rot, harm = shape
    r0 = math.sqrt(area / math.pi)
    for _ in range(2):  # second pass corrects the area of the harmonic shape
        R = int(r0 * math.sqrt(e) * 1.8 + 3 * soft + 3)
        x0, y0 = int(cx) - R, int(cy) - R
        yy, xx = np.mgrid[y0:y0 + 2 * R + 1, x0:x0 + 2 * R + 1].astype(np.float32)
        dx, dy = xx - cx, yy - cy
        c, s = math.cos(rot), math.sin(rot)
        u = (c * dx + s * dy) / math.sqrt(e)
        v = (-s * dx + c * dy) * math.sqrt(e)
        rr = np.sqrt(u * u + v * v)
        phi = np.arctan2(v, u)
        rad = np.full_like(rr, r0)
        for k, a, p in harm:
            rad = rad * (1.0 + a * np.cos(k * phi + p))
        t = np.clip((rad - rr) / soft + 0.5, 0.0, 1.0)
        m = t * t * (3 - 2 * t)
        got = float(m.sum())
        if got <= 0 or abs(area / got - 1) < 0.03:
            break
        r0 *= math.sqrt(area / got)
    return x0, y0, m, shape


def paste(canvas, x0, y0, patch, op):
    """Apply op(region, patch) to canvas[y0:, x0:] clipped to the canvas."""
    h, w = canvas.shape[:2]
    ph, pw = patch.shape[:2]
    cx0, cy0 = max(0, x0), max(0, y0)
    cx1, cy1 = min(w, x0 + pw), min(h, y0 + ph)
    if cx1 <= cx0 or cy1 <= cy0:
        return
    sub = patch[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
    canvas[cy0:cy1, cx0:cx1] = op(canvas[cy0:cy1, cx0:cx1], sub)


def darken(col):
    col = np.asarray(col, np.float32)
    return lambda region, m: region * (1.0 - m[..., None] * (1.0 - col))


SKIN_TONES = np.array([
    [238, 206, 180], [228, 185, 152], [212, 164, 128], [190, 140, 105],
    [160, 112, 80], [128, 86, 60], [96, 64, 46],
], np.float32) / 255.0

WALLS = np.array([
    [0.80, 0.80, 0.78], [0.70, 0.72, 0.76], [0.55, 0.62, 0.70], [0.78, 0.72, 0.62],
    [0.45, 0.48, 0.45], [0.62, 0.58, 0.55], [0.30, 0.34, 0.40], [0.85, 0.83, 0.80],
], np.float32)


def body_mask(rng, angle):
    """Soft body silhouette (world coordinates) for one angle."""
    h, w = WORLD_H, WORLD_W
    cx, cy = WORLD_W / 2, WORLD_H / 2
    m = np.zeros((h, w), np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)

    def ellipse(x, y, a, b, rot=0.0):
        c, s = math.cos(rot), math.sin(rot)
        u = (c * (xx - x) + s * (yy - y)) / a
        v = (-s * (xx - x) + c * (yy - y)) / b
        return (u * u + v * v <= 1.0).astype(np.float32)

    j = lambda s: rng.uniform(-s, s)
    if angle == "front":
        m = np.maximum(m, ellipse(cx + j(40), cy + 80 + j(40), 330 + j(40), 640 + j(60)))
        m = np.maximum(m, ellipse(cx + j(30), cy - 520, 150, 170))
    elif angle in ("left", "right"):
        sgn = -1 if angle == "left" else 1
        m = np.maximum(m, ellipse(cx + sgn * 60 + j(40), cy + 60, 260 + j(40), 660 + j(40)))
        m = np.maximum(m, ellipse(cx - sgn * 200 + j(30), cy + 40, 90 + j(20), 520 + j(40), sgn * 0.12))
    elif angle == "up":
        m = np.maximum(m, ellipse(cx + j(40), cy + 250 + j(40), 440 + j(40), 560 + j(40)))
        m = np.maximum(m, ellipse(cx + j(20), cy - 300, 140, 200))
    elif angle == "down":
        m = np.maximum(m, ellipse(cx - 170 + j(30), cy + j(40), 150 + j(20), 700, 0.05))
        m = np.maximum(m, ellipse(cx + 170 + j(30), cy + j(40), 150 + j(20), 700, -0.05))
    else:  # raised: arms up
        m = np.maximum(m, ellipse(cx + j(30), cy + 200 + j(30), 320 + j(30), 560 + j(30)))
        m = np.maximum(m, ellipse(cx - 300, cy - 400, 90, 420, -0.35))
        m = np.maximum(m, ellipse(cx + 300, cy - 400, 90, 420, 0.35))
    m = cv2.GaussianBlur(m, (0, 0), 2.5)
    return m


def make_world(rng, angle):
    """World image (float32 RGB in [0,1]), body mask and a list of existing moles."""
    h, w = WORLD_H, WORLD_W
    ys = np.linspace(-0.5, 0.5, h, dtype=np.float32)[:, None]
    xs = np.linspace(-0.5, 0.5, w, dtype=np.float32)[None, :]
    wall = WALLS[rng.integers(len(WALLS))] * rng.uniform(0.9, 1.1, 3).astype(np.float32)
    grad = 1.0 + 0.12 * ys * rng.uniform(-1, 1) + 0.1 * xs * rng.uniform(-1, 1)
    grad = grad * (1.0 + 0.03 * fractal(rng, h, w, [3, 20], [0.5, 1.0]))
    # a door or window frame edge somewhere in the background
    fx = int(rng.uniform(0.05, 0.95) * w)
    grad[:, fx:fx + int(rng.integers(20, 60))] *= 0.75
    bg = wall[None, None, :] * grad[..., None]

    body = body_mask(rng, angle)
    tone = SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.95, 1.05, 3).astype(np.float32)
    # shading: darker towards the silhouette (a blur of the mask, computed small), plus a
    # lighting gradient and multi-scale skin texture
    small = cv2.resize(body, (w // 8, h // 8), interpolation=cv2.INTER_AREA)
    dist = cv2.resize(cv2.GaussianBlur(small, (0, 0), 60 / 8), (w, h), interpolation=cv2.INTER_LINEAR)
    shade = (0.72 + 0.28 * np.clip(dist * 1.6, 0, 1)) * (1.0 + 0.08 * xs * rng.uniform(-1, 1))
    lum = shade * (1.0 + 0.04 * fractal(rng, h, w, [1.0, 3.0, 10.0, 40.0], [0.35, 0.45, 0.6, 0.8]))
    red = 0.015 * fractal(rng, h, w, [6.0, 30.0], [0.6, 1.0])
    # freckles, hair and veins darken the skin locally
    dk = np.zeros((h, w), np.float32)
    for (px, py) in rng.integers(0, [w, h], size=(int(rng.integers(30, 400)), 2)):
        cv2.circle(dk, (int(px), int(py)), int(rng.integers(1, 4)), float(rng.uniform(0.08, 0.22)), -1)
    for _ in range(int(rng.integers(0, 120))):
        x0, y0 = rng.uniform(0, w), rng.uniform(0, h)
        ang = rng.uniform(0, math.pi)
        ln = rng.uniform(8, 30)
        cv2.line(dk, (int(x0), int(y0)), (int(x0 + ln * math.cos(ang)), int(y0 + ln * math.sin(ang))),
                 float(rng.uniform(0.15, 0.35)), 1)
    dk = cv2.GaussianBlur(dk, (0, 0), 0.7)
    skin = np.empty((h, w, 3), np.float32)
    for c, (rk, dkc) in enumerate([(1.0, 0.8), (-0.5, 1.0), (0.0, 1.2)]):
        skin[..., c] = tone[c] * lum * (1.0 + rk * red) * (1.0 - dkc * dk)
    bm = body[..., None]
    img = bg * (1.0 - bm) + skin * bm
    # existing moles
    moles = []
    for _ in range(int(rng.integers(3, 14))):
        for _try in range(20):
            cx, cy = rng.uniform(0.1, 0.9) * w, rng.uniform(0.1, 0.9) * h
            if body[int(cy), int(cx)] > 0.9:
                break
        area = rng.uniform(15, 700)
        dark = rng.uniform(0.35, 0.75)
        x0, y0, m, _ = blob_patch(rng, cx, cy, area, irregular=0.15)
        paste(img, x0, y0, m, darken([dark, dark * 0.85, dark * 0.75]))
        moles.append((cx, cy, area, dark))
    np.clip(img, 0, 1, out=img)
    return img.astype(np.float32), body, moles


def place_in_body(rng, body, area):
    """A centre for a change of the given area: on the body (the centre and 8 points at
    0.8 of the radius), inside the nominal frame; the best of 80 tries."""
    r = math.sqrt(area / math.pi)
    mx0, my0 = (WORLD_W - NOMINAL_W) / 2 + r + 20, (WORLD_H - NOMINAL_H) / 2 + r + 20
    mx1, my1 = WORLD_W - mx0, WORLD_H - my0
    ring = [(0.0, 0.0)] + [(0.8 * r * math.cos(k * math.pi / 4), 0.8 * r * math.sin(k * math.pi / 4))
                           for k in range(8)]
    best = None
    for _ in range(80):
        cx, cy = rng.uniform(mx0, max(mx0 + 1, mx1)), rng.uniform(my0, max(my0 + 1, my1))
        v = min(body[min(WORLD_H - 1, max(0, int(cy + dy))), min(WORLD_W - 1, max(0, int(cx + dx)))]
                for dx, dy in ring)
        if best is None or v > best[0]:
            best = (v, cx, cy)
        if v > 0.95:
            break
    return best[1], best[2]


def on_body(body, x0, y0, m):
    """The patch m (placed at x0, y0) limited to the body: changes happen on skin."""
    h, w = body.shape
    out = np.zeros_like(m)
    cx0, cy0 = max(0, x0), max(0, y0)
    cx1, cy1 = min(w, x0 + m.shape[1]), min(h, y0 + m.shape[0])
    if cx1 > cx0 and cy1 > cy0:
        out[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0] = m[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0] * body[cy0:cy1, cx0:cx1]
    return out


def apply_change(rng, world, body, moles, kind):
    """Return (previous world, current world, changed mask, changed fraction of the frame)."""
    frame_area = NOMINAL_W * NOMINAL_H
    area = frame_area * math.exp(rng.uniform(math.log(0.005), math.log(0.05)))
    prev = world.copy()
    cur = world.copy()
    if kind == "enlarged":
        # an existing spot of 30-100 % of the added area grows by `area`
        a0 = area * rng.uniform(0.3, 1.0)
        cx, cy = place_in_body(rng, body, a0 + area)
        dark = rng.uniform(0.35, 0.7)
        op = darken([dark, dark * 0.85, dark * 0.75])
        x0, y0, m0, shape = blob_patch(rng, cx, cy, a0, irregular=rng.uniform(0.05, 0.2))
        m0 = on_body(body, x0, y0, m0)
        # growth: the same shape, larger, its centre moved up to a third of the growth
        r1, rr0 = math.sqrt((a0 + area) / math.pi), math.sqrt(a0 / math.pi)
        sx, sy = rng.uniform(-0.33, 0.33, 2) * (r1 - rr0)
        x1, y1, m1, _ = blob_patch(rng, cx + sx, cy + sy, a0 + area, shape=shape)
        m1 = on_body(body, x1, y1, m1)
        full = np.zeros(world.shape[:2], np.float32)
        paste(full, x0, y0, m0, np.maximum)
        paste(full, x1, y1, m1, np.maximum)
        paste(prev, x0, y0, m0, op)
        cur = cur * (1.0 - full[..., None] * (1.0 - np.array([dark, dark * 0.85, dark * 0.75], np.float32)))
    elif kind == "new_dark":
        cx, cy = place_in_body(rng, body, area)
        dark = rng.uniform(0.35, 0.7)
        x0, y0, m, _ = blob_patch(rng, cx, cy, area, irregular=rng.uniform(0.05, 0.25), soft=rng.uniform(1.5, 6))
        m = on_body(body, x0, y0, m)
        paste(cur, x0, y0, m, darken([dark, dark * rng.uniform(0.8, 0.9), dark * rng.uniform(0.65, 0.8)]))
    elif kind == "new_red":
        cx, cy = place_in_body(rng, body, area)
        k = rng.uniform(0.7, 0.85)
        x0, y0, m, _ = blob_patch(rng, cx, cy, area, irregular=rng.uniform(0.1, 0.3), soft=rng.uniform(3, 10))
        m = on_body(body, x0, y0, m)
        paste(cur, x0, y0, m, darken([rng.uniform(0.98, 1.06), k, k * rng.uniform(0.95, 1.05)]))
    elif kind == "colour":
        cx, cy = place_in_body(rng, body, area)
        if rng.uniform() < 0.6:   # hyperpigmentation: browner and darker
            col = np.array([0.82, 0.74, 0.66], np.float32) * rng.uniform(0.85, 1.0)
        else:                     # depigmentation: paler
            col = np.array([1.18, 1.22, 1.28], np.float32) * rng.uniform(0.95, 1.05)
        x0, y0, m, _ = blob_patch(rng, cx, cy, area, irregular=rng.uniform(0.1, 0.3), soft=rng.uniform(3, 8))
        m = on_body(body, x0, y0, m)
        paste(cur, x0, y0, m, darken(col))
    else:  # texture: a rough, scaly patch with a slight colour shift
        cx, cy = place_in_body(rng, body, area)
        x0, y0, m, _ = blob_patch(rng, cx, cy, area, irregular=rng.uniform(0.1, 0.3), soft=rng.uniform(2, 5))
        m = on_body(body, x0, y0, m)
        tex = fractal(rng, m.shape[0], m.shape[1], [1.2, 2.5], [0.6, 1.0])
        amp = rng.uniform(0.12, 0.22)
        mod = ((1.0 + amp * tex - 0.06)[..., None] * np.array([1.0, 0.96, 0.94], np.float32))
        paste(cur, x0, y0, np.concatenate([m[..., None], mod], axis=2),
              lambda region, pm: region * (1.0 - pm[..., :1] + pm[..., :1] * pm[..., 1:]))
    np.clip(cur, 0, 1, out=cur)
    np.clip(prev, 0, 1, out=prev)
    changed = (np.abs(cur - prev).max(axis=2) > 0.02).astype(np.uint8)
    # the area that changed: a spot drawn over the edge of the body is cut by it
    return prev, cur, changed, float(changed.sum()) / frame_area


# ---------------------------------------------------------------- camera

def camera(rng, strength, nominal):
    """Pose and photometry of one photo. nominal: small jitter only (the previous photo)."""
    s = 0.25 if nominal else strength
    return {
        "tx": rng.uniform(-0.03, 0.03) * s,
        "ty": rng.uniform(-0.03, 0.03) * s,
        "rot": rng.uniform(-3.0, 3.0) * s,
        "zoom": 1.0 + rng.uniform(-0.04, 0.04) * s,
        "exposure": 1.0 + rng.uniform(-0.2, 0.2) * s,
        "gamma": 1.0 + rng.uniform(-0.2, 0.2) * s,
        "wb": [1.0 + rng.uniform(-0.08, 0.08) * s, 1.0, 1.0 + rng.uniform(-0.08, 0.08) * s],
        "noise": rng.uniform(0.5, 3.0) * (strength if not nominal else 1.0),
        "chroma_noise": rng.uniform(0.0, 2.0) * (strength if not nominal else 1.0),
        "quality": int(round(95 - rng.uniform(0, 25) * (strength if not nominal else 0.4))),
    }


def world_to_image_matrix(cam, out_w, out_h):
    """2x3 matrix mapping image pixels to world pixels."""
    sw = NOMINAL_H / out_h / cam["zoom"]
    th = math.radians(cam["rot"])
    c, s = math.cos(th) * sw, math.sin(th) * sw
    cxo, cyo = (out_w - 1) / 2, (out_h - 1) / 2
    cxw = (WORLD_W - 1) / 2 + cam["tx"] * NOMINAL_W
    cyw = (WORLD_H - 1) / 2 + cam["ty"] * NOMINAL_H
    return np.array([[c, -s, cxw - c * cxo + s * cyo], [s, c, cyw - s * cxo - c * cyo]], np.float64)


_NOISE_BANK = {}


def noise_bank(seed):
    """A 2048x2048x3 bank of unit Gaussian noise (float32), cut at random offsets."""
    if seed not in _NOISE_BANK:
        _NOISE_BANK[seed] = np.random.default_rng([seed, 12345]).standard_normal((2048, 2048, 3),
                                                                                  dtype=np.float32)
    return _NOISE_BANK[seed]


def to_u8(world):
    return (np.clip(world, 0, 1) * 255.0 + 0.5).astype(np.uint8)


def render(rng, world_u8, cam, size, changed=None, bank=None):
    """JPEG bytes of one photo of the world (uint8 RGB) and the truth box of `changed`."""
    out_w, out_h = size
    M = world_to_image_matrix(cam, out_w, out_h)
    scale = NOMINAL_H / out_h / cam["zoom"]
    src = world_u8
    if scale > 1.2:
        src = cv2.GaussianBlur(world_u8, (0, 0), 0.45 * scale)
    img = cv2.warpAffine(src, M, (out_w, out_h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                         borderMode=cv2.BORDER_REFLECT)
    box = None
    if changed is not None:
        cm = cv2.warpAffine(changed, M, (out_w, out_h), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
                            borderValue=0)
        ys, xs = np.nonzero(cm)
        if len(xs):
            box = [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]
    # exposure, white balance and gamma as one lookup table per channel
    v = np.arange(256, dtype=np.float64) / 255.0
    lut = np.stack([np.clip(v * cam["exposure"] * cam["wb"][c], 0, 1) ** cam["gamma"] * 255.0
                    for c in range(3)], axis=1)
    img = cv2.LUT(img, np.clip(lut + 0.5, 0, 255).astype(np.uint8).reshape(256, 1, 3))
    # sensor noise: white (from a bank, at a random offset, tiled) plus chroma blotches
    imgf = img.astype(np.float32)
    if bank is not None:
        bh, bw = bank.shape[:2]
        for ty in range(0, out_h, bh):
            for tx in range(0, out_w, bw):
                th, tw = min(bh, out_h - ty), min(bw, out_w - tx)
                oy, ox = int(rng.integers(0, bh - th + 1)), int(rng.integers(0, bw - tw + 1))
                reg = imgf[ty:ty + th, tx:tx + tw]
                cv2.scaleAdd(bank[oy:oy + th, ox:ox + tw], cam["noise"], reg, reg)
    if cam["chroma_noise"] > 0:
        sh, sw = out_h // 4, out_w // 4
        cn = rng.standard_normal((sh, sw, 3), dtype=np.float32) * cam["chroma_noise"] * 2.0
        cn = cv2.resize(cv2.GaussianBlur(cn, (0, 0), 1.0), (out_w, out_h), interpolation=cv2.INTER_LINEAR)
        imgf += cn
    img = np.clip(imgf + 0.5, 0, 255).astype(np.uint8)
    ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, int(np.clip(cam["quality"], 30, 100))])
    assert ok
    return jpg.tobytes(), box


# ---------------------------------------------------------------- library binding

class Image(C.Structure):
    _fields_ = [("width", C.c_uint32), ("height", C.c_uint32), ("channels", C.c_uint32),
                ("data", C.POINTER(C.c_uint8))]


class Region(C.Structure):
    _fields_ = [("x", C.c_uint32), ("y", C.c_uint32), ("width", C.c_uint32), ("height", C.c_uint32),
                ("score", C.c_double)]


class Lib:
    def __init__(self, path):
        L = C.CDLL(path)
        L.bcd_ctx_new.argtypes = [C.POINTER(C.c_void_p)]
        L.bcd_image_decode.argtypes = [C.POINTER(C.POINTER(Image)), C.c_void_p, C.c_char_p, C.c_size_t]
        L.bcd_image_free.argtypes = [C.POINTER(Image)]
        L.bcd_detect_compare.argtypes = [C.POINTER(C.c_void_p), C.c_void_p, C.POINTER(Image),
                                         C.POINTER(Image), C.c_void_p]
        L.bcd_detect_result_free.argtypes = [C.c_void_p]
        L.bcd_detect_result_json.argtypes = [C.POINTER(C.c_void_p), C.c_void_p]
        L.bcd_detect_result_value.argtypes = [C.c_void_p, C.c_int]
        L.bcd_detect_result_value.restype = C.c_double
        L.bcd_detect_result_flags.argtypes = [C.c_void_p]
        L.bcd_detect_result_flags.restype = C.c_uint
        L.bcd_detect_result_regions.argtypes = [C.c_void_p, C.POINTER(C.c_size_t)]
        L.bcd_detect_result_regions.restype = C.POINTER(Region)
        L.bcd_detect_combine.argtypes = [C.POINTER(C.c_double), C.POINTER(C.c_int), C.POINTER(C.c_void_p),
                                         C.c_size_t]
        L.bcd_detect_result_matrix.argtypes = [C.c_void_p, C.POINTER(C.c_double)]
        L.bcd_detect_write_heatmap.argtypes = [C.c_void_p, C.c_void_p, C.POINTER(Image), C.c_char_p]
        L.bcd_free.argtypes = [C.c_void_p]
        L.bcd_image_preprocess.argtypes = [C.c_void_p, C.c_size_t, C.POINTER(Image)]
        L.bcd_embedder_open.argtypes = [C.POINTER(C.c_void_p), C.c_void_p, C.c_char_p]
        L.bcd_embedder_dim.argtypes = [C.c_void_p]
        L.bcd_embedder_dim.restype = C.c_size_t
        L.bcd_embedder_map_shape.argtypes = [C.c_void_p] + [C.POINTER(C.c_size_t)] * 3
        L.bcd_embedder_embed_maps.argtypes = [C.c_void_p, C.c_void_p, C.c_void_p, C.c_void_p, C.c_size_t]
        L.bcd_detect_compare_maps.argtypes = [C.c_void_p, C.c_void_p, C.c_void_p, C.c_size_t, C.c_size_t,
                                              C.c_size_t, C.c_void_p]
        L.bcd_detect_compare_maps.restype = C.c_size_t
        self.L = L
        self.ctx = C.c_void_p()
        assert L.bcd_ctx_new(C.byref(self.ctx)) == 0
        self.emb = None

    def open_model(self, path):
        self.emb = C.c_void_p()
        st = self.L.bcd_embedder_open(C.byref(self.emb), self.ctx, path.encode())
        if st != 0:
            raise SystemExit("cannot open the model %s: status %d" % (path, st))
        c, h, w = C.c_size_t(), C.c_size_t(), C.c_size_t()
        if not self.L.bcd_embedder_map_shape(self.emb, C.byref(c), C.byref(h), C.byref(w)):
            raise SystemExit("the model %s has no feature map (models/README.md)" % path)
        self.map_shape = (c.value, h.value, w.value)
        self.dim = self.L.bcd_embedder_dim(self.emb)

    def feature_change(self, cur, prev, matrix):
        """Largest cell distance of the two photos' feature maps through the alignment
        (previous -> current pixels), as analyze computes it; NaN without a matrix."""
        if not matrix:
            return float("nan")
        c, h, w = self.map_shape
        tensors = (C.c_float * (2 * 3 * 224 * 224))()
        for k, im in enumerate((cur, prev)):
            assert self.L.bcd_image_preprocess(C.byref(tensors, 4 * k * 3 * 224 * 224), 3 * 224 * 224, im) == 0
        maps = (C.c_float * (2 * c * h * w))()
        emb = (C.c_float * (2 * self.dim))()
        assert self.L.bcd_embedder_embed_maps(self.emb, emb, maps, tensors, 2) == 0

        def cells_to_pixels(im):  # cell centres -> photo pixel centres (the centre square)
            W, H = im.contents.width, im.contents.height
            side = min(W, H)
            return np.array([[side / w, 0, (W - side) // 2 + 0.5 * side / w - 0.5],
                             [0, side / h, (H - side) // 2 + 0.5 * side / h - 0.5], [0, 0, 1]])
        M = np.vstack([np.array(matrix).reshape(2, 3), [0, 0, 1]])
        m = np.linalg.inv(cells_to_pixels(prev)) @ np.linalg.inv(M) @ cells_to_pixels(cur)
        mm = (C.c_double * 6)(*m[:2].ravel())
        dist = (C.c_float * (h * w))()
        self.L.bcd_detect_compare_maps(dist, maps, C.byref(maps, 4 * c * h * w), c, h, w, mm)
        d = np.array(dist[:], float)
        return float(np.nanmax(d)) if np.isfinite(d).any() else float("nan")

    def decode(self, data):
        out = C.POINTER(Image)()
        st = self.L.bcd_image_decode(C.byref(out), self.ctx, data, len(data))
        if st != 0:
            raise RuntimeError("decode failed: %d" % st)
        return out

    def compare(self, cur, prev):
        r = C.c_void_p()
        st = self.L.bcd_detect_compare(C.byref(r), self.ctx, cur, prev, None)
        if st != 0:
            raise RuntimeError("compare failed: %d" % st)
        return r

    def info(self, r):
        v = self.L.bcd_detect_result_value
        n = C.c_size_t()
        regs = self.L.bcd_detect_result_regions(r, C.byref(n))
        m = (C.c_double * 6)()
        mat = list(m) if self.L.bcd_detect_result_matrix(r, m) == 0 else None
        return {
            "matrix": mat, "noise": v(r, 14),
            "local_change": v(r, 0), "evidence": v(r, 13), "flags": self.L.bcd_detect_result_flags(r),
            "align_score": v(r, 4), "overlap": v(r, 5), "dx": v(r, 6), "dy": v(r, 7), "rot": v(r, 8),
            "scale": v(r, 9), "blur": v(r, 1), "clip": v(r, 2), "subject": v(r, 3),
            "regions": [[regs[i].x, regs[i].y, regs[i].width, regs[i].height, regs[i].score]
                        for i in range(n.value)],
        }

    def combine(self, results):
        arr = (C.c_void_p * len(results))(*[r.value if r else None for r in results])
        p = C.c_double()
        ch = C.c_int()
        st = self.L.bcd_detect_combine(C.byref(p), C.byref(ch), arr, len(results))
        return p.value if st == 0 else float("nan")


# ---------------------------------------------------------------- one user


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

_LIB = {}


def run_user(args):
    uid, seed, strength, full_fraction, libpath, dump_dir, model = args
    rng = np.random.default_rng([seed, uid])
    if model:  # one model per process
        if libpath not in _LIB:
            _LIB[libpath] = Lib(libpath)
            _LIB[libpath].open_model(model)
        lib = _LIB[libpath]
    else:
        lib = Lib(libpath)
    changed_session = bool(rng.uniform() < 0.5)
    changed_angles = set()
    if changed_session:
        k = 1 if rng.uniform() < 0.65 else 2
        changed_angles = set(rng.choice(len(ANGLES), size=k, replace=False).tolist())
    out = {"user": uid, "changed": changed_session, "angles": []}
    results = []
    for ai, angle in enumerate(ANGLES):
        world, body, moles = make_world(rng, angle)
        truth = None
        kind = None
        if ai in changed_angles:
            kind = CHANGE_KINDS[int(rng.integers(len(CHANGE_KINDS)))]
            wprev, wcur, changed, frac = apply_change(rng, world, body, moles, kind)
        else:
            wprev, wcur, changed, frac = world, world, None, 0.0
        cam_p = camera(rng, strength, True)
        cam_c = camera(rng, strength, False)
        full = rng.uniform() < full_fraction
        size_p = FULL if full else RESOLUTIONS[int(rng.integers(len(RESOLUTIONS)))]
        size_c = FULL if full else RESOLUTIONS[int(rng.integers(len(RESOLUTIONS)))]
        bank = noise_bank(seed)
        jp, _ = render(rng, to_u8(wprev), cam_p, size_p, bank=bank)
        jc, truth = render(rng, to_u8(wcur), cam_c, size_c, changed, bank=bank)
        # CPU time of this process: the calls are single-threaded, and wall time on a
        # shared machine measures the neighbours
        t0 = time.process_time()
        ic = lib.decode(jc)
        ip = lib.decode(jp)
        t1 = time.process_time()
        r = lib.compare(ic, ip)
        t2 = time.process_time()
        info = lib.info(r)
        if model:
            info["feature_max"] = lib.feature_change(ic, ip, info["matrix"] if not info["flags"] & 8 else None)
        # alignment error: the library's previous->current map against the truth, at the
        # previous frame's corners and centre, in % of the current photo's longer side
        align_err = None
        if info["matrix"]:
            Mp = np.vstack([world_to_image_matrix(cam_p, *size_p), [0, 0, 1]])
            Mc = np.vstack([world_to_image_matrix(cam_c, *size_c), [0, 0, 1]])
            T = np.linalg.inv(Mc) @ Mp
            W, H = size_p
            pts = np.array([[0.25 * W, 0.25 * H, 1], [0.75 * W, 0.25 * H, 1], [0.25 * W, 0.75 * H, 1],
                            [0.75 * W, 0.75 * H, 1], [0.5 * W, 0.5 * H, 1]]).T
            got = np.array(info["matrix"]).reshape(2, 3) @ pts
            want = (T @ pts)[:2]
            align_err = float(np.abs(got - want).max() / max(size_c) * 100)
        if dump_dir:
            base = os.path.join(dump_dir, "u%03d_%s" % (uid, angle))
            with open(base + "_prev.jpg", "wb") as f:
                f.write(jp)
            with open(base + "_cur.jpg", "wb") as f:
                f.write(jc)
            lib.L.bcd_detect_write_heatmap(lib.ctx, r, ic, (base + "_heat.png").encode())
        lib.L.bcd_image_free(ic)
        lib.L.bcd_image_free(ip)
        results.append(r)
        out["angles"].append({
            "angle": angle, "changed": ai in changed_angles, "align_err_pct": align_err, "kind": kind, "area": frac, "truth": truth,
            "full": full, "decode_s": t1 - t0, "detect_s": t2 - t1,
            "cam": {k: cam_c[k] for k in ("tx", "ty", "rot", "zoom", "exposure", "gamma", "quality")},
            **info,
        })
    out["probability"] = lib.combine(results)
    for r in results:
        lib.L.bcd_detect_result_free(r)
    return out


# ---------------------------------------------------------------- metrics

def roc_auc(scores, labels):
    s = np.asarray(scores, float)
    y = np.asarray(labels, bool)
    s = np.where(np.isfinite(s), s, -1.0)
    pos, neg = s[y], s[~y]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    allv = np.concatenate([pos, neg])[order]
    ranks = np.empty(len(allv))
    i = 0
    while i < len(allv):  # average ranks over ties
        j = i
        while j + 1 < len(allv) and allv[j + 1] == allv[i]:
            j += 1
        ranks[i:j + 1] = (i + j) / 2.0 + 1
        i = j + 1
    r = np.empty(len(allv))
    r[order] = ranks
    rp = r[:len(pos)].sum()
    return (rp - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))


def sens_at_fpr(scores, labels, fpr=0.05):
    s = np.asarray(scores, float)
    y = np.asarray(labels, bool)
    s = np.where(np.isfinite(s), s, -1.0)
    neg = np.sort(s[~y])[::-1]
    k = int(math.floor(fpr * len(neg)))  # false positives allowed
    thr = neg[k] if k < len(neg) else -np.inf  # strictly above the (k+1)-th highest negative
    return float(np.mean(s[y] > thr)), float(thr)


def iou(a, b):
    ax0, ay0, aw, ah = a[:4]
    bx0, by0, bw, bh = b[:4]
    ix = max(0, min(ax0 + aw, bx0 + bw) - max(ax0, bx0))
    iy = max(0, min(ay0 + ah, by0 + bh) - max(ay0, by0))
    inter = ix * iy
    u = aw * ah + bw * bh - inter
    return inter / u if u > 0 else 0.0


def report(users, title):
    print("== %s: %d users, %d pairs" % (title, len(users), 6 * len(users)))
    probs = [u["probability"] for u in users]
    labels = [u["changed"] for u in users]
    auc = roc_auc(probs, labels)
    sens, thr = sens_at_fpr(probs, labels)
    pred = [p >= 0.5 for p in probs]
    tp = sum(1 for p, l in zip(pred, labels) if p and l)
    fp = sum(1 for p, l in zip(pred, labels) if p and not l)
    npos = sum(labels)
    nneg = len(labels) - npos
    print("session change_probability: ROC AUC %.4f, sensitivity at 5%% FPR %.3f (threshold %.3f)" % (auc, sens, thr))
    print("  at changed = p >= 0.5: sensitivity %.3f, false positive rate %.3f" %
          (tp / max(1, npos), fp / max(1, nneg)))
    angles = [a for u in users for a in u["angles"]]
    lc = [a["local_change"] for a in angles]
    lab = [a["changed"] for a in angles]
    print("angle local_change: ROC AUC %.4f over %d pairs (%d changed); sensitivity at 5%% FPR %.3f" %
          (roc_auc(lc, lab), len(angles), sum(lab), sens_at_fpr(lc, lab)[0]))
    per = []
    for name in ANGLES:
        sub = [a for a in angles if a["angle"] == name]
        per.append("%s %.3f" % (name, roc_auc([a["local_change"] for a in sub], [a["changed"] for a in sub])))
    print("  per angle AUC: " + ", ".join(per))
    if angles and "feature_max" in angles[0]:
        fm = [a["feature_max"] for a in angles]
        per = ["%s %.3f" % (name, roc_auc([a["feature_max"] for a in angles if a["angle"] == name],
                                          [a["changed"] for a in angles if a["angle"] == name])) for name in ANGLES]
        print("angle feature_change (largest cell distance of the model's feature maps): ROC AUC %.4f; "
              "sensitivity at 5%% FPR %.3f" % (roc_auc(fm, lab), sens_at_fpr(fm, lab)[0]))
        print("  per angle AUC: " + ", ".join(per))
    kinds = []
    neg_lc = sorted([a["local_change"] if math.isfinite(a["local_change"]) else -1 for a in angles
                     if not a["changed"]], reverse=True)
    thr_a = neg_lc[int(0.05 * len(neg_lc))] if neg_lc else 0.5
    for k in CHANGE_KINDS:
        sub = [a for a in angles if a["kind"] == k]
        if sub:
            kinds.append("%s %d/%d" % (k, sum(1 for a in sub if a["local_change"] > thr_a), len(sub)))
    print("  detected at 5% angle FPR by kind: " + ", ".join(kinds))
    # localization on detected changed angles (local_change >= 0.5)
    det = [a for a in angles if a["changed"] and a["truth"] and a["local_change"] >= 0.5 and a["regions"]]
    top = [iou(a["regions"][0], a["truth"]) for a in det]
    best = [max(iou(r, a["truth"]) for r in a["regions"]) for a in det]
    if det:
        print("localization: %d detected changes; top region IoU >= 0.5: %.3f (median IoU %.2f); "
              "best region IoU >= 0.5: %.3f" % (len(det), np.mean(np.array(top) >= 0.5), np.median(top),
                                               np.mean(np.array(best) >= 0.5)))
    errs = np.array([a["align_err_pct"] for a in angles if a.get("align_err_pct") is not None
                     and not a["flags"] & 8])
    if len(errs):
        print("alignment error of aligned pairs (%% of the longer side, at 5 points): median %.3f, 95th pct %.3f, "
              "max %.3f; > 0.5 %%: %d" % (np.median(errs), np.percentile(errs, 95), errs.max(), int((errs > 0.5).sum())))
    misal = sum(1 for a in angles if a["flags"] & 8)
    flagged = sum(1 for a in angles if a["flags"] & 0x77)
    print("quality: %d misaligned pairs, %d pairs with a quality flag" % (misal, flagged))
    nfull = [a for a in angles if a["full"]]
    rest = [a for a in angles if not a["full"]]
    print("CPU time per pair: detect %.1f ms mean (%.1f ms for %d full-size 3024x4032 pairs, %.1f ms for "
          "smaller), decode %.1f ms per pair" % (
              1000 * np.mean([a["detect_s"] for a in angles]),
              1000 * np.mean([a["detect_s"] for a in nfull]) if nfull else float("nan"), len(nfull),
              1000 * np.mean([a["detect_s"] for a in rest]) if rest else float("nan"),
              1000 * np.mean([a["decode_s"] for a in angles])))
    return {"auc": auc, "sens": sens}


def session_features(u):
    """(m1, m2) of bcd_detect_combine() from a dumped user (see lib/detect/combine.c)."""
    zs = []
    for a in u["angles"]:
        lc = a["local_change"]
        if (a["flags"] & 8) or not math.isfinite(lc):
            continue
        lc = min(max(lc, 1e-12), 1 - 1e-12)
        z = max(-12.0, min(12.0, math.log(lc / (1 - lc))))
        if a["flags"]:
            z *= 0.5
        zs.append(z)
    zs.sort(reverse=True)
    if not zs:
        return None
    return zs[0], zs[1] if len(zs) > 1 else zs[0]


def calibrate(paths, l2=1.0):
    """L2-regularized logistic regression of the session label on (m1, m2), and on m1
    alone (B2 = 0: the choice when the second angle adds nothing)."""
    X, y = [], []
    for p in paths:
        for line in open(p):
            u = json.loads(line)
            f = session_features(u)
            if f:
                X.append([1.0, f[0], f[1]])
                y.append(1.0 if u["changed"] else 0.0)
    X, y = np.array(X), np.array(y)
    for cols in ([0, 1, 2], [0, 1]):
        Xc = X[:, cols]
        w = np.zeros(len(cols))
        for _ in range(100):  # Newton steps
            p = 1 / (1 + np.exp(-Xc @ w))
            g = Xc.T @ (p - y) + l2 * np.r_[0, w[1:]]
            H = (Xc * (p * (1 - p))[:, None]).T @ Xc + l2 * np.diag([1e-6] + [1] * (len(cols) - 1))
            step = np.linalg.solve(H, g)
            w -= step
            if np.abs(step).max() < 1e-9:
                break
        p = 1 / (1 + np.exp(-Xc @ w))
        full = np.zeros(3)
        full[cols] = w
        print("calibration on %d sessions: B0 %.4f B1 %.4f B2 %.4f; at p >= 0.5: sensitivity %.3f, FPR %.3f" % (
            len(y), full[0], full[1], full[2], np.mean(p[y == 1] >= 0.5), np.mean(p[y == 0] >= 0.5)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lib", default=os.path.join(os.path.dirname(__file__), "..", "..", "build", "lib",
                                                  "libbcd.so"))
    ap.add_argument("--users", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--strength", type=float, nargs="+", default=[1.0, 1.5])
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--full-fraction", type=float, default=0.15)
    ap.add_argument("--dump", help="write per-user results as JSON lines to this file")
    ap.add_argument("--images", help="write the photos and heatmaps into this folder")
    ap.add_argument("--only", type=int, nargs="+", help="run only these user numbers")
    ap.add_argument("--model", help="also compare the feature maps of this TorchScript model (see the top)")
    ap.add_argument("--calibrate", nargs="+", metavar="DUMP",
                    help="fit the coefficients of bcd_detect_combine() on dumped runs and exit")
    a = ap.parse_args()
    if a.calibrate:
        calibrate(a.calibrate)
        return
    lib = os.path.abspath(a.lib)
    if a.images:
        os.makedirs(a.images, exist_ok=True)
    for strength in a.strength:
        jobs = [(u, a.seed, strength, a.full_fraction, lib, a.images, a.model) for u in (a.only or range(a.users))]
        t0 = time.time()
        if a.jobs > 1:
            with mp.get_context("fork").Pool(a.jobs) as pool:
                users = []
                for u in pool.imap(run_user, jobs, chunksize=1):
                    users.append(u)
                    progress("users (x%g)" % strength, len(users), len(jobs))
        else:
            users = []
            for j in jobs:
                users.append(run_user(j))
                progress("users (x%g)" % strength, len(users), len(jobs))
        progress("")
        if a.dump:
            with open(a.dump + ("" if strength == 1.0 else ".x%g" % strength), "w") as f:
                for u in users:
                    f.write(json.dumps(u) + "\n")
        report(users, "nuisance strength x%g (seed %d)" % (strength, a.seed))
        print("  (%.0f s wall)" % (time.time() - t0))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
