"""The outbox's claim subquery built with new ``aliased()`` objects per claim, or with aliases
made once: how much memory Python still holds afterwards (tracemalloc's traced total).

Run as ``python -m bench.alias_churn per-call|fixed [CLAIMS]`` (default 3000, after 300
warm-up claims) on a scratch SQLite ledger; prints one line. Reads no settings. Figures in
BENCHMARKS.md ("Where the growth is allocated").
"""

from __future__ import annotations

import sys
import tempfile
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import aliased

from ledger.clock import FixedClock
from ledger.db import Ledger, open_ledger
from ledger.models import DeliveryAttempt, Notice

NOW = datetime(2026, 1, 1, tzinfo=UTC)
WARMUP = 300
_FIXED: tuple[Any, Any] = (aliased(Notice), aliased(DeliveryAttempt))


def claim(ledger: Ledger, per_call: bool) -> None:
    other, attempt = (aliased(Notice), aliased(DeliveryAttempt)) if per_call else _FIXED
    recent = (select(attempt.id).join(other, attempt.notice_id == other.id)
              .where(other.recipient_key == Notice.recipient_key,
                     attempt.started_at > NOW - timedelta(hours=1)))
    with ledger.read() as session:
        session.execute(select(Notice.id).where(~recent.exists()).limit(5)).all()


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("per-call", "fixed"):
        print(__doc__, file=sys.stderr)
        return 2
    per_call, claims = argv[0] == "per-call", int(argv[1]) if len(argv) > 1 else 3000
    with tempfile.TemporaryDirectory() as scratch:
        ledger = open_ledger(f"sqlite:///{Path(scratch) / 'ledger.db'}", clock=FixedClock(NOW))
        for _ in range(WARMUP):
            claim(ledger, per_call)
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(claims):
            claim(ledger, per_call)
        grown = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        ledger.close()
    print(f"{argv[0]}: +{grown / 1024:.0f} KiB held after {claims} claims "
          f"({WARMUP} warm-up claims first)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
