"""``copyguard daemon`` (every stage on its schedule) and ``copyguard status``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from monitor.app import App
from monitor.console import emit_json, fail, user_errors
from monitor.daemon.run import DaemonError, run_daemon
from monitor.daemon.status import status as read_status


def daemon(
    ctx: typer.Context,
    standby: Annotated[bool, typer.Option(
        help="If another daemon leads this ledger, wait and take over when it stops.")
    ] = False,
) -> None:
    """Run every stage on its schedule until SIGTERM or Ctrl-C: each target's crawl, identify,
    takedown (draft and send), removal re-checks, the case queue and a daily digest. A failed
    job is retried with backoff; a restart resumes what was pending."""
    built: App = ctx.obj
    root = ctx.find_root()
    config = root.params.get("config") if root is not None else None
    with user_errors():
        try:
            result = run_daemon(built, config=Path(config) if config else None,
                                standby=standby)
        except DaemonError as exc:
            fail(str(exc))
    if not result.clean:
        raise typer.Exit(1)


def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="As one JSON object.")] = False,
) -> None:
    """The daemon and each of its jobs (last run, errors, backoff, next run) and the depth of
    every queue, from the ledger."""
    built: App = ctx.obj
    with user_errors():
        info = read_status(built)
    if as_json:
        emit_json(info)
        return
    _print(info)


def _print(info: dict[str, Any]) -> None:
    out = Console(highlight=False)
    daemon = info["daemon"]
    out.print(Text(f"daemon: {'running' if daemon['running'] else 'not running'}"
                   + (f" ({daemon['worker']}, heartbeat {daemon['heartbeat_at']})"
                      if daemon["worker"] else ""),
                   style="green" if daemon["running"] else "yellow"))
    table = Table("job", "last run", "status", "seconds", "runs", "failures", "next run",
                  "summary / error")
    for job in info["jobs"]:
        failing = job["status"] == "failed"
        detail = job["error"] if failing else ", ".join(
            f"{k} {v}" for k, v in (job["summary"] or {}).items())
        table.add_row(job["job"], job["last_started_at"] or "", Text(
            job["status"] or "", style="bold red" if failing else ""),
            f"{job['last_seconds']:.1f}" if job["last_seconds"] is not None else "",
            str(job["runs"]), str(job["failures"]),
            job["retry_after"] or info["next_runs"].get(job["job"]) or "",
            Text(detail or "", overflow="fold"))
    out.print(table)
    queues = info["queues"]
    for name in ("captures", "detections", "notices", "cases"):
        counts = ", ".join(f"{n} {state}" for state, n in sorted(queues[name].items()))
        out.print(f"{name}: {counts or 'none'}")
