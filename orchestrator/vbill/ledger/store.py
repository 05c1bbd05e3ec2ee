"""The service's durable state, behind one facade: tenants, bundles, the transparency log,
balances and limits, each kept by a small repository over the same database.

One SQLite file under $VBILL_HOME (WAL, foreign keys on, busy timeout), or PostgreSQL
(`DATABASE_URL=postgresql://…`) holding the same schema for several API replicas and workers:
the SQL is written once for both dialects (vbill.ledger.db adapts it), and a
transaction-level advisory lock plays the part of BEGIN IMMEDIATE. Every write is one
transaction (`Database.tx`), whichever repositories it touches.

The repositories, each over the store's `Database`:

- vbill.ledger.tenants: tenants and their API tokens;
- vbill.ledger.accounts: limits, balances, deposits, the spending check;
- vbill.ledger.bundles: bundles; vbill.ledger.ingestion: group-commit ingestion (the one
  write path of bundles) and proving workers; vbill.ledger.windows: metered windows and
  their closes; vbill.ledger.corrections: corrections;
- vbill.ledger.log: the transparency log's leaves and signed heads;
- vbill.ledger.settlements: settlement on chain; vbill.ledger.keys: revoked and retired keys;
- vbill.ledger.tables, vbill.ledger.schema: the schema and its migrations (Alembic).

`Store` keeps one public API over them: `store.find(…)` is `Bundles.find`, and so on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vbill.errors import ToolError
from vbill.ledger import db, schema
from vbill.ledger.accounts import (
    CONFIRMATIONS,
    DAY_MS,
    NEVER_RETRY_AFTER,
    WEI_PER_MICRO,
    Accounts,
    Balance,
    ChainAccount,
    Charge,
    Limits,
    Spend,
    micro_eth,
)
from vbill.ledger.bundles import Bundles, StoredBundle
from vbill.ledger.corrections import Corrections, StoredCorrection
from vbill.ledger.db import now_ms
from vbill.ledger.errors import (
    Conflict,
    LimitExceeded,
    NotFound,
    NoWindow,
    TenantRaced,
    WindowClosed,
    WindowMoved,
)
from vbill.ledger.ingestion import Ingest, Ingestion, IngestWindow
from vbill.ledger.keys import Keys
from vbill.ledger.log import Log
from vbill.ledger.settlements import Settlements
from vbill.ledger.tenants import Tenant, Tenants
from vbill.ledger.windows import WindowHead, WindowKey, Windows

# What callers import from here: the facade, and the records, errors and constants of the
# repositories behind it (one import path whichever repository serves them).
__all__ = [
    "CONFIRMATIONS",
    "DAY_MS",
    "DB_NAME",
    "NEVER_RETRY_AFTER",
    "WEI_PER_MICRO",
    "Balance",
    "ChainAccount",
    "Charge",
    "Conflict",
    "Ingest",
    "IngestWindow",
    "LimitExceeded",
    "Limits",
    "NoWindow",
    "NotFound",
    "Spend",
    "Store",
    "StoredBundle",
    "StoredCorrection",
    "Tenant",
    "TenantRaced",
    "WindowClosed",
    "WindowHead",
    "WindowKey",
    "WindowMoved",
    "micro_eth",
    "now_ms",
    "open_store",
]

DB_NAME = "vbill.sqlite3"


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


class _Via:
    """A public name of the store, served by the repository in attribute `repo` under the same
    name (a method, or a setting such as `deposits_tracked`)."""

    def __init__(self, repo: str) -> None:
        self.repo = repo

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, store: Any, owner: type | None = None) -> Any:
        if store is None:
            return self
        return getattr(getattr(store, self.repo), self.name)

    def __set__(self, store: Any, value: Any) -> None:
        setattr(getattr(store, self.repo), self.name, value)


class Store:
    """SQLite- or PostgreSQL-backed state (a file path, or a postgresql:// URL); safe to share
    between threads (one connection per thread)."""

    def __init__(self, path: Path | str, *, log_key: Any = None) -> None:
        self.db = db.Database(path)
        self.url, self.path = self.db.url, self.db.path
        schema.migrate(self.db)
        if self.path is not None:
            self.db.private_files()  # the WAL and shared-memory files now exist too
        self._conn, self._tx = self.db.conn, self.db.tx  # for vbill.ledger.outbox
        self._locks = db.EventLocks()
        self._log = Log(self.db, log_key)
        self._tenants = Tenants(self.db)
        self._accounts = Accounts(self.db)
        self._windows = Windows(self.db, self._log)
        self._bundles = Bundles(self.db)
        self._ingestion = Ingestion(
            self.db, self._log, self._tenants, self._accounts, self._windows, self._bundles
        )
        self._corrections = Corrections(
            self.db, self._log, self._locks, self._bundles, self._windows
        )
        self._settlements = Settlements(self.db)
        self._keys = Keys(self.db)

    def close(self) -> None:
        self.db.close()

    def schema_version(self) -> str | None:
        return schema.version(self.db)

    # tenants and their API tokens
    add_tenant = _Via("_tenants")
    ensure_tenant = _Via("_tenants")
    tenant = _Via("_tenants")
    tenant_by_key = _Via("_tenants")
    tenants = _Via("_tenants")
    set_onchain = _Via("_tenants")
    add_token = _Via("_tenants")
    revoke_tokens = _Via("_tenants")
    active_token = _Via("_tenants")
    tokens = _Via("_tenants")

    # limits, balances, deposits, and the service's settings they use
    deposits_tracked = _Via("_accounts")
    usage_shares = _Via("_accounts")
    balance_low_wei = _Via("_accounts")
    set_limits = _Via("_accounts")
    limits = _Via("_accounts")
    balance = _Via("_accounts")
    set_chain_account = _Via("_accounts")
    chain_account = _Via("_accounts")
    spent_today_micros = _Via("_accounts")
    record_deposit = _Via("_accounts")
    credit_confirmed = _Via("_accounts")
    uncredited_deposits = _Via("_accounts")
    credit_deposit = _Via("_accounts")
    drop_deposit = _Via("_accounts")
    deposits = _Via("_accounts")

    # bundles (written by ingestion)
    find = _Via("_bundles")
    find_by_event = _Via("_bundles")
    bundles = _Via("_bundles")
    window_bundles = _Via("_bundles")
    unproven_count = _Via("_bundles")
    oldest_unproven_age_ms = _Via("_bundles")
    counts = _Via("_bundles")

    # ingestion (group commit) and proving workers
    ingest_many = _Via("_ingestion")
    claim_unproven = _Via("_ingestion")
    attach_proof = _Via("_ingestion")

    # metered windows and their close records
    window_head = _Via("_windows")
    window_tariffs = _Via("_windows")
    window_entries = _Via("_windows")
    statement_items = _Via("_windows")
    window_close = _Via("_windows")
    close_window = _Via("_windows")
    windows = _Via("_windows")
    window_page = _Via("_windows")

    # corrections
    find_correction = _Via("_corrections")
    correction_of = _Via("_corrections")
    corrections = _Via("_corrections")
    correct = _Via("_corrections")

    # the transparency log
    head = _Via("_log")
    head_at = _Via("_log")
    inclusion_proof = _Via("_log")
    consistency_proof = _Via("_log")
    leaf_hash = _Via("_log")
    mark_anchored = _Via("_log")

    # settlement on chain, and the worker's cursors
    pending_settlements = _Via("_settlements")
    mark_settled = _Via("_settlements")
    note_settle_error = _Via("_settlements")
    mark_failed = _Via("_settlements")
    pending_corrections = _Via("_settlements")
    mark_correction_settled = _Via("_settlements")
    mark_correction_failed = _Via("_settlements")
    get_meta = _Via("_settlements")
    set_meta = _Via("_settlements")

    # revoked and retired keys
    revoke = _Via("_keys")
    retire = _Via("_keys")
    signing_refusal = _Via("_keys")
    retirements = _Via("_keys")
    revocations = _Via("_keys")
