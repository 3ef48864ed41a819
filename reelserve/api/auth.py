"""Who is calling: the ``x-api-key`` header checked against the store, as a dependency."""

from __future__ import annotations

from functools import lru_cache

from starlette.requests import Request

from reelserve.api.async_store import AsyncStore
from reelserve.errors import Unauthorized
from reelserve.jobs import ApiKey
from reelserve.keys import hash_key, looks_like_key

KEY_HEADER = "x-api-key"


class KeyChecker:
    def __init__(self, store: AsyncStore) -> None:
        self.store = store

    async def require_key(self, request: Request) -> ApiKey:
        """The caller's active key; 401 when the header is missing, unknown or revoked."""
        secret = request.headers.get(KEY_HEADER)
        key_hash = _lookup_hash(secret) if secret else None
        record = None if key_hash is None else await self.store.find_key(key_hash)
        if record is None or record.revoked:
            raise Unauthorized("missing x-api-key header" if secret is None
                               else "invalid API key")
        return record


@lru_cache(maxsize=1024)
def _lookup_hash(secret: str) -> str | None:
    """The store's lookup hash of a well-formed key, None for a malformed one.

    A pure function of the header, cached so that a client's every request does
    not redo the checksum and SHA-256 (the store lookup is never cached: a key
    revoked or spent is seen at once).
    """
    return hash_key(secret) if looks_like_key(secret) else None
