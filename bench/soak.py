"""``make bench-soak``: the real daemon over thousands of crawl cycles, its memory watched.

Run as ``python -m bench.soak [--cycles 1000] [--targets 20] [--max-minutes 80]`` (``--help``
lists every option). The script makes a scratch ``COPYGUARD_HOME`` (SQLite, the embedded
default), a small synthesised catalog (``holders add``, ``catalog import``), a local server of
``--targets`` small sites that keep changing (bench.soak_site: a home page that changes every
minute, fixed posts, a new upload every ``--audio-every`` seconds) and a ``copyguard.toml``
with one target per site, each crawled ``every 1m`` (the shortest schedule targets accept).
Then ``python -m monitor daemon`` runs in a process of its own until ``--cycles`` crawls have
finished (a cycle is one finished crawl run, counted in the ledger's ``crawls``) or
``--max-minutes`` have passed, and every ``--sample-seconds`` the script records the daemon's
resident set, its descendants' (the crawl children, counted apart), the crawls done, the
ledger file's size and the load. Then SIGTERM, and the report: RSS at the start (after the
warm-up), at the end, its maximum and its slope per 1000 cycles, against the bound
``--max-growth-mib``; the exit status is 1 when the bound is exceeded or the daemon did not
exit cleanly. Results go to ``bench/results/soak-<time>.json`` and, unless
``--no-write-doc``, into ``BENCHMARKS.md`` between its soak markers.

``--trace-memory`` says where the growth is allocated: the daemon runs under tracemalloc
(bench/memtrace.py, run by file path in front of the same ``monitor`` code; the crawl children
are not traced). Tracing starts when the warm-up cycles are done (``--trace-from start``: at
the daemon's start, after its imports); a snapshot is taken then, every ``--trace-every``
seconds, just before the SIGTERM and at exit, and the growth from the warm-up snapshot to the
one before the SIGTERM is reported by allocation site (the top ``--trace-top``, by our
innermost frame and by whole traceback) in the log, on stdout and in
``soak-<time>-memtrace.txt`` beside the JSON, with the two snapshots compared (for
``python -m bench.memtrace --compare A B`` by hand). tracemalloc inflates the RSS and slows the
daemon, so the memory bound has no verdict in that mode (the exit status only says whether the
daemon exited cleanly) and BENCHMARKS.md is left alone (``--no-write-doc`` implied).
Reads no settings.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import memtrace, procs
from bench.crawl import Copyguard, CopyguardError
from bench.measure import begin_run, describe_machine
from bench.report import write_section
from bench.snapshot import describe_code, from_snapshot, repository, snapshot_commit
from bench.soak_report import BEGIN, END, Ledger, Report, Sample, markdown
from bench.soak_site import SoakSite
from fingerprints.alter import encode, excerpt
from fingerprints.synth import synthesize_track, write_wav

log = logging.getLogger("bench.soak")

REPO = repository(Path(__file__).resolve().parent.parent)
RATE = 22050
CATALOG_TRACKS = 4  # synthesised recordings of CATALOG_SECONDS in the catalog
CATALOG_SECONDS = 40.0
POOL_SECONDS = 8.0  # each upload's length
POOL_COPIES = 6  # pool files that are excerpts of catalog tracks ...
POOL_OTHERS = 6  # ... and that are music no catalog holds
HOLDER = "Soak Records"
MEMTRACE = Path(memtrace.__file__).resolve()  # run by path: bench/ need not be importable there
SNAPSHOT_WAIT_SECONDS = 900.0  # how long the end snapshot may take (minutes on a loaded machine)
STOP_SECONDS = 120.0  # SIGTERM to exit, or the daemon is killed ...
TRACED_STOP_SECONDS = 900.0  # ... and with --trace-memory (a last snapshot at exit)


@dataclasses.dataclass(frozen=True)
class Options:
    cycles: int
    targets: int
    max_minutes: float
    sample_seconds: float
    warmup_cycles: int
    max_growth_mib: float
    audio_every: float
    identify_every: float
    takedown_every: float
    cases_every: float
    results: Path
    document: Path | None
    keep: bool
    trace_memory: bool = False
    trace_every: float = 300.0
    trace_frames: int = memtrace.FRAMES
    trace_top: int = 25
    trace_from: str = "warmup"


def parse_options(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=1000,
                        help="finished crawls to run for (default 1000: about an hour with 20 "
                             "targets on 2 cores, each crawl child costing about 4-6 CPU s)")
    parser.add_argument("--targets", type=int, default=20,
                        help="sites, each a target crawled every minute (default 20; 30 or "
                             "more saturate 2 cores with crawl children)")
    parser.add_argument("--max-minutes", type=float, default=80.0,
                        help="stop after this long even if --cycles is not reached (default 80)")
    parser.add_argument("--sample-seconds", type=float, default=10.0,
                        help="seconds between samples (default 10)")
    parser.add_argument("--warmup-cycles", type=int, default=None,
                        help="cycles before the memory counts (default a twentieth of "
                             "--cycles, at least 30)")
    parser.add_argument("--max-growth-mib", type=float, default=32.0,
                        help="the bound: the daemon's RSS may grow at most this much from the "
                             "end of the warm-up to the end (default 32)")
    parser.add_argument("--audio-every", type=float, default=300.0,
                        help="seconds between new uploads on each site (default 300)")
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results",
                        help="directory of the JSON results")
    parser.add_argument("--no-write-doc", action="store_true", help="leave BENCHMARKS.md alone")
    parser.add_argument("--working-tree", action="store_true",
                        help="run the working tree's code (default: HEAD's product packages, "
                             "exported by bench.snapshot, so edits meanwhile do not reach the "
                             "processes it starts)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the scratch home (its path is logged) for a look afterwards")
    parser.add_argument("--trace-memory", action="store_true",
                        help="run the daemon under tracemalloc (bench/memtrace.py) and report "
                             "the allocation sites that grew from the end of the warm-up to "
                             "the end; no bound verdict (tracemalloc inflates the RSS), "
                             "implies --no-write-doc")
    parser.add_argument("--trace-every", type=float, default=300.0,
                        help="with --trace-memory: seconds between periodic snapshots "
                             "(default 300)")
    parser.add_argument("--trace-frames", type=int, default=memtrace.FRAMES,
                        help="with --trace-memory: frames a traceback (default "
                             f"{memtrace.FRAMES})")
    parser.add_argument("--trace-top", type=int, default=25,
                        help="with --trace-memory: sites reported (default 25)")
    parser.add_argument("--trace-from", choices=("warmup", "start"), default="warmup",
                        help="with --trace-memory: start tracing at the end of the warm-up "
                             "(default: the start-up runs at full speed, the snapshots hold "
                             "only what was allocated since) or at the daemon's start (after "
                             "its imports; the warm-up snapshot then holds its caches too)")
    args = parser.parse_args(argv)
    if args.cycles < 10 or not 1 <= args.targets <= 99 or args.sample_seconds <= 0:
        parser.error("--cycles must be at least 10, --targets between 1 and 99 and "
                     "--sample-seconds positive")
    if args.trace_every <= 0 or not 1 <= args.trace_frames <= 1000 or args.trace_top < 1:
        parser.error("--trace-every must be positive, --trace-frames between 1 and 1000 and "
                     "--trace-top at least 1")
    warmup = max(30, args.cycles // 20) if args.warmup_cycles is None else args.warmup_cycles
    return Options(cycles=args.cycles, targets=args.targets, max_minutes=args.max_minutes,
                   sample_seconds=args.sample_seconds, warmup_cycles=min(warmup, args.cycles),
                   max_growth_mib=args.max_growth_mib, audio_every=args.audio_every,
                   identify_every=10.0, takedown_every=30.0, cases_every=60.0,
                   results=args.results,
                   document=None if args.no_write_doc or args.trace_memory
                   else REPO / "BENCHMARKS.md",
                   keep=args.keep, trace_memory=args.trace_memory,
                   trace_every=args.trace_every, trace_frames=args.trace_frames,
                   trace_top=args.trace_top, trace_from=args.trace_from)


# --- set-up ------------------------------------------------------------------------------------

def make_catalog_and_pool(folder: Path) -> list[bytes]:
    """The catalog's WAV files under ``folder`` and the upload pool (MP3 bytes): excerpts of
    the catalog tracks and music no catalog holds."""
    folder.mkdir(parents=True, exist_ok=True)
    tracks = [synthesize_track(seed, CATALOG_SECONDS, RATE) for seed in
              range(1, CATALOG_TRACKS + 1)]
    for number, samples in enumerate(tracks, start=1):
        write_wav(folder / f"soak-track-{number}.wav", samples, RATE)
    pool = [encode(excerpt(tracks[i % CATALOG_TRACKS], RATE, 3.0 + 4.0 * i, POOL_SECONDS),
                   RATE, "mp3", "64k") for i in range(POOL_COPIES)]
    pool += [encode(synthesize_track(900 + i, POOL_SECONDS, RATE), RATE, "mp3", "64k")
             for i in range(POOL_OTHERS)]
    return pool


def write_config(path: Path, site: SoakSite, targets: int) -> None:
    blocks = []
    for number in range(targets):
        start = site.start_url(number)
        blocks.append("\n".join([
            "[[targets]]", f'name = "soak-{number:02d}"', f'start_urls = ["{start}"]',
            f'follow = ["^{start}"]', 'schedule = "every 1m"', "depth = 2", "max_pages = 20",
            "delay_seconds = 0.0", "allow_private = true",
            f'notice_email = "abuse-{number}@soak.example"', ""]))
    path.write_text("\n".join(blocks), encoding="utf-8")


def daemon_env(copyguard: Copyguard, config: Path, options: Options) -> dict[str, str]:
    env = dict(copyguard.env)
    env.update(COPYGUARD_CONFIG=str(config),
               COPYGUARD_DAEMON__IDENTIFY_EVERY_SECONDS=f"{options.identify_every:g}",
               COPYGUARD_DAEMON__TAKEDOWN_EVERY_SECONDS=f"{options.takedown_every:g}",
               COPYGUARD_DAEMON__CASES_EVERY_SECONDS=f"{options.cases_every:g}",
               COPYGUARD_DAEMON__OPS_LISTEN="",
               # Nothing leaves the machine: no RDAP lookups (targets name their notice
               # address anyway), no SMTP relay (notices wait for review).
               COPYGUARD_RDAP__IP_SERVERS="", COPYGUARD_RDAP__DOMAIN_SERVERS="")
    return env


# --- watching ----------------------------------------------------------------------------------

class LedgerReader:
    """Read-only looks at the daemon's SQLite ledger (WAL: they never block its writers)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._connection: sqlite3.Connection | None = None

    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            self._connection = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True,
                                               timeout=10)
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def cycles(self) -> int:
        try:
            return int(self._db().execute(
                "SELECT count(*) FROM crawls WHERE status != 'running'").fetchone()[0])
        except sqlite3.Error:
            return 0  # not migrated yet

    def crawl_failures(self) -> int:
        """Failed crawl runs recorded in stage_runs so far."""
        try:
            row = self._db().execute(
                "SELECT sum(failures) FROM stage_runs WHERE stage = 'crawl'").fetchone()
        except sqlite3.Error:
            return 0
        return int(row[0] or 0)

    def file_bytes(self) -> int:
        return sum(path.stat().st_size for path in (self.path, Path(f"{self.path}-wal"))
                   if path.exists())

    def count(self, table: str) -> int:
        return int(self._db().execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    def summary(self, evidence: Path) -> Ledger:
        db = self._db()
        crawls = dict(db.execute("SELECT status, count(*) FROM crawls GROUP BY status"))
        runs = {stage: (int(r), int(f)) for stage, r, f in db.execute(
            "SELECT stage, sum(runs), sum(failures) FROM stage_runs GROUP BY stage")}
        evidence_bytes = sum(p.stat().st_size for p in evidence.rglob("*") if p.is_file()) \
            if evidence.exists() else 0
        return Ledger(crawls={k: int(v) for k, v in crawls.items()},
                      crawl_failures=runs.get("crawl", (0, 0))[1],
                      job_runs={k: v[0] for k, v in runs.items()},
                      job_failures={k: v[1] for k, v in runs.items()},
                      captures=self.count("captures"), detections=self.count("detections"),
                      notices=self.count("notices"), audit_entries=self.count("audit_log"),
                      ledger_bytes=self.file_bytes(), evidence_bytes=evidence_bytes)


def sample(pid: int, started: float, ledger: LedgerReader) -> Sample | None:
    rss = procs.rss_bytes(pid)
    own = procs.stat(pid)
    if rss is None or own is None:
        return None
    below = [(child, procs.rss_bytes(child)) for child in procs.descendants(pid)]
    sizes = [size for _, size in below if size is not None]
    return Sample(seconds=time.time() - started, cycles=ledger.cycles(), rss=rss,
                  children=len(sizes), children_rss=sum(sizes),
                  children_max_rss=max(sizes, default=0), ledger_bytes=ledger.file_bytes(),
                  load_average=os.getloadavg()[0], cpu_seconds=own.cpu_seconds,
                  children_cpu_seconds=own.children_cpu_seconds)


def watch(daemon: subprocess.Popen[str], ledger: LedgerReader, options: Options,
          started: float, log_path: Path, trace: Path | None) -> tuple[list[Sample], str]:
    samples: list[Sample] = []
    warm = False
    deadline = started + options.max_minutes * 60
    last_log = 0.0
    while True:
        if daemon.poll() is not None:
            raise CopyguardError(f"the daemon exited with {daemon.returncode}: "
                                 f"{log_path.read_text()[-2000:]}")
        found = sample(daemon.pid, started, ledger)
        if found is not None:
            samples.append(found)
            if time.time() - last_log > 60:
                log.info("%.1f min: %d cycles, daemon RSS %.1f MiB, %d children (largest "
                         "%.0f MiB), ledger %.1f MiB, load %.2f", found.seconds / 60,
                         found.cycles, found.rss / 2**20, found.children,
                         found.children_max_rss / 2**20, found.ledger_bytes / 2**20,
                         found.load_average)
                last_log = time.time()
            if trace is not None and not warm and found.cycles >= options.warmup_cycles:
                memtrace.request_snapshot(trace, "warmup")
                log.info("warm-up done (%d cycles): tracemalloc snapshot requested",
                         found.cycles)
                warm = True
            if found.cycles >= options.cycles:
                return samples, "cycles"
        if time.time() > deadline:
            return samples, "time"
        time.sleep(options.sample_seconds)


def stop(daemon: subprocess.Popen[str], timeout: float) -> tuple[int | None, float]:
    began = time.monotonic()
    daemon.send_signal(signal.SIGTERM)
    try:
        code: int | None = daemon.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        daemon.kill()
        daemon.wait()
        code = None
    return code, time.monotonic() - began


# --- main --------------------------------------------------------------------------------------

def daemon_command(options: Options, trace: Path | None) -> list[str]:
    """``python -m monitor daemon``, or the same under bench/memtrace.py with --trace-memory."""
    if trace is None:
        return [sys.executable, "-m", "monitor", "daemon"]
    return [sys.executable, str(MEMTRACE), "--out", str(trace),
            "--every", f"{options.trace_every:g}", "--frames", str(options.trace_frames),
            *(["--start-on-request"] if options.trace_from == "warmup" else []),
            "--", "daemon"]


def end_snapshot(trace: Path) -> None:
    """Ask the traced daemon for the snapshot the comparison ends with, while it still runs
    (at exit it has closed its ledger and pools), and wait for it."""
    memtrace.request_snapshot(trace, "end")
    log.info("tracemalloc: end snapshot requested, waiting for it")
    if memtrace.wait_for_snapshot(trace, "end", SNAPSHOT_WAIT_SECONDS) is None:
        log.warning("tracemalloc: no end snapshot within %.0f s", SNAPSHOT_WAIT_SECONDS)


def run(options: Options, command: str, work: Path) -> Report:
    began = time.perf_counter()
    machine = describe_machine(REPO)
    if snapshot_commit():
        machine = dataclasses.replace(machine, git_commit=snapshot_commit() or "")
    home = work / "home"
    copyguard = Copyguard(home, concurrency=4)
    pool = make_catalog_and_pool(work / "catalog")
    copyguard.run("holders", "add", HOLDER, "--email", "legal@soak.example")
    copyguard.run("catalog", "import", str(work / "catalog"), "--holder", HOLDER)
    database = home / "copyguard.db"
    log_path = work / "daemon.log"
    trace = work / "memtrace" if options.trace_memory else None
    if trace is not None:
        trace.mkdir()
    with SoakSite(options.targets, pool, audio_every=options.audio_every) as site:
        config = work / "copyguard.toml"
        write_config(config, site, options.targets)
        env = daemon_env(copyguard, config, options)
        log.info("daemon starting: %d targets at %s, log %s", options.targets, site.base_url,
                 log_path)
        with log_path.open("a") as stderr:
            started = time.time()
            daemon = subprocess.Popen(daemon_command(options, trace), env=env, cwd=home,
                                      stdout=subprocess.DEVNULL, stderr=stderr, text=True)
        ledger = LedgerReader(database)
        try:
            samples, stopped_by = watch(daemon, ledger, options, started, log_path, trace)
            failed_running = ledger.crawl_failures()
            if trace is not None:
                end_snapshot(trace)
        finally:
            code, stop_seconds = stop(daemon, STOP_SECONDS if trace is None
                                      else TRACED_STOP_SECONDS)
        if samples:  # crawls that finished while the daemon stopped count too
            samples[-1] = dataclasses.replace(samples[-1], cycles=max(samples[-1].cycles,
                                                                      ledger.cycles()))
        summary = ledger.summary(home / "evidence")
        ledger.close()
        served = dict(site.served)
    log.info("daemon stopped (status %s) in %.1f s", code, stop_seconds)
    return Report(machine=machine, command=command,
                  options={k: str(v) if isinstance(v, Path) else v
                           for k, v in dataclasses.asdict(options).items()},
                  samples=tuple(samples), warmup_cycles=options.warmup_cycles, ledger=summary,
                  served=served, server_cpu_seconds=time.process_time(), daemon_exit=code,
                  stop_seconds=stop_seconds, wall_seconds=time.perf_counter() - began,
                  stopped_by=stopped_by, code=describe_code(),
                  crawl_failures_running=failed_running)


@dataclasses.dataclass(frozen=True)
class Trace:
    """What --trace-memory found: the two snapshots compared and the report of their growth."""

    before: Path  # copied beside the JSON
    after: Path
    text: str


def compare_trace(trace: Path, report: Report, options: Options, stem: Path) -> Trace | None:
    """Compare the warm-up snapshot (requested when the warm-up was done; else the one nearest
    that sample) with the end one (requested before the SIGTERM; else the last periodic one),
    and copy both to ``stem-warmup.pickle`` and ``stem-end.pickle``."""
    warm_at = report.measured[0].seconds if report.samples else 0.0
    before = memtrace.closest_snapshot(trace, warm_at, label="warmup")
    after = memtrace.closest_snapshot(trace, float("inf"), label="end")
    if before is None or after is None or before == after:
        log.error("tracemalloc: too few snapshots in %s to compare (%s)", trace,
                  ", ".join(p.name for p, _ in memtrace.snapshots(trace)) or "none")
        return None
    log.info("tracemalloc: comparing %s (warm-up at %.0f s) with %s", before.name, warm_at,
             after.name)
    at = {path: seconds for path, (seconds, _) in memtrace.snapshots(trace)}
    window = [s for s in report.samples if at[before] <= s.seconds <= at[after]]
    text = (f"soak window: {at[before]:.0f} s -> {at[after]:.0f} s after the daemon's start, "
            f"crawl cycles {window[0].cycles if window else '?'} -> "
            f"{window[-1].cycles if window else '?'}, tracing from the "
            f"{'warm-up' if options.trace_from == 'warmup' else 'start'}\n"
            + memtrace.compare(before, after, top=options.trace_top))
    stem.parent.mkdir(parents=True, exist_ok=True)
    kept = (stem.with_name(f"{stem.name}-warmup.pickle"),
            stem.with_name(f"{stem.name}-end.pickle"))
    shutil.copyfile(before, kept[0])
    shutil.copyfile(after, kept[1])
    return Trace(before=kept[0], after=kept[1], text=text)


def write_json(report: Report, path: Path, trace: Trace | None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = dataclasses.asdict(report)
    data["figures"] = {"start_rss": report.start_rss(), "end_rss": report.end_rss(),
                       "growth_mib": report.growth_mib(),
                       "slope_mib_per_1000_cycles": report.slope_mib_per_1000(),
                       "passed": None if report.options["trace_memory"] else report.passed()}
    if report.options["trace_memory"]:
        data["memtrace"] = {
            "bound": "not applicable: tracemalloc inflates the RSS",
            "report": str(path.with_name(f"{path.stem}-memtrace.txt")) if trace else None,
            "snapshots": [str(trace.before), str(trace.after)] if trace else None}
    path.write_text(json.dumps(data, indent=1, default=str))
    return path


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if "--working-tree" not in arguments:
        code = from_snapshot("bench.soak", arguments, REPO)
        if code is not None:
            return code
    command = begin_run("bench-soak", arguments)
    options = parse_options(arguments)
    work = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    trace: Trace | None = None
    try:
        report = run(options, command, work)
        stem = options.results / f"soak-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}"
        if options.trace_memory:
            trace = compare_trace(work / "memtrace", report, options, stem)
    except CopyguardError as error:
        log.error("%s", error)
        return 2
    finally:
        if options.keep:
            log.info("scratch home kept: %s", work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    path = write_json(report, stem.with_name(f"{stem.name}.json"), trace)
    text = markdown(report)
    if options.document is not None:
        write_section(options.document, text, BEGIN, END)
    log.info("results written to %s%s", path,
             f" and {options.document.name}" if options.document else "")
    sys.stdout.write(text)
    if options.trace_memory:
        log.info("--trace-memory: the memory bound is not applicable (tracemalloc inflates the "
                 "daemon's RSS by its own bookkeeping); BENCHMARKS.md left alone")
        if trace is not None:
            report_path = stem.with_name(f"{stem.name}-memtrace.txt")
            report_path.write_text(trace.text)
            log.info("tracemalloc growth by site written to %s (snapshots %s, %s)",
                     report_path, trace.before.name, trace.after.name)
            sys.stdout.write("\n" + trace.text)
        if report.daemon_exit != 0:
            log.error("the daemon did not exit cleanly: status %s", report.daemon_exit)
            return 1
        return 0 if trace is not None else 1
    if not report.passed():
        log.error("the bound is exceeded: daemon RSS grew %.1f MiB (bound %.0f MiB), exit "
                  "status %s", report.growth_mib(), options.max_growth_mib, report.daemon_exit)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
