"""The daemon's and each worker's /healthz and /metrics, on ``daemon.ops_listen``.

Health is the database answering and the process's main loop going round: the loop ticks
every few seconds, and a loop that has not ticked for ``STUCK_AFTER`` seconds (a deadlock, a
job holding the only thread) is reported failing, so a supervisor can restart the process. A
port already taken is logged and the process goes on without the endpoint: its work matters
more than its metrics.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from monitor.app import App
from monitor.daemon.ops_server import OpsServer, OpsServerError

log = logging.getLogger(__name__)

STUCK_AFTER = 120.0


class Tick:
    """When the main loop last went round."""

    def __init__(self) -> None:
        self._at = time.monotonic()

    def __call__(self) -> None:
        self._at = time.monotonic()

    def liveness(self) -> tuple[bool, dict[str, Any]]:
        age = time.monotonic() - self._at
        return age < STUCK_AFTER, {"main_loop_seconds_ago": round(age, 1),
                                   "stuck_after_seconds": STUCK_AFTER}


def serve_ops(app: App, listen: str, *, role: str, tick: Tick) -> OpsServer | None:
    """Start the endpoint (None when ``listen`` is empty or its port is taken)."""
    if not listen:
        return None
    server = OpsServer(app, listen, role=role, liveness=tick.liveness)
    try:
        host, port = server.start()
    except OpsServerError as exc:
        log.error("%s; going on without /healthz and /metrics", exc)
        return None
    log.info("/healthz and /metrics on http://%s:%d", host, port)
    return server
