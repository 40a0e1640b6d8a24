"""Benign transforms and generated benign images for measuring recall and false matches.

Used by bench/media_robustness.py (numbers in docs/media.md) and the tests. Generated images are
abstract compositions of shapes, gradients and smoothed noise from a seeded RNG.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def generated_image(seed: int, size: tuple[int, int] = (640, 480)) -> np.ndarray:
    """An abstract benign RGB image: gradient background, smoothed noise, random shapes."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.zeros((h, w, 3), np.float32)
    for c in range(3):
        a, b, k = rng.uniform(-1, 1, 3)
        base[..., c] = 128 + 90 * np.sin((a * xx / w + b * yy / h) * np.pi * (1 + 2 * abs(k)) + rng.uniform(0, 6))
    noise = rng.normal(0, 1, (h // 16 + 1, w // 16 + 1, 3)).astype(np.float32)
    noise_img = Image.fromarray(np.uint8(np.clip(128 + 60 * noise, 0, 255))).resize((w, h), Image.Resampling.BICUBIC)
    base = 0.6 * base + 0.4 * np.asarray(noise_img, np.float32)
    img = Image.fromarray(np.uint8(np.clip(base, 0, 255)))
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(8, 20))):
        x0, y0 = rng.uniform(-0.1, 1.0) * w, rng.uniform(-0.1, 1.0) * h
        x1, y1 = x0 + rng.uniform(0.05, 0.5) * w, y0 + rng.uniform(0.05, 0.5) * h
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        kind = int(rng.integers(0, 3))
        if kind == 0:
            draw.ellipse([x0, y0, x1, y1], fill=colour)
        elif kind == 1:
            draw.rectangle([x0, y0, x1, y1], fill=colour)
        else:
            draw.polygon([(x0, y0), (x1, y0 + rng.uniform(0, 0.3) * h), (x0 + rng.uniform(0, 0.3) * w, y1)], fill=colour)
    return np.asarray(img.filter(ImageFilter.GaussianBlur(1.0)))


def _pil(rgb: np.ndarray) -> Image.Image:
    return Image.fromarray(rgb)


def jpeg(rgb: np.ndarray, quality: int = 20) -> np.ndarray:
    buf = io.BytesIO()
    _pil(rgb).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))


def resize(rgb: np.ndarray, factor: float = 0.5) -> np.ndarray:
    h, w = rgb.shape[:2]
    return np.asarray(_pil(rgb).resize((max(5, round(w * factor)), max(5, round(h * factor))), Image.Resampling.BILINEAR))


def crop(rgb: np.ndarray, keep: float) -> np.ndarray:
    h, w = rgb.shape[:2]
    ch, cw = round(h * keep), round(w * keep)
    y, x = (h - ch) // 2, (w - cw) // 2
    return rgb[y : y + ch, x : x + cw].copy()


def letterbox(rgb: np.ndarray, share: float = 0.10) -> np.ndarray:
    """Black bars above and below, each `share` of the image height."""
    h, w = rgb.shape[:2]
    bar = np.zeros((round(h * share), w, 3), np.uint8)
    return np.concatenate([bar, rgb, bar], axis=0)


def overlay(rgb: np.ndarray, share: float = 0.10) -> np.ndarray:
    """An opaque caption box covering `share` of the area in the lower-right corner, with stripes."""
    h, w = rgb.shape[:2]
    side = np.sqrt(share)
    bh, bw = round(h * side), round(w * side)
    out = rgb.copy()
    out[h - bh :, w - bw :] = 240
    for y in range(h - bh + 4, h - 4, 10):
        out[y : y + 4, w - bw + 6 : w - 6] = 30
    return out


def rotate(rgb: np.ndarray, degrees: float) -> np.ndarray:
    """Rotation about the centre, same canvas, black corners."""
    return np.asarray(_pil(rgb).rotate(degrees, resample=Image.Resampling.BICUBIC, expand=False))


def mirror(rgb: np.ndarray) -> np.ndarray:
    return rgb[:, ::-1].copy()


def grey(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(_pil(rgb).convert("L").convert("RGB"))


TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "jpeg_q20": lambda x: jpeg(x, 20),
    "resize_50": lambda x: resize(x, 0.5),
    "crop_95": lambda x: crop(x, 0.95),
    "crop_90": lambda x: crop(x, 0.90),
    "letterbox_10": lambda x: letterbox(x, 0.10),
    "overlay_10": lambda x: overlay(x, 0.10),
    "rotate_2": lambda x: rotate(x, 2.0),
    "rotate_5": lambda x: rotate(x, 5.0),
    "mirror": mirror,
    "grey": grey,
}
