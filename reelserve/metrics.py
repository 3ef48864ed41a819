"""Prometheus metrics shared by the API and the worker processes.

``prometheus_client`` in multiprocess mode: every process writes its samples to
files under ``<data dir>/metrics`` and ``GET /metrics`` sums them. The library
picks its mode when it is first imported, so processes call
``reelserve.metrics_dir.use_metrics_dir`` before importing this module.

Queue depth, the age of the oldest queued job and jobs per state are read from
the store at scrape time, so they are right whichever process moved the queue.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from reelserve.jobs import JobStore
from reelserve.metrics_dir import MULTIPROC_ENV

CONTENT_TYPE = CONTENT_TYPE_LATEST
TIME_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)

HTTP_REQUESTS = Counter("reelserve_http_requests", "HTTP requests answered",
                        ["method", "route", "status"])
JOBS_SUBMITTED = Counter("reelserve_jobs_submitted", "Jobs accepted at submit", ["model"])
JOBS_COMPLETED = Counter("reelserve_jobs_completed", "Jobs that ended COMPLETED",
                         ["model", "engine"])
JOBS_FAILED = Counter("reelserve_jobs_failed", "Jobs that ended FAILED", ["model", "reason"])
ATTEMPTS_LOST = Counter("reelserve_attempts_lost", "Attempts given back to the queue",
                        ["reason"])
CREDITS_CAPTURED = Counter("reelserve_credits_captured", "Credits captured from completed jobs",
                           ["model"])
WEBHOOK_DELIVERIES = Counter("reelserve_webhook_deliveries",
                             "Webhook tries by outcome: delivered, retrying or given up",
                             ["outcome"])
WEBHOOK_IN_FLIGHT = Gauge("reelserve_webhook_in_flight", "Webhook calls under way now",
                          multiprocess_mode="livesum")
WEBHOOK_BUSIEST_KEY = Gauge("reelserve_webhook_busiest_key_in_flight",
                            "Webhook calls under way for the key with the most "
                            "(at most webhook_key_concurrency)", multiprocess_mode="livemax")
WEBHOOK_DEFERRED = Counter("reelserve_webhook_deferred",
                           "Due webhooks left for later without a sender slot: key_busy, "
                           "host_backoff or senders_full", ["reason"])
QUEUE_WAIT = Histogram("reelserve_queue_wait_seconds", "Time from submit to a worker's claim",
                       ["engine"], buckets=TIME_BUCKETS)
RUN_TIME = Histogram("reelserve_run_seconds", "Time an engine took for one job",
                     ["engine"], buckets=TIME_BUCKETS)
ENGINE_LOAD = Histogram("reelserve_engine_load_seconds", "Time to start an engine child",
                        ["engine"], buckets=TIME_BUCKETS)


class QueueCollector(Collector):
    """Queue depth, oldest queued age and jobs per state, read from the store per scrape."""

    def __init__(self, store: JobStore) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        stats = self.store.queue_stats()
        yield GaugeMetricFamily("reelserve_queue_depth", "Jobs waiting in the queue",
                                value=stats.depth)
        yield GaugeMetricFamily("reelserve_queue_oldest_age_seconds",
                                "Age of the oldest queued job (0 when empty)",
                                value=stats.oldest_age_s)
        states = GaugeMetricFamily("reelserve_jobs", "Jobs kept in the store, by state",
                                   labels=["state"])
        for state, count in sorted(stats.by_state.items()):
            states.add_metric([state], count)
        yield states
        yield GaugeMetricFamily(
            "reelserve_store_durability_warnings",
            "Reasons the store may lose data (a Redis without AOF); details in /readyz",
            value=len(self.store.durability_warnings))


def render_metrics(store: JobStore) -> bytes:
    """The Prometheus text exposition of every process's metrics plus the queue's."""
    queue = CollectorRegistry()
    queue.register(QueueCollector(store))
    if os.environ.get(MULTIPROC_ENV):
        processes = CollectorRegistry()
        multiprocess.MultiProcessCollector(processes)  # type: ignore[no-untyped-call]
    else:  # one process only, e.g. an app built in a test without a metrics dir
        processes = REGISTRY
    return generate_latest(processes) + generate_latest(queue)
