"""``/imports``: uploads of recordings registered in the background, with their progress.

``POST /imports`` takes the same multipart upload as ``POST /recordings`` but answers 202 as
soon as the files are received and checked; the server's importer (:mod:`monitor.web.importer`)
then decodes, fingerprints and registers them, and ``GET /imports/{id}`` shows how far it got
(files done of files in all, the file in hand) and, once done, what became of each file, or why
nothing was registered. Scoped as recordings are: a holder or legal account sees only its own
holder's imports.
"""

from __future__ import annotations

import shutil
from datetime import datetime
from typing import Annotated, Any, Literal

from anyio import to_thread
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger import imports
from ledger.accounts import Principal
from ledger.errors import NotFoundError
from ledger.models import CatalogImport, RightsHolder
from monitor.web.api_catalog import (
    Limit,
    Offset,
    Reader,
    Uploader,
    csrf_in_header,
    receive_upload,
    upload_openapi,
)
from monitor.web.importer import ImportedFile
from monitor.web.scope import RowId, check_visible, holder_filter
from monitor.web.security import state_of

router = APIRouter(tags=["imports"])

_NO_IMPORT: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such import, or another rights-holder's."}}


class ImportView(BaseModel):
    """An upload and how far its registration got."""

    id: int
    holder_id: int
    holder: str
    uploaded_by: str = Field(description="The account that uploaded it, as the audit log "
                                         "names it.")
    status: Literal["queued", "running", "done", "failed"] = Field(
        description="queued: waiting for the importer; running: being decoded and "
                    "fingerprinted; done: registered (see items); failed: nothing registered "
                    "(see error).")
    files: list[str] = Field(description="The uploaded files' names, in order.")
    files_total: int
    files_done: int = Field(description="Files decoded and fingerprinted so far.")
    current_file: str | None = Field(description="The file being decoded now.")
    items: list[ImportedFile] | None = Field(description="Once done: what became of each "
                                                         "file.")
    error: str | None = Field(description="Once failed: why nothing was registered.")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class ImportPage(BaseModel):
    items: list[ImportView]
    total: int = Field(description="How many imports match, over all pages.")


def import_view(row: CatalogImport, holder: str) -> ImportView:
    return ImportView(
        id=row.id, holder_id=row.holder_id, holder=holder, uploaded_by=row.actor,
        status=row.status,
        files=[f["name"] for f in row.files], files_total=len(row.files),
        files_done=row.files_done, current_file=row.current_file,
        items=None if row.items is None else [ImportedFile.model_validate(i) for i in row.items],
        error=row.error, created_at=row.created_at, started_at=row.started_at,
        finished_at=row.finished_at)


@router.post(
    "/imports", response_model=ImportView, status_code=202,
    dependencies=[Depends(csrf_in_header)], openapi_extra=upload_openapi(),
    responses={400: {"description": "A field is wrong, or no file was sent."},
               404: {"description": "No such rights-holder, or not the caller's."},
               413: {"description": "A file is larger than [web] max_upload_mb."},
               415: {"description": "Not multipart/form-data."},
               422: {"description": "A metadata field is malformed (a date, an ISRC)."}})
async def start_import(request: Request, principal: Uploader) -> ImportView:
    """Upload recordings to be registered in the background (the fields of ``POST
    /recordings``): answers once the files are received, with the import to watch at
    ``GET /imports/{id}``. A file that is not audio fails the import and registers nothing."""
    state = state_of(request)
    app = state.app
    received = await receive_upload(request, principal)
    stored = [(f.name, str(f.path.relative_to(received.directory))) for f in received.files]

    def queue() -> ImportView:
        with app.ledger.write() as session:
            row = imports.queue_import(
                session, app.clock, holder_id=received.holder_id, actor=principal.actor,
                directory=received.directory.name, files=stored,
                fields=received.fields.model_dump(mode="json", exclude_none=True))
            return import_view(row, session.get_one(RightsHolder, row.holder_id).name)

    try:
        view = await to_thread.run_sync(queue)
    except BaseException:
        await to_thread.run_sync(shutil.rmtree, received.directory, True)
        raise
    if state.importer is not None:
        state.importer.wake()
    return view


@router.get("/imports", response_model=ImportPage)
def list_imports(
        request: Request, principal: Reader,
        holder_id: Annotated[int | None, Query(
            ge=1, le=2**31 - 1, description="Only this rights-holder's imports.")] = None,
        limit: Limit = 100, offset: Offset = 0) -> ImportPage:
    """Uploads, the newest first: every holder's for admins and operators, its own holder's
    for a holder or legal account."""
    app = state_of(request).app
    where = holder_filter(principal, CatalogImport.holder_id)
    if holder_id is not None:
        where.append(CatalogImport.holder_id == holder_id)
    with app.ledger.read() as session:
        rows = session.execute(
            select(CatalogImport, RightsHolder.name)
            .join(RightsHolder, RightsHolder.id == CatalogImport.holder_id).where(*where)
            .order_by(CatalogImport.id.desc()).limit(limit).offset(offset)).all()
        total = session.scalar(select(func.count()).select_from(CatalogImport).where(*where))
        return ImportPage(items=[import_view(row, name) for row, name in rows],
                          total=int(total or 0))


@router.get("/imports/{import_id}", response_model=ImportView, responses=_NO_IMPORT)
def show_import(import_id: RowId, request: Request, principal: Reader) -> ImportView:
    """One upload: its progress, then what became of each file (or why none was
    registered)."""
    app = state_of(request).app
    with app.ledger.read() as session:
        row = visible_import(session, principal, import_id)
        return import_view(row, session.get_one(RightsHolder, row.holder_id).name)


def visible_import(session: Session, principal: Principal, import_id: int) -> CatalogImport:
    """The import, if the principal may see it (another holder's answers as a missing one)."""
    row = session.get(CatalogImport, import_id)
    if row is None:
        raise NotFoundError(f"no import {import_id}")
    check_visible(principal, row.holder_id, f"import {import_id}")
    return row
