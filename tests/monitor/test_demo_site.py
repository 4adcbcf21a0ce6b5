"""The demonstration web site (monitor.demo_site), over real HTTP on 127.0.0.1.

One site is built for the module and served by one server; tests that depend on the server's
state (the 429 on the first request, the request log) start their own server on it."""

from __future__ import annotations

import http.client
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import formatdate
from html import escape
from pathlib import Path

import numpy as np
import pytest

from fingerprints import DecodeError, decode_bytes
from fingerprints.synth import synthesize_track
from monitor.demo_site import TRACKS_NEEDED, DemoServer, DemoSite, Placement, build_site

pytestmark = pytest.mark.slow  # the site takes several seconds of ffmpeg to build

RATE = 22050
OVERSIZED = 512 * 1024
PRIVATE = ("http://10.255.255.1/stolen.mp3", "http://localhost:{port}/media/blog-64k.mp3")
# How long each catalog copy decodes to, from the excerpt's length.
DURATION = {"speed +4%": lambda s: s / 1.04, "tempo -5%": lambda s: s / 0.95,
            "mixed into 40 s of other audio at 10 s": lambda s: 40.0}


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes


def fetch(server: DemoServer, path: str, headers: dict[str, str] | None = None,
          method: str = "GET") -> Reply:
    connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()},
                     response.read())
    finally:
        connection.close()


@pytest.fixture(scope="module")
def tracks() -> list[np.ndarray]:
    return [synthesize_track(seed, 30.0, RATE) for seed in range(1, TRACKS_NEEDED + 1)]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, tracks: list[np.ndarray]) -> DemoSite:
    return build_site(tmp_path_factory.mktemp("demo-site"), tracks, RATE,
                      oversized_bytes=OVERSIZED, private_links=PRIVATE)


@pytest.fixture(scope="module")
def server(site: DemoSite) -> Iterator[DemoServer]:
    with DemoServer(site) as running:
        yield running


def test_placements_cover_every_embedding_style_once_per_track(site: DemoSite) -> None:
    copies = [p for p in site.placements if p.track is not None]
    assert sorted(p.track or 0 for p in copies) == list(range(TRACKS_NEEDED))
    assert {p.style for p in site.expected("detection")} == {
        "link", "media-tag", "open-graph", "json-ld", "feed-enclosure", "sitemap", "hls",
        "download"}
    assert {p.expected for p in site.placements} == {
        "detection", "no-match", "failed", "too-large", "not-found", "robots", "refused"}
    assert [p.path for p in site.expected("refused")] == list(PRIVATE)
    assert len({p.path for p in site.placements}) == len(site.placements)
    for copy in copies:
        assert copy.seconds is not None and 15.0 <= copy.seconds <= 25.0
        assert copy.start is not None and copy.start + copy.seconds <= 30.0


def test_every_audio_placement_is_served_and_decodes(server: DemoServer,
                                                     site: DemoSite) -> None:
    audible = [p for p in site.placements
               if p.expected in ("detection", "no-match", "robots")]
    for placement in audible:
        if placement.style == "hls":
            body = _joined_hls(server, placement)
        else:
            reply = fetch(server, placement.path)
            assert reply.status == 200, placement
            body = reply.body
        audio = decode_bytes(body, sample_rate=RATE)
        seconds = len(audio.samples) / RATE
        if placement.seconds is not None:
            wanted = DURATION.get(placement.alteration, lambda s: s)(placement.seconds)
            assert abs(seconds - wanted) < 0.5, (placement, seconds)
        else:
            assert seconds > 10, placement


def _joined_hls(server: DemoServer, placement: Placement) -> bytes:
    master = fetch(server, "/hls/master.m3u8")
    assert master.status == 200 and master.body.startswith(b"#EXTM3U")
    assert b"audio.m3u8" in master.body and placement.path == "/hls/audio.m3u8"
    playlist = fetch(server, placement.path).body.decode()
    assert "#EXT-X-ENDLIST" in playlist
    segments = [line for line in playlist.splitlines() if line and not line.startswith("#")]
    assert 3 <= len(segments) <= 6
    parts = [fetch(server, f"/hls/{segment}") for segment in segments]
    assert all(p.status == 200 and p.headers["content-type"] == "video/mp2t" for p in parts)
    return b"".join(p.body for p in parts)


def test_decoys_fail_each_in_their_own_way(server: DemoServer) -> None:
    broken = fetch(server, "/media/broken.mp3")
    assert broken.status == 200 and broken.body.startswith(b"ID3")
    with pytest.raises(DecodeError):
        decode_bytes(broken.body)
    huge = fetch(server, "/media/huge.wav", method="HEAD")
    assert huge.status == 200 and huge.body == b""
    assert int(huge.headers["content-length"]) >= OVERSIZED
    assert fetch(server, "/media/huge.wav").body[:4] == b"RIFF"
    missing = fetch(server, "/media/missing.mp3")
    assert missing.status == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert missing.body.startswith(b"<!DOCTYPE html>")


def test_every_placement_is_on_its_page_and_every_page_is_reachable(
        server: DemoServer, site: DemoSite) -> None:
    index = fetch(server, "/").body.decode()
    for placement in site.placements:
        page = fetch(server, placement.page)
        if placement.page == site.slow_path and page.status == 429:
            time.sleep(1)
            page = fetch(server, placement.page)
        assert page.status == 200, placement
        linked = {"hls": "/hls/master.m3u8"}.get(placement.style, server.url(placement.path))
        linked = linked.removeprefix(server.base_url)
        assert escape(linked) in page.body.decode(), placement
        if placement.page == "/hidden/track.html":  # found through the sitemap only
            assert placement.page not in index
            assert f"<loc>{placement.page}</loc>" in fetch(server, "/sitemap.xml").body.decode()
        elif placement.page != "/":
            assert f'href="{placement.page}"' in index


