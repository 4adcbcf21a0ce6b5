"""End to end: crawl the demo site, send its host one notice on its web form, re-check.

The site (monitor.demo_site) serves altered catalog copies and takes notices on a form; as a
compliant host it takes down what a notice names, but one file it keeps serving. The test
asserts the notice carries every copy's URL and the DMCA statements, arrives exactly once
(`notices send` again sends nothing), the site's published contact was found, the re-check marks
the taken-down URLs removed and the one still served still up (the notice partially removed,
its deadline being over), and the audit chain verifies."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ledger.db import open_ledger
from ledger.models import SiteContact
from monitor.demo_site import NOTICE_CONTACT, NOTICE_FORM_PATH, DemoServer, DemoSite
from tests.monitor.conftest import Cli, make_cli

pytestmark = pytest.mark.slow


def _run(cli: Cli, *args: str) -> dict[str, Any]:
    """A command in a process of its own (a crawl's reactor runs once a process); its JSON."""
    result = subprocess.run([sys.executable, "-m", "monitor", *args, "--json"], env=cli.env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_detections_become_one_notice_sent_once_then_rechecked(
        demo_site: DemoSite, demo_catalog: Path, tmp_path: Path) -> None:
    cli = make_cli(tmp_path / "home")
    cli.env.update({
        "COPYGUARD_CRAWL__MAX_AUDIO_MB": "2", "COPYGUARD_CRAWL__DEFAULT_DELAY_SECONDS": "0",
        # no batch window, re-check at once, deadline over: the whole follow-up in one run
        "COPYGUARD_TAKEDOWN__BATCH_WINDOW_HOURS": "0",
        "COPYGUARD_TAKEDOWN__RECHECK_AFTER_DAYS": "0", "COPYGUARD_TAKEDOWN__DEADLINE_DAYS": "0",
        "COPYGUARD_TAKEDOWN__MIN_INTERVAL_PER_RECIPIENT_SECONDS": "0",
    })
    cli("holders", "add", "Demo Records", "--email", "legal@demo.example", "--address",
        "1 Demo Street, Springfield", "--phone", "+1 555 0100", "--signatory", "Jane Roe",
        "--signatory-title", "Head of Legal Affairs", "--notice-policy", "auto")
    cli("catalog", "import", str(demo_catalog), "--holder", "Demo Records")
    with DemoServer(demo_site) as server:
        stubborn = "/media/blog-64k.mp3"
        server.honour_notices, server.ignore_notices_for = True, {stubborn}
        cli("targets", "add", server.url("/"), "--name", "demo", "--allow-private",
            "--depth", "4", "--max-pages", "40",
            "--notice-form-url", server.url(NOTICE_FORM_PATH))
        crawled = _run(cli, "crawl")
        assert crawled["detections"] > 0
        detected = {d["url"] for d in cli.json_lines("detections", "list", "--json")}
        assert server.url(stubborn) in detected

        sent = _run(cli, "notices", "send")
        waiting = cli.json_lines("notices", "list", "--status", "review", "--json")
        for notice in waiting:  # short or unsure copies wait for a person
            cli("notices", "review", str(notice["id"]), "--approve", "--reason",
                "checked: no licence, whole-track copies, not fair use")
        if waiting:
            sent = _run(cli, "notices", "send")
        assert sent["summary"]["sent"] == 1, sent
        [received] = server.notices
        assert detected <= set(received.urls)  # every detection in the one notice
        message = received.fields.get("message", "")
        assert "good faith belief" in message and "penalty of perjury" in message
        assert "/s/ Jane Roe" in message
        assert received.headers.get("Idempotency-Key")

        again = _run(cli, "notices", "send")
        assert again["summary"].get("sent", 0) == 0 and len(server.notices) == 1

        checked = _run(cli, "notices", "recheck")
        assert checked["outcomes"] == {"partially-removed": 1}, checked
        [notice] = cli.json_lines("notices", "list", "--json")
        shown = json.loads(cli("notices", "show", str(notice["id"]), "--json").stdout)
        by_url = {item["url"]: item for item in shown["items"]}
        assert by_url.pop(server.url(stubborn))["status"] == "still-up"
        assert {item["status"] for item in by_url.values()} == {"removed"}, by_url
        assert {item["check_http_status"] for item in by_url.values()} == {410}

        lumen = json.loads(cli("notices", "export", "--format", "lumen").stdout)
        assert lumen[0]["action_taken"] == "Partial"
        assert cli("notices", "export", "--format", "urls", "--still-up").stdout == \
            server.url(stubborn) + "\n"

    ledger = open_ledger(cli.env["COPYGUARD_DATABASE_URL"]
                         if "COPYGUARD_DATABASE_URL" in cli.env
                         else f"sqlite:///{tmp_path / 'home' / 'copyguard.db'}")
    try:
        with ledger.read() as session:
            contacts = set(session.execute(select(SiteContact.email)).scalars())
    finally:
        ledger.close()
    assert contacts == {NOTICE_CONTACT}
    assert "no problems" in cli("audit", "verify").stdout
