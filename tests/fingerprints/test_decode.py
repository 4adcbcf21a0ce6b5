"""Decoding files and byte strings with ffmpeg, and refusing what cannot be decoded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fingerprints import SAMPLE_RATE, DecodeError, FingerprintError, decode_bytes, decode_file
from tests.audio_tools import CODEC_OPTIONS, convert, cut_excerpt
from tests.fingerprints.conftest import Catalog


@pytest.fixture(scope="module")
def clip(catalog: Catalog, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four seconds of music as 22.05 kHz WAV."""
    directory = tmp_path_factory.mktemp("decode")
    return cut_excerpt(catalog.paths[100], directory / "clip.wav", 5.0, 4.0)


@pytest.mark.parametrize("suffix", sorted(CODEC_OPTIONS))
def test_common_formats_made_by_ffmpeg_decode_to_mono_float(
    clip: Path, tmp_path: Path, suffix: str
) -> None:
    path = convert(clip, tmp_path / f"clip{suffix}")
    audio = decode_file(path)
    assert audio.sample_rate == SAMPLE_RATE
    assert audio.samples.dtype == np.float32
    assert audio.samples.ndim == 1
    assert audio.duration == pytest.approx(4.0, abs=0.1)
    assert 0.05 < float(np.max(np.abs(audio.samples))) <= 1.0


@pytest.mark.parametrize("suffix", [".mp3", ".m4a", ".flac"])
def test_bytes_decode_like_the_file(clip: Path, tmp_path: Path, suffix: str) -> None:
    path = convert(clip, tmp_path / f"clip{suffix}")
    from_file = decode_file(path)
    from_bytes = decode_bytes(path.read_bytes())
    assert from_bytes.duration == pytest.approx(from_file.duration, abs=0.05)


def test_max_seconds_truncates_decoding(clip: Path) -> None:
    assert decode_file(clip, max_seconds=1.5).duration == pytest.approx(1.5, abs=0.01)


def test_sample_rate_is_chosen_by_caller(clip: Path) -> None:
    audio = decode_file(clip, sample_rate=8000)
    assert audio.sample_rate == 8000
    assert len(audio.samples) == pytest.approx(32000, abs=50)


def test_truncated_file_raises_decode_error(clip: Path, tmp_path: Path) -> None:
    for suffix in (".wav", ".flac", ".mp3", ".m4a"):
        whole = convert(clip, tmp_path / f"whole{suffix}")
        truncated = tmp_path / f"truncated{suffix}"
        truncated.write_bytes(whole.read_bytes()[:40])
        with pytest.raises(DecodeError):
            decode_file(truncated)


def test_random_bytes_raise_decode_error(tmp_path: Path) -> None:
    junk = np.random.default_rng(4).integers(0, 256, 50_000, dtype=np.uint8).tobytes()
    path = tmp_path / "junk.mp3"
    path.write_bytes(junk)
    with pytest.raises(DecodeError):
        decode_file(path)
    with pytest.raises(DecodeError):
        decode_bytes(junk)


def test_empty_file_raises_decode_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.ogg"
    path.write_bytes(b"")
    with pytest.raises(DecodeError):
        decode_file(path)
    with pytest.raises(DecodeError):
        decode_bytes(b"")


def test_missing_file_raises_decode_error(tmp_path: Path) -> None:
    with pytest.raises(DecodeError, match="no such file"):
        decode_file(tmp_path / "absent.wav")


def test_error_message_carries_ffmpegs_reason(tmp_path: Path) -> None:
    path = tmp_path / "text.flac"
    path.write_text("this is not audio\n" * 100)
    with pytest.raises(DecodeError) as caught:
        decode_file(path)
    assert str(path) in str(caught.value)
    message = str(caught.value)
    assert "ffmpeg failed" in message
    assert len(message.split("): ", 1)[1]) > 10  # the tail of ffmpeg's own error output


def test_time_limit_raises_decode_error(clip: Path) -> None:
    with pytest.raises(DecodeError, match="longer than"):
        decode_file(clip, timeout=0.001)


def test_memory_limit_raises_decode_error(clip: Path) -> None:
    with pytest.raises(DecodeError):
        decode_file(clip, memory_limit_mb=8)


def test_decode_error_is_a_fingerprint_error() -> None:
    assert issubclass(DecodeError, FingerprintError)
