"""The operations endpoint on a real port: /metrics tells what the ledger holds (on SQLite and
PostgreSQL) and what this process ran; /healthz fails when the database or the main loop does."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from config import load_settings
from ledger.clock import FixedClock
from ledger.models import Crawl, CrawlStatus, IdentifyStatus, StageRequest, StageRun
from monitor.app import App, build_app
from monitor.daemon.metrics import observe_stage
from monitor.daemon.ops_server import OpsServer, OpsServerError
from tests.takedown.ledger_history import LedgerHistory

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _app(home: Path, clock: FixedClock, database_url: str | None = None) -> App:
    environ = {"COPYGUARD_HOME": str(home)}
    if database_url:
        environ["COPYGUARD_DATABASE_URL"] = database_url
    return build_app(load_settings(None, environ=environ), clock=clock, actor="test")


@pytest.fixture
def app(tmp_path: Path, database_url: str, clock: FixedClock) -> Iterator[App]:
    built = _app(tmp_path / "home", clock, database_url)
    yield built
    built.close()


@pytest.fixture
def sqlite_app(tmp_path: Path, clock: FixedClock) -> Iterator[App]:
    built = _app(tmp_path / "home", clock)
    yield built
    built.close()


def _samples(body: str) -> Samples:
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(body) for sample in family.samples}


def _value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def _fill_ledger(app: App, clock: FixedClock) -> None:
    """Captures in two statuses, three crawls, a failed and a good job, the heartbeats."""
    now = clock.now()
    with app.ledger.write() as session:
        h = LedgerHistory(session, clock)
        holder = h.holder()
        song = h.recording(holder, "Harbour Lights")
        blog, mirror = h.target("blog"), h.target("mirror")
        h.detection(h.capture(blog, "https://blog.example/1.mp3"), song)  # confident: new
        h.detection(h.capture(blog, "https://blog.example/2.mp3"), song, confidence=0.7)
        h.capture(mirror, "https://mirror.example/3.mp3").identify_status = IdentifyStatus.PENDING
        # The history's crawls have pages 10, captures 3 each; one more without captures.
        session.add(Crawl(target_id=blog.id, status=CrawlStatus.FAILED, started_at=now,
                          stats={"pages": 4}))
        session.add_all([
            StageRun(job="cases", stage="cases", runs=3, failures=2, failures_in_a_row=1,
                     last_status="failed", last_seconds=1.5, last_finished_at=now,
                     last_error="RuntimeError: boom"),
            StageRun(job="crawl:blog", stage="crawl", runs=1, failures=0, failures_in_a_row=0,
                     last_status="ok", last_seconds=12.25, last_finished_at=now),
            StageRun(job="daemon", stage="daemon", runs=0, failures=0, failures_in_a_row=0,
                     last_status="running", last_started_at=now - timedelta(hours=1),
                     last_finished_at=now),
            StageRun(job="worker:identify:box:41", stage="worker", runs=0, failures=0,
                     failures_in_a_row=0, last_status="running", last_finished_at=now,
                     worker="box:41"),
            StageRequest(job="identify", stage="identify", status="queued", requested_at=now),
        ])


def test_metrics_tell_what_the_ledger_holds(app: App, clock: FixedClock) -> None:
    _fill_ledger(app, clock)
    with OpsServer(app, "127.0.0.1:0", role="daemon") as server, httpx.Client() as client:
        host, port = server.address
        answer = client.get(f"http://{host}:{port}/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = _samples(answer.text)
    ledger_samples = {key: value for key, value in samples.items()
                      if not key[0].startswith("copyguard_stage_duration")}
    beat = clock.now().timestamp()
    assert ledger_samples == {
        ("copyguard_captures", frozenset({("identify_status", "done")})): 2,
        ("copyguard_captures", frozenset({("identify_status", "pending")})): 1,
        ("copyguard_detections", frozenset({("status", "new")})): 1,
        ("copyguard_detections", frozenset({("status", "review")})): 1,
        ("copyguard_stage_requests", frozenset({("stage", "identify"), ("status", "queued")})): 1,
        ("copyguard_crawl_pages_total", frozenset()): 24,
        ("copyguard_crawl_captures_total", frozenset()): 6,
        ("copyguard_stage_last_seconds", frozenset({("job", "cases"), ("stage", "cases")})): 1.5,
        ("copyguard_stage_last_seconds",
         frozenset({("job", "crawl:blog"), ("stage", "crawl")})): 12.25,
        ("copyguard_stage_failures_total", frozenset({("job", "cases"), ("stage", "cases")})): 2,
        ("copyguard_stage_failures_total",
         frozenset({("job", "crawl:blog"), ("stage", "crawl")})): 0,
        ("copyguard_stage_failing", frozenset({("job", "cases"), ("stage", "cases")})): 1,
        ("copyguard_stage_failing", frozenset({("job", "crawl:blog"), ("stage", "crawl")})): 0,
        ("copyguard_daemon_heartbeat_timestamp_seconds", frozenset()): beat,
        ("copyguard_worker_heartbeat_timestamp_seconds",
         frozenset({("stage", "identify"), ("worker", "box:41")})): beat,
        ("copyguard_scrape_errors_total", frozenset()): 0,
    }


def test_metrics_show_the_stage_runs_this_process_observed(sqlite_app: App) -> None:
    stage = f"stage-{uuid.uuid4().hex[:8]}"  # the histogram is the process's, shared by tests
    observe_stage(stage, 0.3, ok=True)
    observe_stage(stage, 0.2, ok=True)
    observe_stage(stage, 40.0, ok=False)
    with OpsServer(sqlite_app, "127.0.0.1:0", role="daemon") as server:
        host, port = server.address
        samples = _samples(httpx.get(f"http://{host}:{port}/metrics").text)
    name = "copyguard_stage_duration_seconds"
    assert _value(samples, f"{name}_count", stage=stage, outcome="ok") == 2
    assert _value(samples, f"{name}_sum", stage=stage, outcome="ok") == pytest.approx(0.5)
    assert _value(samples, f"{name}_bucket", stage=stage, outcome="ok", le="0.1") == 0
    assert _value(samples, f"{name}_bucket", stage=stage, outcome="ok", le="0.5") == 2
    assert _value(samples, f"{name}_count", stage=stage, outcome="failed") == 1
    assert _value(samples, f"{name}_bucket", stage=stage, outcome="failed", le="15.0") == 0
    assert _value(samples, f"{name}_bucket", stage=stage, outcome="failed", le="60.0") == 1


def _health(server: OpsServer) -> tuple[int, dict[str, Any]]:
    host, port = server.address
    answer = httpx.get(f"http://{host}:{port}/healthz")
    assert answer.headers["content-type"] == "application/json"
    return answer.status_code, answer.json()


def test_healthz_follows_the_owners_liveness(sqlite_app: App) -> None:
    alive = {"ok": True}

    def liveness() -> tuple[bool, dict[str, Any]]:
        return alive["ok"], {"main_loop_seconds_ago": 1.5}

    with OpsServer(sqlite_app, "127.0.0.1:0", role="worker identify",
                   liveness=liveness) as server:
        code, body = _health(server)
        assert code == 200
        assert (body["status"], body["role"]) == ("ok", "worker identify")
        assert body["checks"]["database"]["ok"] is True
        assert body["checks"]["database"]["seconds"] >= 0
        assert body["checks"]["liveness"] == {"ok": True, "main_loop_seconds_ago": 1.5}
        alive["ok"] = False
        code, body = _health(server)
        assert (code, body["status"]) == (503, "failing")
        assert body["checks"]["database"]["ok"] is True
        assert body["checks"]["liveness"] == {"ok": False, "main_loop_seconds_ago": 1.5}


def test_healthz_fails_and_metrics_still_answer_when_the_database_is_gone(
        sqlite_app: App, clock: FixedClock) -> None:
    _fill_ledger(sqlite_app, clock)
    with OpsServer(sqlite_app, "127.0.0.1:0", role="daemon",
                   liveness=lambda: (True, {})) as server:
        assert _health(server)[0] == 200
        # The database file and its folder removed: new connections cannot open it.
        sqlite_app.ledger.engine.dispose()
        shutil.rmtree(sqlite_app.settings.home)
        code, body = _health(server)
        assert (code, body["status"]) == (503, "failing")
        database = body["checks"]["database"]
        assert database["ok"] is False
        assert "unable to open database file" in database["error"]
        assert body["checks"]["liveness"] == {"ok": True}
        host, port = server.address
        answer = httpx.get(f"http://{host}:{port}/metrics")
    assert answer.status_code == 200
    samples = _samples(answer.text)
    assert _value(samples, "copyguard_scrape_errors_total") == 1
    assert not any(name == "copyguard_captures" for name, _ in samples)


def test_other_paths_are_not_found(sqlite_app: App) -> None:
    with OpsServer(sqlite_app, "127.0.0.1:0", role="daemon") as server:
        host, port = server.address
        with httpx.Client(base_url=f"http://{host}:{port}") as client:
            assert client.get("/").status_code == 404
            assert client.get("/metrics/extra").status_code == 404
            assert client.post("/metrics").status_code == 501
            assert client.get("/healthz?verbose=1").status_code == 200


def test_a_taken_port_is_an_error_naming_the_address(sqlite_app: App) -> None:
    with OpsServer(sqlite_app, "127.0.0.1:0", role="daemon") as first:
        host, port = first.address
        second = OpsServer(sqlite_app, f"{host}:{port}", role="worker identify")
        with pytest.raises(OpsServerError, match=f"{host}:{port}"):
            second.start()
        second.stop()  # not started: nothing to do
        assert httpx.get(f"http://{host}:{port}/healthz").status_code == 200
    with pytest.raises(OpsServerError, match="not host:port"):
        OpsServer(sqlite_app, "localhost", role="daemon").start()


def test_a_stopped_server_releases_its_port(sqlite_app: App) -> None:
    server = OpsServer(sqlite_app, "127.0.0.1:0", role="daemon")
    host, port = server.start()
    server.stop()
    server.stop()
    with OpsServer(sqlite_app, f"{host}:{port}", role="daemon") as again:
        assert again.address == (host, port)
