"""``copyguard audit``: check the hash-chained audit log."""

from __future__ import annotations

import typer
from rich.text import Text

from ledger.audit import verify_chain
from monitor.app import App
from monitor.console import err_console, user_errors

app = typer.Typer(help="Check the tamper-evident audit log.", no_args_is_help=True)


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
