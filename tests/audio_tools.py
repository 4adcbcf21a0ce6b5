"""Audio degradations for tests: ffmpeg cuts and re-encodes, numpy noise, espeak-ng speech.

Each helper writes a new file (or returns new samples) and raises ``subprocess``'s
``CalledProcessError`` if the tool fails, so a broken tool shows up as a test error.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from fingerprints import alter

# ffmpeg output options per file suffix, for building files of every format we accept.
CODEC_OPTIONS: dict[str, list[str]] = {
    ".wav": ["-c:a", "pcm_s16le"],
    ".flac": ["-c:a", "flac"],
    ".mp3": ["-c:a", "libmp3lame", "-b:a", "128k"],
    ".ogg": ["-c:a", "libvorbis", "-q:a", "4"],
    ".opus": ["-c:a", "libopus", "-b:a", "64k"],
    ".m4a": ["-c:a", "aac", "-b:a", "128k"],
}


def ffmpeg(*args: str) -> None:
    """Run ffmpeg quietly, overwriting outputs, failing loudly."""
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


def convert(source: Path, target: Path) -> Path:
    """Re-encode ``source`` into the format named by ``target``'s suffix."""
    ffmpeg("-i", str(source), *CODEC_OPTIONS[target.suffix], str(target))
    return target


def cut_excerpt(source: Path, target: Path, start: float, seconds: float) -> Path:
    """Write ``seconds`` of ``source`` from ``start`` (sample-accurate: decoded, then cut)."""
    ffmpeg("-i", str(source), "-ss", f"{start:.6f}", "-t", f"{seconds:.6f}",
           *CODEC_OPTIONS.get(target.suffix, []), str(target))
    return target


def reencode_mp3(source: Path, target: Path, bitrate: str = "64k") -> Path:
    """MP3 re-encode with libmp3lame at a constant ``bitrate``, as pirated uploads often are."""
    ffmpeg("-i", str(source), "-c:a", "libmp3lame", "-b:a", bitrate, str(target))
    return target


def add_noise(samples: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    """``samples`` plus white noise ``snr_db`` below their mean power (fingerprints.alter)."""
    return alter.add_noise(samples, snr_db, np.random.default_rng(seed))


def speak(text: str, target: Path) -> Path:
    """Speech by espeak-ng, as a WAV file."""
    subprocess.run(["espeak-ng", "-w", str(target), text], check=True)
    return target


def change_tempo(source: Path, target: Path, factor: float) -> Path:
    """Play ``factor`` times faster without changing pitch (ffmpeg's atempo)."""
    ffmpeg("-i", str(source), "-af", f"atempo={factor}", str(target))
    return target
