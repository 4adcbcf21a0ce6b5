"""The evidence store: WARC files of what the crawler fetched, and a blob store of media bytes.

Each kept exchange becomes three WARC/1.1 records (request, response, metadata), one gzip member
per record, so any record can be read alone from the ``WarcLocation`` (file, offset, length) a
capture row keeps. A writer only ever creates new files (``warc/YYYY/MM/DD/copyguard-<UTC
time>-<host>-<pid>-<serial>.warc.gz``: the host keeps machines' names apart in object storage;
each file is opened by a ``warcinfo`` record), holds an ``flock`` on its file while it lives
(taken before the file gets its name, so nothing ever sees it unlocked), and fsyncs after every
exchange, so a row committed afterwards never points at bytes that are not on disk. A
``kill -9`` can leave a torn record at the end of a file: ``repair`` cuts it off and says what it
cut. Reading checks gzip members and record lengths and raises ``EvidenceCorruptError`` rather
than skip anything.

Digests are SHA-256, written as warcio writes them (``sha256:`` + base32), so ``warcio check``
verifies the files. HTTP header values are the wire bytes decoded as ISO-8859-1 and are written
back as those same bytes (warcio would percent-encode anything outside ASCII).

Blobs (the media bytes) live at ``blobs/ab/cd/<sha256>``, written atomically and stored once.

With a ``remote`` (``ledger.object_store``, S3-compatible), every file is also kept in object
storage under the same path, so another machine with an empty root can read it: ``put_blob``
uploads before it returns (a capture row committed afterwards never names a blob only this disk
has), and a WARC file is uploaded when its writer closes it (at rotation or ``close``), still
holding its lock. A file missing here is downloaded on first use (``blob_path``, ``warc_path``).
A ``<file>.pushed`` marker beside a file holds the size object storage has of it, so
``push_pending`` sends only what is missing there (a killed writer's last file, a failed upload)
without asking the server about every file.

Settings: none read here; the app passes the root (``<home>/evidence``), ``max_file_bytes``,
``software``, ``operator_contact`` and the ``remote``. An ``EvidenceStore`` is not thread-safe:
one per writing thread or process (files are named by host, pid and serial). Reading and blobs are
safe anywhere.
"""

from __future__ import annotations

import fcntl
import io
import ipaddress
import json
import logging
import math
import os
import re
import socket
import tempfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple
from urllib.parse import urlsplit

from warcio.statusandheaders import (
    StatusAndHeaders,
    StatusAndHeadersParser,
    StatusAndHeadersParserException,
)
from warcio.utils import Digester
from warcio.warcwriter import WARCWriter

from ledger.clock import Clock, SystemClock
from ledger.errors import LedgerError

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

    from ledger.object_store import ObjectStore

__all__ = [
    "EvidenceCorruptError", "EvidenceError", "EvidenceFileBusyError", "EvidenceStore", "Exchange",
    "PushReport", "RepairReport", "StoredBlob", "StoredExchange", "StoredRecord", "WarcLocation",
    "iter_records", "repair",
]

log = logging.getLogger(__name__)

MetadataValue = str | int | float | bool | None
Headers = list[tuple[str, str]]

_CHUNK = 1 << 16  # read size, and the most one inflate step may produce (bounds memory)
_MAX_HEAD = 1 << 20  # WARC + HTTP header blocks must fit in this; refused on write beyond half
_HEX64 = re.compile(r"[0-9a-f]{64}")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # CR or LF in a header would forge headers
_URL_UNSAFE = re.compile(r"[\x00-\x20\x7f]")
_WARC_FILE = re.compile(r"warc/\d{4}/\d{2}/\d{2}/[A-Za-z0-9._-]+\.warc\.gz", re.ASCII)
_BLOB_FILE = re.compile(r"blobs/([0-9a-f]{2})/([0-9a-f]{2})/\1\2[0-9a-f]{60}")
_PUSHED = ".pushed"  # marker suffix: the marker holds the size object storage has of the file
_GZIP_MAGIC = b"\x1f\x8b\x08"
# Metadata keys the store fills from the exchange itself, so a caller cannot contradict them.
_DERIVED_KEYS = frozenset({"url", "sha256", "payload_length", "fetched_at", "ip_address"})


