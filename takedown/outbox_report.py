"""The outbox's values: the rules it delivers by, what it hands to a sender, what it reports.

Nothing here opens the ledger or sends; :mod:`takedown.outbox` does, and re-exports every name
callers use (``DeliveryRules``, ``DispatchReport``, ``NoticeResult``, ``Outcome``), so import
them from there. :func:`outgoing_notice` turns a notice row into the
:class:`~takedown.senders.OutgoingNotice` a sender takes, :func:`reminder_notice` the one reminder
of a notice whose URLs a re-check found still up; :func:`claim_interrupted` says whether a claim
(``claimed_by``, ``lease_until``) is still alive.

Settings read, through :meth:`DeliveryRules.from_settings` only: ``[takedown] max_attempts``,
``retry_base_seconds`` (first retry's delay, doubling each time), ``min_interval_per_recipient_
seconds``, ``recheck_after_days`` and ``deadline_days``, and ``[smtp] from_address`` (passed in;
empty: the rights-holder's own address).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from config.settings import TakedownSettings
from ledger.claims import claimant_gone, worker_name
from ledger.models import ItemStatus, Notice, RightsHolder
from takedown.requirements import format_utc
from takedown.senders import OutgoingNotice

__all__ = ["DeliveryRules", "DispatchReport", "NoticeResult", "Outcome", "channel_of",
           "claim_interrupted", "outgoing_notice", "reminder_key", "reminder_notice",
           "still_up_urls", "why_waiting", "worker_name"]


@dataclass(frozen=True)
class DeliveryRules:
    # Attempts (since the last resend) before a notice fails; as many for its reminder.
    max_attempts: int = 8
    retry_base: timedelta = timedelta(seconds=60)  # delay after the first failure; doubles
    min_interval: timedelta = timedelta(seconds=10)  # between two attempts to one recipient
    recheck_after: timedelta = timedelta(days=2)  # from sending to the first re-check
    deadline: timedelta = timedelta(days=14)  # from sending: still up past it, ignored
    from_address: str = ""  # From: of every notice; empty: the holder's own address
    # Longer than any send can take (an SMTP session of ~8 replies at 30 s each): a lease that
    # runs out while the attempt is still going makes it look interrupted.
    lease: timedelta = timedelta(minutes=15)
    # A server's Retry-After is honoured up to this: a broken one must not park a notice for years.
    max_retry_after: timedelta = timedelta(days=1)

    @classmethod
    def from_settings(cls, takedown: TakedownSettings, *, from_address: str = "") -> DeliveryRules:
        return cls(max_attempts=takedown.max_attempts,
                   retry_base=timedelta(seconds=takedown.retry_base_seconds),
                   min_interval=timedelta(seconds=takedown.min_interval_per_recipient_seconds),
                   recheck_after=timedelta(days=takedown.recheck_after_days),
                   deadline=timedelta(days=takedown.deadline_days), from_address=from_address)

    def backoff(self, attempts: int, hint: timedelta | None) -> timedelta:
        """The delay after the ``attempts``-th failure: doubling, or the server's longer hint."""
        own = self.retry_base * 2 ** max(attempts - 1, 0)
        return own if hint is None else max(own, min(hint, self.max_retry_after))


def claim_interrupted(claimed_by: str | None, lease_until: datetime | None, now: datetime) -> bool:
    """True when a claim's lease has run out or its process on this host is gone."""
    return lease_until is None or lease_until < now or claimant_gone(claimed_by)


class Outcome:
    """What a dispatch did with a notice (one :class:`NoticeResult` each)."""

    SENT = "sent"  # accepted by the recipient's server
    RETRYING = "retrying"  # refused for now: queued again after the backoff
    FAILED = "failed"  # refused for good, or out of attempts
    WAITING = "waiting"  # due but not tried: no sender for its channel, or recipient interval
    IN_DOUBT = "in-doubt"  # an interrupted attempt found: the notice is now unconfirmed
    WOULD_SEND = "would-send"  # dry run
    # The same for a notice's reminder. Outcomes of their own, so that a line "sent" never
    # means a second copy of a notice went out, and no count of notices includes reminders.
    REMINDER_SENT = "reminder-sent"
    REMINDER_RETRYING = "reminder-retrying"  # its next_attempt_at is after the backoff
    REMINDER_FAILED = "reminder-failed"  # no reminder will be sent for this notice
    REMINDER_IN_DOUBT = "reminder-in-doubt"  # interrupted: never sent again by itself
    WOULD_REMIND = "would-remind"  # dry run

    SUMMARY = (SENT, RETRYING, FAILED, WAITING, IN_DOUBT)
    REMINDER_SUMMARY = (REMINDER_SENT, REMINDER_RETRYING, REMINDER_FAILED, REMINDER_IN_DOUBT)

    @staticmethod
    def of_reminder(outcome: str) -> str:
        """The reminder's counterpart of a notice outcome (``sent`` -> ``reminder-sent``)."""
        return f"reminder-{outcome}"


