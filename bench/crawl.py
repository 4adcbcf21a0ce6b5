"""``make bench-crawl``: crawl throughput on generated local sites, identification included.

Run as ``python -m bench.crawl [--pages N] [--files M] [--no-write-doc]`` (``--help`` lists
every option). Every crawl is a real ``copyguard`` process (``python -m monitor``) with a fresh
data directory (``COPYGUARD_HOME``), crawling a site that ``python -m http.server`` serves from
another process (bench.crawl_site). Two phases:

1. HTML: ``crawl --no-identify --json`` of a site of N content pages and no audio, ``--runs``
   times: pages per second over the crawl itself (from its ``crawl.started`` to its
   ``crawl.finished`` audit entry) and over the whole command.
2. Audio: ``crawl --json``, identification included, of a site of M 3-minute MP3s, the first
   ``--copies`` of them copies of catalog tracks imported beforehand (``holders add``,
   ``catalog import``): audio files per minute end to end, split into crawling (the audit
   entries) and identifying (from ``crawl.finished`` to the end of the command; each capture's
   ``identified_at`` gives the time per file); and whether every copy was detected
   (``detections list --json``).

Peak memory is the copyguard process's peak resident set (``wait4``: the process and its reaped
children, ffmpeg decoders included, whichever was largest). Results go to
``bench/results/crawl-<time>.json`` and, unless a phase was skipped, into ``BENCHMARKS.md``
between its crawl markers. copyguard gets its settings from the environment: no delay, no
autothrottle, ``--concurrency`` requests at a time to the site; the rest are its defaults.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select

from bench import crawl_site
from bench.measure import Machine, begin_run, describe_machine
from bench.report import write_section
from ledger.models import Capture
from monitor.demo_site import DemoSiteError

log = logging.getLogger("bench.crawl")

REPO = Path(__file__).resolve().parent.parent
BEGIN = "<!-- crawl:begin -->"
END = "<!-- crawl:end -->"
PAGES_GOAL = 200.0  # HTML pages per second
FILES_GOAL = 60.0  # 3-minute audio files per minute, end to end
HOLDER = "Bench Records"
PAGE_BUDGET = 1_000_000  # --max-pages of the target: the site, not the budget, ends the crawl


@dataclass(frozen=True)
class Options:
    pages: int
    files: int
    copies: int
    runs: int
    concurrency: int
    seed: int
    phases: tuple[str, ...]
    cache: Path
    results: Path
    document: Path | None  # BENCHMARKS.md to update, None: do not


def parse_options(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.crawl", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=1000,
                        help="content pages of the HTML site (default 1000; plus the home "
                             f"page and {crawl_site.SECTIONS} section indexes)")
    parser.add_argument("--files", type=int, default=40,
                        help="3-minute MP3 files on the audio site (default 40)")
    parser.add_argument("--copies", type=int, default=None,
                        help="of them, copies of catalog tracks (default half, at most 20)")
    parser.add_argument("--runs", type=int, default=3, help="crawls of the HTML site (default 3)")
    parser.add_argument("--concurrency", type=int, default=8,
                        help="parallel requests to the site (default 8)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated sites")
    parser.add_argument("--phases", default="html,audio", help="phases to run (default both)")
    parser.add_argument("--cache", type=Path, default=REPO / "bench" / "cache",
                        help="where the generated sites are kept for reruns")
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results",
                        help="directory of the JSON results")
    parser.add_argument("--write-doc", dest="write_doc", action="store_true", default=None,
                        help="update BENCHMARKS.md even when a phase is skipped")
    parser.add_argument("--no-write-doc", dest="write_doc", action="store_false",
                        help="leave BENCHMARKS.md alone")
    args = parser.parse_args(argv)
    phases = tuple(p.strip() for p in args.phases.split(",") if p.strip())
    if not phases or not set(phases) <= {"html", "audio"}:
        parser.error("--phases takes html, audio or both")
    copies = min(20, args.files // 2) if args.copies is None else args.copies
    if args.files < 1 or not 0 <= copies <= args.files:
        parser.error("--files must be at least 1 and --copies between 0 and --files")
    if args.pages < crawl_site.SECTIONS or args.runs < 1 or not 1 <= args.concurrency <= 32:
        parser.error(f"--pages must be at least {crawl_site.SECTIONS}, --runs at least 1 and "
                     "--concurrency between 1 and 32")
    write_doc = (len(phases) == 2) if args.write_doc is None else args.write_doc
    return Options(pages=args.pages, files=args.files, copies=copies, runs=args.runs,
                   concurrency=args.concurrency, seed=args.seed, phases=phases,
                   cache=args.cache, results=args.results,
                   document=REPO / "BENCHMARKS.md" if write_doc else None)


# --- running copyguard -------------------------------------------------------------------------

@dataclass(frozen=True)
class Process:
    """One copyguard command: what it printed and what it cost."""

    stdout: str
    started: float  # time.time() at the start and the end
    ended: float
    cpu_seconds: float  # user + system, its reaped children included
    peak_rss: int  # bytes

    @property
    def wall_seconds(self) -> float:
        return self.ended - self.started


class CopyguardError(RuntimeError):
    """A copyguard command failed."""


class Copyguard:
    """``python -m monitor`` with its own data directory and the benchmark's crawl settings."""

    def __init__(self, home: Path, concurrency: int) -> None:
        self.home = home
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("COPYGUARD_")}
        self.env.update(COPYGUARD_HOME=str(home), COPYGUARD_CRAWL__DEFAULT_DELAY_SECONDS="0",
                        COPYGUARD_CRAWL__AUTOTHROTTLE="false",
                        COPYGUARD_CRAWL__DEFAULT_CONCURRENCY=str(concurrency))

    def run(self, *args: str) -> Process:
        self.home.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            started = time.time()
            child = subprocess.Popen([sys.executable, "-m", "monitor", *args], env=self.env,
                                     cwd=self.home, stdout=out, stderr=err, text=True)
            try:
                _, status, usage = os.wait4(child.pid, 0)
            except BaseException:
                child.kill()
                child.wait()
                raise
            ended = time.time()
            child.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            err.seek(0)
            if child.returncode != 0:
                raise CopyguardError(f"copyguard {' '.join(args)} exited with "
                                     f"{child.returncode}: {err.read()[-2000:]}")
            return Process(out.read(), started, ended, usage.ru_utime + usage.ru_stime,
                           usage.ru_maxrss * 1024)

    def json_lines(self, *args: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.run(*args).stdout.splitlines() if line]

    def add_target(self, base_url: str) -> None:
        self.run("targets", "add", base_url + "/", "--name", "bench", "--allow-private",
                 "--depth", "50", "--max-pages", str(PAGE_BUDGET), "--delay", "0")

    def crawl_times(self) -> tuple[float, float]:
        """When the one crawl started and finished (epoch seconds), from the audit log."""
        entries = {e["action"]: e["at"] for e in self.json_lines("audit", "list", "--action",
                                                                   "crawl.", "--json")}
        return _epoch(entries["crawl.started"]), _epoch(entries["crawl.finished"])


