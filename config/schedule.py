"""Schedules of targets: ``every 6h`` (an interval) or a five-field cron line.

Parsed here so a bad schedule is a configuration error at start-up naming the target, not a
failure of the daemon hours later; the daemon turns the result into an APScheduler trigger.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from apscheduler.triggers.cron import CronTrigger

_EVERY = re.compile(r"^every\s+(\d+(?:\.\d+)?)\s*(s|m|h|d|w)$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MIN_INTERVAL = timedelta(minutes=1)  # anything more frequent is a mistake, not a policy


@dataclass(frozen=True)
class Schedule:
    text: str
    interval: timedelta | None = None  # "every ..." schedules
    cron: str | None = None  # cron schedules (minute hour day month weekday)


def parse_schedule(text: str) -> Schedule:
    """``every 30m``/``every 6h``/``every 1d``/``every 2w``, or a cron line such as
    ``0 */6 * * *``. Raises ValueError saying what is wrong."""
    cleaned = " ".join(text.split())
    every = _EVERY.match(cleaned)
    if every:
        interval = timedelta(seconds=float(every.group(1)) * _UNIT_SECONDS[every.group(2).lower()])
        if interval < MIN_INTERVAL:
            raise ValueError(f"schedule {text!r} is more often than every minute")
        return Schedule(cleaned, interval=interval)
    if len(cleaned.split(" ")) == 5:
        try:
            CronTrigger.from_crontab(cleaned, timezone="UTC")
        except ValueError as exc:
            raise ValueError(f"schedule {text!r} is not a valid cron line: {exc}") from None
        return Schedule(cleaned, cron=cleaned)
    raise ValueError(f"schedule {text!r} is neither 'every <n><s|m|h|d|w>' "
                     "nor a five-field cron line")
