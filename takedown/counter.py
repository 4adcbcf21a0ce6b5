"""Counter-notices: what the other side answered, and the deadline it sets for the holder.

Each jurisdiction has its own rule (:data:`RULES`):

- **DMCA**, 17 U.S.C. 512(g)(2)(C): the provider puts the material back "not less than 10, nor
  more than 14, business days following receipt of the counter notice", unless it first hears
  that the complaining party has filed an action seeking a court order. The day before the
  earliest put-back day is the "sue or lose it" deadline the legal team is shown. Business days
  here skip Saturdays and Sundays only: counting US federal holidays as well would only move the
  window later, so the earliest day computed this way is the safe one to act before.
- **PRC**, Regulation on the Protection of the Right to Network Dissemination of Information,
  Art. 16-17: on a counter-notice the provider restores the material at once, forwards the
  counter-notice, and the holder may not notify the provider again to remove the same work
  there: no window, and drafting must not notice it again (:func:`renotice_barred`).
- **EU DSA**: a counter-notice goes through the provider's internal complaint handling
  (Art. 20); no statutory put-back window. Recorded for the legal team.

Reads no settings.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger import audit
from ledger.clock import Clock
from ledger.errors import ConflictError, NotFoundError
from ledger.models import CounterNotice, Detection, Notice, NoticeItem, NoticeStatus

MAX_MESSAGE_CHARS = 1_000_000


@dataclass(frozen=True)
class CounterRule:
    name: str
    putback_business_days: tuple[int, int] | None  # earliest, latest; None: no window
    bars_renotice: bool  # the holder may not notice the same work there again
    summary: str


RULES = {
    "dmca": CounterRule("dmca-512g", (10, 14), False,
                        "put back 10-14 business days after the counter-notice unless an "
                        "action is filed first (17 U.S.C. 512(g)(2)(C))"),
    "prc": CounterRule("prc-art16-17", None, True,
                       "restored at once; the holder may not notify the provider again "
                       "(Regulation Art. 16-17): only a court or an administrative complaint "
                       "remains"),
    "dsa": CounterRule("dsa-art20", None, False,
                       "handled by the provider's internal complaint system (DSA Art. 20)"),
}


def add_business_days(start: date, days: int) -> date:
    """``days`` Monday-to-Friday days after ``start`` (weekends skipped, holidays not)."""
    current = start
    while days > 0:
        current += timedelta(days=1)
        if current.weekday() < 5:
            days -= 1
    return current


def record_counter_notice(session: Session, clock: Clock, notice_id: int, message: str, *,
                          actor: str, sender: str | None = None,
                          received_at: datetime | None = None,
                          holder_id: int | None = None) -> CounterNotice:
    """Keep a counter-notice against a sent notice and mark the notice ``countered``. With
    ``holder_id``, a notice of another holder is not found."""
    notice = session.get(Notice, notice_id)
    if notice is None or (holder_id is not None and notice.holder_id != holder_id):
        raise NotFoundError(f"no notice {notice_id}")
    if notice.status not in (*NoticeStatus.SENT_STATES, *NoticeStatus.OUTCOMES,
                             NoticeStatus.COUNTERED):
        raise ConflictError(f"notice {notice_id} is {notice.status}: only a sent notice can be "
                            "countered")
    if not message.strip():
        raise ConflictError("the counter-notice is empty")
    if len(message) > MAX_MESSAGE_CHARS:
        raise ConflictError(f"the counter-notice is over {MAX_MESSAGE_CHARS} characters")
    rule = RULES[notice.jurisdiction]
    received = received_at or clock.now()
    earliest = latest = None
    if rule.putback_business_days is not None:
        low, high = rule.putback_business_days
        earliest = add_business_days(received.date(), low)
        latest = add_business_days(received.date(), high)
    counter = CounterNotice(
        notice_id=notice.id, holder_id=notice.holder_id, received_at=received, sender=sender,
        message=message, message_sha256=hashlib.sha256(message.encode("utf-8")).hexdigest(),
        putback_earliest=earliest, putback_latest=latest, rule=rule.name)
    session.add(counter)
    notice.status = NoticeStatus.COUNTERED
    session.flush()
    audit.append(session, clock, actor=actor, action="notice.countered", entity_type="notice",
                 entity_id=notice.id, holder_id=notice.holder_id,
                 details={"counter_notice_id": counter.id, "rule": rule.name,
                          "sender": sender, "message_sha256": counter.message_sha256,
                          "received_at": received.isoformat(),
                          "sue_before": (earliest - timedelta(days=1)).isoformat()
                          if earliest else None,
                          "putback_earliest": earliest.isoformat() if earliest else None,
                          "putback_latest": latest.isoformat() if latest else None,
                          "summary": rule.summary})
    return counter


def renotice_barred(session: Session, holder_id: int, recording_id: int, url: str) -> bool:
    """Whether a counter-notice under a rule that bars a new notice (PRC) covers this work at
    this URL already."""
    barred = session.execute(
        select(CounterNotice.id)
        .join(NoticeItem, NoticeItem.notice_id == CounterNotice.notice_id)
        .join(Detection, Detection.id == NoticeItem.detection_id)
        .where(CounterNotice.holder_id == holder_id, CounterNotice.rule == RULES["prc"].name,
               Detection.recording_id == recording_id, NoticeItem.url == url).limit(1)
    ).first()
    return barred is not None
