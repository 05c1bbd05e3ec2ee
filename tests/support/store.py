"""The store without proofs: wire-valid bundles with distinct digests and placeholder proofs, an
attest of one (logged by the store's one write path, ingestion), the log's key, a confirmed
deposit and a settled charge's receipt (the store persists and logs bundles, it does not judge
them). Used by the ledger tests and by the service and replica tests that seed a store. And
for ingestion without proofs: an attester that holds its first signature at a barrier (to
force a race) and provers that only name binding v1's key."""

from __future__ import annotations

import hashlib
import threading
from typing import Any

from eth_account import Account
from vbill.bindings import BINDING_V1
from vbill.bundle.keys import Attester
from vbill.ingest import Proving
from vbill.ledger.store import Charge, Ingest, Store
from vbill.models import Bundle
from vbill.zk.prover import Proof

LOG_KEY = Account.from_key("0x" + "33" * 32)
USD = Charge("USD", 221040)


def fake_bundle(tenant: str, event: str, charge: int = 221040, currency: str = "USD") -> Bundle:
    digest = hashlib.sha256(f"{tenant}/{event}/{charge}/{currency}".encode()).hexdigest()
    return Bundle.model_validate(
        {
            "billing_version": "v2",
            "profileId": "VDI_VERIFY_STANDARD_V1",
            "meter_event": {
                "event_id": event,
                "event_timestamp": "2026-05-29T12:00:00.000Z",
                "tenant_id": tenant,
                "api_key_id": "k",
                "endpoint": "/v1",
                "usage_units": 1,
                "contract_version": "c",
                "billing_window_id": "w",
            },
            "tariff_snapshot": {
                "tariff_id": "t",
                "tariff_version": "1",
                "tariff_class": "usage_linear",
                "unit_price_micros": 1,
                "min_charge_micros": 0,
                "max_charge_micros": 10**12,
                "rounding_mode": "floor",
                "currency": currency,
            },
            "billing": {"expected_charge_micros": charge, "billing_verify_fingerprint": "00"},
            "attestation": {
                "signature": "0x00",
                "attester": LOG_KEY.address,
                "bundle_digest": "0x" + digest,
                "billing_proof": {
                    "binding_version": "bn128-poseidon8-v1",
                    "proof": {},
                    "public_signals": ["1", str(charge), "3", str(int(digest[:16], 16)), "5"],
                    "vkey_sha256": "00",
                    "salt": "1",
                    "account_salt": "2",
                },
            },
        }
    )


def attest(
    s: Store, tenant: str, event: str, payload: str = "p", charge: Charge = USD
) -> tuple[Any, bool]:
    """Log a fake bundle of (tenant, event), proven, as ingestion's commit does: (stored,
    created), or its refusal (Conflict, LimitExceeded) raised. The same `payload` again
    answers with the stored bundle, whatever is signed this time."""
    bundle = fake_bundle(tenant, event, charge.charge_micros, charge.currency)
    item = Ingest(tenant, event, payload, charge, bundle.model_dump(mode="json"), proven=True)
    [result] = s.ingest_many([item])
    if isinstance(result, BaseException):
        raise result
    return result


def usage_receipt(cost_eth: str) -> dict[str, Any]:
    """What the settlement worker hands mark_settled once a charge settled on chain."""
    return {"cost_eth": cost_eth, "transaction_hash": "0x1", "block_number": 5, "gas_used": 1,
            "timestamp": 1}  # fmt: skip


def fund(s: Store, tenant: str, wei: int, block: int = 1, head: int = 100) -> None:
    s.record_deposit(f"0x{block:064x}", 0, tenant, wei, block)
    s.credit_confirmed(head)


def eth(micros: int) -> Charge:
    return Charge("ETH", micros)


class BarrierAttester(Attester):
    """A real attester whose first `waits` signatures wait until every caller (the barrier's
    parties) has come that far: ingestion reads what it decides on (the event's stored bundle,
    its window's head), then signs, then logs, so all have read the same. One per caller, or
    one shared by `waits` callers that each sign once before logging."""

    def __init__(self, inner: Attester, barrier: Any, waits: int = 1) -> None:
        super().__init__(inner.account)
        object.__setattr__(self, "barrier", barrier)
        object.__setattr__(self, "waits", [waits, threading.Lock()])

    def sign_hash(self, digest: bytes) -> str:
        waits = self.waits  # type: ignore[attr-defined]
        with waits[1]:
            wait = waits[0] > 0
            waits[0] -= 1
        if wait:
            self.barrier.wait(timeout=600)  # type: ignore[attr-defined]
        return super().sign_hash(digest)


class NotProving:
    """The prover of an ingestion that only signs and logs: the test fails if it is asked."""

    def prove(self, circuit_input: Any) -> Proof:
        raise AssertionError("a prover was asked where nothing is proved")

    def close(self) -> None:
        pass


def signing_only(vkey_sha256: str = "00" * 32) -> dict[str, Proving]:
    """Provers for ingestion that signs binding v1 events naming `vkey_sha256`, never proves."""
    return {BINDING_V1: Proving(NotProving(), vkey_sha256)}
