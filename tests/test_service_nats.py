"""The NATS JetStream consumer against the real server (127.0.0.1:4222; skipped when unreachable):
ack after durable submit, redelivered messages not counted twice, poison messages terminated without
blocking the stream. Each test makes its own stream and deletes it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import orjson
import pytest

from kalasag.model import load_config
from kalasag.service.gate import Gate
from kalasag.service.metrics import ServiceMetrics
from kalasag.service.nats_consumer import NatsConsumer
from kalasag.service.scorer import StreamScorer
from kalasag.service.sqlite_store import SQLiteStore
from service_helpers import nats_url, transfer, unique

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


async def wait_for(cond, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError("timed out waiting for the consumer")
        await asyncio.sleep(0.05)


class Bus:
    """A unique stream + subject on the real server, deleted afterwards."""

    def __init__(self, url: str) -> None:
        self.url = url
        tag = unique("")
        self.stream, self.subject, self.durable = f"KSGTEST_{tag}", f"ksgtest.{tag}.transfers", f"ksgtest-{tag}"

    async def __aenter__(self) -> "Bus":
        import nats

        self.nc = await nats.connect(self.url)
        self.js = self.nc.jetstream()
        await self.js.add_stream(name=self.stream, subjects=[self.subject])
        return self

    async def __aexit__(self, *exc) -> None:
        try:
            await self.js.delete_stream(self.stream)
        finally:
            await self.nc.close()

    async def publish(self, payload: bytes | dict | list) -> None:
        data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        await self.js.publish(self.subject, data)

    async def pending(self) -> tuple[int, int]:
        info = await self.js.consumer_info(self.stream, self.durable)
        return info.num_pending, info.num_ack_pending


class DroppedAck:
    """A message whose ack is lost (the process died after the store append, before the ack)."""

    def __init__(self, msg) -> None:
        self._msg = msg

    def __getattr__(self, name):
        return getattr(self._msg, name)

    async def ack(self) -> None:
        return None


class RecordingConsumer(NatsConsumer):
    """Notes each message's delivery count (JetStream metadata)."""

    deliveries: list[int]

    async def handle(self, msgs) -> None:
        self.deliveries = getattr(self, "deliveries", []) + [m.metadata.num_delivered for m in msgs]
        await super().handle(msgs)


class AckLosingConsumer(NatsConsumer):
    async def handle(self, msgs) -> None:
        await super().handle([DroppedAck(m) for m in msgs])


def test_consumer_acks_counts_duplicates_once_and_terminates_poison(tmp_path):
    url = nats_url()
    store = SQLiteStore(tmp_path / "state")
    scorer = StreamScorer(load_config(), store, now=lambda: NOW)
    metrics = ServiceMetrics()

    async def run():
        async with Bus(url) as bus:
            for i in range(1, 21):                                     # 20 single transfers
                await bus.publish(transfer(i, f"S{i % 4}", "R1"))
            await bus.publish({"transfers": [transfer(21, "S9", "R2"), transfer(22, "S9", "R2"), transfer(23, "S9", "R3")]})
            await bus.publish(transfer(5, "S1", "R1"))                 # the publisher sent T000005 twice
            await bus.publish(b"{not json")                            # poison: undecodable
            await bus.publish([transfer(24, "S1", "R1"), transfer(25, "S1", "R1", amount="-3")])  # poison: invalid
            await bus.publish(transfer(26, "S2", "R1"))                # after the poison: still consumed
            gate = Gate(scorer)
            consumer = NatsConsumer(url, bus.subject, stream=bus.stream, durable=bus.durable, batch=7,
                                    fetch_timeout=0.3)
            await consumer.start(gate, metrics)
            c = consumer.counts
            await wait_for(lambda: c.acked + c.duplicate + c.terminated == 25)
            await consumer.stop()
            gate.close()
            # reconnect to read the consumer's state: nothing pending, nothing awaiting an ack
            import nats

            nc = await nats.connect(url)
            info = await nc.jetstream().consumer_info(bus.stream, bus.durable)
            await nc.close()
            return c, info

    counts, info = asyncio.run(run())
    assert (counts.acked, counts.duplicate, counts.terminated, counts.retried) == (22, 1, 2, 0)
    assert info.num_pending == 0 and info.num_ack_pending == 0
    log = [r["txn_id"] for _, r in store.read_since(0)]
    expected = [f"T{i:06d}" for i in range(1, 24)] + ["T000026"]
    assert sorted(log) == sorted(expected) and len(log) == 24             # T000005 once; nothing of the poison
    assert scorer.account("R1")["receiver"]["metrics"]["n_transactions"] == 21   # 20 + T000026
    text = metrics.render(scorer.stats()).decode()
    assert 'kalasag_nats_messages_total{outcome="terminated"} 2.0' in text
    assert 'kalasag_transfers_rejected_total{reason="invalid_json",source="nats"} 1.0' in text
    assert 'kalasag_transfers_rejected_total{reason="non_positive_amount",source="nats"} 1.0' in text
    assert 'kalasag_transfers_duplicate_total{source="nats"} 1.0' in text
    assert 'kalasag_transfers_applied_total{source="nats"} 24.0' in text
    store.close()


def test_a_redelivered_message_after_a_lost_ack_is_not_counted_twice(tmp_path):
    """First consumer: submits (durable) but its acks are lost. After ack_wait JetStream redelivers
    the same messages to the second consumer (same durable): duplicates, acked, counted once."""
    url = nats_url()
    store = SQLiteStore(tmp_path / "state")
    scorer = StreamScorer(load_config(), store, now=lambda: NOW)

    async def run():
        async with Bus(url) as bus:
            for i in range(1, 6):
                await bus.publish(transfer(i, "S1", "R1"))
            gate = Gate(scorer)
            first = AckLosingConsumer(url, bus.subject, stream=bus.stream, durable=bus.durable,
                                      ack_wait_seconds=1.0, fetch_timeout=0.3)
            await first.start(gate)
            await wait_for(lambda: first.counts.acked == 5)
            await first.stop()
            applied_after_first = store.last_seq()
            second = RecordingConsumer(url, bus.subject, stream=bus.stream, durable=bus.durable,
                                       ack_wait_seconds=1.0, fetch_timeout=0.3)
            await second.start(gate)
            await wait_for(lambda: second.counts.duplicate == 5)
            await asyncio.sleep(1.5)                     # past ack_wait: had an ack been lost again, it would come back
            await second.stop()
            gate.close()
            import nats

            nc = await nats.connect(url)
            info = await nc.jetstream().consumer_info(bus.stream, bus.durable)
            await nc.close()
            return applied_after_first, second, info

    applied_after_first, second, info = asyncio.run(run())
    assert applied_after_first == 5
    c2 = second.counts
    assert (c2.acked, c2.duplicate, c2.terminated) == (0, 5, 0)
    assert len(second.deliveries) == 5 and min(second.deliveries) >= 2     # really redeliveries
    assert info.num_ack_pending == 0 and info.num_pending == 0
    assert store.last_seq() == 5
    assert scorer.account("R1")["receiver"]["metrics"]["n_transactions"] == 5
    assert scorer.stats()["duplicates"] == 5
    store.close()


def test_unreachable_nats_is_a_one_line_error():
    from kalasag.service.nats_consumer import NatsError

    consumer = NatsConsumer("nats://127.0.0.1:1", "x.y")

    async def run():
        with pytest.raises(NatsError, match="NATS not reachable at nats://127.0.0.1:1"):
            await consumer.start(Gate(object()))

    asyncio.run(run())
