"""Catalog ingest: register rights-holders' recordings in the ledger and the search index.

Each file is decoded and fingerprinted outside any transaction (slow, and it must not hold the
SQLite write lock), then registered in one short transaction of its own: the recording row, its
fingerprints and the audit entry commit together, so an interrupted import loses nothing already
committed and repeats nothing. The ledger keeps every fingerprint, so the search index is a cache:
``sync_index`` rebuilds whatever a crash left out of it. A database index
(:class:`~fingerprints.sql_index.SqlFingerprintIndex`) is written in the ledger transaction
itself, so its rows and the ledger's commit together. The same audio registered twice by one
holder is reported as a duplicate and skipped; registered by another holder it is imported and
recorded as an ownership conflict that both can see.

This module takes its session factory, index and limits as arguments; it reads no settings.
"""

from __future__ import annotations

import hashlib
import io
import shutil
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from fingerprints.audio import Audio
from fingerprints.chroma import chromaprint_fingerprint, chromaprint_similarity
from fingerprints.decode import decode_file
from fingerprints.errors import DecodeError, FingerprintError, IndexFormatError
from fingerprints.index import FingerprintIndex
from fingerprints.landmarks import DEFAULT_PARAMS, Landmarks, extract_landmarks
from fingerprints.metadata import RecordingMetadata, read_tags
from fingerprints.reference import ReferenceStore
from fingerprints.search import SearchIndex
from fingerprints.sql_index import SqlFingerprintIndex
from ledger import audit
from ledger.clock import Clock
from ledger.errors import NotFoundError
from ledger.models import (
    OwnershipConflict,
    Recording,
    RecordingFingerprint,
    RecordingStatus,
)

CHROMAPRINT = "chromaprint"
LANDMARKS = "landmarks-v1"
# Only recordings whose durations differ by less than this fraction are compared for duplicates.
_DURATION_TOLERANCE = 0.1


@dataclass(frozen=True)
class CatalogStore:
    """Where a catalog's fingerprints are searched (the index) and its audio kept."""

    index: SearchIndex
    references: ReferenceStore


@dataclass(frozen=True)
class DecodeLimits:
    timeout_seconds: float = 120.0
    memory_limit_mb: int = 1024
    max_seconds: float = 1800.0


class ImportStatus(StrEnum):
    IMPORTED = "imported"
    DUPLICATE = "duplicate"  # already registered by the same holder: skipped
    CONFLICT = "conflict"  # imported, but another holder registered the same audio
    FAILED = "failed"  # could not be decoded: reported and skipped


@dataclass(frozen=True)
class ImportOutcome:
    path: Path
    status: ImportStatus
    message: str
    recording_id: int | None = None
    other_recording_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class PreparedRecording:
    """A decoded and fingerprinted file, ready to register."""

    path: Path
    sha256: str
    audio: Audio
    chromaprint: np.ndarray
    landmarks: Landmarks

    @property
    def duration(self) -> float:
        return self.audio.duration


def encode_landmarks(landmarks: Landmarks) -> bytes:
    buffer = io.BytesIO()
    arrays: dict[str, Any] = {f.name: np.asarray(getattr(landmarks, f.name))
                              for f in fields(landmarks)}
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def decode_landmarks(data: bytes) -> Landmarks:
    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        # Fields added since a fingerprint was stored keep their defaults.
        values = {f.name: arrays[f.name] for f in fields(Landmarks) if f.name in arrays}
    return Landmarks(**{name: (value.item() if value.ndim == 0 else value)
                        for name, value in values.items()})


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def collect_audio_files(paths: Iterable[Path], extensions: Sequence[str]) -> list[Path]:
    """Files named directly, and the files with a known ending found below named folders."""
    wanted = {ext.lower() for ext in extensions}
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*")
                                if p.is_file() and p.suffix.lower() in wanted))
        else:
            found.append(path)
    return found


def prepare(path: Path, limits: DecodeLimits) -> PreparedRecording:
    """Decode and fingerprint one file. Raises ``DecodeError`` for a file that is not audio."""
    if not path.is_file():
        raise DecodeError(f"{path}: no such file")
    audio = decode_file(path, max_seconds=limits.max_seconds, timeout=limits.timeout_seconds,
                        memory_limit_mb=limits.memory_limit_mb)
    return PreparedRecording(path=path, sha256=file_sha256(path), audio=audio,
                             chromaprint=chromaprint_fingerprint(audio),
                             landmarks=extract_landmarks(audio))


