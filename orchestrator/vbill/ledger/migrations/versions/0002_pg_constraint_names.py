"""PostgreSQL: the constraints, indexes and id sequence of `bundles` and `limits` get the names a
new database gives them.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06

Legacy migration 4 rebuilt both tables as bundles_v4 / limits_v4 and renamed them, so every
PostgreSQL database made before Alembic names their keys and checks `bundles_v4_…`; a database
made from vbill.ledger.tables names them `bundles_…`. One set of names lets later revisions
alter a constraint by name on every database. Renames only: no row is read or written. SQLite
keeps these constraints unnamed and has nothing to do.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("bundles", "limits")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for table in TABLES:
        old = f"{table}_v4_"
        names = bind.execute(
            sa.text(
                "SELECT conname FROM pg_constraint WHERE conrelid = CAST(:t AS regclass) "
                "AND starts_with(conname, :old)"
            ),
            {"t": table, "old": old},
        ).scalars()
        for name in list(names):
            new = table + "_" + name.removeprefix(old)
            op.execute(f'ALTER TABLE {table} RENAME CONSTRAINT "{name}" TO "{new}"')
    sequence = bind.execute(sa.text("SELECT pg_get_serial_sequence('bundles', 'id')")).scalar()
    if sequence and sequence.endswith(".bundles_v4_id_seq"):
        op.execute(f"ALTER SEQUENCE {sequence} RENAME TO bundles_id_seq")


def downgrade() -> None:
    raise NotImplementedError("restore a backup instead")
