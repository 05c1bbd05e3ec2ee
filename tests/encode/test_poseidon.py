"""Python Poseidon equals circomlib's bit for bit: circomlibjs vectors and the compiled circuit.

The helpers that run the real compiled circuit (tests/js/witness_batch.mjs) are in
tests/support/circuit_tools.py, shared with test_charge.py.
"""

from __future__ import annotations

import json
import random
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from support.circuit_tools import (
    WASM,
    circuit_outputs,
    needs_circuit,
    node_json,
    random_fields,
)
from vbill import paths
from vbill.zk.field import R
from vbill.zk.poseidon import MAX_INPUTS, derive_params, poseidon, poseidon_reference
from vbill.zk.witness import (
    circuit_input,
    public_signals,
    random_field_element,
)

# --- the Python implementation itself ---


@pytest.mark.parametrize(
    "bad", [[R], [-1], [1, R + 1], [True], [1.0], [], list(range(MAX_INPUTS + 1))]
)
@pytest.mark.parametrize("fn", [poseidon, poseidon_reference])
def test_rejects_non_field_inputs_and_bad_arity(fn: Any, bad: list[Any]) -> None:
    with pytest.raises(ValueError):
        fn(bad)


def test_rejects_unsupported_width() -> None:
    for t in (1, MAX_INPUTS + 2):
        with pytest.raises(ValueError):
            derive_params(t)


def test_known_vectors() -> None:
    # circomlib's own test vectors (test/poseidoncircuit.js, circomlibjs test/poseidon.js).
    assert poseidon([1, 2]) == int(
        "0x115cc0f5e7d690413df64c6b9662e9cf2a3617f2743245519e19607a4417189a", 16
    )
    assert poseidon([1, 2, 3, 4]) == int(
        "0x299c867db6c1fdd79dcefa40e4510b9837e60ebb1ce0663dbaa525df65250465", 16
    )


@pytest.mark.parametrize("t", range(2, MAX_INPUTS + 2))
def test_grain_derived_constants_equal_circomlibjs(t: int) -> None:
    published = json.loads(
        (paths.NODE_MODULES / "circomlibjs" / "src" / "poseidon_constants.json").read_text()
    )
    p = derive_params(t)
    assert list(p.constants) == [int(h, 16) for h in published["C"][t - 2]]
    assert [list(row) for row in p.mds] == [
        [int(h, 16) for h in row] for row in published["M"][t - 2]
    ]


# --- against circomlibjs (two implementations: wasm with optimised constants, reference) ---


@pytest.fixture(scope="session")
def circomlibjs_vectors() -> list[tuple[list[int], dict[str, str]]]:
    rng = random.Random(20260529)
    vectors: list[list[int]] = []
    for n in range(1, MAX_INPUTS + 1):
        vectors += [[0] * n, [R - 1] * n, [rng.choice([0, R - 1]) for _ in range(n)]]
    for n in (1, 2, 3, 8):
        vectors += [[rng.randrange(R) for _ in range(n)] for _ in range(50)]
    outputs = node_json("poseidon_vectors.mjs", [[str(x) for x in v] for v in vectors])
    return list(zip(vectors, outputs, strict=True))


def test_python_equals_circomlibjs(circomlibjs_vectors: list[Any]) -> None:
    assert len(circomlibjs_vectors) >= 200
    mismatches = [
        (v, out)
        for v, out in circomlibjs_vectors
        if not (str(poseidon(v)) == str(poseidon_reference(v)) == out["wasm"] == out["reference"])
    ]
    assert not mismatches, mismatches[:3]


def test_sparse_form_equals_textbook_form() -> None:
    rng = random.Random(99)
    for n in range(1, MAX_INPUTS + 1):
        for _ in range(25):
            v = [rng.choice([0, 1, R - 1, rng.randrange(R)]) for _ in range(n)]
            assert poseidon(v) == poseidon_reference(v), v


# --- against the compiled circuit ---


@needs_circuit
@pytest.mark.slow
def test_public_signals_equal_circuit_outputs() -> None:
    rng = random.Random(7)
    cases = [random_fields(rng) for _ in range(12)]
    outs = circuit_outputs([circuit_input(*c) for c in cases])
    for case, out in zip(cases, outs, strict=True):
        assert out is not None, case
        assert out == public_signals(*case)


@needs_circuit
@pytest.mark.slow
def test_public_signals_equal_snarkjs_cli_witness() -> None:
    """The same check through the snarkjs CLI (`wtns calculate` then `wtns export json`)."""
    meter, tariff, _, _ = random_fields(random.Random(11))
    salt, account_salt = random_field_element(), random_field_element()
    snarkjs = str(paths.node_bin("snarkjs"))
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "input.json").write_text(json.dumps(circuit_input(meter, tariff, salt, account_salt)))
        for args in (
            ["wtns", "calculate", str(WASM), str(t / "input.json"), str(t / "w.wtns")],
            ["wtns", "export", "json", str(t / "w.wtns"), str(t / "w.json")],
        ):
            done = subprocess.run([snarkjs, *args], capture_output=True, text=True, check=False)
            assert done.returncode == 0, done.stdout + done.stderr
        witness = [int(v) for v in json.loads((t / "w.json").read_text())]
    expected = public_signals(meter, tariff, salt, account_salt)
    assert witness[0] == 1
    assert witness[1:6] == expected.as_list()


@needs_circuit
@pytest.mark.slow
def test_circuit_and_python_move_together_with_each_input() -> None:
    """Changing any one hashed input changes the commitment, in the circuit and in Python alike."""
    meter, tariff, salt, account_salt = random_fields(random.Random(3))
    cases = [(meter, tariff, salt, account_salt)]
    for name in ("event_id", "tenant_id", "billing_window_id"):
        cases.append(
            (replace(meter, **{name: (getattr(meter, name) + 1) % R}), tariff, salt, account_salt)
        )
    for name in ("tariff_id", "currency"):
        cases.append(
            (meter, replace(tariff, **{name: (getattr(tariff, name) + 1) % R}), salt, account_salt)
        )
    cases.append((meter, tariff, (salt + 1) % R, account_salt))
    outs = circuit_outputs([circuit_input(*c) for c in cases])
    assert outs == [public_signals(*c) for c in cases]
    assert len({o.commitment for o in outs if o is not None}) == len(cases)
