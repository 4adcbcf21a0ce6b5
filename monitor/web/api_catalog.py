"""``/holders`` and ``/recordings``: rights-holders and their catalogs over the REST API.

Every role reads, a ``holder`` or ``legal`` account only its own rights-holder and its
recordings (another holder's answers 404, as a missing one). Admins register holders; a holder's
details are changed by admins and the holder's own ``holder`` accounts. Recordings are uploaded
by admins, operators (for the ``holder_id`` they name) and ``holder`` accounts (for their own
holder), and withdrawn by admins and the holder's own accounts; ``legal`` accounts only read.
The same services as ``copyguard holders`` and ``copyguard catalog`` (:mod:`ledger.holders`,
:mod:`fingerprints.catalog`), each change in the audit log under the caller's name; the JSON
shapes are those of the CLI's ``--json`` (:mod:`monitor.views`).

An upload is streamed to a temporary directory under the data directory (``<home>/uploads``),
each file stopped past ``[web] max_upload_mb``, decoded with the ``[decoding]`` limits and
fingerprinted in the request; nothing is registered unless every file decodes, and the
temporary files are removed whatever happens.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from anyio import to_thread
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.orm import Session

from fingerprints.catalog import (
    remove_recording,
)
from ledger.accounts import Principal
from ledger.errors import ConflictError, NotFoundError
from ledger.holders import add_holder, update_holder
from ledger.models import Recording, RightsHolder, Role
from monitor.app import App
from monitor.views.holders import HolderView, count_holders, holder_view, list_holder_views
from monitor.views.recordings import (
    RecordingDetail,
    RecordingSummary,
    count_recordings,
    recording_detail,
    recording_filters,
    recording_rows,
    recording_summary,
)
from monitor.web.importer import (
    CATALOG_CHANGES,
    ImportedFile,
    Refused,
    UploadedFile,
    UploadFields,
    all_duplicates,
    register_uploads,
    uploads_directory,
)
from monitor.web.scope import RowId, check_visible, holder_filter
from monitor.web.security import CSRF_HEADER, SESSION_COOKIE, authenticate, require, state_of
from monitor.web.upload import FILE_FIELD, MAX_FILES, MultipartSink, boundary_of, receive

router = APIRouter()

Reader = Annotated[Principal, Depends(authenticate)]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
HolderEditor = Annotated[Principal, Depends(require(Role.ADMIN, Role.HOLDER))]
Uploader = Annotated[Principal, Depends(require(Role.ADMIN, Role.OPERATOR, Role.HOLDER))]
Remover = Annotated[Principal, Depends(require(Role.ADMIN, Role.HOLDER))]
Limit = Annotated[int, Query(ge=1, le=500, description="At most this many items.")]
Offset = Annotated[int, Query(ge=0, le=2**31 - 1, description="Skip this many items first.")]

_FORBIDDEN: dict[int | str, dict[str, Any]] = {403: {"description": "Not for this role."}}
_NO_HOLDER: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such rights-holder, or not the caller's."}}
_NO_RECORDING: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such recording, or another rights-holder's."}}

class HolderPage(BaseModel):
    items: list[HolderView]
    total: int = Field(description="How many holders match, over all pages.")


class HolderIn(BaseModel):
    """A rights-holder to register (as ``copyguard holders add``)."""

    name: str = Field(min_length=1, max_length=200,
                      description="As notices will show it; unique, and never changed.")
    email: str = Field(min_length=3, max_length=320, description="Contact address for notices.")
    address: str | None = Field(None, max_length=2000)
    phone: str | None = Field(None, max_length=64)
    signatory: str | None = Field(None, max_length=200, description="Who signs its notices.")
    signatory_title: str | None = Field(None, max_length=200)
    notice_policy: Literal["auto", "review"] = Field(
        "review", description="auto: confident whole-work detections are noticed by rule; "
                              "review: a person approves every notice.")


class HolderChanges(BaseModel):
    """Details to change (as ``copyguard holders set``): only the fields sent; null clears an
    optional one. The name does not change (notices and cases quote it)."""

    email: str | None = Field(None, max_length=320)
    address: str | None = Field(None, max_length=2000)
    phone: str | None = Field(None, max_length=64)
    signatory: str | None = Field(None, max_length=200)
    signatory_title: str | None = Field(None, max_length=200)
    notice_policy: Literal["auto", "review"] | None = None


class RecordingPage(BaseModel):
    items: list[RecordingSummary]
    total: int = Field(description="How many recordings match, over all pages.")


class ImportResult(BaseModel):
    items: list[ImportedFile]


# -- rights-holders ----------------------------------------------------------------------------

def _visible_holder(session: Session, principal: Principal, holder_id: int) -> RightsHolder:
    holder = session.get(RightsHolder, holder_id)
    if holder is None:
        raise NotFoundError(f"no rights-holder {holder_id}")
    check_visible(principal, holder.id, f"rights-holder {holder_id}")
    return holder


@router.get("/holders", response_model=HolderPage, tags=["holders"])
def list_holders(request: Request, principal: Reader, limit: Limit = 100,
                 offset: Offset = 0) -> HolderPage:
    """Rights-holders, newest first: every one for admins and operators, its own for a holder
    or legal account."""
    app = state_of(request).app
    where = holder_filter(principal, RightsHolder.id)
    with app.ledger.read() as session:
        return HolderPage(items=list_holder_views(session, where, limit=limit, offset=offset),
                          total=count_holders(session, where))


@router.get("/holders/{holder_id}", response_model=HolderView, tags=["holders"],
            responses=_NO_HOLDER)
def show_holder(holder_id: RowId, request: Request, principal: Reader) -> HolderView:
    """One rights-holder's details."""
    app = state_of(request).app
    with app.ledger.read() as session:
        return holder_view(_visible_holder(session, principal, holder_id))


