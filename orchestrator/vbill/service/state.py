"""What one running service holds: settings, store, attester, prover and the trust it extends."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import anyio

from vbill import paths
from vbill.bundle.keys import Attester
from vbill.ledger.store import Store
from vbill.service.settings import Settings
from vbill.service.settlement import SettlementWorker
from vbill.verify.trust import TrustSet
from vbill.zk.prover import ProofSource


@dataclass
class ServiceState:
    settings: Settings
    store: Store
    attester: Attester
    prover: ProofSource
    vkey_sha256: str
    limiter: anyio.CapacityLimiter
    worker: SettlementWorker | None = None
    chain_info: dict[str, Any] = field(default_factory=dict)

    def trust(self) -> TrustSet:
        """Our attester and build's key, minus everything revoked in the store."""
        revoked = self.store.revocations()
        return TrustSet().with_(
            attesters=[self.attester.address, *self.settings.trusted_attesters],
            vkey_files=[paths.VKEY],
            revoked_attesters=[r["value"] for r in revoked if r["kind"] == "attester"],
            revoked_vkeys=[r["value"] for r in revoked if r["kind"] == "vkey"],
        )
