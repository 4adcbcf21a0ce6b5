"""Find the abuse contact for an IP address or a domain through RDAP (RFC 9082/9083, httpx).

Settings it would be built from (``[takedown.rdap]``): ``ip_servers`` and ``domain_servers``
(base URLs tried in order; real deployments take them per query from the IANA bootstrap
registries through :func:`servers_for_ip`/:func:`servers_for_domain`), ``timeout``,
``max_bytes`` and ``fallback_roles``. The ``httpx.Client`` is injected.

A lookup is ``GET {base}/ip/{address}`` or ``GET {base}/domain/{name}`` asking for
``application/rdap+json``. The answer's ``entities`` are walked depth first (registries nest the
abuse contact inside the registrant or the network's organisation), and the first entity whose
``roles`` contain "abuse" and whose jCard (``vcardArray``) has an e-mail address wins. Only when
there is none does a "registrant" or "technical" entity stand in, and the returned contact's
``role`` says so, so the caller can tell an abuse desk from a fallback.

Outcomes: a contact; None when every server answers 404 or the record names nobody with an
e-mail address; :class:`RecipientLookupError` (a ``RecipientLookupError``) for a malformed or
oversized answer, an unexpected status, or, with ``temporary=True``, for 429, 5xx and network
failures, which the caller retries later.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from takedown.errors import RecipientLookupError

RDAP_MEDIA_TYPE = "application/rdap+json"
# Many RDAP servers (including some RIRs) still label their answers application/json.
_JSON_TYPES = (RDAP_MEDIA_TYPE, "application/json")
# Real records nest three or four levels deep; the bounds only stop a hostile document.
_MAX_DEPTH = 8
_MAX_ENTITIES = 500
_LABELS = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}"
                     r"[a-z0-9_])?)*")


@dataclass(frozen=True)
class AbuseContact:
    """Who to notify about a host, and where that came from.

    ``role`` is "abuse" for a real abuse desk, otherwise the fallback role that supplied the
    address ("registrant", "technical"); ``source_url`` the RDAP URL that answered.
    """

    email: str
    name: str | None
    phone: str | None
    role: str
    handle: str | None
    source_url: str


class RdapClient:
    """Looks abuse contacts up on the configured RDAP servers."""

    def __init__(self, client: httpx.Client, ip_servers: Sequence[str],
                 domain_servers: Sequence[str], *,
                 timeout: float = 10.0,
                 max_bytes: int = 1_000_000,
                 fallback_roles: Sequence[str] = ("registrant", "technical")) -> None:
        """
        :param ip_servers: base URLs for ``/ip/`` queries, tried in order until one knows the
            address (404 means "not mine", so the next is asked).
        :param domain_servers: base URLs for ``/domain/`` queries, likewise.
        :param timeout: seconds for connecting and for each read.
        :param max_bytes: an answer larger than this is refused (a large RIR record is ~100 kB).
        :param fallback_roles: roles that stand in, in this order, when no entity is "abuse".
        """
        self._client = client
        self.ip_servers = list(ip_servers)
        self.domain_servers = list(domain_servers)
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.fallback_roles = tuple(role.lower() for role in fallback_roles)

    def abuse_contact_for_ip(self, address: str, *,
                             servers: Sequence[str] | None = None) -> AbuseContact | None:
        """The abuse contact of the network holding ``address``; ``servers`` overrides the
        configured ones for this query (as picked by :func:`servers_for_ip`)."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError as exc:
            raise ValueError(f"not an IP address: {address!r}") from exc
        if getattr(ip, "scope_id", None):  # "fe80::1%eth0" means nothing to a registry
            raise ValueError(f"not a global IP address: {address!r}")
        normalised = str(ip)
        return self._lookup("ip", normalised, self.ip_servers if servers is None else servers)

    def abuse_contact_for_domain(self, name: str, *,
                                 servers: Sequence[str] | None = None) -> AbuseContact | None:
        """The abuse contact of the domain ``name`` (a registrar's or the registrant's)."""
        return self._lookup("domain", normalise_domain(name),
                            self.domain_servers if servers is None else servers)

    def _lookup(self, kind: str, key: str, servers: Sequence[str]) -> AbuseContact | None:
        if not servers:
            raise RecipientLookupError(f"no RDAP server configured for {kind} lookups")
        failures: list[RecipientLookupError] = []
        for base in servers:
            try:
                answer = self._fetch(f"{base.rstrip('/')}/{kind}/{key}")
            except RecipientLookupError as exc:
                failures.append(exc)  # another server may still know the answer
                continue
            if answer is not None:
                url, document = answer
                return find_abuse_contact(document, url, self.fallback_roles)
        if not failures:
            return None
        # Temporary if any server might answer later: giving up for good needs every one of
        # them to have failed for good.
        temporary = [f for f in failures if f.temporary]
        raise (temporary or failures)[0]

    def _fetch(self, url: str) -> tuple[str, Mapping[str, Any]] | None:
        request = self._client.build_request(
            "GET", url, timeout=self.timeout,
            headers={"Accept": f"{RDAP_MEDIA_TYPE}, application/json;q=0.9"})
        try:
            # RFC 7480 §5.2: a server that is not authoritative redirects to one that is.
            response = self._client.send(request, stream=True, follow_redirects=True)
        except httpx.TooManyRedirects as exc:
            raise RecipientLookupError(f"{url}: too many redirects", url=url,
                                  temporary=False) from exc
        except httpx.TransportError as exc:
            raise RecipientLookupError(f"cannot reach {url}: {exc!r}", url=url,
                                  temporary=True) from exc
        try:
            final = str(response.url)
            status = response.status_code
            if status == 404:
                return None
            if status == 429 or 500 <= status <= 599:
                hint = response.headers.get("retry-after")
                raise RecipientLookupError(
                    f"{final} answered {status}"
                    + (f" (Retry-After: {hint[:40]})" if hint else "") + "; retry later",
                    url=final, temporary=True, status_code=status)
            if status != 200:
                raise RecipientLookupError(f"{final} answered {status}", url=final,
                                      temporary=False, status_code=status)
            media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if media_type not in _JSON_TYPES:
                raise RecipientLookupError(f"{final} answered {media_type or 'no content type'}, "
                                      f"not {RDAP_MEDIA_TYPE}", url=final, temporary=False,
                                      status_code=status)
            raw = self._read_bounded(response, final)
        except httpx.TransportError as exc:  # cut off while reading the body
            raise RecipientLookupError(f"reading {url}: {exc!r}", url=url, temporary=True) from exc
        finally:
            response.close()
        try:
            document = json.loads(raw)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            raise RecipientLookupError(f"{final} sent malformed JSON: {exc}", url=final,
                                  temporary=False, status_code=status) from exc
        if not isinstance(document, dict):
            raise RecipientLookupError(f"{final} sent JSON that is not an RDAP object", url=final,
                                  temporary=False, status_code=status)
        return final, document

    def _read_bounded(self, response: httpx.Response, url: str) -> bytes:
        declared = response.headers.get("content-length", "")
        too_big = RecipientLookupError(f"{url}: answer larger than {self.max_bytes} bytes", url=url,
                                  temporary=False, status_code=response.status_code)
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise too_big
        raw = bytearray()
        for chunk in response.iter_bytes():
            raw += chunk
            if len(raw) > self.max_bytes:
                raise too_big
        return bytes(raw)


