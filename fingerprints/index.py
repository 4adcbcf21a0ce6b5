"""A persistent, memory-mappable index of landmark hashes for many recordings.

Layout on disk (one directory)::

    manifest.json            format, generation, hash scheme, frame length, recordings
    hashes-<gen>.npy         uint32, sorted: every stored landmark hash
    slots-<gen>.npy          uint32, parallel: which recording (slot) the hash belongs to
    times-<gen>.npy          uint32, parallel: anchor frame in that recording
    freqs-<gen>.npy          uint16, parallel: anchor frequency bin (for pitch estimation)

A save writes a new generation of array files, then replaces ``manifest.json`` atomically
(temporary file + ``os.replace``) and only then deletes the previous generation, so a crash at
any point leaves a readable index. Arrays are opened with ``mmap_mode="r"``: a large index is
paged in on demand and shared between processes.

In memory the index is a large sorted *main* segment (as loaded) plus a small sorted *delta* of
recordings added since; a removal only marks the recording's slot dead, and lookups drop hits
on dead slots. ``save`` merges everything into one compact main segment. Reads no settings.
"""

from __future__ import annotations

import json
import operator
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fingerprints.errors import IndexFormatError
from fingerprints.landmarks import Landmarks

_FORMAT = "copyguard-landmark-index-1"
_MANIFEST = "manifest.json"
_ARRAYS = ("hashes", "slots", "times", "freqs")
_DTYPES = {"hashes": np.uint32, "slots": np.uint32, "times": np.uint32, "freqs": np.uint16}


@dataclass(frozen=True)
class IndexStats:
    """Size of an index: live recordings, stored hashes (live ones), bytes of its files."""

    recordings: int
    hashes: int
    bytes_on_disk: int


@dataclass(frozen=True)
class Postings:
    """Parallel arrays of index entries (one per stored hash occurrence)."""

    hashes: np.ndarray
    slots: np.ndarray
    times: np.ndarray
    freqs: np.ndarray

    @classmethod
    def empty(cls) -> Postings:
        return cls(*(np.zeros(0, dtype=_DTYPES[name]) for name in _ARRAYS))

    @classmethod
    def concatenate(cls, parts: list[Postings]) -> Postings:
        """Concatenates and sorts by hash (stable, so time order within a hash is kept)."""
        if not parts:
            return cls.empty()
        merged = {
            name: np.concatenate([getattr(part, name) for part in parts]) for name in _ARRAYS
        }
        order = np.argsort(merged["hashes"], kind="stable")
        return cls(*(merged[name][order] for name in _ARRAYS))

    def __len__(self) -> int:
        return len(self.hashes)


@dataclass(frozen=True)
class Hits:
    """Result of looking up query hashes: one row per (query hash, stored entry) pair."""

    query_rows: np.ndarray  # int64 index into the query's arrays
    slots: np.ndarray  # int64 slot of the recording hit
    ref_times: np.ndarray  # int64 anchor frame in the reference
    ref_freqs: np.ndarray  # int64 anchor bin in the reference


