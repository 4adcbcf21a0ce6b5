"""`copyguard identify` against a 30-recording synthesised catalog (the foundation's acceptance)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fingerprints.alter import encode, excerpt, reencode
from fingerprints.synth import synthesize_track, write_wav
from tests.monitor.conftest import CATALOG_SIZE, RATE, TRACK_SECONDS, Cli, make_cli


@pytest.fixture(scope="module")
def catalog_cli(tmp_path_factory: pytest.TempPathFactory, catalog_dir: Path) -> Cli:
    cli = make_cli(tmp_path_factory.mktemp("identify-home"))
    cli("holders", "add", "Acme Music", "--email", "legal@acme.example")
    cli("catalog", "import", str(catalog_dir), "--holder", "Acme Music")
    return cli


@pytest.fixture(scope="module")
def queries(tmp_path_factory: pytest.TempPathFactory,
            track_samples: Callable[[int], Any]) -> list[tuple[Path, int | None, float | None]]:
    """(file, expected track seed or None, true ref_start): clean and MP3 10 s excerpts of every
    catalog track at a random offset, unrelated music, and noise."""
    folder = tmp_path_factory.mktemp("queries")
    rng = np.random.default_rng(1234)
    made: list[tuple[Path, int | None, float | None]] = []
    for seed in range(1, CATALOG_SIZE + 1):
        start = round(float(rng.uniform(0.0, TRACK_SECONDS - 10.0)), 2)
        clip = excerpt(track_samples(seed), RATE, start, 10.0)
        clean = folder / f"clean-{seed:02d}.wav"
        write_wav(clean, clip, RATE)
        made.append((clean, seed, start))
        mp3 = folder / f"mp3-{seed:02d}.mp3"
        mp3.write_bytes(encode(clip, RATE, "mp3", "64k"))
        made.append((mp3, seed, start))
    for seed in (501, 502, 503, 504, 505):
        other = folder / f"unrelated-{seed}.wav"
        write_wav(other, synthesize_track(seed, 10.0, RATE), RATE)
        made.append((other, None, None))
    noise = folder / "noise.wav"
    write_wav(noise, (rng.standard_normal(10 * RATE) * 0.2).astype(np.float32), RATE)
    made.append((noise, None, None))
    return made


def test_excerpts_identified_with_right_offset_and_unknown_audio_is_null(
        catalog_cli: Cli, queries: list[tuple[Path, int | None, float | None]]) -> None:
    ids = {rec["file"]: rec["id"] for rec in catalog_cli.json_lines("catalog", "list", "--json")}
    lines = catalog_cli.json_lines("identify", "--json", *(str(q[0]) for q in queries))
    assert [line["file"] for line in lines] == [str(q[0]) for q in queries]
    wrong = []
    for (path, seed, start), line in zip(queries, lines, strict=True):
        match = line["match"]
        if seed is None:
            if match is not None:
                wrong.append(f"{path.name}: false match {match}")
            continue
        if match is None or match["recording_id"] != ids[f"track-{seed:02d}.wav"]:
            wrong.append(f"{path.name}: {match}")
        # ref_start is the reference time aligned with query_start, so the excerpt's start in
        # the recording is ref_start - query_start (at unchanged speed).
        elif abs(match["ref_start"] - match["query_start"] - start) > 0.5:
            wrong.append(f"{path.name}: aligned at {match['ref_start']} - "
                         f"{match['query_start']}, true {start}")
        else:
            assert match["holder"] == "Acme Music" and match["title"] == f"track-{seed:02d}"
            assert 0.5 <= match["confidence"] <= 1.0
            assert match["query_end"] > match["query_start"]
    assert not wrong, wrong


def test_undecodable_files_get_an_error_line_and_the_rest_still_run(
        catalog_cli: Cli, tmp_path: Path, catalog_dir: Path) -> None:
    truncated = tmp_path / "truncated.mp3"
    full = reencode(synthesize_track(2, 12.0, RATE), RATE)  # a real MP3 of 12 s
    truncated.write_bytes(encode(full, RATE)[:300])
    random_bytes = tmp_path / "random.ogg"
    random_bytes.write_bytes(np.random.default_rng(5).bytes(50_000))
    good = catalog_dir / "track-07.wav"
    result = catalog_cli("identify", "--json", str(truncated), str(random_bytes), str(good),
                         str(tmp_path / "missing.wav"))
    assert result.exit_code == 0
    lines = [line for line in result.stdout.splitlines() if line]
    parsed = [json.loads(line) for line in lines]
    assert "error" in parsed[0] and "error" in parsed[1] and "error" in parsed[3]
    assert parsed[2]["match"]["title"] == "track-07"


def test_readable_table_without_json(catalog_cli: Cli, catalog_dir: Path) -> None:
    out = catalog_cli("identify", str(catalog_dir / "track-09.wav")).stdout
    assert "track-09" in out and "Acme Music" in out
