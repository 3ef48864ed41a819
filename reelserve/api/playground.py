"""The web playground at ``/``: one static page that calls the API from the browser.

The page loads nothing from elsewhere (no CDN, no build step); its policy lets it
talk to this server only, and play outputs wherever storage serves them.
"""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response

PAGE = "static/playground.html"
FAVICON = "static/favicon.ico"
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self' 'unsafe-inline'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    # Outputs may be presigned object-storage URLs on another host.
    "media-src 'self' blob: http: https:",
    "connect-src 'self'",
    "frame-ancestors 'none'",
])


def add_playground_routes(app: FastAPI) -> None:
    """Serve the playground page at ``/`` and the site's icon at ``/favicon.ico``."""
    page = resources.files("reelserve.api").joinpath(PAGE).read_text(encoding="utf-8")
    icon = resources.files("reelserve.api").joinpath(FAVICON).read_bytes()
    headers = {"content-security-policy": CONTENT_SECURITY_POLICY, "cache-control": "no-cache",
               "x-content-type-options": "nosniff"}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def playground() -> HTMLResponse:
        """The playground: every parameter of both models, live progress, recent jobs."""
        return HTMLResponse(page, headers=headers)

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return Response(icon, media_type="image/vnd.microsoft.icon",
                        headers={"cache-control": "public, max-age=86400"})
