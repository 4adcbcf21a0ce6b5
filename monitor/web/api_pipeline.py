"""The monitoring pipeline over the REST API: targets, detections, captures (with their audio)
and the daemon's status.

Targets and the status are the operator's (``admin`` and ``operator``; the other roles get 403).
Detections and captures are read by every role, a ``holder`` or ``legal`` account only its own
rights-holder's: a detection of another holder, or a capture without a detection of the caller's
holder, answers 404 exactly as a missing one does. The JSON shapes are those of the CLI's
``--json`` output (``monitor.views``); changes go through ``ledger.targets``, which appends them
to the audit log under the caller's name.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel

from config.settings import TargetSettings
from ledger.accounts import Principal
from ledger.errors import NotFoundError
from ledger.models import Detection, Role
from ledger.targets import add_target, get_target, list_targets, remove_managed_target
from monitor.app import App
from monitor.daemon.status import status as read_status
from monitor.views.captures import CaptureView, capture_holders, capture_view, get_capture
from monitor.views.detections import (
    DetectionDetail,
    DetectionView,
    count_detections,
    detection_detail,
    detection_filters,
    list_detections,
)
from monitor.views.targets import TargetView, target_view
from monitor.web.scope import RowId, check_visible, holder_filter
from monitor.web.security import authenticate, require, state_of

router = APIRouter()


def _app(request: Request) -> App:
    return state_of(request).app


AppOf = Annotated[App, Depends(_app)]
Anyone = Annotated[Principal, Depends(authenticate)]
Staff = Annotated[Principal, Depends(require(Role.ADMIN, Role.OPERATOR))]
Limit = Annotated[int, Query(ge=1, le=500, description="At most this many items.")]
Offset = Annotated[int, Query(ge=0, le=2**31 - 1, description="Skip this many items first.")]
DetectionStatusName = Literal["new", "review", "rejected", "noticed", "licensed"]

# What the audio endpoint may answer as: an audio type as declared, else plain bytes (never a
# type a browser would render, such as text/html, whatever the site claimed).
_AUDIO_TYPE = re.compile(r"^audio/[a-z0-9][a-z0-9.+-]{0,100}$")


class TargetList(BaseModel):
    items: list[TargetView]
    total: int


class DetectionList(BaseModel):
    items: list[DetectionView]
    total: int


class DaemonState(BaseModel):
    running: bool
    worker: str | None
    started_at: str | None
    heartbeat_at: str | None


class JobState(BaseModel):
    job: str
    stage: str
    status: str | None
    runs: int
    failures: int
    failures_in_a_row: int
    last_started_at: str | None
    last_finished_at: str | None
    last_seconds: float | None
    summary: dict[str, Any] | None
    error: str | None
    retry_after: str | None


class WorkerState(BaseModel):
    worker: str | None
    stage: str
    running: bool
    started_at: str | None
    heartbeat_at: str | None
    summary: dict[str, Any] | None


class QueueDepth(BaseModel):
    captures: dict[str, int]
    detections: dict[str, int]
    notices: dict[str, int]
    cases: dict[str, int]
    captures_pending: int
    queued_runs: dict[str, dict[str, int]]


class Status(BaseModel):
    daemon: DaemonState
    jobs: list[JobState]
    workers: list[WorkerState]
    queues: QueueDepth
    next_runs: dict[str, str | None]


# -- targets -------------------------------------------------------------------------------


@router.get("/targets", response_model=TargetList, tags=["targets"])
def targets_list(app: AppOf, _: Staff, limit: Limit = 100, offset: Offset = 0) -> TargetList:
    """The sites monitored (from the config file and added by hand), newest first."""
    with app.ledger.read() as session:
        rows = sorted(list_targets(session), key=lambda t: (t.created_at, t.id), reverse=True)
        return TargetList(items=[target_view(t) for t in rows[offset:offset + limit]],
                          total=len(rows))


@router.get("/targets/{name}", response_model=TargetView, tags=["targets"])
def targets_get(name: str, app: AppOf, _: Staff) -> TargetView:
    """One target by name (404 if there is none, or it was removed)."""
    with app.ledger.read() as session:
        return target_view(get_target(session, name))


@router.post("/targets", response_model=TargetView, status_code=201, tags=["targets"])
def targets_add(spec: TargetSettings, app: AppOf, principal: Staff) -> TargetView:
    """Add a site to monitor, as `copyguard targets add` does; unset crawl values take
    `[crawl]`'s defaults. `allow_private` lets the target's own hosts be private or loopback
    addresses (the operator's explicit choice; every other host stays guarded). 409 if a
    target of that name exists; a removed one is revived with its history."""
    with app.ledger.write() as session:
        return target_view(add_target(session, app.clock, spec, app.settings.crawl,
                                      actor=principal.actor))


@router.delete("/targets/{name}", status_code=204, tags=["targets"])
def targets_remove(name: str, app: AppOf, principal: Staff) -> Response:
    """Stop monitoring a site; its captures and detections are kept. A target from the config
    file is refused (409): delete its `[[targets]]` table there."""
    with app.ledger.write() as session:
        remove_managed_target(session, app.clock, name, actor=principal.actor)
    return Response(status_code=204)


# -- detections ----------------------------------------------------------------------------


@router.get("/detections", response_model=DetectionList, tags=["detections"])
def detections_list(
    app: AppOf, principal: Anyone, limit: Limit = 100, offset: Offset = 0,
    status: Annotated[DetectionStatusName | None, Query(
        description="Only detections in this status.")] = None,
    target: Annotated[str | None, Query(
        max_length=100, description="Only this target's (by name).")] = None,
    holder_id: Annotated[int | None, Query(
        ge=1, le=2**31 - 1, description="Only this rights-holder's (a holder or legal "
                                         "account sees only its own in any case).")] = None,
    since: Annotated[datetime | None, Query(
        description="Only detections found at or after this time (ISO 8601; UTC if no "
                    "offset is given).")] = None,
) -> DetectionList:
    """Catalog recordings found on the web, newest first, as `copyguard detections list`."""
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    where = [*detection_filters(target=target, holder_id=holder_id, status=status, since=since),
             *holder_filter(principal, Detection.holder_id)]
    with app.ledger.read() as session:
        return DetectionList(items=list_detections(session, where, limit=limit, offset=offset),
                             total=count_detections(session, where))


@router.get("/detections/{detection_id}", response_model=DetectionDetail,
            tags=["detections"])
def detections_get(detection_id: RowId, app: AppOf, principal: Anyone) -> DetectionDetail:
    """One detection: the capture's URL and page, the recording matched, where in each the
    match lies, its confidence, speed and pitch change, status and notice."""
    with app.ledger.read() as session:
        detail = detection_detail(session, detection_id)
    check_visible(principal, detail.holder_id, f"detection {detection_id}")
    return detail


# -- captures ------------------------------------------------------------------------------


def _visible_capture(app: App, principal: Principal, capture_id: int) -> CaptureView:
    """The capture as the principal may see it (a scoped account: only with a detection of
    its holder, and only those detections listed), else the not-found error."""
    with app.ledger.read() as session:
        capture = get_capture(session, capture_id)
        if principal.scope is not None and principal.scope not in capture_holders(
                session, capture_id):
            raise NotFoundError(f"no capture {capture_id}")
        return capture_view(session, capture, holder_id=principal.scope)


@router.get("/captures/{capture_id}", response_model=CaptureView, tags=["captures"])
def captures_get(capture_id: RowId, app: AppOf, principal: Anyone) -> CaptureView:
    """One capture, as `copyguard captures show --json`: where and when it was fetched, how it
    was found, HTTP status and headers, size, SHA-256, server address, its WARC records,
    identification and detections."""
    return _visible_capture(app, principal, capture_id)


@router.get("/captures/{capture_id}/audio", tags=["captures"], response_class=FileResponse,
            responses={200: {"content": {"audio/*": {}, "application/octet-stream": {}},
                             "description": "The bytes as captured."},
                       404: {"description": "No such capture, or its bytes are not kept."}})
def captures_audio(capture_id: RowId, app: AppOf, principal: Anyone) -> FileResponse:
    """The captured media's bytes from the evidence store, for the console's player (byte
    ranges work). Served as the audio type the site declared, else
    `application/octet-stream`: never as a type a browser would render."""
    view = _visible_capture(app, principal, capture_id)
    with app.evidence() as store:
        path = store.blob_path(view.sha256)
    if not path.is_file():
        raise NotFoundError(f"the bytes of capture {capture_id} are not kept")
    return FileResponse(path, media_type=_audio_type(view), content_disposition_type="inline",
                        headers={"Content-Disposition": "inline"})


def _audio_type(view: CaptureView) -> str:
    declared = view.content_type or next(
        (value for name, value in view.headers if name.lower() == "content-type"), "")
    media = declared.split(";")[0].strip().lower()
    return media if _AUDIO_TYPE.match(media) else "application/octet-stream"


# -- status --------------------------------------------------------------------------------


@router.get("/status", response_model=Status, tags=["status"])
def status(app: AppOf, _: Staff) -> Status:
    """The daemon and each of its jobs (last run, errors, backoff, next run), the workers and
    the depth of every queue, as `copyguard status --json`."""
    return Status.model_validate(read_status(app))
