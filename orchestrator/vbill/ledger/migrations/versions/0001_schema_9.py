"""Schema 9: the baseline, the schema of the last release before Alembic.

Revision ID: 0001
Revises:
Create Date: 2026-12-06

vbill.ledger.schema stamps a database here once it holds schema 9: a new one made from
vbill.ledger.tables, or an older one brought to 9 by vbill.ledger.legacy's scripts. Run from an
empty database (Alembic alone, not vbill's way), it runs those nine scripts.
"""

from collections.abc import Sequence

from alembic import op

from vbill.ledger import legacy

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    bind = op.get_bind()
    legacy.upgrade(bind.exec_driver_sql, postgres=bind.dialect.name == "postgresql", current=0)


def downgrade() -> None:
    raise NotImplementedError("schema 9 is the first revision: restore a backup instead")
