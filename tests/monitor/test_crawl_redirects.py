"""A redirect cannot lead the crawler to a private address its target does not own."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from tests.monitor.conftest import make_cli

pytestmark = pytest.mark.slow


class _Site(BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, str]]] = []

    def do_GET(self) -> None:
        self.seen.append((self.headers.get("Host", ""), self.path))
        port = self.server.server_port  # type: ignore[attr-defined]
        if self.path == "/":
            self._send(200, b'<a href="/go.mp3">song</a> <a href="/hop">more</a>', "text/html")
        elif self.path == "/go.mp3":  # an audio link that redirects to another loopback name
            self._redirect(f"http://localhost:{port}/secret.mp3")
        elif self.path == "/hop":  # a page that redirects to a private network address
            self._redirect("http://10.255.255.1/admin")
        else:
            self._send(404, b"not here", "text/plain")

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_redirects_to_private_hosts_are_refused(site: str, tmp_path: Path) -> None:
    _Site.seen.clear()
    cli = make_cli(tmp_path / "home")
    cli("targets", "add", site, "--name", "redirects", "--allow-private", "--delay", "0")
    done = subprocess.run([sys.executable, "-m", "monitor", "crawl", "--json", "--no-identify"],
                          env=cli.env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    refused = {p["url"] for p in summary["problems"] if p["kind"] == "refused"}
    port = site.rsplit(":", 1)[1].rstrip("/")
    assert refused == {f"http://localhost:{port}/secret.mp3", "http://10.255.255.1/admin"}
    assert summary["crawls"][0]["captures"] == 0
    # The allowed host was asked for the redirecting URLs; the redirect targets never were.
    assert {path for host, path in _Site.seen} == {"/robots.txt", "/", "/go.mp3", "/hop"}
    assert all(host.startswith("127.0.0.1") for host, _ in _Site.seen)
