"""What the matcher and the catalog need of a search index, as a typing protocol.

Two classes provide it: :class:`~fingerprints.index.FingerprintIndex` (a memory-mapped replica
on the local disk) and :class:`~fingerprints.sql_index.SqlFingerprintIndex` (one index in
PostgreSQL shared by every worker). Code that works with either takes a :class:`SearchIndex`;
mypy checks that both classes conform (see the end of this module). A *slot* is the index's own
handle on one stored recording, valid for the life of that entry (``slot_recording_id`` turns
it into the recording id). Reads no settings.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from fingerprints.index import FingerprintIndex, Hits, IndexStats, QuadHits
from fingerprints.landmarks import Landmarks


class SearchIndex(Protocol):
    """Landmark hashes of many recordings keyed by integer recording id."""

    @property
    def scheme(self) -> str | None: ...  # pair landmark scheme; None while empty

    @property
    def frame_seconds(self) -> float | None: ...

    @property
    def bin_hz(self) -> float | None: ...

    def __len__(self) -> int: ...

    def __contains__(self, recording_id: object) -> bool: ...

    def recording_ids(self) -> list[int]: ...

    def duration(self, recording_id: int) -> float: ...

    def add(self, recording_id: int, landmarks: Landmarks, duration: float) -> None: ...

    def remove(self, recording_id: int) -> bool: ...

    def save(self) -> None: ...

    def stats(self) -> IndexStats: ...

    def lookup(self, hashes: np.ndarray, *, max_postings: int | None = None) -> Hits: ...

    def lookup_quads(self, hashes: np.ndarray, *, max_postings: int | None = None
                     ) -> QuadHits: ...

    def peaks(self, slot: int) -> tuple[np.ndarray, np.ndarray]: ...

    def slot_recording_id(self, slots: np.ndarray) -> np.ndarray: ...

    def slot_duration(self, slot: int) -> float: ...


def _conforms(index: FingerprintIndex) -> SearchIndex:
    return index  # mypy checks here that FingerprintIndex provides the protocol
