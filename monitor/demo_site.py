"""A local web site that hides altered copies of catalog recordings, for the demo and the
crawler's end-to-end test.

:func:`build_site` writes a small site under one folder. Its pages carry excerpts of catalog
tracks, each altered differently and embedded differently: a plain link, ``<audio>`` and
``<video><source>`` tags, Open Graph, JSON-LD, a podcast enclosure, a sitemap entry, an HLS
stream and a download endpoint that gives the wrong type. Next to them are decoys (unrelated
music, speech-like noise, a corrupt file, an oversized WAV, an ``.mp3`` link that answers with
an HTML 404) and traps (a robots-disallowed folder, links to private addresses, an endless
calendar, a page that first answers 429). Each piece of audio is one :class:`Placement`. It
says where the audio is and what a crawl should make of it (``expected``):

- ``detection``: a catalog copy, identified as ``track``; ``start`` and ``seconds`` give the
  excerpt of the track it holds.
- ``no-match``: audio that is not in the catalog.
- ``failed``: bytes that look like audio but do not decode.
- ``too-large``: bigger than the crawler's audio cap, which the test sets below
  ``oversized_bytes``.
- ``not-found``: answers 404 with an HTML page.
- ``robots``: under ``/private/``, which robots.txt disallows; it must never be requested.
- ``refused``: a ``private_links`` URL on another private or loopback host, for the address
  guard to refuse.

Two placements need care when they are compared with what the crawler records. The HLS copy
is the media playlist ``/hls/audio.m3u8``, which the crawler captures as its joined segments;
``/stream.html`` links the master playlist ``/hls/master.m3u8``. The page that only the
sitemap lists (``/hidden/track.html``) links its copy with an ``<a href>``, so that copy is
``link`` style. The ``sitemap`` copy is the audio file that ``/sitemap.xml`` lists directly.

The site is written once for given inputs. ``manifest.json``, written last, stores a hash of
the inputs (this module's source included) and the size of every file. A later call whose
inputs hash the same, and whose files are all present, reuses the site. Otherwise
``root/www``, ``root/attachments`` and the manifest are written again; nothing else under
``root`` is touched.
:class:`DemoServer` serves it on 127.0.0.1. Every response carries an ETag (and Last-Modified
for files), conditional requests get 304, and every request is logged. Reads no settings.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from email.message import Message
from email.utils import formatdate, parsedate_to_datetime
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import quoteattr

import numpy as np

from fingerprints import alter
from fingerprints.synth import synthesize_track

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
TRAP_PREFIX = "/calendar/"  # pages under it are generated on request, each linking the next
TRAP_START = "/calendar/2026/1"
SLOW_PATH = "/slow.html"  # the first request answers 429 with Retry-After: 1
NOTICE_FORM_PATH = "/report-infringement"  # takes notices (POST), as a hosting form would
NOTICE_CONTACT = "copyright@demo-site.invalid"  # published on every page, beside "DMCA"
MAX_NOTICE_BYTES = 1024 * 1024
DISALLOWED = "/private/"
DOWNLOAD_ID = "7"
DOWNLOAD_NAME = "track7.mp3"
INDEX_TITLE = "Free music downloads <script>alert(1)</script>"  # hostile text; escaped in HTML
EXCERPT_SECONDS = (15.0, 25.0)  # a catalog copy holds this much of its track (drawn)
UNRELATED_SEED = 900_000  # plus ``seed``: far from the small seeds catalog tracks come from
_AUDIO_SUFFIXES = (".mp3", ".ogg", ".opus", ".m4a", ".webm", ".wav", ".flac", ".aac")


@dataclass(frozen=True)
class Placement:
    """One piece of audio on the site, and what a crawl of the site should make of it."""

    path: str  # URL path as captured: "/media/x.mp3", the HLS media playlist, "/download?id=7"
    style: str  # how it is embedded: the crawler's Via value ("link", "media-tag", "hls", ...)
    page: str  # the page, feed or sitemap it is found on
    track: int | None  # index into build_site's ``tracks`` it copies; None for decoys
    alteration: str  # "mp3 64k", "speed +4%", ... or "unrelated", "corrupt", ...
    expected: str  # see the module docstring
    start: float | None = None  # seconds into the track where the copied excerpt begins
    seconds: float | None = None  # length of the excerpt, before any speed or tempo change


@dataclass(frozen=True)
class DemoSite:
    root: Path
    placements: tuple[Placement, ...]
    trap_prefix: str = TRAP_PREFIX
    trap_start: str = TRAP_START
    slow_path: str = SLOW_PATH
    disallowed: str = DISALLOWED
    title: str = INDEX_TITLE  # the index page's title text, hostile markup included

    def expected(self, outcome: str) -> tuple[Placement, ...]:
        """The placements a crawl should end in ``outcome`` ("detection", "no-match", ...)."""
        return tuple(p for p in self.placements if p.expected == outcome)

    def placement(self, path: str) -> Placement:
        for placement in self.placements:
            if placement.path == path:
                return placement
        raise KeyError(path)


class DemoSiteError(RuntimeError):
    """ffmpeg could not make a file of the demo site."""


@dataclass(frozen=True)
class _Copy:
    """Where and how one catalog copy is made and placed."""

    path: str
    style: str
    page: str
    alteration: str
    file: str  # relative to the site root
    codec: tuple[str, ...]  # ffmpeg output options
    seconds: float | None = None  # a fixed excerpt length instead of a drawn one


def _mp3(bitrate: str) -> tuple[str, ...]:
    return ("-c:a", "libmp3lame", "-b:a", bitrate)


_VORBIS = ("-c:a", "libvorbis", "-q:a", "4")  # a bitrate libvorbis accepts at any rate
_HLS = ("-c:a", "aac", "-b:a", "96k", "-f", "hls", "-hls_time", "4",
        "-hls_playlist_type", "vod", "-hls_segment_filename")  # + the segment pattern
# Track i of ``tracks`` becomes _COPIES[i]; each track is used once, so a detection names
# one placement.
_COPIES = (
    _Copy("/media/blog-64k.mp3", "link", "/blog/", "mp3 64k", "www/media/blog-64k.mp3",
          _mp3("64k")),
    _Copy("/media/player-fast.ogg", "media-tag", "/player.html", "speed +4%",
          "www/media/player-fast.ogg", _VORBIS),
    _Copy("/media/player-pitch.webm", "media-tag", "/player.html", "pitch +1 st",
          "www/media/player-pitch.webm", ("-c:a", "libopus", "-b:a", "64k")),
    _Copy("/media/og-noisy.mp3", "open-graph", "/og.html", "noise 15 dB",
          "www/media/og-noisy.mp3", _mp3("128k")),
    _Copy("/media/release-slow.m4a", "json-ld", "/release.html", "tempo -5%",
          "www/media/release-slow.m4a", ("-c:a", "aac", "-b:a", "96k", "-movflags", "+faststart")),
    _Copy("/media/episode-3.mp3", "feed-enclosure", "/podcast.xml",
          "mixed into 40 s of other audio at 10 s", "www/media/episode-3.mp3", _mp3("96k"), 20.0),
    _Copy("/media/hidden-lowpass.mp3", "link", "/hidden/track.html", "low-pass 3 kHz",
          "www/media/hidden-lowpass.mp3", _mp3("128k")),
    _Copy("/media/demo-tape.opus", "sitemap", "/sitemap.xml", "opus 32k",
          "www/media/demo-tape.opus", ("-c:a", "libopus", "-b:a", "32k")),
    _Copy("/hls/audio.m3u8", "hls", "/stream.html", "untouched, HLS AAC segments",
          "www/hls/audio.m3u8", _HLS, 20.0),
    _Copy(f"/download?id={DOWNLOAD_ID}", "download", "/downloads.html", "mp3 128k",
          f"attachments/{DOWNLOAD_NAME}", _mp3("128k")),
    _Copy("/private/leak.mp3", "link", "/private/leak.html", "mp3 160k", "www/private/leak.mp3",
          _mp3("160k")),
)
TRACKS_NEEDED = len(_COPIES)
_DECOYS = (
    Placement("/media/unrelated.mp3", "link", "/blog/", None, "unrelated", "no-match"),
    Placement("/media/broken.mp3", "link", "/blog/", None, "corrupt", "failed"),
    Placement("/media/missing.mp3", "link", "/blog/", None, "html 404", "not-found"),
    Placement("/media/episode-2.mp3", "feed-enclosure", "/podcast.xml", None,
              "speech-like noise", "no-match"),
    Placement("/media/huge.wav", "link", "/downloads.html", None, "oversized", "too-large"),
    Placement("/media/b-side.ogg", "link", SLOW_PATH, None, "unrelated", "no-match"),
)
_PAGES = {  # HTML pages and their titles; "/" is written apart, /podcast.xml and /sitemap.xml too
    "/blog/": "Blog: this week's uploads",
    "/player.html": "Player",
    "/og.html": 'Live "bootleg" <b>set</b>',
    "/release.html": "New release",
    "/hidden/track.html": "Unlisted track",
    "/stream.html": "Radio stream",
    "/downloads.html": "Downloads",
    SLOW_PATH: "Popular (rate limited)",
    "/private/leak.html": "Leaked before release",
}


def build_site(root: Path, tracks: Sequence[np.ndarray], sample_rate: int, *, seed: int = 7,
               oversized_bytes: int = 3 * 1024 * 1024,
               private_links: Sequence[str] = ()) -> DemoSite:
    """Write the demo site for catalog ``tracks`` (mono float32 at ``sample_rate``) under
    ``root``, or reuse the one already there from the same inputs.

    Needs at least :data:`TRACKS_NEEDED` tracks of at least 17 s (the first ones are used).
    ``seed`` draws the excerpts, the noise and the decoys. ``oversized_bytes`` is the size of
    the too-large WAV. ``private_links`` are absolute URLs to other hosts that the index page
    links to; "{port}" in them is replaced by the server's port when the page is served.
    """
    if len(tracks) < TRACKS_NEEDED:
        raise ValueError(f"the demo site needs {TRACKS_NEEDED} tracks, got {len(tracks)}")
    if oversized_bytes <= 44:
        raise ValueError(f"oversized_bytes must exceed a WAV header, got {oversized_bytes}")
    for link in private_links:
        if urlsplit(link).scheme not in ("http", "https") or not urlsplit(link).netloc:
            raise ValueError(f"private link {link!r} is not an absolute http(s) URL")
    placements = _placements([len(t) / sample_rate for t in tracks], seed, private_links)
    site = DemoSite(root, placements)
    key = _inputs_key(tracks, sample_rate, seed, oversized_bytes, private_links)
    if _complete(root, key):
        return site
    for stale in (root / MANIFEST, root / "www", root / "attachments"):
        if stale.is_dir():
            shutil.rmtree(stale)
        stale.unlink(missing_ok=True)
    _write_audio(root, tracks, sample_rate, seed, oversized_bytes, placements)
    _write_pages(root, placements)
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name != MANIFEST)
    manifest = {"inputs": key,
                "files": {str(p.relative_to(root)): p.stat().st_size for p in files},
                "placements": [asdict(p) for p in placements]}
    temporary = root / (MANIFEST + ".part")  # written last: a site without it is incomplete
    temporary.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    temporary.replace(root / MANIFEST)
    return site


def _placements(track_seconds: Sequence[float], seed: int,
                private_links: Sequence[str]) -> tuple[Placement, ...]:
    rng = np.random.default_rng([seed, 0])  # excerpts only: noise draws its own stream
    result = []
    for track, copy in enumerate(_COPIES):
        length = track_seconds[track]
        seconds = copy.seconds or round(float(rng.uniform(*EXCERPT_SECONDS)), 1)
        seconds = min(seconds, length - 2.0)
        if seconds < EXCERPT_SECONDS[0]:
            raise ValueError(f"track {track} lasts {length:.1f} s; the demo site needs "
                             f"{EXCERPT_SECONDS[0] + 2:.0f} s")
        start = round(float(rng.uniform(1.0, length - seconds - 1.0)), 2)
        expected = "robots" if copy.page.startswith(DISALLOWED) else "detection"
        result.append(Placement(copy.path, copy.style, copy.page, track, copy.alteration,
                                expected, start, seconds))
    result.extend(_DECOYS)
    for link in private_links:
        style = "link" if urlsplit(link).path.lower().endswith(_AUDIO_SUFFIXES) else "page"
        result.append(Placement(link, style, "/", None, "private address", "refused"))
    return tuple(result)


def _inputs_key(tracks: Sequence[np.ndarray], sample_rate: int, seed: int,
                oversized_bytes: int, private_links: Sequence[str]) -> str:
    # This module's own text is an input too: a site made by other code is made again.
    digest = hashlib.sha256(Path(__file__).read_bytes())
    digest.update(json.dumps([sample_rate, seed, oversized_bytes, list(private_links)]).encode())
    for samples in tracks[:TRACKS_NEEDED]:
        data = np.ascontiguousarray(samples, dtype="<f4")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data.tobytes())
    return digest.hexdigest()


def _complete(root: Path, key: str) -> bool:
    try:
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
        if manifest.get("inputs") != key:
            return False
        return all((root / name).stat().st_size == size
                   for name, size in manifest["files"].items())
    except (OSError, ValueError, KeyError, AttributeError):
        return False


# --- audio ----------------------------------------------------------------------------------

def encode_file(samples: np.ndarray, sample_rate: int, target: Path,
                options: Sequence[str]) -> None:
    """Encode into ``target`` (format from its suffix). Not alter.encode: that pipes its output,
    which cannot make MP4 or HLS, and Ogg and WebM need -bitexact to come out the same."""
    target.parent.mkdir(parents=True, exist_ok=True)
    extra = [str(target.with_name(target.stem + "%d.ts"))] if target.suffix == ".m3u8" else []
    command = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "f32le", "-ar", str(sample_rate),
               "-ac", "1", "-i", "pipe:0", "-map_metadata", "-1", "-fflags", "+bitexact",
               "-flags:a", "+bitexact", *options, *extra, str(target)]
    try:
        done = subprocess.run(command, input=np.asarray(samples, dtype="<f4").tobytes(),
                              capture_output=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DemoSiteError(f"ffmpeg failed on {target.name}: {exc}") from exc
    if done.returncode != 0:
        raise DemoSiteError(f"ffmpeg failed on {target.name}: "
                            f"{done.stderr.decode(errors='replace')[-400:]}")


def _altered(alteration: str, samples: np.ndarray, sample_rate: int,
             noise: np.random.Generator, filler: np.ndarray) -> np.ndarray:
    match alteration:
        case "speed +4%":
            return alter.change_speed(samples, sample_rate, 1.04)
        case "pitch +1 st":
            return alter.shift_pitch(samples, sample_rate, 1.0)
        case "noise 15 dB":
            return alter.add_noise(samples, 15.0, noise)
        case "tempo -5%":
            return alter.change_tempo(samples, sample_rate, 0.95)
        case "low-pass 3 kHz":
            return alter.lowpass(samples, sample_rate, 3000.0)
        case "mixed into 40 s of other audio at 10 s":
            return alter.embed(samples, filler, 10.0, sample_rate)
    return samples  # the encoding is the alteration


def _speech_like(seconds: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """A voice-like buzz: a wandering 100-160 Hz pitch with harmonics, gated into syllables."""
    count = int(seconds * sample_rate)
    pitch = 130 + 30 * np.sin(np.cumsum(rng.normal(0, 0.002, count)))
    phase = 2 * np.pi * np.cumsum(pitch) / sample_rate
    voice = np.zeros(count)
    for harmonic in range(1, 9):
        voice += np.sin(harmonic * phase) / harmonic
    syllable = int(0.18 * sample_rate)
    gates = np.repeat(rng.random(count // syllable + 1) < 0.7, syllable)[:count].astype(float)
    gates = np.convolve(gates, np.hanning(syllable // 3) / (syllable // 6), mode="same")
    mixed = (voice + 0.3 * rng.standard_normal(count)) * gates
    return (0.5 * mixed / (np.max(np.abs(mixed)) or 1.0)).astype(np.float32)


def _write_audio(root: Path, tracks: Sequence[np.ndarray], sample_rate: int, seed: int,
                 oversized_bytes: int, placements: tuple[Placement, ...]) -> None:
    filler = synthesize_track(UNRELATED_SEED + seed + 2, 40.0, sample_rate)
    media = root / "www/media"

    def copy(track: int) -> None:
        start, seconds = placements[track].start, placements[track].seconds
        assert start is not None and seconds is not None
        excerpt = alter.excerpt(tracks[track], sample_rate, start, seconds)
        noise = np.random.default_rng([seed, 1, track])  # per job: the jobs run in any order
        samples = _altered(_COPIES[track].alteration, excerpt, sample_rate, noise, filler)
        encode_file(samples, sample_rate, root / _COPIES[track].file, _COPIES[track].codec)

    def decoy(make: Callable[[], np.ndarray], name: str, options: tuple[str, ...]) -> None:
        encode_file(make(), sample_rate, media / name, options)

    decoys = [
        (lambda: synthesize_track(UNRELATED_SEED + seed, 20.0, sample_rate), "unrelated.mp3",
         _mp3("128k")),
        (lambda: synthesize_track(UNRELATED_SEED + seed + 1, 20.0, sample_rate), "b-side.ogg",
         _VORBIS),
        (lambda: _speech_like(20.0, sample_rate, np.random.default_rng([seed, 2])),
         "episode-2.mp3", _mp3("64k")),
    ]
    # ffmpeg does the work, in its own processes: threads are enough to run them side by side.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        jobs = [pool.submit(copy, track) for track in range(TRACKS_NEEDED)]
        jobs += [pool.submit(decoy, *job) for job in decoys]
        for job in jobs:
            job.result()
    (root / "www/hls/master.m3u8").write_text(
        "#EXTM3U\n#EXT-X-VERSION:3\n"
        '#EXT-X-STREAM-INF:BANDWIDTH=110000,CODECS="mp4a.40.2"\naudio.m3u8\n', encoding="utf-8")
    rng = np.random.default_rng([seed, 3])
    (media / "broken.mp3").write_bytes(  # an ID3 header, then nothing an MP3 decoder can use
        b"ID3\x03\x00\x00\x00" + rng.integers(0, 256, 6000, dtype=np.uint8).tobytes())
    frames = (oversized_bytes - 44 + 1) // 2  # 16-bit mono after a 44-byte header
    with wave.open(str(media / "huge.wav"), "wb") as huge:
        huge.setnchannels(1)
        huge.setsampwidth(2)
        huge.setframerate(sample_rate)
        # One second of noise repeated: the size is what matters, and a large cap (the
        # default is 200 MiB) must not cost the memory of generating it all at once.
        block = (rng.standard_normal(sample_rate) * 800).astype("<i2").tobytes()
        for start in range(0, frames, sample_rate):
            huge.writeframes(block[: 2 * min(sample_rate, frames - start)])


# --- pages ----------------------------------------------------------------------------------

def _file_for(url_path: str) -> str:
    """The file (relative to the site root) a server path is served from."""
    return "www" + (url_path + "index.html" if url_path.endswith("/") else url_path)


def _html(title: str, body: str, head: str = "") -> str:
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{escape(title)}</title>\n{head}</head>\n<body>\n<h1>{escape(title)}</h1>\n"
            f'{body}<p><a href="/">Home</a> · <a href="mailto:{NOTICE_CONTACT}">Copyright '
            f"complaints (DMCA)</a></p>\n</body>\n</html>\n")


def _markup(placement: Placement) -> tuple[str, str]:
    """(head, body) markup embedding ``placement`` on its page in its style."""
    src = escape(placement.path)
    name = escape(DOWNLOAD_NAME if placement.style == "download"
                  else PurePosixPath(urlsplit(placement.path).path).name)
    if placement.style == "open-graph":
        return (f'<meta property="og:title" content="{escape(_PAGES[placement.page])}">\n'
                f'<meta property="og:audio" content="{src}">\n'
                '<meta property="og:audio:type" content="audio/mpeg">\n', "")
    if placement.style == "json-ld":
        data = {"@context": "https://schema.org", "@type": "MusicRecording",
                "name": "Midnight Reissue (remastered)",
                "byArtist": {"@type": "MusicGroup", "name": "The Demo Ensemble"},
                "audio": {"@type": "AudioObject", "contentUrl": placement.path,
                          "encodingFormat": "audio/mp4"}}
        script = json.dumps(data, indent=1).replace("</", "<\\/")
        return f'<script type="application/ld+json">\n{script}\n</script>\n', ""
    if placement.style == "media-tag" and name.endswith(".webm"):
        return "", (f'<video controls width="320"><source src="{src}" type="video/webm">'
                    "</video>\n")
    if placement.style == "media-tag":
        return "", f'<audio controls preload="none" src="{src}"></audio>\n'
    if placement.style == "hls":
        return "", '<p><a href="/hls/master.m3u8">Listen to the stream (HLS)</a></p>\n'
    return "", f'<p><a href="{src}">Download {name}</a></p>\n'


def _write_pages(root: Path, placements: tuple[Placement, ...]) -> None:
    for page, title in _PAGES.items():
        parts = [_markup(p) for p in placements if p.page == page]
        _write(root, _file_for(page), _html(title, "".join(body for _, body in parts),
                                            "".join(head for head, _ in parts)))
    private = [p.path for p in placements if p.expected == "refused"]
    pages = [p for p in _PAGES if p != "/hidden/track.html"]  # found through the sitemap only
    links = ([(page, _PAGES[page]) for page in pages]
             + [("/podcast.xml", "Podcast"), ("/sitemap.xml", "Site map"),
                (TRAP_START, "Events calendar")] + [(url, "Mirror") for url in private])
    body = "<ul>\n" + "".join(f'<li><a href="{escape(url)}">{escape(text)}</a></li>\n'
                              for url, text in links) + "</ul>\n"
    feed_link = '<link rel="alternate" type="application/rss+xml" href="/podcast.xml">\n'
    _write(root, _file_for("/"), _html(INDEX_TITLE, body, feed_link))
    items = "".join(
        f"<item><title>{PurePosixPath(p.path).stem.replace('-', ' ').capitalize()}</title>"
        f"<guid>{PurePosixPath(p.path).stem}</guid><enclosure url={quoteattr(p.path)} "
        f'type="audio/mpeg" length="{(root / _file_for(p.path)).stat().st_size}"/></item>\n'
        for p in placements if p.page == "/podcast.xml")
    _write(root, "www/podcast.xml", '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0">'
           "<channel>\n<title>Demo Podcast</title><link>/</link>"
           f"<description>Weekly episodes</description>\n{items}</channel></rss>\n")
    locs = ["/hidden/track.html", *(p.path for p in placements if p.page == "/sitemap.xml")]
    urls = "".join(f"<url><loc>{escape(loc)}</loc></url>\n" for loc in locs)
    _write(root, "www/sitemap.xml", '<?xml version="1.0" encoding="UTF-8"?>\n'
           f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n{urls}</urlset>\n')


def _write(root: Path, name: str, text: str) -> None:
    target = root / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")


# --- serving --------------------------------------------------------------------------------

@dataclass(frozen=True)
class RequestLog:
    method: str
    path: str  # as requested, query included
    headers: dict[str, str]
    status: int  # the status answered
    at: float  # time.monotonic() when the answer was ready (before it was sent)


@dataclass(frozen=True)
class ReceivedNotice:
    """A notice posted to the site's form: its fields, and the site URLs it named."""

    fields: dict[str, str]
    headers: dict[str, str]
    urls: tuple[str, ...]


