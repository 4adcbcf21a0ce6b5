"""``copyguard crawl``, ``detections list`` and ``captures show``: one monitoring pass in the
foreground, and what it found."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ledger.errors import NotFoundError
from ledger.models import CrawlStatus, Target
from ledger.targets import get_target, list_targets
from monitor.app import App
from monitor.console import emit_json, err_console, progress_bar, user_errors
from monitor.identify_stage import IdentifyWorkers
from monitor.lifeline import started_by_a_copyguard_process
from monitor.views.captures import capture_view, get_capture
from monitor.views.detections import detection_filters, list_detections

if TYPE_CHECKING:
    from monitor.crawl.runner import CrawlResult

SUMMARY_KEYS = ("pages", "pages_not_modified", "audio_found", "captures", "unchanged",
                "refused", "robots_disallowed", "too_large", "page_budget_reached", "errors")


def crawl(
    ctx: typer.Context,
    targets: Annotated[list[str] | None, typer.Argument(
        help="Targets to crawl (default: every target).")] = None,
    identify: Annotated[bool, typer.Option(
        help="Identify the new captures against the catalog as they are crawled.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="The summary as JSON.")] = False,
) -> None:
    """Crawl targets once, now, identifying what is captured as it comes; prints a summary."""
    from monitor.crawl.runner import run_crawls  # Scrapy and Twisted only when crawling

    built: App = ctx.obj
    with user_errors():
        if not started_by_a_copyguard_process():
            built.sync_targets()
        with built.ledger.read() as session:
            chosen = ([get_target(session, name) for name in targets] if targets
                      else list_targets(session))
            session.expunge_all()
        if not chosen:
            raise NotFoundError("no targets: add one with `copyguard targets add URL --name N` "
                                "or in the config file")
        err_console.print(f"crawling {', '.join(t.name for t in chosen)} ...")
        if not identify:
            results = run_crawls(built.settings, built.ledger, built.clock, chosen,
                                 actor=built.actor)
            detections = 0
        else:
            results, detections = _crawl_and_identify(built, chosen, run_crawls)
    summary = [{"target": r.target, "crawl_id": r.crawl_id, "status": r.status,
                **{k: r.stats.get(k, 0) for k in SUMMARY_KEYS}} for r in results]
    failed = [r for r in results if r.status == CrawlStatus.FAILED]
    if as_json:
        emit_json({"crawls": summary, "detections": detections,
                   "problems": [p for r in results for p in r.stats.get("problems", [])]})
        if failed:
            raise typer.Exit(1)
        return
    table = Table("", *(row["target"] for row in summary))
    table.add_row("status", *(row["status"] for row in summary))
    for key in SUMMARY_KEYS:
        table.add_row(key.replace("_", " "), *(str(row[key]) for row in summary))
    console = Console()
    console.print(table)
    for result in results:
        for problem in result.stats.get("problems", [])[:20]:
            console.print(Text(f"{result.target}: {problem['kind']}: {problem['url']} "
                               f"({problem['reason']})", style="yellow"))
    typer.echo(f"{detections} new detection(s); see `copyguard detections list`.")
    for result in failed:
        err_console.print(f"[red]{result.target}: the crawl failed: "
                          f"{result.stats.get('error') or 'see the log'}[/red]")
    if failed:
        raise typer.Exit(1)


def _crawl_and_identify(built: App, chosen: list[Target],
                        run_crawls: Callable[..., list[CrawlResult]]
                        ) -> tuple[list[CrawlResult], int]:
    """Crawl with the identify workers already running, so captures are identified while the
    crawl goes on; then drain what is left. A crawl stopped by Ctrl-C stops them too (each
    finishes the capture in hand); what is still pending waits for the next run."""
    workers = built.settings.crawl.identify_workers or os.cpu_count() or 1
    with IdentifyWorkers(built.settings, workers, actor=built.actor) as pool:
        results = run_crawls(built.settings, built.ledger, built.clock, chosen,
                             actor=built.actor)
        if any(r.status == CrawlStatus.INTERRUPTED for r in results):
            report = pool.stop()
        else:
            with progress_bar() as bar:
                task = bar.add_task(f"identifying captures ({workers} processes)", total=None)
                report = pool.finish(
                    on_progress=lambda done: bar.update(task, completed=done))
    if report.crashed:
        err_console.print(f"[yellow]{report.crashed} identify process(es) died; their "
                          "captures are identified again by the next run[/yellow]")
    return results, report.detections


def detections_list(
    ctx: typer.Context,
    target: Annotated[str | None, typer.Option(help="Only this target's detections.")] = None,
    holder: Annotated[str | None, typer.Option(help="Only this rights-holder's.")] = None,
    status: Annotated[str | None, typer.Option(
        help="Only detections in this status: new, review, rejected, noticed, licensed.")
    ] = None,
    since: Annotated[datetime | None, typer.Option(
        help="Only detections found at or after this time (UTC), e.g. 2026-11-01.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """List detections, newest first."""
    built: App = ctx.obj
    where = detection_filters(target=target, holder=holder, status=status,
                              since=since.replace(tzinfo=UTC) if since else None)
    with user_errors(), built.ledger.read() as session:
        rows = list_detections(session, where)
    if as_json:
        for row in rows:
            emit_json(row.model_dump())
        return
    table = Table("id", "recording", "holder", "conf.", "url", "target", "change", "status")
    for r in rows:
        table.add_row(str(r.id), Text(r.title), Text(r.holder), f"{r.confidence:.2f}",
                      Text(r.url, overflow="fold"), r.target,
                      f"x{r.speed:.3f} {r.pitch_semitones:+.1f} st", r.status)
    Console().print(table)


def capture_show(
    ctx: typer.Context,
    capture_id: Annotated[int, typer.Argument(help="The capture's id.")],
    as_json: Annotated[bool, typer.Option("--json", help="As one JSON object.")] = False,
) -> None:
    """Show a capture: where and when it was fetched, its evidence and what it matched."""
    built: App = ctx.obj
    with user_errors(), built.ledger.read() as session:
        info = capture_view(session, get_capture(session, capture_id)).model_dump()
    if as_json:
        emit_json(info)
        return
    table = Table(show_header=False, box=None)
    for key, value in info.items():
        if key == "headers":
            value = "\n".join(f"{k}: {v}" for k, v in info["headers"])
        table.add_row(Text(key, style="bold"), Text(str(value)))
    Console().print(table)
