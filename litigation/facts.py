"""What the ledger knows of one infringer for one rights-holder, gathered for scoring and for
the dossier: its works with their registrations, each detection, the notices and their outcomes,
counter-notices and copies put up again after a removal.

Read-only and scoped: every query is filtered by the holder, so nothing of another holder's
catalog, detections or notices can reach a case.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from ledger.models import (
    AuditEntry,
    Capture,
    CounterNotice,
    Detection,
    DetectionStatus,
    ItemStatus,
    Licence,
    Notice,
    NoticeItem,
    NoticeStatus,
    OwnershipConflict,
    Recording,
    SiteContact,
)
from litigation.linking import Sighting, site_host

REGISTERED = "registered"
PENDING = "pending"
UNREGISTERED = "unregistered"


@dataclass(frozen=True)
class Conflict:
    """An open ownership conflict: the same audio registered by another rights-holder."""

    territories: tuple[str, ...]  # what the other holder claims
    detail: str


@dataclass(frozen=True)
class WorkFacts:
    recording_id: int
    title: str
    artist: str | None
    isrc: str | None
    registration_number: str | None
    registration_date: date | None  # for a pending application: the day it was filed
    registration: str  # REGISTERED, PENDING or UNREGISTERED
    publication_date: date | None
    territories: tuple[str, ...]
    chain_of_title: str | None
    reference_audio: str | None  # the reference store's file, for pictures of the match
    conflicts: tuple[Conflict, ...]
    licences: tuple[str, ...]  # the holder's licences for it, described
    first_seen: datetime  # the earliest capture: the infringement began no later
    discovered: datetime  # the first detection
    last_seen: datetime
    detections: int


@dataclass(frozen=True)
class DetectionFacts:
    detection_id: int
    capture_id: int
    recording_id: int
    url: str
    page_url: str | None
    host: str
    fetched_at: datetime
    detected_at: datetime
    confidence: float
    query_start: float
    query_end: float
    ref_start: float
    speed: float
    pitch_semitones: float
    sha256: str
    warc_record_id: str | None
    has_warc: bool
    reverified: bool  # served again, unchanged, to a later look


@dataclass(frozen=True)
class ItemFacts:
    detection_id: int
    recording_id: int
    url: str
    status: str
    checked_at: datetime | None
    check_http_status: int | None


@dataclass(frozen=True)
class NoticeFacts:
    notice_id: int
    reference: str
    status: str
    jurisdiction: str
    recipient: str
    created_at: datetime
    sent_at: datetime | None
    deadline_at: datetime | None
    outcome_at: datetime | None
    items: tuple[ItemFacts, ...]
    subject: str | None = None
    body_text: str | None = None  # as sent
    body_html: str | None = None

    @property
    def kept_up(self) -> tuple[ItemFacts, ...]:
        """URLs still serving the same content when the notice's deadline had passed."""
        if self.status not in (NoticeStatus.IGNORED, NoticeStatus.PARTIALLY_REMOVED):
            return ()
        return tuple(i for i in self.items if i.status == ItemStatus.STILL_UP)

    @property
    def removed(self) -> tuple[ItemFacts, ...]:
        return tuple(i for i in self.items if i.status == ItemStatus.REMOVED)


@dataclass(frozen=True)
class CounterFacts:
    notice_id: int
    received_at: datetime
    sender: str | None
    rule: str
    counter_id: int = 0
    message: str = ""
    putback_earliest: date | None = None


@dataclass(frozen=True)
class Reupload:
    """A copy of a work found after an earlier copy of it on the same infringer was removed."""

    detection_id: int
    recording_id: int
    url: str
    fetched_at: datetime
    removed_url: str
    removed_at: datetime


@dataclass(frozen=True)
class CaseFacts:
    holder_id: int
    hosts: tuple[str, ...]
    works: tuple[WorkFacts, ...]
    detections: tuple[DetectionFacts, ...]
    notices: tuple[NoticeFacts, ...]
    counters: tuple[CounterFacts, ...]
    reuploads: tuple[Reupload, ...]


def holder_sightings(session: Session, holder_id: int) -> list[Sighting]:
    """Every detection of the holder that counts as evidence of infringement: confirmed ones
    (new, noticed) and those a counter-notice kept from a new notice; not those under review,
    rejected by a person, or licensed."""
    barred = select(AuditEntry.entity_id).where(
        AuditEntry.action == "detection.barred", AuditEntry.holder_id == holder_id)
    rows = session.execute(
        select(Detection.id, Detection.status, Capture.url, Capture.page_url, Capture.ip_address)
        .join(Capture, Capture.id == Detection.capture_id)
        .where(Detection.holder_id == holder_id)
        .order_by(Detection.id)).all()
    barred_ids = {int(value) for (value,) in session.execute(barred) if value is not None}
    sightings = []
    for detection_id, status, url, page_url, ip in rows:
        counts = status in (DetectionStatus.NEW, DetectionStatus.NOTICED) or (
            status == DetectionStatus.REJECTED and detection_id in barred_ids)
        media = site_host(url)
        if not counts or media is None:
            continue
        sightings.append(Sighting(detection_id=detection_id, page_host=site_host(page_url) or media,
                                  media_host=media, ip_address=ip, page_url=page_url))
    return sightings


