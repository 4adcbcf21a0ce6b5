"""What to fetch next: the audio, playlists, pages, feeds and sitemaps one response points to.

Sites publish audio in many ways: a link to ``song.mp3``, an ``<audio>`` player, Open Graph
and JSON-LD metadata, a podcast feed's enclosures, an HLS playlist, a ``/download?id=7``
endpoint. :func:`discover` reads one fetched response and returns every URL it names, each
with :class:`Via` (how it was found, kept in the evidence) and whether to fetch it as a possible
audio resource or as a page to parse. It decides what the body is by its bytes (HTML, RSS or
Atom, sitemap, m3u8), as the Content-Type of a hostile site may lie; the header only supplies
a charset. Whether a fetched resource really is audio is :mod:`sniff`'s call, not the URL's.

Bodies are written by strangers: the work per response is capped (:class:`Limits`), XML is
parsed without entity expansion, DTDs or network access (no billion laughs, no XXE), gzip is
inflated only up to a cap, and :func:`discover` returns ``[]`` for what it cannot parse
instead of raising. :func:`hls_segments` lists what the crawler joins from an HLS playlist.
Pure functions; reads no settings.
"""

from __future__ import annotations

import functools
import json
import re
import zlib
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qsl, unquote, urljoin, urlsplit

import m3u8
from lxml import etree
from parsel import Selector
from w3lib.encoding import html_to_unicode
from w3lib.html import remove_tags, remove_tags_with_content, strip_html5_whitespace
from w3lib.url import canonicalize_url

from monitor.crawl.sniff import Kind, sniff

MiB = 1024 * 1024
MAX_PARSE_BYTES = 5 * MiB  # of a page, feed or playlist; pages run to a few hundred KiB
MAX_FOUND = 5000  # URLs per page or feed
MAX_SITEMAP_BYTES = 50 * MiB  # the sitemap protocol's maximum, also the cap on inflating gzip
MAX_SITEMAP_URLS = 50_000  # the sitemap protocol's maximum
MAX_URL_LENGTH = 2048  # longer URLs are dropped: no real resource needs one, a trap might
MAX_CONTEXT_CHARS = 200
AUDIO_EXTENSIONS = frozenset({
    ".mp3", ".ogg", ".oga", ".opus", ".flac", ".wav", ".m4a", ".aac", ".weba", ".webm", ".mka",
    ".aiff", ".aif"})


@dataclass(frozen=True)
class Limits:
    """How much work one response may cost. A longer body is cut, not refused; over the URL
    cap, pages are dropped before media (the audio is what the crawl is for)."""

    parse_bytes: int = MAX_PARSE_BYTES
    found: int = MAX_FOUND
    sitemap_bytes: int = MAX_SITEMAP_BYTES
    sitemap_urls: int = MAX_SITEMAP_URLS


DEFAULT_LIMITS = Limits()


class Via(StrEnum):
    """How a URL was found; stored in the evidence, so the values never change."""

    LINK = "link"  # <a href> to a file with an audio extension
    MEDIA_TAG = "media-tag"  # <audio>/<video> src or data-src, and their <source> children
    OPEN_GRAPH = "open-graph"  # og:audio and og:video meta (and their :url, :secure_url)
    JSON_LD = "json-ld"  # AudioObject, MusicRecording, VideoObject in JSON-LD, however nested
    FEED = "feed-enclosure"  # RSS <enclosure>, Atom <link rel=enclosure>, <media:content>
    SITEMAP = "sitemap"  # <loc> of a sitemap (pages) or of a sitemap index (more sitemaps)
    PLAYLIST = "hls"  # any .m3u8 URL, and the variant playlists inside a master playlist
    DOWNLOAD = "download"  # <a download> and download-endpoint links; their bytes will tell
    PAGE = "page"  # <a href>, <iframe src>, feed links, feed items: pages to parse
    CONTACT = "notice-contact"  # a mailto: link offered for copyright or abuse reports


@dataclass(frozen=True)
class Found:
    """One URL to fetch next."""

    url: str  # absolute, canonical (w3lib), without fragment, http or https; mailto: (CONTACT)
    via: Via
    media: bool  # True: fetch as possible audio (or playlist); False: a page, feed or sitemap
    context: str = ""  # plain text for the evidence (link text, title), at most 200 chars


