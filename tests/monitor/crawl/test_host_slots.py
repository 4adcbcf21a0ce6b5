"""Host slots shared through Redis: reservations on the real server, the middleware's fallback,
and two crawler processes keeping one host's delay between them.

Redis is the server at $COPYGUARD_TEST_REDIS_URL (default redis://127.0.0.1:6379/0). Where none
answers the tests skip with the reason; under CI=true they fail instead, so CI proves them. Each
test writes under a key prefix of its own and deletes only its own keys.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import pairwise
from pathlib import Path
from types import SimpleNamespace
from typing import ClassVar

import pytest
import redis
from scrapy import Request
from scrapy.exceptions import CloseSpider, NotConfigured
from scrapy.utils.test import get_crawler

from monitor.crawl.host_slots import (
    KEY_PREFIX,
    HostSlots,
    HostSlotsError,
    SharedHostDelayMiddleware,
    redacted,
)
from tests.conftest import unavailable
from tests.monitor.conftest import make_cli

REDIS_URL = os.environ.get("COPYGUARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
DEAD_REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def _redis_problem() -> str | None:
    """None when the server answers, else why not."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3, socket_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        return str(exc)
    finally:
        client.close()
    return None


@pytest.fixture(scope="session")
def redis_server() -> str:
    problem = _redis_problem()
    if problem is not None:
        unavailable(f"Redis not reachable at {REDIS_URL}: {problem}", "Redis")
    return REDIS_URL


@pytest.fixture
def redis_client(redis_server: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server)
    yield client
    client.close()


@pytest.fixture
def prefix(redis_client: redis.Redis) -> Iterator[str]:
    """A key prefix no other test uses; its keys are deleted afterwards."""
    mine = f"copyguard-test:{uuid.uuid4().hex}:"
    yield mine
    keys = list(redis_client.scan_iter(match=f"{mine}*"))
    if keys:
        redis_client.delete(*keys)


@pytest.fixture
def slots(redis_client: redis.Redis, prefix: str) -> HostSlots:
    return HostSlots(redis_client, prefix=prefix)


# -- HostSlots on the real server -------------------------------------------------------------

def test_second_reservation_for_a_host_waits_one_delay(slots: HostSlots) -> None:
    first = slots.reserve("music.example", 0.5)
    second = slots.reserve("music.example", 0.5)
    assert first == pytest.approx(0.0, abs=0.01)
    assert second == pytest.approx(0.5, abs=0.02)


def test_hosts_do_not_share_slots(slots: HostSlots) -> None:
    slots.reserve("a.example", 0.5)
    assert slots.reserve("b.example", 0.5) == pytest.approx(0.0, abs=0.01)
    assert slots.reserve("a.example", 0.5) == pytest.approx(0.5, abs=0.02)


def test_slot_starts_no_earlier_than_asked(slots: HostSlots) -> None:
    assert slots.reserve("a.example", 0.2, not_before=0.3) == pytest.approx(0.3, abs=0.01)
    # the slot after it follows the booked one, not the caller's earliest start
    assert slots.reserve("a.example", 0.2) == pytest.approx(0.5, abs=0.02)


def test_a_free_slot_is_taken_at_once_and_its_key_then_expires(
        slots: HostSlots, redis_client: redis.Redis, prefix: str) -> None:
    slots.reserve("a.example", 0.05)
    ttl_ms = redis_client.pttl(f"{prefix}a.example")
    assert 0 < ttl_ms <= 50 + 1000  # the slot plus the default 1 s margin
    time.sleep(0.1)
    assert slots.reserve("a.example", 0.05) == pytest.approx(0.0, abs=0.01)


def test_default_keys_are_namespaced() -> None:
    assert KEY_PREFIX == "copyguard:host-slot:"


