#!/usr/bin/python3
"""Generate the bundled example sessions (synthetic skin, no real people).

Two checks of one person, six angles each. Between the checks only nuisances change
(exposure, white balance, a small shift, JPEG noise), except the `left` angle, where one
mole has grown and a new dark spot has appeared. Deterministic: a fixed seed per angle.

    /usr/bin/python3 examples/make_examples.py examples/data
"""
import os
import sys

import cv2
import numpy as np

ANGLES = ["front", "left", "right", "up", "down", "raised"]
W, H = 600, 800


def smooth_noise(rng, h, w, scale):
    small = rng.normal(0, 1, (max(2, h // scale), max(2, w // scale))).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def body(rng, angle_idx):
    """A skin-coloured body region on a plain background, with moles. Returns RGB float and mole list."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    cx, cy = W / 2 + rng.uniform(-30, 30), H / 2 + rng.uniform(-20, 20)
    ax, ay = W * rng.uniform(0.32, 0.42), H * rng.uniform(0.40, 0.47)
    mask = (((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2) <= 1.0
    mask = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 3)
    tone = np.array([224, 172, 140], np.float32) * rng.uniform(0.85, 1.05)
    shade = 1.0 + 0.06 * smooth_noise(rng, H, W, 80) + 0.02 * smooth_noise(rng, H, W, 8)
    skin = tone[None, None, :] * shade[..., None]
    skin += rng.normal(0, 2.0, skin.shape).astype(np.float32)
    bg = np.array([70, 80, 95], np.float32) + 4 * smooth_noise(rng, H, W, 100)[..., None]
    img = skin * mask[..., None] + bg * (1 - mask[..., None])
    moles = []
    for _ in range(6 + angle_idx % 3):
        for _try in range(50):
            x, y = rng.uniform(0.2, 0.8) * W, rng.uniform(0.2, 0.8) * H
            if mask[int(y), int(x)] > 0.99:
                break
        moles.append((x, y, rng.uniform(5, 11), rng.uniform(0.45, 0.7)))
    return img, mask, moles


def draw_moles(img, moles):
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    for x, y, r, dark in moles:
        d = np.sqrt((xx - x) ** 2 + (yy - y) ** 2)
        a = np.clip((r - d) / 2.0 + 0.5, 0, 1) * dark
        colour = np.array([95, 60, 45], np.float32)
        img[:] = img * (1 - a[..., None]) + colour * a[..., None]
    return img


def nuisance(img, rng):
    gain = rng.uniform(0.92, 1.08)
    wb = np.array([rng.uniform(0.97, 1.03), 1.0, rng.uniform(0.97, 1.03)], np.float32)
    out = img * gain * wb
    dx, dy = rng.uniform(-6, 6), rng.uniform(-6, 6)
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(out, m, (W, H), borderMode=cv2.BORDER_REFLECT)


def main(outdir):
    for check in (1, 2):
        os.makedirs(os.path.join(outdir, f"check{check}"), exist_ok=True)
    for i, angle in enumerate(ANGLES):
        rng = np.random.default_rng(1000 + i)
        base, mask, moles = body(rng, i)
        first = draw_moles(base.copy(), moles)
        later_moles = list(moles)
        if angle == "left":
            x, y, r, dark = later_moles[0]
            later_moles[0] = (x, y, r * 3.0, min(0.9, dark + 0.25))  # a mole that grew
            later_moles.append((W * 0.45, H * 0.55, 26.0, 0.85))      # a new dark spot
        second = draw_moles(base.copy(), later_moles)
        second = nuisance(second, np.random.default_rng(2000 + i))
        for check, img in ((1, first), (2, second)):
            rgb = np.clip(np.rint(img), 0, 255).astype(np.uint8)
            path = os.path.join(outdir, f"check{check}", f"{angle}.jpg")
            cv2.imwrite(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    print(f"wrote {len(ANGLES) * 2} images under {outdir}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "data"))
