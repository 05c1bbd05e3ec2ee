"""`vbill bench`: prove and verify per bundle for this project and for the reference tools,
measured in one run on the same bundles, written as one table to BENCHMARKS.md.

Numbers are wall-clock on whatever machine runs it; the table records the machine, the load
average before the run and the command, so a reader can judge them. Never asserted in tests.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vbill import paths
from vbill.bindings import BINDING_V1, BINDING_V2, BINDING_V2C, artefacts
from vbill.bundle.bundle import build_bundle, digest_of, encode_request, with_receipt
from vbill.bundle.keys import Attester
from vbill.bundle.metered import encode_metered_request
from vbill.encode.metered import GENESIS, MeteredCorrection, transition
from vbill.errors import ToolError
from vbill.ledger.translog import MerkleTree, append_with_receipt
from vbill.models import MeteredAttestRequest, example
from vbill.verify.batch import native_batch_check, verify_many, worker_batch_check
from vbill.verify.trust import TrustSet, file_sha256
from vbill.verify.verify import default_check, native_available, py_ecc_check, verify_bundle
from vbill.zk.native_prover import open_prover
from vbill.zk.prover import ProofSource, Prover, prove_cli, verify_cli
from vbill.zk.witness import circuit_input, random_field_element
from vbill.zk.witness_correction import Original
from vbill.zk.witness_correction import circuit_input as correction_input

BEGIN, END = "<!-- vbill bench: begin -->", "<!-- vbill bench: end -->"


@dataclass(frozen=True)
class Row:
    operation: str
    implementation: str
    ms_per_bundle: float
    samples: int
    note: str = ""
    cpu_ms_per_bundle: float | None = None  # this process and its children, user + system

    @property
    def per_second(self) -> float:
        return 1000.0 / self.ms_per_bundle if self.ms_per_bundle else float("inf")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a live process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds() -> float:
    """User + system CPU seconds of this process, its live children (prover and witness
    workers, verify pools) and its reaped ones: on a machine shared with other work, CPU per
    bundle is the figure that depends least on how busy the machine was."""
    me = os.getpid()
    total = sum(os.times()[:4])  # self, and children already waited for
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited meanwhile
            continue
        if int(stat[1]) == me:
            total += (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
    return total


class Measure:
    """Wall and process-tree CPU time of a `with` block."""

    def __enter__(self) -> Measure:
        self.cpu0, self.t0 = tree_cpu_seconds(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall_ms = (time.perf_counter() - self.t0) * 1000
        self.cpu_ms = (tree_cpu_seconds() - self.cpu0) * 1000

    def row(self, operation: str, implementation: str, count: int, note: str = "") -> Row:
        return Row(
            operation, implementation, self.wall_ms / count, count, note, self.cpu_ms / count
        )


def sample_requests(
    n: int,
    base: dict[str, Any] | None = None,
    prefix: str = "evt_bench",
    tenants: int | None = None,
) -> list[dict[str, Any]]:
    """`n` distinct attest requests derived from the pilot (distinct event ids and usage),
    spread over `tenants` tenants `bench_t<k>` in turn if given (else the pilot's tenant)."""
    base = base or json.loads(paths.PILOT_REQUEST.read_text())
    out = []
    for i in range(n):
        req = copy.deepcopy(base)
        req["meter_event"]["event_id"] = f"{prefix}_{i:06d}"
        req["meter_event"]["usage_units"] = 1000 + i
        if tenants is not None:
            req["meter_event"]["tenant_id"] = f"bench_t{i % tenants}"
        out.append(req)
    return out


def _timed(fn: Callable[[], Any], samples: int) -> float:
    """Median wall-clock milliseconds of `samples` calls."""
    times = []
    for _ in range(samples):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"


def run(
    n: int = 16,
    *,
    slow_samples: int = 2,
    progress: Callable[[str], None] = print,
    references: bool = True,
    workers: int | None = None,
) -> list[Row]:
    """Measure everything once; `n` bundles for throughput, `slow_samples` for the slow tools,
    `workers` provers (default: one per core). `references=False` leaves out the reference
    tools (snarkjs CLI, snarkjs in-process, py_ecc), which take most of the time."""
    attester = Attester.generate()
    vkey = json.loads(paths.VKEY.read_text())
    vkey_hash = file_sha256(paths.VKEY)
    trust = TrustSet().with_(attesters=[attester.address], vkey_files=[paths.VKEY])
    reqs = sample_requests(n)
    inputs = []
    for req in reqs:
        enc = encode_request(req)
        inputs.append(circuit_input(enc.meter, enc.tariff, random_field_element(), 7))
    rows: list[Row] = []
    if references:
        rows += _reference_rows(inputs, vkey, slow_samples, progress)

    def sign(req: dict[str, Any], prover: ProofSource) -> Any:
        return build_bundle(
            req, attester=attester, account_salt=7, prover=prover, vkey_sha256=vkey_hash
        )

    workers = workers or os.cpu_count() or 1
    if references:
        progress(f"attest throughput: vbill, snarkjs workers ×{workers}, {min(n, 16)} bundles")
        with Prover(workers=workers) as slow:
            label = f"vbill, snarkjs workers ×{workers}"
            rows.append(_attest(slow, workers, label, reqs[:16], inputs, sign)[0])
    # The default prover attests all n, which the verification rows then use.
    progress(f"attest throughput: vbill, native prover ×{workers}, {n} bundles")
    with open_prover(workers) as prover:
        kind = "snarkjs workers" if isinstance(prover, Prover) else "native prover"
        row, bundles = _attest(prover, workers, f"vbill, {kind} ×{workers}", reqs, inputs, sign)
        rows.append(row)
        progress("attest latency, one at a time")
        latency = _timed(lambda: sign(reqs[0], prover), min(n, 16))
    rows.append(
        Row(
            "attest latency p50 (one at a time)",
            "vbill, default prover",
            latency,
            min(n, 16),
            "median",
        )
    )

    data = _logged(bundles, attester)
    if native_available():
        from vbill.verify.verify import native_check

        proved = data[0]["attestation"]["billing_proof"]
        sig = [int(x) for x in proved["public_signals"]]
        rows.append(
            Row(
                "verify (Groth16 only)",
                "vbill native pairing (long-lived)",
                _timed(lambda: native_check(vkey, sig, proved["proof"]), 50),
                50,
            )
        )
    progress("verify: one bundle at a time")
    rows.append(_verify_each("verify bundle (all verdicts)", data, trust, default_check()))
    if references:
        rows.append(
            Row(
                "verify bundle (all verdicts)",
                "vbill --reference (py_ecc)",
                _timed(
                    lambda: verify_bundle(data[0], trust=trust, check=py_ecc_check), slow_samples
                ),
                slow_samples,
            )
        )
    progress("verify --batch")
    rows.append(
        _verify_batch(
            "verify --batch (all verdicts)", data, trust, workers, "includes process-pool start"
        )
    )
    if artefacts(BINDING_V2).zkey.exists():
        rows += run_v2(n, attester, data, progress, workers)
    if artefacts(BINDING_V2C).zkey.exists():
        rows += run_v2c(n, progress, workers)
    rows += run_ingest(n, attester, progress)
    rows.append(run_attest_event(n, attester, progress))
    return rows


def _attest(
    prover: ProofSource,
    workers: int,
    label: str,
    reqs: list[dict[str, Any]],
    inputs: list[dict[str, str]],
    sign: Callable[[dict[str, Any], ProofSource], Any],
) -> tuple[Row, list[Any]]:
    """Attest `reqs` with 2 threads per prover worker, after one proof per thread (worker start,
    key load and wasm compile are not counted); the row and the bundles."""
    with ThreadPoolExecutor(2 * workers) as ex:
        list(ex.map(prover.prove, inputs[: 2 * workers]))
        with Measure() as m:
            bundles = list(ex.map(lambda r: sign(r, prover), reqs))
    return m.row("attest (prove + sign)", label, len(reqs), "throughput"), bundles


def _reference_rows(
    inputs: list[dict[str, str]],
    vkey: dict[str, Any],
    slow_samples: int,
    progress: Callable[[str], None],
) -> list[Row]:
    """The reference tools on the same inputs: snarkjs CLI prove and verify, py_ecc verify,
    snarkjs in-process prove and verify."""
    rows: list[Row] = []
    progress("snarkjs CLI prove/verify")
    rows.append(
        Row(
            "prove",
            "snarkjs CLI (fullprove)",
            _timed(lambda: prove_cli(inputs[0]), slow_samples),
            slow_samples,
        )
    )
    one = prove_cli(inputs[0])
    rows.append(
        Row(
            "verify (Groth16 only)",
            "snarkjs CLI",
            _timed(lambda: verify_cli(paths.VKEY, one.public_signals, one.proof), slow_samples),
            slow_samples,
        )
    )
    progress("py_ecc verify")
    from vbill.zk import groth16

    rows.append(
        Row(
            "verify (Groth16 only)",
            "py_ecc reference",
            _timed(lambda: groth16.verify_json(vkey, one.public_signals, one.proof), slow_samples),
            slow_samples,
        )
    )

    progress("snarkjs in-process (one worker)")
    with Prover(workers=1) as single:
        single.prove(inputs[0])  # warm-up
        k = min(8, len(inputs))
        with Measure() as m:
            for inp in inputs[:k]:
                single.prove(inp)
        rows.append(m.row("prove", "snarkjs in-process, 1 worker", k))
        rows.append(
            Row(
                "verify (Groth16 only)",
                "snarkjs in-process",
                _timed(lambda: single.verify(one.public_signals, one.proof), 20),
                20,
            )
        )
    return rows


def metered_request(
    event_id: str,
    usage: dict[str, int],
    *,
    tenant_id: str = "tenant_bench",
    window: str = "2026-05",
    tariff_id: str = "llm-bench",
) -> dict[str, Any]:
    """One AI inference's attest request, the documented metered example with every input
    token at 0.25 micro-ETH (output tokens 1.25, then 1 past 1M): the common metered case,
    benched here and proved by the tests."""
    req = example(MeteredAttestRequest)
    meter, tariff = req["meter_event"], req["tariff_snapshot"]
    meter.update(event_id=event_id, tenant_id=tenant_id, usage=usage, billing_window_id=window)
    tariff["tariff_id"] = tariff_id
    tariff["dimensions"]["input_tokens"] = {"tiers": [{"up_to": None, "unit_price_micros": "0.25"}]}
    return {"meter_event": meter, "tariff_snapshot": tariff}


def sample_metered_requests(
    n: int, prefix: str = "inf_bench", tenants: int | None = None, currency: str | None = None
) -> list[dict[str, Any]]:
    """`n` AI inferences with distinct event ids and usage, in one window, or spread over
    `tenants` tenants `tenant_bench_<k>` in turn (one window each) if given; `currency`
    replaces the tariff's ETH (a USD tariff needs no funded account)."""
    out = []
    for i in range(n):
        usage = {"input_tokens": 150 + i, "output_tokens": 400 + i}
        tenant = {} if tenants is None else {"tenant_id": f"tenant_bench_{i % tenants:03d}"}
        req = metered_request(f"{prefix}_{i:06d}", usage, **tenant)
        if currency is not None:
            req["tariff_snapshot"]["currency"] = currency
        out.append(req)
    return out


def run_v2(
    n: int,
    attester: Attester,
    v1_bundles: list[dict[str, Any]],
    progress: Callable[[str], None],
    workers: int,
) -> list[Row]:
    """Binding v2 beside v1: a window's states are computed in order (cheap), then its events
    are proved in parallel, as attest does; verify one at a time, and one batch of v1 and v2
    bundles together (one native verifier per key)."""
    art = artefacts(BINDING_V2)
    vkey_hash = file_sha256(art.vkey)
    trust = TrustSet().with_(attesters=[attester.address], vkey_files=[paths.VKEY, art.vkey])
    encs = [encode_metered_request(r) for r in sample_metered_requests(n)]
    befores, state = [], GENESIS
    for enc in encs:
        befores.append(state)
        state = transition(enc.tariff, enc.meter, state)[1]
    rows: list[Row] = []
    progress(f"v2 attest throughput: native prover ×{workers}, {n} bundles")
    with open_prover(workers, binding=BINDING_V2) as prover, ThreadPoolExecutor(2 * workers) as ex:

        def build(i: int) -> Any:
            return build_bundle(
                encs[i],
                attester=attester,
                account_salt=7,
                prover=prover,
                vkey_sha256=vkey_hash,
                before=befores[i],
            )

        list(ex.map(build, range(min(n, 2 * workers))))  # warm every worker
        with Measure() as m:
            bundles = list(ex.map(build, range(n)))
    label = f"vbill, {'native prover' if not isinstance(prover, Prover) else 'snarkjs workers'}"
    rows.append(m.row("v2 attest (prove + sign)", f"{label} ×{workers}", n, "throughput"))
    data = _logged(bundles, attester)
    progress("v2 verify: one bundle at a time")
    check = default_check()
    verify_bundle(data[0], trust=trust, check=check)  # start v2's verifier, as v1's was
    rows.append(_verify_each("v2 verify bundle (all verdicts)", data, trust, check))
    progress("verify --batch, v1 and v2 bundles together")
    rows.append(
        _verify_batch(
            "v1 + v2 verify --batch (all verdicts)",
            [*v1_bundles, *data],
            trust,
            workers,
            "one verifier per key; includes pool start",
        )
    )
    return rows


def run_v2c(n: int, progress: Callable[[str], None], workers: int) -> list[Row]:
    """Binding v2c (corrections): `n` voids, one of each event of an `n`-event metered window,
    each proved against the window's final state, in parallel; proving only (witness and
    Groth16), since a correction is signed like any bundle."""
    state, originals = GENESIS, []
    for i, r in enumerate(sample_metered_requests(n, prefix="cor_bench")):
        enc = encode_metered_request(r)
        charge, state = transition(enc.tariff, enc.meter, state)
        originals.append(Original(enc.meter, enc.tariff, charge, 1000 + i))
    inputs = []
    for i, o in enumerate(originals):
        wire = {
            "tenant_id": "tenant_bench",
            "corrects": f"cor_bench_{i:06d}",
            "correction_id": f"cor_{i}",
            "reason": "bench void",
        }
        cor = MeteredCorrection.from_wire(wire, o.tariff, o.meter.units)
        inputs.append(correction_input(cor, o, state, 2000 + i, 7))
    progress(f"v2c prove throughput: {n} corrections")
    with (
        open_prover(workers, binding=BINDING_V2C) as prover,
        ThreadPoolExecutor(2 * workers) as ex,
    ):
        list(ex.map(prover.prove, inputs[: 2 * workers]))  # warm every worker
        with Measure() as m:
            list(ex.map(prover.prove, inputs))
    label = "native prover" if not isinstance(prover, Prover) else "snarkjs workers"
    return [m.row("v2c prove (correction)", f"vbill, {label} ×{workers}", n, "throughput")]


def _logged(bundles: list[Any], attester: Attester) -> list[dict[str, Any]]:
    """The bundles as verify reads them: JSON, each with its receipt from one fresh log."""
    tree = MerkleTree()
    return [
        with_receipt(
            b, append_with_receipt(tree, digest_of(b), attester.account, 0).to_dict()
        ).model_dump(mode="json")
        for b in bundles
    ]


def _verify_each(operation: str, data: list[dict[str, Any]], trust: TrustSet, check: Any) -> Row:
    """Verify the bundles one at a time (all verdicts); ToolError unless every one is valid,
    since the numbers would then be meaningless."""
    t0 = time.perf_counter()
    verdicts = [verify_bundle(b, trust=trust, check=check) for b in data]
    ms = (time.perf_counter() - t0) * 1000 / len(data)
    if not all(v.valid for v in verdicts):
        raise ToolError(
            f"{operation}: bench bundles did not verify; the numbers would be meaningless"
        )
    return Row(operation, f"vbill ({_verifier_kind()})", ms, len(data))


def _verify_batch(
    operation: str, data: list[dict[str, Any]], trust: TrustSet, workers: int, note: str
) -> Row:
    """Verify the bundles as one batch (native multi-pairing, or a snarkjs worker); ToolError
    unless every one is valid."""
    batch_check = native_batch_check if native_available() else _worker_batch()
    t0 = time.perf_counter()
    results = list(
        verify_many(
            [(str(i), b) for i, b in enumerate(data)],
            trust=trust,
            check=batch_check,
            workers=workers,
        )
    )
    ms = (time.perf_counter() - t0) * 1000 / len(data)
    if not all(r.valid for _, r in results):
        raise ToolError(f"{operation}: bench bundles did not verify in the batch")
    return Row(operation, f"vbill ({_verifier_kind()}, {workers} processes)", ms, len(data), note)


def _verifier_kind() -> str:
    return "native pairing" if native_available() else "snarkjs worker"


def _worker_batch() -> Any:
    return worker_batch_check(Prover(workers=1, zkey=None, vkey=None))


@dataclass(frozen=True)
class Previous:
    """The figures of the bench section a run replaces: (operation, implementation) -> (wall
    ms, CPU ms or None) per bundle, and the lines saying when and how they were measured."""

    ms: dict[tuple[str, str], tuple[float, float | None]]
    when: str = ""


def previous_figures(path: Path | None = None) -> Previous:
    """The table in BENCHMARKS.md's bench section (empty if there is none)."""
    path = path or paths.ROOT / "BENCHMARKS.md"
    text = path.read_text() if path.exists() else ""
    if BEGIN not in text or END not in text:
        return Previous({})
    section = text.split(BEGIN, 1)[1].split(END, 1)[0]
    ms: dict[tuple[str, str], tuple[float, float | None]] = {}
    columns: list[str] = []
    when = []
    for line in section.splitlines():
        if line.startswith(("Machine:", "Command:")):
            when.append(line.strip())
        if not line.startswith("| ") or line.startswith("|---"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == "operation":
            columns = cells
        elif columns and "ms / bundle" in columns and len(cells) == len(columns):
            row = dict(zip(columns, cells, strict=True))
            with contextlib.suppress(ValueError):
                cpu = row.get("CPU ms / bundle") or None
                ms[(cells[0], cells[1])] = (
                    float(row["ms / bundle"]),
                    None if cpu is None else float(cpu),
                )
    return Previous(ms, " ".join(when))


def _change(r: Row, before: tuple[float, float | None] | None) -> tuple[str, str]:
    """(previous figure, previous / now): CPU time when both runs have it (it depends less
    on the machine's load), else wall time."""
    if before is None:
        return "", ""
    wall, cpu = before
    if cpu is not None and r.cpu_ms_per_bundle:
        return f"{wall:.1f} (CPU {cpu:.1f})", f"{cpu / r.cpu_ms_per_bundle:.2f}× CPU"
    return f"{wall:.1f}", f"{wall / r.ms_per_bundle:.2f}×"


def table(rows: list[Row], previous: Previous | None = None) -> str:
    """One Markdown table: each row's wall and CPU time per bundle, and beside them the
    previous run's figure and previous / now (below 1.0× the operation got slower)."""
    previous = previous or Previous({})
    base = {r.operation: r for r in rows if "CLI" in r.implementation}
    lines = [
        "| operation | implementation | ms / bundle | CPU ms / bundle | bundles / s "
        "| previous ms | previous / now | vs snarkjs CLI | samples |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ref = base.get(r.operation) or base.get(
            "prove" if "attest" in r.operation else "verify (Groth16 only)"
        )
        if "v2" in r.operation or "ingest" in r.operation:  # the CLI rows are v1 proofs'
            ref = None
        ratio = f"{ref.ms_per_bundle / r.ms_per_bundle:.1f}×" if ref else ""
        cpu = "" if r.cpu_ms_per_bundle is None else f"{r.cpu_ms_per_bundle:.1f}"
        then, change = _change(r, previous.ms.get((r.operation, r.implementation)))
        lines.append(
            f"| {r.operation} | {r.implementation} | {r.ms_per_bundle:.1f} | {cpu} | "
            f"{r.per_second:.1f} | {then} | {change} | {ratio} | {r.samples} |"
        )
    return "\n".join(lines)


def write_benchmarks(
    rows: list[Row], command: str, path: Path | None = None, *, load_before: float | None = None
) -> Path:
    """Replace the bench section of BENCHMARKS.md (other sections are left as they are), with
    the figures it replaces beside the new ones. `load_before`: the load average when the run
    started (else now's)."""
    path = path or paths.ROOT / "BENCHMARKS.md"
    previous = previous_figures(path)
    load_now = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    load = load_now if load_before is None else load_before
    section = "\n".join(
        [
            BEGIN,
            "## Prove and verify per bundle (`vbill bench`)",
            "",
            f"Machine: {machine()}. Load average before the run: {load:.2f} "
            f"({load_now:.2f} at its end). "
            f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, commit "
            f"{git_commit() or 'unknown'}.",
            f"Command: `{command}`",
            "",
            table(rows, previous),
            "",
            "`CPU ms / bundle`: user + system time of the bench process and its prover, witness "
            "and verify workers per bundle (throughput rows), the figure that depends least on "
            "how busy the machine is. `previous ms` is the wall (and CPU) time of the run this one "
            f"replaced ({previous.when or 'none'}); `previous / now` compares CPU time where both "
            "runs have it, else wall time, and below 1.0× means slower now. "
            "`vs snarkjs CLI` compares with the snarkjs CLI doing the same operation (for "
            "attest: CLI prove). `verify bundle` includes recomputing all public signals "
            "(native Poseidon where built), the signature, the receipt check and the Groth16 "
            "check; `--batch` settles the Groth16 checks of a chunk with one multi-pairing.",
            "`v2` rows: binding bn128-poseidon8-v2 (metered AI inferences, 2 token dimensions, "
            "7,960 constraints), the window's states computed in order and its events proved "
            "in parallel, as attest does; no like-for-like snarkjs CLI ratio. The mixed batch "
            "verifies v1 and v2 bundles together, one native verifier per key. `v2c`: binding "
            "bn128-poseidon8-v2c (corrections, 9,144 constraints), witness and proof only. "
            "`ingest` rows: "
            "`Ingestor.ingest` in process on a fresh SQLite store (validate, charge, sign "
            "under digest version 2, log; no proof, no HTTP), per event. `attest_event`: what "
            "`vbill attest` runs per event (ingest, then prove with one native worker and "
            "attach the proof: two commits), one at a time, after two warm-up events.",
            END,
        ]
    )
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + section + rest.split(END, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    path.write_text(text)
    return path


def run_ingest(n: int, attester: Attester, progress: Callable[[str], None]) -> list[Row]:
    """Ingestion without HTTP: `4 n` single events one call each (one commit each), then
    batches of 100 (at least one), on a fresh SQLite store; CPU per event."""
    import tempfile

    from vbill.ingest import Ingestor, Proving
    from vbill.ledger.store import Store

    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="vbill-bench-ingest-") as tmp:
        store = Store(Path(tmp) / "vbill.sqlite3", log_key=attester.account)
        # signs and logs only: the prover is never asked
        provers = {BINDING_V1: Proving(_NotProving(), file_sha256(paths.VKEY))}
        ingestor = Ingestor(store, attester, provers)
        try:
            ingestor.ingest(sample_requests(10, prefix="ingest_warm", tenants=10))
            singles = sample_requests(4 * n, prefix="ingest_one", tenants=10)
            progress(f"ingest: {len(singles)} single events")
            with Measure() as m:
                outcomes = [o for r in singles for o in ingestor.ingest([r])]
            rows.append(m.row("ingest one event per call", "vbill, SQLite", len(singles)))
            batches = max(1, n // 25)
            events = sample_requests(100 * batches, prefix="ingest_batch", tenants=10)
            progress(f"ingest: {batches} batches of 100")
            with Measure() as m:
                for k in range(0, len(events), 100):
                    outcomes += ingestor.ingest(events[k : k + 100])
            rows.append(m.row("ingest a batch of 100, per event", "vbill, SQLite", len(events)))
        finally:
            ingestor.close()
            store.close()
    if not all(o.status == "created" for o in outcomes):
        raise ToolError("bench ingestion did not store every event; the numbers would mislead")
    return rows


def run_attest_event(n: int, attester: Attester, progress: Callable[[str], None]) -> Row:
    """`vbill attest`'s path (`attest_event`: ingest, sign under digest v2, log, prove with a
    one-worker native prover, attach) one event at a time on a fresh SQLite store, after two
    events that warm the prover; wall and process-tree CPU per event."""
    import tempfile

    from vbill.attest import attest_event
    from vbill.ingest import close_provers, open_provers
    from vbill.ledger.store import Store

    count = min(n, 16)
    reqs = sample_requests(count + 2, prefix="attest_event", tenants=4)
    progress(f"attest_event (vbill attest's path): {count} events one at a time")
    with tempfile.TemporaryDirectory(prefix="vbill-bench-attest-") as tmp:
        store = Store(Path(tmp) / "vbill.sqlite3", log_key=attester.account)
        provers = open_provers(1, versions=[BINDING_V1])
        try:
            done = [
                attest_event(r, store=store, attester=attester, provers=provers) for r in reqs[:2]
            ]
            with Measure() as m:
                done += [
                    attest_event(r, store=store, attester=attester, provers=provers)
                    for r in reqs[2:]
                ]
        finally:
            close_provers(provers)
            store.close()
    if not all(d.created and d.stored.proven for d in done):
        raise ToolError("bench attest_event did not store a proved bundle per event")
    return m.row("attest_event, one at a time (vbill attest)", "vbill, native ×1, SQLite", count)


class _NotProving:
    """The prover of an ingestion that only signs and logs (the bench proves elsewhere)."""

    def prove(self, circuit_input: Any) -> Any:
        raise AssertionError("the ingest bench never proves")

    def close(self) -> None:
        pass


def git_commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=paths.ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip()


def write_month(n: int, out: Path) -> str:
    """Attest `n` distinct pilot-derived bundles (native prover where built), log them in an
    in-memory RFC 9162 tree signed by a fresh attester, and write them as JSON lines: the input
    of the month-end measurement `vbill verify --batch OUT --trust-attester ADDRESS`.
    Returns the attester address to trust."""
    attester = Attester.generate()
    vkey_hash = file_sha256(paths.VKEY)
    tree = MerkleTree()
    with open_prover() as prover, ThreadPoolExecutor(2 * (os.cpu_count() or 1)) as ex:
        bundles = ex.map(
            lambda r: build_bundle(
                r, attester=attester, account_salt=99, prover=prover, vkey_sha256=vkey_hash
            ),
            sample_requests(n, prefix="evt_month"),
        )
        with out.open("w") as fh:
            for b in bundles:
                receipt = append_with_receipt(tree, digest_of(b), attester.account, 0)
                fh.write(json.dumps(with_receipt(b, receipt.to_dict()).model_dump(mode="json")))
                fh.write("\n")
    return attester.address


if __name__ == "__main__":  # python -m vbill_tools.bench month N OUT.jsonl
    import sys

    if len(sys.argv) != 4 or sys.argv[1] != "month":
        sys.exit("usage: python -m vbill_tools.bench month N OUT.jsonl")
    print(write_month(int(sys.argv[2]), Path(sys.argv[3])))
