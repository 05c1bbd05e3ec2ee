"""FastAPI app factory: wires the store, attester key, prover pool and settlement worker.

`create_app(settings)` builds everything at startup (lifespan) and tears it down at shutdown,
so tests run the real app in-process or under uvicorn with no global state.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from fractions import Fraction
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from vbill import metrics, paths
from vbill.billing.closing import AutoCloser
from vbill.bundle.keys import Attester, attester_key_path
from vbill.bundle.usage import RateSource
from vbill.errors import InputError, ToolError, VbillError
from vbill.ingest import Ingestor, ProvingWorker, close_provers, open_provers, worker_id
from vbill.ledger.store import Conflict, LimitExceeded, NotFound, open_store
from vbill.service.guard import BodyGuard, RelativeRedirects
from vbill.service.settings import Settings
from vbill.service.settlement import SettlementWorker
from vbill.service.state import ServiceState
from vbill.service.webhooks import DeliveryPolicy, WebhookDispatcher
from vbill.version import __version__

log = logging.getLogger("vbill.service")


class SafeJSON(JSONResponse):
    """JSON whose text may echo hostile input: a character UTF-8 cannot encode (a lone
    surrogate) goes out as its JSON escape instead of failing the answer with a 500."""

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return text.encode("utf-8", "backslashreplace")


def allowed_methods(app: FastAPI, path: str) -> str:
    """The `Allow` value of a path: the methods its operations in the OpenAPI document have
    (HEAD with GET), so a 405 names them all even when they are separate routes; a literal
    path (`/webhooks/deliveries`) wins over a template that also matches it."""
    found: dict[int, set[str]] = {}
    for template, ops in app.openapi()["paths"].items():
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            found.setdefault(template.count("{"), set()).update(m.upper() for m in ops)
    methods = found[min(found)] if found else set()
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


def _attester(settings: Settings) -> Attester:
    path = settings.home / attester_key_path().name
    if settings.dev:
        return Attester.load_or_create(path)
    return Attester.load(path)


def _chain_connector(settings: Settings, attester: Attester) -> Any:
    from vbill import chain as chainmod

    def connect() -> chainmod.Chain:
        c = chainmod.connect(
            settings.network or "local", rpc_url=settings.rpc_url, account=attester.account
        )
        if settings.settlement_address:
            c.use_settlement(settings.settlement_address)
        return c

    return connect


def _host_only(url: str | None) -> str | None:
    """An RPC URL without path, query or credentials (hosted RPC URLs often embed API keys)."""
    if not url:
        return None
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")


def _redactor(url: str | None) -> Any:
    host = _host_only(url)
    return (lambda text: text.replace(url, host or "")) if url and host != url else (lambda t: t)


def build_state(settings: Settings) -> ServiceState:
    settings = settings.resolved()
    paths.require(paths.VKEY)
    attester = _attester(settings)
    store = open_store(settings.database_url, home=settings.home, log_key=attester.account)
    store.deposits_tracked = bool(settings.network)  # no chain: no deposit is ever credited
    store.usage_shares = tuple(Fraction(str(s)) for s in settings.usage_thresholds)
    store.balance_low_wei = settings.balance_low_wei
    # every binding set up here (`make setup`); requests of another are refused with 503
    provers = open_provers(settings.prover_workers)
    state = ServiceState(
        settings=settings,
        store=store,
        attester=attester,
        provers=provers,
        limiter=anyio.CapacityLimiter(max(4, 4 * settings.prover_workers)),
    )
    state.ingestor = Ingestor(
        store, attester, provers, RateSource.from_config(settings.usd_rate, settings.home)
    )
    local = settings.prover_workers if settings.local_provers is None else settings.local_provers
    state.proving_workers = [
        ProvingWorker(store, provers, name=f"{worker_id()}:{i}") for i in range(local)
    ]
    if settings.network:
        state.worker = SettlementWorker(
            store,
            _chain_connector(settings, attester),
            interval=settings.settle_interval,
            batch=settings.settle_batch,
            confirmations=settings.confirmations,
            anchor_interval=settings.anchor_interval,
            redact=_redactor(settings.rpc_url),
            start_block=settings.start_block
            if settings.settlement_address is None
            else settings.start_block or 0,
        )
        state.chain_info = {
            "network": settings.network,
            "rpc_host": _host_only(settings.rpc_url),
            "settlement_address": settings.settlement_address,
        }
    state.webhooks = WebhookDispatcher(
        store,
        DeliveryPolicy(
            settings.webhook_max_attempts,
            settings.webhook_backoff,
            settings.webhook_timeout,
            settings.webhook_retention_days,
        ),
    )
    state.metrics = metrics.store_registry(store)
    if settings.close_grace_days is not None:
        state.closer = AutoCloser(
            store, attester, settings.close_grace_days, settings.close_check_interval
        )
    store.head()  # the empty log gets a signed head at once
    return state


def create_app(settings: Settings, prebuilt: ServiceState | None = None) -> FastAPI:
    """The vbill HTTP service (docs/http-api.md). Raises ToolError at startup if it cannot serve;
    `prebuilt`: the state already built (`vbill serve` builds it before binding the port, so
    every start-up problem is one line and exit 3, never a traceback inside uvicorn)."""
    from vbill.service import billing, customer, ingestion, verifier_page, webhook_routes
    from vbill.service.openapi import RULES_BEYOND_SCHEMA, errors, install_docs
    from vbill.service.routes import router

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc = prebuilt if prebuilt is not None else build_state(settings)
        app.state.svc = svc
        if svc.worker is not None:
            svc.worker.start()
        for proving in svc.proving_workers:
            proving.start()
        if svc.webhooks is not None:
            svc.webhooks.start()
        if svc.closer is not None:
            svc.closer.start()
        log.info("vbill service up: attester %s", svc.attester.address)
        try:
            yield
        finally:
            if svc.worker is not None:
                await anyio.to_thread.run_sync(svc.worker.stop)
            if svc.closer is not None:
                await anyio.to_thread.run_sync(svc.closer.stop)
            for proving in svc.proving_workers:
                await anyio.to_thread.run_sync(proving.stop)
            if svc.webhooks is not None:
                await anyio.to_thread.run_sync(svc.webhooks.stop)
            if svc.ingestor is not None:
                svc.ingestor.close()
            close_provers(svc.provers)
            svc.store.close()

    app = FastAPI(
        title="vbill",
        version=__version__,
        description="Verifiable usage billing: attest billable events with Groth16 proofs, "
        "verify bundles, read the transparency log, settle charges in ETH. "
        'Every error is `{"detail": ...}` (schema `Error`); see docs/http-api.md.\n\n'
        + RULES_BEYOND_SCHEMA,
        lifespan=lifespan,
        default_response_class=SafeJSON,
        docs_url=None,  # served offline by install_docs
        redoc_url=None,
        responses=errors(400, 413),  # any route: VbillError, BodyGuard
    )
    install_docs(app)
    app.include_router(router)
    app.include_router(ingestion.router)
    app.include_router(customer.router)
    app.include_router(webhook_routes.router)
    app.include_router(webhook_routes.metrics_router)
    app.include_router(billing.router)
    app.include_router(verifier_page.router)
    app.add_middleware(BodyGuard)  # every endpoint: bounded body size and JSON nesting
    app.add_middleware(RelativeRedirects)  # a redirect never names the Host header's host

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # every method the path answers, not only one route's
            headers["Allow"] = allowed_methods(app, request.url.path) or headers.get("Allow", "")
        if exc.status_code in (204, 304):
            return Response(status_code=exc.status_code, headers=headers)
        return SafeJSON({"detail": exc.detail}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(InputError)
    async def _input(_: Request, exc: InputError) -> SafeJSON:
        return SafeJSON(
            status_code=422, content={"detail": {"field": exc.field, "message": exc.message}}
        )

    @app.exception_handler(Conflict)
    async def _conflict(_: Request, exc: Conflict) -> SafeJSON:
        return SafeJSON(status_code=409, content={"detail": str(exc)})

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(exc)})

    @app.exception_handler(LimitExceeded)
    async def _limit(_: Request, exc: LimitExceeded) -> SafeJSON:
        return SafeJSON(
            status_code=429,
            content={"detail": exc.reason, "retry_after": exc.retry_after},
            headers={"Retry-After": str(exc.retry_after)},
        )

    @app.exception_handler(ToolError)
    async def _tool(_: Request, exc: ToolError) -> SafeJSON:
        log.error("environment error: %s", exc)
        return SafeJSON(status_code=503, content={"detail": str(exc)})

    @app.exception_handler(VbillError)
    async def _vbill(_: Request, exc: VbillError) -> SafeJSON:
        return SafeJSON(status_code=400, content={"detail": str(exc)})

    return app
