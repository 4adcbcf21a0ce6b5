"""Whether a catalog track holds the same audio at two places: answers found at a repeat.

Music repeats itself: a track may play one passage twice, sample for sample (a loop, a da capo
of the same recording). A query cut from one occurrence matches the other just as well, and no
matcher can tell which one the copy was cut from; when it names the other, the answer is right
about what was copied and where it is in the recording, only not the place the benchmark cut.
:class:`SameAudio` measures this on the reference itself: the normalised cross-correlation of
the two stretches of reference waveform, at the best lag within ``MAX_LAG_SECONDS`` (the two
positions are each known to a frame or so). Different passages of one track correlate at 0.04
(median) and at most 0.35 over 75 random pairs of 10 s stretches in five catalog tracks (the
0.35 itself a partial repeat in ``revelation``); a repeat of the same audio reaches 0.9. An
answer counts as correct at a repeat when the correlation is at least ``SAME_AUDIO_NCC``; the
report lists every such answer (:mod:`bench.report`). Reads no settings.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bench.corpus import Track
from fingerprints import Audio, decode_file

SAME_AUDIO_NCC = 0.8  # waveform correlation from which two stretches are the same audio
MAX_LAG_SECONDS = 0.05  # lags searched either way


class SameAudio:
    """Waveform correlation of two stretches of a catalog track (decoded once, on demand)."""

    def __init__(self, tracks: Sequence[Track]) -> None:
        self._paths = {track.recording_id: track.path for track in tracks}
        self._audio: dict[int, Audio] = {}

    def __call__(self, recording_id: int, first: float, second: float,
                 seconds: float) -> float:
        """Highest normalised correlation of ``seconds`` of the track from ``first`` with as
        much from about ``second`` (0.0 where either stretch leaves the track)."""
        if recording_id not in self._paths:
            return 0.0
        audio = self._audio.get(recording_id)
        if audio is None:
            audio = self._audio[recording_id] = decode_file(self._paths[recording_id])
        return stretch_correlation(audio, first, second, seconds)


def stretch_correlation(audio: Audio, first: float, second: float, seconds: float) -> float:
    rate = audio.sample_rate
    samples = np.asarray(audio.samples, dtype=np.float64)
    length, lag = int(seconds * rate), int(MAX_LAG_SECONDS * rate)
    start, other = round(first * rate), round(second * rate) - lag
    if start < 0 or other < 0 or length <= 0:
        return 0.0
    if start + length > len(samples) or other + length + 2 * lag > len(samples):
        return 0.0
    x = samples[start:start + length]
    y = samples[other:other + length + 2 * lag]
    windows = np.lib.stride_tricks.sliding_window_view(y, length)
    energy = float(x @ x) * np.einsum("ij,ij->i", windows, windows)
    if float(x @ x) == 0.0:
        return 0.0
    products = windows @ x
    return float(np.max(products / np.sqrt(np.maximum(energy, 1e-30))))
