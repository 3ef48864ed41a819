"""The ASGI app factory: the Kling 3.0 contract's routes over a job store."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, StreamingResponse
from pydantic import BaseModel
from starlette.concurrency import iterate_in_threadpool

from reelserve import __version__, metrics
from reelserve.api.errors import error_response, install_error_handlers
from reelserve.api.playground import add_playground_routes
from reelserve.api.request_metrics import RequestMetrics
from reelserve.api.request_routes import add_request_routes
from reelserve.api.submits import SubmitBatcher
from reelserve.api.voice_routes import add_voice_routes, check_voice_ids
from reelserve.catalog import get_model, parse_submit, price_millicredits, schemas
from reelserve.errors import (
    Forbidden,
    InvalidParameter,
    JobFailed,
    RequestNotFound,
    SyncTimeout,
    Unauthorized,
)
from reelserve.input_blobs import bind_inputs, store_inline_inputs, sweep_inputs
from reelserve.jobs import ApiKey, Job, JobOrder, JobState, JobStore, Submitted
from reelserve.jobs.backends import open_rate_limiter
from reelserve.keys import authenticate
from reelserve.logs import job_fields
from reelserve.settings import Settings
from reelserve.storage import Storage
from reelserve.webhooks import WebhookSender

log = logging.getLogger("reelserve.api")
SYNC_POLL_S = 0.05


def _credits(millicredits: int) -> str:
    return f"{millicredits / 1000:.3f}"


def _submit_openapi(model: type[BaseModel]) -> dict[str, Any]:
    # The body is read by hand, so FastAPI never registers the nested models in
    # components: inline them, or the document would hold references to nothing.
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(defs[node["$ref"].rsplit("/", 1)[1]])
            return {name: inline(value) for name, value in node.items()}
        return [inline(item) for item in node] if isinstance(node, list) else node

    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": inline(schema)}}}}


class Service:
    """What the routes share: settings, the store, output storage and the rate limiter."""

    def __init__(self, settings: Settings, store: JobStore, storage: Storage) -> None:
        self.settings = settings
        self.store = store
        self.storage = storage
        self.limiter = open_rate_limiter(settings, store)
        # Reads (key lookups, polls) run on the event loop: a SQLite read in WAL
        # mode never waits for a lock and takes microseconds, while a hop to a
        # thread costs more and makes threads queue for the GIL. Submits may wait
        # for a worker's write lock, so they go to a thread, in batches.
        self.submits = SubmitBatcher(store)

    def require_key(self, request: Request) -> ApiKey:
        key = authenticate(self.store, request.headers.get("x-api-key"))
        if key is None:
            missing = "x-api-key" not in request.headers
            raise Unauthorized("missing x-api-key header" if missing else "invalid API key")
        return key

    async def submit(self, request: Request, slug: str) -> Submitted:
        key = self.require_key(request)
        model = get_model(slug)
        if not key.may_use(slug):
            raise Forbidden(f"this API key may not use model '{slug}'")
        self.limiter.hit(key.id)
        body = await _json_body(request, self.settings.max_body_bytes)
        params = parse_submit(model, body)
        check_voice_ids(self, key.id, params.voice_ids)
        params = await store_inline_inputs(params, self.storage, self.settings.max_input_bytes)
        idempotency_key = request.headers.get("idempotency-key")
        order = JobOrder(key.id, params, price_millicredits(params),
                         webhook_url=_webhook_url(body),
                         idempotency_key=_idempotency_key(idempotency_key),
                         body_digest=_digest(slug, body) if idempotency_key else "")
        submitted = await self.submits.submit(order)
        await bind_inputs(self.storage, params, submitted[0])
        metrics.JOBS_SUBMITTED.labels(slug).inc()
        log.info("submitted", extra={**job_fields(submitted[0].id, slug, 0, self.settings.engine),
                                     "key_prefix": key.prefix})
        return submitted

    def own_job(self, request: Request, request_id: str) -> tuple[ApiKey, Job]:
        key = self.require_key(request)
        job = self.store.get_job(request_id)
        if job is None or job.key_id != key.id:
            raise RequestNotFound(request_id)
        return key, job

    def urls(self, request_id: str) -> dict[str, str]:
        status_url = f"{self.settings.base_url}/v2/requests/{request_id}/status"
        return {"request_id": request_id, "status_url": status_url,
                "response_url": f"{self.settings.base_url}/v2/requests/{request_id}",
                "poll_url": status_url}

    def status_body(self, job: Job) -> dict[str, Any]:
        body: dict[str, Any] = {"request_id": job.id, "status": job.state.value,
                                "progress": round(job.progress, 4)}
        if job.state is JobState.QUEUED:
            body["queue_position"] = self.store.queue_position(job.id)
        if job.state is JobState.FAILED:
            body["error"] = job.error
            body["canceled"] = job.canceled
        body["eta_seconds"] = _eta_seconds(job, self.store.now)
        for name in ("created_at", "started_at", "completed_at"):
            body[name] = _iso(getattr(job, name))
        return body

    def result_body(self, job: Job) -> dict[str, Any]:
        if job.state is not JobState.COMPLETED:
            return self.status_body(job)
        return {"request_id": job.id, "status": job.state.value,
                "output": f"{self.settings.base_url}/outputs/{job.output_key}",
                "metrics": job.metrics}

    def readiness(self) -> str | None:
        """Why this server should not get traffic, or None when it is ready."""
        try:
            workers = self.store.list_workers()
        except Exception as error:  # any store failure means not ready, whatever it is
            return f"the job store does not answer: {error}"
        if self.settings.ready_without_workers:
            return None
        fresh_since = self.store.now() - self.settings.worker_stale_s
        if not any(worker.last_seen >= fresh_since for worker in workers):
            return (f"no worker has sent a heartbeat in the last "
                    f"{self.settings.worker_stale_s:g} s")
        return None

    def sweep(self) -> None:
        report = self.store.sweep_expired()
        for key in report.deleted_outputs:
            self.storage.delete(key)
        sweep_inputs(self.storage, self.store)
        if report.expired_jobs:
            log.info("expired %d jobs", report.expired_jobs)


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")


def _eta_seconds(job: Job, now: Callable[[], float]) -> float | None:
    """Seconds left, from the pace so far; None while queued or too early to tell.

    ``now`` is the store's clock, read only for a running job (on Redis it is a
    round trip, which most polls do not need).
    """
    if job.state.is_terminal:
        return 0.0
    if job.state is not JobState.PROCESSING or job.started_at is None or job.progress < 0.02:
        return None
    elapsed = max(0.0, now() - job.started_at)
    return round(elapsed / job.progress * (1 - job.progress), 1)


def _webhook_url(body: Any) -> str | None:
    value = body.get("webhook_url") if isinstance(body, dict) else None
    if value is None:
        return None
    if not isinstance(value, str) or not value.startswith(("http://", "https://")) \
            or len(value) > 2048:
        raise InvalidParameter("webhook_url", "must be an http(s) URL of at most 2048 characters")
    return value


def _idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    if not 1 <= len(value) <= 255 or not value.isprintable():
        raise InvalidParameter("Idempotency-Key", "must be 1 to 255 printable characters")
    return value


def _digest(slug: str, body: Any) -> str:
    """The same request, whatever its key order or spacing, gives the same digest."""
    canonical = json.dumps([slug, body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def _json_body(request: Request, max_bytes: int) -> Any:
    """The parsed JSON body; read in chunks and refused past ``max_bytes``."""
    too_big = InvalidParameter("body", f"must be at most {max_bytes} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise too_big
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    # ValueError: JSONDecodeError and integers too long to convert; RecursionError: deep nesting
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise InvalidParameter("body", f"must be valid JSON ({error})") from error


def create_app(settings: Settings, store: JobStore, storage: Storage) -> FastAPI:
    """Build the API over ``store`` and ``storage``; nothing is read from the environment."""
    service = Service(settings, store, storage)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        sweeper = asyncio.create_task(_sweep_forever(service))
        sender = WebhookSender(settings, store, settings.base_url)
        webhooks = asyncio.create_task(sender.run_forever())
        try:
            yield
        finally:
            sweeper.cancel()
            webhooks.cancel()

    app = FastAPI(title="reelserve", version=__version__, lifespan=lifespan,
                  description="Self-hosted Kling 3.0 Standard compatible video API")
    app.state.service = service
    app.add_middleware(RequestMetrics)
    install_error_handlers(app)
    add_voice_routes(app, service)  # before /v2/{slug}, which would match its path
    _add_routes(app, service)
    add_request_routes(app, service)
    add_playground_routes(app)
    _add_operations_routes(app, service)
    return app


async def _sweep_forever(service: Service) -> None:
    interval = max(0.2, min(service.settings.sweep_interval_s, service.settings.retention_s / 2))
    while True:
        try:
            await anyio.to_thread.run_sync(service.sweep)
        except Exception:  # the sweeper must outlive a bad pass
            log.exception("sweep failed")
        await asyncio.sleep(interval)


def _add_routes(app: FastAPI, service: Service) -> None:
    submit_doc = _submit_openapi(schemas.Text2VideoRequest)

    @app.post("/v2/{slug}", response_model=schemas.SubmitResponse, openapi_extra=submit_doc,
              responses={400: {"model": schemas.ErrorBody}})
    async def submit_async(slug: str, request: Request) -> JSONResponse:
        job, balance = await service.submit(request, slug)
        return JSONResponse(service.urls(job.id),
                            headers={"x-remaining-credits": _credits(balance)})

    @app.post("/v1/{slug}", openapi_extra=submit_doc,
              responses={200: {"content": {"video/mp4": {}}}, 504: {"model": schemas.ErrorBody}})
    async def submit_sync(slug: str, request: Request) -> Response:
        job, balance = await service.submit(request, slug)
        deadline = asyncio.get_running_loop().time() + service.settings.sync_timeout_s
        while not job.state.is_terminal:
            if asyncio.get_running_loop().time() >= deadline:
                raise SyncTimeout(job.id, service.settings.sync_timeout_s)
            await asyncio.sleep(SYNC_POLL_S)
            current = service.store.get_job(job.id)
            if current is None:
                raise RequestNotFound(job.id)
            job = current
        if job.state is JobState.FAILED:
            failed = JobFailed(job.id, job.error or "failed")
            response = error_response(failed)
            response.status_code = job.error_status or 500
            return response
        assert job.output_key is not None
        headers = {"x-request-id": job.id, "x-remaining-credits": _credits(balance)}
        found = service.storage.locate(job.output_key)
        if isinstance(found, Path):
            return FileResponse(found, media_type="video/mp4", headers=headers)
        # Object storage: the bytes themselves, since clients need not follow redirects.
        chunks = iterate_in_threadpool(service.storage.read_chunks(job.output_key))
        return StreamingResponse(chunks, media_type="video/mp4", headers=headers)

    @app.get("/v2/requests/{request_id}/status", response_model=schemas.StatusBody,
             responses={422: {"model": schemas.StatusBody}, 404: {"model": schemas.ErrorBody}})
    async def request_status(request_id: str, request: Request) -> JSONResponse:
        key, job = service.own_job(request, request_id)
        return _job_response(service.status_body(job), job, key)

    @app.get("/v2/requests/{request_id}", response_model=schemas.ResultBody,
             responses={422: {"model": schemas.ResultBody}, 404: {"model": schemas.ErrorBody}})
    async def request_result(request_id: str, request: Request) -> JSONResponse:
        key, job = service.own_job(request, request_id)
        return _job_response(service.result_body(job), job, key)

    @app.get("/outputs/{output_key}", responses={200: {"content": {"video/mp4": {}}},
                                                  307: {"description": "object storage"}})
    def output_file(output_key: str) -> Response:
        """The MP4, with Range support: from disk, or a redirect to a presigned URL."""
        found = service.storage.locate(output_key)
        if isinstance(found, Path):
            return FileResponse(found, media_type="video/mp4")
        return RedirectResponse(found, status_code=307)


def _add_operations_routes(app: FastAPI, service: Service) -> None:
    """Probes for load balancers and the Prometheus scrape endpoint."""

    @app.get("/healthz")
    async def health() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", responses={503: {"model": schemas.ErrorBody}})
    async def ready() -> JSONResponse:
        """The store answers and a worker has a fresh heartbeat (or none is expected)."""
        reason = service.readiness()
        if reason is not None:
            return JSONResponse({"status": "not ready", "error": reason}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", response_class=Response)
    async def prometheus_metrics() -> Response:
        """Prometheus text format: every process's counters plus the queue, read now."""
        return Response(metrics.render_metrics(service.store),
                        media_type=metrics.CONTENT_TYPE)


def _job_response(body: dict[str, Any], job: Job, key: ApiKey) -> JSONResponse:
    status = 422 if job.state is JobState.FAILED else 200
    return JSONResponse(body, status_code=status,
                        headers={"x-remaining-credits": _credits(key.balance)})

