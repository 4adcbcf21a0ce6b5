"""Detections as ``copyguard detections list --json`` prints them and the API answers them:
the query (newest first, filtered by WHERE clauses the caller composes) and the JSON shapes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from ledger.errors import NotFoundError
from ledger.models import Capture, Detection, NoticeItem, Recording, RightsHolder, Target


class DetectionView(BaseModel):
    """A catalog recording found in a capture: where, how confidently, how altered."""

    id: int
    capture_id: int
    recording_id: int
    title: str = Field(description="The recording's title.")
    holder: str = Field(description="The rights-holder's name.")
    target: str = Field(description="The target the capture was crawled from.")
    url: str = Field(description="The captured audio's URL.")
    page_url: str | None = Field(description="The page the audio was found on.")
    confidence: float
    query_start: float = Field(description="Seconds into the capture where the match starts.")
    query_end: float = Field(description="Seconds into the capture where the match ends.")
    ref_start: float = Field(description="Seconds into the recording the match starts at.")
    speed: float = Field(description="Playback speed against the recording (1.0: unchanged).")
    pitch_semitones: float = Field(description="Pitch shift against the recording.")
    status: str = Field(description="new, review, rejected, noticed or licensed.")
    detected_at: str = Field(description="ISO 8601, UTC.")


class DetectionDetail(DetectionView):
    """One detection with what a reviewer needs beside it: the holder's id, the recording's
    artist, ISRC and length, the matcher's score, when the audio was fetched, and the notice
    that lists the detection (if any)."""

    holder_id: int
    artist: str | None
    isrc: str | None
    recording_duration: float = Field(description="The recording's length in seconds.")
    score: int = Field(description="The matcher's vote count behind the confidence.")
    fetched_at: str = Field(description="When the capture was fetched (ISO 8601, UTC).")
    page_title: str | None = Field(description="The title of the page the audio was found "
                                               "on, as the site served it (plain text).")
    notice_id: int | None = Field(description="The notice that lists this detection.")


def detection_filters(*, target: str | None = None, holder: str | None = None,
                      holder_id: int | None = None, status: str | None = None,
                      since: datetime | None = None) -> list[ColumnElement[bool]]:
    """WHERE clauses for :func:`list_detections`: the target's and holder's names (as the
    CLI takes them), the holder's id (as the API does), the status, detected at or after
    ``since``."""
    where: list[ColumnElement[bool]] = []
    if target:
        where.append(Target.name == target)
    if holder:
        where.append(RightsHolder.name == holder)
    if holder_id is not None:
        where.append(Detection.holder_id == holder_id)
    if status:
        where.append(Detection.status == status)
    if since is not None:
        where.append(Detection.detected_at >= since)
    return where


def _query(where: Sequence[ColumnElement[bool]]
           ) -> Select[Detection, Capture, Recording, RightsHolder, Target]:
    return (select(Detection, Capture, Recording, RightsHolder, Target)
            .join(Capture, Detection.capture_id == Capture.id)
            .join(Recording, Detection.recording_id == Recording.id)
            .join(RightsHolder, Detection.holder_id == RightsHolder.id)
            .join(Target, Detection.target_id == Target.id)
            .where(*where))


def list_detections(session: Session, where: Sequence[ColumnElement[bool]], *,
                    limit: int | None = None, offset: int = 0) -> list[DetectionView]:
    """The detections matching ``where``, newest first; ``limit`` None: all of them."""
    query = _query(where).order_by(Detection.id.desc()).offset(offset).limit(limit)
    return [detection_view(*row) for row in session.execute(query).all()]


def count_detections(session: Session, where: Sequence[ColumnElement[bool]]) -> int:
    inner = _query(where).with_only_columns(Detection.id).subquery()
    return int(session.scalar(select(func.count()).select_from(inner)) or 0)


def detection_view(d: Detection, c: Capture, rec: Recording, h: RightsHolder,
                   t: Target) -> DetectionView:
    return DetectionView(**_fields(d, c, rec, h, t))


def _fields(d: Detection, c: Capture, rec: Recording, h: RightsHolder,
            t: Target) -> dict[str, Any]:
    return {"id": d.id, "capture_id": c.id, "recording_id": rec.id, "title": rec.title,
            "holder": h.name, "target": t.name, "url": c.url, "page_url": c.page_url,
            "confidence": round(d.confidence, 4), "query_start": round(d.query_start, 2),
            "query_end": round(d.query_end, 2), "ref_start": round(d.ref_start, 2),
            "speed": d.speed, "pitch_semitones": d.pitch_semitones, "status": d.status,
            "detected_at": d.detected_at.isoformat()}


def detection_detail(session: Session, detection_id: int) -> DetectionDetail:
    """One detection (any holder's: the caller checks who may see it), or NotFoundError."""
    row = session.execute(_query([Detection.id == detection_id])).one_or_none()
    if row is None:
        raise NotFoundError(f"no detection {detection_id}")
    d, c, rec, h, t = row
    notice_id = session.scalar(select(NoticeItem.notice_id)
                               .where(NoticeItem.detection_id == d.id))
    return DetectionDetail(**_fields(d, c, rec, h, t), holder_id=d.holder_id,
                           artist=rec.artist, isrc=rec.isrc, recording_duration=rec.duration,
                           score=d.score, fetched_at=c.fetched_at.isoformat(),
                           page_title=c.page_title, notice_id=notice_id)
