"""Run N worker processes beside the API and restart any that die."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading

from reelserve.processes import SUPERVISOR_PID_ENV
from reelserve.settings import Settings, settings_to_env

log = logging.getLogger("reelserve.supervisor")


class WorkerPool:
    def __init__(self, settings: Settings, count: int) -> None:
        self.settings = settings
        self.count = count
        self._processes: list[subprocess.Popen[bytes]] = []
        self._stopping = threading.Event()
        self._monitor: threading.Thread | None = None

    def _spawn(self) -> subprocess.Popen[bytes]:
        env = {**os.environ, **settings_to_env(self.settings),
               SUPERVISOR_PID_ENV: str(os.getpid())}
        return subprocess.Popen([sys.executable, "-m", "reelserve", "worker"], env=env)

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self._processes]

    def start(self) -> None:
        self._processes = [self._spawn() for _ in range(self.count)]
        self._monitor = threading.Thread(target=self._watch, name="worker-pool", daemon=True)
        self._monitor.start()

    def _watch(self) -> None:
        while not self._stopping.wait(0.5):
            for index, process in enumerate(self._processes):
                code = process.poll()
                if code is not None and not self._stopping.is_set():
                    log.warning("worker %d exited with %s; starting another", process.pid, code)
                    self._processes[index] = self._spawn()

    def stop(self, timeout_s: float = 15.0) -> None:
        self._stopping.set()
        for process in self._processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self._processes:
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
