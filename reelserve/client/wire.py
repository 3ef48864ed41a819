"""What the sync and async clients share: URLs, bodies, answers, and the event stream.

Both clients do their I/O themselves and hand everything else to this module, so
the two cannot drift apart in what they send or how they read an answer.
"""

from __future__ import annotations

import base64
import json
import mimetypes
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from reelserve.client.errors import (
    ClientError,
    NotFoundError,
    RequestFailed,
    ServerUnreachable,
    WaitTimeout,
    api_error,
)
from reelserve.jobs.states import JobState

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
POLL_INTERVAL_S = 0.5
# The server sends a keep-alive comment every 15 s; a quieter stream is dead.
STREAM_READ_TIMEOUT_S = 45.0
MAX_QUIET_RECONNECTS = 5


@dataclass(frozen=True)
class JobStatus:
    """A status or result body, typed; fields the server did not send are None."""

    request_id: str
    status: JobState
    progress: float = 0.0
    queue_position: int | None = None
    eta_seconds: float | None = None
    error: str | None = None
    canceled: bool = False
    created_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    output: str | None = None
    metrics: dict[str, Any] | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> JobStatus:
        return cls(
            request_id=str(body["request_id"]), status=JobState(body["status"]),
            progress=float(body.get("progress") or 0.0),
            queue_position=body.get("queue_position"), eta_seconds=body.get("eta_seconds"),
            error=body.get("error"), canceled=bool(body.get("canceled", False)),
            created_at=_when(body.get("created_at")), started_at=_when(body.get("started_at")),
            completed_at=_when(body.get("completed_at")),
            output=body.get("output"), metrics=body.get("metrics"), raw=body,
        )

    def raise_if_failed(self) -> JobStatus:
        if self.status is JobState.FAILED:
            raise RequestFailed(self.request_id, self.error or "failed", self.canceled)
        return self


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def base_url_of(url: str) -> str:
    """``http://host:port`` from what users paste, including the SDK's ``.../v1``."""
    url = url.strip().rstrip("/")
    for suffix in ("/v1", "/v2"):
        url = url.removesuffix(suffix)
    return url


def submit_body(params: dict[str, Any]) -> dict[str, Any]:
    """The JSON body of a submit: parameters left as None are not sent."""
    return {name: value for name, value in params.items() if value is not None}


def submit_headers(idempotency_key: str | None) -> dict[str, str]:
    return {"idempotency-key": idempotency_key} if idempotency_key else {}


def image_url(path_or_url: str | Path) -> str:
    """An http(s) or data: URL as it is; a local file as a ``data:`` URL."""
    text = str(path_or_url)
    if text.startswith(("http://", "https://", "data:")):
        return text
    path = Path(text).expanduser()
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def read_answer(response: httpx.Response) -> Any:
    """The JSON body of an answer that has been read; an ``ApiError`` for error statuses.

    A FAILED request's status or result is served with 422 and a status body: that is
    an answer about the request, not an error of the call, so it is returned.
    """
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if response.is_success:
        return body
    if response.status_code == 422 and isinstance(body, dict) and body.get("status") == "FAILED" \
            and "request_id" in body:
        return body
    raise api_error(response.status_code, body, dict(response.headers))


def unreachable(base_url: str, error: httpx.TransportError) -> ServerUnreachable:
    return ServerUnreachable(base_url, f"{type(error).__name__}: {error}" if str(error)
                             else type(error).__name__)


@dataclass
class ServerEvent:
    id: str | None
    event: str
    data: str


class EventParser:
    """Server-Sent Events from a stream of lines (the WHATWG event stream format)."""

    def __init__(self) -> None:
        self._id: str | None = None
        self._event = "message"
        self._data: list[str] = []

    def feed(self, line: str) -> ServerEvent | None:
        """Take one line (without its newline); the event it completes, if any."""
        if not line:
            if not self._data:
                self._event = "message"
                return None
            event = ServerEvent(self._id, self._event, "\n".join(self._data))
            self._event, self._data = "message", []
            return event
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            self._id = value
        return None


class StatusFollower:
    """The state of following one request by events (or polls) until it ends.

    It keeps the deadline, the last event id for reconnects and the last status
    seen; the clients only open connections and sleep.
    """

    def __init__(self, request_id: str, timeout: float | None) -> None:
        self.request_id = request_id
        self.timeout = timeout
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._parser = EventParser()
        self._last_event_id: str | None = None
        self._last_seen: tuple[Any, ...] | None = None
        self._quiet_reconnects = 0

    def events_path(self) -> str:
        return f"/v2/requests/{self.request_id}/events"

    def headers(self) -> dict[str, str]:
        base = {"accept": "text/event-stream"}
        return {**base, "last-event-id": self._last_event_id} if self._last_event_id else base

    def remaining(self) -> float | None:
        """Seconds left; raises ``WaitTimeout`` once they are spent."""
        if self._deadline is None or self.timeout is None:
            return None
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise WaitTimeout(self.request_id, self.timeout)
        return left

    def stream_timeout(self, connect_s: float) -> httpx.Timeout:
        left = self.remaining()
        read = STREAM_READ_TIMEOUT_S if left is None else min(left, STREAM_READ_TIMEOUT_S)
        return httpx.Timeout(connect_s, read=read)

    def poll_delay(self) -> float:
        left = self.remaining()
        return POLL_INTERVAL_S if left is None else min(left, POLL_INTERVAL_S)

    def events_unsupported(self, response: httpx.Response) -> bool:
        """True when the server has no events route (poll then); raises other errors.

        Call it with the body read when the status is not a success. An unknown
        request is a 404 too: the first poll tells the two apart.
        """
        if response.status_code == 404:
            return True
        if not response.is_success:
            read_answer(response)
        return False

    def on_line(self, line: str) -> JobStatus | None:
        """A line of the event stream; the status it completes, if it is a new one."""
        self.remaining()
        event = self._parser.feed(line)
        if event is None:
            return None
        if event.id is not None:
            self._last_event_id = event.id
        self._quiet_reconnects = 0
        if event.event == "error":
            message = json.loads(event.data).get("error", "request not found")
            raise NotFoundError(message, 404, {"error": message})
        if event.event != "status":
            return None
        return self.on_status(JobStatus.from_body(json.loads(event.data)))

    def on_status(self, status: JobStatus) -> JobStatus | None:
        """``status`` if it differs from the last one seen, else None (nothing new)."""
        seen = (status.status, status.progress, status.queue_position)
        if seen == self._last_seen and not status.is_terminal:
            return None
        self._last_seen = seen
        return status

    def on_disconnect(self, error: Exception | None) -> None:
        """The stream ended before the request did: reconnect, or give up by raising."""
        self.remaining()
        self._quiet_reconnects += 1
        if self._quiet_reconnects > MAX_QUIET_RECONNECTS:
            reason = f"{type(error).__name__}: {error}" if error else "no events"
            raise ClientError(f"the event stream of {self.request_id} keeps dropping "
                              f"({reason})") from error
        self._parser = EventParser()
