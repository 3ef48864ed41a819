"""Per-key fixed-window limits on submits: in one API process, or shared through Redis."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Protocol

from reelserve.errors import RateLimited


class RateLimiter(Protocol):
    def hit(self, key_id: int) -> None:
        """Count one submit for ``key_id``; raise ``RateLimited`` past the limit."""
        ...


class SharedWindowCounter(Protocol):
    def hit_rate_limit(self, key_id: int, limit: int, window_s: float) -> None: ...


class SharedRateLimiter:
    """The limit kept in the shared store, so all API servers count together."""

    def __init__(self, counter: SharedWindowCounter, limit: int, window_s: float) -> None:
        self.counter = counter
        self.limit = limit
        self.window_s = window_s

    def hit(self, key_id: int) -> None:
        if self.limit > 0:
            self.counter.hit_rate_limit(key_id, self.limit, self.window_s)


class LocalRateLimiter:
    """The limit kept in this process: right for one API server."""

    def __init__(self, limit: int, window_s: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._windows: dict[int, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def hit(self, key_id: int) -> None:
        """Count one submit for ``key_id``; raise ``RateLimited`` past the limit."""
        if self.limit <= 0:
            return
        now = self._clock()
        start = math.floor(now / self.window_s) * self.window_s
        with self._lock:
            window_start, count = self._windows.get(key_id, (start, 0))
            if window_start != start:
                window_start, count = start, 0
            if count >= self.limit:
                raise RateLimited(self.limit, self.window_s, window_start + self.window_s)
            self._windows[key_id] = (window_start, count + 1)
