"""What a response points to: realistic pages, feeds, sitemaps and playlists, and hostile ones."""

from __future__ import annotations

import gzip
import random
import time
import tracemalloc
from pathlib import Path

import pytest

from monitor.crawl.discover import (
    MAX_CONTEXT_CHARS,
    MAX_FOUND,
    MAX_PARSE_BYTES,
    Found,
    HlsPlaylist,
    Limits,
    MiB,
    PlaylistError,
    Via,
    discover,
    hls_segments,
    looks_like_audio_url,
    looks_like_download_url,
)

PAGES = Path(__file__).parent / "pages"
BLOG = "https://blog.example.com/2024/night-drive"
MUSIC = "https://music.example.com/t/night-drive"


def page(name: str) -> bytes:
    return (PAGES / name).read_bytes()


def triples(found: list[Found]) -> list[tuple[str, Via, bool]]:
    return [(f.url, f.via, f.media) for f in found]


def test_blog_page_yields_every_embedding_style_in_document_order() -> None:
    cdn = "https://cdn.example.net"  # the page's <base href> is {cdn}/media/
    assert triples(discover(BLOG, "text/html; charset=utf-8", page("blog.html"))) == [
        (f"{cdn}/og/night-drive.mp3", Via.OPEN_GRAPH, True),  # og:audio:secure_url: same URL
        (f"{cdn}/og/night-drive-clip.mp4", Via.OPEN_GRAPH, True),
        (f"{cdn}/media/video/night-drive.webm", Via.OPEN_GRAPH, True),
        ("https://blog.example.com/feed/", Via.PAGE, False),  # not the hreflang alternate
        ("https://blog.example.com/", Via.PAGE, False),
        (f"{cdn}/media/", Via.PAGE, False),  # "#top", against the base, without fragment
        (f"{cdn}/media/tracks/Night%20Drive.MP3", Via.LINK, True),
        (f"{cdn}/files/night-drive.flac?token=abc", Via.LINK, True),
        (f"{cdn}/media/player/night-drive.ogg", Via.MEDIA_TAG, True),
        (f"{cdn}/media/clips/night-drive.webm", Via.MEDIA_TAG, True),
        (f"{cdn}/media/clips/night-drive.mp4", Via.MEDIA_TAG, True),  # <source data-src>
        (f"{cdn}/media/lazy/night-drive.opus", Via.MEDIA_TAG, True),
        (f"{cdn}/media/live/stream.m3u8", Via.PLAYLIST, True),  # not the <picture><source>
        (f"{cdn}/download?id=7", Via.DOWNLOAD, True),
        (f"{cdn}/goodies/stems.zip", Via.DOWNLOAD, True),  # <a download>
        (f"{cdn}/get/9313", Via.DOWNLOAD, True),
        (f"{cdn}/play.php?file=night-drive.wav", Via.DOWNLOAD, True),
        ("https://player.example.org/embed/42", Via.PAGE, False),
        ("https://player.example.org/embed/43", Via.PAGE, False),  # lazy <iframe data-src>
        ("https://blog.example.com/about", Via.PAGE, False),  # whitespace around href
        (f"{cdn}/media/tracks/Night%20Drive.mp3", Via.LINK, True),  # paths are case-sensitive
    ]


def test_contexts_are_short_plain_text() -> None:
    found = {f.url: f.context for f in discover(BLOG, None, page("blog.html"))}
    cdn = "https://cdn.example.net"
    assert found[f"{cdn}/og/night-drive.mp3"] == "Night Drive (free download) HQ"  # og:title
    assert found[f"{cdn}/media/tracks/Night%20Drive.MP3"] == "full track (320 kbps)"
    assert found[f"{cdn}/download?id=7"] == "Download"  # the <script> inside the link is gone
    assert found[f"{cdn}/media/player/night-drive.ogg"] == "Player: Night Drive"
    assert found["https://blog.example.com/feed/"] == "Synth Blog feed"


