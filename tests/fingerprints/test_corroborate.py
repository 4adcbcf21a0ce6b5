"""Corroboration on the reference's peaks: far above chance at a true alignment, at chance
elsewhere in the same recording and in another one."""

from __future__ import annotations

import numpy as np
import pytest

from fingerprints import SAMPLE_RATE, Audio, FingerprintIndex, alter, decode_file
from fingerprints.corroborate import (
    CorroborationParams,
    corroborated_confidence,
    peak_deviations,
)
from fingerprints.landmarks import extract_query_landmarks
from fingerprints.matcher import DENSE_QUERY_PARAMS
from tests.fingerprints.conftest import Catalog

PARAMS = CorroborationParams()


def _slot(index: FingerprintIndex, recording_id: int) -> int:
    slots = np.arange(len(index))
    return int(slots[index.slot_recording_id(slots) == recording_id][0])


@pytest.fixture(scope="module")
def noisy_peaks(catalog: Catalog) -> tuple[np.ndarray, np.ndarray, float]:
    """The dense peaks of 10 s of recording 117 from 12 s, under noise 5 dB louder."""
    piece = alter.excerpt(decode_file(catalog.paths[117]).samples, SAMPLE_RATE, 12.0, 10.0)
    query = Audio(alter.add_noise(piece, -5.0, np.random.default_rng(0)), SAMPLE_RATE)
    landmarks = extract_query_landmarks(query, params=DENSE_QUERY_PARAMS)
    return landmarks.peak_times, landmarks.peak_bins, landmarks.frame_seconds


def test_the_true_alignment_stands_far_above_the_null(
        catalog_index: FingerprintIndex, noisy_peaks: tuple[np.ndarray, np.ndarray, float]
) -> None:
    times, bins, frame = noisy_peaks
    deviations = peak_deviations(catalog_index, _slot(catalog_index, 117), times, bins,
                                 12.0 / frame, 1.0, PARAMS)
    assert deviations > PARAMS.min_deviations + 2


@pytest.mark.parametrize(("recording_id", "seconds"), [(117, 30.0), (105, 12.0), (123, 3.0)])
def test_a_wrong_alignment_stays_at_chance(
        catalog_index: FingerprintIndex, noisy_peaks: tuple[np.ndarray, np.ndarray, float],
        recording_id: int, seconds: float) -> None:
    times, bins, frame = noisy_peaks
    deviations = peak_deviations(catalog_index, _slot(catalog_index, recording_id), times,
                                 bins, seconds / frame, 1.0, PARAMS)
    assert deviations < PARAMS.min_deviations - 2


def test_both_the_pairs_and_the_peaks_must_pass() -> None:
    assert corroborated_confidence(PARAMS.min_excess + 3, PARAMS.min_deviations + 3,
                                   PARAMS) > 0.9
    assert corroborated_confidence(PARAMS.min_excess + 3, PARAMS.min_deviations - 1,
                                   PARAMS) < 0.5
    assert corroborated_confidence(PARAMS.min_excess - 1, PARAMS.min_deviations + 9,
                                   PARAMS) < 0.5
    assert corroborated_confidence(PARAMS.min_excess, PARAMS.min_deviations,
                                   PARAMS) == pytest.approx(0.5)
