"""The Python client, sync and asyncio, against a real server: submit, wait, stream, cancel."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import pytest

from reelserve import errors
from reelserve.client import (
    AlreadyFinished,
    AsyncReelserveClient,
    AuthenticationFailed,
    BadRequest,
    JobStatus,
    NotEnoughCredits,
    NotFoundError,
    ReelserveClient,
    RequestFailed,
    ServerUnreachable,
    WaitTimeout,
)
from reelserve.jobs import JobState

from conftest import T2V, Service, free_port, make_service

FAST = {"duration": "3", "generate_audio": False}


@pytest.fixture(scope="module")
def client_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    # Workers write progress with each lease renewal, every third of lease_s.
    svc = make_service(tmp_path_factory.mktemp("client"), rate_limit=0, lease_s=2)
    yield svc
    svc.stop()


@pytest.fixture
def client(client_service: Service) -> Iterator[ReelserveClient]:
    with ReelserveClient(client_service.base_url, client_service.api_key) as sync_client:
        yield sync_client


def _frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_submit_wait_and_download(client: ReelserveClient, tmp_path: Path) -> None:
    request_id = client.submit(T2V, prompt="sleep=2.5 a lighthouse", seed=7, **FAST)
    updates: list[JobStatus] = []
    done = client.wait(request_id, timeout=60, on_update=updates.append)

    assert done.status is JobState.COMPLETED and done.output and done.metrics
    assert updates[-1].status is JobState.COMPLETED
    progress = [status.progress for status in updates]
    assert progress == sorted(progress) and any(0 < value < 1 for value in progress)
    saved = client.download(done.output, tmp_path / "out.mp4")
    assert _frames(saved) == 3 * 24
    assert not (tmp_path / "out.mp4.part").exists()


def test_base_url_may_end_in_v1_like_the_sdk(client_service: Service) -> None:
    with ReelserveClient(f"{client_service.base_url}/v1/", client_service.api_key) as client:
        request_id = client.submit(T2V, prompt="a quiet bay", **FAST)
        assert client.wait(request_id, timeout=60).status is JobState.COMPLETED


def test_stream_yields_each_new_status_until_the_end(client: ReelserveClient) -> None:
    request_id = client.submit(T2V, prompt="sleep=1.5 rain on a window", **FAST)
    seen = list(client.stream(request_id, timeout=60))

    assert seen[-1].status is JobState.COMPLETED and seen[-1].completed_at is not None
    assert any(status.status is JobState.PROCESSING for status in seen)
    assert all(status.request_id == request_id for status in seen)
    assert [s.progress for s in seen] == sorted(s.progress for s in seen)
    assert seen[-1].created_at is not None and seen[-1].started_at is not None


class NoEventsTransport(httpx.HTTPTransport):
    """A server of the plain contract: everything but the events route."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events"):
            return httpx.Response(404, json={"error": "Not Found"})
        return super().handle_request(request)


def test_stream_polls_when_the_server_has_no_events_route(client_service: Service) -> None:
    with ReelserveClient(client_service.base_url, client_service.api_key,
                         transport=NoEventsTransport()) as client:
        request_id = client.submit(T2V, prompt="sleep=1 a meadow", **FAST)
        seen = list(client.stream(request_id, timeout=60))
        assert seen[-1].status is JobState.COMPLETED
        assert len(seen) >= 2
        with pytest.raises(NotFoundError):
            list(client.stream("no-such-request", timeout=10))


class DroppingEventsTransport(httpx.HTTPTransport):
    """Cuts each of the first two event streams after one event, as a flaky proxy would."""

    def __init__(self) -> None:
        super().__init__()
        self.last_event_ids: list[str | None] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if not request.url.path.endswith("/events"):
            return response
        self.last_event_ids.append(request.headers.get("last-event-id"))
        if len(self.last_event_ids) > 2:
            return response
        received = b""
        for chunk in response.iter_raw():
            received += chunk
            if b"\n\n" in received:
                break
        response.close()
        first_event = received.split(b"\n\n")[0] + b"\n\n"
        return httpx.Response(200, headers={"content-type": "text/event-stream"},
                              content=first_event)


def test_stream_resumes_after_a_drop_with_last_event_id(client_service: Service) -> None:
    transport = DroppingEventsTransport()
    with ReelserveClient(client_service.base_url, client_service.api_key,
                         transport=transport) as client:
        request_id = client.submit(T2V, prompt="sleep=2 a drifting boat", **FAST)
        seen = list(client.stream(request_id, timeout=60))
    assert seen[-1].status is JobState.COMPLETED
    assert transport.last_event_ids[0] is None
    assert transport.last_event_ids[1] == "1" and transport.last_event_ids[2] == "2"


def test_cancel_a_running_request(client: ReelserveClient) -> None:
    request_id = client.submit(T2V, prompt="sleep=30 a slow sunrise", **FAST)
    for status in client.stream(request_id, timeout=30):
        if status.status is JobState.PROCESSING:
            break
    canceled = client.cancel(request_id)
    assert canceled.status is JobState.FAILED and canceled.canceled
    assert canceled.error == "canceled"

    with pytest.raises(RequestFailed) as failed:
        client.wait(request_id, timeout=10)
    assert failed.value.canceled and failed.value.message == "canceled"
    assert isinstance(failed.value, errors.JobFailed)
    with pytest.raises(AlreadyFinished) as again:
        client.cancel(request_id)
    assert again.value.status_code == 409 and isinstance(again.value, errors.Conflict)


