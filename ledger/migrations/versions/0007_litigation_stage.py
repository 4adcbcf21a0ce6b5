"""The litigation stage: cases (one infringer as one holder's lawsuit candidate) with their
hosts, notes, limitation reminders and exported dossiers; a recording's registration status and
chain of title.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ledger.coltypes

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('cases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('holder_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('track', sa.String(length=16), nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('breakdown', sa.JSON(), nullable=False),
    sa.Column('gates', sa.JSON(), nullable=False),
    sa.Column('damages', sa.JSON(), nullable=False),
    sa.Column('works', sa.Integer(), nullable=False),
    sa.Column('detections', sa.Integer(), nullable=False),
    sa.Column('first_seen_at', ledger.coltypes.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_seen_at', ledger.coltypes.UTCDateTime(timezone=True), nullable=True),
    sa.Column('limitation_deadline', sa.Date(), nullable=True),
    sa.Column('assignee', sa.String(length=200), nullable=True),
    sa.Column('created_at', ledger.coltypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('scored_at', ledger.coltypes.UTCDateTime(timezone=True), nullable=True),
    sa.Column('decided_at', ledger.coltypes.UTCDateTime(timezone=True), nullable=True),
    sa.Column('decided_by', sa.String(length=200), nullable=True),
    sa.Column('decision_reason', sa.Text(), nullable=True),
    sa.Column('merged_into_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['holder_id'], ['rights_holders.id'], name=op.f('fk_cases_holder_id_rights_holders')),
    sa.ForeignKeyConstraint(['merged_into_id'], ['cases.id'], name=op.f('fk_cases_merged_into_id_cases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cases'))
    )
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cases_holder_id'), ['holder_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_cases_limitation_deadline'), ['limitation_deadline'], unique=False)
        batch_op.create_index(batch_op.f('ix_cases_score'), ['score'], unique=False)
        batch_op.create_index(batch_op.f('ix_cases_status'), ['status'], unique=False)

    op.create_table('case_hosts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('holder_id', sa.Integer(), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('links', sa.JSON(), nullable=False),
    sa.Column('added_at', ledger.coltypes.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_hosts_case_id_cases')),
    sa.ForeignKeyConstraint(['holder_id'], ['rights_holders.id'], name=op.f('fk_case_hosts_holder_id_rights_holders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_hosts')),
    sa.UniqueConstraint('holder_id', 'host', name=op.f('uq_case_hosts_holder_id'))
    )
    with op.batch_alter_table('case_hosts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_hosts_case_id'), ['case_id'], unique=False)

    op.create_table('case_notes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('at', ledger.coltypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('author', sa.String(length=200), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_notes_case_id_cases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_notes'))
    )
    with op.batch_alter_table('case_notes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_notes_case_id'), ['case_id'], unique=False)

    op.create_table('case_reminders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('deadline', sa.Date(), nullable=False),
    sa.Column('days_before', sa.Integer(), nullable=False),
    sa.Column('created_at', ledger.coltypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', ledger.coltypes.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_reminders_case_id_cases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_reminders')),
    sa.UniqueConstraint('case_id', 'deadline', 'days_before', name=op.f('uq_case_reminders_case_id'))
    )
    with op.batch_alter_table('case_reminders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_reminders_case_id'), ['case_id'], unique=False)

    op.create_table('dossiers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('holder_id', sa.Integer(), nullable=False),
    sa.Column('created_at', ledger.coltypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('manifest_sha256', sa.String(length=64), nullable=False),
    sa.Column('files', sa.Integer(), nullable=False),
    sa.Column('bytes', sa.BigInteger(), nullable=False),
    sa.Column('timestamped_at', ledger.coltypes.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_dossiers_case_id_cases')),
    sa.ForeignKeyConstraint(['holder_id'], ['rights_holders.id'], name=op.f('fk_dossiers_holder_id_rights_holders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dossiers'))
    )
    with op.batch_alter_table('dossiers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dossiers_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_dossiers_holder_id'), ['holder_id'], unique=False)

    with op.batch_alter_table('recordings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('registration_status', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('chain_of_title', sa.Text(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('recordings', schema=None) as batch_op:
        batch_op.drop_column('chain_of_title')
        batch_op.drop_column('registration_status')

    with op.batch_alter_table('dossiers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dossiers_holder_id'))
        batch_op.drop_index(batch_op.f('ix_dossiers_case_id'))

    op.drop_table('dossiers')
    with op.batch_alter_table('case_reminders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_reminders_case_id'))

    op.drop_table('case_reminders')
    with op.batch_alter_table('case_notes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_notes_case_id'))

    op.drop_table('case_notes')
    with op.batch_alter_table('case_hosts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_hosts_case_id'))

    op.drop_table('case_hosts')
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cases_status'))
        batch_op.drop_index(batch_op.f('ix_cases_score'))
        batch_op.drop_index(batch_op.f('ix_cases_limitation_deadline'))
        batch_op.drop_index(batch_op.f('ix_cases_holder_id'))

    op.drop_table('cases')
