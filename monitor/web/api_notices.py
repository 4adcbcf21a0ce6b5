"""``/notices``: takedown notices, read by every role within its scope, decided on (approve or
reject a notice waiting for review, resend one whose delivery failed) by the holder's own
accounts and admins, and countered (a counter-notice recorded against a sent notice) by the
holder's accounts, its legal team and admins. The same services as ``copyguard notices``
(:mod:`takedown.review`, :mod:`takedown.outbox`, :mod:`takedown.counter`), each change in the
audit log under the caller's name.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from ledger.accounts import Principal
from ledger.errors import NotFoundError
from ledger.models import Notice, Role
from monitor.takedown_stage import outbox
from monitor.views.notices import (
    NoticeDetail,
    NoticeSummary,
    count_notices,
    list_notices,
    notice_detail,
    notice_filters,
    notice_summary,
)
from monitor.web.scope import RowId, check_visible, holder_filter
from monitor.web.security import authenticate, require, state_of
from takedown.counter import MAX_MESSAGE_CHARS, record_counter_notice
from takedown.review import approve, reject

router = APIRouter(prefix="/notices", tags=["notices"])

NoticeId = RowId
Reader = Annotated[Principal, Depends(authenticate)]
Decider = Annotated[Principal, Depends(require(Role.ADMIN, Role.HOLDER))]
Counterer = Annotated[Principal, Depends(require(Role.ADMIN, Role.HOLDER, Role.LEGAL))]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such notice, or another rights-holder's."}}
_CHANGE: dict[int | str, dict[str, Any]] = {
    **_NOT_FOUND, 403: {"description": "Not for this role."}}
_DECISION: dict[int | str, dict[str, Any]] = {
    **_CHANGE, 400: {"description": "The reason is blank."},
    409: {"description": "The notice is not waiting for review."}}


class NoticePage(BaseModel):
    items: list[NoticeSummary]
    total: int = Field(description="How many notices match, over all pages.")


class Decision(BaseModel):
    reason: str = Field(min_length=1, max_length=10_000,
                        description="Why (kept with the notice and in the audit log): e.g. "
                                    "that authorisation and fair use were considered.")


class CounterNoticeIn(BaseModel):
    message: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS,
                         description="The counter-notice as received (text).")
    sender: str | None = Field(None, max_length=400, description="Who sent it.")


class CounterNoticeView(BaseModel):
    """A counter-notice recorded, and the deadline it sets."""

    id: int
    notice_id: int
    rule: str = Field(description="dmca-512g, prc-art16-17 or dsa-art20.")
    received_at: str = Field(description="ISO 8601, UTC.")
    sender: str | None
    message_sha256: str
    putback_earliest: str | None = Field(description="DMCA: the earliest day the material "
                                                     "may be put back; file suit before it.")
    putback_latest: str | None


class Countered(BaseModel):
    counter_notice: CounterNoticeView
    notice: NoticeSummary = Field(description="The notice, now countered.")


def visible_notice(session: Session, principal: Principal, notice_id: int) -> Notice:
    notice = session.get(Notice, notice_id)
    if notice is None:
        raise NotFoundError(f"no notice {notice_id}")
    check_visible(principal, notice.holder_id, f"notice {notice_id}")
    return notice


@router.get("", response_model=NoticePage)
def list_(request: Request, principal: Reader,
          status: Annotated[str | None, Query(
              max_length=20, description="Only notices in this state.")] = None,
          limit: Annotated[int, Query(ge=1, le=500)] = 100,
          offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0) -> NoticePage:
    """Notices, newest first: a holder or legal account sees only its holder's."""
    app = state_of(request).app
    where = notice_filters(status=status) + holder_filter(principal, Notice.holder_id)
    with app.ledger.read() as session:
        return NoticePage(items=list_notices(session, where, limit=limit, offset=offset),
                          total=count_notices(session, where))


