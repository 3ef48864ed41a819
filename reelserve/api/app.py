"""The ASGI app factory: builds the parts the routers share and assembles the routers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from reelserve import __version__
from reelserve.api.async_store import AsyncStore
from reelserve.api.auth import KeyChecker
from reelserve.api.context import ApiContext
from reelserve.api.docs_assets import add_docs_pages
from reelserve.api.errors import install_error_handlers
from reelserve.api.job_views import JobViews
from reelserve.api.job_watcher import JobWatcher
from reelserve.api.playground import add_playground_routes
from reelserve.api.request_metrics import RequestMetrics
from reelserve.api.routes import operations, outputs, requests, submit, voices
from reelserve.api.submits import Submitter
from reelserve.api.sweeping import sweep_forever
from reelserve.input_blobs import InputBlobs
from reelserve.jobs import JobStore
from reelserve.jobs.backends import open_rate_limiter
from reelserve.settings_sections import ApiSettings
from reelserve.storage import Storage
from reelserve.webhooks import WebhookSender


def build_context(settings: ApiSettings, store: JobStore, storage: Storage) -> ApiContext:
    """The parts every router shares, over one store and one output storage."""
    async_store = AsyncStore(store, open_rate_limiter(settings.rate_limits, store),
                             timeout_s=settings.store_timeout_s,
                             threads=settings.store_threads)
    return ApiContext(
        api=settings, store=async_store, storage=storage,
        keys=KeyChecker(async_store), views=JobViews(async_store, settings.base_url,
                                                    settings.worker_stale_s),
        submitter=Submitter(async_store, max_body_bytes=settings.max_body_bytes,
                            engine=settings.engine,
                            inputs=InputBlobs(storage, settings.max_input_bytes)),
        watcher=JobWatcher(async_store))


def create_app(settings: ApiSettings, store: JobStore, storage: Storage) -> FastAPI:
    """Build the API over ``store`` and ``storage``; nothing is read from the environment."""
    context = build_context(settings, store, storage)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        sweeper = asyncio.create_task(sweep_forever(settings, context.store, storage))
        sender = WebhookSender(settings.webhooks, store, settings.base_url)
        webhooks = asyncio.create_task(sender.run_forever())
        try:
            yield
        finally:
            sweeper.cancel()
            webhooks.cancel()
            await context.watcher.close()

    app = FastAPI(title="reelserve", version=__version__, lifespan=lifespan,
                  description="Self-hosted Kling 3.0 Standard compatible video API")
    app.state.context = context
    app.add_middleware(RequestMetrics)
    install_error_handlers(app)
    app.include_router(voices.router)  # before /v2/{slug}, which would match its path
    app.include_router(submit.router)
    app.include_router(requests.router)
    app.include_router(outputs.router)
    add_playground_routes(app)
    add_docs_pages(app)
    app.include_router(operations.router)
    return app
