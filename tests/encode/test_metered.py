"""The metered reference (vbill.encode.metered): validation names the field, and the tier math.

The circuit equality is test_circuit_metered.py's job; here the request rules and the
arithmetic are checked on their own, fast.
"""

from __future__ import annotations

from typing import Any

import pytest
from support import set_in
from support.metered import INFERENCE, flat, request
from vbill.encode.metered import (
    GENESIS,
    UNBOUNDED,
    WindowState,
    encode_metered,
    event_amount,
    round_micros,
    transition,
)
from vbill.errors import InputError

U64 = 2**64


def rejects(req: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as caught:
        meter, tariff = encode_metered(req)
        transition(tariff, meter)
    assert caught.value.field == field


def edited(path: list[Any], value: Any) -> dict[str, Any]:
    """INFERENCE with one member replaced (a copy)."""
    return set_in(INFERENCE, tuple(path), value)


DIMS = ["tariff_snapshot", "dimensions"]
OUT = "tariff_snapshot.dimensions.output_tokens"


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (DIMS, {}, "tariff_snapshot.dimensions"),
        (DIMS, {f"d{i}": flat("1") for i in range(5)}, "tariff_snapshot.dimensions"),
        (DIMS, {"Input": flat("1")}, "tariff_snapshot.dimensions.Input"),
        (DIMS, {"a" * 33: flat("1")}, "tariff_snapshot.dimensions." + "a" * 33),
        ([*DIMS, "output_tokens", "tiers"], [], f"{OUT}.tiers"),
        ([*DIMS, "output_tokens", "tiers", 1, "up_to"], 5, f"{OUT}.tiers[1].up_to"),
        ([*DIMS, "output_tokens", "tiers", 0, "up_to"], None, f"{OUT}.tiers[0].up_to"),
        ([*DIMS, "output_tokens", "tiers", 0, "up_to"], 0, f"{OUT}.tiers[0].up_to"),
        ([*DIMS, "output_tokens", "tiers", 0, "up_to"], UNBOUNDED, f"{OUT}.tiers[0].up_to"),
        (
            [*DIMS, "output_tokens", "tiers", 0, "unit_price_micros"],
            "0.0000001",
            f"{OUT}.tiers[0].unit_price_micros",
        ),
        (
            [*DIMS, "output_tokens", "tiers", 0, "unit_price_micros"],
            "18446744073709.551616",
            f"{OUT}.tiers[0].unit_price_micros",
        ),
        (["meter_event", "usage", "images"], 1, "meter_event.usage.images"),
        (["meter_event", "usage", "input_tokens"], U64, "meter_event.usage.input_tokens"),
        (["meter_event", "usage"], [], "meter_event.usage"),
        (["tariff_snapshot", "tariff_class"], "usage_linear", "tariff_snapshot.tariff_class"),
        (["tariff_snapshot", "min_charge_micros"], 10**10, "tariff_snapshot.min_charge_micros"),
    ],
)
def test_rejects_bad_input_naming_the_field(path: list[Any], value: Any, field: str) -> None:
    rejects(edited(path, value), field)


def test_rejects_cumulative_overflow_naming_the_width() -> None:
    meter, tariff = encode_metered(INFERENCE)
    with pytest.raises(InputError) as caught:
        transition(tariff, meter, WindowState(units=(0, U64 - 412, 0, 0)))
    assert caught.value.field == "meter_event.usage.output_tokens"
    transition(tariff, meter, WindowState(units=(0, U64 - 413, 0, 0)))
    with pytest.raises(InputError, match=r"2\^130"):
        transition(tariff, meter, WindowState(amount=2**130 - 554 * 10**6))
    with pytest.raises(InputError, match=r"window\.before\.seq"):
        transition(tariff, meter, WindowState(seq=U64))


def test_absent_priced_dimension_counts_zero_and_dimensions_are_sorted() -> None:
    meter, tariff = encode_metered(edited(["meter_event", "usage"], {"output_tokens": 4}))
    assert tariff.names == ("input_tokens", "output_tokens")
    assert meter.units == (0, 4, 0, 0)
    assert tariff.up_to[1] == (1_000_000, UNBOUNDED, UNBOUNDED)
    assert tariff.up_to[2] == (UNBOUNDED,) * 3 and tariff.price_scaled[2] == (0,) * 4


def test_tier_math_straddles_bounds_exactly() -> None:
    req = request(
        {
            "t": {
                "tiers": [
                    {"up_to": 10, "unit_price_micros": 0},
                    {"up_to": None, "unit_price_micros": 2},
                ]
            }
        },
        {"t": 15},
    )
    meter, tariff = encode_metered(req)
    assert event_amount(tariff, (5, 0, 0, 0), meter.units) == 10 * 2 * 10**6
    assert event_amount(tariff, (0, 0, 0, 0), meter.units) == 5 * 2 * 10**6


@pytest.mark.parametrize(("mode", "out"), [(0, [1, 1, 1]), (1, [1, 2, 2]), (2, [1, 1, 2])])
def test_round_micros_modes(mode: int, out: list[int]) -> None:
    assert [round_micros(x, mode) for x in (10**6, 10**6 + 499_999, 10**6 + 500_000)] == out


def test_min_max_clamp_each_event_but_not_the_window() -> None:
    req = request({"calls": flat("0.35")}, {"calls": 1}, rounding_mode="floor", min_charge_micros=1)
    meter, tariff = encode_metered(req)
    charge, after = transition(tariff, meter, GENESIS)
    assert (charge, after.charge, after.amount) == (1, 1, 350_000)
