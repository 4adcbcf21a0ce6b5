"""The chain-of-custody extract: the entries about a case whole, the others between them as
hashes only, another holder's never; every edit, deletion or reordering found without the
database."""

from __future__ import annotations

import json

from ledger import audit
from ledger.clock import FixedClock
from ledger.db import Ledger
from litigation.custody import extract, verify_lines


def _history(ledger: Ledger, clock: FixedClock) -> None:
    with ledger.write() as session:
        for n in range(1, 7):
            holder = 1 if n % 2 else 2
            audit.append(session, clock, actor="test", action="detection.created",
                         entity_type="detection", entity_id=n, holder_id=holder,
                         details={"secret": f"holder {holder} work {n}"})
        audit.append(session, clock, actor="op", action="capture.recorded",
                     entity_type="capture", entity_id=3, details={"url": "https://x/3.mp3"})


def test_only_the_cases_entries_are_whole(ledger: Ledger, clock: FixedClock) -> None:
    _history(ledger, clock)
    with ledger.read() as session:
        # Detections 1, 3, 5 are holder 1's; 4 is holder 2's and must not come out whole even
        # when asked for; capture 3 is the operator's (no holder).
        found = extract(session, 1, {"detection": [1, 3, 4, 5], "capture": [3]})
    entries = [json.loads(line) for line in found.lines]
    assert [e["seq"] for e in entries] == list(range(1, 8))
    whole = [e["seq"] for e in entries if not e.get("redacted")]
    assert whole == [1, 3, 5, 7] and (found.entries, found.redacted) == (4, 3)
    assert "holder 2" not in "\n".join(found.lines)
    report = verify_lines(found.lines)
    assert report.ok and report.entries == 4 and report.last_hash == found.last_hash


def test_edits_deletions_and_reordering_are_found(ledger: Ledger, clock: FixedClock) -> None:
    _history(ledger, clock)
    with ledger.read() as session:
        lines = extract(session, 1, {"detection": [1, 3, 5]}).lines
    edited = list(lines)
    entry = json.loads(edited[2])
    entry["details"] = entry["details"].replace("work 3", "work 30")
    edited[2] = json.dumps(entry)
    assert verify_lines(edited).problems == [
        "custody/audit.jsonl line 3: entry 3 (detection.created) does not match its hash "
        "(edited)"]
    missing = lines[:1] + lines[2:]
    assert any("follows entry 1" in p for p in verify_lines(missing).problems)
    swapped = [lines[0], lines[2], lines[1], *lines[3:]]
    assert not verify_lines(swapped).ok
    redacted = json.loads(lines[1])
    redacted["hash"] = "f" * 64  # a hidden entry replaced: its successor no longer links
    forged = [lines[0], json.dumps(redacted), *lines[2:]]
    assert any("does not link" in p for p in verify_lines(forged).problems)
    assert verify_lines(["not json"]).problems == [
        "custody/audit.jsonl line 1: not an audit entry"]


def test_nothing_relevant_gives_an_empty_extract(ledger: Ledger, clock: FixedClock) -> None:
    _history(ledger, clock)
    with ledger.read() as session:
        found = extract(session, 1, {"detection": [], "notice": [99]})
    assert found.lines == [] and found.first_seq is None
