"""The web playground: the page itself, and end to end in headless Chromium.

The browser is Debian's ``chromium`` (``apt-get install -y chromium``) driven by
Playwright through ``executable_path``; Playwright's own browser downloads are not used.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from reelserve.api.playground import add_playground_routes

from conftest import Service, make_service, needs_outside_part

CHROMIUM = Path("/usr/bin/chromium")
# The screenshot in docs/ is refreshed on request, so test runs leave the tree clean:
# REELSERVE_UPDATE_SCREENSHOT=1 .venv/bin/python -m pytest tests/test_playground.py
DOCS_SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "playground.png"


def _page_app() -> FastAPI:
    app = FastAPI()
    add_playground_routes(app)
    return app


def test_the_page_is_self_contained_html() -> None:
    transport = httpx.ASGITransport(app=_page_app())

    async def fetch() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get("/")

    page = asyncio.run(fetch())
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "connect-src 'self'" in page.headers["content-security-policy"]
    # Nothing is loaded from elsewhere: no src/href to another host, no imports.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page.text)
    assert "import(" not in page.text and "<link" not in page.text
    for field in ("prompt", "negative_prompt", "duration", "aspect_ratio", "cfg_scale",
                  "generate_audio", "seed", "shot_type", "voice_ids", "add-segment",
                  "start-image", "end-image", "add-element", "gallery", "result-video"):
        assert f'id="{field}"' in page.text, field


@pytest.fixture(scope="module")
def browser_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    # lease_s=2: workers write progress with each lease renewal, every 0.67 s
    svc = make_service(tmp_path_factory.mktemp("playground"), rate_limit=0, lease_s=2)
    yield svc
    svc.stop()


def test_playground_submits_shows_progress_and_plays_the_video(
        browser_service: Service, tmp_path: Path) -> None:
    screenshot = DOCS_SCREENSHOT if os.environ.get("REELSERVE_UPDATE_SCREENSHOT") else \
        tmp_path / "playground.png"
    if not CHROMIUM.exists():
        needs_outside_part(f"{CHROMIUM} is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    base = browser_service.base_url
    elsewhere: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("request", lambda request: None if request.url.startswith(
                (base, "data:", "blob:")) else elsewhere.append(request.url))
            assert page.goto(f"{base}/").ok  # type: ignore[union-attr]

            # Errors show inline: a wrong key first.
            page.fill("#api-key", "rs_wrong")
            page.fill("#prompt", "a lighthouse")
            page.click("#submit")
            # (Predicates are functions: the page's policy forbids evaluating strings.)
            page.wait_for_function(
                "() => document.getElementById('error').textContent.includes('401')")

            page.fill("#api-key", browser_service.api_key)
            page.click("#save-key")
            page.fill("#prompt", "sleep=2 a lighthouse at night, slow pan")
            page.select_option("#duration", "5")
            page.click("#submit")
            page.wait_for_function("() => document.getElementById('error').textContent === ''")
            page.wait_for_function(
                "() => { const p = document.getElementById('progress');"
                " return p.value > 0 && p.value < 1; }", timeout=30_000)
            assert re.fullmatch(r"processing \d+%.*", page.inner_text("#progress-text"))
            page.wait_for_function(
                "() => { const v = document.getElementById('result-video');"
                " return !v.hidden && v.readyState >= 1 && isFinite(v.duration); }",
                timeout=60_000)
            duration = page.eval_on_selector("#result-video", "video => video.duration")
            assert abs(duration - 5) <= 0.1
            assert page.inner_text("#progress-text").startswith("completed 100%")

            # The key stays in the browser; the gallery lists the job.
            stored = page.evaluate("() => localStorage.getItem('reelserve.apiKey')")
            assert stored == browser_service.api_key
            page.wait_for_selector("#gallery .card video")
            assert "a lighthouse at night" in page.inner_text("#gallery")
            page.wait_for_timeout(500)  # let the gallery's thumbnails paint
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    assert elsewhere == []
