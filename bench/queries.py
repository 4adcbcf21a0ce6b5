"""Making the benchmark's query set: altered catalog excerpts and negative queries.

A query is stored as float32 samples at the matcher's rate in ``<cache>/queries-<shape>-<key>/``,
beside ``manifest.json`` listing every :class:`Query`. The key hashes everything a query depends on
(seed, counts, the catalog, the alteration and synthesis code), so a rerun reuses the set and
any change makes a new one. Each positive query is cut from a catalog track with a second of
context on either side, altered as its :class:`bench.cases.Case` says, and turned into a file
(WAV, or the codec's) that :func:`fingerprints.decode.decode_bytes` decodes, as a downloaded file
would be. Reads no settings.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

import bench.audio as bench_audio
import fingerprints.alter as alter
import fingerprints.decode as decode
import fingerprints.synth as synth
from bench import negatives
from bench.audio import (
    MAKING_RATE,
    UnrelatedMusic,
    add_inband_noise,
    read_excerpt,
    wav_bytes,
)
from bench.cases import EMBED_SECONDS, Case, Query
from bench.corpus import Track
from fingerprints import SAMPLE_RATE, decode_bytes

log = logging.getLogger(__name__)

# Seconds of the track kept on either side of an excerpt while it is altered, so that filters
# start and end outside the query as they would on a whole altered track.
CONTEXT_SECONDS = 1.0
# Tracks quieter than this RMS (digital silence) are in the catalog but give no queries.
MIN_SOURCE_RMS = 1e-3
_FORMAT = "copyguard-bench-queries-2"


@dataclass(frozen=True)
class QuerySet:
    directory: Path
    queries: tuple[Query, ...]
    skipped: tuple[str, ...]  # why some (track, case) pairs gave no queries

    def samples(self, query: Query) -> np.ndarray:
        return np.load(self.directory / query.file)


@dataclass(frozen=True)
class QueryPlan:
    """What to make: the counts and the seed."""

    cases: tuple[Case, ...]
    excerpts_per_track: int
    negatives_per_kind: dict[str, int]
    seed: int


def load_or_make(plan: QueryPlan, tracks: Sequence[Track], unrelated: UnrelatedMusic,
                 cache: Path, workers: int) -> QuerySet:
    """The query set of ``plan``, from the cache when it is there, made otherwise."""
    key = _cache_key(plan, tracks)
    # Query sets are gigabytes: a new one replaces older ones of the same shape (a full run's
    # set survives --quick runs and the other way round).
    prefix = f"queries-{len(tracks)}t{plan.excerpts_per_track}x{len(plan.cases)}c-"
    directory = cache / f"{prefix}{key}"
    found = _load(directory)
    if found is not None:
        log.info("query set %s from the cache (%d queries)", key, len(found.queries))
        return found
    building = cache / f"building-{key}-{os.getpid()}"
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    log.info("making queries: %d cases x %d excerpts x %d tracks, %d negatives (%d workers)",
             len(plan.cases), plan.excerpts_per_track, len(tracks),
             sum(plan.negatives_per_kind.values()), workers)
    jobs = [_TrackJob(track, plan, unrelated, building) for track in tracks]
    queries: list[Query] = []
    skipped: list[str] = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        negative_jobs = negatives.jobs(plan.negatives_per_kind, plan.seed, unrelated, building)
        negative_futures = [pool.submit(negatives.make, job) for job in negative_jobs]
        for done, (made, why) in enumerate(pool.map(_make_track_queries, jobs), start=1):
            queries += made
            skipped += why
            if done % 5 == 0 or done == len(jobs):
                log.info("queries made for %d/%d tracks", done, len(jobs))
        queries += [query for future in negative_futures for query in future.result()]
    (building / "manifest.json").write_text(json.dumps(
        {"format": _FORMAT, "key": key, "skipped": skipped,
         "queries": [asdict(q) for q in queries]}))
    try:
        building.rename(directory)  # atomic: a set exists only once complete
    except OSError:  # a concurrent run finished the same set first
        shutil.rmtree(building, ignore_errors=True)
    for stale in cache.glob(f"{prefix}*"):
        if stale != directory:
            shutil.rmtree(stale, ignore_errors=True)
    result = _load(directory)
    if result is None:
        raise RuntimeError(f"query set {directory} vanished while it was being made")
    return result


def _load(directory: Path) -> QuerySet | None:
    try:
        data = json.loads((directory / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    if data.get("format") != _FORMAT:
        return None
    return QuerySet(directory, tuple(Query(**q) for q in data["queries"]),
                    tuple(data["skipped"]))


def _cache_key(plan: QueryPlan, tracks: Sequence[Track]) -> str:
    digest = hashlib.sha256()
    digest.update(_FORMAT.encode())
    digest.update(repr((plan.cases, plan.excerpts_per_track,
                        sorted(plan.negatives_per_kind.items()), plan.seed)).encode())
    for track in tracks:
        digest.update(f"{track.recording_id}:{track.path}:{track.duration:.3f}".encode())
    for module in (alter, synth, decode, bench_audio, negatives):
        digest.update(Path(module.__file__ or "").read_bytes())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()[:12]


@dataclass(frozen=True)
class _TrackJob:
    track: Track
    plan: QueryPlan
    unrelated: UnrelatedMusic
    directory: Path


def _make_track_queries(job: _TrackJob) -> tuple[list[Query], list[str]]:
    track, plan = job.track, job.plan
    samples = read_excerpt(track.path, 0.0, None)
    duration = len(samples) / MAKING_RATE
    if len(samples) == 0 or float(np.sqrt(np.mean(np.square(samples)))) < MIN_SOURCE_RMS:
        return [], [f"{track.name}: digital silence, used in no query"]
    queries: list[Query] = []
    skipped: list[str] = []
    for case_number, case in enumerate(plan.cases):
        if duration < case.source_seconds + 0.1:
            skipped.append(f"{track.name}: {duration:.1f} s, too short for {case.name}")
            continue
        rng = np.random.default_rng([plan.seed, case_number, track.recording_id])
        for number in range(plan.excerpts_per_track):
            start = float(rng.uniform(0.0, duration - case.source_seconds))
            query_samples, origin = make_positive(samples, MAKING_RATE, case, start, rng,
                                                  job.unrelated)
            name = f"{case.name}/{track.recording_id}-{number}.npy"
            (job.directory / case.name).mkdir(exist_ok=True)
            np.save(job.directory / name, query_samples)
            queries.append(Query(
                query_id=f"{case.name}/{track.recording_id}-{number}", case=case.name,
                file=name, seconds=len(query_samples) / SAMPLE_RATE,
                recording_id=track.recording_id, source=track.name, ref_start=start,
                query_origin=origin, time_factor=case.time_factor, pitch=case.expected_pitch,
            ))
    return queries, skipped


def make_positive(samples: np.ndarray, sample_rate: int, case: Case, start: float,
                  rng: np.random.Generator, unrelated: UnrelatedMusic) -> tuple[np.ndarray, float]:
    """The query for the excerpt of ``samples`` at ``start`` (seconds), at the matcher's
    rate, and the query second where the excerpt begins."""
    first = max(0, int((start - CONTEXT_SECONDS) * sample_rate))
    last = min(len(samples), int((start + case.source_seconds + CONTEXT_SECONDS) * sample_rate))
    piece = np.asarray(samples[first:last], dtype=np.float32)
    if case.speed != 1.0:
        piece = alter.change_speed(piece, sample_rate, case.speed)
    if case.pitch:
        piece = alter.shift_pitch(piece, sample_rate, case.pitch)
    if case.tempo != 1.0:
        piece = alter.change_tempo(piece, sample_rate, case.tempo)
    if case.lowpass_hz is not None:
        piece = alter.lowpass(piece, sample_rate, case.lowpass_hz)
    query = alter.excerpt(piece, sample_rate, (start - first / sample_rate) / case.time_factor,
                          case.seconds)
    if case.noise is not None:
        color, snr_db = case.noise
        query = add_inband_noise(query, sample_rate, snr_db, rng, color)
    origin = 0.0
    if case.embedded:
        outer, _ = unrelated.excerpt(rng, EMBED_SECONDS, sample_rate)
        outer *= _rms(query) / max(_rms(outer), 1e-6)  # as loud as the excerpt
        origin = round((EMBED_SECONDS - case.seconds) / 2, 3)
        query = alter.embed(query, np.clip(outer, -1.0, 1.0), origin, sample_rate)
    if case.codec is not None:
        codec, bitrate = case.codec
        data = alter.encode(query, sample_rate, codec, bitrate)
    else:
        data = wav_bytes(query, sample_rate)
    return decode_bytes(data).samples, origin


def _rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if len(samples) else 0.0
