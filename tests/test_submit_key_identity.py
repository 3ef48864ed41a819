"""A submit takes its key's identity from a short-lived map; revocation stays exact.

The API process keeps a key's identity for a moment so that a submit need not read
the key from the store; the store write checks the key again and refuses a revoked
one. Here the map's clock is pinned, so a kept identity never ages out: whatever
the second submit after a revoke answers, the map still held the key when it came.
Run on SQLite and on the real Redis.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.requests import Request

from reelserve.api import create_app
from reelserve.api.auth import KeyChecker
from reelserve.api.context import ApiContext
from reelserve.errors import Unauthorized
from reelserve.jobs import JobStore
from reelserve.jobs.backends import open_store
from reelserve.keys import hash_key, issue_key, new_key
from reelserve.settings import Settings
from reelserve.storage import LocalStorage

from conftest import T2V

BODY = {"prompt": "a kite over the dunes", "duration": "3", "generate_audio": False}


@pytest.fixture
def store(tmp_path: Path, backend: dict[str, str]) -> Iterator[JobStore]:
    config = Settings(data_dir=tmp_path, rate_limit=0, store=backend.get("store", ""),
                      redis_prefix=backend.get("redis_prefix", "reelserve"),
                      redis_ephemeral=bool(backend.get("redis_ephemeral")))
    opened = open_store(config.store_section)
    yield opened
    opened.close()


def _client(store: JobStore, tmp_path: Path) -> tuple[httpx.AsyncClient, KeyChecker]:
    """A client of an app whose submit identities never age (a pinned clock)."""
    config = Settings(data_dir=tmp_path, rate_limit=0)
    app = create_app(config.api, store, LocalStorage(config.outputs_dir))
    context: ApiContext = app.state.context
    keys = KeyChecker(context.store, clock=lambda: 0.0)
    app.state.context = dataclasses.replace(context, keys=keys)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
    return client, keys


def _request(secret: str) -> Request:
    return Request({"type": "http", "method": "POST", "path": f"/v2/{T2V}",
                    "headers": [(b"x-api-key", secret.encode())]})


def _submit(client: httpx.AsyncClient, secret: str, body: Any = BODY,
            slug: str = T2V) -> Any:
    return client.post(f"/v2/{slug}", headers={"x-api-key": secret},
                       content=json.dumps(body))


def test_a_key_revoked_between_two_submits_is_401_at_the_write_though_its_identity_is_kept(
        store: JobStore, tmp_path: Path) -> None:
    issued = issue_key(store, credits=10_000)

    async def scenario() -> None:
        client, keys = _client(store, tmp_path)
        async with client:
            first = await _submit(client, issued.secret)
            assert first.status_code == 200
            store.revoke_key(issued.record.prefix)
            kept = await keys.require_submit_key(_request(issued.secret))
            assert kept == issued.record.identity()  # the map still holds the key
            second = await _submit(client, issued.secret)
            assert (second.status_code, second.json()) == (401, {"error": "invalid API key"})
            # The write's refusal drops the kept identity: the route reads the store again.
            with pytest.raises(Unauthorized):
                await keys.require_submit_key(_request(issued.secret))
        job_id = first.json()["request_id"]
        assert [job.id for job in store.list_jobs(issued.record.id, 10)] == [job_id]
        assert store.get_key(issued.record.id).balance == 10_000 - 240  # the first hold only
        assert store.ledger(job_id) == [("hold", 240)]
        assert store.queue_stats().depth == 1

    asyncio.run(scenario())


@pytest.mark.parametrize(("body", "slug", "credits", "refused"), [
    ({"prompt": ""}, T2V, 10_000, 400), (BODY, T2V, 100, 406),
    (BODY, "kling-9-ultra", 10_000, 404)])
def test_a_revoked_kept_key_hears_401_before_any_other_rule(
        store: JobStore, tmp_path: Path, body: Any, slug: str, credits: int,
        refused: int) -> None:
    """Without the map the key check came first; a refusal reads the key again to keep it so."""
    issued = issue_key(store, credits=credits)

    async def scenario() -> tuple[int, int]:
        client, keys = _client(store, tmp_path)
        async with client:
            before = (await _submit(client, issued.secret, body, slug)).status_code
            store.revoke_key(issued.record.prefix)
            assert await keys.require_submit_key(_request(issued.secret)) \
                == issued.record.identity()  # still kept
            return before, (await _submit(client, issued.secret, body, slug)).status_code

    assert asyncio.run(scenario()) == (refused, 401)
    assert store.list_jobs(issued.record.id, 10) == []
    assert store.get_key(issued.record.id).balance == credits


def test_an_unknown_key_is_never_kept(store: JobStore, tmp_path: Path) -> None:
    secret = new_key()

    async def scenario() -> tuple[int, int]:
        client, _ = _client(store, tmp_path)
        async with client:
            unknown = (await _submit(client, secret)).status_code
            store.create_key(hash_key(secret), secret[:11], name="late", credits=1000,
                             models=None)
            return unknown, (await _submit(client, secret)).status_code

    assert asyncio.run(scenario()) == (401, 200)


def test_status_polls_read_the_key_and_its_balance_live(store: JobStore,
                                                        tmp_path: Path) -> None:
    issued = issue_key(store, credits=1000)

    async def scenario() -> tuple[str, str, int]:
        client, _ = _client(store, tmp_path)
        async with client:
            submitted = await _submit(client, issued.secret)
            status = f"/v2/requests/{submitted.json()['request_id']}/status"
            store.add_credits(issued.record.prefix, 500)
            topped_up = await client.get(status, headers={"x-api-key": issued.secret})
            store.revoke_key(issued.record.prefix)
            revoked = await client.get(status, headers={"x-api-key": issued.secret})
            return (submitted.headers["x-remaining-credits"],
                    topped_up.headers["x-remaining-credits"], revoked.status_code)

    assert asyncio.run(scenario()) == ("0.760", "1.260", 401)