def test_robots_txt_disallows_the_private_folder(server: DemoServer) -> None:
    robots = fetch(server, "/robots.txt")
    assert robots.status == 200
    assert robots.headers["content-type"] == "text/plain"
    text = robots.body.decode()
    assert text.startswith("User-agent: *\nDisallow: /private/\n")
    assert f"Sitemap: {server.base_url}/sitemap.xml" in text


def test_conditional_requests_answer_304(server: DemoServer) -> None:
    for path in ("/blog/", "/media/blog-64k.mp3"):
        first = fetch(server, path)
        etag, modified = first.headers["etag"], first.headers["last-modified"]
        assert re.fullmatch(r'"[0-9a-f]{64}"', etag)
        for headers in ({"If-None-Match": etag}, {"If-None-Match": f'"other", W/{etag}'},
                        {"If-Modified-Since": modified}):
            again = fetch(server, path, headers)
            assert (again.status, again.body, again.headers["etag"]) == (304, b"", etag)
        changed = fetch(server, path, {"If-None-Match": '"other"', "If-Modified-Since": modified})
        assert changed.status == 200 and changed.body == first.body
        older = formatdate(0, usegmt=True)
        assert fetch(server, path, {"If-Modified-Since": older}).status == 200


def test_slow_page_answers_429_once_then_200(site: DemoSite) -> None:
    with DemoServer(site) as fresh:
        first = fetch(fresh, site.slow_path)
        assert first.status == 429 and first.headers["retry-after"] == "1"
        second = fetch(fresh, site.slow_path)
        assert second.status == 200 and b'href="/media/b-side.ogg"' in second.body
        assert fetch(fresh, site.slow_path).status == 200


def test_calendar_trap_never_ends(server: DemoServer, site: DemoSite) -> None:
    path, seen = site.trap_start, []
    assert path.startswith(site.trap_prefix)
    assert f'href="{path}"' in fetch(server, "/").body.decode()
    for _ in range(40):
        page = fetch(server, path)
        assert page.status == 200
        seen.append(path)
        following = re.search(rb'<a href="([^"]+)">Next month</a>', page.body)
        assert following is not None
        path = following[1].decode()
    assert len(set(seen)) == 40 and seen[-1] == "/calendar/2029/4"
    assert fetch(server, f"{site.trap_prefix}987654/3").status == 200
    assert fetch(server, f"{site.trap_prefix}2026/13").status == 404


def test_download_endpoint_names_an_attachment_with_the_wrong_type(
        server: DemoServer, site: DemoSite) -> None:
    placement = site.placement("/download?id=7")
    reply = fetch(server, placement.path)
    assert reply.status == 200
    assert reply.headers["content-disposition"] == 'attachment; filename="track7.mp3"'
    assert reply.headers["content-type"] == "text/plain"
    assert reply.body.startswith(b"ID3") and "etag" in reply.headers
    assert fetch(server, "/download?id=8").status == 404
    assert fetch(server, "/download").status == 404


def test_index_title_is_hostile_text_escaped_in_the_source(server: DemoServer,
                                                           site: DemoSite) -> None:
    index = fetch(server, "/").body.decode()
    assert site.title == "Free music downloads <script>alert(1)</script>"
    assert "<title>Free music downloads &lt;script&gt;alert(1)&lt;/script&gt;</title>" in index
    assert "<script>" not in index
    # private links are absolute, with the serving port filled in
    assert f'href="http://localhost:{server.port}/media/blog-64k.mp3"' in index
    assert 'href="http://10.255.255.1/stolen.mp3"' in index and "{port}" not in index


def test_second_build_reuses_the_site(site: DemoSite, tracks: list[np.ndarray]) -> None:
    def stamps() -> dict[Path, int]:
        return {p: p.stat().st_mtime_ns for p in site.root.rglob("*") if p.is_file()}

    before = stamps()
    again = build_site(site.root, tracks, RATE, oversized_bytes=OVERSIZED, private_links=PRIVATE)
    assert again == site
    assert stamps() == before


def test_incomplete_site_is_built_again(site: DemoSite, tracks: list[np.ndarray],
                                        tmp_path: Path) -> None:
    copy = tmp_path / "site"
    shutil.copytree(site.root, copy)
    (copy / "www/media/og-noisy.mp3").unlink()
    rebuilt = build_site(copy, tracks, RATE, oversized_bytes=OVERSIZED, private_links=PRIVATE)
    assert rebuilt.placements == site.placements
    assert ((copy / "www/media/og-noisy.mp3").read_bytes()
            == (site.root / "www/media/og-noisy.mp3").read_bytes())  # the same bytes again


def test_request_log_records_every_request(site: DemoSite) -> None:
    with DemoServer(site) as fresh:
        fetch(fresh, "/og.html", {"X-Probe": "one"}, method="HEAD")
        fetch(fresh, "/nowhere")
        fetch(fresh, "/", method="POST")
        logged = fresh.requests
    assert [(r.method, r.path, r.status) for r in logged] == [
        ("HEAD", "/og.html", 200), ("GET", "/nowhere", 404), ("POST", "/", 405)]
    assert logged[0].headers["X-Probe"] == "one"
    assert logged[0].at <= logged[1].at <= logged[2].at
