"""A person's decision on a notice in REVIEW: approve it (QUEUED) or reject it (REJECTED).

Each decision needs a reason, is recorded on the notice (``decided_at``, ``decided_by``,
``decision_reason``) and in the audit log, and on approval replaces the rule's record in
``Notice.consideration`` with the person's (Lenz v. Universal: a person considered authorisation
and fair use), keeping what the rule found. Rejecting a notice rejects its detections, so they
are not drafted again.

``holder_id`` scopes every call to one rights-holder: another holder's notice is reported as not
found, the same as one that does not exist, so nothing is learnt about other holders. The
functions work in the caller's transaction (``with ledger.write() as session``). Reads no
settings.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger import audit
from ledger.clock import Clock
from ledger.errors import ConflictError, LedgerError, NotFoundError
from ledger.models import DetectionStatus, Notice, NoticeStatus
from takedown.policy import consideration


def pending_review(session: Session, holder_id: int | None = None) -> list[Notice]:
    """Notices waiting for a person, oldest first (one holder's, when ``holder_id`` is given).
    Each one's ``consideration["review_reasons"]`` says why it waits."""
    query = select(Notice).where(Notice.status == NoticeStatus.REVIEW)
    if holder_id is not None:
        query = query.where(Notice.holder_id == holder_id)
    return list(session.execute(query.order_by(Notice.created_at, Notice.id)).scalars())


def _for_decision(session: Session, notice_id: int, holder_id: int | None,
                  reason: str) -> Notice:
    if not reason.strip():
        raise LedgerError("a decision on a notice needs a reason")
    notice = session.execute(
        select(Notice).where(Notice.id == notice_id).with_for_update()).scalar_one_or_none()
    if notice is None or (holder_id is not None and notice.holder_id != holder_id):
        raise NotFoundError(f"no notice {notice_id}")
    if notice.status != NoticeStatus.REVIEW:
        raise ConflictError(f"notice {notice_id} ({notice.reference}) is {notice.status}, "
                            "not waiting for review")
    return notice


def approve(session: Session, clock: Clock, notice_id: int, *, actor: str, reason: str,
            holder_id: int | None = None) -> Notice:
    """Queue a notice in REVIEW for sending, on ``actor``'s authority and ``reason``."""
    notice = _for_decision(session, notice_id, holder_id, reason)
    now = clock.now()
    rule = dict(notice.consideration or {})
    notice.consideration = consideration(
        by="person", actor=actor, at=now,
        grounds=[*rule.get("grounds", ()), f"reviewed by {actor}: {reason.strip()}"],
        reason=reason.strip(), review_reasons=list(rule.get("review_reasons", ())))
    notice.status = NoticeStatus.QUEUED
    notice.next_attempt_at = now
    notice.decided_at, notice.decided_by, notice.decision_reason = now, actor, reason.strip()
    audit.append(session, clock, actor=actor, action="notice.approved", entity_type="notice",
                 entity_id=notice.id, holder_id=notice.holder_id,
                 details={"reference": notice.reference, "reason": reason.strip(),
                          "consideration": notice.consideration})
    return notice


def reject(session: Session, clock: Clock, notice_id: int, *, actor: str, reason: str,
           holder_id: int | None = None) -> Notice:
    """Decide not to send a notice in REVIEW; its detections are rejected with it."""
    notice = _for_decision(session, notice_id, holder_id, reason)
    now = clock.now()
    notice.status = NoticeStatus.REJECTED
    notice.decided_at, notice.decided_by, notice.decision_reason = now, actor, reason.strip()
    audit.append(session, clock, actor=actor, action="notice.rejected", entity_type="notice",
                 entity_id=notice.id, holder_id=notice.holder_id,
                 details={"reference": notice.reference, "reason": reason.strip()})
    for item in notice.items:
        detection = item.detection
        detection.status = DetectionStatus.REJECTED
        audit.append(session, clock, actor=actor, action="detection.rejected",
                     entity_type="detection", entity_id=detection.id,
                     holder_id=detection.holder_id,
                     details={"notice_id": notice.id, "reason": reason.strip()})
    return notice
