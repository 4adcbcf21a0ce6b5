"""Policy before any notice: allowlist, licences by recording, host, date and territory, and
the reasons a person must review (holder policy, low confidence, a short excerpt)."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from ledger.clock import FixedClock
from ledger.db import Ledger
from ledger.models import AuditEntry, Detection, DetectionStatus, Notice, NoticeStatus
from takedown.drafting import draft, finalise
from takedown.policy import DraftingRules, host_of, within
from takedown.recipients import RecipientFinder
from takedown.render import NoticeRenderer
from tests.takedown.ledger_history import LedgerHistory

RULES = DraftingRules(batch_window=timedelta(hours=1), allowlist=("Pirate-Blog.example.",),
                      fair_use_review_seconds=30.0, review_below=0.85)
NO_ALLOWLIST = DraftingRules()  # the defaults: 1 h batches, 30 s, 0.85


def _status(ledger: Ledger, detection_id: int) -> str:
    with ledger.read() as session:
        detection = session.get(Detection, detection_id)
        assert detection is not None
        return detection.status


def _audit(ledger: Ledger, action: str) -> list[dict[str, object]]:
    with ledger.read() as session:
        rows = session.execute(select(AuditEntry).where(AuditEntry.action == action)
                               .order_by(AuditEntry.seq)).scalars().all()
        return [json.loads(row.details) for row in rows]


def test_hosts_match_themselves_and_their_subdomains_only() -> None:
    assert within("files.pirate-blog.example", "pirate-blog.example")
    assert within("pirate-blog.example", "pirate-blog.example")
    assert not within("evilpirate-blog.example", "pirate-blog.example")
    assert host_of("https://FILES.Pirate-Blog.example:8443/a.mp3") == "files.pirate-blog.example"


def test_allowlisted_site_gets_no_notice(ledger: Ledger, clock: FixedClock) -> None:
    with ledger.write() as session:
        h = LedgerHistory(session, clock)
        holder = h.holder()
        song = h.recording(holder, "Harbour Lights")
        blog = h.target("pirate-blog", host="files.pirate-blog.example",
                        notice_email="dmca@pirate-blog.example")
        allowed = h.detection(h.capture(blog, "https://files.pirate-blog.example/a.mp3"), song)
        other = h.target("lookalike", host="evilpirate-blog.example", notice_email="x@evil.example")
        noticed = h.detection(h.capture(other, "https://evilpirate-blog.example/a.mp3"), song)

    report = draft(ledger, RULES, RecipientFinder(), actor="test")

    assert report.licensed == [(allowed.id, "host files.pirate-blog.example is allowlisted "
                                            "(pirate-blog.example)")]
    assert _status(ledger, allowed.id) == DetectionStatus.LICENSED
    assert _status(ledger, noticed.id) == DetectionStatus.NOTICED
    [entry] = _audit(ledger, "detection.licensed")
    assert "allowlisted" in str(entry["reason"])


def test_licence_exempts_only_its_recording_and_territory(ledger: Ledger,
                                                          clock: FixedClock) -> None:
    with ledger.write() as session:
        h = LedgerHistory(session, clock)
        holder = h.holder()
        harbour = h.recording(holder, "Harbour Lights")
        northern = h.recording(holder, "Northern Line")
        h.licence(holder, "pirate-blog.example", recording=harbour, territories=["US"],
                  valid_from=date(2026, 1, 1), valid_until=date(2026, 12, 31))
        us = h.target("pirate-blog", host="files.pirate-blog.example",
                      notice_email="dmca@pirate-blog.example")
        eu = h.target("pirate-blog-eu", host="eu.pirate-blog.example", jurisdiction="dsa",
                      notice_email="dsa@pirate-blog.example")
        licensed = h.detection(h.capture(us, "https://files.pirate-blog.example/1.mp3"), harbour)
        other_song = h.detection(h.capture(us, "https://files.pirate-blog.example/2.mp3"),
                                 northern)
        other_land = h.detection(h.capture(eu, "https://eu.pirate-blog.example/1.mp3"), harbour)

    report = draft(ledger, NO_ALLOWLIST, RecipientFinder(), actor="test")

    assert [d for d, _ in report.licensed] == [licensed.id]
    assert "covers 'Harbour Lights' in US on 2026-11-02" in report.licensed[0][1]
    assert _status(ledger, other_song.id) == DetectionStatus.NOTICED
    assert _status(ledger, other_land.id) == DetectionStatus.NOTICED


@pytest.mark.parametrize("licence", [
    {"valid_until": date(2026, 10, 31)},  # expired before the detection
    {"valid_from": date(2026, 11, 3)},  # not yet valid
    {"territories": ["CN"]},  # another country
    {"host": "other.example"},  # another site
])
def test_licence_that_does_not_apply_leaves_the_detection_to_notice(
        ledger: Ledger, clock: FixedClock, licence: dict[str, object]) -> None:
    with ledger.write() as session:
        h = LedgerHistory(session, clock)
        holder = h.holder()
        song = h.recording(holder, "Harbour Lights")
        terms = dict(licence)  # the parameter is shared by both databases' runs
        host = str(terms.pop("host", "pirate-blog.example"))
        h.licence(holder, host, **terms)  # type: ignore[arg-type]
        blog = h.target("pirate-blog", host="pirate-blog.example", notice_email="d@p.example")
        detection = h.detection(h.capture(blog, "https://pirate-blog.example/1.mp3"), song)

    draft(ledger, NO_ALLOWLIST, RecipientFinder(), actor="test")

    assert _status(ledger, detection.id) == DetectionStatus.NOTICED
    [entry] = _audit(ledger, "detection.noticed")
    assert "licences checked: none applies (1 of the holder" in str(entry["grounds"])


def test_licence_for_part_of_the_eu_sends_the_notice_to_review(ledger: Ledger,
                                                               clock: FixedClock) -> None:
    with ledger.write() as session:
        h = LedgerHistory(session, clock)
        holder = h.holder()
        song = h.recording(holder, "Harbour Lights")
        h.licence(holder, "mirror.example", territories=["DE", "AT"])
        mirror = h.target("mirror", host="mirror.example", jurisdiction="dsa",
                          notice_email="legal@mirror.example")
        h.detection(h.capture(mirror, "https://mirror.example/1.mp3"), song)

    draft(ledger, NO_ALLOWLIST, RecipientFinder(), actor="test")
    clock.advance(timedelta(hours=2))
    report = finalise(ledger, NO_ALLOWLIST, lambda _: NoticeRenderer(), actor="test")

    [(_, reasons)] = report.review
    assert reasons == ["licences for mirror.example cover AT, DE, only part of the notice's "
                       "territory (the EU)"]


# (holder policy, confidence, matched span, speed, work duration) -> review reason or None
CASES = {
    "whole confident copy": ("auto", 0.97, (0.0, 185.5), 1.0, 190.0, None),
    "holder reviews every notice": ("review", 0.97, (0.0, 185.5), 1.0, 190.0,
                                    "reviews every notice"),
    "low confidence": ("auto", 0.7, (0.0, 185.5), 1.0, 190.0, "confidence 0.70 is below 0.85"),
    "short excerpt": ("auto", 0.97, (40.0, 52.0), 1.0, 190.0,
                      "12.0 s of 'Song' (under 30 s): possible fair use"),
    "sped-up excerpt counts work seconds": ("auto", 0.97, (0.0, 28.0), 1.1, 190.0, None),
    "whole copy of a short work": ("auto", 0.97, (0.0, 19.0), 1.0, 20.0, None),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_review_triggers(ledger: Ledger, clock: FixedClock, case: str) -> None:
    policy, confidence, span, speed, duration, reason = CASES[case]
    with ledger.write() as session:
        h = LedgerHistory(session, clock)
        holder = h.holder(policy=policy)
        song = h.recording(holder, "Song", duration=duration)
        blog = h.target("pirate-blog", notice_email="dmca@pirate-blog.example")
        h.detection(h.capture(blog, "https://pirate-blog.example/1.mp3"), song,
                    confidence=confidence, span=span, speed=speed)

    draft(ledger, NO_ALLOWLIST, RecipientFinder(), actor="test")
    clock.advance(timedelta(hours=1))
    report = finalise(ledger, NO_ALLOWLIST, lambda _: NoticeRenderer(), actor="rule:takedown")

    with ledger.read() as session:
        notice = session.execute(select(Notice)).scalar_one()
        assert notice.consideration is not None
        grounds = notice.consideration["grounds"]
        assert notice.consideration["by"] == "rule"
        assert notice.consideration["actor"] == "rule:takedown"
        assert grounds[0] == "authorisation: host pirate-blog.example is not on the allowlist"
        assert grounds[1].startswith("licences checked: none applies (0 of the holder")
        assert grounds[2].startswith("fair use: detection ")
        if reason is None:
            assert notice.status == NoticeStatus.QUEUED
            assert report.queued == [notice.id]
        else:
            assert notice.status == NoticeStatus.REVIEW
            [(_, reasons)] = report.review
            assert len(reasons) == 1 and reason in reasons[0]
            assert notice.consideration["review_reasons"] == reasons


def test_fair_use_ground_names_the_share_of_the_work(ledger: Ledger, clock: FixedClock) -> None:
    with ledger.write() as session:
        h = LedgerHistory(session, clock)
        song = h.recording(h.holder(), "Harbour Lights", duration=190.0)
        blog = h.target("pirate-blog", notice_email="dmca@pirate-blog.example")
        h.detection(h.capture(blog, "https://pirate-blog.example/1.mp3"), song)
    draft(ledger, NO_ALLOWLIST, RecipientFinder(), actor="test")
    clock.advance(timedelta(hours=1))
    finalise(ledger, NO_ALLOWLIST, lambda _: NoticeRenderer(), actor="test")
    with ledger.read() as session:
        notice = session.execute(select(Notice)).scalar_one()
        assert notice.consideration is not None
        assert notice.consideration["grounds"][2].endswith(
            "whole or substantial copy: 185.5 s of a 190.0 s work ('Harbour Lights'), "
            "confidence 0.97")
