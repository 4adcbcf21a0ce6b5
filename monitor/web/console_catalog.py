"""The console's catalog: a holder's recordings and the form that uploads new ones (through
the API's streaming upload, so the same size limit, checks and audit apply)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from ledger.errors import LedgerError
from ledger.models import Recording, RightsHolder, Role
from monitor.views.recordings import (
    count_recordings,
    recording_filters,
    recording_rows,
    recording_summary,
)
from monitor.web import api_catalog
from monitor.web.console import Me, go, render, same_origin
from monitor.web.scope import holder_filter
from monitor.web.security import state_of

router = APIRouter(include_in_schema=False)
PAGE = 100
UPLOADERS = (Role.ADMIN, Role.OPERATOR, Role.HOLDER)


@router.get("/catalog", response_class=HTMLResponse)
def catalog(request: Request, me: Me,
            page: Annotated[int, Query(ge=1, le=10_000)] = 1) -> Response:
    if me.role not in UPLOADERS:
        raise HTTPException(403, "the catalog is the holder's: legal accounts read cases")
    app = state_of(request).app
    where = recording_filters() + holder_filter(me, Recording.holder_id)
    with app.ledger.read() as session:
        rows = [recording_summary(rec, name) for rec, name in recording_rows(
            session, where, newest_first=True, limit=PAGE, offset=(page - 1) * PAGE)]
        total = count_recordings(session, where)
        holders = [] if me.scope is not None else list(session.execute(
            select(RightsHolder.id, RightsHolder.name).order_by(RightsHolder.name)))
    return render(request, "catalog.html", me, title="Catalog", rows=rows, total=total,
                  holders=holders, max_mb=app.settings.web.max_upload_mb, page=page,
                  pages=max((total + PAGE - 1) // PAGE, 1))


@router.post("/catalog/upload", dependencies=[Depends(same_origin)])
async def upload(request: Request, me: Me) -> Response:
    """The form posts here with its CSRF token in the query string (a multipart body is not
    read for it); the API's upload does the work."""
    if me.role not in UPLOADERS:
        raise HTTPException(403, "uploads are for holders and operators")
    try:
        result = await api_catalog.upload(request, me)
    except HTTPException as exc:
        return go("/catalog", f"Nothing registered: {exc.detail}", error=True)
    except LedgerError as exc:
        return go("/catalog", f"Nothing registered: {exc}", error=True)
    done = "; ".join(f"{item.file}: {item.message}" for item in result.items)
    return go("/catalog", f"Uploaded. {done}")
