"""gap: one row per (watch, source, signal, entity, start): gaps of two signals of one source are two gaps

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: Union[str, None] = "0003"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

COLUMNS = ["watch", "source", sa.text("coalesce(signal, '')"), "entity", "start"]


def upgrade() -> None:
    with op.batch_alter_table("gap", schema=None) as batch_op:  # SQLite rebuilds the table to drop a constraint
        batch_op.drop_constraint("uq_gap", type_="unique")
    op.create_index("uq_gap_signal", "gap", COLUMNS, unique=True)


def downgrade() -> None:
    op.drop_index("uq_gap_signal", table_name="gap")
    with op.batch_alter_table("gap", schema=None) as batch_op:
        batch_op.create_unique_constraint("uq_gap", ["watch", "source", "entity", "start"])