def test_markup_in_titles_and_link_texts_never_reaches_the_context() -> None:
    body = (b"<html><head><title>Song <script>alert(1)</script><b>x</b> \t\n HQ</title></head>"
            b"<body><audio src='/a.mp3'></audio><a href='/b.mp3'>&lt;img src=x onerror=y&gt;"
            b"B <style>a{}</style><script>evil()</script>side</a>"
            b"<a href='/c.mp3' title='" + b"long " * 100 + b"'></a>"
            b"<a href='/d.mp3' title='cut &lt;img src=x onerror=alert(1)'></a></body></html>")
    contexts = [f.context for f in discover(BLOG, "text/html", body)]
    assert contexts[:2] == ["Song x HQ", "B side"]
    assert contexts[2] == ("long " * 40).strip()
    assert contexts[3] == "cut img src=x onerror=alert(1)"  # a tag without its end
    assert all("<" not in c and ">" not in c and len(c) <= MAX_CONTEXT_CHARS for c in contexts)


def test_first_via_wins_and_the_page_itself_is_not_returned() -> None:
    body = b"""<meta property="og:audio" content="/a.mp3?y=2&x=1">
    <a href="/a.mp3?x=1&y=2#t=3">same file</a> <audio src="/a.mp3?x=1&amp;y=2"></audio>
    <a href="night-drive">this page</a> <a href="/2024/night-drive#comments">comments</a>"""
    assert triples(discover(BLOG, "text/html", body)) == [
        ("https://blog.example.com/a.mp3?x=1&y=2", Via.OPEN_GRAPH, True)]


def test_base_href_is_honoured_only_when_it_is_http() -> None:
    relative = b"<a href='t.mp3'>t</a>"
    assert discover(BLOG, None, b"<base href='//other.example.com/x/'>" + relative)[0].url \
        == "https://other.example.com/x/t.mp3"
    assert discover(BLOG, None, b"<base href='javascript:alert(1)//'>" + relative)[0].url \
        == "https://blog.example.com/2024/t.mp3"


def test_non_http_schemes_and_overlong_urls_are_dropped() -> None:
    long_url = "https://cdn.example.com/" + "a" * 2100 + ".mp3"
    body = f"""<a href="javascript:play('x.mp3')">js</a> <a href="JavaScript:void(0)">js</a>
    <a href="java&#10;script:alert(1)">js</a> <a href="data:audio/mpeg;base64,SUQz">data</a>
    <a href="mailto:a@example.com">mail</a> <a href="ftp://example.com/a.mp3">ftp</a>
    <a href="file:///etc/passwd">file</a> <a href="tel:+4912345">tel</a>
    <audio src="blob:https://example.com/123"></audio> <a href="{long_url}">long</a>
    <a href="http://[::1">broken</a> <a href="http://example.com:99999/a.mp3">port</a>
    <a href="http://user@/a.mp3">no host</a> <a href="http://ok.example.com/ok.mp3">ok</a>"""
    assert triples(discover(BLOG, None, body.encode())) == [
        ("http://ok.example.com/ok.mp3", Via.LINK, True)]


def test_json_ld_media_objects_are_found_however_nested_and_broken_scripts_skipped() -> None:
    assert triples(discover(MUSIC, "text/html", page("recording.html"))) == [
        # the first script is not JSON; the second is wrapped in an HTML comment
        ("https://music.example.com/recordings/night-drive", Via.JSON_LD, False),
        ("https://music.example.com/audio/night-drive.m4a", Via.JSON_LD, True),
        ("https://player.example.org/e/night-drive", Via.JSON_LD, False),  # embedUrl: a player
        ("https://music.example.com/audio/day-drive.mp3", Via.JSON_LD, True),
        ("https://video.example.com/nd.mp4", Via.JSON_LD, True),
        ("https://video.example.com/nd/master.m3u8", Via.PLAYLIST, True),
        ("https://cdn.example.com/a/preview.mp3", Via.JSON_LD, True),  # AudioObject.url
        ("https://music.example.com/audio/bonus.ogg", Via.JSON_LD, True),
    ]
    contexts = [f.context for f in discover(MUSIC, "text/html", page("recording.html"))]
    assert contexts[1] == "Night Drive"  # the AudioObject has no name: its recording's


def test_json_ld_nested_past_the_recursion_limit_is_skipped() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    body = (f'<script type="application/ld+json">{deep}</script>'
            '<script type="application/ld+json">{"@type": "AudioObject",'
            ' "contentUrl": "/ok.mp3"}</script>').encode()
    assert triples(discover(BLOG, None, body)) == [
        ("https://blog.example.com/ok.mp3", Via.JSON_LD, True)]


