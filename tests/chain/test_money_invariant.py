"""The settlement contract's money, step by step against a model (real anvil, real proofs).

Hypothesis draws sequences of deposits, settlements (replays included), withdrawal requests,
withdrawals, payee payouts and time jumps. A small Python model of the account predicts each
step: either it succeeds and moves exactly this much ETH, or it reverts with exactly this
custom error. After every step the contract must equal the model (available, reserved, payee
credit, spent nullifiers) and hold exactly the tenant's total plus what the payee is owed. The
accounts are funded so that money really moves: the run counts the settlements, tenant
withdrawals and payee payouts that succeeded and fails if any kind never happened.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from support.chain import as_account, increase_time, settlement
from vbill.chain import Balance, Chain, ChainRevert, Settlement

pytestmark = pytest.mark.chain

DAY = 86_400
WEI_PER_MICRO = 10**12
# usage units of the four bundles: 221,040 / 360,000 / 108,000 / 600,000 micro-ETH at 120 each
USAGES = (1842, 3000, 900, 5000)
FIRST_DEPOSIT = 10**18  # 1 ETH: most charges settle; the 0.6 ETH one may need a top-up
ACTIONS = ["deposit", "settle", "request", "withdraw", "request+withdraw", "payee", "time"]


@dataclass
class Model:
    """What the contract should hold for the one tenant account and the payee."""

    available: int = 0
    reserved: int = 0
    unlock_in: int = 0  # seconds until the reserved amount may be withdrawn
    owed: int = 0  # to the payee
    spent: set[int] = field(default_factory=set)

    def deposit(self, wei: int) -> str | None:
        self.available += wei
        return None

    def settle(self, s: Settlement) -> str | None:
        charge = s.signals[1] * WEI_PER_MICRO
        if s.nullifier in self.spent:
            return "BillingSettlement__NullifierUsed"
        if charge > self.available + self.reserved:
            return "BillingSettlement__InsufficientBalance"
        self.spent.add(s.nullifier)
        if charge > self.available:  # the shortfall comes out of reserved
            self.reserved -= charge - self.available
            self.available = 0
        else:
            self.available -= charge
        self.owed += charge
        return None

    def request(self, amount: int) -> str | None:
        if amount == 0 or amount > self.available:
            return "BillingSettlement__BadWithdrawal"
        self.available -= amount
        self.reserved += amount
        self.unlock_in = DAY
        return None

    def withdraw(self) -> str | None:
        if self.reserved == 0:
            return "BillingSettlement__NothingToWithdraw"
        if self.unlock_in > 0:
            return "BillingSettlement__WithdrawalLocked"
        self.reserved = 0
        return None

    def payout(self) -> str | None:
        if self.owed == 0:
            return "BillingSettlement__NothingToWithdraw"
        self.owed = 0
        return None


def outcome(fn: Any) -> tuple[str | None, Any]:
    try:
        return None, fn()
    except ChainRevert as exc:
        return exc.name, None


def gas_cost(c: Chain, tx: Any) -> int:
    receipt = c.w3.eth.get_transaction_receipt(tx.transaction_hash)
    return receipt["gasUsed"] * receipt["effectiveGasPrice"]


@pytest.fixture(scope="module")
def pool(eth_bundle) -> list[Settlement]:
    return [settlement(eth_bundle(event=f"evt_money_{i}", usage=u)) for i, u in enumerate(USAGES)]


steps_strategy = st.lists(
    st.tuples(st.sampled_from(ACTIONS), st.integers(0, 3)), min_size=3, max_size=12
)
# one sequence that must move every kind of money, whatever else Hypothesis draws
EVERY_KIND = [("settle", 0), ("settle", 0), ("request", 1), ("withdraw", 0), ("time", 1),
              ("withdraw", 0), ("payee", 0), ("payee", 0), ("settle", 3), ("deposit", 3),
              ("settle", 3), ("request+withdraw", 3)]  # fmt: skip


def test_money_moves_and_the_contract_always_holds_what_it_owes(
    anvil, deployment, pool: list[Settlement]
) -> None:
    owner, tenant, payee = (as_account(anvil, deployment, i) for i in (0, 1, 3))
    s = owner.settlement
    key, tariff = pool[0].signals[4], pool[0].signals[2]
    assert {x.signals[4] for x in pool} == {key} and {x.signals[2] for x in pool} == {tariff}
    moved: Counter[str] = Counter()

    def observe(model: Model) -> None:
        assert tenant.balance(key) == Balance(
            model.available,
            model.reserved,
            model.available + model.reserved,
        )
        assert s.functions.payeeBalance(payee.address).call() == model.owed
        for x in pool:
            assert s.functions.isNullifierUsed(x.nullifier).call() == (x.nullifier in model.spent)
        contract_wei = owner.w3.eth.get_balance(s.address)
        assert contract_wei == model.available + model.reserved + model.owed

    def step(model: Model, action: str, n: int) -> None:
        if action == "deposit":
            wei = (n + 1) * 10**17
            want, (got, _) = model.deposit(wei), outcome(lambda: tenant.deposit(key, wei))
        elif action == "settle":
            want, (got, _) = model.settle(pool[n]), outcome(lambda: owner.settle(pool[n]))
            moved["settled"] += got is None
        elif action == "request":
            amount = model.available * (n + 1) // 4
            want = model.request(amount)
            got, _ = outcome(lambda: tenant.request_withdrawal(key, amount))
        elif action == "request+withdraw":
            step(model, "request", n)
            step(model, "time", 1)
            step(model, "withdraw", n)
            return
        elif action == "withdraw":
            amount, before = model.reserved, tenant.w3.eth.get_balance(tenant.address)
            want, (got, tx) = model.withdraw(), outcome(lambda: tenant.withdraw(key))
            if got is None and tx is not None:
                after = tenant.w3.eth.get_balance(tenant.address)
                assert after == before + amount - gas_cost(tenant, tx)
                moved["withdrawn"] += 1
        elif action == "payee":
            amount, before = model.owed, payee.w3.eth.get_balance(payee.address)
            want = model.payout()
            got, tx = outcome(lambda: payee.transact(s.functions.withdrawPayee()))
            if got is None and tx is not None:
                after = payee.w3.eth.get_balance(payee.address)
                assert after == before + amount - gas_cost(payee, tx)
                moved["paid out"] += 1
        else:
            increase_time(owner, DAY * n)
            model.unlock_in -= DAY * n
            want = got = None
        assert got == want, (action, n, model)
        if got is not None:
            moved[got] += 1
        observe(model)

    @settings(
        max_examples=8,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
        database=None,
    )
    @given(steps=steps_strategy)
    @example(steps=EVERY_KIND)
    def run(steps: list[tuple[str, int]]) -> None:
        snap = owner.w3.provider.make_request("evm_snapshot", [])["result"]
        try:
            owner.open_account(key, tenant.address)
            tenant.accept_tariff(key, tariff)
            model = Model()
            for action, n in [("first deposit", 0), *steps]:
                if action == "first deposit":
                    tenant.deposit(key, FIRST_DEPOSIT)
                    model.deposit(FIRST_DEPOSIT)
                    observe(model)
                else:
                    step(model, action, n)
        finally:
            owner.w3.provider.make_request("evm_revert", [snap])

    run()
    assert moved["settled"] > 0 and moved["withdrawn"] > 0 and moved["paid out"] > 0, moved
    assert moved["BillingSettlement__NullifierUsed"] > 0, moved  # replays were refused
