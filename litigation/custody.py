"""The chain of custody in a dossier: the audit-log entries about a case, proven to be an
unbroken part of the ledger's hash chain.

The extract covers every entry from the first relevant one to the last. Relevant entries (the
case, its detections, captures, notices, recordings and holder; never another holder's) are
written whole; the others between them only as their sequence number and hashes, which is
enough to check each link and reveals nothing of what they record. Verification recomputes
every whole entry's hash and checks every link, without the database.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from ledger.audit import GENESIS_HASH, canonical_time, entry_hash
from ledger.models import AuditEntry

_BATCH = 5000


@dataclass(frozen=True)
class CustodyExtract:
    lines: list[str]
    entries: int  # whole entries
    redacted: int  # entries between them, hashes only
    first_seq: int | None
    last_seq: int | None
    last_hash: str | None


def extract(session: Session, holder_id: int,
            entities: Mapping[str, Iterable[object]]) -> CustodyExtract:
    """The audit lines for ``entities`` (entity type -> ids) of ``holder_id``; operator entries
    (no holder) about those entities are included, another holder's never."""
    clauses = [and_(AuditEntry.entity_type == kind,
                    AuditEntry.entity_id.in_(sorted({str(i) for i in ids})))
               for kind, ids in entities.items() if ids]
    if not clauses:
        return CustodyExtract([], 0, 0, None, None, None)
    wanted = set(session.execute(select(AuditEntry.seq).where(
        or_(*clauses), or_(AuditEntry.holder_id == holder_id,
                           AuditEntry.holder_id.is_(None)))).scalars())
    if not wanted:
        return CustodyExtract([], 0, 0, None, None, None)
    first, last = min(wanted), max(wanted)
    lines, whole, redacted, last_hash = [], 0, 0, None
    for entry in _range(session, first, last):
        if entry.seq in wanted:
            lines.append(_dump({
                "seq": entry.seq, "at": canonical_time(entry.at), "actor": entry.actor,
                "action": entry.action, "entity_type": entry.entity_type,
                "entity_id": entry.entity_id, "holder_id": entry.holder_id,
                "details": entry.details, "prev_hash": entry.prev_hash, "hash": entry.hash}))
            whole += 1
        else:
            lines.append(_dump({"seq": entry.seq, "redacted": True,
                                "prev_hash": entry.prev_hash, "hash": entry.hash}))
            redacted += 1
        last_hash = entry.hash
    return CustodyExtract(lines, whole, redacted, first, last, last_hash)


def _range(session: Session, first: int, last: int) -> Iterator[AuditEntry]:
    start = first
    while start <= last:
        rows = session.execute(select(AuditEntry).where(
            AuditEntry.seq >= start, AuditEntry.seq <= last).order_by(AuditEntry.seq)
            .limit(_BATCH)).scalars().all()
        if not rows:
            return
        yield from rows
        start = rows[-1].seq + 1


def _dump(value: dict[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


@dataclass
class CustodyReport:
    entries: int = 0
    redacted: int = 0
    problems: list[str] = field(default_factory=list)
    last_hash: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_lines(lines: Iterable[str], *, name: str = "custody/audit.jsonl") -> CustodyReport:
    """Check every whole entry's hash and every link of the extract."""
    report = CustodyReport()
    previous: tuple[int, str] | None = None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{name} line {number}"
        try:
            entry = json.loads(line)
            seq, prev_hash, digest = int(entry["seq"]), str(entry["prev_hash"]), str(entry["hash"])
        except (ValueError, KeyError, TypeError):
            report.problems.append(f"{where}: not an audit entry")
            continue
        if previous is not None:
            if seq != previous[0] + 1:
                report.problems.append(f"{where}: entry {seq} follows entry {previous[0]} "
                                       "(entries missing or out of order)")
            if prev_hash != previous[1]:
                report.problems.append(f"{where}: entry {seq} does not link to the entry "
                                       "before it")
        elif seq == 1 and prev_hash != GENESIS_HASH:
            report.problems.append(f"{where}: the first entry of the log does not start the "
                                   "chain")
        if entry.get("redacted"):
            report.redacted += 1
        else:
            report.entries += 1
            problem = _check_entry(entry, where)
            if problem:
                report.problems.append(problem)
        previous = (seq, digest)
        report.last_hash = digest
    return report


def _check_entry(entry: dict[str, Any], where: str) -> str | None:
    try:
        recomputed = entry_hash(
            seq=int(entry["seq"]), at=datetime.fromisoformat(entry["at"]),
            actor=entry["actor"], action=entry["action"], entity_type=entry["entity_type"],
            entity_id=entry["entity_id"], holder_id=entry["holder_id"],
            details=entry["details"], prev_hash=entry["prev_hash"])
    except (KeyError, ValueError, TypeError):
        return f"{where}: entry {entry.get('seq')} lacks a field it needs"
    if recomputed != entry["hash"]:
        return (f"{where}: entry {entry['seq']} ({entry.get('action')}) does not match its "
                "hash (edited)")
    return None
