"""``copyguard audit``: read and check the hash-chained audit log."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy import select

from ledger.audit import verify_chain
from ledger.models import AuditEntry
from monitor.app import App
from monitor.console import emit_json, err_console, user_errors

app = typer.Typer(help="Read and check the tamper-evident audit log.", no_args_is_help=True)


@app.command("verify")
def verify(ctx: typer.Context) -> None:
    """Verify every entry of the audit chain; exit status 1 if any was edited or deleted."""
    built: App = ctx.obj
    with user_errors(), built.ledger.read() as session:
        report = verify_chain(session)
    if report.ok:
        typer.echo(f"audit chain verified: {report.checked} entries, no problems")
        return
    for problem in report.problems:
        err_console.print(Text.assemble(("✗ ", "red"), problem))
    err_console.print(f"audit chain BROKEN: {len(report.problems)} problem(s) "
                      f"in {report.checked} entries")
    raise typer.Exit(1)


@app.command("list")
def list_(
    ctx: typer.Context,
    action: Annotated[str | None, typer.Option(
        help='Only entries of this action, or of actions starting with it ("capture.", ...).')
    ] = None,
    last: Annotated[int | None, typer.Option(help="Only the newest N entries.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """List audit-log entries, oldest first."""
    built: App = ctx.obj
    with user_errors(), built.ledger.read() as session:
        query = select(AuditEntry).order_by(AuditEntry.seq.desc())
        if action:
            query = query.where(AuditEntry.action.startswith(action))
        if last is not None:
            query = query.limit(last)
        entries = list(session.execute(query).scalars())[::-1]
        rows = [{"seq": e.seq, "at": e.at.isoformat(), "actor": e.actor, "action": e.action,
                 "entity_type": e.entity_type, "entity_id": e.entity_id,
                 "holder_id": e.holder_id, "details": json.loads(e.details), "hash": e.hash}
                for e in entries]
    if as_json:
        for row in rows:
            emit_json(row)
        return
    table = Table("seq", "at (UTC)", "actor", "action", "entity", "details")
    for row in rows:
        table.add_row(str(row["seq"]), row["at"][:19], Text(row["actor"]), row["action"],
                      f"{row['entity_type']} {row['entity_id'] or ''}",
                      Text(json.dumps(row["details"], ensure_ascii=False)[:120]))
    Console().print(table)
