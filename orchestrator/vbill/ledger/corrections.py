"""Corrections (docs/protocol-corrections.md): signed, logged documents that take units back
from one earlier event; at most one per event, each an entry of its window's chain."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vbill.bindings.registry import event_binding
from vbill.errors import ToolError
from vbill.ledger import outbox, translog
from vbill.ledger.bundles import Bundles, StoredBundle
from vbill.ledger.db import Database, EventLocks, json_or_none, mapper, now_ms, stored_amount
from vbill.ledger.errors import Conflict, NotFound, WindowMoved
from vbill.ledger.log import Log
from vbill.ledger.windows import WindowHead, WindowKey, Windows


@dataclass(frozen=True)
class StoredCorrection:
    """A logged correction (docs/protocol-corrections.md): its document carries its receipt."""

    tenant_id: str
    correction_id: str
    corrects: str
    request_hash: str
    doc: dict[str, Any]
    digest: str
    leaf_index: int
    currency: str
    credit_micros: int
    nullifier: str
    settlement_status: str
    settlement: dict[str, Any] | None
    created_at: int


class Corrections:
    """The corrections table: find and log corrections."""

    def __init__(
        self, db: Database, log: Log, locks: EventLocks, bundles: Bundles, windows: Windows
    ) -> None:
        self.db = db
        self.log = log
        self.locks = locks
        self.bundles = bundles
        self.windows = windows

    def find_correction(self, tenant_id: str, correction_id: str) -> StoredCorrection | None:
        row = (
            self.db.conn()
            .execute(
                "SELECT * FROM corrections WHERE tenant_id = ? AND correction_id = ?",
                (tenant_id, correction_id),
            )
            .fetchone()
        )
        return correction_row(row) if row else None

    def correction_of(self, tenant_id: str, event_id: str) -> StoredCorrection | None:
        """The correction of one event, if it has one (an event is corrected at most once)."""
        row = (
            self.db.conn()
            .execute(
                "SELECT * FROM corrections WHERE tenant_id = ? AND corrects = ?",
                (tenant_id, event_id),
            )
            .fetchone()
        )
        return correction_row(row) if row else None

    def corrections(self, tenant_id: str | None = None) -> list[StoredCorrection]:
        sql, args = "SELECT * FROM corrections", ()
        if tenant_id is not None:
            sql, args = sql + " WHERE tenant_id = ?", (tenant_id,)
        return [
            correction_row(r) for r in self.db.conn().execute(sql + " ORDER BY leaf_index", args)
        ]

    def correct(
        self,
        *,
        tenant_id: str,
        correction_id: str,
        corrects: str,
        request_hash: str,
        build: Callable[[StoredBundle, WindowHead | None], dict[str, Any]],
        attempts: int = 100,
    ) -> tuple[StoredCorrection, bool]:
        """Log one correction of the tenant's event `corrects`; returns (stored, created).

        The same correction_id again with the same payload returns the stored one, with
        another payload is a Conflict; an unknown event (or another tenant's) is NotFound; an
        event already corrected, or a correction_id that names an event, is a Conflict.
        `build(original, head)` proves and signs the document from the window's head (slow,
        outside any transaction); the insert checks the head has not moved, else builds again.
        """
        self.log.require_key()
        with self.locks.hold(("correction", tenant_id, correction_id)):
            for _ in range(attempts):
                existing = self.find_correction(tenant_id, correction_id)
                if existing is not None:
                    if existing.request_hash != request_hash:
                        raise Conflict(
                            f"correction_id {correction_id!r} of tenant {tenant_id!r} is "
                            "already logged with a different payload"
                        )
                    return existing, False
                original = self.bundles.find(tenant_id, corrects)
                if original is None:
                    raise NotFound(f"no event {corrects!r} for tenant {tenant_id!r}")
                if self.bundles.find(tenant_id, correction_id) is not None:
                    raise Conflict(f"correction_id {correction_id!r} is an event id of the tenant")
                self._not_corrected(self.db.conn(), tenant_id, corrects)
                window = _window_of(original)
                head = self.windows.window_head(window) if window else None
                doc = build(original, head)
                try:
                    return self._insert_correction(
                        tenant_id,
                        correction_id,
                        corrects,
                        request_hash,
                        doc,
                        original,
                        window,
                        head,
                    ), True
                except WindowMoved:
                    continue
        raise ToolError(f"the window of {corrects!r} kept moving; try again")

    def _not_corrected(self, c: sqlite3.Connection, tenant_id: str, corrects: str) -> None:
        row = c.execute(
            "SELECT correction_id FROM corrections WHERE tenant_id = ? AND corrects = ?",
            (tenant_id, corrects),
        ).fetchone()
        if row is not None:
            raise Conflict(f"event {corrects!r} is already corrected by {row[0]!r}")

    def _insert_correction(
        self,
        tenant_id: str,
        correction_id: str,
        corrects: str,
        request_hash: str,
        doc: dict[str, Any],
        original: StoredBundle,
        window: WindowKey | None,
        head: WindowHead | None,
    ) -> StoredCorrection:
        digest = bytes.fromhex(doc["attestation"]["bundle_digest"].removeprefix("0x"))
        credit = doc["billing"]["credit_micros"]
        bp = doc["attestation"].get("billing_proof")  # a v1 void has no proof of its own
        nullifier = bp["public_signals"][3] if bp else doc["original"]["nullifier"]
        with self.db.tx() as c:
            self._not_corrected(c, tenant_id, corrects)
            if window is not None:
                self.windows.refuse_if_closed(c, window)
                now = self.windows.head(c, window)
                if now is None or head is None or now.seq != head.seq:
                    raise WindowMoved(f"window {window} moved past seq {head and head.seq}")
            leaf = translog.leaf_hash(digest)
            with self.log.appending(c) as index:
                at = now_ms()
                receipt = self.log.append(c, leaf, at)
                stored = {**doc, "receipt": receipt.to_dict()}
                c.execute(
                    "INSERT INTO corrections (tenant_id, correction_id, corrects, "
                    "request_hash, doc_json, digest, leaf_index, currency, credit_micros, "
                    "nullifier, created_at, settlement_status) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        tenant_id,
                        correction_id,
                        corrects,
                        request_hash,
                        json.dumps(stored, sort_keys=True),
                        "0x" + digest.hex(),
                        index,
                        original.currency,
                        stored_amount(credit),
                        nullifier,
                        at,
                        # a proven correction of an ETH charge is settled on chain (after
                        # its original); a v1 void carries no proof of its own
                        "pending" if original.currency == "ETH" and bp else "none",
                    ),
                )
                if window is not None and head is not None:
                    w = doc["billing"]["window"]
                    if w["seq"] != head.seq + 1:
                        raise ToolError(f"correction has seq {w['seq']}, head is {head.seq}")
                    self.windows.advance(
                        c, window, head.seq + 1, correction_id, w["after"], kind="correction"
                    )
                created = {
                    "correction_id": correction_id,
                    "corrects": corrects,
                    "reason": doc["correction"]["reason"],
                    "credit_micros": int(credit),
                    "currency": original.currency,
                    "billing_window_id": window[1] if window else None,
                    "tariff_id": window[2] if window else None,
                    "usage": doc["correction"].get("usage"),  # None: a binding v1 void
                    "leaf_index": index,
                }
                outbox.enqueue(c, tenant_id, "correction.created", created, at)
        found = self.find_correction(tenant_id, correction_id)
        assert found is not None
        return found


correction_row = mapper(
    StoredCorrection,
    doc=("doc_json", json.loads),
    credit_micros=int,
    settlement=("settlement_json", json_or_none),
)


def _window_of(bundle: StoredBundle) -> WindowKey | None:
    """The window key of a bundle of a windowed binding (metered); None for others (no window
    chain)."""
    b = bundle.bundle
    if not event_binding(b).windowed:
        return None
    tariff = b["tariff_snapshot"]
    return (bundle.tenant_id, b["meter_event"]["billing_window_id"], tariff["tariff_id"])
