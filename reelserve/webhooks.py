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

from reelserve import metrics
from reelserve.errors import FetchError
from reelserve.jobs import JobStore, WebhookDelivery
from reelserve.media.fetch_policy import Deadline, FetchPolicy, parse_allowlist
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


# Sends one signed POST; answers a short outcome ("HTTP 204", "refused: ...") and
# whether it counts as delivered. The default goes through the same fetch policy
# as input images: public addresses only unless allowlisted, the address checked
# is the one connected to, no redirects followed, one deadline.
Poster = Callable[[str, bytes, dict[str, str]], Awaitable[tuple[str, bool]]]


class WebhookSender:
    def __init__(self, settings: Settings, store: JobStore, base_url: str,
                 poster: Poster | None = None) -> None:
        self.settings = settings
        self.store = store
        self.base_url = base_url
        self.schedule = backoff_schedule(settings)
        self.policy = FetchPolicy(parse_allowlist(settings.fetch_allow_cidrs))
        self.poster = poster or self._post

    async def run_forever(self, interval_s: float = 0.5) -> None:
        while True:
            try:
                await self.send_due()
            except Exception:  # the sender must outlive a bad pass (a store hiccup)
                log.exception("webhook pass failed")
            await asyncio.sleep(interval_s)

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
        return await anyio.to_thread.run_sync(self._post_now, url, body, headers)

    def _post_now(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[str, bool]:
        deadline = Deadline.after(self.settings.webhook_timeout_s)
        try:
            with self.policy.request("POST", url, deadline=deadline, headers=headers,
                                     body=body) as response:
                response.read(64 * 1024)  # drain a little; the answer's body is not used
                status = response.status
        except FetchError as error:
            return error.reason[:300], False
        return f"HTTP {status}", 200 <= status < 300
