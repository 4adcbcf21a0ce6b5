"""Speed-, pitch- and tempo-invariant hashes of spectral peak groups (after Panako's triplets
and Sonnleitner and Widmer's quads).

A pair hash (:mod:`fingerprints.landmarks`) stores absolute frequencies and frame differences,
so resampling, pitch shifting or time stretching the audio changes every hash. A *group* of an
anchor peak and three later ones, ``(t1, f1) .. (t4, f4)`` with ``t1 < t2 <= t3 <= t4``, has
quantities that none of those changes alter: time stretching by any factor keeps the time
ratios ``(t2 - t1) / (t4 - t1)`` and ``(t3 - t1) / (t4 - t1)``; scaling every frequency by a
factor (pitch shift; resampling does both) keeps the frequency ratios ``f2 / f1``, ``f3 / f1``
and ``f4 / f1``. A group hash is those five, quantised, plus the anchor's frequency band in
third octaves (not invariant, but it makes the hash more selective than the extra probes it
costs). Triplets, tried first, gave hashes so common that a 40-hour catalog answered a query
with hundreds of thousands of chance hits; the fourth peak cut that seven-fold.

A query does not know its speed or pitch, so it looks every group up under each band the
allowed range of frequency factors could map it to, and under both cells of any invariant
value within its measurement error of a cell border: see :func:`query_probes`.

Groups are made from the peaks :class:`~fingerprints.landmarks.Landmarks` keeps
(``peak_times`` and the interpolated ``peak_bins``), so a stored fingerprint is enough to
rebuild an index. Only peaks from ``min_bin`` to ``max_bin`` take part: below, one bin is too
coarse a step of frequency for ratios; above, cymbals and noise make common, uninformative
groups. Groups whose three successors share one frame (a transient's column of peaks) are
left out for the same reason. A reference anchor is joined with every three of its first
``reference_fanout`` successors; a query anchor with every three of its first
``query_fanout``, so that a peak the alteration added to the query (or removed) still leaves
the reference's group among the query's. Reads no settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

# Bit layout of a group hash, low to high: two time ratios, three frequency ratios, band.
_RATIO_BITS, _FREQ_BITS, _BAND_BITS = 3, 5, 4
TRIPLET_HASH_BITS = 2 * _RATIO_BITS + 3 * _FREQ_BITS + _BAND_BITS


@dataclass(frozen=True)
class TripletParams:
    """Tuning values of peak-group hashing; the hashing and voting both read them."""

    # Lowest interpolated bin (of the landmark STFT) a group's peak may have: 15 bins is
    # 161 Hz at 11025 Hz, where half a bin of error is 3 % (half a semitone) at worst.
    min_bin: float = 15.0
    # Highest interpolated bin: 372 bins is 4 kHz; above it peaks are mostly cymbals and noise,
    # which form common, uninformative groups (and MP3 encoders mangle them).
    max_bin: float = 372.0
    # Successors of an anchor lie 1..max_span frames later and within max_octaves of it.
    max_span: int = 80
    max_octaves: float = 1.0
    # Groups whose span is shorter than this (frames) have too coarse time ratios.
    min_span: int = 4
    # Reference anchors are grouped with every three of their first reference_fanout
    # successors (3: one group an anchor, which keeps the index small), query anchors with
    # every three of their first query_fanout (6: twenty groups an anchor).
    reference_fanout: int = 3
    query_fanout: int = 6
    # Quantisation steps: time ratios in 1/2**_RATIO_BITS, frequency ratios and the anchor
    # band in octaves.
    freq_step: float = 1.0 / 16.0
    band_step: float = 1.0 / 3.0
    # Range of changes a query is searched for: frequency factor (pitch and resampling) and
    # time factor (reference frames per query frame: tempo and resampling).
    min_freq_factor: float = 0.87
    max_freq_factor: float = 1.30
    min_time_factor: float = 0.86
    max_time_factor: float = 1.32
    # Uncertainty of a peak: frames of timing jitter and octaves of frequency error; values
    # this close to a cell border are looked up in both cells.
    time_jitter: float = 0.6
    freq_error: float = 0.012

    @property
    def scheme(self) -> str:
        return (
            f"tri-v1:bins={self.min_bin}-{self.max_bin}:span={self.min_span}-{self.max_span}"
            f":oct={self.max_octaves}:fanout={self.reference_fanout}"
            f":steps={self.freq_step:.5f}/{self.band_step:.5f}"
            f":quad-bits={_RATIO_BITS}/{_FREQ_BITS}/{_BAND_BITS}"
        )


DEFAULT_TRIPLET_PARAMS = TripletParams()


@dataclass(frozen=True)
class Triplets:
    """Peak groups (an anchor and three successors) of one peak list, and what is hashed."""

    anchors: np.ndarray  # int64 index into the peak list of the first (anchor) peak
    ratio2: np.ndarray  # float64 (t2 - t1) / (t4 - t1)
    ratio3: np.ndarray  # float64 (t3 - t1) / (t4 - t1)
    freq2: np.ndarray  # float64 log2(f2 / f1)
    freq3: np.ndarray  # float64 log2(f3 / f1)
    freq4: np.ndarray  # float64 log2(f4 / f1)
    span: np.ndarray  # float64 t4 - t1, frames
    band: np.ndarray  # float64 log2(f1 / min_bin)

    def __len__(self) -> int:
        return len(self.anchors)


def make_triplets(
    peak_times: np.ndarray, peak_bins: np.ndarray, params: TripletParams, fanout: int
) -> Triplets:
    """All groups of an anchor and three of its first ``fanout`` successors."""
    times = np.asarray(peak_times, dtype=np.int64)
    bins = np.asarray(peak_bins, dtype=np.float64)
    usable = np.nonzero((bins >= params.min_bin) & (bins <= params.max_bin))[0]
    if len(usable) < 4:
        empty = np.zeros(0, dtype=np.float64)
        return Triplets(np.zeros(0, dtype=np.int64), *([empty] * 7))
    t, f = times[usable], bins[usable]
    count = len(t)
    # Successors start at the first peak of a later frame; scan enough to find `fanout`.
    first_later = np.searchsorted(t, t, side="right")
    window = min(count, 6 * fanout)
    candidates = first_later[:, None] + np.arange(window)[None, :]
    inside = candidates < count
    candidates = np.minimum(candidates, count - 1)
    octaves = np.log2(f[candidates] / f[:, None])
    valid = inside & (t[candidates] - t[:, None] <= params.max_span)
    valid &= np.abs(octaves) <= params.max_octaves
    rank = np.cumsum(valid, axis=1) - 1
    valid &= rank < fanout
    successors = np.full((count, fanout), -1, dtype=np.int64)
    rows, cols = np.nonzero(valid)
    successors[rows, rank[rows, cols]] = candidates[rows, cols]
    groups = [
        (np.nonzero(successors[:, third] >= 0)[0], first, second, third)
        for first, second, third in combinations(range(fanout), 3)
    ]
    anchor = np.concatenate([g[0] for g in groups])
    second = np.concatenate([successors[g[0], g[1]] for g in groups])
    third = np.concatenate([successors[g[0], g[2]] for g in groups])
    last = np.concatenate([successors[g[0], g[3]] for g in groups])
    span = (t[last] - t[anchor]).astype(np.float64)
    # Successors all in one frame are a transient's column of peaks: as common as stop words.
    keep = (span >= params.min_span) & (t[second] < t[last])
    anchor, second, third, last, span = (
        anchor[keep], second[keep], third[keep], last[keep], span[keep]
    )
    return Triplets(
        anchors=usable[anchor],
        ratio2=(t[second] - t[anchor]) / span,
        ratio3=(t[third] - t[anchor]) / span,
        freq2=np.log2(f[second] / f[anchor]),
        freq3=np.log2(f[third] / f[anchor]),
        freq4=np.log2(f[last] / f[anchor]),
        span=span,
        band=np.log2(f[anchor] / params.min_bin),
    )


def _cells(values: np.ndarray, step: float, low: int, high: int) -> np.ndarray:
    return np.clip(np.floor(values / step), low, high).astype(np.int64)


def _combine(ratio2: np.ndarray, ratio3: np.ndarray, freq2: np.ndarray, freq3: np.ndarray,
             freq4: np.ndarray, band: np.ndarray) -> np.ndarray:
    value = band
    for bits, part in ((_FREQ_BITS, freq4), (_FREQ_BITS, freq3),
                       (_FREQ_BITS, freq2), (_RATIO_BITS, ratio3), (_RATIO_BITS, ratio2)):
        value = (value << bits) | part
    return value.astype(np.uint32)


def _quantisers(params: TripletParams) -> dict[str, tuple[float, int, int]]:
    """(step, lowest cell, highest cell) of each hashed quantity (before offsets)."""
    freq_cells = 2 ** (_FREQ_BITS - 1)
    return {
        "ratio": (1.0 / 2**_RATIO_BITS, 0, 2**_RATIO_BITS - 1),
        "freq": (params.freq_step, -freq_cells, freq_cells - 1),
        "band": (params.band_step, 0, 2**_BAND_BITS - 1),
    }


def reference_hashes(triplets: Triplets, params: TripletParams) -> np.ndarray:
    """The hash of each group, as stored in an index."""
    q = _quantisers(params)
    freq_offset = 2 ** (_FREQ_BITS - 1)
    return _combine(
        _cells(triplets.ratio2, *q["ratio"]),
        _cells(triplets.ratio3, *q["ratio"]),
        _cells(triplets.freq2, *q["freq"]) + freq_offset,
        _cells(triplets.freq3, *q["freq"]) + freq_offset,
        _cells(triplets.freq4, *q["freq"]) + freq_offset,
        _cells(triplets.band, *q["band"]),
    )


def _expand(
    rows: np.ndarray, low: np.ndarray, high: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (row, cell) with ``low[i] <= cell <= high[i]``; also the source position."""
    counts = np.maximum(high - low + 1, 0)
    source = np.repeat(np.arange(len(low)), counts)
    starts = np.cumsum(counts) - counts
    cells = low[source] + (np.arange(int(counts.sum())) - starts[source])
    return rows[source], cells, source


