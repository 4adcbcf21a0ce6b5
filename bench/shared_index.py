"""``make bench-shared-index``: the local index replica against the index kept in PostgreSQL.

Run as ``python -m bench.shared_index [--scales 1,10] [--excerpts 2] ...`` (``--help`` lists
every option). The same catalog (the 41 tracks of ``wesnoth-1.16-music``, grown for scales
above 1 with the cached distractors of :mod:`bench.distractors`) is loaded into a
:class:`~fingerprints.FingerprintIndex` (saved, then reopened memory-mapped, as a worker opens
it) and into a :class:`~fingerprints.SqlFingerprintIndex` in a schema of its own on PostgreSQL
(dropped at the end). Queries are 10 s excerpts of the :mod:`bench.cases` cases clean, MP3,
speed +3 % and pitch +1 st (made and cached by :mod:`bench.queries`) plus synthesized-music
and noise negatives. Each query's landmarks are extracted once and matched by both engines in
turn (alternating which goes first), so the timings compare the index and nothing else.
Results go to stdout and, unless ``--no-write-doc``, into ``BENCHMARKS.md`` between the
shared-index markers. Reads no copyguard settings.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, text

from bench import corpus, distractors
from bench.audio import UnrelatedMusic
from bench.cases import Query, all_cases
from bench.catalog import CatalogPrints, fingerprint_tracks
from bench.measure import begin_run, describe_machine
from bench.queries import QueryPlan, QuerySet, load_or_make
from bench.shared_report import (
    Answer,
    EngineRun,
    Report,
    ScaleResult,
    markdown,
    update_document,
)
from fingerprints import (
    SAMPLE_RATE,
    Audio,
    FingerprintIndex,
    Landmarks,
    Matcher,
    SearchIndex,
    SqlFingerprintIndex,
    extract_query_landmarks,
)
from ledger.db import create_ledger_engine, migrate

log = logging.getLogger("bench.shared_index")

REPO = Path(__file__).resolve().parent.parent
CASES = ("clean10", "mp3-64k", "speed+3", "pitch+1")
NEGATIVES = {"synth": 10, "noise": 10}
WARM_UP_QUERIES = 5
DEFAULT_URL = os.environ.get("COPYGUARD_TEST_POSTGRES_URL",
                             "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@dataclass(frozen=True)
class Options:
    scales: tuple[int, ...]
    excerpts: int
    workers: int
    seed: int
    tolerance: float
    tracks: int | None
    database_url: str
    cache: Path
    document: Path | None


def parse_options(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.shared_index", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", default="1,10",
                        help="catalog sizes, as multiples of the catalog (default 1,10)")
    parser.add_argument("--excerpts", type=int, default=2,
                        help="excerpts per track and case (default 2)")
    parser.add_argument("--workers", type=int, default=2,
                        help="processes for fingerprinting and making queries (default 2)")
    parser.add_argument("--seed", type=int, default=20240917, help="seed of the query set")
    parser.add_argument("--tolerance", type=float, default=1.0,
                        help="seconds ref_start may be off for a correct answer (default 1.0)")
    parser.add_argument("--tracks", type=int, default=None,
                        help="use only this many catalog tracks (smoke runs; implies "
                             "--no-write-doc)")
    parser.add_argument("--database-url", default=DEFAULT_URL,
                        help="PostgreSQL to load (a schema of its own is made and dropped; "
                             "default $COPYGUARD_TEST_POSTGRES_URL or the local test database)")
    parser.add_argument("--cache", type=Path, default=REPO / "bench" / "cache",
                        help="cache of query sets and distractor landmarks")
    parser.add_argument("--no-write-doc", action="store_true", help="leave BENCHMARKS.md alone")
    args = parser.parse_args(argv)
    try:
        scales = tuple(sorted({int(part) for part in args.scales.split(",") if part.strip()}))
    except ValueError:
        parser.error(f"--scales takes comma-separated integers, not {args.scales!r}")
    if not scales or min(scales) < 1:
        parser.error("--scales must name at least one size of 1 or more")
    write = not args.no_write_doc and args.tracks is None
    return Options(scales=scales, excerpts=max(1, args.excerpts), workers=max(1, args.workers),
                   seed=args.seed, tolerance=args.tolerance, tracks=args.tracks,
                   database_url=args.database_url, cache=args.cache,
                   document=REPO / "BENCHMARKS.md" if write else None)


def run(options: Options, command: str) -> Report:
    started = time.perf_counter()
    machine = describe_machine(REPO)
    options.cache.mkdir(parents=True, exist_ok=True)
    corpus.ensure_packages((corpus.CATALOG_PACKAGE,))
    catalog = corpus.package_tracks(corpus.CATALOG_PACKAGE)
    if options.tracks is not None and options.tracks < len(catalog):
        catalog = catalog[:: max(1, len(catalog) // options.tracks)][: options.tracks]
    prints = fingerprint_tracks(catalog, options.workers)
    cases = tuple(case for case in all_cases() if case.name in CASES)
    plan = QueryPlan(cases, options.excerpts, NEGATIVES, options.seed)
    query_set = load_or_make(plan, catalog, UnrelatedMusic((), ()), options.cache,
                             options.workers)
    log.info("extracting the landmarks of %d queries", len(query_set.queries))
    queries = _query_landmarks(query_set)
    server = ""
    scales = []
    with _database(options.database_url) as engine:
        with engine.connect() as connection:
            server = "PostgreSQL {} (shared_buffers {})".format(
                connection.execute(text("SHOW server_version")).scalar_one(),
                connection.execute(text("SHOW shared_buffers")).scalar_one())
        for scale in options.scales:
            scales.append(_run_scale(scale, catalog, prints, queries, engine, options))
            log.info("scale x%d done", scale)
    return Report(machine=machine, command=command, server=server, catalog_tracks=len(catalog),
                  catalog_seconds=prints.audio_seconds, cases=cases, queries=query_set.queries,
                  scales=tuple(scales), tolerance=options.tolerance,
                  wall_seconds=time.perf_counter() - started)


def _query_landmarks(query_set: QuerySet) -> list[tuple[Query, Landmarks, float]]:
    """Each query with its landmarks and the seconds extracting them took."""
    found = []
    for query in query_set.queries:
        audio = Audio(query_set.samples(query), SAMPLE_RATE)
        began = time.perf_counter()
        landmarks = extract_query_landmarks(audio)
        found.append((query, landmarks, time.perf_counter() - began))
    return found


@contextmanager
def _database(url: str) -> Iterator[Engine]:
    """An engine on a fresh schema of the server at ``url``, migrated; the schema is dropped
    at the end. Made like the ledger's engine (pool pre-ping included), as a worker's is."""
    schema = f"bench_shared_index_{os.getpid()}"
    admin = create_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in url else "?"
    engine = create_ledger_engine(f"{url}{separator}options=-csearch_path%3D{schema}")
    try:
        migrate(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


def _recordings(scale: int, prints: CatalogPrints, catalog: Sequence[corpus.Track],
                options: Options) -> Iterator[tuple[int, Landmarks, float]]:
    for track in prints.tracks:
        yield track.recording_id, track.landmarks, track.duration
    specs = distractors.plan(catalog, prints.audio_seconds, scale)
    shards, _ = distractors.ensure_shards(specs, options.cache, options.workers)
    for use in shards:
        yield from distractors.load_shard(use.path)[: use.take]


def _run_scale(scale: int, catalog: Sequence[corpus.Track], prints: CatalogPrints,
               queries: list[tuple[Query, Landmarks, float]], engine: Engine,
               options: Options) -> ScaleResult:
    recordings = list(_recordings(scale, prints, catalog, options))
    audio_seconds = sum(duration for _, _, duration in recordings)
    log.info("scale x%d: %d recordings, %.1f h", scale, len(recordings), audio_seconds / 3600)
    directory = Path(tempfile.mkdtemp(prefix=f"shared-x{scale}-", dir=options.cache))
    try:
        began = time.perf_counter()
        local = FingerprintIndex.open(directory)
        for recording_id, landmarks, duration in recordings:
            local.add(recording_id, landmarks, duration)
        local.save()
        local_build = time.perf_counter() - began
        local = FingerprintIndex.open(directory)  # memory-mapped, as a worker opens it
        log.info("scale x%d: local index built in %.1f s", scale, local_build)

        database = SqlFingerprintIndex(engine)
        database.clear()
        began = time.perf_counter()
        for number, (recording_id, landmarks, duration) in enumerate(recordings, start=1):
            database.add(recording_id, landmarks, duration)
            if number % 100 == 0:
                log.info("scale x%d: %d/%d recordings in PostgreSQL", scale, number,
                         len(recordings))
        database_build = time.perf_counter() - began
        began = time.perf_counter()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE index_recordings, index_pairs, index_quads"))
        settle = time.perf_counter() - began
        log.info("scale x%d: PostgreSQL index loaded in %.1f s, VACUUM ANALYZE %.1f s", scale,
                 database_build, settle)
        load_average = os.getloadavg()[0]
        runs = _match_all({"local": local, "database": database}, queries, options.tolerance)
        local_stats, database_stats = local.stats(), database.stats()
        with engine.connect() as connection:
            tables = {name: (int(rows), int(heap), int(indexes))
                      for name, rows, heap, indexes in connection.execute(text(
                          "SELECT relname, reltuples, pg_table_size(oid), pg_indexes_size(oid) "
                          "FROM pg_class WHERE relname IN ('index_recordings', 'index_pairs', "
                          "'index_quads') AND relnamespace = to_regnamespace(current_schema())"))}
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    engines = (
        EngineRun("local replica", local_build, 0.0, local_stats.bytes_on_disk,
                  local_stats.hashes, runs["local"]),
        EngineRun("PostgreSQL", database_build, settle, database_stats.bytes_on_disk,
                  database_stats.hashes, runs["database"]),
    )
    return ScaleResult(scale=scale, recordings=len(recordings), audio_seconds=audio_seconds,
                       engines=engines, load_average=load_average, tables=tables,
                       extraction=tuple(seconds for _, _, seconds in queries))


class _Timed:
    """An index whose lookups are timed: seconds spent in ``lookup``, in ``lookup_quads`` and
    in every other method the matcher calls, summed until :meth:`take`."""

    def __init__(self, index: SearchIndex) -> None:
        self._index = index
        self._spent = {"lookup": 0.0, "lookup_quads": 0.0, "other": 0.0}

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._index, name)
        if not callable(found):
            return found
        return self._timed(found, name if name in self._spent else "other")

    def _timed(self, method: Callable[..., Any], bucket: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self._spent[bucket] += time.perf_counter() - began
        return call

    def __len__(self) -> int:
        return int(self._timed(self._index.__len__, "other")())

    def take(self) -> tuple[float, float, float]:
        spent = (self._spent["lookup"], self._spent["lookup_quads"], self._spent["other"])
        self._spent = dict.fromkeys(self._spent, 0.0)
        return spent


def _match_all(indexes: dict[str, SearchIndex], queries: list[tuple[Query, Landmarks, float]],
               tolerance: float) -> dict[str, tuple[Answer, ...]]:
    """Every query matched by every engine in turn (the first one alternating), after a few
    untimed warm-up queries."""
    timed = {name: _Timed(index) for name, index in indexes.items()}
    matchers = {name: Matcher(index) for name, index in timed.items()}
    for _, landmarks, _ in queries[:WARM_UP_QUERIES]:
        for matcher in matchers.values():
            matcher.match_landmarks(landmarks, limit=1)
    answers: dict[str, list[Answer]] = {name: [] for name in matchers}
    names = list(matchers)
    for number, (query, landmarks, _) in enumerate(queries):
        for name in names if number % 2 == 0 else names[::-1]:
            matcher = matchers[name]
            timed[name].take()
            began = time.perf_counter()
            found = matcher.match_landmarks(landmarks, limit=1)
            seconds = time.perf_counter() - began
            best = found[0] if found and found[0].confidence >= matcher.min_confidence else None
            answers[name].append(Answer.of(query, best, seconds, tolerance, timed[name].take()))
    return {name: tuple(found) for name, found in answers.items()}


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    command = begin_run("bench-shared-index", arguments)
    options = parse_options(arguments)
    try:
        report = run(options, command)
    except corpus.CorpusError as error:
        log.error("%s", error)
        return 2
    section = markdown(report)
    if options.document is not None:
        update_document(options.document, section)
        log.info("results written to %s", options.document.name)
    sys.stdout.write(section + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