@dataclass(frozen=True)
class HlsPlaylist:
    """What an HLS playlist lists. A master playlist has ``variants``, a media one ``segments``."""

    variants: tuple[str, ...] = ()  # audio renditions first, then variants by bandwidth
    segments: tuple[str, ...] = ()  # in playing order; byte ranges of one file listed once
    init_segment: str | None = None  # EXT-X-MAP: fetched before the segments (fMP4)
    duration: float = 0.0  # seconds, the sum of EXTINF
    live: bool = False  # no EXT-X-ENDLIST: the segments are a moving window, not the whole
    encrypted: bool = False  # EXT-X-KEY other than NONE: the segments cannot be joined

    @property
    def master(self) -> bool:
        return bool(self.variants)


class PlaylistError(ValueError):
    """A body :func:`hls_segments` cannot read as an HLS playlist."""


def discover(url: str, content_type: str | None, body: bytes,
             limits: Limits = DEFAULT_LIMITS) -> list[Found]:
    """What the response from ``url`` points to, deduplicated (the first via wins), in document
    order; ``[]`` for a body that is none of HTML, a feed, a sitemap or a master playlist."""
    if body[:2] == b"\x1f\x8b":  # a .xml.gz sitemap: served compressed, not content-encoded
        try:
            body = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS).decompress(
                body, limits.sitemap_bytes)
        except zlib.error:
            return []
    head = body[:2048].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head:
        return []
    if head.startswith(b"#EXTM3U"):
        return _from_master(url, body, limits)
    if sniff(head)[0] is Kind.AUDIO:
        return []
    named_root = _xml_root(head)
    sitemap = named_root in _SITEMAP_ROOTS
    found = _Collector(url, limits.sitemap_urls if sitemap else limits.found)
    try:
        if named_root:
            root = _parse_xml(body[:limits.sitemap_bytes if sitemap else limits.parse_bytes])
            if _local(root).lower() in _SITEMAP_ROOTS:
                _from_sitemap(found, root)
                return found.result()
            if _local(root).lower() in _FEED_ROOTS:
                _from_feed(found, root)
                return found.result()
        _, text = html_to_unicode(content_type, body[:limits.parse_bytes])
        # huge_tree as parsel has it: the body is cut already, and libxml2 still caps depth
        _from_html(found, Selector(text=text, type="html").root)
    except (etree.LxmlError, ValueError):  # garbage beyond what recovering parsers accept
        return []
    return found.result()


def hls_segments(url: str, body: bytes, limits: Limits = DEFAULT_LIMITS) -> HlsPlaylist:
    """The playlist at ``url``; PlaylistError if ``body`` is no HLS playlist, or is longer than
    ``limits.parse_bytes`` (a cut playlist would misstate its segments and its end)."""
    if len(body) > limits.parse_bytes:
        raise PlaylistError(f"{url}: playlist of {len(body)} bytes, more than the limit")
    parsed = _parse_m3u8(url, body)
    if parsed.get("is_variant"):
        return HlsPlaylist(variants=tuple(_variants(url, parsed)),
                           encrypted=_encrypted(parsed.get("session_keys")))
    listed = parsed.get("segments") or []
    segments: list[str] = []
    for segment in listed:
        absolute = _absolute(url, segment.get("uri"))
        if absolute and not (segments and segment.get("byterange") and segments[-1] == absolute):
            segments.append(absolute)
    init = next((s["init_section"].get("uri") for s in listed if s.get("init_section")), None)
    return HlsPlaylist(
        segments=tuple(segments),
        init_segment=_absolute(url, init),
        duration=sum(float(s.get("duration") or 0) for s in listed),
        live=not parsed.get("is_endlist") and str(parsed.get("playlist_type")).lower() != "vod",
        encrypted=_encrypted(parsed.get("keys")))


def looks_like_audio_url(url: str) -> bool:
    """Whether the path ends in an audio file extension (``/a/Song.MP3;jsessionid=1`` does)."""
    path = urlsplit(url).path.split(";", 1)[0].lower()
    return path.endswith(tuple(AUDIO_EXTENSIONS))


