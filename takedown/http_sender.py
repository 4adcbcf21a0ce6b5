"""Deliver notices to a host's web form or abuse API by HTTP POST (httpx).

Settings it would be built from (``[takedown.http]``): ``encoding`` ("form" | "json"), the field
mapping (``[takedown.http.fields]``: which form field carries subject, text, HTML, sender...),
``timeout``, ``max_redirects`` and ``receipt_id_field``. The ``httpx.Client`` is injected (tests
pass a transport or point it at a local server); the per-notice endpoint is the notice's
``recipient``.

Every request carries ``Idempotency-Key: <notice key>``: an endpoint that honours it (the IETF
httpapi draft, Stripe-style APIs) recognises a re-send after a crash, and one that does not at
least logs the same key twice. Redirects are followed by hand and only on the same host, never
from https down to http: a notice contains the rights-holder's contact details and must not be
handed to whoever a compromised or misconfigured form points at.

2xx is success. 408, 429 and 5xx are temporary (``Retry-After`` is kept as the hint); every
other 4xx, a redirect elsewhere and a non-http(s) endpoint are permanent. The response body is
read only up to a bound, and the receipt keeps an excerpt of it.
"""

from __future__ import annotations

import codecs
import json
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from ledger.clock import Clock, SystemClock
from takedown.errors import PermanentDeliveryError, ServerAnswer, TemporaryDeliveryError
from takedown.senders import (
    REPLY_LIMIT,
    DeliveryReceipt,
    OutgoingNotice,
    bounded,
    parse_retry_after,
)

Encoding = Literal["form", "json"]

_TEMPORARY = frozenset({408, 429})
# 307/308 promise the same method and body; 301/302/303 after a POST mean "go and look at the
# result" (Post/Redirect/Get), which browsers and we do with a GET.
_KEEP_METHOD = frozenset({307, 308})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class FormFields:
    """The endpoint's field name for each part of a notice; None leaves that part out."""

    subject: str | None = "subject"
    text: str | None = "message"
    html: str | None = None
    from_address: str | None = "email"
    reply_to: str | None = None
    idempotency_key: str | None = None