class EvidenceError(LedgerError):
    """Base of the evidence store's errors."""


class EvidenceCorruptError(EvidenceError):
    """A WARC record is damaged or cut short (``offset`` is where the record starts)."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


class EvidenceFileBusyError(EvidenceError):
    """The WARC file is open in a live writer (it holds the file's lock)."""


# -- values ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class WarcLocation:
    """Where one record is: ``file`` relative to the store root, the gzip member's bytes."""

    file: str
    offset: int
    length: int


@dataclass(frozen=True)
class Exchange:
    """One fetch to keep. Header values are the wire bytes decoded as ISO-8859-1, in order and
    with duplicates; ``body`` is the payload as received (a path for large ones)."""

    url: str
    method: str
    request_headers: Headers
    status: int
    reason: str
    response_headers: Headers
    body: Path | bytes
    fetched_at: datetime  # timezone-aware; recorded in UTC to the microsecond
    ip_address: str | None
    metadata: Mapping[str, MetadataValue] = field(default_factory=dict)
    request_body: bytes = b""

    def __post_init__(self) -> None:
        if self.fetched_at.utcoffset() is None:
            raise ValueError("fetched_at must be timezone-aware")
        if urlsplit(self.url).scheme not in ("http", "https") or _URL_UNSAFE.search(self.url):
            raise ValueError(f"not an http(s) URL fit for a WARC header: {self.url!r}")
        if not _TOKEN.fullmatch(self.method):
            raise ValueError(f"not an HTTP method: {self.method!r}")
        if not 100 <= self.status <= 999:
            raise ValueError(f"not an HTTP status: {self.status}")
        _check_header_text("reason", self.reason)
        headers = [*self.request_headers, *self.response_headers]
        for name, value in headers:
            if not _TOKEN.fullmatch(name):
                raise ValueError(f"not an HTTP header name: {name!r}")
            _check_header_text(name, value)
        if sum(len(n) + len(v) + 4 for n, v in headers) > _MAX_HEAD // 2:
            raise ValueError("headers too large to keep")
        if self.ip_address is not None:
            ipaddress.ip_address(self.ip_address)  # raises ValueError
        for key, item in self.metadata.items():
            if key in _DERIVED_KEYS:
                raise ValueError(f"metadata key {key!r} is filled in by the evidence store")
            if not isinstance(item, str | int | float | bool | None) or (
                    isinstance(item, float) and not math.isfinite(item)):
                raise ValueError(f"metadata {key!r}: {item!r} is not a JSON scalar")


def _check_header_text(name: str, value: str) -> None:
    if _CONTROL.search(value):
        raise ValueError(f"header {name!r} holds a control character")
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(f"header {name!r} is not wire bytes decoded as ISO-8859-1") from None


@dataclass(frozen=True)
class StoredExchange:
    """What ``write_exchange`` wrote: where each record is, their ids, the payload's hash."""

    request: WarcLocation
    response: WarcLocation
    metadata: WarcLocation
    request_id: str
    response_id: str
    metadata_id: str
    payload_sha256: str
    payload_length: int


class StoredBlob(NamedTuple):
    sha256: str
    path: str  # relative to the store root


@dataclass(frozen=True)
class RepairReport:
    path: Path
    records: int  # whole records kept
    kept_bytes: int
    cut_bytes: int
    reason: str | None  # what was wrong with the cut tail; None when nothing was cut

    @property
    def repaired(self) -> bool:
        return self.cut_bytes > 0


@dataclass(frozen=True)
class PushReport:
    """What ``push_pending`` did."""

    uploaded: int  # files sent to object storage
    present: int  # files object storage had already (same size and SHA-256): only marked
    busy: int  # WARC files a live writer still holds: it uploads each when it closes it
    problems: tuple[str, ...]  # local files that could not be pushed, and why


# -- warcio, adjusted --------------------------------------------------------------------------

class _Sha256Writer(WARCWriter):
    """warcio's writer, with SHA-256 where it hard-codes SHA-1."""

    @staticmethod
    def _create_digester() -> Any:
        return Digester("sha256")


class _WireHeaders(StatusAndHeaders):
    """HTTP headers written back as the bytes they were read as (not percent-encoded)."""

    def to_ascii_bytes(self, filter_func: Any = None) -> bytes:
        return bytes(self.to_str(filter_func).encode("latin-1")) + b"\r\n"


class _WireParser(StatusAndHeadersParser):
    @staticmethod
    def decode_header(line: bytes | str) -> str:
        return line.decode("latin-1") if isinstance(line, bytes) else line


_WARC_PARSER = StatusAndHeadersParser(["WARC/1.1", "WARC/1.0"])
_HTTP_PARSER = _WireParser([], verify=False)


# -- writing -----------------------------------------------------------------------------------

@dataclass
class _OpenFile:
    name: str  # relative to the root
    file: io.BufferedWriter
    writer: Any  # _Sha256Writer bound to ``file``
    warcinfo_id: str


@dataclass(frozen=True)
class _BodyDigests:
    sha256: str  # hex, of the payload
    length: int
    payload: str  # WARC-Payload-Digest
    block: str  # WARC-Block-Digest: HTTP header block and payload


class EvidenceStore:
    """The WARC files and blobs under ``root``. Nothing is opened until the first write."""

    def __init__(self, root: Path, *, max_file_bytes: int = 1 << 30,
                 software: str = "copyguard", operator_contact: str = "",
                 clock: Clock | None = None, remote: ObjectStore | None = None) -> None:
        self.root = Path(root)
        self.remote = remote  # object storage holding a copy of every file; None: this disk only
        self._max_file_bytes = max_file_bytes  # a file is closed once it reaches this size
        self._software = software  # the warcinfo record's "software" (warcio's is added)
        self._operator_contact = operator_contact  # the warcinfo record's "operator"
        self._clock = clock or SystemClock()  # names files and dates warcinfo records
        self._current: _OpenFile | None = None
        self._serial = 0

    def __enter__(self) -> EvidenceStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def write_exchange(self, exchange: Exchange) -> StoredExchange:
        """Append the exchange's request, response and metadata records; durable on return."""
        with _open_body(exchange.body) as body:
            http = _WireHeaders(f"{exchange.status} {exchange.reason}",
                                list(exchange.response_headers), protocol="HTTP/1.1")
            http.compute_headers_buffer()
            digests = _digest_body(body, http.headers_buff)
            out = self._current or self._open_file()
            start = out.file.tell()
            try:
                stored = _write_records(out, exchange, body, http, digests)
                out.file.flush()
                os.fsync(out.file.fileno())
            except BaseException:
                self._cut_back(out, start)
                raise
        if out.file.tell() >= self._max_file_bytes:
            self.close()
        return stored

    def close(self) -> None:
        """Close the current file (its lock goes with it); a later write starts a new one. With
        a remote the file is uploaded first, still locked so that no sweep sends it as well; a
        failed upload is logged and left to ``push_pending`` (the records are safe on disk)."""
        if self._current is not None:
            current, self._current = self._current, None
            current.file.flush()
            os.fsync(current.file.fileno())
            try:
                if self.remote is not None:
                    self._push(self.root / current.name)
            except (EvidenceError, OSError) as exc:
                log.warning("%s not uploaded to object storage (`copyguard evidence push` "
                            "will): %s", current.name, exc)
            finally:
                current.file.close()

    def _open_file(self) -> _OpenFile:
        now = self._clock.now().astimezone(UTC)
        folder = self.root / "warc" / f"{now:%Y/%m/%d}"
        _make_dirs(folder)
        host = re.sub(r"[^A-Za-z0-9-]+", "-", socket.gethostname().split(".")[0])[:32] or "host"
        # Locked under a temporary name, then linked to its own: a sweep or ``repair`` that
        # found it unlocked would take it for a dead writer's.
        temporary = folder / f".{os.getpid()}-{os.urandom(8).hex()}.open"
        file = open(temporary, "xb")  # noqa: SIM115 (kept open across calls)
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            while True:
                self._serial += 1
                name = (f"copyguard-{now:%Y%m%dT%H%M%SZ}-{host}-{os.getpid()}-"
                        f"{self._serial:05d}.warc.gz")
                try:
                    # Never a name taken, least of all by a file a dead writer left behind.
                    os.link(temporary, folder / name)
                    break
                except FileExistsError:
                    continue
        except BaseException:
            file.close()
            raise
        finally:
            temporary.unlink()
        _fsync_dir(folder)
        writer = _Sha256Writer(file, gzip=True, warc_version="1.1")
        info = writer.create_warcinfo_record(name, {
            "software": f"{self._software} (warcio/{version('warcio')})",
            "hostname": socket.gethostname(),
            "format": "WARC File Format 1.1",
            "conformsTo": "https://iipc.github.io/warc-specifications/specifications/"
                          "warc-format/warc-1.1/",
            "operator": self._operator_contact,
        })
        info.rec_headers.replace_header("WARC-Date", _warc_date(now))
        writer.write_record(info)
        file.flush()
        os.fsync(file.fileno())
        relative = (folder / name).relative_to(self.root).as_posix()
        self._current = _OpenFile(relative, file, writer,
                                  info.rec_headers.get_header("WARC-Record-ID"))
        return self._current

    def _cut_back(self, out: _OpenFile, start: int) -> None:
        """Undo a half-written exchange; if even that fails, leave the file to ``repair``."""
        try:
            out.file.seek(start)
            out.file.truncate()
            out.file.flush()
            os.fsync(out.file.fileno())
        except OSError:
            self._current = None
            with suppress(OSError):
                out.file.close()

    # -- reading ---------------------------------------------------------------------------

    def warc_path(self, file: str) -> Path:
        """The WARC file a location names (only names this store makes: no way out of root).
        With a remote, a file missing here is downloaded first."""
        if not _WARC_FILE.fullmatch(file):
            raise ValueError(f"not a WARC file of this store: {file!r}")
        path = self.root / file
        if self.remote is not None and not path.exists() and not self._fetch(path):
            raise EvidenceError(
                f"{file} is not in {self.root} and not in object storage yet "
                f"({self.remote.url(file)}): it is uploaded when the crawl writing it closes it")
        return path

    def read_record(self, location: WarcLocation) -> StoredRecord:
        """The record's headers (its payload is streamed by ``StoredRecord.open_payload``)."""
        path = self.warc_path(location.file)
        with open(path, "rb") as file:
            inflater = _Inflater(file, location.offset, location.offset + location.length, path)
            return _record(path, location.offset, location.length, _read_head(inflater)[0])

    def verify(self, location: WarcLocation, expected_sha256: str) -> bool:
        """Whether the payload still hashes to ``expected_sha256``, agrees with its record's
        WARC-Payload-Digest, and its record is whole. A missing file raises ``OSError`` (with a
        remote, ``EvidenceError`` when object storage does not have it either)."""
        expected = _valid_digest(expected_sha256)
        try:
            record = self.read_record(location)
            digester = Digester("sha256")
            with record.open_payload() as payload:
                while chunk := payload.read(_CHUNK):
                    digester.update(chunk)
        except EvidenceCorruptError:
            return False
        return (digester.digester.hexdigest() == expected
                and str(digester) == record.warc_header("WARC-Payload-Digest"))

    # -- blobs -----------------------------------------------------------------------------

    def put_blob(self, source: Path | bytes) -> StoredBlob:
        """Store bytes under their SHA-256 (once: storing them again changes nothing). With a
        remote they are in object storage too when this returns (else it raises)."""
        with _open_body(source) as stream:
            digester = Digester("sha256")
            while chunk := stream.read(_CHUNK):
                digester.update(chunk)
            sha256 = digester.digester.hexdigest()
            target = self._blob_file(sha256)
            if not target.exists():
                stream.seek(0)
                _write_atomically(stream, target, sha256)
        if self.remote is not None:
            self._push(target, sha256)
        return StoredBlob(sha256, target.relative_to(self.root).as_posix())

    def blob_path(self, sha256: str) -> Path:
        """Where the blob with this digest is (or would be); ``ValueError`` unless 64 hex. With
        a remote, a blob missing here is downloaded first (and refused unless it hashes to
        ``sha256``); one object storage lacks too is left missing, as without a remote."""
        path = self._blob_file(sha256)
        if self.remote is not None and not path.exists():
            self._fetch(path, sha256)
        return path

    def open_blob(self, sha256: str) -> BinaryIO:
        return open(self.blob_path(sha256), "rb")

    def _blob_file(self, sha256: str) -> Path:
        digest = _valid_digest(sha256)
        return self.root / "blobs" / digest[:2] / digest[2:4] / digest

    # -- object storage --------------------------------------------------------------------

    def push_pending(self, on_progress: Callable[[int, int], None] | None = None) -> PushReport:
        """Upload every closed WARC file and blob that object storage may lack (no marker of
        its present size): a writer killed before it closed its file, a failed upload, files
        from before the remote was set. A WARC file a live writer holds is skipped; a dead
        writer's torn tail is cut off first (``repair``). Object-storage errors raise: nothing
        more would get through. A local file that cannot be read or repaired is reported and
        the sweep goes on. ``on_progress(done, total)`` is called before each file and at
        the end."""
        if self.remote is None:
            raise EvidenceError("no object storage is configured for this evidence store")
        pending = [*_unpushed(self.root, "blobs"), *_unpushed(self.root, "warc")]
        uploaded = present = busy = 0
        problems: list[str] = []
        for done, path in enumerate(pending):
            if on_progress is not None:
                on_progress(done, len(pending))
            try:
                if path.name.endswith(".warc.gz"):
                    repair(path)  # raises EvidenceFileBusyError while a live writer holds it
                sent = self._push(path)
            except EvidenceFileBusyError:
                busy += 1
            except (EvidenceCorruptError, OSError) as exc:
                problems.append(f"{path.relative_to(self.root).as_posix()}: {exc}")
            else:
                uploaded, present = uploaded + sent, present + (not sent)
        if on_progress is not None:
            on_progress(len(pending), len(pending))
        return PushReport(uploaded, present, busy, tuple(problems))

    def _push(self, path: Path, sha256: str | None = None) -> bool:
        """Upload one of the store's files unless its marker says object storage has it as it
        is now; then mark it. Whether bytes were sent."""
        assert self.remote is not None
        size = path.stat().st_size
        if _pushed_size(path) == size:
            return False
        sent = self.remote.put_file(path, path.relative_to(self.root).as_posix(), sha256=sha256)
        _mark_pushed(path, size)
        return sent

    def _fetch(self, path: Path, sha256: str | None = None) -> bool:
        """Download one of the store's files from object storage; False if it is not there."""
        assert self.remote is not None
        if not self.remote.download(path.relative_to(self.root).as_posix(), path, sha256=sha256):
            return False
        _mark_pushed(path, path.stat().st_size)
        return True


def _write_records(out: _OpenFile, exchange: Exchange, body: BinaryIO, http: _WireHeaders,
                   digests: _BodyDigests) -> StoredExchange:
    request_id, response_id, metadata_id = (StatusAndHeadersParser.make_warc_id() for _ in range(3))
    common = {"WARC-Date": _warc_date(exchange.fetched_at), "WARC-Target-URI": exchange.url,
              "WARC-Warcinfo-ID": out.warcinfo_id}
    if exchange.ip_address:
        common["WARC-IP-Address"] = exchange.ip_address
    create = out.writer.create_warc_record
    request = create(
        exchange.url, "request", payload=io.BytesIO(exchange.request_body),
        length=len(exchange.request_body),
        http_headers=_WireHeaders(f"{_request_target(exchange.url)} HTTP/1.1",
                                  list(exchange.request_headers), protocol=exchange.method),
        warc_headers_dict={"WARC-Type": "request", "WARC-Record-ID": request_id, **common,
                           "WARC-Concurrent-To": response_id})
    # Digests given up front, so warcio does not read a large body twice more to compute them.
    response = create(
        exchange.url, "response", payload=_CheckedBody(body, digests), length=digests.length,
        http_headers=http,
        warc_headers_dict={"WARC-Type": "response", "WARC-Record-ID": response_id, **common,
                           "WARC-Payload-Digest": digests.payload,
                           "WARC-Block-Digest": digests.block})
    document = json.dumps({
        **exchange.metadata, "url": exchange.url, "sha256": digests.sha256,
        "payload_length": digests.length, "fetched_at": _warc_date(exchange.fetched_at),
        "ip_address": exchange.ip_address,
    }, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    metadata = create(
        exchange.url, "metadata", payload=io.BytesIO(document), length=len(document),
        warc_content_type="application/json",
        warc_headers_dict={"WARC-Type": "metadata", "WARC-Record-ID": metadata_id, **common,
                           "WARC-Refers-To": response_id, "WARC-Concurrent-To": response_id})
    request_at, response_at, metadata_at = (_append(out, r) for r in (request, response, metadata))
    return StoredExchange(request_at, response_at, metadata_at, request_id, response_id,
                          metadata_id, digests.sha256, digests.length)


def _append(out: _OpenFile, record: Any) -> WarcLocation:
    offset = out.file.tell()
    out.writer.write_record(record)
    return WarcLocation(out.name, offset, out.file.tell() - offset)


class _CheckedBody:
    """The body as warcio copies it into the record: it must still be the bytes digested."""

    def __init__(self, body: BinaryIO, digests: _BodyDigests) -> None:
        self._body, self._left, self._expected = body, digests.length, digests.sha256
        self._digester = Digester("sha256")

    def read(self, size: int = _CHUNK) -> bytes:
        if self._left == 0:
            if self._body.read(1) or self._digester.digester.hexdigest() != self._expected:
                raise EvidenceError("the body changed while it was being stored")
            return b""
        chunk = self._body.read(min(size if size > 0 else _CHUNK, self._left))
        if not chunk:
            raise EvidenceError("the body got shorter while it was being stored")
        self._digester.update(chunk)
        self._left -= len(chunk)
        return chunk


def _digest_body(body: BinaryIO, http_block: bytes) -> _BodyDigests:
    payload, block = Digester("sha256"), Digester("sha256")
    block.update(http_block)
    length = 0
    while chunk := body.read(_CHUNK):
        payload.update(chunk)
        block.update(chunk)
        length += len(chunk)
    body.seek(0)
    return _BodyDigests(payload.digester.hexdigest(), length, str(payload), str(block))


@contextmanager
def _open_body(body: Path | bytes) -> Iterator[BinaryIO]:
    if isinstance(body, bytes):
        yield io.BytesIO(body)
    else:
        with open(body, "rb") as file:
            yield file


def _warc_date(at: datetime) -> str:
    # Always six fraction digits (warcio drops them when the microseconds are zero).
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _request_target(url: str) -> str:
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _valid_digest(sha256: str) -> str:
    if not isinstance(sha256, str) or not _HEX64.fullmatch(sha256):
        raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
    return sha256


def _write_atomically(stream: BinaryIO, target: Path, sha256: str) -> None:
    _make_dirs(target.parent)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{sha256[:16]}.",
                                         suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            digester = Digester("sha256")
            while chunk := stream.read(_CHUNK):
                digester.update(chunk)
                out.write(chunk)
            if digester.digester.hexdigest() != sha256:
                raise EvidenceError("the blob's source changed while it was being stored")
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o444)
        os.replace(temporary, target)  # identical bytes if another process won the race
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _fsync_dir(target.parent)


def _unpushed(root: Path, kind: str) -> Iterator[Path]:
    """The store's files under ``root/kind`` ("blobs" or "warc") without a marker of their
    present size. A blob never changes, so its marker is enough; a WARC file's is read."""
    pattern = _BLOB_FILE if kind == "blobs" else _WARC_FILE
    for folder, _subfolders, names in os.walk(root / kind):
        here = set(names)
        for name in sorted(names):
            path = Path(folder) / name
            if not pattern.fullmatch(path.relative_to(root).as_posix()):
                continue  # markers, temporary files of writes and downloads under way
            if name + _PUSHED in here and (
                    kind == "blobs" or _pushed_size(path) == path.stat().st_size):
                continue
            yield path


def _pushed_size(path: Path) -> int | None:
    """The size its marker says object storage has of ``path`` (None: no readable marker)."""
    try:
        return int(path.with_name(path.name + _PUSHED).read_text(encoding="ascii"))
    except (OSError, ValueError):
        return None


def _mark_pushed(path: Path, size: int) -> None:
    # Not fsync'ed: a marker lost in a power cut costs one look-up in object storage.
    path.with_name(path.name + _PUSHED).write_text(f"{size}\n", encoding="ascii")


def _make_dirs(folder: Path) -> None:
    """``mkdir -p`` that makes each new directory's entry durable too."""
    if folder.is_dir():
        return
    _make_dirs(folder.parent)
    with suppress(FileExistsError):
        folder.mkdir()
        _fsync_dir(folder.parent)


def _fsync_dir(folder: Path) -> None:
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


# -- reading -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class StoredRecord:
    """One WARC record read back: its headers now, its payload streamed on demand."""

    path: Path
    offset: int
    length: int
    warc_headers: Headers
    http_start_line: str | None  # "HTTP/1.1 200 OK", "GET /a HTTP/1.1"; None without HTTP
    http_headers: Headers
    payload_start: int  # where the payload starts in the decompressed record
    payload_length: int

    @property
    def record_type(self) -> str:
        return self.warc_header("WARC-Type") or ""

    @property
    def record_id(self) -> str:
        return self.warc_header("WARC-Record-ID") or ""

    @property
    def status(self) -> int | None:
        """The HTTP status of a response record."""
        if self.record_type != "response" or not self.http_start_line:
            return None
        return int(self.http_start_line.split()[1])

    def warc_header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.warc_headers if k.lower() == lowered), None)

    def open_payload(self) -> BinaryIO:
        """The payload: a response's body, a request's body, a metadata or warcinfo block.
        Reading it to the end also checks the rest of the record (gzip CRC, length)."""
        return io.BufferedReader(_PayloadReader(self), _CHUNK)


