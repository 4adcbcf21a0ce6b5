"""``copyguard notices send`` and ``notices resend``: the outbox, run once in the foreground.

``send`` first marks attempts that a crash interrupted as in doubt (``unconfirmed``: never sent
again by itself), then hands every due queued notice to its recipient (``[smtp]`` for e-mail,
the form sender for web forms), under the rules of ``[takedown]`` (``max_attempts``,
``retry_base_seconds``, ``min_interval_per_recipient_seconds``, ``recheck_after_days``,
``deadline_days``) and ``[smtp] from_address``. ``resend`` is a person's decision to queue an
``unconfirmed`` or ``failed`` notice again. The logic lives in :mod:`takedown.outbox`.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer

from monitor.app import App
from monitor.console import emit_json, err_console, user_errors
from monitor.takedown_stage import Prepared, outbox, prepare_notices
from takedown.outbox import DispatchReport, NoticeResult

_DETAIL_CHARS = 120  # of a server's reply on the one line per notice


def send(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Show what would be sent; change nothing.")] = False,
    limit: Annotated[int | None, typer.Option(
        min=1, help="At most this many delivery attempts.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The result as one JSON object.")
                       ] = False,
) -> None:
    """Turn new detections into notices, then send the due queued notices.

    Prints one line per notice, then a summary. With --dry-run nothing is drafted or sent."""
    built: App = ctx.obj
    with user_errors():
        prepared = None if dry_run else prepare_notices(built)
        report = outbox(built).dispatch(limit=limit, dry_run=dry_run)
    drafting = _drafting(prepared) if prepared is not None else {}
    if as_json:
        emit_json({"dry_run": report.dry_run, "drafting": drafting,
                   "summary": report.summary(),
                   "notices": [asdict(result) for result in report.results]})
        return
    if prepared is not None:
        for skipped in (*prepared.drafted.no_recipient, *prepared.drafted.problems):
            err_console.print(f"[yellow]detection {skipped.detection_id} ({skipped.host}): "
                              f"{skipped.reason}[/yellow]")
        for notice_id, error in prepared.finalised.failed:
            err_console.print(f"[yellow]notice {notice_id} not ready: {error}[/yellow]")
        typer.echo(", ".join(f"{n} {what}" for what, n in drafting.items()))
    for result in report.results:
        typer.echo(_line(result))
    typer.echo(_summary(report))


def _drafting(prepared: Prepared) -> dict[str, int]:
    d, f = prepared.drafted, prepared.finalised
    return {"detections noticed": len(d.noticed), "licensed": len(d.licensed),
            "without recipient": len(d.no_recipient), "deferred": len(d.deferred),
            "notices queued": len(f.queued), "for review": len(f.review),
            "not ready": len(f.failed)}


def resend(
    ctx: typer.Context,
    notice_id: Annotated[int, typer.Argument(help="The notice's id.")],
    reason: Annotated[str, typer.Option(
        help="Why it is sent again (kept in the audit log), e.g. what the recipient said.")],
) -> None:
    """Queue an unconfirmed or failed notice again; `notices send` then sends it.

    It keeps its reference (Message-ID, Idempotency-Key), so the recipient can recognise a
    duplicate."""
    built: App = ctx.obj
    with user_errors():
        notice = outbox(built).resend(notice_id, actor=built.actor, reason=reason)
    typer.echo(f"notice {notice.id} ({notice.reference}) queued again; "
               "`copyguard notices send` sends it")


def _line(result: NoticeResult) -> str:
    detail = " ".join(result.detail.split())
    if len(detail) > _DETAIL_CHARS:
        detail = detail[:_DETAIL_CHARS] + " [...]"
    channel = result.channel or "-"
    return (f"#{result.notice_id} {result.reference} {result.outcome}: {channel} "
            f"{result.recipient}" + (f" ({detail})" if detail else ""))


def _summary(report: DispatchReport) -> str:
    counts = ", ".join(f"{count} {name}" for name, count in report.summary().items())
    return ("dry run, nothing changed: " if report.dry_run else "") + counts
