"""The submit path: a checked key and body become a queued job with its price held.

Order of checks (docs/contract-decisions.md): key (by the route, before this),
model, the key's model scope, the rate limit, the body, then in the store write the
key again (revoked or gone) and credits.
Everything a job needs besides the body's fields is prepared in ``prepare_order``,
the one step between a parsed body and the store write.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from starlette.requests import Request

from reelserve import metrics
from reelserve.api.async_store import AsyncStore
from reelserve.api.body import read_json_body
from reelserve.api.group_commit import SubmitBatcher
from reelserve.catalog import JobParams, ModelSpec, get_model, parse_submit, price_millicredits
from reelserve.errors import Forbidden, InvalidParameter
from reelserve.input_blobs import InputBlobs
from reelserve.jobs import JobOrder, KeyIdentity, Submitted
from reelserve.logs import job_fields

log = logging.getLogger("reelserve.api")
MAX_WEBHOOK_URL_CHARS = 2048


class Submitter:
    def __init__(self, store: AsyncStore, *, max_body_bytes: int, engine: str,
                 inputs: InputBlobs | None = None) -> None:
        self.store = store
        self.max_body_bytes = max_body_bytes
        self.engine = engine
        self.batcher = SubmitBatcher(store.submit_jobs)
        self.inputs = inputs  # inline images become input blobs (reelserve.input_blobs)
        # labels() takes a lock and builds a key on every call: one child per model, kept.
        self._submitted: dict[str, Any] = {}

    async def submit(self, request: Request, key: KeyIdentity, slug: str, *,
                     sync: bool = False) -> Submitted:
        """Queue a job for ``key``; raise the first rule the request breaks.

        ``sync``: a /v1 call, whose job goes ahead of the key's queued async jobs.
        """
        model = get_model(slug)
        if not key.may_use(slug):
            raise Forbidden(f"this API key may not use model '{slug}'")
        await self.store.count_submit(key.id)
        body = await read_json_body(request, self.max_body_bytes)
        order = await self.prepare_order(key, model, body,
                                         request.headers.get("idempotency-key"), sync=sync)
        job, balance = await self.batcher.submit(order)
        if self.inputs is not None:
            await self.inputs.bind(order.params, job)
        counter = self._submitted.get(slug)
        if counter is None:  # slug is a catalog model's here, so the dict stays small
            counter = self._submitted[slug] = metrics.JOBS_SUBMITTED.labels(slug)
        counter.inc()
        log.info("submitted", extra={**job_fields(job.id, slug, 0, self.engine),
                                     "key_prefix": key.prefix})
        return job, balance

    async def prepare_order(self, key: KeyIdentity, model: ModelSpec, body: Any,
                            idempotency_key: str | None, *, sync: bool = False) -> JobOrder:
        """Validate ``body`` and build the order the store writes; no store write yet."""
        params = parse_submit(model, body)
        await self.check_voice_ids(key, params)
        if self.inputs is not None:
            params = await self.inputs.store_inline(params)
        return JobOrder(key.id, params, price_millicredits(params),
                        webhook_url=_webhook_url(body),
                        idempotency_key=_idempotency_key(idempotency_key),
                        body_digest=_digest(model.slug, body) if idempotency_key else "",
                        sync=sync)

    async def check_voice_ids(self, key: KeyIdentity, params: JobParams) -> None:
        for index, voice_id in enumerate(params.voice_ids):
            voice = await self.store.get_voice(voice_id)
            if voice is None or voice.key_id != key.id:
                raise InvalidParameter(f"voice_ids[{index}]",
                                       f"no voice {voice_id!r} for this key; create one with "
                                       "POST /v2/kling-create-voice")


def _webhook_url(body: dict[str, Any]) -> str | None:
    value = body.get("webhook_url")
    if value is None:
        return None
    if not isinstance(value, str) or not value.startswith(("http://", "https://")) \
            or len(value) > MAX_WEBHOOK_URL_CHARS or not value.isprintable():
        raise InvalidParameter("webhook_url", f"must be an http(s) URL of at most "
                                              f"{MAX_WEBHOOK_URL_CHARS} printable characters")
    return value


def _idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    if not 1 <= len(value) <= 255 or not value.isprintable():
        raise InvalidParameter("Idempotency-Key", "must be 1 to 255 printable characters")
    return value


def _digest(slug: str, body: Any) -> str:
    """The same request, whatever its key order or spacing, gives the same digest.

    Stored with the Idempotency-Key: the encoding must not change between releases.
    """
    canonical = json.dumps([slug, body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
