"""Wire models (HTTP bodies and bundle files; docs/protocol.md §5), validated at the edge.

Shapes and types are checked here; value rules (ranges, timestamp form, enumerations) are the
canonical encoding's job (encoding.py), so both the CLI and the service reject the same things.
Every model forbids unknown fields: a field outside the hashes would be silently unbound.
"""

from __future__ import annotations

import copy
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StrictInt,
    StrictStr,
    ValidationError,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError

from vbill.encode.encoding import CURRENCIES, MAX_STRING_CHARS, ROUNDING_MODES, TARIFF_CLASSES
from vbill.encode.metered import METERED_CLASSES, UNBOUNDED
from vbill.errors import InputError, printable

BILLING_VERSION = "v2"
PROFILE_ID = "VDI_VERIFY_STANDARD_V1"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


EventT = TypeVar("EventT", bound=BaseModel)
TariffT = TypeVar("TariffT", bound=BaseModel)
BillingT = TypeVar("BillingT", bound=BaseModel)
RecordT = TypeVar("RecordT", bound=BaseModel)
ModelT = TypeVar("ModelT", bound=BaseModel)


def _doc(text: str) -> Any:
    """A required field's description (the OpenAPI document shows it; docs/protocol.md §3)."""
    return Field(description=text)


U64_SCHEMA = WithJsonSchema({"type": "integer", "minimum": 0, "maximum": 2**64 - 1})
"""0 ≤ v < 2^64 as the OpenAPI document states it: exact integers (pydantic writes ge/le/lt
bounds as floats, and 2^64 − 1 as a float is 2^64)."""
U64 = Annotated[StrictInt, U64_SCHEMA]
"""A wire integer 0 ≤ v < 2^64 whose range the encoder checks (naming the field); the type
only states it in the document."""

Text = Annotated[
    StrictStr, WithJsonSchema({"type": "string", "minLength": 1, "maxLength": MAX_STRING_CHARS})
]
"""A hashed string (vbill.encode.encoding.encode_string): 1 to 256 characters, as the OpenAPI
document states it; the encoder enforces it and names the field."""


def _one_of(names: object) -> Any:
    """A string field that takes one of `names` (the encoder's table), as the document states
    it; the encoder enforces it and names the field."""
    return Annotated[StrictStr, WithJsonSchema({"type": "string", "enum": sorted(names)})]  # type: ignore[call-overload]


_YEAR = "(?:19[7-9][0-9]|[2-9][0-9]{3})"
_LEAP_YEAR = (
    "(?:19(?:7[26]|8[048]|9[26])|[2-9][0-9](?:0[48]|[2468][048]|[13579][26])"
    "|(?:[2468][048]|[3579][26])00)"
)


def _month_day(long_months: str = "0[13578]|1[02]") -> str:
    """MM-DD of a month 01-12 and a day it has (29 February apart); `long_months`: the months
    whose 31st is meant."""
    return (
        "(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)"
        f"|(?:{long_months})-31)"
    )


DATE_PATTERN = f"(?:{_YEAR}-{_month_day()}|{_LEAP_YEAR}-02-29)"
"""A calendar date from 1970-01-01 to 9999-12-31 (leap years included): what `datetime`
accepts and the encoder's epoch allows, written as a regular expression."""
TIMESTAMP_PATTERN = (
    f"^{DATE_PATTERN}T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{{1,3}}0{{0,6}})?Z$"
)
"""`event_timestamp` as the encoder takes it (vbill.encode.encoding.encode_timestamp): RFC 3339
UTC with an explicit Z, no earlier than 1970, a fraction of at most 9 digits of which only the
first 3 (milliseconds) may be non-zero."""
PERIOD_SHAPE = "^[0-9]{4}-[0-9]{2}(?:-[0-9]{2})?$"
_PERIOD_YEAR = "(?:19[7-9][0-9]|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])"
PERIOD_PATTERN = (
    f"^(?:{_PERIOD_YEAR}-(?:0[1-9]|1[0-2])|9999-(?:0[1-9]|1[01])"
    f"|{_PERIOD_YEAR}-{_month_day()}|{_LEAP_YEAR}-02-29|9999-{_month_day('0[13578]|10')})$"
)
"""A period id (vbill.billing.periods.period_of): a month or a day from 1970 whose end is a
date too (so neither 9999-12 nor 9999-12-31)."""
WindowId = Annotated[
    StrictStr,
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_STRING_CHARS,
            # an opaque name, or a period (YYYY-MM, YYYY-MM-DD) that is a real month or day
            "anyOf": [{"not": {"pattern": PERIOD_SHAPE}}, {"pattern": PERIOD_PATTERN}],
        }
    ),
]
"""`billing_window_id` (vbill.billing.periods): an id shaped like a period must name a calendar
month or day from 1970 on, and then contain `event_timestamp` (a rule across two fields, which
the operation's description states)."""

