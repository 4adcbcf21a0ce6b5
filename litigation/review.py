"""The case workflow: candidate -> under review -> approved -> filed, or declined; notes.

Every transition names who made it and why, and is written to the audit log in the same
transaction. A case whose gates all failed (track "barred") cannot be approved: the reason is
in its gates, and counsel should not be handed it by mistake.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from ledger import audit
from ledger.clock import Clock
from ledger.errors import ConflictError, LedgerError
from ledger.models import Case, CaseNote, CaseStatus, CaseTrack

# The states each action may start from.
_FROM = {
    "assign": (CaseStatus.CANDIDATE, CaseStatus.REVIEW, CaseStatus.APPROVED),
    "approve": (CaseStatus.CANDIDATE, CaseStatus.REVIEW),
    "decline": (CaseStatus.CANDIDATE, CaseStatus.REVIEW, CaseStatus.APPROVED),
    "file": (CaseStatus.APPROVED,),
    "reopen": (CaseStatus.DECLINED,),
}


_PAST = {"assign": "assigned", "approve": "approved", "decline": "declined", "file": "filed",
         "reopen": "reopened"}


def _check(case: Case, action: str) -> None:
    if case.status not in _FROM[action]:
        allowed = " or ".join(_FROM[action])
        raise ConflictError(f"case {case.id} is {case.status}: only a case that is {allowed} "
                            f"can be {_PAST[action]}")


def _reason(reason: str | None, action: str) -> str:
    text = (reason or "").strip()
    if not text:
        raise LedgerError(f"say why with --reason: a case is not {_PAST[action]} without one")
    return text


def _transition(session: Session, clock: Clock, case: Case, status: str, *, actor: str,
                action: str, reason: str | None, **details: object) -> Case:
    previous = case.status
    case.status = status
    case.decided_at, case.decided_by, case.decision_reason = clock.now(), actor, reason
    audit.append(session, clock, actor=actor, action=f"case.{action}", entity_type="case",
                 entity_id=case.id, holder_id=case.holder_id,
                 details={"from": previous, "to": status, "reason": reason,
                          "score": case.score, "track": case.track, **details})
    return case


def assign(session: Session, clock: Clock, case: Case, assignee: str, *, actor: str) -> Case:
    """Give the case to a person; a candidate goes under review."""
    _check(case, "assign")
    name = assignee.strip()
    if not name:
        raise LedgerError("name the person the case is assigned to")
    previous, case.assignee = case.assignee, name
    status = CaseStatus.REVIEW if case.status == CaseStatus.CANDIDATE else case.status
    before, case.status = case.status, status
    audit.append(session, clock, actor=actor, action="case.assigned", entity_type="case",
                 entity_id=case.id, holder_id=case.holder_id,
                 details={"assignee": name, "previous_assignee": previous, "from": before,
                          "to": status})
    return case


def approve(session: Session, clock: Clock, case: Case, *, actor: str,
            reason: str | None) -> Case:
    _check(case, "approve")
    if case.track == CaseTrack.BARRED:
        failed = [g["detail"] for g in case.gates if not g.get("passed")]
        raise ConflictError(f"case {case.id} failed its gates ({'; '.join(failed)}): "
                            "it cannot be approved for filing")
    return _transition(session, clock, case, CaseStatus.APPROVED, actor=actor,
                       action="approve", reason=_reason(reason, "approve"))


def decline(session: Session, clock: Clock, case: Case, *, actor: str,
            reason: str | None) -> Case:
    _check(case, "decline")
    return _transition(session, clock, case, CaseStatus.DECLINED, actor=actor,
                       action="decline", reason=_reason(reason, "decline"))


def mark_filed(session: Session, clock: Clock, case: Case, *, actor: str,
               reason: str | None) -> Case:
    """Counsel filed: ``reason`` records the court and docket number."""
    _check(case, "file")
    return _transition(session, clock, case, CaseStatus.FILED, actor=actor, action="file",
                       reason=_reason(reason, "file"))


def reopen(session: Session, clock: Clock, case: Case, *, actor: str,
           reason: str | None) -> Case:
    _check(case, "reopen")
    status = CaseStatus.REVIEW if case.assignee else CaseStatus.CANDIDATE
    return _transition(session, clock, case, status, actor=actor, action="reopen",
                       reason=_reason(reason, "reopen"))


def add_note(session: Session, clock: Clock, case: Case, text: str, *, author: str) -> CaseNote:
    body = text.strip()
    if not body:
        raise LedgerError("a note needs text")
    note = CaseNote(case_id=case.id, at=clock.now(), author=author, text=body)
    session.add(note)
    session.flush()
    audit.append(session, clock, actor=author, action="case.noted", entity_type="case",
                 entity_id=case.id, holder_id=case.holder_id,
                 details={"note_id": note.id, "text": body})
    return note
