"""The generic spider: one target, every way a site serves audio.

Every response is judged by its bytes (monitor.crawl.sniff), not its URL or Content-Type: audio
is captured wherever it turns up (a link without an extension, a download endpoint lying about
its type), an HLS playlist is followed to its segments, which are joined, and anything else is
parsed for more URLs (monitor.crawl.discover). Pages are followed within the target's domains,
depth, page budget and follow/deny rules; media URLs are fetched wherever they are hosted
(pirates serve files from other hosts), always under the address policy.

Pages seen in an earlier crawl are asked for conditionally (ETag, Last-Modified); on 304 the
links stored from the last parse are followed again. Media files are revisited only when due,
and a file whose bytes did not change is not captured again (monitor.crawl.ledger_sink).
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request, Spider
from scrapy.exceptions import CannotResolveHostError, DownloadCancelledError, IgnoreRequest
from scrapy.http import Response, TextResponse
from twisted.internet.error import DNSLookupError
from twisted.python.failure import Failure

from ledger.evidence import Exchange, WarcLocation
from monitor.crawl.discover import Found, PlaylistError, Via, discover, hls_segments
from monitor.crawl.guard import RefusedRequest, refusal_reason
from monitor.crawl.ledger_sink import LedgerSink
from monitor.crawl.netguard import BlockedAddressError, NetworkPolicy
from monitor.crawl.sniff import SNIFF_BYTES, Kind, sniff

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CrawlPlan:
    """What one crawl of one target may do (from the target's row and [crawl] settings)."""

    target: str
    start_urls: tuple[str, ...]
    allowed_domains: tuple[str, ...]
    follow: tuple[str, ...]
    deny: tuple[str, ...]
    depth: int
    max_pages: int
    obey_robots: bool
    max_page_bytes: int
    max_audio_bytes: int
    max_hls_segments: int
    software: str
    # A re-check: fetch only these URLs (no start URLs, no links followed) and keep what each
    # answers, whatever the status, as a URL check with its WARC record.
    recheck: tuple[str, ...] = ()


class TargetSpider(Spider):
    name = "copyguard"

    def __init__(self, plan: CrawlPlan, sink: LedgerSink, policy: NetworkPolicy,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plan, self.sink, self.policy = plan, sink, policy
        self._follow = [re.compile(p) for p in plan.follow]
        self._deny = [re.compile(p) for p in plan.deny]
        self._pages_scheduled = 0
        self._scheduled: set[str] = set()  # page and media URLs requested in this crawl
        self._page_evidence: dict[str, WarcLocation] = {}
        self._page_titles: dict[str, str] = {}

    # -- requests -------------------------------------------------------------------------

    async def start(self) -> AsyncIterator[Request]:
        if self.plan.recheck:
            for url in self.plan.recheck:
                yield Request(url, callback=self.parse_recheck, errback=self.on_recheck_error,
                              dont_filter=True,
                              meta={"kind": "recheck", "recheck_url": url,
                                    "download_maxsize": self.plan.max_audio_bytes,
                                    # every answer is evidence; redirects are still followed
                                    "handle_httpstatus_list": list(range(400, 600))})
            return
        for url in self.plan.start_urls:
            request = self._page_request(url, depth=0, force=True)
            if request is not None:
                yield request

    def _page_request(self, url: str, depth: int, force: bool = False) -> Request | None:
        # Links repeat on every page (navigation): a URL already scheduled in this crawl costs
        # neither a ledger read nor a place in the page budget.
        if url in self._scheduled or (not force and not self._may_follow(url, depth)):
            return None
        if self._pages_scheduled >= self.plan.max_pages:
            self.sink.counters.inc("page_budget_reached")
            return None
        self._scheduled.add(url)
        self._pages_scheduled += 1
        headers = {}
        known = self.sink.known(url)
        if known is not None:
            if known.etag:
                headers["If-None-Match"] = known.etag
            if known.last_modified:
                headers["If-Modified-Since"] = known.last_modified
        return Request(url, callback=self.parse_response, errback=self.on_error,
                       headers=headers, dont_filter=force,
                       meta={"kind": "page", "depth": depth, "handle_httpstatus_list": [304],
                             "download_maxsize": self.plan.max_page_bytes})

    def _media_request(self, found: Found, page_url: str, depth: int) -> Request | None:
        if found.url in self._scheduled:
            return None
        self._scheduled.add(found.url)
        known = self.sink.known(found.url)
        if not self.sink.due(known):
            self.sink.counters.inc("media_not_due")
            return None
        headers = {}
        if known is not None and known.etag:
            headers["If-None-Match"] = known.etag
        if known is not None and known.last_modified:
            headers["If-Modified-Since"] = known.last_modified
        return Request(found.url, callback=self.parse_response, errback=self.on_error,
                       headers=headers,
                       meta={"kind": "media", "depth": depth, "page_url": page_url,
                             "via": found.via.value, "handle_httpstatus_list": [304],
                             "download_maxsize": self.plan.max_audio_bytes})

    def _may_follow(self, url: str, depth: int) -> bool:
        if depth > self.plan.depth:
            return False
        host = (urlsplit(url).hostname or "").lower()
        if not any(host == d or host.endswith("." + d) for d in self.plan.allowed_domains):
            return False
        if any(p.search(url) for p in self._deny):
            return False
        return not self._follow or any(p.search(url) for p in self._follow)

    # -- responses ------------------------------------------------------------------------

    def parse_response(self, response: Response) -> Iterator[Request]:
        meta = response.meta
        if response.status == 304:
            yield from self._not_modified(response)
            return
        kind, fmt = sniff(response.body[:SNIFF_BYTES])
        if kind is Kind.AUDIO:
            self._capture(response, fmt)
        elif kind is Kind.PLAYLIST:
            yield from self._playlist(response)
        elif meta.get("kind") == "page":
            yield from self._page(response)
        else:
            self.sink.counters.inc("media_not_audio")
            self.sink.media_unchanged(response.url, response.status, None, None)

    def _page(self, response: Response) -> Iterator[Request]:
        self.sink.counters.inc("pages")
        depth = int(response.meta.get("depth", 0))
        found = discover(response.url, _content_type(response), response.body)
        contacts = [f for f in found if f.via is Via.CONTACT]
        if contacts:
            self.sink.site_contacts(response.url, [(f.url.removeprefix("mailto:"), f.context)
                                                   for f in contacts])
            found = [f for f in found if f.via is not Via.CONTACT]
        links = [[f.url, f.via.value, f.media] for f in found]
        if any(f.media for f in found):
            self._archive_page(response)
        self.sink.page_seen(response.url, response.status, _header(response, b"ETag"),
                            _header(response, b"Last-Modified"), links)
        yield from self._follow_links(response.url, found, depth)

    def _not_modified(self, response: Response) -> Iterator[Request]:
        kind = response.meta.get("kind")
        known = self.sink.known(response.url)
        if kind == "page":
            self.sink.counters.inc("pages_not_modified")
            self.sink.page_seen(response.url, 304, None, None, None)
            stored = (known.links if known else None) or []
            found = [Found(url, Via(via), bool(media)) for url, via, media in stored]
            yield from self._follow_links(response.url, found, int(response.meta["depth"]))
        else:
            self.sink.counters.inc("media_not_modified")
            self.sink.media_unchanged(response.url, 304, None, None)

    def _follow_links(self, page_url: str, found: list[Found], depth: int) -> Iterator[Request]:
        media = [f for f in found if f.media]
        if media:
            self.sink.counters.inc("audio_found", len(media))
        for item in found:
            request = (self._media_request(item, page_url, depth + 1) if item.media
                       else self._page_request(item.url, depth + 1))
            if request is not None:
                yield request

    def _capture(self, response: Response, fmt: str) -> None:
        page_url = response.meta.get("page_url")
        page_location = self._page_evidence.get(page_url) if page_url else None
        capture_id = self.sink.record_capture(
            self._exchange(response, self._metadata(response, fmt)), response.body,
            page_url=page_url, via=response.meta.get("via", "page"),
            page_location=page_location, content_type=_content_type(response),
            page_title=self._page_titles.get(page_url) if page_url else None)
        if capture_id is not None:
            log.info("captured %s (%s, %d bytes) as capture %d", response.url, fmt,
                     len(response.body), capture_id)

    def _playlist(self, response: Response) -> Iterator[Request]:
        try:
            playlist = hls_segments(response.url, response.body)
        except PlaylistError as exc:
            self.sink.counters.problem("hls_skipped", response.url, str(exc))
            return
        self.sink.counters.inc("playlists")
        if playlist.variants:
            for url in playlist.variants[:1]:
                yield Request(url, callback=self.parse_response, errback=self.on_error,
                              meta={**_carry(response.meta), "kind": "media"})
            return
        problem = None
        if playlist.encrypted:
            problem = "encrypted HLS segments cannot be joined"
        elif playlist.live:
            problem = "a live playlist (no end): not captured"
        elif len(playlist.segments) > self.plan.max_hls_segments:
            problem = f"{len(playlist.segments)} segments, over the limit"
        elif not playlist.segments:
            problem = "a playlist without segments"
        if problem:
            self.sink.counters.problem("hls_skipped", response.url, problem)
            return
        segments = ([playlist.init_segment] if playlist.init_segment else []) + \
            list(playlist.segments)
        yield self._segment_request(response, segments, 0, [])

    def _segment_request(self, playlist: Response, segments: list[str], index: int,
                         parts: list[bytes]) -> Request:
        return Request(segments[index], callback=self._segment, errback=self.on_error,
                       meta={**_carry(playlist.meta), "kind": "segment",
                             "playlist": playlist, "segments": segments, "index": index,
                             "parts": parts, "download_maxsize": self.plan.max_audio_bytes})

    def _segment(self, response: Response) -> Iterator[Request]:
        meta = response.meta
        parts: list[bytes] = [*meta["parts"], response.body]
        total = sum(len(p) for p in parts)
        playlist: Response = meta["playlist"]
        if total > self.plan.max_audio_bytes:
            self.sink.counters.problem("too_large", playlist.url, "joined HLS over the size cap")
            return
        index = meta["index"] + 1
        if index < len(meta["segments"]):
            yield self._segment_request(playlist, meta["segments"], index, parts)
            return
        joined = playlist.replace(body=b"".join(parts))  # the playlist's exchange, joined body
        metadata = self._metadata(playlist, "hls")
        metadata["hls_segments"] = len(meta["segments"])
        capture_id = self.sink.record_capture(
            self._exchange(joined, metadata), joined.body, page_url=meta.get("page_url"),
            via=Via.PLAYLIST.value,
            page_location=self._page_evidence.get(str(meta.get("page_url"))),
            content_type=_content_type(playlist),
            page_title=self._page_titles.get(str(meta.get("page_url"))))
        if capture_id is not None:
            log.info("captured HLS %s (%d segments) as capture %d", playlist.url,
                     len(meta["segments"]), capture_id)

    def parse_recheck(self, response: Response) -> None:
        exchange = self._exchange(response, {
            "crawl_id": self.sink.crawl_id, "target": self.plan.target, "role": "re-check",
            "software": self.plan.software})
        # Under the URL the notice named, even when it redirected (the record has the end URL).
        self.sink.record_check(response.meta.get("recheck_url", response.url), exchange=exchange)
        self.sink.counters.inc("rechecked")

    def on_recheck_error(self, failure: Failure) -> None:
        request = getattr(failure, "request", None)
        if request is None:
            return
        self.on_error(failure)  # counted as a refusal or an error like any other
        error = f"{type(failure.value).__name__}: {failure.value}"[:1000]
        self.sink.record_check(request.meta.get("recheck_url", request.url), error=error)

    def on_error(self, failure: Failure) -> None:
        request = getattr(failure, "request", None)
        url = request.url if request is not None else "?"
        refused = (str(failure.value) if failure.check(RefusedRequest, BlockedAddressError)
                   else refusal_reason(url) if failure.check(DNSLookupError, CannotResolveHostError)
                   else None)
        if refused:
            self.sink.counters.problem("refused", url, refused)
        elif failure.check(DownloadCancelledError) and "max size" in str(failure.value):
            self.sink.counters.problem("too_large", url, str(failure.value).split(" in request")[0])
        elif failure.check(IgnoreRequest):
            reason = str(failure.value) or "ignored"
            kind = "robots_disallowed" if "robots" in reason.lower() else "ignored"
            self.sink.counters.problem(kind, url, reason)
        else:
            error = f"{type(failure.value).__name__}: {failure.value}"
            self.sink.counters.problem("errors", url, error)
            if request is not None:
                self.sink.failed(url, str(request.meta.get("kind", "page")))

    # -- evidence -------------------------------------------------------------------------

    def _metadata(self, response: Response, fmt: str) -> dict[str, str | int | float | bool | None]:
        page_url = response.meta.get("page_url")
        return {
            "crawl_id": self.sink.crawl_id, "target": self.plan.target,
            "page_url": page_url, "via": response.meta.get("via"), "format": fmt,
            "robots": "obeyed" if self.plan.obey_robots else "ignored by the target's setting",
            "software": self.plan.software,
        }

    def _archive_page(self, response: Response) -> None:
        """Keep the page a media URL was found on (only such pages: the rest prove nothing)."""
        self._page_evidence[response.url] = self.sink.archive_page(self._exchange(response, {
            "crawl_id": self.sink.crawl_id, "target": self.plan.target, "role": "page",
            "software": self.plan.software}))
        title = _page_title(response)
        if title:
            self._page_titles[response.url] = title

    def _exchange(self, response: Response, metadata: dict[str, Any]) -> Exchange:
        return _exchange(response, metadata, self.sink.clock.now())


def _page_title(response: Response) -> str | None:
    """The page's <title>, whitespace folded and cut to 500 characters (it is kept as the
    site wrote it, markup included, and always shown as text)."""
    if not isinstance(response, TextResponse):
        return None
    text = " ".join(" ".join(response.xpath("//title//text()").getall()).split())
    return text[:500] or None


def _carry(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: meta[k] for k in ("page_url", "via", "depth") if k in meta}


def _header(response: Response, name: bytes) -> str | None:
    value = response.headers.get(name)
    return value.decode("latin-1") if value else None


def _content_type(response: Response) -> str | None:
    return _header(response, b"Content-Type")


def _exchange(response: Response, metadata: dict[str, Any], fetched_at: datetime) -> Exchange:
    request = response.request
    request_headers = [] if request is None else [
        (k.decode("latin-1"), v.decode("latin-1"))
        for k, values in request.headers.items() for v in values]
    return Exchange(
        url=response.url, method=request.method if request is not None else "GET",
        request_headers=request_headers, status=response.status,
        reason="", response_headers=[
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, values in response.headers.items() for v in values],
        body=response.body, fetched_at=fetched_at,
        ip_address=str(response.ip_address) if response.ip_address else None,
        metadata={k: v for k, v in metadata.items() if v is not None})
