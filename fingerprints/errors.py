"""Exceptions raised by the fingerprints package.

Exception tree::

    FingerprintError            base of everything this package raises on purpose
    ├── DecodeError             input is missing, undecodable, corrupt, empty, or took too long
    └── IndexFormatError        an index (on disk or in the database) is unreadable or of
                                another format

Callers that only want to know "could this be fingerprinted" catch ``FingerprintError``.
"""

from __future__ import annotations


class FingerprintError(Exception):
    """Base class of all errors raised by :mod:`fingerprints`."""


class DecodeError(FingerprintError):
    """Audio could not be decoded: missing, corrupt, empty, too long, or over a resource limit."""


class IndexFormatError(FingerprintError):
    """A fingerprint index (on disk, or in the database) is damaged or was written with
    incompatible parameters."""
