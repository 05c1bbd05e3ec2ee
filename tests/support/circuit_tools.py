"""Circuit test helpers: witnesses from the compiled wasm, .wtns/.r1cs/.sym readers, forgery.

A forged witness is a valid one with some signals edited after calculation (circomkit's
`editWitness`); `snarkjs wtns check` must then reject it. `failing_constraints` evaluates the
r1cs in Python so a test can also say *which* constraint caught the forgery, i.e. that the
check under test is the one doing the work rather than some unrelated constraint downstream.
"""

from __future__ import annotations

import json
import os
import random
import re
import struct
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest
from vbill import paths
from vbill.encode.encoding import MeterFields, TariffFields
from vbill.zk.witness import PublicSignals, public_signal_names

R = 21888242871839275222246405745257275088548364400416034343698204186575808495617
SYM = paths.BUILD / f"{paths.CIRCUIT_NAME}.sym"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

LinearCombination = dict[int, int]  # wire index -> coefficient


class WitnessError(Exception):
    """The witness calculator refused the input (a circuit `assert` or constraint failed)."""


# --- binary formats (iden3 binfile: magic, version, sections of (type u32, size u64)) ---


def sections(data: bytes, magic: bytes) -> dict[int, tuple[int, int]]:
    """iden3 binary file sections (wtns, r1cs, zkey): type -> (data offset, size)."""
    if data[:4] != magic:
        raise ValueError(f"not a {magic.decode()} file")
    n_sections = struct.unpack_from("<I", data, 8)[0]
    pos, out = 12, {}
    for _ in range(n_sections):
        kind, size = struct.unpack_from("<IQ", data, pos)
        out[kind] = (pos + 12, size)
        pos += 12 + size
    return out


def read_wtns(path: Path) -> list[int]:
    """Witness values, index 0 being the constant 1."""
    data = path.read_bytes()
    sec = sections(data, b"wtns")
    pos, _ = sec[1]
    n8 = struct.unpack_from("<I", data, pos)[0]
    prime = int.from_bytes(data[pos + 4 : pos + 4 + n8], "little")
    n = struct.unpack_from("<I", data, pos + 4 + n8)[0]
    assert prime == R, "witness is not over the BN254 scalar field"
    start, _ = sec[2]
    return [int.from_bytes(data[start + i * n8 : start + (i + 1) * n8], "little") for i in range(n)]


def write_wtns(path: Path, values: list[int]) -> None:
    """Write a version-2 .wtns file that snarkjs reads back."""
    n8 = 32
    header = struct.pack("<I", n8) + R.to_bytes(n8, "little") + struct.pack("<I", len(values))
    body = b"".join((v % R).to_bytes(n8, "little") for v in values)
    out = b"wtns" + struct.pack("<II", 2, 2)
    out += struct.pack("<IQ", 1, len(header)) + header
    out += struct.pack("<IQ", 2, len(body)) + body
    path.write_bytes(out)


def read_r1cs_constraints(
    path: Path,
) -> list[tuple[LinearCombination, LinearCombination, LinearCombination]]:
    data = path.read_bytes()
    sec = sections(data, b"r1cs")
    hpos, _ = sec[1]
    n8 = struct.unpack_from("<I", data, hpos)[0]
    n_constraints = struct.unpack_from("<I", data, hpos + 4 + n8 + 16 + 8)[0]
    pos, _ = sec[2]
    constraints = []
    for _ in range(n_constraints):
        lcs = []
        for _ in range(3):
            n_terms = struct.unpack_from("<I", data, pos)[0]
            pos += 4
            lc = {}
            for _ in range(n_terms):
                wire = struct.unpack_from("<I", data, pos)[0]
                lc[wire] = int.from_bytes(data[pos + 4 : pos + 4 + n8], "little")
                pos += 4 + n8
            lcs.append(lc)
        constraints.append((lcs[0], lcs[1], lcs[2]))
    return constraints


def read_sym(path: Path = SYM) -> dict[str, int]:
    """Signal name -> witness index; signals removed by the optimiser (index -1) are left out."""
    names = {}
    for line in path.read_text().splitlines():
        _label, var, _component, name = line.split(",", 3)
        if int(var) >= 0:
            names[name] = int(var)
    return names


# --- the compiled circuit ---


def _eval(lc: LinearCombination, w: list[int]) -> int:
    return sum(c * w[i] for i, c in lc.items()) % R


