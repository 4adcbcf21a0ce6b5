"""Synthetic music: deterministic, distinct per seed, fast, and written as 16-bit WAV."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import soundfile as sf

from fingerprints import synthesize_track, write_wav


def test_same_seed_gives_same_samples() -> None:
    assert np.array_equal(synthesize_track(5, 8.0), synthesize_track(5, 8.0))


def test_different_seeds_give_different_music() -> None:
    first, second = synthesize_track(5, 8.0), synthesize_track(6, 8.0)
    assert np.corrcoef(first, second)[0, 1] < 0.2


def test_track_is_float_in_range_and_of_requested_length() -> None:
    samples = synthesize_track(9, 3.0, sample_rate=16000)
    assert samples.dtype == np.float32
    assert abs(len(samples) - 48000) <= 1
    assert 0.5 < float(np.max(np.abs(samples))) <= 1.0


def test_sections_of_one_track_differ() -> None:
    samples = synthesize_track(12, 40.0, sample_rate=8000)
    second = 8000
    first_part, later_part = samples[2 * second : 10 * second], samples[22 * second : 30 * second]
    assert np.corrcoef(first_part, later_part)[0, 1] < 0.5


def test_a_minute_renders_fast() -> None:
    started = time.perf_counter()
    synthesize_track(3, 60.0)
    # The budget is 0.5 s; the test allows for a busy CI machine.
    assert time.perf_counter() - started < 1.5


def test_write_wav_writes_16_bit_pcm(tmp_path: Path) -> None:
    path = tmp_path / "track.wav"
    write_wav(path, synthesize_track(1, 2.0, 22050), 22050)
    info = sf.info(str(path))
    assert (info.samplerate, info.channels, info.subtype) == (22050, 1, "PCM_16")
