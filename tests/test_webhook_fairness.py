"""Fair webhook delivery: one key's hanging receiver never delays another key's webhooks.

Real parts: a SQLite store, jobs ended by cancel (which queues their webhook in the
store), the real sender with the real fetch policy, and loopback receivers: one
that accepts connections and never answers, one that answers 204.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from reelserve.catalog import get_model, parse_submit
from reelserve.jobs import JobOrder
from reelserve.jobs.sqlite import SqliteJobStore
from reelserve.settings import Settings
from reelserve.settings_sections import WebhookSettings
from reelserve.webhooks import WebhookSender

from conftest import T2V


@dataclass
class HangingReceiver:
    """Accepts every connection and never answers: the attacker's receiver."""

    url: str
    accepted: list[float] = field(default_factory=list)


@contextlib.contextmanager
def hanging_receiver() -> Iterator[HangingReceiver]:
    server = socket.create_server(("127.0.0.1", 0), backlog=128)
    receiver = HangingReceiver(f"http://127.0.0.1:{server.getsockname()[1]}/hook")
    held: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = server.accept()
                held.append(conn)
                receiver.accepted.append(time.monotonic())

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.close()
        for conn in held:
            conn.close()


@dataclass
class GoodReceiver:
    url: str
    received: list[float] = field(default_factory=list)


@contextlib.contextmanager
def good_receiver() -> Iterator[GoodReceiver]:
    receiver = GoodReceiver("")

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["content-length"]))
            receiver.received.append(time.monotonic())
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


def queue_webhooks(store: SqliteJobStore, key_name: str, url: str, count: int) -> None:
    """``count`` jobs of a new key, each submitted then canceled: one webhook each."""
    key = store.create_key(f"hash-{key_name}", f"rs_{key_name}", name=key_name,
                           credits=10_000_000, models=None)
    params = parse_submit(get_model(T2V), {"prompt": "a webhook test"})
    orders = [JobOrder(key.id, params, 1, webhook_url=url) for _ in range(count)]
    for outcome in store.submit_jobs(orders):
        assert isinstance(outcome, tuple)
        store.cancel_job(outcome[0].id)


def settings(**overrides: Any) -> WebhookSettings:
    return Settings(fetch_allow_cidrs="127.0.0.0/8", webhook_backoff_s="600",
                    **overrides).webhooks


async def run_sender(sender: WebhookSender, until: Any, timeout_s: float) -> float:
    """Run the sender until ``until()`` holds; the seconds it took (or the timeout)."""
    task = asyncio.create_task(sender.run_forever(interval_s=0.05))
    started = time.monotonic()
    try:
        while not until() and time.monotonic() - started < timeout_s:
            await asyncio.sleep(0.02)
        return time.monotonic() - started
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def test_a_hanging_receiver_does_not_delay_other_keys_webhooks(tmp_path: Path) -> None:
    store = SqliteJobStore(tmp_path / "store.sqlite3", retention_s=3600)
    with hanging_receiver() as attacker, good_receiver() as victim:
        queue_webhooks(store, "attacker", attacker.url, 60)  # queued first: due first
        queue_webhooks(store, "victim", victim.url, 3)
        sender = WebhookSender(settings(webhook_timeout_s=30.0), store, "http://x")
        took = asyncio.run(run_sender(sender, lambda: len(victim.received) == 3, 20.0))
        # Well within one receiver timeout (30 s), and the attacker's key held at
        # most its cap of connections, whatever its backlog.
        assert len(victim.received) == 3 and took < 10.0, took
        assert len(attacker.accepted) == Settings().webhooks.key_concurrency == 2


def test_a_failing_destination_backs_off_without_holding_a_slot(tmp_path: Path) -> None:
    store = SqliteJobStore(tmp_path / "store.sqlite3", retention_s=3600)
    with hanging_receiver() as attacker:
        queue_webhooks(store, "attacker", attacker.url, 10)
        sender = WebhookSender(settings(webhook_timeout_s=0.3, webhook_host_backoff_s=30.0),
                               store, "http://x")
        asyncio.run(run_sender(sender, lambda: False, 2.5))
    # Two calls timed out; the host then rests 30 s: no third connection, no slot held.
    assert len(attacker.accepted) == 2
    assert sender._tasks == set()
    tried = [entry for job in _jobs(store) for entry in store.webhook_log(job)]
    assert len(tried) == 2 and all("took longer than 0.3 s" in e["outcome"] for e in tried)


def _jobs(store: SqliteJobStore) -> list[str]:
    return [str(row[0]) for row in store._conn().execute("SELECT id FROM jobs")]


@pytest.mark.parametrize("key_concurrency", [1, 3])
def test_in_flight_sends_per_key_never_pass_the_cap(tmp_path: Path,
                                                    key_concurrency: int) -> None:
    store = SqliteJobStore(tmp_path / "store.sqlite3", retention_s=3600)
    with hanging_receiver() as attacker:
        queue_webhooks(store, "attacker", attacker.url, 20)
        sender = WebhookSender(settings(webhook_timeout_s=30.0,
                                        webhook_key_concurrency=key_concurrency),
                               store, "http://x")
        asyncio.run(run_sender(sender, lambda: False, 1.5))
    assert len(attacker.accepted) == key_concurrency