@dataclass
class Circuit:
    """The built BillingBinding circuit, driven through snarkjs in one scratch directory."""

    workdir: Path
    wasm: Path = paths.WASM
    r1cs: Path = paths.R1CS
    sym: Path = SYM
    _n: int = field(default=0, init=False)

    @cached_property
    def signals(self) -> dict[str, int]:
        return read_sym(self.sym)

    @cached_property
    def names_by_index(self) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for name, idx in self.signals.items():
            out.setdefault(idx, []).append(name)
        return out

    @cached_property
    def constraints(self) -> list[tuple[LinearCombination, LinearCombination, LinearCombination]]:
        return read_r1cs_constraints(self.r1cs)

    def _path(self, suffix: str) -> Path:
        self._n += 1
        return self.workdir / f"w{self._n}{suffix}"

    def witness(self, inputs: Mapping[str, Any]) -> list[int]:
        """`snarkjs wtns calculate`; raises WitnessError with the calculator's message.

        Array inputs are given as (nested) lists of decimal strings and written as they are."""
        inp = self._path(".json")
        inp.write_text(
            json.dumps({k: v if isinstance(v, list) else str(v) for k, v in inputs.items()})
        )
        out = self._path(".wtns")
        proc = subprocess.run(
            [
                str(paths.node_bin("snarkjs")),
                "wtns",
                "calculate",
                str(self.wasm),
                str(inp),
                str(out),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0 or not out.exists():
            raise WitnessError(_ANSI.sub("", proc.stdout + proc.stderr).strip())
        return read_wtns(out)

    def snarkjs_check(self, witness: list[int]) -> bool:
        """`snarkjs wtns check r1cs wtns`: True only if snarkjs says the witness is correct."""
        path = self._path(".wtns")
        write_wtns(path, witness)
        proc = subprocess.run(
            [str(paths.node_bin("snarkjs")), "wtns", "check", str(self.r1cs), str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        text = _ANSI.sub("", proc.stdout + proc.stderr)
        return proc.returncode == 0 and "WITNESS IS CORRECT" in text

    def failing_constraints(self, witness: list[int]) -> list[int]:
        """Indices of r1cs constraints A·B = C that the witness violates (Python evaluation)."""
        return [
            i
            for i, (a, b, c) in enumerate(self.constraints)
            if (_eval(a, witness) * _eval(b, witness) - _eval(c, witness)) % R
        ]

    def signals_in(self, constraint: int) -> set[str]:
        """Names of every signal that appears in one constraint."""
        wires: set[int] = set()
        for lc in self.constraints[constraint]:
            wires |= set(lc)
        return {n for w in wires for n in self.names_by_index.get(w, [])}

    def get(self, witness: list[int], name: str) -> int:
        return witness[self.signals[name]]

    def set(self, witness: list[int], name: str, value: int) -> None:
        """Edit one signal; silently skips signals the optimiser removed (no witness slot)."""
        if name in self.signals:
            witness[self.signals[name]] = value % R

    # circomlib gadget internals, to forge deep (self-consistent) witnesses

    def set_bits(self, witness: list[int], prefix: str, n: int, value: int) -> None:
        """Num2Bits(n) at `prefix`: rewrite its `out[i]` bits for `value`."""
        for i in range(n):
            self.set(witness, f"{prefix}.out[{i}]", (value >> i) & 1)

    def set_less_than(self, witness: list[int], prefix: str, n: int, a: int, b: int) -> None:
        """LessThan(n) at `prefix` for inputs (a, b): its n2b bits of a + 2^n - b, and `out`."""
        self.set(witness, f"{prefix}.n2b.in", a + (1 << n) - b)
        self.set_bits(witness, f"{prefix}.n2b", n + 1, a + (1 << n) - b)
        self.set(witness, f"{prefix}.out", 1 if a < b else 0)


def constraint_failures(circuit: Circuit, witness: list[int]) -> list[set[str]]:
    """For each violated constraint, the signals it mentions (for readable assertions)."""
    return [circuit.signals_in(i) for i in circuit.failing_constraints(witness)]


def refuses(circuit: Circuit, inp: dict[str, Any]) -> bool:
    try:
        circuit.witness(inp)
    except WitnessError:
        return True
    return False


JS = Path(__file__).resolve().parents[1] / "js"
WASM = Path(os.environ.get("VBILL_TEST_WASM", paths.WASM))
U64 = 2**64
needs_circuit = pytest.mark.skipif(
    not WASM.exists(),
    reason=f"{WASM} is missing: build/ has not been made (run `make setup`; `make test` does)",
)


def node_json(script: str, payload: Any, *args: str) -> Any:
    """Run one of tests/js/*.mjs with a JSON payload on stdin; return its JSON stdout."""
    done = subprocess.run(
        [paths.node(), str(JS / script), *args],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def circuit_outputs(inputs: list[dict[str, str]]) -> list[PublicSignals | None]:
    """The compiled circuit's outputs per input (None where the circuit rejects the input)."""
    results = node_json("witness_batch.mjs", inputs, str(WASM), str(len(public_signal_names())))
    return [
        PublicSignals.from_list([int(v) for v in r["outputs"]]) if r["ok"] else None
        for r in results
    ]


def random_fields(rng: random.Random) -> tuple[MeterFields, TariffFields, int, int]:
    """Valid encoded inputs: hashed strings and salts anywhere in the field, integers < 2^64."""

    def f() -> int:
        return rng.choice([0, 1, R - 1, rng.randrange(R)])

    def u64() -> int:
        return rng.choice([0, 1, U64 - 1, rng.randrange(10**7), rng.randrange(U64)])

    lo, hi = sorted((u64(), u64()))
    meter = MeterFields(f(), u64(), f(), f(), f(), u64(), f(), f())
    tariff = TariffFields(f(), f(), 1, u64(), lo, hi, rng.randrange(3), f())
    return meter, tariff, f(), f()
