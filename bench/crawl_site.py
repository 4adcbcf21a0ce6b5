"""The generated sites of ``make bench-crawl`` (bench.crawl) and the server that serves them.

:func:`html_site` writes a site of HTML pages and no audio: a home page, section indexes and
content pages of about 25 kB, each with a navigation bar, breadcrumbs, related-page links,
previous/next links and a few links to other hosts (which the crawler must not follow). Every
page is at most two links from the home page.

:func:`audio_site` writes a site of 3-minute tracks (``fingerprints.synth.synthesize_track``,
encoded to MP3 128 kbit/s, 44.1 kHz stereo with ffmpeg) linked from about 20 pages, by
``<a href>`` or ``<audio src>``. The first ``copies`` files are full copies of the catalog
tracks written next to the site as FLAC (to be imported with ``copyguard catalog import``); the
others are music no catalog holds.

Both are written once under ``bench/cache/crawl-site-<kind>-<key>/``, where the key hashes the
inputs and this module's source; ``manifest.json``, written last, marks a complete site, and a
later call with the same inputs reuses it.

:class:`StaticServer` serves a folder with ``python -m http.server`` (threaded, HTTP/1.1) in a
process of its own, so that serving does not compete with the crawler for its interpreter lock;
it still runs on the same cores, and reports the CPU time it used. Reads no settings.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import soundfile as sf

from fingerprints.synth import synthesize_track
from monitor.demo_site import encode_file

MANIFEST = "manifest.json"
SECTIONS = 20  # section indexes of the HTML site, all linked from every page
RELATED_LINKS = 10  # links to other content pages on each content page
EXTERNAL_LINKS = 3  # links to other hosts on each content page
PARAGRAPHS = 40  # paragraphs of text on a content page (about 25 kB with the markup)
AUDIO_PAGES = 20  # pages the audio files are linked from
TRACK_SECONDS = 180.0
SYNTH_RATE = 22050  # synthesize_track's rate; the MP3s are upsampled to 44.1 kHz stereo
CATALOG_SEED = 1  # catalog track i is seed CATALOG_SEED + i
UNRELATED_SEED = 700_000  # far from the catalog's seeds
_MP3 = ("-ar", "44100", "-ac", "2", "-c:a", "libmp3lame", "-b:a", "128k")
_WORDS = ("music", "album", "track", "release", "free", "download", "stream", "live", "session",
          "remix", "bootleg", "upload", "artist", "band", "record", "label", "vinyl", "tape",
          "concert", "tour", "festival", "night", "city", "radio", "show", "new", "old", "best",
          "top", "weekly", "chart", "playlist", "mix", "edit", "version", "original", "cover",
          "acoustic", "electric", "guitar", "piano", "drums", "bass", "voice", "choir", "string",
          "orchestra", "song", "single")
_EXTERNAL = ("https://social.example/share?u=", "https://cdn.example.net/ads/",
             "https://forum.example.org/thread/")


class SiteError(RuntimeError):
    """A site could not be made or served."""


@dataclass(frozen=True)
class HtmlSite:
    root: Path  # the folder served
    pages: int  # HTML pages, the home page and section indexes included
    bytes: int  # their total size


@dataclass(frozen=True)
class AudioSite:
    root: Path  # the folder served
    catalog: Path  # the catalog tracks as FLAC, named after their titles
    copies: dict[str, str]  # URL path of each catalog copy -> the title it copies
    unrelated: tuple[str, ...]  # URL paths of the files no catalog holds
    pages: int  # HTML pages, the home page included
    track_seconds: float  # length of every file
    bytes: int  # size of the audio files


def html_site(cache: Path, pages: int, seed: int) -> HtmlSite:
    """A site of ``pages`` content pages (plus the home page and section indexes)."""
    if pages < SECTIONS:
        raise ValueError(f"the HTML site needs at least {SECTIONS} pages, not {pages}")
    folder = _folder(cache, "html", {"pages": pages, "seed": seed})
    manifest = _manifest(folder)
    if manifest is None:
        _write_html(folder / "www", pages, np.random.default_rng([seed, 1]))
        manifest = _finish(folder, {})
    files = manifest["files"]
    return HtmlSite(folder / "www", sum(name.endswith(".html") for name in files),
                    sum(size for name, size in files.items() if name.endswith(".html")))


def audio_site(cache: Path, files: int, copies: int, seed: int) -> AudioSite:
    """A site of ``files`` 3-minute MP3s, the first ``copies`` of them catalog copies."""
    if not 0 <= copies <= files:
        raise ValueError(f"copies must be between 0 and files ({files}), not {copies}")
    folder = _folder(cache, "audio", {"files": files, "copies": copies, "seed": seed,
                                      "seconds": TRACK_SECONDS})
    manifest = _manifest(folder)
    if manifest is None:
        layout = _write_audio(folder, files, copies, np.random.default_rng([seed, 2]))
        manifest = _finish(folder, layout)
    layout = manifest["layout"]
    return AudioSite(folder / "www", folder / "catalog", dict(layout["copies"]),
                     tuple(layout["unrelated"]), layout["pages"], TRACK_SECONDS,
                     sum(size for name, size in manifest["files"].items()
                         if name.startswith("www/media/")))


# --- caching ---------------------------------------------------------------------------------

def _folder(cache: Path, kind: str, inputs: dict[str, float]) -> Path:
    digest = hashlib.sha256(Path(__file__).read_bytes())  # other code makes another site
    digest.update(json.dumps(inputs, sort_keys=True).encode())
    return cache / f"crawl-site-{kind}-{digest.hexdigest()[:12]}"


def _manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest of a complete site in ``folder``, or None (and the folder emptied)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        if all((folder / name).stat().st_size == size
               for name, size in manifest["files"].items()):
            return manifest
    except (OSError, ValueError, KeyError, TypeError):
        pass
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return None


def _finish(folder: Path, layout: dict[str, Any]) -> dict[str, Any]:
    files = {str(p.relative_to(folder)): p.stat().st_size
             for p in sorted(folder.rglob("*")) if p.is_file()}
    manifest = {"files": files, "layout": layout}
    temporary = folder / (MANIFEST + ".part")  # written last: a site without it is incomplete
    temporary.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    temporary.replace(folder / MANIFEST)
    return manifest


# --- HTML ------------------------------------------------------------------------------------

def _text(rng: np.random.Generator, paragraphs: int) -> str:
    words = np.asarray(_WORDS)[rng.integers(0, len(_WORDS), size=(paragraphs, 90))]
    return "\n".join(f"<p>{' '.join(row).capitalize()}.</p>" for row in words)


def _page(title: str, body: str, nav: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}'
            '</title><link rel="stylesheet" href="/style.css"></head>\n<body>\n'
            f'<header><a href="/">Home</a> | {nav}</header>\n<main><h1>{title}</h1>\n{body}\n'
            "</main>\n<footer>Uploads are checked by our staff.</footer>\n</body></html>\n")


def _content_path(number: int) -> str:
    return f"/section-{number % SECTIONS:02d}/page-{number:05d}.html"


def _write_html(www: Path, pages: int, rng: np.random.Generator) -> None:
    nav = " | ".join(f'<a href="/section-{s:02d}/">Section {s}</a>' for s in range(SECTIONS))
    for s in range(SECTIONS):
        (www / f"section-{s:02d}").mkdir(parents=True)
    (www / "robots.txt").write_text("User-agent: *\nDisallow:\n", encoding="utf-8")
    (www / "index.html").write_text(_page("Free music archive", _text(rng, 5), nav),
                                    encoding="utf-8")
    for s in range(SECTIONS):
        listing = "\n".join(f'<li><a href="{_content_path(n)}">Post {n}</a></li>'
                            for n in range(s, pages, SECTIONS))
        (www / f"section-{s:02d}/index.html").write_text(
            _page(f"Section {s}", f"{_text(rng, 2)}\n<ul>\n{listing}\n</ul>", nav),
            encoding="utf-8")
    for n in range(pages):
        related = "\n".join(f'<li><a href="{_content_path(int(r))}">Post {int(r)}</a></li>'
                            for r in rng.integers(0, pages, RELATED_LINKS))
        external = " ".join(f'<a href="{prefix}{n}">elsewhere</a>' for prefix in _EXTERNAL)
        body = (f'<nav><a href="/">Home</a> &gt; <a href="/section-{n % SECTIONS:02d}/">'
                f"Section {n % SECTIONS}</a></nav>\n{_text(rng, PARAGRAPHS)}\n"
                f"<h2>Related</h2><ul>\n{related}\n</ul>\n"
                f'<p><a href="{_content_path((n - 1) % pages)}">Previous</a> '
                f'<a href="{_content_path((n + 1) % pages)}#comments">Next</a> {external}</p>')
        (www / _content_path(n).lstrip("/")).write_text(_page(f"Post {n}", body, nav),
                                                         encoding="utf-8")


# --- audio -----------------------------------------------------------------------------------

def _write_audio(folder: Path, files: int, copies: int,
                 rng: np.random.Generator) -> dict[str, Any]:
    (folder / "catalog").mkdir()
    (folder / "www/media").mkdir(parents=True)
    titles = [f"bench-track-{i + 1:02d}" for i in range(copies)]
    order = rng.permutation(files)  # where each file is linked, and its name, hide its kind
    paths = [f"/media/upload-{int(order[i]) + 1:03d}.mp3" for i in range(files)]

    def make(i: int) -> None:
        seed = CATALOG_SEED + i if i < copies else UNRELATED_SEED + i
        samples = synthesize_track(seed=seed, seconds=TRACK_SECONDS, sample_rate=SYNTH_RATE)
        if i < copies:
            sf.write(folder / "catalog" / f"{titles[i]}.flac", samples, SYNTH_RATE,
                     subtype="PCM_16")
        encode_file(samples, SYNTH_RATE, folder / "www" / paths[i].lstrip("/"), _MP3)

    # ffmpeg encodes in processes of its own and numpy releases the lock: threads suffice.
    with ThreadPoolExecutor(max_workers=len(os.sched_getaffinity(0))) as pool:
        for job in [pool.submit(make, i) for i in range(files)]:
            job.result()
    pages = max(1, min(AUDIO_PAGES, files))
    by_page: list[list[str]] = [[] for _ in range(pages)]
    for i, path in enumerate(sorted(paths)):
        by_page[i % pages].append(path)
    www = folder / "www"
    (www / "robots.txt").write_text("User-agent: *\nDisallow:\n", encoding="utf-8")
    nav = " | ".join(f'<a href="/music/page-{p:02d}.html">Uploads {p}</a>'
                     for p in range(pages))
    (www / "index.html").write_text(_page("Free music", _text(rng, 8), nav), encoding="utf-8")
    (www / "music").mkdir()
    for p, listed in enumerate(by_page):
        items = "\n".join(
            f'<li><audio controls src="{path}"></audio></li>' if k % 2 else
            f'<li><a href="{path}">Download {Path(path).stem}</a></li>'
            for k, path in enumerate(listed))
        (www / f"music/page-{p:02d}.html").write_text(
            _page(f"Uploads {p}", f"{_text(rng, 8)}\n<ul>\n{items}\n</ul>", nav),
            encoding="utf-8")
    return {"copies": {paths[i]: titles[i] for i in range(copies)},
            "unrelated": paths[copies:], "pages": pages + 1}


# --- serving ---------------------------------------------------------------------------------

class StaticServer:
    """``python -m http.server`` on 127.0.0.1 over ``root``, in a process of its own."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = 0
        self.cpu_seconds = 0.0  # user + system time of the server process, once stopped
        self._process: subprocess.Popen[str] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> StaticServer:
        self._process = subprocess.Popen(
            [sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1",
             "--protocol", "HTTP/1.1", "--directory", str(self.root)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self._process.stdout is not None
        line = self._process.stdout.readline()  # "Serving HTTP on 127.0.0.1 port N (...) ..."
        found = re.search(r" port (\d+)", line)
        if found is None:
            self.stop()
            raise SiteError(f"http.server did not start: {line!r}")
        self.port = int(found.group(1))
        return self

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.send_signal(signal.SIGINT)
        try:
            _, _, usage = os.wait4(self._process.pid, 0)
        except ChildProcessError:
            return
        self._process.returncode = -signal.SIGINT
        self.cpu_seconds = usage.ru_utime + usage.ru_stime
        self._process = None

    def __enter__(self) -> StaticServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()


def describe(site: HtmlSite | AudioSite) -> dict[str, Any]:
    data = asdict(site)
    data["root"] = str(site.root)
    if isinstance(site, AudioSite):
        data["catalog"] = str(site.catalog)
    return data
