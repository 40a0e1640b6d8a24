"""Consume transfers from a NATS JetStream stream (`kalasag serve --nats URL --subject SUBJ`).

A durable pull consumer (explicit ack) fetches messages in batches. Each message — one transfer
object, ``{"transfers": [...]}``, a JSON array, or a pacs.008 XML document — is submitted through the
Gate like an HTTP request (all-or-nothing per message; group commit across messages), and acked only
after `StreamScorer.submit` returned, i.e. after its transfers are durable in the store. A message
delivered again (ack lost, ack_wait expired, the publisher sent it twice) carries txn_ids the log
has seen: the scorer reports them as duplicates, they are not counted again, and the message is
acked. A poison message (not decodable, or a transfer the validator rejects) is terminated (AckTerm:
JetStream never redelivers it), logged with its reason and counted; it never blocks the stream. A
store failure naks the message with a delay, so it is retried.

Several workers may share one durable consumer (and one PostgreSQL/Redis store): JetStream hands
each message to one of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import nats
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from kalasag.service.gate import Gate, Rejection
from kalasag.service.metrics import ServiceMetrics
from kalasag.service.payload import PayloadError, decode_message

log = logging.getLogger("kalasag.service")


class NatsError(RuntimeError):
    """NATS unreachable or misconfigured (one-line message)."""


@dataclass
class NatsCounts:
    acked: int = 0          # messages whose transfers were new (or partly new)
    duplicate: int = 0      # messages whose every transfer was already in the log
    terminated: int = 0     # poison messages
    retried: int = 0        # nak'd after a store failure


class NatsConsumer:
    def __init__(self, url: str, subject: str, *, stream: str | None = None, durable: str = "kalasag-scorer",
                 batch: int = 256, ack_wait_seconds: float = 30.0, fetch_timeout: float = 1.0,
                 create_stream: bool = True, retry_delay_seconds: float = 2.0) -> None:
        self.url, self.subject, self.stream, self.durable = url, subject, stream, durable
        self.batch, self.ack_wait, self.fetch_timeout = batch, ack_wait_seconds, fetch_timeout
        self.create_stream, self.retry_delay = create_stream, retry_delay_seconds
        self.counts = NatsCounts()
        self._nc: Any = None
        self._sub: Any = None
        self._task: asyncio.Task | None = None
        self._stopping = False
        self._gate: Gate | None = None
        self._metrics: ServiceMetrics | None = None

    async def start(self, gate: Gate, metrics: ServiceMetrics | None = None) -> None:
        self._gate, self._metrics = gate, metrics
        # nats-py retries the *first* connection forever when reconnects are unlimited: probe first
        parts = urlsplit(self.url if "://" in self.url else f"nats://{self.url}")
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname or "127.0.0.1", parts.port or 4222), 5)
            writer.close()
        except (OSError, asyncio.TimeoutError) as exc:
            raise NatsError(f"NATS not reachable at {self.url}: {exc.__class__.__name__} {exc}") from None

        async def on_error(exc: Exception) -> None:  # one line, no traceback
            log.warning("NATS: %s %s", exc.__class__.__name__, exc)

        async def on_disconnect() -> None:
            log.warning("NATS: disconnected from %s; reconnecting", self.url)

        try:
            self._nc = await asyncio.wait_for(nats.connect(
                self.url, connect_timeout=5, max_reconnect_attempts=-1, allow_reconnect=True,
                name=f"kalasag-{self.durable}", error_cb=on_error, disconnected_cb=on_disconnect), 15)
        except Exception as exc:  # noqa: BLE001 - nats-py raises several kinds
            raise NatsError(f"NATS not reachable at {self.url}: {exc.__class__.__name__} {exc}") from exc
        js = self._nc.jetstream()
        if self.stream is None:
            try:
                self.stream = await js.find_stream_name_by_subject(self.subject)
            except NotFoundError:
                if not self.create_stream:
                    raise NatsError(f"no JetStream stream holds subject '{self.subject}'") from None
                self.stream = "KALASAG_TRANSFERS"
        try:
            await js.stream_info(self.stream)
        except NotFoundError:
            if not self.create_stream:
                raise NatsError(f"JetStream stream '{self.stream}' does not exist") from None
            await js.add_stream(StreamConfig(name=self.stream, subjects=[self.subject], storage=StorageType.FILE))
            log.info("created JetStream stream %s for subject %s", self.stream, self.subject)
        cfg = ConsumerConfig(durable_name=self.durable, ack_policy=AckPolicy.EXPLICIT, ack_wait=self.ack_wait,
                             max_ack_pending=max(self.batch * 4, 1024))
        self._sub = await js.pull_subscribe(self.subject, durable=self.durable, stream=self.stream, config=cfg)
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="kalasag-nats")
        log.info("consuming %s (stream %s, durable %s) from %s", self.subject, self.stream, self.durable, self.url)

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            try:  # let the current batch finish (its acks go out), then the fetch loop ends
                await asyncio.wait_for(asyncio.shield(self._task), timeout=self.fetch_timeout + 10)
            except (asyncio.TimeoutError, Exception):  # noqa: BLE001
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._task
            self._task = None
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.flush(timeout=5)  # the last acks go out before the connection closes
            with contextlib.suppress(Exception):
                await self._nc.close()
            self._nc = None

    async def _run(self) -> None:
        while not self._stopping:
            try:
                msgs = await self._sub.fetch(self.batch, timeout=self.fetch_timeout)
            except (NatsTimeout, asyncio.TimeoutError):  # no message within fetch_timeout
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - connection trouble: nats-py reconnects; wait and retry
                log.warning("NATS fetch failed: %s %s", exc.__class__.__name__, exc)
                await asyncio.sleep(min(self.fetch_timeout, 1.0))
                continue
            await self.handle(msgs)

    async def handle(self, msgs: list[Any]) -> None:
        """Decode, submit (one group per message) and ack/term/nak each message."""
        assert self._gate is not None
        decoded: list[tuple[Any, list[dict[str, Any]]]] = []
        for msg in msgs:
            try:
                decoded.append((msg, decode_message(msg.data)))
            except PayloadError as exc:
                await self._poison(msg, exc.code, exc.message)
        if not decoded:
            return
        outcomes = await asyncio.gather(*(self._gate.submit(recs) for _, recs in decoded), return_exceptions=True)
        for (msg, _), outcome in zip(decoded, outcomes):
            if isinstance(outcome, Rejection):
                where = f"transfers[{outcome.index}]" + (f" (txn_id {outcome.txn_id})" if outcome.txn_id else "")
                field = f" field '{outcome.field}'" if outcome.field else ""
                await self._poison(msg, outcome.reason, f"{where}{field}: {outcome.message}")
            elif isinstance(outcome, BaseException):
                self.counts.retried += 1
                log.error("NATS message %s: submit failed (%s: %s); nak, retry in %.0f s", _seq(msg),
                          outcome.__class__.__name__, outcome, self.retry_delay)
                with contextlib.suppress(Exception):
                    await msg.nak(delay=self.retry_delay)
                if self._metrics is not None:
                    self._metrics.nats.labels("retried").inc()
            else:
                await msg.ack()  # after submit returned: the transfers are durable
                new = sum(1 for r in outcome if not r.duplicate)
                kind = "acked" if new else "duplicate"
                setattr(self.counts, kind, getattr(self.counts, kind) + 1)
                if self._metrics is not None:
                    self._metrics.nats.labels(kind).inc()
                    self._metrics.request_size.observe(len(outcome))
                    self._metrics.count_results(outcome, "nats")

    async def _poison(self, msg: Any, reason: str, message: str) -> None:
        self.counts.terminated += 1
        log.warning("NATS message %s on %s terminated (poison, not redelivered): %s: %s",
                    _seq(msg), msg.subject, reason, message)
        if self._metrics is not None:
            self._metrics.nats.labels("terminated").inc()
            self._metrics.rejected.labels("nats", reason).inc()
        with contextlib.suppress(Exception):
            await msg.term()


def _seq(msg: Any) -> str:
    try:
        return f"stream seq {msg.metadata.sequence.stream} (delivery {msg.metadata.num_delivered})"
    except Exception:  # noqa: BLE001
        return "?"
