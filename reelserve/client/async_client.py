"""``AsyncReelserveClient``: the asyncio client, on ``httpx.AsyncClient``.

The same methods as ``ReelserveClient``, awaited; what they send and how they read
answers is shared in ``reelserve.client.wire``.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from reelserve.client.wire import (
    DEFAULT_BASE_URL,
    JobStatus,
    StatusFollower,
    base_url_of,
    read_answer,
    submit_body,
    submit_headers,
    unreachable,
)


class AsyncReelserveClient:
    """Submit, follow, cancel and download reelserve requests from asyncio code."""

    def __init__(self, base_url: str = DEFAULT_BASE_URL, api_key: str | None = None, *,
                 timeout: float = 30.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.base_url = base_url_of(base_url)
        self._timeout = timeout
        headers = {"x-api-key": api_key} if api_key else {}
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=headers,
                                       timeout=timeout, transport=transport)

    async def __aenter__(self) -> AsyncReelserveClient:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        traceback: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.TransportError as error:
            raise unreachable(self.base_url, error) from error
        return read_answer(response)

    async def submit(self, model: str, *, idempotency_key: str | None = None,
                     **params: Any) -> str:
        """Queue a request for ``model`` (a slug); its request id. None values are not sent."""
        body = await self._call("POST", f"/v2/{model}", json=submit_body(params),
                                headers=submit_headers(idempotency_key))
        return str(body["request_id"])

    async def status(self, request_id: str) -> JobStatus:
        """The request's status now; a FAILED one is returned, not raised."""
        return JobStatus.from_body(await self._call("GET", f"/v2/requests/{request_id}/status"))

    async def result(self, request_id: str) -> JobStatus:
        """The result body (``output`` when COMPLETED); raises ``RequestFailed`` if FAILED."""
        body = await self._call("GET", f"/v2/requests/{request_id}")
        return JobStatus.from_body(body).raise_if_failed()

    async def cancel(self, request_id: str) -> JobStatus:
        """Cancel a queued or running request; ``AlreadyFinished`` if it had ended."""
        body = await self._call("POST", f"/v2/requests/{request_id}/cancel")
        return JobStatus.from_body(body)

    async def recent(self, limit: int = 20) -> list[JobStatus]:
        """This key's recent requests, newest first."""
        body = await self._call("GET", "/v2/requests", params={"limit": limit})
        return [JobStatus.from_body(item) for item in body["requests"]]

    async def stream(self, request_id: str, *,
                     timeout: float | None = None) -> AsyncIterator[JobStatus]:
        """Each new status of the request, by Server-Sent Events, until it ends.

        Reconnects with ``Last-Event-ID`` when the stream drops; polls the status
        instead on a server without the events route. ``WaitTimeout`` past ``timeout``.
        """
        follower = StatusFollower(request_id, timeout)
        while True:
            error: httpx.TransportError | None = None
            try:
                async with self._http.stream(
                        "GET", follower.events_path(), headers=follower.headers(),
                        timeout=follower.stream_timeout(self._timeout)) as response:
                    if not response.is_success:
                        await response.aread()
                    if follower.events_unsupported(response):
                        break
                    async for line in response.aiter_lines():
                        status = follower.on_line(line)
                        if status is not None:
                            yield status
                            if status.is_terminal:
                                return
            except httpx.ConnectError as failed:
                raise unreachable(self.base_url, failed) from failed
            except httpx.TransportError as dropped:
                error = dropped
            follower.on_disconnect(error)
        async for status in self._poll(follower):  # NotFoundError if the request is unknown
            yield status

    async def _poll(self, follower: StatusFollower) -> AsyncIterator[JobStatus]:
        while True:
            status = follower.on_status(await self.status(follower.request_id))
            if status is not None:
                yield status
                if status.is_terminal:
                    return
            await asyncio.sleep(follower.poll_delay())

    async def wait(self, request_id: str, timeout: float = 900.0,
                   on_update: Callable[[JobStatus], object] | None = None) -> JobStatus:
        """Follow the request to its end; the COMPLETED result with ``output``.

        ``on_update`` (a function or a coroutine function) gets each new status.
        Raises ``RequestFailed`` when it FAILED and ``WaitTimeout`` past ``timeout``.
        """
        async for status in self.stream(request_id, timeout=timeout):
            if on_update is not None:
                outcome = on_update(status)
                if inspect.isawaitable(outcome):
                    await outcome
        return await self.result(request_id)

    async def download(self, url: str, path: str | Path) -> Path:
        """Save the output at ``url`` (it needs no key, so none is sent) to ``path``."""
        target = Path(path)
        partial = target.with_name(target.name + ".part")
        try:
            async with httpx.AsyncClient(follow_redirects=True, timeout=self._timeout) as http, \
                    http.stream("GET", url) as response:
                if not response.is_success:
                    await response.aread()
                    read_answer(response)
                with partial.open("wb") as file:
                    async for chunk in response.aiter_bytes():
                        file.write(chunk)
        except httpx.TransportError as error:
            partial.unlink(missing_ok=True)
            raise unreachable(url, error) from error
        partial.replace(target)
        return target
