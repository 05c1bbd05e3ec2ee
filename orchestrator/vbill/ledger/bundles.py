"""Bundles: the attested, logged events, one per (tenant, event_id), with their settlement
and proof status.

The attest path is one write transaction that re-checks uniqueness and limits, appends the log
leaf, signs the new tree head and inserts the bundle carrying its receipt; a crash anywhere
inside leaves neither a bundle nor a leaf. Proving (slow) happens before that transaction,
under a per-event lock so concurrent duplicates prove once.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vbill.errors import ToolError
from vbill.ledger import translog
from vbill.ledger.accounts import Accounts, Charge
from vbill.ledger.db import Database, EventLocks, json_or_none, mapper, now_ms, stored_amount
from vbill.ledger.errors import Conflict, WindowMoved
from vbill.ledger.log import Log
from vbill.ledger.tenants import Tenants
from vbill.ledger.windows import WindowHead, WindowKey, Windows
from vbill.models import Bundle


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
    """The bundles table, and the attest path that fills it."""

    def __init__(
        self,
        db: Database,
        log: Log,
        locks: EventLocks,
        tenants: Tenants,
        accounts: Accounts,
        windows: Windows,
    ) -> None:
        self.db = db
        self.log = log
        self.locks = locks
        self.tenants = tenants
        self.accounts = accounts
        self.windows = windows

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

    def attest_once(
        self,
        *,
        tenant_id: str,
        event_id: str,
        request_hash: str,
        charge: Charge,
        build: Callable[[], Bundle],
        new_tenant: tuple[int, int] | None = None,
    ) -> tuple[StoredBundle, bool]:
        """Store the bundle for (tenant, event) exactly once; returns (stored, created).

        Same payload again → the stored bundle (never re-proved); different payload → Conflict;
        a limit or the balance would be passed → LimitExceeded, before and after proving.
        `new_tenant` (account_salt, tenant_key) creates the tenant in the same transaction as
        its first bundle, so a refused first attest leaves no tenant behind; TenantRaced if
        another attest created it first with another salt (build again with the stored one).
        """
        self.log.require_key()
        with self.locks.hold((tenant_id, event_id)):
            existing = self.find(tenant_id, event_id)
            if existing is not None:
                return same_or_conflict(existing, request_hash), False
            self.accounts.check_spend(self.db.conn(), tenant_id, charge)
            bundle = build()  # slow, outside any transaction
            return self._insert(tenant_id, event_id, request_hash, charge, bundle, new_tenant)

    def attest_window(
        self,
        *,
        tenant_id: str,
        event_id: str,
        request_hash: str,
        window: WindowKey,
        charge: Callable[[WindowHead | None], Charge],
        build: Callable[[WindowHead | None], Any],
        new_tenant: tuple[int, int] | None = None,
        attempts: int = 100,
    ) -> tuple[StoredBundle, bool]:
        """`attest_once` for a metered event, whose charge and proof depend on the window's
        head (None: genesis). The head is read under the window's lock, and the bundle is
        stored only if the head is still the one it was built on, in the same transaction
        that assigns its seq; if another process moved it, the event is proved again. So a
        window never forks or skips, and idempotency is attest_once's."""
        self.log.require_key()
        with self.locks.hold((tenant_id, event_id)), self.locks.hold(("window", *window)):
            for _ in range(attempts):
                existing = self.find(tenant_id, event_id)
                if existing is not None:
                    return same_or_conflict(existing, request_hash), False
                self.windows.refuse_if_closed(self.db.conn(), window)  # before a proof is spent
                head = self.windows.window_head(window)
                cost = charge(head)
                self.accounts.check_spend(self.db.conn(), tenant_id, cost)
                bundle = build(head)  # slow, outside any transaction
                try:
                    return self._insert(
                        tenant_id,
                        event_id,
                        request_hash,
                        cost,
                        bundle,
                        new_tenant,
                        window=(window, head.seq if head else 0),
                    )
                except WindowMoved:
                    continue
        raise ToolError(f"window {window} kept moving during {attempts} attempts; try again")

    def _insert(
        self,
        tenant_id: str,
        event_id: str,
        request_hash: str,
        charge: Charge,
        bundle: Bundle,
        new_tenant: tuple[int, int] | None = None,
        window: tuple[WindowKey, int] | None = None,
    ) -> tuple[StoredBundle, bool]:
        """Insert one bundle with its log leaf; `window` (key, head seq it was built on) also
        appends it to a metered window, or raises WindowMoved if the head is no longer that."""
        from vbill.bundle.bundle import digest_of, with_receipt

        digest = digest_of(bundle)
        leaf = translog.leaf_hash(digest)
        nullifier = bundle.attestation.billing_proof.public_signals[3]
        with self.db.tx() as c:
            existing = self.get(c, tenant_id, event_id)
            if existing is not None:  # another process won the race
                return same_or_conflict(existing, request_hash), False
            if new_tenant is not None:
                self.tenants.create(c, tenant_id, *new_tenant)
            spend = self.accounts.check_spend(c, tenant_id, charge)
            if window is not None:
                self.windows.refuse_if_closed(c, window[0])
                head = self.windows.head(c, window[0])
                if (head.seq if head else 0) != window[1]:
                    raise WindowMoved(f"window {window[0]} moved past seq {window[1]}")
            with self.log.appending(c) as index:
                at = now_ms()
                receipt = self.log.append(c, leaf, at)
                stored = with_receipt(bundle, receipt.to_dict()).model_dump(mode="json")
                c.execute(
                    "INSERT INTO bundles (tenant_id, event_id, request_hash, bundle_json, "
                    "digest, leaf_index, currency, charge_micros, nullifier, created_at, "
                    "settlement_status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        tenant_id,
                        event_id,
                        request_hash,
                        json.dumps(stored, sort_keys=True),
                        "0x" + digest.hex(),
                        index,
                        charge.currency,
                        stored_amount(charge.charge_micros),
                        nullifier,
                        at,
                        "pending" if charge.is_eth else "none",
                    ),
                )
                if window is not None:
                    w = bundle.billing.window  # type: ignore[attr-defined]
                    if w.seq != window[1] + 1:
                        raise ToolError(f"bundle has seq {w.seq}, head is {window[1]}")
                    self.windows.advance(
                        c, window[0], window[1] + 1, event_id, w.after.model_dump(mode="json")
                    )
                self.accounts.notify_spend(c, tenant_id, event_id, charge, spend, at)
            found = self.get(c, tenant_id, event_id)
        assert found is not None
        return found, True

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
