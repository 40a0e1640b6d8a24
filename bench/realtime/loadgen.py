"""Load generator for the real-time service: a separate process, loopback, raw HTTP/1.1 keep-alive.

    .venv/bin/python bench/realtime/loadgen.py --url http://127.0.0.1:8000 --key "$KEY" \
        --transfers bench/out/realtime/world/transfers.csv.gz --mode single --rate 3000 \
        --duration 300 --connections 64 --server-pid 12345 --out result.json

Open loop (--rate R transfers/s): requests are *scheduled* at fixed intervals and latency is measured
from the scheduled send time, so a stalled server shows up in the percentiles instead of silently
slowing the generator down (no coordinated omission). Closed loop (--rate 0): every connection sends
its next request as soon as the previous answer arrived (maximum throughput).

Bounded: it stops at --duration seconds or after --max-transfers transfers, whichever first, and
gives up early when the backlog of scheduled-but-unsent requests exceeds --max-backlog-seconds of
the rate (the server cannot sustain it: reported as backlog_abort, with the throughput reached). Reports transfers/s, requests/s, latency p50/p90/p99/p99.9/max, errors by
kind, the generator's own CPU share (to show it is not the bottleneck) and the server's RSS every
--rss-every seconds (flat memory).

The transfers come from a CSV (.csv or .csv.gz, e.g. `kalasag simulate`) in file order, each with a
txn_id made unique for the run (--txn-prefix), so a long run never resends a transfer. With --laps N
the file is sent N times, moved back in time so that time runs forward (the same accounts keep
paying): memory should level off once the population is known.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import gzip
import io
import json
import os
import resource
import sys
import time
from array import array
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import orjson

TEXT_COLUMNS = ("txn_id", "timestamp", "currency", "channel", "sender_id", "receiver_id", "sender_name",
                "receiver_name", "sender_country", "receiver_country", "receiver_region", "sender_phone",
                "receiver_phone", "reference")


def _rows(path: Path) -> Iterator[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="", encoding="utf-8") as fh:  # type: ignore[operator]
        yield from csv.DictReader(fh)


def _span(path: Path) -> timedelta:
    """Whole days from the first to the last timestamp's date (time-ordered file), plus one: a shift
    by it keeps every transfer's time of day."""
    first = last = None
    for row in _rows(path):
        first = first or row["timestamp"]
        last = row["timestamp"]
    if first is None:
        raise SystemExit(f"{path}: no transfers")
    parse = lambda t: datetime.fromisoformat(t.replace("Z", "+00:00"))  # noqa: E731
    return timedelta(days=(parse(last).date() - parse(first).date()).days + 1)


def read_transfers(path: Path, prefix: str, laps: int = 1, start_lap: int = 0) -> Iterator[dict]:
    """Rows of the CSV as canonical JSON objects (empty fields dropped), each txn_id made unique.

    laps > 1: the file is sent `laps` times, the same accounts paying on: lap k's timestamps are
    moved back by (laps - 1 - k) × the file's span, so time runs forward across laps and the last
    lap has the file's own dates (never in the future). Shows memory once the population is known.
    After `laps` laps it starts over (then timestamps repeat: late transfers). `start_lap`: begin
    with that lap (the laps before it were sent by an earlier run: a pre-loaded server).

    The file's span is read here, before the first row is asked for: read lazily (as before
    2026-11-27) it delayed the first request of an open-loop run by the time it takes to read the
    whole file (0.2 s for 58,000 rows, about 1 s for 300,000), which the generator then charged to
    the first requests as latency — part of the "cold start" measured until then."""
    span = _span(path) if laps > 1 else timedelta(0)
    return _laps(path, prefix, laps, start_lap, span)


def _laps(path: Path, prefix: str, laps: int, start_lap: int, span: timedelta) -> Iterator[dict]:
    lap = start_lap
    while True:
        shift = -(laps - 1 - lap % laps) * span
        for row in _rows(path):
            rec = {k: v for k, v in row.items() if k in TEXT_COLUMNS and v}
            if row.get("amount"):
                rec["amount"] = row["amount"]
            rec["txn_id"] = f"{prefix}{lap}-{row['txn_id']}"
            if shift:
                ts = datetime.fromisoformat(row["timestamp"].replace("Z", "+00:00")) + shift
                rec["timestamp"] = ts.strftime("%Y-%m-%dT%H:%M:%SZ")
            yield rec
        lap += 1


def rss_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process (all its threads), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


