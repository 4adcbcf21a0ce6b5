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
    # Who signs its notices (17 U.S.C. 512(c)(3)(A)(i)): name and capacity; empty: unsigned
    # notices are refused before rendering.
    signatory_name: Mapped[str | None] = mapped_column(String(200))
    signatory_title: Mapped[str | None] = mapped_column(String(200))
    # "auto": notices for confident detections go out by rule; "review": a person approves each.
    notice_policy: Mapped[str] = mapped_column(String(16), default="review")

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
    # "registered", "pending" (application filed: 17 U.S.C. 411(a) bars suit in court, the
    # Copyright Claims Board takes it), or None: registered when number and date are known.
    registration_status: Mapped[str | None] = mapped_column(String(16))
    # How the holder came to own it (authors, assignments, agreements), for the dossier.
    chain_of_title: Mapped[str | None] = mapped_column(Text)
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
    # Takedown: the site's own notice address or form (from its config), and its jurisdiction.
    notice_email: Mapped[str | None] = mapped_column(String(320))
    notice_form_url: Mapped[str | None] = mapped_column(Text)
    jurisdiction: Mapped[str | None] = mapped_column(String(8))
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
    # The <title> of page_url as the site served it (anything: shown as text, never as HTML).
    page_title: Mapped[str | None] = mapped_column(Text)
    via: Mapped[str] = mapped_column(String(32))  # how it was found (monitor.crawl.discover.Via)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime())
    http_status: Mapped[int] = mapped_column(Integer)
    headers: Mapped[list[list[str]]] = mapped_column(JSON)  # response headers, in order
    content_type: Mapped[str | None] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    ip_address: Mapped[str | None] = mapped_column(String(64))
    warc_file: Mapped[str] = mapped_column(String(300))
    # WARC-Record-ID of the response record (cited in notices); None for captures before 0006.
    warc_record_id: Mapped[str | None] = mapped_column(String(100))
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
    LICENSED = "licensed"  # the site is allowlisted or holds a licence: no notice


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


# --- The takedown stage: licences, notices, their items, delivery attempts, counter-notices --


class UrlCheck(Base):
    """A URL looked at again on purpose (a notice's re-check): what it answered then, with the
    WARC record of the response as evidence; ``error`` when no answer came (refused, DNS,
    timeout). Takedown reads these to decide whether material was removed."""

    __tablename__ = "url_checks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    crawl_id: Mapped[int] = mapped_column(ForeignKey("crawls.id"), index=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("targets.id"), index=True)
    url: Mapped[str] = mapped_column(Text)
    url_key: Mapped[str] = mapped_column(String(64), index=True)  # SHA-256 of url
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime())
    http_status: Mapped[int | None] = mapped_column(Integer)
    sha256: Mapped[str | None] = mapped_column(String(64))  # of a 2xx body
    size: Mapped[int | None] = mapped_column(BigInteger)
    warc_file: Mapped[str | None] = mapped_column(String(300))
    warc_offset: Mapped[int | None] = mapped_column(BigInteger)
    warc_length: Mapped[int | None] = mapped_column(BigInteger)
    warc_record_id: Mapped[str | None] = mapped_column(String(100))
    error: Mapped[str | None] = mapped_column(Text)


