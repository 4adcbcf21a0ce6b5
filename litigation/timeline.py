"""A case's timeline and its works table, as the dossier's report and CSV files show them."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from litigation.facts import CaseFacts
from litigation.scoring import Assessment, is_timely


@dataclass(frozen=True)
class Event:
    at: datetime
    event: str
    work: str
    url: str
    detail: str
    reference: str  # a WARC-Record-ID, a notice reference, an audit entry


@dataclass(frozen=True)
class CaseEvent:
    """A case's own state change, from its audit entries."""

    at: datetime
    action: str
    actor: str
    detail: str
    seq: int


def build_timeline(facts: CaseFacts, case_events: Iterable[CaseEvent]) -> list[Event]:
    titles = {w.recording_id: w.title for w in facts.works}
    events: list[Event] = []
    for d in facts.detections:
        work = titles.get(d.recording_id, str(d.recording_id))
        events.append(Event(d.fetched_at, "captured", work, d.url,
                            f"SHA-256 {d.sha256}, found on {d.page_url or d.url}",
                            d.warc_record_id or ""))
        events.append(Event(d.detected_at, "identified", work, d.url,
                            f"confidence {d.confidence:.2f}, query {d.query_start:.1f}-"
                            f"{d.query_end:.1f} s = reference from {d.ref_start:.1f} s, speed "
                            f"x{d.speed:.3f}, pitch {d.pitch_semitones:+.2f} semitones",
                            f"detection {d.detection_id}"))
    for n in facts.notices:
        if n.sent_at:
            events.append(Event(n.sent_at, "notice sent", "", n.recipient,
                                f"{n.jurisdiction.upper()} notice, {len(n.items)} URLs",
                                n.reference))
        for item in n.items:
            if item.checked_at:
                events.append(Event(item.checked_at, f"re-check: {item.status}",
                                    titles.get(item.recording_id, ""), item.url,
                                    f"HTTP {item.check_http_status}", n.reference))
        if n.outcome_at:
            events.append(Event(n.outcome_at, f"notice {n.status}", "", n.recipient, "",
                                n.reference))
    for c in facts.counters:
        notice = next((n.reference for n in facts.notices if n.notice_id == c.notice_id), "")
        events.append(Event(c.received_at, "counter-notice received", "", c.sender or "",
                            f"rule {c.rule}" + (f"; sue before {c.putback_earliest}"
                                                if c.putback_earliest else ""), notice))
    for r in facts.reuploads:
        events.append(Event(r.fetched_at, "re-uploaded after removal",
                            titles.get(r.recording_id, ""), r.url,
                            f"{r.removed_url} was found removed {r.removed_at.date()}",
                            f"detection {r.detection_id}"))
    for e in case_events:
        events.append(Event(e.at, e.action, "", "", f"{e.actor}: {e.detail}".strip(": "),
                            f"audit entry {e.seq}"))
    return sorted(events, key=lambda e: (e.at, e.event))


def timeline_csv(events: Sequence[Event]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["time_utc", "event", "work", "url", "detail", "reference"])
    for e in events:
        writer.writerow([e.at.isoformat(), e.event, e.work, e.url, e.detail, e.reference])
    return out.getvalue()


def works_csv(facts: CaseFacts, assessment: Assessment) -> str:
    by_id = {w.recording_id: w for w in assessment.works}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([
        "recording_id", "title", "artist", "isrc", "registration_status",
        "registration_number", "registration_date", "publication_date", "territories",
        "chain_of_title", "licences", "timely_registration_412", "counted", "notes",
        "first_seen_utc", "discovered_utc", "last_seen_utc", "limitation_deadline",
        "detections"])
    for w in facts.works:
        a = by_id[w.recording_id]
        writer.writerow([
            w.recording_id, w.title, w.artist or "", w.isrc or "", w.registration,
            w.registration_number or "", w.registration_date or "", w.publication_date or "",
            " ".join(w.territories), w.chain_of_title or "", "; ".join(w.licences),
            "yes" if is_timely(w) else "no", "yes" if a.counted else "no", "; ".join(a.notes),
            w.first_seen.isoformat(), w.discovered.isoformat(), w.last_seen.isoformat(),
            a.deadline.isoformat(), w.detections])
    return out.getvalue()
