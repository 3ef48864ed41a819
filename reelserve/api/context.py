"""What the routers share, built once by the app factory and injected with ``Depends``.

Routers import this module, never the factory, so no import runs in a circle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, NamedTuple

from fastapi import Depends
from starlette.requests import Request

from reelserve.api.async_store import AsyncStore
from reelserve.api.auth import KeyChecker
from reelserve.api.job_views import JobViews
from reelserve.api.job_watcher import JobWatcher
from reelserve.api.submits import Submitter
from reelserve.jobs import ApiKey
from reelserve.settings_sections import ApiSettings
from reelserve.storage import Storage


@dataclass(frozen=True)
class ApiContext:
    api: ApiSettings
    store: AsyncStore
    storage: Storage
    keys: KeyChecker
    views: JobViews
    submitter: Submitter
    watcher: JobWatcher


async def api_context(request: Request) -> ApiContext:
    # async on purpose: FastAPI runs a plain ``def`` dependency on a worker thread,
    # a hop per request for a dictionary lookup.
    context: ApiContext = request.app.state.context
    return context


async def caller_key(request: Request) -> ApiKey:
    """The caller's API key; 401 before anything else is looked at."""
    context: ApiContext = request.app.state.context
    return await context.keys.require_key(request)


class Caller(NamedTuple):
    """The shared parts and the caller's key: one dependency where a route needs both."""

    context: ApiContext
    key: ApiKey


async def authenticated_caller(request: Request) -> Caller:
    """The parts and the caller's key, checked first (401 before anything else)."""
    context: ApiContext = request.app.state.context
    return Caller(context, await context.keys.require_key(request))


Context = Annotated[ApiContext, Depends(api_context)]
CallerKey = Annotated[ApiKey, Depends(caller_key)]
# One dependency instead of Context and CallerKey: FastAPI solves each dependency on
# every request, which is measurable on the submit path.
Authenticated = Annotated[Caller, Depends(authenticated_caller)]