def test_a_failed_request_raises_request_failed(client: ReelserveClient) -> None:
    request_id = client.submit(T2V, prompt="fail", **FAST)
    with pytest.raises(RequestFailed) as failed:
        client.wait(request_id, timeout=30)
    assert "told to fail" in failed.value.message and not failed.value.canceled
    assert failed.value.request_id == request_id
    # status() reports the FAILED request (served with 422) instead of raising
    assert client.status(request_id).status is JobState.FAILED


def test_wait_gives_up_after_its_timeout(client: ReelserveClient) -> None:
    request_id = client.submit(T2V, prompt="sleep=30 a long night", **FAST)
    try:
        with pytest.raises(WaitTimeout) as late:
            client.wait(request_id, timeout=1)
        assert late.value.request_id == request_id
    finally:
        client.cancel(request_id)


def test_same_idempotency_key_gives_the_same_request(client: ReelserveClient) -> None:
    key = f"client-test-{uuid.uuid4()}"
    first = client.submit(T2V, prompt="a harbor", idempotency_key=key, **FAST)
    assert client.submit(T2V, prompt="a harbor", idempotency_key=key, **FAST) == first
    with pytest.raises(BadRequest) as other_body:
        client.submit(T2V, prompt="a different harbor", idempotency_key=key, **FAST)
    assert other_body.value.status_code == 422
    client.wait(first, timeout=60)


def test_api_errors_map_to_client_exceptions(client_service: Service,
                                             client: ReelserveClient) -> None:
    with pytest.raises(BadRequest, match="duration"):
        client.submit(T2V, prompt="x", duration="42")
    with pytest.raises(NotFoundError):
        client.status("no-such-request")
    with ReelserveClient(client_service.base_url, "rs_wrong") as wrong:
        with pytest.raises(AuthenticationFailed) as denied:
            wrong.submit(T2V, prompt="x")
        assert isinstance(denied.value, errors.Unauthorized)
    poor = client_service.create_key("--credits", "0.01")
    with ReelserveClient(client_service.base_url, poor) as poor_client, \
            pytest.raises(NotEnoughCredits):
        poor_client.submit(T2V, prompt="x", **FAST)
    with ReelserveClient(f"http://127.0.0.1:{free_port()}", "rs_x") as nowhere, \
            pytest.raises(ServerUnreachable):
        nowhere.status("anything")


def test_recent_lists_this_keys_requests(client: ReelserveClient) -> None:
    request_id = client.submit(T2V, prompt="the newest one", **FAST)
    client.wait(request_id, timeout=60)
    recent = client.recent(limit=3)
    assert recent[0].request_id == request_id and recent[0].output
    assert recent[0].raw["prompt"] == "the newest one"


def test_async_client_submits_streams_waits_and_downloads(client_service: Service,
                                                          tmp_path: Path) -> None:
    async def scenario() -> tuple[list[JobStatus], JobStatus, Path]:
        async with AsyncReelserveClient(client_service.base_url,
                                        client_service.api_key) as client:
            first = await client.submit(T2V, prompt="sleep=1 async waves", **FAST)
            streamed = [status async for status in client.stream(first, timeout=60)]
            second = await client.submit(T2V, prompt="sleep=0.5 async dunes", **FAST)
            updates: list[JobStatus] = []

            async def record(status: JobStatus) -> None:
                updates.append(status)

            done = await client.wait(second, timeout=60, on_update=record)
            assert done.output is not None and updates[-1].is_terminal
            return streamed, done, await client.download(done.output, tmp_path / "a.mp4")

    streamed, done, saved = asyncio.run(scenario())
    assert streamed[-1].status is JobState.COMPLETED
    assert done.status is JobState.COMPLETED
    assert _frames(saved) == 3 * 24


def test_async_client_cancels_and_maps_errors(client_service: Service) -> None:
    async def scenario() -> None:
        async with AsyncReelserveClient(client_service.base_url,
                                        client_service.api_key) as client:
            request_id = await client.submit(T2V, prompt="sleep=30 async dusk", **FAST)
            canceled = await client.cancel(request_id)
            assert canceled.canceled and canceled.status is JobState.FAILED
            with pytest.raises(RequestFailed) as failed:
                await client.wait(request_id, timeout=10)
            assert failed.value.canceled
            with pytest.raises(AlreadyFinished):
                await client.cancel(request_id)
            with pytest.raises(BadRequest, match="aspect_ratio"):
                await client.submit(T2V, prompt="x", aspect_ratio="4:3")
            with pytest.raises(WaitTimeout):
                late = await client.submit(T2V, prompt="sleep=30 async night", **FAST)
                try:
                    await client.wait(late, timeout=1)
                finally:
                    await client.cancel(late)

    asyncio.run(scenario())