def test_podcast_rss_enclosures_media_content_and_item_pages() -> None:
    found = discover("https://pod.example.com/feed.rss", "application/rss+xml", page("podcast.rss"))
    assert triples(found) == [
        ("https://pod.example.com/episodes/2", Via.PAGE, False),
        ("https://media.example.com/ep2.mp3?src=rss", Via.FEED, True),
        ("https://media.example.com/ep2.m4a", Via.FEED, True),  # not the image thumbnail
        ("https://pod.example.com/episodes/1", Via.PAGE, False),
        ("https://pod.example.com/audio/ep1.ogg", Via.FEED, True),  # not the PDF enclosure
        ("https://media.example.com/ep1/index.m3u8", Via.PLAYLIST, True),  # in <media:group>
    ]
    assert [f.context for f in found[:2]] == ["Episode 2: Covers"] * 2
    assert found[3].context == "Episode 1: Pilot"


def test_atom_enclosure_links_and_entry_pages() -> None:
    found = discover("https://label.example.com/atom.xml", None, page("news.atom"))
    assert triples(found) == [
        ("https://label.example.com/news/tides", Via.PAGE, False),
        ("https://label.example.com/dl/tides.flac", Via.FEED, True),  # not the PNG enclosure
        ("https://label.example.com/news/live", Via.PAGE, False),
        ("https://label.example.com/live.mp4", Via.FEED, True),
    ]
    assert found[1].context == "New single Tides"


def test_sitemap_pages_and_media_files() -> None:
    found = discover("https://music.example.com/sitemap.xml", "text/xml", page("sitemap.xml"))
    assert triples(found) == [
        ("https://music.example.com/", Via.SITEMAP, False),
        ("https://music.example.com/t/night-drive", Via.SITEMAP, False),  # not the image:loc
        ("https://music.example.com/v/night-drive.mp4", Via.SITEMAP, True),  # video:content_loc
        ("https://music.example.com/audio/night-drive.mp3", Via.SITEMAP, True),
        ("https://music.example.com/t/day-drive?a=1&b=2", Via.SITEMAP, False),  # canonical
    ]


def test_sitemap_index_lists_more_sitemaps() -> None:
    found = discover("https://music.example.com/sitemap.xml", None, page("sitemap-index.xml"))
    assert triples(found) == [
        ("https://music.example.com/sitemap-tracks.xml.gz", Via.SITEMAP, False),
        ("https://music.example.com/sitemap-artists.xml", Via.SITEMAP, False),
    ]


def test_gzipped_sitemap_is_inflated() -> None:
    found = discover("https://music.example.com/sitemap-tracks.xml.gz", "application/x-gzip",
                     gzip.compress(page("sitemap.xml")))
    assert triples(found) == triples(
        discover("https://music.example.com/sitemap.xml", None, page("sitemap.xml")))
    assert len(found) == 5


def test_gzip_bomb_is_inflated_only_up_to_the_limit() -> None:
    head = b"<urlset><url><loc>https://music.example.com/early</loc></url>"
    tail = b"<url><loc>https://music.example.com/late</loc></url></urlset>"
    bomb = gzip.compress(head + b" " * (16 * MiB) + tail, compresslevel=1)
    assert len(bomb) < MiB // 4
    tracemalloc.start()
    try:
        found = discover("https://music.example.com/s.xml.gz", None, bomb,
                         Limits(sitemap_bytes=MiB))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [f.url for f in found] == ["https://music.example.com/early"]
    assert peak < 4 * MiB  # the 16 MiB were never inflated


def test_corrupt_gzip_finds_nothing() -> None:
    assert discover(MUSIC, None, b"\x1f\x8b\x08\x00garbage") == []


def test_master_playlist_yields_its_audio_renditions_then_variants_by_bandwidth() -> None:
    master = "https://cdn.example.com/hls/master.m3u8"
    expected = (
        "https://cdn.example.com/hls/audio/main.m3u8",  # the DEFAULT audio rendition
        "https://cdn.example.com/hls/audio/commentary.m3u8",
        "https://cdn.example.com/hls/audio/only.m3u8",  # an audio-only variant (CODECS)
        "https://cdn.example.com/hls/video/360p.m3u8",
        "https://cdn.example.com/hls/video/1080p.m3u8",  # no subtitles, no I-frame playlist
    )
    playlist = hls_segments(master, page("master.m3u8"))
    assert playlist == HlsPlaylist(variants=expected)
    assert playlist.master
    assert triples(discover(master, "text/plain", page("master.m3u8"))) == [
        (url, Via.PLAYLIST, True) for url in expected]


