"""What ``reelserve serve`` makes sure of before it announces anything.

The port is bound first and the engine loaded in at least one worker next, so the
first key and ``Serving on ...`` are printed only by a server that will answer.
"""

from __future__ import annotations

import signal
import socket
import threading
import time
from types import FrameType

import typer
from rich.console import Console

from reelserve.jobs import JobStore
from reelserve.processes import EXIT_CANNOT_START, EXIT_ENGINE_UNAVAILABLE, EXIT_INTERRUPTED
from reelserve.settings import Settings
from reelserve.supervisor import WorkerPool

ENGINE_POLL_S = 0.1
QUIET_LOAD_S = 2.0  # say "loading" only when it takes longer than this


def listen_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (uvicorn listens on it); exit 3 if that fails."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        Console(stderr=True).print(
            f"[red]error:[/red] cannot listen on {host}:{port}: {error.strerror or error} "
            "(pass --port or --host, or stop what uses it)", soft_wrap=True)
        raise typer.Exit(EXIT_CANNOT_START) from None
    return sock


def wait_for_engine(pool: WorkerPool, store: JobStore, settings: Settings,
                    console: Console) -> None:
    """Return once a worker of ``pool`` has loaded its engine and reported in.

    Exits 3 when no worker can load it, 130 on Ctrl-C or SIGTERM meanwhile. A
    pool of no workers (they run elsewhere) has nothing to wait for.
    """
    if pool.count == 0:
        return
    interrupted = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        interrupted.set()

    previous = {signum: signal.signal(signum, on_signal)
                for signum in (signal.SIGINT, signal.SIGTERM)}
    started, announced = time.monotonic(), False
    try:
        while not _engine_ready(pool, store, settings):
            if pool.engine_unavailable:
                Console(stderr=True).print(
                    f"[red]error:[/red] the {settings.engine} engine cannot load in any "
                    "worker (see above)", soft_wrap=True)
                raise typer.Exit(EXIT_ENGINE_UNAVAILABLE)
            if interrupted.wait(ENGINE_POLL_S):
                raise typer.Exit(EXIT_INTERRUPTED)
            if not announced and time.monotonic() - started > QUIET_LOAD_S:
                console.print(f"loading the {settings.engine} engine in {pool.count} "
                              "worker(s)…")
                announced = True
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _engine_ready(pool: WorkerPool, store: JobStore, settings: Settings) -> bool:
    """A worker sends its first heartbeat after its engine child has loaded."""
    ours = set(pool.worker_ids)
    fresh_since = store.now() - settings.worker_stale_s
    return any(worker.id in ours and worker.last_seen >= fresh_since
               for worker in store.list_workers())
