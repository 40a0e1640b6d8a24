"""Variants of an image, so copies that plain PDQ misses still match a banked hash.

Every variant is hashed with the same PDQ path; a match on any variant counts and the match report
names every variant that matched. Three kinds (docs/media.md, "Robustness"):

* **query variants** (`query_variants`), computed on the query only, so they work against any hash
  list, including hash-only lists imported from a clearinghouse: PDQ's eight rotations/flips, the
  image without uniform borders (all sides, rows only, columns only), the image enlarged back to the
  pixel scale of an original it may have been reduced from (`upscale2`), centre crops (an added frame),
  edge-padded "uncrops" (the query is a crop of the original), small rotations back towards upright
  with the empty corners filled, and the same rotations cropped to a banked crop level;
* **bank variants** (`bank_variants`), computed only when Kalasag banks media it hashes itself
  (`lists add`, `hash --bank-variants`): hashes of centre crops and of the bar-free image of the
  *banked* picture, stored as extra hashes of the same entry (never pixels);
* **regions** (`region_variants`), computed on both sides when the bank has them: four strips keeping
  2/3 of the picture (top, bottom, left, right) and 2×2 / 3×3 tiles; a banked entry matches through
  regions when enough regions match the region at the same position (a corner overlay spoils a few);
* **paired low-pass variant** (`lowpass`), computed on both sides when the bank has it: the picture
  reduced to a fixed size and blurred by a fixed share of its side, so what strong compression (or
  any other loss of fine detail) removes is removed on both sides before hashing; it is compared only
  with the banked `lowpass` hash of the same picture (blurred to blurred);
* **partial variants** (`partial_variants`, query only, so they work against hash-only lists): for a
  hypothesised unknown region U of the original (the border an uncrop adds, the corners a turn-back
  leaves empty, a corner box), the picture is hashed with several different fills of U; only the bits
  on whose value every fill agrees (the "reliable" bits, `mask`) are compared with banked originals,
  with a threshold scaled to their number (docs/media.md, "Partial matching").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kalasag.media.config import MediaConfig
from kalasag.media.hashing import _pdqhash, bits_to_bytes, pdq_rgb


@dataclass(frozen=True)
class Variant:
    name: str
    pdq: bytes
    quality: int
    mask: bytes | None = None  # partial variants: the bits to compare (1 = reliable); None = all 256


def unletterbox(rgb: np.ndarray, tolerance: int = 16, min_fraction: float = 0.01, axes: str = "both") -> np.ndarray | None:
    """Remove uniform borders (letterbox/pillarbox bars of any colour); None if there are none.

    A border row/column is one whose every pixel is within `tolerance` of the colour of the image's
    corner on that side. Borders thinner than `min_fraction` of the side are kept (noise). `axes`:
    "both", "rows" (top/bottom bars only) or "cols" (left/right bars only)."""
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
    top = top if top >= min_h and axes != "cols" else 0
    bottom = bottom if bottom >= min_h and axes != "cols" else 0
    left = left if left >= min_w and axes != "rows" else 0
    right = right if right >= min_w and axes != "rows" else 0
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
    return np.pad(rgb, _uncrop_pad(rgb.shape, keep), mode="edge")


def _uncrop_pad(shape: tuple[int, ...], keep: float) -> tuple[tuple[int, int], ...]:
    """np.pad widths that make a picture of `shape` the centre `keep` share of the result."""
    h, w = shape[:2]
    ph, pw = round((h / keep - h) / 2), round((w / keep - w) / 2)
    return ((ph, ph), (pw, pw), (0, 0))


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

    out = np.asarray(Image.fromarray(rgb).rotate(degrees, resample=Image.Resampling.BILINEAR, expand=False))
    return fill_corners(out, degrees) if fill else out


def fill_corners(turned: np.ndarray, degrees: float) -> np.ndarray:
    """Fill the corners of a picture turned back by `degrees` that hold nothing of it."""
    h, w = turned.shape[:2]
    return fill_holes(turned, turned_back_valid(h, w, degrees), 0.05 * max(h, w))


def turned_back_valid(h: int, w: int, degrees: float) -> np.ndarray:
    """The pixels of an h × w picture turned and then turned back by `degrees` that still hold it."""
    from PIL import Image

    full = Image.fromarray(np.full((h, w), 255, np.uint8))
    return np.asarray(full.rotate(-degrees).rotate(degrees)) > 128


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


def enlarge(rgb: np.ndarray, factor: float) -> np.ndarray:
    """The picture enlarged by `factor` (Lanczos). A reduced copy hashed at its own size is filtered
    differently by PDQ (its pre-filter is a box of about side/128 px, applied twice, then 64×64
    samples), so fine detail folds into other low-frequency bits; brought back to the pixel scale of
    the original it may come from, it is filtered and sampled like the original (docs/media.md)."""
    from PIL import Image

    h, w = rgb.shape[:2]
    size = (round(w * factor), round(h * factor))
    return np.asarray(Image.fromarray(np.ascontiguousarray(rgb)).resize(size, Image.Resampling.LANCZOS))


def inscribed_keep(h: int, w: int, degrees: float) -> float:
    """Largest share k such that the centred k·w × k·h rectangle stays inside the picture after it is
    turned by `degrees` about its centre on the same canvas (so it carries no empty corner)."""
    t = np.deg2rad(abs(degrees))
    return float(min(w / (w * np.cos(t) + h * np.sin(t)), h / (h * np.cos(t) + w * np.sin(t))))


def working_size(rgb: np.ndarray, max_side: int) -> np.ndarray:
    """The image with its longest side reduced to `max_side` (box filter); unchanged if smaller."""
    side = max(rgb.shape[:2])
    if side <= max_side:
        return rgb
    from PIL import Image

    f = max_side / side
    size = (max(5, round(rgb.shape[1] * f)), max(5, round(rgb.shape[0] * f)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BOX))


def _hash(name: str, rgb: np.ndarray) -> Variant:
    h, q = pdq_rgb(rgb)
    return Variant(name, h, q)


LOWPASS_SIDE = 256  # the low-pass variant is computed at this longest side (PDQ itself works at 64×64)
PAIRED = ("lowpass",)


def is_paired(name: str) -> bool:
    """Paired variants are compared only with the banked variant of the same name (blurred to blurred)."""
    return name in PAIRED


def lowpass(rgb: np.ndarray, sigma: float) -> np.ndarray:
    """The picture without its fine detail: reduced (area filter) to a longest side of LOWPASS_SIDE
    px, then Gaussian-blurred with a standard deviation of `sigma` × that side. Size-independent, so
    a resized copy gives the same picture; strong JPEG, noise and resampling mostly change detail
    finer than this, which PDQ's 64×64 sampling otherwise folds into its low-frequency bits."""
    from PIL import Image, ImageFilter

    h, w = rgb.shape[:2]
    f = LOWPASS_SIDE / max(h, w)
    size = (max(5, round(w * f)), max(5, round(h * f)))
    img = Image.fromarray(np.ascontiguousarray(rgb)).resize(size, Image.Resampling.BOX)
    return np.asarray(img.filter(ImageFilter.GaussianBlur(sigma * LOWPASS_SIDE)))


