"""PDF pages as pictures and text for the dossier tests, with pypdfium2 (and Pillow, which
matplotlib and WeasyPrint both require)."""

from __future__ import annotations

import ctypes
import io
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_raw
from PIL import Image


@contextmanager
def _page(pdf: bytes, number: int) -> Iterator[pdfium.PdfPage]:
    document = pdfium.PdfDocument(pdf)
    try:
        if not 0 <= number < len(document):
            raise IndexError(f"page {number} of a {len(document)}-page PDF")
        page = document[number]
        try:
            yield page
        finally:
            page.close()
    finally:
        document.close()


def pdf_page_count(pdf: bytes) -> int:
    document = pdfium.PdfDocument(pdf)
    try:
        return len(document)
    finally:
        document.close()


def pdf_page_size(pdf: bytes, page: int = 0) -> tuple[float, float]:
    """Width and height of a page in points (1/72 inch): A4 is about 595 x 842."""
    with _page(pdf, page) as handle:
        width, height = handle.get_size()
        return float(width), float(height)


def pdf_page_pixels(pdf: bytes, page: int = 0, scale: float = 1.0) -> np.ndarray:
    """A page rendered as RGB, shape (height, width, 3), uint8; ``scale`` 1 is 72 dpi."""
    with _page(pdf, page) as handle:
        bitmap = handle.render(scale=scale)
        try:
            return np.asarray(bitmap.to_pil().convert("RGB"))
        finally:
            bitmap.close()


def pdf_page_png(pdf: bytes, page: int = 0, scale: float = 1.0) -> bytes:
    """A page rendered as PNG bytes (see :func:`pdf_page_pixels`)."""
    buffer = io.BytesIO()
    Image.fromarray(pdf_page_pixels(pdf, page, scale)).save(buffer, format="png")
    return buffer.getvalue()


def pdf_page_text(pdf: bytes, page: int = 0) -> str:
    """The text pdfium extracts from a page (through the fonts' ToUnicode maps)."""
    with _page(pdf, page) as handle:
        text_page = handle.get_textpage()
        try:
            return str(text_page.get_text_range())
        finally:
            text_page.close()


def pdf_page_fonts(pdf: bytes, page: int = 0) -> dict[str, str]:
    """For each distinct character on a page, the name of the embedded font that draws it
    (subset prefixes such as ``AJCJEQ+`` kept)."""
    fonts: dict[str, str] = {}
    with _page(pdf, page) as handle:
        text_page = handle.get_textpage()
        try:
            name = ctypes.create_string_buffer(256)
            flags = ctypes.c_int()
            for index in range(text_page.count_chars()):
                char = chr(pdfium_raw.FPDFText_GetUnicode(text_page, index))
                if char.isspace() or char in fonts:
                    continue
                pdfium_raw.FPDFText_GetFontInfo(text_page, index, name, len(name),
                                                ctypes.byref(flags))
                fonts[char] = name.value.decode("utf-8", errors="replace")
        finally:
            text_page.close()
    return fonts


def pdf_glyph_pixels(pdf: bytes, char: str, page: int = 0, scale: float = 4.0) -> np.ndarray:
    """The rendered pixels (RGB) of the first ``char`` on a page, cropped to its tight box."""
    with _page(pdf, page) as handle:
        text_page = handle.get_textpage()
        try:
            for index in range(text_page.count_chars()):
                if pdfium_raw.FPDFText_GetUnicode(text_page, index) == ord(char):
                    left, bottom, right, top = text_page.get_charbox(index)
                    break
            else:
                raise LookupError(f"{char!r} is not on page {page}")
        finally:
            text_page.close()
        height = handle.get_height()
    pixels = pdf_page_pixels(pdf, page, scale)
    # PDF units grow upwards from the bottom left, pixel rows downwards from the top.
    rows = slice(int((height - top) * scale), int(np.ceil((height - bottom) * scale)))
    columns = slice(int(left * scale), int(np.ceil(right * scale)))
    return pixels[rows, columns]
