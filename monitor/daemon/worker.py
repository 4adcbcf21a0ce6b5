"""``copyguard worker --stage S``: one stage's work, in as many processes on as many machines as
needed, against one ledger (PostgreSQL; SQLite works for processes on one machine).

- ``identify``: ``--processes`` child processes take pending captures as they come, each under
  its lease (see ``monitor.identify_stage``); a child that dies is started again, and one that
  loses the database waits and carries on when it is back.
- every other stage: the worker claims the runs the leading daemon queued for it
  (``daemon.worker_stages``; see ``monitor.daemon.requests``), one at a time, renewing its lease
  while it works, and records each run in ``stage_runs`` as the daemon would.

SIGTERM or SIGINT: the unit in hand is finished (a crawl child stops gracefully) within
``daemon.shutdown_timeout_seconds``. Each worker touches a ``stage_runs`` row of its own
(stage ``worker``) every heartbeat, which ``copyguard status`` shows.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from sqlalchemy import delete

from config import Settings
from ledger.models import StageRun
from monitor.app import App, build_app
from monitor.daemon import jobs, requests
from monitor.daemon.ops import Tick, serve_ops
from monitor.daemon.status import HEARTBEAT_SECONDS, WORKER_STAGE
from monitor.identify_stage import EventLike, IdentifyStage
from monitor.lifeline import die_with_parent

log = logging.getLogger(__name__)

IDLE_POLL_SECONDS = 0.5  # how soon an idle worker looks for a queued run; doubles while idle
MAX_IDLE_POLL_SECONDS = 5.0
RESTART_SECONDS = (1.0, 30.0)  # an identify child that died is restarted after 1 s .. 30 s
FORGET_WORKERS_AFTER = timedelta(days=1)  # heartbeat rows of workers long gone are dropped
LIVENESS_SECONDS = 5.0  # how often a busy worker still ticks (its /healthz stays healthy)


class WorkerError(Exception):
    """The worker cannot start; the message says why."""


@dataclass
class WorkerResult:
    clean: bool  # the unit in hand finished within the shutdown timeout
    runs: int = 0  # queued runs done (stages other than identify)
    restarts: int = 0  # identify children started again after they died


def heartbeat_job(stage: str) -> str:
    return f"worker:{stage}:{jobs.worker_name()}"


def _beat(app: App, stage: str, *, started: bool = False, stopped: bool = False,
          summary: dict[str, Any] | None = None) -> None:
    now = app.clock.now()
    job = heartbeat_job(stage)
    with app.ledger.write() as session:
        if started:
            session.execute(delete(StageRun).where(
                StageRun.stage == WORKER_STAGE,
                StageRun.last_finished_at < now - FORGET_WORKERS_AFTER))
        row = session.get(StageRun, job)
        if row is None:
            row = StageRun(job=job, stage=WORKER_STAGE, runs=0, failures=0, failures_in_a_row=0)
            session.add(row)
        if started:
            row.last_started_at = now
        if summary is not None:
            row.last_summary = summary
        row.last_finished_at, row.worker = now, jobs.worker_name()
        row.last_status = "stopped" if stopped else "running"


def run_worker(app: App, stage: str, *, config: Path | None = None, processes: int = 1,
               ops_listen: str = "", stop: threading.Event | None = None) -> WorkerResult:
    """Work ``stage`` until ``stop`` is set (by SIGTERM/SIGINT from the main thread)."""
    if stage not in jobs.STAGES:
        raise WorkerError(f"no stage {stage!r}; one of {', '.join(jobs.STAGES)}")
    runtime = jobs.Runtime(app=app, config=config, stop=stop or threading.Event())
    if threading.current_thread() is threading.main_thread():
        def _on_signal(number: int, _frame: FrameType | None) -> None:
            log.info("%s: stopping after the work in hand", signal.Signals(number).name)
            runtime.stop.set()
            runtime.stop_children()

        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)
    if stage != "identify" and stage not in app.settings.daemon.worker_stages:
        log.warning("stage %s is not in daemon.worker_stages: the daemon runs it itself and "
                    "queues nothing for this worker (set the same configuration on both)", stage)
    _beat(app, stage, started=True)
    log.info("worker %s for stage %s running; SIGTERM or Ctrl-C stops it",
             jobs.worker_name(), stage)
    tick = Tick()
    ops = serve_ops(app, ops_listen, role=f"worker {stage}", tick=tick)
    try:
        if stage == "identify":
            return _IdentifySupervisor(app.settings, app.actor, max(1, processes)).run(
                runtime, tick, lambda summary: _beat(app, stage, summary=summary))
        return _claim_loop(runtime, stage, tick)
    finally:
        if ops is not None:
            ops.stop()
        try:
            _beat(app, stage, stopped=True)
        except Exception:
            log.warning("could not record the worker's stop (the database is away)")


def _claim_loop(runtime: jobs.Runtime, stage: str, tick: Tick) -> WorkerResult:
    app, worker = runtime.app, jobs.worker_name()
    lease = timedelta(seconds=app.settings.daemon.worker_lease_seconds)
    result, idle, last_beat, away = WorkerResult(clean=True), IDLE_POLL_SECONDS, 0.0, False
    while not runtime.stop.is_set():
        tick()
        try:
            if time.monotonic() - last_beat > HEARTBEAT_SECONDS:
                _beat(app, stage, summary={"runs": result.runs})
                last_beat = time.monotonic()
            claimed = requests.claim(app.ledger, stage, worker=worker, now=app.clock.now(),
                                     lease=lease)
            if away:
                log.warning("the database answers again")
            away = False
        except Exception as exc:  # the database is away: wait for it
            if not away:
                log.error("the database cannot be reached (%s: %s); waiting for it",
                          type(exc).__name__, str(exc).splitlines()[0][:300])
            away, claimed = True, None
        if claimed is None:
            runtime.stop.wait(idle)
            idle = min(idle * 2, MAX_IDLE_POLL_SECONDS)
            continue
        idle = IDLE_POLL_SECONDS
        log.info("%s: claimed (attempt %d)", claimed.job, claimed.attempt)
        beat = functools.partial(_beat, app, stage,
                                 summary={"runs": result.runs, "running": claimed.job})
        with _LeaseKeeper(runtime, claimed.id, lease, tick, beat):
            error = _run_claimed(runtime, stage, claimed.target)
        last_beat = time.monotonic()
        _finish(runtime, claimed, error)
        result.runs += 1
    return result


def _run_claimed(runtime: jobs.Runtime, stage: str, target: str | None) -> str | None:
    try:
        return jobs.record_run(runtime, stage, target, backoff=False)
    except Exception as exc:  # recording failed (the database went away): the lease decides
        log.error("%s: could not record its run: %s", stage, exc)
        return f"{type(exc).__name__}: {exc}"


def _finish(runtime: jobs.Runtime, claimed: requests.Claim, error: str | None) -> None:
    """Close the run, waiting for the database if it is away (else the run would be done
    again by another worker once its lease ran out, which is safe but wasted)."""
    app, pause = runtime.app, IDLE_POLL_SECONDS
    while True:
        try:
            requests.finish(app.ledger, claimed.id, worker=jobs.worker_name(),
                            now=app.clock.now(), error=error)
            return
        except Exception:
            if runtime.stop.wait(pause):
                return  # stopping: the lease runs out and the run is done again
            pause = min(pause * 2, MAX_IDLE_POLL_SECONDS)


class _LeaseKeeper:
    """While a claimed run goes on (a crawl may last hours): keeps the worker's liveness tick
    and heartbeat going, so /healthz and `status` do not call a busy worker dead, and renews
    the run's lease every third of its length; if the run was taken over (this worker was
    presumed dead), its crawl child is stopped."""

    def __init__(self, runtime: jobs.Runtime, claim_id: int, lease: timedelta, tick: Tick,
                 beat: Callable[[], None]) -> None:
        self.runtime, self.claim_id, self.lease = runtime, claim_id, lease
        self.tick, self.beat = tick, beat
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._renew, name="lease", daemon=True)

    def __enter__(self) -> _LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        self._thread.join()

    def _renew(self) -> None:
        app = self.runtime.app
        renew_every = self.lease.total_seconds() / 3
        renewed = beaten = time.monotonic()
        while not self._done.wait(min(LIVENESS_SECONDS, renew_every)):
            self.tick()
            if time.monotonic() - beaten >= HEARTBEAT_SECONDS:
                beaten = time.monotonic()
                try:
                    self.beat()
                except Exception:  # the database is away: the next beat tries again
                    log.warning("could not record the worker's heartbeat", exc_info=True)
            if time.monotonic() - renewed < renew_every:
                continue
            renewed = time.monotonic()
            try:
                kept = requests.renew(app.ledger, self.claim_id, worker=jobs.worker_name(),
                                      until=app.clock.now() + self.lease)
            except Exception:  # the database is away: the lease may yet hold; try again
                log.warning("could not renew the lease of run %d", self.claim_id, exc_info=True)
                continue
            if not kept:
                log.error("run %d was taken over by another worker: stopping it here",
                          self.claim_id)
                self.runtime.stop_children()
                return


class _IdentifySupervisor:
    """``processes`` identify children; a child that dies is started again after a pause that
    doubles while they keep dying."""

    def __init__(self, settings: Settings, actor: str, processes: int) -> None:
        self.settings, self.actor, self.count = settings, actor, processes
        self._context = multiprocessing.get_context("spawn")  # no inherited connections
        self._stop = self._context.Event()

    def _start(self, number: int) -> multiprocessing.process.BaseProcess:
        process = self._context.Process(
            target=_identify_child, name=f"copyguard-identify-{number}", daemon=True,
            args=(self.settings, self.actor, self._stop, os.getpid()))
        process.start()
        return process

    def run(self, runtime: jobs.Runtime, tick: Tick, beat: Any) -> WorkerResult:
        result = WorkerResult(clean=True)
        children = {n: self._start(n) for n in range(1, self.count + 1)}
        pause, restart_at = RESTART_SECONDS[0], dict.fromkeys(children, 0.0)
        last_beat = time.monotonic()
        while not runtime.stop.wait(0.5):
            tick()
            for number, process in list(children.items()):
                if process.is_alive():
                    continue
                if restart_at[number] == 0.0:
                    log.error("%s exited with code %s; starting it again in %.0f s (its "
                              "capture is taken up again when its lease runs out)",
                              process.name, process.exitcode, pause)
                    restart_at[number] = time.monotonic() + pause
                    pause = min(pause * 2, RESTART_SECONDS[1])
                elif time.monotonic() >= restart_at[number]:
                    children[number], restart_at[number] = self._start(number), 0.0
                    result.restarts += 1
            if time.monotonic() - last_beat > HEARTBEAT_SECONDS:
                try:
                    beat({"processes": sum(p.is_alive() for p in children.values()),
                          "restarts": result.restarts})
                except Exception:
                    log.warning("heartbeat: the database cannot be reached")
                last_beat = time.monotonic()
        self._stop.set()
        deadline = time.monotonic() + runtime.app.settings.daemon.shutdown_timeout_seconds
        for process in children.values():
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.warning("%s did not finish its capture in time: terminated", process.name)
                process.terminate()
                process.join()
                result.clean = False
        return result


def _identify_child(settings: Settings, actor: str, stop: EventLike, parent: int) -> None:
    """One identify process: captures as they come until ``stop``; a lost database is waited
    out (its claims are given back first, so no capture waits for a lease to run out)."""
    die_with_parent(parent)  # a worker killed with -9 takes its children along
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides when to stop
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from monitor.logformat import configure_logging

    configure_logging(settings.general.log_level, settings.general.log_format)
    app = build_app(settings, actor=actor)
    pause = RESTART_SECONDS[0]
    try:
        with app.evidence() as evidence:
            stage = IdentifyStage(settings, app.ledger, app.clock, app.matcher, evidence,
                                  actor=actor)
            while not stop.is_set():
                try:
                    stage.release_own_claims()
                    stage.run(more_coming=lambda: True, stop=stop.is_set)
                    pause = RESTART_SECONDS[0]
                except Exception as exc:  # the database went away, most likely: wait
                    log.warning("identify: %s: %s; trying again in %.0f s",
                                type(exc).__name__, str(exc).splitlines()[0][:300], pause)
                    end = time.monotonic() + pause
                    while time.monotonic() < end and not stop.is_set():
                        time.sleep(0.2)
                    pause = min(pause * 2, RESTART_SECONDS[1])
    finally:
        app.close()

