"""The case queue: one case per infringer per rights-holder, kept in step with the ledger.

:func:`refresh_cases` links the holder's sites (``litigation.linking``), opens a case for each
new infringer, merges cases whose sites turn out to be one operator's, scores every case again
(``litigation.scoring``) and writes the limitation reminders that have come due; each change is
in the audit log, in the caller's transaction. It is idempotent: a second run with nothing new
changes nothing and appends nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger import audit
from ledger.clock import Clock
from ledger.errors import NotFoundError
from ledger.models import Case, CaseHost, CaseReminder, CaseStatus, RightsHolder
from litigation.facts import CaseFacts, gather, holder_sightings, site_contacts
from litigation.linking import Link, SiteGroup, group_sites
from litigation.rules import LitigationRules
from litigation.scoring import Assessment, assess


@dataclass(frozen=True)
class Reminder:
    case_id: int
    holder_id: int
    case_name: str
    deadline: date
    days_before: int


@dataclass
class RefreshReport:
    opened: list[int] = field(default_factory=list)
    merged: list[tuple[int, int]] = field(default_factory=list)  # (merged case, into case)
    rescored: list[int] = field(default_factory=list)
    reminders: list[Reminder] = field(default_factory=list)
    cases: int = 0


def get_case(session: Session, case_id: int, holder_id: int | None = None) -> Case:
    """The case, if it exists and (given ``holder_id``) belongs to that holder."""
    case = session.get(Case, case_id)
    if case is None or (holder_id is not None and case.holder_id != holder_id):
        raise NotFoundError(f"no case {case_id} (see `copyguard cases list`)")
    return case


def list_cases(session: Session, *, holder_id: int | None = None,
               status: str | None = None) -> list[Case]:
    """Cases by score, highest first; merged cases only when asked for by status."""
    query = select(Case).order_by(Case.score.desc(), Case.id)
    if holder_id is not None:
        query = query.where(Case.holder_id == holder_id)
    query = query.where(Case.status == status) if status else query.where(
        Case.status != CaseStatus.MERGED)
    return list(session.execute(query).scalars())


def case_facts(session: Session, case: Case, rules: LitigationRules) -> CaseFacts:
    """The case's facts as the ledger holds them now (for the dossier and ``cases show``)."""
    group = _group_of(session, case, rules)
    return gather(session, case.holder_id, [h.host for h in case.hosts],
                  group.detection_ids if group else [])


def _group_of(session: Session, case: Case, rules: LitigationRules) -> SiteGroup | None:
    hosts = {h.host for h in case.hosts}
    groups = group_sites(holder_sightings(session, case.holder_id), site_contacts(session), rules)
    return next((g for g in groups if hosts & set(g.hosts)), None)


def rescore_case(session: Session, clock: Clock, case: Case, rules: LitigationRules, *,
                 actor: str) -> Assessment:
    """Score one case again from the ledger as it stands (its sites as last linked)."""
    return _score(session, clock, case, case_facts(session, case, rules), rules, actor,
                  RefreshReport())


def refresh_cases(session: Session, clock: Clock, rules: LitigationRules, *, actor: str,
                  holder_id: int | None = None) -> RefreshReport:
    report = RefreshReport()
    holders = [holder_id] if holder_id is not None else list(
        session.execute(select(RightsHolder.id).order_by(RightsHolder.id)).scalars())
    contacts = site_contacts(session)
    for holder in holders:
        groups = group_sites(holder_sightings(session, holder), contacts, rules)
        touched: set[int] = set()
        for group in groups:
            case = _case_for(session, clock, holder, group, actor, report, touched)
            touched.add(case.id)
            _score(session, clock, case, gather(session, holder, group.hosts,
                                                group.detection_ids), rules, actor, report)
        for case in session.execute(select(Case).where(
                Case.holder_id == holder, Case.status != CaseStatus.MERGED,
                Case.id.not_in(touched))).scalars():
            # Its detections were rejected or licensed since: nothing left to sue over.
            _score(session, clock, case, gather(session, holder, [h.host for h in case.hosts],
                                                []), rules, actor, report)
        report.reminders += _due_reminders(session, clock, holder, rules, actor)
    report.cases = sum(len(list_cases(session, holder_id=h)) for h in holders)
    return report


def _links_of(host: str, links: Sequence[Link]) -> list[dict[str, Any]]:
    return [{"reason": link.reason, "with": link.other if link.host == host else link.host,
             "evidence": link.evidence}
            for link in links if host in (link.host, link.other)]


