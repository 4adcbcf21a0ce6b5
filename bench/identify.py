"""``make bench-identify``: how well and how fast copyguard identifies altered music.

Run as ``python -m bench.identify [--quick] [--scales 1,10,100] ...`` (``--help`` lists every
option). It installs the corpus packages when missing (bench.corpus), fingerprints the catalog
(bench.catalog), makes or reuses the query set (bench.queries), and for each scale builds an
index grown with distractors (bench.distractors) and matches every query (bench.scale). The
scores (bench.results) go to ``bench/results/identify-<time>.json`` and, for a full run, into
``BENCHMARKS.md`` between its identify markers (bench.report). Progress goes to stderr; the
markdown tables are printed on stdout at the end. Reads no copyguard settings: the matcher runs
with its own defaults unless ``--min-confidence`` is given.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import corpus, distractors, report
from bench.audio import UnrelatedMusic
from bench.cases import LATENCY_CASE, all_cases
from bench.catalog import fingerprint_tracks
from bench.measure import begin_run, describe_machine
from bench.queries import QueryPlan, QuerySet, load_or_make
from bench.repeats import SameAudio
from bench.results import score
from bench.scale import build_index, run_queries

log = logging.getLogger("bench.identify")

REPO = Path(__file__).resolve().parent.parent
FULL_NEGATIVES = {"speech": 60, "music": 60, "synth": 40, "noise": 40, "silence": 20}
QUICK_NEGATIVES = {"speech": 8, "music": 8, "synth": 6, "noise": 6, "silence": 2}


@dataclass(frozen=True)
class Options:
    scales: tuple[int, ...]
    quick: bool
    workers: int
    seed: int
    tolerance: float
    min_confidence: float | None
    excerpts: int
    scaled_excerpts: int | None  # excerpts per track and case matched at scales above 1
    tracks: int | None
    cases: tuple[str, ...] | None
    cache: Path
    results: Path
    document: Path | None  # BENCHMARKS.md to update, None: do not


def parse_options(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.identify", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", default="1,10,100",
                        help="catalog sizes to run, as multiples of the catalog (default 1,10,100)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 6 tracks, 2 excerpts per track and case, 30 negatives;"
                             " BENCHMARKS.md is left alone")
    parser.add_argument("--workers", type=int, default=2,
                        help="processes for fingerprinting and matching (default 2)")
    parser.add_argument("--seed", type=int, default=20240917, help="seed of the query set")
    parser.add_argument("--tolerance", type=float, default=1.0,
                        help="seconds ref_start may be off for a correct answer (default 1.0)")
    parser.add_argument("--min-confidence", type=float, default=None,
                        help="Matcher min_confidence (default: the Matcher's own default)")
    parser.add_argument("--excerpts", type=int, default=None,
                        help="excerpts per track and case (default 5, --quick 2)")
    parser.add_argument("--scaled-excerpts", type=int, default=None,
                        help="match only the first N excerpts per track and case at scales "
                             "above 1 (default: all), to fit the larger catalogs in less time")
    parser.add_argument("--tracks", type=int, default=None,
                        help="use only this many catalog tracks, evenly spread (default all)")
    parser.add_argument("--cases", default=None,
                        help="comma-separated case names to run (default all)")
    parser.add_argument("--cache", type=Path, default=REPO / "bench" / "cache",
                        help="cache of query sets, distractor landmarks and indexes")
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results",
                        help="directory of the JSON results")
    parser.add_argument("--write-doc", dest="write_doc", action="store_true", default=None,
                        help="update BENCHMARKS.md even for --quick or partial runs")
    parser.add_argument("--no-write-doc", dest="write_doc", action="store_false",
                        help="leave BENCHMARKS.md alone")
    args = parser.parse_args(argv)
    try:
        scales = tuple(sorted({int(part) for part in args.scales.split(",") if part.strip()}))
    except ValueError:
        parser.error(f"--scales takes comma-separated integers, not {args.scales!r}")
    if not scales or min(scales) < 1:
        parser.error("--scales must name at least one size of 1 or more")
    cases = tuple(c.strip() for c in args.cases.split(",")) if args.cases else None
    known = {case.name for case in all_cases()}
    if cases and not set(cases) <= known:
        parser.error(f"unknown cases {sorted(set(cases) - known)}; known: {sorted(known)}")
    partial = args.quick or cases is not None or args.tracks is not None
    write_doc = (not partial) if args.write_doc is None else args.write_doc
    return Options(
        scales=scales, quick=args.quick, workers=max(1, args.workers), seed=args.seed,
        tolerance=args.tolerance, min_confidence=args.min_confidence,
        excerpts=args.excerpts or (2 if args.quick else 5), scaled_excerpts=args.scaled_excerpts,
        tracks=args.tracks or (6 if args.quick else None), cases=cases,
        cache=args.cache, results=args.results,
        document=REPO / "BENCHMARKS.md" if write_doc else None,
    )


def run(options: Options, command: str,
        publish: Callable[[report.BenchReport], None]) -> report.BenchReport:
    """Run the benchmark; ``publish`` gets the report after every scale (a long run that is
    stopped keeps what it measured)."""
    started = time.perf_counter()
    machine = describe_machine(REPO)
    options.cache.mkdir(parents=True, exist_ok=True)
    library = distractors.code_key()
    corpus.ensure_packages()
    catalog = corpus.package_tracks(corpus.CATALOG_PACKAGE)
    if options.tracks is not None and options.tracks < len(catalog):
        step = len(catalog) / options.tracks
        catalog = [catalog[int(i * step)] for i in range(options.tracks)]
        log.info("catalog limited to %d tracks: %s", len(catalog),
                 ", ".join(track.name for track in catalog))
    unrelated_tracks = corpus.package_tracks(corpus.UNRELATED_PACKAGE)
    unrelated = UnrelatedMusic(tuple(t.path for t in unrelated_tracks),
                               tuple(t.duration for t in unrelated_tracks))
    cases = tuple(c for c in all_cases() if options.cases is None or c.name in options.cases)
    prints = fingerprint_tracks(catalog, options.workers)
    same_audio = SameAudio(catalog)  # answers at a repeat of the passage (bench.repeats)

    phase = time.perf_counter()
    plan = QueryPlan(cases, options.excerpts,
                     QUICK_NEGATIVES if options.quick else FULL_NEGATIVES, options.seed)
    query_set = load_or_make(plan, catalog, unrelated, options.cache, options.workers)
    query_seconds = time.perf_counter() - phase
    for note in report.summarise_skipped(query_set.skipped):
        log.info("not a query source: %s", note)

    scales: list[report.ScaleReport] = []

    def result(done: list[report.ScaleReport]) -> report.BenchReport:
        return report.BenchReport(
            machine=machine, command=command, quick=options.quick, seed=options.seed,
            tolerance=options.tolerance, workers=options.workers, catalog=tuple(catalog),
            prints=prints, cases=cases, queries=query_set.queries, skipped=query_set.skipped,
            query_seconds=query_seconds, scales=tuple(done),
            wall_seconds=time.perf_counter() - started,
            library_code=library, library_changed=distractors.code_key() != library,
        )

    for scale in options.scales:
        phase = time.perf_counter()
        specs = distractors.plan(catalog, prints.audio_seconds, scale)
        shards, cost = distractors.ensure_shards(specs, options.cache, options.workers)
        # A directory of this run's own: concurrent runs may share the cache.
        directory = Path(tempfile.mkdtemp(prefix=f"index-x{scale}-", dir=options.cache))
        try:
            build = build_index(directory, scale, prints, shards)
            log.info("scale x%d: %d recordings, %.1f h, %d hashes, built in %.0f s", scale,
                     build.recordings, build.audio_seconds / 3600, build.hashes,
                     build.build_seconds)
            matched = _subset(query_set, options.scaled_excerpts if scale > 1 else None)
            scale_run = run_queries(directory, build, matched, LATENCY_CASE,
                                    options.workers, options.min_confidence)
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        scored = score(scale_run, matched.queries, cases, options.tolerance, same_audio)
        excerpts = min(options.excerpts, options.scaled_excerpts or options.excerpts)
        scales.append(report.ScaleReport(scale_run, scored, cost, time.perf_counter() - phase,
                                         excerpts if scale > 1 else options.excerpts))
        log.info("scale x%d done in %.0f s: mean top-1 %.1f %%, negatives matched %.1f %%",
                 scale, scales[-1].wall_seconds, 100 * scored.mean_accuracy,
                 100 * scored.negative_false_positive_rate)
        publish(result(scales))
    if distractors.code_key() != library:
        log.warning("the fingerprints package changed during the run: figures may mix versions")
    return result(scales)


def _subset(query_set: QuerySet, excerpts: int | None) -> QuerySet:
    """The negatives and the first ``excerpts`` excerpts of every track and case."""
    if excerpts is None:
        return query_set
    kept = tuple(q for q in query_set.queries
                 if q.recording_id is None or int(q.query_id.rsplit("-", 1)[1]) < excerpts)
    return dataclasses.replace(query_set, queries=kept)


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    command = begin_run("bench-identify", arguments)
    options = parse_options(arguments)
    json_path = report.results_path(options.results, options.quick)
    published: list[str] = []

    def publish(partial: report.BenchReport) -> None:
        report.write_json(partial, json_path)
        markdown = report.markdown(partial)
        if options.document is not None:
            report.update_document(options.document, markdown)
        published[:] = [markdown]
        log.info("results so far written to %s%s", json_path,
                 f" and {options.document.name}" if options.document is not None else "")

    try:
        run(options, command, publish)
    except corpus.CorpusError as error:
        log.error("%s", error)
        return 2
    if options.document is None:
        log.info("BENCHMARKS.md left alone (partial run; --write-doc forces it)")
    sys.stdout.write("".join(published) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
