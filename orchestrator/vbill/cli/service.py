"""`vbill serve` and `vbill accounts`: the service verbs of the CLI (docs/cli.md)."""

from __future__ import annotations

import dataclasses
import logging
import os
import socket

import click

from vbill import paths
from vbill.cli.output import emit, json_option
from vbill.errors import InputError, ToolError
from vbill.ingest import new_account
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
@click.option(
    "--local-workers",
    "local_provers",
    type=click.IntRange(0),
    default=None,
    help="Proving workers inside this process (default: one per prover process; 0 when "
    "separate `vbill worker` processes prove).",
)
@click.option(
    "--close-grace-days",
    type=click.FloatRange(0, 3660),
    default=None,
    help="Close period windows (YYYY-MM, YYYY-MM-DD) this many days after their period "
    "ends [default: 3, or close_grace_days in service.json].",
)
@click.option("--no-auto-close", is_flag=True, help="Never close windows automatically.")
def serve(
    host: str,
    port: int,
    dev: bool,
    network: str | None,
    rpc_url: str | None,
    settlement_address: str | None,
    prover_workers: int | None,
    local_provers: int | None,
    close_grace_days: float | None,
    no_auto_close: bool,
) -> None:
    """Run the HTTP service (attest, verify, transparency log, accounts, settlement).

    Needs VDI_ATTEST_SECRET (env or $VBILL_HOME/service.json) unless --dev. Every start-up
    problem (secret, attester key, port in use, store) is one line on stderr and exit 3.
    """
    import uvicorn

    from vbill.service import create_app
    from vbill.service.app import build_state

    settings = Settings.from_env(
        dev=dev,
        network=network,
        rpc_url=rpc_url,
        settlement_address=settlement_address,
        prover_workers=prover_workers,
        local_provers=local_provers,
        close_grace_days=close_grace_days,
    ).resolved()  # fail here, with exit 3, rather than inside uvicorn's startup
    if no_auto_close:
        settings = dataclasses.replace(settings, close_grace_days=None)
    sock = _bind(host, port)  # before anything is started or logged as up
    state = build_state(settings)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    server = uvicorn.Server(uvicorn.Config(create_app(settings, prebuilt=state), log_level="info"))
    server.run(sockets=[sock])


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so a port in use is a one-line error (exit 3)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ToolError(
            f"cannot listen on {host}:{port}: {exc.strerror}; stop what uses it or pass --port"
        ) from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


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
@click.option("--per-request", type=click.IntRange(0, 2**64 - 1), default=None, help="micro-ETH")
@click.option("--daily", type=click.IntRange(0, 2**64 - 1), default=None, help="micro-ETH")
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
