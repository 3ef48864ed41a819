"""The ``reelserve`` command: serve, worker and keys."""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType
from typing import Annotated, NoReturn

import typer
import uvicorn
from rich.console import Console
from rich.table import Table

from reelserve.catalog import MODELS
from reelserve.cli_generate import GenerateCommand, generate
from reelserve.cli_help import ReadableTyper, make_app_readable
from reelserve.cli_models import models_app
from reelserve.cli_requests import download, get
from reelserve.cli_status import status
from reelserve.cli_store import (
    DataDir,
    StoreUrl,
    existing_store,
    fail,
    open_checked_store,
    settings_with,
)
from reelserve.errors import EngineUnavailable, ReelserveError
from reelserve.jobs import JobStore
from reelserve.keys import issue_key
from reelserve.logs import configure_logging
from reelserve.metrics_dir import use_metrics_dir
from reelserve.processes import EXIT_ENGINE_UNAVAILABLE, die_with_parent, supervised_by
from reelserve.serve_startup import listen_socket, wait_for_engine
from reelserve.settings import Settings
from reelserve.storage import Storage, open_storage
from reelserve.supervisor import worker_id_of

app = ReadableTyper(help="reelserve: a self-hosted Kling 3.0 compatible video API.",
                    no_args_is_help=True, pretty_exceptions_enable=False)
keys_app = ReadableTyper(help="Create, list and revoke API keys; add credits.",
                         no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(make_app_readable(models_app), name="models")
app.command("generate", cls=GenerateCommand)(generate)
app.command("status")(status)
app.command("get")(get)
app.command("download")(download)
console = Console()



def _settings(**overrides: object) -> Settings:
    return settings_with(**overrides)


def _fail(message: str, code: int = 1) -> NoReturn:
    fail(message, code)


def _open_store(settings: Settings) -> JobStore:
    return open_checked_store(settings)


def _open_storage(settings: Settings) -> Storage:
    try:
        return open_storage(settings.storage_section)
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
    "(REELSERVE_WORKER_MODELS).", show_default=False)]


def _worker_models(value: str | None) -> str | None:
    models = _models(value)
    return None if models is None else ",".join(models)



LISTEN_BACKLOG = 2048  # uvicorn's default
ENGINES_HELP = ("preview (CPU storyboards, no weights), ltx2 (LTX-2 on a GPU), "
                "or package.module:factory")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(
        help="Address to listen on.  \\[default: 127.0.0.1]", show_default=False)] = None,
    port: Annotated[int | None, typer.Option(
        help="Port to listen on.  \\[default: 8000]", show_default=False)] = None,
    data_dir: DataDir = None,
    store_url: StoreUrl = None,
    workers: Annotated[int | None, typer.Option(
        help="Worker processes to start.  \\[default: 1, or one per GPU with --gpus or ltx2]",
        show_default=False)] = None,
    engine: Annotated[str | None, typer.Option(
        help=f"Engine: {ENGINES_HELP}.  \\[default: preview]", show_default=False)] = None,
    gpus: Annotated[str | None, typer.Option(
        help="GPU indexes to pin one worker each to, e.g. 0,2,5; 'none' for no pinning.  "
             "\\[default: every GPU with ltx2]", show_default=False)] = None,
    retention: Annotated[float | None, typer.Option(
        help="Seconds results are kept.  \\[default: 3600]", show_default=False)] = None,
    model_path: Annotated[str | None, typer.Option(
        help="Model directory for the ltx2 engine.  \\[default: the first one pulled]",
        show_default=False)] = None,
    worker_models: WorkerModels = None,
) -> None:
    """Start the API and its worker processes; print the base URL.

    The port is bound and the engine loaded before the first key and the URL are
    printed: a port in use or an engine that cannot load exits 3 having printed neither.
    """
    settings = _settings(host=host, port=port, data_dir=data_dir, store=store_url,
                         workers=workers, engine=engine, retention_s=retention,
                         model_path=model_path, gpus=gpus,
                         worker_models=_worker_models(worker_models))
    explicit_workers = workers is not None or settings.workers != Settings.workers
    count, assignment = _worker_gpus(settings, settings.workers if explicit_workers else None)
    sock = listen_socket(settings.host, settings.port)  # first: a port in use changes nothing
    use_metrics_dir(settings.metrics_dir, fresh=True)  # before anything imports metrics
    configure_logging()
    from reelserve.api import create_app
    from reelserve.supervisor import WorkerPool

    store = _open_store(settings)
    storage = _open_storage(settings)
    server: uvicorn.Server | None = None
    stop_requested = threading.Event()

    def stop_serving() -> None:
        stop_requested.set()
        if server is not None:
            server.should_exit = True

    # Every worker failed to load the engine: stop serving.
    pool = WorkerPool(settings, assignment, on_engine_unavailable=stop_serving)
    pool.start()
    try:
        wait_for_engine(pool, store, settings, console)
    except BaseException:
        pool.stop(timeout_s=settings.shutdown_grace_s + 10)
        sock.close()
        raise
    # From here a signal stops the server in order. uvicorn also re-raises the signal
    # that stopped it once it has shut down: with the default handler that would end
    # this process before the workers are stopped.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda signum, frame: stop_serving())
    _first_key(settings, store)
    # On SIGTERM uvicorn stops accepting connections and answers the requests in
    # flight (a /v1 call waits up to the grace period); then the workers stop.
    server = uvicorn.Server(uvicorn.Config(
        create_app(settings.api, store, storage), log_level="warning", log_config=None,
        access_log=False, backlog=LISTEN_BACKLOG,
        timeout_graceful_shutdown=max(1, round(settings.shutdown_grace_s))))
    server.should_exit = stop_requested.is_set()
    sock.listen(LISTEN_BACKLOG)  # connections wait for uvicorn from now, none is refused
    pinned = sorted({gpu for gpu in assignment if gpu is not None})
    on_gpus = f" on GPU {','.join(map(str, pinned))}" if pinned else ""
    console.print(f"reelserve {settings.engine} engine, {count} worker(s){on_gpus}, "
                  f"data in {settings.data_dir.resolve()}")
    print(f"Serving on {settings.base_url}", flush=True)
    try:
        server.run(sockets=[sock])
    finally:
        pool.stop(timeout_s=settings.shutdown_grace_s + 10)
    if pool.engine_unavailable:
        _fail(f"the {settings.engine} engine cannot load in any worker (see above)",
              EXIT_ENGINE_UNAVAILABLE)


