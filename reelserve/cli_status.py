"""``reelserve status``: the queue, jobs per state and the workers, with their GPUs.

From the store (``--data-dir`` or ``--store``, read where the server keeps it) or
from a running server (``--server URL``, read from its ``/metrics``). A data dir
without a store is refused: it would only show an empty service.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import httpx
import typer
from rich.console import Console
from rich.table import Table

from reelserve.cli_store import DataDir, StoreUrl, existing_store, fail, settings_with
from reelserve.jobs import JobStore
from reelserve.settings import Settings

if TYPE_CHECKING:  # prometheus_client is imported late: on import it picks its mode for good
    from prometheus_client.metrics_core import Metric
    from prometheus_client.samples import Sample

STATES = ("QUEUED", "PROCESSING", "COMPLETED", "FAILED")
console = Console()


@dataclass(frozen=True)
class WorkerGpu:
    gpu: str
    used_bytes: float | None = None
    total_bytes: float | None = None

    def describe(self) -> str:
        if self.used_bytes is None:
            return self.gpu
        total = f" / {self.total_bytes / 2**30:.1f}" if self.total_bytes else ""
        return f"{self.gpu} ({self.used_bytes / 2**30:.1f}{total} GiB)"


def status(
    data_dir: DataDir = None,
    store_url: StoreUrl = None,
    server: Annotated[str | None, typer.Option(
        help="Ask a running server at this base URL instead of reading its store.",
        show_default=False)] = None,
) -> None:
    """Queue depth, jobs per state, and workers with their last heartbeat and GPU."""
    if server is not None:
        _status_from_server(server.rstrip("/"))
        return
    settings = settings_with(data_dir=data_dir, store=store_url)
    store = existing_store(settings, other_ways="or --server URL")
    _status_from_store(settings, store)


def _status_from_store(settings: Settings, store: JobStore) -> None:
    stats = store.queue_stats()
    now = store.now()
    console.print(f"queue: {stats.depth} job(s) waiting, oldest {stats.oldest_age_s:.1f} s")
    _print_states(stats.by_state)
    gpus = gpus_by_worker(_local_families(settings.metrics_dir))
    workers = Table("worker", "engine", "gpu", "job", "last heartbeat", "state")
    for record in store.list_workers():
        age = now - record.last_seen
        fresh = "alive" if age <= settings.worker_stale_s else "stale"
        gpu = gpus.get(record.id)
        workers.add_row(record.id, record.engine, gpu.describe() if gpu else "-",
                        record.job_id or "idle", f"{age:.1f} s ago", fresh)
    console.print(workers if workers.row_count else "workers: none has sent a heartbeat")


def _status_from_server(base_url: str) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    try:
        scraped = httpx.get(f"{base_url}/metrics", timeout=10)
        ready = httpx.get(f"{base_url}/readyz", timeout=10)
    except httpx.HTTPError as error:
        fail(f"cannot reach {base_url}: {type(error).__name__}: {error}", 5)
    if scraped.status_code != 200:
        fail(f"{base_url}/metrics answered {scraped.status_code}; is it a reelserve server?", 5)
    families = {family.name: family for family in text_string_to_metric_families(scraped.text)}
    depth = _value(families.get("reelserve_queue_depth"))
    oldest = _value(families.get("reelserve_queue_oldest_age_seconds"))
    console.print(f"queue: {depth:.0f} job(s) waiting, oldest {oldest:.1f} s")
    jobs = families.get("reelserve_jobs")
    _print_states({sample.labels["state"]: int(sample.value)
                   for sample in (jobs.samples if jobs else [])})
    body = ready.json() if ready.headers.get("content-type", "").startswith("application/json") \
        else {}
    console.print(f"server: {body.get('status', ready.status_code)}"
                  + (f" ({body['error']})" if body.get("error") else ""))
    gpus = gpus_by_worker(families.values())
    if gpus:
        table = Table("worker", "gpu")
        for worker, gpu in sorted(gpus.items()):
            table.add_row(worker, gpu.describe())
        console.print(table)


def _print_states(by_state: dict[str, int]) -> None:
    states = Table("state", "jobs")
    for state in STATES:
        states.add_row(state, str(by_state.get(state, 0)))
    console.print(states)


def _value(family: Metric | None) -> float:
    return float(family.samples[0].value) if family and family.samples else 0.0


def _local_families(metrics_dir: Path) -> list[Metric]:
    """The metric files the processes on this machine wrote (what /metrics would sum)."""
    if not metrics_dir.is_dir():
        return []
    from prometheus_client.multiprocess import MultiProcessCollector

    collector = MultiProcessCollector(None, path=str(metrics_dir))  # type: ignore[no-untyped-call]
    return list(collector.collect())  # type: ignore[no-untyped-call]


def gpus_by_worker(families: Iterable[Metric]) -> dict[str, WorkerGpu]:
    """Each pinned worker's GPU and memory, from the ``reelserve_worker_gpu*`` gauges."""
    values: dict[str, dict[str, Sample]] = {}
    for family in families:
        for sample in family.samples:
            values.setdefault(sample.name, {})[sample.labels.get("worker", "")] = sample
    used = values.get("reelserve_worker_gpu_memory_used_bytes", {})
    total = values.get("reelserve_worker_gpu_memory_total_bytes", {})
    return {worker: WorkerGpu(sample.labels.get("gpu", "?"),
                              used[worker].value if worker in used else None,
                              total[worker].value if worker in total else None)
            for worker, sample in values.get("reelserve_worker_gpu", {}).items()}
