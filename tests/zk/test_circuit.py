"""BillingBinding against the compiled circuit: every bound from both sides, and forgeries.

Witnesses come from the real wasm (`snarkjs wtns calculate`); forged witnesses are checked
with `snarkjs wtns check` and with a Python r1cs evaluation that names the constraint that
caught them. Inputs are built directly as decimal strings (the encoding is tested in
test_encoding.py), so this file depends on nothing but build/.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.circuit_tools import Circuit, R, WitnessError, constraint_failures
from vbill import paths
from vbill.zk.setup import r1cs_info

pytestmark = pytest.mark.slow

U64_MAX = 2**64 - 1
FLOOR, CEIL, HALF_UP = 0, 1, 2
PUBS = json.loads((paths.CIRCUITS / "circuits.json").read_text())["billing_binding"]["pubs"]

# Pinned: a change in circuit size must be a visible decision (update here and in the report).
CONSTRAINTS = 2721
WIRES = 2727


def s(text: str) -> int:
    """The string rule (docs/protocol.md §2.5), so the inputs look like real ones."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest(), "big") % R


PILOT: dict[str, int] = {
    "event_id": s("evt_pilot_001"),
    "event_timestamp": 1_780_056_000_000,  # 2026-05-29T12:00:00.000Z
    "tenant_id": s("tenant_acme"),
    "api_key_id": s("api_live_001"),
    "endpoint": s("/v1/completions"),
    "usage_units": 1842,
    "contract_version": s("contract-v1"),
    "billing_window_id": s("2026-05"),
    "tariff_id": s("tariff_default"),
    "tariff_version": s("1.0.0"),
    "tariff_class": 1,
    "price_scaled": 120_000_000,  # 120 micros per unit
    "min_charge_micros": 50_000,
    "max_charge_micros": 5_000_000_000,
    "rounding_mode": FLOOR,
    "currency": s("USD"),
    "salt": 1234567890123456789,
    "account_salt": 987654321987654321,
}


def inputs(**changes: int) -> dict[str, int]:
    return {**PILOT, **changes}


def expected_charge(i: dict[str, int]) -> int:
    """The charge (protocol.md §4) in plain integers, the oracle for the circuit's `charge`."""
    q, rem = divmod(i["usage_units"] * i["price_scaled"], 10**6)
    mode = i["rounding_mode"]
    rounded = q + (mode == CEIL and rem > 0) + (mode == HALF_UP and rem >= 500_000)
    return min(max(rounded, i["min_charge_micros"]), i["max_charge_micros"])


@pytest.fixture(scope="module")
def circuit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Circuit]:
    if not (paths.WASM.exists() and paths.R1CS.exists()):
        pytest.skip("build/ has no compiled circuit: run `make setup`")
    yield Circuit(Path(tmp_path_factory.mktemp("wtns")))


def charge_of(circuit: Circuit, i: dict[str, Any]) -> int:
    return circuit.get(circuit.witness(i), "main.charge")


# --- shape ---


def test_constraint_and_wire_counts_are_pinned() -> None:
    info = r1cs_info(paths.R1CS)
    assert (info.constraints, info.wires) == (CONSTRAINTS, WIRES)
    assert info.outputs == 5 and info.public_inputs == 0
    assert info.constraints + info.outputs + 1 <= 2**12, "no longer fits the 2^12 ptau"


def test_public_signals_are_the_first_outputs_in_spec_order(circuit: Circuit) -> None:
    assert [circuit.signals[f"main.{name}"] for name in PUBS] == [1, 2, 3, 4, 5]
    assert PUBS == ["commitment", "charge", "tariff_key", "nullifier", "tenant_key"]


# --- pilot ---


def test_pilot_request_charges_221040_micros(circuit: Circuit) -> None:
    w = circuit.witness(PILOT)
    assert circuit.get(w, "main.charge") == 221_040 == expected_charge(PILOT)
    assert circuit.failing_constraints(w) == []
    assert circuit.snarkjs_check(w)


# --- rounding ---


