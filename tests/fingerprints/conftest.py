"""Session fixtures for the fingerprints tests: a synthetic catalog and its landmark index.

The catalog is 30 synthetic tracks (fixed seeds, 40-58 s) written as 22.05 kHz WAV files,
indexed under recording ids that differ from the seeds, so a mix-up of the two shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from fingerprints import (
    FingerprintIndex,
    Matcher,
    decode_file,
    extract_landmarks,
    synthesize_track,
    write_wav,
)

CATALOG_SIZE = 30
SYNTH_RATE = 22050


def catalog_seed(number: int) -> int:
    return 7000 + number


@dataclass
class Catalog:
    """The reference tracks: recording id -> WAV path and duration, plus their index."""

    directory: Path
    paths: dict[int, Path] = field(default_factory=dict)
    durations: dict[int, float] = field(default_factory=dict)

    @property
    def index_directory(self) -> Path:
        return self.directory / "index"


@pytest.fixture(scope="session")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    result = Catalog(directory=tmp_path_factory.mktemp("catalog"))
    index = FingerprintIndex.open(result.index_directory)
    for number in range(CATALOG_SIZE):
        recording_id = 100 + number
        seconds = 40.0 + 2.0 * (number % 10)
        path = result.directory / f"track-{recording_id}.wav"
        write_wav(path, synthesize_track(catalog_seed(number), seconds, SYNTH_RATE), SYNTH_RATE)
        audio = decode_file(path)
        index.add(recording_id, extract_landmarks(audio), audio.duration)
        result.paths[recording_id] = path
        result.durations[recording_id] = audio.duration
    index.save()
    return result


@pytest.fixture(scope="session")
def catalog_index(catalog: Catalog) -> FingerprintIndex:
    """The saved catalog index, reopened from disk (tests must not modify it)."""
    return FingerprintIndex.open(catalog.index_directory)


@pytest.fixture(scope="session")
def matcher(catalog_index: FingerprintIndex) -> Matcher:
    return Matcher(catalog_index)
