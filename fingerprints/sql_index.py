"""A fingerprint index that lives in PostgreSQL, so identify workers on many machines search one
catalog (``[matching] index = "database"``).

Why: with the local replica (:class:`~fingerprints.index.FingerprintIndex`) every worker holds
the whole index and brings it in line with the ledger when it starts, and another worker's
import or removal reaches it only at its next start. Here there is one copy, in the engine the
ledger already runs on: an import or removal is seen by every worker at its next lookup, and a
new worker starts without building anything. The price is a database round trip per lookup,
several times the query time when the peak groups are needed (tens of thousands of btree
probes) and several times the storage (a row per posting); ``make bench-shared-index`` measures
both against the local replica (BENCHMARKS.md).

Tables (ledger migration 0003, ``ledger.models``)::

    index_meta        one row: pair scheme, peak-group scheme, frame length, bin width
    index_recordings  slot (serial), recording_id (unique), duration, posting counts, peaks
                      (frames as uint32, bins in 1/BIN_SCALE as uint16, little-endian bytea)
    index_pairs       hash, slot, frame                    btrees on hash (covering), on slot
    index_quads       hash, slot, frame, bin, span         btrees on hash (covering), on slot

Choices:

- A slot is the ``index_recordings`` row, not the recording id: a recording added again gets a
  new slot, so what a process caches about a slot (recording id, duration) never goes stale.
- Postings are denormalised: each row carries its anchor's frame (and for peak groups the
  anchor's bin and the span), so a lookup reads one table per family and joins nothing. A pair's
  anchor bin is not stored at all: it is the top bits of the hash (``anchor_bins``), which is
  where :class:`FingerprintIndex` takes it from too. Rows are made by
  :func:`~fingerprints.index.recording_tables`, so a change of the fingerprints reaches both.
- Writes: a recording's rows go in by binary ``COPY`` in one transaction with its slot row; a
  removal deletes them through the btree on slot (with no dead entries to filter out later).
  :meth:`SqlFingerprintIndex.joined` makes writes part of a caller's transaction, so a catalog
  import or removal commits its ledger rows and its index rows together.
- Lookups: one statement per family with the distinct query hashes as an ``int4[]``
  (``hash = ANY``, sent in binary straight from numpy); the btree on hash includes every other
  column, so the scan reads the index alone (an index-only scan, once VACUUM, or autovacuum after
  a load, has marked the pages all-visible). ``max_postings`` is applied in the database by a
  window count, so stop-word postings never cross the wire; the hits come back as one ``bytea``
  of packed big-endian integers (``string_agg`` of ``int4send``) that numpy decodes, since a
  Python object per row would cost more than the query. Hashes are stored as ``int4`` holding
  the uint32's bits.
- The connections the index reads through run with ``jit = off`` and no parallel workers
  (:func:`fingerprints.sql_binary.prepared`): the planner prices a lookup of tens of thousands
  of hashes like an analytic query, and compiling or starting workers for it costs more than
  the lookup (tens to hundreds of milliseconds). These are session settings, so they also apply
  to whatever else later uses the connection (the ledger's OLTP statements, which need neither).

PostgreSQL only. Takes its engine as an argument and reads no settings.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from sqlalchemy import Connection, Engine

from fingerprints.errors import IndexFormatError
from fingerprints.index import BIN_SCALE, Hits, IndexStats, QuadHits, recording_tables
from fingerprints.landmarks import Landmarks, anchor_bins
from fingerprints.search import SearchIndex
from fingerprints.sql_binary import Int4Array, as_int4, copy_rows, prepared
from fingerprints.triplets import DEFAULT_TRIPLET_PARAMS

TABLES = ("index_meta", "index_recordings", "index_pairs", "index_quads")
# Key of the advisory lock held while one process brings the index in line with the ledger.
_MAINTENANCE_LOCK = 872345002
_NO_LIMIT = 2**31 - 1
# Hits as (hash, slot, frame[, bin, span]), packed; postings of over-common hashes left out.
_LOOKUP = {
    "pairs": """
        SELECT string_agg(int4send(hash) || int4send(slot) || int4send(frame), ''::bytea)
        FROM (SELECT hash, slot, frame, count(*) OVER (PARTITION BY hash) AS postings
              FROM index_pairs WHERE hash = ANY(%(hashes)s)) AS hits
        WHERE postings <= %(limit)s""",
    "quads": """
        SELECT string_agg(int4send(hash) || int4send(slot) || int4send(frame)
                          || int4send(bin) || int4send(span), ''::bytea)
        FROM (SELECT hash, slot, frame, bin, span, count(*) OVER (PARTITION BY hash) AS postings
              FROM index_quads WHERE hash = ANY(%(hashes)s)) AS hits
        WHERE postings <= %(limit)s""",
}


class SqlFingerprintIndex:
    """Landmark hashes of many recordings keyed by integer ``recording_id``, in PostgreSQL.

    Every method runs its own short transaction (reads in autocommit), except inside
    :meth:`joined`. The constructor connects to nothing. One instance serves one thread.
    """

    def __init__(self, engine: Engine, *, count_max_age: float = 1.0) -> None:
        # count_max_age: len() may answer from a count this many seconds old (the matcher asks
        #   once per candidate); this process's own writes refresh it at once.
        if engine.dialect.name != "postgresql":
            raise ValueError(f"the database index needs PostgreSQL, not {engine.dialect.name}")
        self._engine = engine
        self._reader = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._joined: Connection | None = None
        self._meta: tuple[str, float, float] | None = None  # scheme, frame s, bin Hz
        self._slots: dict[int, tuple[int, float]] = {}  # slot -> (recording id, duration)
        self._count_max_age = count_max_age
        self._count: tuple[float, int] | None = None  # (monotonic time, recordings)

    # -- transactions -------------------------------------------------------------------

    @contextmanager
    def joined(self, connection: Connection) -> Iterator[None]:
        """Inside the block every read and write goes through ``connection`` and its
        transaction (which the caller commits or rolls back), e.g. a ledger session's."""
        previous, self._joined = self._joined, connection
        self._count = None
        try:
            yield
        finally:
            self._joined = previous
            self._count = None

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        self._count = None
        if self._joined is not None:
            yield self._joined
        else:
            with self._engine.begin() as connection:
                yield connection
        self._count = None

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        if self._joined is not None:
            yield prepared(self._joined, settings=False)
        else:
            with self._reader.connect() as connection:
                yield prepared(connection)

    @contextmanager
    def maintenance_lock(self) -> Iterator[None]:
        """Held by one process at a time (a PostgreSQL advisory lock), so that workers starting
        together bring the index in line with the ledger one after another, not all at once."""
        with self._reader.connect() as connection:
            connection.exec_driver_sql("SELECT pg_advisory_lock(%(key)s)",
                                       {"key": _MAINTENANCE_LOCK})
            try:
                yield
            finally:
                connection.exec_driver_sql("SELECT pg_advisory_unlock(%(key)s)",
                                           {"key": _MAINTENANCE_LOCK})

    # -- what the index holds -----------------------------------------------------------

    @property
    def scheme(self) -> str | None:
        meta = self._read_meta()
        return meta[0] if meta else None

    @property
    def frame_seconds(self) -> float | None:
        meta = self._read_meta()
        return meta[1] if meta else None

    @property
    def bin_hz(self) -> float | None:
        meta = self._read_meta()
        return meta[2] if meta else None

    def _read_meta(self) -> tuple[str, float, float] | None:
        """The index's schemes, cached once set (they change only through :meth:`clear`).

        Raises :class:`IndexFormatError` for peak groups of another scheme."""
        if self._meta is None:
            with self._reading() as connection:
                row = connection.exec_driver_sql(
                    "SELECT scheme, quad_scheme, frame_seconds, bin_hz FROM index_meta"
                ).first()
            if row is None:
                return None
            if row.quad_scheme != DEFAULT_TRIPLET_PARAMS.scheme:
                expected = DEFAULT_TRIPLET_PARAMS.scheme
                raise IndexFormatError(f"the database index holds peak groups of scheme "
                                       f"{row.quad_scheme!r}, not {expected!r}")
            self._meta = (row.scheme, float(row.frame_seconds), float(row.bin_hz))
        return self._meta

    def __len__(self) -> int:
        now = time.monotonic()
        if self._count is None or now - self._count[0] > self._count_max_age:
            with self._reading() as connection:
                count = int(connection.exec_driver_sql(
                    "SELECT count(*) FROM index_recordings").scalar_one())
            if self._joined is not None:
                return count  # an uncommitted view: not for other callers
            self._count = (now, count)
        return self._count[1]

    def __contains__(self, recording_id: object) -> bool:
        if not isinstance(recording_id, int | np.integer):
            return False
        with self._reading() as connection:
            return connection.exec_driver_sql(
                "SELECT 1 FROM index_recordings WHERE recording_id = %(id)s",
                {"id": int(recording_id)}).first() is not None

    def recording_ids(self) -> list[int]:
        with self._reading() as connection:
            return [int(value) for value in connection.exec_driver_sql(
                "SELECT recording_id FROM index_recordings ORDER BY recording_id").scalars()]

    def duration(self, recording_id: int) -> float:
        """Duration in seconds given when ``recording_id`` was added (KeyError if absent)."""
        with self._reading() as connection:
            value = connection.exec_driver_sql(
                "SELECT duration FROM index_recordings WHERE recording_id = %(id)s",
                {"id": int(recording_id)}).scalar()
        if value is None:
            raise KeyError(recording_id)
        return float(value)

    def stats(self) -> IndexStats:
        """Live recordings, pair hashes, and the bytes the tables take with their indexes."""
        with self._reading() as connection:
            recordings, hashes = connection.exec_driver_sql(
                "SELECT count(*), coalesce(sum(pairs), 0) FROM index_recordings").one()
            size = connection.exec_driver_sql(
                "SELECT sum(pg_total_relation_size(to_regclass(name))) "
                "FROM unnest(%(tables)s::text[]) AS name", {"tables": list(TABLES)}).scalar()
        return IndexStats(recordings=int(recordings), hashes=int(hashes),
                          bytes_on_disk=int(size or 0))

    # -- recordings ---------------------------------------------------------------------

    def add(self, recording_id: int, landmarks: Landmarks, duration: float) -> None:
        """Store ``landmarks`` for ``recording_id`` (of ``duration`` seconds), replacing any."""
        tables = recording_tables(landmarks)
        peak_times = tables["peaks"][1]["times"].astype(np.int64)
        peak_bins = tables["peaks"][1]["bins"].astype(np.int64)
        pair_hashes, pair_columns = tables["pairs"]
        quad_hashes, quad_columns = tables["quads"]
        if len(peak_times) and (peak_times.max() >= 2**31 or peak_bins.max() >= 2**15):
            raise ValueError("peak frames or bins out of the database index's range")
        pair_anchors = pair_columns["peaks"].astype(np.int64)
        quad_anchors = quad_columns["peaks"].astype(np.int64)
        with self._writing() as connection:
            self._claim_scheme(connection, landmarks)
            self._delete(connection, int(recording_id))
            slot = int(connection.exec_driver_sql(
                "INSERT INTO index_recordings (recording_id, duration, pairs, quads, "
                "peak_times, peak_bins) VALUES (%(id)s, %(duration)s, %(pairs)s, %(quads)s, "
                "%(times)s, %(bins)s) RETURNING slot",
                {"id": int(recording_id), "duration": float(duration),
                 "pairs": len(pair_hashes), "quads": len(quad_hashes),
                 "times": peak_times.astype("<u4").tobytes(),
                 "bins": peak_bins.astype("<u2").tobytes()}).scalar_one())
            copy_rows(connection, "index_pairs (hash, slot, frame)",
                      [as_int4(pair_hashes), np.full(len(pair_hashes), slot),
                       peak_times[pair_anchors]])
            copy_rows(connection, "index_quads (hash, slot, frame, bin, span)",
                      [as_int4(quad_hashes), np.full(len(quad_hashes), slot),
                       peak_times[quad_anchors], peak_bins[quad_anchors],
                       quad_columns["spans"].astype(np.int64)], small=(3, 4))

    def _claim_scheme(self, connection: Connection, landmarks: Landmarks) -> None:
        """The first recording sets the index's schemes; later ones must share them."""
        connection.exec_driver_sql(
            "INSERT INTO index_meta (id, scheme, quad_scheme, frame_seconds, bin_hz) "
            "VALUES (1, %(scheme)s, %(quads)s, %(frame)s, %(bin)s) ON CONFLICT (id) DO NOTHING",
            {"scheme": landmarks.scheme, "quads": DEFAULT_TRIPLET_PARAMS.scheme,
             "frame": landmarks.frame_seconds, "bin": landmarks.bin_hz})
        scheme = connection.exec_driver_sql("SELECT scheme FROM index_meta").scalar_one()
        if scheme != landmarks.scheme:
            raise ValueError(
                f"landmarks of scheme {landmarks.scheme!r} cannot join an index of {scheme!r}")

    def remove(self, recording_id: int) -> bool:
        """Forget ``recording_id``; True if it was present. Every worker's next lookup sees it."""
        with self._writing() as connection:
            return self._delete(connection, int(recording_id))

    def _delete(self, connection: Connection, recording_id: int) -> bool:
        slot = connection.exec_driver_sql(
            "DELETE FROM index_recordings WHERE recording_id = %(id)s RETURNING slot",
            {"id": recording_id}).scalar()
        if slot is None:
            return False
        for table in ("index_pairs", "index_quads"):
            connection.exec_driver_sql(f"DELETE FROM {table} WHERE slot = %(slot)s",
                                       {"slot": slot})
        return True

    def save(self) -> None:
        """Nothing to do: every write is committed when it returns (or with the joined
        transaction). Present so that code written for :class:`FingerprintIndex` works."""

    def clear(self) -> None:
        """Empty the index (before a rebuild). Other workers see an empty index at once."""
        with self._writing() as connection:
            # The slot sequence goes on (no RESTART IDENTITY): slots are never reused, so what
            # other processes cached about old slots cannot be mistaken for new ones.
            connection.exec_driver_sql(f"TRUNCATE {', '.join(TABLES)}")
        self._meta = None
        self._slots.clear()

    # -- lookups (used by the Matcher) -------------------------------------------------

    def lookup(self, hashes: np.ndarray, *, max_postings: int | None = None) -> Hits:
        """All stored entries whose hash equals one of ``hashes`` (rows index ``hashes``).

        ``max_postings``: a query hash with more stored entries than this is skipped.
        """
        query = np.asarray(hashes, dtype=np.uint32)
        rows, found = self._lookup("pairs", query, max_postings, 3)
        return Hits(rows, found[:, 1], found[:, 2], anchor_bins(query[rows]).astype(np.int64))

    def lookup_quads(self, hashes: np.ndarray, *, max_postings: int | None = None) -> QuadHits:
        """Like :meth:`lookup` for the speed/pitch-invariant peak-group hashes."""
        query = np.asarray(hashes, dtype=np.uint32)
        rows, found = self._lookup("quads", query, max_postings, 5)
        return QuadHits(rows, found[:, 1], found[:, 2], found[:, 3] / BIN_SCALE,
                        found[:, 4].astype(np.float64))

    def _lookup(self, family: str, query: np.ndarray, max_postings: int | None,
                width: int) -> tuple[np.ndarray, np.ndarray]:
        """(query rows, hit columns as int64 with the hash first) of live recordings' hits."""
        wanted = as_int4(query)
        ordered = np.sort(wanted)
        distinct = ordered[np.r_[True, ordered[1:] != ordered[:-1]]] if len(ordered) else ordered
        data = b""
        if len(distinct):
            with self._reading() as connection:
                data = connection.exec_driver_sql(_LOOKUP[family], {
                    "hashes": Int4Array(distinct),
                    "limit": _NO_LIMIT if max_postings is None else max_postings,
                }).scalar() or b""
        found = np.frombuffer(data, dtype=">i4").reshape(-1, width).astype(np.int64)
        found = found[self._known_slots(found[:, 1])]
        # Each hit once per query row holding its hash.
        order = np.argsort(found[:, 0], kind="stable")
        keys = found[order, 0]
        low = np.searchsorted(keys, wanted, side="left")
        counts = np.searchsorted(keys, wanted, side="right") - low
        rows = np.repeat(np.arange(len(query), dtype=np.int64), counts)
        positions = np.repeat(low - (np.cumsum(counts) - counts), counts) + np.arange(
            int(counts.sum()), dtype=np.int64)
        return rows, found[order[positions]]

    def _known_slots(self, slots: np.ndarray) -> np.ndarray:
        """Mask of the slots still stored, after caching the recording id and duration of
        any not seen before (a recording removed since the lookup drops out here)."""
        distinct = np.unique(slots)
        new = [int(slot) for slot in distinct if int(slot) not in self._slots]
        if new:
            with self._reading() as connection:
                for slot, recording_id, duration in connection.exec_driver_sql(
                        "SELECT slot, recording_id, duration FROM index_recordings "
                        "WHERE slot = ANY(%(slots)s)", {"slots": Int4Array(np.array(new))}):
                    self._slots[int(slot)] = (int(recording_id), float(duration))
        if all(int(slot) in self._slots for slot in distinct):
            return np.ones(len(slots), dtype=bool)
        return np.isin(slots, np.fromiter(self._slots, dtype=np.int64, count=len(self._slots)))

    def slot_recording_id(self, slots: np.ndarray) -> np.ndarray:
        """Recording ids of the given slots (slots a lookup returned)."""
        return np.array([self._slot(int(slot))[0] for slot in np.atleast_1d(slots)],
                        dtype=np.int64).reshape(np.shape(slots))

    def slot_duration(self, slot: int) -> float:
        return self._slot(int(slot))[1]

    def _slot(self, slot: int) -> tuple[int, float]:
        if slot not in self._slots:
            self._known_slots(np.array([slot], dtype=np.int64))
        return self._slots[slot]

    def peaks(self, slot: int) -> tuple[np.ndarray, np.ndarray]:
        """(frames, fractional bins) of every peak of the recording in ``slot``, by frame;
        empty if it has been removed meanwhile."""
        with self._reading() as connection:
            row = connection.exec_driver_sql(
                "SELECT peak_times, peak_bins FROM index_recordings WHERE slot = %(slot)s",
                {"slot": int(slot)}).first()
        if row is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
        times = np.frombuffer(row.peak_times, dtype="<u4").astype(np.int64)
        bins = np.frombuffer(row.peak_bins, dtype="<u2").astype(np.float64)
        return times, bins / BIN_SCALE


def _conforms(index: SqlFingerprintIndex) -> SearchIndex:
    return index  # mypy checks here that the class provides the protocol
