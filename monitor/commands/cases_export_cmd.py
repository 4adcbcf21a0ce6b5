"""``copyguard cases export`` and ``copyguard dossier verify``: a case's dossier for counsel,
and the check that proves it unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import TaskID
from rich.text import Text

from litigation.cases import get_case
from litigation.dossier_verify import verify_dossier
from monitor.app import App
from monitor.commands.cases_cmd import HolderOption, holder_id_of
from monitor.console import emit_json, err_console, progress_bar, user_errors
from monitor.litigation_stage import default_dossier_path, export
from monitor.views.cases import export_view


def export_(
    ctx: typer.Context,
    case_id: Annotated[int, typer.Argument(help="The case's id.")],
    out: Annotated[Path | None, typer.Option(
        help="A directory to create, or a file ending in .zip. Default: "
             "<dossier_dir>/case-ID-TIME.zip.")] = None,
    no_pdf: Annotated[bool, typer.Option("--no-pdf", help="Leave out report.pdf.")] = False,
    holder: HolderOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="The result as one JSON object.")
                       ] = False,
) -> None:
    """Export a case's dossier: report (HTML and PDF), WARC evidence, captured audio, match
    pictures, notices, timeline.csv, works.csv, the chain of custody, a draft certification and
    manifest.json with every file's SHA-256 (time-stamped when litigation.tsa_url is set)."""
    built: App = ctx.obj
    with user_errors():
        holder_id = holder_id_of(built, holder)
        if out is None:
            with built.ledger.read() as session:
                out = default_dossier_path(built, get_case(session, case_id, holder_id))
        if not as_json:
            err_console.print(f"exporting case {case_id} to {out} ...")
        with progress_bar(quiet=as_json) as bar:
            tasks: dict[str, TaskID] = {}

            def step(name: str, done: int, total: int) -> None:
                label = {"evidence": "copying evidence", "pictures": "drawing the matches"}
                if name not in tasks:
                    tasks[name] = bar.add_task(label.get(name, name), total=total)
                bar.update(tasks[name], completed=done + 1)

            result = export(built, case_id, out, holder_id=holder_id, pdf=not no_pdf,
                            on_progress=step)
    if as_json:
        emit_json(export_view(case_id, result).model_dump())
        return
    for note in result.notes:
        err_console.print(Text(f"note: {note}", style="yellow"))
    typer.echo(f"dossier {result.dossier_id} of case {case_id}: {result.path} ({result.files} "
               f"files, {result.bytes / 1e6:.1f} MB), manifest SHA-256 {result.manifest_sha256}"
               + (f", time-stamped {result.timestamped_at.isoformat()}"
                  if result.timestamped_at else ""))


def verify(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="The dossier: its directory or zip file.")],
    tsa_ca: Annotated[Path | None, typer.Option(
        "--tsa-ca", exists=True, dir_okay=False,
        help="The time-stamping authority's CA certificate: check the token's signature too "
             "(default: the setting litigation.tsa_ca_file).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The result as one JSON object.")
                       ] = False,
) -> None:
    """Check a dossier: every file against its SHA-256 in the manifest (naming any changed,
    missing or added), the chain of custody, each WARC record's digest, and the time-stamp.
    Exit status 1 if anything does not verify. Needs no database."""
    ca = str(tsa_ca) if tsa_ca else None
    if ca is None:
        built: App = ctx.obj
        ca = built.settings.litigation.tsa_ca_file or None
    report = verify_dossier(path, ca_file=ca)
    if as_json:
        emit_json({"path": report.path, "ok": report.ok, "files": report.files,
                   "audit_entries": report.audit_entries, "warc_records": report.warc_records,
                   "timestamp": report.timestamp, "problems": report.problems})
    else:
        for problem in report.problems:
            err_console.print(Text.assemble(("problem: ", "bold red"), problem))
        stamp = f", time-stamped {report.timestamp}" if report.timestamp else ""
        typer.echo(f"{path}: {report.files} files, {report.audit_entries} audit entries, "
                   f"{report.warc_records} WARC records checked{stamp}: "
                   + ("no problems" if report.ok else f"{len(report.problems)} problem(s)"))
    if not report.ok:
        raise typer.Exit(1)
