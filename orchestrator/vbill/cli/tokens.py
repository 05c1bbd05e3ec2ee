"""`vbill tokens issue|revoke|list TENANT`: the operator's tenant-scoped API tokens.

Works on the local store, like `vbill accounts`; the service's POST|DELETE
/api/vdi/billing/accounts/{tenant}/tokens do the same over HTTP.
"""

from __future__ import annotations

import datetime as dt

import click

from vbill.cli.output import emit, json_option
from vbill.cli.service import _store as local_store
from vbill.errors import InputError
from vbill.ledger import tokens as tokenlib


@click.group()
def tokens() -> None:
    """Tenant API tokens: a tenant reads its own bundles, account and receipts with one."""


@tokens.command("issue")
@click.argument("tenant")
@json_option
def tokens_issue(tenant: str, as_json: bool) -> None:
    """Issue a token for TENANT; it is shown once and only its hash is kept."""
    issued = tokenlib.issue(local_store(), tenant)
    emit(
        issued.__dict__,
        as_json,
        f"{issued.token}\n(token {issued.token_id} for {tenant}; shown once: give it to the "
        "tenant now; it is sent as `Authorization: Bearer TOKEN`)",
    )


@tokens.command("revoke")
@click.argument("tenant")
@click.option("--token-id", default=None, help="Revoke only this token (default: all).")
@json_option
def tokens_revoke(tenant: str, token_id: str | None, as_json: bool) -> None:
    """Revoke TENANT's tokens (all, or one with --token-id)."""
    store = local_store()
    if store.tenant(tenant) is None:
        raise InputError("tenant", f"no account for {tenant!r}")
    n = store.revoke_tokens(tenant, token_id)
    emit({"tenant_id": tenant, "revoked": n}, as_json, f"revoked {n} token(s) of {tenant}")


@tokens.command("list")
@click.argument("tenant")
@json_option
def tokens_list(tenant: str, as_json: bool) -> None:
    """TENANT's tokens by id, with when they were issued and revoked (never the tokens)."""
    rows = local_store().tokens(tenant)
    emit(
        rows,
        as_json,
        "\n".join(
            f"{r['token_id']}  issued {_when(r['created_at'])}"
            + (f"  revoked {_when(r['revoked_at'])}" if r["revoked_at"] else "  active")
            for r in rows
        )
        or f"no tokens for {tenant}",
    )


def _when(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


COMMANDS = (tokens,)
