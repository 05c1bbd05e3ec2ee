"""The service's durable state: tenants, bundles, the transparency log, balances and limits.

One SQLite file under $VBILL_HOME (WAL, foreign keys on, busy timeout). The attest path is one
`BEGIN IMMEDIATE` transaction that re-checks uniqueness and limits, appends the log leaf, signs
the new tree head and inserts the bundle carrying its receipt; a crash anywhere inside leaves
neither a bundle nor a leaf. Proving (slow) happens before that transaction, under a per-event
lock so concurrent duplicates prove once.

Money is kept in micro-ETH for charges (1 micro = 10^12 wei, exact) and in wei for deposits;
`total = credited deposits − settled charges`, `reserved = attested, unsettled charges`,
`available = total − reserved`. Deposits count only after `CONFIRMATIONS` blocks.

PostgreSQL (`DATABASE_URL=postgresql://…`) holds the same schema for several API replicas and
workers: the SQL here is written once for both dialects (vbill.ledger.db rewrites it), and a
transaction-level advisory lock plays the part of BEGIN IMMEDIATE.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any
from urllib.parse import quote

from vbill.errors import InputError, ToolError, VbillError
from vbill.ledger import db, outbox, translog
from vbill.models import Bundle

WEI_PER_MICRO = 10**12
DAY_MS = 86_400_000  # a UTC day; the contract's spent_day is block.timestamp / 1 day too
_ADDRESS = re.compile(r"0x[0-9a-f]{40}", re.ASCII)
_SHA256 = re.compile(r"[0-9a-f]{64}", re.ASCII)
# Retry-After (s) of a 429 that no retry alone can turn into a success (a per-request limit,
# no chain to credit deposits): clients must back off rather than loop, and an hour is about
# as soon as the operator or the tenant's controller could change what refused it.
NEVER_RETRY_AFTER = 3600
CONFIRMATIONS = 12
DB_NAME = "vbill.sqlite3"


def _amount_check(column: str) -> str:
    """SQL: the column holds a canonical decimal integer 0 ≤ v < 2^64 (or NULL)."""
    return (
        f"{column} IS NULL OR ({column} GLOB '[0-9]*' AND {column} NOT GLOB '*[^0-9]*' "
        f"AND ({column} = '0' OR {column} NOT GLOB '0*') AND (length({column}) < 20 OR "
        f"(length({column}) = 20 AND {column} <= '18446744073709551615')))"
    )


def _amount(value: int | None) -> str | None:
    """An amount as the store keeps it (canonical decimal TEXT)."""
    return None if value is None else str(value)


def _int_or_none(value: str | None) -> int | None:
    return None if value is None else int(value)


MIGRATIONS: list[str] = [
    # 1: the initial schema
    """
    CREATE TABLE tenants (
        tenant_id      TEXT PRIMARY KEY,
        account_salt   TEXT NOT NULL,
        tenant_key     TEXT NOT NULL UNIQUE,
        onchain_status TEXT NOT NULL DEFAULT 'unbound',
        onchain_tx     TEXT,
        created_at     INTEGER NOT NULL
    );
    CREATE TABLE log_leaves (
        leaf_index INTEGER PRIMARY KEY,
        leaf_hash  BLOB NOT NULL CHECK (length(leaf_hash) = 32),
        created_at INTEGER NOT NULL
    );
    CREATE TABLE tree_heads (
        tree_size   INTEGER PRIMARY KEY,
        root_hash   TEXT NOT NULL,
        timestamp   INTEGER NOT NULL,
        signer      TEXT NOT NULL,
        signature   TEXT NOT NULL,
        anchored_tx TEXT
    );
    CREATE TABLE bundles (
        id                INTEGER PRIMARY KEY,
        tenant_id         TEXT NOT NULL REFERENCES tenants(tenant_id),
        event_id          TEXT NOT NULL,
        request_hash      TEXT NOT NULL,
        bundle_json       TEXT NOT NULL,
        digest            TEXT NOT NULL,
        leaf_index        INTEGER NOT NULL UNIQUE REFERENCES log_leaves(leaf_index),
        currency          TEXT NOT NULL,
        charge_micros     INTEGER NOT NULL CHECK (charge_micros >= 0),
        nullifier         TEXT NOT NULL,
        created_at        INTEGER NOT NULL,
        settlement_status TEXT NOT NULL
            CHECK (settlement_status IN ('none', 'pending', 'settled', 'failed')),
        settlement_json   TEXT,
        settle_attempts   INTEGER NOT NULL DEFAULT 0,
        last_error        TEXT,
        UNIQUE (tenant_id, event_id)
    );
    CREATE INDEX bundles_pending ON bundles (settlement_status, leaf_index);
    CREATE INDEX bundles_daily ON bundles (tenant_id, created_at);
    CREATE TABLE deposits (
        tx_hash      TEXT NOT NULL,
        log_index    INTEGER NOT NULL,
        tenant_id    TEXT NOT NULL REFERENCES tenants(tenant_id),
        amount_wei   TEXT NOT NULL,
        block_number INTEGER NOT NULL,
        credited     INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (tx_hash, log_index)
    );
    CREATE TABLE limits (
        tenant_id           TEXT PRIMARY KEY REFERENCES tenants(tenant_id),
        per_request_micros  INTEGER,
        daily_micros        INTEGER
    );
    CREATE TABLE revocations (
        kind       TEXT NOT NULL CHECK (kind IN ('attester', 'vkey')),
        value      TEXT NOT NULL,
        reason     TEXT NOT NULL,
        revoked_at INTEGER NOT NULL,
        PRIMARY KEY (kind, value)
    );
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    # 2: tenant-scoped API tokens, kept as SHA-256 hashes only (vbill.ledger.tokens)
    """
    CREATE TABLE tenant_tokens (
        token_id     TEXT PRIMARY KEY,
        tenant_id    TEXT NOT NULL REFERENCES tenants(tenant_id),
        token_sha256 TEXT NOT NULL UNIQUE,
        created_at   INTEGER NOT NULL,
        revoked_at   INTEGER
    );
    CREATE INDEX tenant_tokens_tenant ON tenant_tokens (tenant_id);
    """,
    # 3: the tenant's on-chain account as the settlement worker last read it (wei as TEXT:
    # uint96 does not fit SQLite's INTEGER), and retired (rotated-out, not compromised) keys
    """
    CREATE TABLE chain_accounts (
        tenant_id       TEXT PRIMARY KEY REFERENCES tenants(tenant_id),
        available_wei   TEXT NOT NULL,
        reserved_wei    TEXT NOT NULL,
        per_request_wei TEXT NOT NULL,
        daily_wei       TEXT NOT NULL,
        spent_today_wei TEXT NOT NULL,
        spent_day       INTEGER NOT NULL,
        block_number    INTEGER NOT NULL,
        synced_at       INTEGER NOT NULL
    );
    CREATE TABLE attester_retirements (
        address    TEXT PRIMARY KEY,
        retired_at INTEGER NOT NULL,
        reason     TEXT NOT NULL
    );
    """,
    # 4: amounts as canonical decimal TEXT: charges and limits go up to 2^64 − 1, past SQLite's
    # signed 64-bit INTEGER (sums are taken in Python, exactly)
    f"""
    CREATE TABLE bundles_v4 (
        id                INTEGER PRIMARY KEY,
        tenant_id         TEXT NOT NULL REFERENCES tenants(tenant_id),
        event_id          TEXT NOT NULL,
        request_hash      TEXT NOT NULL,
        bundle_json       TEXT NOT NULL,
        digest            TEXT NOT NULL,
        leaf_index        INTEGER NOT NULL UNIQUE REFERENCES log_leaves(leaf_index),
        currency          TEXT NOT NULL,
        charge_micros     TEXT NOT NULL CHECK ({_amount_check("charge_micros")}),
        nullifier         TEXT NOT NULL,
        created_at        INTEGER NOT NULL,
        settlement_status TEXT NOT NULL
            CHECK (settlement_status IN ('none', 'pending', 'settled', 'failed')),
        settlement_json   TEXT,
        settle_attempts   INTEGER NOT NULL DEFAULT 0,
        last_error        TEXT,
        UNIQUE (tenant_id, event_id)
    );
    INSERT INTO bundles_v4 SELECT id, tenant_id, event_id, request_hash, bundle_json, digest,
        leaf_index, currency, CAST(charge_micros AS TEXT), nullifier, created_at,
        settlement_status, settlement_json, settle_attempts, last_error FROM bundles;
    DROP TABLE bundles;
    ALTER TABLE bundles_v4 RENAME TO bundles;
    CREATE INDEX bundles_pending ON bundles (settlement_status, leaf_index);
    CREATE INDEX bundles_daily ON bundles (tenant_id, created_at);
    CREATE TABLE limits_v4 (
        tenant_id           TEXT PRIMARY KEY REFERENCES tenants(tenant_id),
        per_request_micros  TEXT CHECK ({_amount_check("per_request_micros")}),
        daily_micros        TEXT CHECK ({_amount_check("daily_micros")})
    );
    INSERT INTO limits_v4 SELECT tenant_id, CAST(per_request_micros AS TEXT),
        CAST(daily_micros AS TEXT) FROM limits;
    DROP TABLE limits;
    ALTER TABLE limits_v4 RENAME TO limits;
    """,
    # 5: bundles signed and logged at ingestion, proved later by workers (vbill.ingest): a
    # bundle is 'proving' until a worker attaches its proof; a worker's claim is a lease
    """
    ALTER TABLE bundles ADD COLUMN proof_status TEXT NOT NULL DEFAULT 'proven'
        CHECK (proof_status IN ('proving', 'proven'));
    ALTER TABLE bundles ADD COLUMN claimed_by TEXT;
    ALTER TABLE bundles ADD COLUMN lease_until INTEGER;
    CREATE INDEX bundles_proving ON bundles (proof_status, leaf_index);
    """,
    # 6: metered windows (binding v2): one chain of proven states per (tenant, billing window,
    # tariff_id); the head is the last state, each event's place is its seq (1, 2, ...)
    """
    CREATE TABLE window_heads (
        tenant_id         TEXT NOT NULL,
        billing_window_id TEXT NOT NULL,
        tariff_id         TEXT NOT NULL,
        seq               INTEGER NOT NULL CHECK (seq >= 1),
        event_id          TEXT NOT NULL,
        state_json        TEXT NOT NULL,
        PRIMARY KEY (tenant_id, billing_window_id, tariff_id)
    );
    CREATE TABLE window_events (
        tenant_id         TEXT NOT NULL,
        billing_window_id TEXT NOT NULL,
        tariff_id         TEXT NOT NULL,
        seq               INTEGER NOT NULL CHECK (seq >= 1),
        event_id          TEXT NOT NULL,
        PRIMARY KEY (tenant_id, billing_window_id, tariff_id, seq),
        UNIQUE (tenant_id, event_id)
    );
    """,
    # 7: webhook endpoints and the outbox their events are delivered from (vbill.ledger.outbox)
    outbox.SCHEMA,
    # 8: close records (docs/protocol-v2.md §13): a closed window takes no more entries; the
    # record is signed and logged like a bundle (its leaf in log_leaves)
    """
    CREATE TABLE window_closes (
        tenant_id         TEXT NOT NULL,
        billing_window_id TEXT NOT NULL,
        tariff_id         TEXT NOT NULL,
        seq               INTEGER NOT NULL CHECK (seq >= 1),
        leaf_index        INTEGER NOT NULL UNIQUE REFERENCES log_leaves(leaf_index),
        closed_at         INTEGER NOT NULL,
        record_json       TEXT NOT NULL,
        PRIMARY KEY (tenant_id, billing_window_id, tariff_id)
    );
    """,
    # 9: corrections (docs/protocol-corrections.md): signed, logged documents that take units
    # back from one earlier event; at most one per event, each an entry of its window's chain
    # (window_events.kind), so a window's seq counts events and corrections alike
    f"""
    CREATE TABLE corrections (
        id                INTEGER PRIMARY KEY,
        tenant_id         TEXT NOT NULL REFERENCES tenants(tenant_id),
        correction_id     TEXT NOT NULL,
        corrects          TEXT NOT NULL,
        request_hash      TEXT NOT NULL,
        doc_json          TEXT NOT NULL,
        digest            TEXT NOT NULL,
        leaf_index        INTEGER NOT NULL UNIQUE REFERENCES log_leaves(leaf_index),
        currency          TEXT NOT NULL,
        credit_micros     TEXT NOT NULL CHECK ({_amount_check("credit_micros")}),
        nullifier         TEXT NOT NULL,
        created_at        INTEGER NOT NULL,
        settlement_status TEXT NOT NULL
            CHECK (settlement_status IN ('none', 'pending', 'settled', 'failed')),
        settlement_json   TEXT,
        UNIQUE (tenant_id, correction_id),
        UNIQUE (tenant_id, corrects)
    );
    ALTER TABLE window_events ADD COLUMN kind TEXT NOT NULL DEFAULT 'event'
        CHECK (kind IN ('event', 'correction'));
    """,
]


