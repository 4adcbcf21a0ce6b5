"""``copyguard identify``: identify audio files against the catalog."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy import select

from fingerprints import DecodeError, Match, decode_file
from ledger.models import Recording, RightsHolder
from monitor.app import App
from monitor.console import emit_json, user_errors


def _describe(match: Match, titles: dict[int, tuple[str, str]]) -> dict[str, Any]:
    title, holder = titles.get(match.recording_id, ("?", "?"))
    return {"recording_id": match.recording_id, "title": title, "holder": holder,
            "confidence": round(match.confidence, 3), "query_start": round(match.query_start, 2),
            "query_end": round(match.query_end, 2), "ref_start": round(match.ref_start, 2),
            "speed": round(match.speed, 4), "pitch_semitones": round(match.pitch_semitones, 2)}


def identify(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(help="Audio files to identify.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per file per line.")
                       ] = False,
) -> None:
    """Identify audio files against the catalog. A file that cannot be decoded is reported and
    the others still run; the exit status is 0 unless the command itself failed."""
    built: App = ctx.obj
    with user_errors():
        matcher = built.matcher()  # the index is loaded once for every file
        limits = built.decode_limits
        results: list[dict[str, Any]] = []
        for path in files:
            result: dict[str, Any] = {"file": str(path)}
            try:
                audio = decode_file(path, max_seconds=limits.max_seconds,
                                    timeout=limits.timeout_seconds,
                                    memory_limit_mb=limits.memory_limit_mb)
            except DecodeError as exc:
                result["error"] = str(exc)
            else:
                match = matcher.match(audio)
                result["match"] = match
            results.append(result)
            if as_json:
                _emit(built, result)
    if not as_json:
        _table(built, results)


def _titles(built: App, ids: set[int]) -> dict[int, tuple[str, str]]:
    if not ids:
        return {}
    with built.ledger.read() as session:
        rows = session.execute(select(Recording.id, Recording.title, RightsHolder.name)
                               .join(RightsHolder).where(Recording.id.in_(ids))).all()
    return {rid: (title, holder) for rid, title, holder in rows}


def _emit(built: App, result: dict[str, Any]) -> None:
    match = result.get("match")
    if isinstance(match, Match):
        result = {**result, "match": _describe(match, _titles(built, {match.recording_id}))}
    emit_json(result)


def _table(built: App, results: list[dict[str, Any]]) -> None:
    titles = _titles(built, {r["match"].recording_id for r in results if r.get("match")})
    table = Table("file", "recording", "holder", "conf.", "aligned at", "speed, pitch")
    for column in table.columns[:3]:
        column.overflow = "fold"  # long names wrap rather than being cut off
    for r in results:
        name = Text(r["file"])
        if "error" in r:
            table.add_row(name, Text(f"error: {r['error']}", style="red"))
        elif r["match"] is None:
            table.add_row(name, Text("no match", style="dim"))
        else:
            d = _describe(r["match"], titles)
            table.add_row(name, Text(f"{d['recording_id']}: {d['title']}"), Text(d["holder"]),
                          f"{d['confidence']:.2f}",
                          f"{d['query_start']:.1f}s → {abs(d['ref_start']):.1f}s",
                          f"x{d['speed']:.3f}, {d['pitch_semitones']:+.1f} st")
    Console().print(table)
