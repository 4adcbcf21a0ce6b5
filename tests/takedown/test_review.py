"""A person approves or rejects a notice in REVIEW, with a reason in the audit log; a holder
acts only on its own notices, and only on notices that wait for review."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from ledger.audit import verify_chain
from ledger.clock import FixedClock
from ledger.db import Ledger
from ledger.errors import ConflictError, LedgerError, NotFoundError
from ledger.models import AuditEntry, Detection, DetectionStatus, Notice, NoticeStatus
from takedown.drafting import draft, finalise
from takedown.policy import DraftingRules
from takedown.recipients import RecipientFinder
from takedown.render import NoticeRenderer
from takedown.review import approve, pending_review, reject
from tests.takedown.ledger_history import LedgerHistory

RULES = DraftingRules()


def _in_review(ledger: Ledger, clock: FixedClock) -> tuple[int, int, int]:
    """(notice id, its holder's id, another holder's id): a reviewing holder's notice."""
    with ledger.write() as session:
        h = LedgerHistory(session, clock)
        holder, other = h.holder(policy="review"), h.holder("Mara Jones Music")
        song = h.recording(holder, "Harbour Lights")
        blog = h.target("blog", notice_email="dmca@blog.example")
        for n in range(2):
            h.detection(h.capture(blog, f"https://blog.example/{n}.mp3"), song)
    draft(ledger, RULES, RecipientFinder(), actor="test")
    clock.advance(timedelta(hours=1))
    [(notice_id, _)] = finalise(ledger, RULES, lambda _: NoticeRenderer(), actor="rule").review
    return notice_id, holder.id, other.id


def _audit(ledger: Ledger, action: str) -> list[tuple[str, dict[str, object]]]:
    with ledger.read() as session:
        rows = session.execute(select(AuditEntry).where(AuditEntry.action == action)
                               .order_by(AuditEntry.seq)).scalars().all()
        return [(row.actor, json.loads(row.details)) for row in rows]


def test_pending_review_lists_a_holders_notices(ledger: Ledger, clock: FixedClock) -> None:
    notice_id, holder_id, other_id = _in_review(ledger, clock)
    with ledger.read() as session:
        assert [n.id for n in pending_review(session)] == [notice_id]
        assert [n.id for n in pending_review(session, holder_id)] == [notice_id]
        assert pending_review(session, other_id) == []
        [notice] = pending_review(session)
        assert notice.consideration is not None
        assert notice.consideration["review_reasons"] == [
            "holder 'Example Records Ltd' reviews every notice (notice_policy 'review')"]


def test_approve_queues_the_notice_with_the_persons_consideration(
        ledger: Ledger, clock: FixedClock) -> None:
    notice_id, holder_id, _ = _in_review(ledger, clock)
    clock.advance(timedelta(minutes=5))
    with ledger.write() as session:
        approve(session, clock, notice_id, actor="jane@example-records.example",
                reason="Full album rips; no licence; not fair use.", holder_id=holder_id)

    with ledger.read() as session:
        notice = session.get(Notice, notice_id)
        assert notice is not None
        assert notice.status == NoticeStatus.QUEUED
        assert notice.next_attempt_at == clock.now()
        assert (notice.decided_by, notice.decision_reason) == (
            "jane@example-records.example", "Full album rips; no licence; not fair use.")
        record = notice.consideration
        assert record is not None
        assert (record["by"], record["actor"], record["at"]) == (
            "person", "jane@example-records.example", clock.now().isoformat())
        assert record["reason"] == "Full album rips; no licence; not fair use."
        assert record["grounds"][0].startswith("authorisation: ")
        assert record["grounds"][-1] == ("reviewed by jane@example-records.example: "
                                         "Full album rips; no licence; not fair use.")
        assert verify_chain(session).ok
    [(actor, details)] = _audit(ledger, "notice.approved")
    assert actor == "jane@example-records.example"
    assert details["reason"] == "Full album rips; no licence; not fair use."


def test_reject_rejects_the_notice_and_its_detections(ledger: Ledger,
                                                      clock: FixedClock) -> None:
    notice_id, _, _ = _in_review(ledger, clock)
    with ledger.write() as session:
        reject(session, clock, notice_id, actor="jane", reason="The uploader is our artist.")

    with ledger.read() as session:
        notice = session.get(Notice, notice_id)
        assert notice is not None
        assert (notice.status, notice.decision_reason) == (
            NoticeStatus.REJECTED, "The uploader is our artist.")
        statuses = session.execute(select(Detection.status)).scalars().all()
        assert statuses == [DetectionStatus.REJECTED] * 2
    assert [d["reason"] for _, d in _audit(ledger, "notice.rejected")] == [
        "The uploader is our artist."]
    assert len(_audit(ledger, "detection.rejected")) == 2
    # Rejected detections are not drafted again.
    assert draft(ledger, RULES, RecipientFinder(), actor="test").noticed == []


def test_another_holder_cannot_decide(ledger: Ledger, clock: FixedClock) -> None:
    notice_id, _, other_id = _in_review(ledger, clock)
    for decide in (approve, reject):
        with ledger.write() as session, pytest.raises(NotFoundError,
                                                      match=f"no notice {notice_id}"):
            decide(session, clock, notice_id, actor="mara", reason="mine now",
                   holder_id=other_id)
    with ledger.read() as session:
        notice = session.get(Notice, notice_id)
        assert notice is not None and notice.status == NoticeStatus.REVIEW
    assert _audit(ledger, "notice.approved") == _audit(ledger, "notice.rejected") == []


def test_only_notices_in_review_can_be_decided(ledger: Ledger, clock: FixedClock) -> None:
    notice_id, _, _ = _in_review(ledger, clock)
    with ledger.write() as session, pytest.raises(LedgerError, match="needs a reason"):
        approve(session, clock, notice_id, actor="jane", reason="  ")
    with ledger.write() as session:
        approve(session, clock, notice_id, actor="jane", reason="checked")
    with ledger.write() as session, pytest.raises(ConflictError, match="is queued"):
        reject(session, clock, notice_id, actor="jane", reason="changed my mind")
    with ledger.write() as session, pytest.raises(NotFoundError):
        approve(session, clock, 9999, actor="jane", reason="checked")
