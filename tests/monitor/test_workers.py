"""`copyguard worker` processes against one PostgreSQL ledger, as an operator scales out: two and
four identify workers share the captures, none identified twice and none left behind, even when
one is killed with -9 holding a capture; a database that stops for a while and starts again is
waited out by the daemon and its workers."""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select

from config import load_settings
from fingerprints.alter import encode, excerpt
from fingerprints.synth import synthesize_track, write_wav
from ledger.models import AuditEntry, Capture, Crawl, CrawlStatus, Detection, IdentifyStatus, Target
from monitor.app import App, build_app
from tests.monitor.conftest import Cli, make_cli
from tests.monitor.daemon_tools import FAST, start_daemon, status_of
from tests.pg_instance import PrivatePostgres

RATE = 22050
SEEDS = (21, 22)
# A capture's claim runs out quickly here, so a killed worker's capture is retaken in the test.
QUICK_LEASE = {"COPYGUARD_DAEMON__WORKER_LEASE_SECONDS": "10",
               "COPYGUARD_DECODING__TIMEOUT_SECONDS": "8"}


def _catalog_and_captures(tmp_path: Path, database_url: str, copies: int,
                          others: int, request: pytest.FixtureRequest) -> tuple[Cli, App]:
    """Two catalog recordings and ``copies`` excerpts of them plus ``others`` unrelated files
    waiting as captures of one crawl. The app is closed after the test, also one that fails:
    a PostgreSQL connection left open is garbage-collected during some later test, whose
    ResourceWarning then fails that one instead."""
    cli = make_cli(tmp_path / "home", database_url)
    cli.env.update({**FAST, **QUICK_LEASE})
    tracks = {seed: synthesize_track(seed, 40.0, RATE) for seed in SEEDS}
    for seed, samples in tracks.items():
        write_wav(tmp_path / f"song-{seed}.wav", samples, RATE)
    cli("holders", "add", "Acme", "--email", "legal@acme.example")
    cli("catalog", "import", *(str(tmp_path / f"song-{s}.wav") for s in SEEDS),
        "--holder", "Acme")
    app = build_app(load_settings(environ=cli.env), actor="test")
    request.addfinalizer(app.close)
    now = app.clock.now()
    with app.ledger.write() as session:
        target = Target(name="site", start_urls=["https://s.example/"],
                        allowed_domains=["s.example"], follow=[], deny=[], depth=1,
                        max_pages=10, schedule="every 6h", delay_seconds=1.0, concurrency=1,
                        obey_robots=True, allow_private=False, source="cli", created_at=now)
        session.add(target)
        session.flush()
        crawl = Crawl(target_id=target.id, status=CrawlStatus.FINISHED, started_at=now,
                      stats={})
        session.add(crawl)
        session.flush()
        target_id, crawl_id = target.id, crawl.id
    bodies = [encode(excerpt(tracks[SEEDS[n % 2]], RATE, 3.0 * n, 3.0 * n + 8.0), RATE,
                     "mp3", "64k") for n in range(copies)]
    bodies += [encode(synthesize_track(700 + n, 8.0, RATE), RATE, "mp3", "64k")
               for n in range(others)]
    with app.evidence() as evidence:
        for n, body in enumerate(bodies):
            sha = evidence.put_blob(body).sha256
            with app.ledger.write() as session:
                session.add(Capture(
                    crawl_id=crawl_id, target_id=target_id, url=f"https://s.example/{n}.mp3",
                    page_url=None, via="link", fetched_at=now, http_status=200, headers=[],
                    size=len(body), sha256=sha, warc_file="warc/x.warc.gz", warc_offset=0,
                    warc_length=1))
    return cli, app


def _start_worker(cli: Cli, log: Path, *args: str) -> subprocess.Popen[str]:
    return start_daemon(cli, log, "worker", *args)


@dataclass(frozen=True)
class _Seen:
    id: int
    identify_status: str
    claimed_by: str | None
    attempts: int


def _captures(app: App) -> list[_Seen]:
    with app.ledger.read() as session:
        return [_Seen(*row) for row in session.execute(select(
            Capture.id, Capture.identify_status, Capture.claimed_by, Capture.attempts)
            .order_by(Capture.id))]


def _wait_all_identified(app: App, processes: list[subprocess.Popen[str]], log: Path,
                         seconds: float = 180) -> list[_Seen]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        captures = _captures(app)
        if all(c.identify_status != IdentifyStatus.PENDING for c in captures):
            return captures
        assert all(p.poll() is None for p in processes), log.read_text()[-3000:]
        time.sleep(0.5)
    raise AssertionError(f"captures left pending\n{log.read_text()[-3000:]}")


def _stop_all(processes: list[subprocess.Popen[str]], log: Path) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    codes = [process.wait(timeout=60) for process in processes]
    assert codes == [0] * len(processes), log.read_text()[-3000:]


def _kill_all(processes: list[subprocess.Popen[str]]) -> None:
    """After a failure: nothing is left running (the failure itself is what is reported)."""
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def _identified_once(app: App, copies: int) -> None:
    """Every copy is one detection, written by one audit entry; nothing is left pending."""
    with app.ledger.read() as session:
        detections = Counter(c for (c,) in session.execute(select(Detection.capture_id)))
        created = session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "detection.created"))
    assert len(detections) == copies and set(detections.values()) == {1}
    assert created == copies


