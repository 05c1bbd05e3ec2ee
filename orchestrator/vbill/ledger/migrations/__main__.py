"""`python -m vbill.ledger.migrations -m "what changes" [--autogenerate]`: a new Alembic
revision in versions/, after the previous head, for a developer changing vbill.ledger.tables.

With --autogenerate Alembic writes the operations that take a scratch SQLite database, brought
to the current head by the revisions themselves, to the tables as vbill.ledger.tables now has
them; read them and fix what SQLite's batch mode needs. Then set vbill.ledger.schema.HEAD to the
new revision and run tests/ledger/test_schema.py (a new database and an upgraded one must hold
the same schema on SQLite and PostgreSQL).
"""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

import click


@click.command()
@click.option("-m", "--message", required=True, help="What the revision changes.")
@click.option("--autogenerate", is_flag=True, help="Write the operations that the tables need.")
def main(message: str, autogenerate: bool) -> None:
    import sqlalchemy as sa
    from alembic import command
    from alembic.script import ScriptDirectory

    from vbill.ledger import legacy, schema
    from vbill.ledger.db import Database

    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "scratch.sqlite3"
        sqlite3.connect(path).executescript(legacy.SCHEMA_VERSION_TABLE)
        schema.upgrade(Database(path))  # schema 9 by the legacy scripts, then every revision
        engine = sa.create_engine(f"sqlite:///{path}")
        with engine.connect() as conn:
            config = schema.alembic_config(conn)
            head = ScriptDirectory.from_config(config).get_current_head()
            number = f"{int(head or '0') + 1:04d}"
            command.revision(
                config, message, autogenerate=autogenerate, rev_id=number, head=head or "base"
            )
        engine.dispose()
    click.echo(f"revision {number}: now set vbill.ledger.schema.HEAD = {number!r}")


if __name__ == "__main__":
    main()
