"""Schemas of the service's JSON answers that are not wire models of their own (docs/http-api.md).

They document what the routes return (`responses={200: {"model": ...}}`) and are checked
against real answers by tests/service/test_openapi.py; the routes keep building plain dicts, so the
wire format (wei as decimal strings) is exactly what these schemas say.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from vbill.models import (
    DIMENSION_NAME_PATTERN,
    U64_SCHEMA,
    MeteredTariffSnapshot,
    TariffSnapshot,
    Text,
    TreeHead,
)

WEI = "decimal string of wei"


class RevocationPayload(BaseModel):
    version: str = Field(description='format version, "vbill-revocation-v1"')
    issuer: str = Field(description="address of the attester key that signs the list")
    issued_at: int = Field(description="milliseconds since the epoch")
    revoked_attesters: list[str] = Field(description="compromised attester addresses (lowercase)")
    revoked_vkeys: list[str] = Field(description="SHA-256 of revoked verification keys")
    retired_attesters: dict[str, int] = Field(
        description="rotated-out attester address → retirement time (ms): bundles signed "
        "before it stay valid"
    )
    entries: list[dict[str, Any]] = Field(description="every revocation with its reason")


class RevocationList(BaseModel):
    """The signed revocation list (EIP-191 signature over the canonical payload)."""

    payload: RevocationPayload
    signer: str = Field(description="address that signed `payload`")
    signature: str = Field(description="0x-hex 65-byte signature")


class InclusionProof(BaseModel):
    leaf_index: int = Field(description="the leaf proven")
    tree_size: int = Field(description="size of the tree it is proven in")
    leaf_hash: str = Field(description="0x-hex RFC 9162 leaf hash")
    inclusion_proof: list[str] = Field(description="0x-hex audit path, leaf to root")
    tree_head: TreeHead | None = Field(description="the signed head of that tree size")


class ConsistencyProof(BaseModel):
    first: int = Field(description="size of the older tree")
    second: int = Field(description="size of the newer tree")
    proof: list[str] = Field(description="0x-hex RFC 9162 consistency proof")
    first_head: TreeHead | None = Field(description="signed head of the older tree")
    second_head: TreeHead | None = Field(description="signed head of the newer tree")


class BalanceView(BaseModel):
    unit: str = Field(description='always "wei"')
    available: str = Field(description=WEI + ": can be charged now")
    reserved: str = Field(description=WEI + ": held for charges not yet settled")
    total: str = Field(description=WEI + ": deposited and not withdrawn")
    pending_deposits: str = Field(description=WEI + ": seen on chain, not yet confirmed")
    withdrawing: str = Field(description=WEI + ": withdrawal requested by the controller")


class LimitsView(BaseModel):
    per_request_micros: int | None = Field(description="micro-ETH per charge; null: no limit")
    daily_micros: int | None = Field(description="micro-ETH per UTC day; null: no limit")
    spent_today_micros: int = Field(description="micro-ETH charged today (UTC)")


class AccountView(BaseModel):
    """A tenant's account as the service keeps it; balances mirror the chain."""

    tenant_id: str
    tenant_key: str = Field(description="Poseidon(tenant_id, account_salt), decimal")
    onchain_status: str = Field(description="whether the on-chain account is opened")
    onchain_tx: str | None = Field(description="the transaction that opened it")
    balance: BalanceView
    limits: LimitsView
    micro_wei: str = Field(description="wei per micro-ETH (10^12)")
    account_salt: str | None = Field(
        default=None, description="onboarding answer only: the tenant's secret salt"
    )
    onchain_error: str | None = Field(
        default=None, description="why opening the on-chain account failed (retry: …/bind)"
    )


class TariffKeyView(BaseModel):
    tenant_id: str
    tariff_key: str = Field(description="Poseidon(tariff_hash, account_salt), decimal")


class BindingView(BaseModel):
    binding_version: str = Field(description="bn128-poseidon8-v1 (linear) or -v2 (metered)")
    vkey_sha256: str = Field(description="SHA-256 of its verification key")


