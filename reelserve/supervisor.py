"""Run N worker processes beside the API and restart any that die.

Each worker may be pinned to one GPU (``reelserve/gpus.py``). Workers run in
their own process group, so a Ctrl-C in the terminal reaches ``serve`` alone,
which then stops them in order instead of watching them die.

A worker that exits because its engine cannot load (exit code 3: no torch, no
weights) would fail the same way again, so it is not restarted; once every
worker has failed like that, the pool calls ``on_engine_unavailable`` (``serve``
then shuts down with the same exit code). Other deaths are restarted, with a
back-off that grows while they keep dying young.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from reelserve.gpus import pinned_env
from reelserve.metrics_dir import MULTIPROC_ENV
from reelserve.processes import EXIT_ENGINE_UNAVAILABLE, SUPERVISOR_PID_ENV
from reelserve.settings import Settings, settings_to_env

log = logging.getLogger("reelserve.supervisor")
MIN_BACKOFF_S, MAX_BACKOFF_S = 0.5, 30.0


def worker_id_of(pid: int) -> str:
    """The id a worker started on this host reports in its heartbeats."""
    return f"{socket.gethostname()}:{pid}"


class WorkerPool:
    def __init__(self, settings: Settings, gpus: tuple[int | None, ...],
                 on_engine_unavailable: Callable[[], None] | None = None) -> None:
        """One worker per entry of ``gpus``: the GPU it is pinned to, or None."""
        self.settings = settings
        self.gpus = gpus
        self.on_engine_unavailable = on_engine_unavailable
        self.engine_unavailable = False
        self._processes: list[subprocess.Popen[bytes] | None] = []
        self._started: list[float] = []
        self._backoff_s = MIN_BACKOFF_S
        self._stopping = threading.Event()
        self._monitor: threading.Thread | None = None

    @property
    def count(self) -> int:
        return len(self.gpus)

    def _spawn(self, index: int) -> subprocess.Popen[bytes]:
        gpu = self.gpus[index]
        settings = self.settings
        if gpu is not None:
            # The pinned GPU is the only one the engine sees: cuda:N would not exist.
            device = "cuda" if settings.ltx2_device.startswith("cuda:") else settings.ltx2_device
            settings = replace(settings, worker_gpu=str(gpu), ltx2_device=device)
        env = {**os.environ, **settings_to_env(settings), **pinned_env(gpu),
               SUPERVISOR_PID_ENV: str(os.getpid())}
        return subprocess.Popen([sys.executable, "-m", "reelserve", "worker"], env=env,
                                process_group=0)

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self._processes if process is not None]

    @property
    def worker_ids(self) -> list[str]:
        return [worker_id_of(pid) for pid in self.pids]

    def start(self) -> None:
        self._processes = [self._spawn(index) for index in range(self.count)]
        self._started = [time.monotonic()] * self.count
        self._monitor = threading.Thread(target=self._watch, name="worker-pool", daemon=True)
        self._monitor.start()

    def _watch(self) -> None:
        while not self._stopping.wait(0.5):
            for index, process in enumerate(self._processes):
                code = None if process is None else process.poll()
                if process is None or code is None or self._stopping.is_set():
                    continue
                _forget_metrics_of(process.pid)
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
        self._processes[index] = self._spawn(index)
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
            _forget_metrics_of(process.pid)


def _forget_metrics_of(pid: int) -> None:
    """Drop a dead worker's live gauges (its GPU) from what /metrics reports."""
    if not os.environ.get(MULTIPROC_ENV):
        return
    from prometheus_client import multiprocess

    with contextlib.suppress(OSError):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