class SiteContact(Base):
    """A notice address a site publishes (a mailto: link the crawler found beside words such as
    "DMCA", "copyright" or "abuse"): the second choice of recipient, after the target's own."""

    __tablename__ = "site_contacts"
    __table_args__ = (UniqueConstraint("host", "email"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("targets.id"), index=True)
    host: Mapped[str] = mapped_column(String(255), index=True)
    email: Mapped[str] = mapped_column(String(320))
    page_url: Mapped[str] = mapped_column(Text)
    context: Mapped[str] = mapped_column(Text)  # the link's text, as plain text
    found_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Licence(Base):
    """A holder's permission for a site: no notice to a licensee for the licensed recordings
    (all of the holder's when ``recording_id`` is None) in the licensed territories."""

    __tablename__ = "licences"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    holder_id: Mapped[int] = mapped_column(ForeignKey("rights_holders.id"), index=True)
    licensee: Mapped[str] = mapped_column(String(300))
    host: Mapped[str] = mapped_column(String(255))  # the site's host; subdomains included
    recording_id: Mapped[int | None] = mapped_column(ForeignKey("recordings.id"))
    territories: Mapped[list[str]] = mapped_column(JSON, default=list)  # ISO 3166 or ["WORLD"]
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class NoticeStatus:
    DRAFT = "draft"  # collecting detections for its recipient until send_after
    REVIEW = "review"  # waiting for a person: approve or reject (notices review)
    REJECTED = "rejected"  # a person decided not to send it (reason recorded)
    QUEUED = "queued"  # approved, in the outbox
    SENDING = "sending"  # an attempt is under way (leased); after a crash: in doubt
    SENT = "sent"  # the recipient's server accepted it
    UNCONFIRMED = "unconfirmed"  # an attempt may have been delivered: never sent again by itself
    FAILED = "failed"  # permanently refused, or out of attempts
    REMOVED = "removed"  # re-check: every URL gone
    PARTIALLY_REMOVED = "partially-removed"
    IGNORED = "ignored"  # re-check: still up past the deadline
    COUNTERED = "countered"  # a counter-notice was received

    SENT_STATES = frozenset({SENT, UNCONFIRMED})
    OUTCOMES = frozenset({REMOVED, PARTIALLY_REMOVED, IGNORED})


class Notice(Base):
    """A takedown notice from one holder to one recipient under one jurisdiction, covering one
    or more detections. Its text is rendered when it leaves draft and never changes after: what
    was sent is what is kept."""

    __tablename__ = "notices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Idempotency key: the e-mail's Message-ID and the form's Idempotency-Key on every attempt.
    reference: Mapped[str] = mapped_column(String(128), unique=True)
    holder_id: Mapped[int] = mapped_column(ForeignKey("rights_holders.id"), index=True)
    target_id: Mapped[int | None] = mapped_column(ForeignKey("targets.id"), index=True)
    jurisdiction: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(20), index=True)
    # The recipient and how it was found: "target" (config), "site" (published contact), "rdap".
    recipient_key: Mapped[str] = mapped_column(String(400), index=True)  # channel:address
    recipient_name: Mapped[str] = mapped_column(String(300))
    recipient_role: Mapped[str] = mapped_column(String(200))
    recipient_email: Mapped[str | None] = mapped_column(String(320))
    recipient_form_url: Mapped[str | None] = mapped_column(Text)
    recipient_source: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str | None] = mapped_column(Text)
    body_text: Mapped[str | None] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    # That authorisation and fair use were considered (Lenz v. Universal): by whom or which
    # rule, when, and on what grounds: {"by": "rule"|"person", "actor", "at", "grounds": [...]}.
    consideration: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    send_after: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)  # batch window end
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    # The outbox: attempts so far, when the next may start, and the lease of the one under way.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    message_id: Mapped[str | None] = mapped_column(String(400))
    last_error: Mapped[str | None] = mapped_column(Text)
    # Follow-up: when the URLs are re-checked, the deadline, the reminder, the outcome.
    recheck_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reminder_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    outcome_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    items: Mapped[list[NoticeItem]] = relationship(back_populates="notice",
                                                   order_by="NoticeItem.id")


class ItemStatus:
    LISTED = "listed"  # in the notice, not checked since
    REMOVED = "removed"  # the re-check found it gone (4xx/410, or other content)
    STILL_UP = "still-up"  # the re-check found the same content


class NoticeItem(Base):
    """One detection named in a notice: its URL is what the recipient must remove. A detection
    is in at most one notice."""

    __tablename__ = "notice_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id"), index=True)
    detection_id: Mapped[int] = mapped_column(ForeignKey("detections.id"), unique=True)
    capture_id: Mapped[int] = mapped_column(ForeignKey("captures.id"), index=True)
    url: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=ItemStatus.LISTED)
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The re-check's evidence: the capture (or refusal) row of the crawl that looked again.
    check_crawl_id: Mapped[int | None] = mapped_column(ForeignKey("crawls.id"))
    check_http_status: Mapped[int | None] = mapped_column(Integer)
    check_sha256: Mapped[str | None] = mapped_column(String(64))

    notice: Mapped[Notice] = relationship(back_populates="items")
    detection: Mapped[Detection] = relationship()


