"""Console pages where people decide: notices (their rendered text and delivery history,
approved or rejected by the holder) and the case queue (the score's breakdown, the review
workflow and the dossier download for legal teams)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response

from ledger.accounts import Principal
from ledger.errors import LedgerError
from ledger.models import Case, Notice, Role
from litigation import review
from litigation.cases import list_cases
from litigation.errors import LitigationError
from monitor.takedown_stage import outbox
from monitor.views.cases import case_detail, case_summary
from monitor.views.notices import count_notices, list_notices, notice_detail, notice_filters
from monitor.web import api_cases
from monitor.web.api_notices import visible_notice
from monitor.web.console import Me, go, render, same_origin
from monitor.web.scope import RowId, check_visible, holder_filter
from monitor.web.security import state_of
from takedown.errors import TakedownError
from takedown.review import approve, reject

router = APIRouter(include_in_schema=False)
PAGE = 50
DECIDERS = (Role.ADMIN, Role.HOLDER)  # who approves or rejects a notice (as the API)
COUNSEL = (Role.ADMIN, Role.LEGAL)  # who works the case queue and exports dossiers


def _may(me: Principal, roles: tuple[str, ...], what: str) -> None:
    if me.role not in roles:
        raise HTTPException(403, f"{what} is not for the {me.role} role")


@router.get("/notices", response_class=HTMLResponse)
def notices(request: Request, me: Me, status: str | None = None,
            page: Annotated[int, Query(ge=1, le=10_000)] = 1) -> Response:
    app = state_of(request).app
    where = notice_filters(status=status or None) + holder_filter(me, Notice.holder_id)
    with app.ledger.read() as session:
        rows = list_notices(session, where, limit=PAGE, offset=(page - 1) * PAGE)
        total = count_notices(session, where)
    return render(request, "notices.html", me, title="Notices", rows=rows, total=total,
                  status=status, page=page, pages=max((total + PAGE - 1) // PAGE, 1))


@router.get("/notices/{notice_id}", response_class=HTMLResponse)
def notice(request: Request, me: Me, notice_id: RowId) -> Response:
    app = state_of(request).app
    with app.ledger.read() as session:
        shown = notice_detail(session, visible_notice(session, me, notice_id))
    return render(request, "notice.html", me, title=f"Notice {notice_id}", n=shown,
                  may_decide=me.role in DECIDERS and shown.status == "review",
                  may_resend=me.role in DECIDERS and shown.status in ("failed", "unconfirmed"))


@router.post("/notices/{notice_id}/decide", dependencies=[Depends(same_origin)])
def notice_decide(request: Request, me: Me, notice_id: RowId,
                  decision: Annotated[str, Form(pattern="^(approve|reject)$")],
                  reason: Annotated[str, Form(min_length=1, max_length=10_000)]) -> Response:
    _may(me, DECIDERS, "deciding on notices")
    app = state_of(request).app
    decide = approve if decision == "approve" else reject
    try:
        with app.ledger.write() as session:
            decide(session, app.clock, notice_id, actor=me.actor, reason=reason,
                   holder_id=me.scope)
    except (LedgerError, TakedownError) as exc:
        return go(f"/notices/{notice_id}", f"Not done: {exc}", error=True)
    done = ("approved: it is queued and goes out with the next send" if decision == "approve"
            else "rejected")
    return go(f"/notices/{notice_id}", f"Notice {notice_id} {done}.")


@router.post("/notices/{notice_id}/resend", dependencies=[Depends(same_origin)])
def notice_resend(request: Request, me: Me, notice_id: RowId,
                  reason: Annotated[str, Form(min_length=1, max_length=10_000)]) -> Response:
    """A failed or unconfirmed notice queued again, with its reference (as the API)."""
    _may(me, DECIDERS, "resending notices")
    app = state_of(request).app
    try:
        with app.ledger.read() as session:
            visible_notice(session, me, notice_id)
        outbox(app).resend(notice_id, actor=me.actor, reason=reason)
    except (LedgerError, TakedownError) as exc:
        return go(f"/notices/{notice_id}", f"Not resent: {exc}", error=True)
    return go(f"/notices/{notice_id}", f"Notice {notice_id} queued again: it goes out with "
                                       "the next send, with the same reference.")


@router.get("/cases", response_class=HTMLResponse)
def cases(request: Request, me: Me, status: str | None = None) -> Response:
    _may(me, COUNSEL, "the case queue")
    app = state_of(request).app
    today = app.clock.now().date()
    with app.ledger.read() as session:
        rows = [case_summary(session, c, today) for c in
                list_cases(session, holder_id=me.scope, status=status or None)]
    return render(request, "cases.html", me, title="Cases", rows=rows, status=status)


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case(request: Request, me: Me, case_id: RowId) -> Response:
    _may(me, COUNSEL, "the case queue")
    app = state_of(request).app
    with app.ledger.read() as session:
        row = session.get(Case, case_id)
        if row is None:
            raise HTTPException(404, f"no case {case_id}")
        check_visible(me, row.holder_id, f"case {case_id}")
        shown = case_detail(session, row, app.clock.now().date())
    return render(request, "case.html", me, title=f"Case {case_id}", c=shown)


@router.post("/cases/{case_id}/review", dependencies=[Depends(same_origin)])
def case_review(request: Request, me: Me, case_id: RowId,
                action: Annotated[str, Form(pattern="^(assign|approve|decline|file|reopen|note)$")],
                text: Annotated[str, Form(min_length=1, max_length=10_000)]) -> Response:
    """One step of the review workflow; ``text`` is the assignee, the reason or the note."""
    _may(me, COUNSEL, "reviewing cases")
    app = state_of(request).app
    try:
        with app.ledger.write() as session:
            row = session.get(Case, case_id)
            if row is None:
                raise HTTPException(404, f"no case {case_id}")
            check_visible(me, row.holder_id, f"case {case_id}")
            clock, actor = app.clock, me.actor
            if action == "assign":
                review.assign(session, clock, row, text, actor=actor)
            elif action == "note":
                review.add_note(session, clock, row, text, author=actor)
            else:
                step = {"approve": review.approve, "decline": review.decline,
                        "file": review.mark_filed, "reopen": review.reopen}[action]
                step(session, clock, row, actor=actor, reason=text)
    except (LedgerError, LitigationError) as exc:
        return go(f"/cases/{case_id}", f"Not done: {exc}", error=True)
    return go(f"/cases/{case_id}", f"Case {case_id}: {action} recorded.")


@router.post("/cases/{case_id}/dossier", dependencies=[Depends(same_origin)])
def case_dossier(request: Request, me: Me, case_id: RowId,
                 pdf: Annotated[bool, Form()] = False) -> Response:
    """The dossier, exported now and downloaded (as the API's ``POST /cases/{id}/dossier``)."""
    _may(me, COUNSEL, "exporting dossiers")
    return api_cases.dossier(case_id, request, me, pdf=pdf)
