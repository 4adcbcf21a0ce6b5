"""`copyguard daemon` as an operator runs it: a process of its own against the demo site. It
crawls, identifies and sends the notice on its schedule, stops on SIGTERM within its bound, a
second daemon on the same ledger is refused, and a restart resumes the stored schedule instead
of starting over. In-process: a failing job backs off and the other jobs go on."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from config import load_settings
from ledger.clock import FixedClock
from ledger.models import StageRun
from monitor.app import build_app
from monitor.daemon import jobs
from monitor.demo_site import NOTICE_FORM_PATH, DemoServer, DemoSite
from tests.monitor.conftest import make_cli
from tests.monitor.daemon_tools import (
    FAST,
    add_demo_holder,
    job_of,
    start_daemon,
    status_of,
    stop_daemon,
    wait_for,
)


@pytest.mark.slow
def test_the_daemon_runs_the_pipeline_stops_on_sigterm_and_resumes(
        demo_site: DemoSite, demo_catalog: Path, tmp_path: Path) -> None:
    cli = make_cli(tmp_path / "home")
    cli.env.update(FAST)
    add_demo_holder(cli, demo_catalog)
    log = tmp_path / "daemon.log"
    with DemoServer(demo_site) as server:
        server.honour_notices = False
        cli("targets", "add", server.url("/"), "--name", "demo", "--allow-private",
            "--depth", "4", "--max-pages", "40", "--schedule", "every 1h",
            "--notice-form-url", server.url(NOTICE_FORM_PATH))
        daemon = start_daemon(cli, log)
        try:
            info = wait_for(cli, daemon, log, lambda i: (
                job_of(i, "crawl:demo").get("status") == "ok"
                and i["queues"]["captures_pending"] == 0
                and i["queues"]["notices"].get("sent", 0) >= 1
                and not i["queues"]["detections"].get("new")
                and not any(i["queues"]["notices"].get(s) for s in ("draft", "queued"))
                and job_of(i, "cases").get("summary", {}) and i["queues"]["cases"]))
            assert info["daemon"]["running"]
            second = subprocess.run([sys.executable, "-m", "monitor", "daemon"], env=cli.env,
                                    capture_output=True, text=True, timeout=60)
            assert second.returncode == 1 and "another daemon leads" in second.stderr
        finally:
            code, seconds = stop_daemon(daemon)
        assert code == 0 and seconds < 30, log.read_text()[-3000:]
        detections = cli.json_lines("detections", "list", "--json")
        notices = cli.json_lines("notices", "list", "--json")
        # Takedown passes ran while identification went on (no batch window): several notices
        # may go out, but each detection is in exactly one, and each notice arrived once.
        assert detections and notices and len(server.notices) == len(notices)
        noticed = [item["detection_id"] for n in notices for item in json.loads(
            cli("notices", "show", str(n["id"]), "--json").stdout)["items"]]
        assert sorted(noticed) == sorted(d["id"] for d in detections)
        stopped = status_of(cli)
        assert not stopped["daemon"]["running"]
        crawl_next = stopped["next_runs"]["crawl:demo"]

        # A restart keeps the stored schedule: the crawl is not due for an hour, so nothing is
        # fetched again, and nothing is identified or sent twice.
        identified = job_of(stopped, "identify")["runs"]
        daemon = start_daemon(cli, log)
        try:
            # Missed runs of identify coalesce into one, at once; the crawl stays an hour away.
            wait_for(cli, daemon, log, lambda i: i["daemon"]["running"]
                      and job_of(i, "identify").get("runs", 0) > identified, seconds=90)
        finally:
            code, _ = stop_daemon(daemon)
        assert code == 0
        after = status_of(cli)
        assert after["next_runs"]["crawl:demo"] == crawl_next
        assert job_of(after, "crawl:demo")["runs"] == 1
        assert len(cli.json_lines("detections", "list", "--json")) == len(detections)
        assert len(server.notices) == len(notices)
    assert "job crawl:demo: kept" in log.read_text()
    assert "no problems" in cli("audit", "verify").stdout


def test_a_failing_job_backs_off_and_the_others_go_on(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(None, environ={"COPYGUARD_HOME": str(tmp_path / "home")})
    clock = FixedClock(datetime(2026, 12, 2, 12, tzinfo=UTC))
    app = build_app(settings, clock=clock, actor="test")
    calls: list[str] = []

    def broken(runtime: jobs.Runtime, target: str | None) -> dict[str, Any]:
        calls.append("cases")
        raise RuntimeError("the database went away")

    monkeypatch.setitem(jobs.STAGES, "cases", broken)
    jobs.bind(jobs.Runtime(app=app))
    try:
        jobs.run("cases")
        jobs.run("identify")  # nothing to identify: a clean run beside the failing one
        clock.advance(timedelta(seconds=30))
        jobs.run("cases")  # within the first backoff (60 s): not run
        assert calls == ["cases"]
        clock.advance(timedelta(seconds=31))
        jobs.run("cases")  # due again; fails again, now waiting 120 s
        with app.ledger.read() as session:
            cases, identify = session.get(StageRun, "cases"), session.get(StageRun, "identify")
            assert cases is not None and identify is not None
            assert (cases.runs, cases.failures_in_a_row, cases.last_status) == (2, 2, "failed")
            assert "the database went away" in (cases.last_error or "")
            assert cases.retry_after == clock.now() + timedelta(seconds=120)
            assert (identify.last_status, identify.last_summary) == (
                "ok", {"captures": 0, "detections": 0, "failed": 0})
        monkeypatch.setitem(jobs.STAGES, "cases", lambda runtime, target: {"cases": 0})
        clock.advance(timedelta(seconds=121))
        jobs.run("cases")
        with app.ledger.read() as session:
            cases = session.get(StageRun, "cases")
            assert cases is not None and cases.last_status == "ok"
            assert (cases.failures, cases.failures_in_a_row, cases.retry_after) == (2, 0, None)
    finally:
        jobs.bind(None)
        app.close()
