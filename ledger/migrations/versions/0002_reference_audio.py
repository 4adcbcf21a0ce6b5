"""Reference audio of recordings, and the scheme of each stored fingerprint.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("recordings") as batch_op:
        batch_op.add_column(sa.Column("reference_audio", sa.String(length=200), nullable=True))
    with op.batch_alter_table("recording_fingerprints") as batch_op:
        batch_op.add_column(sa.Column("scheme", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("recording_fingerprints") as batch_op:
        batch_op.drop_column("scheme")
    with op.batch_alter_table("recordings") as batch_op:
        batch_op.drop_column("reference_audio")
