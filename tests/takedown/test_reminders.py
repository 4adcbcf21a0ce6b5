"""A notice's one reminder, through the re-check and the outbox, against a real SMTP server and a
real ledger (SQLite and PostgreSQL): sent at most once, with its own Message-ID, naming the URLs
still up; never for material that is gone, past the deadline or with reminders off; and an
interrupted reminder is never sent again by itself."""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from ledger.audit import verify_chain
from ledger.clock import FixedClock
from ledger.db import Ledger
from ledger.errors import ConflictError
from ledger.models import (
    AuditEntry,
    Capture,
    DeliveryAttempt,
    DetectionStatus,
    Notice,
    NoticeItem,
    NoticeStatus,
    UrlCheck,
)
from takedown.followup import FollowUpReport, FollowUpRules, apply_rechecks, url_key
from takedown.outbox import DeliveryRules, DispatchReport, Outbox, Outcome
from takedown.senders import DeliveryReceipt, OutgoingNotice, Sender
from takedown.smtp_sender import NOTICE_HEADER, SmtpSender
from tests.takedown.ledger_history import LedgerHistory, detached_notice
from tests.takedown.servers import SmtpTestServer

RULES = DeliveryRules(max_attempts=3, retry_base=timedelta(seconds=60),
                      min_interval=timedelta(seconds=10), recheck_after=timedelta(days=2),
                      deadline=timedelta(days=14), from_address="desk@rights.example")
A, B = "https://files.pirate.example/a.mp3", "https://files.pirate.example/b.mp3"


@pytest.fixture
def relay() -> Iterator[SmtpTestServer]:
    with SmtpTestServer() as server:
        yield server


def _queued_notice(ledger: Ledger, clock: FixedClock, urls: list[str], *,
                   jurisdiction: str = "dmca") -> int:
    """An approved notice of ``urls`` in the outbox, with the captures and detections behind it."""
    reference = f"cg-{jurisdiction}-1"
    with ledger.write() as session:
        history = LedgerHistory(session, clock)
        holder = history.holder()
        recording = history.recording(holder, "Harbour Lights", isrc="GBXYZ2400001")
        target = history.target("pirate", host="files.pirate.example")
        notice = Notice(
            reference=reference, holder_id=holder.id, target_id=target.id,
            jurisdiction=jurisdiction, status=NoticeStatus.QUEUED, attempts=0,
            recipient_key="email:abuse@host.example", recipient_name="Host Abuse Desk",
            recipient_role="hosting provider", recipient_email="abuse@host.example",
            recipient_source="target", subject=f"Copyright notice {reference}",
            body_text="Please remove the recording.", body_html="<p>Please remove it.</p>",
            created_at=clock.now(), send_after=clock.now(), next_attempt_at=clock.now())
        session.add(notice)
        session.flush()
        for url in urls:
            capture = history.capture(target, url)
            detection = history.detection(capture, recording, status=DetectionStatus.NOTICED)
            session.add(NoticeItem(notice_id=notice.id, detection_id=detection.id,
                                   capture_id=capture.id, url=url))
        return notice.id


def _outbox(ledger: Ledger, clock: FixedClock, relay: SmtpTestServer,
            sender: Sender | None = None) -> Outbox:
    smtp = SmtpSender("127.0.0.1", relay.port, security="none", timeout=5.0, clock=clock,
                      local_hostname="copyguard.test")
    return Outbox(ledger, clock, {"email": sender or smtp}, RULES, actor="test")


def _recheck(ledger: Ledger, clock: FixedClock, answers: dict[str, int | None], *,
             send_reminder: bool = True) -> FollowUpReport:
    """The re-check crawl's answers (status per URL; 200 serves the captured bytes again), then
    the follow-up's verdicts on them."""
    since = clock.now()
    with ledger.write() as session:
        for url, status in answers.items():
            capture = session.execute(select(Capture).where(Capture.url == url)).scalar_one()
            session.add(UrlCheck(
                crawl_id=capture.crawl_id, target_id=capture.target_id, url=url,
                url_key=url_key(url), checked_at=clock.now(), http_status=status,
                sha256=hashlib.sha256(url.encode()).hexdigest() if status == 200 else None,
                error=None if status else "ConnectionRefused"))
    rules = FollowUpRules(recheck_after=timedelta(days=2), send_reminder=send_reminder)
    with ledger.write() as session:
        return apply_rechecks(session, clock, rules, checked_since=since, actor="test")


def _sent_and_found_still_up(ledger: Ledger, clock: FixedClock, relay: SmtpTestServer,
                             urls: list[str], **notice: str) -> int:
    """A notice sent, then re-checked two days later: ``urls[0]`` still up, the others gone."""
    notice_id = _queued_notice(ledger, clock, urls, **notice)
    assert _outbox(ledger, clock, relay).dispatch().count(Outcome.SENT) == 1
    clock.advance(timedelta(days=2))
    report = _recheck(ledger, clock, {url: 200 if url == urls[0] else 404 for url in urls})
    assert report.reminders_due == 1
    return notice_id