def _epoch(value: str | dt.datetime) -> float:
    moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp()


def _summary(process: Process) -> dict[str, Any]:
    summary: dict[str, Any] = json.loads(process.stdout.strip().splitlines()[-1])
    return summary


# --- the phases --------------------------------------------------------------------------------

@dataclass(frozen=True)
class HtmlRun:
    load_average: float  # 1 minute, at the start
    pages: int  # the crawl's "pages" count
    pages_not_modified: int
    problems: int
    startup_seconds: float  # from the command's start to crawl.started
    crawl_seconds: float  # crawl.started to crawl.finished
    wall_seconds: float  # the whole command
    cpu_seconds: float
    peak_rss: int

    @property
    def pages_per_second(self) -> float:
        return self.pages / self.crawl_seconds

    @property
    def pages_per_wall_second(self) -> float:
        return self.pages / self.wall_seconds


@dataclass(frozen=True)
class AudioRun:
    load_average: float
    import_seconds: float  # catalog import, before the crawl (not in the figures)
    captures: int
    pages: int
    startup_seconds: float
    crawl_seconds: float
    identify_seconds: float  # crawl.finished to the end of the command (draining the queue)
    identified_during_crawl: int  # captures identified before crawl.finished
    wall_seconds: float
    cpu_seconds: float
    peak_rss: int
    found: int  # catalog copies detected as the right recording
    expected: int
    missed: tuple[str, ...]
    wrong: tuple[str, ...]  # detections of a file that is no copy, or of the wrong recording
    copy_seconds: tuple[float, ...]  # identification time of each copy (decode and match)
    other_seconds: tuple[float, ...]  # of each file no catalog holds
    first_seconds: float  # the slowest of each worker's first capture (opening the index)
    statuses: dict[str, int]  # captures per identify status
    review: int  # of the copies found, those under review_below (a person must confirm them)

    @property
    def files_per_minute(self) -> float:
        return 60 * self.captures / self.wall_seconds


