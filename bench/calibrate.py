"""``python -m bench.calibrate``: where the pair path's confidence margin comes from.

Builds a catalog of synthesised tracks (3 minutes each by default, like the files of
``make bench-crawl``), then reports, for unrelated synthesised queries of each length from 5 s
excerpts to whole 3-minute tracks:

- the excess over chance (``score - chance_score``, see
  :func:`fingerprints.matcher.calibrated_confidence`) that they reach on the pair path alone
  (with the pitch ladder, without the peak groups and the speed ladder);
- the highest confidence the whole matcher gives them (pairs, peak groups, the pitch and speed
  ladders, whose extra tries are extra chances for coincidence; queries over
  ``reanalysed_ladder_seconds`` take the speed ladder in the peak domain).

and what clean excerpts of the catalog reach on the pair path, and whole-track copies with a
speed or pitch change through the whole matcher. The margin must sit well above the first and
below the second, and the highest unrelated confidence under ``min_confidence`` at every
length. Synthesised music is the hard case for chance agreement: the generator's tracks share
instruments, keys and tempi, and two tracks of (nearly) the same tempo keep their bar grids
aligned for minutes. Seeds drawn at random rarely give such a pair, so the longer lengths also
get queries whose tempo is within ``SAME_TEMPO`` of a catalog track's, reported on rows of their
own. Reads no settings.
"""

from __future__ import annotations

import argparse
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fingerprints import (
    SAMPLE_RATE,
    Audio,
    FingerprintIndex,
    Matcher,
    alter,
    extract_landmarks,
    synthesize_track,
)

# Lengths of the unrelated queries, seconds; the last is a whole track.
QUERY_SECONDS = (5.0, 10.0, 30.0, 60.0, 180.0)
CATALOG_SEED = 1000  # catalog track i is seed CATALOG_SEED + i
UNRELATED_SEED = 50_000  # far from the catalog's seeds
SAME_TEMPO_SEED = 200_000  # where the search for same-tempo seeds starts
SAME_TEMPO = 0.001  # relative tempo difference of a "same tempo" query
SAME_TEMPO_SECONDS = (60.0, 180.0)  # lengths that get same-tempo queries too

_matcher: Matcher | None = None
_whole: Matcher | None = None
_tracks: list[Audio] = []


@dataclass(frozen=True)
class Unrelated:
    """What one unrelated query reached."""

    seconds: float
    same_tempo: bool  # chosen for a tempo within SAME_TEMPO of a catalog track's
    excess: float  # score - chance_score of the best candidate, pair path alone
    confidence: float  # highest candidate confidence of the whole matcher
    recording_id: int  # that candidate's recording (0: none)
    path: str  # that candidate's speed and pitch, as found


def _catalog(tracks: int, seconds: float) -> tuple[Matcher, list[Audio]]:
    index = FingerprintIndex(Path(tempfile.gettempdir()) / "copyguard-calibrate-unsaved")
    audio = [Audio(synthesize_track(CATALOG_SEED + i, seconds, SAMPLE_RATE), SAMPLE_RATE)
             for i in range(tracks)]
    for recording_id, track in enumerate(audio, start=1):
        index.add(recording_id, extract_landmarks(track), track.duration)
    return Matcher(index, invariant=None, speed_ladder=()), audio


def _tempo(seed: int) -> float:
    """Beats per minute of ``synthesize_track(seed)``: its third draw, after mode and root."""
    rng = np.random.default_rng(seed)
    rng.random()
    rng.integers(40, 52)
    return float(rng.uniform(78, 152))


def _same_tempo_seeds(catalog_seeds: list[int], count: int) -> list[int]:
    """``count`` seeds from SAME_TEMPO_SEED on whose tempo is within SAME_TEMPO of one of the
    catalog's (taking the catalog's tracks in turn)."""
    tempi = np.array([_tempo(seed) for seed in catalog_seeds])
    found: list[int] = []
    seed = SAME_TEMPO_SEED
    while len(found) < count:
        target = tempi[len(found) % len(tempi)]
        if abs(_tempo(seed) / target - 1.0) <= SAME_TEMPO:
            found.append(seed)
        seed += 1
    return found


def _unrelated(task: tuple[float, int, bool]) -> Unrelated:
    seconds, seed, same_tempo = task
    assert _matcher is not None and _whole is not None
    clip = Audio(synthesize_track(seed, seconds, SAMPLE_RATE), SAMPLE_RATE)
    found = _matcher.candidates(clip, limit=1)
    whole = _whole.candidates(clip, limit=1)
    best = whole[0] if whole else None
    return Unrelated(
        seconds=seconds,
        same_tempo=same_tempo,
        excess=found[0].score - found[0].chance_score if found else 0.0,
        confidence=best.confidence if best else 0.0,
        recording_id=best.recording_id if best else 0,
        path=f"x{best.speed:.3f} {best.pitch_semitones:+.1f} st" if best else "",
    )