@dataclass(frozen=True)
class _Reply:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""


_HTML = "text/html; charset=utf-8"
_TYPES = {".html": _HTML, ".xml": "application/xml", ".mp3": "audio/mpeg", ".ogg": "audio/ogg",
          ".opus": "audio/ogg", ".m4a": "audio/mp4", ".webm": "video/webm", ".wav": "audio/wav",
          ".m3u8": "application/vnd.apple.mpegurl", ".ts": "video/mp2t"}
_CALENDAR = re.compile(re.escape(TRAP_PREFIX) + r"(\d{1,9})/(\d{1,2})")


class DemoServer:
    """Serves a :class:`DemoSite` on ``host`` (IPv4) from a daemon thread; port 0 takes a free
    one. ``requests`` lists every request received, in the order they were answered."""

    def __init__(self, site: DemoSite, host: str = "127.0.0.1", port: int = 0) -> None:
        self.site, self.host, self._port = site, host, port
        self._lock = threading.Lock()
        self._log: list[RequestLog] = []
        self._slow_refused = False
        self._taken_down: set[str] = set()
        self._notices: list[ReceivedNotice] = []
        # A compliant host: paths named in a notice it receives are taken down at once, but
        # for those in ``ignore_notices_for`` (the host that ignores notices).
        self.honour_notices = False
        self.ignore_notices_for: set[str] = set()
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the demo server is not running")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        """The absolute URL of a site path or of a placement's path ("{port}" filled in)."""
        return path.replace("{port}", str(self.port)) if "://" in path else self.base_url + path

    @property
    def requests(self) -> list[RequestLog]:
        with self._lock:
            return list(self._log)

    def start(self) -> DemoServer:
        if self._server is None:
            self._server = _HTTPServer((self.host, self._port), self)
            self._thread = threading.Thread(target=self._server.serve_forever,
                                            kwargs={"poll_interval": 0.05},
                                            name="demo-site", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> DemoServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def taken_down(self) -> set[str]:
        with self._lock:
            return set(self._taken_down)

    @property
    def notices(self) -> list[ReceivedNotice]:
        with self._lock:
            return list(self._notices)

    def take_down(self, path: str) -> None:
        """From now on ``path`` (with its query, if any) answers 410 Gone, as after a host
        acted on a notice."""
        with self._lock:
            self._taken_down.add(_path_and_query(path))

    def _record(self, entry: RequestLog) -> None:
        with self._lock:
            self._log.append(entry)

    def _answer(self, method: str, target: str, headers: Message, body: bytes = b"") -> _Reply:
        if method == "POST" and urlsplit(target).path == NOTICE_FORM_PATH:
            return self._take_notice(headers, body)
        if method not in ("GET", "HEAD"):
            return _Reply(405, (("Allow", "GET, HEAD"), ("Connection", "close")))
        with self._lock:
            gone = _path_and_query(target) in self._taken_down
        if gone:
            return _Reply(410, (("Content-Type", _HTML),),
                          _html("Gone", "<p>Removed after a copyright notice.</p>\n").encode())
        reply = self._resource(target)
        if reply.status == 200 and _not_modified(reply, headers):
            return _Reply(304, tuple(h for h in reply.headers
                                     if h[0] in ("ETag", "Last-Modified")))
        return reply

    def _take_notice(self, headers: Message, body: bytes) -> _Reply:
        fields = _notice_fields(headers, body)
        text = " ".join(fields.values())
        prefix = self.base_url
        urls = tuple(dict.fromkeys(re.findall(re.escape(prefix) + r"/[^\s<>\"']*", text)))
        with self._lock:
            self._notices.append(ReceivedNotice(fields, dict(headers.items()), urls))
            number = len(self._notices)
            if self.honour_notices:
                self._taken_down |= {_path_and_query(u.removeprefix(prefix)) for u in urls} - \
                    self.ignore_notices_for
        answer = json.dumps({"id": f"demo-ticket-{number}", "status": "received"}).encode()
        return _Reply(200, (("Content-Type", "application/json"),), answer)

    def _resource(self, target: str) -> _Reply:
        parts = urlsplit(target)
        path = unquote(parts.path)
        extra: tuple[tuple[str, str], ...] = ()
        if path == "/robots.txt":
            return _ok(f"User-agent: *\nDisallow: {DISALLOWED}\n\n"
                       f"Sitemap: {self.base_url}/sitemap.xml\n".encode(), "text/plain")
        if path == SLOW_PATH:
            with self._lock:
                first, self._slow_refused = not self._slow_refused, True
            if first:
                return _Reply(429, (("Retry-After", "1"), ("Content-Type", _HTML)),
                              _html("Too many requests", "<p>Slow down.</p>\n").encode())
        calendar = _CALENDAR.fullmatch(path)
        if calendar and 1 <= int(calendar[2]) <= 12:
            return _ok(_calendar_page(int(calendar[1]), int(calendar[2])), _HTML)
        if path == "/download":
            if parse_qs(parts.query).get("id") != [DOWNLOAD_ID]:
                return _not_found()
            file: Path | None = self.site.root / "attachments" / DOWNLOAD_NAME
            kind = "text/plain"  # wrong on purpose: the crawler must judge by the bytes
            extra = (("Content-Disposition", f'attachment; filename="{DOWNLOAD_NAME}"'),)
        else:
            file = _served_file(self.site.root, path)
            kind = _TYPES.get(PurePosixPath(path or "/").suffix, _HTML)
        if file is None or not file.is_file():
            return _not_found()
        body = file.read_bytes()
        if path == "/":
            body = body.replace(b"{port}", str(self.port).encode())
        return _ok(body, kind, formatdate(file.stat().st_mtime, usegmt=True), extra)


def _path_and_query(target: str) -> str:
    parts = urlsplit(target)
    return unquote(parts.path) + (f"?{parts.query}" if parts.query else "")


def _notice_fields(headers: Message, body: bytes) -> dict[str, str]:
    if (headers.get("Content-Type") or "").startswith("application/json"):
        try:
            data = json.loads(body)
        except ValueError:
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}


