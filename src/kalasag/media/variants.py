"""Query-time variants of an image, so copies that plain PDQ misses still match a banked hash.

Each variant is hashed with the same PDQ path; a match on any variant counts and the match report
names the variant. Variants are only ever computed on the *query* side (banked lists hold hashes of
originals only): PDQ's eight rotations/flips (one DCT), the image with uniform borders removed,
centre crops (added frames, overlays near the edge), reflect-padded "uncrops" (the query is a crop
of the original) and small rotations back towards upright.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kalasag.media.config import MediaConfig
from kalasag.media.hashing import pdq_rgb

@dataclass(frozen=True)
class Variant:
    name: str
    pdq: bytes
    quality: int


def unletterbox(rgb: np.ndarray, tolerance: int = 16, min_fraction: float = 0.01) -> np.ndarray | None:
    """Remove uniform borders (letterbox/pillarbox bars of any colour); None if there are none.

    A border row/column is one whose every pixel is within `tolerance` of the colour of the image's
    corner on that side. Borders thinner than `min_fraction` of the side are kept (noise)."""
    h, w = rgb.shape[:2]
    # look at most a third of each side in (bars wider than that are not letterboxing)
    img = rgb

    def run(lines: np.ndarray, ref: np.ndarray) -> int:
        # lines: (n, k, 3) sequence from the outside inwards
        lines = lines[: max(1, len(lines) // 3)].astype(np.int16)
        ok = (np.abs(lines - ref.astype(np.int16)).max(axis=(1, 2)) <= tolerance)
        bad = np.flatnonzero(~ok)
        return int(bad[0]) if bad.size else len(ok)

    top = run(img, img[0, 0])
    bottom = run(img[::-1], img[-1, -1])
    left = run(img.transpose(1, 0, 2), img[0, 0])
    right = run(img.transpose(1, 0, 2)[::-1], img[-1, -1])
    min_h, min_w = max(1, int(h * min_fraction)), max(1, int(w * min_fraction))
    top = top if top >= min_h else 0
    bottom = bottom if bottom >= min_h else 0
    left = left if left >= min_w else 0
    right = right if right >= min_w else 0
    if top + bottom == 0 and left + right == 0:
        return None
    if h - top - bottom < 8 or w - left - right < 8:
        return None  # (nearly) uniform image: nothing to un-letterbox
    return rgb[top : h - bottom, left : w - right]


def centre_crop(rgb: np.ndarray, keep: float) -> np.ndarray:
    h, w = rgb.shape[:2]
    ch, cw = max(5, round(h * keep)), max(5, round(w * keep))
    y, x = (h - ch) // 2, (w - cw) // 2
    return rgb[y : y + ch, x : x + cw]


def uncrop(rgb: np.ndarray, keep: float) -> np.ndarray:
    """Edge-pad so the image is the centre `keep` share of the result (undo a centre crop).
    Edge padding measured best among edge/reflect/symmetric (docs/media.md)."""
    h, w = rgb.shape[:2]
    ph, pw = round((h / keep - h) / 2), round((w / keep - w) / 2)
    return np.pad(rgb, ((ph, ph), (pw, pw), (0, 0)), mode="edge")


def _box_blur(a: np.ndarray, r: int, axis: int) -> np.ndarray:
    r = max(1, int(r))
    pad = [(0, 0)] * a.ndim
    pad[axis] = (r + 1, r)
    c = np.cumsum(np.pad(a, pad, mode="edge"), axis=axis)
    n = a.shape[axis]
    return (np.take(c, np.arange(2 * r + 1, 2 * r + 1 + n), axis=axis) - np.take(c, np.arange(n), axis=axis)) / (2 * r + 1)


def fill_holes(rgb: np.ndarray, valid: np.ndarray, radius: float) -> np.ndarray:
    """Fill pixels where `valid` is False by normalised convolution (a blur of the valid pixels
    divided by the blur of the mask; three box passes ≈ Gaussian). The blur is computed at a
    reduced scale (it is smooth anyway) and only replaces invalid pixels."""
    from PIL import Image

    h, w = rgb.shape[:2]
    scale = max(1, int(max(h, w) // 160))
    sh, sw = max(1, h // scale), max(1, w // scale)
    m_small = np.asarray(Image.fromarray(valid.astype(np.uint8) * 255).resize((sw, sh), Image.Resampling.BOX),
                         np.float32) / 255.0
    masked = rgb * valid[..., None].astype(np.uint8)
    f = np.asarray(Image.fromarray(masked).resize((sw, sh), Image.Resampling.BOX), np.float32)
    r = max(1, round(radius / scale / 2))
    for _ in range(3):
        f = _box_blur(_box_blur(f, r, 0), r, 1)
        m_small = _box_blur(_box_blur(m_small, r, 0), r, 1)
    fill = np.clip(f / np.maximum(m_small, 1e-4)[..., None], 0, 255).astype(np.uint8)
    fill = np.asarray(Image.fromarray(fill).resize((w, h), Image.Resampling.BILINEAR))
    return np.where(valid[..., None], rgb, fill)


def derotate(rgb: np.ndarray, degrees: float, fill: bool) -> np.ndarray:
    """Rotate about the centre (counter-clockwise, same canvas). With `fill`, the corners that
    carry no picture after turning a rotated copy back (both rotations' fill) are filled from
    nearby pixels instead of black."""
    from PIL import Image

    h, w = rgb.shape[:2]
    out = np.asarray(Image.fromarray(rgb).rotate(degrees, resample=Image.Resampling.BILINEAR, expand=False))
    if not fill:
        return out
    full = Image.fromarray(np.full((h, w), 255, np.uint8))
    valid = np.asarray(full.rotate(-degrees).rotate(degrees)) > 128
    return fill_holes(out, valid, 0.05 * max(h, w))


DIHEDRAL_OPS = {
    "original": lambda a: a,
    "rot90": lambda a: np.rot90(a, 1),
    "rot180": lambda a: np.rot90(a, 2),
    "rot270": lambda a: np.rot90(a, 3),
    "flip_h": lambda a: a[:, ::-1],
    "flip_v": lambda a: a[::-1],
    "transpose": lambda a: a.transpose(1, 0, 2),
    "transverse": lambda a: np.rot90(a, 2).transpose(1, 0, 2),
}


def query_variants(rgb: np.ndarray, cfg: MediaConfig) -> list[Variant]:
    """All variants of a query image, 'original' first."""
    out: list[Variant] = []
    h0, q0 = pdq_rgb(rgb)
    out.append(Variant("original", h0, q0))
    # every other variant is hashed at a working size (longest side <= variant_max_side): pdqhash
    # at full resolution costs ~30 ms per 1600 px image and a query has ~20 variants
    side = max(rgb.shape[:2])
    if side > cfg.variant_max_side:
        from PIL import Image

        f = cfg.variant_max_side / side
        size = (max(5, round(rgb.shape[1] * f)), max(5, round(rgb.shape[0] * f)))
        rgb = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BOX))
    # dihedral variants on the pixels (exact; pdqhash.compute_dihedral's DCT shortcut drifted up to
    # 64 bits on small images here, see docs/media.md)
    ops = list(DIHEDRAL_OPS.items())[1:] if cfg.dihedral else []
    for name, op in ops:
        h, q = pdq_rgb(op(rgb))
        out.append(Variant(name, h, q))
    if cfg.unletterbox:
        trimmed = unletterbox(rgb, cfg.unletterbox_tolerance, cfg.unletterbox_min_fraction)
        if trimmed is not None:
            h, q = pdq_rgb(trimmed)
            out.append(Variant("unletterbox", h, q))
    for keep in cfg.crops:
        h, q = pdq_rgb(centre_crop(rgb, keep))
        out.append(Variant(f"crop{round(keep * 100)}", h, q))
    for keep in cfg.uncrops:
        h, q = pdq_rgb(uncrop(rgb, keep))
        out.append(Variant(f"uncrop{round(keep * 100)}", h, q))
    for deg in cfg.rotations:
        for fill in (False, True):
            h, q = pdq_rgb(derotate(rgb, deg, fill))
            out.append(Variant(f"rotate{deg:+g}{'_fill' if fill else ''}", h, q))
    return out
