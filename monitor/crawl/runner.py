"""One pass over some targets, in this process: ``copyguard crawl`` (and, later, the daemon's
crawl child process).

Scrapy's reactor cannot be restarted, so a process runs at most one ``run_crawls``; the daemon
runs each scheduled crawl in a child process. Ctrl-C (or SIGTERM) stops the crawl gracefully:
requests in flight finish, the crawl row is marked ``interrupted``, and everything captured so
far is kept (the next crawl carries on from the URL state).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from scrapy import signals
from scrapy.crawler import CrawlerProcess
from scrapy.settings import BaseSettings
from scrapy.settings import Settings as ScrapySettings
from scrapy.utils.misc import load_object

from config import Settings
from ledger.clock import Clock
from ledger.db import Ledger
from ledger.evidence import EvidenceStore
from ledger.models import CrawlStatus, Target
from ledger.object_store import object_store_from_settings
from monitor.crawl.guard import allow_private_hosts
from monitor.crawl.host_slots import UNREACHABLE
from monitor.crawl.ledger_sink import LedgerSink, RevisitPolicy
from monitor.crawl.netguard import NetworkPolicy
from monitor.crawl.spider import CrawlPlan, TargetSpider

log = logging.getLogger(__name__)

SOFTWARE = "copyguard/0.1"
_MIB = 1024 * 1024


@dataclass
class CrawlResult:
    target: str
    crawl_id: int
    status: str
    stats: dict[str, Any] = field(default_factory=dict)


def scrapy_settings(settings: Settings) -> dict[str, Any]:
    """Process-wide Scrapy settings: polite, bounded, and guarded (see PITFALLS.md)."""
    crawl = settings.crawl
    return {
        "BOT_NAME": "copyguard",
        # libuv's event loop under Twisted's asyncio reactor: a tenth more pages a second on
        # one core than asyncio's own loop (BENCHMARKS.md, crawl throughput).
        "ASYNCIO_EVENT_LOOP": "uvloop.Loop",
        "USER_AGENT": crawl.full_user_agent,
        "ROBOTSTXT_USER_AGENT": "copyguard",
        "TWISTED_DNS_RESOLVER": "monitor.crawl.guard.GuardedResolver",
        "DOWNLOADER_MIDDLEWARES": {
            "monitor.crawl.guard.AddressGuardMiddleware": 50,
            # process_response runs from high to low: see the response before RetryMiddleware.
            "monitor.crawl.guard.RetryAfterMiddleware": 560,
            "scrapy.downloadermiddlewares.httpproxy.HttpProxyMiddleware": None,
            # Last before the downloader, so nothing holds a request after its slot (off
            # unless COPYGUARD_REDIS_URL is set).
            "monitor.crawl.host_slots.SharedHostDelayMiddleware": 990,
        },
        "COPYGUARD_REDIS_URL": crawl.redis_url,
        "DOWNLOAD_HANDLERS": {"file": None, "data": None, "s3": None, "ftp": None},
        "DOWNLOAD_MAXSIZE": int(max(crawl.max_audio_mb, crawl.max_page_mb) * _MIB),
        "DOWNLOAD_WARNSIZE": 0,
        "DOWNLOAD_TIMEOUT": crawl.download_timeout_seconds,
        "REDIRECT_MAX_TIMES": crawl.max_redirects,
        "RETRY_TIMES": 2,
        "COOKIES_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        "HTTPCACHE_ENABLED": False,
        "DEPTH_LIMIT": 0,  # the spider keeps its own page depth: media one level deeper is fine
        "CONCURRENT_REQUESTS": 16,
        # Scrapy starts this many asyncio tasks for every callback's output, however little it
        # yields (2.19): at its default of 100 that was a fifth of the crawl's CPU. Our callbacks
        # yield only requests not yet scheduled, and scheduling one is quick.
        "CONCURRENT_ITEMS": 4,
        # Parses each callback's source for a ``return value`` on every response: a developer's
        # aid that cost 0.3 ms a page.
        "WARN_ON_GENERATOR_RETURN_VALUE": False,
        "LOG_LEVEL": "WARNING",
        "LOG_ENABLED": False,  # Scrapy's records go through our logging set-up
        "STATS_DUMP": False,
        "REMOTE_CONTROL_ENABLED": False,
        # Shared host slots: a random delay drawn after the reservation could push a request
        # into another process's slot (monitor/crawl/host_slots.py).
        **({"DOWNLOAD_DELAY_JITTER": 0.0} if crawl.redis_url else {}),
    }


# Scrapy settings that name the components a crawler loads: dicts of them (name -> order, or
# scheme -> handler) and single classes.
_COMPONENT_DICTS = ("DOWNLOADER_MIDDLEWARES", "SPIDER_MIDDLEWARES", "EXTENSIONS",
                    "DOWNLOAD_HANDLERS", "ITEM_PIPELINES")
_COMPONENT_CLASSES = ("DOWNLOADER", "SCHEDULER", "SCHEDULER_PRIORITY_QUEUE",
                      "SCHEDULER_MEMORY_QUEUE", "SCHEDULER_DISK_QUEUE", "DUPEFILTER_CLASS",
                      "STATS_CLASS", "LOG_FORMATTER", "REQUEST_FINGERPRINTER_CLASS",
                      "ROBOTSTXT_PARSER", "TWISTED_DNS_RESOLVER", "ITEM_PROCESSOR")


def load_components(settings: BaseSettings) -> None:
    """Import every component the crawlers will load (middlewares, extensions, download
    handlers, scheduler...), before the first crawl starts.

    Scrapy imports them as it builds each crawler's engine, after the crawl's row and its
    ``crawl.started`` entry exist: 0.6 s of imports (aiohttp, requests, tldextract, Twisted's
    web client and TLS, a deprecation shim that walks the stack) counted as crawling time, a
    tenth of a 1,000-page crawl. Loaded here, they are start-up, with the other imports."""
    paths: list[Any] = []
    for name in _COMPONENT_DICTS:
        for key, value in settings.getwithbase(name).items():
            if name == "DOWNLOAD_HANDLERS":
                paths.append(value)
            elif value is not None:
                paths.append(key)
    paths += [settings.get(name) for name in _COMPONENT_CLASSES]
    for path in paths:
        if isinstance(path, str):
            load_object(path)


def target_settings(settings: Settings, target: Target) -> dict[str, Any]:
    """The settings of one target's crawler, over the process-wide ones."""
    return {
        "ROBOTSTXT_OBEY": target.obey_robots,
        "DOWNLOAD_DELAY": target.delay_seconds,
        "CONCURRENT_REQUESTS_PER_DOMAIN": target.concurrency,
        "AUTOTHROTTLE_ENABLED": settings.crawl.autothrottle,
        "AUTOTHROTTLE_START_DELAY": max(target.delay_seconds, 0.1),
        "AUTOTHROTTLE_TARGET_CONCURRENCY": float(target.concurrency),
    }


