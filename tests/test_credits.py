"""Credits under concurrency: holds taken exactly once even when submits share a commit."""

from __future__ import annotations

import asyncio

import httpx

from conftest import T2V, Service

FAST = {"prompt": "sleep=0.1", "duration": "3", "generate_audio": False}  # 0.24 credits


def test_concurrent_submits_hold_exactly_what_the_key_has(shared_service: Service) -> None:
    key = shared_service.create_key("--credits", "1.2")  # five jobs' worth

    async def submit_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=shared_service.base_url, timeout=30,
                                     headers={"x-api-key": key}) as client:
            return list(await asyncio.gather(
                *(client.post(f"/v2/{T2V}", json=FAST) for _ in range(20))))

    responses = asyncio.run(submit_all())
    codes = sorted(response.status_code for response in responses)
    assert codes == [200] * 5 + [406] * 15
    accepted = [r.json()["request_id"] for r in responses if r.status_code == 200]
    assert len(set(accepted)) == 5
    for request_id in accepted:
        assert shared_service.wait_for(request_id, key=key)["status"] == "COMPLETED"
    store = shared_service.store()
    assert all(store.ledger(rid) == [("hold", 240), ("capture", 240)] for rid in accepted)
    with shared_service.client(key) as client:
        last = client.get(f"/v2/requests/{accepted[0]}/status")
    assert float(last.headers["x-remaining-credits"]) == 0.0
