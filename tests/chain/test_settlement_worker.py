"""The settlement worker in-process against a real anvil, a real SQLite store and real proofs
(issue 10 items 2 and 3): one tenant's refused charge must not block anyone else's, and the
store's view of balances and limits follows what the tenant's controller does on chain."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from vbill import chain as ch
from vbill.attest import attest_event
from vbill.bindings import BINDING_V1, BINDING_V2
from vbill.bundle.keys import Attester
from vbill.ingest import Proving, new_account
from vbill.ledger.store import WEI_PER_MICRO, LimitExceeded, Store
from vbill.service.routes import tariff_key_for
from vbill.service.settlement import SettlementWorker

pytestmark = pytest.mark.chain

PILOT_WEI = 221_040 * WEI_PER_MICRO  # 1842 units x 120 micros
ETH = 10**18


def as_account(anvil: Any, deployment: dict[str, Any], key_index: int) -> ch.Chain:
    c = ch.connect("local", anvil.url, account=Account.from_key(ch.ANVIL_KEYS[key_index]))
    c.deployment = deployment
    c.use_settlement(deployment["contracts"]["BillingSettlement"]["address"])
    return c


@dataclass
class World:
    store: Store
    worker: SettlementWorker
    owner: ch.Chain
    attester: Attester
    prover: Any
    vkey_sha256: str
    pilot: dict[str, Any]

    def onboard(self, tenant_id: str, wallet: ch.Chain, deposit_wei: int = ETH) -> int:
        """What the service and the tenant do: open, bind, fund, accept the pilot tariff."""
        salt, key = new_account(tenant_id)
        self.store.add_tenant(tenant_id, salt, key)
        tx = self.owner.open_account(key, wallet.address)
        self.store.set_onchain(tenant_id, "bound", tx.transaction_hash)
        wallet.deposit(key, deposit_wei)
        tariff = self.request(tenant_id, "x")["tariff_snapshot"]
        wallet.accept_tariff(key, tariff_key_for(tariff, salt))
        return key

    def request(self, tenant_id: str, event_id: str) -> dict[str, Any]:
        r = copy.deepcopy(self.pilot)
        r["meter_event"].update(tenant_id=tenant_id, event_id=event_id)
        r["tariff_snapshot"]["currency"] = "ETH"
        return r

    def attest(self, tenant_id: str, event_id: str) -> None:
        attest_event(
            self.request(tenant_id, event_id),
            store=self.store,
            attester=self.attester,
            provers={BINDING_V1: Proving(self.prover, self.vkey_sha256)},
        )

    def status(self, tenant_id: str, event_id: str) -> tuple[str, str | None]:
        sb = self.store.find(tenant_id, event_id)
        assert sb is not None
        return sb.settlement_status, sb.last_error


@pytest.fixture
def world(
    anvil: Any,
    fresh_chain: dict[str, Any],
    tmp_path: Path,
    prover: Any,
    vkey_sha256: str,
    pilot_request: dict[str, Any],
) -> World:
    owner = as_account(anvil, fresh_chain, 0)  # the deployer is the deployment's attester
    attester = Attester.generate()
    store = Store(tmp_path / "vbill.sqlite3", log_key=attester.account)
    worker = SettlementWorker(
        store,
        lambda: as_account(anvil, fresh_chain, 0),
        confirmations=1,
        anchor_interval=0,
        start_block=0,
    )
    return World(store, worker, owner, attester, prover, vkey_sha256, pilot_request)


def test_a_tenant_whose_daily_limit_fits_one_charge_holds_back_only_its_second(
    world: World, anvil: Any, fresh_chain: dict[str, Any]
) -> None:
    grief = as_account(anvil, fresh_chain, 1)
    honest = as_account(anvil, fresh_chain, 2)
    grief_key = world.onboard("t_grief", grief)
    world.onboard("t_honest", honest)
    world.worker.tick()  # deposits credited (1 confirmation)
    assert world.store.balance("t_grief").available_wei == ETH
    world.attest("t_grief", "g1")
    world.attest("t_grief", "g2")
    world.attest("t_honest", "h1")
    # after attesting, the griefer's controller lowers its daily limit to exactly one charge:
    # each charge alone passes, any batch holding both reverts DailyLimitExceeded
    grief.set_limits(grief_key, 2**96 - 1, PILOT_WEI)

    world.worker.tick()

    assert world.status("t_honest", "h1")[0] == "settled"
    assert world.status("t_grief", "g1")[0] == "settled"
    held, reason = world.status("t_grief", "g2")
    assert held == "pending" and reason is not None and "DailyLimitExceeded" in reason
    head = world.store.head()
    assert world.owner.settlement.functions.lastAnchoredSize().call() == head.tree_size == 3
    assert world.owner.balance(grief_key).total == ETH - PILOT_WEI


def test_a_refused_batch_still_anchors_the_tree_head(world: World, anvil: Any, fresh_chain):
    """A tenant that revokes the tariff after attesting: nothing of it settles, the log is
    anchored all the same."""
    wallet = as_account(anvil, fresh_chain, 1)
    key = world.onboard("t_revoker", wallet)
    world.worker.tick()
    world.attest("t_revoker", "r1")
    salt = world.store.tenant("t_revoker").account_salt  # type: ignore[union-attr]
    tariff = world.request("t_revoker", "x")["tariff_snapshot"]
    wallet.revoke_tariff(key, tariff_key_for(tariff, salt))

    world.worker.tick()

    status, reason = world.status("t_revoker", "r1")
    assert status == "pending" and reason is not None and "TariffNotAccepted" in reason
    assert world.owner.settlement.functions.lastAnchoredSize().call() == 1


def test_an_on_chain_withdrawal_lowers_the_balance_and_refuses_the_attest(
    world: World, anvil: Any, fresh_chain: dict[str, Any]
) -> None:
    wallet = as_account(anvil, fresh_chain, 1)
    key = world.onboard("t_leaver", wallet)
    world.worker.tick()
    assert world.store.balance("t_leaver").available_wei == ETH
    wallet.request_withdrawal(key, ETH)
    world.worker.tick()
    # requested: still on chain (chargeable there until withdrawn) but not spendable here
    assert world.store.balance("t_leaver").available_wei == 0
    wallet.w3.provider.make_request("evm_increaseTime", [86_400])  # type: ignore[arg-type]
    wallet.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    wallet.withdraw(key)
    world.worker.tick()

    bal = world.store.balance("t_leaver")
    assert (bal.total_wei, bal.available_wei) == (0, 0)
    with pytest.raises(LimitExceeded) as refused:
        world.attest("t_leaver", "l1")
    assert "available balance" in refused.value.reason and refused.value.retry_after > 0
    assert world.store.find("t_leaver", "l1") is None


def test_limits_set_on_chain_are_enforced_at_attest(
    world: World, anvil: Any, fresh_chain: dict[str, Any]
) -> None:
    wallet = as_account(anvil, fresh_chain, 1)
    key = world.onboard("t_limited", wallet)
    wallet.set_limits(key, PILOT_WEI - 1, 2**96 - 1)
    world.worker.tick()
    with pytest.raises(LimitExceeded) as per_request:
        world.attest("t_limited", "p1")
    assert "per-request" in per_request.value.reason and per_request.value.retry_after > 0

    wallet.set_limits(key, 2**96 - 1, PILOT_WEI)  # a daily limit of exactly one charge
    world.worker.tick()
    world.attest("t_limited", "p1")
    with pytest.raises(LimitExceeded) as daily:
        world.attest("t_limited", "p2")
    assert "daily" in daily.value.reason and daily.value.retry_after > 0
    assert world.store.find("t_limited", "p2") is None


def test_a_v1_and_a_v2_charge_pending_in_one_tick_both_settle(
    world: World, anvil: Any, fresh_chain: dict[str, Any], v2: Any
) -> None:
    """Each binding has its own settleBatch: one tick sends one batch per binding, so a v2
    inference pending beside a v1 charge neither blocks it nor is blocked."""
    from support.metered import INFERENCE

    wallet = as_account(anvil, fresh_chain, 1)
    key = world.onboard("t_both", wallet)
    world.worker.tick()  # deposit credited
    world.attest("t_both", "v1")
    inference = copy.deepcopy(INFERENCE)
    inference["meter_event"].update(tenant_id="t_both", event_id="v2")
    inference["tariff_snapshot"]["currency"] = "ETH"
    stored = attest_event(
        inference,
        store=world.store,
        attester=world.attester,
        provers={BINDING_V1: Proving(world.prover, world.vkey_sha256), BINDING_V2: v2},
    ).stored
    two = ch.settlement_from_bundle(stored.bundle)
    assert two.binding == BINDING_V2
    wallet.accept_tariff(key, two.signals[2])

    world.worker.tick()

    assert world.status("t_both", "v1") == ("settled", None)
    assert world.status("t_both", "v2") == ("settled", None)
    wei = two.signals[1] * WEI_PER_MICRO
    assert world.owner.balance(key).total == ETH - PILOT_WEI - wei
    receipts = {
        e: world.store.find("t_both", e).settlement["transaction_hash"]  # type: ignore[union-attr]
        for e in ("v1", "v2")
    }
    assert receipts["v1"] != receipts["v2"]  # two transactions, one per binding
    world.owner.receipt(receipts["v2"], stored.bundle)  # the v2 charge re-derives from chain


def test_a_tenant_front_running_the_batch_reverts_only_its_own_charges(
    world: World, anvil: Any, fresh_chain: dict[str, Any]
) -> None:
    """Issue 24: the batch is simulated, then a tenant who sees it in the mempool revokes its
    tariff first (here: between the simulation and the send). Its charge is held back with
    the chain's reason; the other tenant's charge settles in its own transaction."""
    honest = as_account(anvil, fresh_chain, 1)
    racer = as_account(anvil, fresh_chain, 2)
    world.onboard("t_honest", honest)
    racer_key = world.onboard("t_racer", racer)
    world.worker.tick()  # deposits credited
    world.attest("t_honest", "h1")
    world.attest("t_racer", "r1")
    salt = world.store.tenant("t_racer").account_salt  # type: ignore[union-attr]
    tariff = world.request("t_racer", "x")["tariff_snapshot"]
    simulate = world.worker._settleable

    def simulate_then_front_run(chain: ch.Chain, candidates: list[Any]) -> list[Any]:
        ready = simulate(chain, candidates)
        assert len(ready) == 2  # both pass the simulation: the batch goes out with both
        racer.revoke_tariff(racer_key, tariff_key_for(tariff, salt))
        return ready

    world.worker._settleable = simulate_then_front_run  # type: ignore[method-assign]
    world.worker.tick()

    assert world.status("t_honest", "h1") == ("settled", None)
    status, reason = world.status("t_racer", "r1")
    assert status == "pending" and reason is not None and "TariffNotAccepted" in reason
    settled = world.store.find("t_honest", "h1")
    assert settled is not None and settled.bundle["settlement"]["gas_used"] > 0
    print(f"\nper-tenant settleBatch of one charge: {settled.bundle['settlement']['gas_used']} gas")
