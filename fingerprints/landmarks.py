"""Landmark (spectral peak pair) fingerprints, after Wang's Shazam paper and audfprint.

Pipeline, all vectorised numpy/scipy:

1. magnitude STFT in dB relative to a full-scale sine (so thresholds are in dBFS);
2. peaks: local maxima over a time-frequency neighbourhood that stand above both an absolute
   floor (silence and near-silence give nothing) and their local background, thinned to the
   most prominent ``peaks_per_second``;
3. landmarks: each peak (the anchor) is paired with the next ``fanout`` peaks inside a target
   zone (``1..max_dt`` frames later, within ``max_df`` bins); the pair becomes a 22-bit hash
   ``f1 (9 bits) | f2 - f1 (7 bits) | dt (6 bits)`` stored as uint32, with the anchor's frame.

:class:`Landmarks` also keeps every picked peak and the anchor frequencies, so that pitch can
be estimated from matched peaks and a later speed/pitch-invariant hash (Panako-style ratios of
peak coordinates) can be computed from the same peaks. Reads no settings: the tuning values are
the fields of :class:`LandmarkParams`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.fft
from scipy import ndimage, signal

from fingerprints.audio import SAMPLE_RATE, Audio

# Bit layout of a pair hash; the extraction parameters below are checked against it.
_F1_BITS, _DF_BITS, _DT_BITS = 9, 7, 6
HASH_BITS = _F1_BITS + _DF_BITS + _DT_BITS


@dataclass(frozen=True)
class LandmarkParams:
    """Tuning values of landmark extraction (defaults suit 11025 Hz music)."""

    # Rate the audio is analysed at; other rates are resampled first.
    sample_rate: int = SAMPLE_RATE
    # FFT window length in samples: 1024 at 11025 Hz = 93 ms, 10.8 Hz per bin.
    n_fft: int = 1024
    # Hop between frames in samples: 256 at 11025 Hz = 23.2 ms time resolution.
    hop: int = 256
    # Peaks below this frequency (rumble, DC) are ignored.
    min_freq_hz: float = 80.0
    # Peaks above this frequency are ignored (5 kHz stays below the top band MP3 drops first).
    max_freq_hz: float = 5000.0
    # Absolute floor in dB relative to a full-scale sine: quieter peaks are not peaks.
    min_peak_db: float = -70.0
    # A peak must exceed the mean level of its surroundings by this many dB.
    min_prominence_db: float = 6.0
    # Half-size of the local-maximum neighbourhood, in frames and in bins.
    peak_time_radius: int = 4
    peak_freq_radius: int = 8
    # Size of the background window used for prominence, in frames and bins.
    background_frames: int = 21
    background_bins: int = 41
    # Keep at most this many of the most prominent peaks per second (per 1-second block).
    peaks_per_second: float = 30.0
    # Pair each anchor with up to this many targets (more hashes: more robust, larger index).
    fanout: int = 8
    # Target zone: targets lie 1..max_dt frames after the anchor and within max_df bins of it.
    max_dt: int = 63
    max_df: int = 63

    def __post_init__(self) -> None:
        if not 1 <= self.max_dt < 2**_DT_BITS:
            raise ValueError(f"max_dt must be in 1..{2**_DT_BITS - 1}")
        if not 0 <= self.max_df < 2 ** (_DF_BITS - 1):
            raise ValueError(f"max_df must be in 0..{2 ** (_DF_BITS - 1) - 1}")
        if self.max_freq_bin() >= 2**_F1_BITS:
            raise ValueError("max_freq_hz is too high for the 9-bit anchor frequency")
        if self.hop <= 0 or self.n_fft <= 0 or self.fanout <= 0 or self.peaks_per_second <= 0:
            raise ValueError("n_fft, hop, fanout and peaks_per_second must be positive")

    @property
    def frame_seconds(self) -> float:
        return self.hop / self.sample_rate

    @property
    def bin_hz(self) -> float:
        return self.sample_rate / self.n_fft

    def max_freq_bin(self) -> int:
        return min(self.n_fft // 2, int(self.max_freq_hz / self.bin_hz))

    @property
    def scheme(self) -> str:
        """Names everything that must be equal for two fingerprints' hashes to be comparable."""
        return (
            f"pair-v2:sr={self.sample_rate}:n_fft={self.n_fft}:hop={self.hop}"
            f":bits={_F1_BITS}/{_DF_BITS}/{_DT_BITS}:peaks=interpolated"
        )


