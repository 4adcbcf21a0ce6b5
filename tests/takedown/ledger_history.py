"""Realistic ledger rows for the takedown tests: holders, recordings, targets, crawls, captures,
detections, site contacts and licences, shaped as the earlier stages write them (their audit
entries are left out: the takedown tests check only the entries takedown appends).

:class:`LedgerHistory` adds one row at a time with sensible defaults (each test states only
what it is about); :func:`build_story` writes a whole history of two holders and three sites.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TypeVar
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from ledger.clock import Clock
from ledger.db import Ledger
from ledger.models import (
    Capture,
    Crawl,
    CrawlStatus,
    Detection,
    DetectionStatus,
    IdentifyStatus,
    Licence,
    Notice,
    Recording,
    RightsHolder,
    SiteContact,
    Target,
)

_Row = TypeVar("_Row")
ADDRESS = "12 Sample Street\nLondon N1 9XX\nUnited Kingdom"


class LedgerHistory:
    """Adds rows to ``session`` (flushed, so each has its id) at the clock's time."""

    def __init__(self, session: Session, clock: Clock) -> None:
        self.session, self.clock = session, clock
        self._crawls: dict[int, Crawl] = {}

    def _add(self, row: _Row) -> _Row:
        self.session.add(row)
        self.session.flush()
        return row

    def holder(self, name: str = "Example Records Ltd", *, policy: str = "auto",
               email: str | None = None, address: str | None = ADDRESS,
               phone: str | None = "+44 20 7946 0000", signatory: str | None = "Jane Roe",
               title: str | None = "Head of Legal Affairs") -> RightsHolder:
        slug = name.lower().split()[0]
        return self._add(RightsHolder(
            name=name, email=email or f"legal@{slug}.example", address=address, phone=phone,
            created_at=self.clock.now(), signatory_name=signatory, signatory_title=title,
            notice_policy=policy))

    def recording(self, holder: RightsHolder, title: str, *, artist: str | None = None,
                  duration: float = 190.0, territories: Sequence[str] = ("WORLD",),
                  isrc: str | None = None, registration_number: str | None = "SR0000912345",
                  registration_date: date | None = date(2024, 3, 1)) -> Recording:
        digest = hashlib.sha256(f"{holder.name}/{title}".encode()).hexdigest()
        return self._add(Recording(
            holder_id=holder.id, title=title, artist=artist, isrc=isrc,
            registration_number=registration_number, registration_date=registration_date,
            territories=list(territories), duration=duration, source_name=f"{title}.flac",
            source_sha256=digest, created_at=self.clock.now()))

    def target(self, name: str, *, host: str | None = None, notice_email: str | None = None,
               notice_form_url: str | None = None, jurisdiction: str | None = None) -> Target:
        host = host or f"{name}.example"
        return self._add(Target(
            name=name, start_urls=[f"https://{host}/"], allowed_domains=[host], follow=[],
            deny=[], depth=2, max_pages=100, schedule="every 6h", delay_seconds=1.0,
            concurrency=2, obey_robots=True, allow_private=False, notice_email=notice_email,
            notice_form_url=notice_form_url, jurisdiction=jurisdiction, source="config",
            created_at=self.clock.now()))

    def _crawl(self, target: Target) -> Crawl:
        crawl = self._crawls.get(target.id)
        if crawl is None:
            crawl = self._crawls[target.id] = self._add(Crawl(
                target_id=target.id, status=CrawlStatus.FINISHED, started_at=self.clock.now(),
                finished_at=self.clock.now(), stats={"pages": 10, "captures": 3}))
        return crawl

    def capture(self, target: Target, url: str, *, ip: str | None = "192.0.2.10",
                page_url: str | None = None, fetched_at: datetime | None = None) -> Capture:
        record = uuid.uuid5(uuid.NAMESPACE_URL, url)
        return self._add(Capture(
            crawl_id=self._crawl(target).id, target_id=target.id, url=url,
            page_url=page_url or f"https://{urlsplit(url).hostname}/posts/1", via="link",
            fetched_at=fetched_at or self.clock.now(), http_status=200,
            headers=[["Content-Type", "audio/mpeg"]], content_type="audio/mpeg", size=3_000_000,
            sha256=hashlib.sha256(url.encode()).hexdigest(), ip_address=ip,
            warc_file="captures-20261102-00000.warc.gz", warc_record_id=f"<urn:uuid:{record}>",
            warc_offset=0, warc_length=3_001_000, identify_status=IdentifyStatus.DONE,
            identified_at=self.clock.now(), audio_seconds=190.0))

    def detection(self, capture: Capture, recording: Recording, *, confidence: float = 0.97,
                  span: tuple[float, float] = (0.0, 185.5), ref_start: float = 0.0,
                  speed: float = 1.0, pitch_semitones: float = 0.0,
                  status: str | None = None) -> Detection:
        # The identify stage's own rule for the initial status (review_below = 0.85).
        initial = status or (DetectionStatus.NEW if confidence >= 0.85 else DetectionStatus.REVIEW)
        return self._add(Detection(
            capture_id=capture.id, recording_id=recording.id, holder_id=recording.holder_id,
            target_id=capture.target_id, confidence=confidence, score=int(confidence * 400),
            query_start=span[0], query_end=span[1], ref_start=ref_start, speed=speed,
            pitch_semitones=pitch_semitones, status=initial, detected_at=self.clock.now()))

    def site_contact(self, target: Target, host: str, email: str) -> SiteContact:
        return self._add(SiteContact(
            target_id=target.id, host=host, email=email, page_url=f"https://{host}/dmca",
            context="DMCA / copyright complaints", found_at=self.clock.now()))

    def licence(self, holder: RightsHolder, host: str, *, recording: Recording | None = None,
                territories: Sequence[str] = ("WORLD",), valid_from: date | None = None,
                valid_until: date | None = None, licensee: str = "Licensee GmbH") -> Licence:
        return self._add(Licence(
            holder_id=holder.id, licensee=licensee, host=host,
            recording_id=recording.id if recording else None, territories=list(territories),
            valid_from=valid_from, valid_until=valid_until, created_at=self.clock.now()))


