"""Whom a notice goes to: the recipient of one detection, found in a fixed order.

1. the target's own notice address or form (``Target.notice_email`` / ``notice_form_url``, from
   the operator's configuration): source "target";
2. a notice address the site publishes (a :class:`~ledger.models.SiteContact` the crawler found)
   for the capture's host or a domain above it: source "site";
3. the RDAP abuse contact of the network holding the capture's IP address, else of the host's
   registered domain: source "rdap". The registered domain is found without a public-suffix
   list: the names above the host are asked for longest first, and the first one the registry
   knows is it.

Steps 2 and 3 depend only on the host, so their outcome (a contact, or the failure) is cached per
host for one run (:meth:`RecipientFinder.start_run`), and a host is asked about once per run
however many detections it serves. :meth:`RecipientFinder.find` raises
:class:`~takedown.errors.RecipientLookupError`: ``temporary`` when an RDAP server may answer
later (the detection waits for the next run), otherwise when nobody to notify was found.

Reads no settings: the RDAP client (``[takedown.rdap]``) is built by the caller.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.models import Capture, SiteContact, Target
from takedown.errors import RecipientLookupError
from takedown.policy import host_of
from takedown.rdap import AbuseContact, RdapClient, normalise_domain


@dataclass(frozen=True)
class FoundRecipient:
    """A notice's recipient and how it was found ("target", "site" or "rdap")."""

    name: str
    role: str
    email: str | None
    form_url: str | None
    source: str

    def __post_init__(self) -> None:
        if not (self.email or self.form_url):
            raise ValueError(f"recipient {self.name!r} has neither an email nor a form URL")

    @property
    def key(self) -> str:
        """The channel and address notices are batched by: "email:addr" or "http:url"."""
        if self.email:
            return f"email:{self.email.strip().lower()}"
        return f"http:{self.form_url}"


class RecipientFinder:
    """Finds the recipient of a detection: target, then site contact, then RDAP.

    :param rdap: the RDAP client; None leaves step 3 out (no network lookups).
    :param max_domain_queries: at most this many names above a host are asked for by RDAP
        (files.cdn.pirate.example: itself, cdn.pirate.example, pirate.example).
    """

    def __init__(self, rdap: RdapClient | None = None, *, max_domain_queries: int = 4) -> None:
        self.rdap = rdap
        self.max_domain_queries = max_domain_queries
        self._by_host: dict[str, FoundRecipient | RecipientLookupError] = {}

    def start_run(self) -> None:
        """Forget what earlier runs found: a contact may have changed, a server recovered."""
        self._by_host.clear()

    def find(self, session: Session, target: Target, capture: Capture) -> FoundRecipient:
        """The recipient for ``capture`` (found on ``target``)."""
        if target.notice_email or target.notice_form_url:
            return FoundRecipient(
                name=target.name, role=f"notice address configured for {target.name}",
                email=target.notice_email or None, form_url=target.notice_form_url or None,
                source="target")
        host = host_of(capture.url)
        cached = self._by_host.get(host)
        if cached is None:
            try:
                cached = self._by_host[host] = self._for_host(session, host, capture.ip_address)
            except RecipientLookupError as exc:
                cached = self._by_host[host] = exc
        if isinstance(cached, RecipientLookupError):
            raise cached
        return cached

    def _for_host(self, session: Session, host: str, ip: str | None) -> FoundRecipient:
        labels = host.split(".")
        hosts = [".".join(labels[i:]) for i in range(len(labels))] if host else []
        contacts = session.execute(
            select(SiteContact).where(SiteContact.host.in_(hosts))
            .order_by(SiteContact.found_at, SiteContact.id)).scalars().all() if hosts else []
        # The most specific host first: a contact published by files.example beats example's
        # (sorted() is stable, so the earliest found wins among one host's contacts).
        mine = sorted(contacts, key=lambda c: -len(c.host))
        if mine:
            contact = mine[0]
            return FoundRecipient(name=host, role=f"copyright contact published at "
                                  f"{contact.page_url}", email=contact.email, form_url=None,
                                  source="site")
        if self.rdap is None:
            raise RecipientLookupError(f"no recipient for host {host}: no notice address "
                                       "configured or published, and RDAP is off")
        return self._from_rdap(self.rdap, host, ip)

    def _from_rdap(self, rdap: RdapClient, host: str, ip: str | None) -> FoundRecipient:
        failures: list[str] = []
        if ip:
            try:
                contact = rdap.abuse_contact_for_ip(ip)
            except ValueError as exc:  # not an address a registry knows: try the domain
                failures.append(str(exc))
            except RecipientLookupError as exc:
                if exc.temporary:
                    # The network's abuse desk is the better recipient; waiting for it beats
                    # falling back to the registrar for good.
                    raise
                failures.append(str(exc))
            else:
                if contact is not None:
                    return _rdap_recipient(contact, f"the network holding {ip}")
        for name in self._domains(host):
            try:
                contact = rdap.abuse_contact_for_domain(name)
            except RecipientLookupError as exc:
                if exc.temporary:
                    raise
                failures.append(str(exc))
                continue
            if contact is not None:
                return _rdap_recipient(contact, f"the domain {name}")
        detail = f" ({'; '.join(failures)})" if failures else ""
        raise RecipientLookupError(f"no recipient for host {host}: no notice address configured "
                                   f"or published, and RDAP names no contact{detail}")

    def _domains(self, host: str) -> list[str]:
        """The names to ask RDAP for, longest first, down to two labels."""
        try:
            ipaddress.ip_address(host)
            return []  # a bare address has no domain
        except ValueError:
            pass
        try:
            labels = normalise_domain(host).split(".")
        except ValueError:
            return []
        names = [".".join(labels[i:]) for i in range(len(labels) - 1)]
        return names[-self.max_domain_queries:]


def _rdap_recipient(contact: AbuseContact, of: str) -> FoundRecipient:
    role = (f"abuse contact of {of} (RDAP)" if contact.role == "abuse"
            else f"{contact.role} contact of {of} (RDAP; no abuse contact listed)")
    return FoundRecipient(name=contact.name or of.removeprefix("the "), role=role,
                          email=contact.email, form_url=None, source="rdap")