def _attempts(ledger: Ledger, notice_id: int) -> list[tuple[str, str | None]]:
    with ledger.read() as session:
        return [(a.kind, a.outcome) for a in session.execute(select(DeliveryAttempt).where(
            DeliveryAttempt.notice_id == notice_id).order_by(DeliveryAttempt.number)).scalars()]


def _actions(ledger: Ledger) -> list[str]:
    with ledger.read() as session:
        return list(session.execute(select(AuditEntry.action).where(
            AuditEntry.action.like("notice.reminder-%")).order_by(AuditEntry.seq)).scalars())


def _outcomes(report: DispatchReport) -> list[tuple[int, str]]:
    return [(result.notice_id, result.outcome) for result in report.results]


def test_still_up_notice_gets_exactly_one_reminder_with_its_own_message_id(
        ledger: Ledger, clock: FixedClock, relay: SmtpTestServer) -> None:
    notice_id = _sent_and_found_still_up(ledger, clock, relay, [A, B])
    sent_at = detached_notice(ledger, notice_id).sent_at
    outbox = _outbox(ledger, clock, relay)

    preview = outbox.dispatch(dry_run=True)
    report = outbox.dispatch()
    again = outbox.dispatch()

    assert _outcomes(preview) == [(notice_id, Outcome.WOULD_REMIND)]
    assert _outcomes(report) == [(notice_id, Outcome.REMINDER_SENT)]
    assert report.summary()["sent"] == 0 and report.summary()["reminder-sent"] == 1
    assert again.results == []
    original, reminder = relay.received
    assert reminder.message["Subject"] == "Reminder: Copyright notice cg-dmca-1"
    assert reminder.message["Message-ID"] == "<cg-dmca-1-reminder@rights.example>"
    assert original.message["Message-ID"] == "<cg-dmca-1@rights.example>"
    assert reminder.message["In-Reply-To"] == original.message["Message-ID"]
    assert reminder.message[NOTICE_HEADER] == "cg-dmca-1-reminder"
    text = reminder.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "This is a reminder of our notice cg-dmca-1" in text
    assert A in text and B not in text  # only what is still up
    assert text.rstrip().endswith("Please remove the recording.")  # then the notice itself
    notice = detached_notice(ledger, notice_id)
    assert notice.status == NoticeStatus.SENT and notice.reminder_sent_at == clock.now()
    assert notice.message_id == "<cg-dmca-1@rights.example>" and notice.sent_at == sent_at
    assert notice.next_attempt_at is None and notice.claimed_by is None
    assert _attempts(ledger, notice_id) == [("notice", "accepted"), ("reminder", "accepted")]
    assert _actions(ledger) == ["notice.reminder-sending", "notice.reminder-sent"]

    clock.advance(timedelta(days=2))  # still up at the next re-check: no second reminder
    assert _recheck(ledger, clock, {A: 200}).reminders_due == 0
    assert outbox.dispatch().results == [] and len(relay.received) == 2
    with ledger.read() as session:
        assert verify_chain(session).ok


def test_prc_reminder_is_written_in_chinese(ledger: Ledger, clock: FixedClock,
                                            relay: SmtpTestServer) -> None:
    _sent_and_found_still_up(ledger, clock, relay, [A], jurisdiction="prc")

    assert _outbox(ledger, clock, relay).dispatch().count(Outcome.REMINDER_SENT) == 1

    reminder = relay.received[-1].message
    assert reminder["Subject"] == "Reminder: Copyright notice cg-prc-1"
    text = reminder.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "以下内容仍可访问" in text and A in text and "cg-prc-1" in text


