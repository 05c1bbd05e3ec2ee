"""`python -m vbill_tools.poseidon_bench`: µs per Poseidon(n) and per `public_signals` call,
native (build/native/libvbill_poseidon.so) and pure Python, in one run on the same inputs.

Inputs are pilot-derived bundles (the same requests `vbill bench` uses), so `public_signals`
does what `vbill verify` does per bundle. `--verify-batch N` also proves N bundles (native
prover where built) and times `verify_many` (what `vbill verify --batch` runs) on them with
each backend. Prints a Markdown table; measured, never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from vbill import paths
from vbill.bundle.bundle import encode_request
from vbill.errors import ToolError
from vbill.zk import poseidon as P
from vbill.zk.field import R
from vbill.zk.witness import public_signals

from vbill_tools.bench import machine, sample_requests

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
    with _backend_env():
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
    return results


@contextlib.contextmanager
def _backend_env() -> Iterator[None]:
    """Restore `VBILL_POSEIDON` after a measurement switched it."""
    saved = os.environ.get(P.BACKEND_ENV)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(P.BACKEND_ENV, None)
        else:
            os.environ[P.BACKEND_ENV] = saved


def measure_verify_batch(n: int) -> dict[str, float]:
    """{backend: ms per bundle} of `verify_many` over n freshly attested, logged bundles
    (process-pool start included, as in `vbill verify --batch`)."""
    from vbill.bundle.bundle import build_bundle, digest_of, with_receipt
    from vbill.bundle.keys import Attester
    from vbill.ledger.translog import MerkleTree, append_with_receipt
    from vbill.verify.batch import native_batch_check, verify_many
    from vbill.verify.trust import TrustSet, file_sha256
    from vbill.verify.verify import native_available
    from vbill.zk.native_prover import open_prover

    attester = Attester.generate()
    trust = TrustSet().with_(attesters=[attester.address], vkey_files=[paths.VKEY])
    workers = os.cpu_count() or 1
    with contextlib.closing(open_prover(workers)) as prover, ThreadPoolExecutor(2 * workers) as ex:
        bundles = list(
            ex.map(
                lambda r: build_bundle(
                    r,
                    attester=attester,
                    account_salt=7,
                    prover=prover,
                    vkey_sha256=file_sha256(paths.VKEY),
                ),
                sample_requests(n, prefix="evt_poseidon_batch"),
            )
        )
    tree = MerkleTree()
    data = [
        (
            str(i),
            with_receipt(
                b, append_with_receipt(tree, digest_of(b), attester.account, 0).to_dict()
            ).model_dump(mode="json"),
        )
        for i, b in enumerate(bundles)
    ]
    if not native_available():
        raise ToolError("--verify-batch needs the native verifier: run `make native`")
    out: dict[str, float] = {}
    with _backend_env():
        for backend in (*BACKENDS, *BACKENDS):  # twice, alternating; the better run counts
            os.environ[P.BACKEND_ENV] = backend  # inherited by the forked verify workers
            t0 = time.perf_counter()
            results = list(verify_many(data, trust=trust, check=native_batch_check))
            ms = (time.perf_counter() - t0) * 1000 / n
            out[backend] = min(ms, out.get(backend, ms))
            if not all(r.valid for _, r in results):
                raise ToolError("bench bundles did not verify; the numbers would be meaningless")
    return out


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
    ap.add_argument(
        "--verify-batch",
        type=int,
        default=0,
        metavar="N",
        help="also time verify_many on N bundles",
    )
    args = ap.parse_args(argv)
    if P.NATIVE_LIB.exists() is False:
        raise SystemExit(f"{P.NATIVE_LIB} is missing: run `make poseidon-lib` first")
    load = os.getloadavg()[0]
    results = measure(args.bundles, args.repeats)
    print(f"Machine: {machine()}. Load average before the run: {load:.2f}.")
    print(table(results))
    if args.verify_batch:
        per_bundle = measure_verify_batch(args.verify_batch)
        py, nat = per_bundle["python"], per_bundle["native"]
        print(
            f"| verify --batch, all verdicts ({args.verify_batch} bundles, {os.cpu_count()} "
            f"processes), ms per bundle | {py:.2f} | {nat:.2f} | {py / nat:.1f}× |"
        )


if __name__ == "__main__":
    main()
