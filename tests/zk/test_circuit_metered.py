"""MeteredBinding (binding v2) against the compiled circuit: Python == circuit, bounds, forgeries.

Witnesses come from the real wasm (`snarkjs wtns calculate`); forged witnesses are checked with
`snarkjs wtns check`, and a Python r1cs evaluation names the constraint that caught them.
Inputs are built by the reference (vbill.encode.metered, vbill.zk.witness_metered), so every
test here is also a test that the reference and the circuit agree.
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
from support.metered import INFERENCE, flat, request
from vbill.bindings import BINDING_V2, artefacts
from vbill.encode.metered import (
    GENESIS,
    UNBOUNDED,
    MeteredMeter,
    MeteredTariff,
    WindowState,
    encode_metered,
    transition,
)
from vbill.errors import InputError
from vbill.zk.setup import r1cs_info
from vbill.zk.witness_metered import circuit_input, public_signal_names, public_signals

pytestmark = pytest.mark.slow

V2 = artefacts(BINDING_V2)
# Pinned: a change in circuit size must be a visible decision (docs/protocol-v2.md says it too).
CONSTRAINTS = 7960
WIRES = 7925
U64 = 2**64
SALT, ACCOUNT_SALT = 1234567890123456789, 987654321987654321


@pytest.fixture(scope="module")
def circuit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Circuit]:
    if not (V2.wasm.exists() and V2.r1cs.exists()):
        pytest.skip("build/ has no compiled v2 circuit: run `make setup`")
    yield Circuit(Path(tmp_path_factory.mktemp("wtns-v2")), wasm=V2.wasm, r1cs=V2.r1cs, sym=V2.sym)


def run(
    circuit: Circuit, meter: MeteredMeter, tariff: MeteredTariff, before: WindowState = GENESIS
) -> tuple[list[int], WindowState]:
    """The circuit's witness for one event; asserts its public signals equal Python's."""
    expected, after = public_signals(meter, tariff, before, SALT, ACCOUNT_SALT)
    w = circuit.witness(circuit_input(meter, tariff, before, SALT, ACCOUNT_SALT))
    got = [circuit.get(w, f"main.{name}") for name in public_signal_names()]
    assert got == expected.as_list()
    return w, after


def raw_input(req: dict[str, Any], before: WindowState = GENESIS, **edits: Any) -> dict[str, Any]:
    meter, tariff = encode_metered(req)
    inp = circuit_input(meter, tariff, before, SALT, ACCOUNT_SALT)
    for name, value in edits.items():
        inp[name] = value
    return inp


def test_constraint_count_is_pinned() -> None:
    if not V2.r1cs.exists():
        pytest.skip("build/ has no compiled v2 circuit")
    info = r1cs_info(V2.r1cs)
    assert (info.constraints, info.wires, info.outputs) == (CONSTRAINTS, WIRES, 7)
    assert info.constraints + info.outputs < 2**13  # fits the 2^13 ptau


# --- the worked examples ---


def test_inference_156_input_412_output_tokens_costs_554(circuit: Circuit) -> None:
    meter, tariff = encode_metered(INFERENCE)
    w, after = run(circuit, meter, tariff)
    assert circuit.get(w, "main.charge") == 554
    assert after == WindowState(1, (156, 412, 0, 0), 554 * 10**6, 554)


def test_ten_sub_micro_events_round_on_the_window(circuit: Circuit) -> None:
    req = request({"calls": flat("0.35")}, {"calls": 1}, rounding_mode="floor")
    meter, tariff = encode_metered(req)
    state, charges = GENESIS, []
    for _ in range(10):
        w, state = run(circuit, meter, tariff, state)
        charges.append(circuit.get(w, "main.charge"))
    assert charges == [0, 0, 1, 0, 0, 1, 0, 0, 1, 0]
    assert sum(charges) == state.charge == 3


def test_window_crossing_a_free_allowance_and_two_tiers(circuit: Circuit) -> None:
    tiers = {
        "tiers": [
            {"up_to": 1000, "unit_price_micros": 0},
            {"up_to": 5000, "unit_price_micros": "0.5"},
            {"up_to": None, "unit_price_micros": "0.25"},
        ]
    }
    state, charges, keys = GENESIS, [], []
    for units in (600, 600, 4000, 2000):
        meter, tariff = encode_metered(request({"tokens": tiers}, {"tokens": units}))
        w, after = run(circuit, meter, tariff, state)
        keys.append((circuit.get(w, "main.prev_state_key"), circuit.get(w, "main.state_key")))
        charges.append(circuit.get(w, "main.charge"))
        state = after
    # [0,600) free; [600,1200) 400 free + 200 × 0.5;
    # [1200,5200) 3800 × 0.5 + 200 × 0.25; [5200,7200) 2000 × 0.25
    assert charges == [0, 100, 1950, 500]
    assert state.charge == 2550 and state.units[0] == 7200
    assert all(keys[i][1] == keys[i + 1][0] for i in range(3))  # the chain links


# --- Python == circuit on random tariffs, states and usage ---

_u64 = st.one_of(st.integers(0, 2**20), st.integers(0, U64 - 1), st.sampled_from([0, U64 - 1]))


@st.composite
def vectors(draw: st.DrawFn) -> tuple[dict[str, Any], WindowState]:
    n = draw(st.integers(1, 4))
    names = draw(
        st.lists(
            st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True),
            min_size=n,
            max_size=n,
            unique=True,
        )
    )
    dims, usage = {}, {}
    before_units = []
    for name in names:
        k = draw(st.integers(1, 4))
        bounds = sorted(draw(st.sets(st.integers(1, 2**40), min_size=k - 1, max_size=k - 1)))
        prices = [
            draw(st.sampled_from(["0", "0.35", "1.25", "120", "18446744073709.551615"]))
            for _ in range(k)
        ]
        dims[name] = {
            "tiers": [
                {"up_to": b, "unit_price_micros": p}
                for b, p in zip([*bounds, None], prices, strict=True)
            ]
        }
        a = draw(st.integers(0, 2**41))
        before_units.append(a)
        usage[name] = draw(st.integers(0, 2**41))
    mode = draw(st.sampled_from(["floor", "ceil", "half_up"]))
    lo = draw(st.integers(0, 1000))
    hi = draw(st.sampled_from([lo, lo + 10**6, U64 - 1]))
    req = request(dims, usage, rounding_mode=mode, min_charge_micros=lo, max_charge_micros=hi)
    _, tariff = encode_metered(req)
    order = {name: before_units[i] for i, name in enumerate(names)}
    units = tuple([order[nm] for nm in tariff.names] + [0] * (4 - len(names)))
    amount = draw(st.integers(0, 2**100))
    before = WindowState(draw(st.integers(0, 2**32)), units, amount, draw(st.integers(0, 2**40)))
    return req, before


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(vectors())
def test_python_equals_circuit_on_random_vectors(
    circuit: Circuit, vector: tuple[dict[str, Any], WindowState]
) -> None:
    req, before = vector
    meter, tariff = encode_metered(req)
    try:
        transition(tariff, meter, before)
    except InputError:  # a cumulative width overflows: the circuit must refuse it too
        assert refuses(circuit, circuit_input(meter, tariff, before, SALT, ACCOUNT_SALT))
        return
    run(circuit, meter, tariff, before)


def test_python_equals_circuit_at_the_widths(circuit: Circuit) -> None:
    top = "18446744073709.551615"  # price_scaled = 2^64 - 1
    tiers = {
        "tiers": [
            {"up_to": U64 - 2, "unit_price_micros": top},
            {"up_to": None, "unit_price_micros": top},
        ]
    }
    dims = {f"d{i}": tiers for i in range(4)}
    req = request(dims, {"d0": 1, "d3": 1}, max_charge_micros=U64 - 1, rounding_mode="half_up")
    meter, tariff = encode_metered(req)
    before = WindowState(U64 - 2, (U64 - 3, 0, 0, U64 - 2), 0, 0)
    _, after = run(circuit, meter, tariff, before)
    assert after.seq == U64 - 1 and after.units[3] == U64 - 1


# --- inputs the circuit must refuse (negative first, then the bound that passes) ---


def two_tier_input(up_to: list[int]) -> dict[str, Any]:
    req = request(
        {
            "tokens": {
                "tiers": [
                    {"up_to": 10, "unit_price_micros": 1},
                    {"up_to": 20, "unit_price_micros": 2},
                    {"up_to": 30, "unit_price_micros": 3},
                    {"up_to": None, "unit_price_micros": 4},
                ]
            }
        },
        {"tokens": 25},
    )
    inp = raw_input(req)
    inp["up_to"][0] = [str(b) for b in up_to]
    return inp


@pytest.mark.parametrize(
    "up_to",
    [
        [20, 10, 30],
        [10, 10, 30],
        [0, 10, 30],
        [UNBOUNDED, 10, 20],
        [10, UNBOUNDED, 20],
        [10, 20, U64],
    ],
    ids=["decreasing", "equal", "zero", "finite-after-unbounded", "finite-after-open", "2^64"],
)
def test_rejects_invalid_tier_bounds(circuit: Circuit, up_to: list[int]) -> None:
    assert refuses(circuit, two_tier_input(up_to))


def test_accepts_valid_tier_bounds(circuit: Circuit) -> None:
    for up_to in ([10, 20, 30], [1, UNBOUNDED, UNBOUNDED], [10, 20, UNBOUNDED]):
        assert not refuses(circuit, two_tier_input(up_to)), up_to


def test_rejects_bad_mode_class_and_min_above_max(circuit: Circuit) -> None:
    assert refuses(circuit, raw_input(INFERENCE, rounding_mode="3"))
    assert refuses(circuit, raw_input(INFERENCE, tariff_class="1"))
    assert refuses(circuit, raw_input(INFERENCE, min_charge_micros="11", max_charge_micros="10"))


def state_input(before: WindowState, usage: int = 1) -> dict[str, Any]:
    return raw_input(request({"t": flat("1")}, {"t": usage}), before)


def test_cumulative_units_overflow_at_2_64(circuit: Circuit) -> None:
    assert refuses(circuit, state_input(WindowState(units=(U64 - 1, 0, 0, 0))))
    circuit.witness(state_input(WindowState(units=(U64 - 2, 0, 0, 0))))


def test_cumulative_amount_overflow_at_2_130(circuit: Circuit) -> None:
    # one unit at 1 micro adds 10^6 to the exact amount
    assert refuses(circuit, state_input(WindowState(amount=2**130 - 10**6)))
    assert refuses(circuit, state_input(WindowState(amount=2**130), usage=0))
    circuit.witness(state_input(WindowState(amount=2**130 - 10**6 - 1)))


def test_cumulative_charge_and_seq_overflow_at_2_64(circuit: Circuit) -> None:
    assert refuses(circuit, state_input(WindowState(charge=U64 - 1)))
    circuit.witness(state_input(WindowState(charge=U64 - 2)))
    assert refuses(circuit, state_input(WindowState(seq=U64 - 1)))
    circuit.witness(state_input(WindowState(seq=U64 - 2)))


# --- forged witnesses: a valid witness with one group's signals edited must not check ---


@pytest.fixture(scope="module")
def valid(circuit: Circuit) -> list[int]:
    meter, tariff = encode_metered(INFERENCE)
    return run(circuit, meter, tariff, WindowState(3, (10, 999_900, 0, 0), 7 * 10**6 + 1, 9))[0]


def forged(circuit: Circuit, valid: list[int], edits: dict[str, int]) -> list[set[str]]:
    w = copy.copy(valid)
    for name, value in edits.items():
        assert name in circuit.signals, name
        circuit.set(w, name, value)
    assert not circuit.snarkjs_check(w)
    return constraint_failures(circuit, w)


def test_forged_tier_selection_fails(circuit: Circuit, valid: list[int]) -> None:
    # output_tokens crosses its 1,000,000 bound: claim the 'after' point is still in tier 0
    at = "main.dims[1].at[1]"
    fails = forged(circuit, valid, {f"{at}.sel[0]": 1, f"{at}.sel[1]": 0})
    assert any(any(".sel[" in s or ".above." in s or ".below." in s for s in f) for f in fails)


def test_forged_rounding_fails(circuit: Circuit, valid: list[int]) -> None:
    # rem = x - 10^6·q is substituted by --O2: moving q moves rem out of [0, 10^6)
    r = "main.windowCharge.r[1]"
    fails = forged(circuit, valid, {f"{r}.q": circuit.get(valid, f"{r}.q") - 1})
    assert any(any(s.startswith(r) for s in f) for f in fails)


def test_forged_clamp_and_charge_fail(circuit: Circuit, valid: list[int]) -> None:
    charge = circuit.get(valid, "main.charge")
    fails = forged(circuit, valid, {"main.charge": charge + 1})
    assert any("main.charge" in f for f in fails)


def test_forged_state_transition_fails(circuit: Circuit, valid: list[int]) -> None:
    key = circuit.get(valid, "main.state_key")
    assert forged(circuit, valid, {"main.state_key": key + 1})
    prev = circuit.get(valid, "main.prev_state_key")
    assert forged(circuit, valid, {"main.prev_state_key": prev + 1})
