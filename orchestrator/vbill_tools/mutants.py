"""`make mutants`: mutation testing of the security-critical modules (docs/testing.md).

For each module, pytest-gremlins mutates the source in memory (mutation switching: the tree is
never edited, so other processes keep reading the real code) and runs, per mutant, the tests
of a fast selection that cover the mutated line. A mutant that no test notices "survives".
Every survivor must be explained in tests/data/mutants_explained.json (an equivalent mutant, or
why no test can tell); the run fails on any unexplained one. A target may name the functions
that are its security-critical part (the store: its attest path); only their lines are
mutated (vbill_tools/gremlin_scope.py), and a report read later is judged on them alone.

    python -m vbill_tools.mutants                      all modules (hours on 2 cores)
    python -m vbill_tools.mutants --only charge,encoding
    python -m vbill_tools.mutants --only store --workers 2   store-*, two mutants at a time
    python -m vbill_tools.mutants --report-only        re-read build/mutants/*.json
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vbill import paths

from vbill_tools import gremlin_scope

OUT = paths.BUILD / "mutants"
EXPLAINED = paths.ROOT / "tests" / "data" / "mutants_explained.json"
GREMLINS_JSON = paths.ROOT / "coverage" / "gremlins" / "gremlins.json"
SRC = "orchestrator/vbill/"


@dataclass(frozen=True)
class Target:
    source: str
    tests: tuple[str, ...]
    mutant_timeout: int = 60  # seconds per mutant; the proof-backed selections need longer
    # Qualified names ("Ingestion.ingest_many", "_amount") of the definitions whose mutants count;
    # empty: the whole file. A nested definition counts if it or any enclosing one is named.
    scope: tuple[str, ...] = ()


# The store's attest path: from the request to the stored, logged, charged bundle and its
# proof: idempotency, the key's refusal, the spending checks, the window's seq, the log leaf
# and its signed head. Tenants, tokens, deposits and settlement are judged by their own tests.
# By repository module (vbill.ledger.*): each is a target of its own, `store-<module>`.
STORE_ATTEST_PATH = {
    "db": ("stored_amount", "json_or_none", "mapper", "EventLocks.hold"),
    "accounts": (
        "Charge.is_eth",
        "_seconds_to_utc_midnight",
        "_utc_day_start_ms",
        "Accounts._balance",
        "Accounts._spent_today",
        "Accounts.check_spend",
        "Accounts._check_chain_limits",
    ),
    "bundles": (
        "bundle_if",
        "same_or_conflict",
        "Bundles.find",
        "Bundles.get",
    ),
    "windows": ("Windows.window_head", "Windows.head", "Windows.advance"),
    "log": (
        "Log.require_key",
        "Log.appending",
        "Log.add",
        "Log.receipt",
        "Log.sign_head",
        "Log.sync",
    ),
    "ingestion": ("Ingestion.ingest_many", "Ingestion._ingested", "Ingestion.attach_proof"),
    "keys": ("Keys.revoke", "Keys.retire", "Keys.signing_refusal"),
}
# test_store_*: each piece of the attest path at its edge, on SQLite without proofs;
# test_ingest and test_metered_attest: the same through the service, with real proofs
STORE_TESTS = (
    "tests/ledger/test_store.py",
    "tests/ledger/test_store_limits.py",
    "tests/ledger/test_store_attest_path.py",
    "tests/ledger/test_store_ingest.py",
    "tests/ledger/test_concurrency.py",
    "tests/service/test_ingest.py",
    "tests/bundle/test_metered_attest.py",
)


# The fast test selection per module: the tests that judge that module's outputs directly.
TARGETS = {
    "charge": Target(SRC + "encode/charge.py", ("tests/encode/test_charge.py",)),
    # encoding's constants are consumed by charge.py (PRICE_SCALE): its tests judge them too
    "encoding": Target(
        SRC + "encode/encoding.py",
        ("tests/encode/test_encoding.py", "tests/encode/test_charge.py"),
        180,
    ),
    "translog": Target(SRC + "ledger/translog.py", ("tests/ledger/test_translog.py",)),
    **{
        f"store-{module}": Target(SRC + f"ledger/{module}.py", STORE_TESTS, 300, scope)
        for module, scope in STORE_ATTEST_PATH.items()
    },
    # test_attestation: the fast EIP-712 digest against eth_account, byte for byte
    "attestation": Target(
        SRC + "bundle/attestation.py",
        ("tests/bundle/test_attestation.py", "tests/verify/test_verify.py"),
        600,
    ),
    "trust": Target(
        SRC + "verify/trust.py",
        (
            "tests/verify/test_trust.py",
            "tests/verify/test_trust_document.py",
            "tests/verify/test_verify.py",
            "tests/cli/test_cli.py::test_default_trust_fails_closed_without_a_manifest_record",
        ),
        600,
    ),
    # test_metered_attest: the v2 records' own billing problems (window seq and after-state)
    "verify": Target(
        SRC + "verify/verify.py",
        (
            "tests/verify/test_verify.py",
            "tests/verify/test_dispute.py",
            "tests/bundle/test_metered_attest.py",
        ),
        600,
    ),
    # v1's recomputation, which verify/verify.py held before the binding plug-ins
    "verify_linear": Target(
        SRC + "verify/linear.py",
        ("tests/verify/test_verify.py", "tests/verify/test_dispute.py"),
        600,
    ),
}


def run(name: str, target: Target, workers: int = 1) -> Path:
    """Run pytest-gremlins on one module; returns the copy of its JSON report."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *target.tests]
    cmd += ["--gremlins", f"--gremlin-targets={target.source}", "--gremlin-report=console,json"]
    cmd += [f"--gremlin-mutant-timeout={target.mutant_timeout}"]
    if workers > 1:  # each worker runs its own mutant's tests: give it a core of its own
        cmd += [f"--gremlin-workers={workers}"]
    # the coverage pre-scan picks each mutant's tests; past its (120 s) default it gives up and
    # runs the whole selection per mutant, which the proof-backed selections cannot afford
    cmd += ["--gremlin-coverage-timeout=1800"]
    text = (paths.ROOT / target.source).read_text()  # as mutated, before any edit
    lines, owners = text.splitlines(), definitions_by_line(text)
    env = dict(os.environ)
    if target.scope:  # mutate the scope's lines only (vbill_tools/gremlin_scope.py)
        scoped = {n for n, d in owners.items() if in_scope(d, target.scope)}
        env[gremlin_scope.ENV] = f"{paths.ROOT / target.source}:{gremlin_scope.spans(scoped)}"
        cmd += ["-p", "vbill_tools.gremlin_scope"]
    print(f"mutants: {name}: {' '.join(cmd[1:])}", flush=True)
    GREMLINS_JSON.unlink(missing_ok=True)
    subprocess.run(cmd, cwd=paths.ROOT, env=env, check=False)
    if not GREMLINS_JSON.exists():
        raise SystemExit(f"mutants: {name}: pytest-gremlins wrote no report")
    report = json.loads(GREMLINS_JSON.read_text())
    for r in report["results"]:
        r["line_text"] = lines[r["line_number"] - 1].strip()
        r["definition"] = owners.get(r["line_number"], "<module>")
    OUT.mkdir(parents=True, exist_ok=True)
    out = OUT / f"{name}.json"
    out.write_text(json.dumps(report, indent=1) + "\n")
    return out


