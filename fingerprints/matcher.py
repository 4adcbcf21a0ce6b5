"""Find which indexed recording a piece of audio contains, where, and how sure we are.

Matching a query:

1. extract the query's landmarks with the parameters the index was built with;
2. look all query hashes up at once (``FingerprintIndex.lookup``), skipping hashes so common
   that they carry no evidence;
3. vote: every hit proposes (recording, ref frame - query frame); ``np.unique`` counts the
   votes, and each offset's count is widened by its neighbours (±``offset_tolerance`` frames,
   as the query's frame grid rarely lines up with the reference's);
4. verify the best offsets of the ``verify_candidates`` best recordings: take the hits near the
   offset and count the distinct query frames whose landmarks agree, over the stretch of the
   query where they stand out most from chance (``_best_segment``): that is the score (frames,
   not hashes, so that one chord's burst of hashes counts once). For a clear match, fit ref
   time against query time (the slope is the speed) and re-collect the hits along that line;
5. calibrate (see :func:`calibrated_confidence`; chance is reckoned over the same stretch as
   the score, and for the ladders of steps 7-8 with all their tries counted) and keep matches of
   at least ``min_confidence``;
6. if no pair match is confident, try the speed/pitch/tempo-invariant peak groups
   (:mod:`fingerprints.invariant`), which find resampled, pitch-shifted and time-stretched
   copies, and merge the two candidate lists;
7. if still nothing is confident and the query is short (an excerpt, not a whole file),
   analyse it again with denser peaks (``DENSE_QUERY_PARAMS``: heavy noise displaces many of
   its strongest peaks) and search the pairs again; a candidate that stands out from chance
   but not by the margin may then be corroborated on the reference's stored peaks
   (:mod:`fingerprints.corroborate`);
8. if still nothing is confident, undo likely alterations and search the pairs again: first
   pitch shifts (±1, ±2 semitones, in the peak domain: cheap), then speed changes (by
   resampling the audio: a new analysis each).

Reads no settings: thresholds are keyword arguments of :class:`Matcher`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from scipy import signal

from fingerprints.audio import Audio
from fingerprints.corroborate import (
    CorroborationParams,
    corroborated_confidence,
    peak_deviations,
)
from fingerprints.index import Hits
from fingerprints.invariant import InvariantMatch, InvariantParams, match_invariant
from fingerprints.landmarks import (
    DEFAULT_PARAMS,
    LandmarkParams,
    Landmarks,
    extract_query_landmarks,
    pitch_shifted,
    slowed_down,
    thinned_peaks,
)
from fingerprints.search import SearchIndex

# Resolution of the speed search (0.1 %).
_SLOPE_STEP = 0.001

# The dense analysis of a query no pass matched (Matcher dense_params): twice the peaks of
# DEFAULT_PARAMS, each paired with more targets. Measured on the identification benchmark's
# 190 queries with white noise at 0 dB SNR (x1 catalog): 167 found without this retry, 173
# with it, none of the 220 negatives matched. As the only analysis, 60 peaks/s and fan-out 12
# found 173 (8 grid offsets besides: 175), 90 peaks/s and fan-out 16 no more, while doubling a
# clean query's time: hence a retry for what the default analysis misses.
DENSE_QUERY_PARAMS = dataclasses.replace(DEFAULT_PARAMS, peaks_per_second=60.0, fanout=12)


@dataclass(frozen=True)
class Match:
    """One indexed recording found in a query."""

    recording_id: int
    confidence: float  # calibrated in [0, 1]; see calibrated_confidence
    query_start: float  # seconds into the query where the matched part starts
    query_end: float  # seconds into the query where it ends
    ref_start: float  # seconds into the reference recording aligned with query_start
    speed: float  # 1.0 = unchanged; > 1 = the query plays faster than the reference
    pitch_semitones: float  # 0.0 = unchanged
    score: int  # distinct query frames aligned to the reference: by pair landmarks, or for a
    # speed/pitch/tempo change by peaks confirmed on the reference (fingerprints.invariant)
    chance_score: float = 0.0  # score that unrelated audio would reach here by chance


def calibrated_confidence(
    score: int, chance_score: float, *, margin: float = 10.0, spread: float = 2.5
) -> float:
    """Map a verified score to a confidence in [0, 1].

    The idea: what matters is not the score itself but how far it exceeds what chance gives
    for this query against this index. ``chance_score`` is what an unrelated query would reach
    at its best offset, in two parts: the best of many windows of hits scattered at random
    (a Poisson estimate, see ``Matcher._chance_score``, which grows with the number of hits,
    offsets, recordings and, for the ladders' searches, tries), plus musical coincidence, a
    small rate per second of matched span (unrelated pieces with the same tempo and key share
    chord and drum events; when their tempi agree closely, all along a long query). The score
    and that span must be the same stretch of the query (``_best_segment``): a score counted over
    a whole 3-minute query against an allowance reckoned over a 15 s stretch of it gave two
    unrelated synthesised tracks of the same tempo confidence 0.73 (the crawl benchmark's two
    false detections, one through the pitch ladder). A logistic on the excess puts confidence
    0.5 at ``margin`` frames above chance; ``spread`` sets how fast it goes to 0 or 1. Measured
    by ``python -m bench.calibrate`` (a catalog of 30 synthesised 3-minute tracks; unrelated
    synthesised queries of 5, 10, 30, 60 and 180 s, and of 60 and 180 s at the tempo of a
    catalog track within 0.1 %): the highest excess of unrelated audio on the pair path was 3.7,
    the whole matcher's highest confidence 0.074 at any length (0.571 for same-tempo whole
    tracks before the score and its span agreed); a clean 10 s excerpt exceeds chance by 30 or
    more (median 66), a 5 s one by 11 or more (median 29). With references as dense as queries
    (before REFERENCE_PARAMS), the unrelated excess reached 12.8 and the margin was 16: both
    scale with the stored hashes.
    """
    excess = score - chance_score
    return 1.0 / (1.0 + math.exp(-(excess - margin) / spread))


class Matcher:
    """Matches audio against a search index (:class:`~fingerprints.search.SearchIndex`)."""

    def __init__(
        self,
        index: SearchIndex,
        *,
        min_confidence: float = 0.5,
        landmark_params: LandmarkParams | None = None,
        query_shifts: int = 4,
        offset_tolerance: int = 1,
        verify_candidates: int = 10,
        max_postings: int = 1000,
        max_speed_change: float = 0.05,
        max_repeats: int | None = 4,
        coincidence_rate: float = 0.3,
        confidence_margin: float = 10.0,
        confidence_spread: float = 2.5,
        invariant: InvariantParams | None = InvariantParams(),
        pitch_ladder: tuple[float, ...] = (-1.0, 1.0, -2.0, 2.0),
        speed_ladder: tuple[float, ...] = (1.03, 0.97, 1.06, 0.94, 1.09, 0.91, 1.25),
        reanalysed_ladder_seconds: float = 90.0,
        dense_params: LandmarkParams | None = DENSE_QUERY_PARAMS,
        dense_shifts: int = 8,
        corroboration: CorroborationParams | None = CorroborationParams(),
    ) -> None:
        # min_confidence: match() returns None below this.
        # landmark_params: how query landmarks are extracted; must give the index's scheme.
        # query_shifts: the query is analysed at this many sub-hop grid offsets (robustness
        #   to noise and re-encoding, at the price of proportionally more query work).
        # offset_tolerance: votes this many frames off the offset still count (grid jitter).
        # verify_candidates: how many of the best-voted recordings are re-scored.
        # max_postings: query hashes stored more often than this are ignored (stop words).
        # max_speed_change: fitted slopes further than this from 1.0 are not trusted.
        # max_repeats: a hash occurring more often than this within one reference (a drum
        #   pattern or chord repeated bar after bar) is no evidence for that reference.
        # coincidence_rate: aligned frames per second of matched span that unrelated music
        #   reaches through shared tempo and key (added to the random chance score).
        # confidence_margin/_spread: the logistic of calibrated_confidence.
        # invariant: the speed/pitch/tempo-invariant path, tried when the pair landmarks give
        #   no confident match (None: pair landmarks only).
        # pitch_ladder: pitch shifts (semitones, tempo kept) undone in turn on the query's peaks,
        #   and the pair landmarks tried again, when neither path found a confident match:
        #   the peak groups lose pitch-shifted copies of sparse or quiet passages that pairs
        #   still hold once the pitch is right. Each step costs a pair search, without analysis.
        # speed_ladder: speed changes (resampling: tempo and pitch together) that are undone
        #   in turn, and the pair landmarks tried again, when neither path found a confident
        #   match: pairs survive noise and lossy coding together with a speed change far better
        #   than peak groups, once the speed is right. Each step costs about a pair search.
        # reanalysed_ladder_seconds: queries up to this long undo each speed step by analysing
        #   resampled audio again (best accuracy); longer ones (whole files from the crawler,
        #   mostly not in the catalog) on their peaks, which costs a third as much.
        # dense_params/dense_shifts: when neither path found a confident match, the query is
        #   analysed again with these denser peaks and more grid offsets, and the pairs tried
        #   again, before the ladders (None: skipped). Heavy noise takes the place of many of
        #   a query's strongest peaks; more peaks per second keep more of the reference's.
        #   Only for queries up to reanalysed_ladder_seconds: a whole file from the crawler
        #   holds enough intact pairs already, and analysing it again costs a second or more.
        # corroboration: how a candidate of the dense retry that pairs alone leave short of
        #   min_confidence is checked on the reference's peaks (None: never).
        self.index = index
        self.min_confidence = min_confidence
        self.landmark_params = landmark_params or LandmarkParams()
        if index.scheme is not None and self.landmark_params.scheme != index.scheme:
            raise ValueError(
                f"landmark_params give scheme {self.landmark_params.scheme!r}, "
                f"but the index holds {index.scheme!r}"
            )
        self.query_shifts = query_shifts
        self.offset_tolerance = offset_tolerance
        self.verify_candidates = verify_candidates
        self.max_postings = max_postings
        self.max_speed_change = max_speed_change
        self.max_repeats = max_repeats
        self.coincidence_rate = coincidence_rate
        self.confidence_margin = confidence_margin
        self.confidence_spread = confidence_spread
        self.invariant = invariant
        self.pitch_ladder = pitch_ladder
        self.speed_ladder = speed_ladder
        self.reanalysed_ladder_seconds = reanalysed_ladder_seconds
        self.dense_params = dense_params
        self.dense_shifts = dense_shifts
        self.corroboration = corroboration

    def match(self, audio: Audio) -> Match | None:
        """The best match of at least ``min_confidence``, or None."""
        ranked = self.candidates(audio, limit=1)
        if ranked and ranked[0].confidence >= self.min_confidence:
            return ranked[0]
        return None

    def candidates(self, audio: Audio, limit: int = 5) -> list[Match]:
        """Up to ``limit`` best-scoring recordings, best first, whatever their confidence."""
        query = extract_query_landmarks(
            audio, params=self.landmark_params, shifts=self.query_shifts
        )
        ranked = self.match_landmarks(query, limit)
        if ranked and ranked[0].confidence >= self.min_confidence:
            return ranked
        # Each ladder step is one more search in which chance may line unrelated audio up with
        # a recording, so a step reckons chance as if every pair search of the ladders were
        # made (a union bound): all the steps together then pass a chance match no more often
        # than the plain search does alone, and the whole ladder at most twice as often.
        tries = 1 + (self.dense_params is not None) + len(self.pitch_ladder) + len(
            self.speed_ladder)
        reanalyse = audio.duration <= self.reanalysed_ladder_seconds
        if self.dense_params is not None and reanalyse:
            dense = extract_query_landmarks(audio, params=self.dense_params,
                                            shifts=self.dense_shifts)
            found = self._match_pairs(dense, limit, tries, corroborate=True)
            if found and found[0].confidence >= self.min_confidence:
                return _merged(ranked, found)[:limit]
        for semitones in self.pitch_ladder:
            found = self._match_pairs(pitch_shifted(query, semitones, self.landmark_params),
                                      limit, tries)
            if found and found[0].confidence >= self.min_confidence:
                return _merged(ranked, [_pitched(match, semitones) for match in found])[:limit]
        for speed in self.speed_ladder:
            undone = (extract_query_landmarks(undo_speed(audio, speed),
                                              params=self.landmark_params,
                                              shifts=self.query_shifts)
                      if reanalyse else slowed_down(query, speed, self.landmark_params))
            found = self._match_pairs(undone, limit, tries)
            if found and found[0].confidence >= self.min_confidence:
                return _merged(ranked, [_sped_up(match, speed) for match in found])[:limit]
        return ranked

    def match_landmarks(self, query: Landmarks, limit: int = 5) -> list[Match]:
        """Like :meth:`candidates` for already extracted query landmarks."""
        if self.index.scheme is not None and query.scheme != self.index.scheme:
            raise ValueError(f"query scheme {query.scheme!r} differs from {self.index.scheme!r}")
        matches = self._match_pairs(query, limit)
        if self.invariant is not None and (
            not matches or matches[0].confidence < self.min_confidence
        ):
            times, bins = thinned_peaks(query, self.invariant.peaks_per_second)
            found = match_invariant(self.index, times, bins, self.invariant)
            matches = _merged(matches, [self._convert(candidate, query.frame_seconds)
                                        for candidate in found])
        return matches[:limit]

    def _convert(self, found: InvariantMatch, frame: float) -> Match:
        start, end = found.first_frame, found.last_frame
        return Match(
            recording_id=int(self.index.slot_recording_id(np.array([found.slot]))[0]),
            confidence=found.confidence,
            query_start=start * frame,
            query_end=end * frame,
            ref_start=(found.offset + found.time_factor * start) * frame,
            speed=round(found.time_factor, 4),
            pitch_semitones=round(12.0 * math.log2(found.freq_factor), 2),
            score=found.score,
            chance_score=found.chance,
        )

    def _match_pairs(self, query: Landmarks, limit: int, tries: int = 1,
                     corroborate: bool = False) -> list[Match]:
        if len(query.hashes) == 0 or len(self.index) == 0:
            return []
        hits = self.index.lookup(query.hashes, max_postings=self.max_postings)
        if self.max_repeats is not None:
            hits = _drop_repeated(hits, self.max_repeats)
        if len(hits.slots) == 0:
            return []
        query_times = np.asarray(query.times, dtype=np.int64)[hits.query_rows]
        offsets = hits.ref_times - query_times
        best = self._best_offsets(hits.slots, offsets)
        query_frames = int(query.times.max()) + 1
        matches = [
            self._verify(query, hits, query_times, offsets, slot, offset, query_frames, tries)
            for slot, offset in best
        ]
        if corroborate and self.corroboration is not None:
            matches = [self._corroborated(query, match, slot, self.corroboration)
                       for match, (slot, _) in zip(matches, best, strict=True)]
        matches.sort(key=lambda m: (m.confidence, m.score), reverse=True)
        return matches[:limit]

    def _best_offsets(self, slots: np.ndarray, offsets: np.ndarray) -> list[tuple[int, int]]:
        """(slot, offset) of the best-voted offset of each of the best-voted recordings."""
        shift = np.int64(1) << 32
        keys, counts = np.unique(slots * shift + (offsets + (shift >> 1)), return_counts=True)
        votes = counts.copy()
        for delta in range(1, self.offset_tolerance + 1):
            for neighbour in (keys - delta, keys + delta):
                position = np.searchsorted(keys, neighbour)
                position = np.minimum(position, len(keys) - 1)
                found = keys[position] == neighbour
                votes[found] += counts[position[found]]
        key_slots = keys // shift
        order = np.lexsort((-votes, key_slots))  # by slot, most votes first
        first_of_slot = order[np.r_[True, key_slots[order][1:] != key_slots[order][:-1]]]
        top = first_of_slot[np.argsort(-votes[first_of_slot], kind="stable")]
        top = top[: self.verify_candidates]
        return [(int(key_slots[i]), int(keys[i] % shift - (shift >> 1))) for i in top]

    def _verify(
        self,
        query: Landmarks,
        hits: Hits,
        query_times: np.ndarray,
        offsets: np.ndarray,
        slot: int,
        offset: int,
        query_frames: int,
        tries: int = 1,
    ) -> Match:
        in_slot = hits.slots == slot
        near = in_slot & (np.abs(offsets - offset) <= self.offset_tolerance)
        slot_pairs = np.unique(query_times[in_slot] * (np.int64(1) << 32) + offsets[in_slot])
        random_chance = self._chance_score(len(slot_pairs), slot, query_frames, trials=tries)
        frame = query.frame_seconds
        rate = self.coincidence_rate * frame  # coincident frames per frame of matched span
        # The score and the span that chance is reckoned over must be the same stretch of the
        # query: see _best_segment. Distinct query frames, not hashes: one anchor (or one chord)
        # yields several hashes at once, and such bursts would make chance coincidences look
        # like long agreements.
        start, end, score = _best_segment(np.unique(query_times[near]), rate)
        chance = random_chance + rate * (end - start)
        speed, intercept = 1.0, float(offset)
        # Fit a speed only for a match that already stands out: a line fitted through chance
        # hits and widened along its slope would sweep up more chance hits.
        if score - chance >= self.confidence_margin:
            fitted = self._fit_speed(query_times[in_slot], hits.ref_times[in_slot], offset)
            if fitted is not None:
                slope, fitted_intercept = fitted
                line = fitted_intercept + slope * query_times
                widened = in_slot & (np.abs(hits.ref_times - line) <= self.offset_tolerance + 0.5)
                widened_extent = _best_segment(np.unique(query_times[widened]), rate)
                if widened_extent[2] >= score:
                    speed, intercept, near = slope, fitted_intercept, widened
                    start, end, score = widened_extent
                    # The search tried many slopes: chance had as many more tries too.
                    random_chance = self._chance_score(
                        len(slot_pairs), slot, query_frames, trials=tries * self._slope_count()
                    )
        chance = random_chance + rate * (end - start)
        near &= (query_times >= start) & (query_times <= end)
        rows = hits.query_rows[near]
        # Report the matched part without stray frames at its ends (the score keeps them).
        shown_start, shown_end = _matched_extent(np.unique(query_times[near]),
                                                 round(2.0 / frame))
        pitch = 0.0
        if score:
            query_bins = np.asarray(query.freqs, dtype=np.float64)[rows]
            ref_bins = hits.ref_freqs[near].astype(np.float64)
            ratio = np.median(np.log2(np.maximum(query_bins, 1.0) / np.maximum(ref_bins, 1.0)))
            pitch = round(float(12.0 * ratio), 2)
        confidence = calibrated_confidence(
            score, chance, margin=self.confidence_margin, spread=self.confidence_spread
        )
        return Match(
            recording_id=int(self.index.slot_recording_id(np.array([slot]))[0]),
            confidence=confidence,
            query_start=shown_start * frame,
            query_end=shown_end * frame,
            ref_start=(intercept + speed * shown_start) * frame,
            speed=round(speed, 4),
            pitch_semitones=pitch,
            score=score,
            chance_score=chance,
        )

    def _corroborated(self, query: Landmarks, match: Match, slot: int,
                      params: CorroborationParams) -> Match:
        """``match``, more confident if the reference's peaks corroborate a pair excess that
        falls short of the margin (see :mod:`fingerprints.corroborate`)."""
        excess = match.score - match.chance_score
        if match.confidence >= self.min_confidence or excess < params.min_excess:
            return match
        frame = query.frame_seconds
        offset = (match.ref_start - match.speed * match.query_start) / frame
        deviations = peak_deviations(self.index, slot, query.peak_times, query.peak_bins,
                                     offset, match.speed, params)
        confidence = corroborated_confidence(excess, deviations, params)
        if confidence <= match.confidence:
            return match
        return dataclasses.replace(match, confidence=confidence)

    def _slope_count(self) -> int:
        return 2 * round(self.max_speed_change / _SLOPE_STEP) + 1

    def _fit_speed(
        self, query_times: np.ndarray, ref_times: np.ndarray, offset: int
    ) -> tuple[float, float] | None:
        """(slope, intercept) of ref time against query time through the most hits, or None.

        A tempo change makes the true hits drift across offsets, so the hits of one offset
        give a short, biased line. Instead every slope within ``max_speed_change`` (steps of
        0.1 %) votes with the hits' intercepts, like a Hough transform; the best line is then
        refined by least squares over the hits near it.
        """
        if len(query_times) < 3:
            return None
        drift = self.max_speed_change * float(query_times.max() - query_times.min()) + 2.0
        nearby = np.abs((ref_times - query_times) - offset) <= drift
        q, r = query_times[nearby].astype(np.float64), ref_times[nearby].astype(np.float64)
        steps = (self._slope_count() - 1) // 2
        slopes = 1.0 + _SLOPE_STEP * np.arange(-steps, steps + 1)
        intercepts = np.rint(r[None, :] - slopes[:, None] * q[None, :]).astype(np.int64)
        base = intercepts.min()
        best_count, best = 0, (1.0, float(offset))
        for row, slope in enumerate(slopes):
            counts = np.bincount(intercepts[row] - base)
            smoothed = counts + np.r_[counts[1:], 0] + np.r_[0, counts[:-1]]
            peak = int(np.argmax(smoothed))
            if smoothed[peak] > best_count:
                best_count, best = int(smoothed[peak]), (float(slope), float(peak + base))
        slope, intercept = best
        close = np.abs(r - (intercept + slope * q)) <= self.offset_tolerance + 0.5
        if np.count_nonzero(close) < 3 or np.ptp(q[close]) == 0:
            return None
        refined_slope, refined_intercept = np.polyfit(q[close], r[close], 1)
        if abs(refined_slope - 1.0) > self.max_speed_change:
            return None
        return float(refined_slope), float(refined_intercept)

    def _chance_score(
        self, slot_hits: int, slot: int, query_frames: int, trials: int = 1
    ) -> float:
        """The best score that hits scattered at random over all offsets would reach.

        The ``slot_hits`` distinct (query frame, offset) hits on this recording are spread
        over ``ref + query`` frames of possible offsets; a window of ``2 * tolerance + 1``
        frames then holds Poisson(λ) of them. The best of all windows reaches about the
        (1 - 1/windows) quantile, found here by a short search over the Poisson tail.
        """
        frame = self.index.frame_seconds or 1.0
        ref_frames = self.index.slot_duration(slot) / frame
        span = max(1.0, ref_frames + query_frames)
        width = 2 * self.offset_tolerance + 1
        lam = slot_hits * width / span
        windows = max(1.0, span / width) * max(1, len(self.index)) * trials
        return _poisson_quantile(lam, 1.0 - 1.0 / windows)


def _drop_repeated(hits: Hits, max_repeats: int) -> Hits:
    """Hits minus those whose hash occurs more than ``max_repeats`` times in their reference.

    Such hashes come from material that repeats (the same chord or drum pair every bar); they
    line up with any piece of the same tempo and key as readily as with the true source.
    """
    if len(hits.slots) == 0:
        return hits
    key = hits.query_rows * (int(hits.slots.max()) + 1) + hits.slots
    _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    keep = counts[inverse] <= max_repeats
    return Hits(hits.query_rows[keep], hits.slots[keep], hits.ref_times[keep], hits.ref_freqs[keep])


def _best_segment(frames: np.ndarray, rate: float) -> tuple[int, int, int]:
    """(first frame, last frame, frames in between) of the stretch of matched ``frames`` (sorted,
    distinct) that most exceeds ``rate`` coincidences per frame of its length.

    Unrelated music reaches a few aligned frames at one offset now and then: at a rate near
    ``coincidence_rate`` when two pieces share tempo and key, whose bar grids then stay aligned
    for the whole query (two synthesised 3-minute tracks at 122.7 and 122.6 bpm agree on a
    frame every 6 s at an offset of 8 bars, from the first minute to the last). Counted over a
    whole long query such frames add up to any score, so the score is counted over one stretch
    only, and chance is reckoned over the same stretch: the one maximising ``count - rate *
    length`` (a maximum-scoring segment). The frames of a true match are far denser than
    ``rate``: they join into one stretch across gaps, each frame paying for ``1 / rate`` frames
    (3.3 s) of span.
    """
    if len(frames) == 0:
        return 0, 0, 0
    times = frames.astype(np.float64)
    number = np.arange(len(frames), dtype=np.float64)
    # value(i, j) = (j - i + 1) - rate * (t_j - t_i) = ends[j] + starts[i] for i <= j.
    ends = number + 1.0 - rate * times
    starts = rate * times - number
    best_start = np.maximum.accumulate(starts)
    last = int(np.argmax(ends + best_start))
    first = int(np.flatnonzero(starts[: last + 1] == best_start[last])[0])
    return int(frames[first]), int(frames[last]), last - first + 1


def _matched_extent(frames: np.ndarray, radius: int) -> tuple[int, int]:
    """First and last matched frame, ignoring stray ones with under two others within radius.

    A chance hit lined up with a true match (in an intro before the matched part, say) would
    otherwise stretch the reported segment.
    """
    if len(frames) == 0:
        return 0, 0
    neighbours = np.searchsorted(frames, frames + radius, side="right") - np.searchsorted(
        frames, frames - radius, side="left"
    )
    supported = frames[neighbours >= 3]  # itself and at least two others
    if len(supported) == 0:
        supported = frames
    return int(supported[0]), int(supported[-1])


def _poisson_quantile(lam: float, probability: float) -> float:
    """Smallest k with P(X <= k) >= probability for X ~ Poisson(lam) (log-space, stable)."""
    if lam <= 0.0:
        return 0.0
    log_term = -lam  # log P(X = 0)
    cumulative = math.exp(log_term)
    k = 0
    while cumulative < probability and k < 100000:
        k += 1
        log_term += math.log(lam) - math.log(k)
        cumulative += math.exp(log_term)
    return float(k)


def _merged(matches: list[Match], more: list[Match]) -> list[Match]:
    """Both lists' matches, the more confident one per recording, best first."""
    best = {m.recording_id: m for m in matches}
    for match in more:
        known = best.get(match.recording_id)
        if known is None or match.confidence > known.confidence:
            best[match.recording_id] = match
    return sorted(best.values(), key=lambda m: (m.confidence, m.score), reverse=True)


def undo_speed(audio: Audio, speed: float) -> Audio:
    """``audio`` played ``speed`` times slower, by resampling (what undoes a speed change of
    ``speed``: tempo and pitch together)."""
    ratio = Fraction(speed).limit_denominator(100)
    samples = signal.resample_poly(audio.samples, ratio.numerator, ratio.denominator)
    return Audio(samples.astype(np.float32), audio.sample_rate)


def _pitched(match: Match, semitones: float) -> Match:
    """A match found with the query's pitch shift of ``semitones`` undone."""
    return dataclasses.replace(
        match, pitch_semitones=round(match.pitch_semitones + semitones, 2))


def _sped_up(match: Match, speed: float) -> Match:
    """A match found in the query slowed by ``speed``, in the query's own time."""
    return dataclasses.replace(
        match,
        query_start=match.query_start / speed,
        query_end=match.query_end / speed,
        speed=round(match.speed * speed, 4),
        pitch_semitones=round(match.pitch_semitones + 12.0 * math.log2(speed), 2),
    )
