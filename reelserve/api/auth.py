"""Who is calling: the ``x-api-key`` header checked against the store, as a dependency.

Every route reads the key from the store on every request, except a submit: the store
write checks the key again in its own transaction (a revoked or gone key is refused
there, ``KeyRevoked``), so a submit may take the key's identity from a short-lived map
kept by this process, without a store read. The balance, revocation, caps and weight
are never taken from that map.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import lru_cache

from starlette.requests import Request

from reelserve.api.async_store import AsyncStore
from reelserve.errors import ReelserveError, StoreTimeout, Unauthorized
from reelserve.jobs import ApiKey, KeyIdentity
from reelserve.keys import hash_key, looks_like_key

KEY_HEADER = "x-api-key"
# How long a submit may use a key's identity without reading the store. Short, because
# within it a revoked key's submit that breaks an earlier rule is answered by that rule
# only once the key is read again (``recheck_refused_submit``); the write refuses it in
# any case. A second is enough to spare a client sending hundreds of submits a second.
SUBMIT_IDENTITY_TTL_S = 1.0
# Keys kept at once; past it the oldest entry goes. Only keys that exist and are not
# revoked get in, so a flood of made-up keys fills nothing.
SUBMIT_IDENTITY_KEYS = 1024


class KeyChecker:
    def __init__(self, store: AsyncStore, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self._clock = clock
        self._identities: dict[str, tuple[float, KeyIdentity]] = {}  # hash: (until, identity)

    async def require_key(self, request: Request) -> ApiKey:
        """The caller's active key, read from the store; 401 when the header is missing,
        unknown or revoked."""
        secret = request.headers.get(KEY_HEADER)
        key_hash = _lookup_hash(secret) if secret else None
        record = None if key_hash is None else await self.store.find_key(key_hash)
        if record is None or record.revoked:
            if key_hash is not None:
                self._identities.pop(key_hash, None)
            raise Unauthorized("missing x-api-key header" if secret is None
                               else "invalid API key")
        return record

    async def require_submit_key(self, request: Request) -> KeyIdentity:
        """The caller's key for a submit: kept for ``SUBMIT_IDENTITY_TTL_S`` after a read.

        Only for a submit, whose store write refuses a revoked key itself.
        """
        secret = request.headers.get(KEY_HEADER)
        key_hash = _lookup_hash(secret) if secret else None
        if key_hash is not None:
            kept = self._identities.get(key_hash)
            if kept is not None and kept[0] > self._clock():
                return kept[1]
        identity = (await self.require_key(request)).identity()
        assert key_hash is not None  # require_key refused any other header
        self._keep(key_hash, identity)
        return identity

    async def recheck_refused_submit(self, request: Request, error: ReelserveError) -> None:
        """After a submit was refused: raise 401 if its key is revoked by now.

        Keeps every answer as it was without the map: a revoked key hears 401 before
        any other rule (unknown model, scope, rate limit, body, credits). A refusal
        costs a store read; a submit that gets through costs none.
        """
        if isinstance(error, StoreTimeout):
            return  # a store that did not answer the write would not answer a read either
        if not isinstance(error, Unauthorized):
            await self.require_key(request)
            return
        secret = request.headers.get(KEY_HEADER)
        key_hash = _lookup_hash(secret) if secret else None
        if key_hash is not None:  # the write found it revoked: read it again next time
            self._identities.pop(key_hash, None)

    def _keep(self, key_hash: str, identity: KeyIdentity) -> None:
        self._identities.pop(key_hash, None)  # to the end: the map stays in age order
        if len(self._identities) >= SUBMIT_IDENTITY_KEYS:
            del self._identities[next(iter(self._identities))]
        self._identities[key_hash] = (self._clock() + SUBMIT_IDENTITY_TTL_S, identity)


@lru_cache(maxsize=1024)
def _lookup_hash(secret: str) -> str | None:
    """The store's lookup hash of a well-formed key, None for a malformed one.

    A pure function of the header, cached so that a client's every request does
    not redo the checksum and SHA-256 (the store's key record is not cached here,
    except a submit's identity for a moment: ``require_submit_key``).
    """
    return hash_key(secret) if looks_like_key(secret) else None
