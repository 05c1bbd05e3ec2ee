"""The schema's history before Alembic: vbill's migrations 1-9 as its releases up to schema 9
ran them, kept only to bring an older database to schema 9 (vbill.ledger.schema's bridge).

Frozen: nothing here changes again. A change to the schema is an Alembic revision in
vbill.ledger.migrations and a change to vbill.ledger.tables.

The scripts are written in SQLite's dialect, as they always were; on PostgreSQL `pg_ddl`
rewrites each one as those releases did (INTEGER → BIGINT, BLOB → BYTEA, the integer row id →
an identity column, GLOB → anchored POSIX regular expressions). It is the smallest thing that
reproduces, statement for statement, what an older release would have run on PostgreSQL, and it
runs only for a database older than schema 9.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any


def _amount_check(column: str) -> str:
    """SQL: the column holds a canonical decimal integer 0 ≤ v < 2^64 (or NULL)."""
    return (
        f"{column} IS NULL OR ({column} GLOB '[0-9]*' AND {column} NOT GLOB '*[^0-9]*' "
        f"AND ({column} = '0' OR {column} NOT GLOB '0*') AND (length({column}) < 20 OR "
        f"(length({column}) = 20 AND {column} <= '18446744073709551615')))"
    )


OUTBOX_SCHEMA = """
CREATE TABLE webhook_endpoints (
    endpoint_id TEXT PRIMARY KEY,
    url         TEXT NOT NULL,
    events      TEXT NOT NULL,
    secret      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    rotated_at  INTEGER
);
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    msg_id          TEXT NOT NULL,
    endpoint_id     TEXT NOT NULL,
    tenant_id       TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    payload         TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    claimed_by      TEXT,
    lease_until     INTEGER,
    last_error      TEXT,
    delivered_at    INTEGER,
    UNIQUE (msg_id, endpoint_id)
);
CREATE INDEX outbox_queue ON outbox (status, tenant_id, endpoint_id, id);
"""


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
    OUTBOX_SCHEMA,
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


_GLOB = re.compile(r"(\w+) (NOT )?GLOB '([^']*)'")


def _glob_to_regex(match: re.Match[str]) -> str:
    column, negated, pattern = match.groups()
    regex = "".join(
        ".*" if ch == "*" else "." if ch == "?" else ch if ch in "[]^-" or ch.isalnum() else
        "\\" + ch
        for ch in pattern
    )  # fmt: skip
    return f"{column} {'!~' if negated else '~'} '^{regex}$'"


def pg_ddl(script: str) -> str:
    """A SQLite migration script as PostgreSQL DDL (the same tables, columns and checks)."""
    script = re.sub(
        r"\bid\s+INTEGER PRIMARY KEY", "id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
        script,
    )  # fmt: skip
    script = re.sub(r"\bINTEGER\b", "BIGINT", script)
    script = re.sub(r"\bBLOB\b", "BYTEA", script)
    return _GLOB.sub(_glob_to_regex, script)


def statements(script: str) -> list[str]:
    """A migration script's statements (split on `;`, none of them contains one)."""
    return [s for s in script.split(";") if s.strip()]


SCHEMA_VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"


def upgrade(execute: Callable[[str], Any], *, postgres: bool, current: int) -> None:
    """Run migrations current+1 … 9 with `execute` (one SQL statement, no parameters) inside
    the caller's transaction, recording each in `schema_version` as those releases did."""
    execute(SCHEMA_VERSION_TABLE)
    for version, script in enumerate(MIGRATIONS[current:], start=current + 1):
        for statement in statements(pg_ddl(script) if postgres else script):
            execute(statement)
        execute(f"INSERT INTO schema_version (version) VALUES ({version})")
