"""API keys: a recognisable format with a checksum, stored only as hashes.

A key reads ``rs_<32 random base62 chars><6 char checksum>``. The ``rs_``
prefix and the checksum let secret scanners spot a leaked key without asking
the store; the store keeps only the SHA-256 of the key and its first 11
characters (to name it in ``keys list``).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
import string
import zlib
from dataclasses import dataclass

from reelserve.jobs import ApiKey, JobStore

ALPHABET = string.digits + string.ascii_letters
PREFIX = "rs_"
BODY_CHARS = 32
CHECK_CHARS = 6
SHOWN_PREFIX_CHARS = len(PREFIX) + 8
KEY_SHAPE = re.compile(rf"{PREFIX}[0-9A-Za-z]{{{BODY_CHARS + CHECK_CHARS}}}")
# Digests of the keys seen most recently: a client sends the same key with every
# request, so its format check and hash are done once, not per request.
RECENT_KEYS = 4096


def _base62(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        chars.append(ALPHABET[digit])
    return "".join(reversed(chars))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode()), CHECK_CHARS)


def new_key() -> str:
    body = "".join(secrets.choice(ALPHABET) for _ in range(BODY_CHARS))
    return PREFIX + body + _checksum(body)


def looks_like_key(key: str) -> bool:
    """True when ``key`` has the format and a valid checksum (no store lookup)."""
    if KEY_SHAPE.fullmatch(key) is None:
        return False
    body, check = key[len(PREFIX):-CHECK_CHARS], key[-CHECK_CHARS:]
    return hmac.compare_digest(check, _checksum(body))


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedKey:
    secret: str
    record: ApiKey


def issue_key(store: JobStore, *, credits: int, models: tuple[str, ...] | None = None,
              name: str = "") -> IssuedKey:
    """Create a key with ``credits`` millicredits; the secret is returned once, never stored."""
    secret = new_key()
    record = store.create_key(hash_key(secret), secret[:SHOWN_PREFIX_CHARS], name=name,
                              credits=credits, models=models)
    return IssuedKey(secret, record)


def authenticate(store: JobStore, key: str | None) -> ApiKey | None:
    """The active key record for ``key``, or None. The lookup is by hash, so the
    comparison never touches the secret byte by byte."""
    digest = _known_shape_digest(key) if key else None
    if digest is None:
        return None
    record = store.find_key(digest)
    if record is None or record.revoked:
        return None
    return record


@functools.lru_cache(maxsize=RECENT_KEYS)
def _known_shape_digest(key: str) -> str | None:
    """``hash_key(key)`` for a well-formed key, None for anything else.

    Only the format check and the hash are cached, never the store's answer:
    a revoked key or a changed balance is seen on the very next request.
    """
    return hash_key(key) if looks_like_key(key) else None
