"""Audio fingerprinting for copyguard, usable on its own (it imports nothing else of ours).

- :func:`decode_file` / :func:`decode_bytes`: any audio to mono float32 at ``SAMPLE_RATE`` via
  ffmpeg in a time- and memory-limited subprocess (:mod:`fingerprints.decode`).
- :func:`extract_landmarks`: spectral peak-pair hashes (:mod:`fingerprints.landmarks`).
- :class:`FingerprintIndex`: an on-disk, memory-mapped index of many recordings' landmarks.
- :class:`SqlFingerprintIndex`: the same index kept in PostgreSQL, shared by many workers
  (:mod:`fingerprints.sql_index`); :class:`SearchIndex` is what both provide.
- :class:`Matcher`: finds which indexed recording a query contains, where, and with what
  calibrated confidence (:mod:`fingerprints.matcher`); through speed, pitch and tempo changes
  with the invariant peak-group hashes of :mod:`fingerprints.triplets` and
  :mod:`fingerprints.invariant` (tuned by :class:`InvariantParams`).
- :func:`chromaprint_fingerprint` / :func:`chromaprint_similarity`: whole-recording comparison.
- :func:`synthesize_track` / :func:`write_wav`: deterministic synthetic music for tests.

Exceptions: :class:`FingerprintError` is the base of :class:`DecodeError` and
:class:`IndexFormatError` (see :mod:`fingerprints.errors`). Reads no settings: every tuning
value is a keyword argument (or a field of :class:`LandmarkParams`).
"""

from fingerprints.audio import SAMPLE_RATE, Audio
from fingerprints.chroma import chromaprint_fingerprint, chromaprint_similarity
from fingerprints.decode import decode_bytes, decode_file
from fingerprints.errors import DecodeError, FingerprintError, IndexFormatError
from fingerprints.index import FingerprintIndex, IndexStats
from fingerprints.invariant import InvariantParams
from fingerprints.landmarks import (
    LandmarkParams,
    Landmarks,
    extract_landmarks,
    extract_query_landmarks,
)
from fingerprints.matcher import Match, Matcher, calibrated_confidence
from fingerprints.search import SearchIndex
from fingerprints.sql_index import SqlFingerprintIndex
from fingerprints.synth import synthesize_track, write_wav

__all__ = [
    "SAMPLE_RATE",
    "Audio",
    "DecodeError",
    "FingerprintError",
    "FingerprintIndex",
    "IndexFormatError",
    "IndexStats",
    "InvariantParams",
    "LandmarkParams",
    "Landmarks",
    "Match",
    "Matcher",
    "SearchIndex",
    "SqlFingerprintIndex",
    "calibrated_confidence",
    "chromaprint_fingerprint",
    "chromaprint_similarity",
    "decode_bytes",
    "decode_file",
    "extract_landmarks",
    "extract_query_landmarks",
    "synthesize_track",
    "write_wav",
]