@router.get("/{notice_id}", response_model=NoticeDetail, responses=_NOT_FOUND)
def show(notice_id: NoticeId, request: Request, principal: Reader) -> NoticeDetail:
    """One notice: its URLs and what their re-checks found, every delivery attempt, who
    considered authorisation and fair use, and its rendered subject, text and HTML (strings:
    they quote what suspect sites published, so show them as text)."""
    app = state_of(request).app
    with app.ledger.read() as session:
        return notice_detail(session, visible_notice(session, principal, notice_id))


def _decide(notice_id: NoticeId, request: Request, principal: Principal, body: Decision,
            approving: bool) -> NoticeSummary:
    app = state_of(request).app
    with app.ledger.write() as session:
        # holder_id: another holder's notice is "no notice N", as a missing one.
        decide = approve if approving else reject
        notice = decide(session, app.clock, notice_id, actor=principal.actor,
                        reason=body.reason, holder_id=principal.scope)
        return notice_summary(session, notice)


@router.post("/{notice_id}/approve", response_model=NoticeSummary,
             responses=_DECISION)
def approve_(notice_id: NoticeId, body: Decision, request: Request,
             principal: Decider) -> NoticeSummary:
    """Approve a notice waiting for review: it is queued and the outbox sends it. The reason
    replaces the rule's record of what was considered (a person considered authorisation and
    fair use). Holder accounts (their own notices) and admins."""
    return _decide(notice_id, request, principal, body, approving=True)


@router.post("/{notice_id}/reject", response_model=NoticeSummary,
             responses=_DECISION)
def reject_(notice_id: NoticeId, body: Decision, request: Request,
            principal: Decider) -> NoticeSummary:
    """Decide not to send a notice waiting for review; its detections are rejected with it,
    so they are not drafted again. Holder accounts (their own notices) and admins."""
    return _decide(notice_id, request, principal, body, approving=False)


@router.post("/{notice_id}/resend", response_model=NoticeSummary,
             responses={**_CHANGE, 400: {"description": "The reason is blank."},
                        409: {"description": "The notice is not unconfirmed or failed."}})
def resend(notice_id: NoticeId, body: Decision, request: Request,
           principal: Decider) -> NoticeSummary:
    """Send again a notice whose delivery failed or was never confirmed (as ``notices
    resend``): queued with a fresh count of attempts and the same reference, so the host can
    tell it is the same notice; the daemon's takedown stage sends it on its next run. Holder
    accounts (their own notices) and admins."""
    app = state_of(request).app
    with app.ledger.read() as session:
        visible_notice(session, principal, notice_id)
    notice = outbox(app).resend(notice_id, actor=principal.actor, reason=body.reason)
    with app.ledger.read() as session:
        return notice_summary(session, session.get_one(Notice, notice.id))


@router.post("/{notice_id}/counter", response_model=Countered, status_code=201,
             responses={**_CHANGE,
                        409: {"description": "The notice was not sent, or the message is "
                                             "empty."}})
def counter(notice_id: NoticeId, body: CounterNoticeIn, request: Request,
            principal: Counterer) -> Countered:
    """Record a counter-notice received against a sent notice; the notice becomes
    ``countered``. Under the DMCA the answer gives the put-back window: file suit before its
    first day to keep the material down. Holder and legal accounts (their holder's notices)
    and admins."""
    app = state_of(request).app
    with app.ledger.write() as session:
        row = record_counter_notice(session, app.clock, notice_id, body.message,
                                    actor=principal.actor, sender=body.sender,
                                    holder_id=principal.scope)
        notice = session.get(Notice, notice_id)
        assert notice is not None
        return Countered(
            counter_notice=CounterNoticeView(
                id=row.id, notice_id=row.notice_id, rule=row.rule,
                received_at=row.received_at.isoformat(), sender=row.sender,
                message_sha256=row.message_sha256,
                putback_earliest=row.putback_earliest.isoformat()
                if row.putback_earliest else None,
                putback_latest=row.putback_latest.isoformat() if row.putback_latest else None),
            notice=notice_summary(session, notice))
