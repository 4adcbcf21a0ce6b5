"""Results of ``make bench-workers`` (bench.workers) and their markdown for BENCHMARKS.md.

The section goes between ``<!-- workers:begin -->`` and ``<!-- workers:end -->``; a rerun
replaces only that text. Figures per process count are medians over its runs. Reads no
settings.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bench.measure import Machine
from bench.worker_captures import MAX_SECONDS, MIN_SECONDS, CaptureFile

BEGIN = "<!-- workers:begin -->"
END = "<!-- workers:end -->"


@dataclass(frozen=True)
class Run:
    """One ``copyguard worker --stage identify --processes K`` emptying the queue."""

    processes: int
    number: int  # order among all runs
    load_average: float  # 1 minute, at the start
    wall_seconds: float  # the command's start to no capture pending
    first_done_seconds: float  # the command's start to the first capture identified
    steady_seconds: float  # the first capture identified to the last
    steady_captures: int  # captures identified after the first one
    steady_identify_seconds: float  # their identify_seconds added up
    captures: int
    audio_seconds: float  # decoded audio of all captures
    identify_seconds: float  # decoding and matching, every capture's added up
    cpu_seconds: float  # the worker and its reaped children (identify processes, ffmpeg)
    database_cpu_seconds: float  # PostgreSQL backends of the scratch database
    commits: int  # transactions committed in the scratch database
    active_ms: float  # pg_stat_database.active_time over the run
    stop_seconds: float  # SIGTERM to exit
    exit_code: int
    not_done: int  # captures not identified (status other than done)
    claimed_more_than_once: int  # captures whose attempts are not 1
    reused: int  # captures that took over another's result (none expected: all bytes differ)
    claimants: int  # distinct identify processes that did captures
    per_claimant: tuple[int, ...]  # captures per process, sorted
    detections: int
    detection_audits: int  # detection.created entries written by the run
    right: int  # copies detected as their recording
    wrong: int  # detections of another recording, or of a file no catalog holds
    copies: int

    @property
    def captures_per_second(self) -> float:
        return self.captures / self.wall_seconds

    @property
    def audio_per_second(self) -> float:
        return self.audio_seconds / self.wall_seconds

    @property
    def steady_per_second(self) -> float:
        return self.steady_captures / self.steady_seconds if self.steady_seconds else 0.0

    @property
    def exactly_once(self) -> bool:
        return (self.not_done == 0 and self.claimed_more_than_once == 0 and self.reused == 0
                and self.detection_audits == self.detections and self.exit_code == 0)

    @property
    def ledger_ms_per_capture(self) -> float:
        """Wall time per capture outside decoding and matching (claim, reads, the result's
        transaction, polling), one process: meaningful for K = 1 only."""
        if not self.steady_captures:
            return 0.0
        return 1000 * (self.steady_seconds - self.steady_identify_seconds) / \
            self.steady_captures


@dataclass(frozen=True)
class Report:
    machine: Machine
    command: str
    server: str
    index: str
    catalog_tracks: int
    catalog_seconds: float
    import_seconds: float
    files: tuple[CaptureFile, ...]
    kinds: tuple[str, ...]
    runs: tuple[Run, ...]
    wall_seconds: float
    code: str  # which code ran (bench.snapshot)
    # The claim alone: (threads, claims, wall seconds, median seconds per claim)
    claims: tuple[tuple[int, int, float, float], ...] = ()

    def counts(self) -> list[int]:
        return sorted({run.processes for run in self.runs})

    def of(self, processes: int) -> list[Run]:
        return [run for run in self.runs if run.processes == processes]

    def median(self, processes: int, value: Callable[[Run], float]) -> float:
        return statistics.median(value(run) for run in self.of(processes))


def markdown(report: Report) -> str:
    return "\n\n".join([_preamble(report), _medians(report), _runs(report),
                        _database(report), _method(report)]) + "\n"


def _preamble(report: Report) -> str:
    m = report.machine
    loads = [run.load_average for run in report.runs]
    copies = [f for f in report.files if f.track is not None]
    audio = report.runs[0].audio_seconds if report.runs else 0.0
    return "\n".join([
        "## Identify workers (`make bench-workers`)",
        "",
        f"Command: `{report.command}` — total {report.wall_seconds / 60:.1f} min.",
        "",
        f"Machine: {m.cpu_model}, {m.cores} cores, {m.memory_bytes / 2**30:.1f} GiB RAM, Python "
        f"{m.python}. Date: {m.date}. Commit: `{m.git_commit}`. Load average at the start: "
        f"{m.load_average[0]:.2f} / {m.load_average[1]:.2f} / {m.load_average[2]:.2f} (1 / 5 / "
        f"15 min); at the start of the runs median {statistics.median(loads):.2f}, max "
        f"{max(loads):.2f} (2 cores: above 1 means other work shared them).",
        "",
        f"Database: {report.server} on the same machine, over TCP to 127.0.0.1; a scratch "
        f"database for the ledger and the index (`matching.index = \"{report.index}\"`). "
        f"Catalog: {report.catalog_tracks} tracks of Debian's `wesnoth-1.16-music` "
        f"({report.catalog_seconds / 3600:.2f} h), imported in {report.import_seconds:.0f} s. "
        f"Queue: {len(report.files)} pending captures, {audio / 60:.1f} min of audio: "
        f"{len(copies)} excerpts of {MIN_SECONDS:.0f}-{MAX_SECONDS:.0f} s of catalog tracks "
        f"(in turn: {'; '.join(report.kinds)}) and {len(report.files) - len(copies)} "
        "synthesised tracks no catalog holds.",
    ])


def _medians(report: Report) -> str:
    counts = report.counts()
    base = report.median(counts[0], lambda r: r.captures_per_second) if counts else 1.0
    steady_base = report.median(counts[0], lambda r: r.steady_per_second) if counts else 1.0
    rows = ["| processes | runs | wall time | captures/s | audio s per wall s | speedup vs "
            f"{counts[0]} | steady captures/s (speedup) | first capture done | CPU in use | "
            "PostgreSQL CPU | identified exactly once |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for k in counts:
        runs = report.of(k)
        rate = report.median(k, lambda r: r.captures_per_second)
        steady = report.median(k, lambda r: r.steady_per_second)
        rows.append(
            f"| {k} | {len(runs)} | {report.median(k, lambda r: r.wall_seconds):.1f} s | "
            f"{rate:.2f} | {report.median(k, lambda r: r.audio_per_second):.1f} | "
            f"{rate / base:.2f}x | {steady:.2f} ({steady / steady_base:.2f}x) | "
            f"{report.median(k, lambda r: r.first_done_seconds):.1f} s | "
            f"{report.median(k, lambda r: r.cpu_seconds / r.wall_seconds):.2f} cores | "
            f"{report.median(k, lambda r: r.database_cpu_seconds / r.wall_seconds):.2f} cores | "
            f"{sum(r.exactly_once for r in runs)} of {len(runs)} runs |")
    return "\n".join(["Medians over the runs of each count:", "", *rows])


def _runs(report: Report) -> str:
    rows = ["### Every run", "",
            "| run | processes | load at start | wall time | captures/s | captures per "
            "process | not done / claimed twice / reused | detections (audit entries) | copies "
            "found | wrong | stop |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in report.runs:
        rows.append(
            f"| {r.number} | {r.processes} | {r.load_average:.2f} | {r.wall_seconds:.1f} s | "
            f"{r.captures_per_second:.2f} | {_list(r.per_claimant)} | {r.not_done} / "
            f"{r.claimed_more_than_once} / {r.reused} | {r.detections} ({r.detection_audits}) "
            f"| {r.right} of {r.copies} | {r.wrong} | {r.stop_seconds:.1f} s, status "
            f"{r.exit_code} |")
    return "\n".join(rows)


def _list(values: Sequence[int]) -> str:
    return " + ".join(str(v) for v in values)


def _database(report: Report) -> str:
    counts = report.counts()
    rows = ["### The database's share", "",
            "| processes | PostgreSQL CPU per capture | worker CPU per capture | PostgreSQL "
            "share of the CPU | transactions per capture | active time per transaction | "
            "ledger time per capture (1 process) |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for k in counts:
        ledger = (f"{report.median(k, lambda r: r.ledger_ms_per_capture):.1f} ms"
                  if k == 1 else "")
        rows.append(
            f"| {k} | {report.median(k, lambda r: 1000 * r.database_cpu_seconds / r.captures):.0f}"
            f" ms | {report.median(k, lambda r: 1000 * r.cpu_seconds / r.captures):.0f} ms | "
            f"{report.median(k, _share):.0f} % | "
            f"{report.median(k, lambda r: r.commits / r.captures):.1f} | "
            f"{report.median(k, lambda r: r.active_ms / max(1, r.commits)):.2f} ms | "
            f"{ledger} |")
    if report.claims:
        rows += ["", "The claim alone, measured apart (`IdentifyStage._claim`, the stage's own: "
                 "one transaction, `SELECT ... FOR UPDATE SKIP LOCKED` and the lease written), "
                 "threads of one process taking every capture:", "",
                 "| threads | claims | claims/s | median per claim |", "| --- | --- | --- | --- |"]
        rows += [f"| {threads} | {count} | {count / wall:.0f} | {1000 * median:.1f} ms |"
                 for threads, count, wall, median in report.claims]
    return "\n".join(rows)


def _share(run: Run) -> float:
    total = run.cpu_seconds + run.database_cpu_seconds
    return 100 * run.database_cpu_seconds / total if total else 0.0


def _method(report: Report) -> str:
    return "\n".join([
        "### Method",
        "",
        f"- Code: {report.code}.",
        "- Set-up (`bench/workers.py`, `bench/worker_captures.py`): a scratch database on the "
        "server, `holders add`, `catalog import` of the package's files, `targets add`, then "
        "one crawl's captures written through the crawler's `LedgerSink` (blob and WARC "
        "records first, then the capture row and its audit entry). The capture files are "
        "cached under `bench/cache/worker-captures-*`.",
        "- Each run: the captures set back to pending and their detections deleted, then "
        "`python -m monitor worker --stage identify --processes K` (environment: the scratch "
        f"`COPYGUARD_HOME` and `COPYGUARD_DATABASE_URL`, `COPYGUARD_MATCHING__INDEX="
        f"{report.index}`, no ops listener; all else default). Wall time: from just before "
        "the command starts to the first look (every 0.1 s) that finds no capture pending, "
        "so it includes the worker's start-up (imports, spawning the K processes, each "
        "opening the ledger and the index); steady: from the first capture's `identified_at` "
        "to the last's. The process counts take turns (the order is rotated each repeat).",
        "- CPU in use: user + system seconds of the worker and its reaped children (`wait4`: "
        "the identify processes and their ffmpeg decoders) over the wall time. PostgreSQL "
        "CPU: user + system time of the server's backend processes connected to the scratch "
        "database (`/proc/<pid>/stat`, looked at every 0.5 s; the benchmark's own polling "
        "connection left out). Transactions and active time: `pg_stat_database` "
        "(`xact_commit`, `active_time`) of the scratch database over the run (the polling "
        "connection's transactions taken out; its active time, a count query every 0.1 s, "
        "left in). Ledger time per capture: the steady wall time of the "
        "one-process run less the captures' own `identify_seconds` (decoding and matching), "
        "per capture: the claim, the reads around it, the result's transaction.",
        "- Exactly once: every capture `done`, with `attempts` 1 (claimed once), its own "
        "`identify_seconds` (not a result taken over), and as many `detection.created` audit "
        "entries written in the run as detections; the worker exits 0 on SIGTERM.",
    ])
