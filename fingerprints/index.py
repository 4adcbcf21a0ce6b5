"""A persistent, memory-mappable index of landmark hashes for many recordings.

Three tables (:class:`~fingerprints.segment.Segment` families), all derived from
:class:`Landmarks` alone, so an index can be rebuilt from stored fingerprints without decoding
audio:

- *pairs*: the landmark pair hashes (:mod:`fingerprints.landmarks`), each with its anchor's
  position on the index's *frame line*: every recording's frames laid one after another, so
  that one uint32 names both the recording (whose stretch of the line it falls in) and the
  anchor frame, at 4 bytes an entry (the anchor's bin is part of the hash).
- *quads*: the speed/pitch-invariant peak-group hashes (:mod:`fingerprints.triplets`) with
  their anchor's place on the frame line, its bin and the group's span (frames from the
  anchor to its last peak): 7 bytes an entry.
- *peaks*: every recording's spectral peaks (frame, bin in 1/16 bin), by recording. Only the
  verification of a few candidates a query reads them, so they need not stay in memory.

Lookups touch only the hash tables, which are what must fit in memory; the frame line holds
2**32 frames (27,000 hours at 23 ms a frame). Every table is saved packed: the distinct keys
and where each one's entries start.

Layout on disk (one directory)::

    manifest.json                    format, generation, schemes, frame length, recordings
                                     (id, duration, frames of each, in slot order)
    keys|frames|starts-<gen>.npy     pairs: distinct hashes, anchor frames, starts
    quad_keys|frames|bins|spans|starts-<gen>.npy  quads
    peak_keys|times|bins|starts-<gen>.npy  peaks: slots, frames, bins (1/16 bin), starts

A save writes a new generation of array files, then replaces ``manifest.json`` atomically
(temporary file + ``os.replace``) and only then deletes the generation before the previous
one, so a crash at any point leaves a readable index. Arrays are opened with
``mmap_mode="r"``: a large index is paged in on demand and shared between processes.

In memory each table is a large sorted *main* segment (as loaded) plus a small sorted *delta*
of recordings added since; a new recording's stretch of the frame line follows all earlier
ones. A removal only marks the recording's slot dead, and lookups drop hits on dead slots.
``save`` merges everything into compact main segments and renumbers slots and frames. Reads no
settings.
"""

from __future__ import annotations

import json
import operator
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fingerprints.errors import IndexFormatError
from fingerprints.landmarks import Landmarks, anchor_bins
from fingerprints.segment import (
    PACKED,
    PAYLOAD,
    Segment,
    array_names,
    atomic_save_array,
    atomic_write_text,
)
from fingerprints.triplets import DEFAULT_TRIPLET_PARAMS, make_triplets, reference_hashes

_FORMAT = "copyguard-landmark-index-3"
_MANIFEST = "manifest.json"
_PREFIX = {"pairs": "", "quads": "quad_", "peaks": "peak_"}
_FAMILIES = ("peaks", "pairs", "quads")
# Fixed-point scale of stored fractional bins.
BIN_SCALE = 16
# Frames the uint32 frame line holds.
MAX_FRAMES = 2**32


@dataclass(frozen=True)
class IndexStats:
    """Size of an index: live recordings, stored hashes (live ones), bytes of its files."""

    recordings: int
    hashes: int
    bytes_on_disk: int


@dataclass(frozen=True)
class Hits:
    """Result of looking up query hashes: one row per (query hash, stored entry) pair."""

    query_rows: np.ndarray  # int64 index into the query's arrays
    slots: np.ndarray  # int64 slot of the recording hit
    ref_times: np.ndarray  # int64 anchor frame in the reference
    ref_freqs: np.ndarray  # int64 anchor bin in the reference


