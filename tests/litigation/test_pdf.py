"""The dossier PDF: WeasyPrint output checked by rendering its pages with pdfium."""

from __future__ import annotations

import base64
import http.server
import io
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from litigation.pdf import html_to_pdf
from tests.litigation.pdf_tools import (
    pdf_glyph_pixels,
    pdf_page_count,
    pdf_page_fonts,
    pdf_page_pixels,
    pdf_page_png,
    pdf_page_size,
    pdf_page_text,
)

A4_POINTS = (595.28, 841.89)  # 210 x 297 mm
CHINESE = "著作权侵权证据：版权所有"
RED = (220, 20, 30)


def red_png(width: int = 240, height: int = 120) -> bytes:
    """A picture that is easy to find on a rendered page: red, in a thin black frame."""
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[2:-2, 2:-2] = RED
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="png")
    return buffer.getvalue()


def page(body: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Dossier</title>
<style>
  @page {{ size: A4; margin: 2cm }}
  body {{ font-family: "DejaVu Sans", sans-serif; font-size: 11pt }}
  table {{ border-collapse: collapse; width: 100% }}
  th, td {{ border: 1px solid #333; padding: 4pt 6pt; text-align: left }}
  img {{ width: 12cm }}
</style></head>
<body>{body}</body></html>"""


def red_share(pixels: np.ndarray) -> float:
    red, green, blue = (pixels[..., channel].astype(int) for channel in range(3))
    return float(np.mean((red > 180) & (green < 80) & (blue < 80)))


@pytest.fixture(scope="module")
def dossier_pdf() -> bytes:
    picture = base64.b64encode(red_png()).decode("ascii")
    rows = "".join(f"<tr><td>https://pirate.example/{n}.mp3</td><td>{0.9 + n / 100:.2f}</td>"
                   f"<td>2026-03-0{n}</td></tr>" for n in range(1, 6))
    return html_to_pdf(page(f"""
        <h1>Dossier 17: Example Records v. pirate.example</h1>
        <table><tr><th>URL</th><th>confidence</th><th>first seen</th></tr>{rows}</table>
        <p lang="zh-CN">{CHINESE}</p>
        <img src="data:image/png;base64,{picture}" alt="match picture">"""))


def test_pdf_is_one_a4_page(dossier_pdf: bytes) -> None:
    assert dossier_pdf.startswith(b"%PDF-")
    assert pdf_page_count(dossier_pdf) == 1
    assert pdf_page_size(dossier_pdf) == pytest.approx(A4_POINTS, abs=0.5)


def test_first_page_as_png_has_a4_proportions_and_is_not_blank(dossier_pdf: bytes) -> None:
    png = pdf_page_png(dossier_pdf, scale=1.5)

    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(png)) as image:
        width, height = image.size
        pixels = np.asarray(image.convert("RGB"))
    assert height / width == pytest.approx(297 / 210, rel=0.01)
    inked = np.mean(pixels.min(axis=2) < 200)  # anything clearly not white paper
    assert inked > 0.05


def test_embedded_png_is_drawn(dossier_pdf: bytes) -> None:
    # 12 cm x 6 cm of red on a 21 cm x 29.7 cm page is about 11 % of it.
    assert red_share(pdf_page_pixels(dossier_pdf)) == pytest.approx(12 * 6 / (21 * 29.7),
                                                                    rel=0.15)


def test_heading_and_table_text_are_in_the_pdf(dossier_pdf: bytes) -> None:
    text = " ".join(pdf_page_text(dossier_pdf).split())  # the heading wraps
    assert "Dossier 17: Example Records v. pirate.example" in text
    assert "https://pirate.example/3.mp3" in text


def test_chinese_text_is_drawn_with_a_font_that_has_it(dossier_pdf: bytes) -> None:
    assert CHINESE in pdf_page_text(dossier_pdf).replace("\r\n", "")
    fonts = pdf_page_fonts(dossier_pdf)
    assert all("WenQuanYi" in fonts[char] for char in CHINESE)
    # Missing glyphs would all be the same box; real ones differ from each other.
    first, second = pdf_glyph_pixels(dossier_pdf, "著"), pdf_glyph_pixels(dossier_pdf, "权")
    assert first.size and second.size
    assert first.shape != second.shape or not np.array_equal(first, second)


def test_relative_image_is_read_from_base_url(tmp_path: Path) -> None:
    (tmp_path / "figure.png").write_bytes(red_png())
    html = page('<h1>Figure</h1><img src="figure.png">')

    assert red_share(pdf_page_pixels(html_to_pdf(html, base_url=str(tmp_path)))) > 0.05
    assert red_share(pdf_page_pixels(html_to_pdf(html, base_url=tmp_path.as_uri()))) > 0.05
    assert red_share(pdf_page_pixels(html_to_pdf(html))) == 0.0


def test_files_outside_base_url_are_not_read(tmp_path: Path) -> None:
    outside = tmp_path / "outside.png"
    outside.write_bytes(red_png())
    inside = tmp_path / "dossier"
    inside.mkdir()
    html = page(f'<img src="{outside.as_uri()}"><img src="../outside.png">')

    assert red_share(pdf_page_pixels(html_to_pdf(html, base_url=str(inside)))) == 0.0


class _CountingHandler(http.server.BaseHTTPRequestHandler):
    requests: list[str]

    def do_GET(self) -> None:
        self.requests.append(self.path)
        body = red_png()
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def image_server() -> Iterator[tuple[str, list[str]]]:
    """A web server on 127.0.0.1 that serves a red PNG and records every request."""
    requests: list[str] = []
    handler = type("Handler", (_CountingHandler,), {"requests": requests})
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                  daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}", requests
        finally:
            server.shutdown()
            thread.join()


def test_nothing_is_fetched_over_the_network(image_server: tuple[str, list[str]],
                                             tmp_path: Path) -> None:
    url, requests = image_server
    html = page(f'<img src="{url}/evidence.png"><link rel="stylesheet" href="{url}/s.css">')

    for base_url in (None, str(tmp_path)):
        assert red_share(pdf_page_pixels(html_to_pdf(html, base_url=base_url))) == 0.0
    assert requests == []


def test_remote_base_url_is_refused(image_server: tuple[str, list[str]]) -> None:
    url, requests = image_server
    with pytest.raises(ValueError, match="local directory"):
        html_to_pdf(page('<img src="evidence.png">'), base_url=url + "/")
    assert requests == []
