"""Recording metadata for catalog import: read from the files' tags, overridden by a CSV file.

CSV columns (header row required; all but ``file`` optional): ``file`` (the file's name, or its
path as given on the command line), ``title``, ``artist``, ``isrc``, ``registration_number``,
``registration_date`` and ``publication_date`` (YYYY-MM-DD), ``territories`` (ISO 3166-1 alpha-2
codes separated by spaces, commas or semicolons, or WORLD), ``registration_status``
(``registered`` or ``pending``: an application filed, not yet registered; empty: registered
when a number and date are given) and ``chain_of_title`` (free text: authors, assignments).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

import mutagen

from fingerprints.errors import FingerprintError

_ISRC = re.compile(r"^[A-Z]{2}[A-Z0-9]{3}[0-9]{7}$")
_TERRITORY = re.compile(r"^([A-Z]{2}|WORLD)$")
COLUMNS = ("file", "title", "artist", "isrc", "registration_number", "registration_date",
           "publication_date", "territories", "registration_status", "chain_of_title")
REGISTRATION_STATUSES = ("registered", "pending")


class MetadataError(FingerprintError):
    """A metadata value (in a CSV file or a tag) is not valid; the message says where."""


@dataclass(frozen=True)
class RecordingMetadata:
    title: str | None = None
    artist: str | None = None
    isrc: str | None = None
    registration_number: str | None = None
    registration_date: date | None = None
    publication_date: date | None = None
    territories: tuple[str, ...] = field(default_factory=tuple)
    registration_status: str | None = None
    chain_of_title: str | None = None

    def overridden_by(self, other: RecordingMetadata) -> RecordingMetadata:
        """These values, with every value ``other`` sets taking precedence."""
        changes = {name: value for name, value in vars(other).items() if value not in (None, ())}
        return replace(self, **changes)


def normalise_isrc(raw: str) -> str:
    isrc = raw.replace("-", "").replace(" ", "").upper()
    if not _ISRC.match(isrc):
        raise MetadataError(f"not an ISRC: {raw!r} (expected like US-RC1-76-07839)")
    return isrc


def parse_territories(raw: str) -> tuple[str, ...]:
    codes = tuple(code.upper() for code in re.split(r"[\s,;]+", raw.strip()) if code)
    for code in codes:
        if not _TERRITORY.match(code):
            raise MetadataError(f"not a territory code: {code!r} (ISO 3166-1 alpha-2 or WORLD)")
    return codes


def _first(tags: object, key: str) -> str | None:
    try:
        values = tags[key]  # type: ignore[index]
    except (KeyError, ValueError, TypeError):
        return None
    value = values[0] if isinstance(values, list) and values else values
    text = str(value).strip() if value else ""
    return text or None


def read_tags(path: Path) -> RecordingMetadata:
    """Title, artist and ISRC from the file's tags (ID3, Vorbis comments, MP4); missing or
    unreadable tags give empty values, never an error: the audio decides whether a file is good."""
    try:
        audio = mutagen.File(path, easy=True)
    except (mutagen.MutagenError, OSError, ValueError):
        return RecordingMetadata()
    if audio is None or audio.tags is None:
        return RecordingMetadata()
    isrc_raw = _first(audio.tags, "isrc")
    try:
        isrc = normalise_isrc(isrc_raw) if isrc_raw else None
    except MetadataError:
        isrc = None  # a malformed tag is not worth refusing the recording for
    return RecordingMetadata(title=_first(audio.tags, "title"),
                             artist=_first(audio.tags, "artist"), isrc=isrc)


def _date(raw: str, where: str) -> date | None:
    if not raw.strip():
        return None
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise MetadataError(f"{where}: not a date (YYYY-MM-DD): {raw!r}") from None


def _registration_status(raw: str) -> str | None:
    status = raw.lower() or None
    if status is not None and status not in REGISTRATION_STATUSES:
        raise MetadataError(f"registration_status must be one of "
                            f"{', '.join(REGISTRATION_STATUSES)} or empty, not {raw!r}")
    return status


def load_metadata_csv(path: Path) -> dict[str, RecordingMetadata]:
    """Rows keyed by their ``file`` column; every bad value is reported with its row and column."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None or "file" not in reader.fieldnames:
                raise MetadataError(f"{path}: needs a header row with a 'file' column")
            unknown = set(reader.fieldnames) - set(COLUMNS)
            if unknown:
                raise MetadataError(f"{path}: unknown column(s) {', '.join(sorted(unknown))}; "
                                    f"known: {', '.join(COLUMNS)}")
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise MetadataError(f"{path}: cannot read: {exc}") from exc
    result: dict[str, RecordingMetadata] = {}
    for number, row in enumerate(rows, start=2):
        def cell(column: str, row: dict[str, str | None] = row) -> str:
            return (row.get(column) or "").strip()

        where = f"{path}, row {number}"
        key = cell("file")
        if not key:
            raise MetadataError(f"{where}: the 'file' column is empty")
        try:
            result[key] = RecordingMetadata(
                title=cell("title") or None,
                artist=cell("artist") or None,
                isrc=normalise_isrc(cell("isrc")) if cell("isrc") else None,
                registration_number=cell("registration_number") or None,
                registration_date=_date(cell("registration_date"), f"{where}, registration_date"),
                publication_date=_date(cell("publication_date"), f"{where}, publication_date"),
                territories=parse_territories(cell("territories")),
                registration_status=_registration_status(cell("registration_status")),
                chain_of_title=cell("chain_of_title") or None,
            )
        except MetadataError as exc:
            message = str(exc)
            raise MetadataError(message if message.startswith(where) else f"{where}: {message}"
                                ) from None
    return result
