"""The one reader of JSON request bodies: every route that takes JSON goes through it.

Rules, each a 400 naming ``body`` (or the field at fault):

- **size**: at most ``max_bytes``. A declared Content-Length over the cap is refused
  before reading; otherwise bytes are counted as they stream and the read stops at
  the first chunk past the cap, so an endless body never sits in memory whole.
- **JSON**: valid UTF-8 and strict JSON (raw control characters inside strings are
  invalid JSON; NaN and Infinity pass here and are refused by the fields' rules).
- **depth**: objects and arrays nest at most ``MAX_DEPTH`` levels.
- **text**: no string (key or value) holds a lone surrogate, which no store can encode.
  The other control-character rules depend on the field (tab and newline are fine in
  a prompt, never in a URL), so the fields' own checks apply them.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import Request

from reelserve.errors import InvalidParameter

MAX_DEPTH = 32
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


async def read_json_body(request: Request, max_bytes: int) -> Any:
    """The request's parsed JSON body, checked against the rules above."""
    return parse_json_body(await read_capped(request, max_bytes))


async def read_capped(request: Request, max_bytes: int) -> bytes:
    """The raw body, refused as soon as it passes ``max_bytes``."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_big(max_bytes)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise _too_big(max_bytes)
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def parse_json_body(raw: bytes) -> Any:
    try:
        body = json.loads(raw)
    # ValueError: JSONDecodeError and integers too long to convert; RecursionError: deep nesting
    except RecursionError as error:
        raise _too_deep() from error
    except (UnicodeDecodeError, ValueError) as error:
        raise InvalidParameter("body", f"must be valid JSON ({error})") from error
    check_json_value(body)
    return body


def check_json_value(body: Any) -> None:
    """Refuse nesting past ``MAX_DEPTH`` and lone surrogates; linear in the containers."""
    stack: list[tuple[Any, str, int]] = [(body, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            _check_text(value, path or "body")
        elif isinstance(value, dict | list):
            if depth >= MAX_DEPTH:
                raise _too_deep()
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for name, item in items:
                if isinstance(name, str):
                    _check_text(name, path or "body")
                    where = f"{path}.{name}" if path else name
                else:
                    where = f"{path}[{name}]"
                if isinstance(item, str | dict | list):
                    stack.append((item, where, depth + 1))


def _check_text(value: str, where: str) -> None:
    # isascii() is O(1) in CPython: a 50 MB base64 data: URL costs nothing here.
    if value.isascii():
        return
    found = _LONE_SURROGATE.search(value)
    if found is not None:
        raise InvalidParameter(where, f"must be valid Unicode text (lone surrogate "
                                      f"U+{ord(found.group()):04X} at position {found.start()})")


def _too_big(max_bytes: int) -> InvalidParameter:
    return InvalidParameter("body", f"must be at most {max_bytes} bytes")


def _too_deep() -> InvalidParameter:
    return InvalidParameter("body", f"must not nest objects and arrays more than {MAX_DEPTH} "
                                    "levels deep")