def test_media_playlist_lists_its_segments_in_order() -> None:
    url = "https://cdn.example.com/hls/audio/main.m3u8"
    assert hls_segments(url, page("media.m3u8")) == HlsPlaylist(
        segments=("https://cdn.example.com/hls/audio/seg-00000.m4s",
                  "https://cdn.example.com/hls/audio/seg-00001.m4s",
                  "https://cdn2.example.com/tail/seg-00002.m4s?sig=x"),
        init_segment="https://cdn.example.com/hls/audio/init.mp4",
        duration=16.5, live=False, encrypted=False)
    assert discover(url, "application/vnd.apple.mpegurl", page("media.m3u8")) == []


def test_live_encrypted_playlist_with_byte_ranges() -> None:
    body = b"""\xef\xbb\xbf#EXTM3U
#EXT-X-TARGETDURATION:4
#EXT-X-MEDIA-SEQUENCE:1200
#EXT-X-KEY:METHOD=AES-128,URI="https://keys.example.com/k1"
#EXT-X-BYTERANGE:1000@0
#EXTINF:4.0,
chunk.ts
#EXT-X-BYTERANGE:1000@1000
#EXTINF:4.0,
chunk.ts
#EXTINF:2.0,
next.ts
"""
    playlist = hls_segments("https://live.example.com/radio/index.m3u8", body)
    assert playlist.segments == ("https://live.example.com/radio/chunk.ts",
                                 "https://live.example.com/radio/next.ts")
    assert (playlist.duration, playlist.live, playlist.encrypted) == (10.0, True, True)
    assert not playlist.master


@pytest.mark.parametrize(("tags", "live"), [
    ("#EXT-X-ENDLIST", False),
    ("#EXT-X-PLAYLIST-TYPE:VOD", False),  # cannot change, even without its end tag
    ("#EXT-X-PLAYLIST-TYPE:EVENT", True),
    ("", True),
])
def test_a_playlist_without_its_end_is_live(tags: str, live: bool) -> None:
    body = f"#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\na.ts\n{tags}\n".encode()
    assert hls_segments("https://cdn.example.com/x.m3u8", body).live is live


@pytest.mark.parametrize("body", [
    b"",
    b"<html>not a playlist</html>",
    b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=fast\nv.m3u8\n",
    b"#EXTM3U\n#EXTINF:abc,\nseg.ts\n",
    b"#EXTM3U\n#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1\n",
])
def test_what_is_no_hls_playlist_raises_playlist_error(body: bytes) -> None:
    with pytest.raises(PlaylistError):
        hls_segments("https://cdn.example.com/x.m3u8", body)
    assert discover("https://cdn.example.com/x.m3u8", None, body) == []


def test_an_oversized_playlist_is_refused_rather_than_cut() -> None:
    body = b"#EXTM3U\n" + b"#EXTINF:1,\nseg.ts\n" * 100 + b"#EXT-X-ENDLIST\n"
    with pytest.raises(PlaylistError):
        hls_segments("https://cdn.example.com/x.m3u8", body, Limits(parse_bytes=len(body) - 1))
    assert len(hls_segments("https://cdn.example.com/x.m3u8", body).segments) == 100


def test_the_body_decides_not_a_lying_content_type() -> None:
    feed, html = page("podcast.rss"), page("blog.html")
    assert discover("https://pod.example.com/f", "text/html", feed) == discover(
        "https://pod.example.com/f", "application/rss+xml", feed)
    assert discover(BLOG, "application/rss+xml", html) == discover(BLOG, "text/html", html)
    assert discover(BLOG, "audio/mpeg", html) == discover(BLOG, None, html)
    assert discover(BLOG, "text/html", b"ID3\x04\x00<a href='/x.mp3'>") == []  # it is audio