@dataclass(frozen=True)
class Report:
    machine: Machine
    command: str
    options: dict[str, Any]
    html_site: dict[str, Any] | None
    audio_site: dict[str, Any] | None
    html_runs: tuple[HtmlRun, ...]
    audio: AudioRun | None
    server_cpu_seconds: dict[str, float]
    wall_seconds: float


def run_html(options: Options, work: Path) -> tuple[crawl_site.HtmlSite, list[HtmlRun], float]:
    site = crawl_site.html_site(options.cache, options.pages, options.seed)
    log.info("HTML site: %d pages, %.1f MiB, at %s", site.pages, site.bytes / 2**20, site.root)
    runs = []
    with crawl_site.StaticServer(site.root) as server:
        for number in range(options.runs):
            copyguard = Copyguard(work / f"html-{number}", options.concurrency)
            copyguard.add_target(server.base_url)
            load = os.getloadavg()[0]
            process = copyguard.run("crawl", "--no-identify", "--json")
            started, finished = copyguard.crawl_times()
            [crawl] = _summary(process)["crawls"]
            run = HtmlRun(load, crawl["pages"], crawl["pages_not_modified"],
                          len(_summary(process)["problems"]), started - process.started,
                          finished - started, process.wall_seconds, process.cpu_seconds,
                          process.peak_rss)
            runs.append(run)
            log.info("HTML run %d: %d pages in %.1f s (%.1f pages/s; %.1f s in all), peak RSS "
                     "%.0f MiB, load %.2f", number + 1, run.pages, run.crawl_seconds,
                     run.pages_per_second, run.wall_seconds, run.peak_rss / 2**20, load)
            if crawl["status"] != "finished" or run.pages != site.pages:
                log.warning("the crawl ended %s with %d of the site's %d pages",
                            crawl["status"], run.pages, site.pages)
    return site, runs, server.cpu_seconds


def run_audio(options: Options, work: Path) -> tuple[crawl_site.AudioSite, AudioRun, float]:
    phase = time.perf_counter()
    site = crawl_site.audio_site(options.cache, options.files, options.copies, options.seed)
    log.info("audio site: %d files (%d catalog copies), %.0f MiB, ready in %.0f s",
             options.files, options.copies, site.bytes / 2**20, time.perf_counter() - phase)
    copyguard = Copyguard(work / "audio", options.concurrency)
    copyguard.run("holders", "add", HOLDER, "--email", "legal@bench.example")
    imported = copyguard.run("catalog", "import", str(site.catalog), "--holder", HOLDER, "--json")
    with crawl_site.StaticServer(site.root) as server:
        copyguard.add_target(server.base_url)
        load = os.getloadavg()[0]
        process = copyguard.run("crawl", "--json")
        started, finished = copyguard.crawl_times()
        [crawl] = _summary(process)["crawls"]
        detections = copyguard.json_lines("detections", "list", "--json")
    found = {d["url"].removeprefix(server.base_url): d for d in detections}
    right = {path for path, title in site.copies.items()
             if path in found and found[path]["title"] == title}
    wrong = tuple(sorted(
        f"{path} as {d['title']} (confidence {d['confidence']:.2f}, {d['status']}, query "
        f"{d['query_start']:.1f}-{d['query_end']:.1f} s, x{d['speed']:.3f} "
        f"{d['pitch_semitones']:+.1f} st)" for path, d in found.items()
        if site.copies.get(path) != d["title"]))
    timings, statuses, during = _identify_times(copyguard.home, finished)
    # Each worker opens the index on its first capture: those are set apart from the medians.
    workers = min(len(timings), os.cpu_count() or 1)
    first = max((seconds for _, seconds in timings[:workers]), default=0.0)
    timings = timings[workers:]
    copies = tuple(s for url, s in timings if url.removeprefix(server.base_url) in site.copies)
    others = tuple(s for url, s in timings
                   if url.removeprefix(server.base_url) not in site.copies)
    run = AudioRun(
        load_average=load, import_seconds=imported.wall_seconds, captures=crawl["captures"],
        pages=crawl["pages"], startup_seconds=started - process.started,
        crawl_seconds=finished - started, identify_seconds=process.ended - finished,
        wall_seconds=process.wall_seconds, cpu_seconds=process.cpu_seconds,
        peak_rss=process.peak_rss, found=len(right), expected=len(site.copies),
        missed=tuple(sorted(set(site.copies) - right)), wrong=wrong, copy_seconds=copies,
        other_seconds=others, first_seconds=first, statuses=statuses,
        identified_during_crawl=during,
        review=sum(found[path]["status"] == "review" for path in right))
    log.info("audio: %d files in %.1f s end to end (%.1f files/min): crawl %.1f s, identify "
             "%.1f s; %d/%d copies detected, %d wrong; peak RSS %.0f MiB", run.captures,
             run.wall_seconds, run.files_per_minute, run.crawl_seconds, run.identify_seconds,
             run.found, run.expected, len(run.wrong), run.peak_rss / 2**20)
    return site, run, server.cpu_seconds


