"""The reference charge (protocol.md §4): exact vectors, and agreement with the compiled circuit."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.circuit_tools import circuit_outputs, needs_circuit, random_fields
from vbill.encode.charge import CEIL, FLOOR, HALF_UP, compute_charge
from vbill.errors import InputError
from vbill.zk.witness import circuit_input, public_signals

U64_MAX = 2**64 - 1
MICRO = 1_000_000

# --- rejections ---


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ((1, 1, 6, 5, FLOOR), "tariff_snapshot.min_charge_micros"),
        ((1, 1, 0, 5, 3), "tariff_snapshot.rounding_mode"),
        ((1, 1, 0, 5, -1), "tariff_snapshot.rounding_mode"),
        ((1, 1, 0, 5, True), "tariff_snapshot.rounding_mode"),
        ((2**64, 1, 0, 5, FLOOR), "meter_event.usage_units"),
        ((-1, 1, 0, 5, FLOOR), "meter_event.usage_units"),
        ((1, 2**64, 0, 5, FLOOR), "tariff_snapshot.unit_price_micros"),
        ((1, 1, -1, 5, FLOOR), "tariff_snapshot.min_charge_micros"),
        ((1, 1, 0, 2**64, FLOOR), "tariff_snapshot.max_charge_micros"),
        ((1.0, 1, 0, 5, FLOOR), "meter_event.usage_units"),
    ],
)
def test_rejects_out_of_range_inputs(args: tuple[Any, ...], field: str) -> None:
    with pytest.raises(InputError) as info:
        compute_charge(*args)
    assert info.value.field == field


# --- vectors ---


def test_pilot_charge() -> None:
    assert compute_charge(1842, 120 * MICRO, 50_000, 5_000_000_000, FLOOR) == 221_040


@pytest.mark.parametrize(
    ("units", "price_scaled", "mode", "charge"),
    [
        # 7 units × 0.15 micros = 1.05 micros
        (7, 150_000, FLOOR, 1),
        (7, 150_000, CEIL, 2),
        (7, 150_000, HALF_UP, 1),
        # exactly .5: only half_up and ceil go up
        (1, 500_000, FLOOR, 0),
        (1, 500_000, CEIL, 1),
        (1, 500_000, HALF_UP, 1),
        # just below .5
        (1, 499_999, HALF_UP, 0),
        (1, 499_999, CEIL, 1),
        # just above .5
        (1, 500_001, HALF_UP, 1),
        (1, 500_001, FLOOR, 0),
        # exact products never round
        (10, 100_000, CEIL, 1),
        (10, 100_000, HALF_UP, 1),
        (3, 1_999_999, FLOOR, 5),  # 5.999997
        (3, 1_999_999, HALF_UP, 6),
    ],
)
def test_rounding_modes(units: int, price_scaled: int, mode: int, charge: int) -> None:
    assert compute_charge(units, price_scaled, 0, U64_MAX, mode) == charge


def test_clamps_to_min_and_max() -> None:
    assert compute_charge(10, 120 * MICRO, 50_000, 5_000_000_000, FLOOR) == 50_000
    assert compute_charge(0, 120 * MICRO, 50_000, 5_000_000_000, CEIL) == 50_000
    assert compute_charge(10**9, 120 * MICRO, 50_000, 5_000_000_000, FLOOR) == 5_000_000_000
    assert compute_charge(5, MICRO, 5, 5, HALF_UP) == 5


def test_64_bit_bounds_are_exact() -> None:
    # raw = (2^64 − 1)^2 needs 128 bits; q = raw div 10^6 is far above any max.
    assert compute_charge(U64_MAX, U64_MAX, 0, U64_MAX, FLOOR) == U64_MAX
    raw = U64_MAX * U64_MAX
    assert compute_charge(U64_MAX, U64_MAX, 0, U64_MAX, CEIL) == min(-(-raw // MICRO), U64_MAX)
    assert compute_charge(U64_MAX, 1, 0, U64_MAX, FLOOR) == U64_MAX // MICRO
    assert compute_charge(U64_MAX, 1, 0, U64_MAX, HALF_UP) == (U64_MAX + MICRO // 2) // MICRO
    assert compute_charge(U64_MAX, 0, U64_MAX, U64_MAX, FLOOR) == U64_MAX


# --- against the compiled circuit ---

BOUNDARY = [0, 1, 499_999, 500_000, 500_001, 999_999, MICRO, U64_MAX, 2**64]
u64ish = st.one_of(
    st.sampled_from(BOUNDARY),
    st.integers(0, 10**7),
    st.integers(0, U64_MAX),
)
modes = st.sampled_from([0, 1, 2, 2, 3])
anywhere = st.tuples(u64ish, u64ish, u64ish, u64ish, modes, st.integers())
# Products landing on the rounding boundaries (remainder 0, 1, ½ ± 1, 10^6 − 1), unclamped.
on_boundary = st.builds(
    lambda q, rem, swap, mode, seed: (
        (q * MICRO + rem, 1, 0, U64_MAX, mode, seed)
        if swap
        else (1, q * MICRO + rem, 0, U64_MAX, mode, seed)
    ),
    st.integers(0, 10**12),
    st.sampled_from([0, 1, 499_999, 500_000, 500_001, 999_999]),
    st.booleans(),
    modes,
    st.integers(),
)
case = st.one_of(anywhere, on_boundary)


@needs_circuit
@pytest.mark.slow
@settings(
    max_examples=4,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(case, min_size=25, max_size=25))
def test_circuit_charge_equals_reference(cases: list[tuple[int, ...]]) -> None:
    """Python rejects exactly what the circuit rejects, and otherwise agrees on every signal.

    Each example is a batch of 25 inputs so one node process computes all their witnesses.
    """
    inputs, expected = [], []
    for units, price, lo, hi, mode, seed in cases:
        meter, tariff, salt, account_salt = random_fields(random.Random(seed))
        meter = replace(meter, usage_units=units)
        tariff = replace(
            tariff,
            price_scaled=price,
            min_charge_micros=lo,
            max_charge_micros=hi,
            rounding_mode=mode,
        )
        inputs.append(circuit_input(meter, tariff, salt, account_salt))
        try:
            expected.append(public_signals(meter, tariff, salt, account_salt))
        except InputError:
            expected.append(None)
    assert circuit_outputs(inputs) == expected


@needs_circuit
@pytest.mark.slow
def test_circuit_rounds_like_reference_on_every_boundary() -> None:
    """Every remainder boundary × every rounding mode (and an invalid one), unclamped."""
    meter, tariff, salt, account_salt = random_fields(random.Random(5))
    cases = []
    for rem in (0, 1, 499_999, 500_000, 500_001, 999_999):
        for mode in (FLOOR, CEIL, HALF_UP, 3):
            for units, price in ((1, 7 * MICRO + rem), (123 * MICRO + rem, 1)):
                cases.append(
                    (
                        replace(meter, usage_units=units),
                        replace(
                            tariff,
                            price_scaled=price,
                            min_charge_micros=0,
                            max_charge_micros=U64_MAX,
                            rounding_mode=mode,
                        ),
                        salt,
                        account_salt,
                    )
                )
    expected = []
    for c in cases:
        try:
            expected.append(public_signals(*c))
        except InputError:
            expected.append(None)
    assert circuit_outputs([circuit_input(*c) for c in cases]) == expected
