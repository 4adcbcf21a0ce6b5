"""Follow-up of sent notices: was the material really removed?

A sent notice (``sent``, or ``unconfirmed`` after an interrupted attempt) is re-checked from its
``recheck_at`` on. The looking is the crawler's (one SSRF guard, one evidence path): the caller
asks :func:`due_rechecks` which URLs to fetch, has the crawler fetch them (each answer lands as
a ``url_checks`` row with its WARC record), then calls :func:`apply_rechecks`, which reads those
rows and decides, per URL and per notice:

- a URL is **removed** when it answers 404, 410 or 451, or 2xx with other bytes than were
  captured; **still up** when it answers 2xx with the same bytes; anything else (no answer,
  refused, 5xx, 403, robots.txt) proves nothing either way and is looked at again next time;
- a notice is ``removed`` when all its URLs are; past its ``deadline_at`` it is
  ``partially-removed`` when some are, ``ignored`` when none is; before the deadline it is
  re-checked again ``recheck_after`` later (never past the deadline). A URL that has never
  given a conclusive answer keeps its notice open past the deadline: silence proves nothing.

A notice left open before its deadline with a URL still up gets one reminder when
``FollowUpRules.send_reminder`` says so: :func:`apply_rechecks` marks it due by setting the sent
notice's ``next_attempt_at`` (unused once a notice is sent), and the outbox
(:mod:`takedown.outbox`) claims and sends it under :func:`reminders_due`, the one rule of when a
reminder may go, which also keeps it to at most one per notice, even across a crash.

Every decision is in the audit log with the checks it rests on. Reads no settings: the caller
passes :class:`FollowUpRules`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from ledger import audit
from ledger.clock import Clock
from ledger.models import (
    Capture,
    DeliveryAttempt,
    ItemStatus,
    Notice,
    NoticeItem,
    NoticeStatus,
    UrlCheck,
)
from ledger.urls import url_key

GONE_STATUSES = frozenset({404, 410, 451})
REMINDER_KIND = "reminder"  # delivery_attempts.kind of a notice's reminder


@dataclass(frozen=True)
class FollowUpRules:
    # Between two re-checks of a notice still (partly) up; its deadline_at, set when it was
    # sent, says when still up means ignored.
    recheck_after: timedelta
    # Whether a notice found still (partly) up before its deadline gets its one reminder
    # ([takedown] send_reminder, which the caller passes); off unless asked for.
    send_reminder: bool = False


@dataclass
class FollowUpReport:
    checked: int = 0  # notices whose URLs were judged
    outcomes: dict[str, int] = field(default_factory=dict)  # final status -> notices
    still_pending: int = 0  # notices to be re-checked again before their deadline
    inconclusive_urls: int = 0
    reminders_due: int = 0  # notices this run marked for their reminder (the outbox sends it)


def _due(session: Session, now: datetime, holder_id: int | None) -> list[Notice]:
    query = (select(Notice).where(Notice.status.in_(NoticeStatus.SENT_STATES),
                                  Notice.recheck_at.is_not(None), Notice.recheck_at <= now)
             .order_by(Notice.recheck_at, Notice.id))
    if holder_id is not None:
        query = query.where(Notice.holder_id == holder_id)
    return list(session.execute(query).scalars())


def due_rechecks(session: Session, now: datetime, *,
                 holder_id: int | None = None) -> dict[int, list[str]]:
    """The URLs to fetch again now, by the target their captures came from."""
    urls: dict[int, list[str]] = defaultdict(list)
    for notice in _due(session, now, holder_id):
        for item in notice.items:
            if item.status == ItemStatus.REMOVED:
                continue
            capture = session.get(Capture, item.capture_id)
            if capture is not None and item.url not in urls[capture.target_id]:
                urls[capture.target_id].append(item.url)
    return dict(urls)


def reminders_due(now: datetime) -> list[ColumnElement[bool]]:
    """Conditions of a notice whose reminder may be sent now: marked due (``next_attempt_at``;
    later again after a temporary refusal), still sent and before its deadline, a URL still up,
    and no reminder of it accepted, refused for good, in doubt or under way."""
    settled = select(DeliveryAttempt.id).where(
        DeliveryAttempt.notice_id == Notice.id, DeliveryAttempt.kind == REMINDER_KIND,
        DeliveryAttempt.outcome.is_(None) | (DeliveryAttempt.outcome != "temporary"))
    still_up = select(NoticeItem.id).where(NoticeItem.notice_id == Notice.id,
                                           NoticeItem.status == ItemStatus.STILL_UP)
    return [Notice.status.in_(NoticeStatus.SENT_STATES), Notice.reminder_sent_at.is_(None),
            Notice.next_attempt_at <= now, Notice.deadline_at > now, still_up.exists(),
            ~settled.exists()]


def judge(check: UrlCheck | None, captured_sha256: str) -> str | None:
    """The item status a check shows, None when it shows nothing."""
    if check is None or check.http_status is None:
        return None
    if check.http_status in GONE_STATUSES:
        return ItemStatus.REMOVED
    if 200 <= check.http_status < 300:
        return ItemStatus.STILL_UP if check.sha256 == captured_sha256 else ItemStatus.REMOVED
    return None


def apply_rechecks(session: Session, clock: Clock, rules: FollowUpRules, *,
                   checked_since: datetime, actor: str,
                   holder_id: int | None = None) -> FollowUpReport:
    """Judge the due notices from the checks made since ``checked_since`` (the re-check crawl's
    start), in the caller's transaction."""
    now = clock.now()
    report = FollowUpReport()
    for notice in _due(session, now, holder_id):
        report.checked += 1
        judged: list[dict[str, object]] = []
        for item in notice.items:
            if item.status == ItemStatus.REMOVED:
                continue
            check = session.execute(
                select(UrlCheck).where(UrlCheck.url_key == url_key(item.url),
                                       UrlCheck.checked_at >= checked_since)
                .order_by(UrlCheck.checked_at.desc(), UrlCheck.id.desc()).limit(1)
            ).scalar_one_or_none()
            capture = session.get(Capture, item.capture_id)
            verdict = judge(check, capture.sha256 if capture is not None else "")
            if verdict is None:
                report.inconclusive_urls += 1
            else:
                assert check is not None
                item.status, item.checked_at = verdict, check.checked_at
                item.check_crawl_id = check.crawl_id
                item.check_http_status, item.check_sha256 = check.http_status, check.sha256
            judged.append({"url": item.url, "verdict": verdict or "inconclusive",
                           "check_id": check.id if check is not None else None,
                           "http_status": check.http_status if check is not None else None,
                           "error": check.error if check is not None else None})
        outcome = _outcome(notice, now)
        reminder = False
        if outcome is None:
            notice.recheck_at = min(now + rules.recheck_after,
                                    notice.deadline_at or now + rules.recheck_after)
            report.still_pending += 1
            reminder = _mark_reminder(session, notice, now, rules)
            report.reminders_due += reminder
            action = "notice.rechecked"
        else:
            notice.status, notice.outcome_at, notice.recheck_at = outcome, now, None
            notice.next_attempt_at = None  # closed: a reminder not sent by now is not sent
            report.outcomes[outcome] = report.outcomes.get(outcome, 0) + 1
            action = f"notice.{outcome}"
        audit.append(session, clock, actor=actor, action=action, entity_type="notice",
                     entity_id=notice.id, holder_id=notice.holder_id,
                     details={"reference": notice.reference, "status": notice.status,
                              "urls": judged, "reminder_due": reminder,
                              "next_recheck": notice.recheck_at.isoformat()
                              if notice.recheck_at else None})
    return report


