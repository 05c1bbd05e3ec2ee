"""`vbill statement`: verify a billing window's chain of metered bundles as one invoice line."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from vbill.cli.bundle import _trust, read_json, trust_options, write_json_atomic
from vbill.cli.output import emit, json_option
from vbill.errors import InputError, VerificationFailed
from vbill.verify.statement import (
    Statement,
    is_statement_document,
    statement_document,
    verify_statement,
)
from vbill.verify.verify import default_check, py_ecc_check


def _seq(data: Any) -> float:
    try:
        return int(data["billing"]["window"]["seq"])
    except (KeyError, TypeError, ValueError):
        return float("inf")


def from_paths(
    sources: tuple[Path, ...],
) -> tuple[list[tuple[str, Any]], dict[str, Any] | None, Any]:
    """(name, bundle) in chain order, a statement document's summary if one was given, and
    its close record (None if it has none).

    Files and .jsonl lines keep the order given (an out-of-order chain fails); a directory
    has no order, so its *.json bundles are put in seq order first."""
    from vbill.verify.batch import Unreadable, iter_source

    items: list[tuple[str, Any]] = []
    claimed = close = None
    for source in sources:
        if source.is_dir():
            found = list(iter_source(source))
            items += sorted(found, key=lambda item: _seq(item[1]))
        elif source.suffix == ".jsonl":
            items += list(iter_source(source))
        else:
            data = read_json(source, str(source))
            if is_statement_document(data):
                if len(sources) > 1:
                    raise InputError(str(source), "give a statement document on its own")
                claimed = {k: v for k, v in data.items() if k not in ("bundles", "close")}
                close = data.get("close")
                bundles = data.get("bundles")
                if not isinstance(bundles, list):
                    raise InputError(f"{source}: bundles", "must be a list of bundles")
                items += [(f"{source}: bundles[{i}]", b) for i, b in enumerate(bundles)]
            else:
                items.append((str(source), data))
    items = [(n, {} if isinstance(d, Unreadable) else d) for n, d in items]
    return items, claimed, close


def from_store(
    tenant: str, window: str, tariff_id: str | None
) -> tuple[list[tuple[str, Any]], dict[str, Any] | None]:
    """A window's bundles from the store in seq order, and its close record if it is closed."""
    from vbill.ledger.store import open_store

    store = open_store(os.environ.get("DATABASE_URL"))
    try:
        if tariff_id is None:
            tariffs = store.window_tariffs(tenant, window)
            if len(tariffs) != 1:
                choices = ", ".join(tariffs) or "none"
                raise InputError(
                    "--tariff-id", f"window {window!r} of {tenant!r} has tariffs: {choices}"
                )
            tariff_id = tariffs[0]
        items = store.statement_items((tenant, window, tariff_id))  # corrections too
        close = store.window_close((tenant, window, tariff_id))
    finally:
        store.close()
    return items, close


def _human(st: Statement) -> str:
    head = f"{st.tenant_id} / {st.billing_window_id} / {st.tariff_id}"
    if st.closed and st.close is not None:
        head += f" (closed at seq {st.close.get('last_seq')})"
    else:
        head += " (open)"
    if not st.valid:
        lines = [f"statement {head}: INVALID ({st.events} bundles)"]
        lines += [f"  {p.kind}: {p.message}" for p in st.problems]
        if not st.problems:
            lines.append("  no bundles")
        return "\n".join(lines)
    lines = [
        f"statement {head}: VALID",
        f"  events               {st.events}",
        f"  total                {st.total_micros} micros {st.currency}",
    ]
    lines += [f"  {name:<20} {units} units" for name, units in st.totals_by_dimension.items()]
    lines += [
        f"  correction {c['correction_id']} of {c['corrects']}: credit {c['credit_micros']} "
        f"micros ({c['reason']})"
        for c in st.corrections
    ]
    return "\n".join(lines)


@click.command()
@click.argument("sources", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--store",
    "store_window",
    nargs=2,
    metavar="TENANT WINDOW",
    help="Read the window's bundles from the store ($VBILL_HOME or DATABASE_URL), in seq order.",
)
@click.option("--tariff-id", help="The window's tariff (needed if it has several).")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="Write the statement document (bundles + summary) to keep with the invoice.",
)
@trust_options("build/vkey-v2.json")
@click.option("--reference", is_flag=True, help="Groth16 by the py_ecc reference (slow).")
@json_option
def statement(
    sources: tuple[Path, ...],
    store_window: tuple[str, str] | None,
    tariff_id: str | None,
    output: Path | None,
    attesters: tuple[str, ...],
    vkeys: tuple[Path, ...],
    reference: bool,
    as_json: bool,
) -> None:
    """Verify a billing window's statement; exit 0 if it holds, 1 if not.

    Every bundle must be valid, belong to one (tenant, billing window, tariff_id), and their
    seq run 1..n from the genesis state, each continuing the previous state; a closed
    window's statement must end exactly at its close record's seq. Prints the total
    (the last state's cumulative charge), per-dimension totals and the count, or the first bad
    link. SOURCES: bundle files (in chain order), a directory, a .jsonl, or a statement
    document written by -o.

    \b
    Examples:
      vbill statement --store tenant_acme 2026-05 -o acme-2026-05.statement.json
      vbill statement acme-2026-05.statement.json      re-verify it offline
      vbill statement --json bundles/
    """
    if (store_window is None) == (not sources):
        raise InputError("SOURCES", "give bundle files, a directory or a .jsonl, or --store")
    claimed = None
    if store_window is not None:
        items, close = from_store(*store_window, tariff_id)
    else:
        items, claimed, close = from_paths(sources)
    check = py_ecc_check if reference else default_check()
    st = verify_statement(
        items, trust=_trust(attesters, vkeys), check=check, claimed=claimed, close=close
    )
    if output is not None and st.valid:  # an invalid chain is never an invoice document
        write_json_atomic(output, statement_document([b for _, b in items], st))
    emit(st.summary(), as_json, _human(st))
    if output is not None and not as_json:
        click.echo(f"statement {'written to' if st.valid else 'NOT written:'} {output}")
    if not st.valid:
        raise click.exceptions.Exit(VerificationFailed.exit_code)


COMMANDS = (statement,)
