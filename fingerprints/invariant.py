"""Matching through speed, pitch and tempo changes, with the invariant peak-group hashes.

The :class:`~fingerprints.matcher.Matcher` calls :func:`match_invariant` when the exact pair
landmarks find nothing confident. Steps, all vectorised:

1. make the query's peak groups (:func:`fingerprints.triplets.make_triplets`, query fanout) and
   look up every hash cell each may be stored under (:func:`~fingerprints.triplets.query_probes`);
2. every hit gives the frequency factor ``b`` (query anchor bin over reference anchor bin) and a
   rough time factor (reference span over query span); hits vote on (recording, ``b`` in 1 %
   steps, time factor in ``time_vote_step`` octaves), each query anchor once per cell, and each
   cell is widened by its neighbours;
3. for the best ``candidates`` cells, a Hough transform over time factors ``a`` (steps of
   ``slope_step`` octaves) and reference offsets finds the line ``ref = offset + a * query``
   through the most hits; least squares refines it;
4. verification: a least-squares fit through the reference peaks that the query peaks land on
   sharpens the line; then every query peak is projected into the reference (frame
   ``offset + a * t``, bin ``f / b``) and counts if a reference peak lies within one frame on
   that bin. The score is the number of distinct query frames so confirmed, within the
   matched stretch. Chance is the larger of the rate measured at ``null_shifts`` deliberately
   wrong offsets and ``coincidence_rate`` (what unrelated music reaches after the search has
   tuned speed and pitch to it); the confidence is a logistic of the binomial standard
   deviations above chance, times one of the excess itself (see :func:`_confidence`).

Reads no settings: the tuning values are the fields of :class:`InvariantParams`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fingerprints.landmarks import REFERENCE_PARAMS
from fingerprints.search import SearchIndex
from fingerprints.triplets import DEFAULT_TRIPLET_PARAMS, TripletParams, make_triplets, query_probes


@dataclass(frozen=True)
class InvariantParams:
    """Tuning values of the speed/pitch/tempo-invariant matching path."""

    # Groups of the peak-group hashing (must be those the index was built with).
    triplets: TripletParams = DEFAULT_TRIPLET_PARAMS
    # A query's strongest peaks per second that are grouped and verified: as dense as the
    # references' peaks, so that both sides form the same groups.
    peaks_per_second: float = REFERENCE_PARAMS.peaks_per_second
    # Width of a vote cell: frequency factor and rough time factor, in octaves.
    freq_vote_step: float = 0.0144  # 1 %
    time_vote_step: float = 0.06
    # How many vote cells are examined in full (Hough, verification).
    candidates: int = 16
    # Hough resolution over time factors, in octaves (0.3 %: 1.3 frames over 10 s).
    slope_step: float = 0.0043
    # Step of the final refinement of the time factor (relative).
    refine_step: float = 0.0008
    # Hits further than this (frames) from the fitted line do not support it.
    line_tolerance: float = 1.5
    # Offsets (frames) at which the chance agreement of a candidate is measured.
    null_shifts: tuple[int, ...] = (-131, -97, -61, -37, 37, 61, 97, 131)
    # Logistic of the confidence: 0.5 at `margin` confirmed frames above chance.
    # Fraction of query frames that unrelated music confirms at the best speed and pitch the
    # search finds for it: measured up to about 0.2 on synthetic music against a synthetic
    # catalog (same instruments, keys and tempi), less on real music; true 10 s matches
    # confirm 0.5 to 0.9 (0.33 with MP3, noise at 10 dB and a speed change together).
    coincidence_rate: float = 0.2
    # Logistic on the standard deviations above chance: 0.5 at `margin`. Measured on 230
    # unrelated queries (music, altered music, synthetic music, speech, noise) against 40 h:
    # highest confidence 0.06.
    margin: float = 4.2
    spread: float = 0.6
    # ... times a logistic on the excess frames: 0.5 at `min_excess` (true matches: 23 or more).
    min_excess: float = 12.0
    excess_spread: float = 2.0
    # Verification stops at a candidate this confident.
    certain: float = 0.9999
    # Query probes stored more often than this are skipped (stop words).
    max_postings: int = 100


@dataclass(frozen=True)
class InvariantMatch:
    """One candidate of the invariant path, in frames and bins (the Matcher converts)."""

    slot: int
    confidence: float
    score: int
    chance: float
    time_factor: float  # reference frames per query frame (the Match's speed)
    freq_factor: float  # query frequency over reference frequency
    offset: float  # reference frame aligned with query frame 0
    first_frame: int  # first and last confirmed query frame
    last_frame: int
    span_frames: int = 0  # distinct query frames with peaks from first_frame to last_frame


def match_invariant(
    index: SearchIndex,
    peak_times: np.ndarray,
    peak_bins: np.ndarray,
    params: InvariantParams,
) -> list[InvariantMatch]:
    """Candidates for the query with these peaks, best first (any confidence)."""
    tp = params.triplets
    times = np.asarray(peak_times, dtype=np.int64)
    bins = np.asarray(peak_bins, dtype=np.float64)
    groups = make_triplets(times, bins, tp, tp.query_fanout)
    if len(groups) == 0 or len(index) == 0:
        return []
    probes, group_rows = query_probes(groups, tp)
    hits = index.lookup_quads(probes, max_postings=params.max_postings)
    if len(hits.slots) == 0:
        return []
    rows = group_rows[hits.probe_rows]
    anchors = groups.anchors[rows]
    freq_octaves = np.log2(bins[anchors] / np.maximum(hits.ref_bins, 1.0))
    time_octaves = np.log2(hits.ref_spans / groups.span[rows])
    allowed = (
        (freq_octaves >= math.log2(tp.min_freq_factor))
        & (freq_octaves <= math.log2(tp.max_freq_factor))
        & (time_octaves >= math.log2(tp.min_time_factor) - 0.25)
        & (time_octaves <= math.log2(tp.max_time_factor) + 0.25)
    )
    slots, anchors = hits.slots[allowed], anchors[allowed]
    ref_times, freq_octaves = hits.ref_times[allowed], freq_octaves[allowed]
    time_octaves = time_octaves[allowed]
    if len(slots) == 0:
        return []
    freq_cells = np.floor(freq_octaves / params.freq_vote_step).astype(np.int64)
    time_cells = np.floor(time_octaves / params.time_vote_step).astype(np.int64)
    cells = _best_cells(slots, freq_cells, time_cells, anchors, params.candidates)
    matches = []
    for slot, freq_cell in cells:
        near = (slots == slot) & (np.abs(freq_cells - freq_cell) <= 1)
        found = _verify(index, times, bins, anchors[near], ref_times[near],
                        freq_octaves[near], slot, params)
        if found is not None:
            matches.append(found)
            if found.confidence >= params.certain:
                break  # cells further down the vote cannot be more than certain
    matches.sort(key=lambda m: (m.confidence, m.score), reverse=True)
    # One candidate per recording: the best.
    seen: set[int] = set()
    unique = []
    for found in matches:
        if found.slot not in seen:
            seen.add(found.slot)
            unique.append(found)
    return unique


def _best_cells(
    slots: np.ndarray,
    freq_cells: np.ndarray,
    time_cells: np.ndarray,
    anchors: np.ndarray,
    limit: int,
) -> list[tuple[int, int]]:
    """(slot, frequency cell) of the ``limit`` cells with most distinct query anchors."""
    freq_range, time_range = 1024, 64
    cell = (slots * freq_range + (freq_cells + freq_range // 2)) * time_range + (
        time_cells + time_range // 2
    )
    distinct = np.unique(cell * (int(anchors.max()) + 1) + anchors) // (int(anchors.max()) + 1)
    keys, counts = np.unique(distinct, return_counts=True)
    votes = counts.copy()
    for delta in (-1, 1, -time_range, time_range, -time_range - 1, -time_range + 1,
                  time_range - 1, time_range + 1):
        position = np.minimum(np.searchsorted(keys, keys + delta), len(keys) - 1)
        found = keys[position] == keys + delta
        votes[found] += counts[position[found]]
    top = np.argsort(-votes, kind="stable")[:limit]
    freq_keys = keys[top] // time_range
    return [(int(k // freq_range), int(k % freq_range - freq_range // 2)) for k in freq_keys]


def _verify(
    index: SearchIndex,
    query_times: np.ndarray,
    query_bins: np.ndarray,
    anchors: np.ndarray,
    ref_times: np.ndarray,
    freq_octaves: np.ndarray,
    slot: int,
    params: InvariantParams,
) -> InvariantMatch | None:
    line = _fit_line(query_times[anchors].astype(np.float64), ref_times.astype(np.float64),
                     params)
    if line is None:
        return None
    time_factor, offset, close = line
    freq_factor = float(2.0 ** np.median(freq_octaves[close]))
    ref_peak_times, ref_peak_bins = index.peaks(slot)
    # Only the stretch of the reference the projections can reach.
    first_frame = int(offset + min(params.null_shifts)) - 2
    last_frame = int(offset + max(params.null_shifts) + time_factor * query_times.max()) + 2
    reach = (ref_peak_times >= first_frame) & (ref_peak_times <= last_frame)
    if not np.any(reach):
        return None
    occupied = peak_occupancy(ref_peak_times[reach] - first_frame, ref_peak_bins[reach])

    # Sharpen the line (the Hough step is 0.3 %): least squares through the reference peaks
    # that the query peaks land on.
    refined = _refit(ref_peak_times[reach] - first_frame, ref_peak_bins[reach], query_times,
                     query_bins, offset - first_frame, time_factor, freq_factor)
    if refined is not None and params.triplets.min_time_factor <= refined[0] <= (
        params.triplets.max_time_factor
    ):
        time_factor, offset = refined[0], refined[1] + first_frame

    def confirmed(shift: float) -> np.ndarray:
        return confirmed_frames(occupied, query_times, query_bins,
                                offset + shift - first_frame, time_factor, freq_factor)

    frames = confirmed(0.0)
    first, last = _extent(frames)
    score = int(np.count_nonzero((frames >= first) & (frames <= last)))
    peak_frames = np.unique(query_times)
    span_frames = int(np.count_nonzero((peak_frames >= first) & (peak_frames <= last)))
    # Chance: the larger of the rate measured at wrong offsets and the rate unrelated music
    # of the same key and tempo reaches once the search has tuned speed and pitch to it.
    null_rate = np.mean([len(confirmed(float(shift))) for shift in params.null_shifts])
    rate = min(0.95, max(params.coincidence_rate, float(null_rate) / len(peak_frames)))
    chance = rate * span_frames
    confidence = _confidence(score, chance, span_frames, rate, params)
    return InvariantMatch(slot=slot, confidence=confidence, score=score, chance=chance,
                          time_factor=time_factor, freq_factor=freq_factor, offset=offset,
                          first_frame=first, last_frame=last, span_frames=span_frames)


def _confidence(
    score: int, chance: float, frames: int, rate: float, params: InvariantParams
) -> float:
    """Logistic of how many standard deviations ``score`` confirmed frames out of ``frames``
    lie above ``chance`` (binomial at ``rate``), times a logistic of the excess itself, so
    that a handful of frames confirmed by chance in a short stretch is not a match."""
    if frames == 0:
        return 0.0
    excess = score - chance
    deviations = excess / math.sqrt(frames * rate * (1.0 - rate))
    significance = 1.0 / (1.0 + math.exp(-(deviations - params.margin) / params.spread))
    size = 1.0 / (1.0 + math.exp(-(excess - params.min_excess) / params.excess_spread))
    return significance * size


def _refit(
    ref_times: np.ndarray,
    ref_bins: np.ndarray,
    query_times: np.ndarray,
    query_bins: np.ndarray,
    offset: float,
    time_factor: float,
    freq_factor: float,
) -> tuple[float, float] | None:
    """(time factor, offset) fitted to the query peaks whose projection lies within a frame
    and a bin of a reference peak, paired with the nearest such reference frame."""
    rows = ref_times.astype(np.int64)
    columns = np.rint(ref_bins).astype(np.int64)
    exact = np.zeros((int(rows.max()) + 3, int(columns.max()) + 3), dtype=bool)
    exact[rows + 1, columns + 1] = True
    projected = offset + time_factor * query_times
    frames = np.rint(projected).astype(np.int64) + 1
    bins = np.rint(query_bins / freq_factor).astype(np.int64) + 1
    usable = (frames >= 1) & (frames < exact.shape[0] - 1) & (bins >= 1)
    usable &= bins < exact.shape[1] - 1
    frames, bins = frames[usable], bins[usable]
    found = np.zeros(len(frames), dtype=bool)
    nearest = np.zeros(len(frames), dtype=np.float64)
    for step in (0, -1, 1):  # the nearest frame first
        present = np.zeros(len(frames), dtype=bool)
        for bin_step in (0, -1, 1):
            present |= exact[frames + step, bins + bin_step]
        new = present & ~found
        nearest[new] = frames[new] + step - 1
        found |= new
    query = query_times[usable][found].astype(np.float64)
    if len(query) < 8 or np.ptp(query) == 0:
        return None
    slope, intercept = np.polyfit(query, nearest[found], 1)
    return float(slope), float(intercept)


def confirmed_frames(
    occupied: np.ndarray,
    query_times: np.ndarray,
    query_bins: np.ndarray,
    offset: float,
    time_factor: float,
    freq_factor: float,
) -> np.ndarray:
    """Distinct query frames with a peak that lands on a reference peak when projected."""
    frames = np.rint(offset + time_factor * query_times).astype(np.int64)
    bins = np.rint(query_bins / freq_factor).astype(np.int64)
    inside = (frames >= 0) & (frames < occupied.shape[0]) & (bins >= 0)
    inside &= bins < occupied.shape[1]
    hit = np.zeros(len(frames), dtype=bool)
    hit[inside] = occupied[frames[inside], bins[inside]]
    return np.unique(query_times[hit])


def _fit_line(
    query: np.ndarray, ref: np.ndarray, params: InvariantParams
) -> tuple[float, float, np.ndarray] | None:
    """(time factor, offset, supporting hits) of ``ref = offset + a * query`` through the
    most hits, a Hough transform over the allowed time factors."""
    tp = params.triplets
    if len(query) < 3:
        return None
    low, high = math.log2(tp.min_time_factor), math.log2(tp.max_time_factor)
    slopes = 2.0 ** np.arange(low, high + params.slope_step, params.slope_step)
    intercepts = np.rint(ref[None, :] - slopes[:, None] * query[None, :]).astype(np.int64)
    base = int(intercepts.min())
    width = int(intercepts.max()) - base + 3
    cell = np.arange(len(slopes))[:, None] * width + (intercepts - base + 1)
    counts = np.bincount(cell.ravel(), minlength=len(slopes) * width)
    smoothed = counts.copy()
    smoothed[1:] += counts[:-1]
    smoothed[:-1] += counts[1:]
    best = int(np.argmax(smoothed))
    slope = float(slopes[best // width])
    intercept = float(best % width + base - 1)
    close = np.abs(ref - (intercept + slope * query)) <= params.line_tolerance
    if np.count_nonzero(close) >= 3 and np.ptp(query[close]) > 0:
        refined_slope, refined_intercept = np.polyfit(query[close], ref[close], 1)
        if tp.min_time_factor <= refined_slope <= tp.max_time_factor:
            slope, intercept = float(refined_slope), float(refined_intercept)
    return slope, intercept, close


def peak_occupancy(times: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """Boolean (frame, bin) image of the peaks, widened by one frame (not in frequency: the
    fitted pitch puts true peaks on their bin, and a wider target lets in twice the chance)."""
    rows = times.astype(np.int64)
    columns = np.rint(bins).astype(np.int64)
    image = np.zeros((int(rows.max()) + 2, int(columns.max()) + 2), dtype=bool)
    image[rows, columns] = True
    wide = image.copy()
    wide[1:] |= image[:-1]
    wide[:-1] |= image[1:]
    return wide


def _extent(frames: np.ndarray, radius: int = 86) -> tuple[int, int]:
    """First and last confirmed frame, ignoring stray ones with under two others near."""
    if len(frames) == 0:
        return 0, 0
    neighbours = np.searchsorted(frames, frames + radius, side="right") - np.searchsorted(
        frames, frames - radius, side="left"
    )
    supported = frames[neighbours >= 3]
    if len(supported) == 0:
        supported = frames
    return int(supported[0]), int(supported[-1])
