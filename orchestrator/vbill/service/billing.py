"""The end of a billing period over HTTP (docs/http-api.md): close a window, its close record,
its invoice, and finding things: windows, a window's entries (paginated) and its CSV export.

Closing is the operator's; reading is the operator's or, with its token, the tenant's, for its
own windows only (another tenant's window is 404, like one that does not exist).
"""

from __future__ import annotations

import base64
import csv
import io
import re
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import HTMLResponse, JSONResponse, Response

from vbill.billing.closing import close_window
from vbill.billing.invoice import invoice_html, invoice_of
from vbill.billing.models import CloseRecord, EntryPage, Invoice, WindowPage
from vbill.billing.periods import _rfc3339, period_of
from vbill.errors import InputError
from vbill.ledger.store import NoWindow, WindowKey
from vbill.service.auth import AnyCaller, require_operator, visible_to
from vbill.service.openapi import CALLER, OPERATOR, errors
from vbill.service.routes import State
from vbill.service.windows import verified_window, window_key

router = APIRouter()
Operator = Depends(require_operator)
TariffId = Annotated[str | None, Query(description="the window's tariff, if it has several")]
MAX_PAGE = 1000


@router.post(
    "/api/vdi/billing/windows/{tenant_id}/{billing_window_id}/close",
    dependencies=[Operator],
    responses={
        200: {"model": CloseRecord, "description": "the close record (the same when closed "
              "before)"},
        **errors(*OPERATOR, 404, 409),
    },
)  # fmt: skip
async def close(
    tenant_id: str, billing_window_id: str, svc: State, tariff_id: TariffId = None
) -> JSONResponse:
    """Close a window: sign and log its close record (last seq and state key, totals). The
    window then takes no more events or corrections (409 naming the close). Idempotent."""
    key = window_key(svc, tenant_id, billing_window_id, tariff_id)

    def work() -> Any:
        try:
            return close_window(svc.store, svc.attester, key)
        except NoWindow as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None

    closed = await anyio.to_thread.run_sync(work)
    return JSONResponse(closed.record)


@router.get(
    "/api/vdi/billing/windows/{tenant_id}/{billing_window_id}/close",
    response_model=CloseRecord,
    responses=errors(*CALLER, 409),
)
def close_record(
    tenant_id: str,
    billing_window_id: str,
    svc: State,
    caller: AnyCaller,
    tariff_id: TariffId = None,
) -> dict[str, Any]:
    """The window's close record; 404 while it is open."""
    visible_to(caller, tenant_id)
    key = window_key(svc, tenant_id, billing_window_id, tariff_id)
    record = svc.store.window_close(key)
    if record is None:
        raise HTTPException(status_code=404, detail=f"window {billing_window_id!r} is open")
    return record


@router.get(
    "/api/vdi/billing/invoices/{tenant_id}/{billing_window_id}",
    responses={
        200: {
            "model": Invoice,
            "description": "the invoice (JSON, or HTML with ?format=html)",
            "content": {"text/html": {}},
        },
        **errors(*CALLER, 409, 422, 503),
    },
)
async def invoice(
    tenant_id: str,
    billing_window_id: str,
    svc: State,
    caller: AnyCaller,
    tariff_id: TariffId = None,
    format: Annotated[str, Query(pattern="^(json|html)$")] = "json",
) -> Response:
    """The window's invoice, re-derived from its verified statement: lines per (tariff
    version, dimension, tier), the rounding and clamp differences, summing exactly to
    total_micros; `closed` says whether the window can still grow."""
    visible_to(caller, tenant_id)
    key = window_key(svc, tenant_id, billing_window_id, tariff_id)
    verified = await verified_window(svc, key)
    inv = invoice_of(verified.statement, verified.bundles)
    if format == "html":
        return HTMLResponse(invoice_html(inv))
    return JSONResponse(inv)


def _cursor(key: WindowKey) -> str:
    return base64.urlsafe_b64encode("\x1f".join(key).encode()).decode().rstrip("=")


def _uncursor(cursor: str) -> WindowKey:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        a, b, c = raw.split("\x1f")
    except ValueError:  # no such page (a cursor's form is opaque: the document cannot state it)
        raise HTTPException(
            status_code=404, detail="no page at this cursor: not one this service gave out"
        ) from None
    return (a, b, c)


def _period(window_id: str) -> dict[str, str] | None:
    try:
        p = period_of(window_id)
    except InputError:
        return None
    return {"start": p.start, "end": p.end} if p else None