@router.post("/holders", response_model=HolderView, status_code=201, tags=["holders"],
             responses={**_FORBIDDEN, 409: {"description": "The name is taken."}})
def create_holder(body: HolderIn, request: Request, principal: Admin) -> HolderView:
    """Register a rights-holder (admins). Give it accounts with ``copyguard users add``."""
    app = state_of(request).app
    with app.ledger.write() as session:
        holder = add_holder(session, app.clock, name=body.name, email=body.email,
                            address=body.address, phone=body.phone,
                            signatory_name=body.signatory,
                            signatory_title=body.signatory_title,
                            notice_policy=body.notice_policy, actor=principal.actor)
        return holder_view(holder)


@router.patch("/holders/{holder_id}", response_model=HolderView, tags=["holders"],
              responses={**_FORBIDDEN, **_NO_HOLDER})
def change_holder(holder_id: RowId, body: HolderChanges, request: Request,
                  principal: HolderEditor) -> HolderView:
    """Change a rights-holder's contact details, signatory or notice policy: only the fields
    sent, null clearing an optional one (audited, with the values before). Admins, and the
    holder's own holder accounts."""
    app = state_of(request).app
    sent = {("signatory_name" if key == "signatory" else key): getattr(body, key)
            for key in body.model_fields_set}
    with app.ledger.write() as session:
        holder = _visible_holder(session, principal, holder_id)
        if sent:  # null reaches update_holder as "" (clear), since None there means "keep"
            holder = update_holder(session, app.clock, holder.name, actor=principal.actor,
                                   **{key: "" if value is None else value
                                      for key, value in sent.items()})
        return holder_view(holder)


# -- recordings --------------------------------------------------------------------------------

def _visible_recording(session: Session, principal: Principal, recording_id: int) -> Recording:
    recording = session.get(Recording, recording_id)
    if recording is None:
        raise NotFoundError(f"no recording {recording_id}")
    check_visible(principal, recording.holder_id, f"recording {recording_id}")
    return recording


