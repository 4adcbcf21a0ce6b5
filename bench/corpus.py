"""The benchmark's audio: Debian's music packages, installed when missing, and their tracks.

The catalog is every track of ``wesnoth-1.16-music`` (real recorded music, Ogg Vorbis). Music
that is *not* in the catalog, for negative queries and as the surroundings of embedded
excerpts, comes from ``planetblupi-music-ogg``. Both are installed with apt-get when they are
missing and we are root; otherwise the command to run is given in the error. Reads no settings.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from fingerprints import decode_file

log = logging.getLogger(__name__)

CATALOG_PACKAGE = "wesnoth-1.16-music"
UNRELATED_PACKAGE = "planetblupi-music-ogg"
_AUDIO_SUFFIXES = (".ogg", ".mp3", ".flac", ".wav", ".opus")


class CorpusError(RuntimeError):
    """A corpus package is missing and cannot be installed here, or holds no audio."""


@dataclass(frozen=True)
class Track:
    """One audio file of a corpus package."""

    recording_id: int
    path: Path
    duration: float  # seconds, as ffprobe reports it

    @property
    def name(self) -> str:
        return self.path.stem


def ensure_packages(packages: tuple[str, ...] = (CATALOG_PACKAGE, UNRELATED_PACKAGE)) -> None:
    """Install the missing ``packages`` with apt-get (as root), or say how to."""
    missing = [name for name in packages if not _installed(name)]
    if not missing:
        return
    command = ["apt-get", "install", "-y", "--no-install-recommends", *missing]
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise CorpusError(
            f"the benchmark needs the Debian packages {' '.join(missing)}; install them with:"
            f"  sudo {' '.join(command)}"
        )
    log.info("installing %s with apt-get (about 210 MB to download)", " ".join(missing))
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    done = subprocess.run(command, env=environment, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        # A stale package list is the usual cause: refresh it once and try again.
        subprocess.run(["apt-get", "update", "-qq"], env=environment, check=False)
        done = subprocess.run(command, env=environment, capture_output=True, text=True,
                              check=False)
    if done.returncode != 0:
        raise CorpusError(f"{' '.join(command)} failed: {done.stderr.strip()[-500:]}")


def package_tracks(package: str, first_id: int = 1) -> list[Track]:
    """The audio files of an installed Debian package, sorted by path, numbered from
    ``first_id``."""
    done = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise CorpusError(f"package {package} is not installed: {done.stderr.strip()}")
    paths = sorted(
        Path(line) for line in done.stdout.splitlines()
        if line.lower().endswith(_AUDIO_SUFFIXES) and Path(line).is_file()
    )
    if not paths:
        raise CorpusError(f"package {package} holds no audio files")
    return [
        Track(recording_id=first_id + number, path=path, duration=probe_duration(path))
        for number, path in enumerate(paths)
    ]


def probe_duration(path: Path) -> float:
    """Duration in seconds from the container (ffprobe); decodes when ffprobe cannot tell."""
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
         str(path)],
        capture_output=True, text=True, check=False,
    )
    try:
        return float(done.stdout.strip())
    except ValueError:
        return decode_file(path).duration


def _installed(package: str) -> bool:
    done = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True,
        check=False,
    )
    return done.returncode == 0 and "install ok installed" in done.stdout
