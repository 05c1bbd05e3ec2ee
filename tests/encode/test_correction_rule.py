"""The credit rule of a correction (docs/protocol-corrections.md §2;
vbill.encode.metered.correction_transition).

A correction is priced by the original event's tariff, backwards from the window's current
state; since F telescopes, a window without a binding clamp ends exactly where it would have if
the corrected units had never been metered. Pure Python and fast: the circuit's agreement is
test_circuit_correction.py's job.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.metered import flat, request
from vbill.encode.metered import (
    GENESIS,
    MeteredCorrection,
    MeteredTariff,
    WindowState,
    correction_transition,
    encode_metered,
    transition,
)
from vbill.errors import InputError


def tokens(tiers: list[tuple[int | None, str]], **tariff: Any) -> MeteredTariff:
    dims = {"tokens": {"tiers": [{"up_to": u, "unit_price_micros": p} for u, p in tiers]}}
    return encode_metered(request(dims, {"tokens": 0}, **tariff))[1]


_TOKENS = request({"tokens": flat("1")}, {"tokens": 0})


def meter(units: int) -> Any:
    """A token event of `units` (the tariff is the caller's: only the meter is read here)."""
    return encode_metered(
        {**_TOKENS, "meter_event": {**_TOKENS["meter_event"], "usage": {"tokens": units}}}
    )[0]


def window(
    tariff: MeteredTariff, units: list[int], state: WindowState = GENESIS
) -> tuple[list[int], WindowState]:
    """The charges of one token event per entry of `units` and the state after them."""
    charges = []
    for u in units:
        charge, state = transition(tariff, meter(u), state)
        charges.append(charge)
    return charges, state


def void(state: WindowState, tariff: MeteredTariff, units: int) -> tuple[int, WindowState]:
    return correction_transition(tariff, (units, 0, 0, 0), state)


ALLOWANCE = [(1000, "0"), (5000, "0.5"), (None, "0.25")]


def test_void_of_event_2_then_one_more_ends_at_the_window_without_it() -> None:
    tariff = tokens(ALLOWANCE, rounding_mode="ceil")
    units = [600, 700, 4100, 333]
    _, state = window(tariff, units)
    credit, state = void(state, tariff, units[1])
    _, state = window(tariff, [2500], state)
    _, without = window(tariff, [600, 4100, 333, 2500])
    assert credit > 0
    assert (state.units, state.amount, state.charge) == (
        without.units,
        without.amount,
        without.charge,
    )
    assert state.seq == without.seq + 2  # the voided event and its correction stay in the chain


def test_voiding_an_event_inside_the_free_allowance_credits_the_units_moving_into_it() -> None:
    tariff = tokens(ALLOWANCE)
    charges, state = window(tariff, [600, 600, 3000])
    assert charges == [0, 100, 1500]  # 200 units past the allowance, then 3000 at 0.5
    credit, after = void(state, tariff, 600)
    # the first event cost nothing, but its void lets 600 paid units (at 0.5) into the allowance
    assert credit == 300
    assert after == WindowState(4, (3600, 0, 0, 0), 1300 * 10**6, 1300)


def test_partial_correction_of_a_graduated_event_credits_the_top_tiers_price() -> None:
    tariff = tokens([(1000, "1"), (None, "2")])
    charges, state = window(tariff, [1500])
    assert charges == [2000]
    credit, after = void(state, tariff, 300)
    assert credit == 600  # 300 units of the top tier at 2, not of the first at 1
    assert after == WindowState(2, (1200, 0, 0, 0), 1400 * 10**6, 1400)


def test_sub_micro_credit_rounds_on_the_window() -> None:
    tariff = tokens([(None, "0.35")], rounding_mode="floor")
    charges, state = window(tariff, [1] * 10)
    assert charges == [0, 0, 1, 0, 0, 1, 0, 0, 1, 0]
    credit, after = void(state, tariff, 1)  # 3.5 → 3.15: the window's floor stays 3
    assert (credit, after.charge, after.amount) == (0, 3, 3_150_000)
    credit, after = void(after, tariff, 2)  # 3.15 → 2.45
    assert (credit, after.charge) == (1, 2)


def test_credit_never_exceeds_the_window_charge_under_a_min_charge() -> None:
    tariff = tokens([(None, "1")], min_charge_micros=50)
    charges, state = window(tariff, [1, 1])
    assert charges == [50, 50]
    credit, after = void(state, tariff, 2)
    assert (credit, after.charge, after.amount) == (2, 98, 0)
    tariff_max = tokens([(None, "1")], max_charge_micros=10)
    _, state = window(tariff_max, [100])
    assert state.charge == 10
    credit, after = void(state, tariff_max, 100)
    assert (credit, after.charge) == (10, 0)  # min(R(100) − R(0), 10): never below zero


def test_refuses_units_beyond_the_window_and_a_negative_amount() -> None:
    tariff = tokens([(None, "1")])
    _, state = window(tariff, [5])
    with pytest.raises(InputError) as caught:
        void(state, tariff, 6)
    assert caught.value.field == "correction.usage.tokens"
    # a dearer tariff than the window was charged at (a later tariff version) cannot go below 0
    dearer = tokens([(None, "2")])
    with pytest.raises(InputError) as caught:
        void(state, dearer, 5)
    assert caught.value.field == "window.after.amount"
    with pytest.raises(InputError) as caught:
        correction_transition(tariff, (1, 0, 0), state)
    assert caught.value.field == "correction.usage"


PRICES = st.sampled_from(["0", "0.25", "0.35", "1", "1.25", "3.000001"])


@st.composite
def tariffs(draw: st.DrawFn) -> MeteredTariff:
    n = draw(st.integers(1, 4))
    bounds = sorted(draw(st.sets(st.integers(1, 20_000), min_size=n - 1, max_size=n - 1)))
    tiers = [(b, draw(PRICES)) for b in bounds] + [(None, draw(PRICES))]
    mode = draw(st.sampled_from(["floor", "ceil", "half_up"]))
    return tokens(tiers, rounding_mode=mode)


@settings(max_examples=30, deadline=None)
@given(
    tariff=tariffs(),
    units=st.lists(st.integers(0, 9000), min_size=2, max_size=6),
    data=st.data(),
)
def test_a_void_ends_the_window_where_it_would_be_without_the_event(
    tariff: MeteredTariff, units: list[int], data: st.DataObject
) -> None:
    i = data.draw(st.integers(0, len(units) - 1))
    later = data.draw(st.lists(st.integers(0, 9000), max_size=2))
    _, state = window(tariff, units)
    credit, state = void(state, tariff, units[i])
    _, state = window(tariff, later, state)
    _, without = window(tariff, units[:i] + units[i + 1 :] + later)
    assert credit >= 0
    assert (state.units, state.amount, state.charge) == (
        without.units,
        without.amount,
        without.charge,
    )


def wire(usage: Any = None, **edits: Any) -> dict[str, Any]:
    obj = {"tenant_id": "t", "corrects": "e", "correction_id": "c", "reason": "r", **edits}
    return obj if usage is None else {**obj, "usage": usage}


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        (wire({"tokens": 6}), "correction.usage.tokens"),
        (wire({"images": 1}), "correction.usage.images"),
        (wire({"tokens": -1}), "correction.usage.tokens"),
        (wire([]), "correction.usage"),
        (wire(reason=""), "correction.reason"),
        (wire(extra=1), "correction.extra"),
        ({"tenant_id": "t", "corrects": "e", "reason": "r"}, "correction.correction_id"),
    ],
)
def test_a_correction_record_names_its_bad_field(obj: dict[str, Any], field: str) -> None:
    tariff = tokens([(None, "1")])
    with pytest.raises(InputError) as caught:
        MeteredCorrection.from_wire(obj, tariff, (5, 0, 0, 0))
    assert caught.value.field == field


def test_without_usage_a_correction_voids_every_unit() -> None:
    tariff = tokens([(None, "1")])
    assert MeteredCorrection.from_wire(wire(), tariff, (5, 0, 0, 0)).units == (5, 0, 0, 0)
    assert MeteredCorrection.from_wire(wire({}), tariff, (5, 0, 0, 0)).units == (0, 0, 0, 0)
    assert MeteredCorrection.from_wire(wire({"tokens": 5}), tariff, (5, 0, 0, 0)).units[0] == 5
