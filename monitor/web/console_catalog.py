"""The console's catalog: a holder's recordings, the form that uploads new ones (through the
API's streaming upload into a background import, so the same size limit, checks and audit
apply) and each upload's page, which follows the import's progress until it is done."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from ledger.errors import LedgerError
from ledger.models import CatalogImport, CatalogImportStatus, Recording, RightsHolder, Role
from monitor.views.recordings import (
    count_recordings,
    recording_filters,
    recording_rows,
    recording_summary,
)
from monitor.web import api_imports
from monitor.web.api_imports import import_view
from monitor.web.console import Me, go, render, same_origin
from monitor.web.scope import RowId, holder_filter
from monitor.web.security import state_of

router = APIRouter(include_in_schema=False)
PAGE = 100
RECENT_UPLOADS = 10
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
        uploads = [import_view(row, name) for row, name in session.execute(
            select(CatalogImport, RightsHolder.name)
            .join(RightsHolder, RightsHolder.id == CatalogImport.holder_id)
            .where(*holder_filter(me, CatalogImport.holder_id))
            .order_by(CatalogImport.id.desc()).limit(RECENT_UPLOADS))]
    return render(request, "catalog.html", me, title="Catalog", rows=rows, total=total,
                  holders=holders, uploads=uploads, max_mb=app.settings.web.max_upload_mb,
                  page=page, pages=max((total + PAGE - 1) // PAGE, 1))


@router.post("/catalog/upload", dependencies=[Depends(same_origin)])
async def upload(request: Request, me: Me) -> Response:
    """The form posts here with its CSRF token in the query string (a multipart body is not
    read for it); the API's import takes the files, and the upload's page follows it."""
    if me.role not in UPLOADERS:
        raise HTTPException(403, "uploads are for holders and operators")
    try:
        started = await api_imports.start_import(request, me)
    except HTTPException as exc:
        return go("/catalog", f"Nothing registered: {exc.detail}", error=True)
    except RequestValidationError as exc:
        wrong = "; ".join(f"{'.'.join(map(str, e['loc'][1:]))}: {e['msg']}"
                          for e in exc.errors())
        return go("/catalog", f"Nothing registered: {wrong}", error=True)
    except LedgerError as exc:
        return go("/catalog", f"Nothing registered: {exc}", error=True)
    return go(f"/catalog/uploads/{started.id}",
              f"Received {started.files_total} file(s): they are being registered.")


@router.get("/catalog/uploads/{import_id}", response_class=HTMLResponse)
def upload_page(import_id: RowId, request: Request, me: Me) -> Response:
    """One upload: a progress bar while its files are decoded (the page reloads itself every
    two seconds until the import is finished), then what became of each file."""
    app = state_of(request).app
    with app.ledger.read() as session:
        row = api_imports.visible_import(session, me, import_id)
        view = import_view(row, session.get_one(RightsHolder, row.holder_id).name)
    return render(request, "upload.html", me, title=f"Upload {view.id}", upload=view,
                  finished=view.status in CatalogImportStatus.FINISHED)
