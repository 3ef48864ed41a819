"""The web playground: the page itself, and end to end in headless Chromium.

The browser is Debian's ``chromium`` (``apt-get install -y chromium``) driven by
Playwright through ``executable_path``; Playwright's own browser downloads are not used.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from reelserve.api.playground import add_playground_routes

from conftest import Service, make_service, needs_outside_part

CHROMIUM = Path("/usr/bin/chromium")
# docs/playground.png comes from the preview engine, not this fixture engine:
# .venv/bin/python scripts/make_readme_media.py


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
    screenshot = tmp_path / "playground.png"
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
            # What it cost, what is left, and the file to keep.
            info = page.inner_text("#result-info")
            assert "sleep=2 a lighthouse at night" in info
            assert re.search(r"cost 0\.6 credits", info), info
            page.wait_for_function(
                "() => /credits left/.test(document.getElementById('credits').textContent)")
            assert page.inner_text("#credits") == "99.4 credits left"
            output = page.get_attribute("#download", "href")
            assert output and output.endswith(".mp4")

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


def _launch(playwright: Any) -> Any:
    if not CHROMIUM.exists():
        needs_outside_part(f"{CHROMIUM} is missing: apt-get install -y chromium")
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                      args=["--no-sandbox"])


def _wait_text(page: Any, selector: str, pattern: str, timeout: float = 30_000) -> None:
    """Wait until the element's text matches the regular expression ``pattern``."""
    page.wait_for_function(
        "([selector, pattern]) => { const node = document.querySelector(selector);"
        " return node !== null && new RegExp(pattern).test(node.textContent); }",
        arg=[selector, pattern], timeout=timeout)


def test_playground_clears_old_results_resumes_after_reload_and_cancels_calmly(
        browser_service: Service) -> None:
    from playwright.sync_api import sync_playwright

    base = browser_service.base_url
    with sync_playwright() as playwright:
        browser = _launch(playwright)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{base}/")
            page.fill("#api-key", browser_service.api_key)
            page.click("#save-key")

            # A first job to its end: its video and figures are on screen.
            page.fill("#prompt", "a boat at dawn")
            page.select_option("#duration", "3")
            page.click("#submit")
            _wait_text(page, "#result-info", "a boat at dawn", timeout=60_000)

            # A new job: the last one's result goes at once, not when the new one ends.
            page.fill("#prompt", "sleep=30 a long night")
            page.click("#submit")
            page.wait_for_function(
                "() => document.getElementById('result-video').hidden"
                " && document.getElementById('result-info').textContent === ''")
            _wait_text(page, "#progress-text", r"^processing [1-9]")

            # Reload mid-job: progress and Cancel come back, from the list and the stream.
            page.reload()
            _wait_text(page, "#progress-text", r"^processing \d+%")
            page.wait_for_function("() => !document.getElementById('cancel').disabled")
            assert page.input_value("#prompt") == "sleep=30 a long night"
            running_card = '#gallery .card[data-status="processing"]'
            page.wait_for_selector(running_card)

            # Cancel reads as canceled, in the normal text colour, with no error shown.
            page.click("#cancel")
            _wait_text(page, "#progress-text", "^canceled$")
            assert page.inner_text("#error") == ""
            colour = page.eval_on_selector("#progress-text", "n => getComputedStyle(n).color")
            assert colour == page.eval_on_selector("body", "n => getComputedStyle(n).color")
            assert colour != page.eval_on_selector("#error", "n => getComputedStyle(n).color")
            # The gallery card refreshes to its end without a reload.
            page.wait_for_selector('#gallery .card[data-status="canceled"]')
            badge = page.inner_text('#gallery .card[data-status="canceled"] .badge')
            assert "canceled" in badge and "no charge" in badge and "FAILED" not in badge

            # A finished card opens with its prompt, its cost and a download link.
            page.click("#prompt")  # away from the gallery first
            page.click('#gallery .card[data-status="completed"]')
            info = page.inner_text("#result-info")
            assert "a boat at dawn" in info and "cost" in info
            card_video = page.get_attribute('#gallery .card[data-status="completed"] video',
                                             "src")
            assert card_video is not None
            assert page.get_attribute("#download", "href") == card_video.split("#")[0]
            _wait_text(page, "#credits", r"^\d+(\.\d+)? credits left$")
        finally:
            browser.close()
