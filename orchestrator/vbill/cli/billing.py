"""`vbill close` and `vbill invoice`: the end of a billing period (docs/cli.md)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from vbill.cli.bundle import _trust, trust_options
from vbill.cli.output import emit, json_option
from vbill.cli.statement import from_paths, from_store
from vbill.errors import InputError, VerificationFailed


@click.command()
@click.argument("tenant")
@click.argument("window")
@click.option("--tariff-id", help="The window's tariff (needed if it has several).")
@json_option
def close(tenant: str, window: str, tariff_id: str | None, as_json: bool) -> None:
    """Close a tenant's billing window: sign and log its close record.

    The record names the window, its last seq and state key and its totals; afterwards the
    window takes no more events or corrections (refused, naming the close), and its
    statement verifies only if it ends exactly there. Closing again prints the same record.

    \b
    Example:
      vbill close tenant_acme 2026-05 --json > acme-2026-05.close.json
    """
    from vbill.billing.closing import close_window, window_key
    from vbill.bundle.keys import Attester
    from vbill.ledger.store import NoWindow, open_store

    attester = Attester.load()
    store = open_store(os.environ.get("DATABASE_URL"), log_key=attester.account)
    try:
        key = window_key(store, tenant, window, tariff_id)
        closed = close_window(store, attester, key)
    except NoWindow as exc:
        raise InputError("WINDOW", str(exc)) from None
    finally:
        store.close()
    r = closed.record
    emit(
        {**r, "created": closed.created},
        as_json,
        f"window {tenant} / {window} / {r['tariff_id']} "
        f"{'closed' if closed.created else 'was already closed'} at seq {r['last_seq']}: "
        f"total {r['total_micros']} micros {r['currency']} (log leaf {r['receipt']['leaf_index']})",
    )


def _human(inv: dict[str, Any]) -> str:
    head = f"invoice {inv['tenant_id']} / {inv['billing_window_id']} / {inv['tariff_id']}"
    status = f"closed at seq {inv['close']['last_seq']}" if inv["closed"] else "OPEN"
    out = [f"{head} ({status}), {inv['events']} events, {inv['currency']}"]
    for line in inv["lines"]:
        if line["kind"] == "usage":
            what = f"{line['dimension']} tier {line['tier']} v{line['tariff_version']}"
            out.append(
                f"  {what:<32} {line['units']:>12} × {line['unit_price_micros']:>10} "
                f"= {line['amount_micros']:>16} micros"
            )
        else:
            out.append(f"  {line['description'][:60]:<60} {line['amount_micros']:>16} micros")
    out.append(
        f"  {'total':<60} {inv['total_micros']:>16} micros = {inv['total']} {inv['currency']}"
    )
    return "\n".join(out)


@click.command()
@click.argument("source", required=False, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--store",
    "store_window",
    nargs=2,
    metavar="TENANT WINDOW",
    help="Read the window (and its close record) from the store ($VBILL_HOME or DATABASE_URL).",
)
@click.option("--tariff-id", help="The window's tariff (needed if it has several).")
@click.option("--html", "html", type=click.Path(path_type=Path, dir_okay=False, writable=True),
              help="Also write the invoice "
              "as HTML (prints on A4).")  # fmt: skip
@trust_options("build/vkey-v2.json")
@json_option
def invoice(
    source: Path | None,
    store_window: tuple[str, str] | None,
    tariff_id: str | None,
    html: Path | None,
    attesters: tuple[str, ...],
    vkeys: tuple[Path, ...],
    as_json: bool,
) -> None:
    """The invoice of a window: its statement verified, then turned into lines.

    Lines per (tariff version, dimension, tier): units × unit price = exact amount (free
    allowances at price 0), then the rounding difference and each per-event clamp difference;
    their amount_micros sum exactly to total_micros. Exit 1 if the statement does not verify
    (there is then no invoice). SOURCE: a statement document (`vbill statement -o`).

    \b
    Examples:
      vbill invoice --store tenant_acme 2026-05 --html acme-2026-05.html
      vbill invoice acme-2026-05.statement.json --json
    """
    from vbill.billing.invoice import invoice_html, invoice_of
    from vbill.verify.statement import verify_statement
    from vbill.verify.verify import default_check

    if (store_window is None) == (source is None):
        raise InputError("SOURCE", "give a statement document or --store TENANT WINDOW")
    claimed = None
    if store_window is not None:
        items, close = from_store(*store_window, tariff_id)
    else:
        assert source is not None
        items, claimed, close = from_paths((source,))
    st = verify_statement(
        items, trust=_trust(attesters, vkeys), check=default_check(), claimed=claimed, close=close
    )
    if not st.valid:
        why = "\n".join(f"  {p.kind}: {p.message}" for p in st.problems) or "  no bundles"
        emit(st.summary(), as_json, "no invoice: the statement does not verify\n" + why)
        raise click.exceptions.Exit(VerificationFailed.exit_code)
    inv = invoice_of(st, [b for _, b in items])
    if html is not None:
        html.write_text(invoice_html(inv))
    emit(inv, as_json, _human(inv) + (f"\nHTML written to {html}" if html else ""))


COMMANDS = (close, invoice)
