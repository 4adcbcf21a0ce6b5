"""The shared search index: fingerprint postings queried in the database.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25

Used by ``[matching] index = "database"`` (PostgreSQL only, see fingerprints.sql_index); the
tables are created on SQLite too, where they stay empty, so both databases have one schema.
The btrees on hash include every other column (PostgreSQL; a plain index on SQLite), so that
lookups are index-only scans.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "index_meta",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("scheme", sa.String(length=200), nullable=False),
        sa.Column("quad_scheme", sa.String(length=200), nullable=False),
        sa.Column("frame_seconds", sa.Float(), nullable=False),
        sa.Column("bin_hz", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_index_meta")),
    )
    op.create_table(
        "index_recordings",
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("recording_id", sa.Integer(), nullable=False),
        sa.Column("duration", sa.Float(), nullable=False),
        sa.Column("pairs", sa.Integer(), nullable=False),
        sa.Column("quads", sa.Integer(), nullable=False),
        sa.Column("peak_times", sa.LargeBinary(), nullable=False),
        sa.Column("peak_bins", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("slot", name=op.f("pk_index_recordings")),
        sa.UniqueConstraint("recording_id", name=op.f("uq_index_recordings_recording_id")),
    )
    op.create_table(
        "index_pairs",
        sa.Column("hash", sa.Integer(), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("frame", sa.Integer(), nullable=False),
    )
    with op.batch_alter_table("index_pairs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_index_pairs_hash"), ["hash"], unique=False,
                              postgresql_include=["slot", "frame"])
        batch_op.create_index(batch_op.f("ix_index_pairs_slot"), ["slot"], unique=False)

    op.create_table(
        "index_quads",
        sa.Column("hash", sa.Integer(), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("frame", sa.Integer(), nullable=False),
        sa.Column("bin", sa.SmallInteger(), nullable=False),
        sa.Column("span", sa.SmallInteger(), nullable=False),
    )
    with op.batch_alter_table("index_quads", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_index_quads_hash"), ["hash"], unique=False,
                              postgresql_include=["slot", "frame", "bin", "span"])
        batch_op.create_index(batch_op.f("ix_index_quads_slot"), ["slot"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("index_quads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_index_quads_slot"))
        batch_op.drop_index(batch_op.f("ix_index_quads_hash"))
    op.drop_table("index_quads")
    with op.batch_alter_table("index_pairs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_index_pairs_slot"))
        batch_op.drop_index(batch_op.f("ix_index_pairs_hash"))
    op.drop_table("index_pairs")
    op.drop_table("index_recordings")
    op.drop_table("index_meta")
