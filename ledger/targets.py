"""Targets (sites to monitor): from ``copyguard.toml`` and from ``copyguard targets add``.

Both end up as rows of ``targets``, so crawls, captures and detections can point at them. Config
targets are brought in line with the file at every start (``sync_config_targets``); a target
added on the command line is kept until removed. Removing keeps the row (``removed_at``): what
was captured from a site stays traceable to it. Every change is in the audit log.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from config.settings import CrawlSettings, TargetSettings
from ledger import audit
from ledger.clock import Clock
from ledger.errors import ConflictError, NotFoundError
from ledger.models import Target

SOURCE_CONFIG = "config"
SOURCE_CLI = "cli"


def target_fields(spec: TargetSettings, crawl: CrawlSettings) -> dict[str, Any]:
    """The columns of a target row for ``spec``, defaults filled in from ``[crawl]``."""
    hosts = [urlsplit(url).hostname or "" for url in spec.start_urls]
    return {
        "start_urls": list(spec.start_urls),
        "allowed_domains": list(spec.allowed_domains) or sorted({h for h in hosts if h}),
        "follow": list(spec.follow),
        "deny": list(spec.deny),
        "depth": spec.depth,
        "max_pages": spec.max_pages,
        "schedule": spec.schedule,
        "delay_seconds": (spec.delay_seconds if spec.delay_seconds is not None
                          else crawl.default_delay_seconds),
        "concurrency": spec.concurrency or crawl.default_concurrency,
        "obey_robots": spec.obey_robots,
        "allow_private": spec.allow_private,
        "notice_email": spec.notice_email or None,
        "notice_form_url": spec.notice_form_url or None,
        "jurisdiction": spec.jurisdiction or None,
    }


def add_target(session: Session, clock: Clock, spec: TargetSettings, crawl: CrawlSettings, *,
               actor: str, source: str = SOURCE_CLI) -> Target:
    existing = _by_name(session, spec.name)
    fields = target_fields(spec, crawl)
    if existing is not None and existing.removed_at is None:
        raise ConflictError(f"a target named {spec.name!r} already exists "
                            "(`copyguard targets remove` it first)")
    if existing is not None:  # re-adding a removed target revives its row and its history
        target = existing
        for key, value in fields.items():
            setattr(target, key, value)
        target.removed_at, target.source = None, source
    else:
        target = Target(name=spec.name, source=source, created_at=clock.now(), **fields)
        session.add(target)
    session.flush()
    audit.append(session, clock, actor=actor, action="target.added", entity_type="target",
                 entity_id=target.id, details={"name": spec.name, "source": source, **fields})
    return target


def remove_target(session: Session, clock: Clock, name: str, *, actor: str) -> Target:
    target = get_target(session, name)
    target.removed_at = clock.now()
    audit.append(session, clock, actor=actor, action="target.removed", entity_type="target",
                 entity_id=target.id, details={"name": name})
    return target


def remove_managed_target(session: Session, clock: Clock, name: str, *, actor: str) -> Target:
    """Remove a target added by the CLI or the API; one from the config file is refused (the
    file would bring it back at the next start)."""
    if get_target(session, name).source == SOURCE_CONFIG:
        raise ConflictError(f"target {name!r} is defined in the config file: delete its "
                            "[[targets]] table there")
    return remove_target(session, clock, name, actor=actor)


def get_target(session: Session, name: str) -> Target:
    target = _by_name(session, name)
    if target is None or target.removed_at is not None:
        raise NotFoundError(f"no target named {name!r} (see `copyguard targets list`)")
    return target


def list_targets(session: Session) -> list[Target]:
    return list(session.execute(
        select(Target).where(Target.removed_at.is_(None)).order_by(Target.name)).scalars())


def sync_config_targets(session: Session, clock: Clock, specs: Sequence[TargetSettings],
                        crawl: CrawlSettings, *, actor: str) -> list[str]:
    """Make the config-sourced targets equal to ``specs``; returns what changed, for the log.

    A target of the same name added on the command line is left alone (the file does not
    silently take it over); it is reported instead."""
    changes: list[str] = []
    wanted = {spec.name: spec for spec in specs}
    for spec in specs:
        row = _by_name(session, spec.name)
        fields = target_fields(spec, crawl)
        if row is None or row.removed_at is not None:
            add_target(session, clock, spec, crawl, actor=actor, source=SOURCE_CONFIG)
            changes.append(f"added {spec.name}")
        elif row.source != SOURCE_CONFIG:
            changes.append(f"kept {spec.name}: added by `targets add`, not from the file")
        elif any(getattr(row, key) != value for key, value in fields.items()):
            for key, value in fields.items():
                setattr(row, key, value)
            audit.append(session, clock, actor=actor, action="target.changed",
                         entity_type="target", entity_id=row.id,
                         details={"name": spec.name, **fields})
            changes.append(f"changed {spec.name}")
    stale = session.execute(select(Target).where(
        Target.source == SOURCE_CONFIG, Target.removed_at.is_(None))).scalars()
    for row in list(stale):
        if row.name not in wanted:
            remove_target(session, clock, row.name, actor=actor)
            changes.append(f"removed {row.name}: no longer in the file")
    return changes


def _by_name(session: Session, name: str) -> Target | None:
    return session.execute(select(Target).where(Target.name == name)).scalar_one_or_none()
