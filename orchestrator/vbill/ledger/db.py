"""The two SQL dialects the store speaks: SQLite (embedded) and PostgreSQL (psycopg 3).

The store writes one SQL text for both: `?` placeholders, `INSERT … ON CONFLICT`, amounts as
canonical decimal TEXT. For PostgreSQL this module rewrites placeholders to psycopg's `%s` and
gives rows that read by position and by name, as `sqlite3.Row` does. The schema itself is
SQLAlchemy Core metadata with Alembic revisions (vbill.ledger.tables, vbill.ledger.schema).

Writers are serialised the same way in both: SQLite's `BEGIN IMMEDIATE` takes the database's
write lock; on PostgreSQL every write transaction takes one transaction-level advisory lock
first. That lock elects the single writer of the transparency log across every replica, so
leaf indices stay gap-free and each (tenant, event_id) check-then-insert sees every commit.

`Database` is what every repository of the store holds: the connection of the calling thread
and `tx()`, the write transaction. `mapper` turns rows into the repositories' records;
`EventLocks` serialises work on one key within the process (a duplicate event waits for the
first instead of proving again).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from vbill.errors import ToolError

R = TypeVar("R")

# pg_advisory_xact_lock key of the store's writer lock ("vbill" in ASCII, as a bigint)
WRITER_LOCK_KEY = int.from_bytes(b"vbill", "big")


def is_postgres_url(url: str | None) -> bool:
    return bool(url) and url.startswith(("postgres://", "postgresql://"))  # type: ignore[union-attr]


class Row:
    """A result row readable as row[0] and row["name"], and by dict(row)."""

    __slots__ = ("_names", "_values")

    def __init__(self, names: Sequence[str], values: Sequence[Any]) -> None:
        self._names = names
        self._values = values

    def __getitem__(self, key: int | str) -> Any:
        if isinstance(key, int):
            return self._values[key]
        return self._values[self._names.index(key)]

    def keys(self) -> list[str]:
        return list(self._names)

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)


def _row_factory(cursor: Any) -> Any:
    names = [d.name for d in cursor.description] if cursor.description else []
    return lambda values: Row(names, values)


def _placeholders(sql: str) -> str:
    """`?` → `%s` (the store's SQL has no literal `?`; a literal `%` is escaped as `%%`)."""
    return sql.replace("%", "%%").replace("?", "%s")


class PgConnection:
    """A psycopg connection with the sqlite3 surface the store uses (execute, executemany,
    fetchone/fetchall/iteration on the result, rowcount), in autocommit mode so that the
    store's explicit BEGIN/COMMIT delimit its transactions exactly as on SQLite."""

    def __init__(self, url: str) -> None:
        try:
            import psycopg
        except ImportError:
            raise ToolError(
                "DATABASE_URL names PostgreSQL but psycopg is not installed; "
                "`pip install 'psycopg[binary]'`"
            ) from None
        try:
            self._conn = psycopg.connect(url, autocommit=True, row_factory=_row_factory)
        except psycopg.OperationalError as exc:
            raise ToolError(f"cannot connect to PostgreSQL: {str(exc).strip()}") from None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._conn.execute(_placeholders(sql), params or None, prepare=None)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any:
        cur = self._conn.cursor()
        cur.executemany(_placeholders(sql), rows)
        return cur

    def close(self) -> None:
        self._conn.close()


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def stored_amount(value: int | None) -> str | None:
    """An amount as the store keeps it (canonical decimal TEXT)."""
    return None if value is None else str(value)


def int_or_none(value: str | None) -> int | None:
    return None if value is None else int(value)


def json_or_none(value: str | None) -> Any:
    """A JSON column that may be empty (NULL): its value, or None."""
    return json.loads(value) if value else None


def mapper(
    record: type[R], **read: Callable[[Any], Any] | tuple[str, Callable[[Any], Any]]
) -> Callable[[Any], R]:
    """A function from a row to the dataclass `record`: each field is the column of its name,
    as it is, or as `read[field]` says: a function of that column, or (another column, a
    function of it), e.g. `bundle=("bundle_json", json.loads)`."""
    plan = []
    for field in dataclasses.fields(record):  # type: ignore[arg-type]
        how = read.pop(field.name, None)
        column, convert = how if isinstance(how, tuple) else (field.name, how)
        plan.append((field.name, column, convert))
    assert not read, f"no such field of {record.__name__}: {sorted(read)}"

    def from_row(row: Any) -> R:
        return record(
            **{name: convert(row[col]) if convert else row[col] for name, col, convert in plan}
        )

    return from_row


class Database:
    """The store's database: a SQLite file or a postgresql:// URL, one connection per thread."""

    def __init__(self, path: Path | str) -> None:
        from vbill import paths

        self.url = str(path) if is_postgres_url(str(path)) else None
        self.path = Path(path) if self.url is None else None
        if self.path is not None:
            paths.private_dir(self.path.parent)
            self.private_files()  # before SQLite creates the file with the umask's mode
        self._local = threading.local()

    def private_files(self) -> None:
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

    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None and self.url is not None:
            conn = self._local.conn = PgConnection(self.url)
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
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken up front (BEGIN IMMEDIATE, or PostgreSQL's advisory writer
        lock): writers queue, never deadlock, and each sees every earlier commit."""
        conn = self.conn()
        if self.url is None:
            conn.execute("BEGIN IMMEDIATE")
        else:
            conn.execute("BEGIN")
            conn.execute("SELECT pg_advisory_xact_lock(?)", (WRITER_LOCK_KEY,))
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


class EventLocks:
    """In-process locks by key, (tenant, event) and the like: a duplicate waits for the first
    instead of proving again; a key's lock exists only while someone holds or awaits it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self.held: dict[tuple[str, ...], tuple[threading.Lock, int]] = {}

    @contextmanager
    def hold(self, key: tuple[str, ...]) -> Iterator[None]:
        """Serialise work on one (tenant, event): a duplicate waits instead of proving again."""
        with self._guard:
            lock, users = self.held.get(key, (threading.Lock(), 0))
            self.held[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self.held[key]
                if users <= 1:
                    del self.held[key]
                else:
                    self.held[key] = (lock, users - 1)
