"""Rich progress for long runs; `quiet=True` silences it."""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def cpu_seconds() -> float:
    """User + system CPU seconds of this process (all its threads) and of its waited-for children."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


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
        # the process's peak resident memory (MiB) at the end of each stage: ru_maxrss only grows, so
        # a stage whose value is above the previous stage's raised the peak
        self.peak_rss_mib: dict[str, float] = {}
        # CPU seconds (user + system, this process's threads and its finished children) per stage:
        # on a machine shared with other jobs they vary less than the wall time
        self.cpu_seconds: dict[str, float] = {}

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
        t0, c0 = time.perf_counter(), cpu_seconds()
        try:
            yield
        finally:
            timings[name] = time.perf_counter() - t0
            self.peak_rss_mib[name] = round(peak_rss_mib(), 1)
            self.cpu_seconds[name] = round(cpu_seconds() - c0, 3)
            if self._progress is not None:
                self._progress.advance(self._task)
