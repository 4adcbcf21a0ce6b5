"""The alterations pirates apply to recordings, for the demonstration, tests and benchmarks.

Each function takes and returns mono float32 samples at one rate. Codec round trips and the
speed, pitch and tempo changes run ffmpeg (libmp3lame, rubberband, atempo) through pipes; the
rest is numpy. Nothing here is used when identifying: it only makes test material.
"""

from __future__ import annotations

import subprocess

import numpy as np

from fingerprints.errors import FingerprintError

_CODEC_ARGS = {
    "mp3": ["-c:a", "libmp3lame", "-f", "mp3"],
    "ogg": ["-c:a", "libvorbis", "-f", "ogg"],
    "opus": ["-c:a", "libopus", "-f", "ogg"],
    "aac": ["-c:a", "aac", "-f", "adts"],
}


def _ffmpeg(args: list[str], data: bytes, timeout: float = 60.0) -> bytes:
    command = ["ffmpeg", "-nostdin", "-v", "error", *args]
    try:
        done = subprocess.run(command, input=data, capture_output=True, timeout=timeout,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FingerprintError(f"ffmpeg failed: {exc}") from exc
    if done.returncode != 0:
        raise FingerprintError(f"ffmpeg failed: {done.stderr.decode(errors='replace')[-400:]}")
    return done.stdout


def _raw_in(sample_rate: int) -> list[str]:
    return ["-f", "f32le", "-ar", str(sample_rate), "-ac", "1", "-i", "pipe:0"]


def _raw_out(sample_rate: int) -> list[str]:
    return ["-f", "f32le", "-ar", str(sample_rate), "-ac", "1", "pipe:1"]


def _samples(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<f4").astype(np.float32)


def encode(samples: np.ndarray, sample_rate: int, codec: str = "mp3",
           bitrate: str = "64k") -> bytes:
    """The samples encoded as a file's bytes (mp3, ogg, opus or aac)."""
    args = [*_raw_in(sample_rate), "-b:a", bitrate, *_CODEC_ARGS[codec], "pipe:1"]
    return _ffmpeg(args, np.asarray(samples, dtype="<f4").tobytes())


def reencode(samples: np.ndarray, sample_rate: int, codec: str = "mp3",
             bitrate: str = "64k") -> np.ndarray:
    """A lossy round trip through ``codec`` at ``bitrate``."""
    encoded = encode(samples, sample_rate, codec, bitrate)
    return _samples(_ffmpeg(["-i", "pipe:0", *_raw_out(sample_rate)], encoded))


def filtered(samples: np.ndarray, sample_rate: int, audio_filter: str) -> np.ndarray:
    """The samples through an ffmpeg audio filter chain, back at ``sample_rate``."""
    args = [*_raw_in(sample_rate), "-af", audio_filter, *_raw_out(sample_rate)]
    return _samples(_ffmpeg(args, np.asarray(samples, dtype="<f4").tobytes()))


def change_speed(samples: np.ndarray, sample_rate: int, factor: float) -> np.ndarray:
    """Resampling (pitch and tempo together, like a record played fast): factor 1.25 is
    "nightcore"."""
    return filtered(samples, sample_rate,
                    f"asetrate={sample_rate * factor:.3f},aresample={sample_rate}")


def shift_pitch(samples: np.ndarray, sample_rate: int, semitones: float) -> np.ndarray:
    """Pitch shifted, tempo kept (rubberband)."""
    return filtered(samples, sample_rate, f"rubberband=pitch={2 ** (semitones / 12):.6f}")


def change_tempo(samples: np.ndarray, sample_rate: int, factor: float) -> np.ndarray:
    """Tempo changed, pitch kept (rubberband)."""
    return filtered(samples, sample_rate, f"rubberband=tempo={factor:.6f}")


def lowpass(samples: np.ndarray, sample_rate: int, cutoff_hz: float) -> np.ndarray:
    return filtered(samples, sample_rate, f"lowpass=f={cutoff_hz}:poles=2,lowpass=f={cutoff_hz}")


def excerpt(samples: np.ndarray, sample_rate: int, start: float, seconds: float) -> np.ndarray:
    begin = round(start * sample_rate)
    return np.asarray(samples[begin:begin + round(seconds * sample_rate)], dtype=np.float32)


def add_noise(samples: np.ndarray, snr_db: float, rng: np.random.Generator,
              color: str = "white") -> np.ndarray:
    """The samples plus white or pink noise at ``snr_db`` (signal power over noise power)."""
    noise = rng.standard_normal(len(samples))
    if color == "pink":  # 1/f power: shape white noise by 1/sqrt(f) in the frequency domain
        spectrum = np.fft.rfft(noise)
        spectrum[1:] /= np.sqrt(np.arange(1, len(spectrum)))
        spectrum[0] = 0
        noise = np.fft.irfft(spectrum, n=len(samples))
    elif color != "white":
        raise ValueError(f"unknown noise colour {color!r}")
    signal_power = float(np.mean(np.square(samples, dtype=np.float64))) or 1e-12
    noise *= np.sqrt(signal_power / (10 ** (snr_db / 10)) / np.mean(noise ** 2))
    mixed = samples + noise
    peak = float(np.max(np.abs(mixed))) or 1.0
    return (mixed / max(1.0, peak)).astype(np.float32)


def embed(inner: np.ndarray, outer: np.ndarray, at_seconds: float,
          sample_rate: int) -> np.ndarray:
    """``inner`` placed over ``outer`` from ``at_seconds`` on (replacing it there)."""
    result = np.array(outer, dtype=np.float32, copy=True)
    start = round(at_seconds * sample_rate)
    end = min(len(result), start + len(inner))
    result[start:end] = inner[:end - start]
    return result
