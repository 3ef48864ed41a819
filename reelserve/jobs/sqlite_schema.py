"""The tables of the SQLite job store as release 0.1.0 made them (schema version 1).

Later changes are migrations in ``sqlite_migrations``; this text stays as 0.1.0
wrote it, since it is also what the first migration compares old files with.

``jobs`` carries every field of a job; ``ledger`` has at most one hold, capture and
release per job (its primary key); ``idempotency``, ``voices``, ``webhooks`` and
``webhook_log`` hold the additions beyond the contract; ``workers`` the heartbeats.
"""

BASELINE_SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (
    id INTEGER PRIMARY KEY,
    prefix TEXT NOT NULL UNIQUE,
    hash TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    models TEXT,
    balance INTEGER NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0,
    webhook_secret TEXT,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    key_id INTEGER NOT NULL REFERENCES keys(id),
    params TEXT NOT NULL,
    state TEXT NOT NULL,
    price INTEGER NOT NULL,
    hold TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0,
    worker_id TEXT,
    lease_expires_at REAL,
    progress REAL NOT NULL DEFAULT 0,
    output_key TEXT,
    error TEXT,
    error_status INTEGER,
    last_error TEXT,
    handed_back INTEGER NOT NULL DEFAULT 0,
    canceled INTEGER NOT NULL DEFAULT 0,
    webhook_url TEXT,
    metrics TEXT,
    created_at REAL NOT NULL,
    started_at REAL,
    completed_at REAL,
    expires_at REAL
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs(state, seq);
CREATE TABLE IF NOT EXISTS workers (
    id TEXT PRIMARY KEY,
    engine TEXT NOT NULL,
    job_id TEXT,
    started_at REAL NOT NULL,
    last_seen REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_expiry ON jobs(expires_at);
CREATE INDEX IF NOT EXISTS jobs_by_key ON jobs(key_id, seq);
CREATE TABLE IF NOT EXISTS idempotency (
    key_id INTEGER NOT NULL,
    idem_key TEXT NOT NULL,
    digest TEXT NOT NULL,
    job_id TEXT NOT NULL,
    PRIMARY KEY (key_id, idem_key)
);
CREATE TABLE IF NOT EXISTS voices (
    id TEXT PRIMARY KEY,
    key_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    pitch_hz REAL,
    duration_s REAL NOT NULL,
    sample BLOB NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS voices_by_key ON voices(key_id, created_at);
CREATE TABLE IF NOT EXISTS webhooks (
    id TEXT PRIMARY KEY,
    job_id TEXT NOT NULL,
    key_id INTEGER NOT NULL,
    url TEXT NOT NULL,
    event TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS webhooks_due ON webhooks(state, next_at);
CREATE TABLE IF NOT EXISTS webhook_log (
    webhook_id TEXT NOT NULL,
    job_id TEXT NOT NULL,
    at REAL NOT NULL,
    attempt INTEGER NOT NULL,
    outcome TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS webhook_log_by_job ON webhook_log(job_id);
CREATE TABLE IF NOT EXISTS ledger (
    job_id TEXT NOT NULL,
    key_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    amount INTEGER NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (job_id, kind)
);
"""
