"""Deliver notices by e-mail through an SMTP relay (stdlib ``smtplib``).

Settings it would be built from (``[takedown.smtp]``): ``host``, ``port``, ``security``
("starttls" | "tls" | "none"), ``username``, ``password`` (from the environment, never the file),
``timeout``, ``envelope_from`` (bounce address), ``message_id_domain`` and
``allow_plaintext_auth``. The constructor only stores them: nothing connects until ``send``.

Each notice is one SMTP session (connect, [STARTTLS], [AUTH], MAIL, RCPT, DATA, QUIT). The message
is multipart/alternative (text, and HTML when the notice has it) with a Message-ID derived from
the notice's idempotency key, ``<key@domain>``, and an ``X-Copyguard-Notice: key`` header: an
attempt repeated after a crash carries the same id, so the recipient's mail system and our own
bounce/reply matching can tell it is the same notice.

Failures map onto the reply classes of RFC 5321: a 4yz reply, a refused or dropped connection
and a timeout are temporary; a 5yz reply (including 535 bad credentials and 550 unknown
recipient), a certificate that does not verify and a server lacking STARTTLS or AUTH are
permanent, because retrying the same configuration cannot succeed.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8, default
from email.utils import format_datetime, parseaddr
from typing import Literal

from ledger.clock import Clock, SystemClock
from takedown.errors import (
    DeliveryError,
    PermanentDeliveryError,
    ServerAnswer,
    TemporaryDeliveryError,
)
from takedown.senders import (
    DeliveryReceipt,
    OutgoingNotice,
    bounded,
)

Security = Literal["starttls", "tls", "none"]

NOTICE_HEADER = "X-Copyguard-Notice"
_SEVEN_BIT = default.clone(cte_type="7bit")
# Where common MTAs put their queue id in the reply to DATA: Postfix/Sendmail "queued as X",
# Exim "id=X", Microsoft "<id@host> [InternalId=...]" is left alone (no stable shape).
_OWN_HEADERS = frozenset({"subject", "from", "to", "reply-to", "date", "message-id",
                          NOTICE_HEADER.lower(), "content-type", "mime-version",
                          "content-transfer-encoding"})
_QUEUE_ID = re.compile(r"(?:queued as|\bid=)\s*<?([A-Za-z0-9._@-]+)>?", re.IGNORECASE)


class SmtpSender:
    """Sends one notice per SMTP session to ``notice.recipient`` (an e-mail address)."""

    channel = "smtp"

    def __init__(self, host: str, port: int = 587, *,
                 security: Security = "starttls",
                 username: str | None = None,
                 password: str | None = None,
                 timeout: float = 30.0,
                 ssl_context: ssl.SSLContext | None = None,
                 allow_plaintext_auth: bool = False,
                 envelope_from: str | None = None,
                 message_id_domain: str | None = None,
                 local_hostname: str | None = None,
                 clock: Clock | None = None) -> None:
        """
        :param security: "starttls" upgrades a plain connection and fails if the server cannot;
            "tls" speaks TLS from the first byte (port 465); "none" sends in the clear.
        :param username: AUTH is attempted only when given (with ``password``).
        :param timeout: seconds for the connection and for each reply.
        :param ssl_context: what to trust; the system's CAs when None.
        :param allow_plaintext_auth: lets credentials go over ``security="none"`` (a relay on
            the loopback interface); without it that combination is refused here, at start-up.
        :param envelope_from: MAIL FROM (where bounces go); the notice's From address when None.
        :param message_id_domain: right part of Message-ID; the From address's domain when None.
        :param local_hostname: what EHLO says; the machine's FQDN when None.
        """
        if security not in ("starttls", "tls", "none"):
            raise ValueError(f"security must be starttls, tls or none, not {security!r}")
        if (username is None) != (password is None):
            raise ValueError("username and password go together")
        if username is not None and security == "none" and not allow_plaintext_auth:
            raise ValueError("refusing to send SMTP credentials over an unencrypted connection "
                             "(use security='starttls' or 'tls', or allow_plaintext_auth)")
        self.host = host
        self.port = port
        self.security = security
        self._username = username
        self._password = password
        self.timeout = timeout
        self._ssl_context = ssl_context
        self.envelope_from = envelope_from
        self.message_id_domain = message_id_domain
        self.local_hostname = local_hostname
        self._clock: Clock = clock or SystemClock()

    def build_message(self, notice: OutgoingNotice) -> EmailMessage:
        """The e-mail for ``notice``; the same notice always gets the same Message-ID."""
        # Bodies as quoted-printable/base64: a relay that lacks 8BITMIME must not mangle a
        # notice written in Chinese or German.
        message = EmailMessage(policy=_SEVEN_BIT)
        message["Subject"] = notice.subject
        message["From"] = notice.from_address
        message["To"] = notice.recipient
        if notice.reply_to:
            message["Reply-To"] = notice.reply_to
        message["Date"] = format_datetime(self._clock.now())
        message["Message-ID"] = self.message_id(notice)
        message[NOTICE_HEADER] = notice.idempotency_key
        for name, value in notice.headers:
            # The headers that identify the notice are ours alone: a second Message-ID would
            # defeat recognising a re-send.
            if name.lower() in _OWN_HEADERS:
                raise ValueError(f"header {name} is set by the sender, not by the notice")
            message[name] = value
        message.set_content(notice.text)
        if notice.html is not None:
            message.add_alternative(notice.html, subtype="html")
        return message

    def message_id(self, notice: OutgoingNotice) -> str:
        domain = self.message_id_domain or _domain_of(notice.from_address)
        if not domain:
            raise ValueError(f"no domain for the Message-ID: from address "
                             f"{notice.from_address!r} has none and message_id_domain is unset")
        return f"<{notice.idempotency_key}@{domain}>"

    def send(self, notice: OutgoingNotice) -> DeliveryReceipt:
        recipient = _address_of(notice.recipient)
        if "@" not in recipient:
            raise PermanentDeliveryError(f"not an e-mail address: {notice.recipient!r}",
                                     ServerAnswer(None, ""))
        sender = _address_of(self.envelope_from or notice.from_address)
        try:
            message = self.build_message(notice)
        except ValueError as exc:  # a defect of this notice: no retry will mend it
            raise PermanentDeliveryError(f"cannot build the e-mail: {exc}",
                                     ServerAnswer(None, "")) from exc
        international = not (recipient + sender).isascii()
        options = ["SMTPUTF8", "BODY=8BITMIME"] if international else []
        payload = message.as_bytes(policy=SMTPUTF8 if international else SMTP)
        try:
            with self._connect() as smtp:
                if self.security == "starttls":
                    smtp.starttls(context=self._context())
                if self._username is not None and self._password is not None:
                    smtp.login(self._username, self._password)
                smtp.ehlo_or_helo_if_needed()
                if international and not smtp.has_extn("smtputf8"):
                    raise PermanentDeliveryError(
                        f"{self.host} does not accept internationalised addresses (SMTPUTF8)",
                        ServerAnswer(None, ""))
                _expect("MAIL FROM", smtp.mail(sender, options), (250,))
                _expect("RCPT TO", smtp.rcpt(recipient), (250, 251))
                code, reply = _expect("DATA", smtp.data(payload), (250,))
        except smtplib.SMTPResponseException as exc:  # AUTH, HELO, greeting, 354 refused
            raise _failure(f"{self.host} answered {exc.smtp_code}", exc.smtp_code,
                           exc.smtp_error) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise PermanentDeliveryError(f"{self.host}: {exc}",
                                         ServerAnswer(None, str(exc))) from exc
        except smtplib.SMTPException as exc:  # disconnected mid-session and the like
            raise TemporaryDeliveryError(f"{self.host}: {exc}",
                                         ServerAnswer(None, str(exc))) from exc
        except ssl.SSLCertVerificationError as exc:
            raise PermanentDeliveryError(f"{self.host}: TLS certificate not trusted: "
                                     f"{exc.verify_message}", ServerAnswer(None, str(exc))) from exc
        except OSError as exc:  # refused, unreachable, timed out, TLS handshake cut
            raise TemporaryDeliveryError(f"cannot reach {self.host}:{self.port}: {exc}",
                                     ServerAnswer(None, str(exc))) from exc
        queue_id = _QUEUE_ID.search(reply)
        return DeliveryReceipt(channel=self.channel, recipient=recipient,
                               idempotency_key=notice.idempotency_key,
                               message_id=str(message["Message-ID"]), status_code=code,
                               reply=bounded(reply),
                               server_message_id=queue_id.group(1) if queue_id else None,
                               accepted_at=self._clock.now())

    def _connect(self) -> smtplib.SMTP:
        if self.security == "tls":
            return smtplib.SMTP_SSL(self.host, self.port, local_hostname=self.local_hostname,
                                    timeout=self.timeout, context=self._context())
        return smtplib.SMTP(self.host, self.port, local_hostname=self.local_hostname,
                            timeout=self.timeout)

    def _context(self) -> ssl.SSLContext:
        # Built per session when not injected: cheap, and no shared mutable state in the sender.
        return self._ssl_context or ssl.create_default_context()


def _expect(step: str, answer: tuple[int, bytes], accepted: tuple[int, ...]) -> tuple[int, str]:
    code, raw = answer
    reply = raw.decode("utf-8", "replace")
    if code not in accepted:
        raise _failure(f"{step} answered {code}", code, raw)
    return code, reply


def _failure(what: str, code: int, raw: bytes | str) -> DeliveryError:
    reply = bounded(raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw)
    answer = ServerAnswer(code, reply)
    message = f"{what}: {reply}"
    if 500 <= code <= 599:
        return PermanentDeliveryError(message, answer)
    # 4yz, and smtplib's -1 for "no reply at all": another attempt may well succeed.
    return TemporaryDeliveryError(message, answer)


def _address_of(address: str) -> str:
    return parseaddr(address)[1]


def _domain_of(address: str) -> str:
    return _address_of(address).rpartition("@")[2]