def _same_audio(session: Session, prepared: PreparedRecording,
                threshold: float) -> list[tuple[Recording, float]]:
    low = prepared.duration * (1 - _DURATION_TOLERANCE)
    high = prepared.duration * (1 + _DURATION_TOLERANCE)
    rows = session.execute(
        select(Recording, RecordingFingerprint.data)
        .join(RecordingFingerprint, RecordingFingerprint.recording_id == Recording.id)
        .where(Recording.status == RecordingStatus.ACTIVE,
               RecordingFingerprint.kind == CHROMAPRINT,
               (Recording.source_sha256 == prepared.sha256)
               | Recording.duration.between(low, high))
    ).all()
    matches = []
    for recording, data in rows:
        similarity = (1.0 if recording.source_sha256 == prepared.sha256 else
                      chromaprint_similarity(prepared.chromaprint,
                                             np.frombuffer(data, dtype=np.uint32)))
        if similarity >= threshold:
            matches.append((recording, similarity))
    return matches


def register(session: Session, clock: Clock, store: CatalogStore, *, holder_id: int,
             prepared: PreparedRecording, metadata: RecordingMetadata, actor: str,
             duplicate_similarity: float) -> ImportOutcome:
    """Register a prepared file for a holder, inside the caller's transaction."""
    index = store.index
    same = _same_audio(session, prepared, duplicate_similarity)
    own = [(rec, sim) for rec, sim in same if rec.holder_id == holder_id]
    if own:
        rec, sim = own[0]
        return ImportOutcome(prepared.path, ImportStatus.DUPLICATE,
                             f"same audio as recording {rec.id} ({rec.title!r}, similarity "
                             f"{sim:.2f}); not imported again", other_recording_ids=(rec.id,))
    recording = Recording(
        holder_id=holder_id, title=metadata.title or prepared.path.stem, artist=metadata.artist,
        isrc=metadata.isrc, registration_number=metadata.registration_number,
        registration_date=metadata.registration_date, publication_date=metadata.publication_date,
        registration_status=metadata.registration_status, chain_of_title=metadata.chain_of_title,
        territories=list(metadata.territories) or ["WORLD"], duration=prepared.duration,
        source_name=prepared.path.name, source_sha256=prepared.sha256,
        reference_audio=store.references.put(prepared.sha256, prepared.audio),
        status=RecordingStatus.ACTIVE, created_at=clock.now(),
    )
    recording.fingerprints = [
        RecordingFingerprint(kind=CHROMAPRINT,
                             data=np.asarray(prepared.chromaprint, dtype=np.uint32).tobytes()),
        RecordingFingerprint(kind=LANDMARKS, scheme=prepared.landmarks.scheme,
                             data=encode_landmarks(prepared.landmarks)),
    ]
    session.add(recording)
    session.flush()
    audit.append(session, clock, actor=actor, action="recording.registered",
                 entity_type="recording", entity_id=recording.id, holder_id=holder_id,
                 details={"title": recording.title, "artist": recording.artist,
                          "isrc": recording.isrc, "source_name": recording.source_name,
                          "source_sha256": recording.source_sha256,
                          "duration": round(recording.duration, 3)})
    others = []
    for other, similarity in same:  # all of another holder: ownership conflicts
        conflict = OwnershipConflict(recording_id=recording.id, other_recording_id=other.id,
                                     similarity=similarity, detected_at=clock.now())
        session.add(conflict)
        session.flush()
        for party in (holder_id, other.holder_id):
            audit.append(session, clock, actor=actor, action="ownership.conflict",
                         entity_type="ownership_conflict", entity_id=conflict.id,
                         holder_id=party,
                         details={"recording_id": recording.id, "other_recording_id": other.id,
                                  "similarity": round(similarity, 3)})
        others.append(other.id)
    with _joined(index, session):
        index.add(recording.id, prepared.landmarks, prepared.duration)
    if others:
        return ImportOutcome(prepared.path, ImportStatus.CONFLICT,
                             f"imported as recording {recording.id}, but the same audio is "
                             f"registered by another rights-holder (recording(s) "
                             f"{', '.join(map(str, others))}): ownership conflict recorded",
                             recording.id, tuple(others))
    return ImportOutcome(prepared.path, ImportStatus.IMPORTED,
                         f"imported as recording {recording.id}", recording.id)


