"""One host's request delay kept between crawler processes on several machines, through Redis.

Reads the Scrapy settings ``COPYGUARD_REDIS_URL`` (from ``crawl.redis_url``; empty: this module
does nothing), ``DOWNLOAD_DELAY`` (a target's ``delay_seconds``) and
``CONCURRENT_REQUESTS_PER_DOMAIN`` (its ``concurrency``).

``HostSlots`` reserves a host's next request slot atomically (one Lua script): the caller may
send at ``t = max(now, next[host])``, and ``next[host]`` becomes ``t + d``. "now" is the Redis
server's clock, and the answer is a wait relative to it, so machines whose clocks disagree still
agree on the spacing. What is left of the error is the difference between the machines' half
round trips to Redis plus the timer's precision (a few milliseconds on one network).

``SharedHostDelayMiddleware`` reserves a slot for every request (robots.txt ones included: they go
through the downloader like any other) and waits for it without blocking the reactor. How it
combines with Scrapy's own per-host delay, which stays in force in each process:

- Downloader middlewares run *before* Scrapy's per-host slot queue; anything that held a request
  back after its reservation would let it go out later than reserved, into another process's
  slot. So the middleware is the last one before the downloader, and lets a request go only
  when Scrapy's slot will send it at once: it keeps at most the slot's concurrency of this
  process's requests to a host in flight, reserves no earlier than the local delay allows, and
  uses the larger of ``DOWNLOAD_DELAY`` and the slot's current delay (AutoThrottle raises it).
- Scrapy's random jitter of the delay is drawn only when the request leaves its slot, after the
  reservation; with sharing on, ``scrapy_settings`` turns it off (``DOWNLOAD_DELAY_JITTER = 0``).
- A request woken late (a busy event loop) does not use its slot, which could crowd the next
  one's, but books another (``copyguard/host_slots_rebooked``).
- Together, the requests one process sends to a host are at least ``d`` apart locally, and all
  processes' requests to that host at least ``d`` apart globally (each reservation spaces the
  next one by its own crawler's delay).

Failures: when Redis does not answer at the start, the crawl is closed before its first request,
with an error that names the URL: an operator asked for sharing, and silently not sharing would
break politeness across machines. A failure in the middle of a crawl leaves that request to the
local delay alone, counts ``copyguard/host_slots_errors``, warns at most once a minute, and Redis
is not asked again for ``RETRY_SECONDS``.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry
from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import CloseSpider, NotConfigured
from scrapy.utils.asyncio import run_in_thread, sleep
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import DeferredSemaphore

# The close reason of a crawl that could not start because Redis did not answer; such a crawl
# is recorded as failed, not interrupted.
UNREACHABLE = "redis-unreachable"
log = logging.getLogger(__name__)

KEY_PREFIX = "copyguard:host-slot:"

# Seconds a Redis connection or command may take before the request falls back to the local delay.
REDIS_TIMEOUT_SECONDS = 2.0
# After a failure, requests use the local delay alone this long before Redis is asked again.
RETRY_SECONDS = 10.0
# At most one warning about Redis failures in this many seconds.
WARN_EVERY_SECONDS = 60.0
# A request woken this much after its slot began, or that Scrapy's slot would still hold this
# long, is not sent in that slot but reserves another (at most MAX_RESERVATIONS in all).
LATE_SECONDS = 0.01
MAX_RESERVATIONS = 3

# KEYS[1]: the host's key. ARGV: the delay, the earliest start from now (both in microseconds),
# the expiry margin (ms). Returns the wait in microseconds, by the server's clock.
_RESERVE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local start = now + tonumber(ARGV[2])
local booked = tonumber(redis.call('GET', KEYS[1]))
if booked and booked > start then start = booked end
local free = start + tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%.0f', free),
           'PX', math.ceil((free - now) / 1000) + tonumber(ARGV[3]))
return start - now
"""


class HostSlotsError(Exception):
    """Redis could not be reached, or failed the command."""


def redacted(url: str) -> str:
    """``url`` without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = f"{parts.username}:" if parts.username else ":"
    return urlunsplit(parts._replace(netloc=f"{user}***@{host}"))


class HostSlots:
    """Each host's next free request slot, in Redis (keys ``prefix + host``)."""

    def __init__(self, client: redis.Redis, *, prefix: str = KEY_PREFIX,
                 expiry_margin: float = 1.0) -> None:
        self._client = client
        self._prefix = prefix
        # A key outlives its slot by this much, then goes: idle hosts leave nothing behind.
        self._margin_ms = max(1, round(expiry_margin * 1000))
        self._reserve = client.register_script(_RESERVE)  # loaded on first use, not here

    @classmethod
    def from_url(cls, url: str, *, timeout: float = REDIS_TIMEOUT_SECONDS,
                 prefix: str = KEY_PREFIX) -> HostSlots:
        """Slots in the Redis at ``url``; connects at the first command."""
        # One immediate retry covers a pooled connection the server has closed; more would
        # only hold the request up: it falls back to the local delay instead.
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout,
                                      socket_timeout=timeout, retry=Retry(NoBackoff(), 1))
        return cls(client, prefix=prefix)

    def ping(self) -> None:
        try:
            self._client.ping()
        except RedisError as exc:
            raise HostSlotsError(str(exc) or type(exc).__name__) from exc

    def reserve(self, host: str, delay: float, *, not_before: float = 0.0) -> float:
        """Book ``host``'s next slot, ``delay`` seconds long, starting no earlier than
        ``not_before`` seconds from now; returns the seconds to wait before sending."""
        if not host:
            raise ValueError("a slot needs a host")
        if delay < 0 or not_before < 0:
            raise ValueError("delay and not_before cannot be negative")
        try:
            waited = self._reserve(keys=[self._prefix + host],
                                   args=[round(delay * 1e6), round(not_before * 1e6),
                                         self._margin_ms])
        except RedisError as exc:
            raise HostSlotsError(str(exc) or type(exc).__name__) from exc
        return int(waited) / 1e6

    def close(self) -> None:
        self._client.close()


