"""Run N worker processes beside the API and restart any that die.

A worker that exits because its engine cannot load (exit code 3: no torch, no
weights) would fail the same way again, so it is not restarted; once every
worker has failed like that, the pool calls ``on_engine_unavailable`` (``serve``
then shuts down with the same exit code). Other deaths are restarted, with a
back-off that grows while they keep dying young.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from reelserve.processes import EXIT_ENGINE_UNAVAILABLE, SUPERVISOR_PID_ENV
from reelserve.settings import Settings, settings_to_env

log = logging.getLogger("reelserve.supervisor")
MIN_BACKOFF_S, MAX_BACKOFF_S = 0.5, 30.0


class WorkerPool:
    def __init__(self, settings: Settings, count: int,
                 on_engine_unavailable: Callable[[], None] | None = None) -> None:
        self.settings = settings
        self.count = count
        self.on_engine_unavailable = on_engine_unavailable
        self.engine_unavailable = False
        self._processes: list[subprocess.Popen[bytes] | None] = []
        self._started: list[float] = []
        self._backoff_s = MIN_BACKOFF_S
        self._stopping = threading.Event()
        self._monitor: threading.Thread | None = None

    def _spawn(self) -> subprocess.Popen[bytes]:
        env = {**os.environ, **settings_to_env(self.settings),
               SUPERVISOR_PID_ENV: str(os.getpid())}
        return subprocess.Popen([sys.executable, "-m", "reelserve", "worker"], env=env)

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self._processes if process is not None]

    def start(self) -> None:
        self._processes = [self._spawn() for _ in range(self.count)]
        self._started = [time.monotonic()] * self.count
        self._monitor = threading.Thread(target=self._watch, name="worker-pool", daemon=True)
        self._monitor.start()

    def _watch(self) -> None:
        while not self._stopping.wait(0.5):
            for index, process in enumerate(self._processes):
                code = None if process is None else process.poll()
                if process is None or code is None or self._stopping.is_set():
                    continue
                if code == EXIT_ENGINE_UNAVAILABLE:
                    log.error("worker %d cannot load its engine (see its message); "
                              "not restarting it", process.pid)
                    self._processes[index] = None
                    continue
                self._restart(index, process.pid, code)
            if self._processes and all(process is None for process in self._processes):
                self.engine_unavailable = True
                if self.on_engine_unavailable is not None:
                    self.on_engine_unavailable()
                return

    def _restart(self, index: int, pid: int, code: int) -> None:
        lived = time.monotonic() - self._started[index]
        self._backoff_s = MIN_BACKOFF_S if lived > 60 else min(self._backoff_s * 2,
                                                               MAX_BACKOFF_S)
        log.warning("worker %d exited with %s after %.0f s; starting another in %.1f s",
                    pid, code, lived, self._backoff_s)
        if self._stopping.wait(self._backoff_s):
            return
        self._processes[index] = self._spawn()
        self._started[index] = time.monotonic()

    def stop(self, timeout_s: float = 15.0) -> None:
        self._stopping.set()
        running = [process for process in self._processes if process is not None]
        for process in running:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in running:
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