Transaction = Callable[[], AbstractContextManager[Session]]
Progress = Callable[[ImportOutcome], None]


def import_files(files: Sequence[Path], *, holder_id: int, transaction: Transaction, clock: Clock,
                 store: CatalogStore, limits: DecodeLimits, duplicate_similarity: float,
                 actor: str, overrides: dict[str, RecordingMetadata] | None = None,
                 on_outcome: Progress | None = None, save_every: int = 50) -> list[ImportOutcome]:
    """Import ``files`` one transaction each; a file that fails is reported, the rest go on."""
    overrides = overrides or {}
    outcomes = []
    for number, path in enumerate(files, start=1):
        try:
            prepared = prepare(path, limits)
        except FingerprintError as exc:
            outcome = ImportOutcome(path, ImportStatus.FAILED, str(exc))
        else:
            metadata = read_tags(path)
            override = overrides.get(str(path)) or overrides.get(path.name)
            if override is not None:
                metadata = metadata.overridden_by(override)
            with transaction() as session:
                outcome = register(session, clock, store, holder_id=holder_id,
                                   prepared=prepared, metadata=metadata, actor=actor,
                                   duplicate_similarity=duplicate_similarity)
        outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)
        if number % save_every == 0:
            store.index.save()
    store.index.save()
    return outcomes


def _joined(index: SearchIndex, session: Session) -> AbstractContextManager[object]:
    """A database index writes inside the session's transaction (the same database), so an
    import or removal commits in the ledger and the index together or in neither."""
    if isinstance(index, SqlFingerprintIndex):
        return index.joined(session.connection())
    return nullcontext()


def remove_recording(session: Session, clock: Clock, index: SearchIndex, *,
                     recording_id: int, actor: str) -> Recording:
    """Withdraw a recording: its row stays (detections refer to it), the index forgets it."""
    recording = session.get(Recording, recording_id)
    if recording is None or recording.status != RecordingStatus.ACTIVE:
        raise NotFoundError(f"no active recording with id {recording_id}")
    recording.status = RecordingStatus.REMOVED
    recording.removed_at = clock.now()
    audit.append(session, clock, actor=actor, action="recording.removed",
                 entity_type="recording", entity_id=recording.id, holder_id=recording.holder_id,
                 details={"title": recording.title})
    session.flush()
    with _joined(index, session):
        index.remove(recording.id)
    index.save()
    return recording


@dataclass(frozen=True)
class SyncReport:
    added: int
    removed: int
    refreshed: int = 0
    unrefreshable: int = 0  # stale fingerprints whose reference audio is missing


def stale_fingerprints(session: Session, scheme: str = DEFAULT_PARAMS.scheme) -> list[int]:
    """Active recordings whose landmark fingerprint was made by another scheme."""
    return list(session.execute(
        select(Recording.id)
        .join(RecordingFingerprint, RecordingFingerprint.recording_id == Recording.id)
        .where(Recording.status == RecordingStatus.ACTIVE,
               RecordingFingerprint.kind == LANDMARKS,
               (RecordingFingerprint.scheme != scheme) | RecordingFingerprint.scheme.is_(None))
        .order_by(Recording.id)).scalars())


def refingerprint(transaction: Transaction, references: ReferenceStore,
                  recording_ids: Sequence[int],
                  on_progress: Callable[[int, int], None] | None = None) -> tuple[int, int]:
    """Compute the landmark fingerprints of ``recording_ids`` again from their reference audio
    (after the scheme changed); one transaction each. Returns (refreshed, missing audio)."""
    refreshed = missing = 0
    for number, recording_id in enumerate(recording_ids, start=1):
        with transaction() as session:
            recording = session.get(Recording, recording_id)
            reference = recording.reference_audio if recording else None
        if reference is None:
            missing += 1
        else:
            try:
                landmarks = extract_landmarks(references.load(reference))
            except FingerprintError:
                missing += 1
            else:
                with transaction() as session:
                    row = session.execute(select(RecordingFingerprint).where(
                        RecordingFingerprint.recording_id == recording_id,
                        RecordingFingerprint.kind == LANDMARKS)).scalar_one()
                    row.data, row.scheme = encode_landmarks(landmarks), landmarks.scheme
                refreshed += 1
        if on_progress is not None:
            on_progress(number, len(recording_ids))
    return refreshed, missing


