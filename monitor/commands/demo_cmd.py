"""``copyguard demo``: the demonstration on the embedded default (what ``make run`` runs).

It builds the demo catalog and site (monitor.demo), serves the site on 127.0.0.1, crawls it
as the target "demo-site" and identifies what was captured, then prints what copyguard made
of every placement, read from the ledger (so a second run, which captures nothing new, prints
the same report). Status lines go to stderr, the report to stdout.

Ctrl-C stops cleanly: during the crawl Scrapy stops gracefully and keeps what was captured,
during identification the capture in hand is finished first; the exit status is then 130.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy import select

from fingerprints.catalog import ImportOutcome, ImportStatus
from ledger.holders import get_holder
from ledger.models import Case, CrawlStatus, Dossier, Notice
from litigation.cases import list_cases
from litigation.dossier_verify import VerifyReport, verify_dossier
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
from monitor.demo_site import NOTICE_FORM_PATH, TRACKS_NEEDED, DemoServer, DemoSite, DemoSiteError
from monitor.identify_stage import IdentifyStage
from monitor.litigation_stage import default_dossier_path, export, refresh
from monitor.takedown_stage import outbox, prepare_notices
from takedown.outbox import Outcome

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
    server: DemoServer  # still serving: the takedown step posts notices to its form


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
    # Notices go out at once and are followed up at once: the demo host answers in seconds.
    # The demo's copies are 20-second excerpts: matches of 10 s or more are noticed by rule
    # (the default, 30 s, would send each to a person as a possible fair use).
    built.settings = built.settings.model_copy(update={
        "takedown": built.settings.takedown.model_copy(update={
            "batch_window_hours": 0.0, "recheck_after_days": 0.0, "deadline_days": 0.0,
            "min_interval_per_recipient_seconds": 0.0, "fair_use_review_seconds": 10.0})})
    _status(f"copyguard demo: data in {built.settings.home.resolve()}")
    try:
        with user_errors():
            crawled = _prepare_and_crawl(built)
            try:
                _identify(built)
                _takedown(built, crawled.server, _config_option(ctx))
            finally:
                crawled.server.stop()
            dossier = _litigation(built)
            report = demo_report(built, crawled.site, crawled.catalog)
    except (KeyboardInterrupt, _Interrupted) as exc:
        _status(f"interrupted{': ' + str(exc) if str(exc) else ''}. What was done so far is kept; "
                "`copyguard demo` carries on from there.", style="bold yellow")
        raise typer.Exit(INTERRUPTED) from None
    except DemoSiteError as exc:
        _status(f"error: {exc}", style="bold red")
        raise typer.Exit(1) from None
    _print_report(built, report, crawled.base_url, time.monotonic() - started, dossier)
    if not report.all_as_expected or (dossier is not None and not dossier.verified.ok):
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
        target = refresh_target(built, server.url("/"), server.url(NOTICE_FORM_PATH))
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
    except BaseException:
        server.stop()
        raise
    if early.received():
        server.stop()
        raise _Interrupted("stopped after the crawl; what it captured is identified on the "
                           "next run")
    for result in results:
        stats = result.stats
        if result.status == CrawlStatus.INTERRUPTED:
            server.stop()
            captured = stats.get("captures", 0)
            raise _Interrupted("the crawl stopped early" + (
                f", after {captured} new captures (identified on the next run)"
                if captured else ""))
        _status(f"  {stats.get('pages', 0)} pages fetched, {stats.get('pages_not_modified', 0)} "
                f"answered 304 Not Modified, {stats.get('captures', 0)} new captures")
    return _Crawled(catalog, site, base_url, server)


def _takedown(built: App, server: DemoServer, config: Path | None) -> None:
    """Notices for the new detections to the demo host's form; the host, a compliant one,
    takes the files down; then a re-check (a crawl of its own, so in a child process: the
    reactor of this one has run) confirms it."""
    server.honour_notices = True
    _status("drafting and sending takedown notices...")
    prepared = prepare_notices(built)
    for skipped in (*prepared.drafted.no_recipient, *prepared.drafted.problems):
        _status(f"  detection {skipped.detection_id}: {skipped.reason}", style="yellow")
    for notice_id, error in prepared.finalised.failed:
        _status(f"  notice {notice_id} not ready: {error}", style="yellow")
    if prepared.finalised.review:
        _status(f"  {len(prepared.finalised.review)} notice(s) wait for a person: "
                "`copyguard notices review`")
    dispatched = outbox(built).dispatch()
    sent = dispatched.count(Outcome.SENT)
    _status(f"  {sent} notice(s) sent to the demo host's form; it took down "
            f"{len(server.taken_down)} URL(s)")
    if not sent:
        return
    _status("re-checking the noticed URLs...")
    command = [sys.executable, "-m", "monitor", *(["--config", str(config)] if config else []),
               "notices", "recheck", "--json"]
    env = {**os.environ, "COPYGUARD_HOME": str(built.settings.home)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600,
                          check=False)
    if done.returncode != 0:
        _status(f"  the re-check failed: {done.stderr.strip()[-500:]}", style="bold red")
        return
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    _status("  " + (", ".join(f"{n} notice(s) {status}" for status, n
                              in sorted(outcome["outcomes"].items())) or "no outcome yet"))


@dataclass(frozen=True)
class _Dossier:
    case: Case
    path: Path
    verified: VerifyReport


def _litigation(built: App) -> _Dossier | None:
    """The case queue from what was found, and the top case's dossier, verified. A dossier
    exported by an earlier run is verified again rather than exported twice."""
    _status("scoring lawsuit candidates...")
    report = refresh(built)
    with built.ledger.read() as session:
        holder_id = get_holder(session, HOLDER).id
        cases = list_cases(session, holder_id=holder_id)
        if not cases:
            _status("  no cases")
            return None
        case = cases[0]
        session.expunge(case)
        earlier = session.execute(select(Dossier.path).where(Dossier.case_id == case.id)
                                  .order_by(Dossier.id.desc())).scalars().first()
    _status(f"  {report.cases} case(s), {len(report.opened)} opened; case {case.id} "
            f"({case.name}) scores {case.score:.1f} on the {case.track} track")
    if earlier is not None and Path(earlier).exists():
        path = Path(earlier)
        _status(f"  its dossier is there from an earlier run: {path}")
    else:
        path = default_dossier_path(built, case)
        _status(f"  exporting its dossier to {path} ...")
        result = export(built, case.id, path)
        for note in result.notes:
            _status(f"  note: {note}", style="yellow")
    verified = verify_dossier(path)
    for problem in verified.problems:
        _status(f"  dossier problem: {problem}", style="bold red")
    return _Dossier(case, path, verified)


def _config_option(ctx: typer.Context) -> Path | None:
    root = ctx.find_root()
    config = root.params.get("config") if root is not None else None
    return Path(config) if config else None


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

def _print_report(built: App, report: DemoReport, base_url: str, seconds: float,
                  dossier: _Dossier | None) -> None:
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
    with built.ledger.read() as session:
        notices = list(session.execute(select(Notice).order_by(Notice.id)).scalars())
        first_notice = notices[0].id if notices else "ID"
        for notice in notices:
            states = Counter(item.status for item in notice.items)
            recipient = notice.recipient_form_url or notice.recipient_email
            out.print(Text(f"Notice {notice.id} ({notice.jurisdiction.upper()}, "
                           f"{notice.reference}) to {recipient}: "
                           f"{notice.status}; {len(notice.items)} URL(s): "
                           + ", ".join(f"{n} {state}" for state, n in sorted(states.items()))))
    if dossier is not None:
        case, checked = dossier.case, dossier.verified
        out.print(Text(f"Case {case.id} ({case.name}): score {case.score:.1f}, track "
                       f"{case.track}, {case.works} works, {case.detections} detections."))
        out.print(Text(f"Dossier {dossier.path}: {checked.files} files, "
                       f"{checked.audit_entries} audit entries, {checked.warc_records} WARC "
                       "records verified: " + ("no problems" if checked.ok else
                                               f"{len(checked.problems)} problem(s)"),
                       style="green" if checked.ok else "bold red"))
    out.print(f"Done in {seconds:.1f} s. Where to look (the CLI is .venv/bin/copyguard):")
    capture = report.first_capture()
    where = [(f"copyguard detections list --target {TARGET}", "every detection, with its URL"),
             (f"copyguard captures show {capture or 'ID'}",
              "one capture: its page, how it was embedded, HTTP headers, SHA-256, WARC records"),
             (f"{built.settings.evidence_dir.resolve()}/",
              "the evidence: WARC files of every capture and of the page it was found on"),
             ("copyguard notices list", "the takedown notices, their delivery and outcome"),
             (f"copyguard notices show {first_notice}",
              "a notice's text as sent, its delivery attempts and re-checks"),
             ("copyguard cases list", "lawsuit candidates by score"),
             (f"copyguard cases show {dossier.case.id if dossier else 'ID'}",
              "a case: linked sites, gates, every factor of its score, damages estimate"),
             (f"copyguard dossier verify {dossier.path if dossier else 'PATH'}",
              "checks every file of the exported dossier and its chain of custody"),
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
