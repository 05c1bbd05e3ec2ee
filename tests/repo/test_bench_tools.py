"""Every bench entry point runs, at tiny sizes (the documented ways to measure must keep
working; issue 28). Nothing here is timed: the figures are printed, and only their presence
and the work behind them (proofs made, bundles verified, events stored) are checked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from support import needs_build, needs_v2
from vbill import paths
from vbill.bindings import BINDING_V2C, artefacts
from vbill.cli.main import main

pytestmark = pytest.mark.slow


def run_module(module: str, *args: str, cwd: Path | None = None) -> str:
    """`python -m module args…` as a user runs it; its stdout, after checking it exited 0."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        cwd=cwd or paths.ROOT,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"{module} exited {done.returncode}: {done.stderr[-3000:]}"
    return done.stdout


def test_prover_bench_prints_throughput_cpu_and_phases() -> None:
    needs_build()
    out = run_module("vbill_tools.prover_bench", "--proofs", "2", "--workers", "1")
    assert "workers=1 proofs=2 " in out
    assert "ms per proof" in out  # CPU of python + node + native, read from /proc
    phases = out.split("native phases (ms per proof):", 1)[1]
    for phase in ("abc", "fft", "msm_a", "msm_b1", "msm_b2", "msm_c_h"):
        assert f"{phase} " in phases


def test_witness_bench_prints_both_calculators_and_the_attest_split() -> None:
    needs_build()
    args = ("--calls", "2", "--warm", "1", "--attest", "1", "--binding", "bn128-poseidon8-v1")
    out = run_module("vbill_tools.witness_bench", *args)
    for kind in ("node", "wasmtime"):
        assert f"witness bn128-poseidon8-v1 {kind}: " in out
        split = out.split(f"attest v1, witness {kind} (CPU ms per attest, 1): ", 1)[1]
        for part in ("total (process tree)", "witness", "native prove", "rest of build_bundle"):
            assert part in split.splitlines()[0]


def test_native_prover_module_is_the_prover_bench() -> None:
    """Its docstring gives `python -m vbill.zk.native_prover` as the way to measure proving: it
    runs prover_bench's main (measured above; here only that it gets there)."""
    out = run_module("vbill.zk.native_prover", "--help")
    assert "--proofs" in out and "--workers" in out


def test_poseidon_bench_times_both_backends_and_verify_batch() -> None:
    needs_build()
    out = run_module(
        "vbill_tools.poseidon_bench", "--bundles", "2", "--repeats", "1", "--verify-batch", "2"
    )
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    ops = [r.split("|")[1].strip() for r in rows]
    for op in ("Poseidon(1)", "Poseidon(8)", "public_signals (6 Poseidon calls)"):
        assert op in ops
    assert any(op.startswith("verify --batch, all verdicts (2 bundles") for op in ops)


def test_ingest_bench_stores_every_event_it_sends(tmp_path: Path) -> None:
    needs_build()
    out = json.loads(
        run_module(
            "vbill_tools.ingest_bench",
            *("--home", str(tmp_path / "home"), "--singles", "60", "--concurrency", "2"),
            *("--batches", "30:2", "--proofs", "0"),
        )
    )
    assert out["single"]["codes"] == {"202": 60}
    assert out["batch_30"]["events"] == 60 and out["batch_30"]["codes"] == {"200": 2}
    # The API's CPU is read from /proc in 10 ms ticks: a few events can honestly read 0, so
    # the phases together carry enough work (~100 ms) that a dead reading shows.
    assert all(out[p]["api_cpu_ms_per_event"] >= 0 for p in ("single", "batch_30"))
    assert out["single"]["api_cpu_ms_per_event"] + out["batch_30"]["api_cpu_ms_per_event"] > 0


def test_service_bench_attests_every_event() -> None:
    needs_build()
    out = json.loads(
        run_module("vbill_tools.service_bench", "--events", "2", "--tenants", "1", "--workers", "1")
    )
    assert out["ok"] == 2 and out["bundles_per_s"] > 0 and out["cpu_ms_per_bundle"] > 0


