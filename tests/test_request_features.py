"""Cancel, progress fields, live events, idempotent submits, history and signed webhooks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from segmind import InferenceFailed, SegmindClient

from conftest import T2V, Service, make_service

FAST = {"duration": "3", "generate_audio": False}


def _submit(client: httpx.Client, prompt: str, **extra: Any) -> str:
    response = client.post(f"/v2/{T2V}", json={**FAST, "prompt": prompt, **extra})
    assert response.status_code == 200, response.text
    return str(response.json()["request_id"])


def test_cancel_a_running_and_a_queued_job(service: Service) -> None:
    with service.client() as client:
        running = _submit(client, "sleep=30")
        queued = _submit(client, "sleep=30")
        service.wait_for(running, ("PROCESSING",))
        assert client.get(f"/v2/requests/{queued}/status").json()["queue_position"] == 1

        stopped_at = time.monotonic()
        canceled = client.post(f"/v2/requests/{running}/cancel")
        assert canceled.status_code == 200
        assert canceled.json()["status"] == "FAILED"
        assert canceled.json()["error"] == "canceled" and canceled.json()["canceled"] is True
        assert client.post(f"/v2/requests/{queued}/cancel").status_code == 200
        # The worker drops the canceled job within a step and takes the next one.
        after = _submit(client, "sleep=0.1")
        assert service.wait_for(after, timeout=20)["status"] == "COMPLETED"
        assert time.monotonic() - stopped_at < 20  # not the 30 s the job would have run

        status = client.get(f"/v2/requests/{running}/status")
        assert status.status_code == 422 and status.json()["canceled"] is True
        assert client.post(f"/v2/requests/{running}/cancel").status_code == 409
        assert client.post("/v2/requests/nope/cancel").status_code == 404
    store = service.store()
    assert store.ledger(running) == store.ledger(queued) == [("hold", 240), ("release", 240)]
    never_ran = store.get_job(queued)
    assert never_ran is not None and never_ran.started_at is None


def test_a_canceled_job_raises_inference_failed_in_the_sdk(service: Service) -> None:
    sdk = SegmindClient(base_url=f"{service.base_url}/v1", api_key=service.api_key)
    try:
        job = sdk.submit_async(T2V, prompt="sleep=30", duration="3")
        with service.client() as client:
            service.wait_for(job.request_id, ("PROCESSING",))
            client.post(f"/v2/requests/{job.request_id}/cancel")
        with pytest.raises(InferenceFailed) as raised:
            job.wait(timeout=30, interval=0.2)
        assert raised.value.detail == "canceled"
    finally:
        sdk._client.close()


def test_status_carries_progress_eta_and_timestamps(service: Service) -> None:
    with service.client() as client:
        request_id = _submit(client, "sleep=3")
        service.wait_for(request_id, ("PROCESSING",))
        deadline = time.monotonic() + 10
        body: dict[str, Any] = {}
        while time.monotonic() < deadline:
            body = client.get(f"/v2/requests/{request_id}/status").json()
            if body["progress"] > 0.1 and body["eta_seconds"] is not None:
                break
            time.sleep(0.1)
        assert 0.1 < body["progress"] < 1 and body["eta_seconds"] > 0
        assert body["created_at"].endswith("+00:00") and body["started_at"]
        assert body["completed_at"] is None
        done = service.wait_for(request_id)
        assert done["completed_at"] and done["eta_seconds"] == 0


def _read_events(response: httpx.Response) -> list[tuple[int, dict[str, Any]]]:
    events, event_id = [], 0
    for line in response.iter_lines():
        if line.startswith("id: "):
            event_id = int(line[4:])
        elif line.startswith("data: "):
            events.append((event_id, json.loads(line[6:])))
    return events


def test_events_stream_until_the_end_and_resume_after_last_event_id(service: Service) -> None:
    with service.client() as client:
        request_id = _submit(client, "sleep=1.5")
        with client.stream("GET", f"/v2/requests/{request_id}/events") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            events = _read_events(response)
        ids = [event_id for event_id, _ in events]
        assert ids == list(range(1, len(ids) + 1))
        assert events[-1][1]["status"] == "COMPLETED"
        assert any(body["status"] == "PROCESSING" for _, body in events)
        progress = [body["progress"] for _, body in events if body["status"] == "PROCESSING"]
        assert progress == sorted(progress) and len(progress) >= 2

        with client.stream("GET", f"/v2/requests/{request_id}/events",
                           headers={"Last-Event-ID": str(ids[-1])}) as response:
            resumed = _read_events(response)
        assert [event_id for event_id, _ in resumed] == [ids[-1] + 1]
        assert resumed[0][1]["status"] == "COMPLETED"


def test_idempotency_key_gives_the_same_job_and_one_charge(service: Service) -> None:
    key = service.create_key("--credits", "1")
    with service.client(key) as client:
        headers = {"Idempotency-Key": "order-42"}
        body = {**FAST, "prompt": "sleep=0.1 the same"}
        first = client.post(f"/v2/{T2V}", json=body, headers=headers)
        again = client.post(f"/v2/{T2V}", json=dict(reversed(list(body.items()))),
                            headers=headers)
        assert first.status_code == again.status_code == 200
        assert first.json()["request_id"] == again.json()["request_id"]
        assert float(again.headers["x-remaining-credits"]) == pytest.approx(0.76)
        other = client.post(f"/v2/{T2V}", json={**body, "prompt": "something else"},
                            headers=headers)
        assert other.status_code == 422 and "Idempotency-Key" in other.json()["error"]
        plain = client.post(f"/v2/{T2V}", json=body)
        assert plain.json()["request_id"] != first.json()["request_id"]
        service.wait_for(first.json()["request_id"], key=key)
        replay = client.post(f"/v2/{T2V}", json=body, headers=headers)
        assert replay.json()["request_id"] == first.json()["request_id"]


def test_recent_requests_of_this_key_only(service: Service) -> None:
    other = service.create_key()
    with service.client() as client:
        ids = [_submit(client, f"sleep=0 job {n}") for n in range(3)]
        service.wait_for(ids[-1])
        listed = client.get("/v2/requests", params={"limit": 2}).json()["requests"]
    assert [item["request_id"] for item in listed] == ids[::-1][:2]
    assert listed[0]["model"] == T2V and listed[0]["prompt"] == "sleep=0 job 2"
    with service.client(other) as client:
        assert client.get("/v2/requests").json()["requests"] == []


class Receiver:
    """A loopback webhook endpoint that fails the first ``failures`` calls."""

    def __init__(self, failures: int, port: int = 0) -> None:
        self.failures = failures
        self.calls: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.calls.append(({k.lower(): v for k, v in self.headers.items()}, body))
                code = 500 if len(receiver.calls) <= receiver.failures else 204
                self.send_response(code)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver(failures=1)
    yield server
    server.close()


def _verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return headers["webhook-signature"] == f"v1,{expected}"


def test_signed_webhook_is_retried_until_delivered(tmp_path: Path, backend: dict[str, str],
                                                   receiver: Receiver) -> None:
    service = make_service(tmp_path, webhook_backoff_s="0.3,0.3,0.3", **backend)
    try:
        with service.client() as client:
            request_id = _submit(client, "sleep=0.1", webhook_url=receiver.url)
            service.wait_for(request_id)
            deadline = time.monotonic() + 20
            while len(receiver.calls) < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
            secret = client.get("/v2/webhooks/secret").json()["secret"]
            log = client.get(f"/v2/requests/{request_id}/webhooks").json()
            scraped = client.get("/metrics").text
            output = client.get(f"/v2/requests/{request_id}").json()["output"]
    finally:
        service.stop()
    assert len(receiver.calls) == 2
    (first_headers, first_body), (headers, body) = receiver.calls
    assert first_body == body  # the same message each time
    assert first_headers["webhook-id"] == headers["webhook-id"]  # one message, tried twice
    assert secret.startswith("whsec_") and _verify(secret, headers, body)
    assert not _verify(secret.replace("A", "B", 1) if "A" in secret else "whsec_AAAA",
                       headers, body)
    event = json.loads(body)
    assert event["type"] == "request.completed"
    assert event["data"] == {"request_id": request_id, "status": "COMPLETED", "output": output}
    assert [entry["outcome"] for entry in log["deliveries"]] == ["HTTP 500", "HTTP 204"]
    assert log["deliveries"][-1]["state"] == "delivered"
    assert 'reelserve_webhook_deliveries_total{outcome="retrying"} 1.0' in scraped
    assert 'reelserve_webhook_deliveries_total{outcome="delivered"} 1.0' in scraped


def test_a_pending_webhook_survives_a_restart(tmp_path: Path, backend: dict[str, str]) -> None:
    service = make_service(tmp_path, webhook_backoff_s=",".join(["2"] * 10), **backend)
    closed = Receiver(failures=0)
    port = closed.port
    closed.close()  # nobody answers yet: the first try fails and the delivery stays pending
    try:
        with service.client() as client:
            request_id = _submit(client, "fail", webhook_url=closed.url)
            service.wait_for(request_id)
            deadline = time.monotonic() + 10
            while not client.get(f"/v2/requests/{request_id}/webhooks").json()["deliveries"]:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        service.stop()
        revived = Receiver(failures=0, port=port)
        try:
            service.start(workers=1)
            deadline = time.monotonic() + 20
            while not revived.calls and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            revived.close()
    finally:
        service.stop()
    assert revived.calls, "the pending delivery was not sent after the restart"
    event = json.loads(revived.calls[0][1])
    assert event["type"] == "request.failed" and event["data"]["request_id"] == request_id
    assert "told to fail" in event["data"]["error"]


def test_webhooks_to_private_addresses_are_refused_and_logged(service: Service) -> None:
    """The fetch policy applies to webhooks: nothing connects; the log says why."""
    with service.client() as client:
        request_id = _submit(client, "sleep=0", webhook_url="http://169.254.169.254/latest")
        service.wait_for(request_id)
        deadline = time.monotonic() + 10
        log: list[dict[str, Any]] = []
        while not log and time.monotonic() < deadline:
            log = client.get(f"/v2/requests/{request_id}/webhooks").json()["deliveries"]
            time.sleep(0.1)
    assert log and "169.254.169.254" in log[0]["outcome"]
    assert "not a public address" in log[0]["outcome"]
