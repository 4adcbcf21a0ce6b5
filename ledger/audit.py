"""The append-only, hash-chained audit log.

Every state change appends one entry in the same transaction as the change. Each entry's hash is
SHA-256 over its canonical content and the previous entry's hash, so editing an entry breaks its
own hash, deleting one breaks the sequence and the next entry's link, and deleting entries at the
end disagrees with ``audit_head``, which every append updates under a row lock (on SQLite the
write transaction's ``BEGIN IMMEDIATE`` serialises appends). Database triggers refuse UPDATE and
DELETE on the table as a second line; ``verify_chain`` is what proves integrity.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.clock import Clock
from ledger.models import AuditEntry, AuditHead

GENESIS_HASH = "0" * 64
_HEAD_ID = 1


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)


def canonical_time(at: datetime) -> str:
    """A time as the audit log hashes it: UTC, ISO 8601, to the microsecond."""
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def entry_hash(*, seq: int, at: datetime, actor: str, action: str, entity_type: str,
               entity_id: str | None, holder_id: int | None, details: str, prev_hash: str) -> str:
    content = canonical_json({
        "seq": seq, "at": canonical_time(at), "actor": actor, "action": action,
        "entity_type": entity_type, "entity_id": entity_id, "holder_id": holder_id,
        "details": details, "prev_hash": prev_hash,
    })
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def append(session: Session, clock: Clock, *, actor: str, action: str, entity_type: str,
           entity_id: object = None, holder_id: int | None = None,
           details: Mapping[str, Any] | None = None) -> AuditEntry:
    """Append one entry; call inside the transaction that makes the change it records."""
    head = session.execute(
        select(AuditHead).where(AuditHead.id == _HEAD_ID).with_for_update()
    ).scalar_one_or_none()
    if head is None:
        head = AuditHead(id=_HEAD_ID, seq=0, hash=GENESIS_HASH)
        session.add(head)
    # Microsecond precision is what both databases keep, so the hash survives the round trip.
    at = clock.now().astimezone(UTC)
    text = canonical_json(dict(details or {}))
    entry = AuditEntry(
        seq=head.seq + 1, at=at, actor=actor, action=action, entity_type=entity_type,
        entity_id=None if entity_id is None else str(entity_id), holder_id=holder_id,
        details=text, prev_hash=head.hash,
    )
    entry.hash = entry_hash(
        seq=entry.seq, at=at, actor=actor, action=action, entity_type=entity_type,
        entity_id=entry.entity_id, holder_id=holder_id, details=text, prev_hash=head.hash)
    session.add(entry)
    head.seq, head.hash = entry.seq, entry.hash
    session.flush()
    return entry


@dataclass
class ChainReport:
    checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _entries(session: Session, batch: int = 5000) -> Iterator[AuditEntry]:
    last = 0
    while True:
        rows = session.execute(
            select(AuditEntry).where(AuditEntry.seq > last).order_by(AuditEntry.seq).limit(batch)
        ).scalars().all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq
        session.expunge_all()


def verify_chain(session: Session) -> ChainReport:
    """Walk the whole chain and report every entry edited, deleted or out of place."""
    report = ChainReport()
    expected_seq, prev_hash = 1, GENESIS_HASH
    for entry in _entries(session):
        report.checked += 1
        if entry.seq != expected_seq:
            missing = (f"entry {expected_seq}" if entry.seq == expected_seq + 1
                       else f"entries {expected_seq}-{entry.seq - 1}")
            report.problems.append(f"{missing} missing (deleted)")
        if entry.prev_hash != prev_hash:
            report.problems.append(
                f"entry {entry.seq}: does not link to the entry before it")
        recomputed = entry_hash(
            seq=entry.seq, at=entry.at, actor=entry.actor, action=entry.action,
            entity_type=entry.entity_type, entity_id=entry.entity_id, holder_id=entry.holder_id,
            details=entry.details, prev_hash=entry.prev_hash)
        if recomputed != entry.hash:
            report.problems.append(
                f"entry {entry.seq} ({entry.action}): content does not match its hash (edited)")
        expected_seq, prev_hash = entry.seq + 1, entry.hash
    head = session.get(AuditHead, _HEAD_ID)
    head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS_HASH)
    if head_seq != expected_seq - 1 or head_hash != prev_hash:
        report.problems.append(
            f"the chain ends at entry {expected_seq - 1} but its head records entry {head_seq}"
            " (entries deleted at the end, or the head was changed)")
    return report
