"""``copyguard catalog``: import, list and remove a rights-holder's recordings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy import or_, select
from sqlalchemy.orm import aliased

from fingerprints.catalog import (
    ImportOutcome,
    ImportStatus,
    collect_audio_files,
    import_files,
    remove_recording,
)
from fingerprints.metadata import load_metadata_csv
from ledger.holders import get_holder
from ledger.models import OwnershipConflict, Recording, RightsHolder
from monitor.app import App
from monitor.console import emit_json, err_console, fail, progress_bar, user_errors
from monitor.views.recordings import recording_filters, recording_rows, recording_summary

app = typer.Typer(help="Register and manage catalog recordings.", no_args_is_help=True)

_STYLE = {ImportStatus.IMPORTED: "green", ImportStatus.DUPLICATE: "yellow",
          ImportStatus.CONFLICT: "magenta", ImportStatus.FAILED: "red"}


@app.command("import")
def import_(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Audio files or folders (searched deeply).")],
    holder: Annotated[str, typer.Option(help="The rights-holder who owns these recordings.")],
    metadata: Annotated[Path | None, typer.Option(
        help="CSV with per-file metadata (file,title,artist,isrc,registration_number,"
             "registration_date,publication_date,territories,registration_status,"
             "chain_of_title); it overrides the files' tags.",
        exists=True, dir_okay=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON line per file.")] = False,
) -> None:
    """Import recordings: decode, fingerprint and register each file; bad files are reported
    and skipped, the rest imported."""
    built: App = ctx.obj
    with user_errors():
        overrides = load_metadata_csv(metadata) if metadata else {}
        files = collect_audio_files(paths, built.settings.catalog.extensions)
        if not files:
            fail("no audio files found in " + ", ".join(map(str, paths)))
        with built.ledger.read() as session:
            holder_id = get_holder(session, holder).id
        store = built.catalog_store
        progress = progress_bar(quiet=as_json)

        def report(outcome: ImportOutcome) -> None:
            progress.advance(task)
            if as_json:
                emit_json({"file": str(outcome.path), "status": outcome.status.value,
                           "recording_id": outcome.recording_id, "message": outcome.message})
            else:
                progress.console.print(Text.assemble(
                    (f"{outcome.status.value:>9} ", _STYLE[outcome.status]),
                    f"{outcome.path}: {outcome.message}"))

        with progress:
            task = progress.add_task("importing", total=len(files))
            outcomes = import_files(
                files, holder_id=holder_id, transaction=built.ledger.write, clock=built.clock,
                store=store, limits=built.decode_limits, actor=built.actor,
                duplicate_similarity=built.settings.catalog.duplicate_similarity,
                overrides=overrides, on_outcome=report)
    counts = {status: sum(o.status == status for o in outcomes) for status in ImportStatus}
    if not as_json:
        err_console.print(", ".join(f"{n} {s.value}" for s, n in counts.items()))


@app.command("list")
def list_(
    ctx: typer.Context,
    holder: Annotated[str | None, typer.Option(
        help="Only this rights-holder's recordings.")] = None,
    include_removed: Annotated[bool, typer.Option("--all", help="Include removed ones.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """List catalog recordings."""
    built: App = ctx.obj
    with user_errors(), built.ledger.read() as session:
        holder_id = get_holder(session, holder).id if holder else None
        rows = recording_rows(session, recording_filters(holder_id=holder_id,
                                                         include_removed=include_removed))
        if as_json:
            for rec, holder_name in rows:
                emit_json(recording_summary(rec, holder_name).model_dump())
            return
        table = Table("id", "title", "artist", "ISRC", "holder", "duration", "file")
        for rec, holder_name in rows:
            table.add_row(str(rec.id), rec.title, rec.artist or "", rec.isrc or "", holder_name,
                          f"{rec.duration:.1f}s", rec.source_name)
        Console().print(table)


@app.command("remove")
def remove(
    ctx: typer.Context,
    recording_id: Annotated[int, typer.Argument(metavar="ID", help="The recording's id.")],
) -> None:
    """Withdraw a recording: it is no longer matched (its history stays in the ledger)."""
    built: App = ctx.obj
    with user_errors():
        index = built.index
        with built.ledger.write() as session:
            rec = remove_recording(session, built.clock, index, recording_id=recording_id,
                                   actor=built.actor)
            typer.echo(f"Removed recording {rec.id} ({rec.title!r}); it will no longer match.")


@app.command("reindex")
def reindex(ctx: typer.Context) -> None:
    """Fingerprint every active recording again from its stored reference audio and rebuild
    the search index (after an upgrade that changed the fingerprint, or a damaged index)."""
    built: App = ctx.obj
    progress = progress_bar()
    with user_errors(), progress:
        task = progress.add_task("fingerprinting", total=None)
        report = built.rebuild_index(
            lambda done, total: progress.update(task, completed=done, total=total))
    typer.echo(f"Fingerprinted {report.refreshed} recording(s) again; the index holds "
               f"{report.added}.")
    if report.unrefreshable:
        err_console.print(Text(f"{report.unrefreshable} recording(s) have no reference audio "
                               "and keep their old fingerprint: import them again.",
                               style="yellow"))
        raise typer.Exit(1)


@app.command("conflicts")
def conflicts(
    ctx: typer.Context,
    holder: Annotated[str | None, typer.Option(
        help="Only conflicts involving this holder.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """List ownership conflicts: the same audio registered by two rights-holders."""
    built: App = ctx.obj
    mine, theirs = aliased(Recording), aliased(Recording)
    with user_errors(), built.ledger.read() as session:
        query = (select(OwnershipConflict, mine, theirs)
                 .join(mine, OwnershipConflict.recording_id == mine.id)
                 .join(theirs, OwnershipConflict.other_recording_id == theirs.id)
                 .order_by(OwnershipConflict.id))
        if holder:
            holder_id = get_holder(session, holder).id
            query = query.where(or_(mine.holder_id == holder_id, theirs.holder_id == holder_id))
        rows = session.execute(query).all()
        holders = dict(session.execute(select(RightsHolder.id, RightsHolder.name)).all())
        records: list[dict[str, Any]] = [
                   {"id": c.id, "status": c.status, "similarity": round(c.similarity, 3),
                    "detected_at": c.detected_at.isoformat(),
                    "recordings": [{"id": r.id, "title": r.title, "holder": holders[r.holder_id]}
                                   for r in (a, b)]}
                   for c, a, b in rows]
    if as_json:
        for record in records:
            emit_json(record)
        return
    table = Table("id", "recording", "holder", "other recording", "other holder", "similarity")
    for r in records:
        a, b = r["recordings"]
        table.add_row(str(r["id"]), f"{a['id']} {a['title']}", a["holder"],
                      f"{b['id']} {b['title']}", b["holder"], f"{r['similarity']:.2f}")
    Console().print(table)
