"""The store's spending checks at their exact edges: what attest refuses before it proves.

The tenant's own limits, the limits its controller set on chain (as the worker last read
them), the balance and the UTC day are each pinned at the boundary, one unit inside and one
outside, with the numbers a refusal states. The arithmetic is Python, the same on both
databases, so these run on SQLite (test_store.py runs the rest on PostgreSQL too).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from support.store import LOG_KEY, attest, eth, fund, usage_receipt
from vbill.ledger import accounts as st
from vbill.ledger.store import (
    DAY_MS,
    WEI_PER_MICRO,
    Balance,
    ChainAccount,
    LimitExceeded,
    Limits,
    Store,
)


def utc_ms(*when: int) -> int:
    return int(dt.datetime(*when, tzinfo=dt.UTC).timestamp() * 1000)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "limits.db", log_key=LOG_KEY)
    s.add_tenant("acme", account_salt=1, tenant_key=2)
    return s


def on_chain(s: Store, per_request: int, daily: int, spent: int = 0, day: int | None = None):
    today = st.now_ms() // DAY_MS
    s.set_chain_account(
        "acme",
        ChainAccount(
            available_wei=10**18,
            reserved_wei=0,
            per_request_wei=per_request * WEI_PER_MICRO,
            daily_wei=daily * WEI_PER_MICRO,
            spent_today_wei=spent * WEI_PER_MICRO,
            spent_day=today if day is None else day,
            block_number=1,
        ),
    )


def test_a_micro_is_10_to_the_12_wei_and_available_is_total_less_reserved_and_withdrawing():
    assert WEI_PER_MICRO == 10**12  # 1 ETH = 10^18 wei = 10^6 micro-ETH
    assert Balance(100, 30, 999, 20).available_wei == 50


def test_the_utc_day_and_the_wait_until_its_end_are_exact():
    assert st._utc_day_start_ms(utc_ms(2026, 5, 29, 13, 7)) == utc_ms(2026, 5, 29)
    assert st._utc_day_start_ms(utc_ms(2026, 5, 29)) == utc_ms(2026, 5, 29)
    assert st._seconds_to_utc_midnight(utc_ms(2026, 5, 29, 23, 59, 59)) == 2  # 1 s, + 1 spare
    assert st._seconds_to_utc_midnight(utc_ms(2026, 5, 29)) == 86_401
    assert st._seconds_to_utc_midnight(utc_ms(2026, 5, 29, 12)) == 43_201


def test_the_tenants_daily_limit_states_the_total_it_would_reach(store: Store) -> None:
    fund(store, "acme", 10**18)
    store.set_limits("acme", Limits(daily_micros=8000))
    attest(store, "acme", "a", charge=eth(5000))
    with pytest.raises(LimitExceeded, match="to 8001, above the daily limit 8000") as err:
        attest(store, "acme", "b", charge=eth(3001))
    assert 1 <= err.value.retry_after <= 86_401  # until UTC midnight


def test_a_charge_of_exactly_the_available_balance_passes_and_one_micro_more_does_not(
    store: Store,
) -> None:
    fund(store, "acme", 3000 * WEI_PER_MICRO)
    fund(store, "acme", WEI_PER_MICRO // 2, block=2)  # half a micro-ETH, stated exactly
    with pytest.raises(LimitExceeded) as err:
        attest(store, "acme", "over", charge=eth(3001))
    assert err.value.reason.startswith(  # micro-ETH, as charges and limits are, and the way out
        "charge 3001 micro-ETH exceeds the available balance 3000.5 micro-ETH; fund the account "
        "on chain with `vbill deposit --tenant-key KEY --eth AMOUNT` (KEY: `vbill accounts "
        "show acme`): `vbill serve --network …` credits a deposit after 12 confirmations"
    ), err.value.reason
    assert err.value.retry_after == 60  # a deposit may be on its way
    attest(store, "acme", "exact", charge=eth(3000))
    assert store.balance("acme").available_wei == WEI_PER_MICRO // 2


def test_without_a_chain_an_empty_balance_says_no_deposit_can_arrive(store: Store) -> None:
    store.deposits_tracked = False
    with pytest.raises(LimitExceeded, match="no chain configured") as err:
        attest(store, "acme", "e", charge=eth(1))
    assert "run it with --network, then fund the account on chain with `vbill deposit" in str(
        err.value.reason
    )
    assert err.value.retry_after == st.NEVER_RETRY_AFTER


def test_the_on_chain_per_request_limit_is_inclusive(store: Store) -> None:
    fund(store, "acme", 10**18)
    on_chain(store, per_request=5000, daily=10**6)
    with pytest.raises(LimitExceeded, match=f"{5001 * WEI_PER_MICRO} wei exceeds the on-chain"):
        attest(store, "acme", "over", charge=eth(5001))
    attest(store, "acme", "exact", charge=eth(5000))


def test_the_on_chain_daily_limit_counts_todays_chain_spend_and_unsettled_charges(
    store: Store,
) -> None:
    fund(store, "acme", 10**18)
    on_chain(store, per_request=10**6, daily=10_000, spent=4000)  # settled on chain today
    attest(store, "acme", "a", charge=eth(2000))  # reserved: 4000 + 2000 used
    total = 10_001 * WEI_PER_MICRO
    with pytest.raises(LimitExceeded, match=f"today's total to {total} wei") as err:
        attest(store, "acme", "b", charge=eth(4001))
    assert 1 <= err.value.retry_after <= 86_401
    attest(store, "acme", "b", charge=eth(4000))  # exactly the daily limit


def test_the_on_chain_spend_of_an_earlier_day_does_not_count(store: Store) -> None:
    fund(store, "acme", 10**18)
    yesterday = st.now_ms() // DAY_MS - 1
    on_chain(store, per_request=10**6, daily=5000, spent=5000, day=yesterday)
    stored, created = attest(store, "acme", "a", charge=eth(5000))  # all of today's limit
    assert created and stored.event_id == "a"


def test_the_on_chain_daily_limit_counts_the_stores_own_spend_when_it_is_larger(
    store: Store,
) -> None:
    fund(store, "acme", 10**18)
    attest(store, "acme", "a", charge=eth(3000))
    assert store.mark_settled("acme", "a", usage_receipt("0.003"))  # settled: no longer reserved
    on_chain(store, per_request=10**6, daily=5000, spent=0)  # the chain's read lags
    with pytest.raises(LimitExceeded, match="on-chain daily limit"):
        attest(store, "acme", "b", charge=eth(2001))
    attest(store, "acme", "b", charge=eth(2000))
