"""Deterministic synthetic music for tests, the demo and benchmarks.

``synthesize_track(seed)`` renders a short piece of music, not a test tone: each seed draws its
own key, mode, tempo, instrument timbres, chord progressions, a melody that keeps wandering, a
bass line and a drum pattern with fills, so that tracks of different seeds differ and the
sections of one track differ too (a landmark matcher must find *where* an excerpt came from).
Everything is numpy; note waveforms are cached per (instrument, pitch, length) so a minute of
audio renders in well under half a second. Reads no settings.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import soundfile as sf

_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_MINOR = (0, 2, 3, 5, 7, 8, 10)


@dataclass(frozen=True)
class _Timbre:
    """Relative harmonic amplitudes plus envelope times of one instrument."""

    harmonics: tuple[float, ...]
    attack: float  # seconds to full level
    decay: float  # exponential decay time constant, seconds
    sustain: float  # level the decay settles to, relative to the peak
    vibrato: float  # vibrato depth in semitones (0 = none)


def _random_timbre(rng: np.random.Generator, kind: str) -> _Timbre:
    count = int(rng.integers(5, 11))
    n = np.arange(1, count + 1, dtype=np.float64)
    if kind == "odd":  # clarinet/square-like
        amps = np.where(n % 2 == 1, 1.0 / n, 0.08 / n)
    elif kind == "saw":  # string/brass-like
        amps = 1.0 / n ** rng.uniform(0.8, 1.4)
    else:  # "bell": uneven partials, strong upper harmonics
        amps = rng.uniform(0.1, 1.0, size=count) / np.sqrt(n)
    amps[0] = 1.0
    return _Timbre(
        harmonics=tuple(float(a) for a in amps),
        attack=float(rng.uniform(0.004, 0.04)),
        decay=float(rng.uniform(0.15, 0.8)),
        sustain=float(rng.uniform(0.15, 0.5)),
        vibrato=float(rng.choice([0.0, 0.0, rng.uniform(0.05, 0.25)])),
    )


class _Renderer:
    """Adds note and drum events into one output buffer, caching rendered waveforms."""

    def __init__(self, total: int, sample_rate: int) -> None:
        self.out = np.zeros(total, dtype=np.float32)
        self.sample_rate = sample_rate
        self._cache: dict[tuple[int, int, int], np.ndarray] = {}

    def add(self, start: float, wave: np.ndarray, gain: float) -> None:
        begin = int(start * self.sample_rate)
        if begin >= len(self.out) or begin < 0:
            return
        end = min(len(self.out), begin + len(wave))
        self.out[begin:end] += gain * wave[: end - begin]

    def note(self, timbre_id: int, timbre: _Timbre, midi: int, seconds: float) -> np.ndarray:
        length = max(1, int(seconds * self.sample_rate))
        key = (timbre_id, midi, length)
        wave = self._cache.get(key)
        if wave is None:
            wave = _render_note(timbre, midi, length, self.sample_rate)
            self._cache[key] = wave
        return wave


def _render_note(timbre: _Timbre, midi: int, length: int, sample_rate: int) -> np.ndarray:
    t = np.arange(length, dtype=np.float64) / sample_rate
    freq = 440.0 * 2.0 ** ((midi - 69) / 12.0)
    phase = 2.0 * np.pi * freq * t
    if timbre.vibrato:
        depth = (2.0 ** (timbre.vibrato / 12.0) - 1.0) * freq
        phase += depth / 5.5 * np.sin(2.0 * np.pi * 5.5 * t)
    nyquist = sample_rate / 2.0
    wave = np.zeros(length, dtype=np.float64)
    for number, amp in enumerate(timbre.harmonics, start=1):
        if freq * number >= nyquist * 0.95:
            break
        wave += amp * np.sin(number * phase)
    envelope = np.minimum(1.0, t / timbre.attack)
    envelope *= timbre.sustain + (1.0 - timbre.sustain) * np.exp(-t / timbre.decay)
    release = min(length, int(0.03 * sample_rate))  # short fade-out avoids clicks
    envelope[length - release :] *= np.linspace(1.0, 0.0, release)
    peak = float(np.max(np.abs(wave))) or 1.0
    return (wave * envelope / peak).astype(np.float32)


def _drum_kit(
    rng: np.random.Generator, noise_rng: np.random.Generator, sample_rate: int
) -> dict[str, list[np.ndarray]]:
    """A few variants of kick, snare and hi-hat, drawn once per track.

    Musical choices come from ``rng``, noise samples from ``noise_rng``: the number of noise
    samples depends on the rate, and must not shift the composition's random stream.
    """

    def decay(seconds: float, tau: float) -> np.ndarray:
        t = np.arange(int(seconds * sample_rate)) / sample_rate
        return np.exp(-t / tau)

    kick_top, kick_bottom = rng.uniform(110, 180), rng.uniform(40, 65)
    kick_taus = rng.uniform(0.06, 0.12, size=2)
    snare_tone = rng.uniform(160, 260)
    snare_taus = rng.uniform(0.04, 0.09, size=3)
    hat_taus = rng.uniform(0.01, 0.03, size=4)
    kit: dict[str, list[np.ndarray]] = {"kick": [], "snare": [], "hat": []}
    for tau in kick_taus:
        env = decay(0.35, tau)
        t = np.arange(len(env)) / sample_rate
        freq = kick_bottom + (kick_top - kick_bottom) * np.exp(-t / 0.04)
        phase = 2.0 * np.pi * np.cumsum(freq) / sample_rate
        kit["kick"].append((np.sin(phase) * env).astype(np.float32))
    for tau in snare_taus:
        env = decay(0.25, tau)
        noise = np.diff(noise_rng.standard_normal(len(env)), prepend=0.0)  # tilt to the top
        t = np.arange(len(env)) / sample_rate
        body = 0.6 * np.sin(2.0 * np.pi * snare_tone * t)
        kit["snare"].append((0.5 * (noise * 0.5 + body) * env).astype(np.float32))
    for tau in hat_taus:
        env = decay(0.08, tau)
        noise = np.diff(np.diff(noise_rng.standard_normal(len(env)), prepend=0.0), prepend=0.0)
        kit["hat"].append((0.15 * noise * env).astype(np.float32))
    return kit


def _progressions(rng: np.random.Generator, count: int) -> list[list[int]]:
    """Chord progressions as scale degrees (0-based), four chords each, tonic first."""
    result = []
    for _ in range(count):
        chords = [0] + [int(d) for d in rng.choice([1, 2, 3, 4, 5], size=3)]
        result.append(chords)
    return result


def synthesize_track(seed: int, seconds: float = 60.0, sample_rate: int = 22050) -> np.ndarray:
    """Render ``seconds`` of distinct synthetic music for ``seed`` as float32 mono in [-1, 1].

    Deterministic: the same arguments always give the same samples.
    """
    if seconds <= 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    rng = np.random.default_rng(seed)
    scale = _MAJOR if rng.random() < 0.5 else _MINOR
    root = int(rng.integers(40, 52))  # MIDI note of the bass tonic
    beat = 60.0 / float(rng.uniform(78, 152))
    bar = 4 * beat
    lead = _random_timbre(rng, str(rng.choice(["odd", "saw", "bell"])))
    pad = _random_timbre(rng, "saw")
    bass = _random_timbre(rng, "odd")
    kit = _drum_kit(rng, np.random.default_rng([seed, 1]), sample_rate)
    progressions = _progressions(rng, 3)
    kick_pattern = rng.random(8) < 0.35
    kick_pattern[0] = True
    hat_pattern = rng.random(8) < 0.7
    render = _Renderer(int(seconds * sample_rate) + 1, sample_rate)

    def pitch(degree: int, octave: int) -> int:
        return root + 12 * (octave + degree // 7) + scale[degree % 7]

    melody_degree = int(rng.integers(0, 7))
    bars = int(np.ceil(seconds / bar))
    for bar_number in range(bars):
        bar_start = bar_number * bar
        section = (bar_number // 4) % 7
        progression = progressions[[0, 1, 0, 2, 1, 2, 0][section]]
        degree = progression[bar_number % 4]
        _add_pad_and_bass(render, rng, pad, bass, pitch, degree, bar_start, beat)
        # Melody: a random walk over the scale in eighths, quarters and rests, never looped.
        position = 0.0
        while position < 4.0:
            length = float(rng.choice([0.5, 0.5, 1.0, 1.0, 1.5, 2.0]))
            length = min(length, 4.0 - position)
            if rng.random() > 0.15:
                melody_degree = int(np.clip(melody_degree + rng.integers(-3, 4), -2, 11))
                midi = pitch(melody_degree, 2)
                wave = render.note(0, lead, midi, length * beat * 0.95)
                render.add(bar_start + position * beat, wave, float(rng.uniform(0.22, 0.32)))
            position += length
        _add_drums(render, rng, kit, kick_pattern, hat_pattern, bar_start, beat)

    out = render.out
    peak = float(np.max(np.abs(out))) or 1.0
    out *= 0.9 / peak
    return out


def _add_pad_and_bass(
    render: _Renderer,
    rng: np.random.Generator,
    pad: _Timbre,
    bass: _Timbre,
    pitch: Callable[[int, int], int],
    degree: int,
    bar_start: float,
    beat: float,
) -> None:
    inversion = int(rng.integers(0, 3))
    for voice in range(3):
        chord_degree = degree + 2 * ((voice + inversion) % 3)
        midi = pitch(chord_degree, 1)
        render.add(bar_start, render.note(1, pad, midi, 4 * beat), 0.08)
    steps = [0, 2] if rng.random() < 0.5 else [0, 1.5, 2, 3]
    for step in steps:
        midi = pitch(degree + (4 if rng.random() < 0.2 else 0), 0)
        render.add(bar_start + step * beat, render.note(2, bass, midi, 0.9 * beat), 0.3)


def _add_drums(
    render: _Renderer,
    rng: np.random.Generator,
    kit: dict[str, list[np.ndarray]],
    kick_pattern: np.ndarray,
    hat_pattern: np.ndarray,
    bar_start: float,
    beat: float,
) -> None:
    fill = rng.random() < 0.2  # occasional bars of busier snare
    for eighth in range(8):
        time = bar_start + eighth * beat / 2
        if kick_pattern[eighth] or (fill and rng.random() < 0.3):
            render.add(time, kit["kick"][int(rng.integers(0, 2))], 0.6)
        if eighth in (2, 6) or (fill and rng.random() < 0.5):
            render.add(time, kit["snare"][int(rng.integers(0, 3))], float(rng.uniform(0.3, 0.45)))
        if hat_pattern[eighth]:
            render.add(time, kit["hat"][int(rng.integers(0, 4))], float(rng.uniform(0.3, 0.6)))


def write_wav(path: str | os.PathLike[str], samples: np.ndarray, sample_rate: int) -> None:
    """Write mono float samples in [-1, 1] as a 16-bit PCM WAV file."""
    data = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)
    sf.write(os.fspath(path), data, sample_rate, subtype="PCM_16")
