"""Rights-holders: registration and look-up, each change recorded in the audit log."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger import audit
from ledger.clock import Clock
from ledger.errors import ConflictError, LedgerError, NotFoundError
from ledger.models import RightsHolder

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


NOTICE_POLICIES = ("auto", "review")
# The columns ``update_holder`` may change (the name is the holder's identity in notices).
EDITABLE = ("email", "address", "phone", "signatory_name", "signatory_title", "notice_policy")


def add_holder(session: Session, clock: Clock, *, name: str, email: str, actor: str,
               address: str | None = None, phone: str | None = None,
               signatory_name: str | None = None, signatory_title: str | None = None,
               notice_policy: str = "review") -> RightsHolder:
    name = name.strip()
    if not name:
        raise LedgerError("a rights-holder needs a name")
    _check(email=email, notice_policy=notice_policy)
    if session.execute(select(RightsHolder.id).where(RightsHolder.name == name)).first():
        raise ConflictError(f"a rights-holder named {name!r} already exists")
    holder = RightsHolder(name=name, email=email, address=address, phone=phone,
                          signatory_name=signatory_name, signatory_title=signatory_title,
                          notice_policy=notice_policy, created_at=clock.now())
    session.add(holder)
    session.flush()
    audit.append(session, clock, actor=actor, action="holder.added", entity_type="holder",
                 entity_id=holder.id, holder_id=holder.id,
                 details={"name": name, **{key: getattr(holder, key) for key in EDITABLE}})
    return holder


def update_holder(session: Session, clock: Clock, name: str, *, actor: str,
                  **changes: str | None) -> RightsHolder:
    """Change some of a holder's ``EDITABLE`` details (None: leave as is); audited."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise LedgerError(f"not a rights-holder detail: {', '.join(sorted(unknown))}")
    holder = get_holder(session, name)
    given = {key: value for key, value in changes.items() if value is not None}
    _check(email=given.get("email", holder.email),
           notice_policy=given.get("notice_policy", holder.notice_policy))
    before = {key: getattr(holder, key) for key in given}
    for key, value in given.items():
        setattr(holder, key, value if value or key in ("email", "notice_policy") else None)
    audit.append(session, clock, actor=actor, action="holder.updated", entity_type="holder",
                 entity_id=holder.id, holder_id=holder.id,
                 details={"before": before, "after": {k: getattr(holder, k) for k in given}})
    return holder


def _check(*, email: str, notice_policy: str) -> None:
    if not _EMAIL.match(email):
        raise LedgerError(f"not an e-mail address: {email!r}")
    if notice_policy not in NOTICE_POLICIES:
        raise LedgerError(f"notice policy must be one of {', '.join(NOTICE_POLICIES)}, "
                          f"not {notice_policy!r}")


def get_holder(session: Session, name: str) -> RightsHolder:
    holder = session.execute(
        select(RightsHolder).where(RightsHolder.name == name)).scalar_one_or_none()
    if holder is None:
        raise NotFoundError(f"no rights-holder named {name!r} (see `copyguard holders list`)")
    return holder


def list_holders(session: Session) -> list[RightsHolder]:
    return list(session.execute(select(RightsHolder).order_by(RightsHolder.name)).scalars())
