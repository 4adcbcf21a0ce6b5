"""Recognising audio by its bytes, not by its URL or Content-Type.

Sites serve audio under any name (``download.php?id=7``) and any type (``text/plain``,
``application/octet-stream``), and pages under audio-looking names. The first bytes of a
response say what it is; a decode probe (ffmpeg, later) has the last word. Reads no settings.
"""

from __future__ import annotations

from enum import StrEnum

# Bytes a response's start must provide for :func:`sniff` to decide (three MPEG-TS packets).
SNIFF_BYTES = 512
_TS_PACKET = 188


class Kind(StrEnum):
    AUDIO = "audio"  # a container or stream ffmpeg can decode as audio (video files included)
    PLAYLIST = "playlist"  # an HLS (m3u8) playlist: its segments are fetched and joined
    OTHER = "other"


def sniff(head: bytes) -> tuple[Kind, str]:
    """What the first bytes of a response are: (kind, format name)."""
    if head.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark before a playlist
        head = head[3:]
    if head.startswith(b"#EXTM3U"):
        return Kind.PLAYLIST, "hls"
    for magic, offset, name in _MAGIC:
        if head[offset:offset + len(magic)] == magic:
            if name == "riff" and head[8:12] not in (b"WAVE", b"AVI "):
                continue
            if name == "aiff" and head[8:12] not in (b"AIFF", b"AIFC"):
                continue
            return Kind.AUDIO, name
    if _mpeg_audio_frame(head):
        return Kind.AUDIO, "mpeg-audio"
    if _adts_frame(head):
        return Kind.AUDIO, "aac-adts"
    if len(head) > 2 * _TS_PACKET and all(head[i * _TS_PACKET] == 0x47 for i in range(3)):
        return Kind.AUDIO, "mpeg-ts"  # HLS segments
    return Kind.OTHER, ""


_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"ID3", 0, "mp3"),
    (b"OggS", 0, "ogg"),
    (b"fLaC", 0, "flac"),
    (b"RIFF", 0, "riff"),
    (b"FORM", 0, "aiff"),
    (b"ftyp", 4, "mp4"),
    (b"\x1a\x45\xdf\xa3", 0, "matroska"),
    (b"#!AMR", 0, "amr"),
    (b"MAC ", 0, "ape"),
    (b"wvpk", 0, "wavpack"),
    (b"0&\xb2u\x8ef\xcf\x11", 0, "asf"),
    (b".snd", 0, "au"),
)


def _mpeg_audio_frame(head: bytes) -> bool:
    """An MPEG-1/2 audio frame header (MP3 without ID3 tag): 11 sync bits, a valid version,
    layer, bitrate and sample rate."""
    if len(head) < 4 or head[0] != 0xFF or (head[1] & 0xE0) != 0xE0:
        return False
    version, layer = (head[1] >> 3) & 0x3, (head[1] >> 1) & 0x3
    bitrate, rate = head[2] >> 4, (head[2] >> 2) & 0x3
    return version != 1 and layer != 0 and bitrate not in (0, 15) and rate != 3


def _adts_frame(head: bytes) -> bool:
    """An AAC ADTS frame header: 12 sync bits, layer 0, a valid sampling-frequency index."""
    return (len(head) >= 7 and head[0] == 0xFF and (head[1] & 0xF6) == 0xF0
            and ((head[2] >> 2) & 0xF) < 13)
