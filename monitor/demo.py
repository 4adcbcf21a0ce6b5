"""The demonstration behind ``copyguard demo`` (and ``make run``) on the embedded default.

It registers the rights-holder "Demo Records" with a catalog of synthesised tracks, makes altered
copies of excerpts of them (as pirates would post them) next to unrelated audio and a corrupt
file, and identifies every one, so a new user sees the catalog part of the pipeline work end to
end with nothing but SQLite and local files. Running it again reuses what it made.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import select

from fingerprints import Audio, DecodeError, Match, alter, decode_file
from fingerprints.catalog import ImportOutcome, collect_audio_files, import_files
from fingerprints.metadata import RecordingMetadata
from fingerprints.synth import synthesize_track, write_wav
from ledger.errors import NotFoundError
from ledger.holders import add_holder, get_holder
from ledger.models import Recording, RecordingStatus
from monitor.app import App

HOLDER = "Demo Records"
RATE = 22050
TRACK_SECONDS = 45.0
_TITLES = ["Harbour Lights", "Copper Sky", "Night Ferry", "Paper Lanterns", "Glass Orchard",
           "Slow Comet", "Iron Meadow", "Salt Road", "Velvet Engine", "Tin Moon", "Blue Quarry",
           "Last Tram"]


@dataclass(frozen=True)
class DemoQuery:
    name: str
    alteration: str
    expected_title: str | None  # None: not in the catalog
    expected_ref_start: float | None
    expect_error: bool = False


@dataclass(frozen=True)
class DemoResult:
    query: DemoQuery
    path: Path
    match: Match | None
    title: str | None
    error: str | None

    @property
    def correct(self) -> bool:
        if self.query.expect_error:
            return self.error is not None
        if self.query.expected_title is None:
            return self.match is None
        return (self.title == self.query.expected_title and self.match is not None
                and self.query.expected_ref_start is not None
                and abs(self.match.ref_start - self.match.query_start
                        - self.query.expected_ref_start) <= 0.5)


def _ensure_holder(app: App) -> int:
    with app.ledger.write() as session:
        try:
            return get_holder(session, HOLDER).id
        except NotFoundError:
            holder = add_holder(session, app.clock, name=HOLDER, email="legal@demo-records.example",
                                address="1 Demo Street, Springfield", phone="+1 555 0100",
                                actor=app.actor)
            return holder.id


def build_catalog(app: App, folder: Path,
                  on_outcome: Callable[[ImportOutcome], None] | None = None) -> int:
    """Synthesise the demo tracks and import those not yet in the catalog; returns the holder."""
    holder_id = _ensure_holder(app)
    folder.mkdir(parents=True, exist_ok=True)
    overrides = {}
    for number, title in enumerate(_TITLES, start=1):
        path = folder / f"{number:02d} {title}.wav"
        if not path.exists():
            write_wav(path, synthesize_track(seed=number, seconds=TRACK_SECONDS,
                                             sample_rate=RATE), RATE)
        overrides[path.name] = RecordingMetadata(
            title=title, artist="The Demo Ensemble", isrc=f"XXDEM26{number:05d}",
            registration_number=f"SR0000{number:05d}", territories=("WORLD",))
    with app.ledger.read() as session:
        known = set(session.execute(select(Recording.source_name).where(
            Recording.holder_id == holder_id,
            Recording.status == RecordingStatus.ACTIVE)).scalars())
    files = [p for p in collect_audio_files([folder], [".wav"]) if p.name not in known]
    if files:
        import_files(files, holder_id=holder_id, transaction=app.ledger.write, clock=app.clock,
                     store=app.catalog_store, limits=app.decode_limits, actor=app.actor,
                     duplicate_similarity=app.settings.catalog.duplicate_similarity,
                     overrides=overrides, on_outcome=on_outcome)
    return holder_id


def _alterations(rng: np.random.Generator) -> list[tuple[str, Callable[[np.ndarray], np.ndarray]]]:
    return [
        ("10 s excerpt, untouched", lambda x: x),
        ("10 s excerpt, MP3 64 kbit/s", lambda x: alter.reencode(x, RATE, "mp3", "64k")),
        ("10 s excerpt, noise at 10 dB SNR", lambda x: alter.add_noise(x, 10, rng)),
        ("10 s excerpt, low-pass 3 kHz", lambda x: alter.lowpass(x, RATE, 3000)),
        ("10 s excerpt, Ogg Vorbis 48 kbit/s", lambda x: alter.reencode(x, RATE, "ogg", "48k")),
    ]


def make_queries(folder: Path, seed: int = 7) -> list[tuple[DemoQuery, Path]]:
    """Altered excerpts of catalog tracks, unrelated tracks and a corrupt file (made afresh each
    run, from a fixed seed)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    queries: list[tuple[DemoQuery, Path]] = []
    for number, (label, change) in enumerate(_alterations(rng)):
        track = 2 * number + 1
        title = _TITLES[track - 1]
        start = float(rng.uniform(3.0, TRACK_SECONDS - 13.0))
        path = folder / f"copy-{number + 1:02d}.wav"
        samples = synthesize_track(seed=track, seconds=TRACK_SECONDS, sample_rate=RATE)
        write_wav(path, change(alter.excerpt(samples, RATE, start, 10.0)), RATE)
        queries.append((DemoQuery(path.name, label, title, round(start, 2)), path))
    for seed_offset in (101, 102):
        path = folder / f"unrelated-{seed_offset}.wav"
        write_wav(path, synthesize_track(seed=seed_offset, seconds=12.0, sample_rate=RATE), RATE)
        queries.append((DemoQuery(path.name, "music not in the catalog", None, None), path))
    corrupt = folder / "corrupt.mp3"
    corrupt.write_bytes(b"ID3\x03\x00\x00\x00" + bytes(rng.integers(0, 256, 4000, dtype=np.uint8)))
    queries.append((DemoQuery(corrupt.name, "corrupt file", None, None, expect_error=True),
                    corrupt))
    return queries


def identify_queries(app: App, queries: list[tuple[DemoQuery, Path]]) -> list[DemoResult]:
    matcher = app.matcher()
    limits = app.decode_limits
    with app.ledger.read() as session:
        titles = dict(session.execute(select(Recording.id, Recording.title)).all())
    results = []
    for query, path in queries:
        try:
            audio: Audio = decode_file(path, timeout=limits.timeout_seconds,
                                       memory_limit_mb=limits.memory_limit_mb,
                                       max_seconds=limits.max_seconds)
        except DecodeError as exc:
            results.append(DemoResult(query, path, None, None, str(exc)))
            continue
        match = matcher.match(audio)
        results.append(DemoResult(query, path, match,
                                  titles.get(match.recording_id) if match else None, None))
    return results
