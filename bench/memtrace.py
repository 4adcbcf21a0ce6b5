"""Where a copyguard process's Python memory grows: tracemalloc snapshots and their comparison.

The soak (``python -m bench.soak --trace-memory``) found the daemon's resident set growing; this
module says which allocation sites hold the growth. Two uses:

``python bench/memtrace.py --out DIR [--every S] [--frames N] [--start-on-request] -- daemon``
runs the copyguard command line as ``python -m monitor`` does (``runpy``, ``sys.argv``), under
tracemalloc (``N`` frames a traceback) from the moment ``monitor.cli`` is imported, or with
``--start-on-request`` from the first snapshot request on. The crawl children the daemon starts
are other interpreters and are not traced. A thread writes a filtered snapshot (tracemalloc's
own frames and the import machinery left out) every ``S`` seconds to
``DIR/snapshot-<s since the start>.pickle``, one for each request file ``DIR/request-<label>``
another process creates (``snapshot-<s>-<label>.pickle``; the request file is then removed)
and one when the command returns (``-exit``). Each is written under a temporary name, then
renamed, so a reader never sees a partial file. A snapshot holds up every thread of the
process for a while (about 5 CPU s per 300,000 blocks; more on a loaded machine). No signal
handler is installed: the daemon's SIGTERM handling stays as it is. Run it by file path (as
bench.soak does) so that it needs nothing on ``sys.path`` beyond what ``python -m monitor``
sees; ``sys.path[0]`` becomes the current directory, as with ``-m``.

``python -m bench.memtrace --compare A.pickle B.pickle [--top 25]`` prints the sites that grew
from A to B, by the innermost frame of our code (monitor/, ledger/, fingerprints/, takedown/,
litigation/, config/) with the library frame it called, and by whole traceback.
Reads no settings.
"""

from __future__ import annotations

import argparse
import importlib
import linecache
import os
import re
import runpy
import sys
import threading
import time
import traceback
import tracemalloc
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

SNAPSHOT_GLOB = "snapshot-*.pickle"
REQUEST_PREFIX = "request-"
POLL_SECONDS = 1.0  # how often the dumper looks for request files
OURS = ("monitor", "ledger", "fingerprints", "takedown", "litigation", "config")
_OURS = re.compile(r"(?:^|/)(?:" + "|".join(OURS) + r")/")
_NAME = re.compile(r"snapshot-(?P<seconds>\d+(?:\.\d+)?)(?:-(?P<label>[A-Za-z0-9_]+))?\.pickle$")
_LABEL = re.compile(r"^[A-Za-z0-9_]+$")
MIB = 2 ** 20
FRAMES = 64  # the default traceback depth


def _filters() -> list[tracemalloc.Filter]:
    """What a snapshot leaves out: tracemalloc's own allocations and the import machinery."""
    return [tracemalloc.Filter(False, tracemalloc.__file__),
            tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
            tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>"),
            tracemalloc.Filter(False, "<unknown>")]


# --- tracing a copyguard command --------------------------------------------------------------

