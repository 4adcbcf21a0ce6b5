"""Results of ``make bench-soak`` (bench.soak) and their markdown for BENCHMARKS.md.

The section goes between ``<!-- soak:begin -->`` and ``<!-- soak:end -->``; a rerun replaces
only that text. Memory figures are taken over the samples after the warm-up (the daemon opens
its index, its pools and caches fill during the first cycles). Reads no settings.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.measure import Machine

BEGIN = "<!-- soak:begin -->"
END = "<!-- soak:end -->"
MIB = 2 ** 20
EDGE_SAMPLES = 5  # samples whose median is "at the start" and "at the end"


@dataclass(frozen=True)
class Sample:
    """One look at the daemon, its children and its ledger."""

    seconds: float  # since the daemon was started
    cycles: int  # crawls finished (any end but running)
    rss: int  # the daemon process, bytes
    children: int  # its descendant processes at that moment (crawl children, ffmpeg)
    children_rss: int  # their resident sets added up
    children_max_rss: int  # the largest of them
    ledger_bytes: int  # the SQLite file and its WAL
    load_average: float  # 1 minute
    cpu_seconds: float  # the daemon's own user + system time so far
    children_cpu_seconds: float  # of its reaped children (the crawls) so far


@dataclass(frozen=True)
class Ledger:
    """What the ledger held at the end."""

    crawls: dict[str, int]  # by status
    crawl_failures: int  # failed runs recorded in stage_runs for crawl jobs
    job_runs: dict[str, int]  # stage -> runs recorded in stage_runs
    job_failures: dict[str, int]
    captures: int
    detections: int
    notices: int
    audit_entries: int
    ledger_bytes: int
    evidence_bytes: int


@dataclass(frozen=True)
class Report:
    machine: Machine
    command: str
    options: dict[str, Any]
    samples: tuple[Sample, ...]
    warmup_cycles: int
    ledger: Ledger
    served: dict[str, int]  # what the site answered, by kind and status
    server_cpu_seconds: float  # this process (the site's threads and the sampling)
    daemon_exit: int | None
    stop_seconds: float  # SIGTERM to exit
    wall_seconds: float
    stopped_by: str  # "cycles" or "time" (--max-minutes reached first)
    code: str  # which code ran (bench.snapshot)
    crawl_failures_running: int  # failed crawl runs before the SIGTERM

    @property
    def measured(self) -> tuple[Sample, ...]:
        after = tuple(s for s in self.samples if s.cycles >= self.warmup_cycles)
        return after or self.samples[-1:]

    @property
    def cycles(self) -> int:
        return self.samples[-1].cycles if self.samples else 0

    def start_rss(self) -> float:
        return statistics.median(s.rss for s in self.measured[:EDGE_SAMPLES])

    def end_rss(self) -> float:
        return statistics.median(s.rss for s in self.measured[-EDGE_SAMPLES:])

    def growth_mib(self) -> float:
        return (self.end_rss() - self.start_rss()) / MIB

    def slope_mib_per_1000(self) -> float:
        """Least-squares slope of the daemon's RSS against cycles, MiB per 1000 cycles."""
        points = self.measured
        if len(points) < 3 or points[-1].cycles == points[0].cycles:
            return 0.0
        x = np.asarray([s.cycles for s in points], dtype=np.float64)
        y = np.asarray([s.rss for s in points], dtype=np.float64) / MIB
        return float(np.polyfit(x, y, 1)[0] * 1000)

    def passed(self) -> bool:
        return self.growth_mib() <= self.options["max_growth_mib"] and self.daemon_exit == 0


def markdown(report: Report) -> str:
    return "\n\n".join([_preamble(report), _summary(report), _over_time(report),
                        _ledger(report), _method(report)]) + "\n"


def _mib(value: float) -> str:
    return f"{value / MIB:.1f} MiB"


