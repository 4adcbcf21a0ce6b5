"""The local web site of ``make bench-soak`` (bench.soak): many small sites that keep changing.

One server on 127.0.0.1 holds ``sites`` sites under ``/s/<k>/``, each a target of its own:

- ``/s/<k>/``: the home page; its content (and ETag) changes every ``page_every`` seconds, so
  a crawl mostly gets a fresh page to parse, otherwise a 304;
- ``/s/<k>/post-<j>.html``: ``posts`` pages that never change (304 once known);
- ``/s/<k>/media/u-<n>.mp3``: the "latest upload" the home page links; a new one (a new URL)
  every ``audio_every`` seconds, staggered between the sites. Its bytes are one file of the
  ``pool`` with an ID3v1 tag naming the site and upload appended: a new SHA-256 for every
  upload, so each is really decoded and matched, while ffmpeg decodes it as the pool file.

Every answer carries an ETag (pages) or ETag and Last-Modified (audio) and conditional
requests get 304, like a real host. The server runs in threads of the calling process and
counts what it served. Reads no settings.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

_POST = "<p>Uploads are checked by our staff. Share and enjoy the music of the week.</p>\n" * 30


def id3v1(title: str) -> bytes:
    """An ID3v1 tag (128 bytes at the end of an MP3) with ``title``."""
    def field(text: str, size: int) -> bytes:
        return text.encode("latin-1", "replace")[:size].ljust(size, b"\0")
    return b"TAG" + field(title, 30) + field("soak", 30) + field("bench", 30) + b"2026" + \
        field("", 30) + bytes([12])


class SoakSite:
    """The sites, served on 127.0.0.1 (a free port) from :meth:`start` to :meth:`stop`."""

    def __init__(self, sites: int, pool: Sequence[bytes], *, posts: int = 5,
                 page_every: float = 60.0, audio_every: float = 300.0,
                 clock: Callable[[], float] = time.time) -> None:
        if sites < 1 or not pool:
            raise ValueError("a soak site needs at least one site and one pool file")
        self.sites, self.pool, self.posts = sites, tuple(pool), posts
        self.page_every, self.audio_every, self.clock = page_every, audio_every, clock
        self.served: Counter[str] = Counter()  # "page 200", "media 304", ...
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._started = clock()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "the site is not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start_url(self, site: int) -> str:
        return f"{self.base_url}/s/{site:02d}/"

    def start(self) -> SoakSite:
        handler = type("_BoundHandler", (_Handler,), {"site": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="soak-site",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> SoakSite:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def count(self, what: str) -> None:
        with self._lock:
            self.served[what] += 1

    # -- content ------------------------------------------------------------------------

    def upload_number(self, site: int) -> int:
        """The current upload of ``site``: staggered so the sites do not all change at once."""
        offset = self.audio_every * site / self.sites
        return int((self.clock() - self._started + offset) // self.audio_every)

    def home_page(self, site: int) -> tuple[bytes, str]:
        edition = int(self.clock() // self.page_every)
        upload = self.upload_number(site)
        posts = "\n".join(f'<li><a href="post-{j}.html">Post {j}</a></li>'
                          for j in range(self.posts))
        body = (f"<!DOCTYPE html><html><head><title>Site {site} edition {edition}</title>"
                f"</head><body><h1>Site {site}</h1><p>Edition {edition}.</p><ul>{posts}</ul>"
                f'<p>Latest upload: <a href="media/u-{upload}.mp3">upload {upload}</a></p>'
                "</body></html>\n")
        return body.encode(), f'"home-{site}-{edition}-{upload}"'

    def post_page(self, site: int, post: int) -> tuple[bytes, str]:
        body = (f"<!DOCTYPE html><html><head><title>Post {post}</title></head><body>"
                f'<h1>Post {post} of site {site}</h1>{_POST}<a href="./">Home</a></body>'
                "</html>\n")
        return body.encode(), f'"post-{site}-{post}"'

    def upload(self, site: int, number: int) -> tuple[bytes, str]:
        data = self.pool[(site * 7 + number) % len(self.pool)]
        return data + id3v1(f"site {site} upload {number}"), f'"upload-{site}-{number}"'


class _Handler(BaseHTTPRequestHandler):
    site: SoakSite
    protocol_version = "HTTP/1.1"
    _MODIFIED = formatdate(1_700_000_000, usegmt=True)

    def do_GET(self) -> None:
        found = self._resource(self.path.split("?", 1)[0])
        if found is None:
            self.site.count("not found")
            self._send(404, b"not found", "text/plain", None)
            return
        kind, body, etag, content_type = found
        if self.headers.get("If-None-Match") == etag:
            self.site.count(f"{kind} 304")
            self._send(304, b"", None, etag)
            return
        self.site.count(f"{kind} 200")
        self._send(200, body, content_type, etag)

    def _resource(self, path: str) -> tuple[str, bytes, str, str] | None:
        if path == "/robots.txt":
            return "robots", b"User-agent: *\nDisallow:\n", '"robots"', "text/plain"
        parts = path.split("/")
        if len(parts) < 4 or parts[1] != "s" or not parts[2].isdigit():
            return None
        site, rest = int(parts[2]), "/".join(parts[3:])
        if site >= self.site.sites:
            return None
        if rest in ("", "index.html"):
            return ("page", *self.site.home_page(site), "text/html; charset=utf-8")
        post = rest[5:-5] if rest.startswith("post-") and rest.endswith(".html") else ""
        if post.isdigit() and int(post) < self.site.posts:
            return ("page", *self.site.post_page(site, int(post)), "text/html; charset=utf-8")
        if rest.startswith("media/u-") and rest.endswith(".mp3") and rest[8:-4].isdigit():
            number = int(rest[8:-4])
            if number <= self.site.upload_number(site):
                return ("media", *self.site.upload(site, number), "audio/mpeg")
        return None

    def _send(self, status: int, body: bytes, content_type: str | None,
              etag: str | None) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        if etag:
            self.send_header("ETag", etag)
        if content_type == "audio/mpeg":
            self.send_header("Last-Modified", self._MODIFIED)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass
