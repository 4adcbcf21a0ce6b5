"""Audio helpers of the benchmark: excerpts of files, file bytes, unrelated music, in-band noise.

Queries are made at :data:`MAKING_RATE` (44.1 kHz, like a pirate's file) and end as file bytes
decoded by the production decoder (:func:`fingerprints.decode.decode_bytes`), which brings them
to the matcher's rate. Reads no settings.
"""

from __future__ import annotations

import io
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import signal

from fingerprints import SAMPLE_RATE, synthesize_track
from fingerprints.alter import add_noise

MAKING_RATE = 44100
# Seeds of synthesized unrelated music; the distractor tracks of bench.distractors use seeds
# from DISTRACTOR_SEED_BASE on, so the ranges never meet.
UNRELATED_SEED_BASE = 50_000_000


class AudioToolError(RuntimeError):
    """ffmpeg or espeak-ng failed while making benchmark audio."""


def read_excerpt(path: Path, start: float, seconds: float | None,
                 sample_rate: int = MAKING_RATE) -> np.ndarray:
    """Mono float32 samples of ``path`` from ``start`` on (``seconds`` long, or to the end)."""
    command = ["ffmpeg", "-nostdin", "-v", "error", "-ss", f"{start:.3f}"]
    if seconds is not None:
        command += ["-t", f"{seconds:.3f}"]
    command += ["-i", str(path), "-map", "0:a:0", "-ac", "1", "-ar", str(sample_rate),
                "-f", "f32le", "-"]
    done = subprocess.run(command, capture_output=True, timeout=300, check=False)
    if done.returncode != 0:
        raise AudioToolError(f"ffmpeg could not read {path}: {done.stderr.decode()[-300:]}")
    usable = len(done.stdout) - len(done.stdout) % 4
    return np.frombuffer(done.stdout[:usable], dtype="<f4").astype(np.float32)


def wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    """The samples as a 32-bit float WAV file."""
    buffer = io.BytesIO()
    sf.write(buffer, np.asarray(samples, dtype=np.float32), sample_rate, format="WAV",
             subtype="FLOAT")
    return buffer.getvalue()


def resample(samples: np.ndarray, rate_from: int, rate_to: int) -> np.ndarray:
    divisor = int(np.gcd(rate_from, rate_to))
    return signal.resample_poly(samples, rate_to // divisor, rate_from // divisor).astype(
        np.float32)


def add_inband_noise(samples: np.ndarray, sample_rate: int, snr_db: float,
                     rng: np.random.Generator, color: str) -> np.ndarray:
    """``samples`` plus noise at ``snr_db`` measured in the band the matcher analyses.

    Full-band white noise at 44.1 kHz would put three quarters of its power above the
    matcher's 5.5 kHz band and so be about 6 dB easier than its label. Here the noise is made
    by :func:`fingerprints.alter.add_noise` at the matcher's rate against the band-limited
    signal, then brought to ``sample_rate``: the SNR is exact where it matters.
    """
    band = resample(samples, sample_rate, SAMPLE_RATE)
    # Scaled far down, add_noise never has to renormalise a clipped mix, so the noise it adds
    # can be recovered exactly.
    scale = 1e-3
    noisy = add_noise(band * scale, snr_db, rng, color=color)
    noise = (noisy.astype(np.float64) - band * scale) / scale
    full = resample(noise, SAMPLE_RATE, sample_rate)
    full = np.pad(full, (0, max(0, len(samples) - len(full))))[: len(samples)]
    mixed = samples + full.astype(np.float32)
    peak = float(np.max(np.abs(mixed))) if len(mixed) else 1.0
    return (mixed / max(1.0, peak)).astype(np.float32)


@dataclass(frozen=True)
class UnrelatedMusic:
    """Music not in the catalog: planetblupi tracks and synthesized pieces of reserved seeds."""

    paths: tuple[Path, ...]
    durations: tuple[float, ...]

    def excerpt(self, rng: np.random.Generator, seconds: float,
                sample_rate: int = MAKING_RATE) -> tuple[np.ndarray, str]:
        """``seconds`` of unrelated music and a word on where it came from; half are recorded
        music, half synthesized."""
        if self.paths and rng.random() < 0.5:
            number = int(rng.integers(len(self.paths)))
            start = float(rng.uniform(0.0, max(0.0, self.durations[number] - seconds - 1.0)))
            samples = read_excerpt(self.paths[number], start, seconds, sample_rate)
            return _fit(samples, seconds, sample_rate), f"{self.paths[number].stem}@{start:.1f}"
        seed = UNRELATED_SEED_BASE + int(rng.integers(1_000_000))
        return synthesize_track(seed, seconds, sample_rate), f"synth:{seed}"


def _fit(samples: np.ndarray, seconds: float, sample_rate: int) -> np.ndarray:
    """Exactly ``seconds`` long: cut, or padded by repeating (short files)."""
    length = round(seconds * sample_rate)
    if len(samples) == 0:
        return np.zeros(length, dtype=np.float32)
    if len(samples) < length:
        samples = np.tile(samples, length // len(samples) + 1)
    return np.asarray(samples[:length], dtype=np.float32)
