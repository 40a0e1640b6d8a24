"""Latency diagnostics, off by default: with KALASAG_TRACE_SLOW_MS=N (N > 0) the service logs
(WARNING) every scorer job, garbage-collector pass and SQLite WAL rewind that takes N ms or more, so
that a latency spike can be matched to its cause (docs/service.md, "Metrics")."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

log = logging.getLogger("kalasag.service")
TRACE_SLOW_MS = float(os.environ.get("KALASAG_TRACE_SLOW_MS", "0") or 0)


def slow(kind: str, t0: float, detail: str) -> None:
    """Log `kind` if it took TRACE_SLOW_MS or more since `t0` (time.perf_counter())."""
    ms = (time.perf_counter() - t0) * 1000
    if ms >= TRACE_SLOW_MS:
        log.warning("slow %s: %.1f ms (%s)", kind, ms, detail)


_gc_started = [0.0]


def gc_hook(phase: str, info: dict[str, Any]) -> None:
    """gc.callbacks hook (installed only when tracing): logs collections of TRACE_SLOW_MS or more."""
    if phase == "start":
        _gc_started[0] = time.perf_counter()
        return
    slow("gc", _gc_started[0], f"generation {info.get('generation')}, {info.get('collected')} collected")


def event(msg: str, *args: Any) -> None:
    """A landmark to match latency spikes against (a snapshot's start and end, a WAL rewind):
    WARNING while tracing (the trace's level), INFO otherwise."""
    log.log(logging.WARNING if TRACE_SLOW_MS else logging.INFO, msg, *args)
