"""``copyguard notices``: list, read, review, re-check, counter and export takedown notices.

Sending is ``notices send`` (:mod:`monitor.commands.notices_send_cmd`). Every command that
names a notice or lists them takes ``--holder``: with it, only that holder's notices are seen.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ledger.errors import NotFoundError
from ledger.holders import get_holder
from ledger.models import Notice
from monitor.app import App
from monitor.console import emit_json, err_console, fail, user_errors
from monitor.views.notices import list_notices, notice_detail, notice_filters
from takedown import export
from takedown.counter import record_counter_notice
from takedown.review import approve, pending_review, reject


def _holder_id(built: App, name: str | None) -> int | None:
    if name is None:
        return None
    with built.ledger.read() as session:
        return get_holder(session, name).id


def _notice(session: Any, notice_id: int, holder_id: int | None) -> Notice:
    notice = session.get(Notice, notice_id)
    if notice is None or (holder_id is not None and notice.holder_id != holder_id):
        raise NotFoundError(f"no notice {notice_id} (see `copyguard notices list`)")
    return notice


def list_(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(
        help="Only notices in this state (draft, review, queued, sent, unconfirmed, failed, "
             "removed, partially-removed, ignored, countered, rejected).")] = None,
    holder: Annotated[str | None, typer.Option(help="Only this rights-holder's.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """List notices, newest first."""
    built: App = ctx.obj
    with user_errors():
        holder_id = _holder_id(built, holder)
        with built.ledger.read() as session:
            rows = list_notices(session, notice_filters(status=status, holder_id=holder_id))
    if as_json:
        for row in rows:
            emit_json(row.model_dump())
        return
    table = Table("id", "status", "law", "holder", "recipient", "urls", "sent", "note")
    for r in rows:
        note = r.last_error or (f"sue before {r.sue_before}" if r.sue_before else "")
        table.add_row(str(r.id), r.status, r.jurisdiction, Text(r.holder or ""),
                      Text(r.recipient or "", overflow="fold"), str(r.urls),
                      (r.sent_at or "")[:16], Text(note, style="yellow"))
    Console().print(table)


def show(
    ctx: typer.Context,
    notice_id: Annotated[int, typer.Argument(help="The notice's id.")],
    html: Annotated[bool, typer.Option("--html", help="The HTML version instead of text.")
                    ] = False,
    holder: Annotated[str | None, typer.Option(help="Act as this rights-holder.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="As one JSON object.")] = False,
) -> None:
    """Show a notice: its rendered text, URLs and delivery history."""
    built: App = ctx.obj
    with user_errors():
        holder_id = _holder_id(built, holder)
        with built.ledger.read() as session:
            notice = _notice(session, notice_id, holder_id)
            info = notice_detail(session, notice)
    if as_json:
        emit_json(info.model_dump())
        return
    if info.text is None:
        err_console.print(f"notice {notice_id} is a {info.status} not rendered yet"
                          + (f": {info.last_error}" if info.last_error else ""))
    else:
        typer.echo(f"Subject: {info.subject}\n")
        typer.echo(info.html if html else info.text)
    err_console.print(f"status {info.status}; {len(info.items)} URL(s); "
                      f"{len(info.attempts_log)} delivery attempt(s)")
    for attempt in info.attempts_log:
        err_console.print(Text(f"  #{attempt.number} {attempt.kind} via "
                               f"{attempt.channel} at {attempt.started_at[:19]}: "
                               f"{attempt.outcome or 'unfinished'} "
                               f"{attempt.status_code or ''} {attempt.reply or ''}"))


def review(
    ctx: typer.Context,
    notice_id: Annotated[int | None, typer.Argument(
        help="The notice to decide on; none: list the notices waiting for review.")] = None,
    approve_: Annotated[bool, typer.Option("--approve", help="Send it.")] = False,
    reject_: Annotated[bool, typer.Option("--reject", help="Do not send it.")] = False,
    reason: Annotated[str | None, typer.Option(
        help="Why (kept in the audit log): e.g. that authorisation and fair use were "
             "considered.")] = None,
    holder: Annotated[str | None, typer.Option(help="Act as this rights-holder.")] = None,
) -> None:
    """Approve or reject a notice waiting for a person; without an id, list those waiting."""
    built: App = ctx.obj
    with user_errors():
        holder_id = _holder_id(built, holder)
        if notice_id is None:
            with built.ledger.read() as session:
                waiting = pending_review(session, holder_id=holder_id)
                table = Table("id", "law", "recipient", "urls", "why a person decides")
                for notice in waiting:
                    grounds = (notice.consideration or {}).get("review_reasons") or []
                    table.add_row(str(notice.id), notice.jurisdiction,
                                  Text(notice.recipient_email or notice.recipient_form_url
                                       or ""), str(len(notice.items)),
                                  Text("; ".join(map(str, grounds))))
            Console().print(table)
            typer.echo(f"{len(waiting)} notice(s) waiting; read one with `copyguard notices "
                       "show ID`, then `notices review ID --approve|--reject --reason ...`.")
            return
        if approve_ == reject_:
            fail("say --approve or --reject (and --reason)", code=2)
        if not reason or not reason.strip():
            fail("a decision needs --reason: it is kept with the notice", code=2)
        with built.ledger.write() as session:
            decide = approve if approve_ else reject
            notice = decide(session, built.clock, notice_id, actor=built.actor,
                            reason=reason.strip(), holder_id=holder_id)
            typer.echo(f"notice {notice.id} is now {notice.status}")


def counter(
    ctx: typer.Context,
    notice_id: Annotated[int, typer.Argument(help="The notice countered.")],
    file: Annotated[Path, typer.Option("--file", exists=True, dir_okay=False,
                                       help="The counter-notice as received (text).")],
    sender: Annotated[str | None, typer.Option(help="Who sent it.")] = None,
    holder: Annotated[str | None, typer.Option(help="Act as this rights-holder.")] = None,
) -> None:
    """Record a counter-notice; prints the put-back window (the date to sue before)."""
    built: App = ctx.obj
    with user_errors():
        holder_id = _holder_id(built, holder)
        message = file.read_text(encoding="utf-8", errors="replace")
        with built.ledger.write() as session:
            countered = record_counter_notice(session, built.clock, notice_id, message,
                                              actor=built.actor, sender=sender,
                                              holder_id=holder_id)
            window = (f"put back between {countered.putback_earliest} and "
                      f"{countered.putback_latest}: file suit before "
                      f"{countered.putback_earliest} to keep it down"
                      if countered.putback_earliest else "no put-back window")
            typer.echo(f"counter-notice {countered.id} recorded ({countered.rule}); {window}.")


def export_(
    ctx: typer.Context,
    fmt: Annotated[str, typer.Option("--format", help="lumen (JSON), urls (one per line) or "
                                                      "csv (URL, work, notice).")] = "lumen",
    holder: Annotated[str | None, typer.Option(help="Only this rights-holder's.")] = None,
    still_up: Annotated[bool, typer.Option(
        "--still-up", help="urls/csv: only URLs not found removed.")] = False,
    out: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
) -> None:
    """Export sent notices: Lumen records, or the infringing URLs for search engines."""
    built: App = ctx.obj
    if fmt not in ("lumen", "urls", "csv"):
        fail(f"--format must be lumen, urls or csv, not {fmt!r}", code=2)
    with user_errors():
        holder_id = _holder_id(built, holder)
        with built.ledger.read() as session:
            if fmt == "lumen":
                text = json.dumps(export.lumen_records(session, holder_id=holder_id),
                                  ensure_ascii=False, indent=2) + "\n"
            else:
                rows = export.url_rows(session, holder_id=holder_id, still_up_only=still_up)
                if fmt == "urls":
                    text = export.url_list(rows)
                else:
                    buffer = io.StringIO()
                    writer = csv.writer(buffer)
                    writer.writerow(["url", "work", "isrc", "notice", "sent_at", "status"])
                    writer.writerows([r.url, r.work, r.isrc or "", r.notice, r.sent_at or "",
                                      r.status] for r in rows)
                    text = buffer.getvalue()
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        err_console.print(f"wrote {out}")