@dataclass(frozen=True)
class NoticeResult:
    notice_id: int
    reference: str
    recipient: str
    channel: str | None
    outcome: str
    detail: str = ""

    @classmethod
    def of(cls, notice: Notice, outcome: str, detail: str) -> NoticeResult:
        recipient = notice.recipient_email or notice.recipient_form_url or notice.recipient_key
        return cls(notice.id, notice.reference, recipient, channel_of(notice), outcome, detail)


@dataclass
class DispatchReport:
    dry_run: bool = False
    results: list[NoticeResult] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(result.outcome == outcome for result in self.results)

    def summary(self) -> dict[str, int]:
        """Counts by outcome: the notice outcomes always, the reminder ones only when the
        dispatch handled a reminder (most do not, and their summary stays as it was)."""
        keys = (Outcome.WOULD_SEND, *Outcome.SUMMARY) if self.dry_run else Outcome.SUMMARY
        reminders = ((Outcome.WOULD_REMIND, *Outcome.REMINDER_SUMMARY) if self.dry_run
                     else Outcome.REMINDER_SUMMARY)
        if any(result.outcome in reminders for result in self.results):
            keys = (*keys, *reminders)
        return {key: self.count(key) for key in keys}


def channel_of(notice: Notice) -> str | None:
    """"email" when the notice has an address, else "http" when it has a form; None: neither."""
    if notice.recipient_email is not None:
        return "email"
    return "http" if notice.recipient_form_url is not None else None


def why_waiting(notice: Notice, channels: Collection[str], min_interval: timedelta) -> str:
    """Why a due queued notice was not tried: no way to it, or its recipient's interval."""
    channel = channel_of(notice)
    if channel is None:
        return "no e-mail address or form URL"
    if channel not in channels:
        return f"no {channel} sender configured" + (
            " ([smtp] host is empty)" if channel == "email" else "")
    return (f"recipient {notice.recipient_key} had a notice less than "
            f"{min_interval.total_seconds():g} s ago")


def outgoing_notice(notice: Notice, holder: RightsHolder, from_address: str = "") -> OutgoingNotice:
    """The notice as a sender takes it; ValueError when the row cannot be sent as it is."""
    channel = channel_of(notice)
    recipient = notice.recipient_email if channel == "email" else notice.recipient_form_url
    if not recipient:
        raise ValueError("no e-mail address or form URL")
    if notice.subject is None or notice.body_text is None:
        raise ValueError("no rendered subject or text")
    # The SMTP sender sets X-Copyguard-Notice itself (and refuses it from the notice); the form
    # endpoint gets it as a request header beside Idempotency-Key.
    headers = (("X-Copyguard-Notice", notice.reference),) if channel == "http" else ()
    return OutgoingNotice(idempotency_key=notice.reference, recipient=recipient,
                          subject=notice.subject, text=notice.body_text, html=notice.body_html,
                          from_address=from_address or holder.email, reply_to=holder.email,
                          headers=headers)


def still_up_urls(notice: Notice) -> list[str]:
    """The URLs the latest re-check found still serving the captured bytes."""
    return [item.url for item in notice.items if item.status == ItemStatus.STILL_UP]


def reminder_key(reference: str) -> str:
    """The reminder's idempotency key: its own Message-ID, the same on every attempt at it."""
    return f"{reference}-reminder"


# The paragraph above the original text, by the language the notice was written in (the PRC
# templates are Chinese, the DMCA and DSA ones English).
_OPENING = {
    "en": ("This is a reminder of our notice {reference}, sent on {sent}, which follows "
           "below. When we checked again, the following material was still available:"),
    "zh": ("这是对我方于 {sent} 发送的通知（编号：{reference}）的提醒，原通知附后。"
           "经再次核查，以下内容仍可访问："),
}
_CLOSING = {
    "en": "Please remove it or disable access to it without further delay.",
    "zh": "请立即删除上述内容或断开其链接。",
}


def reminder_notice(notice: Notice, holder: RightsHolder, from_address: str = "") -> OutgoingNotice:
    """The reminder of ``notice``: "Reminder: <subject>", a paragraph naming the URLs still up,
    then the original text. ValueError when it cannot be sent (as :func:`outgoing_notice`, or
    no URL is still up)."""
    original = outgoing_notice(notice, holder, from_address)
    urls = still_up_urls(notice)
    if not urls:
        raise ValueError("no URL is still up")
    language = "zh" if notice.jurisdiction == "prc" else "en"
    sent = format_utc(notice.sent_at) if notice.sent_at is not None else "-"
    text = "\n\n".join([_OPENING[language].format(reference=notice.reference, sent=sent),
                        "\n".join(f"  - {url}" for url in urls), _CLOSING[language],
                        "-" * 72, original.text])
    headers = original.headers
    if channel_of(notice) == "email" and (notice.message_id or "").startswith("<"):
        # E-mail: threaded under the notice, so the recipient's desk sees the two together.
        headers = (("In-Reply-To", str(notice.message_id)), ("References", str(notice.message_id)))
    # Plain text only: the notice's HTML is a finished document, and a reminder whose paragraph
    # a mail client hides behind the HTML part would not say what is still up.
    return OutgoingNotice(idempotency_key=reminder_key(notice.reference),
                          recipient=original.recipient, subject=f"Reminder: {original.subject}",
                          text=text, from_address=original.from_address,
                          reply_to=original.reply_to, headers=headers)