def _identify_times(home: Path, crawl_finished: float
                    ) -> tuple[list[tuple[str, float]], dict[str, int], int]:
    """(URL, seconds its worker spent decoding and matching it) per capture in the order
    identified; how many captures ended in each identify status; and how many were identified
    before the crawl finished."""
    engine = create_engine(f"sqlite:///{home / 'copyguard.db'}")
    try:
        with engine.connect() as connection:
            rows = connection.execute(select(Capture.url, Capture.identified_at,
                                             Capture.identify_status,
                                             Capture.identify_seconds)).all()
    finally:
        engine.dispose()
    statuses = Counter(row.identify_status for row in rows)
    done = sorted((_epoch(row.identified_at), row.url, row.identify_seconds) for row in rows
                  if row.identified_at is not None and row.identify_seconds is not None)
    during = sum(moment < crawl_finished for moment, _, _ in done)
    return ([(url, seconds) for _, url, seconds in done], dict(sorted(statuses.items())),
            during)


# --- report ------------------------------------------------------------------------------------

def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def markdown(report: Report) -> str:
    m = report.machine
    parts = [
        "## Crawl throughput (`make bench-crawl`)",
        f"Command: `{report.command}` — total {report.wall_seconds / 60:.1f} min.",
        f"Machine: {m.cpu_model}, {m.cores} cores, {m.memory_bytes / 2**30:.1f} GiB RAM, Python "
        f"{m.python}. Date: {m.date}. Commit: `{m.git_commit}`. Load average at the start: "
        f"{m.load_average[0]:.2f} / {m.load_average[1]:.2f} / {m.load_average[2]:.2f} (1 / 5 / 15 "
        "min; 2 cores: above 1 means other work shared them).",
        _goals(report)]
    if report.html_runs:
        parts.append(_html_table(report))
    if report.audio is not None:
        parts.append(_audio_table(report))
    parts.append(_method(report))
    return "\n\n".join(parts) + "\n"


def _goals(report: Report) -> str:
    rows = ["| goal | target | measured | met |", "| --- | --- | --- | --- |"]
    if report.html_runs:
        rate = _median([r.pages_per_second for r in report.html_runs])
        rows.append(f"| HTML pages per second (crawl, no identification; median of "
                    f"{len(report.html_runs)}) | ≥ {PAGES_GOAL:.0f} | {rate:.1f} | "
                    f"{'yes' if rate >= PAGES_GOAL else '**no**'} |")
    if report.audio is not None:
        rate = report.audio.files_per_minute
        rows.append(f"| 3-minute audio files per minute, end to end (crawl and identification) "
                    f"| ≥ {FILES_GOAL:.0f} | {rate:.1f} | "
                    f"{'yes' if rate >= FILES_GOAL else '**no**'} |")
    return "\n".join(rows)


