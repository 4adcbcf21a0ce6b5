"""The match picture of a dossier: the infringing audio above the recording it copies, aligned.

Three panels share the infringing file's time axis: (a) the log-frequency spectrogram of the
infringing segment, (b) the reference's corresponding segment mapped onto the same axes (its
time scaled by the detected speed, its frequencies moved by the detected pitch shift), and (c)
the frame-by-frame similarity of the two with its median, so that a reader sees the match hold
across the segment. Log frequency because a pitch shift is then a plain vertical shift: the
reference is sampled at the shifted frequencies, and the patterns line up by construction.

A detection maps query seconds ``t`` to reference seconds ``(t - query_start) * speed +
ref_start``; ``pitch_semitones`` is the pirate's pitch shift (``12 * log2(speed)`` for a
resampling speed change, nonzero with speed 1 for a pitch shift with tempo kept).

Drawn with matplotlib's object API (a ``Figure`` on an Agg canvas), never pyplot: pyplot keeps
global figure state and the daemon renders from several threads. Reads no settings; every
tuning value is a field of :class:`SpectrogramStyle`. Takes any value with ``samples`` and
``sample_rate`` (``fingerprints.Audio``), so this package does not import a sibling layer.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import scipy.fft
from matplotlib import colormaps, font_manager
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy.ndimage import uniform_filter1d
from scipy.sparse import csr_array

# Tried in order for the title (a recording's title may be Chinese, Japanese, ...); only the
# installed ones are asked for, so matplotlib neither logs "not found" nor draws boxes.
_TITLE_FONTS = ("DejaVu Sans", "WenQuanYi Micro Hei", "Noto Sans CJK SC", "Noto Sans CJK JP",
                "Droid Sans Fallback")
_DASH = "\N{EN DASH}"
_TIMES = "\N{MULTIPLICATION SIGN}"
_MINUS = "\N{MINUS SIGN}"
_TICKS_HZ = (62.5, 125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0)


class AudioLike(Protocol):
    """Mono float samples at ``sample_rate`` Hz (what ``fingerprints.Audio`` provides)."""

    @property
    def samples(self) -> np.ndarray: ...

    @property
    def sample_rate(self) -> int: ...


@dataclass(frozen=True)
class SpectrogramStyle:
    """How the picture is analysed and drawn; the defaults suit 11025-44100 Hz music."""

    window_seconds: float = 0.093  # analysis window; 2048 samples at 22.05 kHz resolve semitones
    hop_seconds: float = 0.03  # frame step in query seconds (longer when max_frames requires)
    max_frames: int = 1000  # about the panels' width in pixels: more frames show nothing more
    fmin: float = 65.0  # lowest band (C2): below it bass notes are too few FFT bins apart
    fmax: float = 5000.0  # highest band: 11025 Hz decoding (the index's rate) keeps 5.5 kHz
    bins_per_semitone: int = 2  # log-frequency resolution; 2 shows quarter-tone shifts
    dynamic_range_db: float = 70.0  # levels below the segment's peak minus this are black
    colormap: str = "magma"  # perceptually uniform, and it prints legibly in grey
    smoothing_seconds: float = 1.0  # moving mean drawn over the per-frame similarity
    width_inches: float = 10.0
    height_inches: float = 7.5


@dataclass(frozen=True)
class AlignedSegment:
    """The pictured part of a match, clamped to both signals; ``ref_*`` in reference seconds."""

    query_start: float
    query_end: float
    ref_start: float
    ref_end: float

    @property
    def duration(self) -> float:
        """Length in query seconds."""
        return self.query_end - self.query_start


@dataclass(frozen=True)
class AlignedSpectrograms:
    """Both log-frequency spectrograms on the query's time and frequency axes.

    Levels are dB below each spectrogram's own peak over the segment, floored at minus the
    style's dynamic range, shape (bands, frames); ``reference_db`` is NaN in bands the
    reference cannot have (above its Nyquist frequency after the pitch shift is undone).
    """

    segment: AlignedSegment
    times: np.ndarray  # frame centres, seconds of the infringing file
    frequencies: np.ndarray  # band centres in Hz, on the infringing file's frequency axis
    query_db: np.ndarray
    reference_db: np.ndarray


def aligned_segment(
    query_duration: float,
    reference_duration: float,
    *,
    query_start: float,
    query_end: float,
    ref_start: float,
    speed: float = 1.0,
    max_seconds: float = 30.0,
) -> AlignedSegment:
    """The part of ``[query_start, query_end]`` (at most ``max_seconds`` of it, from
    ``query_start``) that lies within the query and whose mapped reference times lie within
    the reference. Raises ValueError when nothing is left or an argument is not usable."""
    for name, value in (("query_start", query_start), ("query_end", query_end),
                        ("ref_start", ref_start), ("speed", speed),
                        ("max_seconds", max_seconds)):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value}")
    if speed <= 0:
        raise ValueError(f"speed must be positive, got {speed}")
    if max_seconds <= 0:
        raise ValueError(f"max_seconds must be positive, got {max_seconds}")
    # Query times whose reference times (t - query_start) * speed + ref_start lie in the file.
    start = max(query_start, 0.0, query_start - ref_start / speed)
    end = min(query_end, query_start + max_seconds, query_duration,
              query_start + (reference_duration - ref_start) / speed)
    if end <= start:
        raise ValueError(
            f"the match segment is empty: query {query_start:.2f}-{query_end:.2f} s of a "
            f"{query_duration:.2f} s file, mapped to the reference from {ref_start:.2f} s at "
            f"speed {speed:g}, has no part within both the file and the {reference_duration:.2f}"
            " s reference")

    def to_ref(t: float) -> float:
        return (t - query_start) * speed + ref_start

    return AlignedSegment(start, end, max(0.0, to_ref(start)),
                          min(reference_duration, to_ref(end)))


def aligned_spectrograms(
    query: AudioLike,
    reference: AudioLike,
    *,
    query_start: float,
    query_end: float,
    ref_start: float,
    speed: float = 1.0,
    pitch_semitones: float = 0.0,
    max_seconds: float = 30.0,
    style: SpectrogramStyle = SpectrogramStyle(),
) -> AlignedSpectrograms:
    """Log-frequency spectrograms of the query segment and of the reference mapped onto it.

    Each query frame at time ``t`` is paired with a reference frame centred at the mapped
    reference time, with a window ``speed`` times as long (the same music), and band ``f`` of
    the query with frequency ``f / 2 ** (pitch_semitones / 12)`` of the reference."""
    if not math.isfinite(pitch_semitones):
        raise ValueError(f"pitch_semitones must be a finite number, got {pitch_semitones}")
    segment = aligned_segment(
        len(query.samples) / query.sample_rate, len(reference.samples) / reference.sample_rate,
        query_start=query_start, query_end=query_end, ref_start=ref_start, speed=speed,
        max_seconds=max_seconds)
    hop = max(style.hop_seconds, segment.duration / style.max_frames)
    frames = int(segment.duration / hop)
    if frames < 2:
        raise ValueError(f"the match segment is too short to picture: {segment.duration:.3f} s "
                         f"(at least two frames of {hop:.3f} s are needed)")
    times = segment.query_start + hop * (np.arange(frames) + 0.5)
    top = min(style.fmax, 0.475 * query.sample_rate)  # just under Nyquist, above anti-aliasing
    count = math.floor(12 * style.bins_per_semitone * math.log2(top / style.fmin)) + 1
    if count < 2:
        raise ValueError(f"no frequency bands between fmin {style.fmin} Hz and {top:.0f} Hz")
    frequencies = style.fmin * 2.0 ** (np.arange(count) / (12.0 * style.bins_per_semitone))
    ratio = 2.0 ** (pitch_semitones / 12.0)
    query_power = _band_power(query, times, style.window_seconds, frequencies, style)
    ref_times = (times - query_start) * speed + ref_start
    ref_power = _band_power(reference, ref_times, style.window_seconds * speed,
                            frequencies / ratio, style)
    return AlignedSpectrograms(segment, times, frequencies,
                               _to_db(query_power, style.dynamic_range_db),
                               _to_db(ref_power, style.dynamic_range_db))


def frame_similarity(query_db: np.ndarray, reference_db: np.ndarray) -> np.ndarray:
    """Per-frame cosine similarity, in [-1, 1], of two aligned log-spectrograms.

    Each band's mean over the segment is removed first, so the long-term spectral balance that
    all music shares (and a constant noise floor or equaliser setting) does not count as
    likeness; what is compared is which notes and beats come and go. Bands NaN in either are
    left out; a frame with no variation in either gives 0."""
    valid = ~(np.isnan(query_db).any(axis=1) | np.isnan(reference_db).any(axis=1))
    a = query_db[valid] - query_db[valid].mean(axis=1, keepdims=True)
    b = reference_db[valid] - reference_db[valid].mean(axis=1, keepdims=True)
    norms = np.linalg.norm(a, axis=0) * np.linalg.norm(b, axis=0)
    dots = np.einsum("ij,ij->j", a, b)
    result: np.ndarray = np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)
    return result


def aligned_similarity(
    query: AudioLike,
    reference: AudioLike,
    *,
    query_start: float,
    query_end: float,
    ref_start: float,
    speed: float = 1.0,
    pitch_semitones: float = 0.0,
    max_seconds: float = 30.0,
    style: SpectrogramStyle = SpectrogramStyle(),
) -> np.ndarray:
    """The picture's similarity curve: :func:`frame_similarity` of :func:`aligned_spectrograms`.

    High (about 0.5 and more) along a true match; near 0 for a wrong alignment or other music.
    """
    spectra = aligned_spectrograms(
        query, reference, query_start=query_start, query_end=query_end, ref_start=ref_start,
        speed=speed, pitch_semitones=pitch_semitones, max_seconds=max_seconds, style=style)
    return frame_similarity(spectra.query_db, spectra.reference_db)


def render_match_picture(
    query: AudioLike,
    reference: AudioLike,
    *,
    query_start: float,
    query_end: float,
    ref_start: float,
    speed: float = 1.0,
    pitch_semitones: float = 0.0,
    title: str = "",
    max_seconds: float = 30.0,
    dpi: int = 110,
    style: SpectrogramStyle = SpectrogramStyle(),
) -> bytes:
    """The match picture as PNG bytes (see the module docstring for its three panels).

    Ranges outside either signal are clamped; ValueError when nothing of the segment is left.
    Deterministic: the same arguments give the same bytes."""
    if dpi <= 0:
        raise ValueError(f"dpi must be positive, got {dpi}")
    spectra = aligned_spectrograms(
        query, reference, query_start=query_start, query_end=query_end, ref_start=ref_start,
        speed=speed, pitch_semitones=pitch_semitones, max_seconds=max_seconds, style=style)
    similarity = frame_similarity(spectra.query_db, spectra.reference_db)
    segment = spectra.segment

    figure = Figure(figsize=(style.width_inches, style.height_inches), dpi=dpi)
    FigureCanvasAgg(figure)  # attaches itself: a canvas of our own, not pyplot's
    # Fixed margins rather than constrained layout: all labels but the title are ours and of
    # bounded length, and laying out costs as much as drawing.
    query_axes, ref_axes, sim_axes = figure.subplots(
        3, 1, sharex=True, gridspec_kw={"height_ratios": [3, 3, 2], "left": 0.09,
                                         "right": 0.98, "bottom": 0.08,
                                         "top": 0.91 if title else 0.95, "hspace": 0.22})
    if title:
        figure.suptitle(title, fontfamily=_installed_fonts(_TITLE_FONTS))
    _draw_spectrogram(query_axes, spectra, spectra.query_db, style)
    query_axes.set_title(
        f"(a) infringing file {segment.query_start:.1f}{_DASH}{segment.query_end:.1f} s",
        loc="left", fontsize=9)
    _draw_spectrogram(ref_axes, spectra, spectra.reference_db, style)
    ref_axes.set_title(f"(b) {reference_caption(segment, speed, pitch_semitones)}",
                       loc="left", fontsize=9)
    _draw_similarity(sim_axes, spectra.times, similarity, style)
    sim_axes.set_xlabel("time in the infringing file (s)")
    buffer = io.BytesIO()
    # zlib level 3 instead of 6: half the encoding time of a noisy picture, 5 % more bytes.
    figure.savefig(buffer, format="png", dpi=dpi, pil_kwargs={"compress_level": 3})
    return buffer.getvalue()


def reference_caption(segment: AlignedSegment, speed: float, pitch_semitones: float) -> str:
    """Panel (b)'s caption: which part of the reference is shown and what was applied to it,
    e.g. "reference 61.0-73.6 s, shown at speed x1.05, +0.84 semitones" (with an en dash, a
    times sign and a minus sign where due), for the dossier's text as well."""
    changes = []
    if abs(speed - 1.0) > 1e-6:
        changes.append(f"speed {_TIMES}{f'{speed:.3f}'.rstrip('0').rstrip('.')}")
    if abs(pitch_semitones) >= 0.005:
        # A true minus sign, as matplotlib draws on the tick labels.
        changes.append(f"{pitch_semitones:+.2f} semitones".replace("-", _MINUS))
    applied = f"shown at {', '.join(changes)}" if changes else "as recorded"
    return f"reference {segment.ref_start:.1f}{_DASH}{segment.ref_end:.1f} s, {applied}"


