"""`kalasag serve` as a real process: kill -9 mid-stream loses no acknowledged transfer and a resend
is not counted twice; SIGTERM saves a snapshot that the next start uses; the CLI's one-line errors."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from kalasag.cli import app as cli_app
from service_helpers import transfer

KALASAG = [str(Path(sys.executable).with_name("kalasag"))]   # the installed console script
RECEIVERS = ("R1", "R2", "R3")


def make_key(state: Path) -> str:
    out = subprocess.run([*KALASAG, "apikey", "create", "--scopes", "score,read", "--state", str(state)],
                         capture_output=True, text=True, timeout=60, check=True)
    key = out.stdout.strip()
    assert re.fullmatch(r"ksg_[0-9a-f]{10}_[A-Za-z0-9_-]{43}", key), out
    assert "only time the key is shown" in out.stderr
    return key


class Server:
    def __init__(self, state: Path, log: Path) -> None:
        self.log = log.open("ab")
        self.proc = subprocess.Popen([*KALASAG, "serve", "--port", "0", "--state", str(state)],
                                     stdout=subprocess.PIPE, stderr=self.log, text=True)
        deadline = time.monotonic() + 60
        self.url = None
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            m = re.search(r"listening on (http://[\d.]+:\d+)", line)
            if m:
                self.url = m.group(1)
                break
        assert self.url, f"kalasag serve did not start; see {log}"
        for _ in range(200):  # the socket is bound before the app starts: wait for /healthz
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError("no /healthz")

    def stop(self, sig: int) -> int:
        """Send sig and wait. After a graceful shutdown uvicorn re-raises SIGTERM: the exit status
        is then -SIGTERM (the default action), as for any process stopped by SIGTERM."""
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=60)
        self.log.close()
        return code

    def log_text(self) -> str:
        return Path(self.log.name).read_text()


@pytest.mark.slow
def test_kill_9_mid_stream_loses_no_acknowledged_transfer(tmp_path):
    state = tmp_path / "state"
    key = make_key(state)
    headers = {"Authorization": f"Bearer {key}"}
    server = Server(state, tmp_path / "serve.log")
    sent: list[dict] = []
    acked: list[str] = []
    stop = threading.Event()

    def stream() -> None:
        with httpx.Client(base_url=server.url, headers=headers, timeout=5) as client:
            i = 0
            while not stop.is_set():
                i += 1
                batch = [transfer(i * 10 + k, f"S{(i + k) % 7}", RECEIVERS[(i + k) % 3], f"{20 + k}") for k in range(i % 3 + 1)]
                sent.extend(batch)
                try:
                    r = client.post("/v1/transactions", json={"transfers": batch})
                except httpx.HTTPError:
                    return                                  # the server is gone
                assert r.status_code == 200, r.text
                acked.extend(x["txn_id"] for x in r.json()["results"])

    t = threading.Thread(target=stream)
    t.start()
    while len(acked) < 300 and t.is_alive():
        time.sleep(0.01)
    os.kill(server.proc.pid, signal.SIGKILL)                # mid-stream: requests are in flight
    assert server.stop(signal.SIGKILL) == -signal.SIGKILL
    stop.set()
    t.join(timeout=30)
    assert len(acked) >= 300

    server = Server(state, tmp_path / "serve.log")
    try:
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
            def received() -> int:
                return sum(client.get(f"/v1/accounts/{r}").json()["receiver"]["metrics"]["n_transactions"] for r in RECEIVERS)

            before = received()
            assert len(acked) <= before <= len({x["txn_id"] for x in sent})   # every ack survived; nothing invented
            acked_set = set(acked)
            # resend everything that was acknowledged: all duplicates, nothing counted again
            resend = [x for x in sent if x["txn_id"] in acked_set]
            for i in range(0, len(resend), 200):
                body = client.post("/v1/transactions", json={"transfers": resend[i:i + 200]}).json()
                assert body["applied"] == 0 and all(r["duplicate"] for r in body["results"])
            assert received() == before
            # what was sent but never acknowledged either made it (now a duplicate) or is applied now, once
            rest = [x for x in sent if x["txn_id"] not in acked_set]
            if rest:
                body = client.post("/v1/transactions", json={"transfers": rest}).json()
                assert body["duplicates"] == before - len(acked)     # appended before the kill, never answered
                assert body["applied"] == len(rest) - body["duplicates"]
            assert received() == len({x["txn_id"] for x in sent})
    finally:
        server.stop(signal.SIGTERM)


@pytest.mark.slow
def test_sigterm_saves_a_snapshot_that_the_next_start_uses(tmp_path):
    from kalasag.service.sqlite_store import SQLiteStore

    state = tmp_path / "state"
    key = make_key(state)
    headers = {"Authorization": f"Bearer {key}"}
    server = Server(state, tmp_path / "serve.log")
    batch = [transfer(i, f"S{i % 3}", "R1") for i in range(1, 41)]
    r = httpx.post(server.url + "/v1/transactions", json={"transfers": batch}, headers=headers, timeout=30)
    assert r.json()["applied"] == 40
    assert server.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
    assert "snapshot saved at shutdown" in server.log_text()
    store = SQLiteStore(state)
    snap = store.load_snapshot()
    assert snap is not None and snap[0] == store.last_seq() == 40
    store.close()
    server = Server(state, tmp_path / "serve.log")
    try:
        metrics = httpx.get(server.url + "/metrics", headers=headers, timeout=30).text
        assert re.search(r"^kalasag_scorer_replayed_at_start 0\.0$", metrics, re.M)   # nothing to replay
        acc = httpx.get(server.url + "/v1/accounts/R1", headers=headers, timeout=30).json()
        assert acc["receiver"]["metrics"]["n_transactions"] == 40
    finally:
        server.stop(signal.SIGTERM)


# -- one-line CLI errors (in-process; nothing starts) -----------------------------------------
def free_port_in_use():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s


@pytest.mark.parametrize("args, fragment", [
    (["serve", "--nats", "nats://127.0.0.1:4222"], "--nats and --subject go together"),
    (["serve", "--subject", "x"], "--nats and --subject go together"),
    (["serve", "--nats", "nats://127.0.0.1:1", "--subject", "x"], "NATS not reachable at 127.0.0.1:1"),
    (["serve", "--store", "mysql://db"], "is not one of sqlite"),
    (["serve", "--store", "postgresql://nobody@127.0.0.1:1/x"], "PostgreSQL not reachable"),
    (["apikey", "create", "--scopes", "score,admin"], "unknown scope admin"),
    (["apikey", "revoke", "0000000000"], "no API key with id '0000000000'"),
])
def test_cli_errors_are_one_line(tmp_path, args, fragment):
    if "--store" not in args:
        args = [*args, "--state", str(tmp_path / "state")]
    result = CliRunner().invoke(cli_app, [*args, "--port", "0"] if args[0] == "serve" else args)
    assert result.exit_code == 2, result.output
    text = result.output.strip()
    assert fragment in text and len(text.splitlines()) == 1 and "Traceback" not in text


def test_cli_port_in_use_is_one_line(tmp_path):
    sock = free_port_in_use()
    try:
        port = sock.getsockname()[1]
        result = CliRunner().invoke(cli_app, ["serve", "--port", str(port), "--state", str(tmp_path / "s")])
    finally:
        sock.close()
    assert result.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.output and len(result.output.strip().splitlines()) == 1


@pytest.mark.slow
def test_serve_with_nats_consumes_the_subject(tmp_path):
    import asyncio

    import nats
    import orjson

    from service_helpers import nats_url, unique

    url = nats_url()
    tag = unique("")
    stream, subject = f"KSGTEST_{tag}", f"ksgtest.{tag}.transfers"

    async def publish(create: bool, payloads: list[dict]) -> None:
        nc = await nats.connect(url)
        js = nc.jetstream()
        if create:
            await js.add_stream(name=stream, subjects=[subject])
        for p in payloads:
            await js.publish(subject, orjson.dumps(p))
        await nc.close()

    async def delete() -> None:
        nc = await nats.connect(url)
        await nc.jetstream().delete_stream(stream)
        await nc.close()

    asyncio.run(publish(True, [transfer(1, "S1", "R9"), transfer(2, "S2", "R9")]))
    state = tmp_path / "state"
    key = make_key(state)
    headers = {"Authorization": f"Bearer {key}"}
    log = tmp_path / "serve.log"
    proc = subprocess.Popen([*KALASAG, "serve", "--port", "0", "--state", str(state), "--nats", url,
                             "--subject", subject, "--nats-stream", stream, "--nats-durable", f"d{tag}"],
                            stdout=subprocess.PIPE, stderr=log.open("ab"), text=True)
    try:
        line = ""
        assert proc.stdout is not None
        while "listening on" not in line:
            line = proc.stdout.readline()
            assert line, log.read_text()
        base = re.search(r"(http://[\d.]+:\d+)", line).group(1)
        asyncio.run(publish(False, [transfer(3, "S3", "R9"), transfer(2, "S2", "R9")]))   # T000002 again
        dup_line = 'kalasag_nats_messages_total{outcome="duplicate"} 1.0'
        deadline = time.monotonic() + 30
        metrics = ""
        while time.monotonic() < deadline:   # until all four messages are handled
            try:
                metrics = httpx.get(base + "/metrics", headers=headers, timeout=5).text
                if dup_line in metrics and 'kalasag_transfers_applied_total{source="nats"} 3.0' in metrics:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        assert dup_line in metrics and 'kalasag_transfers_applied_total{source="nats"} 3.0' in metrics
        r = httpx.get(base + "/v1/accounts/R9", headers=headers, timeout=5)
        assert r.json()["receiver"]["metrics"]["n_transactions"] == 3   # published before and after start; the repeat once
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        asyncio.run(delete())
