"""Probes for load balancers and the Prometheus scrape endpoint."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from reelserve import metrics
from reelserve.api.context import Context
from reelserve.catalog import schemas

router = APIRouter()


@router.get("/healthz", response_model=schemas.HealthBody)
async def health() -> dict[str, str]:
    """The process is up. Touches no store, so it answers while the store hangs."""
    return {"status": "ok"}


@router.get("/readyz", response_model=schemas.ReadyBody,
            responses={503: {"model": schemas.ReadyBody}})
async def ready(context: Context) -> JSONResponse:
    """The store answers and a worker has a fresh heartbeat (or none is expected)."""
    reason = await _unready_reason(context)
    found = context.store.durability_warnings
    warnings = {"warnings": list(found)} if found else {}
    if reason is not None:
        return JSONResponse({"status": "not ready", "error": reason, **warnings},
                            status_code=503)
    return JSONResponse({"status": "ready", **warnings})


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {metrics.CONTENT_TYPE: {}}}})
async def prometheus_metrics(context: Context) -> Response:
    """Prometheus text format: every process's counters plus the queue, read now."""
    return Response(await context.store.render_metrics(), media_type=metrics.CONTENT_TYPE)


async def _unready_reason(context: Context) -> str | None:
    """Why this server should not get traffic, or None when it is ready."""
    settings = context.api
    try:
        workers = await context.store.list_workers()
        now = await context.store.now() if workers else 0.0
    except Exception as error:  # any store failure means not ready, whatever it is
        return f"the job store does not answer: {error}"
    if settings.ready_without_workers:
        return None
    fresh_since = now - settings.worker_stale_s
    if not any(worker.last_seen >= fresh_since for worker in workers):
        return f"no worker has sent a heartbeat in the last {settings.worker_stale_s:g} s"
    return None