def _worker_gpus(settings: Settings, workers: int | None) -> tuple[int, tuple[int | None, ...]]:
    from reelserve.gpus import parse_gpu_list, worker_gpus

    try:
        return worker_gpus(parse_gpu_list(settings.gpus), settings.engine, workers)
    except ReelserveError as error:
        _fail(error.message)


def _first_key(settings: Settings, store: JobStore) -> None:
    """On a first start, a key with the starting credits, printed once."""
    if store.list_keys():
        return
    issued = issue_key(store, credits=int(settings.starting_credits * 1000), name="first")
    console.print(f"Created an API key with {settings.starting_credits:g} credits "
                  "(shown once, keep it):")
    print(issued.secret, flush=True)


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
    worker_id = worker_id_of(os.getpid())
    if settings.worker_gpu.isdigit():
        from reelserve.gpu_metrics import report_worker_gpu

        report_worker_gpu(worker_id, int(settings.worker_gpu), stop)
    try:
        Worker(settings.worker, _open_store(settings), _open_storage(settings),
               worker_id).run(stop)
    except EngineUnavailable as error:
        _fail(error.message, EXIT_ENGINE_UNAVAILABLE)


Weight = Annotated[float | None, typer.Option(
    min=0.01, help="Dispatch share against other keys with work waiting.  \\[default: 1]",
    show_default=False)]
MaxConcurrent = Annotated[int | None, typer.Option(
    min=0, help="Most jobs running at once, across all workers; 0 for no cap.",
    show_default=False)]
MaxQueued = Annotated[int | None, typer.Option(
    min=0, help="Most jobs waiting; a submit past it gets 429. 0 for no cap.",
    show_default=False)]


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
    """List keys (prefix, credits, models, state), then their weights and caps."""
    table = Table("prefix", "name", "credits", "models", "state")
    limits = Table("prefix", "weight", "max concurrent", "max queued", title="scheduling")
    for key in existing_store(_settings(data_dir=data_dir)).list_keys():
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
        key = existing_store(_settings(data_dir=data_dir)).set_key_limits(
            key_prefix, weight=weight, max_concurrent=max_concurrent, max_queued=max_queued)
    except ReelserveError as error:
        _fail(error.message)
    console.print(f"{key.prefix}… weight {key.weight:g}, max concurrent "
                  f"{key.max_concurrent or 'no cap'}, max queued {key.max_queued or 'no cap'}")


@keys_app.command("revoke")
def keys_revoke(key_prefix: str, data_dir: DataDir = None) -> None:
    """Revoke the key that starts with KEY_PREFIX."""
    try:
        key = existing_store(_settings(data_dir=data_dir)).revoke_key(key_prefix)
    except ReelserveError as error:
        _fail(error.message)
    console.print(f"Revoked {key.prefix}…")


@keys_app.command("add-credits")
def keys_add_credits(key_prefix: str, amount: float, data_dir: DataDir = None) -> None:
    """Add AMOUNT credits to the key that starts with KEY_PREFIX."""
    try:
        key = existing_store(_settings(data_dir=data_dir)).add_credits(key_prefix,
                                                                       round(amount * 1000))
    except ReelserveError as error:
        _fail(error.message)
    console.print(f"{key.prefix}… now has {key.balance / 1000:.3f} credits")


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())
