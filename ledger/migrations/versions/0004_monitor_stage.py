"""The monitor stage: targets, crawls, URL state across runs, captures and detections.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ledger.coltypes

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('targets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('start_urls', sa.JSON(), nullable=False),
    sa.Column('allowed_domains', sa.JSON(), nullable=False),
    sa.Column('follow', sa.JSON(), nullable=False),
    sa.Column('deny', sa.JSON(), nullable=False),
    sa.Column('depth', sa.Integer(), nullable=False),
    sa.Column('max_pages', sa.Integer(), nullable=False),
    sa.Column('schedule', sa.String(length=100), nullable=False),
    sa.Column('delay_seconds', sa.Float(), nullable=False),
    sa.Column('concurrency', sa.Integer(), nullable=False),
    sa.Column('obey_robots', sa.Boolean(), nullable=False),
    sa.Column('allow_private', sa.Boolean(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('created_at', ledger.coltypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('removed_at', ledger.coltypes.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_targets')),
    sa.UniqueConstraint('name', name=op.f('uq_targets_name'))
    )
    op.create_table('crawls',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('target_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('started_at', ledger.coltypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', ledger.coltypes.UTCDateTime(timezone=True), nullable=True),
    sa.Column('stats', sa.JSON(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['target_id'], ['targets.id'], name=op.f('fk_crawls_target_id_targets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crawls'))
    )
    with op.batch_alter_table('crawls', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_crawls_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_crawls_target_id'), ['target_id'], unique=False)

    op.create_table('url_state',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('target_id', sa.Integer(), nullable=False),
    sa.Column('url_key', sa.String(length=64), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('etag', sa.String(length=500), nullable=True),
    sa.Column('last_modified', sa.String(length=100), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('http_status', sa.Integer(), nullable=True),
    sa.Column('last_fetched_at', ledger.coltypes.UTCDateTime(timezone=True), nullable=True),
    sa.Column('next_visit_at', ledger.coltypes.UTCDateTime(timezone=True), nullable=True),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('links', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['target_id'], ['targets.id'], name=op.f('fk_url_state_target_id_targets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_url_state')),
    sa.UniqueConstraint('target_id', 'url_key', name=op.f('uq_url_state_target_id'))
    )
    with op.batch_alter_table('url_state', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_url_state_next_visit_at'), ['next_visit_at'], unique=False)

    op.create_table('captures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('crawl_id', sa.Integer(), nullable=False),
    sa.Column('target_id', sa.Integer(), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('page_url', sa.Text(), nullable=True),
    sa.Column('via', sa.String(length=32), nullable=False),
    sa.Column('fetched_at', ledger.coltypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('http_status', sa.Integer(), nullable=False),
    sa.Column('headers', sa.JSON(), nullable=False),
    sa.Column('content_type', sa.String(length=200), nullable=True),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('ip_address', sa.String(length=64), nullable=True),
    sa.Column('warc_file', sa.String(length=300), nullable=False),
    sa.Column('warc_offset', sa.BigInteger(), nullable=False),
    sa.Column('warc_length', sa.BigInteger(), nullable=False),
    sa.Column('page_warc_file', sa.String(length=300), nullable=True),
    sa.Column('page_warc_offset', sa.BigInteger(), nullable=True),
    sa.Column('page_warc_length', sa.BigInteger(), nullable=True),
    sa.Column('identify_status', sa.String(length=16), nullable=False),
    sa.Column('claimed_by', sa.String(length=100), nullable=True),
    sa.Column('lease_until', ledger.coltypes.UTCDateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('identified_at', ledger.coltypes.UTCDateTime(timezone=True), nullable=True),
    sa.Column('audio_seconds', sa.Float(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['crawl_id'], ['crawls.id'], name=op.f('fk_captures_crawl_id_crawls')),
    sa.ForeignKeyConstraint(['target_id'], ['targets.id'], name=op.f('fk_captures_target_id_targets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_captures')),
    sa.UniqueConstraint('crawl_id', 'url', name=op.f('uq_captures_crawl_id'))
    )
    with op.batch_alter_table('captures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_captures_crawl_id'), ['crawl_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_captures_identify_status'), ['identify_status'], unique=False)
        batch_op.create_index(batch_op.f('ix_captures_sha256'), ['sha256'], unique=False)
        batch_op.create_index(batch_op.f('ix_captures_target_id'), ['target_id'], unique=False)

    op.create_table('detections',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('capture_id', sa.Integer(), nullable=False),
    sa.Column('recording_id', sa.Integer(), nullable=False),
    sa.Column('holder_id', sa.Integer(), nullable=False),
    sa.Column('target_id', sa.Integer(), nullable=False),
    sa.Column('confidence', sa.Float(), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('query_start', sa.Float(), nullable=False),
    sa.Column('query_end', sa.Float(), nullable=False),
    sa.Column('ref_start', sa.Float(), nullable=False),
    sa.Column('speed', sa.Float(), nullable=False),
    sa.Column('pitch_semitones', sa.Float(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('detected_at', ledger.coltypes.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['capture_id'], ['captures.id'], name=op.f('fk_detections_capture_id_captures')),
    sa.ForeignKeyConstraint(['holder_id'], ['rights_holders.id'], name=op.f('fk_detections_holder_id_rights_holders')),
    sa.ForeignKeyConstraint(['recording_id'], ['recordings.id'], name=op.f('fk_detections_recording_id_recordings')),
    sa.ForeignKeyConstraint(['target_id'], ['targets.id'], name=op.f('fk_detections_target_id_targets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_detections')),
    sa.UniqueConstraint('capture_id', 'recording_id', name=op.f('uq_detections_capture_id'))
    )
    with op.batch_alter_table('detections', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_detections_capture_id'), ['capture_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_detections_holder_id'), ['holder_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_detections_recording_id'), ['recording_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_detections_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_detections_target_id'), ['target_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('detections', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_detections_target_id'))
        batch_op.drop_index(batch_op.f('ix_detections_status'))
        batch_op.drop_index(batch_op.f('ix_detections_recording_id'))
        batch_op.drop_index(batch_op.f('ix_detections_holder_id'))
        batch_op.drop_index(batch_op.f('ix_detections_capture_id'))

    op.drop_table('detections')
    with op.batch_alter_table('captures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_captures_target_id'))
        batch_op.drop_index(batch_op.f('ix_captures_sha256'))
        batch_op.drop_index(batch_op.f('ix_captures_identify_status'))
        batch_op.drop_index(batch_op.f('ix_captures_crawl_id'))

    op.drop_table('captures')
    with op.batch_alter_table('url_state', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_url_state_next_visit_at'))

    op.drop_table('url_state')
    with op.batch_alter_table('crawls', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_crawls_target_id'))
        batch_op.drop_index(batch_op.f('ix_crawls_status'))

    op.drop_table('crawls')
    op.drop_table('targets')
