"""Landmark extraction: peaks and pair hashes, silence, determinism, resampling."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from fingerprints import (
    SAMPLE_RATE,
    Audio,
    LandmarkParams,
    decode_file,
    extract_landmarks,
    synthesize_track,
    write_wav,
)
from fingerprints.landmarks import (
    HASH_BITS,
    REFERENCE_PARAMS,
    extract_query_landmarks,
    thinned_peaks,
)


@pytest.fixture(scope="module")
def music() -> Audio:
    return Audio(synthesize_track(42, 20.0, SAMPLE_RATE), SAMPLE_RATE)


def test_silence_has_no_landmarks() -> None:
    silence = Audio(np.zeros(5 * SAMPLE_RATE, dtype=np.float32), SAMPLE_RATE)
    landmarks = extract_landmarks(silence)
    assert len(landmarks) == 0
    assert len(landmarks.peak_times) == 0


def test_near_silence_has_no_landmarks() -> None:
    hiss = np.random.default_rng(0).normal(0.0, 3e-4, 5 * SAMPLE_RATE).astype(np.float32)
    assert len(extract_landmarks(Audio(hiss, SAMPLE_RATE))) == 0


def test_quiet_music_still_has_landmarks(music: Audio) -> None:
    quiet = Audio(music.samples * 0.03, SAMPLE_RATE)  # -30 dB
    assert len(extract_landmarks(quiet)) > 0.5 * len(extract_landmarks(music))


def test_music_has_bounded_peak_and_hash_density(music: Audio) -> None:
    params = LandmarkParams()
    landmarks = extract_landmarks(music, params=params)
    peaks_per_second = len(landmarks.peak_times) / music.duration
    assert 10 < peaks_per_second <= params.peaks_per_second + 1
    assert len(landmarks) <= params.fanout * len(landmarks.peak_times)
    assert landmarks.hashes.dtype == np.uint32
    assert int(landmarks.hashes.max()) < 2**HASH_BITS
    assert landmarks.times.dtype == np.uint32
    assert np.all(np.diff(landmarks.times.astype(np.int64)) >= 0)
    assert len(landmarks.freqs) == len(landmarks.hashes)


def test_extraction_is_deterministic(music: Audio) -> None:
    first, second = extract_landmarks(music), extract_landmarks(music)
    assert np.array_equal(first.hashes, second.hashes)
    assert np.array_equal(first.times, second.times)


def test_other_sample_rates_are_resampled_to_the_same_frame_grid(tmp_path: Path) -> None:
    samples = synthesize_track(8, 10.0, 22050)
    write_wav(tmp_path / "track.wav", samples, 22050)
    by_ffmpeg = extract_landmarks(decode_file(tmp_path / "track.wav"))
    by_us = extract_landmarks(Audio(samples, 22050))
    assert by_us.frame_seconds == by_ffmpeg.frame_seconds
    shared = np.intersect1d(
        by_ffmpeg.hashes.astype(np.int64) << 32 | by_ffmpeg.times,
        by_us.hashes.astype(np.int64) << 32 | by_us.times,
    )
    assert len(shared) > 0.7 * len(by_ffmpeg)


def test_query_shifts_add_landmarks_without_duplicates(music: Audio) -> None:
    single = extract_query_landmarks(music, shifts=1)
    shifted = extract_query_landmarks(music, shifts=4)
    assert len(shifted) > len(single)
    keys = shifted.hashes.astype(np.int64) << 32 | shifted.times
    assert len(np.unique(keys)) == len(keys)


def test_scheme_names_the_analysis_parameters() -> None:
    assert LandmarkParams().scheme != LandmarkParams(hop=128).scheme
    assert LandmarkParams().scheme == LandmarkParams(fanout=3).scheme


def test_invalid_target_zone_is_refused() -> None:
    with pytest.raises(ValueError):
        LandmarkParams(max_dt=64)


def test_interpolated_peak_bins_lie_within_half_a_bin_of_the_peak_bins(music: Audio) -> None:
    landmarks = extract_landmarks(music)
    offsets = landmarks.peak_bins - landmarks.peak_freqs.astype(np.float32)
    assert len(offsets) == len(landmarks.peak_times)
    assert np.all(np.abs(offsets) <= 0.5)
    assert np.std(offsets) > 0.05  # really refined, not just copied


def test_a_pure_tone_gets_its_frequency_to_a_tenth_of_a_bin() -> None:
    params = LandmarkParams()
    frequency = 1000.3
    seconds = np.arange(3 * SAMPLE_RATE) / SAMPLE_RATE
    tone = (0.5 * np.sin(2 * np.pi * frequency * seconds)).astype(np.float32)
    landmarks = extract_landmarks(Audio(tone, SAMPLE_RATE), params=params)
    assert len(landmarks.peak_bins) > 0
    assert np.median(landmarks.peak_bins) == pytest.approx(frequency / params.bin_hz, abs=0.1)


def test_references_are_the_strongest_subset_of_a_query_analysis(music: Audio) -> None:
    # The index holds sparse references; a query analysed densely must contain their peaks.
    reference = extract_landmarks(music)
    query = extract_query_landmarks(music, shifts=1)
    assert len(reference.peak_times) < 0.7 * len(query.peak_times)
    query_peaks = set(zip(query.peak_times.tolist(), query.peak_freqs.tolist(), strict=True))
    reference_peaks = set(zip(reference.peak_times.tolist(), reference.peak_freqs.tolist(),
                              strict=True))
    assert len(reference_peaks & query_peaks) >= 0.95 * len(reference_peaks)
    # Thinning the query to the reference density gives back (nearly) the reference's peaks.
    times, bins = thinned_peaks(query, REFERENCE_PARAMS.peaks_per_second)
    thinned = set(zip(times.tolist(), np.rint(bins).astype(int).tolist(), strict=True))
    assert len(thinned & reference_peaks) >= 0.9 * len(reference_peaks)
    assert len(times) <= len(reference.peak_times) * 1.05


def test_thinning_without_strengths_keeps_every_peak(music: Audio) -> None:
    query = extract_query_landmarks(music, shifts=1)
    bare = dataclasses.replace(query, peak_strengths=np.zeros(0, dtype=np.float32))
    times, _ = thinned_peaks(bare, 1.0)
    assert len(times) == len(query.peak_times)
