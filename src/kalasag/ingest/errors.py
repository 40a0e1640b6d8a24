"""The one exception ingest raises for files it cannot read at all."""

from __future__ import annotations


class InputError(ValueError):
    """An input, mapping or FX file cannot be used: a one-line message naming the file and the fault.

    The CLI prints the message and exits non-zero; it never shows a traceback.
    """

    def __init__(self, message: str) -> None:
        # one line, whatever the cause's text looked like
        super().__init__(" ".join(str(message).split()))
