"""`copyguard cases` and `dossier verify` as a legal team uses them, on both databases: the
queue in score order, a case's breakdown, the review workflow with its refusals, holder
isolation, and an export that verifies until a byte of it changes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ledger.clock import FixedClock
from ledger.db import open_ledger
from tests.litigation.case_history import CaseStory, build_case_story
from tests.monitor.conftest import Cli


@pytest.fixture
def story(cli: Cli, database_url: str) -> CaseStory:
    ledger = open_ledger(database_url, clock=FixedClock(datetime(2026, 11, 2, 9, tzinfo=UTC)))
    try:
        with ledger.write() as session:
            return build_case_story(session, ledger.clock)  # type: ignore[arg-type]
    finally:
        ledger.close()


def test_the_queue_and_the_review_workflow(cli: Cli, story: CaseStory) -> None:
    refreshed = json.loads(cli("cases", "refresh", "--json").stdout)
    assert len(refreshed["opened"]) == 7  # six of Example's infringers and Mara's one
    queue = cli.json_lines("cases", "list", "--holder", "Example Records Ltd", "--json")
    assert [c["name"] for c in queue][:3] == [
        "pirate-blog.example", "small-site.example", "honest-host.example"]
    assert [c["score"] for c in queue] == sorted((c["score"] for c in queue), reverse=True)
    blog = queue[0]
    shown = " ".join(cli("cases", "show", str(blog["id"])).stdout.split())
    assert "Gates" in shown and "Score" in shown and "total" in shown
    assert "$750 to $30,000; up to $150,000 if willful" in shown
    details = json.loads(cli("cases", "show", str(blog["id"]), "--json").stdout)
    assert {link["reason"] for links in details["links"].values() for link in links} == {
        "same-ip", "shared-page"}
    assert {f["factor"]: f["value"] for f in details["breakdown"]}["ignored_notices"] == 3

    # Mara's legal team does not see Example's case, not even by its id.
    mara = cli("cases", "show", str(blog["id"]), "--holder", "Mara Jones Music", ok=False)
    assert mara.exit_code == 1 and f"no case {blog['id']}" in mara.stderr
    assert [c["name"] for c in cli.json_lines("cases", "list", "--holder", "Mara Jones Music",
                                               "--json")] == ["pirate-blog.example"]

    no_reason = cli("cases", "review", str(blog["id"]), "--approve", ok=False)
    assert no_reason.exit_code == 1 and "--reason" in no_reason.stderr
    assigned = cli("cases", "review", str(blog["id"]), "--assign", "A. Counsel", "--note",
                   "ask the host for the uploader's details").stdout
    assert "under-review, assigned to A. Counsel" in assigned
    cli("cases", "review", str(blog["id"]), "--approve", "--reason",
        "willful: notices ignored, re-uploads; registered works")
    filed = cli("cases", "review", str(blog["id"]), "--filed", "--reason",
                "S.D.N.Y. 1:26-cv-01234").stdout
    assert f"case {blog['id']} is filed" in filed
    again = cli("cases", "review", str(blog["id"]), "--decline", "--reason", "x", ok=False)
    assert again.exit_code == 1 and "only a case that is" in again.stderr

    barred = next(c for c in queue if c["track"] == "barred")
    refused = cli("cases", "review", str(barred["id"]), "--approve", "--reason", "try", ok=False)
    assert refused.exit_code == 1 and "failed its gates" in refused.stderr
    info = json.loads(cli("cases", "show", str(blog["id"]), "--json").stdout)
    assert info["status"] == "filed" and info["notes"][0]["author"].startswith("cli:")
    actions = [json.loads(line)["action"] for line in
               cli("audit", "list", "--action", "case.", "--json").stdout.splitlines()]
    assert actions.count("case.opened") == 7
    assert {"case.assigned", "case.noted", "case.approve", "case.file"} <= set(actions)
    assert "no problems" in cli("audit", "verify").stdout


def test_export_and_verify_from_the_command_line(cli: Cli, story: CaseStory,
                                                 tmp_path: Path) -> None:
    cli("cases", "refresh")
    case = cli.json_lines("cases", "list", "--json")[0]
    out = tmp_path / "dossier.zip"
    # The story's captures name WARC files that were never written: the export says so.
    result = json.loads(cli("cases", "export", str(case["id"]), "--out", str(out), "--no-pdf",
                            "--json").stdout)
    assert result["path"] == str(out) and out.exists()
    assert any("evidence not readable" in note for note in result["notes"])
    verified = cli("dossier", "verify", str(out))
    assert "no problems" in verified.stdout
    exists = cli("cases", "export", str(case["id"]), "--out", str(out), ok=False)
    assert exists.exit_code == 1 and "exists already" in exists.stderr
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text('{"format": "copyguard-dossier/1", "files": '
                                          '[{"path": "works.csv", "sha256": "0", "size": 1}]}')
    failed = cli("dossier", "verify", str(broken), ok=False)
    assert failed.exit_code == 1 and "works.csv: missing" in failed.stderr
