"""Wire models (HTTP bodies and bundle files; docs/protocol.md §5), validated at the edge.

Shapes and types are checked here; value rules (ranges, timestamp form, enumerations) are the
canonical encoding's job (encoding.py), so both the CLI and the service reject the same things.
Every model forbids unknown fields: a field outside the hashes would be silently unbound.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

BILLING_VERSION = "v2"
PROFILE_ID = "VDI_VERIFY_STANDARD_V1"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MeterEvent(_Strict):
    event_id: StrictStr
    event_timestamp: StrictStr
    tenant_id: StrictStr
    api_key_id: StrictStr
    endpoint: StrictStr
    usage_units: StrictInt
    contract_version: StrictStr
    billing_window_id: StrictStr


class TariffSnapshot(_Strict):
    tariff_id: StrictStr
    tariff_version: StrictStr
    tariff_class: StrictStr
    # Up to 6 decimal places (e.g. 0.15); an int, a JSON number or a decimal string.
    unit_price_micros: StrictInt | float | StrictStr
    min_charge_micros: StrictInt
    max_charge_micros: StrictInt
    rounding_mode: StrictStr
    # ISO 4217 or ETH; the list itself is the encoding's (encoding.CURRENCIES)
    currency: StrictStr = Field(pattern="^[A-Z]{3}$")


class AttestRequest(_Strict):
    billing_version: StrictStr = BILLING_VERSION
    profileId: StrictStr = PROFILE_ID
    meter_event: MeterEvent
    tariff_snapshot: TariffSnapshot


class Billing(_Strict):
    expected_charge_micros: StrictInt
    billing_verify_fingerprint: StrictStr


class BillingRecord(_Strict):
    """A billing v2 record: what is attested, and what stands on an invoice."""

    billing_version: StrictStr
    profileId: StrictStr
    meter_event: MeterEvent
    tariff_snapshot: TariffSnapshot
    billing: Billing


class BillingProof(_Strict):
    binding_version: StrictStr
    proof: dict[str, Any]
    public_signals: list[StrictStr]
    vkey_sha256: StrictStr
    salt: StrictStr
    account_salt: StrictStr


class Attestation(_Strict):
    scheme: StrictStr = "eip712"
    signature: StrictStr
    attester: StrictStr
    bundle_digest: StrictStr
    billing_proof: BillingProof


class TreeHead(_Strict):
    tree_size: StrictInt
    root_hash: StrictStr
    timestamp: StrictInt
    signer: StrictStr
    signature: StrictStr


class Receipt(_Strict):
    leaf_index: StrictInt
    tree_size: StrictInt
    leaf_hash: StrictStr
    inclusion_proof: list[StrictStr]
    tree_head: TreeHead


class UsageReceipt(_Strict):
    cost_eth: StrictStr
    transaction_hash: StrictStr
    block_number: StrictInt
    gas_used: StrictInt
    timestamp: StrictInt


class Bundle(_Strict):
    billing_version: StrictStr
    profileId: StrictStr
    meter_event: MeterEvent
    tariff_snapshot: TariffSnapshot
    billing: Billing
    attestation: Attestation
    receipt: Receipt | None = None
    settlement: UsageReceipt | None = None

    def record(self) -> BillingRecord:
        """The billing v2 record this bundle attests."""
        return BillingRecord(
            billing_version=self.billing_version,
            profileId=self.profileId,
            meter_event=self.meter_event,
            tariff_snapshot=self.tariff_snapshot,
            billing=self.billing,
        )


class VerifyRequest(BaseModel):
    """Body of POST /verify. Left loose on purpose: verify must judge malformed parts itself
    (`valid: false` with a reason) rather than reject the request."""

    attestation: Any = None
    receipt: Any = None
    billed_billing_v2: Any = None
    expected_billing_v2: Any = None


class Verdict(BaseModel):
    valid: bool
    reason: str | None = None


class BindingVerdict(Verdict):
    binding_version: str
    commitment_digest: str | None = None


class VerifyResult(BaseModel):
    verification: Verdict
    billing_check: Verdict
    incircuit_binding_verification: BindingVerdict
    valid: bool = Field(description="all three verdicts hold")
    warnings: list[str] = Field(
        default_factory=list,
        description="what a reader must know even about a valid result (e.g. a dev-insecure key)",
    )


# --- the customer's side: accounts, tokens, receipts (service/customer.py, vbill.client) ---


class AccountBalance(BaseModel):
    """Balances in wei (sent as decimal strings; read here as ints)."""

    unit: str = "wei"
    available: int
    reserved: int
    total: int
    pending_deposits: int


class AccountLimits(BaseModel):
    """Spending limits in micro-ETH (None: no limit) and what was spent today (UTC)."""

    per_request_micros: int | None = None
    daily_micros: int | None = None
    spent_today_micros: int = 0


class Account(BaseModel):
    tenant_id: str
    tenant_key: str
    onchain_status: str
    onchain_tx: str | None = None
    balance: AccountBalance
    limits: AccountLimits
    micro_wei: int
    account_salt: str | None = None  # only in the onboarding answer
    onchain_error: str | None = None


class IssuedToken(BaseModel):
    """A tenant API token, shown once; `token_id` names it afterwards."""

    tenant_id: str
    token: str
    token_id: str
    created_at: int


class RevokedTokens(BaseModel):
    tenant_id: str
    revoked: int


class ReceiptView(BaseModel):
    """A bundle's settlement: `usage_receipt` is null until the charge is settled on chain."""

    event_id: str
    tenant_id: str
    settlement_status: str
    usage_receipt: UsageReceipt | None = None
