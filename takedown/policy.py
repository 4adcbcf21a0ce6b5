"""The decisions taken before a notice is sent, each with the reason that is recorded.

- :func:`authorise`: is the use authorised? A host on the operator's allowlist, or a holder's
  :class:`~ledger.models.Licence` for the host (subdomains included) that covers the recording
  on the detection's date in the notice's territory, means no notice at all (the detection
  becomes LICENSED). A licence covering only part of that territory, or a holder whose rights do
  not reach it, is not decided by rule: a person reviews the notice.
- :func:`review_reasons`: must a person look before the notice goes out? When the holder asks
  for it (``notice_policy = "review"``), when a detection is under ``review_below``, or when
  the match covers less of the work than ``fair_use_review_seconds`` (a short excerpt may be
  fair use or quotation).
- :func:`consideration`: the record, kept on the notice, that authorisation and fair use were
  considered before it was sent (Lenz v. Universal Music Corp., 815 F.3d 1145 (9th Cir. 2016)).

Reads no settings: the caller builds :class:`DraftingRules` from ``[takedown]``
(``default_jurisdiction``, ``batch_window_hours``, ``allowlist``, ``fair_use_review_seconds``)
and ``[matching] review_below``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.models import Capture, Detection, Licence, Recording, RightsHolder
from takedown.content import Jurisdiction

WORLD = "WORLD"
EU_MEMBERS = frozenset({
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE",
    "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK"})
# Where a notice under each law takes effect: what a licence must cover to exempt the licensee.
JURISDICTION_TERRITORY: dict[Jurisdiction, frozenset[str]] = {
    Jurisdiction.DMCA: frozenset({"US"}),
    Jurisdiction.DSA: EU_MEMBERS,
    Jurisdiction.PRC: frozenset({"CN"}),
}
# A whole copy of a short work (a 20 s jingle) is no excerpt: from this share of the work on,
# the fair-use threshold does not apply.
WHOLE_WORK_SHARE = 0.9


@dataclass(frozen=True)
class DraftingRules:
    """The takedown stage's rules, built by the caller from settings.

    :param default_jurisdiction: the law of a notice whose target names none.
    :param batch_window: detections for one holder, recipient and jurisdiction found within
        this time of the first go out as one notice.
    :param allowlist: hosts (their subdomains included) licensed to carry every holder's
        catalog: never noticed.
    :param fair_use_review_seconds: a match of less of a work than this goes to a person.
    :param review_below: a detection less confident than this goes to a person.
    """

    default_jurisdiction: Jurisdiction = Jurisdiction.DMCA
    batch_window: dt.timedelta = dt.timedelta(hours=1)
    allowlist: tuple[str, ...] = ()
    fair_use_review_seconds: float = 30.0
    review_below: float = 0.85

    def __post_init__(self) -> None:
        object.__setattr__(self, "default_jurisdiction", Jurisdiction(self.default_jurisdiction))
        object.__setattr__(self, "allowlist",
                           tuple(normalise_host(h) for h in self.allowlist if h.strip()))
        if self.batch_window < dt.timedelta(0):
            raise ValueError("batch_window must not be negative")


@dataclass(frozen=True)
class Authorisation:
    """Whether the use of one detection is authorised, and what was checked.

    ``licensed``: no notice (``reason`` says why). Otherwise ``grounds`` say what was checked
    and found not to apply, and ``review`` what a person must decide (empty: nothing).
    """

    licensed: bool
    reason: str
    grounds: tuple[str, ...] = ()
    review: tuple[str, ...] = field(default=())


def normalise_host(host: str) -> str:
    """Lower-case, without the root dot, IDN as A-labels, so "Ex.Example." matches "ex.example"."""
    stripped = host.strip().rstrip(".").lower()
    try:
        return stripped.encode("idna").decode("ascii")
    except UnicodeError:  # not a valid IDN: compare it as it is
        return stripped


def host_of(url: str) -> str:
    """The host of ``url`` ("" when it has none)."""
    return normalise_host(urlsplit(url).hostname or "")


def within(host: str, domain: str) -> bool:
    """Whether ``host`` is ``domain`` or one of its subdomains (never a mere suffix:
    "evilexample.com" is not within "example.com")."""
    return host == domain or host.endswith("." + domain)


def _expand(codes: Iterable[str]) -> frozenset[str] | None:
    """ISO codes with "EU" expanded to its members; None for the whole world. An empty list is
    read as the whole world: a licence that names no territory is not limited to one."""
    upper = {code.strip().upper() for code in codes}
    if not upper or WORLD in upper:
        return None
    expanded = set(upper - {"EU"})
    if "EU" in upper:
        expanded |= EU_MEMBERS
    return frozenset(expanded)


def _names(codes: Iterable[str]) -> str:
    codes = sorted(codes)
    return "the EU" if frozenset(codes) == EU_MEMBERS else ", ".join(codes)


def _licence_valid(licence: Licence, on: dt.date) -> bool:
    if licence.valid_from is not None and on < licence.valid_from:
        return False
    if licence.valid_until is not None and on > licence.valid_until:
        return False
    return licence.revoked_at is None or licence.revoked_at.date() > on


def authorise(session: Session, detection: Detection, capture: Capture, recording: Recording,
              jurisdiction: Jurisdiction, rules: DraftingRules) -> Authorisation:
    """Policy (a) and (b) for one detection, to be noticed under ``jurisdiction``."""
    host = host_of(capture.url)
    entry = next((domain for domain in rules.allowlist if within(host, domain)), None)
    if entry is not None:
        return Authorisation(True, f"host {host} is allowlisted ({entry})")
    grounds = [f"authorisation: host {host} is not on the allowlist"]
    review: list[str] = []

    territory = JURISDICTION_TERRITORY[jurisdiction]
    rights = _expand(recording.territories or ())
    relevant = territory if rights is None else territory & rights
    if not relevant:
        # The holder claims no rights where this law applies: a notice by rule would assert
        # rights it does not have.
        review.append(f"the holder's rights in {recording.title!r} cover {_names(rights or ())}, "
                      f"not the territory of a {jurisdiction.value} notice "
                      f"({_names(territory)})")
        relevant = territory

    on = detection.detected_at.date()
    licences = session.execute(
        select(Licence).where(Licence.holder_id == detection.holder_id).order_by(Licence.id)
    ).scalars().all()
    applicable = [lic for lic in licences
                  if within(host, normalise_host(lic.host))
                  and lic.recording_id in (None, recording.id)
                  and _licence_valid(lic, on)]
    covered: set[str] = set()
    for lic in applicable:
        lic_territory = _expand(lic.territories or ())
        if lic_territory is None or relevant <= lic_territory:
            what = f"{recording.title!r}" if lic.recording_id is not None else "all recordings"
            where = _names(lic_territory) if lic_territory is not None else WORLD
            return Authorisation(
                True, f"licence {lic.id} to {lic.licensee} for {lic.host} covers {what} "
                      f"in {where} on {on.isoformat()}")
        covered |= lic_territory & relevant
    if covered >= relevant:
        return Authorisation(True, f"licences {', '.join(str(lic.id) for lic in applicable)} "
                                   f"for {host} together cover {_names(relevant)} on {on}")
    if covered:
        review.append(f"licences for {host} cover {_names(covered)}, only part of the "
                      f"notice's territory ({_names(relevant)})")
    if covered:
        grounds.append(f"licences checked: {len(applicable)} cover part of the territory")
    else:
        grounds.append(f"licences checked: none applies ({len(licences)} of the holder, "
                       f"{len(applicable)} for {host} and this recording on {on.isoformat()}, "
                       f"none in {_names(relevant)})")
    return Authorisation(False, "no allowlist entry or licence applies", tuple(grounds),
                         tuple(review))


def matched_seconds(detection: Detection) -> float:
    """How much of the work the match covers: the capture's span times its speed (a copy
    played 5 % fast holds 5 % more of the work than its own length)."""
    return max(0.0, (detection.query_end - detection.query_start) * detection.speed)


def fair_use_ground(detection: Detection, recording: Recording) -> str:
    seconds = matched_seconds(detection)
    share = seconds / recording.duration if recording.duration > 0 else 1.0
    kind = "whole or substantial copy" if share >= WHOLE_WORK_SHARE else "partial copy"
    return (f"fair use: detection {detection.id}: {kind}: {seconds:.1f} s of a "
            f"{recording.duration:.1f} s work ({recording.title!r}), "
            f"confidence {detection.confidence:.2f}")


def review_reasons(holder: RightsHolder, matches: Sequence[tuple[Detection, Recording]],
                   rules: DraftingRules) -> list[str]:
    """Policy (c): why a person must approve the notice for ``matches``; empty: send by rule."""
    reasons: list[str] = []
    if holder.notice_policy != "auto":
        reasons.append(f"holder {holder.name!r} reviews every notice (notice_policy "
                       f"{holder.notice_policy!r})")
    for detection, recording in matches:
        if detection.confidence < rules.review_below:
            reasons.append(f"detection {detection.id}: confidence {detection.confidence:.2f} is "
                           f"below {rules.review_below:.2f}")
        seconds = matched_seconds(detection)
        whole = recording.duration > 0 and seconds >= WHOLE_WORK_SHARE * recording.duration
        if seconds < rules.fair_use_review_seconds and not whole:
            reasons.append(f"detection {detection.id}: {seconds:.1f} s of {recording.title!r} "
                           f"(under {rules.fair_use_review_seconds:g} s): possible fair use")
    return reasons


def consideration(*, by: str, actor: str, at: dt.datetime, grounds: Sequence[str],
                  **extra: Any) -> dict[str, Any]:
    """The Lenz record stored in ``Notice.consideration``: ``{"by": "rule"|"person", "actor",
    "at", "grounds": [...]}`` plus ``extra``. A notice waiting for review carries the rule's
    record with ``review_reasons`` (why a person decides); approval replaces it with the
    person's, which keeps the rule's grounds and reasons and adds ``reason``."""
    return {"by": by, "actor": actor, "at": at.astimezone(dt.UTC).isoformat(),
            "grounds": list(grounds), **extra}
