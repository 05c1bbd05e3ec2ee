"""A database's schema as comparable data (tables, columns, keys, checks, indexes), on SQLite
and PostgreSQL, to check that two ways of making a database give the same one. Alembic's own
table is left out: the old path never had it."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

SKIP = ("alembic_version",)


def _checks(sql: str) -> list[str]:
    """The CHECK expressions of a CREATE TABLE text, whitespace normalised."""
    found = []
    for match in re.finditer(r"\bCHECK\s*\(", sql):
        depth, i = 1, match.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(sql[i], 0)
            i += 1
        found.append(" ".join(sql[match.end() : i - 1].split()))
    return sorted(found)


def sqlite_schema(path: Path | str) -> dict[str, Any]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        out: dict[str, Any] = {}
        tables = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite_%' ORDER BY name"
        ).fetchall()
        for name, sql in tables:
            if name in SKIP:
                continue
            indexes = []
            for _, index, unique, origin, partial in conn.execute(f'PRAGMA index_list("{name}")'):
                columns = [r[2] for r in conn.execute(f'PRAGMA index_info("{index}")')]
                # automatic indexes (UNIQUE, PRIMARY KEY) are numbered by SQLite: name not kept
                indexes.append((index if origin == "c" else origin, unique, partial, columns))
            out[name] = {
                "columns": conn.execute(f'PRAGMA table_info("{name}")').fetchall(),
                "foreign_keys": sorted(
                    r[2:] for r in conn.execute(f'PRAGMA foreign_key_list("{name}")')
                ),
                "indexes": sorted(indexes),
                "checks": _checks(sql),
            }
        return out
    finally:
        conn.close()


def postgres_schema(url: str) -> dict[str, Any]:
    import psycopg

    with psycopg.connect(url) as conn:
        columns = conn.execute(
            "SELECT table_name, ordinal_position, column_name, data_type, is_nullable, "
            "column_default, is_identity, identity_generation FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name <> ALL(%s) "
            "ORDER BY table_name, ordinal_position",
            (list(SKIP),),
        ).fetchall()
        constraints = conn.execute(
            "SELECT c.conrelid::regclass::text, c.conname, c.contype, pg_get_constraintdef(c.oid)"
            " FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace"
            " WHERE n.nspname = 'public' AND c.conrelid::regclass::text <> ALL(%s)"
            " ORDER BY 1, 2",
            (list(SKIP),),
        ).fetchall()
        indexes = conn.execute(
            "SELECT tablename, indexname, indexdef FROM pg_indexes "
            "WHERE schemaname = 'public' AND tablename <> ALL(%s) ORDER BY 1, 2",
            (list(SKIP),),
        ).fetchall()
        sequences = conn.execute(
            "SELECT sequencename FROM pg_sequences WHERE schemaname = 'public' ORDER BY 1"
        ).fetchall()
    return {
        "columns": columns,
        "constraints": constraints,
        "indexes": indexes,
        "sequences": sequences,
    }
