"""`vbill correct` and `vbill void`: a proven credit for a wrong event (docs/cli.md,
docs/protocol-corrections.md)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import click

from vbill.cli.bundle import write_json_atomic
from vbill.cli.output import json_option
from vbill.errors import InputError


def _usage(pairs: tuple[str, ...]) -> dict[str, int] | None:
    """--usage DIM=UNITS, repeatable; None when not given (a void of every unit)."""
    if not pairs:
        return None
    out: dict[str, int] = {}
    for pair in pairs:
        name, sep, units = pair.partition("=")
        if not sep or not name or not units.isdigit():
            raise InputError("--usage", f"{pair!r}: give DIM=UNITS, e.g. output_tokens=100")
        if name in out:
            raise InputError("--usage", f"{name} given twice")
        out[name] = int(units)
    return out


def run_correction(
    event_id: str,
    tenant: str,
    usage: tuple[str, ...],
    reason: str,
    correction_id: str | None,
    output: Path | None,
    as_json: bool,
) -> None:
    from vbill.bundle.keys import Attester
    from vbill.correct import correct_event, summary
    from vbill.ledger.store import open_store

    body: dict[str, Any] = {
        "tenant_id": tenant,
        "corrects": event_id,
        "correction_id": correction_id or f"cor_{event_id}",
        "reason": reason,
    }
    units = _usage(usage)
    if units is not None:
        body["usage"] = units
    attester = Attester.load()
    store = open_store(log_key=attester.account)
    from vbill.ingest import open_if_built

    proving = open_if_built("correction_binding", 1)  # None: not built (a v1 void needs none)
    with contextlib.closing(proving.prover) if proving else contextlib.nullcontext():
        done = correct_event(body, store=store, attester=attester, proving=proving)
    if output is not None:
        write_json_atomic(output, done.stored.doc)
    out = {**summary(done.stored), "created": done.created, "file": str(output) if output else None}
    if as_json:
        click.echo(json.dumps(out, indent=2, sort_keys=True))
    elif output is None:
        click.echo(json.dumps(done.stored.doc, indent=2))
    else:
        state = "corrected" if done.created else "already corrected (stored correction)"
        click.echo(
            f"{event_id}: {state} by {out['correction_id']}, credit {out['credit_micros']} "
            f"micros -> {output}"
        )


_ID = click.option(
    "--id",
    "correction_id",
    metavar="CORRECTION_ID",
    help="The correction's id (idempotency key); default cor_EVENT_ID.",
)
_OUT = click.option(
    "-o", "--output", type=click.Path(path_type=Path), help="Write the correction document here."
)


@click.command()
@click.argument("event_id")
@click.option("--tenant", required=True, help="The tenant whose event is corrected.")
@click.option(
    "--usage",
    multiple=True,
    metavar="DIM=UNITS",
    help="Units taken back per dimension (repeatable); without it, every unit (a void).",
)
@click.option("--reason", required=True, help="Why: kept in the signed, logged record.")
@_ID
@_OUT
@json_option
def correct(
    event_id: str,
    tenant: str,
    usage: tuple[str, ...],
    reason: str,
    correction_id: str | None,
    output: Path | None,
    as_json: bool,
) -> None:
    """Correct an attested event with a proven credit; history is never edited.

    A metered event's correction is priced backwards from its window's state by the event's
    tariff (docs/protocol-corrections.md) and proved; a binding v1 event is voided whole.
    Each event is corrected once; the same --id again returns the stored correction.

    \b
    Examples:
      vbill correct inf_2 --tenant tenant_acme --reason "test call" -o cor.json
      vbill correct inf_3 --tenant tenant_acme --usage output_tokens=100 --reason "retry"
    """
    run_correction(event_id, tenant, usage, reason, correction_id, output, as_json)


@click.command()
@click.argument("event_id")
@click.option("--tenant", required=True, help="The tenant whose event is voided.")
@click.option("--reason", required=True, help="Why: kept in the signed, logged record.")
@_ID
@_OUT
@json_option
def void(
    event_id: str,
    tenant: str,
    reason: str,
    correction_id: str | None,
    output: Path | None,
    as_json: bool,
) -> None:
    """Void an attested event (either binding): `vbill correct` of every unit."""
    run_correction(event_id, tenant, (), reason, correction_id, output, as_json)


COMMANDS = (correct, void)