def _html_table(report: Report) -> str:
    site = report.html_site or {}
    pages = site.get("pages", 0)
    rows = [f"### HTML: {pages} pages of {site.get('bytes', 0) / max(1, pages) / 1024:.0f} kB "
            "on average, no audio",
            "",
            "| run | load at start | pages | crawl | pages/s | command (start-up) | pages/s of "
            "the command | CPU per page | CPU use | peak RSS |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for number, r in enumerate(report.html_runs, start=1):
        rows.append(f"| {number} | {r.load_average:.2f} | {r.pages} | {r.crawl_seconds:.1f} s | "
                    f"{r.pages_per_second:.1f} | {r.wall_seconds:.1f} s ({r.startup_seconds:.1f}"
                    f" s) | {r.pages_per_wall_second:.1f} | "
                    f"{1000 * r.cpu_seconds / r.pages:.1f} ms | "
                    f"{r.cpu_seconds / r.wall_seconds:.2f} cores | {r.peak_rss / 2**20:.0f} MiB |")
    return "\n".join(rows)


def _audio_table(report: Report) -> str:
    a = report.audio
    assert a is not None
    site = report.audio_site or {}
    seconds = site.get("track_seconds", 0.0)
    copies, others = list(a.copy_seconds), list(a.other_seconds)
    rows = [f"### Audio: {a.captures} files of {seconds / 60:.0f} min (MP3 128 kbit/s), "
            f"{a.expected} of them catalog copies, on {a.pages} pages",
            "",
            "| part | time | files per minute | CPU use | peak RSS |",
            "| --- | --- | --- | --- | --- |",
            f"| end to end (`crawl --json`) | {a.wall_seconds:.1f} s | "
            f"{a.files_per_minute:.1f} | {a.cpu_seconds / a.wall_seconds:.2f} cores | "
            f"{a.peak_rss / 2**20:.0f} MiB |",
            f"| of which start-up | {a.startup_seconds:.1f} s | | | |",
            f"| of which crawling | {a.crawl_seconds:.1f} s | "
            f"{60 * a.captures / a.crawl_seconds:.1f} | | |",
            f"| of which identifying after the crawl ({a.identified_during_crawl} of "
            f"{a.captures} files were identified while it ran) | {a.identify_seconds:.1f} s | "
            "| | |",
            "",
            "| identification per file | files | median | max | real-time factor (median) |",
            "| --- | --- | --- | --- | --- |"]
    for label, values in (("catalog copy", copies), ("music not in the catalog", others)):
        if values:
            rows.append(f"| {label} | {len(values)} | {_median(values):.2f} s | "
                        f"{max(values):.2f} s | {seconds / _median(values):.0f}x |")
    rows.append(f"| each worker's first (opening the index included; the slowest) | "
                f"{min(a.captures, os.cpu_count() or 1)} | | {a.first_seconds:.2f} s | |")
    rows += ["", f"Detections: {a.found} of {a.expected} catalog copies found as the right "
             f"recording ({a.review} of them under review_below, to be confirmed by a person); "
             f"{len(a.wrong)} detections of anything else"
             + (f" ({'; '.join(a.wrong[:5])})" if a.wrong else "")
             + (f"; missed: {', '.join(a.missed[:10])}" if a.missed else "") + ". Capture "
             "statuses: " + ", ".join(f"{k} {v}" for k, v in a.statuses.items()) + ". Catalog "
             f"import before the crawl (not counted): {a.import_seconds:.0f} s."]
    if copies and others:
        share = a.expected / max(1, a.captures)
        rows.append("")
        rows.append(
            f"With this site's mix ({100 * share:.0f} % catalog copies) identification alone "
            f"allows {60 / (share * _median(copies) + (1 - share) * _median(others)):.1f} files "
            f"per minute; with only copies {60 / _median(copies):.1f}, with only music not in "
            f"the catalog {60 / _median(others):.1f} (medians above).")
    return "\n".join(rows)


def _method(report: Report) -> str:
    options = report.options
    servers = ", ".join(f"{phase} {seconds:.1f} s" for phase, seconds
                        in report.server_cpu_seconds.items())
    return "\n".join([
        "### Method",
        "",
        "- Each crawl is `python -m monitor crawl --json` (`--no-identify` for the HTML site) in "
        "a fresh `COPYGUARD_HOME` (SQLite ledger), target added with `targets add URL --name "
        f"bench --allow-private --depth 50 --max-pages {PAGE_BUDGET} --delay 0`; environment "
        "`COPYGUARD_CRAWL__DEFAULT_DELAY_SECONDS=0`, `COPYGUARD_CRAWL__AUTOTHROTTLE=false`, "
        f"`COPYGUARD_CRAWL__DEFAULT_CONCURRENCY={options['concurrency']}`; everything else "
        "default (robots.txt obeyed, WARC evidence written).",
        "- Sites (`bench/crawl_site.py`, cached under `bench/cache/crawl-site-*`): served by "
        "`python -m http.server --protocol HTTP/1.1` in a process of its own on the same two "
        f"cores (its CPU time: {servers}). HTML content pages carry a navigation bar of "
        f"{crawl_site.SECTIONS} sections, {crawl_site.RELATED_LINKS} related links, "
        f"previous/next and {crawl_site.EXTERNAL_LINKS} links to other hosts (not followed); "
        "every page is two links from the home page. Audio files are synthesised tracks "
        "(`synthesize_track`) encoded by ffmpeg to MP3 128 kbit/s, 44.1 kHz stereo; the catalog "
        "holds the copied tracks as FLAC, imported with `catalog import` before the crawl.",
        "- Crawl time: from the crawl's `crawl.started` to its `crawl.finished` audit entry. "
        "The identify workers (one process per core) start with the crawl and take captures "
        "as they are written; identification after the crawl: from `crawl.finished` to the "
        "end of the command. Per file: the capture's `identify_seconds` (its worker's wall "
        "time decoding and matching it, while the other work shared the cores); each worker's "
        "first file, which opens the index, is kept out of the medians. "
        "Start-up: the command's start to `crawl.started` "
        "(imports, migrations). Files per minute end to end: captures over the command's time.",
        "- CPU use: user + system seconds of the copyguard process and its children over its "
        "wall time (2 would be both cores). Peak RSS: `wait4` of the copyguard process (the "
        "largest of it and its reaped children, ffmpeg decoders included).",
    ])


# --- main --------------------------------------------------------------------------------------

def results_path(directory: Path) -> Path:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return directory / f"crawl-{stamp}.json"


def write_json(report: Report, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = dataclasses.asdict(report)
    data["html_runs"] = [{**dataclasses.asdict(r), "pages_per_second": r.pages_per_second}
                         for r in report.html_runs]
    if report.audio is not None:
        data["audio"]["files_per_minute"] = report.audio.files_per_minute
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(data, indent=1, default=str))
    temporary.replace(path)


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    command = begin_run("bench-crawl", arguments)
    options = parse_options(arguments)
    started = time.perf_counter()
    machine = describe_machine(REPO)
    path = results_path(options.results)
    html: crawl_site.HtmlSite | None = None
    audio: crawl_site.AudioSite | None = None
    html_runs: list[HtmlRun] = []
    audio_run: AudioRun | None = None
    servers: dict[str, float] = {}

    def report() -> Report:
        return Report(machine, command, {k: str(v) if isinstance(v, Path) else v
                                         for k, v in dataclasses.asdict(options).items()},
                      crawl_site.describe(html) if html else None,
                      crawl_site.describe(audio) if audio else None, tuple(html_runs),
                      audio_run, servers, time.perf_counter() - started)

    with tempfile.TemporaryDirectory(prefix="bench-crawl-") as work:
        try:
            if "html" in options.phases:
                html, html_runs, servers["HTML phase"] = run_html(options, Path(work))
                write_json(report(), path)
            if "audio" in options.phases:
                audio, audio_run, servers["audio phase"] = run_audio(options, Path(work))
        except (CopyguardError, crawl_site.SiteError, DemoSiteError) as error:
            log.error("%s", error)
            return 1
    final = report()
    write_json(final, path)
    text = markdown(final)
    if options.document is not None:
        write_section(options.document, text, BEGIN, END)
    log.info("results written to %s%s", path,
             f" and {options.document.name}" if options.document else
             " (BENCHMARKS.md left alone: a phase was skipped; --write-doc forces it)")
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