PRICE_MAX = (2**64 - 1) // 10**6
"""The largest whole price: price × 10^6 < 2^64 (docs/protocol.md §2.2)."""


def _price(value: Any) -> Any:
    """A price as written: a JSON integer, number or string (the encoder judges its value). A
    boolean is none of them (a lax float read `true` as 1.0). One validator, not a union, so a
    refusal names the field itself rather than a union member (`unit_price_micros.int`)."""
    if type(value) not in (int, float, str):
        raise PydanticCustomError("price", "must be a number or a decimal string")
    return value


Price = Annotated[
    Any,
    PlainValidator(_price),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 0, "maximum": PRICE_MAX},
                # the encoder's 6 decimals (of the number's shortest spelling), stated exactly
                {"type": "number", "minimum": 0, "maximum": PRICE_MAX, "multipleOf": 0.000001},
                {
                    "type": "string",
                    "maxLength": 64,
                    "pattern": r"^(0|[1-9][0-9]{0,12})(\.[0-9]{1,6}0*)?$",
                },
            ]
        }
    ),
]
"""A price in micros with at most 6 significant decimals, as the OpenAPI document states it
(the encoder enforces the rule exactly and names the field)."""


class _EventHead(_Strict):
    """What every event names whatever its tariff (who called what, when): one declaration, so
    the linear and the metered event cannot drift apart."""

    event_id: Text = _doc("unique per tenant; attesting it again replays the bundle")
    event_timestamp: Annotated[
        StrictStr, WithJsonSchema({"type": "string", "pattern": TIMESTAMP_PATTERN})
    ] = _doc("RFC 3339 UTC with milliseconds, e.g. 2026-05-29T12:00:00.000Z")
    tenant_id: Text = _doc("the customer billed")
    api_key_id: Text = _doc("the tenant's API key that made the call")
    endpoint: Text = _doc("the API path called")


class MeterEvent(_EventHead):
    """One billable API event, as metered."""

    usage_units: U64 = _doc("metered units (≥ 0, < 2^64)")
    contract_version: Text = _doc("the contract the tariff belongs to")
    billing_window_id: WindowId = _doc(
        "the billing period, e.g. 2026-05 (a YYYY-MM or YYYY-MM-DD id must contain the timestamp)"
    )


class TariffSnapshot(_Strict):
    """The tariff in force for the event, as agreed with the tenant."""

    tariff_id: Text = _doc("the tariff's name")
    tariff_version: Text = _doc("its version")
    tariff_class: _one_of(TARIFF_CLASSES) = _doc(
        '"usage_linear": units × unit price, clamped to [min, max]'
    )
    # Up to 6 decimal places (e.g. 0.15); an int, a JSON number or a decimal string.
    unit_price_micros: Price = _doc(
        "price per unit in micros of `currency`, up to 6 decimals (int, number or string)"
    )
    min_charge_micros: U64 = _doc("floor of the charge, micros (≤ max_charge_micros)")
    max_charge_micros: U64 = _doc("cap of the charge, micros")
    rounding_mode: _one_of(ROUNDING_MODES) = _doc(
        '"floor", "ceil" or "half_up" (of the fractional micro)'
    )
    # ISO 4217 or ETH; the list itself is the encoding's (encoding.CURRENCIES)
    currency: _one_of(CURRENCIES) = Field(
        pattern="^[A-Z]{3}$", description="ISO 4217 code or ETH; only ETH settles on chain"
    )


def _example_event(event_id: str, endpoint: str, **usage: Any) -> dict[str, Any]:
    """A documented example's meter event: the pilot tenant's key, time and window, with
    one binding's usage field (`usage_units` or `usage`)."""
    return {
        "event_id": event_id,
        "event_timestamp": "2026-05-29T12:00:00.000Z",
        "tenant_id": "tenant_acme",
        "api_key_id": "api_live_001",
        "endpoint": endpoint,
        **usage,
        "contract_version": "contract-v1",
        "billing_window_id": "2026-05",
    }


def _example(meter_event: dict[str, Any], tariff_snapshot: dict[str, Any]) -> ConfigDict:
    """A request model's documented example (OpenAPI), with the header every request carries."""
    return ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "billing_version": BILLING_VERSION,
                    "profileId": PROFILE_ID,
                    "meter_event": meter_event,
                    "tariff_snapshot": tariff_snapshot,
                }
            ]
        }
    )


