"""Chromaprint similarity: the same recording re-encoded versus different recordings."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fingerprints import chromaprint_fingerprint, chromaprint_similarity, decode_file
from tests.audio_tools import reencode_mp3
from tests.fingerprints.conftest import Catalog


def test_recording_and_its_mp3_reencode_are_similar(catalog: Catalog, tmp_path: Path) -> None:
    original = chromaprint_fingerprint(decode_file(catalog.paths[101]))
    mp3 = reencode_mp3(catalog.paths[101], tmp_path / "copy.mp3")
    assert chromaprint_similarity(original, chromaprint_fingerprint(decode_file(mp3))) > 0.8


def test_different_recordings_are_not_similar(catalog: Catalog) -> None:
    prints = [chromaprint_fingerprint(decode_file(catalog.paths[i])) for i in (102, 103, 104)]
    for first in range(3):
        for second in range(first + 1, 3):
            assert chromaprint_similarity(prints[first], prints[second]) < 0.3


def test_fingerprint_is_raw_uint32_and_identical_copies_score_one(catalog: Catalog) -> None:
    fingerprint = chromaprint_fingerprint(decode_file(catalog.paths[105]))
    assert fingerprint.dtype == np.uint32
    assert len(fingerprint) > 100
    assert chromaprint_similarity(fingerprint, fingerprint.copy()) == 1.0


def test_empty_fingerprint_is_not_similar() -> None:
    some = np.arange(50, dtype=np.uint32)
    assert chromaprint_similarity(some, np.zeros(0, dtype=np.uint32)) == 0.0