class Conflict(VbillError):
    """The event id is already attested with a different payload (HTTP 409)."""

    exit_code = 2


class LimitExceeded(VbillError):
    """A charge would pass a spending limit or the available balance (HTTP 429)."""

    exit_code = 2

    def __init__(self, reason: str, retry_after: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class TenantRaced(VbillError):
    """A new tenant's first attest lost the race to create it: prove again with its salt."""


class WindowMoved(VbillError):
    """Another process attested into the window while this event was proved: its state
    before is stale, so it is proved again from the new head (never stored on a stale one)."""


class NotFound(VbillError):
    """No such event for this tenant (HTTP 404): never says whether another tenant has one."""


WindowKey = tuple[str, str, str]
"""(tenant_id, billing_window_id, tariff_id) of a metered window."""


class WindowClosed(Conflict):
    """The window has a close record: no more events or corrections (HTTP 409, exit 2)."""


class NoWindow(VbillError):
    """No chain for this (tenant, billing window, tariff_id) (HTTP 404, exit 2)."""


@dataclass(frozen=True)
class StoredCorrection:
    """A logged correction (docs/protocol-corrections.md): its document carries its receipt."""

    tenant_id: str
    correction_id: str
    corrects: str
    request_hash: str
    doc: dict[str, Any]
    digest: str
    leaf_index: int
    currency: str
    credit_micros: int
    nullifier: str
    settlement_status: str
    settlement: dict[str, Any] | None
    created_at: int


@dataclass(frozen=True)
class WindowHead:
    """A window's last state: its seq and the JSON state (the bundle's billing.window.after)."""

    seq: int
    event_id: str
    state: dict[str, Any]


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    account_salt: int
    tenant_key: int
    onchain_status: str
    onchain_tx: str | None
    created_at: int


@dataclass(frozen=True)
class StoredBundle:
    tenant_id: str
    event_id: str
    request_hash: str
    bundle: dict[str, Any]
    digest: str
    leaf_index: int
    currency: str
    charge_micros: int
    nullifier: str
    settlement_status: str
    settlement: dict[str, Any] | None
    settle_attempts: int
    last_error: str | None
    created_at: int
    proof_status: str = "proven"  # 'proving' until a worker attaches the Groth16 proof

    @property
    def proven(self) -> bool:
        return self.proof_status == "proven"


@dataclass(frozen=True)
class Ingest:
    """One event ready to log: validated, charged and signed (its proof may follow later)."""

    tenant_id: str
    event_id: str
    request_hash: str
    charge: Charge
    bundle: dict[str, Any]  # signed bundle JSON, no receipt yet
    new_tenant: tuple[int, int] | None = None  # (account_salt, tenant_key) if first seen
    proven: bool = False
    claim: tuple[str, int] | None = None  # (prover, lease ms): leased at once to its prover
    window: IngestWindow | None = None  # a metered event: its window and the head it was built on


@dataclass(frozen=True)
class IngestWindow:
    """A metered event's place in its window: the head seq it was charged and signed on, and
    how to sign it again from the actual head when another event took that seq first
    (InputError if the window would overflow from there)."""

    key: WindowKey
    seq: int
    rebuild: Callable[[WindowHead | None], Ingest]


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


def now_ms() -> int:
    return time.time_ns() // 1_000_000


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


def open_store(
    database_url: str | None = None, *, home: Path | None = None, log_key: Any = None
) -> Store:
    """The configured store: `DATABASE_URL` if set (sqlite:///path or postgresql://…), else
    SQLite at $VBILL_HOME/vbill.sqlite3."""
    if db.is_postgres_url(database_url):
        return Store(database_url, log_key=log_key)  # type: ignore[arg-type]
    if database_url:
        if not database_url.startswith("sqlite:///"):
            raise ToolError(f"unsupported DATABASE_URL scheme: {database_url.split(':', 1)[0]}")
        return Store(Path(database_url.removeprefix("sqlite:///")), log_key=log_key)
    from vbill import paths

    return Store((home or paths.vbill_home()) / DB_NAME, log_key=log_key)


def _bundle_if(c: Any, tenant_id: str, event_id: str, column: str, state: str) -> Any:
    """Inside transaction `c`: the bundle's JSON if its `column` (proof_status or
    settlement_status) is `state`, else None: the guard of every one-way state change."""
    assert column in ("proof_status", "settlement_status")
    row = c.execute(
        f"SELECT bundle_json, {column} FROM bundles WHERE tenant_id = ? AND event_id = ?",
        (tenant_id, event_id),
    ).fetchone()
    if row is None or row[column] != state:
        return None
    return json.loads(row["bundle_json"])


class Store:
    """SQLite- or PostgreSQL-backed state (a file path, or a postgresql:// URL); safe to share
    between threads (one connection per thread)."""

    def __init__(self, path: Path | str, *, log_key: Any = None) -> None:
        from vbill import paths

        self.url = str(path) if db.is_postgres_url(str(path)) else None
        self.path = Path(path) if self.url is None else None
        if self.path is not None:
            paths.private_dir(self.path.parent)
            self._private_files()  # before SQLite creates the file with the umask's mode
        self._log_key = log_key
        self.deposits_tracked = True  # False: no chain, so no deposit will ever be credited
        # webhook marks (Settings): shares of the daily limit, the low-balance mark (wei)
        self.usage_shares: tuple[Fraction, ...] = (Fraction(4, 5),)
        self.balance_low_wei: int | None = None
        self._local = threading.local()
        self._tree_lock = threading.RLock()
        self._keys_guard = threading.Lock()
        self._key_locks: dict[tuple[str, ...], tuple[threading.Lock, int]] = {}
        self._migrate()
        if self.path is not None:
            self._private_files()  # the WAL and shared-memory files now exist too
        self._tree = translog.MerkleTree()
        with self._tree_lock:
            self._sync_tree(self._conn())

    # --- plumbing ---

    def _private_files(self) -> None:
        """The database (every tenant's account salt) and its WAL/SHM files: 0600, always."""
        try:
            # Create it only if missing: opening and closing a file SQLite holds would drop
            # every POSIX lock this process has on it, and another process closing its last
            # connection would then checkpoint and delete the WAL still in use here (lost
            # writes, seen with `vbill worker` processes beside `vbill serve`).
            if not self.path.exists():
                try:
                    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                    os.close(os.open(self.path, flags, 0o600))
                except FileExistsError:
                    pass
            for suffix in ("", "-wal", "-shm"):
                file = self.path.with_name(self.path.name + suffix)
                if file.exists():
                    os.chmod(file, 0o600)
        except OSError as exc:
            raise ToolError(f"cannot make {self.path} private (0600): {exc.strerror}") from None

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None and self.url is not None:
            conn = self._local.conn = db.PgConnection(self.url)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken up front (BEGIN IMMEDIATE, or PostgreSQL's advisory writer
        lock): writers queue, never deadlock, and each sees every earlier commit."""
        conn = self._conn()
        if self.url is None:
            conn.execute("BEGIN IMMEDIATE")
        else:
            conn.execute("BEGIN")
            conn.execute("SELECT pg_advisory_xact_lock(?)", (db.WRITER_LOCK_KEY,))
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _migrate(self) -> None:
        with self._tx() as c:
            c.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = c.execute("SELECT MAX(version) FROM schema_version").fetchone()
            current = row[0] or 0
            if current > len(MIGRATIONS):
                raise ToolError(
                    f"{self.path or 'the database'} has schema version {current}, newer "
                    f"than this vbill ({len(MIGRATIONS)}); upgrade vbill"
                )
            for version, script in enumerate(MIGRATIONS[current:], start=current + 1):
                for statement in db.statements(script if self.url is None else db.pg_ddl(script)):
                    c.execute(statement)
                c.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))

    def schema_version(self) -> int:
        return self._conn().execute("SELECT MAX(version) FROM schema_version").fetchone()[0]

    @contextmanager
    def _event_lock(self, key: tuple[str, ...]) -> Iterator[None]:
        """Serialise work on one (tenant, event): a duplicate waits instead of proving again."""
        with self._keys_guard:
            lock, users = self._key_locks.get(key, (threading.Lock(), 0))
            self._key_locks[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._keys_guard:
                lock, users = self._key_locks[key]
                if users <= 1:
                    del self._key_locks[key]
                else:
                    self._key_locks[key] = (lock, users - 1)

    # --- tenants ---

    def add_tenant(self, tenant_id: str, account_salt: int, tenant_key: int) -> Tenant:
        with self._tx() as c:
            if self._tenant(c, tenant_id) is not None:
                raise Conflict(f"tenant {tenant_id!r} already exists")
            self._create_tenant(c, tenant_id, account_salt, tenant_key)
            tenant = self._tenant(c, tenant_id)
        assert tenant is not None
        return tenant

    @classmethod
    def _create_tenant(
        cls, c: sqlite3.Connection, tenant_id: str, account_salt: int, tenant_key: int
    ) -> None:
        """Insert the tenant unless it exists with this salt; TenantRaced if with another."""
        existing = cls._tenant(c, tenant_id)
        if existing is None:
            c.execute(
                "INSERT INTO tenants (tenant_id, account_salt, tenant_key, created_at) "
                "VALUES (?, ?, ?, ?)",
                (tenant_id, str(account_salt), str(tenant_key), now_ms()),
            )
        elif existing.account_salt != account_salt:
            raise TenantRaced(f"tenant {tenant_id!r} was created concurrently")

    def ensure_tenant(self, tenant_id: str, make: Callable[[], tuple[int, int]]) -> Tenant:
        """The tenant, created with `make() -> (account_salt, tenant_key)` if new."""
        existing = self.tenant(tenant_id)
        if existing is not None:
            return existing
        salt, key = make()
        try:
            return self.add_tenant(tenant_id, salt, key)
        except Conflict:  # created concurrently: theirs stands
            existing = self.tenant(tenant_id)
            assert existing is not None
            return existing

    def tenant(self, tenant_id: str) -> Tenant | None:
        return self._tenant(self._conn(), tenant_id)

    def tenant_by_key(self, tenant_key: int) -> Tenant | None:
        row = (
            self._conn()
            .execute("SELECT * FROM tenants WHERE tenant_key = ?", (str(tenant_key),))
            .fetchone()
        )
        return _tenant_row(row) if row else None

    def tenants(self) -> list[Tenant]:
        rows = self._conn().execute("SELECT * FROM tenants ORDER BY tenant_id").fetchall()
        return [_tenant_row(r) for r in rows]

    @staticmethod
    def _tenant(c: sqlite3.Connection, tenant_id: str) -> Tenant | None:
        row = c.execute("SELECT * FROM tenants WHERE tenant_id = ?", (tenant_id,)).fetchone()
        return _tenant_row(row) if row else None

    def set_onchain(self, tenant_id: str, status: str, tx: str | None) -> None:
        with self._tx() as c:
            c.execute(
                "UPDATE tenants SET onchain_status = ?, onchain_tx = ? WHERE tenant_id = ?",
                (status, tx, tenant_id),
            )

    # --- limits, balances, deposits ---

    def set_limits(self, tenant_id: str, limits: Limits) -> None:
        with self._tx() as c:
            c.execute(
                "INSERT INTO limits (tenant_id, per_request_micros, daily_micros) VALUES (?,?,?) "
                "ON CONFLICT(tenant_id) DO UPDATE SET per_request_micros = excluded."
                "per_request_micros, daily_micros = excluded.daily_micros",
                (tenant_id, _amount(limits.per_request_micros), _amount(limits.daily_micros)),
            )

    def limits(self, tenant_id: str) -> Limits:
        return self._limits(self._conn(), tenant_id)

    @staticmethod
    def _limits(c: sqlite3.Connection, tenant_id: str) -> Limits:
        row = c.execute("SELECT * FROM limits WHERE tenant_id = ?", (tenant_id,)).fetchone()
        if row is None:
            return Limits()
        return Limits(_int_or_none(row["per_request_micros"]), _int_or_none(row["daily_micros"]))

    def balance(self, tenant_id: str) -> Balance:
        return self._balance(self._conn(), tenant_id)

    def set_chain_account(self, tenant_id: str, acct: ChainAccount) -> None:
        """Record the worker's latest read of the tenant's on-chain account."""
        with self._tx() as c:
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
        return self._chain_account(self._conn(), tenant_id)

    @staticmethod
    def _chain_account(c: sqlite3.Connection, tenant_id: str) -> ChainAccount | None:
        row = c.execute("SELECT * FROM chain_accounts WHERE tenant_id = ?", (tenant_id,)).fetchone()
        if row is None:
            return None
        return ChainAccount(
            available_wei=int(row["available_wei"]),
            reserved_wei=int(row["reserved_wei"]),
            per_request_wei=int(row["per_request_wei"]),
            daily_wei=int(row["daily_wei"]),
            spent_today_wei=int(row["spent_today_wei"]),
            spent_day=row["spent_day"],
            block_number=row["block_number"],
        )

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
        return self._spent_today(self._conn(), tenant_id, at_ms or now_ms())

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
        with self._tx() as c:
            cur = c.execute(
                "INSERT INTO deposits (tx_hash, log_index, tenant_id, amount_wei, "
                "block_number) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (tx_hash.lower(), log_index, tenant_id, str(amount_wei), block_number),
            )
            return cur.rowcount == 1

    def credit_confirmed(self, head_block: int, confirmations: int = CONFIRMATIONS) -> int:
        """Credit deposits with at least `confirmations` blocks (its own block counts as one)."""
        with self._tx() as c:
            cur = c.execute(
                "UPDATE deposits SET credited = 1 WHERE credited = 0 AND block_number <= ?",
                (head_block - confirmations + 1,),
            )
            return cur.rowcount

    def uncredited_deposits(self, max_block: int) -> list[dict[str, Any]]:
        """Deposits old enough to credit (block ≤ max_block) that are not credited yet."""
        rows = self._conn().execute(
            "SELECT * FROM deposits WHERE credited = 0 AND block_number <= ? "
            "ORDER BY block_number, log_index",
            (max_block,),
        )
        return [dict(r) for r in rows]

    def credit_deposit(self, tx_hash: str, log_index: int) -> None:
        with self._tx() as c:
            c.execute(
                "UPDATE deposits SET credited = 1 WHERE tx_hash = ? AND log_index = ?",
                (tx_hash.lower(), log_index),
            )

    def drop_deposit(self, tx_hash: str, log_index: int) -> None:
        """Forget an uncredited deposit that is no longer on chain (reorged out)."""
        with self._tx() as c:
            c.execute(
                "DELETE FROM deposits WHERE tx_hash = ? AND log_index = ? AND credited = 0",
                (tx_hash.lower(), log_index),
            )

    def deposits(self, tenant_id: str) -> list[dict[str, Any]]:
        rows = self._conn().execute(
            "SELECT * FROM deposits WHERE tenant_id = ? ORDER BY block_number, log_index",
            (tenant_id,),
        )
        return [dict(r) for r in rows]

    def get_meta(self, key: str) -> str | None:
        row = self._conn().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as c:
            c.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def _check_spend(self, c: sqlite3.Connection, tenant_id: str, charge: Charge) -> Spend | None:
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

    def _notify_spend(
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

    # --- attest ---

    def find(self, tenant_id: str, event_id: str) -> StoredBundle | None:
        return self._find(self._conn(), tenant_id, event_id)

    @staticmethod
    def _find(c: sqlite3.Connection, tenant_id: str, event_id: str) -> StoredBundle | None:
        row = c.execute(
            "SELECT * FROM bundles WHERE tenant_id = ? AND event_id = ?", (tenant_id, event_id)
        ).fetchone()
        return _bundle_row(row) if row else None

    def find_by_event(self, event_id: str) -> list[StoredBundle]:
        rows = self._conn().execute(
            "SELECT * FROM bundles WHERE event_id = ? ORDER BY leaf_index", (event_id,)
        )
        return [_bundle_row(r) for r in rows]

    def bundles(self, tenant_id: str | None = None) -> list[StoredBundle]:
        if tenant_id is None:
            rows = self._conn().execute("SELECT * FROM bundles ORDER BY leaf_index")
        else:
            rows = self._conn().execute(
                "SELECT * FROM bundles WHERE tenant_id = ? ORDER BY leaf_index", (tenant_id,)
            )
        return [_bundle_row(r) for r in rows]

    @staticmethod
    def _same_or_conflict(existing: StoredBundle, request_hash: str) -> StoredBundle:
        if existing.request_hash != request_hash:
            raise Conflict(
                f"event_id {existing.event_id!r} of tenant {existing.tenant_id!r} is already "
                "attested with a different payload"
            )
        return existing

    def attest_once(
        self,
        *,
        tenant_id: str,
        event_id: str,
        request_hash: str,
        charge: Charge,
        build: Callable[[], Bundle],
        new_tenant: tuple[int, int] | None = None,
    ) -> tuple[StoredBundle, bool]:
        """Store the bundle for (tenant, event) exactly once; returns (stored, created).

        Same payload again → the stored bundle (never re-proved); different payload → Conflict;
        a limit or the balance would be passed → LimitExceeded, before and after proving.
        `new_tenant` (account_salt, tenant_key) creates the tenant in the same transaction as
        its first bundle, so a refused first attest leaves no tenant behind; TenantRaced if
        another attest created it first with another salt (build again with the stored one).
        """
        if self._log_key is None:
            raise ToolError("the store has no log signing key; cannot append to the log")
        with self._event_lock((tenant_id, event_id)):
            existing = self.find(tenant_id, event_id)
            if existing is not None:
                return self._same_or_conflict(existing, request_hash), False
            self._check_spend(self._conn(), tenant_id, charge)
            bundle = build()  # slow, outside any transaction
            return self._insert(tenant_id, event_id, request_hash, charge, bundle, new_tenant)

    def attest_window(
        self,
        *,
        tenant_id: str,
        event_id: str,
        request_hash: str,
        window: WindowKey,
        charge: Callable[[WindowHead | None], Charge],
        build: Callable[[WindowHead | None], Any],
        new_tenant: tuple[int, int] | None = None,
        attempts: int = 100,
    ) -> tuple[StoredBundle, bool]:
        """`attest_once` for a metered event, whose charge and proof depend on the window's
        head (None: genesis). The head is read under the window's lock, and the bundle is
        stored only if the head is still the one it was built on, in the same transaction
        that assigns its seq; if another process moved it, the event is proved again. So a
        window never forks or skips, and idempotency is attest_once's."""
        if self._log_key is None:
            raise ToolError("the store has no log signing key; cannot append to the log")
        with self._event_lock((tenant_id, event_id)), self._event_lock(("window", *window)):
            for _ in range(attempts):
                existing = self.find(tenant_id, event_id)
                if existing is not None:
                    return self._same_or_conflict(existing, request_hash), False
                self._refuse_if_closed(self._conn(), window)  # before a proof is spent
                head = self.window_head(window)
                cost = charge(head)
                self._check_spend(self._conn(), tenant_id, cost)
                bundle = build(head)  # slow, outside any transaction
                try:
                    return self._insert(
                        tenant_id,
                        event_id,
                        request_hash,
                        cost,
                        bundle,
                        new_tenant,
                        window=(window, head.seq if head else 0),
                    )
                except WindowMoved:
                    continue
        raise ToolError(f"window {window} kept moving during {attempts} attempts; try again")

    def window_head(self, window: WindowKey) -> WindowHead | None:
        return self._window_head(self._conn(), window)

    @staticmethod
    def _window_head(c: sqlite3.Connection, window: WindowKey) -> WindowHead | None:
        row = c.execute(
            "SELECT seq, event_id, state_json FROM window_heads WHERE tenant_id = ? AND "
            "billing_window_id = ? AND tariff_id = ?",
            window,
        ).fetchone()
        return WindowHead(row[0], row[1], json.loads(row[2])) if row else None

    def window_tariffs(self, tenant_id: str, billing_window_id: str) -> list[str]:
        """The tariff_ids with a chain in this window of the tenant."""
        rows = self._conn().execute(
            "SELECT tariff_id FROM window_heads WHERE tenant_id = ? AND billing_window_id = ? "
            "ORDER BY tariff_id",
            (tenant_id, billing_window_id),
        )
        return [r[0] for r in rows]

    def window_bundles(self, window: WindowKey) -> list[StoredBundle]:
        """A window's bundles in seq order (the chain a statement verifies)."""
        rows = self._conn().execute(
            "SELECT b.* FROM window_events w JOIN bundles b ON b.tenant_id = w.tenant_id AND "
            "b.event_id = w.event_id WHERE w.tenant_id = ? AND w.billing_window_id = ? AND "
            "w.tariff_id = ? ORDER BY w.seq",
            window,
        )
        return [_bundle_row(r) for r in rows]

    def _advance_window(
        self,
        c: sqlite3.Connection,
        window: WindowKey,
        seq: int,
        event_id: str,
        after: Any,
        kind: str = "event",
    ) -> None:
        """Append entry `seq` (an event, or a correction by its correction_id) to the window
        and make its state the head (inside the insert's transaction; the head was checked to
        be seq − 1 there)."""
        state = json.dumps(after, sort_keys=True)
        c.execute(
            "INSERT INTO window_events (tenant_id, billing_window_id, tariff_id, seq, event_id, "
            "kind) VALUES (?, ?, ?, ?, ?, ?)",
            (*window, seq, event_id, kind),
        )
        c.execute(
            "INSERT INTO window_heads (tenant_id, billing_window_id, tariff_id, seq, event_id, "
            "state_json) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (tenant_id, billing_window_id, "
            "tariff_id) DO UPDATE SET seq = excluded.seq, event_id = excluded.event_id, "
            "state_json = excluded.state_json",
            (*window, seq, event_id, state),
        )

    def _insert(
        self,
        tenant_id: str,
        event_id: str,
        request_hash: str,
        charge: Charge,
        bundle: Bundle,
        new_tenant: tuple[int, int] | None = None,
        window: tuple[WindowKey, int] | None = None,
    ) -> tuple[StoredBundle, bool]:
        """Insert one bundle with its log leaf; `window` (key, head seq it was built on) also
        appends it to a metered window, or raises WindowMoved if the head is no longer that."""
        from vbill.bundle.bundle import digest_of, with_receipt

        digest = digest_of(bundle)
        leaf = translog.leaf_hash(digest)
        nullifier = bundle.attestation.billing_proof.public_signals[3]
        with self._tx() as c:
            existing = self._find(c, tenant_id, event_id)
            if existing is not None:  # another process won the race
                return self._same_or_conflict(existing, request_hash), False
            if new_tenant is not None:
                self._create_tenant(c, tenant_id, *new_tenant)
            spend = self._check_spend(c, tenant_id, charge)
            if window is not None:
                self._refuse_if_closed(c, window[0])
                head = self._window_head(c, window[0])
                if (head.seq if head else 0) != window[1]:
                    raise WindowMoved(f"window {window[0]} moved past seq {window[1]}")
            with self._tree_lock:
                self._sync_tree(c)
                index = len(self._tree)
                at = now_ms()
                try:
                    receipt = self._log_one(c, leaf, at)
                    stored = with_receipt(bundle, receipt.to_dict()).model_dump(mode="json")
                    c.execute(
                        "INSERT INTO bundles (tenant_id, event_id, request_hash, bundle_json, "
                        "digest, leaf_index, currency, charge_micros, nullifier, created_at, "
                        "settlement_status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            tenant_id,
                            event_id,
                            request_hash,
                            json.dumps(stored, sort_keys=True),
                            "0x" + digest.hex(),
                            index,
                            charge.currency,
                            _amount(charge.charge_micros),
                            nullifier,
                            at,
                            "pending" if charge.is_eth else "none",
                        ),
                    )
                    if window is not None:
                        w = bundle.billing.window  # type: ignore[attr-defined]
                        if w.seq != window[1] + 1:
                            raise ToolError(f"bundle has seq {w.seq}, head is {window[1]}")
                        self._advance_window(
                            c, window[0], window[1] + 1, event_id, w.after.model_dump(mode="json")
                        )
                    self._notify_spend(c, tenant_id, event_id, charge, spend, at)
                except BaseException:
                    self._tree.truncate(index)
                    raise
            found = self._find(c, tenant_id, event_id)
        assert found is not None
        return found, True

    def _log_one(self, c: sqlite3.Connection, leaf: bytes, at: int) -> translog.LogReceipt:
        """Append one leaf and sign the new head, inside the caller's transaction and tree
        lock; the caller truncates the tree to its size before this if anything then fails."""
        index = len(self._tree)
        c.execute(
            "INSERT INTO log_leaves (leaf_index, leaf_hash, created_at) VALUES (?, ?, ?)",
            (index, leaf, at),
        )
        self._tree.append(leaf)
        return translog.LogReceipt(
            leaf_index=index,
            tree_size=index + 1,
            leaf_hash="0x" + leaf.hex(),
            inclusion_proof=["0x" + p.hex() for p in self._tree.inclusion_proof(index)],
            tree_head=self._sign_head(c, index + 1, at),
        )

    def _sign_head(self, c: sqlite3.Connection, size: int, at: int) -> translog.SignedTreeHead:
        head = translog.TreeHead(size, self._tree.root(size), at)
        sth = translog.sign_tree_head(head, self._log_key)
        c.execute(
            "INSERT INTO tree_heads (tree_size, root_hash, timestamp, signer, signature) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (tree_size) DO UPDATE SET root_hash = "
            "excluded.root_hash, timestamp = excluded.timestamp, signer = excluded.signer, "
            "signature = excluded.signature",
            (sth.tree_size, sth.root_hash, sth.timestamp, sth.signer, sth.signature),
        )
        return sth

    # --- corrections (docs/protocol-corrections.md) ---

    def find_correction(self, tenant_id: str, correction_id: str) -> StoredCorrection | None:
        row = (
            self._conn()
            .execute(
                "SELECT * FROM corrections WHERE tenant_id = ? AND correction_id = ?",
                (tenant_id, correction_id),
            )
            .fetchone()
        )
        return _correction_row(row) if row else None

    def correction_of(self, tenant_id: str, event_id: str) -> StoredCorrection | None:
        """The correction of one event, if it has one (an event is corrected at most once)."""
        row = (
            self._conn()
            .execute(
                "SELECT * FROM corrections WHERE tenant_id = ? AND corrects = ?",
                (tenant_id, event_id),
            )
            .fetchone()
        )
        return _correction_row(row) if row else None

    def corrections(self, tenant_id: str | None = None) -> list[StoredCorrection]:
        sql, args = "SELECT * FROM corrections", ()
        if tenant_id is not None:
            sql, args = sql + " WHERE tenant_id = ?", (tenant_id,)
        return [
            _correction_row(r) for r in self._conn().execute(sql + " ORDER BY leaf_index", args)
        ]

    def correct(
        self,
        *,
        tenant_id: str,
        correction_id: str,
        corrects: str,
        request_hash: str,
        build: Callable[[StoredBundle, WindowHead | None], dict[str, Any]],
        attempts: int = 100,
    ) -> tuple[StoredCorrection, bool]:
        """Log one correction of the tenant's event `corrects`; returns (stored, created).

        The same correction_id again with the same payload returns the stored one, with
        another payload is a Conflict; an unknown event (or another tenant's) is NotFound; an
        event already corrected, or a correction_id that names an event, is a Conflict.
        `build(original, head)` proves and signs the document from the window's head (slow,
        outside any transaction); the insert checks the head has not moved, else builds again.
        """
        if self._log_key is None:
            raise ToolError("the store has no log signing key; cannot append to the log")
        with self._event_lock(("correction", tenant_id, correction_id)):
            for _ in range(attempts):
                existing = self.find_correction(tenant_id, correction_id)
                if existing is not None:
                    if existing.request_hash != request_hash:
                        raise Conflict(
                            f"correction_id {correction_id!r} of tenant {tenant_id!r} is "
                            "already logged with a different payload"
                        )
                    return existing, False
                original = self.find(tenant_id, corrects)
                if original is None:
                    raise NotFound(f"no event {corrects!r} for tenant {tenant_id!r}")
                if self.find(tenant_id, correction_id) is not None:
                    raise Conflict(f"correction_id {correction_id!r} is an event id of the tenant")
                self._not_corrected(self._conn(), tenant_id, corrects)
                window = _window_of(original)
                head = self.window_head(window) if window else None
                doc = build(original, head)
                try:
                    return self._insert_correction(
                        tenant_id,
                        correction_id,
                        corrects,
                        request_hash,
                        doc,
                        original,
                        window,
                        head,
                    ), True
                except WindowMoved:
                    continue
        raise ToolError(f"the window of {corrects!r} kept moving; try again")

    def _not_corrected(self, c: sqlite3.Connection, tenant_id: str, corrects: str) -> None:
        row = c.execute(
            "SELECT correction_id FROM corrections WHERE tenant_id = ? AND corrects = ?",
            (tenant_id, corrects),
        ).fetchone()
        if row is not None:
            raise Conflict(f"event {corrects!r} is already corrected by {row[0]!r}")

    def _insert_correction(
        self,
        tenant_id: str,
        correction_id: str,
        corrects: str,
        request_hash: str,
        doc: dict[str, Any],
        original: StoredBundle,
        window: WindowKey | None,
        head: WindowHead | None,
    ) -> StoredCorrection:
        digest = bytes.fromhex(doc["attestation"]["bundle_digest"].removeprefix("0x"))
        credit = doc["billing"]["credit_micros"]
        bp = doc["attestation"].get("billing_proof")  # a v1 void has no proof of its own
        nullifier = bp["public_signals"][3] if bp else doc["original"]["nullifier"]
        with self._tx() as c:
            self._not_corrected(c, tenant_id, corrects)
            if window is not None:
                self._refuse_if_closed(c, window)
                now = self._window_head(c, window)
                if now is None or head is None or now.seq != head.seq:
                    raise WindowMoved(f"window {window} moved past seq {head and head.seq}")
            leaf = translog.leaf_hash(digest)
            with self._tree_lock:
                self._sync_tree(c)
                index = len(self._tree)
                at = now_ms()
                try:
                    receipt = self._log_one(c, leaf, at)
                    stored = {**doc, "receipt": receipt.to_dict()}
                    c.execute(
                        "INSERT INTO corrections (tenant_id, correction_id, corrects, "
                        "request_hash, doc_json, digest, leaf_index, currency, credit_micros, "
                        "nullifier, created_at, settlement_status) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            tenant_id,
                            correction_id,
                            corrects,
                            request_hash,
                            json.dumps(stored, sort_keys=True),
                            "0x" + digest.hex(),
                            index,
                            original.currency,
                            _amount(credit),
                            nullifier,
                            at,
                            # a proven correction of an ETH charge is settled on chain (after
                            # its original); a v1 void carries no proof of its own
                            "pending" if original.currency == "ETH" and bp else "none",
                        ),
                    )
                    if window is not None and head is not None:
                        w = doc["billing"]["window"]
                        if w["seq"] != head.seq + 1:
                            raise ToolError(f"correction has seq {w['seq']}, head is {head.seq}")
                        self._advance_window(
                            c, window, head.seq + 1, correction_id, w["after"], kind="correction"
                        )
                    created = {
                        "correction_id": correction_id,
                        "corrects": corrects,
                        "reason": doc["correction"]["reason"],
                        "credit_micros": int(credit),
                        "currency": original.currency,
                        "billing_window_id": window[1] if window else None,
                        "tariff_id": window[2] if window else None,
                        "usage": doc["correction"].get("usage"),  # None: a binding v1 void
                        "leaf_index": index,
                    }
                    outbox.enqueue(c, tenant_id, "correction.created", created, at)
                except BaseException:
                    self._tree.truncate(index)
                    raise
        found = self.find_correction(tenant_id, correction_id)
        assert found is not None
        return found

    def pending_corrections(self, limit: int = 16) -> list[StoredCorrection]:
        """Corrections to settle on chain, in log order."""
        rows = self._conn().execute(
            "SELECT * FROM corrections WHERE settlement_status = 'pending' ORDER BY leaf_index "
            "LIMIT ?",
            (limit,),
        )
        return [_correction_row(r) for r in rows]

    def mark_correction_settled(
        self, tenant_id: str, correction_id: str, receipt: dict[str, Any]
    ) -> bool:
        """Record a correction's settling transaction; False if it was not pending."""
        with self._tx() as c:
            cur = c.execute(
                "UPDATE corrections SET settlement_status = 'settled', settlement_json = ? "
                "WHERE tenant_id = ? AND correction_id = ? AND settlement_status = 'pending'",
                (json.dumps(receipt, sort_keys=True), tenant_id, correction_id),
            )
            return cur.rowcount == 1

    def mark_correction_failed(self, tenant_id: str, correction_id: str, error: str) -> None:
        with self._tx() as c:
            c.execute(
                "UPDATE corrections SET settlement_status = 'failed', settlement_json = ? "
                "WHERE tenant_id = ? AND correction_id = ?",
                (json.dumps({"error": error[:500]}), tenant_id, correction_id),
            )

    def window_entries(self, window: WindowKey) -> list[tuple[str, dict[str, Any]]]:
        """A window's chain in seq order: ("event", bundle) and ("correction", document)."""
        rows = self._conn().execute(
            "SELECT w.kind, b.bundle_json, k.doc_json FROM window_events w "
            "LEFT JOIN bundles b ON w.kind = 'event' AND b.tenant_id = w.tenant_id AND "
            "b.event_id = w.event_id LEFT JOIN corrections k ON w.kind = 'correction' AND "
            "k.tenant_id = w.tenant_id AND k.correction_id = w.event_id WHERE w.tenant_id = ? "
            "AND w.billing_window_id = ? AND w.tariff_id = ? ORDER BY w.seq",
            window,
        )
        return [(r[0], json.loads(r[1] if r[0] == "event" else r[2])) for r in rows]

    def statement_items(self, window: WindowKey) -> list[tuple[str, dict[str, Any]]]:
        """(name, document) of a window's chain in seq order, events and corrections alike:
        what a window statement verifies."""
        return [
            (
                "store:"
                + (
                    doc["correction"]["correction_id"]
                    if kind == "correction"
                    else doc["meter_event"]["event_id"]
                ),
                doc,
            )
            for kind, doc in self.window_entries(window)
        ]

    # --- window closes (vbill.billing.closing) ---

    @staticmethod
    def _window_close(c: sqlite3.Connection, window: WindowKey) -> dict[str, Any] | None:
        row = c.execute(
            "SELECT record_json FROM window_closes WHERE tenant_id = ? AND "
            "billing_window_id = ? AND tariff_id = ?",
            window,
        ).fetchone()
        return json.loads(row[0]) if row else None

    def window_close(self, window: WindowKey) -> dict[str, Any] | None:
        """The window's close record (signed, logged), None while it is open."""
        return self._window_close(self._conn(), window)

    def _refuse_if_closed(self, c: sqlite3.Connection, window: WindowKey) -> None:
        record = self._window_close(c, window)
        if record is not None:
            raise WindowClosed(
                f"window {window[1]!r} of tenant {window[0]!r} (tariff_id {window[2]!r}) is "
                f"closed: close record at seq {record.get('last_seq')}, closed_at "
                f"{record.get('closed_at')}, log leaf {record.get('receipt', {}).get('leaf_index')}"
                "; it takes no more events or corrections"
            )

    def close_window(
        self,
        window: WindowKey,
        make: Callable[[WindowHead, dict[str, Any], int], tuple[dict[str, Any], bytes]],
    ) -> tuple[dict[str, Any], bool]:
        """Close a window once: `make(head, last entry, at_ms)` (the head's event bundle or
        correction document) gives the signed record and
        its digest, which is logged (leaf, signed head, receipt) and stored in one
        transaction with the check that the head is still that head. Returns (record with
        its receipt, created); closing again returns the stored record. NoWindow if the
        window has no chain."""
        if self._log_key is None:
            raise ToolError("the store has no log signing key; cannot append to the log")
        with self._tx() as c:
            existing = self._window_close(c, window)
            if existing is not None:
                return existing, False
            head = self._window_head(c, window)
            if head is None:
                raise NoWindow(
                    f"no window {window[1]!r} of tenant {window[0]!r} with tariff_id {window[2]!r}"
                )
            [(_, _, last, _, _)] = self._window_page(c, window, head.seq - 1, 1)
            with self._tree_lock:
                self._sync_tree(c)
                index, at = len(self._tree), now_ms()
                record, digest = make(head, last, at)
                try:
                    receipt = self._log_one(c, translog.leaf_hash(digest), at)
                    record = {**record, "receipt": receipt.to_dict()}
                    c.execute(
                        "INSERT INTO window_closes (tenant_id, billing_window_id, tariff_id, seq, "
                        "leaf_index, closed_at, record_json) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (*window, head.seq, index, at, json.dumps(record, sort_keys=True)),
                    )
                    # webhooks, in the close's own transaction: the record is the invoice's end
                    closed = {
                        "tenant_id": window[0],
                        "billing_window_id": window[1],
                        "tariff_id": window[2],
                        "last_seq": head.seq,
                        "total_micros": record["total_micros"],
                        "currency": record["currency"],
                        "closed_at": record["closed_at"],
                        "closed_by": record["closed_by"],
                        "leaf_index": index,
                    }
                    outbox.enqueue(c, window[0], "window.closed", closed, at)
                    tenant, window_id, tariff = (quote(k, safe="") for k in window)
                    invoice = f"/api/vdi/billing/invoices/{tenant}/{window_id}?tariff_id={tariff}"
                    outbox.enqueue(
                        c, window[0], "invoice.ready", {**closed, "invoice": invoice}, at
                    )
                except BaseException:
                    self._tree.truncate(index)
                    raise
        return record, True

    def windows(
        self, tenant_id: str | None = None, *, after: WindowKey | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Windows with a chain, in (tenant, window, tariff_id) order, `limit` after the key
        `after` (keyset pagination): key, last seq, head state, close time (ms) or None."""
        where, args = [], []
        if tenant_id is not None:
            where.append("h.tenant_id = ?")
            args.append(tenant_id)
        if after is not None:
            where.append(
                "(h.tenant_id > ? OR (h.tenant_id = ? AND (h.billing_window_id > ? OR "
                "(h.billing_window_id = ? AND h.tariff_id > ?))))"
            )
            args += [after[0], after[0], after[1], after[1], after[2]]
        rows = self._conn().execute(
            "SELECT h.tenant_id, h.billing_window_id, h.tariff_id, h.seq, h.state_json, "
            "c.closed_at FROM window_heads h LEFT JOIN window_closes c ON c.tenant_id = "
            "h.tenant_id AND c.billing_window_id = h.billing_window_id AND c.tariff_id = "
            f"h.tariff_id {'WHERE ' + ' AND '.join(where) if where else ''} ORDER BY "
            "h.tenant_id, h.billing_window_id, h.tariff_id LIMIT ?",
            (*args, limit),
        )
        return [
            {
                "key": (r[0], r[1], r[2]),
                "seq": r[3],
                "state": json.loads(r[4]),
                "closed_at": r[5],
            }
            for r in rows
        ]

    def window_page(
        self, window: WindowKey, *, after_seq: int = 0, limit: int = 100
    ) -> list[tuple[int, str, dict[str, Any], int, str]]:
        """A window's entries with seq > after_seq, in seq order: (seq, kind, document,
        leaf_index, proof_status); kind 'event' (its bundle) or 'correction' (its document)."""
        return self._window_page(self._conn(), window, after_seq, limit)

    @staticmethod
    def _window_page(
        c: sqlite3.Connection, window: WindowKey, after_seq: int, limit: int
    ) -> list[tuple[int, str, dict[str, Any], int, str]]:
        rows = c.execute(
            "SELECT w.seq, w.kind, b.bundle_json, b.leaf_index, b.proof_status, k.doc_json, "
            "k.leaf_index FROM window_events w LEFT JOIN bundles b ON w.kind = 'event' AND "
            "b.tenant_id = w.tenant_id AND b.event_id = w.event_id LEFT JOIN corrections k ON "
            "w.kind = 'correction' AND k.tenant_id = w.tenant_id AND k.correction_id = "
            "w.event_id WHERE w.tenant_id = ? AND w.billing_window_id = ? AND w.tariff_id = ? "
            "AND w.seq > ? ORDER BY w.seq LIMIT ?",
            (*window, after_seq, limit),
        )
        return [
            (r[0], "event", json.loads(r[2]), r[3], r[4])
            if r[1] == "event"
            else (r[0], "correction", json.loads(r[5]), r[6], "proven")
            for r in rows
        ]

    # --- ingestion (group commit) and proving workers ---

    def ingest_many(self, items: list[Ingest]) -> list[tuple[StoredBundle, bool] | VbillError]:
        """Log a batch in one transaction under one signed tree head (group commit); each
        event is decided on its own, in order: (stored, created), or the Conflict,
        LimitExceeded or TenantRaced that refused it. An unexpected error stores none.

        A metered event takes its window's next seq here, in the transaction: if the head is
        not the one it was signed on, it is signed again from the head (an InputError if its
        window would overflow), so a window's chain never forks or skips."""
        if self._log_key is None:
            raise ToolError("the store has no log signing key; cannot append to the log")
        out: list[tuple[StoredBundle, bool] | VbillError | None] = []
        added: list[tuple[int, int, Ingest, bytes]] = []  # (result slot, leaf index, item, leaf)
        replays: list[tuple[int, int]] = []  # (result slot, leaf index): twice in this batch
        with self._tx() as c, self._tree_lock:
            self._sync_tree(c)
            start, at = len(self._tree), now_ms()
            try:
                for item in items:
                    try:
                        existing = self._find(c, item.tenant_id, item.event_id)
                        if existing is not None:
                            same = self._same_or_conflict(existing, item.request_hash)
                            if existing.leaf_index >= start:  # logged by this batch: its
                                replays.append((len(out), existing.leaf_index))  # bundle, below
                                out.append(None)
                            else:
                                out.append((same, False))
                            continue
                        if item.window is not None:
                            self._refuse_if_closed(c, item.window.key)
                            head = self._window_head(c, item.window.key)
                            if (head.seq if head else 0) != item.window.seq:
                                item = item.window.rebuild(head)
                        # A refused event stores nothing, not even the tenant it would create:
                        # the batch's other events commit, so undo this one's writes alone.
                        c.execute("SAVEPOINT ingest_item")
                        try:
                            if item.new_tenant is not None:
                                self._create_tenant(c, item.tenant_id, *item.new_tenant)
                            spend = self._check_spend(c, item.tenant_id, item.charge)
                        except BaseException:
                            c.execute("ROLLBACK TO SAVEPOINT ingest_item")
                            raise
                        finally:
                            c.execute("RELEASE SAVEPOINT ingest_item")
                    except (Conflict, LimitExceeded, TenantRaced, InputError) as exc:
                        out.append(exc)
                        continue
                    digest = bytes.fromhex(item.bundle["attestation"]["bundle_digest"][2:])
                    leaf, index = translog.leaf_hash(digest), len(self._tree)
                    c.execute(
                        "INSERT INTO log_leaves (leaf_index, leaf_hash, created_at) "
                        "VALUES (?, ?, ?)",
                        (index, leaf, at),
                    )
                    self._tree.append(leaf)
                    c.execute(
                        "INSERT INTO bundles (tenant_id, event_id, request_hash, bundle_json, "
                        "digest, leaf_index, currency, charge_micros, nullifier, created_at, "
                        "settlement_status, proof_status, claimed_by, lease_until) VALUES "
                        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            item.tenant_id,
                            item.event_id,
                            item.request_hash,
                            "{}",  # the bundle with its receipt, once the batch's head is signed
                            "0x" + digest.hex(),
                            index,
                            item.charge.currency,
                            _amount(item.charge.charge_micros),
                            item.bundle["attestation"]["billing_proof"]["public_signals"][3],
                            at,
                            "pending" if item.charge.is_eth else "none",
                            "proven" if item.proven else "proving",
                            item.claim[0] if item.claim else None,
                            at + item.claim[1] if item.claim else None,
                        ),
                    )
                    if item.window is not None:
                        w = item.bundle["billing"]["window"]
                        if w["seq"] != item.window.seq + 1:
                            raise ToolError(f"bundle has seq {w['seq']}, head is {item.window.seq}")
                        self._advance_window(
                            c, item.window.key, w["seq"], item.event_id, w["after"]
                        )
                    self._notify_spend(c, item.tenant_id, item.event_id, item.charge, spend, at)
                    out.append(None)  # filled in once the batch's head is signed
                    added.append((len(out) - 1, index, item, leaf))
                if added:
                    size = len(self._tree)
                    sth = self._sign_head(c, size, at)
                    rows = []
                    for slot, index, item, leaf in added:
                        receipt = translog.LogReceipt(
                            leaf_index=index,
                            tree_size=size,
                            leaf_hash="0x" + leaf.hex(),
                            inclusion_proof=[
                                "0x" + p.hex() for p in self._tree.inclusion_proof(index, size)
                            ],
                            tree_head=sth,
                        ).to_dict()
                        bundle = {**item.bundle, "receipt": receipt, "settlement": None}
                        rows.append((json.dumps(bundle, sort_keys=True), index))
                        out[slot] = (self._ingested(item, bundle, index, at), True)
                    c.executemany("UPDATE bundles SET bundle_json = ? WHERE leaf_index = ?", rows)
                    created = {index: out[slot] for slot, index, _, _ in added}
                    for slot, index in replays:  # a replay of this batch's own event: its bundle
                        out[slot] = (created[index][0], False)  # type: ignore[index]
            except BaseException:
                self._tree.truncate(start)
                raise
        return [r for r in out if r is not None]

    @staticmethod
    def _ingested(item: Ingest, bundle: dict[str, Any], index: int, at: int) -> StoredBundle:
        return StoredBundle(
            tenant_id=item.tenant_id,
            event_id=item.event_id,
            request_hash=item.request_hash,
            bundle=bundle,
            digest=bundle["attestation"]["bundle_digest"],
            leaf_index=index,
            currency=item.charge.currency,
            charge_micros=item.charge.charge_micros,
            nullifier=bundle["attestation"]["billing_proof"]["public_signals"][3],
            settlement_status="pending" if item.charge.is_eth else "none",
            settlement=None,
            settle_attempts=0,
            last_error=None,
            created_at=at,
            proof_status="proven" if item.proven else "proving",
        )

    def claim_unproven(
        self, worker: str, lease_ms: int, limit: int = 1, *, metered: bool = True
    ) -> list[StoredBundle]:
        """Claim up to `limit` bundles awaiting their proof, in log order, for `lease_ms`: a
        claim whose lease has run out (its worker died) is taken over by the next worker.
        `metered=False`: a worker without binding v2's key leaves metered bundles (those in a
        window) to workers that have it, instead of holding each for a lease it cannot use."""
        at = now_ms()
        only_linear = (
            "AND NOT EXISTS (SELECT 1 FROM window_events w WHERE w.tenant_id = "
            "bundles.tenant_id AND w.event_id = bundles.event_id) "
        )
        with self._tx() as c:
            rows = c.execute(
                "SELECT * FROM bundles WHERE proof_status = 'proving' AND (lease_until IS NULL "
                f"OR lease_until < ?) {'' if metered else only_linear}ORDER BY leaf_index LIMIT ?",
                (at, limit),
            ).fetchall()
            c.executemany(
                "UPDATE bundles SET claimed_by = ?, lease_until = ? WHERE leaf_index = ?",
                [(worker, at + lease_ms, r["leaf_index"]) for r in rows],
            )
        return [_bundle_row(r) for r in rows]

    def attach_proof(self, tenant_id: str, event_id: str, proof: dict[str, Any]) -> bool:
        """Attach the Groth16 proof to a 'proving' bundle (the signed digest does not cover it,
        docs/protocol.md §7.1); False if it already has one (the first proof stands)."""
        with self._tx() as c:
            bundle = _bundle_if(c, tenant_id, event_id, "proof_status", "proving")
            if bundle is None:
                return False
            bundle["attestation"]["billing_proof"]["proof"] = proof
            c.execute(
                "UPDATE bundles SET bundle_json = ?, proof_status = 'proven', claimed_by = NULL, "
                "lease_until = NULL WHERE tenant_id = ? AND event_id = ?",
                (json.dumps(bundle, sort_keys=True), tenant_id, event_id),
            )
            return True

    def unproven_count(self) -> int:
        row = (
            self._conn()
            .execute("SELECT COUNT(*) FROM bundles WHERE proof_status = 'proving'")
            .fetchone()
        )
        return int(row[0])

    def oldest_unproven_age_ms(self, now: int) -> int:
        """How long the oldest bundle awaiting its proof has waited (0 if none)."""
        row = (
            self._conn()
            .execute("SELECT MIN(created_at) FROM bundles WHERE proof_status = 'proving'")
            .fetchone()
        )
        return max(0, now - int(row[0])) if row[0] is not None else 0

    # --- transparency log ---

    def _sync_tree(self, c: sqlite3.Connection) -> None:
        """Bring the in-memory tree to the committed leaves (another process may have added)."""
        count = c.execute("SELECT COUNT(*) FROM log_leaves").fetchone()[0]
        if count < len(self._tree):
            self._tree.truncate(count)
        if count > len(self._tree):
            for row in c.execute(
                "SELECT leaf_hash FROM log_leaves WHERE leaf_index >= ? ORDER BY leaf_index",
                (len(self._tree),),
            ):
                self._tree.append(bytes(row[0]))

    def head(self) -> translog.SignedTreeHead:
        """The latest signed tree head (signs one for the empty log on first use)."""
        row = (
            self._conn()
            .execute("SELECT * FROM tree_heads ORDER BY tree_size DESC LIMIT 1")
            .fetchone()
        )
        if row is not None:
            return _sth_row(row)
        if self._log_key is None:
            raise ToolError("the log is empty and the store has no signing key")
        with self._tx() as c, self._tree_lock:
            self._sync_tree(c)
            return self._sign_head(c, len(self._tree), now_ms())

    def head_at(self, tree_size: int) -> translog.SignedTreeHead | None:
        row = (
            self._conn()
            .execute("SELECT * FROM tree_heads WHERE tree_size = ?", (tree_size,))
            .fetchone()
        )
        return _sth_row(row) if row else None

    def inclusion_proof(self, leaf_index: int, tree_size: int) -> list[bytes]:
        with self._tree_lock:
            self._sync_tree(self._conn())
            return self._tree.inclusion_proof(leaf_index, tree_size)

    def consistency_proof(self, old_size: int, tree_size: int) -> list[bytes]:
        with self._tree_lock:
            self._sync_tree(self._conn())
            return self._tree.consistency_proof(old_size, tree_size)

    def leaf_hash(self, leaf_index: int) -> bytes | None:
        row = (
            self._conn()
            .execute("SELECT leaf_hash FROM log_leaves WHERE leaf_index = ?", (leaf_index,))
            .fetchone()
        )
        return bytes(row[0]) if row else None

    def mark_anchored(self, tree_size: int, tx_hash: str) -> None:
        with self._tx() as c:
            c.execute(
                "UPDATE tree_heads SET anchored_tx = ? WHERE tree_size = ?", (tx_hash, tree_size)
            )

    # --- settlement ---

    def pending_settlements(self, limit: int = 16) -> list[StoredBundle]:
        """Pending ETH bundles, fewest failed attempts first, then in log order: a bundle the
        chain refuses for now (tariff not accepted, balance) cannot block those behind it."""
        rows = self._conn().execute(
            "SELECT * FROM bundles WHERE settlement_status = 'pending' "
            "AND proof_status = 'proven' ORDER BY settle_attempts, leaf_index LIMIT ?",
            (limit,),
        )
        return [_bundle_row(r) for r in rows]

    def mark_settled(self, tenant_id: str, event_id: str, usage_receipt: dict[str, Any]) -> bool:
        """Attach the usage receipt; the reservation becomes a debit. False if already settled."""
        with self._tx() as c:
            bundle = _bundle_if(c, tenant_id, event_id, "settlement_status", "pending")
            if bundle is None:
                return False
            bundle["settlement"] = usage_receipt
            charge = c.execute(
                "UPDATE bundles SET settlement_status = 'settled', settlement_json = ?, "
                "bundle_json = ?, last_error = NULL WHERE tenant_id = ? AND event_id = ? "
                "RETURNING charge_micros",
                (
                    json.dumps(usage_receipt, sort_keys=True),
                    json.dumps(bundle, sort_keys=True),
                    tenant_id,
                    event_id,
                ),
            ).fetchone()[0]
            data = {**usage_receipt, "event_id": event_id, "charge_micros": int(charge)}
            outbox.enqueue(c, tenant_id, "settlement.settled", data, now_ms())
            return True

    def note_settle_error(self, keys: list[tuple[str, str]], error: str) -> None:
        """A transient failure: count the attempt, keep the bundle pending."""
        with self._tx() as c:
            c.executemany(
                "UPDATE bundles SET settle_attempts = settle_attempts + 1, last_error = ? "
                "WHERE tenant_id = ? AND event_id = ? AND settlement_status = 'pending'",
                [(error[:500], t, e) for t, e in keys],
            )

    def mark_failed(self, tenant_id: str, event_id: str, error: str) -> None:
        """The chain refuses this bundle for good: release its reservation, keep the reason."""
        with self._tx() as c:
            cur = c.execute(
                "UPDATE bundles SET settlement_status = 'failed', last_error = ?, "
                "settle_attempts = settle_attempts + 1 "
                "WHERE tenant_id = ? AND event_id = ? AND settlement_status = 'pending' "
                "RETURNING charge_micros",
                (error[:500], tenant_id, event_id),
            ).fetchone()
            if cur is not None:
                data = {"event_id": event_id, "charge_micros": int(cur[0]), "reason": error[:500]}
                outbox.enqueue(c, tenant_id, "settlement.failed", data, now_ms())

    def counts(self) -> dict[str, int]:
        rows = self._conn().execute(
            "SELECT settlement_status, COUNT(*) FROM bundles GROUP BY settlement_status"
        )
        out = {"none": 0, "pending": 0, "settled": 0, "failed": 0}
        out.update({r[0]: r[1] for r in rows})
        out["bundles"] = sum(out[k] for k in ("none", "pending", "settled", "failed"))
        out["tenants"] = self._conn().execute("SELECT COUNT(*) FROM tenants").fetchone()[0]
        out["log_size"] = self._conn().execute("SELECT COUNT(*) FROM log_leaves").fetchone()[0]
        out["proving"] = self.unproven_count()  # signed and logged, awaiting the proof
        return out

    # --- revocations ---

    def revoke(self, kind: str, value: str, reason: str) -> None:
        """Revoke an attester address or a vkey SHA-256, kept in lower case (as they are
        matched); a value of neither form is refused: it could never take effect."""
        value = value.strip().lower()
        shapes = {
            "attester": (_ADDRESS, "an attester", "a 0x address"),
            "vkey": (_SHA256, "a vkey", "a hex SHA-256"),
        }
        if kind not in shapes:
            raise InputError("kind", f"must be 'attester' or 'vkey', not {kind!r}")
        shape, which, what = shapes[kind]
        if not shape.fullmatch(value):
            raise InputError("value", f"{which} revocation must name {what}")
        with self._tx() as c:
            c.execute(
                "INSERT INTO revocations (kind, value, reason, revoked_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (kind, value, reason, now_ms()),
            )

    def retire(self, address: str, retired_at: int, reason: str) -> None:
        """Retire an attester key from `retired_at` (ms) on: what it signed before stays valid
        (rotation; a compromised key is revoked instead). The first retirement stands."""
        with self._tx() as c:
            c.execute(
                "INSERT INTO attester_retirements (address, retired_at, reason) "
                "VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (address.lower(), retired_at, reason),
            )

    def signing_refusal(self, address: str, at_ms: int | None = None) -> str | None:
        """Why `address` must not sign (revoked, or retired by `at_ms`), or None."""
        a, at = address.lower(), at_ms or now_ms()
        c = self._conn()
        if c.execute(
            "SELECT 1 FROM revocations WHERE kind = 'attester' AND value = ?", (a,)
        ).fetchone():
            return f"attester key {address} is revoked"
        row = c.execute(
            "SELECT retired_at FROM attester_retirements WHERE address = ?", (a,)
        ).fetchone()
        if row is not None and row[0] <= at:
            return f"attester key {address} is retired (since {row[0]} ms)"
        return None

    def retirements(self) -> list[dict[str, Any]]:
        rows = self._conn().execute("SELECT * FROM attester_retirements ORDER BY retired_at")
        return [dict(r) for r in rows]

    def revocations(self) -> list[dict[str, Any]]:
        rows = self._conn().execute("SELECT * FROM revocations ORDER BY revoked_at, kind, value")
        return [dict(r) for r in rows]

    # --- tenant tokens (hashes only; see vbill.ledger.tokens) ---

    def add_token(self, tenant_id: str, token_id: str, token_sha256: str) -> int:
        """Record a token hash for an existing tenant; returns its creation time (ms)."""
        at = now_ms()
        with self._tx() as c:
            c.execute(
                "INSERT INTO tenant_tokens (token_id, tenant_id, token_sha256, created_at) "
                "VALUES (?, ?, ?, ?)",
                (token_id, tenant_id, token_sha256, at),
            )
        return at

    def revoke_tokens(self, tenant_id: str, token_id: str | None = None) -> int:
        """Revoke the tenant's active tokens (or just `token_id`); returns how many."""
        with self._tx() as c:
            cur = c.execute(
                "UPDATE tenant_tokens SET revoked_at = ? WHERE tenant_id = ? AND revoked_at "
                "IS NULL AND (CAST(? AS TEXT) IS NULL OR token_id = ?)",
                (now_ms(), tenant_id, token_id, token_id),
            )
            return cur.rowcount

    def active_token(self, token_sha256: str) -> tuple[str, str] | None:
        """(tenant_id, stored hash) of the unrevoked token with this hash, if any."""
        row = (
            self._conn()
            .execute(
                "SELECT tenant_id, token_sha256 FROM tenant_tokens "
                "WHERE token_sha256 = ? AND revoked_at IS NULL",
                (token_sha256,),
            )
            .fetchone()
        )
        return (row[0], row[1]) if row else None

    def tokens(self, tenant_id: str) -> list[dict[str, Any]]:
        """The tenant's tokens without their hashes (id, created, revoked)."""
        rows = self._conn().execute(
            "SELECT token_id, created_at, revoked_at FROM tenant_tokens WHERE tenant_id = ? "
            "ORDER BY created_at",
            (tenant_id,),
        )
        return [dict(r) for r in rows]