@router.get("/recordings", response_model=RecordingPage, tags=["recordings"])
def list_recordings(
        request: Request, principal: Reader,
        holder_id: Annotated[int | None, Query(
            ge=1, le=2**31 - 1, description="Only this rights-holder's recordings.")] = None,
        include_removed: Annotated[bool, Query(description="Include withdrawn ones (as "
                                                           "`catalog list --all`).")] = False,
        limit: Limit = 100, offset: Offset = 0) -> RecordingPage:
    """The catalog, the latest registered first: every holder's for admins and operators,
    its own holder's for a holder or legal account."""
    app = state_of(request).app
    where = (recording_filters(holder_id=holder_id, include_removed=include_removed)
             + holder_filter(principal, Recording.holder_id))
    with app.ledger.read() as session:
        rows = recording_rows(session, where, newest_first=True, limit=limit, offset=offset)
        return RecordingPage(items=[recording_summary(rec, name) for rec, name in rows],
                             total=count_recordings(session, where))


@router.get("/recordings/{recording_id}", response_model=RecordingDetail, tags=["recordings"],
            responses=_NO_RECORDING)
def show_recording(recording_id: RowId, request: Request, principal: Reader) -> RecordingDetail:
    """One recording: its metadata, its registration (what a lawsuit over it may claim), its
    fingerprints (whether identify finds it) and any ownership conflict over its audio."""
    app = state_of(request).app
    with app.ledger.read() as session:
        return recording_detail(session, _visible_recording(session, principal, recording_id))


@router.delete("/recordings/{recording_id}", response_model=RecordingDetail,
               tags=["recordings"], responses={**_FORBIDDEN, **_NO_RECORDING})
def remove(recording_id: RowId, request: Request, principal: Remover) -> RecordingDetail:
    """Withdraw a recording (as ``copyguard catalog remove``): it is no longer matched; its
    row and history stay, for the detections and notices that cite it. Admins, and the
    holder's own holder accounts; a withdrawn recording answers 404."""
    app = state_of(request).app
    with CATALOG_CHANGES:
        index = app.index  # opened (and synced) before the write transaction: it needs one
        with app.ledger.write() as session:
            _visible_recording(session, principal, recording_id)
            recording = remove_recording(session, app.clock, index, recording_id=recording_id,
                                         actor=principal.actor)
            return recording_detail(session, recording)


# -- uploads -----------------------------------------------------------------------------------

def _fields(raw: dict[str, str]) -> UploadFields:
    try:
        return UploadFields.model_validate({k: v for k, v in raw.items() if v.strip()})
    except ValidationError as exc:
        raise RequestValidationError([{**error, "loc": ("body", *error["loc"])}
                                      for error in exc.errors(include_url=False)]) from None


def _upload_holder(app: App, principal: Principal, holder_id: int | None) -> int:
    """Whose the upload is: a holder account's own holder, else the ``holder_id`` given."""
    if principal.scope is not None:
        if holder_id not in (None, principal.scope):
            raise NotFoundError(f"no rights-holder {holder_id}")
        return principal.scope
    if holder_id is None:
        raise HTTPException(400, "give holder_id: the rights-holder these recordings are "
                                 "registered for")
    with app.ledger.read() as session:
        if session.get(RightsHolder, holder_id) is None:
            raise NotFoundError(f"no rights-holder {holder_id}")
    return holder_id


def _upload_schema() -> dict[str, Any]:
    schema = UploadFields.model_json_schema()
    schema["properties"] = {FILE_FIELD: {
        "type": "array", "items": {"type": "string", "format": "binary"},
        "description": f"The audio files (at most {MAX_FILES}), each within [web] "
                       "max_upload_mb."}, **schema["properties"]}
    schema["required"] = [FILE_FIELD]
    return schema


def upload_openapi() -> dict[str, Any]:
    """The request body of an upload, for the OpenAPI document (the route reads the stream
    itself, so FastAPI cannot describe it)."""
    return {"requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": _upload_schema()}}}}


