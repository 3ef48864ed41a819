"""Queue positions on SQLite at a bounded cost per poll, however long the queue.

SQLite counts an index range one entry at a time, so counting the jobs ahead of
a job costs O(its position). A poll counts at most ``EXACT_PLACES`` entries, so
the first places are always exact; a job further back reads its place from
``DeepPlaces``, one ordered scan of the queue shared by every poll of the process
and taken again once it is ``max_age_s`` old (or when it lacks the job). Polls of
deep jobs thus cost O(1) each, plus one O(queue) scan per ``max_age_s`` at most:
a place past ``EXACT_PLACES`` may be that much behind the queue.
"""

from __future__ import annotations

import sqlite3
import threading
import time

EXACT_PLACES = 1000
MIN_RESCAN_S = 0.05  # a job missing from the scan is looked for again no sooner


def order_by(fair: bool) -> tuple[str, str]:
    """The queue's order: (ORDER BY columns, the row value a job is compared with)."""
    return ("fair_tag, seq", "(fair_tag, seq)") if fair else ("seq", "seq")


class DeepPlaces:
    """Places of queued jobs from one scan of the queue, at most ``max_age_s`` old."""

    def __init__(self, max_age_s: float = 0.5) -> None:
        self.max_age_s = max_age_s
        self._lock = threading.Lock()
        self._places: dict[str, int] = {}
        self._taken_at = float("-inf")
        self._fair = True

    def place(self, db: sqlite3.Connection, job_id: str, fair: bool) -> int | None:
        with self._lock:
            age = time.monotonic() - self._taken_at
            stale = age > self.max_age_s or fair != self._fair
            if stale or (job_id not in self._places and age > MIN_RESCAN_S):
                self._scan(db, fair)
            return self._places.get(job_id)

    def _scan(self, db: sqlite3.Connection, fair: bool) -> None:
        columns, _ = order_by(fair)
        rows = db.execute(f"SELECT id FROM jobs WHERE state = 'QUEUED' ORDER BY {columns}")
        self._places = {row[0]: place for place, row in enumerate(rows, start=1)}
        self._taken_at = time.monotonic()
        self._fair = fair


def queue_position(db: sqlite3.Connection, deep: DeepPlaces, job_id: str,
                   fair: bool) -> int | None:
    """1 for the next job to run (caps and routing aside); None unless the job is QUEUED."""
    row = db.execute("SELECT seq, fair_tag FROM jobs WHERE id = ? AND state = 'QUEUED'",
                     (job_id,)).fetchone()
    if row is None:
        return None
    # A row-value comparison, so SQLite walks the index range (an OR would scan it all).
    _, compared = order_by(fair)
    mine = "(?, ?)" if fair else "?"
    args = (row["fair_tag"], row["seq"]) if fair else (row["seq"],)
    ahead = int(db.execute(
        "SELECT COUNT(*) FROM (SELECT 1 FROM jobs WHERE state = 'QUEUED'"
        f" AND {compared} < {mine} LIMIT ?)", (*args, EXACT_PLACES)).fetchone()[0])
    if ahead < EXACT_PLACES:
        return ahead + 1
    return deep.place(db, job_id, fair) or ahead + 1
