"""The case queue over a realistic history, on both databases: which infringers become cases,
the order of the queue and every factor of the score, the gates, the damages estimate, merging
linked sites, holder isolation, idempotence and limitation reminders."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from ledger.clock import FixedClock
from ledger.db import Ledger
from ledger.models import (
    AuditEntry,
    Case,
    CaseHost,
    CaseReminder,
    CaseStatus,
    CaseTrack,
    RightsHolder,
    Target,
)
from litigation.cases import list_cases, refresh_cases
from litigation.rules import LitigationRules
from tests.litigation.case_history import CaseStory, build_case_story
from tests.takedown.ledger_history import LedgerHistory

RULES = LitigationRules()


@pytest.fixture
def story(ledger: Ledger, clock: FixedClock) -> CaseStory:
    with ledger.write() as session:
        built = build_case_story(session, clock)
    with ledger.write() as session:
        refresh_cases(session, clock, RULES, actor="test")
    return built


def _factors(case: Case) -> dict[str, float]:
    return {f["factor"]: f["contribution"] for f in case.breakdown}


def _values(case: Case) -> dict[str, float]:
    return {f["factor"]: f["value"] for f in case.breakdown}


def test_queue_order_and_each_factor(ledger: Ledger, story: CaseStory) -> None:
    with ledger.read() as session:
        queue = list_cases(session, holder_id=story.example)
        assert [c.name for c in queue] == [
            "pirate-blog.example", "small-site.example", "honest-host.example",
            # Gated out (score 0), then by id (one refresh opens them in host order).
            "contest.example", "old-archive.example", "tape-trader.example"]
        blog, small, honest = queue[:3]
        assert {h.host for h in blog.hosts} == {
            "pirate-blog.example", "files.pirate-blog.example", "mirror-pb.example"}
        assert blog.track == CaseTrack.COURT and blog.works == 2 and blog.detections == 5
        values = _values(blog)
        assert values["works"] == 2 and values["eligible_works"] == 1  # Northern Line is late
        assert values["ignored_notices"] == 3  # three URLs still up after the deadline
        assert values["reuploads"] == 1 and values["counter_notices"] == 1
        assert values["removed_after_notice"] == 1
        assert values["reach"] == pytest.approx(math.log2(6), abs=1e-4)
        assert values["duration"] == pytest.approx(70 / 30.44, abs=0.01)
        # Confidence 0.97 (half), all in WARC (a quarter), 3 of 5 re-verified (a quarter).
        assert values["evidence"] == pytest.approx(0.485 + 0.25 + 0.15, abs=1e-4)
        assert values["urgency"] == 0.0  # the deadline is years away
        factors = _factors(blog)
        assert factors["ignored_notices"] == 60.0 and factors["reuploads"] == 25.0
        assert factors["removed_after_notice"] == -10.0
        assert blog.score == pytest.approx(sum(factors.values()), abs=0.01)
        # Damages: one work eligible for statutory damages; willful signals raise the ceiling.
        assert (blog.damages["low"], blog.damages["high"]) == (750, 30_000)
        assert blog.damages["willful_high"] == 150_000

        honest_values = _values(honest)
        assert honest_values["removed_after_notice"] == 2 and honest_values["ignored_notices"] == 0
        assert honest.damages["willful_high"] is None

        assert small.track == CaseTrack.CCB and small.works == 1
        assert small.damages["low"] == 0 and small.damages["high"] == 15_000
        assert any("Copyright Claims Board" in a for a in small.damages["assumptions"])


def test_gates_hold_back_unregistered_time_barred_and_disputed_works(
        ledger: Ledger, story: CaseStory) -> None:
    with ledger.read() as session:
        by_name = {c.name: c for c in list_cases(session, holder_id=story.example)}
        for name, gate in (("tape-trader.example", "registration"),
                           ("old-archive.example", "limitation"),
                           ("contest.example", "ownership")):
            case = by_name[name]
            failed = [g["gate"] for g in case.gates if not g["passed"]]
            assert case.track == CaseTrack.BARRED and case.score == 0.0, name
            assert gate in failed, (name, case.gates)
            assert case.breakdown == [] and case.damages["high"] == 0
        contest = by_name["contest.example"]
        ownership = next(g for g in contest.gates if g["gate"] == "ownership")
        assert ownership["works"] == [story.disputed]


def test_a_holder_sees_only_its_own_cases(ledger: Ledger, story: CaseStory) -> None:
    with ledger.read() as session:
        mara = list_cases(session, holder_id=story.mara)
        assert [c.name for c in mara] == ["pirate-blog.example"]
        assert mara[0].works == 1 and mara[0].detections == 1
        example_blog = next(c for c in list_cases(session, holder_id=story.example)
                            if c.name == "pirate-blog.example")
        assert example_blog.id != mara[0].id
        # Mara's notice to the blog is not in Example's case, nor Example's in Mara's.
        assert _values(mara[0])["ignored_notices"] == 0


def test_a_second_refresh_with_nothing_new_changes_nothing(
        ledger: Ledger, clock: FixedClock, story: CaseStory) -> None:
    with ledger.read() as session:
        entries = session.scalar(select(func.count()).select_from(AuditEntry))
    with ledger.write() as session:
        report = refresh_cases(session, clock, RULES, actor="test")
    assert (report.opened, report.merged, report.rescored, report.reminders) == ([], [], [], [])
    with ledger.read() as session:
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == entries


def _two_sites(ledger: Ledger, clock: FixedClock, audio: tuple[str, str], ips: tuple[str, str],
               pages: tuple[str | None, str | None] = (None, None)
               ) -> tuple[RightsHolder, Target, Target]:
    """One holder's work found on one.example and two.example (audio URLs and IPs given)."""
    with ledger.write() as session:
        h = LedgerHistory(session, clock)
        holder = h.holder()
        work = h.recording(holder, "Harbour Lights")
        sites = (h.target("one", host="one.example"), h.target("two", host="two.example"))
        for site, url, ip, page in zip(sites, audio, ips, pages, strict=True):
            h.detection(h.capture(site, url, ip=ip, page_url=page), work)
        return holder, *sites


