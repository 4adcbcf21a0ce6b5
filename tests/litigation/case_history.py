"""A realistic history for the litigation tests: several infringers of two holders, copies put
up again after removal, notices ignored and honoured, a counter-notice, works registered in
time, late, pending or not at all, and one whose ownership is disputed.

Rows are written as the earlier stages write them (``tests.takedown.ledger_history`` for the
monitor's rows, :func:`notice` here for the takedown stage's), at times moved by the clock.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.orm import Session

from ledger.clock import FixedClock
from ledger.models import (
    Capture,
    CounterNotice,
    Detection,
    DetectionStatus,
    ItemStatus,
    Notice,
    NoticeItem,
    NoticeStatus,
    OwnershipConflict,
    Recording,
)
from tests.takedown.ledger_history import LedgerHistory


def notice(session: Session, clock: FixedClock, detections: Sequence[Detection], *,
           status: str, item_status: str = ItemStatus.LISTED,
           checked_after: timedelta = timedelta(days=15)) -> Notice:
    """A DMCA notice sent now for ``detections``, its items judged ``checked_after`` later."""
    first = detections[0]
    sent = clock.now()
    row = Notice(
        reference=f"CG-{uuid.uuid4().hex[:12]}", holder_id=first.holder_id,
        target_id=first.target_id, jurisdiction="dmca", status=status,
        recipient_key=f"email:dmca@{first.target_id}.example", recipient_name="Abuse desk",
        recipient_role="designated agent", recipient_email=f"dmca@{first.target_id}.example",
        recipient_source="target", subject="DMCA notice", body_text="...", created_at=sent,
        send_after=sent, attempts=1, sent_at=sent, deadline_at=sent + timedelta(days=14),
        outcome_at=sent + checked_after if status in NoticeStatus.OUTCOMES else None)
    session.add(row)
    session.flush()
    for detection in detections:
        capture = session.get(Capture, detection.capture_id)
        assert capture is not None
        detection.status = DetectionStatus.NOTICED
        session.add(NoticeItem(
            notice_id=row.id, detection_id=detection.id, capture_id=capture.id, url=capture.url,
            status=item_status,
            checked_at=None if item_status == ItemStatus.LISTED else sent + checked_after,
            check_http_status={ItemStatus.REMOVED: 404, ItemStatus.STILL_UP: 200}.get(
                item_status)))
    session.flush()
    return row


def counter_notice(session: Session, clock: FixedClock, notice_row: Notice) -> CounterNotice:
    message = "I have a good faith belief the material was removed by mistake."
    row = CounterNotice(
        notice_id=notice_row.id, holder_id=notice_row.holder_id, received_at=clock.now(),
        sender="operator@pirate-blog.example", message=message,
        message_sha256=hashlib.sha256(message.encode()).hexdigest(),
        putback_earliest=clock.now().date() + timedelta(days=14),
        putback_latest=clock.now().date() + timedelta(days=20), rule="dmca-512g")
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True)
class CaseStory:
    example: int
    mara: int
    harbour: int  # registered 2024-03-01: before every infringement (statutory damages)
    northern: int  # registered 2026-06-01, after the infringement began, unpublished: late
    tide: int  # application pending: Copyright Claims Board only
    unregistered: int  # no registration
    disputed: int  # registered, but another holder claims the same audio in the US
    mara_song: int  # Mara's registered work, found on the pirate blog too
    ignored_notice: int
    honoured_notice: int
    reupload: int  # the detection of Harbour Lights put up again on the blog


def build_case_story(session: Session, clock: FixedClock) -> CaseStory:
    """Starts at the clock's time minus 240 days and leaves the clock where it found it."""
    end = clock.now()
    clock.advance(-timedelta(days=240))
    h = LedgerHistory(session, clock)
    example = h.holder()
    mara = h.holder("Mara Jones Music", signatory="Mara Jones", title="Owner")
    other = h.holder("Other Label", signatory="Sam Poe", title="Counsel")
    harbour = h.recording(example, "Harbour Lights", registration_date=date(2024, 3, 1))
    northern = h.recording(example, "Northern Line", registration_number="SR0000999001",
                           registration_date=date(2026, 6, 1))
    tide = h.recording(example, "Slow Tide", registration_number="1-14000000001",
                       registration_date=date(2026, 4, 1))
    tide.registration_status = "pending"
    unregistered = h.recording(example, "Demo Tape", registration_number=None,
                               registration_date=None)
    disputed = h.recording(example, "Contested Air")
    theirs = h.recording(other, "Contested Air (claimed)", territories=("US",))
    session.add(OwnershipConflict(recording_id=theirs.id, other_recording_id=disputed.id,
                                  similarity=0.93, status="open", detected_at=clock.now()))
    mara_song = h.recording(mara, "Mara's Song")

    blog = h.target("pirate-blog", host="pirate-blog.example")
    honest = h.target("honest-host", host="honest-host.example")
    ccb = h.target("small-site", host="small-site.example")
    old = h.target("tape-trader", host="tape-trader.example")
    disputed_site = h.target("contest", host="contest.example")
    stale = h.target("old-archive", host="old-archive.example")

    def found(target_id: object, url: str, recording: Recording, *, page: str,
              ip: str) -> Detection:
        target = {t.id: t for t in (blog, honest, ccb, old, disputed_site, stale)}[target_id]
        capture = h.capture(target, url, ip=ip, page_url=page)
        return h.detection(capture, recording)

    # An archive where Harbour Lights was found once, more than three years ago.
    start = clock.now()
    clock.advance(datetime(2022, 6, 1, 12, tzinfo=UTC) - start)
    found(stale.id, "https://old-archive.example/harbour.mp3", harbour,
          page="https://old-archive.example/", ip="198.51.100.60")
    clock.advance(start - clock.now())

    # The blog: pages on pirate-blog.example, audio on files.pirate-blog.example, and a mirror
    # served from the same address. Two works, the notice ignored, a copy re-uploaded.
    first = found(blog.id, "https://files.pirate-blog.example/a/1.mp3", harbour,
                  page="https://pirate-blog.example/post/1", ip="203.0.113.5")
    second = found(blog.id, "https://files.pirate-blog.example/a/2.mp3", northern,
                   page="https://pirate-blog.example/post/2", ip="203.0.113.5")
    mirror = found(blog.id, "https://mirror-pb.example/2.mp3", northern,
                   page="https://mirror-pb.example/list", ip="203.0.113.5")
    mara_copy = found(blog.id, "https://files.pirate-blog.example/a/9.mp3", mara_song,
                      page="https://pirate-blog.example/post/9", ip="203.0.113.5")
    clock.advance(timedelta(days=10))
    ignored = notice(session, clock, [first, second, mirror], status=NoticeStatus.IGNORED,
                     item_status=ItemStatus.STILL_UP)
    counter_notice(session, clock, ignored)
    clock.advance(timedelta(days=20))
    third = found(blog.id, "https://files.pirate-blog.example/a/3.mp3", harbour,
                  page="https://pirate-blog.example/post/3", ip="203.0.113.5")
    removed_third = notice(session, clock, [third], status=NoticeStatus.REMOVED,
                           item_status=ItemStatus.REMOVED, checked_after=timedelta(days=3))
    del removed_third
    clock.advance(timedelta(days=40))
    again = found(blog.id, "https://files.pirate-blog.example/a/3b.mp3", harbour,
                  page="https://pirate-blog.example/post/3", ip="203.0.113.5")
    notice(session, clock, [mara_copy], status=NoticeStatus.SENT)

    # An honest host: the same two works, taken down at once.
    clock.advance(timedelta(days=5))
    h1 = found(honest.id, "https://honest-host.example/u/1.mp3", harbour,
               page="https://honest-host.example/u/1", ip="198.51.100.20")
    h2 = found(honest.id, "https://honest-host.example/u/2.mp3", northern,
               page="https://honest-host.example/u/2", ip="198.51.100.20")
    honoured = notice(session, clock, [h1, h2], status=NoticeStatus.REMOVED,
                      item_status=ItemStatus.REMOVED, checked_after=timedelta(days=2))
    # A small site with only the pending work; a tape trader with only the unregistered one;
    # a site with only the disputed one.
    found(ccb.id, "https://small-site.example/tide.mp3", tide,
          page="https://small-site.example/", ip="198.51.100.30")
    found(old.id, "https://tape-trader.example/demo.mp3", unregistered,
          page="https://tape-trader.example/", ip="198.51.100.40")
    found(disputed_site.id, "https://contest.example/air.mp3", disputed,
          page="https://contest.example/", ip="198.51.100.50")
    clock.advance(end - clock.now())
    return CaseStory(example=example.id, mara=mara.id, harbour=harbour.id,
                     northern=northern.id, tide=tide.id, unregistered=unregistered.id,
                     disputed=disputed.id, mara_song=mara_song.id, ignored_notice=ignored.id,
                     honoured_notice=honoured.id, reupload=again.id)
