"""The schema from one source: a new database made from vbill.ledger.tables holds exactly what
the migrations of the releases before Alembic made (vbill.ledger.legacy, run as those releases
ran them), on SQLite and on PostgreSQL; a database at schema 9 is stamped without a change to
its tables; the Alembic head is the one vbill.ledger.schema names; a newer schema is refused.
tests/ledger/test_compat_store.py upgrades a real store of an older release."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from support.schema import postgres_schema, sqlite_schema
from vbill.errors import ToolError
from vbill.ledger import legacy, schema
from vbill.ledger.store import Store


def legacy_sqlite(path: Path) -> Path:
    """A database as the releases before Alembic made it (schema 9)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("BEGIN IMMEDIATE")
    legacy.upgrade(conn.execute, postgres=False, current=0)
    conn.execute("COMMIT")
    conn.close()
    return path


def legacy_postgres(url: str) -> str:
    with psycopg.connect(url) as conn:
        legacy.upgrade(conn.execute, postgres=True, current=0)
    return url


def test_the_head_is_the_newest_revision() -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(schema.MIGRATIONS_DIR))
    assert script.get_heads() == [schema.HEAD]
    assert script.get_revision(schema.BASELINE).down_revision is None
    assert schema.FENCE == len(legacy.MIGRATIONS) + 1 == 10


def test_sqlite_a_new_database_is_the_old_migrations_schema(tmp_path: Path) -> None:
    old = sqlite_schema(legacy_sqlite(tmp_path / "old.sqlite3"))
    Store(tmp_path / "new.sqlite3").close()
    new = sqlite_schema(tmp_path / "new.sqlite3")
    assert set(new) == set(old)
    for table in old:
        assert new[table] == old[table], table
    assert len(old["bundles"]["checks"]) == 3 and "GLOB" in old["limits"]["checks"][0]


def test_sqlite_a_schema_9_database_is_stamped_without_a_change(tmp_path: Path) -> None:
    path = legacy_sqlite(tmp_path / "nine.sqlite3")
    before = sqlite_schema(path)
    store = Store(path)
    assert store.schema_version() == schema.HEAD
    store.close()
    assert sqlite_schema(path) == before
    conn = sqlite3.connect(path)
    versions = [v for (v,) in conn.execute("SELECT version FROM schema_version ORDER BY 1")]
    conn.close()
    # a release before Alembic reads MAX(version) = 10 > 9 and refuses the database
    assert versions == [*range(1, 10), schema.FENCE] and schema.FENCE == 10


def without_v4(described: dict[str, list[tuple[str, ...]]]) -> dict[str, list[tuple[str, ...]]]:
    """The names legacy migration 4 left on PostgreSQL (bundles_v4_pkey, …) as a new database
    has them (bundles_pkey, …): the one difference revision 0002 removes."""
    return {
        part: sorted(tuple(str(v).replace("_v4_", "_") for v in row) for row in rows)
        for part, rows in described.items()
    }


def test_postgres_a_new_database_is_the_old_migrations_schema(pg_server) -> None:
    old = postgres_schema(legacy_postgres(pg_server.new_database()))
    url = pg_server.new_database()
    Store(url).close()
    new = postgres_schema(url)
    assert new["columns"] == old["columns"]
    assert without_v4(new) == without_v4(old)
    assert any("~" in c[3] for c in old["constraints"] if c[0] == "limits")


def test_postgres_a_schema_9_database_upgrades_to_a_new_database_s_schema(pg_server) -> None:
    """Stamped at schema 9 with no change, then revision 0002 renames bundles_v4_… only."""
    url = legacy_postgres(pg_server.new_database())
    before = postgres_schema(url)
    store = Store(url)
    assert store.schema_version() == schema.HEAD
    store.close()
    after = postgres_schema(url)
    fresh = pg_server.new_database()
    Store(fresh).close()
    assert after == postgres_schema(fresh)
    assert after["columns"] == before["columns"]
    assert ("bundles_v4_id_seq",) in before["sequences"]
    assert ("bundles_id_seq",) in after["sequences"]


def test_a_newer_legacy_schema_is_refused(tmp_path: Path) -> None:
    """(A newer Alembic revision: tests/ledger/test_store.py, on both dialects.)"""
    old = legacy_sqlite(tmp_path / "old.sqlite3")
    conn = sqlite3.connect(old)
    conn.execute("INSERT INTO schema_version (version) VALUES (11)")
    conn.commit()
    conn.close()
    with pytest.raises(ToolError, match="schema version 11, newer than this vbill"):
        Store(old)


def test_an_up_to_date_store_opens_without_importing_alembic(tmp_path: Path) -> None:
    """Opening a store at the head reads alembic_version and stops: CLI start-up pays no
    SQLAlchemy or Alembic import."""
    path = tmp_path / "s.sqlite3"
    Store(path).close()
    probe = (
        "import sys; from vbill.ledger.store import Store; Store(sys.argv[1]).close(); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'alembic', 'sqlalchemy'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, str(path)], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_alembic_finds_nothing_to_generate_after_the_upgrade(
    dialect: str, tmp_path: Path, pg_server
) -> None:
    """Alembic's own comparison (what `--autogenerate` writes) of vbill.ledger.tables with a
    pre-Alembic database brought to the head: empty (python -m vbill.ledger.migrations
    autogenerates against SQLite)."""
    import sqlalchemy as sa
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from vbill.ledger import tables

    if dialect == "sqlite":
        where: str | Path = legacy_sqlite(tmp_path / "old.sqlite3")
        url = f"sqlite:///{where}"
    else:
        where = legacy_postgres(pg_server.new_database())
        url = where.replace("postgresql://", "postgresql+psycopg://", 1)
    Store(where).close()
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), tables.metadata)
    finally:
        engine.dispose()
    if dialect == "postgresql":
        # a one-column primary key is declared nullable, as SQLite has always had it
        # (tables.key); PostgreSQL reports it NOT NULL, which a primary key implies there
        keys = {(t.name, c.name) for t in tables.metadata.tables.values() for c in t.primary_key}
        ignored = [d for d in diffs if d[0][0] == "modify_nullable" and d[0][2:4] in keys]
        assert len(ignored) == 9
        diffs = [d for d in diffs if d not in ignored]
    assert diffs == []


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_stores_opened_at_once_upgrade_a_database_once(
    dialect: str, tmp_path: Path, pg_server
) -> None:
    """Replicas starting together on a pre-Alembic database: the first takes the writer's lock
    and upgrades, the others wait for it and find the head."""
    import threading

    if dialect == "sqlite":
        where: str | Path = legacy_sqlite(tmp_path / "old.sqlite3")
        connect = lambda: sqlite3.connect(where)  # noqa: E731
    else:
        where = legacy_postgres(pg_server.new_database())
        connect = lambda: psycopg.connect(where)  # noqa: E731
    start, errors = threading.Barrier(4), []

    def open_one() -> None:
        start.wait()
        try:
            Store(where).close()
        except Exception as exc:  # reported below, with the others
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    conn = connect()
    try:
        versions = [v for (v,) in conn.execute("SELECT version FROM schema_version ORDER BY 1")]
        heads = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    finally:
        conn.close()
    assert versions == [*range(1, 10), schema.FENCE]
    assert [tuple(h) for h in heads] == [(schema.HEAD,)]
