"""Cases as ``copyguard cases list/show --json`` print them and the API answers them, and the
result of a dossier export as ``cases export --json`` prints it."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.models import Case, CaseNote, CaseReminder, Dossier, RightsHolder
from litigation.dossier import ExportResult


class CaseSummary(BaseModel):
    """One infringer (a site, or sites linked as one operator's) as a lawsuit candidate."""

    id: int
    status: str = Field(description="candidate, under-review, approved, filed, declined or "
                                    "merged.")
    track: str = Field(description="court (registered works), ccb (Copyright Claims Board: "
                                   "only pending applications) or barred (a gate failed for "
                                   "every work).")
    score: float = Field(description="The sum of the breakdown's points: higher first.")
    holder: str | None = Field(description="The rights-holder's name.")
    name: str = Field(description="The infringer's main host.")
    hosts: list[str]
    works: int = Field(description="Works found infringed.")
    detections: int
    assignee: str | None
    limitation_deadline: str | None = Field(description="The earliest day a work's claim "
                                                        "runs out (ISO 8601 date).")
    days_left: int | None = Field(description="Days until the limitation deadline.")
    damages: dict[str, Any] | None = Field(description="Statutory damages estimate: low, "
                                                       "high, willful_high, currency, basis, "
                                                       "assumptions.")
    scored_at: str | None = Field(description="ISO 8601, UTC.")


class CaseNoteView(BaseModel):
    at: str = Field(description="ISO 8601, UTC.")
    author: str
    text: str


class CaseReminderView(BaseModel):
    """A limitation-deadline reminder the queue wrote."""

    deadline: str = Field(description="ISO 8601 date.")
    days_before: int
    at: str = Field(description="When it was written (ISO 8601, UTC).")


class DossierView(BaseModel):
    """One export of the case for counsel."""

    id: int
    path: str = Field(description="Where the server wrote it.")
    at: str = Field(description="ISO 8601, UTC.")
    files: int
    manifest_sha256: str = Field(description="SHA-256 of its manifest.json.")


class CaseDetail(CaseSummary):
    """A case with every factor of its score, its gates, why its sites are linked, the last
    decision, notes, reminders and dossiers."""

    gates: list[dict[str, Any]] = Field(description="Each gate (registration, limitation, "
                                                    "ownership): gate, passed, detail, works "
                                                    "(the recordings failing it).")
    breakdown: list[dict[str, Any]] = Field(description="Each factor of the score: factor, "
                                                        "label, value, weight, contribution "
                                                        "(points), detail.")
    links: dict[str, list[dict[str, Any]]] = Field(description="Per host, why it was linked "
                                                               "to the others: reason, with, "
                                                               "evidence.")
    decided_by: str | None
    decision_reason: str | None
    merged_into: int | None = Field(description="The case it was merged into.")
    notes: list[CaseNoteView]
    reminders: list[CaseReminderView]
    dossiers: list[DossierView]


class ExportView(BaseModel):
    """A dossier exported: where, how big, and the manifest's hash."""

    case: int
    dossier: int = Field(description="The dossier's id.")
    path: str
    files: int
    bytes: int
    manifest_sha256: str
    timestamped_at: str | None = Field(description="The time-stamping authority's time.")
    notes: list[str] = Field(description="What could not be included, and why.")


def case_summary(session: Session, case: Case, today: date) -> CaseSummary:
    holder = session.get(RightsHolder, case.holder_id)
    deadline = case.limitation_deadline
    return CaseSummary(
        id=case.id, status=case.status, track=case.track, score=case.score,
        holder=holder.name if holder else None, name=case.name,
        hosts=[h.host for h in case.hosts], works=case.works, detections=case.detections,
        assignee=case.assignee,
        limitation_deadline=deadline.isoformat() if deadline else None,
        days_left=(deadline - today).days if deadline else None,
        damages=case.damages, scored_at=case.scored_at.isoformat() if case.scored_at else None)


def case_detail(session: Session, case: Case, today: date) -> CaseDetail:
    notes = session.execute(select(CaseNote).where(CaseNote.case_id == case.id)
                            .order_by(CaseNote.id)).scalars()
    reminders = session.execute(select(CaseReminder).where(CaseReminder.case_id == case.id)
                                .order_by(CaseReminder.id)).scalars()
    dossiers = session.execute(select(Dossier).where(Dossier.case_id == case.id)
                               .order_by(Dossier.id)).scalars()
    return CaseDetail(
        **case_summary(session, case, today).model_dump(),
        gates=case.gates, breakdown=case.breakdown,
        links={h.host: h.links for h in case.hosts},
        decided_by=case.decided_by, decision_reason=case.decision_reason,
        merged_into=case.merged_into_id,
        notes=[CaseNoteView(at=n.at.isoformat(), author=n.author, text=n.text) for n in notes],
        reminders=[CaseReminderView(deadline=r.deadline.isoformat(),
                                    days_before=r.days_before, at=r.created_at.isoformat())
                   for r in reminders],
        dossiers=[DossierView(id=d.id, path=d.path, at=d.created_at.isoformat(),
                              files=d.files, manifest_sha256=d.manifest_sha256)
                  for d in dossiers])


def export_view(case_id: int, result: ExportResult) -> ExportView:
    return ExportView(
        case=case_id, dossier=result.dossier_id, path=str(result.path), files=result.files,
        bytes=result.bytes, manifest_sha256=result.manifest_sha256,
        timestamped_at=result.timestamped_at.isoformat() if result.timestamped_at else None,
        notes=result.notes)
