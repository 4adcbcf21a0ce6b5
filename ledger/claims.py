"""Who holds a claim on a unit of work, and whether that process is still there.

Every stage that leases work (captures, notices, queued stage runs) records the claimant as
``host:pid``. A lease is the general rule (it runs out, whatever happened to the claimant); on
the claimant's own host a process that is gone (``kill -9``, a crash) is recognised at once, so
its work is taken up without waiting for the lease.
"""

from __future__ import annotations

import os
import socket


def worker_name() -> str:
    """``host:pid`` of this process: what a claim is recorded under."""
    return f"{socket.gethostname()}:{os.getpid()}"


def claimant_gone(claimed_by: str | None) -> bool:
    """True when ``claimed_by`` names a process of this host that no longer runs. A pid reused
    since reads as alive: the lease then decides, which errs only on the late side."""
    host, _, pid = (claimed_by or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False
