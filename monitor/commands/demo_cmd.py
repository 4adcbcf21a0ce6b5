"""``copyguard demo``: the demonstration on the embedded default (what ``make run`` runs).

It builds the demo catalog and site (monitor.demo), serves the site on 127.0.0.1, crawls it
as the target "demo-site" and identifies what was captured, then prints what copyguard made
of every placement, read from the ledger (so a second run, which captures nothing new, prints
the same report). Status lines go to stderr, the report to stdout.

Ctrl-C stops cleanly: during the crawl Scrapy stops gracefully and keeps what was captured,
during identification the capture in hand is finished first; the exit status is then 130.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from fingerprints.catalog import ImportOutcome, ImportStatus
from ledger.models import CrawlStatus
from monitor.app import App
from monitor.console import err_console, user_errors
from monitor.demo import (
    HOLDER,
    TARGET,
    Catalog,
    DemoReport,
    Finding,
    build_catalog,
    build_demo_site,
    demo_report,
    pending_captures,
    previous_port,
    refresh_target,
    title_of,
)
from monitor.demo_site import TRACKS_NEEDED, DemoServer, DemoSite, DemoSiteError
from monitor.identify_stage import IdentifyStage

INTERRUPTED = 130  # the shell's status for a command stopped by SIGINT
REPORT_WIDTH = 132  # the report's width when stdout is not a terminal (rich would take 80)
_SHOWN = {"no-match": "no match", "failed": "could not decode", "too-large": "too large",
          "not-found": "HTTP error: skipped", "robots": "robots.txt", "refused": "refused",
          "pending": "not identified yet", "not-audio": "not audio", "error": "error",
          "not-reached": "not reached"}


class _Interrupted(Exception):
    """Ctrl-C, taken where stopping was clean."""


@dataclass(frozen=True)
class _Crawled:
    catalog: Catalog
    site: DemoSite
    base_url: str


DEMO_AUDIO_CAP_MB = 4.0  # the demo's audio cap, below the default [crawl] max_audio_mb


def demo(ctx: typer.Context) -> None:
    """Build a demo catalog from synthesised music for "Demo Records", serve a local site
    carrying altered copies of it (re-encoded, sped up, pitch-shifted, noisy, cut) in every
    embedding style next to unrelated audio, crawl and identify it, and show what was found."""
    built: App = ctx.obj
    started = time.monotonic()
    crawl = built.settings.crawl
    if crawl.max_audio_mb > DEMO_AUDIO_CAP_MB:
        # The demo's oversized decoy is made just over the cap: keep it small.
        built.settings = built.settings.model_copy(update={
            "crawl": crawl.model_copy(update={"max_audio_mb": DEMO_AUDIO_CAP_MB})})
    _status(f"copyguard demo: data in {built.settings.home.resolve()}")
    try:
        with user_errors():
            crawled = _prepare_and_crawl(built)
            _identify(built)
            report = demo_report(built, crawled.site, crawled.catalog)
    except (KeyboardInterrupt, _Interrupted) as exc:
        _status(f"interrupted{': ' + str(exc) if str(exc) else ''}. What was done so far is kept; "
                "`copyguard demo` carries on from there.", style="bold yellow")
        raise typer.Exit(INTERRUPTED) from None
    except DemoSiteError as exc:
        _status(f"error: {exc}", style="bold red")
        raise typer.Exit(1) from None
    _print_report(built, report, crawled.base_url, time.monotonic() - started)
    if not report.all_as_expected:
        raise typer.Exit(1)


def _status(message: str, style: str = "") -> None:
    err_console.print(Text(message, style=style))


def _prepare_and_crawl(built: App) -> _Crawled:
    from monitor.crawl.runner import run_crawls  # Scrapy and Twisted only when crawling

    home = built.settings.home
    _status(f"building the demo catalog ({TRACKS_NEEDED} tracks)...")

    def show(outcome: ImportOutcome) -> None:
        if outcome.status is not ImportStatus.IMPORTED:
            _status(f"  {outcome.status.value}: {outcome.path.name}: {outcome.message}")

    catalog = build_catalog(built, home / "demo-catalog", on_outcome=show)
    have = sum(r is not None for r in catalog.recordings)
    if catalog.imported:
        _status(f"  imported {catalog.imported} recordings for {HOLDER!r}")
    else:
        _status(f"  catalog reused: {have} recordings of {HOLDER!r} already imported")
    _status("building the demo site...")
    site, reused = build_demo_site(built, home / "demo-site", catalog)
    _status(f"  site {'reused' if reused else 'written'}: {site.root}")
    server = _start_server(site, previous_port(built))
    try:
        base_url = server.base_url
        _status(f"serving the demo site at {base_url}/")
        target = refresh_target(built, server.url("/"))
        _status("crawling... (Ctrl-C stops cleanly)")
        saved = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
        # Scrapy takes Ctrl-C (a graceful stop) only once its reactor runs; until then a
        # KeyboardInterrupt would surface inside Twisted's code as a traceback. So a Ctrl-C
        # that early is noted, the crawl (short on this site) ends, and the demo stops then.
        early = _SigintLatch()
        signal.signal(signal.SIGINT, early.set)
        try:
            results = run_crawls(built.settings, built.ledger, built.clock, [target],
                                 actor=built.actor)
        finally:  # Scrapy leaves its handlers behind (SIG_IGN after a second Ctrl-C)
            for number, handler in saved.items():
                signal.signal(number, handler)
    finally:
        server.stop()
    if early.received():
        raise _Interrupted("stopped after the crawl; what it captured is identified on the "
                           "next run")
    for result in results:
        stats = result.stats
        if result.status == CrawlStatus.INTERRUPTED:
            captured = stats.get("captures", 0)
            raise _Interrupted("the crawl stopped early" + (
                f", after {captured} new captures (identified on the next run)"
                if captured else ""))
        _status(f"  {stats.get('pages', 0)} pages fetched, {stats.get('pages_not_modified', 0)} "
                f"answered 304 Not Modified, {stats.get('captures', 0)} new captures")
    return _Crawled(catalog, site, base_url)


def _start_server(site: DemoSite, port: int | None) -> DemoServer:
    """On the port of the last run if it is free (the same URLs: the crawler's conditional
    requests and revisit policy then apply), else on any free port."""
    if port:
        try:
            return DemoServer(site, port=port).start()
        except OSError:
            pass
    return DemoServer(site).start()


def _identify(built: App) -> None:
    pending = pending_captures(built)
    if not pending:
        _status("identifying: no new captures")
        return
    _status(f"identifying {pending} captures...")
    done = detections = 0
    with built.evidence() as evidence, _sigint_between_units() as sigint:
        stage = IdentifyStage(built.settings, built.ledger, built.clock, built.matcher,
                              evidence, actor=built.actor)
        while not sigint.received():
            report = stage.run(limit=1)
            if not report.captures:
                break
            done, detections = done + report.captures, detections + report.detections
    if sigint.received():
        raise _Interrupted(f"identification stopped after {done} of {pending} captures")
    _status(f"  {detections} new detections")


class _SigintLatch:
    def __init__(self) -> None:
        self._seen = False

    def set(self, _number: int = 0, _frame: FrameType | None = None) -> None:
        self._seen = True

    def received(self) -> bool:
        if not self._seen and signal.SIGINT in signal.sigpending():
            self._seen = True
        return self._seen


@contextmanager
def _sigint_between_units() -> Iterator[_SigintLatch]:
    """Ctrl-C only between two captures. SIGINT is blocked in this thread, and so in the ffmpeg
    it starts (a child inherits the mask): otherwise the terminal's SIGINT would kill the
    decoder mid-capture and the capture would be recorded as undecodable."""
    latch = _SigintLatch()
    previous = signal.signal(signal.SIGINT, latch.set)  # should another thread take it
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield latch
    finally:
        if signal.sigtimedwait({signal.SIGINT}, 0) is not None:  # consume it while blocked
            latch.set()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        signal.signal(signal.SIGINT, previous)


# --- the report -----------------------------------------------------------------------------

def _print_report(built: App, report: DemoReport, base_url: str, seconds: float) -> None:
    out = Console(highlight=False, width=None if sys.stdout.isatty() else REPORT_WIDTH)
    out.print(Text(f"What copyguard found on the demo site ({base_url}/):", style="bold"))
    table = Table("style", "alteration", "where", "copyguard found", "conf.", "speed / pitch",
                  "")
    for finding in report.findings:
        table.add_row(*_row(finding))
    out.print(table)
    copies_ok = report.copies_found == report.copies and not report.false_matches
    out.print(Text(f"{report.copies_found} of {report.copies} altered copies found, "
                   f"{len(report.false_matches)} false matches.",
                   style="bold green" if copies_ok else "bold red"))
    for stray in report.false_matches:
        out.print(Text(f"  false match: {stray.url} as {stray.title!r} "
                       f"({stray.confidence:.2f})", style="red"))
    out.print(Text(f"{report.others_as_expected} of {report.others} other placements (unrelated "
                   "audio, broken, missing, oversized, disallowed, private) handled as expected.",
                   style="green" if report.others_as_expected == report.others else "bold red"))
    out.print(f"Done in {seconds:.1f} s. Where to look (the CLI is .venv/bin/copyguard):")
    capture = report.first_capture()
    where = [(f"copyguard detections list --target {TARGET}", "every detection, with its URL"),
             (f"copyguard captures show {capture or 'ID'}",
              "one capture: its page, how it was embedded, HTTP headers, SHA-256, WARC records"),
             (f"{built.settings.evidence_dir.resolve()}/",
              "the evidence: WARC files of every capture and of the page it was found on"),
             ("copyguard audit verify", "checks the hash-chained audit log of all of it")]
    width = max(len(place) for place, _ in where)
    for place, what in where:
        out.print(Text(f"  {place.ljust(width)}  {what}"))


def _row(finding: Finding) -> tuple[Text | str, ...]:
    placement = finding.placement
    where = placement.path if placement.path.startswith("/") else finding.url
    if finding.outcome == "detection":
        found = Text(finding.title or "?")
        confidence = f"{finding.confidence:.2f}" if finding.confidence is not None else ""
        change = (f"x{finding.speed:.3f} {finding.pitch_semitones:+.1f} st"
                  if finding.speed is not None and finding.pitch_semitones is not None else "")
    else:
        found = Text(_SHOWN.get(finding.outcome, finding.outcome),
                     style="" if finding.as_expected else "bold")
        confidence = change = ""
    mark = (Text("ok", style="green") if finding.as_expected
            else Text(f"expected {_expected(placement.expected, placement.track)}", style="red"))
    return (placement.style, Text(placement.alteration), Text(where, overflow="fold"), found,
            confidence, change, mark)


def _expected(outcome: str, track: int | None) -> str:
    if outcome == "detection":
        return title_of(track) if track is not None else "a detection"
    return _SHOWN.get(outcome, outcome)
