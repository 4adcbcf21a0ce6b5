"""The daemon's jobs: one function per stage, run by the scheduler.

The job store keeps only a textual reference (``monitor.daemon.jobs:run``), the stage's name
and, for a crawl, the target's, so it survives restarts and upgrades; the running daemon's
parts (its App, the stop flag, the child processes it started) are handed over once at start
with :func:`bind`, because a job store cannot keep a database connection. Every run is
recorded in ``stage_runs``: a failure is logged with its error, the job waits
``retry_base_seconds`` (doubling per failure in a row, at most ``retry_max_seconds``) before it
runs again, and no failure ever stops another job.

Crawls and re-checks run ``copyguard crawl`` / ``notices recheck`` in a child process: the
daemon never imports Twisted (its reactor cannot be restarted), a crawl that hangs can be
stopped, and its memory is given back when it ends.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from ledger.claims import worker_name
from ledger.models import StageRun
from monitor.app import App
from monitor.daemon import requests
from monitor.daemon.metrics import observe_stage
from monitor.identify_stage import IdentifyStage
from monitor.lifeline import child_env
from monitor.litigation_stage import refresh
from monitor.takedown_stage import outbox, prepare_notices
from takedown.followup import due_rechecks

log = logging.getLogger(__name__)
_TAIL = 800  # characters of a child's stderr kept with a failure


class StageFailed(Exception):
    """A stage's run did not complete; the message says why."""


@dataclass
class Runtime:
    """What the jobs of this daemon process share."""

    app: App
    config: Path | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    children: set[subprocess.Popen[str]] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def stop_children(self) -> None:
        """Ask every running child to stop (SIGINT: a crawl stops gracefully, keeping what it
        captured)."""
        with self.lock:
            for child in self.children:
                if child.poll() is None:
                    child.send_signal(signal.SIGINT)

    def kill_children(self) -> None:
        with self.lock:
            for child in self.children:
                if child.poll() is None:
                    child.kill()


_runtime: Runtime | None = None


def bind(runtime: Runtime | None) -> None:
    global _runtime
    _runtime = runtime


def _child(runtime: Runtime, args: list[str], timeout: float) -> dict[str, Any]:
    """Run ``copyguard ARGS --json`` as a child; its JSON answer, or StageFailed."""
    command = [sys.executable, "-m", "monitor",
               *(["--config", str(runtime.config)] if runtime.config else []), *args]
    env = child_env({**os.environ, "COPYGUARD_HOME": str(runtime.app.settings.home)})
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as child:
        with runtime.lock:
            runtime.children.add(child)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    stdout, stderr = child.communicate(timeout=1.0)
                    break
                except subprocess.TimeoutExpired:
                    if time.monotonic() > deadline:
                        child.send_signal(signal.SIGINT)
                        stdout, stderr = child.communicate(timeout=60)
                        raise StageFailed(f"{' '.join(args)} ran over {timeout:.0f} s and was "
                                          "stopped") from None
        finally:
            with runtime.lock:
                runtime.children.discard(child)
    if child.returncode != 0:
        if runtime.stop.is_set():
            # Stopped with the daemon (its SIGINT may come before the child's own handler is
            # in place, exit -2): interrupted, and run again at the next start, not failed.
            return {"status": "interrupted"}
        raise StageFailed(f"{' '.join(args)} exited with status {child.returncode}: "
                          f"{stderr.strip()[-_TAIL:]}")
    lines = [line for line in stdout.splitlines() if line.strip()]
    try:
        answer: dict[str, Any] = json.loads(lines[-1]) if lines else {}
    except ValueError:
        answer = {"output": stdout.strip()[-_TAIL:]}
    return answer


def _crawl(runtime: Runtime, target: str | None) -> dict[str, Any]:
    if target is None:
        raise StageFailed("a crawl job needs its target")
    answer = _child(runtime, ["crawl", target, "--no-identify", "--json"],
                    runtime.app.settings.daemon.crawl_timeout_seconds)
    crawls = answer.get("crawls") or [{}]
    keep = ("status", "pages", "captures", "errors", "refused")
    return {key: crawls[0].get(key) for key in keep if key in crawls[0]}


def _identify(runtime: Runtime, _target: str | None) -> dict[str, Any]:
    app = runtime.app
    with app.evidence() as evidence:
        stage = IdentifyStage(app.settings, app.ledger, app.clock, app.matcher, evidence,
                              actor=app.actor)
        report = stage.run(stop=runtime.stop.is_set)
    return {"captures": report.captures, "detections": report.detections,
            "failed": report.failed}


def _takedown(runtime: Runtime, _target: str | None) -> dict[str, Any]:
    prepared = prepare_notices(runtime.app)
    dispatched = outbox(runtime.app).dispatch()
    return {"drafted": len(prepared.drafted.created), "queued": len(prepared.finalised.queued),
            "review": len(prepared.finalised.review), **dispatched.summary()}