def _preamble(report: Report) -> str:
    m, o = report.machine, report.options
    minutes = report.samples[-1].seconds / 60 if report.samples else 0.0
    loads = [s.load_average for s in report.samples]
    return "\n".join([
        "## Soak (`make bench-soak`)",
        "",
        f"Command: `{report.command}` — total {report.wall_seconds / 60:.1f} min, the daemon "
        f"{minutes:.1f} min, {report.cycles} crawl cycles"
        + (" (stopped by --max-minutes before --cycles)" if report.stopped_by == "time" else "")
        + ".",
        "",
        f"Machine: {m.cpu_model}, {m.cores} cores, {m.memory_bytes / 2**30:.1f} GiB RAM, Python "
        f"{m.python}. Date: {m.date}. Commit: `{m.git_commit}`. Load average at the start: "
        f"{m.load_average[0]:.2f} / {m.load_average[1]:.2f} / {m.load_average[2]:.2f} (1 / 5 / "
        f"15 min); during the run median {statistics.median(loads) if loads else 0:.2f}, max "
        f"{max(loads, default=0):.2f} (2 cores).",
        "",
        f"Setup: `copyguard daemon` on the embedded default (SQLite in a scratch "
        f"`COPYGUARD_HOME`), {o['targets']} targets on one local server, each crawled `every "
        f"1m`, a new upload on each site every {o['audio_every']:.0f} s (identified by the "
        "daemon's identify job; half of the pool files are catalog excerpts, so detections, "
        "notices and cases grow too).",
    ])


def _summary(report: Report) -> str:
    measured = report.measured
    bound = report.options["max_growth_mib"]
    growth = report.growth_mib()
    children_max = max((s.children_max_rss for s in measured), default=0)
    tenth = max(1, len(measured) // 10)
    first = max((s.children_max_rss for s in measured[:tenth]), default=0)
    last = max((s.children_max_rss for s in measured[-tenth:]), default=0)
    span = measured[-1].cycles - measured[0].cycles if measured else 0
    rate = (report.cycles / (report.samples[-1].seconds / 60)) if report.samples and \
        report.samples[-1].seconds else 0.0
    daemon_cpu = report.samples[-1].cpu_seconds if report.samples else 0.0
    child_cpu = report.samples[-1].children_cpu_seconds if report.samples else 0.0
    seconds = report.samples[-1].seconds if report.samples else 1.0
    rows = [
        "| figure | value |",
        "| --- | --- |",
        f"| crawl cycles (finished crawl runs) | {report.cycles} ({rate:.1f} a minute) |",
        f"| daemon RSS at the start (after {report.warmup_cycles} warm-up cycles; median of "
        f"{EDGE_SAMPLES} samples) | {_mib(report.start_rss())} |",
        f"| daemon RSS at the end (median of the last {EDGE_SAMPLES} samples) | "
        f"{_mib(report.end_rss())} |",
        f"| daemon RSS max (after warm-up) | {_mib(max(s.rss for s in measured))} |",
        f"| daemon RSS growth over {span} cycles | {growth:+.1f} MiB |",
        f"| slope (least squares over {len(measured)} samples) | "
        f"{report.slope_mib_per_1000():+.2f} MiB per 1000 cycles |",
        f"| bound: no growth beyond {bound:.0f} MiB over the run | "
        + ("not applicable (`--trace-memory`: tracemalloc inflates the RSS)"
           if report.options.get("trace_memory") else "met" if growth <= bound
           else "**exceeded**") + " |",
        f"| crawl children: largest RSS seen (first / last tenth of the run) | "
        f"{_mib(children_max)} ({_mib(first)} / {_mib(last)}) |",
        f"| CPU: daemon / its children (crawls, decoders) | {daemon_cpu / seconds:.2f} / "
        f"{child_cpu / seconds:.2f} cores |",
        f"| daemon exit after SIGTERM | status {report.daemon_exit} in "
        f"{report.stop_seconds:.1f} s |",
    ]
    return "\n".join(rows)


def _over_time(report: Report) -> str:
    samples = report.samples
    if not samples:
        return ""
    picks = sorted({round(i * (len(samples) - 1) / 10) for i in range(11)})
    rows = ["### Over time", "",
            "| minute | cycles | daemon RSS | children (largest) | ledger file | load |",
            "| --- | --- | --- | --- | --- | --- |"]
    for index in picks:
        s = samples[index]
        rows.append(f"| {s.seconds / 60:.1f} | {s.cycles} | {_mib(s.rss)} | {s.children} "
                    f"({_mib(s.children_max_rss)}) | {_mib(s.ledger_bytes)} | "
                    f"{s.load_average:.2f} |")
    return "\n".join(rows)


def _ledger(report: Report) -> str:
    led = report.ledger
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(led.crawls.items()))
    jobs = ", ".join(f"{stage} {runs} ({led.job_failures.get(stage, 0)} failed)"
                     for stage, runs in sorted(led.job_runs.items()))
    per_cycle = led.ledger_bytes / max(1, report.cycles)
    at_stop = led.crawl_failures - report.crawl_failures_running
    served = ", ".join(f"{k} {v}" for k, v in sorted(report.served.items()))
    return "\n".join([
        "### Ledger and evidence at the end", "",
        f"Crawls: {statuses}. Failed crawl runs: {report.crawl_failures_running} while it ran, "
        f"{at_stop} at the stop (crawl children that got the daemon's SIGINT before they had "
        "installed their handler, during start-up, exit with status -2 and are recorded as "
        f"failed). Job runs recorded (`stage_runs`): {jobs}. Captures "
        f"{led.captures}, detections {led.detections}, notices {led.notices}, audit entries "
        f"{led.audit_entries}. Ledger file {_mib(led.ledger_bytes)} ({per_cycle / 1024:.1f} KiB "
        f"per cycle), evidence {_mib(led.evidence_bytes)}. The site served: {served}.",
    ])


