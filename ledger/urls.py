"""The key a URL is filed under in the ledger (``url_state.url_key``, ``url_checks.url_key``):
the crawler writes it, the takedown and litigation stages look checks up by it."""

from __future__ import annotations

import hashlib


def url_key(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8")).hexdigest()
