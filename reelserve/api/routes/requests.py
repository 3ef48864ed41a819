"""A key's own requests: status, result, cancel, live events, history and webhooks.

The contract's four states stay: a canceled request is FAILED with
``error: "canceled"`` and ``canceled: true``, so existing clients (the segmind
SDK among them) see it end instead of polling forever.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.requests import Request

from reelserve.api.async_store import JobSighting
from reelserve.api.context import ApiContext, CallerKey, Context
from reelserve.api.job_views import credits_text, status_body
from reelserve.api.lean_routes import CreditsJsonResponse, LeanRoute, lean_copy
from reelserve.catalog import schemas
from reelserve.errors import RequestNotFound
from reelserve.jobs import ApiKey, Job, JobState
from reelserve.webhooks import new_secret

router = APIRouter()
KEEPALIVE_S = 15.0
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": schemas.ErrorBody}}


async def request_status_lean(request: Request) -> Response:
    """The status poll, served without FastAPI's parameter solving (``api/lean_routes.py``)."""
    context: ApiContext = request.app.state.context
    key = await context.keys.require_key(request)
    sighting = await context.views.own_sighting(key, request.path_params["request_id"])
    status = 422 if sighting.job is not None and sighting.job.state is JobState.FAILED else 200
    return CreditsJsonResponse(status_body(sighting), status, credits_text(key.balance))


@router.get("/v2/requests/{request_id}/status", response_model=schemas.StatusBody,
            responses={422: {"model": schemas.StatusBody}, **NOT_FOUND})
async def request_status(request_id: str, request: Request) -> Response:
    # The OpenAPI entry (a docstring would show there); ``request_status_lean`` serves the path.
    return await request_status_lean(request)


def lean_route() -> LeanRoute:
    """``request_status_lean``, ahead of every router: no other route has its paths."""
    return lean_copy(router, request_status, request_status_lean)


@router.get("/v2/requests/{request_id}", response_model=schemas.ResultBody,
            responses={422: {"model": schemas.ResultBody}, **NOT_FOUND})
async def request_result(request_id: str, key: CallerKey, context: Context) -> JSONResponse:
    job = await context.views.own_job(key, request_id)
    return _job_response(await context.views.result_body(job), job, key)


@router.post("/v2/requests/{request_id}/cancel", response_model=schemas.StatusBody,
             responses={409: {"model": schemas.ErrorBody}, **NOT_FOUND})
async def cancel(request_id: str, key: CallerKey, context: Context) -> JSONResponse:
    """Stop a queued or running request and release its credits."""
    job = await context.views.own_job(key, request_id)
    canceled = await context.store.cancel_job(job.id)
    balance = (await context.store.get_key(key.id)).balance
    return JSONResponse(await context.views.status_body(canceled),
                        headers={"x-remaining-credits": credits_text(balance)})


@router.get("/v2/requests/{request_id}/events",
            responses={200: {"content": {"text/event-stream": {}}}, **NOT_FOUND})
async def events(request_id: str, request: Request, key: CallerKey,
                 context: Context) -> StreamingResponse:
    """Server-Sent Events: the status body each time it changes, until the request ends.

    Event ids count up; a client that reconnects with ``Last-Event-ID`` gets the
    current status at once, numbered after the last event it saw.
    """
    job = await context.views.own_job(key, request_id)
    last_id = request.headers.get("last-event-id", "")
    first = int(last_id) + 1 if last_id.isdigit() and len(last_id) < 18 else 1
    return StreamingResponse(_event_stream(context, job, first), media_type="text/event-stream",
                             headers={"cache-control": "no-cache"})


@router.get("/v2/requests", response_model=schemas.RequestList)
async def recent(key: CallerKey, context: Context,
                 limit: int = Query(20, ge=1, le=100)) -> JSONResponse:
    """This key's recent requests that have not expired, newest first."""
    items = []
    for job in await context.store.list_jobs(key.id, limit):
        item: dict[str, Any] = await context.views.status_body(job)
        if job.state is JobState.COMPLETED:
            item.update(context.views.completed_body(job))
        item["model"] = job.slug
        item["prompt"] = job.params.prompt
        items.append(item)
    return JSONResponse({"requests": items})


@router.get("/v2/requests/{request_id}/webhooks", response_model=schemas.WebhookLog,
            responses=NOT_FOUND)
async def webhook_log(request_id: str, key: CallerKey, context: Context) -> JSONResponse:
    """Every delivery try of this request's webhook: when, and what came back."""
    job = await context.views.own_job(key, request_id)
    return JSONResponse({"request_id": job.id, "webhook_url": job.webhook_url,
                         "deliveries": await context.store.webhook_log(job.id)})


@router.get("/v2/webhooks/secret", response_model=schemas.WebhookSecret)
async def webhook_secret(key: CallerKey, context: Context) -> JSONResponse:
    """The key's signing secret for webhooks (Standard Webhooks ``whsec_...``)."""
    return JSONResponse({"secret": await context.store.webhook_secret(key.id, new_secret())})


def _job_response(body: dict[str, Any], job: Job, key: ApiKey) -> JSONResponse:
    status = 422 if job.state is JobState.FAILED else 200
    return JSONResponse(body, status_code=status,
                        headers={"x-remaining-credits": credits_text(key.balance)})


async def _event_stream(context: ApiContext, job: Job, first_id: int) -> AsyncIterator[bytes]:
    first = await context.views.sight(job)
    yield _sse(first_id, "status", status_body(first))
    event_id, last_sent = first_id + 1, _changing(first)
    if job.state.is_terminal:
        return
    async with context.watcher.subscribe(job.id) as subscription:
        while True:
            sighting = await subscription.next(KEEPALIVE_S)
            if sighting is None:
                yield b": keep-alive\n\n"
                continue
            seen = sighting.job
            if seen is None:
                yield _sse(event_id, "error", {"error": str(RequestNotFound(job.id))})
                return
            if seen.state is JobState.QUEUED:  # the same reason a poll would give
                sighting = replace(sighting,
                                   waiting_for=await context.views.waiting_for(seen.slug))
            if _changing(sighting) != last_sent:
                yield _sse(event_id, "status", status_body(sighting))
                event_id += 1
                last_sent = _changing(sighting)
            if seen.state.is_terminal:
                return


def _changing(sighting: JobSighting) -> tuple[Any, ...]:
    job = sighting.job
    assert job is not None
    return job.state, round(job.progress, 4), sighting.queue_position, sighting.waiting_for


def _sse(event_id: int, kind: str, data: dict[str, Any]) -> bytes:
    return f"id: {event_id}\nevent: {kind}\ndata: {json.dumps(data)}\n\n".encode()