def _tenant_row(row: sqlite3.Row) -> Tenant:
    return Tenant(
        tenant_id=row["tenant_id"],
        account_salt=int(row["account_salt"]),
        tenant_key=int(row["tenant_key"]),
        onchain_status=row["onchain_status"],
        onchain_tx=row["onchain_tx"],
        created_at=row["created_at"],
    )


def _bundle_row(row: sqlite3.Row) -> StoredBundle:
    return StoredBundle(
        tenant_id=row["tenant_id"],
        event_id=row["event_id"],
        request_hash=row["request_hash"],
        bundle=json.loads(row["bundle_json"]),
        digest=row["digest"],
        leaf_index=row["leaf_index"],
        currency=row["currency"],
        charge_micros=int(row["charge_micros"]),
        nullifier=row["nullifier"],
        settlement_status=row["settlement_status"],
        settlement=json.loads(row["settlement_json"]) if row["settlement_json"] else None,
        settle_attempts=row["settle_attempts"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        proof_status=row["proof_status"],
    )


def _sth_row(row: sqlite3.Row) -> translog.SignedTreeHead:
    return translog.SignedTreeHead(
        tree_size=row["tree_size"],
        root_hash=row["root_hash"],
        timestamp=row["timestamp"],
        signer=row["signer"],
        signature=row["signature"],
    )


def _correction_row(row: sqlite3.Row) -> StoredCorrection:
    return StoredCorrection(
        tenant_id=row["tenant_id"],
        correction_id=row["correction_id"],
        corrects=row["corrects"],
        request_hash=row["request_hash"],
        doc=json.loads(row["doc_json"]),
        digest=row["digest"],
        leaf_index=row["leaf_index"],
        currency=row["currency"],
        credit_micros=int(row["credit_micros"]),
        nullifier=row["nullifier"],
        settlement_status=row["settlement_status"],
        settlement=json.loads(row["settlement_json"]) if row["settlement_json"] else None,
        created_at=row["created_at"],
    )


def _window_of(bundle: StoredBundle) -> WindowKey | None:
    """The window key of a metered bundle; None for binding v1 (no window chain)."""
    b = bundle.bundle
    tariff = b.get("tariff_snapshot", {})
    if tariff.get("tariff_class") != "metered":
        return None
    return (bundle.tenant_id, b["meter_event"]["billing_window_id"], tariff["tariff_id"])
