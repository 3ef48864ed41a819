"""Request limits on a real server: the body cap, hostile JSON, control characters, Unicode.

Each bad request gets a 400 naming the field, and the service goes on serving.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from reelserve.catalog.params import MAX_PROMPT_CHARS
from reelserve.settings import Settings

from conftest import I2V, T2V, Service, make_service, png_bytes

BODY_CAP = 300_000
OK: dict[str, Any] = {"prompt": "a quiet lake at dawn", "duration": "3", "generate_audio": False}


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    svc = make_service(tmp_path_factory.mktemp("limits"), rate_limit=0,
                       max_body_bytes=BODY_CAP)
    yield svc
    svc.stop()


def post_raw(service: Service, slug: str, content: Any) -> tuple[int, str]:
    with service.client() as client:
        response = client.post(f"/v2/{slug}", content=content,
                               headers={"content-type": "application/json"})
    return response.status_code, response.json().get("error", "")


def assert_still_serving(service: Service) -> None:
    with service.client() as client:
        response = client.post(f"/v2/{T2V}", json=OK)
        assert response.status_code == 200, response.text
    assert service.wait_for(response.json()["request_id"])["status"] == "COMPLETED"


def test_default_body_cap_fits_a_50_mb_image_as_a_data_url() -> None:
    settings = Settings()
    encoded_chars = 4 * math.ceil(settings.max_input_bytes / 3)
    body = {"prompt": "x" * MAX_PROMPT_CHARS, "start_image_url": "data:image/png;base64,"}
    assert len(json.dumps(body)) + encoded_chars < settings.max_body_bytes


def test_body_over_the_cap_is_400_naming_body(limited: Service) -> None:
    big = json.dumps({**OK, "padding": "x" * BODY_CAP}).encode()
    assert post_raw(limited, T2V, big)[0] == 400
    assert post_raw(limited, T2V, big)[1].startswith("body: must be at most")

    def chunked() -> Iterator[bytes]:  # no Content-Length: counted while it streams
        yield big[:100_000]
        yield big[100_000:]

    status, error = post_raw(limited, T2V, chunked())
    assert (status, error.split(" ")[0]) == (400, "body:")
    assert_still_serving(limited)


def test_voice_body_over_the_cap_is_refused_while_it_streams(limited: Service) -> None:
    sent = 0

    def endless() -> Iterator[bytes]:  # no Content-Length, ten times the cap
        nonlocal sent
        yield b'{"voice_url": "data:audio/wav;base64,'
        for _ in range(100):
            sent += 30_000
            yield b"A" * 30_000

    with limited.client() as client:
        try:
            response = client.post("/v2/kling-create-voice", content=endless(),
                                   headers={"content-type": "application/json"})
        except httpx.TransportError:  # the server may close before the client sent it all
            response = None
    if response is not None:
        assert response.status_code == 400
        assert response.json()["error"].startswith("body: must be at most")
    with limited.client() as client:
        declared = client.post("/v2/kling-create-voice", content=b"x" * (BODY_CAP + 1),
                               headers={"content-type": "application/json"})
    assert declared.status_code == 400
    assert declared.json()["error"] == f"body: must be at most {BODY_CAP} bytes"
    assert_still_serving(limited)


def test_data_url_under_the_cap_is_accepted(limited: Service) -> None:
    image = "data:image/png;base64," + base64.b64encode(png_bytes((320, 180))).decode()
    assert len(image) < BODY_CAP
    with limited.client() as client:
        response = client.post(f"/v2/{I2V}", json={**OK, "start_image_url": image})
    assert response.status_code == 200, response.text
    assert limited.wait_for(response.json()["request_id"])["status"] == "COMPLETED"


@pytest.mark.parametrize("content", [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"prompt": "x", "seed": ' + b"9" * 10_000 + b"}",
    b'{"prompt": "\xff\xfe"}',
    b'{"prompt": "x", "cfg_scale": NaN}',
    b"",
    b'{"prompt": "x", "extra": ' + b"[" * 40 + b"]" * 40 + b"}",
    b'{"prompt": "x", "extra": {"\\udc00": 1}}',
], ids=["deep-nesting", "huge-integer", "invalid-utf8", "nan", "empty", "nesting-past-limit",
        "lone-surrogate-key"])
@pytest.mark.parametrize("route", [f"/v2/{T2V}", "/v2/kling-create-voice"])
def test_hostile_json_is_400_not_500(limited: Service, content: bytes, route: str) -> None:
    with limited.client() as client:
        response = client.post(route, content=content,
                               headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["error"].split(":")[0] in ("body", "cfg_scale", "extra", "voice_url")


NESTED_30 = "[" * 30 + "]" * 30


@pytest.mark.parametrize(("route", "raw", "field"), [
    (f"/v2/{T2V}", '{"prompt": "p", "extra": ' + NESTED_30 + ', "duration": "99"}', "duration"),
    ("/v2/kling-create-voice",
     '{"voice_url": "http://x/", "extra": ' + NESTED_30 + ', "voice_name": "\\u0007"}',
     "voice_name"),
])
def test_json_nested_within_the_limit_reaches_the_field_rules(limited: Service, route: str,
                                                              raw: str, field: str) -> None:
    with limited.client() as client:
        response = client.post(route, content=raw.encode(),
                               headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"].startswith(f"{field}:"), response.text


@pytest.mark.parametrize(("slug", "field", "raw"), [
    (T2V, "prompt", '{"prompt": "nul\\u0000byte"}'),
    (T2V, "prompt", '{"prompt": "bell\\u0007"}'),
    (T2V, "prompt", '{"prompt": "c1 \\u0085 next line"}'),
    (T2V, "prompt", '{"prompt": "lone \\ud800 surrogate"}'),
    (T2V, "negative_prompt", '{"prompt": "p", "negative_prompt": "esc\\u001b[31m"}'),
    (T2V, "multi_prompt[0].prompt",
     '{"prompt": "p", "multi_prompt": [{"prompt": "a\\u0000", "duration": "3"}]}'),
    (T2V, "voice_ids[0]", '{"prompt": "p", "voice_ids": ["v\\u0000"]}'),
    (I2V, "start_image_url", '{"prompt": "p", "start_image_url": "http://x/a\\u0000.png"}'),
    (I2V, "end_image_url",
     '{"prompt": "p", "start_image_url": "data:,x", "end_image_url": "http://x/\\r\\nHost: y"}'),
])
def test_control_characters_are_400_naming_the_field(limited: Service, slug: str, field: str,
                                                     raw: str) -> None:
    status, error = post_raw(limited, slug, raw.encode())
    assert status == 400
    assert error.startswith(f"{field}:"), error


def test_prompt_length_limit_counts_characters(limited: Service) -> None:
    with limited.client() as client:
        at_limit = client.post(f"/v2/{T2V}", json={**OK, "prompt": "雾" * MAX_PROMPT_CHARS})
        over = client.post(f"/v2/{T2V}", json={**OK, "prompt": "雾" * (MAX_PROMPT_CHARS + 1)})
    assert at_limit.status_code == 200
    assert over.status_code == 400
    assert over.json()["error"].startswith(f"prompt: must be at most {MAX_PROMPT_CHARS}")


@pytest.mark.parametrize("prompt", [
    "镜头缓缓推进\uff0c古老寺庙中雾气弥漫\uff0c金色阳光穿过石柱",
    "夜の灯台、雨の中でゆっくりパン",
    "🌊🏝️ waves 🌅 at sunset, 👩‍👩‍👧 on the beach",
    "مشهد لمنارة في الليل",
    "Zoë\u2019s café — naïve façade, e\u0301 combining",
    "line one\nline two\ttabbed",
])
def test_unicode_prompts_complete(limited: Service, prompt: str) -> None:
    with limited.client() as client:
        response = client.post(f"/v2/{T2V}", json={**OK, "prompt": prompt,
                                                   "negative_prompt": prompt})
    assert response.status_code == 200, response.text
    assert limited.wait_for(response.json()["request_id"])["status"] == "COMPLETED"


def test_service_keeps_serving_after_every_bad_request(limited: Service) -> None:
    assert_still_serving(limited)
