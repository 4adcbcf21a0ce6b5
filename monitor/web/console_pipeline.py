"""Console pages of the monitoring pipeline: detections (the captured copy playing beside the
catalog's reference, and the match picture) and, for operators, the targets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from pydantic import ValidationError

from config.settings import TargetSettings
from fingerprints.decode import decode_file
from ledger.errors import LedgerError
from ledger.models import Capture, Detection, Recording, Role
from ledger.targets import add_target, list_targets, remove_managed_target
from monitor.views.detections import (
    DetectionDetail,
    count_detections,
    detection_detail,
    detection_filters,
    list_detections,
)
from monitor.views.targets import target_view
from monitor.web.console import Me, go, render, same_origin
from monitor.web.scope import RowId, check_visible, holder_filter
from monitor.web.security import state_of

router = APIRouter(include_in_schema=False)
PAGE = 50
PICTURE_SECONDS = 20.0
PICTURE_RATE = 11025  # enough for the picture's bands, a quarter of the decoding of 44.1 kHz


@router.get("/detections", response_class=HTMLResponse)
def detections(request: Request, me: Me, status: str | None = None,
               page: Annotated[int, Query(ge=1, le=10_000)] = 1) -> Response:
    app = state_of(request).app
    where = [*detection_filters(status=status or None), *holder_filter(me, Detection.holder_id)]
    with app.ledger.read() as session:
        rows = list_detections(session, where, limit=PAGE, offset=(page - 1) * PAGE)
        total = count_detections(session, where)
    return render(request, "detections.html", me, title="Detections", rows=rows, total=total,
                  status=status, page=page, pages=max((total + PAGE - 1) // PAGE, 1))


@router.get("/detections/{detection_id}", response_class=HTMLResponse)
def detection(request: Request, me: Me, detection_id: RowId) -> Response:
    app = state_of(request).app
    with app.ledger.read() as session:
        shown = detection_detail(session, detection_id)
        check_visible(me, shown.holder_id, f"detection {detection_id}")
        recording = session.get(Recording, shown.recording_id)
        has_reference = bool(recording and recording.reference_audio)
    return render(request, "detection.html", me, title=f"Detection {detection_id}", d=shown,
                  has_reference=has_reference)


def _visible(request: Request, me: Me, detection_id: int) -> tuple[DetectionDetail, Path, str]:
    """The detection (404 unless the principal may see it), its reference audio file and
    its capture's SHA-256."""
    app = state_of(request).app
    with app.ledger.read() as session:
        shown = detection_detail(session, detection_id)
        check_visible(me, shown.holder_id, f"detection {detection_id}")
        recording = session.get(Recording, shown.recording_id)
        capture = session.get(Capture, shown.capture_id)
        if recording is None or not recording.reference_audio or capture is None:
            raise HTTPException(404, "the catalog kept no reference audio for this recording")
        return (shown, app.references.directory / recording.reference_audio, capture.sha256)


@router.get("/detections/{detection_id}/reference.flac")
def reference_audio(request: Request, me: Me, detection_id: RowId) -> Response:
    """The catalog's reference recording (as the fingerprinter heard it: mono FLAC)."""
    _, path, _ = _visible(request, me, detection_id)
    if not path.exists():
        raise HTTPException(404, "the reference audio file is missing")
    return FileResponse(path, media_type="audio/flac")


@router.get("/detections/{detection_id}/picture.png")
def match_picture(request: Request, me: Me, detection_id: RowId) -> Response:
    """The match picture: the copy's and the reference's aligned spectrograms and their
    similarity, as in the dossier."""
    from litigation.match_picture import render_match_picture  # matplotlib: on use only

    app = state_of(request).app
    shown, path, sha256 = _visible(request, me, detection_id)
    with app.evidence() as evidence:
        blob = evidence.blob_path(sha256)
    if not blob.exists() or not path.exists():
        raise HTTPException(404, "the captured or the reference audio is not kept")
    limits = app.decode_limits
    query = decode_file(blob, sample_rate=PICTURE_RATE,
                        max_seconds=shown.query_start + PICTURE_SECONDS + 1.0,
                        timeout=limits.timeout_seconds, memory_limit_mb=limits.memory_limit_mb)
    reference = app.references.load(str(path.relative_to(app.references.directory)))
    try:
        png = render_match_picture(
            query, reference, query_start=shown.query_start, query_end=shown.query_end,
            ref_start=shown.ref_start, speed=shown.speed, pitch_semitones=shown.pitch_semitones,
            max_seconds=PICTURE_SECONDS, title=f"detection {detection_id}: {shown.title}")
    except ValueError as exc:
        raise HTTPException(404, f"no picture: {exc}") from exc
    return Response(png, media_type="image/png",
                    headers={"Cache-Control": "private, max-age=3600"})


def _staff(me: Me) -> None:
    if me.role not in (Role.ADMIN, Role.OPERATOR):
        raise HTTPException(403, "targets are for operators")


@router.get("/targets", response_class=HTMLResponse, dependencies=[Depends(_staff)])
def targets(request: Request, me: Me) -> Response:
    app = state_of(request).app
    with app.ledger.read() as session:
        rows = [target_view(t) for t in list_targets(session)]
    return render(request, "targets.html", me, title="Targets", rows=rows)


@router.post("/targets", dependencies=[Depends(_staff), Depends(same_origin)])
def target_add(request: Request, me: Me, name: Annotated[str, Form(max_length=100)],
               url: Annotated[str, Form(max_length=2000)],
               schedule: Annotated[str, Form(max_length=100)] = "every 6h",
               allow_private: Annotated[bool, Form()] = False) -> Response:
    app = state_of(request).app
    try:
        spec = TargetSettings(name=name, start_urls=(url,), schedule=schedule,
                              allow_private=allow_private)
    except ValidationError as exc:
        problems = "; ".join(e["msg"] for e in exc.errors())
        return go("/targets", f"Not added: {problems}", error=True)
    try:
        with app.ledger.write() as session:
            add_target(session, app.clock, spec, app.settings.crawl, actor=me.actor)
    except LedgerError as exc:
        return go("/targets", f"Not added: {exc}", error=True)
    return go("/targets", f"Target {name} added; the daemon crawls it on its schedule.")


@router.post("/targets/{name}/remove", dependencies=[Depends(_staff), Depends(same_origin)])
def target_remove(request: Request, me: Me, name: str) -> Response:
    app = state_of(request).app
    try:
        with app.ledger.write() as session:
            remove_managed_target(session, app.clock, name, actor=me.actor)
    except LedgerError as exc:
        return go("/targets", f"Not removed: {exc}", error=True)
    return go("/targets", f"Target {name} removed (its captures and detections are kept).")
