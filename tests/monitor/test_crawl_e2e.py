"""End to end: `copyguard crawl` on a real local site hiding altered catalog copies.

The site (monitor.demo_site) embeds copies in every style next to decoys, a corrupt and an
oversized file, a robots-disallowed folder, links to other private addresses, a crawl trap and a
page that answers 429 first. The test asserts exactly which detections appear, which requests
were refused and never made, and that a second crawl captures nothing again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from monitor.demo_site import DemoServer, DemoSite
from tests.monitor.conftest import DEMO_PRIVATE_LINKS as PRIVATE_LINKS
from tests.monitor.conftest import Cli, make_cli

pytestmark = pytest.mark.slow

def _crawl(cli: Cli, *targets: str) -> dict[str, Any]:
    """`copyguard crawl --json` in a process of its own (Scrapy's reactor runs once a process)."""
    result = subprocess.run([sys.executable, "-m", "monitor", "crawl", "--json", *targets],
                            env=cli.env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_crawl_finds_every_copy_and_refuses_what_it_must(
        demo_site: DemoSite, demo_catalog: Path, tmp_path: Path, database_url: str) -> None:
    site, catalog = demo_site, demo_catalog
    cli = make_cli(tmp_path / "home", database_url)
    cli.env["COPYGUARD_CRAWL__MAX_AUDIO_MB"] = "2"
    cli.env["COPYGUARD_CRAWL__DEFAULT_DELAY_SECONDS"] = "0"
    cli("holders", "add", "Demo Records", "--email", "legal@demo.example")
    cli("catalog", "import", str(catalog), "--holder", "Demo Records")

    with DemoServer(site) as server:
        cli("targets", "add", server.url("/"), "--name", "demo", "--allow-private",
            "--depth", "4", "--max-pages", "40")
        first = _crawl(cli)
        requests = server.requests

        [crawl] = first["crawls"]
        assert crawl["status"] == "finished"
        problems = {(p["kind"], p["url"]) for p in first["problems"]}
        refused = {url for kind, url in problems if kind == "refused"}
        assert refused == {server.url(link) for link in PRIVATE_LINKS}
        assert ("robots_disallowed", server.url("/private/leak.html")) in problems
        paths = [r.path for r in requests]
        assert not [p for p in paths if p.startswith("/private/")]  # robots.txt obeyed
        assert not [r for r in requests if r.headers.get("Host", "").startswith("localhost")]
        assert sum(p.startswith(site.trap_prefix) for p in paths) <= 5  # depth cuts the trap
        slow = [r for r in requests if r.path == site.slow_path]
        assert [r.status for r in slow] == [429, 200]
        assert slow[1].at - slow[0].at >= 0.9  # Retry-After: 1 was honoured
        user_agents = {r.headers.get("User-Agent") for r in requests}
        assert len(user_agents) == 1 and "copyguard" in str(user_agents.pop())

        detections = cli.json_lines("detections", "list", "--json")
        found = {d["url"].removeprefix(server.base_url): d for d in detections}
        expected = {p.path: p for p in site.expected("detection")}
        assert set(found) == set(expected), (sorted(found), sorted(expected))
        for path, placement in expected.items():
            assert found[path]["title"] == f"track-{placement.track:02d}", path
            assert found[path]["holder"] == "Demo Records"
        for placement in site.expected("no-match"):
            assert placement.path not in found
        broken = _capture_of(cli, detections, server.url("/media/broken.mp3"))
        assert broken["identify_status"] == "failed" and broken["error"]
        assert not any(p.path == "/media/huge.wav" and p.expected != "too-large"
                       for p in site.placements)
        assert ("too_large", server.url("/media/huge.wav")) in problems

        shown = json.loads(cli("captures", "show", str(found["/media/blog-64k.mp3"]["capture_id"]),
                               "--json").stdout)
        assert shown["page_url"] == server.url("/blog/") and shown["via"] == "link"
        assert shown["page_title"] == "Blog: this week's uploads"
        assert shown["warc"]["length"] > 0 and shown["page_warc"] is not None
        assert shown["ip_address"] == "127.0.0.1" and len(shown["sha256"]) == 64

        second = _crawl(cli)
        [again] = second["crawls"]
        assert again["captures"] == 0 and second["detections"] == 0
        assert again["pages_not_modified"] >= 1
    assert len(cli.json_lines("detections", "list", "--json")) == len(expected)
    assert "no problems" in cli("audit", "verify").stdout


def _capture_of(cli: Cli, detections: list[dict[str, Any]], url: str) -> dict[str, Any]:
    """The capture of ``url``, found through the audit log's capture entries."""
    for entry in cli.json_lines("audit", "list", "--action", "capture.recorded", "--json"):
        if entry["details"]["url"] == url:
            return json.loads(cli("captures", "show", entry["entity_id"], "--json").stdout)
    raise AssertionError(f"no capture of {url}")


def test_the_site_is_deterministic_about_its_placements(demo_site: DemoSite) -> None:
    site = demo_site
    assert len(site.expected("detection")) >= 9
    assert os.path.exists(site.root)
