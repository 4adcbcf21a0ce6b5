"""The operations endpoint of one process (the daemon or a worker): ``GET /metrics`` for
Prometheus and ``GET /healthz`` for a supervisor or load balancer, over the standard library's
``ThreadingHTTPServer`` in a daemon thread, so it answers whatever the main loop is doing.

``/healthz`` answers 200 when every check passes, else 503, with a JSON body::

    {"status": "ok", "role": "daemon",
     "checks": {"database": {"ok": true, "seconds": 0.001},
                "liveness": {"ok": true, "main_loop_seconds_ago": 2.1, ...}}}

The database check runs ``SELECT 1`` on the ledger's engine; ``liveness`` is the owner's
callable (the daemon's says its main loop went round lately). Reads no settings: the owner
passes the ``listen`` address (``daemon.ops_listen``).
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from monitor.app import App
from monitor.daemon.metrics import registry_for

log = logging.getLogger(__name__)

# What generate_latest writes: the classic text format (CONTENT_TYPE_LATEST names a newer
# version in recent prometheus_client releases).
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
JSON_CONTENT_TYPE = "application/json"

Liveness = Callable[[], tuple[bool, dict[str, Any]]]


class OpsServerError(Exception):
    """The endpoint could not start (the address is taken or cannot be bound)."""


def parse_listen(listen: str) -> tuple[str, int]:
    """``"host:port"`` (``"[::1]:9464"`` for IPv6) as a host and a port number."""
    host, sep, port = listen.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise OpsServerError(f"ops endpoint: {listen!r} is not host:port")
    return host, int(port)


class OpsServer:
    """``/metrics`` and ``/healthz`` on ``listen`` ("host:port"; port 0 takes a free one) until
    :meth:`stop`. Nothing is bound before :meth:`start`."""

    def __init__(self, app: App, listen: str, *, role: str,
                 liveness: Liveness | None = None) -> None:
        self.app, self.listen, self.role, self.liveness = app, listen, role, liveness
        self._server: _HttpServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> tuple[str, int]:
        """Bind and serve in a daemon thread; the bound (host, port).

        Raises :class:`OpsServerError` naming the address when it cannot be bound."""
        if self._server is not None:
            return self.address
        host, port = parse_listen(self.listen)
        server_class = _HttpServer6 if ":" in host else _HttpServer
        try:
            server = server_class((host, port), _Handler, self, registry_for(self.app))
        except OSError as exc:
            raise OpsServerError(f"cannot listen on {host}:{port} for /healthz and /metrics: "
                                 f"{exc.strerror or exc}") from exc
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="ops-server",
                                        kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self.address

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port); only while started."""
        if self._server is None:
            raise OpsServerError(f"ops endpoint on {self.listen} is not started")
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def stop(self) -> None:
        """Stop serving and release the port (a no-op when not started)."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join()

    def __enter__(self) -> OpsServer:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    # -- the answers ---------------------------------------------------------------------------

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Whether every check passes, and the /healthz body."""
        checks = {"database": self._check_database()}
        if self.liveness is not None:
            checks["liveness"] = self._check_liveness(self.liveness)
        ok = all(check["ok"] for check in checks.values())
        return ok, {"status": "ok" if ok else "failing", "role": self.role, "checks": checks}

    def _check_database(self) -> dict[str, Any]:
        started = time.monotonic()
        try:
            with self.app.ledger.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except (SQLAlchemyError, OSError) as exc:
            return {"ok": False, "seconds": _since(started),
                    "error": f"{type(exc).__name__}: {_first_line(exc)}"}
        return {"ok": True, "seconds": _since(started)}

    @staticmethod
    def _check_liveness(liveness: Liveness) -> dict[str, Any]:
        # The owner's callable: whatever it raises is a failing check, not a 500 without a body.
        try:
            ok, detail = liveness()
        except Exception as exc:
            return {"ok": False, "error": f"{type(exc).__name__}: {_first_line(exc)}"}
        return {**detail, "ok": bool(ok)}


def _since(started: float) -> float:
    return round(time.monotonic() - started, 4)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:500] if lines else ""


class _HttpServer(ThreadingHTTPServer):
    """The HTTP server, carrying its owner and registry for the handlers."""

    daemon_threads = True  # a scrape in progress does not hold the process at exit

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 ops: OpsServer, registry: CollectorRegistry) -> None:
        self.ops, self.registry = ops, registry
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver prints the traceback to stderr; the log is where operators look.
        log.warning("ops endpoint: error answering %s", client_address[0], exc_info=True)


class _HttpServer6(_HttpServer):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server: _HttpServer
    protocol_version = "HTTP/1.1"  # keep-alive for scrapers; every answer has a length

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/metrics":
            self._answer(200, METRICS_CONTENT_TYPE, generate_latest(self.server.registry))
        elif path == "/healthz":
            ok, body = self.server.ops.health()
            self._answer(200 if ok else 503, JSON_CONTENT_TYPE,
                         json.dumps(body, sort_keys=True, default=str).encode() + b"\n")
        else:
            self._answer(404, "text/plain; charset=utf-8", b"not found\n")

    def _answer(self, code: int, content_type: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: a scrape every few seconds is not news."""
