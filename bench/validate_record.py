"""Per-call cost of `kalasag.ingest.validate_record` and `kalasag.service.iso20022.parse_pacs008`.

    .venv/bin/python bench/validate_record.py [--n 200000]

Single-threaded; reports the best of 5 repeats of CPU time (time.process_time) per call in µs, so that
other processes sharing the cores inflate the numbers as little as possible (wall-clock time under
load is higher). Prints the load average, then one line per case.
"""

from __future__ import annotations

import argparse
import os
import time
import timeit
from datetime import UTC, datetime
from pathlib import Path

from kalasag.ingest import RecordRejected, validate_record
from kalasag.model.config import load_config
from kalasag.service.iso20022 import parse_pacs008

ROOT = Path(__file__).resolve().parents[1]
CONFIG = load_config()
NOW = datetime(2026, 11, 1, tzinfo=UTC)
TYPICAL = {  # the required fields + channel, as a JSON client sends them
    "txn_id": "T1",
    "timestamp": "2024-05-01T14:30:00+08:00",
    "amount": "1,234.50",
    "currency": "eur",
    "channel": "MTO",
    "sender_id": "S1",
    "receiver_id": "R1",
    "sender_country": "us",
    "receiver_country": "PH",
}
FULL = {
    **TYPICAL,
    "amount": 250.0,
    "sender_name": "John Smith",
    "receiver_name": "Maria Santos",
    "receiver_region": "Cebu",
    "sender_phone": "+1 555 0100",
    "receiver_phone": "0917 123 4567",
    "reference": "school fees",
}
REJECTED = {**TYPICAL, "currency": "XYZ"}


def per_call(fn, n: int) -> float:
    return min(timeit.repeat(fn, number=n, repeat=5, timer=time.process_time)) / n * 1e6


def reject() -> None:
    try:
        validate_record(REJECTED, CONFIG, now=NOW)
    except RecordRejected:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000, help="calls per repeat")
    n = parser.parse_args().n
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"validate_record, 9 fields, text amount:    {per_call(lambda: validate_record(TYPICAL, CONFIG, now=NOW), n):6.2f} µs")
    print(f"validate_record, 15 fields, number amount: {per_call(lambda: validate_record(FULL, CONFIG, now=NOW), n):6.2f} µs")
    print(f"validate_record, rejected (unknown_currency): {per_call(reject, n):6.2f} µs")
    for name in ("single.xml", "batch.xml"):
        xml = (ROOT / "tests" / "data" / "iso20022" / name).read_bytes()
        k = len(parse_pacs008(xml))
        us = per_call(lambda xml=xml: parse_pacs008(xml), max(1, n // 50))
        print(f"parse_pacs008 {name} ({k} transfers, {len(xml):,} bytes): {us:7.1f} µs ({us / k:.1f} µs per transfer)")


if __name__ == "__main__":
    main()
