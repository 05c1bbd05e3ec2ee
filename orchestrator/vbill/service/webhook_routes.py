"""Webhook endpoints and the outbox over HTTP (operator only), and `GET /metrics`
(docs/http-api.md, docs/operations.md).

An endpoint's secret is in the answer that creates or rotates it, and in no other answer.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

from vbill import metrics
from vbill.errors import InputError
from vbill.ledger.outbox import EVENT_TYPES, URL_PATTERN, Outbox
from vbill.ledger.outbox import ID as outbox_ids
from vbill.ledger.store import now_ms
from vbill.service.auth import require_operator
from vbill.service.openapi import OPERATOR, errors
from vbill.service.routes import State
from vbill.service.webhooks import send_test

router = APIRouter(prefix="/api/vdi/webhooks", dependencies=[Depends(require_operator)])
metrics_router = APIRouter()
ID = "^" + outbox_ids.pattern + "$"
EndpointId = Annotated[str, Path(pattern=ID)]
EventType = Annotated[StrictStr, Field(pattern="^(" + "|".join(map(re.escape, EVENT_TYPES)) + ")$")]


async def _outbox(svc: State) -> Outbox:
    return Outbox(svc.store)


Queue = Annotated[Outbox, Depends(_outbox)]


def _known(outbox: Outbox, endpoint_id: str) -> None:
    try:
        outbox.endpoint(endpoint_id)
    except InputError:
        detail = f"no webhook endpoint {endpoint_id!r}"
        raise HTTPException(status_code=404, detail=detail) from None


class EndpointBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: StrictStr = Field(
        min_length=1,
        max_length=2048,
        description="http(s) URL to POST to",
        json_schema_extra={"pattern": URL_PATTERN},
    )
    events: list[EventType] = Field(
        default_factory=list, max_length=len(EVENT_TYPES), description="[] = every event type"
    )


class EndpointView(BaseModel):
    id: str
    url: str
    events: list[str]
    created_at: int


class SecretView(BaseModel):
    id: str
    secret: str = Field(description="`whsec_…`: shown here only; verify deliveries with it")


class EndpointList(BaseModel):
    endpoints: list[EndpointView]


class TestResult(BaseModel):
    id: str
    webhook_id: str
    delivered: bool
    error: str | None


class RedeliverBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={  # exactly one of them (the handler's rule, stated)
            "oneOf": [
                {
                    "required": ["event"],
                    "properties": {"event": {"type": "string"}, "dead": {"const": False}},
                },
                {
                    "required": ["dead"],
                    "properties": {"dead": {"const": True}, "event": {"type": "null"}},
                },
            ]
        },
    )
    event: StrictStr | None = Field(
        default=None, pattern=ID, description="one event, by its message id (`webhook-id`)"
    )
    dead: StrictBool = Field(default=False, description="true: every dead delivery instead")
    endpoint: StrictStr | None = Field(default=None, pattern=ID, description="only this one")


@router.post("", status_code=201, responses={201: {"model": SecretView}, **errors(*OPERATOR, 422)})
def add_endpoint(body: EndpointBody, outbox: Queue) -> dict[str, Any]:
    """Register an endpoint for some event types (all by default); the answer holds its
    id and its signing secret, which no other answer shows."""
    ep = outbox.add_endpoint(body.url, body.events, now_ms())
    return {"id": ep.endpoint_id, "secret": ep.secret}


@router.get("", responses={200: {"model": EndpointList}, **errors(*OPERATOR)})
def list_endpoints(outbox: Queue) -> dict[str, Any]:
    """The registered endpoints, without their secrets."""
    return {"endpoints": [ep.view() for ep in outbox.endpoints()]}


@router.post(
    "/{endpoint_id}/rotate", responses={200: {"model": SecretView}, **errors(*OPERATOR, 404, 422)}
)
def rotate(endpoint_id: EndpointId, outbox: Queue) -> dict[str, Any]:
    """A new secret for the endpoint; every delivery from now on, retries too, is signed with it."""
    _known(outbox, endpoint_id)
    ep = outbox.rotate(endpoint_id, now_ms())
    return {"id": ep.endpoint_id, "secret": ep.secret}


@router.delete("/{endpoint_id}", responses=errors(*OPERATOR, 404, 422))
def remove(endpoint_id: EndpointId, outbox: Queue) -> dict[str, Any]:
    """Remove the endpoint and drop its queued deliveries."""
    _known(outbox, endpoint_id)
    outbox.remove(endpoint_id)
    return {"id": endpoint_id, "removed": True}


@router.post(
    "/{endpoint_id}/test", responses={200: {"model": TestResult}, **errors(*OPERATOR, 404, 422)}
)
async def test(endpoint_id: EndpointId, svc: State, outbox: Queue) -> dict[str, Any]:
    """Send a signed `webhook.test` event to the endpoint now; `delivered` says whether it
    answered 2xx (`error` why not)."""
    _known(outbox, endpoint_id)
    return await anyio.to_thread.run_sync(
        lambda: send_test(svc.store, endpoint_id, svc.settings.webhook_timeout)
    )


@router.get("/deliveries", responses=errors(*OPERATOR, 422))
def deliveries(
    outbox: Queue,
    status: Annotated[str | None, Query(pattern="^(pending|delivered|dead)$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """The latest outbox rows (newest first, without payloads): message id, endpoint, event
    type, status, attempts, last error."""
    return {"deliveries": outbox.rows(status, limit)}


@router.post("/redeliver", responses=errors(*OPERATOR, 404, 422))
def redeliver(body: RedeliverBody, outbox: Queue) -> dict[str, Any]:
    """Queue again one event (`event`: its `webhook-id`; to all its endpoints or `endpoint`),
    or every dead delivery (`dead: true`; of `endpoint`). It keeps its place in its tenant's
    order."""
    if (body.event is None) == (not body.dead):
        raise InputError("event", 'give either "event" or "dead": true')
    if body.endpoint is not None:
        _known(outbox, body.endpoint)
    try:
        n = outbox.redeliver(now_ms(), msg_id=body.event, endpoint_id=body.endpoint)
    except InputError as exc:
        raise HTTPException(status_code=404, detail=exc.message) from None
    return {"queued": n}


@metrics_router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
def prometheus(svc: State) -> Response:
    """Prometheus metrics of this replica and of the shared store (docs/operations.md); no
    tenant, event or endpoint id appears in them."""
    from prometheus_client import CONTENT_TYPE_LATEST

    return Response(metrics.exposition(svc.metrics), media_type=CONTENT_TYPE_LATEST)