@pytest.mark.parametrize(
    ("units", "price", "mode", "charge"),
    [
        (3, 1_500_000, FLOOR, 4),  # 4.5 micros
        (3, 1_500_000, CEIL, 5),
        (3, 1_500_000, HALF_UP, 5),  # exactly half rounds up
        (1, 1_499_999, FLOOR, 1),  # 1.499999
        (1, 1_499_999, CEIL, 2),
        (1, 1_499_999, HALF_UP, 1),
        (7, 150_000, CEIL, 2),  # 1.05 -> 2
        (2, 3_000_000, CEIL, 6),  # exact: ceil does not bump
        (2, 3_000_000, HALF_UP, 6),
    ],
)
def test_rounding_modes_on_fractional_prices(
    circuit: Circuit, units: int, price: int, mode: int, charge: int
) -> None:
    i = inputs(usage_units=units, price_scaled=price, rounding_mode=mode, min_charge_micros=0)
    assert charge_of(circuit, i) == charge == expected_charge(i)


def test_rejects_rounding_mode_3(circuit: Circuit) -> None:
    with pytest.raises(WitnessError, match="Assert Failed"):
        circuit.witness(inputs(rounding_mode=3))


def test_rejects_a_forged_rounding_mode(circuit: Circuit) -> None:
    w = circuit.witness(inputs(rounding_mode=HALF_UP))
    circuit.set(w, "main.rounding_mode", 3)
    assert not circuit.snarkjs_check(w)


# --- tariff class ---


def test_rejects_tariff_class_2(circuit: Circuit) -> None:
    with pytest.raises(WitnessError, match="Assert Failed"):
        circuit.witness(inputs(tariff_class=2))


def test_tariff_class_is_compiled_to_the_constant_1(circuit: Circuit) -> None:
    # `tariff_class === 1` lets --O2 substitute the constant into the tariff hash and drop the
    # input's wire: no witness can carry another class, so there is nothing left to forge.
    assert "main.tariff_class" not in circuit.signals
    assert "main.rounding_mode" in circuit.signals  # a genuinely variable input keeps its wire


# --- clamp ---


def test_clamps_a_small_charge_up_to_min(circuit: Circuit) -> None:
    i = inputs(usage_units=10)  # 1200 micros < 50000
    assert charge_of(circuit, i) == 50_000 == expected_charge(i)


def test_clamps_a_large_charge_down_to_max(circuit: Circuit) -> None:
    i = inputs(usage_units=10**9, max_charge_micros=7_000_000)  # 1.2e11 micros > max
    assert charge_of(circuit, i) == 7_000_000 == expected_charge(i)


def test_zero_units_charge_the_minimum(circuit: Circuit) -> None:
    assert charge_of(circuit, inputs(usage_units=0)) == 50_000
    assert charge_of(circuit, inputs(usage_units=0, min_charge_micros=0)) == 0


def test_rejects_min_above_max(circuit: Circuit) -> None:
    with pytest.raises(WitnessError, match="Assert Failed"):
        circuit.witness(inputs(min_charge_micros=1001, max_charge_micros=1000))


def test_accepts_min_equal_to_max(circuit: Circuit) -> None:
    assert charge_of(circuit, inputs(min_charge_micros=1000, max_charge_micros=1000)) == 1000


def test_rejects_a_forged_charge_above_max(circuit: Circuit) -> None:
    i = inputs(usage_units=10**9, max_charge_micros=7_000_000)
    w = circuit.witness(i)
    circuit.set(w, "main.charge", 7_000_001)
    assert not circuit.snarkjs_check(w)
    # caught by the clamp itself, not only by the commitment that hashes the charge
    assert any(any(n.startswith("main.clamp.") for n in f) for f in constraint_failures(circuit, w))


def test_rejects_a_forged_charge_plus_one(circuit: Circuit) -> None:
    w = circuit.witness(PILOT)
    circuit.set(w, "main.charge", 221_041)
    assert not circuit.snarkjs_check(w)


# --- 64-bit range checks: 2^64 - 1 passes, 2^64 fails (calculator and forged witness) ---

RANGE_CHECKED = {
    # input: (component name of its RangeCheck, extra inputs that keep the rest valid)
    "usage_units": ("usageRange", {}),
    "price_scaled": ("priceRange", {}),
    "min_charge_micros": ("minRange", {"max_charge_micros": U64_MAX}),
    "max_charge_micros": ("maxRange", {}),
    "event_timestamp": ("tsRange", {}),
}


@pytest.mark.parametrize("name", RANGE_CHECKED)
def test_rejects_2_pow_64(circuit: Circuit, name: str) -> None:
    _, extra = RANGE_CHECKED[name]
    with pytest.raises(WitnessError, match="Assert Failed"):
        circuit.witness(inputs(**extra, **{name: 2**64}))


