"""The Prometheus metrics of the daemon and of each worker, served on ``/metrics``
(:mod:`monitor.daemon.ops_server`).

Two kinds:
- what the ledger says, read at scrape time by :class:`LedgerCollector` in one read session:
  queue depths, crawl totals, each scheduled job's last run and the heartbeats. Every process
  on the same database reports the same numbers, whichever process did the work;
- how long this process's stage runs took (``copyguard_stage_duration_seconds``), which only
  the process that ran them knows: the job runner records each run with :func:`observe_stage`.

Each registry is one of its own (:func:`registry_for`), never prometheus_client's global one, so
tests and several servers in one process do not collide. Reads no settings.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from sqlalchemy import select

from ledger.models import Crawl, StageRun
from monitor.app import App
from monitor.daemon.status import HEARTBEAT, WORKER_STAGE, queues

log = logging.getLogger(__name__)

# From a quick identify run to a long crawl of a large site.
DURATION_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0)

# Process-wide by nature (it counts this process's runs): created outside any registry, and
# added to each one registry_for builds.
STAGE_DURATION = Histogram(
    "copyguard_stage_duration_seconds", "Duration of this process's stage runs.",
    ["stage", "outcome"], buckets=DURATION_BUCKETS, registry=None)

# status.queues() key -> (metric name, label, help)
_QUEUES = (
    ("captures", "copyguard_captures", "identify_status", "Captures by identify status."),
    ("detections", "copyguard_detections", "status", "Detections by status."),
    ("notices", "copyguard_notices", "status", "Notices by status."),
    ("cases", "copyguard_cases", "status", "Lawsuit candidates by status (merged ones left out)."),
)
_EMPTY_QUEUES: Mapping[str, Any] = {key: {} for key, *_ in _QUEUES} | {"queued_runs": {}}
_CRAWL_STATS = (("pages", "Pages fetched by all crawls."),
                ("captures", "Captures written by all crawls."))


def observe_stage(stage: str, seconds: float, ok: bool) -> None:
    """Record one run of ``stage`` in this process (the job runner calls it after each run)."""
    STAGE_DURATION.labels(stage=stage, outcome="ok" if ok else "failed").observe(seconds)


class LedgerCollector:
    """The ledger's numbers, read when scraped. A failed read is logged and counted
    (``copyguard_scrape_errors_total``) and the families read before it are still exposed: a
    scrape never raises, so the process's own metrics survive a database that is away."""

    def __init__(self, app: App) -> None:
        self._app = app
        self._errors = 0
        self._lock = threading.Lock()  # the ops server answers scrapes on several threads

    def describe(self) -> Iterator[Metric]:
        """The families without samples, so a registry learns the names without a read."""
        yield from _queue_families(_EMPTY_QUEUES)
        yield from _crawl_families([])
        yield from _stage_run_families([])
        yield self._errors_family()

    def collect(self) -> Iterator[Metric]:
        families: list[Metric] = []
        try:
            with self._app.ledger.read() as session:
                families += _queue_families(queues(session))
                families += _crawl_families(session.scalars(select(Crawl.stats)))
                families += _stage_run_families(
                    session.scalars(select(StageRun).order_by(StageRun.job)))
        # The boundary of a scrape: whatever went wrong (a lost database most likely, but a
        # malformed row too) must not turn /metrics into a 500 and hide the other metrics.
        except Exception:
            log.exception("metrics: reading the ledger failed")
            with self._lock:
                self._errors += 1
        yield from families
        yield self._errors_family()

    def _errors_family(self) -> CounterMetricFamily:
        with self._lock:
            errors = self._errors
        return CounterMetricFamily("copyguard_scrape_errors",
                                   "Scrapes whose ledger read failed.", value=errors)


def _queue_families(depth: Mapping[str, Any]) -> list[Metric]:
    families: list[Metric] = []
    for key, name, label, help_text in _QUEUES:
        gauge = GaugeMetricFamily(name, help_text, labels=[label])
        for status, count in sorted(depth[key].items()):
            gauge.add_metric([status], count)
        families.append(gauge)
    queued = GaugeMetricFamily("copyguard_stage_requests",
                               "Runs left to workers, queued or running, by stage.",
                               labels=["stage", "status"])
    for stage, by_status in sorted(depth["queued_runs"].items()):
        for status, count in sorted(by_status.items()):
            queued.add_metric([stage, status], count)
    families.append(queued)
    return families


def _crawl_families(stats: Iterable[Mapping[str, Any] | None]) -> list[Metric]:
    totals = dict.fromkeys((key for key, _ in _CRAWL_STATS), 0.0)
    for row in stats:
        for key in totals:
            value = (row or {}).get(key)
            # bool is an int too, and not a count
            if isinstance(value, int | float) and not isinstance(value, bool):
                totals[key] += value
    return [CounterMetricFamily(f"copyguard_crawl_{key}", help_text, value=totals[key])
            for key, help_text in _CRAWL_STATS]


def _stage_run_families(rows: Iterable[StageRun]) -> list[Metric]:
    labels = ["job", "stage"]
    last = GaugeMetricFamily("copyguard_stage_last_seconds",
                             "Duration of each job's last finished run.", labels=labels)
    failures = CounterMetricFamily("copyguard_stage_failures",
                                   "Failed runs of each job, ever.", labels=labels)
    failing = GaugeMetricFamily("copyguard_stage_failing",
                                "1 while a job's last finished run failed.", labels=labels)
    heartbeat = GaugeMetricFamily("copyguard_daemon_heartbeat_timestamp_seconds",
                                  "When the daemon's main loop last beat (Unix time).")
    workers = GaugeMetricFamily("copyguard_worker_heartbeat_timestamp_seconds",
                                "When each worker last beat (Unix time).",
                                labels=["stage", "worker"])
    for row in rows:
        if row.job == HEARTBEAT:
            if row.last_finished_at is not None:
                heartbeat.add_metric([], row.last_finished_at.timestamp())
        elif row.stage == WORKER_STAGE:
            if row.last_finished_at is not None:
                stage = row.job.split(":")[1] if ":" in row.job else row.job  # worker:<stage>:..
                workers.add_metric([stage, row.worker or row.job],
                                   row.last_finished_at.timestamp())
        else:
            key = [row.job, row.stage]
            if row.last_seconds is not None:
                last.add_metric(key, row.last_seconds)
            failures.add_metric(key, row.failures or 0)
            # A failed job being retried says "running" until the retry ends: its failures in
            # a row keep it failing meanwhile, so an alert does not flap with each retry.
            failed = row.last_status == "failed" or (row.failures_in_a_row or 0) > 0
            failing.add_metric(key, 1 if failed else 0)
    return [last, failures, failing, heartbeat, workers]


def registry_for(app: App) -> CollectorRegistry:
    """A registry of its own: the ledger's numbers for ``app`` and this process's histogram."""
    registry = CollectorRegistry()
    registry.register(LedgerCollector(app))
    registry.register(STAGE_DURATION)
    return registry
