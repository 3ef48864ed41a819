"""``/docs`` (Swagger UI) and ``/redoc`` from files this server serves itself.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so they are blank on a
machine without internet, the usual case for a self-hosted server. The assets
come from the ``fastapi-offline`` package, which ships them; the pages are
FastAPI's, pointed at ``/docs-assets``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.routing import Route

ASSETS_URL = "/docs-assets"
DOCS_URL, REDOC_URL = "/docs", "/redoc"
FAVICON_URL = "/favicon.ico"


def _assets_dir() -> Path:
    return Path(str(resources.files("fastapi_offline").joinpath("static")))


def add_docs_pages(app: FastAPI) -> None:
    """Replace FastAPI's CDN-backed ``/docs`` and ``/redoc`` with self-hosted ones."""
    app.router.routes[:] = [route for route in app.router.routes if not (
        isinstance(route, Route) and route.path in (DOCS_URL, REDOC_URL))]
    app.mount(ASSETS_URL, StaticFiles(directory=_assets_dir()), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url, title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=app.swagger_ui_oauth2_redirect_url,
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css", swagger_favicon_url=FAVICON_URL)

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url=openapi_url, title=f"{app.title} - ReDoc",
                              redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
                              redoc_favicon_url=FAVICON_URL, with_google_fonts=False)
