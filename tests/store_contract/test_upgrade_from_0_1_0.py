"""A data dir written by release 0.1.0, served in place by this release.

``tests/fixtures/data-0.1.0`` was made by ``scripts/make_store_fixture.py`` run
from commit 9c2904f (release 0.1.0), with results kept for a century so that
they are still answerable now: ``expires_at`` is written when a job ends, from
the retention of the release that ran it. The test serves a copy of it and asks
what a user would: keys, balances, the completed result and its file, the
Idempotency-Key replay, the queued jobs (which now run), the canceled job, the
voice, the webhook secret and the webhook log all carry over.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import T2V, Service, make_service

FIXTURE = Path(__file__).parent.parent / "fixtures" / "data-0.1.0"


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURE / "manifest.json").read_text())
    return loaded


@pytest.fixture(scope="module")
def upgraded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    root = tmp_path_factory.mktemp("upgrade")
    shutil.copytree(FIXTURE / "data", root / "data")
    service = make_service(root)
    yield service
    service.stop()


def test_keys_and_balances_carry_over(upgraded: Service, manifest: dict[str, Any]) -> None:
    assert upgraded.api_key == ""  # keys exist: serve made no first key
    balances = {key.prefix: key.balance for key in upgraded.store().list_keys()}
    assert balances == manifest["balances"]
    keys = manifest["keys"]
    for name in ("first", "second"):
        with upgraded.client(keys[name]) as client:
            assert client.get("/v2/requests").status_code == 200
    with upgraded.client(keys["revoked"]) as client:
        assert client.get("/v2/requests").status_code == 401


def test_the_completed_result_and_its_file_carry_over(upgraded: Service,
                                                      manifest: dict[str, Any]) -> None:
    done = manifest["completed"]
    with upgraded.client(manifest["keys"]["first"]) as client:
        result = client.get(f"/v2/requests/{done['request_id']}")
        assert result.status_code == 200, result.text
        assert result.json()["status"] == "COMPLETED"
        assert result.json()["output"].endswith(done["output_path"])
        video = client.get(done["output_path"])
    assert video.status_code == 200
    assert video.content == (FIXTURE / "data" / done["output_path"].lstrip("/")).read_bytes()


def test_an_idempotent_request_replays_without_a_second_charge(
        upgraded: Service, manifest: dict[str, Any]) -> None:
    done = manifest["completed"]
    first = manifest["keys"]["first"]
    with upgraded.client(first) as client:
        again = client.post(f"/v2/{T2V}", json=done["body"],
                            headers={"Idempotency-Key": done["idempotency_key"]})
        assert again.status_code == 200, again.text
        assert again.json()["request_id"] == done["request_id"]
        other = client.post(f"/v2/{T2V}", json={**done["body"], "prompt": "another"},
                            headers={"Idempotency-Key": done["idempotency_key"]})
        assert other.status_code == 422
    balance = {key.prefix: key.balance for key in upgraded.store().list_keys()}[first[:11]]
    assert balance == manifest["balances"][first[:11]]


def test_queued_jobs_run_after_the_upgrade(upgraded: Service,
                                           manifest: dict[str, Any]) -> None:
    second = manifest["keys"]["second"]
    for request_id in manifest["queued"]:
        assert upgraded.wait_for(request_id, key=second)["status"] == "COMPLETED"
    canceled = upgraded.wait_for(manifest["canceled"], key=second)
    assert (canceled["status"], canceled["canceled"]) == ("FAILED", True)
    store = upgraded.store()
    assert [kind for kind, _ in store.ledger(manifest["queued"][0])] == ["hold", "capture"]
    assert [kind for kind, _ in store.ledger(manifest["canceled"])] == ["hold", "release"]


def test_voices_webhook_secret_and_webhook_log_carry_over(
        upgraded: Service, manifest: dict[str, Any]) -> None:
    voice = manifest["voice"]
    with upgraded.client(manifest["keys"]["first"]) as client:
        voices = client.get("/v2/voices").json()["voices"]
        assert [(v["voice_id"], v["voice_name"]) for v in voices] == [
            (voice["voice_id"], voice["voice_name"])]
        used = client.post(f"/v2/{T2V}", json={
            "prompt": "<<<voice_1>>> says hello", "duration": "3", "generate_audio": False,
            "voice_ids": [voice["voice_id"]]})
        assert used.status_code == 200, used.text
        assert client.get("/v2/webhooks/secret").json()["secret"] == manifest["webhook_secret"]
        log = client.get(f"/v2/requests/{manifest['completed']['request_id']}/webhooks").json()
    assert log["webhook_url"] == manifest["completed"]["body"]["webhook_url"]
    assert log["deliveries"] and "hooks.invalid" in log["deliveries"][0]["outcome"]
