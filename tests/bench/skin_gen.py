#!/usr/bin/python3
"""Seeded generator of realistic follow-up photo pairs of skin (procedural, no real people).

Each pair is one body part (back, chest, belly, arm or leg) photographed at a previous
check and at a follow-up. A "world" of skin is rendered in millimetre coordinates on the
skin surface: a skin tone (Fitzpatrick I-VI, mostly I-IV), multi-scale texture, pores,
redness blotches, faint veins, many soft freckles, 3-15 moles (round to oval, slightly
irregular, brown to dark brown, some with a darker centre or two tones) and thin hairs.
Each photo is that world seen through a camera: a plane-to-image homography (look-at
camera with tilt, roll, distance, a phone's focal length and resolution), a smooth
non-rigid displacement of the skin (current photo only), body shading from a height
field lit from one direction (the light moves between checks), optional window-blind
shadow bands (in both photos or one, moved), clothing (straps, waistbands, sleeves) that
moves a little, a background (wall, curtain, blinds, door, furniture), exposure, white
balance, tone curve, blur, sharpening, sensor noise and JPEG.

Between the checks some pairs (about 40 %) have 1-2 true changes: new_mole, growth,
darkening, second_colour, asymmetric_growth or new_papule. Every mole and freckle
(>= 1 mm) is pushed through the same transforms as the rendering, so truth.json holds
its exact position in each photo. Pixel coordinates: x right, y down, the centre of the
top-left pixel is (0, 0).

Usage:
  /usr/bin/python3 tests/bench/skin_gen.py --out DIR --pairs N --seed S
      [--strength 1.0] [--long-side 2000] [--first 0] [--jobs 1] [--sheet FILE.png]
writes DIR/pair-NNNN/{prev.jpg,cur.jpg,truth.json}. --strength multiplies the nuisance
ranges (1.5 = harder); --long-side is the nominal long side of the photos (each photo
draws its own within +-20 %). The same (seed, index) gives the same pair, byte for byte.

truth.json: seed, index, strength, long_side, part, fitzpatrick; "prev"/"cur": file,
width, height, mm_per_px (at the image centre) and the nuisances drawn; "moles": every
mole, new lesion and freckle >= 1 mm seen in either photo: id, kind (mole, papule,
freckle), diameter_mm (at the previous check; cur_diameter_mm when it changed),
prev_center/cur_center ([x, y] or null when outside the frame or under clothing),
prev_diameter_px/cur_diameter_px, visible_in_both; "changes": kind, mole_id (null for a
new lesion, whose id is new_id), cur_center (the changed lesion's centroid), cur_box (the
bounding box of the lesion before and after, in current pixels), size_mm (the diameter
after the change), size_bin; "changed".

Cost: about 2-3 s of one core per pair at --long-side 2000 (the world is rendered a
little finer than the finer photo); about 8 s and 1.1 GB of memory at 3500.
Python API: generate_pair(seed, index, strength, long_side) -> (prev_jpeg_bytes,
cur_jpeg_bytes, truth dict); write_pair(out_dir, ...); generate(out, pairs, ...).
Needs numpy and cv2 only.
"""
import argparse
import json
import math
import multiprocessing as mp
import os
import sys
import time

import cv2
import numpy as np

GAMMA = 2.2
CHANGE_KINDS = ["new_mole", "growth", "darkening", "second_colour", "asymmetric_growth", "new_papule"]
SIZE_BINS = [(2.0, "<=2mm"), (4.0, "2-4mm"), (8.0, "4-8mm"), (1e9, ">8mm")]

# sRGB skin tones under neutral light, Fitzpatrick I..VI, and how often each is drawn.
SKIN_TONES = np.array([[240, 210, 192], [228, 190, 162], [208, 163, 128],
                       [174, 125, 90], [128, 87, 61], [84, 57, 43]], np.float32)
TONE_P = np.array([0.18, 0.30, 0.28, 0.14, 0.06, 0.04])

# Optical densities per channel (R, G, B): skin pigment absorbs blue most, haemoglobin green.
OD_MOLE = np.array([0.80, 1.22, 1.55], np.float32)
OD_FRECKLE = np.array([0.42, 0.78, 1.10], np.float32)
OD_TAN = np.array([0.45, 0.75, 1.05], np.float32)
OD_HAEM = np.array([0.06, 0.85, 0.62], np.float32)
OD_VEIN = np.array([0.30, 0.12, -0.02], np.float32)
OD_SECOND = {"dark": (np.array([1.05, 1.35, 1.55], np.float32), (1.9, 2.5)),
             "bluegrey": (np.array([1.55, 1.10, 0.68], np.float32), (0.8, 1.1)),
             "reddish": (np.array([0.25, 1.15, 0.95], np.float32), (0.9, 1.3))}

CLOTH_COLOURS = np.array([[165, 28, 35], [28, 28, 30], [236, 236, 230], [34, 44, 82], [205, 185, 155],
                          [118, 118, 124], [58, 92, 62], [200, 120, 150], [90, 60, 45]], np.float32)
WALL_COLOURS = np.array([[232, 230, 222], [216, 203, 182], [200, 200, 198], [188, 200, 212],
                         [200, 210, 190], [236, 232, 226], [150, 140, 130], [70, 72, 78]], np.float32)

PARTS = {  # span of the previous photo's long side in mm, and how often the part is drawn
    "back": ((300, 520), 0.30), "chest": ((250, 480), 0.15), "belly": ((250, 480), 0.15),
    "arm": ((250, 400), 0.20), "leg": ((300, 550), 0.20)}


def s2l(c):
    """sRGB 0..255 -> linear 0..1 (pure gamma)."""
    return (np.asarray(c, np.float32) / 255.0) ** GAMMA


def smoothstep(t):
    t = np.minimum(np.maximum(t, 0.0), 1.0)
    return t * t * (3.0 - 2.0 * t)


LUT_SCALE, LUT_SIZE = 8192.0, 8192 * 3
_LUT = []


def tone_lut():
    """Linear light (0..3) -> 8-bit sRGB-like: a soft shoulder above 0.8, then gamma."""
    if not _LUT:
        v = np.arange(LUT_SIZE, dtype=np.float64) / LUT_SCALE
        knee = 0.8
        v = np.where(v > knee, knee + (1 - knee) * np.tanh((v - knee) / (1 - knee)), v)
        _LUT.append(np.clip(np.round(255.0 * v ** (1.0 / GAMMA)), 0, 255).astype(np.uint8))
    return _LUT[0]


def size_bin(d):
    for lim, name in SIZE_BINS:
        if d <= lim:
            return name
    return ">8mm"


def smooth_noise(rng, h, w, cell):
    """Zero-mean, unit-variance smooth noise of (h, w) with features about `cell` pixels wide."""
    cell = max(1.0, float(cell))
    sh, sw = max(2, int(math.ceil(h / cell)) + 2), max(2, int(math.ceil(w / cell)) + 2)
    n = rng.standard_normal((sh, sw), dtype=np.float32)
    if cell <= 1.0:
        return n[:h, :w]
    big = cv2.resize(n, (int(round(sw * cell)), int(round(sh * cell))), interpolation=cv2.INTER_CUBIC)
    oy, ox = int(cell), int(cell)
    out = big[oy:oy + h, ox:ox + w]
    if out.shape != (h, w):
        out = cv2.resize(big, (w, h), interpolation=cv2.INTER_LINEAR)
    return out * (1.0 / 0.62)  # bicubic interpolation of white noise keeps ~0.6 of its deviation


def smin(a, b, k):
    """Smooth minimum (rounded corner of radius ~k)."""
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b * (1 - h) + a * h - k * h * (1 - h)