class Dumper(threading.Thread):
    """The thread that writes snapshots: every ``every`` seconds, on request, and at the end.
    With ``frames`` set, it also starts the tracing, at the first request."""

    def __init__(self, out: Path, every: float, *, frames: int | None = None) -> None:
        super().__init__(name="memtrace-dumper", daemon=True)
        self.out = out
        self.every = every
        self.frames = frames
        self.began = time.monotonic()  # names count from here: the process's start
        self._stop_event = threading.Event()
        self._lock = threading.Lock()  # one dump at a time (the thread and the final one)

    def run(self) -> None:
        next_due = self.began + self.every
        while not self._stop_event.wait(POLL_SECONDS):
            try:
                for request in sorted(self.out.glob(REQUEST_PREFIX + "*")):
                    label = request.name[len(REQUEST_PREFIX):]
                    if not tracemalloc.is_tracing() and self.frames is not None:
                        tracemalloc.start(self.frames)
                        _say(f"tracing started ({self.frames} frames), at request {label!r}")
                        next_due = time.monotonic() + self.every
                    self.dump(label if _LABEL.match(label) else "request")
                    request.unlink(missing_ok=True)
                if tracemalloc.is_tracing() and time.monotonic() >= next_due:
                    self.dump()
                    next_due = time.monotonic() + self.every
            except Exception:  # a full disk must not end the tracing of a long run
                _say("snapshot failed:\n" + traceback.format_exc())

    def dump(self, label: str = "") -> Path:
        """Take a filtered snapshot and write it (a temporary name, then renamed)."""
        with self._lock:
            began = time.monotonic()
            elapsed = began - self.began
            snapshot = tracemalloc.take_snapshot().filter_traces(_filters())
            name = f"snapshot-{elapsed:08.1f}{'-' + label if label else ''}.pickle"
            partial = self.out / f".{name}.partial"
            snapshot.dump(str(partial))
            os.replace(partial, self.out / name)
            traced, peak = tracemalloc.get_traced_memory()
            _say(f"{name}: traced {traced / MIB:.1f} MiB (peak {peak / MIB:.1f}), tracemalloc's "
                 f"own {tracemalloc.get_tracemalloc_memory() / MIB:.1f} MiB, "
                 f"{len(snapshot.traces)} blocks, {time.monotonic() - began:.1f} s")
            return self.out / name

    def close(self) -> None:
        """Stop the thread and write the final snapshot (if tracing ever started)."""
        self._stop_event.set()
        self.join(timeout=600)
        if tracemalloc.is_tracing():
            self.dump("exit")


def _say(message: str) -> None:
    print(f"memtrace: {message}", file=sys.stderr, flush=True)


def trace(out: Path, every: float, frames: int, arguments: list[str], *,
          on_request: bool = False) -> None:
    """Run ``copyguard ARGUMENTS`` in this process under tracemalloc, dumping snapshots.

    ``monitor.cli`` (and with it nearly every library) is imported before tracing starts:
    import-time allocations are no growth, and tracing them costs minutes of CPU at 30 frames
    (``copyguard --help``: 3 CPU s untraced, 146 traced). ``monitor/__main__.py`` then finds it
    imported, as ``python -m monitor`` would have a moment later. With ``on_request`` tracing
    starts only at the first snapshot request (bench.soak asks at the end of the warm-up): the
    daemon's start-up runs at full speed and the snapshots hold only what was allocated since.
    """
    out.mkdir(parents=True, exist_ok=True)
    sys.argv = ["monitor", *arguments]  # argv[0] becomes monitor/__main__.py, as with -m
    importlib.import_module("monitor.cli")
    if not on_request:
        tracemalloc.start(frames)
    dumper = Dumper(out, every, frames=frames if on_request else None)
    dumper.start()
    try:
        runpy.run_module("monitor", run_name="__main__", alter_sys=True)
    finally:  # SystemExit too (typer ends with it): after the daemon has stopped
        dumper.close()


def request_snapshot(out: Path, label: str) -> None:
    """Ask a traced process writing to ``out`` for a snapshot named with ``label``."""
    if not _LABEL.match(label):
        raise ValueError(f"a snapshot label is letters, digits and _: {label!r}")
    (out / f"{REQUEST_PREFIX}{label}").touch()


def wait_for_snapshot(out: Path, label: str, timeout: float) -> Path | None:
    """The snapshot written for ``label``, waiting up to ``timeout`` s; None if none came."""
    deadline = time.monotonic() + timeout
    while True:
        found = [path for path, (_, lab) in snapshots(out) if lab == label]
        if found and not (out / f"{REQUEST_PREFIX}{label}").exists():
            return found[-1]
        if time.monotonic() > deadline:
            return None
        time.sleep(0.5)


def snapshots(out: Path) -> list[tuple[Path, tuple[float, str]]]:
    """The snapshots in ``out``, oldest first, each with (seconds since start, label)."""
    found = []
    for path in out.glob(SNAPSHOT_GLOB):
        match = _NAME.match(path.name)
        if match:
            found.append((path, (float(match["seconds"]), match["label"] or "")))
    return sorted(found, key=lambda item: item[1][0])