class Conn:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.reused = False      # the connection has carried a complete exchange already
        self.reconnects = 0

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        try:
            return await self._exchange(raw)
        except (OSError, asyncio.IncompleteReadError):
            if not self.reused:
                raise
            # the server closed an idle keep-alive connection as we reused it: like any HTTP client,
            # retry once on a fresh connection (safe here: a repeated txn_id is not counted twice)
            await self.close()
            self.reconnects += 1
            return await self._exchange(raw)

    async def _exchange(self, raw: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            self.reused = False
        assert self.reader is not None and self.writer is not None
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        close = False
        for line in head.split(b"\r\n")[1:]:
            low = line.lower()
            if low.startswith(b"content-length:"):
                length = int(line[15:])
            elif low.startswith(b"connection:") and b"close" in low:
                close = True
        body = await self.reader.readexactly(length) if length else b""
        self.reused = True
        if close:
            await self.close()
        return status, body

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except Exception:  # noqa: BLE001
                pass
        self.reader = self.writer = None


async def run(args: argparse.Namespace) -> dict:
    url = urlsplit(args.url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    head = (f"POST /v1/transactions HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {args.key}\r\n"
            "Content-Type: application/json\r\nContent-Length: ").encode()
    source = read_transfers(Path(args.transfers), args.txn_prefix, args.laps, args.start_lap)
    per_request = 1 if args.mode == "single" else args.batch_size

    def next_request() -> bytes:
        recs = [next(source) for _ in range(per_request)]
        body = orjson.dumps(recs[0] if per_request == 1 else {"transfers": recs})
        return head + str(len(body)).encode() + b"\r\n\r\n" + body

    max_requests = max(1, args.max_transfers // per_request)
    latencies = array("d")          # seconds, from scheduled (open loop) or actual (closed loop) send time
    service = array("d")            # seconds, from actual send time
    done_at = array("d")            # completion times (seconds since start), for the timeline
    errors: Counter[str] = Counter()
    counters = Counter()
    rss: list[tuple[float, int | None]] = []
    queue: asyncio.Queue[float] = asyncio.Queue()
    stop = asyncio.Event()          # no more requests are issued
    finished = asyncio.Event()      # every worker is done (the RSS sampler stops then)
    t_start = time.perf_counter()
    wall_start = time.time()
    deadline = t_start + args.duration
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    server_cpu0 = cpu_seconds(args.server_pid) if args.server_pid else None
    issued = 0
    backlog_abort = False

    async def sampler() -> None:
        while True:
            rss.append((round(time.perf_counter() - t_start, 1), rss_kib(args.server_pid) if args.server_pid else None))
            if finished.is_set():
                return
            try:
                await asyncio.wait_for(finished.wait(), timeout=args.rss_every)
            except asyncio.TimeoutError:
                pass

    async def scheduler() -> None:
        nonlocal issued, backlog_abort
        interval = per_request / args.rate
        t0 = time.perf_counter()
        while issued < max_requests and not stop.is_set():
            now = time.perf_counter()
            if now >= deadline:
                break
            due = min(int((now - t0) / interval) + 1, max_requests)
            while issued < due:
                queue.put_nowait(t0 + issued * interval)
                issued += 1
            if queue.qsize() * interval > args.max_backlog_seconds:
                backlog_abort = True      # the server does not sustain the rate
                break
            await asyncio.sleep(max(0.0, t0 + issued * interval - time.perf_counter()))
        stop.set()

    async def worker() -> None:
        nonlocal issued
        conn = Conn(host, port)
        while True:
            if args.rate > 0:
                if stop.is_set() and queue.empty():
                    break
                try:
                    scheduled = await asyncio.wait_for(queue.get(), timeout=0.2)
                except asyncio.TimeoutError:
                    continue
            else:
                if issued >= max_requests or time.perf_counter() >= deadline:
                    stop.set()
                    break
                issued += 1
                scheduled = None
            raw = next_request()
            sent = time.perf_counter()
            try:
                status, body = await asyncio.wait_for(conn.request(raw), timeout=args.timeout)
            except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError) as exc:
                errors[f"{exc.__class__.__name__}"] += 1
                await conn.close()
                continue
            done = time.perf_counter()
            if status != 200:
                errors[f"HTTP {status}: {body[:160].decode(errors='replace')}"] += 1
                continue
            latencies.append(done - (scheduled if scheduled is not None else sent))
            service.append(done - sent)
            done_at.append(done - t_start)
            counters["transfers"] += per_request
            counters["requests"] += 1
            counters["duplicates"] += body.count(b'"duplicate":true')
            counters["holds"] += body.count(b'"hold":true')
        counters["reconnects"] += conn.reconnects
        await conn.close()

    tasks = [asyncio.create_task(sampler())]
    if args.rate > 0:
        tasks.append(asyncio.create_task(scheduler()))
    workers = [asyncio.create_task(worker()) for _ in range(args.connections)]
    await asyncio.gather(*workers)
    stop.set()
    finished.set()
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - t_start
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    server_cpu1 = cpu_seconds(args.server_pid) if args.server_pid else None
    server_cpu = None if server_cpu0 is None or server_cpu1 is None else server_cpu1 - server_cpu0

    def pct(values: array, q: float) -> float | None:
        if not values:
            return None
        s = sorted(values)
        return round(s[min(len(s) - 1, int(q / 100 * len(s)))] * 1000, 2)

    rss_values = [v for _, v in rss if v is not None]
    # one pass over the requests: per 10-second window, transfers completed and the worst latency
    # (stalls show up here); per second with requests slower than --slow-ms, how many and the
    # worst (whether the tail is a few stalls or spread over the run); per second of the first
    # 10 s (the cold start)
    timeline: dict[int, list[float]] = {}
    over: dict[int, list[float]] = {}
    first: dict[int, list[float]] = {}
    for t, lat in zip(done_at, latencies):
        timeline.setdefault(int(t // 10) * 10, []).append(lat)
        if lat * 1000 > args.slow_ms:
            over.setdefault(int(t), []).append(lat)
        if t < 10:
            first.setdefault(int(t), []).append(lat)
    windows = [(w, len(v) * per_request, round(max(v) * 1000, 1)) for w, v in sorted(timeline.items())]
    slow_seconds = [(sec, len(v), round(max(v) * 1000, 1)) for sec, v in sorted(over.items())]
    return {
        "mode": args.mode, "batch_size": per_request, "rate_target": args.rate, "connections": args.connections,
        "elapsed_s": round(elapsed, 1), "requests_ok": counters["requests"], "transfers_ok": counters["transfers"],
        "transfers_per_s": round(counters["transfers"] / elapsed, 1), "requests_per_s": round(counters["requests"] / elapsed, 1),
        "latency_ms": {f"p{q}": pct(latencies, q) for q in (50, 90, 99, 99.9)} | {"max": pct(latencies, 100)},
        "service_time_ms": {f"p{q}": pct(service, q) for q in (50, 99, 99.9)},
        "errors": dict(errors), "error_count": sum(errors.values()),
        "duplicates_reported": counters["duplicates"], "holds": counters["holds"],
        "keepalive_retries": counters["reconnects"],
        "backlog_abort": backlog_abort, "unsent_at_end": queue.qsize(),
        "generator_cpu_share": round(cpu / elapsed, 3),
        "server_cpu_share": None if server_cpu is None else round(server_cpu / elapsed, 3),
        "server_cpu_us_per_transfer": None if not server_cpu or not counters["transfers"]
        else round(server_cpu / counters["transfers"] * 1e6, 1),
        "server_rss_mib": {"first": round(rss_values[0] / 1024, 1) if rss_values else None,
                           "max": round(max(rss_values) / 1024, 1) if rss_values else None,
                           "last": round(rss_values[-1] / 1024, 1) if rss_values else None,
                           "samples": [(t, round(v / 1024, 1) if v else None) for t, v in rss]},
        "loadavg_end": loadavg(),
        "started_at": datetime.fromtimestamp(wall_start, UTC).isoformat(timespec="milliseconds"),
        "timeline_10s": windows,   # (window start s, transfers completed, max latency ms)
        "slow_ms": args.slow_ms, "slow_requests": sum(n for _, n, _ in slow_seconds), "slow_seconds": slow_seconds,
        # per second of the first 10 s: (second, requests completed, max latency ms) — the cold start
        "first_seconds": [(sec, len(v), round(max(v) * 1000, 1)) for sec, v in sorted(first.items())],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8000")
    p.add_argument("--key", default=os.environ.get("KALASAG_API_KEY"), help="API key with scope score (or $KALASAG_API_KEY)")
    p.add_argument("--transfers", required=True, help="CSV(.gz) of canonical transfers, e.g. from kalasag simulate")
    p.add_argument("--mode", choices=("single", "batch"), default="single")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--slow-ms", type=float, default=35.0, help="count requests slower than this, per second (slow_seconds)")
    p.add_argument("--rate", type=float, default=3000.0, help="target transfers/s (open loop); 0 = closed loop, as fast as possible")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--duration", type=float, default=60.0, help="stop after this many seconds")
    p.add_argument("--max-transfers", type=int, default=10_000_000, help="stop after this many transfers")
    p.add_argument("--max-backlog-seconds", type=float, default=5.0,
                   help="give up when the scheduled-but-unsent requests amount to this many seconds of the rate")
    p.add_argument("--timeout", type=float, default=10.0, help="per-request timeout (counted as an error)")
    p.add_argument("--server-pid", type=int, default=0, help="sample this process's RSS")
    p.add_argument("--rss-every", type=float, default=10.0)
    p.add_argument("--txn-prefix", default=f"lg{int(time.time())}-")
    p.add_argument("--laps", type=int, default=1, help="send the file this many times, moved in time (see read_transfers)")
    p.add_argument("--start-lap", type=int, default=0, help="begin with this lap (earlier laps were sent before)")
    p.add_argument("--out", help="write the result as JSON here")
    args = p.parse_args(argv)
    if not args.key:
        p.error("--key (or $KALASAG_API_KEY) is required")
    try:
        import uvloop  # the generator must not be the bottleneck: the fast event loop when available

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(run(args))
    text = json.dumps(result, indent=2)
    if args.out:
        Path(args.out).write_text(text)
    summary = {k: v for k, v in result.items() if k != "server_rss_mib"}
    summary["server_rss_mib"] = {k: v for k, v in result["server_rss_mib"].items() if k != "samples"}
    print(json.dumps(summary, indent=2))
    return 0 if result["error_count"] == 0 and not result["backlog_abort"] else 1


if __name__ == "__main__":
    sys.exit(main())
