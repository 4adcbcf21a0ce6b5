"""A case's gates, score and damages estimate, from its facts alone (no database, no clock).

Gates come first: a work counts only if it is registered (17 U.S.C. 411(a); a pending
application sends it to the Copyright Claims Board track), some infringement of it is within
the limitation period (507(b)), and the holder's rights in the suit territory are not in
conflict. Every factor of the score is reported with its value, weight and contribution, so the
legal team can explain the order of the queue.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from ledger.models import CaseTrack
from litigation import law
from litigation.facts import PENDING, REGISTERED, CaseFacts, WorkFacts
from litigation.rules import LitigationRules

_MAX_MONTHS = 24
_DAYS_PER_MONTH = 30.44


@dataclass(frozen=True)
class Factor:
    factor: str
    label: str
    value: float
    weight: float
    contribution: float
    detail: str


@dataclass(frozen=True)
class Gate:
    gate: str
    passed: bool
    detail: str
    works: tuple[int, ...] = ()  # the works this gate held back


@dataclass(frozen=True)
class Damages:
    low: int
    high: int
    willful_high: int | None
    basis: str
    assumptions: tuple[str, ...]
    currency: str = "USD"


@dataclass(frozen=True)
class WorkAssessment:
    recording_id: int
    title: str
    counted: bool  # passed every gate
    timely: bool  # eligible for statutory damages (17 U.S.C. 412)
    deadline: date  # three years from its first discovery
    last_deadline: date  # three years from its latest sighting
    notes: tuple[str, ...]


@dataclass(frozen=True)
class Assessment:
    track: str
    score: float
    factors: tuple[Factor, ...]
    gates: tuple[Gate, ...]
    damages: Damages
    works: tuple[WorkAssessment, ...]
    deadline: date | None
    willfulness_signals: int = field(default=0)

    def breakdown(self) -> list[dict[str, Any]]:
        return [asdict(f) for f in self.factors]

    def gate_rows(self) -> list[dict[str, Any]]:
        return [{**asdict(g), "works": list(g.works)} for g in self.gates]


def years_later(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def months_later(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    for last in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise ValueError(day)


def is_timely(work: WorkFacts) -> bool:
    """17 U.S.C. 412: registered before the infringement began, or within three months of first
    publication (the infringement then may have begun before registration)."""
    registered = work.registration_date
    if registered is None:
        return False
    if registered <= work.first_seen.date():
        return True
    published = work.publication_date
    return published is not None and registered <= months_later(
        published, law.REGISTRATION_GRACE_MONTHS)


def _covers(territories: tuple[str, ...], territory: str) -> bool:
    return not territories or "WORLD" in territories or territory in territories


def _assess_work(work: WorkFacts, rules: LitigationRules, today: date) -> WorkAssessment:
    notes = []
    deadline = years_later(work.discovered.date(), law.LIMITATION_YEARS)
    last_deadline = years_later(work.last_seen.date(), law.LIMITATION_YEARS)
    counted = True
    if work.registration == PENDING:
        notes.append("registration pending: Copyright Claims Board only")
    elif work.registration != REGISTERED:
        notes.append("not registered: no suit until registration (17 U.S.C. 411(a))")
        counted = False
    if last_deadline < today:
        notes.append(f"time-barred since {last_deadline.isoformat()} (17 U.S.C. 507(b))")
        counted = False
    if not _covers(work.territories, rules.territory):
        notes.append(f"the holder claims no rights in {rules.territory}")
        counted = False
    conflicts = [c.detail for c in work.conflicts if _covers(c.territories, rules.territory)]
    if conflicts:
        notes.append("ownership conflict: " + "; ".join(conflicts))
        counted = False
    timely = is_timely(work)
    if counted and not timely:
        notes.append("registered after the infringement began: actual damages only "
                     "(17 U.S.C. 412)")
    return WorkAssessment(work.recording_id, work.title, counted, timely, deadline,
                          last_deadline, tuple(notes))


def _gates(facts: CaseFacts, works: list[WorkAssessment], rules: LitigationRules,
           today: date) -> tuple[Gate, ...]:
    by_id = {w.recording_id: w for w in facts.works}
    unregistered = tuple(w.recording_id for w in facts.works
                         if w.registration not in (REGISTERED, PENDING))
    pending = [w for w in facts.works if w.registration == PENDING]
    registered = len(facts.works) - len(unregistered) - len(pending)
    detail = f"{registered} of {len(facts.works)} works registered"
    if pending:
        detail += f", {len(pending)} with an application pending (Copyright Claims Board)"
    barred = tuple(w.recording_id for w in works
                   if w.last_deadline < today)
    out_of_territory = tuple(
        w.recording_id for w in works
        if not _covers(by_id[w.recording_id].territories, rules.territory)
        or any(n.startswith("ownership conflict") for n in w.notes))
    return (
        Gate("registration", registered + len(pending) > 0, detail, unregistered),
        Gate("limitation", len(barred) < len(works),
             f"{len(works) - len(barred)} of {len(works)} works infringed within the last "
             f"{law.LIMITATION_YEARS} years" + (
                 f"; time-barred: {', '.join(str(i) for i in barred)}" if barred else ""),
             barred),
        Gate("ownership", len(out_of_territory) < len(works),
             f"{len(works) - len(out_of_territory)} of {len(works)} works owned in "
             f"{rules.territory} without conflict", out_of_territory),
    )


def _factors(facts: CaseFacts, counted: list[WorkAssessment], deadline: date | None,
             rules: LitigationRules, today: date) -> list[Factor]:
    w = rules.weights
    eligible = [a for a in counted if a.timely]
    kept_up = sum(len(n.kept_up) for n in facts.notices)
    removed = sum(len(n.removed) for n in facts.notices)
    reuploads = len(facts.reuploads)
    counters = len(facts.counters)
    detections = facts.detections
    first = min((d.fetched_at for d in detections), default=None)
    last = max((d.fetched_at for d in detections), default=None)
    months = 0.0 if first is None or last is None else min(
        (last - first).total_seconds() / 86400 / _DAYS_PER_MONTH, _MAX_MONTHS)
    urls = len({d.url for d in detections})
    confidence = sum(d.confidence for d in detections) / len(detections) if detections else 0.0
    warc = sum(d.has_warc for d in detections) / len(detections) if detections else 0.0
    reverified = sum(d.reverified for d in detections) / len(detections) if detections else 0.0
    strength = 0.5 * confidence + 0.25 * warc + 0.25 * reverified
    days_left = (deadline - today).days if deadline else None
    urgency = 0.0 if days_left is None else max(0.0, min(1.0, 1 - days_left / 365))
    titles = ", ".join(a.title for a in counted) or "none"

    def factor(name: str, label: str, value: float, weight: float, detail: str) -> Factor:
        return Factor(name, label, round(value, 4), weight, round(value * weight, 2), detail)

    return [
        factor("works", "Distinct works infringed", len(counted), w.work,
               f"{len(counted)} works past the gates: {titles}"),
        factor("eligible_works", "Works eligible for statutory damages", len(eligible),
               w.eligible_work, f"{len(eligible)} registered before the infringement began or "
               "within three months of publication (17 U.S.C. 412)"),
        factor("ignored_notices", "URLs kept up after notice", kept_up, w.ignored_notice,
               f"{kept_up} URLs still served unchanged after their notice's deadline"),
        factor("reuploads", "Copies put up again after removal", reuploads, w.reupload,
               f"{reuploads} copies found after an earlier copy of the same work was removed"),
        factor("counter_notices", "Counter-notices", counters, w.counter_notice,
               f"{counters} counter-notices received: the operator disputes the claim"),
        factor("removed_after_notice", "URLs removed after notice", removed,
               w.removed_after_notice, f"{removed} URLs taken down after a notice (the host "
               "may keep the 512(c) safe harbour)"),
        factor("duration", "Months active", months, w.month_active,
               "from the first to the latest sighting" + (
                   f" ({first.date().isoformat()} to {last.date().isoformat()})"
                   if first and last else "") + f", at most {_MAX_MONTHS}"),
        factor("reach", "Reach (log2 of 1 + infringing URLs)", math.log2(1 + urls), w.reach,
               f"{urls} distinct URLs on {len(facts.hosts)} hosts"),
        factor("evidence", "Evidence strength (0-1)", strength, w.evidence,
               f"mean confidence {confidence:.2f} (half), WARC-captured {warc:.0%} (a quarter),"
               f" re-verified {reverified:.0%} (a quarter)"),
        factor("urgency", "Limitation urgency (0-1)", urgency, w.urgency,
               "no deadline" if deadline is None else
               f"{days_left} days to {deadline.isoformat()}; grows over the last 365 days"),
    ]


def _damages(track: str, counted: list[WorkAssessment], willful: int) -> Damages:
    assumptions = [
        "each work counts once however many copies were found (17 U.S.C. 504(c)(1))",
        "the infringement began no later than its first capture; it may have begun earlier",
    ]
    if track == CaseTrack.CCB:
        timely = sum(a.timely for a in counted)
        untimely = len(counted) - timely
        high = min(timely * law.CCB_PER_WORK
                   + min(untimely * law.CCB_PER_WORK_UNTIMELY, law.CCB_UNTIMELY_TOTAL),
                   law.CCB_PER_CASE)
        assumptions += ["Copyright Claims Board: no statutory minimum; $15,000 per timely "
                        "registered work, $7,500 per other work ($15,000 in all), $30,000 per "
                        "proceeding (17 U.S.C. 1504(e)(1))",
                        "a pending application's filing date stands for the registration date"]
        return Damages(0, high, None, f"{len(counted)} works before the Copyright Claims "
                       "Board", tuple(assumptions))
    if track == CaseTrack.BARRED:
        return Damages(0, 0, None, "no work passed the gates", tuple(assumptions))
    eligible = sum(a.timely for a in counted)
    assumptions.append(f"{eligible} of {len(counted)} counted works eligible for statutory "
                       "damages; the others for actual damages and profits only (17 U.S.C. "
                       "412, 504(b))")
    willful_high = eligible * law.STATUTORY_WILLFUL_MAX if willful else None
    if willful:
        assumptions.append(f"up to $150,000 per work if willfulness is proven ({willful} "
                           "signals: URLs kept up after notice, re-uploads, counter-notices)")
    return Damages(eligible * law.STATUTORY_MIN, eligible * law.STATUTORY_MAX, willful_high,
                   f"{eligible} works x $750-$30,000 (17 U.S.C. 504(c)(1))", tuple(assumptions))


def assess(facts: CaseFacts, rules: LitigationRules, today: date) -> Assessment:
    works = [_assess_work(w, rules, today) for w in facts.works]
    gates = _gates(facts, works, rules, today)
    counted = [a for a in works if a.counted]
    registration_of = {w.recording_id: w.registration for w in facts.works}
    if not counted:
        track = CaseTrack.BARRED
    elif any(registration_of[a.recording_id] == REGISTERED for a in counted):
        track = CaseTrack.COURT
        # Pending works wait for the court track until registered; the court counts the rest.
        counted = [a for a in counted if registration_of[a.recording_id] == REGISTERED]
    else:
        track = CaseTrack.CCB
    live = [a.deadline if a.deadline >= today else a.last_deadline for a in counted]
    deadline = min(live) if live else None
    willful = (sum(len(n.kept_up) for n in facts.notices) + len(facts.reuploads)
               + len(facts.counters))
    if track == CaseTrack.BARRED:
        factors: list[Factor] = []
        score = 0.0
    else:
        factors = _factors(facts, counted, deadline, rules, today)
        score = round(sum(f.contribution for f in factors), 2)
    return Assessment(track=track, score=score, factors=tuple(factors), gates=gates,
                      damages=_damages(track, counted, willful), works=tuple(works),
                      deadline=deadline, willfulness_signals=willful)

