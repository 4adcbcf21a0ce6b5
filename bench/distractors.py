"""Distractor recordings that grow the catalog for the scaling runs, cached on disk.

A catalog grown to ``k`` times its size holds ``k - 1`` catalog-durations of distractors:
first a time-reversed copy of every catalog track (real music with the catalog's own spectra,
which must never match a forward query), then synthesized tracks
(:func:`fingerprints.synth.synthesize_track`) of :data:`DISTRACTOR_SECONDS` each with seeds from
:data:`DISTRACTOR_SEED_BASE` on. Scale 10 uses a prefix of scale 100's distractors.

Landmarks are cached in shards of :data:`SHARD_SIZE` recordings under
``<cache>/distractors-<key>/``; the key hashes the fingerprints package's code, so a change
there recomputes them; directories of older code are removed once idle for an hour. Reads no
settings.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import pickle
import shutil
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import fingerprints
from bench.corpus import Track
from bench.measure import cpu_seconds
from fingerprints import (
    SAMPLE_RATE,
    Audio,
    LandmarkParams,
    Landmarks,
    decode_file,
    extract_landmarks,
    synthesize_track,
)

log = logging.getLogger(__name__)

DISTRACTOR_SEED_BASE = 1_000_000
DISTRACTOR_SECONDS = 180.0
SHARD_SIZE = 50
# Recording ids: reversed copies of catalog track n get REVERSED_ID_BASE + n, synthesized
# distractor i gets SYNTH_ID_BASE + i; catalog ids stay below REVERSED_ID_BASE.
REVERSED_ID_BASE = 100_000
SYNTH_ID_BASE = 1_000_000


@dataclass(frozen=True)
class DistractorSpec:
    recording_id: int
    source: str  # "reversed:<path>" or "synth:<seed>"
    seconds: float


# One shard: (recording id, landmarks, duration in seconds) of up to SHARD_SIZE distractors.
Shard = list[tuple[int, Landmarks, float]]


def plan(catalog: Sequence[Track], catalog_seconds: float, scale: int) -> list[DistractorSpec]:
    """The distractors that grow a catalog of ``catalog_seconds`` to ``scale`` times its size."""
    wanted = (scale - 1) * catalog_seconds
    specs: list[DistractorSpec] = []
    if wanted <= 0:
        return specs
    for track in catalog:
        specs.append(DistractorSpec(REVERSED_ID_BASE + track.recording_id,
                                    f"reversed:{track.path}", track.duration))
    covered = sum(spec.seconds for spec in specs)
    count = max(0, math.ceil((wanted - covered) / DISTRACTOR_SECONDS))
    specs += [_synth_spec(i) for i in range(count)]
    return specs


@dataclass(frozen=True)
class DistractorCost:
    """What computing the missing shards took (zero when all came from the cache)."""

    computed_recordings: int
    audio_seconds: float
    cpu_seconds: float
    wall_seconds: float


@dataclass(frozen=True)
class ShardUse:
    """A shard file and how many of its recordings (from the first) the scale uses."""

    path: Path
    take: int


def ensure_shards(specs: Sequence[DistractorSpec], cache: Path,
                  workers: int) -> tuple[list[ShardUse], DistractorCost]:
    """The shards holding ``specs`` (in order), computing those not yet cached.

    Synthesized distractors are grouped by seed (seeds base + 50 j ... base + 50 j + 49 in
    shard j, always computed whole), so every scale and ``--quick`` share their shards.
    """
    directory = cache / f"distractors-{code_key()}"
    directory.mkdir(parents=True, exist_ok=True)
    _prune(cache, directory)
    reversed_specs = [s for s in specs if s.source.startswith("reversed:")]
    synth_count = len(specs) - len(reversed_specs)
    groups: list[tuple[tuple[DistractorSpec, ...], int]] = [
        (tuple(reversed_specs[i:i + SHARD_SIZE]), len(reversed_specs[i:i + SHARD_SIZE]))
        for i in range(0, len(reversed_specs), SHARD_SIZE)
    ]
    for first in range(0, synth_count, SHARD_SIZE):
        group = tuple(_synth_spec(i) for i in range(first, first + SHARD_SIZE))
        groups.append((group, min(SHARD_SIZE, synth_count - first)))
    uses = [ShardUse(directory / f"shard-{_group_key(group)}.pickle", take)
            for group, take in groups]
    missing = [(group, use.path) for (group, _), use in zip(groups, uses, strict=True)
               if not use.path.exists()]
    started = time.perf_counter()
    cpu = 0.0
    audio_seconds = 0.0
    if missing:
        log.info("computing %d distractor shards (%d recordings, %.1f h of audio) on %d workers",
                 len(missing), sum(len(g) for g, _ in missing),
                 sum(s.seconds for g, _ in missing for s in g) / 3600, workers)
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for done, (shard_cpu, shard_audio) in enumerate(
                    pool.map(_compute_shard, missing), start=1):
                cpu += shard_cpu
                audio_seconds += shard_audio
                if done % 10 == 0 or done == len(missing):
                    log.info("distractor shards: %d/%d", done, len(missing))
    wall = time.perf_counter() - started
    computed = sum(len(group) for group, _ in missing)
    return uses, DistractorCost(computed, audio_seconds, cpu, wall)


def _prune(cache: Path, current: Path, idle_seconds: float = 3600.0) -> None:
    """Remove the shards of older fingerprints code (about a gigabyte each at x100) once
    nothing has written to them for ``idle_seconds``, so a concurrent run is left alone."""
    for other in cache.glob("distractors-*"):
        if other != current and time.time() - other.stat().st_mtime > idle_seconds:
            shutil.rmtree(other, ignore_errors=True)


def _synth_spec(number: int) -> DistractorSpec:
    return DistractorSpec(SYNTH_ID_BASE + number, f"synth:{DISTRACTOR_SEED_BASE + number}",
                          DISTRACTOR_SECONDS)


def load_shard(path: Path) -> Shard:
    # Our own cache, written by _compute_shard: pickle keeps whatever fields Landmarks has.
    with path.open("rb") as stream:
        shard: Shard = pickle.load(stream)
    return shard


def code_key() -> str:
    """Hash of the code distractor landmarks depend on: the whole fingerprints package (what
    a Landmarks holds grows with the index's needs, so no narrower set of modules is safe)."""
    digest = hashlib.sha256(repr(LandmarkParams()).encode())
    package = Path(fingerprints.__file__ or "").parent
    for source in sorted(package.glob("*.py")):
        digest.update(source.name.encode())
        digest.update(source.read_bytes())
    return digest.hexdigest()[:12]


def _group_key(group: Sequence[DistractorSpec]) -> str:
    text = "|".join(f"{s.recording_id}:{s.source}:{s.seconds}" for s in group)
    return f"{group[0].recording_id}-{len(group)}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"


def _compute_shard(job: tuple[tuple[DistractorSpec, ...], Path]) -> tuple[float, float]:
    group, path = job
    before = cpu_seconds()
    shard: Shard = []
    for spec in group:
        kind, _, value = spec.source.partition(":")
        if kind == "reversed":
            decoded = decode_file(value)
            samples = np.ascontiguousarray(decoded.samples[::-1])
        else:
            samples = synthesize_track(int(value), spec.seconds, SAMPLE_RATE)
        audio = Audio(samples=samples, sample_rate=SAMPLE_RATE)
        shard.append((spec.recording_id, extract_landmarks(audio), audio.duration))
    temporary = path.with_suffix(f".tmp-{os.getpid()}")  # concurrent runs may share a cache
    with temporary.open("wb") as stream:
        pickle.dump(shard, stream, protocol=pickle.HIGHEST_PROTOCOL)
    temporary.replace(path)  # a shard file exists only once it is complete
    return cpu_seconds() - before, float(sum(duration for _, _, duration in shard))