def test_service_bench_attests_metered_events_from_synchronous_clients() -> None:
    needs_build()
    needs_v2()
    args = ("--events", "3", "--tenants", "2", "--workers", "1", "--clients", "2", "--metered")
    out = json.loads(run_module("vbill_tools.service_bench", *args))
    assert (out["binding"], out["ok"], out["clients"]) == ("v2 (metered)", 3, 2)


def test_bench_month_writes_bundles_that_verify(tmp_path: Path) -> None:
    needs_build()
    month = tmp_path / "month.jsonl"
    address = run_module("vbill_tools.bench", "month", "2", str(month)).strip()
    assert address.startswith("0x") and len(address) == 42
    lines = month.read_text().splitlines()
    assert len(lines) == 2
    result = CliRunner().invoke(
        main, ["verify", "--batch", str(month), "--trust-attester", address, "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["valid"] == 2


def test_vbill_bench_measures_v1_and_v2_without_the_references() -> None:
    needs_build()
    needs_v2()
    result = CliRunner().invoke(
        main, ["bench", "-n", "2", "--workers", "1", "--no-references", "--no-write", "--json"]
    )
    assert result.exit_code == 0, result.output
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    ops = {(r["operation"], r["implementation"]) for r in rows}
    assert any(o == "attest (prove + sign)" and "native prover" in i for o, i in ops)
    assert {
        "v2 attest (prove + sign)",
        "verify bundle (all verdicts)",
        "ingest one event per call",
        "ingest a batch of 100, per event",
    } <= {o for o, _ in ops}
    assert not any("snarkjs CLI" in i or "py_ecc" in i for _, i in ops)
    if artefacts(BINDING_V2C).zkey.exists():  # the correction circuit, once it is set up
        cor = next(r for r in rows if r["operation"] == "v2c prove (correction)")
        assert cor["samples"] == 2 and cor["cpu_ms_per_bundle"] > 0
    attest = next(r for r in rows if r["operation"] == "attest (prove + sign)")
    assert attest["samples"] == 2 and attest["cpu_ms_per_bundle"] > 0
    cli = next(r for r in rows if r["operation"] == "attest_event, one at a time (vbill attest)")
    assert cli["samples"] == 2 and cli["cpu_ms_per_bundle"] > 0  # each includes a proof


def test_the_written_table_puts_the_previous_figures_beside_the_new_ones(tmp_path: Path) -> None:
    from vbill_tools.bench import Row, previous_figures, write_benchmarks

    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text("# Benchmarks\n\n## Other section\n\nkept\n")
    first = [Row("attest (prove + sign)", "vbill, native prover ×2", 50.0, 32, "", 90.0)]
    write_benchmarks(first, "vbill bench -n 32", doc, load_before=1.5)
    assert "Load average before the run: 1.50 (" in doc.read_text()
    key = ("attest (prove + sign)", "vbill, native prover ×2")
    assert previous_figures(doc).ms == {key: (50.0, 90.0)}
    slower = [
        Row("attest (prove + sign)", "vbill, native prover ×2", 80.0, 32, "", 120.0),
        Row("ingest one event per call", "vbill, SQLite", 2.0, 64, "", 2.0),
    ]
    write_benchmarks(slower, "vbill bench -n 32", doc)
    text = doc.read_text()
    assert "## Other section\n\nkept" in text and text.count("vbill bench: begin") == 1
    attest = next(line for line in text.splitlines() if line.startswith("| attest"))
    # ms, CPU ms, per second, previous ms, previous / now in CPU time (below 1.0×: slower)
    assert attest.split(" | ")[2:7] == ["80.0", "120.0", "12.5", "50.0 (CPU 90.0)", "0.75× CPU"]
    ingest = next(line for line in text.splitlines() if line.startswith("| ingest"))
    assert ingest.split(" | ")[5:7] == ["", ""]  # nothing to compare with yet
    assert previous_figures(doc).ms[key] == (80.0, 120.0)
    doc.write_text(doc.read_text().replace("| 120.0 |", "|  |"))  # a run without CPU figures
    write_benchmarks(slower, "vbill bench -n 32", doc)
    attest = next(line for line in doc.read_text().splitlines() if line.startswith("| attest"))
    assert attest.split(" | ")[5:7] == ["80.0", "1.00×"]  # wall against wall
