"""A sliding-window rate limit kept in this process's memory.

One ``copyguard serve`` process answers a console; the counts need not be shared between
machines (a login guessed on two servers at once is still at most twice as fast). Entries are
dropped once their window has passed, so memory stays bounded by the callers of the last minute.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class RateLimit:
    def __init__(self, limit: int, window_seconds: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window_seconds
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._swept = clock()

    def hit(self, key: str) -> float:
        """Count one request of ``key``: 0.0 if allowed, else seconds until one would be."""
        now = self._clock()
        with self._lock:
            if now - self._swept >= 1.0:  # a sweep a second, not one a request
                self._forget(now)
                self._swept = now
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(hits[0] + self.window - now, 0.001)
            hits.append(now)
            return 0.0

    def _forget(self, now: float) -> None:
        for key in [k for k, hits in self._hits.items()
                    if not hits or hits[-1] <= now - self.window]:
            del self._hits[key]
