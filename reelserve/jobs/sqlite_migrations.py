"""Versions of the SQLite store's schema and the ordered migrations between them.

The version lives in the file's header (``PRAGMA user_version``). 0 is a file
made before versions existed (release 0.1.0 or a build before it); version N is
reached by running migration N. Each migration runs in its own ``BEGIN
IMMEDIATE`` transaction together with the version bump, so a crash between two
leaves the file at the earlier version, never half-way; and because every
process opening the file checks the version inside that transaction, two
processes starting together migrate it once.

A new schema change is a new function appended to ``MIGRATIONS``; a released
migration is never edited.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from reelserve.errors import StoreTooNew
from reelserve.jobs.sqlite_schema import BASELINE_SCHEMA


def _baseline(db: sqlite3.Connection) -> None:
    """Version 1, the 0.1.0 layout: create missing tables, add missing columns.

    Builds before 0.1.0 created their tables without columns added later
    (``CREATE TABLE IF NOT EXISTS`` does not add them); each missing column is
    added with the type and default 0.1.0 declares.
    """
    for statement in _statements(BASELINE_SCHEMA):
        db.execute(statement)
    model = sqlite3.connect(":memory:")
    try:
        model.executescript(BASELINE_SCHEMA)
        tables = [row[0] for row in model.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        for table in tables:
            present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
            for _, name, kind, _notnull, default, _pk in model.execute(
                    f"PRAGMA table_info({table})"):
                if name not in present:
                    extra = "" if default is None else f" NOT NULL DEFAULT {default}"
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}{extra}")
    finally:
        model.close()


def _one_webhook_per_job(db: sqlite3.Connection) -> None:
    """Version 2: a job has one webhook delivery, whose id is ``msg_<job id>``.

    0.1.0 named deliveries ``msg_<random>``; those rows keep their ids (a receiver
    may have seen them), and the unique index holds the rule from now on.
    """
    db.execute("CREATE UNIQUE INDEX IF NOT EXISTS webhooks_by_job ON webhooks(job_id)")


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    _baseline,
    _one_webhook_per_job,
)
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(db: sqlite3.Connection, path: Path) -> int:
    """Bring the file to ``SCHEMA_VERSION``; answers the version it had.

    Raises ``StoreTooNew`` for a file a newer release has migrated further.
    """
    found = _version(db)
    if found > SCHEMA_VERSION:
        raise StoreTooNew(str(path), found, SCHEMA_VERSION)
    while True:
        db.execute("BEGIN IMMEDIATE")
        try:
            current = _version(db)
            if current > SCHEMA_VERSION:
                raise StoreTooNew(str(path), current, SCHEMA_VERSION)
            if current == SCHEMA_VERSION:
                db.execute("COMMIT")
                return found
            MIGRATIONS[current](db)
            db.execute(f"PRAGMA user_version = {current + 1}")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")


def _version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def _statements(script: str) -> list[str]:
    return [part.strip() for part in script.split(";") if part.strip()]
