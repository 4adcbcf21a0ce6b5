"""The takedown stage as the CLI (and later the daemon) runs it: detections into notices, then
the outbox. Builds the stage's rules from settings; the logic is the takedown package's.

Reads ``[takedown]`` (jurisdiction, batch window, allowlist, fair-use span, delivery and
follow-up rules), ``[matching] review_below``, ``[smtp] from_address`` and ``[rdap]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from monitor.app import App
from takedown.content import Jurisdiction
from takedown.drafting import DraftReport, FinaliseReport, draft, finalise
from takedown.outbox import DeliveryRules, Outbox
from takedown.policy import DraftingRules
from takedown.recipients import RecipientFinder


def drafting_rules(built: App) -> DraftingRules:
    takedown = built.settings.takedown
    return DraftingRules(default_jurisdiction=Jurisdiction(takedown.default_jurisdiction),
                         batch_window=timedelta(hours=takedown.batch_window_hours),
                         allowlist=takedown.allowlist,
                         fair_use_review_seconds=takedown.fair_use_review_seconds,
                         review_below=built.settings.matching.review_below)


def outbox(built: App) -> Outbox:
    settings = built.settings
    rules = DeliveryRules.from_settings(settings.takedown,
                                        from_address=settings.smtp.from_address)
    return Outbox(built.ledger, built.clock, built.senders(), rules, actor=built.actor)


@dataclass(frozen=True)
class Prepared:
    drafted: DraftReport
    finalised: FinaliseReport


def prepare_notices(built: App) -> Prepared:
    """New detections into notices (or marked licensed); notices whose batch window closed
    rendered and queued, or sent to review."""
    rules = drafting_rules(built)
    drafted = draft(built.ledger, rules, RecipientFinder(built.rdap()), actor=built.actor)
    finalised = finalise(built.ledger, rules, built.renderer, actor=built.actor)
    return Prepared(drafted, finalised)
