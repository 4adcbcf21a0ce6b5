"""Chromaprint (AcoustID) fingerprints and their similarity, for whole-recording comparison.

Landmarks find excerpts; Chromaprint answers a different question cheaply: are these two
files the same recording (say a rights holder registered one twice, once as FLAC and once as
MP3)? The raw fingerprint is one 32-bit sub-fingerprint per ~0.124 s of audio, computed by
libchromaprint through pyacoustid's ``chromaprint`` module. Reads no settings.
"""

from __future__ import annotations

import chromaprint
import numpy as np

from fingerprints.audio import Audio
from fingerprints.errors import FingerprintError

# Unrelated audio agrees on about half of the bits; at or below this bit-error rate the
# fingerprints are taken as the same recording (a 64 kbit/s MP3 re-encode stays near 0.1).
_UNRELATED_BER = 0.5
_SAME_BER = 0.08


def chromaprint_fingerprint(audio: Audio) -> np.ndarray:
    """Raw Chromaprint sub-fingerprints (uint32) of ``audio``, from 16-bit PCM."""
    pcm = (np.clip(audio.samples, -1.0, 1.0) * 32767.0).astype("<i2")
    try:
        fingerprinter = chromaprint.Fingerprinter()
        fingerprinter.start(audio.sample_rate, 1)
        fingerprinter.feed(pcm.tobytes())
        encoded = fingerprinter.finish()
        raw, _algorithm = chromaprint.decode_fingerprint(encoded)
    except chromaprint.FingerprintError as error:
        raise FingerprintError(f"chromaprint failed: {error}") from error
    return np.asarray(raw, dtype=np.int64).astype(np.uint32)


def chromaprint_similarity(
    a: np.ndarray, b: np.ndarray, *, max_offset: int = 20, min_overlap: int = 40
) -> float:
    """How alike two raw Chromaprint fingerprints are, in [0, 1].

    For every relative shift of up to ``max_offset`` sub-fingerprints (about 2.5 s) whose
    overlap is at least ``min_overlap`` items (~5 s, or the shorter fingerprint), the bit
    error rate of the overlap is measured; the best shift's rate is mapped linearly so that
    unrelated audio (about half the bits differ) gives 0 and a faithful copy (bit error rate
    ``_SAME_BER`` or less) gives 1.
    """
    first = np.asarray(a, dtype=np.uint32)
    second = np.asarray(b, dtype=np.uint32)
    if len(first) == 0 or len(second) == 0:
        return 0.0
    needed = min(min_overlap, len(first), len(second))
    best_ber = 1.0
    for shift in range(-max_offset, max_offset + 1):
        x = first[max(0, shift) :]
        y = second[max(0, -shift) :]
        length = min(len(x), len(y))
        if length < needed:
            continue
        differing = np.bitwise_xor(x[:length], y[:length])
        errors = int(np.unpackbits(differing.view(np.uint8)).sum())
        best_ber = min(best_ber, errors / (32.0 * length))
    similarity = (_UNRELATED_BER - best_ber) / (_UNRELATED_BER - _SAME_BER)
    return float(np.clip(similarity, 0.0, 1.0))
