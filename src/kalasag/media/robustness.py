"""Benign transforms and generated benign images for measuring recall and false matches.

Used by bench/media_robustness.py (numbers in docs/media.md) and the tests. Generated images come
from a seeded RNG in five families: abstract compositions (gradient + smoothed noise + shapes),
smooth gradients, crisp flat shapes, noise/stripe textures, and rendered text pages (benign words).
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

FAMILIES = ("abstract", "gradient", "shapes", "texture", "text")
WORDS = (
    "river bridge garden market school window morning coffee bread table chair lamp paper pencil "
    "mountain cloud rain summer winter station train ticket library museum painting music guitar "
    "kitchen recipe tomato onion garlic rice noodle soup harbour boat island forest path stone "
    "letter number report invoice meeting office budget project schedule weather forecast north "
    "south east west street avenue corner shop bakery flower tree leaf orange apple banana yellow "
    "green blue purple silver golden quiet bright simple modern classic travel holiday weekend"
).split()


def _rgb_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(0, 256, 3))


def _abstract(rng: np.random.Generator, w: int, h: int) -> Image.Image:
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
        colour = _rgb_colour(rng)
        kind = int(rng.integers(0, 3))
        if kind == 0:
            draw.ellipse([x0, y0, x1, y1], fill=colour)
        elif kind == 1:
            draw.rectangle([x0, y0, x1, y1], fill=colour)
        else:
            draw.polygon([(x0, y0), (x1, y0 + rng.uniform(0, 0.3) * h), (x0 + rng.uniform(0, 0.3) * w, y1)], fill=colour)
    return img.filter(ImageFilter.GaussianBlur(1.0))


def _gradient(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """Smooth colour gradients: two linear gradients split by a soft wavy "horizon", a radial glow
    and a few soft discs (the smoothest family: many fall below PDQ quality 50)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    xx, yy = xx / w, yy / h

    def linear() -> np.ndarray:
        angle = rng.uniform(0, 2 * np.pi)
        t = np.clip((np.cos(angle) * (xx - 0.5) + np.sin(angle) * (yy - 0.5)) + 0.5, 0, 1)[..., None]
        return t * rng.uniform(0, 255, 3) + (1 - t) * rng.uniform(0, 255, 3)

    horizon = rng.uniform(0.3, 0.7) + 0.08 * np.sin(2 * np.pi * (rng.uniform(0.5, 3) * xx + rng.uniform(0, 1)))
    edge = 1 / (1 + np.exp(np.clip(-(yy - horizon) / rng.uniform(0.005, 0.05), -50, 50)))[..., None]
    out = linear() * (1 - edge) + linear() * edge
    cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.2, 0.8)
    radial = np.clip(1 - np.hypot(xx - cx, yy - cy) / r, 0, 1)[..., None]
    out = out * (1 - 0.5 * radial) + 0.5 * radial * rng.uniform(0, 255, 3)
    for _ in range(int(rng.integers(0, 4))):
        bx, by, br = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.03, 0.15)
        disc = (1 / (1 + np.exp(np.clip((np.hypot(xx - bx, yy - by) - br) / 0.01, -50, 50))))[..., None]
        out = out * (1 - disc) + disc * rng.uniform(0, 255, 3)
    return Image.fromarray(np.uint8(np.clip(out, 0, 255)))


def _shapes(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """Crisp flat shapes and lines on a plain background (no blur)."""
    img = Image.new("RGB", (w, h), _rgb_colour(rng))
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(3, 16))):
        x0, y0 = rng.uniform(-0.1, 0.9) * w, rng.uniform(-0.1, 0.9) * h
        x1, y1 = x0 + rng.uniform(0.05, 0.6) * w, y0 + rng.uniform(0.05, 0.6) * h
        colour = _rgb_colour(rng)
        kind = int(rng.integers(0, 5))
        if kind == 0:
            draw.ellipse([x0, y0, x1, y1], fill=colour)
        elif kind == 1:
            draw.rectangle([x0, y0, x1, y1], fill=colour)
        elif kind == 2:
            draw.rectangle([x0, y0, x1, y1], outline=colour, width=int(rng.integers(2, 12)))
        elif kind == 3:
            draw.line([(x0, y0), (x1, y1)], fill=colour, width=int(rng.integers(2, 20)))
        else:
            pts = [(float(rng.uniform(0, w)), float(rng.uniform(0, h))) for _ in range(int(rng.integers(3, 7)))]
            draw.polygon(pts, fill=colour)
    return img


