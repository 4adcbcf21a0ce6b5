"""The identify stage: pending captures in, detections out.

Each capture is claimed in a short transaction with a lease (``claimed_by``, ``lease_until``;
``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several workers can share the queue), decoded and
matched outside any transaction, and its result written in one transaction with the audit
entries. A worker that dies mid-capture leaves a lease that expires: the capture is claimed
again, and the unique (capture, recording) key keeps detections from being written twice.
Identical bytes are fingerprinted once: a capture whose SHA-256 was already identified takes
over that result.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import func, select

from config import Settings
from fingerprints import DecodeError, Match, Matcher, decode_file
from ledger import audit
from ledger.claims import claimant_gone, worker_name
from ledger.clock import Clock
from ledger.db import Ledger, open_ledger
from ledger.evidence import EvidenceStore
from ledger.models import Capture, Detection, DetectionStatus, IdentifyStatus, Recording
from ledger.object_store import ObjectStoreError
from monitor.app import build_app
from monitor.lifeline import die_with_parent

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
CANDIDATES = 5  # recordings considered per capture (a mix may hold several)
IDLE_POLL_SECONDS = 0.2  # how soon a waiting worker looks again; doubles while idle
MAX_IDLE_POLL_SECONDS = 2.0
RECLAIM_SECONDS = 10.0  # how often a waiting worker looks for captures of dead processes


STOP_SECONDS = 30.0  # how long a worker may take to finish the capture in hand when stopped


class EventLike(Protocol):
    def is_set(self) -> bool: ...


@dataclass
class IdentifyReport:
    captures: int = 0
    detections: int = 0
    reused: int = 0  # captures whose bytes had been identified before
    failed: int = 0
    crashed: int = 0  # worker processes that died (their captures are retried)


@dataclass(frozen=True)
class _Outcome:
    status: str
    matches: tuple[Match, ...] = ()
    seconds: float | None = None
    error: str | None = None


class IdentifyStage:
    def __init__(self, settings: Settings, ledger: Ledger, clock: Clock,
                 matcher: Callable[[], Matcher], evidence: EvidenceStore, *, actor: str,
                 worker: str | None = None) -> None:
        self.settings, self.ledger, self.clock = settings, ledger, clock
        self._matcher_factory = matcher
        self._matcher: Matcher | None = None
        self.evidence, self.actor = evidence, actor
        self.worker = worker or worker_name()
        # Longer than decoding and matching one capture can take: a claim is not renewed.
        self.lease = timedelta(seconds=settings.daemon.worker_lease_seconds)

    @property
    def matcher(self) -> Matcher:
        if self._matcher is None:  # loading the index is not free: only when there is work
            self._matcher = self._matcher_factory()
        return self._matcher

    def run(self, *, limit: int | None = None,
            on_progress: Callable[[IdentifyReport], None] | None = None,
            more_coming: Callable[[], bool] | None = None,
            stop: Callable[[], bool] | None = None) -> IdentifyReport:
        """Identify pending captures until none is left (or ``limit`` were done).

        ``more_coming``: while it answers True (a crawl is still writing captures), an empty
        queue is waited on instead of ending the run. ``stop``: asked between captures; True
        ends the run with the capture in hand finished, never half-done."""
        report = IdentifyReport()
        idle = IDLE_POLL_SECONDS
        self.release_dead_claims()
        reclaimed_at = time.monotonic()
        while (limit is None or report.captures < limit) and not (stop and stop()):
            claimed = self._claim() if self._any_pending() else None
            if claimed is None:
                if more_coming is None or not more_coming():
                    if self._any_pending():  # written just before the crawl said it was done
                        continue
                    break
                if time.monotonic() - reclaimed_at > RECLAIM_SECONDS:
                    self.release_dead_claims()
                    reclaimed_at = time.monotonic()
                time.sleep(idle)
                idle = min(idle * 2, MAX_IDLE_POLL_SECONDS)
                continue
            idle = IDLE_POLL_SECONDS
            capture_id, sha256 = claimed
            prior = self._prior_outcome(sha256, capture_id)
            started = time.perf_counter()
            try:
                outcome = prior if prior is not None else self._identify(sha256)
            except ObjectStoreError:
                # Object storage, not the capture, failed: it is not an attempt on it.
                self._give_back(capture_id)
                raise
            elapsed = None if prior is not None else time.perf_counter() - started
            written = self._record(capture_id, outcome, elapsed)
            report.captures += 1
            report.detections += written
            report.reused += prior is not None
            report.failed += outcome.status == IdentifyStatus.FAILED
            if on_progress is not None:
                on_progress(report)
        return report

    def release_dead_claims(self) -> int:
        """Give back captures held by processes of this host that are gone (a daemon or worker
        killed with -9): pending again at once instead of when their lease runs out."""
        now = self.clock.now()
        with self.ledger.write() as session:
            held = [c for c in session.execute(select(Capture).where(
                Capture.identify_status == IdentifyStatus.PENDING,
                Capture.lease_until > now)).scalars() if claimant_gone(c.claimed_by)]
            for capture in held:
                log.info("capture %d: its claimant %s is gone; taken up again", capture.id,
                         capture.claimed_by)
                capture.claimed_by, capture.lease_until = None, None
        return len(held)

    def _give_back(self, capture_id: int) -> None:
        with self.ledger.write() as session:
            capture = session.get(Capture, capture_id)
            if capture is not None and capture.claimed_by == self.worker \
                    and capture.identify_status == IdentifyStatus.PENDING:
                capture.claimed_by, capture.lease_until = None, None
                capture.attempts = max(capture.attempts - 1, 0)

    def release_own_claims(self) -> int:
        """Give back the captures this worker holds (after its run broke off, e.g. the
        database went away mid-capture): they are pending again at once, not when the lease
        runs out. The number given back."""
        with self.ledger.write() as session:
            held = list(session.execute(select(Capture).where(
                Capture.claimed_by == self.worker,
                Capture.identify_status == IdentifyStatus.PENDING)).scalars())
            for capture in held:
                capture.claimed_by, capture.lease_until = None, None
        return len(held)

    def _any_pending(self) -> bool:
        """A read, so that waiting for work does not take SQLite's write lock from the crawl."""
        now = self.clock.now()
        with self.ledger.read() as session:
            return session.execute(select(Capture.id).where(
                Capture.identify_status == IdentifyStatus.PENDING,
                (Capture.lease_until.is_(None)) | (Capture.lease_until < now)).limit(1)
            ).first() is not None

    def _claim(self) -> tuple[int, str] | None:
        while True:
            now = self.clock.now()
            with self.ledger.write() as session:
                query = (select(Capture).where(
                    Capture.identify_status == IdentifyStatus.PENDING,
                    (Capture.lease_until.is_(None)) | (Capture.lease_until < now))
                    .order_by(Capture.id).limit(1))
                if session.get_bind().dialect.name == "postgresql":
                    query = query.with_for_update(skip_locked=True)
                capture = session.execute(query).scalar_one_or_none()
                if capture is None:
                    return None
                capture.attempts += 1
                if capture.attempts <= MAX_ATTEMPTS:
                    capture.claimed_by, capture.lease_until = self.worker, now + self.lease
                    return capture.id, capture.sha256
                # It took its workers down every time (or they were killed): stop trying.
                capture.identify_status = IdentifyStatus.FAILED
                capture.error = f"gave up after {MAX_ATTEMPTS} attempts"
                capture.claimed_by, capture.lease_until = None, None
                log.warning("capture %d failed %d times: given up", capture.id, MAX_ATTEMPTS)

    def _prior_outcome(self, sha256: str, capture_id: int) -> _Outcome | None:
        with self.ledger.read() as session:
            prior = session.execute(select(Capture).where(
                Capture.sha256 == sha256, Capture.id != capture_id,
                Capture.identify_status != IdentifyStatus.PENDING,
            ).order_by(Capture.id).limit(1)).scalar_one_or_none()
            if prior is None:
                return None
            detections = session.execute(select(Detection).where(
                Detection.capture_id == prior.id)).scalars()
            matches = tuple(Match(
                recording_id=d.recording_id, confidence=d.confidence,
                query_start=d.query_start, query_end=d.query_end, ref_start=d.ref_start,
                speed=d.speed, pitch_semitones=d.pitch_semitones, score=d.score)
                for d in detections)
            return _Outcome(prior.identify_status, matches, prior.audio_seconds, prior.error)

    def _identify(self, sha256: str) -> _Outcome:
        limits = self.settings.decoding
        try:
            audio = decode_file(self.evidence.blob_path(sha256), max_seconds=limits.max_seconds,
                                timeout=limits.timeout_seconds,
                                memory_limit_mb=limits.memory_limit_mb)
        except DecodeError as exc:
            return _Outcome(IdentifyStatus.FAILED, error=str(exc))
        if audio.duration <= 0:
            return _Outcome(IdentifyStatus.NOT_AUDIO, error="no audio samples")
        threshold = self.settings.matching.min_confidence
        found = [m for m in self.matcher.candidates(audio, limit=CANDIDATES)
                 if m.confidence >= threshold]
        return _Outcome(IdentifyStatus.DONE, tuple(found), audio.duration)

    def _record(self, capture_id: int, outcome: _Outcome, elapsed: float | None) -> int:
        review_below = self.settings.matching.review_below
        written = 0
        with self.ledger.write() as session:
            capture = session.get(Capture, capture_id)
            assert capture is not None
            if capture.identify_status != IdentifyStatus.PENDING:
                return 0  # another worker finished it after our lease ran out
            seen: set[int] = set()
            for match in outcome.matches:
                if match.recording_id in seen:
                    continue
                seen.add(match.recording_id)
                recording = session.get(Recording, match.recording_id)
                if recording is None:  # removed from the catalog since the index was built
                    continue
                status = (DetectionStatus.NEW if match.confidence >= review_below
                          else DetectionStatus.REVIEW)
                detection = Detection(
                    capture_id=capture.id, recording_id=recording.id,
                    holder_id=recording.holder_id, target_id=capture.target_id,
                    confidence=float(match.confidence), score=int(match.score),
                    query_start=float(match.query_start), query_end=float(match.query_end),
                    ref_start=float(match.ref_start), speed=float(match.speed),
                    pitch_semitones=float(match.pitch_semitones), status=status,
                    detected_at=self.clock.now())
                session.add(detection)
                session.flush()
                audit.append(session, self.clock, actor=self.actor, action="detection.created",
                             entity_type="detection", entity_id=detection.id,
                             holder_id=recording.holder_id,
                             details={"capture_id": capture.id, "url": capture.url,
                                      "recording_id": recording.id, "title": recording.title,
                                      "confidence": round(float(match.confidence), 4),
                                      "ref_start": round(float(match.ref_start), 2),
                                      "speed": float(match.speed),
                                      "pitch_semitones": float(match.pitch_semitones),
                                      "status": status})
                written += 1
            capture.identify_status, capture.error = outcome.status, outcome.error
            capture.audio_seconds, capture.identify_seconds = outcome.seconds, elapsed
            capture.identified_at = self.clock.now()
            # claimed_by stays: the worker that identified it, for an operator's look back.
            capture.lease_until = None
        return written


