"""Rich progress for long runs; `quiet=True` silences it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn


class Stages:
    """One bar across the stages of a run, each stage timed into a dict."""

    def __init__(self, *, quiet: bool, total: int, console: Console | None = None) -> None:
        self.quiet = quiet
        self.total = total
        self._progress = None if quiet else Progress(
            SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(), console=console or Console(stderr=True), transient=False,
        )
        self._task = None

    def __enter__(self) -> "Stages":
        if self._progress is not None:
            self._progress.start()
            self._task = self._progress.add_task("starting", total=self.total)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    @contextmanager
    def step(self, name: str, timings: dict[str, float]) -> Iterator[None]:
        if self._progress is not None:
            self._progress.update(self._task, description=name)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            timings[name] = time.perf_counter() - t0
            if self._progress is not None:
                self._progress.advance(self._task)
