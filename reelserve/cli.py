"""The ``reelserve`` command: serve, worker and keys."""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated, NoReturn

import typer
import uvicorn
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from reelserve.catalog import MODELS
from reelserve.cli_generate import GenerateCommand, generate
from reelserve.cli_models import models_app
from reelserve.errors import EngineUnavailable, ReelserveError
from reelserve.jobs import JobStore
from reelserve.jobs.backends import open_store
from reelserve.keys import issue_key
from reelserve.logs import configure_logging
from reelserve.metrics_dir import use_metrics_dir
from reelserve.processes import EXIT_ENGINE_UNAVAILABLE, die_with_parent, supervised_by
from reelserve.settings import Settings, settings_from_env
from reelserve.storage import Storage, open_storage

app = typer.Typer(help="reelserve: a self-hosted Kling 3.0 compatible video API.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
keys_app = typer.Typer(help="Create, list and revoke API keys; add credits.",
                       no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(models_app, name="models")
app.command("generate", cls=GenerateCommand)(generate)
console = Console()

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Store and outputs live here.")]
StoreUrl = Annotated[str | None, typer.Option(
    "--store", help="redis://HOST:PORT/DB to share jobs with other servers; SQLite if absent.")]


def _settings(**overrides: object) -> Settings:
    return settings_from_env().with_overrides(**overrides)


def _fail(message: str, code: int = 1) -> NoReturn:
    console.print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(code)


def _open_store(settings: Settings) -> JobStore:
    """The configured store, checked to answer; a clear error instead of a traceback."""
    where = settings.store or str(settings.db_path)
    try:
        store = open_store(settings)
        store.queue_stats()
    except ReelserveError as error:
        _fail(error.message)
    except Exception as error:  # whatever the backend raises, the user needs the same answer
        _fail(f"the job store at {where} does not answer: {type(error).__name__}: {error}")
    return store


def _open_storage(settings: Settings) -> Storage:
    try:
        return open_storage(settings)
    except ReelserveError as error:
        _fail(error.message)


def _models(value: str | None) -> tuple[str, ...] | None:
    if not value:
        return None
    models = tuple(slug.strip() for slug in value.split(",") if slug.strip())
    unknown = [slug for slug in models if slug not in MODELS]
    if unknown:
        _fail(f"unknown model(s): {', '.join(unknown)}; known: {', '.join(MODELS)}")
    return models


WorkerModels = Annotated[str | None, typer.Option(
    "--models", help="Comma-separated slugs the worker(s) claim; all if absent "
    "(REELSERVE_WORKER_MODELS).")]


def _worker_models(value: str | None) -> str | None:
    models = _models(value)
    return None if models is None else ",".join(models)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    data_dir: DataDir = None,
    store_url: StoreUrl = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes to start.")] = None,
    engine: Annotated[str | None, typer.Option(help="Engine: preview.")] = None,
    retention: Annotated[float | None, typer.Option(help="Seconds results are kept.")] = None,
    model_path: Annotated[str | None, typer.Option(
        help="Model directory for the ltx2 engine.")] = None,
    worker_models: WorkerModels = None,
) -> None:
    """Start the API and its worker processes; print the base URL."""
    settings = _settings(host=host, port=port, data_dir=data_dir, store=store_url,
                         workers=workers,
                         engine=engine, retention_s=retention, model_path=model_path,
                         worker_models=_worker_models(worker_models))
    use_metrics_dir(settings.metrics_dir, fresh=True)  # before anything imports metrics
    configure_logging()
    from reelserve.api import create_app
    from reelserve.supervisor import WorkerPool

    store = _open_store(settings)
    storage = _open_storage(settings)
    if not store.list_keys():
        issued = issue_key(store, credits=int(settings.starting_credits * 1000), name="first")
        console.print(f"Created an API key with {settings.starting_credits:g} credits "
                      "(shown once, keep it):")
        print(issued.secret, flush=True)
    def engine_unavailable() -> None:  # every worker failed to load the engine: stop serving
        os.kill(os.getpid(), signal.SIGTERM)

    pool = WorkerPool(settings, settings.workers, on_engine_unavailable=engine_unavailable)
    pool.start()
    console.print(f"reelserve {settings.engine} engine, {settings.workers} worker(s), "
                  f"data in {settings.data_dir.resolve()}")
    print(f"Serving on {settings.base_url}", flush=True)
    # uvicorn re-raises the signal that stopped it once it has shut down; with the
    # default handler that would end this process before the workers are stopped.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda signum, frame: None)
    try:
        # On SIGTERM uvicorn stops accepting connections and answers the requests in
        # flight (a /v1 call waits up to the grace period); then the workers stop.
        uvicorn.run(create_app(settings, store, storage),
                    host=settings.host, port=settings.port, log_level="warning",
                    log_config=None, access_log=False,
                    timeout_graceful_shutdown=max(1, round(settings.shutdown_grace_s)))
    finally:
        pool.stop(timeout_s=settings.shutdown_grace_s + 10)
    if pool.engine_unavailable:
        _fail(f"the {settings.engine} engine cannot load in any worker (see above)",
              EXIT_ENGINE_UNAVAILABLE)


@app.command()
def worker(data_dir: DataDir = None, store_url: StoreUrl = None,
           engine: Annotated[str | None, typer.Option(help="Engine name.")] = None,
           models: WorkerModels = None) -> None:
    """Run one worker process against the store in DATA_DIR.

    SIGTERM or Ctrl-C: stop claiming, let the job in flight finish within the
    grace period (REELSERVE_SHUTDOWN_GRACE_S), then hand it back to the queue.
    """
    settings = _settings(data_dir=data_dir, store=store_url, engine=engine,
                         worker_models=_worker_models(models))
    use_metrics_dir(settings.metrics_dir, fresh=False)  # before anything imports metrics
    configure_logging()
    from reelserve.worker import Worker

    stop = threading.Event()
    supervisor = supervised_by()
    if supervisor is not None:
        die_with_parent(signal.SIGTERM, supervisor)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        Worker(settings, _open_store(settings), _open_storage(settings)).run(stop)
    except EngineUnavailable as error:
        _fail(error.message, EXIT_ENGINE_UNAVAILABLE)


@app.command()
def status(data_dir: DataDir = None, store_url: StoreUrl = None) -> None:
    """Queue depth, jobs per state and workers with their last heartbeat, from the store."""
    settings = _settings(data_dir=data_dir, store=store_url)
    store = _open_store(settings)
    stats = store.queue_stats()
    now = store.now()
    console.print(f"queue: {stats.depth} job(s) waiting, oldest {stats.oldest_age_s:.1f} s")
    states = Table("state", "jobs")
    for state in ("QUEUED", "PROCESSING", "COMPLETED", "FAILED"):
        states.add_row(state, str(stats.by_state.get(state, 0)))
    console.print(states)
    workers = Table("worker", "engine", "models", "job", "last heartbeat", "state")
    for record in store.list_workers():
        age = now - record.last_seen
        fresh = "alive" if age <= settings.worker_stale_s else "stale"
        workers.add_row(record.id, record.engine, ",".join(record.models or ("all",)),
                        record.job_id or "idle", f"{age:.1f} s ago", fresh)
    console.print(workers if workers.row_count else "workers: none has sent a heartbeat")
    from reelserve.fleet import unserved_queued, waiting_reason

    for slug, count in sorted(unserved_queued(store, settings.worker_stale_s).items()):
        console.print(f"waiting: {count} queued job(s) for {waiting_reason(slug)}")


Weight = Annotated[float | None, typer.Option(
    min=0.01, help="Dispatch share against other keys with work waiting (default 1).")]
MaxConcurrent = Annotated[int | None, typer.Option(
    min=0, help="Most jobs running at once, across all workers; 0 for no cap.")]
MaxQueued = Annotated[int | None, typer.Option(
    min=0, help="Most jobs waiting; a submit past it gets 429. 0 for no cap.")]


@keys_app.command("create")
def keys_create(
    credits: Annotated[float | None, typer.Option(help="Starting credits.")] = None,
    models: Annotated[str | None,
                      typer.Option(help="Comma-separated slugs; all if absent.")] = None,
    name: Annotated[str, typer.Option(help="A label for the key.")] = "",
    data_dir: DataDir = None,
    weight: Weight = None,
    max_concurrent: MaxConcurrent = None,
    max_queued: MaxQueued = None,
) -> None:
    """Create a key; the key itself is printed alone on the last line."""
    settings = _settings(data_dir=data_dir)
    amount = settings.starting_credits if credits is None else credits
    store = _open_store(settings)
    issued = issue_key(store, credits=round(amount * 1000), models=_models(models), name=name)
    if (weight, max_concurrent, max_queued) != (None, None, None):
        store.set_key_limits(issued.record.prefix, weight=weight,
                             max_concurrent=max_concurrent, max_queued=max_queued)
    console.print(f"Created key {issued.record.prefix}… with {amount:g} credits. "
                  "It is shown once:")
    print(issued.secret, flush=True)


@keys_app.command("list")
def keys_list(data_dir: DataDir = None) -> None:
    """List keys (prefix, credits, models, weight, caps, state)."""
    table = Table("prefix", "name", "credits", "models", "state")
    limits = Table("prefix", "weight", "max concurrent", "max queued", title="scheduling")
    for key in _open_store(_settings(data_dir=data_dir)).list_keys():
        table.add_row(key.prefix, key.name, f"{key.balance / 1000:.3f}",
                      ",".join(key.models) if key.models else "all",
                      "revoked" if key.revoked else "active")
        limits.add_row(key.prefix, f"{key.weight:g}", str(key.max_concurrent or "no cap"),
                       str(key.max_queued or "no cap"))
    console.print(table)
    console.print(limits)


@keys_app.command("set")
def keys_set(key_prefix: str, weight: Weight = None, max_concurrent: MaxConcurrent = None,
             max_queued: MaxQueued = None, data_dir: DataDir = None) -> None:
    """Change the scheduling weight and caps of the key that starts with KEY_PREFIX."""
    try:
        key = _open_store(_settings(data_dir=data_dir)).set_key_limits(
            key_prefix, weight=weight, max_concurrent=max_concurrent, max_queued=max_queued)
    except ReelserveError as error:
        _fail(error.message)
    console.print(f"{key.prefix}… weight {key.weight:g}, max concurrent "
                  f"{key.max_concurrent or 'no cap'}, max queued {key.max_queued or 'no cap'}")


@keys_app.command("revoke")
def keys_revoke(key_prefix: str, data_dir: DataDir = None) -> None:
    """Revoke the key that starts with KEY_PREFIX."""
    try:
        key = _open_store(_settings(data_dir=data_dir)).revoke_key(key_prefix)
    except ReelserveError as error:
        _fail(error.message)
    console.print(f"Revoked {key.prefix}…")


@keys_app.command("add-credits")
def keys_add_credits(key_prefix: str, amount: float, data_dir: DataDir = None) -> None:
    """Add AMOUNT credits to the key that starts with KEY_PREFIX."""
    try:
        key = _open_store(_settings(data_dir=data_dir)).add_credits(key_prefix,
                                                                   round(amount * 1000))
    except ReelserveError as error:
        _fail(error.message)
    console.print(f"{key.prefix}… now has {key.balance / 1000:.3f} credits")


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())
