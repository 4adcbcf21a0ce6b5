"""Catalog recordings as ``copyguard catalog list --json`` prints them and the API answers them:
the query (filtered by WHERE clauses the caller composes) and the JSON shapes, the detail with
its registration, fingerprints and ownership conflicts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from fingerprints.catalog import LANDMARKS
from fingerprints.landmarks import DEFAULT_PARAMS
from ledger.models import (
    OwnershipConflict,
    Recording,
    RecordingFingerprint,
    RecordingStatus,
    RightsHolder,
)
from litigation.facts import registration_of


class RecordingSummary(BaseModel):
    """A catalog recording: what it is, whose, and whether it is still matched."""

    id: int
    title: str
    artist: str | None
    isrc: str | None
    holder: str = Field(description="The rights-holder's name.")
    duration: float = Field(description="Seconds.")
    file: str = Field(description="The name of the file it was registered from.")
    registration_number: str | None = Field(description="The copyright registration's number.")
    registration_date: date | None
    territories: list[str] = Field(description="ISO 3166-1 alpha-2 codes, or WORLD.")
    status: str = Field(description="active (matched) or removed (withdrawn, kept for the "
                                    "history).")


class FingerprintState(BaseModel):
    """Whether the recording can be found in captures."""

    kinds: list[str] = Field(description="The fingerprints the ledger keeps for it.")
    landmarks: Literal["current", "stale", "missing"] = Field(
        description="current: made by this version's scheme and searched; stale: an older "
                    "scheme, computed again from the reference audio at the next start or "
                    "`copyguard catalog reindex`; missing: none stored.")
    reference_audio: bool = Field(description="Whether its decoded audio is kept (needed to "
                                              "fingerprint it again after an upgrade).")
    searchable: bool = Field(description="Active with current landmarks: identify finds it.")


class OwnershipConflictRef(BaseModel):
    """The same audio registered by another rights-holder (both holders see the conflict)."""

    id: int
    status: str
    similarity: float
    other_recording_id: int
    other_holder: str = Field(description="The other rights-holder's name.")
    detected_at: str = Field(description="ISO 8601, UTC.")


class RecordingDetail(RecordingSummary):
    """One recording with its registration facts, its fingerprints and any dispute over who
    owns it."""

    holder_id: int
    publication_date: date | None
    registration: str = Field(description="registered (number and date known, or said so), "
                                          "pending (application filed) or unregistered: what "
                                          "a lawsuit over it may claim.")
    registration_status: str | None = Field(description="As imported: registered, pending or "
                                                        "none.")
    chain_of_title: str | None = Field(description="How the holder came to own it.")
    source_sha256: str = Field(description="SHA-256 of the file it was registered from.")
    created_at: str = Field(description="ISO 8601, UTC.")
    removed_at: str | None = Field(description="ISO 8601, UTC; null: active.")
    fingerprints: FingerprintState
    conflicts: list[OwnershipConflictRef]


def recording_filters(*, holder_id: int | None = None,
                      include_removed: bool = False) -> list[ColumnElement[bool]]:
    """WHERE clauses for :func:`recording_rows`: the holder's id, and active ones only unless
    ``include_removed``."""
    where: list[ColumnElement[bool]] = []
    if holder_id is not None:
        where.append(Recording.holder_id == holder_id)
    if not include_removed:
        where.append(Recording.status == RecordingStatus.ACTIVE)
    return where


def _query(where: Sequence[ColumnElement[bool]]) -> Select[Recording, str]:
    return select(Recording, RightsHolder.name).join(RightsHolder).where(*where)


def recording_rows(session: Session, where: Sequence[ColumnElement[bool]], *,
                   newest_first: bool = False, limit: int | None = None,
                   offset: int = 0) -> list[tuple[Recording, str]]:
    """The recordings matching ``where`` with their holder's name, by id (``newest_first``:
    the latest registered first); ``limit`` None: all of them."""
    order = Recording.id.desc() if newest_first else Recording.id
    query = _query(where).order_by(order).offset(offset).limit(limit)
    return [(recording, name) for recording, name in session.execute(query)]


def count_recordings(session: Session, where: Sequence[ColumnElement[bool]]) -> int:
    inner = _query(where).with_only_columns(Recording.id).subquery()
    return int(session.scalar(select(func.count()).select_from(inner)) or 0)


def recording_summary(recording: Recording, holder: str) -> RecordingSummary:
    return RecordingSummary(
        id=recording.id, title=recording.title, artist=recording.artist, isrc=recording.isrc,
        holder=holder, duration=round(recording.duration, 3), file=recording.source_name,
        registration_number=recording.registration_number,
        registration_date=recording.registration_date, territories=recording.territories,
        status=recording.status)


def _fingerprints(session: Session, recording: Recording) -> FingerprintState:
    schemes = dict(session.execute(
        select(RecordingFingerprint.kind, RecordingFingerprint.scheme)
        .where(RecordingFingerprint.recording_id == recording.id)
        .order_by(RecordingFingerprint.kind)).all())
    landmarks: Literal["current", "stale", "missing"] = (
        "missing" if LANDMARKS not in schemes else
        "current" if schemes[LANDMARKS] == DEFAULT_PARAMS.scheme else "stale")
    return FingerprintState(
        kinds=list(schemes), landmarks=landmarks,
        reference_audio=recording.reference_audio is not None,
        searchable=recording.status == RecordingStatus.ACTIVE and landmarks == "current")


def _conflicts(session: Session, recording: Recording) -> list[OwnershipConflictRef]:
    rows = session.execute(select(OwnershipConflict).where(or_(
        OwnershipConflict.recording_id == recording.id,
        OwnershipConflict.other_recording_id == recording.id)).order_by(OwnershipConflict.id)
    ).scalars()
    found = []
    for conflict in rows:
        other = (conflict.other_recording if conflict.recording_id == recording.id
                 else conflict.recording)
        found.append(OwnershipConflictRef(
            id=conflict.id, status=conflict.status, similarity=round(conflict.similarity, 3),
            other_recording_id=other.id, other_holder=other.holder.name,
            detected_at=conflict.detected_at.isoformat()))
    return found


def recording_detail(session: Session, recording: Recording) -> RecordingDetail:
    summary = recording_summary(recording, recording.holder.name)
    return RecordingDetail(
        **summary.model_dump(), holder_id=recording.holder_id,
        publication_date=recording.publication_date, registration=registration_of(recording),
        registration_status=recording.registration_status,
        chain_of_title=recording.chain_of_title, source_sha256=recording.source_sha256,
        created_at=recording.created_at.isoformat(),
        removed_at=recording.removed_at.isoformat() if recording.removed_at else None,
        fingerprints=_fingerprints(session, recording),
        conflicts=_conflicts(session, recording))
