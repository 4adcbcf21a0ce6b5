"""Corroborating a weak pair match on the reference's own peaks.

Heavy noise leaves a true match few intact pairs: both peaks of a pair must survive and pair up
as they did in the reference. Single peaks survive far more often. So a pair match that stands
out from chance, but not by the matcher's margin, is checked a second way: the query's peaks are
laid on the reference's stored peaks (:meth:`SearchIndex.peaks`) at the match's alignment, and
the distinct query frames with a peak on a reference peak are counted; the same count at
``null_offsets`` other alignments of the same reference gives what this query reaches there by
chance. A true match stands many standard deviations above that; the best alignment the pairs
found for unrelated audio does not. Measured on the identification benchmark's white-noise
queries: true places left unconfirmed by the pairs stood 8-22 deviations above their null; the
pair search's best candidates for the 220 negatives reached 10.5 deviations, but none of them
together with a pair excess of 5 (their highest excess was 4.5, at 5.0 deviations).

The two tests must both pass: the confidence is the smaller of two logistics, one on the pair
excess and one on the deviations. Reads no settings: the tuning values are the fields of
:class:`CorroborationParams`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fingerprints.invariant import confirmed_frames, peak_occupancy
from fingerprints.search import SearchIndex


@dataclass(frozen=True)
class CorroborationParams:
    """Tuning values of the corroboration of weak pair matches."""

    # Pair frames above chance a match needs to be corroborated at all (the matcher's own
    # margin is 10; unrelated audio reached 4.5 on the benchmark, 3.7 in bench.calibrate).
    min_excess: float = 5.0
    excess_spread: float = 1.0
    # Confirmed frames above the null's mean, in its standard deviations: 0.5 at this.
    min_deviations: float = 6.0
    deviation_spread: float = 1.0
    # Alignments of the same reference that make the null, spread evenly over it, none within
    # guard_frames (2 s) of the match's.
    null_offsets: int = 80
    guard_frames: int = 90
    # A null spread below this (few peaks, or a silent reference stretch) counts as this.
    min_spread: float = 1.0


def peak_deviations(index: SearchIndex, slot: int, query_times: np.ndarray,
                    query_bins: np.ndarray, offset: float, speed: float,
                    params: CorroborationParams) -> float:
    """Standard deviations by which the query's peaks, aligned to the reference in ``slot`` at
    ``offset`` (reference frame of query frame 0) and ``speed``, confirm more frames than at
    the null alignments (0.0 without peaks on either side)."""
    ref_times, ref_bins = index.peaks(slot)
    if len(ref_times) == 0 or len(query_times) == 0:
        return 0.0
    occupied = peak_occupancy(ref_times, ref_bins)
    times = np.asarray(query_times, dtype=np.float64)
    bins = np.asarray(query_bins, dtype=np.float64)

    def confirmed(at: float) -> int:
        return len(confirmed_frames(occupied, times, bins, at, speed, 1.0))

    here = max(confirmed(offset + step) for step in (-1.0, 0.0, 1.0))
    reach = occupied.shape[0] - speed * float(times.max())
    nulls = [at for at in np.linspace(0.0, max(reach, 0.0), params.null_offsets)
             if abs(at - offset) > params.guard_frames]
    if len(nulls) < 2:
        return 0.0
    counts = np.array([confirmed(float(at)) for at in nulls], dtype=np.float64)
    return float((here - counts.mean()) / max(float(counts.std()), params.min_spread))


def corroborated_confidence(excess: float, deviations: float,
                            params: CorroborationParams) -> float:
    """The smaller of a logistic on the pair excess and one on the peak deviations: 0.5 when
    the weaker of the two is at its threshold."""
    on_pairs = 1.0 / (1.0 + math.exp(-(excess - params.min_excess) / params.excess_spread))
    on_peaks = 1.0 / (1.0 + math.exp(
        -(deviations - params.min_deviations) / params.deviation_spread))
    return min(on_pairs, on_peaks)
