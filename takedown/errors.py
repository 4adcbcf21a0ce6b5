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
    """No party to notify could be determined."""


class DeliveryError(TakedownError):
    """A notice could not be handed over to its recipient."""


class TemporaryDeliveryError(DeliveryError):
    """The failure is temporary: the outbox retries with backoff."""


class PermanentDeliveryError(DeliveryError):
    """The failure is permanent: the outbox stops trying and reports it."""
