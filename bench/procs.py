"""Other processes as ``/proc`` shows them: resident set, CPU time, parent, command line.

For the benchmarks that watch processes they did not start in-process (``copyguard daemon``
and its crawl children, ``copyguard worker`` and PostgreSQL's backends). Linux only: where
``/proc`` lacks a process (it ended meanwhile) the functions answer None or leave it out.
Reads no settings.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcessStat:
    """One process's line of ``/proc/<pid>/stat``, the fields we use."""

    pid: int
    ppid: int
    cpu_seconds: float  # user + system of the process itself
    children_cpu_seconds: float  # user + system of its children it has reaped


def stat(pid: int) -> ProcessStat | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in brackets and may hold spaces: split after it.
    fields = text.rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(fields[i]) for i in (11, 12, 13, 14))
    return ProcessStat(pid, int(fields[1]), (utime + stime) / _TICKS, (cutime + cstime) / _TICKS)


def rss_bytes(pid: int) -> int | None:
    """The process's resident set size now (VmRSS), or None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            errors="replace").strip()
    except OSError:
        return ""


def all_stats() -> Iterator[ProcessStat]:
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            found = stat(int(entry.name))
            if found is not None:
                yield found


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, their children, ...), at this moment."""
    children: dict[int, list[int]] = {}
    for found in all_stats():
        children.setdefault(found.ppid, []).append(found.pid)
    result: list[int] = []
    todo = list(children.get(pid, ()))
    while todo:
        current = todo.pop()
        result.append(current)
        todo.extend(children.get(current, ()))
    return sorted(result)
