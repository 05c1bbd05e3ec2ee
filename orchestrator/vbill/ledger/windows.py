"""Metered windows (binding v2): one chain of entries per (tenant, billing window, tariff_id),
its head (the last state), and its close record (vbill.billing.closing).

An entry is an event's bundle or a correction's document (window_events.kind); each takes the
next seq in the transaction that stores it, after checking the head it was built on.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from vbill.ledger import outbox, translog
from vbill.ledger.db import Database, now_ms
from vbill.ledger.errors import NoWindow, WindowClosed
from vbill.ledger.log import Log

WindowKey = tuple[str, str, str]
"""(tenant_id, billing_window_id, tariff_id) of a metered window."""


@dataclass(frozen=True)
class WindowHead:
    """A window's last state: its seq and the JSON state (the bundle's billing.window.after)."""

    seq: int
    event_id: str
    state: dict[str, Any]


class Windows:
    """The window_heads, window_events and window_closes tables."""

    def __init__(self, db: Database, log: Log) -> None:
        self.db = db
        self.log = log

    def window_head(self, window: WindowKey) -> WindowHead | None:
        return self.head(self.db.conn(), window)

    @staticmethod
    def head(c: sqlite3.Connection, window: WindowKey) -> WindowHead | None:
        row = c.execute(
            "SELECT seq, event_id, state_json FROM window_heads WHERE tenant_id = ? AND "
            "billing_window_id = ? AND tariff_id = ?",
            window,
        ).fetchone()
        return WindowHead(row[0], row[1], json.loads(row[2])) if row else None

    def window_tariffs(self, tenant_id: str, billing_window_id: str) -> list[str]:
        """The tariff_ids with a chain in this window of the tenant."""
        rows = self.db.conn().execute(
            "SELECT tariff_id FROM window_heads WHERE tenant_id = ? AND billing_window_id = ? "
            "ORDER BY tariff_id",
            (tenant_id, billing_window_id),
        )
        return [r[0] for r in rows]

    def advance(
        self,
        c: sqlite3.Connection,
        window: WindowKey,
        seq: int,
        event_id: str,
        after: Any,
        kind: str = "event",
    ) -> None:
        """Append entry `seq` (an event, or a correction by its correction_id) to the window
        and make its state the head (inside the insert's transaction; the head was checked to
        be seq − 1 there)."""
        state = json.dumps(after, sort_keys=True)
        c.execute(
            "INSERT INTO window_events (tenant_id, billing_window_id, tariff_id, seq, event_id, "
            "kind) VALUES (?, ?, ?, ?, ?, ?)",
            (*window, seq, event_id, kind),
        )
        c.execute(
            "INSERT INTO window_heads (tenant_id, billing_window_id, tariff_id, seq, event_id, "
            "state_json) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (tenant_id, billing_window_id, "
            "tariff_id) DO UPDATE SET seq = excluded.seq, event_id = excluded.event_id, "
            "state_json = excluded.state_json",
            (*window, seq, event_id, state),
        )

    def window_entries(self, window: WindowKey) -> list[tuple[str, dict[str, Any]]]:
        """A window's chain in seq order: ("event", bundle) and ("correction", document)."""
        rows = self.db.conn().execute(
            "SELECT w.kind, b.bundle_json, k.doc_json FROM window_events w "
            "LEFT JOIN bundles b ON w.kind = 'event' AND b.tenant_id = w.tenant_id AND "
            "b.event_id = w.event_id LEFT JOIN corrections k ON w.kind = 'correction' AND "
            "k.tenant_id = w.tenant_id AND k.correction_id = w.event_id WHERE w.tenant_id = ? "
            "AND w.billing_window_id = ? AND w.tariff_id = ? ORDER BY w.seq",
            window,
        )
        return [(r[0], json.loads(r[1] if r[0] == "event" else r[2])) for r in rows]

    def statement_items(self, window: WindowKey) -> list[tuple[str, dict[str, Any]]]:
        """(name, document) of a window's chain in seq order, events and corrections alike:
        what a window statement verifies."""
        return [
            (
                "store:"
                + (
                    doc["correction"]["correction_id"]
                    if kind == "correction"
                    else doc["meter_event"]["event_id"]
                ),
                doc,
            )
            for kind, doc in self.window_entries(window)
        ]

    @staticmethod
    def _window_close(c: sqlite3.Connection, window: WindowKey) -> dict[str, Any] | None:
        row = c.execute(
            "SELECT record_json FROM window_closes WHERE tenant_id = ? AND "
            "billing_window_id = ? AND tariff_id = ?",
            window,
        ).fetchone()
        return json.loads(row[0]) if row else None

    def window_close(self, window: WindowKey) -> dict[str, Any] | None:
        """The window's close record (signed, logged), None while it is open."""
        return self._window_close(self.db.conn(), window)

    def refuse_if_closed(self, c: sqlite3.Connection, window: WindowKey) -> None:
        record = self._window_close(c, window)
        if record is not None:
            raise WindowClosed(
                f"window {window[1]!r} of tenant {window[0]!r} (tariff_id {window[2]!r}) is "
                f"closed: close record at seq {record.get('last_seq')}, closed_at "
                f"{record.get('closed_at')}, log leaf {record.get('receipt', {}).get('leaf_index')}"
                "; it takes no more events or corrections"
            )

    def close_window(
        self,
        window: WindowKey,
        make: Callable[[WindowHead, dict[str, Any], int], tuple[dict[str, Any], bytes]],
    ) -> tuple[dict[str, Any], bool]:
        """Close a window once: `make(head, last entry, at_ms)` (the head's event bundle or
        correction document) gives the signed record and
        its digest, which is logged (leaf, signed head, receipt) and stored in one
        transaction with the check that the head is still that head. Returns (record with
        its receipt, created); closing again returns the stored record. NoWindow if the
        window has no chain."""
        self.log.require_key()
        with self.db.tx() as c:
            existing = self._window_close(c, window)
            if existing is not None:
                return existing, False
            head = self.head(c, window)
            if head is None:
                raise NoWindow(
                    f"no window {window[1]!r} of tenant {window[0]!r} with tariff_id {window[2]!r}"
                )
            [(_, _, last, _, _)] = self._window_page(c, window, head.seq - 1, 1)
            with self.log.appending(c) as index:
                at = now_ms()
                record, digest = make(head, last, at)
                receipt = self.log.append(c, translog.leaf_hash(digest), at)
                record = {**record, "receipt": receipt.to_dict()}
                c.execute(
                    "INSERT INTO window_closes (tenant_id, billing_window_id, tariff_id, seq, "
                    "leaf_index, closed_at, record_json) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (*window, head.seq, index, at, json.dumps(record, sort_keys=True)),
                )
                # webhooks, in the close's own transaction: the record is the invoice's end
                closed = {
                    "tenant_id": window[0],
                    "billing_window_id": window[1],
                    "tariff_id": window[2],
                    "last_seq": head.seq,
                    "total_micros": record["total_micros"],
                    "currency": record["currency"],
                    "closed_at": record["closed_at"],
                    "closed_by": record["closed_by"],
                    "leaf_index": index,
                }
                outbox.enqueue(c, window[0], "window.closed", closed, at)
                tenant, window_id, tariff = (quote(k, safe="") for k in window)
                invoice = f"/api/vdi/billing/invoices/{tenant}/{window_id}?tariff_id={tariff}"
                outbox.enqueue(c, window[0], "invoice.ready", {**closed, "invoice": invoice}, at)
        return record, True

    def windows(
        self, tenant_id: str | None = None, *, after: WindowKey | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Windows with a chain, in (tenant, window, tariff_id) order, `limit` after the key
        `after` (keyset pagination): key, last seq, head state, close time (ms) or None."""
        where, args = [], []
        if tenant_id is not None:
            where.append("h.tenant_id = ?")
            args.append(tenant_id)
        if after is not None:
            where.append(
                "(h.tenant_id > ? OR (h.tenant_id = ? AND (h.billing_window_id > ? OR "
                "(h.billing_window_id = ? AND h.tariff_id > ?))))"
            )
            args += [after[0], after[0], after[1], after[1], after[2]]
        rows = self.db.conn().execute(
            "SELECT h.tenant_id, h.billing_window_id, h.tariff_id, h.seq, h.state_json, "
            "c.closed_at FROM window_heads h LEFT JOIN window_closes c ON c.tenant_id = "
            "h.tenant_id AND c.billing_window_id = h.billing_window_id AND c.tariff_id = "
            f"h.tariff_id {'WHERE ' + ' AND '.join(where) if where else ''} ORDER BY "
            "h.tenant_id, h.billing_window_id, h.tariff_id LIMIT ?",
            (*args, limit),
        )
        return [
            {
                "key": (r[0], r[1], r[2]),
                "seq": r[3],
                "state": json.loads(r[4]),
                "closed_at": r[5],
            }
            for r in rows
        ]

    def window_page(
        self, window: WindowKey, *, after_seq: int = 0, limit: int = 100
    ) -> list[tuple[int, str, dict[str, Any], int, str]]:
        """A window's entries with seq > after_seq, in seq order: (seq, kind, document,
        leaf_index, proof_status); kind 'event' (its bundle) or 'correction' (its document)."""
        return self._window_page(self.db.conn(), window, after_seq, limit)

    @staticmethod
    def _window_page(
        c: sqlite3.Connection, window: WindowKey, after_seq: int, limit: int
    ) -> list[tuple[int, str, dict[str, Any], int, str]]:
        rows = c.execute(
            "SELECT w.seq, w.kind, b.bundle_json, b.leaf_index, b.proof_status, k.doc_json, "
            "k.leaf_index FROM window_events w LEFT JOIN bundles b ON w.kind = 'event' AND "
            "b.tenant_id = w.tenant_id AND b.event_id = w.event_id LEFT JOIN corrections k ON "
            "w.kind = 'correction' AND k.tenant_id = w.tenant_id AND k.correction_id = "
            "w.event_id WHERE w.tenant_id = ? AND w.billing_window_id = ? AND w.tariff_id = ? "
            "AND w.seq > ? ORDER BY w.seq LIMIT ?",
            (*window, after_seq, limit),
        )
        return [
            (r[0], "event", json.loads(r[2]), r[3], r[4])
            if r[1] == "event"
            else (r[0], "correction", json.loads(r[5]), r[6], "proven")
            for r in rows
        ]
