"""Native prover throughput and where a proof's time goes: `python -m vbill_tools.prover_bench`.

Proves N distinct pilot-derived inputs with K native workers and prints proofs/s, CPU per
proof and the prover's phases (BENCHMARKS.md quotes it).
"""

from __future__ import annotations

import argparse
import os
import threading
import time

from vbill import paths
from vbill.bundle.bundle import encode_request
from vbill.zk.native_prover import NativeProcess, NativeProver
from vbill.zk.witness import circuit_input, random_field_element

from vbill_tools.bench import cpu_seconds, sample_requests


def _bench_inputs(n: int) -> list[dict[str, str]]:
    out = []
    for req in sample_requests(n, prefix="evt_native_bench"):
        enc = encode_request(req)
        out.append(circuit_input(enc.meter, enc.tariff, random_field_element(), 7))
    return out


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of this process and the given ones (Linux /proc)."""
    return sum(os.times()[:2]) + sum(cpu_seconds(pid) for pid in pids)


def main(argv: list[str] | None = None) -> None:
    """`python -m vbill_tools.prover_bench --proofs N --workers K`: throughput and phases."""
    from concurrent.futures import ThreadPoolExecutor

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--proofs", type=int, default=100)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args(argv)
    inputs = _bench_inputs(args.proofs)
    with NativeProver(args.workers, timing=True) as prover:
        t0 = time.perf_counter()
        proc = NativeProcess(paths.ZKEY, timing=True)
        load_ms = float(proc.ready.get("load_ms", 0.0))
        proc.close()
        start_ms = (time.perf_counter() - t0) * 1e3
        # warm both pools (process start, zkey expansion, wasm compile) outside the timing
        with ThreadPoolExecutor(args.workers) as ex:
            list(ex.map(prover.prove, inputs[: args.workers]))
        wit_ms = []
        t0 = time.perf_counter()
        for inp in inputs[:10]:
            t1 = time.perf_counter()
            prover.wtns(inp)
            wit_ms.append((time.perf_counter() - t1) * 1e3)
        phases: dict[str, float] = {}
        lock = threading.Lock()

        def one(inp: dict[str, str]) -> None:
            _, timing = prover.prove_wtns_timed(prover.wtns(inp))
            with lock:
                for k, v in timing.items():
                    phases[k] = phases.get(k, 0.0) + v

        pids = prover.pids()
        load = os.getloadavg()[0]
        cpu0 = _cpu_seconds(pids)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(args.workers) as ex:
            list(ex.map(one, inputs))
        wall = time.perf_counter() - t0
        cpu = _cpu_seconds(pids) - cpu0
    n = len(inputs)
    cores = os.cpu_count() or 1
    print(f"workers={args.workers} proofs={n} wall={wall:.2f}s -> {n / wall:.1f} proofs/s")
    print(
        f"load average before {load:.2f}; CPU (python + node + native) {cpu * 1e3 / n:.1f} ms"
        f" per proof -> {n * cores / cpu:.1f} proofs/s if {cores} idle cores were all ours"
    )
    print(f"zkey load+expand {load_ms:.0f} ms (process start to ready {start_ms:.0f} ms)")
    kind = os.environ.get("VBILL_WITNESS") or "wasmtime"
    print(f"witness (the circuit's wasm, {kind}, serial) {sum(wit_ms) / len(wit_ms):.1f} ms")
    shown = ", ".join(f"{k} {v / n:.2f}" for k, v in phases.items())
    print(f"native phases (ms per proof): {shown}")


if __name__ == "__main__":
    main()
