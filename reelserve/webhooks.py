"""Signed completion callbacks in the Standard Webhooks scheme, delivered until they land.

A job submitted with ``webhook_url`` gets one delivery when it ends; the store
queues it in the same transaction that ends the job, so a crash cannot lose it.
Every API server runs a ``WebhookSender``: it takes due deliveries from the
store (leasing each while it sends), POSTs them, and records the outcome. A
failed delivery is tried again on a backoff schedule that spans hours
(``webhook_backoff_s``) and every try is kept in the request's delivery log.

Signature (https://www.standardwebhooks.com): ``webhook-signature: v1,<base64
HMAC-SHA256(secret, "<webhook-id>.<webhook-timestamp>.<body>")>``, where the key
is the base64-decoded part of the key's ``whsec_...`` secret.

Fairness: one key's receiver, however slow, cannot delay another key's webhooks.
Each send runs as its own task (a pass never waits for a batch to finish); at
most ``webhook_concurrency`` run at once and at most ``webhook_key_concurrency``
for one key. A call must connect within ``webhook_connect_timeout_s`` and end
within ``webhook_timeout_s``. After a call that failed slowly (it held its slot
for a connect deadline or more) the key's destination host backs off
(``HostBackoff``); its due deliveries, like those of a key at its cap, stay
leased in the store and come back later, holding no sender slot and counting
no attempt. A pass scans at most ``MAX_SCAN`` due deliveries, so the
others' are reached past one key's backlog.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import anyio

from reelserve import metrics
from reelserve.errors import FetchError
from reelserve.jobs import JobStore, WebhookDelivery
from reelserve.media.fetch_policy import Deadline, FetchPolicy
from reelserve.settings_sections import WebhookSettings

T = TypeVar("T")

log = logging.getLogger("reelserve.webhooks")
SEND_LEASE_S = 60.0  # how long one sender holds a delivery while it tries (or defers) it
BATCH = 20
MAX_SCAN = 200  # due deliveries looked at per pass, past those that must wait
# Deliveries of a key at its cap wait here (not in a slot) for that key's next free
# slot, so a burst from one key drains at once instead of one lease at a time.
WAITING_PER_KEY = 8
MAX_BACKOFF_ENTRIES = 10_000


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


# Sends one signed POST; answers a short outcome ("HTTP 204", "refused: ...") and
# whether it counts as delivered. The default goes through the same fetch policy
# as input images: public addresses only unless allowlisted, the address checked
# is the one connected to, no redirects followed, one deadline.
Poster = Callable[[str, bytes, dict[str, str]], Awaitable[tuple[str, bool]]]


class HostBackoff:
    """Destinations that failed lately, per (key, host): when each may be called again.

    Keyed by the key too, so one key's failing receiver never rests another key's
    deliveries to the same host.
    """

    def __init__(self, base_s: float, max_s: float) -> None:
        self.base_s, self.max_s = base_s, max_s
        self._failures: dict[tuple[int, str], tuple[int, float]] = {}

    def resting(self, key_id: int, host: str, now: float) -> bool:
        entry = self._failures.get((key_id, host))
        return entry is not None and now < entry[1]

    def failed(self, key_id: int, host: str, now: float) -> None:
        count = self._failures.get((key_id, host), (0, 0.0))[0] + 1
        self._failures[(key_id, host)] = (count, now + min(self.max_s,
                                                           self.base_s * 2 ** (count - 1)))
        if len(self._failures) > MAX_BACKOFF_ENTRIES:  # forget the ones already rested
            self._failures = {k: v for k, v in self._failures.items() if v[1] > now}

    def succeeded(self, key_id: int, host: str) -> None:
        self._failures.pop((key_id, host), None)


class WebhookSender:
    def __init__(self, settings: WebhookSettings, store: JobStore, base_url: str,
                 poster: Poster | None = None) -> None:
        self.settings = settings
        self.store = store
        self.base_url = base_url
        self.schedule = settings.backoff_s
        self.policy = FetchPolicy(settings.fetch.allow_networks)
        self.poster = poster or self._post
        self.backoff = HostBackoff(settings.host_backoff_s, settings.host_backoff_max_s)
        self._in_flight: dict[int, int] = {}  # key id -> sends under way
        # key id -> (delivery, when it was claimed), waiting for that key's next slot
        self._waiting: dict[int, deque[tuple[WebhookDelivery, float]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._slow_failure_s = 0.9 * min(settings.connect_timeout_s, settings.timeout_s)

    async def run_forever(self, interval_s: float = 0.5) -> None:
        try:
            while True:
                try:
                    await self.start_due()
                except Exception:  # the sender must outlive a bad pass (a store hiccup)
                    log.exception("webhook pass failed")
                await asyncio.sleep(interval_s)
        finally:
            for task in self._tasks:
                task.cancel()

    async def send_due(self) -> int:
        """Start the due deliveries that may go now and wait for them; how many went."""
        started = await self.start_due()
        await self.drain()
        return started

    async def drain(self) -> None:
        """Wait for every send under way."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def start_due(self) -> int:
        """Start a task for each due delivery that may go now; the rest wait, leased.

        Returns at once: the sends run on their own, each freeing its slot as it ends.
        """
        started = scanned = 0
        while scanned < MAX_SCAN and len(self._tasks) < self.settings.concurrency:
            due = await anyio.to_thread.run_sync(self.store.claim_due_webhooks, BATCH,
                                                  SEND_LEASE_S)
            scanned += len(due)
            claimed_at = time.monotonic()
            for delivery in due:
                if self._may_start(delivery, claimed_at):
                    self._start(delivery)
                    started += 1
            if len(due) < BATCH:
                break
        return started

    def _may_start(self, delivery: WebhookDelivery, claimed_at: float) -> bool:
        """Whether a slot is free for it now; if not, it waits out its lease, unsent."""
        if len(self._tasks) >= self.settings.concurrency:
            reason = "senders_full"
        elif self._in_flight.get(delivery.key_id, 0) >= self.settings.key_concurrency:
            reason = "key_busy"
            waiting = self._waiting.setdefault(delivery.key_id, deque())
            if len(waiting) < WAITING_PER_KEY:
                waiting.append((delivery, claimed_at))
        elif self.backoff.resting(delivery.key_id, _host(delivery.url), time.monotonic()):
            reason = "host_backoff"
        else:
            return True
        metrics.WEBHOOK_DEFERRED.labels(reason).inc()
        return False

    def _start(self, delivery: WebhookDelivery) -> None:
        self._in_flight[delivery.key_id] = self._in_flight.get(delivery.key_id, 0) + 1
        task = asyncio.create_task(self._deliver(delivery))
        self._tasks.add(task)
        self._show_load()

        def finished(done: asyncio.Task[None]) -> None:
            self._tasks.discard(done)
            left = self._in_flight.pop(delivery.key_id, 1) - 1
            if left > 0:
                self._in_flight[delivery.key_id] = left
            self._show_load()
            if done.cancelled():
                return  # the sender is stopping: start nothing more
            if done.exception() is not None:
                log.error("webhook send failed", exc_info=done.exception())
            self._start_waiting(delivery.key_id)

        task.add_done_callback(finished)

    def _start_waiting(self, key_id: int) -> None:
        """Start the key's next waiting delivery whose lease still covers a whole call."""
        waiting = self._waiting.get(key_id)
        latest_claim = time.monotonic() - (SEND_LEASE_S - self.settings.timeout_s - 5)
        while waiting:
            delivery, claimed_at = waiting.popleft()
            if claimed_at < latest_claim:
                continue  # its lease may end mid-call: leave it to the store to hand out
            if self._may_start(delivery, claimed_at):
                self._start(delivery)
            return
        self._waiting.pop(key_id, None)

    def _show_load(self) -> None:
        metrics.WEBHOOK_IN_FLIGHT.set(len(self._tasks))
        metrics.WEBHOOK_BUSIEST_KEY.set(max(self._in_flight.values(), default=0))

    async def _deliver(self, delivery: WebhookDelivery) -> None:
        secret = await anyio.to_thread.run_sync(self.store.webhook_secret, delivery.key_id,
                                                new_secret())
        body = json.dumps(self.payload(delivery), separators=(",", ":")).encode()
        timestamp = int(time.time())
        headers = {"content-type": "application/json", "webhook-id": delivery.id,
                   "webhook-timestamp": str(timestamp),
                   "webhook-signature": sign(secret, delivery.id, timestamp, body),
                   "user-agent": "reelserve-webhooks"}
        called_at = time.monotonic()
        outcome, delivered = await self.poster(delivery.url, body, headers)
        host, now = _host(delivery.url), time.monotonic()
        if delivered:
            self.backoff.succeeded(delivery.key_id, host)
        elif now - called_at >= self._slow_failure_s:
            # A failure that held its slot (a hang, no connection) rests the host; a quick
            # refusal or error status only follows the delivery's own retry schedule.
            self.backoff.failed(delivery.key_id, host, now)
        tries = delivery.attempts + 1
        retry_at = None
        if not delivered and tries <= len(self.schedule):
            retry_at = await anyio.to_thread.run_sync(self.store.now) + self.schedule[tries - 1]
        await anyio.to_thread.run_sync(self.store.record_webhook_attempt, delivery.id, outcome,
                                       retry_at, delivered)
        result = "delivered" if delivered else "retrying" if retry_at is not None else "gave_up"
        metrics.WEBHOOK_DELIVERIES.labels(result).inc()
        log.info("webhook %s: %s", "delivered" if delivered else "not delivered", outcome,
                 extra={"request_id": delivery.job_id, "status": outcome})

    def payload(self, delivery: WebhookDelivery) -> dict[str, Any]:
        event = delivery.event
        data: dict[str, Any] = {"request_id": delivery.job_id, "status": event["status"]}
        if event["status"] == "COMPLETED":
            data["output"] = f"{self.base_url}/outputs/{event['output_key']}"
        else:
            data["error"] = event.get("error") or "failed"
            data["canceled"] = bool(event.get("canceled"))
        kind = "request.completed" if event["status"] == "COMPLETED" else "request.failed"
        at = datetime.fromtimestamp(float(event["at"]), UTC).isoformat(timespec="seconds")
        return {"type": kind, "timestamp": at, "data": data}

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[str, bool]:
        # A thread of its own per send (at most ``concurrency`` run): a hanging receiver
        # never holds a thread the submits need, and a daemon thread, so a send still
        # under way when the server stops cannot keep the process alive.
        return await in_daemon_thread(self._post_now, url, body, headers)

    def _post_now(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[str, bool]:
        deadline = Deadline.after(self.settings.timeout_s)
        try:
            with self.policy.request("POST", url, deadline=deadline, headers=headers, body=body,
                                     connect_timeout_s=self.settings.connect_timeout_s
                                     ) as response:
                response.read(64 * 1024)  # drain a little; the answer's body is not used
                status = response.status
        except FetchError as error:
            return error.reason[:300], False
        return f"HTTP {status}", 200 <= status < 300


async def in_daemon_thread(call: Callable[..., T], *args: Any) -> T:
    """``call(*args)`` on a new daemon thread; its answer, or its exception, awaited here."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if done.cancelled():
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(cast(T, result))

    def run() -> None:
        try:
            result, error = call(*args), None
        except BaseException as raised:  # handed to the awaiting task, not lost here
            result, error = None, raised
        with contextlib.suppress(RuntimeError):  # the loop closed while the call ran
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=run, name="webhook-send", daemon=True).start()
    return await done


def _host(url: str) -> str:
    try:
        return (urllib.parse.urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""