def looks_like_download_url(url: str) -> bool:
    """Whether the URL looks like a download endpoint: a ``download``/``dl``/``get`` path
    segment (``/download.php``), a ``download``/``dl`` query key, or a query value naming an
    audio file (``stream.php?file=a.mp3``)."""
    parts = urlsplit(url)
    if any(_DOWNLOAD_SEGMENT.fullmatch(segment) for segment in parts.path.split("/")):
        return True
    return any(key.lower() in ("download", "dl") or looks_like_audio_url(value)
               for key, value in parse_qsl(parts.query, keep_blank_values=True))


_DOWNLOAD_SEGMENT = re.compile(r"(download|dl|get|getfile|force-download)(\.\w{2,5})?", re.I)
_SITEMAP_ROOTS = frozenset({"urlset", "sitemapindex"})
_FEED_ROOTS = frozenset({"rss", "feed", "rdf"})
_ROOT_TAG = re.compile(rb"<(?:[a-z0-9_-]+:)?(urlset|sitemapindex|rss|feed|rdf)[\s>/]", re.I)


def _xml_root(head: bytes) -> str | None:
    """The feed or sitemap root element named near the start of a body, if any."""
    match = _ROOT_TAG.search(head)
    if match is None or re.search(rb"<html[\s>]", head[:match.start()], re.I):
        return None
    return match.group(1).decode().lower()


class _Collector:
    """The URLs of one response: resolved, filtered, deduplicated and counted."""

    def __init__(self, base: str, limit: int) -> None:
        self.base = base
        self._limit = limit
        self._found: list[Found] = []
        self._contacts: list[Found] = []
        self._seen: set[str] = set()
        self._media = self._pages = 0
        with suppress(ValueError):  # the response itself is no news
            self._seen.add(canonicalize_url(base, keep_fragments=False))

    @property
    def full(self) -> bool:
        return self._media >= self._limit and self._pages >= self._limit

    def resolve(self, raw: str | None) -> str | None:
        return _absolute(self.base, raw)

    def add(self, raw: str | None, via: Via, media: bool, context: str | None = None) -> None:
        self.add_absolute(self.resolve(raw), via, media, context)

    def add_absolute(self, url: str | None, via: Via, media: bool,
                     context: str | None = None) -> None:
        if url is None:
            return
        if urlsplit(url).path.lower().endswith(".m3u8"):
            via, media = Via.PLAYLIST, True
        if (self._media if media else self._pages) >= self._limit:
            return
        canonical = _canonical(url)
        if canonical is None:
            return
        url = canonical
        if len(url) > MAX_URL_LENGTH or url in self._seen:
            return
        self._seen.add(url)
        self._found.append(Found(url, via, media, _plain(context)))
        if media:
            self._media += 1
        else:
            self._pages += 1

    def add_contact(self, mailto: str, context: str) -> None:
        if mailto not in self._seen and len(self._contacts) < MAX_CONTACTS:
            self._seen.add(mailto)
            self._contacts.append(Found(mailto, Via.CONTACT, False, _plain(context)))

    def result(self) -> list[Found]:
        """At most ``limit`` URLs; over it, the last pages are dropped (audio is the point).
        Notice contacts come last and do not count."""
        pages_left = self._limit - self._media
        kept = []
        for found in self._found:
            if not found.media:
                if pages_left <= 0:
                    continue
                pages_left -= 1
            kept.append(found)
        return kept + self._contacts


@functools.lru_cache(maxsize=65536)
def _canonical(url: str) -> str | None:
    """``url`` in w3lib's canonical form, None if it cannot be encoded. Cached: a site's
    navigation links come back on every page, and canonicalising is most of a link's cost."""
    try:
        return canonicalize_url(url, keep_fragments=False)
    except ValueError:  # an unencodable host name
        return None


