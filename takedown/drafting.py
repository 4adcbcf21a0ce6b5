"""From detections to notices ready to send: :func:`draft`, then :func:`finalise`.

:func:`draft` takes each detection that is NEW or REVIEW and in no notice yet, oldest first:
an allowlisted or licensed use is marked LICENSED (:func:`takedown.policy.authorise`); otherwise
the recipient is found (:class:`~takedown.recipients.RecipientFinder`) and the detection joins
the open DRAFT notice of its holder, recipient and jurisdiction, or starts one whose batch window
(``send_after``) begins now. The detection becomes NOTICED. A detection without a recipient stays
as it is and is reported; one whose RDAP lookup failed for now is left for the next run.

:func:`finalise` takes each DRAFT whose window has closed: the licences are checked again (one
may have been granted meanwhile), the notice is rendered and its text stored, and it goes to
QUEUED by rule or to REVIEW when a person must decide (:func:`takedown.policy.review_reasons`).
A notice that cannot be rendered (the holder's data lacks an element the law requires) stays
DRAFT with ``last_error`` naming it, and the next run tries again.

Both take the :class:`~ledger.db.Ledger` and work in one write transaction per detection or
notice, so a crash loses at most the unit under way and a rerun repeats nothing; network lookups
(RDAP) run outside write transactions. On PostgreSQL rows are claimed with
``FOR UPDATE SKIP LOCKED``, so several workers may run a stage. Time comes from the ledger's
clock. Reads no settings (see :class:`~takedown.policy.DraftingRules`).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.orm import Session

from ledger import audit
from ledger.clock import Clock
from ledger.db import Ledger
from ledger.models import (
    Capture,
    Detection,
    DetectionStatus,
    Notice,
    NoticeItem,
    NoticeStatus,
    Recording,
    RightsHolder,
    Target,
)
from takedown.content import Jurisdiction
from takedown.counter import renotice_barred
from takedown.errors import RecipientLookupError, TakedownError
from takedown.notice_content import content_for
from takedown.policy import (
    Authorisation,
    DraftingRules,
    authorise,
    consideration,
    fair_use_ground,
    host_of,
    review_reasons,
)
from takedown.recipients import FoundRecipient, RecipientFinder
from takedown.render import NoticeRenderer

DRAFTABLE = (DetectionStatus.NEW, DetectionStatus.REVIEW)


@dataclass(frozen=True)
class Skipped:
    """A detection left as it was, and why."""

    detection_id: int
    host: str
    reason: str


@dataclass
class DraftReport:
    noticed: list[tuple[int, int]] = field(default_factory=list)  # (detection id, notice id)
    created: list[int] = field(default_factory=list)  # notices started by this run
    licensed: list[tuple[int, str]] = field(default_factory=list)  # (detection id, reason)
    no_recipient: list[Skipped] = field(default_factory=list)  # the operator must add one
    deferred: list[Skipped] = field(default_factory=list)  # RDAP failed for now: next run
    problems: list[Skipped] = field(default_factory=list)  # e.g. a target's unknown law


@dataclass
class FinaliseReport:
    queued: list[int] = field(default_factory=list)
    review: list[tuple[int, list[str]]] = field(default_factory=list)  # (notice id, reasons)
    failed: list[tuple[int, str]] = field(default_factory=list)  # (notice id, last_error)
    withdrawn: list[int] = field(default_factory=list)  # every item licensed since drafting


def _not_in_notice() -> ColumnElement[bool]:
    return ~exists().where(NoticeItem.detection_id == Detection.id)


def draft(ledger: Ledger, rules: DraftingRules, finder: RecipientFinder, *, actor: str,
          limit: int | None = None) -> DraftReport:
    """Put every waiting detection (at most ``limit``) into a notice, or mark it LICENSED."""
    report = DraftReport()
    finder.start_run()
    with ledger.read() as session:
        ids = session.execute(
            select(Detection.id).where(Detection.status.in_(DRAFTABLE), _not_in_notice())
            .order_by(Detection.detected_at, Detection.id).limit(limit)).scalars().all()
    for detection_id in ids:
        _draft_one(ledger, rules, finder, detection_id, actor, report)
    return report


def _jurisdiction(target: Target, rules: DraftingRules) -> Jurisdiction:
    return Jurisdiction(target.jurisdiction) if target.jurisdiction \
        else rules.default_jurisdiction


def _draft_one(ledger: Ledger, rules: DraftingRules, finder: RecipientFinder,
               detection_id: int, actor: str, report: DraftReport) -> None:
    # Decide in a read transaction (RDAP may take seconds), then write under a lock.
    with ledger.read() as session:
        detection = session.get(Detection, detection_id)
        if detection is None or detection.status not in DRAFTABLE:
            return
        capture, target = detection.capture, session.get(Target, detection.target_id)
        assert target is not None  # a foreign key
        host = host_of(capture.url)
        try:
            jurisdiction = _jurisdiction(target, rules)
        except ValueError:
            report.problems.append(Skipped(detection_id, host, f"target {target.name} names an "
                                           f"unknown jurisdiction {target.jurisdiction!r}"))
            return
        decision = authorise(session, detection, capture, detection.recording, jurisdiction,
                             rules)
        recipient: FoundRecipient | None = None
        if not decision.licensed:
            try:
                recipient = finder.find(session, target, capture)
            except RecipientLookupError as exc:
                skipped = Skipped(detection_id, host, str(exc))
                (report.deferred if exc.temporary else report.no_recipient).append(skipped)
                return
    with ledger.write() as session:
        detection = session.execute(
            select(Detection).where(Detection.id == detection_id, _not_in_notice())
            .with_for_update(skip_locked=True)).scalar_one_or_none()
        if detection is None or detection.status not in DRAFTABLE:
            return  # taken by another worker, or decided meanwhile
        if decision.licensed:
            _mark_licensed(session, ledger.clock, detection, decision, actor)
            report.licensed.append((detection_id, decision.reason))
            return
        if renotice_barred(session, detection.holder_id, detection.recording_id,
                           detection.capture.url):
            _mark_barred(session, ledger.clock, detection, actor)
            report.problems.append(Skipped(detection_id, host, BARRED))
            return
        assert recipient is not None
        notice = _open_notice(session, ledger.clock, detection, recipient, jurisdiction,
                              report.created)
        if notice is None:
            notice = _new_notice(session, ledger.clock, rules, detection, recipient,
                                 jurisdiction, actor)
            report.created.append(notice.id)
        capture = detection.capture
        session.add(NoticeItem(notice_id=notice.id, detection_id=detection.id,
                               capture_id=capture.id, url=capture.url))
        previous, detection.status = detection.status, DetectionStatus.NOTICED
        session.flush()
        audit.append(session, ledger.clock, actor=actor, action="detection.noticed",
                     entity_type="detection", entity_id=detection.id,
                     holder_id=detection.holder_id,
                     details={"notice_id": notice.id, "reference": notice.reference,
                              "url": capture.url, "previous_status": previous,
                              "recipient_key": notice.recipient_key,
                              "grounds": list(decision.grounds)})
        report.noticed.append((detection_id, notice.id))


def _mark_licensed(session: Session, clock: Clock, detection: Detection,
                   decision: Authorisation, actor: str) -> None:
    previous, detection.status = detection.status, DetectionStatus.LICENSED
    audit.append(session, clock, actor=actor, action="detection.licensed",
                 entity_type="detection", entity_id=detection.id, holder_id=detection.holder_id,
                 details={"reason": decision.reason, "url": detection.capture.url,
                          "previous_status": previous})


BARRED = ("a PRC counter-notice against this work at this URL bars a new notice (Regulation "
          "Art. 17): only a court or an administrative complaint remains")


def _mark_barred(session: Session, clock: Clock, detection: Detection, actor: str) -> None:
    previous, detection.status = detection.status, DetectionStatus.REJECTED
    audit.append(session, clock, actor=actor, action="detection.barred",
                 entity_type="detection", entity_id=detection.id, holder_id=detection.holder_id,
                 details={"reason": BARRED, "url": detection.capture.url,
                          "previous_status": previous})


def _open_notice(session: Session, clock: Clock, detection: Detection,
                 recipient: FoundRecipient, jurisdiction: Jurisdiction,
                 started_this_run: list[int]) -> Notice | None:
    # A draft takes more detections while its window is open, and always within the run that
    # started it: with no window at all, one run's detections for a recipient share a notice.
    open_ = Notice.send_after > clock.now()
    if started_this_run:
        open_ = open_ | Notice.id.in_(started_this_run)
    return session.execute(
        select(Notice).where(Notice.holder_id == detection.holder_id,
                             Notice.recipient_key == recipient.key,
                             Notice.jurisdiction == jurisdiction.value,
                             Notice.status == NoticeStatus.DRAFT, open_)
        .order_by(Notice.id).limit(1).with_for_update()).scalar_one_or_none()


def new_reference(jurisdiction: Jurisdiction, clock: Clock) -> str:
    """A notice reference: the law, the day, 48 random bits ("CG-DMCA-20261102-3f9a1c2b7d4e").
    It is the left part of the e-mail Message-ID, so only [A-Za-z0-9-] is used."""
    return f"CG-{jurisdiction.value.upper()}-{clock.now():%Y%m%d}-{secrets.token_hex(6)}"


def _new_notice(session: Session, clock: Clock, rules: DraftingRules, detection: Detection,
                recipient: FoundRecipient, jurisdiction: Jurisdiction, actor: str) -> Notice:
    now = clock.now()
    notice = Notice(
        reference=new_reference(jurisdiction, clock), holder_id=detection.holder_id,
        target_id=detection.target_id, jurisdiction=jurisdiction.value,
        status=NoticeStatus.DRAFT, recipient_key=recipient.key, recipient_name=recipient.name,
        recipient_role=recipient.role, recipient_email=recipient.email,
        recipient_form_url=recipient.form_url, recipient_source=recipient.source,
        created_at=now, send_after=now + rules.batch_window, attempts=0)
    session.add(notice)
    session.flush()
    audit.append(session, clock, actor=actor, action="notice.drafted", entity_type="notice",
                 entity_id=notice.id, holder_id=notice.holder_id,
                 details={"reference": notice.reference, "jurisdiction": notice.jurisdiction,
                          "recipient_key": notice.recipient_key,
                          "recipient_source": notice.recipient_source,
                          "send_after": notice.send_after.isoformat()})
    return notice


def finalise(ledger: Ledger, rules: DraftingRules,
             renderers: Callable[[int], NoticeRenderer], *, actor: str) -> FinaliseReport:
    """Render every DRAFT whose batch window has closed and queue it or send it to review.
    ``renderers(holder_id)`` gives the renderer with that holder's template overrides."""
    report = FinaliseReport()
    with ledger.read() as session:
        ids = session.execute(
            select(Notice.id).where(Notice.status == NoticeStatus.DRAFT,
                                    Notice.send_after <= ledger.clock.now())
            .order_by(Notice.send_after, Notice.id)).scalars().all()
    for notice_id in ids:
        with ledger.write() as session:
            finalise_notice(session, ledger.clock, rules, renderers, notice_id, actor=actor,
                            report=report)
    return report