def query_probes(triplets: Triplets, params: TripletParams) -> tuple[np.ndarray, np.ndarray]:
    """(hashes, group row) of every cell a query group may have been stored under."""
    q = _quantisers(params)
    freq_offset = 2 ** (_FREQ_BITS - 1)
    rows = np.arange(len(triplets), dtype=np.int64)
    jitter = params.time_jitter
    span = triplets.span

    def ratio_interval(ratio: np.ndarray) -> tuple[str, np.ndarray, np.ndarray]:
        moved = ratio * span
        return ("ratio", np.maximum(moved - jitter, 0.0) / (span + jitter),
                np.minimum((moved + jitter) / np.maximum(span - jitter, 1.0), 1.0))

    def freq_interval(freq: np.ndarray) -> tuple[str, np.ndarray, np.ndarray]:
        return ("freq", freq - params.freq_error, freq + params.freq_error)

    # Each quantity's interval of possible reference values, as cell ranges.
    intervals = [
        ratio_interval(triplets.ratio2),
        ratio_interval(triplets.ratio3),
        freq_interval(triplets.freq2),
        freq_interval(triplets.freq3),
        freq_interval(triplets.freq4),
        ("band", triplets.band - np.log2(params.max_freq_factor),
         triplets.band - np.log2(params.min_freq_factor)),
    ]
    cells: list[np.ndarray] = []
    for name, low_value, high_value in intervals:
        step, low_cell, high_cell = q[name]
        low = _cells(low_value, step, low_cell, high_cell)
        high = _cells(high_value, step, low_cell, high_cell)
        rows, new, source = _expand(rows, low[rows], high[rows])
        cells = [c[source] for c in cells]
        cells.append(new + (freq_offset if name == "freq" else 0))
    return _combine(*cells), rows
