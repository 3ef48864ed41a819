"""Make the README's playground screenshot and contact sheet from a real running service.

    .venv/bin/python scripts/make_readme_media.py [--docs docs]

Starts ``reelserve serve`` with the preview engine on a free port in a temporary
folder, runs a few requests through the API and one through the playground in
Debian's headless ``chromium`` (Playwright, no browser download), and writes:

- ``playground.png``: the page after that request, the gallery filled;
- ``preview-contact-sheet.jpg``: frames spread over each clip, one row per prompt.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import httpx
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
T2V = "kling-3-standard-text2video"
# Prompts whose subjects the preview engine draws (docs/preview-engine.md).
GALLERY_PROMPTS = [
    "a sailboat on the sea at sunset, slow pan right",
    "snow falling over a pine forest at dawn, slow push in",
    "a lone traveler crossing desert dunes at golden hour, orbit",
]
PAGE_PROMPT = "an ancient temple in the mountains at golden hour, light shafts, slow push in"
THUMB = (320, 180)
FRAMES_PER_ROW = 4


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_service(data_dir: Path, port: int) -> tuple[subprocess.Popen[str], str]:
    """``reelserve serve`` logging to a file (a pipe nobody reads would fill and stall it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELSERVE_")}
    data_dir.mkdir(parents=True)
    log = (data_dir.parent / "serve.log").open("w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "reelserve", "serve", "--port", str(port), "--data-dir",
         str(data_dir), "--workers", "2"], env=env, text=True, stdout=log,
        stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        log.seek(0)
        lines = log.read().splitlines()
        if any(line.startswith("Serving on") for line in lines):
            return process, next(line for line in lines if line.startswith("rs_"))
        time.sleep(0.2)
    raise RuntimeError("serve did not start:\n" + (data_dir.parent / "serve.log").read_text())


def run_requests(base: str, key: str) -> list[tuple[str, str]]:
    """Each prompt's output URL, once its request is COMPLETED."""
    headers = {"x-api-key": key}
    ids = [httpx.post(f"{base}/v2/{T2V}", headers=headers, timeout=30,
                      json={"prompt": prompt, "duration": "5"}).json()["request_id"]
           for prompt in GALLERY_PROMPTS]
    outputs = []
    for prompt, request_id in zip(GALLERY_PROMPTS, ids, strict=True):
        while True:
            body = httpx.get(f"{base}/v2/requests/{request_id}", headers=headers,
                             timeout=30).json()
            if body["status"] == "COMPLETED":
                outputs.append((prompt, body["output"]))
                break
            if body["status"] == "FAILED":
                raise RuntimeError(f"{prompt!r} failed: {body.get('error')}")
            time.sleep(0.5)
    return outputs


def screenshot_playground(base: str, key: str, path: Path) -> str:
    """Run PAGE_PROMPT in the playground and capture the page; its output URL."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.goto(f"{base}/")
            page.fill("#api-key", key)
            page.click("#save-key")
            page.fill("#prompt", PAGE_PROMPT)
            page.click("#submit")
            page.wait_for_function(
                "() => { const v = document.getElementById('result-video');"
                " return !v.hidden && v.readyState >= 2; }", timeout=120_000)
            page.eval_on_selector("#result-video", "v => { v.currentTime = 2.5; }")
            page.wait_for_function(  # every gallery thumbnail has a frame to show
                "() => [...document.querySelectorAll('#gallery video')]"
                ".every((v) => v.readyState >= 2)", timeout=60_000)
            page.wait_for_timeout(1000)  # the seek and the thumbnails paint
            page.screenshot(path=str(path))
            # 256 colours keep the file small; the page is mostly flat colour anyway.
            with Image.open(path) as shot:
                shot.convert("RGB").quantize(256, dither=Image.Dither.NONE).save(
                    path, optimize=True)
            return str(page.get_attribute("#download", "href"))
        finally:
            browser.close()


def frames(url: str, count: int) -> list[Image.Image]:
    """``count`` frames spread over the clip at ``url``, as thumbnails."""
    with tempfile.NamedTemporaryFile(suffix=".mp4") as file:
        file.write(httpx.get(url, timeout=60).content)
        file.flush()
        with av.open(file.name) as container:
            decoded = [frame.to_image() for frame in container.decode(video=0)]
    picks = [round((index + 0.5) * len(decoded) / count) for index in range(count)]
    return [decoded[min(pick, len(decoded) - 1)].resize(THUMB, Image.Resampling.LANCZOS)
            for pick in picks]


def contact_sheet(outputs: list[tuple[str, str]], path: Path) -> None:
    gap = 4
    rows = [frames(url, FRAMES_PER_ROW) for _, url in outputs]
    width = FRAMES_PER_ROW * THUMB[0] + (FRAMES_PER_ROW - 1) * gap
    height = len(rows) * THUMB[1] + (len(rows) - 1) * gap
    sheet = Image.new("RGB", (width, height), "white")
    for row, thumbs in enumerate(rows):
        for column, thumb in enumerate(thumbs):
            sheet.paste(thumb, (column * (THUMB[0] + gap), row * (THUMB[1] + gap)))
    sheet.save(path, quality=82, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        port = free_port()
        process, key = start_service(Path(folder) / "data", port)
        base = f"http://127.0.0.1:{port}"
        try:
            outputs = run_requests(base, key)
            page_output = screenshot_playground(base, key, args.docs / "playground.png")
            contact_sheet([*outputs, (PAGE_PROMPT, page_output)],
                          args.docs / "preview-contact-sheet.jpg")
        finally:
            process.terminate()
            process.wait(60)
    for name in ("playground.png", "preview-contact-sheet.jpg"):
        print(args.docs / name, (args.docs / name).stat().st_size, "bytes")


if __name__ == "__main__":
    main()
