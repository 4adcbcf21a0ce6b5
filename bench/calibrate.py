"""``python -m bench.calibrate``: where the pair path's confidence margin comes from.

Builds a catalog of synthesised tracks, then reports the excess over chance (``score -
chance_score``, see :func:`fingerprints.matcher.calibrated_confidence`) that unrelated
synthesised queries reach on the pair path alone, and that clean excerpts of the catalog
reach. The margin must sit well above the first and below the second. It also reports the
highest confidence the whole matcher (both paths and the speed ladder, whose extra tries are
extra chances for coincidence) gives the unrelated queries. Synthesised music is the hard case
for chance agreement: the generator's tracks share instruments, keys and tempi. Reads no
settings.
"""

from __future__ import annotations

import argparse
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from fingerprints import (
    SAMPLE_RATE,
    Audio,
    FingerprintIndex,
    Matcher,
    extract_landmarks,
    synthesize_track,
)

_matcher: Matcher | None = None
_whole: Matcher | None = None


def _catalog(tracks: int, seconds: float) -> tuple[Matcher, list[Audio]]:
    index = FingerprintIndex(Path(tempfile.gettempdir()) / "copyguard-calibrate-unsaved")
    audio = [Audio(synthesize_track(1000 + i, seconds, SAMPLE_RATE), SAMPLE_RATE)
             for i in range(tracks)]
    for recording_id, track in enumerate(audio, start=1):
        index.add(recording_id, extract_landmarks(track), track.duration)
    return Matcher(index, invariant=None, speed_ladder=()), audio


def _unrelated(seed: int) -> tuple[float, float]:
    """(excess on the pair path alone, confidence of the whole matcher) of one query."""
    assert _matcher is not None and _whole is not None
    rng = np.random.default_rng(seed)
    clip = Audio(synthesize_track(50_000 + seed, float(rng.uniform(10, 60)), SAMPLE_RATE),
                 SAMPLE_RATE)
    found = _matcher.candidates(clip, limit=1)
    whole = _whole.candidates(clip, limit=1)
    return (found[0].score - found[0].chance_score if found else 0.0,
            whole[0].confidence if whole else 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=30)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--workers", type=int, default=2)
    options = parser.parse_args()
    global _matcher, _whole
    _matcher, tracks = _catalog(options.tracks, 60.0)
    _whole = Matcher(_matcher.index)
    with ProcessPoolExecutor(options.workers) as pool:  # forked: inherits the catalog
        results = list(pool.map(_unrelated, range(options.queries)))
    unrelated = np.sort([excess for excess, _ in results])
    confidence = max(confidence for _, confidence in results)
    print(f"unrelated ({len(unrelated)} queries): pair path max excess {unrelated[-1]:.1f}, "
          f"99 % below {np.percentile(unrelated, 99):.1f}; whole matcher highest confidence "
          f"{confidence:.3f}")
    for seconds in (10, 5):
        excess = []
        for number, track in enumerate(tracks):
            start = (5 + number) * SAMPLE_RATE
            clip = Audio(track.samples[start:start + seconds * SAMPLE_RATE], SAMPLE_RATE)
            found = _matcher.candidates(clip, limit=1)
            right = found and found[0].recording_id == number + 1
            excess.append(found[0].score - found[0].chance_score if right else float("nan"))
        print(f"clean {seconds} s excerpts: min excess {np.nanmin(excess):.1f}, "
              f"median {np.nanmedian(excess):.1f}, wrong or none {int(np.isnan(excess).sum())}")
    print(f"Matcher confidence_margin: {_matcher.confidence_margin}")


if __name__ == "__main__":
    main()