class DeliveryAttempt(Base):
    """One try at handing a notice over, written before the try starts (outcome None) and
    completed after it: an attempt left without an outcome is one a crash interrupted."""

    __tablename__ = "delivery_attempts"
    __table_args__ = (UniqueConstraint("notice_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # "notice" or "reminder"
    channel: Mapped[str] = mapped_column(String(8))  # "email" or "http"
    recipient: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # "accepted", "temporary", "permanent", or "in-doubt" (found unfinished after a crash).
    outcome: Mapped[str | None] = mapped_column(String(16))
    status_code: Mapped[int | None] = mapped_column(Integer)
    reply: Mapped[str | None] = mapped_column(Text)
    server_message_id: Mapped[str | None] = mapped_column(String(400))


class CounterNotice(Base):
    """A counter-notice against a notice: under the DMCA the material may be put back after 10
    to 14 business days unless the holder sues (17 U.S.C. 512(g)(2)(C)); under the PRC rule it
    is restored at once and the same work may not be noticed again on that ground."""

    __tablename__ = "counter_notices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id"), index=True)
    holder_id: Mapped[int] = mapped_column(ForeignKey("rights_holders.id"), index=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sender: Mapped[str | None] = mapped_column(String(400))
    message: Mapped[str] = mapped_column(Text)
    message_sha256: Mapped[str] = mapped_column(String(64))
    # DMCA: the put-back window (earliest, latest); the holder must file suit before the
    # earliest day to keep the material down ("sue or lose it").
    putback_earliest: Mapped[date | None] = mapped_column(Date)
    putback_latest: Mapped[date | None] = mapped_column(Date)
    rule: Mapped[str] = mapped_column(String(32))  # "dmca-512g", "prc-art16-17", "dsa-art20"


# --- The litigation stage: cases, their sites, notes, reminders and dossiers ------------------


class CaseStatus:
    CANDIDATE = "candidate"  # opened by the queue, nobody has looked yet
    REVIEW = "under-review"  # assigned to a person
    APPROVED = "approved"  # counsel may file
    FILED = "filed"
    DECLINED = "declined"  # reason recorded
    MERGED = "merged"  # its sites turned out to be one operator's: see ``merged_into_id``

    OPEN = frozenset({CANDIDATE, REVIEW, APPROVED})
    # Which state survives when two cases merge: the one furthest along.
    PRECEDENCE = (FILED, APPROVED, REVIEW, CANDIDATE, DECLINED)


class CaseTrack:
    COURT = "court"  # a registered work: suit in federal court
    CCB = "ccb"  # only pending applications: the Copyright Claims Board
    BARRED = "barred"  # a gate failed for every work; ``gates`` says which


class Case(Base):
    """One infringer (a site, or sites linked as one operator's) as one holder's lawsuit
    candidate. Its detections are the holder's detections on its hosts (``case_hosts``); the
    score, gates and damages are what the last scoring found, with every factor explained."""

    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    holder_id: Mapped[int] = mapped_column(ForeignKey("rights_holders.id"), index=True)
    name: Mapped[str] = mapped_column(String(300))  # the infringer's main host
    status: Mapped[str] = mapped_column(String(16), index=True)
    track: Mapped[str] = mapped_column(String(16))
    score: Mapped[float] = mapped_column(Float, index=True)
    # [{"factor", "label", "value", "weight", "contribution", "detail"}, ...]
    breakdown: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # [{"gate", "passed", "detail", "works": [...]}, ...]
    gates: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # {"low", "high", "willful_high", "currency", "basis", "assumptions": [...]}
    damages: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    works: Mapped[int] = mapped_column(Integer, default=0)
    detections: Mapped[int] = mapped_column(Integer, default=0)
    first_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The earliest day a work's claim runs out (three years from discovery, 17 U.S.C. 507(b)).
    limitation_deadline: Mapped[date | None] = mapped_column(Date, index=True)
    assignee: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    scored_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))

    hosts: Mapped[list[CaseHost]] = relationship(back_populates="case",
                                                 order_by="CaseHost.host")


class CaseHost(Base):
    """A host that belongs to a case, and why it was linked to the others."""

    __tablename__ = "case_hosts"
    __table_args__ = (UniqueConstraint("holder_id", "host"),)  # a host is in one case a holder

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    holder_id: Mapped[int] = mapped_column(ForeignKey("rights_holders.id"))
    host: Mapped[str] = mapped_column(String(255))
    # [{"reason": "same-ip"|"same-contact"|"shared-page", "with": host, "evidence": "..."}]
    links: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime())

    case: Mapped[Case] = relationship(back_populates="hosts")


class CaseNote(Base):
    __tablename__ = "case_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    author: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)


