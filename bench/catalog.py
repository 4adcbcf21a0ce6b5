"""Fingerprinting the catalog, timed: decode with ffmpeg, extract landmarks, count CPU seconds.

Each track is fingerprinted in a worker process; its CPU time is the worker's own plus that of
the ffmpeg child it waited for (:func:`bench.measure.cpu_seconds`), so the speed is per core
with decoding included. Reads no settings.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from bench.corpus import Track
from bench.measure import cpu_seconds
from fingerprints import Landmarks, decode_file, extract_landmarks

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrackPrint:
    """The fingerprint of one catalog track and what it cost."""

    recording_id: int
    duration: float  # seconds of decoded audio
    landmarks: Landmarks
    cpu_seconds: float  # decoding and extraction together
    decode_cpu_seconds: float


@dataclass(frozen=True)
class CatalogPrints:
    tracks: tuple[TrackPrint, ...]
    wall_seconds: float
    workers: int

    @property
    def audio_seconds(self) -> float:
        return sum(track.duration for track in self.tracks)

    @property
    def cpu_seconds(self) -> float:
        return sum(track.cpu_seconds for track in self.tracks)

    @property
    def speed(self) -> float:
        """Seconds of audio fingerprinted per CPU second (decoding included)."""
        return self.audio_seconds / max(self.cpu_seconds, 1e-9)

    @property
    def speed_without_decoding(self) -> float:
        extraction = sum(t.cpu_seconds - t.decode_cpu_seconds for t in self.tracks)
        return self.audio_seconds / max(extraction, 1e-9)

    @property
    def hashes(self) -> int:
        return sum(len(track.landmarks) for track in self.tracks)


def fingerprint_tracks(tracks: Sequence[Track], workers: int) -> CatalogPrints:
    log.info("fingerprinting %d catalog tracks (%.1f h) on %d workers", len(tracks),
             sum(t.duration for t in tracks) / 3600, workers)
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        prints = tuple(pool.map(fingerprint_track, tracks))
    wall = time.perf_counter() - started
    result = CatalogPrints(prints, wall, workers)
    log.info("fingerprinted %.0f s of audio in %.1f CPU s (%.0fx real time per core)",
             result.audio_seconds, result.cpu_seconds, result.speed)
    return result


def fingerprint_track(track: Track) -> TrackPrint:
    before = cpu_seconds()
    audio = decode_file(track.path)
    decoded = cpu_seconds()
    landmarks = extract_landmarks(audio)
    after = cpu_seconds()
    return TrackPrint(track.recording_id, audio.duration, landmarks, after - before,
                      decoded - before)
