"""The one place where reelserve errors become HTTP status codes and JSON bodies."""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from reelserve import errors

log = logging.getLogger("reelserve.api")

STATUS_BY_ERROR: list[tuple[type[errors.ReelserveError], int]] = [
    (errors.InvalidParameter, 400),
    (errors.Unauthorized, 401),
    (errors.Forbidden, 403),
    (errors.NotFound, 404),
    (errors.InsufficientCredits, 406),
    (errors.Conflict, 409),
    (errors.UnsatisfiableRange, 416),
    (errors.IdempotencyMismatch, 422),
    (errors.JobFailed, 422),
    (errors.RateLimited, 429),
    (errors.EngineUnavailable, 502),
    (errors.StoreTimeout, 503),
    (errors.SyncTimeout, 504),
]


def status_for(error: errors.ReelserveError) -> int:
    for kind, status in STATUS_BY_ERROR:
        if isinstance(error, kind):
            return status
    return 500


def error_response(error: errors.ReelserveError) -> JSONResponse:
    status = status_for(error)
    headers: dict[str, str] = {}
    body: dict[str, object] = {"error": error.message}
    if isinstance(error, errors.RateLimited):
        now = datetime.now(UTC).timestamp()
        headers["Retry-After"] = str(max(1, math.ceil(error.reset_at - now)))
        headers["x-rate-limit-reset-at-utc"] = datetime.fromtimestamp(
            error.reset_at, UTC).isoformat().replace("+00:00", "Z")
    if isinstance(error, errors.StoreTimeout):
        headers["Retry-After"] = str(error.retry_after_s)
    if isinstance(error, errors.UnsatisfiableRange):
        headers["Content-Range"] = f"bytes */{error.size}"
    if isinstance(error, errors.SyncTimeout | errors.JobFailed):
        headers["x-request-id"] = error.request_id
        body["request_id"] = error.request_id
    if isinstance(error, errors.JobFailed):
        body["status"] = "FAILED"
    return JSONResponse(body, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    async def on_reelserve_error(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, errors.ReelserveError)
        return error_response(error)

    async def on_http_error(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, StarletteHTTPException)
        return JSONResponse({"error": str(error.detail)}, status_code=error.status_code,
                            headers=error.headers)

    async def on_invalid_request(_: Request, error: Exception) -> JSONResponse:
        # FastAPI's own checks of path and query parameters (e.g. ``limit``): the same
        # 400 naming the field as the body's rules, not a 422 in another shape.
        assert isinstance(error, RequestValidationError)
        first = error.errors()[0] if error.errors() else {}
        field = ".".join(str(part) for part in first.get("loc", ())[1:]) or "request"
        return error_response(errors.InvalidParameter(field, str(first.get("msg", "invalid"))))

    async def on_client_gone(request: Request, _: Exception) -> Response:
        # The client closed the connection mid-body: nobody is left to answer.
        log.debug("client left during %s %s", request.method, request.url.path)
        return Response(status_code=400)

    async def on_unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return JSONResponse({"error": "internal error"}, status_code=500)

    app.add_exception_handler(errors.ReelserveError, on_reelserve_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_invalid_request)
    app.add_exception_handler(ClientDisconnect, on_client_gone)
    app.add_exception_handler(Exception, on_unexpected)
