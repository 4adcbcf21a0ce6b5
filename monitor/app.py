"""The one place that builds copyguard's parts from settings; the CLI (and later the daemon and
the web console) start here. Nothing is opened until it is first asked for."""

from __future__ import annotations

import getpass
from dataclasses import dataclass, field

from config import Settings
from fingerprints import FingerprintIndex, Matcher
from fingerprints.catalog import DecodeLimits, sync_index
from ledger.clock import Clock, SystemClock
from ledger.db import Ledger, open_ledger


def default_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


@dataclass
class App:
    settings: Settings
    clock: Clock = field(default_factory=SystemClock)
    actor: str = field(default_factory=default_actor)
    _ledger: Ledger | None = None
    _index: FingerprintIndex | None = None

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            self.settings.home.mkdir(parents=True, exist_ok=True)
            self._ledger = open_ledger(self.settings.database_url, clock=self.clock,
                                       busy_timeout_ms=self.settings.database.busy_timeout_ms)
        return self._ledger

    @property
    def index(self) -> FingerprintIndex:
        """The search index, brought in line with the ledger's active recordings."""
        if self._index is None:
            index = FingerprintIndex.open(self.settings.index_dir)
            with self.ledger.read() as session:
                sync_index(session, index)
            self._index = index
        return self._index

    def matcher(self) -> Matcher:
        return Matcher(self.index, min_confidence=self.settings.matching.min_confidence)

    @property
    def decode_limits(self) -> DecodeLimits:
        decoding = self.settings.decoding
        return DecodeLimits(timeout_seconds=decoding.timeout_seconds,
                            memory_limit_mb=decoding.memory_limit_mb,
                            max_seconds=decoding.max_seconds)

    def close(self) -> None:
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None


def build_app(settings: Settings, *, clock: Clock | None = None, actor: str | None = None) -> App:
    return App(settings=settings, clock=clock or SystemClock(), actor=actor or default_actor())
