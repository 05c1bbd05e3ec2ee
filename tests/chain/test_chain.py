"""BillingSettlement on a real anvil with real Groth16 proofs (issue 5).

Grouped per function, failures first. Every failure checks the exact custom error and that
no balance, nullifier or payee credit changed.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from eth_account import Account
from support.chain import (
    ETH,
    PILOT_CHARGE,
    PILOT_WEI,
    expect_revert,
    increase_time,
    open_account,
    settlement,
    state,
)
from vbill import chain as ch
from vbill import paths
from vbill.chain import ANVIL_KEYS, Chain, ChainRevert, Settlement
from vbill.cli.main import main
from vbill.errors import InputError

pytestmark = pytest.mark.chain

P = 21888242871839275222246405745257275088696311157297823662689037894645226208583
TENANT_SALT = 12345
OTHER_SALT = 67890


# ------------------------------------------------------------------------------ helpers


# ------------------------------------------------------------------------------ openAccount


def test_a_front_runner_cannot_take_over_a_tenant_key(owner, tenant, stranger, eth_bundle):
    """The old hole: the first depositor became controller. A stranger who sees the victim's
    tenant key can neither deposit first to claim it nor open it, and once the attester has
    opened it for the victim, cannot re-open it, withdraw or re-point it."""
    key = settlement(eth_bundle()).signals[4]
    s = settlement(eth_bundle())
    before = state(owner, s)
    expect_revert(lambda: stranger.deposit(key, ETH), "BillingSettlement__AccountNotOpen", key)
    expect_revert(
        lambda: stranger.open_account(key, stranger.address),
        "BillingSettlement__NotAttester",
        stranger.address,
    )
    assert state(owner, s) == before
    assert owner.controller_of(key) is None
    owner.open_account(key, tenant.address)
    tenant.deposit(key, ETH)
    expect_revert(
        lambda: stranger.open_account(key, stranger.address),
        "BillingSettlement__NotAttester",
        stranger.address,
    )
    expect_revert(  # not even an attester can re-assign an open account
        lambda: owner.open_account(key, stranger.address),
        "BillingSettlement__AccountExists",
        key,
    )
    tenant.request_withdrawal(key, ETH // 2)
    increase_time(owner, 86_400)
    after_open = state(owner, s)
    for fn in (
        lambda: stranger.withdraw(key),
        lambda: stranger.request_withdrawal(key, 1),
        lambda: stranger.transact(
            stranger.settlement.functions.setController(key, stranger.address)
        ),
    ):
        expect_revert(fn, "BillingSettlement__NotController", key, stranger.address)
    assert state(owner, s) == after_open
    assert owner.controller_of(key) == tenant.address


def test_open_account_is_for_active_attesters_only(owner, tenant, stranger, eth_bundle):
    key = settlement(eth_bundle()).signals[4]
    owner.revoke_attester(owner.address)
    expect_revert(
        lambda: owner.open_account(key, tenant.address),
        "BillingSettlement__AttesterRevoked",
        owner.address,
    )
    assert owner.controller_of(key) is None


@pytest.mark.parametrize("key", [0, ch.R, 2**256 - 1])
def test_open_account_rejects_a_tenant_key_outside_the_field(owner, tenant, key):
    expect_revert(
        lambda: owner.open_account(key, tenant.address),
        "BillingSettlement__InvalidTenantKey",
        key,
    )


def test_open_account_rejects_a_zero_or_malformed_controller(owner):
    expect_revert(lambda: owner.open_account(1, "0x" + "00" * 20), "BillingSettlement__ZeroAddress")
    with pytest.raises(InputError, match="controller"):
        owner.open_account(1, "0x1234")


def test_open_account_names_the_controller_and_emits_account_opened(owner, tenant, eth_bundle):
    key = settlement(eth_bundle()).signals[4]
    result = owner.open_account(key, tenant.address)
    logs = owner.settlement.events.AccountOpened().process_receipt(
        owner.w3.eth.get_transaction_receipt(result.transaction_hash)
    )
    assert [dict(log["args"]) for log in logs] == [{"tenantKey": key, "controller": tenant.address}]
    assert owner.controller_of(key) == tenant.address
    assert owner.balance(key) == ch.Balance(0, 0, 0)


# ------------------------------------------------------------------------------ deposit


def test_deposit_below_minimum_reverts_and_changes_nothing(owner, tenant, eth_bundle):
    s = settlement(eth_bundle())
    owner.open_account(s.signals[4], tenant.address)
    before = state(tenant, s)
    expect_revert(
        lambda: tenant.deposit(s.signals[4], 10**16 - 1),
        "BillingSettlement__DepositTooSmall",
        10**16,
        10**16 - 1,
    )
    assert state(tenant, s) == before


@pytest.mark.parametrize("key", [0, ch.R, 2**256 - 1])
def test_deposit_rejects_a_tenant_key_outside_the_field(tenant, key):
    expect_revert(lambda: tenant.deposit(key, ETH), "BillingSettlement__InvalidTenantKey", key)


def test_only_the_controller_administers_an_account(owner, tenant, stranger, eth_bundle):
    """Depositing buys no control: a stranger who tops up still cannot accept tariffs, set
    limits, hand the account over or withdraw; the controller can."""
    key = settlement(eth_bundle()).signals[4]
    owner.open_account(key, tenant.address)
    tenant.deposit(key, ETH)
    stranger.deposit(key, 2 * 10**16)
    assert tenant.balance(key) == ch.Balance(ETH + 2 * 10**16, 0, ETH + 2 * 10**16)
    fns = stranger.settlement.functions
    before = state(owner, settlement(eth_bundle()))
    for fn in (
        fns.acceptTariff(key, 1),
        fns.revokeTariff(key, 1),
        fns.setLimits(key, 1, 1),
        fns.setController(key, stranger.address),
        fns.requestWithdrawal(key, 10**16),
        fns.withdraw(key),
    ):
        expect_revert(
            lambda fn=fn: stranger.transact(fn),
            "BillingSettlement__NotController",
            key,
            stranger.address,
        )
    assert state(owner, settlement(eth_bundle())) == before
    tenant.accept_tariff(key, 1)
    tenant.set_limits(key, 10**16, 10**17)
    assert tenant.settlement.functions.isTariffAccepted(key, 1).call() is True
    account = tenant.settlement.functions.accountOf(key).call()
    assert (account[3], account[5], account[6]) == (tenant.address, 10**16, 10**17)


# ------------------------------------------------------------------------------ settle


def test_settle_rejects_a_replayed_nullifier(owner, tenant, eth_bundle):
    s = settlement(eth_bundle())
    open_account(tenant, s)
    owner.settle(s)
    before = state(owner, s)
    expect_revert(lambda: owner.settle(s), "BillingSettlement__NullifierUsed", s.nullifier)
    assert state(owner, s) == before


def test_settle_rejects_a_tariff_the_tenant_did_not_accept(owner, tenant, eth_bundle):
    s = settlement(eth_bundle())
    owner.open_account(s.signals[4], tenant.address)
    tenant.deposit(s.signals[4], ETH)
    tenant.accept_tariff(s.signals[4], s.signals[2] + 1)  # some other tariff
    before = state(owner, s)
    expect_revert(
        lambda: owner.settle(s),
        "BillingSettlement__TariffNotAccepted",
        s.signals[4],
        s.signals[2],
    )
    assert state(owner, s) == before


def test_settle_rejects_an_unfunded_tenant_key(owner, tenant, eth_bundle):
    mine = settlement(eth_bundle())
    other = settlement(eth_bundle(account_salt=OTHER_SALT))  # same tenant, other account
    assert other.signals[4] != mine.signals[4]
    open_account(tenant, mine)
    before = state(owner, mine, other)
    expect_revert(
        lambda: owner.settle(other), "BillingSettlement__UnknownAccount", other.signals[4]
    )
    assert state(owner, mine, other) == before


def test_settle_rejects_a_proof_moved_to_another_tenant_key(owner, tenant, eth_bundle):
    """Account A accepts B's tariff key; B's proof with A's tenant key still cannot charge A."""
    a = settlement(eth_bundle())
    b = settlement(eth_bundle(event="evt_b", account_salt=OTHER_SALT))
    open_account(tenant, a)
    tenant.accept_tariff(a.signals[4], b.signals[2])
    moved = Settlement(b.a, b.b, b.c, (*b.signals[:4], a.signals[4]))
    before = state(owner, a, moved)
    expect_revert(lambda: owner.settle(moved), "BillingSettlement__InvalidProof")
    assert state(owner, a, moved) == before


