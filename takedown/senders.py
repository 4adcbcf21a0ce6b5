"""What every sender takes and gives back: the notice to hand over, the receipt, the failures.

A sender hands one rendered notice to one recipient and reports what the far side answered::

    OutgoingNotice --Sender.send()--> DeliveryReceipt
                                  \\-> TemporaryDeliveryError
                                  \\-> PermanentDeliveryError

Both failures (:mod:`takedown.errors`) carry the server's answer (``ServerAnswer``); a temporary
one also carries the
server's own retry hint (SMTP has none, HTTP has ``Retry-After``), which the outbox may honour
instead of its backoff. The implementations live in :mod:`takedown.smtp_sender` and
:mod:`takedown.http_sender`; this module reads no settings.

The idempotency key is the one value that makes a re-send after a crash recognisable: it becomes
the e-mail's ``Message-ID`` and the form's ``Idempotency-Key``, so it must be the same on every
attempt at the same notice (the ledger's notice id, not an attempt counter).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Protocol

# Restricted so that the key is valid unquoted as the left part of a Message-ID and as an HTTP
# header value alike; 128 characters leave room for a UUID plus a prefix.
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# How much of a server's reply a receipt or an error keeps: enough for a person to read the
# reason, bounded because a hostile server decides what it sends.
REPLY_LIMIT = 2000


@dataclass(frozen=True)
class OutgoingNotice:
    """One rendered notice for one recipient, exactly as the sender should hand it over.

    ``recipient`` is an e-mail address for :class:`~takedown.smtp_sender.SmtpSender` and an
    http(s) URL for :class:`~takedown.http_sender.HttpFormSender`. ``headers`` are extra message
    headers (e-mail) or request headers (HTTP); ``fields`` are extra form fields (HTTP only).
    Pairs, not dicts, so that the value stays immutable and order is kept.
    """

    idempotency_key: str
    recipient: str
    subject: str
    text: str
    from_address: str
    html: str | None = None
    reply_to: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    fields: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if not _KEY.fullmatch(self.idempotency_key):
            raise ValueError(f"idempotency key {self.idempotency_key!r} must match "
                             f"{_KEY.pattern}")
        # A line break in a header value would let notice content inject headers (or a second
        # message); refuse it here so that neither sender has to remember to.
        single_line = [("recipient", self.recipient), ("subject", self.subject),
                       ("from_address", self.from_address), ("reply_to", self.reply_to or "")]
        single_line += [(f"header {name}", f"{name}{value}") for name, value in self.headers]
        for what, value in single_line:
            if "\r" in value or "\n" in value:
                raise ValueError(f"{what} must not contain a line break")


@dataclass(frozen=True)
class DeliveryReceipt:
    """What the recipient's server answered when it accepted a notice.

    ``status_code`` is the SMTP reply code to the end of DATA or the HTTP status; ``reply`` the
    reply text or an excerpt of the response body (at most ``REPLY_LIMIT`` characters);
    ``server_message_id`` the id the server gave the notice where it said one ("queued as ...",
    a ticket id in the JSON answer); ``message_id`` our own id for it (the e-mail's Message-ID,
    the HTTP Idempotency-Key).
    """

    channel: str
    recipient: str
    idempotency_key: str
    message_id: str
    status_code: int
    reply: str
    server_message_id: str | None
    accepted_at: datetime


class Sender(Protocol):
    """Hands one notice over; returns the receipt or raises a :class:`DeliveryError`."""

    def send(self, notice: OutgoingNotice) -> DeliveryReceipt:
        ...


def bounded(text: str, limit: int = REPLY_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, marked when cut."""
    return text if len(text) <= limit else text[:limit] + " [...]"


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """An HTTP ``Retry-After`` value (seconds or an HTTP date) as a delay from ``now``.

    None when absent or unreadable: a malformed hint must not turn a retryable failure into a
    crash, the outbox then uses its own backoff.
    """
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; parsedate gives naive for "-0000"
        when = when.replace(tzinfo=UTC)
    return max(when - now, timedelta(0))

