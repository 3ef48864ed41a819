"""Run one function on untrusted bytes in a short-lived child process, under limits.

The API process never decodes a stranger's media itself: a decoder bug, a
pathological file or a decompression bomb then costs one child at most
``ChildLimits`` (CPU seconds and address space, set with ``setrlimit`` in the
child, and wall-clock seconds, enforced by the parent, which kills it), never
the server's memory or event loop. The child is spawned fresh (no state shared
with the server's threads), dies with its parent, and may not write files.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import resource
import signal
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from reelserve.errors import ChildLimitExceeded
from reelserve.processes import die_with_parent

T = TypeVar("T")


@dataclass(frozen=True)
class ChildLimits:
    cpu_s: int
    memory_bytes: int  # address space added to what the child holds once started
    wall_s: float


def run_limited(function: Callable[..., T], args: tuple[Any, ...], limits: ChildLimits) -> T:
    """``function(*args)`` in a spawned child under ``limits``; its return value.

    ``function`` must be importable by name and return something picklable; an
    exception inside it, a limit passed or a crash raise ``ChildLimitExceeded``.
    """
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_child_main, args=(child, function, args, limits),
                          name="reelserve-sandbox", daemon=True)
    process.start()
    child.close()
    try:
        if not parent.poll(limits.wall_s):
            raise ChildLimitExceeded(_death_reason(process, limits))
        status, value = parent.recv()
    except (EOFError, OSError) as error:
        raise ChildLimitExceeded(_death_reason(process, limits)) from error
    finally:
        parent.close()
        if process.is_alive():
            process.kill()
        process.join(5.0)
    if status != "ok":
        raise ChildLimitExceeded(str(value))
    result: T = value
    return result


def _death_reason(process: Any, limits: ChildLimits) -> str:
    process.join(0.2)
    code = process.exitcode
    if code is None:
        return f"took longer than {limits.wall_s:g} s"
    if code == -signal.SIGXCPU or code == -signal.SIGKILL:
        return f"used more than {limits.cpu_s} s of CPU"
    return f"the decoder crashed (exit code {code})"


def _child_main(conn: Connection, function: Callable[..., Any], args: tuple[Any, ...],
                limits: ChildLimits) -> None:
    die_with_parent(signal.SIGKILL)
    _apply_limits(limits)
    try:
        outcome: tuple[str, Any] = ("ok", function(*args))
    except MemoryError:
        outcome = ("failed", f"needed more than {limits.memory_bytes // 2**20} MB of memory")
    except Exception as error:  # the child's boundary: report, never hang the parent
        outcome = ("failed", f"{type(error).__name__}: {error}")
    with contextlib.suppress(OSError):
        conn.send(outcome)
    conn.close()


def _apply_limits(limits: ChildLimits) -> None:
    # SIGXCPU at the soft limit, SIGKILL a second later if it is ignored.
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 1))
    held = _address_space_bytes()
    ceiling = held + limits.memory_bytes
    resource.setrlimit(resource.RLIMIT_AS, (ceiling, ceiling))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _address_space_bytes() -> int:
    """The child's virtual size now (libraries mapped at start count for nothing)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0
