"""Accounts: spending limits, balances, deposits seen on chain, and the check every charge
passes before it is stored (and the webhook events a stored charge raises).

Money is kept in micro-ETH for charges (1 micro = 10^12 wei, exact) and in wei for deposits;
`total = credited deposits − settled charges`, `reserved = attested, unsettled charges`,
`available = total − reserved`. Deposits count only after `CONFIRMATIONS` blocks.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from vbill.ledger import outbox
from vbill.ledger.db import Database, int_or_none, mapper, now_ms, stored_amount
from vbill.ledger.errors import LimitExceeded

WEI_PER_MICRO = 10**12


DAY_MS = 86_400_000  # a UTC day; the contract's spent_day is block.timestamp / 1 day too

# Retry-After (s) of a 429 that no retry alone can turn into a success (a per-request limit,
# no chain to credit deposits): clients must back off rather than loop, and an hour is about
# as soon as the operator or the tenant's controller could change what refused it.
NEVER_RETRY_AFTER = 3600


CONFIRMATIONS = 12


@dataclass(frozen=True)
class Balance:
    """Balances in wei: total = credited deposits − settled (capped by the chain's balance once
    the worker has read it); reserved = attested, unsettled charges; withdrawing = what the
    controller has asked to withdraw on chain; available = total − reserved − withdrawing."""

    total_wei: int
    reserved_wei: int
    pending_deposits_wei: int
    withdrawing_wei: int = 0

    @property
    def available_wei(self) -> int:
        return self.total_wei - self.reserved_wei - self.withdrawing_wei


@dataclass(frozen=True)
class ChainAccount:
    """The tenant's account as the settlement contract holds it (wei), read by the worker:
    what the chain will refuse is refused at attest too (withdrawals, limits set on chain)."""

    available_wei: int
    reserved_wei: int  # requested for withdrawal (still chargeable on chain until withdrawn)
    per_request_wei: int
    daily_wei: int
    spent_today_wei: int
    spent_day: int  # UTC day number (block.timestamp // 86400) that spent_today_wei counts
    block_number: int

    @property
    def total_wei(self) -> int:
        return self.available_wei + self.reserved_wei


@dataclass(frozen=True)
class Limits:
    per_request_micros: int | None = None
    daily_micros: int | None = None


@dataclass(frozen=True)
class Spend:
    """What a stored ETH charge was checked against: the day's total before it (None without
    a daily limit), the daily limit, the available balance before it (wei), and the on-chain
    daily limit with the day's total it counts (wei; None before the worker read the chain)."""

    spent_micros: int | None
    daily_micros: int | None
    available_wei: int
    chain_daily: tuple[int, int] | None = None  # (the day's total, the on-chain limit), wei


@dataclass(frozen=True)
class Charge:
    """What an attest will cost, known before proving (currency and charge in micros)."""

    currency: str
    charge_micros: int

    @property
    def is_eth(self) -> bool:
        return self.currency == "ETH"


def micro_eth(wei: int) -> str:
    """An amount of wei in micro-ETH (the unit of charges and limits), exactly: `1500000000000`
    → `"1.5"`."""
    whole, rest = divmod(wei, WEI_PER_MICRO)
    return str(whole) + (f".{rest:012d}".rstrip("0") if rest else "")


def _seconds_to_utc_midnight(ts_ms: int) -> int:
    now = dt.datetime.fromtimestamp(ts_ms / 1000, dt.UTC)
    tomorrow = (now + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, int((tomorrow - now).total_seconds()) + 1)


def _utc_day_start_ms(ts_ms: int) -> int:
    return ts_ms - ts_ms % DAY_MS