class FingerprintIndex:
    """Landmark hashes of many recordings keyed by integer ``recording_id``."""

    def __init__(self, directory: Path) -> None:
        # Prefer FingerprintIndex.open(); the constructor only sets up an empty index.
        self.directory = directory
        self.scheme: str | None = None
        self.frame_seconds: float | None = None
        self.bin_hz: float | None = None
        self._generation = 0
        self._slot_ids: list[int] = []  # slot -> recording_id
        self._slot_durations: list[float] = []
        self._alive: list[bool] = []
        self._slot_of: dict[int, int] = {}  # live recording_id -> slot
        self._main = Postings.empty()
        self._pending: list[Postings] = []
        self._delta = Postings.empty()
        self._alive_array: np.ndarray | None = None

    # -- opening and saving -------------------------------------------------------------

    @classmethod
    def open(cls, directory: str | os.PathLike[str]) -> FingerprintIndex:
        """Open the index in ``directory``, or an empty one if there is none yet."""
        path = Path(directory)
        index = cls(path)
        manifest_path = path / _MANIFEST
        if not manifest_path.exists():
            return index
        try:
            manifest: dict[str, Any] = json.loads(manifest_path.read_text("utf-8"))
            if manifest.get("format") != _FORMAT:
                raise IndexFormatError(f"{manifest_path}: not a {_FORMAT} index")
            generation = int(manifest["generation"])
            arrays = {
                name: np.load(path / f"{name}-{generation}.npy", mmap_mode="r")
                for name in _ARRAYS
            }
            recordings = manifest["recordings"]
            index._generation = generation
            index.scheme = manifest["scheme"]
            index.frame_seconds = manifest["frame_seconds"]
            index.bin_hz = manifest["bin_hz"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise IndexFormatError(f"{path}: unreadable fingerprint index: {error}") from error
        lengths = {len(array) for array in arrays.values()}
        if len(lengths) != 1 or any(arrays[n].dtype != _DTYPES[n] for n in _ARRAYS):
            raise IndexFormatError(f"{path}: index arrays disagree in length or type")
        index._main = Postings(**arrays)
        for recording_id, duration in recordings:
            index._new_slot(int(recording_id), float(duration))
        return index

    def save(self) -> None:
        """Write the index to its directory atomically, compacting removed recordings away."""
        self.directory.mkdir(parents=True, exist_ok=True)
        merged, live_slots = self._compacted()
        generation = self._generation + 1
        for name in _ARRAYS:
            _atomic_save_array(self.directory / f"{name}-{generation}.npy", getattr(merged, name))
        manifest = {
            "format": _FORMAT,
            "generation": generation,
            "scheme": self.scheme,
            "frame_seconds": self.frame_seconds,
            "bin_hz": self.bin_hz,
            "recordings": [[self._slot_ids[s], self._slot_durations[s]] for s in live_slots],
        }
        _atomic_write_text(self.directory / _MANIFEST, json.dumps(manifest))
        self._remove_old_generations(generation)
        # Continue from the compacted state, so slots agree with what a reopen would see.
        ids = [self._slot_ids[slot] for slot in live_slots]
        durations = [self._slot_durations[slot] for slot in live_slots]
        self._generation = generation
        self._slot_ids, self._slot_durations = ids, durations
        self._alive = [True] * len(ids)
        self._alive_array = None
        self._slot_of = {recording_id: slot for slot, recording_id in enumerate(ids)}
        self._main, self._delta = merged, Postings.empty()

    def _compacted(self) -> tuple[Postings, list[int]]:
        self._flush_pending()
        live_slots = [slot for slot, alive in enumerate(self._alive) if alive]
        renumber = np.full(max(1, len(self._alive)), np.iinfo(np.uint32).max, dtype=np.uint32)
        renumber[live_slots] = np.arange(len(live_slots), dtype=np.uint32)
        parts = []
        for segment in (self._main, self._delta):
            keep = self._alive_mask()[np.asarray(segment.slots, dtype=np.int64)]
            parts.append(
                Postings(
                    hashes=np.asarray(segment.hashes)[keep],
                    slots=renumber[np.asarray(segment.slots)[keep]],
                    times=np.asarray(segment.times)[keep],
                    freqs=np.asarray(segment.freqs)[keep],
                )
            )
        return Postings.concatenate(parts), live_slots

    def _remove_old_generations(self, generation: int) -> None:
        # The previous generation is kept: a reader that has just read the old manifest can
        # still open its arrays.
        keep = {f"{name}-{g}.npy" for name in _ARRAYS for g in (generation, generation - 1)}
        for name in _ARRAYS:
            for stale in self.directory.glob(f"{name}-*.npy"):
                if stale.name not in keep:
                    stale.unlink(missing_ok=True)

    # -- recordings ---------------------------------------------------------------------

    def add(self, recording_id: int, landmarks: Landmarks, duration: float) -> None:
        """Store ``landmarks`` for ``recording_id`` (of ``duration`` seconds), replacing any."""
        if self.scheme is None:
            self.scheme = landmarks.scheme
            self.frame_seconds = landmarks.frame_seconds
            self.bin_hz = landmarks.bin_hz
        elif landmarks.scheme != self.scheme:
            raise ValueError(
                f"landmarks of scheme {landmarks.scheme!r} cannot join an index of {self.scheme!r}"
            )
        self.remove(recording_id)
        slot = self._new_slot(int(recording_id), float(duration))
        count = len(landmarks.hashes)
        self._pending.append(
            Postings(
                hashes=np.asarray(landmarks.hashes, dtype=np.uint32),
                slots=np.full(count, slot, dtype=np.uint32),
                times=np.asarray(landmarks.times, dtype=np.uint32),
                freqs=np.asarray(landmarks.freqs, dtype=np.uint16),
            )
        )

    def remove(self, recording_id: int) -> bool:
        """Forget ``recording_id``; True if it was present. Takes effect at once for lookups."""
        slot = self._slot_of.pop(int(recording_id), None)
        if slot is None:
            return False
        self._alive[slot] = False
        self._alive_array = None
        return True

    def __contains__(self, recording_id: object) -> bool:
        try:
            return operator.index(recording_id) in self._slot_of  # type: ignore[arg-type]
        except TypeError:
            return False

    def recording_ids(self) -> list[int]:
        return sorted(self._slot_of)

    def __len__(self) -> int:
        return len(self._slot_of)

    def duration(self, recording_id: int) -> float:
        """Duration in seconds given when ``recording_id`` was added."""
        return self._slot_durations[self._slot_of[recording_id]]

    @property
    def memory_mapped(self) -> bool:
        """True when the stored hashes are read from disk on demand (an opened index)."""
        return isinstance(self._main.hashes, np.memmap)

    def stats(self) -> IndexStats:
        self._flush_pending()
        alive = self._alive_mask()
        live_hashes = sum(
            int(np.count_nonzero(alive[np.asarray(segment.slots, dtype=np.int64)]))
            for segment in (self._main, self._delta)
        )
        on_disk = 0
        if self.directory.exists():
            on_disk = sum(p.stat().st_size for p in self.directory.iterdir() if p.is_file())
        return IndexStats(recordings=len(self), hashes=live_hashes, bytes_on_disk=on_disk)

    # -- lookups (used by the Matcher) -------------------------------------------------

    def slot_recording_id(self, slots: np.ndarray) -> np.ndarray:
        """Recording ids of the given slots."""
        return np.asarray(self._slot_ids, dtype=np.int64)[slots]

    def slot_duration(self, slot: int) -> float:
        return self._slot_durations[slot]

    def lookup(self, hashes: np.ndarray, *, max_postings: int | None = None) -> Hits:
        """All stored entries of live recordings whose hash equals one of ``hashes``.

        ``max_postings``: a query hash with more stored entries than this is skipped (such
        hashes are as common as stop words and carry no evidence).
        """
        self._flush_pending()
        alive = self._alive_mask()
        query = np.asarray(hashes, dtype=np.uint32)
        parts = [
            _lookup_segment(segment, query, max_postings)
            for segment in (self._main, self._delta)
            if len(segment)
        ]
        if not parts:
            empty = np.zeros(0, dtype=np.int64)
            return Hits(empty, empty, empty, empty)
        rows = np.concatenate([p[0] for p in parts])
        slots = np.concatenate([p[1] for p in parts])
        times = np.concatenate([p[2] for p in parts])
        freqs = np.concatenate([p[3] for p in parts])
        keep = alive[slots]
        return Hits(rows[keep], slots[keep], times[keep], freqs[keep])

    # -- internals ----------------------------------------------------------------------

    def _new_slot(self, recording_id: int, duration: float) -> int:
        slot = len(self._slot_ids)
        self._slot_ids.append(recording_id)
        self._slot_durations.append(duration)
        self._alive.append(True)
        self._slot_of[recording_id] = slot
        self._alive_array = None
        return slot

    def _alive_mask(self) -> np.ndarray:
        if self._alive_array is None or len(self._alive_array) != len(self._alive):
            self._alive_array = np.asarray(self._alive, dtype=bool)
        return self._alive_array

    def _flush_pending(self) -> None:
        if self._pending:
            self._delta = Postings.concatenate([self._delta, *self._pending])
            self._pending = []


def _lookup_segment(
    segment: Postings, query: np.ndarray, max_postings: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised range expansion: every (query row, entry) pair with equal hashes."""
    stored = segment.hashes
    lo = np.searchsorted(stored, query, side="left")
    hi = np.searchsorted(stored, query, side="right")
    counts = hi - lo
    if max_postings is not None:
        counts[counts > max_postings] = 0
    total = int(counts.sum())
    rows = np.repeat(np.arange(len(query), dtype=np.int64), counts)
    starts = np.repeat(lo - (np.cumsum(counts) - counts), counts)
    positions = starts + np.arange(total, dtype=np.int64)
    return (
        rows,
        np.asarray(segment.slots[positions], dtype=np.int64),
        np.asarray(segment.times[positions], dtype=np.int64),
        np.asarray(segment.freqs[positions], dtype=np.int64),
    )


def _atomic_save_array(path: Path, array: np.ndarray) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            np.save(stream, np.ascontiguousarray(array))
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _atomic_write_text(path: Path, text: str) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