# Connects, says so, and at the word go reserves ``count`` slots as fast as it can; prints when
# each may send, by this machine's clock. Run in processes that import only the module.
_RESERVER = """
import json, sys, time
from monitor.crawl.host_slots import HostSlots
url, prefix, count, delay = sys.argv[1:]
slots = HostSlots.from_url(url, prefix=prefix)
slots.ping()
print("ready", flush=True)
sys.stdin.readline()
print(json.dumps([slots.reserve("shared.example", float(delay)) + time.time()
                  for _ in range(int(count))]))
"""


def _assert_distinct_slots_apart(times: list[float], delay: float) -> None:
    times = sorted(times)
    gaps = [b - a for a, b in pairwise(times)]
    # Each time is the server's answer plus this machine's clock at the reply: a few ms of
    # noise, far below a delay. Two callers given one slot would show a gap near 0.
    assert min(gaps) >= delay - 0.03, gaps
    assert times[-1] - times[0] == pytest.approx((len(times) - 1) * delay, abs=0.05)


def test_concurrent_reservations_from_threads_get_distinct_slots(
        redis_server: str, prefix: str) -> None:
    delay, threads = 0.1, 8
    start = threading.Barrier(threads)

    def reserve_five(_: int) -> list[float]:
        slots = HostSlots.from_url(redis_server, prefix=prefix)
        slots.ping()
        start.wait()
        try:
            return [slots.reserve("shared.example", delay) + time.time() for _ in range(5)]
        finally:
            slots.close()

    with ThreadPoolExecutor(threads) as pool:
        batches = list(pool.map(reserve_five, range(threads)))
    _assert_distinct_slots_apart([t for batch in batches for t in batch], delay)


