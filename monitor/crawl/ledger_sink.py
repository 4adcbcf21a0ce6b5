"""Where the spider's findings go: crawl rows, URL state, evidence and capture rows.

Ordering is what makes a crash harmless: the evidence (blob, WARC records) is on disk and
fsync'ed before the capture row that points at it is committed, and the URL state of a media
file is updated in that same transaction. A crawl killed at any moment leaves at worst evidence
no row points at (harmless: identical bytes are stored once), never a row pointing at nothing;
the next crawl finds the URL state and does not capture the same bytes twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select

from ledger import audit
from ledger.clock import Clock
from ledger.db import Ledger
from ledger.evidence import EvidenceStore, Exchange, WarcLocation
from ledger.models import (
    Capture,
    Crawl,
    CrawlStatus,
    SiteContact,
    Target,
    UrlCheck,
    UrlState,
)
from ledger.urls import url_key

# Kept in the crawl's stats so an operator (and the tests) can see what was refused and why.
MAX_LISTED_PROBLEMS = 200
PAGE_BATCH = 200  # page states written per transaction


@dataclass(frozen=True)
class KnownUrl:
    etag: str | None
    last_modified: str | None
    sha256: str | None
    next_visit_at: datetime | None
    links: list[list[Any]] | None


@dataclass
class CrawlCounters:
    values: dict[str, int] = field(default_factory=dict)
    problems: list[dict[str, str]] = field(default_factory=list)

    def inc(self, name: str, by: int = 1) -> None:
        self.values[name] = self.values.get(name, 0) + by

    def problem(self, kind: str, url: str, reason: str) -> None:
        self.inc(kind)
        if len(self.problems) < MAX_LISTED_PROBLEMS:
            self.problems.append({"kind": kind, "url": url, "reason": reason[:300]})


@dataclass(frozen=True)
class RevisitPolicy:
    pages: timedelta
    media: timedelta


class LedgerSink:
    """The ledger side of one crawl of one target."""

    def __init__(self, ledger: Ledger, evidence: EvidenceStore, clock: Clock, target: Target,
                 revisit: RevisitPolicy, *, actor: str) -> None:
        self.ledger, self.evidence, self.clock = ledger, evidence, clock
        self.target_id, self.target_name = target.id, target.name
        self.revisit, self.actor = revisit, actor
        self.counters = CrawlCounters()
        self._known: dict[str, KnownUrl] | None = None
        self._pages: list[tuple[str, int, str | None, str | None, list[list[Any]] | None,
                                datetime]] = []
        self.crawl_id = self._begin()

    def _begin(self) -> int:
        with self.ledger.write() as session:
            # One crawl of a target at a time: a crawl still "running" is one whose process
            # died (kill -9, power loss). What it captured stays; the crawl is marked as such.
            for stale in session.execute(select(Crawl).where(
                    Crawl.target_id == self.target_id,
                    Crawl.status == CrawlStatus.RUNNING)).scalars():
                stale.status, stale.finished_at = CrawlStatus.INTERRUPTED, self.clock.now()
                stale.error = "its process ended before the crawl finished"
            crawl = Crawl(target_id=self.target_id, status=CrawlStatus.RUNNING,
                          started_at=self.clock.now(), stats={})
            session.add(crawl)
            session.flush()
            audit.append(session, self.clock, actor=self.actor, action="crawl.started",
                         entity_type="crawl", entity_id=crawl.id,
                         details={"target": self.target_name})
            return crawl.id

    def known(self, url: str) -> KnownUrl | None:
        """What earlier crawls learnt of ``url``; the target's URL state is read once per crawl
        (one query, not one per link) and kept up to date by this sink's own writes."""
        if self._known is None:
            with self.ledger.read() as session:
                self._known = {row.url_key: _known_of(row) for row in session.execute(
                    select(UrlState).where(UrlState.target_id == self.target_id)).scalars()}
        return self._known.get(url_key(url))

    def due(self, known: KnownUrl | None) -> bool:
        return known is None or known.next_visit_at is None or \
            known.next_visit_at <= self.clock.now()

    def page_seen(self, url: str, status: int, etag: str | None, last_modified: str | None,
                  links: list[list[Any]] | None) -> None:
        """Record a page fetch (``links`` None: keep the stored ones, as after a 304).

        Written in batches: a page's state is only a hint for the next crawl (lost, the page is
        fetched again unconditionally), so it need not cost a transaction per page."""
        self._pages.append((url, status, etag, last_modified, links, self.clock.now()))
        if len(self._pages) >= PAGE_BATCH:
            self.flush_pages()

    def flush_pages(self) -> None:
        pages, self._pages = self._pages, []
        if not pages:
            return
        with self.ledger.write() as session:
            rows = self._states(session, [page[0] for page in pages], "page")
            for url, status, etag, last_modified, links, at in pages:
                row = rows[url_key(url)]
                row.http_status, row.last_fetched_at = status, at
                row.next_visit_at = at + self.revisit.pages
                if status != 304:
                    row.etag, row.last_modified = etag, last_modified
                if links is not None:
                    row.links = links
                row.failures = 0
                self._remember(row)

    def site_contacts(self, page_url: str, contacts: list[tuple[str, str]]) -> None:
        """Notice addresses the site publishes on ``page_url`` ((address, link text) pairs),
        each kept once per host: a recipient for notices when the target names none."""
        host = (urlsplit(page_url).hostname or "").lower()
        with self.ledger.write() as session:
            known = set(session.execute(select(SiteContact.email).where(
                SiteContact.host == host)).scalars())
            for email, context in contacts:
                if email not in known:
                    known.add(email)
                    session.add(SiteContact(target_id=self.target_id, host=host, email=email,
                                            page_url=page_url, context=context,
                                            found_at=self.clock.now()))
                    self.counters.inc("site_contacts")

    def media_unchanged(self, url: str, status: int, etag: str | None,
                        last_modified: str | None) -> None:
        with self.ledger.write() as session:
            row = self._state(session, url, "media")
            row.http_status, row.last_fetched_at = status, self.clock.now()
            row.next_visit_at = self.clock.now() + self.revisit.media
            if etag or last_modified:
                row.etag, row.last_modified = etag, last_modified
            self._remember(row)

    def failed(self, url: str, kind: str) -> None:
        with self.ledger.write() as session:
            row = self._state(session, url, kind)
            row.failures += 1
            # Back off: an URL that keeps failing is tried less and less often.
            row.next_visit_at = self.clock.now() + timedelta(hours=min(2 ** row.failures, 168))
            self._remember(row)

    def record_check(self, url: str, *, exchange: Exchange | None = None,
                     error: str | None = None) -> None:
        """Keep what a re-checked URL answered (evidence first, then the row), or why nothing
        answered."""
        row = UrlCheck(crawl_id=self.crawl_id, target_id=self.target_id, url=url,
                       url_key=url_key(url), checked_at=self.clock.now(), error=error)
        if exchange is not None:
            stored = self.evidence.write_exchange(exchange)
            row.http_status, row.size = exchange.status, stored.payload_length
            row.sha256 = stored.payload_sha256 if 200 <= exchange.status < 300 else None
            row.warc_file, row.warc_offset = stored.response.file, stored.response.offset
            row.warc_length, row.warc_record_id = stored.response.length, stored.response_id
        with self.ledger.write() as session:
            session.add(row)
            session.flush()
            audit.append(session, self.clock, actor=self.actor, action="url.checked",
                         entity_type="url_check", entity_id=row.id,
                         details={"url": url, "crawl_id": self.crawl_id,
                                  "http_status": row.http_status, "sha256": row.sha256,
                                  "error": error})

    def archive_page(self, exchange: Exchange) -> WarcLocation:
        return self.evidence.write_exchange(exchange).response

    def record_capture(self, exchange: Exchange, body: bytes, *, page_url: str | None,
                       via: str, page_location: WarcLocation | None,
                       content_type: str | None, page_title: str | None = None) -> int | None:
        """Keep an audio response: evidence first, then the row. None if the URL already
        served exactly these bytes (nothing new to capture)."""
        sha256 = hashlib.sha256(body).hexdigest()
        known = self.known(exchange.url)
        etag, modified = _header(exchange, "etag"), _header(exchange, "last-modified")
        if known is not None and known.sha256 == sha256:
            self.media_unchanged(exchange.url, exchange.status, etag, modified)
            self.counters.inc("unchanged")
            return None
        self.evidence.put_blob(body)
        stored = self.evidence.write_exchange(exchange)
        with self.ledger.write() as session:
            existing = session.execute(select(Capture.id).where(
                Capture.crawl_id == self.crawl_id, Capture.url == exchange.url)).scalar()
            if existing is not None:  # the same URL twice in one crawl (another page linked it)
                return None
            capture = Capture(
                crawl_id=self.crawl_id, target_id=self.target_id, url=exchange.url,
                page_url=page_url, page_title=page_title, via=via,
                fetched_at=exchange.fetched_at,
                http_status=exchange.status,
                headers=[[k, v] for k, v in exchange.response_headers],
                content_type=content_type, size=len(body), sha256=sha256,
                ip_address=exchange.ip_address, warc_file=stored.response.file,
                warc_offset=stored.response.offset, warc_length=stored.response.length,
                warc_record_id=stored.response_id,
                page_warc_file=page_location.file if page_location else None,
                page_warc_offset=page_location.offset if page_location else None,
                page_warc_length=page_location.length if page_location else None,
            )
            session.add(capture)
            row = self._state(session, exchange.url, "media")
            row.sha256, row.http_status = sha256, exchange.status
            row.etag, row.last_modified = etag, modified
            row.last_fetched_at = self.clock.now()
            row.next_visit_at = self.clock.now() + self.revisit.media
            row.failures = 0
            self._remember(row)
            session.flush()
            audit.append(session, self.clock, actor=self.actor, action="capture.recorded",
                         entity_type="capture", entity_id=capture.id,
                         details={"url": exchange.url, "page_url": page_url, "sha256": sha256,
                                  "size": len(body), "target": self.target_name,
                                  "warc": f"{stored.response.file}@{stored.response.offset}"})
            self.counters.inc("captures")
            return capture.id

    def finish(self, status: str, error: str | None = None) -> dict[str, Any]:
        self.flush_pages()
        stats: dict[str, Any] = dict(self.counters.values)
        stats["problems"] = self.counters.problems
        with self.ledger.write() as session:
            crawl = session.get(Crawl, self.crawl_id)
            assert crawl is not None
            crawl.status, crawl.finished_at, crawl.error = status, self.clock.now(), error
            crawl.stats = stats
            audit.append(session, self.clock, actor=self.actor, action=f"crawl.{status}",
                         entity_type="crawl", entity_id=crawl.id,
                         details={"target": self.target_name, **self.counters.values})
        return stats

    def _remember(self, row: UrlState) -> None:
        if self._known is not None:
            self._known[row.url_key] = _known_of(row)

    def _states(self, session: Any, urls: list[str], kind: str) -> dict[str, UrlState]:
        """The rows of ``urls`` by key, new ones added: one query for a whole batch (one per
        URL, each flushing the rows added before it, was most of a batch's cost)."""
        keys = {url_key(url): url for url in urls}
        rows: dict[str, UrlState] = {}
        with session.no_autoflush:
            for chunk in _chunks(sorted(keys), 500):  # under SQLite's bound-parameter limit
                rows.update((row.url_key, row) for row in session.execute(select(UrlState).where(
                    UrlState.target_id == self.target_id, UrlState.url_key.in_(chunk))).scalars())
        for key, url in keys.items():
            if key not in rows:
                rows[key] = UrlState(target_id=self.target_id, url_key=key, url=url, kind=kind,
                                     failures=0)
                session.add(rows[key])
        return rows

    def _state(self, session: Any, url: str, kind: str) -> UrlState:
        key = url_key(url)
        row = session.execute(select(UrlState).where(
            UrlState.target_id == self.target_id, UrlState.url_key == key)).scalar_one_or_none()
        if row is None:
            row = UrlState(target_id=self.target_id, url_key=key, url=url, kind=kind, failures=0)
            session.add(row)
        return row


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _known_of(row: UrlState) -> KnownUrl:
    return KnownUrl(row.etag, row.last_modified, row.sha256, row.next_visit_at, row.links)


def _header(exchange: Exchange, name: str) -> str | None:
    for key, value in exchange.response_headers:
        if key.lower() == name:
            return value
    return None


