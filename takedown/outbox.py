"""The outbox: queued notices handed to their recipients, each at most once by itself.

Settings it is built from (:meth:`DeliveryRules.from_settings`): ``[takedown] max_attempts``,
``retry_base_seconds`` (first retry's delay, doubling each time), ``min_interval_per_recipient_
seconds``, ``recheck_after_days`` and ``deadline_days``, and ``[smtp] from_address`` (empty: the
rights-holder's own address). The senders come by channel ("email", "http") from the caller.

Each attempt is three steps, so that a crash at any moment leaves a state that says what it knows:

1. claim, in one short transaction: the notice becomes ``sending`` under a lease
   (``claimed_by`` = host:pid, ``lease_until``), ``attempts`` goes up and a ``delivery_attempts``
   row without an outcome is written, with the audit entry. On PostgreSQL the claim takes the
   row ``FOR UPDATE SKIP LOCKED`` and the recipient's advisory lock, so concurrent dispatchers
   never take the same notice nor break the per-recipient interval;
2. send, outside any transaction (a slow relay holds no lock);
3. record the answer in one transaction: ``sent`` (with the follow-up dates), back to ``queued``
   with a backoff for a temporary refusal, or ``failed``.

A crash between 1 and 3 leaves a ``sending`` notice whose attempt has no outcome: the far side
may or may not have it. :meth:`Outbox.recover` (run first by every dispatch) turns such a notice
into ``unconfirmed`` once its lease has run out, or at once when its claim names a process of
this host that is gone, and never sends it again by itself: a duplicate takedown notice is worse
than a late one. A person may :meth:`Outbox.resend` it; the reference (Message-ID,
Idempotency-Key) stays the same, so the recipient can recognise the duplicate.
"""

from __future__ import annotations

import logging
import os
import socket
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, false, func, or_, select, text
from sqlalchemy.orm import Session, aliased

from config.settings import TakedownSettings
from ledger import audit
from ledger.clock import Clock
from ledger.db import Ledger
from ledger.errors import ConflictError, LedgerError, NotFoundError
from ledger.models import DeliveryAttempt, Notice, NoticeStatus, RightsHolder
from takedown.errors import DeliveryError, TemporaryDeliveryError
from takedown.senders import DeliveryReceipt, OutgoingNotice, Sender

__all__ = ["DeliveryRules", "DispatchReport", "NoticeResult", "Outbox", "Outcome",
           "outgoing_notice", "worker_name"]

log = logging.getLogger(__name__)

# Candidates looked at per claim: more than one, so that a notice whose recipient another
# dispatcher is serving right now (its advisory lock is taken) does not stall the queue.
_CANDIDATES = 20
_RECIPIENT_LOCKS = 872345100  # advisory lock namespace; ledger.db uses 872345001 (migrations)
# A delivery attempt's outcome column (ledger.models.DeliveryAttempt).
_ACCEPTED, _TEMPORARY, _PERMANENT, _IN_DOUBT = "accepted", "temporary", "permanent", "in-doubt"


class Outcome:
    """What a dispatch did with a notice (one :class:`NoticeResult` each)."""

    SENT = "sent"  # accepted by the recipient's server
    RETRYING = "retrying"  # refused for now: queued again after the backoff
    FAILED = "failed"  # refused for good, or out of attempts
    WAITING = "waiting"  # due but not tried: no sender for its channel, or recipient interval
    IN_DOUBT = "in-doubt"  # an interrupted attempt found: the notice is now unconfirmed
    WOULD_SEND = "would-send"  # dry run

    SUMMARY = (SENT, RETRYING, FAILED, WAITING, IN_DOUBT)


@dataclass(frozen=True)
class NoticeResult:
    notice_id: int
    reference: str
    recipient: str
    channel: str | None
    outcome: str
    detail: str = ""

    @classmethod
    def of(cls, notice: Notice, outcome: str, detail: str) -> NoticeResult:
        recipient = notice.recipient_email or notice.recipient_form_url or notice.recipient_key
        return cls(notice.id, notice.reference, recipient, _channel(notice), outcome, detail)