def test_concurrent_reservations_from_processes_get_distinct_slots(
        redis_server: str, prefix: str) -> None:
    delay, count = 0.05, 20
    processes = [subprocess.Popen(
        [sys.executable, "-c", _RESERVER, redis_server, prefix, str(count), str(delay)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for _ in range(3)]
    for process in processes:
        assert process.stdout is not None and process.stdout.readline() == "ready\n"
    for process in processes:  # all connected: now they reserve at the same time
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    batches = []
    for process in processes:
        out, _ = process.communicate(timeout=60)
        assert process.returncode == 0
        batches.append(json.loads(out))
    times = [t for batch in batches for t in batch]
    _assert_distinct_slots_apart(times, delay)
    # They did reserve at the same time: each process's slots are spread among the others'.
    owners = [owner for _, owner in sorted(
        (t, number) for number, batch in enumerate(batches) for t in batch)]
    assert sum(1 for a, b in pairwise(owners) if a != b) >= 3, owners


def test_unreachable_redis_raises_host_slots_error() -> None:
    slots = HostSlots.from_url(DEAD_REDIS_URL, timeout=1.0)
    with pytest.raises(HostSlotsError):
        slots.ping()
    with pytest.raises(HostSlotsError):
        slots.reserve("a.example", 1.0)
    slots.close()


def test_passwords_stay_out_of_messages() -> None:
    assert redacted("redis://:s3cret@cache.internal:6379/0") == "redis://:***@cache.internal:6379/0"
    assert redacted("rediss://ops:s3cret@cache/1") == "rediss://ops:***@cache/1"
    assert redacted("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


# -- the middleware, driven directly ----------------------------------------------------------

def _middleware(url: str, delay: float, *, prefix: str | None = None
                ) -> SharedHostDelayMiddleware:
    crawler = get_crawler(settings_dict={"COPYGUARD_REDIS_URL": url, "DOWNLOAD_DELAY": delay,
                                         "CONCURRENT_REQUESTS_PER_DOMAIN": 1})
    # The two downloader attributes the middleware reads; no slot yet: nothing held locally.
    crawler.engine = SimpleNamespace(downloader=SimpleNamespace(  # type: ignore[assignment]
        get_slot_key=lambda request: "host.example", slots={}))
    middleware = SharedHostDelayMiddleware.from_crawler(crawler)
    if prefix is not None:
        middleware.slots = HostSlots.from_url(url, prefix=prefix)
    return middleware


def test_middleware_is_off_without_a_redis_url() -> None:
    with pytest.raises(NotConfigured):
        SharedHostDelayMiddleware.from_crawler(get_crawler(settings_dict={"DOWNLOAD_DELAY": 1}))


def test_middleware_waits_for_the_shared_slot(redis_server: str, prefix: str) -> None:
    middleware = _middleware(redis_server, 0.3, prefix=prefix)

    async def two_requests() -> float:
        started = time.monotonic()
        for path in ("/robots.txt", "/page"):
            request = Request(f"http://host.example{path}")
            await middleware.process_request(request)
            middleware.request_left_downloader(request)  # as the downloader signals it
        return time.monotonic() - started

    assert asyncio.run(two_requests()) == pytest.approx(0.3, abs=0.05)
    middleware.spider_closed()


def test_middleware_closes_the_crawl_when_redis_is_down_at_start() -> None:
    middleware = _middleware(DEAD_REDIS_URL, 0.3)
    with pytest.raises(CloseSpider) as closed:
        asyncio.run(middleware.spider_opened())
    assert DEAD_REDIS_URL in closed.value.reason  # the ledger records it as the crawl's end


def test_middleware_falls_back_to_the_local_delay_when_redis_fails(
        caplog: pytest.LogCaptureFixture) -> None:
    middleware = _middleware(DEAD_REDIS_URL, 0.3)

    async def requests() -> float:
        started = time.monotonic()
        for number in range(3):
            request = Request(f"http://host.example/{number}")
            await middleware.process_request(request)
            middleware.request_left_downloader(request)
        return time.monotonic() - started

    with caplog.at_level(logging.WARNING, logger="monitor.crawl.host_slots"):
        elapsed = asyncio.run(requests())
    assert elapsed < 1.0  # no shared wait; Scrapy's own delay still spaces them
    stats = middleware.crawler.stats
    assert stats is not None
    # One failure; the requests after it do not ask Redis again for a while.
    assert stats.get_value("copyguard/host_slots_errors") == 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "redis://127.0.0.1:1/0" in warnings[0].getMessage()
    middleware.spider_closed()


# -- two crawler processes against one local site ---------------------------------------------

PAGES = 5  # per target: its start page links to this many pages


class _Site(BaseHTTPRequestHandler):
    """Two sections, /a/ and /b/, one per target; records when each request arrives."""

    arrivals: ClassVar[list[tuple[float, str]]]  # each server's own (see _serve)

    def do_GET(self) -> None:
        self.arrivals.append((time.monotonic(), self.path))  # list.append is atomic
        section = self.path.strip("/").split("/")[0]
        if self.path in ("/a/", "/b/"):
            links = "".join(f'<a href="/{section}/{n}">{n}</a> ' for n in range(PAGES))
            self._send(200, f"<html><body>{links}</body></html>".encode())
        elif section in ("a", "b"):
            self._send(200, b"<html><body>nothing here</body></html>")
        else:
            self._send(404, b"")

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@dataclass
class Site:
    url: str
    arrivals: list[tuple[float, str]]


@pytest.fixture
def serve() -> Iterator[Callable[[], Site]]:
    """Starts local sites on 127.0.0.1, each recording its own arrivals."""
    servers: list[ThreadingHTTPServer] = []

    def start() -> Site:
        arrivals: list[tuple[float, str]] = []
        handler = type("Handler", (_Site,), {"arrivals": arrivals})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return Site(f"http://127.0.0.1:{server.server_address[1]}", arrivals)

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


CRAWL = [sys.executable, "-m", "monitor", "crawl", "--json", "--no-identify"]

# What `copyguard crawl --no-identify` does, without the CLI's imports (the fingerprinting stack
# costs seconds a process): run_crawls over every target of the data directory, from the word go,
# so that processes started one after the other crawl at the same time.
_CRAWLER = """
import json, logging, sys
from config import load_settings
from ledger.clock import SystemClock
from ledger.db import open_ledger
from ledger.targets import list_targets
from monitor.crawl.runner import run_crawls
logging.basicConfig(level=logging.WARNING)
settings = load_settings()
ledger = open_ledger(settings.database_url)
with ledger.read() as session:
    targets = list_targets(session)
    session.expunge_all()
print("ready", flush=True)
sys.stdin.readline()
results = run_crawls(settings, ledger, SystemClock(), targets, actor="test")
ledger.close()
print(json.dumps([{"target": r.target, "status": r.status} for r in results]))
"""


def _start_two_machines(home: Path, site: Site, delay: float, redis_url: str
                        ) -> list[subprocess.Popen[str]]:
    """Two data directories ("machines"), one target each on the same host, each crawled by a
    process of its own, started together."""
    processes = []
    for section in ("a", "b"):
        cli = make_cli(home / f"machine-{section}")
        cli("targets", "add", f"{site.url}/{section}/", "--name", section, "--allow-private",
            "--delay", str(delay), "--concurrency", "1")
        env = {**cli.env, "COPYGUARD_CRAWL__REDIS_URL": redis_url}
        processes.append(subprocess.Popen([sys.executable, "-c", _CRAWLER], env=env,
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True))
    return processes


def _crawl_together(processes: list[subprocess.Popen[str]]) -> None:
    for process in processes:
        assert process.stdout is not None
        if process.stdout.readline() != "ready\n":
            raise AssertionError(process.communicate(timeout=30)[1])
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        assert [r["status"] for r in json.loads(out.strip().splitlines()[-1])] == ["finished"]


def _gaps(arrivals: list[tuple[float, str]]) -> list[float]:
    times = sorted(t for t, _ in arrivals)
    return [round(b - a, 3) for a, b in pairwise(times)]


def _interleaved(arrivals: list[tuple[float, str]]) -> bool:
    """Both crawls were sending at the same time (robots.txt requests are nobody's)."""
    order = [path[1] for _, path in sorted(arrivals) if path.startswith(("/a/", "/b/"))]
    return sum(1 for x, y in pairwise(order) if x != y) >= 3


@pytest.mark.slow
def test_two_crawler_processes_keep_one_delay_between_them(
        tmp_path: Path, serve: Callable[[], Site], redis_server: str,
        redis_client: redis.Redis) -> None:
    delay = 0.3
    host_key = f"{KEY_PREFIX}127.0.0.1"  # the crawls' own key: the real prefix, the site's host
    redis_client.delete(host_key)
    shared, alone = serve(), serve()
    try:
        # The same two crawls without Redis, at the same time on a site of their own (another
        # port of the same host): each process keeps only its own delay.
        running = (_start_two_machines(tmp_path / "shared", shared, delay, redis_server)
                   + _start_two_machines(tmp_path / "alone", alone, delay, ""))
        _crawl_together(running)
    finally:
        redis_client.delete(host_key)
    for site in (shared, alone):
        assert len(site.arrivals) == 2 * (PAGES + 2)  # robots.txt, start page, pages; twice
        assert _interleaved(site.arrivals), sorted(site.arrivals)
    assert min(_gaps(shared.arrivals)) >= 0.9 * delay, _gaps(shared.arrivals)
    assert min(_gaps(alone.arrivals)) < 0.9 * delay, _gaps(alone.arrivals)  # it can fail


@pytest.mark.slow
def test_crawl_does_not_start_when_redis_is_unreachable(
        tmp_path: Path, serve: Callable[[], Site]) -> None:
    site = serve()
    cli = make_cli(tmp_path / "home")
    cli("targets", "add", f"{site.url}/a/", "--name", "a", "--allow-private", "--delay", "0.3")
    env = {**cli.env, "COPYGUARD_CRAWL__REDIS_URL": DEAD_REDIS_URL}
    done = subprocess.run(CRAWL, env=env, capture_output=True, text=True, timeout=120)
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert done.returncode == 1 and summary["crawls"][0]["status"] == "failed", summary
    assert DEAD_REDIS_URL in done.stderr, done.stderr  # the error names the URL
    assert site.arrivals == []  # not one request, not even robots.txt
