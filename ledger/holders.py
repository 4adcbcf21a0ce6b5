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


def add_holder(session: Session, clock: Clock, *, name: str, email: str, actor: str,
               address: str | None = None, phone: str | None = None) -> RightsHolder:
    name = name.strip()
    if not name:
        raise LedgerError("a rights-holder needs a name")
    if not _EMAIL.match(email):
        raise LedgerError(f"not an e-mail address: {email!r}")
    if session.execute(select(RightsHolder.id).where(RightsHolder.name == name)).first():
        raise ConflictError(f"a rights-holder named {name!r} already exists")
    holder = RightsHolder(name=name, email=email, address=address, phone=phone,
                          created_at=clock.now())
    session.add(holder)
    session.flush()
    audit.append(session, clock, actor=actor, action="holder.added", entity_type="holder",
                 entity_id=holder.id, holder_id=holder.id,
                 details={"name": name, "email": email, "address": address, "phone": phone})
    return holder


def get_holder(session: Session, name: str) -> RightsHolder:
    holder = session.execute(
        select(RightsHolder).where(RightsHolder.name == name)).scalar_one_or_none()
    if holder is None:
        raise NotFoundError(f"no rights-holder named {name!r} (see `copyguard holders list`)")
    return holder


def list_holders(session: Session) -> list[RightsHolder]:
    return list(session.execute(select(RightsHolder).order_by(RightsHolder.name)).scalars())
