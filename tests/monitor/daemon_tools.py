"""Running `copyguard daemon` and `copyguard worker` as operators do, in processes of their
own, and watching them through `copyguard status --json`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.monitor.conftest import Cli

FAST = {
    "COPYGUARD_CRAWL__MAX_AUDIO_MB": "2", "COPYGUARD_CRAWL__DEFAULT_DELAY_SECONDS": "0",
    "COPYGUARD_TAKEDOWN__BATCH_WINDOW_HOURS": "0",
    "COPYGUARD_TAKEDOWN__MIN_INTERVAL_PER_RECIPIENT_SECONDS": "0",
    "COPYGUARD_TAKEDOWN__FAIR_USE_REVIEW_SECONDS": "10",
    "COPYGUARD_DAEMON__IDENTIFY_EVERY_SECONDS": "5",
    "COPYGUARD_DAEMON__TAKEDOWN_EVERY_SECONDS": "5",
    "COPYGUARD_DAEMON__CASES_EVERY_SECONDS": "5",
    "COPYGUARD_DAEMON__SHUTDOWN_TIMEOUT_SECONDS": "30",
    "COPYGUARD_DAEMON__OPS_LISTEN": "",  # tests that want /metrics ask for a port of their own
}


def start_daemon(cli: Cli, log: Path, *args: str) -> subprocess.Popen[str]:
    """``copyguard daemon ARGS`` (or ``worker ...`` when ARGS say so), its log to ``log``."""
    command = list(args) if args and args[0] == "worker" else ["daemon", *args]
    with log.open("a") as stderr:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, "-m", "monitor", *command], env=cli.env,
                                stdout=subprocess.DEVNULL, stderr=stderr, text=True)


def add_demo_holder(cli: Cli, catalog: Path) -> None:
    """The demo's rights-holder (notices by rule) and its catalog."""
    cli("holders", "add", "Demo Records", "--email", "legal@demo.example", "--address",
        "1 Demo Street, Springfield", "--phone", "+1 555 0100", "--signatory", "Jane Roe",
        "--signatory-title", "Head of Legal Affairs", "--notice-policy", "auto")
    cli("catalog", "import", str(catalog), "--holder", "Demo Records")


def status_of(cli: Cli) -> dict[str, Any]:
    return dict(json.loads(cli("status", "--json").stdout))


def wait_for(cli: Cli, daemon: subprocess.Popen[str], log: Path, done: Any,
             seconds: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert daemon.poll() is None, log.read_text()[-3000:]
        info = status_of(cli)
        if done(info):
            return info
        time.sleep(1.0)
    raise AssertionError(f"timed out: {json.dumps(status_of(cli))[:3000]}\n"
                         f"{log.read_text()[-3000:]}")


def job_of(info: dict[str, Any], name: str) -> dict[str, Any]:
    return next((j for j in info["jobs"] if j["job"] == name), {})


def stop_daemon(daemon: subprocess.Popen[str]) -> tuple[int, float]:
    started = time.monotonic()
    daemon.send_signal(signal.SIGTERM)
    code = daemon.wait(timeout=60)
    return code, time.monotonic() - started