def lowpass_variant(rgb: np.ndarray, cfg: MediaConfig, quality: int) -> list[Variant]:
    """The `lowpass` hash ([] when `lowpass_sigma` is 0). It carries the quality of the picture it was
    computed from: the blur removes exactly the gradients PDQ's quality measures, so the picture, not
    its blurred copy, decides whether it is detailed enough to match (docs/media.md)."""
    if not cfg.lowpass_sigma:
        return []
    h, _ = pdq_rgb(lowpass(rgb, cfg.lowpass_sigma))
    return [Variant("lowpass", h, quality)]


def _unletterbox_variants(rgb: np.ndarray, cfg: MediaConfig) -> list[tuple[str, np.ndarray]]:
    """Bar-free versions: all sides, and (when different) top/bottom only and left/right only — so a
    letterboxed copy of a picture that has bars of its own is trimmed back to the picture with them."""
    full = unletterbox(rgb, cfg.unletterbox_tolerance, cfg.unletterbox_min_fraction)
    if full is None:
        return []
    out = [("unletterbox", full)]
    for axes in ("rows", "cols"):
        part = unletterbox(rgb, cfg.unletterbox_tolerance, cfg.unletterbox_min_fraction, axes)
        if part is not None and part.shape != full.shape:
            out.append((f"unletterbox_{axes}", part))
    return out