def find_abuse_contact(document: Mapping[str, Any], source_url: str,
                       fallback_roles: Sequence[str] = ("registrant", "technical"),
                       ) -> AbuseContact | None:
    """The abuse contact named in an RDAP object (RFC 9083), else the first fallback role's."""
    roles = ("abuse", *fallback_roles)
    found: dict[str, AbuseContact] = {}
    for entity in _entities(document):
        entity_roles = {r.lower() for r in entity.get("roles") or () if isinstance(r, str)}
        wanted = [role for role in roles if role in entity_roles and role not in found]
        if not wanted:
            continue
        email, name, phone = _from_jcard(entity.get("vcardArray"))
        if email is None:
            continue  # e.g. a redacted registrant; a later entity may still have an address
        handle = entity.get("handle") if isinstance(entity.get("handle"), str) else None
        for role in wanted:
            found[role] = AbuseContact(email=email, name=name, phone=phone, role=role,
                                       handle=handle, source_url=source_url)
        if "abuse" in found:
            break
    return next((found[role] for role in roles if role in found), None)


def _entities(document: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every entity of the object, parents before children, bounded in depth and number."""
    stack: list[tuple[int, Any]] = [(0, e) for e in reversed(_as_list(document.get("entities")))]
    seen = 0
    while stack and seen < _MAX_ENTITIES:
        depth, entity = stack.pop()
        if not isinstance(entity, dict):
            continue
        seen += 1
        yield entity
        if depth < _MAX_DEPTH:
            stack.extend((depth + 1, e) for e in reversed(_as_list(entity.get("entities"))))


def _from_jcard(card: Any) -> tuple[str | None, str | None, str | None]:
    """(email, name, phone) from a jCard (RFC 7095): ``["vcard", [[name, params, type, value],
    ...]]``. The most preferred e-mail address (the ``pref`` parameter) wins."""
    if not (isinstance(card, list) and len(card) == 2 and card[0] == "vcard"):
        return None, None, None
    emails: list[tuple[int, str]] = []
    name = org = phone = None
    for prop in _as_list(card[1]):
        if not (isinstance(prop, list) and len(prop) >= 4 and isinstance(prop[0], str)):
            continue
        key, params, value = prop[0].lower(), prop[1], prop[3]
        if not isinstance(value, str) or not value.strip():
            continue
        value = value.strip()
        if key == "email":
            address = value.removeprefix("mailto:")
            if "@" in address and not any(c.isspace() for c in address):
                emails.append((_pref(params), address))
        elif key == "fn" and name is None:
            name = value
        elif key == "org" and org is None:
            org = value
        elif key == "tel" and phone is None:
            phone = value.removeprefix("tel:")
    email = min(emails, key=lambda pair: pair[0])[1] if emails else None
    return email, name or org, phone


def _pref(params: Any) -> int:
    value = params.get("pref") if isinstance(params, dict) else None
    return int(value) if isinstance(value, str | int) and str(value).isdigit() else 100


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def normalise_domain(name: str) -> str:
    """``name`` as lower-case A-labels without the root dot; ValueError when not a domain."""
    stripped = name.strip().rstrip(".")
    try:
        ascii_name = stripped.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise ValueError(f"not a domain name: {name!r}") from exc
    if not _LABELS.fullmatch(ascii_name):
        raise ValueError(f"not a domain name: {name!r}")
    return ascii_name


def servers_for_ip(registry: Mapping[str, Any], address: str) -> list[str]:
    """The RDAP base URLs for ``address`` from an IANA bootstrap file (RFC 9224: ipv4.json or
    ipv6.json, parsed), by longest matching prefix, https first; [] when none covers it."""
    ip = ipaddress.ip_address(address)
    best: tuple[int, list[str]] = (-1, [])
    for entries, urls in _services(registry):
        for entry in entries:
            try:
                network = ipaddress.ip_network(entry, strict=False)
            except ValueError:
                continue
            if network.version == ip.version and ip in network and network.prefixlen > best[0]:
                best = (network.prefixlen, urls)
    return _https_first(best[1])


def servers_for_domain(registry: Mapping[str, Any], name: str) -> list[str]:
    """The RDAP base URLs for ``name`` from the IANA dns.json bootstrap file, by the longest
    matching label suffix (RFC 9224 §4), https first; [] when no entry covers it."""
    labels = normalise_domain(name).split(".")
    best: tuple[int, list[str]] = (0, [])
    for entries, urls in _services(registry):
        for entry in entries:
            suffix = entry.lower().rstrip(".").split(".")
            if len(suffix) > best[0] and labels[-len(suffix):] == suffix:
                best = (len(suffix), urls)
    return _https_first(best[1])


def _services(registry: Mapping[str, Any]) -> Iterator[tuple[list[str], list[str]]]:
    for service in _as_list(registry.get("services")):
        if isinstance(service, list) and len(service) >= 2:
            entries = [e for e in _as_list(service[0]) if isinstance(e, str)]
            urls = [u for u in _as_list(service[1]) if isinstance(u, str)]
            yield entries, urls


def _https_first(urls: list[str]) -> list[str]:
    return sorted(urls, key=lambda url: not url.lower().startswith("https://"))
