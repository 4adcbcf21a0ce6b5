"""Which sites are one infringer: hosts linked by the same server address, the same published
notice contact, or pages of one serving the audio of another.

Linking is per rights-holder, over that holder's own detections only, so one holder's case never
draws on another's catalog. Every link keeps its reason and evidence: the legal team must be able
to say why two sites are treated as one operator's.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from litigation.rules import LitigationRules

SAME_IP = "same-ip"
SAME_CONTACT = "same-contact"
SHARED_PAGE = "shared-page"


def site_host(url: str | None) -> str | None:
    """The host a URL belongs to, lower-cased and without a leading ``www.``."""
    if not url:
        return None
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    return host.removeprefix("www.") or None


@dataclass(frozen=True)
class Sighting:
    """One detection as linking sees it: where the page and the audio were, and from which IP."""

    detection_id: int
    page_host: str  # the infringer's site: the page's host, else the audio's
    media_host: str
    ip_address: str | None
    page_url: str | None


@dataclass(frozen=True)
class Link:
    host: str
    other: str
    reason: str  # SAME_IP, SAME_CONTACT or SHARED_PAGE
    evidence: str


@dataclass
class SiteGroup:
    """Hosts found to be one infringer, the links that joined them and its detections."""

    hosts: list[str]
    links: list[Link] = field(default_factory=list)
    detection_ids: list[int] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The host with the most detections names the group (ties: alphabetical)."""
        return self.hosts[0]


class _Union:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, host: str) -> str:
        self.parent.setdefault(host, host)
        while self.parent[host] != host:
            self.parent[host] = self.parent[self.parent[host]]
            host = self.parent[host]
        return host

    def join(self, a: str, b: str) -> bool:
        root_a, root_b = self.find(a), self.find(b)
        if root_a == root_b:
            return False
        self.parent[max(root_a, root_b)] = min(root_a, root_b)
        return True


def group_sites(sightings: Sequence[Sighting], contacts: Iterable[tuple[str, str]],
                rules: LitigationRules) -> list[SiteGroup]:
    """Group the hosts of ``sightings``; ``contacts`` are (host, e-mail) a site publishes."""
    union = _Union()
    links: list[Link] = []
    shared = {value.lower() for value in rules.shared_hosts}

    def join(a: str, b: str, reason: str, evidence: str) -> None:
        if a != b and union.join(a, b):
            links.append(Link(a, b, reason, evidence))

    by_ip: dict[str, str] = {}
    counts: dict[str, int] = defaultdict(int)
    for sighting in sightings:
        union.find(sighting.page_host)
        counts[sighting.page_host] += 1
        if sighting.media_host != sighting.page_host and sighting.media_host not in shared:
            join(sighting.page_host, sighting.media_host, SHARED_PAGE,
                 f"the page {sighting.page_url} serves audio from {sighting.media_host}")
        ip = sighting.ip_address
        if rules.link_by_ip and ip and ip not in shared:
            first = by_ip.setdefault(ip, sighting.page_host)
            join(first, sighting.page_host, SAME_IP,
                 f"audio of both served from {ip}")
    known = set(union.parent)
    by_contact: dict[str, str] = {}
    for host, email in sorted(contacts):
        email = email.lower()
        if host not in known or email in shared:
            continue
        first = by_contact.setdefault(email, host)
        join(first, host, SAME_CONTACT, f"both publish {email} as their notice address")
    groups: dict[str, SiteGroup] = {}
    for host in sorted(known):
        groups.setdefault(union.find(host), SiteGroup(hosts=[])).hosts.append(host)
    for link in links:
        groups[union.find(link.host)].links.append(link)
    for sighting in sightings:
        groups[union.find(sighting.page_host)].detection_ids.append(sighting.detection_id)
    result = []
    for group in groups.values():
        # Audio-only hosts (a CDN the pages use) are members, but a site with pages names it.
        group.hosts.sort(key=lambda h: (-counts.get(h, 0), h))
        group.detection_ids.sort()
        result.append(group)
    return sorted(result, key=lambda g: g.name)
