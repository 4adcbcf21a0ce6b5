"""``copyguard cases``: the queue of lawsuit candidates: refresh, list, show, review.

Every command takes ``--holder``: with it only that rights-holder's cases are seen (a legal team
works for one holder). Exporting a dossier is ``cases export``
(:mod:`monitor.commands.cases_export_cmd`).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ledger.holders import get_holder
from ledger.models import CaseStatus
from litigation.cases import get_case, list_cases
from litigation.review import add_note, approve, assign, decline, mark_filed, reopen
from monitor.app import App
from monitor.console import emit_json, err_console, fail, user_errors
from monitor.litigation_stage import refresh
from monitor.views.cases import case_detail, case_summary

HolderOption = Annotated[str | None, typer.Option(
    "--holder", help="Act as this rights-holder: only its cases are seen.")]


def holder_id_of(built: App, name: str | None) -> int | None:
    if name is None:
        return None
    with built.ledger.read() as session:
        return get_holder(session, name).id


def refresh_cmd(
    ctx: typer.Context,
    holder: HolderOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="The counts as one JSON object.")
                       ] = False,
) -> None:
    """Bring the queue in line with the ledger: open cases for new infringers, merge linked
    sites, score every case again, and write the limitation reminders now due."""
    built: App = ctx.obj
    with user_errors():
        report = refresh(built, holder_id_of(built, holder))
    result = {"cases": report.cases, "opened": report.opened, "merged": report.merged,
              "rescored": report.rescored,
              "reminders": [{"case": r.case_id, "deadline": r.deadline.isoformat(),
                             "days_before": r.days_before} for r in report.reminders]}
    if as_json:
        emit_json(result)
        return
    typer.echo(f"{report.cases} case(s): {len(report.opened)} opened, {len(report.merged)} "
               f"merged, {len(report.rescored)} scored again")
    for reminder in report.reminders:
        err_console.print(Text(
            f"reminder: case {reminder.case_id} ({reminder.case_name}): the limitation "
            f"period of a work runs out on {reminder.deadline} ({reminder.days_before} days "
            "or less)", style="bold yellow"))


def list_(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(
        help="Only cases in this state (candidate, under-review, approved, filed, declined, "
             "merged).")] = None,
    holder: HolderOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """List cases by score, highest first."""
    built: App = ctx.obj
    today = built.clock.now().date()
    with user_errors():
        holder_id = holder_id_of(built, holder)
        with built.ledger.read() as session:
            rows = [case_summary(session, c, today)
                    for c in list_cases(session, holder_id=holder_id, status=status)]
    if as_json:
        for row in rows:
            emit_json(row.model_dump())
        return
    table = Table("id", "score", "status", "track", "holder", "infringer", "works", "detect.",
                  "deadline", "assignee")
    for r in rows:
        days = r.days_left
        deadline = Text(f"{r.limitation_deadline} ({days} d)" if days is not None else "",
                        style="bold red" if days is not None and days <= 90 else "")
        hosts = r.name + (f" +{len(r.hosts) - 1}" if len(r.hosts) > 1 else "")
        table.add_row(str(r.id), f"{r.score:.1f}", r.status, r.track, Text(r.holder or ""),
                      Text(hosts), str(r.works), str(r.detections), deadline,
                      Text(r.assignee or ""))
    Console().print(table)
    if not rows:
        err_console.print("no cases; `copyguard cases refresh` opens them from the detections")


def show(
    ctx: typer.Context,
    case_id: Annotated[int, typer.Argument(help="The case's id.")],
    holder: HolderOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="As one JSON object.")] = False,
) -> None:
    """Show a case: its sites and why they are linked, gates, every factor of its score, the
    damages estimate with its assumptions, notes, reminders and dossiers."""
    built: App = ctx.obj
    today = built.clock.now().date()
    with user_errors():
        holder_id = holder_id_of(built, holder)
        with built.ledger.read() as session:
            case = get_case(session, case_id, holder_id)
            info = case_detail(session, case, today).model_dump()
    if as_json:
        emit_json(info)
        return
    _print_case(info)


def _print_case(info: dict[str, Any]) -> None:
    out = Console(highlight=False)
    out.print(Text(f"Case {info['id']}: {info['name']} ({info['holder']})", style="bold"))
    out.print(f"status {info['status']}, track {info['track']}, score {info['score']:.2f}, "
              f"{info['works']} works, {info['detections']} detections; assignee "
              f"{info['assignee'] or 'none'}; limitation deadline "
              f"{info['limitation_deadline'] or 'none'}")
    if info["merged_into"]:
        out.print(f"merged into case {info['merged_into']}")
    for host, links in info["links"].items():
        why = "; ".join(f"{link['reason']}: {link['evidence']}" for link in links)
        out.print(Text(f"  site {host}" + (f"  ({why})" if why else "")))
    gates = Table("gate", "result", "detail", title="Gates")
    for gate in info["gates"]:
        gates.add_row(gate["gate"], Text("passed" if gate["passed"] else "failed",
                                         style="green" if gate["passed"] else "bold red"),
                      Text(gate["detail"]))
    out.print(gates)
    if info["breakdown"]:
        factors = Table("factor", "value", "weight", "points", "detail", title="Score")
        for f in info["breakdown"]:
            factors.add_row(f["label"], f"{f['value']:g}", f"{f['weight']:g}",
                            f"{f['contribution']:.2f}", Text(f["detail"]))
        factors.add_row("total", "", "", f"{info['score']:.2f}", "")
        out.print(factors)
    damages = info["damages"] or {}
    if damages:
        willful = (f"; up to ${damages['willful_high']:,} if willful"
                   if damages.get("willful_high") else "")
        out.print(f"Statutory damages estimate: ${damages['low']:,} to ${damages['high']:,}"
                  f"{willful} ({damages['basis']})")
        for assumption in damages.get("assumptions", []):
            out.print(Text(f"  - {assumption}"))
    if info["decision_reason"]:
        out.print(Text(f"last decision by {info['decided_by']}: {info['decision_reason']}"))
    for note in info["notes"]:
        out.print(Text(f"note {note['at'][:16]} {note['author']}: {note['text']}"))
    for reminder in info["reminders"]:
        out.print(Text(f"reminder {reminder['at'][:10]}: deadline {reminder['deadline']} "
                       f"({reminder['days_before']} days)", style="yellow"))
    for dossier in info["dossiers"]:
        out.print(Text(f"dossier {dossier['id']} {dossier['at'][:16]}: {dossier['path']} "
                       f"({dossier['files']} files)"))


def review(
    ctx: typer.Context,
    case_id: Annotated[int, typer.Argument(help="The case's id.")],
    assign_to: Annotated[str | None, typer.Option(
        "--assign", help="Give the case to this person (a candidate goes under review).")
    ] = None,
    note: Annotated[str | None, typer.Option(help="Add a note to the case.")] = None,
    approve_: Annotated[bool, typer.Option("--approve", help="Approve it for filing.")] = False,
    decline_: Annotated[bool, typer.Option("--decline", help="Decline it.")] = False,
    filed: Annotated[bool, typer.Option(
        "--filed", help="Counsel filed it (say where in --reason: court, docket).")] = False,
    reopen_: Annotated[bool, typer.Option("--reopen", help="Reopen a declined case.")] = False,
    reason: Annotated[str | None, typer.Option(
        help="Why (kept in the audit log); required with --approve, --decline, --filed and "
             "--reopen.")] = None,
    holder: HolderOption = None,
) -> None:
    """Move a case through the queue: candidate -> under review -> approved -> filed, or
    declined; with assignee, notes and reasons, each in the audit log."""
    built: App = ctx.obj
    decisions = [name for name, given in (("approve", approve_), ("decline", decline_),
                                          ("filed", filed), ("reopen", reopen_)) if given]
    if len(decisions) > 1:
        fail("say one of --approve, --decline, --filed, --reopen", code=2)
    if not decisions and assign_to is None and note is None:
        fail("nothing to do: say --assign, --note, or one of --approve, --decline, --filed, "
             "--reopen (with --reason)", code=2)
    with user_errors():
        holder_id = holder_id_of(built, holder)
        with built.ledger.write() as session:
            case = get_case(session, case_id, holder_id)
            if case.status == CaseStatus.MERGED:
                fail(f"case {case_id} was merged into case {case.merged_into_id}")
            if assign_to is not None:
                assign(session, built.clock, case, assign_to, actor=built.actor)
            if note is not None:
                add_note(session, built.clock, case, note, author=built.actor)
            if decisions:
                action = {"approve": approve, "decline": decline, "filed": mark_filed,
                          "reopen": reopen}[decisions[0]]
                action(session, built.clock, case, actor=built.actor, reason=reason)
            typer.echo(f"case {case.id} is {case.status}"
                       + (f", assigned to {case.assignee}" if case.assignee else ""))