# Queries are analysed densely and references sparsely. A reference keeps only its strongest
# peaks and pairs each with fewer targets, which is most of the index's size; a query's denser
# peaks and wider fan-out still contain the reference's pairs, also when the alteration moved,
# dropped or added peaks. (pair-v2 in the scheme: v1 references were as dense as queries.)
DEFAULT_PARAMS = LandmarkParams()
REFERENCE_PARAMS = LandmarkParams(peaks_per_second=20.0, fanout=2)


def anchor_bins(hashes: np.ndarray) -> np.ndarray:
    """The anchor frequency bin each pair hash holds in its top bits."""
    return np.asarray(hashes, dtype=np.uint32) >> (_DF_BITS + _DT_BITS)


def _empty(dtype: type[np.generic]) -> np.ndarray:
    return np.zeros(0, dtype=dtype)


@dataclass(frozen=True)
class Landmarks:
    """The landmark fingerprint of one recording or query.

    ``hashes``, ``times`` (anchor frame) and ``freqs`` (anchor bin) are parallel arrays, one
    entry per peak pair; ``peak_times``/``peak_freqs`` list every picked peak.
    """

    hashes: np.ndarray  # uint32 pair hashes
    times: np.ndarray  # uint32 frame index of each hash's anchor peak
    freqs: np.ndarray  # uint16 frequency bin of each hash's anchor peak
    frame_seconds: float  # seconds per frame (hop / sample rate)
    bin_hz: float = 0.0  # Hz per frequency bin, for pitch estimation
    scheme: str = DEFAULT_PARAMS.scheme  # hash layout and analysis parameters (see LandmarkParams)
    peak_times: np.ndarray = field(default_factory=lambda: _empty(np.uint32))
    peak_freqs: np.ndarray = field(default_factory=lambda: _empty(np.uint16))
    # float32 frequency of each peak in bins, refined between bins (for frequency ratios).
    peak_bins: np.ndarray = field(default_factory=lambda: _empty(np.float32))
    # float32 prominence of each peak in dB (what thinning ranks by); empty if not known.
    peak_strengths: np.ndarray = field(default_factory=lambda: _empty(np.float32))

    def __len__(self) -> int:
        return len(self.hashes)


def spectrogram_db(samples: np.ndarray, params: LandmarkParams) -> np.ndarray:
    """Magnitude STFT, shape (frames, bins), in dB relative to a full-scale sine."""
    if len(samples) < params.n_fft:
        samples = np.pad(samples, (0, params.n_fft - len(samples)))
    frames = np.lib.stride_tricks.sliding_window_view(samples, params.n_fft)[:: params.hop]
    window = np.hanning(params.n_fft).astype(np.float32)
    spectrum = np.abs(scipy.fft.rfft(frames * window, axis=1))
    # A full-scale sine peaks at sum(window) / 2 in the magnitude spectrum.
    reference = float(window.sum()) / 2.0
    return 20.0 * np.log10(np.maximum(spectrum / reference, 1e-10)).astype(np.float32)


def _window_max(values: np.ndarray, size: int) -> np.ndarray:
    """``out[i] = max(values[i : i + size])`` along axis 0, by doubling (log2(size) passes).

    Several times faster than ``ndimage.maximum_filter`` for these window sizes.
    """
    out: np.ndarray | None = None
    covered = 0
    block, block_len, remaining = values, 1, size
    while remaining:
        if remaining & 1:
            if out is None:
                out, covered = block, block_len
            else:
                length = min(len(out), len(block) - covered)
                out = np.maximum(out[:length], block[covered : covered + length])
                covered += block_len
        remaining >>= 1
        if remaining:
            block = np.maximum(block[:-block_len], block[block_len:])
            block_len *= 2
    assert out is not None
    return out[: len(values) - size + 1]


