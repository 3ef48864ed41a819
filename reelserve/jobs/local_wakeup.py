"""Wake idle workers of a SQLite store at once: a named pipe beside the database file.

Every process that shares the SQLite file runs on one machine, so a FIFO is the
signal: a submit writes a byte, idle workers sleep in ``select`` on it and wake
when it becomes readable. A lost byte costs nothing but latency, since workers
also look at the queue once per ``timeout_s`` whatever happens. Where a FIFO
cannot be made (a filesystem without them), waiting falls back to short sleeps.
"""

from __future__ import annotations

import contextlib
import os
import select
import stat
import time
from pathlib import Path

FALLBACK_POLL_S = 0.05
MAX_TOKENS = 64


class LocalWakeup:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._reader: int | None = None
        self._writer: int | None = None  # held open so an idle FIFO never reads as EOF
        self._usable = True

    def signal(self, count: int = 1) -> None:
        """Wake up to ``count`` idle waiters (cheap; nothing happens when none waits)."""
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # no FIFO yet or no reader: nobody is waiting
            return
        try:
            os.write(fd, b"\0" * max(1, min(count, MAX_TOKENS)))
        except BlockingIOError:  # the pipe is full: waiters have plenty to wake on
            pass
        finally:
            os.close(fd)

    def wait(self, timeout_s: float) -> None:
        """Return after a signal, or after ``timeout_s``."""
        if not self._open():
            time.sleep(min(timeout_s, FALLBACK_POLL_S))
            return
        assert self._reader is not None
        ready, _, _ = select.select([self._reader], [], [], timeout_s)
        if ready:
            with contextlib.suppress(BlockingIOError):
                os.read(self._reader, MAX_TOKENS)

    def _open(self) -> bool:
        if self._reader is not None or not self._usable:
            return self._usable
        try:
            with contextlib.suppress(FileExistsError):
                os.mkfifo(self.path, 0o600)
            if not stat.S_ISFIFO(os.stat(self.path).st_mode):
                raise IsADirectoryError(f"{self.path} is not a FIFO")
            self._reader = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
            self._writer = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            self._usable = False
        return self._usable

    def close(self) -> None:
        for fd in (self._reader, self._writer):
            if fd is not None:
                os.close(fd)
        self._reader = self._writer = None
