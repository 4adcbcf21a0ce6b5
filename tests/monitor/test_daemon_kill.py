"""`kill -9` of the daemon at random moments of a run against the demo site, then restarts: when
the last run is over every copy on the site has been captured and detected exactly once, no
notice reached the site twice, every detection is in at most one notice, and the audit chain
verifies. The moments are drawn from a fixed seed (COPYGUARD_KILL_SEED overrides it, to explore
others); each kill is logged with its moment so a failure can be replayed."""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from config import load_settings
from ledger.models import Capture, Detection, NoticeItem
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

KILLS = 4
SEED = int(os.environ.get("COPYGUARD_KILL_SEED", "20261202"))
UNSETTLED = ("draft", "queued")  # notice states the takedown stage has still to move on


def _settled(info: dict[str, Any]) -> bool:
    notices = info["queues"]["notices"]
    return (job_of(info, "crawl:demo").get("status") == "ok"
            and info["queues"]["captures_pending"] == 0
            and sum(notices.values()) > 0 and not any(notices.get(s) for s in UNSETTLED)
            and not info["queues"]["detections"].get("new"))


def _ledger_counts(cli: Cli) -> dict[str, Any]:
    app = build_app(load_settings(environ=cli.env), actor="test")
    try:
        with app.ledger.read() as session:
            captures = Counter(url for (url,) in session.execute(select(Capture.url)))
            detections = Counter(url for (url,) in session.execute(
                select(Capture.url).join(Detection, Detection.capture_id == Capture.id)))
            in_notices = Counter(d for (d,) in session.execute(select(NoticeItem.detection_id)))
            identified = session.scalar(select(func.count()).select_from(Capture).where(
                Capture.identified_at.is_not(None)))
    finally:
        app.close()
    return {"captures": captures, "detections": detections, "in_notices": in_notices,
            "identified": identified}


@pytest.mark.slow
def test_kill_9_at_random_moments_then_restart_loses_and_repeats_nothing(
        demo_site: DemoSite, demo_catalog: Path, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    cli = make_cli(tmp_path / "home")
    cli.env.update(FAST)
    add_demo_holder(cli, demo_catalog)
    log = tmp_path / "daemon.log"
    with DemoServer(demo_site) as server:
        cli("targets", "add", server.url("/"), "--name", "demo", "--allow-private",
            "--depth", "4", "--max-pages", "40", "--schedule", "every 1h",
            "--notice-form-url", server.url(NOTICE_FORM_PATH))
        moments = []
        for _ in range(KILLS):
            daemon = start_daemon(cli, log)
            moment = rng.uniform(1.0, 12.0)
            moments.append(round(moment, 2))
            time.sleep(moment)
            daemon.kill()
            daemon.wait(timeout=30)
            with log.open("a") as out:
                out.write(f"--- kill -9 after {moment:.2f} s (seed {SEED}) ---\n")
        daemon = start_daemon(cli, log)
        try:
            wait_for(cli, daemon, log, _settled, seconds=240)
        finally:
            code, _ = stop_daemon(daemon)
        assert code == 0, log.read_text()[-3000:]
        expected = {server.url(p.path) for p in demo_site.expected("detection")}
        # Only the copies themselves: a page that holds two copies may rightly be cited as
        # "found on" by two notices sent at different times.
        received = Counter(url for notice in server.notices for url in notice.urls
                           if url in expected)
        references = Counter({k.lower(): v for k, v in n.headers.items()}["idempotency-key"]
                             for n in server.notices)

    counts = _ledger_counts(cli)
    context = f"kill moments {moments} (seed {SEED})"
    # Every copy captured, identified and detected, each exactly once.
    assert set(counts["detections"]) == expected, context
    assert all(n == 1 for n in counts["detections"].values()), (context, counts["detections"])
    assert all(n == 1 for n in counts["captures"].values()), (context, counts["captures"])
    assert counts["identified"] == sum(counts["captures"].values()), context
    # No notice reached the site twice; each detection is in at most one notice.
    assert server.notices, context
    assert all(n == 1 for n in references.values()), (context, references)
    assert all(n == 1 for n in received.values()), (context, received)
    assert all(n == 1 for n in counts["in_notices"].values()), context
    notices = cli.json_lines("notices", "list", "--json")
    delivered = [n for n in notices if n["status"] == "sent"]
    # A notice whose send a kill interrupted is `unconfirmed` (never re-sent by itself): it may
    # or may not have arrived; every other one arrived exactly once.
    assert len(delivered) <= len(server.notices) <= len(notices), (context, json.dumps(notices))
    assert "no problems" in cli("audit", "verify").stdout, context
