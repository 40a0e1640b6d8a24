"""`kalasag serve` (the real-time scoring service) and `kalasag apikey …` (its API keys)."""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Annotated, Optional
from urllib.parse import urlsplit

import typer
from rich.console import Console

from kalasag.cli.errors import fail, friendly

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

apikey_app = typer.Typer(help="API keys of the real-time service (hashed at rest, scopes score and read).",
                         no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

StateOpt = Annotated[Optional[Path], typer.Option("--state", help="State directory of the embedded SQLite store (default ./kalasag-state).")]
ApiConfigOpt = Annotated[Optional[Path], typer.Option("--config", help="TOML config merged over the defaults (a new SQLite store takes its \\[service] sqlite_* settings).")]
StoreOpt = Annotated[Optional[str], typer.Option("--store", help="sqlite (default), postgresql://user@host/db or redis://host:6379/0 (docs/service.md).")]


def _open_store(store: Optional[str], state: Optional[Path], service=None):  # noqa: ANN001, ANN202
    from kalasag.service.stores import StoreError, open_store

    try:
        return open_store(store, state, service=service)
    except StoreError as exc:
        fail(str(exc))


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _check_nats(url: str) -> None:
    parts = urlsplit(url if "://" in url else f"nats://{url}")
    host, port = parts.hostname or "127.0.0.1", parts.port or 4222
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError as exc:
        fail(f"--nats: NATS not reachable at {host}:{port}: {exc.strerror or exc}")


@friendly
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port (0: any free port).")] = 8000,
    state: StateOpt = None,
    store: StoreOpt = None,
    nats_url: Annotated[Optional[str], typer.Option("--nats", help="Also consume transfers from this NATS JetStream server, e.g. nats://127.0.0.1:4222.")] = None,
    subject: Annotated[Optional[str], typer.Option(help="NATS subject carrying the transfers (with --nats).")] = None,
    nats_stream: Annotated[Optional[str], typer.Option("--nats-stream", help="JetStream stream (default: the one holding --subject; created if none).")] = None,
    nats_durable: Annotated[str, typer.Option("--nats-durable", help="Durable consumer name; workers sharing it share the messages.")] = "kalasag-scorer",
    config: Annotated[Optional[Path], typer.Option(help="TOML config merged over the defaults (\\[service] section: hold threshold, limits).")] = None,
    access_log: Annotated[bool, typer.Option("--access-log", help="Log every request (costs throughput).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors.")] = False,
) -> None:
    """Run the real-time scoring service: HTTP API (OpenAPI at /docs), optional NATS consumer.

    Transfers are acknowledged only once durable in the store; a restart (even kill -9) replays the log. Stop with Ctrl-C or SIGTERM (a snapshot is saved). Create a key first with [bold]kalasag apikey create --scopes score,read[/bold].

    Example: [bold]kalasag serve --port 8000 --state state/[/bold]
    """
    import time

    import uvicorn

    from kalasag.model import load_config
    from kalasag.service.app import ServiceSettings, create_app

    if (nats_url is None) != (subject is None):
        fail("--nats and --subject go together")
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = load_config(config)
    settings = ServiceSettings.from_config(cfg)
    if nats_url:
        _check_nats(nats_url)
    sock = _bind(host, port)
    st = _open_store(store, state, cfg.service)
    from kalasag.service.scorer import StreamScorer

    t0 = time.perf_counter()
    scorer = StreamScorer(cfg, st)
    if not quiet:
        stats = scorer.stats()
        out.print(f"state: {st.url}: {stats.get('applied_seq', 0):,} transfers in the log, "
                  f"{stats.get('replayed_at_start', 0):,} replayed after the snapshot in {time.perf_counter() - t0:.1f} s")
    consumer = None
    if nats_url:
        from kalasag.service.nats_consumer import NatsConsumer

        consumer = NatsConsumer(nats_url, subject, stream=nats_stream, durable=nats_durable,  # type: ignore[arg-type]
                                batch=settings.nats_batch, ack_wait_seconds=settings.nats_ack_wait_seconds)
    app = create_app(scorer, st, cfg, settings=settings, nats=consumer, close_store=True)
    bound = sock.getsockname()
    # printed even with -q: with --port 0 it is the only way to learn the port
    out.print(f"listening on http://{bound[0]}:{bound[1]}" + ("" if quiet else "  (OpenAPI: /docs; Ctrl-C stops and saves a snapshot)"))
    server = uvicorn.Server(uvicorn.Config(
        app, log_level="warning" if quiet else "info", access_log=access_log, loop="auto", http="auto",
        timeout_graceful_shutdown=30, server_header=False,
    ))
    # On SIGINT/SIGTERM uvicorn stops accepting, finishes the requests in flight and runs the app's
    # shutdown (NATS consumer stopped, snapshot saved, store closed), then re-raises the signal.
    server.run(sockets=[sock])
    if not server.started:
        fail("the service did not start (see the log above)")


@apikey_app.command("create")
@friendly
def apikey_create(
    scopes: Annotated[str, typer.Option(help="Comma-separated: score (POST endpoints), read (alerts, accounts, metrics).")],
    state: StateOpt = None,
    store: StoreOpt = None,
    config: ApiConfigOpt = None,
) -> None:
    """Create an API key and print it — once: only its hash is stored.

    Example: [bold]kalasag apikey create --scopes score,read --state state/[/bold]
    """
    from kalasag.service.auth import ApiKeyError, create_api_key

    from kalasag.model import load_config

    st = _open_store(store, state, load_config(config).service)
    try:
        key, record = create_api_key(st, scopes)
    except ApiKeyError as exc:
        fail(str(exc))
    finally:
        st.close()
    out.print(key)
    err.print(f"key id {record.key_id}, scopes {','.join(record.scopes)}, stored hashed in {st.url}. "
              "This is the only time the key is shown: keep it now.")


@apikey_app.command("revoke")
@friendly
def apikey_revoke(
    key_id: Annotated[str, typer.Argument(help="The key id: the part between 'ksg_' and the next '_'.")],
    state: StateOpt = None,
    store: StoreOpt = None,
    config: ApiConfigOpt = None,
) -> None:
    """Revoke an API key (a running service stops accepting it within auth_cache_seconds).

    Example: [bold]kalasag apikey revoke 3f9a0c12de --state state/[/bold]
    """
    from kalasag.service.auth import ApiKeyError, revoke_api_key

    from kalasag.model import load_config

    st = _open_store(store, state, load_config(config).service)
    try:
        record = revoke_api_key(st, key_id)
    except ApiKeyError as exc:
        fail(str(exc))
    finally:
        st.close()
    out.print(f"revoked key {record.key_id}")


def register(app: typer.Typer) -> None:
    """Add `serve` and `apikey` to the main CLI."""
    app.command("serve")(serve)
    app.add_typer(apikey_app, name="apikey")
