"""Fair scheduling on the SQLite store: weighted round robin across keys, caps, routing.

Each queued job carries a tag in the scheduler's virtual time (start-time fair
queueing): a key's next job is tagged ``max(vtime, key's last tag) + 1 / weight``
and workers claim the smallest tag they may run. So keys with work waiting take
turns (a key of weight 2 twice as often), a key that was idle re-enters at the
current virtual time instead of cashing in its idle time, and within a key jobs
run oldest first. ``vtime`` is the tag of the last job claimed.
"""

from __future__ import annotations

import sqlite3

from reelserve.errors import QueueFull
from reelserve.jobs.records import JobOrder
from reelserve.jobs.sqlite_schema import FAIR_SCHEDULING_COLUMNS, FAIR_SCHEDULING_DDL

# A /v1 job goes just ahead of its key's first queued job.
SYNC_LEAD = 1e-6


def add_fair_scheduling(db: sqlite3.Connection) -> None:
    """Migration 3: the fair-scheduling columns, table and indexes.

    Jobs queued before it keep their order ahead of later ones (tag 0) and get
    their model from their params.
    """
    for table, column, declaration in FAIR_SCHEDULING_COLUMNS:
        have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if column not in have:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
    for statement in filter(str.strip, FAIR_SCHEDULING_DDL.split(";")):
        db.execute(statement)  # one by one: executescript would commit mid-transaction
    db.execute("UPDATE jobs SET slug = json_extract(params, '$.slug') WHERE slug = ''")


def check_queue_cap(db: sqlite3.Connection, key: sqlite3.Row) -> None:
    """Raise ``QueueFull`` when the key already has ``max_queued`` jobs waiting."""
    cap = int(key["max_queued"])
    if cap <= 0:
        return
    waiting = db.execute("SELECT COUNT(*) FROM jobs WHERE key_id = ? AND state = 'QUEUED'",
                         (key["id"],)).fetchone()[0]
    if int(waiting) >= cap:
        raise QueueFull(cap)


def virtual_time(db: sqlite3.Connection) -> float:
    """The tag of the last job claimed; only a claim moves it."""
    return float(db.execute("SELECT vtime FROM fair_clock WHERE id = 0").fetchone()[0])


def next_tag(db: sqlite3.Connection, key: sqlite3.Row, order: JobOrder,
             vtime: float) -> tuple[float, float]:
    """The new job's tag, and the key's last tag after it (moved on by one turn).

    The two differ for a /v1 job, which goes ahead of the key's queued jobs without
    taking their turns. The caller writes the key's last tag.
    """
    tag = max(vtime, float(key["last_tag"])) + 1.0 / float(key["weight"])
    if order.sync:
        first = db.execute("SELECT MIN(fair_tag) FROM jobs WHERE key_id = ? AND state = 'QUEUED'",
                           (key["id"],)).fetchone()[0]
        if first is not None and float(first) <= tag:
            return float(first) - SYNC_LEAD, tag
    return tag, tag


def pick_job(db: sqlite3.Connection, models: tuple[str, ...] | None,
             fair: bool) -> sqlite3.Row | None:
    """The queued job a worker serving ``models`` takes next, skipping keys at their cap."""
    capped = [row[0] for row in db.execute(
        "SELECT k.id FROM keys k JOIN jobs j ON j.key_id = k.id AND j.state = 'PROCESSING'"
        " WHERE k.max_concurrent > 0 GROUP BY k.id HAVING COUNT(*) >= k.max_concurrent")]
    where, args = ["state = 'QUEUED'"], []
    if capped:
        where.append(f"key_id NOT IN ({','.join('?' * len(capped))})")
        args += capped
    if models is not None:
        where.append(f"slug IN ({','.join('?' * len(models))})")
        args += list(models)
    order = "fair_tag, seq" if fair else "seq"
    row: sqlite3.Row | None = db.execute(
        "SELECT id, attempt, params, created_at, fair_tag FROM jobs"
        f" WHERE {' AND '.join(where)} ORDER BY {order} LIMIT 1", args).fetchone()
    return row


def advance_clock(db: sqlite3.Connection, tag: float) -> None:
    db.execute("UPDATE fair_clock SET vtime = MAX(vtime, ?) WHERE id = 0", (tag,))


def queued_by_model(db: sqlite3.Connection) -> dict[str, int]:
    return {row[0]: int(row[1]) for row in db.execute(
        "SELECT slug, COUNT(*) FROM jobs WHERE state = 'QUEUED' GROUP BY slug")}
