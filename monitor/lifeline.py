"""Child processes that die with their parent.

A daemon killed with ``kill -9`` (or the OOM killer) cannot stop its children; a crawl child
left running would then overlap the crawl the restarted daemon starts. On Linux a child asks the
kernel (``prctl(PR_SET_PDEATHSIG, SIGKILL)``) to be killed when its parent dies, and exits at
once if the parent is gone already. Elsewhere this is a no-op. (The signal is tied to the
parent's thread that started the child; the daemon's job threads live as long as the daemon.)
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal

ENV = "COPYGUARD_PARENT_PID"  # set by a parent for its `python -m monitor` children
_PR_SET_PDEATHSIG = 1
_started_by: int | None = None  # the parent's pid when this process is such a child


def child_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` for a child that is to die with this process."""
    return {**env, ENV: str(os.getpid())}


def die_with_parent(parent_pid: int | None = None) -> None:
    """Be killed when the parent dies. ``parent_pid`` defaults to the one the parent put in the
    environment (then removed from it, so that this process's own children do not inherit
    it); without either, nothing is done."""
    if parent_pid is None:
        global _started_by
        value = os.environ.pop(ENV, "")
        if not value.isdigit():
            return
        parent_pid = _started_by = int(value)
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return  # not Linux: children outlive a killed parent there
    if os.getppid() != parent_pid:  # it died before the request was made
        os._exit(1)


def started_by_a_copyguard_process() -> bool:
    """Whether a daemon or worker started this process (a crawl or re-check child): such a
    child leaves the config file's targets to the leading daemon, which synced them."""
    return _started_by is not None