def _band_power(
    audio: AudioLike,
    centres: np.ndarray,
    window_seconds: float,
    frequencies: np.ndarray,
    style: SpectrogramStyle,
) -> np.ndarray:
    """Mean power in log-spaced bands around ``frequencies`` (Hz of ``audio``) of the Hann
    windowed frames centred at ``centres`` (seconds); NaN rows for bands above Nyquist."""
    rate = audio.sample_rate
    length = max(16, round(window_seconds * rate))
    n_fft = scipy.fft.next_fast_len(length, real=True)
    samples = np.asarray(audio.samples, dtype=np.float32)
    padded = np.pad(samples, (length, length))
    begins = np.round(centres * rate).astype(np.int64) - length // 2 + length
    begins = np.clip(begins, 0, len(padded) - length)
    frames = padded[begins[:, None] + np.arange(length)] * np.hanning(length).astype(np.float32)
    spectrum = scipy.fft.rfft(frames, n=n_fft, axis=1)  # float32 in, complex64 out: fast
    power = (np.square(spectrum.real) + np.square(spectrum.imag)).T  # (bins, frames)
    bins = np.arange(n_fft // 2 + 1) * (rate / n_fft)
    # Triangles one band-step wide on either side, never narrower than an FFT bin, so that
    # every band gets energy at low frequencies and no peak falls between bands at high ones.
    step = 2.0 ** (1.0 / (12.0 * style.bins_per_semitone)) - 1.0
    half = np.maximum(frequencies * step, rate / n_fft)
    weights = np.maximum(0.0, 1.0 - np.abs(bins[None, :] - frequencies[:, None]) / half[:, None])
    weights /= np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)
    bands: np.ndarray = np.asarray(csr_array(weights.astype(np.float32)) @ power, dtype=np.float64)
    bands[frequencies > 0.475 * rate] = np.nan
    return bands


