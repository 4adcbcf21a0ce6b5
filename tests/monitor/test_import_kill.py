"""A catalog import killed with SIGKILL part-way resumes without losing or repeating work."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.exc import OperationalError

from ledger.models import Recording
from tests.monitor.conftest import CATALOG_SIZE, Cli


def _count(db: Path) -> int:
    if not db.exists():
        return 0
    engine = create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(Recording)).scalar_one())
    except OperationalError:  # the schema may not be there yet while the child starts
        return 0
    finally:
        engine.dispose()


@pytest.mark.slow
def test_import_killed_midway_resumes_exactly(sqlite_cli: Cli, catalog_dir: Path) -> None:
    sqlite_cli("holders", "add", "Acme Music", "--email", "legal@acme.example")
    home = Path(sqlite_cli.env["COPYGUARD_HOME"])
    command = [sys.executable, "-m", "monitor", "catalog", "import", str(catalog_dir),
               "--holder", "Acme Music", "--json"]
    child = subprocess.Popen(command, env=sqlite_cli.env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while _count(home / "copyguard.db") < 5 and time.monotonic() < deadline:
        assert child.poll() is None, "the import finished before it could be interrupted"
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    interrupted_at = _count(home / "copyguard.db")
    assert 5 <= interrupted_at < CATALOG_SIZE

    rerun = sqlite_cli.json_lines("catalog", "import", str(catalog_dir), "--holder", "Acme Music",
                                  "--json")
    statuses = [line["status"] for line in rerun]
    assert statuses.count("duplicate") == interrupted_at
    assert statuses.count("imported") == CATALOG_SIZE - interrupted_at
    catalog = sqlite_cli.json_lines("catalog", "list", "--json")
    assert sorted(rec["file"] for rec in catalog) == sorted(p.name for p in catalog_dir.iterdir())
    assert f"{CATALOG_SIZE + 1} entries, no problems" in sqlite_cli("audit", "verify").stdout
    # every recording, including those whose index save the kill prevented, is identifiable
    lines = sqlite_cli.json_lines("identify", "--json", *(str(p) for p in
                                                          sorted(catalog_dir.iterdir())[:8]))
    assert all(line["match"] is not None for line in lines)
