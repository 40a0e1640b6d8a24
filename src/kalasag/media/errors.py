"""The one exception class of the media room: a one-line message the CLI prints as `error: …`."""

from __future__ import annotations


class MediaError(ValueError):
    """Bad media input, a bad hash list line, or a bad state directory (one-line message)."""
