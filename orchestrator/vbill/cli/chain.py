"""`vbill chain up|down`, `deploy`, `account open`, `deposit`, `balance`, `limits set`,
`tariff accept`, `settle`, `receipt`, `attester revoke`: the on-chain verbs (docs/cli.md)."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import click

from vbill import chain as ch
from vbill import paths
from vbill.bundle.keys import Attester, attester_key_path
from vbill.chain.anvil import fund_local
from vbill.cli.output import emit, json_option
from vbill.errors import InputError, VerificationFailed


def network_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--network / --rpc-url / --keystore, turned into a connected `Chain` argument."""

    @click.option(
        "--network",
        "network_name",
        type=click.Choice(list(ch.NETWORKS)),
        default="local",
        show_default=True,
        help="Network preset; its chain id is checked before any transaction.",
    )
    @click.option(
        "--rpc-url",
        default=None,
        envvar="VBILL_RPC_URL",
        help="Override the preset's RPC URL (env VBILL_RPC_URL).",
    )
    @click.option(
        "--keystore",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        help="Encrypted key file (password: env VBILL_KEYSTORE_PASSWORD or prompt). "
        "Otherwise env VBILL_PRIVATE_KEY; on local, anvil's first dev account.",
    )
    @functools.wraps(fn)
    def wrapper(
        network_name: str, rpc_url: str | None, keystore: Path | None, **kwargs: Any
    ) -> Any:
        password = None
        if keystore is not None and "VBILL_KEYSTORE_PASSWORD" not in os.environ:
            password = click.prompt("keystore password", hide_input=True, err=True)
        return fn(ch.connect(network_name, rpc_url, keystore=keystore, password=password), **kwargs)

    return wrapper


