"""HttpFormSender against a real HTTP server on 127.0.0.1 (form, JSON, failures, redirects)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import timedelta
from email.utils import format_datetime
from urllib.parse import parse_qs

import httpx
import pytest

from ledger.clock import FixedClock
from takedown.errors import PermanentDeliveryError, TemporaryDeliveryError
from takedown.http_sender import FormFields, HttpFormSender
from takedown.senders import OutgoingNotice, Sender
from tests.takedown.servers import HttpTestServer, Reply


@pytest.fixture
def server() -> Iterator[HttpTestServer]:
    with HttpTestServer() as running:
        yield running


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    # One client for the module: building its TLS context costs more than a whole test.
    with httpx.Client() as opened:
        yield opened


def _notice(endpoint: str, **extra: object) -> OutgoingNotice:
    values: dict[str, object] = {
        "idempotency_key": "notice-42", "recipient": endpoint,
        "subject": "Notice of infringement", "text": "Please remove https://pirate.example/a.mp3",
        "html": "<p>Please remove it</p>", "from_address": "desk@rights.example",
        "reply_to": "replies@rights.example", "fields": (("category", "copyright"),)}
    values.update(extra)
    return OutgoingNotice(**values)  # type: ignore[arg-type]


def test_form_submission_arrives_with_the_idempotency_key(
        server: HttpTestServer, client: httpx.Client, clock: FixedClock) -> None:
    server.reply("/abuse", Reply(200, b"<p>Thank you, report received</p>", "text/html"))
    sender: Sender = HttpFormSender(client, clock=clock, timeout=5.0)

    receipt = sender.send(_notice(f"{server.base_url}/abuse"))

    (request,) = server.requests
    assert request.method == "POST"
    assert request.headers["idempotency-key"] == "notice-42"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(request.body.decode()) == {
        "subject": ["Notice of infringement"],
        "message": ["Please remove https://pirate.example/a.mp3"],
        "email": ["desk@rights.example"], "category": ["copyright"]}
    assert receipt.status_code == 200 and "report received" in receipt.reply
    assert receipt.message_id == "notice-42" and receipt.accepted_at == clock.now()


def test_json_submission_uses_the_field_mapping_and_records_the_ticket(
        server: HttpTestServer, client: httpx.Client, clock: FixedClock) -> None:
    server.reply("/api/reports", Reply(201, b'{"id": "T-991", "status": "open"}'))
    fields = FormFields(subject="title", text="body", html="body_html",
                        from_address="reporter", reply_to="reply_to", idempotency_key="ref")
    sender = HttpFormSender(client, encoding="json", fields=fields, clock=clock)

    receipt = sender.send(_notice(f"{server.base_url}/api/reports"))

    (request,) = server.requests
    assert request.headers["idempotency-key"] == "notice-42"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.body) == {
        "title": "Notice of infringement", "body": "Please remove https://pirate.example/a.mp3",
        "body_html": "<p>Please remove it</p>", "reporter": "desk@rights.example",
        "reply_to": "replies@rights.example", "ref": "notice-42", "category": "copyright"}
    assert (receipt.status_code, receipt.server_message_id) == (201, "T-991")


def test_503_with_retry_after_is_temporary_with_the_hint(
        server: HttpTestServer, client: httpx.Client, clock: FixedClock) -> None:
    server.reply("/abuse", Reply(503, b"maintenance", "text/plain", (("Retry-After", "120"),)))
    with pytest.raises(TemporaryDeliveryError) as caught:
        HttpFormSender(client, clock=clock).send(_notice(f"{server.base_url}/abuse"))
    assert caught.value.retry_after == timedelta(seconds=120)
    assert caught.value.answer.status_code == 503
    assert caught.value.answer.reply == "maintenance"


def test_429_with_an_http_date_hint(server: HttpTestServer, client: httpx.Client,
                                    clock: FixedClock) -> None:
    later = format_datetime(clock.now() + timedelta(minutes=10), usegmt=True)
    server.reply("/abuse", Reply(429, b"", "text/plain", (("Retry-After", later),)))
    with pytest.raises(TemporaryDeliveryError) as caught:
        HttpFormSender(client, clock=clock).send(_notice(f"{server.base_url}/abuse"))
    assert isinstance(caught.value, TemporaryDeliveryError)
    assert caught.value.retry_after == timedelta(minutes=10)


def test_400_is_permanent_and_keeps_the_reason(server: HttpTestServer, client: httpx.Client,
                                                clock: FixedClock) -> None:
    server.reply("/abuse", Reply(400, b'{"error": "field email is required"}'))
    with pytest.raises(PermanentDeliveryError) as caught:
        HttpFormSender(client, clock=clock).send(_notice(f"{server.base_url}/abuse"))
    assert caught.value.answer.status_code == 400
    assert "field email is required" in caught.value.answer.reply


def test_redirect_to_another_host_is_refused(server: HttpTestServer, client: httpx.Client,
                                             clock: FixedClock) -> None:
    # "localhost" is the same machine under another name: the sender must judge by the host,
    # and the redirected request must never be made.
    elsewhere = f"http://localhost:{server.port}/collect"
    server.reply("/abuse", Reply(307, b"", "text/plain", (("Location", elsewhere),)))
    server.reply("/collect", Reply(200, b"got it", "text/plain"))
    with pytest.raises(PermanentDeliveryError, match="another host"):
        HttpFormSender(client, clock=clock).send(_notice(f"{server.base_url}/abuse"))
    assert [r.path for r in server.requests] == ["/abuse"]


def test_same_host_redirects_are_followed(server: HttpTestServer, client: httpx.Client,
                                          clock: FixedClock) -> None:
    server.reply("/abuse", Reply(308, b"", "text/plain", (("Location", "/v2/abuse"),)))
    server.reply("/v2/abuse", Reply(303, b"", "text/plain", (("Location", "/thanks"),)))
    server.reply("/thanks", Reply(200, b"thanks", "text/plain"))
    receipt = HttpFormSender(client, clock=clock).send(_notice(f"{server.base_url}/abuse"))
    seen = [(r.method, r.path, bool(r.body)) for r in server.requests]
    assert seen == [("POST", "/abuse", True), ("POST", "/v2/abuse", True),
                    ("GET", "/thanks", False)]
    assert receipt.recipient == f"{server.base_url}/thanks" and receipt.reply == "thanks"


def test_a_large_body_is_read_only_up_to_the_bound(server: HttpTestServer,
                                                   client: httpx.Client,
                                                   clock: FixedClock) -> None:
    server.reply("/abuse", Reply(200, b"x" * 300_000, "text/plain"))
    receipt = HttpFormSender(client, clock=clock, read_limit=4096).send(
        _notice(f"{server.base_url}/abuse"))
    assert len(receipt.reply) < 2100


@pytest.mark.parametrize("endpoint", ["ftp://host.example/upload", "mailto:abuse@host.example",
                                      "/relative/path"])
def test_an_endpoint_that_is_not_http_is_permanent(endpoint: str, client: httpx.Client,
                                                   clock: FixedClock) -> None:
    with pytest.raises(PermanentDeliveryError, match="http or https"):
        HttpFormSender(client, clock=clock).send(_notice(endpoint))


def test_connection_refused_is_temporary(client: httpx.Client, clock: FixedClock) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(TemporaryDeliveryError, match="cannot reach"):
        HttpFormSender(client, clock=clock, timeout=2.0).send(
            _notice(f"http://127.0.0.1:{port}/abuse"))
