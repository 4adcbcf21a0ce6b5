"""The daemon's queued runs for stage workers (daemon.worker_stages).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ledger.coltypes

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('stage_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job', sa.String(length=200), nullable=False),
    sa.Column('stage', sa.String(length=32), nullable=False),
    sa.Column('target', sa.String(length=100), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('requested_at', ledger.coltypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('claimed_by', sa.String(length=200), nullable=True),
    sa.Column('lease_until', ledger.coltypes.UTCDateTime(timezone=True), nullable=True),
    sa.Column('started_at', ledger.coltypes.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', ledger.coltypes.UTCDateTime(timezone=True), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stage_requests'))
    )
    op.create_index('ix_stage_requests_stage_status', 'stage_requests', ['stage', 'status'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_stage_requests_stage_status', table_name='stage_requests')
    op.drop_table('stage_requests')
