"""Sent notices followed up: re-check verdicts, counter-notices and exports, on both databases."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from ledger import audit
from ledger.clock import FixedClock
from ledger.db import Ledger
from ledger.errors import ConflictError, NotFoundError
from ledger.models import (
    AuditEntry,
    Capture,
    DeliveryAttempt,
    DetectionStatus,
    ItemStatus,
    Notice,
    NoticeItem,
    NoticeStatus,
    UrlCheck,
)
from takedown import export
from takedown.counter import record_counter_notice, renotice_barred
from takedown.followup import (
    FollowUpReport,
    FollowUpRules,
    apply_rechecks,
    due_rechecks,
    url_key,
)
from tests.takedown.ledger_history import LedgerHistory

RULES = FollowUpRules(recheck_after=timedelta(days=2))


def _sent_notice(ledger: Ledger, clock: FixedClock, urls: list[str], *,
                 jurisdiction: str = "dmca") -> tuple[int, dict[str, str]]:
    """A notice sent now, deadline in 14 days, re-check due now; and each URL's captured hash."""
    with ledger.write() as session:
        history = LedgerHistory(session, clock)
        holder = history.holder()
        recording = history.recording(holder, "Harbour Lights", isrc="GBXYZ2400001")
        target = history.target("pirate", host="files.pirate.example")
        notice = Notice(reference=f"CG-TEST-{len(urls)}-{jurisdiction}", holder_id=holder.id,
                        target_id=target.id, jurisdiction=jurisdiction,
                        status=NoticeStatus.SENT, recipient_key="email:abuse@host.example",
                        recipient_name="Host abuse desk", recipient_role="abuse contact",
                        recipient_email="abuse@host.example", recipient_source="rdap",
                        subject="DMCA notice", body_text="...", created_at=clock.now(),
                        send_after=clock.now(), attempts=1, sent_at=clock.now(),
                        recheck_at=clock.now(), deadline_at=clock.now() + timedelta(days=14))
        session.add(notice)
        session.flush()
        hashes = {}
        for url in urls:
            capture = history.capture(target, url)
            detection = history.detection(capture, recording, status=DetectionStatus.NOTICED)
            session.add(NoticeItem(notice_id=notice.id, detection_id=detection.id,
                                   capture_id=capture.id, url=url))
            hashes[url] = capture.sha256
        return notice.id, hashes


def _check(ledger: Ledger, clock: FixedClock, url: str, status: int | None,
           sha256: str | None = None) -> None:
    with ledger.write() as session:
        capture = session.execute(select(Capture).where(Capture.url == url)).scalar_one()
        session.add(UrlCheck(crawl_id=capture.crawl_id, target_id=capture.target_id, url=url,
                             url_key=url_key(url), checked_at=clock.now(), http_status=status,
                             sha256=sha256, error=None if status else "ConnectionRefused"))


def _apply(ledger: Ledger, clock: FixedClock, since: datetime) -> FollowUpReport:
    with ledger.write() as session:
        return apply_rechecks(session, clock, RULES, checked_since=since, actor="test")


@dataclass(frozen=True)
class View:
    status: str
    recheck_at: datetime | None
    item_statuses: list[str]
    item_checks: list[int | None]


def _notice(ledger: Ledger, notice_id: int) -> View:
    with ledger.read() as session:
        notice = session.get(Notice, notice_id)
        assert notice is not None
        return View(notice.status, notice.recheck_at, [i.status for i in notice.items],
                    [i.check_http_status for i in notice.items])


A, B = "https://files.pirate.example/a.mp3", "https://files.pirate.example/b.mp3"


def test_due_rechecks_name_the_urls_by_target(ledger: Ledger, clock: FixedClock) -> None:
    _sent_notice(ledger, clock, [A, B])
    with ledger.read() as session:
        due = due_rechecks(session, clock.now())
        assert list(due.values()) == [[A, B]]
        assert due_rechecks(session, clock.now() - timedelta(seconds=1)) == {}