def _served_file(root: Path, path: str) -> Path | None:
    parts = [part for part in _file_for(path).split("/") if part]
    if any(part in (".", "..") or "\\" in part for part in parts):
        return None
    return root.joinpath(*parts)


def _ok(body: bytes, kind: str, last_modified: str | None = None,
        extra: tuple[tuple[str, str], ...] = ()) -> _Reply:
    headers = [("Content-Type", kind), ("ETag", f'"{hashlib.sha256(body).hexdigest()}"')]
    if last_modified:
        headers.append(("Last-Modified", last_modified))
    return _Reply(200, (*headers, *extra), body)


def _not_found() -> _Reply:
    return _Reply(404, (("Content-Type", _HTML),),
                  _html("Not found", "<p>There is nothing here.</p>\n").encode())


def _not_modified(reply: _Reply, headers: Message) -> bool:
    """RFC 9110: If-None-Match decides when present, else If-Modified-Since."""
    ours = dict(reply.headers)
    if headers.get("If-None-Match") is not None:
        tags = [tag.strip().removeprefix("W/") for tag in headers["If-None-Match"].split(",")]
        return "*" in tags or ours["ETag"] in tags
    since, modified = headers.get("If-Modified-Since"), ours.get("Last-Modified")
    if not since or not modified:
        return False
    try:
        return parsedate_to_datetime(modified) <= parsedate_to_datetime(since)
    except (TypeError, ValueError):  # an unreadable date, or one without a zone
        return False


