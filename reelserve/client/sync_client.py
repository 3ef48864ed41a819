"""``ReelserveClient``: the blocking client, on ``httpx.Client``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
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


class ReelserveClient:
    """Submit, follow, cancel and download reelserve requests.

    ``base_url`` is the server (``http://127.0.0.1:8000``; a trailing ``/v1`` as the
    segmind SDK takes it is accepted). Errors are ``reelserve.client.errors`` classes.
    """

    def __init__(self, base_url: str = DEFAULT_BASE_URL, api_key: str | None = None, *,
                 timeout: float = 30.0, transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url_of(base_url)
        self._timeout = timeout
        headers = {"x-api-key": api_key} if api_key else {}
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout,
                                  transport=transport)

    def __enter__(self) -> ReelserveClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as error:
            raise unreachable(self.base_url, error) from error
        return read_answer(response)

    def submit(self, model: str, *, idempotency_key: str | None = None, **params: Any) -> str:
        """Queue a request for ``model`` (a slug); its request id. None values are not sent."""
        body = self._call("POST", f"/v2/{model}", json=submit_body(params),
                          headers=submit_headers(idempotency_key))
        return str(body["request_id"])

    def status(self, request_id: str) -> JobStatus:
        """The request's status now; a FAILED one is returned, not raised."""
        return JobStatus.from_body(self._call("GET", f"/v2/requests/{request_id}/status"))

    def result(self, request_id: str) -> JobStatus:
        """The result body (``output`` when COMPLETED); raises ``RequestFailed`` if FAILED."""
        body = self._call("GET", f"/v2/requests/{request_id}")
        return JobStatus.from_body(body).raise_if_failed()

    def cancel(self, request_id: str) -> JobStatus:
        """Cancel a queued or running request; ``AlreadyFinished`` if it had ended."""
        return JobStatus.from_body(self._call("POST", f"/v2/requests/{request_id}/cancel"))

    def recent(self, limit: int = 20) -> list[JobStatus]:
        """This key's recent requests, newest first."""
        body = self._call("GET", "/v2/requests", params={"limit": limit})
        return [JobStatus.from_body(item) for item in body["requests"]]

    def stream(self, request_id: str, *, timeout: float | None = None) -> Iterator[JobStatus]:
        """Each new status of the request, by Server-Sent Events, until it ends.

        Reconnects with ``Last-Event-ID`` when the stream drops; polls the status
        instead on a server without the events route. ``WaitTimeout`` past ``timeout``.
        """
        follower = StatusFollower(request_id, timeout)
        while True:
            error: httpx.TransportError | None = None
            try:
                with self._http.stream("GET", follower.events_path(), headers=follower.headers(),
                                       timeout=follower.stream_timeout(self._timeout)) as response:
                    if not response.is_success:
                        response.read()
                    if follower.events_unsupported(response):
                        break
                    for line in response.iter_lines():
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
        yield from self._poll(follower)  # raises NotFoundError if the request is unknown

    def _poll(self, follower: StatusFollower) -> Iterator[JobStatus]:
        while True:
            status = follower.on_status(self.status(follower.request_id))
            if status is not None:
                yield status
                if status.is_terminal:
                    return
            time.sleep(follower.poll_delay())

    def wait(self, request_id: str, timeout: float = 900.0,
             on_update: Callable[[JobStatus], object] | None = None) -> JobStatus:
        """Follow the request to its end; the COMPLETED result with ``output``.

        ``on_update`` is called with each new status. Raises ``RequestFailed`` when it
        FAILED (``canceled`` says whether by cancel) and ``WaitTimeout`` past ``timeout``.
        """
        for status in self.stream(request_id, timeout=timeout):
            if on_update is not None:
                on_update(status)
        return self.result(request_id)

    def download(self, url: str, path: str | Path) -> Path:
        """Save the output at ``url`` (it needs no key, so none is sent) to ``path``."""
        target = Path(path)
        partial = target.with_name(target.name + ".part")
        try:
            with httpx.stream("GET", url, follow_redirects=True,
                              timeout=self._timeout) as response:
                if not response.is_success:
                    response.read()
                    read_answer(response)
                with partial.open("wb") as file:
                    for chunk in response.iter_bytes():
                        file.write(chunk)
        except httpx.TransportError as error:
            partial.unlink(missing_ok=True)
            raise unreachable(url, error) from error
        partial.replace(target)
        return target