def tenant_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--tenant-key N or --bundle FILE (whose public signals name the tenant key)."""

    @click.option("--tenant-key", default=None, help="The account's tenant_key (decimal).")
    @click.option(
        "--bundle",
        "bundle_path",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        help="Take the tenant key (and tariff key) from this bundle.",
    )
    @functools.wraps(fn)
    def wrapper(*args: Any, tenant_key: str | None, bundle_path: Path | None, **kwargs: Any) -> Any:
        settlement = None
        if bundle_path is not None:
            settlement = ch.settlement_from_bundle(ch.read_bundle(bundle_path), str(bundle_path))
        if tenant_key is not None:
            key = ch.parse_uint(tenant_key, "tenant-key", ch.R)
        elif settlement is not None:
            key = settlement.signals[4]
        else:
            raise InputError("tenant-key", "give --tenant-key or --bundle")
        return fn(*args, tenant_key=key, settlement=settlement, **kwargs)

    return wrapper


def parse_eth(value: str, field: str) -> int:
    """Decimal ETH → wei, exactly (no float)."""
    try:
        wei = Decimal(value) * ch.WEI_PER_ETH
    except InvalidOperation:
        raise InputError(field, f"{value!r} is not a decimal amount of ETH") from None
    if wei < 0 or wei != wei.to_integral_value():
        raise InputError(field, f"{value!r} is negative or finer than 1 wei")
    return int(wei)


def _tx(result: ch.TxResult) -> dict[str, Any]:
    return {
        "transaction_hash": result.transaction_hash,
        "block_number": result.block_number,
        "gas_used": result.gas_used,
    }


# ------------------------------------------------------------------------------ chain up/down


@click.group("chain")
def chain_group() -> None:
    """The local anvil chain (node_modules/.bin/anvil, chain id 31337)."""


@chain_group.command("up")
@click.option("--port", default=8545, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--block-time",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Seconds between blocks, so confirmations arrive; 0: mine only on transactions.",
)
@json_option
def chain_up(port: int, block_time: float, as_json: bool) -> None:
    """Start anvil on 127.0.0.1 in the background; state kept in $VBILL_HOME."""
    anvil = ch.chain_up(port, block_time=block_time or None)
    emit({"pid": anvil.pid, "url": anvil.url}, as_json, f"anvil {anvil.url} (pid {anvil.pid})")


@chain_group.command("down")
@json_option
def chain_down(as_json: bool) -> None:
    """Stop the anvil that `vbill chain up` started."""
    pid = ch.chain_down()
    emit({"stopped": pid}, as_json, f"stopped anvil (pid {pid})" if pid else "no anvil running")


# ------------------------------------------------------------------------------ deploy


@click.command()
@network_options
@click.option("--check", is_flag=True, help="Compare deployments/<network>.json with the chain.")
@click.option(
    "--allow-dev-setup",
    is_flag=True,
    help="Deploy a dev-insecure setup to a public network (anyone could forge proofs).",
)
@click.option(
    "--attester",
    "attesters",
    multiple=True,
    help="Attester address (default: you; on local also the service's key in $VBILL_HOME).",
)
@click.option("--payee", default=None, help="Address credited by settlements (default: you).")
@click.option(
    "--vkey",
    type=click.Path(dir_okay=False, path_type=Path),
    default=paths.VKEY,
    show_default=True,
)
@json_option
def deploy(
    chain: ch.Chain,
    check: bool,
    allow_dev_setup: bool,
    attesters: tuple[str, ...],
    payee: str | None,
    vkey: Path,
    as_json: bool,
) -> None:
    """Render the verifier from the vkey, compile, deploy verifier + settlement.

    On local, the service's attester key ($VBILL_HOME/attester.key, `vbill keys show`) is
    registered as an attester too and given 10 ETH of gas, so `vbill serve --network local`
    settles with no further set-up.
    """
    if check:
        rows = chain.check_deployment(vkey)
        ok = all(r["ok"] for r in rows)
        human = "\n".join(
            f"{'ok  ' if r['ok'] else 'FAIL'} {r['check']} {r['detail']}" for r in rows
        )
        emit({"ok": ok, "checks": rows}, as_json, human)
        if not ok:
            raise VerificationFailed(f"deployment {chain.deployment_path()} does not match")
        return
    local = chain.network.name == "local"
    service = _service_attester() if local and not attesters else None
    if service is not None:
        attesters = (chain.address, service)
    dep = chain.deploy(vkey, attesters, payee, allow_dev_setup)
    settlement = dep["contracts"]["BillingSettlement"]["address"]
    human = f"deployed BillingSettlement {settlement} → {chain.deployment_path()}"
    for binding, info in dep["bindings"].items():
        verifier = dep["contracts"][info["verifier"]]["address"]
        human += f"\n{binding} verified by {info['verifier']} {verifier}"
    if local:
        for address in {a for a in dep["attesters"] if a.lower() != chain.address.lower()}:
            fund_local(chain.rpc_url, address, LOCAL_GAS_WEI)
            human += f"\nattester {address} registered and given 10 ETH of gas (local only)"
    emit(dep, as_json, human)


LOCAL_GAS_WEI = 10 * ch.WEI_PER_ETH


def _service_attester() -> str | None:
    """The address of the service's attester key in $VBILL_HOME, if there is one."""
    path = attester_key_path()
    return Attester.load(path).address if path.exists() else None


# ------------------------------------------------------------------------------ tenants


@click.group()
def account() -> None:
    """On-chain tenant accounts: an attester opens one, naming its controller.

    \b
    Onboarding, in order:
      vbill account open --tenant-key K --controller 0xTENANT   (attester key)
      vbill deposit --tenant-key K --eth 1                       (anyone)
      vbill tariff accept --tenant-key K --tariff-key T          (controller key)
    Only the controller accepts tariffs, sets limits and withdraws; deposits to an account
    no attester has opened revert (BillingSettlement__AccountNotOpen).
    """


@account.command("open")
@network_options
@tenant_options
@click.option(
    "--controller",
    required=True,
    help="Address that will accept tariffs, set limits and withdraw (the tenant's wallet).",
)
@json_option
def account_open(
    chain: ch.Chain, tenant_key: int, settlement: Any, controller: str, as_json: bool
) -> None:
    """Open the account of --tenant-key (or --bundle's) for --controller.

    The signer must be an active attester (the service does this at onboarding); an account
    already open keeps its controller (BillingSettlement__AccountExists).
    """
    result = chain.open_account(tenant_key, controller)
    emit(
        {**_tx(result), "tenant_key": str(tenant_key), "controller": controller},
        as_json,
        f"account {tenant_key} opened; controller {controller}\n"
        f"fund it with: vbill deposit --tenant-key {tenant_key} --eth AMOUNT",
    )


