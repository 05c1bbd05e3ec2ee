"""Ingestion (group commit) and proving workers: events signed and logged at once, a batch per
transaction under one signed tree head, their Groth16 proofs attached later (vbill.ingest)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vbill.errors import InputError, ToolError, VbillError
from vbill.ledger import translog
from vbill.ledger.accounts import Accounts, Charge
from vbill.ledger.bundles import Bundles, StoredBundle, bundle_if, bundle_row, same_or_conflict
from vbill.ledger.db import Database, now_ms, stored_amount
from vbill.ledger.errors import Conflict, LimitExceeded, TenantRaced
from vbill.ledger.log import Log
from vbill.ledger.tenants import Tenants
from vbill.ledger.windows import WindowHead, WindowKey, Windows


@dataclass(frozen=True)
class Ingest:
    """One event ready to log: validated, charged and signed (its proof may follow later)."""

    tenant_id: str
    event_id: str
    request_hash: str
    charge: Charge
    bundle: dict[str, Any]  # signed bundle JSON, no receipt yet
    new_tenant: tuple[int, int] | None = None  # (account_salt, tenant_key) if first seen
    proven: bool = False
    claim: tuple[str, int] | None = None  # (prover, lease ms): leased at once to its prover
    window: IngestWindow | None = None  # a metered event: its window and the head it was built on


@dataclass(frozen=True)
class IngestWindow:
    """A metered event's place in its window: the head seq it was charged and signed on, and
    how to sign it again from the actual head when another event took that seq first
    (InputError if the window would overflow from there)."""

    key: WindowKey
    seq: int
    rebuild: Callable[[WindowHead | None], Ingest]


class Ingestion:
    """Batches of signed events into bundles and the log; claims and proofs of workers."""

    def __init__(
        self,
        db: Database,
        log: Log,
        tenants: Tenants,
        accounts: Accounts,
        windows: Windows,
        bundles: Bundles,
    ) -> None:
        self.db = db
        self.log = log
        self.tenants = tenants
        self.accounts = accounts
        self.windows = windows
        self.bundles = bundles

    def ingest_many(self, items: list[Ingest]) -> list[tuple[StoredBundle, bool] | VbillError]:
        """Log a batch in one transaction under one signed tree head (group commit); each
        event is decided on its own, in order: (stored, created), or the Conflict,
        LimitExceeded or TenantRaced that refused it. An unexpected error stores none.

        A metered event takes its window's next seq here, in the transaction: if the head is
        not the one it was signed on, it is signed again from the head (an InputError if its
        window would overflow), so a window's chain never forks or skips."""
        self.log.require_key()
        out: list[tuple[StoredBundle, bool] | VbillError | None] = []
        added: list[tuple[int, int, Ingest, bytes]] = []  # (result slot, leaf index, item, leaf)
        replays: list[tuple[int, int]] = []  # (result slot, leaf index): twice in this batch
        with self.db.tx() as c, self.log.appending(c) as start:
            at = now_ms()
            for item in items:
                try:
                    existing = self.bundles.get(c, item.tenant_id, item.event_id)
                    if existing is not None:
                        same = same_or_conflict(existing, item.request_hash)
                        if existing.leaf_index >= start:  # logged by this batch: its
                            replays.append((len(out), existing.leaf_index))  # bundle, below
                            out.append(None)
                        else:
                            out.append((same, False))
                        continue
                    if item.window is not None:
                        self.windows.refuse_if_closed(c, item.window.key)
                        head = self.windows.head(c, item.window.key)
                        if (head.seq if head else 0) != item.window.seq:
                            item = item.window.rebuild(head)
                    # A refused event stores nothing, not even the tenant it would create:
                    # the batch's other events commit, so undo this one's writes alone.
                    c.execute("SAVEPOINT ingest_item")
                    try:
                        if item.new_tenant is not None:
                            self.tenants.create(c, item.tenant_id, *item.new_tenant)
                        spend = self.accounts.check_spend(c, item.tenant_id, item.charge)
                    except BaseException:
                        c.execute("ROLLBACK TO SAVEPOINT ingest_item")
                        raise
                    finally:
                        c.execute("RELEASE SAVEPOINT ingest_item")
                except (Conflict, LimitExceeded, TenantRaced, InputError) as exc:
                    out.append(exc)
                    continue
                digest = bytes.fromhex(item.bundle["attestation"]["bundle_digest"][2:])
                leaf = translog.leaf_hash(digest)
                index = self.log.add(c, leaf, at)
                c.execute(
                    "INSERT INTO bundles (tenant_id, event_id, request_hash, bundle_json, "
                    "digest, leaf_index, currency, charge_micros, nullifier, created_at, "
                    "settlement_status, proof_status, claimed_by, lease_until) VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        item.tenant_id,
                        item.event_id,
                        item.request_hash,
                        "{}",  # the bundle with its receipt, once the batch's head is signed
                        "0x" + digest.hex(),
                        index,
                        item.charge.currency,
                        stored_amount(item.charge.charge_micros),
                        item.bundle["attestation"]["billing_proof"]["public_signals"][3],
                        at,
                        "pending" if item.charge.is_eth else "none",
                        "proven" if item.proven else "proving",
                        item.claim[0] if item.claim else None,
                        at + item.claim[1] if item.claim else None,
                    ),
                )
                if item.window is not None:
                    w = item.bundle["billing"]["window"]
                    if w["seq"] != item.window.seq + 1:
                        raise ToolError(f"bundle has seq {w['seq']}, head is {item.window.seq}")
                    self.windows.advance(c, item.window.key, w["seq"], item.event_id, w["after"])
                self.accounts.notify_spend(c, item.tenant_id, item.event_id, item.charge, spend, at)
                out.append(None)  # filled in once the batch's head is signed
                added.append((len(out) - 1, index, item, leaf))
            if added:
                sth = self.log.sign_head(c, len(self.log.tree), at)
                rows = []
                for slot, index, item, leaf in added:
                    receipt = self.log.receipt(index, leaf, sth).to_dict()
                    bundle = {**item.bundle, "receipt": receipt, "settlement": None}
                    rows.append((json.dumps(bundle, sort_keys=True), index))
                    out[slot] = (self._ingested(item, bundle, index, at), True)
                c.executemany("UPDATE bundles SET bundle_json = ? WHERE leaf_index = ?", rows)
                created = {index: out[slot] for slot, index, _, _ in added}
                for slot, index in replays:  # a replay of this batch's own event: its bundle
                    out[slot] = (created[index][0], False)  # type: ignore[index]
        return [r for r in out if r is not None]

    @staticmethod
    def _ingested(item: Ingest, bundle: dict[str, Any], index: int, at: int) -> StoredBundle:
        return StoredBundle(
            tenant_id=item.tenant_id,
            event_id=item.event_id,
            request_hash=item.request_hash,
            bundle=bundle,
            digest=bundle["attestation"]["bundle_digest"],
            leaf_index=index,
            currency=item.charge.currency,
            charge_micros=item.charge.charge_micros,
            nullifier=bundle["attestation"]["billing_proof"]["public_signals"][3],
            settlement_status="pending" if item.charge.is_eth else "none",
            settlement=None,
            settle_attempts=0,
            last_error=None,
            created_at=at,
            proof_status="proven" if item.proven else "proving",
        )

    def claim_unproven(
        self, worker: str, lease_ms: int, limit: int = 1, *, metered: bool = True
    ) -> list[StoredBundle]:
        """Claim up to `limit` bundles awaiting their proof, in log order, for `lease_ms`: a
        claim whose lease has run out (its worker died) is taken over by the next worker.
        `metered=False`: a worker without binding v2's key leaves metered bundles (those in a
        window) to workers that have it, instead of holding each for a lease it cannot use."""
        at = now_ms()
        only_linear = (
            "AND NOT EXISTS (SELECT 1 FROM window_events w WHERE w.tenant_id = "
            "bundles.tenant_id AND w.event_id = bundles.event_id) "
        )
        with self.db.tx() as c:
            rows = c.execute(
                "SELECT * FROM bundles WHERE proof_status = 'proving' AND (lease_until IS NULL "
                f"OR lease_until < ?) {'' if metered else only_linear}ORDER BY leaf_index LIMIT ?",
                (at, limit),
            ).fetchall()
            c.executemany(
                "UPDATE bundles SET claimed_by = ?, lease_until = ? WHERE leaf_index = ?",
                [(worker, at + lease_ms, r["leaf_index"]) for r in rows],
            )
        return [bundle_row(r) for r in rows]

    def attach_proof(self, tenant_id: str, event_id: str, proof: dict[str, Any]) -> bool:
        """Attach the Groth16 proof to a 'proving' bundle (the signed digest does not cover it,
        docs/protocol.md §7.1); False if it already has one (the first proof stands)."""
        with self.db.tx() as c:
            bundle = bundle_if(c, tenant_id, event_id, "proof_status", "proving")
            if bundle is None:
                return False
            bundle["attestation"]["billing_proof"]["proof"] = proof
            c.execute(
                "UPDATE bundles SET bundle_json = ?, proof_status = 'proven', claimed_by = NULL, "
                "lease_until = NULL WHERE tenant_id = ? AND event_id = ?",
                (json.dumps(bundle, sort_keys=True), tenant_id, event_id),
            )
            return True
