"""The in-process witness (vbill.zk.wasm_witness: the circuit's wasm in wasmtime) against
`snarkjs wtns calculate`: the same .wtns bytes for every binding, and the same refusals.

A refused input must come back as a WitnessError naming the input (a circuit assert, an
unknown, missing, short or non-canonical input), never as a crash, and the pool must go on
serving after one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from support import needs_build
from vbill import paths
from vbill.bindings import BINDING_V1, BINDING_V2, BINDING_V2C, artefacts
from vbill.bundle.bundle import encode_request
from vbill.encode.metered import GENESIS, MeteredCorrection, encode_metered, transition
from vbill.errors import ToolError
from vbill.models import MeteredAttestRequest, example
from vbill.zk import witness, witness_correction, witness_metered
from vbill.zk.field import R
from vbill.zk.native_prover import NativeProver
from vbill.zk.prover import _snarkjs
from vbill.zk.wasm_witness import WasmWitness, WitnessCalculator, WitnessError, fnv1a64

pytestmark = pytest.mark.slow

SALT, ACCOUNT_SALT = 1234567890123456789, 987654321987654321


def v1_input(pilot: dict[str, Any], **edits: Any) -> dict[str, Any]:
    enc = encode_request(pilot)
    return {**witness.circuit_input(enc.meter, enc.tariff, SALT, ACCOUNT_SALT), **edits}


def v2_input() -> dict[str, Any]:
    meter, tariff = encode_metered(example(MeteredAttestRequest))
    return witness_metered.circuit_input(meter, tariff, GENESIS, SALT, ACCOUNT_SALT)


def v2c_input() -> dict[str, Any]:
    """A void of the example event, the window holding it and one more event."""
    req = example(MeteredAttestRequest)
    meter, tariff = encode_metered(req)
    charge, state = transition(tariff, meter, GENESIS)
    original = witness_correction.Original(meter, tariff, charge, SALT)
    req["meter_event"]["event_id"] = "evt_after"
    later, _ = encode_metered(req)
    _, state = transition(tariff, later, state)
    correction = MeteredCorrection.from_wire(
        {
            "tenant_id": req["meter_event"]["tenant_id"],
            "corrects": "evt_x",
            "correction_id": "cor_1",
            "reason": "billed by mistake",
        },
        tariff,
        meter.units,
    )
    return witness_correction.circuit_input(correction, original, state, 55555, ACCOUNT_SALT)


def snarkjs_wtns(wasm: Path, circuit_input: dict[str, Any], tmp: Path) -> bytes:
    """`snarkjs wtns calculate` (ToolError with its output if it refuses the input)."""
    (tmp / "input.json").write_text(json.dumps(circuit_input))
    _snarkjs("wtns", "calculate", wasm, tmp / "input.json", tmp / "out.wtns")
    return (tmp / "out.wtns").read_bytes()


@pytest.fixture(scope="module")
def v1() -> Iterator[WasmWitness]:
    needs_build()
    pool = WasmWitness(paths.WASM, size=2)
    yield pool
    pool.close()


def signed_halves(h: int) -> tuple[int, int]:
    return tuple(x - 2**32 if x >= 2**31 else x for x in (h >> 32, h & 0xFFFFFFFF))  # type: ignore[return-value]


def test_fnv1a64_is_circoms_signal_hash() -> None:
    # the published FNV-1a 64 vectors, as the two signed i32 halves the wasm takes
    assert fnv1a64("") == signed_halves(0xCBF29CE484222325)
    assert fnv1a64("a") == signed_halves(0xAF63DC4C8601EC8C)
    assert fnv1a64("foobar") == signed_halves(0x85944171F73967E8)


@pytest.mark.parametrize("binding", [BINDING_V1, BINDING_V2, BINDING_V2C])
def test_wtns_is_byte_identical_to_snarkjs(
    binding: str, pilot_request: dict[str, Any], tmp_path: Path
) -> None:
    art = artefacts(binding)
    if not art.wasm.exists():
        pytest.skip(f"build/ has no compiled {art.circuit}: run `make setup`")
    inp = {BINDING_V1: lambda: v1_input(pilot_request), BINDING_V2: v2_input}.get(
        binding, v2c_input
    )()
    calc = WitnessCalculator(art.wasm)
    ours = calc.wtns(inp)
    assert ours == snarkjs_wtns(art.wasm, inp, tmp_path)
    # the witness carries the public signals the reference computes, after the constant 1
    values = calc.witness(inp)
    assert values[0] == 1 and calc.prime == R and len(values) == calc.witness_size
    assert calc.wtns(inp) == ours  # an instance is reusable


def test_a_circuit_assert_names_the_input_and_the_pool_keeps_serving(
    v1: WasmWitness, pilot_request: dict[str, Any], tmp_path: Path
) -> None:
    good = v1_input(pilot_request)
    bad = v1_input(pilot_request, usage_units=str(2**64))
    with pytest.raises(WitnessError) as caught:
        v1.wtns(bad)
    message = str(caught.value)
    assert message.startswith("witness: input usage_units rejected by the circuit")
    assert "circuits/billing_binding.circom:" in message and "Assert Failed" in message
    # snarkjs refuses the same input with the same circuit trace
    with pytest.raises(ToolError, match="Assert Failed"):
        snarkjs_wtns(paths.WASM, bad, tmp_path)
    with pytest.raises(WitnessError, match="input rounding_mode rejected"):
        v1.wtns(v1_input(pilot_request, rounding_mode="3"))
    # the trapped instances were dropped; both callers of a 2-pool still get good witnesses
    with ThreadPoolExecutor(2) as ex:
        outs = list(ex.map(v1.wtns, [good] * 4))
    assert len(set(outs)) == 1 and outs[0] == WitnessCalculator(paths.WASM).wtns(good)


@pytest.mark.parametrize(
    ("edits", "message"),
    [
        ({"usage_units": str(R)}, "input usage_units is out of range"),
        ({"usage_units": "9" * 5000}, "input usage_units is out of range"),
        ({"usage_units": "-1"}, "input usage_units is not a decimal string"),
        ({"usage_units": "0x10"}, "input usage_units is not a decimal string"),
        ({"usage_units": 1.5}, "input usage_units is not an integer"),
        ({"usage_units": ["1", "2"]}, "input usage_units has 2 values, the circuit takes 1"),
        ({"no_such_input": "1"}, "no_such_input is not an input of the circuit"),
        ({"salt": None}, "input salt is not an integer"),
    ],
)
def test_malformed_inputs_are_refused_naming_them(
    v1: WasmWitness, pilot_request: dict[str, Any], edits: dict[str, Any], message: str
) -> None:
    with pytest.raises(WitnessError, match=message):
        v1.wtns(v1_input(pilot_request, **edits))


def test_a_missing_input_is_refused(v1: WasmWitness, pilot_request: dict[str, Any]) -> None:
    inp = v1_input(pilot_request)
    del inp["salt"]
    with pytest.raises(WitnessError, match="17 input values given, the circuit takes 18"):
        v1.wtns(inp)


def test_native_prover_takes_the_same_witness_from_wasmtime_and_node(
    pilot_request: dict[str, Any],
) -> None:
    needs_build()
    inp = v1_input(pilot_request)
    with (
        NativeProver(1, witness="wasmtime") as fast,
        NativeProver(1, witness="node") as node,
    ):
        assert fast.wtns(inp) == node.wtns(inp)
        assert fast.pids() == []  # no node process behind the in-process witness
        bad = v1_input(pilot_request, usage_units=str(2**64))
        for prover in (fast, node):
            with pytest.raises(ToolError, match="Assert Failed"):
                prover.prove(bad)
