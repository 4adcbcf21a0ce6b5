"""A dossier's manifest: every file with its SHA-256 and size, so any change, addition or
deletion shows. ``manifest.json`` itself is what a time-stamping authority signs (its SHA-256,
token in ``manifest.tst``)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

FORMAT = "copyguard-dossier/1"
MANIFEST = "manifest.json"
TOKEN = "manifest.tst"  # the RFC 3161 TimeStampToken (DER) over manifest.json's SHA-256
# Files a dossier holds that the manifest cannot list: itself and the token over it.
UNLISTED = frozenset({MANIFEST, TOKEN})
_CHUNK = 1 << 20


@dataclass(frozen=True)
class FileEntry:
    path: str  # relative, with forward slashes
    sha256: str
    size: int


def hash_stream(stream: BinaryIO) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    while chunk := stream.read(_CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def hash_tree(root: Path) -> list[FileEntry]:
    """Every file below ``root`` but the manifest and its token, sorted by path."""
    entries = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root).as_posix()
        if relative in UNLISTED:
            continue
        with path.open("rb") as stream:
            sha256, size = hash_stream(stream)
        entries.append(FileEntry(relative, sha256, size))
    return entries


def manifest_bytes(header: dict[str, Any], files: Iterable[FileEntry]) -> bytes:
    body = {**header, "format": FORMAT,
            "files": [{"path": f.path, "sha256": f.sha256, "size": f.size} for f in files]}
    return (json.dumps(body, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