def _parent_pid(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[1])


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("workers", [2, 4])
def test_identify_workers_share_the_captures_once(workers: int, postgres_url: str,
                                                  tmp_path: Path,
                                                  request: pytest.FixtureRequest) -> None:
    copies, others = 10, 4
    cli, app = _catalog_and_captures(tmp_path, postgres_url, copies, others, request)
    log = tmp_path / "workers.log"
    processes = [_start_worker(cli, log, "--stage", "identify") for _ in range(workers)]
    killed: str | None = None
    try:
        if workers == 4:
            # Kill -9 a worker while it holds a capture: its claim runs out and another takes
            # the capture over.
            deadline = time.monotonic() + 120
            while killed is None and time.monotonic() < deadline:
                for capture in _captures(app):
                    if capture.identify_status == IdentifyStatus.PENDING and capture.claimed_by:
                        child = int(capture.claimed_by.rsplit(":", 1)[1])
                        owner = next((p for p in processes if p.pid == _parent_pid(child)), None)
                        if owner is not None:
                            owner.kill()
                            owner.wait(timeout=30)
                            processes.remove(owner)
                            killed = capture.claimed_by
                            break
                time.sleep(0.05)
            assert killed is not None, "no worker was seen holding a capture"
        captures = _wait_all_identified(app, processes, log)
    except BaseException:
        _kill_all(processes)
        raise
    _stop_all(processes, log)
    assert all(c.identify_status == IdentifyStatus.DONE for c in captures)
    _identified_once(app, copies)
    by_worker = Counter(c.claimed_by for c in captures)
    assert len(by_worker) >= 2, by_worker  # the work was shared
    assert killed not in by_worker or by_worker[killed] < len(captures)
    if killed is not None:
        retaken = [c for c in captures if c.attempts == 2]
        assert retaken and all(c.claimed_by != killed for c in retaken)
    app.close()


@pytest.fixture
def private_postgres() -> PrivatePostgres:
    server = PrivatePostgres()
    server.start()
    yield server  # type: ignore[misc]
    server.remove()


@pytest.mark.slow
def test_a_database_that_stops_and_starts_again_is_waited_out(
        private_postgres: PrivatePostgres, tmp_path: Path,
        request: pytest.FixtureRequest) -> None:
    copies, others = 8, 2
    cli, app = _catalog_and_captures(tmp_path, private_postgres.url, copies, others,
                                     request)
    cli.env["COPYGUARD_DAEMON__WORKER_STAGES"] = "identify"
    log = tmp_path / "outage.log"
    daemon = start_daemon(cli, log)
    worker = _start_worker(cli, log, "--stage", "identify")
    processes = [daemon, worker]
    try:
        deadline = time.monotonic() + 120
        while sum(c.identify_status == IdentifyStatus.DONE for c in _captures(app)) < 2:
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        app.ledger.engine.dispose()
        private_postgres.stop()
        # Out long enough that the processes notice (a fixed sleep lost the race on a busy
        # machine): until one of them reports the outage, and a little longer.
        deadline = time.monotonic() + 60
        while "the database cannot be reached" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        time.sleep(3)
        assert all(p.poll() is None for p in processes), log.read_text()[-3000:]
        private_postgres.start()
        _wait_all_identified(app, processes, log)
        deadline = time.monotonic() + 60  # the daemon's heartbeat resumes
        while not status_of(cli)["daemon"]["running"]:
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(1)
    except BaseException:
        _kill_all(processes)
        raise
    _stop_all(processes, log)
    _identified_once(app, copies)
    text = log.read_text()
    assert "the database cannot be reached" in text and "answers again" in text
    assert "no problems" in cli("audit", "verify").stdout
    app.close()


def test_a_worker_busy_with_a_long_run_keeps_beating_and_renewing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A crawl may hold a worker for hours: meanwhile its liveness tick, heartbeat and lease
    go on (else /healthz would answer 503 and `status` call the worker gone)."""
    from datetime import timedelta

    from monitor.daemon import jobs, requests, worker
    from monitor.daemon.ops import Tick

    monkeypatch.setattr(worker, "LIVENESS_SECONDS", 0.05)
    monkeypatch.setattr(worker, "HEARTBEAT_SECONDS", 0.2)
    app = build_app(load_settings(None, environ={"COPYGUARD_HOME": str(tmp_path / "home")}),
                    actor="test")
    lease = timedelta(seconds=0.6)
    with app.ledger.write() as session:
        requests.enqueue(session, job="crawl:site", stage="crawl", target="site",
                         now=app.clock.now())
    claimed = requests.claim(app.ledger, "crawl", worker=jobs.worker_name(),
                             now=app.clock.now(), lease=lease)
    assert claimed is not None
    ticks, beats = [], []

    class CountingTick(Tick):
        def __call__(self) -> None:
            ticks.append(time.monotonic())
            super().__call__()

    with worker._LeaseKeeper(jobs.Runtime(app=app), claimed.id, lease, CountingTick(),
                             lambda: beats.append(time.monotonic())):
        time.sleep(1.5)  # the run in hand, 2.5 leases long
    assert len(ticks) >= 15 and len(beats) >= 4, (len(ticks), len(beats))
    # Renewed all along: no other worker could take the run although 1.5 s > the lease.
    assert requests.claim(app.ledger, "crawl", worker="other:1", now=app.clock.now(),
                          lease=lease) is None
    app.close()