class StatusView(BaseModel):
    service: str = Field(description='always "vbill"')
    version: str
    binding_version: str = Field(description="the linear circuit binding (v1)")
    attester: str = Field(description="address of the signing attester key")
    vkey_sha256: str = Field(description="SHA-256 of binding v1's verification key")
    bindings: list[BindingView] = Field(
        description="every binding this service proves, v2 (metered) when its key is set up"
    )
    tree_head: TreeHead
    counts: dict[str, int] = Field(
        description="bundles by settlement status, log size; `tenants` only for the operator"
    )
    chain: dict[str, Any] | None = Field(
        description="network and worker state (the last batch's event ids only for the "
        "operator); null: no chain"
    )
    revocation_list: str = Field(description="path of the signed revocation list")


class HealthView(BaseModel):
    status: str = Field(description='"ok" or "degraded"')
    reasons: list[str] | None = Field(default=None, description="degraded: why")


class EventsRequest(BaseModel):
    """Body of POST /events: 1 to 1,000 attest requests. Each event is judged on its own (an
    event that is not a valid attest request is reported `invalid` in the answer, the others
    still stored), so any JSON value is accepted as an event here."""

    model_config = ConfigDict(extra="forbid")

    events: list[Any] = Field(
        min_length=1,
        max_length=1000,
        description="attest requests (AttestRequest or MeteredAttestRequest), in order",
    )


class TariffKeyRequest(BaseModel):
    """Body of POST …/accounts/{tenant_id}/tariff-key."""

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "tariff_snapshot": {
                        "tariff_id": "tariff_eth",
                        "tariff_version": "1.0.0",
                        "tariff_class": "usage_linear",
                        "unit_price_micros": 1,
                        "min_charge_micros": 0,
                        "max_charge_micros": 1000000,
                        "rounding_mode": "floor",
                        "currency": "ETH",
                    }
                }
            ]
        }
    }

    tariff_snapshot: TariffSnapshot | MeteredTariffSnapshot = Field(
        description="the tariff the tenant will accept (a usage_linear or a metered one)"
    )


class ProvingBundle(BaseModel):
    """A 202 to `Prefer: respond-async`: the bundle signed and logged, its Groth16 proof still
    being made; GET /bundles/{event_id} returns the whole bundle once it is attached."""

    model_config = {"extra": "allow"}

    status: str = Field(description='"proving"')


class CorrectionRequest(BaseModel):
    """Body of POST /corrections (docs/protocol-corrections.md §1)."""

    model_config = {
        "extra": "forbid",  # as correct.check_request: an unknown member is refused (422)
        "json_schema_extra": {
            "examples": [
                {
                    "tenant_id": "tenant_acme",
                    "corrects": "inf_9876543210fedcba",
                    "correction_id": "cor_0001",
                    "reason": "test inference billed by mistake",
                    "usage": {"output_tokens": 100},
                }
            ]
        },
    }

    tenant_id: Text = Field(description="the corrected event's tenant")
    corrects: Text = Field(description="event_id of the tenant's event to correct")
    correction_id: Text = Field(description="the correction's id: the idempotency key")
    reason: Text = Field(description="why; kept in the signed, logged record")
    usage: dict[str, int] | None = Field(
        default=None,
        description="units taken back per dimension (each ≤ the original's, every name one the "
        "original's tariff prices); omitted: every unit (a void); a binding v1 event is always "
        "voided whole",
        json_schema_extra={
            "propertyNames": {"pattern": DIMENSION_NAME_PATTERN},
            "maxProperties": 4,
            "additionalProperties": U64_SCHEMA.json_schema,
        },
    )


class CorrectionView(BaseModel):
    """A logged correction: its summary and the whole document (with its log receipt)."""

    credit_micros: int = Field(description="the credit, in the original's currency (micros)")
    correction_id: str
    corrects: str = Field(description="the corrected event_id")
    tenant_id: str
    seq: int | None = Field(description="its place in the window's chain; null for a v1 void")
    currency: str
    leaf_index: int = Field(description="its leaf in the transparency log")
    created: bool = Field(description="false when the same correction was already logged")
    correction: dict[str, Any] = Field(description="the signed correction or void document")
