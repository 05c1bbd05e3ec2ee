"""The canonical encoding (docs/protocol.md §2): one accepted spelling per value, and every
rejection names its field."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

import pytest
from vbill import paths
from vbill.encode.encoding import (
    DOMAIN_TAG,
    MeterFields,
    TariffFields,
    encode_meter,
    encode_tariff,
    hash_string,
)
from vbill.errors import InputError
from vbill.zk.field import R, parse_field_element, to_dec

U64_MAX = 2**64 - 1

_PILOT = json.loads(paths.PILOT_REQUEST.read_text())
PILOT_METER: dict[str, Any] = _PILOT["meter_event"]
PILOT_TARIFF: dict[str, Any] = _PILOT["tariff_snapshot"]


def meter(**changes: Any) -> MeterFields:
    return encode_meter({**PILOT_METER, **changes})


def tariff(**changes: Any) -> TariffFields:
    return encode_tariff({**PILOT_TARIFF, **changes})


def rejects(field: str, fn: Any, *args: Any, **kwargs: Any) -> InputError:
    with pytest.raises(InputError) as info:
        fn(*args, **kwargs)
    assert info.value.field == field, info.value
    assert str(info.value).startswith(f"{field}: ")
    return info.value


# --- field elements ---


@pytest.mark.parametrize(
    "value",
    [
        str(R),
        str(R + 5),
        "-1",
        "+1",
        "01",
        "00",
        " 1",
        "1 ",
        "1\n",
        "",
        "0x1",
        "1.0",
        "1e3",
        "١٢",
        1,
        1.0,
        True,
        None,
        ["1"],
    ],
)
def test_field_element_rejects_non_canonical(value: Any) -> None:
    rejects("billing_proof.salt", parse_field_element, value, "billing_proof.salt")


def test_field_element_accepts_canonical_bounds() -> None:
    assert parse_field_element("0", "x") == 0
    assert parse_field_element(str(R - 1), "x") == R - 1
    assert to_dec(R - 1) == str(R - 1)
    for bad in (R, -1, True):
        with pytest.raises(ValueError):
            to_dec(bad)


# --- object shape ---


def test_rejects_unknown_field_by_name() -> None:
    rejects("meter_event.discount", encode_meter, {**PILOT_METER, "discount": 5})
    rejects("tariff_snapshot.fee", encode_tariff, {**PILOT_TARIFF, "fee": 1})


@pytest.mark.parametrize("key", list(PILOT_METER))
def test_rejects_missing_meter_field(key: str) -> None:
    obj = {k: v for k, v in PILOT_METER.items() if k != key}
    rejects(f"meter_event.{key}", encode_meter, obj)


@pytest.mark.parametrize("key", list(PILOT_TARIFF))
def test_rejects_missing_tariff_field(key: str) -> None:
    obj = {k: v for k, v in PILOT_TARIFF.items() if k != key}
    rejects(f"tariff_snapshot.{key}", encode_tariff, obj)


def test_rejects_non_object() -> None:
    rejects("meter_event", encode_meter, [1, 2])
    rejects("tariff_snapshot", encode_tariff, None)


# --- integers ---

INTEGER_FIELDS = [
    ("meter_event.usage_units", meter, "usage_units"),
    ("tariff_snapshot.min_charge_micros", tariff, "min_charge_micros"),
    ("tariff_snapshot.max_charge_micros", tariff, "max_charge_micros"),
]


@pytest.mark.parametrize(("path", "build", "key"), INTEGER_FIELDS)
@pytest.mark.parametrize(
    "bad", [2**64, 2**70, -1, True, False, 1.0, 1842.5, "1e3", "-1", "01", " 7", "0x10", None, [1]]
)
def test_rejects_bad_integer(path: str, build: Any, key: str, bad: Any) -> None:
    extra = {"max_charge_micros": U64_MAX} if key == "min_charge_micros" else {}
    err = rejects(path, build, **{**extra, key: bad})
    assert "2^64" in err.message


def test_integer_bounds_accepted() -> None:
    assert meter(usage_units=U64_MAX).usage_units == U64_MAX
    assert meter(usage_units=0).usage_units == 0
    assert meter(usage_units=str(U64_MAX)).usage_units == U64_MAX
    t = tariff(min_charge_micros=U64_MAX, max_charge_micros=U64_MAX)
    assert (t.min_charge_micros, t.max_charge_micros) == (U64_MAX, U64_MAX)


def test_big_integers_survive_json_round_trip() -> None:
    obj = json.loads(json.dumps({**PILOT_METER, "usage_units": U64_MAX}))
    assert encode_meter(obj).usage_units == 18446744073709551615
    over = json.loads('{"usage_units": 18446744073709551616}')
    rejects("meter_event.usage_units", meter, **over)


def test_rejects_min_above_max() -> None:
    rejects("tariff_snapshot.min_charge_micros", tariff, min_charge_micros=6, max_charge_micros=5)
    assert tariff(min_charge_micros=5, max_charge_micros=5).min_charge_micros == 5


# --- price ---


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        (-1, "negative"),
        (-0.5, "negative"),
        ("-0.5", "plain decimal"),
        (Decimal("-0"), "negative"),
        (0.1234567, "6 decimal places"),
        ("0.1234567", "6 decimal places"),
        (Decimal("1E-7"), "6 decimal places"),
        (float("nan"), "finite"),
        (float("inf"), "finite"),
        (Decimal("NaN"), "finite"),
        ("1e3", "plain decimal"),
        (".5", "plain decimal"),
        ("0.15 ", "plain decimal"),
        (True, "number"),
        (None, "number"),
        (2**64, "2^64"),
        ("18446744073709.551616", "2^64"),
        (1e19, "2^64"),
    ],
)
def test_rejects_bad_price(bad: Any, why: str) -> None:
    err = rejects("tariff_snapshot.unit_price_micros", tariff, unit_price_micros=bad)
    assert why in err.message


@pytest.mark.parametrize(
    ("price", "scaled"),
    [
        (120, 120_000_000),
        (0.15, 150_000),
        ("0.15", 150_000),
        (Decimal("0.15"), 150_000),
        (0.000001, 1),
        ("0.000001", 1),
        (0, 0),
        (120.0, 120_000_000),
        ("18446744073709.551615", U64_MAX),
        (json.loads("0.15", parse_float=Decimal), 150_000),
    ],
)
def test_price_scaled(price: Any, scaled: int) -> None:
    assert tariff(unit_price_micros=price).price_scaled == scaled


# --- timestamps ---


@pytest.mark.parametrize(
    "bad",
    [
        "2026-05-29T12:00:00.000",
        "2026-05-29T12:00:00.000+00:00",
        "2026-05-29T12:00:00+00:00",
        "2026-05-29T12:00:00.000z",
        "2026-05-29 12:00:00Z",
        "2026-05-29T12:00:00.0001Z",
        "2026-05-29T12:00:00.Z",
        "2026-02-30T12:00:00Z",
        "2026-05-29T24:00:00Z",
        "2026-05-29T12:00:60Z",
        "1969-12-31T23:59:59.999Z",
        "2026-05-29",
        " 2026-05-29T12:00:00Z",
        1780056000000,
        None,
    ],
)
def test_rejects_bad_timestamp(bad: Any) -> None:
    rejects("meter_event.event_timestamp", meter, event_timestamp=bad)


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("2026-05-29T12:00:00.000Z", 1_780_056_000_000),
        ("2026-05-29T12:00:00Z", 1_780_056_000_000),
        ("2026-05-29T12:00:00.5Z", 1_780_056_000_500),
        ("2026-05-29T12:00:00.123000Z", 1_780_056_000_123),
        ("1970-01-01T00:00:00Z", 0),
        ("2024-02-29T23:59:59.999Z", 1_709_251_199_999),
    ],
)
def test_timestamp_to_epoch_ms(text: str, ms: int) -> None:
    assert meter(event_timestamp=text).event_timestamp == ms


# --- enumerations ---


@pytest.mark.parametrize("bad", ["usage_tiered", "USAGE_LINEAR", "", 1, None])
def test_rejects_unknown_tariff_class(bad: Any) -> None:
    rejects("tariff_snapshot.tariff_class", tariff, tariff_class=bad)


@pytest.mark.parametrize("bad", ["round", "Floor", "half_even", 0, None])
def test_rejects_unknown_rounding_mode(bad: Any) -> None:
    rejects("tariff_snapshot.rounding_mode", tariff, rounding_mode=bad)


def test_enumeration_codes() -> None:
    assert tariff().tariff_class == 1
    codes = [tariff(rounding_mode=m).rounding_mode for m in ("floor", "ceil", "half_up")]
    assert codes == [0, 1, 2]


# --- strings ---

STRING_FIELDS = [
    ("meter_event." + k, meter, k)
    for k in (
        "event_id",
        "tenant_id",
        "api_key_id",
        "endpoint",
        "contract_version",
        "billing_window_id",
    )
] + [("tariff_snapshot." + k, tariff, k) for k in ("tariff_id", "tariff_version", "currency")]


@pytest.mark.parametrize(("path", "build", "key"), STRING_FIELDS)
@pytest.mark.parametrize("bad", ["", "x" * 257, "\ud800", 7, None, b"USD"])
def test_rejects_bad_string(path: str, build: Any, key: str, bad: Any) -> None:
    rejects(path, build, **{key: bad})


def test_string_rule_is_sha256_mod_r() -> None:
    digest = int(hashlib.sha256(b"USD").hexdigest(), 16)
    assert tariff().currency == digest % R
    assert hash_string("é") == int(hashlib.sha256("é".encode()).hexdigest(), 16) % R
    assert meter(event_id="x" * 256).event_id == hash_string("x" * 256)
    assert meter(tenant_id="tenant_acme ").tenant_id != meter().tenant_id


def test_domain_tag_is_pinned() -> None:
    # Changing it is a new binding version: the circuit hard-codes the same constant.
    assert DOMAIN_TAG == (
        10387255799731454880307487715823259317098779148486533660079705591127039529430
    )


def test_pilot_encodes_in_circuit_order() -> None:
    m, t = meter(), tariff()
    assert m.as_list()[1] == 1_780_056_000_000
    assert m.as_list()[5] == 1842
    assert t.as_list()[2:7] == [1, 120_000_000, 50_000, 5_000_000_000, 0]
    assert all(0 <= x < R for x in m.as_list() + t.as_list())


# -- the exact edges of the input rules (mutation-checked, docs/testing.md) -------------------


def test_a_price_string_may_be_64_characters_long_and_no_longer() -> None:
    from vbill.encode.encoding import encode_price

    assert encode_price("1." + "0" * 62, "p") == 10**6  # 64 characters
    assert encode_price("0", "p") == 0
    with pytest.raises(InputError, match="plain decimal number"):
        encode_price("1." + "0" * 63, "p")  # 65
    for negative in (Decimal("-0"), Decimal("-0.000001"), -1, -0.0):
        with pytest.raises(InputError, match="must not be negative"):
            encode_price(negative, "p")


def test_a_wrong_type_is_named_in_json_words() -> None:
    from vbill.encode.encoding import encode_u64

    for value, kind in ((None, "null"), ([], "list"), ({}, "dict"), (1.5, "float")):
        with pytest.raises(InputError) as exc:
            encode_u64(value, "meter_event.usage_units")
        assert exc.value.message.endswith(f"got {kind}"), exc.value.message


def test_encoded_fields_cannot_be_changed_after_encoding() -> None:
    import dataclasses

    from vbill.encode.encoding import MeterFields, TariffFields

    request = json.loads(paths.PILOT_REQUEST.read_text())
    meter = MeterFields.from_wire(request["meter_event"])
    tariff = TariffFields.from_wire(request["tariff_snapshot"])
    for fields in (meter, tariff):
        with pytest.raises(dataclasses.FrozenInstanceError):
            fields.tariff_id = 0  # type: ignore[misc, union-attr]
