"""Logging: JSON lines when not on a terminal, readable lines on one.

Lines about a job carry ``request_id``, ``model``, ``attempt`` and ``engine``
(pass them with ``extra=job_fields(...)``), so one search by request id finds
a job's whole story across the API and the workers. API keys never reach a
log; where a key matters, its display prefix does.
"""

from __future__ import annotations

import atexit
import json
import logging
import logging.handlers
import queue
import sys
import threading
from datetime import UTC, datetime
from typing import Any, TextIO

# How often the writer thread wakes to format and write what was logged meanwhile.
FLUSH_S = 0.05
# Attributes a LogRecord gets from ``extra=`` that the formatters show.
FIELDS = ("request_id", "model", "attempt", "engine", "worker", "key_prefix", "status")


def job_fields(request_id: str, model: str, attempt: int, engine: str) -> dict[str, Any]:
    return {"request_id": request_id, "model": model, "attempt": attempt, "engine": engine}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            if hasattr(record, name):
                line[name] = getattr(record, name)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, ensure_ascii=False)


class ReadableFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        tags = " ".join(f"{name}={getattr(record, name)}" for name in FIELDS
                        if hasattr(record, name))
        return f"{text}  [{tags}]" if tags else text


def configure_logging(stream: TextIO | None = None, level: int = logging.INFO) -> None:
    """Send reelserve's and uvicorn's logs to ``stream`` (stderr) in the right format.

    Records are formatted and written by a background thread: a request handler
    that logs only puts the record on a queue, and never waits on the write. The
    thread wakes every ``FLUSH_S`` and writes everything queued in one go, so a
    busy server does not hand the GIL to it for every line.
    """
    stream = stream or sys.stderr
    formatter = ReadableFormatter() if stream.isatty() else JsonFormatter()
    # The formatters show no caller, thread or process, so records need not look them
    # up: the switches of the logging HOWTO's "Optimization" section. The caller's
    # frame walk alone was a fifth of a submit's log line.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    writer = _BatchWriter(records, formatter, stream)
    writer.start()
    atexit.register(writer.stop)  # flushes what is still queued
    root = logging.getLogger()
    root.handlers[:] = [_QueueHandler(records)]
    root.setLevel(level)


class _BatchWriter:
    """Formats and writes queued records in batches on its own thread."""

    def __init__(self, records: queue.SimpleQueue[logging.LogRecord],
                 formatter: logging.Formatter, stream: TextIO) -> None:
        self.records, self.formatter, self.stream = records, formatter, stream
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reelserve-log-writer",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stopping.wait(FLUSH_S):
            self._write_queued()
        self._write_queued()

    def _write_queued(self) -> None:
        lines = []
        while True:
            try:
                lines.append(self.formatter.format(self.records.get_nowait()))
            except queue.Empty:
                break
        if lines:
            try:
                self.stream.write("\n".join(lines) + "\n")
                self.stream.flush()
            except (OSError, ValueError):  # the stream went away: drop, never crash
                pass


class _QueueHandler(logging.handlers.QueueHandler):
    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        # The stock prepare() formats the message here, in the caller's thread;
        # only the exception text must be rendered now (tracebacks do not queue).
        if record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        return record
