"""A capture as ``copyguard captures show --json`` prints it and the API answers it."""

from __future__ import annotations

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.errors import NotFoundError
from ledger.models import Capture, Detection, Target


class WarcRef(BaseModel):
    """Where a WARC record is: file (under the evidence directory), byte offset and length."""

    file: str
    offset: int
    length: int


class CaptureView(BaseModel):
    """One audio resource fetched from the web, with the evidence of what was served."""

    id: int
    target: str | None
    url: str
    page_url: str | None = Field(description="The page the audio was found on.")
    page_title: str | None = Field(description="That page's title as the site served it "
                                               "(plain text: never render it as HTML).")
    via: str = Field(description="How it was found: link, media tag, Open Graph, JSON-LD, "
                                 "feed enclosure, sitemap, HLS, download.")
    fetched_at: str = Field(description="ISO 8601, UTC.")
    http_status: int
    content_type: str | None
    size: int
    sha256: str = Field(description="SHA-256 of the bytes served.")
    ip_address: str | None = Field(description="The server's address the bytes came from.")
    warc: WarcRef = Field(description="The WARC record of the response.")
    page_warc: WarcRef | None = Field(description="The WARC record of the page.")
    identify_status: str
    error: str | None
    audio_seconds: float | None
    detections: list[int] = Field(description="Ids of the capture's detections.")
    headers: list[list[str]] = Field(description="The response headers, in order.")


def get_capture(session: Session, capture_id: int) -> Capture:
    capture = session.get(Capture, capture_id)
    if capture is None:
        raise NotFoundError(f"no capture {capture_id}")
    return capture


def capture_holders(session: Session, capture_id: int) -> set[int]:
    """The rights-holders with a detection in this capture."""
    return set(session.scalars(select(Detection.holder_id)
                               .where(Detection.capture_id == capture_id)))


def capture_view(session: Session, capture: Capture, *,
                 holder_id: int | None = None) -> CaptureView:
    """The capture; with ``holder_id``, only that holder's detections are listed."""
    target = session.get(Target, capture.target_id)
    query = select(Detection.id).where(Detection.capture_id == capture.id)
    if holder_id is not None:
        query = query.where(Detection.holder_id == holder_id)
    return CaptureView(
        id=capture.id, target=target.name if target else None, url=capture.url,
        page_url=capture.page_url, page_title=capture.page_title, via=capture.via,
        fetched_at=capture.fetched_at.isoformat(),
        http_status=capture.http_status, content_type=capture.content_type, size=capture.size,
        sha256=capture.sha256, ip_address=capture.ip_address,
        warc=WarcRef(file=capture.warc_file, offset=capture.warc_offset,
                     length=capture.warc_length),
        page_warc=None if capture.page_warc_file is None else WarcRef(
            file=capture.page_warc_file, offset=capture.page_warc_offset or 0,
            length=capture.page_warc_length or 0),
        identify_status=capture.identify_status, error=capture.error,
        audio_seconds=capture.audio_seconds,
        detections=list(session.scalars(query.order_by(Detection.id))),
        headers=capture.headers)
