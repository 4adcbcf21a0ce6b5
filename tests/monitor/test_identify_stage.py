"""The identify stage: pending captures become detections once, whatever happens in between."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from config import load_settings
from fingerprints.alter import encode, excerpt
from fingerprints.synth import synthesize_track, write_wav
from ledger.clock import FixedClock
from ledger.evidence import EvidenceStore
from ledger.models import (
    AuditEntry,
    Capture,
    Crawl,
    CrawlStatus,
    Detection,
    IdentifyStatus,
    Target,
)
from monitor.app import App, build_app
from monitor.identify_stage import IdentifyStage
from tests.monitor.conftest import make_cli

RATE = 22050


@pytest.fixture
def app(tmp_path: Path, database_url: str, clock: FixedClock) -> Iterator[App]:
    cli = make_cli(tmp_path / "home", database_url)
    for seed in (11, 12):
        write_wav(tmp_path / f"song-{seed}.wav", synthesize_track(seed, 30.0, RATE), RATE)
    cli("holders", "add", "Acme", "--email", "legal@acme.example")
    cli("catalog", "import", str(tmp_path / "song-11.wav"), str(tmp_path / "song-12.wav"),
        "--holder", "Acme")
    built = build_app(load_settings(environ=cli.env), clock=clock, actor="test")
    yield built
    built.close()


def _capture(app: App, evidence: EvidenceStore, crawl_id: int, url: str, body: bytes) -> int:
    sha = evidence.put_blob(body).sha256
    with app.ledger.write() as session:
        capture = Capture(crawl_id=crawl_id, target_id=1, url=url, page_url=None, via="link",
                          fetched_at=app.clock.now(), http_status=200, headers=[], size=len(body),
                          sha256=sha, warc_file="warc/x.warc.gz", warc_offset=0, warc_length=1)
        session.add(capture)
        session.flush()
        return capture.id


def test_captures_become_detections_once(app: App, clock: FixedClock) -> None:
    copy = encode(excerpt(synthesize_track(11, 30.0, RATE), RATE, 8.0, 12.0), RATE, "mp3", "64k")
    unrelated = encode(synthesize_track(901, 12.0, RATE), RATE, "mp3", "64k")
    corrupt = b"ID3\x03\x00\x00\x00\x00\x00\x00" + np.random.default_rng(1).bytes(50_000)
    with app.ledger.write() as session:
        session.add(Target(id=1, name="site", start_urls=["https://s.example/"],
                           allowed_domains=["s.example"], follow=[], deny=[], depth=1,
                           max_pages=10, schedule="every 6h", delay_seconds=1.0, concurrency=1,
                           obey_robots=True, allow_private=False, source="cli",
                           created_at=clock.now()))
        session.add(Crawl(id=1, target_id=1, status=CrawlStatus.FINISHED,
                          started_at=clock.now(), stats={}))
    with app.evidence() as evidence:
        ids = {name: _capture(app, evidence, 1, f"https://s.example/{name}", body)
               for name, body in [("copy.mp3", copy), ("mirror.mp3", copy),
                                  ("other.mp3", unrelated), ("broken.mp3", corrupt)]}
        # A capture another worker holds under a live lease is not taken.
        with app.ledger.write() as session:
            held = session.get(Capture, ids["broken.mp3"])
            assert held is not None
            lease = timedelta(seconds=app.settings.daemon.worker_lease_seconds)
            held.claimed_by, held.lease_until = "elsewhere:1", clock.now() + lease
        stage = IdentifyStage(app.settings, app.ledger, clock, app.matcher, evidence,
                              actor="test")
        report = stage.run()
        assert (report.captures, report.detections, report.reused) == (3, 2, 1)
        clock.advance(lease + timedelta(seconds=1))  # the other worker died: its lease expires
        report = stage.run()
        assert (report.captures, report.failed) == (1, 1)
        assert stage.run().captures == 0  # nothing left: running again does nothing

    with app.ledger.read() as session:
        status = dict(session.execute(select(Capture.url, Capture.identify_status)).all())
        assert status == {
            "https://s.example/copy.mp3": IdentifyStatus.DONE,
            "https://s.example/mirror.mp3": IdentifyStatus.DONE,
            "https://s.example/other.mp3": IdentifyStatus.DONE,
            "https://s.example/broken.mp3": IdentifyStatus.FAILED}
        error = session.get(Capture, ids["broken.mp3"])
        assert error is not None and error.error
        detections = session.execute(select(Detection).order_by(Detection.id)).scalars().all()
        assert [d.capture_id for d in detections] == [ids["copy.mp3"], ids["mirror.mp3"]]
        for detection in detections:
            assert detection.recording.title == "song-11"
            assert detection.holder_id == detection.recording.holder_id
            assert abs(detection.ref_start - (8.0 + detection.query_start)) < 0.5
            assert detection.confidence >= 0.85 and detection.status == "new"
        audited = session.execute(select(func.count()).where(
            AuditEntry.action == "detection.created")).scalar()
        assert audited == 2


def test_object_storage_out_of_reach_costs_a_capture_no_attempt(
        app: App, clock: FixedClock, tmp_path: Path) -> None:
    """A worker on another machine fetches the media from object storage; while that is out
    of reach the capture waits, pending and unclaimed, instead of using up its attempts."""
    from ledger.object_store import ObjectStore, ObjectStoreError

    body = encode(excerpt(synthesize_track(11, 30.0, RATE), RATE, 5.0, 10.0), RATE, "mp3", "64k")
    with app.ledger.write() as session:
        session.add(Target(id=1, name="site", start_urls=["https://s.example/"],
                           allowed_domains=["s.example"], follow=[], deny=[], depth=1,
                           max_pages=10, schedule="every 6h", delay_seconds=1.0, concurrency=1,
                           obey_robots=True, allow_private=False, source="cli",
                           created_at=clock.now()))
        session.add(Crawl(id=1, target_id=1, status=CrawlStatus.FINISHED,
                          started_at=clock.now(), stats={}))
    with app.evidence() as evidence:
        capture_id = _capture(app, evidence, 1, "https://s.example/copy.mp3", body)
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    away = ObjectStore(f"http://127.0.0.1:{port}", "evidence", access_key_id="k",
                       secret_access_key="s", timeout_seconds=1)
    elsewhere = EvidenceStore(tmp_path / "other-machine", remote=away)  # nothing on its disk
    stage = IdentifyStage(app.settings, app.ledger, clock, app.matcher, elsewhere,
                          actor="test")
    for _ in range(4):  # more than MAX_ATTEMPTS
        with pytest.raises(ObjectStoreError):
            stage.run()
    with app.ledger.read() as session:
        capture = session.get(Capture, capture_id)
        assert capture is not None
        assert (capture.identify_status, capture.claimed_by, capture.attempts) == (
            IdentifyStatus.PENDING, None, 0)
