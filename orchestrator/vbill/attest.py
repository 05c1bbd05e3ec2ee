"""The one attest path, shared by `vbill attest` and POST /attest.

Validation and encoding come first (bad input is rejected before anything is stored or
proved); the tenant's account salt is created on first use; the store then guarantees one
bundle per (tenant, event_id): same payload → the stored bundle, never re-proved; different
payload → Conflict; over a limit → LimitExceeded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vbill.bundle.attestation import canonical_json
from vbill.bundle.bundle import build_bundle, encode_request
from vbill.bundle.keys import Attester
from vbill.encode.encoding import hash_string
from vbill.errors import ToolError
from vbill.ledger.store import Charge, Store, StoredBundle, TenantRaced
from vbill.models import AttestRequest
from vbill.zk.poseidon import poseidon
from vbill.zk.prover import ProofSource
from vbill.zk.witness import random_field_element


def new_account(tenant_id: str) -> tuple[int, int]:
    """A fresh account salt and its tenant key Poseidon(tenant_id, salt) (protocol.md §3.2)."""
    salt = random_field_element()
    return salt, poseidon([hash_string(tenant_id), salt])


def request_hash(request: AttestRequest) -> str:
    """Identity of a payload for idempotency: SHA-256 of its canonical JSON."""
    return hashlib.sha256(canonical_json(request.model_dump(mode="json"))).hexdigest()


def signing_refused(refusal: str) -> ToolError:
    """The error for a key that must not sign (HTTP 503, exit 3), naming the way out."""
    return ToolError(
        f"{refusal}: refusing to sign with it; run `vbill keys rotate`, register the new "
        "key on chain if one is configured, and restart the service"
    )


@dataclass(frozen=True)
class Attested:
    stored: StoredBundle
    created: bool


def attest_event(
    request: AttestRequest | Mapping[str, Any],
    *,
    store: Store,
    attester: Attester,
    prover: ProofSource,
    vkey_sha256: str,
) -> Attested:
    """Attest one event exactly once; raises InputError, Conflict or LimitExceeded, and
    ToolError while the attester key is revoked or retired (rotate it: `vbill keys rotate`)."""
    refusal = store.signing_refusal(attester.address)
    if refusal is not None:
        raise signing_refused(refusal)
    enc = encode_request(request)
    meter = enc.request.meter_event
    for _ in range(2):  # a second round only if a concurrent first attest created the tenant
        tenant = store.tenant(meter.tenant_id)
        # A new tenant's account is stored with its first bundle, never on a refusal.
        new = new_account(meter.tenant_id) if tenant is None else None
        salt = tenant.account_salt if tenant is not None else new[0]  # type: ignore[index]
        try:
            stored, created = store.attest_once(
                tenant_id=meter.tenant_id,
                event_id=meter.event_id,
                request_hash=request_hash(enc.request),
                charge=Charge(enc.request.tariff_snapshot.currency, enc.charge),
                build=lambda salt=salt: build_bundle(
                    enc.request,
                    attester=attester,
                    account_salt=salt,
                    prover=prover,
                    vkey_sha256=vkey_sha256,
                ),
                new_tenant=new,
            )
        except TenantRaced:
            continue
        return Attested(stored, created)
    raise TenantRaced(f"tenant {meter.tenant_id!r} keeps being created concurrently")