class HttpFormSender:
    """POSTs one notice to ``notice.recipient`` (an http or https URL)."""

    channel = "http"

    def __init__(self, client: httpx.Client, *,
                 encoding: Encoding = "form",
                 fields: FormFields = FormFields(),
                 timeout: float = 30.0,
                 max_redirects: int = 3,
                 receipt_id_field: str | None = "id",
                 read_limit: int = 64 * 1024,
                 clock: Clock | None = None) -> None:
        """
        :param encoding: "form" sends application/x-www-form-urlencoded, "json" a JSON object.
        :param fields: where each part of the notice goes; ``notice.fields`` are added as given.
        :param timeout: seconds for connecting and for each read.
        :param max_redirects: same-host redirects followed before giving up.
        :param receipt_id_field: top-level key of a JSON answer holding the endpoint's ticket
            id, recorded as the receipt's ``server_message_id``.
        :param read_limit: bytes of a response body read at most (the rest is not downloaded).
        """
        if encoding not in ("form", "json"):
            raise ValueError(f"encoding must be form or json, not {encoding!r}")
        if max_redirects < 0:
            raise ValueError("max_redirects must be 0 or more")
        self._client = client
        self.encoding = encoding
        self.fields = fields
        self.timeout = timeout
        self.max_redirects = max_redirects
        self.receipt_id_field = receipt_id_field
        self.read_limit = read_limit
        self._clock: Clock = clock or SystemClock()

    def payload(self, notice: OutgoingNotice) -> dict[str, str]:
        parts = {self.fields.subject: notice.subject, self.fields.text: notice.text,
                 self.fields.html: notice.html, self.fields.from_address: notice.from_address,
                 self.fields.reply_to: notice.reply_to,
                 self.fields.idempotency_key: notice.idempotency_key}
        payload = {name: value for name, value in parts.items()
                   if name is not None and value is not None}
        payload.update(notice.fields)
        return payload

    def send(self, notice: OutgoingNotice) -> DeliveryReceipt:
        url = _endpoint(notice.recipient)
        origin = url
        headers = httpx.Headers(list(notice.headers))
        headers.setdefault("Accept", "application/json, text/html;q=0.9, */*;q=0.5")
        # Set last so that no extra header of the notice can replace the key.
        headers["Idempotency-Key"] = notice.idempotency_key
        body: dict[str, Any] = ({"json": self.payload(notice)} if self.encoding == "json"
                                else {"data": self.payload(notice)})
        method = "POST"
        for _ in range(self.max_redirects + 1):
            request = self._client.build_request(method, url, headers=headers,
                                                 timeout=self.timeout, **body)
            status, text, response_headers = self._exchange(request)
            if status in _REDIRECTS and "location" in response_headers:
                url = _same_host_redirect(origin, url, response_headers["location"], status)
                if status not in _KEEP_METHOD:
                    method, body = "GET", {}
                continue
            return self._outcome(notice, url, status, text, response_headers)
        raise PermanentDeliveryError(f"{origin}: more than {self.max_redirects} redirects",
                                 ServerAnswer(status, bounded(text)))

    def _exchange(self, request: httpx.Request) -> tuple[int, str, httpx.Headers]:
        try:
            response = self._client.send(request, stream=True, follow_redirects=False)
            try:
                raw = bytearray()
                for chunk in response.iter_bytes():
                    raw += chunk
                    if len(raw) >= self.read_limit:
                        break  # the rest stays on the wire; closing drops the connection
                text = bytes(raw[:self.read_limit]).decode(_charset(response), "replace")
            finally:
                response.close()
        except (httpx.UnsupportedProtocol, httpx.LocalProtocolError) as exc:
            raise PermanentDeliveryError(f"{request.url}: {exc}",
                                         ServerAnswer(None, str(exc))) from exc
        except httpx.TransportError as exc:  # refused, reset, timed out, DNS, TLS
            raise TemporaryDeliveryError(f"cannot reach {request.url}: {exc!r}",
                                     ServerAnswer(None, str(exc))) from exc
        return response.status_code, text, response.headers

    def _outcome(self, notice: OutgoingNotice, url: httpx.URL, status: int, text: str,
                 headers: httpx.Headers) -> DeliveryReceipt:
        answer = ServerAnswer(status, bounded(text))
        if 200 <= status <= 299:
            return DeliveryReceipt(channel=self.channel, recipient=str(url),
                                   idempotency_key=notice.idempotency_key,
                                   message_id=notice.idempotency_key, status_code=status,
                                   reply=bounded(text, REPLY_LIMIT),
                                   server_message_id=self._ticket(text, headers),
                                   accepted_at=self._clock.now())
        what = f"{url} answered {status}"
        if status in _TEMPORARY or 500 <= status <= 599:
            hint = parse_retry_after(headers.get("retry-after"), self._clock.now())
            raise TemporaryDeliveryError(what, answer, retry_after=hint)
        raise PermanentDeliveryError(what, answer)

    def _ticket(self, text: str, headers: httpx.Headers) -> str | None:
        if self.receipt_id_field is None or "json" not in headers.get("content-type", ""):
            return None
        try:
            document = json.loads(text)
        except ValueError:
            return None  # a 2xx with a broken body is still a delivered notice
        value = document.get(self.receipt_id_field) if isinstance(document, dict) else None
        return str(value) if isinstance(value, str | int) and value != "" else None


def _endpoint(recipient: str) -> httpx.URL:
    try:
        url = httpx.URL(recipient)
    except httpx.InvalidURL as exc:
        raise PermanentDeliveryError(f"not a URL: {recipient!r}", ServerAnswer(None, "")) from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise PermanentDeliveryError(f"endpoint must be an http or https URL: {recipient!r}",
                                 ServerAnswer(None, ""))
    return url


def _same_host_redirect(origin: httpx.URL, current: httpx.URL, location: str,
                        status: int) -> httpx.URL:
    target = current.join(location)
    answer = ServerAnswer(status, f"Location: {bounded(location, 500)}")
    if target.scheme not in ("http", "https") or target.host != origin.host:
        raise PermanentDeliveryError(f"{current} redirects to another host ({target.host or '?'}); "
                                 "refused", answer)
    if origin.scheme == "https" and target.scheme != "https":
        raise PermanentDeliveryError(f"{current} redirects from https to http; refused", answer)
    return target


def _charset(response: httpx.Response) -> str:
    name = response.charset_encoding or "utf-8"
    try:
        codecs.lookup(name)
    except LookupError:
        return "utf-8"  # a made-up charset must not stop us from reading the status
    return name
