"""Sorted tables of an index (pairs, quads, peaks) and how they are looked up and stored.

A :class:`Segment` holds one *family* of a :class:`~fingerprints.index.FingerprintIndex`:
entries sorted by a key (a hash, or for peaks the recording slot) with parallel payload
columns. It is *plain* (one key per entry: the small in-memory delta, the quads and peaks)
or *packed* (the distinct keys and where each one's entries start: the pair hashes of a saved
index, of which a large catalog holds every possible value many times over, and the slots of
the peak table, so that a key column per entry would cost 4 bytes each for nothing).
Reads no settings.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

# Payload columns of each family, after its key column; names double as file names.
PAYLOAD: dict[str, dict[str, type[np.generic]]] = {
    # The anchor's frame on the index's frame line (every recording's frames one after another).
    "pairs": {"frames": np.uint32},
    # ... and for a group, also its anchor's bin (1/BIN_SCALE bins) and frames to the last peak.
    "quads": {"frames": np.uint32, "bins": np.uint16, "spans": np.uint8},
    "peaks": {"times": np.uint32, "bins": np.uint16},  # frame, bin in 1/BIN_SCALE bins
}
# Families saved packed (distinct keys + starts) rather than with a key per entry: all three, as
# a large catalog repeats every key many times.
PACKED = frozenset({"pairs", "quads", "peaks"})


@dataclass(frozen=True)
class Segment:
    """Entries of one family sorted by key; ``starts`` is None unless packed."""

    family: str
    keys: np.ndarray  # uint32: one per entry (plain) or the distinct keys (packed)
    columns: dict[str, np.ndarray]
    starts: np.ndarray | None = None  # packed: entries of keys[i] are starts[i]:starts[i+1]

    @classmethod
    def empty(cls, family: str) -> Segment:
        columns = {name: np.zeros(0, dtype=dtype) for name, dtype in PAYLOAD[family].items()}
        return cls(family, np.zeros(0, dtype=np.uint32), columns)

    @classmethod
    def sorted_from(cls, family: str, keys: np.ndarray, columns: dict[str, np.ndarray]
                    ) -> Segment:
        """A plain segment of these entries, sorted by key (stably: ties keep their order)."""
        order = np.argsort(keys, kind="stable")
        typed = {name: np.asarray(columns[name])[order].astype(dtype, copy=False)
                 for name, dtype in PAYLOAD[family].items()}
        return cls(family, np.asarray(keys)[order].astype(np.uint32, copy=False), typed)

    def __len__(self) -> int:
        return len(next(iter(self.columns.values())))

    def entry_keys(self) -> np.ndarray:
        """The key of every entry (expanding a packed segment)."""
        if self.starts is None:
            return np.asarray(self.keys)
        counts = np.diff(np.asarray(self.starts, dtype=np.int64)).astype(np.int64)
        return np.repeat(np.asarray(self.keys), counts)

    def key_of(self, positions: np.ndarray) -> np.ndarray:
        """The keys of the entries at these positions."""
        if self.starts is None:
            return np.asarray(self.keys[positions])
        owner = np.searchsorted(np.asarray(self.starts), positions, side="right") - 1
        return np.asarray(self.keys)[owner]

    def packed(self) -> Segment:
        """The same entries with distinct keys and starts (for saving)."""
        keys = self.entry_keys()
        if len(keys) == 0:
            distinct, first = np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.int64)
        else:
            first = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
            distinct = keys[first]
        starts = np.append(first, len(keys)).astype(np.uint64)
        return Segment(self.family, distinct.astype(np.uint32), self.columns, starts)

    def ranges(self, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each query key, the entries ``lo[i]:hi[i]`` holding it (empty if none)."""
        if self.starts is None:
            lo = np.searchsorted(self.keys, query, side="left")
            hi = np.searchsorted(self.keys, query, side="right")
            return lo.astype(np.int64), hi.astype(np.int64)
        if len(self.keys) == 0:
            zero = np.zeros(len(query), dtype=np.int64)
            return zero, zero
        position = np.minimum(np.searchsorted(self.keys, query), len(self.keys) - 1)
        found = np.asarray(self.keys)[position] == query
        starts = np.asarray(self.starts, dtype=np.int64)
        lo = np.where(found, starts[position], 0)
        hi = np.where(found, starts[position + 1], 0)
        return lo, hi

    def lookup(
        self, query: np.ndarray, max_postings: int | None
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Every (query row, entry) pair with equal keys: rows and the entries' payload.

        A query key with more than ``max_postings`` entries is skipped.
        """
        lo, hi = self.ranges(query)
        counts = hi - lo
        if max_postings is not None:
            counts[counts > max_postings] = 0
        total = int(counts.sum())
        rows = np.repeat(np.arange(len(query), dtype=np.int64), counts)
        starts = np.repeat(lo - (np.cumsum(counts) - counts), counts)
        positions = starts + np.arange(total, dtype=np.int64)
        return rows, {name: np.asarray(column[positions], dtype=np.int64)
                      for name, column in self.columns.items()}

    def files(self) -> dict[str, np.ndarray]:
        """Array name -> array, as saved (key column "keys", and "starts" when packed)."""
        arrays = {"keys": np.asarray(self.keys), **self.columns}
        if self.starts is not None:
            arrays["starts"] = np.asarray(self.starts)
        return arrays

    @classmethod
    def from_files(cls, family: str, arrays: dict[str, np.ndarray]) -> Segment:
        """The segment saved as ``arrays``; ValueError if they do not fit together."""
        columns = {name: arrays[name] for name in PAYLOAD[family]}
        if any(columns[name].dtype != dtype for name, dtype in PAYLOAD[family].items()):
            raise ValueError(f"{family} arrays have the wrong types")
        if len({len(column) for column in columns.values()}) != 1:
            raise ValueError(f"{family} arrays disagree in length")
        keys, starts = arrays["keys"], arrays.get("starts")
        entries = len(next(iter(columns.values())))
        if keys.dtype != np.uint32:
            raise ValueError(f"{family} keys have the wrong type")
        if starts is None and len(keys) != entries:
            raise ValueError(f"{family} keys disagree in length")
        if starts is not None and (len(starts) != len(keys) + 1 or int(starts[-1]) != entries):
            raise ValueError(f"{family} starts do not fit the entries")
        return cls(family, keys, columns, starts)


def array_names(family: str) -> list[str]:
    names = ["keys", *PAYLOAD[family]]
    return [*names, "starts"] if family in PACKED else names


def _atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write through a temporary file beside ``path``, fsync it, then rename it into place, so
    a reader (or a crash) never sees half a file."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def atomic_save_array(path: Path, array: np.ndarray) -> None:
    _atomic_write(path, lambda stream: np.save(stream, np.ascontiguousarray(array)))


def atomic_write_text(path: Path, text: str) -> None:
    _atomic_write(path, lambda stream: stream.write(text.encode("utf-8")))
