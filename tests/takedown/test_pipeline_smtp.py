"""Detections through the whole takedown stage to a real SMTP server: drafted, rendered, sent.

An allowlisted site and a licensee get nothing; the other site's detections arrive as one
e-mail carrying every element 17 U.S.C. 512(c)(3)(A) requires; a second pass sends nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from ledger.audit import verify_chain
from ledger.clock import FixedClock
from ledger.db import Ledger
from ledger.models import Detection, DetectionStatus, Notice, NoticeStatus
from takedown.content import Jurisdiction
from takedown.drafting import draft, finalise
from takedown.outbox import DeliveryRules, Outbox, Outcome
from takedown.policy import DraftingRules
from takedown.recipients import RecipientFinder
from takedown.render import NoticeRenderer
from takedown.smtp_sender import SmtpSender
from tests.takedown.ledger_history import LedgerHistory
from tests.takedown.servers import SmtpTestServer

RULES = DraftingRules(default_jurisdiction=Jurisdiction.DMCA, batch_window=timedelta(0),
                      allowlist=("licensed-radio.example",), fair_use_review_seconds=30.0,
                      review_below=0.85)
DELIVERY = DeliveryRules(max_attempts=3, retry_base=timedelta(seconds=60),
                         min_interval=timedelta(0), recheck_after=timedelta(days=2),
                         deadline=timedelta(days=14), from_address="desk@rights.example")


@pytest.fixture
def relay() -> Iterator[SmtpTestServer]:
    with SmtpTestServer() as server:
        yield server


def test_only_unlicensed_sites_get_one_complete_notice(ledger: Ledger, clock: FixedClock,
                                                       relay: SmtpTestServer,
                                                       tmp_path: Path) -> None:
    with ledger.write() as session:
        history = LedgerHistory(session, clock)
        holder = history.holder()
        harbour = history.recording(holder, "Harbour Lights", isrc="GBXYZ2400001")
        northern = history.recording(holder, "Northern Line")
        pirate = history.target("pirate", host="files.pirate.example",
                                notice_email="dmca@pirate.example")
        radio = history.target("radio", host="stream.licensed-radio.example",
                               notice_email="abuse@licensed-radio.example")
        partner = history.target("partner", host="partner.example",
                                 notice_email="legal@partner.example")
        history.licence(holder, "partner.example")  # every recording, worldwide
        pirated = [history.detection(history.capture(pirate, f"https://files.pirate.example/{n}"
                                                     ".mp3"), recording).id
                   for n, recording in enumerate((harbour, northern))]
        allowed = history.detection(history.capture(radio, "https://stream.licensed-radio"
                                                    ".example/a.mp3"), harbour).id
        licensed = history.detection(history.capture(partner, "https://partner.example/b.mp3"),
                                     northern).id

    sender = SmtpSender("127.0.0.1", relay.port, security="none", timeout=5.0, clock=clock)
    outbox = Outbox(ledger, clock, {"email": sender}, DELIVERY, actor="test")

    def run() -> list[str]:
        draft(ledger, RULES, RecipientFinder(None), actor="test")
        finalise(ledger, RULES, lambda holder_id: NoticeRenderer(tmp_path / str(holder_id)),
                 actor="test")
        return [result.outcome for result in outbox.dispatch().results]

    assert run() == [Outcome.SENT]
    [message] = relay.received
    assert message.rcpt_tos == ["dmca@pirate.example"]
    text = message.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    for url in ("https://files.pirate.example/0.mp3", "https://files.pirate.example/1.mp3"):
        assert url in text  # (iii) the material, located
    for element in ("Harbour Lights", "Northern Line",  # (ii) the works
                    "/s/ Jane Roe",  # (i) signature
                    "+44 20 7946 0000", "legal@example.example",  # (iv) contact
                    "good faith belief", "penalty of perjury"):  # (v), (vi)
        assert element in text, element

    assert run() == []  # nothing new: nothing sent again
    assert len(relay.received) == 1
    with ledger.read() as session:
        statuses = dict(session.execute(select(Detection.id, Detection.status)).all())
        assert statuses[allowed] == statuses[licensed] == DetectionStatus.LICENSED
        assert {statuses[i] for i in pirated} == {DetectionStatus.NOTICED}
        [notice] = session.execute(select(Notice)).scalars()
        assert notice.status == NoticeStatus.SENT and len(notice.items) == 2
        assert notice.consideration and notice.consideration["by"] == "rule"
        assert verify_chain(session).ok
