"""The daemon: one row per scheduled job with its last run, failures and backoff.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ledger.coltypes

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('stage_runs',
    sa.Column('job', sa.String(length=200), nullable=False),
    sa.Column('stage', sa.String(length=32), nullable=False),
    sa.Column('runs', sa.Integer(), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('failures_in_a_row', sa.Integer(), nullable=False),
    sa.Column('last_started_at', ledger.coltypes.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_finished_at', ledger.coltypes.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_seconds', sa.Float(), nullable=True),
    sa.Column('last_status', sa.String(length=16), nullable=True),
    sa.Column('last_summary', sa.JSON(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('retry_after', ledger.coltypes.UTCDateTime(timezone=True), nullable=True),
    sa.Column('worker', sa.String(length=200), nullable=True),
    sa.PrimaryKeyConstraint('job', name=op.f('pk_stage_runs'))
    )


def downgrade() -> None:
    op.drop_table('stage_runs')
