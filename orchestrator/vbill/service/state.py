"""What one running service holds: settings, store, attester, provers and the trust it extends."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import anyio
from prometheus_client import CollectorRegistry

from vbill.billing.closing import AutoCloser
from vbill.bindings.registry import binding, event_bindings
from vbill.bundle.keys import Attester
from vbill.ingest import Ingestor, Proving, ProvingWorker, open_if_built, signing_refused
from vbill.ledger.store import Store, now_ms
from vbill.service.settings import Settings
from vbill.service.settlement import SettlementWorker
from vbill.service.webhooks import WebhookDispatcher
from vbill.verify import revocation
from vbill.verify.trust import TrustSet

_CORRECTION_LOCK = threading.Lock()


# The circuits.json key of the binding whose prover `correction_proving()` starts on first use.
CORRECTIONS = "correction_binding"


@dataclass
class ServiceState:
    settings: Settings
    store: Store
    attester: Attester
    # binding version -> its prover and vkey hash: every event binding set up here (the
    # default's at least), and binding v2c's once correction_proving() started it
    provers: dict[str, Proving]
    limiter: anyio.CapacityLimiter
    worker: SettlementWorker | None = None
    ingestor: Ingestor | None = None  # sign-and-log at ingestion, group commits
    proving_workers: list[ProvingWorker] = field(default_factory=list)  # local ones
    chain_info: dict[str, Any] = field(default_factory=dict)
    webhooks: WebhookDispatcher | None = None  # delivers the webhook outbox
    metrics: CollectorRegistry | None = None  # the store's scrape-time gauges (vbill.metrics)
    closer: AutoCloser | None = None  # closes period windows once their grace has passed

    def correction_proving(self) -> Proving | None:
        """Binding v2c's prover (started on the first correction of a metered event), or None
        when its key is not built here (metered corrections are then refused with 503)."""
        version = binding(CORRECTIONS).version
        with _CORRECTION_LOCK:
            if version not in self.provers:
                proving = open_if_built(CORRECTIONS, 1)
                if proving is None:
                    return None
                self.provers[version] = proving
            return self.provers[version]

    def vkeys(self) -> dict[str, str]:
        """The binding version of each kind of event served here -> the SHA-256 of its
        verification key (the default binding first)."""
        return {
            b.version: self.provers[b.version].vkey_sha256
            for b in event_bindings()
            if b.version in self.provers
        }

    def revocation_document(self) -> dict[str, Any]:
        """The signed revocation list: revoked (compromised) and retired (rotated-out) keys."""
        payload = revocation.build_payload(
            self.store.revocations(),
            self.attester.address,
            issued_at=now_ms(),
            retirements=self.store.retirements(),
        )
        return revocation.sign(payload, self.attester.account)

    def signing_refusal(self) -> str | None:
        """Why our attester key must not sign: revoked or retired here, or revoked on chain
        (as the settlement worker last read it), else None."""
        refusal = self.store.signing_refusal(self.attester.address)
        worker = self.worker
        if refusal is None and worker is not None and worker.status.attester_status == "revoked":
            refusal = f"attester key {self.attester.address} is revoked on chain"
        return refusal

    def refuse_if_cannot_sign(self) -> None:
        """503 (ToolError) when `signing_refusal` names a reason; reads the store, so call
        it from a worker thread, never on the event loop."""
        refusal = self.signing_refusal()
        if refusal is not None:
            raise signing_refused(refusal)

    def problems(self) -> list[str]:
        """What keeps this service from doing its whole job right now (for /health)."""
        out: list[str] = []
        refusal = self.signing_refusal()
        if refusal is not None:
            out.append(f"{refusal}: attest is refused until `vbill keys rotate` and a restart")
        if self.worker is not None and self.worker.status.chain_reachable is False:
            out.append(f"chain unreachable: {self.worker.status.last_error}")
        return out

    def trust(self) -> TrustSet:
        """Our attester and build's key, minus everything revoked in the store; our retired
        keys for what they signed before retirement."""
        revoked = self.store.revocations()
        return TrustSet().with_(
            attesters=[self.attester.address, *self.settings.trusted_attesters],
            retired_attesters={r["address"]: r["retired_at"] for r in self.store.retirements()},
            vkey_files=[binding(v).artefacts.vkey for v in self.vkeys()]
            + [v for v in [binding(CORRECTIONS).artefacts.vkey] if v.exists()],
            revoked_attesters=[r["value"] for r in revoked if r["kind"] == "attester"],
            revoked_vkeys=[r["value"] for r in revoked if r["kind"] == "vkey"],
        )