def csrf_in_header(request: Request) -> None:
    """A browser session's upload carries its CSRF token in the header (or, from the
    console's form, the ``csrf_token`` query parameter): taking it from the form would read
    the whole body before the limits apply."""
    if ("authorization" not in request.headers and SESSION_COOKIE in request.cookies
            and CSRF_HEADER not in request.headers
            and "csrf_token" not in request.query_params):
        raise HTTPException(403, f"send the CSRF token in the {CSRF_HEADER} header with an "
                                 "upload")


@router.post(
    "/recordings", response_model=ImportResult, status_code=201, tags=["recordings"],
    dependencies=[Depends(csrf_in_header)], openapi_extra=upload_openapi(),
    responses={**_FORBIDDEN,
               400: {"description": "A file is not audio (named), or a field is wrong; "
                                    "nothing was registered."},
               404: {"description": "No such rights-holder, or not the caller's."},
               409: {"description": "Every file is audio the holder already registered."},
               413: {"description": "A file is larger than [web] max_upload_mb."},
               415: {"description": "Not multipart/form-data."},
               422: {"description": "A metadata field is malformed (a date, an ISRC)."}})
async def upload(request: Request, principal: Uploader) -> ImportResult:  # async: it streams
    """Register recordings (as ``copyguard catalog import``): upload audio files in the
    ``files`` field, with metadata fields that override their tags. Each file is decoded and
    fingerprinted in the request (a few seconds for a three-minute track; for many or long
    files, ``POST /imports`` answers at once and shows its progress); one that is not audio
    registers nothing. Admins and operators name the ``holder_id``; a holder account
    registers for its own holder. Audio the holder already registered is a ``duplicate``
    (409 when every file is one); audio another holder registered is imported as a
    ``conflict`` that both holders see."""
    app = state_of(request).app
    received = await receive_upload(request, principal)
    try:
        items = await to_thread.run_sync(_register_now, app, principal, received)
    finally:
        await to_thread.run_sync(shutil.rmtree, received.directory, True)
    if all_duplicates(items):
        raise ConflictError("; ".join(f"{item.file}: {item.message}" for item in items))
    return ImportResult(items=items)


def _register_now(app: App, principal: Principal, received: ReceivedUpload) -> list[ImportedFile]:
    try:
        return register_uploads(app, principal.actor, received.holder_id, received.fields,
                                received.files)
    except Refused as exc:
        raise HTTPException(400, str(exc)) from None


@dataclass(frozen=True)
class ReceivedUpload:
    """An upload received in full: its files on disk under ``directory``, its fields checked
    and whose recordings they will be."""

    directory: Path
    holder_id: int
    fields: UploadFields
    files: list[UploadedFile]


async def receive_upload(request: Request, principal: Principal) -> ReceivedUpload:
    """Stream a multipart upload into a new directory under ``<home>/uploads`` (removed again
    if anything is wrong with it: the caller removes it when done with the files)."""
    app = state_of(request).app
    boundary = boundary_of(request)
    limit_mb = app.settings.web.max_upload_mb
    directory = Path(tempfile.mkdtemp(prefix="upload-", dir=uploads_directory(app)))
    try:
        sink = MultipartSink(boundary, directory, limit_mb * 1024 * 1024)
        await receive(request.stream(), sink, limit_mb * 1024 * 1024, limit_mb)
        fields = _fields(sink.fields)
        holder_id = await to_thread.run_sync(_upload_holder, app, principal, fields.holder_id)
        if not sink.files:
            raise HTTPException(400, f"no audio in the upload: send the recordings as files "
                                     f"of the {FILE_FIELD!r} field")
        if len(sink.files) > 1 and (fields.title or fields.isrc):
            raise HTTPException(400, "title and isrc name one recording: upload one file "
                                     "with them")
        fields.metadata()  # a malformed ISRC or territory is refused before anything waits
    except BaseException:
        await to_thread.run_sync(shutil.rmtree, directory, True)
        raise
    return ReceivedUpload(directory, holder_id, fields,
                          [UploadedFile(f.name, f.path) for f in sink.files])
