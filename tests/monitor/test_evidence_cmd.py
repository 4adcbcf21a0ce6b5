"""`copyguard evidence push`, and a real crawl keeping its evidence in object storage (moto's S3
server on 127.0.0.1) where a second machine with an empty disk reads all of it."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ledger.clock import FixedClock
from ledger.db import open_ledger
from ledger.evidence import EvidenceStore, WarcLocation
from ledger.models import Capture, Crawl
from monitor.demo_site import DemoServer, DemoSite
from tests.ledger.test_evidence import BODY, _exchange
from tests.monitor.conftest import Cli, make_cli
from tests.s3_server import (
    ACCESS_KEY_ID,
    PREFIX,
    SECRET_ACCESS_KEY,
    closed_port,
    object_store,
    s3_client,
)


def _with_s3(cli: Cli, endpoint: str, bucket: str) -> Cli:
    cli.env.update({
        "COPYGUARD_EVIDENCE__S3_ENDPOINT": endpoint, "COPYGUARD_EVIDENCE__S3_BUCKET": bucket,
        "COPYGUARD_EVIDENCE__S3_PREFIX": PREFIX, "COPYGUARD_EVIDENCE__S3_TIMEOUT_SECONDS": "3",
        "COPYGUARD_EVIDENCE__S3_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "COPYGUARD_EVIDENCE__S3_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY})
    return cli


def _keys(endpoint: str, bucket: str) -> set[str]:
    listed = s3_client(endpoint).list_objects_v2(Bucket=bucket).get("Contents", [])
    return {str(item.get("Key")) for item in listed}


def test_push_uploads_what_only_this_disk_has_then_nothing(
        tmp_path: Path, clock: FixedClock, endpoint: str, bucket: str) -> None:
    home = tmp_path / "home"
    with EvidenceStore(home / "evidence", clock=clock) as local_only:  # before object storage
        blob = local_only.put_blob(BODY)
        location = local_only.write_exchange(_exchange()).response
    cli = _with_s3(make_cli(home), endpoint, bucket)
    first = cli("evidence", "push")
    assert f"2 file(s) uploaded to s3://{bucket}/{PREFIX}" in first.stdout
    assert _keys(endpoint, bucket) == {PREFIX + blob.path, PREFIX + location.file}
    [summary] = cli.json_lines("evidence", "push", "--json")
    assert summary == {"destination": f"s3://{bucket}/{PREFIX}", "uploaded": 0, "present": 0,
                       "busy": 0, "problems": []}


def test_push_without_object_storage_says_how_to_configure_it(tmp_path: Path) -> None:
    result = make_cli(tmp_path / "home")("evidence", "push", ok=False)
    assert result.exit_code == 1
    assert "object storage is not configured: set [evidence] s3_endpoint" in result.stderr


def test_push_to_unreachable_object_storage_fails_naming_it(tmp_path: Path,
                                                             bucket: str) -> None:
    down = f"http://127.0.0.1:{closed_port()}"
    result = _with_s3(make_cli(tmp_path / "home"), down, bucket)("evidence", "push", ok=False)
    assert result.exit_code == 1
    assert f"object storage at {down} is unreachable" in " ".join(result.stderr.split())


def test_push_to_a_missing_bucket_fails_naming_it(tmp_path: Path, endpoint: str) -> None:
    cli = _with_s3(make_cli(tmp_path / "home"), endpoint, "no-such-bucket-here")
    result = cli("evidence", "push", ok=False)
    assert result.exit_code == 1
    assert "has no bucket 'no-such-bucket-here'" in " ".join(result.stderr.split())


def _crawl(cli: Cli) -> subprocess.CompletedProcess[str]:
    """`copyguard crawl` in a process of its own (Scrapy's reactor runs once a process)."""
    return subprocess.run([sys.executable, "-m", "monitor", "crawl", "--json", "--no-identify"],
                          env=cli.env, capture_output=True, text=True, timeout=600, check=False)


@pytest.mark.slow
def test_a_crawl_keeps_every_capture_where_another_machine_reads_it(
        demo_site: DemoSite, tmp_path: Path, clock: FixedClock, endpoint: str,
        bucket: str) -> None:
    crawler = _with_s3(make_cli(tmp_path / "crawler"), endpoint, bucket)
    crawler.env["COPYGUARD_CRAWL__MAX_AUDIO_MB"] = "2"
    crawler.env["COPYGUARD_CRAWL__DEFAULT_DELAY_SECONDS"] = "0"
    with DemoServer(demo_site) as server:
        crawler("targets", "add", server.url("/"), "--name", "demo", "--allow-private",
                "--depth", "4", "--max-pages", "40")
        result = _crawl(crawler)
    assert result.returncode == 0, result.stderr
    summary: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["crawls"][0]["status"] == "finished"
    assert summary["crawls"][0]["captures"] >= 5

    # Another machine: the same ledger, the same bucket, nothing on its disk.
    worker = EvidenceStore(tmp_path / "worker" / "evidence", clock=clock,
                           remote=object_store(endpoint, bucket))
    ledger = open_ledger(f"sqlite:///{tmp_path / 'crawler' / 'copyguard.db'}", clock=clock)
    try:
        with ledger.read() as session:
            captures = list(session.execute(select(Capture)).scalars())
            assert len(captures) == summary["crawls"][0]["captures"]
            for capture in captures:
                blob = worker.blob_path(capture.sha256)
                assert hashlib.sha256(blob.read_bytes()).hexdigest() == capture.sha256
                location = WarcLocation(capture.warc_file, capture.warc_offset,
                                        capture.warc_length)
                assert worker.verify(location, capture.sha256), capture.url
                if capture.page_warc_file:
                    page = worker.read_record(WarcLocation(
                        capture.page_warc_file, capture.page_warc_offset or 0,
                        capture.page_warc_length or 0))
                    assert page.warc_header("WARC-Target-URI") == capture.page_url
    finally:
        ledger.close()
    # The crawl sent everything itself: nothing is left for the sweep.
    assert "0 file(s) uploaded" in crawler("evidence", "push").stdout


def test_a_crawl_does_not_start_while_object_storage_is_unreachable(tmp_path: Path,
                                                                     bucket: str) -> None:
    down = f"http://127.0.0.1:{closed_port()}"
    cli = _with_s3(make_cli(tmp_path / "home"), down, bucket)
    cli("targets", "add", "http://127.0.0.1:9/", "--name", "site", "--allow-private")
    with EvidenceStore(tmp_path / "home" / "evidence") as left_behind:
        left_behind.put_blob(BODY)  # an earlier crawl's blob, not in object storage
    result = _crawl(cli)
    assert result.returncode == 1
    assert f"object storage at {down} is unreachable" in " ".join(result.stderr.split())
    ledger = open_ledger(f"sqlite:///{tmp_path / 'home' / 'copyguard.db'}")
    try:
        with ledger.read() as session:
            assert session.execute(select(Crawl)).first() is None  # not even begun
    finally:
        ledger.close()
