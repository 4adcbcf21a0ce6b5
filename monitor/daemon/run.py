"""Start-up, signals, heartbeat and shutdown of ``copyguard daemon``.

SIGTERM or SIGINT sets the stop flag: no job starts any more, the identify stage finishes the
capture in hand, crawls in child processes stop gracefully (keeping what they captured), and
the daemon exits within ``daemon.shutdown_timeout_seconds`` (after that, children are killed and
the exit status is 1: their unfinished units are leased and taken up again at the next start).
Everything pending stays in the ledger and the job store, so a restart resumes it.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from ledger.models import StageRun
from monitor.app import App
from monitor.daemon import jobs
from monitor.daemon.leader import LeaderLock
from monitor.daemon.ops import Tick, serve_ops
from monitor.daemon.scheduler import build_scheduler, resume_interrupted, sync_jobs
from monitor.daemon.status import HEARTBEAT, HEARTBEAT_SECONDS

log = logging.getLogger(__name__)
LEADER_CHECK_SECONDS = 5.0  # how soon a daemon notices it lost the lead (or the database)


class DaemonError(Exception):
    """The daemon cannot start; the message says why."""


@dataclass
class DaemonResult:
    clean: bool  # every job finished its unit of work within the shutdown timeout


def _beat(app: App, *, started: bool = False, stopped: bool = False) -> None:
    now = app.clock.now()
    with app.ledger.write() as session:
        row = session.get(StageRun, HEARTBEAT)
        if row is None:
            row = StageRun(job=HEARTBEAT, stage=HEARTBEAT, runs=0, failures=0,
                           failures_in_a_row=0)
            session.add(row)
        if started:
            row.runs += 1
            row.last_started_at = now
        row.last_finished_at, row.worker = now, jobs.worker_name()
        row.last_status = "stopped" if stopped else "running"


def run_daemon(app: App, *, config: Path | None = None, standby: bool = False,
               stop: threading.Event | None = None) -> DaemonResult:
    """Run until ``stop`` is set (by SIGTERM/SIGINT when run from the main thread)."""
    runtime = jobs.Runtime(app=app, config=config, stop=stop or threading.Event())
    if threading.current_thread() is threading.main_thread():
        def _on_signal(number: int, _frame: FrameType | None) -> None:
            log.info("%s: stopping after the work in hand", signal.Signals(number).name)
            runtime.stop.set()
            runtime.stop_children()

        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)
    tick = Tick()
    ops = serve_ops(app, app.settings.daemon.ops_listen, role="daemon", tick=tick)
    try:
        return _lead_or_wait(app, runtime, standby, tick)
    finally:
        if ops is not None:
            ops.stop()


def _lead_or_wait(app: App, runtime: jobs.Runtime, standby: bool, tick: Tick) -> DaemonResult:
    lock = LeaderLock(app.ledger.engine, app.settings.home)
    if not lock.try_acquire():
        if not standby:
            raise DaemonError(f"another daemon leads this ledger ({lock.where}, held by "
                              f"{lock.holder()}); run one scheduler per ledger, or start this "
                              "one with --standby to take over when it stops")
        log.info("standby: another daemon leads; waiting to take over")
        if not lock.wait(runtime.stop, on_poll=tick):
            return DaemonResult(clean=True)
    # Only the leader brings the config file's targets into the ledger: a standby (or a worker
    # machine) with another file would otherwise fight it over them.
    app.sync_targets()
    scheduler = build_scheduler(app)
    jobs.bind(runtime)
    try:
        scheduler.start(paused=True)
        sync_jobs(scheduler, app)
        resume_interrupted(scheduler, app)
        scheduler.resume()
        _beat(app, started=True)
        log.info("daemon running (%s); SIGTERM or Ctrl-C stops it", jobs.worker_name())
        led = _lead(app, lock, runtime, tick)
        clean = _shutdown(scheduler, runtime)
        return DaemonResult(clean=clean and led)
    finally:
        jobs.bind(None)
        try:
            _beat(app, stopped=True)
        except Exception:
            log.warning("could not record the daemon's stop (the database is away)")
        finally:
            lock.release()


def _lead(app: App, lock: LeaderLock, runtime: jobs.Runtime, tick: Tick) -> bool:
    """The main loop: a heartbeat, and a look every few seconds that this daemon still leads
    (False when another daemon took over while the database was out of reach). A database
    that is away is waited out: the jobs fail and back off meanwhile, APScheduler retries its
    job store, and the heartbeat resumes when the database is back."""
    last_beat, away = time.monotonic(), False
    while not runtime.stop.wait(LEADER_CHECK_SECONDS):
        tick()
        try:
            if not lock.still_held():
                log.error("another daemon leads this ledger now (its lock was taken while this "
                          "one could not reach the database): stopping")
                runtime.stop.set()
                return False
            if time.monotonic() - last_beat >= HEARTBEAT_SECONDS or away:
                _beat(app)
                last_beat = time.monotonic()
            if away:
                log.warning("the database answers again")
            away = False
        except Exception as exc:  # the database is away: keep going, look again soon
            if not away:
                log.error("the database cannot be reached (%s: %s); waiting for it",
                          type(exc).__name__, str(exc).splitlines()[0][:300])
            away = True
    return True


def _shutdown(scheduler: object, runtime: jobs.Runtime) -> bool:
    """Stop the scheduler, letting running jobs finish within the timeout."""
    timeout = runtime.app.settings.daemon.shutdown_timeout_seconds
    done = threading.Event()

    def wait_for_jobs() -> None:
        scheduler.shutdown(wait=True)  # type: ignore[attr-defined]
        done.set()

    threading.Thread(target=wait_for_jobs, name="shutdown", daemon=True).start()
    if done.wait(timeout):
        log.info("daemon stopped")
        return True
    log.error("jobs still running after %.0f s: stopping their child processes", timeout)
    runtime.kill_children()
    done.wait(10)
    return False