def _centred_max(values: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Maximum over a centred window of odd ``size`` along ``axis``, -inf beyond the edges."""
    moved = np.moveaxis(values, axis, 0)
    radius = size // 2
    padding = np.full((radius, *moved.shape[1:]), -np.inf, dtype=values.dtype)
    padded = np.concatenate([padding, moved, padding])
    return np.moveaxis(_window_max(padded, size), 0, axis)


def find_peaks(
    spec_db: np.ndarray, params: LandmarkParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Picked peaks as (frame indices, bin indices, prominences in dB), sorted by frame then
    bin."""
    low = max(1, int(np.ceil(params.min_freq_hz / params.bin_hz)))
    high = params.max_freq_bin()
    band = spec_db[:, low : high + 1]
    if band.size == 0:
        return _empty(np.uint32), _empty(np.uint16), _empty(np.float32)
    size = (2 * params.peak_time_radius + 1, 2 * params.peak_freq_radius + 1)
    local_max = _centred_max(_centred_max(band, size[0], axis=0), size[1], axis=1)
    background = ndimage.uniform_filter(
        band, size=(params.background_frames, params.background_bins), mode="nearest"
    )
    prominence = band - background
    is_peak = (
        (band == local_max)
        & (band > params.min_peak_db)
        & (prominence > params.min_prominence_db)
    )
    frames, bins = np.nonzero(is_peak)
    if len(frames) == 0:
        return _empty(np.uint32), _empty(np.uint16), _empty(np.float32)
    strength = prominence[frames, bins]
    keep = np.sort(strongest_per_second(frames, strength, params.peaks_per_second,
                                        params.frame_seconds))
    frames, bins, strength = frames[keep], bins[keep] + low, strength[keep]
    order = np.lexsort((bins, frames))
    return (frames[order].astype(np.uint32), bins[order].astype(np.uint16),
            strength[order].astype(np.float32))


def strongest_per_second(frames: np.ndarray, strengths: np.ndarray, peaks_per_second: float,
                         frame_seconds: float) -> np.ndarray:
    """Positions of the strongest peaks of each one-second block of frames, at most
    ``peaks_per_second`` a block (in no particular order)."""
    block_frames = max(1, round(1.0 / frame_seconds))
    per_block = max(1, round(peaks_per_second * block_frames * frame_seconds))
    block = np.asarray(frames, dtype=np.int64) // block_frames
    order = np.lexsort((-np.asarray(strengths, dtype=np.float64), block))
    sorted_block = block[order]
    first = np.searchsorted(sorted_block, sorted_block, side="left")
    rank = np.arange(len(order)) - first
    return order[rank < per_block]


def thinned_peaks(landmarks: Landmarks, peaks_per_second: float) -> tuple[np.ndarray, np.ndarray]:
    """(frames, fractional bins) of ``landmarks``' strongest peaks, at most
    ``peaks_per_second``, by frame: a dense query's peaks at a sparse reference's density.
    All peaks when their strengths are not known."""
    times = np.asarray(landmarks.peak_times)
    bins = np.asarray(landmarks.peak_bins)
    strengths = np.asarray(landmarks.peak_strengths)
    if len(strengths) != len(times) or len(times) == 0:
        return times, bins
    keep = np.sort(strongest_per_second(times, strengths, peaks_per_second,
                                        landmarks.frame_seconds))
    return times[keep], bins[keep]


def interpolate_bins(spec_db: np.ndarray, frames: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """Each peak's frequency in (fractional) bins: the vertex of a parabola through the dB
    levels of its bin and the two next to it (accurate to about a tenth of a bin)."""
    if len(frames) == 0:
        return _empty(np.float32)
    rows = frames.astype(np.int64)
    centre = bins.astype(np.int64)
    below = spec_db[rows, np.maximum(centre - 1, 0)].astype(np.float64)
    level = spec_db[rows, centre].astype(np.float64)
    above = spec_db[rows, np.minimum(centre + 1, spec_db.shape[1] - 1)].astype(np.float64)
    curvature = below - 2.0 * level + above
    safe = np.where(curvature < 0.0, curvature, -1.0)
    delta = np.where(curvature < 0.0, 0.5 * (below - above) / safe, 0.0)
    return (centre + np.clip(delta, -0.5, 0.5)).astype(np.float32)


def pair_peaks(
    peak_frames: np.ndarray, peak_bins: np.ndarray, params: LandmarkParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Anchor-target pairs as (hashes, anchor frames, anchor bins), sorted by anchor frame."""
    count = len(peak_frames)
    if count < 2:
        return _empty(np.uint32), _empty(np.uint32), _empty(np.uint16)
    t = peak_frames.astype(np.int64)
    f = peak_bins.astype(np.int64)
    # Candidate targets: the next `window` peaks in time order, enough to cover the zone.
    per_frame = params.peaks_per_second * params.frame_seconds
    window = int(min(count - 1, max(params.fanout * 4, np.ceil(per_frame * params.max_dt * 1.5))))
    anchors = np.arange(count)[:, None]
    targets = anchors + np.arange(1, window + 1)[None, :]
    inside = targets < count
    targets = np.minimum(targets, count - 1)
    dt = t[targets] - t[anchors]
    df = f[targets] - f[anchors]
    valid = inside & (dt >= 1) & (dt <= params.max_dt) & (np.abs(df) <= params.max_df)
    valid &= np.cumsum(valid, axis=1) <= params.fanout
    rows, cols = np.nonzero(valid)
    a_f = f[rows]
    hashes = (
        (a_f << (_DF_BITS + _DT_BITS))
        | ((df[rows, cols] + 2 ** (_DF_BITS - 1)) << _DT_BITS)
        | dt[rows, cols]
    )
    return hashes.astype(np.uint32), t[rows].astype(np.uint32), a_f.astype(np.uint16)


def pitch_shifted(query: Landmarks, semitones: float, params: LandmarkParams) -> Landmarks:
    """``query`` with its pitch shift of ``semitones`` undone, in the peak domain: every peak's
    frequency divided by the shift's ratio and the pairs hashed again.

    A pitch shift that keeps the tempo moves each peak to ``ratio`` times its frequency and
    leaves its time alone, so the corrected peaks pair up as the reference's do. Far cheaper
    than analysing resampled audio again: no spectrogram, no peak picking. Uses the peaks of
    the query's first grid (``extract_query_landmarks`` keeps those)."""
    ratio = 2.0 ** (-semitones / 12.0)
    bins = np.asarray(query.peak_bins, dtype=np.float64) * ratio
    low = max(1, int(np.ceil(params.min_freq_hz / params.bin_hz)))
    keep = (bins >= low) & (bins <= params.max_freq_bin())
    frames = np.asarray(query.peak_times)[keep]
    whole = np.rint(bins[keep]).astype(np.uint16)
    hashes, times, freqs = pair_peaks(frames, whole, params)
    strengths = np.asarray(query.peak_strengths)
    return Landmarks(
        hashes=hashes, times=times, freqs=freqs, frame_seconds=query.frame_seconds,
        bin_hz=query.bin_hz, scheme=query.scheme, peak_times=frames, peak_freqs=whole,
        peak_bins=bins[keep].astype(np.float32),
        peak_strengths=strengths[keep] if len(strengths) == len(keep) else strengths,
    )


def slowed_down(query: Landmarks, speed: float, params: LandmarkParams) -> Landmarks:
    """``query`` with a speed change of ``speed`` (resampling: tempo and pitch together) undone
    in the peak domain: peak times multiplied, frequencies divided, the pairs hashed again.

    Cheaper than analysing resampled audio again, and nearly as good: peaks land on the nearest
    frame instead of being picked on the right grid (on the benchmark's MP3 + noise + speed
    combination 96.3 % against 97.9 %, the plain speed cases unchanged)."""
    times = np.rint(np.asarray(query.peak_times, dtype=np.float64) * speed).astype(np.int64)
    bins = np.asarray(query.peak_bins, dtype=np.float64) / speed
    low = max(1, int(np.ceil(params.min_freq_hz / params.bin_hz)))
    keep = (bins >= low) & (bins <= params.max_freq_bin())
    order = np.lexsort((bins[keep], times[keep]))
    frames, kept = times[keep][order], bins[keep][order]
    whole = np.rint(kept).astype(np.uint16)
    hashes, anchor_times, freqs = pair_peaks(frames, whole, params)
    strengths = np.asarray(query.peak_strengths)
    return Landmarks(
        hashes=hashes, times=anchor_times, freqs=freqs, frame_seconds=query.frame_seconds,
        bin_hz=query.bin_hz, scheme=query.scheme, peak_times=frames.astype(np.uint32),
        peak_freqs=whole, peak_bins=kept.astype(np.float32),
        peak_strengths=(strengths[keep][order] if len(strengths) == len(keep) else strengths),
    )


def resample(audio: Audio, sample_rate: int) -> Audio:
    """``audio`` at ``sample_rate`` (polyphase filtering); unchanged if already at that rate."""
    if audio.sample_rate == sample_rate:
        return audio
    divisor = int(np.gcd(audio.sample_rate, sample_rate))
    samples = signal.resample_poly(
        audio.samples, sample_rate // divisor, audio.sample_rate // divisor
    )
    return Audio(samples=samples.astype(np.float32), sample_rate=sample_rate)


def extract_query_landmarks(
    audio: Audio, *, params: LandmarkParams | None = None, shifts: int = 1
) -> Landmarks:
    """Landmarks of ``audio`` analysed at ``shifts`` sub-hop offsets of the frame grid, merged.

    A query's frames rarely line up with the reference's; a peak near the middle of two
    frames then lands on either, and the pair hashes differ. Analysing the query again with
    the grid moved by fractions of a hop recovers those hashes (as audfprint's ``--shifts``).
    Times of the shifted analyses are kept on the unshifted grid (rounded down).
    """
    params = params or DEFAULT_PARAMS
    audio = resample(audio, params.sample_rate)
    parts = []
    for shift in range(max(1, shifts)):
        start = shift * params.hop // max(1, shifts)
        shifted = Audio(audio.samples[start:], audio.sample_rate)
        parts.append(extract_landmarks(shifted, params=params))
    if len(parts) == 1:
        return parts[0]
    hashes, times, freqs = parts[0].hashes, parts[0].times, parts[0].freqs
    for part in parts[1:]:
        # Keep only pairs that the analyses so far did not already yield at about that time:
        # repeats would count the same musical event twice and inflate chance agreements.
        seen = (hashes.astype(np.int64) << 32) | times.astype(np.int64)
        key = (part.hashes.astype(np.int64) << 32) | part.times.astype(np.int64)
        new = ~(np.isin(key, seen) | np.isin(key - 1, seen) | np.isin(key + 1, seen))
        hashes = np.concatenate([hashes, part.hashes[new]])
        times = np.concatenate([times, part.times[new]])
        freqs = np.concatenate([freqs, part.freqs[new]])
    return Landmarks(
        hashes=hashes,
        times=times,
        freqs=freqs,
        frame_seconds=params.frame_seconds,
        bin_hz=params.bin_hz,
        scheme=params.scheme,
        peak_times=parts[0].peak_times,
        peak_freqs=parts[0].peak_freqs,
        peak_bins=parts[0].peak_bins,
        peak_strengths=parts[0].peak_strengths,
    )


def extract_landmarks(audio: Audio, *, params: LandmarkParams | None = None) -> Landmarks:
    """Compute the landmark fingerprint of ``audio`` (resampled to ``params.sample_rate``);
    by default the sparse fingerprint a catalog recording is indexed by (REFERENCE_PARAMS)."""
    params = params or REFERENCE_PARAMS
    samples = resample(audio, params.sample_rate).samples
    spec_db = spectrogram_db(samples, params)
    peak_frames, peak_bins, strengths = find_peaks(spec_db, params)
    hashes, times, freqs = pair_peaks(peak_frames, peak_bins, params)
    return Landmarks(
        hashes=hashes,
        times=times,
        freqs=freqs,
        frame_seconds=params.frame_seconds,
        bin_hz=params.bin_hz,
        scheme=params.scheme,
        peak_times=peak_frames,
        peak_freqs=peak_bins,
        peak_bins=interpolate_bins(spec_db, peak_frames, peak_bins),
        peak_strengths=strengths,
    )