def _recheck(runtime: Runtime, _target: str | None) -> dict[str, Any]:
    app = runtime.app
    with app.ledger.read() as session:
        due = due_rechecks(session, app.clock.now())
    if not due:
        return {"urls": 0}
    return _child(runtime, ["notices", "recheck", "--json"],
                  app.settings.daemon.crawl_timeout_seconds)


def _cases(runtime: Runtime, _target: str | None) -> dict[str, Any]:
    report = refresh(runtime.app)
    for reminder in report.reminders:
        log.warning("case %s (%s): a work's limitation period runs out on %s (%s days or less)",
                    reminder.case_id, reminder.case_name, reminder.deadline,
                    reminder.days_before)
    return {"cases": report.cases, "opened": len(report.opened),
            "merged": len(report.merged), "rescored": len(report.rescored),
            "reminders": len(report.reminders)}


def _digest(runtime: Runtime, _target: str | None) -> dict[str, Any]:
    from monitor.daemon.status import digest_text

    app = runtime.app
    text = digest_text(app)
    folder = app.settings.home / "digests"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{app.clock.now():%Y-%m-%d}.txt"
    path.write_text(text, encoding="utf-8")
    log.info("daily digest (%s):\n%s", path, text)
    return {"path": str(path)}


STAGES: dict[str, Callable[[Runtime, str | None], dict[str, Any]]] = {
    "crawl": _crawl, "identify": _identify, "takedown": _takedown, "recheck": _recheck,
    "cases": _cases, "digest": _digest,
}


def job_id(stage: str, target: str | None = None) -> str:
    return f"{stage}:{target}" if target else stage


def run(stage: str, target: str | None = None) -> None:
    """One scheduled run of ``stage`` (for ``target``): run here and recorded, or, for a stage
    in ``daemon.worker_stages``, queued for a worker. Never raises."""
    runtime = _runtime
    if runtime is None:
        log.error("job %s ran outside a daemon; skipped", job_id(stage, target))
        return
    if runtime.stop.is_set():
        return
    if stage in runtime.app.settings.daemon.worker_stages:
        _queue(runtime, stage, target)
    else:
        record_run(runtime, stage, target)


def _queue(runtime: Runtime, stage: str, target: str | None) -> None:
    if stage == "identify":
        return  # identify workers take captures as they come: nothing to queue
    app, job = runtime.app, job_id(stage, target)
    now = app.clock.now()
    with app.ledger.write() as session:
        row = session.get(StageRun, job)
        if row is not None and row.retry_after is not None and row.retry_after > now:
            log.debug("%s: backing off until %s", job, row.retry_after.isoformat())
            return
        queued = requests.enqueue(session, job=job, stage=stage, target=target, now=now)
    log.debug("%s: %s", job, "queued for a worker" if queued else "a run waits already")


def record_run(runtime: Runtime, stage: str, target: str | None, *,
               backoff: bool = True) -> str | None:
    """Run ``stage`` here and record it in ``stage_runs``; the error, or None. With
    ``backoff``, a job still waiting after a failure is skipped (a worker runs what the
    leader queued, which already waited)."""
    app, job = runtime.app, job_id(stage, target)
    daemon = app.settings.daemon
    now = app.clock.now()
    with app.ledger.write() as session:
        row = session.get(StageRun, job)
        if row is None:
            row = StageRun(job=job, stage=stage, runs=0, failures=0, failures_in_a_row=0)
            session.add(row)
        if backoff and row.retry_after is not None and row.retry_after > now:
            log.debug("%s: backing off until %s", job, row.retry_after.isoformat())
            return None
        row.last_started_at, row.last_status, row.worker = now, "running", worker_name()
    started = time.monotonic()
    try:
        summary = STAGES[stage](runtime, target)
        error = None
    except Exception as exc:  # a stage's failure is recorded and retried, never spread
        log.exception("%s failed", job)
        summary, error = None, f"{type(exc).__name__}: {exc}"[:4000]
    seconds = time.monotonic() - started
    observe_stage(stage, seconds, ok=error is None)
    with app.ledger.write() as session:
        row = session.get(StageRun, job)
        assert row is not None
        row.runs += 1
        row.last_finished_at, row.last_seconds = app.clock.now(), round(seconds, 3)
        row.worker = worker_name()
        if error is None:
            # A crawl cut short by a stop is resumed at the next start (resume_interrupted).
            interrupted = (summary or {}).get("status") == "interrupted"
            row.last_status = "interrupted" if interrupted else "ok"
            row.last_summary, row.last_error = summary, None
            row.failures_in_a_row, row.retry_after = 0, None
            log.info("%s done in %.1f s: %s", job, seconds, summary)
        else:
            row.failures += 1
            row.failures_in_a_row += 1
            row.last_status, row.last_error = "failed", error
            wait = min(daemon.retry_base_seconds * 2 ** (row.failures_in_a_row - 1),
                       daemon.retry_max_seconds)
            row.retry_after = app.clock.now() + timedelta(seconds=wait)
            log.warning("%s failed (%d in a row); next try not before %s", job,
                        row.failures_in_a_row, row.retry_after.isoformat())
    return error

