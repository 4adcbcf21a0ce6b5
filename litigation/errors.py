"""Exceptions raised by the litigation package.

Exception tree::

    LitigationError         base of everything this package raises on purpose
    ├── TimestampError      no trustworthy RFC 3161 time-stamp: the TSA failed or refused, or a
    │                       token does not match its dossier or does not verify
    └── DossierError        a dossier cannot be exported as asked
"""

from __future__ import annotations


class LitigationError(Exception):
    """Base class of all errors raised by :mod:`litigation`."""


class TimestampError(LitigationError):
    """A time-stamp could not be obtained, read or verified; the message says which and why."""


class DossierError(LitigationError):
    """A dossier cannot be exported as asked (the destination exists, the case was merged)."""