def test_all_gone_is_removed_with_the_checks_in_the_audit_log(ledger: Ledger,
                                                              clock: FixedClock) -> None:
    notice_id, _ = _sent_notice(ledger, clock, [A, B])
    since = clock.now()
    _check(ledger, clock, A, 404)
    _check(ledger, clock, B, 200, "f" * 64)  # other bytes there now
    report = _apply(ledger, clock, since)
    assert report.outcomes == {NoticeStatus.REMOVED: 1}
    notice = _notice(ledger, notice_id)
    assert notice.status == NoticeStatus.REMOVED and notice.recheck_at is None
    assert notice.item_statuses == [ItemStatus.REMOVED, ItemStatus.REMOVED]
    assert notice.item_checks == [404, 200]
    with ledger.read() as session:
        entry = session.execute(select(AuditEntry).where(
            AuditEntry.action == "notice.removed")).scalar_one()
        details = json.loads(entry.details)
        assert [u["verdict"] for u in details["urls"]] == ["removed", "removed"]
        assert audit.verify_chain(session).ok


def test_still_up_before_the_deadline_is_looked_at_again_then_ignored(
        ledger: Ledger, clock: FixedClock) -> None:
    notice_id, hashes = _sent_notice(ledger, clock, [A])
    since = clock.now()
    _check(ledger, clock, A, 200, hashes[A])
    report = _apply(ledger, clock, since)
    assert report.still_pending == 1
    notice = _notice(ledger, notice_id)
    assert notice.status == NoticeStatus.SENT
    assert notice.recheck_at == clock.now() + timedelta(days=2)

    clock.advance(timedelta(days=15))  # past the deadline, still serving the same bytes
    since = clock.now()
    _check(ledger, clock, A, 200, hashes[A])
    _apply(ledger, clock, since)
    assert _notice(ledger, notice_id).status == NoticeStatus.IGNORED


def test_some_gone_past_the_deadline_is_partially_removed(ledger: Ledger,
                                                          clock: FixedClock) -> None:
    notice_id, hashes = _sent_notice(ledger, clock, [A, B])
    clock.advance(timedelta(days=15))
    since = clock.now()
    _check(ledger, clock, A, 410)
    _check(ledger, clock, B, 200, hashes[B])
    _apply(ledger, clock, since)
    assert _notice(ledger, notice_id).status == NoticeStatus.PARTIALLY_REMOVED


def test_no_answer_proves_nothing_even_past_the_deadline(ledger: Ledger,
                                                         clock: FixedClock) -> None:
    notice_id, _ = _sent_notice(ledger, clock, [A])
    clock.advance(timedelta(days=15))
    since = clock.now()
    _check(ledger, clock, A, None)  # connection refused
    report = _apply(ledger, clock, since)
    assert report.inconclusive_urls == 1
    notice = _notice(ledger, notice_id)
    assert notice.status == NoticeStatus.SENT and notice.item_statuses == [ItemStatus.LISTED]
    # a check older than this re-check's start is not used either
    _apply(ledger, clock, clock.now() + timedelta(seconds=1))
    assert _notice(ledger, notice_id).status == NoticeStatus.SENT


def test_dmca_counter_notice_sets_the_putback_window(ledger: Ledger, clock: FixedClock) -> None:
    notice_id, _ = _sent_notice(ledger, clock, [A])  # clock: Monday 2026-11-02
    with ledger.write() as session:
        counter = record_counter_notice(session, clock, notice_id, "I have a licence.",
                                        actor="legal@example", sender="uploader@example")
        assert counter.rule == "dmca-512g"
        assert (counter.putback_earliest, counter.putback_latest) == (date(2026, 11, 16),
                                                                       date(2026, 11, 20))
    assert _notice(ledger, notice_id).status == NoticeStatus.COUNTERED
    with ledger.read() as session:
        entry = session.execute(select(AuditEntry).where(
            AuditEntry.action == "notice.countered")).scalar_one()
        assert json.loads(entry.details)["sue_before"] == "2026-11-15"


def test_counter_notice_rules_refuse_what_cannot_be(ledger: Ledger, clock: FixedClock) -> None:
    notice_id, _ = _sent_notice(ledger, clock, [A])
    with ledger.write() as session:
        with pytest.raises(NotFoundError):
            record_counter_notice(session, clock, notice_id, "x", actor="t",
                                  holder_id=notice_id + 999)
        with pytest.raises(ConflictError, match="empty"):
            record_counter_notice(session, clock, notice_id, "  ", actor="t")
        session.get(Notice, notice_id).status = NoticeStatus.QUEUED  # type: ignore[union-attr]
        with pytest.raises(ConflictError, match="only a sent notice"):
            record_counter_notice(session, clock, notice_id, "no", actor="t")