def finalise_notice(session: Session, clock: Clock, rules: DraftingRules,
                    renderers: Callable[[int], NoticeRenderer], notice_id: int, *, actor: str,
                    report: FinaliseReport) -> None:
    """Finalise one notice in the caller's transaction (a no-op unless it is a due DRAFT)."""
    now = clock.now()
    notice = session.execute(
        select(Notice).where(Notice.id == notice_id).with_for_update(skip_locked=True)
    ).scalar_one_or_none()
    if notice is None or notice.status != NoticeStatus.DRAFT or notice.send_after > now:
        return
    holder = session.get(RightsHolder, notice.holder_id)
    assert holder is not None  # a foreign key
    jurisdiction = Jurisdiction(notice.jurisdiction)
    matches: list[tuple[Detection, Recording]] = []
    grounds: list[str] = []
    review: list[str] = []
    for item in list(notice.items):
        detection = item.detection
        capture = session.get(Capture, item.capture_id)
        assert capture is not None
        decision = authorise(session, detection, capture, detection.recording, jurisdiction,
                             rules)
        if decision.licensed:
            # Licensed during the batch window: the licensee must not get this notice.
            session.delete(item)
            _mark_licensed(session, clock, detection, decision, actor)
            continue
        matches.append((detection, detection.recording))
        grounds += [g for g in decision.grounds if g not in grounds]
        review += [r for r in decision.review if r not in review]
    session.flush()
    session.expire(notice, ["items"])
    if not matches:
        _withdraw(session, clock, notice, actor)
        report.withdrawn.append(notice.id)
        return
    try:
        rendered = renderers(notice.holder_id).render(content_for(session, notice, on=now.date()))
    except (TakedownError, ValueError) as exc:
        # The holder's data or templates: fixing them lets the next run succeed, so the notice
        # waits as a DRAFT; the audit records each new error once, not every run.
        error = str(exc)
        if notice.last_error != error:
            notice.last_error = error
            audit.append(session, clock, actor=actor, action="notice.render_failed",
                         entity_type="notice", entity_id=notice.id, holder_id=notice.holder_id,
                         details={"reference": notice.reference, "error": error})
        report.failed.append((notice.id, error))
        return
    notice.subject, notice.body_text, notice.body_html = (rendered.subject, rendered.text,
                                                          rendered.html)
    notice.last_error = None
    review += review_reasons(holder, matches, rules)
    grounds += [fair_use_ground(detection, recording) for detection, recording in matches]
    if review:
        notice.status = NoticeStatus.REVIEW
        notice.consideration = consideration(by="rule", actor=actor, at=now, grounds=grounds,
                                             review_reasons=review)
        action = "notice.review_needed"
        report.review.append((notice.id, review))
    else:
        notice.status = NoticeStatus.QUEUED
        notice.next_attempt_at = now
        notice.consideration = consideration(by="rule", actor=actor, at=now, grounds=grounds)
        action = "notice.queued"
        report.queued.append(notice.id)
    audit.append(session, clock, actor=actor, action=action, entity_type="notice",
                 entity_id=notice.id, holder_id=notice.holder_id,
                 details={"reference": notice.reference, "items": len(matches),
                          "subject": notice.subject, "consideration": notice.consideration})


def _withdraw(session: Session, clock: Clock, notice: Notice, actor: str) -> None:
    notice.status = NoticeStatus.REJECTED
    notice.decided_at, notice.decided_by = clock.now(), actor
    notice.decision_reason = "every detection was licensed before the notice was sent"
    audit.append(session, clock, actor=actor, action="notice.rejected", entity_type="notice",
                 entity_id=notice.id, holder_id=notice.holder_id,
                 details={"reference": notice.reference, "reason": notice.decision_reason})
