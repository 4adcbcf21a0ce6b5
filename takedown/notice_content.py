"""Build the :class:`~takedown.content.NoticeContent` of a notice from its ledger rows.

The holder becomes the complaining party and its signatory ("/s/ name" as the electronic
signature); each recording named by an item becomes a :class:`~takedown.content.Work`; each
:class:`~ledger.models.NoticeItem` with its capture and detection becomes an
:class:`~takedown.content.InfringingItem` (where in the file the work is heard, and which part of
the work that is). Empty holder data stays empty here: :func:`takedown.requirements.check_complete`
names what the law needs and is missing, so the holder can fix exactly that.

``ValueError`` from the content classes (a malformed ISRC, say) is the holder's data too; the
drafting stage records it like a missing element. Reads no settings.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from ledger.errors import NotFoundError
from ledger.models import Capture, Detection, Notice, Recording, RightsHolder
from takedown.content import (
    ComplainingParty,
    InfringingItem,
    Jurisdiction,
    NoticeContent,
    Recipient,
    Segment,
    Signatory,
    Work,
)

# The DSA asks for a substantiated explanation of why the material is illegal (Art. 16(2)(a));
# until holders word their own, this one states what copyguard established.
DSA_EXPLANATION = (
    "The files listed are copies of sound recordings in which {holder} holds the exclusive "
    "rights of reproduction and of making available to the public (Directive 2001/29/EC, "
    "Arts. 2 and 3(2); Directive 2006/115/EC). Each was identified by comparing its audio "
    "fingerprint with {holder}'s reference recording, as detailed per item, and is made "
    "available without {holder}'s authorisation.")


def party_of(holder: RightsHolder) -> ComplainingParty:
    name = (holder.signatory_name or "").strip()
    signatory = Signatory(name=name, capacity=(holder.signatory_title or "").strip(),
                          signature=f"/s/ {name}" if name else "")
    return ComplainingParty(name=holder.name, email=holder.email, address=holder.address,
                            phone=holder.phone, signatory=signatory)


def work_of(recording: Recording) -> Work:
    return Work(title=recording.title, catalogue_id=f"copyguard recording {recording.id}",
                artist=recording.artist, isrc=recording.isrc or None,
                registration_number=recording.registration_number or None,
                registration_date=recording.registration_date)


def item_of(capture: Capture, detection: Detection, work: Work, url: str) -> InfringingItem:
    heard = Segment(detection.query_start, max(detection.query_start, detection.query_end))
    length = (heard.end - heard.start) * detection.speed
    return InfringingItem(
        url=url, page_url=capture.page_url, first_seen=capture.fetched_at, sha256=capture.sha256,
        warc_file=capture.warc_file, warc_record_id=capture.warc_record_id or "",
        infringing_segment=heard,
        work_segment=Segment(detection.ref_start, detection.ref_start + length),
        confidence=detection.confidence, work=work, speed=detection.speed,
        pitch_semitones=detection.pitch_semitones)


def content_for(session: Session, notice: Notice, *, on: dt.date | None = None) -> NoticeContent:
    """The content of ``notice`` dated ``on`` (default: the day its batch window closed)."""
    holder = session.get(RightsHolder, notice.holder_id)
    if holder is None:
        raise NotFoundError(f"notice {notice.id}: rights-holder {notice.holder_id} not found")
    works: dict[int, Work] = {}
    items: list[InfringingItem] = []
    for row in notice.items:
        detection = row.detection
        recording = session.get(Recording, detection.recording_id)
        capture = session.get(Capture, row.capture_id)
        if recording is None or capture is None:
            raise NotFoundError(f"notice {notice.id}: item {row.id} lost its recording or "
                                "capture")
        work = works.get(recording.id)
        if work is None:
            work = works[recording.id] = work_of(recording)
        items.append(item_of(capture, detection, work, row.url))
    jurisdiction = Jurisdiction(notice.jurisdiction)
    explanation = (DSA_EXPLANATION.format(holder=holder.name)
                   if jurisdiction is Jurisdiction.DSA else None)
    return NoticeContent(
        jurisdiction=jurisdiction, reference=notice.reference,
        date=on or notice.send_after.astimezone(dt.UTC).date(),
        complaining_party=party_of(holder),
        recipient=Recipient(name=notice.recipient_name, role=notice.recipient_role,
                            email=notice.recipient_email, form_url=notice.recipient_form_url),
        works=tuple(works.values()), items=tuple(items), explanation=explanation)
