"""The demonstration behind ``copyguard demo`` (and ``make run``) on the embedded default.

It registers the rights-holder "Demo Records" with a catalog of synthesised tracks, writes the
demo site (monitor.demo_site: altered copies of the tracks in every embedding style, next to
unrelated audio, broken files and traps), points the target "demo-site" at the site served on
127.0.0.1, and, once the command has crawled and identified, reads back from the ledger what
copyguard made of each placement. Everything is kept under the data directory and reused by
the next run: the catalog files and recordings (by their bytes), the site, the target and its
URL state, so a second run crawls only what changed (nothing) and prints the same report.

Reads ``[crawl] max_audio_mb`` (the site's oversized file is made just bigger than it) and the
crawl defaults that fill in the target's row.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import soundfile as sf
from sqlalchemy import select
from sqlalchemy.orm import Session

from config.settings import TargetSettings
from fingerprints.catalog import ImportOutcome, ImportStatus, import_files
from fingerprints.metadata import RecordingMetadata
from fingerprints.synth import synthesize_track, write_wav
from ledger import audit
from ledger.errors import NotFoundError
from ledger.holders import add_holder, get_holder
from ledger.models import (
    Capture,
    Crawl,
    Detection,
    IdentifyStatus,
    Recording,
    RecordingStatus,
    Target,
)
from ledger.targets import add_target, target_fields
from monitor.app import App
from monitor.demo_site import MANIFEST, TRACKS_NEEDED, DemoSite, Placement, build_site

HOLDER = "Demo Records"
# The demo catalog was published, then registered within three months (17 U.S.C. 412): its
# works are eligible for statutory damages whenever they were copied.
DEMO_PUBLISHED = date(2024, 11, 1)
DEMO_REGISTERED = date(2025, 1, 15)
TARGET = "demo-site"
RATE = 22050
TRACK_SECONDS = 30.0
SEED = 200  # track n is synthesised from SEED + n: apart from other demos' and tests' seeds
_TITLES = ("Harbour Lights", "Copper Sky", "Night Ferry", "Paper Lanterns", "Glass Orchard",
           "Slow Comet", "Iron Meadow", "Salt Road", "Velvet Engine", "Tin Moon", "Blue Quarry",
           "Last Tram")
# Links on the site's index page to hosts other than the target's own: each must be refused
# by the address guard ({port} is the demo server's port).
# (No "localhost" link: it is refused too, but Scrapy's robots.txt middleware logs a traceback
# for the refused lookup of its robots.txt, which would bury the demo's output.)
PRIVATE_LINKS = ("http://10.255.255.1/stolen.mp3", "http://127.0.0.2:{port}/media/x.mp3",
                 "http://2130706433:{port}/media/y.mp3")
DEPTH = 4  # enough for the page only the sitemap lists; cuts the endless calendar short
MAX_PAGES = 40
_MIB = 1024 * 1024
# A crawl problem's kind (monitor.crawl.spider) -> a placement outcome (monitor.demo_site).
_PROBLEMS = {"refused": "refused", "too_large": "too-large", "robots_disallowed": "robots"}


def title_of(track: int) -> str:
    return _TITLES[track] if track < len(_TITLES) else f"Demo Track {track + 1}"


# --- the catalog ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Catalog:
    holder_id: int
    files: tuple[Path, ...]  # the tracks, in the order demo_site wants them
    recordings: tuple[int | None, ...]  # the recording of each file (None: its import failed)
    imported: int  # imported by this call; the others were already in the catalog

    def tracks(self) -> list[np.ndarray]:
        """The tracks' samples as imported (read back from the files, so the site's copies are
        made from exactly the audio the catalog holds)."""
        return [sf.read(path, dtype="float32")[0] for path in self.files]


def _ensure_holder(app: App) -> int:
    with app.ledger.write() as session:
        try:
            return get_holder(session, HOLDER).id
        except NotFoundError:
            holder = add_holder(session, app.clock, name=HOLDER, email="legal@demo-records.example",
                                address="1 Demo Street, Springfield", phone="+1 555 0100",
                                signatory_name="Dana Demo", signatory_title="Head of Rights",
                                notice_policy="auto", actor=app.actor)
            return holder.id


def build_catalog(app: App, folder: Path,
                  on_outcome: Callable[[ImportOutcome], None] | None = None) -> Catalog:
    """Synthesise the :data:`TRACKS_NEEDED` demo tracks into ``folder`` (once) and import those
    whose bytes are not yet an active recording of "Demo Records"."""
    holder_id = _ensure_holder(app)
    folder.mkdir(parents=True, exist_ok=True)
    files, overrides = [], {}
    for track in range(TRACKS_NEEDED):
        number, title = track + 1, title_of(track)
        path = folder / f"{number:02d} {title}.wav"
        if not path.exists():
            part = path.with_name(path.name + ".part.wav")  # a file cut short is never imported
            write_wav(part, synthesize_track(seed=SEED + number, seconds=TRACK_SECONDS,
                                             sample_rate=RATE), RATE)
            part.replace(path)
        files.append(path)
        overrides[path.name] = RecordingMetadata(
            title=title, artist="The Demo Ensemble", isrc=f"XXDEM26{number:05d}",
            registration_number=f"SR0000{number:05d}", registration_date=DEMO_REGISTERED,
            publication_date=DEMO_PUBLISHED, territories=("WORLD",),
            chain_of_title="Written and recorded by The Demo Ensemble; all rights assigned to "
                           "Demo Records (agreement DR-2024-01)")
    digests = [hashlib.sha256(path.read_bytes()).hexdigest() for path in files]
    known = _recordings_by_sha256(app, holder_id)
    missing = [path for path, digest in zip(files, digests, strict=True) if digest not in known]
    imported = 0
    if missing:
        outcomes = import_files(
            missing, holder_id=holder_id, transaction=app.ledger.write, clock=app.clock,
            store=app.catalog_store, limits=app.decode_limits, actor=app.actor,
            duplicate_similarity=app.settings.catalog.duplicate_similarity,
            overrides=overrides, on_outcome=on_outcome)
        imported = sum(o.status in (ImportStatus.IMPORTED, ImportStatus.CONFLICT)
                       for o in outcomes)
        known = _recordings_by_sha256(app, holder_id)
    return Catalog(holder_id, tuple(files), tuple(known.get(d) for d in digests), imported)


def _recordings_by_sha256(app: App, holder_id: int) -> dict[str, int]:
    with app.ledger.read() as session:
        rows = session.execute(select(Recording.source_sha256, Recording.id).where(
            Recording.holder_id == holder_id, Recording.status == RecordingStatus.ACTIVE))
        return {digest: recording_id for digest, recording_id in rows.all()}


# --- the site and its target ----------------------------------------------------------------

def oversized_bytes(app: App) -> int:
    """The size of the site's too-large file: just over the crawler's audio cap."""
    return int(app.settings.crawl.max_audio_mb * _MIB) + _MIB


def build_demo_site(app: App, root: Path, catalog: Catalog) -> tuple[DemoSite, bool]:
    """The demo site under ``root`` for the catalog's tracks; True if it was reused as it was."""
    manifest = root / MANIFEST
    before = manifest.stat().st_mtime_ns if manifest.exists() else None
    site = build_site(root, catalog.tracks(), RATE, oversized_bytes=oversized_bytes(app),
                      private_links=PRIVATE_LINKS)
    return site, before is not None and manifest.stat().st_mtime_ns == before


