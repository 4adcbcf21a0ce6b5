"""The one place that builds copyguard's parts from settings; the CLI (and later the daemon and
the web console) start here. Nothing is opened until it is first asked for.

``[matching] index`` picks the search index: a local replica under ``<home>/index`` or the one
index in the PostgreSQL database (fingerprints.sql_index); either is brought in line with the
ledger when it is first opened."""

from __future__ import annotations

import getpass
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from config import Settings
from fingerprints import Matcher, SearchIndex
from fingerprints.catalog import (
    CatalogStore,
    DecodeLimits,
    SyncReport,
    open_synced_index,
    open_synced_sql_index,
)
from fingerprints.reference import ReferenceStore
from ledger.clock import Clock, SystemClock
from ledger.db import Ledger, open_ledger
from ledger.evidence import EvidenceStore
from ledger.object_store import object_store_from_settings
from ledger.targets import sync_config_targets
from takedown.http_sender import HttpFormSender
from takedown.rdap import RdapClient
from takedown.render import NoticeRenderer
from takedown.senders import Sender
from takedown.smtp_sender import SmtpSender

log = logging.getLogger(__name__)


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
    _index: SearchIndex | None = None
    _http: httpx.Client | None = None

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            self.settings.home.mkdir(parents=True, exist_ok=True)
            self._ledger = open_ledger(self.settings.database_url, clock=self.clock,
                                       busy_timeout_ms=self.settings.database.busy_timeout_ms)
        return self._ledger

    def sync_targets(self) -> list[str]:
        """Bring the config file's [[targets]] into the ledger; what changed, for the log."""
        with self.ledger.write() as session:
            changes = sync_config_targets(session, self.clock, self.settings.targets,
                                          self.settings.crawl, actor=self.actor)
        for change in changes:
            log.info("targets from the config file: %s", change)
        return changes

    def evidence(self) -> EvidenceStore:
        """The evidence store (WARC files and captured media), with the object storage of
        ``[evidence]`` if set; close it when done writing."""
        crawl = self.settings.crawl
        return EvidenceStore(self.settings.evidence_dir,
                             max_file_bytes=crawl.warc_file_mb * 1024 * 1024,
                             software="copyguard/0.1", operator_contact=crawl.contact_url,
                             remote=object_store_from_settings(self.settings.evidence))

    @property
    def references(self) -> ReferenceStore:
        return ReferenceStore(self.settings.references_dir)

    @property
    def index(self) -> SearchIndex:
        """The search index, brought in line with the ledger's active recordings."""
        if self._index is None:
            self._index, report = self._open_index(rebuild=False)
            if report.refreshed or report.unrefreshable:
                log.warning("fingerprinted %d recording(s) again for the current scheme; "
                            "%d could not be (reference audio missing)",
                            report.refreshed, report.unrefreshable)
        return self._index

    def rebuild_index(self, on_progress: Callable[[int, int], None] | None = None) -> SyncReport:
        """Fingerprint every active recording again from its reference audio, and rebuild."""
        self._index, report = self._open_index(rebuild=True, on_progress=on_progress)
        return report

    def _open_index(self, *, rebuild: bool,
                    on_progress: Callable[[int, int], None] | None = None
                    ) -> tuple[SearchIndex, SyncReport]:
        if self.settings.matching.index == "database":
            return open_synced_sql_index(self.ledger.engine, self.ledger.write, self.references,
                                         rebuild=rebuild, on_progress=on_progress)
        return open_synced_index(self.settings.index_dir, self.ledger.write, self.references,
                                 rebuild=rebuild, on_progress=on_progress)

    @property
    def catalog_store(self) -> CatalogStore:
        return CatalogStore(index=self.index, references=self.references)

    def matcher(self) -> Matcher:
        return Matcher(self.index,
                       min_confidence=self.settings.matching.min_confidence)

    @property
    def decode_limits(self) -> DecodeLimits:
        decoding = self.settings.decoding
        return DecodeLimits(timeout_seconds=decoding.timeout_seconds,
                            memory_limit_mb=decoding.memory_limit_mb,
                            max_seconds=decoding.max_seconds)

    # -- takedown ------------------------------------------------------------------------------

    @property
    def http(self) -> httpx.Client:
        """The client for RDAP look-ups and notice forms: the operator's endpoints, never the
        suspect sites (those are the crawler's). No redirects: the senders follow them by rule."""
        if self._http is None:
            self._http = httpx.Client(follow_redirects=False, headers={
                "User-Agent": self.settings.crawl.full_user_agent})
        return self._http

    def senders(self) -> dict[str, Sender]:
        """The notice senders by channel: "http" always, "email" when ``[smtp] host`` is set."""
        found: dict[str, Sender] = {"http": HttpFormSender(self.http, clock=self.clock)}
        smtp = self.settings.smtp
        if smtp.host:
            context = ssl.create_default_context(cafile=smtp.ca_file or None)
            domain = smtp.from_address.rpartition("@")[2] or None
            found["email"] = SmtpSender(
                smtp.host, smtp.port, security=smtp.security,
                username=smtp.username or None, password=smtp.password or None,
                timeout=smtp.timeout_seconds, ssl_context=context,
                envelope_from=smtp.from_address or None, message_id_domain=domain,
                clock=self.clock)
        return found

    def rdap(self) -> RdapClient:
        rdap = self.settings.rdap
        return RdapClient(self.http, rdap.ip_servers, rdap.domain_servers,
                          timeout=rdap.timeout_seconds)

    def renderer(self, holder_id: int) -> NoticeRenderer:
        """Notice templates for one holder: its own under ``<template_dir>/<id>/`` first."""
        return NoticeRenderer(self.settings.template_dir / str(holder_id))

    def close(self) -> None:
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None
        if self._http is not None:
            self._http.close()
            self._http = None


def build_app(settings: Settings, *, clock: Clock | None = None, actor: str | None = None) -> App:
    return App(settings=settings, clock=clock or SystemClock(), actor=actor or default_actor())
