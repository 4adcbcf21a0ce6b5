"""The outbox against real servers and a real ledger (SQLite and PostgreSQL): each notice is sent
once, refusals are retried with backoff or given up, and an interrupted attempt is never sent
again by itself."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from ledger.audit import verify_chain
from ledger.clock import FixedClock
from ledger.db import Ledger, open_ledger
from ledger.errors import ConflictError, LedgerError
from ledger.holders import add_holder
from ledger.models import AuditEntry, DeliveryAttempt, Notice, NoticeStatus
from takedown.http_sender import HttpFormSender
from takedown.outbox import DeliveryRules, Outbox, Outcome
from takedown.senders import DeliveryReceipt, OutgoingNotice, Sender
from takedown.smtp_sender import NOTICE_HEADER, SmtpSender
from tests.takedown.ledger_history import detached_notice
from tests.takedown.servers import HttpTestServer, Reply, SmtpTestServer

RULES = DeliveryRules(max_attempts=3, retry_base=timedelta(seconds=60),
                      min_interval=timedelta(seconds=10), recheck_after=timedelta(days=2),
                      deadline=timedelta(days=14), from_address="desk@rights.example")


def add_test_holder(ledger: Ledger, clock: FixedClock, name: str = "Blue Hour Records") -> int:
    with ledger.write() as session:
        return add_holder(session, clock, name=name, email="legal@bluehour.example",
                          actor="test").id


def add_queued_notice(ledger: Ledger, clock: FixedClock, holder_id: int, reference: str, *,
                      email: str | None = "abuse@host.example", form_url: str | None = None,
                      target_id: int | None = None) -> int:
    """A rendered, approved notice in the outbox, as the review stage leaves it."""
    recipient = email or form_url or ""
    with ledger.write() as session:
        notice = Notice(
            reference=reference, holder_id=holder_id, target_id=target_id, jurisdiction="dmca",
            status=NoticeStatus.QUEUED, attempts=0,
            recipient_key=f"{'email' if email else 'http'}:{recipient}",
            recipient_name="Host Abuse Desk", recipient_role="hosting provider",
            recipient_email=email, recipient_form_url=form_url, recipient_source="target",
            subject=f"DMCA notice {reference}", body_text="Please remove the recording.",
            body_html="<p>Please remove the recording.</p>", created_at=clock.now(),
            send_after=clock.now())
        session.add(notice)
        session.flush()
        return notice.id


@pytest.fixture
def relay() -> Iterator[SmtpTestServer]:
    with SmtpTestServer() as server:
        yield server


@pytest.fixture
def web() -> Iterator[HttpTestServer]:
    with HttpTestServer() as server:
        yield server


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client() as opened:
        yield opened


def _senders(relay: SmtpTestServer, clock: FixedClock,
             client: httpx.Client | None = None) -> dict[str, Sender]:
    senders: dict[str, Sender] = {"email": SmtpSender(
        "127.0.0.1", relay.port, security="none", timeout=5.0, clock=clock,
        local_hostname="copyguard.test")}
    if client is not None:
        senders["http"] = HttpFormSender(client, clock=clock, timeout=5.0)
    return senders


def _outbox(ledger: Ledger, clock: FixedClock, senders: dict[str, Sender],
            rules: DeliveryRules = RULES, worker: str | None = None) -> Outbox:
    return Outbox(ledger, clock, senders, rules, actor="test", worker=worker)


def _attempts(ledger: Ledger, notice_id: int) -> list[DeliveryAttempt]:
    with ledger.read() as session:
        attempts = list(session.execute(select(DeliveryAttempt).where(
            DeliveryAttempt.notice_id == notice_id).order_by(DeliveryAttempt.number)).scalars())
        session.expunge_all()
        return attempts


def _actions(ledger: Ledger) -> list[str]:
    with ledger.read() as session:
        return list(session.execute(select(AuditEntry.action).order_by(AuditEntry.seq)).scalars())


def test_notice_sent_once_with_its_attempt_and_audit_entries(
        ledger: Ledger, clock: FixedClock, relay: SmtpTestServer) -> None:
    notice_id = add_queued_notice(ledger, clock, add_test_holder(ledger, clock), "cg-n1")
    outbox = _outbox(ledger, clock, _senders(relay, clock))

    report = outbox.dispatch()
    again = outbox.dispatch()

    assert report.summary() == {"sent": 1, "retrying": 0, "failed": 0, "waiting": 0,
                                "in-doubt": 0}
    assert again.results == []
    (got,) = relay.received
    assert got.rcpt_tos == ["abuse@host.example"]
    assert got.message["Message-ID"] == "<cg-n1@rights.example>"
    assert got.message[NOTICE_HEADER] == "cg-n1"
    assert got.message["From"] == "desk@rights.example"
    assert got.message["Reply-To"] == "legal@bluehour.example"
    notice = detached_notice(ledger, notice_id)
    assert notice.status == NoticeStatus.SENT and notice.attempts == 1
    assert notice.sent_at == clock.now() and notice.message_id == "<cg-n1@rights.example>"
    assert notice.recheck_at == clock.now() + timedelta(days=2)
    assert notice.deadline_at == clock.now() + timedelta(days=14)
    assert notice.claimed_by is None and notice.lease_until is None
    (attempt,) = _attempts(ledger, notice_id)
    assert (attempt.outcome, attempt.status_code, attempt.server_message_id) == (
        "accepted", 250, "TESTQ1")
    assert attempt.channel == "email" and attempt.finished_at == clock.now()
    assert _actions(ledger) == ["holder.added", "notice.sending", "notice.sent"]
    with ledger.read() as session:
        assert verify_chain(session).ok


def test_temporary_refusal_is_retried_after_the_backoff(
        ledger: Ledger, clock: FixedClock, relay: SmtpTestServer) -> None:
    notice_id = add_queued_notice(ledger, clock, add_test_holder(ledger, clock), "cg-n2")
    outbox = _outbox(ledger, clock, _senders(relay, clock))
    relay.fail_next(1, "451 4.3.0 Try again later")

    assert outbox.dispatch().count(Outcome.RETRYING) == 1
    notice = detached_notice(ledger, notice_id)
    assert notice.status == NoticeStatus.QUEUED
    assert notice.next_attempt_at == clock.now() + timedelta(seconds=60)
    assert "451" in (notice.last_error or "")
    clock.advance(timedelta(seconds=59))
    assert outbox.dispatch().results == []  # not due yet
    clock.advance(timedelta(seconds=1))
    assert outbox.dispatch().count(Outcome.SENT) == 1

    assert len(relay.received) == 1
    assert [a.outcome for a in _attempts(ledger, notice_id)] == ["temporary", "accepted"]
    assert [a.status_code for a in _attempts(ledger, notice_id)] == [451, 250]
    assert detached_notice(ledger, notice_id).status == NoticeStatus.SENT
    assert _actions(ledger)[1:] == ["notice.sending", "notice.retry", "notice.sending",
                                    "notice.sent"]


def test_permanent_refusal_fails_and_is_not_retried(
        ledger: Ledger, clock: FixedClock, relay: SmtpTestServer) -> None:
    notice_id = add_queued_notice(ledger, clock, add_test_holder(ledger, clock), "cg-n3")
    outbox = _outbox(ledger, clock, _senders(relay, clock))
    relay.fail_next(1, "550 5.1.1 No such mailbox", stage="RCPT")

    assert outbox.dispatch().count(Outcome.FAILED) == 1
    clock.advance(timedelta(days=1))
    assert outbox.dispatch().results == []

    notice = detached_notice(ledger, notice_id)
    assert notice.status == NoticeStatus.FAILED and notice.attempts == 1
    assert "550" in (notice.last_error or "")
    assert [a.outcome for a in _attempts(ledger, notice_id)] == ["permanent"]
    assert relay.received == []
    assert _actions(ledger)[-1] == "notice.failed"


def test_backoff_doubles_and_out_of_attempts_fails(ledger: Ledger, clock: FixedClock,
                                                  relay: SmtpTestServer) -> None:
    notice_id = add_queued_notice(ledger, clock, add_test_holder(ledger, clock), "cg-n4")
    outbox = _outbox(ledger, clock, _senders(relay, clock))
    relay.fail_next(10, "421 4.7.0 Busy")

    delays = []
    for _ in range(2):
        assert outbox.dispatch().count(Outcome.RETRYING) == 1
        due = detached_notice(ledger, notice_id).next_attempt_at
        assert due is not None
        delays.append(due - clock.now())
        clock.advance(due - clock.now())
    last = outbox.dispatch()

    assert delays == [timedelta(seconds=60), timedelta(seconds=120)]
    assert last.count(Outcome.FAILED) == 1
    notice = detached_notice(ledger, notice_id)
    assert notice.status == NoticeStatus.FAILED and notice.attempts == 3
    assert (notice.last_error or "").startswith("gave up after 3 attempts: ")
    assert "421" in (notice.last_error or "")
    assert [a.outcome for a in _attempts(ledger, notice_id)] == ["temporary"] * 3
    clock.advance(timedelta(days=1))
    assert outbox.dispatch().results == []


def test_retry_after_hint_is_honoured_and_the_key_stays_the_same(
        ledger: Ledger, clock: FixedClock, relay: SmtpTestServer, web: HttpTestServer,
        client: httpx.Client) -> None:
    form = f"{web.base_url}/report"
    notice_id = add_queued_notice(ledger, clock, add_test_holder(ledger, clock), "cg-n5",
                                  email=None, form_url=form)
    outbox = _outbox(ledger, clock, _senders(relay, clock, client))
    web.reply("/report", Reply(503, b"busy", "text/plain", (("Retry-After", "600"),)))

    assert outbox.dispatch().count(Outcome.RETRYING) == 1
    assert detached_notice(ledger, notice_id).next_attempt_at == \
        clock.now() + timedelta(seconds=600)
    web.reply("/report", Reply(200, b'{"id": "T-77"}'))
    clock.advance(timedelta(seconds=300))  # past our own 60 s backoff, not the server's hint
    assert outbox.dispatch().results == []
    clock.advance(timedelta(seconds=300))
    assert outbox.dispatch().count(Outcome.SENT) == 1

    first, second = web.requests
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"] == "cg-n5"
    assert second.headers["x-copyguard-notice"] == "cg-n5"
    assert _attempts(ledger, notice_id)[-1].server_message_id == "T-77"


def test_second_notice_to_a_recipient_waits_for_the_interval_without_blocking_others(
        ledger: Ledger, clock: FixedClock, relay: SmtpTestServer) -> None:
    holder = add_test_holder(ledger, clock)
    first = add_queued_notice(ledger, clock, holder, "cg-a1")
    second = add_queued_notice(ledger, clock, holder, "cg-a2")
    other = add_queued_notice(ledger, clock, holder, "cg-b1", email="abuse@other.example")
    outbox = _outbox(ledger, clock, _senders(relay, clock))

    report = outbox.dispatch()

    assert {(r.notice_id, r.outcome) for r in report.results} == {
        (first, Outcome.SENT), (second, Outcome.WAITING), (other, Outcome.SENT)}
    (waiting,) = [r for r in report.results if r.outcome == Outcome.WAITING]
    assert "less than 10 s ago" in waiting.detail
    assert detached_notice(ledger, second).status == NoticeStatus.QUEUED
    clock.advance(timedelta(seconds=10))
    assert [(r.notice_id, r.outcome) for r in outbox.dispatch().results] == [
        (second, Outcome.SENT)]
    assert len(relay.received) == 3


def test_notice_without_a_configured_channel_waits(
        ledger: Ledger, clock: FixedClock, web: HttpTestServer, client: httpx.Client) -> None:
    holder = add_test_holder(ledger, clock)
    by_mail = add_queued_notice(ledger, clock, holder, "cg-m1")
    add_queued_notice(ledger, clock, holder, "cg-f1", email=None,
                      form_url=f"{web.base_url}/report")
    web.reply("/report", Reply(200, b"{}"))
    outbox = _outbox(ledger, clock, {"http": HttpFormSender(client, clock=clock)})

    report = outbox.dispatch()

    assert report.summary()["sent"] == 1 and report.summary()["waiting"] == 1
    (waiting,) = [r for r in report.results if r.outcome == Outcome.WAITING]
    assert waiting.notice_id == by_mail and "no email sender" in waiting.detail
    notice = detached_notice(ledger, by_mail)
    assert notice.status == NoticeStatus.QUEUED and notice.attempts == 0
    assert _attempts(ledger, by_mail) == []


def test_dry_run_changes_nothing(ledger: Ledger, clock: FixedClock,
                                 relay: SmtpTestServer) -> None:
    holder = add_test_holder(ledger, clock)
    add_queued_notice(ledger, clock, holder, "cg-d1")
    add_queued_notice(ledger, clock, holder, "cg-d2")
    before = _actions(ledger)

    report = _outbox(ledger, clock, _senders(relay, clock)).dispatch(dry_run=True)

    assert [r.outcome for r in report.results] == [Outcome.WOULD_SEND, Outcome.WAITING]
    assert relay.received == [] and _actions(ledger) == before
    with ledger.read() as session:
        assert {n.status for n in session.execute(select(Notice)).scalars()} == {
            NoticeStatus.QUEUED}


def _interrupted_attempt(ledger: Ledger, notice_id: int, *, claimed_by: str,
                         lease_until: datetime, started_at: datetime) -> None:
    """What a dispatcher killed between sending and recording leaves behind."""
    with ledger.write() as session:
        notice = session.get(Notice, notice_id)
        assert notice is not None
        notice.status, notice.attempts = NoticeStatus.SENDING, 1
        notice.claimed_by, notice.lease_until = claimed_by, lease_until
        session.add(DeliveryAttempt(notice_id=notice_id, number=1, kind="notice",
                                    channel="email", recipient="abuse@host.example",
                                    started_at=started_at))


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_interrupted_attempt_becomes_unconfirmed_and_is_not_sent_again(
        ledger: Ledger, clock: FixedClock, relay: SmtpTestServer) -> None:
    holder = add_test_holder(ledger, clock)
    expired, dead, alive = (add_queued_notice(ledger, clock, holder, f"cg-i{n}",
                                              email=f"abuse@h{n}.example") for n in range(3))
    started = clock.now() - timedelta(minutes=20)
    _interrupted_attempt(ledger, expired, claimed_by="elsewhere:4242",
                         lease_until=clock.now() - timedelta(minutes=5), started_at=started)
    # Its lease still runs, but its process on this host is gone: recovered at once.
    _interrupted_attempt(ledger, dead, claimed_by=f"{socket.gethostname()}:{_dead_pid()}",
                         lease_until=clock.now() + timedelta(minutes=10), started_at=started)
    _interrupted_attempt(ledger, alive, claimed_by="elsewhere:4243",
                         lease_until=clock.now() + timedelta(minutes=10), started_at=started)
    outbox = _outbox(ledger, clock, _senders(relay, clock))

    report = outbox.dispatch()
    clock.advance(timedelta(days=1))
    later = outbox.dispatch()  # the live claim's lease ran out meanwhile

    assert {(r.notice_id, r.outcome) for r in report.results} == {
        (expired, Outcome.IN_DOUBT), (dead, Outcome.IN_DOUBT)}
    assert [(r.notice_id, r.outcome) for r in later.results] == [(alive, Outcome.IN_DOUBT)]
    assert relay.received == []
    for notice_id in (expired, dead, alive):
        notice = detached_notice(ledger, notice_id)
        assert notice.status == NoticeStatus.UNCONFIRMED and notice.claimed_by is None
        assert notice.sent_at == started and notice.recheck_at == started + timedelta(days=2)
        assert notice.deadline_at == started + timedelta(days=14)
        assert [a.outcome for a in _attempts(ledger, notice_id)] == ["in-doubt"]
    assert _actions(ledger).count("notice.delivery-in-doubt") == 3
    clock.advance(timedelta(days=30))
    assert outbox.dispatch().results == [] and relay.received == []


def test_resend_is_a_persons_decision_and_keeps_the_reference(
        ledger: Ledger, clock: FixedClock, relay: SmtpTestServer) -> None:
    notice_id = add_queued_notice(ledger, clock, add_test_holder(ledger, clock), "cg-r1")
    _interrupted_attempt(ledger, notice_id, claimed_by="elsewhere:1",
                         lease_until=clock.now() - timedelta(seconds=1), started_at=clock.now())
    outbox = _outbox(ledger, clock, _senders(relay, clock))
    outbox.dispatch()
    with pytest.raises(LedgerError, match="reason"):
        outbox.resend(notice_id, actor="cli:anna", reason=" ")

    outbox.resend(notice_id, actor="cli:anna", reason="host says it never arrived")
    assert detached_notice(ledger, notice_id).status == NoticeStatus.QUEUED
    clock.advance(timedelta(seconds=10))
    assert outbox.dispatch().count(Outcome.SENT) == 1

    (got,) = relay.received
    assert got.message["Message-ID"] == "<cg-r1@rights.example>"
    assert [(a.number, a.outcome) for a in _attempts(ledger, notice_id)] == [
        (1, "in-doubt"), (2, "accepted")]
    with ledger.read() as session:
        entry = session.execute(select(AuditEntry).where(
            AuditEntry.action == "notice.resend")).scalar_one()
        assert entry.actor == "cli:anna" and "never arrived" in entry.details
    with pytest.raises(ConflictError, match="is sent"):
        outbox.resend(notice_id, actor="cli:anna", reason="again")


class _BrokenSender:
    def send(self, notice: OutgoingNotice) -> DeliveryReceipt:
        raise RuntimeError("bug after the message may have left")


def test_unexpected_error_while_sending_leaves_the_notice_in_doubt(
        ledger: Ledger, clock: FixedClock) -> None:
    notice_id = add_queued_notice(ledger, clock, add_test_holder(ledger, clock), "cg-e1")
    outbox = _outbox(ledger, clock, {"email": _BrokenSender()})

    with pytest.raises(RuntimeError):
        outbox.dispatch()

    assert detached_notice(ledger, notice_id).status == NoticeStatus.UNCONFIRMED
    assert [a.outcome for a in _attempts(ledger, notice_id)] == ["in-doubt"]
    assert outbox.dispatch().results == []


class _SlowSender:
    """The SMTP sender, a little slower, so that two dispatchers overlap for certain."""

    def __init__(self, inner: Sender) -> None:
        self.inner = inner

    def send(self, notice: OutgoingNotice) -> DeliveryReceipt:
        time.sleep(0.01)
        return self.inner.send(notice)


@pytest.mark.postgres
def test_concurrent_dispatchers_send_each_notice_once(
        postgres_url: str, relay: SmtpTestServer) -> None:
    clock = FixedClock(datetime(2026, 11, 2, 9, 30, tzinfo=UTC))
    ledgers = [open_ledger(postgres_url, clock=clock) for _ in range(2)]
    try:
        holder = add_test_holder(ledgers[0], clock)
        for n in range(24):
            add_queued_notice(ledgers[0], clock, holder, f"cg-c{n}",
                              email=f"abuse@h{n}.example")
        for n in range(4):  # one recipient: the interval allows one of these per run
            add_queued_notice(ledgers[0], clock, holder, f"cg-s{n}", email="abuse@same.example")
        start = threading.Barrier(2)
        reports = []

        def run(ledger: Ledger, worker: str) -> None:
            sender = _SlowSender(_senders(relay, clock)["email"])
            outbox = _outbox(ledger, clock, {"email": sender}, worker=worker)
            start.wait()
            reports.append(outbox.dispatch())

        threads = [threading.Thread(target=run, args=(ledger, f"w{i}"))
                   for i, ledger in enumerate(ledgers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

        keys = [got.message[NOTICE_HEADER] for got in relay.received]
        assert len(keys) == len(set(keys)) == 25
        assert sum(key.startswith("cg-s") for key in keys) == 1
        assert all(report.count(Outcome.SENT) > 0 for report in reports)
        assert sum(report.count(Outcome.SENT) for report in reports) == 25
        with ledgers[0].read() as session:
            assert verify_chain(session).ok
    finally:
        for ledger in ledgers:
            ledger.close()