def closest_snapshot(out: Path, seconds: float, *, label: str = "") -> Path | None:
    """The snapshot labelled ``label`` if there is one, else the one nearest ``seconds``
    (periodic or requested, not the one at exit)."""
    found = snapshots(out)
    if label:
        labelled = [path for path, (_, lab) in found if lab == label]
        if labelled:
            return labelled[-1]
    candidates = [(abs(at - seconds), path) for path, (at, lab) in found if lab != "exit"]
    return min(candidates)[1] if candidates else None


# --- comparing two snapshots ------------------------------------------------------------------

def is_ours(filename: str) -> bool:
    """Whether a frame is in copyguard's own packages (not a library, not bench/)."""
    return "site-packages" not in filename and _OURS.search(filename) is not None


def short(filename: str) -> str:
    """A frame's file without the install prefix: ``monitor/daemon/jobs.py``,
    ``sqlalchemy/orm/session.py``, ``python3.11/threading.py``."""
    if "site-packages/" in filename:
        return filename.rsplit("site-packages/", 1)[1]
    match = _OURS.search(filename)
    if match:
        return filename[match.start() + 1:] if filename[match.start()] == "/" else \
            filename[match.start():]
    stdlib = re.search(r"python3\.\d+/", filename)
    return filename[stdlib.start():] if stdlib else filename


def _where(frame: tracemalloc.Frame, *, source: bool = False) -> str:
    text = f"{short(frame.filename)}:{frame.lineno}"
    if source:
        line = linecache.getline(frame.filename, frame.lineno).strip()
        if line:
            text += f"  `{line[:90]}`"
    return text


@dataclass(frozen=True)
class Site:
    """Growth attributed to one place: the innermost frame of ours and the library frame it
    called (where the allocation itself happened, when that is elsewhere)."""

    ours: tuple[tracemalloc.Frame, ...]  # innermost first, at most three
    below: tracemalloc.Frame | None  # the frame our innermost one called (library, stdlib)
    allocated: tracemalloc.Frame  # the innermost frame of all
    size_diff: int
    count_diff: int
    size: int
    count: int
    truncated: bool  # the traceback was longer than the frames traced


def _site(stat: tracemalloc.StatisticDiff, limit: int) -> Site:
    frames = list(stat.traceback)  # oldest first, at most ``limit`` (the innermost ones)
    innermost = frames[-1]
    ours_at = [i for i, frame in enumerate(frames) if is_ours(frame.filename)]
    ours = tuple(frames[i] for i in reversed(ours_at[-3:]))
    below = frames[ours_at[-1] + 1] if ours_at and ours_at[-1] + 1 < len(frames) else None
    # compare_to's tracebacks lose total_nframe: a full one may have been cut
    return Site(ours=ours, below=below, allocated=innermost, size_diff=stat.size_diff,
                count_diff=stat.count_diff, size=stat.size, count=stat.count,
                truncated=len(frames) >= limit)


def _grouped(sites: Iterable[Site]) -> list[Site]:
    """Sites summed by (innermost frame of ours, the frame below it)."""
    groups: dict[tuple[object, ...], Site] = {}
    for site in sites:
        key: tuple[object, ...] = (site.ours[:1], site.below) if site.ours else \
            ((), site.allocated)
        seen = groups.get(key)
        groups[key] = site if seen is None else Site(
            ours=seen.ours, below=seen.below, allocated=seen.allocated,
            size_diff=seen.size_diff + site.size_diff,
            count_diff=seen.count_diff + site.count_diff, size=seen.size + site.size,
            count=seen.count + site.count, truncated=seen.truncated or site.truncated)
    return sorted(groups.values(), key=lambda s: s.size_diff, reverse=True)