def test_settle_enforces_the_per_request_limit(owner, tenant, eth_bundle):
    s = settlement(eth_bundle())
    open_account(tenant, s)
    tenant.set_limits(s.signals[4], PILOT_WEI - 1, ETH)
    before = state(owner, s)
    expect_revert(
        lambda: owner.settle(s),
        "BillingSettlement__PerRequestLimitExceeded",
        PILOT_WEI - 1,
        PILOT_WEI,
    )
    assert state(owner, s) == before


def test_settle_enforces_the_daily_limit_until_the_next_day(owner, tenant, eth_bundle):
    first = settlement(eth_bundle(event="evt_day_1"))
    second = settlement(eth_bundle(event="evt_day_2"))
    open_account(tenant, first)
    tenant.set_limits(first.signals[4], ETH, PILOT_WEI + PILOT_WEI // 2)
    owner.settle(first)
    before = state(owner, first, second)
    expect_revert(
        lambda: owner.settle(second),
        "BillingSettlement__DailyLimitExceeded",
        PILOT_WEI + PILOT_WEI // 2,
        2 * PILOT_WEI,
    )
    assert state(owner, first, second) == before
    increase_time(owner, 86_400)
    owner.settle(second)
    assert tenant.balance(first.signals[4]).total == ETH - 2 * PILOT_WEI


def test_settle_rejects_a_revoked_attester_and_a_stranger(owner, tenant, stranger, eth_bundle):
    s = settlement(eth_bundle())
    open_account(tenant, s)
    before = state(owner, s)
    expect_revert(lambda: stranger.settle(s), "BillingSettlement__NotAttester", stranger.address)
    owner.revoke_attester(owner.address)
    expect_revert(lambda: owner.settle(s), "BillingSettlement__AttesterRevoked", owner.address)
    expect_revert(
        lambda: owner.add_attester(owner.address),
        "BillingSettlement__AttesterExists",
        owner.address,
    )
    assert state(owner, s) == before


@pytest.mark.parametrize("index", range(5))
def test_settle_rejects_any_tampered_public_signal(owner, tenant, eth_bundle, index):
    s = settlement(eth_bundle())
    open_account(tenant, s)
    signals = list(s.signals)
    signals[index] = signals[index] - 1 if signals[index] else 1
    tampered = Settlement(s.a, s.b, s.c, tuple(signals))  # type: ignore[arg-type]
    if index == 2:  # a tariff key the tenant accepted, so the proof check is what fails
        tenant.accept_tariff(s.signals[4], signals[2])
    if index == 4:
        owner.open_account(signals[4], tenant.address)
        tenant.deposit(signals[4], ETH)
        tenant.accept_tariff(signals[4], s.signals[2])
    before = state(owner, s, tampered)
    expect_revert(lambda: owner.settle(tampered), "BillingSettlement__InvalidProof")
    assert state(owner, s, tampered) == before


def test_settle_rejects_a_signal_not_below_r(owner, tenant, eth_bundle):
    s = settlement(eth_bundle())
    open_account(tenant, s)
    aliased = Settlement(s.a, s.b, s.c, (s.signals[0] + ch.R, *s.signals[1:]))
    expect_revert(lambda: owner.settle(aliased), "BillingSettlement__SignalOutOfField", 0)


@pytest.mark.parametrize("coord", ["a.x", "a.y", "b.x.im", "c.y"])
def test_settle_rejects_a_proof_coordinate_not_below_p(owner, tenant, eth_bundle, coord):
    s = settlement(eth_bundle())
    open_account(tenant, s)
    a, b, c = list(s.a), [list(s.b[0]), list(s.b[1])], list(s.c)
    if coord == "a.x":
        a[0] += P
    elif coord == "a.y":
        a[1] += P
    elif coord == "b.x.im":
        b[0][0] += P
    else:
        c[1] += P
    bad = Settlement(tuple(a), (tuple(b[0]), tuple(b[1])), tuple(c), s.signals)  # type: ignore[arg-type]
    before = state(owner, s)
    expect_revert(lambda: owner.settle(bad), "BillingSettlement__InvalidProof")
    assert state(owner, s) == before


def test_settle_with_too_little_gas_for_the_pairing_fails_closed(owner, tenant, eth_bundle):
    """The verifier's precompile runs out of gas and returns false: settle must revert
    InvalidProof, not treat it as a pass; a mined low-gas transaction changes nothing."""
    s = settlement(eth_bundle())
    open_account(tenant, s)
    fn = owner.settlement.functions.settle(s.proof_arg(), list(s.signals))
    needed = fn.estimate_gas({"from": owner.address})
    assert owner.call_revert(fn, gas=needed) is None
    err = owner.call_revert(fn, gas=needed - 40_000)
    assert err is not None and err.name == "BillingSettlement__InvalidProof", err
    before = state(owner, s)
    with pytest.raises(ChainRevert) as info:
        owner.settle(s, gas=needed - 40_000)
    assert info.value.name == "BillingSettlement__InvalidProof"
    assert state(owner, s) == before


def test_settle_rejects_a_charge_above_the_balance(owner, tenant, eth_bundle):
    s = settlement(eth_bundle(usage=200_000))  # 24,000,000 micros = 24 ETH
    open_account(tenant, s, wei=2 * 10**16)
    expect_revert(
        lambda: owner.settle(s),
        "BillingSettlement__InsufficientBalance",
        2 * 10**16,
        24 * ETH,
    )


def test_settle_moves_the_charge_and_emits_charge_settled(owner, tenant, payee, eth_bundle):
    s = settlement(eth_bundle())
    open_account(tenant, s)
    before = state(owner, s)
    result = owner.settle(s)
    after = state(owner, s)
    assert after["balances"][s.signals[4]] == [ETH - PILOT_WEI, 0, ETH - PILOT_WEI]
    assert after["payee"] == PILOT_WEI
    assert after["contract_wei"] == before["contract_wei"]  # ETH moves only on withdrawal
    assert after["nullifiers"][s.nullifier] is True
    rcpt = owner.receipt(result.transaction_hash)
    assert rcpt.charges == (
        ch.Charge(s.signals[4], s.nullifier, s.commitment, PILOT_CHARGE, PILOT_WEI),
    )
    assert rcpt.cost_eth == "0.22104"
    # the payee withdraws exactly once
    start = payee.w3.eth.get_balance(payee.address)
    paid = payee.transact(payee.settlement.functions.withdrawPayee())
    tx = payee.w3.eth.get_transaction(paid.transaction_hash)
    fee = (
        paid.gas_used
        * payee.w3.eth.get_transaction_receipt(paid.transaction_hash)["effectiveGasPrice"]
    )
    assert payee.w3.eth.get_balance(payee.address) == start + PILOT_WEI - fee
    assert tx["from"] == payee.address
    expect_revert(
        lambda: payee.transact(payee.settlement.functions.withdrawPayee()),
        "BillingSettlement__NothingToWithdraw",
    )


def test_anchor_charge_spends_the_nullifier_and_moves_no_eth(owner, tenant, eth_bundle):
    usd = settlement(eth_bundle(currency="USD"))
    assert usd.currency == "USD"
    before = state(owner, usd)
    owner.settle(usd)  # non-ETH: anchored
    after = state(owner, usd)
    assert after["nullifiers"][usd.nullifier] is True
    assert after["payee"] == before["payee"]
    assert after["contract_wei"] == before["contract_wei"]
    expect_revert(lambda: owner.settle(usd), "BillingSettlement__NullifierUsed", usd.nullifier)


# ------------------------------------------------------------------------------ settleBatch


def proof_pool(eth_bundle, n: int) -> list[Settlement]:
    """Real proofs of n distinct events of one tenant (the same pool test_gas uses, so each
    proof is generated once per session)."""
    return [settlement(eth_bundle(event=f"evt_gas_{i}")) for i in range(n)]


def settle_batch_tx(c: Chain, batch: list[Settlement]) -> ch.TxResult:
    """settleBatch itself, even for one proof (Chain.settle_batch sends a lone proof to settle)."""
    fn = c.settlement.functions.settleBatch(
        [s.proof_arg() for s in batch], [list(s.signals) for s in batch]
    )
    return c.transact(fn)


def with_signals(s: Settlement, signals: tuple[int, ...]) -> Settlement:
    return Settlement(s.a, s.b, s.c, signals)  # type: ignore[arg-type]


def test_settle_batch_with_one_bad_proof_anywhere_reverts_and_changes_nothing(
    owner, tenant, eth_bundle
):
    """One invalid proof among valid ones sinks the whole batch with InvalidBatchProof, at
    the first position (whose scalar is 1), in the middle and last; likewise two valid proofs
    whose signal rows were swapped, and a coordinate not below p."""
    batch = proof_pool(eth_bundle, 8)
    open_account(tenant, batch[0], wei=10 * ETH)  # 8 charges of 0.22104 ETH fit
    before = state(owner, *batch)
    for i in (0, 5, 7):
        bad = with_signals(batch[i], (batch[i].signals[0] + 1, *batch[i].signals[1:]))
        expect_revert(
            lambda bad=bad, i=i: settle_batch_tx(owner, [*batch[:i], bad, *batch[i + 1 :]]),
            "BillingSettlement__InvalidBatchProof",
            8,
        )
    x, y = batch[2], batch[6]
    swapped = list(batch)
    swapped[2], swapped[6] = with_signals(x, y.signals), with_signals(y, x.signals)
    expect_revert(
        lambda: settle_batch_tx(owner, swapped), "BillingSettlement__InvalidBatchProof", 8
    )
    off = list(batch)
    off[3] = Settlement(
        (batch[3].a[0] + P, batch[3].a[1]), batch[3].b, batch[3].c, batch[3].signals
    )
    expect_revert(lambda: settle_batch_tx(owner, off), "BillingSettlement__InvalidBatchProof", 8)
    assert state(owner, *batch) == before


def test_settle_batch_is_atomic_and_checks_each_charge(owner, tenant, eth_bundle):
    good = proof_pool(eth_bundle, 3)
    open_account(tenant, good[0])
    before = state(owner, *good)
    expect_revert(  # a repeated nullifier is caught before any pairing
        lambda: owner.settle_batch([good[0], good[0]]),
        "BillingSettlement__NullifierUsed",
        good[0].nullifier,
    )
    assert state(owner, *good) == before
    tenant.set_limits(good[0].signals[4], ETH, 2 * PILOT_WEI)
    before = state(owner, *good)
    expect_revert(  # the day's running total includes the batch's earlier charges
        lambda: owner.settle_batch(good),
        "BillingSettlement__DailyLimitExceeded",
        2 * PILOT_WEI,
        3 * PILOT_WEI,
    )
    tenant.revoke_tariff(good[0].signals[4], good[0].signals[2])
    expect_revert(
        lambda: owner.settle_batch(good),
        "BillingSettlement__TariffNotAccepted",
        good[0].signals[4],
        good[0].signals[2],
    )
    assert state(owner, *good) == before


def test_valid_batches_of_1_2_and_8_settle(owner, tenant, eth_bundle):
    items = proof_pool(eth_bundle, 11)
    key = items[0].signals[4]
    open_account(tenant, items[0], wei=10 * ETH)
    start = 0
    for n in (1, 2, 8):
        batch = items[start : start + n]
        start += n
        result = settle_batch_tx(owner, batch)
        assert owner.receipt(result.transaction_hash).charges == tuple(
            ch.Charge(key, s.nullifier, s.commitment, PILOT_CHARGE, PILOT_WEI) for s in batch
        )
        expect_revert(
            lambda batch=batch: settle_batch_tx(owner, batch),
            "BillingSettlement__NullifierUsed",
            batch[0].nullifier,
        )
    after = state(owner, *items)
    assert after["balances"][key] == [10 * ETH - 11 * PILOT_WEI, 0, 10 * ETH - 11 * PILOT_WEI]
    assert after["payee"] == 11 * PILOT_WEI
    assert all(after["nullifiers"].values())


def test_settle_batch_rejects_mismatched_lengths(owner, eth_bundle):
    s = settlement(eth_bundle())
    for proofs, signals in (([s.proof_arg()], []), ([], [])):
        fn = owner.settlement.functions.settleBatch(proofs, [list(s.signals)] * len(signals))
        expect_revert(
            lambda fn=fn: owner.transact(fn),
            "BillingSettlement__BadBatch",
            len(proofs),
            len(signals),
        )


# ------------------------------------------------------------------------------ withdrawals


def test_withdrawal_is_reserved_chargeable_and_then_paid(owner, tenant, stranger, eth_bundle):
    s = settlement(eth_bundle())
    key = s.signals[4]
    open_account(tenant, s, wei=PILOT_WEI + 10**16)
    expect_revert(
        lambda: tenant.request_withdrawal(key, 2 * ETH),
        "BillingSettlement__BadWithdrawal",
        PILOT_WEI + 10**16,
        2 * ETH,
    )
    expect_revert(
        lambda: stranger.request_withdrawal(key, 1),
        "BillingSettlement__NotController",
        key,
        stranger.address,
    )
    tenant.request_withdrawal(key, PILOT_WEI + 10**16)
    assert tenant.balance(key) == ch.Balance(0, PILOT_WEI + 10**16, PILOT_WEI + 10**16)
    with pytest.raises(ChainRevert) as info:
        tenant.withdraw(key)
    assert info.value.name == "BillingSettlement__WithdrawalLocked"
    owner.settle(s)  # reserved funds still answer for charges
    assert tenant.balance(key) == ch.Balance(0, 10**16, 10**16)
    increase_time(owner, 86_400)
    start = tenant.w3.eth.get_balance(tenant.address)
    paid = tenant.withdraw(key)
    price = tenant.w3.eth.get_transaction_receipt(paid.transaction_hash)["effectiveGasPrice"]
    assert tenant.w3.eth.get_balance(tenant.address) == start + 10**16 - paid.gas_used * price
    assert tenant.balance(key) == ch.Balance(0, 0, 0)
    expect_revert(lambda: tenant.withdraw(key), "BillingSettlement__NothingToWithdraw")


# ------------------------------------------------------------------------------ admin


def test_admin_is_owner_only(stranger):
    for fn in (
        stranger.settlement.functions.addAttester(stranger.address),
        stranger.settlement.functions.revokeAttester(stranger.address),
        stranger.settlement.functions.setPayee(stranger.address),
        stranger.settlement.functions.transferOwnership(stranger.address),
    ):
        expect_revert(
            lambda fn=fn: stranger.transact(fn), "BillingSettlement__NotOwner", stranger.address
        )


def test_anchor_tree_head_must_grow(owner, stranger):
    root = bytes(range(32))
    expect_revert(
        lambda: stranger.anchor_tree_head(root, 1),
        "BillingSettlement__NotAttester",
        stranger.address,
    )
    result = owner.anchor_tree_head(root, 5)
    logs = owner.settlement.events.TreeHeadAnchored().process_receipt(
        owner.w3.eth.get_transaction_receipt(result.transaction_hash)
    )
    assert [dict(log["args"]) for log in logs] == [
        {"root": root, "size": 5, "attester": owner.address}
    ]
    expect_revert(
        lambda: owner.anchor_tree_head(root, 5), "BillingSettlement__TreeHeadNotNewer", 5, 5
    )


# ------------------------------------------------------------------------------ CLI


def test_cli_deploy_deposit_settle_receipt_and_replay(
    anvil, fresh_chain, eth_bundle, tmp_path, monkeypatch
):
    """The on-chain flow of docs/cli.md, from the command line on a local anvil."""
    monkeypatch.setenv("VBILL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("VBILL_PRIVATE_KEY", raising=False)
    bundle = tmp_path / "pilot.json"
    bundle.write_text(json.dumps(eth_bundle()))
    other = tmp_path / "other.json"
    other.write_text(json.dumps(eth_bundle(event="evt_other")))
    net = ["--network", "local", "--rpc-url", anvil.url]

    def run(cli, args):
        result = CliRunner().invoke(cli, args)
        assert result.exception is None or isinstance(result.exception, SystemExit), result
        return result

    r = run(main, ["deploy", *net, "--json"])
    assert r.exit_code == 0, r.output
    dep = json.loads(r.output)
    assert (tmp_path / "home" / "deployments" / "local.json").exists()
    r = run(main, ["deploy", *net, "--check", "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["ok"], r.output

    r = run(main, ["deposit", *net, "--bundle", str(bundle), "--eth", "1"])
    assert r.exit_code == 2 and "AccountNotOpen" in r.output and "account open" in r.output
    tenant = Account.from_key(ANVIL_KEYS[1]).address
    r = run(main, ["account", "open", *net, "--bundle", str(bundle), "--controller", tenant])
    assert r.exit_code == 0, r.output
    r = run(main, ["account", "open", *net, "--bundle", str(bundle), "--controller", tenant])
    assert r.exit_code == 1 and "AccountExists" in r.output
    monkeypatch.setenv("VBILL_PRIVATE_KEY", ANVIL_KEYS[1])  # the tenant's wallet from here on
    r = run(main, ["deposit", *net, "--bundle", str(bundle), "--eth", "0.001"])
    assert r.exit_code == 1 and "DepositTooSmall" in r.output
    r = run(main, ["deposit", *net, "--bundle", str(bundle), "--eth", "1", "--json"])
    assert r.exit_code == 0, r.output
    r = run(main, ["tariff", "accept", *net, "--bundle", str(bundle)])
    assert r.exit_code == 0, r.output
    monkeypatch.delenv("VBILL_PRIVATE_KEY")  # back to the deployer, the attester

    r = run(main, ["settle", *net, str(bundle), "--json"])
    assert r.exit_code == 0, r.output
    tx = json.loads(r.output)[0]["transaction_hash"]
    r = run(main, ["receipt", *net, tx, "--bundle", str(bundle), "--json"])
    assert r.exit_code == 0, r.output
    receipt = json.loads(r.output)
    assert receipt["cost_eth"] == "0.22104"
    assert receipt["transaction_hash"] == tx
    assert {"block_number", "gas_used", "timestamp"} <= receipt.keys()
    r = run(main, ["receipt", *net, tx, "--bundle", str(other)])
    assert r.exit_code == 1, r.output

    r = run(main, ["settle", *net, str(bundle)])
    assert r.exit_code == 1 and "BillingSettlement__NullifierUsed" in r.output
    r = run(main, ["balance", *net, "--bundle", str(bundle), "--json"])
    assert json.loads(r.output)["total_wei"] == str(ETH - PILOT_WEI)

    # tamper with the deployed record: --check must notice
    record = json.loads((tmp_path / "home" / "deployments" / "local.json").read_text())
    record["contracts"]["BillingVerifier"]["runtime_sha256"] = "00" * 32
    (tmp_path / "home" / "deployments" / "local.json").write_text(json.dumps(record))
    r = run(main, ["deploy", *net, "--check"])
    assert r.exit_code == 1, r.output
    assert dep["contracts"]["BillingSettlement"]["address"]


def test_cli_refuses_a_chain_id_mismatch_and_reports_an_unreachable_chain(anvil):
    r = CliRunner().invoke(
        main,
        ["balance", "--network", "horizen-testnet", "--rpc-url", anvil.url, "--tenant-key", "1"],
    )
    assert r.exit_code == 2 and "refusing" in r.output
    dead = f"http://127.0.0.1:{ch.free_port()}"
    r = CliRunner().invoke(main, ["balance", "--rpc-url", dead, "--tenant-key", "1"])
    assert r.exit_code == 3, r.output


def test_dev_setup_is_not_deployed_to_a_public_network_without_the_flag(monkeypatch, tmp_path):
    """An anvil posing as horizen-testnet (chain id 2651420): refused, then allowed by flag."""
    manifest = json.loads(paths.MANIFEST.read_text()) if paths.MANIFEST.exists() else {}
    if manifest.get("ceremony") not in (None, "dev-insecure"):
        pytest.skip("the built setup is not a dev setup")
    node = ch.start_anvil(chain_id=2651420)
    try:
        monkeypatch.setenv("VBILL_DEPLOYMENTS", str(tmp_path))
        monkeypatch.setenv("VBILL_PRIVATE_KEY", ANVIL_KEYS[0])
        net = ["--network", "horizen-testnet", "--rpc-url", node.url]
        r = CliRunner().invoke(main, ["deploy", *net])
        assert r.exit_code == 2 and "allow-dev-setup" in r.output
        assert not (tmp_path / "horizen-testnet.json").exists()
        r = CliRunner().invoke(main, ["deploy", *net, "--allow-dev-setup", "--json"])
        assert r.exit_code == 0, r.output
        assert json.loads((tmp_path / "horizen-testnet.json").read_text())["chain_id"] == 2651420
    finally:
        node.stop()
