"""The catalog's reference audio: each recording as the fingerprinter heard it.

Every imported recording is kept as lossless FLAC of its decoded mono signal (``SAMPLE_RATE``),
named by the SHA-256 of the file it came from. With it a catalog can be fingerprinted again
whenever the fingerprint scheme improves, without asking rights-holders for their files, and
reports can show the reference next to an infringing copy. About 13 kB per second of audio.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import soundfile

from fingerprints.audio import Audio
from fingerprints.decode import decode_file
from fingerprints.errors import FingerprintError


class ReferenceStore:
    """Content-addressed FLAC files below one directory."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def relative_path(self, key: str) -> str:
        if len(key) < 3 or not key.isalnum():
            raise ValueError(f"not a content key: {key!r}")
        return f"{key[:2]}/{key}.flac"

    def put(self, key: str, audio: Audio) -> str:
        """Store ``audio`` under ``key`` (a no-op when it is there) and return its path."""
        relative = self.relative_path(key)
        target = self.directory / relative
        if target.exists():
            return relative
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".flac.part")
        os.close(handle)
        try:
            soundfile.write(temporary, audio.samples, audio.sample_rate, format="FLAC",
                            subtype="PCM_16")
            os.replace(temporary, target)  # readers never see half a file
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
        return relative

    def load(self, relative: str) -> Audio:
        path = self.directory / relative
        if not path.is_file():
            raise FingerprintError(f"reference audio missing: {path}")
        info = soundfile.info(str(path))
        return decode_file(path, sample_rate=int(info.samplerate))
