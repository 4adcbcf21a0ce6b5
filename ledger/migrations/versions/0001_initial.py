"""catalog, holders and audit log

Revision ID: 0001
Revises:
Create Date: 2026-11-24

The audit log is made append-only by triggers on both databases.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ledger.coltypes

revision: str = "0001"
down_revision: str | None = None
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", ledger.coltypes.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("entity_type", sa.String(length=50), nullable=False),
        sa.Column("entity_id", sa.String(length=64), nullable=True),
        sa.Column("holder_id", sa.Integer(), nullable=True),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_log")),
        sa.UniqueConstraint("hash", name=op.f("uq_audit_log_hash")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_log_action"), ["action"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_log_holder_id"), ["holder_id"], unique=False)

    op.create_table(
        "rights_holders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("phone", sa.String(length=64), nullable=True),
        sa.Column("created_at", ledger.coltypes.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rights_holders")),
        sa.UniqueConstraint("name", name=op.f("uq_rights_holders_name")),
    )
    op.create_table(
        "recordings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("holder_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("artist", sa.String(length=500), nullable=True),
        sa.Column("isrc", sa.String(length=12), nullable=True),
        sa.Column("registration_number", sa.String(length=64), nullable=True),
        sa.Column("registration_date", sa.Date(), nullable=True),
        sa.Column("publication_date", sa.Date(), nullable=True),
        sa.Column("territories", sa.JSON(), nullable=False),
        sa.Column("duration", sa.Float(), nullable=False),
        sa.Column("source_name", sa.String(length=1000), nullable=False),
        sa.Column("source_sha256", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", ledger.coltypes.UTCDateTime(timezone=True), nullable=False),
        sa.Column("removed_at", ledger.coltypes.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["holder_id"],
            ["rights_holders.id"],
            name=op.f("fk_recordings_holder_id_rights_holders"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recordings")),
    )
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recordings_holder_id"), ["holder_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_recordings_isrc"), ["isrc"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_recordings_source_sha256"), ["source_sha256"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_recordings_status"), ["status"], unique=False)

    op.create_table(
        "ownership_conflicts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recording_id", sa.Integer(), nullable=False),
        sa.Column("other_recording_id", sa.Integer(), nullable=False),
        sa.Column("similarity", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("detected_at", ledger.coltypes.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["other_recording_id"],
            ["recordings.id"],
            name=op.f("fk_ownership_conflicts_other_recording_id_recordings"),
        ),
        sa.ForeignKeyConstraint(
            ["recording_id"],
            ["recordings.id"],
            name=op.f("fk_ownership_conflicts_recording_id_recordings"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ownership_conflicts")),
        sa.UniqueConstraint(
            "recording_id", "other_recording_id", name=op.f("uq_ownership_conflicts_recording_id")
        ),
    )
    with op.batch_alter_table("ownership_conflicts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ownership_conflicts_other_recording_id"),
            ["other_recording_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_ownership_conflicts_recording_id"), ["recording_id"], unique=False
        )

    op.create_table(
        "recording_fingerprints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recording_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["recording_id"],
            ["recordings.id"],
            name=op.f("fk_recording_fingerprints_recording_id_recordings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recording_fingerprints")),
        sa.UniqueConstraint(
            "recording_id", "kind", name=op.f("uq_recording_fingerprints_recording_id")
        ),
    )

    _append_only_triggers()
    # The head row exists from the start: appenders lock it, so none can race to create it.
    op.execute(f"INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '{'0' * 64}')")


_SQLITE_TRIGGERS = [
    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END",
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END",
]
_PG_TRIGGERS = [
    "CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'audit log is append-only'; END $$",
    "CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
]


def _append_only_triggers() -> None:
    dialect = op.get_bind().dialect.name
    for statement in {"sqlite": _SQLITE_TRIGGERS, "postgresql": _PG_TRIGGERS}.get(dialect, []):
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_change ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    op.drop_table("recording_fingerprints")
    with op.batch_alter_table("ownership_conflicts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ownership_conflicts_recording_id"))
        batch_op.drop_index(batch_op.f("ix_ownership_conflicts_other_recording_id"))

    op.drop_table("ownership_conflicts")
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recordings_status"))
        batch_op.drop_index(batch_op.f("ix_recordings_source_sha256"))
        batch_op.drop_index(batch_op.f("ix_recordings_isrc"))
        batch_op.drop_index(batch_op.f("ix_recordings_holder_id"))

    op.drop_table("recordings")
    op.drop_table("rights_holders")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_holder_id"))
        batch_op.drop_index(batch_op.f("ix_audit_log_action"))

    op.drop_table("audit_log")
    op.drop_table("audit_head")