def forge_above_64_bits(circuit: Circuit, name: str, value: int) -> list[int]:
    """A valid witness at 2^64 - 1, then `name` set to `value` with the range check's hint
    bits rewritten for it, bit 64 included where the circuit has one: against a 65-bit check
    this forgery is self-consistent, so only a check of exactly 64 bits rejects it."""
    component, extra = RANGE_CHECKED[name]
    w = circuit.witness(inputs(**extra, **{name: U64_MAX}))
    circuit.set(w, f"main.{name}", value)
    circuit.set(w, f"main.{component}.bits.in", value)
    circuit.set_bits(w, f"main.{component}.bits", 65, value)
    return w


def range_bits_caught(circuit: Circuit, name: str, w: list[int]) -> bool:
    """Some violated constraint is over the range check's own bits (not only its input wire,
    which the optimiser shares with every gadget that reads the input)."""
    prefix = f"main.{RANGE_CHECKED[name][0]}.bits.out["
    return any(any(n.startswith(prefix) for n in f) for f in constraint_failures(circuit, w))


@pytest.mark.parametrize("value", [2**64, 2**65 - 1], ids=["2^64", "2^65-1"])
@pytest.mark.parametrize("name", RANGE_CHECKED)
def test_rejects_a_forged_value_of_65_bits(circuit: Circuit, name: str, value: int) -> None:
    w = forge_above_64_bits(circuit, name, value)
    assert not circuit.snarkjs_check(w)
    assert range_bits_caught(circuit, name, w), f"{name}: the range check let {value} through"


@pytest.mark.parametrize("name", RANGE_CHECKED)
def test_accepts_2_pow_64_minus_1(circuit: Circuit, name: str) -> None:
    _, extra = RANGE_CHECKED[name]
    i = inputs(**extra, **{name: U64_MAX})
    assert charge_of(circuit, i) == expected_charge(i)


def test_largest_product_fits_the_quotient_range(circuit: Circuit) -> None:
    # raw = (2^64-1)^2 needs q < 2^109: the widest quotient the circuit must accept
    i = inputs(usage_units=U64_MAX, price_scaled=U64_MAX, max_charge_micros=U64_MAX)
    assert (U64_MAX * U64_MAX) // 10**6 >= 2**108
    assert charge_of(circuit, i) == U64_MAX == expected_charge(i)


# --- the divmod hint ---


def test_rejects_a_forged_quotient(circuit: Circuit) -> None:
    w = circuit.witness(PILOT)
    circuit.set(w, "main.linear.q", circuit.get(w, "main.linear.q") + 1)
    assert not circuit.snarkjs_check(w)


def test_rejects_a_self_consistent_forged_divmod(circuit: Circuit) -> None:
    """q - 1, rem + 10^6 satisfies q·10^6 + rem = raw; only `rem < 10^6` stands in the way.

    Usage is small enough that the minimum clamps the charge, so the commitment and keys are
    unchanged and every gadget downstream of the hint can be rewritten consistently: the one
    constraint left violated must be the remainder's bound.
    """
    i = inputs(usage_units=100, price_scaled=120_000_000, min_charge_micros=50_000)
    w = circuit.witness(i)
    q = circuit.get(w, "main.linear.q")
    raw = i["usage_units"] * i["price_scaled"]
    assert (q, raw - q * 10**6) == (12_000, 0)
    q2, rem2 = q - 1, raw - (q - 1) * 10**6  # rem2 = 10^6 < 2^20
    circuit.set(w, "main.linear.q", q2)
    circuit.set_bits(w, "main.linear.qRange.bits", 109, q2)
    circuit.set_bits(w, "main.linear.remBits.bits", 20, rem2)
    circuit.set_less_than(w, "main.linear.remBelow", 20, rem2, 10**6)
    circuit.set(w, "main.linear.remZero.inv", pow(rem2, -1, R))
    circuit.set(w, "main.linear.remZero.out", 0)
    circuit.set_less_than(w, "main.linear.remHalf.lt", 20, 500_000, rem2 + 1)
    circuit.set(w, "main.linear.remHalf.out", 1)
    circuit.set(w, "main.clamp.in", q2)  # `rounded` (floor mode), kept under the clamp's name
    circuit.set_less_than(w, "main.clamp.below", 110, q2, i["min_charge_micros"])

    assert not circuit.snarkjs_check(w)
    failures = constraint_failures(circuit, w)
    assert failures, "forgery accepted"
    assert all(any(n.startswith("main.linear.remBelow.") for n in f) for f in failures), failures
