"""The PostgreSQL index: the same hits as the local index, the same matches, shared by workers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, create_engine, text

from fingerprints import (
    SAMPLE_RATE,
    Audio,
    FingerprintIndex,
    IndexFormatError,
    Landmarks,
    Matcher,
    SqlFingerprintIndex,
    alter,
    decode_file,
    extract_landmarks,
    extract_query_landmarks,
)
from fingerprints.index import Hits, QuadHits
from fingerprints.triplets import DEFAULT_TRIPLET_PARAMS, make_triplets, query_probes
from ledger.db import migrate
from tests.fingerprints.conftest import Catalog

pytestmark = pytest.mark.postgres

RECORDINGS = (100, 103, 104, 107, 111, 117, 122, 128)
Prints = dict[int, tuple[Landmarks, float]]


@pytest.fixture(scope="module")
def prints(catalog: Catalog) -> Prints:
    """Landmarks and duration of a few catalog recordings."""
    found = {}
    for recording_id in RECORDINGS:
        audio = decode_file(catalog.paths[recording_id])
        found[recording_id] = (extract_landmarks(audio), audio.duration)
    return found


@pytest.fixture
def engine(postgres_url: str) -> Iterator[Engine]:
    made = create_engine(postgres_url)
    migrate(made)
    yield made
    made.dispose()


@pytest.fixture
def loaded(engine: Engine, prints: Prints, tmp_path: Path
           ) -> tuple[SqlFingerprintIndex, FingerprintIndex]:
    """The same recordings in a database index and in a saved local one."""
    database, local = SqlFingerprintIndex(engine), FingerprintIndex.open(tmp_path / "index")
    for recording_id, (landmarks, duration) in prints.items():
        database.add(recording_id, landmarks, duration)
        local.add(recording_id, landmarks, duration)
    local.save()
    return database, local


def _rows(index: SqlFingerprintIndex | FingerprintIndex, hits: Hits | QuadHits) -> np.ndarray:
    """Hits as sorted rows, slots turned into recording ids (slots differ between indexes)."""
    if isinstance(hits, Hits):
        columns = [hits.query_rows, hits.ref_times, hits.ref_freqs]
    else:
        columns = [hits.probe_rows, hits.ref_times, hits.ref_bins, hits.ref_spans]
    recordings = index.slot_recording_id(hits.slots) if len(hits.slots) else hits.slots
    table = np.stack([np.asarray(c, dtype=np.float64) for c in [recordings, *columns]], axis=1)
    return table[np.lexsort(table.T[::-1])]


def _found(matcher: Matcher, audio: Audio) -> int | None:
    match = matcher.match(audio)
    return None if match is None else match.recording_id


def _excerpt(catalog: Catalog, recording_id: int, start: float) -> np.ndarray:
    return alter.excerpt(decode_file(catalog.paths[recording_id]).samples, SAMPLE_RATE, start,
                         12.0)


@pytest.mark.parametrize("max_postings", [None, 1, 2])
def test_lookups_give_the_same_hits_as_the_local_index(
    loaded: tuple[SqlFingerprintIndex, FingerprintIndex], catalog: Catalog,
    max_postings: int | None
) -> None:
    database, local = loaded
    query = extract_query_landmarks(Audio(_excerpt(catalog, 107, 9.0), SAMPLE_RATE))
    pairs = database.lookup(query.hashes, max_postings=max_postings)
    assert len(pairs.query_rows) > 100
    assert np.array_equal(_rows(database, pairs),
                          _rows(local, local.lookup(query.hashes, max_postings=max_postings)))
    params = DEFAULT_TRIPLET_PARAMS
    groups = make_triplets(np.asarray(query.peak_times, dtype=np.int64),
                           np.asarray(query.peak_bins, dtype=np.float64), params,
                           params.query_fanout)
    probes, _ = query_probes(groups, params)
    quads = database.lookup_quads(probes, max_postings=max_postings)
    assert len(quads.probe_rows) > 100
    assert np.array_equal(_rows(database, quads),
                          _rows(local, local.lookup_quads(probes, max_postings=max_postings)))


def test_peaks_durations_and_membership_agree(
    loaded: tuple[SqlFingerprintIndex, FingerprintIndex], prints: Prints
) -> None:
    database, local = loaded
    assert len(database) == len(RECORDINGS) and database.recording_ids() == sorted(RECORDINGS)
    assert 104 in database and 105 not in database and "104" not in database
    assert (database.scheme, database.frame_seconds, database.bin_hz) == (
        local.scheme, local.frame_seconds, local.bin_hz)
    hits = database.lookup(prints[104][0].hashes)
    slot = int(hits.slots[database.slot_recording_id(hits.slots) == 104][0])
    local_slot = local.recording_ids().index(104)
    for mine, theirs in zip(database.peaks(slot), local.peaks(local_slot), strict=True):
        assert mine.dtype == theirs.dtype and np.array_equal(mine, theirs)
    assert database.slot_duration(slot) == database.duration(104) == local.duration(104)
    assert database.stats().recordings == len(RECORDINGS)
    assert database.stats().hashes == local.stats().hashes
    assert database.stats().bytes_on_disk > 0


def test_matcher_on_the_database_finds_what_it_finds_locally(
    loaded: tuple[SqlFingerprintIndex, FingerprintIndex], catalog: Catalog
) -> None:
    database, local = loaded
    clean = _excerpt(catalog, 111, 20.0)[: 10 * SAMPLE_RATE]
    shifted = alter.shift_pitch(_excerpt(catalog, 104, 7.3), SAMPLE_RATE, 2.0)[: 10 * SAMPLE_RATE]
    for samples, expected in ((clean, 111), (shifted, 104)):
        audio = Audio(samples, SAMPLE_RATE)
        found = Matcher(database).match(audio)  # type: ignore[arg-type]
        assert found is not None and found.recording_id == expected
        expected_match = Matcher(local).match(audio)
        assert expected_match is not None
        # Hits come in another order, so least-squares fits may differ in the last digits.
        assert found.ref_start == pytest.approx(expected_match.ref_start, abs=1e-9)
        assert replace(found, ref_start=expected_match.ref_start) == expected_match


def test_removal_and_replacement_are_seen_by_another_worker(
    engine: Engine, loaded: tuple[SqlFingerprintIndex, FingerprintIndex], prints: Prints,
    catalog: Catalog
) -> None:
    database, _ = loaded
    other_engine = create_engine(engine.url)  # another worker's connections
    other = SqlFingerprintIndex(other_engine)
    audio = Audio(_excerpt(catalog, 117, 15.0)[: 10 * SAMPLE_RATE], SAMPLE_RATE)
    matcher = Matcher(other)  # type: ignore[arg-type]
    assert _found(matcher, audio) == 117
    assert database.remove(117) is True and database.remove(117) is False
    assert 117 not in other and _found(matcher, audio) is None
    with engine.connect() as connection:
        left = connection.execute(text("SELECT count(*) FROM index_pairs p LEFT JOIN "
                                       "index_recordings r USING (slot) WHERE r.slot IS NULL"))
        assert left.scalar_one() == 0  # no postings left behind
    database.add(900, *prints[117])
    assert _found(matcher, audio) == 900
    database.add(900, *prints[100])  # replaced: the old postings go
    assert _found(matcher, audio) != 900
    assert len(other.recording_ids()) == len(RECORDINGS)
    other_engine.dispose()


def test_writes_joined_to_a_rolled_back_transaction_leave_nothing(
    engine: Engine, prints: Prints
) -> None:
    index = SqlFingerprintIndex(engine)
    index.add(100, *prints[100])
    with engine.connect() as connection:
        transaction = connection.begin()
        with index.joined(connection):
            index.add(103, *prints[103])
            index.remove(100)
            assert index.recording_ids() == [103]  # the transaction sees its own writes
        transaction.rollback()
    assert index.recording_ids() == [100] and len(index) == 1


def test_other_schemes_are_refused(engine: Engine, prints: Prints) -> None:
    index = SqlFingerprintIndex(engine)
    landmarks, duration = prints[100]
    index.add(100, landmarks, duration)
    with pytest.raises(ValueError, match="cannot join"):
        index.add(101, replace(landmarks, scheme="pair-v0:other"), duration)
    with engine.begin() as connection:
        connection.execute(text("UPDATE index_meta SET quad_scheme = 'quad-v0'"))
    with pytest.raises(IndexFormatError, match="quad-v0"):
        _ = SqlFingerprintIndex(engine).scheme
    index.clear()
    assert len(SqlFingerprintIndex(engine)) == 0 and SqlFingerprintIndex(engine).scheme is None


def test_sqlite_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs PostgreSQL"):
        SqlFingerprintIndex(create_engine(f"sqlite:///{tmp_path}/x.db"))
