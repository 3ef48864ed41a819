"""The baseline for bench/api.py: a FastAPI app with one JSON route, nothing behind it.

Served by the same uvicorn stack as reelserve, so the ratio measures what
reelserve's own work (auth, validation, the SQLite write) costs per request.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import FastAPI, Request


def create_app() -> FastAPI:
    app = FastAPI()

    @app.post("/v2/{slug}")
    async def submit(slug: str, request: Request) -> dict[str, Any]:
        body = await request.json()
        return {"request_id": str(uuid.uuid4()), "status": "QUEUED", "model": slug,
                "prompt": body.get("prompt")}

    @app.get("/v2/requests/{request_id}/status")
    async def status(request_id: str) -> dict[str, Any]:
        return {"request_id": request_id, "status": "QUEUED", "progress": 0.0}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
