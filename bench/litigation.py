"""``make bench-litigation``: how long the case queue and a dossier take on a large ledger.

Run as ``python -m bench.litigation [--sites N] [--works W] [--per-site D]``. Builds a SQLite
ledger in a temporary directory with one rights-holder, W registered works and N infringing
sites, each with D detections (a fifth of the sites share a server address in pairs, so
linking merges them; a third got a notice, half of those ignored), then measures:
``refresh_cases`` the first time (every case opened and scored), again with nothing new (the
idempotent pass the daemon makes most often), ``list_cases``, and ``export_dossier`` of the
largest case without evidence files (report HTML and PDF, CSVs, custody extract, manifest),
each the median of ``--runs``. Prints a Markdown table; the command and figures go into
BENCHMARKS.md by hand.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from ledger.clock import FixedClock
from ledger.db import Ledger, open_ledger
from ledger.evidence import EvidenceStore
from ledger.models import (
    Capture,
    Crawl,
    Detection,
    ItemStatus,
    Notice,
    NoticeItem,
    NoticeStatus,
    Recording,
    RightsHolder,
    Target,
)
from litigation.cases import list_cases, refresh_cases
from litigation.dossier import DossierOptions, export_dossier
from litigation.pdf import html_to_pdf
from litigation.rules import LitigationRules

START = datetime(2026, 6, 1, tzinfo=UTC)


def build(ledger: Ledger, clock: FixedClock, *, sites: int, works: int, per_site: int) -> None:
    with ledger.write() as session:
        holder = RightsHolder(name="Bench Records", email="legal@bench.example",
                              created_at=clock.now(), notice_policy="auto")
        session.add(holder)
        session.flush()
        recordings = [Recording(
            holder_id=holder.id, title=f"Work {n}", registration_number=f"SR{n:08d}",
            registration_date=date(2025, 1, 1), territories=["WORLD"], duration=200.0,
            source_name=f"{n}.flac", source_sha256=hashlib.sha256(str(n).encode()).hexdigest(),
            created_at=clock.now()) for n in range(works)]
        session.add_all(recordings)
        session.flush()
        for s in range(sites):
            host = f"site{s}.example"
            target = Target(name=f"site{s}", start_urls=[f"https://{host}/"],
                            allowed_domains=[host], follow=[], deny=[], depth=2, max_pages=100,
                            schedule="every 6h", delay_seconds=1.0, concurrency=2,
                            obey_robots=True, allow_private=False, source="config",
                            created_at=clock.now())
            session.add(target)
            session.flush()
            crawl = Crawl(target_id=target.id, status="finished", started_at=clock.now(),
                          stats={})
            session.add(crawl)
            session.flush()
            ip = f"198.51.{s // 10 // 250}.{s // 10 % 250}" if s % 5 == 0 else \
                f"203.0.{s // 250}.{s % 250}"
            detections = []
            for d in range(per_site):
                at = START + timedelta(days=d, minutes=s)
                url = f"https://{host}/a/{d}.mp3"
                capture = Capture(
                    crawl_id=crawl.id, target_id=target.id, url=url,
                    page_url=f"https://{host}/p/{d}", via="link", fetched_at=at,
                    http_status=200, headers=[], content_type="audio/mpeg", size=1,
                    sha256=hashlib.sha256(url.encode()).hexdigest(), ip_address=ip,
                    warc_file="x.warc.gz", warc_offset=0, warc_length=1,
                    identify_status="done")
                session.add(capture)
                session.flush()
                detection = Detection(
                    capture_id=capture.id, recording_id=recordings[(s * 7 + d) % works].id,
                    holder_id=holder.id, target_id=target.id, confidence=0.95, score=300,
                    query_start=0.0, query_end=180.0, ref_start=0.0, speed=1.0,
                    pitch_semitones=0.0, status="noticed" if s % 3 == 0 else "new",
                    detected_at=at)
                session.add(detection)
                detections.append((detection, capture))
            session.flush()
            if s % 3 == 0:
                ignored = s % 2 == 0
                notice = Notice(
                    reference=f"B-{s}", holder_id=holder.id, target_id=target.id,
                    jurisdiction="dmca",
                    status=NoticeStatus.IGNORED if ignored else NoticeStatus.REMOVED,
                    recipient_key=f"email:abuse@{host}", recipient_name="abuse",
                    recipient_role="agent", recipient_email=f"abuse@{host}",
                    recipient_source="target", created_at=START, send_after=START,
                    attempts=1, sent_at=START, deadline_at=START + timedelta(days=14),
                    outcome_at=START + timedelta(days=15))
                session.add(notice)
                session.flush()
                for detection, capture in detections:
                    session.add(NoticeItem(
                        notice_id=notice.id, detection_id=detection.id, capture_id=capture.id,
                        url=capture.url,
                        status=ItemStatus.STILL_UP if ignored else ItemStatus.REMOVED,
                        checked_at=START + timedelta(days=15)))


def median_seconds(runs: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=1000)
    parser.add_argument("--works", type=int, default=500)
    parser.add_argument("--per-site", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rules = LitigationRules()
    with tempfile.TemporaryDirectory() as tmp:
        clock = FixedClock(START + timedelta(days=120))
        ledger = open_ledger(f"sqlite:///{tmp}/ledger.db", clock=clock)
        started = time.perf_counter()
        build(ledger, clock, sites=args.sites, works=args.works, per_site=args.per_site)
        built = time.perf_counter() - started

        def refresh() -> object:
            with ledger.write() as session:
                return refresh_cases(session, clock, rules, actor="bench")

        started = time.perf_counter()
        first = refresh()
        first_seconds = time.perf_counter() - started
        again = median_seconds(args.runs, refresh)
        with ledger.read() as session:
            listed = median_seconds(args.runs, lambda: list_cases(session))
            cases = list_cases(session)
            biggest = max(cases, key=lambda c: c.detections)
            biggest_id, biggest_detections = biggest.id, biggest.detections
        count = 0

        def export() -> object:
            nonlocal count
            count += 1
            with EvidenceStore(Path(tmp) / "evidence", software="bench") as store:
                return export_dossier(
                    ledger, store, biggest_id, Path(tmp) / f"dossier-{count}", rules,
                    DossierOptions(pdf=lambda html, base: html_to_pdf(html, base_url=base)),
                    actor="bench")

        exported = median_seconds(args.runs, export)
        ledger.close()
    detections = args.sites * args.per_site
    print(f"ledger: 1 holder, {args.works} works, {args.sites} sites, {detections} detections "
          f"(built in {built:.1f} s); {len(cases)} cases after linking "
          f"({first.__dict__['cases'] if hasattr(first, '__dict__') else '?'})")
    print("| step | seconds |\n| --- | --- |")
    print(f"| `refresh_cases`, first (every case opened and scored) | {first_seconds:.2f} |")
    print(f"| `refresh_cases`, nothing new (median of {args.runs}) | {again:.2f} |")
    print(f"| `list_cases` (median of {args.runs}) | {listed:.3f} |")
    print(f"| `export_dossier`, largest case ({biggest_detections} detections, no evidence "
          f"files; median of {args.runs}) | {exported:.2f} |")


if __name__ == "__main__":
    main()
