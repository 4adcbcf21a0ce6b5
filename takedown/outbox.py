"""The outbox: queued notices handed to their recipients, each at most once by itself.

Settings it is built from: those of :meth:`DeliveryRules.from_settings` (``[takedown]`` delivery
and follow-up days, ``[smtp] from_address``; see :mod:`takedown.outbox_report`, where it and the
other values live). The senders come by channel ("email", "http") from the caller.

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

A notice's one reminder goes the same three steps after the due notices, once
:mod:`takedown.followup` marked it due (:func:`~takedown.followup.reminders_due` says when). The
notice keeps its status meanwhile (a re-check or a counter-notice may come): ``claimed_by`` and
the lease say the reminder is under way; one found interrupted is in doubt, never sent again.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, false, func, or_, select, text
from sqlalchemy.orm import Session, aliased

from ledger import audit
from ledger.clock import Clock
from ledger.db import Ledger
from ledger.errors import ConflictError, LedgerError, NotFoundError
from ledger.models import DeliveryAttempt, Notice, NoticeStatus, RightsHolder
from takedown.errors import DeliveryError, TemporaryDeliveryError
from takedown.followup import REMINDER_KIND, reminders_due
from takedown.outbox_report import (
    DeliveryRules,
    DispatchReport,
    NoticeResult,
    Outcome,
    channel_of,
    claim_interrupted,
    outgoing_notice,
    reminder_notice,
    still_up_urls,
    why_waiting,
    worker_name,
)
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
_NOTICE, _REMINDER = "notice", REMINDER_KIND  # an attempt's kind
# While a notice is in one of these, its claim (claimed_by) is its own delivery's; in any other
# state a claim is its reminder's, under way.
_NOTICE_CLAIM_STATES = (NoticeStatus.QUEUED, NoticeStatus.SENDING)


@dataclass(frozen=True)
class _Claim:
    notice_id: int
    attempt_id: int
    channel: str
    outgoing: OutgoingNotice
    kind: str = _NOTICE


# Made once: a new aliased() per claim leaves SQLAlchemy column proxies in reference cycles the
# collector frees only now and then, the largest Python-level growth the soak's trace showed
# (bench-soak --trace-memory: 1.7 of 2.5 MiB over 624 cycles).
_OTHER_NOTICE = aliased(Notice, name="other_notice")
_RECENT_ATTEMPT = aliased(DeliveryAttempt, name="recent_attempt")


class Outbox:
    def __init__(self, ledger: Ledger, clock: Clock, senders: Mapping[str, Sender],
                 rules: DeliveryRules, *, actor: str, worker: str | None = None) -> None:
        self.ledger, self.clock, self.rules, self.actor = ledger, clock, rules, actor
        self.senders = dict(senders)  # by channel: "email", "http"
        self.worker = worker or worker_name()

    def dispatch(self, limit: int | None = None, dry_run: bool = False) -> DispatchReport:
        """Recover interrupted attempts, then send due notices, then due reminders, until none
        is left (or ``limit`` attempts were made); each notice and each reminder is tried at
        most once per dispatch. ``dry_run`` changes nothing and reports what would be done."""
        if dry_run:
            return self._preview(limit)
        report = DispatchReport()
        report.results.extend(self.recover(self.clock.now()))
        seen: dict[str, set[int]] = {_NOTICE: set(), _REMINDER: set()}
        attempts = 0
        for kind in (_NOTICE, _REMINDER):  # a notice not yet sent matters more than a reminder
            while limit is None or attempts < limit:
                claim = self._claim(kind, seen[kind])
                if claim is None:
                    break
                if isinstance(claim, _Claim):
                    attempts += 1
                    claim = self._attempt(claim)
                report.results.append(claim)
        report.results.extend(NoticeResult.of(notice, Outcome.WAITING, self._why_waiting(notice))
                              for notice in self._due_queued() if notice.id not in seen[_NOTICE])
        return report

    # -- one attempt: claim, send, record ------------------------------------------------------

    def _claimable(self, now: datetime, kind: str = _NOTICE) -> list[ColumnElement[bool]]:
        """Conditions of a notice (``kind`` "notice") or of a notice's reminder this dispatcher
        may claim now."""
        other, attempt = _OTHER_NOTICE, _RECENT_ATTEMPT
        recent = (select(attempt.id).join(other, attempt.notice_id == other.id)
                  .where(other.recipient_key == Notice.recipient_key,
                         attempt.started_at > now - self.rules.min_interval))
        usable: list[ColumnElement[bool]] = []
        if "email" in self.senders:
            usable.append(Notice.recipient_email.is_not(None))
        if "http" in self.senders:
            usable.append(Notice.recipient_email.is_(None)
                          & Notice.recipient_form_url.is_not(None))
        deliverable = [or_(*usable) if usable else false(), ~recent.exists()]
        if kind == _REMINDER:
            # claimed_by is on the row itself: PostgreSQL checks such conditions again on a row
            # a concurrent dispatcher changed before our lock, and claiming a reminder changes
            # nothing else of the row.
            return [*reminders_due(now), Notice.claimed_by.is_(None), *deliverable]
        return [Notice.status == NoticeStatus.QUEUED,
                Notice.next_attempt_at.is_(None) | (Notice.next_attempt_at <= now), *deliverable]

    def _claim(self, kind: str, seen: set[int]) -> _Claim | NoticeResult | None:
        now = self.clock.now()
        with self.ledger.write() as session:
            postgres = session.get_bind().dialect.name == "postgresql"
            query = (select(Notice).where(*self._claimable(now, kind), Notice.id.not_in(seen))
                     .order_by(Notice.id).limit(_CANDIDATES))
            if postgres:
                query = query.with_for_update(skip_locked=True, of=Notice)
            for notice in session.execute(query).scalars():
                if postgres and not self._recipient_free(session, notice.recipient_key, now):
                    continue
                seen.add(notice.id)
                return self._start(session, notice, now, kind)
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

    def _start(self, session: Session, notice: Notice, now: datetime,
               kind: str) -> _Claim | NoticeResult:
        holder = session.get(RightsHolder, notice.holder_id)
        assert holder is not None  # a foreign key
        reminder = kind == _REMINDER
        try:
            outgoing = (reminder_notice if reminder else outgoing_notice)(
                notice, holder, self.rules.from_address)
        except ValueError as exc:  # a defect of the row: no attempt could ever succeed
            error = f"cannot be sent: {exc}"
            if reminder:  # the notice stands as it is; only its reminder is given up
                notice.next_attempt_at = None
                self._audit(session, notice, "notice.reminder-failed", reason=error)
                return NoticeResult.of(notice, Outcome.REMINDER_FAILED, error)
            notice.status, notice.last_error = NoticeStatus.FAILED, error
            self._audit(session, notice, "notice.failed", reason=error)
            return NoticeResult.of(notice, Outcome.FAILED, error)
        # Numbered over the notice's life; ``attempts`` counts since the last resend.
        number = 1 + (session.execute(select(func.max(DeliveryAttempt.number)).where(
            DeliveryAttempt.notice_id == notice.id)).scalar() or 0)
        channel = channel_of(notice) or ""
        attempt = DeliveryAttempt(notice_id=notice.id, number=number, kind=kind,
                                  channel=channel, recipient=outgoing.recipient, started_at=now)
        session.add(attempt)
        if not reminder:  # a reminder leaves the status alone: re-checks and counters go on
            notice.status, notice.attempts = NoticeStatus.SENDING, notice.attempts + 1
        notice.claimed_by, notice.lease_until = self.worker, now + self.rules.lease
        session.flush()
        # A reminder's text is not stored: the notice's text and these URLs make it again.
        urls = {"urls": still_up_urls(notice)} if reminder else {}
        self._audit(session, notice, _action(kind, "sending"), attempt=number, channel=channel,
                    recipient=outgoing.recipient, worker=self.worker, details=urls)
        return _Claim(notice.id, attempt.id, channel, outgoing, kind)

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
        reminder = claim.kind == _REMINDER
        with self.ledger.write() as session:
            notice = session.get(Notice, claim.notice_id, with_for_update=True)
            attempt = session.get(DeliveryAttempt, claim.attempt_id)
            assert notice is not None and attempt is not None
            # The lease ran out during a slow send and another dispatcher marked it in doubt:
            # the answer is still worth having, unless a person has acted on the notice since
            # (resent it; a reminder's notice may meanwhile be re-checked or countered).
            if reminder:
                kept = notice.status not in _NOTICE_CLAIM_STATES
                late = kept and attempt.outcome == _IN_DOUBT and notice.claimed_by is None
                ours = kept and notice.claimed_by == self.worker
            else:
                late = attempt.outcome == _IN_DOUBT and notice.status == NoticeStatus.UNCONFIRMED
                ours = notice.status == NoticeStatus.SENDING and notice.claimed_by == self.worker
            if not (ours or late):
                log.warning("notice %d changed while attempt %d was under way; its answer is "
                            "only logged: %s", notice.id, attempt.number, answer)
                return NoticeResult.of(notice, _outcome(claim.kind, Outcome.IN_DOUBT),
                                       "answered after recovery")
            attempt.finished_at = now
            notice.claimed_by = notice.lease_until = notice.next_attempt_at = None
            if not reminder:
                notice.sent_at = notice.recheck_at = notice.deadline_at = None
            if isinstance(answer, DeliveryReceipt):
                attempt.outcome, attempt.status_code = _ACCEPTED, answer.status_code
                attempt.reply, attempt.server_message_id = answer.reply, answer.server_message_id
                if reminder:  # the notice's own message_id and dates stay as they are
                    notice.reminder_sent_at = answer.accepted_at
                else:
                    self._accepted(notice, answer)
                self._audit(session, notice, _action(claim.kind, "sent"), attempt=attempt.number,
                            late=late, status_code=answer.status_code,
                            message_id=answer.message_id,
                            server_message_id=answer.server_message_id)
                return NoticeResult.of(notice, _outcome(claim.kind, Outcome.SENT), answer.reply)
            attempt.status_code, attempt.reply = answer.answer.status_code, answer.answer.reply
            temporary = isinstance(answer, TemporaryDeliveryError)
            attempt.outcome = _TEMPORARY if temporary else _PERMANENT
            # A reminder's tries are its attempts; ``attempts`` is the notice's own count.
            tries = session.execute(select(func.count(DeliveryAttempt.id)).where(
                DeliveryAttempt.notice_id == notice.id, DeliveryAttempt.kind == _REMINDER)
            ).scalar_one() if reminder else notice.attempts
            detail = str(answer)
            if temporary and tries >= self.rules.max_attempts:
                detail = f"gave up after {tries} attempts: {detail}"
            # A reminder is retried only while its notice waits for the material to go.
            retry = temporary and tries < self.rules.max_attempts and (
                not reminder or notice.status in NoticeStatus.SENT_STATES)
            if isinstance(answer, TemporaryDeliveryError) and retry:
                notice.next_attempt_at = now + self.rules.backoff(tries, answer.retry_after)
            if not reminder:
                notice.status = NoticeStatus.QUEUED if retry else NoticeStatus.FAILED
                notice.last_error = detail
            self._audit(session, notice, _action(claim.kind, "retry" if retry else "failed"),
                        attempt=attempt.number, late=late, status_code=answer.answer.status_code,
                        error=detail, next_attempt_at=notice.next_attempt_at)
            return NoticeResult.of(notice, _outcome(
                claim.kind, Outcome.RETRYING if retry else Outcome.FAILED), detail)

    def _accepted(self, notice: Notice, receipt: DeliveryReceipt) -> None:
        notice.status, notice.message_id = NoticeStatus.SENT, receipt.message_id
        notice.last_error = None
        self._set_sent(notice, receipt.accepted_at)

    def _set_sent(self, notice: Notice, at: datetime) -> None:
        notice.sent_at = at
        notice.recheck_at = at + self.rules.recheck_after
        notice.deadline_at = at + self.rules.deadline

    def _audit(self, session: Session, notice: Notice, action: str, *, actor: str | None = None,
               details: Mapping[str, object] | None = None, **more: object) -> None:
        audit.append(session, self.clock, actor=actor or self.actor, action=action,
                     entity_type="notice", entity_id=notice.id, holder_id=notice.holder_id,
                     details={**more, **(details or {})})

    # -- interrupted attempts, and a person's resend -------------------------------------------

    def recover(self, now: datetime) -> list[NoticeResult]:
        """Mark every interrupted attempt in doubt: its notice becomes ``unconfirmed``; a
        reminder's notice keeps its status and gets no reminder by itself any more."""
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
                                   .where((Notice.status == NoticeStatus.SENDING)
                                          | (Notice.status.not_in(_NOTICE_CLAIM_STATES)
                                             & Notice.claimed_by.is_not(None)))
                                   .order_by(Notice.id)).all()
        return [notice_id for notice_id, claimed_by, lease_until in rows
                if claim_interrupted(claimed_by, lease_until, now)]

    def _mark_in_doubt(self, session: Session, notice_id: int, now: datetime,
                       error: str | None = None) -> NoticeResult | None:
        query = select(Notice).where(Notice.id == notice_id)
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        notice = session.execute(query).scalar_one_or_none()
        if notice is None:
            return None  # another dispatcher is recovering it
        reminder = notice.status not in _NOTICE_CLAIM_STATES and notice.claimed_by is not None
        if notice.status != NoticeStatus.SENDING and not reminder:
            return None  # finished meanwhile
        if error is not None and notice.claimed_by == self.worker:
            why = error
        elif claim_interrupted(notice.claimed_by, notice.lease_until, now):
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
        # Neither is tried again by itself; next_attempt_at marks a notice's reminder as due.
        notice.claimed_by = notice.lease_until = notice.next_attempt_at = None
        if reminder:  # the notice went out before; only whether its reminder did is unknown
            self._audit(session, notice, "notice.reminder-in-doubt", reason=why,
                        attempt=attempt.number if attempt else None, claimed_by=claimed_by,
                        started_at=started)
            return NoticeResult.of(notice, Outcome.REMINDER_IN_DOUBT, why)
        notice.status = NoticeStatus.UNCONFIRMED
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
            if notice.claimed_by is not None:  # one attempt at a notice at a time
                raise ConflictError(f"notice {notice_id}: its reminder is being sent; resend "
                                    "it when `notices send` is done")
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
        return why_waiting(notice, self.senders, self.rules.min_interval)

    def _preview(self, limit: int | None) -> DispatchReport:
        now = self.clock.now()
        report = DispatchReport(dry_run=True)
        with self.ledger.read() as session:
            for notice_id in self._interrupted(now):
                notice = session.get(Notice, notice_id)
                assert notice is not None
                sending = notice.status == NoticeStatus.SENDING  # else its reminder was
                report.results.append(NoticeResult.of(
                    notice, Outcome.IN_DOUBT if sending else Outcome.REMINDER_IN_DOUBT,
                    "would be marked " + ("unconfirmed" if sending else "in doubt")))
            claimable = set(session.execute(
                select(Notice.id).where(*self._claimable(now))).scalars())
            reminders = [(n.recipient_key, NoticeResult.of(n, Outcome.WOULD_REMIND, "dry run"))
                         for n in session.execute(select(Notice).where(*self._claimable(
                             now, _REMINDER)).order_by(Notice.id)).scalars()]
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
        for key, result in reminders:  # after the notices, as dispatch sends them; quiet if not
            tried = report.count(Outcome.WOULD_SEND) + report.count(Outcome.WOULD_REMIND)
            if not (spaced and key in recipients) and (limit is None or tried < limit):
                recipients.add(key)
                report.results.append(result)
        return report


def _action(kind: str, what: str) -> str:
    """The audit action of a step of a notice's delivery, or of its reminder's."""
    return f"notice.reminder-{what}" if kind == _REMINDER else f"notice.{what}"


def _outcome(kind: str, outcome: str) -> str:
    return Outcome.of_reminder(outcome) if kind == _REMINDER else outcome
