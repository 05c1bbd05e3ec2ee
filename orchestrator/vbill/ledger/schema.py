"""How a database reaches the store's schema: SQLAlchemy Core metadata (vbill.ledger.tables) and
Alembic revisions (vbill.ledger.migrations), one source for SQLite and PostgreSQL.

Opening a store calls `migrate`, in one of five cases:

- at the head already (`alembic_version` holds `HEAD`): nothing to do. One DB-API query tells,
  so an up-to-date store opens without importing SQLAlchemy or Alembic at all;
- a new, empty database: the tables of vbill.ledger.tables (`create_all`), stamped at the head;
- managed by Alembic, behind the head: `alembic upgrade head`;
- written by a release before Alembic (a `schema_version` table, versions 1-9): the steps it
  lacks up to 9 as those releases ran them (vbill.ledger.legacy, frozen), stamped at the
  baseline revision, which is schema 9 exactly, then `alembic upgrade head`;
- newer than this vbill (a revision it does not know, or a schema version above 9 and no
  revision): refused, so an older vbill never writes into a schema it does not know.

Why a baseline and a bridge rather than revisions 1-9 rewritten in Alembic's operations: the
databases that exist were made by those nine scripts, on SQLite and PostgreSQL alike; running
the very scripts brings them to schema 9 exactly as the release that wrote them would have, and
tests/ledger/test_schema.py checks that the result equals a database made from the metadata.
A rewrite would be nine new programs to get subtly wrong (table rebuilds on SQLite) for the
same end. Every change after schema 9 is an Alembic revision (docs/operations.md says how).

`schema_version` stays, with one more row, `FENCE` (10), once Alembic keeps the database: a
release before Alembic then refuses it ("newer than this vbill") instead of running its
migration 1 on it.

The whole upgrade is one write transaction (SQLite's BEGIN IMMEDIATE, PostgreSQL's advisory
writer lock), so processes opening one database at once upgrade it once.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from vbill.errors import ToolError
from vbill.ledger import legacy
from vbill.ledger.db import WRITER_LOCK_KEY, Database

HEAD = "0002"
"""The newest Alembic revision in vbill.ledger.migrations (a test holds the two equal)."""

BASELINE = "0001"
"""The revision that is schema 9, the last of vbill.ledger.legacy."""

FENCE = len(legacy.MIGRATIONS) + 1

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def version(database: Database) -> str | None:
    """The database's Alembic revision, or None (not kept by Alembic yet, or new)."""
    conn = database.conn()
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except Exception:  # no such table: `upgrade` finds out what the database holds
        return None
    return row[0] if row else None


def migrate(database: Database) -> None:
    """Bring the database to the head revision (nothing to do, and nothing imported, if it is
    there already)."""
    if version(database) != HEAD:
        upgrade(database)


def alembic_config(connection: Any) -> Any:
    """Alembic's configuration, made in code (no alembic.ini): the revisions in this package,
    run on `connection` (env.py takes it from the attributes)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def upgrade(database: Database) -> None:
    """The full path: take the writer's lock, look at what the database holds, and bring it to
    the head (see the module's docstring)."""
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    if database.url is None:
        path = database.path

        def connect() -> sqlite3.Connection:
            conn = sqlite3.connect(path, isolation_level=None, timeout=30)
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            return conn

        engine = sa.create_engine("sqlite://", creator=connect, poolclass=NullPool)
    else:
        import psycopg

        url = database.url
        engine = sa.create_engine(
            "postgresql+psycopg://", creator=lambda: psycopg.connect(url), poolclass=NullPool
        )
    try:
        with engine.connect() as conn:
            if database.url is None:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": WRITER_LOCK_KEY})
            _to_head(conn, str(database.path or "the database"))
            conn.commit()
    finally:
        engine.dispose()


def _to_head(conn: Any, where: str) -> None:
    import sqlalchemy as sa
    from alembic import command
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError

    from vbill.ledger import tables

    script = ScriptDirectory(str(MIGRATIONS_DIR))
    context = MigrationContext.configure(conn)
    present = set(sa.inspect(conn).get_table_names())
    if "alembic_version" in present:
        current = context.get_current_revision()
        try:
            script.get_revision(current)
        except CommandError:
            raise ToolError(
                f"{where} has schema revision {current}, newer than this vbill ({HEAD}); "
                "upgrade vbill"
            ) from None
    elif "schema_version" in present:
        current = conn.exec_driver_sql("SELECT MAX(version) FROM schema_version").scalar() or 0
        if current > len(legacy.MIGRATIONS):
            raise ToolError(
                f"{where} has schema version {current}, newer than this vbill "
                f"({len(legacy.MIGRATIONS)}); upgrade vbill"
            )
        legacy.upgrade(
            conn.exec_driver_sql, postgres=conn.dialect.name == "postgresql", current=current
        )
        context.stamp(script, BASELINE)
    else:  # a new database: made at the head, nothing to run
        tables.metadata.create_all(conn, checkfirst=False)
        context.stamp(script, HEAD)
    if context.get_current_revision() != HEAD:
        command.upgrade(alembic_config(conn), HEAD)
    fenced = conn.exec_driver_sql("SELECT MAX(version) FROM schema_version").scalar() or 0
    if fenced < FENCE:
        conn.exec_driver_sql(f"INSERT INTO schema_version (version) VALUES ({FENCE})")