def sync_index(session: Session, index: SearchIndex,
               scheme: str = DEFAULT_PARAMS.scheme) -> SyncReport:
    """Make the index hold exactly the active recordings, from the fingerprints in the ledger
    (those of the current ``scheme``: see ``refingerprint`` for the others)."""
    # The index first, then the ledger: a database index shared with other workers may gain a
    # recording in between (with its ledger rows, in one commit), which then looks missing and
    # is added again, rather than looking extra and being removed.
    present = set(index.recording_ids())
    active = set(session.execute(
        select(Recording.id).where(Recording.status == RecordingStatus.ACTIVE)).scalars())
    extra = present - active
    for recording_id in extra:
        index.remove(recording_id)
    missing = sorted(active - present)
    added = 0
    for start in range(0, len(missing), 200):
        chunk = missing[start:start + 200]
        rows = session.execute(
            select(Recording.id, Recording.duration, RecordingFingerprint.data)
            .join(RecordingFingerprint, RecordingFingerprint.recording_id == Recording.id)
            .where(Recording.id.in_(chunk), RecordingFingerprint.kind == LANDMARKS,
                   RecordingFingerprint.scheme == scheme)).all()
        for recording_id, duration, data in rows:
            index.add(recording_id, decode_landmarks(data), duration)
            added += 1
    if extra or added:
        index.save()
    return SyncReport(added=added, removed=len(extra))


def open_synced_index(directory: Path, transaction: Transaction, references: ReferenceStore,
                      *, rebuild: bool = False,
                      on_progress: Callable[[int, int], None] | None = None
                      ) -> tuple[FingerprintIndex, SyncReport]:
    """The search index in ``directory``, in line with the ledger: fingerprints of an older
    scheme are computed again from the reference audio, an index of another scheme (or a
    damaged one, or any with ``rebuild``) is built afresh from the ledger."""
    refreshed, unrefreshable = _refresh_stale(transaction, references, rebuild, on_progress)
    try:
        index = FingerprintIndex.open(directory)
        usable = not rebuild and index.scheme in (None, DEFAULT_PARAMS.scheme)
    except IndexFormatError:
        usable = False
    if not usable:
        shutil.rmtree(directory, ignore_errors=True)
        index = FingerprintIndex.open(directory)
    with transaction() as session:
        report = sync_index(session, index)
    return index, SyncReport(report.added, report.removed, refreshed, unrefreshable)


def open_synced_sql_index(engine: Engine, transaction: Transaction, references: ReferenceStore,
                          *, rebuild: bool = False,
                          on_progress: Callable[[int, int], None] | None = None
                          ) -> tuple[SqlFingerprintIndex, SyncReport]:
    """The database index in ``engine`` (the ledger's PostgreSQL), in line with the ledger like
    :func:`open_synced_index`. Workers starting together take turns (an advisory lock), so the
    first one adds what is missing and the others find nothing left to do."""
    index = SqlFingerprintIndex(engine)
    with index.maintenance_lock():
        refreshed, unrefreshable = _refresh_stale(transaction, references, rebuild, on_progress)
        try:
            usable = not rebuild and index.scheme in (None, DEFAULT_PARAMS.scheme)
        except IndexFormatError:
            usable = False
        if not usable:
            index.clear()
        with transaction() as session:
            report = sync_index(session, index)
    return index, SyncReport(report.added, report.removed, refreshed, unrefreshable)


def _refresh_stale(transaction: Transaction, references: ReferenceStore, rebuild: bool,
                   on_progress: Callable[[int, int], None] | None) -> tuple[int, int]:
    """Fingerprint again the recordings of an older scheme (all active ones for a rebuild)."""
    with transaction() as session:
        stale = stale_fingerprints(session)
        if rebuild:
            stale = list(session.execute(select(Recording.id).where(
                Recording.status == RecordingStatus.ACTIVE).order_by(Recording.id)).scalars())
    return refingerprint(transaction, references, stale, on_progress)
