"""``/cases``: the queue of lawsuit candidates. Every role reads it within its scope; the
holder's legal team and admins move a case through review (assign, approve, decline, file,
reopen, notes) and export its dossier. The same services as ``copyguard cases``
(:mod:`litigation.review`, :func:`litigation.dossier.export_dossier` with the rules and options
:mod:`monitor.litigation_stage` builds from ``[litigation]``), each change in the audit log
under the caller's name.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from ledger.accounts import Principal
from ledger.clock import Clock
from ledger.errors import ConflictError, NotFoundError
from ledger.models import Case, CaseStatus, Role
from litigation.cases import list_cases
from litigation.dossier import export_dossier
from litigation.review import add_note, approve, assign, decline, mark_filed, reopen
from monitor.litigation_stage import default_dossier_path, dossier_options, litigation_rules
from monitor.views.cases import CaseDetail, CaseSummary, case_detail, case_summary
from monitor.web.scope import RowId, check_visible
from monitor.web.security import authenticate, require, state_of

router = APIRouter(prefix="/cases", tags=["cases"])

CaseId = RowId
Reader = Annotated[Principal, Depends(authenticate)]
Counsel = Annotated[Principal, Depends(require(Role.ADMIN, Role.LEGAL))]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such case, or another rights-holder's."}}
_CHANGE: dict[int | str, dict[str, Any]] = {
    **_NOT_FOUND, 400: {"description": "The reason, assignee or note is blank."},
    403: {"description": "Not for this role (legal and admin accounts only)."},
    409: {"description": "The case is not in a state this action starts from, or it was "
                         "merged into another."}}


class CasePage(BaseModel):
    items: list[CaseSummary]
    total: int = Field(description="How many cases match, over all pages.")


class Reason(BaseModel):
    reason: str = Field(min_length=1, max_length=10_000,
                        description="Why (kept in the audit log); for filing: the court and "
                                    "docket number.")


class Assignment(BaseModel):
    assignee: str = Field(min_length=1, max_length=200,
                          description="The person the case is given to.")


class NoteIn(BaseModel):
    text: str = Field(min_length=1, max_length=100_000)


def _visible_case(session: Session, principal: Principal, case_id: int) -> Case:
    case = session.get(Case, case_id)
    if case is None:
        raise NotFoundError(f"no case {case_id}")
    check_visible(principal, case.holder_id, f"case {case_id}")
    return case


def _open_case(session: Session, principal: Principal, case_id: int) -> Case:
    case = _visible_case(session, principal, case_id)
    if case.status == CaseStatus.MERGED:
        raise ConflictError(f"case {case_id} was merged into case {case.merged_into_id}")
    return case


@router.get("", response_model=CasePage)
def list_(request: Request, principal: Reader,
          status: Annotated[str | None, Query(
              max_length=16, description="Only cases in this state; merged cases are listed "
                                         "only when asked for.")] = None,
          min_score: Annotated[float | None, Query(
              allow_inf_nan=False, description="Only cases scoring at least this.")] = None,
          limit: Annotated[int, Query(ge=1, le=500)] = 100,
          offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0) -> CasePage:
    """Cases by score, highest first (the queue's order, not the newest): a holder or legal
    account sees only its holder's."""
    app = state_of(request).app
    today = app.clock.now().date()
    with app.ledger.read() as session:
        # Paged here, over the service's list: its order and its rule for merged cases hold.
        cases = [c for c in list_cases(session, holder_id=principal.scope, status=status)
                 if min_score is None or c.score >= min_score]
        return CasePage(items=[case_summary(session, c, today)
                               for c in cases[offset:offset + limit]], total=len(cases))


@router.get("/{case_id}", response_model=CaseDetail, responses=_NOT_FOUND)
def show(case_id: CaseId, request: Request, principal: Reader) -> CaseDetail:
    """One case: its sites and why they are linked, its gates, every factor of its score, the
    damages estimate with its assumptions, the last decision, notes, reminders and dossiers."""
    app = state_of(request).app
    with app.ledger.read() as session:
        return case_detail(session, _visible_case(session, principal, case_id),
                           app.clock.now().date())


def _change(request: Request, principal: Principal, case_id: int,
            action: Callable[[Session, Clock, Case], object]) -> CaseDetail:
    app = state_of(request).app
    with app.ledger.write() as session:
        case = _open_case(session, principal, case_id)
        action(session, app.clock, case)
        return case_detail(session, case, app.clock.now().date())


@router.post("/{case_id}/assign", response_model=CaseDetail, responses=_CHANGE)
def assign_(case_id: CaseId, body: Assignment, request: Request,
            principal: Counsel) -> CaseDetail:
    """Give the case to a person; a candidate goes under review."""
    return _change(request, principal, case_id, lambda session, clock, case: assign(
        session, clock, case, body.assignee, actor=principal.actor))


@router.post("/{case_id}/approve", response_model=CaseDetail, responses=_CHANGE)
def approve_(case_id: CaseId, body: Reason, request: Request, principal: Counsel) -> CaseDetail:
    """Approve a candidate or a case under review for filing (not one whose gates all
    failed)."""
    return _change(request, principal, case_id, lambda session, clock, case: approve(
        session, clock, case, actor=principal.actor, reason=body.reason))


@router.post("/{case_id}/decline", response_model=CaseDetail, responses=_CHANGE)
def decline_(case_id: CaseId, body: Reason, request: Request, principal: Counsel) -> CaseDetail:
    """Decline an open case, saying why."""
    return _change(request, principal, case_id, lambda session, clock, case: decline(
        session, clock, case, actor=principal.actor, reason=body.reason))


@router.post("/{case_id}/file", response_model=CaseDetail, responses=_CHANGE)
def file_(case_id: CaseId, body: Reason, request: Request, principal: Counsel) -> CaseDetail:
    """Record that counsel filed an approved case: the reason names the court and docket."""
    return _change(request, principal, case_id, lambda session, clock, case: mark_filed(
        session, clock, case, actor=principal.actor, reason=body.reason))


@router.post("/{case_id}/reopen", response_model=CaseDetail, responses=_CHANGE)
def reopen_(case_id: CaseId, body: Reason, request: Request, principal: Counsel) -> CaseDetail:
    """Reopen a declined case: under review again if it has an assignee, else a candidate."""
    return _change(request, principal, case_id, lambda session, clock, case: reopen(
        session, clock, case, actor=principal.actor, reason=body.reason))


@router.post("/{case_id}/notes", response_model=CaseDetail, status_code=201,
             responses=_CHANGE)
def note(case_id: CaseId, body: NoteIn, request: Request, principal: Counsel) -> CaseDetail:
    """Add a note to the case (kept with it and in the audit log)."""
    return _change(request, principal, case_id, lambda session, clock, case: add_note(
        session, clock, case, body.text, author=principal.actor))


_ZIP = {"content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
        "description": "The dossier as a zip file (Content-Disposition: attachment).",
        "headers": {
            "X-Dossier-Id": {"description": "The dossier's id (see the case's dossiers).",
                             "schema": {"type": "integer"}},
            "X-Manifest-SHA256": {"description": "SHA-256 of the dossier's manifest.json.",
                                  "schema": {"type": "string"}},
            "X-Timestamped-At": {"description": "The time-stamping authority's time, when "
                                                "litigation.tsa_url is set.",
                                 "schema": {"type": "string"}}}}


@router.post("/{case_id}/dossier", response_class=FileResponse,
             responses={**_NOT_FOUND, 200: _ZIP,
                        403: {"description": "Not for this role (legal and admin accounts "
                                             "only)."},
                        400: {"description": "The case was merged, or the time-stamping "
                                             "authority refused."}})
def dossier(case_id: CaseId, request: Request, principal: Counsel,
            pdf: Annotated[bool, Query(description="Include report.pdf (false: faster).")
                           ] = True) -> FileResponse:
    """Export the case's dossier for counsel, as ``copyguard cases export`` does, and answer
    with it: the report (HTML and PDF), the WARC evidence of every capture, page and removal
    re-check, the captured audio, match pictures, the notices, timeline.csv, works.csv, the
    chain of custody, a draft certification and manifest.json with every file's SHA-256
    (time-stamped under RFC 3161 when ``litigation.tsa_url`` is set). What could not be
    included (unreadable evidence, a picture) is listed in manifest.json's notes. The case is
    scored again first. The file stays under the dossier directory, recorded with the case."""
    app = state_of(request).app
    with app.ledger.read() as session:
        case = _visible_case(session, principal, case_id)
        base = default_dossier_path(app, case)
    # A token in the name: two exports of one case in the same second (or thread of this
    # process, which shares the staging name's pid) never meet.
    out = base.with_name(f"{base.stem}-{secrets.token_hex(4)}{base.suffix}")
    with app.evidence() as evidence:
        result = export_dossier(app.ledger, evidence, case_id, out, litigation_rules(app),
                                dossier_options(app, pdf=pdf), actor=principal.actor,
                                holder_id=principal.scope)
    headers = {"X-Dossier-Id": str(result.dossier_id),
               "X-Manifest-SHA256": result.manifest_sha256}
    if result.timestamped_at is not None:
        headers["X-Timestamped-At"] = result.timestamped_at.isoformat()
    return FileResponse(result.path, media_type="application/zip", filename=result.path.name,
                        headers=headers)