@dataclass
class DispatchReport:
    dry_run: bool = False
    results: list[NoticeResult] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(result.outcome == outcome for result in self.results)

    def summary(self) -> dict[str, int]:
        keys = (Outcome.WOULD_SEND, *Outcome.SUMMARY) if self.dry_run else Outcome.SUMMARY
        return {key: self.count(key) for key in keys}


@dataclass(frozen=True)
class DeliveryRules:
    max_attempts: int = 8  # attempts (since the last resend) before a notice fails
    retry_base: timedelta = timedelta(seconds=60)  # delay after the first failure; doubles
    min_interval: timedelta = timedelta(seconds=10)  # between two attempts to one recipient
    recheck_after: timedelta = timedelta(days=2)  # from sending to the first re-check
    deadline: timedelta = timedelta(days=14)  # from sending: still up past it, ignored
    from_address: str = ""  # From: of every notice; empty: the holder's own address
    # Longer than any send can take (an SMTP session of ~8 replies at 30 s each): a lease that
    # runs out while the attempt is still going makes it look interrupted.
    lease: timedelta = timedelta(minutes=15)
    # A server's Retry-After is honoured up to this: a broken one must not park a notice for years.
    max_retry_after: timedelta = timedelta(days=1)

    @classmethod
    def from_settings(cls, takedown: TakedownSettings, *, from_address: str = "") -> DeliveryRules:
        return cls(max_attempts=takedown.max_attempts,
                   retry_base=timedelta(seconds=takedown.retry_base_seconds),
                   min_interval=timedelta(seconds=takedown.min_interval_per_recipient_seconds),
                   recheck_after=timedelta(days=takedown.recheck_after_days),
                   deadline=timedelta(days=takedown.deadline_days), from_address=from_address)

    def backoff(self, attempts: int, hint: timedelta | None) -> timedelta:
        """The delay after the ``attempts``-th failure: doubling, or the server's longer hint."""
        own = self.retry_base * 2 ** max(attempts - 1, 0)
        return own if hint is None else max(own, min(hint, self.max_retry_after))


@dataclass(frozen=True)
class _Claim:
    notice_id: int
    attempt_id: int
    channel: str
    outgoing: OutgoingNotice


def worker_name() -> str:
    """``host:pid``: what a claim is recorded under, and how a dead claimant is recognised."""
    return f"{socket.gethostname()}:{os.getpid()}"


def outgoing_notice(notice: Notice, holder: RightsHolder, from_address: str = "") -> OutgoingNotice:
    """The notice as a sender takes it; ValueError when the row cannot be sent as it is."""
    channel = _channel(notice)
    recipient = notice.recipient_email if channel == "email" else notice.recipient_form_url
    if not recipient:
        raise ValueError("no e-mail address or form URL")
    if notice.subject is None or notice.body_text is None:
        raise ValueError("no rendered subject or text")
    # The SMTP sender sets X-Copyguard-Notice itself (and refuses it from the notice); the form
    # endpoint gets it as a request header beside Idempotency-Key.
    headers = (("X-Copyguard-Notice", notice.reference),) if channel == "http" else ()
    return OutgoingNotice(idempotency_key=notice.reference, recipient=recipient,
                          subject=notice.subject, text=notice.body_text, html=notice.body_html,
                          from_address=from_address or holder.email, reply_to=holder.email,
                          headers=headers)


