"""Is this Redis fit to be the system of record? Read its settings when a store opens.

Every key, credit and job lives in the Redis store, so two settings matter:

- ``maxmemory-policy`` other than ``noeviction`` lets Redis drop keys under memory
  pressure: refused, with the fix;
- no AOF (persistence off, or RDB snapshots only) loses everything, or the writes
  since the last snapshot, when Redis restarts: a loud warning, which the store
  carries to ``/readyz`` and the metrics, unless the deployment says it accepts
  that on purpose (``REELSERVE_REDIS_EPHEMERAL=1``, for tests and demos).

Managed services that refuse ``CONFIG GET`` get a warning, not a crash.
"""

from __future__ import annotations

import logging
from typing import cast
from urllib.parse import urlsplit

import redis

from reelserve.errors import RedisUnsafe

log = logging.getLogger("reelserve.store")


def check_redis_server(client: redis.Redis, where: str, *, ephemeral: bool) -> tuple[str, ...]:
    """The warnings this Redis deserves; raises ``RedisUnsafe`` when it may evict keys."""
    try:
        config = _config(client, "maxmemory-policy", "appendonly", "save")
    except redis.ResponseError as error:  # CONFIG renamed away, or an ACL without it
        warning = (f"could not read the settings of Redis at {where} (CONFIG GET refused: "
                   f"{error}); make sure maxmemory-policy is noeviction and appendonly is yes")
        log.warning(warning)
        return (warning,)
    policy = config.get("maxmemory-policy", "noeviction")
    if policy != "noeviction":
        raise RedisUnsafe(
            f"Redis at {where} has maxmemory-policy {policy}, which may evict jobs, keys and "
            "credits under memory pressure; set maxmemory-policy noeviction (CONFIG SET "
            "maxmemory-policy noeviction, and in redis.conf)")
    risk = _persistence_risk(config)
    if risk is None:
        return ()
    if ephemeral:
        log.info("Redis at %s: %s; accepted (REELSERVE_REDIS_EPHEMERAL=1)", where, risk)
        return ()
    warning = (f"Redis at {where}: {risk}; turn on AOF (appendonly yes), or set "
               "REELSERVE_REDIS_EPHEMERAL=1 to accept this on purpose")
    log.warning(warning)
    return (warning,)


def _config(client: redis.Redis, *names: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for name in names:
        found.update(cast(dict[str, str], client.config_get(name)))
    return found


def _persistence_risk(config: dict[str, str]) -> str | None:
    if config.get("appendonly", "no") == "yes":
        return None
    if not config.get("save", "").strip():
        return ("persistence is off (no AOF, no RDB snapshots): a restart loses every job, "
                "key and credit")
    return (f"persistence is RDB snapshots only (save {config['save']!r}): a crash loses "
            "what changed since the last snapshot")


def redis_location(url: str) -> str:
    """The URL without its password, to name the server in messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return parts._replace(netloc=netloc).geturl()
