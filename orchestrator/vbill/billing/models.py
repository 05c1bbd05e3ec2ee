"""Pydantic models of what the end of a period puts on the wire (HTTP answers, files): close
records, invoices, window listings and entries (docs/http-api.md)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, StrictBool, StrictInt, StrictStr

from vbill.models import Receipt


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CloseAttestation(_Strict):
    scheme: StrictStr
    attester: StrictStr
    digest: StrictStr
    signature: StrictStr


class CloseRecord(_Strict):
    """A window's close record (docs/protocol-v2.md §13): signed and logged."""

    close_version: StrictStr
    tenant_id: StrictStr
    billing_window_id: StrictStr
    tariff_id: StrictStr
    currency: StrictStr
    last_seq: StrictInt
    last_event_id: StrictStr
    last_state_key: StrictStr
    total_micros: StrictStr
    amount: StrictStr
    totals_by_dimension: dict[str, StrictStr]
    closed_at: StrictStr
    closed_by: StrictStr
    attestation: CloseAttestation
    receipt: Receipt


class InvoiceLine(BaseModel):
    """One line: `usage` (tier units × unit price), `rounding` or `clamp`; the other members
    depend on the kind (docs/http-api.md)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    kind: StrictStr
    amount_micros: StrictStr
    amount: StrictStr


class Invoice(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)
    invoice_version: StrictStr
    tenant_id: StrictStr
    billing_window_id: StrictStr
    tariff_id: StrictStr
    currency: StrictStr
    closed: StrictBool
    events: StrictInt
    total_micros: StrictStr
    total: StrictStr
    lines: list[InvoiceLine]
    corrections: list[dict[str, Any]]


class WindowSummary(_Strict):
    tenant_id: StrictStr
    billing_window_id: StrictStr
    tariff_id: StrictStr
    events: StrictInt
    total_micros: StrictStr
    totals_by_dimension: dict[str, StrictStr]
    period: dict[str, StrictStr] | None
    closed: StrictBool
    closed_at: StrictStr | None


class WindowPage(_Strict):
    windows: list[WindowSummary]
    next_cursor: StrictStr | None


class Entry(_Strict):
    """A window's chain entry: an event, or a correction (`event_id` its correction id,
    `corrects` the event, usage and charge negative: units and credit taken back)."""

    seq: StrictInt
    kind: StrictStr
    event_id: StrictStr
    corrects: StrictStr | None
    reason: StrictStr | None
    event_timestamp: StrictStr
    tariff_version: StrictStr
    usage: dict[str, StrictInt]
    charge_micros: StrictStr
    fingerprint: StrictStr
    leaf_index: StrictInt
    proof_status: StrictStr


class EntryPage(_Strict):
    tenant_id: StrictStr
    billing_window_id: StrictStr
    tariff_id: StrictStr
    entries: list[Entry]
    next_after_seq: StrictInt | None
