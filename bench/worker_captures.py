"""The pending captures of ``make bench-workers`` (bench.workers): excerpts of the catalog.

:func:`capture_files` cuts ``copies`` excerpts of 20-30 s from the tracks of
``wesnoth-1.16-music`` (decoded at 44.1 kHz), each altered one of the :data:`KINDS` ways and
encoded as an upload would be (MP3), plus ``others`` synthesised tracks no catalog holds. They
are written once under ``bench/cache/worker-captures-<key>/`` (the key hashes the inputs, the
track list and ``fingerprints/alter.py``); ``manifest.json``, written last, marks a complete
set. :func:`record_captures` stores them as the crawler does: blob and WARC records through
the evidence store, then the capture row, by :class:`monitor.crawl.ledger_sink.LedgerSink`
itself. Reads no settings.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import select

from bench.corpus import Track
from fingerprints import alter, decode_file
from fingerprints.synth import synthesize_track
from ledger.clock import Clock
from ledger.db import Ledger
from ledger.evidence import EvidenceStore, Exchange
from ledger.models import CrawlStatus, Target
from monitor.crawl.ledger_sink import LedgerSink, RevisitPolicy

RATE = 44100
SYNTH_RATE = 22050
MIN_SECONDS, MAX_SECONDS = 20.0, 30.0
# How the copies are altered, in turn: (name, speed factor, pitch semitones, white-noise SNR
# in dB or None, MP3 bitrate).
KINDS: tuple[tuple[str, float, float, float | None, str], ...] = (
    ("MP3 128k", 1.0, 0.0, None, "128k"),
    ("MP3 64k", 1.0, 0.0, None, "64k"),
    ("white noise 10 dB, MP3 64k", 1.0, 0.0, 10.0, "64k"),
    ("speed +3 %, MP3 128k", 1.03, 0.0, None, "128k"),
    ("pitch +1 st, MP3 128k", 1.0, 1.0, None, "128k"),
)
UNRELATED_SEED = 800_000
_VERSION = 1  # bump when the way files are made changes


@dataclass(frozen=True)
class CaptureFile:
    name: str  # file name in the set's folder
    kind: str  # a KINDS name, or "not in the catalog"
    track: str | None  # the catalog track's file stem it is cut from
    start: float  # seconds into the track
    seconds: float  # length of the source cut (before a speed change)


def capture_files(cache: Path, tracks: Sequence[Track], copies: int, others: int,
                  seed: int) -> tuple[Path, list[CaptureFile]]:
    """The set's folder and its files (made if they are not cached yet)."""
    usable = [t for t in tracks if t.duration >= MAX_SECONDS + 10]
    digest = hashlib.sha256(Path(alter.__file__).read_bytes())
    digest.update(json.dumps({"copies": copies, "others": others, "seed": seed,
                              "version": _VERSION,
                              "tracks": [(t.path.name, round(t.duration, 1)) for t in usable]},
                             sort_keys=True).encode())
    folder = cache / f"worker-captures-{digest.hexdigest()[:12]}"
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        files = [CaptureFile(**entry) for entry in manifest]
        if all((folder / f.name).is_file() for f in files):
            return folder, files
    except (OSError, ValueError, TypeError):
        pass
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    files = _make(folder, usable, copies, others, np.random.default_rng(seed))
    (folder / "manifest.json.part").write_text(json.dumps([asdict(f) for f in files], indent=1))
    (folder / "manifest.json.part").replace(folder / "manifest.json")
    return folder, files


def _make(folder: Path, tracks: Sequence[Track], copies: int, others: int,
          rng: np.random.Generator) -> list[CaptureFile]:
    plan: dict[int, list[int]] = {}  # track index -> the copies cut from it
    for number in range(copies):
        plan.setdefault(number % len(tracks), []).append(number)
    made: dict[int, CaptureFile] = {}
    for index, numbers in plan.items():
        track = tracks[index]
        samples = decode_file(track.path, sample_rate=RATE).samples  # each track once
        for number in numbers:
            kind, speed, pitch, snr, bitrate = KINDS[number % len(KINDS)]
            seconds = float(rng.uniform(MIN_SECONDS, MAX_SECONDS))
            start = float(rng.uniform(1.0, track.duration - seconds - 2.0))
            cut = alter.excerpt(samples, RATE, start, seconds)
            if speed != 1.0:
                cut = alter.change_speed(cut, RATE, speed)
            if pitch:
                cut = alter.shift_pitch(cut, RATE, pitch)
            if snr is not None:
                cut = alter.add_noise(cut, snr, rng)
            name = f"copy-{number:03d}.mp3"
            (folder / name).write_bytes(alter.encode(cut, RATE, "mp3", bitrate))
            made[number] = CaptureFile(name, kind, track.path.stem, round(start, 2),
                                       round(seconds, 2))
    files = [made[number] for number in range(copies)]
    for number in range(others):
        seconds = float(rng.uniform(MIN_SECONDS, MAX_SECONDS))
        samples = synthesize_track(UNRELATED_SEED + number, seconds, SYNTH_RATE)
        name = f"other-{number:03d}.mp3"
        (folder / name).write_bytes(alter.encode(samples, SYNTH_RATE, "mp3", "128k"))
        files.append(CaptureFile(name, "not in the catalog", None, 0.0, round(seconds, 2)))
    return files


def record_captures(ledger: Ledger, evidence: EvidenceStore, clock: Clock, target_name: str,
                    folder: Path, files: Sequence[CaptureFile]) -> dict[int, CaptureFile]:
    """One finished crawl of ``target_name`` that captured every file: evidence first, then
    the rows, as the spider's sink writes them. Capture id -> its file."""
    with ledger.read() as session:
        target = session.execute(select(Target).where(Target.name == target_name)).scalar_one()
        sink = LedgerSink(ledger, evidence, clock, target,
                          RevisitPolicy(pages=timedelta(days=1), media=timedelta(days=30)),
                          actor="bench")
    page = "https://uploads.example/latest.html"
    captured: dict[int, CaptureFile] = {}
    for file in files:
        body = (folder / file.name).read_bytes()
        url = f"https://uploads.example/media/{file.name}"
        exchange = Exchange(
            url=url, method="GET", request_headers=[("User-Agent", "copyguard-bench")],
            status=200, reason="OK",
            response_headers=[("Content-Type", "audio/mpeg"),
                              ("Content-Length", str(len(body)))],
            body=body, fetched_at=clock.now(), ip_address="127.0.0.1")
        capture_id = sink.record_capture(exchange, body, page_url=page, via="link",
                                         page_location=None, content_type="audio/mpeg")
        if capture_id is None:
            raise RuntimeError(f"{file.name} was not captured (the same bytes twice?)")
        captured[capture_id] = file
    sink.finish(CrawlStatus.FINISHED)
    return captured