def _texture(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """Multi-octave value noise mapped through random colours, or noisy stripes/checks."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    kind = int(rng.integers(0, 3))
    if kind == 0:  # fractal value noise
        v = np.zeros((h, w), np.float32)
        for octave in range(int(rng.integers(3, 6))):
            cells = 2 ** (octave + int(rng.integers(1, 3)))
            grid = rng.uniform(0, 1, (cells + 1, cells + 1)).astype(np.float32)
            up = Image.fromarray(grid).resize((w, h), Image.Resampling.BICUBIC)
            v += np.asarray(up, np.float32) / (1.6**octave)
    elif kind == 1:  # stripes with jitter
        a, f = rng.uniform(0, np.pi), rng.uniform(4, 40)
        v = np.sin(2 * np.pi * f * (np.cos(a) * xx / w + np.sin(a) * yy / h) + rng.uniform(0, 6))
        v += 0.5 * rng.normal(0, 1, (h, w)).astype(np.float32)
    else:  # checks / grid
        p = int(rng.integers(8, 64))
        v = (((xx // p) + (yy // p)) % 2).astype(np.float32) + 0.3 * rng.normal(0, 1, (h, w)).astype(np.float32)
    v = (v - v.min()) / max(1e-6, float(v.max() - v.min()))
    stops = rng.uniform(0, 255, (3, 3))
    t = v[..., None]
    out = np.where(t < 0.5, stops[0] + (stops[1] - stops[0]) * (t * 2), stops[1] + (stops[2] - stops[1]) * (t * 2 - 1))
    return Image.fromarray(np.uint8(np.clip(out, 0, 255)))


def _text(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """A page of benign words: light background, dark lines of text, sometimes a heading or two columns."""
    bg = tuple(int(v) for v in rng.integers(215, 256, 3))
    fg = tuple(int(v) for v in rng.integers(0, 70, 3))
    img = Image.new("RGB", (w, h), bg)
    draw = ImageDraw.Draw(img)
    size = int(rng.integers(12, 34))
    font = ImageFont.load_default(size=size)
    columns = 2 if rng.uniform() < 0.3 else 1
    margin = int(rng.integers(10, 50))
    col_w = (w - 2 * margin) // columns
    y = margin
    if rng.uniform() < 0.5:
        head = ImageFont.load_default(size=size * 2)
        draw.text((margin, y), " ".join(rng.choice(WORDS, int(rng.integers(1, 4)))).title(), font=head, fill=fg)
        y += size * 2 + 10
    top = y
    for c in range(columns):
        y = top
        x0 = margin + c * col_w
        while y < h - margin - size:
            line, n = "", int(rng.integers(3, 12))
            for word in rng.choice(WORDS, n):
                if draw.textlength(line + " " + word, font=font) > col_w - 10:
                    break
                line = (line + " " + word).strip()
            draw.text((x0, y), line, font=font, fill=fg)
            y += int(size * rng.uniform(1.2, 1.8))
            if rng.uniform() < 0.1:
                y += size  # paragraph break
    return img


_FAMILY_FUNCS = {"abstract": _abstract, "gradient": _gradient, "shapes": _shapes, "texture": _texture, "text": _text}


def generated_image(seed: int, size: tuple[int, int] = (640, 480), family: str = "abstract") -> np.ndarray:
    """A benign RGB image from a seeded RNG (`family` one of FAMILIES; default: abstract composition)."""
    if family not in _FAMILY_FUNCS:
        raise ValueError(f"unknown image family {family!r} (expected one of {', '.join(FAMILIES)})")
    rng = np.random.default_rng([seed, FAMILIES.index(family)] if family != "abstract" else seed)
    w, h = size
    return np.asarray(_FAMILY_FUNCS[family](rng, w, h).convert("RGB"))


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


def crop_corner(rgb: np.ndarray, keep: float) -> np.ndarray:
    """Keep the lower-right `keep` share of each side (an off-centre crop)."""
    h, w = rgb.shape[:2]
    return rgb[h - round(h * keep) :, w - round(w * keep) :].copy()


def overlay_centre(rgb: np.ndarray, share: float = 0.10) -> np.ndarray:
    """The striped caption box of `overlay`, in the middle of the picture."""
    h, w = rgb.shape[:2]
    side = np.sqrt(share)
    bh, bw = round(h * side), round(w * side)
    y, x = (h - bh) // 2, (w - bw) // 2
    out = rgb.copy()
    out[y : y + bh, x : x + bw] = 240
    for yy in range(y + 4, y + bh - 4, 10):
        out[yy : yy + 4, x + 6 : x + bw - 6] = 30
    return out


# Beyond the list, to show where the variants stop working (docs/media.md).
EXTRA_TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "jpeg_q10": lambda x: jpeg(x, 10),
    "jpeg_q30": lambda x: jpeg(x, 30),
    "resize_50_jpeg30": lambda x: jpeg(resize(x, 0.5), 30),
    "resize_75": lambda x: resize(x, 0.75),
    "crop_92": lambda x: crop(x, 0.92),
    "crop_90_jpeg50": lambda x: jpeg(crop(x, 0.90), 50),
    "crop_90_offcentre": lambda x: crop_corner(x, 0.90),
    "overlay_10_jpeg50": lambda x: jpeg(overlay(x, 0.10), 50),
    "overlay_centre_10": lambda x: overlay_centre(x, 0.10),
    "rotate_3": lambda x: rotate(x, 3.0),
    "rotate_-4": lambda x: rotate(x, -4.0),
}
