"""The on-disk landmark index: adding, replacing, removing, saving and reopening."""

from __future__ import annotations

import io
import json
import shutil
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from fingerprints import (
    SAMPLE_RATE,
    Audio,
    FingerprintIndex,
    IndexFormatError,
    LandmarkParams,
    Landmarks,
    Matcher,
    alter,
    decode_file,
    extract_landmarks,
)
from tests.audio_tools import cut_excerpt
from tests.fingerprints.conftest import Catalog


@pytest.fixture
def index_copy(catalog: Catalog, tmp_path: Path) -> Path:
    """A private copy of the saved catalog index, free to modify."""
    return Path(shutil.copytree(catalog.index_directory, tmp_path / "index"))


@pytest.fixture
def query(catalog: Catalog, tmp_path: Path) -> Audio:
    """Ten seconds of recording 107 from 12.5 s."""
    return decode_file(cut_excerpt(catalog.paths[107], tmp_path / "q.wav", 12.5, 10.0))


def test_open_creates_an_empty_index(tmp_path: Path) -> None:
    index = FingerprintIndex.open(tmp_path / "new")
    assert len(index) == 0
    assert index.recording_ids() == []
    index.save()
    assert len(FingerprintIndex.open(tmp_path / "new")) == 0


def test_index_survives_save_and_reopen(catalog: Catalog, catalog_index: FingerprintIndex,
                                        query: Audio) -> None:
    assert len(catalog_index) == len(catalog.paths)
    assert catalog_index.recording_ids() == sorted(catalog.paths)
    assert 107 in catalog_index and 99 not in catalog_index
    assert catalog_index.memory_mapped
    match = Matcher(catalog_index).match(query)
    assert match is not None and match.recording_id == 107


def test_removed_recording_is_no_longer_matched(index_copy: Path, query: Audio) -> None:
    index = FingerprintIndex.open(index_copy)
    assert index.remove(107) is True
    assert index.remove(107) is False
    assert 107 not in index
    assert Matcher(index).match(query) is None
    assert all(c.recording_id != 107 for c in Matcher(index).candidates(query, limit=30))
    index.save()
    reopened = FingerprintIndex.open(index_copy)
    assert 107 not in reopened and len(reopened) == 29
    assert Matcher(reopened).match(query) is None


def test_added_recording_is_matched_before_and_after_save(
    catalog: Catalog, index_copy: Path, query: Audio
) -> None:
    index = FingerprintIndex.open(index_copy)
    index.remove(107)
    landmarks = extract_landmarks(decode_file(catalog.paths[107]))
    index.add(555, landmarks, catalog.durations[107])
    match = Matcher(index).match(query)
    assert match is not None and match.recording_id == 555
    index.save()
    match = Matcher(FingerprintIndex.open(index_copy)).match(query)
    assert match is not None and match.recording_id == 555


def test_adding_an_existing_id_replaces_it(catalog: Catalog, tmp_path: Path,
                                           query: Audio) -> None:
    index = FingerprintIndex.open(tmp_path / "index")
    index.add(1, extract_landmarks(decode_file(catalog.paths[107])), catalog.durations[107])
    before = index.stats().hashes
    index.add(1, extract_landmarks(decode_file(catalog.paths[108])), catalog.durations[108])
    assert len(index) == 1
    assert index.stats().hashes != before
    assert Matcher(index).match(query) is None


def test_stats_count_recordings_hashes_and_bytes(catalog_index: FingerprintIndex) -> None:
    stats = catalog_index.stats()
    assert stats.recordings == 30
    assert stats.hashes > 30 * 40 * 25  # 30 recordings of >= 40 s, >= 25 hashes per second
    assert stats.bytes_on_disk >= stats.hashes * 4


def test_save_leaves_no_temporary_files_and_two_generations_at_most(index_copy: Path) -> None:
    index = FingerprintIndex.open(index_copy)
    for recording_id in (100, 101, 102):
        index.remove(recording_id)
        index.save()
    names = sorted(path.name for path in index_copy.iterdir())
    assert not [name for name in names if name.endswith(".tmp")]
    assert len([name for name in names if name.startswith("keys-")]) <= 2


def test_damaged_manifest_raises_index_format_error(index_copy: Path) -> None:
    (index_copy / "manifest.json").write_text("{not json")
    with pytest.raises(IndexFormatError):
        FingerprintIndex.open(index_copy)


def test_missing_array_file_raises_index_format_error(index_copy: Path) -> None:
    for path in index_copy.glob("peak_times-*.npy"):
        path.unlink()
    with pytest.raises(IndexFormatError):
        FingerprintIndex.open(index_copy)


def test_landmarks_of_another_scheme_are_refused(catalog: Catalog, index_copy: Path) -> None:
    index = FingerprintIndex.open(index_copy)
    other = extract_landmarks(decode_file(catalog.paths[100]), params=LandmarkParams(hop=128))
    with pytest.raises(ValueError, match="scheme"):
        index.add(999, other, catalog.durations[100])


def test_index_of_an_older_format_raises_index_format_error(index_copy: Path) -> None:
    manifest = json.loads((index_copy / "manifest.json").read_text())
    manifest["format"] = "copyguard-landmark-index-1"
    (index_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexFormatError):
        FingerprintIndex.open(index_copy)


def test_index_of_other_quad_parameters_raises_index_format_error(index_copy: Path) -> None:
    manifest = json.loads((index_copy / "manifest.json").read_text())
    manifest["quad_scheme"] = "tri-v0"
    (index_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexFormatError):
        FingerprintIndex.open(index_copy)


def test_peaks_of_removed_recordings_are_compacted_away(
    catalog: Catalog, index_copy: Path
) -> None:
    index = FingerprintIndex.open(index_copy)
    slot_of_101 = 1  # recordings were added in id order
    times_before, _ = index.peaks(slot_of_101)
    index.remove(100)
    index.save()
    times_after, bins_after = FingerprintIndex.open(index_copy).peaks(0)
    assert np.array_equal(times_after, times_before)
    assert len(bins_after) == len(times_after)


def test_index_rebuilt_from_stored_landmarks_finds_pitch_shifted_copies(
    catalog: Catalog, tmp_path: Path
) -> None:
    # The lead's database keeps Landmarks as np.savez of the dataclass fields.
    buffer = io.BytesIO()
    landmarks = extract_landmarks(decode_file(catalog.paths[107]))
    np.savez(buffer, **{f.name: getattr(landmarks, f.name) for f in fields(Landmarks)})
    buffer.seek(0)
    with np.load(buffer) as arrays:
        stored = Landmarks(**{f.name: (arrays[f.name].item() if arrays[f.name].ndim == 0
                                       else arrays[f.name]) for f in fields(Landmarks)})
    index = FingerprintIndex.open(tmp_path / "rebuilt")
    index.add(7, stored, catalog.durations[107])
    index.save()
    piece = alter.excerpt(decode_file(catalog.paths[107]).samples, SAMPLE_RATE, 12.5, 10.0)
    query = Audio(alter.shift_pitch(piece, SAMPLE_RATE, -1.0), SAMPLE_RATE)
    match = Matcher(FingerprintIndex.open(tmp_path / "rebuilt")).match(query)
    assert match is not None and match.recording_id == 7
    assert match.pitch_semitones == pytest.approx(-1.0, abs=0.1)
