"""`vbill serve` and `vbill accounts`: the service verbs of the CLI (docs/cli.md)."""

from __future__ import annotations

import logging
import os

import click

from vbill import paths
from vbill.attest import new_account
from vbill.cli.output import emit, json_option
from vbill.errors import InputError
from vbill.ledger.store import Limits, Store, open_store
from vbill.service.settings import Settings


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8080, show_default=True, type=int, help="TCP port.")
@click.option(
    "--dev",
    is_flag=True,
    help="Local development: create the attester key and a local attest secret if missing.",
)
@click.option(
    "--network",
    default=None,
    help="Settle ETH bundles on this network (local, horizen-testnet, horizen-mainnet).",
)
@click.option("--rpc-url", default=None, help="Override the network's RPC URL.")
@click.option("--settlement", "settlement_address", default=None, help="Settlement contract.")
@click.option("--workers", "prover_workers", type=int, default=None, help="Prover processes.")
def serve(
    host: str,
    port: int,
    dev: bool,
    network: str | None,
    rpc_url: str | None,
    settlement_address: str | None,
    prover_workers: int | None,
) -> None:
    """Run the HTTP service (attest, verify, transparency log, accounts, settlement).

    Needs VDI_ATTEST_SECRET (env or $VBILL_HOME/service.json) unless --dev.
    """
    import uvicorn

    from vbill.service import create_app

    settings = Settings.from_env(
        dev=dev,
        network=network,
        rpc_url=rpc_url,
        settlement_address=settlement_address,
        prover_workers=prover_workers,
    ).resolved()  # fail here, with exit 3, rather than inside uvicorn's startup
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


@click.group()
def accounts() -> None:
    """Tenant accounts: salts, tenant keys, limits (kept in $VBILL_HOME)."""


def _store() -> Store:
    from vbill.bundle.keys import Attester, attester_key_path

    key = Attester.load(attester_key_path()).account if attester_key_path().exists() else None
    return open_store(os.environ.get("DATABASE_URL"), home=paths.vbill_home(), log_key=key)


@accounts.command("add")
@click.argument("tenant")
@json_option
def accounts_add(tenant: str, as_json: bool) -> None:
    """Onboard TENANT: a fresh random account salt and its tenant key."""
    if not tenant.strip():
        raise InputError("tenant", "must not be empty")
    salt, key = new_account(tenant)
    t = _store().add_tenant(tenant, salt, key)
    emit(
        {"tenant_id": t.tenant_id, "tenant_key": str(t.tenant_key), "account_salt": str(salt)},
        as_json,
        f"tenant {t.tenant_id}: tenant_key {t.tenant_key}\n"
        f"an attester opens it on chain (vbill account open --tenant-key {t.tenant_key} "
        f"--controller ADDR), then it is funded with deposit({t.tenant_key})",
    )


@accounts.command("show")
@click.argument("tenant")
@json_option
def accounts_show(tenant: str, as_json: bool) -> None:
    """Balance (wei) and limits of TENANT."""
    store = _store()
    t = store.tenant(tenant)
    if t is None:
        raise InputError("tenant", f"no account for {tenant!r}")
    bal, lim = store.balance(tenant), store.limits(tenant)
    data = {
        "tenant_id": tenant,
        "tenant_key": str(t.tenant_key),
        "onchain_status": t.onchain_status,
        "available_wei": str(bal.available_wei),
        "reserved_wei": str(bal.reserved_wei),
        "total_wei": str(bal.total_wei),
        "per_request_micros": lim.per_request_micros,
        "daily_micros": lim.daily_micros,
    }
    emit(data, as_json, "\n".join(f"{k:<20} {v}" for k, v in data.items()))


@accounts.command("limits")
@click.argument("tenant")
@click.option("--per-request", type=click.IntRange(min=0), default=None, help="micro-ETH")
@click.option("--daily", type=click.IntRange(min=0), default=None, help="micro-ETH")
@json_option
def accounts_limits(tenant: str, per_request: int | None, daily: int | None, as_json: bool) -> None:
    """Set TENANT's per-request and daily spending limits (omitted = no limit)."""
    store = _store()
    if store.tenant(tenant) is None:
        raise InputError("tenant", f"no account for {tenant!r}")
    store.set_limits(tenant, Limits(per_request, daily))
    emit(
        {"tenant_id": tenant, "per_request_micros": per_request, "daily_micros": daily},
        as_json,
        f"limits for {tenant}: per request {per_request}, daily {daily}",
    )


COMMANDS = (
    serve,
    accounts,
)
