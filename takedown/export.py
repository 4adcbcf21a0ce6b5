"""Sent notices in the shapes other systems take.

- :func:`lumen_records`: one JSON object per notice in the shape the Lumen database
  (lumendatabase.org) records takedown notices: ``type``, ``title``, ``date_sent``,
  ``action_taken``, ``jurisdictions``, the entities by role (``principal`` — the rights-holder,
  ``sender`` — who signed, ``recipient``, ``target`` — the site), and ``works`` each with its
  ``copyrighted_urls`` and ``infringing_urls``.
- :func:`url_list`: the infringing URLs one per line, as search engines' bulk removal forms
  take them (with :func:`url_rows` for a CSV naming the work and the notice of each).

Only notices that went out (sent, unconfirmed, or with an outcome) are exported; the caller
scopes them to a holder. Reads no settings.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.models import (
    Detection,
    Notice,
    NoticeItem,
    NoticeStatus,
    Recording,
    RightsHolder,
    Target,
)

EXPORTED = frozenset({*NoticeStatus.SENT_STATES, *NoticeStatus.OUTCOMES, NoticeStatus.COUNTERED})
_LUMEN_TYPES = {"dmca": "DMCA", "dsa": "Other", "prc": "Other"}
_JURISDICTIONS = {"dmca": ["US"], "dsa": ["EU"], "prc": ["CN"]}
_ACTIONS = {NoticeStatus.REMOVED: "Yes", NoticeStatus.PARTIALLY_REMOVED: "Partial",
            NoticeStatus.IGNORED: "No"}


@dataclass(frozen=True)
class UrlRow:
    url: str
    work: str
    isrc: str | None
    notice: str  # reference
    sent_at: str | None
    status: str  # the URL's own: listed, removed, still-up


def exported_notices(session: Session, *, holder_id: int | None = None) -> list[Notice]:
    query = select(Notice).where(Notice.status.in_(EXPORTED)).order_by(Notice.sent_at,
                                                                        Notice.id)
    if holder_id is not None:
        query = query.where(Notice.holder_id == holder_id)
    return list(session.execute(query).scalars())


def _items(session: Session, notice: Notice) -> list[tuple[NoticeItem, Recording]]:
    return [(item, recording) for item, recording in session.execute(
        select(NoticeItem, Recording)
        .join(Detection, Detection.id == NoticeItem.detection_id)
        .join(Recording, Recording.id == Detection.recording_id)
        .where(NoticeItem.notice_id == notice.id).order_by(NoticeItem.id)).all()]


def lumen_record(session: Session, notice: Notice) -> dict[str, Any]:
    holder = session.get(RightsHolder, notice.holder_id)
    assert holder is not None
    target = session.get(Target, notice.target_id) if notice.target_id else None
    works: dict[int, dict[str, Any]] = {}
    for item, recording in _items(session, notice):
        work = works.setdefault(recording.id, {
            "description": " - ".join(p for p in (recording.title, recording.artist) if p),
            "kind": "Sound recording",
            "isrc": recording.isrc,
            "registration_number": recording.registration_number,
            "copyrighted_urls": [],
            "infringing_urls": []})
        if item.url not in [u["url"] for u in work["infringing_urls"]]:
            work["infringing_urls"].append({"url": item.url})
    site = urlsplit(notice.items[0].url).hostname if notice.items else None
    return {
        "type": _LUMEN_TYPES[notice.jurisdiction],
        "title": notice.subject,
        "date_sent": notice.sent_at.isoformat() if notice.sent_at else None,
        "action_taken": _ACTIONS.get(notice.status, "Unspecified"),
        "jurisdictions": _JURISDICTIONS[notice.jurisdiction],
        "reference": notice.reference,
        "entities": [
            {"role": "principal", "name": holder.name, "email": holder.email},
            {"role": "sender", "name": holder.signatory_name or holder.name,
             "capacity": holder.signatory_title, "email": holder.email},
            {"role": "recipient", "name": notice.recipient_name,
             "email": notice.recipient_email, "url": notice.recipient_form_url},
            {"role": "target", "name": target.name if target else site, "url": site},
        ],
        "works": list(works.values()),
    }


def lumen_records(session: Session, *, holder_id: int | None = None) -> list[dict[str, Any]]:
    return [lumen_record(session, n) for n in exported_notices(session, holder_id=holder_id)]


def url_rows(session: Session, *, holder_id: int | None = None,
             still_up_only: bool = False) -> list[UrlRow]:
    rows = []
    for notice in exported_notices(session, holder_id=holder_id):
        for item, recording in _items(session, notice):
            if still_up_only and item.status == "removed":
                continue
            rows.append(UrlRow(item.url, recording.title, recording.isrc, notice.reference,
                               notice.sent_at.isoformat() if notice.sent_at else None,
                               item.status))
    return rows


def url_list(rows: Iterable[UrlRow]) -> str:
    """One URL per line, each once, in the order first noticed."""
    seen: dict[str, None] = {}
    for row in rows:
        seen.setdefault(row.url)
    return "".join(f"{url}\n" for url in seen)