class _Inflater:
    """The decompressed bytes of the gzip member at ``offset``, reading no further than ``end``."""

    def __init__(self, file: BinaryIO, offset: int, end: int, path: Path) -> None:
        file.seek(offset)
        self._file, self._offset, self._unread, self._path = file, offset, end - offset, path
        self._zlib = zlib.decompressobj(zlib.MAX_WBITS | 16)
        self._input = b""

    def damaged(self, why: str) -> EvidenceCorruptError:
        return EvidenceCorruptError(f"{self._path}: record at offset {self._offset}: {why}",
                                    self._offset)

    def read(self, limit: int = _CHUNK) -> bytes:
        """Up to ``limit`` bytes; b"" only at the member's end (damage raises)."""
        while not self._zlib.eof:
            try:
                out = self._zlib.decompress(self._input, limit)
            except zlib.error as exc:
                raise self.damaged(f"damaged gzip data ({exc})") from None
            self._input = self._zlib.unconsumed_tail
            if out:
                return out
            if not self._input and not self._zlib.eof:
                self._input = self._file.read(min(_CHUNK, self._unread))
                if not self._input:
                    raise self.damaged("the data ends inside the record")
                self._unread -= len(self._input)
        return b""

    @property
    def member_length(self) -> int:
        """The member's compressed length (once ``read`` has returned b"")."""
        read = self._file.tell() - self._offset
        return read - len(self._zlib.unused_data) - len(self._input)