def parse_as(model: type[ModelT], data: Any, path: str = "") -> ModelT:
    """`data` validated as `model` (an instance passes as it is). The first problem is an
    InputError naming its field below `path` ("request" when it is the whole of it), so the CLI
    and the service reject a malformed part in the same words."""
    if isinstance(data, model):
        return data
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in (path, *err["loc"]) if p != "") or "request"
        raise InputError(field, err["msg"]) from None


def example(model: type[BaseModel]) -> dict[str, Any]:
    """A fresh copy of a request model's documented example (the one the OpenAPI document
    shows), for tools and tests that need a valid request to start from."""
    return copy.deepcopy(model.model_config["json_schema_extra"]["examples"][0])  # type: ignore[index]


class _Request(_Strict, Generic[EventT, TariffT]):
    """Body of POST /attest: an event and its tariff under the record header (defaults)."""

    billing_version: _one_of([BILLING_VERSION]) = Field(  # parse_v2 refuses any other
        BILLING_VERSION, description="record format version"
    )
    profileId: StrictStr = Field(PROFILE_ID, description="verification profile")
    meter_event: EventT
    tariff_snapshot: TariffT


class AttestRequest(_Request[MeterEvent, TariffSnapshot]):
    """Body of POST /attest (docs/examples/*.json)."""

    model_config = _example(
        meter_event=_example_event("evt_pilot_001", "/v1/completions", usage_units=1842),
        tariff_snapshot={
            "tariff_id": "tariff_default",
            "tariff_version": "1.0.0",
            "tariff_class": "usage_linear",
            "unit_price_micros": 120,
            "min_charge_micros": 50000,
            "max_charge_micros": 5000000000,
            "rounding_mode": "floor",
            "currency": "USD",
        },
    )


# A charge is < 2^64 (the circuits' range checks); anything else names the field at parse time
# instead of failing in the EIP-712 encoder (uint256) or reaching the comparison.
ChargeMicros = Annotated[StrictInt, Field(ge=0, lt=2**64), U64_SCHEMA]


class Billing(_Strict):
    expected_charge_micros: ChargeMicros
    billing_verify_fingerprint: StrictStr


class _Record(_Strict, Generic[EventT, TariffT, BillingT]):
    """The fields of a billing v2 record, whatever its binding's event, tariff and billing."""

    billing_version: StrictStr
    profileId: StrictStr
    meter_event: EventT
    tariff_snapshot: TariffT
    billing: BillingT


class BillingRecord(_Record[MeterEvent, TariffSnapshot, Billing]):
    """A billing v2 record: what is attested, and what stands on an invoice."""


class BillingProof(_Strict):
    binding_version: StrictStr
    proof: dict[str, Any]
    public_signals: list[StrictStr]
    vkey_sha256: StrictStr
    salt: StrictStr
    account_salt: StrictStr


class UsdRate(_Strict):
    """A USD rate snapshot signed by the attester over the bundle's digest (docs/protocol-v2.md
    §12): where a metered ETH bundle's `usage.cost_usd` comes from; never part of the proof."""

    rate: StrictStr = _doc('USD per ETH, a decimal string > 0 (≤ 8 decimals), e.g. "3150.25"')
    source: StrictStr = _doc("the operator's name for the rate source")
    time: StrictStr = _doc("when the rate is as of, RFC 3339 UTC with milliseconds")
    signature: StrictStr = _doc("the attester's EIP-712 signature (domain usd-rate-1)")


class Attestation(_Strict):
    scheme: StrictStr = "eip712"
    signature: StrictStr
    attester: StrictStr
    bundle_digest: StrictStr
    billing_proof: BillingProof
    usd_rate: UsdRate | None = None


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


class _Bundle(_Record[EventT, TariffT, BillingT]):
    """A record with its attestation, and the log's and the chain's answers once they exist."""

    attestation: Attestation
    receipt: Receipt | None = None
    settlement: UsageReceipt | None = None

    def _record_as(self, model: type[RecordT]) -> RecordT:
        """The record part of this bundle, as `model` (the binding's record type)."""
        return model(**{name: getattr(self, name) for name in model.model_fields})


class Bundle(_Bundle[MeterEvent, TariffSnapshot, Billing]):
    def record(self) -> BillingRecord:
        """The billing v2 record this bundle attests."""
        return self._record_as(BillingRecord)