def site_contacts(session: Session) -> list[tuple[str, str]]:
    """(host, e-mail) of the notice addresses sites publish (facts about sites, not holders)."""
    rows = session.execute(select(SiteContact.host, SiteContact.email)).all()
    return [(site_host(f"//{host}") or host, email) for host, email in rows]


def gather(session: Session, holder_id: int, hosts: Sequence[str],
           detection_ids: Sequence[int]) -> CaseFacts:
    detections = _detections(session, holder_id, detection_ids)
    notices = _notices(session, holder_id, [d.detection_id for d in detections])
    counters = tuple(
        CounterFacts(c.notice_id, c.received_at, c.sender, c.rule, c.id, c.message,
                     c.putback_earliest)
        for c in session.execute(select(CounterNotice).where(
            CounterNotice.holder_id == holder_id,
            CounterNotice.notice_id.in_([n.notice_id for n in notices]))
            .order_by(CounterNotice.received_at)).scalars())
    return CaseFacts(holder_id=holder_id, hosts=tuple(hosts),
                     works=_works(session, holder_id, detections), detections=detections,
                     notices=notices, counters=counters,
                     reuploads=_reuploads(detections, notices))


def _detections(session: Session, holder_id: int,
                detection_ids: Sequence[int]) -> tuple[DetectionFacts, ...]:
    rows = session.execute(
        select(Detection, Capture).join(Capture, Capture.id == Detection.capture_id)
        .where(Detection.holder_id == holder_id, Detection.id.in_(list(detection_ids)))
        .order_by(Capture.fetched_at, Detection.id)).all()
    confirmed = {detection_id for (detection_id,) in session.execute(
        select(NoticeItem.detection_id).where(
            NoticeItem.detection_id.in_(list(detection_ids)),
            NoticeItem.status == ItemStatus.STILL_UP))}
    # The latest capture of each URL with the same bytes: later than this one, it was served
    # again unchanged (one query for the whole case, not one per detection).
    urls = sorted({capture.url for _, capture in rows})
    latest = {(url, sha256): at for url, sha256, at in session.execute(
        select(Capture.url, Capture.sha256, func.max(Capture.fetched_at))
        .where(Capture.url.in_(urls)).group_by(Capture.url, Capture.sha256))} if urls else {}
    result = []
    for detection, capture in rows:
        last = latest.get((capture.url, capture.sha256))
        seen_again = last is not None and _utc(last) > capture.fetched_at
        result.append(DetectionFacts(
            detection_id=detection.id, capture_id=capture.id, recording_id=detection.recording_id,
            url=capture.url, page_url=capture.page_url,
            host=site_host(capture.page_url) or site_host(capture.url) or "",
            fetched_at=capture.fetched_at, detected_at=detection.detected_at,
            confidence=detection.confidence, query_start=detection.query_start,
            query_end=detection.query_end, ref_start=detection.ref_start, speed=detection.speed,
            pitch_semitones=detection.pitch_semitones, sha256=capture.sha256,
            warc_record_id=capture.warc_record_id, has_warc=bool(capture.warc_file),
            reverified=detection.id in confirmed or seen_again))
    return tuple(result)


def _utc(at: datetime) -> datetime:
    """An aggregate's value: SQLite hands MAX() back without the column type's conversion."""
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def registration_of(recording: Recording) -> str:
    if recording.registration_status == PENDING:
        return PENDING
    if recording.registration_status == REGISTERED or (
            recording.registration_number and recording.registration_date):
        return REGISTERED
    return UNREGISTERED


