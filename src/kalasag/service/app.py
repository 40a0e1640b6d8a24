"""The HTTP API (FastAPI): score transfers as they arrive. docs/service.md describes every endpoint.

    app = create_app(scorer, store, config)      # `kalasag serve` runs it on uvicorn

Request bodies are read as bytes and parsed with orjson (the pydantic models below only document
the API in the OpenAPI spec; validation of a transfer is `kalasag.ingest.validate_record`, the same
rules and reason codes as batch ingest, called by the scorer). Responses are orjson bytes.
Every call into the scorer or the store goes through the Gate (one worker thread, group commit).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from kalasag.model import TRANSFER_COLUMNS, KalasagConfig
from kalasag.service.auth import ApiKeys, AuthError, Principal
from kalasag.service import trace
from kalasag.service.gate import Gate, Rejection
from kalasag.service.payload import PayloadError, decode_json_transfers
from kalasag.service.metrics import CONTENT_TYPE, MetricsMiddleware, ServiceMetrics
from kalasag.service.store import Store
from kalasag.service.stores import StoreError

log = logging.getLogger("kalasag.service")

XML_TYPES = ("application/xml", "text/xml")


# -- settings ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ServiceSettings:
    """Limits and intervals of the HTTP service: the config's [service] section
    (src/kalasag/model/default_config.toml documents each), with optional overrides (tests)."""

    max_batch: int                    # transfers per request
    max_body_bytes: int
    iso20022_max_bytes: int
    auth_cache_seconds: float         # a revoked key stops working within this
    catch_up_seconds: float           # shared stores: apply other workers' transfers this often
    network_refresh_seconds: float    # 0: never in the background
    network_refresh_nice: int         # CPU priority increment of the refresh process
    group_commit: bool
    max_group_transfers: int
    gc_freeze_seconds: float          # move surviving objects out of the cyclic GC's reach this often (0: off)
    gc_thresholds: tuple[int, int, int]   # gc.set_threshold with the freezing (Python: 700, 10, 10)
    nats_batch: int                   # messages per JetStream fetch
    nats_ack_wait_seconds: float      # JetStream redelivers a message not acked within this
    warm_up_transfers: int            # synthetic transfers scored on a scratch scorer before /readyz says ready
    warm_up_log_transfers: int        # … and the log's latest transfers read into the per-transfer caches

    @classmethod
    def from_config(cls, config: KalasagConfig, **overrides: Any) -> "ServiceSettings":
        svc = config.service
        values = {name: getattr(svc, name) for name in cls.__dataclass_fields__ if name not in overrides}
        values.update(overrides)
        values["gc_thresholds"] = tuple(values["gc_thresholds"])
        return cls(**values)


# -- OpenAPI documentation models (not used to parse: see module docstring) -----------------------
def _transfer_model() -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for c in TRANSFER_COLUMNS:
        typ: Any = (str | float) if c.name == "amount" else str
        if c.required:
            fields[c.name] = (typ, Field(description=c.meaning))
        else:
            fields[c.name] = (typ | None, Field(default=None, description=c.meaning))
    from pydantic import create_model

    return create_model("Transfer", __config__=ConfigDict(extra="allow"), **fields)


Transfer = _transfer_model()


class TransferBatch(BaseModel):
    transfers: list[Transfer] = Field(description="1 … max_batch transfers; all-or-nothing")  # type: ignore[valid-type]


class SideOut(BaseModel):
    account_id: str
    score: float = Field(description="0–1, current score of the account on this side")
    risk_level: str = Field(description="high, medium or low")
    alerted: bool
    indicators: list[str] = Field(description="ids of the indicators that fire for the account now")


class TransferResultOut(BaseModel):
    txn_id: str
    duplicate: bool = Field(description="the txn_id was already in the log: not counted again")
    hold: bool = Field(description="hold the payout for review (score ≥ the configured hold threshold)")
    sender: SideOut
    receiver: SideOut


class TransactionsOut(BaseModel):
    results: list[TransferResultOut]
    applied: int = Field(description="new transfers in this request")
    duplicates: int


class ErrorDetail(BaseModel):
    code: str = Field(description="reason code (the batch-ingest quarantine reasons for a bad transfer)")
    message: str
    index: int | None = Field(default=None, description="0-based position of the bad transfer in the request")
    txn_id: str | None = None
    field: str | None = None


class ErrorOut(BaseModel):
    error: ErrorDetail


def _json_schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(ref_template="#/components/schemas/{model}")


_ERRORS = {
    401: {"model": ErrorOut, "description": "missing or invalid API key"},
    403: {"model": ErrorOut, "description": "the key lacks the endpoint's scope"},
}


# -- errors ------------------------------------------------------------------------------------
class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any) -> Response:
    body = {"code": code, "message": message}
    body.update({k: v for k, v in extra.items()})
    return Response(orjson.dumps({"error": body}), status_code=status, media_type="application/json", headers=headers)


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


# -- the app -------------------------------------------------------------------------------------
def create_app(scorer: Any, store: Store, config: KalasagConfig, *, settings: ServiceSettings | None = None,
               api_keys: ApiKeys | None = None, metrics: ServiceMetrics | None = None,
               nats: Any | None = None, background: bool = True, shared_store: bool | None = None,
               close_store: bool = False) -> FastAPI:
    """The FastAPI app around a StreamScorer and its Store.

    nats: an optional NatsConsumer started and stopped with the app. background: run the periodic
    catch-up (shared stores) and network-refresh tasks. shared_store: catch up other workers' transfers
    (default: True for PostgreSQL and Redis stores). close_store: close the store after the
    shutdown snapshot (`kalasag serve`: uvicorn re-raises SIGTERM once the app has shut down).
    """
    settings = settings or ServiceSettings.from_config(config)
    keys = api_keys or ApiKeys(cache_seconds=settings.auth_cache_seconds)
    metrics = metrics or ServiceMetrics()
    gate = Gate(scorer, group_commit=settings.group_commit, max_group_transfers=settings.max_group_transfers,
                observe_batch=metrics.batch.observe)
    if shared_store is None:
        shared_store = type(store).__name__ in ("PostgresStore", "RedisStore")
    started = time.time()
    # readiness (GET /readyz): the state is loaded before the app is created; the warm-up runs on
    # the gate once the app has started, and the service is ready when it is done
    readiness: dict[str, Any] = {"ready": False, "warm_up_seconds": None}

    async def _warm_up() -> None:
        try:
            warm = getattr(scorer, "warm_up", None)
            if warm is not None and (settings.warm_up_transfers > 0 or settings.warm_up_log_transfers > 0):
                seconds = await gate.call(warm, settings.warm_up_transfers, settings.warm_up_log_transfers)
                readiness["warm_up_seconds"] = round(seconds, 3)
                gc.collect()   # the scratch state's cycles, before they are frozen
        except Exception:  # noqa: BLE001 - a failed warm-up only means colder first requests
            log.exception("warm-up failed; serving without it")
        readiness["ready"] = True
        log.info("ready (warm-up %s s)", readiness["warm_up_seconds"])

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks: list[asyncio.Task] = []
        if settings.gc_freeze_seconds > 0:
            # The state is millions of small long-lived objects (≈50 per transfer); a full cyclic
            # GC pass over them stalls everything for seconds (measured 2.8 s at 60,000 transfers).
            # gc.freeze() moves every object alive now into a generation the collector never scans;
            # done every second, full passes only see the last second's objects. They are still
            # freed by reference counting; only reference cycles among them would never be
            # collected (10 objects after 60,000 transfers: docs/service.md). Higher thresholds make
            # the young collections rarer and the remaining full passes very rare.
            gc.set_threshold(*settings.gc_thresholds)
            gc.freeze()
            if trace.TRACE_SLOW_MS:
                gc.callbacks.append(trace.gc_hook)
            tasks.append(asyncio.create_task(_every(settings.gc_freeze_seconds, _freeze, "gc freeze")))
        if background:
            if shared_store and settings.catch_up_seconds > 0:
                tasks.append(asyncio.create_task(_every(settings.catch_up_seconds, _catch_up, "catch-up")))
            if settings.network_refresh_seconds > 0:
                tasks.append(asyncio.create_task(_every(settings.network_refresh_seconds, _refresh_network, "network refresh")))
        tasks.append(asyncio.create_task(_warm_up()))
        if nats is not None:
            await nats.start(gate, metrics)
        try:
            yield
        finally:
            if nats is not None:
                await nats.stop()
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            try:
                await gate.call(scorer.snapshot)   # queued after every accepted submit
                log.info("snapshot saved at shutdown")
            except Exception as exc:  # noqa: BLE001 - the log is the truth; a snapshot only speeds restarts
                log.error("snapshot at shutdown failed: %s", exc)
            if close_store:
                await gate.call(store.close)
            gate.close()
            for pool in refresher:   # a refresh in progress is abandoned (the next start recomputes it)
                for proc in list((getattr(pool, "_processes", None) or {}).values()):
                    proc.terminate()
                pool.shutdown(wait=False, cancel_futures=True)

    async def _freeze() -> None:
        gc.freeze()

    async def _catch_up() -> None:
        await gate.call(scorer.catch_up)

    refresher: list[Any] = []   # the process pool of the network refresh, started at its first use

    async def _refresh_network() -> None:
        """The batch network evidence runs in a process of its own, at a lower CPU priority
        ([service] network_refresh_nice), over its own store connection: it reads the log, not the
        state, and its Python work (reading the log, building the frame) would otherwise hold the
        GIL against scoring. Only swapping the result in goes through the gate. Stores that cannot
        be reopened in another process compute it on a thread instead."""
        loop = asyncio.get_running_loop()
        upto = scorer.applied_seq
        since = scorer.network_since()
        reopen = getattr(store, "reopen_spec", None)
        if reopen is not None:
            if not refresher:
                import multiprocessing
                from concurrent.futures import ProcessPoolExecutor

                from kalasag.service.scorer import lower_priority

                refresher.append(ProcessPoolExecutor(
                    max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                    initializer=lower_priority, initargs=(settings.network_refresh_nice,)))
            from kalasag.service.scorer import network_job

            cache = await loop.run_in_executor(refresher[0], network_job, config, reopen(), upto, since,
                                               getattr(scorer, "watchlist", None))
        else:
            cache = await loop.run_in_executor(None, scorer.compute_network, upto, None, since)
        await gate.call(scorer.install_network, cache)
        log.info("network evidence refreshed over %s transfers in %.1f s", f"{upto:,}", cache.seconds)

    async def _every(seconds: float, fn: Any, what: str) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await fn()
            except Exception as exc:  # noqa: BLE001 - keep serving; the next round retries
                log.error("%s failed: %s", what, exc)

    app = FastAPI(
        title="Kalasag real-time scoring",
        version=_version(),
        description="Score each transfer as it arrives: incremental per-account state, the same indicators as "
                    "`kalasag scan`. Every endpoint but /healthz needs `Authorization: Bearer <API key>` "
                    "(`kalasag apikey create`). See docs/service.md.",
        lifespan=lifespan,
    )
    app.state.gate = gate
    app.state.metrics = metrics
    app.state.api_keys = keys
    app.state.settings = settings

    # -- errors ------------------------------------------------------------------------------
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return _error(exc.status, exc.code, exc.message, **exc.extra)

    @app.exception_handler(AuthError)
    async def _auth_error(request: Request, exc: AuthError) -> Response:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return _error(exc.status, "unauthorized" if exc.status == 401 else "forbidden", exc.message, headers=headers)

    @app.exception_handler(StoreError)
    @app.exception_handler(sqlite3.OperationalError)   # SQLiteStore: disk full, I/O error, locked
    async def _store_error(request: Request, exc: Exception) -> Response:
        log.error("store error: %s", exc)
        return _error(503, "store_unavailable", "the durable store is unavailable; nothing was applied, retry later",
                      headers={"Retry-After": "1"})

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _error(422, "invalid_parameter", f"{where}: {first.get('msg')}", field=where)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> Response:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return _error(500, "internal_error", f"{exc.__class__.__name__} (logged); the transfers may or may not be "
                      "recorded: resending them is safe, a duplicate is not counted twice")

    # -- auth --------------------------------------------------------------------------------
    async def authenticate(request: Request, scope: str) -> Principal:
        """Inline rather than a FastAPI dependency: dependency resolution cost ~25% of a request."""
        header = request.headers.get("authorization")
        if not header:
            raise AuthError(401, "missing API key: send 'Authorization: Bearer <key>'")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthError(401, "malformed Authorization header: expected 'Bearer <key>'")
        principal = keys.cached(token)
        if principal is None:
            key_id = keys.key_id(token)
            record = await gate.call(store.get_api_key, key_id)
            principal = keys.verify(token, record)
        keys.authorize(principal, scope)
        return principal

    # -- scoring -----------------------------------------------------------------------------
    async def read_body(request: Request) -> bytes:
        limit = settings.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise ApiError(413, "payload_too_large", f"request body of {int(declared):,} bytes exceeds the limit of {limit:,}")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, "payload_too_large", f"request body exceeds the limit of {limit:,} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def score(records: list[Mapping[str, Any]], source: str, what: str) -> Response:
        if not records:
            raise ApiError(422, "empty_batch", f"{what} holds no transfer")
        if len(records) > settings.max_batch:
            raise ApiError(413, "batch_too_large", f"{len(records):,} transfers in one request; the limit is {settings.max_batch:,}")
        outcome = await gate.submit(records)
        if isinstance(outcome, Rejection):
            metrics.rejected.labels(source, outcome.reason).inc()
            raise ApiError(422, outcome.reason, _rejection_message(outcome, what), index=outcome.index,
                           txn_id=outcome.txn_id, field=outcome.field)
        metrics.request_size.observe(len(records))
        metrics.count_results(outcome, source)
        dup = sum(1 for r in outcome if r.duplicate)
        return Response(orjson.dumps({"results": outcome, "applied": len(outcome) - dup, "duplicates": dup}),
                        media_type="application/json")

    @app.post(
        "/v1/transactions",
        summary="Score one transfer or a batch (all-or-nothing)",
        description="Body: one transfer in the canonical schema (docs/schema.md), or `{\"transfers\": [...]}` "
                    "(a bare JSON array is accepted too). Each transfer is validated with the batch-ingest rules; "
                    "the first bad one rejects the whole request (422, with its index, field and reason code) and "
                    "nothing is applied. A 200 means every new transfer is durable in the log. Scope: `score`.",
        response_model=None,
        responses={200: {"model": TransactionsOut}, 400: {"model": ErrorOut}, 413: {"model": ErrorOut},
                   415: {"model": ErrorOut}, 422: {"model": ErrorOut}, 503: {"model": ErrorOut}, **_ERRORS},
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
            "oneOf": [{"$ref": "#/components/schemas/Transfer"}, {"$ref": "#/components/schemas/TransferBatch"},
                      {"type": "array", "items": {"$ref": "#/components/schemas/Transfer"}}]}}}}},
        tags=["scoring"],
    )
    async def post_transactions(request: Request) -> Response:
        await authenticate(request, "score")
        ctype = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
        if ctype and ctype != "application/json" and not ctype.endswith("+json"):
            raise ApiError(415, "unsupported_media_type", f"Content-Type '{ctype}' is not application/json "
                           "(ISO 20022 XML goes to /v1/iso20022)")
        body = await read_body(request)
        try:
            records = decode_json_transfers(body)
        except PayloadError as exc:
            status = 400 if exc.code == "invalid_json" else 422
            raise ApiError(status, exc.code, exc.message, index=exc.index, field=exc.field) from None
        return await score(records, "http", "the request")

    @app.post(
        "/v1/iso20022",
        summary="Score an ISO 20022 pacs.008 message (all-or-nothing)",
        description="Body: one FI-to-FI customer credit transfer (pacs.008) XML document; each CdtTrfTxInf is "
                    "mapped onto the canonical schema (docs/service.md) and scored as in /v1/transactions. "
                    "A malformed or unmappable message is a 400 naming the element. Scope: `score`.",
        response_model=None,
        responses={200: {"model": TransactionsOut}, 400: {"model": ErrorOut}, 413: {"model": ErrorOut},
                   415: {"model": ErrorOut}, 422: {"model": ErrorOut}, 503: {"model": ErrorOut}, **_ERRORS},
        openapi_extra={"requestBody": {"required": True, "content": {
            "application/xml": {"schema": {"type": "string", "description": "pacs.008.001.xx Document"}}}}},
        tags=["scoring"],
    )
    async def post_iso20022(request: Request) -> Response:
        await authenticate(request, "score")
        from kalasag.service.iso20022 import Iso20022Error, parse_pacs008

        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in XML_TYPES and not ctype.endswith("+xml"):
            raise ApiError(415, "unsupported_media_type",
                           f"Content-Type '{ctype or '(none)'}' is not application/xml or text/xml")
        body = await read_body(request)
        try:
            records = parse_pacs008(body, max_bytes=settings.iso20022_max_bytes)
        except Iso20022Error as exc:
            raise ApiError(400, "invalid_iso20022", str(exc)) from None
        return await score(records, "iso20022", "the pacs.008 message")

    # -- reading -----------------------------------------------------------------------------
    @app.get("/v1/alerts", summary="Currently alerted accounts, highest score first", tags=["reading"],
             response_model=None, responses=_ERRORS)
    async def get_alerts(request: Request,
                         side: Literal["sender", "receiver"] | None = Query(None, description="only this side"),
                         limit: int = Query(100, ge=1, le=10_000)) -> Response:
        await authenticate(request, "read")
        alerts = await gate.call(lambda: scorer.alerts(side=side, limit=limit))
        return _json({"alerts": alerts})

    @app.get("/v1/accounts/{account_id}", summary="An account's current state and explanation", tags=["reading"],
             response_model=None, responses={404: {"model": ErrorOut}, **_ERRORS})
    async def get_account(request: Request, account_id: str) -> Response:
        await authenticate(request, "read")
        acc = await gate.call(scorer.account, account_id)
        if acc is None:
            raise ApiError(404, "unknown_account", f"no transfer of account '{account_id}' has been scored")
        return _json(acc)

    @app.get("/metrics", summary="Prometheus metrics", tags=["operations"], response_model=None,
             responses={200: {"content": {"text/plain": {}}}, **_ERRORS})
    async def get_metrics(request: Request) -> Response:
        await authenticate(request, "read")
        stats = await gate.call(scorer.stats)
        return Response(metrics.render(stats), media_type=CONTENT_TYPE)

    @app.get("/healthz", summary="Liveness (no authentication)", tags=["operations"], response_model=None)
    async def healthz() -> Response:
        return _json({"status": "ok", "uptime_seconds": round(time.time() - started, 1)})

    @app.get("/readyz", summary="Readiness (no authentication)", tags=["operations"], response_model=None,
             responses={503: {"description": "starting: the warm-up has not finished"}})
    async def readyz() -> Response:
        """200 once the state is loaded and the warm-up has run (route traffic here); 503 before.
        Reveals nothing but that — like /healthz, it needs no key (load balancers and probes)."""
        if not readiness["ready"]:
            return _json({"status": "starting"}, status=503)
        return _json({"status": "ready", "warm_up_seconds": readiness["warm_up_seconds"]})

    # -- the hot path ---------------------------------------------------------------------------
    # POST /v1/transactions is dispatched straight to its endpoint function, skipping FastAPI's
    # routing and exception middleware stack: measured 108 instead of 192 µs of server CPU per
    # one-transfer request (docs/benchmarks.md). The route above stays registered — the OpenAPI
    # spec documents it — and both paths run the same function and the same error handlers.
    route = next(r for r in app.routes if getattr(r, "path", None) == "/v1/transactions")

    async def handled(request: Request) -> Response:
        try:
            return await post_transactions(request)
        except ApiError as exc:
            return await _api_error(request, exc)
        except AuthError as exc:
            return await _auth_error(request, exc)
        except (StoreError, sqlite3.OperationalError) as exc:
            return await _store_error(request, exc)
        except Exception as exc:  # noqa: BLE001 - as the app's last-resort handler
            return await _internal(request, exc)

    def fast_path(inner: Any) -> Any:
        async def asgi(scope: dict, receive: Any, send: Any) -> None:
            if scope["type"] == "http" and scope["path"] == "/v1/transactions" and scope["method"] == "POST":
                scope["route"] = route  # the metrics label
                response = await handled(Request(scope, receive))
                await response(scope, receive, send)
                return
            await inner(scope, receive, send)

        return asgi

    app.add_middleware(fast_path)
    app.add_middleware(MetricsMiddleware, metrics=metrics)   # added last: outermost, so it sees both paths

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            components = spec.setdefault("components", {})
            components["securitySchemes"] = {"ApiKey": {
                "type": "http", "scheme": "bearer",
                "description": "API key `ksg_<id>_<secret>` from `kalasag apikey create`; scope `score` for POST, `read` for GET"}}
            for path, ops in spec["paths"].items():
                if path not in ("/healthz", "/readyz"):
                    for op in ops.values():
                        op["security"] = [{"ApiKey": []}]
            schemas = components.setdefault("schemas", {})
            for model in (Transfer, TransferBatch):
                js = _json_schema(model)
                schemas.update(js.pop("$defs", {}))
                schemas[model.__name__] = js
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _rejection_message(r: Rejection, what: str) -> str:
    where = f"transfers[{r.index}]" + (f" (txn_id {r.txn_id})" if r.txn_id else "")
    field = f" field '{r.field}'" if r.field else ""
    return f"{where}{field}: {r.reason}: {r.message}; nothing in {what} was applied"


def _version() -> str:
    try:
        import kalasag

        return kalasag.__version__
    except Exception:  # noqa: BLE001
        return "0"