@dataclass(frozen=True)
class _Head:
    warc: Any  # StatusAndHeaders
    http: Any  # StatusAndHeaders | None
    block_start: int
    payload_start: int
    content_length: int


def _read_head(inflater: _Inflater) -> tuple[_Head, bytes]:
    """Parse the header blocks; also returns every decompressed byte read to do so."""
    data = bytearray()
    # The first blank line ends the WARC header, the second is at or after the HTTP one's end.
    while data.count(b"\r\n\r\n") < 2 and len(data) < _MAX_HEAD:
        chunk = inflater.read()
        if not chunk:
            break
        data += chunk
    stream = io.BytesIO(bytes(data))
    try:
        warc = _WARC_PARSER.parse(stream)
        block_start = stream.tell()
        content_length = int(warc.get_header("Content-Length", ""))
    except (EOFError, StatusAndHeadersParserException, ValueError):
        raise inflater.damaged("not a WARC record header") from None
    if not data[:block_start].endswith(b"\r\n\r\n"):
        raise inflater.damaged("WARC header cut short")
    http, payload_start = None, block_start
    if warc.get_header("WARC-Type") in ("request", "response") and content_length:
        try:
            http = _HTTP_PARSER.parse(stream)
        except EOFError:
            raise inflater.damaged("no HTTP header") from None
        payload_start = stream.tell()
        if (not data[:payload_start].endswith(b"\r\n\r\n")
                or payload_start - block_start > content_length):
            raise inflater.damaged("HTTP header cut short")
    return _Head(warc, http, block_start, payload_start, content_length), bytes(data)


