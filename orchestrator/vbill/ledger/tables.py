"""The store's schema as SQLAlchemy Core metadata: the one description of every table, for SQLite
and PostgreSQL alike.

A new database is made from it (`metadata.create_all`, then stamped at the Alembic head: see
vbill.ledger.schema); a change to it ships as an Alembic revision in vbill.ledger.migrations,
and tests/ledger/test_schema.py checks that a database the revisions upgraded and one made from
here have the same tables, columns, keys, checks and indexes on both dialects. The repositories
do not use this module: they speak plain DB-API SQL on the hot path.

Where the dialects differ, the schema says so once here:

- integers are SQLite's INTEGER and PostgreSQL's BIGINT (`INT`); a table's own row id is
  SQLite's `id INTEGER PRIMARY KEY` (the rowid) and PostgreSQL's identity column (`row_id`);
- byte strings are BLOB / BYTEA (`LargeBinary`);
- an amount (a canonical decimal 0 ≤ v < 2^64 kept as TEXT, past SQLite's signed INTEGER) is
  checked with GLOB on SQLite and with anchored POSIX regular expressions on PostgreSQL
  (`amount`), the same text vbill's schema 9 has held since amounts became TEXT.

Names and order follow that schema exactly: columns in the order its migrations left them (an
added column comes last), constraints unnamed (each database names them as it always has),
single-column checks and uniques on their column.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import CreateColumn
from sqlalchemy.sql.expression import ColumnElement

metadata = sa.MetaData()

INT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TEXT = sa.Text()


class _Amount(ColumnElement[bool]):
    """CHECK: the column holds a canonical decimal integer 0 ≤ v < 2^64, or NULL."""

    inherit_cache = False

    def __init__(self, column: str) -> None:
        self.column = column


@compiles(_Amount, "sqlite")
def _amount_sqlite(element: _Amount, compiler: Any, **kw: Any) -> str:
    c = element.column
    return (
        f"{c} IS NULL OR ({c} GLOB '[0-9]*' AND {c} NOT GLOB '*[^0-9]*' "
        f"AND ({c} = '0' OR {c} NOT GLOB '0*') AND (length({c}) < 20 OR "
        f"(length({c}) = 20 AND {c} <= '18446744073709551615')))"
    )


@compiles(_Amount, "postgresql")
def _amount_postgresql(element: _Amount, compiler: Any, **kw: Any) -> str:
    c = element.column
    return (
        f"{c} IS NULL OR ({c} ~ '^[0-9].*$' AND {c} !~ '^.*[^0-9].*$' "
        f"AND ({c} = '0' OR {c} !~ '^0.*$') AND (length({c}) < 20 OR "
        f"(length({c}) = 20 AND {c} <= '18446744073709551615')))"
    )


@compiles(CreateColumn, "sqlite")
def _sqlite_row_id(create: CreateColumn[Any], compiler: Any, **kw: Any) -> str:
    """SQLite has no identity columns: a row id is `id INTEGER PRIMARY KEY`, the rowid, which is
    never NULL and was never declared NOT NULL (PostgreSQL's identity column is NOT NULL)."""
    text: str = compiler.visit_create_column(create, **kw)
    if create.element.identity is not None:
        text = text.replace(" NOT NULL", "", 1)
    return text


def amount(name: str, *, nullable: bool) -> sa.Column[Any]:
    return sa.Column(name, TEXT, sa.CheckConstraint(_Amount(name)), nullable=nullable)


def row_id() -> sa.Column[Any]:
    return sa.Column("id", INT, sa.Identity(), primary_key=True)


def key(name: str, type_: Any = TEXT, *args: Any) -> sa.Column[Any]:
    """A one-column primary key, declared as the schema always has: no NOT NULL of its own
    (PostgreSQL's primary key implies it; on SQLite an INTEGER one is the rowid)."""
    return sa.Column(name, type_, *args, primary_key=True, nullable=True, autoincrement=False)


def col(name: str, type_: Any, *args: Any, null: bool = False, **kw: Any) -> sa.Column[Any]:
    """A column, NOT NULL unless `null=True`."""
    return sa.Column(name, type_, *args, nullable=null, **kw)


def one_of(name: str, *values: str) -> sa.CheckConstraint:
    return sa.CheckConstraint(f"{name} IN ({', '.join(repr(v) for v in values)})")


def settlement_status() -> sa.Column[Any]:
    return col("settlement_status", TEXT, one_of("settlement_status", *SETTLEMENT_STATES))


def seq() -> sa.Column[Any]:
    return col("seq", INT, sa.CheckConstraint("seq >= 1"))


SETTLEMENT_STATES = ("none", "pending", "settled", "failed")

# the releases before Alembic counted their migrations here (1-9); Alembic's databases hold a
# last row, vbill.ledger.schema.FENCE, so that those releases refuse them
schema_version = sa.Table(
    "schema_version", metadata, sa.Column("version", sa.Integer(), nullable=False)
)
TENANT = "tenants.tenant_id"
LEAF = "log_leaves.leaf_index"

tenants = sa.Table(
    "tenants",
    metadata,
    key("tenant_id"),
    col("account_salt", TEXT),
    col("tenant_key", TEXT, unique=True),
    col("onchain_status", TEXT, server_default="unbound"),
    col("onchain_tx", TEXT, null=True),
    col("created_at", INT),
)

log_leaves = sa.Table(
    "log_leaves",
    metadata,
    key("leaf_index", INT),
    col("leaf_hash", sa.LargeBinary(), sa.CheckConstraint("length(leaf_hash) = 32")),
    col("created_at", INT),
)

tree_heads = sa.Table(
    "tree_heads",
    metadata,
    key("tree_size", INT),
    col("root_hash", TEXT),
    col("timestamp", INT),
    col("signer", TEXT),
    col("signature", TEXT),
    col("anchored_tx", TEXT, null=True),
)

bundles = sa.Table(
    "bundles",
    metadata,
    row_id(),
    col("tenant_id", TEXT, sa.ForeignKey(TENANT)),
    col("event_id", TEXT),
    col("request_hash", TEXT),
    col("bundle_json", TEXT),
    col("digest", TEXT),
    col("leaf_index", INT, sa.ForeignKey(LEAF), unique=True),
    col("currency", TEXT),
    amount("charge_micros", nullable=False),
    col("nullifier", TEXT),
    col("created_at", INT),
    settlement_status(),
    col("settlement_json", TEXT, null=True),
    col("settle_attempts", INT, server_default=sa.text("0")),
    col("last_error", TEXT, null=True),
    # a bundle signed and logged at ingestion is 'proving' until a worker attaches its proof;
    # a worker's claim is a lease
    col("proof_status", TEXT, one_of("proof_status", "proving", "proven"), server_default="proven"),
    col("claimed_by", TEXT, null=True),
    col("lease_until", INT, null=True),
    sa.UniqueConstraint("tenant_id", "event_id"),
    sa.Index("bundles_pending", "settlement_status", "leaf_index"),
    sa.Index("bundles_daily", "tenant_id", "created_at"),
    sa.Index("bundles_proving", "proof_status", "leaf_index"),
)

deposits = sa.Table(
    "deposits",
    metadata,
    col("tx_hash", TEXT, primary_key=True),
    col("log_index", INT, primary_key=True, autoincrement=False),
    col("tenant_id", TEXT, sa.ForeignKey(TENANT)),
    col("amount_wei", TEXT),
    col("block_number", INT),
    col("credited", INT, server_default=sa.text("0")),
)

limits = sa.Table(
    "limits",
    metadata,
    key("tenant_id", TEXT, sa.ForeignKey(TENANT)),
    amount("per_request_micros", nullable=True),
    amount("daily_micros", nullable=True),
)

revocations = sa.Table(
    "revocations",
    metadata,
    col("kind", TEXT, one_of("kind", "attester", "vkey"), primary_key=True),
    col("value", TEXT, primary_key=True),
    col("reason", TEXT),
    col("revoked_at", INT),
)

meta = sa.Table("meta", metadata, key("key"), col("value", TEXT))

# tenant-scoped API tokens, kept as SHA-256 hashes only (vbill.ledger.tokens)
tenant_tokens = sa.Table(
    "tenant_tokens",
    metadata,
    key("token_id"),
    col("tenant_id", TEXT, sa.ForeignKey(TENANT)),
    col("token_sha256", TEXT, unique=True),
    col("created_at", INT),
    col("revoked_at", INT, null=True),
    sa.Index("tenant_tokens_tenant", "tenant_id"),
)

# the tenant's on-chain account as the settlement worker last read it (wei as TEXT: uint96
# does not fit SQLite's INTEGER)
chain_accounts = sa.Table(
    "chain_accounts",
    metadata,
    key("tenant_id", TEXT, sa.ForeignKey(TENANT)),
    col("available_wei", TEXT),
    col("reserved_wei", TEXT),
    col("per_request_wei", TEXT),
    col("daily_wei", TEXT),
    col("spent_today_wei", TEXT),
    col("spent_day", INT),
    col("block_number", INT),
    col("synced_at", INT),
)

# retired (rotated-out, not compromised) attester keys
attester_retirements = sa.Table(
    "attester_retirements",
    metadata,
    key("address"),
    col("retired_at", INT),
    col("reason", TEXT),
)

WINDOW = ("tenant_id", "billing_window_id", "tariff_id")

# metered windows (binding v2): one chain of proven states per (tenant, billing window,
# tariff_id); the head is the last state, each entry's place is its seq (1, 2, ...)
window_heads = sa.Table(
    "window_heads",
    metadata,
    *(col(name, TEXT) for name in WINDOW),
    seq(),
    col("event_id", TEXT),
    col("state_json", TEXT),
    sa.PrimaryKeyConstraint(*WINDOW),
)

window_events = sa.Table(
    "window_events",
    metadata,
    *(col(name, TEXT) for name in WINDOW),
    seq(),
    col("event_id", TEXT),
    # events and corrections alike are entries of the window's chain
    col("kind", TEXT, one_of("kind", "event", "correction"), server_default="event"),
    sa.PrimaryKeyConstraint(*WINDOW, "seq"),
    sa.UniqueConstraint("tenant_id", "event_id"),
)

# webhook endpoints and the outbox their events are delivered from (vbill.ledger.outbox)
webhook_endpoints = sa.Table(
    "webhook_endpoints",
    metadata,
    key("endpoint_id"),
    col("url", TEXT),
    col("events", TEXT),
    col("secret", TEXT),
    col("created_at", INT),
    col("rotated_at", INT, null=True),
)

outbox = sa.Table(
    "outbox",
    metadata,
    row_id(),
    col("msg_id", TEXT),
    col("endpoint_id", TEXT),
    col("tenant_id", TEXT),
    col("event_type", TEXT),
    col("payload", TEXT),
    col("created_at", INT),
    col("status", TEXT, one_of("status", "pending", "delivered", "dead"), server_default="pending"),
    col("attempts", INT, server_default=sa.text("0")),
    col("next_attempt_at", INT),
    col("claimed_by", TEXT, null=True),
    col("lease_until", INT, null=True),
    col("last_error", TEXT, null=True),
    col("delivered_at", INT, null=True),
    sa.UniqueConstraint("msg_id", "endpoint_id"),
    sa.Index("outbox_queue", "status", "tenant_id", "endpoint_id", "id"),
)

# close records (docs/protocol-v2.md §13): a closed window takes no more entries; the record is
# signed and logged like a bundle (its leaf in log_leaves)
window_closes = sa.Table(
    "window_closes",
    metadata,
    *(col(name, TEXT) for name in WINDOW),
    seq(),
    col("leaf_index", INT, sa.ForeignKey(LEAF), unique=True),
    col("closed_at", INT),
    col("record_json", TEXT),
    sa.PrimaryKeyConstraint(*WINDOW),
)

# corrections (docs/protocol-corrections.md): signed, logged documents that take units back
# from one earlier event; at most one per event
corrections = sa.Table(
    "corrections",
    metadata,
    row_id(),
    col("tenant_id", TEXT, sa.ForeignKey(TENANT)),
    col("correction_id", TEXT),
    col("corrects", TEXT),
    col("request_hash", TEXT),
    col("doc_json", TEXT),
    col("digest", TEXT),
    col("leaf_index", INT, sa.ForeignKey(LEAF), unique=True),
    col("currency", TEXT),
    amount("credit_micros", nullable=False),
    col("nullifier", TEXT),
    col("created_at", INT),
    settlement_status(),
    col("settlement_json", TEXT, null=True),
    sa.UniqueConstraint("tenant_id", "correction_id"),
    sa.UniqueConstraint("tenant_id", "corrects"),
)
