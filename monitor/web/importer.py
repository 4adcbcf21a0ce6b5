"""Registering uploaded recordings: decoding and fingerprinting each file, then registering
them all, for the API's synchronous upload and for the background importer that works through
the queued ``catalog_imports`` of ``POST /imports`` (and of the console's upload form), so a
browser can watch an upload of many long files progress file by file.

Nothing is registered unless every file decodes. The importer is one thread of the web server;
it claims an import under a lease renewed after each file, gives it back (queued) when the
server stops between files, and takes over one whose server died. Files wait under
``<home>/uploads`` until their import finishes; what a killed server left there unreferenced is
removed when the next one starts.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from fingerprints.catalog import ImportStatus, PreparedRecording, prepare, register
from fingerprints.errors import FingerprintError
from fingerprints.metadata import RecordingMetadata, normalise_isrc, parse_territories, read_tags
from ledger import imports
from ledger.claims import worker_name
from ledger.errors import LedgerError
from ledger.models import CatalogImport, Recording
from monitor.app import App
from monitor.views.recordings import RecordingDetail, recording_detail

log = logging.getLogger(__name__)

# One catalog change at a time in this process: the search index object is not thread-safe,
# and an upload's duplicate check must see the upload before it.
CATALOG_CHANGES = threading.Lock()
LEASE = timedelta(minutes=10)  # renewed after every file; one file decodes within [decoding]
STALE_UPLOAD_SECONDS = 3600.0  # an unreferenced upload directory this old is a killed request's


class UploadFields(BaseModel):
    """The form fields beside the files; they override the files' own tags (as the CSV of
    ``copyguard catalog import --metadata`` does). Empty fields are ignored."""

    model_config = ConfigDict(extra="forbid")

    holder_id: int | None = Field(None, ge=1, le=2**31 - 1,
                                  description="Whose recordings: required of admins and "
                                              "operators; a holder account uploads for its "
                                              "own.")
    title: str | None = Field(None, max_length=500, description="One file only; default: "
                                                                "its title tag, else its name.")
    artist: str | None = Field(None, max_length=500)
    isrc: str | None = Field(None, max_length=20, description="One file only.")
    registration_number: str | None = Field(None, max_length=64)
    registration_date: date | None = None
    publication_date: date | None = None
    territories: str | None = Field(None, max_length=2000, description="ISO 3166-1 alpha-2 "
                                    "codes separated by spaces or commas, or WORLD (default).")
    registration_status: Literal["registered", "pending"] | None = None
    chain_of_title: str | None = Field(None, max_length=20_000)

    def metadata(self) -> RecordingMetadata:
        """Raises ``MetadataError`` (400) for a malformed ISRC or territory."""
        return RecordingMetadata(
            title=self.title, artist=self.artist,
            isrc=normalise_isrc(self.isrc) if self.isrc else None,
            registration_number=self.registration_number,
            registration_date=self.registration_date, publication_date=self.publication_date,
            territories=parse_territories(self.territories or ""),
            registration_status=self.registration_status, chain_of_title=self.chain_of_title)


class ImportedFile(BaseModel):
    """What became of one uploaded file."""

    file: str = Field(description="The file's name, as registered.")
    status: Literal["imported", "duplicate", "conflict"] = Field(
        description="imported; duplicate: the holder already registered the same audio (not "
                    "imported again); conflict: imported, but another holder registered the "
                    "same audio (an ownership conflict both see).")
    message: str
    recording: RecordingDetail | None = Field(description="The recording registered; null "
                                                          "for a duplicate.")
    other_recording_ids: list[int] = Field(description="The recording(s) with the same audio.")


class Refused(Exception):
    """Nothing was registered, for a reason the uploader can act on (a file that is not
    audio, a field that names one recording given with many files)."""


@dataclass(frozen=True)
class UploadedFile:
    name: str  # as uploaded (made safe), what the recording's file name will be
    path: Path


Progress = Callable[[int, str | None], None]  # files prepared so far, the one being prepared


def _prepared(upload: UploadedFile, app: App) -> PreparedRecording:
    try:
        return prepare(upload.path, app.decode_limits)
    except FingerprintError as exc:
        reason = str(exc).replace(str(upload.path), upload.name)
        raise Refused(f"{upload.name}: not registered, as it cannot be decoded as audio "
                      f"({reason}); nothing was registered") from None


def register_uploads(app: App, actor: str, holder_id: int, fields: UploadFields,
                     files: Sequence[UploadedFile],
                     progress: Progress | None = None) -> list[ImportedFile]:
    """Decode and fingerprint every file (within the ``[decoding]`` limits), then register
    them for ``holder_id``, each registration audited under ``actor``. Raises ``Refused``
    (nothing registered) for a file that is not audio. The upload's fields were checked when
    it was received (``api_catalog.receive_upload``)."""
    given = fields.metadata()
    ready = []
    for done, upload in enumerate(files):
        if progress is not None:
            progress(done, upload.name)
        ready.append((upload, _prepared(upload, app)))
    if progress is not None:
        progress(len(files), None)
    metadata = [read_tags(upload.path).overridden_by(given) for upload, _ in ready]
    items = []
    with CATALOG_CHANGES:
        store = app.catalog_store  # its index opened before the write transactions need it
        try:
            for (upload, prepared), tags in zip(ready, metadata, strict=True):
                with app.ledger.write() as session:
                    outcome = register(
                        session, app.clock, store, holder_id=holder_id, prepared=prepared,
                        metadata=tags, actor=actor,
                        duplicate_similarity=app.settings.catalog.duplicate_similarity)
                    recording = (session.get(Recording, outcome.recording_id)
                                 if outcome.recording_id is not None else None)
                    items.append(ImportedFile(
                        file=upload.name, status=outcome.status.value,
                        message=outcome.message,
                        recording=recording_detail(session, recording) if recording else None,
                        other_recording_ids=list(outcome.other_recording_ids)))
        finally:
            store.index.save()
    return items


def all_duplicates(items: Sequence[ImportedFile]) -> bool:
    return all(item.status == ImportStatus.DUPLICATE for item in items)


def uploads_directory(app: App) -> Path:
    folder = app.settings.home / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Stopped(Exception):
    """The importer is stopping, or another server took the import over."""


class Importer:
    """The web server's background importer: one thread working through queued imports."""

    def __init__(self, app: App, *, poll_seconds: float = 2.0) -> None:
        self.app = app
        self.poll_seconds = poll_seconds
        self.worker = worker_name()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="importer", daemon=True)

    def start(self) -> None:
        self._remove_stale_uploads()
        self._thread.start()

    def wake(self) -> None:
        """An import was queued: look now rather than at the next poll."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                worked = self._one()
            except Exception:  # the database is away, say: the next poll tries again
                log.exception("the importer failed; trying again")
                worked = False
            if not worked:
                self._wake.wait(self.poll_seconds)
                self._wake.clear()

    def _one(self) -> bool:
        with self.app.ledger.read() as session:
            if not imports.anything_to_claim(session):
                return False
        with self.app.ledger.write() as session:
            row = imports.claim_import(session, self.app.clock, worker=self.worker,
                                       lease=LEASE)
            if row is None:
                return False
            job = _Job.of(row)
        log.info("importing upload %d: %d file(s) for holder %d", job.id, len(job.files),
                 job.holder_id)
        self._work(job)
        return True

    def _work(self, job: _Job) -> None:
        folder = uploads_directory(self.app) / job.directory
        files = [UploadedFile(name, folder / stored) for name, stored in job.files]
        try:
            fields = UploadFields.model_validate(job.fields)
            items = register_uploads(self.app, job.actor, job.holder_id, fields, files,
                                     lambda done, current: self._advance(job, done, current))
        except Stopped:
            self._give_back(job)
            return
        except (Refused, LedgerError, FingerprintError, ValueError) as exc:
            self._finish(job, None, str(exc))
        except Exception as exc:  # a bug: the uploader is told, the log has the rest
            log.exception("upload %d failed", job.id)
            self._finish(job, None, f"the import failed ({type(exc).__name__}); the server's "
                                    "log has the details")
        else:
            self._finish(job, [item.model_dump(mode="json") for item in items], None)

    def _advance(self, job: _Job, done: int, current: str | None) -> None:
        if self._stop.is_set() and current is not None:
            raise Stopped
        with self.app.ledger.write() as session:
            if not imports.advance(session, self.app.clock, job.id, worker=self.worker,
                                   lease=LEASE, files_done=done, current_file=current):
                raise Stopped

    def _give_back(self, job: _Job) -> None:
        """Stopping between files: queued again, for the next start (its files stay)."""
        with self.app.ledger.write() as session:
            imports.give_back(session, job.id, worker=self.worker)
        log.info("upload %d given back for the next start", job.id)

    def _finish(self, job: _Job, items: list[dict[str, object]] | None,
                error: str | None) -> None:
        with self.app.ledger.write() as session:
            finished = imports.finish(session, self.app.clock, job.id, worker=self.worker,
                                      items=items, error=error)
        if finished:
            shutil.rmtree(uploads_directory(self.app) / job.directory, ignore_errors=True)
            log.info("upload %d finished: %s", job.id, error or "registered")

    def _remove_stale_uploads(self) -> None:
        """Upload directories no unfinished import needs, left by a request or server killed
        on the way (an hour old at least, so a request receiving now keeps its own)."""
        folder = uploads_directory(self.app)
        with self.app.ledger.read() as session:
            keep = imports.directories_in_use(session)
        for entry in folder.iterdir():
            if entry.name in keep or time.time() - entry.stat().st_mtime < STALE_UPLOAD_SECONDS:
                continue
            shutil.rmtree(entry, ignore_errors=True)
            log.info("removed %s, an upload nothing refers to", entry)


@dataclass(frozen=True)
class _Job:
    """What the importer needs of a claimed row, outside its transaction."""

    id: int
    holder_id: int
    actor: str
    directory: str
    files: tuple[tuple[str, str], ...]
    fields: dict[str, object]

    @classmethod
    def of(cls, row: CatalogImport) -> _Job:
        return cls(row.id, row.holder_id, row.actor, row.directory,
                   tuple((f["name"], f["stored"]) for f in row.files), dict(row.fields))