@click.command()
@network_options
@tenant_options
@click.option("--eth", "amount", required=True, help="Amount in ETH (minimum 0.01).")
@json_option
def deposit(chain: ch.Chain, tenant_key: int, settlement: Any, amount: str, as_json: bool) -> None:
    """Fund an open tenant account (anyone may; see `vbill account open`)."""
    try:
        result = chain.deposit(tenant_key, parse_eth(amount, "eth"))
    except ch.ChainRevert as exc:
        if exc.name == "BillingSettlement__AccountNotOpen":
            raise InputError(
                "tenant-key",
                f"{exc}: no account is open for it; an attester runs "
                "`vbill account open --tenant-key K --controller ADDR` first",
            ) from None
        raise
    balance = chain.balance(tenant_key)
    emit(
        {**_tx(result), "balance": balance.as_json()},
        as_json,
        f"deposited; total {balance.as_json()['total_eth']} ETH",
    )


@click.command()
@network_options
@tenant_options
@json_option
def balance(chain: ch.Chain, tenant_key: int, settlement: Any, as_json: bool) -> None:
    """Show a tenant account's available, reserved and total wei."""
    b = chain.balance(tenant_key).as_json()
    emit(
        b,
        as_json,
        f"available {b['available_wei']} wei, reserved {b['reserved_wei']} wei, "
        f"total {b['total_eth']} ETH",
    )


@click.group()
def limits() -> None:
    """Per-request and daily spending limits of a tenant account (controller only)."""


@limits.command("set")
@network_options
@tenant_options
@click.option(
    "--per-request-micros",
    required=True,
    type=click.IntRange(0),
    help="Largest charge, in micro-ETH (the unit of tariffs and of the service's limits).",
)
@click.option(
    "--daily-micros", required=True, type=click.IntRange(0), help="Per UTC day, in micro-ETH."
)
@json_option
def limits_set(
    chain: ch.Chain,
    tenant_key: int,
    settlement: Any,
    per_request_micros: int,
    daily_micros: int,
    as_json: bool,
) -> None:
    """Set the limits that settle enforces on chain, in micro-ETH (1 micro-ETH = 10^12 wei,
    the same unit as PUT …/limits on the service)."""
    per = per_request_micros * ch.WEI_PER_MICRO
    daily = daily_micros * ch.WEI_PER_MICRO
    emit(
        {
            **_tx(chain.set_limits(tenant_key, per, daily)),
            "per_request_micros": per_request_micros,
            "daily_micros": daily_micros,
        },
        as_json,
        f"limits set: {per_request_micros} micro-ETH per request, {daily_micros} per day",
    )


@click.group()
def tariff() -> None:
    """Tariff keys a tenant account accepts for ETH settlement."""


@tariff.command("accept")
@network_options
@tenant_options
@click.option("--tariff-key", default=None, help="Decimal tariff_key (default: the bundle's).")
@json_option
def tariff_accept(
    chain: ch.Chain, tenant_key: int, settlement: Any, tariff_key: str | None, as_json: bool
) -> None:
    """Accept a tariff key (controller only). Only ETH tariffs: the chain cannot see currency."""
    if tariff_key is not None:
        key = ch.parse_uint(tariff_key, "tariff-key", ch.R)
    elif settlement is not None:
        if settlement.currency != "ETH":
            raise InputError("bundle.tariff_snapshot.currency", "only ETH tariffs settle on chain")
        key = settlement.signals[2]
    else:
        raise InputError("tariff-key", "give --tariff-key or --bundle")
    emit(
        {**_tx(chain.accept_tariff(tenant_key, key)), "tariff_key": str(key)},
        as_json,
        f"tariff {key} accepted",
    )


# ------------------------------------------------------------------------------ attesters


@click.command()
@network_options
@click.argument(
    "bundles", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(1, 256))