def _record(path: Path, offset: int, length: int, head: _Head) -> StoredRecord:
    http = head.http
    return StoredRecord(
        path=path, offset=offset, length=length, warc_headers=list(head.warc.headers),
        http_start_line=f"{http.protocol} {http.statusline}" if http is not None else None,
        http_headers=list(http.headers) if http is not None else [],
        payload_start=head.payload_start,
        payload_length=head.content_length - (head.payload_start - head.block_start))


def _scan(file: BinaryIO, offset: int, end: int, path: Path) -> StoredRecord:
    """Read the whole member at ``offset`` and check it holds exactly one whole record."""
    inflater = _Inflater(file, offset, end, path)
    head, data = _read_head(inflater)
    size, tail = len(data), data[-4:]
    while chunk := inflater.read():
        size += len(chunk)
        tail = (tail + chunk)[-4:]
    if size != head.block_start + head.content_length + 4 or tail != b"\r\n\r\n":
        raise inflater.damaged("record length does not match its Content-Length")
    return _record(path, offset, inflater.member_length, head)


def iter_records(path: Path) -> Iterator[StoredRecord]:
    """Every record of a WARC file, in order; damage raises ``EvidenceCorruptError`` there."""
    with open(path, "rb") as file:
        end, offset = os.fstat(file.fileno()).st_size, 0
        while offset < end:
            record = _scan(file, offset, end, Path(path))
            yield record
            offset += record.length


