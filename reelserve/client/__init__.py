"""A Python client for reelserve (and the Kling 3.0 contract it serves), on httpx.

::

    from reelserve.client import ReelserveClient

    with ReelserveClient("http://127.0.0.1:8000", api_key="rs_...") as client:
        request_id = client.submit("kling-3-standard-text2video", prompt="a lighthouse",
                                   duration="5", idempotency_key="my-job-1")
        done = client.wait(request_id, timeout=600, on_update=print)
        client.download(done.output, "lighthouse.mp4")

``AsyncReelserveClient`` has the same methods, awaited (``stream`` is an async
iterator). Errors are the ``reelserve.client.errors`` classes.
"""

from reelserve.client.async_client import AsyncReelserveClient
from reelserve.client.errors import (
    AlreadyFinished,
    ApiError,
    AuthenticationFailed,
    BadRequest,
    ClientError,
    NotEnoughCredits,
    NotFoundError,
    PermissionDenied,
    RateLimitExceeded,
    RequestFailed,
    ServerError,
    ServerUnreachable,
    WaitTimeout,
)
from reelserve.client.sync_client import ReelserveClient
from reelserve.client.wire import JobStatus, image_url

__all__ = [
    "AlreadyFinished", "ApiError", "AsyncReelserveClient", "AuthenticationFailed", "BadRequest",
    "ClientError", "JobStatus", "NotEnoughCredits", "NotFoundError", "PermissionDenied",
    "RateLimitExceeded", "ReelserveClient", "RequestFailed", "ServerError", "ServerUnreachable",
    "WaitTimeout", "image_url",
]
