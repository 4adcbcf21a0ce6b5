"""A persistent, memory-mappable index of landmark hashes for many recordings.

Three tables (:class:`~fingerprints.segment.Segment` families), all derived from
:class:`Landmarks` alone, so an index can be rebuilt from stored fingerprints without decoding
audio:

- *peaks*: every recording's spectral peaks (frame, bin in 1/16 bin), sorted by slot. An
  entry of the other two tables names its anchor peak by its position here (a *peak number*),
  which gives the recording, the anchor frame and the anchor frequency at 4 bytes an entry.
- *pairs*: the landmark pair hashes (:mod:`fingerprints.landmarks`) with their anchor peak,
  saved packed: the distinct hashes and where each one's entries start.
- *quads*: the speed/pitch-invariant peak-group hashes (:mod:`fingerprints.triplets`) with
  their anchor peak and span (frames from the anchor to the group's last peak).

Layout on disk (one directory)::

    manifest.json                    format, generation, schemes, frame length, recordings
    keys|peaks|starts-<gen>.npy      pairs: distinct hashes, anchor peak numbers, starts
    quad_keys|peaks|spans-<gen>.npy  quads: hashes, anchor peak numbers, spans
    peak_keys|times|bins|starts-<gen>.npy  peaks: slots, frames, bins (1/16 bin), starts

A save writes a new generation of array files, then replaces ``manifest.json`` atomically
(temporary file + ``os.replace``) and only then deletes the generation before the previous
one, so a crash at any point leaves a readable index. Arrays are opened with
``mmap_mode="r"``: a large index is paged in on demand and shared between processes.

In memory each table is a large sorted *main* segment (as loaded) plus a small sorted *delta*
of recordings added since; peak numbers run through the main peaks, then the delta's. A
removal only marks the recording's slot dead, and lookups drop hits on dead slots. ``save``
merges everything into compact main segments and renumbers slots and peaks. Reads no settings.
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

_FORMAT = "copyguard-landmark-index-2"
_MANIFEST = "manifest.json"
_PREFIX = {"pairs": "", "quads": "quad_", "peaks": "peak_"}
_FAMILIES = ("peaks", "pairs", "quads")
# Fixed-point scale of stored fractional bins.
BIN_SCALE = 16


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
        self._alive: list[bool] = []
        self._slot_of: dict[int, int] = {}  # live recording_id -> slot
        self._main = {family: Segment.empty(family) for family in _FAMILIES}
        self._delta = {family: Segment.empty(family) for family in _FAMILIES}
        self._pending: dict[str, list[Segment]] = {family: [] for family in _FAMILIES}
        self._pending_peaks = 0
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
        for recording_id, duration in recordings:
            index._new_slot(int(recording_id), float(duration))
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
            "recordings": [[self._slot_ids[s], self._slot_durations[s]] for s in live_slots],
        }
        atomic_write_text(self.directory / _MANIFEST, json.dumps(manifest))
        self._remove_old_generations(generation)
        # Continue from the compacted state, so slots agree with what a reopen would see.
        ids = [self._slot_ids[slot] for slot in live_slots]
        durations = [self._slot_durations[slot] for slot in live_slots]
        self._generation = generation
        self._slot_ids, self._slot_durations = ids, durations
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
        # Peaks: drop dead slots' peaks and number the rest afresh, keeping their order.
        peak_slots = np.concatenate([self._main["peaks"].entry_keys(),
                                     self._delta["peaks"].entry_keys()])
        keep_peak = alive[peak_slots.astype(np.int64)]
        new_number = np.cumsum(keep_peak, dtype=np.int64) - 1
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
            peaks = columns["peaks"].astype(np.int64)
            keep = keep_peak[peaks]
            columns = {name: column[keep] for name, column in columns.items()}
            columns["peaks"] = new_number[peaks[keep]]
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
        tables = _recording_tables(landmarks)
        self.remove(recording_id)
        slot = self._new_slot(int(recording_id), float(duration))
        first_peak = len(self._main["peaks"]) + len(self._delta["peaks"]) + self._pending_peaks
        for family, (keys, columns) in tables.items():
            if family == "peaks":
                keys = np.full(len(keys), slot, dtype=np.uint32)
                self._pending_peaks += len(keys)
            else:
                columns["peaks"] = columns["peaks"] + first_peak
            self._pending[family].append(Segment.sorted_from(family, keys, columns))

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
        return isinstance(self._main["pairs"].columns["peaks"], np.memmap)

    def stats(self) -> IndexStats:
        self._flush_pending()
        alive = self._alive_mask()
        peaks = [np.asarray(self._main["pairs"].columns["peaks"]),
                 np.asarray(self._delta["pairs"].columns["peaks"])]
        live_hashes = int(np.count_nonzero(alive[self._peak_slots(np.concatenate(peaks))]))
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
        return QuadHits(rows, columns["slots"], columns["times"], columns["bins"],
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
        anchor peaks' "slots", "times" and "bins" added."""
        self._flush_pending()
        # Sorted keys read the sorted tables in order: about twice as fast as at random.
        order = np.argsort(query, kind="stable")
        ordered = query[order]
        parts = [segment.lookup(ordered, max_postings)
                 for segment in (self._main[family], self._delta[family]) if len(segment)]
        if not parts:
            empty = np.zeros(0, dtype=np.int64)
            names = [*PAYLOAD[family], "slots", "times", "bins"]
            return empty, {name: empty for name in names}
        rows = order[np.concatenate([part[0] for part in parts])]
        columns = {name: np.concatenate([part[1][name] for part in parts])
                   for name in PAYLOAD[family]}
        slots = self._peak_slots(columns["peaks"])
        keep = self._alive_mask()[slots]
        columns = {name: column[keep] for name, column in columns.items()}
        columns["times"], columns["bins"] = self._peak_columns(columns["peaks"])
        columns["slots"] = slots[keep]
        return rows[keep], columns

    def _peak_columns(self, numbers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(frames, fractional bins) of the peaks with these peak numbers."""
        main, delta = self._main["peaks"], self._delta["peaks"]
        in_main = numbers < len(main)
        times = np.empty(len(numbers), dtype=np.int64)
        bins = np.empty(len(numbers), dtype=np.float64)
        for segment, chosen, base in ((main, in_main, 0), (delta, ~in_main, len(main))):
            if np.any(chosen):
                where = numbers[chosen] - base
                times[chosen] = np.asarray(segment.columns["times"][where])
                bins[chosen] = np.asarray(segment.columns["bins"][where])
        return times, bins / BIN_SCALE

    def _peak_slots(self, numbers: np.ndarray) -> np.ndarray:
        main, delta = self._main["peaks"], self._delta["peaks"]
        numbers = np.asarray(numbers, dtype=np.int64)
        in_main = numbers < len(main)
        slots = np.empty(len(numbers), dtype=np.int64)
        slots[in_main] = main.key_of(numbers[in_main])
        slots[~in_main] = delta.key_of(numbers[~in_main] - len(main))
        return slots

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
        for family, pending in self._pending.items():
            if pending:
                # Slots only grow, so sorting the peaks by slot keeps their numbering.
                parts = [self._delta[family], *pending]
                keys = np.concatenate([part.keys for part in parts])
                columns = {name: np.concatenate([part.columns[name] for part in parts])
                           for name in PAYLOAD[family]}
                self._delta[family] = Segment.sorted_from(family, keys, columns)
                self._pending[family] = []
        self._pending_peaks = 0


def _recording_tables(landmarks: Landmarks) -> dict[str, tuple[np.ndarray, dict[str, np.ndarray]]]:
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
