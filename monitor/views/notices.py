"""Notices as ``copyguard notices list/show --json`` print them and the API answers them: the
query (newest first, filtered by WHERE clauses the caller composes) and the JSON shapes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from ledger.models import CounterNotice, DeliveryAttempt, Notice, RightsHolder


class NoticeSummary(BaseModel):
    """A takedown notice to one recipient, with where it stands."""

    id: int
    reference: str = Field(description="The notice's own reference: the e-mail's Message-ID "
                                       "and the web form's Idempotency-Key.")
    status: str = Field(description="draft, review, queued, sending, sent, unconfirmed, "
                                    "failed, removed, partially-removed, ignored, countered "
                                    "or rejected.")
    jurisdiction: str = Field(description="dmca, dsa or prc.")
    holder: str | None = Field(description="The rights-holder's name.")
    recipient: str | None = Field(description="The e-mail address or web form it goes to.")
    recipient_name: str
    recipient_source: str = Field(description="How the recipient was found: target "
                                              "(configured), site (published contact), rdap.")
    urls: int = Field(description="How many URLs it asks to remove.")
    created_at: str = Field(description="ISO 8601, UTC.")
    sent_at: str | None = Field(description="ISO 8601, UTC; null: not sent.")
    attempts: int = Field(description="Delivery attempts so far.")
    recheck_at: str | None = Field(description="When its URLs are checked again.")
    last_error: str | None
    sue_before: str | None = Field(description="After a DMCA counter-notice: the earliest "
                                               "put-back day (file suit before it).")


class NoticeItemView(BaseModel):
    """One URL of a notice and what the last removal re-check found."""

    url: str
    status: str = Field(description="listed, removed or still-up.")
    detection_id: int
    checked_at: str | None = Field(description="ISO 8601, UTC; null: not checked yet.")
    check_http_status: int | None


class DeliveryAttemptView(BaseModel):
    """One try at handing the notice (or its reminder) to the recipient."""

    number: int
    kind: str = Field(description="notice or reminder.")
    channel: str = Field(description="email or http (web form).")
    started_at: str = Field(description="ISO 8601, UTC.")
    outcome: str | None = Field(description="accepted, temporary, permanent, in-doubt; null: "
                                            "unfinished.")
    status_code: int | None = Field(description="The SMTP or HTTP status of the reply.")
    reply: str | None = Field(description="What the recipient's server answered.")


class NoticeDetail(NoticeSummary):
    """A notice with its URLs, its delivery attempts and its rendered text (as sent: never
    changed after it left draft). The text and HTML are strings to show as text, never to
    insert as markup: they quote what suspect sites published."""

    consideration: dict[str, Any] | None = Field(description="Who (a rule or a person) "
                                                             "considered authorisation and "
                                                             "fair use, when and why.")
    items: list[NoticeItemView]
    attempts_log: list[DeliveryAttemptView]
    subject: str | None
    text: str | None = Field(description="The plain-text notice; null: not rendered yet.")
    html: str | None = Field(description="The HTML version, as a string.")


def notice_filters(*, status: str | None = None,
                   holder_id: int | None = None) -> list[ColumnElement[bool]]:
    """WHERE clauses for :func:`list_notices`: the status and the holder's id."""
    where: list[ColumnElement[bool]] = []
    if status:
        where.append(Notice.status == status)
    if holder_id is not None:
        where.append(Notice.holder_id == holder_id)
    return where


def _query(where: Sequence[ColumnElement[bool]]) -> Select[Notice]:
    return select(Notice).where(*where)


def list_notices(session: Session, where: Sequence[ColumnElement[bool]], *,
                 limit: int | None = None, offset: int = 0) -> list[NoticeSummary]:
    """The notices matching ``where``, newest first; ``limit`` None: all of them."""
    query = _query(where).order_by(Notice.id.desc()).offset(offset).limit(limit)
    return [notice_summary(session, n) for n in session.execute(query).scalars()]


def count_notices(session: Session, where: Sequence[ColumnElement[bool]]) -> int:
    inner = _query(where).with_only_columns(Notice.id).subquery()
    return int(session.scalar(select(func.count()).select_from(inner)) or 0)


def notice_summary(session: Session, notice: Notice) -> NoticeSummary:
    holder = session.get(RightsHolder, notice.holder_id)
    counter = session.execute(select(CounterNotice).where(
        CounterNotice.notice_id == notice.id).order_by(CounterNotice.id.desc())).scalars().first()
    return NoticeSummary(
        id=notice.id, reference=notice.reference, status=notice.status,
        jurisdiction=notice.jurisdiction, holder=holder.name if holder else None,
        recipient=notice.recipient_email or notice.recipient_form_url,
        recipient_name=notice.recipient_name, recipient_source=notice.recipient_source,
        urls=len(notice.items), created_at=notice.created_at.isoformat(),
        sent_at=notice.sent_at.isoformat() if notice.sent_at else None,
        attempts=notice.attempts,
        recheck_at=notice.recheck_at.isoformat() if notice.recheck_at else None,
        last_error=notice.last_error,
        sue_before=counter.putback_earliest.isoformat()
        if counter is not None and counter.putback_earliest else None)


def notice_detail(session: Session, notice: Notice) -> NoticeDetail:
    attempts = session.execute(select(DeliveryAttempt).where(
        DeliveryAttempt.notice_id == notice.id).order_by(DeliveryAttempt.number)).scalars()
    return NoticeDetail(
        **notice_summary(session, notice).model_dump(),
        consideration=notice.consideration,
        items=[NoticeItemView(
            url=i.url, status=i.status, detection_id=i.detection_id,
            checked_at=i.checked_at.isoformat() if i.checked_at else None,
            check_http_status=i.check_http_status) for i in notice.items],
        attempts_log=[DeliveryAttemptView(
            number=a.number, kind=a.kind, channel=a.channel,
            started_at=a.started_at.isoformat(), outcome=a.outcome,
            status_code=a.status_code, reply=a.reply) for a in attempts],
        subject=notice.subject, text=notice.body_text, html=notice.body_html)
