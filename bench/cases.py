"""The query cases of the identification benchmark and the goals they are measured against.

A case says how a catalog excerpt is altered before it is matched; every ± case of the issue
is two cases here, one per sign, each reported on its own row. The order of alterations is
fixed (see :func:`bench.queries.make_positive`): speed, pitch, tempo and low-pass on the
excerpt with a second of context either side (as if the whole track had been altered), then the
cut, the noise, the embedding, and last the codec round trip (the uploaded file). Reads no
settings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Every query except "5 s clean" and the embedded one is this long once altered.
QUERY_SECONDS = 10.0
# Length of the unrelated audio an excerpt is embedded in; the excerpt sits in its middle.
EMBED_SECONDS = 60.0
# Goals not tied to one case.
FALSE_POSITIVE_GOAL = 0.005  # at most this share of queries may return a wrong recording
FINGERPRINT_SPEED_GOAL = 100.0  # seconds of audio fingerprinted per CPU second, decoding included
LATENCY_GOAL_SCALE1 = 0.050  # median seconds per 10 s query on the benchmark catalog
LATENCY_GOAL_SCALE100 = 0.250  # ... and on the catalog grown a hundredfold


@dataclass(frozen=True)
class Case:
    """One way of altering a catalog excerpt into a query."""

    name: str  # identifier in results and file names
    label: str  # row title in the report
    goal: float  # top-1 accuracy to reach
    seconds: float = QUERY_SECONDS  # query length after the alteration
    speed: float = 1.0  # resampling factor: pitch and tempo together (1.25 = nightcore)
    pitch: float = 0.0  # semitones, tempo kept
    tempo: float = 1.0  # tempo factor, pitch kept
    lowpass_hz: float | None = None
    noise: tuple[str, float] | None = None  # (colour, SNR in dB)
    codec: tuple[str, str] | None = None  # (codec, bitrate) of a lossy round trip
    embedded: bool = False  # placed in the middle of EMBED_SECONDS of unrelated audio

    @property
    def time_factor(self) -> float:
        """Reference seconds per query second."""
        return self.speed * self.tempo

    @property
    def expected_pitch(self) -> float:
        """Pitch change in semitones that a perfect matcher reports."""
        return 12.0 * math.log2(self.speed) + self.pitch

    @property
    def source_seconds(self) -> float:
        """How much of the reference one query covers."""
        return self.seconds * self.time_factor


def _signed(value: float, unit: str) -> str:
    return f"{value:+g}{unit}"


def _speed_cases() -> list[Case]:
    goals = {3: 0.98, 8: 0.95}
    cases = [
        Case(f"speed{sign}{percent}", f"speed {_signed(sign_value * percent, ' %')}", goal,
             speed=1.0 + sign_value * percent / 100)
        for percent, goal in goals.items()
        for sign, sign_value in (("+", 1), ("-", -1))
    ]
    cases.append(Case("speed+25", "speed +25 % (nightcore)", 0.85, speed=1.25))
    return cases


def _pitch_cases() -> list[Case]:
    return [
        Case(f"pitch{sign}{steps}", f"pitch {_signed(sign_value * steps, ' st')}", goal,
             pitch=float(sign_value * steps))
        for steps, goal in ((1, 0.98), (2, 0.95))
        for sign, sign_value in (("+", 1), ("-", -1))
    ]


def _tempo_cases() -> list[Case]:
    return [
        Case(f"tempo{sign}{percent}", f"tempo {_signed(sign_value * percent, ' %')}", goal,
             tempo=1.0 + sign_value * percent / 100)
        for percent, goal in ((5, 0.98), (10, 0.95))
        for sign, sign_value in (("+", 1), ("-", -1))
    ]


def all_cases() -> list[Case]:
    """Every positive case, in report order."""
    return [
        Case("clean10", "10 s clean", 0.995),
        Case("clean5", "5 s clean", 0.98, seconds=5.0),
        Case("mp3-64k", "MP3 64 kbit/s", 0.995, codec=("mp3", "64k")),
        Case("white10", "white noise 10 dB SNR", 0.99, noise=("white", 10.0)),
        Case("white0", "white noise 0 dB SNR", 0.90, noise=("white", 0.0)),
        Case("pink5", "pink noise 5 dB SNR", 0.95, noise=("pink", 5.0)),
        *_speed_cases(),
        *_pitch_cases(),
        *_tempo_cases(),
        Case("lowpass3k", "low-pass 3 kHz", 0.995, lowpass_hz=3000.0),
        Case("combo", "MP3 64k + white noise 10 dB + speed +3 %", 0.95, speed=1.03,
             noise=("white", 10.0), codec=("mp3", "64k")),
        Case("embedded", "10 s embedded in 60 s of unrelated music", 0.95, embedded=True),
    ]


LATENCY_CASE = "clean10"  # the case whose queries time the matcher one by one


@dataclass(frozen=True)
class Query:
    """One query and what a perfect matcher answers for it.

    For a positive query, second ``q`` of the query (from ``query_origin`` on) is second
    ``ref_start + (q - query_origin) * time_factor`` of recording ``recording_id``.
    """

    query_id: str
    case: str  # a Case name, or "negative"
    file: str  # samples, relative to the query set's directory
    seconds: float
    recording_id: int | None = None  # None: nothing in the catalog should match
    source: str = ""  # track name, or what a negative is (speech, noise, ...)
    ref_start: float = 0.0
    query_origin: float = 0.0
    time_factor: float = 1.0
    pitch: float = 0.0

    def expected_ref(self, query_time: float) -> float:
        return self.ref_start + (query_time - self.query_origin) * self.time_factor
