"""A real `copyguard` web server on 127.0.0.1 over a ledger that holds two rights-holders'
pipelines (:func:`tests.litigation.case_history.build_case_story`: Example Records and Mara
Jones Music, with captures, detections, notices and cases), and one account of every role.

The server is uvicorn in a thread of the test process, answering on a free port; tests talk to
it with httpx over real sockets.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, Page, sync_playwright

from config import load_settings
from ledger import accounts
from ledger.clock import FixedClock
from ledger.models import Role
from monitor.app import App, build_app
from monitor.litigation_stage import refresh
from monitor.web.server import build_api
from tests.conftest import unavailable
from tests.litigation.case_history import CaseStory, build_case_story

PASSWORD = "a long enough password"
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
EXAMPLE, MARA = "Example Records Ltd", "Mara Jones Music"
# user name -> (role, holder)
ACCOUNTS = {
    "root": (Role.ADMIN, None),
    "ops": (Role.OPERATOR, None),
    "example": (Role.HOLDER, EXAMPLE),
    "example-legal": (Role.LEGAL, EXAMPLE),
    "mara": (Role.HOLDER, MARA),
    "mara-legal": (Role.LEGAL, MARA),
}


@dataclass
class Site:
    """The running server, its app and one API key per account."""

    url: str
    app: App
    story: CaseStory
    keys: dict[str, str] = field(default_factory=dict)

    def client(self, username: str | None = None, **kwargs: object) -> httpx.Client:
        """A client with ``username``'s API key (none: anonymous)."""
        headers = {"Authorization": f"Bearer {self.keys[username]}"} if username else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30,
                            **kwargs)  # type: ignore[arg-type]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _populate(app: App) -> CaseStory:
    clock = app.clock
    assert isinstance(clock, FixedClock)
    with app.ledger.write() as session:
        story = build_case_story(session, clock)
    refresh(app)
    return story


def _accounts(app: App) -> dict[str, str]:
    keys = {}
    with app.ledger.write() as session:
        for username, (role, holder) in ACCOUNTS.items():
            accounts.add_user(session, app.clock, username=username, role=role, holder=holder,
                              password=PASSWORD, actor="test")
            keys[username] = accounts.issue_api_key(session, app.clock, username, "tests",
                                                    actor="test")[1]
    return keys


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """A fresh ledger and server per test (tests change what they see)."""
    port = _free_port()
    settings = load_settings(None, environ={
        "COPYGUARD_HOME": str(tmp_path / "home"), "COPYGUARD_WEB__LISTEN": f"127.0.0.1:{port}",
        "COPYGUARD_WEB__REQUESTS_PER_MINUTE": "100000"})
    app = build_app(settings, clock=FixedClock(NOW), actor="test")
    story = _populate(app)
    keys = _accounts(app)
    server = uvicorn.Server(uvicorn.Config(build_api(app), host="127.0.0.1", port=port,
                                           log_level="warning", log_config=None))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield Site(url=f"http://127.0.0.1:{port}", app=app, story=story, keys=keys)
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        app.close()


CHROMIUM = Path(os.environ.get("COPYGUARD_TEST_CHROMIUM", "/usr/bin/chromium"))


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's chromium, headless, driven by Playwright (its own browsers are not used)."""
    if not CHROMIUM.exists():
        unavailable(f"no chromium at {CHROMIUM} (apt-get install chromium; `make test` does)",
                    "browser")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(accept_downloads=True)
    opened = context.new_page()
    yield opened
    context.close()


def log_in(page: Page, site: Site, username: str) -> None:
    """Through the login form, as a person does."""
    page.goto(f"{site.url}/")
    assert "/login" in page.url  # not logged in yet: sent to the form
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{site.url}/")
