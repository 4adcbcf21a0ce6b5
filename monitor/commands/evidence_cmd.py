"""``copyguard evidence push``: upload to object storage the evidence only this disk has.

A crawl uploads each blob as it captures it and each WARC file when it closes it; what a crawl
killed with -9 (or an outage of object storage) left behind is uploaded by the next crawl on
this machine, or at once by this command. Settings: ``[evidence] s3_*``.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from ledger.evidence import PushReport
from monitor.app import App
from monitor.console import emit_json, err_console, fail, progress_bar, user_errors

app = typer.Typer(help="The evidence store: WARC files and captured media.",
                  no_args_is_help=True)


@app.command("push")
def push(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="The summary as one JSON object.")
                       ] = False,
) -> None:
    """Upload every closed WARC file and blob that object storage does not have yet; exit
    status 1 if object storage is not configured or unreachable, or a file could not be sent."""
    built: App = ctx.obj
    with user_errors(), built.evidence() as evidence:
        remote = evidence.remote
        if remote is None:
            fail("object storage is not configured: set [evidence] s3_endpoint and s3_bucket "
                 "(or COPYGUARD_EVIDENCE__S3_ENDPOINT and COPYGUARD_EVIDENCE__S3_BUCKET)")
        remote.check()  # unreachable or misconfigured: say so even when nothing is pending
        where = remote.url("")
        with progress_bar(quiet=as_json) as bar:
            task = bar.add_task(f"uploading to {where}", total=None)
            report = evidence.push_pending(
                on_progress=lambda done, total: bar.update(task, completed=done, total=total))
    if as_json:
        emit_json({"destination": where, "uploaded": report.uploaded,
                   "present": report.present, "busy": report.busy,
                   "problems": list(report.problems)})
    else:
        typer.echo(_summary(report, where))
    for problem in report.problems:
        err_console.print(Text.assemble(("✗ ", "red"), problem))
    if report.problems:
        raise typer.Exit(1)


def _summary(report: PushReport, where: str) -> str:
    parts = [f"{report.uploaded} file(s) uploaded to {where}"]
    if report.present:
        parts.append(f"{report.present} were there already")
    if report.busy:
        parts.append(f"{report.busy} still being written (uploaded when their crawl closes them)")
    if report.problems:
        parts.append(f"{len(report.problems)} could not be sent")
    return "; ".join(parts)