class _PayloadReader(io.RawIOBase):
    def __init__(self, record: StoredRecord) -> None:
        super().__init__()
        self._file = open(record.path, "rb")  # noqa: SIM115 (closed by close())
        self._inflater = _Inflater(self._file, record.offset, record.offset + record.length,
                                   record.path)
        self._record, self._skip, self._left = record, record.payload_start, record.payload_length
        self._checked = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        while self._skip:
            chunk = self._inflater.read(min(self._skip, _CHUNK))
            if not chunk:
                raise self._inflater.damaged("ends before its payload")
            self._skip -= len(chunk)
        if self._left == 0:
            self._check_end()
            return 0
        view = memoryview(buffer).cast("B")
        chunk = self._inflater.read(min(len(view), self._left))
        if not chunk:
            raise self._inflater.damaged("ends inside its payload")
        view[:len(chunk)] = chunk
        self._left -= len(chunk)
        return len(chunk)

    def _check_end(self) -> None:
        if self._checked:
            return
        rest = b""
        while len(rest) <= 4 and (chunk := self._inflater.read(8)):
            rest += chunk
        if rest != b"\r\n\r\n" or self._inflater.member_length != self._record.length:
            raise self._inflater.damaged("does not end where its length says")
        self._checked = True

    def close(self) -> None:
        if not self.closed:
            self._file.close()
        super().close()


