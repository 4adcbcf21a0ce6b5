"""One scheduler per ledger: APScheduler 3.x job stores must never be shared by two schedulers.

On SQLite (one machine) an exclusive file lock beside the database; on PostgreSQL a session
advisory lock (keyed by the ledger's schema, so ledgers in other schemas of one database do not
share it) held on a connection of its own, which the server releases when the daemon's
process or connection dies, so a standby daemon takes over within its polling interval.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

_ADVISORY_KEY = 872345002  # the migrations use ...001


class LeaderLock:
    def __init__(self, engine: Engine, home: Path) -> None:
        self.engine, self.home = engine, home
        self._file: Any = None
        self._connection: Connection | None = None

    @property
    def where(self) -> str:
        return ("a PostgreSQL advisory lock" if self.engine.dialect.name == "postgresql"
                else f"{self.home / 'daemon.lock'}")

    def try_acquire(self) -> bool:
        if self.engine.dialect.name == "postgresql":
            if self._connection is None:
                self._connection = self.engine.connect()
            got = bool(self._connection.execute(
                text("SELECT pg_try_advisory_lock(:key, hashtext(current_schema()))"),
                {"key": _ADVISORY_KEY}).scalar())
            self._connection.commit()
            return got
        self.home.mkdir(parents=True, exist_ok=True)
        handle = open(self.home / "daemon.lock", "a+")  # noqa: SIM115 - held while leading
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle
        return True

    def still_held(self) -> bool:
        """Whether this daemon still leads. On PostgreSQL the lock lives as long as its
        connection: when the server restarted or the connection broke, the lock is taken
        again on a new one, unless a standby took it meanwhile (False: stop scheduling).
        Raises when the database cannot be reached at all (leadership unknown)."""
        if self.engine.dialect.name != "postgresql":
            return self._file is not None  # a file lock cannot be lost while the file is open
        if self._connection is not None:
            try:
                held = self._connection.execute(text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND classid = :key AND objid::bigint = "
                    "(hashtext(current_schema())::bigint & 4294967295) "
                    "AND pid = pg_backend_pid()"), {"key": _ADVISORY_KEY}
                ).scalar()
                self._connection.commit()
                if held:
                    return True
            except Exception:  # the connection died with its lock: take a new one below
                pass
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None
        return self.try_acquire()

    def holder(self) -> str:
        """Who holds the file lock, for the error message (SQLite only)."""
        try:
            return (self.home / "daemon.lock").read_text().strip() or "unknown"
        except OSError:
            return "unknown"

    def wait(self, stop: threading.Event, poll_seconds: float = 5.0,
             on_poll: Callable[[], None] | None = None) -> bool:
        """As a standby: poll until leading (True) or stopped (False); a database out of reach
        is polled again."""
        while not stop.is_set():
            if on_poll is not None:
                on_poll()
            try:
                if self.try_acquire():
                    return True
            except Exception as exc:
                self._connection = None
                logging.getLogger(__name__).warning("standby: %s", str(exc).splitlines()[0])
            stop.wait(poll_seconds)
        return False

    def release(self) -> None:
        if self._connection is not None:
            try:
                self._connection.execute(
                    text("SELECT pg_advisory_unlock(:key, hashtext(current_schema()))"),
                    {"key": _ADVISORY_KEY})
                self._connection.commit()
            except Exception:
                pass  # the connection is gone, and its lock with it
            finally:
                self._connection.close()
                self._connection = None
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
