"""Uploads streamed as they arrive: a ``multipart/form-data`` body is parsed chunk by chunk,
each file written to its own temporary file and stopped at the size limit (Content-Length is
never trusted), the other fields kept in memory within their own limits. Nothing here reads
the ledger: the catalog routes register what was received."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from anyio import to_thread
from fastapi import HTTPException, Request
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

FILE_FIELD = "files"
MAX_FILES = 20  # per request; each file up to [web] max_upload_mb
_MAX_FIELDS = 20
_MAX_FIELD_BYTES = 64 * 1024


class TooLarge(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


@dataclass(frozen=True)
class Received:
    name: str  # as uploaded, made safe for a file name
    path: Path


def safe_name(raw: str) -> str:
    """The last part of an uploaded file's name, with only word characters, dots, dashes,
    spaces and parentheses (it is stored as the recording's file name and default title)."""
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[^\w.\- ()]+", "_", name).strip(" .")[:200]
    return name or "upload"


class MultipartSink:
    """Where a ``multipart/form-data`` body goes as it streams in: each file of the ``files``
    field into a file of its own under ``directory``, the other fields into memory, each within
    its limit (a file past ``max_file_bytes`` raises ``TooLarge``)."""

    def __init__(self, boundary: bytes, directory: Path, max_file_bytes: int) -> None:
        self.fields: dict[str, str] = {}
        self.files: list[Received] = []
        self._directory = directory
        self._max_file_bytes = max_file_bytes
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._disposition = b""
        self._field = ""
        self._data = bytearray()
        self._out: IO[bytes] | None = None
        self._size = 0
        self._parser = MultipartParser(boundary, {
            "on_part_begin": self._part_begin, "on_header_field": self._header_field,
            "on_header_value": self._header_value_data, "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished, "on_part_data": self._part_data,
            "on_part_end": self._part_end})

    def write(self, chunk: bytes) -> None:
        self._parser.write(chunk)

    def finish(self) -> None:
        self._parser.finalize()

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None

    def _part_begin(self) -> None:
        self._disposition, self._field, self._size = b"", "", 0
        self._data.clear()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        if bytes(self._header_name).lower() == b"content-disposition":
            self._disposition = bytes(self._header_value)
        self._header_name.clear()
        self._header_value.clear()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        if b"name" not in options:
            raise HTTPException(400, "a form part has no name")
        self._field = options[b"name"].decode("utf-8", "replace")
        if b"filename" not in options:
            if self._field in self.fields or len(self.fields) >= _MAX_FIELDS:
                raise HTTPException(400, f"form field {self._field!r} repeated, or too many")
            return
        if self._field != FILE_FIELD:
            raise HTTPException(400, f"send the audio files in the {FILE_FIELD!r} field, "
                                     f"not {self._field!r}")
        if len(self.files) >= MAX_FILES:
            raise HTTPException(400, f"at most {MAX_FILES} files per upload")
        name = safe_name(options[b"filename"].decode("utf-8", "replace"))
        folder = self._directory / str(len(self.files))  # two files may share a name
        folder.mkdir()
        self.files.append(Received(name, folder / name))
        self._out = (folder / name).open("wb")

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        self._size += end - start
        if self._out is not None:
            if self._size > self._max_file_bytes:
                raise TooLarge(self.files[-1].name)
            self._out.write(data[start:end])
        elif self._size > _MAX_FIELD_BYTES:
            raise HTTPException(400, f"form field {self._field!r} is too long")
        else:
            self._data += data[start:end]

    def _part_end(self) -> None:
        if self._out is not None:
            self.close()
            return
        try:
            self.fields[self._field] = self._data.decode("utf-8")
        except UnicodeDecodeError:
            raise HTTPException(400, f"form field {self._field!r} is not UTF-8") from None


def boundary_of(request: Request) -> bytes:
    kind, options = parse_options_header(request.headers.get("content-type"))
    if kind != b"multipart/form-data" or not options.get(b"boundary"):
        raise HTTPException(415, "send the recordings as multipart/form-data")
    return options[b"boundary"]


async def receive(stream: AsyncIterator[bytes], sink: MultipartSink, limit: int,
                   limit_mb: int) -> None:
    """Feed the body to ``sink`` (its file writes in a worker thread). Past the limit, as much
    again is read and dropped, so that the client is told 413 rather than having its
    connection cut mid-send; the body's Content-Length is never trusted."""
    try:
        async for chunk in stream:
            await to_thread.run_sync(sink.write, chunk)
        await to_thread.run_sync(sink.finish)
    except TooLarge as exc:
        dropped = 0
        async for chunk in stream:
            dropped += len(chunk)
            if dropped > limit:
                break
        raise HTTPException(413, f"{exc.name} is larger than the upload limit of {limit_mb} "
                                 "MiB ([web] max_upload_mb); nothing was registered") from None
    except FormParserError:
        raise HTTPException(400, "not a well-formed multipart/form-data body") from None
    finally:
        sink.close()