# -- crash repair ------------------------------------------------------------------------------

def repair(path: Path) -> RepairReport:
    """Cut a record torn by a crash off the end of a WARC file, and say what was cut. Damage
    followed by intact records is not a torn tail: that raises and nothing is cut."""
    with open(path, "r+b") as file:
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise EvidenceFileBusyError(f"{path} is being written by a live writer") from None
        size, offset, records = os.fstat(file.fileno()).st_size, 0, 0
        while offset < size:
            try:
                offset += _scan(file, offset, size, Path(path)).length
            except EvidenceCorruptError as exc:
                if _intact_record_after(file, offset, size, Path(path)):
                    raise EvidenceCorruptError(
                        f"{exc}; intact records follow, so it is not a torn tail: not cut",
                        offset) from None
                file.truncate(offset)
                os.fsync(file.fileno())
                return RepairReport(Path(path), records, offset, size - offset, str(exc))
            records += 1
        return RepairReport(Path(path), records, size, 0, None)


def _intact_record_after(file: BinaryIO, start: int, end: int, path: Path) -> bool:
    position = start + 1
    while position < end:
        file.seek(position)
        found = file.read(_CHUNK + len(_GZIP_MAGIC)).find(_GZIP_MAGIC)
        if found < 0:
            position += _CHUNK
            continue
        try:
            _scan(file, position + found, end, path)
            return True
        except EvidenceCorruptError:
            position += found + 1
    return False