def test_charset_from_meta_when_the_header_has_none_or_a_bogus_one() -> None:
    body = ('<meta charset="iso-8859-1"><a href="/caf\xe9.mp3">Caf\xe9 del Mar</a>'
            ).encode("latin-1")
    for content_type in (None, "text/html", "text/html; charset=bogus-42"):
        [found] = discover(BLOG, content_type, body)
        assert (found.url, found.context) == ("https://blog.example.com/caf%C3%A9.mp3",
                                              "Caf\xe9 del Mar")


def test_a_wrong_charset_still_yields_the_ascii_urls() -> None:
    body = '<a href="/song.mp3">Caf\xe9</a>'.encode("latin-1")  # but declared UTF-8
    [found] = discover(BLOG, "text/html; charset=utf-8", body)
    assert found.url == "https://blog.example.com/song.mp3"


@pytest.mark.parametrize("body", [
    b"",
    b"   \r\n\t ",
    b"\x00\x01\x02\xff\xfe\xfd" * 500,
    bytes(random.Random(7).randbytes(20_000)),
    b"<",
    b"<?xml",
    b"<rss",
    b"<urlset><url><loc>",
    b"\xef\xbb\xbf",
    "<html><body>\ud800</body>".encode("utf-8", "surrogatepass"),
])
def test_garbage_finds_nothing(body: bytes) -> None:
    assert discover(BLOG, "text/html", body) == []


def test_malformed_html_is_read_as_browsers_would() -> None:
    body = (b"<html><head><title>Broken</title><body><div><p><a href='/one.mp3'>one"
            b"<table><tr><td><a href=/two.mp3 >two</td></tr>"
            b"<audio src='/three.ogg'><source src='/four.ogg'>\x00\xff\xfe"
            b"<a href=\"/five.mp3\">five</a><!-- <a href='/hidden.mp3'> --><p><a href='/six.mp3'")
    assert [f.url.rsplit("/", 1)[1] for f in discover(BLOG, None, body)] == [
        "one.mp3", "two.mp3", "three.ogg", "four.ogg", "five.mp3"]  # six: a tag cut at EOF


def test_deeply_nested_html_does_not_raise() -> None:
    nested = b"<div>" * 100_000 + b"<a href='/deep.mp3'>deep</a>" + b"</div>" * 100_000
    found = discover(BLOG, None, b"<a href='/top.mp3'>top</a>" + nested)
    assert found[0].url == "https://blog.example.com/top.mp3"  # libxml2 drops what is too deep


def test_only_the_first_max_parse_bytes_of_a_huge_page_are_read() -> None:
    filler = b"<p>" + b"la " * 1000 + b"</p>\n"
    early = b"<html><body><a href='/early.mp3'>early</a>"
    body = early + filler * (MAX_PARSE_BYTES // len(filler) + 10) + b"<a href='/late.mp3'>"
    assert len(body) > MAX_PARSE_BYTES
    started = time.monotonic()
    assert [f.url for f in discover(BLOG, None, body)] == ["https://blog.example.com/early.mp3"]
    assert time.monotonic() - started < 5  # only a catastrophe is this slow


def test_at_most_max_found_urls_and_media_outlast_pages() -> None:
    links = "".join(f'<a href="/p/{i}">{i}</a>' for i in range(MAX_FOUND + 1000))
    body = (links + '<audio src="/late.ogg"></audio>').encode()
    found = discover(BLOG, None, body)
    assert len(found) == MAX_FOUND
    assert found[-1] == Found("https://blog.example.com/late.ogg", Via.MEDIA_TAG, True)
    assert found[-2].url == f"https://blog.example.com/p/{MAX_FOUND - 2}"
    assert len(discover(BLOG, None, body, Limits(found=10))) == 10


def test_billion_laughs_are_not_expanded() -> None:
    entities = "".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i else "lol"}">' for i in range(10))
    body = (f'<?xml version="1.0"?><!DOCTYPE urlset [{entities}]><urlset>'
            f'<url><loc>https://music.example.com/&lol9;</loc></url></urlset>').encode()
    started = time.monotonic()
    found = discover(MUSIC, "application/xml", body)
    assert time.monotonic() - started < 5  # only a catastrophe is this slow
    assert all("lol" not in f.url for f in found)


