"""``dossier verify``: prove a dossier (a directory or a zip) is as exported.

Checks, without the database: every file the manifest lists is there with its SHA-256 and size;
no file was added; the chain-of-custody extract links and every entry in it matches its hash;
each WARC record's payload matches its WARC-Payload-Digest; and, where a time-stamp token is
present, that it is over this manifest (and, given the TSA's CA, that its signature holds).
Every problem names the file.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed

from litigation.custody import verify_lines
from litigation.errors import TimestampError
from litigation.manifest import FORMAT, MANIFEST, TOKEN, UNLISTED, hash_stream
from litigation.timestamp import check_token


@dataclass
class VerifyReport:
    path: str
    files: int = 0
    audit_entries: int = 0
    warc_records: int = 0
    timestamp: str | None = None  # the token's time, when there is one
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class _Tree:
    """The dossier's files, in a directory or a zip, by relative path."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._zip = zipfile.ZipFile(path) if path.is_file() else None
        if self._zip is not None:
            self.names = {info.filename for info in self._zip.infolist() if not info.is_dir()}
        else:
            self.names = {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()}

    @contextmanager
    def open(self, name: str) -> Iterator[BinaryIO]:
        if self._zip is not None:
            with self._zip.open(name) as stream:
                yield stream  # type: ignore[misc]
        else:
            with (self.path / name).open("rb") as stream:
                yield stream

    def read(self, name: str) -> bytes:
        with self.open(name) as stream:
            return stream.read()

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


def verify_dossier(path: Path, *, ca_file: str | None = None) -> VerifyReport:
    report = VerifyReport(str(path))
    if not path.exists():
        report.problems.append(f"{path}: no such file or directory")
        return report
    try:
        tree = _Tree(path)
    except (zipfile.BadZipFile, OSError) as exc:
        report.problems.append(f"{path}: not a dossier directory or zip ({exc})")
        return report
    try:
        _verify(tree, report, ca_file)
    finally:
        tree.close()
    return report


def _verify(tree: _Tree, report: VerifyReport, ca_file: str | None) -> None:
    if MANIFEST not in tree.names:
        report.problems.append(f"{MANIFEST}: missing: this is not a dossier, or it was removed")
        return
    raw = tree.read(MANIFEST)
    try:
        manifest = json.loads(raw)
        listed = {entry["path"]: entry for entry in manifest["files"]}
    except (ValueError, KeyError, TypeError):
        report.problems.append(f"{MANIFEST}: not a readable manifest")
        return
    if manifest.get("format") != FORMAT:
        report.problems.append(f"{MANIFEST}: format {manifest.get('format')!r}, expected "
                               f"{FORMAT!r}")
    for name, entry in sorted(listed.items()):
        if _unsafe(name):
            report.problems.append(f"{name}: the manifest names a path outside the dossier")
            continue
        if name not in tree.names:
            report.problems.append(f"{name}: missing (listed in the manifest)")
            continue
        with tree.open(name) as stream:
            sha256, size = hash_stream(stream)
        report.files += 1
        if sha256 != entry.get("sha256") or size != entry.get("size"):
            report.problems.append(f"{name}: changed (SHA-256 {sha256}, the manifest says "
                                   f"{entry.get('sha256')})")
    for name in sorted(tree.names - set(listed) - UNLISTED):
        report.problems.append(f"{name}: added (not in the manifest)")
    _verify_custody(tree, manifest, report)
    _verify_warcs(tree, listed, report)
    _verify_token(tree, raw, manifest, report, ca_file)


def _unsafe(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return name.startswith("/") or ".." in parts or not parts


def _verify_custody(tree: _Tree, manifest: dict[str, Any], report: VerifyReport) -> None:
    audit = manifest.get("audit") or {}
    name = audit.get("file")
    if not name:
        return
    if name not in tree.names:
        return  # already reported missing
    lines = tree.read(name).decode("utf-8", errors="replace").splitlines()
    custody = verify_lines(lines, name=name)
    report.audit_entries = custody.entries
    report.problems += custody.problems
    if audit.get("last_hash") and custody.last_hash != audit["last_hash"]:
        report.problems.append(f"{name}: ends at hash {custody.last_hash}, the manifest says "
                               f"{audit['last_hash']}")


def _payload_digest(payload: bytes) -> str:
    return "sha256:" + base64.b32encode(hashlib.sha256(payload).digest()).decode()


def _verify_warcs(tree: _Tree, listed: dict[str, Any], report: VerifyReport) -> None:
    for name in sorted(n for n in listed if n.endswith(".warc.gz") and n in tree.names):
        try:
            with tree.open(name) as stream:
                data = io.BytesIO(stream.read())
            for record in ArchiveIterator(data):
                expected = record.rec_headers.get_header("WARC-Payload-Digest")
                payload = record.content_stream().read()
                report.warc_records += 1
                if expected and expected.startswith("sha256:") and \
                        _payload_digest(payload) != expected:
                    report.problems.append(
                        f"{name}: record {record.rec_headers.get_header('WARC-Record-ID')}: "
                        "payload does not match its WARC-Payload-Digest")
        except (ArchiveLoadFailed, OSError, EOFError, ValueError) as exc:
            report.problems.append(f"{name}: not a readable WARC file ({exc})")


def _verify_token(tree: _Tree, raw: bytes, manifest: dict[str, Any], report: VerifyReport,
                  ca_file: str | None) -> None:
    stamped = (manifest.get("timestamp") or {}).get("requested", False)
    if TOKEN not in tree.names:
        if stamped:
            report.problems.append(f"{TOKEN}: missing (the manifest says it was time-stamped)")
        return
    try:
        token = check_token(tree.read(TOKEN), hashlib.sha256(raw).digest(), ca_file=ca_file)
    except TimestampError as exc:
        report.problems.append(f"{TOKEN}: {exc}")
        return
    report.timestamp = token.gen_time.isoformat()