def _case_for(session: Session, clock: Clock, holder_id: int, group: SiteGroup, actor: str,
              report: RefreshReport, touched: set[int]) -> Case:
    owned = session.execute(select(CaseHost).where(
        CaseHost.holder_id == holder_id, CaseHost.host.in_(group.hosts))).scalars().all()
    # A case already given to another group this run (its sites no longer link) keeps that one.
    cases = sorted({row.case_id for row in owned} - touched)
    now = clock.now()
    if not cases:
        case = Case(holder_id=holder_id, name=group.name, status=CaseStatus.CANDIDATE,
                    track="", score=0.0, breakdown=[], gates=[], damages={}, created_at=now)
        session.add(case)
        session.flush()
        audit.append(session, clock, actor=actor, action="case.opened", entity_type="case",
                     entity_id=case.id, holder_id=holder_id,
                     details={"name": group.name, "hosts": group.hosts})
        report.opened.append(case.id)
    else:
        rows = [get_case(session, case_id) for case_id in cases]
        rank = {status: i for i, status in enumerate(CaseStatus.PRECEDENCE)}
        case = min(rows, key=lambda c: (rank.get(c.status, len(rank)), c.id))
        for other in rows:
            if other.id != case.id:
                _merge(session, clock, other, case, group, actor)
                report.merged.append((other.id, case.id))
    existing = {row.host: row for row in session.execute(select(CaseHost).where(
        CaseHost.holder_id == holder_id, CaseHost.host.in_(group.hosts))).scalars()}
    for host in group.hosts:
        links = _links_of(host, group.links)
        row = existing.get(host)
        if row is None:
            session.add(CaseHost(case_id=case.id, holder_id=holder_id, host=host, links=links,
                                 added_at=now))
            continue
        if row.case_id != case.id:
            audit.append(session, clock, actor=actor, action="case.host_moved",
                         entity_type="case", entity_id=case.id, holder_id=holder_id,
                         details={"host": host, "from_case": row.case_id})
            row.case_id = case.id
        if row.links != links:
            row.links = links
    if case.name != group.name:
        case.name = group.name
    session.flush()
    session.expire(case, ["hosts"])
    return case


def _merge(session: Session, clock: Clock, case: Case, into: Case, group: SiteGroup,
           actor: str) -> None:
    moved = []
    for row in session.execute(select(CaseHost).where(CaseHost.case_id == case.id)).scalars():
        row.case_id = into.id
        moved.append(row.host)
    previous, case.status, case.merged_into_id = case.status, CaseStatus.MERGED, into.id
    why = [link.evidence for link in group.links if link.host in moved or link.other in moved]
    audit.append(session, clock, actor=actor, action="case.merged", entity_type="case",
                 entity_id=case.id, holder_id=case.holder_id,
                 details={"into": into.id, "hosts": moved, "previous_status": previous,
                          "links": why})


def _score(session: Session, clock: Clock, case: Case, facts: CaseFacts,
           rules: LitigationRules, actor: str, report: RefreshReport) -> Assessment:
    today = clock.now().date()
    result = assess(facts, rules, today)
    seen = [d.fetched_at for d in facts.detections]
    values: dict[str, Any] = {
        "track": result.track, "score": result.score, "breakdown": result.breakdown(),
        "gates": result.gate_rows(),
        "damages": {"low": result.damages.low, "high": result.damages.high,
                    "willful_high": result.damages.willful_high,
                    "currency": result.damages.currency, "basis": result.damages.basis,
                    "assumptions": list(result.damages.assumptions)},
        "works": sum(w.counted for w in result.works), "detections": len(facts.detections),
        "first_seen_at": min(seen) if seen else None, "last_seen_at": max(seen) if seen else None,
        "limitation_deadline": result.deadline,
    }
    changed = {key for key, value in values.items() if getattr(case, key) != value}
    if changed:
        for key in changed:
            setattr(case, key, values[key])
        case.scored_at = clock.now()
        audit.append(session, clock, actor=actor, action="case.scored", entity_type="case",
                     entity_id=case.id, holder_id=case.holder_id,
                     details={"score": result.score, "track": result.track,
                              "works": values["works"], "detections": values["detections"],
                              "deadline": result.deadline,
                              "factors": {f.factor: f.contribution for f in result.factors},
                              "gates_failed": [g.gate for g in result.gates if not g.passed]})
        report.rescored.append(case.id)
    return result


def _due_reminders(session: Session, clock: Clock, holder_id: int, rules: LitigationRules,
                   actor: str) -> list[Reminder]:
    today = clock.now().date()
    due = []
    for case in session.execute(select(Case).where(
            Case.holder_id == holder_id, Case.status.in_(CaseStatus.OPEN),
            Case.limitation_deadline.is_not(None))).scalars():
        deadline = case.limitation_deadline
        assert deadline is not None
        if deadline < today:
            continue
        lead = [d for d in sorted(rules.reminder_days) if deadline - timedelta(days=d) <= today]
        if not lead:
            continue
        days_before = lead[0]  # the nearest threshold passed: one reminder, not one per step
        exists = session.execute(select(CaseReminder.id).where(
            CaseReminder.case_id == case.id, CaseReminder.deadline == deadline,
            CaseReminder.days_before == days_before)).first()
        if exists:
            continue
        session.add(CaseReminder(case_id=case.id, deadline=deadline, days_before=days_before,
                                 created_at=clock.now()))
        audit.append(session, clock, actor=actor, action="case.reminder", entity_type="case",
                     entity_id=case.id, holder_id=holder_id,
                     details={"deadline": deadline, "days_before": days_before,
                              "days_left": (deadline - today).days})
        due.append(Reminder(case.id, holder_id, case.name, deadline, days_before))
    return due
