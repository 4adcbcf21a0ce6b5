"""What a restarted daemon runs at once: jobs the last daemon left running, and runs that came
due but never started (APScheduler moves a job's next run time on before it hands the run to a
thread, so a daemon killed in between loses that run); a job that ran on time keeps its next
run time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from config import load_settings
from ledger.clock import FixedClock
from ledger.models import StageRun
from monitor.app import App, build_app
from monitor.daemon.scheduler import JOB_FUNCTION, build_scheduler, resume_interrupted

NOW = datetime(2026, 12, 2, 12, 30, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    settings = load_settings(None, environ={"COPYGUARD_HOME": str(tmp_path / "home")})
    built = build_app(settings, clock=FixedClock(NOW), actor="test")
    yield built
    built.close()


@pytest.fixture
def scheduler(app: App) -> Iterator[BackgroundScheduler]:
    built = build_scheduler(app)
    built.start(paused=True)  # jobs go to the ledger's job store; nothing runs
    yield built
    built.shutdown(wait=False)


def _job(scheduler: BackgroundScheduler, trigger: BaseTrigger, next_run: datetime) -> None:
    scheduler.add_job(JOB_FUNCTION, trigger, args=["cases"], id="cases", name="cases",
                      next_run_time=next_run)


def _started(app: App, at: datetime, status: str = "ok") -> None:
    with app.ledger.write() as session:
        session.add(StageRun(job="cases", stage="cases", runs=1, failures=0,
                             failures_in_a_row=0, last_started_at=at, last_finished_at=at,
                             last_status=status))


def _hourly_made_at(made: datetime) -> IntervalTrigger:
    """An hourly trigger as ``IntervalTrigger(hours=1)`` is when made at ``made``: its start
    date is one interval later, a moment before the job's first run plus one interval."""
    return IntervalTrigger(hours=1, start_date=made + HOUR, timezone=UTC)


def test_an_interval_job_that_ran_on_time_keeps_its_next_run(
        app: App, scheduler: BackgroundScheduler) -> None:
    first = NOW - timedelta(minutes=30)
    _job(scheduler, _hourly_made_at(first - timedelta(milliseconds=2)), first + HOUR)
    _started(app, first + timedelta(milliseconds=300))
    assert resume_interrupted(scheduler, app) == []
    assert scheduler.get_job("cases").next_run_time == first + HOUR


def test_an_interval_run_that_came_due_and_never_started_runs_now(
        app: App, scheduler: BackgroundScheduler) -> None:
    first = NOW - timedelta(minutes=90)  # ran then; the run due an hour later was lost
    _job(scheduler, _hourly_made_at(first - timedelta(milliseconds=2)), first + 2 * HOUR)
    _started(app, first + timedelta(milliseconds=300))
    assert resume_interrupted(scheduler, app) == ["cases"]
    assert scheduler.get_job("cases").next_run_time == NOW


def test_a_cron_run_that_came_due_and_never_started_runs_now(
        app: App, scheduler: BackgroundScheduler) -> None:
    _job(scheduler, CronTrigger(minute=0, timezone=UTC), NOW.replace(minute=0) + HOUR)
    _started(app, NOW.replace(minute=0) - HOUR + timedelta(milliseconds=300))  # 11:00 only
    assert resume_interrupted(scheduler, app) == ["cases"]


def test_a_cron_job_that_ran_on_time_keeps_its_next_run(
        app: App, scheduler: BackgroundScheduler) -> None:
    _job(scheduler, CronTrigger(minute=0, timezone=UTC), NOW.replace(minute=0) + HOUR)
    _started(app, NOW.replace(minute=0) + timedelta(milliseconds=300))  # 12:00, on time
    assert resume_interrupted(scheduler, app) == []


def test_a_job_that_never_ran_and_one_left_running_run_now(
        app: App, scheduler: BackgroundScheduler) -> None:
    _job(scheduler, _hourly_made_at(NOW - HOUR), NOW + HOUR)
    assert resume_interrupted(scheduler, app) == ["cases"]  # no run recorded at all
    scheduler.modify_job("cases", next_run_time=NOW + HOUR)
    _started(app, NOW - timedelta(minutes=1), status="running")  # killed in the middle
    assert resume_interrupted(scheduler, app) == ["cases"]
    assert scheduler.get_job("cases").next_run_time == NOW


def test_crawls_run_in_a_pool_of_their_own_and_stored_jobs_move_there(
        app: App, scheduler: BackgroundScheduler) -> None:
    """Crawls wait on their children for hours: they must never hold the other stages'
    threads (a busy crawl schedule once left identify at a sixth of its runs)."""
    from config.settings import TargetSettings
    from ledger.targets import add_target
    from monitor.daemon.scheduler import CRAWL_EXECUTOR, sync_jobs

    with app.ledger.write() as session:
        add_target(session, app.clock, TargetSettings(name="blog", start_urls=(
            "https://blog.example/",), schedule="every 1h"), app.settings.crawl, actor="test")
    sync_jobs(scheduler, app)
    executors = {job.id: job.executor for job in scheduler.get_jobs()}
    assert executors.pop("crawl:blog") == CRAWL_EXECUTOR
    assert set(executors.values()) == {"default"}
    # A crawl job stored by an older daemon on the shared pool is moved, its time kept.
    scheduler.modify_job("crawl:blog", executor="default", next_run_time=NOW + HOUR)
    assert sync_jobs(scheduler, app)["crawl:blog"] == "kept"
    moved = scheduler.get_job("crawl:blog")
    assert moved.executor == CRAWL_EXECUTOR and moved.next_run_time == NOW + HOUR


def test_a_child_that_fails_because_the_daemon_stops_is_interrupted_not_failed(
        app: App) -> None:
    from monitor.daemon import jobs

    runtime = jobs.Runtime(app=app)
    with pytest.raises(jobs.StageFailed, match="exited with status 1"):
        jobs._child(runtime, ["targets", "remove", "nothing-by-this-name"], timeout=60)
    runtime.stop.set()  # the same exit while the daemon stops (its SIGINT reached the child)
    assert jobs._child(runtime, ["targets", "remove", "nothing-by-this-name"],
                       timeout=60) == {"status": "interrupted"}