@router.get("/api/vdi/billing/windows", response_model=WindowPage, responses=errors(*CALLER, 422))
def list_windows(
    svc: State,
    caller: AnyCaller,
    tenant_id: Annotated[str | None, Query()] = None,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> dict[str, Any]:
    """Metered windows in (tenant, window, tariff_id) order, `limit` per page; follow
    `next_cursor` until it is null (a cursor this service did not give out is 404: no such
    page). A tenant token lists only its own."""
    if tenant_id is not None:
        visible_to(caller, tenant_id)
    tenant_id = tenant_id or caller.tenant_id
    after = _uncursor(cursor) if cursor else None
    rows = svc.store.windows(tenant_id, after=after, limit=limit)
    out = [
        {
            "tenant_id": w["key"][0],
            "billing_window_id": w["key"][1],
            "tariff_id": w["key"][2],
            "events": w["seq"],
            "total_micros": str(w["state"]["charge"]),
            "totals_by_dimension": w["state"]["units"],
            "period": _period(w["key"][1]),
            "closed": w["closed_at"] is not None,
            "closed_at": _rfc3339(w["closed_at"]) if w["closed_at"] is not None else None,
        }
        for w in rows
    ]
    return {"windows": out, "next_cursor": _cursor(rows[-1]["key"]) if len(rows) == limit else None}


def _entry(seq: int, kind: str, doc: dict[str, Any], leaf_index: int, proof: str) -> dict[str, Any]:
    """One chain entry as listed: an event, or a correction (its id, the event it corrects,
    the units it takes back as negative usage and its credit as a negative charge; its time is
    when it was logged, its fingerprint its signed digest)."""
    if kind == "correction":
        cor, original = doc["correction"], doc["original"]
        head = (doc.get("receipt") or {}).get("tree_head") or {}
        logged = head.get("timestamp")
        return {
            "seq": seq,
            "kind": "correction",
            "event_id": cor["correction_id"],
            "corrects": cor["corrects"],
            "reason": cor["reason"],
            "event_timestamp": _rfc3339(logged) if isinstance(logged, int) else "",
            "tariff_version": original["tariff_snapshot"]["tariff_version"],
            "usage": {k: -int(v) for k, v in cor["usage"].items()},
            "charge_micros": str(-int(doc["billing"]["credit_micros"])),
            "fingerprint": doc["attestation"]["bundle_digest"],
            "leaf_index": leaf_index,
            "proof_status": proof,
        }
    meter = doc["meter_event"]
    return {
        "seq": seq,
        "kind": "event",
        "event_id": meter["event_id"],
        "corrects": None,
        "reason": None,
        "event_timestamp": meter["event_timestamp"],
        "tariff_version": doc["tariff_snapshot"]["tariff_version"],
        "usage": meter["usage"],
        "charge_micros": str(doc["billing"]["expected_charge_micros"]),
        "fingerprint": doc["billing"]["billing_verify_fingerprint"],
        "leaf_index": leaf_index,
        "proof_status": proof,
    }


@router.get(
    "/api/vdi/billing/windows/{tenant_id}/{billing_window_id}/entries",
    response_model=EntryPage,
    responses=errors(*CALLER, 409, 422),
)
def window_entries(
    tenant_id: str,
    billing_window_id: str,
    svc: State,
    caller: AnyCaller,
    tariff_id: TariffId = None,
    after_seq: Annotated[int, Query(ge=0, lt=2**63)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> dict[str, Any]:
    """A window's entries in seq order after `after_seq`, `limit` per page; follow
    `next_after_seq` until it is null."""
    visible_to(caller, tenant_id)
    key = window_key(svc, tenant_id, billing_window_id, tariff_id)
    page = svc.store.window_page(key, after_seq=after_seq, limit=limit)
    return {
        "tenant_id": key[0],
        "billing_window_id": key[1],
        "tariff_id": key[2],
        "entries": [_entry(*row) for row in page],
        "next_after_seq": page[-1][0] if len(page) == limit else None,
    }


class _SafeWriter:
    """A csv writer that quotes away spreadsheet formulas: a text cell starting with =, +, -,
    @, tab or CR gets a leading ' (OWASP's CSV injection advice); numbers are written as is."""

    def __init__(self, writer: Any) -> None:
        self.writer = writer

    def writerow(self, row: list[Any]) -> None:
        self.writer.writerow(
            ["'" + c if isinstance(c, str) and c[:1] in ("=", "+", "-", "@", "\t", "\r") else c
             for c in row]
        )  # fmt: skip


@router.get(
    "/api/vdi/billing/windows/{tenant_id}/{billing_window_id}/export.csv",
    responses={
        200: {"description": "one row per entry", "content": {"text/csv": {}}},
        **errors(*CALLER, 409),
    },
)
def window_csv(
    tenant_id: str,
    billing_window_id: str,
    svc: State,
    caller: AnyCaller,
    tariff_id: TariffId = None,
) -> Response:
    """The window as CSV, one row per entry in seq order: seq, kind (event or correction), ids,
    timestamp, tariff version, units per dimension, charge (micros; a correction's credit and
    units taken back are negative), log leaf, fingerprint."""
    visible_to(caller, tenant_id)
    key = window_key(svc, tenant_id, billing_window_id, tariff_id)
    head = svc.store.window_head(key)
    assert head is not None
    names = sorted(head.state["units"])
    buf = io.StringIO()
    out = _SafeWriter(csv.writer(buf, lineterminator="\r\n"))
    out.writerow(
        ["seq", "kind", "tenant_id", "billing_window_id", "tariff_id", "event_id", "corrects",
         "event_timestamp", "tariff_version", *(f"units_{n}" for n in names), "charge_micros",
         "leaf_index", "fingerprint"]
    )  # fmt: skip
    after = 0
    while True:
        page = svc.store.window_page(key, after_seq=after, limit=MAX_PAGE)
        for row in page:
            e = _entry(*row)
            out.writerow(
                [e["seq"], e["kind"], *key, e["event_id"], e["corrects"] or "",
                 e["event_timestamp"], e["tariff_version"], *(e["usage"].get(n, 0) for n in names),
                 int(e["charge_micros"]), e["leaf_index"], e["fingerprint"]]
            )  # fmt: skip
        if len(page) < MAX_PAGE:
            break
        after = page[-1][0]
    name = re.sub(r"[^A-Za-z0-9._-]", "_", f"{key[0]}-{key[1]}-{key[2]}.csv")
    return Response(
        buf.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
