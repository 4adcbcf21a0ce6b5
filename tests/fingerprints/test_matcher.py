"""Matching excerpts of the synthetic catalog, and refusing audio that is not in it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fingerprints import (
    SAMPLE_RATE,
    Audio,
    FingerprintIndex,
    Matcher,
    alter,
    decode_file,
    synthesize_track,
    write_wav,
)
from tests.audio_tools import add_noise, change_tempo, cut_excerpt, reencode_mp3, speak
from tests.fingerprints.conftest import Catalog

EXCERPT_SECONDS = 10.0
# (recording id, offset in seconds): offsets fall on and between analysis frames.
EXCERPTS = [(100, 0.0), (104, 7.3), (111, 21.55), (117, 12.01), (123, 30.0), (129, 3.77)]


def excerpt(catalog: Catalog, tmp_path: Path, recording_id: int, start: float) -> Path:
    return cut_excerpt(
        catalog.paths[recording_id], tmp_path / "excerpt.wav", start, EXCERPT_SECONDS
    )


def assert_matches(matcher: Matcher, audio: Audio, recording_id: int, start: float) -> None:
    match = matcher.match(audio)
    assert match is not None, matcher.candidates(audio, 3)
    assert match.recording_id == recording_id
    assert match.confidence >= 0.5
    # ref_start is the reference time aligned with query_start.
    assert abs(match.ref_start - (start + match.query_start)) <= 0.5
    assert 0.0 <= match.query_start < match.query_end <= audio.duration + 0.1


@pytest.mark.parametrize(("recording_id", "start"), EXCERPTS)
def test_clean_excerpt_matches_right_recording_and_offset(
    catalog: Catalog, matcher: Matcher, tmp_path: Path, recording_id: int, start: float
) -> None:
    audio = decode_file(excerpt(catalog, tmp_path, recording_id, start))
    assert_matches(matcher, audio, recording_id, start)


@pytest.mark.parametrize(("recording_id", "start"), EXCERPTS)
def test_mp3_reencoded_excerpt_matches_right_offset(
    catalog: Catalog, matcher: Matcher, tmp_path: Path, recording_id: int, start: float
) -> None:
    mp3 = reencode_mp3(excerpt(catalog, tmp_path, recording_id, start), tmp_path / "q.mp3")
    assert_matches(matcher, decode_file(mp3), recording_id, start)


def test_ref_start_is_accurate_to_a_tenth_of_a_second(
    catalog: Catalog, matcher: Matcher, tmp_path: Path
) -> None:
    audio = decode_file(excerpt(catalog, tmp_path, 111, 21.55))
    match = matcher.match(audio)
    assert match is not None
    assert abs(match.ref_start - match.query_start - 21.55) <= 0.1


def test_unaltered_excerpt_reports_unchanged_speed_and_pitch(
    catalog: Catalog, matcher: Matcher, tmp_path: Path
) -> None:
    match = matcher.match(decode_file(excerpt(catalog, tmp_path, 117, 12.01)))
    assert match is not None
    assert match.speed == pytest.approx(1.0, abs=0.005)
    assert match.pitch_semitones == 0.0


@pytest.mark.parametrize("factor", [0.98, 1.02])
def test_slight_tempo_change_is_matched_and_measured(
    catalog: Catalog, matcher: Matcher, tmp_path: Path, factor: float
) -> None:
    source = excerpt(catalog, tmp_path, 111, 21.55)
    audio = decode_file(change_tempo(source, tmp_path / "tempo.wav", factor))
    match = matcher.match(audio)
    assert match is not None and match.recording_id == 111
    assert match.speed == pytest.approx(factor, abs=0.003)
    assert abs(match.ref_start - (21.55 + match.query_start * factor)) <= 0.1


def test_noisy_mp3_excerpt_still_matches(
    catalog: Catalog, matcher: Matcher, tmp_path: Path
) -> None:
    mp3 = reencode_mp3(excerpt(catalog, tmp_path, 104, 7.3), tmp_path / "q.mp3")
    clean = decode_file(mp3)
    noisy = Audio(add_noise(clean.samples, snr_db=10.0, seed=3), clean.sample_rate)
    assert_matches(matcher, noisy, 104, 7.3)


def test_excerpt_after_unrelated_intro_reports_where_it_starts_in_query(
    catalog: Catalog, matcher: Matcher, tmp_path: Path
) -> None:
    intro = synthesize_track(9100, 6.0, SAMPLE_RATE)
    song = decode_file(excerpt(catalog, tmp_path, 123, 30.0)).samples
    match = matcher.match(Audio(np.concatenate([intro, song]), SAMPLE_RATE))
    assert match is not None and match.recording_id == 123
    # Landmarks anchored up to max_dt (1.46 s) before the song may still pair into it.
    assert 6.0 - 1.5 <= match.query_start <= 6.5
    assert abs(match.ref_start - (30.0 + match.query_start - 6.0)) <= 0.1


def test_synthetic_tracks_not_in_catalog_are_not_matched(
    matcher: Matcher, tmp_path: Path
) -> None:
    for seed in range(9000, 9008):
        path = tmp_path / f"other-{seed}.wav"
        write_wav(path, synthesize_track(seed, 20.0, 22050), 22050)
        audio = decode_file(path)
        assert matcher.match(audio) is None
        assert all(c.confidence < 0.3 for c in matcher.candidates(audio))


def test_speech_is_not_matched(matcher: Matcher, tmp_path: Path) -> None:
    text = (
        "This is a test of the copyright monitor. Nothing said here is music, "
        "and nothing said here may be reported as a match against the catalog."
    )
    audio = decode_file(speak(text, tmp_path / "speech.wav"))
    assert audio.duration > 5.0
    assert matcher.match(audio) is None


def test_white_noise_is_not_matched(matcher: Matcher) -> None:
    noise = np.random.default_rng(11).uniform(-0.5, 0.5, 10 * SAMPLE_RATE).astype(np.float32)
    assert matcher.match(Audio(noise, SAMPLE_RATE)) is None


def test_silence_and_near_silence_give_no_candidates(matcher: Matcher) -> None:
    silence = np.zeros(10 * SAMPLE_RATE, dtype=np.float32)
    hiss = np.random.default_rng(2).normal(0, 1e-4, 10 * SAMPLE_RATE).astype(np.float32)
    for samples in (silence, hiss):
        assert matcher.candidates(Audio(samples, SAMPLE_RATE)) == []
        assert matcher.match(Audio(samples, SAMPLE_RATE)) is None


def test_candidates_are_ranked_and_limited(
    catalog: Catalog, matcher: Matcher, tmp_path: Path
) -> None:
    ranked = matcher.candidates(decode_file(excerpt(catalog, tmp_path, 100, 0.0)), limit=3)
    assert len(ranked) == 3
    assert ranked[0].recording_id == 100
    confidences = [candidate.confidence for candidate in ranked]
    assert confidences == sorted(confidences, reverse=True)
    assert len({candidate.recording_id for candidate in ranked}) == 3
    assert ranked[1].confidence < 0.5


def test_min_confidence_is_the_callers_threshold(
    catalog: Catalog, catalog_index: FingerprintIndex, tmp_path: Path
) -> None:
    audio = decode_file(excerpt(catalog, tmp_path, 104, 7.3))
    assert Matcher(catalog_index, min_confidence=1.01).match(audio) is None
    assert Matcher(catalog_index, min_confidence=0.9).match(audio) is not None


def test_empty_index_matches_nothing(tmp_path: Path) -> None:
    matcher = Matcher(FingerprintIndex.open(tmp_path / "empty"))
    audio = Audio(synthesize_track(1, 5.0, SAMPLE_RATE), SAMPLE_RATE)
    assert matcher.match(audio) is None


# Speed (resampling), pitch (rubberband, tempo kept) and tempo (rubberband, pitch kept)
# changes, as (alteration, amount, expected speed, expected pitch in semitones).
ALTERATIONS = [
    ("speed", 0.92, 0.92, 12 * np.log2(0.92)),
    ("speed", 0.97, 0.97, 12 * np.log2(0.97)),
    ("speed", 1.03, 1.03, 12 * np.log2(1.03)),
    ("speed", 1.08, 1.08, 12 * np.log2(1.08)),
    ("speed", 1.25, 1.25, 12 * np.log2(1.25)),
    ("pitch", -2.0, 1.0, -2.0),
    ("pitch", -1.0, 1.0, -1.0),
    ("pitch", 1.0, 1.0, 1.0),
    ("pitch", 2.0, 1.0, 2.0),
    ("tempo", 0.9, 0.9, 0.0),
    ("tempo", 0.95, 0.95, 0.0),
    ("tempo", 1.05, 1.05, 0.0),
    ("tempo", 1.1, 1.1, 0.0),
]


@pytest.mark.parametrize(("kind", "amount", "speed", "pitch"), ALTERATIONS)
def test_speed_pitch_and_tempo_changes_are_matched_and_measured(
    catalog: Catalog, matcher: Matcher, kind: str, amount: float, speed: float, pitch: float
) -> None:
    start = 12.0
    source = decode_file(catalog.paths[117])
    piece = alter.excerpt(source.samples, SAMPLE_RATE, start, 14.0)
    change = {"speed": alter.change_speed, "pitch": alter.shift_pitch,
              "tempo": alter.change_tempo}[kind]
    query = change(piece, SAMPLE_RATE, amount)[: 10 * SAMPLE_RATE]
    match = matcher.match(Audio(query, SAMPLE_RATE))
    assert match is not None, matcher.candidates(Audio(query, SAMPLE_RATE), 3)
    assert match.recording_id == 117
    assert match.speed == pytest.approx(speed, abs=0.005)
    assert match.pitch_semitones == pytest.approx(pitch, abs=0.1)
    # Reference seconds = ref_start + (t - query_start) * speed: query second 0 is `start`.
    assert abs(match.ref_start - match.query_start * match.speed - start) <= 0.5


def test_altered_unrelated_music_is_not_matched(matcher: Matcher) -> None:
    for seed, change in ((9100, 1.08), (9101, 0.92)):
        other = synthesize_track(seed, 12.0, SAMPLE_RATE)
        for altered in (alter.change_speed(other, SAMPLE_RATE, change),
                        alter.shift_pitch(other, SAMPLE_RATE, 2.0)):
            candidates = matcher.candidates(Audio(altered, SAMPLE_RATE))
            assert all(c.confidence < 0.5 for c in candidates)


def test_pair_landmarks_alone_miss_a_pitch_shift_the_invariant_path_finds(
    catalog: Catalog, catalog_index: FingerprintIndex
) -> None:
    piece = alter.excerpt(decode_file(catalog.paths[104]).samples, SAMPLE_RATE, 7.3, 10.0)
    query = Audio(alter.shift_pitch(piece, SAMPLE_RATE, 2.0), SAMPLE_RATE)
    only_pairs = Matcher(catalog_index, invariant=None, pitch_ladder=(), speed_ladder=())
    assert only_pairs.match(query) is None
    match = Matcher(catalog_index, pitch_ladder=()).match(query)
    assert match is not None and match.recording_id == 104


def test_the_dense_retry_finds_an_excerpt_buried_in_noise_the_default_analysis_misses(
    catalog: Catalog, catalog_index: FingerprintIndex
) -> None:
    # White noise 3 dB louder than the music: it takes the place of many of the strongest
    # peaks, and the pairs of the default analysis no longer stand out from chance.
    piece = alter.excerpt(decode_file(catalog.paths[117]).samples, SAMPLE_RATE, 12.0, 10.0)
    query = Audio(alter.add_noise(piece, -3.0, np.random.default_rng(0)), SAMPLE_RATE)
    pairs = {"invariant": None, "pitch_ladder": (), "speed_ladder": ()}
    assert Matcher(catalog_index, dense_params=None, **pairs).match(query) is None
    match = Matcher(catalog_index, **pairs).match(query)
    assert match is not None and match.recording_id == 117
    assert abs(match.ref_start - match.query_start - 12.0) <= 0.5


def test_the_reference_peaks_corroborate_a_noisy_excerpt_the_dense_pairs_leave_short(
    catalog: Catalog, catalog_index: FingerprintIndex
) -> None:
    # 5 dB more noise than music: the dense retry's pairs find the right place, but short of
    # the margin; the excerpt's single peaks lie on the reference's there far above chance.
    piece = alter.excerpt(decode_file(catalog.paths[117]).samples, SAMPLE_RATE, 12.0, 10.0)
    query = Audio(alter.add_noise(piece, -5.0, np.random.default_rng(0)), SAMPLE_RATE)
    pairs = {"invariant": None, "pitch_ladder": (), "speed_ladder": ()}
    assert Matcher(catalog_index, corroboration=None, **pairs).match(query) is None
    match = Matcher(catalog_index, **pairs).match(query)
    assert match is not None and match.recording_id == 117
    assert abs(match.ref_start - match.query_start - 12.0) <= 0.5


@pytest.mark.parametrize("snr_db", [5.0, 0.0, -5.0])
def test_noisy_unrelated_music_is_not_matched(matcher: Matcher, snr_db: float) -> None:
    for seed in (9400, 9401, 9402):
        other = synthesize_track(seed, 10.0, SAMPLE_RATE)
        noisy = alter.add_noise(other, snr_db, np.random.default_rng(seed))
        candidates = matcher.candidates(Audio(noisy, SAMPLE_RATE))
        assert all(c.confidence < 0.5 for c in candidates)


@pytest.mark.parametrize("semitones", [-2.0, -1.0, 1.0, 2.0])
def test_pitch_ladder_alone_finds_pitch_shifted_copies_and_reports_the_shift(
    catalog: Catalog, catalog_index: FingerprintIndex, semitones: float
) -> None:
    piece = alter.excerpt(decode_file(catalog.paths[111]).samples, SAMPLE_RATE, 15.0, 10.0)
    query = Audio(alter.shift_pitch(piece, SAMPLE_RATE, semitones), SAMPLE_RATE)
    ladder = Matcher(catalog_index, invariant=None, speed_ladder=())
    assert Matcher(catalog_index, invariant=None, pitch_ladder=(), speed_ladder=()
                   ).match(query) is None
    match = ladder.match(query)
    assert match is not None and match.recording_id == 111
    assert match.pitch_semitones == pytest.approx(semitones, abs=0.1)
    assert match.speed == pytest.approx(1.0, abs=0.005)
    assert abs(match.ref_start - match.query_start - 15.0) <= 0.5


def test_speed_ladder_finds_a_sped_up_noisy_mp3_and_reports_its_speed(
    catalog: Catalog, catalog_index: FingerprintIndex, tmp_path: Path
) -> None:
    # The benchmark's hardest case: MP3 at 64 kbit/s, white noise at 10 dB SNR, 3 % faster.
    piece = alter.excerpt(decode_file(catalog.paths[109]).samples, SAMPLE_RATE, 20.0, 12.0)
    fast = alter.change_speed(piece, SAMPLE_RATE, 1.03)[: 10 * SAMPLE_RATE]
    write_wav(tmp_path / "fast.wav", fast, SAMPLE_RATE)
    mp3 = decode_file(reencode_mp3(tmp_path / "fast.wav", tmp_path / "fast.mp3"))
    query = Audio(add_noise(mp3.samples, snr_db=10.0, seed=5), mp3.sample_rate)
    assert Matcher(catalog_index, speed_ladder=()).match(query) is None
    match = Matcher(catalog_index, invariant=None, pitch_ladder=()).match(query)
    assert match is not None and match.recording_id == 109
    assert match.speed == pytest.approx(1.03, abs=0.005)
    assert match.pitch_semitones == pytest.approx(12 * np.log2(1.03), abs=0.1)
    assert abs(match.ref_start - match.query_start * match.speed - 20.0) <= 0.5


def test_long_queries_undo_speed_on_their_peaks_and_still_find_the_copy(
    catalog: Catalog, catalog_index: FingerprintIndex
) -> None:
    # A whole uploaded file: 100 s of other music with 12 s of a catalog track, 6 % faster.
    piece = alter.excerpt(decode_file(catalog.paths[113]).samples, SAMPLE_RATE, 10.0, 14.0)
    fast = alter.change_speed(piece, SAMPLE_RATE, 1.06)[: 12 * SAMPLE_RATE]
    outer = synthesize_track(9300, 100.0, SAMPLE_RATE)
    query = Audio(alter.embed(fast, outer, 40.0, SAMPLE_RATE), SAMPLE_RATE)
    assert query.duration > Matcher(catalog_index).reanalysed_ladder_seconds
    assert Matcher(catalog_index, invariant=None, pitch_ladder=(), speed_ladder=()
                   ).match(query) is None
    match = Matcher(catalog_index, invariant=None, pitch_ladder=()).match(query)
    assert match is not None and match.recording_id == 113
    assert match.speed == pytest.approx(1.06, abs=0.005)
    assert abs(match.query_start - 40.0) <= 1.0
    assert abs(match.ref_start - (match.query_start - 40.0) * match.speed - 10.0) <= 0.5
