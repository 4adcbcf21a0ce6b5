"""SmtpSender against a real aiosmtpd relay on 127.0.0.1: STARTTLS, implicit TLS, AUTH, failures."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator

import pytest

from ledger.clock import FixedClock
from takedown.errors import PermanentDeliveryError, TemporaryDeliveryError
from takedown.senders import OutgoingNotice, Sender
from takedown.smtp_sender import NOTICE_HEADER, SmtpSender
from tests.takedown.servers import SMTP_PASSWORD, SMTP_USER, SmtpTestServer, TestTls, make_tls


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TestTls:
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def relay(tls: TestTls) -> Iterator[SmtpTestServer]:
    with SmtpTestServer(tls) as server:
        yield server


def _notice(key: str = "notice-42") -> OutgoingNotice:
    return OutgoingNotice(
        idempotency_key=key, recipient="abuse@host.example",
        subject="Notice of infringement: Blue Hour (track 3)",
        text="The recording at https://pirate.example/a.mp3 infringes our client's copyright.",
        html="<p>The recording at <a href='https://pirate.example/a.mp3'>a.mp3</a> infringes "
             "our client's copyright.</p>",
        from_address="Rights Desk <desk@rights.example>", reply_to="replies@rights.example",
        headers=(("X-Copyguard-Case", "7"),))


def _sender(relay: SmtpTestServer, clock: FixedClock, **options: object) -> SmtpSender:
    settings: dict[str, object] = {"security": "none", "timeout": 5.0, "clock": clock,
                                   "local_hostname": "copyguard.test"}
    settings.update(options)
    return SmtpSender("127.0.0.1", relay.port, **settings)  # type: ignore[arg-type]


def test_notice_arrives_with_text_html_message_id_and_notice_header(
        relay: SmtpTestServer, clock: FixedClock) -> None:
    sender: Sender = _sender(relay, clock)  # mypy checks that SmtpSender is a Sender
    receipt = sender.send(_notice())

    (got,) = relay.received
    message = got.message
    assert got.rcpt_tos == ["abuse@host.example"]
    assert got.mail_from == "desk@rights.example"
    assert message["Subject"] == "Notice of infringement: Blue Hour (track 3)"
    assert message["Message-ID"] == "<notice-42@rights.example>"
    assert message[NOTICE_HEADER] == "notice-42"
    assert message["Reply-To"] == "replies@rights.example"
    assert message["X-Copyguard-Case"] == "7"
    assert message.get_content_type() == "multipart/alternative"
    text_part = message.get_body(("plain",))
    html_part = message.get_body(("html",))
    assert text_part is not None and html_part is not None
    assert "infringes our client's copyright" in text_part.get_content()
    assert "<a href='https://pirate.example/a.mp3'>" in html_part.get_content()
    assert (receipt.status_code, receipt.server_message_id) == (250, "TESTQ1")
    assert receipt.message_id == "<notice-42@rights.example>"
    assert receipt.accepted_at == clock.now()
    assert "queued as TESTQ1" in receipt.reply


def test_starttls_and_auth_deliver(relay: SmtpTestServer, clock: FixedClock,
                                   tls: TestTls) -> None:
    sender = _sender(relay, clock, security="starttls", username=SMTP_USER,
                     password=SMTP_PASSWORD, ssl_context=tls.client_context())
    sender.send(_notice())

    (got,) = relay.received
    assert got.over_tls and got.authenticated_as == SMTP_USER


def test_implicit_tls_delivers(tls: TestTls, clock: FixedClock) -> None:
    with SmtpTestServer(tls, implicit_tls=True) as server:
        _sender(server, clock, security="tls", ssl_context=tls.client_context()).send(_notice())
        assert server.received[0].over_tls


def test_starttls_missing_on_the_server_is_permanent(clock: FixedClock) -> None:
    # No downgrade to plain text when the relay does not offer STARTTLS.
    with SmtpTestServer(None) as server:
        with pytest.raises(PermanentDeliveryError, match="STARTTLS"):
            _sender(server, clock, security="starttls").send(_notice())
        assert server.received == []


def test_a_notice_header_cannot_replace_the_message_id(relay: SmtpTestServer,
                                                       clock: FixedClock) -> None:
    notice = OutgoingNotice(idempotency_key="n-1", recipient="abuse@host.example", subject="s",
                            text="t", from_address="desk@rights.example",
                            headers=(("Message-ID", "<other@example.com>"),))
    with pytest.raises(PermanentDeliveryError, match="Message-ID"):
        _sender(relay, clock).send(notice)
    assert relay.received == []


def test_wrong_password_is_permanent(relay: SmtpTestServer, clock: FixedClock,
                                     tls: TestTls) -> None:
    sender = _sender(relay, clock, security="starttls", username=SMTP_USER,
                     password="wrong", ssl_context=tls.client_context())
    with pytest.raises(PermanentDeliveryError) as caught:
        sender.send(_notice())
    assert caught.value.answer.status_code == 535
    assert relay.received == []


def test_untrusted_certificate_is_permanent(relay: SmtpTestServer, clock: FixedClock) -> None:
    # The system's CAs do not know the test certificate: no silent fallback to plain text.
    sender = _sender(relay, clock, security="starttls", ssl_context=ssl.create_default_context())
    with pytest.raises(PermanentDeliveryError, match="not trusted"):
        sender.send(_notice())


def test_451_is_temporary_and_the_retry_carries_the_same_message_id(
        relay: SmtpTestServer, clock: FixedClock) -> None:
    relay.fail_next(1, "451 4.3.0 Try again later")
    sender = _sender(relay, clock)
    with pytest.raises(TemporaryDeliveryError) as caught:
        sender.send(_notice())
    assert caught.value.answer.status_code == 451
    assert "Try again later" in caught.value.answer.reply

    sender.send(_notice())
    assert [m.message["Message-ID"] for m in relay.received] == ["<notice-42@rights.example>"]


def test_550_on_rcpt_is_permanent(relay: SmtpTestServer, clock: FixedClock) -> None:
    relay.fail_next(1, "550 5.1.1 No such user", stage="RCPT")
    with pytest.raises(PermanentDeliveryError) as caught:
        _sender(relay, clock).send(_notice())
    assert caught.value.answer.status_code == 550
    assert "No such user" in str(caught.value)
    assert relay.received == []


def test_550_on_data_is_permanent(relay: SmtpTestServer, clock: FixedClock) -> None:
    relay.fail_next(1, "550 5.7.1 Message rejected as spam")
    with pytest.raises(PermanentDeliveryError):
        _sender(relay, clock).send(_notice())


def test_connection_refused_is_temporary(clock: FixedClock) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago and is closed now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sender = SmtpSender("127.0.0.1", port, security="none", timeout=2.0, clock=clock)
    with pytest.raises(TemporaryDeliveryError, match="cannot reach"):
        sender.send(_notice())


def test_credentials_over_a_plain_connection_are_refused() -> None:
    with pytest.raises(ValueError, match="unencrypted"):
        SmtpSender("127.0.0.1", 25, security="none", username=SMTP_USER, password=SMTP_PASSWORD)


def test_plaintext_auth_when_allowed_meets_a_server_that_wants_tls(
        relay: SmtpTestServer, clock: FixedClock) -> None:
    # Allowed on our side, but the relay does not offer AUTH before TLS: permanent, not retried.
    sender = _sender(relay, clock, username=SMTP_USER, password=SMTP_PASSWORD,
                     allow_plaintext_auth=True)
    with pytest.raises(PermanentDeliveryError):
        sender.send(_notice())


def test_notice_without_html_is_plain_text(relay: SmtpTestServer, clock: FixedClock) -> None:
    notice = OutgoingNotice(idempotency_key="n-1", recipient="abuse@host.example",
                            subject="Notice", text="Body", from_address="desk@rights.example")
    _sender(relay, clock).send(notice)
    assert relay.received[0].message.get_content_type() == "text/plain"


def test_non_ascii_notice_arrives_intact(relay: SmtpTestServer, clock: FixedClock) -> None:
    notice = OutgoingNotice(idempotency_key="n-cn-1", recipient="abuse@host.example",
                            subject="侵权通知 Blue Hour", text="权利人的姓名、联系方式和地址\n",
                            html="<p>Zürich — 权利人</p>", from_address="desk@rights.example")
    _sender(relay, clock).send(notice)
    message = relay.received[0].message
    assert message["Subject"] == "侵权通知 Blue Hour"
    text_part, html_part = message.get_body(("plain",)), message.get_body(("html",))
    assert text_part is not None and html_part is not None
    assert text_part.get_content() == "权利人的姓名、联系方式和地址\n"
    assert "Zürich — 权利人" in html_part.get_content()
    assert text_part["Content-Transfer-Encoding"] in ("base64", "quoted-printable")


def test_a_line_break_in_a_header_value_is_refused() -> None:
    with pytest.raises(ValueError, match="line break"):
        OutgoingNotice(idempotency_key="n-1", recipient="abuse@host.example",
                       subject="Notice\r\nBcc: everyone@example.com", text="Body",
                       from_address="desk@rights.example")


@pytest.mark.parametrize("key", ["", "has space", "<angle>", "x" * 200])
def test_an_unsafe_idempotency_key_is_refused(key: str) -> None:
    with pytest.raises(ValueError, match="idempotency key"):
        OutgoingNotice(idempotency_key=key, recipient="abuse@host.example", subject="s",
                       text="t", from_address="desk@rights.example")


def test_not_an_address_is_permanent(clock: FixedClock) -> None:
    notice = OutgoingNotice(idempotency_key="n-1", recipient="https://host.example/form",
                            subject="s", text="t", from_address="desk@rights.example")
    with pytest.raises(PermanentDeliveryError, match="not an e-mail address"):
        SmtpSender("127.0.0.1", 1, security="none", clock=clock).send(notice)
