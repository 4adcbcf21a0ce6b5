"""Recognising audio by its bytes: real files made by ffmpeg, and look-alikes that are not."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from fingerprints import SAMPLE_RATE, synthesize_track, write_wav
from monitor.crawl.sniff import SNIFF_BYTES, Kind, sniff


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sniff") / "source.wav"
    write_wav(path, synthesize_track(3, 2.0, SAMPLE_RATE), SAMPLE_RATE)
    return path


@pytest.mark.parametrize(("suffix", "args", "name"), [
    (".wav", [], "riff"),
    (".mp3", ["-c:a", "libmp3lame"], "mp3"),
    (".mp3", ["-c:a", "libmp3lame", "-id3v2_version", "0", "-write_xing", "0"], "mpeg-audio"),
    (".ogg", ["-c:a", "libvorbis"], "ogg"),
    (".opus", ["-c:a", "libopus"], "ogg"),
    (".flac", [], "flac"),
    (".m4a", ["-c:a", "aac"], "mp4"),
    (".aac", ["-c:a", "aac", "-f", "adts"], "aac-adts"),
    (".webm", ["-c:a", "libopus"], "matroska"),
    (".ts", ["-c:a", "aac", "-f", "mpegts"], "mpeg-ts"),
    (".aiff", [], "aiff"),
])
def test_audio_is_recognised_by_its_bytes(source: Path, tmp_path: Path, suffix: str,
                                          args: list[str], name: str) -> None:
    target = tmp_path / f"file{suffix}"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(source), *args,
                    str(target)], check=True)
    assert sniff(target.read_bytes()[:SNIFF_BYTES]) == (Kind.AUDIO, name)


def test_an_hls_playlist_is_recognised() -> None:
    playlist = b"\xef\xbb\xbf#EXTM3U\n#EXT-X-VERSION:3\n#EXTINF:10,\nseg0.ts\n"
    assert sniff(playlist) == (Kind.PLAYLIST, "hls")


@pytest.mark.parametrize("head", [
    b"<!DOCTYPE html><html><head><title>song.mp3</title>",
    b"GIF89a\x01\x00\x01\x00",
    b"\x89PNG\r\n\x1a\n",
    b"%PDF-1.7",
    b"RIFF\x00\x00\x00\x00WEBPVP8 ",
    b"\xff\xd8\xff\xe0\x00\x10JFIF",
    b"",
])
def test_other_bytes_are_not_audio(head: bytes) -> None:
    assert sniff(head)[0] is Kind.OTHER


def test_random_bytes_are_rarely_taken_for_audio() -> None:
    # A headerless MP3 starts with a 4-byte frame header that random bytes match about once in
    # two thousand; those few fail the decode probe that follows the sniff.
    rng = np.random.default_rng(1)
    heads = [bytes(rng.integers(0, 256, SNIFF_BYTES, dtype=np.uint8)) for _ in range(4000)]
    assert sum(sniff(head)[0] is not Kind.OTHER for head in heads) <= 8
