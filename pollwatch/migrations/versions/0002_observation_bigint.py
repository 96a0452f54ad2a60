"""observation.asn and observation.count as 64-bit integers (4-byte ASNs reach 2**32-1)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: Union[str, None] = "0001"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    # SQLite's INTEGER already holds 64 bits; only PostgreSQL's 32-bit INTEGER needs widening.
    if op.get_bind().dialect.name == "sqlite":
        return
    op.alter_column("observation", "asn", type_=sa.BigInteger(), existing_type=sa.Integer(), existing_nullable=True)
    op.alter_column("observation", "count", type_=sa.BigInteger(), existing_type=sa.Integer(), existing_nullable=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    op.alter_column("observation", "count", type_=sa.Integer(), existing_type=sa.BigInteger(), existing_nullable=True)
    op.alter_column("observation", "asn", type_=sa.Integer(), existing_type=sa.BigInteger(), existing_nullable=True)
