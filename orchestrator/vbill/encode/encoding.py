"""Canonical encoding of a meter event and a tariff snapshot into field elements (protocol.md §2).

Strict on purpose: every value the circuit hashes has exactly one accepted spelling, so two
different requests can never encode to the same field elements, and a rejected value names
its field with a dotted path ("tariff_snapshot.min_charge_micros"). Unknown fields are
rejected too: a silently ignored field would not be covered by the hashes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from vbill.bindings import BINDING_VERSION
from vbill.errors import InputError
from vbill.zk.field import R

U64_LIMIT = 1 << 64
PRICE_DECIMALS = 6
PRICE_SCALE = 10**PRICE_DECIMALS
MAX_STRING_CHARS = 256

TARIFF_CLASSES = {"usage_linear": 1}

ISO_4217 = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN
    BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP
    ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK
    JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK
    MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN
    PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB
    TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XAG
    XAU XBA XBB XBC XBD XCD XCG XDR XOF XPD XPF XPT XSU XTS XUA XXX YER ZAR ZMW ZWG ZWL
    """.split()  # noqa: SIM905  (a table reads better than 180 quoted strings)
)
"""Active ISO 4217 alphabetic codes (fixed here: a currency is hashed, so the set is part of
the protocol); with ETH, the only accepted `currency` values."""
CURRENCIES = ISO_4217 | {"ETH"}
ROUNDING_MODES = {"floor": 0, "ceil": 1, "half_up": 2}

METER_KEYS = (
    "event_id",
    "event_timestamp",
    "tenant_id",
    "api_key_id",
    "endpoint",
    "usage_units",
    "contract_version",
    "billing_window_id",
)
"""Wire keys of `meter_event`, in circuit order (each is also the circuit input name)."""

TARIFF_KEYS = (
    "tariff_id",
    "tariff_version",
    "tariff_class",
    "unit_price_micros",
    "min_charge_micros",
    "max_charge_micros",
    "rounding_mode",
    "currency",
)
"""Wire keys of `tariff_snapshot`, in circuit order (`unit_price_micros` → `price_scaled`)."""

_DECIMAL_INT = re.compile(r"0|[1-9][0-9]*", re.ASCII)
_DECIMAL_PRICE = re.compile(r"(0|[1-9][0-9]*)(\.[0-9]+)?", re.ASCII)
_TIMESTAMP = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?Z",
    re.ASCII,
)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def hash_string(value: str) -> int:
    """The string rule: int(SHA-256(utf8(s))) mod r."""
    return int.from_bytes(hashlib.sha256(value.encode("utf-8")).digest(), "big") % R


DOMAIN_TAG = hash_string(BINDING_VERSION)
"""The circuit's domain separation constant: the string rule applied to the binding version."""


def encode_string(value: Any, field: str) -> int:
    """A non-empty string of at most MAX_STRING_CHARS characters, hashed into the field."""
    if not isinstance(value, str):
        raise InputError(field, f"must be a string, got {_kind(value)}")
    if not value:
        raise InputError(field, "must not be empty")
    if len(value) > MAX_STRING_CHARS:
        raise InputError(field, f"must be at most {MAX_STRING_CHARS} characters")
    try:
        return hash_string(value)
    except UnicodeEncodeError as exc:
        raise InputError(field, "must be valid Unicode (no lone surrogates)") from exc


def encode_u64(value: Any, field: str) -> int:
    """An integer 0 ≤ v < 2^64, as a JSON integer or a canonical decimal-integer string."""
    message = "must be an integer 0 ≤ v < 2^64"
    if type(value) is int:
        v = value
    elif isinstance(value, str) and len(value) <= 20 and _DECIMAL_INT.fullmatch(value):
        v = int(value)
    else:
        raise InputError(field, f"{message}, got {_kind(value)}")
    if not 0 <= v < U64_LIMIT:
        raise InputError(field, message)
    return v