def previous_port(app: App) -> int | None:
    """The port the demo target's start URL names: the demo server takes it again if it is
    free, so the site's URLs, and with them the crawler's URL state, stay the same."""
    with app.ledger.read() as session:
        row = _target_row(session)
        if row is None or not row.start_urls:
            return None
        try:
            return urlsplit(row.start_urls[0]).port
        except ValueError:
            return None


def refresh_target(app: App, start_url: str, notice_form_url: str = "") -> Target:
    """Add the target "demo-site" crawling ``start_url``, or bring the existing one in line
    (the start URL changes with the server's port); returns it detached from its session.

    ledger.targets has no function to change a target, so this does it the way
    ``sync_config_targets`` does: set the fields, and log a ``target.changed`` entry."""
    spec = TargetSettings(name=TARGET, start_urls=(start_url,), allow_private=True,
                          delay_seconds=0.0, depth=DEPTH, max_pages=MAX_PAGES,
                          notice_form_url=notice_form_url)
    crawl = app.settings.crawl
    with app.ledger.write() as session:
        row = _target_row(session)
        if row is None or row.removed_at is not None:
            row = add_target(session, app.clock, spec, crawl, actor=app.actor)
        else:
            changed = {key: value for key, value in target_fields(spec, crawl).items()
                       if getattr(row, key) != value}
            for key, value in changed.items():
                setattr(row, key, value)
            if changed:
                audit.append(session, app.clock, actor=app.actor, action="target.changed",
                             entity_type="target", entity_id=row.id,
                             details={"name": TARGET, **changed})
        session.flush()
        session.expunge(row)
    return row


