"""The dossier's match picture, on synthetic music altered the way pirates alter it."""

from __future__ import annotations

import io
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pytest
from matplotlib.image import imread
from scipy.signal import resample_poly

from fingerprints import Audio, alter, synthesize_track
from litigation.match_picture import (
    AlignedSegment,
    SpectrogramStyle,
    aligned_segment,
    aligned_similarity,
    aligned_spectrograms,
    frame_similarity,
    reference_caption,
    render_match_picture,
)

RATE = 22050
SPEED = 1.06  # 53 / 50, so that resample_poly does it exactly
PITCH = 12 * math.log2(SPEED)  # a resampling speed change moves the pitch too
LEAD_IN = 2.0  # seconds of other music before the copied part of the infringing file
REF_START = 15.0


@dataclass(frozen=True)
class SpedUpCopy:
    """An infringing file: other music, then 30 s of the reference played 6 % fast, noisy."""

    reference: Audio
    query: Audio
    query_start: float
    query_end: float

    def detection(self, **changes: float) -> dict[str, float]:
        found = {"query_start": self.query_start, "query_end": self.query_end,
                 "ref_start": REF_START, "speed": SPEED, "pitch_semitones": PITCH}
        return {**found, **changes}


@pytest.fixture(scope="module")
def copy() -> SpedUpCopy:
    reference = synthesize_track(4242, 50.0, RATE)
    copied = reference[int(REF_START * RATE): int((REF_START + 30.0) * RATE)]
    faster = resample_poly(copied, 50, 53).astype(np.float32)
    noisy = alter.add_noise(faster, 10.0, np.random.default_rng(1))
    lead_in = synthesize_track(99, LEAD_IN, RATE)[: int(LEAD_IN * RATE)]
    query = np.concatenate([lead_in, noisy, synthesize_track(98, 3.0, RATE)])
    return SpedUpCopy(Audio(reference, RATE), Audio(query, RATE), LEAD_IN,
                      LEAD_IN + len(noisy) / RATE)


def median_similarity(query: Audio, reference: Audio, **detection: float) -> float:
    return float(np.median(aligned_similarity(query, reference, **detection)))


def test_picture_is_a_png_of_the_figure_size(copy: SpedUpCopy) -> None:
    png = render_match_picture(copy.query, copy.reference, title="Track 4242",
                               dpi=80, **copy.detection())

    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    pixels = imread(io.BytesIO(png), format="png")
    style = SpectrogramStyle()
    assert pixels.shape[:2] == (round(style.height_inches * 80), round(style.width_inches * 80))
    assert pixels[..., :3].std() > 0.1  # drawn, not a blank canvas


def test_picture_is_deterministic(copy: SpedUpCopy) -> None:
    first = render_match_picture(copy.query, copy.reference, dpi=60, **copy.detection())
    assert render_match_picture(copy.query, copy.reference, dpi=60, **copy.detection()) == first


def test_similarity_holds_across_the_detected_alignment(copy: SpedUpCopy) -> None:
    similarity = aligned_similarity(copy.query, copy.reference, **copy.detection())

    assert np.median(similarity) > 0.6
    # The match holds all along the segment, not on average only: every 3 s stretch is high.
    stretches = np.array_split(similarity, 10)
    assert min(float(np.median(part)) for part in stretches) > 0.5


@pytest.mark.parametrize("wrong", [
    {"ref_start": REF_START + 4.0},  # another place in the same recording
    {"ref_start": REF_START - 0.5},  # half a second off
    {"speed": 1.0, "pitch_semitones": 0.0},  # the speed change not undone: drifts apart
])
def test_similarity_is_low_for_a_wrong_alignment(copy: SpedUpCopy,
                                                 wrong: dict[str, float]) -> None:
    right = median_similarity(copy.query, copy.reference, **copy.detection())
    misaligned = median_similarity(copy.query, copy.reference, **copy.detection(**wrong))

    assert misaligned < 0.3
    assert right - misaligned > 0.4


def test_pitch_correction_is_needed_for_the_patterns_to_line_up(copy: SpedUpCopy) -> None:
    right = median_similarity(copy.query, copy.reference, **copy.detection())
    unshifted = median_similarity(copy.query, copy.reference, **copy.detection(pitch_semitones=0))

    assert right - unshifted > 0.15


def test_similarity_with_other_music_is_near_zero(copy: SpedUpCopy) -> None:
    other = Audio(synthesize_track(4343, 50.0, RATE), RATE)
    assert abs(median_similarity(copy.query, other, **copy.detection())) < 0.2


def test_pitch_shift_with_tempo_kept_lines_up() -> None:
    reference = synthesize_track(77, 20.0, RATE)
    shifted = alter.shift_pitch(reference, RATE, 2.0)  # rubberband, as uploads do it
    query, ref = Audio(shifted, RATE), Audio(reference, RATE)
    detection = {"query_start": 1.0, "query_end": 19.0, "ref_start": 1.0, "speed": 1.0}

    right = median_similarity(query, ref, **detection, pitch_semitones=2.0)
    unshifted = median_similarity(query, ref, **detection, pitch_semitones=0.0)
    assert right > 0.6
    assert right - unshifted > 0.3


