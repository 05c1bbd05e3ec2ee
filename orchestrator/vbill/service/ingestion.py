"""Ingestion over HTTP (docs/http-api.md): attest answered once the event is signed and logged
(`Prefer: respond-async` → 202, the proof follows), batches of events, and the `proving` view
of a bundle whose proof has not been attached yet.

Without the header, attest still answers with the finished bundle: the event goes through the
same ingestion, leased to this request, which proves it at once (a local worker never proves
it twice). 422, 409 and 429 are decided at ingestion, never later.
"""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from vbill import jsonio
from vbill.bindings.registry import event_binding
from vbill.bundle.usage import usage_of
from vbill.errors import InputError
from vbill.ingest import MAX_BATCH, Outcome
from vbill.ledger.store import StoredBundle, StoredCorrection
from vbill.service.auth import require_operator
from vbill.service.openapi import OPERATOR, Error, errors, json_body
from vbill.service.state import ServiceState
from vbill.service.views import EventsRequest

router = APIRouter()


def wants_async(request: Request) -> bool:
    """RFC 7240: `Prefer: respond-async` (among other preferences, any case)."""
    prefs = request.headers.get("prefer", "")
    return any(p.split("=")[0].strip().lower() == "respond-async" for p in prefs.split(","))


def bundle_view(stored: StoredBundle, correction: StoredCorrection | None = None) -> dict[str, Any]:
    """The stored bundle; while it awaits its proof, without one and marked `proving`; a
    metered one with its `usage` object, which names the event's correction if it has one."""
    bundle = stored.bundle if stored.proven else {**stored.bundle, "status": "proving"}
    if event_binding(bundle).windowed:  # its usage object reads the window
        usage = usage_of(bundle)
        if correction is not None:
            usage["corrected_by"] = {
                "correction_id": correction.correction_id,
                "credit_micros": correction.credit_micros,
            }
        bundle = {**bundle, "usage": usage}
    return bundle


def attest_one(svc: ServiceState, body: dict[str, Any], respond_async: bool) -> Outcome:
    """Ingest one event (its refusal raised: 422 / 409 / 429 by the app's handlers); unless
    the caller asked to be answered early, prove it here too."""
    assert svc.ingestor is not None
    return svc.ingestor.attest(body, prove=not respond_async)


def attest_response(svc: ServiceState, outcome: Outcome) -> JSONResponse:
    stored = outcome.result()
    created = outcome.status == "created"
    if created and stored.settlement_status == "pending" and stored.proven and svc.worker:
        svc.worker.wake()
    headers = {"X-VDI-Replay": "false" if created else "true"}
    if not stored.proven:
        headers["Preference-Applied"] = "respond-async"
    return JSONResponse(
        bundle_view(stored), status_code=200 if stored.proven else 202, headers=headers
    )


@router.post(
    "/api/vdi/billing/events",
    dependencies=[Depends(require_operator)],
    openapi_extra=json_body(EventsRequest),
    responses={
        **errors(*OPERATOR, 503),
        422: {"model": Error, "description": 'the body is not {"events": [...]} of 1 to 1,000'},
    },
)
async def ingest_events(request: Request) -> dict[str, Any]:
    """Up to 1,000 attest requests in one call, each decided on its own, answered in order:
    `created` (signed and logged; the proof follows), `same`, `conflict`, `invalid` or
    `limited`, with `error` for the last three. One transaction and one signed tree head per
    group commit."""
    svc: ServiceState = request.app.state.svc
    body = jsonio.loads(await request.body(), "body")
    events = body.get("events") if isinstance(body, dict) else None
    if not isinstance(events, list) or set(body) != {"events"}:
        raise InputError("events", 'expected {"events": [attest request, …]}')
    if not 1 <= len(events) <= MAX_BATCH:
        raise InputError("events", f"expected 1 to {MAX_BATCH} events, got {len(events)}")
    ingestor = svc.ingestor
    assert ingestor is not None

    def work() -> list[Any]:
        svc.refuse_if_cannot_sign()  # reads the store: off the event loop
        return ingestor.ingest(events)

    outcomes = await anyio.to_thread.run_sync(work)
    return {"results": [o.to_json() for o in outcomes]}
