"""The witness's cost, node worker vs in-process wasmtime: `python -m vbill_tools.witness_bench`.

Per binding and witness calculator (`NativeProver(witness=...)`): CPU ms per witness (this
process and the node worker, from /proc) over N distinct inputs after a warm-up. With
`--attest N`, also where one attest's CPU goes (`build_bundle` on `NativeProver(1)`, one at a
time): the native prove, the witness, the native request and the rest of the Python path.
BENCHMARKS.md quotes both; CPU time is the figure a shared machine leaves comparable.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Mapping
from typing import Any

from vbill import paths
from vbill.bindings import BINDING_V1, BINDING_V2, artefacts
from vbill.bundle.bundle import build_bundle, encode_request
from vbill.bundle.keys import Attester
from vbill.encode.metered import GENESIS, encode_metered
from vbill.verify.trust import file_sha256
from vbill.zk import witness, witness_metered
from vbill.zk.native_prover import NativeProver
from vbill.zk.prover import Proof
from vbill.zk.witness import random_field_element

from vbill_tools.bench import cpu_seconds, sample_metered_requests, sample_requests

KINDS = ("node", "wasmtime")


def _inputs(binding: str, n: int) -> list[dict[str, Any]]:
    if binding == BINDING_V1:
        encoded = [encode_request(r) for r in sample_requests(n, prefix="evt_wit_bench")]
        return [
            witness.circuit_input(e.meter, e.tariff, random_field_element(), 7) for e in encoded
        ]
    out = []
    for req in sample_metered_requests(n, prefix="wit_bench"):
        meter, tariff = encode_metered(req)
        out.append(witness_metered.circuit_input(meter, tariff, GENESIS, random_field_element(), 7))
    return out


def _cpu(pids: list[int]) -> float:
    return sum(os.times()[:2]) + sum(cpu_seconds(pid) for pid in pids)


def witness_cpu(binding: str, kind: str, inputs: list[dict[str, Any]], warm: int) -> float:
    """CPU ms per witness (the .wtns bytes the native prover takes), after `warm` calls."""
    art = artefacts(binding)
    with NativeProver(1, wasm=art.wasm, zkey=art.zkey, witness=kind) as prover:
        for inp in inputs[:warm]:
            prover.wtns(inp)
        pids = prover.pids()
        cpu0 = _cpu(pids)
        for inp in inputs:
            prover.wtns(inp)
        return (_cpu(pids) - cpu0) * 1e3 / len(inputs)


class _Split:
    """A ProofSource that times the witness and the native proof of each `prove` apart."""

    def __init__(self, prover: NativeProver) -> None:
        self.prover = prover
        self.reset()

    def reset(self) -> None:
        self.ms = dict.fromkeys(("witness", "native prove", "native request (python)"), 0.0)
        self.witness_thread_ms = 0.0

    def prove(self, circuit_input: Mapping[str, str]) -> Proof:
        node = self.prover.witness_pids()
        native = [pid for pid in self.prover.pids() if pid not in node]
        t0, n0 = time.thread_time(), sum(map(cpu_seconds, node))
        wtns = self.prover.wtns(circuit_input)
        t1, n1, p1 = time.thread_time(), sum(map(cpu_seconds, node)), sum(map(cpu_seconds, native))
        proof = self.prover.prove_wtns(wtns)
        t2, p2 = time.thread_time(), sum(map(cpu_seconds, native))
        self.witness_thread_ms += (t1 - t0) * 1e3
        self.ms["witness"] += (t1 - t0 + n1 - n0) * 1e3
        self.ms["native prove"] += (p2 - p1) * 1e3
        self.ms["native request (python)"] += (t2 - t1) * 1e3
        return proof

    def close(self) -> None:
        pass


def attest_split(kind: str, n: int, warm: int) -> dict[str, float]:
    """CPU ms per v1 attest, one at a time: the process tree's, and its parts."""
    reqs = sample_requests(n + warm, prefix=f"evt_wit_attest_{kind}")
    attester, vkey_hash = Attester.generate(), file_sha256(paths.VKEY)
    with NativeProver(1, witness=kind) as prover:
        split = _Split(prover)

        def attest(req: dict[str, Any]) -> None:
            build_bundle(
                req, attester=attester, account_salt=7, prover=split, vkey_sha256=vkey_hash
            )

        for req in reqs[:warm]:
            attest(req)
        split.reset()
        cpu0, thread0 = _cpu(prover.pids()), time.thread_time()
        for req in reqs[warm:]:
            attest(req)
        total = _cpu(prover.pids()) - cpu0
        python_ms = (time.thread_time() - thread0) * 1e3
    rest = python_ms - split.witness_thread_ms - split.ms["native request (python)"]
    return {
        "total (process tree)": total * 1e3 / n,
        **{k: v / n for k, v in split.ms.items()},
        "rest of build_bundle (python)": rest / n,
    }


def main(argv: list[str] | None = None) -> None:
    """`python -m vbill_tools.witness_bench [--calls N] [--attest N] [--binding B]…`."""
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--calls", type=int, default=100, help="witnesses per binding and kind")
    ap.add_argument("--warm", type=int, default=20)
    ap.add_argument("--attest", type=int, default=0, help="also split N v1 attests' CPU")
    ap.add_argument("--binding", action="append", choices=[BINDING_V1, BINDING_V2])
    args = ap.parse_args(argv)
    print(f"load average {os.getloadavg()[0]:.1f}")
    for binding in args.binding or (BINDING_V1, BINDING_V2):
        if not artefacts(binding).zkey.exists():
            continue
        inputs = _inputs(binding, args.calls)
        for kind in KINDS:
            ms = witness_cpu(binding, kind, inputs, min(args.warm, args.calls))
            print(f"witness {binding} {kind}: {ms:.2f} CPU ms per call ({args.calls} calls)")
    if args.attest:
        for kind in KINDS:
            parts = attest_split(kind, args.attest, args.warm)
            shown = "; ".join(f"{k} {v:.2f}" for k, v in parts.items())
            print(f"attest v1, witness {kind} (CPU ms per attest, {args.attest}): {shown}")
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
