"""CorrectionBinding (binding v2c) against the compiled circuit: Python == circuit, refusals,
forged witnesses per constraint group, and the pinned size.

Inputs are built by the reference (vbill.encode.metered, vbill.zk.witness_correction), so each
witness here is also a check that the reference and the circuit agree on every public signal.
Forgeries edit one group's signal in a valid witness; the r1cs, evaluated in Python, must then
fail a constraint that mentions that group (snarkjs agrees: checked once).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.circuit_tools import Circuit, constraint_failures, refuses
from support.metered import flat, request
from vbill.bindings import BINDING_V2C, artefacts
from vbill.encode.metered import (
    GENESIS,
    MeteredCorrection,
    MeteredMeter,
    MeteredTariff,
    WindowState,
    encode_metered,
    transition,
)
from vbill.errors import InputError
from vbill.zk.setup import r1cs_info
from vbill.zk.witness_correction import (
    Original,
    circuit_input,
    public_signal_names,
    public_signals,
)

pytestmark = pytest.mark.slow

V2C = artefacts(BINDING_V2C)
# Pinned: a change in circuit size must be a visible decision (docs/protocol-corrections.md).
CONSTRAINTS = 9144
WIRES = 9109
U64 = 2**64
SALT, ACCOUNT_SALT, CORRECTION_SALT = 1234567890123456789, 987654321987654321, 55555
TIERS = {
    "input_tokens": flat("0.25"),
    "output_tokens": {
        "tiers": [
            {"up_to": 1000, "unit_price_micros": "0"},
            {"up_to": 5000, "unit_price_micros": "1.25"},
            {"up_to": None, "unit_price_micros": "1"},
        ]
    },
}
USAGE = [(156, 412), (300, 700), (40, 4100), (12, 333)]


def event(i: int, usage: tuple[int, int], **tariff: Any) -> tuple[MeteredMeter, MeteredTariff]:
    req = request(TIERS, {"input_tokens": usage[0], "output_tokens": usage[1]}, **tariff)
    req["meter_event"]["event_id"] = f"inf_{i}"
    return encode_metered(req)


def window(**tariff: Any) -> tuple[list[Original], WindowState]:
    """Four events of USAGE, charged in order: their openings and the state after them."""
    state, originals = GENESIS, []
    for i, usage in enumerate(USAGE):
        meter, t = event(i, usage, **tariff)
        charge, state = transition(t, meter, state)
        originals.append(Original(meter, t, charge, SALT + i))
    return originals, state


def correction(original: Original, usage: dict[str, int] | None = None) -> MeteredCorrection:
    obj = {
        "tenant_id": "tenant_acme",
        "corrects": "inf_x",
        "correction_id": "cor_1",
        "reason": "test inference billed by mistake",
    }
    if usage is not None:
        obj["usage"] = usage
    return MeteredCorrection.from_wire(obj, original.tariff, original.meter.units)


@pytest.fixture(scope="module")
def circuit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Circuit]:
    if not (V2C.wasm.exists() and V2C.r1cs.exists()):
        pytest.skip("build/ has no compiled correction circuit: run `make setup`")
    yield Circuit(
        Path(tmp_path_factory.mktemp("wtns-v2c")), wasm=V2C.wasm, r1cs=V2C.r1cs, sym=V2C.sym
    )


def run(
    circuit: Circuit, cor: MeteredCorrection, original: Original, before: WindowState
) -> tuple[list[int], WindowState]:
    """The circuit's witness; asserts its public signals equal the reference's."""
    expected, after = public_signals(cor, original, before, CORRECTION_SALT, ACCOUNT_SALT)
    w = circuit.witness(circuit_input(cor, original, before, CORRECTION_SALT, ACCOUNT_SALT))
    assert [circuit.get(w, f"main.{n}") for n in public_signal_names()] == expected.as_list()
    return w, after


def test_constraint_count_is_pinned() -> None:
    if not V2C.r1cs.exists():
        pytest.skip("build/ has no compiled correction circuit")
    info = r1cs_info(V2C.r1cs)
    assert (info.constraints, info.wires, info.outputs) == (CONSTRAINTS, WIRES, 9)
    assert 2**13 < info.constraints + info.outputs < 2**14  # needs, and fits, a 2^14 ptau


# --- the facts, proven ---


def test_void_of_event_2_proves_the_window_without_it(circuit: Circuit) -> None:
    originals, state = window()
    w, after = run(circuit, correction(originals[1]), originals[1], state)
    assert circuit.get(w, "main.credit") == state.charge - after.charge > 0
    # then one more event: the window ends where it would without event 2
    meter, tariff = event(9, (5, 5))
    _, after = transition(tariff, meter, after)
    without = GENESIS
    for i, usage in [*enumerate(USAGE), (9, (5, 5))]:
        if i != 1:
            m, t = event(i, usage)
            _, without = transition(t, m, without)
    assert (after.units, after.amount, after.charge) == (
        without.units,
        without.amount,
        without.charge,
    )


def test_partial_correction_credits_the_top_tiers_price(circuit: Circuit) -> None:
    originals, state = window()
    # 100 output tokens of event 3 (40 in, 4100 out); the window stands at 5545 output tokens,
    # past the 5000 bound: the credit is 100 × 1 (the top tier), not 1.25
    w, after = run(circuit, correction(originals[2], {"output_tokens": 100}), originals[2], state)
    assert circuit.get(w, "main.credit") == 100
    assert after.units[:2] == (state.units[0], state.units[1] - 100)


def test_refuses_units_above_the_original_and_the_window(circuit: Circuit) -> None:
    originals, state = window()
    cor = correction(originals[0])
    over = MeteredCorrection(
        cor.tenant_id, cor.corrects, cor.correction_id, cor.reason, (157, 0, 0, 0)
    )
    inp = circuit_input(over, originals[0], state, CORRECTION_SALT, ACCOUNT_SALT)
    assert refuses(circuit, inp)  # 157 > the original's 156, though the window has 508
    # the original's units stated larger than its commitment: the opening changes `corrects`
    inp = circuit_input(cor, originals[0], state, CORRECTION_SALT, ACCOUNT_SALT)
    inp["units_original"][0] = "157"
    w = circuit.witness(inp)
    expected, _ = public_signals(cor, originals[0], state, CORRECTION_SALT, ACCOUNT_SALT)
    assert circuit.get(w, "main.corrects") != expected.corrects
    # a window with fewer units than the correction takes back (b = a - units < 0)
    low = WindowState(state.seq, (155, *state.units[1:]), state.amount, state.charge)
    assert refuses(circuit, circuit_input(cor, originals[0], low, CORRECTION_SALT, ACCOUNT_SALT))
    # an amount below what the units cost (amount_after < 0)
    poor = WindowState(state.seq, state.units, 10, state.charge)
    with pytest.raises(InputError):
        public_signals(cor, originals[0], poor, CORRECTION_SALT, ACCOUNT_SALT)
    assert refuses(circuit, circuit_input(cor, originals[0], poor, CORRECTION_SALT, ACCOUNT_SALT))


def test_refuses_bad_class_mode_and_out_of_range_inputs(circuit: Circuit) -> None:
    originals, state = window()
    base = circuit_input(
        correction(originals[0]), originals[0], state, CORRECTION_SALT, ACCOUNT_SALT
    )
    for name, value in (
        ("tariff_class", "1"),
        ("rounding_mode", "3"),
        ("event_timestamp", str(U64)),
        ("charge_original", str(U64)),
        ("amount_before", str(2**130)),
        ("charge_before", str(U64)),
        ("seq_before", str(U64 - 1)),
    ):
        assert refuses(circuit, {**base, name: value}), name
    bad_bounds = copy.deepcopy(base)
    bad_bounds["up_to"][1] = ["5000", "1000", str(U64 - 1)]
    assert refuses(circuit, bad_bounds)


_units = st.integers(0, 2**40)


@settings(
    max_examples=2, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    a=st.tuples(_units, _units),
    frac=st.tuples(st.floats(0, 1), st.floats(0, 1)),
    charge=st.integers(0, 2**40),
    mode=st.sampled_from(["floor", "ceil", "half_up"]),
)
def test_python_equals_circuit_on_random_states(
    circuit: Circuit, a: tuple[int, int], frac: tuple[float, float], charge: int, mode: str
) -> None:
    meter, tariff = event(0, (int(a[0] * frac[0]), int(a[1] * frac[1])), rounding_mode=mode)
    original = Original(meter, tariff, 7, SALT)
    full = WindowState(5, (*a, 0, 0), 2**100, charge)
    run(circuit, correction(original), original, full)


# --- forged witnesses: one group's signal edited in a valid witness ---


@pytest.fixture(scope="module")
def valid(circuit: Circuit) -> list[int]:
    originals, state = window(rounding_mode="ceil")
    return run(circuit, correction(originals[2], {"output_tokens": 4000}), originals[2], state)[0]


def forged(circuit: Circuit, valid: list[int], edits: dict[str, int]) -> list[set[str]]:
    w = copy.copy(valid)
    for name, value in edits.items():
        assert name in circuit.signals, name
        circuit.set(w, name, value)
    return constraint_failures(circuit, w)


def bump(circuit: Circuit, valid: list[int], name: str, by: int = 1) -> dict[str, int]:
    return {name: circuit.get(valid, name) + by}


def test_forged_public_signals_fail_their_group(circuit: Circuit, valid: list[int]) -> None:
    for signal, group in (
        ("main.credit", "main.windowCredit"),
        ("main.corrects", "main.original."),
        ("main.corrects_nullifier", "main.originalNf."),
        ("main.commitment", "main.com."),
        ("main.nullifier", "main.nf."),
        ("main.tenant_key", "main.tn."),
        ("main.tariff_key", "main.tk."),
        ("main.prev_state_key", "main.state[0]."),
        ("main.state_key", "main.state[1]."),
    ):
        fails = forged(circuit, valid, bump(circuit, valid, signal))
        assert any(signal in f for f in fails), signal
        assert any(any(s.startswith(group) for s in f) for f in fails) or signal == "main.credit"
    w = copy.copy(valid)
    circuit.set(w, "main.credit", circuit.get(valid, "main.credit") + 1)
    assert not circuit.snarkjs_check(w)


def test_forged_transition_groups_fail(circuit: Circuit, valid: list[int]) -> None:
    # the window backwards: b = a - units, the amount, the charge after
    for name in ("main.units_after[1]", "main.amount_after", "main.charge_after", "main.seq_after"):
        if name in circuit.signals:
            assert forged(circuit, valid, bump(circuit, valid, name)), name
    # the bound units <= units_original: its comparison's output
    bit = "main.bounded[1].le.lt.n2b.out[3]"  # (--O2 folds the top bits into the sum)
    fails = forged(circuit, valid, {bit: 1 - circuit.get(valid, bit)})
    assert any(any(s.startswith("main.bounded[1]") for s in f) for f in fails)
    # tier selection of the point the correction moves back to
    at = "main.dims[1].at[0]"
    assert circuit.get(valid, f"{at}.sel[1]") == 1  # 1545 output tokens: the 1.25 tier
    fails = forged(circuit, valid, {f"{at}.sel[1]": 0, f"{at}.sel[2]": 1})
    assert any(any(s.startswith(at) for s in f) for f in fails)
    # rounding of the amount before (ceil): q moved
    r = "main.windowCredit.r[1]"
    fails = forged(circuit, valid, bump(circuit, valid, f"{r}.q", -1))
    assert any(any(s.startswith(r) for s in f) for f in fails)
    # a range check's bit
    fails = forged(circuit, valid, {"main.unitRange[1][2].bits.out[3]": 2})
    assert any(any(s.startswith("main.unitRange[1][2]") for s in f) for f in fails)
