"""The API never blocks on the store: a real server, a real redis-server, a relay we freeze.

The relay sits between the API (and its worker) and a redis-server this test
starts. Frozen, it stops moving bytes both ways, as a hung Redis or a network
partition would: connections stay open and calls wait. The API must keep
answering /healthz, answer store-bound requests 503 with Retry-After once its
store timeout passes, and lose nothing when the relay thaws.
"""

from __future__ import annotations

import contextlib
import selectors
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import T2V, Service, free_port, make_service, needs_outside_part

STORE_TIMEOUT_S = 1.0


class FreezableRelay:
    """A TCP relay on loopback whose traffic can be stopped and resumed."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.flowing = threading.Event()
        self.flowing.set()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def freeze(self) -> None:
        self.flowing.clear()

    def thaw(self) -> None:
        self.flowing.set()

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(5)
        self.listener.close()

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        self.listener.setblocking(False)
        selector.register(self.listener, selectors.EVENT_READ, None)
        while not self.stopped.is_set():
            if not self.flowing.is_set():
                self.flowing.wait(0.05)  # bytes wait in the kernel's buffers meanwhile
                continue
            for selected, _ in selector.select(0.05):
                sock = selected.fileobj
                assert isinstance(sock, socket.socket)
                if sock is self.listener:
                    client, _ = self.listener.accept()
                    upstream = socket.create_connection(("127.0.0.1", self.target_port))
                    selector.register(client, selectors.EVENT_READ, upstream)
                    selector.register(upstream, selectors.EVENT_READ, client)
                    continue
                peer = selected.data
                try:
                    data = sock.recv(65536)
                    if data:
                        peer.sendall(data)
                        continue
                except OSError:
                    pass
                for closing in (sock, peer):
                    with contextlib.suppress(KeyError, ValueError):
                        selector.unregister(closing)
                    closing.close()
        for key in list(selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]


@pytest.fixture
def redis_behind_relay(tmp_path: Path) -> Iterator[FreezableRelay]:
    server = shutil.which("redis-server")
    if server is None:
        needs_outside_part("redis-server is not installed; apt-get install redis-server")
    assert server is not None
    port = free_port()
    process = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1",
                                "--dir", str(tmp_path), "--save", "", "--appendonly", "no"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                break
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
        relay = FreezableRelay(port)
        yield relay
        relay.close()
    finally:
        process.terminate()
        process.wait(10)


def submit(client: httpx.Client, prompt: str, **headers: str) -> httpx.Response:
    body = {"prompt": prompt, "duration": "3", "generate_audio": False}
    return client.post(f"/v2/{T2V}", json=body, headers=headers)


def test_healthz_answers_and_store_calls_get_503_while_redis_hangs_then_nothing_is_lost(
        tmp_path: Path, redis_behind_relay: FreezableRelay) -> None:
    relay = redis_behind_relay
    service: Service = make_service(
        tmp_path, store=f"redis://127.0.0.1:{relay.port}/0", api_store_timeout_s=STORE_TIMEOUT_S,
        rate_limit=0)
    try:
        with service.client(timeout=30) as client:
            before = submit(client, "queued before the freeze sleep=0.5")
            assert before.status_code == 200, before.text
            before_id = before.json()["request_id"]
            relay.freeze()
            try:
                healthz = [httpx.get(f"{service.base_url}/healthz", timeout=2)
                           for _ in range(5)]
                assert {response.status_code for response in healthz} == {200}
                poll = client.get(f"/v2/requests/{before_id}/status")
                refused = submit(client, "sent during the freeze", **{"idempotency-key": "k1"})
                # /healthz still answers while those wait on the store
                assert httpx.get(f"{service.base_url}/healthz", timeout=2).status_code == 200
            finally:
                relay.thaw()
            for response in (poll, refused):
                assert response.status_code == 503, response.text
                assert int(response.headers["retry-after"]) >= 1
                assert "job store did not answer" in response.json()["error"]
            # Nothing lost: the earlier job runs to the end, the retried submit is one job.
            assert service.wait_for(before_id)["status"] == "COMPLETED"
            retried = submit(client, "sent during the freeze", **{"idempotency-key": "k1"})
            assert retried.status_code == 200, retried.text
            assert service.wait_for(retried.json()["request_id"])["status"] == "COMPLETED"
            again = submit(client, "sent during the freeze", **{"idempotency-key": "k1"})
            assert again.json()["request_id"] == retried.json()["request_id"]
    finally:
        service.stop()
