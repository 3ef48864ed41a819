"""Lean copies of the hot routes: same path, methods and handler, less per-request work.

For every request FastAPI solves the route's parameters and dependencies, which was 11 %
of a submit's time on the event loop (bench/RESULTS.md, "Where a submit's time goes").
A submit and a status poll need none of it: they read the key header, one path
parameter and the body themselves. So each is served by a plain Starlette route put
ahead of all others, where no router is searched before it. The FastAPI route stays for
the OpenAPI document and calls the same handler, so the two cannot drift apart. Errors
raised by a handler reach the app's one error mapping (``api/errors.py``) as before.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Container, Mapping, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, APIRouter
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

Handler = Callable[[Request], Awaitable[Response]]
# Starlette's JSONResponse encoding, with one encoder made once instead of one per call.
_encode_json = json.JSONEncoder(ensure_ascii=False, allow_nan=False,
                                separators=(",", ":")).encode


class LeanRoute(Route):
    """Serves a FastAPI route's path and methods with a plain ``handler(request)``.

    ``only``: path parameters this route takes only with these values; a request with
    any other value goes on to the routes behind it (the FastAPI route, at the latest).
    """

    def __init__(self, documented: APIRoute, handler: Handler, *,
                 only: Mapping[str, Container[str]] | None = None) -> None:
        methods = set(documented.methods or ())
        super().__init__(documented.path, handler, methods=list(methods),
                         name=documented.name, include_in_schema=False)
        # Starlette adds HEAD to a GET route; the FastAPI route it stands for has none.
        self.methods = methods
        self.only = dict(only or {})
        self.app = _plain_endpoint(handler)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is Match.NONE:
            return match, child_scope
        params = child_scope["path_params"]
        if any(params[name] not in values for name, values in self.only.items()):
            return Match.NONE, {}
        # As FastAPI's routes do: the request metrics label requests by this template.
        child_scope["route"] = self
        return match, child_scope


def _plain_endpoint(handler: Handler) -> ASGIApp:
    """``handler`` as an ASGI app, without Starlette's per-route exception wrapper.

    ``Route`` wraps its endpoint in the app's exception handlers once more, with a
    closure per request and one per message sent. An error raised here reaches the
    very same handlers one layer out, in the app's ``ExceptionMiddleware``, and
    becomes the same answer (``tests/test_lean_routes.py`` compares them).
    """

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        response = await handler(Request(scope, receive, send))
        await response(scope, receive, send)

    return app


def lean_copy(router: APIRouter, endpoint: Callable[..., Any], handler: Handler, *,
              only: Mapping[str, Container[str]] | None = None) -> LeanRoute:
    """A ``LeanRoute`` for the route of ``router`` whose endpoint is ``endpoint``."""
    documented = next(route for route in router.routes
                      if isinstance(route, APIRoute) and route.endpoint is endpoint)
    return LeanRoute(documented, handler, only=only)


def serve_first(app: FastAPI, routes: Sequence[LeanRoute]) -> None:
    """Put ``routes`` ahead of all of ``app``'s routes, so no router is searched first.

    Only for routes (with their ``only``) that match no path another route serves.
    """
    app.router.routes[:0] = routes


class CreditsJsonResponse(Response):
    """A ``JSONResponse`` with ``x-remaining-credits``, byte for byte, built in one step.

    Its headers come out in the order ``JSONResponse(body, headers={...})`` gives them.
    """

    media_type = "application/json"

    def __init__(self, body: Any, status_code: int, remaining_credits: str) -> None:
        self.status_code = status_code
        self.background = None
        self.body = _encode_json(body).encode()
        self.raw_headers = [(b"x-remaining-credits", remaining_credits.encode()),
                            (b"content-length", str(len(self.body)).encode()),
                            (b"content-type", b"application/json")]
