"""Recipients in order (target, published site contact, RDAP) against a real RDAP server on
127.0.0.1; a temporary RDAP failure keeps the detection for the next run; none is reported."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from ledger.clock import FixedClock
from ledger.db import Ledger
from ledger.models import Capture, Detection, DetectionStatus, Notice, Target
from takedown.drafting import draft
from takedown.errors import RecipientLookupError
from takedown.policy import DraftingRules
from takedown.rdap import RDAP_MEDIA_TYPE, RdapClient
from takedown.recipients import FoundRecipient, RecipientFinder
from tests.takedown.ledger_history import LedgerHistory
from tests.takedown.servers import HttpTestServer, Reply

RULES = DraftingRules()


def _rdap(handle: str, email: str, name: str = "Abuse Desk") -> Reply:
    document: dict[str, Any] = {
        "objectClassName": "ip network", "handle": handle,
        "entities": [{"objectClassName": "entity", "roles": ["registrant"],
                      "vcardArray": ["vcard", [["fn", {}, "text", "Hosting Ltd"]]],
                      "entities": [{"objectClassName": "entity", "roles": ["abuse"],
                                    "vcardArray": ["vcard", [["fn", {}, "text", name],
                                                             ["email", {}, "text", email]]]}]}]}
    return Reply(body=json.dumps(document).encode(), content_type=RDAP_MEDIA_TYPE)


@pytest.fixture
def rdap_server() -> Iterator[HttpTestServer]:
    with HttpTestServer() as server:
        yield server


@pytest.fixture
def finder(rdap_server: HttpTestServer) -> Iterator[RecipientFinder]:
    with httpx.Client() as client:
        yield RecipientFinder(RdapClient(client, [rdap_server.base_url],
                                         [rdap_server.base_url], timeout=5.0))


def _find(ledger: Ledger, finder: RecipientFinder, capture_id: int) -> FoundRecipient:
    with ledger.read() as session:
        capture = session.get(Capture, capture_id)
        assert capture is not None
        target = session.get(Target, capture.target_id)
        assert target is not None
        return finder.find(session, target, capture)


def test_recipients_in_order_target_site_rdap(ledger: Ledger, clock: FixedClock,
                                              finder: RecipientFinder,
                                              rdap_server: HttpTestServer) -> None:
    rdap_server.reply("/ip/192.0.2.10", _rdap("NET-1", "abuse@hosting.example"))
    with ledger.write() as session:
        h = LedgerHistory(session, clock)
        configured = h.target("blog", host="blog.example", notice_email="dmca@blog.example",
                              notice_form_url="https://blog.example/dmca-form")
        published = h.target("mirror", host="files.mirror.example")
        h.site_contact(published, "mirror.example", "copyright@mirror.example")
        h.site_contact(configured, "blog.example", "ignored@blog.example")
        bare = h.target("radio", host="radio.example")
        captures = [h.capture(configured, "https://blog.example/a.mp3").id,
                    h.capture(published, "https://files.mirror.example/a.mp3").id,
                    h.capture(bare, "https://radio.example/a.mp3").id]

    found = [_find(ledger, finder, capture_id) for capture_id in captures]

    assert [(r.source, r.key) for r in found] == [
        ("target", "email:dmca@blog.example"),
        ("site", "email:copyright@mirror.example"),
        ("rdap", "email:abuse@hosting.example")]
    assert found[0].form_url == "https://blog.example/dmca-form"
    assert found[1].role == "copyright contact published at https://mirror.example/dmca"
    assert found[2].name == "Abuse Desk"
    assert found[2].role == "abuse contact of the network holding 192.0.2.10 (RDAP)"
    # The target's and the site's contacts need no network: RDAP was asked once, for radio.
    assert [r.path for r in rdap_server.requests] == ["/ip/192.0.2.10"]


def test_form_only_recipient_is_keyed_by_its_url() -> None:
    found = FoundRecipient("Platform", "notice form", None, "https://p.example/dmca", "target")
    assert found.key == "http:https://p.example/dmca"
    with pytest.raises(ValueError):
        FoundRecipient("Nobody", "none", None, None, "target")


def test_unknown_address_falls_back_to_the_registered_domain(
        ledger: Ledger, clock: FixedClock, finder: RecipientFinder,
        rdap_server: HttpTestServer) -> None:
    rdap_server.reply("/domain/pirate.example", _rdap("DOM-1", "abuse@registrar.example"))
    with ledger.write() as session:
        h = LedgerHistory(session, clock)
        target = h.target("pirate", host="cdn.files.pirate.example")
        first = h.capture(target, "https://cdn.files.pirate.example/1.mp3", ip="203.0.113.5")
        second = h.capture(target, "https://cdn.files.pirate.example/2.mp3", ip="203.0.113.5")

    found = _find(ledger, finder, first.id)
    again = _find(ledger, finder, second.id)

    assert found == again
    assert (found.source, found.email) == ("rdap", "abuse@registrar.example")
    assert found.role == "abuse contact of the domain pirate.example (RDAP)"
    # Longest name first; the second capture of the host is answered from the run's cache.
    assert [r.path for r in rdap_server.requests] == [
        "/ip/203.0.113.5", "/domain/cdn.files.pirate.example", "/domain/files.pirate.example",
        "/domain/pirate.example"]


def test_temporary_rdap_failure_keeps_the_detection_for_the_next_run(
        ledger: Ledger, clock: FixedClock, finder: RecipientFinder,
        rdap_server: HttpTestServer) -> None:
    rdap_server.reply("/ip/192.0.2.10", Reply(503, b"{}", headers=(("Retry-After", "60"),)))
    with ledger.write() as session:
        h = LedgerHistory(session, clock)
        song = h.recording(h.holder(), "Harbour Lights")
        radio = h.target("radio", host="radio.example")
        detections = [h.detection(h.capture(radio, f"https://radio.example/{n}.mp3"), song).id
                      for n in range(2)]

    report = draft(ledger, RULES, finder, actor="test")

    assert [s.detection_id for s in report.deferred] == detections
    assert "503" in report.deferred[0].reason
    assert report.noticed == [] and report.no_recipient == []
    # One failing request for the host in this run, not one per detection.
    assert len(rdap_server.requests) == 1
    with ledger.read() as session:
        statuses = session.execute(select(Detection.status)).scalars().all()
        assert statuses == [DetectionStatus.NEW, DetectionStatus.NEW]

    rdap_server.reply("/ip/192.0.2.10", _rdap("NET-1", "abuse@hosting.example"))
    report = draft(ledger, RULES, finder, actor="test")

    assert [d for d, _ in report.noticed] == detections
    with ledger.read() as session:
        notice = session.execute(select(Notice)).scalar_one()
        assert (notice.recipient_source, notice.recipient_key) == (
            "rdap", "email:abuse@hosting.example")


def test_no_recipient_is_reported_and_the_detection_stays_new(
        ledger: Ledger, clock: FixedClock, finder: RecipientFinder) -> None:
    with ledger.write() as session:
        h = LedgerHistory(session, clock)
        song = h.recording(h.holder(), "Harbour Lights")
        radio = h.target("radio", host="radio.example")
        detection = h.detection(h.capture(radio, "https://radio.example/1.mp3"), song)

    report = draft(ledger, RULES, finder, actor="test")

    [skipped] = report.no_recipient
    assert (skipped.detection_id, skipped.host) == (detection.id, "radio.example")
    assert skipped.reason.startswith("no recipient for host radio.example")
    with ledger.read() as session:
        row = session.get(Detection, detection.id)
        assert row is not None and row.status == DetectionStatus.NEW


def test_without_rdap_an_unknown_host_has_no_recipient(ledger: Ledger,
                                                       clock: FixedClock) -> None:
    with ledger.write() as session:
        h = LedgerHistory(session, clock)
        capture = h.capture(h.target("radio", host="radio.example"), "https://radio.example/1")
    with pytest.raises(RecipientLookupError, match=r"no recipient for host radio\.example") as info:
        _find(ledger, RecipientFinder(), capture.id)
    assert not info.value.temporary
