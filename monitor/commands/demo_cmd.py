"""``copyguard demo``: the demonstration on the embedded default (what ``make run`` runs)."""

from __future__ import annotations

import time

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from fingerprints.catalog import ImportOutcome
from monitor.app import App
from monitor.console import user_errors
from monitor.demo import HOLDER, build_catalog, identify_queries, make_queries


def demo(ctx: typer.Context) -> None:
    """Build a demo catalog from synthesised music for "Demo Records", make pirated copies of it
    (re-encoded, noisy, filtered) next to unrelated audio, and identify them."""
    built: App = ctx.obj
    out = Console()
    home = built.settings.home
    started = time.monotonic()
    with user_errors():
        out.print(Text(f"copyguard demo — data in {home.resolve()}", style="bold"))
        out.print(f"1. Registering the catalog of {HOLDER!r} (synthesised tracks)…")

        def show(outcome: ImportOutcome) -> None:
            out.print(Text(f"   {outcome.status.value:>9}  {outcome.path.name}: {outcome.message}"))

        build_catalog(built, home / "demo" / "catalog", on_outcome=show)
        out.print("2. Making pirated copies and unrelated audio…")
        queries = make_queries(home / "demo" / "queries")
        out.print("3. Identifying them against the catalog…")
        results = identify_queries(built, queries)
    table = Table("what was posted", "identified as", "conf.", "at (true)", "")
    for r in results:
        if r.error:
            found = Text("could not decode: reported, skipped", style="yellow")
        else:
            found = Text(r.title or "no match", style="" if r.title else "dim")
        at = (f"{r.match.ref_start - r.match.query_start:.1f}s "
              f"({r.query.expected_ref_start:.1f}s)"
              if r.match and r.query.expected_ref_start is not None else "")
        table.add_row(Text(f"{r.query.alteration} [{r.query.name}]"), found,
                      f"{r.match.confidence:.2f}" if r.match else "", at,
                      Text("✓", style="green") if r.correct else
                      Text(f"✗ expected {r.query.expected_title or 'no match'}", style="red"))
    out.print(table)
    right = sum(r.correct for r in results)
    out.print(Text(f"{right}/{len(results)} right in {time.monotonic() - started:.1f} s.",
                   style="bold green" if right == len(results) else "bold red"))
    out.print("Look further with: .venv/bin/copyguard catalog list · "
              ".venv/bin/copyguard identify FILE · .venv/bin/copyguard audit verify")
    if right != len(results):
        raise typer.Exit(1)