def plan_for(settings: Settings, target: Target, recheck: tuple[str, ...] = ()) -> CrawlPlan:
    crawl = settings.crawl
    return CrawlPlan(
        target=target.name, start_urls=tuple(target.start_urls),
        allowed_domains=tuple(d.lower() for d in target.allowed_domains),
        follow=tuple(target.follow), deny=tuple(target.deny), depth=target.depth,
        max_pages=target.max_pages, obey_robots=target.obey_robots,
        max_page_bytes=int(crawl.max_page_mb * _MIB),
        max_audio_bytes=int(crawl.max_audio_mb * _MIB),
        max_hls_segments=crawl.max_hls_segments, software=SOFTWARE, recheck=recheck)


def own_hosts(target: Target) -> set[str]:
    return {(urlsplit(url).hostname or "").lower() for url in target.start_urls} - {""}


class _CloseReasons:
    """Keeps each spider's close reason (a bound method held strongly: Scrapy's signals hold
    handlers by weak reference)."""

    def __init__(self) -> None:
        self.reasons: dict[str, str] = {}

    def spider_closed(self, spider: TargetSpider, reason: str) -> None:
        self.reasons[spider.plan.target] = reason


class _QuietScrapy(logging.Filter):
    """Drops Scrapy's and Twisted's records under WARNING: Scrapy resets its loggers' levels
    when it sets up, so a level set beforehand does not hold."""

    def filter(self, record: logging.LogRecord) -> bool:
        noisy = record.name.split(".", 1)[0] in ("scrapy", "twisted", "py")
        return not noisy or record.levelno >= logging.WARNING


