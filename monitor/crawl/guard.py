"""The address policy (monitor.crawl.netguard) and politeness rules, wired into Scrapy.

Two layers, because neither alone is enough:

- ``GuardedResolver`` replaces Scrapy's DNS resolver (``DNS_RESOLVER``), so the address a
  connection goes to is the one that was checked: redirects and DNS rebinding cannot slip past.
  A resolver is one per process, so it allows the private hosts of every target crawling in this
  process (``allow_private_hosts``).
- ``AddressGuardMiddleware`` checks each request against its own target's policy: IP literals
  (Twisted never asks the resolver about them), non-HTTP schemes, and a host that another
  target of the same process may reach privately but this one may not.

``RetryAfterMiddleware`` honours ``Retry-After`` on 429 and 503 (Scrapy's retry ignores it).
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import logging
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred
from twisted.internet.error import DNSLookupError
from twisted.internet.interfaces import IResolverSimple
from twisted.internet.threads import deferToThreadPool
from zope.interface import implementer

from monitor.crawl.netguard import BlockedAddressError, NetworkPolicy, ip_literal

log = logging.getLogger(__name__)

_lock = threading.Lock()
_private_hosts: set[str] = set()


def allow_private_hosts(hosts: Iterable[str]) -> None:
    """Let this process's resolver return private addresses for ``hosts`` (the start hosts of
    targets with ``allow_private``); the per-target middleware keeps each target to its own."""
    with _lock:
        _private_hosts.update(host.lower().rstrip(".") for host in hosts)


def process_policy() -> NetworkPolicy:
    with _lock:
        return NetworkPolicy.allowing(frozenset(_private_hosts))


class RefusedRequest(IgnoreRequest):
    """A request the address policy or the scheme rule refused."""


@implementer(IResolverSimple)
class GuardedResolver:
    """Resolves every name through the address policy; refuses with BlockedAddressError."""

    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor

    @classmethod
    def from_crawler(cls, crawler: Crawler, reactor: Any) -> GuardedResolver:
        return cls(reactor)

    def install_on_reactor(self) -> None:
        self.reactor.installResolver(self)

    def getHostByName(self, name: str, timeout: Any = ()) -> Deferred[str]:
        def resolve() -> str:
            try:
                addresses = process_policy().resolve(name)
            except BlockedAddressError as exc:
                # As a lookup error Twisted fails the connection quietly (anything else it logs
                # as CRITICAL); the spider asks refusal_reason() why, to record it as refused.
                raise DNSLookupError(str(exc)) from None
            # IPv4 first: every host reachable over IPv6 here is reachable over IPv4 too,
            # and Twisted's TCP client connects to exactly the one address returned.
            return sorted(addresses, key=lambda a: ipaddress.ip_address(a).version)[0]

        return deferToThreadPool(self.reactor, self.reactor.getThreadPool(), resolve)


def refusal_reason(url: str) -> str | None:
    """Why the resolver refused ``url``'s host, or None if it did not (a plain DNS failure)."""
    host = urlsplit(url).hostname or ""
    try:
        process_policy().resolve(host)
    except BlockedAddressError as exc:
        return str(exc)
    except OSError:
        return None
    return None


class AddressGuardMiddleware:
    """Refuses a request its target's policy forbids, before anything is sent.

    Host names are resolved here too (once per crawl and host, in a thread), so a link to a
    private host is refused up front: no retries, no robots.txt request for it. The resolver
    still checks every connection, which is what stops a name whose answer changes later."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self._verdicts: dict[str, str | None] = {}  # host -> why refused (None: allowed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> AddressGuardMiddleware:
        return cls(crawler)

    async def process_request(self, request: Request) -> None:
        parsed = urlparse_cached(request)
        if parsed.scheme not in ("http", "https"):
            raise RefusedRequest(f"refused {request.url}: only http and https are crawled")
        host = (parsed.hostname or "").lower()
        if host not in self._verdicts:
            policy: NetworkPolicy = self.crawler.spider.policy  # type: ignore[union-attr]
            self._verdicts[host] = await asyncio.to_thread(_verdict, policy, host,
                                                           parsed.port or 443)
        reason = self._verdicts[host]
        if reason is not None:
            raise RefusedRequest(reason)


def _verdict(policy: NetworkPolicy, host: str, port: int) -> str | None:
    try:
        literal = ip_literal(host)
        if literal is not None:
            policy.check_address(host, literal)
        else:
            policy.resolve(host, port)
    except BlockedAddressError as exc:
        return str(exc)
    except OSError:
        return None  # does not resolve: the download fails with a DNS error as usual
    return None


# Longest wait honoured; a server asking for more is retried at the next crawl instead.
MAX_RETRY_AFTER_SECONDS = 120.0
MAX_RETRY_AFTER_TIMES = 3


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a ``Retry-After`` value asks to wait (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class RetryAfterMiddleware:
    """On 429 or 503 with ``Retry-After``: wait as asked (capped), then try again, a few times.

    Runs before Scrapy's RetryMiddleware, which would retry at once."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RetryAfterMiddleware:
        return cls(crawler)

    async def process_response(self, request: Request, response: Response
                               ) -> Request | Response:
        if response.status not in (429, 503):
            return response
        header = response.headers.get(b"Retry-After")
        wait = retry_after_seconds(header.decode("latin-1") if header else None)
        times = int(request.meta.get("retry_after_times", 0))
        if wait is None or wait > MAX_RETRY_AFTER_SECONDS or times >= MAX_RETRY_AFTER_TIMES:
            return response
        log.info("%s answered %d, Retry-After %.0f s: waiting", request.url, response.status,
                 wait)
        started = time.monotonic()
        await asyncio.sleep(wait)
        retry = request.replace(dont_filter=True)
        retry.meta["retry_after_times"] = times + 1
        retry.meta["retry_after_waited"] = round(time.monotonic() - started, 2)
        if self.crawler.stats is not None:
            self.crawler.stats.inc_value("copyguard/retry_after")
        return retry
