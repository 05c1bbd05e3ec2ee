"""BillingSettlement on anvil, as the chain tests drive it: a signer per anvil account on the
session's deployment, a bundle's settlement, the state a failed call must leave alone, an
onboarded account, the exact custom error of a revert, and time travel."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account
from vbill import chain as ch
from vbill.chain import ANVIL_KEYS, Chain, ChainRevert, Settlement

ETH = 10**18
PILOT_CHARGE = 221_040  # micros: 1842 units x 120 micros (docs/protocol.md §12)
PILOT_WEI = PILOT_CHARGE * 10**12


def settlement(bundle: dict[str, Any]) -> Settlement:
    return ch.settlement_from_bundle(bundle)


def as_account(anvil, deployment, key_index: int) -> Chain:
    c = ch.connect("local", anvil.url, account=Account.from_key(ANVIL_KEYS[key_index]))
    c.deployment = deployment
    c.use_settlement(deployment["contracts"]["BillingSettlement"]["address"])
    return c


def state(c: Chain, *settlements: Settlement) -> dict[str, Any]:
    """Everything a failed call must leave alone."""
    s = c.settlement
    tenants = sorted({x.signals[4] for x in settlements})
    return {
        "contract_wei": c.w3.eth.get_balance(s.address),
        "payee": s.functions.payeeBalance(s.functions.payee().call()).call(),
        "balances": {t: s.functions.balanceOf(t).call() for t in tenants},
        "accounts": {t: s.functions.accountOf(t).call() for t in tenants},
        "nullifiers": {
            x.nullifier: s.functions.isNullifierUsed(x.nullifier).call() for x in settlements
        },
    }


def open_account(tenant: Chain, s: Settlement, wei: int = ETH) -> None:
    """Onboarding: the attester (anvil account 0, the deployer) opens the account for the
    tenant's wallet, which funds it and accepts the bundle's tariff."""
    attester = as_account_of(tenant, 0)
    if attester.controller_of(s.signals[4]) is None:
        attester.open_account(s.signals[4], tenant.address)
    tenant.deposit(s.signals[4], wei)
    tenant.accept_tariff(s.signals[4], s.signals[2])


def as_account_of(c: Chain, key_index: int) -> Chain:
    """Another signer on the same chain and deployment."""
    other = ch.connect("local", c.rpc_url, account=Account.from_key(ANVIL_KEYS[key_index]))
    other.deployment = c.deployment
    other.use_settlement(c.settlement.address)
    return other


def expect_revert(fn, name: str, *args: Any) -> ChainRevert:
    with pytest.raises(ChainRevert) as info:
        fn()
    assert info.value.name == name, info.value
    if args:
        assert info.value.error_args == args
    return info.value


def increase_time(c: Chain, seconds: int) -> None:
    c.w3.provider.make_request("evm_increaseTime", [seconds])
    c.w3.provider.make_request("evm_mine", [])