def _target_row(session: Session) -> Target | None:
    return session.execute(select(Target).where(Target.name == TARGET)).scalar_one_or_none()


def pending_captures(app: App) -> int:
    with app.ledger.read() as session:
        return len(session.execute(select(Capture.id).where(
            Capture.identify_status == IdentifyStatus.PENDING)).all())


# --- what the ledger says -------------------------------------------------------------------

@dataclass(frozen=True)
class Finding:
    """What copyguard made of one placement of the site, by the latest crawl that saw it."""

    placement: Placement
    url: str  # as fetched (or as linked, when it never was)
    outcome: str  # a Placement.expected value, or "pending", "not-audio", "error", "not-reached"
    expected_recording: int | None = None
    recording_id: int | None = None
    title: str | None = None
    confidence: float | None = None
    speed: float | None = None
    pitch_semitones: float | None = None
    capture_id: int | None = None
    reason: str | None = None  # the crawl's or the decoder's words for a problem

    @property
    def as_expected(self) -> bool:
        if self.outcome != self.placement.expected:
            return False
        return self.outcome != "detection" or (
            self.expected_recording is not None and self.recording_id == self.expected_recording)


@dataclass(frozen=True)
class StrayDetection:
    """A detection the site does not explain: a false match."""

    url: str
    title: str
    confidence: float


@dataclass(frozen=True)
class DemoReport:
    findings: tuple[Finding, ...]
    false_matches: tuple[StrayDetection, ...]

    @property
    def copies(self) -> int:
        return sum(f.placement.expected == "detection" for f in self.findings)

    @property
    def copies_found(self) -> int:
        return sum(f.placement.expected == "detection" and f.as_expected for f in self.findings)

    @property
    def others(self) -> int:
        return len(self.findings) - self.copies

    @property
    def others_as_expected(self) -> int:
        return sum(f.placement.expected != "detection" and f.as_expected for f in self.findings)

    @property
    def all_as_expected(self) -> bool:
        return all(f.as_expected for f in self.findings) and not self.false_matches

    def first_capture(self) -> int | None:
        return next((f.capture_id for f in self.findings
                     if f.outcome == "detection" and f.capture_id is not None), None)


def _key(url: str) -> tuple[str, str]:
    """A URL without its port: the demo server's port may differ from one run to the next."""
    parts = urlsplit(url)
    return (parts.hostname or "", parts.path + (f"?{parts.query}" if parts.query else ""))


def _outcome(kind: object, reason: str) -> str:
    if kind == "ignored" and "non-200" in reason:  # Scrapy's HttpError: the file is missing
        return "not-found"
    return _PROBLEMS.get(str(kind), "error")


def _placement_key(path: str, host: str) -> tuple[str, str]:
    return _key(path if "://" in path else f"http://{host}{path}")


@dataclass(frozen=True)
class _Seen:
    crawl_id: int
    url: str
    capture: Capture | None = None
    problem: str | None = None  # a placement outcome
    reason: str | None = None


