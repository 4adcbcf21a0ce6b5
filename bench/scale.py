"""One scale of the benchmark: build the index, time queries one by one, match them all.

Everything heavy runs in child processes, so each figure belongs to a process that did only
that: the build (its peak RSS is the cost of building), the latency run (one process, queries
one after another on an otherwise idle machine, its RSS is what a serving process holds) and
the accuracy run (``workers`` processes sharing the memory-mapped index). Reads no settings.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.cases import Query
from bench.catalog import CatalogPrints
from bench.distractors import ShardUse, load_shard
from bench.measure import Memory, memory
from bench.queries import QuerySet
from fingerprints import SAMPLE_RATE, Audio, FingerprintIndex, Matcher

log = logging.getLogger(__name__)

# Queries matched before the latency run starts timing: they page the index in, as the
# queries of a running daemon would have.
WARM_UP_QUERIES = 5
_BATCH = 40  # queries per task of the accuracy run


@dataclass(frozen=True)
class IndexBuild:
    scale: int
    recordings: int
    audio_seconds: float
    hashes: int
    bytes_on_disk: int
    bytes_in_memory: int  # the index arrays, were they all resident
    build_seconds: float  # wall clock, from landmarks in memory/cache to a saved index
    build_peak_rss: int
    # Of bytes_in_memory: the hash tables' arrays with an element per entry (what lookups
    # read, at random), and the peak table (read only to verify a few candidates a query).
    entry_bytes: int = 0
    peak_bytes: int = 0


@dataclass(frozen=True)
class Outcome:
    """What the matcher answered for one query (recording_id None: no match)."""

    query_id: str
    recording_id: int | None
    confidence: float = 0.0
    query_start: float = 0.0
    ref_start: float = 0.0
    speed: float = 1.0
    pitch: float = 0.0
    score: int = 0
    seconds: float = 0.0  # wall time of Matcher.match (the query is already decoded)


@dataclass(frozen=True)
class LatencyRun:
    latencies: tuple[float, ...]
    memory_before_index: Memory
    memory_after: Memory
    load_average: float  # 1-minute load when the run started (1.0 = one core busy)


@dataclass(frozen=True)
class ScaleRun:
    build: IndexBuild
    latency: LatencyRun
    outcomes: tuple[Outcome, ...]
    match_wall_seconds: float
    worker_peak_rss: int
    min_confidence: float


def build_index(directory: Path, scale: int, catalog: CatalogPrints,
                shards: Sequence[ShardUse]) -> IndexBuild:
    with ProcessPoolExecutor(max_workers=1) as pool:
        return pool.submit(_build, directory, scale, catalog, tuple(shards)).result()


def _build(directory: Path, scale: int, catalog: CatalogPrints,
           shards: tuple[ShardUse, ...]) -> IndexBuild:
    started = time.perf_counter()
    shutil.rmtree(directory, ignore_errors=True)
    index = FingerprintIndex.open(directory)
    seconds = 0.0
    for track in catalog.tracks:
        index.add(track.recording_id, track.landmarks, track.duration)
        seconds += track.duration
    for use in shards:
        for recording_id, landmarks, duration in load_shard(use.path)[: use.take]:
            index.add(recording_id, landmarks, duration)
            seconds += duration
    index.save()
    stats = index.stats()
    build_seconds = time.perf_counter() - started
    return IndexBuild(
        scale=scale, recordings=stats.recordings, audio_seconds=seconds, hashes=stats.hashes,
        bytes_on_disk=stats.bytes_on_disk, bytes_in_memory=_array_bytes(directory),
        entry_bytes=_array_bytes(directory, kind="entries"),
        peak_bytes=_array_bytes(directory, kind="peaks"),
        build_seconds=build_seconds, build_peak_rss=memory().peak_rss,
    )


# The index's arrays by kind: distinct keys (hashes; recording slots for the peak table) and
# where each key's entries start, bounded by the key space rather than the catalog's hours;
# the peak table; the rest have an element per stored hash entry.
_ARRAY_KINDS = {"keys": "keys", "starts": "keys", "quad_keys": "keys", "quad_starts": "keys",
                "peak_keys": "keys", "peak_starts": "keys",
                "peak_times": "peaks", "peak_bins": "peaks"}


def _array_bytes(directory: Path, *, kind: str | None = None) -> int:
    """Bytes of the current generation's arrays (what memory holds when all is paged in), or
    of those of one kind ("keys", "peaks", "entries")."""
    try:
        generation = json.loads((directory / "manifest.json").read_text())["generation"]
        files = sorted(path for path in directory.glob(f"*-{generation}.npy")
                       if kind is None or _ARRAY_KINDS.get(
                           path.name.removesuffix(f"-{generation}.npy"), "entries") == kind)
        return sum(int(np.load(path, mmap_mode="r").nbytes) for path in files)
    except (OSError, KeyError, ValueError):
        return 0


def run_queries(directory: Path, build: IndexBuild, queries: QuerySet,
                latency_case: str, workers: int, min_confidence: float | None) -> ScaleRun:
    timed = [q for q in queries.queries if q.case == latency_case]
    with ProcessPoolExecutor(max_workers=1) as pool:
        latency = pool.submit(_latency_run, directory, queries.directory, tuple(timed),
                              min_confidence).result()
    log.info("scale x%d: latency median %.1f ms over %d queries", build.scale,
             1000 * float(np.median(latency.latencies)) if latency.latencies else float("nan"),
             len(latency.latencies))
    batches = [tuple(queries.queries[i:i + _BATCH])
               for i in range(0, len(queries.queries), _BATCH)]
    outcomes: list[Outcome] = []
    peak = 0
    threshold = 0.0
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_match_batch, directory, queries.directory, batch,
                               min_confidence) for batch in batches]
        for done, future in enumerate(futures, start=1):
            batch_outcomes, batch_peak, threshold = future.result()
            outcomes += batch_outcomes
            peak = max(peak, batch_peak)
            if done % 20 == 0 or done == len(futures):
                log.info("scale x%d: matched %d/%d queries", build.scale, len(outcomes),
                         len(queries.queries))
    wall = time.perf_counter() - started
    return ScaleRun(build, latency, tuple(outcomes), wall, peak, threshold)


def _matcher(directory: Path, min_confidence: float | None) -> Matcher:
    index = FingerprintIndex.open(directory)
    if min_confidence is None:
        return Matcher(index)
    return Matcher(index, min_confidence=min_confidence)


def _latency_run(directory: Path, query_directory: Path, queries: tuple[Query, ...],
                 min_confidence: float | None) -> LatencyRun:
    before = memory()
    load = os.getloadavg()[0]
    matcher = _matcher(directory, min_confidence)
    for query in queries[:WARM_UP_QUERIES]:
        matcher.match(_load(query_directory, query))
    latencies = []
    for query in queries:
        clip = _load(query_directory, query)  # one at a time: the RSS is the matcher's
        started = time.perf_counter()
        matcher.match(clip)
        latencies.append(time.perf_counter() - started)
    return LatencyRun(tuple(latencies), before, memory(), load)


def _match_batch(directory: Path, query_directory: Path, queries: tuple[Query, ...],
                 min_confidence: float | None) -> tuple[list[Outcome], int, float]:
    matcher = _matcher(directory, min_confidence)
    outcomes = []
    for query in queries:
        clip = _load(query_directory, query)
        started = time.perf_counter()
        match = matcher.match(clip)
        elapsed = time.perf_counter() - started
        if match is None:
            outcomes.append(Outcome(query.query_id, None, seconds=elapsed))
            continue
        outcomes.append(Outcome(
            query_id=query.query_id, recording_id=int(match.recording_id),
            confidence=float(match.confidence), query_start=float(match.query_start),
            ref_start=float(match.ref_start), speed=float(match.speed),
            pitch=float(match.pitch_semitones), score=int(match.score), seconds=elapsed,
        ))
    return outcomes, memory().peak_rss, float(matcher.min_confidence)


def _load(query_directory: Path, query: Query) -> Audio:
    return Audio(samples=np.load(query_directory / query.file), sample_rate=SAMPLE_RATE)
