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
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
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


# --- The monitor stage: targets, crawls, URL state, captures, detections ----------------------


class Target(Base):
    """A site to monitor. Operator-level (one crawl serves every holder's catalog); removed
    targets are kept (``removed_at``) so their captures and detections keep their origin."""

    __tablename__ = "targets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    start_urls: Mapped[list[str]] = mapped_column(JSON)
    allowed_domains: Mapped[list[str]] = mapped_column(JSON)
    # Regular expressions over absolute URLs: pages to follow / never to follow.
    follow: Mapped[list[str]] = mapped_column(JSON, default=list)
    deny: Mapped[list[str]] = mapped_column(JSON, default=list)
    depth: Mapped[int] = mapped_column(Integer)
    max_pages: Mapped[int] = mapped_column(Integer)
    schedule: Mapped[str] = mapped_column(String(100))  # "every 6h" or a 5-field cron line
    delay_seconds: Mapped[float] = mapped_column(Float)
    concurrency: Mapped[int] = mapped_column(Integer)
    obey_robots: Mapped[bool] = mapped_column(Boolean)
    # Lets this target's own hosts (start URLs) be private or loopback addresses; nothing else.
    allow_private: Mapped[bool] = mapped_column(Boolean)
    # "config" (copyguard.toml, re-synced at start) or "cli" (copyguard targets add / the API).
    source: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class CrawlStatus:
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class Crawl(Base):
    """One pass over one target."""

    __tablename__ = "crawls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("targets.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Counters: pages, audio_found, captures, refused, errors, not_modified, ...
    stats: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)

    target: Mapped[Target] = relationship()


class UrlState(Base):
    """What the crawler knows of one URL of one target across runs: for conditional requests
    (ETag, Last-Modified) and the revisit policy, not a duplicate filter."""

    __tablename__ = "url_state"
    __table_args__ = (UniqueConstraint("target_id", "url_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("targets.id"))
    url_key: Mapped[str] = mapped_column(String(64))  # SHA-256 of the canonical URL
    url: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))  # "page" or "media"
    etag: Mapped[str | None] = mapped_column(String(500))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    sha256: Mapped[str | None] = mapped_column(String(64))
    http_status: Mapped[int | None] = mapped_column(Integer)
    last_fetched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    next_visit_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    # For a page: what it linked to when last parsed ([url, via, media] each), followed again
    # when the server answers 304 Not Modified.
    links: Mapped[list[list[Any]] | None] = mapped_column(JSON)


class IdentifyStatus:
    PENDING = "pending"
    DONE = "done"  # identified: detections (possibly none) written
    FAILED = "failed"  # could not be decoded; ``error`` says why
    NOT_AUDIO = "not-audio"  # the bytes were not audio after all


class Capture(Base):
    """One audio resource fetched from the web, with the page it was found on and the WARC
    record proving what was served. The identify stage claims pending captures with a lease."""

    __tablename__ = "captures"
    __table_args__ = (UniqueConstraint("crawl_id", "url"),)  # a crawl keeps a URL once

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    crawl_id: Mapped[int] = mapped_column(ForeignKey("crawls.id"), index=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("targets.id"), index=True)
    url: Mapped[str] = mapped_column(Text)
    page_url: Mapped[str | None] = mapped_column(Text)
    via: Mapped[str] = mapped_column(String(32))  # how it was found (monitor.crawl.discover.Via)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime())
    http_status: Mapped[int] = mapped_column(Integer)
    headers: Mapped[list[list[str]]] = mapped_column(JSON)  # response headers, in order
    content_type: Mapped[str | None] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    ip_address: Mapped[str | None] = mapped_column(String(64))
    warc_file: Mapped[str] = mapped_column(String(300))
    warc_offset: Mapped[int] = mapped_column(BigInteger)
    warc_length: Mapped[int] = mapped_column(BigInteger)
    page_warc_file: Mapped[str | None] = mapped_column(String(300))
    page_warc_offset: Mapped[int | None] = mapped_column(BigInteger)
    page_warc_length: Mapped[int | None] = mapped_column(BigInteger)
    identify_status: Mapped[str] = mapped_column(String(16), default=IdentifyStatus.PENDING,
                                                 index=True)
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    identified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    audio_seconds: Mapped[float | None] = mapped_column(Float)
    # Wall seconds its worker spent decoding and matching it; None when it took over the result
    # of identical bytes.
    identify_seconds: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)

    target: Mapped[Target] = relationship()
    crawl: Mapped[Crawl] = relationship()


class DetectionStatus:
    NEW = "new"  # ready for the takedown stage
    REVIEW = "review"  # under the review threshold: a person decides
    REJECTED = "rejected"
    NOTICED = "noticed"  # taken up by a notice


class Detection(Base):
    """A capture identified as a catalog recording."""

    __tablename__ = "detections"
    __table_args__ = (UniqueConstraint("capture_id", "recording_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    capture_id: Mapped[int] = mapped_column(ForeignKey("captures.id"), index=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id"), index=True)
    holder_id: Mapped[int] = mapped_column(ForeignKey("rights_holders.id"), index=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("targets.id"), index=True)
    confidence: Mapped[float] = mapped_column(Float)
    score: Mapped[int] = mapped_column(Integer)
    query_start: Mapped[float] = mapped_column(Float)
    query_end: Mapped[float] = mapped_column(Float)
    ref_start: Mapped[float] = mapped_column(Float)
    speed: Mapped[float] = mapped_column(Float)
    pitch_semitones: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), index=True)
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime())

    capture: Mapped[Capture] = relationship()
    recording: Mapped[Recording] = relationship()
