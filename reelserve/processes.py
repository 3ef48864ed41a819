"""Process helpers shared by the worker pool and the engine child."""

from __future__ import annotations

import ctypes
import os
import sys

PR_SET_PDEATHSIG = 1
SUPERVISOR_PID_ENV = "REELSERVE_SUPERVISOR_PID"
EXIT_ENGINE_UNAVAILABLE = 3  # `reelserve worker` (and `serve`) when the engine cannot load
EXIT_CANNOT_START = 3  # `reelserve serve` when it cannot listen on its address
EXIT_INTERRUPTED = 130  # stopped by Ctrl-C (or SIGTERM) before it was serving


def die_with_parent(signum: int, parent_pid: int | None = None) -> None:
    """Ask Linux to send ``signum`` to this process when its parent dies.

    With ``parent_pid`` given, exit at once if the parent is already gone (the
    signal would never come). Elsewhere than Linux this does nothing.
    """
    if not sys.platform.startswith("linux"):
        return
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signum)
    if parent_pid is not None and os.getppid() != parent_pid:
        os.kill(os.getpid(), signum)


def supervised_by() -> int | None:
    """The pid of the `reelserve serve` that started this worker, if one did."""
    value = os.environ.get(SUPERVISOR_PID_ENV, "")
    return int(value) if value.isdigit() else None


__all__ = ["EXIT_CANNOT_START", "EXIT_ENGINE_UNAVAILABLE", "EXIT_INTERRUPTED", "SUPERVISOR_PID_ENV",
           "die_with_parent", "supervised_by"]
