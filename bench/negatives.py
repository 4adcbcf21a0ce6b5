"""Negative queries: audio in which nothing of the catalog may be found.

Kinds: ``speech`` (espeak-ng, several voices, rates and pitches), ``music`` (planetblupi
tracks, recorded music that is not in the catalog), ``synth`` (synthesized music of seeds no
distractor uses), ``noise`` (white, pink and brown noise and mains hum at several levels) and
``silence`` (digital silence and dither). Every negative is 10 s long and, like the positives,
goes through :func:`fingerprints.decode.decode_bytes`. Reads no settings.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.audio import MAKING_RATE, AudioToolError, UnrelatedMusic, read_excerpt, wav_bytes
from bench.cases import QUERY_SECONDS, Query
from fingerprints import SAMPLE_RATE, decode_bytes, synthesize_track

KINDS = ("speech", "music", "synth", "noise", "silence")
# Negatives are made in chunks of this many, so that the kinds spread over the workers.
_CHUNK = 10
# Synthesized negatives use seeds from here on (the embedded case uses UNRELATED_SEED_BASE,
# distractors DISTRACTOR_SEED_BASE); none of them is in any index.
_SYNTH_SEED_BASE = 70_000_000
_VOICES = ("en", "en-us", "en+f3", "en-us+m3", "de", "fr", "es", "it", "nl", "pl", "sv",
           "pt")
_TEXT = (
    "the quick brown fox jumps over a lazy dog while seven rights holders watch the "
    "monitor report every upload found on the web today notice counsel evidence music "
    "recording album track melody rhythm chorus verse bridge artist label licence contract "
    "stream download mirror archive capture detection case removal request reply deadline "
    "morning evening river mountain village harbour window garden kitchen station market "
    "yellow green silver golden quiet loud gentle rapid slowly quickly never always often "
    "perhaps although because therefore however meanwhile yesterday tomorrow"
)
_WORDS = tuple(_TEXT.split())


@dataclass(frozen=True)
class NegativeJob:
    kind: str
    numbers: tuple[int, ...]
    seed: int
    unrelated: UnrelatedMusic
    directory: Path


def jobs(per_kind: dict[str, int], seed: int, unrelated: UnrelatedMusic,
         directory: Path) -> list[NegativeJob]:
    result = []
    for kind, count in per_kind.items():
        if kind not in KINDS:
            raise ValueError(f"unknown negative kind {kind!r}; known: {', '.join(KINDS)}")
        for first in range(0, count, _CHUNK):
            numbers = tuple(range(first, min(count, first + _CHUNK)))
            result.append(NegativeJob(kind, numbers, seed, unrelated, directory))
    return result


def make(job: NegativeJob) -> list[Query]:
    (job.directory / f"neg-{job.kind}").mkdir(parents=True, exist_ok=True)
    queries = []
    for number in job.numbers:
        rng = np.random.default_rng([job.seed, 1000 + KINDS.index(job.kind), number])
        samples, source = _MAKERS[job.kind](rng, number, job.unrelated)
        samples = decode_bytes(wav_bytes(_fit(samples), MAKING_RATE)).samples
        name = f"neg-{job.kind}/{number}.npy"
        np.save(job.directory / name, samples)
        queries.append(Query(query_id=f"neg-{job.kind}/{number}", case=f"neg-{job.kind}",
                             file=name, seconds=len(samples) / SAMPLE_RATE, source=source))
    return queries


def _speech(rng: np.random.Generator, number: int,
            unrelated: UnrelatedMusic) -> tuple[np.ndarray, str]:
    voice = _VOICES[number % len(_VOICES)]
    rate = int(rng.integers(130, 200))
    pitch = int(rng.integers(20, 80))
    text = " ".join(str(word) for word in rng.choice(_WORDS, size=45))
    with tempfile.TemporaryDirectory() as temporary:
        wav = Path(temporary) / "speech.wav"
        done = subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(rate), "-p", str(pitch), "-w", str(wav),
             text], capture_output=True, timeout=60, check=False)
        if done.returncode != 0 or not wav.exists():
            raise AudioToolError(f"espeak-ng failed: {done.stderr.decode()[-300:]}")
        samples = read_excerpt(wav, 0.0, QUERY_SECONDS)
    return samples, f"speech:{voice}:s{rate}:p{pitch}"


def _music(rng: np.random.Generator, number: int,
           unrelated: UnrelatedMusic) -> tuple[np.ndarray, str]:
    if not unrelated.paths:
        raise AudioToolError("no unrelated music files for the music negatives")
    track = number % len(unrelated.paths)
    start = float(rng.uniform(0.0, max(0.0, unrelated.durations[track] - QUERY_SECONDS - 1)))
    samples = read_excerpt(unrelated.paths[track], start, QUERY_SECONDS)
    return samples, f"music:{unrelated.paths[track].stem}@{start:.1f}"


def _synth(rng: np.random.Generator, number: int,
           unrelated: UnrelatedMusic) -> tuple[np.ndarray, str]:
    seed = _SYNTH_SEED_BASE + number
    return synthesize_track(seed, QUERY_SECONDS, MAKING_RATE), f"synth:{seed}"


def _noise(rng: np.random.Generator, number: int,
           unrelated: UnrelatedMusic) -> tuple[np.ndarray, str]:
    colour = ("white", "pink", "brown", "hum")[number % 4]
    level_db = float(rng.uniform(-35.0, -10.0))
    length = int(QUERY_SECONDS * MAKING_RATE)
    if colour == "hum":  # 50 or 60 Hz mains hum with harmonics, over faint white noise
        t = np.arange(length) / MAKING_RATE
        base = 50.0 if rng.random() < 0.5 else 60.0
        wave = sum(np.sin(2 * np.pi * base * k * t) / k for k in range(1, 8))
        wave = wave + 0.01 * rng.standard_normal(length)
    else:
        wave = rng.standard_normal(length)
        if colour != "white":
            spectrum = np.fft.rfft(wave)
            power = 1.0 if colour == "pink" else 2.0  # 1/f or 1/f^2 power
            spectrum[1:] /= np.arange(1, len(spectrum)) ** (power / 2)
            spectrum[0] = 0
            wave = np.fft.irfft(spectrum, n=length)
    wave = np.asarray(wave, dtype=np.float64)
    wave *= 10 ** (level_db / 20) / max(float(np.sqrt(np.mean(wave**2))), 1e-12)
    return wave.astype(np.float32), f"noise:{colour}:{level_db:.0f}dBFS"


def _silence(rng: np.random.Generator, number: int,
             unrelated: UnrelatedMusic) -> tuple[np.ndarray, str]:
    length = int(QUERY_SECONDS * MAKING_RATE)
    if number % 2 == 0:
        return np.zeros(length, dtype=np.float32), "silence:digital"
    # 16-bit dither: what a "silent" track of a real file holds.
    dither = (rng.random(length) - rng.random(length)) / 32768.0
    return dither.astype(np.float32), "silence:dither"


_MAKERS = {"speech": _speech, "music": _music, "synth": _synth, "noise": _noise,
           "silence": _silence}


def _fit(samples: np.ndarray) -> np.ndarray:
    length = int(QUERY_SECONDS * MAKING_RATE)
    samples = np.asarray(samples[:length], dtype=np.float32)
    if len(samples) < length:  # espeak-ng ran out of words: the rest is silence
        samples = np.pad(samples, (0, length - len(samples)))
    return np.clip(samples, -1.0, 1.0)
