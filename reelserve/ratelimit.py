"""A per-key fixed-window limit on submits, kept in the API process."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from reelserve.errors import RateLimited


class RateLimiter:
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