def _absolute(base: str, raw: str | None) -> str | None:
    """``raw`` resolved against ``base``; None unless it is a usable http(s) URL."""
    raw = strip_html5_whitespace(raw or "")
    if not raw or len(raw) > MAX_URL_LENGTH:
        return None
    try:
        url = urljoin(base, raw)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return None  # javascript:, data:, mailto:, blob:, ...
        _ = parts.port  # raises ValueError for a port out of range
    except ValueError:
        return None
    return url if len(url) <= MAX_URL_LENGTH else None


def _plain(text: str | None) -> str:
    """Plain text for the evidence: no tags, no control characters, whitespace collapsed."""
    if not text:
        return ""
    text = text[:20 * MAX_CONTEXT_CHARS]
    if "<" in text:  # most link texts have no markup: spare them the regular expressions
        text = remove_tags(remove_tags_with_content(text, which_ones=("script", "style")))
    if not text.isprintable() or "<" in text or ">" in text:
        text = "".join(c for c in text if (c.isprintable() or c.isspace()) and c not in "<>")
    return " ".join(text.split())[:MAX_CONTEXT_CHARS].rstrip()


# --- HTML -----------------------------------------------------------------------------------

_OG_MEDIA = frozenset({"og:audio", "og:audio:url", "og:audio:secure_url",
                       "og:video", "og:video:url", "og:video:secure_url"})
_FEED_TYPES = frozenset({"application/rss+xml", "application/atom+xml"})
_LINK_TEXT = etree.XPath(".//text()[not(ancestor::script) and not(ancestor::style)]")


def _from_html(found: _Collector, root: Any) -> None:
    base = next(root.iter("base"), None)
    if base is not None:
        found.base = found.resolve(base.get("href")) or found.base
    title = (next(iter(root.xpath('//meta[@property="og:title" or @name="og:title"]/@content')),
                  None) or root.findtext(".//title"))
    for el in root.iter("a", "area", "audio", "video", "source", "iframe", "frame", "link",
                        "meta", "script"):
        if found.full:
            return
        tag = el.tag
        if tag in ("a", "area"):
            _add_link(found, el)
        elif tag in ("audio", "video", "source"):
            # libxml2 nests a <source> in the one before it, so look past the parent
            player = el if tag != "source" else next(el.iterancestors("audio", "video"), None)
            if player is not None:  # not a <picture><source>
                label = _label(el) or _label(player) or title
                for attr in ("src", "data-src"):
                    found.add(el.get(attr), Via.MEDIA_TAG, True, label)
        elif tag in ("iframe", "frame"):
            for attr in ("src", "data-src"):
                found.add(el.get(attr), Via.PAGE, False, _label(el))
        elif tag == "link":
            rel = (el.get("rel") or "").lower().split()
            if "alternate" in rel and (el.get("type") or "").strip().lower() in _FEED_TYPES:
                found.add(el.get("href"), Via.PAGE, False, el.get("title"))
        elif tag == "meta":
            key = (el.get("property") or el.get("name") or "").strip().lower()
            if key in _OG_MEDIA:
                found.add(el.get("content"), Via.OPEN_GRAPH, True, title)
        elif tag == "script" and el.get("type") == "application/ld+json":
            _add_json_ld(found, el)


def _label(el: Any) -> str:
    return str(el.get("title") or el.get("aria-label") or "")


def _add_link(found: _Collector, el: Any) -> None:
    href = el.get("href") or ""
    if href.lstrip()[:7].lower() == "mailto:":
        _add_contact(found, href, "".join(_LINK_TEXT(el)).strip(), _label(el))
        return
    url = found.resolve(href)
    if url is None:
        return
    context = "".join(_LINK_TEXT(el)).strip() or _label(el)
    if looks_like_audio_url(url):
        found.add_absolute(url, Via.LINK, True, context)
    elif el.get("download") is not None or looks_like_download_url(url):
        found.add_absolute(url, Via.DOWNLOAD, True, context)
    else:
        found.add_absolute(url, Via.PAGE, False, context)


# Words that make a mailto: link a place for notices: in its text, title or address.
_NOTICE_WORDS = re.compile(r"dmca|copyright|abuse|take\s*down|infring|legal|urheberrecht|"
                           r"droit d.auteur|版权|侵权|著作権", re.IGNORECASE)
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}")
MAX_CONTACTS = 20  # per page


