"""Run a long benchmark on the committed code, not on a working tree that is being edited.

A soak of an hour starts a crawl child every few seconds, and each imports the product code
afresh: in a working tree that others edit meanwhile, a child would import half-written
modules (it happened: ``ImportError`` in crawl children mid-run), and a worker benchmark could
meet a migration its worker processes do not know. :func:`from_snapshot` exports the product
packages of ``HEAD`` (``git archive``) with the working tree's ``bench/`` into a temporary
folder and runs the benchmark module again from there (``PYTHONPATH``, that folder as the
current directory), its children inheriting it. The run reports that commit.
``BENCH_REPO`` tells the re-run where the repository is (its cache, results and
``BENCHMARKS.md``). Reads no settings.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from types import FrameType

PACKAGES = ("config", "ledger", "fingerprints", "takedown", "litigation", "monitor")
COMMIT_ENV = "BENCH_SNAPSHOT_COMMIT"  # set in the re-run: the commit its product code is from
REPO_ENV = "BENCH_REPO"


def repository(default: Path) -> Path:
    """The repository the benchmark belongs to (the snapshot's own folder is not it)."""
    return Path(os.environ.get(REPO_ENV, default))


def snapshot_commit() -> str | None:
    """The commit this process's product code was exported from; None on the working tree."""
    return os.environ.get(COMMIT_ENV) or None


def describe_code() -> str:
    """Which code this run is, for a report's method."""
    commit = snapshot_commit()
    if commit is None:
        return "the working tree as it was (`--working-tree`)"
    return (f"the product packages of commit `{commit}` (`git archive HEAD`, bench.snapshot), "
            "bench/ from the working tree")


def from_snapshot(module: str, argv: list[str], repo: Path) -> int | None:
    """Run ``python -m module argv`` on ``HEAD``'s product code and return its exit status;
    None when this process is that run already (or ``repo`` is no git checkout)."""
    if snapshot_commit() is not None:
        return None
    done = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return None
    commit = done.stdout.strip()
    with tempfile.TemporaryDirectory(prefix="bench-code-") as folder:
        archive = subprocess.Popen(["git", "-C", str(repo), "archive", "--format=tar", "HEAD",
                                    *PACKAGES], stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", folder], stdin=archive.stdout, check=True)
        if archive.wait() != 0:
            raise RuntimeError(f"git archive HEAD failed in {repo}")
        shutil.copytree(repo / "bench", Path(folder) / "bench",
                        ignore=shutil.ignore_patterns("cache", "results", "__pycache__"))
        env = {**os.environ, "PYTHONPATH": folder, COMMIT_ENV: commit, REPO_ENV: str(repo)}
        child = subprocess.Popen([sys.executable, "-m", module, *argv], env=env, cwd=folder)

        def forward(number: int, _frame: FrameType | None) -> None:
            child.send_signal(number)

        previous = signal.signal(signal.SIGTERM, forward)
        try:
            while True:
                try:
                    return child.wait()
                except KeyboardInterrupt:  # the child got the Ctrl-C too: let it finish
                    continue
        finally:
            signal.signal(signal.SIGTERM, previous)