def _describe(number: int, site: Site, *, whole: bool) -> list[str]:
    lines = [f"{number:>3}. {site.size_diff / 1024:+10.1f} KiB {site.count_diff:+8d} blocks"
             f"   (now {site.size / 1024:.1f} KiB in {site.count} blocks)"]
    if site.ours:
        lines.append("       ours:      " + "  <-  ".join(
            _where(frame, source=i == 0) for i, frame in enumerate(site.ours[:1 if not whole
                                                                             else 3])))
        if site.below is not None:
            lines.append(f"       calls:     {_where(site.below, source=True)}")
    else:
        lines.append("       ours:      (no frame of ours"
                     + (" in the innermost frames traced: a deeper stack, see --frames)"
                        if site.truncated else ")"))
    shown = (site.below, *site.ours[:1])
    if (whole or not site.ours) and site.allocated not in shown:
        lines.append(f"       allocated: {_where(site.allocated, source=True)}")
    return lines


def compare(before: Path, after: Path, *, top: int = 25) -> str:
    """The report of what grew from snapshot ``before`` to ``after``, as text."""
    old = tracemalloc.Snapshot.load(str(before)).filter_traces(_filters())
    new = tracemalloc.Snapshot.load(str(after)).filter_traces(_filters())
    stats = new.compare_to(old, "traceback")
    sites = [_site(stat, new.traceback_limit) for stat in stats]
    grew = sum(s.size_diff for s in sites if s.size_diff > 0)
    shrank = sum(s.size_diff for s in sites if s.size_diff < 0)
    old_total = sum(t.size for t in old.traces)
    new_total = sum(t.size for t in new.traces)
    lines = [
        f"tracemalloc: {before.name} -> {after.name} ({new.traceback_limit} frames a "
        "traceback at most)",
        f"traced: {old_total / MIB:.1f} MiB in {len(old.traces)} blocks -> "
        f"{new_total / MIB:.1f} MiB in {len(new.traces)} blocks, net "
        f"{(new_total - old_total) / MIB:+.2f} MiB (grown {grew / MIB:+.2f}, freed "
        f"{shrank / MIB:+.2f} MiB)",
        "",
        f"## Top {top} growth by the innermost frame of our code and the frame it called",
        "",
    ]
    for number, site in enumerate(_grouped(sites)[:top], start=1):
        if site.size_diff <= 0:
            break
        lines += _describe(number, site, whole=False)
    lines += ["", f"## Top {top} growth by whole traceback (our three innermost frames shown)",
              ""]
    ranked = sorted(sites, key=lambda s: s.size_diff, reverse=True)
    for number, site in enumerate(ranked[:top], start=1):
        if site.size_diff <= 0:
            break
        lines += _describe(number, site, whole=True)
    return "\n".join(lines) + "\n"


# --- command line -----------------------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    command: list[str] = []
    if "--" in arguments:
        split = arguments.index("--")
        arguments, command = arguments[:split], arguments[split + 1:]
    parser = argparse.ArgumentParser(prog="python bench/memtrace.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="directory of the snapshots (tracing)")
    parser.add_argument("--every", type=float, default=300.0,
                        help="seconds between periodic snapshots (default 300)")
    parser.add_argument("--frames", type=int, default=FRAMES,
                        help=f"frames kept per traceback (default {FRAMES}: SQLAlchemy's "
                             "stacks are deep, our code is often more than 30 frames out from "
                             "the allocation)")
    parser.add_argument("--start-on-request", action="store_true",
                        help="start tracing at the first snapshot request (a file "
                             "DIR/request-<label>), not at once")
    parser.add_argument("--compare", type=Path, nargs=2, metavar=("BEFORE", "AFTER"),
                        help="compare two snapshots instead of tracing")
    parser.add_argument("--top", type=int, default=25, help="sites listed (default 25)")
    args = parser.parse_args(arguments)
    if args.compare:
        sys.stdout.write(compare(args.compare[0], args.compare[1], top=args.top))
        return 0
    if args.out is None or not command or args.every <= 0 or not 1 <= args.frames <= 1000:
        parser.error("tracing needs --out DIR, a positive --every, --frames from 1 to 1000 "
                     "and the copyguard arguments after --")
    trace(args.out, args.every, args.frames, command, on_request=args.start_on_request)
    return 0


if __name__ == "__main__":
    if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
        sys.path[0] = os.getcwd()  # as with python -m: bench/ itself must not shadow anything
    sys.exit(main())
