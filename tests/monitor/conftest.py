"""CLI fixtures: a synthesised catalog on disk and a runner bound to a fresh data directory."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from fingerprints.synth import synthesize_track, write_wav
from monitor.cli import app
from monitor.demo_site import TRACKS_NEEDED, DemoSite, build_site

RATE = 22050
TRACK_SECONDS = 40.0
CATALOG_SIZE = 30


@dataclass(frozen=True)
class Cli:
    env: dict[str, str]

    def __call__(self, *args: str, ok: bool = True) -> Result:
        result = CliRunner().invoke(app, list(args), env=self.env, catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, (result.stdout, result.stderr)
        return result

    def json_lines(self, *args: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self(*args).stdout.splitlines() if line.strip()]


@pytest.fixture(scope="session")
def track_samples() -> Callable[[int], Any]:
    cache: dict[int, Any] = {}

    def get(seed: int) -> Any:
        if seed not in cache:
            cache[seed] = synthesize_track(seed=seed, seconds=TRACK_SECONDS, sample_rate=RATE)
        return cache[seed]
    return get


@pytest.fixture(scope="session")
def catalog_dir(tmp_path_factory: pytest.TempPathFactory,
                track_samples: Callable[[int], Any]) -> Path:
    """30 distinct synthesised recordings, seeds 1..30, as track-NN.wav."""
    folder = tmp_path_factory.mktemp("catalog")
    for seed in range(1, CATALOG_SIZE + 1):
        write_wav(folder / f"track-{seed:02d}.wav", track_samples(seed), RATE)
    return folder


def make_cli(home: Path, database_url: str | None = None) -> Cli:
    """The CLI on the data directory ``home`` (SQLite inside it unless a URL is given)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("COPYGUARD_")}
    env["COPYGUARD_HOME"] = str(home)
    if database_url:
        env["COPYGUARD_DATABASE_URL"] = database_url
    return Cli(env)


@pytest.fixture
def cli(tmp_path: Path, database_url: str) -> Cli:
    """The CLI on a fresh data directory, once with SQLite and once with PostgreSQL."""
    return make_cli(tmp_path / "home", database_url)


@pytest.fixture
def sqlite_cli(tmp_path: Path) -> Cli:
    """The CLI on the embedded default: a fresh data directory with SQLite inside it."""
    return make_cli(tmp_path / "home")


# The demonstration site with altered copies of a synthesised catalog (monitor.demo_site), for the
# end-to-end tests of the crawl and of the takedown stage.
DEMO_RATE = 22050
DEMO_SECONDS = 30.0
DEMO_PRIVATE_LINKS = ("http://10.255.255.1/stolen.mp3",
                      "http://localhost:{port}/media/blog-64k.mp3",
                      "http://127.0.0.2:{port}/media/x.mp3", "http://2130706433:{port}/media/y.mp3")


@pytest.fixture(scope="session")
def demo_tracks() -> list[Any]:
    return [synthesize_track(40 + i, DEMO_SECONDS, DEMO_RATE) for i in range(TRACKS_NEEDED)]


@pytest.fixture(scope="session")
def demo_catalog(tmp_path_factory: pytest.TempPathFactory, demo_tracks: list[Any]) -> Path:
    """The demo site's catalog as track-NN.wav files."""
    folder = tmp_path_factory.mktemp("demo-catalog")
    for number, samples in enumerate(demo_tracks):
        write_wav(folder / f"track-{number:02d}.wav", samples, DEMO_RATE)
    return folder


@pytest.fixture(scope="session")
def demo_site(tmp_path_factory: pytest.TempPathFactory, demo_tracks: list[Any]) -> DemoSite:
    return build_site(tmp_path_factory.mktemp("demo-site"), demo_tracks, DEMO_RATE,
                      oversized_bytes=3 * 1024 * 1024, private_links=DEMO_PRIVATE_LINKS)
