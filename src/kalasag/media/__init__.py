"""The media room: known-material matching with PDQ image and vPDQ-compatible video hashes.

Stores hashes, sizes, timestamps and file paths only — never image or video bytes, thumbnails or
frames. Entry points: hashing (`hash_image`, `hash_video`), query variants (`query_variants`), bank
variants and regions of images Kalasag banks itself (`banked_hashes`),
the exact range index (`PdqIndex`), hash lists (`read_list`, `MediaStore`), matching (`Matcher`)
and live mode (`watch`). See docs/media.md.
"""

from kalasag.media.config import MediaConfig, load_media_config
from kalasag.media.errors import MediaError
from kalasag.media.hashing import (
    FrameHash, ImageHash, VideoHash, detect_kind, hamming, hash_image, hash_video, hex_to_bytes, load_rgb, pdq_rgb,
)
from kalasag.media.index import PdqIndex
from kalasag.media.listio import ListEntry, read_list
from kalasag.media.matcher import FileMatch, Hit, Matcher
from kalasag.media.store import MediaStore, default_state_dir
from kalasag.media.variants import (
    Variant, bank_variants, banked_hashes, query_variants, region_variants, unletterbox,
)
from kalasag.media.watch import Alert, watch

__all__ = [
    "Alert", "FileMatch", "FrameHash", "Hit", "ImageHash", "ListEntry", "Matcher", "MediaConfig", "MediaError",
    "MediaStore", "PdqIndex", "Variant", "VideoHash", "bank_variants", "banked_hashes", "default_state_dir",
    "detect_kind", "hamming", "hash_image", "hash_video", "hex_to_bytes", "load_media_config", "load_rgb", "pdq_rgb",
    "query_variants", "read_list", "region_variants", "unletterbox", "watch",
]
