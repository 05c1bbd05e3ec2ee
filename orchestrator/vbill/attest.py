"""`vbill attest` and the Python API's attest: one event through the ingestion path of POST
/attest (vbill.ingest), proved at once.

The event is validated, charged, signed (digest scheme eip712-v2, docs/protocol.md §7.1) and
logged by an `Ingestor`, leased to this caller, then proved and its proof attached as the
proving workers do. The store guarantees one bundle per (tenant, event_id): same payload → the
stored bundle, never re-proved; different payload → Conflict; over a limit → LimitExceeded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vbill.bindings.registry import event_binding
from vbill.bundle.keys import Attester
from vbill.ingest import Ingestor, Provers
from vbill.ledger.store import Store, StoredBundle
from vbill.models import AttestRequest


@dataclass(frozen=True)
class Attested:
    stored: StoredBundle
    created: bool


def attest_event(
    request: AttestRequest | Mapping[str, Any],
    *,
    store: Store,
    attester: Attester,
    provers: Provers,
) -> Attested:
    """Attest one event exactly once; raises InputError, Conflict or LimitExceeded, and
    ToolError while the attester key is revoked or retired (rotate it: `vbill keys rotate`)
    or the request's binding has no prover in `provers` (binding version -> Proving)."""
    if not isinstance(request, Mapping):  # a model, or not a request (InputError naming it)
        request = event_binding(request).encode(request).request.model_dump(mode="json")
    ingestor = Ingestor(store, attester, provers, group_commit=False)
    try:
        outcome = ingestor.attest(request)
    finally:
        ingestor.close()
    return Attested(outcome.result(), outcome.status == "created")
