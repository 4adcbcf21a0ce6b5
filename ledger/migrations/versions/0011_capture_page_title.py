"""The title of the page each capture was found on (shown by the console, as text).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('captures') as batch:
        batch.add_column(sa.Column('page_title', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('captures') as batch:
        batch.drop_column('page_title')