@json_option
def settle(chain: ch.Chain, bundles: tuple[Path, ...], batch_size: int, as_json: bool) -> None:
    """Settle bundles on chain (ETH tariffs; other currencies are anchored, no ETH moves)."""
    items = [ch.settlement_from_bundle(ch.read_bundle(p), str(p)) for p in bundles]
    eth = [s for s in items if s.currency == "ETH"]
    rows: list[dict[str, Any]] = []
    lines: list[str] = []
    for path, s in zip(bundles, items, strict=True):
        if s.currency != "ETH":
            r = chain.settle(s)  # anchorCharge: the charge is recorded, nothing is paid
            rows.append({**_tx(r), "action": "anchored", "currency": s.currency, "charges": 1})
            lines.append(
                f"{path}: anchored in {r.transaction_hash}, no ETH moved (currency {s.currency})"
            )
    for i in range(0, len(eth), batch_size):
        chunk = eth[i : i + batch_size]
        for r in chain.settle_batch(chunk):
            rows.append({**_tx(r), "action": "settled", "currency": "ETH", "charges": len(chunk)})
            lines.append(
                f"settled {len(chunk)} ETH charge(s) in {r.transaction_hash} (gas {r.gas_used})"
            )
    emit(rows, as_json, "\n".join(lines))


@click.command()
@network_options
@click.argument("tx")
@click.option(
    "--bundle",
    "bundle_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Check that the transaction settled this bundle's commitment and nullifier.",
)
@click.option(
    "--correction",
    "correction_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Check that the transaction (a settleCorrection) credited this correction: its "
    "nullifier, the corrected charge's, its commitment, credit and window state keys.",
)
@json_option
def receipt(
    chain: ch.Chain,
    tx: str,
    bundle_path: Path | None,
    correction_path: Path | None,
    as_json: bool,
) -> None:
    """Re-derive a usage receipt, or a correction's credit, from the chain (exit 1 if it does
    not match). Without a file, a settleCorrection transaction gives the correction's receipt."""
    from vbill.bundle.correction import is_correction, is_void

    if bundle_path is not None and correction_path is not None:
        raise InputError("--correction", "give --bundle or --correction, not both")
    bundle = ch.read_bundle(bundle_path) if bundle_path is not None else None
    correction = ch.read_bundle(correction_path) if correction_path is not None else None
    if bundle is not None and (is_correction(bundle) or is_void(bundle)):
        raise InputError(
            "--bundle", f"{bundle_path} is a correction document: give it with --correction"
        )
    if correction is not None and not is_correction(correction):
        why = (
            "a void (binding v1) has no on-chain credit"
            if is_void(correction)
            else "not a correction document"
        )
        raise InputError("--correction", f"{correction_path}: {why}")
    if correction is not None or (bundle is None and chain.corrects(tx)):
        c = chain.correction_receipt(tx, correction).as_json()
        emit(
            c,
            as_json,
            f"{c['credit_eth']} ETH credited back in block {c['block_number']} at {c['timestamp']}",
        )
        return
    r = chain.receipt(tx, bundle).as_json()
    emit(r, as_json, f"{r['cost_eth']} ETH in block {r['block_number']} at {r['timestamp']}")


@click.group()
def attester() -> None:
    """Attester keys allowed to settle (owner only)."""


def _attester_verb(
    name: str, doc: str, done: str, send: Callable[[ch.Chain, str], ch.TxResult]
) -> click.Command:
    """A `vbill attester` verb: one owner transaction on ADDRESS, reported as `done`."""

    @attester.command(name, help=doc)
    @network_options
    @click.argument("address")
    @json_option
    def verb(chain: ch.Chain, address: str, as_json: bool) -> None:
        emit(_tx(send(chain, address)), as_json, f"attester {address} {done}")

    return verb


attester_add = _attester_verb("add", "Allow ADDRESS to settle.", "added", ch.Chain.add_attester)
attester_revoke = _attester_verb(
    "revoke",
    "Revoke ADDRESS for good: it can never settle again.",
    "revoked",
    ch.Chain.revoke_attester,
)


COMMANDS = (
    chain_group,
    deploy,
    account,
    deposit,
    balance,
    limits,
    tariff,
    settle,
    receipt,
    attester,
)