def _to_db(power: np.ndarray, dynamic_range_db: float) -> np.ndarray:
    """dB below the segment's peak, floored at ``-dynamic_range_db`` (NaN rows kept)."""
    with np.errstate(divide="ignore"):
        levels = 10.0 * np.log10(np.maximum(power, 1e-20))
    peak = float(np.nanmax(levels)) if np.isfinite(levels).any() else 0.0
    result: np.ndarray = np.maximum(levels - peak, -dynamic_range_db)
    return result


def _draw_spectrogram(axes: Axes, spectra: AlignedSpectrograms, levels: np.ndarray,
                      style: SpectrogramStyle) -> None:
    # Rows on a log2(Hz) axis: a pitch shift moves patterns vertically by a constant amount.
    hop = float(spectra.times[1] - spectra.times[0])
    half_band = 0.5 / (12.0 * style.bins_per_semitone)
    octaves = np.log2(spectra.frequencies)
    colormap = colormaps[style.colormap].with_extremes(bad="0.85")
    axes.imshow(np.ma.masked_invalid(levels), origin="lower", aspect="auto", cmap=colormap,
                vmin=-style.dynamic_range_db, vmax=0.0, interpolation="nearest",
                extent=(float(spectra.times[0]) - hop / 2, float(spectra.times[-1]) + hop / 2,
                        float(octaves[0]) - half_band, float(octaves[-1]) + half_band))
    ticks = [hz for hz in _TICKS_HZ if spectra.frequencies[0] <= hz <= spectra.frequencies[-1]]
    axes.set_yticks([math.log2(hz) for hz in ticks],
                    labels=[f"{hz / 1000:g}k" if hz >= 1000 else f"{hz:g}" for hz in ticks])
    axes.set_ylabel("frequency (Hz)")