def _add_contact(found: _Collector, href: str, text: str, label: str) -> None:
    """A mailto: link offered for copyright or abuse reports, as ``mailto:address``: the
    words may be in its text, its title or the address itself (dmca@, abuse@)."""
    address = unquote(href.strip()[7:].split("?", 1)[0]).split(",", 1)[0].strip().lower()
    if not _EMAIL.fullmatch(address) or not _NOTICE_WORDS.search(f"{text} {label} {address}"):
        return
    found.add_contact(f"mailto:{address}", text or label)


# The wrappers old pages put around inline scripts: <!-- -->, //<![CDATA[ //]]>.
_SCRIPT_WRAPPER = re.compile(r"^\s*(?:<!--|(?://\s*)?<!\[CDATA\[)|(?:-->|(?://\s*)?\]\]>)\s*$")


def _add_json_ld(found: _Collector, script: Any) -> None:
    text = script.text or ""
    try:
        try:  # strict=False: raw newlines inside strings are common and harmless
            data = json.loads(text, strict=False)
        except ValueError:
            data = json.loads(_SCRIPT_WRAPPER.sub("", text), strict=False)
    except (ValueError, RecursionError):  # invalid, or nested past the interpreter's depth
        return
    for raw, media, name in _json_ld_urls(data):
        found.add(raw, Via.JSON_LD, media, name)


_MEDIA_TYPES = frozenset({"AudioObject", "MusicRecording", "VideoObject"})
_MAX_JSON_NODES = 100_000


def _json_ld_urls(data: object) -> Iterator[tuple[str, bool, str]]:
    """(URL, is media, name) of every media object in JSON-LD, at any depth (@graph, lists,
    MusicRecording.audio). contentUrl is the file; embedUrl a player page to parse."""
    stack: list[tuple[object, str]] = [(data, "")]
    for _ in range(_MAX_JSON_NODES):  # iteratively: nesting depth is the author's choice
        if not stack:
            return
        node, name = stack.pop()
        if isinstance(node, list):
            stack.extend((item, name) for item in reversed(node))
            continue
        if not isinstance(node, dict):
            continue
        name = node["name"] if isinstance(node.get("name"), str) else name
        types = node.get("@type")
        types = {str(t).rsplit("/", 1)[-1].rsplit(":", 1)[-1]
                 for t in (types if isinstance(types, list) else [types])}
        if types & _MEDIA_TYPES:
            keys = [("contentUrl", True), ("embedUrl", False), ("audio", True),
                    ("url", "AudioObject" in types)]
            for key, media in keys:
                values = node.get(key)
                for value in values if isinstance(values, list) else [values]:
                    if isinstance(value, str):
                        yield value, media, name
        stack.extend((value, name) for value in reversed(list(node.values()))
                     if isinstance(value, dict | list))


# --- XML: feeds and sitemaps ----------------------------------------------------------------

# No entity expansion, no DTD, no network: billion laughs and XXE find nothing to expand.
_XML_PARSER = etree.XMLParser(resolve_entities=False, load_dtd=False, no_network=True,
                              huge_tree=False, recover=True, remove_comments=True,
                              remove_pis=True)
_MRSS = "http://search.yahoo.com/mrss/"
_OPAQUE_TYPES = frozenset({"application/ogg", "application/octet-stream",
                           "application/vnd.apple.mpegurl", "application/x-mpegurl"})


def _parse_xml(data: bytes) -> Any:
    root = etree.fromstring(data, _XML_PARSER)
    if root is None:
        raise ValueError("no XML element")
    return root


def _local(el: Any) -> str:
    return str(etree.QName(el).localname)


def _from_sitemap(found: _Collector, root: Any) -> None:
    for el in root.iter(etree.Element):
        if found.full:
            return
        parent = el.getparent()
        name = _local(el)
        if name == "loc" and parent is not None and _local(parent) in ("url", "sitemap"):
            loc = (el.text or "").strip()
            found.add(loc, Via.SITEMAP, looks_like_audio_url(loc))
        elif name == "content_loc":  # a video sitemap's media file
            found.add(el.text, Via.SITEMAP, True)


