"""``/api/v1/notices`` on the real server: each account sees its holder's notices only, a
holder's accounts (and admins) approve or reject the notices waiting for review, counter-notices
are recorded by the holder's accounts and its legal team, and another holder's notice answers
exactly as one that does not exist. Every change lands in the ledger and the audit log under
the caller's name."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ledger.audit import verify_chain
from ledger.clock import FixedClock
from ledger.models import (
    AuditEntry,
    Capture,
    CounterNotice,
    Detection,
    DetectionStatus,
    Notice,
    NoticeStatus,
)
from tests.litigation.case_history import notice
from tests.web.conftest import EXAMPLE, MARA, Site

MISSING = 9999


def _waiting_for_review(site: Site, url: str) -> int:
    """A notice of the detection at ``url``, drafted and waiting for a person."""
    clock = site.app.clock
    assert isinstance(clock, FixedClock)
    with site.app.ledger.write() as session:
        detection = session.execute(select(Detection).join(
            Capture, Detection.capture_id == Capture.id).where(Capture.url == url)).scalar_one()
        row = notice(session, clock, [detection], status=NoticeStatus.REVIEW)
        row.sent_at, row.attempts, row.deadline_at = None, 0, None
        row.consideration = {"by": "rule", "review_reasons": ["confidence below 0.85"]}
        detection.status = DetectionStatus.REVIEW
        return row.id


def _mara_notice(site: Site) -> int:
    with site.app.ledger.read() as session:
        return session.execute(select(Notice.id).where(
            Notice.holder_id == site.story.mara)).scalar_one()


def _notice(site: Site, notice_id: int) -> Notice:
    with site.app.ledger.read() as session:
        row = session.get(Notice, notice_id)
        assert row is not None
        session.expunge(row)
        return row


def _audit(site: Site, action: str) -> list[AuditEntry]:
    with site.app.ledger.read() as session:
        rows = list(session.execute(select(AuditEntry).where(AuditEntry.action == action)
                                    .order_by(AuditEntry.seq)).scalars())
        assert verify_chain(session).ok
        session.expunge_all()
        return rows


def _ids(answer: Any) -> list[int]:
    assert answer.status_code == 200, answer.text
    return [row["id"] for row in answer.json()["items"]]


def test_each_account_lists_only_its_holders_notices(site: Site) -> None:
    with site.app.ledger.read() as session:
        example = sorted(session.execute(select(Notice.id).where(
            Notice.holder_id == site.story.example)).scalars(), reverse=True)
    mara = [_mara_notice(site)]
    everyone = sorted(example + mara, reverse=True)
    for username, expected in (("root", everyone), ("ops", everyone), ("example", example),
                               ("example-legal", example), ("mara", mara),
                               ("mara-legal", mara)):
        with site.client(username) as client:
            answer = client.get("/api/v1/notices")
            assert _ids(answer) == expected, username
            assert answer.json()["total"] == len(expected)
            assert {row["holder"] for row in answer.json()["items"]} == (
                {EXAMPLE, MARA} if len(expected) == 4 else
                {MARA} if expected == mara else {EXAMPLE})
    with site.client("example") as client:
        ignored = client.get("/api/v1/notices", params={"status": "ignored"}).json()
        assert [row["id"] for row in ignored["items"]] == [site.story.ignored_notice]
        with site.app.ledger.read() as session:  # the story's counter-notice
            earliest = session.execute(select(CounterNotice.putback_earliest).where(
                CounterNotice.notice_id == site.story.ignored_notice)).scalar_one()
        assert earliest and ignored["items"][0]["sue_before"] == earliest.isoformat()
        page = client.get("/api/v1/notices", params={"limit": 1, "offset": 1}).json()
        assert [row["id"] for row in page["items"]] == example[1:2] and page["total"] == 3
        assert client.get("/api/v1/notices", params={"limit": 0}).status_code == 422
        assert client.get("/api/v1/notices", params={"offset": -1}).status_code == 422
    with site.client("mara") as client:  # filters narrow the scope, never widen it
        assert _ids(client.get("/api/v1/notices", params={"status": "ignored"})) == []
    with site.client() as anonymous:
        assert anonymous.get("/api/v1/notices").status_code == 401


def test_a_notice_shows_its_urls_attempts_and_text_as_the_cli_does(site: Site) -> None:
    ignored = site.story.ignored_notice
    with site.client("example-legal") as client:
        shown = client.get(f"/api/v1/notices/{ignored}")
    assert shown.status_code == 200, shown.text
    info = shown.json()
    assert info["id"] == ignored and info["status"] == "ignored" and info["urls"] == 3
    assert [item["url"] for item in info["items"]] == [
        "https://files.pirate-blog.example/a/1.mp3", "https://files.pirate-blog.example/a/2.mp3",
        "https://mirror-pb.example/2.mp3"]
    assert {item["status"] for item in info["items"]} == {"still-up"}
    assert info["attempts_log"] == [] and info["subject"] == "DMCA notice"
    assert info["text"] == "..." and info["html"] is None
    # The same object `notices show --json` prints, key for key.
    assert list(info) == [
        "id", "reference", "status", "jurisdiction", "holder", "recipient", "recipient_name",
        "recipient_source", "urls", "created_at", "sent_at", "attempts", "recheck_at",
        "last_error", "sue_before", "consideration", "items", "attempts_log", "subject",
        "text", "html"]


def test_another_holders_notice_answers_as_a_missing_one(site: Site) -> None:
    ignored, theirs = site.story.ignored_notice, _mara_notice(site)
    with site.client("mara") as mara, site.client("example-legal") as legal:
        for client, foreign in ((mara, ignored), (legal, theirs)):
            hidden = client.get(f"/api/v1/notices/{foreign}")
            missing = client.get(f"/api/v1/notices/{MISSING}")
            assert hidden.status_code == missing.status_code == 404
            assert hidden.json() == {"detail": f"no notice {foreign}"}
            assert missing.json() == {"detail": f"no notice {MISSING}"}
        assert mara.get("/api/v1/notices/abc").status_code == 422
        assert mara.get(f"/api/v1/notices/{2**63}").status_code == 422  # never looked up
    with site.client("mara-legal") as client:
        assert client.get(f"/api/v1/notices/{theirs}").status_code == 200


def test_a_holder_approves_its_notice_waiting_for_review(site: Site) -> None:
    waiting = _waiting_for_review(site, "https://files.pirate-blog.example/a/3b.mp3")
    reason = {"reason": "a re-upload of a removed copy; no licence, not fair use"}
    # Mara's accounts cannot tell it exists; the legal team and the operator only read notices.
    with site.client("mara") as mara:
        hidden = mara.post(f"/api/v1/notices/{waiting}/approve", json=reason)
        missing = mara.post(f"/api/v1/notices/{MISSING}/approve", json=reason)
        assert hidden.status_code == missing.status_code == 404
        assert hidden.json() == {"detail": f"no notice {waiting}"}
    for username in ("example-legal", "ops", "mara-legal"):
        with site.client(username) as client:
            refused = client.post(f"/api/v1/notices/{waiting}/approve", json=reason)
            assert refused.status_code == 403, username
    assert _notice(site, waiting).status == NoticeStatus.REVIEW
    assert _audit(site, "notice.approved") == []

    with site.client("example") as client:
        assert client.post(f"/api/v1/notices/{waiting}/approve", json={}).status_code == 422
        blank = client.post(f"/api/v1/notices/{waiting}/approve", json={"reason": "  "})
        assert blank.status_code == 400 and "reason" in blank.json()["detail"]
        approved = client.post(f"/api/v1/notices/{waiting}/approve", json=reason)
        assert approved.status_code == 200, approved.text
        assert approved.json()["id"] == waiting and approved.json()["status"] == "queued"
        again = client.post(f"/api/v1/notices/{waiting}/approve", json=reason)
        assert again.status_code == 409 and "not waiting for review" in again.json()["detail"]
    row = _notice(site, waiting)
    assert row.status == NoticeStatus.QUEUED and row.decided_by == "user:example"
    assert row.consideration is not None and row.consideration["by"] == "person"
    assert row.consideration["review_reasons"] == ["confidence below 0.85"]
    [entry] = _audit(site, "notice.approved")
    assert entry.actor == "user:example" and entry.entity_id == str(waiting)
    assert reason["reason"] in entry.details


def test_a_holder_resends_a_notice_whose_delivery_failed(site: Site) -> None:
    failed = _waiting_for_review(site, "https://files.pirate-blog.example/a/3b.mp3")
    with site.app.ledger.write() as session:
        row = session.get_one(Notice, failed)
        row.status, row.attempts, reference = NoticeStatus.FAILED, 5, row.reference
    reason = {"reason": "the host's form was down all week"}
    with site.client("mara") as mara:
        assert mara.post(f"/api/v1/notices/{failed}/resend", json=reason).status_code == 404
    with site.client("example-legal") as legal:
        assert legal.post(f"/api/v1/notices/{failed}/resend", json=reason).status_code == 403
    with site.client("example") as client:
        blank = client.post(f"/api/v1/notices/{failed}/resend", json={"reason": " "})
        assert blank.status_code == 400 and "reason" in blank.json()["detail"]
        resent = client.post(f"/api/v1/notices/{failed}/resend", json=reason)
        assert resent.status_code == 200 and resent.json()["status"] == "queued", resent.text
        again = client.post(f"/api/v1/notices/{failed}/resend", json=reason)
        assert again.status_code == 409 and "only unconfirmed or failed" in again.text
    row = _notice(site, failed)
    assert (row.status, row.attempts, row.reference) == (NoticeStatus.QUEUED, 0, reference)
    [entry] = _audit(site, "notice.resend")
    assert entry.actor == "user:example" and reason["reason"] in entry.details


def test_a_rejected_notice_takes_its_detections_with_it(site: Site) -> None:
    first = _waiting_for_review(site, "https://small-site.example/tide.mp3")
    second = _waiting_for_review(site, "https://tape-trader.example/demo.mp3")
    reason = {"reason": "the uploader holds a licence we had not recorded"}
    with site.client("mara") as mara:
        assert mara.post(f"/api/v1/notices/{first}/reject", json=reason).status_code == 404
    for username in ("example-legal", "ops"):
        with site.client(username) as client:
            assert client.post(f"/api/v1/notices/{first}/reject",
                               json=reason).status_code == 403
    with site.client("example") as client:
        rejected = client.post(f"/api/v1/notices/{first}/reject", json=reason)
        assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    with site.client("root") as admin:  # an admin decides for any holder
        assert admin.post(f"/api/v1/notices/{second}/reject",
                          json=reason).json()["status"] == "rejected"
    with site.app.ledger.read() as session:
        statuses = {n.id: (n.status, n.decided_by, {i.detection.status for i in n.items})
                    for n in (session.get(Notice, first), session.get(Notice, second)) if n}
    assert statuses == {first: ("rejected", "user:example", {DetectionStatus.REJECTED}),
                        second: ("rejected", "user:root", {DetectionStatus.REJECTED})}
    assert [e.actor for e in _audit(site, "notice.rejected")] == ["user:example", "user:root"]
    assert len(_audit(site, "detection.rejected")) == 2


def test_the_holders_legal_team_records_a_counter_notice(site: Site) -> None:
    honoured = site.story.honoured_notice
    body = {"message": "The recording is mine: I made it in 2019.",
            "sender": "uploader@honest-host.example"}
    with site.client("mara-legal") as mara:
        hidden = mara.post(f"/api/v1/notices/{honoured}/counter", json=body)
        missing = mara.post(f"/api/v1/notices/{MISSING}/counter", json=body)
        assert hidden.status_code == missing.status_code == 404
        assert hidden.json() == {"detail": f"no notice {honoured}"}
    with site.client("ops") as ops:
        assert ops.post(f"/api/v1/notices/{honoured}/counter", json=body).status_code == 403
    with site.client("example-legal") as legal:
        assert legal.post(f"/api/v1/notices/{honoured}/counter",
                          json={"message": ""}).status_code == 422
        recorded = legal.post(f"/api/v1/notices/{honoured}/counter", json=body)
        assert recorded.status_code == 201, recorded.text
        answer = recorded.json()
        # Received on Friday 2026-11-20: put back 10 to 14 business days later.
        assert answer["counter_notice"]["rule"] == "dmca-512g"
        assert answer["counter_notice"]["putback_earliest"] == "2026-12-04"
        assert answer["counter_notice"]["putback_latest"] == "2026-12-10"
        assert answer["notice"]["status"] == "countered"
        assert answer["notice"]["sue_before"] == "2026-12-04"
        shown = legal.get("/api/v1/notices", params={"status": "countered"}).json()
        assert [row["id"] for row in shown["items"]] == [honoured]
    waiting = _waiting_for_review(site, "https://contest.example/air.mp3")
    with site.client("example") as holder:  # the holder's own account may record one too
        unsent = holder.post(f"/api/v1/notices/{waiting}/counter", json=body)
        assert unsent.status_code == 409 and "only a sent notice" in unsent.json()["detail"]
    with site.app.ledger.read() as session:
        [row] = session.execute(select(CounterNotice).where(
            CounterNotice.notice_id == honoured)).scalars()
        assert row.sender == body["sender"] and row.message == body["message"]
    [entry] = _audit(site, "notice.countered")
    assert entry.actor == "user:example-legal" and entry.entity_id == str(honoured)


def test_the_openapi_document_describes_the_notice_endpoints(site: Site) -> None:
    with site.client() as anonymous:
        paths = anonymous.get("/api/openapi.json").json()["paths"]
    assert {"/api/v1/notices", "/api/v1/notices/{notice_id}",
            "/api/v1/notices/{notice_id}/approve", "/api/v1/notices/{notice_id}/reject",
            "/api/v1/notices/{notice_id}/counter"} <= set(paths)
    shown = paths["/api/v1/notices/{notice_id}"]["get"]
    assert shown["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/NoticeDetail"}
    assert "fair use" in paths["/api/v1/notices/{notice_id}/approve"]["post"]["description"]