@pytest.mark.parametrize(("days", "answers", "send_reminder"), [
    pytest.param(2, {A: 404, B: 410}, True, id="removed"),
    pytest.param(15, {A: 200, B: 200}, True, id="past-the-deadline"),
    pytest.param(15, {A: 200, B: None}, True, id="past-the-deadline-still-open"),
    pytest.param(2, {A: 200, B: 200}, False, id="reminders-off"),
])
def test_no_reminder_for_removed_late_or_switched_off(
        ledger: Ledger, clock: FixedClock, relay: SmtpTestServer, days: int,
        answers: dict[str, int | None], send_reminder: bool) -> None:
    notice_id = _queued_notice(ledger, clock, [A, B])
    outbox = _outbox(ledger, clock, relay)
    outbox.dispatch()
    clock.advance(timedelta(days=days))

    report = _recheck(ledger, clock, answers, send_reminder=send_reminder)

    assert report.reminders_due == 0
    assert outbox.dispatch().results == [] and len(relay.received) == 1
    assert detached_notice(ledger, notice_id).next_attempt_at is None
    assert _attempts(ledger, notice_id) == [("notice", "accepted")]


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.mark.parametrize("claim", ["expired-lease", "dead-process"])
def test_interrupted_reminder_is_never_sent_again(ledger: Ledger, clock: FixedClock,
                                                  relay: SmtpTestServer, claim: str) -> None:
    notice_id = _sent_and_found_still_up(ledger, clock, relay, [A])
    # What a dispatcher killed between sending the reminder and recording it leaves behind.
    claimed_by, lease_until = ("elsewhere:4242", clock.now() - timedelta(minutes=5))
    if claim == "dead-process":  # its lease still runs, but its process here is gone
        claimed_by = f"{socket.gethostname()}:{_dead_pid()}"
        lease_until = clock.now() + timedelta(minutes=10)
    with ledger.write() as session:
        notice = session.get(Notice, notice_id)
        assert notice is not None
        notice.claimed_by, notice.lease_until = claimed_by, lease_until
        session.add(DeliveryAttempt(notice_id=notice_id, number=2, kind="reminder",
                                    channel="email", recipient="abuse@host.example",
                                    started_at=clock.now() - timedelta(minutes=20)))
    outbox = _outbox(ledger, clock, relay)

    report = outbox.dispatch()

    assert _outcomes(report) == [(notice_id, Outcome.REMINDER_IN_DOUBT)]
    assert report.summary()["reminder-in-doubt"] == 1 and report.summary()["in-doubt"] == 0
    notice = detached_notice(ledger, notice_id)
    assert notice.status == NoticeStatus.SENT  # the notice itself was delivered
    assert notice.reminder_sent_at is None and notice.next_attempt_at is None
    assert notice.claimed_by is None and notice.lease_until is None
    assert _attempts(ledger, notice_id) == [("notice", "accepted"), ("reminder", "in-doubt")]
    assert _actions(ledger) == ["notice.reminder-in-doubt"]
    clock.advance(timedelta(days=2))  # still up again: not marked again, not sent
    assert _recheck(ledger, clock, {A: 200}).reminders_due == 0
    assert outbox.dispatch().results == [] and len(relay.received) == 1


class _BrokenSender:
    def send(self, notice: OutgoingNotice) -> DeliveryReceipt:
        raise RuntimeError("bug after the reminder may have left")


def test_unexpected_error_while_reminding_leaves_the_reminder_in_doubt(
        ledger: Ledger, clock: FixedClock, relay: SmtpTestServer) -> None:
    notice_id = _sent_and_found_still_up(ledger, clock, relay, [A])

    with pytest.raises(RuntimeError):
        _outbox(ledger, clock, relay, _BrokenSender()).dispatch()

    assert _attempts(ledger, notice_id) == [("notice", "accepted"), ("reminder", "in-doubt")]
    assert detached_notice(ledger, notice_id).status == NoticeStatus.SENT
    assert _outbox(ledger, clock, relay).dispatch().results == [] and len(relay.received) == 1


def test_temporary_refusal_of_a_reminder_is_retried_after_the_backoff(
        ledger: Ledger, clock: FixedClock, relay: SmtpTestServer) -> None:
    notice_id = _sent_and_found_still_up(ledger, clock, relay, [A])
    outbox = _outbox(ledger, clock, relay)
    relay.fail_next(1, "451 4.3.0 Try again later")

    assert _outcomes(outbox.dispatch()) == [(notice_id, Outcome.REMINDER_RETRYING)]
    assert detached_notice(ledger, notice_id).next_attempt_at == clock.now() + timedelta(seconds=60)
    clock.advance(timedelta(seconds=59))
    assert outbox.dispatch().results == []
    clock.advance(timedelta(seconds=1))
    assert _outcomes(outbox.dispatch()) == [(notice_id, Outcome.REMINDER_SENT)]

    assert len(relay.received) == 2
    assert _attempts(ledger, notice_id) == [("notice", "accepted"), ("reminder", "temporary"),
                                            ("reminder", "accepted")]
    assert _actions(ledger) == ["notice.reminder-sending", "notice.reminder-retry",
                                "notice.reminder-sending", "notice.reminder-sent"]


def test_permanent_refusal_of_a_reminder_is_not_retried(
        ledger: Ledger, clock: FixedClock, relay: SmtpTestServer) -> None:
    notice_id = _sent_and_found_still_up(ledger, clock, relay, [A])
    outbox = _outbox(ledger, clock, relay)
    relay.fail_next(1, "550 5.1.1 No such mailbox", stage="RCPT")

    assert _outcomes(outbox.dispatch()) == [(notice_id, Outcome.REMINDER_FAILED)]
    clock.advance(timedelta(days=2))
    assert _recheck(ledger, clock, {A: 200}).reminders_due == 0
    assert outbox.dispatch().results == [] and len(relay.received) == 1
    notice = detached_notice(ledger, notice_id)
    assert notice.status == NoticeStatus.SENT and notice.last_error is None


def test_notice_cannot_be_resent_while_its_reminder_is_under_way(
        ledger: Ledger, clock: FixedClock, relay: SmtpTestServer) -> None:
    notice_id = _sent_and_found_still_up(ledger, clock, relay, [A])
    with ledger.write() as session:
        notice = session.get(Notice, notice_id)
        assert notice is not None
        notice.status = NoticeStatus.UNCONFIRMED
        notice.claimed_by = "elsewhere:1"
        notice.lease_until = clock.now() + timedelta(minutes=10)

    with pytest.raises(ConflictError, match="reminder is being sent"):
        _outbox(ledger, clock, relay).resend(notice_id, actor="cli:anna", reason="lost")