def noise_tiles(rng, H, W, C, cell, tile=384):
    """White noise (H, W[, C]) with pixels `cell` wide, tiled from one random block (fast)."""
    t = rng.standard_normal((tile, tile, C), dtype=np.float32)
    h, w = -(-H // cell), -(-W // cell)
    big = np.tile(t, (h // tile + 1, w // tile + 1, 1))[:h, :w]
    if cell > 1:
        big = cv2.resize(big, (W, H), interpolation=cv2.INTER_LINEAR)
    return big[..., 0] if C == 1 else big


def bilinear(field, fx, fy):
    """Sample field (h, w, C) at fractional indices (clamped); numpy, for point lists."""
    h, w = field.shape[:2]
    fx = np.clip(fx, 0.0, w - 1.000001)
    fy = np.clip(fy, 0.0, h - 1.000001)
    x0 = np.floor(fx).astype(np.int64)
    y0 = np.floor(fy).astype(np.int64)
    ax = (fx - x0)[..., None]
    ay = (fy - y0)[..., None]
    return (field[y0, x0] * (1 - ax) * (1 - ay) + field[y0, x0 + 1] * ax * (1 - ay)
            + field[y0 + 1, x0] * (1 - ax) * ay + field[y0 + 1, x0 + 1] * ax * ay)


# ------------------------------------------------------------------ body geometry

class Body:
    """A body part in world millimetres (u right, v down; the previous photo looks at ~(0,0)).

    sd(): signed distance to the silhouette (mm, > 0 on the body); z(): height field (mm)
    for shading; hair_angle(): the direction hairs lie; occlusion(): darkening of dimples."""

    def __init__(self, part, rng, half_u, half_v, portrait):
        self.part = part
        self.navel = None
        if part in ("back", "chest", "belly"):
            self.kind = "torso"
            self.u0 = rng.uniform(-0.45, 0.45) * half_u
            self.wt = rng.uniform(150, 185) if part == "back" else rng.uniform(140, 175)
            self.r = self.wt * rng.uniform(1.02, 1.15)
            if part == "belly":
                self.v_sh = -1e4
            else:
                self.v_sh = -half_v * rng.uniform(0.55, 1.9)
            self.shoulder_k = rng.uniform(0.25, 0.45)
            self.groove = rng.uniform(2.0, 5.0)
            self.bumps = []
            if part == "back":
                vs = self.v_sh + rng.uniform(90, 150)
                for sgn in (-1, 1):
                    self.bumps.append((self.u0 + sgn * rng.uniform(80, 105), vs, rng.uniform(45, 65), rng.uniform(6, 12)))
            elif part == "chest":
                vs = self.v_sh + rng.uniform(110, 170)
                for sgn in (-1, 1):
                    self.bumps.append((self.u0 + sgn * rng.uniform(70, 95), vs, rng.uniform(50, 70), rng.uniform(8, 22)))
                self.groove = rng.uniform(1.0, 3.0)
            else:
                self.bumps.append((self.u0, rng.uniform(-0.5, 0.5) * half_v, 150.0, rng.uniform(10, 30)))
                self.groove = rng.uniform(0.0, 2.0)
                if rng.random() < 0.6:
                    self.navel = (self.u0 + rng.normal(0, 4), rng.uniform(-0.8, 0.8) * half_v, rng.uniform(4, 7))
            self.hair_base = math.pi / 2
            # the waist narrows below the shoulder blades; arms hang beside the torso
            self.taper_w = rng.uniform(0.0, 0.14)
            self.v_ref = (self.v_sh if self.v_sh > -5e3 else -half_v) + 150.0
            self.arms = []
            if part != "belly" and rng.random() < 0.7:
                for sgn in (-1, 1):
                    ra = rng.uniform(36, 48)
                    self.arms.append((sgn, ra, rng.uniform(-2, 10), sgn * rng.uniform(0.0, 0.12)))
        else:
            self.kind = "limb"
            self.r0 = rng.uniform(33, 48) if part == "arm" else rng.uniform(50, 78)
            self.taper = rng.uniform(-0.15, 0.15)
            base = math.pi / 2 if portrait else 0.0
            self.beta = base + rng.uniform(-0.4, 0.4)
            across = (half_u if portrait else half_v) * rng.uniform(-0.25, 0.25)
            self.au, self.av = -math.sin(self.beta) * across, math.cos(self.beta) * across
            self.hair_base = self.beta + (math.pi if rng.random() < 0.5 else 0.0)

    def _top(self, u):
        du = u - self.u0
        return self.v_sh + self.shoulder_k * du * du / self.wt - 95.0 * np.exp(-(du / 48.0) ** 4)

    def _limb(self, u, v):
        du, dv = u - self.au, v - self.av
        cb, sb = math.cos(self.beta), math.sin(self.beta)
        t = du * cb + dv * sb
        d = -du * sb + dv * cb
        rad = self.r0 * (1.0 + self.taper * np.clip(t, -400, 400) / 300.0)
        return t, d, rad

    def _half_width(self, v):
        return self.wt * (1.0 - self.taper_w * np.clip((v - self.v_ref) / 300.0, 0.0, 1.5))

    def _torso_sd(self, u, v):
        side = self._half_width(v) - np.abs(u - self.u0)
        if self.v_sh < -5e3:
            return side
        e = 0.5
        slope = (self._top(u + e) - self._top(u - e)) / (2 * e)
        top = (v - self._top(u)) / np.sqrt(1.0 + slope * slope)
        return smin(side, top, 30.0)

    def _arm(self, arm, u, v):
        sgn, ra, gap, tilt = arm
        ua = self.u0 + sgn * (self.wt + gap + ra)
        va = self._top(np.float64(ua)) + 25.0
        ang = math.pi / 2 - tilt
        du, dv = u - ua, v - va
        t = du * math.cos(ang) + dv * math.sin(ang)
        d = -du * math.sin(ang) + dv * math.cos(ang)
        return smin(ra - np.abs(d), t + ra, 25.0), np.sqrt(np.maximum(ra * ra - d * d, 1.0))

    def sd(self, u, v):
        if self.kind == "limb":
            t, d, rad = self._limb(u, v)
            return rad - np.abs(d)
        sd = self._torso_sd(u, v)
        for arm in self.arms:
            sd = np.maximum(sd, self._arm(arm, u, v)[0])
        return sd

    def z(self, u, v):
        if self.kind == "limb":
            t, d, rad = self._limb(u, v)
            return np.sqrt(np.maximum(rad * rad - d * d, 1.0))
        z = self._torso_z(u, v)
        if self.arms:
            sd = self._torso_sd(u, v)
            for arm in self.arms:
                asd, az = self._arm(arm, u, v)
                z = np.where(asd > sd, az, z)
                sd = np.maximum(sd, asd)
        return z

    def _torso_z(self, u, v):
        du = u - self.u0
        z = np.sqrt(np.maximum(self.r * self.r - du * du, 1.0))
        z = z - self.groove * np.exp(-0.5 * (du / 16.0) ** 2)
        for bu, bv, s, hgt in self.bumps:
            z = z + hgt * np.exp(-0.5 * (((u - bu) / s) ** 2 + ((v - bv) / (1.2 * s)) ** 2))
        if self.v_sh > -5e3:
            near = np.clip(1.0 - (v - self._top(u)) / 70.0, 0.0, 1.0)
            z = z - 45.0 * near * near
        if self.navel is not None:
            nu, nv, r = self.navel
            z = z - 6.0 * np.exp(-0.5 * ((u - nu) ** 2 + (v - nv) ** 2) / (r * r))
        return z

    def normal(self, u, v, eps=0.6):
        zu = (self.z(u + eps, v) - self.z(u - eps, v)) / (2 * eps)
        zv = (self.z(u, v + eps) - self.z(u, v - eps)) / (2 * eps)
        nz = 1.0 / np.sqrt(1.0 + zu * zu + zv * zv)
        return -zu * nz, -zv * nz, nz

    def occlusion(self, u, v):
        if self.navel is None:
            return 1.0
        nu, nv, r = self.navel
        return 1.0 - 0.6 * np.exp(-0.5 * ((u - nu) ** 2 + (v - nv) ** 2) / (0.7 * r) ** 2)

    def hair_angle(self, u, v):
        if self.kind == "limb":
            return self.hair_base
        return self.hair_base + 0.5 * np.tanh((u - self.u0) / 120.0)


class Cloth:
    """Clothing in world mm: a strap (band), a waistband/hem (half-plane) or a sleeve."""

    def __init__(self, kind, p, ang, half_w, curv, colour, wave, margin):
        self.kind, self.p, self.ang, self.half_w, self.curv = kind, p, ang, half_w, curv
        self.colour, self.wave, self.margin = colour, wave, margin

    def moved(self, rng, s):
        c = Cloth(self.kind, self.p, self.ang, self.half_w, self.curv, self.colour, self.wave, self.margin)
        n = (-math.sin(self.ang), math.cos(self.ang))
        off = rng.uniform(-1, 1) * 8.0 * s
        c.p = (self.p[0] + n[0] * off, self.p[1] + n[1] * off)
        c.ang = self.ang + math.radians(rng.uniform(-3, 3) * s)
        return c

    def sd(self, u, v, body_sd):
        """Signed distance (mm, > 0 on the cloth) and the along-band coordinate (folds)."""
        du, dv = u - self.p[0], v - self.p[1]
        ca, sa = math.cos(self.ang), math.sin(self.ang)
        t = du * ca + dv * sa
        d = -du * sa + dv * ca + self.curv * t * t
        wa, wl, wp = self.wave
        d = d + wa * np.sin(t / wl + wp)
        sd = self.half_w - np.abs(d) if self.kind == "strap" else d
        return np.minimum(sd, body_sd + self.margin), t


# ------------------------------------------------------------------ lesions (blobs)

def blob_shape(b, nth=120):
    """Polar radius R(theta) of a blob in its normalised frame, sampled on nth angles."""
    th = np.linspace(0, 2 * math.pi, nth, endpoint=False)
    return th, blob_radius(b, th)


def blob_radius(b, th):
    r = np.ones_like(th)
    for k, amp, ph in b["harm"]:
        r = r + amp * np.cos(k * th + ph)
    if b.get("asym"):
        t0, g = b["asym"]
        r = r + g * np.maximum(0.0, np.cos(th - t0)) ** 2
    return r


def blob_to_world(b, xn, yn):
    """Normalised blob coordinates -> world mm (scale, rotate, foreshorten, translate)."""
    x, y = xn * b["a"], yn * b["b"]
    cp, sp = math.cos(b["phi"]), math.sin(b["phi"])
    du, dv = x * cp - y * sp, x * sp + y * cp
    g, fs = b["fs"]
    cg, sg = math.cos(g), math.sin(g)
    pe, po = (du * cg + dv * sg) * fs, -du * sg + dv * cg
    return b["cu"] + pe * cg - po * sg, b["cv"] + pe * sg + po * cg


def blob_geometry(b):
    """Physical equivalent diameter (mm), centroid (world mm) and outline (world mm)."""
    th, r = blob_shape(b)
    dth = 2 * math.pi / len(th)
    area_n = 0.5 * np.sum(r * r) * dth
    diam = 2.0 * math.sqrt(area_n * b["a"] * b["b"] / math.pi)
    cx = np.sum(r ** 3 * np.cos(th)) * dth / 3.0 / area_n
    cy = np.sum(r ** 3 * np.sin(th)) * dth / 3.0 / area_n
    cu, cv = blob_to_world(b, cx, cy)
    ou, ov = blob_to_world(b, r * np.cos(th), r * np.sin(th))
    return diam, (float(cu), float(cv)), (ou, ov)


def render_blob(world, b, origin, wmm, tan=None):
    """Multiply world (h, w, 3 linear) by the blob's transmission exp(-density * OD).

    tan: the skin's tan factor (3,), undone under the blob so lesions do not tan."""
    h, w = world.shape[:2]
    rmax = max(b["a"], b["b"]) * (1.0 + sum(abs(x[1]) for x in b["harm"]) + (b["asym"][1] if b.get("asym") else 0.0))
    rad_px = (rmax + 2.0 * b["edge"]) / wmm + 2
    ci, cj = (b["cv"] - origin[1]) / wmm, (b["cu"] - origin[0]) / wmm
    i0, i1 = max(0, int(ci - rad_px)), min(h, int(ci + rad_px) + 2)
    j0, j1 = max(0, int(cj - rad_px)), min(w, int(cj + rad_px) + 2)
    if i1 <= i0 or j1 <= j0:
        return
    vv = origin[1] + np.arange(i0, i1, dtype=np.float32)[:, None] * wmm
    uu = origin[0] + np.arange(j0, j1, dtype=np.float32)[None, :] * wmm
    du, dv = uu - b["cu"], vv - b["cv"]
    g, fs = b["fs"]
    cg, sg = math.cos(g), math.sin(g)
    pe, po = (du * cg + dv * sg) / fs, -du * sg + dv * cg
    du, dv = pe * cg - po * sg, pe * sg + po * cg
    cp, sp = math.cos(b["phi"]), math.sin(b["phi"])
    x, y = du * cp + dv * sp, -du * sp + dv * cp
    xn, yn = x / b["a"], y / b["b"]
    rho0 = np.sqrt(xn * xn + yn * yn) + 1e-6
    th = np.arctan2(yn, xn)
    rr = blob_radius(b, th)
    rho = rho0 / rr
    scale = np.sqrt((b["a"] * np.cos(th)) ** 2 + (b["b"] * np.sin(th)) ** 2)
    dist = (1.0 - rho) * rr * scale  # ~ mm inside the border
    alpha = smoothstep(0.5 + dist / b["edge"])
    dens = b["dens"] * (1.0 + b["centre"] * np.maximum(1.0 - rho * rho, 0.0))
    if b["mottle"] > 0:
        nrng = np.random.default_rng(b["seed"])
        cell = max(1.0, 0.9 / wmm)
        dens = dens * (1.0 + b["mottle"] * smooth_noise(nrng, i1 - i0, j1 - j0, cell))
    dens = np.maximum(dens, 0) * alpha
    od = np.broadcast_to(b["od"], (1, 1, 3))
    if b.get("od2") is not None:
        psi, off, width = b["split"]
        proj = (x * math.cos(psi) + y * math.sin(psi)) / max(b["a"], b["b"])
        t = smoothstep(0.5 + (proj - off) / width)[..., None]
        od = od * (1 - t) + b["od2"] * t
    tot = dens[..., None] * od
    sub = b.get("sub")
    if sub is not None:  # a second colour over part of the lesion, replacing its own
        su, sv, sr, sd_, sod, sedge = sub
        dd = np.sqrt((uu - su) ** 2 + (vv - sv) ** 2)
        t2 = (smoothstep(0.5 + (sr - dd) / sedge) * alpha)[..., None]
        tot = tot * (1 - t2) + (sd_ * t2) * sod
    trans = np.exp(-tot)
    if tan is not None:
        trans = trans * (1.0 / tan) ** alpha[..., None]
    world[i0:i1, j0:j1] *= trans.astype(np.float32)


def make_mole(rng, cu, cv, diam, fs):
    aspect = rng.uniform(1.0, 1.35)
    d = diam
    b = {"cu": cu, "cv": cv, "a": 0.5 * d * math.sqrt(aspect), "b": 0.5 * d / math.sqrt(aspect),
         "phi": rng.uniform(0, math.pi), "fs": fs,
         "harm": [(k, rng.uniform(0, 0.09) / k ** 0.4, rng.uniform(0, 2 * math.pi)) for k in range(2, 7)],
         "asym": None, "edge": rng.uniform(0.12, 0.35) * (0.5 + 0.25 * d),
         "dens": rng.uniform(0.55, 1.7),
         "centre": rng.uniform(0.2, 0.9) if rng.random() < 0.4 else rng.uniform(0.0, 0.2),
         "mottle": rng.uniform(0.03, 0.14), "seed": int(rng.integers(1 << 31)),
         "od": (OD_MOLE * rng.uniform(0.9, 1.1, 3)).astype(np.float32), "od2": None, "sub": None}
    if rng.random() < 0.25:  # two tones
        b["od2"] = (OD_MOLE * rng.uniform(1.2, 1.6) * rng.uniform(0.95, 1.05, 3)).astype(np.float32)
        b["split"] = (rng.uniform(0, 2 * math.pi), rng.uniform(-0.3, 0.3), rng.uniform(0.3, 0.8))
    # normalise (a, b) so that the equivalent diameter is exactly diam
    d0, _, _ = blob_geometry(b)
    b["a"] *= diam / d0
    b["b"] *= diam / d0
    return b


def make_freckle(rng, cu, cv, diam, fs):
    aspect = rng.uniform(1.0, 1.5)
    return {"cu": cu, "cv": cv, "a": 0.5 * diam * math.sqrt(aspect), "b": 0.5 * diam / math.sqrt(aspect),
            "phi": rng.uniform(0, math.pi), "fs": fs,
            "harm": [(k, rng.uniform(0, 0.2) / k ** 0.5, rng.uniform(0, 2 * math.pi)) for k in range(2, 5)],
            "asym": None, "edge": rng.uniform(0.15, 0.4), "dens": rng.uniform(0.2, 0.6),
            "centre": 0.0, "mottle": 0.0, "seed": 0, "od": OD_FRECKLE, "od2": None, "sub": None}


def make_papule(rng, cu, cv, diam, fs):
    return {"cu": cu, "cv": cv, "a": 0.5 * diam * 1.08, "b": 0.5 * diam / 1.08, "phi": rng.uniform(0, math.pi),
            "fs": fs, "harm": [(k, rng.uniform(0, 0.05), rng.uniform(0, 6.3)) for k in (2, 3)], "asym": None,
            "edge": rng.uniform(0.25, 0.45) * diam, "dens": rng.uniform(0.45, 0.8), "centre": rng.uniform(0.2, 0.6),
            "mottle": 0.08, "seed": int(rng.integers(1 << 31)), "od": OD_HAEM, "od2": None, "sub": None}


def scale_blob_to(b, diam):
    d0, _, _ = blob_geometry(b)
    b["a"] *= diam / d0
    b["b"] *= diam / d0


# ------------------------------------------------------------------ camera

class Camera:
    """A pinhole camera looking at the skin plane (world mm, z = 0).

    Forward (truth and rendering): world w -> skin moved by the non-rigid field D
    (s = w + D(w)) -> homography H -> pixel."""

    def __init__(self, W, H, f, target, tilt, roll, mmpp):
        self.W, self.H, self.f = W, H, f
        d = mmpp * f
        dirv = np.array([math.tan(tilt[1]), math.tan(tilt[0]), 1.0])
        dirv /= np.linalg.norm(dirv)
        C = np.array([target[0], target[1], 0.0]) - d * dirv
        zc = dirv
        xc = np.array([1.0, 0.0, 0.0]) - zc[0] * zc
        xc /= np.linalg.norm(xc)
        yc = np.cross(zc, xc)
        cr, sr = math.cos(roll), math.sin(roll)
        R = np.stack([cr * xc + sr * yc, -sr * xc + cr * yc, zc])
        K = np.array([[f, 0, (W - 1) / 2.0], [0, f, (H - 1) / 2.0], [0, 0, 1.0]])
        self.Hm = K @ np.column_stack([R[:, 0], R[:, 1], -R @ C])
        self.Hinv = np.linalg.inv(self.Hm)
        self.D = None  # (field (h, w, 2) mm, origin (u, v), cell mm)

    def disp(self, u, v):
        if self.D is None:
            return 0.0, 0.0
        field, (ou, ov), cell = self.D
        d = bilinear(field, (np.asarray(u) - ou) / cell, (np.asarray(v) - ov) / cell)
        return d[..., 0], d[..., 1]

    def plane_to_px(self, su, sv):
        h = self.Hm
        w = h[2, 0] * su + h[2, 1] * sv + h[2, 2]
        return (h[0, 0] * su + h[0, 1] * sv + h[0, 2]) / w, (h[1, 0] * su + h[1, 1] * sv + h[1, 2]) / w

    def px_to_plane(self, x, y):
        h = self.Hinv
        w = h[2, 0] * x + h[2, 1] * y + h[2, 2]
        return (h[0, 0] * x + h[0, 1] * y + h[0, 2]) / w, (h[1, 0] * x + h[1, 1] * y + h[1, 2]) / w

    def world_to_px(self, u, v):
        du, dv = self.disp(u, v)
        return self.plane_to_px(np.asarray(u) + du, np.asarray(v) + dv)

    def px_to_world(self, x, y):
        su, sv = self.px_to_plane(x, y)
        u, v = su, sv
        if self.D is not None:
            for _ in range(5):  # fixed point of w = s - D(w); D is smooth and small
                du, dv = self.disp(u, v)
                u, v = su - du, sv - dv
        return u, v

    def px_per_mm(self, u, v, e=0.5):
        u, v = np.asarray(u, np.float64), np.asarray(v, np.float64)
        x0, y0 = self.world_to_px(u, v)
        x1, y1 = self.world_to_px(u + e, v)
        x2, y2 = self.world_to_px(u, v + e)
        det = ((x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)) / (e * e)
        return np.sqrt(np.abs(det))


# ------------------------------------------------------------------ the pair

def uni(rng, a, b):
    return float(rng.uniform(a, b))


def sym(rng, r):
    return float(rng.uniform(-r, r))


def photo_size(rng, long_side, aspect, portrait):
    L = int(round(long_side * rng.uniform(0.8, 1.2) / 8.0)) * 8
    S = int(round(L * aspect / 8.0)) * 8
    return (S, L) if portrait else (L, S)


class Pair:
    def __init__(self, seed, index, strength, long_side):
        self.seed, self.index, self.strength, self.long_side = seed, index, strength, long_side
        ss = np.random.SeedSequence([int(seed), int(index), 0x5ca1])
        # separate streams: the world, the cameras and nuisances, the changes
        r_world, r_cam, r_change = [np.random.default_rng(s) for s in ss.spawn(3)]
        self.rw, self.rc, self.rch = r_world, r_cam, r_change
        s = strength
        rw, rc = r_world, r_cam
        # ---- part, framing, photo sizes
        names = list(PARTS)
        self.part = names[int(rw.choice(len(names), p=[PARTS[n][1] for n in names]))]
        span_lo, span_hi = PARTS[self.part][0]
        self.span = uni(rw, span_lo, span_hi)
        portrait = bool(rw.random() < (0.7 if self.part in ("back", "chest", "belly", "leg") else 0.5))
        aspects = [0.75, 0.75, 0.75, 0.75, 0.5625, 2 / 3]
        a_prev = aspects[int(rc.integers(len(aspects)))]
        a_cur = a_prev if rc.random() < 0.75 else aspects[int(rc.integers(len(aspects)))]
        Wp, Hp = photo_size(rc, long_side, a_prev, portrait)
        Wc, Hc = photo_size(rc, long_side, a_cur, portrait)
        # ---- cameras: previous near nominal, current with the nuisances
        mm_prev = self.span / max(Wp, Hp)
        span_cur = self.span * (1.0 + sym(rc, 0.08 * s))
        mm_cur = span_cur / max(Wc, Hc)
        roll_p = math.radians(sym(rc, 2.0))
        tilt_p = (math.radians(sym(rc, 3.0)), math.radians(sym(rc, 3.0)))
        roll_c = roll_p + math.radians(sym(rc, 6.0 * s))
        tilt_c = (math.radians(sym(rc, 8.0 * s)), math.radians(sym(rc, 8.0 * s)))
        tgt_c = (sym(rc, 0.05 * s) * self.span, sym(rc, 0.05 * s) * self.span)
        self.cams = [Camera(Wp, Hp, max(Wp, Hp) * uni(rc, 0.7, 0.95), (0.0, 0.0), tilt_p, roll_p, mm_prev),
                     Camera(Wc, Hc, max(Wc, Hc) * uni(rc, 0.7, 0.95), tgt_c, tilt_c, roll_c, mm_cur)]
        half_u, half_v = 0.5 * Wp * mm_prev, 0.5 * Hp * mm_prev
        self.body = Body(self.part, rw, half_u, half_v, portrait)
        # ---- the world canvas: both frames, plus the deformation and a margin
        dmax = uni(rc, 1.0, 4.0) * s
        us, vs, mms = [], [], []
        for cam in self.cams:
            t = np.linspace(0, 1, 33)
            xs = np.concatenate([t * (cam.W - 1), np.full_like(t, cam.W - 1), t[::-1] * (cam.W - 1), np.zeros_like(t)])
            ys = np.concatenate([np.zeros_like(t), t * (cam.H - 1), np.full_like(t, cam.H - 1), t[::-1] * (cam.H - 1)])
            u, v = cam.px_to_plane(xs, ys)
            us.append(u)
            vs.append(v)
            mms.append(1.0 / float(np.max(cam.px_per_mm(u, v))))
        us, vs = np.concatenate(us), np.concatenate(vs)
        marg = dmax * 1.6 + 6.0
        self.u_min, self.v_min = float(us.min() - marg), float(vs.min() - marg)
        u_max, v_max = float(us.max() + marg), float(vs.max() + marg)
        self.wmm = min(mms) / 1.05  # world mm per world pixel: a little finer than the finest photo
        self.ww = int(math.ceil((u_max - self.u_min) / self.wmm)) + 1
        self.wh = int(math.ceil((v_max - self.v_min) / self.wmm)) + 1
        # smooth non-rigid displacement of the skin at the follow-up
        cell = 4.0
        dh, dw = int((v_max - self.v_min) / cell) + 3, int((u_max - self.u_min) / cell) + 3
        corr = uni(rc, 60, 160) / cell
        fld = np.stack([smooth_noise(rc, dh, dw, corr), smooth_noise(rc, dh, dw, corr)], -1)
        fld *= dmax / max(1e-6, float(np.abs(fld).max()))
        self.cams[1].D = (fld.astype(np.float64), (self.u_min, self.v_min), cell)
        self.dmax = dmax
        # ---- skin appearance
        t = int(rw.choice(6, p=TONE_P))
        nb = min(5, max(0, t + (1 if rw.random() < 0.5 else -1)))
        tone = SKIN_TONES[t] + (SKIN_TONES[nb] - SKIN_TONES[t]) * uni(rw, 0.0, 0.45)
        tone = tone * np.array([1 + sym(rw, 0.02), 1 + sym(rw, 0.025), 1 + sym(rw, 0.04)], np.float32)
        self.fitz = t + 1
        self.tone = np.clip(tone, 0, 255)
        self.base = s2l(self.tone)
        self.lightness = float(self.base.mean())
        # ---- lighting per photo
        el, az = math.radians(uni(rw, 20, 55)), uni(rw, 0, 2 * math.pi)
        amb = uni(rw, 0.3, 0.55)
        self.lights = [(el, az, amb)]
        el2 = min(math.radians(70), max(math.radians(8), el + math.radians(sym(rc, 15 * s))))
        self.lights.append((el2, az + math.radians(rc.normal(0, 35 * s)), float(np.clip(amb + sym(rc, 0.1 * s), 0.2, 0.7))))
        self.stripes = [None, None]
        if rc.random() < 0.3:
            st = {"ang": uni(rc, 0, math.pi), "P": uni(rc, 25, 70), "duty": uni(rc, 0.4, 0.62),
                  "soft": uni(rc, 3.0, 10.0), "phase": uni(rc, 0, 1), "amb": uni(rc, 0.28, 0.5),
                  "bend": uni(rc, -0.4, 0.4)}
            self.stripes[0] = st
            if rc.random() < 0.75:
                st2 = dict(st)
                st2["phase"] = st["phase"] + uni(rc, 0.15, 0.85)
                st2["ang"] = st["ang"] + math.radians(sym(rc, 8 * s))
                st2["P"] = st["P"] * (1 + sym(rc, 0.1 * s))
                self.stripes[1] = st2
        elif rc.random() < 0.15 * s:
            self.stripes[1] = {"ang": uni(rc, 0, math.pi), "P": uni(rc, 25, 70), "duty": uni(rc, 0.4, 0.62),
                               "soft": uni(rc, 3.0, 10.0), "phase": uni(rc, 0, 1), "amb": uni(rc, 0.28, 0.5),
                               "bend": uni(rc, -0.4, 0.4)}
        self.spec = uni(rw, 0.01, 0.06), uni(rw, 8, 30)
        # ---- clothing (moves a little between photos)
        self.cloth = [[], []]
        colour = CLOTH_COLOURS[int(rw.integers(len(CLOTH_COLOURS)))]
        items = []
        b = self.body
        r = rw.random()
        if b.kind == "torso":
            if r < 0.35:  # one or two straps across
                for _ in range(1 + int(rw.random() < 0.6)):
                    items.append(Cloth("strap", (b.u0 + sym(rw, 80), sym(rw, 0.6) * half_v), uni(rw, 0.6, 2.5) * (1 if rw.random() < .5 else -1),
                                       uni(rw, 3, 14), sym(rw, 0.0015), colour, (uni(rw, 0, 2), uni(rw, 20, 60), uni(rw, 0, 6.3)), 1.0))
            elif r < 0.7:  # waistband / hem below
                v0 = half_v * uni(rw, 0.55, 1.1)
                items.append(Cloth("edge", (b.u0, v0), sym(rw, 0.12), 0, sym(rw, 0.0008), colour,
                                   (uni(rw, 1, 5), uni(rw, 15, 50), uni(rw, 0, 6.3)), uni(rw, 3, 10)))
            elif r < 0.85:  # neckline / band above
                v0 = -half_v * uni(rw, 0.6, 1.1)
                items.append(Cloth("edge", (b.u0, v0), math.pi + sym(rw, 0.15), 0, sym(rw, 0.001), colour,
                                   (uni(rw, 1, 4), uni(rw, 15, 50), uni(rw, 0, 6.3)), uni(rw, 3, 10)))
        else:
            if r < 0.6:  # sleeve or hem at one end of the limb
                sgn = 1 if rw.random() < 0.5 else -1
                ext = max(half_u, half_v) * uni(rw, 0.55, 1.05)
                p = (b.au + math.cos(b.beta) * ext * sgn, b.av + math.sin(b.beta) * ext * sgn)
                ang = b.beta - math.pi / 2 + (0 if sgn > 0 else math.pi) + sym(rw, 0.2)
                items.append(Cloth("edge", p, ang, 0, 0.0, colour, (uni(rw, 1, 4), uni(rw, 10, 30), uni(rw, 0, 6.3)), uni(rw, 4, 12)))
        self.cloth[0] = items
        self.cloth[1] = [c.moved(rc, s) for c in items]
        self.cloth_tex = uni(rw, 0.02, 0.06)
        # ---- background (camera space, normalised by the long side)
        self.bg = self.make_background(rw)
        # ---- camera pipeline per photo
        self.expo = [uni(rc, 0.9, 1.1), 0.0]
        self.expo[1] = self.expo[0] * max(0.3, 1.0 + sym(rc, 0.3 * s))
        warm = np.array([1 + uni(rc, 0, 0.06), 1.0, 1 - uni(rc, 0, 0.08)])
        self.wb = [warm * np.array([1 + sym(rc, 0.03), 1, 1 + sym(rc, 0.03)]),
                   warm * np.array([1 + sym(rc, 0.08 * s), 1, 1 + sym(rc, 0.08 * s)])]
        self.tan = np.exp(-OD_TAN * (uni(rc, 0.02, 0.12 * s) if rc.random() < 0.3 else 0.0)).astype(np.float32)
        self.blur = [uni(rc, 0.0, 1.0), uni(rc, 0.0, 1.5 * s)]
        if rc.random() < 0.1:
            self.blur[int(rc.integers(2))] = uni(rc, 1.5, 3.0) * s
        self.sharpen = [uni(rc, 0, 0.8) if rc.random() < 0.6 else 0.0 for _ in range(2)]
        self.noise = [uni(rc, 0.0001, 0.0008) * s for _ in range(2)]
        self.quality = [int(rc.integers(80, 96)), int(rc.integers(70, 96))]
        self.vignette = [uni(rc, 0.0, 0.18) for _ in range(2)]
        self.bg_tf = [(0.0, 0.0, 0.0, 1.0), (sym(rc, 0.04 * s), sym(rc, 0.04 * s), roll_c - roll_p,
                                                 (mm_cur / mm_prev) * (max(Wc, Hc) / max(Wp, Hp)))]
        # ---- lesions and hair
        self.make_lesions(rw)
        self.make_hairs(rw)
        self.make_changes()

    # -------------------------------------------------------------- scene content

    def make_background(self, rng):
        kind = ["wall", "curtain", "blinds", "door"][int(rng.choice(4, p=[0.35, 0.25, 0.25, 0.15]))]
        col = WALL_COLOURS[int(rng.integers(len(WALL_COLOURS)))] * rng.uniform(0.92, 1.06, 3)
        bg = {"kind": kind, "col": s2l(np.clip(col, 0, 255)), "light": uni(rng, 0.7, 1.5),
              "grad": (sym(rng, 0.35), uni(rng, 0, 2 * math.pi)), "noise": rng.standard_normal((12, 12)).astype(np.float32),
              "P": uni(rng, 0.03, 0.09), "phase": uni(rng, 0, 1), "ang": sym(rng, 0.08), "gap": uni(rng, 0.12, 0.3),
              "x0": sym(rng, 0.45), "furn": None, "blur": uni(rng, 1.0, 3.0)}
        if kind == "blinds":
            bg["col"] = s2l(np.array([240, 240, 236]) * rng.uniform(0.95, 1.02, 3))
            bg["light"] = uni(rng, 1.0, 1.8)
            bg["P"] = uni(rng, 0.025, 0.06)
        if kind == "door":
            bg["col2"] = s2l(np.clip(CLOTH_COLOURS[int(rng.integers(len(CLOTH_COLOURS)))] * 0.5 + 120, 0, 255))
        if rng.random() < 0.3:
            wood = np.array([[110, 75, 50], [80, 80, 85], [150, 120, 90], [40, 40, 45]])[int(rng.integers(4))]
            bg["furn"] = (s2l(wood), uni(rng, 0, 2 * math.pi), uni(rng, 0.3, 0.6))
        return bg

    def make_lesions(self, rng):
        """Moles (3-15 in the previous frame), freckles, and their world positions."""
        body, cam0 = self.body, self.cams[0]
        self.moles, self.freckles = [], []
        n_target = int(rng.integers(3, 16))
        tries = 0
        while len(self.moles) < n_target and tries < 600:
            tries += 1
            x, y = uni(rng, 0.04, 0.96) * (cam0.W - 1), uni(rng, 0.04, 0.96) * (cam0.H - 1)
            u, v = cam0.px_to_world(np.array(x), np.array(y))
            u, v = float(u), float(v)
            diam = float(np.exp(rng.uniform(math.log(1.5), math.log(8.0))) if rng.random() < 0.6 else uni(rng, 1.5, 4.5))
            if float(body.sd(np.array(u), np.array(v))) < diam + 3 or self.cloth_sd(0, u, v) > -diam:
                continue
            if any(math.hypot(u - m["cu"], v - m["cv"]) < 0.5 * (diam + m["d"]) + 4 for m in self.moles):
                continue
            b = make_mole(rng, u, v, diam, self.foreshorten(u, v))
            b["d"] = diam
            self.moles.append(b)
        # freckles: density by skin type, clustered by a low-frequency field
        dens_cm2 = {1: (0.5, 5.0), 2: (0.3, 4.0), 3: (0.05, 1.5), 4: (0.0, 0.4), 5: (0.0, 0.15), 6: (0.0, 0.1)}[self.fitz]
        dens = uni(rng, *dens_cm2)
        area_cm2 = (self.ww * self.wh) * self.wmm ** 2 / 100.0
        n = min(2000, int(dens * area_cm2))
        u = self.u_min + rng.random(n * 2) * self.ww * self.wmm
        v = self.v_min + rng.random(n * 2) * self.wh * self.wmm
        cl = smooth_noise(rng, 16, 16, 4)
        keep = (body.sd(u, v) > 1.0) & (bilinear(cl[..., None], (u - self.u_min) / (self.ww * self.wmm) * 15,
                                                   (v - self.v_min) / (self.wh * self.wmm) * 15)[..., 0] > rng.normal(0, 0.6, u.size))
        u, v = u[keep][:n], v[keep][:n]
        diams = np.exp(rng.uniform(math.log(0.5), math.log(2.0), u.size))
        nu, nv, nz = body.normal(u, v)
        fang, ffac = np.arctan2(nv, nu), np.maximum(0.3, nz)
        for j, (uu, vv, dd) in enumerate(zip(u, v, diams)):
            if any(math.hypot(uu - m["cu"], vv - m["cv"]) < 0.5 * (dd + m["d"]) + 0.5 for m in self.moles):
                continue
            f = make_freckle(rng, float(uu), float(vv), float(dd), (float(fang[j]), float(ffac[j])))
            f["d"] = float(dd)
            self.freckles.append(f)

    def foreshorten(self, u, v):
        """Direction and factor by which a flat lesion at (u, v) looks compressed (surface slope)."""
        nu, nv, nz = self.body.normal(np.array(u, np.float64), np.array(v, np.float64))
        return (math.atan2(float(nv), float(nu)), max(0.3, float(nz)))

    def cloth_sd(self, k, u, v):
        u, v = np.asarray(u, np.float64), np.asarray(v, np.float64)
        out = np.full(np.broadcast(u, v).shape, -1e3)
        bsd = self.body.sd(u, v)
        for c in self.cloth[k]:
            sd, _ = c.sd(u, v, bsd)
            out = np.maximum(out, sd)
        return out

    def make_hairs(self, rng):
        """Hair polylines (world mm) for both photos; some move between the photos."""
        b = self.body
        per_cm2 = {"back": (0.01, 0.25), "chest": (0.02, 0.6), "belly": (0.02, 0.4), "arm": (0.2, 1.5), "leg": (0.2, 1.8)}[self.part]
        area_cm2 = (self.ww * self.wh) * self.wmm ** 2 / 100.0
        n = min(1500, int(uni(rng, *per_cm2) * area_cm2))
        kind = int(rng.choice(3, p=[0.55, 0.25, 0.2]))
        self.hair_t = np.array([[0.10, 0.085, 0.075], [0.32, 0.24, 0.18], [0.72, 0.62, 0.47]][kind], np.float32)
        u = self.u_min + rng.random(n) * self.ww * self.wmm
        v = self.v_min + rng.random(n) * self.wh * self.wmm
        keep = b.sd(u, v) > 0
        u, v = u[keep], v[keep]
        self.hairs = []
        for uu, vv in zip(u, v):
            ln = float(np.exp(rng.uniform(math.log(2.0), math.log(20.0))))
            ang = float(b.hair_angle(uu, vv)) + rng.normal(0, 0.35)
            curv = rng.normal(0, 0.6) / ln  # radians per mm
            th = uni(rng, 0.05, 0.1)
            move = rng.random() < 0.35
            dang = rng.normal(0, 0.3) * self.strength if move else 0.0
            self.hairs.append((float(uu), float(vv), ln, ang, curv, th, uni(rng, 0.5, 1.0), dang))

    def hair_polyline(self, h, k):
        u0, v0, ln, ang, curv, th, op, dang = h
        if k == 1:
            ang += dang
        t = np.linspace(0, ln, 7)
        a = ang + curv * t
        du = np.concatenate([[0], np.cumsum(np.cos(a[:-1]) * np.diff(t))])
        dv = np.concatenate([[0], np.cumsum(np.sin(a[:-1]) * np.diff(t))])
        return u0 + du, v0 + dv

    # -------------------------------------------------------------- changes

    def visible(self, k, u, v, margin_px=0.0):
        """(visible, (x, y)) of world point(s) in photo k: inside the frame, on the body, not under cloth."""
        cam = self.cams[k]
        u, v = np.asarray(u, np.float64), np.asarray(v, np.float64)
        x, y = cam.world_to_px(u, v)
        inside = ((x >= -0.5 + margin_px) & (x <= cam.W - 0.5 - margin_px)
                  & (y >= -0.5 + margin_px) & (y <= cam.H - 0.5 - margin_px))
        vis = inside & (self.body.sd(u, v) > 0) & (self.cloth_sd(k, u, v) <= 0)
        if vis.ndim == 0:
            return bool(vis), (float(x), float(y))
        return vis, (x, y)

    def make_changes(self):
        rng = self.rch
        self.changes = []
        self.cur_moles = [dict(m) for m in self.moles]  # the state at the follow-up
        self.new_lesions = []
        if rng.random() >= 0.4:
            return
        n = 1 if rng.random() < 0.7 else 2
        used = set()
        for _ in range(n):
            kind = CHANGE_KINDS[int(rng.integers(len(CHANGE_KINDS)))]
            cands = [i for i, m in enumerate(self.moles) if i not in used and m["d"] >= 1.5
                     and self.visible(0, m["cu"], m["cv"], 10)[0] and self.visible(1, m["cu"], m["cv"], 0.06 * max(self.cams[1].W, self.cams[1].H))[0]]
            if kind not in ("new_mole", "new_papule") and not cands:
                kind = "new_mole"
            if kind in ("new_mole", "new_papule"):
                diam = uni(rng, 2.0, 6.0) if kind == "new_mole" else uni(rng, 1.5, 4.0)
                cam = self.cams[1]
                for _try in range(300):
                    x, y = uni(rng, 0.07, 0.93) * (cam.W - 1), uni(rng, 0.07, 0.93) * (cam.H - 1)
                    u, v = cam.px_to_world(np.array(x), np.array(y))
                    u, v = float(u), float(v)
                    if float(self.body.sd(np.array(u), np.array(v))) < diam + 2 or self.cloth_sd(1, u, v) > -diam:
                        continue
                    if any(math.hypot(u - m["cu"], v - m["cv"]) < 0.5 * (diam + m["d"]) + 3 for m in self.cur_moles + self.new_lesions):
                        continue
                    break
                else:
                    continue
                fs = self.foreshorten(u, v)
                b = make_mole(rng, u, v, diam, fs) if kind == "new_mole" else make_papule(rng, u, v, diam, fs)
                if kind == "new_papule":
                    scale_blob_to(b, diam)
                b["d"] = diam
                b["kind"] = "mole" if kind == "new_mole" else "papule"
                self.new_lesions.append(b)
                self.changes.append({"kind": kind, "mole_index": None, "new_index": len(self.new_lesions) - 1,
                                     "after": b, "before": None, "size_mm": diam})
                continue
            i = cands[int(rng.integers(len(cands)))]
            used.add(i)
            old = self.moles[i]
            m = dict(old)
            if kind == "growth":
                dd = uni(rng, 0.8, 4.0)
                scale_blob_to(m, old["d"] + dd)
                m["d"] = old["d"] + dd
            elif kind == "asymmetric_growth":
                dd = uni(rng, 0.8, 3.0)
                m["asym"] = (uni(rng, 0, 2 * math.pi), 0.0)
                lo, hi = 0.0, 3.0
                for _ in range(40):  # the bulge that grows the equivalent diameter by dd
                    g = 0.5 * (lo + hi)
                    m["asym"] = (m["asym"][0], g)
                    if blob_geometry(m)[0] < old["d"] + dd:
                        lo = g
                    else:
                        hi = g
                m["d"] = blob_geometry(m)[0]
            elif kind == "darkening":
                m["dens"] = old["dens"] * uni(rng, 1.5, 2.0) + 0.3
                m["od"] = (old["od"] * np.array([1.05, 1.0, 0.95])).astype(np.float32)
            elif kind == "second_colour":
                which = ["dark", "bluegrey", "reddish"][int(rng.integers(3))]
                od, (dlo, dhi) = OD_SECOND[which]
                r = 0.5 * old["d"]
                a = uni(rng, 0, 2 * math.pi)
                off = uni(rng, 0.15, 0.45) * r
                m["sub"] = (old["cu"] + off * math.cos(a), old["cv"] + off * math.sin(a), uni(rng, 0.4, 0.65) * r,
                            uni(rng, dlo, dhi), od, max(0.15, 0.15 * r))
                m["second"] = which
            self.cur_moles[i] = m
            self.changes.append({"kind": kind, "mole_index": i, "new_index": None, "after": m, "before": old,
                                 "size_mm": m["d"]})

    # -------------------------------------------------------------- rendering

    def render_skin(self):
        """The skin albedo (linear RGB) of the world without moles and hair."""
        rng = self.rw
        h, w, wmm = self.wh, self.ww, self.wmm
        px = lambda mm: mm / wmm
        lum = np.ones((h, w), np.float32)
        lum += 0.04 * smooth_noise(rng, h, w, px(45))
        lum += 0.02 * smooth_noise(rng, h, w, px(8))
        lum += 0.025 * smooth_noise(rng, h, w, px(2.0))
        lum += 0.032 * smooth_noise(rng, h, w, max(1.3, px(0.45)))
        # skin lines: two families of short oriented streaks
        h2, w2 = (h + 1) // 2, (w + 1) // 2
        fine = smooth_noise(rng, h2, w2, max(1.0, px(0.25) / 2))
        lines = np.zeros((h2, w2), np.float32)
        ang = uni(rng, 0, math.pi)
        for fam in range(2):
            ang += uni(rng, 0.8, 1.4) * fam
            ln = max(3, int(px(1.6) / 2) | 1)
            k = np.zeros((ln, ln), np.float32)
            c = ln // 2
            cv2.line(k, (int(c - c * math.cos(ang)), int(c - c * math.sin(ang))),
                     (int(c + c * math.cos(ang)), int(c + c * math.sin(ang))), 1.0, 1)
            k /= k.sum()
            lines += cv2.filter2D(fine, -1, k) * math.sqrt(ln)
        lum += 0.01 * cv2.resize(lines, (w, h), interpolation=cv2.INTER_LINEAR)
        # pores: sparse small dark dots
        n = int(h * w * wmm * wmm * uni(rng, 0.4, 1.2))
        pores = np.zeros((h, w), np.float32)
        pores[rng.integers(0, h, n), rng.integers(0, w, n)] = rng.uniform(0.5, 1.0, n).astype(np.float32)
        sig = max(0.5, px(0.08))
        pores = cv2.GaussianBlur(pores, (0, 0), sig) * (2 * math.pi * sig * sig)
        lum *= 1.0 - uni(rng, 0.08, 0.2) * np.minimum(pores, 1.5)
        # redness blotches, uneven pigment, veins
        red = np.maximum(0.0, smooth_noise(rng, h, w, px(25)) + 0.5 * smooth_noise(rng, h, w, px(6)) - uni(rng, 0.3, 1.2))
        red *= uni(rng, 0.01, 0.04)
        red += uni(rng, 0.0, 0.04)
        pig = uni(rng, 0.02, 0.08) * smooth_noise(rng, h, w, px(30))
        vein = np.zeros((h // 4 + 1, w // 4 + 1), np.float32)
        if self.lightness > 0.25:
            for _ in range(int(rng.integers(1, 6))):
                pts = [(uni(rng, 0, w / 4), uni(rng, 0, h / 4))]
                a = uni(rng, 0, 2 * math.pi)
                for _s in range(12):
                    a += rng.normal(0, 0.35)
                    stp = px(15) / 4
                    pts.append((pts[-1][0] + stp * math.cos(a), pts[-1][1] + stp * math.sin(a)))
                cv2.polylines(vein, [np.array(pts, np.int32)], False, uni(rng, 0.3, 1.0), max(1, int(px(2.5) / 4)))
            vein = cv2.GaussianBlur(vein, (0, 0), max(1.0, px(1.5) / 4))
            vein = cv2.resize(vein, (w, h), interpolation=cv2.INTER_LINEAR) * uni(rng, 0.05, 0.2)
        else:
            vein = None
        skin = np.empty((h, w, 3), np.float32)
        for c in range(3):
            fac = 1.0 - red * OD_HAEM[c] - pig * OD_TAN[c]
            if vein is not None:
                fac = fac - vein * OD_VEIN[c]
            skin[..., c] = (self.base[c] * lum) * np.maximum(fac, 0.2)
        for f in self.freckles:
            render_blob(skin, f, (self.u_min, self.v_min), wmm)
        return skin

    def world_for(self, skin, k):
        """World albedo of photo k: tan, moles (with their state at k) and hair."""
        world = skin * self.tan if k == 1 else skin.copy()
        tan = self.tan if k == 1 else None
        for m in (self.cur_moles + self.new_lesions if k == 1 else self.moles):
            render_blob(world, m, (self.u_min, self.v_min), self.wmm, tan)
        cov = np.zeros(world.shape[:2], np.uint8)
        classes = {}
        for hr in self.hairs:
            cls = min(4, max(1, int(round(4 * hr[6] * min(1.0, hr[5] / self.wmm)))))
            u, v = self.hair_polyline(hr, k)
            pts = np.stack([(u - self.u_min) / self.wmm, (v - self.v_min) / self.wmm], -1) * 16
            classes.setdefault(cls, []).append(pts.astype(np.int32))
        for cls, lines in sorted(classes.items()):
            cv2.polylines(cov, lines, False, int(63 * cls), 1, cv2.LINE_AA, 4)
        idx = np.nonzero(cov)
        if idx[0].size:
            a = (cov[idx].astype(np.float32) / 255.0)[:, None]
            world[idx] *= 1.0 - a * (1.0 - self.hair_t[None, :])
        return world

    def render_background(self, k, W, H, L):
        bg = self.bg
        hs, ws = H // 4, W // 4
        yy, xx = np.mgrid[0:hs, 0:ws].astype(np.float32)
        X = (xx * 4 + 1.5 - W / 2) / L
        Y = (yy * 4 + 1.5 - H / 2) / L
        tx, ty, rot, sc = self.bg_tf[k]
        cr, sr = math.cos(rot), math.sin(rot)
        Xb = (cr * X + sr * Y) * sc * 0.85 + tx
        Yb = (-sr * X + cr * Y) * sc * 0.85 + ty
        g, ga = bg["grad"]
        bri = bg["light"] * (1.0 + g * (Xb * math.cos(ga) + Yb * math.sin(ga)))
        nz = cv2.remap(bg["noise"], ((Xb + 1) * 5.5).astype(np.float32), ((Yb + 1) * 5.5).astype(np.float32),
                       cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        bri = bri * (1.0 + 0.03 * nz)
        col = np.broadcast_to(bg["col"], (hs, ws, 3)).copy()
        if bg["kind"] == "curtain":
            ph = 2 * math.pi * (Xb / bg["P"] + bg["phase"]) + 1.5 * np.sin(2 * math.pi * Xb / (3.1 * bg["P"])) + 0.3 * Yb / bg["P"] * bg["ang"]
            bri = bri * (1.0 + 0.22 * np.sin(ph))
        elif bg["kind"] == "blinds":
            q = (Yb + bg["ang"] * Xb) / bg["P"] + bg["phase"]
            f = q - np.floor(q)
            gap = smoothstep((f - (1 - bg["gap"])) / 0.08) * smoothstep((1.0 - f) / 0.02 + 0.5)
            bri = bri * (1.0 - 0.55 * gap) * (0.9 + 0.1 * f)
        elif bg["kind"] == "door":
            edge = Xb - bg["x0"]
            t = smoothstep(edge / 0.004 + 0.5)[..., None]
            col = col * (1 - t) + bg["col2"] * t
            bri = bri * (1.0 - 0.5 * np.exp(-(edge / 0.006) ** 2))
        if bg["furn"] is not None:
            fc, fa, fo = bg["furn"]
            d = Xb * math.cos(fa) + Yb * math.sin(fa) - fo
            t = smoothstep(d / 0.01 + 0.5)[..., None]
            col = col * (1 - t) + fc * t * 0.8
        img = (col * bri[..., None]).astype(np.float32)
        img = cv2.GaussianBlur(img, (0, 0), bg["blur"])
        return cv2.resize(img, (W, H), interpolation=cv2.INTER_LINEAR)

    def render_photo(self, k, skin):
        """Photo k as JPEG bytes, and its mm per pixel at the image centre."""
        cam, body = self.cams[k], self.body
        W, H, L = cam.W, cam.H, max(cam.W, cam.H)
        rng = np.random.default_rng([int(self.seed), int(self.index), 77, k])
        world = self.world_for(skin, k)
        # Everything smooth is computed on a coarse grid (every 8 px, padded by one cell so
        # that the bilinear upsampling is exact up to the borders): world coordinates of each
        # pixel, silhouette and clothing distances, shading, the shadow-band phase.
        st = 8
        nx, ny = W // st + 2, H // st + 2
        xs = st * (np.arange(nx) - 1) + (st - 1) / 2.0
        ys = st * (np.arange(ny) - 1) + (st - 1) / 2.0
        X, Y = np.meshgrid(xs, ys)
        u, v = cam.px_to_world(X, Y)
        mmpp = 1.0 / float(cam.px_per_mm(*cam.px_to_world(np.array((W - 1) / 2.0), np.array((H - 1) / 2.0))))
        bsd = body.sd(u, v)
        csd = np.full_like(u, -1e3)
        cshade = np.ones_like(u)
        for c in self.cloth[k]:
            sd, t = c.sd(u, v, bsd)
            fold = 1.0 + 0.12 * np.sin(t / 9.0 + c.wave[2]) * np.sin(t / 23.0)
            if c.kind == "strap":  # a band is rounded across its width
                fold = fold * (1.0 - 0.25 * np.clip(1.0 - sd / c.half_w, 0.0, 1.0) ** 2)
            cshade = np.where(sd > csd, fold, cshade)
            csd = np.maximum(csd, sd)
        nu, nv, nz = body.normal(u, v)
        el, az, amb = self.lights[k]
        Lx, Ly, Lz = math.sin(el) * math.cos(az), math.sin(el) * math.sin(az), math.cos(el)
        lam = np.maximum(0.0, nu * Lx + nv * Ly + nz * Lz) / max(Lz, 0.55)
        hx, hy, hz = Lx, Ly, Lz + 1.0
        hn = math.sqrt(hx * hx + hy * hy + hz * hz)
        ks, kp = self.spec
        spec = ks * np.maximum(0.0, (nu * hx + nv * hy + nz * hz) / hn) ** kp
        occ = body.occlusion(u, v) * (1.0 - 0.25 * np.exp(-np.maximum(0.0, -csd) / 2.5) * (csd > -1e2))
        stp = self.stripes[k]
        if stp is not None:  # bands bend over the relief of the body
            q = ((u * math.cos(stp["ang"]) + v * math.sin(stp["ang"])) + stp["bend"] * body.z(u, v)) / stp["P"] + stp["phase"]
        else:
            q = np.zeros_like(u)

        def up(a):
            return np.ascontiguousarray(cv2.resize(np.asarray(a, np.float32), (st * nx, st * ny),
                                                   interpolation=cv2.INTER_LINEAR)[st:st + H, st:st + W])
        mapx, mapy = up((u - self.u_min) / self.wmm), up((v - self.v_min) / self.wmm)
        # pre-filter the world when this photo is much coarser than it
        ratio = mmpp / self.wmm
        if ratio > 1.3:
            world = cv2.GaussianBlur(world, (0, 0), 0.5 * math.sqrt(ratio * ratio - 1.3 * 1.3))
        img = cv2.remap(world, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        del world, mapx, mapy
        edge = 1.3 * mmpp
        a_fg = np.clip(up(bsd) * (1.0 / edge) + 0.5, 0, 1)
        lit = up(lam)
        if stp is not None:
            qq = up(q)
            f = qq - np.floor(qq)
            du = stp["duty"]
            dist = np.where(f < du, np.minimum(f, du - f), -np.minimum(f - du, 1.0 - f))
            sl = smoothstep(0.5 + dist * (stp["P"] / stp["soft"]))
            shade = stp["amb"] + (1.0 - stp["amb"]) * lit * sl
            spec_f = up(spec) * sl
        else:
            shade = amb + (1.0 - amb) * lit
            spec_f = up(spec)
        shade *= up(occ)
        # exposure and vignetting, folded into the per-pixel weights; with shadow bands the
        # camera's auto exposure brightens the picture (the lit bands come out bright)
        expo = self.expo[k]
        if stp is not None:
            expo /= (stp["duty"] + (1 - stp["duty"]) * stp["amb"]) ** 0.7
        yy = ((np.arange(H, dtype=np.float32) - H / 2) / L) ** 2
        xx = ((np.arange(W, dtype=np.float32) - W / 2) / L) ** 2
        gain = expo * (1.0 - (self.vignette[k] / 0.3125) * (yy[:, None] + xx[None, :]))
        add = None
        if self.cloth[k]:
            a_cl = np.clip(up(csd) * (1.0 / edge) + 0.5, 0, 1)
            a_fg = np.maximum(a_fg, a_cl)
            tex = 1.0 + self.cloth_tex * cv2.resize(smooth_noise(rng, H // 2, W // 2, 1.2), (W, H))
            w_cl = np.maximum(shade, 0.3) * tex * up(cshade) * a_cl * gain
            skin_w = (1.0 - a_cl) * a_fg * gain
            add = w_cl[..., None] * s2l(self.cloth[k][0].colour)[None, None, :]
        else:
            skin_w = a_fg * gain
        img *= (shade * skin_w)[..., None]
        spec_f *= skin_w
        bgi = self.render_background(k, W, H, L)
        bgi *= ((1.0 - a_fg) * gain)[..., None]
        img += bgi
        del bgi
        if add is not None:
            img += add
            del add
        img += spec_f[..., None]
        # optics blur, sensor noise, white balance + tone curve + gamma (one table), sharpening
        if self.blur[k] > 0.2:
            img = cv2.GaussianBlur(img, (0, 0), self.blur[k])
        a = self.noise[k]
        sd = cv2.sqrt(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) * a + a * 0.02)
        nl = noise_tiles(rng, H, W, 1, 1)
        nc = noise_tiles(rng, H, W, 3, 2)
        lut = tone_lut()
        chans = []
        for c in range(3):
            ch = img[..., c] + sd * (nl + 0.6 * nc[..., c])
            idx = np.clip(ch * (self.wb[k][c] * LUT_SCALE), 0, LUT_SIZE - 1).astype(np.int32)
            chans.append(lut[idx])
        del img
        out = cv2.merge(chans)
        if self.sharpen[k] > 0:
            out = cv2.addWeighted(out, 1 + self.sharpen[k], cv2.GaussianBlur(out, (0, 0), 1.2), -self.sharpen[k], 0)
        ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(out, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, self.quality[k]])
        assert ok
        return jpg.tobytes(), mmpp

    # -------------------------------------------------------------- truth

    def truth(self, mmpp):
        cams = self.cams
        out = {"seed": int(self.seed), "index": int(self.index), "strength": float(self.strength),
               "long_side": int(self.long_side),
               "part": self.part, "fitzpatrick": int(self.fitz), "skin_srgb": [round(float(c), 1) for c in self.tone]}
        for k, name in enumerate(("prev", "cur")):
            out[name] = {"file": name + ".jpg", "width": cams[k].W, "height": cams[k].H,
                         "mm_per_px": round(float(mmpp[k]), 5), "jpeg_quality": self.quality[k],
                         "blur_sigma": round(self.blur[k], 3), "exposure": round(self.expo[k], 3),
                         "shadow_bands": self.stripes[k] is not None}
        out["deformation_mm"] = round(self.dmax, 2)
        # every lesion: (kind, state at prev or None, state at cur or None, key)
        items = [("mole", m, self.cur_moles[i], ("m", i)) for i, m in enumerate(self.moles)]
        items += [(m["kind"], None, m, ("n", i)) for i, m in enumerate(self.new_lesions)]
        items += [("freckle", f, f, ("f", i)) for i, f in enumerate(self.freckles) if f["d"] >= 1.0]
        geo = []
        for _, bp, bc, _ in items:
            gp = blob_geometry(bp) if bp is not None else None
            geo.append([gp, gp if bc is bp else (blob_geometry(bc) if bc is not None else None)])
        pos = []
        for k in (0, 1):
            u = np.array([g[k][1][0] if g[k] else 0.0 for g in geo])
            v = np.array([g[k][1][1] if g[k] else 0.0 for g in geo])
            vis, (x, y) = self.visible(k, u, v)
            ppm = cams[k].px_per_mm(u, v)
            pos.append((vis, x, y, ppm))
        moles = []
        ids = {}
        for j, (kind, bp, bc, key) in enumerate(items):
            vis = [bool(pos[k][0][j]) and geo[j][k] is not None for k in (0, 1)]
            if kind == "freckle" and not (vis[0] or vis[1]):
                continue
            mid = len(moles) + 1
            ids[key] = mid
            gref = geo[j][0] if geo[j][0] is not None else geo[j][1]
            e = {"id": mid, "kind": kind, "diameter_mm": round(gref[0], 3)}
            if geo[j][0] is not None and geo[j][1] is not None and abs(geo[j][1][0] - geo[j][0][0]) > 1e-6:
                e["cur_diameter_mm"] = round(geo[j][1][0], 3)
            for k, nm in ((0, "prev"), (1, "cur")):
                if geo[j][k] is None:
                    e[nm + "_center"] = None
                    continue
                e[nm + "_center"] = [round(float(pos[k][1][j]), 2), round(float(pos[k][2][j]), 2)] if vis[k] else None
                e[nm + "_diameter_px"] = round(geo[j][k][0] * float(pos[k][3][j]), 2)
            e["visible_in_both"] = vis[0] and vis[1]
            moles.append(e)
        out["moles"] = moles
        changes = []
        for c in self.changes:
            b = c["after"]
            d, (cu, cv), (ou, ov) = blob_geometry(b)
            if c["before"] is not None:
                _, _, (pu, pv) = blob_geometry(c["before"])
                ou, ov = np.concatenate([ou, pu]), np.concatenate([ov, pv])
            x, y = cams[1].world_to_px(np.array(cu), np.array(cv))
            bx, by = cams[1].world_to_px(ou, ov)
            ch = {"kind": c["kind"],
                  "mole_id": ids[("m", c["mole_index"])] if c["mole_index"] is not None else None,
                  "cur_center": [round(float(x), 2), round(float(y), 2)],
                  "cur_box": [round(float(bx.min()), 1), round(float(by.min()), 1), round(float(bx.max()), 1), round(float(by.max()), 1)],
                  "size_mm": round(float(c["size_mm"]), 3), "size_bin": size_bin(float(c["size_mm"]))}
            if c["new_index"] is not None:
                ch["new_id"] = ids[("n", c["new_index"])]
            if c["before"] is not None:
                ch["before_diameter_mm"] = round(float(c["before"]["d"]), 3)
            if "second" in b:
                ch["colour"] = b["second"]
            changes.append(ch)
        out["changes"] = changes
        out["changed"] = bool(changes)
        return out


def generate_pair(seed, index=0, strength=1.0, long_side=2000):
    """Render one pair. Returns (prev_jpeg_bytes, cur_jpeg_bytes, truth dict)."""
    p = Pair(seed, index, strength, long_side)
    skin = p.render_skin()
    prev, mm0 = p.render_photo(0, skin)
    cur, mm1 = p.render_photo(1, skin)
    return prev, cur, p.truth((mm0, mm1))


def write_pair(out_dir, seed, index=0, strength=1.0, long_side=2000):
    """Write out_dir/pair-NNNN/{prev.jpg,cur.jpg,truth.json}; returns that folder."""
    prev, cur, truth = generate_pair(seed, index, strength, long_side)
    d = os.path.join(out_dir, "pair-%04d" % index)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "prev.jpg"), "wb") as f:
        f.write(prev)
    with open(os.path.join(d, "cur.jpg"), "wb") as f:
        f.write(cur)
    with open(os.path.join(d, "truth.json"), "w") as f:
        json.dump(truth, f, indent=1)
    return d


def _job(args):
    cv2.setNumThreads(1)
    t = time.time()
    d = write_pair(*args)
    return d, time.time() - t


def generate(out, pairs, seed, strength=1.0, long_side=2000, first=0, jobs=1):
    """Write pairs first..first+pairs-1; returns the list of pair folders."""
    os.makedirs(out, exist_ok=True)
    tasks = [(out, seed, i, strength, long_side) for i in range(first, first + pairs)]
    if jobs <= 1:
        res = [_job(t) for t in tasks]
    else:
        with mp.get_context("fork").Pool(jobs) as pool:
            res = pool.map(_job, tasks, chunksize=1)
    return [d for d, _ in res], [t for _, t in res]


def contact_sheet(dirs, path, width=1800):
    """A PNG: per pair, previous and current side by side with the truth drawn on."""
    rows = []
    for d in dirs:
        tr = json.load(open(os.path.join(d, "truth.json")))
        ims = []
        for nm in ("prev", "cur"):
            im = cv2.imread(os.path.join(d, nm + ".jpg"))
            for m in tr["moles"]:
                c = m[nm + "_center"]
                if c is not None and m["kind"] != "freckle":
                    cv2.circle(im, (int(c[0]), int(c[1])), int(m.get(nm + "_diameter_px", 10)) + 12, (0, 255, 0), 2)
            if nm == "cur":
                for ch in tr["changes"]:
                    x0, y0, x1, y1 = [int(v) for v in ch["cur_box"]]
                    cv2.rectangle(im, (x0 - 15, y0 - 15), (x1 + 15, y1 + 15), (0, 0, 255), 3)
            h = 600
            ims.append(cv2.resize(im, (int(im.shape[1] * h / im.shape[0]), h), interpolation=cv2.INTER_AREA))
        row = np.hstack([ims[0], np.full((600, 10, 3), 255, np.uint8), ims[1]])
        label = "%s %s F%d %s" % (os.path.basename(d), tr["part"], tr["fitzpatrick"], ",".join(c["kind"] for c in tr["changes"]) or "-")
        cv2.putText(row, label, (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (0, 255, 255), 2)
        rows.append(row)
    w = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 10), (0, w - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    sheet = np.vstack(rows)
    if sheet.shape[1] > width:
        sheet = cv2.resize(sheet, (width, int(sheet.shape[0] * width / sheet.shape[1])), interpolation=cv2.INTER_AREA)
    cv2.imwrite(path, sheet)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--pairs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--strength", type=float, default=1.0)
    ap.add_argument("--long-side", type=int, default=2000)
    ap.add_argument("--first", type=int, default=0, help="index of the first pair")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--sheet", help="also write a PNG contact sheet of the pairs")
    a = ap.parse_args(argv)
    t0 = time.time()
    dirs, times = generate(a.out, a.pairs, a.seed, a.strength, a.long_side, a.first, a.jobs)
    print("wrote %d pairs to %s in %.1f s (%.2f s per pair, median)" % (len(dirs), a.out, time.time() - t0,
                                                                       float(np.median(times)) if times else 0.0))
    if a.sheet:
        contact_sheet(dirs, a.sheet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