# --- metered requests (binding bn128-poseidon8-v2, docs/protocol-v2.md) ---


DIMENSION_NAME_PATTERN = "^[a-z][a-z0-9_]{0,31}$"
"""A dimension's name (the encoder's rule, vbill.encode.metered.DIMENSION_NAME), stated in the
OpenAPI document; the encoder enforces it and names the field."""


class MeteredMeterEvent(_EventHead):
    """One billable event with several usage dimensions (e.g. an inference's tokens)."""

    usage: dict[StrictStr, StrictInt] = Field(
        description="units per priced dimension (≥ 0, < 2^64); an unpriced name is refused",
        json_schema_extra={
            "propertyNames": {"pattern": DIMENSION_NAME_PATTERN},
            "maxProperties": 4,
            "additionalProperties": {"type": "integer", "minimum": 0, "maximum": 2**64 - 1},
        },
    )
    contract_version: Text = _doc("the contract the tariff belongs to")
    billing_window_id: WindowId = _doc(
        "the billing period whose running total this joins (a YYYY-MM or YYYY-MM-DD id must "
        "contain the timestamp)"
    )


BOUND_SCHEMA = {"type": "integer", "minimum": 1, "maximum": UNBOUNDED - 1}
"""A bounded tier's `up_to`: 0 < up_to < 2^64 − 1 (2^64 − 1 is the padding's "unbounded")."""


class Tier(_Strict):
    up_to: Annotated[
        StrictInt | None, WithJsonSchema({"anyOf": [BOUND_SCHEMA, {"type": "null"}]})
    ] = _doc(
        "cumulative units in the window where the tier ends, each above the one before; null "
        "for the last tier (and only the last)"
    )
    unit_price_micros: Price = _doc("price per unit, up to 6 decimals")


def _tiers_of_length(n: int) -> dict[str, Any]:
    """`n` tiers: all bounded but the last, which is unbounded (the encoder's rule)."""
    bounded = {"properties": {"up_to": BOUND_SCHEMA}}
    last = {"properties": {"up_to": {"type": "null"}}}
    return {"minItems": n, "maxItems": n, "prefixItems": [bounded] * (n - 1) + [last]}


class Dimension(_Strict):
    tiers: list[Tier] = Field(
        description="1 to 4 graduated tiers on the window's cumulative usage; every tier but "
        "the last ends at an `up_to` above the previous one's, the last is unbounded (null)",
        json_schema_extra={
            "minItems": 1,
            "maxItems": 4,
            "anyOf": [_tiers_of_length(n) for n in range(1, 5)],
        },
    )


class MeteredTariffSnapshot(_Strict):
    """A metered tariff: 1–4 dimensions × 1–4 graduated tiers, rounded on the window."""

    tariff_id: Text = _doc("the tariff's name; one running total per window and tariff_id")
    tariff_version: Text = _doc("its version (a new one continues the window's chain)")
    tariff_class: _one_of(METERED_CLASSES) = _doc('"metered"')
    dimensions: dict[StrictStr, Dimension] = Field(
        description="1 to 4 priced dimensions by name",
        json_schema_extra={
            "propertyNames": {"pattern": DIMENSION_NAME_PATTERN},
            "minProperties": 1,
            "maxProperties": 4,
        },
    )
    min_charge_micros: U64 = _doc("floor of each event's charge, micros (≤ max_charge_micros)")
    max_charge_micros: U64 = _doc("cap of each event's charge, micros")
    rounding_mode: _one_of(ROUNDING_MODES) = _doc(
        '"floor", "ceil" or "half_up", applied on the window'
    )
    currency: StrictStr = Field(pattern="^[A-Z]{3}$", description="ISO 4217 code or ETH")


class MeteredAttestRequest(_Request[MeteredMeterEvent, MeteredTariffSnapshot]):
    """Body of POST /attest for a metered tariff (`tariff_class: "metered"`)."""

    model_config = _example(
        meter_event=_example_event(
            "inf_9876543210fedcba",
            "/v1/inference",
            usage={"input_tokens": 156, "output_tokens": 412},
        ),
        tariff_snapshot={
            "tariff_id": "llm-secure-7b",
            "tariff_version": "1.0.0",
            "tariff_class": "metered",
            "dimensions": {
                "input_tokens": {
                    "tiers": [
                        {"up_to": 100, "unit_price_micros": "0"},
                        {"up_to": None, "unit_price_micros": "0.25"},
                    ]
                },
                "output_tokens": {
                    "tiers": [
                        {"up_to": 1000000, "unit_price_micros": "1.25"},
                        {"up_to": None, "unit_price_micros": "1"},
                    ]
                },
            },
            "min_charge_micros": 0,
            "max_charge_micros": 5000000000,
            "rounding_mode": "ceil",
            "currency": "ETH",
        },
    )


