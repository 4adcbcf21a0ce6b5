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
from monitor.daemon.worker import WorkerError, run_worker

_STAGES = ("crawl", "identify", "takedown", "recheck", "cases", "digest")


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
    with user_errors():
        try:
            result = run_daemon(built, config=_config_path(ctx), standby=standby)
        except DaemonError as exc:
            fail(str(exc))
    if not result.clean:
        raise typer.Exit(1)


def _config_path(ctx: typer.Context) -> Path | None:
    root = ctx.find_root()
    config = root.params.get("config") if root is not None else None
    return Path(config) if config else None


def worker(
    ctx: typer.Context,
    stage: Annotated[str, typer.Option(
        help=f"The stage to work: {', '.join(_STAGES)}.", show_default=False)],
    processes: Annotated[int, typer.Option(
        min=1, max=64, help="Identify processes in this worker (identify only).")] = 1,
    ops_listen: Annotated[str, typer.Option(
        help="host:port for this worker's /healthz and /metrics (port 0: any free one); "
             "default: none.")] = "",
) -> None:
    """Work one stage until SIGTERM or Ctrl-C, beside the daemon and other workers on the same
    ledger: identify takes pending captures as they come; the other stages run what the daemon
    queued for workers (daemon.worker_stages), one claimed run at a time."""
    built: App = ctx.obj
    if stage not in _STAGES:
        fail(f"no stage {stage!r}; one of {', '.join(_STAGES)}", code=2)
    if processes > 1 and stage != "identify":
        fail("--processes is for --stage identify; run more workers for more of the others",
             code=2)
    with user_errors():
        try:
            result = run_worker(built, stage, config=_config_path(ctx), processes=processes,
                                ops_listen=ops_listen)
        except WorkerError as exc:
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
    if info["workers"]:
        workers = Table("worker", "stage", "state", "started", "heartbeat", "summary")
        for w in info["workers"]:
            workers.add_row(w["worker"], w["stage"], Text(
                "running" if w["running"] else "gone", style="" if w["running"] else "yellow"),
                w["started_at"] or "", w["heartbeat_at"] or "",
                ", ".join(f"{k} {v}" for k, v in (w["summary"] or {}).items()))
        out.print(workers)
    queues = info["queues"]
    for name in ("captures", "detections", "notices", "cases"):
        counts = ", ".join(f"{n} {state}" for state, n in sorted(queues[name].items()))
        out.print(f"{name}: {counts or 'none'}")
    for stage, counts in sorted(queues["queued_runs"].items()):
        out.print(f"runs waiting for {stage} workers: "
                  + ", ".join(f"{n} {state}" for state, n in sorted(counts.items())))