class Outbox:
    def __init__(self, ledger: Ledger, clock: Clock, senders: Mapping[str, Sender],
                 rules: DeliveryRules, *, actor: str, worker: str | None = None) -> None:
        self.ledger, self.clock, self.rules, self.actor = ledger, clock, rules, actor
        self.senders = dict(senders)  # by channel: "email", "http"
        self.worker = worker or worker_name()

    def dispatch(self, limit: int | None = None, dry_run: bool = False) -> DispatchReport:
        """Recover interrupted attempts, then send due notices until none is left (or ``limit``
        attempts were made); each notice is tried at most once per dispatch. ``dry_run``
        changes nothing and reports what would be done."""
        if dry_run:
            return self._preview(limit)
        report = DispatchReport()
        report.results.extend(self.recover(self.clock.now()))
        seen: set[int] = set()
        attempts = 0
        while limit is None or attempts < limit:
            claim = self._claim(seen)
            if claim is None:
                break
            if isinstance(claim, _Claim):
                attempts += 1
                claim = self._attempt(claim)
            report.results.append(claim)
        report.results.extend(NoticeResult.of(notice, Outcome.WAITING, self._why_waiting(notice))
                              for notice in self._due_queued() if notice.id not in seen)
        return report

    # -- one attempt: claim, send, record ------------------------------------------------------

    def _claimable(self, now: datetime) -> list[ColumnElement[bool]]:
        """Conditions of a notice this dispatcher may claim now."""
        other, attempt = aliased(Notice), aliased(DeliveryAttempt)
        recent = (select(attempt.id).join(other, attempt.notice_id == other.id)
                  .where(other.recipient_key == Notice.recipient_key,
                         attempt.started_at > now - self.rules.min_interval))
        usable: list[ColumnElement[bool]] = []
        if "email" in self.senders:
            usable.append(Notice.recipient_email.is_not(None))
        if "http" in self.senders:
            usable.append(Notice.recipient_email.is_(None)
                          & Notice.recipient_form_url.is_not(None))
        return [Notice.status == NoticeStatus.QUEUED,
                Notice.next_attempt_at.is_(None) | (Notice.next_attempt_at <= now),
                or_(*usable) if usable else false(), ~recent.exists()]

    def _claim(self, seen: set[int]) -> _Claim | NoticeResult | None:
        now = self.clock.now()
        with self.ledger.write() as session:
            postgres = session.get_bind().dialect.name == "postgresql"
            query = (select(Notice).where(*self._claimable(now), Notice.id.not_in(seen))
                     .order_by(Notice.id).limit(_CANDIDATES))
            if postgres:
                query = query.with_for_update(skip_locked=True, of=Notice)
            for notice in session.execute(query).scalars():
                if postgres and not self._recipient_free(session, notice.recipient_key, now):
                    continue
                seen.add(notice.id)
                return self._start(session, notice, now)
        return None

    def _recipient_free(self, session: Session, key: str, now: datetime) -> bool:
        """PostgreSQL: a concurrent dispatcher may be claiming a notice for the same recipient,
        unseen by our query. Its advisory lock says so; once it has committed, our re-check
        (a statement of its own, so a new READ COMMITTED snapshot) sees its attempt."""
        locked = session.execute(text("SELECT pg_try_advisory_xact_lock(:ns, :key)"), {
            "ns": _RECIPIENT_LOCKS, "key": zlib.crc32(key.encode("utf-8")) - 2**31}).scalar()
        return bool(locked) and session.execute(
            select(DeliveryAttempt.id).join(Notice, DeliveryAttempt.notice_id == Notice.id)
            .where(Notice.recipient_key == key,
                   DeliveryAttempt.started_at > now - self.rules.min_interval).limit(1)
        ).first() is None

    def _start(self, session: Session, notice: Notice, now: datetime) -> _Claim | NoticeResult:
        holder = session.get(RightsHolder, notice.holder_id)
        assert holder is not None  # a foreign key
        try:
            outgoing = outgoing_notice(notice, holder, self.rules.from_address)
        except ValueError as exc:  # a defect of the row: no attempt could ever succeed
            notice.status, notice.last_error = NoticeStatus.FAILED, f"cannot be sent: {exc}"
            self._audit(session, notice, "notice.failed", reason=notice.last_error)
            return NoticeResult.of(notice, Outcome.FAILED, notice.last_error)
        # Numbered over the notice's life; ``attempts`` counts since the last resend.
        number = 1 + (session.execute(select(func.max(DeliveryAttempt.number)).where(
            DeliveryAttempt.notice_id == notice.id)).scalar() or 0)
        channel = _channel(notice) or ""
        attempt = DeliveryAttempt(notice_id=notice.id, number=number, kind="notice",
                                  channel=channel, recipient=outgoing.recipient, started_at=now)
        session.add(attempt)
        notice.status, notice.attempts = NoticeStatus.SENDING, notice.attempts + 1
        notice.claimed_by, notice.lease_until = self.worker, now + self.rules.lease
        session.flush()
        self._audit(session, notice, "notice.sending", attempt=number, channel=channel,
                    recipient=outgoing.recipient, worker=self.worker)
        return _Claim(notice.id, attempt.id, channel, outgoing)

    def _attempt(self, claim: _Claim) -> NoticeResult:
        try:
            receipt = self.senders[claim.channel].send(claim.outgoing)
        except DeliveryError as exc:
            return self._record(claim, exc)
        except BaseException:
            # Whatever broke (a bug, Ctrl-C), the message may have left: in doubt now rather
            # than when the lease runs out, and never retried by itself. Then let it propagate.
            try:
                with self.ledger.write() as session:
                    self._mark_in_doubt(session, claim.notice_id, self.clock.now(),
                                        "the attempt was interrupted by an error")
            except LedgerError:
                log.exception("could not mark notice %d in doubt", claim.notice_id)
            raise
        return self._record(claim, receipt)

    def _record(self, claim: _Claim, answer: DeliveryReceipt | DeliveryError) -> NoticeResult:
        now = self.clock.now()
        with self.ledger.write() as session:
            notice = session.get(Notice, claim.notice_id, with_for_update=True)
            attempt = session.get(DeliveryAttempt, claim.attempt_id)
            assert notice is not None and attempt is not None
            # The lease ran out during a slow send and another dispatcher marked it in doubt:
            # the answer is still worth having, unless a person has acted on the notice since.
            late = attempt.outcome == _IN_DOUBT and notice.status == NoticeStatus.UNCONFIRMED
            ours = notice.status == NoticeStatus.SENDING and notice.claimed_by == self.worker
            if not (ours or late):
                log.warning("notice %d changed while attempt %d was under way; its answer is "
                            "only logged: %s", notice.id, attempt.number, answer)
                return NoticeResult.of(notice, Outcome.IN_DOUBT, "answered after recovery")
            attempt.finished_at = now
            notice.claimed_by = notice.lease_until = notice.next_attempt_at = None
            notice.sent_at = notice.recheck_at = notice.deadline_at = None
            if isinstance(answer, DeliveryReceipt):
                return self._accepted(session, notice, attempt, answer, late)
            attempt.status_code, attempt.reply = answer.answer.status_code, answer.answer.reply
            notice.last_error = detail = str(answer)
            temporary = isinstance(answer, TemporaryDeliveryError)
            attempt.outcome = _TEMPORARY if temporary else _PERMANENT
            if isinstance(answer, TemporaryDeliveryError) and (
                    notice.attempts < self.rules.max_attempts):
                notice.next_attempt_at = now + self.rules.backoff(notice.attempts,
                                                                  answer.retry_after)
                notice.status, action, outcome = (NoticeStatus.QUEUED, "notice.retry",
                                                  Outcome.RETRYING)
            else:
                notice.status, action, outcome = (NoticeStatus.FAILED, "notice.failed",
                                                  Outcome.FAILED)
                if temporary:
                    detail = f"gave up after {notice.attempts} attempts: {detail}"
                    notice.last_error = detail
            self._audit(session, notice, action, attempt=attempt.number, late=late,
                        status_code=answer.answer.status_code, error=detail,
                        next_attempt_at=notice.next_attempt_at)
            return NoticeResult.of(notice, outcome, detail)

    def _accepted(self, session: Session, notice: Notice, attempt: DeliveryAttempt,
                  receipt: DeliveryReceipt, late: bool) -> NoticeResult:
        attempt.outcome, attempt.status_code = _ACCEPTED, receipt.status_code
        attempt.reply, attempt.server_message_id = receipt.reply, receipt.server_message_id
        notice.status, notice.message_id = NoticeStatus.SENT, receipt.message_id
        notice.last_error = None
        self._set_sent(notice, receipt.accepted_at)
        self._audit(session, notice, "notice.sent", attempt=attempt.number, late=late,
                    status_code=receipt.status_code, message_id=receipt.message_id,
                    server_message_id=receipt.server_message_id)
        return NoticeResult.of(notice, Outcome.SENT, receipt.reply)

    def _set_sent(self, notice: Notice, at: datetime) -> None:
        notice.sent_at = at
        notice.recheck_at = at + self.rules.recheck_after
        notice.deadline_at = at + self.rules.deadline

    def _audit(self, session: Session, notice: Notice, action: str, *, actor: str | None = None,
               **details: object) -> None:
        audit.append(session, self.clock, actor=actor or self.actor, action=action,
                     entity_type="notice", entity_id=notice.id, holder_id=notice.holder_id,
                     details=details)

    # -- interrupted attempts, and a person's resend -------------------------------------------

    def recover(self, now: datetime) -> list[NoticeResult]:
        """Mark every interrupted attempt in doubt: its notice becomes ``unconfirmed``."""
        results = []
        for notice_id in self._interrupted(now):
            with self.ledger.write() as session:
                result = self._mark_in_doubt(session, notice_id, now)
            if result is not None:
                results.append(result)
        return results

    def _interrupted(self, now: datetime) -> list[int]:
        with self.ledger.read() as session:
            rows = session.execute(select(Notice.id, Notice.claimed_by, Notice.lease_until)
                                   .where(Notice.status == NoticeStatus.SENDING)
                                   .order_by(Notice.id)).all()
        return [notice_id for notice_id, claimed_by, lease_until in rows
                if _interrupted(claimed_by, lease_until, now)]

    def _mark_in_doubt(self, session: Session, notice_id: int, now: datetime,
                       error: str | None = None) -> NoticeResult | None:
        query = select(Notice).where(Notice.id == notice_id)
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        notice = session.execute(query).scalar_one_or_none()
        if notice is None or notice.status != NoticeStatus.SENDING:
            return None  # finished meanwhile, or another dispatcher is recovering it
        if error is not None and notice.claimed_by == self.worker:
            why = error
        elif _interrupted(notice.claimed_by, notice.lease_until, now):
            why = (f"its process ({notice.claimed_by}) is gone"
                   if notice.lease_until is not None and notice.lease_until >= now
                   else "its lease ran out")
        else:
            return None
        attempt = session.execute(
            select(DeliveryAttempt).where(DeliveryAttempt.notice_id == notice.id)
            .order_by(DeliveryAttempt.number.desc()).limit(1)).scalar_one_or_none()
        if attempt is not None and attempt.outcome is None:
            attempt.outcome, attempt.finished_at = _IN_DOUBT, now
        started = attempt.started_at if attempt is not None else now
        claimed_by = notice.claimed_by
        notice.status, notice.claimed_by, notice.lease_until = (NoticeStatus.UNCONFIRMED,
                                                                None, None)
        self._set_sent(notice, started)  # as if sent: the re-check finds out whether it was
        notice.last_error = f"delivery in doubt: {why}; not sent again unless a person resends it"
        self._audit(session, notice, "notice.delivery-in-doubt", reason=why,
                    attempt=attempt.number if attempt else None, claimed_by=claimed_by,
                    started_at=started)
        return NoticeResult.of(notice, Outcome.IN_DOUBT, why)

    def resend(self, notice_id: int, *, actor: str, reason: str) -> Notice:
        """A person's decision to send an ``unconfirmed`` or ``failed`` notice again: queued with
        a fresh count of attempts and the same reference, so a duplicate is recognisable."""
        if not reason.strip():
            raise LedgerError("a resend needs a reason (it is kept in the audit log)")
        with self.ledger.write() as session:
            notice = session.get(Notice, notice_id, with_for_update=True)
            if notice is None:
                raise NotFoundError(f"no notice {notice_id}")
            if notice.status not in (NoticeStatus.UNCONFIRMED, NoticeStatus.FAILED):
                raise ConflictError(f"notice {notice_id} is {notice.status}: only unconfirmed "
                                    "or failed notices can be resent")
            previous, attempts = notice.status, notice.attempts
            notice.status, notice.attempts, notice.next_attempt_at = NoticeStatus.QUEUED, 0, None
            notice.sent_at = notice.recheck_at = notice.deadline_at = None
            self._audit(session, notice, "notice.resend", actor=actor, reason=reason.strip(),
                        previous_status=previous, attempts_before=attempts,
                        reference=notice.reference)
        return notice

    # -- what waits, and dry runs ---------------------------------------------------------------

    def _due_queued(self) -> list[Notice]:
        now = self.clock.now()
        with self.ledger.read() as session:
            due = list(session.execute(select(Notice).where(
                Notice.status == NoticeStatus.QUEUED,
                Notice.next_attempt_at.is_(None) | (Notice.next_attempt_at <= now))
                .order_by(Notice.id)).scalars())
            session.expunge_all()  # read() ends in a rollback, which would expire them
            return due

    def _why_waiting(self, notice: Notice) -> str:
        channel = _channel(notice)
        if channel is None:
            return "no e-mail address or form URL"
        if channel not in self.senders:
            return f"no {channel} sender configured" + (
                " ([smtp] host is empty)" if channel == "email" else "")
        return (f"recipient {notice.recipient_key} had a notice less than "
                f"{self.rules.min_interval.total_seconds():g} s ago")

    def _preview(self, limit: int | None) -> DispatchReport:
        now = self.clock.now()
        report = DispatchReport(dry_run=True)
        with self.ledger.read() as session:
            for notice_id in self._interrupted(now):
                notice = session.get(Notice, notice_id)
                assert notice is not None
                report.results.append(NoticeResult.of(notice, Outcome.IN_DOUBT,
                                                      "would be marked unconfirmed"))
            claimable = set(session.execute(
                select(Notice.id).where(*self._claimable(now))).scalars())
        recipients: set[str] = set()  # one each per run: the interval starts with the first
        spaced = self.rules.min_interval > timedelta(0)
        for notice in self._due_queued():
            if notice.id not in claimable or (spaced and notice.recipient_key in recipients):
                report.results.append(NoticeResult.of(notice, Outcome.WAITING,
                                                      self._why_waiting(notice)))
            elif limit is not None and report.count(Outcome.WOULD_SEND) >= limit:
                report.results.append(NoticeResult.of(notice, Outcome.WAITING, "over the limit"))
            else:
                recipients.add(notice.recipient_key)
                report.results.append(NoticeResult.of(notice, Outcome.WOULD_SEND, "dry run"))
        return report


def _channel(notice: Notice) -> str | None:
    """"email" when the notice has an address, else "http" when it has a form; None: neither."""
    if notice.recipient_email is not None:
        return "email"
    return "http" if notice.recipient_form_url is not None else None


def _interrupted(claimed_by: str | None, lease_until: datetime | None, now: datetime) -> bool:
    return lease_until is None or lease_until < now or _claimant_gone(claimed_by)


def _claimant_gone(claimed_by: str | None) -> bool:
    """True when ``claimed_by`` names a process of this host that no longer runs. A pid reused
    since reads as alive: the lease then decides, which errs only on the late side."""
    host, _, pid = (claimed_by or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False