def detached_notice(ledger: Ledger, notice_id: int) -> Notice:
    """The notice as it stands now, detached from its session (its columns stay readable)."""
    with ledger.read() as session:
        notice = session.get(Notice, notice_id)
        assert notice is not None
        session.expunge(notice)
        return notice


@dataclass(frozen=True)
class Story:
    """The ids of :func:`build_story`'s rows that tests talk about."""

    example: int  # Example Records Ltd: notice_policy "auto", complete data
    mara: int  # Mara Jones Music: notice_policy "review", no phone number
    harbour: int  # Example's "Harbour Lights", 190 s, worldwide rights
    northern: int  # Example's "Northern Line", 200 s, rights in US and GB
    tide: int  # Mara's "Slow Tide", 240 s
    blog: int  # target with its own notice address (DMCA)
    mirror: int  # target without one; its host publishes a contact (DSA)
    radio: int  # target without either: only RDAP knows whom to tell
    full_copy: int  # Harbour Lights on the blog: whole, confident
    second_copy: int  # Northern Line on the blog: whole, confident
    excerpt: int  # Harbour Lights on the blog: a 12 s excerpt
    doubtful: int  # Northern Line on the mirror: confidence 0.7 (status REVIEW)
    mara_copy: int  # Slow Tide on the blog
    radio_copy: int  # Harbour Lights on the radio site


def build_story(session: Session, clock: Clock) -> Story:
    h = LedgerHistory(session, clock)
    example = h.holder()
    mara = h.holder("Mara Jones Music", policy="review", phone=None, signatory="Mara Jones",
                    title="Owner")
    harbour = h.recording(example, "Harbour Lights", artist="The Example Quartet",
                          isrc="GBXYZ2400001")
    northern = h.recording(example, "Northern Line", artist="Mara Jones", duration=200.0,
                           territories=("US", "GB"), isrc="GBXYZ2400002",
                           registration_number=None)
    tide = h.recording(mara, "Slow Tide", duration=240.0, registration_number="SR0000912399")
    blog = h.target("pirate-blog", host="files.pirate-blog.example",
                    notice_email="dmca@pirate-blog.example")
    mirror = h.target("eu-mirror", host="eu-mirror.example", jurisdiction="dsa")
    h.site_contact(mirror, "eu-mirror.example", "copyright@eu-mirror.example")
    radio = h.target("radio", host="radio.example")
    on_blog = "https://files.pirate-blog.example/audio/"
    full = h.detection(h.capture(blog, on_blog + "001.mp3"), harbour)
    second = h.detection(h.capture(blog, on_blog + "002.mp3"), northern, span=(3.0, 201.0))
    excerpt = h.detection(h.capture(blog, on_blog + "003.mp3"), harbour, span=(40.0, 52.0),
                          ref_start=61.0)
    doubtful = h.detection(h.capture(mirror, "https://eu-mirror.example/m/northern.mp3",
                                     ip="198.51.100.7"),
                           northern, confidence=0.7, speed=1.05, pitch_semitones=0.84,
                           span=(0.0, 180.0))
    mara_copy = h.detection(h.capture(blog, on_blog + "004.mp3"), tide, span=(0.0, 238.0))
    radio_copy = h.detection(h.capture(radio, "https://radio.example/stream/7.mp3",
                                       ip="192.0.2.10"), harbour)
    return Story(example=example.id, mara=mara.id, harbour=harbour.id, northern=northern.id,
                 tide=tide.id, blog=blog.id, mirror=mirror.id, radio=radio.id,
                 full_copy=full.id, second_copy=second.id, excerpt=excerpt.id,
                 doubtful=doubtful.id, mara_copy=mara_copy.id, radio_copy=radio_copy.id)
