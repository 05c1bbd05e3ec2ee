"""The `vbill` command line: verbs map to library functions; errors exit in one place (SPEC §9).

Exit codes: 0 success/valid, 1 verification failed/invalid, 2 usage or input error,
3 environment (missing tool or artefact, chain unreachable).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from . import __version__
from .errors import VbillError


class VbillGroup(click.Group):
    """Maps every VbillError to its exit code and a one-line message on stderr."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except VbillError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)


def emit(data: Any, as_json: bool, human: str | None = None) -> None:
    """Print `data` as JSON for scripts, or `human` text for people."""
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True))
    elif human is not None:
        click.echo(human)


json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


@click.group(cls=VbillGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vbill")
def main() -> None:
    """Verifiable usage billing: prove that each charge is what the tariff gives.

    \b
    Typical flow:
      vbill keys new                      create the attester key
      vbill attest request.json -o b.json prove and sign one billable event
      vbill verify b.json                 check a bundle offline (exit 1 if invalid)
      vbill chain up && vbill deploy      local anvil chain and contracts
      vbill account open --bundle b.json --controller ADDR
                                          an attester opens the tenant's account
      vbill deposit / vbill tariff accept the tenant funds it and accepts the tariff
      vbill settle b.json                 settle the charge on chain
      vbill serve                         the HTTP service (attest, verify, log)
    """


def _register() -> None:
    """Attach the verbs that live in their own modules (one module per job)."""
    # Each module defines click commands and registers them on `main` via `main.add_command`.
    import importlib

    for name in ("cli_bundle", "cli_setup", "cli_chain", "cli_service"):
        try:
            importlib.import_module(f"{__package__}.{name}")
        except ModuleNotFoundError as exc:  # a module not written yet must not break the rest
            if exc.name != f"{__package__}.{name}":
                raise


_register()

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
