"""The ledger's tables: SQLAlchemy 2 declarative models.

Conventions every later stage follows (captures, detections, notices, cases):
- integer surrogate keys; timezone-aware UTC timestamps (``UTCDateTime``);
- every row that belongs to one rights-holder carries ``holder_id``, so each query can be scoped;
- state lives in a ``status`` column changed only through service functions that also append to
  the audit log (``ledger.audit``) in the same transaction;
- work queues are rows with a ``status`` plus a lease (``claimed_by``, ``lease_until``) so any stage
  can be resumed after a crash and claimed with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from ledger.coltypes import UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class RightsHolder(Base):
    __tablename__ = "rights_holders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    email: Mapped[str] = mapped_column(String(320))
    address: Mapped[str | None] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    recordings: Mapped[list[Recording]] = relationship(back_populates="holder")


class RecordingStatus:
    ACTIVE = "active"
    REMOVED = "removed"


class Recording(Base):
    """One catalog recording of one rights-holder."""

    __tablename__ = "recordings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    holder_id: Mapped[int] = mapped_column(ForeignKey("rights_holders.id"), index=True)
    title: Mapped[str] = mapped_column(String(500))
    artist: Mapped[str | None] = mapped_column(String(500))
    isrc: Mapped[str | None] = mapped_column(String(12), index=True)
    registration_number: Mapped[str | None] = mapped_column(String(64))
    registration_date: Mapped[date | None] = mapped_column(Date)
    publication_date: Mapped[date | None] = mapped_column(Date)
    # ISO 3166-1 alpha-2 codes, or ["WORLD"].
    territories: Mapped[list[str]] = mapped_column(JSON, default=list)
    duration: Mapped[float] = mapped_column(Float)
    source_name: Mapped[str] = mapped_column(String(1000))
    source_sha256: Mapped[str] = mapped_column(String(64), index=True)
    # The decoded reference audio in the reference store (fingerprints.reference), if kept.
    reference_audio: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=RecordingStatus.ACTIVE, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    holder: Mapped[RightsHolder] = relationship(back_populates="recordings")
    fingerprints: Mapped[list[RecordingFingerprint]] = relationship(
        back_populates="recording", cascade="all, delete-orphan")


class RecordingFingerprint(Base):
    """A recording's fingerprint of one kind, kept in the ledger so the search index is a cache
    that can always be rebuilt from it (after a crash, or in a shared engine)."""

    __tablename__ = "recording_fingerprints"
    __table_args__ = (UniqueConstraint("recording_id", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))  # "chromaprint", "landmarks-v1", ...
    # The extractor's parameters; a fingerprint of an older scheme is computed again.
    scheme: Mapped[str | None] = mapped_column(String(200))
    data: Mapped[bytes] = mapped_column(LargeBinary)

    recording: Mapped[Recording] = relationship(back_populates="fingerprints")


class OwnershipConflict(Base):
    """The same audio registered by two different rights-holders; both can see it."""

    __tablename__ = "ownership_conflicts"
    __table_args__ = (UniqueConstraint("recording_id", "other_recording_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id"), index=True)
    other_recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id"), index=True)
    similarity: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), default="open")
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime())

    recording: Mapped[Recording] = relationship(foreign_keys=[recording_id])
    other_recording: Mapped[Recording] = relationship(foreign_keys=[other_recording_id])


class AuditEntry(Base):
    """One entry of the append-only, hash-chained audit log (see ``ledger.audit``)."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100), index=True)
    entity_type: Mapped[str] = mapped_column(String(50))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    holder_id: Mapped[int | None] = mapped_column(Integer, index=True)
    # Canonical JSON text (sorted keys), hashed exactly as stored.
    details: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditHead(Base):
    """The chain's newest entry; the row writers lock to append, and the witness that catches
    entries deleted from the end of the chain."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


# The shared search index (fingerprints.sql_index, ``[matching] index = "database"``): a cache
# derived from recording_fingerprints, rebuilt from them whenever needed. Plain tables rather
# than mapped classes: the posting tables have no key of their own (one would add 8 bytes and an
# index entry to each of millions of rows) and are read and written with COPY and raw SQL.
index_meta = Table(
    "index_meta", Base.metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # always 1: one index
    Column("scheme", String(200), nullable=False),  # pair landmark scheme
    Column("quad_scheme", String(200), nullable=False),  # peak-group scheme
    Column("frame_seconds", Float, nullable=False),
    Column("bin_hz", Float, nullable=False),
)
index_recordings = Table(
    "index_recordings", Base.metadata,
    Column("slot", Integer, primary_key=True),  # new for every add: cached slot data never changes
    Column("recording_id", Integer, nullable=False, unique=True),
    Column("duration", Float, nullable=False),
    Column("pairs", Integer, nullable=False),
    Column("quads", Integer, nullable=False),
    Column("peak_times", LargeBinary, nullable=False),  # little-endian uint32 frames
    Column("peak_bins", LargeBinary, nullable=False),  # little-endian uint16, 1/16 bins
)
# The btree on hash carries every column (INCLUDE), so lookups scan the index alone; the one on
# slot serves removals.
index_pairs = Table(
    "index_pairs", Base.metadata,
    Column("hash", Integer, nullable=False),  # the uint32 hash's bits
    Column("slot", Integer, nullable=False, index=True),
    Column("frame", Integer, nullable=False),  # of the anchor peak
    Index("ix_index_pairs_hash", "hash", postgresql_include=["slot", "frame"]),
)
index_quads = Table(
    "index_quads", Base.metadata,
    Column("hash", Integer, nullable=False),
    Column("slot", Integer, nullable=False, index=True),
    Column("frame", Integer, nullable=False),  # of the anchor peak
    Column("bin", SmallInteger, nullable=False),  # of the anchor peak, in 1/16 bins
    Column("span", SmallInteger, nullable=False),  # frames from the anchor to the last peak
    Index("ix_index_quads_hash", "hash", postgresql_include=["slot", "frame", "bin", "span"]),
)
