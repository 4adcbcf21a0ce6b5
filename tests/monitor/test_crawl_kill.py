"""`kill -9` in the middle of a crawl loses nothing and duplicates nothing."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from config import load_settings
from fingerprints.synth import synthesize_track, write_wav
from ledger.db import Ledger, open_ledger
from ledger.evidence import EvidenceStore, WarcLocation
from ledger.models import Capture, Crawl, CrawlStatus, Detection
from monitor.demo_site import TRACKS_NEEDED, DemoServer, build_site
from tests.monitor.conftest import make_cli

pytestmark = pytest.mark.slow

RATE = 22050


def test_crawls_killed_at_random_moments_resume_without_loss_or_duplicates(
        tmp_path: Path) -> None:
    tracks = [synthesize_track(70 + i, 25.0, RATE) for i in range(TRACKS_NEEDED)]
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    for number, samples in enumerate(tracks):
        write_wav(catalog / f"track-{number:02d}.wav", samples, RATE)
    site = build_site(tmp_path / "site", tracks, RATE, oversized_bytes=3 * 1024 * 1024)
    cli = make_cli(tmp_path / "home")
    cli.env["COPYGUARD_CRAWL__MAX_AUDIO_MB"] = "2"
    cli("holders", "add", "Demo Records", "--email", "legal@demo.example")
    cli("catalog", "import", str(catalog), "--holder", "Demo Records")
    crawl = [sys.executable, "-m", "monitor", "crawl", "--json"]
    rng = random.Random(20261201)
    settings = load_settings(environ=cli.env)
    ledger = open_ledger(settings.database_url)
    with DemoServer(site) as server:
        # A delay between requests spreads the crawl out, so the kills land mid-crawl.
        cli("targets", "add", server.url("/"), "--name", "demo", "--allow-private",
            "--depth", "4", "--max-pages", "40", "--delay", "0.2")
        for round_ in range(1, 4):
            process = subprocess.Popen(crawl, env=cli.env, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
            _wait_for_crawl(ledger, round_)  # started: its row exists
            time.sleep(rng.uniform(0.5, 4.0))
            process.send_signal(signal.SIGKILL)
            assert process.wait(timeout=30) == -signal.SIGKILL
        done = subprocess.run(crawl, env=cli.env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        json.loads(done.stdout.strip().splitlines()[-1])
        base = server.base_url

    try:
        with ledger.read() as session:
            captures = session.execute(select(Capture)).scalars().all()
            urls = [c.url for c in captures]
            assert len(urls) == len(set(urls)), "a URL was captured twice"
            per_sha = session.execute(select(Capture.sha256, func.count()).group_by(
                Capture.sha256)).all()
            assert all(count == 1 for _, count in per_sha)
            crawls = session.execute(select(Crawl.status)).scalars().all()
            # The three killed crawls were still running, and were marked by the next one.
            assert crawls.count(CrawlStatus.INTERRUPTED) == 3
            assert crawls.count(CrawlStatus.FINISHED) == 1
            detected = {url.removeprefix(base) for url in session.execute(
                select(Capture.url).join(Detection, Detection.capture_id == Capture.id)
            ).scalars()}
            pairs = session.execute(select(Detection.capture_id, Detection.recording_id)).all()
            assert len(pairs) == len(set(pairs))
            with EvidenceStore(settings.evidence_dir) as evidence:
                for capture in captures:  # every row points at complete evidence
                    location = WarcLocation(capture.warc_file, capture.warc_offset,
                                            capture.warc_length)
                    assert evidence.verify(location, capture.sha256), capture.url
                    assert evidence.blob_path(capture.sha256).is_file()
    finally:
        ledger.close()
    assert detected == {p.path for p in site.expected("detection")}
    assert "no problems" in cli("audit", "verify").stdout


def _wait_for_crawl(ledger: Ledger, count: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with ledger.read() as session:
            if session.execute(select(func.count()).select_from(Crawl)).scalar() == count:
                return
        time.sleep(0.1)
    raise AssertionError(f"crawl {count} did not start within {timeout} s")
