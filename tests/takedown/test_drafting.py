"""Drafting: detections batched into notices per holder, recipient, jurisdiction and window,
never twice; finalising renders, queues or sends to review, and keeps an incomplete notice as a
DRAFT that names the missing element."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from sqlalchemy import func, select

from ledger.audit import verify_chain
from ledger.clock import FixedClock
from ledger.db import Ledger
from ledger.models import (
    AuditEntry,
    Detection,
    DetectionStatus,
    Notice,
    NoticeItem,
    NoticeStatus,
    RightsHolder,
    Target,
)
from takedown.drafting import draft, finalise
from takedown.policy import DraftingRules
from takedown.recipients import RecipientFinder
from takedown.render import NoticeRenderer
from tests.takedown.ledger_history import LedgerHistory, build_story

RULES = DraftingRules(batch_window=timedelta(hours=1))


def _renderers(_holder_id: int) -> NoticeRenderer:
    return NoticeRenderer()


def _notices(ledger: Ledger) -> list[tuple[int, str, str, list[int]]]:
    """(holder id, jurisdiction, recipient key, detection ids) of every notice, by id."""
    with ledger.read() as session:
        return [(n.holder_id, n.jurisdiction, n.recipient_key,
                 [item.detection_id for item in n.items])
                for n in session.execute(select(Notice).order_by(Notice.id)).scalars()]


def test_detections_for_one_recipient_within_the_window_share_a_notice(
        ledger: Ledger, clock: FixedClock) -> None:
    with ledger.write() as session:
        h = LedgerHistory(session, clock)
        holder = h.holder()
        song = h.recording(holder, "Harbour Lights")
        blog = h.target("blog", notice_email="dmca@blog.example")
        first = h.detection(h.capture(blog, "https://blog.example/1.mp3"), song).id
    draft(ledger, RULES, RecipientFinder(), actor="test")
    clock.advance(timedelta(minutes=40))
    with ledger.write() as session:
        h = LedgerHistory(session, clock)
        blog_row = session.get(Target, blog.id)
        assert blog_row is not None
        second = h.detection(h.capture(blog_row, "https://blog.example/2.mp3"), song).id
    draft(ledger, RULES, RecipientFinder(), actor="test")
    clock.advance(timedelta(minutes=30))  # the first notice's window has closed
    with ledger.write() as session:
        h = LedgerHistory(session, clock)
        blog_row = session.get(Target, blog.id)
        assert blog_row is not None
        third = h.detection(h.capture(blog_row, "https://blog.example/3.mp3"), song).id
    report = draft(ledger, RULES, RecipientFinder(), actor="test")

    key = "email:dmca@blog.example"
    assert _notices(ledger) == [(holder.id, "dmca", key, [first, second]),
                                (holder.id, "dmca", key, [third])]
    assert len(report.created) == 1


def test_holders_and_jurisdictions_get_notices_of_their_own(ledger: Ledger,
                                                            clock: FixedClock) -> None:
    with ledger.write() as session:
        h = LedgerHistory(session, clock)
        example, mara = h.holder(), h.holder("Mara Jones Music")
        harbour, tide = h.recording(example, "Harbour Lights"), h.recording(mara, "Slow Tide")
        # One operator runs both sites and takes notices at one address.
        us = h.target("blog", notice_email="legal@operator.example")
        eu = h.target("blog-eu", notice_email="Legal@Operator.example", jurisdiction="dsa")
        a = h.detection(h.capture(us, "https://blog.example/1.mp3"), harbour).id
        b = h.detection(h.capture(us, "https://blog.example/2.mp3"), tide).id
        c = h.detection(h.capture(eu, "https://blog-eu.example/1.mp3"), harbour).id
        d = h.detection(h.capture(us, "https://blog.example/3.mp3"), harbour).id

    draft(ledger, RULES, RecipientFinder(), actor="test")

    key = "email:legal@operator.example"
    assert _notices(ledger) == [(example.id, "dmca", key, [a, d]), (mara.id, "dmca", key, [b]),
                                (example.id, "dsa", key, [c])]


def test_a_detection_is_never_in_two_notices(ledger: Ledger, clock: FixedClock) -> None:
    with ledger.write() as session:
        build_story(session, clock)
    first = draft(ledger, RULES, RecipientFinder(), actor="test")
    clock.advance(timedelta(hours=2))  # every window closed: a new notice would be opened
    second = draft(ledger, RULES, RecipientFinder(), actor="test")
    finalise(ledger, RULES, _renderers, actor="test")
    third = draft(ledger, RULES, RecipientFinder(), actor="test")

    assert len(first.noticed) == 5
    assert second.noticed == [] and third.noticed == []
    with ledger.read() as session:
        items = session.execute(select(func.count(NoticeItem.id))).scalar_one()
        distinct = session.execute(
            select(func.count(func.distinct(NoticeItem.detection_id)))).scalar_one()
        assert items == distinct == 5


def test_realistic_history_drafts_and_finalises(ledger: Ledger, clock: FixedClock) -> None:
    with ledger.write() as session:
        story = build_story(session, clock)

    drafted = draft(ledger, RULES, RecipientFinder(), actor="test")

    assert [s.host for s in drafted.no_recipient] == ["radio.example"]  # RDAP is off here
    by_key = {(holder, key): ids for holder, _, key, ids in _notices(ledger)}
    assert by_key == {
        (story.example, "email:dmca@pirate-blog.example"):
            [story.full_copy, story.second_copy, story.excerpt],
        (story.example, "email:copyright@eu-mirror.example"): [story.doubtful],
        (story.mara, "email:dmca@pirate-blog.example"): [story.mara_copy]}
    assert finalise(ledger, RULES, _renderers, actor="test").review == []  # windows still open

    clock.advance(timedelta(hours=1))
    report = finalise(ledger, RULES, _renderers, actor="test")

    reasons = {notice_id: reasons for notice_id, reasons in report.review}
    with ledger.read() as session:  # read's rollback expires the rows: assert inside
        notices = {(n.holder_id, n.jurisdiction): n
                   for n in session.execute(select(Notice)).scalars()}
        blog, mirror = notices[story.example, "dmca"], notices[story.example, "dsa"]
        assert [r.split(": ", 1)[1] for r in reasons[blog.id]] == [
            "12.0 s of 'Harbour Lights' (under 30 s): possible fair use"]
        assert sorted(r.split(": ", 1)[-1] for r in reasons[mirror.id]) == [
            "confidence 0.70 is below 0.85",
            "the holder's rights in 'Northern Line' cover GB, US, not the territory of a dsa "
            "notice (the EU)"]
        assert blog.subject is not None and blog.reference in blog.subject
        assert blog.body_text is not None
        assert "https://files.pirate-blog.example/audio/003.mp3" in blog.body_text
        mara = notices[story.mara, "dmca"]
        assert mara.status == NoticeStatus.DRAFT  # no phone number: see the test below
        assert report.failed == [(mara.id, mara.last_error)]


def test_notice_reference_is_unique_and_fit_for_a_message_id(ledger: Ledger,
                                                             clock: FixedClock) -> None:
    with ledger.write() as session:
        build_story(session, clock)
    draft(ledger, RULES, RecipientFinder(), actor="test")
    with ledger.read() as session:
        references = session.execute(select(Notice.reference)).scalars().all()
    assert len(set(references)) == len(references) == 3
    assert all(re.fullmatch(r"CG-(DMCA|DSA)-20261102-[0-9a-f]{12}", r) for r in references)


def test_finalise_renders_and_queues_after_the_window(ledger: Ledger,
                                                      clock: FixedClock) -> None:
    with ledger.write() as session:
        h = LedgerHistory(session, clock)
        song = h.recording(h.holder(), "Harbour Lights", isrc="GBXYZ2400001")
        blog = h.target("blog", notice_email="dmca@blog.example")
        detection = h.detection(h.capture(blog, "https://blog.example/1.mp3"), song)
    draft(ledger, RULES, RecipientFinder(), actor="test")
    clock.advance(timedelta(minutes=59))
    assert finalise(ledger, RULES, _renderers, actor="test").queued == []

    clock.advance(timedelta(minutes=1))
    report = finalise(ledger, RULES, _renderers, actor="rule:finalise")

    with ledger.read() as session:
        notice = session.execute(select(Notice)).scalar_one()
        assert report.queued == [notice.id]
        assert notice.status == NoticeStatus.QUEUED
        assert notice.next_attempt_at == clock.now()
        assert notice.subject is not None and notice.subject.startswith(
            "DMCA Notification of Claimed Infringement - Example Records Ltd - 1 item")
        assert notice.body_text and "https://blog.example/1.mp3" in notice.body_text
        assert notice.body_html and "GBXYZ2400001" in notice.body_html
        assert notice.consideration is not None and notice.consideration["by"] == "rule"
        status = session.get(Detection, detection.id)
        assert status is not None and status.status == DetectionStatus.NOTICED
        actions = session.execute(select(AuditEntry.action).order_by(AuditEntry.seq)).scalars()
        assert list(actions) == ["notice.drafted", "detection.noticed", "notice.queued"]
        assert verify_chain(session).ok


def test_holder_without_phone_keeps_its_dmca_notice_in_draft(ledger: Ledger,
                                                             clock: FixedClock) -> None:
    with ledger.write() as session:
        h = LedgerHistory(session, clock)
        holder = h.holder(phone=None)
        song = h.recording(holder, "Harbour Lights")
        blog = h.target("blog", notice_email="dmca@blog.example")
        h.detection(h.capture(blog, "https://blog.example/1.mp3"), song)
    draft(ledger, RULES, RecipientFinder(), actor="test")
    clock.advance(timedelta(hours=1))

    first = finalise(ledger, RULES, _renderers, actor="test")
    again = finalise(ledger, RULES, _renderers, actor="test")

    [(notice_id, error)] = first.failed
    assert "§512(c)(3)(A)(iv) contact information: complaining_party.phone is empty" in error
    assert again.failed == first.failed
    with ledger.write() as session:
        notice = session.get(Notice, notice_id)
        assert notice is not None
        assert (notice.status, notice.last_error, notice.subject) == (
            NoticeStatus.DRAFT, error, None)
        failures = session.execute(select(AuditEntry.details).where(
            AuditEntry.action == "notice.render_failed")).scalars().all()
        assert [json.loads(d)["error"] for d in failures] == [error]  # once, not every run
        row = session.get(RightsHolder, holder.id)
        assert row is not None
        row.phone = "+44 20 7946 0000"

    fixed = finalise(ledger, RULES, _renderers, actor="test")

    assert fixed.queued == [notice_id]
    with ledger.read() as session:
        notice = session.get(Notice, notice_id)
        assert notice is not None and notice.last_error is None


def test_licence_granted_during_the_window_withdraws_the_item(ledger: Ledger,
                                                              clock: FixedClock) -> None:
    with ledger.write() as session:
        h = LedgerHistory(session, clock)
        holder = h.holder()
        song = h.recording(holder, "Harbour Lights")
        blog = h.target("blog", notice_email="dmca@blog.example")
        detection = h.detection(h.capture(blog, "https://blog.example/1.mp3"), song)
    draft(ledger, RULES, RecipientFinder(), actor="test")
    with ledger.write() as session:
        h = LedgerHistory(session, clock)
        holder_row = session.get(RightsHolder, holder.id)
        assert holder_row is not None
        h.licence(holder_row, "blog.example")
    clock.advance(timedelta(hours=1))

    report = finalise(ledger, RULES, _renderers, actor="test")

    with ledger.read() as session:
        notice = session.execute(select(Notice)).scalar_one()
        assert report.withdrawn == [notice.id]
        assert notice.status == NoticeStatus.REJECTED and notice.items == []
        row = session.get(Detection, detection.id)
        assert row is not None and row.status == DetectionStatus.LICENSED
