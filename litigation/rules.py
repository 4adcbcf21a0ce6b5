"""What the queue is told by configuration: the scoring weights, where suit would be brought,
which hosts never link sites, and when to remind before a deadline. Built from
``[litigation]`` by the monitor; the defaults here are the documented defaults."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Weights:
    """Points per unit of each factor; a factor's contribution is its value times its weight."""

    work: float = 10.0  # per distinct work infringed (that passed the gates)
    eligible_work: float = 15.0  # per work eligible for statutory damages (17 U.S.C. 412)
    ignored_notice: float = 20.0  # per URL kept up past a notice's deadline
    reupload: float = 25.0  # per copy put up again after a removal
    # Per URL taken down after a notice: a host that removes expeditiously may keep the
    # 512(c) safe harbour, which makes a suit against it weaker (a negative weight).
    removed_after_notice: float = -10.0
    counter_notice: float = 10.0  # per counter-notice received
    month_active: float = 2.0  # per month between the first and last sighting (24 at most)
    reach: float = 5.0  # per doubling of the infringing URLs: log2(1 + URLs)
    evidence: float = 20.0  # times the evidence strength, 0 to 1
    urgency: float = 15.0  # times 1 - days left / 365, within a year of the deadline


@dataclass(frozen=True)
class LitigationRules:
    weights: Weights = field(default_factory=Weights)
    # Where suit would be brought: works without rights there, or in conflict there, are out.
    territory: str = "US"
    # Sites served from one IP address are one operator's (off behind shared hosting or a CDN).
    link_by_ip: bool = True
    # Hosts and IP addresses that never link sites (CDNs, big shared hosts, public mailboxes).
    shared_hosts: frozenset[str] = frozenset()
    # Reminders this many days before a case's limitation deadline, each once.
    reminder_days: tuple[int, ...] = (180, 90, 30, 7)
