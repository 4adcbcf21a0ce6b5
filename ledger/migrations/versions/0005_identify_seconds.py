"""How long identifying each capture took (decoding and matching), for the stage's figures.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("captures") as batch_op:
        batch_op.add_column(sa.Column("identify_seconds", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("captures") as batch_op:
        batch_op.drop_column("identify_seconds")
