"""The customer's side of the HTTP API: tenant tokens, usage receipts, the trust document.

Tokens are issued and revoked by the operator (secret header); a tenant holding one reads its
own bundles, account and receipts and sets its own limits (service/auth.py). The trust
document tells a customer what to trust when verifying offline (verify/trust_document.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query

from vbill import paths
from vbill.bindings import version_of
from vbill.bindings.registry import binding
from vbill.ledger import tokens
from vbill.models import IssuedToken, ReceiptView, RevokedTokens, UsageReceipt
from vbill.service.auth import AnyCaller, require_operator
from vbill.service.openapi import CALLER, OPERATOR, errors
from vbill.service.routes import State, find_bundle
from vbill.service.state import CORRECTIONS, ServiceState
from vbill.verify import trust_document
from vbill.verify.trust import file_sha256

router = APIRouter()
Operator = Depends(require_operator)


@router.post(
    "/api/vdi/billing/accounts/{tenant_id}/tokens",
    dependencies=[Operator],
    status_code=201,
    response_model=IssuedToken,
    responses=errors(*OPERATOR, 404, 422),
)
def issue_token(tenant_id: str, svc: State) -> IssuedToken:
    """A new API token for the tenant, shown this once (only its hash is kept)."""
    if svc.store.tenant(tenant_id) is None:
        raise HTTPException(status_code=404, detail=f"no account for tenant {tenant_id!r}")
    issued = tokens.issue(svc.store, tenant_id)
    return IssuedToken(**issued.__dict__)


@router.delete(
    "/api/vdi/billing/accounts/{tenant_id}/tokens",
    dependencies=[Operator],
    response_model=RevokedTokens,
    responses=errors(*OPERATOR, 404, 422),
)
def revoke_tokens(
    tenant_id: str, svc: State, token_id: Annotated[str | None, Query()] = None
) -> RevokedTokens:
    """Revoke all the tenant's tokens, or only `token_id`; effective on the next request."""
    if svc.store.tenant(tenant_id) is None:
        raise HTTPException(status_code=404, detail=f"no account for tenant {tenant_id!r}")
    return RevokedTokens(tenant_id=tenant_id, revoked=svc.store.revoke_tokens(tenant_id, token_id))


@router.get(
    "/api/vdi/billing/bundles/{event_id}/receipt",
    response_model=ReceiptView,
    responses=errors(*CALLER, 409, 422),
)
def receipt(
    event_id: str, svc: State, caller: AnyCaller, tenant_id: Annotated[str | None, Query()] = None
) -> ReceiptView:
    """The usage receipt of the bundle's settlement (cost, transaction, block, gas)."""
    stored = find_bundle(svc, caller, event_id, tenant_id)
    return ReceiptView(
        event_id=stored.event_id,
        tenant_id=stored.tenant_id,
        settlement_status=stored.settlement_status,
        usage_receipt=UsageReceipt.model_validate(stored.settlement) if stored.settlement else None,
    )


@router.get(
    trust_document.WELL_KNOWN_PATH, responses={200: {"model": trust_document.TrustDocument}}
)
def trust(svc: State) -> dict[str, Any]:
    """What a customer pins to verify offline, signed by the attester (docs/customer.md)."""
    return document(svc)


def document(svc: ServiceState) -> dict[str, Any]:
    """The service's trust document: its verification keys (v2's when metered billing is
    set up here, so statements verify against the pin too, and v2c's when corrections are,
    so the verifier page checks their proofs), attesters, revocations, retired keys with
    their cut-off and the chain deployments on record."""
    revoked = svc.store.revocations()
    bindings = {
        version: (binding(version).artefacts.vkey, _ceremony(sha))
        for version, sha in svc.vkeys().items()
    }
    corrections = binding(CORRECTIONS).artefacts.vkey  # the key ServiceState.trust() trusts too
    if corrections.exists():
        bindings[version_of(CORRECTIONS)] = (corrections, _ceremony(file_sha256(corrections)))
    return trust_document.build(
        svc.attester.account,
        bindings=bindings,
        attesters=[svc.attester.address, *svc.settings.trusted_attesters],
        log_signers=[svc.attester.address],
        revoked_attesters=[r["value"] for r in revoked if r["kind"] == "attester"],
        revoked_vkeys=[r["value"] for r in revoked if r["kind"] == "vkey"],
        retired_attesters={r["address"]: r["retired_at"] for r in svc.store.retirements()},
        deployments=_deployments(svc.settings.home),
    )


def _ceremony(vkey_sha256: str) -> str:
    """The setup's ceremony kind from build/manifest.json, if it records this very key (v1 at
    the top level, later bindings under `bindings`)."""
    try:
        manifest = json.loads(paths.MANIFEST.read_text())
    except (OSError, ValueError):
        return "unknown"
    if manifest.get("artifacts", {}).get("vkey", {}).get("sha256") == vkey_sha256:
        return str(manifest.get("ceremony", "unknown"))
    for record in (manifest.get("bindings") or {}).values():
        if isinstance(record, dict) and record.get("vkey_sha256") == vkey_sha256:
            return str(record.get("ceremony", "unknown"))
    return "unknown"


def _deployments(home: Path) -> dict[str, dict[str, Any]]:
    """{network: {settlement, verifier, chain_id}} from the deployment records on disk (the
    local chain's under this service's home)."""
    from vbill.chain.networks import NETWORKS, deployments_dir

    out = {}
    for name in NETWORKS:
        folder = home / "deployments" if name == "local" else deployments_dir(name)
        path = folder / f"{name}.json"
        try:
            record = json.loads(path.read_text())
            out[name] = {
                "settlement": record["contracts"]["BillingSettlement"]["address"],
                "verifier": record["contracts"]["BillingVerifier"]["address"],
                "chain_id": int(record["chain_id"]),
            }
        except (OSError, ValueError, KeyError, TypeError):
            continue  # no (readable) record for this network
    return out
