"""The counter-notice windows and the re-check verdicts, as pure rules."""

from __future__ import annotations

from datetime import date

import pytest

from ledger.models import ItemStatus, UrlCheck
from takedown.counter import RULES, add_business_days
from takedown.followup import judge


@pytest.mark.parametrize(("received", "days", "expected"), [
    (date(2026, 12, 2), 10, date(2026, 12, 16)),  # a Wednesday: two weekends skipped
    (date(2026, 12, 2), 14, date(2026, 12, 22)),
    (date(2026, 12, 5), 1, date(2026, 12, 7)),  # received on a Saturday: Monday is day one
    (date(2026, 12, 4), 0, date(2026, 12, 4)),
])
def test_business_days_skip_weekends(received: date, days: int, expected: date) -> None:
    assert add_business_days(received, days) == expected


def test_each_jurisdiction_has_its_counter_notice_rule() -> None:
    assert RULES["dmca"].putback_business_days == (10, 14) and not RULES["dmca"].bars_renotice
    assert RULES["prc"].putback_business_days is None and RULES["prc"].bars_renotice
    assert RULES["dsa"].putback_business_days is None


def _check(status: int | None, sha256: str | None = None) -> UrlCheck:
    return UrlCheck(http_status=status, sha256=sha256, error=None if status else "refused")


@pytest.mark.parametrize(("check", "verdict"), [
    (_check(404), ItemStatus.REMOVED),
    (_check(410), ItemStatus.REMOVED),
    (_check(451), ItemStatus.REMOVED),
    (_check(200, "a" * 64), ItemStatus.STILL_UP),  # the same bytes as captured
    (_check(200, "b" * 64), ItemStatus.REMOVED),  # something else is served there now
    (_check(403), None),  # forbidden to us is not removed for everyone
    (_check(503), None),
    (_check(None), None),  # no answer proves nothing
    (None, None),
])
def test_a_recheck_proves_removal_only_by_a_gone_status_or_other_bytes(
        check: UrlCheck | None, verdict: str | None) -> None:
    assert judge(check, "a" * 64) == verdict
