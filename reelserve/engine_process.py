"""The spawned child process that holds an engine and runs jobs in it.

The worker and this child exchange small typed messages over a pipe. A crash
or an out-of-memory kill takes down this child, never the worker. The engine
is built once per child and kept warm between jobs.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import signal
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any, Protocol

from reelserve.catalog import JobParams
from reelserve.engines import load_engine
from reelserve.engines.base import VoiceSample, declared_models
from reelserve.errors import EngineError, InputError, Interrupted, ReelserveError
from reelserve.media.inputs import ImageFetcher
from reelserve.processes import die_with_parent
from reelserve.settings_sections import EngineChildSettings
from reelserve.storage import open_storage


@dataclass(frozen=True)
class RunJob:
    job_id: str
    params: dict[str, Any]
    output_path: str
    voices: tuple[VoiceSample, ...] = ()


@dataclass(frozen=True)
class Ready:
    engine: str
    models: tuple[str, ...] | None = None  # what the engine declares it runs; None: all


@dataclass(frozen=True)
class Progress:
    fraction: float


@dataclass(frozen=True)
class Done:
    run_s: float


# Failed.status of a write to output storage that failed: not the job's fault,
# so the worker retries the attempt (and shows "storage error", not ``error``).
STORAGE_FAULT = 503


@dataclass(frozen=True)
class Failed:
    """A job that cannot succeed: ``status`` is 400 for bad inputs, 500 otherwise.

    ``STORAGE_FAULT`` marks an attempt that failed to write its output instead.
    """

    error: str
    status: int


@dataclass(frozen=True)
class LoadFailed:
    error: str


ChildEvent = Ready | Progress | Done | Failed | LoadFailed


def engine_main(settings: EngineChildSettings, conn: Connection, stop: Event) -> None:
    """Entry point of the child: load the engine, then run jobs until the pipe closes."""
    die_with_parent(signal.SIGKILL)  # no orphan renders on after its worker dies
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        engine = load_engine(settings.name, settings.engines)
    except ReelserveError as error:
        conn.send(LoadFailed(error.message))
        return
    # caps, deadline and the fetch allowlist; images sent inline come from input storage
    fetcher = ImageFetcher.from_settings(
        settings.fetch, read_input=open_storage(settings.storage).read_input)
    conn.send(Ready(engine.name, declared_models(engine)))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if isinstance(message, RunJob):
            conn.send(_run(engine, fetcher, message, conn, stop))


def _run(engine: Any, fetcher: ImageFetcher, job: RunJob, conn: Connection,
         stop: Event) -> ChildEvent:
    started = time.monotonic()
    params = JobParams.from_json(job.params)
    output = Path(job.output_path)
    last_sent = [0.0]

    def progress(fraction: float) -> None:
        now = time.monotonic()
        if now - last_sent[0] >= 0.2 or fraction >= 1.0:
            last_sent[0] = now
            conn.send(Progress(max(0.0, min(1.0, fraction))))

    try:
        inputs = dataclasses.replace(fetcher.load_inputs(params), voices=job.voices)
        engine.check_inputs(params, inputs)
        engine.generate(params, inputs, output, progress, stop.is_set)
    except InputError as error:
        return Failed(error.message, 400)
    except Interrupted as error:
        output.unlink(missing_ok=True)
        return Failed(error.message or "interrupted", 500)
    except EngineError as error:
        output.unlink(missing_ok=True)
        return Failed(error.message, 500)
    except Exception as error:  # the engine boundary: any bug becomes a FAILED job
        output.unlink(missing_ok=True)
        if _writing_output_failed(error, output):
            return Failed(f"writing {output} failed: {type(error).__name__}: {error}",
                          STORAGE_FAULT)
        return Failed(f"engine error: {type(error).__name__}: {error}", 500)
    return Done(time.monotonic() - started)


def _writing_output_failed(error: Exception, output: Path) -> bool:
    """An OS error on the output file, or its folder gone: storage, not the engine."""
    if not isinstance(error, OSError):
        return False
    return not output.parent.is_dir() or str(getattr(error, "filename", "")) == str(output)


class StopFlag(Protocol):
    def set(self) -> None: ...
    def clear(self) -> None: ...
    def is_set(self) -> bool: ...


class EngineHandle(Protocol):
    """What a worker needs of its engine: ``EngineProcess``, or another in a unit test."""

    @property
    def stop(self) -> StopFlag: ...
    @property
    def alive(self) -> bool: ...
    @property
    def exit_code(self) -> int | None: ...
    def start(self) -> Ready | LoadFailed: ...
    def send(self, job: RunJob) -> None: ...
    def next_event(self, timeout: float) -> ChildEvent | None: ...
    def kill(self) -> None: ...
    def close(self) -> None: ...


class EngineProcess:
    """The worker's handle on its engine child: start, send jobs, read events."""

    def __init__(self, settings: EngineChildSettings) -> None:
        self.settings = settings
        self._ctx = multiprocessing.get_context("spawn")
        self.stop = self._ctx.Event()
        self._conn: Connection | None = None
        self._process: Any = None

    def start(self) -> Ready | LoadFailed:
        parent, child = self._ctx.Pipe()
        self.stop.clear()
        self._process = self._ctx.Process(
            target=engine_main, args=(self.settings, child, self.stop),
            name="reelserve-engine", daemon=True,
        )
        self._process.start()
        child.close()
        self._conn = parent
        while True:
            event = self.next_event(timeout=1.0)
            if isinstance(event, Ready | LoadFailed):
                return event
            if event is None and not self.alive:
                return LoadFailed(f"engine process exited with code {self.exit_code}")

    @property
    def alive(self) -> bool:
        return self._process is not None and bool(self._process.is_alive())

    @property
    def exit_code(self) -> int | None:
        return None if self._process is None else self._process.exitcode

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def send(self, job: RunJob) -> None:
        assert self._conn is not None
        self.stop.clear()
        self._conn.send(job)

    def next_event(self, timeout: float) -> ChildEvent | None:
        """The next event, or None after ``timeout`` or when the child has died."""
        assert self._conn is not None
        try:
            if self._conn.poll(timeout):
                event: ChildEvent = self._conn.recv()
                return event
        except (EOFError, OSError):
            if self._process is not None:
                self._process.join(1.0)
        return None

    def kill(self) -> None:
        if self._process is not None and self._process.is_alive():
            self._process.kill()
            self._process.join(5.0)
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._process is not None:
            self._process.join(5.0)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(5.0)
