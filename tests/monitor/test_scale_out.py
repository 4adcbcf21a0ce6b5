"""The scaled-out layout on one PostgreSQL ledger, in real processes: a daemon that only
schedules, and crawl, identify and takedown workers that do the work, run the pipeline against
the demo site; a standby daemon takes over when the leader is killed with -9."""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from config import load_settings
from ledger.models import StageRequest, StageRequestStatus
from monitor.app import build_app
from monitor.demo_site import NOTICE_FORM_PATH, DemoServer, DemoSite
from tests.monitor.conftest import Cli, make_cli
from tests.monitor.daemon_tools import (
    FAST,
    add_demo_holder,
    job_of,
    start_daemon,
    stop_daemon,
    wait_for,
)

WORKER_STAGES = ("crawl", "identify", "takedown")


def _stop_all(processes: list[subprocess.Popen[str]], log: Path) -> None:
    codes = [stop_daemon(p)[0] for p in processes]
    assert codes == [0] * len(processes), log.read_text()[-3000:]


def _kill_all(processes: list[subprocess.Popen[str]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def _requests(cli: Cli) -> list[StageRequest]:
    app = build_app(load_settings(environ=cli.env), actor="test")
    try:
        with app.ledger.read() as session:
            rows = list(session.execute(select(StageRequest)).scalars())
            session.expunge_all()
        return rows
    finally:
        app.close()


@pytest.mark.slow
@pytest.mark.postgres
def test_workers_on_other_processes_run_the_pipeline_the_daemon_schedules(
        postgres_url: str, demo_site: DemoSite, demo_catalog: Path, tmp_path: Path) -> None:
    cli = make_cli(tmp_path / "home", postgres_url)
    cli.env.update({**FAST, "COPYGUARD_DAEMON__WORKER_STAGES": ",".join(WORKER_STAGES)})
    add_demo_holder(cli, demo_catalog)
    log = tmp_path / "scale-out.log"
    with DemoServer(demo_site) as server:
        cli("targets", "add", server.url("/"), "--name", "demo", "--allow-private",
            "--depth", "4", "--max-pages", "40", "--schedule", "every 1h",
            "--notice-form-url", server.url(NOTICE_FORM_PATH))
        processes = [start_daemon(cli, log)]
        processes += [start_daemon(cli, log, "worker", "--stage", stage)
                      for stage in WORKER_STAGES]
        try:
            info = wait_for(cli, processes[0], log, lambda i: (
                job_of(i, "crawl:demo").get("status") == "ok"
                and i["queues"]["captures_pending"] == 0
                and i["queues"]["notices"].get("sent", 0) >= 1
                and not i["queues"]["detections"].get("new")
                and not any(i["queues"]["notices"].get(s) for s in ("draft", "queued"))))
            assert all(p.poll() is None for p in processes), log.read_text()[-3000:]
        except BaseException:
            _kill_all(processes)
            raise
        _stop_all(processes, log)
        received = len(server.notices)

    # The daemon ran none of the workers' stages itself: each crawl and takedown run was a
    # queued request that a worker claimed and finished.
    requests = _requests(cli)
    done = Counter(r.stage for r in requests if r.status == StageRequestStatus.DONE)
    assert done["crawl"] == 1 and done["takedown"] >= 1, requests
    worker_pids = {p.pid for p in processes[1:]}
    assert all(int((r.claimed_by or ":0").rsplit(":", 1)[1]) in worker_pids
               for r in requests if r.status == StageRequestStatus.DONE)
    running = {w["stage"] for w in info["workers"] if w["running"]}
    assert running == set(WORKER_STAGES), info["workers"]
    assert received == info["queues"]["notices"]["sent"] >= 1
    assert "no problems" in cli("audit", "verify").stdout


@pytest.mark.slow
@pytest.mark.postgres
def test_a_standby_daemon_takes_over_when_the_leader_is_killed(
        postgres_url: str, tmp_path: Path) -> None:
    cli = make_cli(tmp_path / "home", postgres_url)
    cli.env.update(FAST)
    log = tmp_path / "failover.log"
    leader = start_daemon(cli, log)
    processes = [leader]
    try:
        wait_for(cli, leader, log, lambda i: i["daemon"]["running"]
                 and str(i["daemon"]["worker"]).endswith(f":{leader.pid}"), seconds=60)
        standby = start_daemon(cli, log, "--standby")
        processes.append(standby)
        deadline = time.monotonic() + 30
        while "standby: another daemon leads" not in log.read_text():
            assert time.monotonic() < deadline and standby.poll() is None, log.read_text()
            time.sleep(0.2)
        leader.kill()
        leader.wait(timeout=30)
        killed_at = time.monotonic()
        info = wait_for(cli, standby, log, lambda i: str(i["daemon"]["worker"]).endswith(
            f":{standby.pid}") and i["daemon"]["running"], seconds=60)
        took = time.monotonic() - killed_at
    except BaseException:
        _kill_all(processes)
        raise
    code, _ = stop_daemon(standby)
    assert code == 0, log.read_text()[-3000:]
    assert took < 20, (took, info)
