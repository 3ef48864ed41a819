"""/docs and /redoc work offline: their scripts and styles come from this server."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from conftest import Service, make_service


@pytest.fixture(scope="module")
def docs_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    svc = make_service(tmp_path_factory.mktemp("docs-pages"))
    yield svc
    svc.stop()


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_everything_from_this_server(docs_service: Service, page: str) -> None:
    with httpx.Client(base_url=docs_service.base_url, timeout=30) as client:
        html = client.get(page)
        assert html.status_code == 200 and "/openapi.json" in html.text
        assets = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html.text)
        assert assets and not [url for url in assets if "//" in url], assets
        scripts = [url for url in assets if url.endswith(".js")]
        assert scripts
        for url in assets:
            fetched = client.get(url)
            assert fetched.status_code == 200, url
            assert len(fetched.content) > (100_000 if url.endswith(".js") else 100), url


def test_favicon_is_served(docs_service: Service) -> None:
    icon = httpx.get(f"{docs_service.base_url}/favicon.ico", timeout=10)
    assert icon.status_code == 200
    assert icon.headers["content-type"] == "image/vnd.microsoft.icon"
    assert icon.content[:4] == b"\x00\x00\x01\x00"  # the ICO header
