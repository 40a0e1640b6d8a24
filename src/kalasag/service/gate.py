"""The gate: every call into the scorer and the store runs on one worker thread, one at a time.

The scorer's state and a Store instance are single-threaded by contract, and a submit must see the
state left by the previous one; so all calls are serialized. They run on a dedicated thread rather
than on the event loop, so that while a submit waits for the store's fsync the loop keeps reading
and parsing the next requests.

Group commit: submits that arrive while the worker is busy are queued and then handed to
`StreamScorer.submit` together, as one batch — one store transaction (one fsync) for many
requests. Each request keeps its own all-or-nothing guarantee: when the scorer rejects the combined
batch (nothing applied), the request that owns the bad transfer gets the rejection and the others are
submitted again without it. Results are identical to submitting the requests one after another in
arrival order (a txn_id repeated across two requests is a duplicate in the second).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from kalasag.service import trace
from kalasag.service.scorer import TransferRejected

log = logging.getLogger("kalasag.service")
T = TypeVar("T")


@dataclass
class Rejection:
    """One request's transfer was rejected; `index` is within that request."""

    index: int
    txn_id: str | None
    reason: str
    field: str | None
    message: str


class Gate:
    def __init__(self, scorer: Any, *, group_commit: bool = True, max_group_transfers: int = 5000,
                 observe_batch: Callable[[int], None] | None = None) -> None:
        self.scorer = scorer
        self.group_commit = group_commit
        self.max_group_transfers = max_group_transfers
        self._observe = observe_batch
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kalasag-scorer")
        self._pending: list[tuple[list[Mapping[str, Any]], asyncio.Future]] = []
        self._flushing = False
        self._idle: asyncio.Event | None = None
        # housekeeping (compaction slices, periodic snapshots) runs after the answers are sent,
        # not inside the submit that the answered requests wait for
        self._housekeeping = getattr(scorer, "housekeeping", None)
        if self._housekeeping is not None:
            scorer.defer_housekeeping = True
        self.submits = 0       # scorer.submit calls (a group commit counts once)
        self.requests = 0      # submit requests (HTTP bodies, NATS messages)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(*args) on the worker thread, after everything queued before it."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def submit(self, records: Sequence[Mapping[str, Any]]) -> list[Any] | Rejection:
        """Submit one request's transfers; returns the results or the Rejection (nothing applied)."""
        self.requests += 1
        if not self.group_commit:
            outcome = await self.call(self._submit_groups, [list(records)])
            self._after_submit()
            return outcome[0]
        loop = asyncio.get_running_loop()
        fut: asyncio.Future = loop.create_future()
        self._pending.append((list(records), fut))
        if not self._flushing:
            self._flushing = True
            loop.create_task(self._flush())
        return await fut

    async def _flush(self) -> None:
        try:
            while self._pending:
                take, total = 0, 0
                for recs, _ in self._pending:
                    if take and total + len(recs) > self.max_group_transfers:
                        break
                    take += 1
                    total += len(recs)
                groups, self._pending = self._pending[:take], self._pending[take:]
                try:
                    outcomes = await self.call(self._submit_groups, [g for g, _ in groups])
                except BaseException as exc:  # store down, bug: every request of the flush fails
                    for _, fut in groups:
                        if not fut.done():
                            fut.set_exception(exc)
                    if isinstance(exc, asyncio.CancelledError):
                        raise
                    continue
                for (_, fut), outcome in zip(groups, outcomes):
                    if not fut.done():
                        fut.set_result(outcome)
                self._after_submit()
        finally:
            self._flushing = False

    def _after_submit(self) -> None:
        """Queue the scorer's housekeeping behind the submit just answered (no one waits for it)."""
        if self._housekeeping is not None:
            fut = asyncio.get_running_loop().run_in_executor(self._executor, self._run_housekeeping)
            fut.add_done_callback(lambda f: f.cancelled() or f.exception())

    def _run_housekeeping(self) -> None:
        t0 = time.perf_counter()
        try:
            self._housekeeping()
        except Exception:  # noqa: BLE001 - the next round retries; scoring goes on
            log.exception("scorer housekeeping failed")
        if trace.TRACE_SLOW_MS:
            trace.slow("housekeeping", t0, getattr(self.scorer, "last_housekeeping", ""))

    def _submit_groups(self, groups: list[list[Mapping[str, Any]]]) -> list[list[Any] | Rejection]:
        """Worker thread: submit the groups as one batch, peeling off groups the scorer rejects."""
        if trace.TRACE_SLOW_MS:
            t0 = time.perf_counter()
            try:
                return self._submit_groups_(groups)
            finally:
                parts = getattr(self.scorer, "last_submit_parts", None)
                trace.slow("submit", t0, f"{sum(map(len, groups))} transfers in {len(groups)} requests"
                           + (f"; last scorer submit: validation {parts[0]} ms, log append {parts[1]} ms, "
                              f"folding in and results {parts[2]} ms" if parts else ""))
        return self._submit_groups_(groups)

    def _submit_groups_(self, groups: list[list[Mapping[str, Any]]]) -> list[list[Any] | Rejection]:
        outcomes: list[list[Any] | Rejection | None] = [None] * len(groups)
        live = [i for i, g in enumerate(groups) if g]
        for i, g in enumerate(groups):
            if not g:
                outcomes[i] = []
        while live:
            batch: list[Mapping[str, Any]] = []
            starts: list[int] = []
            for i in live:
                starts.append(len(batch))
                batch.extend(groups[i])
            self.submits += 1
            if self._observe is not None:
                self._observe(len(batch))
            try:
                results = self.scorer.submit(batch)
            except TransferRejected as exc:
                # which live group holds the bad transfer?
                k = max(j for j, s in enumerate(starts) if s <= exc.index)
                gi = live[k]
                outcomes[gi] = Rejection(exc.index - starts[k], exc.txn_id, exc.reason, exc.field, exc.message)
                live.pop(k)
                continue
            for k, gi in enumerate(live):
                outcomes[gi] = results[starts[k]:starts[k] + len(groups[gi])]
            break
        return outcomes  # type: ignore[return-value]

    def close(self) -> None:
        self._executor.shutdown(wait=True)
