"""What the routers share, built once by the app factory and injected with ``Depends``.

Routers import this module, never the factory, so no import runs in a circle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from starlette.requests import Request

from reelserve.api.async_store import AsyncStore
from reelserve.api.auth import KeyChecker
from reelserve.api.job_views import JobViews
from reelserve.api.job_watcher import JobWatcher
from reelserve.api.submits import Submitter
from reelserve.jobs import ApiKey
from reelserve.settings import Settings
from reelserve.storage import Storage


@dataclass(frozen=True)
class ApiContext:
    settings: Settings
    store: AsyncStore
    storage: Storage
    keys: KeyChecker
    views: JobViews
    submitter: Submitter
    watcher: JobWatcher


def api_context(request: Request) -> ApiContext:
    context: ApiContext = request.app.state.context
    return context


async def caller_key(request: Request) -> ApiKey:
    """The caller's API key; 401 before anything else is looked at."""
    return await api_context(request).keys.require_key(request)


Context = Annotated[ApiContext, Depends(api_context)]
CallerKey = Annotated[ApiKey, Depends(caller_key)]