def test_prc_counter_notice_bars_a_new_notice_of_that_work_there(ledger: Ledger,
                                                                  clock: FixedClock) -> None:
    notice_id, _ = _sent_notice(ledger, clock, [A], jurisdiction="prc")
    with ledger.write() as session:
        counter = record_counter_notice(session, clock, notice_id, "我们有授权。", actor="t")
        assert counter.rule == "prc-art16-17" and counter.putback_earliest is None
        notice = session.get(Notice, notice_id)
        assert notice is not None
        recording_id = notice.items[0].detection.recording_id
        assert renotice_barred(session, notice.holder_id, recording_id, A)
        assert not renotice_barred(session, notice.holder_id, recording_id, B)


def test_lumen_export_carries_entities_by_role_and_works_with_urls(
        ledger: Ledger, clock: FixedClock) -> None:
    notice_id, _ = _sent_notice(ledger, clock, [A, B])
    with ledger.read() as session:
        [record] = export.lumen_records(session)
        json.dumps(record)  # serialisable as it stands
        assert record["type"] == "DMCA" and record["jurisdictions"] == ["US"]
        assert record["action_taken"] == "Unspecified"
        assert [e["role"] for e in record["entities"]] == ["principal", "sender", "recipient",
                                                          "target"]
        [work] = record["works"]
        assert work["description"] == "Harbour Lights" and work["isrc"] == "GBXYZ2400001"
        assert work["infringing_urls"] == [{"url": A}, {"url": B}]
        holder_id = session.get(Notice, notice_id).holder_id  # type: ignore[union-attr]
        assert export.lumen_records(session, holder_id=holder_id + 1) == []
        assert export.url_list(export.url_rows(session)) == f"{A}\n{B}\n"


def _next_attempt_at(ledger: Ledger, notice_id: int) -> datetime | None:
    with ledger.read() as session:
        notice = session.get(Notice, notice_id)
        assert notice is not None
        return notice.next_attempt_at


def test_still_up_before_the_deadline_marks_one_reminder_due_when_asked(
        ledger: Ledger, clock: FixedClock) -> None:
    notice_id, hashes = _sent_notice(ledger, clock, [A])
    reminding = FollowUpRules(recheck_after=timedelta(days=2), send_reminder=True)
    assert not RULES.send_reminder  # off unless the caller passes [takedown] send_reminder
    since = clock.now()
    _check(ledger, clock, A, 200, hashes[A])
    with ledger.write() as session:
        report = apply_rechecks(session, clock, reminding, checked_since=since, actor="test")
    assert report.reminders_due == 1 and _next_attempt_at(ledger, notice_id) == clock.now()
    with ledger.read() as session:
        entry = session.execute(select(AuditEntry).where(
            AuditEntry.action == "notice.rechecked")).scalar_one()
        assert json.loads(entry.details)["reminder_due"] is True

    with ledger.write() as session:  # the outbox tried it once: whatever came of it, no more
        session.add(DeliveryAttempt(notice_id=notice_id, number=2, kind="reminder",
                                    channel="email", recipient="abuse@host.example",
                                    started_at=clock.now(), outcome="permanent"))
        session.get(Notice, notice_id).next_attempt_at = None  # type: ignore[union-attr]
    clock.advance(timedelta(days=2))
    since = clock.now()
    _check(ledger, clock, A, 200, hashes[A])
    with ledger.write() as session:
        report = apply_rechecks(session, clock, reminding, checked_since=since, actor="test")
    assert report.reminders_due == 0 and _next_attempt_at(ledger, notice_id) is None


def test_reminders_off_mark_nothing(ledger: Ledger, clock: FixedClock) -> None:
    notice_id, hashes = _sent_notice(ledger, clock, [A])
    since = clock.now()
    _check(ledger, clock, A, 200, hashes[A])
    assert _apply(ledger, clock, since).reminders_due == 0
    assert _next_attempt_at(ledger, notice_id) is None
