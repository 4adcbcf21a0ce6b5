"""Exceptions raised by the takedown package.

Exception tree::

    TakedownError               base of everything this package raises on purpose
    ├── MissingElementError     a notice lacks an element its jurisdiction requires (names it)
    ├── TemplateError           a notice template (built-in or a holder's override) fails to render
    ├── RecipientLookupError    no party to notify could be found (RDAP, site contact, config)
    └── DeliveryError           a sender could not hand a notice over
        ├── TemporaryDeliveryError   worth retrying later (4xx SMTP reply, HTTP 429/5xx, timeout)
        └── PermanentDeliveryError   retrying will not help (5xx SMTP reply, HTTP 4xx, bad address)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


class TakedownError(Exception):
    """Base class of all errors raised by :mod:`takedown`."""


class MissingElementError(TakedownError):
    """A notice lacks one or more elements that its jurisdiction's law requires."""

    def __init__(self, jurisdiction: str, missing: list[str]) -> None:
        self.jurisdiction = jurisdiction
        self.missing = list(missing)
        super().__init__(f"{jurisdiction} notice is missing required elements: "
                         + "; ".join(self.missing))


class TemplateError(TakedownError):
    """A notice template could not be loaded or rendered."""


class RecipientLookupError(TakedownError):
    """No party to notify could be determined; ``temporary`` says whether asking again later
    may help (a 429/5xx or network failure of an RDAP server), ``url`` what was asked."""

    def __init__(self, message: str, *, url: str | None = None, temporary: bool = False,
                 status_code: int | None = None) -> None:
        super().__init__(f"{'temporary: ' if temporary else ''}{message}")
        self.url, self.temporary, self.status_code = url, temporary, status_code


@dataclass(frozen=True)
class ServerAnswer:
    """The far side's answer to a failed delivery; ``status_code`` is None when none came."""

    status_code: int | None
    reply: str


class DeliveryError(TakedownError):
    """A notice could not be handed over to its recipient; ``answer`` is what the server said."""

    def __init__(self, message: str, answer: ServerAnswer | None = None) -> None:
        super().__init__(message)
        self.answer = answer or ServerAnswer(None, "")


class TemporaryDeliveryError(DeliveryError):
    """Worth retrying later, with backoff; ``retry_after`` is the server's own hint (HTTP
    ``Retry-After``), if it gave one."""

    def __init__(self, message: str, answer: ServerAnswer | None = None,
                 retry_after: timedelta | None = None) -> None:
        super().__init__(message, answer)
        self.retry_after = retry_after


class PermanentDeliveryError(DeliveryError):
    """Retrying the same notice to the same recipient will not help: the outbox stops trying
    and reports it."""
