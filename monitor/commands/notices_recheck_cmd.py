"""``copyguard notices recheck``: look again at the URLs of notices whose re-check is due.

The crawler fetches each URL (through the same address guard and evidence store as any crawl;
every answer kept as a URL check with its WARC record), then takedown judges each notice:
removed, partially removed, ignored, or to be looked at again (:mod:`takedown.followup`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

from ledger.holders import get_holder
from ledger.models import Target
from monitor.app import App
from monitor.console import emit_json, err_console, user_errors
from monitor.lifeline import started_by_a_copyguard_process
from takedown.followup import FollowUpRules, apply_rechecks, due_rechecks


def recheck(
    ctx: typer.Context,
    holder: Annotated[str | None, typer.Option(help="Only this rights-holder's notices.")
                      ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The outcome as JSON.")] = False,
) -> None:
    """Re-check the URLs of sent notices whose re-check is due, and record the outcomes."""
    from monitor.crawl.runner import run_crawls  # Scrapy and Twisted only when crawling

    built: App = ctx.obj
    with user_errors():
        if not started_by_a_copyguard_process():
            built.sync_targets()
        with built.ledger.read() as session:
            holder_id = get_holder(session, holder).id if holder else None
            due = due_rechecks(session, built.clock.now(), holder_id=holder_id)
            targets = [t for t in (session.get(Target, tid) for tid in due) if t is not None]
            session.expunge_all()
        urls = sum(len(v) for v in due.values())
        started = built.clock.now()
        if urls:
            err_console.print(f"re-checking {urls} URL(s) on {len(targets)} site(s) ...")
            run_crawls(built.settings, built.ledger, built.clock, targets, actor=built.actor,
                       rechecks=due)
        rules = FollowUpRules(
            recheck_after=timedelta(days=built.settings.takedown.recheck_after_days),
            send_reminder=built.settings.takedown.send_reminder)
        with built.ledger.write() as session:
            report = apply_rechecks(session, built.clock, rules, checked_since=started,
                                    actor=built.actor, holder_id=holder_id)
    if as_json:
        emit_json({"urls": urls, "notices": report.checked, "outcomes": report.outcomes,
                   "pending": report.still_pending, "reminders_due": report.reminders_due,
                   "inconclusive_urls": report.inconclusive_urls})
        return
    outcomes = ", ".join(f"{n} {status}" for status, n in sorted(report.outcomes.items()))
    typer.echo(f"{report.checked} notice(s) re-checked ({urls} URL(s)): "
               f"{outcomes or 'no final outcome'}; {report.still_pending} to look at again; "
               f"{report.inconclusive_urls} URL(s) gave no conclusive answer; "
               f"{report.reminders_due} reminder(s) for `notices send` to send.")