def test_sites_found_to_share_an_operator_are_merged(ledger: Ledger, clock: FixedClock) -> None:
    holder, one, two = _two_sites(ledger, clock,
                                  ("https://one.example/a.mp3", "https://two.example/b.mp3"),
                                  ("198.51.100.1", "198.51.100.2"))
    with ledger.write() as session:
        first = refresh_cases(session, clock, RULES, actor="test")
    assert len(first.opened) == 2
    with ledger.write() as session:
        h = LedgerHistory(session, clock)
        # Both sites publish the same notice address: one operator.
        h.site_contact(one, "one.example", "owner@ops.example")
        h.site_contact(two, "two.example", "Owner@ops.example")
    with ledger.write() as session:
        second = refresh_cases(session, clock, RULES, actor="test")
    assert second.merged == [(first.opened[1], first.opened[0])]
    with ledger.read() as session:
        live = list_cases(session, holder_id=holder.id)
        assert len(live) == 1 and live[0].detections == 2
        links = {link["reason"] for h in live[0].hosts for link in h.links}
        assert links == {"same-contact"}
        merged = session.get(Case, first.opened[1])
        assert merged is not None and merged.status == CaseStatus.MERGED
        assert merged.merged_into_id == live[0].id
        assert session.scalar(select(func.count()).select_from(CaseHost).where(
            CaseHost.case_id == merged.id)) == 0
        actions = set(session.execute(select(AuditEntry.action)).scalars())
        assert {"case.opened", "case.merged", "case.scored"} <= actions


def test_shared_hosts_never_link_sites(ledger: Ledger, clock: FixedClock) -> None:
    # Both pages embed audio from one CDN.
    _two_sites(ledger, clock, ("https://cdn.example/a.mp3", "https://cdn.example/b.mp3"),
               ("198.51.100.9", "198.51.100.9"),
               ("https://one.example/p", "https://two.example/p"))
    rules = LitigationRules(shared_hosts=frozenset({"cdn.example", "198.51.100.9"}))
    with ledger.write() as session:
        report = refresh_cases(session, clock, rules, actor="test")
    assert len(report.opened) == 2
    with ledger.read() as session:
        assert sorted(c.name for c in list_cases(session)) == ["one.example", "two.example"]


def test_reminders_before_the_limitation_deadline_once_each(
        ledger: Ledger, clock: FixedClock, story: CaseStory) -> None:
    with ledger.read() as session:
        blog = next(c for c in list_cases(session, holder_id=story.example)
                    if c.name == "pirate-blog.example")
        blog_id, deadline = blog.id, blog.limitation_deadline
        assert deadline is not None
    # 100 days before the deadline: the 180-day reminder is due, once.
    clock.advance(timedelta(days=(deadline - clock.now().date()).days - 100))
    with ledger.write() as session:
        report = refresh_cases(session, clock, RULES, actor="test")
    mine = [r for r in report.reminders if r.case_id == blog_id]
    assert [(r.deadline, r.days_before) for r in mine] == [(deadline, 180)]
    with ledger.write() as session:
        again = refresh_cases(session, clock, RULES, actor="test")
    assert [r for r in again.reminders if r.case_id == blog_id] == []
    clock.advance(timedelta(days=75))  # 25 days left: the 30-day one
    with ledger.write() as session:
        later = refresh_cases(session, clock, RULES, actor="test")
    assert [r.days_before for r in later.reminders if r.case_id == blog_id] == [30]
    with ledger.read() as session:
        rows = session.execute(select(CaseReminder.days_before).where(
            CaseReminder.case_id == blog_id).order_by(CaseReminder.id)).scalars().all()
        assert rows == [180, 30]
        refreshed = session.get(Case, blog_id)
        assert refreshed is not None and _values(refreshed)["urgency"] > 0.9
