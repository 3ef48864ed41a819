"""Routes beyond the contract for one's own requests: cancel, live events, history, webhooks.

The contract's four states stay: a canceled request is FAILED with
``error: "canceled"`` and ``canceled: true``, so existing clients (the segmind
SDK among them) see it end instead of polling forever.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from reelserve.catalog import schemas
from reelserve.errors import RequestNotFound
from reelserve.webhooks import new_secret

if TYPE_CHECKING:
    from reelserve.api.app import Service

EVENT_POLL_S = 0.25
KEEPALIVE_S = 15.0


def add_request_routes(app: FastAPI, service: Service) -> None:
    @app.post("/v2/requests/{request_id}/cancel", response_model=schemas.StatusBody,
              responses={404: {"model": schemas.ErrorBody}, 409: {"model": schemas.ErrorBody}})
    async def cancel(request_id: str, request: Request) -> JSONResponse:
        """Stop a queued or running request and release its credits."""
        key, job = service.own_job(request, request_id)
        canceled = service.store.cancel_job(job.id)
        return JSONResponse(service.status_body(canceled),
                            headers={"x-remaining-credits": _credits(service, key.id)})

    @app.get("/v2/requests/{request_id}/events",
             responses={200: {"content": {"text/event-stream": {}}}})
    async def events(request_id: str, request: Request) -> StreamingResponse:
        """Server-Sent Events: the status body each time it changes, until the request ends.

        Event ids count up; a client that reconnects with ``Last-Event-ID`` gets the
        current status at once, numbered after the last event it saw.
        """
        key, job = service.own_job(request, request_id)
        last_id = request.headers.get("last-event-id", "")
        first = int(last_id) + 1 if last_id.isdigit() else 1
        return StreamingResponse(_event_stream(service, request, job.id, key.id, first),
                                 media_type="text/event-stream",
                                 headers={"cache-control": "no-cache"})

    @app.get("/v2/requests")
    async def recent(request: Request,
                     limit: int = Query(20, ge=1, le=100)) -> JSONResponse:
        """This key's recent requests that have not expired, newest first."""
        key = service.require_key(request)
        items = []
        for job in service.store.list_jobs(key.id, limit):
            item: dict[str, Any] = {**service.result_body(job), **service.status_body(job)}
            item["model"] = job.slug
            item["prompt"] = job.params.prompt
            items.append(item)
        return JSONResponse({"requests": items})

    @app.get("/v2/requests/{request_id}/webhooks")
    async def webhook_log(request_id: str, request: Request) -> JSONResponse:
        """Every delivery try of this request's webhook: when, and what came back."""
        _, job = service.own_job(request, request_id)
        return JSONResponse({"request_id": job.id, "webhook_url": job.webhook_url,
                             "deliveries": service.store.webhook_log(job.id)})

    @app.get("/v2/webhooks/secret")
    async def webhook_secret(request: Request) -> JSONResponse:
        """The key's signing secret for webhooks (Standard Webhooks ``whsec_...``)."""
        key = service.require_key(request)
        return JSONResponse({"secret": service.store.webhook_secret(key.id, new_secret())})


def _credits(service: Service, key_id: int) -> str:
    return f"{service.store.get_key(key_id).balance / 1000:.3f}"


async def _event_stream(service: Service, request: Request, job_id: str, key_id: int,
                        first_id: int) -> AsyncIterator[bytes]:
    event_id, last_sent, quiet_since = first_id, None, asyncio.get_running_loop().time()
    while not await request.is_disconnected():
        job = service.store.get_job(job_id)
        if job is None or job.key_id != key_id:
            yield _sse(event_id, "error", {"error": str(RequestNotFound(job_id))})
            return
        body = service.status_body(job)
        changing = {k: body.get(k) for k in ("status", "progress", "queue_position")}
        now = asyncio.get_running_loop().time()
        if changing != last_sent:
            yield _sse(event_id, "status", body)
            event_id, last_sent, quiet_since = event_id + 1, changing, now
        elif now - quiet_since >= KEEPALIVE_S:
            yield b": keep-alive\n\n"
            quiet_since = now
        if job.state.is_terminal:
            return
        await asyncio.sleep(EVENT_POLL_S)


def _sse(event_id: int, kind: str, data: dict[str, Any]) -> bytes:
    return f"id: {event_id}\nevent: {kind}\ndata: {json.dumps(data)}\n\n".encode()
