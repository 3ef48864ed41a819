"""Submits: ``POST /v2/{slug}`` queues a job, ``POST /v1/{slug}`` also waits for its video."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, Response, StreamingResponse
from pydantic import BaseModel
from starlette.concurrency import iterate_in_threadpool
from starlette.requests import Request

from reelserve.api.context import ApiContext, Authenticated
from reelserve.api.errors import error_response
from reelserve.api.job_views import credits_text
from reelserve.api.lean_routes import CreditsJsonResponse, LeanRoute, lean_copy
from reelserve.catalog import MODELS, schemas
from reelserve.errors import JobFailed, ReelserveError, RequestNotFound, SyncTimeout
from reelserve.jobs import Job, JobState

router = APIRouter()

# The catalog's models, in the document; any other slug is a 404 after the key check
# (docs/contract-decisions.md), so the check itself stays in the submit path.
Slug = Annotated[str, PathParam(description="A model of the catalog",
                                json_schema_extra={"enum": list(MODELS)})]


def _submit_openapi(model: type[BaseModel]) -> dict[str, Any]:
    # The body is read by the one body reader, so FastAPI never registers the nested
    # models in components: inline them, or the document would hold references to nothing.
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


SUBMIT_DOC = _submit_openapi(schemas.Text2VideoRequest)


async def submit_async_lean(request: Request) -> Response:
    """``POST /v2/{slug}``, served without FastAPI's parameter solving (``api/lean_routes.py``).

    The key is checked first, as the ``Authenticated`` dependency does on other routes,
    from the identity this process keeps for a moment (``api/auth.py``): the store write
    refuses a revoked key, and a refusal reads the key again, so that a revoked key
    hears 401 before any other rule, as it would without the kept identity.
    """
    context: ApiContext = request.app.state.context
    key = await context.keys.require_submit_key(request)
    try:
        job, balance = await context.submitter.submit(request, key,
                                                      request.path_params["slug"])
    except ReelserveError as error:
        await context.keys.recheck_refused_submit(request, error)
        raise
    return CreditsJsonResponse(context.views.urls(job.id), 200, credits_text(balance))


@router.post("/v2/{slug}", response_model=schemas.SubmitResponse, openapi_extra=SUBMIT_DOC,
             responses={400: {"model": schemas.ErrorBody}})
async def submit_async(slug: Slug, request: Request) -> Response:
    # The OpenAPI entry (a docstring would show there); ``submit_async_lean`` serves the path.
    return await submit_async_lean(request)


def lean_route() -> LeanRoute:
    """``submit_async_lean`` for the catalog's slugs, ahead of every router.

    Another slug may be a route of its own (``/v2/kling-create-voice``), so it goes
    the FastAPI way: to that route, or to ``submit_async`` (a 404 after the key check).
    """
    return lean_copy(router, submit_async, submit_async_lean, only={"slug": MODELS})


@router.post("/v1/{slug}", openapi_extra=SUBMIT_DOC,
             responses={200: {"content": {"video/mp4": {}}}, 504: {"model": schemas.ErrorBody}})
async def submit_sync(slug: Slug, request: Request, caller: Authenticated) -> Response:
    context, key = caller
    job, balance = await context.submitter.submit(request, key.identity(), slug,
                                                  sync=True)
    job = await _wait_until_ended(context, job)
    if job.state is JobState.FAILED:
        response = error_response(JobFailed(job.id, job.error or "failed"))
        response.status_code = job.error_status or 500
        return response
    assert job.output_key is not None
    headers = {"x-request-id": job.id, "x-remaining-credits": credits_text(balance)}
    found = context.storage.locate(job.output_key)
    if isinstance(found, Path):
        return FileResponse(found, media_type="video/mp4", headers=headers)
    # Object storage: the bytes themselves, since clients need not follow redirects.
    chunks = iterate_in_threadpool(context.storage.read_chunks(job.output_key))
    return StreamingResponse(chunks, media_type="video/mp4", headers=headers)


async def _wait_until_ended(context: ApiContext, job: Job) -> Job:
    """The job once it has ended, through the process's shared watcher."""
    timeout_s = context.api.sync_timeout_s
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    async with context.watcher.subscribe(job.id) as subscription:
        while not job.state.is_terminal:
            left = deadline - loop.time()
            if left <= 0:
                raise SyncTimeout(job.id, timeout_s)
            sighting = await subscription.next(left)
            if sighting is None:
                continue
            if sighting.job is None:
                raise RequestNotFound(job.id)
            job = sighting.job
    return job
