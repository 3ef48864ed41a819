"""Output files: ``GET`` and ``HEAD /outputs/{key}``, capability URLs served without a key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse, Response
from starlette.responses import MalformedRangeHeader, RangeNotSatisfiable
from starlette.types import Receive, Scope, Send

from reelserve.api.context import Context
from reelserve.api.errors import error_response
from reelserve.catalog import schemas
from reelserve.errors import InvalidParameter, UnsatisfiableRange

router = APIRouter()


OUTPUT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"video/mp4": {}}}, 206: {"content": {"video/mp4": {}}},
    307: {"description": "object storage"}, 400: {"model": schemas.ErrorBody},
    404: {"model": schemas.ErrorBody}, 416: {"model": schemas.ErrorBody}}


@router.head("/outputs/{output_key}", operation_id="output_file_headers",
             responses=OUTPUT_RESPONSES)
@router.get("/outputs/{output_key}", operation_id="output_file", responses=OUTPUT_RESPONSES)
def output_file(output_key: str, context: Context) -> Response:
    """The MP4, with Range support: from disk, or a redirect to a presigned URL.

    ``HEAD`` answers the same status and headers as ``GET``, without the bytes.
    """
    found = context.storage.locate(output_key)
    if isinstance(found, Path):
        return OutputFile(found, media_type="video/mp4", stat_result=found.stat())
    return RedirectResponse(found, status_code=307)


class OutputFile(FileResponse):
    """A file response whose Range errors are JSON like every other error.

    Starlette answers a malformed Range with a text/plain 400 and an unsatisfiable
    one with an empty 416; the same parser (Starlette's own, so both always agree)
    runs first here, and its refusals go through the one error mapping.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        http_range = _header(scope, b"range")
        if_range = _header(scope, b"if-range")
        if http_range is not None and self.stat_result is not None \
                and (if_range is None or self._should_use_range(if_range)):
            size = self.stat_result.st_size
            try:
                self._parse_range_header(http_range, size)
            except MalformedRangeHeader as error:
                shown = http_range if len(http_range) <= 64 else http_range[:61] + "..."
                refusal = InvalidParameter("Range", f"{error.content} (got {shown!r})")
                await error_response(refusal)(scope, receive, send)
                return
            except RangeNotSatisfiable:
                await error_response(UnsatisfiableRange(http_range, size))(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None