def query_variants(rgb: np.ndarray, cfg: MediaConfig) -> list[Variant]:
    """All whole-picture variants of a query image, 'original' first."""
    out = [_hash("original", rgb)]
    # every other variant is hashed at a working size (longest side <= variant_max_side): pdqhash
    # at full resolution costs ~30 ms per 1600 px image and a query has ~25 variants
    rgb = working_size(rgb, cfg.variant_max_side)
    # dihedral variants on the pixels (exact; pdqhash.compute_dihedral's DCT shortcut drifted up to
    # 64 bits on small images here, see docs/media.md)
    ops = list(DIHEDRAL_OPS.items())[1:] if cfg.dihedral else []
    for name, op in ops:
        out.append(_hash(name, op(rgb)))
    for f in cfg.upscales:
        out.append(_hash(f"upscale{f:g}", enlarge(rgb, f)))
    if cfg.unletterbox:
        out += [_hash(name, img) for name, img in _unletterbox_variants(rgb, cfg)]
    for keep in cfg.crops:
        out.append(_hash(f"crop{round(keep * 100)}", centre_crop(rgb, keep)))
    for keep in cfg.uncrops:
        out.append(_hash(f"uncrop{round(keep * 100)}", uncrop(rgb, keep)))
    levels = sorted(cfg.bank_crops, reverse=True)
    h, w = rgb.shape[:2]
    for deg in cfg.rotations:
        back = derotate(rgb, deg, False)
        out.append(_hash(f"rotate{deg:+g}_fill", fill_corners(back, deg)))
        # the same turn back, cropped to the largest banked crop level that has no empty corner:
        # compared with that banked crop it is the same picture (bank variants only)
        fit = inscribed_keep(h, w, deg)
        level = next((k for k in levels if k <= fit + 0.01), None)  # a 1 % sliver of corner is harmless
        if level is not None:
            out.append(_hash(f"rotate{deg:+g}_crop{round(level * 100)}", centre_crop(back, level)))
    out += lowpass_variant(rgb, cfg, out[0].quality)  # paired: compared only with a banked `lowpass`
    return out


def pdq_float(rgb: np.ndarray) -> tuple[np.ndarray, int]:
    """PDQ's 256 DCT values before thresholding (bit i = value i > their median) and the quality."""
    values, quality = _pdqhash().compute_float(np.ascontiguousarray(rgb, dtype=np.uint8))
    return np.asarray(values, np.float32), int(quality)


def reliable_bits(canvases: list[np.ndarray]) -> tuple[bytes, bytes, int, int]:
    """Hash each canvas (the same picture with different fills of an unknown region) → (the first
    fill's hash, the mask of the bits every fill agrees on, number of those bits, first quality)."""
    vals = [pdq_float(c) for c in canvases]
    bits = np.array([v > np.median(v) for v, _ in vals])
    mask = (bits == bits[0]).all(axis=0)
    return bits_to_bytes(bits[0]), bits_to_bytes(mask), int(mask.sum()), vals[0][1]


def _fills(canvas: np.ndarray, valid: np.ndarray, names: list[str], reflected: np.ndarray | None = None) -> list[np.ndarray]:
    """The canvas with its invalid pixels filled in each named way: `near` (normalised convolution,
    radius 5 % of the side), `far` (radius 20 %), `mean` (the mean colour of the valid pixels); for an
    uncrop also `edge` (the canvas itself: edge padding) and `reflect` (`reflected`, the mirrored
    padding, blurred with σ = 3 % of the side where it was invalid)."""
    from PIL import Image, ImageFilter

    side = max(valid.shape)
    out = []
    for name in names:
        if name == "edge" and reflected is not None:
            out.append(canvas)
        elif name == "reflect" and reflected is not None:
            blurred = np.asarray(Image.fromarray(reflected).filter(ImageFilter.GaussianBlur(0.03 * side)))
            out.append(np.where(valid[..., None], reflected, blurred))
        elif name == "near":
            out.append(fill_holes(canvas, valid, 0.05 * side))
        elif name == "far":
            out.append(fill_holes(canvas, valid, 0.20 * side))
        elif name == "mean":
            out.append(np.where(valid[..., None], canvas, canvas[valid].mean(axis=0).astype(np.uint8)))
        else:
            raise ValueError(f"unknown fill {name!r}")
    return out


def corner_boxes(h: int, w: int, share: float) -> dict[str, tuple[slice, slice]]:
    """The four corner boxes covering `share` of the area (same aspect as the picture)."""
    bh, bw = round(h * np.sqrt(share)), round(w * np.sqrt(share))
    return {"br": (slice(h - bh, h), slice(w - bw, w)), "bl": (slice(h - bh, h), slice(0, bw)),
            "tr": (slice(0, bh), slice(w - bw, w)), "tl": (slice(0, bh), slice(0, bw))}