@pytest.mark.parametrize("template", [
    '<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x SYSTEM "{uri}">]><rss><channel><item>'
    '<title>&x;</title><enclosure url="https://pod.example.com/&x;.mp3"/></item></channel></rss>',
    '<?xml version="1.0"?><!DOCTYPE urlset [<!ENTITY x SYSTEM "{uri}">]>'
    '<urlset><url><loc>https://music.example.com/&x;</loc></url></urlset>',
    '<?xml version="1.0"?><!DOCTYPE feed [<!ENTITY % x SYSTEM "{uri}"> %x;]>'
    '<feed xmlns="http://www.w3.org/2005/Atom"><entry><title>t</title>'
    '<link rel="enclosure" href="https://label.example.com/a.mp3"/></entry></feed>',
])
def test_external_entities_are_not_read(tmp_path: Path, template: str) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    found = discover(MUSIC, "application/xml", template.format(uri=secret.as_uri()).encode())
    assert found  # the document is still read
    assert all("TOPSECRET" not in f.url + f.context for f in found)


def test_no_mutation_of_a_fixture_makes_discover_raise() -> None:
    rng = random.Random(20240501)
    for name in sorted(p.name for p in PAGES.iterdir()):
        original = page(name)
        for _ in range(60):
            body = bytearray(original)
            for _ in range(rng.randint(1, 8)):
                position = rng.randrange(len(body))
                if rng.random() < 0.5:
                    del body[position:position + rng.randint(1, 40)]
                else:
                    body[position:position] = rng.choice(
                        [b"<", b">", b'"', b"&", b"\x00", b"\xff", b"]]>", b"<!--", b"#EXT",
                         b",", b"=", b"\n", b"<script>", b"{", b"["])
            discover(MUSIC, None, bytes(body))  # must not raise


@pytest.mark.parametrize(("url", "audio"), [
    ("https://a.example.com/x/Song.MP3", True),
    ("https://a.example.com/x/song.opus?token=1#t=2", True),
    ("https://a.example.com/x/song.aif;jsessionid=9", True),
    ("https://a.example.com/x/song.mp3.html", False),
    ("https://a.example.com/mp3", False),
    ("https://a.example.com/x?f=song.mp3", False),
])
def test_looks_like_audio_url(url: str, audio: bool) -> None:
    assert looks_like_audio_url(url) is audio


@pytest.mark.parametrize(("url", "download"), [
    ("https://a.example.com/download", True),
    ("https://a.example.com/track/7/download/", True),
    ("https://a.example.com/download.php?id=7", True),
    ("https://a.example.com/dl/abc", True),
    ("https://a.example.com/get/abc", True),
    ("https://a.example.com/track?id=7&download=1", True),
    ("https://a.example.com/stream.php?file=a.flac", True),
    ("https://a.example.com/downloads", False),
    ("https://a.example.com/get-started", False),
    ("https://a.example.com/blog/how-to-download-music", False),
])
def test_looks_like_download_url(url: str, download: bool) -> None:
    assert looks_like_download_url(url) is download


def test_mailto_links_for_copyright_or_abuse_reports_are_notice_contacts() -> None:
    body = b"""<footer>
    <a href="mailto:DMCA@Pirate.example?subject=notice">Copyright complaints</a>
    <a href="mailto:abuse@host.example">Report</a>
    <a href="MAILTO:%20legal%40pirate.example">Write to us</a>
    <a href="mailto:hello@pirate.example">Say hello</a>
    <a href="mailto:dmca@pirate.example">DMCA again</a>
    <a href="mailto:not-an-address">copyright</a>
    <a title="Urheberrecht" href="mailto:recht@pirate.example">&lt;script&gt;x</a>
    <a href="/about">About</a></footer>"""
    found = discover(BLOG, None, body)
    contacts = [(f.url, f.context) for f in found if f.via is Via.CONTACT]
    assert contacts == [
        ("mailto:dmca@pirate.example", "Copyright complaints"),
        ("mailto:abuse@host.example", "Report"),
        ("mailto:legal@pirate.example", "Write to us"),
        ("mailto:recht@pirate.example", "x"),  # markup never reaches the evidence
    ]
    # contacts never become requests, and come after what is to be fetched
    assert triples(found)[0] == ("https://blog.example.com/about", Via.PAGE, False)