def _method(report: Report) -> str:
    o = report.options
    return "\n".join([
        "### Method",
        "",
        f"- Code: {report.code}.",
        "- The daemon is `python -m monitor daemon`, a process of its own; targets come from a "
        "`copyguard.toml` (`[[targets]]`, `allow_private = true`, `schedule = \"every 1m\"`, "
        "depth 2, `notice_email` set so no RDAP lookup is made); environment "
        "`COPYGUARD_CRAWL__DEFAULT_DELAY_SECONDS=0`, `COPYGUARD_CRAWL__AUTOTHROTTLE=false`, "
        f"`COPYGUARD_DAEMON__IDENTIFY_EVERY_SECONDS={o['identify_every']:g}`, "
        f"`..._TAKEDOWN_EVERY_SECONDS={o['takedown_every']:g}`, "
        f"`..._CASES_EVERY_SECONDS={o['cases_every']:g}`, no ops listener, RDAP servers "
        "empty; everything else default (each crawl a `copyguard crawl` child process).",
        f"- Every {o['sample_seconds']:g} s: the daemon's VmRSS (`/proc/<pid>/status`; psutil "
        "is not in the venv), each descendant process's VmRSS (crawl children and their "
        "decoders, counted apart from the daemon), the crawls not running in the ledger "
        "(read-only SQLite connection), the size of the ledger file with its WAL. Start "
        f"and end: the median of {EDGE_SAMPLES} samples after {report.warmup_cycles} warm-up "
        "cycles and of the last 5. The script exits 1 when the growth passes the bound "
        "(`--max-growth-mib`) or the daemon does not exit cleanly.",
        *(["- `--trace-memory`: the daemon ran under tracemalloc (`bench/memtrace.py`, "
           f"{o.get('trace_frames')} frames a traceback, from the "
           f"{'start' if o.get('trace_from') == 'start' else 'end of the warm-up'}; crawl "
           "children not traced), so its "
           "RSS includes tracemalloc's bookkeeping and the bound has no verdict; the growth "
           "by allocation site is in `soak-<time>-memtrace.txt` beside the JSON."]
          if o.get("trace_memory") else []),
        "- The site (`bench/soak_site.py`) runs in threads of the benchmark process "
        f"(its CPU, sampling included: {report.server_cpu_seconds:.0f} s).",
    ])