def _works(session: Session, holder_id: int,
           detections: Sequence[DetectionFacts]) -> tuple[WorkFacts, ...]:
    by_work: dict[int, list[DetectionFacts]] = {}
    for detection in detections:
        by_work.setdefault(detection.recording_id, []).append(detection)
    recordings = list(session.execute(select(Recording).where(
        Recording.holder_id == holder_id, Recording.id.in_(list(by_work)))
        .order_by(Recording.title, Recording.id)).scalars())
    conflicts = _conflicts(session, [r.id for r in recordings])
    licences = list(session.execute(select(Licence).where(
        Licence.holder_id == holder_id).order_by(Licence.id)).scalars())
    works = []
    for recording in recordings:
        seen = by_work[recording.id]
        works.append(WorkFacts(
            recording_id=recording.id, title=recording.title, artist=recording.artist,
            isrc=recording.isrc, registration_number=recording.registration_number,
            registration_date=recording.registration_date, registration=registration_of(recording),
            publication_date=recording.publication_date,
            territories=tuple(recording.territories or ()),
            chain_of_title=recording.chain_of_title,
            reference_audio=recording.reference_audio,
            conflicts=conflicts.get(recording.id, ()),
            licences=_licences(licences, recording.id),
            first_seen=min(d.fetched_at for d in seen),
            discovered=min(d.detected_at for d in seen),
            last_seen=max(d.fetched_at for d in seen), detections=len(seen)))
    return tuple(works)


def _licences(licences: Sequence[Licence], recording_id: int) -> tuple[str, ...]:
    """The holder's licences that cover this recording (its own, or the whole catalog's)."""
    described = []
    for licence in licences:
        if licence.recording_id not in (None, recording_id):
            continue
        scope = "this work" if licence.recording_id else "the whole catalog"
        dates = (f"{licence.valid_from or '...'} to {licence.valid_until or '...'}"
                 if licence.valid_from or licence.valid_until else "no end date")
        revoked = f", revoked {licence.revoked_at.date()}" if licence.revoked_at else ""
        described.append(f"{licence.licensee} ({licence.host}): {scope} in "
                         f"{', '.join(licence.territories or ['WORLD'])}, {dates}{revoked}")
    return tuple(described)


def _conflicts(session: Session,
               recording_ids: Sequence[int]) -> dict[int, tuple[Conflict, ...]]:
    """Open conflicts by recording: the same audio registered by another holder, described
    without naming that holder's catalog beyond the territories it claims."""
    if not recording_ids:
        return {}
    ids = list(recording_ids)
    found: dict[int, list[Conflict]] = {}
    for conflict in session.execute(select(OwnershipConflict).where(
            OwnershipConflict.status == "open",
            or_(OwnershipConflict.recording_id.in_(ids),
                OwnershipConflict.other_recording_id.in_(ids)))).scalars():
        for mine, other in ((conflict.recording_id, conflict.other_recording),
                            (conflict.other_recording_id, conflict.recording)):
            if mine not in ids:
                continue
            territories = tuple(other.territories or ["WORLD"])
            found.setdefault(mine, []).append(Conflict(
                territories, f"the same audio (similarity {conflict.similarity:.2f}) is "
                f"registered by another rights-holder for {', '.join(territories)}"))
    return {key: tuple(value) for key, value in found.items()}


def _notices(session: Session, holder_id: int,
             detection_ids: Sequence[int]) -> tuple[NoticeFacts, ...]:
    notice_ids = select(NoticeItem.notice_id).where(
        NoticeItem.detection_id.in_(list(detection_ids)))
    wanted = set(detection_ids)
    result = []
    for notice in session.execute(select(Notice).where(
            Notice.holder_id == holder_id, Notice.id.in_(notice_ids))
            .options(selectinload(Notice.items).selectinload(NoticeItem.detection))
            .order_by(Notice.created_at, Notice.id)).scalars():
        items = tuple(
            ItemFacts(detection_id=item.detection_id, recording_id=item.detection.recording_id,
                      url=item.url, status=item.status, checked_at=item.checked_at,
                      check_http_status=item.check_http_status)
            for item in notice.items if item.detection_id in wanted)
        result.append(NoticeFacts(
            notice_id=notice.id, reference=notice.reference, status=notice.status,
            jurisdiction=notice.jurisdiction,
            recipient=notice.recipient_email or notice.recipient_form_url or "",
            created_at=notice.created_at, sent_at=notice.sent_at,
            deadline_at=notice.deadline_at, outcome_at=notice.outcome_at, items=items,
            subject=notice.subject, body_text=notice.body_text, body_html=notice.body_html))
    return tuple(result)


def _reuploads(detections: Sequence[DetectionFacts],
               notices: Sequence[NoticeFacts]) -> tuple[Reupload, ...]:
    removals = [(item.recording_id, item.checked_at, item.url)
                for notice in notices for item in notice.removed if item.checked_at]
    found = []
    for detection in detections:
        earlier = [(at, url) for recording_id, at, url in removals
                   if recording_id == detection.recording_id and at < detection.fetched_at]
        if earlier:
            removed_at, removed_url = max(earlier)
            found.append(Reupload(detection.detection_id, detection.recording_id,
                                  detection.url, detection.fetched_at, removed_url, removed_at))
    return tuple(found)