@dataclass(frozen=True)
class QuadHits:
    """Result of looking up query quad probes: one row per (probe, stored entry) pair."""

    probe_rows: np.ndarray  # int64 index into the probes looked up
    slots: np.ndarray  # int64 slot of the recording hit
    ref_times: np.ndarray  # int64 anchor frame in the reference
    ref_bins: np.ndarray  # float64 anchor bin (fractional) in the reference
    ref_spans: np.ndarray  # float64 frames from the anchor to the group's last peak


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
        self._frame_counts: list[int] = []  # slot -> frames it takes on the frame line
        self._bases_array: np.ndarray | None = None
        self._alive: list[bool] = []
        self._slot_of: dict[int, int] = {}  # live recording_id -> slot
        self._main = {family: Segment.empty(family) for family in _FAMILIES}
        self._delta = {family: Segment.empty(family) for family in _FAMILIES}
        self._pending: dict[str, list[Segment]] = {family: [] for family in _FAMILIES}
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
            if manifest.get("quad_scheme") != DEFAULT_TRIPLET_PARAMS.scheme:
                raise IndexFormatError(f"{manifest_path}: quads of another scheme")
            generation = int(manifest["generation"])
            for family in _FAMILIES:
                arrays = {
                    name: np.load(path / f"{_PREFIX[family]}{name}-{generation}.npy",
                                  mmap_mode="r")
                    for name in array_names(family)
                }
                index._main[family] = Segment.from_files(family, arrays)
            recordings = manifest["recordings"]
            index._generation = generation
            index.scheme = manifest["scheme"]
            index.frame_seconds = manifest["frame_seconds"]
            index.bin_hz = manifest["bin_hz"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise IndexFormatError(f"{path}: unreadable fingerprint index: {error}") from error
        for recording_id, duration, frames in recordings:
            index._new_slot(int(recording_id), float(duration), int(frames))
        return index

    def save(self) -> None:
        """Write the index to its directory atomically, compacting removed recordings away."""
        self.directory.mkdir(parents=True, exist_ok=True)
        merged, live_slots = self._compacted()
        generation = self._generation + 1
        for family, segment in merged.items():
            for name, array in segment.files().items():
                target = self.directory / f"{_PREFIX[family]}{name}-{generation}.npy"
                atomic_save_array(target, array)
        manifest = {
            "format": _FORMAT,
            "quad_scheme": DEFAULT_TRIPLET_PARAMS.scheme,
            "generation": generation,
            "scheme": self.scheme,
            "frame_seconds": self.frame_seconds,
            "bin_hz": self.bin_hz,
            "recordings": [[self._slot_ids[s], self._slot_durations[s], self._frame_counts[s]]
                           for s in live_slots],
        }
        atomic_write_text(self.directory / _MANIFEST, json.dumps(manifest))
        self._remove_old_generations(generation)
        # Continue from the compacted state, so slots agree with what a reopen would see.
        ids = [self._slot_ids[slot] for slot in live_slots]
        durations = [self._slot_durations[slot] for slot in live_slots]
        self._generation = generation
        self._slot_ids, self._slot_durations = ids, durations
        self._frame_counts = [self._frame_counts[slot] for slot in live_slots]
        self._bases_array = None
        self._alive = [True] * len(ids)
        self._alive_array = None
        self._slot_of = {recording_id: slot for slot, recording_id in enumerate(ids)}
        self._main = merged
        self._delta = {family: Segment.empty(family) for family in _FAMILIES}

    def _compacted(self) -> tuple[dict[str, Segment], list[int]]:
        self._flush_pending()
        alive = self._alive_mask()
        live_slots = [slot for slot, is_alive in enumerate(self._alive) if is_alive]
        renumber = np.full(max(1, len(self._alive)), np.iinfo(np.uint32).max, dtype=np.uint32)
        renumber[live_slots] = np.arange(len(live_slots), dtype=np.uint32)
        # Live recordings' stretches of the frame line, laid end to end afresh.
        old_bases = self._bases()
        counts = np.asarray(self._frame_counts, dtype=np.int64)
        new_bases = np.zeros(len(counts), dtype=np.int64)
        new_bases[live_slots] = np.cumsum(counts[live_slots]) - counts[live_slots]
        peak_slots = np.concatenate([self._main["peaks"].entry_keys(),
                                     self._delta["peaks"].entry_keys()])
        keep_peak = alive[peak_slots.astype(np.int64)]
        merged = {
            "peaks": Segment.sorted_from("peaks", renumber[peak_slots[keep_peak]], {
                name: np.concatenate([np.asarray(self._main["peaks"].columns[name]),
                                      np.asarray(self._delta["peaks"].columns[name])])[keep_peak]
                for name in PAYLOAD["peaks"]
            }).packed(),
        }
        for family in ("pairs", "quads"):
            parts = (self._main[family], self._delta[family])
            keys = np.concatenate([part.entry_keys() for part in parts])
            columns = {name: np.concatenate([np.asarray(part.columns[name]) for part in parts])
                       for name in PAYLOAD[family]}
            frames = columns["frames"].astype(np.int64)
            slots = self._frame_slots(frames)
            keep = alive[slots]
            columns = {name: column[keep] for name, column in columns.items()}
            slots = slots[keep]
            columns["frames"] = frames[keep] - old_bases[slots] + new_bases[slots]
            segment = Segment.sorted_from(family, keys[keep], columns)
            merged[family] = segment.packed() if family in PACKED else segment
        return merged, live_slots

    def _remove_old_generations(self, generation: int) -> None:
        # The previous generation is kept: a reader that has just read the old manifest can
        # still open its arrays.
        stems = [_PREFIX[family] + name for family in _FAMILIES for name in array_names(family)]
        keep = {f"{stem}-{g}.npy" for stem in stems for g in (generation, generation - 1)}
        for stem in stems:
            for stale in self.directory.glob(f"{stem}-*.npy"):
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
        tables = recording_tables(landmarks)
        peak_columns = tables["peaks"][1]
        peak_times = np.asarray(peak_columns["times"], dtype=np.int64)
        frames = int(peak_times.max()) + 1 if len(peak_times) else 0
        base = sum(self._frame_counts)
        if base + frames > MAX_FRAMES:
            raise ValueError(f"the index is full ({MAX_FRAMES} frames); split the catalog")
        self.remove(recording_id)
        slot = self._new_slot(int(recording_id), float(duration), frames)
        for family, (keys, columns) in tables.items():
            if family == "peaks":
                keys = np.full(len(keys), slot, dtype=np.uint32)
                payload = columns
            else:
                anchors = np.asarray(columns["peaks"], dtype=np.int64)
                payload = {"frames": peak_times[anchors] + base}
                if family == "quads":
                    payload["bins"] = np.asarray(peak_columns["bins"])[anchors]
                    payload["spans"] = columns["spans"]
            self._pending[family].append(Segment.sorted_from(family, keys, payload))

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
        return isinstance(self._main["pairs"].columns["frames"], np.memmap)

    def stats(self) -> IndexStats:
        self._flush_pending()
        alive = self._alive_mask()
        frames = [np.asarray(self._main["pairs"].columns["frames"]),
                  np.asarray(self._delta["pairs"].columns["frames"])]
        live_hashes = int(np.count_nonzero(alive[self._frame_slots(np.concatenate(frames))]))
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
        query = np.asarray(hashes, dtype=np.uint32)
        rows, columns = self._lookup("pairs", query, max_postings)
        return Hits(rows, columns["slots"], columns["times"],
                    anchor_bins(query[rows]).astype(np.int64))

    def lookup_quads(self, hashes: np.ndarray, *, max_postings: int | None = None) -> QuadHits:
        """Like :meth:`lookup` for the speed/pitch-invariant quad hashes."""
        rows, columns = self._lookup("quads", np.asarray(hashes, dtype=np.uint32), max_postings)
        return QuadHits(rows, columns["slots"], columns["times"],
                        columns["bins"].astype(np.float64) / BIN_SCALE,
                        columns["spans"].astype(np.float64))

    def peaks(self, slot: int) -> tuple[np.ndarray, np.ndarray]:
        """(frames, fractional bins) of every peak of the recording in ``slot``, by frame."""
        self._flush_pending()
        times, bins = [], []
        for segment in (self._main["peaks"], self._delta["peaks"]):
            lows, highs = segment.ranges(np.array([slot], dtype=np.uint32))
            low, high = int(lows[0]), int(highs[0])
            times.append(np.asarray(segment.columns["times"][low:high], dtype=np.int64))
            bins.append(np.asarray(segment.columns["bins"][low:high], dtype=np.float64))
        return np.concatenate(times), np.concatenate(bins) / BIN_SCALE

    def _lookup(
        self, family: str, query: np.ndarray, max_postings: int | None
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Rows and payload of the hits on live recordings (payload as int64), with the
        anchors' "slots" and "times" (frames in their recording) added."""
        self._flush_pending()
        # Sorted keys read the sorted tables in order: about twice as fast as at random.
        order = np.argsort(query, kind="stable")
        ordered = query[order]
        parts = [segment.lookup(ordered, max_postings)
                 for segment in (self._main[family], self._delta[family]) if len(segment)]
        if not parts:
            empty = np.zeros(0, dtype=np.int64)
            names = [*PAYLOAD[family], "slots", "times"]
            return empty, {name: empty for name in names}
        rows = order[np.concatenate([part[0] for part in parts])]
        columns = {name: np.concatenate([part[1][name] for part in parts])
                   for name in PAYLOAD[family]}
        slots = self._frame_slots(columns["frames"])
        keep = self._alive_mask()[slots]
        columns = {name: column[keep] for name, column in columns.items()}
        slots = slots[keep]
        columns["times"] = columns["frames"] - self._bases()[slots]
        columns["slots"] = slots
        return rows[keep], columns

    def _frame_slots(self, frames: np.ndarray) -> np.ndarray:
        """The slot whose stretch of the frame line holds each of ``frames``."""
        positions = np.searchsorted(self._bases(), np.asarray(frames, dtype=np.int64),
                                    side="right")
        return positions.astype(np.int64) - 1

    # -- internals ----------------------------------------------------------------------

    def _new_slot(self, recording_id: int, duration: float, frames: int) -> int:
        slot = len(self._slot_ids)
        self._slot_ids.append(recording_id)
        self._slot_durations.append(duration)
        self._frame_counts.append(frames)
        self._bases_array = None
        self._alive.append(True)
        self._slot_of[recording_id] = slot
        self._alive_array = None
        return slot

    def _bases(self) -> np.ndarray:
        """Where each slot's stretch of the frame line starts (dead slots included)."""
        if self._bases_array is None or len(self._bases_array) != len(self._frame_counts):
            counts = np.asarray(self._frame_counts, dtype=np.int64)
            self._bases_array = np.cumsum(counts) - counts
        return self._bases_array

    def _alive_mask(self) -> np.ndarray:
        if self._alive_array is None or len(self._alive_array) != len(self._alive):
            self._alive_array = np.asarray(self._alive, dtype=bool)
        return self._alive_array

    def _flush_pending(self) -> None:
        for family, pending in self._pending.items():
            if pending:
                # Slots only grow, so the peaks stay in slot order.
                parts = [self._delta[family], *pending]
                keys = np.concatenate([part.keys for part in parts])
                columns = {name: np.concatenate([part.columns[name] for part in parts])
                           for name in PAYLOAD[family]}
                self._delta[family] = Segment.sorted_from(family, keys, columns)
                self._pending[family] = []


def recording_tables(landmarks: Landmarks) -> dict[str, tuple[np.ndarray, dict[str, np.ndarray]]]:
    """Each table's (keys, payload) for one recording; peak numbers start at 0 here."""
    peak_times = np.asarray(landmarks.peak_times, dtype=np.int64)
    peak_freqs = np.asarray(landmarks.peak_freqs, dtype=np.int64)
    peak_bins = np.asarray(landmarks.peak_bins, dtype=np.float64)
    if len(peak_bins) != len(peak_times):  # landmarks made before bins were interpolated
        peak_bins = peak_freqs.astype(np.float64)
    # Each pair's anchor is one of the peaks: find its number by (frame, bin).
    peak_keys = (peak_times << 16) | peak_freqs
    order = np.argsort(peak_keys, kind="stable")
    anchor_keys = (np.asarray(landmarks.times, dtype=np.int64) << 16) | np.asarray(
        landmarks.freqs, dtype=np.int64)
    position = np.minimum(np.searchsorted(peak_keys[order], anchor_keys), len(order) - 1)
    if len(anchor_keys) and not np.array_equal(peak_keys[order][position], anchor_keys):
        raise ValueError("landmarks whose pair anchors are not among their peaks")
    params = DEFAULT_TRIPLET_PARAMS
    quads = make_triplets(peak_times, peak_bins, params, params.reference_fanout)
    return {
        "peaks": (np.zeros(len(peak_times), dtype=np.uint32),
                  {"times": peak_times, "bins": np.rint(peak_bins * BIN_SCALE)}),
        "pairs": (np.asarray(landmarks.hashes), {"peaks": order[position]}),
        "quads": (reference_hashes(quads, params),
                  {"peaks": quads.anchors, "spans": np.minimum(quads.span, 255)}),
    }