def _outcome(notice: Notice, now: datetime) -> str | None:
    statuses = [item.status for item in notice.items]
    if statuses and all(s == ItemStatus.REMOVED for s in statuses):
        return NoticeStatus.REMOVED
    if notice.deadline_at is None or now < notice.deadline_at:
        return None
    if any(s == ItemStatus.LISTED for s in statuses):
        return None  # a URL that never answered is not proof of anything: look again
    if any(s == ItemStatus.REMOVED for s in statuses):
        return NoticeStatus.PARTIALLY_REMOVED
    return NoticeStatus.IGNORED


def _mark_reminder(session: Session, notice: Notice, now: datetime, rules: FollowUpRules) -> bool:
    """Mark the reminder of ``notice`` (left open by this re-check) due; True when this did."""
    wanted = (rules.send_reminder and notice.reminder_sent_at is None
              and notice.deadline_at is not None and now < notice.deadline_at
              and any(item.status == ItemStatus.STILL_UP for item in notice.items))
    if not wanted:
        # One waiting is withdrawn: the material is gone, the deadline passed, reminders are off.
        notice.next_attempt_at = None
        return False
    if notice.next_attempt_at is not None:
        return False  # due already, or waiting out a backoff after a temporary refusal
    tried = session.execute(select(DeliveryAttempt.id).where(
        DeliveryAttempt.notice_id == notice.id, DeliveryAttempt.kind == REMINDER_KIND).limit(1)
    ).first()
    if tried is not None:
        return False  # sent, given up or in doubt: a notice has one reminder, never a second
    notice.next_attempt_at = now
    return True
