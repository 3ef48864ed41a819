"""What the client raises: one branch of the ``ReelserveError`` tree.

Where a server-side class says the same thing, the client class subclasses it too,
so ``except reelserve.errors.Unauthorized`` works on both sides::

    ReelserveError
    └── ClientError                      anything the client raises
        ├── ApiError                     the server answered an error (status_code, body)
        │   ├── BadRequest               400, and 422 for an Idempotency-Key reused
        │   ├── AuthenticationFailed     401  (also errors.Unauthorized)
        │   ├── PermissionDenied         403  (also errors.Forbidden)
        │   ├── NotFoundError            404  (also errors.NotFound)
        │   ├── NotEnoughCredits         406
        │   ├── AlreadyFinished          409  (also errors.Conflict)
        │   ├── RateLimitExceeded        429  (retry_after)
        │   └── ServerError              5xx
        ├── RequestFailed                the request ended FAILED (also errors.JobFailed)
        ├── WaitTimeout                  it did not end within the time given
        └── ServerUnreachable            no answer: connection refused, DNS, network
"""

from __future__ import annotations

from typing import Any

from reelserve.errors import Conflict, Forbidden, JobFailed, NotFound, ReelserveError, Unauthorized


class ClientError(ReelserveError):
    """Root of what the reelserve client raises."""


class ApiError(ClientError):
    """The server answered with an error status; ``message`` is its ``error`` field."""

    def __init__(self, message: str, status_code: int, body: Any = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body


class BadRequest(ApiError):
    pass


class AuthenticationFailed(ApiError, Unauthorized):
    pass


class PermissionDenied(ApiError, Forbidden):
    pass


class NotFoundError(ApiError, NotFound):
    pass


class NotEnoughCredits(ApiError):
    pass


class AlreadyFinished(ApiError, Conflict):
    pass


class RateLimitExceeded(ApiError):
    def __init__(self, message: str, status_code: int, body: Any = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message, status_code, body)
        self.retry_after = retry_after


class ServerError(ApiError):
    pass


class RequestFailed(ClientError, JobFailed):
    """The request ended FAILED; ``canceled`` when it was canceled."""

    def __init__(self, request_id: str, error: str, canceled: bool = False) -> None:
        super().__init__(request_id, error)
        self.canceled = canceled


class WaitTimeout(ClientError):
    def __init__(self, request_id: str, timeout_s: float) -> None:
        super().__init__(f"request {request_id} did not finish within {timeout_s:g} s")
        self.request_id = request_id
        self.timeout_s = timeout_s


class ServerUnreachable(ClientError):
    def __init__(self, base_url: str, reason: str) -> None:
        super().__init__(f"cannot reach {base_url}: {reason}")
        self.base_url = base_url
        self.reason = reason


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest, 401: AuthenticationFailed, 403: PermissionDenied, 404: NotFoundError,
    406: NotEnoughCredits, 409: AlreadyFinished, 422: BadRequest,
}


def api_error(status_code: int, body: Any, headers: dict[str, str]) -> ApiError:
    """The exception for an error answer with this status, body and headers."""
    message = body.get("error") if isinstance(body, dict) else None
    if not isinstance(message, str):
        message = f"HTTP {status_code}"
    if status_code == 429:
        retry_after = headers.get("retry-after", "")
        seconds = float(retry_after) if retry_after.replace(".", "", 1).isdigit() else None
        return RateLimitExceeded(message, status_code, body, retry_after=seconds)
    kind = _BY_STATUS.get(status_code, ServerError if status_code >= 500 else ApiError)
    return kind(message, status_code, body)
