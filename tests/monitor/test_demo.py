"""`copyguard demo` (what `make run` runs), as a user runs it: a process of its own on a fresh
data directory (Scrapy's reactor runs once a process), then again on the same one."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.litigation.pdf_tools import pdf_page_pixels
from tests.monitor.conftest import Cli, make_cli

pytestmark = pytest.mark.slow  # builds the demo site (ffmpeg) and crawls it

VERDICT = re.compile(r"(\d+) of (\d+) altered copies found, 0 false matches\.")
OTHERS = re.compile(r"(\d+) of (\d+) other placements .* handled as expected\.")


def _demo(env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "monitor", "demo"], env=env,
                          capture_output=True, text=True, timeout=240)
    return done, time.monotonic() - started


def _rows(stdout: str, found: str) -> list[str]:
    return [line for line in stdout.splitlines() if f" {found} " in line]


@dataclass(frozen=True)
class FirstRun:
    cli: Cli
    done: subprocess.CompletedProcess[str]
    seconds: float


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> FirstRun:
    """`copyguard demo` on a fresh data directory (the environment without the caller's
    COPYGUARD_ variables)."""
    cli = make_cli(tmp_path_factory.mktemp("demo") / "home")
    done, seconds = _demo(cli.env)
    return FirstRun(cli, done, seconds)


def test_demo_finds_every_copy_then_reports_it_again_without_redoing_it(
        first_run: FirstRun) -> None:
    cli, first, first_seconds = first_run.cli, first_run.done, first_run.seconds
    assert first.returncode == 0, first.stderr
    copies = VERDICT.search(first.stdout)
    assert copies and copies[1] == copies[2] and int(copies[1]) >= 9, first.stdout
    others = OTHERS.search(first.stdout)
    assert others and others[1] == others[2], first.stdout
    assert "imported 11 recordings" in first.stderr
    assert "identifying 14 captures" in first.stderr
    # the table's rows for what must not be fetched, or not kept
    assert [row for row in _rows(first.stdout, "robots.txt") if "/private/leak.mp3" in row]
    assert len([row for row in _rows(first.stdout, "refused")
                if "private address" in row]) == 3
    assert [row for row in _rows(first.stdout, "too large") if "/media/huge.wav" in row]
    assert [row for row in _rows(first.stdout, "could not decode") if "broken.mp3" in row]
    assert len(_rows(first.stdout, "no match")) == 3
    assert re.search(r"copyguard captures show \d+ ", first.stdout)
    # the takedown: one notice to the demo host's form, taken down, confirmed by the re-check
    assert "1 notice(s) sent to the demo host's form" in first.stderr
    assert "1 notice(s) removed" in first.stderr
    assert re.search(r"Notice 1 \(DMCA, CG-DMCA-\d+-[0-9a-f]+\) to \S+/report-infringement: "
                     r"removed; (\d+) URL\(s\): \1 removed", first.stdout), first.stdout

    second, second_seconds = _demo(cli.env)
    assert second.returncode == 0, second.stderr
    assert VERDICT.search(second.stdout)[0] == copies[0]  # type: ignore[index]
    assert "catalog reused: 11 recordings" in second.stderr
    assert "site reused" in second.stderr
    assert "0 new captures" in second.stderr and "no new captures" in second.stderr
    assert second_seconds < first_seconds
    # the same report, from the ledger, and nothing recorded twice
    assert _table(second.stdout) == _table(first.stdout)
    assert len(cli.json_lines("detections", "list", "--json")) == int(copies[1])
    [notice] = cli.json_lines("notices", "list", "--json")  # the second run sent nothing more
    assert notice["status"] == "removed" and notice["urls"] == int(copies[1])
    assert len(cli.json_lines("catalog", "list", "--json")) == 11
    assert "no problems" in cli("audit", "verify").stdout


def test_ctrl_c_during_the_crawl_stops_cleanly(first_run: FirstRun, tmp_path: Path) -> None:
    cli = first_run.cli  # the site and catalog are there: it gets to the crawl quickly
    log = tmp_path / "stderr.txt"
    with log.open("w+") as stderr:
        demo = subprocess.Popen([sys.executable, "-m", "monitor", "demo"], env=cli.env,
                                stdout=subprocess.PIPE, stderr=stderr, text=True)
        try:
            deadline = time.monotonic() + 60
            while "crawling..." not in log.read_text() and time.monotonic() < deadline:
                assert demo.poll() is None, log.read_text()
                time.sleep(0.05)
            # The crawl lasts over a second (a page answers 429, Retry-After: 1).
            time.sleep(0.3)
            demo.send_signal(signal.SIGINT)
            stdout, _ = demo.communicate(timeout=60)
        finally:
            if demo.poll() is None:
                os.kill(demo.pid, signal.SIGKILL)
                demo.wait()
    assert demo.returncode == 130, log.read_text()
    assert "interrupted" in log.read_text()
    assert "Traceback" not in log.read_text(), log.read_text()
    assert "altered copies found" not in stdout
    assert "no problems" in cli("audit", "verify").stdout


def _table(stdout: str) -> list[str]:
    """The report's rows without the server's port, which may differ between runs."""
    rows = [line for line in stdout.splitlines() if line.startswith("│")]
    return [re.sub(r":\d+/", ":PORT/", row) for row in rows]


DOSSIER = re.compile(r"Dossier (\S+\.zip): (\d+) files, (\d+) audit entries, (\d+) WARC records "
                     r"verified: no problems")


def test_the_demos_dossier_verifies_until_a_byte_changes(first_run: FirstRun,
                                                         tmp_path: Path) -> None:
    cli, done = first_run.cli, first_run.done
    assert done.returncode == 0, done.stderr
    found = DOSSIER.search(" ".join(done.stdout.split()))
    assert found, done.stdout
    zipped = Path(found[1])
    assert int(found[4]) >= 30  # each copy's capture, its page and its removal re-check
    assert "no problems" in cli("dossier", "verify", str(zipped)).stdout
    root = tmp_path / "dossier"
    with zipfile.ZipFile(zipped) as archive:
        archive.extractall(root)
    assert "no problems" in cli("dossier", "verify", str(root)).stdout
    # A picture of each match, and a PDF whose first page renders.
    assert len(list((root / "images").glob("detection-*.png"))) == int(
        VERDICT.search(done.stdout)[1])  # type: ignore[index]
    pixels = pdf_page_pixels((root / "report.pdf").read_bytes(), 0, scale=0.5)
    assert pixels.shape[0] > pixels.shape[1] and (pixels.mean(axis=2) < 200).mean() > 0.03
    for name in ("report.pdf", "evidence/capture-1.warc.gz", "custody/audit.jsonl",
                 "works.csv"):
        copy = tmp_path / f"changed-{name.replace('/', '-')}"
        shutil.copytree(root, copy)
        data = bytearray((copy / name).read_bytes())
        data[len(data) // 3] ^= 0x20
        (copy / name).write_bytes(bytes(data))
        failed = cli("dossier", "verify", str(copy), ok=False)
        assert failed.exit_code == 1 and f"problem: {name}: changed" in " ".join(
            failed.stderr.split()), failed.stderr
    gone = tmp_path / "gone"
    shutil.copytree(root, gone)
    (gone / "timeline.csv").unlink()
    failed = cli("dossier", "verify", str(gone), ok=False)
    assert failed.exit_code == 1 and "timeline.csv: missing" in failed.stderr
