"""Rights-holders as ``copyguard holders list --json`` prints them and the API answers them: the
JSON shape and the API's page of them (newest first, filtered by WHERE clauses the caller
composes)."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from ledger.models import RightsHolder


class HolderView(BaseModel):
    """A rights-holder: who its notices are sent for and signed by."""

    id: int
    name: str = Field(description="As notices show it; it does not change.")
    email: str = Field(description="Contact e-mail address for notices.")
    address: str | None = Field(description="Postal address.")
    phone: str | None
    signatory: str | None = Field(description="Who signs its notices (a person authorised "
                                              "to act for it); none: notices are refused.")
    signatory_title: str | None = Field(description="The signatory's capacity.")
    notice_policy: str = Field(description="auto: confident whole-work detections are noticed "
                                           "by rule; review: a person approves every notice.")
    created_at: str = Field(description="ISO 8601, UTC.")


def holder_view(holder: RightsHolder) -> HolderView:
    return HolderView(id=holder.id, name=holder.name, email=holder.email,
                      address=holder.address, phone=holder.phone,
                      signatory=holder.signatory_name, signatory_title=holder.signatory_title,
                      notice_policy=holder.notice_policy,
                      created_at=holder.created_at.isoformat())


def list_holder_views(session: Session, where: Sequence[ColumnElement[bool]], *,
                      limit: int | None = None, offset: int = 0) -> list[HolderView]:
    """The holders matching ``where``, newest first; ``limit`` None: all of them."""
    query = (select(RightsHolder).where(*where).order_by(RightsHolder.id.desc())
             .offset(offset).limit(limit))
    return [holder_view(h) for h in session.execute(query).scalars()]


def count_holders(session: Session, where: Sequence[ColumnElement[bool]]) -> int:
    return int(session.scalar(select(func.count(RightsHolder.id)).where(*where)) or 0)
