"""The takedown stage: licences, notices and their items, delivery attempts (the outbox),
counter-notices; who signs a holder's notices and its notice policy; a target's notice contact
and jurisdiction.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ledger.coltypes

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('notices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('reference', sa.String(length=128), nullable=False),
    sa.Column('holder_id', sa.Integer(), nullable=False),
    sa.Column('target_id', sa.Integer(), nullable=True),
    sa.Column('jurisdiction', sa.String(length=8), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('recipient_key', sa.String(length=400), nullable=False),
    sa.Column('recipient_name', sa.String(length=300), nullable=False),
    sa.Column('recipient_role', sa.String(length=200), nullable=False),
    sa.Column('recipient_email', sa.String(length=320), nullable=True),
    sa.Column('recipient_form_url', sa.Text(), nullable=True),
    sa.Column('recipient_source', sa.String(length=16), nullable=False),
    sa.Column('subject', sa.Text(), nullable=True),
    sa.Column('body_text', sa.Text(), nullable=True),
    sa.Column('body_html', sa.Text(), nullable=True),
    sa.Column('consideration', sa.JSON(), nullable=True),
    sa.Column('created_at', ledger.coltypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('send_after', ledger.coltypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_at', ledger.coltypes.UTCDateTime(timezone=True), nullable=True),
    sa.Column('decided_by', sa.String(length=200), nullable=True),
    sa.Column('decision_reason', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', ledger.coltypes.UTCDateTime(timezone=True), nullable=True),
    sa.Column('claimed_by', sa.String(length=100), nullable=True),
    sa.Column('lease_until', ledger.coltypes.UTCDateTime(timezone=True), nullable=True),
    sa.Column('sent_at', ledger.coltypes.UTCDateTime(timezone=True), nullable=True),
    sa.Column('message_id', sa.String(length=400), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('recheck_at', ledger.coltypes.UTCDateTime(timezone=True), nullable=True),
    sa.Column('deadline_at', ledger.coltypes.UTCDateTime(timezone=True), nullable=True),
    sa.Column('reminder_sent_at', ledger.coltypes.UTCDateTime(timezone=True), nullable=True),
    sa.Column('outcome_at', ledger.coltypes.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['holder_id'], ['rights_holders.id'], name=op.f('fk_notices_holder_id_rights_holders')),
    sa.ForeignKeyConstraint(['target_id'], ['targets.id'], name=op.f('fk_notices_target_id_targets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notices')),
    sa.UniqueConstraint('reference', name=op.f('uq_notices_reference'))
    )
    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notices_holder_id'), ['holder_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_notices_next_attempt_at'), ['next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_notices_recheck_at'), ['recheck_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_notices_recipient_key'), ['recipient_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_notices_send_after'), ['send_after'], unique=False)
        batch_op.create_index(batch_op.f('ix_notices_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_notices_target_id'), ['target_id'], unique=False)

    op.create_table('url_checks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('crawl_id', sa.Integer(), nullable=False),
    sa.Column('target_id', sa.Integer(), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('url_key', sa.String(length=64), nullable=False),
    sa.Column('checked_at', ledger.coltypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('http_status', sa.Integer(), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('size', sa.BigInteger(), nullable=True),
    sa.Column('warc_file', sa.String(length=300), nullable=True),
    sa.Column('warc_offset', sa.BigInteger(), nullable=True),
    sa.Column('warc_length', sa.BigInteger(), nullable=True),
    sa.Column('warc_record_id', sa.String(length=100), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['crawl_id'], ['crawls.id'], name=op.f('fk_url_checks_crawl_id_crawls')),
    sa.ForeignKeyConstraint(['target_id'], ['targets.id'], name=op.f('fk_url_checks_target_id_targets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_url_checks'))
    )
    with op.batch_alter_table('url_checks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_url_checks_crawl_id'), ['crawl_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_url_checks_target_id'), ['target_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_url_checks_url_key'), ['url_key'], unique=False)

    op.create_table('site_contacts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('target_id', sa.Integer(), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('page_url', sa.Text(), nullable=False),
    sa.Column('context', sa.Text(), nullable=False),
    sa.Column('found_at', ledger.coltypes.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['target_id'], ['targets.id'], name=op.f('fk_site_contacts_target_id_targets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_site_contacts')),
    sa.UniqueConstraint('host', 'email', name=op.f('uq_site_contacts_host'))
    )
    with op.batch_alter_table('site_contacts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_site_contacts_host'), ['host'], unique=False)
        batch_op.create_index(batch_op.f('ix_site_contacts_target_id'), ['target_id'], unique=False)

    with op.batch_alter_table('captures', schema=None) as batch_op:
        batch_op.add_column(sa.Column('warc_record_id', sa.String(length=100), nullable=True))

    op.create_table('counter_notices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('notice_id', sa.Integer(), nullable=False),
    sa.Column('holder_id', sa.Integer(), nullable=False),
    sa.Column('received_at', ledger.coltypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sender', sa.String(length=400), nullable=True),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('message_sha256', sa.String(length=64), nullable=False),
    sa.Column('putback_earliest', sa.Date(), nullable=True),
    sa.Column('putback_latest', sa.Date(), nullable=True),
    sa.Column('rule', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['holder_id'], ['rights_holders.id'], name=op.f('fk_counter_notices_holder_id_rights_holders')),
    sa.ForeignKeyConstraint(['notice_id'], ['notices.id'], name=op.f('fk_counter_notices_notice_id_notices')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_counter_notices'))
    )
    with op.batch_alter_table('counter_notices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_counter_notices_holder_id'), ['holder_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_counter_notices_notice_id'), ['notice_id'], unique=False)

    op.create_table('delivery_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('notice_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('recipient', sa.Text(), nullable=False),
    sa.Column('started_at', ledger.coltypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', ledger.coltypes.UTCDateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=True),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('reply', sa.Text(), nullable=True),
    sa.Column('server_message_id', sa.String(length=400), nullable=True),
    sa.ForeignKeyConstraint(['notice_id'], ['notices.id'], name=op.f('fk_delivery_attempts_notice_id_notices')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_delivery_attempts')),
    sa.UniqueConstraint('notice_id', 'number', name=op.f('uq_delivery_attempts_notice_id'))
    )
    with op.batch_alter_table('delivery_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_delivery_attempts_notice_id'), ['notice_id'], unique=False)

    op.create_table('licences',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('holder_id', sa.Integer(), nullable=False),
    sa.Column('licensee', sa.String(length=300), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('recording_id', sa.Integer(), nullable=True),
    sa.Column('territories', sa.JSON(), nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=True),
    sa.Column('valid_until', sa.Date(), nullable=True),
    sa.Column('created_at', ledger.coltypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', ledger.coltypes.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['holder_id'], ['rights_holders.id'], name=op.f('fk_licences_holder_id_rights_holders')),
    sa.ForeignKeyConstraint(['recording_id'], ['recordings.id'], name=op.f('fk_licences_recording_id_recordings')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_licences'))
    )
    with op.batch_alter_table('licences', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_licences_holder_id'), ['holder_id'], unique=False)

    op.create_table('notice_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('notice_id', sa.Integer(), nullable=False),
    sa.Column('detection_id', sa.Integer(), nullable=False),
    sa.Column('capture_id', sa.Integer(), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('checked_at', ledger.coltypes.UTCDateTime(timezone=True), nullable=True),
    sa.Column('check_crawl_id', sa.Integer(), nullable=True),
    sa.Column('check_http_status', sa.Integer(), nullable=True),
    sa.Column('check_sha256', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['capture_id'], ['captures.id'], name=op.f('fk_notice_items_capture_id_captures')),
    sa.ForeignKeyConstraint(['check_crawl_id'], ['crawls.id'], name=op.f('fk_notice_items_check_crawl_id_crawls')),
    sa.ForeignKeyConstraint(['detection_id'], ['detections.id'], name=op.f('fk_notice_items_detection_id_detections')),
    sa.ForeignKeyConstraint(['notice_id'], ['notices.id'], name=op.f('fk_notice_items_notice_id_notices')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notice_items')),
    sa.UniqueConstraint('detection_id', name=op.f('uq_notice_items_detection_id'))
    )
    with op.batch_alter_table('notice_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notice_items_capture_id'), ['capture_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_notice_items_notice_id'), ['notice_id'], unique=False)

    with op.batch_alter_table('rights_holders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('signatory_name', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('signatory_title', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('notice_policy', sa.String(length=16), nullable=False,
                                      server_default='review'))

    with op.batch_alter_table('targets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notice_email', sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column('notice_form_url', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('jurisdiction', sa.String(length=8), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('targets', schema=None) as batch_op:
        batch_op.drop_column('jurisdiction')
        batch_op.drop_column('notice_form_url')
        batch_op.drop_column('notice_email')

    with op.batch_alter_table('rights_holders', schema=None) as batch_op:
        batch_op.drop_column('notice_policy')
        batch_op.drop_column('signatory_title')
        batch_op.drop_column('signatory_name')

    with op.batch_alter_table('notice_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notice_items_notice_id'))
        batch_op.drop_index(batch_op.f('ix_notice_items_capture_id'))

    op.drop_table('notice_items')
    with op.batch_alter_table('licences', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_licences_holder_id'))

    op.drop_table('licences')
    with op.batch_alter_table('delivery_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_delivery_attempts_notice_id'))

    op.drop_table('delivery_attempts')
    with op.batch_alter_table('counter_notices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_counter_notices_notice_id'))
        batch_op.drop_index(batch_op.f('ix_counter_notices_holder_id'))

    op.drop_table('counter_notices')
    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notices_target_id'))
        batch_op.drop_index(batch_op.f('ix_notices_status'))
        batch_op.drop_index(batch_op.f('ix_notices_send_after'))
        batch_op.drop_index(batch_op.f('ix_notices_recipient_key'))
        batch_op.drop_index(batch_op.f('ix_notices_recheck_at'))
        batch_op.drop_index(batch_op.f('ix_notices_next_attempt_at'))
        batch_op.drop_index(batch_op.f('ix_notices_holder_id'))

    op.drop_table('notices')
    with op.batch_alter_table('captures', schema=None) as batch_op:
        batch_op.drop_column('warc_record_id')
    with op.batch_alter_table('site_contacts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_site_contacts_target_id'))
        batch_op.drop_index(batch_op.f('ix_site_contacts_host'))
    op.drop_table('site_contacts')
    with op.batch_alter_table('url_checks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_url_checks_url_key'))
        batch_op.drop_index(batch_op.f('ix_url_checks_target_id'))
        batch_op.drop_index(batch_op.f('ix_url_checks_crawl_id'))
    op.drop_table('url_checks')