class IdentifyWorkers:
    """The identify stage in ``count`` processes of their own, started before a crawl so that
    captures are identified while the crawl is still fetching (``more_coming``), then drained.

    Each process opens its own ledger and index (the index file is memory-mapped: its pages
    are shared); the leases keep them from taking the same capture. The processes ignore
    SIGINT: on Ctrl-C the caller calls :meth:`stop`, and each finishes the capture in hand
    (no lease is left to run out) before it exits."""

    def __init__(self, settings: Settings, count: int, *, actor: str) -> None:
        # spawn: a worker must not inherit the parent's database connections or Twisted's state.
        context = multiprocessing.get_context("spawn")
        self.settings = settings
        self._more_coming = context.Event()
        self._more_coming.set()
        self._stop = context.Event()
        self._reports: Any = context.SimpleQueue()
        self._processes = [
            context.Process(target=_worker, name=f"copyguard-identify-{n + 1}", daemon=True,
                            args=(settings, actor, self._more_coming, self._stop, self._reports,
                                  os.getpid()))
            for n in range(max(1, count))]

    def __enter__(self) -> IdentifyWorkers:
        for process in self._processes:
            process.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if any(p.is_alive() for p in self._processes):
            self.stop()

    def finish(self, on_progress: Callable[[int], None] | None = None) -> IdentifyReport:
        """No more captures are coming: identify what is pending, then end; the sum of the
        workers' reports. ``on_progress`` gets the captures identified since this call."""
        self._more_coming.clear()
        ledger = open_ledger(self.settings.database_url,
                             busy_timeout_ms=self.settings.database.busy_timeout_ms)
        try:
            before = _finished(ledger)
            while any(p.is_alive() for p in self._processes):
                if on_progress is not None:
                    on_progress(_finished(ledger) - before)
                for process in self._processes:
                    process.join(0.5 / len(self._processes))
        finally:
            ledger.close()
        return self._collect()

    def stop(self, timeout: float = STOP_SECONDS) -> IdentifyReport:
        """End now: each worker finishes the capture in hand; one still busy after ``timeout``
        seconds is terminated (its lease lets another worker take the capture later)."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for process in self._processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.warning("%s did not stop within %.0f s: terminated", process.name, timeout)
                process.terminate()
                process.join()
        return self._collect()

    def _collect(self) -> IdentifyReport:
        total = IdentifyReport()
        while not self._reports.empty():
            report = self._reports.get()
            total.captures += report.captures
            total.detections += report.detections
            total.reused += report.reused
            total.failed += report.failed
        for process in self._processes:
            if process.exitcode not in (0, None):
                log.error("%s exited with code %s; captures it held are taken up again "
                          "when their lease runs out", process.name, process.exitcode)
                total.crashed += 1
        return total


def _finished(ledger: Ledger) -> int:
    """Captures no longer pending (for progress: the workers report only when done)."""
    with ledger.read() as session:
        return int(session.execute(select(func.count()).select_from(Capture).where(
            Capture.identify_status != IdentifyStatus.PENDING)).scalar() or 0)


def _worker(settings: Settings, actor: str, more_coming: EventLike, stop: EventLike,
            reports: Any, parent: int) -> None:
    die_with_parent(parent)  # a crawl killed with -9 takes its identify processes along
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    app = build_app(settings, actor=actor)
    try:
        with app.evidence() as evidence:
            report = IdentifyStage(settings, app.ledger, app.clock, app.matcher, evidence,
                                   actor=actor).run(more_coming=more_coming.is_set,
                                                    stop=stop.is_set)
        reports.put(report)
    finally:
        app.close()
