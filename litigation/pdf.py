"""HTML to PDF for the dossiers, with WeasyPrint (Pango for text, so any installed font).

The dossier HTML is ours, but it quotes what the crawler found (page titles, URLs), so the
renderer fetches nothing over the network: only ``data:`` URIs and files under ``base_url``
are read. Fetching suspect content is the crawler's alone (one SSRF guard, one evidence path).
Reads no settings. WeasyPrint and fontTools (which subsets the embedded fonts) log progress at
INFO; their loggers are held at WARNING unless a level was configured for them.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

_NOISY_LOGGERS = ("weasyprint", "weasyprint.progress", "fontTools")


def _quiet_logs() -> None:
    for name in _NOISY_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:  # an operator's explicit level is kept
            logger.setLevel(logging.WARNING)


_quiet_logs()  # before the import: WeasyPrint parses its own stylesheets then, at INFO
with warnings.catch_warnings():
    # Without Debian's libharfbuzz-subset0 WeasyPrint subsets fonts with fontTools (slower,
    # same PDF) and says so with a DeprecationWarning on import, which is not ours to act on.
    warnings.filterwarnings("ignore", message="HarfBuzz-Subset", category=DeprecationWarning)
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher, URLFetcherResponse


def html_to_pdf(html: str, *, base_url: str | None = None) -> bytes:
    """The PDF of ``html`` (page size and margins from its CSS ``@page``; A4 by default).

    ``base_url`` is the local directory (a path or ``file:`` URL) that relative references
    such as ``<img src="figure-1.png">`` are resolved against; without it only ``data:`` URIs
    load. A resource that may not be read is left out, as WeasyPrint does with missing ones.
    """
    _quiet_logs()  # again, in case logging was configured since the import
    root = _base_directory(base_url)
    # A directory's URL ends in "/", else "figure.png" would resolve next to it, not inside.
    resolved = None if root is None else root.as_uri().removesuffix("/") + "/"
    fetcher = _LocalFetcher(root)
    document = HTML(string=html, base_url=resolved, url_fetcher=fetcher)
    pdf: bytes = document.write_pdf()
    return pdf


# WeasyPrint has no type hints: URLFetcher is Any, which --strict refuses to subclass.
class _LocalFetcher(URLFetcher):  # type: ignore[misc, unused-ignore]
    """Reads ``data:`` URIs, and ``file:`` URLs inside ``root`` when one is given."""

    def __init__(self, root: Path | None) -> None:
        super().__init__(allowed_protocols={"data", "file"} if root else {"data"})
        self._root = root

    def fetch(self, url: str, headers: dict[str, str] | None = None) -> URLFetcherResponse:
        if url.lower().startswith("file:"):
            path = Path(url2pathname(urlsplit(url).path)).resolve()
            if self._root is None or not path.is_relative_to(self._root):
                raise ValueError(f"not under the dossier's base directory: {url}")
        return super().fetch(url, headers)


def _base_directory(base_url: str | None) -> Path | None:
    """The directory a local ``base_url`` names (the parent if it names a file), else None;
    ValueError for a remote one."""
    if base_url is None:
        return None
    parts = urlsplit(base_url)
    if parts.scheme.lower() == "file":
        path = Path(url2pathname(parts.path))
    elif len(parts.scheme) <= 1:  # a plain path (a one-letter "scheme" is a Windows drive)
        path = Path(base_url)
    else:
        raise ValueError(f"base_url must be a local directory, got {base_url!r}")
    path = path.resolve()
    return path if path.is_dir() else path.parent