def partial_variants(rgb: np.ndarray, cfg: MediaConfig) -> list[Variant]:
    """Partial (reliable-bit) variants of a query at working size: for each hypothesis of an unknown
    region U — the border of an uncrop (`partial_uncrops`), the empty corners of a turn-back
    (`partial_rotations`), a corner box of `partial_corner_share` of the area — the picture is hashed
    with U filled in several ways; a Variant carries the first fill's hash and the mask of the bits all
    fills agree on. Names: `uncrop90_partial`, `rotate-5_partial`, `corner_br_partial`."""
    if not cfg.partial_match:
        return []
    rgb = working_size(rgb, cfg.variant_max_side)
    h, w = rgb.shape[:2]
    fills = list(cfg.partial_fills)
    hyps: list[tuple[str, list[np.ndarray]]] = []
    for keep in cfg.partial_uncrops:
        pad = _uncrop_pad(rgb.shape, keep)
        (ph, _), (pw, _), _ = pad
        edge = np.pad(rgb, pad, mode="edge")
        valid = np.zeros(edge.shape[:2], bool)
        valid[ph : ph + h, pw : pw + w] = True
        canv = _fills(edge, valid, list(cfg.partial_uncrop_fills), np.pad(rgb, pad, mode="reflect"))
        hyps.append((f"uncrop{round(keep * 100)}_partial", canv))
    for deg in cfg.partial_rotations:
        back = derotate(rgb, deg, False)
        hyps.append((f"rotate{deg:+g}_partial", _fills(back, turned_back_valid(h, w, deg), fills)))
    if cfg.partial_corner_share:
        for corner, (ys, xs) in corner_boxes(h, w, cfg.partial_corner_share).items():
            valid = np.ones((h, w), bool)
            valid[ys, xs] = False
            hyps.append((f"corner_{corner}_partial", _fills(rgb, valid, fills)))
    out = []
    for name, canvases in hyps:
        pdq, mask, _, quality = reliable_bits(canvases)
        out.append(Variant(name, pdq, quality, mask))
    return out


def partial_threshold(bits: int, cfg: MediaConfig) -> int:
    """Distance on `bits` reliable bits that matches: match_distance scaled to the share of bits used
    times `partial_ratio_scale`; -1 (never) below `partial_min_bits`."""
    if bits < cfg.partial_min_bits:
        return -1
    return int(np.floor(cfg.match_distance * cfg.partial_ratio_scale * bits / 256))


def bank_variants(rgb: np.ndarray, cfg: MediaConfig) -> list[Variant]:
    """Extra whole-picture hashes of an image Kalasag banks itself: centre crops at `bank_crops`,
    the picture without uniform bars (if it has them) and the paired `lowpass` hash. Stored as hashes
    of the same entry."""
    quality = pdq_rgb(rgb)[1] if cfg.lowpass_sigma else 0
    rgb = working_size(rgb, cfg.variant_max_side)
    out = [_hash(f"crop{round(keep * 100)}", centre_crop(rgb, keep)) for keep in cfg.bank_crops]
    if cfg.unletterbox:
        trimmed = unletterbox(rgb, cfg.unletterbox_tolerance, cfg.unletterbox_min_fraction)
        if trimmed is not None:
            out.append(_hash("unletterbox", trimmed))
    return out + lowpass_variant(rgb, cfg, quality)


def region_boxes(h: int, w: int, cfg: MediaConfig) -> dict[str, tuple[int, int, int, int]]:
    """Named regions (y0, y1, x0, x1): strips keeping `region_strip` of the picture from each side,
    and the tiles of each `region_grids` n×n grid (names like 'top67', 'tile3:r2c0')."""
    out: dict[str, tuple[int, int, int, int]] = {}
    if cfg.region_strip:
        k = cfg.region_strip
        sh, sw = round(h * k), round(w * k)
        pct = round(k * 100)
        out[f"top{pct}"] = (0, sh, 0, w)
        out[f"bottom{pct}"] = (h - sh, h, 0, w)
        out[f"left{pct}"] = (0, h, 0, sw)
        out[f"right{pct}"] = (0, h, w - sw, w)
    for n in cfg.region_grids:
        for r in range(n):
            for c in range(n):
                out[f"tile{n}:r{r}c{c}"] = (r * h // n, (r + 1) * h // n, c * w // n, (c + 1) * w // n)
    return out


REGION_PREFIXES = ("top", "bottom", "left", "right", "tile")


def is_region(name: str) -> bool:
    """Region hashes are compared only with the same region of the other picture."""
    return name.startswith(REGION_PREFIXES)


def region_variants(rgb: np.ndarray, cfg: MediaConfig) -> list[Variant]:
    """PDQ of each named region (same names on the bank and the query side)."""
    rgb = working_size(rgb, cfg.variant_max_side)
    h, w = rgb.shape[:2]
    out = []
    for name, (y0, y1, x0, x1) in region_boxes(h, w, cfg).items():
        if y1 - y0 >= 8 and x1 - x0 >= 8:
            out.append(_hash(name, rgb[y0:y1, x0:x1]))
    return out


def banked_hashes(rgb: np.ndarray, cfg: MediaConfig) -> list[tuple[str, bytes, int]]:
    """The extra hashes Kalasag stores with an image it banks itself: bank variants and regions
    ((name, pdq, quality); empty when `bank_variants` is off). Hashes only — never pixels."""
    if not cfg.bank_variants:
        return []
    return [(v.name, v.pdq, v.quality) for v in bank_variants(rgb, cfg) + region_variants(rgb, cfg)]
