"""A rights-holder's whole journey in the browser: log in, upload a recording, see it detected
by a crawl of a local site (whose page title carries a script, shown as text), and approve
the notice the takedown stage drafted for review."""

from __future__ import annotations

import functools
import http.server
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from fingerprints.alter import encode, excerpt
from fingerprints.synth import synthesize_track, write_wav
from ledger import accounts
from ledger.holders import add_holder
from ledger.models import Role
from tests.monitor.conftest import Cli, make_cli
from tests.web.conftest import PASSWORD, Site, log_in

RATE = 22050
TITLE = '<script>alert("pwned")</script> Free uploads'


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # the test's output is enough
        pass


@pytest.fixture
def pirate_site(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A one-page site on 127.0.0.1 serving an excerpt of the song the holder registers."""
    song = tmp_path / "Night Drive.wav"
    samples = synthesize_track(404, 40.0, RATE)
    write_wav(song, samples, RATE)
    root = tmp_path / "www"
    root.mkdir()
    (root / "copy.mp3").write_bytes(encode(excerpt(samples, RATE, 10.0, 30.0), RATE, "mp3",
                                           "128k"))
    (root / "index.html").write_text(
        f"<!doctype html><html><head><title>{TITLE}</title></head><body>"
        '<a href="copy.mp3">download</a></body></html>')
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", song
    finally:
        server.shutdown()
        server.server_close()


def _run(cli: Cli, *args: str) -> dict[str, object]:
    """A CLI command in a process of its own (Scrapy's reactor runs once a process)."""
    result = subprocess.run([sys.executable, "-m", "monitor", *args, "--json"], env=cli.env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


@pytest.mark.slow
def test_a_holder_uploads_sees_a_detection_and_approves_its_notice(
        page: Page, site: Site, pirate_site: tuple[str, Path]) -> None:
    url, song = pirate_site
    app = site.app
    with app.ledger.write() as session:
        add_holder(session, app.clock, name="Indie Label", email="legal@indie.example",
                   address="1 Side Street, Bristol", phone="+44 117 496 0000",
                   signatory_name="Kim Lee",
                   signatory_title="Owner", notice_policy="review", actor="test")
        accounts.add_user(session, app.clock, username="indie", role=Role.HOLDER,
                          holder="Indie Label", password=PASSWORD, actor="test")
    cli = make_cli(app.settings.home)
    cli.env.update({"COPYGUARD_CRAWL__DEFAULT_DELAY_SECONDS": "0",
                    "COPYGUARD_TAKEDOWN__BATCH_WINDOW_HOURS": "0",
                    "COPYGUARD_TAKEDOWN__FAIR_USE_REVIEW_SECONDS": "10"})

    log_in(page, site, "indie")
    page.goto(f"{site.url}/catalog")
    page.set_input_files("input[name=files]", str(song))
    page.click("#upload")  # sent by the page's script, with its progress bar
    page.wait_for_url(f"{site.url}/catalog/uploads/*")
    assert "Received 1 file(s)" in page.inner_text(".flash"), page.inner_text("main")
    # The upload's page reloads itself until the background import is done.
    expect(page.locator("#upload-status")).to_have_text("done", timeout=90_000)
    assert "Night Drive" in page.inner_text("main table")
    assert "imported" in page.inner_text("main table")
    page.goto(f"{site.url}/catalog")
    assert "Night Drive" in page.inner_text("main")

    cli("targets", "add", url, "--name", "pirate", "--allow-private",
        "--notice-email", "abuse@pirate.example")
    crawled = _run(cli, "crawl")
    assert crawled["detections"] == 1, crawled
    drafted = _run(cli, "notices", "send")
    assert drafted["drafting"]["for review"] == 1, drafted  # type: ignore[index]

    page.goto(f"{site.url}/detections")
    page.click("main table tbody tr a")
    assert page.inner_text(".page-title") == TITLE  # the script is text, not a script
    assert page.locator("main script").count() == 0
    assert page.locator("audio").count() == 2
    page.goto(f"{site.url}/notices?status=review")
    page.click("main table tbody tr a")
    assert "copy.mp3" in page.inner_text("main")
    page.fill("input[name=reason]", "Our recording; no licence; not fair use.")
    page.click("button[value=approve]")
    assert "approved" in page.inner_text(".flash")
    assert "queued" in page.inner_text("h1")
    audited = cli.json_lines("audit", "list", "--action", "notice.approved", "--json")
    assert [e["actor"] for e in audited] == ["user:indie"]