def _draw_similarity(axes: Axes, times: np.ndarray, similarity: np.ndarray,
                     style: SpectrogramStyle) -> None:
    hop = float(times[1] - times[0])
    width = max(1, round(style.smoothing_seconds / hop))
    smoothed = uniform_filter1d(similarity, size=width, mode="nearest")
    median = float(np.median(similarity))
    axes.plot(times, similarity, color="0.6", linewidth=0.6, label="per frame")
    axes.plot(times, smoothed, color="tab:blue", linewidth=1.6,
              label=f"{style.smoothing_seconds:g} s mean")
    axes.axhline(median, color="tab:red", linestyle="--", linewidth=1.0,
                 label=f"median {median:.2f}")
    axes.axhline(0.0, color="0.3", linewidth=0.5)
    axes.set_ylim(min(-0.2, float(similarity.min()) - 0.05), 1.0)
    axes.set_ylabel("similarity")
    axes.set_title("(c) cosine similarity of the aligned log-spectra (each band's mean removed)",
                   loc="left", fontsize=9)
    axes.legend(loc="lower right", fontsize=8, ncols=3)


def _installed_fonts(families: tuple[str, ...]) -> list[str]:
    """The given font families that matplotlib can find, in order (always at least one)."""
    installed = {entry.name for entry in font_manager.fontManager.ttflist}
    return [family for family in families if family in installed] or ["sans-serif"]