def demo_report(app: App, site: DemoSite, catalog: Catalog, host: str = "127.0.0.1"
                ) -> DemoReport:
    """What the ledger holds about each placement of ``site``, over every crawl of the demo
    target: a URL's latest capture, or the latest problem the crawler reported with it."""
    with app.ledger.read() as session:
        target = _target_row(session)
        if target is None:
            return DemoReport(tuple(Finding(p, p.path, "not-reached")
                                    for p in site.placements), ())
        seen: dict[tuple[str, str], _Seen] = {}
        crawls = session.execute(select(Crawl).where(Crawl.target_id == target.id)
                                 .order_by(Crawl.id)).scalars()
        for crawl in crawls:
            stats: dict[str, Any] = crawl.stats or {}  # counters, and the problems' list
            for problem in stats.get("problems", []):
                url, reason = str(problem.get("url", "")), str(problem.get("reason", ""))
                seen[_key(url)] = _Seen(crawl.id, url, problem=_outcome(problem.get("kind"),
                                                                        reason), reason=reason)
        captures = session.execute(select(Capture).where(Capture.target_id == target.id)
                                   .order_by(Capture.id)).scalars()
        for capture in captures:
            earlier = seen.get(_key(capture.url))
            if earlier is None or earlier.crawl_id <= capture.crawl_id:
                seen[_key(capture.url)] = _Seen(capture.crawl_id, capture.url, capture)
        latest = {key: s.capture.id for key, s in seen.items() if s.capture is not None}
        detections: dict[int, list[tuple[Detection, str]]] = {}
        for detection, title in session.execute(
                select(Detection, Recording.title)
                .join(Recording, Detection.recording_id == Recording.id)
                .where(Detection.capture_id.in_(latest.values()))
                .order_by(Detection.confidence.desc())).all():
            detections.setdefault(detection.capture_id, []).append((detection, title))
        findings, explained = [], set()
        for placement in site.placements:
            finding = _finding(placement, catalog, host, seen, detections)
            findings.append(finding)
            if finding.as_expected and finding.outcome == "detection":
                explained.add((finding.capture_id, finding.recording_id))
        stray = tuple(
            StrayDetection(seen[key].url, title, detection.confidence)
            for key, capture_id in latest.items()
            for detection, title in detections.get(capture_id, [])
            if (capture_id, detection.recording_id) not in explained)
    return DemoReport(tuple(findings), stray)


def _finding(placement: Placement, catalog: Catalog, host: str,
             seen: dict[tuple[str, str], _Seen],
             detections: dict[int, list[tuple[Detection, str]]]) -> Finding:
    expected = (catalog.recordings[placement.track] if placement.track is not None
                and placement.track < len(catalog.recordings) else None)
    keys = [_placement_key(placement.path, host)]
    if placement.expected == "robots":  # robots.txt stops the crawl at the page
        keys.append(_placement_key(placement.page, host))
    found = [seen[key] for key in keys if key in seen]
    if not found:
        return Finding(placement, placement.path, "not-reached", expected)
    event = next((s for s in found if s.capture is not None), found[0])
    capture = event.capture
    if capture is None:
        return Finding(placement, event.url, event.problem or "error", expected,
                       reason=event.reason)
    common: dict[str, Any] = {"expected_recording": expected, "capture_id": capture.id,
                              "reason": capture.error}
    if capture.identify_status == IdentifyStatus.PENDING:
        return Finding(placement, capture.url, "pending", **common)
    if capture.identify_status == IdentifyStatus.FAILED:
        return Finding(placement, capture.url, "failed", **common)
    if capture.identify_status == IdentifyStatus.NOT_AUDIO:
        return Finding(placement, capture.url, "not-audio", **common)
    matches = detections.get(capture.id, [])
    if not matches:
        return Finding(placement, capture.url, "no-match", **common)
    detection, title = next(((d, t) for d, t in matches if d.recording_id == expected),
                            matches[0])
    return Finding(placement, capture.url, "detection", recording_id=detection.recording_id,
                   title=title, confidence=detection.confidence, speed=detection.speed,
                   pitch_semitones=detection.pitch_semitones, **common)

