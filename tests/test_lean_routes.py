"""The lean submit and status routes answer exactly as the FastAPI routes they stand for.

Two apps over two fresh SQLite stores get the same requests: one as ``create_app`` builds
it, one with the lean routes taken out, so FastAPI's own routes answer. Request ids and
timestamps differ between the two and are masked; everything else (status, headers in
order, body bytes) must be equal.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.responses import JSONResponse

from reelserve.api import create_app
from reelserve.api.lean_routes import CreditsJsonResponse, LeanRoute
from reelserve.jobs.backends import open_store
from reelserve.keys import issue_key
from reelserve.settings import Settings
from reelserve.storage import LocalStorage

from conftest import I2V, T2V

BODY = {"prompt": "a kite over the dunes", "duration": "3", "generate_audio": False}
MASKS = [(re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), b"ID"),
         (re.compile(rb"\d{4}-\d\d-\d\dT[\d:.]+\+00:00"), b"TIME")]


def _app(data_dir: Path, *, lean: bool) -> tuple[FastAPI, str, str]:
    config = Settings(data_dir=data_dir, rate_limit=0, max_body_bytes=10_000)
    store = open_store(config.store_section)
    app = create_app(config.api, store, LocalStorage(config.outputs_dir))
    if not lean:
        app.router.routes[:] = [route for route in app.router.routes
                                if not isinstance(route, LeanRoute)]
    key = issue_key(store, credits=100_000).secret
    scoped = issue_key(store, credits=100_000, models=(I2V,)).secret
    return app, key, scoped


def _mask(data: bytes) -> bytes:
    for pattern, replacement in MASKS:
        data = pattern.sub(replacement, data)
    return data


async def _answers(app: FastAPI, key: str, scoped: str) -> list[tuple[Any, ...]]:
    keyed = {"x-api-key": key, "content-type": "application/json"}
    requests: list[tuple[str, str, dict[str, str], str | None]] = [
        ("POST", f"/v2/{T2V}", keyed, json.dumps(BODY)),
        ("POST", f"/v2/{T2V}", {}, json.dumps(BODY)),
        ("POST", f"/v2/{T2V}", {"x-api-key": "rs_unknown"}, json.dumps(BODY)),
        ("POST", f"/v2/{T2V}", {"x-api-key": scoped}, json.dumps(BODY)),
        ("POST", "/v2/kling-9-ultra", keyed, json.dumps(BODY)),
        ("POST", f"/v2/{T2V}", keyed, "{not json"),
        ("POST", f"/v2/{T2V}", keyed, json.dumps({**BODY, "prompt": "x" * 20_000})),
        ("POST", f"/v2/{T2V}", keyed, json.dumps({**BODY, "prompt": "ünïcödé ✓"})),
        ("POST", f"/v2/{T2V}", {**keyed, "idempotency-key": "k"}, json.dumps(BODY)),
        ("POST", f"/v2/{T2V}", {**keyed, "idempotency-key": "k"}, json.dumps(BODY)),
        ("POST", f"/v2/{T2V}", {**keyed, "idempotency-key": "k"}, json.dumps({"prompt": "b"})),
        ("GET", f"/v2/{T2V}", keyed, None),
        ("POST", "/v2/kling-create-voice", keyed, "{}"),
        ("GET", "/v2/requests/no-such-id/status", keyed, None),
        ("GET", "/v2/requests/no-such-id/status", {}, None),
        ("HEAD", "/v2/requests/no-such-id/status", keyed, None),
    ]
    answers = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        before = _counts((await client.get("/metrics")).text)
        for method, path, headers, body in requests:
            answers.append(_answer(await client.request(method, path, headers=headers,
                                                        content=body)))
        first_id = json.loads((await client.post(f"/v2/{T2V}", headers=keyed,
                                                 content=json.dumps(BODY))).content)["request_id"]
        for _ in range(2):
            answers.append(_answer(await client.get(f"/v2/requests/{first_id}/status",
                                                    headers=keyed)))
        await client.post(f"/v2/requests/{first_id}/cancel", headers=keyed)
        answers.append(_answer(await client.get(f"/v2/requests/{first_id}/status",
                                                headers=keyed)))
        after = _counts((await client.get("/metrics")).text)
    # The counters live in the process (both apps of a test share them): compare moves.
    moved = sorted((name, value - before.get(name, 0.0)) for name, value in after.items()
                   if value != before.get(name, 0.0))
    return [*answers, tuple(moved)]


def _counts(metrics: str) -> dict[str, float]:
    lines = [line.rsplit(" ", 1) for line in metrics.splitlines()
             if line.startswith(("reelserve_http_requests_total{",
                                 "reelserve_jobs_submitted_total{"))]
    return {name: float(value) for name, value in lines}


def _answer(response: httpx.Response) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    headers = [(name, _mask(value)) for name, value in response.headers.raw if name != b"date"]
    return response.status_code, headers, _mask(response.content)


def test_lean_routes_answer_as_the_fastapi_routes_byte_for_byte(tmp_path: Path) -> None:
    lean = asyncio.run(_answers(*_app(tmp_path / "lean", lean=True)))
    documented = asyncio.run(_answers(*_app(tmp_path / "fastapi", lean=False)))
    assert lean == documented
    submitted, refused_model = lean[0], lean[4]
    assert submitted[0] == 200 and (b"x-remaining-credits", b"99.760") in submitted[1]
    assert refused_model[0] == 404  # after the key check, as before
    assert lean[15][0] == 405 and (b"allow", b"GET") in lean[15][1]  # no HEAD on a GET route
    assert lean[-2][0] == 422 and b'"canceled":true' in lean[-2][2]
    assert (f'reelserve_jobs_submitted_total{{model="{T2V}"}}', 5.0) in lean[-1]
    assert ('reelserve_http_requests_total{method="POST",route="/v2/{slug}",status="200"}',
            5.0) in lean[-1]


def test_the_lean_routes_are_tried_first(tmp_path: Path) -> None:
    app = _app(tmp_path, lean=True)[0]
    first = app.router.routes[:2]
    assert [(route.path, route.methods) for route in first if isinstance(route, LeanRoute)] \
        == [("/v2/{slug}", {"POST"}), ("/v2/requests/{request_id}/status", {"GET"})]


@pytest.mark.parametrize("body", [{"a": "ünïcödé", "b": None, "c": [1.5, 2, True]}, {},
                                  {"text": "line\nbreak \"quoted\" \u2028"}])
def test_credits_json_response_is_a_json_response_with_the_credits_header(body: Any) -> None:
    lean = CreditsJsonResponse(body, 422, "1.500")
    stock = JSONResponse(body, status_code=422, headers={"x-remaining-credits": "1.500"})
    assert (lean.status_code, lean.body, lean.raw_headers) \
        == (stock.status_code, stock.body, stock.raw_headers)


def test_credits_json_response_refuses_nan_as_json_response_does() -> None:
    with pytest.raises(ValueError):
        JSONResponse({"x": float("nan")})
    with pytest.raises(ValueError):
        CreditsJsonResponse({"x": float("nan")}, 200, "0.000")
