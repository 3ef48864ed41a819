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
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import anyio
import httpx

from reelserve.jobs import JobStore, WebhookDelivery
from reelserve.settings import Settings

log = logging.getLogger("reelserve.webhooks")
SEND_LEASE_S = 60.0  # how long one sender holds a delivery while it tries it
BATCH = 20


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def backoff_schedule(settings: Settings) -> list[float]:
    return [float(part) for part in settings.webhook_backoff_s.split(",") if part.strip()]


# Sends one signed POST; answers a short outcome ("HTTP 204", "timeout", ...) and
# whether it counts as delivered. A seam: the network policy for outbound calls
# plugs in here.
Poster = Callable[[str, bytes, dict[str, str]], Awaitable[tuple[str, bool]]]


class WebhookSender:
    def __init__(self, settings: Settings, store: JobStore, base_url: str,
                 poster: Poster | None = None) -> None:
        self.settings = settings
        self.store = store
        self.base_url = base_url
        self.schedule = backoff_schedule(settings)
        self._client = httpx.AsyncClient(timeout=settings.webhook_timeout_s,
                                         follow_redirects=False)
        self.poster = poster or self._post

    async def run_forever(self, interval_s: float = 0.5) -> None:
        try:
            while True:
                try:
                    await self.send_due()
                except Exception:  # the sender must outlive a bad pass (a store hiccup)
                    log.exception("webhook pass failed")
                await asyncio.sleep(interval_s)
        finally:
            await self._client.aclose()

    async def send_due(self) -> int:
        due = await anyio.to_thread.run_sync(self.store.claim_due_webhooks, BATCH, SEND_LEASE_S)
        await asyncio.gather(*(self._deliver(delivery) for delivery in due))
        return len(due)

    async def _deliver(self, delivery: WebhookDelivery) -> None:
        secret = await anyio.to_thread.run_sync(self.store.webhook_secret, delivery.key_id,
                                                new_secret())
        body = json.dumps(self.payload(delivery), separators=(",", ":")).encode()
        timestamp = int(time.time())
        headers = {"content-type": "application/json", "webhook-id": delivery.id,
                   "webhook-timestamp": str(timestamp),
                   "webhook-signature": sign(secret, delivery.id, timestamp, body),
                   "user-agent": "reelserve-webhooks"}
        outcome, delivered = await self.poster(delivery.url, body, headers)
        tries = delivery.attempts + 1
        retry_at = None
        if not delivered and tries <= len(self.schedule):
            retry_at = self.store.now() + self.schedule[tries - 1]
        await anyio.to_thread.run_sync(self.store.record_webhook_attempt, delivery.id, outcome,
                                       retry_at, delivered)
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
        try:
            response = await self._client.post(url, content=body, headers=headers)
        except httpx.TimeoutException:
            return "timeout", False
        except httpx.HTTPError as error:
            return f"{type(error).__name__}: {error}"[:300], False
        return f"HTTP {response.status_code}", 200 <= response.status_code < 300
