"""The one attest path, shared by `vbill attest` and POST /attest.

Validation and encoding come first (bad input is rejected before anything is stored or
proved); the tenant's account salt is created on first use; the store then guarantees one
bundle per (tenant, event_id): same payload → the stored bundle, never re-proved; different
payload → Conflict; over a limit → LimitExceeded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from vbill.billing.periods import check_event_period
from vbill.bindings.registry import default, event_binding
from vbill.bundle.bundle import Encoded, build_bundle
from vbill.bundle.keys import Attester
from vbill.bundle.metered import MeteredEncoded
from vbill.encode.metered import GENESIS, WindowState, transition
from vbill.ingest import Proving, new_account, request_hash, signing_refused, state_before
from vbill.ledger.store import Charge, Store, StoredBundle, TenantRaced
from vbill.models import AttestRequest, Bundle, MeteredBundle
from vbill.zk.prover import ProofSource


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
    metered: Proving | None = None,
) -> Attested:
    """Attest one event exactly once; raises InputError, Conflict or LimitExceeded, and
    ToolError while the attester key is revoked or retired (rotate it: `vbill keys rotate`).

    `prover`/`vkey_sha256` are binding v1's; a metered request (binding v2) is proved by
    `metered` in its window's chain (ToolError if not given: v2 is not set up)."""
    refusal = store.signing_refusal(attester.address)
    if refusal is not None:
        raise signing_refused(refusal)
    binding = event_binding(request)
    enc: Encoded | MeteredEncoded = binding.encode(request)
    chosen = Proving(prover, vkey_sha256) if binding is default() else metered
    if chosen is None:
        raise binding.not_set_up()
    proving = chosen
    meter = enc.request.meter_event
    check_event_period(meter.model_dump(mode="json"))
    currency = enc.request.tariff_snapshot.currency

    def build(salt: int, before: WindowState) -> Bundle | MeteredBundle:
        return build_bundle(
            enc,
            attester=attester,
            account_salt=salt,
            prover=proving.prover,
            vkey_sha256=proving.vkey_sha256,
            before=before,
        )

    def attest(salt: int, new: tuple[int, int] | None) -> tuple[StoredBundle, bool]:
        """One bundle per event; a metered one charged and proved from its window's head."""
        rhash = request_hash(enc.request)
        if binding.windowed:
            m: MeteredEncoded = enc  # type: ignore[assignment]
            return store.attest_window(
                tenant_id=meter.tenant_id,
                event_id=meter.event_id,
                request_hash=rhash,
                window=m.window_key,
                charge=lambda head: Charge(
                    currency, transition(m.tariff, m.meter, state_before(m, head))[0]
                ),
                build=lambda head: build(salt, state_before(m, head)),
                new_tenant=new,
            )
        return store.attest_once(
            tenant_id=meter.tenant_id,
            event_id=meter.event_id,
            request_hash=rhash,
            charge=Charge(currency, enc.charge),
            build=lambda: build(salt, GENESIS),
            new_tenant=new,
        )

    return _as_tenant(store, meter.tenant_id, attest)


def _as_tenant(
    store: Store,
    tenant_id: str,
    attest: Callable[[int, tuple[int, int] | None], tuple[StoredBundle, bool]],
) -> Attested:
    """Run `attest(account_salt, new_account)` with the tenant's salt, or a new account's
    (stored with its first bundle, never on a refusal); a second round only if a concurrent
    first attest created the tenant with another salt."""
    for _ in range(2):
        tenant = store.tenant(tenant_id)
        new = new_account(tenant_id) if tenant is None else None
        salt = tenant.account_salt if tenant is not None else new[0]  # type: ignore[index]
        try:
            stored, created = attest(salt, new)
        except TenantRaced:
            continue
        return Attested(stored, created)
    raise TenantRaced(f"tenant {tenant_id!r} keeps being created concurrently")
