"""The `vbill` command line: verbs map to library functions; errors exit in one place.

Exit codes (docs/cli.md): 0 success/valid, 1 verification failed/invalid, 2 usage or input
error, 3 environment (missing tool or artefact, chain unreachable).
"""

from __future__ import annotations

import sys
from typing import Any

import click

from vbill.cli import (
    billing,
    bundle,
    chain,
    correct,
    service,
    setup,
    statement,
    tokens,
    trust,
    webhooks,
    worker,
)
from vbill.errors import VbillError
from vbill.version import __version__


class VbillGroup(click.Group):
    """Maps every VbillError to its exit code and a one-line message on stderr."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except VbillError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)


@click.group(cls=VbillGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vbill")
def main() -> None:
    """Verifiable usage billing: prove that each charge is what the tariff gives.

    \b
    Typical flow (any currency):
      vbill keys new                      create the attester key
      vbill attest request.json -o b.json prove and sign one billable event
      vbill verify b.json                 check a bundle offline (exit 1 if invalid)
      vbill statement --store T W         a metered window's chain and its total
      vbill close T W / vbill invoice --store T W
                                          close a billing window; its invoice
      vbill correct EVENT --tenant T --reason R
                                          a proven credit for a wrong event
      vbill serve                         the HTTP service (attest, verify, log)

    \b
    An ETH charge is reserved from the tenant's balance when it is attested, so
    an ETH tariff's account is opened, funded and its tariff accepted first:
      vbill chain up && vbill deploy      local anvil chain and contracts
      vbill serve --network local         credits deposits, settles ETH charges
      POST /api/vdi/billing/accounts      opens the tenant's account: tenant key K
      vbill deposit --tenant-key K --eth 0.01
                                          the tenant funds it
      vbill tariff accept --tenant-key K --tariff-key TK
                                          and accepts the tariff (TK: POST
                                          …/accounts/T/tariff-key)
      vbill attest request.json -o b.json now within the balance; the service
                                          settles it (or: vbill settle b.json)
    """


for _module in (
    bundle,
    correct,
    setup,
    chain,
    service,
    tokens,
    trust,
    statement,
    billing,
    worker,
    webhooks,
):
    for _command in _module.COMMANDS:
        main.add_command(_command)

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
