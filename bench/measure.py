"""Measuring helpers for the benchmarks: CPU time with children, memory, percentiles, machine.

CPU time is this process's (``time.process_time``) plus that of its finished children
(``resource.getrusage(RUSAGE_CHILDREN)``), so work that ffmpeg does while decoding counts.
Reads no settings.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import platform
import resource
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np


def cpu_seconds() -> float:
    """CPU seconds (user + system) used so far by this process and its reaped children."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


@dataclass(frozen=True)
class Memory:
    """Resident set size now and at its peak, in bytes, of one process."""

    rss: int
    peak_rss: int


def memory() -> Memory:
    """This process's resident set size (VmRSS) and its high-water mark (VmHWM)."""
    values: dict[str, int] = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) * 1024
    except OSError:
        pass
    peak = values.get("VmHWM", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return Memory(rss=values.get("VmRSS", peak), peak_rss=peak)


@dataclass(frozen=True)
class Spread:
    """Median and 95th percentile of a sample (None when the sample is empty)."""

    count: int
    median: float | None
    p95: float | None

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        if not values:
            return cls(0, None, None)
        array = np.asarray(values, dtype=np.float64)
        return cls(len(array), float(np.median(array)), float(np.percentile(array, 95)))


@dataclass(frozen=True)
class Machine:
    """What the figures were measured on."""

    cpu_model: str
    cores: int
    memory_bytes: int
    python: str
    date: str
    git_commit: str
    load_average: tuple[float, float, float]  # at the start: other work skews the timings


def describe_machine(repo: Path) -> Machine:
    cpu_model = platform.processor() or "unknown"
    memory_bytes = 0
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_bytes = int(line.split()[1]) * 1024
                break
    except OSError:
        pass
    return Machine(
        cpu_model=cpu_model,
        cores=len(os.sched_getaffinity(0)),
        memory_bytes=memory_bytes,
        python=platform.python_version(),
        date=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        git_commit=_git_commit(repo),
        load_average=os.getloadavg(),
    )


def _git_commit(repo: Path) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=10, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    if done.returncode != 0:
        return "none (no commit yet)"
    commit = done.stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True, text=True, timeout=10, check=False,
    )
    return commit + ("+dirty" if dirty.stdout.strip() else "")


def begin_run(make_target: str, arguments: list[str]) -> str:
    """Set up a benchmark script's process: progress logged to stderr, and SIGTERM ending the
    run like Ctrl-C (so its ``finally`` blocks remove temporary indexes and schemas). Returns
    the command that reproduces the run, as the report states it."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(128 + number))
    return f"make {make_target}" + (
        f" BENCH_ARGS='{shlex.join(arguments)}'" if arguments else "")
