"""`vbill keys`, `attest`, `verify`, `prove`: the bundle verbs of the CLI (docs/cli.md)."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.progress import Progress

from vbill import jsonio, paths
from vbill.bindings.registry import event_binding
from vbill.bundle.keys import Attester, attester_key_path
from vbill.cli.output import emit, json_option
from vbill.errors import InputError, VerificationFailed, printable
from vbill.models import VerifyResult
from vbill.verify.correction import is_correction_document, verify_correction
from vbill.verify.trust import TrustSet, default_trust
from vbill.verify.verify import (
    bundle_problem,
    default_check,
    py_ecc_check,
    request_from_bundle,
    unreadable_result,
    verify_bundle,
    verify_request,
)
from vbill.zk.prover import Prover

F = TypeVar("F", bound=Callable[..., Any])


def read_json(path: Path, what: str) -> Any:
    """A JSON file the user named; exit 2 "cannot read PATH: why" if it is not one."""
    return jsonio.read_file(path, what)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write through a temp file and rename, so a failure never leaves half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


@click.group()
def keys() -> None:
    """Manage the attester key ($VBILL_HOME/attester.key, mode 0600)."""


@keys.command("new")
@click.option(
    "--force",
    is_flag=True,
    help="Replace an existing key (bundles it signed stay valid "
    "only while its address is trusted).",
)
@json_option
def keys_new(force: bool, as_json: bool) -> None:
    """Create the attester key. Prints its address, never the key."""
    attester = Attester.new(attester_key_path(), overwrite=force)
    emit(
        {"address": attester.address, "path": str(attester_key_path())},
        as_json,
        f"attester {attester.address} written to {attester_key_path()} (mode 0600)",
    )


@keys.command("show")
@json_option
def keys_show(as_json: bool) -> None:
    """Print the attester address (the key itself is never printed)."""
    attester = Attester.load()
    emit({"address": attester.address}, as_json, attester.address)


@keys.command("rotate")
@click.option("--reason", default="key rotation", show_default=True, help="Kept in the list.")
@click.option(
    "--compromised",
    is_flag=True,
    help="Revoke the old key instead of retiring it: every bundle it ever signed is invalid.",
)
@json_option
def keys_rotate(reason: str, compromised: bool, as_json: bool) -> None:
    """Replace the attester key. The old key is retired from now on (bundles logged before
    stay valid) or, with --compromised, revoked. Then restart `vbill serve`; with a chain,
    register the new address (`vbill attester add ADDR`, owner) and fund it for gas."""
    from vbill.bundle.rotation import rotate
    from vbill.ledger.store import open_store

    home = paths.vbill_home()
    store = open_store(os.environ.get("DATABASE_URL"), home=home)
    try:
        r = rotate(home, store, reason=reason, compromised=compromised)
    finally:
        store.close()
    verb = "revoked" if r.compromised else f"retired from {r.at_ms} ms"
    emit(
        {
            "old_address": r.old_address,
            "new_address": r.new_address,
            "retired_at": None if r.compromised else r.at_ms,
            "revoked": r.compromised,
        },
        as_json,
        f"attester {r.old_address} {verb}; new attester {r.new_address}\n"
        "restart `vbill serve`; with a chain, register the new address (vbill attester add) "
        "and fund it for gas",
    )


@click.command()
@click.argument("requests", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="Bundle file to write (one request), or a directory (several).",
)
@json_option
def attest(requests: tuple[Path, ...], output: Path | None, as_json: bool) -> None:
    """Sign, log and prove billable events (attest request JSON files, docs/examples/).

    Each event is attested once: the same event_id with the same payload returns the stored
    bundle; with a different payload it is refused. State lives in $VBILL_HOME.

    \b
    Example:
      vbill attest docs/examples/usd-linear.json -o bundle.json
    """
    from vbill.attest import attest_event
    from vbill.ingest import close_provers, open_provers
    from vbill.ledger.store import open_store

    if len(requests) > 1 and output is not None and output.suffix == ".json":
        raise InputError("--output", "give a directory when attesting several requests")
    bodies = [read_json(path, str(path)) for path in requests]
    attester = Attester.load()
    # the provers of the requests' bindings (exit 3 naming the missing file of one not set up)
    provers = open_provers(versions=[event_binding(b).version for b in bodies])
    store = open_store(log_key=attester.account)
    results = []
    with (
        contextlib.closing(store),
        Progress(transient=True, disable=len(bodies) < 2) as bar,
    ):
        try:
            task = bar.add_task("attesting", total=len(bodies))
            for body in bodies:
                results.append(attest_event(body, store=store, attester=attester, provers=provers))
                bar.advance(task)
        finally:
            close_provers(provers)
    for done in results:
        bundle = done.stored.bundle
        target = output
        if output is not None and (len(results) > 1 or output.is_dir()):
            output.mkdir(parents=True, exist_ok=True)
            target = output / f"{done.stored.tenant_id}.{done.stored.event_id}.bundle.json"
        if target is not None:
            write_json_atomic(target, bundle)
        summary = {
            "event_id": done.stored.event_id,
            "expected_charge_micros": bundle["billing"]["expected_charge_micros"],
            "created": done.created,
            "bundle": str(target) if target else None,
        }
        if as_json:
            click.echo(json.dumps(summary if target else bundle, indent=2))
        elif target is None:
            click.echo(json.dumps(bundle, indent=2))
        else:
            state = "attested" if done.created else "already attested (stored bundle)"
            click.echo(
                f"{done.stored.event_id}: {state}, charge "
                f"{summary['expected_charge_micros']} micros -> {target}"
            )


def _trust(attesters: tuple[str, ...], vkeys: tuple[Path, ...]) -> TrustSet:
    return default_trust().with_(attesters=attesters, vkey_files=vkeys)


def trust_options(vkey_example: str = "") -> Callable[[F], F]:
    """`--trust-attester` and `--vkey` (parameters `attesters`, `vkeys`, for `_trust`), the same
    on every verb that verifies; `vkey_example` is put in the --vkey help."""
    example = f" (e.g. {vkey_example})" if vkey_example else ""

    def add(f: F) -> F:
        f = click.option(
            "--vkey",
            "vkeys",
            multiple=True,
            type=click.Path(exists=True, path_type=Path),
            help=f"Also trust this verification key file{example}. Repeatable.",
        )(f)
        return click.option(
            "--trust-attester",
            "attesters",
            multiple=True,
            metavar="ADDRESS",
            help="Also trust this attester (and log signer) address. Repeatable.",
        )(f)

    return add


def _summary(name: str, result: VerifyResult) -> str:
    lines = [f"{name}: {'VALID' if result.valid else 'INVALID'}"]
    lines += [f"  WARNING: {w}" for w in result.warnings]
    for label, verdict in (
        ("signature + log", result.verification),
        ("billing check", result.billing_check),
        ("in-circuit binding", result.incircuit_binding_verification),
    ):
        mark = "ok" if verdict.valid else f"FAIL ({verdict.reason})"
        lines.append(f"  {label:<20} {mark}")
    binding = result.incircuit_binding_verification
    if binding.commitment_digest:
        lines.append(f"  commitment           {binding.commitment_digest}")
    return "\n".join(lines)


@click.command()
@click.argument("bundles", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--batch",
    "batch_source",
    type=click.Path(exists=True, path_type=Path),
    help="Verify every bundle in a directory (*.json) or a JSON-lines file, with one "
    "multi-pairing per chunk (month-end close). Prints a summary and the invalid ones.",
)
@trust_options()
@click.option(
    "--reference",
    is_flag=True,
    help="Verify the Groth16 proof with the pure-Python py_ecc reference (slow).",
)
@click.option(
    "--billed",
    "billed_path",
    type=click.Path(exists=True, path_type=Path),
    help="A dispute: check this billing v2 record (the invoice line) against the one bundle's "
    "attested record; the billing check fails if the billed charge or record differs.",
)
@json_option
def verify(
    bundles: tuple[Path, ...],
    batch_source: Path | None,
    attesters: tuple[str, ...],
    vkeys: tuple[Path, ...],
    reference: bool,
    billed_path: Path | None,
    as_json: bool,
) -> None:
    """Verify bundle files (and correction documents) offline; exit 0 if all are valid.

    Trusted by default: build/vkey.json (if it matches build/manifest.json), the local attester
    key, $VBILL_HOME/trust.json and $VBILL_HOME/revocation.json.

    \b
    Examples:
      vbill verify bundle.json
      vbill verify --json bundle.json           the three verdicts (docs/protocol.md §9)
      vbill verify --batch bundles/             a month of bundles, one summary
      vbill verify bundle.json --billed line.json   the invoice line against the bundle
    """
    trust = _trust(attesters, vkeys)
    if billed_path is not None and (batch_source is not None or len(bundles) != 1):
        raise InputError("--billed", "give exactly one bundle file with --billed")
    billed = read_json(billed_path, "--billed") if billed_path is not None else None
    if batch_source is not None:
        if bundles:
            raise InputError("--batch", "give either bundle files or --batch, not both")
        _verify_batch(batch_source, trust, as_json)
        return
    if not bundles:
        raise InputError("BUNDLES", "give at least one bundle file (or --batch DIR|FILE.jsonl)")
    results: dict[str, VerifyResult] = {}
    check = py_ecc_check if reference else default_check()
    # An unreadable file is a usage error (exit 2), never a judged-invalid bundle: a typo
    # must not look like a forgery.
    loaded = [read_json(path, str(path)) for path in bundles]
    with Progress(transient=True, disable=len(bundles) < 2) as bar:
        task = bar.add_task("verifying", total=len(bundles))
        for path, data in zip(bundles, loaded, strict=True):
            if billed is None and is_correction_document(data):
                results[str(path)] = verify_correction(data, trust=trust, check=check)
            elif billed is None:
                results[str(path)] = verify_bundle(data, trust=trust, check=check)
            else:
                data = data if isinstance(data, dict) else {}
                body = request_from_bundle(data)
                body["billed_billing_v2"] = billed
                why = bundle_problem(data)
                results[str(path)] = (
                    unreadable_result(why)
                    if why is not None
                    else verify_request(body, trust=trust, check=check)
                )
            bar.advance(task)
    if as_json:
        out = {k: v.model_dump() for k, v in results.items()}
        emit(out[str(bundles[0])] if len(bundles) == 1 else out, True)
    else:
        for name, result in results.items():
            click.echo(printable(_summary(name, result)))
    if not all(r.valid for r in results.values()):
        raise click.exceptions.Exit(VerificationFailed.exit_code)


def _verify_batch(source: Path, trust: TrustSet, as_json: bool) -> None:
    import time

    from vbill.verify.batch import iter_source, native_batch_check, verify_many, worker_batch_check
    from vbill.verify.verify import native_available

    total, invalid = 0, []
    started = time.perf_counter()
    prover = Prover(workers=1, zkey=None, vkey=None)  # starts only if used (no native build)
    check = native_batch_check if native_available() else worker_batch_check(prover)
    with contextlib.closing(prover), Progress(transient=True) as bar:
        task = bar.add_task("verifying", total=None)
        for name, result in verify_many(iter_source(source), trust=trust, check=check):
            total += 1
            if not result.valid:
                reasons = {
                    k: v.reason
                    for k, v in (
                        ("verification", result.verification),
                        ("billing_check", result.billing_check),
                        ("incircuit_binding_verification", result.incircuit_binding_verification),
                    )
                    if not v.valid
                }
                invalid.append({"bundle": name, "reasons": reasons})
            bar.advance(task)
    seconds = time.perf_counter() - started
    summary = {
        "total": total,
        "valid": total - len(invalid),
        "invalid": invalid,
        "seconds": round(seconds, 3),
        "ms_per_bundle": round(seconds * 1000 / total, 3) if total else None,
    }
    human = [f"{total - len(invalid)} of {total} bundles valid ({seconds:.1f} s)"]
    human += [
        f"INVALID {i['bundle']}: " + "; ".join(f"{k}: {v}" for k, v in i["reasons"].items())
        for i in invalid
    ]
    emit(summary, as_json, "\n".join(human))
    if invalid or total == 0:
        raise click.exceptions.Exit(VerificationFailed.exit_code)


@click.command()
@click.argument("input_file", type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write proof here.")
@json_option
def prove(input_file: Path, output: Path | None, as_json: bool) -> None:
    """Prove a raw circuit input (decimal strings) without signing; for circuit engineers."""
    circuit_input = read_json(input_file, "input")
    if not isinstance(circuit_input, dict):
        raise InputError("input", "must be a JSON object of signal names to decimal strings")
    with Prover(workers=1) as prover:
        proof = prover.prove(circuit_input)
    data = {"proof": proof.proof, "public_signals": proof.public_signals}
    if output:
        write_json_atomic(output, data)
    emit(data, as_json or output is None, None)
    if output and not as_json:
        click.echo(f"proof written to {output}")


@click.command()
@click.option(
    "-n", "--bundles", default=16, show_default=True, help="Bundles per throughput measurement."
)
@click.option(
    "--samples",
    default=2,
    show_default=True,
    help="Samples for the slow reference tools (snarkjs CLI, py_ecc).",
)
@click.option(
    "--write/--no-write",
    default=True,
    show_default=True,
    help="Write the table into BENCHMARKS.md.",
)
@click.option(
    "--references/--no-references",
    default=True,
    show_default=True,
    help="Also measure the reference tools (snarkjs CLI, snarkjs in-process, py_ecc).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Prover workers (default: one per core).",
)
@json_option
def bench(
    bundles: int, samples: int, write: bool, references: bool, workers: int | None, as_json: bool
) -> None:
    """Measure prove, verify and ingest per bundle: vbill (v1, v2) vs snarkjs vs py_ecc.

    Runs everything once on the same bundles and prints one table, with the figures of
    BENCHMARKS.md's bench section beside it (previous / now below 1.0× is a regression) and
    ratios against the snarkjs CLI; with --write (default) the table replaces that section.
    """
    from vbill_tools import bench as benchmark

    load_before = os.getloadavg()[0]
    rows = benchmark.run(
        bundles,
        slow_samples=samples,
        progress=lambda m: click.echo(f"… {m}", err=True),
        references=references,
        workers=workers,
    )
    previous = benchmark.previous_figures()
    if write:
        command = f"vbill bench -n {bundles} --samples {samples}"
        if not references:
            command += " --no-references"
        if workers:
            command += f" --workers {workers}"
        written = benchmark.write_benchmarks(rows, command, load_before=load_before)
        click.echo(f"written to {written}", err=True)
    if as_json:
        emit(
            [
                {**r.__dict__, "previous": previous.ms.get((r.operation, r.implementation))}
                for r in rows
            ],
            True,
        )
    else:
        click.echo(benchmark.table(rows, previous))


COMMANDS = (
    keys,
    attest,
    verify,
    prove,
    bench,
)