class WindowStateJson(_Strict):
    """A window state in clear: integers past 2^53 as canonical decimal strings."""

    seq: StrictInt
    units: dict[StrictStr, StrictStr]
    amount: StrictStr
    charge: StrictStr


class Window(_Strict):
    """The event's place in its window: `seq` and the states before and after it."""

    seq: StrictInt
    before: WindowStateJson
    after: WindowStateJson


class MeteredBilling(_Strict):
    expected_charge_micros: ChargeMicros
    billing_verify_fingerprint: StrictStr
    window: Window


class MeteredBillingRecord(_Record[MeteredMeterEvent, MeteredTariffSnapshot, MeteredBilling]):
    """A metered billing v2 record: the event, its tariff, its charge and window states."""


class CorrectedBy(_Strict):
    """The correction of a corrected event (docs/protocol-corrections.md): informational, not
    covered by the bundle's signature; the correction is a signed document of its own."""

    correction_id: StrictStr = _doc("the correction's id")
    credit_micros: StrictInt = _doc("its credit, in the event's currency (micros)")


class Usage(_Strict):
    """What one metered event used and cost, as the service shows it: informational, derived
    from the signed record and rate snapshot, never part of the proof (verify checks it)."""

    units: dict[StrictStr, StrictInt] = _doc("the event's units per dimension")
    total_units: StrictInt = _doc("their sum")
    cost_eth: StrictStr | None = Field(
        default=None, description="ETH tariffs: the event's charge in ETH (decimal string)"
    )
    cost_usd: StrictStr | None = Field(
        default=None,
        description="with a signed rate snapshot (attestation.usd_rate): cost_eth × rate, exact",
    )
    corrected_by: CorrectedBy | None = Field(
        default=None,
        description="the event's correction, once it has one (GET /corrections/{tenant_id}/"
        "{correction_id} serves the signed document)",
    )


class MeteredBundle(_Bundle[MeteredMeterEvent, MeteredTariffSnapshot, MeteredBilling]):
    usage: Usage | None = None

    def record(self) -> MeteredBillingRecord:
        return self._record_as(MeteredBillingRecord)


class VerifyRequest(BaseModel):
    """Body of POST /verify. Left loose on purpose: verify must judge malformed parts itself
    (`valid: false` with a reason) rather than reject the request."""

    model_config = ConfigDict(
        extra="allow",  # an unknown member is judged (valid: false), not refused
        json_schema_extra={
            "examples": [
                {
                    "attestation": {"scheme": "eip712", "signature": "0x…", "attester": "0x…"},
                    "receipt": {"leaf_index": 0, "tree_size": 1},
                    "billed_billing_v2": {"billing": {"expected_charge_micros": 221040}},
                    "expected_billing_v2": {"billing": {"expected_charge_micros": 221040}},
                },
                {
                    "attestation": {"scheme": "eip712", "signature": "0x…", "attester": "0x…"},
                    "receipt": {"leaf_index": 1, "tree_size": 2},
                    "billed_billing_v2": {
                        "tariff_snapshot": {"tariff_class": "metered", "currency": "ETH"},
                        "billing": {
                            "expected_charge_micros": 554,
                            "window": {"seq": 1, "before": {"seq": 0}, "after": {"seq": 1}},
                        },
                    },
                },
            ]
        },
    )

    attestation: Any = Field(
        default=None, description="the bundle's `attestation` (signature and Groth16 proof)"
    )
    receipt: Any = Field(default=None, description="the bundle's transparency-log `receipt`")
    billed_billing_v2: Any = Field(
        default=None, description="the billing v2 record as attested (the bundle's fields)"
    )
    expected_billing_v2: Any = Field(
        default=None, description="the record as invoiced, to compare with the attested one"
    )
    usage: Any = Field(
        default=None, description="a metered bundle's `usage` object, checked when given"
    )


class Verdict(BaseModel):
    valid: bool
    reason: str | None = None

    @field_validator("reason")
    @classmethod
    def _printable(cls, reason: str | None) -> str | None:
        """A reason may echo hostile input: it must still encode (JSON over HTTP, a terminal)."""
        return None if reason is None else printable(reason)


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

    @field_validator("warnings")
    @classmethod
    def _printable(cls, warnings: list[str]) -> list[str]:
        return [printable(w) for w in warnings]


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