def _whole_copy(task: tuple[str, int]) -> tuple[str, bool, float]:
    """(alteration, right recording found, its confidence) for a whole altered catalog track."""
    kind, number = task
    assert _whole is not None
    samples = _tracks[number].samples
    if kind == "speed +3 %":
        altered = alter.change_speed(samples, SAMPLE_RATE, 1.03)
    else:
        altered = alter.shift_pitch(samples, SAMPLE_RATE, 1.0)
    found = _whole.match(Audio(altered, SAMPLE_RATE))
    right = found is not None and found.recording_id == number + 1
    return kind, right, found.confidence if found is not None and right else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=30, help="catalog tracks (default 30)")
    parser.add_argument("--track-seconds", type=float, default=180.0,
                        help="length of each catalog track (default 180)")
    parser.add_argument("--queries", type=int, default=60,
                        help="unrelated queries of each length (default 60)")
    parser.add_argument("--same-tempo", type=int, default=30,
                        help="unrelated queries of the same tempo as a catalog track, at each of "
                             "the lengths of SAME_TEMPO_SECONDS (default 30)")
    parser.add_argument("--copies", type=int, default=6,
                        help="whole catalog tracks altered per alteration (default 6)")
    parser.add_argument("--workers", type=int, default=2)
    options = parser.parse_args()
    global _matcher, _whole, _tracks
    _matcher, _tracks = _catalog(options.tracks, options.track_seconds)
    _whole = Matcher(_matcher.index)
    lengths = [s for s in QUERY_SECONDS if s <= options.track_seconds]
    tasks = [(seconds, UNRELATED_SEED + number, False)
             for seconds in lengths for number in range(options.queries)]
    same_tempo = _same_tempo_seeds([CATALOG_SEED + i for i in range(options.tracks)],
                                   options.same_tempo)
    tasks += [(seconds, seed, True) for seconds in SAME_TEMPO_SECONDS
              if seconds <= options.track_seconds for seed in same_tempo]
    copies = [(kind, number) for kind in ("speed +3 %", "pitch +1 st")
              for number in range(min(options.copies, options.tracks))]
    with ProcessPoolExecutor(options.workers) as pool:  # forked: inherits the catalog
        results = list(pool.map(_unrelated, tasks))
        whole_copies = list(pool.map(_whole_copy, copies))
    print(f"catalog: {options.tracks} synthesised tracks of {options.track_seconds:.0f} s; "
          f"threshold min_confidence {_whole.min_confidence}")
    print("unrelated queries | n | pair path excess max / 99 % | whole matcher confidence "
          "max (its recording, speed, pitch)")
    rows = sorted({(r.seconds, r.same_tempo) for r in results})
    for seconds, tempo in rows:
        of_length = [r for r in results if (r.seconds, r.same_tempo) == (seconds, tempo)]
        reached = np.sort([r.excess for r in of_length])
        worst = max(of_length, key=lambda r: r.confidence)
        label = f"{seconds:5.0f} s{', same tempo' if tempo else ''}"
        print(f"{label} | {len(of_length)} | {reached[-1]:.1f} / "
              f"{np.percentile(reached, 99):.1f} | {worst.confidence:.3f} "
              f"(recording {worst.recording_id}, {worst.path})")
    for seconds in (10, 5):
        excess: list[float] = []
        for number, track in enumerate(_tracks):
            start = (5 + number) * SAMPLE_RATE
            clip = Audio(track.samples[start:start + seconds * SAMPLE_RATE], SAMPLE_RATE)
            found = _matcher.candidates(clip, limit=1)
            right = found and found[0].recording_id == number + 1
            excess.append(found[0].score - found[0].chance_score if right else float("nan"))
        print(f"clean {seconds} s excerpts: min excess {np.nanmin(excess):.1f}, "
              f"median {np.nanmedian(excess):.1f}, wrong or none {int(np.isnan(excess).sum())}")
    for kind in dict.fromkeys(kind for kind, _ in copies):
        confidences = [c for k, right, c in whole_copies if k == kind and right]
        total = sum(1 for k, _, _ in whole_copies if k == kind)
        lowest = f", lowest confidence {min(confidences):.3f}" if confidences else ""
        print(f"whole-track copies, {kind}: {len(confidences)} of {total} found{lowest}")
    print(f"Matcher confidence_margin: {_matcher.confidence_margin}")


if __name__ == "__main__":
    main()