def _calendar_page(year: int, month: int) -> bytes:
    after = f"{TRAP_PREFIX}{year + month // 12}/{month % 12 + 1}"
    return _html(f"Events {year}-{month:02d}", f"<p>No events this month.</p>\n"
                 f'<p><a href="{after}">Next month</a></p>\n').encode()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], demo: DemoServer) -> None:
        self.demo = demo
        super().__init__(address, _Handler)

    def handle_error(self, request: object, client_address: object) -> None:
        # A client hanging up mid-answer (a crawler refusing an oversized file) is normal here.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10  # seconds an idle kept-alive connection may hold its thread
    server: _HTTPServer

    def _respond(self) -> None:
        demo = self.server.demo
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_NOTICE_BYTES:
            self.close_connection = True
            length = 0
        body = self.rfile.read(length) if length > 0 else b""
        reply = demo._answer(self.command, self.path, self.headers, body)
        # Logged before the answer goes out, so a client that has its answer finds it logged.
        demo._record(RequestLog(self.command, self.path, dict(self.headers.items()),
                                reply.status, time.monotonic()))
        self.close_connection = self.close_connection or reply.status == 405
        try:
            self.send_response(reply.status)
            for name, value in reply.headers:
                self.send_header(name, value)
            if reply.status != 304:
                self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if self.command != "HEAD" and reply.status != 304:
                self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):  # the client went away: its business
            self.close_connection = True

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _respond

    def log_message(self, format: str, *args: object) -> None:
        log.debug("demo site: " + format, *args)
