"""One fixed decode-and-hash path: Pillow → RGB uint8 → pdqhash (images); PyAV → rgb24 → pdqhash (video).

The same file always gives the same hashes: no resizing before PDQ, no EXIF rotation (list
providers hash the stored pixels with the same pdqhash + Pillow path; dihedral query variants
cover rotated copies), first frame only for multi-frame images. Only hashes, sizes, timestamps and
digests leave this module — never pixels.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kalasag.media.errors import MediaError

PDQ_HEX_RE = re.compile(r"^[0-9a-f]{64}$")
HASHER_VERSION = "pdqhash-0.2.8+pillow-rgb"  # recorded with banked hashes
_TEXT_DEMUXERS = {"tty", "bin", "xbin", "adf", "idf"}


def _pdqhash():
    try:
        import pdqhash
    except ImportError as exc:  # pragma: no cover - install problem, not input
        raise MediaError(f"pdqhash is not installed ({exc}); run `make install`") from None
    return pdqhash


# ---------------------------------------------------------------- hash values

def bits_to_bytes(bits: np.ndarray) -> bytes:
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes()


def hex_to_bytes(text: str) -> bytes:
    value = text.strip().lower()
    if not PDQ_HEX_RE.match(value):
        raise MediaError(f"not a PDQ hash (64 hex characters): {text.strip()[:80]!r}")
    return bytes.fromhex(value)


def hamming(a: bytes | str, b: bytes | str) -> int:
    ab = hex_to_bytes(a) if isinstance(a, str) else a
    bb = hex_to_bytes(b) if isinstance(b, str) else b
    return int(np.unpackbits(np.frombuffer(ab, np.uint8) ^ np.frombuffer(bb, np.uint8)).sum())


def pdq_rgb(rgb: np.ndarray) -> tuple[bytes, int]:
    """PDQ of an H×W×3 uint8 RGB array → (32 bytes, quality 0-100)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < 5:
        raise MediaError(f"image too small or not RGB for PDQ (shape {rgb.shape}; PDQ needs at least 5×5)")
    bits, quality = _pdqhash().compute(np.ascontiguousarray(rgb, dtype=np.uint8))
    return bits_to_bytes(bits), int(quality)


def pdq_rgb_dihedral(rgb: np.ndarray) -> tuple[list[bytes], int]:
    """The eight rotations/flips from one DCT (pdqhash order, see DIHEDRAL_NAMES)."""
    hashes, quality = _pdqhash().compute_dihedral(np.ascontiguousarray(rgb, dtype=np.uint8))
    return [bits_to_bytes(h) for h in hashes], int(quality)


# ---------------------------------------------------------------- files

def file_digests(path: str | Path) -> tuple[str, str]:
    md5, sha = hashlib.md5(), hashlib.sha256()  # noqa: S324 - MD5 is an exact-match list format
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            md5.update(chunk)
            sha.update(chunk)
    return md5.hexdigest(), sha.hexdigest()


def _check_file(path: Path) -> None:
    if not path.exists():
        raise MediaError(f"{path}: no such file")
    if path.is_dir():
        raise MediaError(f"{path}: is a directory, not a media file")


def load_rgb(path: str | Path) -> np.ndarray:
    """Decode an image file to an RGB uint8 array (first frame; alpha dropped as Pillow does)."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    _check_file(path)
    try:
        with Image.open(path) as img:
            img.seek(0)
            return np.asarray(img.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise MediaError(f"{path}: cannot decode image ({' '.join(str(exc).split())})") from None


def detect_kind(path: str | Path) -> str:
    """'image' if Pillow identifies the file, else 'video' if PyAV finds a video stream."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    _check_file(path)
    try:
        with Image.open(path):
            return "image"
    except (UnidentifiedImageError, OSError):
        pass
    import av

    try:
        with av.open(str(path)) as container:
            # FFmpeg renders text files as video (tty/bin demuxers): those are not media
            if container.streams.video and container.format.name not in _TEXT_DEMUXERS:
                return "video"
    except (av.error.FFmpegError, OSError, ValueError):
        pass
    raise MediaError(f"{path}: not an image or video that Kalasag can decode")


@dataclass(frozen=True)
class ImageHash:
    path: str
    pdq: bytes
    quality: int
    md5: str
    sha256: str
    width: int
    height: int

    @property
    def pdq_hex(self) -> str:
        return self.pdq.hex()


def hash_image(path: str | Path) -> ImageHash:
    rgb = load_rgb(path)
    pdq, quality = pdq_rgb(rgb)
    md5, sha = file_digests(path)
    return ImageHash(str(path), pdq, quality, md5, sha, int(rgb.shape[1]), int(rgb.shape[0]))


# ---------------------------------------------------------------- video

@dataclass(frozen=True)
class FrameHash:
    timestamp: float  # seconds from the start of the stream
    frame_number: int  # index among decoded frames
    pdq: bytes
    quality: int

    @property
    def pdq_hex(self) -> str:
        return self.pdq.hex()


@dataclass(frozen=True)
class VideoHash:
    path: str
    md5: str
    sha256: str
    fps: float
    frames: list[FrameHash] = field(default_factory=list)
    width: int = 0
    height: int = 0


def iter_sampled_frames(source: str, fps: float, container=None) -> Iterator[tuple[float, int, np.ndarray]]:
    """Decode `source` with PyAV; yield (timestamp, frame_number, rgb) for the first frame at or after
    each multiple of 1/fps seconds (vPDQ's sampling). The RGB array never leaves the caller's loop."""
    import av

    own = container is None
    try:
        if own:
            container = av.open(source)
        if not container.streams.video:
            raise MediaError(f"{source}: has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        step = 1.0 / fps
        next_t = 0.0
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        for number, frame in enumerate(container.decode(stream)):
            t = float(frame.time) if frame.time is not None else number / rate
            if t + 1e-6 < next_t:
                continue
            yield t, number, frame.to_ndarray(format="rgb24")
            next_t = (math.floor(t / step + 1e-6) + 1) * step
    except av.error.FFmpegError as exc:
        raise MediaError(f"{source}: cannot decode video ({' '.join(str(exc).split())})") from None
    finally:
        if own and container is not None:
            container.close()


def hash_video(path: str | Path, fps: float = 1.0) -> VideoHash:
    path = Path(path)
    _check_file(path)
    frames: list[FrameHash] = []
    width = height = 0
    for t, number, rgb in iter_sampled_frames(str(path), fps):
        pdq, quality = pdq_rgb(rgb)
        height, width = int(rgb.shape[0]), int(rgb.shape[1])
        frames.append(FrameHash(round(t, 3), number, pdq, quality))
    if not frames:
        raise MediaError(f"{path}: no decodable video frames")
    md5, sha = file_digests(path)
    return VideoHash(str(path), md5, sha, fps, frames, width, height)