def _from_feed(found: _Collector, root: Any) -> None:
    for el in root.iter(etree.Element):
        if found.full:
            return
        name, parent = _local(el), el.getparent()
        in_item = parent is not None and _local(parent) in ("item", "entry")
        if name == "enclosure" or (name == "content" and etree.QName(el).namespace == _MRSS):
            if _audio_typed(el):
                found.add(el.get("url"), Via.FEED, True, _item_title(el))
        elif name == "link" and el.get("rel") == "enclosure":
            if _audio_typed(el):
                found.add(el.get("href"), Via.FEED, True, _item_title(el))
        elif name == "link" and in_item and el.get("rel", "alternate") == "alternate":
            found.add(el.get("href") or el.text, Via.PAGE, False, _item_title(el))


def _audio_typed(el: Any) -> bool:
    """Whether an enclosure's declared type and medium allow audio (unstated ones do)."""
    medium = (el.get("medium") or "audio").lower()
    kind = (el.get("type") or "").split(";", 1)[0].strip().lower()
    return medium in ("audio", "video") and (
        not kind or kind.startswith(("audio/", "video/")) or kind in _OPAQUE_TYPES)


def _item_title(el: Any) -> str:
    while el is not None and _local(el) not in ("item", "entry"):
        el = el.getparent()
    if el is None:
        return ""
    title = next((child for child in el.iterchildren(etree.Element)
                  if _local(child) == "title"), None)
    return "" if title is None else " ".join(title.itertext())


# --- HLS ------------------------------------------------------------------------------------

_AUDIO_CODECS = ("mp4a", "ac-3", "ec-3", "opus", "flac", "alac", "mp3")


def _parse_m3u8(url: str, body: bytes) -> dict[str, Any]:
    text = body.decode("utf-8", errors="replace").lstrip("\ufeff")
    if not text.startswith("#EXTM3U"):
        raise PlaylistError(f"{url}: not an HLS playlist")
    try:
        return dict(m3u8.parse(text))
    except (ValueError, KeyError, IndexError, TypeError) as error:  # what m3u8 raises on junk
        raise PlaylistError(f"{url}: unreadable HLS playlist: {error!r}") from error


def _from_master(url: str, body: bytes, limits: Limits) -> list[Found]:
    """A master playlist's variants; a media playlist's segments are :func:`hls_segments`'."""
    try:
        variants = hls_segments(url, body[:limits.parse_bytes], limits).variants
    except PlaylistError:
        return []
    found = _Collector(url, limits.found)
    for variant in variants:
        found.add(variant, Via.PLAYLIST, True)
    return found.result()


def _variants(url: str, parsed: dict[str, Any]) -> Iterator[str]:
    """Audio-only renditions first (EXT-X-MEDIA TYPE=AUDIO, the default one first), then the
    variant streams, audio-only ones and then the lowest bandwidth first."""
    audio = [m for m in parsed.get("media") or () if str(m.get("type")).upper() == "AUDIO"]
    audio.sort(key=lambda m: str(m.get("default")).upper() != "YES")
    streams = sorted(parsed.get("playlists") or (), key=_stream_rank)
    seen: set[str] = set()
    for uri in [m.get("uri") for m in audio] + [p.get("uri") for p in streams]:
        absolute = _absolute(url, uri)
        if absolute and absolute not in seen:
            seen.add(absolute)
            yield absolute


def _stream_rank(playlist: dict[str, Any]) -> tuple[bool, float]:
    info = playlist.get("stream_info") or {}
    codecs = [c.strip().lower() for c in str(info.get("codecs") or "").split(",") if c.strip()]
    audio_only = bool(codecs) and all(c.startswith(_AUDIO_CODECS) for c in codecs)
    bandwidth = info.get("bandwidth")
    return not audio_only, float(bandwidth) if bandwidth else float("inf")


def _encrypted(keys: object) -> bool:
    """Whether any EXT-X-KEY (m3u8 lists None for a segment without one) encrypts."""
    if not isinstance(keys, list):
        return False
    return any(isinstance(key, dict) and str(key.get("method", "NONE")).upper() != "NONE"
               for key in keys)