class Accounts:
    """Limits, balances and deposits; `deposits_tracked`, `usage_shares` and `balance_low_wei`
    are the service's settings (vbill.service.app sets them)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.deposits_tracked = True  # False: no chain, so no deposit will ever be credited
        # webhook marks (Settings): shares of the daily limit, the low-balance mark (wei)
        self.usage_shares: tuple[Fraction, ...] = (Fraction(4, 5),)
        self.balance_low_wei: int | None = None

    def set_limits(self, tenant_id: str, limits: Limits) -> None:
        with self.db.tx() as c:
            c.execute(
                "INSERT INTO limits (tenant_id, per_request_micros, daily_micros) VALUES (?,?,?) "
                "ON CONFLICT(tenant_id) DO UPDATE SET per_request_micros = excluded."
                "per_request_micros, daily_micros = excluded.daily_micros",
                (
                    tenant_id,
                    stored_amount(limits.per_request_micros),
                    stored_amount(limits.daily_micros),
                ),
            )

    def limits(self, tenant_id: str) -> Limits:
        return self._limits(self.db.conn(), tenant_id)

    @staticmethod
    def _limits(c: sqlite3.Connection, tenant_id: str) -> Limits:
        row = c.execute("SELECT * FROM limits WHERE tenant_id = ?", (tenant_id,)).fetchone()
        if row is None:
            return Limits()
        return Limits(int_or_none(row["per_request_micros"]), int_or_none(row["daily_micros"]))

    def balance(self, tenant_id: str) -> Balance:
        return self._balance(self.db.conn(), tenant_id)

    def set_chain_account(self, tenant_id: str, acct: ChainAccount) -> None:
        """Record the worker's latest read of the tenant's on-chain account."""
        with self.db.tx() as c:
            c.execute(
                "INSERT INTO chain_accounts (tenant_id, available_wei, reserved_wei, "
                "per_request_wei, daily_wei, spent_today_wei, spent_day, block_number, synced_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant_id) DO UPDATE SET "
                "available_wei = excluded.available_wei, reserved_wei = excluded.reserved_wei, "
                "per_request_wei = excluded.per_request_wei, daily_wei = excluded.daily_wei, "
                "spent_today_wei = excluded.spent_today_wei, spent_day = excluded.spent_day, "
                "block_number = excluded.block_number, synced_at = excluded.synced_at",
                (
                    tenant_id,
                    str(acct.available_wei),
                    str(acct.reserved_wei),
                    str(acct.per_request_wei),
                    str(acct.daily_wei),
                    str(acct.spent_today_wei),
                    acct.spent_day,
                    acct.block_number,
                    now_ms(),
                ),
            )

    def chain_account(self, tenant_id: str) -> ChainAccount | None:
        return self._chain_account(self.db.conn(), tenant_id)

    @staticmethod
    def _chain_account(c: sqlite3.Connection, tenant_id: str) -> ChainAccount | None:
        row = c.execute("SELECT * FROM chain_accounts WHERE tenant_id = ?", (tenant_id,)).fetchone()
        if row is None:
            return None
        return _chain_account_row(row)

    @classmethod
    def _balance(cls, c: sqlite3.Connection, tenant_id: str) -> Balance:
        credited = pending = 0
        for row in c.execute(
            "SELECT amount_wei, credited FROM deposits WHERE tenant_id = ?", (tenant_id,)
        ):
            if row["credited"]:
                credited += int(row["amount_wei"])
            else:
                pending += int(row["amount_wei"])
        settled = reserved = 0  # summed here: a SQL SUM of TEXT amounts would round
        for row in c.execute(
            "SELECT settlement_status, charge_micros FROM bundles WHERE tenant_id = ? "
            "AND currency = 'ETH' AND settlement_status IN ('settled', 'pending')",
            (tenant_id,),
        ):
            if row[0] == "settled":
                settled += int(row[1])
            else:
                reserved += int(row[1])
        total = credited - settled * WEI_PER_MICRO
        withdrawing = 0
        chain = cls._chain_account(c, tenant_id)
        if chain is not None:  # withdrawals happen on chain only; a stale read only lowers
            total = min(total, chain.total_wei)
            withdrawing = min(chain.reserved_wei, max(total, 0))
        return Balance(
            total_wei=total,
            reserved_wei=reserved * WEI_PER_MICRO,
            pending_deposits_wei=pending,
            withdrawing_wei=withdrawing,
        )

    def spent_today_micros(self, tenant_id: str, at_ms: int | None = None) -> int:
        return self._spent_today(self.db.conn(), tenant_id, at_ms or now_ms())

    @staticmethod
    def _spent_today(c: sqlite3.Connection, tenant_id: str, at_ms: int) -> int:
        rows = c.execute(
            "SELECT charge_micros FROM bundles WHERE tenant_id = ? "
            "AND currency = 'ETH' AND settlement_status IN ('pending', 'settled') "
            "AND created_at >= ?",
            (tenant_id, _utc_day_start_ms(at_ms)),
        )
        return sum(int(r[0]) for r in rows)

    def record_deposit(
        self, tx_hash: str, log_index: int, tenant_id: str, amount_wei: int, block_number: int
    ) -> bool:
        """Remember a deposit seen on chain (not yet spendable); False if already known."""
        with self.db.tx() as c:
            cur = c.execute(
                "INSERT INTO deposits (tx_hash, log_index, tenant_id, amount_wei, "
                "block_number) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (tx_hash.lower(), log_index, tenant_id, str(amount_wei), block_number),
            )
            return cur.rowcount == 1

    def credit_confirmed(self, head_block: int, confirmations: int = CONFIRMATIONS) -> int:
        """Credit deposits with at least `confirmations` blocks (its own block counts as one)."""
        with self.db.tx() as c:
            cur = c.execute(
                "UPDATE deposits SET credited = 1 WHERE credited = 0 AND block_number <= ?",
                (head_block - confirmations + 1,),
            )
            return cur.rowcount

    def uncredited_deposits(self, max_block: int) -> list[dict[str, Any]]:
        """Deposits old enough to credit (block ≤ max_block) that are not credited yet."""
        rows = self.db.conn().execute(
            "SELECT * FROM deposits WHERE credited = 0 AND block_number <= ? "
            "ORDER BY block_number, log_index",
            (max_block,),
        )
        return [dict(r) for r in rows]

    def credit_deposit(self, tx_hash: str, log_index: int) -> None:
        with self.db.tx() as c:
            c.execute(
                "UPDATE deposits SET credited = 1 WHERE tx_hash = ? AND log_index = ?",
                (tx_hash.lower(), log_index),
            )

    def drop_deposit(self, tx_hash: str, log_index: int) -> None:
        """Forget an uncredited deposit that is no longer on chain (reorged out)."""
        with self.db.tx() as c:
            c.execute(
                "DELETE FROM deposits WHERE tx_hash = ? AND log_index = ? AND credited = 0",
                (tx_hash.lower(), log_index),
            )

    def deposits(self, tenant_id: str) -> list[dict[str, Any]]:
        rows = self.db.conn().execute(
            "SELECT * FROM deposits WHERE tenant_id = ? ORDER BY block_number, log_index",
            (tenant_id,),
        )
        return [dict(r) for r in rows]

    def check_spend(self, c: sqlite3.Connection, tenant_id: str, charge: Charge) -> Spend | None:
        """Raise LimitExceeded if this ETH charge breaks a limit or the available balance;
        else what it was checked against (for the events a stored charge raises)."""
        if not charge.is_eth:
            return None
        at = now_ms()
        spent = None
        limits = self._limits(c, tenant_id)
        if (
            limits.per_request_micros is not None
            and charge.charge_micros > limits.per_request_micros
        ):
            raise LimitExceeded(
                f"charge {charge.charge_micros} micros exceeds the per-request limit "
                f"{limits.per_request_micros}",
                retry_after=NEVER_RETRY_AFTER,
            )
        if limits.daily_micros is not None:
            spent = self._spent_today(c, tenant_id, at)
            if spent + charge.charge_micros > limits.daily_micros:
                raise LimitExceeded(
                    f"charge {charge.charge_micros} micros would bring today's total to "
                    f"{spent + charge.charge_micros}, above the daily limit {limits.daily_micros}",
                    retry_after=_seconds_to_utc_midnight(at),
                )
        bal = self._balance(c, tenant_id)
        need = charge.charge_micros * WEI_PER_MICRO
        chain_daily = self._check_chain_limits(c, tenant_id, need, bal, at)
        if need > bal.available_wei:
            short = (
                f"charge {charge.charge_micros} micro-ETH exceeds the available balance "
                f"{micro_eth(bal.available_wei)} micro-ETH"
            )
            fund = (
                f"fund the account on chain with `vbill deposit --tenant-key KEY --eth AMOUNT` "
                f"(KEY: `vbill accounts show {tenant_id}`)"
            )
            if not self.deposits_tracked:
                raise LimitExceeded(
                    f"{short}, and this service has no chain configured, so no deposit can be "
                    f"credited: run it with --network, then {fund}",
                    retry_after=NEVER_RETRY_AFTER,
                )
            raise LimitExceeded(
                f"{short}; {fund}: `vbill serve --network …` credits a deposit after "
                f"{CONFIRMATIONS} confirmations (withdrawals requested on chain are not "
                "spendable)",
                retry_after=60,
            )
        return Spend(spent, limits.daily_micros, bal.available_wei, chain_daily)

    def notify_spend(
        self,
        c: sqlite3.Connection,
        tenant_id: str,
        event_id: str,
        charge: Charge,
        spend: Spend | None,
        at: int,
    ) -> None:
        """Inside the transaction that stores a charge: the webhook events it raises, once per
        crossing (usage.threshold_reached for each configured share of a daily limit, the
        tenant's in micro-ETH or the on-chain one in wei, that the day's total passes;
        balance.low when the available balance drops below the mark)."""
        if spend is None:
            return
        daily: list[tuple[str, str, int, int, int]] = []  # (limit, unit, before, charge, limit)
        if spend.daily_micros is not None and spend.spent_micros is not None:
            micros = charge.charge_micros
            daily.append(("daily", "micros", spend.spent_micros, micros, spend.daily_micros))
        if spend.chain_daily is not None:
            wei = charge.charge_micros * WEI_PER_MICRO
            daily.append(("chain_daily", "wei", spend.chain_daily[0], wei, spend.chain_daily[1]))
        for limit, unit, before, amount, cap in daily:
            shown = int if unit == "micros" else str  # wei amounts are decimal strings
            for share in self.usage_shares:
                mark = -(-cap * share.numerator // share.denominator)  # ceil
                if before < mark <= before + amount:
                    data = {
                        "limit": limit,
                        "day": dt.datetime.fromtimestamp(at / 1000, dt.UTC).date().isoformat(),
                        "share": float(share),
                        f"limit_{unit}": shown(cap),
                        f"threshold_{unit}": shown(mark),
                        f"spent_{unit}": shown(before + amount),
                        "event_id": event_id,
                    }
                    outbox.enqueue(c, tenant_id, "usage.threshold_reached", data, at)
        low = self.balance_low_wei
        after_wei = spend.available_wei - charge.charge_micros * WEI_PER_MICRO
        if low is not None and after_wei < low <= spend.available_wei:
            low_data = {"available_wei": str(after_wei), "threshold_wei": str(low)}
            outbox.enqueue(c, tenant_id, "balance.low", {**low_data, "event_id": event_id}, at)

    def _check_chain_limits(
        self, c: sqlite3.Connection, tenant_id: str, need_wei: int, bal: Balance, at: int
    ) -> tuple[int, int] | None:
        """The limits the tenant's controller set on chain, as the worker last read them; the
        day's total counts every unsettled charge (they settle today at the earliest). Returns
        (the day's total before this charge, the on-chain daily limit), wei."""
        chain = self._chain_account(c, tenant_id)
        if chain is None:
            return None
        if need_wei > chain.per_request_wei:
            raise LimitExceeded(
                f"charge {need_wei} wei exceeds the on-chain per-request limit "
                f"{chain.per_request_wei} wei (set by the tenant's controller)",
                retry_after=NEVER_RETRY_AFTER,
            )
        chain_spent = chain.spent_today_wei if chain.spent_day == at // DAY_MS else 0
        used = max(
            chain_spent + bal.reserved_wei, self._spent_today(c, tenant_id, at) * WEI_PER_MICRO
        )
        if used + need_wei > chain.daily_wei:
            raise LimitExceeded(
                f"charge {need_wei} wei would bring today's total to {used + need_wei} wei, "
                f"above the on-chain daily limit {chain.daily_wei} wei",
                retry_after=_seconds_to_utc_midnight(at),
            )
        return used, chain.daily_wei


# wei as TEXT: uint96 does not fit SQLite's INTEGER
_chain_account_row = mapper(
    ChainAccount,
    available_wei=int,
    reserved_wei=int,
    per_request_wei=int,
    daily_wei=int,
    spent_today_wei=int,
)