def encode_price(value: Any, field: str) -> int:
    """`unit_price_micros` with at most 6 decimal places → price_scaled = value × 10^6 < 2^64.

    Accepts an int, a Decimal, a plain decimal string ("0.15") or a float whose shortest repr
    is exact to 6 places. JSON readers that must keep every written digit should parse floats
    as Decimal (`json.loads(..., parse_float=Decimal)`): a float has already rounded them.
    """
    if type(value) is int:
        d = Decimal(value)
    elif isinstance(value, Decimal):
        d = value
    elif type(value) is float:
        if not math.isfinite(value):
            raise InputError(field, "must be a finite number")
        d = Decimal(repr(value))
    elif isinstance(value, str):
        if len(value) > 64 or _DECIMAL_PRICE.fullmatch(value) is None:
            raise InputError(field, "must be a plain decimal number such as 120 or 0.15")
        d = Decimal(value)
    else:
        raise InputError(field, f"must be a number, got {_kind(value)}")
    if not d.is_finite():
        raise InputError(field, "must be a finite number")
    if d.is_signed():  # every negative Decimal, and -0 too
        raise InputError(field, "must not be negative")
    try:
        scaled = d.scaleb(PRICE_DECIMALS)
        if scaled != scaled.to_integral_value():
            raise InputError(field, f"must have at most {PRICE_DECIMALS} decimal places")
        v = int(scaled)
    except InvalidOperation as exc:
        raise InputError(field, "is not a representable decimal number") from exc
    if v >= U64_LIMIT:
        raise InputError(field, "× 10^6 (price_scaled) must be less than 2^64")
    return v


def encode_timestamp(value: Any, field: str) -> int:
    """RFC 3339 UTC with an explicit `Z`, at most millisecond precision → ms since the epoch."""
    if not isinstance(value, str):
        raise InputError(field, f"must be an RFC 3339 string, got {_kind(value)}")
    m = _TIMESTAMP.fullmatch(value)
    if m is None:
        raise InputError(
            field,
            "must be RFC 3339 UTC with an explicit Z, e.g. 2026-05-29T12:00:00.000Z "
            "(no offsets, never read in a local time zone)",
        )
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    fraction = m.group(7) or ""
    if fraction[3:].strip("0"):
        raise InputError(field, "must not be more precise than milliseconds")
    try:
        moment = dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.UTC)
    except ValueError as exc:
        raise InputError(field, f"is not a valid date and time ({exc})") from exc
    delta = moment - _EPOCH
    ms = (delta.days * 86_400 + delta.seconds) * 1000 + int((fraction + "000")[:3])
    if ms < 0:
        raise InputError(field, "must not be before 1970-01-01T00:00:00Z")
    return ms


def encode_currency(value: Any, field: str) -> int:
    """An ISO 4217 code in upper case ("USD") or "ETH", hashed like any string."""
    if not isinstance(value, str) or value not in CURRENCIES:
        raise InputError(field, "must be an ISO 4217 currency code (e.g. USD, EUR) or ETH")
    return hash_string(value)


def encode_enum(value: Any, field: str, choices: Mapping[str, int]) -> int:
    """One of a fixed set of names, mapped to its small integer code."""
    if not isinstance(value, str) or value not in choices:
        allowed = ", ".join(choices)
        raise InputError(field, f"must be one of: {allowed}")
    return choices[value]


@dataclass(frozen=True)
class MeterFields:
    """A meter event as 8 field elements, in the circuit's order (= circuit input names)."""

    event_id: int
    event_timestamp: int
    tenant_id: int
    api_key_id: int
    endpoint: int
    usage_units: int
    contract_version: int
    billing_window_id: int

    @classmethod
    def from_wire(cls, obj: Any, path: str = "meter_event") -> MeterFields:
        """Encode a `meter_event` JSON object; raises InputError naming the bad field."""
        f = field_paths(obj, path, METER_KEYS)
        usage = {"usage_units": lambda: encode_u64(obj["usage_units"], f["usage_units"])}
        return cls(**encode_event_fields(obj, f, usage))

    def as_list(self) -> list[int]:
        return _values(self)


@dataclass(frozen=True)
class TariffFields:
    """A tariff snapshot as 8 field elements, in the circuit's order (= circuit input names)."""

    tariff_id: int
    tariff_version: int
    tariff_class: int
    price_scaled: int
    min_charge_micros: int
    max_charge_micros: int
    rounding_mode: int
    currency: int

    @classmethod
    def from_wire(cls, obj: Any, path: str = "tariff_snapshot") -> TariffFields:
        """Encode a `tariff_snapshot` JSON object; raises InputError naming the bad field."""
        f = field_paths(obj, path, TARIFF_KEYS)
        price = {
            "price_scaled": lambda: encode_price(obj["unit_price_micros"], f["unit_price_micros"])
        }
        return cls(**encode_tariff_fields(obj, f, TARIFF_CLASSES, price, encode_currency))

    def as_list(self) -> list[int]:
        return _values(self)


