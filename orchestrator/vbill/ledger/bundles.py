"""Bundles: the attested, logged events, one per (tenant, event_id), with their settlement
and proof status.

Bundles are written by ingestion alone (vbill.ledger.ingestion, the one write path of
`vbill attest` and the service): one write transaction per batch re-checks uniqueness and
limits, appends the log leaves, signs the new tree head and inserts the bundles carrying their
receipts; a crash anywhere inside leaves neither a bundle nor a leaf.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from vbill.ledger.db import Database, json_or_none, mapper
from vbill.ledger.errors import Conflict
from vbill.ledger.windows import WindowKey


@dataclass(frozen=True)
class StoredBundle:
    tenant_id: str
    event_id: str
    request_hash: str
    bundle: dict[str, Any]
    digest: str
    leaf_index: int
    currency: str
    charge_micros: int
    nullifier: str
    settlement_status: str
    settlement: dict[str, Any] | None
    settle_attempts: int
    last_error: str | None
    created_at: int
    proof_status: str = "proven"  # 'proving' until a worker attaches the Groth16 proof

    @property
    def proven(self) -> bool:
        return self.proof_status == "proven"


def same_or_conflict(existing: StoredBundle, request_hash: str) -> StoredBundle:
    if existing.request_hash != request_hash:
        raise Conflict(
            f"event_id {existing.event_id!r} of tenant {existing.tenant_id!r} is already "
            "attested with a different payload"
        )
    return existing


def bundle_if(c: Any, tenant_id: str, event_id: str, column: str, state: str) -> Any:
    """Inside transaction `c`: the bundle's JSON if its `column` (proof_status or
    settlement_status) is `state`, else None: the guard of every one-way state change."""
    assert column in ("proof_status", "settlement_status")
    row = c.execute(
        f"SELECT bundle_json, {column} FROM bundles WHERE tenant_id = ? AND event_id = ?",
        (tenant_id, event_id),
    ).fetchone()
    if row is None or row[column] != state:
        return None
    return json.loads(row["bundle_json"])


class Bundles:
    """The bundles table (vbill.ledger.ingestion fills it)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def find(self, tenant_id: str, event_id: str) -> StoredBundle | None:
        return self.get(self.db.conn(), tenant_id, event_id)

    @staticmethod
    def get(c: sqlite3.Connection, tenant_id: str, event_id: str) -> StoredBundle | None:
        row = c.execute(
            "SELECT * FROM bundles WHERE tenant_id = ? AND event_id = ?", (tenant_id, event_id)
        ).fetchone()
        return bundle_row(row) if row else None

    def find_by_event(self, event_id: str) -> list[StoredBundle]:
        rows = self.db.conn().execute(
            "SELECT * FROM bundles WHERE event_id = ? ORDER BY leaf_index", (event_id,)
        )
        return [bundle_row(r) for r in rows]

    def bundles(self, tenant_id: str | None = None) -> list[StoredBundle]:
        if tenant_id is None:
            rows = self.db.conn().execute("SELECT * FROM bundles ORDER BY leaf_index")
        else:
            rows = self.db.conn().execute(
                "SELECT * FROM bundles WHERE tenant_id = ? ORDER BY leaf_index", (tenant_id,)
            )
        return [bundle_row(r) for r in rows]

    def window_bundles(self, window: WindowKey) -> list[StoredBundle]:
        """A window's bundles in seq order (the chain a statement verifies)."""
        rows = self.db.conn().execute(
            "SELECT b.* FROM window_events w JOIN bundles b ON b.tenant_id = w.tenant_id AND "
            "b.event_id = w.event_id WHERE w.tenant_id = ? AND w.billing_window_id = ? AND "
            "w.tariff_id = ? ORDER BY w.seq",
            window,
        )
        return [bundle_row(r) for r in rows]

    def unproven_count(self) -> int:
        row = (
            self.db.conn()
            .execute("SELECT COUNT(*) FROM bundles WHERE proof_status = 'proving'")
            .fetchone()
        )
        return int(row[0])

    def oldest_unproven_age_ms(self, now: int) -> int:
        """How long the oldest bundle awaiting its proof has waited (0 if none)."""
        row = (
            self.db.conn()
            .execute("SELECT MIN(created_at) FROM bundles WHERE proof_status = 'proving'")
            .fetchone()
        )
        return max(0, now - int(row[0])) if row[0] is not None else 0

    def counts(self) -> dict[str, int]:
        rows = self.db.conn().execute(
            "SELECT settlement_status, COUNT(*) FROM bundles GROUP BY settlement_status"
        )
        out = {"none": 0, "pending": 0, "settled": 0, "failed": 0}
        out.update({r[0]: r[1] for r in rows})
        out["bundles"] = sum(out[k] for k in ("none", "pending", "settled", "failed"))
        out["tenants"] = self.db.conn().execute("SELECT COUNT(*) FROM tenants").fetchone()[0]
        out["log_size"] = self.db.conn().execute("SELECT COUNT(*) FROM log_leaves").fetchone()[0]
        out["proving"] = self.unproven_count()  # signed and logged, awaiting the proof
        return out


bundle_row = mapper(
    StoredBundle,
    bundle=("bundle_json", json.loads),
    charge_micros=int,
    settlement=("settlement_json", json_or_none),
)
