"""Catalog imports: uploads the web server decodes and registers in the background.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ledger.coltypes

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('catalog_imports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('holder_id', sa.Integer(), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('directory', sa.String(length=200), nullable=False),
    sa.Column('files', sa.JSON(), nullable=False),
    sa.Column('fields', sa.JSON(), nullable=False),
    sa.Column('files_done', sa.Integer(), nullable=False),
    sa.Column('current_file', sa.String(length=300), nullable=True),
    sa.Column('items', sa.JSON(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('claimed_by', sa.String(length=200), nullable=True),
    sa.Column('lease_until', ledger.coltypes.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', ledger.coltypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('started_at', ledger.coltypes.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', ledger.coltypes.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['holder_id'], ['rights_holders.id'],
                            name=op.f('fk_catalog_imports_holder_id_rights_holders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_catalog_imports'))
    )
    op.create_index('ix_catalog_imports_holder_created', 'catalog_imports',
                    ['holder_id', 'created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_catalog_imports_holder_created', table_name='catalog_imports')
    op.drop_table('catalog_imports')