class CaseReminder(Base):
    """A limitation-deadline reminder, written once per case, deadline and lead time."""

    __tablename__ = "case_reminders"
    __table_args__ = (UniqueConstraint("case_id", "deadline", "days_before"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    deadline: Mapped[date] = mapped_column(Date)
    days_before: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Set once the reminder went out to the holder (e-mail); None: only in the queue.
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Dossier(Base):
    """One export of a case for counsel: where it went and the hash of its manifest."""

    __tablename__ = "dossiers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    holder_id: Mapped[int] = mapped_column(ForeignKey("rights_holders.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(200))
    path: Mapped[str] = mapped_column(Text)
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    files: Mapped[int] = mapped_column(Integer)
    bytes: Mapped[int] = mapped_column(BigInteger)
    timestamped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # the TSA's genTime


# --- The daemon: how each stage's scheduled runs went -------------------------------------


class StageRun(Base):
    """The daemon's record of one scheduled job (a stage, or one target's crawl): its last run,
    its failures in a row and when it may run again (backoff), for ``copyguard status``."""

    __tablename__ = "stage_runs"

    job: Mapped[str] = mapped_column(String(200), primary_key=True)  # "identify", "crawl:blog"
    stage: Mapped[str] = mapped_column(String(32))
    runs: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    failures_in_a_row: Mapped[int] = mapped_column(Integer, default=0)
    last_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_seconds: Mapped[float | None] = mapped_column(Float)
    last_status: Mapped[str | None] = mapped_column(String(16))  # "ok", "failed", "running"
    last_summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    last_error: Mapped[str | None] = mapped_column(Text)
    retry_after: Mapped[datetime | None] = mapped_column(UTCDateTime())  # backoff: not before
    worker: Mapped[str | None] = mapped_column(String(200))


class StageRequestStatus:
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class StageRequest(Base):
    """A scheduled run of a stage that the daemon left to ``copyguard worker`` processes
    (``daemon.worker_stages``): the leader queues it when it is due, one worker claims it
    (``FOR UPDATE SKIP LOCKED`` on PostgreSQL) under a lease it renews while it works, so a
    worker that dies leaves the run to another once the lease runs out."""

    __tablename__ = "stage_requests"
    __table_args__ = (Index("ix_stage_requests_stage_status", "stage", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job: Mapped[str] = mapped_column(String(200))  # as in stage_runs: "takedown", "crawl:blog"
    stage: Mapped[str] = mapped_column(String(32))
    target: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # claims, a dead worker's included
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error: Mapped[str | None] = mapped_column(Text)


class Role:
    """What a console or API account may do. ``holder`` and ``legal`` accounts belong to one
    rights-holder and see only its rows; ``admin`` and ``operator`` accounts see every holder's."""

    ADMIN = "admin"  # everything, accounts included
    OPERATOR = "operator"  # targets, the daemon's state, every holder's pipeline
    HOLDER = "holder"  # its catalog, detections and notices (review, approve)
    LEGAL = "legal"  # its cases: review, notes, dossiers; its notices read-only

    ALL = (ADMIN, OPERATOR, HOLDER, LEGAL)
    SCOPED = (HOLDER, LEGAL)


class User(Base):
    """A console or API account. The password is kept as a scrypt hash (``ledger.accounts``)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    holder_id: Mapped[int | None] = mapped_column(ForeignKey("rights_holders.id"))
    password_hash: Mapped[str | None] = mapped_column(String(300))  # None: API keys only
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ApiKey(Base):
    """A revocable API key of one user. Only its SHA-256 is stored; ``prefix`` (the first
    characters, also shown to people) finds the row without a scan."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WebSession(Base):
    """A browser session: the cookie carries a random token, the row its SHA-256, the CSRF token
    forms must echo, and when it ends, so logging out (or disabling the user) ends it at once."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


# --- Catalog imports: uploads decoded and registered in the background -------------------------


class CatalogImportStatus:
    QUEUED = "queued"  # received in full, waiting for the server's importer
    RUNNING = "running"  # being decoded and fingerprinted (files_done of files_total)
    DONE = "done"  # registered: ``items`` says what became of each file
    FAILED = "failed"  # nothing registered: ``error`` says why

    FINISHED = (DONE, FAILED)


class CatalogImport(Base):
    """An upload of recordings that the web server decodes, fingerprints and registers after the
    request that brought it has answered, so a browser can watch its progress. The files wait in
    ``<home>/uploads/<directory>`` until it finishes; a server killed on the way leaves the row
    running under a lease that another (or the restarted) server takes over."""

    __tablename__ = "catalog_imports"
    __table_args__ = (Index("ix_catalog_imports_holder_created", "holder_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    holder_id: Mapped[int] = mapped_column(ForeignKey("rights_holders.id"))
    actor: Mapped[str] = mapped_column(String(200))  # who uploaded, as the audit log names them
    status: Mapped[str] = mapped_column(String(16))
    directory: Mapped[str] = mapped_column(String(200))  # under <home>/uploads
    files: Mapped[list[dict[str, str]]] = mapped_column(JSON)  # [{"name", "stored"}]
    fields: Mapped[dict[str, Any]] = mapped_column(JSON)  # the form's metadata fields
    files_done: Mapped[int] = mapped_column(Integer, default=0)
    current_file: Mapped[str | None] = mapped_column(String(300))
    items: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)  # the outcome per file
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