def definitions_by_line(source: str) -> dict[int, str]:
    """Each line's innermost enclosing def or class, by qualified name ("Ingestion._ingested");
    decorator lines belong to what they decorate. Module-level lines are absent."""
    owners: dict[int, str] = {}

    def walk(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = prefix + child.name
                first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                for line in range(first, (child.end_lineno or child.lineno) + 1):
                    owners[line] = name
                walk(child, name + ".")
            else:
                walk(child, prefix)

    walk(ast.parse(source), "")
    return owners


def in_scope(definition: str, scope: list[str] | tuple[str, ...]) -> bool:
    """Whether a mutant in `definition` counts: no scope means all do; else the definition
    or one that encloses it ("Store" for "Store.find") is named."""
    if not scope:
        return True
    parts = definition.split(".")
    return any(".".join(parts[:n]) in scope for n in range(1, len(parts) + 1))


def _key(result: dict[str, Any]) -> tuple[str, str, str]:
    """A survivor's identity that survives edits elsewhere in the file: the module, the
    mutated line's text and the mutation (line numbers move; the text rarely does)."""
    path = Path(result["file_path"])
    line = result.get("line_text") or path.read_text().splitlines()[result["line_number"] - 1]
    return path.name, line.strip(), result["description"]


def summarise(
    name: str,
    report: dict[str, Any],
    explained: dict[tuple[str, str, str], str],
    scope: tuple[str, ...] = (),
) -> list[str]:
    """Print one module's counts, survivors and errors; returns those without a written reason.

    A timeout counts as a kill, as in pytest-gremlins' own score: the plugin re-runs the
    mutant's selection unmutated and keeps the timeout only if that run finishes in time, so
    the mutant, not a slow test, hung. An error (the selection would not run even unmutated)
    judges nothing and, like a survivor, needs a written reason. With a `scope`, only the
    mutants inside it are judged; the others are counted by where they are.
    """
    s = report["summary"]
    print(
        f"{name:<12} {s['total']:>4} mutants  {s['zapped']:>4} killed  {s['timeout']:>3} "
        f"killed by timeout  {s['survived']:>3} survived  {s['error']:>3} error"
    )
    judged, outside = [], []
    for r in report["results"]:
        (judged if in_scope(r.get("definition", "<module>"), scope) else outside).append(r)
    if scope:
        alive = [r for r in outside if r["status"] in ("survived", "error")]
        print(
            f"    in scope ({len(scope)} definitions): {len(judged)} mutants, "
            f"{sum(r['status'] == 'survived' for r in judged)} survived; outside it: "
            f"{len(outside)} mutants, {len(alive)} survived or errored, not judged here"
        )
    unexplained = []
    for r in judged:
        if r["status"] not in ("survived", "error"):
            continue
        key = _key(r)
        reason = explained.get(key)
        where = f"{key[0]}:{r['line_number']} {key[2]!r} in `{key[1]}`"
        print(f"    {r['status']:<8} {where}\n      {reason or 'UNEXPLAINED'}")
        if reason is None:
            if r["status"] == "error":
                print("      " + (r.get("error_output") or "")[:300].replace("\n", "\n      "))
            unexplained.append(where)
    return unexplained


def load_explained() -> dict[tuple[str, str, str], str]:
    if not EXPLAINED.exists():
        return {}
    return {
        (e["file"], e["line"], e["mutation"]): e["reason"]
        for e in json.loads(EXPLAINED.read_text())
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vbill_tools.mutants", description=__doc__)
    ap.add_argument("--only", help=f"comma-separated subset of {','.join(TARGETS)}")
    ap.add_argument("--report-only", action="store_true", help="summarise build/mutants/*.json")
    ap.add_argument(
        "--workers",
        type=int,
        default=1,
        help="mutants tested at once (default 1; at most one "
        "per core, or the proof-backed selections hit their timeouts)",
    )
    args = ap.parse_args(argv)
    names = list(TARGETS)
    if args.only:  # a group's name ("store") stands for its targets ("store-bundles", …)
        parts = args.only.split(",")
        names = [n for p in parts for n in TARGETS if n == p or n.startswith(p + "-")]
        names += [p for p in parts if not any(n == p or n.startswith(p + "-") for n in TARGETS)]
    unknown = set(names) - set(TARGETS)
    if unknown:
        ap.error(f"unknown module(s): {', '.join(sorted(unknown))}")
    reports = {}
    for name in names:
        path = OUT / f"{name}.json" if args.report_only else run(name, TARGETS[name], args.workers)
        if path.exists():
            reports[name] = json.loads(path.read_text())
        else:
            print(f"{name:<12} not run (no {os.path.relpath(path, paths.ROOT)})")
    explained = load_explained()
    unexplained = [
        u for n, r in reports.items() for u in summarise(n, r, explained, TARGETS[n].scope)
    ]
    if unexplained:
        print(
            f"mutants: {len(unexplained)} unexplained survivor(s) or error(s); kill them with a "
            f"test, explain them in {os.path.relpath(EXPLAINED, paths.ROOT)}, or, for an error, "
            "raise the module's mutant_timeout in TARGETS or speed up its tests"
        )
    return 1 if unexplained else 0


if __name__ == "__main__":
    raise SystemExit(main())