def test_query_and_reference_may_have_different_sample_rates(copy: SpedUpCopy) -> None:
    # Queries are decoded at 11025 Hz (fingerprints.SAMPLE_RATE); references keep their rate.
    decoded = Audio(resample_poly(copy.query.samples, 1, 2).astype(np.float32), RATE // 2)

    spectra = aligned_spectrograms(decoded, copy.reference, **copy.detection())
    assert spectra.frequencies[-1] <= RATE // 4
    assert median_similarity(decoded, copy.reference, **copy.detection()) > 0.6


def test_reference_bands_above_its_nyquist_frequency_are_left_out(copy: SpedUpCopy) -> None:
    # A query at 22050 Hz, a reference at 11025 Hz and a downward shift: the reference has
    # nothing at the top bands of the query's axis. They are NaN, and similarity skips them.
    low = Audio(resample_poly(copy.reference.samples, 1, 2).astype(np.float32), RATE // 2)
    spectra = aligned_spectrograms(copy.query, low, **copy.detection(pitch_semitones=-3.0))

    missing = np.isnan(spectra.reference_db).all(axis=1)
    assert missing.any()
    assert (spectra.frequencies[missing] / 2 ** (-3 / 12) > 0.45 * low.sample_rate).all()
    assert np.isfinite(frame_similarity(spectra.query_db, spectra.reference_db)).all()


def test_segment_longer_than_max_seconds_is_cut_from_its_start(copy: SpedUpCopy) -> None:
    spectra = aligned_spectrograms(copy.query, copy.reference, max_seconds=5.0,
                                   **copy.detection())

    assert spectra.segment.query_start == LEAD_IN
    assert spectra.segment.query_end == pytest.approx(LEAD_IN + 5.0)
    assert spectra.segment.ref_end == pytest.approx(REF_START + 5.0 * SPEED)
    assert LEAD_IN < spectra.times[0] < spectra.times[-1] < LEAD_IN + 5.0


def test_ranges_outside_either_signal_are_clamped() -> None:
    # Query 2-50 s of a 10 s file, mapped at speed 2 from reference second -1: the reference
    # starts at query second 2.5 and the query file ends at 10 s (reference second 15).
    segment = aligned_segment(10.0, 20.0, query_start=2.0, query_end=50.0, ref_start=-1.0,
                              speed=2.0, max_seconds=100.0)
    assert segment == AlignedSegment(query_start=2.5, query_end=10.0, ref_start=0.0,
                                     ref_end=15.0)
    # The reference running out first: 5 s of reference left at speed 2 is 2.5 s of query.
    segment = aligned_segment(60.0, 20.0, query_start=0.0, query_end=60.0, ref_start=15.0,
                              speed=2.0)
    assert (segment.query_start, segment.query_end, segment.ref_end) == (0.0, 2.5, 20.0)


def test_picture_of_a_clamped_segment_is_rendered(copy: SpedUpCopy) -> None:
    png = render_match_picture(copy.query, copy.reference, dpi=50,
                               **copy.detection(query_start=-5.0, query_end=1000.0,
                                                ref_start=REF_START - 5.0 * SPEED))
    assert png.startswith(b"\x89PNG")


@pytest.mark.parametrize(("changes", "message"), [
    ({"query_start": 60.0, "query_end": 70.0}, "empty"),  # after the end of the file
    ({"query_end": LEAD_IN}, "empty"),  # zero length
    ({"ref_start": 80.0}, "empty"),  # after the end of the reference
    ({"ref_start": -100.0}, "empty"),  # the reference would start after the query ends
    ({"query_end": LEAD_IN + 0.01}, "too short"),
    ({"speed": 0.0}, "speed must be positive"),
    ({"ref_start": math.nan}, "finite"),
])
def test_unusable_segment_is_refused_with_a_reason(copy: SpedUpCopy, changes: dict[str, float],
                                                   message: str) -> None:
    with pytest.raises(ValueError, match=message):
        render_match_picture(copy.query, copy.reference, **copy.detection(**changes))


def test_chinese_title_is_drawn_without_missing_glyphs(copy: SpedUpCopy) -> None:
    # Warnings are errors: matplotlib's "Glyph ... missing from font(s)" would fail this test.
    png = render_match_picture(copy.query, copy.reference, title="月亮代表我的心 (侵权证据)",
                               dpi=50, **copy.detection(query_end=LEAD_IN + 3.0))
    assert png.startswith(b"\x89PNG")


@pytest.mark.parametrize(("speed", "pitch", "caption"), [
    (1.05, 0.84, "reference 61.0\u201373.6 s, shown at speed \u00d71.05, +0.84 semitones"),
    (1.0, -2.0, "reference 61.0\u201373.6 s, shown at \u22122.00 semitones"),
    (0.975, 0.0, "reference 61.0\u201373.6 s, shown at speed \u00d70.975"),
    (1.0, 0.0, "reference 61.0\u201373.6 s, as recorded"),
])
def test_reference_caption_says_what_was_applied(speed: float, pitch: float,
                                                 caption: str) -> None:
    segment = AlignedSegment(query_start=0.0, query_end=12.0, ref_start=61.0, ref_end=73.6)
    assert reference_caption(segment, speed, pitch) == caption


def test_pictures_render_in_parallel_threads(copy: SpedUpCopy) -> None:
    # The daemon renders dossiers from several threads: no shared figure state, same bytes.
    detections = [copy.detection(query_end=LEAD_IN + seconds) for seconds in (4.0, 6.0)]

    def render(found: dict[str, float]) -> bytes:
        return render_match_picture(copy.query, copy.reference, dpi=40, **found)

    serial = [render(found) for found in detections]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(render, detections * 2))
    assert parallel == serial * 2