def _quieten_scrapy(quiet: bool) -> None:
    if quiet:
        for handler in logging.getLogger().handlers:
            if not any(isinstance(f, _QuietScrapy) for f in handler.filters):
                handler.addFilter(_QuietScrapy())


def _push_left_behind(evidence: EvidenceStore) -> None:
    """Upload what an earlier crawl left only on this disk (killed before it closed its WARC
    file, or object storage was down). Cheap when there is nothing: local markers say what is
    there. Object storage unreachable raises, before any crawl starts: no capture could be kept."""
    report = evidence.push_pending()
    if report.uploaded:
        log.info("evidence left behind by earlier crawls: %d file(s) uploaded to object storage",
                 report.uploaded)
    for problem in report.problems:
        log.warning("evidence not uploaded to object storage: %s", problem)


def run_crawls(settings: Settings, ledger: Ledger, clock: Clock, targets: list[Target], *,
               actor: str, rechecks: Mapping[int, Sequence[str]] | None = None
               ) -> list[CrawlResult]:
    """Crawl ``targets`` once, all at the same time; blocks until every crawl has ended.

    ``rechecks`` (target id -> URLs): instead of crawling those targets, fetch only the given
    URLs and keep what each answers (``url_checks``): a takedown re-check."""
    base = scrapy_settings(settings)
    crawl = settings.crawl
    revisit = RevisitPolicy(pages=timedelta(hours=crawl.revisit_pages_hours),
                            media=timedelta(days=crawl.revisit_media_days))
    allow_private_hosts(h for t in targets if t.allow_private for h in own_hosts(t))
    evidence = EvidenceStore(settings.evidence_dir, max_file_bytes=crawl.warc_file_mb * _MIB,
                             software=SOFTWARE, operator_contact=crawl.contact_url,
                             remote=object_store_from_settings(settings.evidence))
    if evidence.remote is not None:
        _push_left_behind(evidence)
    quiet = logging.getLogger().getEffectiveLevel() > logging.DEBUG
    _quieten_scrapy(quiet)
    process_settings = ScrapySettings({**base, "LOG_INSTALL_ROOT_HANDLER": False})
    load_components(process_settings)
    process = CrawlerProcess(process_settings)
    closes = _CloseReasons()
    sinks: list[LedgerSink] = []
    try:
        for target in targets:
            sink = LedgerSink(ledger, evidence, clock, target, revisit, actor=actor)
            sinks.append(sink)
            policy = NetworkPolicy.allowing(own_hosts(target) if target.allow_private else ())
            # A subclass per target carries its settings (politeness, robots) into its crawler.
            spider_class = type(f"TargetSpider{target.id}", (TargetSpider,),
                                {"custom_settings": target_settings(settings, target)})
            crawler = process.create_crawler(spider_class)
            crawler.signals.connect(closes.spider_closed, signal=signals.spider_closed)
            recheck = tuple((rechecks or {}).get(target.id, ()))
            process.crawl(crawler, plan=plan_for(settings, target, recheck), sink=sink,
                          policy=policy)
        process.start()
    finally:
        evidence.close()
    results = []
    for sink in sinks:
        reason = closes.reasons.get(sink.target_name, "shutdown")
        status = (CrawlStatus.FINISHED if reason == "finished"
                  else CrawlStatus.FAILED if reason.startswith(UNREACHABLE)
                  else CrawlStatus.INTERRUPTED)
        stats = sink.finish(status, None if reason == "finished" else
                            reason if status == CrawlStatus.FAILED else f"stopped: {reason}")
        results.append(CrawlResult(sink.target_name, sink.crawl_id, status, stats))
    return results