class SharedHostDelayMiddleware:
    """Waits for the request's host slot in Redis before the request goes to the downloader.

    Registered last before the downloader (see the module docstring for why)."""

    def __init__(self, crawler: Crawler, slots: HostSlots, url: str) -> None:
        self.crawler = crawler
        self.slots = slots
        self.url = redacted(url)
        settings = crawler.settings
        self.delay = settings.getfloat("DOWNLOAD_DELAY")
        self.concurrency = max(1, settings.getint("CONCURRENT_REQUESTS_PER_IP")
                               or settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN"))
        self._in_flight: dict[str, DeferredSemaphore] = {}  # slot key -> this process's sends
        self._holding: dict[Request, DeferredSemaphore] = {}
        self._retry_at = 0.0  # monotonic; before it, Redis is not asked
        self._warned_at = -WARN_EVERY_SECONDS

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SharedHostDelayMiddleware:
        url = crawler.settings.get("COPYGUARD_REDIS_URL") or ""
        if not url:
            raise NotConfigured  # no sharing: each process keeps its own delays
        middleware = cls(crawler, HostSlots.from_url(url), url)
        crawler.signals.connect(middleware.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(middleware.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(middleware.request_left_downloader,
                                signal=signals.request_left_downloader)
        return middleware

    async def spider_opened(self) -> None:
        try:
            await run_in_thread(self.slots.ping)
        except HostSlotsError as exc:
            log.error("crawl.redis_url: Redis at %s does not answer (%s); not crawling, since "
                      "the other crawler processes could not see this one's requests",
                      self.url, exc)
            raise CloseSpider(f"{UNREACHABLE}: Redis at {self.url} (crawl.redis_url) does not "
                              f"answer: {exc}") from exc

    def spider_closed(self) -> None:
        self.slots.close()

    def request_left_downloader(self, request: Request) -> None:
        gate = self._holding.pop(request, None)
        if gate is not None:
            gate.release()

    async def process_request(self, request: Request) -> None:
        downloader = self.crawler.engine.downloader
        key = downloader.get_slot_key(request)
        gate = self._in_flight.setdefault(key, DeferredSemaphore(self.concurrency))
        await maybe_deferred_to_future(gate.acquire())
        try:
            await self._wait_for_slot(request, key)
        except BaseException:
            gate.release()
            raise
        self._holding[request] = gate  # released when the download has ended

    async def _wait_for_slot(self, request: Request, key: str) -> None:
        host = (urlparse_cached(request).hostname or "").lower()
        for _ in range(MAX_RESERVATIONS):
            local_wait, delay = self._local_slot(key)
            if not host or delay <= 0 or time.monotonic() < self._retry_at:
                return
            try:
                wait = await run_in_thread(self.slots.reserve, host, delay,
                                           not_before=local_wait)
            except HostSlotsError as exc:
                self._failed(exc)
                return
            due = time.monotonic() + wait  # the slot began no later than this
            await sleep(wait)
            # Woken late (a busy event loop), or still held by the local slot (AutoThrottle
            # raised its delay meanwhile): sending now could crowd the next process's slot.
            # This slot is lost to everyone, which only spaces requests further; book another.
            late = time.monotonic() - due
            if late <= LATE_SECONDS and self._local_slot(key)[0] <= LATE_SECONDS:
                return
            if self.crawler.stats is not None:
                self.crawler.stats.inc_value("copyguard/host_slots_rebooked")

    def _local_slot(self, key: str) -> tuple[float, float]:
        """How long Scrapy's slot for ``key`` would still hold a request, and its delay."""
        slot = self.crawler.engine.downloader.slots.get(key)
        if slot is None:
            return 0.0, self.delay
        delay = max(self.delay, slot.delay)
        return max(0.0, slot.lastseen + slot.delay - time.monotonic()), delay

    def _failed(self, exc: HostSlotsError) -> None:
        now = time.monotonic()
        self._retry_at = now + RETRY_SECONDS
        if self.crawler.stats is not None:
            self.crawler.stats.inc_value("copyguard/host_slots_errors")
        if now - self._warned_at >= WARN_EVERY_SECONDS:
            self._warned_at = now
            log.warning("crawl.redis_url: Redis at %s failed (%s); this process keeps the "
                        "delay on its own for the next %.0f s", self.url, exc, RETRY_SECONDS)