def encode_meter(obj: Mapping[str, Any]) -> MeterFields:
    """Encode the wire `meter_event` object (docs/protocol.md §2)."""
    return MeterFields.from_wire(obj)


def encode_tariff(obj: Mapping[str, Any]) -> TariffFields:
    """Encode the wire `tariff_snapshot` object (docs/protocol.md §2), including min ≤ max."""
    return TariffFields.from_wire(obj)


encode_meter_event = encode_meter
encode_tariff_snapshot = encode_tariff


def encode_event_fields(
    obj: Any, f: Mapping[str, str], usage: Mapping[str, Callable[[], Any]]
) -> dict[str, Any]:
    """A meter event's fields as keyword arguments, for either binding: the common ones here,
    the binding's own `usage` encoders in their wire place. Encoded in wire order, so the
    first bad field is the one named."""
    return {
        "event_id": encode_string(obj["event_id"], f["event_id"]),
        "event_timestamp": encode_timestamp(obj["event_timestamp"], f["event_timestamp"]),
        "tenant_id": encode_string(obj["tenant_id"], f["tenant_id"]),
        "api_key_id": encode_string(obj["api_key_id"], f["api_key_id"]),
        "endpoint": encode_string(obj["endpoint"], f["endpoint"]),
        **{name: encode() for name, encode in usage.items()},
        "contract_version": encode_string(obj["contract_version"], f["contract_version"]),
        "billing_window_id": encode_string(obj["billing_window_id"], f["billing_window_id"]),
    }


def encode_tariff_fields(
    obj: Any,
    f: Mapping[str, str],
    classes: Mapping[str, int],
    prices: Mapping[str, Callable[[], Any]],
    currency: Callable[[Any, str], int],
) -> dict[str, Any]:
    """A tariff's fields as keyword arguments, for either binding: identity, class (one of
    `classes`), the binding's own `prices` encoders in their wire place, the charge bounds
    (min ≤ max), rounding and `currency`. Encoded in wire order (the first bad one is named)."""
    fields = {
        "tariff_id": encode_string(obj["tariff_id"], f["tariff_id"]),
        "tariff_version": encode_string(obj["tariff_version"], f["tariff_version"]),
        "tariff_class": encode_enum(obj["tariff_class"], f["tariff_class"], classes),
        **{name: encode() for name, encode in prices.items()},
        "min_charge_micros": encode_u64(obj["min_charge_micros"], f["min_charge_micros"]),
        "max_charge_micros": encode_u64(obj["max_charge_micros"], f["max_charge_micros"]),
        "rounding_mode": encode_enum(obj["rounding_mode"], f["rounding_mode"], ROUNDING_MODES),
        "currency": currency(obj["currency"], f["currency"]),
    }
    if fields["min_charge_micros"] > fields["max_charge_micros"]:
        raise InputError(f["min_charge_micros"], "must not exceed max_charge_micros")
    return fields


def field_paths(obj: Any, path: str, keys: tuple[str, ...]) -> dict[str, str]:
    """Check that `obj` is an object with exactly `keys`; each key's path for error messages."""
    _check_keys(obj, path, keys)
    return {k: f"{path}.{k}" for k in keys}


def _check_keys(obj: Any, path: str, expected: tuple[str, ...]) -> None:
    if not isinstance(obj, Mapping):
        raise InputError(path, f"must be an object, got {_kind(obj)}")
    unknown = sorted(str(k) for k in obj if k not in expected)
    if unknown:
        raise InputError(
            f"{path}.{unknown[0]}", f"unknown field(s) {unknown}: not covered by the hash"
        )
    for key in expected:
        if key not in obj:
            raise InputError(f"{path}.{key}", "is required")


def _values(fields: Any) -> list[int]:
    return [getattr(fields, f.name) for f in dataclasses.fields(fields)]


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__
