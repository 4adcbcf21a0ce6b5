"""``make bench-workers``: identify throughput with 1, 2 and 4 worker processes on PostgreSQL.

Run as ``python -m bench.workers [--processes 1,2,4] [--repeats 3] [--copies 80] ...``
(``--help`` lists every option). Set-up, once: a scratch database on the PostgreSQL server
(created and dropped by the script), a ``COPYGUARD_HOME`` in a temporary folder, the tracks of
``wesnoth-1.16-music`` registered with ``catalog import`` into the index kept in the database
(``matching.index = "database"``, the mode for many workers: none builds anything), and one
finished crawl whose captures wait for identification: ``--copies`` excerpts of catalog tracks
(20-30 s, altered in turn as bench.worker_captures.KINDS says) and ``--others`` files no
catalog holds, stored by the crawler's own sink (evidence blob and WARC records, then the row).

Then, for each repeat and each process count K (the order turned each repeat, so that a change
in the machine's load falls on every K alike): every capture is set back to pending (its
detections deleted), ``copyguard worker --stage identify --processes K`` starts as a process of
its own, the ledger is polled until no capture is pending, and the worker is stopped with
SIGTERM. Measured: the wall time from the start of the command to an empty queue (start-up
included) and from the first capture done to the last (steady state), captures and seconds of
audio per wall second, the worker's CPU (``wait4``: it and its reaped children, the identify
processes and their ffmpeg decoders), and the CPU of the PostgreSQL backends serving the
scratch database (``/proc``). Checked after every run: each capture identified exactly once
(claimed once, ``attempts`` 1, its own ``identify_seconds``; one ``detection.created`` audit
entry per detection) and the copies found as the right recording. Results go to
``bench/results/workers-<time>.json`` and, unless ``--no-write-doc``, into ``BENCHMARKS.md``
between its workers markers. Reads no copyguard settings of the caller: the worker gets its own.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import delete, func, select, update

from bench import corpus
from bench.crawl import Copyguard, CopyguardError
from bench.database import (
    Backends,
    database_counters,
    libpq_url,
    scratch_database,
    server_description,
)
from bench.measure import begin_run, describe_machine
from bench.report import write_section
from bench.snapshot import describe_code, from_snapshot, repository, snapshot_commit
from bench.worker_captures import KINDS, CaptureFile, capture_files, record_captures
from bench.workers_report import BEGIN, END, Report, Run, markdown
from config import load_settings
from ledger.models import AuditEntry, Capture, Detection, IdentifyStatus
from monitor.app import App, build_app
from monitor.identify_stage import IdentifyStage

log = logging.getLogger("bench.workers")

REPO = repository(Path(__file__).resolve().parent.parent)
HOLDER = "Bench Records"
TARGET = "uploads"
POLL_SECONDS = 0.1  # how often the queue is looked at
RUN_TIMEOUT = 1800.0  # a run that has not emptied the queue by then is a failure
DEFAULT_URL = os.environ.get("COPYGUARD_TEST_POSTGRES_URL",
                             "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@dataclass(frozen=True)
class Options:
    processes: tuple[int, ...]
    repeats: int
    copies: int
    others: int
    seed: int
    index: str
    tracks: int | None
    database_url: str
    cache: Path
    results: Path
    document: Path | None


def parse_options(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.workers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", default="1,2,4",
                        help="identify process counts to measure (default 1,2,4)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per count (default 3)")
    parser.add_argument("--copies", type=int, default=80,
                        help="captures that are altered catalog excerpts (default 80)")
    parser.add_argument("--others", type=int, default=16,
                        help="captures of music no catalog holds (default 16)")
    parser.add_argument("--seed", type=int, default=20261203, help="seed of the excerpts")
    parser.add_argument("--index", choices=("database", "local"), default="database",
                        help="matching.index of the workers (default database, the shared one)")
    parser.add_argument("--tracks", type=int, default=None,
                        help="register only this many catalog tracks (smoke runs; implies "
                             "--no-write-doc)")
    parser.add_argument("--database-url", default=DEFAULT_URL,
                        help="a PostgreSQL server to make the scratch database on (default "
                             "$COPYGUARD_TEST_POSTGRES_URL or the local test database)")
    parser.add_argument("--cache", type=Path, default=REPO / "bench" / "cache",
                        help="where the capture files are kept for reruns")
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results",
                        help="directory of the JSON results")
    parser.add_argument("--no-write-doc", action="store_true", help="leave BENCHMARKS.md alone")
    parser.add_argument("--working-tree", action="store_true",
                        help="run the working tree's code (default: HEAD's product packages, "
                             "exported by bench.snapshot, so edits meanwhile do not reach the "
                             "processes it starts)")
    args = parser.parse_args(argv)
    try:
        counts = tuple(sorted({int(p) for p in args.processes.split(",") if p.strip()}))
    except ValueError:
        parser.error(f"--processes takes comma-separated integers, not {args.processes!r}")
    if not counts or min(counts) < 1 or max(counts) > 64 or args.repeats < 1:
        parser.error("--processes must be between 1 and 64 and --repeats at least 1")
    if args.copies < 1 or args.others < 0:
        parser.error("--copies must be at least 1 and --others at least 0")
    default = (args.processes == "1,2,4" and args.repeats >= 3 and args.index == "database"
               and args.tracks is None)
    return Options(processes=counts, repeats=args.repeats, copies=args.copies,
                   others=args.others, seed=args.seed, index=args.index, tracks=args.tracks,
                   database_url=args.database_url, cache=args.cache, results=args.results,
                   document=REPO / "BENCHMARKS.md" if default and not args.no_write_doc
                   else None)


# --- one run -----------------------------------------------------------------------------------

def reset(app: App) -> int:
    """Every capture pending again, as the crawl left it; the id of the last audit entry."""
    with app.ledger.write() as session:
        session.execute(delete(Detection))
        session.execute(update(Capture).values(
            identify_status=IdentifyStatus.PENDING, claimed_by=None, lease_until=None,
            attempts=0, identified_at=None, audio_seconds=None, identify_seconds=None,
            error=None))
        return int(session.scalar(select(func.max(AuditEntry.seq))) or 0)


def _pending(connection: psycopg.Connection[Any]) -> int:
    row = connection.execute("SELECT count(*) FROM captures WHERE identify_status = %s",
                             (IdentifyStatus.PENDING,)).fetchone()
    return int(row[0]) if row else 0


def one_run(app: App, env: dict[str, str], home: Path, processes: int, number: int,
            server_url: str, database: tuple[str, str], captured: dict[int, CaptureFile],
            expected: dict[str, int], log_path: Path) -> Run:
    url, name = database
    last_audit = reset(app)
    with psycopg.connect(libpq_url(url), autocommit=True) as poll:
        backend = poll.execute("SELECT pg_backend_pid()").fetchone()
        backends = Backends(name, {int(backend[0])} if backend else set())
        backends.look(first=True)
        before = database_counters(server_url, name)
        load = os.getloadavg()[0]
        with log_path.open("a") as stderr:
            started = time.time()
            worker = subprocess.Popen(
                [sys.executable, "-m", "monitor", "worker", "--stage", "identify",
                 "--processes", str(processes)], env=env, cwd=home,
                stdout=subprocess.DEVNULL, stderr=stderr, text=True)
        polls = 1
        try:
            next_look = 0.0
            while _pending(poll) > 0:
                polls += 1
                if worker.poll() is not None:
                    raise CopyguardError(f"the worker exited with {worker.returncode}: "
                                         f"{log_path.read_text()[-2000:]}")
                if time.time() - started > RUN_TIMEOUT:
                    raise CopyguardError(f"captures still pending after {RUN_TIMEOUT:.0f} s")
                if time.monotonic() > next_look:
                    backends.look()
                    next_look = time.monotonic() + 0.5
                time.sleep(POLL_SECONDS)
            emptied = time.time()
            backends.look()
        finally:
            stopping = time.monotonic()
            worker.send_signal(signal.SIGTERM)
            _, status, usage = os.wait4(worker.pid, 0)
            worker.returncode = os.waitstatus_to_exitcode(status)
            stop_seconds = time.monotonic() - stopping
    time.sleep(1.0)  # the backends' statistics are flushed when they end
    after = database_counters(server_url, name)
    return _checked_run(app, processes, number, load, started, emptied, stop_seconds,
                        worker.returncode, usage.ru_utime + usage.ru_stime,
                        backends.cpu_seconds(), after.commits - before.commits - polls,
                        after.active_ms - before.active_ms, last_audit, captured, expected)


def _checked_run(app: App, processes: int, number: int, load: float, started: float,
                 emptied: float, stop_seconds: float, exit_code: int, cpu: float,
                 database_cpu: float, commits: int, active_ms: float, last_audit: int,
                 captured: dict[int, CaptureFile], expected: dict[str, int]) -> Run:
    with app.ledger.read() as session:
        rows = list(session.execute(select(
            Capture.id, Capture.identify_status, Capture.claimed_by, Capture.attempts,
            Capture.identified_at, Capture.audio_seconds, Capture.identify_seconds)))
        found = [(c, r) for c, r in session.execute(
            select(Detection.capture_id, Detection.recording_id))]
        created = int(session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.seq > last_audit, AuditEntry.action == "detection.created")) or 0)
    done_at = sorted(row.identified_at.timestamp() for row in rows
                     if row.identified_at is not None)
    first, last = (done_at[0], done_at[-1]) if done_at else (emptied, emptied)
    steady = [row for row in rows if row.identified_at is not None
              and row.identified_at.timestamp() > first]
    by_capture: dict[int, set[int]] = {}
    for capture_id, recording_id in found:
        by_capture.setdefault(capture_id, set()).add(recording_id)
    right = sum(1 for capture_id, file in captured.items()
                if file.track is not None and expected.get(file.track) in
                by_capture.get(capture_id, set()))
    wrong = sum(1 for capture_id, recordings in by_capture.items() for recording in recordings
                if captured[capture_id].track is None
                or recording != expected.get(captured[capture_id].track or ""))
    return Run(
        processes=processes, number=number, load_average=load,
        wall_seconds=emptied - started, first_done_seconds=first - started,
        steady_seconds=last - first, steady_captures=len(steady),
        steady_identify_seconds=sum(row.identify_seconds or 0.0 for row in steady),
        captures=len(rows), audio_seconds=sum(row.audio_seconds or 0.0 for row in rows),
        identify_seconds=sum(row.identify_seconds or 0.0 for row in rows),
        cpu_seconds=cpu, database_cpu_seconds=database_cpu, commits=commits,
        active_ms=active_ms, stop_seconds=stop_seconds, exit_code=exit_code,
        not_done=sum(1 for row in rows if row.identify_status != IdentifyStatus.DONE),
        claimed_more_than_once=sum(1 for row in rows if row.attempts != 1),
        reused=sum(1 for row in rows if row.identify_seconds is None),
        claimants=len({row.claimed_by for row in rows}),
        per_claimant=tuple(sorted(Counter(row.claimed_by for row in rows).values())),
        detections=len(found), detection_audits=created, right=right, wrong=wrong,
        copies=sum(1 for file in captured.values() if file.track is not None))


def claim_timings(app: App, threads: int) -> tuple[int, float, float]:
    """Every capture claimed by ``threads`` threads through the identify stage's own claim
    (one transaction each, ``FOR UPDATE SKIP LOCKED``) and nothing else: (claims, wall
    seconds, median seconds per claim). The captures are reset afterwards."""
    reset(app)
    durations: list[float] = []
    lock = threading.Lock()
    with app.evidence() as evidence:
        stages = [IdentifyStage(app.settings, app.ledger, app.clock, app.matcher, evidence,
                                actor="bench", worker=f"bench-claim-{n}")
                  for n in range(threads)]

        def claim_all(stage: IdentifyStage) -> None:
            while True:
                began = time.perf_counter()
                claimed = stage._claim()  # the stage's claim, measured apart from the rest
                elapsed = time.perf_counter() - began
                if claimed is None:
                    return
                with lock:
                    durations.append(elapsed)

        began = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(claim_all, stages))
        wall = time.perf_counter() - began
    reset(app)
    return len(durations), wall, statistics.median(durations) if durations else 0.0


# --- main --------------------------------------------------------------------------------------

def run(options: Options, command: str, work: Path) -> Report:
    began = time.perf_counter()
    machine = describe_machine(REPO)
    if snapshot_commit():
        machine = dataclasses.replace(machine, git_commit=snapshot_commit() or "")
    corpus.ensure_packages((corpus.CATALOG_PACKAGE,))
    tracks = corpus.package_tracks(corpus.CATALOG_PACKAGE)
    if options.tracks is not None:
        tracks = [t for t in tracks if t.duration >= 60][: options.tracks]
    folder, files = capture_files(options.cache, tracks, options.copies, options.others,
                                  options.seed)
    log.info("%d capture files in %s", len(files), folder)
    home = work / "home"
    runs: list[Run] = []
    with scratch_database(options.database_url) as database:
        copyguard = Copyguard(home, concurrency=8)
        copyguard.env.update(COPYGUARD_DATABASE_URL=database[0],
                             COPYGUARD_MATCHING__INDEX=options.index,
                             COPYGUARD_DAEMON__OPS_LISTEN="")
        copyguard.run("holders", "add", HOLDER, "--email", "legal@bench.example")
        imported = copyguard.run("catalog", "import", *(str(t.path) for t in tracks),
                                 "--holder", HOLDER, "--json")
        expected = {Path(line["file"]).stem: int(line["recording_id"])
                    for line in map(json.loads, imported.stdout.splitlines())
                    if line.get("recording_id") is not None}
        log.info("catalog: %d of %d tracks imported in %.0f s", len(expected), len(tracks),
                 imported.wall_seconds)
        copyguard.run("targets", "add", "https://uploads.example/", "--name", TARGET)
        app = build_app(load_settings(environ=copyguard.env), actor="bench")
        try:
            with app.evidence() as evidence:
                captured = record_captures(app.ledger, evidence, app.clock, TARGET, folder,
                                           files)
            log_path = work / "workers.log"
            for repeat in range(options.repeats):
                turn = repeat % len(options.processes)
                for processes in options.processes[turn:] + options.processes[:turn]:
                    result = one_run(app, copyguard.env, home, processes, len(runs) + 1,
                                     options.database_url, database, captured, expected,
                                     log_path)
                    runs.append(result)
                    log.info("run %d, %d process(es): %d captures in %.1f s (%.2f/s, %.1f "
                             "audio s/s), CPU %.2f cores, PostgreSQL %.2f cores, load %.2f; "
                             "once each: %s", result.number, processes, result.captures,
                             result.wall_seconds, result.captures_per_second,
                             result.audio_per_second, result.cpu_seconds / result.wall_seconds,
                             result.database_cpu_seconds / result.wall_seconds,
                             result.load_average, "yes" if result.exactly_once else "NO")
            claims = tuple((threads, *claim_timings(app, threads)) for threads in (1, 4))
            for threads, count, wall, median in claims:
                log.info("claims alone, %d thread(s): %d in %.2f s, median %.2f ms", threads,
                         count, wall, 1000 * median)
        finally:
            app.close()
        server = server_description(options.database_url)
    return Report(machine=machine, command=command, server=server, index=options.index,
                  catalog_tracks=len(expected), catalog_seconds=sum(
                      t.duration for t in tracks if t.path.stem in expected),
                  import_seconds=imported.wall_seconds, files=tuple(files),
                  kinds=tuple(kind[0] for kind in KINDS), runs=tuple(runs),
                  wall_seconds=time.perf_counter() - began, code=describe_code(),
                  claims=claims)


def write_json(report: Report, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"workers-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(dataclasses.asdict(report), indent=1, default=str))
    return path


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if "--working-tree" not in arguments:
        code = from_snapshot("bench.workers", arguments, REPO)
        if code is not None:
            return code
    command = begin_run("bench-workers", arguments)
    options = parse_options(arguments)
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as work:
        try:
            report = run(options, command, Path(work))
        except (CopyguardError, corpus.CorpusError, psycopg.Error) as error:
            log.error("%s", error)
            return 2
    path = write_json(report, options.results)
    text = markdown(report)
    if options.document is not None:
        write_section(options.document, text, BEGIN, END)
    log.info("results written to %s%s", path,
             f" and {options.document.name}" if options.document else "")
    sys.stdout.write(text)
    return 0 if all(run.exactly_once for run in report.runs) else 1


if __name__ == "__main__":
    sys.exit(main())
