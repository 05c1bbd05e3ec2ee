"""Settlement on chain: the bundles and corrections the worker settles, what it records of
each, and its cursors (meta: the last block scanned for deposits, the last anchored head)."""

from __future__ import annotations

import json
from typing import Any

from vbill.ledger import outbox
from vbill.ledger.bundles import StoredBundle, bundle_if, bundle_row
from vbill.ledger.corrections import StoredCorrection, correction_row
from vbill.ledger.db import Database, now_ms


class Settlements:
    """Settlement columns of bundles and corrections, and the meta table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def pending_settlements(self, limit: int = 16) -> list[StoredBundle]:
        """Pending ETH bundles, fewest failed attempts first, then in log order: a bundle the
        chain refuses for now (tariff not accepted, balance) cannot block those behind it."""
        rows = self.db.conn().execute(
            "SELECT * FROM bundles WHERE settlement_status = 'pending' "
            "AND proof_status = 'proven' ORDER BY settle_attempts, leaf_index LIMIT ?",
            (limit,),
        )
        return [bundle_row(r) for r in rows]

    def mark_settled(self, tenant_id: str, event_id: str, usage_receipt: dict[str, Any]) -> bool:
        """Attach the usage receipt; the reservation becomes a debit. False if already settled."""
        with self.db.tx() as c:
            bundle = bundle_if(c, tenant_id, event_id, "settlement_status", "pending")
            if bundle is None:
                return False
            bundle["settlement"] = usage_receipt
            charge = c.execute(
                "UPDATE bundles SET settlement_status = 'settled', settlement_json = ?, "
                "bundle_json = ?, last_error = NULL WHERE tenant_id = ? AND event_id = ? "
                "RETURNING charge_micros",
                (
                    json.dumps(usage_receipt, sort_keys=True),
                    json.dumps(bundle, sort_keys=True),
                    tenant_id,
                    event_id,
                ),
            ).fetchone()[0]
            data = {**usage_receipt, "event_id": event_id, "charge_micros": int(charge)}
            outbox.enqueue(c, tenant_id, "settlement.settled", data, now_ms())
            return True

    def note_settle_error(self, keys: list[tuple[str, str]], error: str) -> None:
        """A transient failure: count the attempt, keep the bundle pending."""
        with self.db.tx() as c:
            c.executemany(
                "UPDATE bundles SET settle_attempts = settle_attempts + 1, last_error = ? "
                "WHERE tenant_id = ? AND event_id = ? AND settlement_status = 'pending'",
                [(error[:500], t, e) for t, e in keys],
            )

    def mark_failed(self, tenant_id: str, event_id: str, error: str) -> None:
        """The chain refuses this bundle for good: release its reservation, keep the reason."""
        with self.db.tx() as c:
            cur = c.execute(
                "UPDATE bundles SET settlement_status = 'failed', last_error = ?, "
                "settle_attempts = settle_attempts + 1 "
                "WHERE tenant_id = ? AND event_id = ? AND settlement_status = 'pending' "
                "RETURNING charge_micros",
                (error[:500], tenant_id, event_id),
            ).fetchone()
            if cur is not None:
                data = {"event_id": event_id, "charge_micros": int(cur[0]), "reason": error[:500]}
                outbox.enqueue(c, tenant_id, "settlement.failed", data, now_ms())

    def pending_corrections(self, limit: int = 16) -> list[StoredCorrection]:
        """Corrections to settle on chain, in log order."""
        rows = self.db.conn().execute(
            "SELECT * FROM corrections WHERE settlement_status = 'pending' ORDER BY leaf_index "
            "LIMIT ?",
            (limit,),
        )
        return [correction_row(r) for r in rows]

    def mark_correction_settled(
        self, tenant_id: str, correction_id: str, receipt: dict[str, Any]
    ) -> bool:
        """Record a correction's settling transaction; False if it was not pending."""
        with self.db.tx() as c:
            cur = c.execute(
                "UPDATE corrections SET settlement_status = 'settled', settlement_json = ? "
                "WHERE tenant_id = ? AND correction_id = ? AND settlement_status = 'pending'",
                (json.dumps(receipt, sort_keys=True), tenant_id, correction_id),
            )
            return cur.rowcount == 1

    def mark_correction_failed(self, tenant_id: str, correction_id: str, error: str) -> None:
        with self.db.tx() as c:
            c.execute(
                "UPDATE corrections SET settlement_status = 'failed', settlement_json = ? "
                "WHERE tenant_id = ? AND correction_id = ?",
                (json.dumps({"error": error[:500]}), tenant_id, correction_id),
            )

    def get_meta(self, key: str) -> str | None:
        row = self.db.conn().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.db.tx() as c:
            c.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )
