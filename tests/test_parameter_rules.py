"""Every parameter rule of the contract answers 400 with a message naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import I2V, T2V, Service

IMG = "data:image/png;base64,iVBORw0KGgo="
OK_T2V: dict[str, Any] = {"prompt": "a quiet lake at dawn"}
OK_I2V: dict[str, Any] = {"prompt": "the lake ripples", "start_image_url": IMG}

CASES: list[tuple[str, str, dict[str, Any], str]] = [
    # (slug, field named in the error, body, id)
    (T2V, "prompt", {}, "prompt-missing"),
    (T2V, "prompt", {"prompt": ""}, "prompt-empty"),
    (T2V, "prompt", {"prompt": "   "}, "prompt-blank"),
    (T2V, "prompt", {"prompt": 42}, "prompt-not-string"),
    (T2V, "prompt", {"prompt": "x" * 2501}, "prompt-too-long"),
    (T2V, "prompt", {"prompt": "nul\x00byte"}, "prompt-control-char"),
    (T2V, "negative_prompt", {**OK_T2V, "negative_prompt": ["blur"]}, "negative-not-string"),
    (T2V, "duration", {**OK_T2V, "duration": "2"}, "duration-too-short"),
    (T2V, "duration", {**OK_T2V, "duration": "16"}, "duration-too-long"),
    (T2V, "duration", {**OK_T2V, "duration": 5.5}, "duration-fraction"),
    (T2V, "duration", {**OK_T2V, "duration": "five"}, "duration-word"),
    (T2V, "duration", {**OK_T2V, "duration": True}, "duration-bool"),
    (T2V, "aspect_ratio", {**OK_T2V, "aspect_ratio": "4:3"}, "aspect-unknown"),
    (T2V, "cfg_scale", {**OK_T2V, "cfg_scale": 1.5}, "cfg-above"),
    (T2V, "cfg_scale", {**OK_T2V, "cfg_scale": -0.1}, "cfg-below"),
    (T2V, "cfg_scale", {**OK_T2V, "cfg_scale": "high"}, "cfg-string"),
    (T2V, "generate_audio", {**OK_T2V, "generate_audio": "yes"}, "audio-not-bool"),
    (T2V, "multi_prompt", {**OK_T2V, "multi_prompt": []}, "multi-empty"),
    (T2V, "multi_prompt", {**OK_T2V, "multi_prompt": [{"prompt": "a", "duration": "3"}] * 6},
     "multi-too-many"),
    (T2V, "multi_prompt[0].prompt", {**OK_T2V, "multi_prompt": [{"duration": "3"}]},
     "segment-prompt-missing"),
    (T2V, "multi_prompt[1].prompt",
     {**OK_T2V, "multi_prompt": [{"prompt": "a", "duration": "3"}, {"prompt": "b" * 513}]},
     "segment-prompt-too-long"),
    (T2V, "multi_prompt[0].duration",
     {**OK_T2V, "multi_prompt": [{"prompt": "a", "duration": "1"}]}, "segment-duration"),
    (T2V, "multi_prompt",
     {**OK_T2V, "multi_prompt": [{"prompt": "a", "duration": "10"},
                                 {"prompt": "b", "duration": "10"}]},
     "segments-sum-too-long"),
    (T2V, "duration",
     {**OK_T2V, "duration": "5", "multi_prompt": [{"prompt": "a", "duration": "3"},
                                                   {"prompt": "b", "duration": "3"}]},
     "duration-not-sum"),
    (T2V, "shot_type", {**OK_T2V, "shot_type": "auto"}, "shot-type"),
    (T2V, "voice_ids", {**OK_T2V, "voice_ids": ["a", "b", "c"]}, "voices-too-many"),
    (T2V, "voice_ids[0]", {**OK_T2V, "voice_ids": [7]}, "voice-not-string"),
    (T2V, "seed", {**OK_T2V, "seed": -1}, "seed-negative"),
    (T2V, "seed", {**OK_T2V, "seed": "7"}, "seed-string"),
    (T2V, "body", [], "body-not-object"),
    (I2V, "start_image_url", {"prompt": "p"}, "start-missing"),
    (I2V, "start_image_url", {"prompt": "p", "start_image_url": "ftp://x/y.png"}, "start-scheme"),
    (I2V, "end_image_url", {**OK_I2V, "end_image_url": 12}, "end-not-string"),
    (I2V, "elements", {**OK_I2V, "elements": [{"frontal_image_url": IMG}] * 4},
     "elements-too-many"),
    (I2V, "elements[0].reference_image_urls",
     {**OK_I2V, "elements": [{"frontal_image_url": IMG, "reference_image_urls": [IMG] * 4}]},
     "element-refs-too-many"),
    (I2V, "elements[0]", {**OK_I2V, "elements": [{}]}, "element-empty"),
]


@pytest.mark.parametrize(("slug", "field", "body"), [c[:3] for c in CASES],
                         ids=[c[3] for c in CASES])
def test_bad_parameter_is_400_naming_the_field(
    shared_service: Service, slug: str, field: str, body: Any
) -> None:
    with shared_service.client() as client:
        for version in ("v2", "v1"):
            response = client.post(f"/{version}/{slug}", json=body)
            assert response.status_code == 400, response.text
            error = response.json()["error"]
            assert error.startswith(f"{field}:"), error
            assert len(error) > len(field) + 5


def test_invalid_json_is_400(shared_service: Service) -> None:
    with shared_service.client() as client:
        response = client.post(f"/v2/{T2V}", content=b"{not json",
                               headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"].startswith("body:")


def test_rejected_submit_creates_no_job_and_charges_nothing(shared_service: Service) -> None:
    with shared_service.client() as client:
        before = client.post(f"/v2/{T2V}", json={**OK_T2V, "generate_audio": False,
                                                 "duration": "3"})
        assert before.status_code == 200
        balance = float(before.headers["x-remaining-credits"])
        assert client.post(f"/v2/{T2V}", json={**OK_T2V, "duration": "99"}).status_code == 400
        after = client.get(f"/v2/requests/{before.json()['request_id']}/status")
    assert float(after.headers["x-remaining-credits"]) == pytest.approx(balance)


def test_unknown_fields_and_other_models_fields_are_ignored(shared_service: Service) -> None:
    body = {**OK_T2V, "start_image_url": 5, "favourite_colour": "teal", "duration": 3,
            "generate_audio": False}
    with shared_service.client() as client:
        response = client.post(f"/v2/{T2V}", json=body)
    assert response.status_code == 200, response.text
    assert shared_service.wait_for(response.json()["request_id"])["status"] == "COMPLETED"
