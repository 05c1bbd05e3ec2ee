"""`python -m orchestrator.poseidon_bench`: µs per Poseidon(n) and per `public_signals` call,
native (build/native/libvbill_poseidon.so) and pure Python, in one run on the same inputs.

Inputs are pilot-derived bundles (the same requests `vbill bench` uses), so `public_signals`
does what `vbill verify` does per bundle. Prints a Markdown table; measured, never asserted.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from . import poseidon as P
from .bench import machine, sample_requests
from .bundle import encode_request
from .field import R
from .witness import public_signals

BACKENDS = ("python", "native")


def _per_call_us(fn: Callable[[Any], Any], args: Sequence[Any], repeats: int) -> float:
    """Median over `repeats` passes of the mean µs per call over `args`."""
    fn(args[0])  # warm-up: derives the constants and initialises the native width
    passes = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for a in args:
            fn(a)
        passes.append((time.perf_counter() - t0) / len(args) * 1e6)
    return statistics.median(passes)


def measure(n_bundles: int, repeats: int) -> dict[str, dict[str, float]]:
    """{operation: {backend: µs per call}} for Poseidon(1, 2, 3, 8) and `public_signals`."""
    rng = random.Random(2026)
    cases = []
    for req in sample_requests(n_bundles, prefix="evt_poseidon_bench"):
        enc = encode_request(req)
        cases.append((enc.meter, enc.tariff, rng.randrange(R), rng.randrange(R)))
    vectors = {
        n: [[rng.randrange(R) for _ in range(n)] for _ in range(n_bundles)] for n in (1, 2, 3, 8)
    }
    results: dict[str, dict[str, float]] = {}
    saved = os.environ.get(P.BACKEND_ENV)
    try:
        for backend in BACKENDS:
            os.environ[P.BACKEND_ENV] = backend
            assert P.backend() == backend
            for n, vs in vectors.items():
                results.setdefault(f"Poseidon({n})", {})[backend] = _per_call_us(
                    P.poseidon, vs, repeats
                )
            results.setdefault("public_signals (6 Poseidon calls)", {})[backend] = _per_call_us(
                lambda c: public_signals(*c), cases, repeats
            )
    finally:
        if saved is None:
            os.environ.pop(P.BACKEND_ENV, None)
        else:
            os.environ[P.BACKEND_ENV] = saved
    return results


def table(results: dict[str, dict[str, float]]) -> str:
    lines = [
        "| operation | pure Python µs | native µs | speed-up |",
        "|---|---:|---:|---:|",
    ]
    for op, by in results.items():
        py, nat = by["python"], by["native"]
        lines.append(f"| {op} | {py:,.1f} | {nat:,.1f} | {py / nat:.1f}× |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundles", type=int, default=200, help="inputs per pass")
    ap.add_argument("--repeats", type=int, default=5, help="passes; the median is reported")
    args = ap.parse_args(argv)
    if P.NATIVE_LIB.exists() is False:
        raise SystemExit(f"{P.NATIVE_LIB} is missing: run `make poseidon-lib` first")
    load = os.getloadavg()[0]
    results = measure(args.bundles, args.repeats)
    print(f"Machine: {machine()}. Load average before the run: {load:.2f}.")
    print(table(results))


if __name__ == "__main__":
    main()
